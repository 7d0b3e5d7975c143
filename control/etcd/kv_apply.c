/* control/etcd/kv_apply.c: etcdserverpb requests in, state calls, etcdserverpb responses out.
 *
 * Responses are built on the stack and in a small arena of their own, packed, and freed here: the
 * caller only sees packed bytes, which is what travels to the client thread anyway. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "kv_apply.h"

void kv_result_free(struct kv_result *result)
{
	free(result->response);
	result->response = NULL;
	result->response_length = 0;
}

/* etcd maps its storage errors to gRPC codes and prefixes them with "etcdserver: " (rpctypes). */
static void fail_from_state(struct kv_result *result, int status, const char *message)
{
	switch (status) {
	case STATE_ERR_COMPACTED:
	case STATE_ERR_FUTURE_REV:
		result->grpc_code = GRPC_OUT_OF_RANGE;
		snprintf(result->error, sizeof(result->error), "etcdserver: %s", state_status_message(status));
		return;
	case STATE_ERR_KEY_NOT_FOUND:
		result->grpc_code = GRPC_INVALID_ARGUMENT;
		snprintf(result->error, sizeof(result->error), "%s", state_status_message(status));
		return;
	case STATE_ERR_LEASE_NOT_FOUND: /* rpctypes.ErrGRPCLeaseNotFound */
		result->grpc_code = GRPC_NOT_FOUND;
		snprintf(result->error, sizeof(result->error), "%s", state_status_message(status));
		return;
	case STATE_ERR_LEASE_EXISTS: /* rpctypes.ErrGRPCLeaseExist */
		result->grpc_code = GRPC_FAILED_PRECONDITION;
		snprintf(result->error, sizeof(result->error), "%s", state_status_message(status));
		return;
	case STATE_ERR_INVALID:
		result->grpc_code = GRPC_INVALID_ARGUMENT;
		break;
	default:
		result->grpc_code = GRPC_INTERNAL;
	}
	snprintf(result->error, sizeof(result->error), "%s", message && *message ? message : state_status_message(status));
}

static void fill_header(Etcdserverpb__ResponseHeader *out, const struct kv_header *header, int64_t revision)
{
	etcdserverpb__response_header__init(out);
	out->cluster_id = header->cluster_id;
	out->member_id = header->member_id;
	out->revision = revision;
	out->raft_term = header->raft_term;
}

static struct state_bytes bytes_of(ProtobufCBinaryData data)
{
	struct state_bytes bytes = {data.data, data.len};
	return bytes;
}

void kv_to_proto(const struct state_kv *kv, Mvccpb__KeyValue *out)
{
	mvccpb__key_value__init(out);
	out->key.data = kv->key;
	out->key.len = kv->key_len;
	out->value.data = kv->value;
	out->value.len = kv->value_len;
	out->create_revision = kv->create_revision;
	out->mod_revision = kv->mod_revision;
	out->version = kv->version;
	out->lease = kv->lease;
}

/* ---- request conversion ---- */

static void range_request_of(const Etcdserverpb__RangeRequest *request, struct state_range_request *out)
{
	memset(out, 0, sizeof(*out));
	out->key = bytes_of(request->key);
	out->range_end = bytes_of(request->range_end);
	out->limit = request->limit;
	out->revision = request->revision;
	out->sort_order = (enum state_sort_order)request->sort_order;
	out->sort_target = (enum state_sort_target)request->sort_target;
	out->keys_only = request->keys_only;
	out->count_only = request->count_only;
	out->min_mod_revision = request->min_mod_revision;
	out->max_mod_revision = request->max_mod_revision;
	out->min_create_revision = request->min_create_revision;
	out->max_create_revision = request->max_create_revision;
}

static void put_request_of(const Etcdserverpb__PutRequest *request, struct state_put_request *out)
{
	memset(out, 0, sizeof(*out));
	out->key = bytes_of(request->key);
	out->value = bytes_of(request->value);
	out->lease = request->lease;
	out->prev_kv = request->prev_kv;
	out->ignore_value = request->ignore_value;
	out->ignore_lease = request->ignore_lease;
}

