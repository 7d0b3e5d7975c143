/* control/etcd/txn_check.c: etcd 3.4's checkTxnRequest and checkIntervals. The first bounds the
 * operations per level and wants a key in every operation; the second refuses a txn that would write
 * one key twice in one revision (put and put, put and delete), the way etcd walks the tree, quirks
 * included (README.md, "Txn checks"). Everything here borrows the request's bytes. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "bytes_compare.h"
#include "grpc_status.h"
#include "txn_check.h"

static int binary_compare(ProtobufCBinaryData a, ProtobufCBinaryData b)
{
	return bytes_compare(a.data, a.len, b.data, b.len);
}

/* ---- checkTxnRequest ---- */

static const char *check_request(const Etcdserverpb__TxnRequest *txn, size_t max_operations);

static const char *check_op(const Etcdserverpb__RequestOp *op, size_t max_operations)
{
	/* A oneof: protobuf-c keeps its members in a union, so only the set one may be read. */
	switch (op->request_case) {
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
		return op->request_range->key.len == 0 ? "etcdserver: key is not provided" : NULL;
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT: {
		const Etcdserverpb__PutRequest *put = op->request_put;
		if (put->key.len == 0)
			return "etcdserver: key is not provided";
		if (put->ignore_value && put->value.len != 0)
			return "etcdserver: value is provided";
		if (put->ignore_lease && put->lease != 0)
			return "etcdserver: lease is provided";
		return NULL;
	}
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
		return op->request_delete_range->key.len == 0 ? "etcdserver: key is not provided" : NULL;
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
		return check_request(op->request_txn, max_operations);
	default:
		return "etcdserver: key not found"; /* etcd's answer to an empty op */
	}
}

static const char *check_request(const Etcdserverpb__TxnRequest *txn, size_t max_operations)
{
	size_t operations = txn->n_compare;
	if (operations < txn->n_success)
		operations = txn->n_success;
	if (operations < txn->n_failure)
		operations = txn->n_failure;
	if (operations > max_operations)
		return "etcdserver: too many operations in txn request";
	for (size_t k = 0; k < txn->n_compare; k++)
		if (txn->compare[k]->key.len == 0)
			return "etcdserver: key is not provided";
	for (int branch = 0; branch < 2; branch++) {
		Etcdserverpb__RequestOp **ops = branch ? txn->failure : txn->success;
		size_t count = branch ? txn->n_failure : txn->n_success;
		for (size_t k = 0; k < count; k++) {
			const char *problem = check_op(ops[k], max_operations - operations);
			if (problem)
				return problem;
		}
	}
	return NULL;
}

/* ---- checkIntervals ---- */

struct key_set {
	ProtobufCBinaryData *keys;
	size_t count;
	size_t capacity;
};

/* A deleted range [begin, end), or the one key begin when point. A range whose end is not above its
 * begin (an end of "\0", etcd's "every key >= begin") holds no key: etcd's interval tree sees it as
 * empty. */
struct deleted {
	ProtobufCBinaryData begin;
	ProtobufCBinaryData end;
	bool point;
};

struct deleted_list {
	struct deleted *items;
	size_t count;
	size_t capacity;
};

static bool set_has(const struct key_set *set, ProtobufCBinaryData key)
{
	for (size_t k = 0; k < set->count; k++)
		if (binary_compare(set->keys[k], key) == 0)
			return true;
	return false;
}

static void set_add(struct key_set *set, ProtobufCBinaryData key)
{
	if (set_has(set, key))
		return;
	if (set->count == set->capacity) {
		set->capacity = set->capacity ? set->capacity * 2 : 16;
		set->keys = xreallocarray(set->keys, set->capacity, sizeof(*set->keys));
	}
	set->keys[set->count++] = key;
}

static void deleted_add(struct deleted_list *list, struct deleted range)
{
	if (list->count == list->capacity) {
		list->capacity = list->capacity ? list->capacity * 2 : 16;
		list->items = xreallocarray(list->items, list->capacity, sizeof(*list->items));
	}
	list->items[list->count++] = range;
}

