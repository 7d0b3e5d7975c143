/* storage/state/archive_sink.c: unpacks an archive stream (archive.h) into a directory, checking every
 * CRC before it trusts a byte, and remembers how far it got so an interrupted transfer resumes.
 *
 * Progress lives in DIR/.archive-progress, an append-only log of records (u32 length, u32 CRC-32C of
 * length and body, body): first the header's facts (identity, file count, applied index), then one
 * record per file once its data matched its CRC and the file and the directory entry are fsync'd. A
 * resume trusts exactly those records (a torn last record is ignored), deletes any other file (a
 * partial one), and continues at the stream offset after the last complete file; anything else in the
 * directory, or a different identity, starts over from offset 0. The log is removed when the stream is
 * complete, leaving exactly the archive's files. */
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

#define PROGRESS_NAME ".archive-progress"
#define RECORD_HEADER 'H'
#define RECORD_FILE 'F'

enum sink_phase {
    PHASE_HEADER,
    PHASE_NAME_LENGTH,
    PHASE_FILE_HEAD,
    PHASE_FILE_DATA,
    PHASE_FILE_CRC,
    PHASE_TRAILER,
    PHASE_DONE,
    PHASE_FAILED,
};

struct state_archive_sink {
    char *directory;
    uint64_t identity;
    int progress_fd;
    enum sink_phase phase;
    uint8_t head[STATE_ARCHIVE_FILE_HEAD_MAX]; /* framing bytes being collected */
    size_t head_have;
    size_t head_need;
    uint32_t file_count;
    uint32_t files_done;
    uint64_t applied_index;
    uint64_t offset;         /* stream bytes consumed */
    uint64_t durable_offset; /* where a resume would continue */
    char file_name[STATE_ARCHIVE_NAME_MAX + 1];
    int fd;
    uint64_t remaining;
    uint32_t data_crc;
};

static void expect(struct state_archive_sink *sink, enum sink_phase phase, size_t need)
{
    sink->phase = phase;
    sink->head_have = 0;
    sink->head_need = need;
}

static int fsync_directory(struct state_archive_sink *sink, char *err, size_t errlen)
{
    return state_fsync_path(sink->directory, err, errlen);
}

