/* storage/wal/wal.h: the Raft write-ahead log, written with io_uring group commits.
 *
 * One struct wal is owned by one thread (the node's storage thread); it has no locks and no threads of
 * its own. The owner appends records (they are only buffered), calls wal_submit() at its batching point,
 * and calls wal_reap() when wal_event_fd() becomes readable (or wal_wait() to block). Up to
 * options.pipeline_depth write+fdatasync chains are in flight at once (the next batch's write runs while
 * the previous batch's fdatasync does; in buffered mode only from a page boundary, see README.md);
 * records appended while a batch must wait go into the next chain, so one fdatasync covers many appends. An entry is reported durable only after the fdatasync
 * linked behind its own write completed, and after every earlier batch's did.
 *
 * Every function returning int returns 0 or -errno and, on failure, writes a message naming the file and
 * the step that failed into err (err may be NULL). After an I/O error or a full disk the wal is failed:
 * every later append, submit or reap returns the same error; what was reported durable stays intact. */
#ifndef QUORUMD_STORAGE_WAL_H
#define QUORUMD_STORAGE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_DEFAULT_SEGMENT_SIZE (64u * 1024u * 1024u)
/* O_DIRECT writes are made in blocks of this size, at offsets that are multiples of it. */
#define WAL_DIRECT_ALIGNMENT 4096u

struct wal;

struct wal_options {
	uint64_t segment_size;  /* bytes per segment file; a multiple of WAL_DIRECT_ALIGNMENT, 16 KiB..1 GiB */
	bool direct_io;         /* O_DIRECT writes from aligned buffers instead of the page cache */
	/* Each write carries RWF_DSYNC (it completes once its range is durable) instead of being linked to an
	 * fdatasync. With direct_io this is the fast path: io_uring issues an O_DIRECT write from the
	 * submitting thread, where an fdatasync always runs in one of its worker threads, so a commit costs no
	 * worker wake-up. Batches then never overlap (a batch's write is its sync). wal_open falls back to
	 * fdatasync, and to buffered writes, on a file system that refuses either (logged; wal_write_mode). */
	bool dsync_writes;
	unsigned ring_entries;  /* io_uring submission queue size, 8..4096; bounds segments per chain */
	unsigned pipeline_depth; /* write+fdatasync chains in flight at once, 1..8; 0 means the default, 2 */
	/* Write zeros over the segment prepared ahead, in the background and in pieces paced by the active
	 * segment's fill (default true), so appends overwrite written blocks: on ext4 (and thin-provisioned
	 * virtual disks) the first write into a preallocated block costs the next fdatasync a journal commit
	 * (or a host allocation) that an overwrite does not. The saving is per fdatasync and the cost per
	 * byte, so it pauses while recent batches average more than 32 KiB. */
	bool zero_segments;
	/* Size segments to the free space of the wal's file system at open (default true): when two segments
	 * of segment_size would take more than a quarter of what statvfs says is free, segments are made
	 * smaller (an eighth of the free space each, in WAL_DIRECT_ALIGNMENT multiples), never below
	 * min_segment_size, and a warning naming the free space is logged. A member then starts in a few MiB. */
	bool fit_free_space;
	/* The smallest segment fitting may choose: it must hold the largest record the owner appends (an
	 * entry's data plus about 100 bytes) after a segment's opening records (about 2.2 KiB). 0 means
	 * WAL_DEFAULT_MIN_SEGMENT_SIZE. Segments requested smaller than this are never changed. */
	uint64_t min_segment_size;
};

/* 2 MiB: a 1.5 MiB entry (etcd's default --max-request-bytes) with its framing fits. */
#define WAL_DEFAULT_MIN_SEGMENT_SIZE (2u * 1024u * 1024u)

struct wal_entry {
	uint64_t term;
	uint64_t index;
	uint32_t type;          /* Raft entry type, opaque to the wal */
	const uint8_t *data;
	size_t data_length;
};

struct wal_hard_state {
	uint64_t term;
	uint64_t vote;
	uint64_t commit;
};

/* Opaque bytes the owner keeps with a snapshot marker; written into every segment, so they are small. */
#define WAL_SNAPSHOT_METADATA_MAX 2048u

