/* control/bootstrap/bootstrap.h: turns a member's flags into an opened member, ready for its threads.
 *
 * bootstrap_open reads the data directory (DATA_DIR/member: identity, wal/, state/) and then, by what it
 * finds and what the flags say:
 *   - a member with data: recovers it (hard state, WAL entries, applied state; with --force-new-cluster,
 *     rewrites the configuration to this member alone, as etcd does); discovery flags are ignored;
 *   - a new data dir, --initial-cluster-state new: the members from --initial-cluster, DNS SRV records
 *     or v3 discovery, with etcd's member and cluster IDs;
 *   - a new data dir, --initial-cluster-state existing: asks the peers in --initial-cluster for the
 *     current member list and refuses to start unless it matches (etcd's "unmatched member while
 *     checking PeerURLs").
 * It fills node->member_id, cluster_id, membership, raft, wal, state and transport, and returns 0, or -1
 * with a message naming what is wrong. Runs on the main thread before node_start_threads. */
#ifndef QUORUMD_CONTROL_BOOTSTRAP_H
#define QUORUMD_CONTROL_BOOTSTRAP_H

#include <stddef.h>

struct node;

int bootstrap_open(struct node *node, char *err, size_t errlen);

#endif
