/* storage/state/restore.c: installs a snapshot stream in place of the state. The stream is unpacked
 * and checked into root/incoming.<n>, fsync'd, renamed to root/db.<next generation>, and made live by
 * renaming a new root/current link over the old one: that rename is the commit point. A crash before
 * it leaves the old state (state_open removes the leftovers), after it the new one. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "crc32c.h" /* common/ */
#include "internal.h"
#include "keys.h"

enum restore_phase {
    PHASE_HEADER,
    PHASE_NAME_LENGTH,
    PHASE_FILE_HEAD,
    PHASE_FILE_DATA,
    PHASE_FILE_CRC,
    PHASE_TRAILER,
    PHASE_DONE,
    PHASE_FAILED,
};

struct state_restore {
    struct state *state;
    char *directory;
    enum restore_phase phase;
    uint8_t head[STATE_ARCHIVE_FILE_HEAD_MAX]; /* framing bytes being collected */
    size_t head_have;
    size_t head_need;
    uint32_t file_count;
    uint32_t files_done;
    uint64_t applied_index;
    int fd;
    uint64_t remaining;
    uint32_t data_crc;
    int crash_step;
};

static void expect(struct state_restore *restore, enum restore_phase phase, size_t need)
{
    restore->phase = phase;
    restore->head_have = 0;
    restore->head_need = need;
}

int state_restore_begin(struct state *state, struct state_restore **out, char *err,
                        size_t err_len)
{
    *out = NULL;
    if (state->db == NULL)
        return state_fail(err, err_len, STATE_ERR_INVALID, "the state is closed");
    struct state_restore *restore = calloc(1, sizeof *restore);
    if (restore == NULL)
        return state_fail(err, err_len, STATE_ERR_NOMEM, "restore");
    restore->state = state;
    restore->fd = -1;
    char name[48];
    snprintf(name, sizeof name, "incoming.%u", ++state->snapshot_sequence);
    restore->directory = state_path_join(state->root, name);
    if (restore->directory == NULL) {
        free(restore);
        return state_fail(err, err_len, STATE_ERR_NOMEM, "path");
    }
    state_remove_tree(restore->directory);
    if (mkdir(restore->directory, 0700) != 0) {
        int status = state_fail(err, err_len, STATE_ERR_IO, "mkdir %s: %s", restore->directory,
                                strerror(errno));
        state_restore_abort(restore);
        return status;
    }
    expect(restore, PHASE_HEADER, STATE_ARCHIVE_HEADER_LEN);
    *out = restore;
    return STATE_OK;
}

void state_restore_set_crash_step(struct state_restore *restore, int step)
{
    restore->crash_step = step;
}