static bool deleted_has(const struct deleted_list *list, ProtobufCBinaryData key)
{
	for (size_t k = 0; k < list->count; k++) {
		const struct deleted *range = &list->items[k];
		if (range->point ? binary_compare(key, range->begin) == 0
		                 : binary_compare(range->begin, key) <= 0 && binary_compare(key, range->end) < 0)
			return true;
	}
	return false;
}

/* One level's ops: fills puts and deletes (empty on entry) for the level above; false on a duplicate.
 * The order is etcd's and matters: this level's deletes, then each nested txn's puts (checked against
 * what came before) followed by its deletes, then this level's puts. */
static bool intervals_ok(Etcdserverpb__RequestOp **ops, size_t count, struct key_set *puts,
                         struct deleted_list *deletes)
{
	for (size_t k = 0; k < count; k++) {
		if (ops[k]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE)
			continue;
		const Etcdserverpb__DeleteRangeRequest *range = ops[k]->request_delete_range;
		deleted_add(deletes, (struct deleted){range->key, range->range_end, range->range_end.len == 0});
	}
	bool ok = true;
	for (size_t k = 0; ok && k < count; k++) {
		if (ops[k]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN)
			continue;
		const Etcdserverpb__TxnRequest *nested = ops[k]->request_txn;
		struct key_set then_puts = {0}, else_puts = {0};
		struct deleted_list then_deletes = {0}, else_deletes = {0};
		ok = intervals_ok(nested->success, nested->n_success, &then_puts, &then_deletes) &&
		     intervals_ok(nested->failure, nested->n_failure, &else_puts, &else_deletes);
		for (size_t p = 0; ok && p < then_puts.count; p++) {
			ok = !set_has(puts, then_puts.keys[p]) && !deleted_has(deletes, then_puts.keys[p]);
			set_add(puts, then_puts.keys[p]);
		}
		/* The then and else branches of one txn exclude each other: they may write the same key. */
		for (size_t p = 0; ok && p < else_puts.count; p++) {
			ProtobufCBinaryData key = else_puts.keys[p];
			ok = !(set_has(puts, key) && !set_has(&then_puts, key)) && !deleted_has(deletes, key);
			set_add(puts, key);
		}
		for (size_t d = 0; ok && d < then_deletes.count; d++)
			deleted_add(deletes, then_deletes.items[d]);
		for (size_t d = 0; ok && d < else_deletes.count; d++)
			deleted_add(deletes, else_deletes.items[d]);
		free(then_puts.keys);
		free(else_puts.keys);
		free(then_deletes.items);
		free(else_deletes.items);
	}
	for (size_t k = 0; ok && k < count; k++) {
		if (ops[k]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT)
			continue;
		ProtobufCBinaryData key = ops[k]->request_put->key;
		ok = !set_has(puts, key) && !deleted_has(deletes, key);
		set_add(puts, key);
	}
	return ok;
}

static bool branch_intervals_ok(Etcdserverpb__RequestOp **ops, size_t count)
{
	struct key_set puts = {0};
	struct deleted_list deletes = {0};
	bool ok = intervals_ok(ops, count, &puts, &deletes);
	free(puts.keys);
	free(deletes.items);
	return ok;
}

int kv_txn_check(const Etcdserverpb__TxnRequest *txn, size_t max_operations, char *err, size_t errlen)
{
	const char *problem = check_request(txn, max_operations);
	/* After the cheap checks: they bound the size the interval check walks. */
	if (!problem && !(branch_intervals_ok(txn->success, txn->n_success) &&
	                  branch_intervals_ok(txn->failure, txn->n_failure)))
		problem = "etcdserver: duplicate key given in txn request";
	if (!problem)
		return GRPC_OK;
	snprintf(err, errlen, "%s", problem);
	return GRPC_INVALID_ARGUMENT;
}