static void delete_request_of(const Etcdserverpb__DeleteRangeRequest *request, struct state_delete_request *out)
{
	memset(out, 0, sizeof(*out));
	out->key = bytes_of(request->key);
	out->range_end = bytes_of(request->range_end);
	out->prev_kv = request->prev_kv;
}

/* ---- response building (all pointers borrow from the state responses until packed) ---- */

/* One block holds the pointer array and the KeyValues it points at: a single free releases both. */
static Mvccpb__KeyValue **key_values_of(const struct state_kv *kvs, size_t count)
{
	size_t slots = count ? count : 1;
	Mvccpb__KeyValue **pointers = xcalloc(1, slots * (sizeof(Mvccpb__KeyValue *) + sizeof(Mvccpb__KeyValue)));
	Mvccpb__KeyValue *values = (Mvccpb__KeyValue *)(pointers + slots);
	for (size_t k = 0; k < count; k++) {
		kv_to_proto(&kvs[k], &values[k]);
		pointers[k] = &values[k];
	}
	return pointers;
}

static Etcdserverpb__RangeResponse *range_response_of(const struct state_range_response *in,
                                                     Etcdserverpb__ResponseHeader *header)
{
	Etcdserverpb__RangeResponse *out = xcalloc(1, sizeof(*out));
	etcdserverpb__range_response__init(out);
	out->header = header;
	out->n_kvs = in->kv_count;
	out->kvs = key_values_of(in->kvs, in->kv_count);
	out->more = in->more;
	out->count = in->count;
	return out;
}

static void range_response_release(Etcdserverpb__RangeResponse *out)
{
	free(out->kvs);
	free(out);
}

static Etcdserverpb__PutResponse *put_response_of(const struct state_put_response *in,
                                                 Etcdserverpb__ResponseHeader *header)
{
	Etcdserverpb__PutResponse *out = xcalloc(1, sizeof(*out) + sizeof(Mvccpb__KeyValue));
	etcdserverpb__put_response__init(out);
	out->header = header;
	if (in->has_prev_kv) {
		Mvccpb__KeyValue *prev = (Mvccpb__KeyValue *)(out + 1);
		kv_to_proto(&in->prev_kv, prev);
		out->prev_kv = prev;
	}
	return out;
}

static Etcdserverpb__DeleteRangeResponse *delete_response_of(const struct state_delete_response *in,
                                                            Etcdserverpb__ResponseHeader *header)
{
	Etcdserverpb__DeleteRangeResponse *out = xcalloc(1, sizeof(*out));
	etcdserverpb__delete_range_response__init(out);
	out->header = header;
	out->deleted = in->deleted;
	out->n_prev_kvs = in->prev_kv_count;
	out->prev_kvs = key_values_of(in->prev_kvs, in->prev_kv_count);
	return out;
}

static void delete_response_release(Etcdserverpb__DeleteRangeResponse *out)
{
	free(out->prev_kvs);
	free(out);
}

static void pack_into(struct kv_result *result, enum kv_response_kind kind, const ProtobufCMessage *message)
{
	result->kind = kind;
	result->response_length = protobuf_c_message_get_packed_size(message);
	result->response = xmalloc(result->response_length ? result->response_length : 1);
	protobuf_c_message_pack(message, result->response);
	result->grpc_code = GRPC_OK;
}

/* ---- the operations ---- */

void kv_range(struct state *state, const Etcdserverpb__RangeRequest *request, const struct kv_header *header,
              struct kv_result *result)
{
	memset(result, 0, sizeof(*result));
	struct state_range_request range;
	range_request_of(request, &range);
	struct state_range_response response;
	char error[160] = "";
	int status = state_range(state, &range, &response, error, sizeof(error));
	if (status != STATE_OK) {
		fail_from_state(result, status, error);
		return;
	}
	Etcdserverpb__ResponseHeader response_header;
	fill_header(&response_header, header, response.revision);
	Etcdserverpb__RangeResponse *out = range_response_of(&response, &response_header);
	pack_into(result, KV_RESPONSE_RANGE, &out->base);
	range_response_release(out);
	state_range_response_free(&response);
}

