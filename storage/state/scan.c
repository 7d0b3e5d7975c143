/* storage/state/scan.c: walks the live keys of a range, either now (the current prefix: one
 * sequential pass) or as they were at a past revision (the history prefix: per key, one seek to its
 * newest version at or below the revision). Range, delete, txn compares and the hash build on it. */
#include <stdlib.h>
#include <string.h>

#include "bytes_compare.h"
#include "internal.h"
#include "keys.h"

void state_key_range_init(struct state_key_range *range, struct state_bytes key,
                          struct state_bytes range_end)
{
    range->key = key;
    range->end = range_end;
    range->single = range_end.len == 0;
    range->unbounded = range_end.len == 1 && range_end.data[0] == 0;
}

bool state_key_range_after(const struct state_key_range *range, const uint8_t *user_key,
                           size_t user_key_len)
{
    if (range->single)
        return bytes_compare(user_key, user_key_len, range->key.data, range->key.len) > 0;
    if (range->unbounded)
        return false;
    return bytes_compare(user_key, user_key_len, range->end.data, range->end.len) >= 0;
}

int state_check_revision(const struct state *state, int64_t revision, char *err, size_t errlen)
{
    if (revision <= 0)
        return STATE_OK;
    if (revision > state->working.revision)
        return state_fail(err, errlen, STATE_ERR_FUTURE_REV, "revision %lld, current %lld",
                          (long long)revision, (long long)state->working.revision);
    if (revision < state->working.compact_revision)
        return state_fail(err, errlen, STATE_ERR_COMPACTED, "revision %lld, compacted at %lld",
                          (long long)revision, (long long)state->working.compact_revision);
    return STATE_OK;
}

/* Hands one decoded kv to the callback and frees what it did not take. */
static int deliver(state_scan_fn callback, void *context, struct state_kv *kv)
{
    int result = callback(context, kv);
    state_kv_free_fields(kv);
    return result;
}

int state_scan_current(struct state *state, const struct state_key_range *range, bool keys_only,
                       state_scan_fn callback, void *context, char *err, size_t errlen)
{
    size_t start_len;
    uint8_t *start = state_key_current(range->key.data, range->key.len, &start_len);
    if (start == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "key");
    int status = STATE_OK;
    if (range->single) {
        char *value = NULL;
        size_t value_len = 0;
        status = state_get(state, start, start_len, &value, &value_len, err, errlen);
        free(start);
        if (status != STATE_OK || value == NULL)
            return status;
        struct state_kv kv;
        status = state_kv_decode((const uint8_t *)value, value_len, keys_only, &kv);
        rocksdb_free(value);
        if (status != STATE_OK)
            return state_fail(err, errlen, status, "current value of a key");
        int result = deliver(callback, context, &kv);
        return result == 1 ? STATE_OK : result;
    }

    rocksdb_iterator_t *iterator = state_iterator(state);
    for (rocksdb_iter_seek(iterator, (const char *)start, start_len); rocksdb_iter_valid(iterator);
         rocksdb_iter_next(iterator)) {
        size_t key_len;
        const uint8_t *key = (const uint8_t *)rocksdb_iter_key(iterator, &key_len);
        if (key_len < 1 || key[0] != STATE_PREFIX_CURRENT ||
            state_key_range_after(range, key + 1, key_len - 1))
            break;
        size_t value_len;
        const uint8_t *value = (const uint8_t *)rocksdb_iter_value(iterator, &value_len);
        struct state_kv kv;
        status = state_kv_decode(value, value_len, keys_only, &kv);
        if (status != STATE_OK) {
            status = state_fail(err, errlen, status, "current value of a key");
            break;
        }
        int result = deliver(callback, context, &kv);
        if (result != 0) {
            status = result == 1 ? STATE_OK : result;
            break;
        }
    }
    char *error = NULL;
    rocksdb_iter_get_error(iterator, &error);
    if (error != NULL && status == STATE_OK)
        status = state_fail_rocksdb(err, errlen, error, "iterate");
    else
        rocksdb_free(error);
    rocksdb_iter_destroy(iterator);
    free(start);
    return status;
}

