/* storage/wal/recovery.c: opening an existing log. Reads every segment in sequence order, checks every
 * record, rebuilds the log (the newest record for an index wins; a truncation drops what is above it),
 * cuts off a torn tail of the last segment, and refuses anything else that is damaged, naming the file
 * and byte offset. It never drops an entry silently: a closed segment must hold exactly the range its
 * name says, and a gap in the segment sequence or in the entry indexes is an error. */
#include "error.h"
#include "log.h"
#include "record.h"
#include "wal.pb-c.h"
#include "wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum file_kind { FILE_OPEN = 1, FILE_CLOSED = 2 };

/* How far past the end of the records recovery reads the newest open segment (and a segment without a
 * header), looking for what a crash left there. A segment is preallocated (64 MiB by default) and often
 * zero-filled, so reading all of it cost a restart a whole segment's read from the disk when a few KiB
 * were written. Nothing past the end may stay, though: a write the crash cut short can leave records
 * anywhere its batch reached, and stale records behind the end would be read as the log's continuation once
 * new appends reach them. So what lies beyond the window is not read but made zero (fallocate), unless the
 * file system says it holds no data there (SEEK_DATA: only holes and unwritten extents). */
#define TAIL_WINDOW_BYTES (1024u * 1024u)

struct segment_file {
	char name[WAL_SEGMENT_NAME_MAX];
	enum file_kind kind;
	uint64_t name_sequence;      /* open-N */
	int fd;
	const uint8_t *map;
	size_t size;
	uint64_t capacity;
	bool has_header;
	uint64_t sequence;
	bool all_zero;               /* no header: zero within the first TAIL_WINDOW_BYTES (or the file) */
	bool reuse;                  /* an unused prepared segment that keeps its place in the sequence */
};

/* The log being rebuilt. */
struct replay {
	struct wal_entry *entries;
	size_t count;
	size_t capacity;
	bool has_last;
	uint64_t last_index;
	bool has_hard_state;
	struct wal_hard_state hard_state;
	bool has_snapshot;
	struct wal_snapshot_marker snapshot; /* metadata points at snapshot_metadata */
	uint8_t *snapshot_metadata;
	uint64_t records;
	bool has_entry;              /* an entry record was read (gaps are damage from then on) */
};

/* What the scan learned about one segment. */
struct segment_summary {
	bool has_entries;
	uint64_t first_index;
	uint64_t last_index;
	uint64_t max_index;
	uint64_t index_before;
	uint64_t end;             /* offset after the last good record */
	uint64_t damaged_end;     /* offset after the last non-zero byte past end (torn tail) */
	uint64_t unread_from;     /* bytes from here to the file's end were not read (TAIL_WINDOW_BYTES) */
};

static void drop_entries_from(struct replay *replay, uint64_t index)
{
	while (replay->count > 0 && replay->entries[replay->count - 1].index >= index) {
		replay->count--;
		free((void *)replay->entries[replay->count].data);
	}
}

static void drop_entries_through(struct replay *replay, uint64_t index)
{
	size_t skip = 0;
	while (skip < replay->count && replay->entries[skip].index <= index)
		free((void *)replay->entries[skip++].data);
	if (skip == 0)
		return;
	memmove(replay->entries, replay->entries + skip, (replay->count - skip) * sizeof *replay->entries);
	replay->count -= skip;
}

static size_t last_non_zero_end(const uint8_t *bytes, size_t from, size_t size)
{
	for (size_t i = size; i > from; i--)
		if (bytes[i - 1] != 0)
			return i;
	return from;
}

static size_t tail_window_end(size_t from, size_t size)
{
	return size - from > TAIL_WINDOW_BYTES ? from + TAIL_WINDOW_BYTES : size;
}

static int corrupt(const char *dir, const char *name, uint64_t offset, const char *why, char *err,
		size_t errlen)
{
	return wal_error(err, errlen, EBADMSG, "%s/%s: corrupt at byte offset %" PRIu64 ": %s", dir, name, offset,
			why);
}

