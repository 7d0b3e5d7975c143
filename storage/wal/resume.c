/* storage/wal/resume.c: going on after a full disk (wal_resume). The failed wal's memory (pending records,
 * batches that were never reported, segments rolled into but not durable, a preparation cut short) is not
 * worth untangling: what matters is on disk, and recovery already knows how to read it. So the wal drains the
 * kernel, forgets its writer state and segment list, and runs recovery again on the same object, keeping its
 * lock, ring, event fd and record counts. */
#include "error.h"
#include "log.h"
#include "wal_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

/* Room for the segment a resumed wal may have to prepare at once (the one it failed to prepare, most
 * likely), besides what the file system keeps. */
static int check_room(struct wal *wal, char *err, size_t errlen)
{
	struct statvfs info;
	if (statvfs(wal->dir, &info) != 0)
		return 0; /* no answer: the attempt itself will say */
	uint64_t free_bytes = (uint64_t)info.f_bavail * info.f_frsize;
	if (free_bytes < wal->options.segment_size)
		return wal_error(err, errlen, ENOSPC, "%s: %" PRIu64 " bytes free, a WAL segment needs %" PRIu64,
				wal->dir, free_bytes, wal->options.segment_size);
	return 0;
}

int wal_resume(struct wal *wal, char *err, size_t errlen)
{
	if (!wal->failed)
		return 0;
	if (wal->failed != -ENOSPC)
		return wal_error(err, errlen, -wal->failed, "%s", wal->failure);
	int rc = check_room(wal, err, errlen);
	if (rc != 0)
		return rc;
	uint64_t durable_index = wal->durable_index;
	/* The kernel may still hold batches that were in flight when the preparation of a segment failed. */
	wal_writer_drain(wal);
	wal_writer_forget(wal);
	for (size_t i = 0; i < wal->segment_count; i++)
		wal_segment_free(wal->segments[i]);
	wal->segment_count = 0;
	wal->active = NULL;
	wal->next_sequence = 0;
	wal->last_index = 0;
	wal->has_hard_state = false;
	memset(&wal->hard_state, 0, sizeof wal->hard_state);
	wal->has_snapshot = false;
	memset(&wal->snapshot, 0, sizeof wal->snapshot);
	free(wal->snapshot_metadata);
	wal->snapshot_metadata = NULL;
	wal_recovered_release(wal);
	memset(&wal->recovered, 0, sizeof wal->recovered);
	char failure[sizeof wal->failure];
	memcpy(failure, wal->failure, sizeof failure);
	wal->failed = 0;
	wal->failure[0] = '\0';

	rc = wal_recover(wal, err, errlen);
	if (rc == 0 && wal->active == NULL) {
		struct wal_segment *segment;
		rc = wal_segment_prepare(wal->dir_fd, wal->dir, wal->next_sequence, wal->options.segment_size,
				wal->options.direct_io, &segment, err, errlen);
		if (rc == 0 && wal_add_segment(wal, segment) != 0) {
			wal_segment_free(segment);
			rc = wal_error(err, errlen, ENOMEM, "%s: out of memory", wal->dir);
		}
		if (rc == 0) {
			wal->next_sequence++;
			wal->active = segment;
		}
	}
	if (rc == 0 && wal->last_index < durable_index)
		rc = wal_error(err, errlen, EIO, "%s: after a full disk the log ends at entry %" PRIu64 ", but entries "
				"up to %" PRIu64 " were reported durable", wal->dir, wal->last_index, durable_index);
	if (rc != 0) {
		/* Recovery may have left the segment list half built: nothing may be written through it. A full disk
		 * again is retried like the first; anything else is final. */
		wal_fail(wal, rc, "%s", err != NULL && errlen > 0 ? err : failure);
		return rc;
	}
	wal_ready_after_recovery(wal);
	return 0;
}