/* With the iterator on some version of user_key (or past it), moves to that key's newest version at
 * or below `revision` and delivers it when it is a put. */
static int visit_key_at(rocksdb_iterator_t *iterator, const uint8_t *user_key, size_t user_key_len,
                        int64_t revision, bool keys_only, state_scan_fn callback, void *context,
                        char *err, size_t errlen)
{
    size_t seek_len;
    uint8_t *seek = state_key_history(user_key, user_key_len, revision, -1, &seek_len);
    if (seek == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "key");
    rocksdb_iter_seek(iterator, (const char *)seek, seek_len);
    free(seek);
    if (!rocksdb_iter_valid(iterator))
        return STATE_OK;
    size_t key_len;
    const uint8_t *key = (const uint8_t *)rocksdb_iter_key(iterator, &key_len);
    uint8_t *found_key = NULL;
    size_t found_len;
    int64_t main, sub;
    if (!state_key_history_parse(key, key_len, &found_key, &found_len, &main, &sub))
        return STATE_OK; /* past the history prefix */
    bool same = bytes_compare(found_key, found_len, user_key, user_key_len) == 0;
    free(found_key);
    if (!same)
        return STATE_OK; /* every version of the key is newer than revision */
    size_t value_len;
    const uint8_t *value = (const uint8_t *)rocksdb_iter_value(iterator, &value_len);
    enum state_event_type type;
    struct state_kv kv;
    int status = state_event_decode(value, value_len, keys_only, &type, &kv);
    if (status != STATE_OK)
        return state_fail(err, errlen, status, "history record at revision %lld",
                          (long long)main);
    if (type == STATE_EVENT_DELETE) {
        state_kv_free_fields(&kv);
        return STATE_OK;
    }
    return deliver(callback, context, &kv);
}

int state_scan_at(struct state *state, const struct state_key_range *range, int64_t revision,
                  bool keys_only, state_scan_fn callback, void *context, char *err,
                  size_t errlen)
{
    rocksdb_iterator_t *iterator = state_iterator(state);
    int status = STATE_OK;
    if (range->single) {
        status = visit_key_at(iterator, range->key.data, range->key.len, revision, keys_only,
                              callback, context, err, errlen);
        rocksdb_iter_destroy(iterator);
        return status == 1 ? STATE_OK : status;
    }
    size_t seek_len;
    uint8_t *seek = state_key_history_first(range->key.data, range->key.len, &seek_len);
    if (seek == NULL) {
        rocksdb_iter_destroy(iterator);
        return state_fail(err, errlen, STATE_ERR_NOMEM, "key");
    }
    rocksdb_iter_seek(iterator, (const char *)seek, seek_len);
    free(seek);
    while (status == STATE_OK && rocksdb_iter_valid(iterator)) {
        size_t key_len;
        const uint8_t *key = (const uint8_t *)rocksdb_iter_key(iterator, &key_len);
        uint8_t *user_key = NULL;
        size_t user_key_len;
        int64_t main, sub;
        if (!state_key_history_parse(key, key_len, &user_key, &user_key_len, &main, &sub))
            break;
        if (state_key_range_after(range, user_key, user_key_len)) {
            free(user_key);
            break;
        }
        int result = visit_key_at(iterator, user_key, user_key_len, revision, keys_only,
                                  callback, context, err, errlen);
        if (result == 0) {
            size_t next_len;
            uint8_t *next = state_key_history_after(user_key, user_key_len, &next_len);
            if (next == NULL)
                result = state_fail(err, errlen, STATE_ERR_NOMEM, "key");
            else
                rocksdb_iter_seek(iterator, (const char *)next, next_len);
            free(next);
        }
        free(user_key);
        if (result == 1)
            break;
        status = result;
    }
    rocksdb_iter_destroy(iterator);
    return status;
}
