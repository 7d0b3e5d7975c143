/* control/etcd/auth_store.h: etcd 3.4's auth store (auth/store.go, range_perm_cache.go) and the checks
 * etcd's appliers and API layer make with it (etcdserver/apply_auth.go, v3_server.go, v3rpc): users with
 * bcrypt password hashes and roles, roles with key permissions, the enabled flag and the auth revision.
 *
 * A store is immutable once built and counted by references, so the storage thread (which applies the
 * auth requests and owns the current store) can hand each new one to the client threads for their
 * checks without a lock around every look. Applying a change builds a new store, writes the changed
 * records into the open state batch (buckets 'a', 'u', 'r': etcd's "auth", "authUsers", "authRoles" with
 * the same values: authpb.User, authpb.Role, the flag byte and the big-endian revision) and gives the new
 * store back; the old one lives on while someone holds it. */
#ifndef QUORUMD_CONTROL_AUTH_STORE_H
#define QUORUMD_CONTROL_AUTH_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.pb-c.h"
#include "kv_apply.h"
#include "raft_internal.pb-c.h"
#include "state.h"

/* etcd's auth errors: the gRPC code and text clients see (rpctypes, through v3rpc's togRPCError), and the
 * auth package's own text (auth/store.go), which Maintenance's Snapshot, Hash, HashKV and Defragment pass
 * on unconverted (code Unknown). */
