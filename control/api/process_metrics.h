/* control/api/process_metrics.h: Prometheus' standard process metrics (client_golang's process collector,
 * which etcd registers) read from /proc, and Prometheus' number format as Go's client writes it. */
#ifndef QUORUMD_CONTROL_API_PROCESS_METRICS_H
#define QUORUMD_CONTROL_API_PROCESS_METRICS_H

#include <stddef.h>

struct process_metrics {
	double cpu_seconds;         /* user + system time */
	double open_fds;
	double max_fds;             /* RLIMIT_NOFILE soft limit */
	double resident_bytes;
	double virtual_bytes;
	double virtual_max_bytes;   /* RLIMIT_AS soft limit (unlimited: 2^64 - 1, as Go reports it) */
	double start_time_seconds;  /* since the Unix epoch */
};

/* 0 when every figure was read; -1 with the reason in error[0..error_length) otherwise (the figures read are
 * filled in, the rest are 0). */
int process_metrics_read(struct process_metrics *out, char *err, size_t errlen);

/* value as Go's strconv.FormatFloat(value, 'g', -1, 64) writes it (Prometheus' text format in Go): the
 * shortest digits that read back exactly, with an exponent from 1e+06 up and below 1e-04 ("0.01",
 * "20000", "2.4498176e+07"). Needs at least 32 bytes. */
void prometheus_number(double value, char *out, size_t out_length);

#endif
