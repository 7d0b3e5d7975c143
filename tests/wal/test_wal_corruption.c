/* tests/wal/test_wal_corruption.c: damaged logs. A crash can only leave a torn tail on the newest
 * segment, which recovery cuts off; anything else (flipped bytes, a missing segment, data after the end of
 * a closed segment) must stop wal_open with an error naming the file and byte offset. */
#include "helpers.h"
#include "record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LENGTH 700
#define SEGMENT_SIZE (64u * 1024u)
#define ENTRIES 600

struct record_map {
	size_t offsets[4096];
	size_t sizes[4096];
	size_t count;
	size_t end;
	size_t file_size;
};

/* Builds a log of ENTRIES entries over several segments and closes it. */
static const char *make_log(const char *label)
{
	const char *dir = test_temp_dir(label);
	struct wal_options options;
	test_options(&options, SEGMENT_SIZE, 0);
	struct wal *wal = NULL;
	char err[256];
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	for (uint64_t first = 1; first <= ENTRIES; first += 40) {
		test_append_range(wal, first, first + 39, 1, MAX_LENGTH);
		test_sync(wal);
	}
	wal_close(wal);
	return dir;
}

static int try_open(const char *dir, struct wal **out, char *err, size_t errlen)
{
	struct wal_options options;
	test_options(&options, SEGMENT_SIZE, 0);
	*out = NULL;
	return wal_open(dir, &options, out, err, errlen);
}

static void read_file(const char *path, uint8_t **bytes, size_t *size)
{
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	struct stat status;
	CHECK(fstat(fd, &status) == 0);
	*size = (size_t)status.st_size;
	*bytes = malloc(*size + 1);
	CHECK(*bytes != NULL);
	CHECK(pread(fd, *bytes, *size, 0) == (ssize_t)*size);
	close(fd);
}

static void map_records(const char *path, struct record_map *map)
{
	uint8_t *bytes;
	read_file(path, &bytes, &map->file_size);
	map->count = 0;
	size_t offset = 0;
	for (;;) {
		struct wal_record_view view;
		const char *why;
		if (wal_record_parse(bytes, map->file_size, SEGMENT_SIZE, offset, &view, &why) != WAL_RECORD_OK)
			break;
		CHECK(map->count < 4096);
		map->offsets[map->count] = offset;
		map->sizes[map->count++] = view.size;
		offset += view.size;
	}
	map->end = offset;
	free(bytes);
}

static void patch(const char *path, size_t offset, uint8_t xor_value)
{
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	uint8_t byte;
	CHECK(pread(fd, &byte, 1, (off_t)offset) == 1);
	byte ^= xor_value;
	CHECK(pwrite(fd, &byte, 1, (off_t)offset) == 1);
	close(fd);
}

/* Finds the closed segment with the given rank (0 = oldest) and the open segment holding records. */
static void segment_path(const char *dir, int closed_rank, char *out, size_t length)
{
	DIR *directory = opendir(dir);
	CHECK(directory != NULL);
	char names[64][64];
	int count = 0;
	struct dirent *item;
	while ((item = readdir(directory)) != NULL) {
		int closed = strlen(item->d_name) == 33 && item->d_name[16] == '-';
		int open = strncmp(item->d_name, "open-", 5) == 0;
		if (closed_rank >= 0 ? closed : open) {
			CHECK(count < 64);
			int written = snprintf(names[count++], 64, "%s", item->d_name);
			CHECK(written > 0 && written < 64);
		}
	}
	closedir(directory);
	if (closed_rank >= 0) {
		/* Closed names sort by their first index. */
		CHECK(closed_rank < count);
		qsort(names, (size_t)count, sizeof names[0], (int (*)(const void *, const void *))strcmp);
		int written = snprintf(out, length, "%s/%s", dir, names[closed_rank]);
		CHECK(written > 0 && (size_t)written < length);
		return;
	}
	for (int i = 0; i < count; i++) {
		int written = snprintf(out, length, "%s/%s", dir, names[i]);
		CHECK(written > 0 && (size_t)written < length);
		struct record_map map;
		map_records(out, &map);
		if (map.count > 0)
			return;
	}
	test_fail(__FILE__, __LINE__, "no open segment with records", dir);
}

static void expect_corrupt(const char *dir, const char *file_path, size_t offset)
{
	struct wal *wal;
	char err[512] = "";
	int rc = try_open(dir, &wal, err, sizeof err);
	printf("  expected refusal: %s\n", err);
	CHECK(rc == -EBADMSG);
	CHECK(wal == NULL);
	const char *name = strrchr(file_path, '/') + 1;
	CHECK(strstr(err, name) != NULL);
	char needle[64];
	snprintf(needle, sizeof needle, "byte offset %zu:", offset);
	CHECK(strstr(err, needle) != NULL);
}