#define AUTH_STATUS_LIST(X)                                                                                      \
	X(AUTH_OK, GRPC_OK, "", "")                                                                                   \
	X(AUTH_ERR_ROOT_USER_NOT_EXIST, GRPC_FAILED_PRECONDITION, "etcdserver: root user does not exist",             \
	  "auth: root user does not exist")                                                                           \
	X(AUTH_ERR_ROOT_ROLE_NOT_EXIST, GRPC_FAILED_PRECONDITION, "etcdserver: root user does not have root role",    \
	  "auth: root user does not have root role")                                                                  \
	X(AUTH_ERR_USER_ALREADY_EXIST, GRPC_FAILED_PRECONDITION, "etcdserver: user name already exists",              \
	  "auth: user already exists")                                                                                \
	X(AUTH_ERR_USER_EMPTY, GRPC_INVALID_ARGUMENT, "etcdserver: user name is empty", "auth: user name is empty")   \
	X(AUTH_ERR_USER_NOT_FOUND, GRPC_FAILED_PRECONDITION, "etcdserver: user name not found", "auth: user not found") \
	X(AUTH_ERR_ROLE_ALREADY_EXIST, GRPC_FAILED_PRECONDITION, "etcdserver: role name already exists",              \
	  "auth: role already exists")                                                                                \
	X(AUTH_ERR_ROLE_NOT_FOUND, GRPC_FAILED_PRECONDITION, "etcdserver: role name not found", "auth: role not found") \
	X(AUTH_ERR_ROLE_EMPTY, GRPC_INVALID_ARGUMENT, "etcdserver: role name is empty", "auth: role name is empty")   \
	X(AUTH_ERR_AUTH_FAILED, GRPC_INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password", \
	  "auth: authentication failed, invalid user ID or password")                                                 \
	/* not in etcd's error map: grpc-go's Unknown with the auth package's own text */                             \
	X(AUTH_ERR_NO_PASSWORD_USER, GRPC_UNKNOWN, "auth: authentication failed, password was given for no password user", \
	  "auth: authentication failed, password was given for no password user")                                    \
	X(AUTH_ERR_PERMISSION_DENIED, GRPC_PERMISSION_DENIED, "etcdserver: permission denied", "auth: permission denied") \
	X(AUTH_ERR_ROLE_NOT_GRANTED, GRPC_FAILED_PRECONDITION, "etcdserver: role is not granted to the user",         \
	  "auth: role is not granted to the user")                                                                    \
	X(AUTH_ERR_PERMISSION_NOT_GRANTED, GRPC_FAILED_PRECONDITION, "etcdserver: permission is not granted to the role", \
	  "auth: permission is not granted to the role")                                                              \
	X(AUTH_ERR_AUTH_NOT_ENABLED, GRPC_FAILED_PRECONDITION, "etcdserver: authentication is not enabled",           \
	  "auth: authentication is not enabled")                                                                      \
	X(AUTH_ERR_INVALID_AUTH_TOKEN, GRPC_UNAUTHENTICATED, "etcdserver: invalid auth token", "auth: invalid auth token") \
	X(AUTH_ERR_INVALID_AUTH_MGMT, GRPC_INVALID_ARGUMENT, "etcdserver: invalid auth management",                   \
	  "auth: invalid auth management")                                                                            \
	X(AUTH_ERR_AUTH_OLD_REVISION, GRPC_INVALID_ARGUMENT, "etcdserver: revision of auth store is old",             \
	  "auth: revision in header is old")                                                                          \
	/* the token provider's own error, its text alongside (a JWT that cannot be signed) */                       \
	X(AUTH_ERR_PROVIDER, GRPC_UNKNOWN, "auth: token provider failed", "auth: token provider failed")

enum auth_status {
#define AUTH_STATUS_ENUM(name, code, text, internal_text) name,
	AUTH_STATUS_LIST(AUTH_STATUS_ENUM)
#undef AUTH_STATUS_ENUM
};

int auth_status_grpc_code(enum auth_status status);
const char *auth_status_text(enum auth_status status);
/* The auth package's own text ("auth: permission denied"). */
const char *auth_status_internal_text(enum auth_status status);
/* Fills result with the status's code and text (result->response untouched). */
void auth_status_to_result(enum auth_status status, struct kv_result *result);

/* etcd's root user and role. */
#define AUTH_ROOT "root"

struct auth_permission {
	Authpb__Permission__Type type;
	uint8_t *key;
	size_t key_length;
	uint8_t *range_end; /* empty: the key alone; "\0": every key from key on */
	size_t range_end_length;
};

struct auth_role {
	char *name;
	struct auth_permission *permissions; /* ordered by key, as etcd keeps them */
	size_t permission_count;
};

struct auth_interval; /* a merged permission range (range_perm_cache.go) */

struct auth_user {
	char *name;
	char *password_hash; /* bcrypt's $2b$ (or $2a$) string; empty for a user without password */
	bool no_password;
	char **roles; /* sorted */
	size_t role_count;
	/* Every granted range of every role of the user, read and write apart, ordered by start: etcd's
	 * merged interval trees, built with the store. */
	struct auth_interval *read_intervals;
	size_t read_interval_count;
	struct auth_interval *write_intervals;
	size_t write_interval_count;
};

struct auth_store {
	atomic_int references;
	bool enabled;
	uint64_t revision; /* moves with every change (etcd's commitRevision); a new store starts at 1 */
	struct auth_user *users; /* sorted by name, byte order */
	size_t user_count;
	struct auth_role *roles; /* sorted by name */
	size_t role_count;
};

/* Who a request comes from, as etcd's AuthInfo: the user behind its token and the auth revision the
 * token was resolved at. A request without token has user "" and revision 0. */
struct auth_info {
	const char *user;
	uint64_t revision;
};

/* ---- the store's life ---- */

/* A new empty store (disabled, revision 1), one reference. */
struct auth_store *auth_store_new(void);
/* Reads the store kept in state (a state never written to gives a new empty store). */
int auth_store_load(struct state *state, struct auth_store **out, char *err, size_t errlen);
void auth_store_hold(struct auth_store *store);
/* Drops a reference; the last one frees the store. NULL is allowed. */
void auth_store_release(struct auth_store *store);

const struct auth_user *auth_store_user(const struct auth_store *store, const char *name);
const struct auth_role *auth_store_role(const struct auth_store *store, const char *name);
bool auth_user_has_role(const struct auth_user *user, const char *role);

/* ---- apply: the auth requests of InternalRaftRequest, in the storage thread's open batch ---- */

/* True for the requests auth_apply_request handles (AuthEnable ... RoleRevokePermission, Authenticate). */
bool auth_is_auth_request(const Etcdserverpb__InternalRaftRequest *request);

/* What Authenticate's apply does with a user it accepted: gives the token (simple: "PREFIX.INDEX",
 * registered so that every member knows it; JWT: signed). 0, or -1 with the reason in error. */
typedef int (*auth_assign_token_fn)(void *context, const char *user, uint64_t revision, const char *simple_prefix,
                                    uint64_t index, char **token, char *err, size_t errlen);

/* What else an applied change means beyond the store: etcd's token provider enable / disable /
 * invalidateUser. Any of them may be NULL. */
struct auth_apply_hooks {
	void *context;
	unsigned bcrypt_cost; /* for an entry that carries a password instead of its hash (etcd 3.4's form) */
	auth_assign_token_fn assign_token;
	void (*enabled)(void *context);
	void (*disabled)(void *context);
	void (*user_invalidated)(void *context, const char *user);
};

/* Applies an auth request as etcd's authApplierV3 and authStore do, with the checks of the request's
 * header (user and auth revision): the admin check of requests that need it, UserGet for oneself,
 * RoleGet of one's own role. On a change *store becomes the new store (the old reference released) and
 * the records are written into state's open batch. result gets the packed response (its header from
 * header and the state's revision), or etcd's error. index: the Raft index of the entry (simple tokens).
 * Returns 0, or -1 with the reason in error when the records could not be written into the batch (the
 * batch is then incomplete: the member must stop). */
int auth_apply_request(struct auth_store **store, struct state *state, const Etcdserverpb__InternalRaftRequest *request,
                       const struct kv_header *header, uint64_t index, const struct auth_apply_hooks *hooks,
                       struct kv_result *result, char *err, size_t errlen);

/* The checks etcd's authApplierV3 makes before a KV or lease request is applied (Put: write, plus the
 * keys of its lease, plus read for prev_kv; DeleteRange: write, plus read for prev_kv; Txn: read for
 * every compare and range, write for every put and delete of both branches; LeaseRevoke: write on the
 * lease's keys). AUTH_OK when auth is disabled or the request passes. */
enum auth_status auth_check_kv_request(const struct auth_store *store, struct state *state,
                                       const Etcdserverpb__InternalRaftRequest *request);

/* ---- checks (etcd's isOpPermitted, IsAdminPermitted) ---- */

/* Range [key, range_end) (range_end empty: the key alone; "\0": from key on) readable by info's user:
 * disabled: OK; revision 0: user empty; older than the store: old revision; unknown user: denied; the
 * root role: everything. */
enum auth_status auth_range_permitted(const struct auth_store *store, const struct auth_info *info, const uint8_t *key,
                                      size_t key_length, const uint8_t *range_end, size_t range_end_length);
enum auth_status auth_put_permitted(const struct auth_store *store, const struct auth_info *info, const uint8_t *key,
                                    size_t key_length);
enum auth_status auth_delete_permitted(const struct auth_store *store, const struct auth_info *info,
                                       const uint8_t *key, size_t key_length, const uint8_t *range_end,
                                       size_t range_end_length);
/* Admin requests and Maintenance's Snapshot, Hash, HashKV, Defragment: the root role. info may be NULL
 * (no token). No revision check, as etcd. */
enum auth_status auth_admin_permitted(const struct auth_store *store, const struct auth_info *info);

/* apply_auth.go's checkTxnAuth: read for every compare and range, write for every put and delete (and
 * read for a delete's prev_kv), in both branches whichever runs; and, unlike etcd 3.4 (which lets any user
 * write through one), the same inside nested txns. */
enum auth_status auth_check_txn(const struct auth_store *store, const struct auth_info *info,
                                const Etcdserverpb__TxnRequest *txn);

#endif
