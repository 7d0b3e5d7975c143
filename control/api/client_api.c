/* control/api/client_api.c: the client threads and etcd's unary RPCs (KV, Cluster, Maintenance, Lease).
 *
 * Each request is checked as etcd's v3rpc layer checks it (etcd's error texts), then becomes one
 * node_request. Writes are wrapped into an InternalRaftRequest by concatenating protobuf fields: the
 * client's message bytes go into the Raft entry as they came, with no decode-encode round. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "alloc.h"
#include "client_api.h"
#include "client_internal.h"
#include "clock.h"
#include "log.h"
#include "raft_internal.pb-c.h"
#include "raft_internal_fields.h"
#include "txn_check.h"

/* gRPC's allowance on top of --max-request-bytes for the message envelope (etcd: grpcOverheadBytes). */
enum { GRPC_OVERHEAD_BYTES = 512 * 1024 };

struct client_api {
	struct node *node;
	struct client_thread *threads;
	size_t thread_count;
	struct grpc_method *methods; /* the servers keep pointers into it */
	struct grpc_method_counters *method_counters; /* parallel to methods, shared by every thread's server */
	struct client_tls tls;       /* the servers share its context */
};

/* ---- the waiting table ---- */

static size_t slot_of(const struct waiting_table *table, uint64_t request_id)
{
	uint64_t mixed = request_id * UINT64_C(0x9E3779B97F4A7C15);
	return (size_t)(mixed >> 17) & (table->capacity - 1);
}

static void waiting_grow(struct waiting_table *table)
{
	struct waiting_table bigger = {0};
	bigger.capacity = table->capacity ? table->capacity * 2 : 1024;
	bigger.slots = xcalloc(bigger.capacity, sizeof(struct waiting_call));
	for (size_t k = 0; k < table->capacity; k++) {
		if (!table->slots[k].request_id)
			continue;
		size_t slot = slot_of(&bigger, table->slots[k].request_id);
		while (bigger.slots[slot].request_id)
			slot = (slot + 1) & (bigger.capacity - 1);
		bigger.slots[slot] = table->slots[k];
		bigger.count++;
	}
	free(table->slots);
	*table = bigger;
}

static void waiting_put(struct waiting_table *table, const struct waiting_call *call)
{
	if ((table->count + 1) * 2 > table->capacity)
		waiting_grow(table);
	size_t slot = slot_of(table, call->request_id);
	while (table->slots[slot].request_id)
		slot = (slot + 1) & (table->capacity - 1);
	table->slots[slot] = *call;
	table->count++;
}

/* Removes and returns the entry of request_id; false when nobody waits for it. */
static bool waiting_take(struct waiting_table *table, uint64_t request_id, struct waiting_call *out)
{
	if (!table->capacity)
		return false;
	size_t mask = table->capacity - 1, slot = slot_of(table, request_id);
	while (table->slots[slot].request_id != request_id) {
		if (!table->slots[slot].request_id)
			return false;
		slot = (slot + 1) & mask;
	}
	*out = table->slots[slot];
	table->count--;
	/* Backward shift: entries after the hole that may sit there move in, so lookups never stop early. */
	size_t hole = slot;
	for (size_t next = (hole + 1) & mask; table->slots[next].request_id; next = (next + 1) & mask) {
		size_t home = slot_of(table, table->slots[next].request_id);
		bool movable = hole <= next ? (home <= hole || home > next) : (home <= hole && home > next);
		if (movable) {
			table->slots[hole] = table->slots[next];
			hole = next;
		}
	}
	table->slots[hole].request_id = 0;
	return true;
}

/* A write or linearizable read whose answer has not come within etcd's request timeout (its proposal
 * was lost with a leader that vanished or stopped) is answered as etcd answers it, so the client
 * retries instead of waiting for its own deadline, or for ever without one. Unavailable: the write may
 * still commit, so the answer never says it failed for certain. A later reply finds nobody waiting. */
static void expire_waiting_requests(struct client_thread *thread, uint64_t now_ms)
{
	struct node *node = thread->node;
	uint64_t timeout = node_request_timeout_ms(node);
	uint64_t elected = atomic_load(&node->leader_elected_ms);
	uint64_t election_window = 2 * node->flags.election_timeout_ms;
	struct waiting_table *table = &thread->waiting;
	for (size_t slot = 0; slot < table->capacity; slot++) {
		struct waiting_call *waiting = &table->slots[slot];
		bool timed = waiting->kind == WAITING_UNARY_KV || waiting->kind == WAITING_AUTHENTICATE_READ ||
		             waiting->kind == WAITING_AUTHENTICATE;
		/* started_ms may be after now_ms: calls made in this turn, after the turn's clock was read. */
		if (!waiting->request_id || !timed || waiting->started_ms + timeout > now_ms)
			continue;
		/* etcd: a request that started in the two election timeouts before the current leader was elected
		 * was most likely lost with the previous leader. */
		bool leader_failed = elected != 0 && waiting->started_ms < elected &&
		                     waiting->started_ms + election_window > elected;
		struct waiting_call expired;
		uint64_t request_id = waiting->request_id;
		if (!waiting_take(table, request_id, &expired))
			continue;
		if (expired.proposal) {
			/* etcd_server_proposals_failed_total: etcd counts a proposal whose wait ran out. */
			atomic_fetch_sub_explicit(&node->proposals_pending, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&node->proposals_failed, 1, memory_order_relaxed);
		}
		slot--; /* the backward shift may have moved another entry into this slot */
		struct grpc_call *call = grpc_server_find_call(thread->server, expired.call_id);
		if (call)
			grpc_call_finish(call, GRPC_UNAVAILABLE,
			                 leader_failed ? "etcdserver: request timed out, possibly due to previous leader failure"
			                               : "etcdserver: request timed out");
	}
}

/* ---- helpers shared with client_streams.c ---- */

uint64_t client_new_request_id(struct client_thread *thread)
{
	return node_request_id(thread->node->member_id, thread->channel, thread->next_counter++);
}

struct node_request *client_new_request(struct client_thread *thread, enum node_request_kind kind)
{
	struct node_request *request = xcalloc(1, sizeof(*request));
	request->kind = kind;
	request->request_id = client_new_request_id(thread);
	return request;
}

void client_wait(struct client_thread *thread, uint64_t request_id, uint64_t call_id, enum waiting_kind kind)
{
	struct waiting_call waiting = {.request_id = request_id, .call_id = call_id, .kind = kind,
	                               .started_ms = clock_monotonic_ms()};
	waiting_put(&thread->waiting, &waiting);
}

