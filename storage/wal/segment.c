/* storage/wal/segment.c: naming, creating, preparing and closing segment files. Preparing (create +
 * fallocate + fsync) happens before a segment is needed, so appends never wait for file creation;
 * writer.c does the same preparation through io_uring when the wal is running. */
#include "segment.h"

#include "error.h"
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void wal_segment_open_name(char *out, uint64_t sequence)
{
	snprintf(out, WAL_SEGMENT_NAME_MAX, "open-%" PRIu64, sequence);
}

void wal_segment_closed_name(char *out, const struct wal_segment *segment)
{
	uint64_t first = segment->has_entries ? segment->first_index : segment->index_before + 1;
	uint64_t last = segment->has_entries ? segment->last_index : segment->index_before;
	snprintf(out, WAL_SEGMENT_NAME_MAX, "%016" PRIx64 "-%016" PRIx64, first, last);
}

static int parse_hex16(const char *text, uint64_t *value)
{
	uint64_t result = 0;
	for (int i = 0; i < 16; i++) {
		char c = text[i];
		int digit;
		if (c >= '0' && c <= '9')
			digit = c - '0';
		else if (c >= 'a' && c <= 'f')
			digit = c - 'a' + 10;
		else
			return 0;
		result = result << 4 | (uint64_t)digit;
	}
	*value = result;
	return 1;
}

int wal_segment_parse_name(const char *name, uint64_t *sequence, uint64_t *first, uint64_t *last)
{
	if (strncmp(name, "open-", 5) == 0) {
		char *end;
		if (name[5] < '0' || name[5] > '9')
			return 0;
		errno = 0;
		unsigned long long value = strtoull(name + 5, &end, 10);
		if (errno != 0 || *end != '\0')
			return 0;
		*sequence = value;
		return 1;
	}
	if (strlen(name) >= 33 && name[16] == '-' && parse_hex16(name, first) && parse_hex16(name + 17, last)) {
		const char *rest = name + 33;
		if (*rest == '\0')
			return 2;
		if (*rest == '.' && rest[1] >= '0' && rest[1] <= '9' && strspn(rest + 1, "0123456789") ==
				strlen(rest + 1))
			return 2;
	}
	return 0;
}

int wal_segment_create(int dir_fd, const char *dir, uint64_t sequence, uint64_t capacity, bool direct_io,
		struct wal_segment **out, char *err, size_t errlen)
{
	struct wal_segment *segment = calloc(1, sizeof *segment);
	if (segment == NULL)
		return wal_error(err, errlen, ENOMEM, "%s: out of memory preparing a segment", dir);
	segment->fd = -1;
	segment->sequence = sequence;
	segment->capacity = capacity;
	wal_segment_open_name(segment->name, sequence);
	if (direct_io) {
		if (posix_memalign((void **)&segment->tail_block, WAL_DIRECT_ALIGNMENT, WAL_DIRECT_ALIGNMENT) != 0) {
			free(segment);
			return wal_error(err, errlen, ENOMEM, "%s: out of memory preparing a segment", dir);
		}
		memset(segment->tail_block, 0, WAL_DIRECT_ALIGNMENT);
	}
	int flags = O_RDWR | O_CREAT | O_CLOEXEC | (direct_io ? O_DIRECT : 0);
	segment->fd = openat(dir_fd, segment->name, flags, 0644);
	if (segment->fd < 0) {
		int rc = wal_error(err, errlen, errno, "%s/%s: open: %s", dir, segment->name, strerror(errno));
		wal_segment_free(segment);
		return rc;
	}
	*out = segment;
	return 0;
}

const uint8_t *wal_zero_buffer(void)
{
	/* Aligned for O_DIRECT; never written, so it stays zero (and in .bss, not in the binary). */
	static _Alignas(WAL_DIRECT_ALIGNMENT) uint8_t zeros[WAL_ZERO_BUFFER_SIZE];
	return zeros;
}

int wal_segment_prepare(int dir_fd, const char *dir, uint64_t sequence, uint64_t capacity, bool direct_io,
		struct wal_segment **out, char *err, size_t errlen)
{
	struct wal_segment *segment;
	int rc = wal_segment_create(dir_fd, dir, sequence, capacity, direct_io, &segment, err, errlen);
	if (rc != 0)
		return rc;
	/* Allocating every block now means a full disk shows up here, before any append depends on it,
	 * and the write path never allocates. */
	if (fallocate(segment->fd, 0, 0, (off_t)capacity) != 0) {
		rc = wal_error(err, errlen, errno, "%s/%s: fallocate %" PRIu64 " bytes: %s", dir, segment->name,
				capacity, strerror(errno));
		wal_segment_discard(dir_fd, segment);
		return rc;
	}
	if (fdatasync(segment->fd) != 0 || fsync(dir_fd) != 0) {
		rc = wal_error(err, errlen, errno, "%s/%s: sync after preallocation: %s", dir, segment->name,
				strerror(errno));
		wal_segment_discard(dir_fd, segment);
		return rc;
	}
	segment->ready = true;
	*out = segment;
	return 0;
}

void wal_segment_discard(int dir_fd, struct wal_segment *segment)
{
	unlinkat(dir_fd, segment->name, 0);
	wal_segment_free(segment);
}

int wal_segment_close(int dir_fd, const char *dir, struct wal_segment *segment, char *err, size_t errlen)
{
	char name[WAL_SEGMENT_NAME_MAX];
	wal_segment_closed_name(name, segment);
	if (renameat2(dir_fd, segment->name, dir_fd, name, RENAME_NOREPLACE) != 0) {
		if (errno != EEXIST)
			return wal_error(err, errlen, errno, "%s/%s: rename to %s: %s", dir, segment->name, name,
					strerror(errno));
		/* Truncations can make two segments cover the same range; the sequence keeps names unique. */
		size_t used = strlen(name);
		snprintf(name + used, sizeof name - used, ".%" PRIu64, segment->sequence);
		if (renameat2(dir_fd, segment->name, dir_fd, name, RENAME_NOREPLACE) != 0)
			return wal_error(err, errlen, errno, "%s/%s: rename to %s: %s", dir, segment->name,
					name, strerror(errno));
	}
	memcpy(segment->name, name, sizeof name);
	wal_segment_close_sync_fds(segment);
	if (fsync(dir_fd) != 0)
		return wal_error(err, errlen, errno, "%s: fsync after renaming %s: %s", dir, name, strerror(errno));
	if (segment->fd >= 0)
		close(segment->fd);
	segment->fd = -1;
	free(segment->tail_block);
	segment->tail_block = NULL;
	return 0;
}

void wal_segment_close_sync_fds(struct wal_segment *segment)
{
	for (unsigned i = 0; i < sizeof segment->sync_fds / sizeof segment->sync_fds[0]; i++)
		if (segment->sync_fd_open & 1u << i)
			close(segment->sync_fds[i]);
	segment->sync_fd_open = 0;
}

void wal_segment_free(struct wal_segment *segment)
{
	if (segment == NULL)
		return;
	wal_segment_close_sync_fds(segment);
	if (segment->fd >= 0)
		close(segment->fd);
	free(segment->tail_block);
	free(segment);
}
