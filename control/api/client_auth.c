/* control/api/client_auth.c: etcd's Auth service and the auth side of the other calls on a client thread.
 *
 * Tokens: a call's "token" metadata (or "authorization", etcd's gateway name) is resolved as etcd's
 * AuthInfoFromCtx does, where etcd does it: before a write is proposed (its user and the auth revision go
 * into the entry's header; apply checks them), before a read or a watch is served and before Snapshot,
 * Hash, HashKV and Defragment (checked here against the published store). A simple token of an entry
 * this member has not applied yet holds its call until it has (etcd's indexWaiter): the message is kept
 * and handed to its method again.
 *
 * The Auth service: every request goes through Raft, as in etcd 3.4 (reads of users and roles too).
 * UserAdd and UserChangePassword go by the bcrypt thread, which proposes them with the password's hash in
 * its place. Authenticate waits for a linearizable read point (so a user just added through another member
 * is known here), checks the password on the bcrypt thread, proposes the token's prefix, and starts over
 * if the auth store moved meanwhile — etcd's loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "client_internal.h"
#include "clock.h"
#include "log.h"
#include "raft_internal_fields.h"

static struct client_thread *thread_of(void *context)
{
	return context;
}

/* ---- held messages: a simple token of an index not applied here yet ---- */

static bool call_has_held(const struct client_thread *thread, uint64_t call_id)
{
	for (size_t k = 0; k < thread->held_count; k++)
		if (thread->held[k].call_id == call_id)
			return true;
	return false;
}

static void hold(struct client_thread *thread, struct grpc_call *call, client_message_fn on_message,
                 const uint8_t *message, size_t length, uint64_t wait_index)
{
	if (thread->held_count == thread->held_capacity) {
		thread->held_capacity = thread->held_capacity ? 2 * thread->held_capacity : 16;
		thread->held = xreallocarray(thread->held, thread->held_capacity, sizeof(struct held_message));
	}
	struct held_message *held = &thread->held[thread->held_count++];
	held->call_id = grpc_call_id(call);
	held->on_message = on_message;
	held->message = xmemdup(length ? message : (const uint8_t *)"", length ? length : 1);
	held->length = length;
	held->wait_index = wait_index;
	/* etcd waits for the index until the call's context ends, then finds the token invalid: at the client's
	 * grpc-timeout (client_auth_on_deadline, from the server's deadline) or after etcd's request timeout. */
	held->deadline_ms = clock_monotonic_ms() + 5000 + 2 * thread->node->flags.election_timeout_ms;
}

bool client_auth_queued_behind(struct client_thread *thread, struct grpc_call *call, client_message_fn on_message,
                               const uint8_t *message, size_t length)
{
	uint64_t call_id = grpc_call_id(call);
	if (thread->releasing_call_id == call_id || !call_has_held(thread, call_id))
		return false;
	hold(thread, call, on_message, message, length, 0);
	return true;
}

void client_auth_pump(struct client_thread *thread)
{
	if (thread->held_count) {
		uint64_t applied = atomic_load(&thread->node->applied_index), now = clock_monotonic_ms();
		/* In order; a message whose call still has an earlier one held stays behind it. */
		struct held_message *pending = thread->held;
		size_t count = thread->held_count;
		thread->held = NULL;
		thread->held_count = thread->held_capacity = 0;
		for (size_t k = 0; k < count; k++) {
			struct held_message *held = &pending[k];
			struct grpc_call *call = grpc_server_find_call(thread->server, held->call_id);
			bool blocked = false;
			for (size_t earlier = 0; earlier < thread->held_count && !blocked; earlier++)
				blocked = thread->held[earlier].call_id == held->call_id;
			if (!call) {
				free(held->message);
			} else if (!blocked && held->wait_index <= applied) {
				thread->releasing_call_id = held->call_id;
				held->on_message(thread, call, held->message, held->length);
				thread->releasing_call_id = 0;
				free(held->message);
			} else if (!blocked && now >= held->deadline_ms) {
				/* Handed back with its wait over: the token resolves as invalid, and the method answers that
				 * its own way (a unary call's error, a watch's canceled create). */
				thread->releasing_call_id = held->call_id;
				thread->releasing_expired = true;
				held->on_message(thread, call, held->message, held->length);
				thread->releasing_expired = false;
				thread->releasing_call_id = 0;
				free(held->message);
			} else {
				if (thread->held_count == thread->held_capacity) {
					thread->held_capacity = thread->held_capacity ? 2 * thread->held_capacity : 16;
					thread->held = xreallocarray(thread->held, thread->held_capacity, sizeof(struct held_message));
				}
				thread->held[thread->held_count++] = *held;
			}
		}
		free(pending);
	}
	/* Authentications whose client went away. */
	size_t kept = 0;
	for (size_t k = 0; k < thread->authentication_count; k++) {
		struct authentication *attempt = &thread->authentications[k];
		if (grpc_server_find_call(thread->server, attempt->call_id))
			thread->authentications[kept++] = *attempt;
		else
			free(attempt->message);
	}
	thread->authentication_count = kept;
}