static int apply_entry(struct replay *replay, const Walpb__Entry *message, struct segment_summary *summary,
		const char *dir, const char *name, uint64_t offset, char *err, size_t errlen)
{
	uint64_t index = message->index;
	/* The oldest kept segment may start after entries that wal_release_before() deleted: a gap before
	 * the first entry read is allowed here, and publish() checks that a snapshot marker covers it. */
	if (replay->has_last && index > replay->last_index + 1 && replay->has_entry) {
		char why[128];
		snprintf(why, sizeof why, "entry %" PRIu64 " follows entry %" PRIu64 ": entries are missing", index,
				replay->last_index);
		return corrupt(dir, name, offset, why, err, errlen);
	}
	/* wal_append_entries() refuses an entry the snapshot covers: one behind the marker is damage (it would
	 * end the log below the snapshot, tests/fuzz/corpus/wal/crash-entry-below-snapshot). */
	if (replay->has_snapshot && index <= replay->snapshot.index) {
		char why[128];
		snprintf(why, sizeof why, "entry %" PRIu64 " after the snapshot marker at %" PRIu64, index,
				replay->snapshot.index);
		return corrupt(dir, name, offset, why, err, errlen);
	}
	if (replay->has_last)
		drop_entries_from(replay, index);
	if (replay->count == replay->capacity) {
		size_t capacity = replay->capacity ? replay->capacity * 2 : 1024;
		struct wal_entry *grown = realloc(replay->entries, capacity * sizeof *grown);
		if (grown == NULL)
			return wal_error(err, errlen, ENOMEM, "%s/%s: out of memory", dir, name);
		replay->entries = grown;
		replay->capacity = capacity;
	}
	uint8_t *data = malloc(message->data.len ? message->data.len : 1);
	if (data == NULL)
		return wal_error(err, errlen, ENOMEM, "%s/%s: out of memory", dir, name);
	if (message->data.len)
		memcpy(data, message->data.data, message->data.len);
	replay->entries[replay->count++] = (struct wal_entry){
		.term = message->term, .index = index, .type = message->type, .data = data,
		.data_length = message->data.len,
	};
	replay->has_last = true;
	replay->last_index = index;
	replay->has_entry = true;
	if (!summary->has_entries) {
		summary->has_entries = true;
		summary->first_index = index;
		summary->max_index = index;
	}
	summary->last_index = index;
	if (index > summary->max_index)
		summary->max_index = index;
	return 0;
}

static int apply_record(struct replay *replay, const struct wal_record_view *view, struct segment_summary *summary,
		const char *dir, const char *name, uint64_t offset, char *err, size_t errlen)
{
	int rc = 0;
	replay->records++;
	switch (view->type) {
	case WAL_RECORD_ENTRY: {
		Walpb__Entry *message = walpb__entry__unpack(NULL, view->payload_length, view->payload);
		if (message == NULL)
			return corrupt(dir, name, offset, "entry record does not decode", err, errlen);
		rc = apply_entry(replay, message, summary, dir, name, offset, err, errlen);
		walpb__entry__free_unpacked(message, NULL);
		return rc;
	}
	case WAL_RECORD_HARD_STATE: {
		Walpb__HardState *message = walpb__hard_state__unpack(NULL, view->payload_length, view->payload);
		if (message == NULL)
			return corrupt(dir, name, offset, "hard state record does not decode", err, errlen);
		replay->has_hard_state = true;
		replay->hard_state = (struct wal_hard_state){ message->term, message->vote, message->commit };
		walpb__hard_state__free_unpacked(message, NULL);
		return 0;
	}
	case WAL_RECORD_SNAPSHOT: {
		Walpb__SnapshotMarker *message = walpb__snapshot_marker__unpack(NULL, view->payload_length,
				view->payload);
		if (message == NULL)
			return corrupt(dir, name, offset, "snapshot marker does not decode", err, errlen);
		if (message->metadata.len > WAL_SNAPSHOT_METADATA_MAX) {
			walpb__snapshot_marker__free_unpacked(message, NULL);
			return corrupt(dir, name, offset, "snapshot marker metadata is too long", err, errlen);
		}
		uint8_t *metadata = NULL;
		if (message->metadata.len > 0) {
			metadata = malloc(message->metadata.len);
			if (metadata == NULL) {
				walpb__snapshot_marker__free_unpacked(message, NULL);
				return wal_error(err, errlen, ENOMEM, "%s/%s: out of memory", dir, name);
			}
			memcpy(metadata, message->metadata.data, message->metadata.len);
		}
		free(replay->snapshot_metadata);
		replay->snapshot_metadata = metadata;
		replay->has_snapshot = true;
		replay->snapshot = (struct wal_snapshot_marker){ message->index, message->term, metadata,
			message->metadata.len };
		/* Same rule as wal_save_snapshot(): a snapshot beyond the log replaces it. */
		if (!replay->has_last || replay->last_index < message->index) {
			drop_entries_from(replay, 0);
			replay->has_last = true;
			replay->last_index = message->index;
		} else {
			/* Covered entries are never handed back: dropping them now keeps recovery's memory to the
			 * log after the newest marker, whatever older segments the owner chose to keep. */
			drop_entries_through(replay, message->index);
		}
		walpb__snapshot_marker__free_unpacked(message, NULL);
		return 0;
	}
	case WAL_RECORD_TRUNCATE: {
		Walpb__Truncate *message = walpb__truncate__unpack(NULL, view->payload_length, view->payload);
		if (message == NULL)
			return corrupt(dir, name, offset, "truncate record does not decode", err, errlen);
		/* wal_truncate_after() refuses to cut below the snapshot: such a record is damage (fuzz-wal found a
		 * marker at 99 followed by "truncate after 3", recovered as a log ending at 3 below its snapshot:
		 * tests/fuzz/corpus/wal/crash-truncate-below-snapshot). */
		if (replay->has_snapshot && message->after_index < replay->snapshot.index) {
			char why[128];
			snprintf(why, sizeof why, "truncation after %" PRIu64 " below the snapshot marker at %" PRIu64,
					message->after_index, replay->snapshot.index);
			walpb__truncate__free_unpacked(message, NULL);
			return corrupt(dir, name, offset, why, err, errlen);
		}
		drop_entries_from(replay, message->after_index + 1);
		/* Same rule as wal_truncate_after(): a truncation at or beyond the last index changes nothing.
		 * Taking its index as the last one would report entries that are not there (fuzz-wal found a
		 * record "truncate after 73" behind entries 1..5 recovered as a log ending at 73:
		 * tests/fuzz/corpus/wal/crash-truncate-beyond-end). */
		if (!replay->has_last || message->after_index < replay->last_index) {
			replay->has_last = true;
			replay->last_index = message->after_index;
		}
		walpb__truncate__free_unpacked(message, NULL);
		return 0;
	}
	default:
		return corrupt(dir, name, offset, "segment header in the middle of a segment", err, errlen);
	}
}

