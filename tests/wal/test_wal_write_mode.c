/* tests/wal/test_wal_write_mode.c: the write mode the wal ends up with. Asked for O_DIRECT writes carrying
 * RWF_DSYNC, it keeps them where the file system takes them (one sync per batch and segment: the write
 * itself) and recovers everything it reported durable; the probe wal_open uses to fall back tells a file
 * system that refuses O_DIRECT (a ramfs mounted by this test in a private mount namespace; ramfs cannot
 * hold a wal at all, having no fallocate, so only the probe runs there). */
#include "helpers.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <dirent.h>
#include <unistd.h>

#define MAX_LENGTH 3000
#define SEGMENT_SIZE (256u * 1024u)


static unsigned directory_entries(const char *dir)
{
	DIR *listing = opendir(dir);
	CHECK(listing != NULL);
	unsigned count = 0;
	for (struct dirent *entry; (entry = readdir(listing)) != NULL;)
		count += strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0;
	closedir(listing);
	return count;
}

static struct wal *open_wal(const char *dir, const struct wal_options *options)
{
	struct wal *wal = NULL;
	char err[512];
	CHECK_OK(wal_open(dir, options, &wal, err, sizeof err), err);
	return wal;
}

static void check_recovered(struct wal *wal, uint64_t last)
{
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->entry_count == last);
	for (size_t i = 0; i < recovered->entry_count; i++) {
		CHECK(recovered->entries[i].index == i + 1);
		CHECK(test_entry_matches(&recovered->entries[i], MAX_LENGTH));
	}
}

/* Appends and syncs batches of one to five entries; each batch costs one sync (its write), or two when it
 * reaches into a new segment. Returns how many batches took two. */
static unsigned write_batches(struct wal *wal, uint64_t *next, unsigned batches)
{
	unsigned crossing = 0;
	for (unsigned batch = 0; batch < batches; batch++) {
		uint64_t syncs = wal_sync_count(wal);
		uint64_t last = *next + batch % 5;
		test_append_range(wal, *next, last, 1, MAX_LENGTH);
		CHECK(test_sync(wal) == last);
		uint64_t taken = wal_sync_count(wal) - syncs;
		CHECK(taken == 1 || taken == 2);
		crossing += taken == 2;
		*next = last + 1;
	}
	return crossing;
}

static void test_dsync_kept_where_supported(void)
{
	const char *dir = test_temp_dir("write-mode");
	if (!test_direct_io_supported(dir))
		return;
	struct wal_options options;
	test_options(&options, SEGMENT_SIZE, TEST_DIRECT_DSYNC);
	struct wal *wal = open_wal(dir, &options);
	CHECK(strcmp(wal_write_mode(wal), "O_DIRECT writes with RWF_DSYNC") == 0);
	char probe[600];
	snprintf(probe, sizeof probe, "%s/.write-mode-probe", dir);
	CHECK(access(probe, F_OK) != 0 && errno == ENOENT); /* wal_open's probe removed its scratch file */
	uint64_t next = 1;
	/* Enough to roll over into new segments several times: at most one batch per segment takes two. */
	unsigned crossing = write_batches(wal, &next, 400);
	CHECK(crossing >= 1 && crossing <= (next - 1) * (MAX_LENGTH + 64) / SEGMENT_SIZE + 1);
	wal_close(wal);
	wal = open_wal(dir, &options);
	check_recovered(wal, next - 1);
	wal_close(wal);
	printf("  %s: %llu entries in 400 batches, one sync each (%u reaching into a new segment: two), all "
			"recovered\n", test_write_mode_name(TEST_DIRECT_DSYNC), (unsigned long long)(next - 1), crossing);
}

static int test_fallback_on_ramfs(void)
{
	const char *mount_point = test_mount_private("ramfs", "ramfs", NULL);
	if (mount_point == NULL)
		return TEST_SKIP;
	struct wal_options options;
	test_options(&options, SEGMENT_SIZE, TEST_DIRECT_DSYNC);
	int refused = 0;
	CHECK(!wal_write_mode_supported(mount_point, &options, &refused));
	CHECK(refused == EINVAL);
	test_options(&options, SEGMENT_SIZE, TEST_BUFFERED);
	CHECK(wal_write_mode_supported(mount_point, &options, &refused));
	CHECK(directory_entries(mount_point) == 0); /* the probe leaves nothing behind */
	printf("  ramfs: O_DIRECT refused (%s), buffered taken\n", strerror(EINVAL));
	return 0;
}

int main(void)
{
	test_dsync_kept_where_supported();
	int rc = test_fallback_on_ramfs();
	if (rc != 0)
		return rc;
	printf("wal write mode tests passed\n");
	return 0;
}