void client_auth_on_deadline(void *context, struct grpc_call *call)
{
	struct client_thread *thread = thread_of(context);
	uint64_t call_id = grpc_call_id(call);
	bool held = false;
	for (size_t k = 0; k < thread->held_count; k++) {
		if (thread->held[k].call_id == call_id) {
			thread->held[k].deadline_ms = 0;
			held = true;
		}
	}
	if (held)
		client_auth_pump(thread);
}

void client_auth_close(struct client_thread *thread)
{
	for (size_t k = 0; k < thread->held_count; k++)
		free(thread->held[k].message);
	free(thread->held);
	thread->held = NULL;
	thread->held_count = thread->held_capacity = 0;
	for (size_t k = 0; k < thread->authentication_count; k++)
		free(thread->authentications[k].message);
	free(thread->authentications);
	thread->authentications = NULL;
	thread->authentication_count = thread->authentication_capacity = 0;
}

/* ---- tokens and certificates ---- */

enum client_auth_resolution client_auth_resolve(struct client_thread *thread, struct grpc_call *call,
                                                client_message_fn on_message, const uint8_t *message, size_t length,
                                                struct client_auth *auth)
{
	memset(auth, 0, sizeof(*auth));
	const char *token = grpc_call_header(call, "token");
	if (!token)
		token = grpc_call_header(call, "authorization");
	if (!token) {
		/* etcd's AuthInfoFromTLS: with --client-cert-auth, a call without a token is the user its verified
		 * client certificate names, unless the gRPC gateway made it (with a certificate of its own). */
		char common_name[256];
		if (thread->node->flags.client_cert_auth && !grpc_call_header(call, "grpcgateway-accept") &&
		    grpc_call_peer_common_name(call, common_name, sizeof(common_name))) {
			auth->identified = true;
			auth->user = xstrdup(common_name);
			auth->revision = node_auth_revision(&thread->node->auth);
		}
		return CLIENT_AUTH_RESOLVED;
	}
	uint64_t wait_index = 0;
	if (thread->releasing_expired && thread->releasing_call_id == grpc_call_id(call))
		return CLIENT_AUTH_INVALID;
	switch (node_auth_resolve_token(thread->node, token, &auth->user, &auth->revision, &wait_index)) {
	case AUTH_TOKEN_VALID:
		auth->identified = true;
		return CLIENT_AUTH_RESOLVED;
	case AUTH_TOKEN_PENDING:
		hold(thread, call, on_message, message, length, wait_index);
		return CLIENT_AUTH_HELD;
	case AUTH_TOKEN_INVALID:
	default: {
		char escaped[256];
		log_write("warn", "invalid auth token", "\"token\":\"%s\"", log_json_escape(token, escaped, sizeof(escaped)));
		return CLIENT_AUTH_INVALID;
	}
	}
}

bool client_auth_begin(struct client_thread *thread, struct grpc_call *call, client_message_fn on_message,
                       const uint8_t *message, size_t length, struct client_auth *auth)
{
	switch (client_auth_resolve(thread, call, on_message, message, length, auth)) {
	case CLIENT_AUTH_RESOLVED:
		return true;
	case CLIENT_AUTH_INVALID:
		grpc_call_finish(call, auth_status_grpc_code(AUTH_ERR_INVALID_AUTH_TOKEN),
		                 auth_status_text(AUTH_ERR_INVALID_AUTH_TOKEN));
		return false;
	case CLIENT_AUTH_HELD:
	default:
		return false;
	}
}

void client_auth_free(struct client_auth *auth)
{
	free(auth->user);
	auth->user = NULL;
}

