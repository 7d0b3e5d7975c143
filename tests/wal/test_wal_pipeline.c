/* tests/wal/test_wal_pipeline.c: the pipeline of write+fdatasync chains, and the rule it must never break:
 * an entry is reported durable only after the fdatasync linked behind its own write completed, and after
 * every earlier batch's did.
 *
 * The kernel usually completes chains in the order they were submitted, so the orders that matter are
 * played with a completion filter (wal_internal.h): it holds back every completion of a batch's requests,
 * and the test hands them to the wal in an order the kernel may produce (a later batch's fdatasync before
 * an earlier batch's write), or changes them the way the kernel would report a short write or a failing
 * fdatasync. The real requests still ran; only what the wal learns, and when, is chosen by the test.
 * Held completions are collected by waiting on the wal's event fd, never by sleeping. */
#include "helpers.h"
#include "wal_internal.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#define MAX_LENGTH 1500
#define SEGMENT_SIZE (1024u * 1024u)
#define MAX_HELD 64

struct held_completion {
	uint64_t tag;
	int result;
};

static struct held_completion held[MAX_HELD];
static size_t held_count;

static bool hold_everything(void *context, uint64_t tag, int *result)
{
	(void)context;
	CHECK(held_count < MAX_HELD);
	held[held_count++] = (struct held_completion){ tag, *result };
	return false;
}

static void hold_completions(struct wal *wal)
{
	held_count = 0;
	wal->completion_filter = hold_everything;
	wal->completion_filter_context = NULL;
}

/* Reaps until count completions are held; each wait is for the event fd the kernel signals. */
static void collect(struct wal *wal, size_t count)
{
	char err[256];
	while (held_count < count) {
		struct pollfd waiting = { .fd = wal_event_fd(wal), .events = POLLIN };
		CHECK(poll(&waiting, 1, 10000) == 1);
		CHECK_OK(wal_reap(wal, NULL, err, sizeof err), err);
	}
	CHECK(held_count == count);
}

/* The held completion of batch (0: the oldest in flight when it was held) and kind; removes it. */
static struct held_completion take(uint64_t batch_sequence, enum wal_operation_kind kind)
{
	for (size_t i = 0; i < held_count; i++) {
		if (wal_tag_batch(held[i].tag) == batch_sequence && wal_tag_kind(held[i].tag) == kind) {
			struct held_completion found = held[i];
			held[i] = held[--held_count];
			return found;
		}
	}
	test_fail(__FILE__, __LINE__, "no such held completion", NULL);
}

static void deliver(struct wal *wal, struct held_completion completion)
{
	CHECK_OK(wal_writer_deliver(wal, completion.tag, completion.result), wal->failure);
}

static struct wal *open_wal(const char *dir, int direct_io, unsigned depth)
{
	struct wal_options options;
	test_options(&options, SEGMENT_SIZE, direct_io);
	options.pipeline_depth = depth;
	struct wal *wal = NULL;
	char err[256];
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	return wal;
}

static void submit(struct wal *wal)
{
	char err[256];
	CHECK_OK(wal_submit(wal, err, sizeof err), err);
}

static uint64_t sequence_of(struct wal *wal, size_t age)
{
	CHECK(age < wal->batch_count);
	return wal_writer_batch(wal, age)->sequence;
}

/* Pads the active segment with hard state records (15 bytes with a commit index below 128, 16 bytes below
 * 16384) until its end is on a page boundary: in buffered mode a batch overlaps the ones in flight only
 * from there (writer.c). */
static void pad_to_page_boundary(struct wal *wal)
{
	uint64_t page = wal->page_size;
	uint64_t left = page - wal->active->write_offset % page;
	if (left == page)
		return;
	/* 15a + 16b = left has a solution with b = left mod 15 once left >= 16 * 14. */
	while (left < 16 * 14)
		left += page;
	uint64_t sixteens = left % 15, fifteens = (left - 16 * sixteens) / 15;
	char err[256];
	for (uint64_t i = 0; i < sixteens + fifteens; i++) {
		struct wal_hard_state state = { .term = 1, .vote = 1, .commit = i < sixteens ? 200 : 1 };
		CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
	}
	CHECK(wal->active->write_offset % page == 0);
}

