/* storage/snap/snap.h: the member's snapshots on disk (DATA_DIR/member/snap).
 *
 * DIR/<term>-<index>/ (16 hex digits each, etcd's .snap naming) is one snapshot: db/ is a checkpoint of
 * the state at that applied index (state_checkpoint's hard links, or an archive received from the
 * leader and unpacked by a state_archive_sink), and meta is the Raft record that goes with it (opaque
 * bytes here: quorumd keeps its packed raftpb.Snapshot) plus the list of db/'s files with their sizes,
 * under one CRC-32C. A snapshot is built as NAME.tmp (NAME.incoming while it is received, so a transfer
 * can resume) and becomes visible when renamed to NAME: a crash leaves it whole or absent. One that
 * fails its checks is renamed NAME.broken and never chosen again (etcd's .snap.broken).
 *
 * A store holds only its directory's path: calls from several threads are safe as long as two of them
 * do not build the same NAME at once (the storage thread takes snapshots, the snapshot thread receives
 * them, and their names come from different indexes).
 *
 * Errors: 0, or -errno with a message naming the file and what failed written into err. */
#ifndef QUORUMD_STORAGE_SNAP_H
#define QUORUMD_STORAGE_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

#define SNAP_NAME_MAX 48
/* The largest Raft record a snapshot carries (the configuration and the member list). */
#define SNAP_RECORD_MAX (1u << 20)

struct snap_info {
	uint64_t term;
	uint64_t index;
	char name[SNAP_NAME_MAX]; /* <term>-<index> */
};

struct snap_store;

/* Opens (creating) the directory and removes what an interrupted snapshot left (NAME.tmp). */
int snap_store_open(const char *dir, struct snap_store **out, char *err, size_t errlen);
void snap_store_close(struct snap_store *store);
const char *snap_store_dir(const struct snap_store *store);

/* The complete snapshots (not checked: see snap_store_load), highest index first; *out is malloc'd. */
int snap_store_list(const struct snap_store *store, struct snap_info **out, size_t *count, char *err,
		size_t errlen);
/* The complete snapshot at index (any term); false when there is none. */
bool snap_store_find(const struct snap_store *store, uint64_t index, struct snap_info *out);

/* DIR/NAME/db: the checkpoint, to install or to stream. */
void snap_store_db_path(const struct snap_store *store, const struct snap_info *info, char *out, size_t size);

/* Checks a snapshot: meta's CRC, and every file it lists present in db/ with its size (and nothing
 * else there). On success *record (malloc'd) is the Raft record. Errors name the file and the fault
 * (".../snap/0000000000000002-0000000000002710/meta: checksum mismatch"). */
int snap_store_load(const struct snap_store *store, const struct snap_info *info, uint8_t **record,
		size_t *record_length, char *err, size_t errlen);

/* Renames a snapshot that failed snap_store_load to NAME.broken, kept for inspection. */
int snap_store_mark_broken(const struct snap_store *store, const struct snap_info *info, char *err, size_t errlen);

/* Records a snapshot of the state's committed data (no batch open) at its applied index, with the
 * Raft record of that index and term: a checkpoint (hard links), the meta, then the rename. When a
 * snapshot of that term and index exists (received from the leader), it stays and stands for this one. */
int snap_store_create(const struct snap_store *store, struct state *state, uint64_t term, const void *record,
		size_t record_length, struct snap_info *out, char *err, size_t errlen);

/* Receiving a snapshot: DIR/NAME.incoming/db is where the archive is unpacked (created when missing;
 * whatever a sink left there stays, for a resume). Every other NAME.incoming is removed: one transfer
 * at a time is resumable. */
int snap_store_incoming(const struct snap_store *store, uint64_t term, uint64_t index, char *db_path,
		size_t size, char *err, size_t errlen);
/* Writes the meta for the unpacked db/ and renames NAME.incoming to NAME. */
int snap_store_commit_incoming(const struct snap_store *store, uint64_t term, uint64_t index, const void *record,
		size_t record_length, struct snap_info *out, char *err, size_t errlen);

/* Removes NAME.incoming: a transfer that failed in a way a resume would repeat (a bad archive). */
int snap_store_drop_incoming(const struct snap_store *store, uint64_t term, uint64_t index, char *err, size_t errlen);

/* Removes complete snapshots beyond the newest `keep` (0: keeps all; etcd's --max-snapshots), and
 * NAME.incoming directories older than the newest snapshot kept. */
int snap_store_prune(const struct snap_store *store, size_t keep, char *err, size_t errlen);

#endif
