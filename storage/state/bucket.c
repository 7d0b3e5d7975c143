/* storage/state/bucket.c: small named records of other stores kept beside the MVCC data, as etcd keeps
 * its auth users, roles and flags in bbolt buckets of the same backend: written in the applier's batch
 * (so they commit atomically with the applied index), carried by snapshots and restores (one DB), and
 * never seen by hash or compaction (their own prefix). The records' meaning is the caller's. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "keys.h"

/* 'b' + bucket + name; malloc'd. */
static uint8_t *bucket_key(uint8_t bucket, struct state_bytes name, size_t *length)
{
    uint8_t *key = malloc(2 + name.len);
    if (key == NULL)
        return NULL;
    key[0] = STATE_PREFIX_BUCKET;
    key[1] = bucket;
    if (name.len > 0)
        memcpy(key + 2, name.data, name.len);
    *length = 2 + name.len;
    return key;
}

int state_bucket_put(struct state *state, uint8_t bucket, struct state_bytes name,
                     struct state_bytes value, char *err, size_t errlen)
{
    int status = state_require_batch(state, err, errlen, "bucket put");
    if (status != STATE_OK)
        return status;
    size_t length;
    uint8_t *key = bucket_key(bucket, name, &length);
    if (key == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "bucket key of %zu bytes", name.len);
    state_batch_put(state, key, length, value.len > 0 ? value.data : (const uint8_t *)"", value.len);
    free(key);
    return STATE_OK;
}

int state_bucket_delete(struct state *state, uint8_t bucket, struct state_bytes name, char *err,
                        size_t errlen)
{
    int status = state_require_batch(state, err, errlen, "bucket delete");
    if (status != STATE_OK)
        return status;
    size_t length;
    uint8_t *key = bucket_key(bucket, name, &length);
    if (key == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "bucket key of %zu bytes", name.len);
    state_batch_delete(state, key, length);
    free(key);
    return STATE_OK;
}

int state_bucket_scan(struct state *state, uint8_t bucket, state_bucket_fn callback, void *context,
                      char *err, size_t errlen)
{
    const uint8_t prefix[2] = {STATE_PREFIX_BUCKET, bucket};
    rocksdb_iterator_t *iterator = state_iterator(state);
    int status = STATE_OK;
    for (rocksdb_iter_seek(iterator, (const char *)prefix, sizeof prefix);
         rocksdb_iter_valid(iterator); rocksdb_iter_next(iterator)) {
        size_t key_len, value_len;
        const uint8_t *key = (const uint8_t *)rocksdb_iter_key(iterator, &key_len);
        if (key_len < sizeof prefix || memcmp(key, prefix, sizeof prefix) != 0)
            break;
        const uint8_t *value = (const uint8_t *)rocksdb_iter_value(iterator, &value_len);
        struct state_bytes name = {key + sizeof prefix, key_len - sizeof prefix};
        struct state_bytes bytes = {value, value_len};
        int verdict = callback(context, name, bytes);
        if (verdict != 0) {
            status = verdict == 1 ? STATE_OK : verdict;
            break;
        }
    }
    if (status == STATE_OK) {
        char *error = NULL;
        rocksdb_iter_get_error(iterator, &error);
        if (error != NULL)
            status = state_fail_rocksdb(err, errlen, error, "bucket scan");
    }
    rocksdb_iter_destroy(iterator);
    return status;
}
