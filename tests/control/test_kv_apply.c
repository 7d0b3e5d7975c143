/* tests/control/test_kv_apply.c: etcd KV requests through kv_apply against a real RocksDB state, checked
 * by decoding the etcd responses a client would receive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv_apply.h"

#include "check.h"

static const struct kv_header header = {0xef37ad9dc622a7c4ULL, 0x8211f1d0f64f3269ULL, 7};

static ProtobufCBinaryData text(const char *value)
{
	ProtobufCBinaryData data = {strlen(value), (uint8_t *)value};
	return data;
}

static void put(struct state *state, uint64_t index, const char *key, const char *value, bool prev_kv,
                struct kv_result *result)
{
	Etcdserverpb__PutRequest request = ETCDSERVERPB__PUT_REQUEST__INIT;
	request.key = text(key);
	request.value = text(value);
	request.prev_kv = prev_kv;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.put = &request;
	char error[160];
	CHECK(state_batch_begin(state, error, sizeof(error)) == STATE_OK, "%s", error);
	kv_apply_request(state, &internal, &header, result);
	CHECK(state_batch_commit(state, index, error, sizeof(error)) == STATE_OK, "%s", error);
}

/* Applies one InternalRaftRequest in its own batch at `index`. */
static void apply(struct state *state, uint64_t index, const Etcdserverpb__InternalRaftRequest *internal,
                  struct kv_result *result)
{
	char error[160];
	CHECK(state_batch_begin(state, error, sizeof(error)) == STATE_OK, "%s", error);
	kv_apply_request(state, internal, &header, result);
	CHECK(state_batch_commit(state, index, error, sizeof(error)) == STATE_OK, "%s", error);
}

static void grant(struct state *state, uint64_t index, int64_t id, int64_t ttl, struct kv_result *result)
{
	Etcdserverpb__LeaseGrantRequest request = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	request.id = id;
	request.ttl = ttl;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.lease_grant = &request;
	apply(state, index, &internal, result);
}

static void revoke_lease(struct state *state, uint64_t index, int64_t id, struct kv_result *result)
{
	Etcdserverpb__LeaseRevokeRequest request = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	request.id = id;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.lease_revoke = &request;
	apply(state, index, &internal, result);
}

static void put_with_lease(struct state *state, uint64_t index, const char *key, int64_t lease,
                           struct kv_result *result)
{
	Etcdserverpb__PutRequest request = ETCDSERVERPB__PUT_REQUEST__INIT;
	request.key = text(key);
	request.value = text("v");
	request.lease = lease;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.put = &request;
	apply(state, index, &internal, result);
}

static int64_t count_of(struct state *state, const char *key)
{
	Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
	range.key = text(key);
	struct kv_result result;
	kv_range(state, &range, &header, &result);
	Etcdserverpb__RangeResponse *response =
	    etcdserverpb__range_response__unpack(NULL, result.response_length, result.response);
	int64_t count = response ? response->count : -1;
	etcdserverpb__range_response__free_unpacked(response, NULL);
	kv_result_free(&result);
	return count;
}

/* Lease grant and revoke through InternalRaftRequest, puts and txns naming leases, the read helpers, and etcd's
 * error codes and texts. */
