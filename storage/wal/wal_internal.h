/* storage/wal/wal_internal.h: the wal object shared by the files that implement it (wal.c: the public
 * calls; encode.c: turning calls into records; writer.c: batches and io_uring; recovery.c: opening). */
#ifndef QUORUMD_STORAGE_WAL_INTERNAL_H
#define QUORUMD_STORAGE_WAL_INTERNAL_H

#include "segment.h"
#include "wal.h"

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#define WAL_NO_TRUNCATION UINT64_MAX

/* The bytes of one batch that go to one segment: written with one write and made durable with one
 * fdatasync linked behind it. */
struct wal_chunk {
	struct wal_segment *segment;
	uint8_t *buffer;            /* WAL_DIRECT_ALIGNMENT-aligned in O_DIRECT mode */
	size_t capacity;
	uint64_t file_offset;       /* where buffer[0] goes */
	uint64_t records_offset;    /* where this chunk's new records start (after an O_DIRECT prefix) */
	size_t length;              /* bytes that matter: an O_DIRECT block prefix plus the records */
	size_t write_length;        /* length rounded up to the O_DIRECT alignment */
	size_t written;             /* progress over short writes */
	bool write_done;
	bool sync_done;
	uint64_t last_index;        /* the log's last index after this chunk's records */
	uint64_t records_end;       /* wal->records_appended after this chunk's records */
	uint64_t truncated_to;      /* lowest truncation among its records, or WAL_NO_TRUNCATION */
	bool has_snapshot;
	uint64_t snapshot_index;
};

struct wal_chunk_list {
	struct wal_chunk **items;
	size_t count;
	size_t capacity;
};

struct wal {
	char *dir;
	int dir_fd;                      /* holds the lock; never handed to io_uring */
	/* The directory again, as a separate open file for io_uring's fsync: a request the kernel still
	 * holds after a crash must not keep the lock (it belongs to dir_fd's open file) from the next
	 * process. */
	int ring_dir_fd;
	struct wal_options options;
	struct io_uring ring;
	bool ring_ready;
	int event_fd;

	/* In sequence order: closed, full but not yet durable, the active one, then prepared ones. */
	struct wal_segment **segments;
	size_t segment_count;
	size_t segment_capacity;
	struct wal_segment *active;
	uint64_t next_sequence;

	/* The log as appended (durable or not). */
	uint64_t last_index;
	bool has_hard_state;
	struct wal_hard_state hard_state;
	bool has_snapshot;
	struct wal_snapshot_marker snapshot;

	uint64_t durable_index;
	uint64_t records_appended;       /* records encoded since open */
	uint64_t records_durable;        /* of those, how many an fdatasync covered */
	bool has_durable_snapshot;
	uint64_t durable_snapshot_index;
	uint64_t sync_count;
	uint64_t batches_completed;
	uint64_t short_writes;           /* writes the kernel cut short and the wal resumed (for tests) */

	struct wal_chunk_list pending;   /* records waiting for the next batch */
	struct wal_chunk_list inflight;  /* the batch whose write+fdatasync chain is in the kernel */
	struct wal_chunk_list spare;     /* finished chunks kept for their buffers */
	unsigned inflight_operations;    /* completions still expected for the batch in flight */
	size_t max_chunks_per_batch;

	/* The segment being prepared ahead through io_uring (fallocate, fdatasync, directory fsync). */
	struct wal_segment *preparing;
	unsigned prepare_operations;     /* completions still expected for it */
	int prepare_result;              /* first error of its chain */
	unsigned prepare_step;           /* which step failed first */

	int failed;                      /* -errno once the wal stopped accepting appends */
	char failure[256];

	struct wal_recovered recovered;
	bool recovered_valid;
};

/* recovery.c: scans dir, fills wal->recovered and the segment list, repairs a torn tail. */
int wal_recover(struct wal *wal, char *err, size_t errlen);

/* encode.c: appending one record (of a walpb message) to the pending batch, rolling segments. */
int wal_encode_entry(struct wal *wal, const struct wal_entry *entry, char *err, size_t errlen);
int wal_encode_hard_state(struct wal *wal, char *err, size_t errlen);
int wal_encode_snapshot(struct wal *wal, char *err, size_t errlen);
int wal_encode_truncate(struct wal *wal, uint64_t after_index, char *err, size_t errlen);
/* Checks that a record with this payload size fits in an empty segment. */
int wal_check_record_size(const struct wal *wal, size_t payload_length, char *err, size_t errlen);

/* writer.c */
int wal_writer_init(struct wal *wal, char *err, size_t errlen);
void wal_writer_destroy(struct wal *wal);
struct wal_chunk *wal_writer_chunk_for(struct wal *wal, struct wal_segment *segment, char *err, size_t errlen);
int wal_writer_reserve(struct wal *wal, struct wal_chunk *chunk, size_t bytes, char *err, size_t errlen);
int wal_writer_start_batch(struct wal *wal);
int wal_writer_process(struct wal *wal, bool block);
/* Makes sure a prepared segment follows the active one, blocking; returns the first error. */
int wal_writer_prepare_ahead(struct wal *wal, char *err, size_t errlen);
/* The same through io_uring: the segment becomes ready when its completions arrive. */
void wal_writer_prepare_ahead_async(struct wal *wal);
/* Waits for every request in the kernel to complete, ignoring results (for closing). */
void wal_writer_drain(struct wal *wal);
int wal_fail(struct wal *wal, int error_number, const char *format, ...) __attribute__((format(printf, 3, 4)));
int wal_add_segment(struct wal *wal, struct wal_segment *segment);

#endif
