/* storage/state/lease.c: etcd's leases, the part that must outlive a restart (etcd's lessor keeps it
 * in the "lease" bucket of the same backend): each lease with its granted TTL, and the keys attached
 * to it. Put and delete keep the attachments right through state_lease_move_key; a revoke deletes the
 * attached keys as one write transaction, as etcd's lessor.Revoke does in one txn, then the lease.
 * Expiry is not kept here: the node owns the clock and proposes the revokes. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "keys.h"

/* Reads the record of lease `id` (through the batch). *found false when there is none. */
static int read_lease(struct state *state, int64_t id, bool *found, int64_t *ttl, char *err,
                      size_t errlen)
{
    *found = false;
    *ttl = 0;
    if (id <= 0)
        return STATE_OK; /* never granted: state_lease_grant refuses such ids */
    uint8_t key[STATE_LEASE_KEY_LEN];
    state_key_lease(id, key);
    char *value = NULL;
    size_t value_len = 0;
    int status = state_get(state, key, sizeof key, &value, &value_len, err, errlen);
    if (status != STATE_OK || value == NULL)
        return status;
    if (value_len < 8) {
        rocksdb_free(value);
        return state_fail(err, errlen, STATE_ERR_CORRUPT, "lease %llx record has %zu bytes",
                          (unsigned long long)id, value_len);
    }
    *ttl = (int64_t)state_get_be64((const uint8_t *)value);
    rocksdb_free(value);
    *found = true;
    return STATE_OK;
}

int state_lease_require(struct state *state, int64_t id, char *err, size_t errlen)
{
    bool found;
    int64_t ttl;
    int status = read_lease(state, id, &found, &ttl, err, errlen);
    if (status == STATE_OK && !found)
        status = state_fail(err, errlen, STATE_ERR_LEASE_NOT_FOUND, "lease %llx",
                            (unsigned long long)id);
    return status;
}

int state_lease_move_key(struct state *state, struct state_bytes user_key, int64_t from, int64_t to,
                         char *err, size_t errlen)
{
    if (from == to)
        return STATE_OK;
    size_t item_len;
    uint8_t *item;
    if (from != 0) {
        item = state_key_lease_item(from, user_key.data, user_key.len, &item_len);
        if (item == NULL)
            return state_fail(err, errlen, STATE_ERR_NOMEM, "lease item");
        state_batch_delete(state, item, item_len);
        free(item);
    }
    if (to != 0) {
        item = state_key_lease_item(to, user_key.data, user_key.len, &item_len);
        if (item == NULL)
            return state_fail(err, errlen, STATE_ERR_NOMEM, "lease item");
        state_batch_put(state, item, item_len, (const uint8_t *)"", 0);
        free(item);
    }
    return STATE_OK;
}

/* A growable array of owned byte strings. */
struct bytes_list {
    struct state_bytes *items;
    size_t count;
    size_t capacity;
};

static int bytes_list_push(struct bytes_list *list, const uint8_t *data, size_t len)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 16;
        struct state_bytes *items = realloc(list->items, capacity * sizeof *items);
        if (items == NULL)
            return STATE_ERR_NOMEM;
        list->items = items;
        list->capacity = capacity;
    }
    uint8_t *copy = malloc(len + 1); /* +1: never malloc(0) */
    if (copy == NULL)
        return STATE_ERR_NOMEM;
    memcpy(copy, data, len);
    list->items[list->count++] = (struct state_bytes){copy, len};
    return STATE_OK;
}

static void bytes_list_free(struct bytes_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free((void *)list->items[i].data);
    free(list->items);
    *list = (struct bytes_list){0};
}