static void apply_put(struct state *state, const Etcdserverpb__PutRequest *request, const struct kv_header *header,
                      struct kv_result *result)
{
	struct state_put_request put;
	put_request_of(request, &put);
	struct state_put_response response;
	char error[160] = "";
	int status = state_put(state, &put, &response, error, sizeof(error));
	if (status != STATE_OK) {
		fail_from_state(result, status, error);
		return;
	}
	Etcdserverpb__ResponseHeader response_header;
	fill_header(&response_header, header, response.revision);
	Etcdserverpb__PutResponse *out = put_response_of(&response, &response_header);
	pack_into(result, KV_RESPONSE_PUT, &out->base);
	free(out);
	state_put_response_free(&response);
}

static void apply_delete(struct state *state, const Etcdserverpb__DeleteRangeRequest *request,
                         const struct kv_header *header, struct kv_result *result)
{
	struct state_delete_request delete_request;
	delete_request_of(request, &delete_request);
	struct state_delete_response response;
	char error[160] = "";
	int status = state_delete_range(state, &delete_request, &response, error, sizeof(error));
	if (status != STATE_OK) {
		fail_from_state(result, status, error);
		return;
	}
	Etcdserverpb__ResponseHeader response_header;
	fill_header(&response_header, header, response.revision);
	Etcdserverpb__DeleteRangeResponse *out = delete_response_of(&response, &response_header);
	pack_into(result, KV_RESPONSE_DELETE_RANGE, &out->base);
	delete_response_release(out);
	state_delete_response_free(&response);
}

static bool compare_union_matches_target(const Etcdserverpb__Compare *in)
{
	switch (in->target) {
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
		return in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
		return in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
		return in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE:
		return in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE:
		return in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE;
	default:
		return false;
	}
}

static void convert_compare(const Etcdserverpb__Compare *in, struct state_compare *out)
{
	memset(out, 0, sizeof(*out));
	out->result = (enum state_compare_result)in->result;
	out->target = (enum state_compare_target)in->target;
	out->key = bytes_of(in->key);
	out->range_end = bytes_of(in->range_end);
	/* etcd's compareKV reads the target value only from the union member of the compare's own target: a
	 * value given for another target (or none) compares as zero or the empty value. */
	if (!compare_union_matches_target(in))
		return;
	switch (in->target_union_case) {
	case ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION:
		out->number = in->version;
		break;
	case ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION:
		out->number = in->create_revision;
		break;
	case ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION:
		out->number = in->mod_revision;
		break;
	case ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE:
		out->value = bytes_of(in->value);
		break;
	case ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE:
		out->number = in->lease;
		break;
	default:
		break;
	}
}

static int txn_request_of(const Etcdserverpb__TxnRequest *in, struct state_txn_request *out,
                          struct kv_result *result);

/* The arrays of a converted txn (nested ones too), which borrow everything else from the request. */
static void txn_request_release(struct state_txn_request *txn)
{
	for (int branch = 0; branch < 2; branch++) {
		const struct state_op *ops = branch ? txn->failure : txn->success;
		size_t count = branch ? txn->failure_count : txn->success_count;
		for (size_t k = 0; k < count; k++)
			if (ops[k].type == STATE_OP_TXN)
				txn_request_release((struct state_txn_request *)&ops[k].request.txn);
		free((void *)ops);
	}
	free((void *)txn->compares);
	memset(txn, 0, sizeof(*txn));
}

static int convert_op(const Etcdserverpb__RequestOp *in, struct state_op *out, struct kv_result *result)
{
	memset(out, 0, sizeof(*out));
	switch (in->request_case) {
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
		out->type = STATE_OP_RANGE;
		range_request_of(in->request_range, &out->request.range);
		return 0;
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
		out->type = STATE_OP_PUT;
		put_request_of(in->request_put, &out->request.put);
		return 0;
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
		out->type = STATE_OP_DELETE_RANGE;
		delete_request_of(in->request_delete_range, &out->request.delete_range);
		return 0;
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
		if (txn_request_of(in->request_txn, &out->request.txn, result) != 0)
			return -1;
		out->type = STATE_OP_TXN; /* only now: release walks into TXN ops */
		return 0;
	default:
		/* The client thread refuses an empty op before proposing (etcd's "key not found"). */
		result->grpc_code = GRPC_INVALID_ARGUMENT;
		snprintf(result->error, sizeof(result->error), "etcdserver: key not found");
		return -1;
	}
}

