/* storage/wal/wal.c: the public calls of the wal: opening and closing, checking arguments, and handing
 * records to encode.c and batches to writer.c. */
#include "error.h"
#include "log.h"
#include "wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

void wal_options_init(struct wal_options *options)
{
	options->segment_size = WAL_DEFAULT_SEGMENT_SIZE;
	options->direct_io = false;
	options->dsync_writes = false;
	options->ring_entries = 64;
	options->pipeline_depth = WAL_DEFAULT_PIPELINE_DEPTH;
	options->zero_segments = true;
	options->fit_free_space = true;
	options->min_segment_size = 0;
}

static int report_failure(const struct wal *wal, char *err, size_t errlen)
{
	return wal_error(err, errlen, -wal->failed, "%s", wal->failure);
}

static int check_options(const char *dir, const struct wal_options *options, char *err, size_t errlen)
{
	/* The upper bound keeps every write of a chunk within io_uring's 32-bit length. */
	if (options->segment_size < 16 * 1024 || options->segment_size > 1024 * 1024 * 1024 ||
			options->segment_size % WAL_DIRECT_ALIGNMENT != 0)
		return wal_error(err, errlen, EINVAL, "%s: segment size %" PRIu64 " is not a multiple of %u "
				"between 16 KiB and 1 GiB", dir, options->segment_size, WAL_DIRECT_ALIGNMENT);
	if (options->ring_entries < 8 || options->ring_entries > 4096)
		return wal_error(err, errlen, EINVAL, "%s: ring_entries %u is outside 8..4096", dir,
				options->ring_entries);
	if (options->pipeline_depth > WAL_MAX_PIPELINE_DEPTH)
		return wal_error(err, errlen, EINVAL, "%s: pipeline_depth %u is outside 1..%u", dir,
				options->pipeline_depth, WAL_MAX_PIPELINE_DEPTH);
	return 0;
}

/* The segment size to prepare new segments with: the one asked for, unless the two segments a new wal
 * prepares at once (the active one and the one ahead) would take more than a quarter of the free space.
 * Then an eighth of it each, never below what the largest record needs, with a warning: etcd's 64 MiB
 * segments on a nearly full disk would make a member that cannot start at all. */
static uint64_t fitted_segment_size(const char *dir, const struct wal_options *options)
{
	uint64_t asked = options->segment_size;
	uint64_t floor = options->min_segment_size ? options->min_segment_size : WAL_DEFAULT_MIN_SEGMENT_SIZE;
	floor = (floor + WAL_DIRECT_ALIGNMENT - 1) / WAL_DIRECT_ALIGNMENT * WAL_DIRECT_ALIGNMENT;
	struct statvfs info;
	if (!options->fit_free_space || asked <= floor || statvfs(dir, &info) != 0)
		return asked;
	uint64_t free_bytes = (uint64_t)info.f_bavail * info.f_frsize;
	if (free_bytes / 8 >= asked)
		return asked;
	uint64_t size = free_bytes / 8 / WAL_DIRECT_ALIGNMENT * WAL_DIRECT_ALIGNMENT;
	if (size < floor)
		size = floor;
	char escaped[512];
	log_write("warn", "little free space for the WAL; using smaller segments",
			"\"wal-dir\":\"%s\",\"free-bytes\":%" PRIu64 ",\"segment-bytes\":%" PRIu64
			",\"default-segment-bytes\":%" PRIu64, log_json_escape(dir, escaped, sizeof escaped), free_bytes,
			size, asked);
	return size;
}

/* Whether this file system takes what options ask for: an O_DIRECT write (tmpfs before Linux 6.6, some FUSE
 * file systems refuse it) and, with dsync_writes, a write carrying RWF_DSYNC. One aligned block is written
 * to a scratch file, which is removed again. */
