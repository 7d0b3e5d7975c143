/* control/node/node_compactor.h: etcd 3.4's auto-compaction (v3compactor) on the core thread. The leader
 * proposes MVCC compactions through Raft, like any client's `compaction`, so every member compacts at the
 * same revision:
 *   --auto-compaction-mode periodic --auto-compaction-retention D (a Go duration, or a bare number of
 *     hours): every D (at most every hour) compact to the revision that was current D ago, sampled every
 *     D/10; the first one D after the compactor started.
 *   --auto-compaction-mode revision --auto-compaction-retention N: every 5 minutes compact to the current
 *     revision minus N, when that moved since the last time.
 *   A retention of 0 (the default) turns it off.
 * Followers keep sampling (a new leader knows the revisions of the last period); only the leader proposes.
 * Logs are etcd's: "starting auto periodic compaction" / "starting auto revision compaction". */
#ifndef QUORUMD_CONTROL_NODE_COMPACTOR_H
#define QUORUMD_CONTROL_NODE_COMPACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node.h"

enum compactor_mode { COMPACTOR_OFF, COMPACTOR_PERIODIC, COMPACTOR_REVISION };

struct compactor_config {
	enum compactor_mode mode;
	uint64_t period_ms;        /* periodic */
	int64_t retention;         /* revision: revisions kept */
	uint64_t check_interval_ms; /* revision: how often it looks (etcd: 5 minutes) */
};

/* The flags' mode and retention as etcd parses them. 0, or -1 with etcd's message in error. */
int compactor_parse(const char *mode, const char *retention, struct compactor_config *config, char *err,
                    size_t errlen);

/* Up to etcd's 10 samples per period plus the one a period ago. */
#define COMPACTOR_SAMPLES 11

struct compactor {
	struct node *node;
	struct compactor_config config;
	uint64_t started_ms;
	uint64_t next_sample_ms;
	uint64_t last_success_ms;
	uint64_t base_interval_ms;
	int64_t samples[COMPACTOR_SAMPLES]; /* periodic: revisions, oldest first */
	size_t sample_count;
	int64_t previous;                   /* revision: the last revision compacted to */
	uint64_t next_counter;              /* request ids of the proposals */
};

void compactor_init(struct compactor *compactor, struct node *node, const struct compactor_config *config);
/* Every heartbeat tick on the core thread. */
void compactor_tick(struct compactor *compactor, bool is_leader);

#endif