static bool safe_name(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

/* Acts on a completed head (header, name length, file head, data crc, trailer). */
static int head_complete(struct state_restore *restore, char *err, size_t err_len)
{
    const uint8_t *head = restore->head;
    switch (restore->phase) {
    case PHASE_HEADER:
        if (memcmp(head, STATE_ARCHIVE_MAGIC, 8) != 0 ||
            state_get_be32(head + 8) != STATE_ARCHIVE_VERSION ||
            state_get_be32(head + 28) != crc32c(0, head, 28))
            return state_fail(err, err_len, STATE_ERR_CORRUPT, "snapshot header");
        restore->file_count = state_get_be32(head + 12);
        restore->applied_index = state_get_be64(head + 16);
        if (restore->file_count == 0)
            expect(restore, PHASE_TRAILER, STATE_ARCHIVE_TRAILER_LEN);
        else
            expect(restore, PHASE_NAME_LENGTH, 4);
        return STATE_OK;
    case PHASE_NAME_LENGTH: {
        uint32_t name_len = state_get_be32(head);
        if (name_len == 0 || name_len > STATE_ARCHIVE_NAME_MAX)
            return state_fail(err, err_len, STATE_ERR_CORRUPT, "file name length %u", name_len);
        restore->phase = PHASE_FILE_HEAD; /* keep the 4 bytes: the crc covers them */
        restore->head_need = 4 + name_len + 12;
        return STATE_OK;
    }
    case PHASE_FILE_HEAD: {
        size_t name_len = restore->head_need - 16;
        if (state_get_be32(head + 12 + name_len) != crc32c(0, head, 12 + name_len))
            return state_fail(err, err_len, STATE_ERR_CORRUPT, "file head %u",
                              restore->files_done);
        char name[STATE_ARCHIVE_NAME_MAX + 1];
        memcpy(name, head + 4, name_len);
        name[name_len] = '\0';
        if (!safe_name(name) || memchr(name, '\0', name_len) != NULL)
            return state_fail(err, err_len, STATE_ERR_CORRUPT, "file name '%s'", name);
        char *path = state_path_join(restore->directory, name);
        if (path == NULL)
            return state_fail(err, err_len, STATE_ERR_NOMEM, "path");
        restore->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (restore->fd < 0) {
            int status = state_fail(err, err_len, STATE_ERR_IO, "create %s: %s", path,
                                    strerror(errno));
            free(path);
            return status;
        }
        free(path);
        restore->remaining = state_get_be64(head + 4 + name_len);
        restore->data_crc = 0;
        if (restore->remaining > 0)
            restore->phase = PHASE_FILE_DATA;
        else
            expect(restore, PHASE_FILE_CRC, 4);
        return STATE_OK;
    }
    case PHASE_FILE_CRC: {
        if (state_get_be32(head) != restore->data_crc)
            return state_fail(err, err_len, STATE_ERR_CORRUPT, "data of file %u fails its crc",
                              restore->files_done);
        int synced = fsync(restore->fd);
        close(restore->fd);
        restore->fd = -1;
        if (synced != 0)
            return state_fail(err, err_len, STATE_ERR_IO, "fsync: %s", strerror(errno));
        restore->files_done++;
        if (restore->files_done == restore->file_count)
            expect(restore, PHASE_TRAILER, STATE_ARCHIVE_TRAILER_LEN);
        else
            expect(restore, PHASE_NAME_LENGTH, 4);
        return STATE_OK;
    }
    case PHASE_TRAILER:
        if (memcmp(head, STATE_ARCHIVE_END_MAGIC, 8) != 0 ||
            state_get_be32(head + 8) != restore->file_count ||
            state_get_be32(head + 12) != crc32c(0, head, 12))
            return state_fail(err, err_len, STATE_ERR_CORRUPT, "snapshot trailer");
        restore->phase = PHASE_DONE;
        return STATE_OK;
    default:
        return state_fail(err, err_len, STATE_ERR_CORRUPT, "restore phase %d",
                          (int)restore->phase);
    }
}

static int write_data(struct state_restore *restore, const uint8_t *data, size_t len, char *err,
                      size_t err_len)
{
    restore->data_crc = crc32c(restore->data_crc, data, len);
    while (len > 0) {
        ssize_t wrote = write(restore->fd, data, len);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            return state_fail(err, err_len, STATE_ERR_IO, "write snapshot file: %s",
                              wrote < 0 ? strerror(errno) : "no progress");
        data += wrote;
        len -= (size_t)wrote;
    }
    return STATE_OK;
}

int state_restore_write(struct state_restore *restore, const uint8_t *chunk, size_t len, char *err,
                        size_t err_len)
{
    int status = STATE_OK;
    while (status == STATE_OK && len > 0) {
        if (restore->phase == PHASE_FAILED)
            return state_fail(err, err_len, STATE_ERR_INVALID, "the restore already failed");
        if (restore->phase == PHASE_DONE) {
            status = state_fail(err, err_len, STATE_ERR_CORRUPT, "%zu bytes after the trailer",
                                len);
            break;
        }
        if (restore->phase == PHASE_FILE_DATA) {
            size_t take = len < restore->remaining ? len : (size_t)restore->remaining;
            status = write_data(restore, chunk, take, err, err_len);
            chunk += take;
            len -= take;
            restore->remaining -= take;
            if (status == STATE_OK && restore->remaining == 0)
                expect(restore, PHASE_FILE_CRC, 4);
            continue;
        }
        size_t take = restore->head_need - restore->head_have;
        if (take > len)
            take = len;
        memcpy(restore->head + restore->head_have, chunk, take);
        restore->head_have += take;
        chunk += take;
        len -= take;
        if (restore->head_have == restore->head_need)
            status = head_complete(restore, err, err_len);
    }
    if (status != STATE_OK)
        restore->phase = PHASE_FAILED;
    return status;
}

/* Stops as a crash at `step` would: the process dies, the files stay as they are. */
static bool crash_here(struct state_restore *restore, int step, int *status, char *err,
                       size_t err_len)
{
    if (restore->crash_step != step)
        return false;
    state_db_close(restore->state);
    *status = state_fail(err, err_len, STATE_ERR_IO, "simulated crash after restore step %d",
                         step);
    return true;
}

/* Opens the unpacked RocksDB once: proves it is usable and stamps the local member id. */
static int prepare_incoming(struct state_restore *restore, char *err, size_t err_len)
{
    struct state *state = restore->state;
    char *error = NULL;
    rocksdb_t *db = rocksdb_open(state->options, restore->directory, &error);
    if (error != NULL)
        return state_fail_rocksdb(err, err_len, error, "open the restored snapshot");
    int status = STATE_OK;
    if (state->committed.member_id != 0)
        status = state_meta_put_member_id(db, state->sync_write_options,
                                          state->committed.member_id, err, err_len);
    rocksdb_close(db);
    if (status == STATE_OK)
        status = state_fsync_directory_files(restore->directory, err, err_len);
    return status;
}

int state_restore_finish(struct state_restore *restore, char *err, size_t err_len)
{
    struct state *state = restore->state;
    int status = STATE_OK;
    if (restore->phase != PHASE_DONE)
        status = state_fail(err, err_len, STATE_ERR_CORRUPT, "the snapshot stream is incomplete");
    else if (state->db == NULL)
        status = state_fail(err, err_len, STATE_ERR_INVALID, "the state is closed");
    else if (state->batch_open)
        status = state_fail(err, err_len, STATE_ERR_BATCH_OPEN, "commit or abort it first");
    if (status == STATE_OK)
        status = prepare_incoming(restore, err, err_len);
    if (status != STATE_OK) {
        state_restore_abort(restore);
        return status;
    }
    if (crash_here(restore, 1, &status, err, err_len))
        goto out;

    unsigned old_generation = state->generation;
    unsigned new_generation = old_generation + 1;
    char name[32];
    snprintf(name, sizeof name, "db.%u", new_generation);
    char *new_dir = state_path_join(state->root, name);
    snprintf(name, sizeof name, "db.%u", old_generation);
    char *old_dir = state_path_join(state->root, name);
    char *link = state_path_join(state->root, "current");
    char *link_temp = state_path_join(state->root, "current.tmp");
    if (new_dir == NULL || old_dir == NULL || link == NULL || link_temp == NULL) {
        status = state_fail(err, err_len, STATE_ERR_NOMEM, "path");
        state_remove_tree(restore->directory);
        goto out_paths;
    }
    state_remove_tree(new_dir);
    if (rename(restore->directory, new_dir) != 0) {
        status = state_fail(err, err_len, STATE_ERR_IO, "rename %s: %s", restore->directory,
                            strerror(errno));
        state_remove_tree(restore->directory);
        goto out_paths;
    }
    status = state_fsync_path(state->root, err, err_len);
    if (status != STATE_OK || crash_here(restore, 2, &status, err, err_len))
        goto out_paths;

    snprintf(name, sizeof name, "db.%u", new_generation);
    unlink(link_temp);
    if (symlink(name, link_temp) != 0) {
        status = state_fail(err, err_len, STATE_ERR_IO, "symlink %s: %s", link_temp,
                            strerror(errno));
        goto out_paths;
    }
    if (crash_here(restore, 3, &status, err, err_len))
        goto out_paths;
    if (rename(link_temp, link) != 0) { /* the commit point */
        status = state_fail(err, err_len, STATE_ERR_IO, "rename %s: %s", link_temp,
                            strerror(errno));
        goto out_paths;
    }
    status = state_fsync_path(state->root, err, err_len);
    if (status != STATE_OK || crash_here(restore, 4, &status, err, err_len))
        goto out_paths;

    state_db_close(state);
    state->generation = new_generation;
    status = state_db_open(state, err, err_len);
    if (status == STATE_OK)
        state_remove_tree(old_dir);

out_paths:
    free(link_temp);
    free(link);
    free(old_dir);
    free(new_dir);
out:
    free(restore->directory);
    free(restore);
    return status;
}

void state_restore_abort(struct state_restore *restore)
{
    if (restore == NULL)
        return;
    if (restore->fd >= 0)
        close(restore->fd);
    if (restore->directory != NULL)
        state_remove_tree(restore->directory);
    free(restore->directory);
    free(restore);
}
