/* control/node/snapshot_keeper.c: snapshots on the storage thread, and finding them again at restart.
 *
 * Counting. --snapshot-count is etcd's "committed transactions": etcd puts one client request in each
 * Raft entry and counts entries; quorumd packs many requests into one entry under load, so it counts
 * the client requests applied (an entry holding none, such as a leader's empty entry or a
 * configuration change, counts one), and takes the snapshot at the end of the batch that reached the
 * count. --snapshot-catchup-entries counts the same way: the log keeps the entries that hold the newest
 * N requests before the snapshot, so its memory follows N requests whatever the batching.
 *
 * Taking one, in order: the checkpoint and its Raft record in member/snap, made durable (snap_store);
 * the memtables flushed (state_sync), so the state is durable at least up to the snapshot; then the core
 * is told: it writes the WAL marker with the configuration, keeps the record for followers and compacts
 * its log, and once the marker is durable deletes WAL segments wholly before the snapshot beyond
 * --max-wals files, then snapshots beyond --max-snapshots (node_core_wal.c). A crash anywhere leaves
 * either the old marker (its snapshot is still there: pruning comes after) or the new one (its snapshot
 * was durable before it). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "failpoint.h"
#include "log.h"
#include "node_snapshot.h"

/* The ring of applied entries a compaction point is found in: enough for any --snapshot-catchup-entries
 * (each entry holds at least one request), capped so a huge setting cannot take the memory it bounds. */
#define CATCHUP_RING_MAX (1u << 20)

struct catchup_point {
	uint64_t index;
	uint64_t requests; /* requests applied from the start up to and including this entry */
};

struct snapshot_keeper {
	struct node *node;
	uint8_t *conf_state; /* packed raftpb.ConfState at the applied index */
	size_t conf_state_length;
	uint64_t applied_index; /* the newest entry noted, and its term */
	uint64_t applied_term;
	uint64_t requests;      /* applied since this thread started */
	uint64_t requests_at_snapshot;
	struct catchup_point *ring;
	size_t ring_capacity;
	size_t ring_start;
	size_t ring_count;
	uint64_t snapshot_index;
	bool flushed_ahead; /* the memtables were flushed ahead of the coming snapshot */
	uint64_t flushed_ahead_at_ms;
};

/* How long a snapshot may wait past its count for the flush ahead to finish in RocksDB's threads before
 * the checkpoint waits for it on this thread: under a load that keeps the disk busy a flush can take
 * seconds, and the snapshot must not fall behind its count by more than about a second's requests. */
#define FLUSH_AHEAD_WAIT_MAX_MS 1000

uint8_t *snapshot_pack_conf_state(const raft_t *raft, size_t *length)
{
	struct raft_conf_view view;
	raft_get_conf(raft, &view);
	Raftpb__ConfState conf = RAFTPB__CONF_STATE__INIT;
	conf.n_voters = view.voters_count;
	conf.voters = (uint64_t *)view.voters;
	conf.n_voters_outgoing = view.voters_outgoing_count;
	conf.voters_outgoing = (uint64_t *)view.voters_outgoing;
	conf.n_learners = view.learners_count;
	conf.learners = (uint64_t *)view.learners;
	conf.n_learners_next = view.learners_next_count;
	conf.learners_next = (uint64_t *)view.learners_next;
	conf.auto_leave = view.auto_leave;
	*length = raftpb__conf_state__get_packed_size(&conf);
	uint8_t *bytes = xmalloc(*length ? *length : 1);
	raftpb__conf_state__pack(&conf, bytes);
	return bytes;
}

struct snapshot_keeper *snapshot_keeper_new(struct node *node)
{
	struct snapshot_keeper *keeper = xcalloc(1, sizeof(*keeper));
	keeper->node = node;
	if (node->initial_conf_state_length)
		keeper->conf_state = xmemdup(node->initial_conf_state, node->initial_conf_state_length);
	keeper->conf_state_length = node->initial_conf_state_length;
	keeper->snapshot_index = node->initial_snapshot_index;
	keeper->applied_index = state_applied_index(node->state);
	/* etcd counts from the last snapshot's index across restarts; entries are the only count the WAL
	 * has, and each holds at least one request. */
	keeper->requests = keeper->applied_index > keeper->snapshot_index ? keeper->applied_index - keeper->snapshot_index : 0;
	uint64_t capacity = node->flags.snapshot_catchup_entries + 1;
	keeper->ring_capacity = capacity > CATCHUP_RING_MAX ? CATCHUP_RING_MAX : (size_t)capacity;
	keeper->ring = xcalloc(keeper->ring_capacity, sizeof(*keeper->ring));
	atomic_store(&node->snapshot_index, keeper->snapshot_index);
	return keeper;
}

