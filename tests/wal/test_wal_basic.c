/* tests/wal/test_wal_basic.c: the wal's behaviour on a healthy disk: round trips through close and
 * recovery, group commit, durability reporting, hard state, segment roll-over and naming, truncation,
 * releasing segments below a snapshot, O_DIRECT mode, argument checks. */
#include "helpers.h"
#include "wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LENGTH 700
#define SMALL_SEGMENT (64u * 1024u)

static struct wal *open_wal(const char *dir, const struct wal_options *options)
{
	char err[256];
	struct wal *wal = NULL;
	CHECK_OK(wal_open(dir, options, &wal, err, sizeof err), err);
	return wal;
}

/* Checks the recovered log is exactly first..last, with term_of(index) terms and matching content. */
static void check_log(const struct wal_recovered *recovered, uint64_t first, uint64_t last,
		uint64_t (*term_of)(uint64_t index))
{
	CHECK(recovered->entry_count == (first <= last ? last - first + 1 : 0));
	for (size_t i = 0; i < recovered->entry_count; i++) {
		const struct wal_entry *entry = &recovered->entries[i];
		CHECK(entry->index == first + i);
		CHECK(entry->term == term_of(entry->index));
		CHECK(test_entry_matches(entry, MAX_LENGTH));
	}
}

static uint64_t term_one(uint64_t index)
{
	(void)index;
	return 1;
}

static unsigned count_files(const char *dir, const char *prefix, unsigned *closed)
{
	DIR *directory = opendir(dir);
	CHECK(directory != NULL);
	unsigned matching = 0;
	*closed = 0;
	struct dirent *item;
	while ((item = readdir(directory)) != NULL) {
		if (strncmp(item->d_name, prefix, strlen(prefix)) == 0)
			matching++;
		if (strlen(item->d_name) == 33 && item->d_name[16] == '-')
			(*closed)++;
	}
	closedir(directory);
	return matching;
}

static void test_round_trip(int direct_io)
{
	const char *dir = test_temp_dir("round-trip");
	if (direct_io && !test_direct_io_supported(dir))
		return;
	struct wal_options options;
	test_options(&options, 1024 * 1024, direct_io);
	struct wal *wal = open_wal(dir, &options);
	CHECK(wal_recovered(wal)->entry_count == 0);
	CHECK(!wal_recovered(wal)->has_hard_state);
	char err[256];
	struct wal_hard_state state = { .term = 3, .vote = 2, .commit = 0 };
	CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
	test_append_range(wal, 1, 500, 1, MAX_LENGTH);
	/* Nothing is durable before a write+fdatasync completed. */
	CHECK(wal_durable_index(wal) == 0);
	CHECK_OK(wal_submit(wal, err, sizeof err), err);
	CHECK(wal_durable_index(wal) == 0);
	CHECK(test_sync(wal) == 500);
	/* Several batches, each one rewriting the partial O_DIRECT block of the previous one. */
	for (uint64_t first = 501; first <= 1000; first += 50) {
		test_append_range(wal, first, first + 49, 1, MAX_LENGTH);
		CHECK(test_sync(wal) == first + 49);
	}
	state.commit = 900;
	CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
	/* The hard state's durability is visible through the record counters. */
	uint64_t hard_state_record = wal_appended_records(wal);
	CHECK(wal_durable_records(wal) < hard_state_record);
	test_sync(wal);
	CHECK(wal_durable_records(wal) == hard_state_record);
	wal_close(wal);

	wal = open_wal(dir, &options);
	const struct wal_recovered *recovered = wal_recovered(wal);
	check_log(recovered, 1, 1000, term_one);
	CHECK(recovered->has_hard_state);
	CHECK(recovered->hard_state.term == 3 && recovered->hard_state.vote == 2 && recovered->hard_state.commit == 900);
	CHECK(!recovered->info.torn_tail && recovered->info.truncated_bytes == 0);
	CHECK(wal_last_index(wal) == 1000 && wal_durable_index(wal) == 1000);
	/* Appends continue where recovery ended. */
	test_append_range(wal, 1001, 1100, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 1100);
	wal_close(wal);

	/* The other mode reads the same files. */
	options.direct_io = !direct_io;
	wal = open_wal(dir, &options);
	check_log(wal_recovered(wal), 1, 1100, term_one);
	wal_close(wal);
}

