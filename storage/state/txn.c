/* storage/state/txn.c: etcd's Txn, nested ones included: every compare of the tree on the state
 * before the txn, then the chosen branches applied as one write transaction (a single main revision,
 * sub-revisions in op order, depth first). The branches are checked before anything is written, as
 * etcd's applier does, so a failing txn writes nothing. */
#include <stdlib.h>
#include <string.h>

#include "bytes_compare.h"
#include "internal.h"

struct compare_context {
    const struct state_compare *compare;
    bool holds;
    bool any;
};

static bool result_holds(enum state_compare_result result, int order)
{
    switch (result) {
    case STATE_COMPARE_EQUAL: return order == 0;
    case STATE_COMPARE_GREATER: return order > 0;
    case STATE_COMPARE_LESS: return order < 0;
    case STATE_COMPARE_NOT_EQUAL: return order != 0;
    }
    /* etcd's compareKV: a result it does not know holds (the request is not refused). */
    return true;
}

static int compare_numbers(int64_t a, int64_t b) { return a < b ? -1 : a > b ? 1 : 0; }

static bool kv_holds(const struct state_compare *compare, const struct state_kv *kv)
{
    int order = 0;
    switch (compare->target) {
    case STATE_TARGET_VERSION: order = compare_numbers(kv->version, compare->number); break;
    case STATE_TARGET_CREATE: order = compare_numbers(kv->create_revision, compare->number); break;
    case STATE_TARGET_MOD: order = compare_numbers(kv->mod_revision, compare->number); break;
    case STATE_TARGET_LEASE: order = compare_numbers(kv->lease, compare->number); break;
    case STATE_TARGET_VALUE:
        order = bytes_compare(kv->value, kv->value_len, compare->value.data,
                                    compare->value.len);
        break;
    }
    return result_holds(compare->result, order);
}

static int check_one(void *context, struct state_kv *kv)
{
    struct compare_context *compare = context;
    compare->any = true;
    if (!kv_holds(compare->compare, kv)) {
        compare->holds = false;
        return 1;
    }
    return 0;
}

/* etcd applyCompare: every key of the range must satisfy it; no key at all compares as a zero kv,
 * except that a VALUE compare on nothing is false. */
static int evaluate(struct state *state, const struct state_compare *compare, bool *holds,
                    char *err, size_t errlen)
{
    struct state_key_range range;
    state_key_range_init(&range, compare->key, compare->range_end);
    struct compare_context context = {.compare = compare, .holds = true};
    int status = state_scan_current(state, &range, false, check_one, &context, err, errlen);
    if (status != STATE_OK)
        return status;
    if (!context.any) {
        struct state_kv zero = {0};
        context.holds = compare->target != STATE_TARGET_VALUE && kv_holds(compare, &zero);
    }
    *holds = context.holds;
    return STATE_OK;
}

/* etcd's txnPath: the branch every txn of the tree takes, decided before anything is written.
 * Depth first: a txn's own entry, then those of the nested txns in the branch it takes. */
struct txn_path {
    bool *taken;
    size_t count;
    size_t capacity;
};

static const struct state_op *branch_of(const struct state_txn_request *txn, bool succeeded,
                                        size_t *count)
{
    *count = succeeded ? txn->success_count : txn->failure_count;
    return succeeded ? txn->success : txn->failure;
}

static int plan(struct state *state, const struct state_txn_request *txn, struct txn_path *path,
                char *err, size_t errlen)
{
    bool succeeded = true;
    for (size_t i = 0; succeeded && i < txn->compare_count; i++) {
        int status = evaluate(state, &txn->compares[i], &succeeded, err, errlen);
        if (status != STATE_OK)
            return status;
    }
    if (path->count == path->capacity) {
        size_t capacity = path->capacity ? path->capacity * 2 : 8;
        bool *taken = realloc(path->taken, capacity * sizeof *taken);
        if (taken == NULL)
            return state_fail(err, errlen, STATE_ERR_NOMEM, "txn path of %zu", path->count);
        path->taken = taken;
        path->capacity = capacity;
    }
    path->taken[path->count++] = succeeded;
    size_t count;
    const struct state_op *ops = branch_of(txn, succeeded, &count);
    for (size_t i = 0; i < count; i++) {
        if (ops[i].type != STATE_OP_TXN)
            continue;
        int status = plan(state, &ops[i].request.txn, path, err, errlen);
        if (status != STATE_OK)
            return status;
    }
    return STATE_OK;
}

static int check_put(struct state *state, const struct state_put_request *put, char *err,
                     size_t errlen)
{
    int status = STATE_OK;
    if (put->ignore_value || put->ignore_lease) {
        bool found;
        struct state_kv kv;
        status = state_current_get(state, put->key, &found, &kv, err, errlen);
        if (status == STATE_OK && found)
            state_kv_free_fields(&kv);
        else if (status == STATE_OK)
            status = state_fail(err, errlen, STATE_ERR_KEY_NOT_FOUND,
                                "txn put with ignore_value or ignore_lease on a missing key");
    }
    /* etcd checkRequestPut: the key for ignore_*, then the lease. */
    if (status == STATE_OK && put->lease != 0)
        status = state_lease_require(state, put->lease, err, errlen);
    return status;
}

