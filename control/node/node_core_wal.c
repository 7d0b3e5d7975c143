/* control/node/node_core_wal.c: the WAL on the core thread (node_core_wal.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "failpoint.h"
#include "log.h"
#include "node_core_wal.h"
#include "node_members.h"

/* One Ready's promises, released once the WAL's durable record count reaches records_after. */
struct durable_wait {
	uint64_t records_after;
	uint64_t persist_index; /* 0: nothing to report */
	uint64_t persist_term;
	struct packed_message *after_persist;
	size_t after_persist_count;
	uint64_t written_at_us; /* 0: the Ready wrote nothing (no fsync to time) */
};

struct core_wal {
	struct node *node;
	struct durable_wait *waits; /* oldest first, from waits_head */
	size_t waits_head;
	size_t waits_count;
	size_t waits_capacity;
	bool failed;
	bool no_space;              /* failed for want of disk space: resumed once there is room (try_resume) */
	uint64_t resume_checked_ms;
	bool release_pending;       /* a snapshot marker whose durability releases the WAL before it */
	uint64_t release_up_to;
	uint64_t marker_records;
	uint64_t marker_index;      /* the newest marker written: an older one must never follow it */
	struct wal_entry *entries;  /* scratch for one Ready's entries (their data stays the core's) */
	size_t entries_capacity;
};

struct core_wal *core_wal_new(struct node *node)
{
	struct core_wal *wal = xcalloc(1, sizeof(*wal));
	wal->node = node;
	wal->marker_index = node->initial_snapshot_index;
	return wal;
}

static void free_packed(struct packed_message *messages, size_t count)
{
	for (size_t k = 0; k < count; k++)
		free(messages[k].bytes);
	free(messages);
}

void core_wal_free(struct core_wal *wal)
{
	if (!wal)
		return;
	for (size_t k = 0; k < wal->waits_count; k++) {
		struct durable_wait *wait = &wal->waits[wal->waits_head + k];
		free_packed(wait->after_persist, wait->after_persist_count);
	}
	free(wal->waits);
	free(wal->entries);
	free(wal);
}

int core_wal_event_fd(const struct core_wal *wal)
{
	return wal_event_fd(wal->node->wal);
}

bool core_wal_writable(const struct core_wal *wal)
{
	return !wal->failed;
}

/* The WAL cannot write. A full disk keeps the member up on etcd's NOSPACE terms (the storage thread raises
 * the alarm and hands leadership over; reads go on) until there is room again (try_resume); anything else
 * stops it, acknowledging nothing more. */
static void fail(struct core_wal *wal, const char *what, int rc, const char *error)
{
	struct node *node = wal->node;
	if (wal->failed)
		return;
	wal->failed = true;
	if (rc == -ENOSPC || strstr(error, "No space left on device")) {
		char escaped[600];
		log_json_escape(error, escaped, sizeof(escaped));
		/* etcd's words for a WAL write that failed (raft.go). */
		log_write("error", "failed to save Raft hard state and entries", "\"what\":\"%s\",\"data-dir\":\"%s\",\"error\":\"%s\"",
		          what, node->flags.data_dir, escaped);
		log_write("warn", "out of disk space: raising alarm NOSPACE, refusing writes, serving reads until the disk has room again",
		          "\"member-id\":\"%" PRIx64 "\",\"data-dir\":\"%s\"", node->member_id, node->flags.data_dir);
		wal->no_space = true;
		wal->resume_checked_ms = clock_monotonic_ms();
		atomic_fetch_or(&node->disk_full, NODE_DISK_FULL_WAL | NODE_DISK_FULL_ALARM_UNSEEN);
		return;
	}
	char what_and_error[600];
	snprintf(what_and_error, sizeof(what_and_error), "%s: %s", what, error);
	node_stop_on_storage_failure(node, what_and_error);
}

/* A snapshot marker just appended: once it is durable, release_behind_marker lets the WAL go up to
 * release_up_to; no older marker may follow it. */
static void expect_marker(struct core_wal *wal, uint64_t index, uint64_t release_up_to)
{
	wal->marker_index = index;
	wal->release_pending = true;
	wal->release_up_to = release_up_to;
	wal->marker_records = wal_appended_records(wal->node->wal);
}

