/* storage/wal/writer.c: batches and io_uring. A batch is the chunks of pending records, one per segment
 * they go to; each chunk becomes a write linked (IOSQE_IO_LINK) to an fdatasync of its file, and the
 * chunks are linked in a chain, so the kernel runs them in order and a later segment never holds data
 * while an earlier one may still be torn. Only one batch is in flight: records appended meanwhile wait in
 * `pending` and leave together as soon as it completes (group commit). */
#include "error.h"
#include "wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum operation_kind { OPERATION_WRITE = 0, OPERATION_SYNC = 1, OPERATION_PREPARE = 2 };

/* The requests that prepare a segment ahead, in the order they are linked. */
enum prepare_step { PREPARE_FALLOCATE, PREPARE_FDATASYNC, PREPARE_DIRECTORY_FSYNC, PREPARE_STEPS };
static const char *const prepare_step_names[PREPARE_STEPS] = { "fallocate", "fdatasync",
	"fsync of the directory" };

int wal_fail(struct wal *wal, int error_number, const char *format, ...)
{
	if (!wal->failed) {
		va_list arguments;
		va_start(arguments, format);
		vsnprintf(wal->failure, sizeof wal->failure, format, arguments);
		va_end(arguments);
		wal->failed = error_number > 0 ? -error_number : error_number;
	}
	return wal->failed;
}

int wal_add_segment(struct wal *wal, struct wal_segment *segment)
{
	if (wal->segment_count == wal->segment_capacity) {
		size_t capacity = wal->segment_capacity ? wal->segment_capacity * 2 : 8;
		struct wal_segment **grown = realloc(wal->segments, capacity * sizeof *grown);
		if (grown == NULL)
			return -ENOMEM;
		wal->segments = grown;
		wal->segment_capacity = capacity;
	}
	wal->segments[wal->segment_count++] = segment;
	return 0;
}

int wal_writer_init(struct wal *wal, char *err, size_t errlen)
{
	int rc = io_uring_queue_init(wal->options.ring_entries, &wal->ring, 0);
	if (rc < 0)
		return wal_error(err, errlen, -rc, "%s: io_uring_queue_init: %s", wal->dir, strerror(-rc));
	wal->ring_ready = true;
	/* A chain is two requests per chunk, and room is kept for preparing a segment alongside. */
	wal->max_chunks_per_batch = (wal->options.ring_entries - PREPARE_STEPS) / 2;
	wal->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wal->event_fd < 0)
		return wal_error(err, errlen, errno, "%s: eventfd: %s", wal->dir, strerror(errno));
	rc = io_uring_register_eventfd(&wal->ring, wal->event_fd);
	if (rc < 0)
		return wal_error(err, errlen, -rc, "%s: io_uring_register_eventfd: %s", wal->dir, strerror(-rc));
	return 0;
}

static void free_chunks(struct wal_chunk_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i]->buffer);
		free(list->items[i]);
	}
	free(list->items);
	memset(list, 0, sizeof *list);
}

void wal_writer_destroy(struct wal *wal)
{
	free_chunks(&wal->pending);
	free_chunks(&wal->inflight);
	free_chunks(&wal->spare);
	if (wal->ring_ready)
		io_uring_queue_exit(&wal->ring);
	wal->ring_ready = false;
	if (wal->event_fd >= 0)
		close(wal->event_fd);
	wal->event_fd = -1;
}

static int push_chunk(struct wal_chunk_list *list, struct wal_chunk *chunk)
{
	if (list->count == list->capacity) {
		size_t capacity = list->capacity ? list->capacity * 2 : 8;
		struct wal_chunk **grown = realloc(list->items, capacity * sizeof *grown);
		if (grown == NULL)
			return -ENOMEM;
		list->items = grown;
		list->capacity = capacity;
	}
	list->items[list->count++] = chunk;
	return 0;
}

int wal_writer_reserve(struct wal *wal, struct wal_chunk *chunk, size_t bytes, char *err, size_t errlen)
{
	/* Room for the O_DIRECT padding too, so submitting never allocates. */
	size_t needed = chunk->length + bytes + WAL_DIRECT_ALIGNMENT;
	if (needed <= chunk->capacity)
		return 0;
	size_t capacity = chunk->capacity ? chunk->capacity : 64 * 1024;
	while (capacity < needed)
		capacity *= 2;
	uint8_t *grown = NULL;
	if (posix_memalign((void **)&grown, WAL_DIRECT_ALIGNMENT, capacity) != 0)
		return wal_error(err, errlen, ENOMEM, "%s: out of memory for a %zu-byte batch", wal->dir, capacity);
	if (chunk->length > 0)
		memcpy(grown, chunk->buffer, chunk->length);
	free(chunk->buffer);
	chunk->buffer = grown;
	chunk->capacity = capacity;
	return 0;
}

