/* control/node/node_auth.h: a member's auth at run time — the store the storage thread applies to,
 * published for the client threads' checks; the token provider --auth-token chose; and the bcrypt
 * thread, which hashes passwords before they are proposed and checks them for Authenticate, so neither
 * the client threads nor apply ever spend bcrypt's ~70 ms (cost 10).
 *
 *   storage thread   applies auth entries to its own store, publishes each new one (node_auth_publish)
 *                    before answering, registers simple tokens when it applies Authenticate
 *   client threads   resolve tokens (node_auth_resolve_token) and check reads, watches and maintenance
 *                    calls against the published store (node_auth_acquire)
 *   bcrypt thread    node_auth_post: hashes a proposal's password then hands it to the core, or checks a
 *                    password and hands the Authenticate proposal to the core (or answers the failure) */
#ifndef QUORUMD_CONTROL_NODE_AUTH_H
#define QUORUMD_CONTROL_NODE_AUTH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth_store.h"
#include "auth_token.h"
#include "mailbox.h"

struct node;
struct node_request;

enum auth_work_kind {
	AUTH_WORK_HASH,  /* proposal carries AuthUserAdd or AuthUserChangePassword: hash its password, propose */
	AUTH_WORK_CHECK, /* proposal carries Authenticate: propose it if password matches hash */
};

struct auth_work {
	enum auth_work_kind kind;
	struct node_request *proposal; /* REQUEST_PROPOSE, its payload a packed InternalRaftRequest */
	char *password;
	char *hash;                    /* CHECK: the user's stored hash */
	char *user;                    /* CHECK: for the log line of a wrong password */
};
MAILBOX_OF(auth_work_mailbox, struct auth_work)

struct node_auth {
	struct auth_tokens *tokens;
	unsigned bcrypt_cost;
	pthread_mutex_t lock;            /* guards published */
	struct auth_store *published;
	atomic_bool enabled;             /* published->enabled, without the lock */
	atomic_uint_fast64_t revision;   /* published->revision, without the lock */
	struct auth_work_mailbox inbox;
	pthread_t bcrypt_thread;
	bool bcrypt_started;
	atomic_bool stopping;
};

/* Before the threads start: the token provider of --auth-token and --auth-token-ttl (etcd's errors for bad
 * options or keys), --bcrypt-cost, and the store kept in the member's state. 0, or -1 with the reason. */
int node_auth_open(struct node *node, char *err, size_t errlen);
int node_auth_start(struct node *node, char *err, size_t errlen); /* the bcrypt thread */
void node_auth_stop(struct node *node);
void node_auth_close(struct node *node);

/* The published store, held: release it with auth_store_release. */
struct auth_store *node_auth_acquire(struct node *node);
/* Storage thread: store becomes the one other threads see (the node takes its own reference). */
void node_auth_publish(struct node *node, struct auth_store *store);
static inline bool node_auth_enabled(struct node_auth *auth)
{
	return atomic_load(&auth->enabled);
}
static inline uint64_t node_auth_revision(struct node_auth *auth)
{
	return atomic_load(&auth->revision);
}

/* Storage thread, after its state was replaced (a snapshot installed): *current becomes the store the new
 * state keeps, published, and the token provider follows its enabled flag. 0, or -1 with the reason. */
int node_auth_reload(struct node *node, struct auth_store **current, char *err, size_t errlen);

/* Who a request's token stands for (etcd's AuthInfoFromCtx), against this member's applied index. */
enum auth_token_lookup node_auth_resolve_token(struct node *node, const char *token, char **user, uint64_t *revision,
                                               uint64_t *wait_index);

/* Hands work to the bcrypt thread (which frees it). */
void node_auth_post(struct node *node, struct auth_work *work);
void auth_work_free(struct auth_work *work);

#endif