static struct durable_wait *queue_wait(struct core_wal *wal)
{
	if (wal->waits_head + wal->waits_count == wal->waits_capacity) {
		if (wal->waits_head > 0) {
			memmove(wal->waits, wal->waits + wal->waits_head, wal->waits_count * sizeof(*wal->waits));
			wal->waits_head = 0;
		} else {
			wal->waits_capacity = wal->waits_capacity ? wal->waits_capacity * 2 : 64;
			wal->waits = xrealloc(wal->waits, wal->waits_capacity * sizeof(*wal->waits));
		}
	}
	struct durable_wait *wait = &wal->waits[wal->waits_head + wal->waits_count++];
	memset(wait, 0, sizeof(*wait));
	return wait;
}

/* A snapshot from the leader: its marker first, durable, with the log after it cut, before anything of
 * the Ready that follows it. From here a restart installs the snapshot itself if the state below was not
 * replaced yet (snapshot_recover); the storage thread replaces it next. */
static int write_install_marker(struct core_wal *wal, const Raftpb__Snapshot *snapshot, char *err, size_t errlen)
{
	struct node *node = wal->node;
	const Raftpb__SnapshotMetadata *metadata = snapshot->metadata;
	if (!metadata || !metadata->conf_state) {
		snprintf(err, errlen, "the snapshot to install carries no configuration");
		return -EINVAL;
	}
	struct snap_info info;
	if (!snap_store_find(node->snapshots, metadata->index, &info) || info.term != metadata->term) {
		snprintf(err, errlen, "the snapshot to install (index %" PRIu64 ", term %" PRIu64 ") is not in %s",
		         metadata->index, metadata->term, snap_store_dir(node->snapshots));
		return -ENOENT;
	}
	FAILPOINT("raftBeforeApplySnap");
	size_t length = raftpb__snapshot_metadata__get_packed_size(metadata);
	uint8_t *packed = xmalloc(length ? length : 1);
	raftpb__snapshot_metadata__pack(metadata, packed);
	struct wal_snapshot_marker marker = {metadata->index, metadata->term, packed, length};
	int rc = wal_save_snapshot(node->wal, &marker, err, errlen);
	free(packed);
	if (rc == 0)
		rc = wal_truncate_after(node->wal, metadata->index, err, errlen);
	if (rc == 0)
		rc = wal_submit(node->wal, err, errlen);
	uint64_t ignored;
	while (rc == 0 && !wal_all_durable(node->wal))
		rc = wal_wait(node->wal, &ignored, err, errlen);
	if (rc != 0)
		return rc;
	/* The old log is all behind the marker now. */
	expect_marker(wal, metadata->index, metadata->index);
	return 0;
}

void core_wal_write_ready(struct core_wal *wal, const struct raft_ready *ready, struct packed_message *after_persist,
                          size_t after_persist_count)
{
	struct node *node = wal->node;
	char error[512] = "";
	if (wal->failed) {
		/* Nothing more becomes durable here: its acknowledgements are never sent. */
		free_packed(after_persist, after_persist_count);
		return;
	}
	bool writes = ready->entries_count || ready->has_hard_state || ready->snapshot;
	if (writes)
		FAILPOINT("raftBeforeSave");
	int rc = 0;
	const char *what = "WAL snapshot marker";
	if (ready->snapshot)
		rc = write_install_marker(wal, ready->snapshot, error, sizeof(error));
	if (rc == 0 && ready->entries_count) {
		what = "WAL append";
		if (ready->entries_count > wal->entries_capacity) {
			wal->entries_capacity = ready->entries_count * 2;
			wal->entries = xrealloc(wal->entries, wal->entries_capacity * sizeof(*wal->entries));
		}
		/* The WAL copies the data into its write buffer: the core's log may drop it before the write ends. */
		for (size_t k = 0; k < ready->entries_count; k++) {
			const Raftpb__Entry *entry = ready->entries[k];
			wal->entries[k] = (struct wal_entry){entry->term, entry->index, (uint32_t)entry->type, entry->data.data,
			                                     entry->data.len};
		}
		rc = wal_append_entries(node->wal, wal->entries, ready->entries_count, error, sizeof(error));
	}
	if (rc == 0 && ready->has_hard_state) {
		what = "WAL hard state";
		struct wal_hard_state hard_state = {ready->hard_state.term, ready->hard_state.vote, ready->hard_state.commit};
		rc = wal_set_hard_state(node->wal, &hard_state, error, sizeof(error));
	}
	if (rc == 0 && writes) {
		what = "WAL submit";
		rc = wal_submit(node->wal, error, sizeof(error));
	}
	if (rc != 0) {
		fail(wal, what, rc, error);
		free_packed(after_persist, after_persist_count);
		return;
	}
	if (!ready->persist_index && after_persist_count == 0)
		return;
	struct durable_wait *wait = queue_wait(wal);
	wait->records_after = wal_appended_records(node->wal);
	wait->persist_index = ready->persist_index;
	wait->persist_term = ready->persist_term;
	wait->after_persist = after_persist;
	wait->after_persist_count = after_persist_count;
	wait->written_at_us = writes ? clock_monotonic_us() : 0;
}