struct wal_chunk *wal_writer_chunk_for(struct wal *wal, struct wal_segment *segment, char *err, size_t errlen)
{
	if (wal->pending.count > 0 && wal->pending.items[wal->pending.count - 1]->segment == segment)
		return wal->pending.items[wal->pending.count - 1];
	struct wal_chunk *chunk;
	if (wal->spare.count > 0) {
		chunk = wal->spare.items[--wal->spare.count];
	} else {
		chunk = calloc(1, sizeof *chunk);
		if (chunk == NULL) {
			wal_error(err, errlen, ENOMEM, "%s: out of memory", wal->dir);
			wal_fail(wal, ENOMEM, "%s: out of memory", wal->dir);
			return NULL;
		}
	}
	uint8_t *buffer = chunk->buffer;
	size_t capacity = chunk->capacity;
	memset(chunk, 0, sizeof *chunk);
	chunk->buffer = buffer;
	chunk->capacity = capacity;
	chunk->segment = segment;
	chunk->last_index = wal->last_index;
	chunk->records_end = wal->records_appended;
	chunk->truncated_to = WAL_NO_TRUNCATION;
	chunk->file_offset = segment->write_offset;
	chunk->records_offset = segment->write_offset;
	size_t prefix = 0;
	if (wal->options.direct_io) {
		/* O_DIRECT writes whole blocks: rewrite the partly filled block with its durable bytes
		 * unchanged, so a torn rewrite cannot damage them. */
		chunk->file_offset = segment->write_offset / WAL_DIRECT_ALIGNMENT * WAL_DIRECT_ALIGNMENT;
		prefix = segment->write_offset - chunk->file_offset;
	}
	if (wal_writer_reserve(wal, chunk, prefix, err, errlen) != 0 || push_chunk(&wal->pending, chunk) != 0) {
		free(chunk->buffer);
		free(chunk);
		wal_fail(wal, ENOMEM, "%s: out of memory", wal->dir);
		return NULL;
	}
	if (prefix > 0)
		memcpy(chunk->buffer, segment->tail_block, prefix);
	chunk->length = prefix;
	segment->unsynced_chunks++;
	return chunk;
}

static inline uint64_t operation_tag(size_t index, enum operation_kind kind)
{
	return (uint64_t)index << 2 | (uint64_t)kind;
}

/* Queues write (if not yet complete) and fdatasync for every unfinished chunk in flight, as one chain. */
static int queue_operations(struct wal *wal)
{
	struct io_uring_sqe *last = NULL;
	unsigned queued = 0;
	for (size_t i = 0; i < wal->inflight.count; i++) {
		struct wal_chunk *chunk = wal->inflight.items[i];
		if (chunk->sync_done)
			continue;
		if (!chunk->write_done) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&wal->ring);
			if (sqe == NULL)
				return wal_fail(wal, EBUSY, "%s: io_uring submission queue full", wal->dir);
			io_uring_prep_write(sqe, chunk->segment->fd, chunk->buffer + chunk->written,
					(unsigned)(chunk->write_length - chunk->written),
					chunk->file_offset + chunk->written);
			io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
			io_uring_sqe_set_data64(sqe, operation_tag(i, OPERATION_WRITE));
			queued++;
		}
		struct io_uring_sqe *sqe = io_uring_get_sqe(&wal->ring);
		if (sqe == NULL)
			return wal_fail(wal, EBUSY, "%s: io_uring submission queue full", wal->dir);
		io_uring_prep_fsync(sqe, chunk->segment->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
		io_uring_sqe_set_data64(sqe, operation_tag(i, OPERATION_SYNC));
		last = sqe;
		queued++;
	}
	if (last != NULL)
		last->flags &= (uint8_t)~IOSQE_IO_LINK; /* the chain ends here */
	wal->inflight_operations = queued;
	while (queued > 0) {
		int submitted = io_uring_submit(&wal->ring);
		if (submitted == -EINTR || submitted == -EAGAIN)
			continue;
		if (submitted < 0)
			return wal_fail(wal, -submitted, "%s: io_uring_submit: %s", wal->dir, strerror(-submitted));
		queued -= (unsigned)submitted < queued ? (unsigned)submitted : queued;
	}
	return 0;
}

