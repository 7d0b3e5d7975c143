/* tests/wal/test_wal_space.c: segments sized to the free space, and recovery that reads only the end of
 * the written records.
 *
 * - On small tmpfs mounts (a private mount namespace, so they go away with the process): a wal opened
 *   with the default 64 MiB segments gets segments of an eighth of the free space (24 MiB free: 3 MiB),
 *   never below the floor (6 MiB free: 2 MiB), takes entries over several segments and recovers them.
 * - Recovery reads only TAIL_WINDOW_BYTES past the last record: a copy of real records planted far past
 *   the end of the newest open segment, and in the segment prepared ahead, is cleared at open (those bytes
 *   read zero afterwards), so later appends never run into them.
 * - A corrupt record in the middle of the newest segment is still refused, naming the file and offset. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LENGTH 1024

static char mount_point[256];
static int mounted;

static void unmount_at_exit(void)
{
	if (mounted)
		umount2(mount_point, MNT_DETACH);
	mounted = 0;
}

static uint64_t file_size(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	struct stat status;
	CHECK(stat(path, &status) == 0);
	return (uint64_t)status.st_size;
}

static void read_at(const char *dir, const char *name, uint64_t offset, uint8_t *out, size_t length)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(pread(fd, out, length, (off_t)offset) == (ssize_t)length);
	close(fd);
}

static void write_at(const char *dir, const char *name, uint64_t offset, const uint8_t *bytes, size_t length)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, bytes, length, (off_t)offset) == (ssize_t)length);
	CHECK(fdatasync(fd) == 0);
	close(fd);
}

static void check_entries(struct wal *wal, uint64_t last)
{
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->entry_count == last);
	for (size_t i = 0; i < recovered->entry_count; i++) {
		CHECK(recovered->entries[i].index == i + 1);
		CHECK(test_entry_matches(&recovered->entries[i], MAX_LENGTH));
	}
}

/* A wal with 64 MiB segments asked for, on a tmpfs of `size`: expects segments of `expected` bytes. */
static void fitted_on_tmpfs(const char *size, uint64_t expected_max, uint64_t expected_min)
{
	char options_text[64];
	snprintf(options_text, sizeof options_text, "size=%s", size);
	CHECK(mount("tmpfs", mount_point, "tmpfs", 0, options_text) == 0);
	mounted = 1;
	char dir[300];
	snprintf(dir, sizeof dir, "%s/wal", mount_point);
	struct wal_options options;
	wal_options_init(&options);
	CHECK(options.segment_size == WAL_DEFAULT_SEGMENT_SIZE && options.fit_free_space);
	struct wal *wal = NULL;
	char err[512] = "";
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	uint64_t segment = wal_recovered(wal)->info.segment_size;
	printf("  tmpfs of %s: %llu-byte segments\n", size, (unsigned long long)segment);
	CHECK(segment <= expected_max && segment >= expected_min && segment % WAL_DIRECT_ALIGNMENT == 0);
	CHECK(file_size(dir, "open-0") == segment);
	/* More than two segments' worth, so segments are closed and new ones prepared at the fitted size. */
	uint64_t last = 0;
	while (wal_segment_files(wal) < 3) {
		test_append_range(wal, last + 1, last + 200, 1, MAX_LENGTH);
		last += 200;
		CHECK(test_sync(wal) == last);
	}
	wal_close(wal);
	/* Reopened with the defaults again: the same entries, and appends go on. */
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	check_entries(wal, last);
	test_append_range(wal, last + 1, last + 10, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == last + 10);
	wal_close(wal);
	umount2(mount_point, MNT_DETACH);
	mounted = 0;
}

static void test_fitted_segments(void)
{
	if (!test_private_mount_namespace("  skipped the tmpfs part: "))
		return;
	snprintf(mount_point, sizeof mount_point, "%s", test_temp_dir("space"));
	atexit(unmount_at_exit);
	/* An eighth of the free space: 3 MiB (a little less: tmpfs counts its own blocks). */
	fitted_on_tmpfs("24m", 3u << 20, 2u << 20);
	/* An eighth would be 768 KiB: the floor (a 1.5 MiB entry must fit) wins. */
	fitted_on_tmpfs("6m", WAL_DEFAULT_MIN_SEGMENT_SIZE, WAL_DEFAULT_MIN_SEGMENT_SIZE);
}

#define SEGMENT (16u * 1024u * 1024u)