static void test_flipped_byte_in_closed_segment(void)
{
	const char *dir = make_log("flip-closed");
	char path[512];
	segment_path(dir, 1, path, sizeof path);
	struct record_map map;
	map_records(path, &map);
	CHECK(map.count > 20);
	size_t victim = map.count / 2;
	patch(path, map.offsets[victim] + map.sizes[victim] / 2, 0x5a);
	expect_corrupt(dir, path, map.offsets[victim]);
}

static void test_flipped_byte_in_last_segment(void)
{
	const char *dir = make_log("flip-last");
	char path[512];
	segment_path(dir, -1, path, sizeof path);
	struct record_map map;
	map_records(path, &map);
	CHECK(map.count > 4);
	/* Even in the newest segment, wrong non-zero bytes are not a torn write. */
	size_t victim = map.count - 3;
	patch(path, map.offsets[victim] + WAL_RECORD_HEADER_SIZE + 1, 0x01);
	expect_corrupt(dir, path, map.offsets[victim]);
	/* Damage to the very last record too: a crash cannot produce it either. */
	patch(path, map.offsets[victim] + WAL_RECORD_HEADER_SIZE + 1, 0x01);
	victim = map.count - 1;
	patch(path, map.offsets[victim] + map.sizes[victim] - 1, 0x80);
	expect_corrupt(dir, path, map.offsets[victim]);
}

static void test_truncated_last_segment(void)
{
	const char *dir = make_log("cut-last");
	char path[512];
	segment_path(dir, -1, path, sizeof path);
	struct record_map map;
	map_records(path, &map);
	size_t victim = map.count - 1;
	size_t cut = map.offsets[victim] + map.sizes[victim] / 2;
	CHECK(truncate(path, (off_t)cut) == 0);
	struct wal *wal;
	char err[512];
	CHECK_OK(try_open(dir, &wal, err, sizeof err), err);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->info.torn_tail);
	CHECK(recovered->info.truncated_bytes == cut - map.offsets[victim]);
	CHECK(recovered->info.end_offset == map.offsets[victim]);
	/* Exactly the one cut entry is gone; the rest is intact. */
	CHECK(recovered->entry_count == ENTRIES - 1);
	for (size_t i = 0; i < recovered->entry_count; i++)
		CHECK(recovered->entries[i].index == i + 1 && test_entry_matches(&recovered->entries[i], MAX_LENGTH));
	/* The segment is whole again and appends go on after the cut. */
	struct stat status;
	CHECK(stat(path, &status) == 0 && status.st_size == SEGMENT_SIZE);
	test_append_range(wal, ENTRIES, ENTRIES + 10, 2, MAX_LENGTH);
	CHECK(test_sync(wal) == ENTRIES + 10);
	wal_close(wal);
	CHECK_OK(try_open(dir, &wal, err, sizeof err), err);
	CHECK(!wal_recovered(wal)->info.torn_tail);
	CHECK(wal_recovered(wal)->entry_count == ENTRIES + 10);
	wal_close(wal);
}

static void test_unwritten_sectors_at_the_tail(void)
{
	const char *dir = make_log("zero-sector");
	char path[512];
	segment_path(dir, -1, path, sizeof path);
	struct record_map map;
	map_records(path, &map);
	/* A crash that lost the sectors of the last write from some point on: they read back as zeros,
	 * leaving the front of a record that crosses a sector boundary. */
	size_t victim = map.count - 1;
	while (victim > 1 && map.offsets[victim] / WAL_SECTOR_SIZE ==
			(map.offsets[victim] + map.sizes[victim] - 1) / WAL_SECTOR_SIZE)
		victim--;
	CHECK(victim > 1);
	size_t start = map.offsets[victim];
	size_t sector = (start / WAL_SECTOR_SIZE + 1) * WAL_SECTOR_SIZE;
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	static const uint8_t zeros[WAL_SECTOR_SIZE];
	for (size_t at = sector; at < map.end; at += WAL_SECTOR_SIZE)
		CHECK(pwrite(fd, zeros, WAL_SECTOR_SIZE, (off_t)at) == WAL_SECTOR_SIZE);
	close(fd);
	struct wal *wal;
	char err[512];
	CHECK_OK(try_open(dir, &wal, err, sizeof err), err);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->info.torn_tail);
	CHECK(recovered->info.truncated_bytes == sector - start);
	CHECK(recovered->entry_count == ENTRIES - (map.count - victim));
	wal_close(wal);
}

