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

	state_close(state);
	char command[128];
	snprintf(command, sizeof(command), "rm -rf %s", directory);
	if (system(command) != 0)
		failures++;
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