/* Reads the first record of a file: a segment header, nothing at all, or damage. */
static int read_header(struct wal *wal, struct segment_file *file, char *err, size_t errlen)
{
	struct wal_record_view view;
	const char *why;
	enum wal_record_status status = wal_record_parse(file->map, file->size, file->capacity, 0, &view, &why);
	/* Only a file without a header needs it (check_headless); whatever lies past the window is zeroed if
	 * the file is taken back (adopt_prepared), and the file is deleted otherwise. */
	if (status != WAL_RECORD_OK)
		file->all_zero = last_non_zero_end(file->map, 0, tail_window_end(0, file->size)) == 0;
	if (status == WAL_RECORD_CORRUPT)
		return corrupt(wal->dir, file->name, 0, why, err, errlen);
	if (status != WAL_RECORD_OK)
		return 0;
	if (view.type != WAL_RECORD_SEGMENT_HEADER)
		return corrupt(wal->dir, file->name, 0, "the first record is not a segment header", err, errlen);
	Walpb__SegmentHeader *header = walpb__segment_header__unpack(NULL, view.payload_length, view.payload);
	if (header == NULL)
		return corrupt(wal->dir, file->name, 0, "segment header does not decode", err, errlen);
	file->has_header = true;
	file->sequence = header->sequence;
	walpb__segment_header__free_unpacked(header, NULL);
	if (file->kind == FILE_OPEN && file->sequence != file->name_sequence) {
		char why[128];
		snprintf(why, sizeof why, "its header says sequence %" PRIu64 ", its name %" PRIu64, file->sequence,
				file->name_sequence);
		return corrupt(wal->dir, file->name, 0, why, err, errlen);
	}
	return 0;
}

static int list_files(struct wal *wal, struct segment_file **out, size_t *count, char *err, size_t errlen)
{
	int fd = dup(wal->dir_fd);
	DIR *directory = fd >= 0 ? fdopendir(fd) : NULL;
	if (directory == NULL) {
		if (fd >= 0)
			close(fd);
		return wal_error(err, errlen, errno, "%s: reading the directory: %s", wal->dir, strerror(errno));
	}
	/* The dup shares dir_fd's position, which an earlier listing (wal_resume runs recovery again) left
	 * at the end. */
	rewinddir(directory);
	struct segment_file *files = NULL;
	size_t used = 0, capacity = 0;
	int rc = 0;
	struct dirent *item;
	while ((item = readdir(directory)) != NULL) {
		uint64_t sequence = 0, first, last;
		int kind = wal_segment_parse_name(item->d_name, &sequence, &first, &last);
		if (kind == 0 || strlen(item->d_name) >= WAL_SEGMENT_NAME_MAX)
			continue;
		if (used == capacity) {
			capacity = capacity ? capacity * 2 : 16;
			struct segment_file *grown = realloc(files, capacity * sizeof *grown);
			if (grown == NULL) {
				rc = wal_error(err, errlen, ENOMEM, "%s: out of memory", wal->dir);
				break;
			}
			files = grown;
		}
		struct segment_file *file = &files[used++];
		memset(file, 0, sizeof *file);
		strcpy(file->name, item->d_name);
		file->kind = (enum file_kind)kind;
		file->name_sequence = sequence;
		file->fd = -1;
	}
	closedir(directory);
	*out = files;
	*count = used;
	return rc;
}