/* etcd's checkRequests over the path: one pass with the put checks (`puts`), then one with the
 * range revisions, so an error is the one etcd would give first. */
static int check_tree(struct state *state, const struct state_txn_request *txn,
                      const struct txn_path *path, size_t *cursor, bool puts, char *err,
                      size_t errlen)
{
    size_t count;
    const struct state_op *ops = branch_of(txn, path->taken[(*cursor)++], &count);
    for (size_t i = 0; i < count; i++) {
        const struct state_op *op = &ops[i];
        int status = STATE_OK;
        switch (op->type) {
        case STATE_OP_RANGE:
            if (!puts)
                status = state_check_revision(state, op->request.range.revision, err, errlen);
            break;
        case STATE_OP_PUT:
            if (puts)
                status = check_put(state, &op->request.put, err, errlen);
            break;
        case STATE_OP_DELETE_RANGE: break;
        case STATE_OP_TXN:
            status = check_tree(state, &op->request.txn, path, cursor, puts, err, errlen);
            break;
        default:
            status = state_fail(err, errlen, STATE_ERR_INVALID, "txn op %zu has type %d", i,
                                (int)op->type);
        }
        if (status != STATE_OK)
            return status;
    }
    return STATE_OK;
}

static int apply_tree(struct state *state, const struct state_txn_request *txn,
                      const struct txn_path *path, size_t *cursor, struct state_write *write,
                      struct state_txn_response *response, char *err, size_t errlen)
{
    response->succeeded = path->taken[(*cursor)++];
    size_t count;
    const struct state_op *ops = branch_of(txn, response->succeeded, &count);
    if (count > 0) {
        response->responses = calloc(count, sizeof *response->responses);
        if (response->responses == NULL)
            return state_fail(err, errlen, STATE_ERR_NOMEM, "txn of %zu ops", count);
    }
    int status = STATE_OK;
    for (size_t i = 0; status == STATE_OK && i < count; i++) {
        struct state_op_response *out = &response->responses[i];
        out->type = ops[i].type;
        response->response_count = i + 1;
        switch (ops[i].type) {
        case STATE_OP_RANGE:
            state->txn_has_writes = write->sub > 0;
            status = state_range(state, &ops[i].request.range, &out->response.range, err, errlen);
            break;
        case STATE_OP_PUT:
            status = state_apply_put(state, write, &ops[i].request.put, &out->response.put, err,
                                     errlen);
            out->response.put.revision = write->main;
            break;
        case STATE_OP_DELETE_RANGE:
            status = state_apply_delete(state, write, &ops[i].request.delete_range,
                                        &out->response.delete_range, err, errlen);
            out->response.delete_range.revision =
                write->sub > 0 ? write->main : state->working.revision;
            break;
        case STATE_OP_TXN:
            status = apply_tree(state, &ops[i].request.txn, path, cursor, write,
                                &out->response.txn, err, errlen);
            break;
        }
    }
    return status;
}

int state_txn(struct state *state, const struct state_txn_request *request,
              struct state_txn_response *response, char *err, size_t errlen)
{
    memset(response, 0, sizeof *response);
    int status = state_require_batch(state, err, errlen, "state_txn");
    if (status != STATE_OK)
        return status;
    struct txn_path path = {0};
    status = plan(state, request, &path, err, errlen);
    size_t cursor = 0;
    if (status == STATE_OK)
        status = check_tree(state, request, &path, &cursor, true, err, errlen);
    cursor = 0;
    if (status == STATE_OK)
        status = check_tree(state, request, &path, &cursor, false, err, errlen);
    struct state_write write = {.main = state->working.revision + 1, .sub = 0};
    cursor = 0;
    if (status == STATE_OK)
        status = apply_tree(state, request, &path, &cursor, &write, response, err, errlen);
    free(path.taken);
    state->txn_has_writes = false;
    if (status != STATE_OK) {
        /* Only a failed check (nothing written), out-of-memory or an I/O error gets here; in the
         * last two the caller aborts the batch. */
        state_txn_response_free(response);
        return status;
    }
    if (write.sub > 0)
        state->working.revision = write.main;
    response->revision = state->working.revision;
    return STATE_OK;
}

static void op_responses_free(struct state_op_response *responses, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct state_op_response *out = &responses[i];
        switch (out->type) {
        case STATE_OP_RANGE: state_range_response_free(&out->response.range); break;
        case STATE_OP_PUT: state_put_response_free(&out->response.put); break;
        case STATE_OP_DELETE_RANGE: state_delete_response_free(&out->response.delete_range); break;
        case STATE_OP_TXN: state_txn_response_free(&out->response.txn); break;
        }
    }
    free(responses);
}

void state_txn_response_free(struct state_txn_response *response)
{
    if (response == NULL)
        return;
    op_responses_free(response->responses, response->response_count);
    memset(response, 0, sizeof *response);
}
