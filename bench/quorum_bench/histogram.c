/* bench/quorum_bench/histogram.c: the log-bucketed histogram (see histogram.h for the bucket layout). */
#include "histogram.h"

#include <math.h>
#include <string.h>

void hist_init(struct histogram *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned hist_bucket_of(uint64_t value)
{
	if (value < 2 * HIST_SUB)
		return (unsigned)value;
	unsigned msb = 63u - (unsigned)__builtin_clzll(value); /* >= HIST_SUB_BITS + 1 */
	unsigned shift = msb - HIST_SUB_BITS;                   /* value >> shift is in [HIST_SUB, 2*HIST_SUB) */
	unsigned mantissa = (unsigned)(value >> shift);
	return 2 * HIST_SUB + (shift - 1) * HIST_SUB + (mantissa - HIST_SUB);
}

uint64_t hist_bucket_low(unsigned bucket)
{
	if (bucket < 2 * HIST_SUB)
		return bucket;
	unsigned shift = (bucket - 2 * HIST_SUB) / HIST_SUB + 1;
	uint64_t mantissa = HIST_SUB + (bucket - 2 * HIST_SUB) % HIST_SUB;
	return mantissa << shift;
}

uint64_t hist_bucket_high(unsigned bucket)
{
	if (bucket < 2 * HIST_SUB)
		return bucket;
	unsigned shift = (bucket - 2 * HIST_SUB) / HIST_SUB + 1;
	uint64_t low = hist_bucket_low(bucket);
	return low + ((uint64_t)1 << shift) - 1; /* the top bucket ends at UINT64_MAX without overflow */
}

void hist_record(struct histogram *h, uint64_t value)
{
	h->buckets[hist_bucket_of(value)]++;
	h->count++;
	h->sum += (double)value;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

void hist_merge(struct histogram *dst, const struct histogram *src)
{
	if (src->count == 0)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_percentile(const struct histogram *h, double p)
{
	if (h->count == 0)
		return 0;
	if (p >= 100.0)
		return h->max;
	double exact = p / 100.0 * (double)h->count;
	uint64_t rank = (uint64_t)ceil(exact);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t low = hist_bucket_low(i), high = hist_bucket_high(i);
			uint64_t mid = low + (high - low) / 2;
			if (mid < h->min)
				mid = h->min;
			if (mid > h->max)
				mid = h->max;
			return mid;
		}
	}
	return h->max;
}

double hist_mean(const struct histogram *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}

int hist_write_cdf(const struct histogram *h, double unit_per_ms, FILE *out)
{
	if (fprintf(out, "# latency_ms fraction (cumulative, %llu values)\n", (unsigned long long)h->count) < 0)
		return -1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS && seen < h->count; i++) {
		if (!h->buckets[i])
			continue;
		seen += h->buckets[i];
		/* The upper end, so F is "at most X"; clamped so the curve starts at min and ends at max. */
		uint64_t x = hist_bucket_high(i);
		if (x > h->max)
			x = h->max;
		if (x < h->min)
			x = h->min;
		/* The last bucket prints exactly 1 (a ratio of equal counts can only round to 1 anyway). */
		double f = seen == h->count ? 1.0 : (double)seen / (double)h->count;
		if (fprintf(out, "%.6f %.6f\n", (double)x / unit_per_ms, f) < 0)
			return -1;
	}
	return ferror(out) ? -1 : 0;
}