static int map_file(struct wal *wal, struct segment_file *file, char *err, size_t errlen)
{
	file->fd = openat(wal->dir_fd, file->name, O_RDWR | O_CLOEXEC);
	struct stat status;
	if (file->fd < 0 || fstat(file->fd, &status) != 0)
		return wal_error(err, errlen, errno, "%s/%s: open: %s", wal->dir, file->name, strerror(errno));
	file->size = (size_t)status.st_size;
	file->capacity = file->size > wal->options.segment_size ? file->size : wal->options.segment_size;
	if (file->size == 0) {
		file->map = (const uint8_t *)"";
		return 0;
	}
	void *map = mmap(NULL, file->size, PROT_READ, MAP_SHARED, file->fd, 0);
	if (map == MAP_FAILED)
		return wal_error(err, errlen, errno, "%s/%s: mmap: %s", wal->dir, file->name, strerror(errno));
	file->map = map;
	return 0;
}

static void unmap_file(struct segment_file *file)
{
	if (file->size > 0 && file->map != NULL)
		munmap((void *)file->map, file->size);
	file->map = NULL;
	if (file->fd >= 0)
		close(file->fd);
	file->fd = -1;
}

static int by_sequence(const void *left, const void *right)
{
	const struct segment_file *a = left, *b = right;
	if (a->has_header != b->has_header)
		return a->has_header ? -1 : 1;
	uint64_t x = a->has_header ? a->sequence : a->name_sequence;
	uint64_t y = b->has_header ? b->sequence : b->name_sequence;
	return x < y ? -1 : x > y;
}

/* Scans one segment with a header. last: it is the newest one, where a torn tail is allowed. */
static int scan_segment(struct wal *wal, struct segment_file *file, bool last, struct replay *replay,
		struct segment_summary *summary, char *err, size_t errlen)
{
	memset(summary, 0, sizeof *summary);
	summary->index_before = replay->has_last ? replay->last_index : 0;
	size_t offset = 0;
	for (;;) {
		struct wal_record_view view;
		const char *why;
		enum wal_record_status status = wal_record_parse(file->map, file->size, file->capacity, offset, &view,
				&why);
		if (status == WAL_RECORD_CORRUPT)
			return corrupt(wal->dir, file->name, offset, why, err, errlen);
		if (status == WAL_RECORD_OK) {
			if (offset > 0) {
				int rc = apply_record(replay, &view, summary, wal->dir, file->name, offset, err, errlen);
				if (rc != 0)
					return rc;
			} else {
				replay->records++;
			}
			offset += view.size;
			continue;
		}
		summary->end = offset;
		/* A closed or older segment is read to its end (a record that did not fit is all that can follow
		 * its last one); the newest open segment only through the window, and through the torn record
		 * at its end when its length can be read, and repair_last_segment clears the rest. */
		size_t scan_end = file->size;
		if (last && file->kind == FILE_OPEN) {
			scan_end = tail_window_end(offset, file->size);
			if (status == WAL_RECORD_TORN && offset + WAL_RECORD_HEADER_SIZE <= file->size) {
				const uint8_t *length = file->map + offset;
				uint64_t record_end = offset + WAL_RECORD_HEADER_SIZE + ((uint64_t)length[0] |
						(uint64_t)length[1] << 8 | (uint64_t)length[2] << 16 | (uint64_t)length[3] << 24);
				if (record_end > scan_end)
					scan_end = record_end < file->size ? (size_t)record_end : file->size;
			}
		}
		summary->unread_from = scan_end;
		summary->damaged_end = last_non_zero_end(file->map, offset, scan_end);
		if (summary->damaged_end == offset)
			return 0; /* the clean end: zeros (or the end of the file) from here on */
		if (!last)
			return corrupt(wal->dir, file->name, offset, status == WAL_RECORD_TORN ?
					"torn record in a segment that is not the last" :
					"data after the end of the records", err, errlen);
		if (file->kind == FILE_CLOSED)
			return corrupt(wal->dir, file->name, offset, "torn record in a closed (durable) segment",
					err, errlen);
		return 0;
	}
}

