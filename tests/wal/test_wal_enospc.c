/* tests/wal/test_wal_enospc.c: a full disk. The wal runs on a small tmpfs mounted by this test in a
 * private mount namespace (so the mount disappears with the process even if a check fails); appends go on
 * until a new segment cannot be preallocated, after which the wal is failed: every append reports the
 * same ENOSPC, and resuming is refused while the disk is full. Remounted bigger, the same wal resumes
 * (wal_resume), takes the entries after the durable index again and more, and everything is there when it
 * is opened again. */
#include "helpers.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define MAX_LENGTH 1024
#define SEGMENT_SIZE (64u * 1024u)


int main(void)
{
	/* Room for the segment in use, the one prepared ahead and a little more. */
	const char *mount_point = test_mount_private("enospc", "tmpfs", "size=200k");
	if (mount_point == NULL)
		return TEST_SKIP;
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
	/* Still full: resuming is refused and changes nothing. */
	CHECK(wal_resume(wal, again, sizeof again) == -ENOSPC);
	CHECK(strstr(again, "a WAL segment needs") != NULL);
	CHECK(wal_append_entries(wal, &entry, 1, again, sizeof again) == -ENOSPC);

	/* Space comes back: the same wal resumes from what is on disk. The owner appends again what it had
	 * appended after the durable index, then goes on; everything ends up durable. */
	CHECK(mount(NULL, mount_point, NULL, MS_REMOUNT, "size=4m") == 0);
	CHECK_OK(wal_resume(wal, err, sizeof err), err);
	CHECK(wal_durable_index(wal) >= acknowledged);
	CHECK(wal_last_index(wal) == wal_durable_index(wal));
	uint64_t records_before = wal_durable_records(wal);
	uint64_t last = index + 50;
	for (uint64_t i = acknowledged + 1; i <= last; i++) {
		uint8_t data[MAX_LENGTH];
		size_t length = test_entry_length(i, 1, MAX_LENGTH);
		test_entry_fill(i, 1, data, length);
		struct wal_entry again_entry = { .term = 1, .index = i, .type = (uint32_t)(i % 3), .data = data,
			.data_length = length };
		CHECK_OK(wal_append_entries(wal, &again_entry, 1, err, sizeof err), err);
	}
	CHECK_OK(wal_set_hard_state(wal, &state, err, sizeof err), err);
	CHECK_OK(wal_submit(wal, err, sizeof err), err);
	while (!wal_all_durable(wal))
		CHECK_OK(wal_wait(wal, &durable, err, sizeof err), err);
	CHECK(durable == last);
	CHECK(wal_durable_records(wal) > records_before);
	CHECK(wal_durable_records(wal) == wal_appended_records(wal));
	wal_close(wal);

	/* Reopened: every entry, the acknowledged ones and those written after the resume, is intact. */
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	const struct wal_recovered *recovered = wal_recovered(wal);
	CHECK(recovered->entry_count == last);
	CHECK(recovered->has_hard_state && recovered->hard_state.commit == 1);
	for (size_t i = 0; i < recovered->entry_count; i++) {
		CHECK(recovered->entries[i].index == i + 1);
		CHECK(test_entry_matches(&recovered->entries[i], MAX_LENGTH));
	}
	wal_close(wal);
	printf("wal ENOSPC test passed\n");
	return 0;
}