/* Appends one progress record and makes it durable. */
static int append_record(struct state_archive_sink *sink, uint8_t type, const uint8_t *body,
                         size_t body_len, char *err, size_t errlen)
{
    uint8_t record[8 + 1 + 8 + STATE_ARCHIVE_NAME_MAX + 32];
    size_t len = 1 + body_len;
    if (8 + len > sizeof record)
        return state_fail(err, errlen, STATE_ERR_INVALID, "progress record of %zu bytes", len);
    state_put_be32(record, (uint32_t)len);
    record[8] = type;
    memcpy(record + 9, body, body_len);
    uint32_t crc = crc32c(0, record, 4);
    state_put_be32(record + 4, crc32c(crc, record + 8, len));
    size_t total = 8 + len, done = 0;
    while (done < total) {
        ssize_t wrote = write(sink->progress_fd, record + done, total - done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            return state_fail(err, errlen, STATE_ERR_IO, "write %s/%s: %s", sink->directory,
                              PROGRESS_NAME, wrote < 0 ? strerror(errno) : "no progress");
        done += (size_t)wrote;
    }
    if (fdatasync(sink->progress_fd) != 0)
        return state_fail(err, errlen, STATE_ERR_IO, "fdatasync %s/%s: %s", sink->directory,
                          PROGRESS_NAME, strerror(errno));
    return STATE_OK;
}

/* What a resume may rely on, read from the progress log. */
struct progress {
    bool has_header;
    uint64_t identity;
    uint32_t file_count;
    uint64_t applied_index;
    uint32_t files_done;
    uint64_t offset;
    char **names; /* completed files */
    size_t name_count;
};

static void progress_free(struct progress *progress)
{
    for (size_t i = 0; i < progress->name_count; i++)
        free(progress->names[i]);
    free(progress->names);
    memset(progress, 0, sizeof *progress);
}

static bool progress_has(const struct progress *progress, const char *name)
{
    for (size_t i = 0; i < progress->name_count; i++)
        if (strcmp(progress->names[i], name) == 0)
            return true;
    return false;
}

/* Reads the valid prefix of the log; false when it is missing or says nothing usable. */
static bool read_progress(const char *path, struct progress *progress)
{
    memset(progress, 0, sizeof *progress);
    FILE *file = fopen(path, "rbe");
    if (file == NULL)
        return false;
    uint8_t frame[8], body[1 + 8 + STATE_ARCHIVE_NAME_MAX + 32];
    while (fread(frame, 1, 8, file) == 8) {
        uint32_t len = state_get_be32(frame);
        if (len == 0 || len > sizeof body || fread(body, 1, len, file) != len)
            break;
        uint32_t crc = crc32c(crc32c(0, frame, 4), body, len);
        if (crc != state_get_be32(frame + 4))
            break;
        if (body[0] == RECORD_HEADER && !progress->has_header && len == 1 + 28) {
            progress->has_header = true;
            progress->identity = state_get_be64(body + 1);
            progress->file_count = state_get_be32(body + 9);
            progress->applied_index = state_get_be64(body + 13);
            progress->offset = state_get_be64(body + 21);
        } else if (body[0] == RECORD_FILE && progress->has_header && len > 1 + 8 + 4) {
            uint32_t name_len = state_get_be32(body + 9);
            if (name_len == 0 || name_len > STATE_ARCHIVE_NAME_MAX || 1 + 8 + 4 + name_len != len)
                break;
            char **names = realloc(progress->names, (progress->name_count + 1) * sizeof *names);
            if (names == NULL)
                break;
            progress->names = names;
            char *name = malloc(name_len + 1);
            if (name == NULL)
                break;
            memcpy(name, body + 13, name_len);
            name[name_len] = '\0';
            progress->names[progress->name_count++] = name;
            progress->files_done++;
            progress->offset = state_get_be64(body + 1);
        } else {
            break;
        }
    }
    fclose(file);
    return progress->has_header;
}

/* Removes every entry of the directory except the progress log and the names progress lists. */
static int clean_directory(struct state_archive_sink *sink, const struct progress *keep, char *err,
                           size_t errlen)
{
    DIR *dir = opendir(sink->directory);
    if (dir == NULL)
        return state_fail(err, errlen, STATE_ERR_IO, "opendir %s: %s", sink->directory,
                          strerror(errno));
    int status = STATE_OK;
    struct dirent *entry;
    while (status == STATE_OK && (entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, PROGRESS_NAME) == 0)
            continue;
        if (keep != NULL && progress_has(keep, name))
            continue;
        char *path = state_path_join(sink->directory, name);
        if (path == NULL)
            status = state_fail(err, errlen, STATE_ERR_NOMEM, "path");
        else if (state_remove_tree(path) != 0)
            status = state_fail(err, errlen, STATE_ERR_IO, "remove %s: %s", path,
                                strerror(errno));
        free(path);
    }
    closedir(dir);
    return status;
}

static int open_progress(struct state_archive_sink *sink, bool truncate, char *err,
                         size_t errlen)
{
    char *path = state_path_join(sink->directory, PROGRESS_NAME);
    if (path == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "path");
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
    sink->progress_fd = open(path, flags, 0600);
    int status = STATE_OK;
    if (sink->progress_fd < 0)
        status = state_fail(err, errlen, STATE_ERR_IO, "open %s: %s", path, strerror(errno));
    free(path);
    return status;
}

