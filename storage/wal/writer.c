/* storage/wal/writer.c: batches and io_uring. A batch is the chunks of pending records, one per segment
 * they go to; each chunk becomes a write (a writev when entry data was lent) linked (IOSQE_IO_LINK) to an
 * fdatasync of its file, and the chunks of a batch are linked in one chain, so the kernel runs them in
 * order and a later segment never holds data while an earlier one may still be torn.
 *
 * Up to options.pipeline_depth batches are in flight at once: while one batch's fdatasync runs, the next
 * batch's write is already in the kernel, so the disk does not sit idle while the owner collects a
 * completion and encodes the next group. Records appended while the pipeline is full wait in `pending`
 * and leave together in the next batch (group commit).
 *
 * Durability is decided per batch and in order. An fdatasync covers the writes that completed before it
 * started; the only such write the wal can be sure of is the one linked in front of it. A later batch's
 * fdatasync may run while an earlier batch's write is still going on, so it proves nothing about that
 * write. A batch therefore counts as durable when its own chain completed (every write whole, and the
 * fdatasync linked behind it done), and it is reported only after every earlier batch was: the durable
 * index moves forward batch by batch, never past a batch whose fdatasync has not completed.
 *
 * A batch joins batches already in flight only when it cannot disturb them or recovery:
 * - all of them are single-segment batches in its segment, and none writes that segment's header: a crash
 *   may keep a later write and lose an earlier one, and recovery accepts such a hole only at the end of the
 *   newest segment, behind its header (a batch reaching into a new segment waits until the pipeline is
 *   empty, which costs one batch per segment);
 * - in O_DIRECT mode, the previous write completed: the new chunk's first block rewrites the previous
 *   chunk's last, partly filled block, and two writes of one block in flight could land in either order;
 * - in buffered mode, it starts on a page boundary, so it writes no page the batches in flight write. Unless
 *   the device demands stable pages, the kernel lets a write change a page whose writeback is under way:
 *   the new batch would copy its first records into the page the previous batch's fdatasync is sending to
 *   the disk, and a power cut could keep a sector holding part of a record, non-zero but incomplete, which
 *   recovery must call corruption (rule 4 of the README). With one batch at a time no page is ever written
 *   while under writeback. So buffered batches overlap only when the previous one ended on a page boundary,
 *   and a batch that starts next to one in flight, or after waiting for the page rule, is padded to a page
 *   boundary (encode.c, wal_encode_padding) so that the one after it may overlap; O_DIRECT writes from the
 *   wal's own buffers and overlaps after every write.
 *
 * Batches in flight at once fdatasync one file through different open file descriptions (one per
 * pipeline slot). Linux reports a writeback error once per open file description: two fdatasyncs through
 * one description race for it, and the one that loses returns 0 although pages it waited for were lost.
 * If that one were the earlier batch's, and its completion came first, a lost write would be reported
 * durable. With one description per slot every fdatasync sees every error since its description last
 * checked, which was the fdatasync of the batch `depth` sequence numbers before, retired before this
 * batch's write started. */
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

/* The requests that prepare a segment ahead, in the order they are linked. */
enum prepare_step { PREPARE_FALLOCATE, PREPARE_FDATASYNC, PREPARE_DIRECTORY_FSYNC, PREPARE_STEPS };
static const char *const prepare_step_names[PREPARE_STEPS] = { "fallocate", "fdatasync",
	"fsync of the directory" };

/* The requests of zero-filling (options.zero_segments): a piece of zeros linked to writing it back (and
 * waiting for that), and once the segment is full of zeros, an fdatasync that commits the extents'
 * conversion. */
enum zero_step { ZERO_WRITE, ZERO_START_WRITEBACK, ZERO_FDATASYNC };

/* Waits that go unpadded after a padded batch that no other batch joined (see wal_writer_start_batch). */
#define PADDING_SKIPS 16u

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
	long page_size = sysconf(_SC_PAGESIZE);
	wal->page_size = page_size > 0 ? (uint64_t)page_size : 4096;
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

static void free_chunk(struct wal_chunk *chunk)
{
	free(chunk->buffer);
	free(chunk->pieces);
	free(chunk->iovecs);
	free(chunk);
}

static void free_chunks(struct wal_chunk_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free_chunk(list->items[i]);
	free(list->items);
	memset(list, 0, sizeof *list);
}

static struct wal_batch *batch_at(struct wal *wal, size_t age)
{
	return &wal->batches[(wal->batch_first + age) % WAL_MAX_PIPELINE_DEPTH];
}

const struct wal_batch *wal_writer_batch(const struct wal *wal, size_t age)
{
	return age < wal->batch_count ? &wal->batches[(wal->batch_first + age) % WAL_MAX_PIPELINE_DEPTH] : NULL;
}

