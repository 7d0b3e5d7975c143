/* storage/wal/wal_internal.h: the wal object shared by the files that implement it (wal.c: the public
 * calls; encode.c: turning calls into records; writer.c: batches and io_uring; recovery.c: opening). */
#ifndef QUORUMD_STORAGE_WAL_INTERNAL_H
#define QUORUMD_STORAGE_WAL_INTERNAL_H

#include "segment.h"
#include "wal.h"

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define WAL_NO_TRUNCATION UINT64_MAX
#define WAL_MAX_PIPELINE_DEPTH WAL_SEGMENT_MAX_SYNC_FDS
#define WAL_DEFAULT_PIPELINE_DEPTH 2u
/* Entry data at least this long is written from the caller's buffer when it lends it (shorter data costs
 * less to copy than an iovec costs the kernel). */
#define WAL_REFERENCE_MIN_BYTES 256u
/* Pieces one chunk's writev may have; IOV_MAX is 1024. Beyond this, entry data is copied. */
#define WAL_MAX_CHUNK_PIECES 1000u

/* A run of a chunk's bytes: either part of its buffer, or entry data the caller lent (wal_append_entries_
 * referenced). Buffer pieces keep an offset, not a pointer: the buffer may move while records are added. */
struct wal_piece {
	const uint8_t *lent;        /* NULL: the bytes are buffer[offset, offset + length) */
	size_t offset;
	size_t length;
};

/* The bytes of one batch that go to one segment: written with one write and made durable with one
 * fdatasync linked behind it. */
struct wal_chunk {
	struct wal_segment *segment;
	uint8_t *buffer;            /* WAL_DIRECT_ALIGNMENT-aligned in O_DIRECT mode */
	size_t capacity;
	uint64_t file_offset;       /* where buffer[0] goes */
	uint64_t records_offset;    /* where this chunk's new records start (after an O_DIRECT prefix) */
	size_t length;              /* bytes used in buffer: an O_DIRECT block prefix plus the records (without
	                             * lent entry data, which stays in the caller's memory) */
	size_t lent_length;         /* bytes of lent entry data among the records */
	struct wal_piece *pieces;   /* empty unless data was lent: then the write is a writev of these */
	size_t piece_count;
	size_t piece_capacity;
	size_t buffer_piece_start;  /* buffer offset where the bytes after the last lent piece begin */
	struct iovec *iovecs;       /* the pieces as the kernel gets them, from `written` on */
	size_t iovec_capacity;
	size_t write_length;        /* length + lent_length, rounded up to the O_DIRECT alignment */
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

/* One write+fdatasync chain in the kernel: its chunks, each a write linked to an fdatasync, all linked. */
struct wal_batch {
	uint64_t sequence;               /* tags its requests, so completions find it */
	struct wal_chunk_list chunks;
	unsigned operations;             /* completions still expected for its current chain */
	int error;                       /* first failure among its completions, 0 if none */
	struct wal_chunk *failed_chunk;
	bool failed_write;
	uint64_t failed_offset;
	bool padded;                     /* ends on a page boundary thanks to wal_encode_padding */
	bool joined;                     /* another batch started while it was in flight */
};

/* Tests only: sees each completion of a batch's request before the wal does. Returning false keeps it
 * from the wal (the test delivers it later with wal_writer_deliver), to play completions in an order the
 * kernel may produce but rarely does. The result may be changed (a short write, an error). */
typedef bool (*wal_completion_filter)(void *context, uint64_t tag, int *result);

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
	struct wal_snapshot_marker snapshot; /* metadata points at snapshot_metadata */
	uint8_t *snapshot_metadata;          /* owned copy */

	uint64_t durable_index;
	uint64_t records_appended;       /* records encoded since open */
	uint64_t records_durable;        /* of those, how many an fdatasync covered */
	bool has_durable_snapshot;
	uint64_t durable_snapshot_index;
	uint64_t sync_count;
	uint64_t batches_completed;
	uint64_t short_writes;           /* writes the kernel cut short and the wal resumed (for tests) */

	struct wal_chunk_list pending;   /* records waiting for the next batch */
	struct wal_chunk_list spare;     /* finished chunks kept for their buffers */
	/* Batches in the kernel, oldest first, in a ring (at most options.pipeline_depth of its slots are
	 * used). They become durable in this order and no other. */
	struct wal_batch batches[WAL_MAX_PIPELINE_DEPTH];
	size_t batch_first;
	size_t batch_count;
	uint64_t next_batch_sequence;
	unsigned batch_operations;       /* completions still expected, all batches together */
	bool batch_failed;               /* a batch failed: start nothing, drain, then fail the wal */
	size_t max_chunks_per_batch;
	uint64_t page_size;              /* buffered batches overlap only from a page boundary (writer.c) */
	bool held_inside_page;           /* a batch waited because the one in flight ended inside a page */
	unsigned padding_skips;          /* waits not answered with padding, after a padded batch no batch joined */
	uint64_t padding_bytes;          /* written to end buffered batches on page boundaries (for tests) */
	wal_completion_filter completion_filter;
	void *completion_filter_context;