static struct auth_info info_of(const struct client_auth *auth)
{
	struct auth_info info = {auth->identified ? auth->user : "", auth->identified ? auth->revision : 0};
	return info;
}

enum auth_status client_auth_range_status(struct client_thread *thread, const struct client_auth *auth,
                                          const uint8_t *key, size_t key_length, const uint8_t *range_end,
                                          size_t range_end_length)
{
	if (!node_auth_enabled(&thread->node->auth))
		return AUTH_OK;
	struct auth_store *store = node_auth_acquire(thread->node);
	struct auth_info info = info_of(auth);
	enum auth_status status = auth_range_permitted(store, &info, key, key_length, range_end, range_end_length);
	auth_store_release(store);
	return status;
}

bool client_auth_permits_range(struct client_thread *thread, struct grpc_call *call, const struct client_auth *auth,
                               const uint8_t *key, size_t key_length, const uint8_t *range_end, size_t range_end_length)
{
	enum auth_status status = client_auth_range_status(thread, auth, key, key_length, range_end, range_end_length);
	if (status == AUTH_OK)
		return true;
	grpc_call_finish(call, auth_status_grpc_code(status), auth_status_text(status));
	return false;
}

/* etcd's authMaintenanceServer returns the auth package's errors as they are: grpc-go makes them Unknown. */
static void finish_maintenance(struct grpc_call *call, enum auth_status status)
{
	grpc_call_finish(call, GRPC_UNKNOWN, auth_status_internal_text(status));
}

bool client_auth_begin_maintenance(struct client_thread *thread, struct grpc_call *call, client_message_fn on_message,
                                   const uint8_t *message, size_t length)
{
	struct client_auth auth;
	switch (client_auth_resolve(thread, call, on_message, message, length, &auth)) {
	case CLIENT_AUTH_HELD:
		return false;
	case CLIENT_AUTH_INVALID:
		finish_maintenance(call, AUTH_ERR_INVALID_AUTH_TOKEN);
		return false;
	case CLIENT_AUTH_RESOLVED:
	default:
		break;
	}
	enum auth_status status = AUTH_OK;
	if (node_auth_enabled(&thread->node->auth)) {
		struct auth_store *store = node_auth_acquire(thread->node);
		struct auth_info info = info_of(&auth);
		status = auth_admin_permitted(store, auth.identified ? &info : NULL);
		auth_store_release(store);
	}
	client_auth_free(&auth);
	if (status == AUTH_OK)
		return true;
	finish_maintenance(call, status);
	return false;
}

/* ---- proposals ---- */

/* internal (request set, header not) proposed for call, answered when applied; with work, by way of the
 * bcrypt thread. */
static void propose_internal(struct client_thread *thread, struct grpc_call *call, Etcdserverpb__InternalRaftRequest *internal,
                             const struct client_auth *auth, struct auth_work *work, enum waiting_kind kind)
{
	struct node_request *request = client_new_request(thread, REQUEST_PROPOSE);
	Etcdserverpb__RequestHeader header = ETCDSERVERPB__REQUEST_HEADER__INIT;
	header.id = request->request_id;
	if (auth && auth->identified) {
		header.username = auth->user;
		header.auth_revision = auth->revision;
	}
	internal->header = &header;
	request->payload_length = etcdserverpb__internal_raft_request__get_packed_size(internal);
	request->payload = xmalloc(request->payload_length ? request->payload_length : 1);
	etcdserverpb__internal_raft_request__pack(internal, request->payload);
	internal->header = NULL;
	if (request->payload_length > thread->node->flags.max_request_bytes) {
		node_request_free(request);
		auth_work_free(work);
		grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "etcdserver: request is too large");
		return;
	}
	client_wait(thread, request->request_id, grpc_call_id(call), kind);
	if (work) {
		work->proposal = request;
		node_auth_post(thread->node, work);
	} else {
		client_post_to_core(thread, request);
	}
}

/* The Auth requests that go through Raft as the client sent them, with the caller's token in the header. */
#define PROPOSED_AS_SENT(handler, message_name, field)                                                               \
	static void handler(void *context, struct grpc_call *call, const uint8_t *message, size_t length)                   \
	{                                                                                                                   \
		client_propose_as_sent(context, call, message, length, &etcdserverpb__##message_name##__descriptor, field,         \
		                       handler);                                                                                   \
	}