static void open_fixed(const char *dir, struct wal **wal, char *err, size_t errlen)
{
	struct wal_options options;
	test_options(&options, SEGMENT, 0);
	options.fit_free_space = false;
	CHECK_OK(wal_open(dir, &options, wal, err, errlen), err);
}

/* Records planted far past the end are cleared at open without being read. */
static void test_unread_tail_cleared(void)
{
	const char *dir = test_temp_dir("tail");
	struct wal *wal = NULL;
	char err[512] = "";
	open_fixed(dir, &wal, err, sizeof err);
	test_append_range(wal, 1, 100, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == 100);
	wal_close(wal);
	CHECK(file_size(dir, "open-0") == SEGMENT && file_size(dir, "open-1") == SEGMENT);
	/* The segment's first 64 KiB (its header and real records, valid checksums) copied to 8 MiB into the
	 * active segment and to 9 MiB into the prepared one: what a batch a crash cut short could leave there. */
	static uint8_t records[64 * 1024], back[64 * 1024];
	static const uint8_t zeros[64 * 1024];
	read_at(dir, "open-0", 0, records, sizeof records);
	write_at(dir, "open-0", 8u << 20, records, sizeof records);
	write_at(dir, "open-1", 9u << 20, records, sizeof records);
	open_fixed(dir, &wal, err, sizeof err);
	check_entries(wal, 100);
	read_at(dir, "open-0", 8u << 20, back, sizeof back);
	CHECK(memcmp(back, zeros, sizeof zeros) == 0);
	read_at(dir, "open-1", 9u << 20, back, sizeof back);
	CHECK(memcmp(back, zeros, sizeof zeros) == 0);
	CHECK(file_size(dir, "open-0") == SEGMENT && file_size(dir, "open-1") == SEGMENT);
	/* Appends go on over the cleared space, into the next segment too. */
	uint64_t last = 100;
	while (wal_segment_files(wal) < 2) {
		test_append_range(wal, last + 1, last + 1000, 2, MAX_LENGTH);
		last += 1000;
		CHECK(test_sync(wal) == last);
	}
	wal_close(wal);
	open_fixed(dir, &wal, err, sizeof err);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->entry_count == last && recovered->entries[last - 1].index == last);
	CHECK(!recovered->info.torn_tail);
	wal_close(wal);
	test_remove_tree(dir);
}

static uint32_t get_u32(const uint8_t *in)
{
	return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}

/* A flipped byte inside a record in the middle of the newest open segment is corruption, not the end. */
static void test_corrupt_middle_record(void)
{
	const char *dir = test_temp_dir("middle");
	struct wal *wal = NULL;
	char err[512] = "";
	open_fixed(dir, &wal, err, sizeof err);
	uint8_t data[700];
	memset(data, 0x5a, sizeof data);
	for (uint64_t index = 1; index <= 100; index++) {
		struct wal_entry entry = { .term = 1, .index = index, .data = data, .data_length = sizeof data };
		CHECK_OK(wal_append_entries(wal, &entry, 1, err, sizeof err), err);
	}
	CHECK(test_sync(wal) == 100);
	wal_close(wal);
	/* Walk the record frames to the 50th entry record (the segment opens with its header record). */
	static uint8_t bytes[128 * 1024];
	read_at(dir, "open-0", 0, bytes, sizeof bytes);
	uint64_t offset = 0;
	for (int record = 0; record < 50; record++)
		offset += 9 + get_u32(bytes + offset);
	uint8_t flipped = bytes[offset + 9 + 300] ^ 0x01;
	write_at(dir, "open-0", offset + 9 + 300, &flipped, 1);
	int rc = 0;
	struct wal_options options;
	test_options(&options, SEGMENT, 0);
	options.fit_free_space = false;
	rc = wal_open(dir, &options, &wal, err, sizeof err);
	printf("  flipped a byte of the record at %llu: %s\n", (unsigned long long)offset, err);
	CHECK(rc == -EBADMSG && wal == NULL);
	char expected[512];
	snprintf(expected, sizeof expected, "%s/open-0: corrupt at byte offset %llu: checksum mismatch", dir,
			(unsigned long long)offset);
	CHECK(strstr(err, expected) != NULL);
	test_remove_tree(dir);
}

int main(void)
{
	test_unread_tail_cleared();
	test_corrupt_middle_record();
	test_fitted_segments();
	printf("wal space test passed\n");
	return 0;
}
