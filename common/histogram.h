/* common/histogram.h: a latency histogram with Prometheus' exponential buckets (client_golang's
 * ExponentialBuckets(first, factor, count)), the shape etcd's duration metrics have. Observing is a few
 * relaxed atomic adds, never a lock, so any thread may observe on a hot path while another reads; a
 * reader may see a count one observation ahead of a bucket, never a bucket ahead of the total it
 * renders (control/api renders _bucket from the buckets and _count from their sum).
 *
 * Buckets are stored per bucket (not cumulative); an observation above the last bound counts only in
 * the implicit +Inf bucket. Durations are taken in nanoseconds and the sum kept in them too. */
#ifndef QUORUMD_COMMON_HISTOGRAM_H
#define QUORUMD_COMMON_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

enum { HISTOGRAM_MAX_BUCKETS = 24 };

struct histogram {
	double first_bound;  /* seconds */
	double factor;
	int bucket_count;    /* finite buckets; at most HISTOGRAM_MAX_BUCKETS */
	uint64_t bounds_ns[HISTOGRAM_MAX_BUCKETS];
	atomic_uint_fast64_t buckets[HISTOGRAM_MAX_BUCKETS + 1]; /* the last: above every bound (+Inf) */
	atomic_uint_fast64_t sum_ns;
};

/* Bounds first_bound * factor^k seconds, k = 0 .. bucket_count - 1 (clamped to HISTOGRAM_MAX_BUCKETS);
 * all counts zero. */
void histogram_init(struct histogram *histogram, double first_bound, double factor, int bucket_count);
void histogram_observe_ns(struct histogram *histogram, uint64_t nanoseconds);
/* The upper bound of bucket k as client_golang computes it (repeated multiplication, as a double). */
double histogram_bound(const struct histogram *histogram, int k);

/* A consistent-enough copy for rendering: per-bucket counts, their total and the sum in seconds. */
struct histogram_reading {
	int bucket_count;
	uint64_t buckets[HISTOGRAM_MAX_BUCKETS + 1];
	uint64_t count;
	double sum_seconds;
};
void histogram_read(const struct histogram *histogram, struct histogram_reading *reading);

#endif
