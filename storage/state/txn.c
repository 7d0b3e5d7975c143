/* storage/state/txn.c: etcd's Txn: compares on the state before the txn, then one branch of ops
 * applied as one write transaction (a single main revision, sub-revisions in op order). The branch
 * is checked before anything is written, as etcd's applier does, so a failing txn writes nothing. */
#include <stdlib.h>
#include <string.h>

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
    return false;
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
        order = state_bytes_compare(kv->value, kv->value_len, compare->value.data,
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
                    char *err, size_t err_len)
{
    struct state_key_range range;
    state_key_range_init(&range, compare->key, compare->range_end);
    struct compare_context context = {.compare = compare, .holds = true};
    int status = state_scan_current(state, &range, false, check_one, &context, err, err_len);
    if (status != STATE_OK)
        return status;
    if (!context.any) {
        struct state_kv zero = {0};
        context.holds = compare->target != STATE_TARGET_VALUE && kv_holds(compare, &zero);
    }
    *holds = context.holds;
    return STATE_OK;
}

/* The checks etcd makes on a branch before applying it. */
static int check_branch(struct state *state, const struct state_op *ops, size_t count, char *err,
                        size_t err_len)
{
    for (size_t i = 0; i < count; i++) {
        const struct state_op *op = &ops[i];
        int status = STATE_OK;
        if (op->type == STATE_OP_RANGE) {
            status = state_check_revision(state, op->request.range.revision, err, err_len);
        } else if (op->type == STATE_OP_PUT &&
                   (op->request.put.ignore_value || op->request.put.ignore_lease)) {
            bool found;
            struct state_kv kv;
            status = state_current_get(state, op->request.put.key, &found, &kv, err, err_len);
            if (status == STATE_OK && found)
                state_kv_free_fields(&kv);
            else if (status == STATE_OK)
                status = state_fail(err, err_len, STATE_ERR_KEY_NOT_FOUND,
                                    "txn put with ignore_value or ignore_lease on a missing key");
        } else if (op->type != STATE_OP_PUT && op->type != STATE_OP_DELETE_RANGE) {
            status = state_fail(err, err_len, STATE_ERR_INVALID, "txn op %zu has type %d", i,
                                (int)op->type);
        }
        /* etcd checkRequestPut: the key for ignore_*, then the lease. */
        if (status == STATE_OK && op->type == STATE_OP_PUT && op->request.put.lease != 0)
            status = state_lease_require(state, op->request.put.lease, err, err_len);
        if (status != STATE_OK)
            return status;
    }
    return STATE_OK;
}

int state_txn(struct state *state, const struct state_txn_request *request,
              struct state_txn_response *response, char *err, size_t err_len)
{
    memset(response, 0, sizeof *response);
    int status = state_require_batch(state, err, err_len, "state_txn");
    if (status != STATE_OK)
        return status;
    bool succeeded = true;
    for (size_t i = 0; succeeded && i < request->compare_count; i++) {
        status = evaluate(state, &request->compares[i], &succeeded, err, err_len);
        if (status != STATE_OK)
            return status;
    }
    const struct state_op *ops = succeeded ? request->success : request->failure;
    size_t count = succeeded ? request->success_count : request->failure_count;
    status = check_branch(state, ops, count, err, err_len);
    if (status != STATE_OK)
        return status;

    response->succeeded = succeeded;
    if (count > 0) {
        response->responses = calloc(count, sizeof *response->responses);
        if (response->responses == NULL)
            return state_fail(err, err_len, STATE_ERR_NOMEM, "txn of %zu ops", count);
    }
    struct state_write write = {.main = state->working.revision + 1, .sub = 0};
    for (size_t i = 0; status == STATE_OK && i < count; i++) {
        struct state_op_response *out = &response->responses[i];
        out->type = ops[i].type;
        response->response_count = i + 1;
        switch (ops[i].type) {
        case STATE_OP_RANGE:
            state->txn_has_writes = write.sub > 0;
            status = state_range(state, &ops[i].request.range, &out->response.range, err, err_len);
            break;
        case STATE_OP_PUT:
            status = state_apply_put(state, &write, &ops[i].request.put, &out->response.put, err,
                                     err_len);
            break;
        case STATE_OP_DELETE_RANGE:
            status = state_apply_delete(state, &write, &ops[i].request.delete_range,
                                        &out->response.delete_range, err, err_len);
            break;
        }
    }
    state->txn_has_writes = false;
    if (status != STATE_OK) {
        /* Only out-of-memory or an I/O error gets here; the caller aborts the batch. */
        state_txn_response_free(response);
        return status;
    }
    if (write.sub > 0)
        state->working.revision = write.main;
    response->revision = state->working.revision;
    for (size_t i = 0; i < response->response_count; i++) {
        struct state_op_response *out = &response->responses[i];
        if (out->type == STATE_OP_RANGE)
            out->response.range.revision = response->revision;
        else if (out->type == STATE_OP_PUT)
            out->response.put.revision = response->revision;
        else
            out->response.delete_range.revision = response->revision;
    }
    return STATE_OK;
}

void state_txn_response_free(struct state_txn_response *response)
{
    if (response == NULL)
        return;
    for (size_t i = 0; i < response->response_count; i++) {
        struct state_op_response *out = &response->responses[i];
        if (out->type == STATE_OP_RANGE)
            state_range_response_free(&out->response.range);
        else if (out->type == STATE_OP_PUT)
            state_put_response_free(&out->response.put);
        else
            state_delete_response_free(&out->response.delete_range);
    }
    free(response->responses);
    memset(response, 0, sizeof *response);
}