void snapshot_keeper_free(struct snapshot_keeper *keeper)
{
	if (!keeper)
		return;
	free(keeper->conf_state);
	free(keeper->ring);
	free(keeper);
}

void snapshot_keeper_note_conf(struct snapshot_keeper *keeper, const uint8_t *conf_state, size_t length)
{
	free(keeper->conf_state);
	keeper->conf_state = length ? xmemdup(conf_state, length) : NULL;
	keeper->conf_state_length = length;
}

void snapshot_keeper_note_entry(struct snapshot_keeper *keeper, uint64_t index, uint64_t term, uint64_t requests)
{
	keeper->applied_index = index;
	keeper->applied_term = term;
	keeper->requests += requests;
	size_t slot = (keeper->ring_start + keeper->ring_count) % keeper->ring_capacity;
	if (keeper->ring_count == keeper->ring_capacity)
		keeper->ring_start = (keeper->ring_start + 1) % keeper->ring_capacity;
	else
		keeper->ring_count++;
	keeper->ring[slot] = (struct catchup_point){index, keeper->requests};
}

/* The newest index whose entries after it, up to the snapshot, hold at least the catch-up requests:
 * the log may drop everything up to it. 0 when the ring does not reach that far back (entries applied
 * before a restart were not counted): the next snapshot compacts instead. */
static uint64_t compact_index(const struct snapshot_keeper *keeper, uint64_t snapshot_index)
{
	uint64_t catchup = keeper->node->flags.snapshot_catchup_entries;
	if (catchup == 0)
		return snapshot_index;
	for (size_t k = keeper->ring_count; k-- > 0;) {
		const struct catchup_point *point = &keeper->ring[(keeper->ring_start + k) % keeper->ring_capacity];
		if (point->index <= snapshot_index && keeper->requests - point->requests >= catchup)
			return point->index;
	}
	return 0;
}

static void post_taken(struct node *node, uint8_t *record, size_t length, uint64_t compact, uint64_t durable_applied)
{
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = CORE_MAIL_SNAPSHOT_TAKEN;
	mail->taken.record = record;
	mail->taken.length = length;
	mail->taken.compact_index = compact;
	mail->taken.durable_applied = durable_applied;
	core_mailbox_post(&node->core_inbox, mail);
}

/* A snapshot that could not be saved now: the next try comes after as many requests again. */
static int try_again_later(struct snapshot_keeper *keeper, uint64_t index, const char *error, uint8_t *record)
{
	char escaped[600];
	log_write("warn", "failed to save snapshot; trying again later", "\"snapshot-index\":%" PRIu64 ",\"error\":\"%s\"",
	          index, log_json_escape(error, escaped, sizeof(escaped)));
	keeper->requests_at_snapshot = keeper->requests;
	free(record);
	return 0;
}

