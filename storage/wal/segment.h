/* storage/wal/segment.h: one segment file: its name, preparing it ahead of use, closing it.
 *
 * A segment being written, or prepared for later, is named open-SEQUENCE; once every record in it is
 * durable it is renamed FIRST-LAST after the first and last entry index it holds (canonical/raft's
 * scheme; an entry-less segment is named after the empty range LAST+1-LAST). A name already taken gets
 * a .SEQUENCE suffix. Recovery orders segments by the sequence in their header record, not by name. */
#ifndef QUORUMD_STORAGE_WAL_SEGMENT_H
#define QUORUMD_STORAGE_WAL_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_SEGMENT_NAME_MAX 64
/* At most this many batches fdatasync a segment at once, each through its own descriptor (writer.c). */
#define WAL_SEGMENT_MAX_SYNC_FDS 8u

struct wal_segment {
	char name[WAL_SEGMENT_NAME_MAX];
	int fd;                   /* -1 once closed */
	uint64_t sequence;
	uint64_t capacity;        /* bytes records may occupy */
	uint64_t write_offset;    /* where the next record goes; 0 means the header is not written yet */
	bool has_entries;
	uint64_t first_index;     /* first entry index appended to this segment */
	uint64_t last_index;      /* last entry index appended (after truncations within it) */
	uint64_t max_index;       /* highest entry index it holds, for wal_release_before */
	uint64_t index_before;    /* log's last index when the segment started, names an entry-less one */
	bool full;                /* appends moved on to the next segment */
	bool ready;               /* preallocated, and its directory entry durable: writes may go to it */
	unsigned unsynced_chunks; /* batches holding its bytes that are not durable yet */
	uint8_t *tail_block;      /* O_DIRECT: the partially filled block at write_offset */
	/* Open file descriptions of this file that batches in flight at once fdatasync through, one per
	 * pipeline slot (see writer.c); sync_fd_open has bit i set when sync_fds[i] is open. */
	int sync_fds[WAL_SEGMENT_MAX_SYNC_FDS];
	unsigned sync_fd_open;
	uint64_t zeroed;          /* zero-filling: bytes from the start written with zeros */
	bool zero_filled;         /* zero-filling is over (done and synced, or given up) */
};

void wal_segment_open_name(char *out, uint64_t sequence);
/* The FIRST-LAST part of a closed segment's name, from its contents. */
void wal_segment_closed_name(char *out, const struct wal_segment *segment);
/* Parses a directory entry name: 1 for open-N (sets *sequence), 2 for a closed name (sets first, last),
 * 0 for anything else. */
int wal_segment_parse_name(const char *name, uint64_t *sequence, uint64_t *first, uint64_t *last);

/* Creates and opens open-SEQUENCE in dir (not ready: nothing allocated or synced yet). */
int wal_segment_create(int dir_fd, const char *dir, uint64_t sequence, uint64_t capacity, bool direct_io,
		struct wal_segment **out, char *err, size_t errlen);
/* Creates open-SEQUENCE, preallocates it with fallocate and makes the file and its directory entry
 * durable, blocking; the segment is ready. It never writes zeros over it (options.zero_segments): no call
 * should wait for a segment's worth of writes; only preparing through io_uring does that. */
int wal_segment_prepare(int dir_fd, const char *dir, uint64_t sequence, uint64_t capacity, bool direct_io,
		struct wal_segment **out, char *err, size_t errlen);
/* Zeros for writing over a segment in pieces of at most WAL_ZERO_BUFFER_SIZE bytes. */
#define WAL_ZERO_BUFFER_SIZE (1024u * 1024u)
const uint8_t *wal_zero_buffer(void);
/* Removes a segment that failed to become ready and frees it. */
void wal_segment_discard(int dir_fd, struct wal_segment *segment);
/* Renames a full, durable segment to its closed name, syncs the directory and closes the file. */
int wal_segment_close(int dir_fd, const char *dir, struct wal_segment *segment, char *err, size_t errlen);
void wal_segment_free(struct wal_segment *segment);
/* Closes the descriptors in sync_fds. */
void wal_segment_close_sync_fds(struct wal_segment *segment);

#endif
