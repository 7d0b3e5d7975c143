/* storage/state/access.c: every RocksDB read and write of the applier goes through here, so reads made
 * while a batch is open see that batch's writes (a WriteBatchWithIndex over the DB), as etcd's txn
 * reads its own writes, and reads outside a batch see the committed state.
 *
 * The index costs more than the RocksDB write itself (a skiplist insert per record), and a batch of
 * plain puts never reads its own writes (the key index answers for the keys), so a batch starts as a
 * plain WriteBatch and is indexed only when the first read through it comes.
 *
 * The memtable's skiplist insert is most of what a record costs, and it is cheap only when a record's
 * key follows the previous insert's (RocksDB keeps the last insert's position and searches from there).
 * A put writes a current ('c'), a history ('h') and a revision ('r') record, whose keys lie far apart;
 * written in that order, every insert searches from the top. So the history records wait in a batch of
 * their own, and the revision records in another, and they go last, in that order: the 'r' keys are the
 * largest and always increase, so they append without a search, and where the batch's keys come in
 * order (etcd's benchmark, any client writing increasing keys), the 'c' records and the 'h' records
 * each follow one another too. Order between records of different keys does not matter inside one
 * atomic batch; for the same key it is kept (a delete of an 'h' or 'r' key first moves the waiting
 * records of its kind in front of it). */
#include <stdlib.h>

#include "alloc.h"
#include "internal.h"
#include "keys.h"

/* The scratch buffer a batch may keep for the next: enough for any value short of a large one. */
#define STATE_SCRATCH_KEPT (256 * 1024)

static void replay_put(void *context, const char *key, size_t key_len, const char *value,
                       size_t value_len)
{
    rocksdb_writebatch_wi_put(context, key, key_len, value, value_len);
}

static void replay_delete(void *context, const char *key, size_t key_len)
{
    rocksdb_writebatch_wi_delete(context, key, key_len);
}

static void append_put(void *context, const char *key, size_t key_len, const char *value,
                       size_t value_len)
{
    rocksdb_writebatch_put(context, key, key_len, value, value_len);
}

static void append_delete(void *context, const char *key, size_t key_len)
{
    rocksdb_writebatch_delete(context, key, key_len);
}

/* Moves the waiting records of one kind behind everything written so far. */
static void release_waiting(struct state *state, rocksdb_writebatch_t *waiting)
{
    if (rocksdb_writebatch_count(waiting) == 0)
        return;
    rocksdb_writebatch_iterate(waiting, state->plain, append_put, append_delete);
    rocksdb_writebatch_clear(waiting);
}

/* Moves every waiting record behind everything written so far, history before revisions. */
static void release_all_waiting(struct state *state)
{
    release_waiting(state, state->history);
    release_waiting(state, state->revisions);
}

/* From now on the open batch is a WriteBatchWithIndex holding everything written so far. */
static void index_batch(struct state *state)
{
    if (state->batch != NULL)
        return;
    /* overwrite_keys: a key written twice in a batch reads back as its last write. */
    state->batch = rocksdb_writebatch_wi_create(0, 1);
    if (state->batch == NULL)
        alloc_failed(sizeof(void *)); /* RocksDB returns no batch only without memory */
    release_all_waiting(state);
    rocksdb_writebatch_iterate(state->plain, state->batch, replay_put, replay_delete);
    rocksdb_writebatch_clear(state->plain);
}

rocksdb_iterator_t *state_iterator(struct state *state)
{
    return state_iterator_with(state, state->read_options);
}

rocksdb_iterator_t *state_iterator_with(struct state *state, rocksdb_readoptions_t *options)
{
    rocksdb_iterator_t *base = rocksdb_create_iterator(state->db, options);
    if (!state->batch_open)
        return base;
    index_batch(state);
    /* Takes ownership of base. A fresh iterator per operation: the batch changes under it. */
    return rocksdb_writebatch_wi_create_iterator_with_base(state->batch, base);
}

int state_get(struct state *state, const uint8_t *key, size_t key_len, char **value,
              size_t *value_len, char *err, size_t errlen)
{
    if (state->batch_open)
        index_batch(state);
    char *error = NULL;
    if (state->batch != NULL)
        *value = rocksdb_writebatch_wi_get_from_batch_and_db(state->batch, state->db,
                                                             state->read_options, (const char *)key,
                                                             key_len, value_len, &error);
    else
        *value = rocksdb_get(state->db, state->read_options, (const char *)key, key_len, value_len,
                             &error);
    if (error != NULL)
        return state_fail_rocksdb(err, errlen, error, "get");
    return STATE_OK;
}