/* With one chain at a time, the classic group commit: everything appended while it is in flight leaves
 * together in the next one. */
static void test_group_commit(void)
{
	const char *dir = test_temp_dir("group");
	struct wal_options options;
	test_options(&options, 4 * 1024 * 1024, 0);
	options.pipeline_depth = 1;
	struct wal *wal = open_wal(dir, &options);
	char err[256];
	test_append_range(wal, 1, 1, 1, MAX_LENGTH);
	CHECK_OK(wal_submit(wal, err, sizeof err), err);
	/* While the first batch is in flight, 100 appends each ask to submit: they must wait and then
	 * leave together in one write+fdatasync. */
	for (uint64_t index = 2; index <= 101; index++) {
		test_append_range(wal, index, index, 1, MAX_LENGTH);
		CHECK_OK(wal_submit(wal, err, sizeof err), err);
	}
	uint64_t durable = 0;
	CHECK_OK(wal_wait(wal, &durable, err, sizeof err), err);
	CHECK(durable == 1);               /* the first batch covered only entry 1 */
	CHECK(wal_sync_count(wal) == 1);
	CHECK(!wal_all_durable(wal));      /* and the second was started by wal_wait */
	CHECK_OK(wal_wait(wal, &durable, err, sizeof err), err);
	CHECK(durable == 101);
	CHECK(wal_sync_count(wal) == 2);   /* one fdatasync for 100 appends */
	CHECK(wal_all_durable(wal));
	/* wal_reap never blocks and reports the same index when idle. */
	CHECK_OK(wal_reap(wal, &durable, err, sizeof err), err);
	CHECK(durable == 101);

	/* The epoll way: the event fd turns readable when the batch completed, then wal_reap collects it. */
	test_append_range(wal, 102, 110, 1, MAX_LENGTH);
	CHECK_OK(wal_submit(wal, err, sizeof err), err);
	struct pollfd waiting = { .fd = wal_event_fd(wal), .events = POLLIN };
	while (!wal_all_durable(wal)) {
		CHECK(poll(&waiting, 1, 10000) == 1);
		CHECK_OK(wal_reap(wal, &durable, err, sizeof err), err);
	}
	CHECK(durable == 110);
	/* The event fd is drained before completions are read, so a wakeup may be spurious but never
	 * lost; a spurious one finds nothing new. */
	CHECK_OK(wal_reap(wal, &durable, err, sizeof err), err);
	CHECK(durable == 110 && wal_sync_count(wal) == 3);
	wal_close(wal);
}

static void test_roll_over(int direct_io)
{
	const char *dir = test_temp_dir("roll");
	if (direct_io && !test_direct_io_supported(dir))
		return;
	struct wal_options options;
	test_options(&options, SMALL_SEGMENT, direct_io);
	struct wal *wal = open_wal(dir, &options);
	char err[256];
	struct wal_hard_state state = { .term = 7, .vote = 1, .commit = 5 };
	CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
	/* ~350 KB of entries in batches of varying size over 64 KiB segments: several roll-overs,
	 * including batches that span two segments. */
	uint64_t next = 1;
	for (unsigned batch = 1; next <= 1000; batch = batch * 3 % 97 + 1) {
		uint64_t last = next + batch - 1 > 1000 ? 1000 : next + batch - 1;
		test_append_range(wal, next, last, 1, MAX_LENGTH);
		CHECK(test_sync(wal) == last);
		next = last + 1;
	}
	unsigned closed;
	unsigned open_segments = count_files(dir, "open-", &closed);
	CHECK(closed >= 4);
	/* The active segment and one prepared ahead. */
	CHECK(open_segments == 2);
	CHECK(wal_sync_count(wal) > 0);
	/* White box: the segment prepared ahead, which reopening must take back rather than recreate. */
	char prepared[600];
	int written = snprintf(prepared, sizeof prepared, "%s/%s", dir, wal->segments[wal->segment_count - 1]->name);
	CHECK(written > 0 && (size_t)written < sizeof prepared);
	struct stat before;
	CHECK(stat(prepared, &before) == 0);
	wal_close(wal);

	wal = open_wal(dir, &options);
	const struct wal_recovered *recovered = wal_recovered(wal);
	check_log(recovered, 1, 1000, term_one);
	CHECK(recovered->info.segments == closed + 1);
	struct stat after;
	CHECK(stat(prepared, &after) == 0 && after.st_ino == before.st_ino);
	CHECK(count_files(dir, "open-", &closed) == 2);
	CHECK(recovered->hard_state.term == 7 && recovered->hard_state.commit == 5);
	wal_close(wal);
}