static void test_torn_first_write_of_next_segment(void)
{
	const char *dir = make_log("torn-next");
	/* The newest open-N is the prepared one, all zero. */
	char path[512];
	segment_path(dir, -1, path, sizeof path);
	const char *active = strrchr(path, '/') + 1;
	long long sequence;
	CHECK(sscanf(active, "open-%lld", &sequence) == 1);
	char prepared[600];
	int written = snprintf(prepared, sizeof prepared, "%s/open-%lld", dir, sequence + 1);
	CHECK(written > 0 && (size_t)written < sizeof prepared);
	/* The front of a segment header plus a record that a crash cut off after 700 bytes. */
	uint8_t record[WAL_RECORD_HEADER_SIZE + 1500];
	const size_t front = 700;
	memset(record, 0x3c, sizeof record);
	wal_record_seal(record, WAL_RECORD_ENTRY, 1500);
	int fd = open(prepared, O_WRONLY);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, record, front, 0) == (ssize_t)front);
	close(fd);
	struct wal *wal;
	char err[512];
	CHECK_OK(try_open(dir, &wal, err, sizeof err), err);
	CHECK(wal_recovered(wal)->info.torn_tail);
	CHECK(wal_recovered(wal)->info.truncated_bytes == front);
	CHECK(wal_recovered(wal)->entry_count == ENTRIES);
	test_append_range(wal, ENTRIES + 1, ENTRIES + 400, 1, MAX_LENGTH);
	CHECK(test_sync(wal) == ENTRIES + 400);
	wal_close(wal);
	CHECK_OK(try_open(dir, &wal, err, sizeof err), err);
	CHECK(!wal_recovered(wal)->info.torn_tail && wal_recovered(wal)->entry_count == ENTRIES + 400);
	wal_close(wal);
}

static void test_missing_segment(void)
{
	const char *dir = make_log("missing");
	char path[512];
	segment_path(dir, 1, path, sizeof path);
	CHECK(unlink(path) == 0);
	struct wal *wal;
	char err[512] = "";
	int rc = try_open(dir, &wal, err, sizeof err);
	printf("  expected refusal: %s\n", err);
	CHECK(rc == -EBADMSG);
	CHECK(strstr(err, "missing") != NULL && strstr(err, dir) != NULL);
}

/* The oldest segment gone without a snapshot marker covering its entries (only wal_release_before may
 * delete segments, and only below a durable marker): the log would silently start late. */
static void test_missing_first_segment(void)
{
	const char *dir = make_log("missing-first");
	char path[512];
	segment_path(dir, 0, path, sizeof path);
	CHECK(unlink(path) == 0);
	struct wal *wal;
	char err[512] = "";
	int rc = try_open(dir, &wal, err, sizeof err);
	printf("  expected refusal: %s\n", err);
	CHECK(rc == -EBADMSG);
	CHECK(strstr(err, "no snapshot marker covers them") != NULL && strstr(err, dir) != NULL);
}

static void test_zero_tail_is_clean(void)
{
	const char *dir = make_log("zero-tail");
	char path[512];
	segment_path(dir, -1, path, sizeof path);
	struct record_map map;
	map_records(path, &map);
	/* The preallocated zeros behind the records are the clean end... */
	CHECK(map.end < map.file_size);
	struct wal *wal;
	char err[512];
	CHECK_OK(try_open(dir, &wal, err, sizeof err), err);
	CHECK(!wal_recovered(wal)->info.torn_tail && wal_recovered(wal)->info.truncated_bytes == 0);
	CHECK(wal_recovered(wal)->entry_count == ENTRIES);
	CHECK(wal_recovered(wal)->info.end_offset == map.end);
	wal_close(wal);
	/* ...and so is a file that simply ends at a record boundary. */
	CHECK(truncate(path, (off_t)map.end) == 0);
	CHECK_OK(try_open(dir, &wal, err, sizeof err), err);
	CHECK(!wal_recovered(wal)->info.torn_tail && wal_recovered(wal)->entry_count == ENTRIES);
	wal_close(wal);
}

static void test_data_after_end_of_closed_segment(void)
{
	const char *dir = make_log("after-end");
	char path[512];
	segment_path(dir, 0, path, sizeof path);
	struct record_map map;
	map_records(path, &map);
	CHECK(map.end + 10 < map.file_size); /* a 700-byte record did not fit in the rest */
	patch(path, map.end + 7, 0x42);
	expect_corrupt(dir, path, map.end);
}

int main(void)
{
	test_flipped_byte_in_closed_segment();
	test_flipped_byte_in_last_segment();
	test_truncated_last_segment();
	test_unwritten_sectors_at_the_tail();
	test_torn_first_write_of_next_segment();
	test_missing_segment();
	test_missing_first_segment();
	test_zero_tail_is_clean();
	test_data_after_end_of_closed_segment();
	printf("wal corruption tests passed\n");
	return 0;
}