	/* The segment being prepared ahead through io_uring (fallocate, fdatasync, directory fsync). */
	struct wal_segment *preparing;
	unsigned prepare_operations;     /* completions still expected for it */
	int prepare_result;              /* first error of its chain */
	unsigned prepare_step;           /* which step failed first */
	/* Zero-filling the segment prepared ahead (options.zero_segments), one request chain at a time. */
	struct wal_segment *zeroing;
	unsigned zero_operations;        /* completions still expected for it */
	uint64_t zero_piece;             /* bytes of the piece in flight */
	uint64_t average_batch_bytes;    /* recent batches' mean size: zero-filling pauses above a limit */

	int failed;                      /* -errno once the wal stopped accepting appends */
	char failure[256];

	struct wal_recovered recovered;
	uint8_t *recovered_metadata;     /* recovered.snapshot.metadata, owned until released */
	bool recovered_valid;
};

/* recovery.c: scans dir, fills wal->recovered and the segment list, repairs a torn tail. */
int wal_recover(struct wal *wal, char *err, size_t errlen);

/* encode.c: appending one record (of a walpb message) to the pending batch, rolling segments. With lend,
 * long entry data is referenced by the write instead of copied (buffered mode only). */
int wal_encode_entry(struct wal *wal, const struct wal_entry *entry, bool lend, char *err, size_t errlen);
int wal_encode_hard_state(struct wal *wal, char *err, size_t errlen);
int wal_encode_snapshot(struct wal *wal, char *err, size_t errlen);
int wal_encode_truncate(struct wal *wal, uint64_t after_index, char *err, size_t errlen);
/* Ends chunk, the last pending one of the active segment, on a multiple of boundary with a hard state record
 * (the current one, with filler in its padding field). Not counted as an appended record. False when it
 * cannot (no hard state yet, no room left in the segment, out of memory): the chunk is unchanged then. */
bool wal_encode_padding(struct wal *wal, struct wal_chunk *chunk, uint64_t boundary);
/* Checks that a record with this payload size fits in an empty segment. */
int wal_check_record_size(const struct wal *wal, size_t payload_length, char *err, size_t errlen);

/* writer.c */
int wal_writer_init(struct wal *wal, char *err, size_t errlen);
void wal_writer_destroy(struct wal *wal);
struct wal_chunk *wal_writer_chunk_for(struct wal *wal, struct wal_segment *segment, char *err, size_t errlen);
int wal_writer_reserve(struct wal *wal, struct wal_chunk *chunk, size_t bytes, char *err, size_t errlen);
/* Adds lent entry data to chunk after its buffer bytes; false when the chunk has no room for more pieces
 * (the caller copies the data instead). */
bool wal_writer_lend(struct wal *wal, struct wal_chunk *chunk, const uint8_t *data, size_t length);
/* Starts as many batches as the pipeline and the rules in writer.c allow. */
int wal_writer_start_batch(struct wal *wal);
int wal_writer_process(struct wal *wal, bool block);
/* Tests only: hands the wal a completion its filter held back. */
int wal_writer_deliver(struct wal *wal, uint64_t tag, int result);
/* Chunks in batches in the kernel. */
size_t wal_writer_chunks_in_flight(const struct wal *wal);
const struct wal_batch *wal_writer_batch(const struct wal *wal, size_t age); /* 0: the oldest */

/* What a request's tag says: the batch sequence, the chunk in it, and the operation. */
enum wal_operation_kind { WAL_OPERATION_WRITE = 0, WAL_OPERATION_SYNC = 1, WAL_OPERATION_PREPARE = 2,
	WAL_OPERATION_ZERO = 3 };
static inline uint64_t wal_tag_batch(uint64_t tag) { return tag >> 20; }
static inline size_t wal_tag_chunk(uint64_t tag) { return (size_t)(tag >> 2 & 0x3ffff); }
static inline enum wal_operation_kind wal_tag_kind(uint64_t tag) { return (enum wal_operation_kind)(tag & 3); }
/* Makes sure a prepared segment follows the active one, blocking; returns the first error. */
int wal_writer_prepare_ahead(struct wal *wal, char *err, size_t errlen);
/* The same through io_uring: the segment becomes ready when its completions arrive. */
void wal_writer_prepare_ahead_async(struct wal *wal);
/* Waits for every request in the kernel to complete, ignoring results (for closing). */
void wal_writer_drain(struct wal *wal);
/* After wal_writer_drain: drops every pending and unreported batch and the pipeline's state (wal_resume). */
void wal_writer_forget(struct wal *wal);
int wal_fail(struct wal *wal, int error_number, const char *format, ...) __attribute__((format(printf, 3, 4)));
int wal_add_segment(struct wal *wal, struct wal_segment *segment);

/* After recovery (wal_open, wal_resume): the segment ahead prepared (failure not fatal) and everything
 * recovered counted durable. */
void wal_ready_after_recovery(struct wal *wal);

#endif