void client_wait_read(struct client_thread *thread, uint64_t request_id, uint64_t call_id, uint64_t auth_revision)
{
	struct waiting_call waiting = {.request_id = request_id, .call_id = call_id, .kind = WAITING_UNARY_KV,
	                               .started_ms = clock_monotonic_ms(), .auth_revision = auth_revision};
	waiting_put(&thread->waiting, &waiting);
}

void client_post_to_core(struct client_thread *thread, struct node_request *request)
{
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = CORE_MAIL_REQUEST;
	mail->request = request;
	core_mailbox_post(&thread->node->core_inbox, mail);
}

void client_post_to_storage(struct client_thread *thread, struct node_request *request)
{
	struct storage_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = request->kind == REQUEST_READ ? STORAGE_MAIL_READ_NOW : STORAGE_MAIL_CLIENT_REQUEST;
	mail->request = request;
	storage_mailbox_post(&thread->node->storage_inbox, mail);
}

void client_answer(struct grpc_call *call, const ProtobufCMessage *message)
{
	size_t length = protobuf_c_message_get_packed_size(message);
	uint8_t stack[512];
	uint8_t *bytes = length <= sizeof(stack) ? stack : xmalloc(length);
	protobuf_c_message_pack(message, bytes);
	grpc_call_send(call, bytes, length);
	grpc_call_finish(call, GRPC_OK, NULL);
	if (bytes != stack)
		free(bytes);
}

void client_answer_malformed(struct grpc_call *call)
{
	grpc_call_finish(call, GRPC_INTERNAL, "grpc: error unmarshalling request: unexpected EOF");
}

static struct client_thread *thread_of(void *context)
{
	return context;
}

/* ---- KV ---- */

static size_t put_varint(uint8_t *out, uint64_t value)
{
	size_t length = 0;
	while (value >= 0x80) {
		out[length++] = (uint8_t)(value | 0x80);
		value >>= 7;
	}
	out[length++] = (uint8_t)value;
	return length;
}

/* InternalRaftRequest{header: {ID: request_id, username, auth_revision}, <field>: message} built from the
 * message's own bytes. */
static uint8_t *wrap_internal(uint64_t request_id, const struct client_auth *auth, enum internal_raft_request_field field,
                              const uint8_t *message, size_t message_length, size_t *length)
{
	size_t user_length = auth && auth->identified ? strlen(auth->user) : 0;
	uint8_t header_stack[64];
	uint8_t *header = 48 + user_length <= sizeof(header_stack) ? header_stack : xmalloc(48 + user_length);
	uint8_t *bytes = xmalloc(message_length + user_length + 80);
	size_t header_length = 0;
	header_length += put_varint(header, PROTOBUF_TAG(REQUEST_HEADER_FIELD_ID, PROTOBUF_WIRE_VARINT));
	header_length += put_varint(header + header_length, request_id);
	if (auth && auth->identified) {
		if (user_length) {
			header_length += put_varint(header + header_length,
			                            PROTOBUF_TAG(REQUEST_HEADER_FIELD_USERNAME, PROTOBUF_WIRE_LENGTH_DELIMITED));
			header_length += put_varint(header + header_length, user_length);
			memcpy(header + header_length, auth->user, user_length);
			header_length += user_length;
		}
		if (auth->revision) {
			header_length += put_varint(header + header_length,
			                            PROTOBUF_TAG(REQUEST_HEADER_FIELD_AUTH_REVISION, PROTOBUF_WIRE_VARINT));
			header_length += put_varint(header + header_length, auth->revision);
		}
	}
	size_t at = 0;
	at += put_varint(bytes + at, PROTOBUF_TAG(INTERNAL_RAFT_FIELD_HEADER, PROTOBUF_WIRE_LENGTH_DELIMITED));
	at += put_varint(bytes + at, header_length);
	memcpy(bytes + at, header, header_length);
	at += header_length;
	if (header != header_stack)
		free(header);
	at += put_varint(bytes + at, PROTOBUF_TAG(field, PROTOBUF_WIRE_LENGTH_DELIMITED));
	at += put_varint(bytes + at, message_length);
	if (message_length)
		memcpy(bytes + at, message, message_length);
	*length = at + message_length;
	return bytes;
}

void client_propose(struct client_thread *thread, struct grpc_call *call, const struct client_auth *auth,
                    enum internal_raft_request_field field, const uint8_t *message, size_t length)
{
	struct node_request *request = client_new_request(thread, REQUEST_PROPOSE);
	request->payload = wrap_internal(request->request_id, auth, field, message, length, &request->payload_length);
	/* etcd measures the Raft entry (the request inside its InternalRaftRequest), not the request alone. */
	if (request->payload_length > thread->node->flags.max_request_bytes) {
		node_request_free(request);
		grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "etcdserver: request is too large");
		return;
	}
	/* etcd_server_proposals_pending: etcd counts a proposal from its start to its answer or timeout. */
	struct waiting_call waiting = {.request_id = request->request_id, .call_id = grpc_call_id(call),
	                               .kind = WAITING_UNARY_KV, .started_ms = clock_monotonic_ms(), .proposal = true};
	waiting_put(&thread->waiting, &waiting);
	atomic_fetch_add_explicit(&thread->node->proposals_pending, 1, memory_order_relaxed);
	client_post_to_core(thread, request);
}

/* A request that would change the cluster: refused on a learner, answered as malformed when it does not
 * decode. The decoded message, or NULL when the call was answered. */
static ProtobufCMessage *decode_change(struct client_thread *thread, struct grpc_call *call,
                                       const ProtobufCMessageDescriptor *descriptor, const uint8_t *message,
                                       size_t length)
{
	if (client_refuse_on_learner(thread, call))
		return NULL;
	ProtobufCMessage *decoded = protobuf_c_message_unpack(descriptor, NULL, length, message);
	if (!decoded)
		client_answer_malformed(call);
	return decoded;
}

/* The client's own bytes proposed once its token resolved; on_message runs again if the token was held
 * behind an entry this member has not applied yet. */
static void propose_authorized(struct client_thread *thread, struct grpc_call *call, client_message_fn on_message,
                               enum internal_raft_request_field field, const uint8_t *message, size_t length)
{
	struct client_auth auth;
	if (!client_auth_begin(thread, call, on_message, message, length, &auth))
		return;
	client_propose(thread, call, &auth, field, message, length);
	client_auth_free(&auth);
}