static uint64_t term_after_truncate(uint64_t index)
{
	return index <= 60 ? 1 : 2;
}

static void test_truncate(void)
{
	const char *dir = test_temp_dir("truncate");
	struct wal_options options;
	test_options(&options, SMALL_SEGMENT, 0);
	struct wal *wal = open_wal(dir, &options);
	char err[256];
	test_append_range(wal, 1, 100, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 100);
	CHECK_OK(wal_truncate_after(wal, 60, err, sizeof err), err);
	/* Entries above 60 left the log, so the durable index drops at once. */
	CHECK(wal_durable_index(wal) == 60 && wal_last_index(wal) == 60);
	test_append_range(wal, 61, 80, 2, MAX_LENGTH);
	CHECK(test_sync(wal) == 80);
	wal_close(wal);

	wal = open_wal(dir, &options);
	check_log(wal_recovered(wal), 1, 80, term_after_truncate);
	/* A truncation with nothing after it is honoured too. */
	CHECK_OK(wal_truncate_after(wal, 70, err, sizeof err), err);
	test_sync(wal);
	wal_close(wal);
	wal = open_wal(dir, &options);
	check_log(wal_recovered(wal), 1, 70, term_after_truncate);
	/* Appending at an index already in the log replaces the suffix (a follower's conflict). */
	test_append_range(wal, 61, 61, 2, MAX_LENGTH);
	test_append_range(wal, 62, 90, 2, MAX_LENGTH);
	CHECK(test_sync(wal) == 90);
	wal_close(wal);
	wal = open_wal(dir, &options);
	check_log(wal_recovered(wal), 1, 90, term_after_truncate);
	CHECK(wal_last_index(wal) == 90);
	wal_close(wal);
}

static void test_release(void)
{
	const char *dir = test_temp_dir("release");
	struct wal_options options;
	test_options(&options, SMALL_SEGMENT, 0);
	struct wal *wal = open_wal(dir, &options);
	char err[256];
	struct wal_hard_state state = { .term = 4, .vote = 3, .commit = 1 };
	CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
	for (uint64_t first = 1; first <= 2000; first += 100) {
		test_append_range(wal, first, first + 99, 4, MAX_LENGTH);
		test_sync(wal);
	}
	unsigned closed_before;
	count_files(dir, "open-", &closed_before);
	CHECK(closed_before >= 8);
	/* Without a durable snapshot marker nothing may be released. */
	CHECK(wal_release_before(wal, 1500, err, sizeof err) == -EINVAL);
	struct wal_snapshot_marker marker = { .index = 1500, .term = 4 };
	CHECK_OK(wal_save_snapshot(wal, &marker, err, sizeof err), err);
	CHECK(wal_release_before(wal, 1500, err, sizeof err) == -EINVAL); /* not durable yet */
	test_sync(wal);
	CHECK(wal_release_before(wal, 1600, err, sizeof err) == -EINVAL); /* beyond the snapshot */
	CHECK_OK(wal_release_before(wal, 1500, err, sizeof err), err);
	unsigned closed_after;
	count_files(dir, "open-", &closed_after);
	CHECK(closed_after < closed_before);
	CHECK(closed_after >= 1);
	wal_close(wal);

	wal = open_wal(dir, &options);
	const struct wal_recovered *recovered = wal_recovered(wal);
	/* The hard state was written once, in a released segment: it survives because every segment
	 * starts with the current hard state and snapshot marker. */
	CHECK(recovered->has_hard_state && recovered->hard_state.term == 4 && recovered->hard_state.vote == 3);
	CHECK(recovered->has_snapshot && recovered->snapshot.index == 1500);
	CHECK(recovered->entry_count == 500);
	CHECK(recovered->entries[0].index == 1501);
	for (size_t i = 0; i < recovered->entry_count; i++)
		CHECK(test_entry_matches(&recovered->entries[i], MAX_LENGTH));
	/* Entries at or below the snapshot cannot be appended again. */
	test_append_range(wal, 2001, 2001, 4, MAX_LENGTH);
	struct wal_entry old = { .term = 4, .index = 1400, .data = (const uint8_t *)"x", .data_length = 1 };
	CHECK(wal_append_entries(wal, &old, 1, err, sizeof err) == -EINVAL);
	wal_close(wal);
}