static void check_recovered(const char *dir, int direct_io, uint64_t last)
{
	struct wal *wal = open_wal(dir, direct_io, 0);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->entry_count == last);
	for (size_t i = 0; i < recovered->entry_count; i++) {
		CHECK(recovered->entries[i].index == i + 1);
		CHECK(test_entry_matches(&recovered->entries[i], MAX_LENGTH));
	}
	CHECK(!recovered->info.torn_tail);
	wal_close(wal);
}

/* A later batch's whole chain completes first: it proves nothing about the earlier write, so nothing is
 * reported until the earlier batch's own fdatasync completed; then both at once. */
static void test_later_batch_completes_first(void)
{
	const char *dir = test_temp_dir("pipeline-order");
	struct wal *wal = open_wal(dir, 0, 2);
	test_append_range(wal, 1, 5, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 5); /* the segment's header is durable: later batches may overlap */
	hold_completions(wal);
	test_append_range(wal, 6, 10, 1, MAX_LENGTH);
	pad_to_page_boundary(wal);
	uint64_t records_before = wal_durable_records(wal);
	submit(wal);
	test_append_range(wal, 11, 15, 1, MAX_LENGTH);
	submit(wal);
	CHECK(wal->batch_count == 2); /* the second batch did not wait for the first */
	/* White box: the two fdatasyncs in flight go through two open file descriptions of the segment, so
	 * a writeback error is reported to both (Linux reports it once per description). */
	CHECK(__builtin_popcount(wal->active->sync_fd_open) == 2);
	test_append_range(wal, 16, 20, 1, MAX_LENGTH);
	submit(wal);
	CHECK(wal->batch_count == 2 && wal->pending.count == 1); /* the pipeline is full */
	uint64_t first = sequence_of(wal, 0), second = sequence_of(wal, 1);
	collect(wal, 4);

	deliver(wal, take(second, WAL_OPERATION_WRITE));
	deliver(wal, take(second, WAL_OPERATION_SYNC));
	CHECK(wal_durable_index(wal) == 5);
	CHECK(wal_durable_records(wal) == records_before);
	CHECK(wal->batch_count == 2 && wal->pending.count == 1);
	deliver(wal, take(first, WAL_OPERATION_WRITE));
	CHECK(wal_durable_index(wal) == 5);
	deliver(wal, take(first, WAL_OPERATION_SYNC));
	CHECK(wal_durable_index(wal) == 15);
	CHECK(wal_durable_records(wal) == wal_appended_records(wal) - 5);
	/* Both slots freed: the waiting records left at once. */
	CHECK(wal->batch_count == 1 && wal->pending.count == 0);

	wal->completion_filter = NULL;
	CHECK(test_sync(wal) == 20);
	wal_close(wal);
	check_recovered(dir, 0, 20);
}

/* The earlier batch's write comes back short (as the kernel reports it, its linked fdatasync cancelled)
 * while the later batch completed: the wal writes the rest from where the kernel stopped, inside a lent
 * entry's data, syncs again, and reports both batches only after that fdatasync. */
