/* tests/control/test_txn_check.c: kv_txn_check against the answers etcd 3.4.23 gave for the same requests
 * (tests/goclient's TestTxnDuplicateKeys and TestTxnNestedOperationBudget pin them against the server). */
#include <stdbool.h>
#include <string.h>

#include "grpc_status.h"
#include "txn_check.h"

#include "check.h"

/* Ops live in a pool so a case can build a tree without allocating. */
static Etcdserverpb__RequestOp op_pool[512];
static Etcdserverpb__PutRequest put_pool[512];
static Etcdserverpb__DeleteRangeRequest delete_pool[64];
static Etcdserverpb__TxnRequest txn_pool[64];
static Etcdserverpb__RequestOp *list_pool[1024];
static size_t ops_used, puts_used, deletes_used, txns_used, lists_used;

static void reset(void) { ops_used = puts_used = deletes_used = txns_used = lists_used = 0; }

static ProtobufCBinaryData text(const char *value)
{
	ProtobufCBinaryData data = {strlen(value), (uint8_t *)value};
	return data;
}

static Etcdserverpb__RequestOp *put(const char *key)
{
	Etcdserverpb__PutRequest *request = &put_pool[puts_used++];
	etcdserverpb__put_request__init(request);
	request->key = text(key);
	Etcdserverpb__RequestOp *op = &op_pool[ops_used++];
	etcdserverpb__request_op__init(op);
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	op->request_put = request;
	return op;
}

/* end NULL: the key alone. */
static Etcdserverpb__RequestOp *delete_range(const char *key, const char *end)
{
	Etcdserverpb__DeleteRangeRequest *request = &delete_pool[deletes_used++];
	etcdserverpb__delete_range_request__init(request);
	request->key = text(key);
	if (end)
		request->range_end = end[0] ? text(end) : (ProtobufCBinaryData){1, (uint8_t *)""};
	Etcdserverpb__RequestOp *op = &op_pool[ops_used++];
	etcdserverpb__request_op__init(op);
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
	op->request_delete_range = request;
	return op;
}

static Etcdserverpb__RequestOp **list(size_t count, Etcdserverpb__RequestOp *const *ops)
{
	Etcdserverpb__RequestOp **out = &list_pool[lists_used];
	lists_used += count ? count : 1;
	for (size_t k = 0; k < count; k++)
		out[k] = ops[k];
	return out;
}

static Etcdserverpb__TxnRequest *txn(size_t then_count, Etcdserverpb__RequestOp *const *then_ops,
                                     size_t else_count, Etcdserverpb__RequestOp *const *else_ops)
{
	Etcdserverpb__TxnRequest *request = &txn_pool[txns_used++];
	etcdserverpb__txn_request__init(request);
	request->n_success = then_count;
	request->success = list(then_count, then_ops);
	request->n_failure = else_count;
	request->failure = list(else_count, else_ops);
	return request;
}

static Etcdserverpb__RequestOp *nested(Etcdserverpb__TxnRequest *request)
{
	Etcdserverpb__RequestOp *op = &op_pool[ops_used++];
	etcdserverpb__request_op__init(op);
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
	op->request_txn = request;
	return op;
}

#define OPS(...) (sizeof((Etcdserverpb__RequestOp *[]){__VA_ARGS__}) / sizeof(Etcdserverpb__RequestOp *)), \
	             ((Etcdserverpb__RequestOp *[]){__VA_ARGS__})
#define NONE 0, NULL

static void expect(const char *name, Etcdserverpb__TxnRequest *request, const char *want)
{
	char error[96] = "";
	int code = kv_txn_check(request, KV_MAX_TXN_OPERATIONS, error, sizeof(error));
	if (want)
		CHECK(code == GRPC_INVALID_ARGUMENT && strcmp(error, want) == 0, "%s: code %d, %s (want %s)", name, code,
		      error, want);
	else
		CHECK(code == GRPC_OK, "%s: code %d, %s (want it accepted)", name, code, error);
	reset();
}

static const char *const duplicate = "etcdserver: duplicate key given in txn request";

