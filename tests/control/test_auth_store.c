/* tests/control/test_auth_store.c: etcd 3.4's auth store (control/etcd/auth_store.c) against a real RocksDB
 * state: the apply of every auth request with etcd's errors and revisions, the admin and key checks
 * (etcd's interval semantics: points, ranges, from-key, gaps), what the store keeps across a reload;
 * bcrypt through libxcrypt (also a hash made by Go's bcrypt, as etcd makes them); simple tokens and JWTs
 * (control/etcd/auth_token.c). */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_password.h"
#include "auth_store.h"
#include "auth_token.h"

#include "check.h"

static const struct kv_header header = {0xef37ad9dc622a7c4ULL, 0x8211f1d0f64f3269ULL, 3};
static struct state *state;
static struct auth_store *store;
static uint64_t next_index = 1;
static struct auth_tokens *tokens;

static int assign_token(void *context, const char *user, uint64_t revision, const char *prefix, uint64_t index,
                        char **token, char *err, size_t errlen)
{
	(void)context;
	return auth_tokens_assign(tokens, user, revision, prefix, index, 1000, token, err, errlen);
}

static void tokens_enabled(void *context)
{
	(void)context;
	auth_tokens_enable(tokens);
}

static void tokens_disabled(void *context)
{
	(void)context;
	auth_tokens_disable(tokens);
}

static void user_invalidated(void *context, const char *user)
{
	(void)context;
	auth_tokens_invalidate_user(tokens, user);
}

static const struct auth_apply_hooks hooks = {
    .context = NULL,
    .bcrypt_cost = AUTH_BCRYPT_MIN_COST,
    .assign_token = assign_token,
    .enabled = tokens_enabled,
    .disabled = tokens_disabled,
    .user_invalidated = user_invalidated,
};

/* Applies internal as `user` at the store's current revision in its own batch; returns etcd's error text
 * ("" for success) and leaves the response in *result when result is not NULL. */
static const char *apply_as(const char *user, uint64_t auth_revision, Etcdserverpb__InternalRaftRequest *internal,
                            struct kv_result *result)
{
	static char text[192];
	Etcdserverpb__RequestHeader request_header = ETCDSERVERPB__REQUEST_HEADER__INIT;
	request_header.id = next_index;
	request_header.username = (char *)user;
	request_header.auth_revision = auth_revision;
	internal->header = &request_header;
	char error[256] = "";
	struct kv_result local;
	struct kv_result *out = result ? result : &local;
	CHECK(state_batch_begin(state, error, sizeof(error)) == STATE_OK, "%s", error);
	CHECK(auth_apply_request(&store, state, internal, &header, next_index, &hooks, out, error, sizeof(error)) == 0,
	      "%s", error);
	CHECK(state_batch_commit(state, next_index, error, sizeof(error)) == STATE_OK, "%s", error);
	next_index++;
	internal->header = NULL;
	snprintf(text, sizeof(text), "%s", out->grpc_code == GRPC_OK ? "" : out->error);
	if (!result)
		kv_result_free(&local);
	return text;
}

static const char *apply_as_root(Etcdserverpb__InternalRaftRequest *internal)
{
	return apply_as(AUTH_ROOT, store->revision, internal, NULL);
}

static const char *user_add(const char *name, const char *password, bool no_password)
{
	Etcdserverpb__AuthUserAddRequest request = ETCDSERVERPB__AUTH_USER_ADD_REQUEST__INIT;
	Authpb__UserAddOptions options = AUTHPB__USER_ADD_OPTIONS__INIT;
	options.no_password = no_password;
	request.name = (char *)name;
	request.password = (char *)password;
	request.options = &options;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_user_add = &request;
	return apply_as_root(&internal);
}

static const char *grant_role(const char *user, const char *role)
{
	Etcdserverpb__AuthUserGrantRoleRequest request = ETCDSERVERPB__AUTH_USER_GRANT_ROLE_REQUEST__INIT;
	request.user = (char *)user;
	request.role = (char *)role;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_user_grant_role = &request;
	return apply_as_root(&internal);
}

