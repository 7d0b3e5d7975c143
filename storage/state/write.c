/* storage/state/write.c: Put and DeleteRange as etcd's mvcc applies them. Each change writes three
 * records into the batch: the current version (or its removal), the history record keyed by key and
 * revision, and the revision-order pointer the watch events are read from; plus, when the key's
 * lease changes, its attachment records (lease.c). A put packs its KeyValue once, into the state's
 * scratch buffer, for both the current and the history record, and hands RocksDB keys and values in
 * pieces: no allocation per put. A standalone put or delete is its own write
 * transaction: one new main revision, unless a delete removes nothing. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "keys.h"

/* The current version through the open batch, or (committed_only) as committed. */
static int read_current(struct state *state, struct state_bytes key, bool committed_only,
                        bool *found, struct state_kv *kv, char *err, size_t errlen)
{
    *found = false;
    size_t current_len;
    uint8_t *current = state_key_current(key.data, key.len, &current_len);
    if (current == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "key");
    char *value = NULL;
    size_t value_len = 0;
    int status = committed_only
                     ? state_get_committed(state, current, current_len, &value, &value_len, err,
                                           errlen)
                     : state_get(state, current, current_len, &value, &value_len, err, errlen);
    free(current);
    if (status != STATE_OK || value == NULL)
        return status;
    status = state_kv_decode((const uint8_t *)value, value_len, false, kv);
    rocksdb_free(value);
    if (status != STATE_OK)
        return state_fail(err, errlen, status, "current value of a key");
    *found = true;
    return STATE_OK;
}

int state_current_get(struct state *state, struct state_bytes key, bool *found, struct state_kv *kv,
                      char *err, size_t errlen)
{
    return read_current(state, key, false, found, kv, err, errlen);
}

static const uint8_t current_prefix = STATE_PREFIX_CURRENT;
static const uint8_t history_prefix = STATE_PREFIX_HISTORY;

/* Writes the history record and the revision pointer of one change at write->main/sub. `packed` is kv
 * packed (state_kv_pack): the event is a few bytes in front of it. The keys are given in pieces, so
 * nothing is assembled first, unless the user key holds a zero byte and must be escaped (keys.h). */
static int record_change(struct state *state, struct state_write *write, enum state_event_type type,
                         const struct state_kv *kv, const uint8_t *packed, size_t packed_len,
                         char *err, size_t errlen)
{
    uint8_t event_prefix[STATE_EVENT_PREFIX_MAX];
    struct state_piece event[2] = {
        {event_prefix, state_event_prefix(type, packed_len, event_prefix)},
        {packed, packed_len},
    };
    if (kv->key_len > 0 && memchr(kv->key, 0, kv->key_len) == NULL) {
        uint8_t tail[2 + 16] = {0x00, 0x01}; /* end of key, then ~main ~sub */
        state_put_be64(tail + 2, ~(uint64_t)write->main);
        state_put_be64(tail + 10, ~(uint64_t)write->sub);
        struct state_piece history[3] = {
            {&history_prefix, 1}, {kv->key, kv->key_len}, {tail, sizeof tail}};
        state_batch_put_pieces(state, history, 3, event, 2);
    } else {
        size_t history_len;
        uint8_t *history = state_key_history(kv->key, kv->key_len, write->main, write->sub,
                                             &history_len);
        if (history == NULL)
            return state_fail(err, errlen, STATE_ERR_NOMEM, "key");
        struct state_piece key = {history, history_len};
        state_batch_put_pieces(state, &key, 1, event, 2);
        free(history);
    }
    uint8_t revision_key[STATE_REVISION_KEY_LEN];
    state_key_revision(write->main, write->sub, revision_key);
    state_batch_put(state, revision_key, sizeof revision_key, kv->key, kv->key_len);
    write->sub++;
    return STATE_OK;
}

/* kv packed into the state's scratch buffer; NULL when out of memory. */
static uint8_t *pack_kv(struct state *state, const struct state_kv *kv, size_t *packed_len)
{
    uint8_t *packed = state_scratch(state, state_kv_packed_size(kv));
    if (packed != NULL)
        *packed_len = state_kv_pack(kv, packed);
    return packed;
}

