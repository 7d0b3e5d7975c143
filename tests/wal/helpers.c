/* tests/wal/helpers.c: shared test helpers (see helpers.h). */
#define _XOPEN_SOURCE 700
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define MAX_TEMP_DIRS 32

static char temp_dirs[MAX_TEMP_DIRS][256];
static int temp_dir_count;

char test_reproduce[256] = "meson test -C build --suite wal --verbose";

void test_fail(const char *file, int line, const char *what, const char *detail)
{
	fprintf(stderr, "FAIL %s:%d: %s%s%s\n", file, line, what, detail ? ": " : "", detail ? detail : "");
	fprintf(stderr, "reproduce: %s\n", test_reproduce);
	exit(1);
}

int test_direct_io_supported(const char *dir)
{
	char path[512];
	int written = snprintf(path, sizeof path, "%s/direct-io-probe", dir);
	if (written < 0 || (size_t)written >= sizeof path)
		test_fail(__FILE__, __LINE__, "path too long", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		close(fd);
		unlink(path);
		return 1;
	}
	printf("  O_DIRECT is not supported in %s (%s): its cases are skipped\n", dir, strerror(errno));
	return 0;
}

static int remove_one(const char *path, const struct stat *status, int type, struct FTW *walk)
{
	(void)status;
	(void)type;
	(void)walk;
	remove(path);
	return 0;
}

void test_remove_tree(const char *path)
{
	nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_temp_dirs(void)
{
	for (int i = 0; i < temp_dir_count; i++)
		test_remove_tree(temp_dirs[i]);
}

const char *test_temp_dir(const char *label)
{
	if (temp_dir_count == MAX_TEMP_DIRS)
		test_fail(__FILE__, __LINE__, "too many temporary directories", NULL);
	if (temp_dir_count == 0)
		atexit(remove_temp_dirs);
	const char *base = getenv("TMPDIR");
	char *slot = temp_dirs[temp_dir_count];
	snprintf(slot, sizeof temp_dirs[0], "%s/wal-%s-XXXXXX", base && *base ? base : "/tmp", label);
	if (mkdtemp(slot) == NULL)
		test_fail(__FILE__, __LINE__, "mkdtemp", strerror(errno));
	temp_dir_count++;
	return slot;
}

static uint64_t mix(uint64_t value)
{
	/* splitmix64: spreads consecutive indexes over unrelated bytes. */
	value += 0x9E3779B97F4A7C15ull;
	value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ull;
	value = (value ^ (value >> 27)) * 0x94D049BB133111EBull;
	return value ^ (value >> 31);
}

size_t test_entry_length(uint64_t index, uint64_t term, size_t max_length)
{
	return 1 + (size_t)(mix(index * 131 + term) % max_length);
}

void test_entry_fill(uint64_t index, uint64_t term, uint8_t *out, size_t length)
{
	uint64_t state = index << 20 ^ term;
	for (size_t i = 0; i < length; i++) {
		if (i % 8 == 0)
			state = mix(state);
		/* Never a zero byte: a run of zeros would look like unwritten sectors to recovery. */
		out[i] = (uint8_t)(state >> (8 * (i % 8))) | 1;
	}
}

int test_entry_matches(const struct wal_entry *entry, size_t max_length)
{
	size_t length = test_entry_length(entry->index, entry->term, max_length);
	if (entry->data_length != length || entry->type != (uint32_t)(entry->index % 3))
		return 0;
	uint8_t expected[length];
	test_entry_fill(entry->index, entry->term, expected, length);
	return memcmp(expected, entry->data, length) == 0;
}

void test_append_range(struct wal *wal, uint64_t first, uint64_t last, uint64_t term, size_t max_length)
{
	char err[256];
	uint8_t *buffer = malloc(max_length);
	CHECK(buffer != NULL);
	for (uint64_t index = first; index <= last; index++) {
		size_t length = test_entry_length(index, term, max_length);
		test_entry_fill(index, term, buffer, length);
		struct wal_entry entry = {
			.term = term, .index = index, .type = (uint32_t)(index % 3), .data = buffer,
			.data_length = length,
		};
		CHECK_OK(wal_append_entries(wal, &entry, 1, err, sizeof err), err);
	}
	free(buffer);
}

uint64_t test_sync(struct wal *wal)
{
	char err[256];
	CHECK_OK(wal_submit(wal, err, sizeof err), err);
	uint64_t durable = 0;
	while (!wal_all_durable(wal))
		CHECK_OK(wal_wait(wal, &durable, err, sizeof err), err);
	return wal_durable_index(wal);
}

const char *test_write_mode_name(int write_mode)
{
	return write_mode == TEST_BUFFERED ? "buffered" : write_mode == TEST_DIRECT ? "O_DIRECT" : "O_DIRECT+RWF_DSYNC";
}

void test_options(struct wal_options *options, uint64_t segment_size, int write_mode)
{
	wal_options_init(options);
	options->segment_size = segment_size;
	options->direct_io = write_mode != TEST_BUFFERED;
	options->dsync_writes = write_mode == TEST_DIRECT_DSYNC;
}

bool test_private_mount_namespace(const char *prefix)
{
	static bool entered;
	if (entered)
		return true;
	if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		printf("%scannot create a private mount namespace (%s); needs root\n", prefix, strerror(errno));
		return false;
	}
	entered = true;
	return true;
}

static char private_mount_point[512];

static void unmount_private_at_exit(void)
{
	umount2(private_mount_point, MNT_DETACH);
}

const char *test_mount_private(const char *name, const char *fstype, const char *options)
{
	if (!test_private_mount_namespace("skipped: "))
		return NULL;
	snprintf(private_mount_point, sizeof private_mount_point, "%s", test_temp_dir(name));
	if (mount(fstype, private_mount_point, fstype, 0, options) != 0) {
		printf("skipped: cannot mount %s (%s)\n", fstype, strerror(errno));
		return NULL;
	}
	atexit(unmount_private_at_exit);
	return private_mount_point;
}