PROPOSED_AS_SENT(on_auth_enable, auth_enable_request, INTERNAL_RAFT_FIELD_AUTH_ENABLE)
PROPOSED_AS_SENT(on_auth_disable, auth_disable_request, INTERNAL_RAFT_FIELD_AUTH_DISABLE)
PROPOSED_AS_SENT(on_user_get, auth_user_get_request, INTERNAL_RAFT_FIELD_AUTH_USER_GET)
PROPOSED_AS_SENT(on_user_list, auth_user_list_request, INTERNAL_RAFT_FIELD_AUTH_USER_LIST)
PROPOSED_AS_SENT(on_user_delete, auth_user_delete_request, INTERNAL_RAFT_FIELD_AUTH_USER_DELETE)
PROPOSED_AS_SENT(on_user_grant_role, auth_user_grant_role_request, INTERNAL_RAFT_FIELD_AUTH_USER_GRANT_ROLE)
PROPOSED_AS_SENT(on_user_revoke_role, auth_user_revoke_role_request, INTERNAL_RAFT_FIELD_AUTH_USER_REVOKE_ROLE)
PROPOSED_AS_SENT(on_role_add, auth_role_add_request, INTERNAL_RAFT_FIELD_AUTH_ROLE_ADD)
PROPOSED_AS_SENT(on_role_get, auth_role_get_request, INTERNAL_RAFT_FIELD_AUTH_ROLE_GET)
PROPOSED_AS_SENT(on_role_list, auth_role_list_request, INTERNAL_RAFT_FIELD_AUTH_ROLE_LIST)
PROPOSED_AS_SENT(on_role_delete, auth_role_delete_request, INTERNAL_RAFT_FIELD_AUTH_ROLE_DELETE)
PROPOSED_AS_SENT(on_role_grant_permission, auth_role_grant_permission_request,
                 INTERNAL_RAFT_FIELD_AUTH_ROLE_GRANT_PERMISSION)
PROPOSED_AS_SENT(on_role_revoke_permission, auth_role_revoke_permission_request,
                 INTERNAL_RAFT_FIELD_AUTH_ROLE_REVOKE_PERMISSION)

/* UserAdd and UserChangePassword: the password never reaches the log, its hash does (made on the bcrypt
 * thread). A user without password, an empty name (refused by apply) or a hash the client made itself
 * (etcd 3.5's clients may) need no hashing. */
static void propose_password(struct client_thread *thread, struct grpc_call *call, client_message_fn self,
                             const uint8_t *message, size_t length, bool user_add)
{
	if (client_refuse_on_learner(thread, call))
		return;
	Etcdserverpb__AuthUserAddRequest *add = NULL;
	Etcdserverpb__AuthUserChangePasswordRequest *change = NULL;
	if (user_add)
		add = etcdserverpb__auth_user_add_request__unpack(NULL, length, message);
	else
		change = etcdserverpb__auth_user_change_password_request__unpack(NULL, length, message);
	if (!add && !change) {
		client_answer_malformed(call);
		return;
	}
	struct client_auth auth;
	if (!client_auth_begin(thread, call, self, message, length, &auth)) {
		etcdserverpb__auth_user_add_request__free_unpacked(add, NULL);
		etcdserverpb__auth_user_change_password_request__free_unpacked(change, NULL);
		return;
	}
	char **password = add ? &add->password : &change->password;
	const char *name = add ? add->name : change->name;
	const char *given_hash = add ? add->hashedpassword : change->hashedpassword;
	bool no_password = add && add->options && add->options->no_password;
	struct auth_work *work = NULL;
	if (!no_password && name && name[0] && !(given_hash && given_hash[0])) {
		work = xcalloc(1, sizeof(*work));
		work->kind = AUTH_WORK_HASH;
		work->password = xstrdup(*password ? *password : "");
	}
	/* The proposal leaves without the password; the bcrypt thread puts its hash in. */
	char *original = *password;
	*password = "";
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.auth_user_add = add;
	internal.auth_user_change_password = change;
	propose_internal(thread, call, &internal, &auth, work, WAITING_UNARY_KV);
	*password = original;
	etcdserverpb__auth_user_add_request__free_unpacked(add, NULL);
	etcdserverpb__auth_user_change_password_request__free_unpacked(change, NULL);
	client_auth_free(&auth);
}

static void on_user_add(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	propose_password(thread_of(context), call, on_user_add, message, length, true);
}

