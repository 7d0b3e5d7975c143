/* storage/state/files.c: the state directory. root/current is a symlink naming the live RocksDB
 * directory root/db.<generation>; replacing the state (snapshot restore) means building a new
 * directory and switching the link with one rename(2), so a crash leaves the old or the new state,
 * never a mix. This file also opens and closes the RocksDB in the live directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

char *state_path_join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    char *path = malloc(len);
    if (path != NULL)
        snprintf(path, len, "%s/%s", dir, name);
    return path;
}

int state_fsync_path(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return state_fail(err, errlen, STATE_ERR_IO, "open %s: %s", path, strerror(errno));
    int status = STATE_OK;
    if (fsync(fd) != 0)
        status = state_fail(err, errlen, STATE_ERR_IO, "fsync %s: %s", path, strerror(errno));
    close(fd);
    return status;
}

static int remove_entry(const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    (void)info;
    (void)ftw;
    if (type == FTW_DP)
        return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

int state_remove_tree(const char *path)
{
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return 0;
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int state_db_open(struct state *state, char *err, size_t errlen)
{
    char name[32];
    snprintf(name, sizeof name, "db.%u", state->generation);
    char *path = state_path_join(state->root, name);
    if (path == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "path");
    char *error = NULL;
    state->db = rocksdb_open(state->options, path, &error);
    if (error != NULL) {
        state->db = NULL;
        int status = state_fail_rocksdb(err, errlen, error, "open");
        free(path);
        return status;
    }
    free(path);
    int status = state_meta_load(state, err, errlen);
    if (status != STATE_OK)
        state_db_close(state);
    return status;
}

void state_db_close(struct state *state)
{
    state_batch_abort(state);
    if (state->db != NULL)
        rocksdb_close(state->db);
    state->db = NULL;
    /* Whatever opens next (a restored snapshot) has keys of its own. */
    state_key_index_clear(&state->key_index);
}

int state_fsync_directory_files(const char *path, bool skip_hard_links, char *err, size_t errlen)
{
    DIR *dir = opendir(path);
    if (dir == NULL)
        return state_fail(err, errlen, STATE_ERR_IO, "opendir %s: %s", path, strerror(errno));
    int status = STATE_OK;
    struct dirent *entry;
    while (status == STATE_OK && (entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char *file = state_path_join(path, entry->d_name);
        struct stat info;
        if (file == NULL)
            status = state_fail(err, errlen, STATE_ERR_NOMEM, "path");
        else if (skip_hard_links && stat(file, &info) != 0)
            status = state_fail(err, errlen, STATE_ERR_IO, "stat %s: %s", file, strerror(errno));
        else if (!skip_hard_links || info.st_nlink == 1 || !S_ISREG(info.st_mode))
            status = state_fsync_path(file, err, errlen);
        free(file);
    }
    closedir(dir);
    if (status == STATE_OK)
        status = state_fsync_path(path, err, errlen);
    return status;
}