static void test_short_write_behind_completed_batch(void)
{
	const char *dir = test_temp_dir("pipeline-short");
	struct wal *wal = open_wal(dir, 0, 2);
	test_append_range(wal, 1, 5, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 5);
	/* Entries 6..10 lent, long enough to be written from these buffers. */
	static uint8_t lent[5][MAX_LENGTH];
	struct wal_entry entries[5];
	size_t lent_bytes = 0;
	for (uint64_t index = 6; index <= 10; index++) {
		size_t length = test_entry_length(index, 1, MAX_LENGTH);
		test_entry_fill(index, 1, lent[index - 6], length);
		entries[index - 6] = (struct wal_entry){ .term = 1, .index = index, .type = (uint32_t)(index % 3),
			.data = lent[index - 6], .data_length = length };
		if (length >= WAL_REFERENCE_MIN_BYTES)
			lent_bytes += length;
	}
	hold_completions(wal);
	char err[256];
	CHECK_OK(wal_append_entries_referenced(wal, entries, 5, err, sizeof err), err);
	CHECK(wal->pending.items[0]->lent_length == lent_bytes && lent_bytes > 0);
	pad_to_page_boundary(wal);
	submit(wal);
	test_append_range(wal, 11, 15, 1, MAX_LENGTH);
	submit(wal);
	CHECK(wal->batch_count == 2);
	uint64_t first = sequence_of(wal, 0), second = sequence_of(wal, 1);
	size_t first_length = wal_writer_batch(wal, 0)->chunks.items[0]->write_length;
	collect(wal, 4);

	deliver(wal, take(second, WAL_OPERATION_WRITE));
	deliver(wal, take(second, WAL_OPERATION_SYNC));
	struct held_completion write = take(first, WAL_OPERATION_WRITE);
	struct held_completion sync = take(first, WAL_OPERATION_SYNC);
	CHECK(write.result == (int)first_length);
	/* Cut in the middle of the first lent piece, so the rest starts inside the caller's buffer. */
	const struct wal_chunk *chunk = wal_writer_batch(wal, 0)->chunks.items[0];
	size_t cut = 0, piece = 0;
	while (chunk->pieces[piece].lent == NULL)
		cut += chunk->pieces[piece++].length;
	cut += chunk->pieces[piece].length / 2;
	write.result = (int)cut;
	sync.result = -ECANCELED;
	deliver(wal, write);
	deliver(wal, sync);
	CHECK(wal->short_writes == 1);
	CHECK(wal_durable_index(wal) == 5);
	CHECK(wal->batch_count == 2); /* the rest of the first batch went back into the kernel */
	wal->completion_filter = NULL;
	CHECK(test_sync(wal) == 15);
	wal_close(wal);
	check_recovered(dir, 0, 15);
}

/* The earlier batch's fdatasync fails after the later batch completed: nothing of either is reported, the
 * wal fails naming the fdatasync, and their records are scrubbed so recovery finds exactly what was
 * acknowledged, with no torn tail. */
static void test_failed_fdatasync_behind_completed_batch(void)
{
	const char *dir = test_temp_dir("pipeline-fail");
	struct wal *wal = open_wal(dir, 0, 2);
	test_append_range(wal, 1, 5, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 5);
	uint64_t records_before = wal_durable_records(wal);
	hold_completions(wal);
	test_append_range(wal, 6, 10, 1, MAX_LENGTH);
	pad_to_page_boundary(wal);
	submit(wal);
	test_append_range(wal, 11, 15, 1, MAX_LENGTH);
	submit(wal);
	CHECK(wal->batch_count == 2);
	uint64_t first = sequence_of(wal, 0), second = sequence_of(wal, 1);
	collect(wal, 4);
	deliver(wal, take(second, WAL_OPERATION_WRITE));
	deliver(wal, take(second, WAL_OPERATION_SYNC));
	deliver(wal, take(first, WAL_OPERATION_WRITE));
	struct held_completion sync = take(first, WAL_OPERATION_SYNC);
	sync.result = -EIO;
	CHECK(wal_writer_deliver(wal, sync.tag, sync.result) == -EIO);
	CHECK(strstr(wal->failure, "fdatasync") != NULL && strstr(wal->failure, dir) != NULL);
	CHECK(wal_durable_index(wal) == 5 && wal_durable_records(wal) == records_before);
	char err[256] = "";
	uint64_t durable = 0;
	CHECK(wal_reap(wal, &durable, err, sizeof err) == -EIO && durable == 5);
	CHECK(strcmp(err, wal->failure) == 0);
	wal->completion_filter = NULL;
	wal_close(wal);
	check_recovered(dir, 0, 5);
}

