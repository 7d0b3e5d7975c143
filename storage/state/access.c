/* storage/state/access.c: every RocksDB read and write of the applier goes through here, so reads made
 * while a batch is open see that batch's writes (a WriteBatchWithIndex over the DB), as etcd's txn
 * reads its own writes, and reads outside a batch see the committed state. */
#include "internal.h"

rocksdb_iterator_t *state_iterator(struct state *state)
{
    rocksdb_iterator_t *base = rocksdb_create_iterator(state->db, state->read_options);
    if (state->batch == NULL)
        return base;
    /* Takes ownership of base. A fresh iterator per operation: the batch changes under it. */
    return rocksdb_writebatch_wi_create_iterator_with_base(state->batch, base);
}

int state_get(struct state *state, const uint8_t *key, size_t key_len, char **value,
              size_t *value_len, char *err, size_t err_len)
{
    char *error = NULL;
    if (state->batch != NULL)
        *value = rocksdb_writebatch_wi_get_from_batch_and_db(state->batch, state->db,
                                                             state->read_options, (const char *)key,
                                                             key_len, value_len, &error);
    else
        *value = rocksdb_get(state->db, state->read_options, (const char *)key, key_len, value_len,
                             &error);
    if (error != NULL)
        return state_fail_rocksdb(err, err_len, error, "get");
    return STATE_OK;
}

void state_batch_put(struct state *state, const uint8_t *key, size_t key_len, const uint8_t *value,
                     size_t value_len)
{
    rocksdb_writebatch_wi_put(state->batch, (const char *)key, key_len, (const char *)value,
                              value_len);
}

void state_batch_delete(struct state *state, const uint8_t *key, size_t key_len)
{
    rocksdb_writebatch_wi_delete(state->batch, (const char *)key, key_len);
}

int state_require_batch(const struct state *state, char *err, size_t err_len, const char *what)
{
    if (state->batch == NULL)
        return state_fail(err, err_len, STATE_ERR_NO_BATCH, "%s needs state_batch_begin first",
                          what);
    return STATE_OK;
}