int wal_writer_start_batch(struct wal *wal)
{
	if (wal->failed)
		return wal->failed;
	if (wal->inflight.count > 0 || wal->pending.count == 0)
		return 0;
	/* Chunks for a segment still being prepared wait: its file may not be allocated and its name not
	 * durable yet. The batch starts when the preparation completes. */
	size_t take = 0;
	while (take < wal->pending.count && take < wal->max_chunks_per_batch &&
			wal->pending.items[take]->segment->ready)
		take++;
	if (take == 0)
		return 0;
	for (size_t i = 0; i < take; i++) {
		struct wal_chunk *chunk = wal->pending.items[i];
		chunk->write_length = chunk->length;
		if (wal->options.direct_io) {
			size_t padded = (chunk->length + WAL_DIRECT_ALIGNMENT - 1) / WAL_DIRECT_ALIGNMENT *
					WAL_DIRECT_ALIGNMENT;
			memset(chunk->buffer + chunk->length, 0, padded - chunk->length);
			chunk->write_length = padded;
			/* Remember the partly filled last block: the next chunk of this segment starts with it. */
			size_t tail = chunk->length / WAL_DIRECT_ALIGNMENT * WAL_DIRECT_ALIGNMENT;
			memset(chunk->segment->tail_block, 0, WAL_DIRECT_ALIGNMENT);
			memcpy(chunk->segment->tail_block, chunk->buffer + tail, chunk->length - tail);
		}
		if (push_chunk(&wal->inflight, chunk) != 0)
			return wal_fail(wal, ENOMEM, "%s: out of memory", wal->dir);
	}
	memmove(wal->pending.items, wal->pending.items + take, (wal->pending.count - take) * sizeof(void *));
	wal->pending.count -= take;
	return queue_operations(wal);
}

int wal_writer_prepare_ahead(struct wal *wal, char *err, size_t errlen)
{
	if (wal->segments[wal->segment_count - 1] != wal->active)
		return 0;
	struct wal_segment *segment;
	int rc = wal_segment_prepare(wal->dir_fd, wal->dir, wal->next_sequence, wal->options.segment_size,
			wal->options.direct_io, &segment, err, errlen);
	if (rc != 0)
		return rc;
	if (wal_add_segment(wal, segment) != 0) {
		wal_segment_free(segment);
		return wal_error(err, errlen, ENOMEM, "%s: out of memory", wal->dir);
	}
	wal->next_sequence++;
	return 0;
}

void wal_writer_prepare_ahead_async(struct wal *wal)
{
	if (wal->failed || wal->preparing != NULL || wal->segments[wal->segment_count - 1] != wal->active)
		return;
	struct wal_segment *segment;
	/* Creating the file does not wait for the disk; allocating and syncing do, so they go through
	 * the ring. */
	if (wal_segment_create(wal->dir_fd, wal->dir, wal->next_sequence, wal->options.segment_size,
			wal->options.direct_io, &segment, NULL, 0) != 0)
		return; /* retried after the next batch; reported when the segment is needed */
	if (wal_add_segment(wal, segment) != 0) {
		wal_segment_discard(wal->dir_fd, segment);
		return;
	}
	wal->next_sequence++;
	wal->preparing = segment;
	wal->prepare_result = 0;
	struct io_uring_sqe *steps[PREPARE_STEPS];
	for (unsigned step = 0; step < PREPARE_STEPS; step++) {
		steps[step] = io_uring_get_sqe(&wal->ring);
		if (steps[step] == NULL) {
			wal_fail(wal, EBUSY, "%s: io_uring submission queue full", wal->dir);
			return;
		}
	}
	io_uring_prep_fallocate(steps[PREPARE_FALLOCATE], segment->fd, 0, 0, (off_t)segment->capacity);
	io_uring_prep_fsync(steps[PREPARE_FDATASYNC], segment->fd, IORING_FSYNC_DATASYNC);
	io_uring_prep_fsync(steps[PREPARE_DIRECTORY_FSYNC], wal->ring_dir_fd, 0);
	for (unsigned step = 0; step < PREPARE_STEPS; step++) {
		io_uring_sqe_set_data64(steps[step], operation_tag(step, OPERATION_PREPARE));
		if (step + 1 < PREPARE_STEPS)
			io_uring_sqe_set_flags(steps[step], IOSQE_IO_LINK);
	}
	wal->prepare_operations = PREPARE_STEPS;
	for (;;) {
		int submitted = io_uring_submit(&wal->ring);
		if (submitted == -EINTR || submitted == -EAGAIN)
			continue;
		if (submitted < 0)
			wal_fail(wal, -submitted, "%s: io_uring_submit: %s", wal->dir, strerror(-submitted));
		return;
	}
}

