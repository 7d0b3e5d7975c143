/* storage/state/snapshot.c: streams the committed state as a snapshot. A RocksDB checkpoint (hard
 * links to the immutable SST files plus a copied manifest and log) freezes the state at once, then the
 * stream reads its files at the receiver's pace in chunks of the caller's size, so applying can go
 * on meanwhile. The checkpoint directory is removed on close, or at the next open after a crash. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "crc32c.h" /* common/ */
#include "internal.h"
#include "keys.h"

struct state_snapshot {
    char *directory;
    char **names; /* sorted: the same state gives the same stream */
    size_t name_count;
    size_t next_file;
    uint64_t applied_index;
    uint8_t pending[STATE_ARCHIVE_FILE_HEAD_MAX]; /* framing bytes not yet handed out */
    size_t pending_len;
    size_t pending_at;
    int fd; /* file being streamed, -1 between files */
    uint64_t remaining;
    uint32_t data_crc;
    bool trailer_queued;
};

static int compare_names(const void *left, const void *right)
{
    return strcmp(*(char *const *)left, *(char *const *)right);
}

static int list_files(struct state_snapshot *snapshot, char *err, size_t err_len)
{
    DIR *dir = opendir(snapshot->directory);
    if (dir == NULL)
        return state_fail(err, err_len, STATE_ERR_IO, "opendir %s: %s", snapshot->directory,
                          strerror(errno));
    size_t capacity = 0;
    int status = STATE_OK;
    struct dirent *entry;
    while (status == STATE_OK && (entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (strlen(entry->d_name) > STATE_ARCHIVE_NAME_MAX) {
            status = state_fail(err, err_len, STATE_ERR_INVALID, "file name %s too long",
                                entry->d_name);
            break;
        }
        if (snapshot->name_count == capacity) {
            capacity = capacity ? capacity * 2 : 16;
            char **names = realloc(snapshot->names, capacity * sizeof *names);
            if (names == NULL) {
                status = state_fail(err, err_len, STATE_ERR_NOMEM, "file list");
                break;
            }
            snapshot->names = names;
        }
        char *name = strdup(entry->d_name);
        if (name == NULL)
            status = state_fail(err, err_len, STATE_ERR_NOMEM, "file list");
        else
            snapshot->names[snapshot->name_count++] = name;
    }
    closedir(dir);
    if (status == STATE_OK && snapshot->name_count > 1)
        qsort(snapshot->names, snapshot->name_count, sizeof *snapshot->names, compare_names);
    return status;
}

static void queue_header(struct state_snapshot *snapshot)
{
    uint8_t *out = snapshot->pending;
    memcpy(out, STATE_ARCHIVE_MAGIC, 8);
    state_put_be32(out + 8, STATE_ARCHIVE_VERSION);
    state_put_be32(out + 12, (uint32_t)snapshot->name_count);
    state_put_be64(out + 16, snapshot->applied_index);
    state_put_be32(out + 24, 0);
    state_put_be32(out + 28, crc32c(0, out, 28));
    snapshot->pending_len = STATE_ARCHIVE_HEADER_LEN;
    snapshot->pending_at = 0;
}

int state_snapshot_open(struct state *state, struct state_snapshot **out, char *err,
                        size_t err_len)
{
    *out = NULL;
    if (state->db == NULL)
        return state_fail(err, err_len, STATE_ERR_INVALID, "the state is closed");
    struct state_snapshot *snapshot = calloc(1, sizeof *snapshot);
    if (snapshot == NULL)
        return state_fail(err, err_len, STATE_ERR_NOMEM, "snapshot");
    snapshot->fd = -1;
    char name[48];
    snprintf(name, sizeof name, "snapshot.%u", ++state->snapshot_sequence);
    snapshot->directory = state_path_join(state->root, name);
    if (snapshot->directory == NULL) {
        free(snapshot);
        return state_fail(err, err_len, STATE_ERR_NOMEM, "path");
    }
    state_remove_tree(snapshot->directory);
    /* The checkpoint holds exactly what was committed: the open batch, if any, is not in the DB. */
    snapshot->applied_index = state->committed.applied_index;
    char *error = NULL;
    rocksdb_checkpoint_t *checkpoint = rocksdb_checkpoint_object_create(state->db, &error);
    if (error == NULL) {
        rocksdb_checkpoint_create(checkpoint, snapshot->directory, 0, &error);
        rocksdb_checkpoint_object_destroy(checkpoint);
    }
    int status = STATE_OK;
    if (error != NULL)
        status = state_fail_rocksdb(err, err_len, error, "checkpoint");
    else
        status = list_files(snapshot, err, err_len);
    if (status != STATE_OK) {
        state_snapshot_close(snapshot);
        return status;
    }
    queue_header(snapshot);
    *out = snapshot;
    return STATE_OK;
}

uint64_t state_snapshot_applied_index(const struct state_snapshot *snapshot)
{
    return snapshot->applied_index;
}

/* Opens the next file and queues its head. */
static int start_file(struct state_snapshot *snapshot, char *err, size_t err_len)
{
    const char *name = snapshot->names[snapshot->next_file];
    char *path = state_path_join(snapshot->directory, name);
    if (path == NULL)
        return state_fail(err, err_len, STATE_ERR_NOMEM, "path");
    snapshot->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (snapshot->fd < 0 || fstat(snapshot->fd, &info) != 0) {
        int status = state_fail(err, err_len, STATE_ERR_IO, "open %s: %s", path, strerror(errno));
        free(path);
        return status;
    }
    free(path);
    size_t name_len = strlen(name);
    uint8_t *out = snapshot->pending;
    state_put_be32(out, (uint32_t)name_len);
    memcpy(out + 4, name, name_len);
    state_put_be64(out + 4 + name_len, (uint64_t)info.st_size);
    state_put_be32(out + 12 + name_len, crc32c(0, out, 12 + name_len));
    snapshot->pending_len = 16 + name_len;
    snapshot->pending_at = 0;
    snapshot->remaining = (uint64_t)info.st_size;
    snapshot->data_crc = 0;
    return STATE_OK;
}

int state_snapshot_next_chunk(struct state_snapshot *snapshot, uint8_t *buf, size_t capacity,
                              size_t *len, char *err, size_t err_len)
{
    size_t used = 0;
    while (used < capacity) {
        if (snapshot->pending_at < snapshot->pending_len) {
            size_t take = snapshot->pending_len - snapshot->pending_at;
            if (take > capacity - used)
                take = capacity - used;
            memcpy(buf + used, snapshot->pending + snapshot->pending_at, take);
            snapshot->pending_at += take;
            used += take;
        } else if (snapshot->fd >= 0 && snapshot->remaining > 0) {
            size_t want = capacity - used;
            if (want > snapshot->remaining)
                want = (size_t)snapshot->remaining;
            ssize_t got = read(snapshot->fd, buf + used, want);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                return state_fail(err, err_len, STATE_ERR_IO, "read %s: %s",
                                  snapshot->names[snapshot->next_file],
                                  got < 0 ? strerror(errno) : "file shrank");
            snapshot->data_crc = crc32c(snapshot->data_crc, buf + used, (size_t)got);
            snapshot->remaining -= (uint64_t)got;
            used += (size_t)got;
        } else if (snapshot->fd >= 0) {
            close(snapshot->fd);
            snapshot->fd = -1;
            snapshot->next_file++;
            state_put_be32(snapshot->pending, snapshot->data_crc);
            snapshot->pending_len = 4;
            snapshot->pending_at = 0;
        } else if (snapshot->next_file < snapshot->name_count) {
            int status = start_file(snapshot, err, err_len);
            if (status != STATE_OK)
                return status;
        } else if (!snapshot->trailer_queued) {
            uint8_t *out = snapshot->pending;
            memcpy(out, STATE_ARCHIVE_END_MAGIC, 8);
            state_put_be32(out + 8, (uint32_t)snapshot->name_count);
            state_put_be32(out + 12, crc32c(0, out, 12));
            snapshot->pending_len = STATE_ARCHIVE_TRAILER_LEN;
            snapshot->pending_at = 0;
            snapshot->trailer_queued = true;
        } else {
            break; /* complete */
        }
    }
    *len = used;
    return STATE_OK;
}

void state_snapshot_close(struct state_snapshot *snapshot)
{
    if (snapshot == NULL)
        return;
    if (snapshot->fd >= 0)
        close(snapshot->fd);
    for (size_t i = 0; i < snapshot->name_count; i++)
        free(snapshot->names[i]);
    free(snapshot->names);
    if (snapshot->directory != NULL)
        state_remove_tree(snapshot->directory);
    free(snapshot->directory);
    free(snapshot);
}
