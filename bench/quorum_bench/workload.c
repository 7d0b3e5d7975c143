/* bench/quorum_bench/workload.c: requests and reply checks of each workload (see workload.h). */
#include "workload.h"

#include "rpc.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_PUT "/etcdserverpb.KV/Put"
#define PATH_RANGE "/etcdserverpb.KV/Range"
#define PATH_TXN "/etcdserverpb.KV/Txn"

const char *op_kind_name(enum op_kind kind)
{
	switch (kind) {
	case OP_PUT: return "put";
	case OP_RANGE: return "range";
	case OP_TXN: return "txn";
	default: return "?";
	}
}

uint64_t bench_rng_next(uint64_t *state)
{
	/* splitmix64: any seed, including 0, gives a good stream. */
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *state, uint64_t n)
{
	return n <= 1 ? 0 : bench_rng_next(state) % n; /* the modulo bias is < n / 2^64 */
}

int workload_prepare(struct workload_shared *shared, const struct bench_config *cfg, char *err, size_t errlen)
{
	memset(shared, 0, sizeof(*shared));
	shared->cfg = cfg;
	shared->value = malloc(cfg->val_size ? cfg->val_size : 1);
	if (!shared->value) {
		snprintf(err, errlen, "out of memory for a %u-byte value", cfg->val_size);
		return -1;
	}
	uint64_t rng = cfg->seed ^ 0x5eedull;
	for (unsigned i = 0; i < cfg->val_size; i++)
		shared->value[i] = (uint8_t)bench_rng_next(&rng);
	if (cfg->workload == BENCH_RANGE) {
		Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
		req.key.data = (uint8_t *)cfg->range_key;
		req.key.len = strlen(cfg->range_key);
		if (cfg->range_end) {
			req.range_end.data = (uint8_t *)cfg->range_end;
			req.range_end.len = strlen(cfg->range_end);
		}
		req.serializable = cfg->serializable;
		size_t n = etcdserverpb__range_request__get_packed_size(&req);
		shared->range_request = malloc(n ? n : 1);
		if (!shared->range_request) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		shared->range_request_length = etcdserverpb__range_request__pack(&req, shared->range_request);
	}
	return 0;
}

void workload_shared_free(struct workload_shared *shared)
{
	free(shared->value);
	free(shared->range_request);
	memset(shared, 0, sizeof(*shared));
}

void workload_thread_init(struct workload_thread *t, const struct workload_shared *shared, unsigned thread_index,
    unsigned thread_count)
{
	memset(t, 0, sizeof(*t));
	t->shared = shared;
	t->rng = shared->cfg->seed * 0x100000001b3ull + thread_index;
	t->stride = thread_count;
	t->offset = thread_index;
	t->key = calloc(1, shared->cfg->key_size ? shared->cfg->key_size : 1);
}

void workload_thread_free(struct workload_thread *t)
{
	free(t->key);
	free(t->buffer);
	t->key = t->buffer = NULL;
}

void workload_client_init(struct workload_client *c, const struct bench_config *cfg, unsigned client_index)
{
	c->txn_key = client_index % cfg->key_space;
	c->known_mod_rev = 0;
}

static uint8_t *reserve(struct workload_thread *t, size_t n)
{
	if (n > t->buffer_capacity) {
		size_t cap = t->buffer_capacity ? t->buffer_capacity : 512;
		while (cap < n)
			cap *= 2;
		uint8_t *p = realloc(t->buffer, cap);
		if (!p)
			return NULL;
		t->buffer = p;
		t->buffer_capacity = cap;
	}
	return t->buffer;
}

/* The key index of the next put or read: request number mod key space, or random. */
static uint64_t next_key_index(struct workload_thread *t)
{
	const struct bench_config *cfg = t->shared->cfg;
	uint64_t n = t->sequence * t->stride + t->offset;
	t->sequence++;
	return cfg->sequential_keys ? n % cfg->key_space : rng_below(&t->rng, cfg->key_space);
}

static int pack(struct workload_thread *t, const ProtobufCMessage *msg, const uint8_t **message, size_t *length)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = reserve(t, n ? n : 1);
	if (!buf)
		return -1;
	*length = protobuf_c_message_pack(msg, buf);
	*message = buf;
	return 0;
}