static const char *revoke_role(const char *user, const char *role)
{
	Etcdserverpb__AuthUserRevokeRoleRequest request = ETCDSERVERPB__AUTH_USER_REVOKE_ROLE_REQUEST__INIT;
	request.name = (char *)user;
	request.role = (char *)role;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_user_revoke_role = &request;
	return apply_as_root(&internal);
}

static const char *role_add(const char *name)
{
	Etcdserverpb__AuthRoleAddRequest request = ETCDSERVERPB__AUTH_ROLE_ADD_REQUEST__INIT;
	request.name = (char *)name;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_role_add = &request;
	return apply_as_root(&internal);
}

static const char *role_delete(const char *name)
{
	Etcdserverpb__AuthRoleDeleteRequest request = ETCDSERVERPB__AUTH_ROLE_DELETE_REQUEST__INIT;
	request.role = (char *)name;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_role_delete = &request;
	return apply_as_root(&internal);
}

static const char *user_delete(const char *name)
{
	Etcdserverpb__AuthUserDeleteRequest request = ETCDSERVERPB__AUTH_USER_DELETE_REQUEST__INIT;
	request.name = (char *)name;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_user_delete = &request;
	return apply_as_root(&internal);
}

static const char *grant_permission(const char *role, Authpb__Permission__Type type, const char *key,
                                    const char *range_end, size_t range_end_length)
{
	Authpb__Permission permission = AUTHPB__PERMISSION__INIT;
	permission.permtype = type;
	permission.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
	permission.range_end = (ProtobufCBinaryData){range_end_length, (uint8_t *)range_end};
	Etcdserverpb__AuthRoleGrantPermissionRequest request = ETCDSERVERPB__AUTH_ROLE_GRANT_PERMISSION_REQUEST__INIT;
	request.name = (char *)role;
	request.perm = &permission;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_role_grant_permission = &request;
	return apply_as_root(&internal);
}

static const char *revoke_permission(const char *role, const char *key, const char *range_end)
{
	Etcdserverpb__AuthRoleRevokePermissionRequest request = ETCDSERVERPB__AUTH_ROLE_REVOKE_PERMISSION_REQUEST__INIT;
	request.role = (char *)role;
	request.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
	request.range_end = (ProtobufCBinaryData){strlen(range_end), (uint8_t *)range_end};
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_role_revoke_permission = &request;
	return apply_as_root(&internal);
}

static const char *enable_as(const char *user)
{
	Etcdserverpb__AuthEnableRequest request = ETCDSERVERPB__AUTH_ENABLE_REQUEST__INIT;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_enable = &request;
	return apply_as(user, store->revision, &internal, NULL);
}

static const char *disable_as(const char *user)
{
	Etcdserverpb__AuthDisableRequest request = ETCDSERVERPB__AUTH_DISABLE_REQUEST__INIT;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_disable = &request;
	return apply_as(user, store->revision, &internal, NULL);
}

static bool is(const char *actual, const char *expected)
{
	return strcmp(actual, expected) == 0;
}

static const char *status_text(enum auth_status status)
{
	return status == AUTH_OK ? "" : auth_status_text(status);
}

/* Read permission of [key, range_end) for user at the store's revision. */
static const char *can_read(const char *user, const char *key, const char *range_end, size_t range_end_length)
{
	struct auth_info info = {user, store->revision};
	return status_text(auth_range_permitted(store, &info, (const uint8_t *)key, strlen(key),
	                                        (const uint8_t *)range_end, range_end_length));
}

static const char *can_put(const char *user, const char *key)
{
	struct auth_info info = {user, store->revision};
	return status_text(auth_put_permitted(store, &info, (const uint8_t *)key, strlen(key)));
}