static void on_user_change_password(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	propose_password(thread_of(context), call, on_user_change_password, message, length, false);
}

/* ---- Authenticate ---- */

static struct authentication *authentication_of(struct client_thread *thread, uint64_t call_id)
{
	for (size_t k = 0; k < thread->authentication_count; k++)
		if (thread->authentications[k].call_id == call_id)
			return &thread->authentications[k];
	return NULL;
}

static void forget_authentication(struct client_thread *thread, uint64_t call_id)
{
	for (size_t k = 0; k < thread->authentication_count; k++) {
		if (thread->authentications[k].call_id != call_id)
			continue;
		free(thread->authentications[k].message);
		thread->authentications[k] = thread->authentications[--thread->authentication_count];
		return;
	}
}

static void finish_authentication(struct client_thread *thread, struct grpc_call *call, enum auth_status status)
{
	forget_authentication(thread, grpc_call_id(call));
	grpc_call_finish(call, auth_status_grpc_code(status), auth_status_text(status));
}

/* etcd's Authenticate starts with linearizableReadNotify: a read of one key through the read index. */
static void wait_for_read_point(struct client_thread *thread, struct grpc_call *call)
{
	Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
	range.key = (ProtobufCBinaryData){1, (uint8_t *)"\0"};
	range.count_only = true;
	struct node_request *request = client_new_request(thread, REQUEST_READ);
	request->payload_length = etcdserverpb__range_request__get_packed_size(&range);
	request->payload = xmalloc(request->payload_length);
	etcdserverpb__range_request__pack(&range, request->payload);
	client_wait(thread, request->request_id, grpc_call_id(call), WAITING_AUTHENTICATE_READ);
	client_post_to_core(thread, request);
}

static void on_authenticate(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	struct client_thread *thread = thread_of(context);
	if (client_refuse_on_learner(thread, call))
		return;
	Etcdserverpb__AuthenticateRequest *request = etcdserverpb__authenticate_request__unpack(NULL, length, message);
	if (!request) {
		client_answer_malformed(call);
		return;
	}
	etcdserverpb__authenticate_request__free_unpacked(request, NULL);
	if (thread->authentication_count == thread->authentication_capacity) {
		thread->authentication_capacity = thread->authentication_capacity ? 2 * thread->authentication_capacity : 8;
		thread->authentications =
		    xreallocarray(thread->authentications, thread->authentication_capacity, sizeof(struct authentication));
	}
	thread->authentications[thread->authentication_count++] = (struct authentication){
	    .call_id = grpc_call_id(call), .message = xmemdup(length ? message : (const uint8_t *)"", length ? length : 1),
	    .length = length};
	wait_for_read_point(thread, call);
}

static void log_refused(const char *user, enum auth_status status)
{
	char escaped_user[256], escaped_error[256];
	const char *text = status == AUTH_ERR_AUTH_FAILED ? "auth: authentication failed, invalid user ID or password"
	                                                  : auth_status_text(status);
	log_write("warn", "invalid authentication was requested", "\"user\":\"%s\",\"error\":\"%s\"",
	          log_json_escape(user, escaped_user, sizeof(escaped_user)),
	          log_json_escape(text, escaped_error, sizeof(escaped_error)));
}

/* The read point is applied here: etcd's CheckPassword against this member's store (on the bcrypt thread),
 * then the proposal of the token's prefix. */
static void check_password(struct client_thread *thread, struct grpc_call *call, struct authentication *attempt)
{
	Etcdserverpb__AuthenticateRequest *request =
	    etcdserverpb__authenticate_request__unpack(NULL, attempt->length, attempt->message);
	if (!request) {
		finish_authentication(thread, call, AUTH_ERR_AUTH_FAILED);
		return;
	}
	struct auth_store *store = node_auth_acquire(thread->node);
	const char *name = request->name ? request->name : "";
	const struct auth_user *user = auth_store_user(store, name);
	enum auth_status status = !store->enabled ? AUTH_ERR_AUTH_NOT_ENABLED
	                          : !user         ? AUTH_ERR_AUTH_FAILED
	                          : user->no_password ? AUTH_ERR_NO_PASSWORD_USER
	                                              : AUTH_OK;
	if (status != AUTH_OK) {
		if (status != AUTH_ERR_AUTH_NOT_ENABLED)
			log_refused(name, status);
		auth_store_release(store);
		etcdserverpb__authenticate_request__free_unpacked(request, NULL);
		finish_authentication(thread, call, status);
		return;
	}
	attempt->checked_revision = store->revision;
	char prefix[17];
	auth_tokens_prefix(thread->node->auth.tokens, prefix);
	Etcdserverpb__InternalAuthenticateRequest authenticate = ETCDSERVERPB__INTERNAL_AUTHENTICATE_REQUEST__INIT;
	authenticate.name = (char *)name;
	authenticate.simple_token = prefix;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.authenticate = &authenticate;
	struct auth_work *work = xcalloc(1, sizeof(*work));
	work->kind = AUTH_WORK_CHECK;
	work->password = xstrdup(request->password ? request->password : "");
	work->hash = xstrdup(user->password_hash);
	work->user = xstrdup(name);
	auth_store_release(store);
	propose_internal(thread, call, &internal, NULL, work, WAITING_AUTHENTICATE);
	etcdserverpb__authenticate_request__free_unpacked(request, NULL);
}

