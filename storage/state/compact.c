/* storage/state/compact.c: etcd's Compact(revision). Only keys changed since the previous compaction
 * can hold history that becomes droppable, and the revision-order records name exactly those keys,
 * so the work is proportional to the compacted span, not to the keyspace. Per such key it keeps the
 * newest version at or below the revision (dropped too when it is a delete) and drops older ones.
 * The revision-order records below the revision go; those at it stay with the versions they point at,
 * because etcd lets a watch start at the compact revision itself and see the puts made there.
 * Everything goes into the open batch with the new compact revision: a crash leaves the compaction
 * either fully done or not started (unlike etcd #14685/#17780, there is no second phase). */
#include <stdlib.h>
#include <string.h>

#include "bytes_compare.h"
#include "internal.h"
#include "keys.h"

struct key_list {
    struct state_bytes *items;
    size_t count;
    size_t capacity;
};

static int key_list_push(struct key_list *list, const uint8_t *key, size_t key_len)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 64;
        struct state_bytes *items = realloc(list->items, capacity * sizeof *items);
        if (items == NULL)
            return STATE_ERR_NOMEM;
        list->items = items;
        list->capacity = capacity;
    }
    uint8_t *copy = malloc(key_len + 1);
    if (copy == NULL)
        return STATE_ERR_NOMEM;
    memcpy(copy, key, key_len);
    list->items[list->count++] = (struct state_bytes){copy, key_len};
    return STATE_OK;
}

static void key_list_free(struct key_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free((void *)list->items[i].data);
    free(list->items);
}

static int compare_keys(const void *left, const void *right)
{
    const struct state_bytes *a = left, *b = right;
    return bytes_compare(a->data, a->len, b->data, b->len);
}

/* Deletes the listed RocksDB keys. Only once the iterator that found them is gone: writing to the
 * batch may move the bytes an iterator over it points at. */
static void delete_listed(struct state *state, const struct key_list *doomed)
{
    for (size_t i = 0; i < doomed->count; i++)
        state_batch_delete(state, doomed->items[i].data, doomed->items[i].len);
}

/* Lists the keys of the revision-order records in [previous compact, revision] and deletes those
 * below `revision` (the previous compaction kept the ones at its revision). */
static int take_compacted_span(struct state *state, int64_t revision, struct key_list *keys,
                               char *err, size_t errlen)
{
    struct key_list doomed = {0};
    uint8_t start[STATE_REVISION_KEY_LEN];
    state_key_revision(state->working.compact_revision, 0, start);
    rocksdb_iterator_t *iterator = state_iterator(state);
    int status = STATE_OK;
    for (rocksdb_iter_seek(iterator, (const char *)start, sizeof start);
         rocksdb_iter_valid(iterator); rocksdb_iter_next(iterator)) {
        size_t key_len;
        const uint8_t *key = (const uint8_t *)rocksdb_iter_key(iterator, &key_len);
        int64_t main, sub;
        if (!state_key_revision_parse(key, key_len, &main, &sub) || main > revision)
            break;
        size_t user_key_len;
        const uint8_t *user_key = (const uint8_t *)rocksdb_iter_value(iterator, &user_key_len);
        if (key_list_push(keys, user_key, user_key_len) != STATE_OK ||
            (main < revision && key_list_push(&doomed, key, key_len) != STATE_OK)) {
            status = state_fail(err, errlen, STATE_ERR_NOMEM, "compaction key list");
            break;
        }
    }
    rocksdb_iter_destroy(iterator);
    if (status == STATE_OK)
        delete_listed(state, &doomed);
    key_list_free(&doomed);
    return status;
}

/* Drops the versions of one key that compaction at `revision` makes unreachable, with the
 * revision-order records left pointing at them (those at `revision` itself). */
static int compact_key(struct state *state, struct state_bytes user_key, int64_t revision,
                       char *err, size_t errlen)
{
    size_t seek_len;
    uint8_t *seek = state_key_history(user_key.data, user_key.len, revision, -1, &seek_len);
    if (seek == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "key");
    rocksdb_iterator_t *iterator = state_iterator(state);
    int status = STATE_OK;
    bool newest = true;
    struct key_list doomed = {0};
    for (rocksdb_iter_seek(iterator, (const char *)seek, seek_len); rocksdb_iter_valid(iterator);
         rocksdb_iter_next(iterator)) {
        size_t key_len;
        const uint8_t *key = (const uint8_t *)rocksdb_iter_key(iterator, &key_len);
        uint8_t *found = NULL;
        size_t found_len;
        int64_t main, sub;
        if (!state_key_history_parse(key, key_len, &found, &found_len, &main, &sub))
            break;
        bool same = bytes_compare(found, found_len, user_key.data, user_key.len) == 0;
        free(found);
        if (!same)
            break;
        bool drop = !newest;
        if (newest) {
            size_t value_len;
            const uint8_t *value = (const uint8_t *)rocksdb_iter_value(iterator, &value_len);
            enum state_event_type type;
            struct state_kv kv;
            status = state_event_decode(value, value_len, true, &type, &kv);
            if (status != STATE_OK) {
                status = state_fail(err, errlen, status, "history record at revision %lld",
                                    (long long)main);
                break;
            }
            state_kv_free_fields(&kv);
            drop = type == STATE_EVENT_DELETE;
            newest = false;
        }
        uint8_t revision_key[STATE_REVISION_KEY_LEN];
        state_key_revision(main, sub, revision_key);
        if (drop && (key_list_push(&doomed, key, key_len) != STATE_OK ||
                     (main == revision &&
                      key_list_push(&doomed, revision_key, sizeof revision_key) != STATE_OK))) {
            status = state_fail(err, errlen, STATE_ERR_NOMEM, "compaction key list");
            break;
        }
    }
    rocksdb_iter_destroy(iterator);
    free(seek);
    if (status == STATE_OK)
        delete_listed(state, &doomed);
    key_list_free(&doomed);
    return status;
}

int state_compact(struct state *state, int64_t revision, char *err, size_t errlen)
{
    int status = state_require_batch(state, err, errlen, "state_compact");
    if (status != STATE_OK)
        return status;
    if (revision <= state->working.compact_revision)
        return state_fail(err, errlen, STATE_ERR_COMPACTED, "compact to %lld, compacted at %lld",
                          (long long)revision, (long long)state->working.compact_revision);
    if (revision > state->working.revision)
        return state_fail(err, errlen, STATE_ERR_FUTURE_REV, "compact to %lld, current %lld",
                          (long long)revision, (long long)state->working.revision);

    struct key_list keys = {0};
    status = take_compacted_span(state, revision, &keys, err, errlen);
    if (status == STATE_OK && keys.count > 1)
        qsort(keys.items, keys.count, sizeof *keys.items, compare_keys);
    for (size_t i = 0; status == STATE_OK && i < keys.count; i++) {
        if (i > 0 && compare_keys(&keys.items[i - 1], &keys.items[i]) == 0)
            continue;
        status = compact_key(state, keys.items[i], revision, err, errlen);
    }
    key_list_free(&keys);
    if (status == STATE_OK)
        state->working.compact_revision = revision;
    return status;
}