static int check_closed_name(struct wal *wal, const struct segment_file *file, const struct segment_summary *summary,
		char *err, size_t errlen)
{
	struct wal_segment probe = {
		.has_entries = summary->has_entries, .first_index = summary->first_index,
		.last_index = summary->last_index, .index_before = summary->index_before,
	};
	char expected[WAL_SEGMENT_NAME_MAX];
	wal_segment_closed_name(expected, &probe);
	if (strncmp(expected, file->name, strlen(expected)) != 0) {
		char why[160];
		snprintf(why, sizeof why, "its records end here and make it %s: a closed segment must hold "
				"exactly the entries its name says", expected);
		return corrupt(wal->dir, file->name, summary->end, why, err, errlen);
	}
	return 0;
}

/* Makes [from, from + length) of a file read as zero, keeping its blocks allocated. */
static int zero_range(struct wal *wal, const struct segment_file *file, uint64_t from, uint64_t length,
		const char *what, char *err, size_t errlen)
{
	if (length == 0 || fallocate(file->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)from,
			(off_t)length) == 0)
		return 0;
	static const uint8_t zeros[4096];
	for (uint64_t done = 0; done < length;) {
		size_t piece = length - done < sizeof zeros ? (size_t)(length - done) : sizeof zeros;
		ssize_t wrote = pwrite(file->fd, zeros, piece, (off_t)(from + done));
		if (wrote <= 0)
			return wal_error(err, errlen, wrote < 0 ? errno : EIO, "%s/%s: zeroing %s at offset %" PRIu64
					": %s", wal->dir, file->name, what, from + done, strerror(wrote < 0 ? errno : EIO));
		done += (uint64_t)wrote;
	}
	return 0;
}

/* Makes the part of a file recovery did not read, [from, its end), zero, without reading it when the file
 * system can tell or do it: nothing to do when SEEK_DATA finds only holes and unwritten extents there;
 * else fallocate's ZERO_RANGE. Only where neither works is it read, and what is not zero written over. */
static int clear_unread(struct wal *wal, const struct segment_file *file, uint64_t from, char *err, size_t errlen)
{
	if (from >= file->size)
		return 0;
	off_t data = lseek(file->fd, (off_t)from, SEEK_DATA);
	if (data < 0 && errno == ENXIO)
		return 0;
	if (data >= 0) {
		if ((uint64_t)data >= file->size)
			return 0;
		from = (uint64_t)data;
	}
	uint64_t length = file->size - from;
	if (fallocate(file->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)length) == 0)
		return 0;
	uint64_t end = last_non_zero_end(file->map, from, file->size);
	return zero_range(wal, file, from, end - from, "the unread tail", err, errlen);
}

/* Zeroes what a torn write left behind the last good record, and whatever may lie past what was read,
 * restores the preallocated size and makes the segment durable (its records may have been only in the
 * page cache of a crashed process). */
static int repair_last_segment(struct wal *wal, struct segment_file *file, const struct segment_summary *summary,
		char *err, size_t errlen)
{
	int rc = zero_range(wal, file, summary->end, summary->damaged_end - summary->end, "the torn tail", err,
			errlen);
	if (rc == 0)
		rc = clear_unread(wal, file, summary->unread_from, err, errlen);
	if (rc != 0)
		return rc;
	if (file->size < file->capacity && fallocate(file->fd, 0, 0, (off_t)file->capacity) != 0)
		return wal_error(err, errlen, errno, "%s/%s: fallocate: %s", wal->dir, file->name, strerror(errno));
	if (fdatasync(file->fd) != 0)
		return wal_error(err, errlen, errno, "%s/%s: fdatasync: %s", wal->dir, file->name, strerror(errno));
	return 0;
}

/* Turns the scanned newest open segment into the active one that appends continue in. */
static int adopt_active(struct wal *wal, struct segment_file *file, struct wal_segment *segment, char *err,
		size_t errlen)
{
	int flags = O_RDWR | O_CLOEXEC | (wal->options.direct_io ? O_DIRECT : 0);
	segment->fd = openat(wal->dir_fd, file->name, flags);
	if (segment->fd < 0)
		return wal_error(err, errlen, errno, "%s/%s: open: %s", wal->dir, file->name, strerror(errno));
	if (wal->options.direct_io) {
		if (posix_memalign((void **)&segment->tail_block, WAL_DIRECT_ALIGNMENT, WAL_DIRECT_ALIGNMENT) != 0)
			return wal_error(err, errlen, ENOMEM, "%s/%s: out of memory", wal->dir, file->name);
		memset(segment->tail_block, 0, WAL_DIRECT_ALIGNMENT);
		size_t block = segment->write_offset / WAL_DIRECT_ALIGNMENT * WAL_DIRECT_ALIGNMENT;
		memcpy(segment->tail_block, file->map + block, segment->write_offset - block);
	}
	wal->active = segment;
	return 0;
}

