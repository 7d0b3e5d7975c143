/* bench/quorum_bench/histogram.h: a log-bucketed latency histogram in the manner of HdrHistogram.
 *
 * Values are unsigned 64-bit (quorum-bench records nanoseconds). Values below 2 * HIST_SUB are counted
 * exactly; above, each power of two [2^k, 2^(k+1)) is cut into HIST_SUB equal buckets, so a bucket is at
 * most 1/HIST_SUB (0.78%) of its values wide and a percentile read back as the bucket's midpoint is
 * within 0.4% of a recorded value. The whole 64-bit range takes HIST_BUCKETS counters (58 KiB); recording
 * is a count-leading-zeros and an increment. count, min, max and sum are kept exactly. Histograms of
 * separate threads are merged at the end (hist_merge); nothing here is thread-safe. */
#ifndef QUORUMD_BENCH_HISTOGRAM_H
#define QUORUMD_BENCH_HISTOGRAM_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS) /* buckets per power of two above the exact range */
/* Exact buckets 0 .. 2*HIST_SUB-1, then HIST_SUB buckets for each shift 1 .. 63-HIST_SUB_BITS. */
#define HIST_BUCKETS (2 * HIST_SUB + (63 - HIST_SUB_BITS) * HIST_SUB)

struct histogram {
	uint64_t count;
	uint64_t min; /* UINT64_MAX while empty */
	uint64_t max;
	double sum;
	uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct histogram *h);
void hist_record(struct histogram *h, uint64_t value);
/* Adds src's counts into dst. */
void hist_merge(struct histogram *dst, const struct histogram *src);
/* The value at percentile p (0 < p <= 100): the midpoint of the bucket holding the ceil(p% * count)-th
 * smallest value, clamped to [min, max]; p = 100 gives max exactly. 0 when empty. */
uint64_t hist_percentile(const struct histogram *h, double p);
double hist_mean(const struct histogram *h);

/* Writes the cumulative distribution for gnuplot: a "# latency_ms fraction" header, then for each
 * non-empty bucket in ascending order "X F", X the bucket's upper end (clamped to [min, max]) divided by
 * unit_per_ms (1e6 for nanoseconds) and F the fraction of all values <= that bucket. The last line is
 * "max 1". Each line stands for a bucket, not a value, so the file stays a few hundred lines for any
 * count. An empty histogram writes only the header. Returns 0, or -1 when a write fails. */
int hist_write_cdf(const struct histogram *h, double unit_per_ms, FILE *out);

/* The bucket of a value, and the smallest and largest value a bucket holds (for tests). */
unsigned hist_bucket_of(uint64_t value);
uint64_t hist_bucket_low(unsigned bucket);
uint64_t hist_bucket_high(unsigned bucket);

#endif