/* The marker's metadata (the owner's Raft configuration) is written again at the start of every
 * segment, so releasing the segment that first held it loses nothing; release_keeping deletes only
 * while more than the kept number of segment files remain, oldest first. */
static void test_marker_metadata_and_keeping(void)
{
	const char *dir = test_temp_dir("metadata");
	struct wal_options options;
	test_options(&options, SMALL_SEGMENT, 0);
	struct wal *wal = open_wal(dir, &options);
	char err[256];
	test_append_range(wal, 1, 100, 2, MAX_LENGTH);
	static const uint8_t first[] = "conf at 100";
	struct wal_snapshot_marker marker = { .index = 100, .term = 2, .metadata = first,
		.metadata_length = sizeof first };
	CHECK_OK(wal_save_snapshot(wal, &marker, err, sizeof err), err);
	static uint8_t too_long[WAL_SNAPSHOT_METADATA_MAX + 1];
	struct wal_snapshot_marker oversized = { .index = 100, .term = 2, .metadata = too_long,
		.metadata_length = sizeof too_long };
	CHECK(wal_save_snapshot(wal, &oversized, err, sizeof err) == -E2BIG);
	for (uint64_t from = 101; from <= 2000; from += 100) {
		test_append_range(wal, from, from + 99, 2, MAX_LENGTH);
		test_sync(wal);
	}
	size_t files = wal_segment_files(wal);
	CHECK(files >= 10);
	static const uint8_t second[] = "conf at 1800, longer than the first one";
	marker = (struct wal_snapshot_marker){ .index = 1800, .term = 2, .metadata = second,
		.metadata_length = sizeof second };
	CHECK_OK(wal_save_snapshot(wal, &marker, err, sizeof err), err);
	test_sync(wal);
	CHECK_OK(wal_release_keeping(wal, 1800, files - 2, err, sizeof err), err);
	CHECK(wal_segment_files(wal) == files - 2);
	CHECK_OK(wal_release_keeping(wal, 1800, 3, err, sizeof err), err);
	size_t kept = wal_segment_files(wal);
	/* Three files, unless fewer than three segments hold entries above 1800 alone. */
	CHECK(kept >= 2 && kept <= 3);
	/* Rolling on starts new segments with the marker (and its metadata) at their head. */
	for (uint64_t from = 2001; from <= 3000; from += 100) {
		test_append_range(wal, from, from + 99, 2, MAX_LENGTH);
		test_sync(wal);
	}
	CHECK_OK(wal_release_keeping(wal, 1800, 1, err, sizeof err), err);
	wal_close(wal);

	wal = open_wal(dir, &options);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->has_snapshot && recovered->snapshot.index == 1800 && recovered->snapshot.term == 2);
	CHECK(recovered->snapshot.metadata_length == sizeof second);
	CHECK(recovered->snapshot.metadata != NULL &&
	      memcmp(recovered->snapshot.metadata, second, sizeof second) == 0);
	CHECK(recovered->entry_count > 0 && recovered->entries[recovered->entry_count - 1].index == 3000);
	for (size_t i = 0; i < recovered->entry_count; i++)
		CHECK(recovered->entries[i].index > 1800 && test_entry_matches(&recovered->entries[i], MAX_LENGTH));
	wal_recovered_release(wal);
	CHECK(wal_recovered(wal)->snapshot.metadata == NULL);
	wal_close(wal);
}