static void test_leases(struct state *state, uint64_t index)
{
	struct kv_result result;
	int64_t revision = state_revision(state);
	grant(state, index++, 0x1234, 60, &result);
	CHECK(result.grpc_code == GRPC_OK && result.kind == KV_RESPONSE_LEASE_GRANT, "grant: %s", result.error);
	Etcdserverpb__LeaseGrantResponse *granted =
	    etcdserverpb__lease_grant_response__unpack(NULL, result.response_length, result.response);
	CHECK(granted && granted->id == 0x1234 && granted->ttl == 60 && granted->header->revision == revision &&
	          granted->header->member_id == header.member_id && granted->error[0] == '\0',
	      "grant response");
	etcdserverpb__lease_grant_response__free_unpacked(granted, NULL);
	kv_result_free(&result);

	grant(state, index++, 0x1234, 30, &result);
	CHECK(result.grpc_code == GRPC_FAILED_PRECONDITION && strcmp(result.error, "etcdserver: lease already exists") == 0,
	      "grant twice: %d %s", result.grpc_code, result.error);
	grant(state, index++, 0x55, KV_LEASE_MAX_TTL + 1, &result);
	CHECK(result.grpc_code == GRPC_OUT_OF_RANGE && strcmp(result.error, "etcdserver: too large lease TTL") == 0,
	      "grant too long: %d %s", result.grpc_code, result.error);
	grant(state, index++, 0, 60, &result);
	CHECK(result.grpc_code == GRPC_NOT_FOUND && strcmp(result.error, "etcdserver: requested lease not found") == 0,
	      "grant no lease: %d %s", result.grpc_code, result.error);

	put_with_lease(state, index++, "leased", 0x1234, &result);
	CHECK(result.grpc_code == GRPC_OK && result.kind == KV_RESPONSE_PUT, "put with lease: %s", result.error);
	kv_result_free(&result);
	put_with_lease(state, index++, "leased2", 0x1234, &result);
	kv_result_free(&result);
	revision = state_revision(state);
	put_with_lease(state, index++, "orphan", 0x999, &result);
	CHECK(result.grpc_code == GRPC_NOT_FOUND && strcmp(result.error, "etcdserver: requested lease not found") == 0,
	      "put with a missing lease: %d %s", result.grpc_code, result.error);
	CHECK(count_of(state, "orphan") == 0 && state_revision(state) == revision, "the failed put wrote");

	/* A txn whose second put names a missing lease writes nothing, not even its first put. */
	Etcdserverpb__PutRequest first = ETCDSERVERPB__PUT_REQUEST__INIT;
	first.key = text("txn-first");
	Etcdserverpb__PutRequest second = ETCDSERVERPB__PUT_REQUEST__INIT;
	second.key = text("txn-second");
	second.lease = 0x999;
	Etcdserverpb__RequestOp ops[2] = {ETCDSERVERPB__REQUEST_OP__INIT, ETCDSERVERPB__REQUEST_OP__INIT};
	ops[0].request_case = ops[1].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	ops[0].request_put = &first;
	ops[1].request_put = &second;
	Etcdserverpb__RequestOp *success[] = {&ops[0], &ops[1]};
	Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
	txn.n_success = 2;
	txn.success = success;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.txn = &txn;
	apply(state, index++, &internal, &result);
	CHECK(result.grpc_code == GRPC_NOT_FOUND && strcmp(result.error, "etcdserver: requested lease not found") == 0,
	      "txn with a missing lease: %d %s", result.grpc_code, result.error);
	CHECK(count_of(state, "txn-first") == 0 && state_revision(state) == revision, "the failed txn wrote");

	/* LeaseTimeToLive with keys, and LeaseLeases. */
	Etcdserverpb__LeaseTimeToLiveRequest ttl_request = ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
	ttl_request.id = 0x1234;
	ttl_request.keys = true;
	kv_lease_time_to_live(state, &ttl_request, &header, 42, &result);
	CHECK(result.grpc_code == GRPC_OK && result.kind == KV_RESPONSE_LEASE_TIME_TO_LIVE, "ttl: %s", result.error);
	Etcdserverpb__LeaseTimeToLiveResponse *ttl =
	    etcdserverpb__lease_time_to_live_response__unpack(NULL, result.response_length, result.response);
	CHECK(ttl && ttl->id == 0x1234 && ttl->ttl == 42 && ttl->grantedttl == 60 && ttl->n_keys == 2 &&
	          ttl->keys[0].len == 6 && memcmp(ttl->keys[0].data, "leased", 6) == 0 && ttl->keys[1].len == 7 &&
	          ttl->header->revision == revision,
	      "ttl response");
	etcdserverpb__lease_time_to_live_response__free_unpacked(ttl, NULL);
	kv_result_free(&result);
	ttl_request.keys = false;
	kv_lease_time_to_live(state, &ttl_request, &header, 42, &result);
	ttl = etcdserverpb__lease_time_to_live_response__unpack(NULL, result.response_length, result.response);
	CHECK(ttl && ttl->n_keys == 0 && ttl->grantedttl == 60, "ttl without keys");
	etcdserverpb__lease_time_to_live_response__free_unpacked(ttl, NULL);
	kv_result_free(&result);

	grant(state, index++, 0x20, 5, &result);
	kv_result_free(&result);
	kv_lease_leases(state, &header, &result);
	CHECK(result.grpc_code == GRPC_OK && result.kind == KV_RESPONSE_LEASE_LEASES, "leases: %s", result.error);
	Etcdserverpb__LeaseLeasesResponse *leases =
	    etcdserverpb__lease_leases_response__unpack(NULL, result.response_length, result.response);
	CHECK(leases && leases->n_leases == 2 && leases->leases[0]->id == 0x20 && leases->leases[1]->id == 0x1234 &&
	          leases->header->cluster_id == header.cluster_id,
	      "leases response");
	etcdserverpb__lease_leases_response__free_unpacked(leases, NULL);
	kv_result_free(&result);

	/* Revoke: both keys go in one revision, the header carries it. */
	revoke_lease(state, index++, 0x1234, &result);
	CHECK(result.grpc_code == GRPC_OK && result.kind == KV_RESPONSE_LEASE_REVOKE, "revoke: %s", result.error);
	Etcdserverpb__LeaseRevokeResponse *revoked =
	    etcdserverpb__lease_revoke_response__unpack(NULL, result.response_length, result.response);
	CHECK(revoked && revoked->header->revision == revision + 1 && state_revision(state) == revision + 1,
	      "revoke response");
	etcdserverpb__lease_revoke_response__free_unpacked(revoked, NULL);
	kv_result_free(&result);
	CHECK(count_of(state, "leased") == 0 && count_of(state, "leased2") == 0, "revoked keys remain");
	revoke_lease(state, index++, 0x1234, &result);
	CHECK(result.grpc_code == GRPC_NOT_FOUND && strcmp(result.error, "etcdserver: requested lease not found") == 0,
	      "revoke twice: %d %s", result.grpc_code, result.error);

	/* A lease that is gone: etcd answers TTL -1, not an error. */
	ttl_request.keys = true;
	kv_lease_time_to_live(state, &ttl_request, &header, 42, &result);
	ttl = etcdserverpb__lease_time_to_live_response__unpack(NULL, result.response_length, result.response);
	CHECK(result.grpc_code == GRPC_OK && ttl && ttl->id == 0x1234 && ttl->ttl == -1 && ttl->grantedttl == 0 &&
	          ttl->n_keys == 0,
	      "ttl of a revoked lease: %s", result.error);
	etcdserverpb__lease_time_to_live_response__free_unpacked(ttl, NULL);
	kv_result_free(&result);

	/* etcd's TTL floor: (3 * election ticks / 2) heartbeats, rounded up to seconds. */
	CHECK(kv_lease_min_ttl(100, 1000) == 2, "min ttl 100/1000: %lld", (long long)kv_lease_min_ttl(100, 1000));
	CHECK(kv_lease_min_ttl(100, 500) == 1, "min ttl 100/500");
	CHECK(kv_lease_min_ttl(500, 5000) == 8, "min ttl 500/5000");
	CHECK(kv_lease_clamp_ttl(1, 2) == 2 && kv_lease_clamp_ttl(-5, 2) == 2 && kv_lease_clamp_ttl(60, 2) == 60,
	      "clamp");
}