size_t wal_writer_chunks_in_flight(const struct wal *wal)
{
	size_t chunks = 0;
	for (size_t age = 0; age < wal->batch_count; age++)
		chunks += wal_writer_batch(wal, age)->chunks.count;
	return chunks;
}

void wal_writer_destroy(struct wal *wal)
{
	free_chunks(&wal->pending);
	for (size_t slot = 0; slot < WAL_MAX_PIPELINE_DEPTH; slot++) {
		/* Retired batches leave their list empty; only unreported ones still own chunks. */
		free_chunks(&wal->batches[slot].chunks);
	}
	wal->batch_count = 0;
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

bool wal_writer_lend(struct wal *wal, struct wal_chunk *chunk, const uint8_t *data, size_t length)
{
	(void)wal;
	/* The buffer piece in front of it, the lent piece, and the buffer piece that closes the chunk when
	 * its batch starts: reserved now, so starting a batch never allocates. */
	size_t needed = chunk->piece_count + 3;
	if (needed > WAL_MAX_CHUNK_PIECES)
		return false;
	if (needed > chunk->piece_capacity) {
		size_t capacity = chunk->piece_capacity ? chunk->piece_capacity * 2 : 32;
		if (capacity > WAL_MAX_CHUNK_PIECES)
			capacity = WAL_MAX_CHUNK_PIECES;
		struct wal_piece *pieces = realloc(chunk->pieces, capacity * sizeof *pieces);
		if (pieces == NULL)
			return false;
		chunk->pieces = pieces;
		chunk->piece_capacity = capacity;
		struct iovec *iovecs = realloc(chunk->iovecs, capacity * sizeof *iovecs);
		if (iovecs == NULL)
			return false;
		chunk->iovecs = iovecs;
		chunk->iovec_capacity = capacity;
	}
	if (chunk->buffer_piece_start < chunk->length)
		chunk->pieces[chunk->piece_count++] = (struct wal_piece){ NULL, chunk->buffer_piece_start,
			chunk->length - chunk->buffer_piece_start };
	chunk->pieces[chunk->piece_count++] = (struct wal_piece){ data, 0, length };
	chunk->buffer_piece_start = chunk->length;
	chunk->lent_length += length;
	return true;
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
	/* A spare chunk keeps its allocations; everything else starts over. */
	struct wal_chunk kept = *chunk;
	memset(chunk, 0, sizeof *chunk);
	chunk->buffer = kept.buffer;
	chunk->capacity = kept.capacity;
	chunk->pieces = kept.pieces;
	chunk->piece_capacity = kept.piece_capacity;
	chunk->iovecs = kept.iovecs;
	chunk->iovec_capacity = kept.iovec_capacity;
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
		free_chunk(chunk);
		wal_fail(wal, ENOMEM, "%s: out of memory", wal->dir);
		return NULL;
	}
	if (prefix > 0)
		memcpy(chunk->buffer, segment->tail_block, prefix);
	chunk->length = prefix;
	chunk->buffer_piece_start = 0;
	segment->unsynced_chunks++;
	return chunk;
}

static inline uint64_t operation_tag(uint64_t batch, size_t chunk, enum wal_operation_kind kind)
{
	return batch << 20 | (uint64_t)chunk << 2 | (uint64_t)kind;
}

/* The iovecs of what is left to write of a chunk with lent pieces, skipping `written` bytes. */
static unsigned remaining_iovecs(struct wal_chunk *chunk)
{
	size_t skip = chunk->written;
	unsigned count = 0;
	for (size_t i = 0; i < chunk->piece_count; i++) {
		const struct wal_piece *piece = &chunk->pieces[i];
		if (skip >= piece->length) {
			skip -= piece->length;
			continue;
		}
		const uint8_t *base = piece->lent != NULL ? piece->lent : chunk->buffer + piece->offset;
		chunk->iovecs[count++] = (struct iovec){ (void *)(base + skip), piece->length - skip };
		skip = 0;
	}
	return count;
}