static void test_enable_and_revisions(void)
{
	CHECK(store->revision == 1 && !store->enabled, "a new store: revision %llu", (unsigned long long)store->revision);
	CHECK(is(enable_as(""), "etcdserver: root user does not exist"), "enable without root");
	CHECK(is(user_add("root", "rootpw", false), ""), "user add root");
	CHECK(store->revision == 2, "user add moves the revision: %llu", (unsigned long long)store->revision);
	CHECK(is(user_add("root", "x", false), "etcdserver: user name already exists"), "root twice");
	CHECK(is(user_add("", "x", false), "etcdserver: user name is empty"), "empty user");
	CHECK(is(enable_as(""), "etcdserver: root user does not have root role"), "enable without root role");
	CHECK(is(grant_role("root", "root"), ""), "root may be granted before the role exists");
	CHECK(is(grant_role("root", "root"), "") && store->revision == 3, "a second grant changes nothing: %llu",
	      (unsigned long long)store->revision);
	CHECK(is(grant_role("root", "nope"), "etcdserver: role name not found"), "grant of a missing role");
	CHECK(is(grant_role("nobody", "root"), "etcdserver: user name not found"), "grant to a missing user");
	CHECK(is(role_add("root"), "") && store->revision == 4, "role add root");
	CHECK(is(role_add(""), "etcdserver: role name is empty"), "empty role");
	CHECK(is(role_add("root"), "etcdserver: role name already exists"), "role twice");
	CHECK(is(enable_as(""), "") && store->enabled && store->revision == 4, "enable keeps the revision: %llu",
	      (unsigned long long)store->revision);
	CHECK(is(enable_as(AUTH_ROOT), ""), "enable when enabled is a no-op for root");
	CHECK(is(enable_as(""), "etcdserver: user name is empty"), "enable without a user once enabled");
	/* The root user and role are protected while auth is on. */
	CHECK(is(user_delete("root"), "etcdserver: invalid auth management"), "delete root");
	CHECK(is(revoke_role("root", "root"), "etcdserver: invalid auth management"), "revoke root from root");
	CHECK(is(role_delete("root"), "etcdserver: invalid auth management"), "delete role root");
}

static void test_admin_checks(void)
{
	CHECK(is(user_add("alice", "alicepw", false), ""), "user add alice");
	struct auth_info nobody = {"", 0}, alice = {"alice", store->revision}, ghost = {"ghost", store->revision},
	                 root = {AUTH_ROOT, store->revision};
	CHECK(auth_admin_permitted(store, NULL) == AUTH_ERR_USER_EMPTY, "no token");
	CHECK(auth_admin_permitted(store, &nobody) == AUTH_ERR_USER_EMPTY, "no user");
	CHECK(auth_admin_permitted(store, &ghost) == AUTH_ERR_USER_NOT_FOUND, "unknown user");
	CHECK(auth_admin_permitted(store, &alice) == AUTH_ERR_PERMISSION_DENIED, "not root");
	CHECK(auth_admin_permitted(store, &root) == AUTH_OK, "root");

	/* Admin requests as alice are refused before anything happens. */
	Etcdserverpb__AuthRoleAddRequest add = ETCDSERVERPB__AUTH_ROLE_ADD_REQUEST__INIT;
	add.name = "sneaky";
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_role_add = &add;
	uint64_t revision = store->revision;
	CHECK(is(apply_as("alice", revision, &internal, NULL), "etcdserver: permission denied") &&
	          !auth_store_role(store, "sneaky") && store->revision == revision,
	      "role add as alice");

	/* Alice reads her own user but not root's; a role she has but not another. */
	Etcdserverpb__AuthUserGetRequest get = ETCDSERVERPB__AUTH_USER_GET_REQUEST__INIT;
	Etcdserverpb__InternalRaftRequest get_internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	get_internal.auth_user_get = &get;
	get.name = "alice";
	struct kv_result result;
	CHECK(is(apply_as("alice", store->revision, &get_internal, &result), ""), "user get alice as alice");
	Etcdserverpb__AuthUserGetResponse *response =
	    etcdserverpb__auth_user_get_response__unpack(NULL, result.response_length, result.response);
	CHECK(response && response->n_roles == 0 && response->header->revision == 1 &&
	          response->header->member_id == header.member_id,
	      "user get response");
	etcdserverpb__auth_user_get_response__free_unpacked(response, NULL);
	kv_result_free(&result);
	get.name = "root";
	CHECK(is(apply_as("alice", store->revision, &get_internal, NULL), "etcdserver: permission denied"),
	      "user get root as alice");
	CHECK(is(role_add("reader"), "") && is(grant_role("alice", "reader"), ""), "reader for alice");
	Etcdserverpb__AuthRoleGetRequest role_get = ETCDSERVERPB__AUTH_ROLE_GET_REQUEST__INIT;
	Etcdserverpb__InternalRaftRequest role_internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	role_internal.auth_role_get = &role_get;
	role_get.role = "reader";
	CHECK(is(apply_as("alice", store->revision, &role_internal, NULL), ""), "role get reader as alice");
	role_get.role = "root";
	CHECK(is(apply_as("alice", store->revision, &role_internal, NULL), "etcdserver: permission denied"),
	      "role get root as alice");
}