static int take_snapshot(struct snapshot_keeper *keeper, char *err, size_t errlen)
{
	struct node *node = keeper->node;
	uint64_t started = clock_monotonic_ms();
	uint64_t index = state_applied_index(node->state);
	uint64_t term = keeper->applied_term;
	Raftpb__ConfState *conf = raftpb__conf_state__unpack(NULL, keeper->conf_state_length, keeper->conf_state);
	if (!conf) {
		snprintf(err, errlen, "snapshot at %" PRIu64 ": the configuration to record does not decode", index);
		return -1;
	}
	struct state_bytes members = state_membership(node->state);
	Raftpb__SnapshotMetadata metadata = RAFTPB__SNAPSHOT_METADATA__INIT;
	metadata.index = index;
	metadata.term = term;
	metadata.conf_state = conf;
	Raftpb__Snapshot snapshot = RAFTPB__SNAPSHOT__INIT;
	snapshot.metadata = &metadata;
	snapshot.data.data = (uint8_t *)members.data;
	snapshot.data.len = members.len;
	size_t record_length = raftpb__snapshot__get_packed_size(&snapshot);
	uint8_t *record = xmalloc(record_length);
	raftpb__snapshot__pack(&snapshot, record);
	raftpb__conf_state__free_unpacked(conf, NULL);

	struct snap_info info;
	char store_error[512];
	FAILPOINT("raftBeforeSaveSnap");
	if (snap_store_create(node->snapshots, node->state, term, record, record_length, &info, store_error,
	                      sizeof(store_error)) != 0) {
		/* Nothing changed: the WAL and the state are whole, the log just stays longer. A full disk
		 * must not stop a member that can still commit; the next try comes after as many requests. */
		return try_again_later(keeper, index, store_error, record);
	}
	uint64_t saved = clock_monotonic_ms();
	/* The WAL may forget an entry only once RocksDB's copy of its effect is durable. */
	uint64_t durable_applied = 0;
	char state_error[256];
	int sync_status = state_sync(node->state, &durable_applied, state_error, sizeof(state_error));
	if (sync_status == STATE_ERR_NOSPACE) {
		/* The flush was refused before it began (a flush onto a full disk breaks RocksDB): the snapshot on
		 * disk has no marker, as after a crash here, and the WAL keeps everything. */
		return try_again_later(keeper, index, state_error, record);
	}
	if (sync_status != STATE_OK) {
		snprintf(err, errlen, "syncing the state after a snapshot: %s", state_error);
		free(record);
		return -1;
	}
	uint64_t compact = compact_index(keeper, index);
	post_taken(node, record, record_length, compact, durable_applied);
	keeper->requests_at_snapshot = keeper->requests;
	keeper->snapshot_index = index;
	node->snapshot_now = false;
	atomic_store(&node->snapshot_index, index);
	atomic_fetch_add(&node->snapshots_taken, 1);
	char path[4200];
	log_write("info", "saved snapshot",
	          "\"snapshot-index\":%" PRIu64 ",\"snapshot-term\":%" PRIu64 ",\"snapshot-dir\":\"%s\",\"compact-index\":%" PRIu64
	          ",\"took-ms\":%" PRIu64 ",\"state-sync-ms\":%" PRIu64,
	          index, term, log_json_escape(snap_store_dir(node->snapshots), path, sizeof(path)), compact,
	          saved - started, clock_monotonic_ms() - saved);
	return 0;
}

int snapshot_keeper_after_apply(struct snapshot_keeper *keeper, char *err, size_t errlen)
{
	struct node *node = keeper->node;
	if (node->flags.snapshot_count == 0)
		return 0;
	uint64_t index = state_applied_index(node->state);
	/* The term of the snapshot's index is known only from an entry applied here. */
	if (index <= keeper->snapshot_index || index != keeper->applied_index)
		return 0;
	uint64_t since_snapshot = keeper->requests - keeper->requests_at_snapshot;
	if (!node->snapshot_now && since_snapshot < node->flags.snapshot_count) {
		/* The checkpoint flushes RocksDB's memtables on this thread, tens to hundreds of milliseconds of
		 * applying nothing when they hold a whole interval's writes: most of them are flushed by RocksDB's
		 * own threads ahead of it, so the checkpoint has only the last thirty-second, or what was applied
		 * while that flush ran (below), left (not below 1,000 requests an interval: there the memtables
		 * are small anyway, and every flush adds a table file). */
		if (!keeper->flushed_ahead && since_snapshot >= node->flags.snapshot_count - node->flags.snapshot_count / 32 &&
		    node->flags.snapshot_count >= 1000) {
			keeper->flushed_ahead = true;
			keeper->flushed_ahead_at_ms = clock_monotonic_ms();
			char flush_error[512];
			if (state_flush_in_background(node->state, flush_error, sizeof(flush_error)) != STATE_OK) {
				char escaped[600];
				log_write("warn", "could not flush the state ahead of a snapshot", "\"error\":\"%s\"",
				          log_json_escape(flush_error, escaped, sizeof(escaped)));
			}
		}
		return 0;
	}
	/* The count is reached. While the flush ahead still runs, the checkpoint would wait for it on this
	 * thread, applying nothing, and then flush all that came since: instead this thread goes on applying
	 * and takes the checkpoint after the first batch that finds the flush done (state_flush_done). No
	 * flush is added (each is a level-0 file, and every fourth starts a compaction). */
	if (!node->snapshot_now && keeper->flushed_ahead && !state_flush_done(node->state) &&
	    clock_monotonic_ms() - keeper->flushed_ahead_at_ms < FLUSH_AHEAD_WAIT_MAX_MS)
		return 0;
	keeper->flushed_ahead = false;
	return take_snapshot(keeper, err, errlen);
}