int state_apply_put(struct state *state, struct state_write *write,
                    const struct state_put_request *request, struct state_put_response *response,
                    char *err, size_t errlen)
{
    memset(response, 0, sizeof *response);
    if (request->key.len == 0)
        return state_fail(err, errlen, STATE_ERR_INVALID, "etcdserver: key is not provided");
    /* etcd's Put looks the lease up before it reads the key (so before ignore_* are checked). */
    int status = STATE_OK;
    if (request->lease != 0)
        status = state_lease_require(state, request->lease, err, errlen);
    if (status != STATE_OK)
        return status;
    struct state_kv previous = {0};
    bool found;
    struct state_key_meta meta;
    enum state_key_known known = STATE_KEY_UNKNOWN;
    /* Without prev_kv or ignore_value the previous version's facts are enough: the index has them
     * without a RocksDB read. */
    if (!request->prev_kv && !request->ignore_value)
        known = state_key_index_find(&state->key_index, request->key.data, request->key.len, &meta);
    if (known != STATE_KEY_UNKNOWN) {
        found = known == STATE_KEY_PRESENT;
        if (found) {
            previous.create_revision = meta.create_revision;
            previous.mod_revision = meta.mod_revision;
            previous.version = meta.version;
            previous.lease = meta.lease;
        }
    } else {
        /* A key the batch wrote is always in the index (unless noting it failed): any other key
         * reads its committed version, without indexing the batch for the read. */
        bool committed_only = !request->prev_kv && !request->ignore_value &&
                              !state->key_index.batch_unreliable;
        status = read_current(state, request->key, committed_only, &found, &previous, err, errlen);
        if (status != STATE_OK)
            return status;
        meta = (struct state_key_meta){previous.create_revision, previous.mod_revision,
                                       previous.version, previous.lease};
        state_key_index_learn(&state->key_index, request->key.data, request->key.len, found,
                              &meta);
    }
    if (!found && (request->ignore_value || request->ignore_lease))
        return state_fail(err, errlen, STATE_ERR_KEY_NOT_FOUND,
                          "put with ignore_value or ignore_lease on a missing key");

    struct state_kv kv = {
        .key = (uint8_t *)request->key.data,
        .key_len = request->key.len,
        .value = (uint8_t *)request->value.data,
        .value_len = request->value.len,
        .create_revision = found ? previous.create_revision : write->main,
        .mod_revision = write->main,
        .version = found ? previous.version + 1 : 1,
        .lease = request->lease,
    };
    if (request->ignore_value) {
        kv.value = previous.value;
        kv.value_len = previous.value_len;
    }
    if (request->ignore_lease)
        kv.lease = previous.lease;

    /* Packed once: the current record's value, and the history record's after its event prefix.
     * Nothing between here and record_change may use the scratch buffer. */
    size_t packed_len;
    uint8_t *packed = pack_kv(state, &kv, &packed_len);
    if (packed == NULL) {
        if (found)
            state_kv_free_fields(&previous);
        return state_fail(err, errlen, STATE_ERR_NOMEM, "put");
    }
    struct state_piece current[2] = {{&current_prefix, 1}, {kv.key, kv.key_len}};
    struct state_piece value = {packed, packed_len};
    state_batch_put_pieces(state, current, 2, &value, 1);
    meta = (struct state_key_meta){kv.create_revision, kv.mod_revision, kv.version, kv.lease};
    state_key_index_note(&state->key_index, kv.key, kv.key_len, true, &meta);
    status = state_lease_move_key(state, request->key, found ? previous.lease : 0, kv.lease, err,
                                  errlen);
    if (status == STATE_OK)
        status = record_change(state, write, STATE_EVENT_PUT, &kv, packed, packed_len, err,
                               errlen);
    if (status == STATE_OK && found && request->prev_kv) {
        response->has_prev_kv = true;
        response->prev_kv = previous; /* hand over the buffers */
        found = false;
    }
    if (found)
        state_kv_free_fields(&previous);
    return status;
}

static int collect_deleted(void *context, struct state_kv *kv)
{
    return state_kv_list_push(context, kv) == STATE_OK ? 0 : STATE_ERR_NOMEM;
}