/* A nested txn through kv_apply: the request tree converted, the response tree built with etcd's bare
 * headers inside (a nested txn's empty, an op's the revision alone). */
static void test_nested_txn(struct state *state, uint64_t index)
{
	Etcdserverpb__PutRequest outer_put = ETCDSERVERPB__PUT_REQUEST__INIT;
	outer_put.key = text("nest-a");
	outer_put.value = text("1");
	Etcdserverpb__PutRequest inner_put = ETCDSERVERPB__PUT_REQUEST__INIT;
	inner_put.key = text("nest-b");
	inner_put.value = text("2");
	Etcdserverpb__RangeRequest inner_range = ETCDSERVERPB__RANGE_REQUEST__INIT;
	inner_range.key = text("nest-a");
	Etcdserverpb__RequestOp inner_ops[2] = {ETCDSERVERPB__REQUEST_OP__INIT, ETCDSERVERPB__REQUEST_OP__INIT};
	inner_ops[0].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	inner_ops[0].request_put = &inner_put;
	inner_ops[1].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	inner_ops[1].request_range = &inner_range;
	Etcdserverpb__RequestOp *inner_failure[] = {&inner_ops[0], &inner_ops[1]};
	Etcdserverpb__Compare never = ETCDSERVERPB__COMPARE__INIT;
	never.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER;
	never.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION;
	never.key = text("nest-missing");
	never.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
	Etcdserverpb__Compare *inner_compares[] = {&never};
	Etcdserverpb__TxnRequest inner = ETCDSERVERPB__TXN_REQUEST__INIT;
	inner.n_compare = 1;
	inner.compare = inner_compares;
	inner.n_failure = 2;
	inner.failure = inner_failure;
	Etcdserverpb__RequestOp outer_ops[2] = {ETCDSERVERPB__REQUEST_OP__INIT, ETCDSERVERPB__REQUEST_OP__INIT};
	outer_ops[0].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	outer_ops[0].request_put = &outer_put;
	outer_ops[1].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
	outer_ops[1].request_txn = &inner;
	Etcdserverpb__RequestOp *outer_success[] = {&outer_ops[0], &outer_ops[1]};
	Etcdserverpb__TxnRequest outer = ETCDSERVERPB__TXN_REQUEST__INIT;
	outer.n_success = 2;
	outer.success = outer_success;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.txn = &outer;
	int64_t revision = state_revision(state) + 1;
	struct kv_result result;
	apply(state, index, &internal, &result);
	CHECK(result.grpc_code == GRPC_OK, "nested txn: %s", result.error);
	Etcdserverpb__TxnResponse *response =
	    etcdserverpb__txn_response__unpack(NULL, result.response_length, result.response);
	CHECK(response && response->succeeded && response->n_responses == 2 && response->header->revision == revision &&
	          response->header->member_id == header.member_id,
	      "outer txn response");
	if (response && response->n_responses == 2) {
		const Etcdserverpb__ResponseOp *put_op = response->responses[0];
		CHECK(put_op->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT &&
		          put_op->response_put->header->revision == revision && put_op->response_put->header->member_id == 0,
		      "a put's header inside a txn: the revision alone");
		const Etcdserverpb__ResponseOp *txn_op = response->responses[1];
		CHECK(txn_op->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN, "nested response kind");
		const Etcdserverpb__TxnResponse *nested = txn_op->response_txn;
		CHECK(nested && !nested->succeeded && nested->header && nested->header->revision == 0 &&
		          nested->n_responses == 2,
		      "nested txn response: the failure branch, an empty header");
		if (nested && nested->n_responses == 2)
			CHECK(nested->responses[1]->response_range->n_kvs == 1 &&
			          nested->responses[1]->response_range->header->revision == revision,
			      "the nested range sees the outer put");
	}
	etcdserverpb__txn_response__free_unpacked(response, NULL);
	kv_result_free(&result);
	CHECK(count_of(state, "nest-b") == 1 && state_revision(state) == revision, "one revision for the tree");
}

