/* bench/quorum_bench/status.h: Maintenance.Status of endpoints (--target-leader, `status`). */
#ifndef QUORUMD_BENCH_STATUS_H
#define QUORUMD_BENCH_STATUS_H

#include "bench_flags.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct endpoint_status {
	bool ok;
	int code;           /* gRPC status of the call */
	char message[200];
	uint64_t member_id; /* header.member_id */
	uint64_t leader;
	uint64_t raft_term, raft_index, applied_index;
	int64_t db_size;
	bool is_learner;
	char version[32];
};

/* One Status call on a connection of its own. 0, or -1 with st->code and st->message. */
int bench_status(const struct bench_endpoint *ep, const struct gconn_tls *tls, uint64_t timeout_ns,
    struct endpoint_status *st);
/* The endpoint that says it is the leader (its member ID equals the leader it reports). -1 with what
 * each endpoint said when none does. */
int bench_find_leader(const struct bench_config *cfg, size_t *leader_index, char *err, size_t errlen);
/* The `status` workload: a table (or JSON) of every endpoint; returns the exit code (1 if any failed). */
int bench_print_status(const struct bench_config *cfg, FILE *out);

#endif