int state_apply_delete(struct state *state, struct state_write *write,
                       const struct state_delete_request *request,
                       struct state_delete_response *response, char *err, size_t errlen)
{
    memset(response, 0, sizeof *response);
    struct state_key_range range;
    state_key_range_init(&range, request->key, request->range_end);
    struct state_kv_list deleted = {0};
    /* Collect first: the scan reads through the batch this loop writes into. */
    int status = state_scan_current(state, &range, !request->prev_kv, collect_deleted, &deleted,
                                    err, errlen);
    if (status == STATE_ERR_NOMEM)
        status = state_fail(err, errlen, status, "delete of %zu keys", deleted.count);
    for (size_t i = 0; status == STATE_OK && i < deleted.count; i++) {
        const struct state_kv *victim = &deleted.items[i];
        size_t current_len;
        uint8_t *current = state_key_current(victim->key, victim->key_len, &current_len);
        if (current == NULL) {
            status = state_fail(err, errlen, STATE_ERR_NOMEM, "key");
            break;
        }
        state_batch_delete(state, current, current_len);
        free(current);
        state_key_index_note(&state->key_index, victim->key, victim->key_len, false, NULL);
        struct state_bytes user_key = {victim->key, victim->key_len};
        status = state_lease_move_key(state, user_key, victim->lease, 0, err, errlen);
        if (status != STATE_OK)
            break;
        /* etcd's tombstone: the key and the revision of the delete, nothing else. */
        struct state_kv tombstone = {.key = victim->key, .key_len = victim->key_len,
                                     .mod_revision = write->main};
        size_t packed_len;
        uint8_t *packed = pack_kv(state, &tombstone, &packed_len);
        if (packed == NULL) {
            status = state_fail(err, errlen, STATE_ERR_NOMEM, "delete");
            break;
        }
        status = record_change(state, write, STATE_EVENT_DELETE, &tombstone, packed, packed_len,
                               err, errlen);
    }
    if (status != STATE_OK) {
        state_kv_list_free(&deleted);
        return status;
    }
    response->deleted = (int64_t)deleted.count;
    if (request->prev_kv) {
        response->prev_kvs = deleted.items;
        response->prev_kv_count = deleted.count;
    } else {
        state_kv_list_free(&deleted);
    }
    return STATE_OK;
}

/* Opens a write transaction at the next main revision. */
static struct state_write next_write(const struct state *state)
{
    return (struct state_write){.main = state->working.revision + 1, .sub = 0};
}

int state_put(struct state *state, const struct state_put_request *request,
              struct state_put_response *response, char *err, size_t errlen)
{
    memset(response, 0, sizeof *response);
    int status = state_require_batch(state, err, errlen, "state_put");
    if (status != STATE_OK)
        return status;
    struct state_write write = next_write(state);
    status = state_apply_put(state, &write, request, response, err, errlen);
    if (status != STATE_OK)
        return status;
    state->working.revision = write.main;
    response->revision = write.main;
    return STATE_OK;
}

int state_delete_range(struct state *state, const struct state_delete_request *request,
                       struct state_delete_response *response, char *err, size_t errlen)
{
    memset(response, 0, sizeof *response);
    int status = state_require_batch(state, err, errlen, "state_delete_range");
    if (status != STATE_OK)
        return status;
    struct state_write write = next_write(state);
    status = state_apply_delete(state, &write, request, response, err, errlen);
    if (status != STATE_OK)
        return status;
    if (write.sub > 0)
        state->working.revision = write.main;
    response->revision = state->working.revision;
    return STATE_OK;
}

void state_put_response_free(struct state_put_response *response)
{
    if (response == NULL)
        return;
    state_kv_free_fields(&response->prev_kv);
    memset(response, 0, sizeof *response);
}

void state_delete_response_free(struct state_delete_response *response)
{
    if (response == NULL)
        return;
    struct state_kv_list list = {response->prev_kvs, response->prev_kv_count,
                                 response->prev_kv_count};
    state_kv_list_free(&list);
    memset(response, 0, sizeof *response);
}