void client_propose_as_sent(void *context, struct grpc_call *call, const uint8_t *message, size_t length,
                            const ProtobufCMessageDescriptor *descriptor, enum internal_raft_request_field field,
                            client_message_fn self)
{
	struct client_thread *thread = thread_of(context);
	ProtobufCMessage *decoded = decode_change(thread, call, descriptor, message, length);
	if (!decoded)
		return;
	protobuf_c_message_free_unpacked(decoded, NULL);
	propose_authorized(thread, call, self, field, message, length);
}

/* etcd's quotaKVServer and quotaLeaseServer: before a Put, Txn or LeaseGrant is even checked, a member
 * whose state would reach the quota with it refuses it and raises its NOSPACE alarm through Raft. */
static bool client_refuse_for_space(struct client_thread *thread, struct grpc_call *call, int64_t cost)
{
	if (!node_refuse_for_space(thread->node, cost, client_new_request_id(thread), &thread->nospace_raised_ms))
		return false;
	grpc_call_finish(call, SPACE_QUOTA_GRPC_CODE, SPACE_QUOTA_ERROR);
	return true;
}

static void on_range(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	struct client_thread *thread = thread_of(context);
	Etcdserverpb__RangeRequest *range = etcdserverpb__range_request__unpack(NULL, length, message);
	if (!range) {
		client_answer_malformed(call);
		return;
	}
	bool serializable = range->serializable;
	if (!serializable && client_refuse_on_learner(thread, call)) {
		etcdserverpb__range_request__free_unpacked(range, NULL);
		return;
	}
	bool empty_key = range->key.len == 0;
	/* etcd 3.4 takes an unknown sort order as "sort nothing" but would crash on an unknown target;
	 * that one is refused as etcd 3.5 does. */
	bool bad_sort = range->sort_target > ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE;
	if (empty_key || bad_sort) {
		etcdserverpb__range_request__free_unpacked(range, NULL);
		grpc_call_finish(call, GRPC_INVALID_ARGUMENT,
		                 empty_key ? "etcdserver: key is not provided" : "etcdserver: invalid sort option");
		return;
	}
	/* etcd checks a read against the auth store of the moment, then refuses the answer if the store moved
	 * while it was read. */
	struct client_auth auth;
	if (!client_auth_begin(thread, call, on_range, message, length, &auth)) {
		etcdserverpb__range_request__free_unpacked(range, NULL);
		return;
	}
	bool permitted = client_auth_permits_range(thread, call, &auth, range->key.data, range->key.len,
	                                           range->range_end.data, range->range_end.len);
	etcdserverpb__range_request__free_unpacked(range, NULL);
	uint64_t auth_revision = auth.identified ? auth.revision : 0;
	client_auth_free(&auth);
	if (!permitted)
		return;
	struct node_request *request = client_new_request(thread, REQUEST_READ);
	request->serializable = serializable;
	request->payload = xmalloc(length ? length : 1);
	if (length)
		memcpy(request->payload, message, length);
	request->payload_length = length;
	client_wait_read(thread, request->request_id, grpc_call_id(call), auth_revision);
	/* Serializable: this member's applied state, no Raft round (etcd's --consistency=s). */
	if (serializable)
		client_post_to_storage(thread, request);
	else
		client_post_to_core(thread, request);
}

static void on_put(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	Etcdserverpb__PutRequest *put = etcdserverpb__put_request__unpack(NULL, length, message);
	if (!put) {
		client_answer_malformed(call);
		return;
	}
	if (client_refuse_for_space(thread_of(context), call, space_quota_cost_put(put))) {
		etcdserverpb__put_request__free_unpacked(put, NULL);
		return;
	}
	const char *problem = NULL;
	if (put->key.len == 0)
		problem = "etcdserver: key is not provided";
	else if (put->ignore_value && put->value.len != 0)
		problem = "etcdserver: value is provided";
	else if (put->ignore_lease && put->lease != 0)
		problem = "etcdserver: lease is provided";
	etcdserverpb__put_request__free_unpacked(put, NULL);
	if (problem) {
		grpc_call_finish(call, GRPC_INVALID_ARGUMENT, problem);
		return;
	}
	propose_authorized(thread_of(context), call, on_put, INTERNAL_RAFT_FIELD_PUT, message, length);
}

static void on_delete_range(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	Etcdserverpb__DeleteRangeRequest *delete_range = etcdserverpb__delete_range_request__unpack(NULL, length, message);
	if (!delete_range) {
		client_answer_malformed(call);
		return;
	}
	bool empty_key = delete_range->key.len == 0;
	etcdserverpb__delete_range_request__free_unpacked(delete_range, NULL);
	if (empty_key) {
		grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "etcdserver: key is not provided");
		return;
	}
	propose_authorized(thread_of(context), call, on_delete_range, INTERNAL_RAFT_FIELD_DELETE_RANGE, message, length);
}

static void on_txn(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	Etcdserverpb__TxnRequest *txn = etcdserverpb__txn_request__unpack(NULL, length, message);
	if (!txn) {
		client_answer_malformed(call);
		return;
	}
	if (client_refuse_for_space(thread_of(context), call, space_quota_cost_txn(txn))) {
		etcdserverpb__txn_request__free_unpacked(txn, NULL);
		return;
	}
	char problem[96];
	int code = kv_txn_check(txn, KV_MAX_TXN_OPERATIONS, problem, sizeof(problem));
	etcdserverpb__txn_request__free_unpacked(txn, NULL);
	if (code != GRPC_OK) {
		grpc_call_finish(call, code, problem);
		return;
	}
	propose_authorized(thread_of(context), call, on_txn, INTERNAL_RAFT_FIELD_TXN, message, length);
}

static void on_compact(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	client_propose_as_sent(context, call, message, length, &etcdserverpb__compaction_request__descriptor,
	                       INTERNAL_RAFT_FIELD_COMPACTION, on_compact);
}

/* ---- Lease (unary) ---- */