/* A completion of the preparation chain. When the chain is done the segment is ready, and batches
 * waiting for it start; if it failed, the segment is removed unless records already wait for it. */
static int handle_prepare_completion(struct wal *wal, unsigned step, int result)
{
	if (result < 0 && result != -ECANCELED && wal->prepare_result == 0) {
		wal->prepare_result = result;
		wal->prepare_step = step;
	}
	if (--wal->prepare_operations > 0)
		return 0;
	struct wal_segment *segment = wal->preparing;
	wal->preparing = NULL;
	if (wal->prepare_result == 0) {
		segment->ready = true;
		return wal_writer_start_batch(wal);
	}
	int error = wal->prepare_result;
	if (segment->unsynced_chunks > 0 || segment == wal->active ||
			wal->segments[wal->segment_count - 1] != segment)
		return wal_fail(wal, -error, "%s/%s: %s %" PRIu64 " bytes: %s", wal->dir, segment->name,
				prepare_step_names[wal->prepare_step], segment->capacity, strerror(-error));
	/* Nothing depends on it yet: try again later (a full disk may free up). */
	wal->segment_count--;
	wal->next_sequence--;
	wal_segment_discard(wal->dir_fd, segment);
	return 0;
}

/* Renames segments that are full and entirely durable to their closed names. */
static int close_finished_segments(struct wal *wal)
{
	for (size_t i = 0; i < wal->segment_count; i++) {
		struct wal_segment *segment = wal->segments[i];
		if (!segment->full || segment->unsynced_chunks > 0 || segment->fd < 0)
			continue;
		char reason[sizeof wal->failure];
		int rc = wal_segment_close(wal->dir_fd, wal->dir, segment, reason, sizeof reason);
		if (rc != 0)
			return wal_fail(wal, -rc, "%s", reason);
	}
	return 0;
}

/* After a failed batch: zeroes what its unfinished writes left behind the durable records. A write cut
 * short can end mid-sector, which a crash never does and recovery would take for corruption; these bytes
 * were never reported durable, so removing them loses nothing. Best effort: the disk may be failing. */
static void scrub_failed_batch(struct wal *wal)
{
	for (size_t i = 0; i < wal->inflight.count; i++) {
		struct wal_chunk *chunk = wal->inflight.items[i];
		uint64_t end = chunk->file_offset + chunk->written;
		if (chunk->sync_done || end <= chunk->records_offset)
			continue;
		if (fallocate(chunk->segment->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				(off_t)chunk->records_offset, (off_t)(end - chunk->records_offset)) == 0)
			fdatasync(chunk->segment->fd);
	}
}

static int finish_batch(struct wal *wal, int error, struct wal_chunk *failed_chunk, bool failed_write)
{
	if (error != 0) {
		scrub_failed_batch(wal);
		return wal_fail(wal, -error, "%s/%s: %s at offset %" PRIu64 ": %s", wal->dir,
				failed_chunk->segment->name, failed_write ? "write" : "fdatasync",
				failed_chunk->file_offset + failed_chunk->written, strerror(-error));
	}
	bool incomplete = false;
	for (size_t i = 0; i < wal->inflight.count; i++) {
		struct wal_chunk *chunk = wal->inflight.items[i];
		/* An fdatasync only counts when it ran after the whole write. */
		if (!chunk->write_done)
			chunk->sync_done = false;
		incomplete |= !chunk->sync_done;
	}
	if (incomplete) {
		/* A short write broke the chain (its fdatasync and the links after it were cancelled):
		 * write the rest and sync again. */
		wal->short_writes++;
		return queue_operations(wal);
	}

	struct wal_chunk *newest = wal->inflight.items[wal->inflight.count - 1];
	uint64_t durable = newest->last_index;
	/* A truncation waiting in a later batch already removed entries above its index from the log. */
	for (size_t i = 0; i < wal->pending.count; i++)
		if (wal->pending.items[i]->truncated_to < durable)
			durable = wal->pending.items[i]->truncated_to;
	wal->durable_index = durable;
	wal->records_durable = newest->records_end;
	wal->batches_completed++;
	for (size_t i = 0; i < wal->inflight.count; i++) {
		struct wal_chunk *chunk = wal->inflight.items[i];
		chunk->segment->unsynced_chunks--;
		if (chunk->has_snapshot && (!wal->has_durable_snapshot ||
				chunk->snapshot_index > wal->durable_snapshot_index)) {
			wal->has_durable_snapshot = true;
			wal->durable_snapshot_index = chunk->snapshot_index;
		}
		wal->sync_count++;
		if (push_chunk(&wal->spare, chunk) != 0) {
			free(chunk->buffer);
			free(chunk);
		}
	}
	wal->inflight.count = 0;
	/* Start the next group first, so its I/O overlaps the renaming and preparing below. */
	int rc = wal_writer_start_batch(wal);
	if (rc == 0)
		rc = close_finished_segments(wal);
	if (rc == 0) {
		/* A failure here (a full disk) is not fatal yet: the active segment may still have room.
		 * It is retried on the next batch, and reported once a segment is really needed. */
		wal_writer_prepare_ahead_async(wal);
	}
	return wal->failed ? wal->failed : rc;
}

