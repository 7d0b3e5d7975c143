/* storage/state/restore.c: installs a snapshot in place of the state, from a stream or from a
 * checkpoint directory. Either fills root/incoming.<n> (the stream unpacked and checked by the archive
 * sink; a checkpoint linked and copied), which is fsync'd, renamed to root/db.<next generation>, and
 * made live by renaming a new root/current link over the old one: that rename is the commit point. A
 * crash before it leaves the old state (state_open removes the leftovers), after it the new one. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct state_restore {
    struct state *state;
    char *directory;
    struct state_archive_sink *sink; /* NULL when the directory was filled from a checkpoint */
    uint64_t member_id;              /* stamped into the new state */
    int crash_step;
};

static int begin(struct state *state, struct state_restore **out, char *err, size_t errlen)
{
    *out = NULL;
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    struct state_restore *restore = calloc(1, sizeof *restore);
    if (restore == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "restore");
    restore->state = state;
    restore->member_id = state->committed.member_id;
    char name[48];
    snprintf(name, sizeof name, "incoming.%u", ++state->snapshot_sequence);
    restore->directory = state_path_join(state->root, name);
    if (restore->directory == NULL) {
        free(restore);
        return state_fail(err, errlen, STATE_ERR_NOMEM, "path");
    }
    state_remove_tree(restore->directory);
    *out = restore;
    return STATE_OK;
}

int state_restore_begin(struct state *state, struct state_restore **out, char *err,
                        size_t errlen)
{
    struct state_restore *restore;
    int status = begin(state, &restore, err, errlen);
    if (status != STATE_OK)
        return status;
    uint64_t resume_offset = 0;
    /* A fresh directory: nothing to resume (the identity is never looked at). */
    status = state_archive_sink_open(restore->directory, 0, &restore->sink, &resume_offset, err,
                                     errlen);
    if (status != STATE_OK) {
        state_restore_abort(restore);
        return status;
    }
    *out = restore;
    return STATE_OK;
}

void state_restore_set_crash_step(struct state_restore *restore, int step)
{
    restore->crash_step = step;
}

int state_restore_write(struct state_restore *restore, const uint8_t *chunk, size_t len, char *err,
                        size_t errlen)
{
    return state_archive_sink_write(restore->sink, chunk, len, err, errlen);
}

