/* storage/state/snapshot.c: checkpoints of the committed state, and a checkpoint streamed as an
 * archive. A RocksDB checkpoint (hard links to the immutable SST files plus a copied manifest and log)
 * freezes the state at once; the stream then reads its files at the receiver's pace, so applying can
 * go on meanwhile. A streamed checkpoint's directory is removed on close, or at the next open after a
 * crash. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct state_snapshot {
    char *directory;
    struct state_archive_source *source;
    uint64_t offset;
};

bool state_flush_done(struct state *state)
{
    uint64_t immutable = 0;
    if (state->db == NULL ||
        rocksdb_property_int(state->db, "rocksdb.num-immutable-mem-table", &immutable) != 0)
        return true;
    return immutable == 0;
}

int state_checkpoint(struct state *state, const char *directory, uint64_t *applied_index,
                     char *err, size_t errlen)
{
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    /* The checkpoint flushes the memtables first: not onto a full disk (state_sync says why). */
    int status = state_check_space_now(state, 0, err, errlen);
    if (status != STATE_OK)
        return status;
    /* The checkpoint holds exactly what was committed: the open batch, if any, is not in the DB. */
    *applied_index = state->committed.applied_index;
    char *error = NULL;
    rocksdb_checkpoint_t *checkpoint = rocksdb_checkpoint_object_create(state->db, &error);
    if (error == NULL) {
        /* log_size_for_flush 0: the memtables are flushed first, so the checkpoint is SST files
         * only (hard links) plus a manifest, and reads of it need no log replay. Copying the log
         * instead was measured no faster (the copy must be fsync'd too) and left every snapshot
         * holding its own copy of up to two memtables. */
        rocksdb_checkpoint_create(checkpoint, directory, 0, &error);
        rocksdb_checkpoint_object_destroy(checkpoint);
    }
    if (error != NULL)
        return state_fail_rocksdb(err, errlen, error, "checkpoint");
    /* RocksDB links and copies the files; only fsync makes the copies (manifest, CURRENT, options) and the
     * names durable. */
    return state_fsync_directory_files(directory, true, err, errlen);
}

int state_snapshot_open(struct state *state, struct state_snapshot **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    struct state_snapshot *snapshot = calloc(1, sizeof *snapshot);
    if (snapshot == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "snapshot");
    char name[48];
    snprintf(name, sizeof name, "snapshot.%u", ++state->snapshot_sequence);
    snapshot->directory = state_path_join(state->root, name);
    if (snapshot->directory == NULL) {
        free(snapshot);
        return state_fail(err, errlen, STATE_ERR_NOMEM, "path");
    }
    state_remove_tree(snapshot->directory);
    uint64_t applied_index = 0;
    int status = state_checkpoint(state, snapshot->directory, &applied_index, err, errlen);
    if (status == STATE_OK)
        status = state_archive_source_open(snapshot->directory, applied_index, &snapshot->source,
                                           err, errlen);
    if (status != STATE_OK) {
        state_snapshot_close(snapshot);
        return status;
    }
    *out = snapshot;
    return STATE_OK;
}

uint64_t state_snapshot_applied_index(const struct state_snapshot *snapshot)
{
    return state_archive_source_applied_index(snapshot->source);
}

int state_snapshot_next_chunk(struct state_snapshot *snapshot, uint8_t *buf, size_t capacity,
                              size_t *len, char *err, size_t errlen)
{
    int status = state_archive_source_read(snapshot->source, snapshot->offset, buf, capacity, len,
                                           err, errlen);
    if (status == STATE_OK)
        snapshot->offset += *len;
    return status;
}

void state_snapshot_close(struct state_snapshot *snapshot)
{
    if (snapshot == NULL)
        return;
    state_archive_source_close(snapshot->source);
    if (snapshot->directory != NULL)
        state_remove_tree(snapshot->directory);
    free(snapshot->directory);
    free(snapshot);
}