static void on_lease_grant(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	struct client_thread *thread = thread_of(context);
	Etcdserverpb__LeaseGrantRequest *grant = etcdserverpb__lease_grant_request__unpack(NULL, length, message);
	if (!grant) {
		client_answer_malformed(call);
		return;
	}
	if (client_refuse_for_space(thread, call, SPACE_QUOTA_LEASE_COST)) {
		etcdserverpb__lease_grant_request__free_unpacked(grant, NULL);
		return;
	}
	if (grant->ttl > KV_LEASE_MAX_TTL) {
		etcdserverpb__lease_grant_request__free_unpacked(grant, NULL);
		grpc_call_finish(call, GRPC_OUT_OF_RANGE, "etcdserver: too large lease TTL");
		return;
	}
	struct client_auth auth;
	if (!client_auth_begin(thread, call, on_lease_grant, message, length, &auth)) {
		etcdserverpb__lease_grant_request__free_unpacked(grant, NULL);
		return;
	}
	const struct node_flags *flags = &thread->node->flags;
	grant->ttl = kv_lease_clamp_ttl(
	    grant->ttl, kv_lease_min_ttl((int64_t)flags->heartbeat_interval_ms, (int64_t)flags->election_timeout_ms));
	/* The member that takes the request picks the ID, as etcd does before proposing. */
	if (grant->id == 0)
		grant->id = (int64_t)(client_new_request_id(thread) & (UINT64_MAX >> 1));
	size_t packed_length = etcdserverpb__lease_grant_request__get_packed_size(grant);
	uint8_t packed[64];
	etcdserverpb__lease_grant_request__pack(grant, packed);
	etcdserverpb__lease_grant_request__free_unpacked(grant, NULL);
	client_propose(thread, call, &auth, INTERNAL_RAFT_FIELD_LEASE_GRANT, packed, packed_length);
	client_auth_free(&auth);
}

static void on_lease_revoke(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	client_propose_as_sent(context, call, message, length, &etcdserverpb__lease_revoke_request__descriptor,
	                       INTERNAL_RAFT_FIELD_LEASE_REVOKE, on_lease_revoke);
}

static void ask_storage(struct client_thread *thread, struct grpc_call *call, enum node_request_kind kind,
                        const uint8_t *message, size_t length)
{
	struct node_request *request = client_new_request(thread, kind);
	request->payload = xmalloc(length ? length : 1);
	if (length)
		memcpy(request->payload, message, length);
	request->payload_length = length;
	client_wait(thread, request->request_id, grpc_call_id(call), WAITING_UNARY_KV);
	client_post_to_storage(thread, request);
}

static void on_lease_time_to_live(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	Etcdserverpb__LeaseTimeToLiveRequest *ttl = etcdserverpb__lease_time_to_live_request__unpack(NULL, length, message);
	if (!ttl) {
		client_answer_malformed(call);
		return;
	}
	struct client_thread *thread = thread_of(context);
	struct node_request *request = client_new_request(thread, REQUEST_LEASE_TIME_TO_LIVE);
	request->lease_id = ttl->id;
	etcdserverpb__lease_time_to_live_request__free_unpacked(ttl, NULL);
	request->payload = xmalloc(length ? length : 1);
	if (length)
		memcpy(request->payload, message, length);
	request->payload_length = length;
	client_wait(thread, request->request_id, grpc_call_id(call), WAITING_UNARY_KV);
	/* The time left is the leader's clock: the core asks it, then the storage thread adds the keys. */
	client_post_to_core(thread, request);
}

static void on_lease_leases(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	ask_storage(thread_of(context), call, REQUEST_LEASE_LEASES, message, length);
}

/* ---- Cluster ---- */

static void member_request(struct client_thread *thread, struct grpc_call *call, struct node_request *request,
                           enum waiting_kind kind)
{
	client_wait(thread, request->request_id, grpc_call_id(call), kind);
	client_post_to_core(thread, request);
}

static bool copy_urls(struct node_request *request, char **urls, size_t count)
{
	if (count == 0)
		return false;
	request->peer_urls = xcalloc(count, sizeof(char *));
	for (size_t k = 0; k < count; k++)
		request->peer_urls[request->peer_urls_count++] = strdup(urls[k]);
	return true;
}

static void on_member_add(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	struct client_thread *thread = thread_of(context);
	Etcdserverpb__MemberAddRequest *add = etcdserverpb__member_add_request__unpack(NULL, length, message);
	if (!add) {
		client_answer_malformed(call);
		return;
	}
	struct node_request *request = client_new_request(thread, REQUEST_MEMBER_ADD);
	bool has_urls = copy_urls(request, add->peerurls, add->n_peerurls);
	request->is_learner = add->islearner;
	etcdserverpb__member_add_request__free_unpacked(add, NULL);
	if (!has_urls) {
		node_request_free(request);
		grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "member peer urls not provided");
		return;
	}
	member_request(thread, call, request, WAITING_MEMBER_ADD);
}

/* MemberRemove, MemberPromote and MoveLeader carry one thing, a member's ID, as the uint64 field 1 of
 * their request: one decoder for the three. */
static void member_id_request(void *context, struct grpc_call *call, const uint8_t *message, size_t length,
                              const ProtobufCMessageDescriptor *descriptor, enum node_request_kind kind,
                              enum waiting_kind waiting)
{
	struct client_thread *thread = thread_of(context);
	ProtobufCMessage *decoded = decode_change(thread, call, descriptor, message, length);
	if (!decoded)
		return;
	const ProtobufCFieldDescriptor *field = protobuf_c_message_descriptor_get_field(descriptor, 1);
	struct node_request *request = client_new_request(thread, kind);
	memcpy(&request->member_id, (const char *)decoded + field->offset, sizeof(uint64_t));
	protobuf_c_message_free_unpacked(decoded, NULL);
	member_request(thread, call, request, waiting);
}

static void on_member_remove(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	member_id_request(context, call, message, length, &etcdserverpb__member_remove_request__descriptor,
	                  REQUEST_MEMBER_REMOVE, WAITING_MEMBER_REMOVE);
}

static void on_member_update(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	struct client_thread *thread = thread_of(context);
	Etcdserverpb__MemberUpdateRequest *update = etcdserverpb__member_update_request__unpack(NULL, length, message);
	if (!update) {
		client_answer_malformed(call);
		return;
	}
	struct node_request *request = client_new_request(thread, REQUEST_MEMBER_UPDATE);
	request->member_id = update->id;
	bool has_urls = copy_urls(request, update->peerurls, update->n_peerurls);
	etcdserverpb__member_update_request__free_unpacked(update, NULL);
	if (!has_urls) {
		node_request_free(request);
		grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "member peer urls not provided");
		return;
	}
	member_request(thread, call, request, WAITING_MEMBER_UPDATE);
}

static void on_member_list(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	(void)message;
	(void)length;
	struct client_thread *thread = thread_of(context);
	member_request(thread, call, client_new_request(thread, REQUEST_MEMBER_LIST), WAITING_MEMBER_LIST);
}

static void on_member_promote(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	member_id_request(context, call, message, length, &etcdserverpb__member_promote_request__descriptor,
	                  REQUEST_MEMBER_PROMOTE, WAITING_MEMBER_PROMOTE);
}

/* ---- Maintenance ---- */