/* Copies one file (small ones: manifest, options, log), then fsyncs the copy. */
static int copy_file(const char *from, const char *to, char *err, size_t errlen)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return state_fail(err, errlen, STATE_ERR_IO, "open %s: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        int status = state_fail(err, errlen, STATE_ERR_IO, "create %s: %s", to, strerror(errno));
        close(in);
        return status;
    }
    int status = STATE_OK;
    uint8_t buffer[65536];
    for (;;) {
        ssize_t got = read(in, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            status = state_fail(err, errlen, STATE_ERR_IO, "read %s: %s", from, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        for (ssize_t done = 0; done < got && status == STATE_OK;) {
            ssize_t wrote = write(out, buffer + done, (size_t)(got - done));
            if (wrote < 0 && errno == EINTR)
                continue;
            if (wrote <= 0)
                status = state_fail(err, errlen, STATE_ERR_IO, "write %s: %s", to,
                                    wrote < 0 ? strerror(errno) : "no progress");
            else
                done += wrote;
        }
        if (status != STATE_OK)
            break;
    }
    if (status == STATE_OK && fsync(out) != 0)
        status = state_fail(err, errlen, STATE_ERR_IO, "fsync %s: %s", to, strerror(errno));
    close(out);
    close(in);
    return status;
}

static bool ends_with(const char *name, const char *suffix)
{
    size_t name_len = strlen(name), suffix_len = strlen(suffix);
    return name_len >= suffix_len && strcmp(name + name_len - suffix_len, suffix) == 0;
}

/* Fills the incoming directory from a checkpoint: table files are immutable, so a hard link shares
 * them (RocksDB only ever deletes its link); everything RocksDB may rewrite when it opens the new
 * directory (manifest, CURRENT, options, log) is copied, so the checkpoint stays as it was. */
static int fill_from_directory(struct state_restore *restore, const char *source, char *err,
                               size_t errlen)
{
    if (mkdir(restore->directory, 0700) != 0)
        return state_fail(err, errlen, STATE_ERR_IO, "mkdir %s: %s", restore->directory,
                          strerror(errno));
    DIR *dir = opendir(source);
    if (dir == NULL)
        return state_fail(err, errlen, STATE_ERR_IO, "opendir %s: %s", source, strerror(errno));
    int status = STATE_OK;
    struct dirent *entry;
    while (status == STATE_OK && (entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        if (name[0] == '.')
            continue;
        char *from = state_path_join(source, name);
        char *to = state_path_join(restore->directory, name);
        if (from == NULL || to == NULL)
            status = state_fail(err, errlen, STATE_ERR_NOMEM, "path");
        else if (ends_with(name, ".sst") && link(from, to) == 0)
            status = STATE_OK;
        else if (ends_with(name, ".sst") && errno != EXDEV)
            status = state_fail(err, errlen, STATE_ERR_IO, "link %s: %s", from, strerror(errno));
        else
            status = copy_file(from, to, err, errlen);
        free(from);
        free(to);
    }
    closedir(dir);
    if (status == STATE_OK)
        status = state_fsync_path(restore->directory, err, errlen);
    return status;
}

/* Stops as a crash at `step` would: the process dies, the files stay as they are. */
static bool crash_here(struct state_restore *restore, int step, int *status, char *err,
                       size_t errlen)
{
    if (restore->crash_step != step)
        return false;
    state_db_close(restore->state);
    *status = state_fail(err, errlen, STATE_ERR_IO, "simulated crash after restore step %d",
                         step);
    return true;
}

/* Opens the unpacked RocksDB once: proves it is usable and stamps the local member id. */
static int prepare_incoming(struct state_restore *restore, char *err, size_t errlen)
{
    struct state *state = restore->state;
    char *error = NULL;
    rocksdb_t *db = rocksdb_open(state->options, restore->directory, &error);
    if (error != NULL)
        return state_fail_rocksdb(err, errlen, error, "open the restored snapshot");
    int status = STATE_OK;
    if (restore->member_id != 0)
        status = state_meta_put_member_id(db, state->sync_write_options, restore->member_id, err,
                                          errlen);
    rocksdb_close(db);
    if (status == STATE_OK)
        status = state_fsync_directory_files(restore->directory, false, err, errlen);
    return status;
}

/* Makes the filled incoming directory the live state. */
static int install(struct state_restore *restore, char *err, size_t errlen)
{
    struct state *state = restore->state;
    int status = STATE_OK;
    if (state->db == NULL)
        status = state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    else if (state->batch_open)
        status = state_fail(err, errlen, STATE_ERR_BATCH_OPEN, "commit or abort it first");
    if (status == STATE_OK)
        status = prepare_incoming(restore, err, errlen);
    if (status != STATE_OK) {
        state_restore_abort(restore);
        return status;
    }
    if (crash_here(restore, 1, &status, err, errlen))
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
        status = state_fail(err, errlen, STATE_ERR_NOMEM, "path");
        state_remove_tree(restore->directory);
        goto out_paths;
    }
    state_remove_tree(new_dir);
    if (rename(restore->directory, new_dir) != 0) {
        status = state_fail(err, errlen, STATE_ERR_IO, "rename %s: %s", restore->directory,
                            strerror(errno));
        state_remove_tree(restore->directory);
        goto out_paths;
    }
    status = state_fsync_path(state->root, err, errlen);
    if (status != STATE_OK || crash_here(restore, 2, &status, err, errlen))
        goto out_paths;

    snprintf(name, sizeof name, "db.%u", new_generation);
    unlink(link_temp);
    if (symlink(name, link_temp) != 0) {
        status = state_fail(err, errlen, STATE_ERR_IO, "symlink %s: %s", link_temp,
                            strerror(errno));
        goto out_paths;
    }
    if (crash_here(restore, 3, &status, err, errlen))
        goto out_paths;
    if (rename(link_temp, link) != 0) { /* the commit point */
        status = state_fail(err, errlen, STATE_ERR_IO, "rename %s: %s", link_temp,
                            strerror(errno));
        goto out_paths;
    }
    status = state_fsync_path(state->root, err, errlen);
    if (status != STATE_OK || crash_here(restore, 4, &status, err, errlen))
        goto out_paths;

    state_db_close(state);
    state->generation = new_generation;
    status = state_db_open(state, err, errlen);
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

int state_restore_finish(struct state_restore *restore, char *err, size_t errlen)
{
    int status = state_archive_sink_finish(restore->sink, err, errlen);
    if (status != STATE_OK) {
        state_restore_abort(restore);
        return status;
    }
    state_archive_sink_close(restore->sink);
    restore->sink = NULL;
    return install(restore, err, errlen);
}

int state_restore_from_directory(struct state *state, const char *directory, uint64_t member_id,
                                 char *err, size_t errlen)
{
    struct state_restore *restore;
    int status = begin(state, &restore, err, errlen);
    if (status != STATE_OK)
        return status;
    if (member_id != 0)
        restore->member_id = member_id;
    status = fill_from_directory(restore, directory, err, errlen);
    if (status != STATE_OK) {
        state_restore_abort(restore);
        return status;
    }
    return install(restore, err, errlen);
}

void state_restore_abort(struct state_restore *restore)
{
    if (restore == NULL)
        return;
    state_archive_sink_close(restore->sink);
    if (restore->directory != NULL)
        state_remove_tree(restore->directory);
    free(restore->directory);
    free(restore);
}