/* On failure nothing is left allocated and result says why. */
static int txn_request_of(const Etcdserverpb__TxnRequest *in, struct state_txn_request *out,
                          struct kv_result *result)
{
	memset(out, 0, sizeof(*out));
	struct state_compare *compares = xcalloc(in->n_compare ? in->n_compare : 1, sizeof(*compares));
	struct state_op *success = xcalloc(in->n_success ? in->n_success : 1, sizeof(*success));
	struct state_op *failure = xcalloc(in->n_failure ? in->n_failure : 1, sizeof(*failure));
	for (size_t k = 0; k < in->n_compare; k++)
		convert_compare(in->compare[k], &compares[k]);
	*out = (struct state_txn_request){compares, in->n_compare, success, 0, failure, 0};
	for (size_t k = 0; k < in->n_success; k++, out->success_count++)
		if (convert_op(in->success[k], &success[k], result) != 0)
			goto failed;
	for (size_t k = 0; k < in->n_failure; k++, out->failure_count++)
		if (convert_op(in->failure[k], &failure[k], result) != 0)
			goto failed;
	return 0;
failed:
	txn_request_release(out);
	return -1;
}

/* Inside a txn etcd's responses carry a bare header: the revision alone (a nested txn's: nothing).
 * Each level is one block of these, so one free releases a level. */
struct op_response_slot {
	Etcdserverpb__ResponseOp op; /* first: the pointer to slot 0 is the block */
	Etcdserverpb__ResponseHeader header;
};

static Etcdserverpb__TxnResponse *txn_response_of(const struct state_txn_response *in,
                                                 Etcdserverpb__ResponseHeader *header)
{
	Etcdserverpb__TxnResponse *out = xcalloc(1, sizeof(*out));
	etcdserverpb__txn_response__init(out);
	out->header = header;
	out->succeeded = in->succeeded;
	out->n_responses = in->response_count;
	size_t slots_wanted = in->response_count ? in->response_count : 1;
	out->responses = xcalloc(slots_wanted, sizeof(*out->responses));
	struct op_response_slot *slots = xcalloc(slots_wanted, sizeof(*slots));
	for (size_t k = 0; k < in->response_count; k++) {
		const struct state_op_response *op = &in->responses[k];
		Etcdserverpb__ResponseOp *response = &slots[k].op;
		Etcdserverpb__ResponseHeader *op_header = &slots[k].header;
		etcdserverpb__response_op__init(response);
		etcdserverpb__response_header__init(op_header);
		switch (op->type) {
		case STATE_OP_RANGE:
			op_header->revision = op->response.range.revision;
			response->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
			response->response_range = range_response_of(&op->response.range, op_header);
			break;
		case STATE_OP_PUT:
			op_header->revision = op->response.put.revision;
			response->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
			response->response_put = put_response_of(&op->response.put, op_header);
			break;
		case STATE_OP_DELETE_RANGE:
			op_header->revision = op->response.delete_range.revision;
			response->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
			response->response_delete_range = delete_response_of(&op->response.delete_range, op_header);
			break;
		case STATE_OP_TXN:
			response->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
			response->response_txn = txn_response_of(&op->response.txn, op_header);
			break;
		}
		out->responses[k] = response;
	}
	if (in->response_count == 0)
		free(slots);
	return out;
}

static void txn_response_release(Etcdserverpb__TxnResponse *out)
{
	for (size_t k = 0; k < out->n_responses; k++) {
		Etcdserverpb__ResponseOp *response = out->responses[k];
		switch (response->response_case) {
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
			range_response_release(response->response_range);
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
			free(response->response_put);
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
			delete_response_release(response->response_delete_range);
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN:
			txn_response_release(response->response_txn);
			break;
		default:
			break;
		}
	}
	if (out->n_responses)
		free(out->responses[0]); /* the level's block of slots */
	free(out->responses);
	free(out);
}