/* A truncation in a later batch caps what an earlier batch's completion reports: its entries above the
 * truncation left the log when it was appended. */
static void test_truncation_in_later_batch(void)
{
	const char *dir = test_temp_dir("pipeline-truncate");
	struct wal *wal = open_wal(dir, 0, 2);
	test_append_range(wal, 1, 5, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 5);
	hold_completions(wal);
	test_append_range(wal, 6, 10, 1, MAX_LENGTH);
	pad_to_page_boundary(wal);
	submit(wal);
	test_append_range(wal, 8, 9, 2, MAX_LENGTH); /* replaces 8..10: a truncation after 7 first */
	submit(wal);
	CHECK(wal->batch_count == 2 && wal_last_index(wal) == 9);
	uint64_t first = sequence_of(wal, 0), second = sequence_of(wal, 1);
	collect(wal, 4);
	deliver(wal, take(first, WAL_OPERATION_WRITE));
	deliver(wal, take(first, WAL_OPERATION_SYNC));
	CHECK(wal_durable_index(wal) == 7);
	deliver(wal, take(second, WAL_OPERATION_WRITE));
	deliver(wal, take(second, WAL_OPERATION_SYNC));
	CHECK(wal_durable_index(wal) == 9);
	wal->completion_filter = NULL;
	wal_close(wal);
	wal = open_wal(dir, 0, 0);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->entry_count == 9);
	for (size_t i = 0; i < 9; i++)
		CHECK(recovered->entries[i].term == (i < 7 ? 1u : 2u) && test_entry_matches(&recovered->entries[i],
				MAX_LENGTH));
	wal_close(wal);
}

/* Buffered: a batch that would start inside the page the batch in flight ends in waits for it. Its first
 * records would be copied into a page whose writeback may be under way, and a power cut could keep part of
 * a record there, which recovery must call corruption. */
static void test_buffered_batch_waits_inside_a_page(void)
{
	const char *dir = test_temp_dir("pipeline-page");
	struct wal *wal = open_wal(dir, 0, 2);
	test_append_range(wal, 1, 5, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 5);
	hold_completions(wal);
	test_append_range(wal, 6, 10, 1, MAX_LENGTH);
	if (wal->active->write_offset % wal->page_size == 0) {
		char err[256];
		CHECK_OK(wal_set_hard_state(wal, &(struct wal_hard_state){ 1, 1, 1 }, err, sizeof err), err);
	}
	submit(wal);
	test_append_range(wal, 11, 15, 1, MAX_LENGTH);
	submit(wal);
	CHECK(wal->batch_count == 1 && wal->pending.count == 1);
	uint64_t first = sequence_of(wal, 0);
	collect(wal, 2);
	deliver(wal, take(first, WAL_OPERATION_WRITE));
	CHECK(wal->batch_count == 1 && wal->pending.count == 1); /* its write done is not enough */
	wal->completion_filter = NULL;
	deliver(wal, take(first, WAL_OPERATION_SYNC));
	CHECK(wal_durable_index(wal) == 10);
	CHECK(wal->batch_count == 1 && wal->pending.count == 0);
	CHECK(test_sync(wal) == 15);
	wal_close(wal);
	check_recovered(dir, 0, 15);
}

/* Buffered, groups arriving apart: once a batch had to wait because the batch in flight ended inside a page,
 * it is padded to a page boundary when it starts (a hard state record with filler), and so is every batch
 * that starts next to one in flight: the next group's write then runs while the previous fdatasync does.
 * The log and the hard state read back unchanged; a batch alone is never padded. */