int state_get_committed(struct state *state, const uint8_t *key, size_t key_len, char **value,
                        size_t *value_len, char *err, size_t errlen)
{
    char *error = NULL;
    *value = rocksdb_get(state->db, state->read_options, (const char *)key, key_len, value_len,
                         &error);
    if (error != NULL)
        return state_fail_rocksdb(err, errlen, error, "get");
    return STATE_OK;
}

/* Where a record goes while the batch is plain: history and revision records wait (see the top). */
static rocksdb_writebatch_t *plain_batch_for(struct state *state, const uint8_t *key, size_t key_len)
{
    if (key_len > 0 && key[0] == STATE_PREFIX_HISTORY)
        return state->history;
    if (key_len > 0 && key[0] == STATE_PREFIX_REVISION)
        return state->revisions;
    return state->plain;
}

void state_batch_put(struct state *state, const uint8_t *key, size_t key_len, const uint8_t *value,
                     size_t value_len)
{
    if (state->batch != NULL)
        rocksdb_writebatch_wi_put(state->batch, (const char *)key, key_len, (const char *)value,
                                  value_len);
    else
        rocksdb_writebatch_put(plain_batch_for(state, key, key_len), (const char *)key, key_len,
                               (const char *)value, value_len);
}

void state_batch_put_pieces(struct state *state, const struct state_piece *key, int key_parts,
                            const struct state_piece *value, int value_parts)
{
    enum { MOST_PARTS = 4 };
    const char *key_data[MOST_PARTS], *value_data[MOST_PARTS];
    size_t key_lens[MOST_PARTS], value_lens[MOST_PARTS];
    if (key_parts > MOST_PARTS || value_parts > MOST_PARTS)
        abort(); /* a caller's bug: the pieces are fixed by each record's layout */
    for (int i = 0; i < key_parts; i++) {
        key_data[i] = key[i].data;
        key_lens[i] = key[i].len;
    }
    for (int i = 0; i < value_parts; i++) {
        value_data[i] = value[i].data;
        value_lens[i] = value[i].len;
    }
    if (state->batch != NULL)
        rocksdb_writebatch_wi_putv(state->batch, key_parts, key_data, key_lens, value_parts,
                                   value_data, value_lens);
    else
        rocksdb_writebatch_putv(plain_batch_for(state, key[0].data, key[0].len), key_parts, key_data,
                                key_lens, value_parts, value_data, value_lens);
}

uint8_t *state_scratch(struct state *state, size_t size)
{
    if (size > state->scratch_capacity) {
        size_t capacity = state->scratch_capacity ? state->scratch_capacity : 1024;
        while (capacity < size)
            capacity *= 2;
        uint8_t *grown = realloc(state->scratch, capacity);
        if (grown == NULL)
            return NULL;
        state->scratch = grown;
        state->scratch_capacity = capacity;
    }
    return state->scratch;
}

void state_batch_delete(struct state *state, const uint8_t *key, size_t key_len)
{
    if (state->batch != NULL) {
        rocksdb_writebatch_wi_delete(state->batch, (const char *)key, key_len);
        return;
    }
    if (key_len > 0 && key[0] == STATE_PREFIX_HISTORY)
        release_waiting(state, state->history);
    else if (key_len > 0 && key[0] == STATE_PREFIX_REVISION)
        release_waiting(state, state->revisions);
    rocksdb_writebatch_delete(state->plain, (const char *)key, key_len);
}

int state_batch_write(struct state *state, char **error)
{
    if (state->batch != NULL) {
        rocksdb_write_writebatch_wi(state->db, state->write_options, state->batch, error);
    } else {
        release_all_waiting(state);
        rocksdb_write(state->db, state->write_options, state->plain, error);
    }
    return *error == NULL ? STATE_OK : STATE_ERR_IO;
}

void state_batch_discard(struct state *state)
{
    if (state->batch != NULL)
        rocksdb_writebatch_wi_destroy(state->batch);
    state->batch = NULL;
    rocksdb_writebatch_clear(state->plain);
    rocksdb_writebatch_clear(state->history);
    rocksdb_writebatch_clear(state->revisions);
    state->batch_open = false;
    /* A batch holding one large value grew the scratch buffer to its size: not kept for the next. */
    if (state->scratch_capacity > STATE_SCRATCH_KEPT) {
        free(state->scratch);
        state->scratch = NULL;
        state->scratch_capacity = 0;
    }
}

int state_require_batch(const struct state *state, char *err, size_t errlen, const char *what)
{
    if (!state->batch_open)
        return state_fail(err, errlen, STATE_ERR_NO_BATCH, "%s needs state_batch_begin first",
                          what);
    return STATE_OK;
}