static void on_status(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)message;
	(void)length;
	struct client_thread *thread = thread_of(context);
	member_request(thread, call, client_new_request(thread, REQUEST_STATUS), WAITING_STATUS);
}

static void on_move_leader(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	member_id_request(context, call, message, length, &etcdserverpb__move_leader_request__descriptor,
	                  REQUEST_MOVE_LEADER, WAITING_MOVE_LEADER);
}

static void on_hash_kv(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	Etcdserverpb__HashKVRequest *hash = etcdserverpb__hash_kvrequest__unpack(NULL, length, message);
	if (!hash) {
		client_answer_malformed(call);
		return;
	}
	etcdserverpb__hash_kvrequest__free_unpacked(hash, NULL);
	if (client_auth_begin_maintenance(thread_of(context), call, on_hash_kv, message, length))
		ask_storage(thread_of(context), call, REQUEST_HASH_KV, message, length);
}

/* etcd proposes every alarm request, GET included: the applier answers it from the replicated alarms
 * (space_quota.h). */
static void on_alarm(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	client_propose_as_sent(context, call, message, length, &etcdserverpb__alarm_request__descriptor,
	                       INTERNAL_RAFT_FIELD_ALARM, on_alarm);
}

/* RocksDB gives space back by compacting: the storage thread compacts the whole key space (so compacted
 * history goes), off this thread; the answer waits for it however long it takes, as etcd's defrag. */
static void on_defragment(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	struct client_thread *thread = thread_of(context);
	if (!client_auth_begin_maintenance(thread, call, on_defragment, message, length))
		return;
	struct node_request *request = client_new_request(thread, REQUEST_DEFRAGMENT);
	client_wait(thread, request->request_id, grpc_call_id(call), WAITING_DEFRAGMENT);
	client_post_to_storage(thread, request);
}

/* etcd 3.4 serves a learner only Status and serializable Range (isRPCSupportedForLearner). */
static const char LEARNER_REFUSAL[] = "etcdserver: rpc not supported for learner";

bool client_refuse_on_learner(struct client_thread *thread, struct grpc_call *call)
{
	if (!atomic_load(&thread->node->is_learner))
		return false;
	grpc_call_finish(call, GRPC_UNAVAILABLE, LEARNER_REFUSAL);
	return true;
}

static const struct grpc_method unary_methods[] = {
    {"/etcdserverpb.KV/Range", GRPC_METHOD_UNARY, on_range, NULL},
    {"/etcdserverpb.KV/Put", GRPC_METHOD_UNARY, on_put, NULL},
    {"/etcdserverpb.KV/DeleteRange", GRPC_METHOD_UNARY, on_delete_range, NULL},
    {"/etcdserverpb.KV/Txn", GRPC_METHOD_UNARY, on_txn, NULL},
    {"/etcdserverpb.KV/Compact", GRPC_METHOD_UNARY, on_compact, NULL},
    {"/etcdserverpb.Lease/LeaseGrant", GRPC_METHOD_UNARY, on_lease_grant, NULL},
    {"/etcdserverpb.Lease/LeaseRevoke", GRPC_METHOD_UNARY, on_lease_revoke, NULL},
    {"/etcdserverpb.Lease/LeaseTimeToLive", GRPC_METHOD_UNARY, on_lease_time_to_live, NULL},
    {"/etcdserverpb.Lease/LeaseLeases", GRPC_METHOD_UNARY, on_lease_leases, NULL},
    {"/etcdserverpb.Cluster/MemberAdd", GRPC_METHOD_UNARY, on_member_add, NULL},
    {"/etcdserverpb.Cluster/MemberRemove", GRPC_METHOD_UNARY, on_member_remove, NULL},
    {"/etcdserverpb.Cluster/MemberUpdate", GRPC_METHOD_UNARY, on_member_update, NULL},
    {"/etcdserverpb.Cluster/MemberList", GRPC_METHOD_UNARY, on_member_list, NULL},
    {"/etcdserverpb.Cluster/MemberPromote", GRPC_METHOD_UNARY, on_member_promote, NULL},
    {"/etcdserverpb.Maintenance/Status", GRPC_METHOD_UNARY, on_status, NULL},
    {"/etcdserverpb.Maintenance/MoveLeader", GRPC_METHOD_UNARY, on_move_leader, NULL},
    {"/etcdserverpb.Maintenance/HashKV", GRPC_METHOD_UNARY, on_hash_kv, NULL},
    {"/etcdserverpb.Maintenance/Alarm", GRPC_METHOD_UNARY, on_alarm, NULL},
    {"/etcdserverpb.Maintenance/Defragment", GRPC_METHOD_UNARY, on_defragment, NULL},
};

/* ---- replies: JSON results of the core's member operations as etcd's messages ---- */

static uint64_t hex_field(json_t *object, const char *name)
{
	const char *text = json_string_value(json_object_get(object, name));
	return text ? strtoull(text, NULL, 16) : 0;
}

static void header_from_json(json_t *json, Etcdserverpb__ResponseHeader *header)
{
	json_t *object = json_object_get(json, "header");
	header->cluster_id = hex_field(object, "cluster_id");
	header->member_id = hex_field(object, "member_id");
	header->revision = json_integer_value(json_object_get(object, "revision"));
	header->raft_term = (uint64_t)json_integer_value(json_object_get(object, "raft_term"));
}

/* Members decoded from JSON; strings point into the JSON, which must outlive them. */
struct member_array {
	Etcdserverpb__Member *members;
	Etcdserverpb__Member **pointers;
	char ***url_lists;
	size_t count;
};

static char **string_list(json_t *array, size_t *count)
{
	*count = json_array_size(array);
	char **list = xcalloc(*count ? *count : 1, sizeof(char *));
	for (size_t k = 0; k < *count; k++)
		list[k] = (char *)json_string_value(json_array_get(array, k));
	return list;
}

static void member_proto_from_json(json_t *object, Etcdserverpb__Member *member, char ***lists)
{
	etcdserverpb__member__init(member);
	member->id = hex_field(object, "id");
	const char *name = json_string_value(json_object_get(object, "name"));
	member->name = (char *)(name ? name : "");
	lists[0] = member->peerurls = string_list(json_object_get(object, "peer_urls"), &member->n_peerurls);
	lists[1] = member->clienturls = string_list(json_object_get(object, "client_urls"), &member->n_clienturls);
	member->islearner = json_is_true(json_object_get(object, "is_learner"));
}