static void test_buffered_padding_lets_batches_overlap(void)
{
	const char *dir = test_temp_dir("pipeline-padding");
	struct wal *wal = open_wal(dir, 0, 2);
	char err[256];
	const struct wal_hard_state state = { 3, 2, 4 };
	CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
	test_append_range(wal, 1, 5, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 5);
	CHECK(wal->padding_bytes == 0); /* one batch at a time: nothing padded */
	hold_completions(wal);
	test_append_range(wal, 6, 10, 1, MAX_LENGTH);
	if (wal->active->write_offset % wal->page_size == 0)
		CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
	submit(wal);
	uint64_t first = sequence_of(wal, 0);
	test_append_range(wal, 11, 15, 1, MAX_LENGTH);
	submit(wal);
	CHECK(wal->batch_count == 1 && wal->pending.count == 1); /* waits: the first batch ends inside a page */
	collect(wal, 2);
	deliver(wal, take(first, WAL_OPERATION_WRITE));
	deliver(wal, take(first, WAL_OPERATION_SYNC));
	CHECK(wal_durable_index(wal) == 10);
	/* The waiting batch started, padded to the page boundary. */
	CHECK(wal->batch_count == 1 && wal->pending.count == 0);
	CHECK(wal->padding_bytes > 0 && wal->active->write_offset % wal->page_size == 0);
	uint64_t second = sequence_of(wal, 0);
	/* The next group starts at once, next to it, and is padded as well. */
	test_append_range(wal, 16, 20, 1, MAX_LENGTH);
	submit(wal);
	CHECK(wal->batch_count == 2 && wal->pending.count == 0);
	CHECK(wal->active->write_offset % wal->page_size == 0);
	uint64_t third = sequence_of(wal, 1);
	collect(wal, 4);
	deliver(wal, take(second, WAL_OPERATION_WRITE));
	deliver(wal, take(second, WAL_OPERATION_SYNC));
	deliver(wal, take(third, WAL_OPERATION_WRITE));
	deliver(wal, take(third, WAL_OPERATION_SYNC));
	CHECK(wal_durable_index(wal) == 20);
	wal->completion_filter = NULL;
	CHECK(wal_all_durable(wal));
	wal_close(wal);
	check_recovered(dir, 0, 20);
	wal = open_wal(dir, 0, 0);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->has_hard_state && recovered->hard_state.term == 3 && recovered->hard_state.vote == 2 &&
			recovered->hard_state.commit == 4);
	wal_close(wal);
}

/* Buffered, one client's pattern: an entry's batch in flight, then a hard state batch that waits for it and
 * that nothing joins while it is in flight. The first such wait is answered with padding; after that padded
 * batch went unjoined, the next waits are not (the padding would cost bytes and buy nothing). */
static void test_buffered_padding_backs_off(void)
{
	const char *dir = test_temp_dir("pipeline-backoff");
	struct wal *wal = open_wal(dir, 0, 2);
	char err[256];
	struct wal_hard_state state = { 1, 1, 0 };
	CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
	test_append_range(wal, 1, 5, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 5);
	uint64_t padded_first = 0;
	for (uint64_t round = 0; round < 4; round++) {
		test_append_range(wal, 6 + round, 6 + round, 1, MAX_LENGTH);
		if (wal->active->write_offset % wal->page_size == 0)
			CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
		submit(wal);
		state.commit = 6 + round;
		CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
		submit(wal);
		CHECK(wal->batch_count == 1 && wal->pending.count == 1); /* the hard state waits */
		CHECK(test_sync(wal) == 6 + round);
		if (round == 0) {
			padded_first = wal->padding_bytes;
			CHECK(padded_first > 0);
		} else {
			CHECK(wal->padding_bytes == padded_first);
		}
	}
	wal_close(wal);
	check_recovered(dir, 0, 9);
}

/* O_DIRECT: the next batch's first block rewrites the previous batch's last one, so it starts only once
 * that write completed, while the previous fdatasync may still run. */
