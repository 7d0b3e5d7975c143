/* storage/state/archive_source.c: a directory of immutable files (a RocksDB checkpoint) served as the
 * archive stream of archive.h at any offset. Every byte's place follows from the file list and sizes
 * alone, so a sender can resend a lost chunk or resume a stream at the receiver's offset without
 * keeping what it sent. Only a file's data CRC needs its bytes in order: it grows while the file is
 * first read from its start, and a CRC asked for before that (a resume past part of the file) is
 * computed by reading the rest once. Files are opened at open time, so a snapshot directory pruned
 * meanwhile stays readable through the descriptors. */
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

struct archive_file {
    char *name;
    size_t name_len;
    uint64_t size;
    uint64_t head_offset; /* where its head starts in the stream */
    int fd;
    uint64_t hashed; /* bytes of data the CRC covers so far, from the start */
    uint32_t crc;
};

struct state_archive_source {
    char *directory;
    struct archive_file *files; /* sorted by name: the same directory gives the same stream */
    size_t file_count;
    uint64_t applied_index;
    uint64_t total;
    uint8_t header[STATE_ARCHIVE_HEADER_LEN];
    uint8_t trailer[STATE_ARCHIVE_TRAILER_LEN];
};

static int compare_files(const void *left, const void *right)
{
    return strcmp(((const struct archive_file *)left)->name,
                  ((const struct archive_file *)right)->name);
}

static uint64_t file_head_len(const struct archive_file *file) { return 16 + file->name_len; }

static uint64_t file_end(const struct archive_file *file)
{
    return file->head_offset + file_head_len(file) + file->size + 4;
}

static int add_file(struct state_archive_source *source, size_t *capacity, const char *name,
                    char *err, size_t errlen)
{
    size_t name_len = strlen(name);
    if (name_len > STATE_ARCHIVE_NAME_MAX)
        return state_fail(err, errlen, STATE_ERR_INVALID, "file name %s too long", name);
    if (source->file_count == *capacity) {
        *capacity = *capacity ? *capacity * 2 : 16;
        struct archive_file *files = realloc(source->files, *capacity * sizeof *files);
        if (files == NULL)
            return state_fail(err, errlen, STATE_ERR_NOMEM, "file list");
        source->files = files;
    }
    struct archive_file *file = &source->files[source->file_count];
    memset(file, 0, sizeof *file);
    file->fd = -1;
    file->name = strdup(name);
    if (file->name == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "file list");
    file->name_len = name_len;
    source->file_count++;
    char *path = state_path_join(source->directory, name);
    if (path == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "path");
    file->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    int status = STATE_OK;
    if (file->fd < 0 || fstat(file->fd, &info) != 0)
        status = state_fail(err, errlen, STATE_ERR_IO, "open %s: %s", path, strerror(errno));
    else if (!S_ISREG(info.st_mode))
        status = state_fail(err, errlen, STATE_ERR_INVALID, "%s is not a regular file", path);
    else
        file->size = (uint64_t)info.st_size;
    free(path);
    return status;
}

static int list_files(struct state_archive_source *source, char *err, size_t errlen)
{
    DIR *dir = opendir(source->directory);
    if (dir == NULL)
        return state_fail(err, errlen, STATE_ERR_IO, "opendir %s: %s", source->directory,
                          strerror(errno));
    size_t capacity = 0;
    int status = STATE_OK;
    struct dirent *entry;
    while (status == STATE_OK && (entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        status = add_file(source, &capacity, entry->d_name, err, errlen);
    }
    closedir(dir);
    if (status == STATE_OK && source->file_count > 1)
        qsort(source->files, source->file_count, sizeof *source->files, compare_files);
    return status;
}

static void lay_out(struct state_archive_source *source)
{
    uint8_t *out = source->header;
    memcpy(out, STATE_ARCHIVE_MAGIC, 8);
    state_put_be32(out + 8, STATE_ARCHIVE_VERSION);
    state_put_be32(out + 12, (uint32_t)source->file_count);
    state_put_be64(out + 16, source->applied_index);
    state_put_be32(out + 24, 0);
    state_put_be32(out + 28, crc32c(0, out, 28));
    uint64_t offset = STATE_ARCHIVE_HEADER_LEN;
    for (size_t i = 0; i < source->file_count; i++) {
        source->files[i].head_offset = offset;
        offset = file_end(&source->files[i]);
    }
    out = source->trailer;
    memcpy(out, STATE_ARCHIVE_END_MAGIC, 8);
    state_put_be32(out + 8, (uint32_t)source->file_count);
    state_put_be32(out + 12, crc32c(0, out, 12));
    source->total = offset + STATE_ARCHIVE_TRAILER_LEN;
}

int state_archive_source_open(const char *directory, uint64_t applied_index,
                              struct state_archive_source **out, char *err, size_t errlen)
{
    *out = NULL;
    struct state_archive_source *source = calloc(1, sizeof *source);
    if (source == NULL || (source->directory = strdup(directory)) == NULL) {
        free(source);
        return state_fail(err, errlen, STATE_ERR_NOMEM, "archive source");
    }
    source->applied_index = applied_index;
    int status = list_files(source, err, errlen);
    if (status != STATE_OK) {
        state_archive_source_close(source);
        return status;
    }
    lay_out(source);
    *out = source;
    return STATE_OK;
}

uint64_t state_archive_source_size(const struct state_archive_source *source)
{
    return source->total;
}

uint64_t state_archive_source_applied_index(const struct state_archive_source *source)
{
    return source->applied_index;
}

/* The file whose part of the stream holds offset (header and trailer excluded). */
static struct archive_file *file_at(struct state_archive_source *source, uint64_t offset)
{
    size_t low = 0, high = source->file_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        struct archive_file *file = &source->files[middle];
        if (offset < file->head_offset)
            high = middle;
        else if (offset >= file_end(file))
            low = middle + 1;
        else
            return file;
    }
    return NULL;
}