struct wal_snapshot_marker {
	uint64_t index;
	uint64_t term;
	const uint8_t *metadata;     /* up to WAL_SNAPSHOT_METADATA_MAX bytes; copied by wal_save_snapshot */
	size_t metadata_length;
};

/* What recovery found and did. */
struct wal_recovery_info {
	bool torn_tail;              /* a torn record at the end of the last segment was cut off */
	uint64_t truncated_bytes;    /* bytes zeroed behind the last good record of the last segment */
	unsigned segments;           /* segment files holding records */
	uint64_t records;            /* records read */
	char last_segment[64];       /* file name of the segment appends continue in ("" if none) */
	uint64_t end_offset;         /* where the next record goes in last_segment */
	uint64_t segment_size;       /* the size new segments get (options.segment_size, or fitted smaller) */
};

/* What was on disk when the wal was opened. Entries are those after the snapshot marker, in index
 * order, after applying truncations (the newest record for an index wins). The snapshot's metadata is
 * valid as long as the entries are. */
struct wal_recovered {
	bool has_hard_state;
	struct wal_hard_state hard_state;
	bool has_snapshot;
	struct wal_snapshot_marker snapshot;
	struct wal_entry *entries;   /* data points into memory owned by the wal */
	size_t entry_count;
	struct wal_recovery_info info;
};

/* 64 MiB segments (fitted to the free space), buffered, a 64-entry ring, a pipeline of 2, zero-filled segments. */
void wal_options_init(struct wal_options *options);

/* Opens (creating if needed) the wal in dir (options NULL: the defaults), recovers its contents and prepares the segments that
 * appends will use. A torn tail of the last segment is cut off; any other damage makes it fail with a
 * message naming the file and byte offset. New segments get options->segment_size, or less on a file system
 * with little free space (options->fit_free_space; the size chosen is in wal_recovered()->info.segment_size).
 * The newest segment is read only 1 MiB past its last record; the rest of it is made zero unread. */
int wal_open(const char *dir, const struct wal_options *options, struct wal **out, char *err, size_t errlen);

/* The recovered contents; valid until wal_recovered_release() or wal_close(). */
const struct wal_recovered *wal_recovered(const struct wal *wal);
void wal_recovered_release(struct wal *wal);

/* Buffers entries for the next write. entries[0].index may be at most last index + 1; an index at or
 * below the last one first truncates the log after index - 1 (a follower's conflicting suffix).
 * Indexes must be consecutive within the call. */
int wal_append_entries(struct wal *wal, const struct wal_entry *entries, size_t count, char *err,
		size_t errlen);
/* Like wal_append_entries, but the wal may write entry data straight from the caller's buffers (a writev
 * of the records' frames and those buffers) instead of copying it. The caller lends each entries[i].data:
 * it must stay allocated and unchanged (its checksum is computed now) until wal_durable_records() reaches
 * the wal_appended_records() value this call left, or until wal_close() returned, whichever is first; also
 * after a failure, until wal_close(). The wal_entry array itself may be reused at once. Short data, and all
 * data in O_DIRECT mode (which needs aligned buffers), is copied anyway. */
int wal_append_entries_referenced(struct wal *wal, const struct wal_entry *entries, size_t count, char *err,
		size_t errlen);
int wal_set_hard_state(struct wal *wal, const struct wal_hard_state *state, char *err, size_t errlen);
int wal_save_snapshot(struct wal *wal, const struct wal_snapshot_marker *marker, char *err, size_t errlen);
/* Discards entries with an index above index; later appends replace them. */
int wal_truncate_after(struct wal *wal, uint64_t index, char *err, size_t errlen);
/* Deletes whole closed segments whose entries are all at or below snapshot_index. snapshot_index must
 * not exceed the index of a snapshot marker that is already durable. */
int wal_release_before(struct wal *wal, uint64_t snapshot_index, char *err, size_t errlen);
/* The same, oldest first, but only while more than keep_files segment files with records remain
 * (etcd's --max-wals: files a restart no longer needs are kept up to that count). */