/* The descriptor a batch fdatasyncs a segment through (see the comment at the top); -1 on failure. */
static int sync_fd_for(struct wal *wal, const struct wal_batch *batch, struct wal_segment *segment)
{
	if (wal->options.pipeline_depth == 1)
		return segment->fd;
	unsigned slot = (unsigned)(batch->sequence % wal->options.pipeline_depth);
	if (!(segment->sync_fd_open & 1u << slot)) {
		/* Opened before this batch's write is submitted, so it sees any error on those pages. */
		int fd = openat(wal->dir_fd, segment->name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		segment->sync_fds[slot] = fd;
		segment->sync_fd_open |= 1u << slot;
	}
	return segment->sync_fds[slot];
}

/* Queues write (if not yet complete) and fdatasync for every unfinished chunk of the batch, as one chain,
 * and submits it. */
static int queue_chain(struct wal *wal, struct wal_batch *batch)
{
	/* Every descriptor first: a failure must not leave half a chain in the submission queue (RWF_DSYNC
	 * writes need none). */
	for (size_t i = 0; !wal->options.dsync_writes && i < batch->chunks.count; i++) {
		struct wal_chunk *chunk = batch->chunks.items[i];
		if (!chunk->sync_done && sync_fd_for(wal, batch, chunk->segment) < 0)
			return wal_fail(wal, errno, "%s/%s: open for fdatasync: %s", wal->dir, chunk->segment->name,
					strerror(errno));
	}
	struct io_uring_sqe *last = NULL;
	unsigned queued = 0;
	for (size_t i = 0; i < batch->chunks.count; i++) {
		struct wal_chunk *chunk = batch->chunks.items[i];
		if (chunk->sync_done)
			continue;
		if (!chunk->write_done) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&wal->ring);
			if (sqe == NULL)
				return wal_fail(wal, EBUSY, "%s: io_uring submission queue full", wal->dir);
			if (chunk->piece_count == 0)
				io_uring_prep_write(sqe, chunk->segment->fd, chunk->buffer + chunk->written,
						(unsigned)(chunk->write_length - chunk->written),
						chunk->file_offset + chunk->written);
			else
				io_uring_prep_writev(sqe, chunk->segment->fd, chunk->iovecs, remaining_iovecs(chunk),
						chunk->file_offset + chunk->written);
			io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
			io_uring_sqe_set_data64(sqe, operation_tag(batch->sequence, i, WAL_OPERATION_WRITE));
			last = sqe;
			queued++;
			if (wal->options.dsync_writes) {
				/* The write is its own fdatasync: it completes once its range is durable. */
				sqe->rw_flags = RWF_DSYNC;
				continue;
			}
		}
		struct io_uring_sqe *sqe = io_uring_get_sqe(&wal->ring);
		if (sqe == NULL)
			return wal_fail(wal, EBUSY, "%s: io_uring submission queue full", wal->dir);
		io_uring_prep_fsync(sqe, sync_fd_for(wal, batch, chunk->segment), IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
		io_uring_sqe_set_data64(sqe, operation_tag(batch->sequence, i, WAL_OPERATION_SYNC));
		last = sqe;
		queued++;
	}
	if (last != NULL)
		last->flags &= (uint8_t)~IOSQE_IO_LINK; /* the chain ends here */
	batch->operations += queued;
	wal->batch_operations += queued;
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

/* Whether chunk, the first pending one, may go into the kernel next to the batches already there (the
 * rules are in the comment at the top). */
static bool may_join_pipeline(struct wal *wal, const struct wal_chunk *chunk)
{
	if (wal->batch_count == 0)
		return true;
	if (wal->batch_count >= wal->options.pipeline_depth)
		return false;
	for (size_t age = 0; age < wal->batch_count; age++) {
		const struct wal_batch *batch = batch_at(wal, age);
		if (batch->chunks.count != 1)
			return false;
		const struct wal_chunk *in_flight = batch->chunks.items[0];
		if (in_flight->segment != chunk->segment || in_flight->records_offset == 0)
			return false;
	}
	if (!wal->options.direct_io) {
		if (chunk->file_offset % wal->page_size == 0)
			return true;
		wal->held_inside_page = true;
		return false;
	}
	/* With RWF_DSYNC a completed write is a finished batch: such batches never overlap. */
	const struct wal_chunk *newest = batch_at(wal, wal->batch_count - 1)->chunks.items[0];
	/* By induction every earlier write completed too: each batch waited for the one before it. */
	return newest->write_done;
}

/* Whether a batch may write into segment now: it is prepared, and no zeros are being written into it. */
static bool writable(const struct wal *wal, const struct wal_segment *segment)
{
	return segment->ready && !(wal->zeroing == segment && wal->zero_operations > 0);
}

/* Fixes what a chunk writes, now that no record will be added to it. */
static void seal_chunk(struct wal *wal, struct wal_chunk *chunk)
{
	if (chunk->piece_count > 0 && chunk->buffer_piece_start < chunk->length)
		chunk->pieces[chunk->piece_count++] = (struct wal_piece){ NULL, chunk->buffer_piece_start,
			chunk->length - chunk->buffer_piece_start };
	chunk->write_length = chunk->length + chunk->lent_length;
	if (wal->options.direct_io) {
		size_t padded = (chunk->length + WAL_DIRECT_ALIGNMENT - 1) / WAL_DIRECT_ALIGNMENT * WAL_DIRECT_ALIGNMENT;
		memset(chunk->buffer + chunk->length, 0, padded - chunk->length);
		chunk->write_length = padded;
		/* Remember the partly filled last block: the next chunk of this segment starts with it. */
		size_t tail = chunk->length / WAL_DIRECT_ALIGNMENT * WAL_DIRECT_ALIGNMENT;
		memset(chunk->segment->tail_block, 0, WAL_DIRECT_ALIGNMENT);
		memcpy(chunk->segment->tail_block, chunk->buffer + tail, chunk->length - tail);
	}
}

int wal_writer_start_batch(struct wal *wal)
{
	while (!wal->failed && !wal->batch_failed && wal->pending.count > 0) {
		struct wal_chunk *first = wal->pending.items[0];
		/* Chunks for a segment still being prepared wait: its file may not be allocated and its name
		 * not durable yet. They start when the preparation completes (or the zeros in flight). */
		if (!writable(wal, first->segment) || !may_join_pipeline(wal, first))
			break;
		size_t take = 1;
		if (wal->batch_count == 0)
			while (take < wal->pending.count && take < wal->max_chunks_per_batch &&
					writable(wal, wal->pending.items[take]->segment))
				take++;
		/* Buffered, groups arriving apart (a batch already in flight, or one that had to wait because the
		 * batch before it ended inside a page): this batch is padded to a page boundary, so the next one may
		 * start while its fdatasync runs. Alone (one group in lockstep, one proposer) nothing is padded. A
		 * wait alone is weak evidence: one client's entry waiting for the hard state batch before it is
		 * followed by nothing while it is in flight. So after a padded batch that no batch joined, the next
		 * PADDING_SKIPS waits are not answered with padding (one padded batch in 17 in that pattern). */
		bool pad = false;
		if (!wal->options.direct_io && take == 1 && wal->pending.count == 1 && wal->options.pipeline_depth > 1) {
			if (wal->batch_count > 0)
				pad = true;
			else if (wal->held_inside_page && wal->padding_skips > 0)
				wal->padding_skips--;
			else
				pad = wal->held_inside_page;
		}
		if (pad) {
			uint64_t before = first->segment->write_offset;
			if (wal_encode_padding(wal, first, wal->page_size))
				wal->padding_bytes += first->segment->write_offset - before;
			else
				pad = false;
		}
		wal->held_inside_page = false;
		for (size_t age = 0; age < wal->batch_count; age++)
			batch_at(wal, age)->joined = true;
		struct wal_batch *batch = batch_at(wal, wal->batch_count);
		batch->padded = pad;
		batch->joined = false;
		batch->sequence = wal->next_batch_sequence++;
		batch->chunks.count = 0;
		batch->operations = 0;
		batch->error = 0;
		batch->failed_chunk = NULL;
		for (size_t i = 0; i < take; i++) {
			struct wal_chunk *chunk = wal->pending.items[i];
			seal_chunk(wal, chunk);
			if (push_chunk(&batch->chunks, chunk) != 0) {
				/* Nothing of the batch is in the kernel yet: its chunks go back to pending. */
				batch->chunks.count = 0;
				return wal_fail(wal, ENOMEM, "%s: out of memory", wal->dir);
			}
		}
		memmove(wal->pending.items, wal->pending.items + take, (wal->pending.count - take) * sizeof(void *));
		wal->pending.count -= take;
		wal->batch_count++;
		int rc = queue_chain(wal, batch);
		if (rc != 0)
			return rc;
	}
	return wal->failed;
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
	unsigned queued = 0;
	struct io_uring_sqe *last = NULL;
	for (unsigned step = 0; step < PREPARE_STEPS; step++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&wal->ring);
		if (sqe == NULL) {
			wal_fail(wal, EBUSY, "%s: io_uring submission queue full", wal->dir);
			return;
		}
		if (step == PREPARE_FALLOCATE)
			io_uring_prep_fallocate(sqe, segment->fd, 0, 0, (off_t)segment->capacity);
		else if (step == PREPARE_FDATASYNC)
			io_uring_prep_fsync(sqe, segment->fd, IORING_FSYNC_DATASYNC);
		else
			io_uring_prep_fsync(sqe, wal->ring_dir_fd, 0);
		io_uring_sqe_set_data64(sqe, operation_tag(0, step, WAL_OPERATION_PREPARE));
		io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
		last = sqe;
		queued++;
	}
	last->flags &= (uint8_t)~IOSQE_IO_LINK; /* the chain ends here */
	wal->prepare_operations = queued;
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

/* Zero-filling (options.zero_segments). The segment prepared ahead is filled with zeros in pieces while
 * the active one fills up, so appends into it later overwrite written blocks (no extent conversion for
 * their fdatasync to commit). The pace follows the active segment: the zeros are done when it is 80% full,
 * and the disk never gets a segment's worth of zeros at once (in one burst they held up the commits
 * behind them for tens of milliseconds). Each piece is written back right after it is written, and a
 * final fdatasync commits the conversions. Zero-filling is only an optimisation: blocks not filled read as
 * zero all the same, so a failure just stops it. Batches never write into a segment while a zero request
 * is in flight on it, and a zero request completes only once its pages' writeback did: otherwise records
 * could be copied into a page being sent to the disk, and a power cut could keep part of a record there
 * (see the buffered-mode rule above).
 *
 * It pays only for small batches: the saving is per fdatasync, the cost (the disk's time and the CPU's
 * for writing the zeros back) per byte. In paired runs on a virtual disk it gained 6-38% in fsyncs/s with
 * 8 and 16 KiB batches, was mixed at 32 KiB and lost 13-18% at 64 KiB; so it pauses while the recent
 * average batch is above ZERO_FILL_MAX_BATCH_BYTES, leaving the rest of the segment only preallocated. */
#define ZERO_PIECE_SIZE WAL_ZERO_BUFFER_SIZE
#define ZERO_FILL_MAX_BATCH_BYTES (32u * 1024u)

static struct wal_segment *zero_fill_candidate(const struct wal *wal)
{
	if (!wal->options.zero_segments || wal->failed || wal->batch_failed || wal->segment_count == 0)
		return NULL;
	struct wal_segment *segment = wal->segments[wal->segment_count - 1];
	/* Records encoded into it (write_offset > 0) end the filling: zeros must not race with them. */
	if (segment == wal->active || !segment->ready || segment->write_offset > 0 || segment->zero_filled ||
			segment->fd < 0)
		return NULL;
	return segment;
}

static int submit_ring(struct wal *wal)
{
	for (;;) {
		int submitted = io_uring_submit(&wal->ring);
		if (submitted == -EINTR || submitted == -EAGAIN)
			continue;
		if (submitted < 0)
			return wal_fail(wal, -submitted, "%s: io_uring_submit: %s", wal->dir, strerror(-submitted));
		return 0;
	}
}

/* Submits the next zero-filling request if the pace allows one and none is in flight. */
static int continue_zero_fill(struct wal *wal)
{
	if (wal->zero_operations > 0)
		return 0;
	struct wal_segment *segment = zero_fill_candidate(wal);
	if (segment == NULL || wal->average_batch_bytes > ZERO_FILL_MAX_BATCH_BYTES)
		return 0;
	wal->zeroing = segment;
	if (segment->zeroed >= segment->capacity) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&wal->ring);
		if (sqe == NULL)
			return wal_fail(wal, EBUSY, "%s: io_uring submission queue full", wal->dir);
		io_uring_prep_fsync(sqe, segment->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(sqe, operation_tag(0, ZERO_FDATASYNC, WAL_OPERATION_ZERO));
		wal->zero_operations = 1;
		return submit_ring(wal);
	}
	const struct wal_segment *active = wal->active;
	/* Done when the active segment is 80% full; one piece ahead of that line at all times. */
	uint64_t target = (uint64_t)((double)segment->capacity * 1.25 * (double)active->write_offset /
			(double)active->capacity) + ZERO_PIECE_SIZE;
	if (segment->zeroed >= target)
		return 0;
	uint64_t piece = segment->capacity - segment->zeroed < ZERO_PIECE_SIZE ?
			segment->capacity - segment->zeroed : ZERO_PIECE_SIZE;
	struct io_uring_sqe *write = io_uring_get_sqe(&wal->ring);
	struct io_uring_sqe *writeback = write != NULL ? io_uring_get_sqe(&wal->ring) : NULL;
	if (writeback == NULL)
		return wal_fail(wal, EBUSY, "%s: io_uring submission queue full", wal->dir);
	io_uring_prep_write(write, segment->fd, wal_zero_buffer(), (unsigned)piece, segment->zeroed);
	io_uring_sqe_set_flags(write, IOSQE_IO_LINK);
	io_uring_sqe_set_data64(write, operation_tag(0, ZERO_WRITE, WAL_OPERATION_ZERO));
	io_uring_prep_sync_file_range(writeback, segment->fd, (unsigned)piece, segment->zeroed,
			SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
	io_uring_sqe_set_data64(writeback, operation_tag(0, ZERO_START_WRITEBACK, WAL_OPERATION_ZERO));
	wal->zero_piece = piece;
	wal->zero_operations = 2;
	return submit_ring(wal);
}

/* Settles a segment whose filling stopped early: an fdatasync, so no page of it is still being written
 * back when batches may write into it. */
static int settle_zero_fill(struct wal *wal, struct wal_segment *segment)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&wal->ring);
	if (sqe == NULL)
		return wal_fail(wal, EBUSY, "%s: io_uring submission queue full", wal->dir);
	io_uring_prep_fsync(sqe, segment->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, operation_tag(0, ZERO_FDATASYNC, WAL_OPERATION_ZERO));
	wal->zeroing = segment;
	wal->zero_operations = 1;
	return submit_ring(wal);
}