/* wal_release_keeping in two halves: the detach takes segments out of the WAL and names them, their files
 * stay until the removal (done on another thread by the node), the WAL goes on meanwhile, and a reopen
 * before the removal recovers the same log (as after a crash before the release). */
static void test_release_detach_then_remove(void)
{
	const char *dir = test_temp_dir("detach");
	struct wal_options options;
	test_options(&options, SMALL_SEGMENT, 0);
	struct wal *wal = open_wal(dir, &options);
	char err[256];
	for (uint64_t from = 1; from <= 1000; from += 100) {
		test_append_range(wal, from, from + 99, 2, MAX_LENGTH);
		test_sync(wal);
	}
	struct wal_snapshot_marker marker = { .index = 900, .term = 2 };
	CHECK_OK(wal_save_snapshot(wal, &marker, err, sizeof err), err);
	test_sync(wal);
	size_t files = wal_segment_files(wal);
	struct wal_released released;
	CHECK_OK(wal_release_detach(wal, 900, 2, &released, err, sizeof err), err);
	CHECK(released.count > 0 && released.count == files - wal_segment_files(wal));
	char path[512];
	for (size_t i = 0; i < released.count; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, released.names[i]);
		CHECK(access(path, F_OK) == 0);
	}
	test_append_range(wal, 1001, 1100, 2, MAX_LENGTH);
	test_sync(wal);
	char first_name[256];
	snprintf(first_name, sizeof first_name, "%s", released.names[0]);
	CHECK_OK(wal_released_remove(&released, err, sizeof err), err);
	CHECK(released.count == 0 && released.names == NULL && released.dir_fd < 0);
	snprintf(path, sizeof path, "%s/%s", dir, first_name);
	CHECK(access(path, F_OK) != 0 && errno == ENOENT);
	wal_close(wal);

	wal = open_wal(dir, &options);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->has_snapshot && recovered->snapshot.index == 900);
	CHECK(recovered->entry_count > 0 && recovered->entries[recovered->entry_count - 1].index == 1100);
	for (size_t i = 0; i < recovered->entry_count; i++)
		CHECK(test_entry_matches(&recovered->entries[i], MAX_LENGTH));
	wal_close(wal);
}

static void test_snapshot_beyond_log(void)
{
	const char *dir = test_temp_dir("snapshot");
	struct wal_options options;
	test_options(&options, SMALL_SEGMENT, 0);
	struct wal *wal = open_wal(dir, &options);
	char err[256];
	test_append_range(wal, 1, 10, 1, MAX_LENGTH);
	/* A follower installing a snapshot ahead of its log: the log restarts after it. */
	struct wal_snapshot_marker marker = { .index = 50, .term = 3 };
	CHECK_OK(wal_save_snapshot(wal, &marker, err, sizeof err), err);
	CHECK(wal_last_index(wal) == 50);
	test_append_range(wal, 51, 60, 3, MAX_LENGTH);
	CHECK(test_sync(wal) == 60);
	wal_close(wal);
	wal = open_wal(dir, &options);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->entry_count == 10 && recovered->entries[0].index == 51);
	CHECK(recovered->snapshot.index == 50 && recovered->snapshot.term == 3);
	wal_close(wal);
}

/* White box: a snapshot marker that itself starts a new segment, which then holds no entries and is
 * closed. Its name (the empty range after the last index before it) must be what recovery computes. */
