/* storage/state/range.c: etcd's Range: a key or key range, now or at a past revision, with limit,
 * count (every key in the range, even past the limit), more, keys_only, count_only, the revision
 * filters and the sort options. As in etcd, filtering or sorting by anything but ascending key
 * fetches every match, filters, sorts, then applies the limit. */
#include <stdlib.h>
#include <string.h>

#include "bytes_compare.h"
#include "internal.h"

struct range_collector {
    const struct state_range_request *request;
    struct state_kv_list kvs;
    int64_t count;   /* every key in the range: etcd counts before it filters */
    int64_t matched; /* the keys that passed the revision filters */
    int64_t keep;    /* collect at most this many kvs; <0: all */
};

static bool passes_filters(const struct state_range_request *request, const struct state_kv *kv)
{
    return (request->min_mod_revision == 0 || kv->mod_revision >= request->min_mod_revision) &&
           (request->max_mod_revision == 0 || kv->mod_revision <= request->max_mod_revision) &&
           (request->min_create_revision == 0 || kv->create_revision >= request->min_create_revision) &&
           (request->max_create_revision == 0 || kv->create_revision <= request->max_create_revision);
}

static int collect(void *context, struct state_kv *kv)
{
    struct range_collector *collector = context;
    collector->count++;
    if (!passes_filters(collector->request, kv))
        return 0;
    collector->matched++;
    if (collector->keep >= 0 && (int64_t)collector->kvs.count >= collector->keep)
        return 0;
    return state_kv_list_push(&collector->kvs, kv) == STATE_OK ? 0 : STATE_ERR_NOMEM;
}

struct sort_spec {
    enum state_sort_order order;
    enum state_sort_target target;
};

static int compare_numbers(int64_t a, int64_t b) { return a < b ? -1 : a > b ? 1 : 0; }

static int compare_kvs(const void *left, const void *right, void *context)
{
    const struct state_kv *a = left, *b = right;
    const struct sort_spec *spec = context;
    int order = 0;
    switch (spec->target) {
    case STATE_SORT_BY_VERSION: order = compare_numbers(a->version, b->version); break;
    case STATE_SORT_BY_CREATE:
        order = compare_numbers(a->create_revision, b->create_revision);
        break;
    case STATE_SORT_BY_MOD: order = compare_numbers(a->mod_revision, b->mod_revision); break;
    case STATE_SORT_BY_VALUE:
        order = bytes_compare(a->value, a->value_len, b->value, b->value_len);
        break;
    case STATE_SORT_BY_KEY: break;
    }
    if (spec->order == STATE_SORT_DESCEND)
        order = -order;
    if (order == 0) /* keys are unique: a total order, the same on every member */
        order = bytes_compare(a->key, a->key_len, b->key, b->key_len) *
                (spec->target == STATE_SORT_BY_KEY && spec->order == STATE_SORT_DESCEND ? -1 : 1);
    return order;
}

int state_range(struct state *state, const struct state_range_request *request,
                struct state_range_response *response, char *err, size_t errlen)
{
    memset(response, 0, sizeof *response);
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    int status = state_check_revision(state, request->revision, err, errlen);
    if (status != STATE_OK)
        return status;

    struct sort_spec spec = {request->sort_order, request->sort_target};
    if (spec.target != STATE_SORT_BY_KEY && spec.order == STATE_SORT_NONE)
        spec.order = STATE_SORT_ASCEND; /* etcd: a target without an order sorts ascending */
    bool sort = spec.order == STATE_SORT_DESCEND ||
                (spec.order == STATE_SORT_ASCEND && spec.target != STATE_SORT_BY_KEY);

    struct range_collector collector = {.request = request, .keep = -1};
    if (request->count_only)
        collector.keep = 0;
    else if (!sort && request->limit > 0)
        collector.keep = request->limit;
    /* Value sort needs the values even for keys_only; they are dropped after sorting. */
    bool keys_only = request->keys_only && !(sort && spec.target == STATE_SORT_BY_VALUE);

    struct state_key_range range;
    state_key_range_init(&range, request->key, request->range_end);
    int64_t revision = request->revision > 0 ? request->revision : state->working.revision;
    bool now = request->revision <= 0 ||
               (revision == state->working.revision && !state->txn_has_writes);
    if (now)
        status = state_scan_current(state, &range, keys_only, collect, &collector, err, errlen);
    else
        status = state_scan_at(state, &range, revision, keys_only, collect, &collector, err,
                               errlen);
    if (status != STATE_OK) {
        state_kv_list_free(&collector.kvs);
        if (status == STATE_ERR_NOMEM)
            return state_fail(err, errlen, status, "range of %lld keys",
                              (long long)collector.count);
        return status;
    }

    if (sort && collector.kvs.count > 1)
        qsort_r(collector.kvs.items, collector.kvs.count, sizeof *collector.kvs.items, compare_kvs,
                &spec);
    if (request->limit > 0 && collector.kvs.count > (size_t)request->limit) {
        for (size_t i = (size_t)request->limit; i < collector.kvs.count; i++)
            state_kv_free_fields(&collector.kvs.items[i]);
        collector.kvs.count = (size_t)request->limit;
    }
    if (request->keys_only && !keys_only) {
        for (size_t i = 0; i < collector.kvs.count; i++) {
            free(collector.kvs.items[i].value);
            collector.kvs.items[i].value = NULL;
            collector.kvs.items[i].value_len = 0;
        }
    }
    /* Inside a txn that wrote, etcd's write transaction already reports the txn's revision. */
    response->revision = state->working.revision + (state->txn_has_writes ? 1 : 0);
    response->kvs = collector.kvs.items;
    response->kv_count = collector.kvs.count;
    response->count = collector.count;
    response->more = !request->count_only && request->limit > 0 && collector.matched > request->limit;
    return STATE_OK;
}

void state_range_response_free(struct state_range_response *response)
{
    if (response == NULL)
        return;
    struct state_kv_list list = {response->kvs, response->kv_count, response->kv_count};
    state_kv_list_free(&list);
    memset(response, 0, sizeof *response);
}