int state_archive_sink_open(const char *directory, uint64_t identity,
                            struct state_archive_sink **out, uint64_t *resume_offset, char *err,
                            size_t errlen)
{
    *out = NULL;
    *resume_offset = 0;
    if (mkdir(directory, 0700) != 0 && errno != EEXIST)
        return state_fail(err, errlen, STATE_ERR_IO, "mkdir %s: %s", directory, strerror(errno));
    struct state_archive_sink *sink = calloc(1, sizeof *sink);
    if (sink == NULL || (sink->directory = strdup(directory)) == NULL) {
        free(sink);
        return state_fail(err, errlen, STATE_ERR_NOMEM, "archive sink");
    }
    sink->identity = identity;
    sink->fd = -1;
    sink->progress_fd = -1;
    char *path = state_path_join(directory, PROGRESS_NAME);
    struct progress progress = {0};
    bool resume = path != NULL && read_progress(path, &progress) && progress.identity == identity &&
                  progress.files_done <= progress.file_count;
    free(path);
    if (!resume)
        progress_free(&progress);
    int status;
    if (resume) {
        /* The log may end in a torn record: rewrite it from what was trusted, so appends follow
         * valid records. */
        status = clean_directory(sink, &progress, err, errlen);
        if (status == STATE_OK)
            status = open_progress(sink, true, err, errlen);
        uint8_t body[28];
        state_put_be64(body, identity);
        state_put_be32(body + 8, progress.file_count);
        state_put_be64(body + 12, progress.applied_index);
        state_put_be64(body + 20, STATE_ARCHIVE_HEADER_LEN);
        if (status == STATE_OK)
            status = append_record(sink, RECORD_HEADER, body, sizeof body, err, errlen);
        uint64_t offset = STATE_ARCHIVE_HEADER_LEN;
        for (size_t i = 0; status == STATE_OK && i < progress.name_count; i++) {
            /* Offsets follow from the names and sizes, but the log has them: reuse them as written. */
            struct stat info;
            char *file = state_path_join(directory, progress.names[i]);
            if (file == NULL || stat(file, &info) != 0) {
                free(file);
                status = STATE_ERR_IO;
                break;
            }
            free(file);
            size_t name_len = strlen(progress.names[i]);
            offset += 16 + name_len + (uint64_t)info.st_size + 4;
            uint8_t record[8 + 4 + STATE_ARCHIVE_NAME_MAX];
            state_put_be64(record, offset);
            state_put_be32(record + 8, (uint32_t)name_len);
            memcpy(record + 12, progress.names[i], name_len);
            status = append_record(sink, RECORD_FILE, record, 12 + name_len, err, errlen);
        }
        if (status == STATE_OK && offset == progress.offset) {
            sink->file_count = progress.file_count;
            sink->files_done = progress.files_done;
            sink->applied_index = progress.applied_index;
            sink->offset = sink->durable_offset = offset;
            if (sink->files_done == sink->file_count)
                expect(sink, PHASE_TRAILER, STATE_ARCHIVE_TRAILER_LEN);
            else
                expect(sink, PHASE_NAME_LENGTH, 4);
            progress_free(&progress);
            *resume_offset = offset;
            *out = sink;
            return STATE_OK;
        }
        progress_free(&progress);
        if (sink->progress_fd >= 0)
            close(sink->progress_fd);
        sink->progress_fd = -1;
        /* A file of the log is gone or changed size: start over. */
    }
    status = clean_directory(sink, NULL, err, errlen);
    if (status == STATE_OK)
        status = open_progress(sink, true, err, errlen);
    if (status == STATE_OK)
        status = fsync_directory(sink, err, errlen);
    if (status != STATE_OK) {
        state_archive_sink_close(sink);
        return status;
    }
    expect(sink, PHASE_HEADER, STATE_ARCHIVE_HEADER_LEN);
    *out = sink;
    return STATE_OK;
}

static bool safe_name(const char *name)
{
    return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL;
}