static void test_snapshot_starts_entryless_segment(void)
{
	const char *dir = test_temp_dir("snapshot-roll");
	struct wal_options options;
	test_options(&options, 16 * 1024, 0);
	struct wal *wal = NULL;
	char err[256];
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	test_append_range(wal, 1, 5, 1, MAX_LENGTH);
	struct wal_hard_state state = { 1, 1, 1 };
	/* Hard state records of 15 bytes until less than that is left... */
	while (wal->active->capacity - wal->active->write_offset >= 15)
		CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
	/* ...so this 23-byte marker moves to the next segment. */
	struct wal_segment *before = wal->active;
	struct wal_snapshot_marker marker = { .index = 1ull << 40, .term = 1ull << 40 };
	CHECK_OK(wal_save_snapshot(wal, &marker, err, sizeof err), err);
	CHECK(wal->active != before);
	struct wal_segment *entryless = wal->active;
	while (wal->active == entryless)
		CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
	CHECK(test_sync(wal) == marker.index);
	CHECK(entryless->fd < 0); /* closed and renamed */
	wal_close(wal);
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	CHECK(wal_recovered(wal)->snapshot.index == marker.index);
	CHECK(wal_recovered(wal)->entry_count == 0);
	CHECK(wal_last_index(wal) == marker.index);
	wal_close(wal);
}

/* A ring of 8 entries takes two segments per chain: a large batch over small segments is split into
 * several chains, each reported durable as it completes. */
static void test_batch_split_over_chains(void)
{
	const char *dir = test_temp_dir("split");
	struct wal_options options;
	test_options(&options, SMALL_SEGMENT, 0);
	options.ring_entries = 8;
	struct wal *wal = open_wal(dir, &options);
	char err[256];
	test_append_range(wal, 1, 1500, 1, MAX_LENGTH);
	CHECK(wal->pending.count >= 5); /* ~560 KB over 64 KiB segments */
	CHECK_OK(wal_submit(wal, err, sizeof err), err);
	/* White box: only two segments' chunks went into the first chain. */
	CHECK(wal->batch_count == 1 && wal_writer_chunks_in_flight(wal) == 2 && wal->pending.count >= 3);
	uint64_t durable = 0, previous = 0;
	while (!wal_all_durable(wal)) {
		CHECK_OK(wal_wait(wal, &durable, err, sizeof err), err);
		CHECK(durable >= previous && durable <= 1500);
		previous = durable;
	}
	CHECK(durable == 1500);
	wal_close(wal);
	wal = open_wal(dir, &options);
	check_log(wal_recovered(wal), 1, 1500, term_one);
	wal_close(wal);
}

/* White box: the segment after the next is prepared through io_uring after a batch; records that roll
 * into it before its preparation completed wait in memory, and are written once it has. */
static void test_records_wait_for_segment_in_preparation(void)
{
	const char *dir = test_temp_dir("preparing");
	struct wal_options options;
	test_options(&options, 16 * 1024, 0);
	struct wal *wal = open_wal(dir, &options);
	char err[256];
	/* Fill the first segment and roll into the one prepared at open. */
	uint64_t next = 1;
	struct wal_segment *first = wal->active;
	while (wal->active == first) {
		test_append_range(wal, next, next, 1, MAX_LENGTH);
		next++;
	}
	CHECK(test_sync(wal) == next - 1);
	/* That batch's completion started preparing the segment after the active one. wal_wait only
	 * peeks after the batch, so the preparation is still running unless the disk synced within
	 * microseconds. */
	if (wal->preparing == NULL) {
		printf("  the next segment was prepared before it could be observed; case skipped\n");
		CHECK(wal->segments[wal->segment_count - 1]->ready);
		wal_close(wal);
		return;
	}
	CHECK(!wal->preparing->ready);
	struct wal_segment *preparing = wal->preparing;
	while (wal->active != preparing) {
		test_append_range(wal, next, next, 1, MAX_LENGTH);
		next++;
	}
	CHECK_OK(wal_submit(wal, err, sizeof err), err);
	/* Completions were not processed yet, so the segment is not ready: only the first chunk left. */
	CHECK(wal_writer_chunks_in_flight(wal) == 1 && wal->pending.count == 1);
	CHECK(wal->pending.items[0]->segment == preparing);
	uint64_t durable = 0;
	while (!wal_all_durable(wal))
		CHECK_OK(wal_wait(wal, &durable, err, sizeof err), err);
	CHECK(preparing->ready && durable == next - 1);
	wal_close(wal);
	wal = open_wal(dir, &options);
	check_log(wal_recovered(wal), 1, next - 1, term_one);
	wal_close(wal);
}

