/* storage/state/events.c: watch events read back from history. The revision-order records give the
 * order; each points at its history record (the event), and the record after it in key order is the
 * key's previous version (prev_kv). Compaction keeps every record newer than the compact revision
 * and each key's newest version at or below it, so prev_kv of any event it keeps is still there. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bytes_compare.h"
#include "internal.h"
#include "keys.h"

struct event_list {
    struct state_event *items;
    size_t count;
    size_t capacity;
};

static int event_list_push(struct event_list *list, const struct state_event *event)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 16;
        struct state_event *items = realloc(list->items, capacity * sizeof *items);
        if (items == NULL)
            return STATE_ERR_NOMEM;
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] = *event;
    return STATE_OK;
}

/* Reads the event at (main, sub) of user_key and, when asked, the version before it, through iterator
 * (which it seeks: one iterator serves every event of a read, as creating one costs more than the seek). */
static int read_event(rocksdb_iterator_t *iterator, const uint8_t *user_key, size_t user_key_len,
                      int64_t main, int64_t sub, bool want_prev_kv, struct state_event *event,
                      char *err, size_t errlen)
{
    memset(event, 0, sizeof *event);
    size_t history_len;
    uint8_t *history = state_key_history(user_key, user_key_len, main, sub, &history_len);
    if (history == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "key");
    rocksdb_iter_seek(iterator, (const char *)history, history_len);
    int status = STATE_OK;
    bool reported = false; /* err already says what went wrong */
    size_t key_len = 0;
    const uint8_t *key = rocksdb_iter_valid(iterator)
                             ? (const uint8_t *)rocksdb_iter_key(iterator, &key_len)
                             : NULL;
    if (key == NULL || key_len != history_len || memcmp(key, history, history_len) != 0) {
        status = state_fail(err, errlen, STATE_ERR_CORRUPT,
                            "revision %lld.%lld has no history record", (long long)main,
                            (long long)sub);
        reported = true;
    } else {
        size_t value_len;
        const uint8_t *value = (const uint8_t *)rocksdb_iter_value(iterator, &value_len);
        enum state_event_type type;
        status = state_event_decode(value, value_len, false, &type, &event->kv);
        event->type = type;
    }
    if (status == STATE_OK && want_prev_kv) {
        rocksdb_iter_next(iterator);
        if (rocksdb_iter_valid(iterator)) {
            key = (const uint8_t *)rocksdb_iter_key(iterator, &key_len);
            uint8_t *previous_key = NULL;
            size_t previous_len;
            int64_t previous_main, previous_sub;
            if (state_key_history_parse(key, key_len, &previous_key, &previous_len,
                                        &previous_main, &previous_sub) &&
                bytes_compare(previous_key, previous_len, user_key, user_key_len) == 0) {
                size_t value_len;
                const uint8_t *value = (const uint8_t *)rocksdb_iter_value(iterator, &value_len);
                enum state_event_type type;
                struct state_kv previous;
                status = state_event_decode(value, value_len, false, &type, &previous);
                if (status == STATE_OK && type == STATE_EVENT_PUT) {
                    event->prev_kv = previous;
                    event->has_prev_kv = true;
                } else if (status == STATE_OK) {
                    state_kv_free_fields(&previous);
                }
            }
            free(previous_key);
        }
    }
    if (status != STATE_OK && !reported)
        status = state_fail(err, errlen, status, "event at revision %lld", (long long)main);
    if (status != STATE_OK) {
        state_kv_free_fields(&event->kv);
        state_kv_free_fields(&event->prev_kv);
    }
    free(history);
    return status;
}

int state_events_read(struct state *state, int64_t from_revision, struct state_bytes key,
                      struct state_bytes range_end, size_t max_events, bool want_prev_kv,
                      struct state_event_list *out, char *err, size_t errlen)
{
    return state_events_read_bounded(state, from_revision, key, range_end, max_events, 0, want_prev_kv, out,
                                     err, errlen);
}

/* The events of [key, range_end) from from_revision on as `db` read through `options` shows them, whose
 * committed revision and compact revision the caller gives: the state's own (its thread), or a view's
 * (a snapshot's, any thread). */