static bool write_mode_supported_at(int dir_fd, const struct wal_options *options, int *error_number)
{
	static const char probe_name[] = ".write-mode-probe";
	*error_number = 0;
	int fd = openat(dir_fd, probe_name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0600);
	if (fd < 0) {
		*error_number = errno;
		/* The file may exist all the same: the refusal comes after creating it. */
		unlinkat(dir_fd, probe_name, 0);
		return false;
	}
	void *block = NULL;
	bool supported = posix_memalign(&block, WAL_DIRECT_ALIGNMENT, WAL_DIRECT_ALIGNMENT) == 0;
	if (supported) {
		memset(block, 0, WAL_DIRECT_ALIGNMENT);
		struct iovec vector = { block, WAL_DIRECT_ALIGNMENT };
		ssize_t written = pwritev2(fd, &vector, 1, 0, options->dsync_writes ? RWF_DSYNC : 0);
		if (written != (ssize_t)WAL_DIRECT_ALIGNMENT) {
			*error_number = written < 0 ? errno : EIO;
			supported = false;
		}
		free(block);
	} else {
		*error_number = ENOMEM;
	}
	close(fd);
	unlinkat(dir_fd, probe_name, 0);
	return supported;
}

bool wal_write_mode_supported(const char *dir, const struct wal_options *options, int *error_number)
{
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		*error_number = errno;
		return false;
	}
	bool supported = !options->direct_io || write_mode_supported_at(dir_fd, options, error_number);
	close(dir_fd);
	return supported;
}

const char *wal_write_mode(const struct wal *wal)
{
	if (!wal->options.direct_io)
		return wal->options.dsync_writes ? "buffered writes with RWF_DSYNC" : "buffered writes, then fdatasync";
	return wal->options.dsync_writes ? "O_DIRECT writes with RWF_DSYNC" : "O_DIRECT writes, then fdatasync";
}

void wal_ready_after_recovery(struct wal *wal)
{
	/* Not fatal: on a full disk the log must still open. Retried after each batch, and reported when a
	 * new segment is really needed. */
	wal_writer_prepare_ahead(wal, NULL, 0);
	wal->recovered.info.segment_size = wal->options.segment_size;
	wal->durable_index = wal->last_index;
	wal->has_durable_snapshot = wal->has_snapshot;
	wal->durable_snapshot_index = wal->snapshot.index;
}

int wal_open(const char *dir, const struct wal_options *options, struct wal **out, char *err, size_t errlen)
{
	*out = NULL;
	struct wal_options defaults;
	if (options == NULL) {
		wal_options_init(&defaults);
		options = &defaults;
	}
	int rc = check_options(dir, options, err, errlen);
	if (rc != 0)
		return rc;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return wal_error(err, errlen, errno, "%s: mkdir: %s", dir, strerror(errno));
	struct wal *wal = calloc(1, sizeof *wal);
	if (wal == NULL || (wal->dir = strdup(dir)) == NULL) {
		free(wal);
		return wal_error(err, errlen, ENOMEM, "%s: out of memory", dir);
	}
	wal->options = *options;
	wal->options.segment_size = fitted_segment_size(dir, options);
	if (wal->options.pipeline_depth == 0)
		wal->options.pipeline_depth = WAL_DEFAULT_PIPELINE_DEPTH;
	wal->event_fd = -1;
	wal->ring_dir_fd = -1;
	wal->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wal->dir_fd < 0) {
		rc = wal_error(err, errlen, errno, "%s: open: %s", dir, strerror(errno));
		goto fail;
	}
	/* Two writers on one log would interleave records; the lock goes away with the process. */
	if (flock(wal->dir_fd, LOCK_EX | LOCK_NB) != 0) {
		rc = wal_error(err, errlen, errno, "%s: locking the wal directory: %s (is another process using "
				"it?)", dir, strerror(errno));
		goto fail;
	}
	wal->ring_dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wal->ring_dir_fd < 0) {
		rc = wal_error(err, errlen, errno, "%s: open: %s", dir, strerror(errno));
		goto fail;
	}
	int refused;
	if (wal->options.direct_io && !write_mode_supported_at(wal->dir_fd, &wal->options, &refused)) {
		const char *asked = wal_write_mode(wal);
		/* Buffered RWF_DSYNC writes would still run in io_uring's worker threads: fdatasync is as fast. */
		wal->options.dsync_writes = false;
		if (!write_mode_supported_at(wal->dir_fd, &wal->options, &refused))
			wal->options.direct_io = false;
		char escaped[512];
		log_write("warn", "the WAL's file system refuses its write mode; falling back",
				"\"wal-dir\":\"%s\",\"refused\":\"%s\",\"error\":\"%s\",\"write-mode\":\"%s\"",
				log_json_escape(dir, escaped, sizeof escaped), asked, strerror(refused), wal_write_mode(wal));
	}
	rc = wal_recover(wal, err, errlen);
	if (rc != 0)
		goto fail;
	rc = wal_writer_init(wal, err, errlen);
	if (rc != 0)
		goto fail;
	if (wal->active == NULL) {
		struct wal_segment *segment;
		rc = wal_segment_prepare(wal->dir_fd, dir, wal->next_sequence, wal->options.segment_size,
				wal->options.direct_io, &segment, err, errlen);
		if (rc != 0)
			goto fail;
		if (wal_add_segment(wal, segment) != 0) {
			wal_segment_free(segment);
			rc = wal_error(err, errlen, ENOMEM, "%s: out of memory", dir);
			goto fail;
		}
		wal->next_sequence++;
		wal->active = segment;
	}
	wal_ready_after_recovery(wal);
	*out = wal;
	return 0;