static int handle_completion(struct wal *wal, uint64_t tag, int result, int *error, struct wal_chunk **failed_chunk,
		bool *failed_write)
{
	size_t index = (size_t)(tag >> 2);
	bool is_write = (tag & 3) == OPERATION_WRITE;
	if (index >= wal->inflight.count)
		return wal_fail(wal, EIO, "%s: completion for an unknown request", wal->dir);
	struct wal_chunk *chunk = wal->inflight.items[index];
	if (result == -ECANCELED)
		return 0; /* an earlier link failed or was short; that completion says why */
	if (result < 0) {
		if (*error == 0) {
			*error = result;
			*failed_chunk = chunk;
			*failed_write = is_write;
		}
		return 0;
	}
	if (!is_write) {
		chunk->sync_done = true;
		return 0;
	}
	if (result == 0 || (wal->options.direct_io && result % WAL_DIRECT_ALIGNMENT != 0)) {
		/* No progress, or a short O_DIRECT write we cannot resume at an aligned offset. */
		if (*error == 0) {
			*error = -EIO;
			*failed_chunk = chunk;
			*failed_write = true;
		}
		return 0;
	}
	chunk->written += (size_t)result;
	if (chunk->written >= chunk->write_length)
		chunk->write_done = true;
	return 0;
}

int wal_writer_process(struct wal *wal, bool block)
{
	int error = 0;
	struct wal_chunk *failed_chunk = NULL;
	bool failed_write = false;
	bool finished_one = false;
	uint64_t batches_before = wal->batches_completed;
	while ((wal->inflight_operations > 0 || wal->prepare_operations > 0) && !wal->failed) {
		/* Block only for a batch: one in flight, or records waiting for the segment in preparation. */
		bool batch_coming = wal->inflight_operations > 0 || wal->pending.count > 0;
		struct io_uring_cqe *cqe = NULL;
		int rc = (block && !finished_one && batch_coming) ? io_uring_wait_cqe(&wal->ring, &cqe) :
				io_uring_peek_cqe(&wal->ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc == -EAGAIN || cqe == NULL)
			break;
		if (rc < 0)
			return wal_fail(wal, -rc, "%s: waiting for io_uring completions: %s", wal->dir,
					strerror(-rc));
		uint64_t tag = io_uring_cqe_get_data64(cqe);
		int result = cqe->res;
		io_uring_cqe_seen(&wal->ring, cqe);
		if ((tag & 3) == OPERATION_PREPARE) {
			rc = handle_prepare_completion(wal, (unsigned)(tag >> 2), result);
			if (rc != 0)
				return rc;
			continue;
		}
		handle_completion(wal, tag, result, &error, &failed_chunk, &failed_write);
		if (--wal->inflight_operations == 0) {
			rc = finish_batch(wal, error, failed_chunk, failed_write);
			if (rc != 0)
				return rc;
			error = 0;
			failed_chunk = NULL;
			/* A chain restarted after a short write is still the same batch. */
			finished_one = wal->batches_completed != batches_before;
		}
	}
	return wal->failed;
}

void wal_writer_drain(struct wal *wal)
{
	while (wal->ring_ready && (wal->inflight_operations > 0 || wal->prepare_operations > 0)) {
		struct io_uring_cqe *cqe;
		int rc = io_uring_wait_cqe(&wal->ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			break;
		if ((io_uring_cqe_get_data64(cqe) & 3) == OPERATION_PREPARE)
			wal->prepare_operations--;
		else
			wal->inflight_operations--;
		io_uring_cqe_seen(&wal->ring, cqe);
	}
}