void core_wal_mark_snapshot(struct core_wal *wal, uint64_t index, uint64_t term, const uint8_t *metadata,
                            size_t metadata_length, uint64_t durable_applied)
{
	struct node *node = wal->node;
	/* A snapshot from the leader was installed past it meanwhile: recovery reads the newest marker. */
	if (wal->failed || index <= wal->marker_index)
		return;
	char error[512] = "";
	struct wal_snapshot_marker marker = {index, term, metadata, metadata_length};
	int rc = wal_save_snapshot(node->wal, &marker, error, sizeof(error));
	if (rc == 0)
		rc = wal_submit(node->wal, error, sizeof(error));
	if (rc != 0) {
		fail(wal, "WAL snapshot marker", rc, error);
		return;
	}
	FAILPOINT("raftAfterSaveSnap");
	/* The WAL may forget an entry only once RocksDB's copy of its effect is durable. */
	expect_marker(wal, index, index < durable_applied ? index : durable_applied);
}

/* Once a snapshot's marker is durable: WAL segments wholly before it go (beyond --max-wals files), then
 * snapshots beyond --max-snapshots. A crash anywhere leaves either the old marker (its snapshot is still
 * there: pruning comes after) or the new one (its snapshot was durable before it). The core only takes the
 * segments out of the WAL; the snapshot thread removes their files and prunes the snapshots: unlinking
 * 64 MiB files and fsyncing the directory took 15-68 ms on a busy disk, a pause of the Raft loop (no
 * heartbeat, no acknowledgement) after every snapshot. */
static void release_behind_marker(struct core_wal *wal)
{
	struct node *node = wal->node;
	if (!wal->release_pending || wal_durable_records(node->wal) < wal->marker_records)
		return;
	wal->release_pending = false;
	char error[512] = "";
	struct snapshot_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = SNAPSHOT_MAIL_RELEASE;
	mail->release.segments = (struct wal_released){.dir_fd = -1};
	mail->release.up_to_index = wal->release_up_to;
	if (node->flags.max_wals > 0) {
		int rc = wal_release_detach(node->wal, wal->release_up_to, (size_t)node->flags.max_wals,
		                            &mail->release.segments, error, sizeof(error));
		if (rc != 0) {
			free(mail);
			fail(wal, "releasing the WAL", rc, error);
			return;
		}
	}
	mail->release.segments_kept = wal_segment_files(node->wal);
	snapshot_mailbox_post(&node->snapshot_inbox, mail);
}

/* Seconds as Go's time.Duration prints them ("1.5s", "2.000031s"), the form etcd's zap logs use. */
static void format_go_seconds(uint64_t microseconds, char *out, size_t size)
{
	int length = snprintf(out, size, "%" PRIu64 ".%06" PRIu64, microseconds / 1000000, microseconds % 1000000);
	while (length > 0 && out[length - 1] == '0')
		out[--length] = '\0';
	if (length > 0 && out[length - 1] == '.')
		out[--length] = '\0';
	snprintf(out + length, size - (size_t)length, "s");
}

/* etcd's warning for a WAL sync slower than a second (wal.go, warnSyncDuration): operators grep for it
 * when a disk is failing or shared. One line per group commit, with its slowest Ready's time. */