static void apply_txn(struct state *state, const Etcdserverpb__TxnRequest *request, const struct kv_header *header,
                      struct kv_result *result)
{
	struct state_txn_request txn;
	if (txn_request_of(request, &txn, result) != 0)
		return;
	struct state_txn_response response;
	char error[160] = "";
	int status = state_txn(state, &txn, &response, error, sizeof(error));
	txn_request_release(&txn);
	if (status != STATE_OK) {
		fail_from_state(result, status, error);
		return;
	}
	Etcdserverpb__ResponseHeader response_header;
	fill_header(&response_header, header, response.revision);
	Etcdserverpb__TxnResponse *out = txn_response_of(&response, &response_header);
	pack_into(result, KV_RESPONSE_TXN, &out->base);
	txn_response_release(out);
	state_txn_response_free(&response);
}

static void apply_compaction(struct state *state, const Etcdserverpb__CompactionRequest *request,
                             const struct kv_header *header, struct kv_result *result)
{
	char error[160] = "";
	int status = state_compact(state, request->revision, error, sizeof(error));
	if (status != STATE_OK) {
		fail_from_state(result, status, error);
		return;
	}
	Etcdserverpb__ResponseHeader response_header;
	fill_header(&response_header, header, state_revision(state));
	Etcdserverpb__CompactionResponse out = ETCDSERVERPB__COMPACTION_RESPONSE__INIT;
	out.header = &response_header;
	pack_into(result, KV_RESPONSE_COMPACTION, &out.base);
}

/* ---- leases ---- */

int64_t kv_lease_min_ttl(int64_t heartbeat_ms, int64_t election_ms)
{
	if (heartbeat_ms <= 0)
		return 1;
	int64_t election_ticks = election_ms / heartbeat_ms;
	int64_t min_ms = (3 * election_ticks / 2) * heartbeat_ms;
	return (min_ms + 999) / 1000;
}

int64_t kv_lease_clamp_ttl(int64_t ttl, int64_t min_ttl)
{
	return ttl < min_ttl ? min_ttl : ttl;
}

static void apply_lease_grant(struct state *state, const Etcdserverpb__LeaseGrantRequest *request,
                              const struct kv_header *header, struct kv_result *result)
{
	/* lessor.Grant's order: NoLease (from the state), then the TTL bound, then an existing ID. */
	if (request->id != 0 && request->ttl > KV_LEASE_MAX_TTL) {
		result->grpc_code = GRPC_OUT_OF_RANGE; /* rpctypes.ErrGRPCLeaseTTLTooLarge */
		snprintf(result->error, sizeof(result->error), "etcdserver: too large lease TTL");
		return;
	}
	char error[160] = "";
	int status = state_lease_grant(state, request->id, request->ttl, error, sizeof(error));
	if (status != STATE_OK) {
		fail_from_state(result, status, error);
		return;
	}
	Etcdserverpb__ResponseHeader response_header;
	fill_header(&response_header, header, state_revision(state));
	Etcdserverpb__LeaseGrantResponse out = ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
	out.header = &response_header;
	out.id = request->id;
	out.ttl = request->ttl;
	pack_into(result, KV_RESPONSE_LEASE_GRANT, &out.base);
}

static void apply_lease_revoke(struct state *state, const Etcdserverpb__LeaseRevokeRequest *request,
                               const struct kv_header *header, struct kv_result *result)
{
	struct state_lease_revoke_response response;
	char error[160] = "";
	int status = state_lease_revoke(state, request->id, &response, error, sizeof(error));
	if (status != STATE_OK) {
		fail_from_state(result, status, error);
		return;
	}
	Etcdserverpb__ResponseHeader response_header;
	fill_header(&response_header, header, response.revision);
	Etcdserverpb__LeaseRevokeResponse out = ETCDSERVERPB__LEASE_REVOKE_RESPONSE__INIT;
	out.header = &response_header;
	pack_into(result, KV_RESPONSE_LEASE_REVOKE, &out.base);
}