int workload_next(struct workload_thread *t, struct workload_client *c, const char **path, const uint8_t **message,
    size_t *length, enum op_kind *kind)
{
	const struct bench_config *cfg = t->shared->cfg;
	switch (cfg->workload) {
	case BENCH_RANGE:
		*path = PATH_RANGE;
		*kind = OP_RANGE;
		*message = t->shared->range_request;
		*length = t->shared->range_request_length;
		return 0;
	case BENCH_MIXED:
		if ((double)(bench_rng_next(&t->rng) >> 11) * 0x1.0p-53 < cfg->read_ratio) {
			bench_make_key(t->key, cfg->key_size, next_key_index(t));
			Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
			req.key.data = t->key;
			req.key.len = cfg->key_size;
			req.serializable = cfg->serializable;
			*path = PATH_RANGE;
			*kind = OP_RANGE;
			return pack(t, &req.base, message, length);
		}
		__attribute__((fallthrough)); /* a put */
	case BENCH_PUT: {
		bench_make_key(t->key, cfg->key_size, next_key_index(t));
		Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
		req.key.data = t->key;
		req.key.len = cfg->key_size;
		req.value.data = t->shared->value;
		req.value.len = cfg->val_size;
		*path = PATH_PUT;
		*kind = OP_PUT;
		return pack(t, &req.base, message, length);
	}
	case BENCH_TXN: {
		bench_make_key(t->key, cfg->key_size, c->txn_key);
		Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
		cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
		cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
		cmp.key.data = t->key;
		cmp.key.len = cfg->key_size;
		cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
		cmp.mod_revision = c->known_mod_rev;
		Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
		put.key = cmp.key;
		put.value.data = t->shared->value;
		put.value.len = cfg->val_size;
		Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
		get.key = cmp.key;
		Etcdserverpb__RequestOp then_op = ETCDSERVERPB__REQUEST_OP__INIT;
		then_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
		then_op.request_put = &put;
		Etcdserverpb__RequestOp else_op = ETCDSERVERPB__REQUEST_OP__INIT;
		else_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
		else_op.request_range = &get;
		Etcdserverpb__Compare *cmps[1] = {&cmp};
		Etcdserverpb__RequestOp *thens[1] = {&then_op}, *elses[1] = {&else_op};
		Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
		txn.n_compare = 1;
		txn.compare = cmps;
		txn.n_success = 1;
		txn.success = thens;
		txn.n_failure = 1;
		txn.failure = elses;
		*path = PATH_TXN;
		*kind = OP_TXN;
		return pack(t, &txn.base, message, length);
	}
	default:
		return -1;
	}
}

int workload_reply(struct workload_thread *t, struct workload_client *c, enum op_kind kind, const uint8_t *reply,
    size_t length, char *err, size_t errlen)
{
	/* Put and Range replies are not decoded: the status says it all, and decoding would put the
	 * generator's own cost into what it measures. A txn reply is, to learn the key's revision. */
	if (kind != OP_TXN)
		return 0;
	Etcdserverpb__TxnResponse *resp = etcdserverpb__txn_response__unpack(NULL, length, reply);
	if (!resp) {
		snprintf(err, errlen, "undecodable TxnResponse (%zu bytes)", length);
		return -1;
	}
	int rc = 0;
	if (resp->succeeded) {
		if (!resp->header || resp->header->revision <= 0) {
			snprintf(err, errlen, "txn succeeded without a header revision");
			rc = -1;
		} else {
			c->known_mod_rev = resp->header->revision;
			t->txn_succeeded++;
		}
	} else {
		t->txn_failed++;
		c->known_mod_rev = 0;
		if (resp->n_responses == 1 && resp->responses[0]->response_case ==
		        ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE) {
			Etcdserverpb__RangeResponse *r = resp->responses[0]->response_range;
			if (r && r->n_kvs > 0)
				c->known_mod_rev = r->kvs[0]->mod_revision;
		} else {
			snprintf(err, errlen, "failed txn without its Else range response");
			rc = -1;
		}
	}
	etcdserverpb__txn_response__free_unpacked(resp, NULL);
	return rc;
}