#define SLOW_FDATASYNC_MICROSECONDS 1000000u

/* While the disk is full, how often the WAL looks for room again (a statvfs; a resume costs a recovery). */
enum { RESUME_CHECK_MS = 1000 };

/* The WAL was resumed (wal_resume: it continues from what is on disk, which holds at least everything it
 * reported durable): what Raft handed out after that point is appended again from the Raft log (entries the
 * failed batches held, and those of the Readies dropped while full), with the current hard state, and
 * reported persisted once durable. The acknowledgements dropped meanwhile are not sent again: the leader's
 * next heartbeat finds this follower behind and sends the entries again, and this time they are acknowledged
 * from what is durable. */
static int rewrite_after_resume(struct core_wal *wal, uint64_t durable_before, size_t *rewritten, char *err,
                                size_t errlen)
{
	struct node *node = wal->node;
	struct raft_status status;
	raft_get_status(node->raft, &status);
	uint64_t from = durable_before + 1;
	int rc = 0;
	*rewritten = 0;
	if (status.last_index >= from) {
		Raftpb__Entry **entries = NULL;
		size_t count = 0;
		int raft_rc = raft_copy_entries(node->raft, from, status.last_index + 1, &entries, &count);
		if (raft_rc != RAFT_OK) {
			/* Only a snapshot from the leader, installed while the disk was full, moves the log's start past
			 * what the WAL holds: its marker is in the snapshot store, and a restart writes it. */
			snprintf(err, errlen, "entries %" PRIu64 "-%" PRIu64 " to write again are not in the Raft log: %s", from,
			         status.last_index, raft_strerror(raft_rc));
			return -EINVAL;
		}
		if (count > wal->entries_capacity) {
			wal->entries_capacity = count;
			wal->entries = xrealloc(wal->entries, wal->entries_capacity * sizeof(*wal->entries));
		}
		for (size_t k = 0; k < count; k++)
			wal->entries[k] = (struct wal_entry){entries[k]->term, entries[k]->index, (uint32_t)entries[k]->type,
			                                     entries[k]->data.data, entries[k]->data.len};
		rc = wal_append_entries(node->wal, wal->entries, count, err, errlen);
		raft_free_entries(entries, count);
		*rewritten = count;
	}
	/* Records of a batch that was never reported may hold entries Raft replaced by a shorter log since. */
	if (rc == 0 && wal_last_index(node->wal) > status.last_index)
		rc = wal_truncate_after(node->wal, status.last_index, err, errlen);
	if (rc == 0) {
		struct wal_hard_state hard_state = {status.term, status.vote, status.commit};
		rc = wal_set_hard_state(node->wal, &hard_state, err, errlen);
	}
	if (rc == 0)
		rc = wal_submit(node->wal, err, errlen);
	if (rc != 0)
		return rc;
	uint64_t last_term = status.last_index ? raft_term_at(node->raft, status.last_index) : 0;
	struct durable_wait *wait = queue_wait(wal);
	wait->records_after = wal_appended_records(node->wal);
	wait->persist_index = last_term ? status.last_index : 0;
	wait->persist_term = last_term;
	wait->written_at_us = clock_monotonic_us();
	return 0;
}

/* A WAL failed on a full disk looks for room every RESUME_CHECK_MS; once wal_resume finds it, the WAL goes on
 * (rewrite_after_resume). True when it resumed (a Ready may be waiting). A failure other than a full disk
 * stops the member. */