void kv_lease_time_to_live(struct state *state, const Etcdserverpb__LeaseTimeToLiveRequest *request,
                           const struct kv_header *header, int64_t remaining_ttl, struct kv_result *result)
{
	memset(result, 0, sizeof(*result));
	struct state_lease lease;
	char error[160] = "";
	int status = state_lease_get(state, request->id, request->keys, &lease, error, sizeof(error));
	if (status != STATE_OK && status != STATE_ERR_LEASE_NOT_FOUND) {
		fail_from_state(result, status, error);
		return;
	}
	Etcdserverpb__ResponseHeader response_header;
	fill_header(&response_header, header, state_revision(state));
	Etcdserverpb__LeaseTimeToLiveResponse out = ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
	out.header = &response_header;
	out.id = request->id;
	ProtobufCBinaryData *keys = NULL;
	if (status == STATE_ERR_LEASE_NOT_FOUND) {
		out.ttl = -1;
	} else {
		out.ttl = remaining_ttl;
		out.grantedttl = lease.ttl;
		keys = xcalloc(lease.key_count ? lease.key_count : 1, sizeof(*keys));
		for (size_t k = 0; k < lease.key_count; k++) {
			keys[k].data = (uint8_t *)lease.keys[k].data;
			keys[k].len = lease.keys[k].len;
		}
		out.n_keys = lease.key_count;
		out.keys = keys;
	}
	pack_into(result, KV_RESPONSE_LEASE_TIME_TO_LIVE, &out.base);
	free(keys);
	if (status == STATE_OK)
		state_lease_free(&lease);
}

void kv_lease_leases(struct state *state, const struct kv_header *header, struct kv_result *result)
{
	memset(result, 0, sizeof(*result));
	struct state_lease_list list;
	char error[160] = "";
	int status = state_lease_list(state, &list, error, sizeof(error));
	if (status != STATE_OK) {
		fail_from_state(result, status, error);
		return;
	}
	/* One block holds the pointer array and the LeaseStatus messages it points at. */
	size_t slots = list.count ? list.count : 1;
	Etcdserverpb__LeaseStatus **leases =
	    xcalloc(1, slots * (sizeof(Etcdserverpb__LeaseStatus *) + sizeof(Etcdserverpb__LeaseStatus)));
	Etcdserverpb__LeaseStatus *statuses = (Etcdserverpb__LeaseStatus *)(leases + slots);
	for (size_t k = 0; k < list.count; k++) {
		etcdserverpb__lease_status__init(&statuses[k]);
		statuses[k].id = list.leases[k].id;
		leases[k] = &statuses[k];
	}
	Etcdserverpb__ResponseHeader response_header;
	fill_header(&response_header, header, state_revision(state));
	Etcdserverpb__LeaseLeasesResponse out = ETCDSERVERPB__LEASE_LEASES_RESPONSE__INIT;
	out.header = &response_header;
	out.n_leases = list.count;
	out.leases = leases;
	pack_into(result, KV_RESPONSE_LEASE_LEASES, &out.base);
	free(leases);
	state_lease_list_free(&list);
}

void kv_apply_request(struct state *state, const Etcdserverpb__InternalRaftRequest *request,
                      const struct kv_header *header, struct kv_result *result)
{
	memset(result, 0, sizeof(*result));
	if (request->put)
		apply_put(state, request->put, header, result);
	else if (request->delete_range)
		apply_delete(state, request->delete_range, header, result);
	else if (request->txn)
		apply_txn(state, request->txn, header, result);
	else if (request->compaction)
		apply_compaction(state, request->compaction, header, result);
	else if (request->lease_grant)
		apply_lease_grant(state, request->lease_grant, header, result);
	else if (request->lease_revoke)
		apply_lease_revoke(state, request->lease_revoke, header, result);
	else {
		result->grpc_code = GRPC_UNIMPLEMENTED;
		snprintf(result->error, sizeof(result->error), "etcdserver: request is not implemented");
	}
}
