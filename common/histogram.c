/* common/histogram.c: see histogram.h. */
#include "histogram.h"

#include <math.h>

void histogram_init(struct histogram *histogram, double first_bound, double factor, int bucket_count)
{
	if (bucket_count > HISTOGRAM_MAX_BUCKETS)
		bucket_count = HISTOGRAM_MAX_BUCKETS;
	if (bucket_count < 0)
		bucket_count = 0;
	histogram->first_bound = first_bound;
	histogram->factor = factor;
	histogram->bucket_count = bucket_count;
	double bound = first_bound;
	for (int k = 0; k < bucket_count; k++, bound *= factor)
		histogram->bounds_ns[k] = (uint64_t)llround(bound * 1e9);
	for (int k = 0; k <= HISTOGRAM_MAX_BUCKETS; k++)
		atomic_init(&histogram->buckets[k], 0);
	atomic_init(&histogram->sum_ns, 0);
}

double histogram_bound(const struct histogram *histogram, int k)
{
	double bound = histogram->first_bound;
	for (int step = 0; step < k; step++)
		bound *= histogram->factor;
	return bound;
}

void histogram_observe_ns(struct histogram *histogram, uint64_t nanoseconds)
{
	int k = 0;
	/* Prometheus buckets are "less than or equal": a value on a bound counts in that bucket. */
	while (k < histogram->bucket_count && nanoseconds > histogram->bounds_ns[k])
		k++;
	atomic_fetch_add_explicit(&histogram->buckets[k], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&histogram->sum_ns, nanoseconds, memory_order_relaxed);
}

void histogram_read(const struct histogram *histogram, struct histogram_reading *reading)
{
	reading->bucket_count = histogram->bucket_count;
	reading->count = 0;
	for (int k = 0; k <= histogram->bucket_count; k++) {
		reading->buckets[k] = atomic_load_explicit(&histogram->buckets[k], memory_order_relaxed);
		reading->count += reading->buckets[k];
	}
	reading->sum_seconds = (double)atomic_load_explicit(&histogram->sum_ns, memory_order_relaxed) / 1e9;
}
