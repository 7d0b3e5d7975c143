/* storage/snap/store.c: the snapshot directory (snap.h). The meta file, all integers big-endian:
 *   "QSNAPMT1" | u64 term | u64 index | u32 record length | record
 *   | u32 file count | per file: u32 name length | name | u64 size
 *   | u32 CRC-32C of everything before it
 * Sizes, not contents, are checked when a snapshot is loaded: a restart then costs a directory listing
 * whatever the state's size, and the table files' contents carry RocksDB's own block checksums, checked
 * on every read of them (and the archive's CRCs guard them on the way to another member). */
#include "snap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h" /* common/ */

#define META_MAGIC "QSNAPMT1"
#define META_NAME "meta"
#define DB_NAME "db"
#define MAX_FILES 1000000u

struct snap_store {
	char *dir;
};

static int snap_error(char *err, size_t errlen, int error_number, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

static int snap_error(char *err, size_t errlen, int error_number, const char *format, ...)
{
	if (err != NULL && errlen > 0) {
		va_list args;
		va_start(args, format);
		vsnprintf(err, errlen, format, args);
		va_end(args);
	}
	return -error_number;
}

static void put_be32(uint8_t *out, uint32_t value)
{
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(value >> (24 - 8 * i));
}

static void put_be64(uint8_t *out, uint64_t value)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(value >> (56 - 8 * i));
}

static uint32_t get_be32(const uint8_t *in)
{
	uint32_t value = 0;
	for (int i = 0; i < 4; i++)
		value = value << 8 | in[i];
	return value;
}

static uint64_t get_be64(const uint8_t *in)
{
	uint64_t value = 0;
	for (int i = 0; i < 8; i++)
		value = value << 8 | in[i];
	return value;
}

/* Paths under the store's directory: its length is checked at open to leave room for any name the
 * store makes, so they never truncate (vsnprintf, since the buffers are sized for that bound). */
static void path_of(char *out, size_t size, const char *format, ...) __attribute__((format(printf, 3, 4)));

static void path_of(char *out, size_t size, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	vsnprintf(out, size, format, args);
	va_end(args);
}

static void snap_name(uint64_t term, uint64_t index, char out[SNAP_NAME_MAX])
{
	snprintf(out, SNAP_NAME_MAX, "%016" PRIx64 "-%016" PRIx64, term, index);
}