/* Counts the bytes of path's extents the file system marks unwritten (preallocated, reading as zero);
 * -1 when it cannot tell (no FIEMAP, as on tmpfs). */
static long long unwritten_bytes(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	enum { EXTENTS = 64 };
	static union {
		struct fiemap map;
		char room[sizeof(struct fiemap) + EXTENTS * sizeof(struct fiemap_extent)];
	} query;
	memset(&query, 0, sizeof query);
	query.map.fm_length = FIEMAP_MAX_OFFSET;
	query.map.fm_flags = FIEMAP_FLAG_SYNC;
	query.map.fm_extent_count = EXTENTS;
	int rc = ioctl(fd, FS_IOC_FIEMAP, &query.map);
	close(fd);
	if (rc != 0)
		return -1;
	CHECK(query.map.fm_mapped_extents < EXTENTS);
	long long unwritten = 0;
	for (unsigned i = 0; i < query.map.fm_mapped_extents; i++)
		if (query.map.fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN)
			unwritten += (long long)query.map.fm_extents[i].fe_length;
	return unwritten;
}

/* White box: with zero_segments, the segment prepared ahead is zero-filled while the active one fills up,
 * and is done (every block written, so appends overwrite) once the active one is 80% full; without it its
 * extents stay unwritten. Either way the log reads back the same. */
static void test_zero_segments(bool zero)
{
	const char *dir = test_temp_dir("zero");
	struct wal_options options;
	test_options(&options, SMALL_SEGMENT, 0);
	options.zero_segments = zero;
	struct wal *wal = open_wal(dir, &options);
	char err[256];
	struct wal_segment *next_segment = wal->segments[wal->segment_count - 1];
	CHECK(next_segment != wal->active && next_segment->ready);
	uint64_t next = 1;
	while (wal->active->write_offset < SMALL_SEGMENT * 9 / 10) {
		test_append_range(wal, next, next, 1, MAX_LENGTH);
		next++;
		if (next % 8 == 0)
			test_sync(wal);
	}
	CHECK(wal->active != next_segment);
	CHECK(test_sync(wal) == next - 1);
	/* The filling goes on by itself from one completion to the next. */
	while (wal->zero_operations > 0) {
		struct pollfd waiting = { .fd = wal_event_fd(wal), .events = POLLIN };
		CHECK(poll(&waiting, 1, 10000) == 1);
		CHECK_OK(wal_reap(wal, NULL, err, sizeof err), err);
	}
	CHECK(next_segment->zero_filled == zero);
	char path[600];
	int written = snprintf(path, sizeof path, "%s/%s", dir, next_segment->name);
	CHECK(written > 0 && (size_t)written < sizeof path);
	long long unwritten = unwritten_bytes(path);
	if (unwritten < 0) {
		printf("  %s cannot report extents: zero_segments=%d case skipped\n", dir, zero);
	} else if (zero) {
		CHECK(unwritten == 0);
	} else {
		CHECK(unwritten > 0);
	}
	/* Fill into it too: the log reads back the same either way. */
	while (wal->active != next_segment || wal->active->write_offset < SMALL_SEGMENT / 2) {
		test_append_range(wal, next, next, 1, MAX_LENGTH);
		next++;
	}
	CHECK(test_sync(wal) == next - 1);
	wal_close(wal);
	wal = open_wal(dir, &options);
	check_log(wal_recovered(wal), 1, next - 1, term_one);
	wal_close(wal);
}