static struct member_array members_from_json(json_t *array)
{
	struct member_array out = {0};
	out.count = json_array_size(array);
	out.members = xcalloc(out.count + 1, sizeof(Etcdserverpb__Member));
	out.pointers = xcalloc(out.count + 1, sizeof(Etcdserverpb__Member *));
	out.url_lists = xcalloc(2 * (out.count + 1), sizeof(char **));
	for (size_t k = 0; k < out.count; k++) {
		member_proto_from_json(json_array_get(array, k), &out.members[k], &out.url_lists[2 * k]);
		out.pointers[k] = &out.members[k];
	}
	return out;
}

static void member_array_free(struct member_array *array)
{
	for (size_t k = 0; k < 2 * (array->count + 1); k++)
		free(array->url_lists[k]);
	free(array->url_lists);
	free(array->members);
	free(array->pointers);
}

static void answer_members(struct client_thread *thread, struct grpc_call *call, enum waiting_kind kind, json_t *json)
{
	Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	header_from_json(json, &header);
	/* etcd's Cluster service fills cluster, member and term only (its header() has no revision), and the
	 * member is the one answering, not the one whose core made the result (a change is the leader's). */
	header.revision = 0;
	header.member_id = thread->node->member_id;
	struct member_array members = members_from_json(json_object_get(json, "members"));
	switch (kind) {
	case WAITING_MEMBER_ADD: {
		Etcdserverpb__MemberAddResponse response = ETCDSERVERPB__MEMBER_ADD_RESPONSE__INIT;
		Etcdserverpb__Member added;
		char **lists[2] = {NULL, NULL};
		member_proto_from_json(json_object_get(json, "member"), &added, lists);
		response.header = &header;
		response.member = &added;
		response.n_members = members.count;
		response.members = members.pointers;
		client_answer(call, &response.base);
		free(lists[0]);
		free(lists[1]);
		break;
	}
	default: {
		/* MemberRemove, MemberUpdate, MemberPromote and MemberList responses are one message under four
		 * names (header = 1, members = 2): the MemberList form packs to the same bytes for each. */
		Etcdserverpb__MemberListResponse response = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
		response.header = &header;
		response.n_members = members.count;
		response.members = members.pointers;
		client_answer(call, &response.base);
		break;
	}
	}
	member_array_free(&members);
}

static void answer_status(struct grpc_call *call, json_t *json)
{
	Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	header_from_json(json, &header);
	Etcdserverpb__StatusResponse response = ETCDSERVERPB__STATUS_RESPONSE__INIT;
	response.header = &header;
	response.version = (char *)json_string_value(json_object_get(json, "version"));
	response.dbsize = json_integer_value(json_object_get(json, "db_size"));
	response.dbsizeinuse = response.dbsize;
	response.leader = hex_field(json, "leader");
	response.raftindex = (uint64_t)json_integer_value(json_object_get(json, "raft_index"));
	response.raftterm = (uint64_t)json_integer_value(json_object_get(json, "raft_term"));
	response.raftappliedindex = (uint64_t)json_integer_value(json_object_get(json, "raft_applied_index"));
	response.islearner = json_is_true(json_object_get(json, "is_learner"));
	size_t error_count = 0;
	response.errors = string_list(json_object_get(json, "errors"), &error_count);
	response.n_errors = error_count;
	client_answer(call, &response.base);
	free(response.errors);
}

static void answer(struct client_thread *thread, struct node_reply *reply)
{
	if (reply->call_id) {
		/* One more message of a stream (Watch, LeaseKeepAlive). */
		struct grpc_call *call = grpc_server_find_call(thread->server, reply->call_id);
		if (!call)
			return;
		if (reply->kv.response)
			grpc_call_send(call, reply->kv.response, reply->kv.response_length);
		if (reply->end_call)
			grpc_call_finish(call, reply->kv.grpc_code, reply->kv.error[0] ? reply->kv.error : NULL);
		return;
	}
	struct waiting_call waiting;
	if (!waiting_take(&thread->waiting, reply->request_id, &waiting))
		return; /* a request made before a restart, or by another channel's earlier life */
	if (waiting.proposal)
		atomic_fetch_sub_explicit(&thread->node->proposals_pending, 1, memory_order_relaxed);
	struct grpc_call *call = grpc_server_find_call(thread->server, waiting.call_id);
	if (!call)
		return; /* the client went away; the write, if any, still happened */
	if (waiting.kind == WAITING_SNAPSHOT) {
		if (reply->snapshot) {
			client_streams_snapshot_ready(thread, waiting.call_id, reply->snapshot);
			reply->snapshot = NULL;
		} else {
			grpc_call_finish(call, reply->kv.grpc_code ? reply->kv.grpc_code : GRPC_INTERNAL, reply->kv.error);
		}
		return;
	}
	if (waiting.kind == WAITING_AUTHENTICATE_READ || waiting.kind == WAITING_AUTHENTICATE) {
		client_auth_answer(thread, call, &waiting, reply);
		return;
	}
	if (waiting.kind == WAITING_UNARY_KV || waiting.kind == WAITING_DEFRAGMENT) {
		if (reply->kv.grpc_code != GRPC_OK) {
			grpc_call_finish(call, reply->kv.grpc_code, reply->kv.error);
			return;
		}
		if (waiting.auth_revision && waiting.auth_revision != node_auth_revision(&thread->node->auth)) {
			grpc_call_finish(call, auth_status_grpc_code(AUTH_ERR_AUTH_OLD_REVISION),
			                 auth_status_text(AUTH_ERR_AUTH_OLD_REVISION));
			return;
		}
		grpc_call_send(call, reply->kv.response, reply->kv.response_length);
		grpc_call_finish(call, GRPC_OK, NULL);
		return;
	}
	/* Member operations and status: a JSON result from the core. */
	if (reply->grpc_code != GRPC_OK || reply->kv.grpc_code != GRPC_OK) {
		int code = reply->grpc_code != GRPC_OK ? reply->grpc_code : reply->kv.grpc_code;
		grpc_call_finish(call, code, reply->grpc_code != GRPC_OK ? reply->error : reply->kv.error);
		return;
	}
	json_error_t error;
	json_t *json = reply->json ? json_loads(reply->json, 0, &error) : NULL;
	if (!json && waiting.kind != WAITING_MOVE_LEADER) {
		grpc_call_finish(call, GRPC_INTERNAL, "etcdserver: unreadable member result");
		return;
	}
	if (waiting.kind == WAITING_STATUS) {
		answer_status(call, json);
	} else if (waiting.kind == WAITING_MOVE_LEADER) {
		Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		node_fill_response_header(thread->node, &header);
		Etcdserverpb__MoveLeaderResponse response = ETCDSERVERPB__MOVE_LEADER_RESPONSE__INIT;
		response.header = &header;
		client_answer(call, &response.base);
	} else {
		answer_members(thread, call, waiting.kind, json);
	}
	json_decref(json);
}