fail:
	wal_close(wal);
	return rc;
}

const struct wal_recovered *wal_recovered(const struct wal *wal)
{
	return &wal->recovered;
}

void wal_recovered_release(struct wal *wal)
{
	for (size_t i = 0; i < wal->recovered.entry_count; i++)
		free((void *)wal->recovered.entries[i].data);
	free(wal->recovered.entries);
	wal->recovered.entries = NULL;
	wal->recovered.entry_count = 0;
	free(wal->recovered_metadata);
	wal->recovered_metadata = NULL;
	wal->recovered.snapshot.metadata = NULL;
	wal->recovered.snapshot.metadata_length = 0;
}

static int append_entries(struct wal *wal, const struct wal_entry *entries, size_t count, bool lend, char *err,
		size_t errlen)
{
	if (wal->failed)
		return report_failure(wal, err, errlen);
	if (count == 0)
		return 0;
	uint64_t first = entries[0].index;
	if (first == 0 || first > wal->last_index + 1)
		return wal_error(err, errlen, EINVAL, "%s: entry %" PRIu64 " does not follow the last index %"
				PRIu64, wal->dir, first, wal->last_index);
	if (wal->has_snapshot && first <= wal->snapshot.index)
		return wal_error(err, errlen, EINVAL, "%s: entry %" PRIu64 " is covered by the snapshot at %"
				PRIu64, wal->dir, first, wal->snapshot.index);
	for (size_t i = 0; i < count; i++) {
		if (entries[i].index != first + i)
			return wal_error(err, errlen, EINVAL, "%s: entry indexes are not consecutive at %" PRIu64,
					wal->dir, entries[i].index);
		/* Entry framing adds at most 40 bytes of protobuf tags and varints. */
		int rc = wal_check_record_size(wal, entries[i].data_length + 40, err, errlen);
		if (rc != 0)
			return rc;
	}
	if (first <= wal->last_index) {
		int rc = wal_encode_truncate(wal, first - 1, err, errlen);
		if (rc != 0)
			return rc;
	}
	for (size_t i = 0; i < count; i++) {
		int rc = wal_encode_entry(wal, &entries[i], lend, err, errlen);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int wal_append_entries(struct wal *wal, const struct wal_entry *entries, size_t count, char *err, size_t errlen)
{
	return append_entries(wal, entries, count, false, err, errlen);
}

int wal_append_entries_referenced(struct wal *wal, const struct wal_entry *entries, size_t count, char *err,
		size_t errlen)
{
	return append_entries(wal, entries, count, true, err, errlen);
}

int wal_set_hard_state(struct wal *wal, const struct wal_hard_state *state, char *err, size_t errlen)
{
	if (wal->failed)
		return report_failure(wal, err, errlen);
	wal->hard_state = *state;
	wal->has_hard_state = true;
	return wal_encode_hard_state(wal, err, errlen);
}

int wal_save_snapshot(struct wal *wal, const struct wal_snapshot_marker *marker, char *err, size_t errlen)
{
	if (wal->failed)
		return report_failure(wal, err, errlen);
	if (wal->has_snapshot && marker->index < wal->snapshot.index)
		return wal_error(err, errlen, EINVAL, "%s: snapshot at %" PRIu64 " is older than the one at %" PRIu64,
				wal->dir, marker->index, wal->snapshot.index);
	if (marker->metadata_length > WAL_SNAPSHOT_METADATA_MAX)
		return wal_error(err, errlen, E2BIG, "%s: snapshot metadata of %zu bytes is over %u", wal->dir,
				marker->metadata_length, WAL_SNAPSHOT_METADATA_MAX);
	uint8_t *metadata = NULL;
	if (marker->metadata_length > 0) {
		metadata = malloc(marker->metadata_length);
		if (metadata == NULL)
			return wal_error(err, errlen, ENOMEM, "%s: out of memory", wal->dir);
		memcpy(metadata, marker->metadata, marker->metadata_length);
	}
	free(wal->snapshot_metadata);
	wal->snapshot_metadata = metadata;
	wal->snapshot = *marker;
	wal->snapshot.metadata = metadata;
	wal->has_snapshot = true;
	return wal_encode_snapshot(wal, err, errlen);
}

int wal_truncate_after(struct wal *wal, uint64_t index, char *err, size_t errlen)
{
	if (wal->failed)
		return report_failure(wal, err, errlen);
	if (wal->has_snapshot && index < wal->snapshot.index)
		return wal_error(err, errlen, EINVAL, "%s: cannot truncate after %" PRIu64 ", below the snapshot at %"
				PRIu64, wal->dir, index, wal->snapshot.index);
	if (index >= wal->last_index)
		return 0;
	return wal_encode_truncate(wal, index, err, errlen);
}

int wal_release_before(struct wal *wal, uint64_t snapshot_index, char *err, size_t errlen)
{
	return wal_release_keeping(wal, snapshot_index, 0, err, errlen);
}

size_t wal_segment_files(const struct wal *wal)
{
	/* In sequence order: closed ones, the active one, then prepared ones without records. */
	for (size_t i = 0; i < wal->segment_count; i++)
		if (wal->segments[i] == wal->active)
			return i + 1;
	return wal->segment_count;
}

int wal_release_detach(struct wal *wal, uint64_t snapshot_index, size_t keep_files, struct wal_released *out,
		char *err, size_t errlen)
{
	*out = (struct wal_released){.dir_fd = -1};
	if (wal->failed)
		return report_failure(wal, err, errlen);
	if (!wal->has_durable_snapshot || snapshot_index > wal->durable_snapshot_index)
		return wal_error(err, errlen, EINVAL, "%s: no durable snapshot covers index %" PRIu64, wal->dir,
				snapshot_index);
	size_t released = 0, files = wal_segment_files(wal);
	while (released < wal->segment_count && files - released > keep_files) {
		struct wal_segment *segment = wal->segments[released];
		/* Only closed segments: their records are durable and none is referenced by a batch. */
		if (segment->fd >= 0 || !segment->full)
			break;
		if (segment->has_entries && segment->max_index > snapshot_index)
			break;
		released++;
	}
	if (released == 0)
		return 0;
	out->dir_fd = fcntl(wal->dir_fd, F_DUPFD_CLOEXEC, 0);
	if (out->dir_fd < 0)
		return wal_error(err, errlen, errno, "%s: dup: %s", wal->dir, strerror(errno));
	out->dir = strdup(wal->dir);
	out->names = calloc(released, sizeof *out->names);
	if (out->dir == NULL || out->names == NULL) {
		wal_released_free(out);
		return wal_error(err, errlen, ENOMEM, "%s: out of memory", wal->dir);
	}
	for (size_t i = 0; i < released; i++) {
		out->names[i] = strdup(wal->segments[i]->name);
		if (out->names[i] == NULL) {
			wal_released_free(out);
			return wal_error(err, errlen, ENOMEM, "%s: out of memory", wal->dir);
		}
		out->count = i + 1;
	}
	for (size_t i = 0; i < released; i++)
		wal_segment_free(wal->segments[i]);
	memmove(wal->segments, wal->segments + released, (wal->segment_count - released) * sizeof(void *));
	wal->segment_count -= released;
	return 0;
}

int wal_released_remove(struct wal_released *released, char *err, size_t errlen)
{
	int rc = 0;
	for (size_t i = 0; i < released->count && rc == 0; i++)
		if (unlinkat(released->dir_fd, released->names[i], 0) != 0 && errno != ENOENT)
			rc = wal_error(err, errlen, errno, "%s/%s: unlink: %s", released->dir, released->names[i],
					strerror(errno));
	if (rc == 0 && released->count > 0 && fsync(released->dir_fd) != 0)
		rc = wal_error(err, errlen, errno, "%s: fsync after releasing segments: %s", released->dir,
				strerror(errno));
	wal_released_free(released);
	return rc;
}

void wal_released_free(struct wal_released *released)
{
	for (size_t i = 0; i < released->count; i++)
		free(released->names[i]);
	free(released->names);
	free(released->dir);
	if (released->dir_fd >= 0)
		close(released->dir_fd);
	*released = (struct wal_released){.dir_fd = -1};
}

int wal_release_keeping(struct wal *wal, uint64_t snapshot_index, size_t keep_files, char *err, size_t errlen)
{
	struct wal_released released;
	int rc = wal_release_detach(wal, snapshot_index, keep_files, &released, err, errlen);
	return rc != 0 ? rc : wal_released_remove(&released, err, errlen);
}

int wal_submit(struct wal *wal, char *err, size_t errlen)
{
	if (wal->failed || wal_writer_start_batch(wal) != 0)
		return report_failure(wal, err, errlen);
	return 0;
}

static void drain_event_fd(struct wal *wal)
{
	uint64_t count;
	/* Non-blocking: only resets the counter so epoll reports the next completion. */
	if (read(wal->event_fd, &count, sizeof count) < 0 && errno != EAGAIN)
		return;
}

int wal_reap(struct wal *wal, uint64_t *durable_index, char *err, size_t errlen)
{
	drain_event_fd(wal);
	int rc = wal->failed ? wal->failed : wal_writer_process(wal, false);
	if (durable_index != NULL)
		*durable_index = wal->durable_index;
	return rc != 0 ? report_failure(wal, err, errlen) : 0;
}

int wal_wait(struct wal *wal, uint64_t *durable_index, char *err, size_t errlen)
{
	drain_event_fd(wal);
	/* Waiting on records nobody submitted would never end: submit them. */
	int rc = wal->failed ? wal->failed : wal_writer_start_batch(wal);
	if (rc == 0)
		rc = wal_writer_process(wal, true);
	if (durable_index != NULL)
		*durable_index = wal->durable_index;
	return rc != 0 ? report_failure(wal, err, errlen) : 0;
}

int wal_event_fd(const struct wal *wal)
{
	return wal->event_fd;
}

uint64_t wal_durable_index(const struct wal *wal)
{
	return wal->durable_index;
}

uint64_t wal_last_index(const struct wal *wal)
{
	return wal->last_index;
}

bool wal_all_durable(const struct wal *wal)
{
	return wal->pending.count == 0 && wal->batch_count == 0;
}

uint64_t wal_appended_records(const struct wal *wal)
{
	return wal->records_appended;
}

uint64_t wal_durable_records(const struct wal *wal)
{
	return wal->records_durable;
}

uint64_t wal_sync_count(const struct wal *wal)
{
	return wal->sync_count;
}

void wal_close(struct wal *wal)
{
	if (wal == NULL)
		return;
	/* The kernel may still be writing from our buffers or preparing a segment: let it finish. */
	wal_writer_drain(wal);
	wal_writer_destroy(wal);
	for (size_t i = 0; i < wal->segment_count; i++)
		wal_segment_free(wal->segments[i]);
	free(wal->segments);
	wal_recovered_release(wal);
	free(wal->snapshot_metadata);
	if (wal->ring_dir_fd >= 0)
		close(wal->ring_dir_fd);
	if (wal->dir_fd >= 0)
		close(wal->dir_fd);
	free(wal->dir);
	free(wal);
}
