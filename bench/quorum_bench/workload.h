/* bench/quorum_bench/workload.h: what each request of a workload is (etcd v3 KV calls, packed with
 * protobuf-c) and what its reply must say.
 *
 * put:   KV.Put(key, value); keys as etcd's benchmark makes them (bench_make_key), random in the key
 *        space or, with --sequential-keys, the request number mod the key space; one random value.
 * range: KV.Range(KEY, END), serializable with --consistency=s; the same packed request every time.
 * txn:   compare-and-swap on the client's own key (client i: key i mod key space):
 *        If(mod_revision(k) == last revision this client saw for k) Then(Put k) Else(Range k).
 *        A success teaches the client the header revision, a failure the key's mod_revision from the
 *        Else range, so the next attempt can succeed; both are counted (txn_succeeded / txn_failed).
 * mixed: a Range of one key (--consistency) with probability --read-ratio, else a Put.
 * The caller owns the threads; one workload_thread per thread, one workload_client per client. */
#ifndef QUORUMD_BENCH_WORKLOAD_H
#define QUORUMD_BENCH_WORKLOAD_H

#include "bench_flags.h"

#include <stdint.h>

enum op_kind { OP_PUT, OP_RANGE, OP_TXN, OP_KINDS };
const char *op_kind_name(enum op_kind kind);

/* Read-only after workload_prepare, shared by all threads. */
struct workload_shared {
	const struct bench_config *cfg;
	uint8_t *value;           /* val_size random bytes */
	uint8_t *range_request;   /* packed RangeRequest for the range workload */
	size_t range_request_length;
};

struct workload_thread {
	const struct workload_shared *shared;
	uint64_t rng;
	uint64_t sequence; /* this thread's request number (sequential keys: thread-strided) */
	unsigned stride, offset;
	uint8_t *key;
	uint8_t *buffer;
	size_t buffer_capacity;
	uint64_t txn_succeeded, txn_failed;
};

struct workload_client {
	uint64_t txn_key;      /* txn: this client's key index */
	int64_t known_mod_rev; /* txn: the key's mod_revision as last seen (0: absent) */
};

int workload_prepare(struct workload_shared *shared, const struct bench_config *cfg, char *err, size_t errlen);
void workload_shared_free(struct workload_shared *shared);
void workload_thread_init(struct workload_thread *t, const struct workload_shared *shared, unsigned thread_index,
    unsigned thread_count);
void workload_thread_free(struct workload_thread *t);
void workload_client_init(struct workload_client *c, const struct bench_config *cfg, unsigned client_index);

/* The next request for client c: the method path, its packed message (valid until the next call on t)
 * and its kind. -1 only when out of memory. */
int workload_next(struct workload_thread *t, struct workload_client *c, const char **path, const uint8_t **message,
    size_t *length, enum op_kind *kind);
/* Checks an OK reply of that kind (and learns from it, for txn). 0, or -1 with a message. */
int workload_reply(struct workload_thread *t, struct workload_client *c, enum op_kind kind, const uint8_t *reply,
    size_t length, char *err, size_t errlen);

uint64_t bench_rng_next(uint64_t *state);

#endif