static void test_key_permissions(void)
{
	CHECK(is(grant_permission("reader", AUTHPB__PERMISSION__TYPE__READ, "a", "c", 1), ""), "read [a, c)");
	CHECK(is(grant_permission("reader", AUTHPB__PERMISSION__TYPE__READ, "d", "f", 1), ""), "read [d, f)");
	CHECK(is(grant_permission("reader", AUTHPB__PERMISSION__TYPE__WRITE, "k", "", 0), ""), "write k");
	CHECK(is(grant_permission("reader", AUTHPB__PERMISSION__TYPE__READWRITE, "z", "\0", 1), ""), "readwrite z on");
	CHECK(is(grant_permission("nope", AUTHPB__PERMISSION__TYPE__READ, "a", "", 0), "etcdserver: role name not found"),
	      "grant to a missing role");
	const char *denied = "etcdserver: permission denied";
	CHECK(is(can_read("alice", "a", "", 0), ""), "point a");
	CHECK(is(can_read("alice", "bzz", "", 0), ""), "point bzz");
	CHECK(is(can_read("alice", "c", "", 0), denied), "point c: the range end is not in");
	CHECK(is(can_read("alice", "a", "c", 1), ""), "[a, c)");
	CHECK(is(can_read("alice", "a", "d", 1), denied), "[a, d) crosses the gap [c, d)");
	CHECK(is(can_read("alice", "b", "e", 1), denied), "[b, e) too");
	CHECK(is(can_read("alice", "z", "\0", 1), ""), "from z on");
	CHECK(is(can_read("alice", "zz", "\0", 1), ""), "from zz on");
	CHECK(is(can_read("alice", "y", "\0", 1), denied), "from y on");
	CHECK(is(can_read("alice", "k", "", 0), denied), "write-only k is not readable");
	CHECK(is(can_put("alice", "k"), ""), "put k");
	CHECK(is(can_put("alice", "a"), denied), "put a (read only)");
	CHECK(is(can_put("alice", "zebra"), ""), "put zebra (readwrite from z)");
	CHECK(is(can_put(AUTH_ROOT, "anything"), ""), "root puts anywhere");
	CHECK(is(can_put("ghost", "k"), denied), "an unknown user is denied");
	/* The same grant twice updates the type; revoke takes key and range end exactly. */
	CHECK(is(grant_permission("reader", AUTHPB__PERMISSION__TYPE__READWRITE, "k", "", 0), "") &&
	          is(can_read("alice", "k", "", 0), ""),
	      "k upgraded to readwrite");
	const struct auth_role *reader = auth_store_role(store, "reader");
	CHECK(reader && reader->permission_count == 4, "permissions of reader: %zu", reader ? reader->permission_count : 0);
	CHECK(is(revoke_permission("reader", "k", "x"), "etcdserver: permission is not granted to the role"),
	      "revoke with another range end");
	CHECK(is(revoke_permission("reader", "k", ""), "") && is(can_put("alice", "k"), denied), "revoke k");
	/* A token resolved before a change is refused after it, as etcd's old revision. */
	struct auth_info stale = {"alice", store->revision - 1};
	CHECK(auth_range_permitted(store, &stale, (const uint8_t *)"a", 1, NULL, 0) == AUTH_ERR_AUTH_OLD_REVISION,
	      "old revision");
	struct auth_info empty = {"", 0};
	CHECK(auth_range_permitted(store, &empty, (const uint8_t *)"a", 1, NULL, 0) == AUTH_ERR_USER_EMPTY, "no token");

	/* Put on a lease: every key already on it must be writable. */
	char error[256];
	CHECK(state_batch_begin(state, error, sizeof(error)) == STATE_OK, "%s", error);
	CHECK(state_lease_grant(state, 77, 60, error, sizeof(error)) == STATE_OK, "%s", error);
	struct state_put_request put = {.key = {(const uint8_t *)"a1", 2}, .value = {(const uint8_t *)"v", 1}, .lease = 77};
	struct state_put_response put_response;
	CHECK(state_put(state, &put, &put_response, error, sizeof(error)) == STATE_OK, "%s", error);
	state_put_response_free(&put_response);
	CHECK(state_batch_commit(state, next_index++, error, sizeof(error)) == STATE_OK, "%s", error);
	Etcdserverpb__PutRequest request = ETCDSERVERPB__PUT_REQUEST__INIT;
	request.key = (ProtobufCBinaryData){5, (uint8_t *)"zebra"};
	request.lease = 77;
	Etcdserverpb__RequestHeader request_header = ETCDSERVERPB__REQUEST_HEADER__INIT;
	request_header.username = "alice";
	request_header.auth_revision = store->revision;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.header = &request_header;
	internal.put = &request;
	CHECK(auth_check_kv_request(store, state, &internal) == AUTH_ERR_PERMISSION_DENIED,
	      "put on a lease holding a read-only key");
	request.lease = 0;
	CHECK(auth_check_kv_request(store, state, &internal) == AUTH_OK, "the same put without the lease");
	request.prev_kv = true;
	CHECK(auth_check_kv_request(store, state, &internal) == AUTH_OK, "prev_kv needs read (readwrite from z)");
	/* A nested txn is checked as the outer one (etcd 3.4 checks nothing inside it). */
	Etcdserverpb__PutRequest nested_put = ETCDSERVERPB__PUT_REQUEST__INIT;
	nested_put.key = (ProtobufCBinaryData){1, (uint8_t *)"x"};
	Etcdserverpb__RequestOp nested_op = ETCDSERVERPB__REQUEST_OP__INIT;
	nested_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	nested_op.request_put = &nested_put;
	Etcdserverpb__RequestOp *nested_ops[] = {&nested_op};
	Etcdserverpb__TxnRequest inner = ETCDSERVERPB__TXN_REQUEST__INIT;
	inner.n_failure = 1;
	inner.failure = nested_ops;
	Etcdserverpb__RequestOp outer_op = ETCDSERVERPB__REQUEST_OP__INIT;
	outer_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
	outer_op.request_txn = &inner;
	Etcdserverpb__RequestOp *outer_ops[] = {&outer_op};
	Etcdserverpb__TxnRequest outer = ETCDSERVERPB__TXN_REQUEST__INIT;
	outer.n_success = 1;
	outer.success = outer_ops;
	request_header.username = "alice";
	internal.put = NULL;
	internal.txn = &outer;
	CHECK(auth_check_kv_request(store, state, &internal) == AUTH_ERR_PERMISSION_DENIED, "a nested txn's put of x");
	nested_put.key = (ProtobufCBinaryData){5, (uint8_t *)"zebra"};
	CHECK(auth_check_kv_request(store, state, &internal) == AUTH_OK, "a nested txn's put of zebra");
	internal.txn = NULL;
	Etcdserverpb__LeaseRevokeRequest revoke = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	revoke.id = 77;
	internal.put = NULL;
	internal.lease_revoke = &revoke;
	CHECK(auth_check_kv_request(store, state, &internal) == AUTH_ERR_PERMISSION_DENIED, "revoke deletes a1");
	request_header.username = AUTH_ROOT;
	CHECK(auth_check_kv_request(store, state, &internal) == AUTH_OK, "root revokes");
}

