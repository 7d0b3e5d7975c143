/* control/node/node_auth.c: the published auth store, the token provider and the bcrypt thread (see
 * node_auth.h). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth_password.h"
#include "clock.h"
#include "log.h"
#include "node.h"

/* etcd's token keeper looks for idle simple tokens once a second. */
enum { TOKEN_SWEEP_INTERVAL_MS = 1000, BCRYPT_WAKE_MS = 100 };

int node_auth_open(struct node *node, char *err, size_t errlen)
{
	struct node_auth *auth = &node->auth;
	auth->bcrypt_cost = auth_bcrypt_cost(node->flags.bcrypt_cost);
	if (auth->bcrypt_cost != node->flags.bcrypt_cost)
		log_write("warn", "use default bcrypt cost instead of the invalid given cost",
		          "\"min-cost\":%d,\"max-cost\":%d,\"default-cost\":%d,\"given-cost\":%" PRIu64, AUTH_BCRYPT_MIN_COST,
		          AUTH_BCRYPT_MAX_COST, AUTH_BCRYPT_DEFAULT_COST, node->flags.bcrypt_cost);
	char reason[256] = "";
	if (auth_tokens_open(node->flags.auth_token, node->flags.auth_token_ttl, &auth->tokens, reason, sizeof(reason)) !=
	    0) {
		char escaped[512];
		log_write("warn", "failed to create token provider", "\"error\":\"%s\"",
		          log_json_escape(reason, escaped, sizeof(escaped)));
		snprintf(err, errlen, "failed to create token provider: %s", reason);
		return -1;
	}
	struct auth_store *store = NULL;
	if (auth_store_load(node->state, &store, reason, sizeof(reason)) != 0) {
		snprintf(err, errlen, "%s", reason);
		auth_tokens_close(auth->tokens);
		auth->tokens = NULL;
		return -1;
	}
	pthread_mutex_init(&auth->lock, NULL);
	auth->published = store;
	atomic_store(&auth->enabled, store->enabled);
	atomic_store(&auth->revision, store->revision);
	if (store->enabled)
		auth_tokens_enable(auth->tokens);
	if (auth_work_mailbox_init(&auth->inbox) != 0) {
		snprintf(err, errlen, "cannot create the bcrypt thread's mailbox: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct auth_store *node_auth_acquire(struct node *node)
{
	pthread_mutex_lock(&node->auth.lock);
	struct auth_store *store = node->auth.published;
	auth_store_hold(store);
	pthread_mutex_unlock(&node->auth.lock);
	return store;
}

void node_auth_publish(struct node *node, struct auth_store *store)
{
	auth_store_hold(store);
	pthread_mutex_lock(&node->auth.lock);
	struct auth_store *old = node->auth.published;
	node->auth.published = store;
	atomic_store(&node->auth.enabled, store->enabled);
	atomic_store(&node->auth.revision, store->revision);
	pthread_mutex_unlock(&node->auth.lock);
	auth_store_release(old);
}

int node_auth_reload(struct node *node, struct auth_store **current, char *err, size_t errlen)
{
	struct auth_store *store = NULL;
	if (auth_store_load(node->state, &store, err, errlen) != 0)
		return -1;
	if (store->enabled && !(*current)->enabled)
		auth_tokens_enable(node->auth.tokens);
	else if (!store->enabled && (*current)->enabled)
		auth_tokens_disable(node->auth.tokens);
	auth_store_release(*current);
	*current = store;
	node_auth_publish(node, store);
	return 0;
}

enum auth_token_lookup node_auth_resolve_token(struct node *node, const char *token, char **user, uint64_t *revision,
                                               uint64_t *wait_index)
{
	return auth_tokens_lookup(node->auth.tokens, token, atomic_load(&node->applied_index),
	                          node_auth_revision(&node->auth), clock_monotonic_ms(), user, revision, wait_index);
}

void auth_work_free(struct auth_work *work)
{
	if (!work)
		return;
	node_request_free(work->proposal);
	if (work->password)
		memset(work->password, 0, strlen(work->password));
	free(work->password);
	free(work->hash);
	free(work->user);
	free(work);
}

void node_auth_post(struct node *node, struct auth_work *work)
{
	auth_work_mailbox_post(&node->auth.inbox, work);
}

static void propose(struct node *node, struct node_request *proposal)
{
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = CORE_MAIL_REQUEST;
	mail->request = proposal;
	core_mailbox_post(&node->core_inbox, mail);
}

static void answer_error(struct node *node, uint64_t request_id, int code, const char *text)
{
	struct node_reply *reply = xcalloc(1, sizeof(*reply));
	reply->request_id = request_id;
	reply->kv.grpc_code = code;
	snprintf(reply->kv.error, sizeof(reply->kv.error), "%s", text);
	node_post_reply(node, reply);
}

/* The proposal's password replaced by its hash (3.5's hashedPassword), so the log never holds it. */
static void hash_then_propose(struct node *node, struct auth_work *work)
{
	struct node_request *proposal = work->proposal;
	Etcdserverpb__InternalRaftRequest *internal =
	    etcdserverpb__internal_raft_request__unpack(NULL, proposal->payload_length, proposal->payload);
	if (!internal || !(internal->auth_user_add || internal->auth_user_change_password)) {
		etcdserverpb__internal_raft_request__free_unpacked(internal, NULL);
		answer_error(node, proposal->request_id, GRPC_INTERNAL, "etcdserver: malformed password request");
		return;
	}
	char *hash = NULL;
	char error[256] = "";
	if (auth_password_hash(work->password, node->auth.bcrypt_cost, &hash, error, sizeof(error)) != 0) {
		etcdserverpb__internal_raft_request__free_unpacked(internal, NULL);
		log_write("warn", "failed to bcrypt hash password", "\"error\":\"%s\"", error);
		answer_error(node, proposal->request_id, GRPC_UNKNOWN, error);
		return;
	}
	/* The unpacked message owns its strings: ours go in only for the pack, then the originals return. */
	char **password_field = internal->auth_user_add ? &internal->auth_user_add->password
	                                                : &internal->auth_user_change_password->password;
	char **hash_field = internal->auth_user_add ? &internal->auth_user_add->hashedpassword
	                                            : &internal->auth_user_change_password->hashedpassword;
	char *original_password = *password_field, *original_hash = *hash_field;
	*password_field = "";
	*hash_field = hash;
	size_t length = etcdserverpb__internal_raft_request__get_packed_size(internal);
	uint8_t *packed = xmalloc(length ? length : 1);
	etcdserverpb__internal_raft_request__pack(internal, packed);
	*password_field = original_password;
	*hash_field = original_hash;
	etcdserverpb__internal_raft_request__free_unpacked(internal, NULL);
	free(hash);
	if (proposal->payload) {
		memset(proposal->payload, 0, proposal->payload_length);
		free(proposal->payload);
	}
	proposal->payload = packed;
	proposal->payload_length = length;
	work->proposal = NULL;
	propose(node, proposal);
}

static void check_then_propose(struct node *node, struct auth_work *work)
{
	if (!auth_password_matches(work->password, work->hash)) {
		char escaped[256];
		log_write("info", "invalid password", "\"user-name\":\"%s\"",
		          log_json_escape(work->user ? work->user : "", escaped, sizeof(escaped)));
		answer_error(node, work->proposal->request_id, auth_status_grpc_code(AUTH_ERR_AUTH_FAILED),
		             auth_status_text(AUTH_ERR_AUTH_FAILED));
		return;
	}
	propose(node, work->proposal);
	work->proposal = NULL;
}

static void *bcrypt_main(void *argument)
{
	struct node *node = argument;
	struct node_auth *auth = &node->auth;
	struct pollfd watched = {.fd = auth_work_mailbox_fd(&auth->inbox), .events = POLLIN};
	uint64_t last_sweep_ms = clock_monotonic_ms();
	while (!atomic_load(&auth->stopping)) {
		int ready = poll(&watched, 1, BCRYPT_WAKE_MS);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready > 0) {
			struct auth_work **items = NULL;
			size_t count = auth_work_mailbox_take_all(&auth->inbox, &items);
			for (size_t k = 0; k < count && !atomic_load(&auth->stopping); k++) {
				if (items[k]->kind == AUTH_WORK_HASH)
					hash_then_propose(node, items[k]);
				else
					check_then_propose(node, items[k]);
			}
			for (size_t k = 0; k < count; k++)
				auth_work_free(items[k]);
			free(items);
		}
		uint64_t now = clock_monotonic_ms();
		if (now - last_sweep_ms >= TOKEN_SWEEP_INTERVAL_MS) {
			last_sweep_ms = now;
			auth_tokens_expire(auth->tokens, now);
		}
	}
	return NULL;
}

int node_auth_start(struct node *node, char *err, size_t errlen)
{
	if (pthread_create(&node->auth.bcrypt_thread, NULL, bcrypt_main, node) != 0) {
		snprintf(err, errlen, "cannot start the bcrypt thread: %s", strerror(errno));
		return -1;
	}
	node->auth.bcrypt_started = true;
	return 0;
}

void node_auth_stop(struct node *node)
{
	if (!node->auth.bcrypt_started)
		return;
	atomic_store(&node->auth.stopping, true);
	pthread_join(node->auth.bcrypt_thread, NULL);
	node->auth.bcrypt_started = false;
}

void node_auth_close(struct node *node)
{
	struct node_auth *auth = &node->auth;
	if (!auth->tokens)
		return;
	if (auth->inbox.untyped.event_fd > 0) {
		struct auth_work **items = NULL;
		size_t count = auth_work_mailbox_take_all(&auth->inbox, &items);
		for (size_t k = 0; k < count; k++)
			auth_work_free(items[k]);
		free(items);
		auth_work_mailbox_destroy(&auth->inbox);
	}
	auth_store_release(auth->published);
	auth->published = NULL;
	pthread_mutex_destroy(&auth->lock);
	auth_tokens_close(auth->tokens);
	auth->tokens = NULL;
}