int snapshot_keeper_install(struct snapshot_keeper *keeper, const struct storage_job *job, char *err, size_t errlen)
{
	struct node *node = keeper->node;
	uint64_t started = clock_monotonic_ms();
	Raftpb__Snapshot *snapshot = raftpb__snapshot__unpack(NULL, job->snapshot_length, job->snapshot);
	if (!snapshot || !snapshot->metadata || !snapshot->metadata->conf_state) {
		snprintf(err, errlen, "the snapshot to install does not decode");
		if (snapshot)
			raftpb__snapshot__free_unpacked(snapshot, NULL);
		return -1;
	}
	uint64_t index = snapshot->metadata->index, term = snapshot->metadata->term;
	struct snap_info info;
	if (!snap_store_find(node->snapshots, index, &info) || info.term != term) {
		snprintf(err, errlen, "the snapshot to install (index %" PRIu64 ", term %" PRIu64 ") is not in %s", index, term,
		         snap_store_dir(node->snapshots));
		raftpb__snapshot__free_unpacked(snapshot, NULL);
		return -1;
	}
	/* The core made the marker durable, with the log after it cut: from here a restart installs the
	 * snapshot itself if the state below is not replaced yet. */
	FAILPOINT("applyBeforeOpenSnapshot");
	char db[4200], state_error[512];
	snap_store_db_path(node->snapshots, &info, db, sizeof(db));
	if (state_restore_from_directory(node->state, db, node->member_id, state_error, sizeof(state_error)) != STATE_OK) {
		snprintf(err, errlen, "installing the snapshot at %" PRIu64 " from %s: %s", index, db, state_error);
		raftpb__snapshot__free_unpacked(snapshot, NULL);
		return -1;
	}
	size_t conf_length = raftpb__conf_state__get_packed_size(snapshot->metadata->conf_state);
	uint8_t *conf = xmalloc(conf_length ? conf_length : 1);
	raftpb__conf_state__pack(snapshot->metadata->conf_state, conf);
	snapshot_keeper_note_conf(keeper, conf, conf_length);
	free(conf);
	raftpb__snapshot__free_unpacked(snapshot, NULL);
	keeper->applied_index = index;
	keeper->applied_term = term;
	keeper->ring_start = keeper->ring_count = 0;
	keeper->requests_at_snapshot = keeper->requests;
	keeper->snapshot_index = index;
	keeper->flushed_ahead = false;
	FAILPOINT("raftAfterApplySnap");
	/* The applied index is published by the caller, once the new state's leases reached the core. */
	atomic_store(&node->snapshot_index, index);
	atomic_fetch_add(&node->snapshots_installed, 1);
	log_write("info", "applied snapshot", "\"snapshot-index\":%" PRIu64 ",\"snapshot-term\":%" PRIu64 ",\"took-ms\":%" PRIu64,
	          index, term, clock_monotonic_ms() - started);
	return 0;
}

/* ---- restart ---- */