static void test_role_delete_and_reload(void)
{
	CHECK(is(role_add("extra"), "") && is(grant_role("alice", "extra"), ""), "extra for alice");
	CHECK(is(role_delete("extra"), "") && !auth_user_has_role(auth_store_user(store, "alice"), "extra") &&
	          auth_user_has_role(auth_store_user(store, "alice"), "reader"),
	      "role delete takes it from its users");
	CHECK(is(role_delete("extra"), "etcdserver: role name not found"), "role delete twice");
	CHECK(is(revoke_role("alice", "extra"), "etcdserver: role is not granted to the user"), "revoke a gone role");
	CHECK(is(user_add("cn-only", "", true), ""), "user without password");
	struct auth_store *loaded = NULL;
	char error[256] = "";
	CHECK(auth_store_load(state, &loaded, error, sizeof(error)) == 0, "%s", error);
	if (!loaded)
		return;
	CHECK(loaded->enabled && loaded->revision == store->revision && loaded->user_count == store->user_count &&
	          loaded->role_count == store->role_count,
	      "reloaded: enabled %d revision %llu users %zu roles %zu", loaded->enabled,
	      (unsigned long long)loaded->revision, loaded->user_count, loaded->role_count);
	const struct auth_user *alice = auth_store_user(loaded, "alice");
	CHECK(alice && alice->role_count == 1 && is(alice->roles[0], "reader") &&
	          auth_password_matches("alicepw", alice->password_hash) && !auth_password_matches("x", alice->password_hash),
	      "alice reloaded");
	const struct auth_user *cn_only = auth_store_user(loaded, "cn-only");
	CHECK(cn_only && cn_only->no_password, "a user without password keeps the option");
	struct auth_info info = {"alice", loaded->revision};
	CHECK(auth_range_permitted(loaded, &info, (const uint8_t *)"d", 1, (const uint8_t *)"e", 1) == AUTH_OK &&
	          auth_range_permitted(loaded, &info, (const uint8_t *)"c", 1, NULL, 0) == AUTH_ERR_PERMISSION_DENIED,
	      "reloaded ranges");
	auth_store_release(loaded);
}