void client_auth_answer(struct client_thread *thread, struct grpc_call *call, const struct waiting_call *waiting,
                        const struct node_reply *reply)
{
	struct authentication *attempt = authentication_of(thread, waiting->call_id);
	if (!attempt) {
		grpc_call_finish(call, GRPC_INTERNAL, "etcdserver: authentication lost");
		return;
	}
	if (reply->kv.grpc_code != GRPC_OK) {
		forget_authentication(thread, waiting->call_id);
		grpc_call_finish(call, reply->kv.grpc_code, reply->kv.error);
		return;
	}
	if (waiting->kind == WAITING_AUTHENTICATE_READ) {
		check_password(thread, call, attempt);
		return;
	}
	/* The token was made; if the store changed since the password was checked, the check is stale. */
	if (attempt->checked_revision != node_auth_revision(&thread->node->auth)) {
		log_write("info", "revision when password checked became stale; retrying", NULL);
		wait_for_read_point(thread, call);
		return;
	}
	forget_authentication(thread, waiting->call_id);
	grpc_call_send(call, reply->kv.response, reply->kv.response_length);
	grpc_call_finish(call, GRPC_OK, NULL);
}

const struct grpc_method client_auth_methods[] = {
    {"/etcdserverpb.Auth/AuthEnable", GRPC_METHOD_UNARY, on_auth_enable, NULL},
    {"/etcdserverpb.Auth/AuthDisable", GRPC_METHOD_UNARY, on_auth_disable, NULL},
    {"/etcdserverpb.Auth/Authenticate", GRPC_METHOD_UNARY, on_authenticate, NULL},
    {"/etcdserverpb.Auth/UserAdd", GRPC_METHOD_UNARY, on_user_add, NULL},
    {"/etcdserverpb.Auth/UserGet", GRPC_METHOD_UNARY, on_user_get, NULL},
    {"/etcdserverpb.Auth/UserList", GRPC_METHOD_UNARY, on_user_list, NULL},
    {"/etcdserverpb.Auth/UserDelete", GRPC_METHOD_UNARY, on_user_delete, NULL},
    {"/etcdserverpb.Auth/UserChangePassword", GRPC_METHOD_UNARY, on_user_change_password, NULL},
    {"/etcdserverpb.Auth/UserGrantRole", GRPC_METHOD_UNARY, on_user_grant_role, NULL},
    {"/etcdserverpb.Auth/UserRevokeRole", GRPC_METHOD_UNARY, on_user_revoke_role, NULL},
    {"/etcdserverpb.Auth/RoleAdd", GRPC_METHOD_UNARY, on_role_add, NULL},
    {"/etcdserverpb.Auth/RoleGet", GRPC_METHOD_UNARY, on_role_get, NULL},
    {"/etcdserverpb.Auth/RoleList", GRPC_METHOD_UNARY, on_role_list, NULL},
    {"/etcdserverpb.Auth/RoleDelete", GRPC_METHOD_UNARY, on_role_delete, NULL},
    {"/etcdserverpb.Auth/RoleGrantPermission", GRPC_METHOD_UNARY, on_role_grant_permission, NULL},
    {"/etcdserverpb.Auth/RoleRevokePermission", GRPC_METHOD_UNARY, on_role_revoke_permission, NULL},
};
const size_t client_auth_method_count = sizeof(client_auth_methods) / sizeof(client_auth_methods[0]);