int snapshot_recover(struct node *node, Raftpb__Snapshot **out, char *err, size_t errlen)
{
	*out = NULL;
	node->initial_snapshot_index = 0;
	const struct wal_recovered *recovered = wal_recovered(node->wal);
	if (!recovered->has_snapshot || recovered->snapshot.index == 0)
		return 0;
	uint64_t index = recovered->snapshot.index, term = recovered->snapshot.term;
	Raftpb__SnapshotMetadata *metadata =
	    raftpb__snapshot_metadata__unpack(NULL, recovered->snapshot.metadata_length, recovered->snapshot.metadata);
	if (!metadata || !metadata->conf_state || metadata->index != index || metadata->term != term) {
		snprintf(err, errlen, "the WAL's snapshot marker at index %" PRIu64 " carries no configuration that "
		         "decodes: the WAL is damaged", index);
		if (metadata)
			raftpb__snapshot_metadata__free_unpacked(metadata, NULL);
		return -1;
	}
	uint64_t applied = state_applied_index(node->state);
	struct snap_info info;
	bool found = snap_store_find(node->snapshots, index, &info) && info.term == term;
	uint8_t *record_bytes = NULL;
	size_t record_length = 0;
	char fault[700] = "";
	if (!found)
		snprintf(fault, sizeof(fault), "%s/%016" PRIx64 "-%016" PRIx64 ": missing", snap_store_dir(node->snapshots),
		         term, index);
	else if (snap_store_load(node->snapshots, &info, &record_bytes, &record_length, fault, sizeof(fault)) != 0)
		snap_store_mark_broken(node->snapshots, &info, NULL, 0);
	Raftpb__Snapshot *record = fault[0] ? NULL : raftpb__snapshot__unpack(NULL, record_length, record_bytes);
	free(record_bytes);
	if (!fault[0] && !record)
		snprintf(fault, sizeof(fault), "%s/%s/meta: the Raft record does not decode", snap_store_dir(node->snapshots),
		         info.name);
	char escaped[800];
	if (fault[0]) {
		if (applied < index) {
			/* The log before the snapshot is gone and the state does not reach it: nothing here can
			 * rebuild the state at the snapshot's index. */
			snprintf(err, errlen, "the snapshot the WAL continues from is damaged (%s), and the state is behind it "
			         "(applied index %" PRIu64 ", snapshot index %" PRIu64 "): remove the member, delete its data dir "
			         "and add it again, so it receives a snapshot from the leader", fault, applied, index);
			raftpb__snapshot_metadata__free_unpacked(metadata, NULL);
			return -1;
		}
		log_write("warn", "the snapshot the WAL continues from is damaged; the state is past it, so the member starts "
		          "from its state and takes a new snapshot", "\"error\":\"%s\",\"applied-index\":%" PRIu64
		          ",\"snapshot-index\":%" PRIu64, log_json_escape(fault, escaped, sizeof(escaped)), applied, index);
		node->snapshot_now = true;
	} else if (applied < index) {
		char db[4200], state_error[512];
		snap_store_db_path(node->snapshots, &info, db, sizeof(db));
		if (state_restore_from_directory(node->state, db, node->member_id, state_error, sizeof(state_error)) !=
		    STATE_OK) {
			snprintf(err, errlen, "installing the snapshot at %" PRIu64 " from %s: %s", index, db, state_error);
			raftpb__snapshot_metadata__free_unpacked(metadata, NULL);
			raftpb__snapshot__free_unpacked(record, NULL);
			return -1;
		}
		log_write("info", "restored the state from the snapshot the WAL continues from (an install was interrupted)",
		          "\"snapshot-index\":%" PRIu64 ",\"previous-applied-index\":%" PRIu64, index, applied);
	}
	/* The configuration is the WAL's; the member list the snapshot's (or, without one, the state's). */
	Raftpb__Snapshot restore = RAFTPB__SNAPSHOT__INIT;
	restore.metadata = metadata;
	struct state_bytes members = state_membership(node->state);
	if (record) {
		restore.data = record->data;
	} else {
		restore.data.data = (uint8_t *)members.data;
		restore.data.len = members.len;
	}
	size_t packed_length = raftpb__snapshot__get_packed_size(&restore);
	uint8_t *packed = xmalloc(packed_length);
	raftpb__snapshot__pack(&restore, packed);
	*out = raftpb__snapshot__unpack(NULL, packed_length, packed);
	free(packed);
	if (record)
		raftpb__snapshot__free_unpacked(record, NULL);
	raftpb__snapshot_metadata__free_unpacked(metadata, NULL);
	if (!*out)
		alloc_failed(packed_length);
	node->initial_snapshot_index = index;
	return 0;
}