static void test_authenticate_and_tokens(void)
{
	Etcdserverpb__InternalAuthenticateRequest authenticate = ETCDSERVERPB__INTERNAL_AUTHENTICATE_REQUEST__INIT;
	authenticate.name = "alice";
	authenticate.simple_token = "abcdefghijklmnop";
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.authenticate = &authenticate;
	struct kv_result result;
	uint64_t index = next_index;
	CHECK(is(apply_as("", 0, &internal, &result), ""), "authenticate alice");
	Etcdserverpb__AuthenticateResponse *response =
	    etcdserverpb__authenticate_response__unpack(NULL, result.response_length, result.response);
	char expected[64];
	snprintf(expected, sizeof(expected), "abcdefghijklmnop.%llu", (unsigned long long)index);
	CHECK(response && is(response->token, expected), "token %s", response ? response->token : "(none)");
	etcdserverpb__authenticate_response__free_unpacked(response, NULL);
	kv_result_free(&result);
	authenticate.name = "cn-only";
	CHECK(is(apply_as("", 0, &internal, NULL), "etcdserver: authentication failed, invalid user ID or password"),
	      "no password user");
	authenticate.name = "ghost";
	CHECK(is(apply_as("", 0, &internal, NULL), "etcdserver: authentication failed, invalid user ID or password"),
	      "unknown user");

	char *user = NULL;
	uint64_t revision = 0, wait_index = 0;
	CHECK(auth_tokens_lookup(tokens, expected, index - 1, 9, 2000, &user, &revision, &wait_index) == AUTH_TOKEN_PENDING &&
	          wait_index == index,
	      "a token of an index not applied yet waits");
	CHECK(auth_tokens_lookup(tokens, expected, index, 9, 2000, &user, &revision, &wait_index) == AUTH_TOKEN_VALID &&
	          is(user, "alice") && revision == 9,
	      "token resolves to alice at the current revision");
	free(user);
	CHECK(auth_tokens_lookup(tokens, "abcdefghijklmnop.x", 100, 9, 2000, &user, &revision, &wait_index) ==
	          AUTH_TOKEN_INVALID,
	      "malformed index");
	CHECK(auth_tokens_lookup(tokens, "nothere.1", 100, 9, 2000, &user, &revision, &wait_index) == AUTH_TOKEN_INVALID,
	      "unknown token");
	/* TTL 300 s from the last use (2000 ms). */
	CHECK(auth_tokens_expire(tokens, 2000 + 299999) == 0 && auth_tokens_expire(tokens, 2000 + 300000) == 1 &&
	          auth_tokens_count(tokens) == 0,
	      "expiry");
	/* Changing the password forgets the user's tokens, and so does disabling auth. */
	char *token = NULL;
	char error[256];
	CHECK(auth_tokens_assign(tokens, "alice", 1, "qqqqqqqqqqqqqqqq", 5, 0, &token, error, sizeof(error)) == 0, "%s",
	      error);
	free(token);
	CHECK(auth_tokens_assign(tokens, "root", 1, "rrrrrrrrrrrrrrrr", 5, 0, &token, error, sizeof(error)) == 0, "%s",
	      error);
	free(token);
	Etcdserverpb__AuthUserChangePasswordRequest change = ETCDSERVERPB__AUTH_USER_CHANGE_PASSWORD_REQUEST__INIT;
	change.name = "alice";
	change.password = "newpw";
	Etcdserverpb__InternalRaftRequest change_internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	change_internal.auth_user_change_password = &change;
	CHECK(is(apply_as_root(&change_internal), "") && auth_tokens_count(tokens) == 1 &&
	          auth_password_matches("newpw", auth_store_user(store, "alice")->password_hash),
	      "password change");
	CHECK(is(disable_as("alice"), "etcdserver: permission denied") && store->enabled, "alice cannot disable");
	uint64_t before = store->revision;
	CHECK(is(disable_as(AUTH_ROOT), "") && !store->enabled && store->revision == before + 1 &&
	          auth_tokens_count(tokens) == 0,
	      "disable moves the revision and forgets tokens");
	CHECK(is(disable_as(""), "") && store->revision == before + 1, "disable when disabled changes nothing");
	authenticate.name = "alice";
	CHECK(is(apply_as("", 0, &internal, NULL), "etcdserver: authentication is not enabled"), "authenticate disabled");
	/* Disabled: no checks, and root may go. */
	CHECK(is(can_put("", "anything"), ""), "no checks while disabled");
	CHECK(is(user_delete("root"), "") && is(user_delete("root"), "etcdserver: user name not found"), "delete root");
}

