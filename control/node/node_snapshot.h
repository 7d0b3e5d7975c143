/* control/node/node_snapshot.h: Raft snapshots on a member.
 *
 *   storage thread   takes a snapshot every --snapshot-count applied requests (snapshot_keeper.c): a
 *                    checkpoint of the state with its Raft record in member/snap, the state synced;
 *                    then the core writes the WAL marker, keeps the record for followers and compacts
 *                    its log; once the marker is durable, WAL segments and old snapshots beyond
 *                    --max-wals / --max-snapshots go (node_core_wal.c). It also installs a snapshot
 *                    received from the leader, whose marker the core made durable first.
 *   snapshot thread  streams snapshots to followers whose next entry was compacted, and receives the
 *                    leader's (snapshot_transfer.c, over dataplane/snapshot_stream.h).
 *   bootstrap        finds the snapshot the WAL continues from at restart (snapshot_recover).
 *
 * The Raft record of a snapshot is a packed raftpb.Snapshot: metadata (index, term, the configuration
 * with joint and learner state) and, as data, the member list at that index (membership JSON), which a
 * follower installing it takes as its own. The WAL marker carries the packed metadata, so a restart
 * knows the configuration the log continues from even when the snapshot files are damaged. */
#ifndef QUORUMD_CONTROL_NODE_SNAPSHOT_H
#define QUORUMD_CONTROL_NODE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node.h"

/* The configuration in force in a core, packed (raftpb.ConfState); malloc'd. */
uint8_t *snapshot_pack_conf_state(const raft_t *raft, size_t *length);

/* ---- storage thread ---- */

struct snapshot_keeper;

struct snapshot_keeper *snapshot_keeper_new(struct node *node);
void snapshot_keeper_free(struct snapshot_keeper *keeper);
/* The configuration after the entries of the job being applied (packed raftpb.ConfState). */
void snapshot_keeper_note_conf(struct snapshot_keeper *keeper, const uint8_t *conf_state, size_t length);
/* One applied entry and the client requests it held (1 for an entry that holds none). */
void snapshot_keeper_note_entry(struct snapshot_keeper *keeper, uint64_t index, uint64_t term, uint64_t requests);
/* After a committed batch: takes a snapshot when --snapshot-count requests were applied since the last
 * (one that cannot be saved, on a full disk, is logged and tried again after as many requests). 0, or -1
 * with a message (the state could not be synced: the member must stop). */
int snapshot_keeper_after_apply(struct snapshot_keeper *keeper, char *err, size_t errlen);
/* A job carrying a snapshot from the leader, before anything else of the job: replaces the state with the
 * snapshot's checkpoint (the core made the WAL marker and the cut of the log after it durable first). A
 * crash in between restarts from the marker and installs the checkpoint then (snapshot_recover). The caller
 * publishes the new applied index, after the new state's leases were posted to the core. */
int snapshot_keeper_install(struct snapshot_keeper *keeper, const struct storage_job *job, char *err, size_t errlen);

/* ---- bootstrap, at restart ---- */

/* The WAL's snapshot marker names the snapshot its log continues from: returns it as the core's restore
 * snapshot (*out, free with raftpb__snapshot__free_unpacked; NULL without a marker). The configuration
 * comes from the marker itself; the member list from the snapshot's record. When the state is behind
 * the snapshot (a crash while installing one), the checkpoint is installed first. A damaged snapshot is
 * set aside (NAME.broken) and, when the state is not behind it, a new one is taken once running;
 * otherwise this fails naming the file. 0, or -1 with a message. */
int snapshot_recover(struct node *node, Raftpb__Snapshot **out, char *err, size_t errlen);

#endif