int wal_release_keeping(struct wal *wal, uint64_t snapshot_index, size_t keep_files, char *err, size_t errlen);
/* wal_release_keeping in two halves, so that the files' removal (unlinks of 64 MiB segments and the
 * directory's fsync: tens of ms on a busy disk) can run on another thread than the WAL's owner. The detach
 * takes the segments out of the WAL and names them in *released; the remove, on any thread, unlinks them,
 * fsyncs the directory and frees *released. Until the removal is done a restart finds the files still
 * there, as after a crash before a release: nothing depends on their going. */
struct wal_released {
	int dir_fd; /* a duplicate of the WAL directory's, owned */
	char *dir;
	char **names;
	size_t count;
};
int wal_release_detach(struct wal *wal, uint64_t snapshot_index, size_t keep_files, struct wal_released *released,
		char *err, size_t errlen);
int wal_released_remove(struct wal_released *released, char *err, size_t errlen);
void wal_released_free(struct wal_released *released);
/* Segment files holding records (closed ones and the one being written). */
size_t wal_segment_files(const struct wal *wal);
/* After a full disk failed the wal (-ENOSPC), resumes it once its file system has room for a new segment
 * again: -ENOSPC, with nothing changed, while it has not. The wal continues from what is on disk, as a
 * wal_open would (recovery in place, the directory lock kept): everything reported durable is there;
 * records that were not reported are there or not. wal_durable_index() and wal_last_index() become the
 * recovered log's last index, wal_recovered() says what it holds, and the record counts go on from where
 * they were (wal_durable_records() does not move until new records are durable), so the owner re-appends
 * what it had appended after the old durable index and the hard state, then waits as usual. Any other
 * failure, or one recovery refuses, leaves the wal failed with that error. */
int wal_resume(struct wal *wal, char *err, size_t errlen);

/* Starts a write+fdatasync of everything buffered, unless the pipeline is full or the records must wait
 * for the chains in flight (a new segment, an O_DIRECT block still being written); then they go out from
 * wal_reap() or wal_wait() as soon as they may. */
int wal_submit(struct wal *wal, char *err, size_t errlen);
/* Processes completions without blocking, starts the next batch if records are waiting, and stores the
 * durable index: every entry of the current log at or below it has been fdatasync'ed. The durable index
 * drops to index after wal_truncate_after(index). */
int wal_reap(struct wal *wal, uint64_t *durable_index, char *err, size_t errlen);
/* Like wal_reap() but first submits buffered records if nothing is in flight, then blocks until at
 * least one batch completed (returns at once if there is nothing to write). */
int wal_wait(struct wal *wal, uint64_t *durable_index, char *err, size_t errlen);

/* An eventfd that becomes readable when completions are waiting; for the owner's epoll loop. */
int wal_event_fd(const struct wal *wal);
uint64_t wal_durable_index(const struct wal *wal);
uint64_t wal_last_index(const struct wal *wal);
/* True when every record appended so far is durable (nothing buffered, nothing in flight). */
bool wal_all_durable(const struct wal *wal);
/* Records appended since open (every append call adds at least one), and how many of them are durable:
 * to learn when a hard state or snapshot marker is durable, note wal_appended_records() after setting it
 * and wait until wal_durable_records() reaches that number. */
uint64_t wal_appended_records(const struct wal *wal);
uint64_t wal_durable_records(const struct wal *wal);
/* Number of syncs completed since open (one per segment touched by a batch: an fdatasync, or in
 * dsync_writes mode the RWF_DSYNC write). */
uint64_t wal_sync_count(const struct wal *wal);

/* Waits for the batches in flight (if any), then closes everything. Buffered records that were never
 * submitted are dropped, as a crash would drop them. */
void wal_close(struct wal *wal);

/* How the wal writes, after wal_open's fallbacks, e.g. "O_DIRECT writes with RWF_DSYNC" (for the log). */
const char *wal_write_mode(const struct wal *wal);
/* Whether the file system of the existing directory dir takes options' write mode (an aligned O_DIRECT
 * write, with RWF_DSYNC when options ask for it), tried with a scratch file. wal_open asks this itself;
 * false sets *error_number to what refused it. */
bool wal_write_mode_supported(const char *dir, const struct wal_options *options, int *error_number);

#endif
