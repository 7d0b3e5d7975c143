/* control/node/node_core_wal.h: the core thread's half of the write path — the WAL, written from the same
 * loop that steps the Raft core, so nothing stands between a Ready and its write, or between an fsync's
 * completion and the acknowledgement or commit it allows.
 *
 * Each Ready's snapshot marker, entries and hard state are appended and submitted as one io_uring
 * write + fdatasync chain (the WAL's group commit: Readies written while a chain is in flight share the
 * next one). What must wait for durability — the Ready's persisted mark (raft_persisted) and its
 * held-back messages (acknowledgements, votes) — is queued in Ready order and released when the WAL's
 * durable record count passes it, so an acknowledgement never leaves before everything of its own and
 * every earlier Ready is durable (raft.h's contract).
 *
 * Snapshots: a marker for one the storage thread took (core_wal_mark_snapshot) or for one the leader
 * sent (in core_wal_write_ready, made durable before it returns, with the log after it cut); once a
 * marker is durable, WAL segments wholly before it go beyond --max-wals files and snapshots beyond
 * --max-snapshots.
 *
 * Failures: a full disk raises the member's NOSPACE path (node->disk_full: the storage thread proposes the
 * alarm and hands leadership over) and nothing more is written or reported durable until the disk has room
 * again: then (looked for every second, from core_wal_report_durable) the WAL resumes from what is on disk
 * and what Raft handed out after its durable index is written again. Any other WAL error stops the member
 * without acknowledging anything more. Core thread only. */
#ifndef QUORUMD_CONTROL_NODE_CORE_WAL_H
#define QUORUMD_CONTROL_NODE_CORE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node.h"

struct core_wal;

struct core_wal *core_wal_new(struct node *node);
/* Held-back messages not yet sent are dropped, as a crash would drop them. */
void core_wal_free(struct core_wal *wal);
/* Readable when fsyncs completed: then call core_wal_report_durable(wal, true). */
int core_wal_event_fd(const struct core_wal *wal);

/* Writes what ready asks to persist and queues its persisted mark with after_persist (packed messages,
 * taken over: freed once sent or dropped). */
void core_wal_write_ready(struct core_wal *wal, const struct raft_ready *ready, struct packed_message *after_persist,
                          size_t after_persist_count);
/* A snapshot the storage thread took (its index, term and packed raftpb.SnapshotMetadata): its marker is
 * written; once durable, the WAL is released up to min(index, durable_applied). */
void core_wal_mark_snapshot(struct core_wal *wal, uint64_t index, uint64_t term, const uint8_t *metadata,
                            size_t metadata_length, uint64_t durable_applied);
/* Takes completed fsyncs when reap is set (the event fd fired), then releases every queued Ready that is
 * durable: sends its messages, reports raft_persisted. A WAL failed on a full disk instead looks for room
 * (at most once a second) and resumes. True when it released or resumed something (a new Ready may be
 * waiting in the core). */
bool core_wal_report_durable(struct core_wal *wal, bool reap);
/* False while the WAL is failed or the disk is full: the member writes nothing. */
bool core_wal_writable(const struct core_wal *wal);

#endif