static void settle_zero_fill(struct wal *wal)
{
	char err[256];
	while (wal->zero_operations > 0) {
		struct pollfd waiting = { .fd = wal_event_fd(wal), .events = POLLIN };
		CHECK(poll(&waiting, 1, 10000) == 1);
		CHECK_OK(wal_reap(wal, NULL, err, sizeof err), err);
	}
}

/* White box: zero-filling keeps pace with the active segment while batches are small, and pauses while
 * they are large (where writing the zeros costs more than it saves). */
static void test_zero_fill_follows_batch_size(void)
{
	const uint64_t segment_size = 8u * 1024 * 1024;
	for (int large = 0; large <= 1; large++) {
		const char *dir = test_temp_dir(large ? "zero-large" : "zero-small");
		struct wal_options options;
		test_options(&options, segment_size, 0);
		struct wal *wal = open_wal(dir, &options);
		struct wal_segment *next_segment = wal->segments[wal->segment_count - 1];
		/* Batches of about 100 entries of 1..1000 bytes (~50 KiB), or of 8 (~4 KiB). */
		unsigned per_batch = large ? 100 : 8;
		uint64_t next = 1;
		while (wal->active->write_offset < segment_size * 85 / 100) {
			test_append_range(wal, next, next + per_batch - 1, 1, 1000);
			next += per_batch;
			CHECK(test_sync(wal) == next - 1);
		}
		settle_zero_fill(wal);
		if (large) {
			CHECK(wal->average_batch_bytes > 32 * 1024);
			CHECK(!next_segment->zero_filled && next_segment->zeroed < segment_size / 2);
		} else {
			CHECK(wal->average_batch_bytes < 32 * 1024);
			CHECK(next_segment->zero_filled && next_segment->zeroed == segment_size);
		}
		wal_close(wal);
	}
}

static void test_argument_checks(void)
{
	const char *dir = test_temp_dir("arguments");
	struct wal_options options;
	test_options(&options, 5000, 0);
	struct wal *wal = NULL;
	char err[256] = "";
	CHECK(wal_open(dir, &options, &wal, err, sizeof err) == -EINVAL);
	CHECK(strstr(err, dir) != NULL && strstr(err, "segment size") != NULL);
	test_options(&options, SMALL_SEGMENT, 0);
	wal = open_wal(dir, &options);
	/* A second owner is refused while the first holds the log. */
	struct wal *second = NULL;
	CHECK(wal_open(dir, &options, &second, err, sizeof err) == -EWOULDBLOCK);
	CHECK(strstr(err, "lock") != NULL);
	test_append_range(wal, 1, 5, 1, MAX_LENGTH);
	struct wal_entry gap = { .term = 1, .index = 9, .data = (const uint8_t *)"x", .data_length = 1 };
	CHECK(wal_append_entries(wal, &gap, 1, err, sizeof err) == -EINVAL);
	CHECK(strstr(err, "does not follow") != NULL);
	static uint8_t huge[SMALL_SEGMENT];
	struct wal_entry big = { .term = 1, .index = 6, .data = huge, .data_length = sizeof huge };
	CHECK(wal_append_entries(wal, &big, 1, err, sizeof err) == -E2BIG);
	/* Rejected calls leave the wal usable. */
	CHECK(test_sync(wal) == 5);
	wal_close(wal);
}

int main(void)
{
	test_round_trip(0);
	test_round_trip(1);
	test_round_trip(2);
	test_group_commit();
	test_roll_over(0);
	test_roll_over(1);
	test_roll_over(2);
	test_truncate();
	test_release();
	test_marker_metadata_and_keeping();
	test_release_detach_then_remove();
	test_snapshot_beyond_log();
	test_snapshot_starts_entryless_segment();
	test_batch_split_over_chains();
	test_records_wait_for_segment_in_preparation();
	test_zero_segments(true);
	test_zero_segments(false);
	test_zero_fill_follows_batch_size();
	test_argument_checks();
	printf("wal basic tests passed\n");
	return 0;
}