/* ---- the thread ---- */

static void *client_thread_main(void *argument)
{
	struct client_thread *thread = argument;
	int epoll = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event event = {.events = EPOLLIN};
	event.data.u32 = 1;
	epoll_ctl(epoll, EPOLL_CTL_ADD, grpc_server_fd(thread->server), &event);
	event.data.u32 = 2;
	epoll_ctl(epoll, EPOLL_CTL_ADD, reply_mailbox_fd(&thread->inbox), &event);
	if (thread->metrics_server) {
		event.data.u32 = 3;
		epoll_ctl(epoll, EPOLL_CTL_ADD, grpc_server_fd(thread->metrics_server), &event);
	}
	uint64_t last_process_ms = 0;
	while (!atomic_load(&thread->stopping)) {
		struct epoll_event events[8];
		bool asleep = reply_mailbox_sleep_begin(&thread->inbox);
		int ready = epoll_wait(epoll, events, 8, !asleep ? 0 : thread->snapshot_count || thread->held_count ? 5 : 100);
		if (asleep)
			reply_mailbox_sleep_end(&thread->inbox);
		if (ready < 0 && errno != EINTR)
			break;
		/* Only what epoll named is looked at (each look is a syscall, and a syscall a VM exit here);
		 * a quiet turn (the timeout) still runs the servers for their timers. */
		uint64_t now_ms = clock_monotonic_ms();
		bool timers_due = (asleep && ready == 0) || now_ms - last_process_ms >= 100;
		bool clients_ready = timers_due, metrics_ready = timers_due, mail_waiting = false;
		for (int k = 0; k < ready; k++) {
			clients_ready |= events[k].data.u32 == 1;
			mail_waiting |= events[k].data.u32 == 2;
			metrics_ready |= events[k].data.u32 == 3;
		}
		if (clients_ready) {
			grpc_server_process(thread->server);
			last_process_ms = now_ms;
		}
		if (now_ms - thread->last_timeout_sweep_ms >= 100) {
			thread->last_timeout_sweep_ms = now_ms;
			expire_waiting_requests(thread, now_ms);
		}
		if (thread->metrics_server && metrics_ready)
			grpc_server_process(thread->metrics_server);
		/* The answers of this turn go out together below: one send per connection. */
		grpc_server_hold_output(thread->server);
		struct node_reply **items = NULL;
		if (mail_waiting)
			reply_mailbox_doorbell_heard(&thread->inbox);
		size_t count = reply_mailbox_waiting(&thread->inbox) ? reply_mailbox_take_all(&thread->inbox, &items) : 0;
		for (size_t k = 0; k < count; k++) {
			answer(thread, items[k]);
			node_reply_free(items[k]);
		}
		reply_mailbox_give_back(&thread->inbox, items);
		client_streams_pump(thread);
		client_auth_pump(thread);
		/* What the answers queued goes out now, not at the next wake-up. */
		grpc_server_flush(thread->server);
	}
	close(epoll);
	return NULL;
}

static int split_urls(const char *text, char ***urls, size_t *count)
{
	*urls = NULL;
	*count = 0;
	if (!text || !*text)
		return 0;
	char *copy = xstrdup(text);
	for (char *save = NULL, *url = strtok_r(copy, ",", &save); url; url = strtok_r(NULL, ",", &save)) {
		*urls = xrealloc(*urls, (*count + 1) * sizeof(char *));
		(*urls)[(*count)++] = strdup(url);
	}
	free(copy);
	return 0;
}

static void free_urls(char **urls, size_t count)
{
	for (size_t k = 0; k < count; k++)
		free(urls[k]);
	free(urls);
}

/* Every gRPC method the client URLs serve: the unary ones, the streams', the Auth service's. */
static struct grpc_method *every_method(size_t *count)
{
	size_t unary_count = sizeof(unary_methods) / sizeof(unary_methods[0]);
	*count = unary_count + client_stream_method_count + client_auth_method_count;
	struct grpc_method *methods = xcalloc(*count, sizeof(struct grpc_method));
	memcpy(methods, unary_methods, sizeof(unary_methods));
	memcpy(methods + unary_count, client_stream_methods, client_stream_method_count * sizeof(struct grpc_method));
	memcpy(methods + unary_count + client_stream_method_count, client_auth_methods,
	       client_auth_method_count * sizeof(struct grpc_method));
	return methods;
}

/* Client thread k's mailbox and its server on the client URLs (all threads share the port through
 * SO_REUSEPORT); the first thread also serves the metrics URLs. The thread is not started yet. */
static int open_client_thread(struct client_api *api, size_t k, struct grpc_method *methods, size_t method_count,
                              uint64_t counter, char **urls, size_t url_count, char **metrics_urls,
                              size_t metrics_url_count, char *err, size_t errlen)
{
	struct node *node = api->node;
	struct client_thread *thread = &api->threads[k];
	thread->node = node;
	thread->channel = (unsigned)k + 1;
	thread->next_counter = counter;
	thread->methods = methods;
	thread->method_counters = api->method_counters;
	thread->method_count = method_count;
	if (reply_mailbox_init(&thread->inbox) != 0) {
		snprintf(err, errlen, "cannot create a client thread's mailbox");
		return -1;
	}
	/* The thread loops anyway: the storage thread rings only while it sleeps (mailbox.h). */
	reply_mailbox_owner_polls(&thread->inbox);
	struct grpc_server_config config = {
	    .listen_urls = (const char *const *)urls,
	    .listen_url_count = url_count,
	    .reuse_port = true,
	    .methods = methods,
	    .method_count = method_count,
	    .method_counters = api->method_counters,
	    .context = thread,
	    .max_message_bytes = node->flags.max_request_bytes + GRPC_OVERHEAD_BYTES,
	    .max_concurrent_streams = node->flags.max_concurrent_streams > UINT32_MAX
	                                  ? UINT32_MAX
	                                  : (uint32_t)node->flags.max_concurrent_streams,
	    .http_get = client_http_get,
	    .on_deadline = client_auth_on_deadline,
	    .tls = api->tls.context,
	    .gateway_routes = client_gateway_routes,
	    .gateway_route_count = client_gateway_route_count,
	    .gateway_prefixes = client_gateway_prefixes,
	    .gateway_prefix_count = client_gateway_prefix_count,
	};
	thread->server = grpc_server_open(&config, err, errlen);
	if (!thread->server) {
		return -1;
	}
	if (k == 0 && metrics_url_count) {
		struct grpc_server_config metrics = config;
		metrics.listen_urls = (const char *const *)metrics_urls;
		metrics.listen_url_count = metrics_url_count;
		metrics.method_count = 0;
		metrics.gateway_route_count = 0;
		metrics.gateway_prefix_count = 0;
		metrics.method_counters = NULL;
		metrics.tls_check_client_address = true;
		thread->metrics_server = grpc_server_open(&metrics, err, errlen);
		if (!thread->metrics_server) {
			return -1;
		}
	}
	node->reply_channels[thread->channel] = &thread->inbox;
	return 0;
}