static int read_events(rocksdb_t *db, rocksdb_readoptions_t *options, const atomic_bool *cancelled,
                       int64_t committed_revision, int64_t compact_revision, int64_t from_revision, struct state_bytes key,
                       struct state_bytes range_end, size_t max_events, size_t max_scanned,
                       bool want_prev_kv, struct state_event_list *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (from_revision < 1)
        from_revision = 1;
    /* Committed values: events are read from committed state only. From the compact revision
     * itself is allowed (etcd): compaction kept the puts made at it. */
    if (from_revision < compact_revision)
        return state_fail(err, errlen, STATE_ERR_COMPACTED,
                          "events from %lld, compacted at %lld", (long long)from_revision,
                          (long long)compact_revision);
    struct state_key_range range;
    state_key_range_init(&range, key, range_end);

    uint8_t start[STATE_REVISION_KEY_LEN];
    state_key_revision(from_revision, 0, start);
    rocksdb_iterator_t *iterator = rocksdb_create_iterator(db, options);
    rocksdb_iterator_t *history_iterator = NULL; /* made at the first event in range */
    struct event_list events = {0};
    int status = STATE_OK;
    int64_t next_revision = committed_revision + 1;
    int64_t last_main = 0;
    size_t scanned = 0;
    for (rocksdb_iter_seek(iterator, (const char *)start, sizeof start);
         rocksdb_iter_valid(iterator); rocksdb_iter_next(iterator)) {
        size_t revision_len;
        const uint8_t *revision_key = (const uint8_t *)rocksdb_iter_key(iterator, &revision_len);
        int64_t main, sub;
        if (!state_key_revision_parse(revision_key, revision_len, &main, &sub))
            break;
        if (cancelled != NULL && atomic_load_explicit(cancelled, memory_order_relaxed)) {
            status = state_fail(err, errlen, STATE_ERR_INVALID, "the read was cancelled");
            break;
        }
        bool enough = (max_events > 0 && events.count >= max_events) || (max_scanned > 0 && scanned >= max_scanned);
        if (enough && main != last_main) {
            next_revision = main; /* never split one revision's events */
            break;
        }
        scanned++;
        last_main = main;
        size_t user_key_len;
        const uint8_t *user_key = (const uint8_t *)rocksdb_iter_value(iterator, &user_key_len);
        bool inside =
            bytes_compare(user_key, user_key_len, range.key.data, range.key.len) >= 0 &&
            !state_key_range_after(&range, user_key, user_key_len);
        if (!inside)
            continue;
        struct state_event event;
        if (history_iterator == NULL)
            history_iterator = rocksdb_create_iterator(db, options);
        status = read_event(history_iterator, user_key, user_key_len, main, sub, want_prev_kv, &event, err,
                            errlen);
        if (status == STATE_OK && event_list_push(&events, &event) != STATE_OK) {
            state_kv_free_fields(&event.kv);
            state_kv_free_fields(&event.prev_kv);
            status = state_fail(err, errlen, STATE_ERR_NOMEM, "%zu events", events.count);
        }
        if (status != STATE_OK)
            break;
    }
    rocksdb_iter_destroy(iterator);
    if (history_iterator != NULL)
        rocksdb_iter_destroy(history_iterator);
    out->events = events.items;
    out->count = events.count;
    out->next_revision = next_revision < from_revision ? from_revision : next_revision;
    if (status != STATE_OK)
        state_event_list_free(out);
    return status;
}

int state_events_read_bounded(struct state *state, int64_t from_revision, struct state_bytes key,
                              struct state_bytes range_end, size_t max_events, size_t max_scanned,
                              bool want_prev_kv, struct state_event_list *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    return read_events(state->db, state->read_options, NULL, state->committed.revision,
                       state->committed.compact_revision, from_revision, key, range_end, max_events,
                       max_scanned, want_prev_kv, out, err, errlen);
}

/* A RocksDB snapshot pins what it shows (no compaction of the state removes records under it), and the
 * revisions are taken with it on the state's thread, so a read through it on another thread sees exactly
 * the committed state of that moment. */
struct state_events_view {
    rocksdb_t *db;
    const rocksdb_snapshot_t *snapshot;
    rocksdb_readoptions_t *options;
    int64_t revision;
    int64_t compact_revision;
    atomic_bool cancelled;
};

int state_events_view_open(struct state *state, struct state_events_view **out, char *err, size_t errlen)
{
    *out = NULL;
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    struct state_events_view *view = calloc(1, sizeof *view);
    if (view == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "events view");
    view->options = rocksdb_readoptions_create();
    view->db = state->db;
    view->snapshot = rocksdb_create_snapshot(state->db);
    rocksdb_readoptions_set_snapshot(view->options, view->snapshot);
    view->revision = state->committed.revision;
    view->compact_revision = state->committed.compact_revision;
    atomic_init(&view->cancelled, false);
    *out = view;
    return STATE_OK;
}

int64_t state_events_view_revision(const struct state_events_view *view)
{
    return view->revision;
}

int state_events_view_read(struct state_events_view *view, int64_t from_revision, struct state_bytes key,
                           struct state_bytes range_end, size_t max_events, size_t max_scanned,
                           bool want_prev_kv, struct state_event_list *out, char *err, size_t errlen)
{
    return read_events(view->db, view->options, &view->cancelled, view->revision, view->compact_revision,
                       from_revision, key,
                       range_end, max_events, max_scanned, want_prev_kv, out, err, errlen);
}

void state_events_view_cancel(struct state_events_view *view)
{
    atomic_store_explicit(&view->cancelled, true, memory_order_relaxed);
}

void state_events_view_close(struct state_events_view *view)
{
    if (view == NULL)
        return;
    rocksdb_readoptions_destroy(view->options);
    rocksdb_release_snapshot(view->db, view->snapshot);
    free(view);
}

void state_event_list_free(struct state_event_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++) {
        state_kv_free_fields(&list->events[i].kv);
        state_kv_free_fields(&list->events[i].prev_kv);
    }
    free(list->events);
    memset(list, 0, sizeof *list);
}