static void test_direct_io_waits_for_previous_write(void)
{
	const char *dir = test_temp_dir("pipeline-direct");
	if (!test_direct_io_supported(dir))
		return;
	struct wal *wal = open_wal(dir, 1, 2);
	test_append_range(wal, 1, 5, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 5);
	hold_completions(wal);
	test_append_range(wal, 6, 10, 1, MAX_LENGTH);
	submit(wal);
	test_append_range(wal, 11, 15, 1, MAX_LENGTH);
	submit(wal);
	CHECK(wal->batch_count == 1 && wal->pending.count == 1);
	uint64_t first = sequence_of(wal, 0);
	collect(wal, 2);
	deliver(wal, take(first, WAL_OPERATION_WRITE));
	CHECK(wal->batch_count == 2 && wal->pending.count == 0); /* started behind the completed write */
	CHECK(wal_durable_index(wal) == 5);
	wal->completion_filter = NULL;
	deliver(wal, take(first, WAL_OPERATION_SYNC));
	CHECK(wal_durable_index(wal) == 10);
	CHECK(test_sync(wal) == 15);
	wal_close(wal);
	check_recovered(dir, 1, 15);
}

/* O_DIRECT writes carrying RWF_DSYNC: a batch's write is its sync (no fdatasync request), so the next
 * batch starts only once the previous one is durable, and never next to it. */
static void test_dsync_batches_one_at_a_time(void)
{
	const char *dir = test_temp_dir("pipeline-dsync");
	if (!test_direct_io_supported(dir))
		return;
	struct wal *wal = open_wal(dir, TEST_DIRECT_DSYNC, 2);
	test_append_range(wal, 1, 5, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 5);
	hold_completions(wal);
	test_append_range(wal, 6, 10, 1, MAX_LENGTH);
	submit(wal);
	uint64_t first = sequence_of(wal, 0);
	test_append_range(wal, 11, 15, 1, MAX_LENGTH);
	submit(wal);
	CHECK(wal->batch_count == 1 && wal->pending.count == 1);
	collect(wal, 1); /* the write alone */
	deliver(wal, take(first, WAL_OPERATION_WRITE));
	CHECK(wal_durable_index(wal) == 10); /* durable with its write */
	CHECK(wal->batch_count == 1 && wal->pending.count == 0);
	uint64_t second = sequence_of(wal, 0);
	collect(wal, 1);
	deliver(wal, take(second, WAL_OPERATION_WRITE));
	CHECK(wal_durable_index(wal) == 15);
	wal->completion_filter = NULL;
	CHECK(wal_all_durable(wal) && wal->padding_bytes == 0);
	wal_close(wal);
	check_recovered(dir, TEST_DIRECT_DSYNC, 15);
}

/* Records that roll into the next segment wait until everything before them is durable (a crash must not
 * leave data in a later segment behind a torn earlier one), and so does a batch behind the one that writes
 * a segment's header. */
static void test_roll_over_waits_for_the_pipeline(void)
{
	const char *dir = test_temp_dir("pipeline-roll");
	struct wal_options options;
	test_options(&options, 64 * 1024, 0);
	options.pipeline_depth = 3;
	struct wal *wal = NULL;
	char err[256];
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	uint64_t next = 1;
	struct wal_segment *first_segment = wal->active;
	/* Fill the first segment to within a few entries of its end. */
	while (first_segment->capacity - first_segment->write_offset > 4 * (MAX_LENGTH + 64)) {
		test_append_range(wal, next, next, 1, MAX_LENGTH);
		next++;
	}
	CHECK(test_sync(wal) == next - 1);
	hold_completions(wal);
	test_append_range(wal, next, next, 1, MAX_LENGTH);
	next++;
	pad_to_page_boundary(wal);
	submit(wal);
	CHECK(wal->batch_count == 1);
	while (wal->active == first_segment) {
		test_append_range(wal, next, next, 1, MAX_LENGTH);
		next++;
	}
	submit(wal);
	/* The rest of the first segment joined the pipeline; the next segment's records wait. */
	CHECK(wal->batch_count == 2 && wal->pending.count == 1 && wal->pending.items[0]->segment == wal->active);
	collect(wal, 4);
	uint64_t older = sequence_of(wal, 0), newer = sequence_of(wal, 1);
	deliver(wal, take(older, WAL_OPERATION_WRITE));
	deliver(wal, take(older, WAL_OPERATION_SYNC));
	CHECK(wal->batch_count == 1 && wal->pending.count == 1);
	deliver(wal, take(newer, WAL_OPERATION_WRITE));
	deliver(wal, take(newer, WAL_OPERATION_SYNC));
	/* Now it started: it writes the new segment's header. */
	CHECK(wal->batch_count == 1 && wal->pending.count == 0);
	CHECK(wal_writer_batch(wal, 0)->chunks.items[0]->records_offset == 0);
	test_append_range(wal, next, next, 1, MAX_LENGTH);
	next++;
	submit(wal);
	CHECK(wal->batch_count == 1 && wal->pending.count == 1);
	wal->completion_filter = NULL;
	CHECK(test_sync(wal) == next - 1);
	wal_close(wal);
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	CHECK(wal_recovered(wal)->entry_count == next - 1);
	wal_close(wal);
}