struct client_api *client_api_start(struct node *node, char *err, size_t errlen)
{
	uint64_t thread_count = node->flags.client_threads;
	if (thread_count < 1 || thread_count >= NODE_REPLY_CHANNELS) {
		snprintf(err, errlen, "--client-threads must be between 1 and %d (got %" PRIu64 ")", NODE_REPLY_CHANNELS - 1,
		         thread_count);
		return NULL;
	}
	/* The client threads allocate per call and free in bursts (a batch of answers): glibc then
	 * trims their arena's top after a burst and grows it back on the next one, a madvise or mprotect
	 * and fresh page faults per loop turn, ~15% of a loaded node's CPU (sysmalloc and page faults in
	 * perf). Never trimming the thread arenas (64 MiB each at most) and growing them 16 MiB at a time
	 * stops that. The setting is process-wide; it is made here, once, before the threads that pay for
	 * it start.
	 * Setting the trim threshold also freezes glibc's mmap threshold at its 128 KiB start, so every
	 * allocation from 128 KiB up was a fresh mmap, page-faulted in and unmapped on free: RocksDB's 1 MiB
	 * memtable arena blocks, its write batches and the core's packed messages once values are tens of
	 * KiB (a fifth to a third of the members' CPU under 64 KiB puts was page faults). Up to 4 MiB (a
	 * request is at most 1.5 MiB) they now come from the arenas, whose freed memory is reused; larger
	 * ones (big range answers, snapshots) are still mapped and returned, so they do not pin memory. */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_TOP_PAD, 16 << 20);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	struct client_api *api = xcalloc(1, sizeof(*api));
	api->node = node;
	api->threads = xcalloc(thread_count, sizeof(struct client_thread));
	api->thread_count = thread_count;

	size_t method_count;
	struct grpc_method *methods = every_method(&method_count);
	api->method_counters = xcalloc(method_count, sizeof(struct grpc_method_counters));

	char **urls, **metrics_urls;
	size_t url_count, metrics_url_count;
	split_urls(node->flags.listen_client_urls, &urls, &url_count);
	split_urls(node->flags.listen_metrics_urls, &metrics_urls, &metrics_url_count);
	uint64_t counter = node_request_counter_start();
	int failed = 0;
	if (client_tls_prepare(&api->tls, &node->flags, urls, url_count, metrics_urls, metrics_url_count, err, errlen) != 0)
		failed = 1;
	/* SO_REUSEPORT would let a second quorumd (or etcd started with it) share our port and take half our
	 * clients. A first bind without it fails if anyone holds the port; only then do the threads share. */
	struct grpc_server_config probe = {
	    .listen_urls = (const char *const *)urls, .listen_url_count = url_count, .context = NULL,
	    .tls = api->tls.context};
	struct grpc_server *probe_server = failed ? NULL : grpc_server_open(&probe, err, errlen);
	if (!probe_server)
		failed = 1;
	grpc_server_close(probe_server);
	for (size_t k = 0; k < thread_count && !failed; k++)
		if (open_client_thread(api, k, methods, method_count, counter, urls, url_count, metrics_urls, metrics_url_count,
		                       err, errlen) != 0)
			failed = 1;
	if (!failed) {
		client_tls_log_serving(urls, url_count);
		for (size_t k = 0; k < metrics_url_count; k++) {
			char escaped[1024];
			log_write("info", "serving metrics", "\"address\":\"%s\"",
			          log_json_escape(metrics_urls[k], escaped, sizeof(escaped)));
		}
	}
	free_urls(urls, url_count);
	free_urls(metrics_urls, metrics_url_count);
	for (size_t k = 0; k < thread_count && !failed; k++) {
		struct client_thread *thread = &api->threads[k];
		if (pthread_create(&thread->thread, NULL, client_thread_main, thread) != 0) {
			snprintf(err, errlen, "cannot start a client thread");
			failed = 1;
			break;
		}
		thread->thread_started = true;
	}
	api->methods = methods;
	if (failed) {
		client_api_stop(api);
		return NULL;
	}
	return api;
}

void client_api_stop(struct client_api *api)
{
	if (!api)
		return;
	for (size_t k = 0; k < api->thread_count; k++) {
		struct client_thread *thread = &api->threads[k];
		atomic_store(&thread->stopping, true);
		if (thread->thread_started)
			pthread_join(thread->thread, NULL);
	}
	for (size_t k = 0; k < api->thread_count; k++) {
		struct client_thread *thread = &api->threads[k];
		if (!thread->node)
			continue;
		/* Calls still waiting get etcd's answer for a stopping server before the connections close. */
		for (size_t slot = 0; thread->server && slot < thread->waiting.capacity; slot++) {
			struct waiting_call *waiting = &thread->waiting.slots[slot];
			if (!waiting->request_id)
				continue;
			struct grpc_call *call = grpc_server_find_call(thread->server, waiting->call_id);
			if (call)
				grpc_call_finish(call, GRPC_UNAVAILABLE, "etcdserver: server stopped");
		}
		client_streams_close(thread);
		client_auth_close(thread);
		for (int round = 0; thread->server && round < 3; round++)
			grpc_server_process(thread->server);
		/* Replies still addressed here are dropped with the mailbox; nobody posts after node_stop. */
		grpc_server_close(thread->server);
		grpc_server_close(thread->metrics_server);
		free(thread->waiting.slots);
		thread->node->reply_channels[thread->channel] = NULL;
		struct node_reply **items;
		size_t count = reply_mailbox_take_all(&thread->inbox, &items);
		for (size_t item = 0; item < count; item++)
			node_reply_free(items[item]);
		free(items);
		reply_mailbox_destroy(&thread->inbox);
	}
	client_tls_release(&api->tls);
	free(api->threads);
	free(api->methods);
	free(api->method_counters);
	free(api);
}