/* Acts on a completed head (header, name length, file head, data crc, trailer). */
static int head_complete(struct state_archive_sink *sink, char *err, size_t errlen)
{
    const uint8_t *head = sink->head;
    switch (sink->phase) {
    case PHASE_HEADER: {
        if (memcmp(head, STATE_ARCHIVE_MAGIC, 8) != 0 ||
            state_get_be32(head + 8) != STATE_ARCHIVE_VERSION ||
            state_get_be32(head + 28) != crc32c(0, head, 28))
            return state_fail(err, errlen, STATE_ERR_CORRUPT, "snapshot header");
        sink->file_count = state_get_be32(head + 12);
        sink->applied_index = state_get_be64(head + 16);
        uint8_t body[28];
        state_put_be64(body, sink->identity);
        state_put_be32(body + 8, sink->file_count);
        state_put_be64(body + 12, sink->applied_index);
        state_put_be64(body + 20, STATE_ARCHIVE_HEADER_LEN);
        int status = append_record(sink, RECORD_HEADER, body, sizeof body, err, errlen);
        if (status != STATE_OK)
            return status;
        sink->durable_offset = sink->offset;
        if (sink->file_count == 0)
            expect(sink, PHASE_TRAILER, STATE_ARCHIVE_TRAILER_LEN);
        else
            expect(sink, PHASE_NAME_LENGTH, 4);
        return STATE_OK;
    }
    case PHASE_NAME_LENGTH: {
        uint32_t name_len = state_get_be32(head);
        if (name_len == 0 || name_len > STATE_ARCHIVE_NAME_MAX)
            return state_fail(err, errlen, STATE_ERR_CORRUPT, "file name length %u", name_len);
        sink->phase = PHASE_FILE_HEAD; /* keep the 4 bytes: the crc covers them */
        sink->head_need = 4 + name_len + 12;
        return STATE_OK;
    }
    case PHASE_FILE_HEAD: {
        size_t name_len = sink->head_need - 16;
        if (state_get_be32(head + 12 + name_len) != crc32c(0, head, 12 + name_len))
            return state_fail(err, errlen, STATE_ERR_CORRUPT, "file head %u", sink->files_done);
        memcpy(sink->file_name, head + 4, name_len);
        sink->file_name[name_len] = '\0';
        if (!safe_name(sink->file_name) || memchr(head + 4, '\0', name_len) != NULL)
            return state_fail(err, errlen, STATE_ERR_CORRUPT, "file name '%s'", sink->file_name);
        char *path = state_path_join(sink->directory, sink->file_name);
        if (path == NULL)
            return state_fail(err, errlen, STATE_ERR_NOMEM, "path");
        sink->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (sink->fd < 0) {
            int status = state_fail(err, errlen, STATE_ERR_IO, "create %s: %s", path,
                                    strerror(errno));
            free(path);
            return status;
        }
        free(path);
        sink->remaining = state_get_be64(head + 4 + name_len);
        sink->data_crc = 0;
        if (sink->remaining > 0)
            sink->phase = PHASE_FILE_DATA;
        else
            expect(sink, PHASE_FILE_CRC, 4);
        return STATE_OK;
    }
    case PHASE_FILE_CRC: {
        if (state_get_be32(head) != sink->data_crc)
            return state_fail(err, errlen, STATE_ERR_CORRUPT, "data of file %s fails its crc",
                              sink->file_name);
        int synced = fsync(sink->fd);
        close(sink->fd);
        sink->fd = -1;
        if (synced != 0)
            return state_fail(err, errlen, STATE_ERR_IO, "fsync %s/%s: %s", sink->directory,
                              sink->file_name, strerror(errno));
        int status = fsync_directory(sink, err, errlen);
        size_t name_len = strlen(sink->file_name);
        uint8_t record[8 + 4 + STATE_ARCHIVE_NAME_MAX];
        state_put_be64(record, sink->offset);
        state_put_be32(record + 8, (uint32_t)name_len);
        memcpy(record + 12, sink->file_name, name_len);
        if (status == STATE_OK)
            status = append_record(sink, RECORD_FILE, record, 12 + name_len, err, errlen);
        if (status != STATE_OK)
            return status;
        sink->durable_offset = sink->offset;
        sink->files_done++;
        if (sink->files_done == sink->file_count)
            expect(sink, PHASE_TRAILER, STATE_ARCHIVE_TRAILER_LEN);
        else
            expect(sink, PHASE_NAME_LENGTH, 4);
        return STATE_OK;
    }
    case PHASE_TRAILER:
        if (memcmp(head, STATE_ARCHIVE_END_MAGIC, 8) != 0 ||
            state_get_be32(head + 8) != sink->file_count ||
            state_get_be32(head + 12) != crc32c(0, head, 12))
            return state_fail(err, errlen, STATE_ERR_CORRUPT, "snapshot trailer");
        sink->phase = PHASE_DONE;
        return STATE_OK;
    default:
        return state_fail(err, errlen, STATE_ERR_CORRUPT, "archive phase %d", (int)sink->phase);
    }
}

