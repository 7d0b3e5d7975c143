/* bench/quorum_bench/report.h: prints a run's results: a table, or with --json one JSON object with
 * throughput (ops/s), latency_ms {min, mean, p50, p90, p99, p999, max}, errors {CODE_NAME: count},
 * error_details [{code, name, message, count}], the workload's parameters and quorum-bench's own CPU. */
#ifndef QUORUMD_BENCH_REPORT_H
#define QUORUMD_BENCH_REPORT_H

#include "bench_flags.h"
#include "runner.h"

#include <stdio.h>

void bench_report(const struct bench_config *cfg, const struct bench_endpoint *endpoints, size_t endpoint_count,
    const struct bench_results *results, FILE *out);

#endif
