/* storage/state/access.c: every RocksDB read and write of the applier goes through here, so reads made
 * while a batch is open see that batch's writes (a WriteBatchWithIndex over the DB), as etcd's txn
 * reads its own writes, and reads outside a batch see the committed state.
 *
 * The index costs more than the RocksDB write itself (a skiplist insert per record), and a batch of
 * plain puts never reads its own writes (the key index answers for the keys), so a batch starts as a
 * plain WriteBatch and is indexed only when the first read through it comes. Revision records ('r')
 * wait in a batch of their own and go last: their keys are the largest and always increase, so
 * written together they append to the memtable's skiplist without a search. Order between records of
 * different keys does not matter inside one atomic batch; for the same key it is kept (a delete of an
 * 'r' key first moves the waiting revision records in front of it). */
#include <stdlib.h>

#include "alloc.h"
#include "internal.h"
#include "keys.h"

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

/* Moves the waiting revision records behind everything written so far. */
static void release_revisions(struct state *state)
{
    if (rocksdb_writebatch_count(state->revisions) == 0)
        return;
    rocksdb_writebatch_iterate(state->revisions, state->plain, append_put, append_delete);
    rocksdb_writebatch_clear(state->revisions);
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
    release_revisions(state);
    rocksdb_writebatch_iterate(state->plain, state->batch, replay_put, replay_delete);
    rocksdb_writebatch_clear(state->plain);
}

rocksdb_iterator_t *state_iterator(struct state *state)
{
    rocksdb_iterator_t *base = rocksdb_create_iterator(state->db, state->read_options);
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

void state_batch_put(struct state *state, const uint8_t *key, size_t key_len, const uint8_t *value,
                     size_t value_len)
{
    if (state->batch != NULL)
        rocksdb_writebatch_wi_put(state->batch, (const char *)key, key_len, (const char *)value,
                                  value_len);
    else if (key_len > 0 && key[0] == STATE_PREFIX_REVISION)
        rocksdb_writebatch_put(state->revisions, (const char *)key, key_len, (const char *)value,
                               value_len);
    else
        rocksdb_writebatch_put(state->plain, (const char *)key, key_len, (const char *)value,
                               value_len);
}

void state_batch_delete(struct state *state, const uint8_t *key, size_t key_len)
{
    if (state->batch != NULL) {
        rocksdb_writebatch_wi_delete(state->batch, (const char *)key, key_len);
        return;
    }
    if (key_len > 0 && key[0] == STATE_PREFIX_REVISION)
        release_revisions(state);
    rocksdb_writebatch_delete(state->plain, (const char *)key, key_len);
}

int state_batch_write(struct state *state, char **error)
{
    if (state->batch != NULL) {
        rocksdb_write_writebatch_wi(state->db, state->write_options, state->batch, error);
    } else {
        release_revisions(state);
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
    rocksdb_writebatch_clear(state->revisions);
    state->batch_open = false;
}

int state_require_batch(const struct state *state, char *err, size_t errlen, const char *what)
{
    if (!state->batch_open)
        return state_fail(err, errlen, STATE_ERR_NO_BATCH, "%s needs state_batch_begin first",
                          what);
    return STATE_OK;
}