static int write_data(struct state_archive_sink *sink, const uint8_t *data, size_t len, char *err,
                      size_t errlen)
{
    sink->data_crc = crc32c(sink->data_crc, data, len);
    while (len > 0) {
        ssize_t wrote = write(sink->fd, data, len);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            return state_fail(err, errlen, STATE_ERR_IO, "write %s/%s: %s", sink->directory,
                              sink->file_name, wrote < 0 ? strerror(errno) : "no progress");
        data += wrote;
        len -= (size_t)wrote;
    }
    return STATE_OK;
}

int state_archive_sink_write(struct state_archive_sink *sink, const uint8_t *chunk, size_t len,
                             char *err, size_t errlen)
{
    int status = STATE_OK;
    while (status == STATE_OK && len > 0) {
        if (sink->phase == PHASE_FAILED)
            return state_fail(err, errlen, STATE_ERR_INVALID, "the archive already failed");
        if (sink->phase == PHASE_DONE) {
            status = state_fail(err, errlen, STATE_ERR_CORRUPT, "%zu bytes after the trailer",
                                len);
            break;
        }
        if (sink->phase == PHASE_FILE_DATA) {
            size_t take = len < sink->remaining ? len : (size_t)sink->remaining;
            status = write_data(sink, chunk, take, err, errlen);
            chunk += take;
            len -= take;
            sink->offset += take;
            sink->remaining -= take;
            if (status == STATE_OK && sink->remaining == 0)
                expect(sink, PHASE_FILE_CRC, 4);
            continue;
        }
        size_t take = sink->head_need - sink->head_have;
        if (take > len)
            take = len;
        memcpy(sink->head + sink->head_have, chunk, take);
        sink->head_have += take;
        sink->offset += take;
        chunk += take;
        len -= take;
        if (sink->head_have == sink->head_need)
            status = head_complete(sink, err, errlen);
    }
    if (status != STATE_OK)
        sink->phase = PHASE_FAILED;
    return status;
}

bool state_archive_sink_complete(const struct state_archive_sink *sink)
{
    return sink->phase == PHASE_DONE;
}

uint64_t state_archive_sink_applied_index(const struct state_archive_sink *sink)
{
    return sink->applied_index;
}

uint64_t state_archive_sink_offset(const struct state_archive_sink *sink) { return sink->offset; }

uint64_t state_archive_sink_durable_offset(const struct state_archive_sink *sink)
{
    return sink->durable_offset;
}

const char *state_archive_sink_directory(const struct state_archive_sink *sink)
{
    return sink->directory;
}

int state_archive_sink_finish(struct state_archive_sink *sink, char *err, size_t errlen)
{
    if (sink->phase != PHASE_DONE)
        return state_fail(err, errlen, STATE_ERR_CORRUPT, "the snapshot stream is incomplete");
    close(sink->progress_fd);
    sink->progress_fd = -1;
    char *path = state_path_join(sink->directory, PROGRESS_NAME);
    if (path == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "path");
    int status = STATE_OK;
    if (unlink(path) != 0 && errno != ENOENT)
        status = state_fail(err, errlen, STATE_ERR_IO, "unlink %s: %s", path, strerror(errno));
    free(path);
    if (status == STATE_OK)
        status = fsync_directory(sink, err, errlen);
    return status;
}

void state_archive_sink_close(struct state_archive_sink *sink)
{
    if (sink == NULL)
        return;
    if (sink->fd >= 0)
        close(sink->fd);
    if (sink->progress_fd >= 0)
        close(sink->progress_fd);
    free(sink->directory);
    free(sink);
}