static bool try_resume(struct core_wal *wal)
{
	struct node *node = wal->node;
	uint64_t now = clock_monotonic_ms();
	if (!wal->no_space || now - wal->resume_checked_ms < RESUME_CHECK_MS)
		return false;
	wal->resume_checked_ms = now;
	uint64_t durable_before = wal_durable_index(node->wal);
	char error[512] = "";
	int rc = wal_resume(node->wal, error, sizeof(error));
	if (rc == -ENOSPC)
		return false; /* still no room */
	size_t rewritten = 0;
	if (rc == 0) {
		/* The messages of Readies whose records were not durable when the WAL failed promise what the disk
		 * may never have held (an acknowledgement of an entry a new leader has replaced since, a vote of an
		 * older hard state): dropped, as the network may drop them. Their persisted marks stay: Raft ignores
		 * a mark whose term no longer matches, and the rewrite makes the rest true before they are released. */
		uint64_t durable_records = wal_durable_records(node->wal);
		for (size_t k = 0; k < wal->waits_count; k++) {
			struct durable_wait *wait = &wal->waits[wal->waits_head + k];
			if (wait->records_after <= durable_records)
				continue;
			free_packed(wait->after_persist, wait->after_persist_count);
			wait->after_persist = NULL;
			wait->after_persist_count = 0;
		}
		/* The markers written while full may be lost: release only behind one the resumed WAL holds. */
		const struct wal_recovered *recovered = wal_recovered(node->wal);
		wal->release_pending = false;
		wal->marker_index = recovered->has_snapshot ? recovered->snapshot.index : 0;
		rc = rewrite_after_resume(wal, durable_before, &rewritten, error, sizeof(error));
	}
	char escaped[600];
	if (rc == -ENOSPC) {
		log_write("warn", "the disk had room for the WAL, but not enough: still out of disk space",
		          "\"data-dir\":\"%s\",\"error\":\"%s\"", node->flags.data_dir,
		          log_json_escape(error, escaped, sizeof(escaped)));
		return false;
	}
	if (rc != 0) {
		wal->no_space = false;
		char what_and_error[600];
		snprintf(what_and_error, sizeof(what_and_error), "resuming the WAL after a full disk: %s", error);
		node_stop_on_storage_failure(node, what_and_error);
		return false;
	}
	wal->failed = false;
	wal->no_space = false;
	atomic_fetch_and(&node->disk_full, ~(unsigned)NODE_DISK_FULL_WAL);
	log_write("info", "the disk has room again: WAL resumed", "\"data-dir\":\"%s\",\"durable-index\":%" PRIu64
	          ",\"entries-written-again\":%zu", node->flags.data_dir, durable_before, rewritten);
	return true;
}

bool core_wal_report_durable(struct core_wal *wal, bool reap)
{
	struct node *node = wal->node;
	if (wal->failed)
		return try_resume(wal);
	if (reap) {
		char error[512] = "";
		uint64_t durable_index = 0;
		int rc = wal_reap(node->wal, &durable_index, error, sizeof(error));
		if (rc != 0) {
			fail(wal, "WAL write", rc, error);
			return false;
		}
	}
	uint64_t durable = wal_durable_records(node->wal);
	size_t done = 0;
	while (done < wal->waits_count && wal->waits[wal->waits_head + done].records_after <= durable)
		done++;
	if (done)
		FAILPOINT("raftAfterSave");
	uint64_t now_us = done ? clock_monotonic_us() : 0;
	uint64_t slowest_us = 0;
	for (size_t k = 0; k < done; k++) {
		struct durable_wait *wait = &wal->waits[wal->waits_head + k];
		if (wait->written_at_us) {
			uint64_t took_us = now_us - wait->written_at_us;
			/* etcd_disk_wal_fsync_duration_seconds: from a Ready's submit to its records being durable. */
			histogram_observe_ns(&node->wal_fsync_duration, took_us * 1000);
			if (took_us > slowest_us)
				slowest_us = took_us;
		}
		for (size_t m = 0; m < wait->after_persist_count; m++)
			node_send_peer(node, wait->after_persist[m].to, wait->after_persist[m].bytes, wait->after_persist[m].length);
		free_packed(wait->after_persist, wait->after_persist_count);
		if (wait->persist_index)
			raft_persisted(node->raft, wait->persist_index, wait->persist_term);
	}
	wal->waits_head += done;
	wal->waits_count -= done;
	if (wal->waits_count == 0)
		wal->waits_head = 0;
	if (slowest_us > SLOW_FDATASYNC_MICROSECONDS) {
		char took[32], expected[32];
		format_go_seconds(slowest_us, took, sizeof(took));
		format_go_seconds(SLOW_FDATASYNC_MICROSECONDS, expected, sizeof(expected));
		log_write("warn", "slow fdatasync", "\"took\":\"%s\",\"expected-duration\":\"%s\"", took, expected);
	}
	release_behind_marker(wal);
	return done > 0;
}