/* Copies the keys attached to lease `id`, in key order. */
static int attached_keys(struct state *state, int64_t id, struct bytes_list *keys, char *err,
                         size_t errlen)
{
    uint8_t prefix[STATE_LEASE_KEY_LEN];
    state_key_lease(id, prefix);
    /* Bounded by the next lease's prefix: after a storm of revokes the leases next to this one are runs of
     * deleted records, which an unbounded Next would step over one by one, a cost that grew with every
     * revoke (most of the storage thread in a 10,000-lease expiry). */
    uint8_t bound[STATE_LEASE_KEY_LEN];
    state_key_lease(id, bound);
    size_t carry = sizeof bound;
    while (carry > 0 && ++bound[carry - 1] == 0)
        carry--;
    rocksdb_readoptions_t *options = rocksdb_readoptions_create();
    if (carry > 0)
        rocksdb_readoptions_set_iterate_upper_bound(options, (const char *)bound, sizeof bound);
    rocksdb_iterator_t *iterator = state_iterator_with(state, options);
    int status = STATE_OK;
    for (rocksdb_iter_seek(iterator, (const char *)prefix, sizeof prefix);
         rocksdb_iter_valid(iterator); rocksdb_iter_next(iterator)) {
        size_t key_len;
        const uint8_t *key = (const uint8_t *)rocksdb_iter_key(iterator, &key_len);
        if (key_len < sizeof prefix || memcmp(key, prefix, sizeof prefix) != 0)
            break;
        if (key_len == sizeof prefix)
            continue; /* the lease record itself */
        if (bytes_list_push(keys, key + sizeof prefix, key_len - sizeof prefix) != STATE_OK) {
            status = state_fail(err, errlen, STATE_ERR_NOMEM, "keys of lease %llx",
                                (unsigned long long)id);
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
    rocksdb_readoptions_destroy(options);
    if (status != STATE_OK)
        bytes_list_free(keys);
    return status;
}

int state_lease_grant(struct state *state, int64_t id, int64_t ttl, char *err, size_t errlen)
{
    int status = state_require_batch(state, err, errlen, "state_lease_grant");
    if (status != STATE_OK)
        return status;
    if (id == 0) /* etcd's lessor.Grant answers NoLease with ErrLeaseNotFound */
        return state_fail(err, errlen, STATE_ERR_LEASE_NOT_FOUND, "lease id 0 is no lease");
    if (id < 0 || ttl < 0)
        return state_fail(err, errlen, STATE_ERR_INVALID, "lease %lld with TTL %lld",
                          (long long)id, (long long)ttl);
    bool found;
    int64_t granted;
    status = read_lease(state, id, &found, &granted, err, errlen);
    if (status != STATE_OK)
        return status;
    if (found)
        return state_fail(err, errlen, STATE_ERR_LEASE_EXISTS, "lease %llx",
                          (unsigned long long)id);
    uint8_t key[STATE_LEASE_KEY_LEN];
    state_key_lease(id, key);
    uint8_t value[8];
    state_put_be64(value, (uint64_t)ttl);
    state_batch_put(state, key, sizeof key, value, sizeof value);
    return STATE_OK;
}

int state_lease_revoke(struct state *state, int64_t id,
                       struct state_lease_revoke_response *response, char *err, size_t errlen)
{
    memset(response, 0, sizeof *response);
    int status = state_require_batch(state, err, errlen, "state_lease_revoke");
    if (status == STATE_OK)
        status = state_lease_require(state, id, err, errlen);
    struct bytes_list keys = {0};
    if (status == STATE_OK)
        status = attached_keys(state, id, &keys, err, errlen);
    if (status != STATE_OK)
        return status;
    /* Collected first: the deletes write into the batch the scan read through. */
    struct state_write write = {.main = state->working.revision + 1, .sub = 0};
    for (size_t i = 0; status == STATE_OK && i < keys.count; i++) {
        struct state_delete_request request = {.key = keys.items[i]};
        struct state_delete_response deleted;
        status = state_apply_delete(state, &write, &request, &deleted, err, errlen);
        response->deleted += deleted.deleted;
        state_delete_response_free(&deleted);
        /* The delete detached the key; this also drops an attachment whose key is gone. */
        if (status == STATE_OK)
            status = state_lease_move_key(state, keys.items[i], id, 0, err, errlen);
    }
    bytes_list_free(&keys);
    if (status != STATE_OK)
        return status; /* out of memory or I/O: the caller aborts the batch */
    uint8_t key[STATE_LEASE_KEY_LEN];
    state_key_lease(id, key);
    state_batch_delete(state, key, sizeof key);
    if (write.sub > 0)
        state->working.revision = write.main;
    response->revision = state->working.revision;
    return STATE_OK;
}

int state_lease_get(struct state *state, int64_t id, bool want_keys, struct state_lease *out,
                    char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    bool found;
    int64_t ttl;
    int status = read_lease(state, id, &found, &ttl, err, errlen);
    if (status != STATE_OK)
        return status;
    if (!found)
        return state_fail(err, errlen, STATE_ERR_LEASE_NOT_FOUND, "lease %llx",
                          (unsigned long long)id);
    if (want_keys) {
        struct bytes_list keys = {0};
        status = attached_keys(state, id, &keys, err, errlen);
        if (status != STATE_OK)
            return status;
        out->keys = keys.items;
        out->key_count = keys.count;
    }
    out->id = id;
    out->ttl = ttl;
    return STATE_OK;
}

void state_lease_free(struct state_lease *lease)
{
    if (lease == NULL)
        return;
    struct bytes_list keys = {lease->keys, lease->key_count, lease->key_count};
    bytes_list_free(&keys);
    memset(lease, 0, sizeof *lease);
}

static int lease_list_push(struct state_lease_list *list, size_t *capacity, int64_t id, int64_t ttl)
{
    if (list->count == *capacity) {
        size_t grown = *capacity ? *capacity * 2 : 16;
        struct state_lease *leases = realloc(list->leases, grown * sizeof *leases);
        if (leases == NULL)
            return STATE_ERR_NOMEM;
        list->leases = leases;
        *capacity = grown;
    }
    list->leases[list->count++] = (struct state_lease){.id = id, .ttl = ttl};
    return STATE_OK;
}

int state_lease_list(struct state *state, struct state_lease_list *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t capacity = 0;
    uint8_t seek[STATE_LEASE_KEY_LEN];
    state_key_lease(1, seek);
    rocksdb_iterator_t *iterator = state_iterator(state);
    int status = STATE_OK;
    rocksdb_iter_seek(iterator, (const char *)seek, sizeof seek);
    while (status == STATE_OK && rocksdb_iter_valid(iterator)) {
        size_t key_len;
        const uint8_t *key = (const uint8_t *)rocksdb_iter_key(iterator, &key_len);
        if (key_len < STATE_LEASE_KEY_LEN || key[0] != STATE_PREFIX_LEASE)
            break;
        int64_t id = (int64_t)state_get_be64(key + 1);
        if (key_len == STATE_LEASE_KEY_LEN) {
            size_t value_len;
            const uint8_t *value = (const uint8_t *)rocksdb_iter_value(iterator, &value_len);
            if (value_len < 8)
                status = state_fail(err, errlen, STATE_ERR_CORRUPT,
                                    "lease %llx record has %zu bytes", (unsigned long long)id,
                                    value_len);
            else if (lease_list_push(out, &capacity, id, (int64_t)state_get_be64(value)) !=
                     STATE_OK)
                status = state_fail(err, errlen, STATE_ERR_NOMEM, "lease list");
        }
        if (id <= 0 || id == INT64_MAX)
            break;
        /* Over the keys attached to this lease, to the next lease. */
        state_key_lease(id + 1, seek);
        rocksdb_iter_seek(iterator, (const char *)seek, sizeof seek);
    }
    char *error = NULL;
    rocksdb_iter_get_error(iterator, &error);
    if (error != NULL && status == STATE_OK)
        status = state_fail_rocksdb(err, errlen, error, "iterate");
    else
        rocksdb_free(error);
    rocksdb_iter_destroy(iterator);
    if (status != STATE_OK)
        state_lease_list_free(out);
    return status;
}

void state_lease_list_free(struct state_lease_list *list)
{
    if (list == NULL)
        return;
    free(list->leases);
    memset(list, 0, sizeof *list);
}