static void test_passwords(void)
{
	char *hash = NULL;
	char error[256];
	CHECK(auth_password_hash("s3cret", AUTH_BCRYPT_MIN_COST, &hash, error, sizeof(error)) == 0, "%s", error);
	CHECK(hash && strncmp(hash, "$2b$04$", 7) == 0, "libxcrypt's $2b$: %s", hash ? hash : "(none)");
	CHECK(auth_password_matches("s3cret", hash) && !auth_password_matches("s3creT", hash), "check");
	free(hash);
	/* What etcd (Go's bcrypt) stores. */
	CHECK(auth_password_matches("s3cret", "$2a$04$Iphm65rUsVPnaxKNQajb0uOEPl1vuDnoqnZ49fOT4qIDt9Fq.RUfW"),
	      "a Go bcrypt hash");
	CHECK(!auth_password_matches("s3cret", "") && !auth_password_matches("", "garbage"), "malformed hashes");
	CHECK(auth_bcrypt_cost(3) == 10 && auth_bcrypt_cost(32) == 10 && auth_bcrypt_cost(12) == 12, "costs");
}

static void write_key_file(const char *path, EVP_PKEY *key, bool private_part)
{
	FILE *file = fopen(path, "w");
	if (!file)
		return;
	if (private_part)
		PEM_write_PrivateKey(file, key, NULL, NULL, 0, NULL, NULL);
	else
		PEM_write_PUBKEY(file, key);
	fclose(file);
}