int main(void)
{
	char directory[] = "/tmp/quorumd-kv-apply-XXXXXX";
	if (!mkdtemp(directory))
		return 1;
	struct state *state = NULL;
	char error[160];
	CHECK(state_open(directory, &state, error, sizeof(error)) == STATE_OK, "%s", error);

	struct kv_result result;
	put(state, 1, "foo", "bar", false, &result);
	CHECK(result.grpc_code == GRPC_OK && result.kind == KV_RESPONSE_PUT, "put: %s", result.error);
	Etcdserverpb__PutResponse *put_response =
	    etcdserverpb__put_response__unpack(NULL, result.response_length, result.response);
	CHECK(put_response && put_response->header->revision == 2 && put_response->header->raft_term == 7 &&
	          put_response->header->cluster_id == header.cluster_id && !put_response->prev_kv,
	      "put response header");
	etcdserverpb__put_response__free_unpacked(put_response, NULL);
	kv_result_free(&result);

	put(state, 2, "foo", "baz", true, &result);
	put_response = etcdserverpb__put_response__unpack(NULL, result.response_length, result.response);
	CHECK(put_response && put_response->prev_kv && put_response->prev_kv->value.len == 3 &&
	          memcmp(put_response->prev_kv->value.data, "bar", 3) == 0 && put_response->header->revision == 3,
	      "prev_kv");
	etcdserverpb__put_response__free_unpacked(put_response, NULL);
	kv_result_free(&result);

	/* Range: the current value, then at a past revision. */
	Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
	range.key = text("foo");
	kv_range(state, &range, &header, &result);
	Etcdserverpb__RangeResponse *range_response =
	    etcdserverpb__range_response__unpack(NULL, result.response_length, result.response);
	CHECK(range_response && range_response->n_kvs == 1 && range_response->count == 1 &&
	          range_response->kvs[0]->version == 2 && range_response->kvs[0]->create_revision == 2 &&
	          range_response->kvs[0]->mod_revision == 3,
	      "range current");
	etcdserverpb__range_response__free_unpacked(range_response, NULL);
	kv_result_free(&result);
	range.revision = 2;
	kv_range(state, &range, &header, &result);
	range_response = etcdserverpb__range_response__unpack(NULL, result.response_length, result.response);
	CHECK(range_response && range_response->n_kvs == 1 && range_response->kvs[0]->value.len == 3 &&
	          memcmp(range_response->kvs[0]->value.data, "bar", 3) == 0,
	      "range at revision 2");
	etcdserverpb__range_response__free_unpacked(range_response, NULL);
	kv_result_free(&result);
	range.revision = 99;
	kv_range(state, &range, &header, &result);
	CHECK(result.grpc_code == GRPC_OUT_OF_RANGE &&
	          strcmp(result.error, "etcdserver: mvcc: required revision is a future revision") == 0,
	      "future revision: %d %s", result.grpc_code, result.error);
	kv_result_free(&result);

	/* Txn: compare-and-swap, succeeding then failing. */
	for (int round = 0; round < 2; round++) {
		Etcdserverpb__Compare compare = ETCDSERVERPB__COMPARE__INIT;
		compare.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
		compare.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
		compare.key = text("foo");
		compare.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
		compare.value = text("baz");
		Etcdserverpb__Compare *compares[] = {&compare};
		Etcdserverpb__PutRequest swap = ETCDSERVERPB__PUT_REQUEST__INIT;
		swap.key = text("foo");
		swap.value = text("qux");
		Etcdserverpb__RequestOp success = ETCDSERVERPB__REQUEST_OP__INIT;
		success.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
		success.request_put = &swap;
		Etcdserverpb__RequestOp failure = ETCDSERVERPB__REQUEST_OP__INIT;
		failure.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
		failure.request_range = &range;
		range.revision = 0;
		Etcdserverpb__RequestOp *successes[] = {&success};
		Etcdserverpb__RequestOp *failures_ops[] = {&failure};
		Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
		txn.n_compare = 1;
		txn.compare = compares;
		txn.n_success = 1;
		txn.success = successes;
		txn.n_failure = 1;
		txn.failure = failures_ops;
		Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
		internal.txn = &txn;
		state_batch_begin(state, error, sizeof(error));
		kv_apply_request(state, &internal, &header, &result);
		state_batch_commit(state, 3 + (uint64_t)round, error, sizeof(error));
		Etcdserverpb__TxnResponse *txn_response =
		    etcdserverpb__txn_response__unpack(NULL, result.response_length, result.response);
		CHECK(txn_response && txn_response->succeeded == (round == 0) && txn_response->n_responses == 1,
		      "txn round %d", round);
		if (txn_response && round == 1)
			CHECK(txn_response->responses[0]->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE &&
			          txn_response->responses[0]->response_range->kvs[0]->value.len == 3 &&
			          memcmp(txn_response->responses[0]->response_range->kvs[0]->value.data, "qux", 3) == 0,
			      "failure branch sees the swapped value");
		etcdserverpb__txn_response__free_unpacked(txn_response, NULL);
		kv_result_free(&result);
	}

	/* Compaction, then a range below it. */
	Etcdserverpb__CompactionRequest compaction = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
	compaction.revision = 3;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.compaction = &compaction;
	state_batch_begin(state, error, sizeof(error));
	kv_apply_request(state, &internal, &header, &result);
	state_batch_commit(state, 5, error, sizeof(error));
	CHECK(result.grpc_code == GRPC_OK && result.kind == KV_RESPONSE_COMPACTION, "compact: %s", result.error);
	kv_result_free(&result);
	range.revision = 2;
	kv_range(state, &range, &header, &result);
	CHECK(result.grpc_code == GRPC_OUT_OF_RANGE &&
	          strcmp(result.error, "etcdserver: mvcc: required revision has been compacted") == 0,
	      "compacted: %s", result.error);
	kv_result_free(&result);

	test_leases(state, 6);
	test_nested_txn(state, 100);

	state_close(state);
	char command[128];
	snprintf(command, sizeof(command), "rm -rf %s", directory);
	if (system(command) != 0)
		failures++;
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
