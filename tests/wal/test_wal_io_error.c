/* tests/wal/test_wal_io_error.c: writes the kernel cuts short, and a write that fails. RLIMIT_FSIZE
 * below the end of a batch makes the kernel write only up to the limit (a short write, which breaks the
 * link: the fdatasync behind it completes with -ECANCELED) and refuse the rest with EFBIG. With the limit
 * lifted before completions are processed, the wal resumes the write and the batch becomes durable;
 * with the limit kept, the wal fails: the error names the file and offset, every later call reports it,
 * the durable index stays where it was, and reopening finds exactly the acknowledged entries. */
#include "helpers.h"
#include "wal_internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_LENGTH 900
#define SEGMENT_SIZE (1024u * 1024u)

static void limit_file_size(rlim_t limit)
{
	struct rlimit value = { .rlim_cur = limit, .rlim_max = RLIM_INFINITY };
	CHECK(setrlimit(RLIMIT_FSIZE, &value) == 0);
}

static struct wal *open_wal(const char *dir, int direct_io)
{
	struct wal_options options;
	test_options(&options, SEGMENT_SIZE, direct_io);
	struct wal *wal = NULL;
	char err[512];
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	return wal;
}

/* Waits (on the event fd) until no zero-filling request of the segment prepared ahead is in flight, so the
 * next completion on the ring is the batch's own. */
static void settle_zero_fill(struct wal *wal)
{
	char err[512];
	while (wal->zero_operations > 0) {
		struct pollfd waiting = { .fd = wal_event_fd(wal), .events = POLLIN };
		CHECK(poll(&waiting, 1, 10000) == 1);
		CHECK_OK(wal_reap(wal, NULL, err, sizeof err), err);
	}
}

static void test_short_write_resumed(void)
{
	const char *dir = test_temp_dir("short-write");
	struct wal *wal = open_wal(dir, 0);
	test_append_range(wal, 1, 100, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 100);
	settle_zero_fill(wal);
	/* A 1 MiB segment is zero-filled at once: nothing more comes until the active one is full. */
	CHECK(wal->segments[wal->segment_count - 1]->zero_filled);
	limit_file_size(wal->active->write_offset + 3000);
	test_append_range(wal, 101, 150, 1, MAX_LENGTH);
	char err[512];
	CHECK_OK(wal_submit(wal, err, sizeof err), err);
	/* White box: wait on the wal's ring, without consuming, for the write's completion, so the limit
	 * is lifted only after the kernel cut the write short. */
	struct io_uring_cqe *cqe;
	CHECK(io_uring_wait_cqe(&wal->ring, &cqe) == 0);
	CHECK(cqe->res > 0 && cqe->res < 50 * MAX_LENGTH);
	limit_file_size(RLIM_INFINITY);
	uint64_t durable = 0;
	while (!wal_all_durable(wal))
		CHECK_OK(wal_wait(wal, &durable, err, sizeof err), err);
	CHECK(durable == 150);
	CHECK(wal->short_writes == 1);
	wal_close(wal);
	wal = open_wal(dir, 0);
	CHECK(wal_recovered(wal)->entry_count == 150);
	for (size_t i = 0; i < 150; i++)
		CHECK(test_entry_matches(&wal_recovered(wal)->entries[i], MAX_LENGTH));
	CHECK(!wal_recovered(wal)->info.torn_tail);
	wal_close(wal);
}

static void test_write_error_fails_the_wal(int direct_io)
{
	const char *dir = test_temp_dir("write-error");
	if (direct_io && !test_direct_io_supported(dir))
		return;
	struct wal *wal = open_wal(dir, direct_io);
	test_append_range(wal, 1, 100, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 100);
	uint64_t limit = direct_io ? (wal->active->write_offset / 4096 + 2) * 4096 : wal->active->write_offset + 3000;
	limit_file_size(limit);
	test_append_range(wal, 101, 150, 1, MAX_LENGTH);
	char err[512] = "";
	int rc = wal_submit(wal, err, sizeof err);
	uint64_t durable = 0;
	while (rc == 0 && !wal_all_durable(wal))
		rc = wal_wait(wal, &durable, err, sizeof err);
	printf("  %s: %s\n", test_write_mode_name(direct_io), err);
	CHECK(rc == -EFBIG);
	CHECK(strstr(err, dir) != NULL && strstr(err, "write at offset") != NULL);
	CHECK(wal_durable_index(wal) == 100);
	/* Failed for good: the same error from every later call. */
	char again[512] = "";
	CHECK(wal_set_hard_state(wal, &(struct wal_hard_state){ 1, 1, 1 }, again, sizeof again) == -EFBIG);
	CHECK(strcmp(again, err) == 0);
	CHECK(wal_reap(wal, &durable, again, sizeof again) == -EFBIG && durable == 100);
	limit_file_size(RLIM_INFINITY);
	struct wal_entry entry = { .term = 1, .index = 151, .data = (const uint8_t *)"x", .data_length = 1 };
	CHECK(wal_append_entries(wal, &entry, 1, again, sizeof again) == -EFBIG);
	wal_close(wal);

	/* The cut write was scrubbed: recovery sees a clean end right after the acknowledged entries. */
	wal = open_wal(dir, direct_io);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->entry_count == 100);
	for (size_t i = 0; i < recovered->entry_count; i++)
		CHECK(test_entry_matches(&recovered->entries[i], MAX_LENGTH));
	CHECK(!recovered->info.torn_tail);
	test_append_range(wal, 101, 120, 2, MAX_LENGTH);
	CHECK(test_sync(wal) == 120);
	wal_close(wal);
}

/* A piece of zeros cut short (RLIMIT_FSIZE halfway into the segment prepared ahead) ends zero-filling
 * without failing the wal; appends later go into that segment and read back whole. */
static void test_zero_fill_cut_short(void)
{
	const char *dir = test_temp_dir("zero-short");
	struct wal *wal = open_wal(dir, 0);
	struct wal_segment *next_segment = wal->segments[wal->segment_count - 1];
	CHECK(next_segment != wal->active && next_segment->zeroed == 0);
	limit_file_size(SEGMENT_SIZE / 2);
	test_append_range(wal, 1, 20, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 20);
	settle_zero_fill(wal);
	limit_file_size(RLIM_INFINITY);
	/* Stopped, not failed: nothing counted as zeroed, and the wal goes on. */
	CHECK(next_segment->zero_filled && next_segment->zeroed == 0);
	uint64_t next = 21;
	while (wal->active != next_segment || wal->active->write_offset < SEGMENT_SIZE / 2) {
		test_append_range(wal, next, next, 1, MAX_LENGTH);
		next++;
		if (next % 100 == 0)
			CHECK(test_sync(wal) == next - 1);
	}
	CHECK(test_sync(wal) == next - 1);
	wal_close(wal);
	wal = open_wal(dir, 0);
	CHECK(wal_recovered(wal)->entry_count == next - 1);
	for (size_t i = 0; i < next - 1; i++)
		CHECK(test_entry_matches(&wal_recovered(wal)->entries[i], MAX_LENGTH));
	CHECK(!wal_recovered(wal)->info.torn_tail);
	wal_close(wal);
}

int main(void)
{
	/* Crossing the limit would otherwise kill the process. */
	signal(SIGXFSZ, SIG_IGN);
	test_short_write_resumed();
	test_write_error_fails_the_wal(0);
	test_write_error_fails_the_wal(1);
	test_write_error_fails_the_wal(2);
	test_zero_fill_cut_short();
	printf("wal I/O error tests passed\n");
	return 0;
}