static void test_jwt(const char *directory)
{
	char error[256] = "";
	struct auth_tokens *jwt = NULL;
	CHECK(auth_tokens_open("jwt,sign-method=RS256", 0, &jwt, error, sizeof(error)) != 0 &&
	          is(error, "auth: missing key data"),
	      "no key: %s", error);
	CHECK(auth_tokens_open("jwt,sign-method=XX1,priv-key=/nope", 0, &jwt, error, sizeof(error)) != 0, "bad method");
	CHECK(auth_tokens_open("bogus", 0, &jwt, error, sizeof(error)) != 0 && is(error, "auth: invalid auth options"),
	      "unknown type: %s", error);
	CHECK(auth_tokens_open("simple,a=b=c", 0, &jwt, error, sizeof(error)) != 0, "malformed option");
	CHECK(auth_tokens_open("simple,ttl=1,ttl=2", 0, &jwt, error, sizeof(error)) != 0, "duplicate option");
	const char *methods[][2] = {{"RS256", "RSA"}, {"ES256", "EC"}};
	for (size_t m = 0; m < 2; m++) {
		EVP_PKEY *key = m == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
		                       : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		char private_path[256], public_path[256], options[768];
		snprintf(private_path, sizeof(private_path), "%s/%s.key", directory, methods[m][1]);
		snprintf(public_path, sizeof(public_path), "%s/%s.pub", directory, methods[m][1]);
		write_key_file(private_path, key, true);
		write_key_file(public_path, key, false);
		EVP_PKEY_free(key);
		snprintf(options, sizeof(options), "jwt,pub-key=%s,priv-key=%s,sign-method=%s", public_path, private_path,
		         methods[m][0]);
		CHECK(auth_tokens_open(options, 0, &jwt, error, sizeof(error)) == 0, "%s: %s", methods[m][0], error);
		if (!jwt)
			continue;
		char *token = NULL, *user = NULL;
		uint64_t revision = 0, wait_index = 0;
		CHECK(auth_tokens_assign(jwt, "alice", 42, "", 7, 0, &token, error, sizeof(error)) == 0, "%s", error);
		CHECK(token && auth_tokens_lookup(jwt, token, 0, 99, 0, &user, &revision, &wait_index) == AUTH_TOKEN_VALID &&
		          is(user, "alice") && revision == 42,
		      "%s: the token carries user and revision", methods[m][0]);
		free(user);
		user = NULL;
		/* Any change to the claims breaks the signature. */
		char *tampered = token ? strdup(token) : NULL;
		char *claims = tampered ? strchr(tampered, '.') + 1 : NULL;
		if (claims)
			claims[2] = claims[2] == 'A' ? 'B' : 'A';
		CHECK(tampered && auth_tokens_lookup(jwt, tampered, 0, 99, 0, &user, &revision, &wait_index) == AUTH_TOKEN_INVALID,
		      "%s: tampered", methods[m][0]);
		free(tampered);
		free(token);
		auth_tokens_close(jwt);
		jwt = NULL;
		/* A verify-only member (public key alone) checks tokens but cannot issue them. */
		snprintf(options, sizeof(options), "jwt,pub-key=%s,sign-method=%s", public_path, methods[m][0]);
		CHECK(auth_tokens_open(options, 0, &jwt, error, sizeof(error)) == 0, "%s verify only: %s", methods[m][0], error);
		if (jwt) {
			CHECK(auth_tokens_assign(jwt, "alice", 1, "", 1, 0, &token, error, sizeof(error)) != 0 &&
			          is(error, "auth: token signing attempted with verify-only key"),
			      "verify only: %s", error);
			auth_tokens_close(jwt);
			jwt = NULL;
		}
		/* ttl=0s: expired as soon as made. */
		snprintf(options, sizeof(options), "jwt,priv-key=%s,sign-method=%s,ttl=0s", private_path, methods[m][0]);
		CHECK(auth_tokens_open(options, 0, &jwt, error, sizeof(error)) == 0, "%s ttl: %s", methods[m][0], error);
		if (jwt) {
			CHECK(auth_tokens_assign(jwt, "alice", 1, "", 1, 0, &token, error, sizeof(error)) == 0, "%s", error);
			CHECK(auth_tokens_lookup(jwt, token, 0, 1, 0, &user, &revision, &wait_index) == AUTH_TOKEN_INVALID,
			      "%s: expired", methods[m][0]);
			free(token);
			auth_tokens_close(jwt);
			jwt = NULL;
		}
	}
}

int main(void)
{
	char directory[] = "/tmp/quorumd-auth-store-XXXXXX";
	if (!mkdtemp(directory))
		return 1;
	char error[256] = "";
	CHECK(state_open(directory, &state, error, sizeof(error)) == STATE_OK, "%s", error);
	CHECK(auth_store_load(state, &store, error, sizeof(error)) == 0, "%s", error);
	CHECK(auth_tokens_open("simple", 0, &tokens, error, sizeof(error)) == 0, "%s", error);
	if (state && store && tokens) {
		test_enable_and_revisions();
		test_admin_checks();
		test_key_permissions();
		test_role_delete_and_reload();
		test_authenticate_and_tokens();
		test_passwords();
		test_jwt(directory);
	}
	auth_store_release(store);
	auth_tokens_close(tokens);
	state_close(state);
	char command[128];
	snprintf(command, sizeof(command), "rm -rf %s", directory);
	if (system(command) != 0)
		failures++;
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