static int read_data(struct archive_file *file, const char *directory, uint64_t position,
                     uint8_t *buf, size_t len, char *err, size_t errlen)
{
    size_t done = 0;
    while (done < len) {
        ssize_t got = pread(file->fd, buf + done, len - done, (off_t)(position + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return state_fail(err, errlen, STATE_ERR_IO, "read %s/%s: %s", directory, file->name,
                              got < 0 ? strerror(errno) : "file shrank");
        done += (size_t)got;
    }
    if (position == file->hashed) {
        file->crc = crc32c(file->crc, buf, len);
        file->hashed += len;
    }
    return STATE_OK;
}

/* The data CRC, reading whatever part of the file the stream has not read in order yet. */
static int finish_crc(struct archive_file *file, const char *directory, char *err, size_t errlen)
{
    uint8_t buffer[65536];
    while (file->hashed < file->size) {
        uint64_t left = file->size - file->hashed;
        size_t take = left < sizeof buffer ? (size_t)left : sizeof buffer;
        int status = read_data(file, directory, file->hashed, buffer, take, err, errlen);
        if (status != STATE_OK)
            return status;
    }
    return STATE_OK;
}

/* Fills as much of buf as the part of one file (head, data, crc) at offset gives. */
static int read_file_part(struct state_archive_source *source, struct archive_file *file,
                          uint64_t offset, uint8_t *buf, size_t len, size_t *got, char *err,
                          size_t errlen)
{
    uint64_t at = offset - file->head_offset;
    uint64_t head_len = file_head_len(file);
    if (at < head_len) {
        uint8_t head[STATE_ARCHIVE_FILE_HEAD_MAX];
        state_put_be32(head, (uint32_t)file->name_len);
        memcpy(head + 4, file->name, file->name_len);
        state_put_be64(head + 4 + file->name_len, file->size);
        state_put_be32(head + 12 + file->name_len, crc32c(0, head, 12 + file->name_len));
        size_t take = (size_t)(head_len - at) < len ? (size_t)(head_len - at) : len;
        memcpy(buf, head + at, take);
        *got = take;
        return STATE_OK;
    }
    at -= head_len;
    if (at < file->size) {
        uint64_t left = file->size - at;
        size_t take = left < len ? (size_t)left : len;
        *got = take;
        return read_data(file, source->directory, at, buf, take, err, errlen);
    }
    at -= file->size;
    int status = finish_crc(file, source->directory, err, errlen);
    if (status != STATE_OK)
        return status;
    uint8_t crc[4];
    state_put_be32(crc, file->crc);
    size_t take = (size_t)(4 - at) < len ? (size_t)(4 - at) : len;
    memcpy(buf, crc + at, take);
    *got = take;
    return STATE_OK;
}

int state_archive_source_read(struct state_archive_source *source, uint64_t offset, uint8_t *buf,
                              size_t len, size_t *got, char *err, size_t errlen)
{
    *got = 0;
    if (offset > source->total)
        return state_fail(err, errlen, STATE_ERR_INVALID,
                          "offset %llu is beyond the archive's %llu bytes",
                          (unsigned long long)offset, (unsigned long long)source->total);
    uint64_t trailer_at = source->total - STATE_ARCHIVE_TRAILER_LEN;
    while (*got < len && offset < source->total) {
        size_t part = 0;
        if (offset < STATE_ARCHIVE_HEADER_LEN) {
            part = STATE_ARCHIVE_HEADER_LEN - (size_t)offset;
            if (part > len - *got)
                part = len - *got;
            memcpy(buf + *got, source->header + offset, part);
        } else if (offset >= trailer_at) {
            part = (size_t)(source->total - offset);
            if (part > len - *got)
                part = len - *got;
            memcpy(buf + *got, source->trailer + (offset - trailer_at), part);
        } else {
            struct archive_file *file = file_at(source, offset);
            if (file == NULL)
                return state_fail(err, errlen, STATE_ERR_INVALID, "no file at offset %llu",
                                  (unsigned long long)offset);
            int status = read_file_part(source, file, offset, buf + *got, len - *got, &part, err,
                                        errlen);
            if (status != STATE_OK)
                return status;
        }
        *got += part;
        offset += part;
    }
    return STATE_OK;
}

void state_archive_source_close(struct state_archive_source *source)
{
    if (source == NULL)
        return;
    for (size_t i = 0; i < source->file_count; i++) {
        if (source->files[i].fd >= 0)
            close(source->files[i].fd);
        free(source->files[i].name);
    }
    free(source->files);
    free(source->directory);
    free(source);
}