static void test_duplicates(void)
{
	expect("put, put", txn(OPS(put("a"), put("a")), NONE), duplicate);
	expect("put, delete", txn(OPS(put("a"), delete_range("a", NULL)), NONE), duplicate);
	expect("delete, put", txn(OPS(delete_range("a", NULL), put("a")), NONE), duplicate);
	expect("put in a deleted range", txn(OPS(delete_range("a", "c"), put("b")), NONE), duplicate);
	expect("put at the range end", txn(OPS(delete_range("a", "c"), put("c")), NONE), NULL);
	expect("put after the deleted key", txn(OPS(delete_range("a", NULL), put("a0")), NONE), NULL);
	expect("put in a from-key delete", txn(OPS(delete_range("a", ""), put("b")), NONE), NULL);
	expect("delete, delete", txn(OPS(delete_range("a", NULL), delete_range("a", "b")), NONE), NULL);
	expect("the failure branch", txn(OPS(put("a")), OPS(put("b"), put("b"))), duplicate);
	expect("success and failure", txn(OPS(put("a")), OPS(put("a"))), NULL);
	expect("put and nested put", txn(OPS(put("a"), nested(txn(OPS(put("a")), NONE))), NONE), duplicate);
	expect("nested then and else", txn(OPS(nested(txn(OPS(put("a")), OPS(put("a"))))), NONE), NULL);
	expect("two nested thens",
	       txn(OPS(nested(txn(OPS(put("a")), NONE)), nested(txn(OPS(put("a")), NONE))), NONE), duplicate);
	expect("nested then, another's else",
	       txn(OPS(nested(txn(OPS(put("a")), NONE)), nested(txn(NONE, OPS(put("a"))))), NONE), duplicate);
	expect("delete and nested put", txn(OPS(delete_range("a", NULL), nested(txn(OPS(put("a")), NONE))), NONE),
	       duplicate);
	expect("nested delete and put", txn(OPS(nested(txn(OPS(delete_range("a", NULL)), NONE)), put("a")), NONE),
	       duplicate);
	expect("nested delete, nested put",
	       txn(OPS(nested(txn(OPS(delete_range("a", NULL)), NONE)), nested(txn(OPS(put("a")), NONE))), NONE),
	       duplicate);
	expect("nested put, nested delete (etcd's order)",
	       txn(OPS(nested(txn(OPS(put("a")), NONE)), nested(txn(OPS(delete_range("a", NULL)), NONE))), NONE), NULL);
	expect("put twice in a nested txn", txn(OPS(nested(txn(OPS(put("a"), put("a")), NONE))), NONE), duplicate);
	expect("deep: a delete two levels down, a put at the top",
	       txn(OPS(nested(txn(OPS(nested(txn(OPS(delete_range("a", "z")), NONE))), NONE)), put("m")), NONE), duplicate);
}

static void test_sizes_and_keys(void)
{
	Etcdserverpb__RequestOp *many[129];
	char keys[129][8];
	for (int k = 0; k < 129; k++) {
		snprintf(keys[k], sizeof(keys[k]), "k%d", k);
		many[k] = put(keys[k]);
	}
	expect("129 ops", txn(129, many, NONE), "etcdserver: too many operations in txn request");
	for (int k = 0; k < 129; k++)
		many[k] = put(keys[k]);
	expect("128 ops", txn(128, many, NONE), NULL);
	/* A nested txn gets what its parent leaves: 128 - 100 = 28. */
	for (size_t inner = 28; inner <= 29; inner++) {
		for (int k = 0; k < 129; k++)
			many[k] = put(keys[k]);
		Etcdserverpb__RequestOp *outer[100];
		for (int k = 0; k < 99; k++)
			outer[k] = put(keys[k]);
		outer[99] = nested(txn(inner, many + 100, NONE)); /* keys of its own */
		expect(inner == 28 ? "100 outer, 28 nested" : "100 outer, 29 nested", txn(100, outer, NONE),
		       inner == 28 ? NULL : "etcdserver: too many operations in txn request");
	}
	Etcdserverpb__RequestOp empty = ETCDSERVERPB__REQUEST_OP__INIT;
	expect("an empty op, nested", txn(OPS(nested(txn(NONE, OPS(&empty)))), NONE), "etcdserver: key not found");
	expect("a put without a key", txn(OPS(put("")), NONE), "etcdserver: key is not provided");
	Etcdserverpb__RequestOp *ignoring = put("a");
	ignoring->request_put->ignore_value = true;
	ignoring->request_put->value = text("v");
	expect("ignore_value with a value", txn(OPS(ignoring), NONE), "etcdserver: value is provided");
}

int main(void)
{
	test_duplicates();
	test_sizes_and_keys();
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
