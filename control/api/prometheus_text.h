/* control/api/prometheus_text.h: Prometheus' text exposition format (version 0.0.4) as client_golang
 * writes it for etcd: "# HELP" and "# TYPE" lines, samples with Go's number format (process_metrics.h's
 * prometheus_number), and histograms as cumulative _bucket series ending in le="+Inf", then _sum and
 * _count. A library of its own (libc, common/histogram.h), so its unit test needs no node. */
#ifndef QUORUMD_CONTROL_API_PROMETHEUS_TEXT_H
#define QUORUMD_CONTROL_API_PROMETHEUS_TEXT_H

#include <stddef.h>

#include "histogram.h"
#include "text_buffer.h"

/* "# HELP name help\n# TYPE name type\n". */
void prometheus_family(struct text_buffer *text, const char *name, const char *type, const char *help);
/* "name{labels} value\n"; labels without braces ("To=\"5\""), NULL or "" for none. */
void prometheus_sample(struct text_buffer *text, const char *name, const char *labels, double value);
/* One metric of one sample: family and sample. */
void prometheus_metric(struct text_buffer *text, const char *name, const char *type, const char *help,
                       const char *labels, double value);
/* The series of one histogram: name_bucket{labels,le="..."} (cumulative), le="+Inf", name_sum{labels},
 * name_count{labels}. labels as for prometheus_sample. */
void prometheus_histogram_series(struct text_buffer *text, const char *name, const char *labels,
                                 const struct histogram *histogram);
/* family and series of a histogram with at most one label set. */
void prometheus_histogram(struct text_buffer *text, const char *name, const char *help, const char *labels,
                          const struct histogram *histogram);

#endif