/* NAME, NAME.SUFFIX: 1 with term and index set and *suffix pointing after NAME, else 0. */
static int parse_name(const char *name, uint64_t *term, uint64_t *index, const char **suffix)
{
	if (strlen(name) < 33 || name[16] != '-')
		return 0;
	for (int i = 0; i < 33; i++)
		if (i != 16 && !((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	*term = strtoull(name, NULL, 16);
	*index = strtoull(name + 17, NULL, 16);
	*suffix = name + 33;
	return 1;
}

static int fsync_path(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return snap_error(err, errlen, errno, "%s: open: %s", path, strerror(errno));
	int rc = 0;
	if (fsync(fd) != 0)
		rc = snap_error(err, errlen, errno, "%s: fsync: %s", path, strerror(errno));
	close(fd);
	return rc;
}

static int remove_entry(const char *path)
{
	struct stat info;
	if (lstat(path, &info) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(info.st_mode))
		return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
	DIR *dir = opendir(path);
	if (dir == NULL)
		return -1;
	int rc = 0;
	struct dirent *entry;
	while (rc == 0 && (entry = readdir(dir)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		char child[4096];
		if (snprintf(child, sizeof child, "%s/%s", path, entry->d_name) >= (int)sizeof child)
			rc = -1;
		else
			rc = remove_entry(child);
	}
	closedir(dir);
	if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

static int remove_tree(const char *path, char *err, size_t errlen)
{
	if (remove_entry(path) != 0)
		return snap_error(err, errlen, errno ? errno : EIO, "%s: remove: %s", path, strerror(errno));
	return 0;
}

const char *snap_store_dir(const struct snap_store *store)
{
	return store->dir;
}

int snap_store_open(const char *dir, struct snap_store **out, char *err, size_t errlen)
{
	*out = NULL;
	if (strlen(dir) > 3000)
		return snap_error(err, errlen, ENAMETOOLONG, "%s: the snapshot directory's path is too long", dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return snap_error(err, errlen, errno, "%s: mkdir: %s", dir, strerror(errno));
	DIR *listing = opendir(dir);
	if (listing == NULL)
		return snap_error(err, errlen, errno, "%s: open: %s", dir, strerror(errno));
	int rc = 0;
	struct dirent *entry;
	while (rc == 0 && (entry = readdir(listing)) != NULL) {
		uint64_t term, index;
		const char *suffix;
		if (parse_name(entry->d_name, &term, &index, &suffix) && strcmp(suffix, ".tmp") == 0) {
			char path[4096];
			path_of(path, sizeof path, "%s/%s", dir, entry->d_name);
			rc = remove_tree(path, err, errlen);
		}
	}
	closedir(listing);
	if (rc != 0)
		return rc;
	struct snap_store *store = calloc(1, sizeof *store);
	if (store == NULL || (store->dir = strdup(dir)) == NULL) {
		free(store);
		return snap_error(err, errlen, ENOMEM, "%s: out of memory", dir);
	}
	*out = store;
	return 0;
}

void snap_store_close(struct snap_store *store)
{
	if (store == NULL)
		return;
	free(store->dir);
	free(store);
}

static int compare_newest_first(const void *left, const void *right)
{
	const struct snap_info *a = left, *b = right;
	if (a->index != b->index)
		return a->index > b->index ? -1 : 1;
	return a->term > b->term ? -1 : a->term < b->term ? 1 : 0;
}

int snap_store_list(const struct snap_store *store, struct snap_info **out, size_t *count, char *err,
		size_t errlen)
{
	*out = NULL;
	*count = 0;
	DIR *listing = opendir(store->dir);
	if (listing == NULL)
		return snap_error(err, errlen, errno, "%s: open: %s", store->dir, strerror(errno));
	size_t capacity = 0;
	int rc = 0;
	struct dirent *entry;
	while ((entry = readdir(listing)) != NULL) {
		uint64_t term, index;
		const char *suffix;
		if (!parse_name(entry->d_name, &term, &index, &suffix) || *suffix != '\0')
			continue;
		if (*count == capacity) {
			capacity = capacity ? capacity * 2 : 8;
			struct snap_info *grown = realloc(*out, capacity * sizeof *grown);
			if (grown == NULL) {
				rc = snap_error(err, errlen, ENOMEM, "%s: out of memory", store->dir);
				break;
			}
			*out = grown;
		}
		struct snap_info *info = &(*out)[(*count)++];
		info->term = term;
		info->index = index;
		snap_name(term, index, info->name);
	}
	closedir(listing);
	if (rc != 0) {
		free(*out);
		*out = NULL;
		*count = 0;
		return rc;
	}
	if (*count > 1)
		qsort(*out, *count, sizeof **out, compare_newest_first);
	return 0;
}

bool snap_store_find(const struct snap_store *store, uint64_t index, struct snap_info *out)
{
	struct snap_info *list;
	size_t count;
	if (snap_store_list(store, &list, &count, NULL, 0) != 0)
		return false;
	bool found = false;
	for (size_t i = 0; i < count && !found; i++) {
		if (list[i].index == index) {
			*out = list[i];
			found = true;
		}
	}
	free(list);
	return found;
}

void snap_store_db_path(const struct snap_store *store, const struct snap_info *info, char *out, size_t size)
{
	path_of(out, size, "%s/%s/%s", store->dir, info->name, DB_NAME);
}

/* ---- meta ---- */

struct file_entry {
	char *name;
	uint64_t size;
};

struct file_list {
	struct file_entry *items;
	size_t count;
};

static void file_list_free(struct file_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i].name);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

static int compare_entries(const void *left, const void *right)
{
	return strcmp(((const struct file_entry *)left)->name, ((const struct file_entry *)right)->name);
}

/* The regular files of db/ with their sizes, sorted by name. */
static int list_db(const char *db, struct file_list *list, char *err, size_t errlen)
{
	list->items = NULL;
	list->count = 0;
	DIR *listing = opendir(db);
	if (listing == NULL)
		return snap_error(err, errlen, errno, "%s: open: %s", db, strerror(errno));
	size_t capacity = 0;
	int rc = 0;
	struct dirent *entry;
	while (rc == 0 && (entry = readdir(listing)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		char path[4096];
		path_of(path, sizeof path, "%s/%s", db, entry->d_name);
		struct stat info;
		if (lstat(path, &info) != 0) {
			rc = snap_error(err, errlen, errno, "%s: stat: %s", path, strerror(errno));
			break;
		}
		if (!S_ISREG(info.st_mode)) {
			rc = snap_error(err, errlen, EINVAL, "%s: not a regular file", path);
			break;
		}
		if (list->count == capacity) {
			capacity = capacity ? capacity * 2 : 32;
			struct file_entry *grown = realloc(list->items, capacity * sizeof *grown);
			if (grown == NULL) {
				rc = snap_error(err, errlen, ENOMEM, "%s: out of memory", db);
				break;
			}
			list->items = grown;
		}
		struct file_entry *item = &list->items[list->count];
		item->name = strdup(entry->d_name);
		item->size = (uint64_t)info.st_size;
		if (item->name == NULL)
			rc = snap_error(err, errlen, ENOMEM, "%s: out of memory", db);
		else
			list->count++;
	}
	closedir(listing);
	if (rc != 0)
		file_list_free(list);
	else if (list->count > 1)
		qsort(list->items, list->count, sizeof *list->items, compare_entries);
	return rc;
}

static int write_all(int fd, const uint8_t *bytes, size_t length)
{
	while (length > 0) {
		ssize_t wrote = write(fd, bytes, length);
		if (wrote < 0 && errno == EINTR)
			continue;
		if (wrote <= 0)
			return -1;
		bytes += wrote;
		length -= (size_t)wrote;
	}
	return 0;
}

/* Writes DIR/NAME.SUFFIX/meta for its db/ and fsyncs it and the directory. */
static int write_meta(const char *snapshot_dir, uint64_t term, uint64_t index, const void *record,
		size_t record_length, char *err, size_t errlen)
{
	if (record_length > SNAP_RECORD_MAX)
		return snap_error(err, errlen, E2BIG, "%s: a Raft record of %zu bytes is over %u", snapshot_dir,
				record_length, SNAP_RECORD_MAX);
	char db[4096], path[4096];
	path_of(db, sizeof db, "%s/%s", snapshot_dir, DB_NAME);
	path_of(path, sizeof path, "%s/%s", snapshot_dir, META_NAME);
	struct file_list files;
	int rc = list_db(db, &files, err, errlen);
	if (rc != 0)
		return rc;
	size_t size = 8 + 8 + 8 + 4 + record_length + 4 + 4;
	for (size_t i = 0; i < files.count; i++)
		size += 4 + strlen(files.items[i].name) + 8;
	uint8_t *bytes = malloc(size);
	if (bytes == NULL) {
		file_list_free(&files);
		return snap_error(err, errlen, ENOMEM, "%s: out of memory", path);
	}
	uint8_t *at = bytes;
	memcpy(at, META_MAGIC, 8);
	put_be64(at + 8, term);
	put_be64(at + 16, index);
	put_be32(at + 24, (uint32_t)record_length);
	at += 28;
	if (record_length)
		memcpy(at, record, record_length);
	at += record_length;
	put_be32(at, (uint32_t)files.count);
	at += 4;
	for (size_t i = 0; i < files.count; i++) {
		size_t name_length = strlen(files.items[i].name);
		put_be32(at, (uint32_t)name_length);
		memcpy(at + 4, files.items[i].name, name_length);
		put_be64(at + 4 + name_length, files.items[i].size);
		at += 4 + name_length + 8;
	}
	put_be32(at, crc32c(0, bytes, (size_t)(at - bytes)));
	file_list_free(&files);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, bytes, size) != 0 || fsync(fd) != 0)
		rc = snap_error(err, errlen, errno ? errno : EIO, "%s: write: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(bytes);
	if (rc == 0)
		rc = fsync_path(db, err, errlen);
	if (rc == 0)
		rc = fsync_path(snapshot_dir, err, errlen);
	return rc;
}

/* Renames DIR/FROM to DIR/TO (replacing nothing) and makes the rename durable. */
static int publish(const struct snap_store *store, const char *from, const char *to, char *err, size_t errlen)
{
	char from_path[4096], to_path[4096];
	path_of(from_path, sizeof from_path, "%s/%s", store->dir, from);
	path_of(to_path, sizeof to_path, "%s/%s", store->dir, to);
	if (access(to_path, F_OK) == 0)
		return snap_error(err, errlen, EEXIST, "%s: a snapshot of that name exists", to_path);
	if (rename(from_path, to_path) != 0)
		return snap_error(err, errlen, errno, "%s: rename to %s: %s", from_path, to, strerror(errno));
	return fsync_path(store->dir, err, errlen);
}

int snap_store_load(const struct snap_store *store, const struct snap_info *info, uint8_t **record,
		size_t *record_length, char *err, size_t errlen)
{
	*record = NULL;
	*record_length = 0;
	char path[4096], db[4096];
	path_of(path, sizeof path, "%s/%s/%s", store->dir, info->name, META_NAME);
	snap_store_db_path(store, info, db, sizeof db);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat stat_info;
	if (fd < 0 || fstat(fd, &stat_info) != 0) {
		int rc = snap_error(err, errlen, errno, "%s: open: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	size_t size = (size_t)stat_info.st_size;
	uint8_t *bytes = size >= 36 && size <= SNAP_RECORD_MAX + (size_t)64 * MAX_FILES ? malloc(size) : NULL;
	size_t done = 0;
	while (bytes != NULL && done < size) {
		ssize_t got = read(fd, bytes + done, size - done);
		if (got <= 0)
			break;
		done += (size_t)got;
	}
	close(fd);
	if (bytes == NULL || done != size) {
		free(bytes);
		return snap_error(err, errlen, EBADMSG, "%s: unreadable or impossible size (%zu bytes)", path, size);
	}
	int rc = 0;
	struct file_list files = {0};
	const uint8_t *at = bytes, *end = bytes + size - 4;
	if (get_be32(end) != crc32c(0, bytes, size - 4)) {
		rc = snap_error(err, errlen, EBADMSG, "%s: checksum mismatch", path);
		goto out;
	}
	if (memcmp(at, META_MAGIC, 8) != 0 || get_be64(at + 8) != info->term || get_be64(at + 16) != info->index) {
		rc = snap_error(err, errlen, EBADMSG, "%s: not the meta of snapshot %s", path, info->name);
		goto out;
	}
	uint32_t length = get_be32(at + 24);
	at += 28;
	if (length > (size_t)(end - at) || (size_t)(end - at) - length < 4) {
		rc = snap_error(err, errlen, EBADMSG, "%s: record length %u overruns the file", path, length);
		goto out;
	}
	const uint8_t *record_bytes = at;
	at += length;
	uint32_t file_count = get_be32(at);
	at += 4;
	rc = list_db(db, &files, err, errlen);
	if (rc != 0)
		goto out;
	/* Both lists are sorted by name: walk them together, so a fault names the file. */
	size_t have_at = 0;
	for (uint32_t i = 0; i < file_count; i++) {
		if ((size_t)(end - at) < 4 || (size_t)(end - at) - 4 < get_be32(at) + (size_t)8) {
			rc = snap_error(err, errlen, EBADMSG, "%s: file list overruns the file", path);
			goto out;
		}
		uint32_t name_length = get_be32(at);
		const char *name = (const char *)at + 4;
		uint64_t file_size = get_be64(at + 4 + name_length);
		at += 4 + name_length + 8;
		const struct file_entry *have = have_at < files.count ? &files.items[have_at] : NULL;
		int order = have == NULL ? 1 : strncmp(have->name, name, name_length);
		if (order == 0 && strlen(have->name) != name_length)
			order = 1;
		if (order < 0) {
			rc = snap_error(err, errlen, EBADMSG, "%s/%s: not in the snapshot (%s does not list it)", db,
					have->name, path);
			goto out;
		}
		if (order > 0) {
			rc = snap_error(err, errlen, EBADMSG, "%s/%.*s: missing (%s lists it)", db, (int)name_length, name,
					path);
			goto out;
		}
		if (have->size != file_size) {
			rc = snap_error(err, errlen, EBADMSG, "%s/%s: %" PRIu64 " bytes, the snapshot recorded %" PRIu64,
					db, have->name, have->size, file_size);
			goto out;
		}
		have_at++;
	}
	if (have_at < files.count) {
		rc = snap_error(err, errlen, EBADMSG, "%s/%s: not in the snapshot (%s does not list it)", db,
				files.items[have_at].name, path);
		goto out;
	}
	if (at != end) {
		rc = snap_error(err, errlen, EBADMSG, "%s: %zu bytes after the file list", path, (size_t)(end - at));
		goto out;
	}
	*record = malloc(length ? length : 1);
	if (*record == NULL) {
		rc = snap_error(err, errlen, ENOMEM, "%s: out of memory", path);
		goto out;
	}
	memcpy(*record, record_bytes, length);
	*record_length = length;
out:
	file_list_free(&files);
	free(bytes);
	return rc;
}

int snap_store_mark_broken(const struct snap_store *store, const struct snap_info *info, char *err, size_t errlen)
{
	char from[4096], to[4096];
	path_of(from, sizeof from, "%s/%s", store->dir, info->name);
	path_of(to, sizeof to, "%s/%s.broken", store->dir, info->name);
	int rc = remove_tree(to, err, errlen);
	if (rc != 0)
		return rc;
	if (rename(from, to) != 0)
		return snap_error(err, errlen, errno, "%s: rename to %s.broken: %s", from, info->name, strerror(errno));
	return fsync_path(store->dir, err, errlen);
}

int snap_store_create(const struct snap_store *store, struct state *state, uint64_t term, const void *record,
		size_t record_length, struct snap_info *out, char *err, size_t errlen)
{
	uint64_t index = state_applied_index(state);
	char name[SNAP_NAME_MAX], temporary[SNAP_NAME_MAX + 8];
	snap_name(term, index, name);
	snprintf(temporary, sizeof temporary, "%s.tmp", name);
	char snapshot_dir[4096], db[4096];
	path_of(snapshot_dir, sizeof snapshot_dir, "%s/%s", store->dir, temporary);
	path_of(db, sizeof db, "%s/%s", snapshot_dir, DB_NAME);
	int rc = remove_tree(snapshot_dir, err, errlen);
	if (rc != 0)
		return rc;
	if (mkdir(snapshot_dir, 0700) != 0)
		return snap_error(err, errlen, errno, "%s: mkdir: %s", snapshot_dir, strerror(errno));
	uint64_t checkpoint_index = 0;
	char state_error[256];
	if (state_checkpoint(state, db, &checkpoint_index, state_error, sizeof state_error) != STATE_OK)
		rc = snap_error(err, errlen, EIO, "%s: %s", db, state_error);
	else if (checkpoint_index != index)
		rc = snap_error(err, errlen, EINVAL, "%s: the checkpoint holds index %" PRIu64 ", not %" PRIu64
				" (a batch is open)", db, checkpoint_index, index);
	if (rc == 0)
		rc = write_meta(snapshot_dir, term, index, record, record_length, err, errlen);
	if (rc == 0)
		rc = publish(store, temporary, name, err, errlen);
	if (rc == -EEXIST) {
		/* One of this term and index is here already (received from the leader): the same applied
		 * state, so it serves as this one. */
		rc = 0;
		remove_entry(snapshot_dir);
	}
	if (rc != 0) {
		remove_entry(snapshot_dir);
		return rc;
	}
	out->term = term;
	out->index = index;
	memcpy(out->name, name, sizeof name);
	return 0;
}

int snap_store_incoming(const struct snap_store *store, uint64_t term, uint64_t index, char *db_path,
		size_t size, char *err, size_t errlen)
{
	char name[SNAP_NAME_MAX], wanted[SNAP_NAME_MAX + 16];
	snap_name(term, index, name);
	snprintf(wanted, sizeof wanted, "%s.incoming", name);
	DIR *listing = opendir(store->dir);
	if (listing == NULL)
		return snap_error(err, errlen, errno, "%s: open: %s", store->dir, strerror(errno));
	int rc = 0;
	struct dirent *entry;
	while (rc == 0 && (entry = readdir(listing)) != NULL) {
		uint64_t other_term, other_index;
		const char *suffix;
		if (parse_name(entry->d_name, &other_term, &other_index, &suffix) && strcmp(suffix, ".incoming") == 0 &&
				strcmp(entry->d_name, wanted) != 0) {
			char path[4096];
			path_of(path, sizeof path, "%s/%s", store->dir, entry->d_name);
			rc = remove_tree(path, err, errlen);
		}
	}
	closedir(listing);
	if (rc != 0)
		return rc;
	char snapshot_dir[4096];
	path_of(snapshot_dir, sizeof snapshot_dir, "%s/%s", store->dir, wanted);
	if (mkdir(snapshot_dir, 0700) != 0 && errno != EEXIST)
		return snap_error(err, errlen, errno, "%s: mkdir: %s", snapshot_dir, strerror(errno));
	path_of(db_path, size, "%s/%s", snapshot_dir, DB_NAME);
	return 0;
}

int snap_store_commit_incoming(const struct snap_store *store, uint64_t term, uint64_t index, const void *record,
		size_t record_length, struct snap_info *out, char *err, size_t errlen)
{
	char name[SNAP_NAME_MAX], incoming[SNAP_NAME_MAX + 16];
	snap_name(term, index, name);
	snprintf(incoming, sizeof incoming, "%s.incoming", name);
	char snapshot_dir[4096];
	path_of(snapshot_dir, sizeof snapshot_dir, "%s/%s", store->dir, incoming);
	char existing[4096];
	path_of(existing, sizeof existing, "%s/%s", store->dir, name);
	int rc;
	if (access(existing, F_OK) == 0) {
		/* A snapshot of this term and index was taken here: the same applied state, and possibly the
		 * one the WAL's marker names, so it stays and the received copy goes. */
		rc = remove_tree(snapshot_dir, err, errlen);
	} else {
		rc = write_meta(snapshot_dir, term, index, record, record_length, err, errlen);
		if (rc == 0)
			rc = publish(store, incoming, name, err, errlen);
	}
	if (rc != 0)
		return rc;
	out->term = term;
	out->index = index;
	memcpy(out->name, name, sizeof name);
	return 0;
}

int snap_store_drop_incoming(const struct snap_store *store, uint64_t term, uint64_t index, char *err, size_t errlen)
{
	char name[SNAP_NAME_MAX], path[4096];
	snap_name(term, index, name);
	path_of(path, sizeof path, "%s/%s.incoming", store->dir, name);
	return remove_tree(path, err, errlen);
}

int snap_store_prune(const struct snap_store *store, size_t keep, char *err, size_t errlen)
{
	struct snap_info *list;
	size_t count;
	int rc = snap_store_list(store, &list, &count, err, errlen);
	if (rc != 0 || keep == 0 || count <= keep) {
		free(list);
		return rc;
	}
	uint64_t oldest_kept = list[keep - 1].index;
	for (size_t i = keep; i < count && rc == 0; i++) {
		char path[4096];
		path_of(path, sizeof path, "%s/%s", store->dir, list[i].name);
		rc = remove_tree(path, err, errlen);
	}
	free(list);
	DIR *listing = rc == 0 ? opendir(store->dir) : NULL;
	struct dirent *entry;
	while (listing != NULL && rc == 0 && (entry = readdir(listing)) != NULL) {
		uint64_t term, index;
		const char *suffix;
		if (parse_name(entry->d_name, &term, &index, &suffix) && strcmp(suffix, ".incoming") == 0 &&
				index < oldest_kept) {
			char path[4096];
			path_of(path, sizeof path, "%s/%s", store->dir, entry->d_name);
			rc = remove_tree(path, err, errlen);
		}
	}
	if (listing != NULL)
		closedir(listing);
	if (rc == 0)
		rc = fsync_path(store->dir, err, errlen);
	return rc;
}