static int handle_zero_completion(struct wal *wal, unsigned step, int result)
{
	struct wal_segment *segment = wal->zeroing;
	wal->zero_operations--;
	bool settle = false;
	if (segment != NULL) {
		bool failed = step == ZERO_WRITE ? result != (int)wal->zero_piece : result < 0;
		if (failed && result != -ECANCELED) {
			segment->zero_filled = true; /* stop: what is not filled still reads as zero */
			/* A piece cut short left dirty pages its cancelled writeback did not wait for. */
			settle = step == ZERO_WRITE;
		} else if (step == ZERO_WRITE) {
			segment->zeroed += wal->zero_piece;
		} else if (step == ZERO_FDATASYNC) {
			segment->zero_filled = true;
		}
	}
	if (wal->zero_operations > 0)
		return 0;
	wal->zeroing = NULL;
	if (settle && !wal->failed)
		return settle_zero_fill(wal, segment);
	/* Records may wait for this segment. */
	int rc = wal_writer_start_batch(wal);
	return rc != 0 ? rc : continue_zero_fill(wal);
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

/* After a failed batch, with nothing of the batches left in the kernel: zeroes the records of every batch
 * not reported durable. A write cut short can end mid-sector, which a crash never does and recovery would
 * take for corruption; a later batch's records behind a zeroed one would be data after the end; a batch
 * that reached into a new segment may have lost that segment's header. None of these bytes was reported
 * durable, so removing them loses nothing. The whole write length is zeroed, not only what the kernel
 * said it wrote: a failed write may have reached the disk in part. Best effort: the disk may be failing. */
static void scrub_unreported_batches(struct wal *wal)
{
	for (size_t age = 0; age < wal->batch_count; age++) {
		const struct wal_batch *batch = batch_at(wal, age);
		for (size_t i = 0; i < batch->chunks.count; i++) {
			const struct wal_chunk *chunk = batch->chunks.items[i];
			uint64_t end = chunk->file_offset + chunk->write_length;
			if (end <= chunk->records_offset)
				continue;
			if (fallocate(chunk->segment->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					(off_t)chunk->records_offset, (off_t)(end - chunk->records_offset)) == 0)
				fdatasync(chunk->segment->fd);
		}
	}
}

/* Every batch's requests are back and one failed: the wal fails with the oldest failure (later batches
 * may have failed only because of it). */
static int fail_pipeline(struct wal *wal)
{
	const struct wal_batch *failed = NULL;
	for (size_t age = 0; age < wal->batch_count && failed == NULL; age++)
		if (batch_at(wal, age)->error != 0)
			failed = batch_at(wal, age);
	scrub_unreported_batches(wal);
	if (failed == NULL)
		return wal_fail(wal, EIO, "%s: a batch failed without an error", wal->dir);
	return wal_fail(wal, -failed->error, "%s/%s: %s at offset %" PRIu64 ": %s", wal->dir,
			failed->failed_chunk->segment->name, failed->failed_write ? "write" : "fdatasync",
			failed->failed_offset, strerror(-failed->error));
}

static bool batch_durable(const struct wal_batch *batch)
{
	if (batch->operations > 0 || batch->error != 0)
		return false;
	for (size_t i = 0; i < batch->chunks.count; i++)
		if (!batch->chunks.items[i]->sync_done)
			return false;
	return true;
}

/* Reports the oldest batch durable: its chain completed, and every batch before it was reported. */
static void retire_oldest_batch(struct wal *wal)
{
	struct wal_batch *batch = batch_at(wal, 0);
	struct wal_chunk *newest = batch->chunks.items[batch->chunks.count - 1];
	uint64_t durable = newest->last_index;
	/* A truncation in a later batch, in flight or waiting, already removed entries above its index. */
	for (size_t age = 1; age < wal->batch_count; age++) {
		const struct wal_batch *later = batch_at(wal, age);
		for (size_t i = 0; i < later->chunks.count; i++)
			if (later->chunks.items[i]->truncated_to < durable)
				durable = later->chunks.items[i]->truncated_to;
	}
	for (size_t i = 0; i < wal->pending.count; i++)
		if (wal->pending.items[i]->truncated_to < durable)
			durable = wal->pending.items[i]->truncated_to;
	wal->durable_index = durable;
	wal->records_durable = newest->records_end;
	wal->batches_completed++;
	uint64_t batch_bytes = 0;
	for (size_t i = 0; i < batch->chunks.count; i++)
		batch_bytes += batch->chunks.items[i]->write_length;
	/* An average over the last few dozen batches: one large batch does not stop zero-filling. */
	wal->average_batch_bytes = (wal->average_batch_bytes * 31 + batch_bytes) / 32;
	for (size_t i = 0; i < batch->chunks.count; i++) {
		struct wal_chunk *chunk = batch->chunks.items[i];
		chunk->segment->unsynced_chunks--;
		if (chunk->has_snapshot && (!wal->has_durable_snapshot ||
				chunk->snapshot_index > wal->durable_snapshot_index)) {
			wal->has_durable_snapshot = true;
			wal->durable_snapshot_index = chunk->snapshot_index;
		}
		wal->sync_count++;
		if (push_chunk(&wal->spare, chunk) != 0)
			free_chunk(chunk);
	}
	if (batch->padded && !batch->joined)
		wal->padding_skips = PADDING_SKIPS;
	batch->chunks.count = 0;
	wal->batch_first = (wal->batch_first + 1) % WAL_MAX_PIPELINE_DEPTH;
	wal->batch_count--;
}

/* A batch's chain has no request left in the kernel. */
static int finish_chain(struct wal *wal, struct wal_batch *batch)
{
	if (batch->error != 0) {
		wal->batch_failed = true;
		return 0;
	}
	bool incomplete = false;
	for (size_t i = 0; i < batch->chunks.count; i++) {
		struct wal_chunk *chunk = batch->chunks.items[i];
		/* An fdatasync only counts when it ran after the whole write. */
		if (!chunk->write_done)
			chunk->sync_done = false;
		incomplete |= !chunk->sync_done;
	}
	if (!incomplete || wal->batch_failed)
		return 0; /* durable; or left unreported, to be scrubbed with the failed one */
	/* A short write broke the chain (its fdatasync and the links after it were cancelled): write the
	 * rest and sync again. Later batches keep running; none is reported before this one. */
	wal->short_writes++;
	return queue_chain(wal, batch);
}

static struct wal_batch *find_batch(struct wal *wal, uint64_t sequence)
{
	for (size_t age = 0; age < wal->batch_count; age++)
		if (batch_at(wal, age)->sequence == sequence)
			return batch_at(wal, age);
	return NULL;
}

static void note_failure(struct wal_batch *batch, struct wal_chunk *chunk, bool write, int error)
{
	if (batch->error != 0)
		return;
	batch->error = error;
	batch->failed_chunk = chunk;
	batch->failed_write = write;
	batch->failed_offset = chunk->file_offset + chunk->written;
}

static int handle_completion(struct wal *wal, uint64_t tag, int result)
{
	struct wal_batch *batch = find_batch(wal, wal_tag_batch(tag));
	size_t index = wal_tag_chunk(tag);
	if (batch == NULL || index >= batch->chunks.count || batch->operations == 0)
		return wal_fail(wal, EIO, "%s: completion for an unknown request", wal->dir);
	struct wal_chunk *chunk = batch->chunks.items[index];
	bool is_write = wal_tag_kind(tag) == WAL_OPERATION_WRITE;
	batch->operations--;
	wal->batch_operations--;
	if (result == -ECANCELED) {
		/* An earlier link failed or was short; that completion says why. */
	} else if (result < 0) {
		note_failure(batch, chunk, is_write, result);
	} else if (!is_write) {
		chunk->sync_done = true;
	} else if (result == 0 || (wal->options.direct_io && result % WAL_DIRECT_ALIGNMENT != 0)) {
		/* No progress, or a short O_DIRECT write we cannot resume at an aligned offset. */
		note_failure(batch, chunk, true, -EIO);
	} else {
		chunk->written += (size_t)result;
		if (chunk->written >= chunk->write_length)
			chunk->write_done = true;
		/* RWF_DSYNC: what a write wrote is durable when it completes, a short write's part too. */
		if (wal->options.dsync_writes)
			chunk->sync_done = chunk->write_done;
	}
	return batch->operations == 0 ? finish_chain(wal, batch) : 0;
}

/* After a completion: reports the batches that became durable, in order, and starts what may start. */
static int advance(struct wal *wal)
{
	bool retired = false;
	while (wal->batch_count > 0 && batch_durable(batch_at(wal, 0))) {
		retire_oldest_batch(wal);
		retired = true;
	}
	if (wal->batch_failed)
		return wal->batch_operations == 0 ? fail_pipeline(wal) : 0;
	/* Start the next group first, so its I/O overlaps the renaming and preparing below. */
	int rc = wal_writer_start_batch(wal);
	if (rc == 0 && retired)
		rc = close_finished_segments(wal);
	if (rc == 0 && retired) {
		/* A failure here (a full disk) is not fatal yet: the active segment may still have room.
		 * It is retried on the next batch, and reported once a segment is really needed. */
		wal_writer_prepare_ahead_async(wal);
		rc = continue_zero_fill(wal);
	}
	return wal->failed ? wal->failed : rc;
}

int wal_writer_deliver(struct wal *wal, uint64_t tag, int result)
{
	if (wal->failed)
		return wal->failed;
	int rc = handle_completion(wal, tag, result);
	return rc != 0 ? rc : advance(wal);
}

/* How many completions a blocking wait may ask for without sleeping past the moment something can move:
 * the oldest batch's outstanding ones (the write's completion alone changes nothing), unless a pending
 * batch waits for an O_DIRECT write, or a filter may hold completions back. */
static unsigned completions_to_wait_for(struct wal *wal)
{
	if (wal->batch_count == 0 || wal->completion_filter != NULL || wal->batch_failed)
		return 1;
	if (wal->options.direct_io && wal->pending.count > 0)
		return 1;
	return batch_at(wal, 0)->operations > 0 ? batch_at(wal, 0)->operations : 1;
}

int wal_writer_process(struct wal *wal, bool block)
{
	uint64_t batches_before = wal->batches_completed;
	while ((wal->batch_operations > 0 || wal->prepare_operations > 0 || wal->zero_operations > 0) &&
			!wal->failed) {
		/* Block only for a batch: one in flight, or records waiting for the segment in preparation;
		 * and after a failure until every request of the batches is back (the kernel uses their
		 * buffers, and the scrub must come after their writes). */
		bool batch_coming = wal->batch_operations > 0 || wal->pending.count > 0;
		bool wait = (wal->batch_failed && wal->batch_operations > 0) ||
				(block && wal->batches_completed == batches_before && batch_coming);
		struct io_uring_cqe *cqe = NULL;
		int rc = wait ? io_uring_wait_cqe_nr(&wal->ring, &cqe, completions_to_wait_for(wal)) :
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
		if (wal_tag_kind(tag) == WAL_OPERATION_PREPARE) {
			rc = handle_prepare_completion(wal, (unsigned)wal_tag_chunk(tag), result);
			if (rc != 0)
				return rc;
			continue;
		}
		if (wal_tag_kind(tag) == WAL_OPERATION_ZERO) {
			rc = handle_zero_completion(wal, (unsigned)wal_tag_chunk(tag), result);
			if (rc != 0)
				return rc;
			continue;
		}
		if (wal->completion_filter != NULL &&
				!wal->completion_filter(wal->completion_filter_context, tag, &result))
			continue;
		rc = wal_writer_deliver(wal, tag, result);
		if (rc != 0)
			return rc;
	}
	return wal->failed;
}

void wal_writer_drain(struct wal *wal)
{
	while (wal->ring_ready && (wal->batch_operations > 0 || wal->prepare_operations > 0 ||
			wal->zero_operations > 0)) {
		struct io_uring_cqe *cqe;
		int rc = io_uring_wait_cqe(&wal->ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			break;
		enum wal_operation_kind kind = wal_tag_kind(io_uring_cqe_get_data64(cqe));
		if (kind == WAL_OPERATION_PREPARE)
			wal->prepare_operations--;
		else if (kind == WAL_OPERATION_ZERO)
			wal->zero_operations--;
		else
			wal->batch_operations--;
		io_uring_cqe_seen(&wal->ring, cqe);
	}
}

void wal_writer_forget(struct wal *wal)
{
	/* Only after wal_writer_drain: no request of these chunks is left in the kernel. */
	free_chunks(&wal->pending);
	for (size_t slot = 0; slot < WAL_MAX_PIPELINE_DEPTH; slot++)
		free_chunks(&wal->batches[slot].chunks);
	wal->batch_first = 0;
	wal->batch_count = 0;
	wal->batch_operations = 0;
	wal->batch_failed = false;
	wal->held_inside_page = false;
	wal->padding_skips = 0;
	wal->preparing = NULL;
	wal->prepare_operations = 0;
	wal->prepare_result = 0;
	wal->zeroing = NULL;
	wal->zero_operations = 0;
}