/* The bytes of lent entries on disk are exactly those of copied ones: same records, same checksums. */
static void test_lent_entries_write_the_same_bytes(void)
{
	const char *copied_dir = test_temp_dir("lent-copied");
	const char *lent_dir = test_temp_dir("lent-lent");
	struct wal *copied = open_wal(copied_dir, 0, 0);
	struct wal *lent = open_wal(lent_dir, 0, 0);
	static uint8_t data[300][2000];
	for (uint64_t index = 1; index <= 300; index++) {
		/* Lengths around the lending threshold and the varint boundaries. */
		size_t length = (size_t)(index * 7 % 2000) + 1;
		test_entry_fill(index, 3, data[index - 1], length);
		struct wal_entry entry = { .term = 3, .index = index, .type = (uint32_t)(index % 3),
			.data = data[index - 1], .data_length = length };
		char err[256];
		CHECK_OK(wal_append_entries(copied, &entry, 1, err, sizeof err), err);
		CHECK_OK(wal_append_entries_referenced(lent, &entry, 1, err, sizeof err), err);
		if (index % 50 == 0) {
			CHECK(test_sync(copied) == index && test_sync(lent) == index);
		}
	}
	CHECK(lent->segments[0]->write_offset == copied->segments[0]->write_offset);
	char copied_path[512], lent_path[512];
	snprintf(copied_path, sizeof copied_path, "%s/%s", copied_dir, copied->active->name);
	snprintf(lent_path, sizeof lent_path, "%s/%s", lent_dir, lent->active->name);
	size_t length = (size_t)copied->active->write_offset;
	wal_close(copied);
	wal_close(lent);
	FILE *a = fopen(copied_path, "rb"), *b = fopen(lent_path, "rb");
	CHECK(a != NULL && b != NULL);
	static uint8_t left[SEGMENT_SIZE], right[SEGMENT_SIZE];
	CHECK(length <= sizeof left && fread(left, 1, length, a) == length && fread(right, 1, length, b) == length);
	fclose(a);
	fclose(b);
	/* Sequence numbers match too: both wals were created the same way. */
	CHECK(memcmp(left, right, length) == 0);
}

int main(void)
{
	test_later_batch_completes_first();
	test_short_write_behind_completed_batch();
	test_failed_fdatasync_behind_completed_batch();
	test_truncation_in_later_batch();
	test_buffered_batch_waits_inside_a_page();
	test_buffered_padding_lets_batches_overlap();
	test_buffered_padding_backs_off();
	test_direct_io_waits_for_previous_write();
	test_dsync_batches_one_at_a_time();
	test_roll_over_waits_for_the_pipeline();
	test_lent_entries_write_the_same_bytes();
	printf("wal pipeline tests passed\n");
	return 0;
}