static int rebuild(struct wal *wal, struct segment_file *files, size_t data_count, struct replay *replay,
		char *err, size_t errlen)
{
	for (size_t i = 0; i < data_count; i++) {
		struct segment_file *file = &files[i];
		bool last = i + 1 == data_count;
		struct segment_summary summary;
		int rc = scan_segment(wal, file, last, replay, &summary, err, errlen);
		if (rc == 0 && file->kind == FILE_CLOSED)
			rc = check_closed_name(wal, file, &summary, err, errlen);
		if (rc != 0)
			return rc;
		struct wal_segment *segment = calloc(1, sizeof *segment);
		if (segment == NULL || wal_add_segment(wal, segment) != 0) {
			free(segment);
			return wal_error(err, errlen, ENOMEM, "%s: out of memory", wal->dir);
		}
		strcpy(segment->name, file->name);
		segment->fd = -1;
		segment->sequence = file->sequence;
		segment->capacity = file->capacity;
		segment->write_offset = summary.end;
		segment->has_entries = summary.has_entries;
		segment->first_index = summary.first_index;
		segment->last_index = summary.last_index;
		segment->max_index = summary.max_index;
		segment->index_before = summary.index_before;
		segment->full = true;
		segment->ready = true;
		if (last && file->kind == FILE_OPEN) {
			if (summary.damaged_end > summary.end)
				wal->recovered.info.torn_tail = true;
			wal->recovered.info.truncated_bytes += summary.damaged_end - summary.end;
			rc = repair_last_segment(wal, file, &summary, err, errlen);
			if (rc == 0) {
				segment->full = false;
				segment->capacity = file->capacity;
				rc = adopt_active(wal, file, segment, err, errlen);
			}
			snprintf(wal->recovered.info.last_segment, sizeof wal->recovered.info.last_segment, "%s",
					file->name);
			wal->recovered.info.end_offset = summary.end;
		} else if (file->kind == FILE_OPEN) {
			/* A later segment has records, so this one was durable before the crash interrupted
			 * its renaming. */
			rc = wal_segment_close(wal->dir_fd, wal->dir, segment, err, errlen);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Files without a header: prepared but unused (all zero), or the torn first write of the newest
 * segment. Anything else means records are missing. They are deleted, and their sequence numbers are
 * given out again, so the sequence stays gap-free. */
static int check_headless(struct wal *wal, struct segment_file *files, size_t data_count, size_t count, char *err,
		size_t errlen)
{
	uint64_t newest = data_count > 0 ? files[data_count - 1].sequence : 0;
	bool torn_seen = false;
	for (size_t i = data_count; i < count; i++) {
		struct segment_file *file = &files[i];
		if (file->kind == FILE_CLOSED)
			return corrupt(wal->dir, file->name, 0, "closed segment without a segment header", err,
					errlen);
		if (data_count > 0 && file->name_sequence <= newest)
			return corrupt(wal->dir, file->name, 0, file->all_zero ?
					"empty segment older than the newest one: records are missing" :
					"damaged segment header", err, errlen);
		if (!file->all_zero) {
			/* Links keep a segment unwritten until the one before it is durable: only the next
			 * segment in the sequence can hold a torn first write. */
			if (torn_seen || (data_count > 0 && file->name_sequence != newest + 1))
				return corrupt(wal->dir, file->name, 0, "damaged segment header", err, errlen);
			torn_seen = true;
			wal->recovered.info.torn_tail = true;
			wal->recovered.info.truncated_bytes += last_non_zero_end(file->map, 0,
					tail_window_end(0, file->size));
		}
	}
	return 0;
}

static int check_sequence(struct wal *wal, const struct segment_file *files, size_t data_count, char *err,
		size_t errlen)
{
	for (size_t i = 1; i < data_count; i++) {
		if (files[i].sequence == files[i - 1].sequence)
			return wal_error(err, errlen, EBADMSG, "%s: segments %s and %s have the same sequence %" PRIu64,
					wal->dir, files[i - 1].name, files[i].name, files[i].sequence);
		if (files[i].sequence != files[i - 1].sequence + 1)
			return wal_error(err, errlen, EBADMSG, "%s: segment sequence %" PRIu64 " is missing between "
					"%s (sequence %" PRIu64 ") and %s (sequence %" PRIu64 ")", wal->dir,
					files[i - 1].sequence + 1, files[i - 1].name, files[i - 1].sequence,
					files[i].name, files[i].sequence);
	}
	return 0;
}

/* Deletes headerless files, except an unused prepared segment that is next in the sequence: reopening
 * (after a crash, or a clean restart) then does not prepare it again. */
static int remove_headless(struct wal *wal, struct segment_file *files, size_t data_count, size_t count,
		char *err, size_t errlen)
{
	bool removed = false;
	for (size_t i = data_count; i < count; i++) {
		struct segment_file *file = &files[i];
		if (file->all_zero && file->name_sequence == wal->next_sequence && file->size <= file->capacity) {
			file->reuse = true;
			continue;
		}
		if (unlinkat(wal->dir_fd, file->name, 0) != 0)
			return wal_error(err, errlen, errno, "%s/%s: unlink: %s", wal->dir, file->name,
					strerror(errno));
		removed = true;
	}
	if (removed && fsync(wal->dir_fd) != 0)
		return wal_error(err, errlen, errno, "%s: fsync: %s", wal->dir, strerror(errno));
	return 0;
}

/* Takes an unused prepared segment back: the active one if appends cannot continue in the newest
 * segment, else the one prepared ahead. */
static int adopt_prepared(struct wal *wal, struct segment_file *files, size_t data_count, size_t count,
		char *err, size_t errlen)
{
	for (size_t i = data_count; i < count; i++) {
		struct segment_file *file = &files[i];
		if (!file->reuse)
			continue;
		/* A crash (or a close) may have interrupted its preparation: allocate again, a no-op when complete.
		 * The one prepared ahead is not needed yet: on a full disk it is removed rather than stopping the
		 * start (the next segment is prepared when the active one fills, and a full disk then takes the
		 * member's NOSPACE path). */
		if (wal->active != NULL) {
			int probe = openat(wal->dir_fd, file->name, O_RDWR | O_CLOEXEC);
			if (probe >= 0 && fallocate(probe, 0, 0, (off_t)file->capacity) != 0 && errno == ENOSPC) {
				close(probe);
				if (unlinkat(wal->dir_fd, file->name, 0) != 0 || fsync(wal->dir_fd) != 0)
					return wal_error(err, errlen, errno, "%s/%s: removing a segment there is no room for: %s",
							wal->dir, file->name, strerror(errno));
				char escaped[512];
				log_write("warn", "no room to prepare the next WAL segment at start; it is prepared when needed",
						"\"wal-dir\":\"%s\",\"segment\":\"%s\"", log_json_escape(wal->dir, escaped, sizeof escaped),
						file->name);
				continue;
			}
			if (probe >= 0)
				close(probe);
		}
		struct wal_segment *segment = calloc(1, sizeof *segment);
		if (segment == NULL || wal_add_segment(wal, segment) != 0) {
			free(segment);
			return wal_error(err, errlen, ENOMEM, "%s: out of memory", wal->dir);
		}
		strcpy(segment->name, file->name);
		segment->sequence = file->name_sequence;
		segment->capacity = file->capacity;
		segment->ready = true;
		int flags = O_RDWR | O_CLOEXEC | (wal->options.direct_io ? O_DIRECT : 0);
		segment->fd = openat(wal->dir_fd, file->name, flags);
		if (segment->fd < 0)
			return wal_error(err, errlen, errno, "%s/%s: open: %s", wal->dir, file->name, strerror(errno));
		/* A crash may have interrupted its preparation: allocate again (a no-op when complete) and
		 * make sure its directory entry is durable before records go into it. */
		if (fallocate(segment->fd, 0, 0, (off_t)segment->capacity) != 0 || fsync(wal->dir_fd) != 0)
			return wal_error(err, errlen, errno, "%s/%s: preparing again: %s", wal->dir, file->name,
					strerror(errno));
		/* Only its first TAIL_WINDOW_BYTES were read: the rest must be zero before records go in. */
		int rc = clear_unread(wal, file, tail_window_end(0, file->size), err, errlen);
		if (rc == 0 && fdatasync(file->fd) != 0)
			rc = wal_error(err, errlen, errno, "%s/%s: fdatasync: %s", wal->dir, file->name, strerror(errno));
		if (rc != 0)
			return rc;
		if (wal->options.direct_io) {
			if (posix_memalign((void **)&segment->tail_block, WAL_DIRECT_ALIGNMENT, WAL_DIRECT_ALIGNMENT))
				return wal_error(err, errlen, ENOMEM, "%s/%s: out of memory", wal->dir, file->name);
			memset(segment->tail_block, 0, WAL_DIRECT_ALIGNMENT);
		}
		if (wal->active == NULL)
			wal->active = segment;
		wal->next_sequence = segment->sequence + 1;
	}
	return 0;
}

static int publish(struct wal *wal, struct replay *replay, char *err, size_t errlen)
{
	struct wal_recovered *recovered = &wal->recovered;
	wal->last_index = replay->has_last ? replay->last_index : 0;
	wal->has_hard_state = recovered->has_hard_state = replay->has_hard_state;
	wal->hard_state = recovered->hard_state = replay->hard_state;
	wal->has_snapshot = recovered->has_snapshot = replay->has_snapshot;
	wal->snapshot = recovered->snapshot = replay->snapshot;
	/* The wal keeps one copy of the metadata for the segments it starts, the owner reads the other. */
	wal->snapshot_metadata = replay->snapshot_metadata;
	replay->snapshot_metadata = NULL;
	wal->recovered_metadata = NULL;
	if (wal->snapshot.metadata_length > 0) {
		wal->recovered_metadata = malloc(wal->snapshot.metadata_length);
		if (wal->recovered_metadata == NULL)
			return wal_error(err, errlen, ENOMEM, "%s: out of memory", wal->dir);
		memcpy(wal->recovered_metadata, wal->snapshot_metadata, wal->snapshot.metadata_length);
	}
	recovered->snapshot.metadata = wal->recovered_metadata;
	/* Entries the snapshot covers are not handed back. */
	size_t skip = 0;
	while (replay->has_snapshot && skip < replay->count && replay->entries[skip].index <= replay->snapshot.index)
		free((void *)replay->entries[skip++].data);
	if (skip > 0)
		memmove(replay->entries, replay->entries + skip, (replay->count - skip) * sizeof *replay->entries);
	/* Released segments only ever held entries a durable marker covers: the log continues right after
	 * the marker (or from 1), also when a truncation left no entry but a last index beyond it (fuzz-wal
	 * found entries accepted after a gap, then cut: tests/fuzz/corpus/wal/crash-gap-then-truncate). */
	uint64_t expected = (replay->has_snapshot ? replay->snapshot.index : 0) + 1;
	uint64_t first = replay->count - skip > 0 ? replay->entries[0].index
	                                          : (replay->has_last ? replay->last_index + 1 : expected);
	if (first > expected)
		return wal_error(err, errlen, EBADMSG, "%s: the log starts at entry %" PRIu64 " but entries from %"
				PRIu64 " on are missing: no snapshot marker covers them", wal->dir, first, expected);
	recovered->entries = replay->entries;
	recovered->entry_count = replay->count - skip;
	recovered->info.records = replay->records;
	replay->entries = NULL;
	replay->count = 0;
	return 0;
}

int wal_recover(struct wal *wal, char *err, size_t errlen)
{
	struct segment_file *files = NULL;
	size_t count = 0;
	struct replay replay = { 0 };
	int rc = list_files(wal, &files, &count, err, errlen);
	for (size_t i = 0; rc == 0 && i < count; i++) {
		rc = map_file(wal, &files[i], err, errlen);
		if (rc == 0)
			rc = read_header(wal, &files[i], err, errlen);
	}
	size_t data_count = 0;
	if (rc == 0) {
		if (count > 1)
			qsort(files, count, sizeof *files, by_sequence);
		while (data_count < count && files[data_count].has_header)
			data_count++;
		if (data_count > 0)
			wal->next_sequence = files[data_count - 1].sequence + 1;
		rc = check_sequence(wal, files, data_count, err, errlen);
	}
	if (rc == 0)
		rc = check_headless(wal, files, data_count, count, err, errlen);
	if (rc == 0)
		rc = rebuild(wal, files, data_count, &replay, err, errlen);
	if (rc == 0)
		rc = remove_headless(wal, files, data_count, count, err, errlen);
	if (rc == 0)
		rc = adopt_prepared(wal, files, data_count, count, err, errlen);
	if (rc == 0) {
		wal->recovered.info.segments = (unsigned)data_count;
		rc = publish(wal, &replay, err, errlen);
	}
	drop_entries_from(&replay, 0);
	free(replay.entries);
	free(replay.snapshot_metadata);
	for (size_t i = 0; i < count; i++)
		unmap_file(&files[i]);
	free(files);
	return rc;
}
