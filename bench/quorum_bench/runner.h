/* bench/quorum_bench/runner.h: runs a workload against endpoints and gathers what happened.
 *
 * Clients are request slots, not threads: client i rides connection i mod conns, connection j goes to
 * endpoint j mod endpoints (as etcd's benchmark spreads its clients) and is driven by thread j mod
 * threads, each thread one epoll loop. A client whose reply came back issues its next request in the
 * same loop turn (closed loop), or when the schedule says (open loop, --rate): request k of a thread is
 * due at start + k / rate, and its latency counts from then, so a stalled server cannot hide the
 * requests it delayed (no coordinated omission); clients are then only the cap on requests in flight.
 *
 * Latency and throughput count successful requests, as etcd's benchmark does; failures are counted by
 * gRPC status code and message. Elapsed time runs from the first send to the last reply. */
#ifndef QUORUMD_BENCH_RUNNER_H
#define QUORUMD_BENCH_RUNNER_H

#include "bench_flags.h"
#include "histogram.h"
#include "workload.h"

#include <stdbool.h>
#include <stdint.h>

#define BENCH_ERROR_KINDS 32    /* distinct (code, message) pairs kept; more go to other_messages */
#define BENCH_STATUS_CODES 17

struct bench_error_kind {
	int code;
	char message[200];
	uint64_t count;
};

struct bench_results {
	struct histogram all;
	struct histogram by_kind[OP_KINDS];
	uint64_t issued, ok, failed;
	uint64_t ok_by_kind[OP_KINDS];
	uint64_t by_code[BENCH_STATUS_CODES + 1]; /* the last: codes beyond the table */
	struct bench_error_kind errors[BENCH_ERROR_KINDS];
	size_t error_kind_count;
	uint64_t other_messages;
	uint64_t txn_succeeded, txn_failed;
	double elapsed_s;
	double cpu_user_s, cpu_system_s; /* of this process during the run */
	uint64_t reconnects;
	bool interrupted;     /* SIGINT: stopped issuing early */
	char gave_up[600];    /* non-empty when connections could not be re-established */
};

/* Records one failure into r (shared by the threads' own results and the merge). */
void bench_results_add_error(struct bench_results *r, int code, const char *message, uint64_t count);
void bench_results_init(struct bench_results *r);
void bench_results_merge(struct bench_results *dst, const struct bench_results *src);

/* Connects (exit-worthy failure: -1 with a message naming the endpoint), runs, fills results. */
int bench_run(const struct bench_config *cfg, const struct bench_endpoint *endpoints, size_t endpoint_count,
    struct bench_results *results, char *err, size_t errlen);

#endif
