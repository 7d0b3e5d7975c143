/* control/api/prometheus_text.c: see prometheus_text.h. */
#include "prometheus_text.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include "process_metrics.h"

void prometheus_family(struct text_buffer *text, const char *name, const char *type, const char *help)
{
	text_buffer_append(text, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prometheus_sample(struct text_buffer *text, const char *name, const char *labels, double value)
{
	char number[40];
	prometheus_number(value, number, sizeof(number));
	if (labels && *labels)
		text_buffer_append(text, "%s{%s} %s\n", name, labels, number);
	else
		text_buffer_append(text, "%s %s\n", name, number);
}

void prometheus_metric(struct text_buffer *text, const char *name, const char *type, const char *help,
                       const char *labels, double value)
{
	prometheus_family(text, name, type, help);
	prometheus_sample(text, name, labels, value);
}

void prometheus_histogram_series(struct text_buffer *text, const char *name, const char *labels,
                                 const struct histogram *histogram)
{
	struct histogram_reading reading;
	histogram_read(histogram, &reading);
	bool labelled = labels && *labels;
	uint64_t cumulative = 0;
	for (int k = 0; k < reading.bucket_count; k++) {
		cumulative += reading.buckets[k];
		char bound[40];
		prometheus_number(histogram_bound(histogram, k), bound, sizeof(bound));
		text_buffer_append(text, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labelled ? labels : "",
		                  labelled ? "," : "", bound, cumulative);
	}
	text_buffer_append(text, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labelled ? labels : "",
	                  labelled ? "," : "", reading.count);
	char sum[40];
	prometheus_number(reading.sum_seconds, sum, sizeof(sum));
	if (labelled)
		text_buffer_append(text, "%s_sum{%s} %s\n%s_count{%s} %" PRIu64 "\n", name, labels, sum, name, labels,
		                  reading.count);
	else
		text_buffer_append(text, "%s_sum %s\n%s_count %" PRIu64 "\n", name, sum, name, reading.count);
}

void prometheus_histogram(struct text_buffer *text, const char *name, const char *help, const char *labels,
                          const struct histogram *histogram)
{
	prometheus_family(text, name, "histogram", help);
	prometheus_histogram_series(text, name, labels, histogram);
}
