/* tests/wal/test_wal_enospc.c: a full disk. The wal runs on a small tmpfs mounted by this test in a
 * private mount namespace (so the mount disappears with the process even if a check fails); appends go on
 * until a new segment cannot be preallocated, after which the wal is failed: every append reports the
 * same ENOSPC, and everything reported durable before is still there after remounting bigger. */
#include "helpers.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define MAX_LENGTH 1024
#define SEGMENT_SIZE (64u * 1024u)

static char mount_point[256];
static int mounted;

static void unmount_at_exit(void)
{
	if (mounted)
		umount2(mount_point, MNT_DETACH);
	mounted = 0;
}

int main(void)
{
	if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		printf("skipped: cannot create a private mount namespace (%s); needs root\n", strerror(errno));
		return TEST_SKIP;
	}
	snprintf(mount_point, sizeof mount_point, "%s", test_temp_dir("enospc"));
	/* Room for the segment in use, the one prepared ahead and a little more. */
	if (mount("tmpfs", mount_point, "tmpfs", 0, "size=200k") != 0) {
		printf("skipped: cannot mount tmpfs (%s)\n", strerror(errno));
		return TEST_SKIP;
	}
	mounted = 1;
	atexit(unmount_at_exit);
	char dir[300];
	snprintf(dir, sizeof dir, "%s/wal", mount_point);

	struct wal_options options;
	test_options(&options, SEGMENT_SIZE, 0);
	struct wal *wal = NULL;
	char err[512] = "";
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	uint64_t acknowledged = 0, index = 1;
	int rc = 0;
	while (rc == 0 && index < 100000) {
		uint8_t data[MAX_LENGTH];
		size_t length = test_entry_length(index, 1, MAX_LENGTH);
		test_entry_fill(index, 1, data, length);
		struct wal_entry entry = { .term = 1, .index = index, .type = (uint32_t)(index % 3), .data = data,
			.data_length = length };
		rc = wal_append_entries(wal, &entry, 1, err, sizeof err);
		if (rc == 0 && index % 10 == 0) {
			rc = wal_submit(wal, err, sizeof err);
			while (rc == 0 && !wal_all_durable(wal))
				rc = wal_wait(wal, &acknowledged, err, sizeof err);
		}
		if (rc == 0)
			index++;
	}
	printf("  stopped at entry %llu, %llu acknowledged: %s\n", (unsigned long long)index,
			(unsigned long long)acknowledged, err);
	CHECK(rc == -ENOSPC);
	CHECK(strstr(err, dir) != NULL && strstr(err, "fallocate") != NULL);
	CHECK(acknowledged >= 100); /* two segments' worth went through before the disk filled */
	/* The wal is failed: later calls report the same error, nothing more becomes durable. */
	char again[512] = "";
	struct wal_entry entry = { .term = 1, .index = index + 1, .data = (const uint8_t *)"x", .data_length = 1 };
	CHECK(wal_append_entries(wal, &entry, 1, again, sizeof again) == -ENOSPC);
	CHECK(strcmp(again, err) == 0);
	struct wal_hard_state state = { 1, 1, 1 };
	CHECK(wal_set_hard_state(wal, &state, again, sizeof again) == -ENOSPC);
	CHECK(wal_submit(wal, again, sizeof again) == -ENOSPC);
	uint64_t durable = 0;
	CHECK(wal_reap(wal, &durable, again, sizeof again) == -ENOSPC);
	CHECK(durable == acknowledged);
	wal_close(wal);

	/* Free space, reopen: every acknowledged entry is intact. */
	CHECK(mount(NULL, mount_point, NULL, MS_REMOUNT, "size=4m") == 0);
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->entry_count >= acknowledged);
	for (size_t i = 0; i < recovered->entry_count; i++) {
		CHECK(recovered->entries[i].index == i + 1);
		CHECK(test_entry_matches(&recovered->entries[i], MAX_LENGTH));
	}
	wal_close(wal);
	unmount_at_exit();
	printf("wal ENOSPC test passed\n");
	return 0;
}
