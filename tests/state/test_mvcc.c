/* tests/state/test_mvcc.c: the MVCC rules of etcd 3.4's mvcc package as seen through the state API:
 * revisions, versions, txn compares and nested txns, ranges (past revisions, range_end forms,
 * limit/count/more, keys_only/count_only, revision filters, sort) and compaction. */
#include "state_test.h"

static char root[128];

static void test_revisions(void)
{
    struct state *state = open_fresh(root, sizeof root);
    /* A new store is at revision 1, as etcd's (mvcc currentRev starts at 1), compacted at 0. */
    CHECK_EQ(state_revision(state), 1);
    CHECK_EQ(state_compact_revision(state), 0);
    struct state_range_request everything = {.key = bytes_of("\x01"),
                                              .range_end = {(const uint8_t *)"", 1}};
    struct state_range_response empty;
    REQUIRE_OK(state_range(state, &everything, &empty, test_err, sizeof test_err));
    CHECK_EQ(empty.revision, 1);
    CHECK_EQ(empty.count, 0);
    CHECK_EQ(empty.kv_count, 0);
    state_range_response_free(&empty);
    everything.revision = 1; /* the start revision itself is readable (and empty) */
    REQUIRE_OK(state_range(state, &everything, &empty, test_err, sizeof test_err));
    CHECK_EQ(empty.revision, 1);
    CHECK_EQ(empty.count, 0);
    state_range_response_free(&empty);
    everything.revision = 2;
    CHECK_EQ(state_range(state, &everything, &empty, test_err, sizeof test_err),
             STATE_ERR_FUTURE_REV);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    /* The first write gets revision 2: create_revision and mod_revision 2. */
    struct state_put_request first = {.key = bytes_of("a"), .value = bytes_of("1")};
    struct state_put_response first_response;
    REQUIRE_OK(state_put(state, &first, &first_response, test_err, sizeof test_err));
    CHECK_EQ(first_response.revision, 2);
    state_put_response_free(&first_response);
    CHECK_EQ(state_revision(state), 2);
    struct state_kv first_kv;
    CHECK(get_at(state, "a", 0, &first_kv));
    CHECK_EQ(first_kv.create_revision, 2);
    CHECK_EQ(first_kv.mod_revision, 2);
    CHECK_EQ(first_kv.version, 1);
    free_kv(&first_kv);
    CHECK_EQ(put(state, "b", "1"), STATE_OK);
    CHECK_EQ(put(state, "a", "1"), STATE_OK); /* same value: a put still makes a revision */
    CHECK_EQ(state_revision(state), 4);
    CHECK_EQ(delete_range(state, "missing", NULL), 0);
    CHECK_EQ(state_revision(state), 4); /* a delete of nothing does not */
    CHECK_EQ(delete_range(state, "a", NULL), 1);
    CHECK_EQ(state_revision(state), 5);

    /* A txn with three puts is one revision; each kv carries it. */
    struct state_op puts[3] = {
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("x"), .value = bytes_of("1")}},
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("y"), .value = bytes_of("1")}},
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("z"), .value = bytes_of("1")}},
    };
    struct state_txn_request txn = {.success = puts, .success_count = 3};
    struct state_txn_response response;
    REQUIRE_OK(state_txn(state, &txn, &response, test_err, sizeof test_err));
    CHECK(response.succeeded);
    CHECK_EQ(response.revision, 6);
    CHECK_EQ(response.response_count, 3);
    state_txn_response_free(&response);
    CHECK_EQ(state_revision(state), 6);
    const char *keys[] = {"x", "y", "z"};
    for (int i = 0; i < 3; i++) {
        struct state_kv kv;
        CHECK(get_at(state, keys[i], 0, &kv));
        CHECK_EQ(kv.mod_revision, 6);
        CHECK_EQ(kv.create_revision, 6);
        free_kv(&kv);
    }
    /* A txn that only reads, or deletes nothing, keeps the revision. */
    struct state_op reads[2] = {
        {.type = STATE_OP_RANGE, .request.range = {.key = bytes_of("x")}},
        {.type = STATE_OP_DELETE_RANGE, .request.delete_range = {.key = bytes_of("nothing")}},
    };
    struct state_txn_request read_txn = {.success = reads, .success_count = 2};
    REQUIRE_OK(state_txn(state, &read_txn, &response, test_err, sizeof test_err));
    CHECK_EQ(response.revision, 6);
    CHECK_EQ(response.responses[0].response.range.kv_count, 1);
    state_txn_response_free(&response);
    CHECK_EQ(state_revision(state), 6);
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    CHECK_EQ(state_revision(state), 6);
    state_close(state);
}

static void test_versions(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "other", "x"), STATE_OK); /* rev 2: a new store is at 1 */
    CHECK_EQ(put(state, "k", "v1"), STATE_OK);    /* rev 3 */
    CHECK_EQ(put(state, "k", "v2"), STATE_OK);    /* rev 4 */
    struct state_kv kv;
    CHECK(get_at(state, "k", 0, &kv));
    CHECK_EQ(kv.create_revision, 3);
    CHECK_EQ(kv.mod_revision, 4);
    CHECK_EQ(kv.version, 2);
    CHECK(value_is(&kv, "v2"));
    free_kv(&kv);

    struct state_delete_request delete_request = {.key = bytes_of("k"), .prev_kv = true};
    struct state_delete_response deleted;
    REQUIRE_OK(state_delete_range(state, &delete_request, &deleted, test_err, sizeof test_err));
    CHECK_EQ(deleted.deleted, 1);
    CHECK_EQ(deleted.revision, 5);
    CHECK_EQ(deleted.prev_kv_count, 1);
    if (deleted.prev_kv_count == 1) {
        CHECK(value_is(&deleted.prev_kvs[0], "v2"));
        CHECK_EQ(deleted.prev_kvs[0].version, 2);
    }
    state_delete_response_free(&deleted);
    CHECK(!get_at(state, "k", 0, &kv));

    /* Re-created: a new create_revision, the version restarts at 1, no prev_kv. A put names a
     * granted lease (grants make no revision). */
    REQUIRE_OK(state_lease_grant(state, 42, 60, test_err, sizeof test_err));
    REQUIRE_OK(state_lease_grant(state, 7, 60, test_err, sizeof test_err));
    struct state_put_request request = {.key = bytes_of("k"), .value = bytes_of("v3"),
                                        .prev_kv = true, .lease = 42};
    struct state_put_response response;
    REQUIRE_OK(state_put(state, &request, &response, test_err, sizeof test_err));
    CHECK(!response.has_prev_kv);
    CHECK_EQ(response.revision, 6);
    state_put_response_free(&response);
    CHECK(get_at(state, "k", 0, &kv));
    CHECK_EQ(kv.create_revision, 6);
    CHECK_EQ(kv.mod_revision, 6);
    CHECK_EQ(kv.version, 1);
    CHECK_EQ(kv.lease, 42);
    free_kv(&kv);

    /* prev_kv on put; ignore_value and ignore_lease keep what is there. */
    struct state_put_request keep = {.key = bytes_of("k"), .value = bytes_of("ignored"),
                                     .prev_kv = true, .ignore_value = true, .lease = 7};
    REQUIRE_OK(state_put(state, &keep, &response, test_err, sizeof test_err));
    CHECK(response.has_prev_kv);
    CHECK(value_is(&response.prev_kv, "v3"));
    CHECK_EQ(response.prev_kv.version, 1);
    state_put_response_free(&response);
    CHECK(get_at(state, "k", 0, &kv));
    CHECK(value_is(&kv, "v3"));
    CHECK_EQ(kv.lease, 7);
    CHECK_EQ(kv.version, 2);
    free_kv(&kv);
    struct state_put_request keep_lease = {.key = bytes_of("k"), .value = bytes_of("v4"),
                                           .ignore_lease = true};
    REQUIRE_OK(state_put(state, &keep_lease, &response, test_err, sizeof test_err));
    CHECK(get_at(state, "k", 0, &kv));
    CHECK(value_is(&kv, "v4"));
    CHECK_EQ(kv.lease, 7);
    free_kv(&kv);
    int64_t before = state_revision(state);
    struct state_put_request missing = {.key = bytes_of("nope"), .ignore_value = true};
    CHECK_EQ(state_put(state, &missing, &response, test_err, sizeof test_err),
             STATE_ERR_KEY_NOT_FOUND);
    CHECK(strstr(test_err, "etcdserver: key not found") != NULL);
    CHECK_EQ(state_revision(state), before);
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    state_close(state);
}

struct compare_case {
    enum state_compare_target target;
    enum state_compare_result result;
    int64_t number;
    const char *value;
    bool expected;
};

static bool run_compare(struct state *state, const char *key, const struct state_compare *compare)
{
    (void)key;
    struct state_op on_success = {.type = STATE_OP_PUT,
                                  .request.put = {.key = bytes_of("outcome"),
                                                  .value = bytes_of("success")}};
    struct state_op on_failure = {.type = STATE_OP_PUT,
                                  .request.put = {.key = bytes_of("outcome"),
                                                  .value = bytes_of("failure")}};
    struct state_txn_request txn = {.compares = compare, .compare_count = 1,
                                    .success = &on_success, .success_count = 1,
                                    .failure = &on_failure, .failure_count = 1};
    struct state_txn_response response;
    if (state_txn(state, &txn, &response, test_err, sizeof test_err) != STATE_OK) {
        test_failures++;
        return false;
    }
    bool succeeded = response.succeeded;
    state_txn_response_free(&response);
    struct state_kv kv;
    if (!get_at(state, "outcome", 0, &kv)) {
        test_failures++;
        return false;
    }
    /* The branch taken must be the one that was applied. */
    CHECK(value_is(&kv, succeeded ? "success" : "failure"));
    free_kv(&kv);
    return succeeded;
}

static void test_txn_compares(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "filler", "x"), STATE_OK); /* rev 2: a new store is at 1 */
    CHECK_EQ(put(state, "k", "m"), STATE_OK);      /* rev 3: create 3 */
    REQUIRE_OK(state_lease_grant(state, 9, 60, test_err, sizeof test_err));
    struct state_put_request request = {.key = bytes_of("k"), .value = bytes_of("m"), .lease = 9};
    struct state_put_response put_response;
    REQUIRE_OK(state_put(state, &request, &put_response, test_err, sizeof test_err)); /* rev 4 */
    /* k: value "m", version 2, create 3, mod 4, lease 9 */
    const struct compare_case cases[] = {
        {STATE_TARGET_VERSION, STATE_COMPARE_EQUAL, 2, NULL, true},
        {STATE_TARGET_VERSION, STATE_COMPARE_EQUAL, 3, NULL, false},
        {STATE_TARGET_VERSION, STATE_COMPARE_GREATER, 1, NULL, true},
        {STATE_TARGET_VERSION, STATE_COMPARE_GREATER, 2, NULL, false},
        {STATE_TARGET_VERSION, STATE_COMPARE_LESS, 3, NULL, true},
        {STATE_TARGET_VERSION, STATE_COMPARE_LESS, 2, NULL, false},
        {STATE_TARGET_VERSION, STATE_COMPARE_NOT_EQUAL, 1, NULL, true},
        {STATE_TARGET_VERSION, STATE_COMPARE_NOT_EQUAL, 2, NULL, false},
        {STATE_TARGET_CREATE, STATE_COMPARE_EQUAL, 3, NULL, true},
        {STATE_TARGET_CREATE, STATE_COMPARE_GREATER, 3, NULL, false},
        {STATE_TARGET_CREATE, STATE_COMPARE_LESS, 4, NULL, true},
        {STATE_TARGET_CREATE, STATE_COMPARE_NOT_EQUAL, 3, NULL, false},
        {STATE_TARGET_MOD, STATE_COMPARE_EQUAL, 4, NULL, true},
        {STATE_TARGET_MOD, STATE_COMPARE_GREATER, 3, NULL, true},
        {STATE_TARGET_MOD, STATE_COMPARE_LESS, 4, NULL, false},
        {STATE_TARGET_MOD, STATE_COMPARE_NOT_EQUAL, 4, NULL, false},
        {STATE_TARGET_LEASE, STATE_COMPARE_EQUAL, 9, NULL, true},
        {STATE_TARGET_LEASE, STATE_COMPARE_GREATER, 9, NULL, false},
        {STATE_TARGET_LEASE, STATE_COMPARE_LESS, 10, NULL, true},
        {STATE_TARGET_LEASE, STATE_COMPARE_NOT_EQUAL, 0, NULL, true},
        {STATE_TARGET_VALUE, STATE_COMPARE_EQUAL, 0, "m", true},
        {STATE_TARGET_VALUE, STATE_COMPARE_EQUAL, 0, "mm", false},
        {STATE_TARGET_VALUE, STATE_COMPARE_GREATER, 0, "l", true},
        {STATE_TARGET_VALUE, STATE_COMPARE_GREATER, 0, "n", false},
        {STATE_TARGET_VALUE, STATE_COMPARE_LESS, 0, "mm", true},
        {STATE_TARGET_VALUE, STATE_COMPARE_LESS, 0, "m", false},
        {STATE_TARGET_VALUE, STATE_COMPARE_NOT_EQUAL, 0, "x", true},
        {STATE_TARGET_VALUE, STATE_COMPARE_NOT_EQUAL, 0, "m", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct state_compare compare = {.result = cases[i].result, .target = cases[i].target,
                                        .key = bytes_of("k"), .number = cases[i].number,
                                        .value = bytes_of(cases[i].value)};
        bool outcome = run_compare(state, "k", &compare);
        if (outcome != cases[i].expected) {
            fprintf(stderr, "compare case %zu: target %d result %d gave %d\n", i,
                    (int)cases[i].target, (int)cases[i].result, (int)outcome);
            test_failures++;
        }
    }
    /* A missing key: version/create/mod compare as 0, a value compare is false. */
    struct state_compare absent_version = {.result = STATE_COMPARE_EQUAL,
                                           .target = STATE_TARGET_VERSION,
                                           .key = bytes_of("absent"), .number = 0};
    CHECK(run_compare(state, "absent", &absent_version));
    struct state_compare absent_create = {.result = STATE_COMPARE_LESS,
                                          .target = STATE_TARGET_CREATE,
                                          .key = bytes_of("absent"), .number = 1};
    CHECK(run_compare(state, "absent", &absent_create));
    struct state_compare absent_value = {.result = STATE_COMPARE_EQUAL,
                                         .target = STATE_TARGET_VALUE,
                                         .key = bytes_of("absent"), .value = bytes_of("")};
    CHECK(!run_compare(state, "absent", &absent_value));
    struct state_compare absent_value_ne = {.result = STATE_COMPARE_NOT_EQUAL,
                                            .target = STATE_TARGET_VALUE,
                                            .key = bytes_of("absent"), .value = bytes_of("x")};
    CHECK(!run_compare(state, "absent", &absent_value_ne));
    /* A range compare holds only when every key in it does: "filler" has version 1. */
    struct state_compare all_v1 = {.result = STATE_COMPARE_EQUAL, .target = STATE_TARGET_VERSION,
                                   .key = bytes_of("f"), .range_end = bytes_of("l"), .number = 1};
    CHECK(!run_compare(state, "f", &all_v1));
    struct state_compare all_positive = {.result = STATE_COMPARE_GREATER,
                                         .target = STATE_TARGET_VERSION, .key = bytes_of("f"),
                                         .range_end = bytes_of("l"), .number = 0};
    CHECK(run_compare(state, "f", &all_positive));

    /* Ops in a branch see earlier ops of the same branch; a failing branch writes nothing. */
    struct state_op branch[3] = {
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("t"), .value = bytes_of("1")}},
        {.type = STATE_OP_RANGE, .request.range = {.key = bytes_of("t")}},
        {.type = STATE_OP_DELETE_RANGE,
         .request.delete_range = {.key = bytes_of("t"), .prev_kv = true}},
    };
    struct state_txn_request txn = {.success = branch, .success_count = 3};
    struct state_txn_response response;
    int64_t before = state_revision(state);
    REQUIRE_OK(state_txn(state, &txn, &response, test_err, sizeof test_err));
    CHECK_EQ(response.revision, before + 1);
    CHECK_EQ(response.responses[1].response.range.kv_count, 1);
    CHECK_EQ(response.responses[2].response.delete_range.deleted, 1);
    CHECK_EQ(response.responses[0].response.put.revision, before + 1);
    state_txn_response_free(&response);

    struct state_op bad[2] = {
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("u"), .value = bytes_of("1")}},
        {.type = STATE_OP_RANGE, .request.range = {.key = bytes_of("u"), .revision = 999}},
    };
    struct state_txn_request bad_txn = {.success = bad, .success_count = 2};
    before = state_revision(state);
    CHECK_EQ(state_txn(state, &bad_txn, &response, test_err, sizeof test_err),
             STATE_ERR_FUTURE_REV);
    struct state_kv kv;
    CHECK(!get_at(state, "u", 0, &kv));
    CHECK_EQ(state_revision(state), before);

    /* Nested txns: every compare is evaluated before any write (the inner one does not see the
     * outer put of "n"), the tree shares one revision, ranges see earlier writes, and the ops
     * report etcd's revisions (the previous one for a range before the first write). */
    struct state_compare n_is_1 = {.result = STATE_COMPARE_EQUAL, .target = STATE_TARGET_VALUE,
                                   .key = bytes_of("n"), .value = bytes_of("1")};
    struct state_op inner_then[1] = {
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("m"), .value = bytes_of("saw n")}}};
    struct state_op inner_else[2] = {
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("m"), .value = bytes_of("no n")}},
        {.type = STATE_OP_RANGE, .request.range = {.key = bytes_of("n")}},
    };
    struct state_op outer[3] = {
        {.type = STATE_OP_RANGE, .request.range = {.key = bytes_of("n")}},
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("n"), .value = bytes_of("1")}},
        {.type = STATE_OP_TXN,
         .request.txn = {.compares = &n_is_1, .compare_count = 1, .success = inner_then,
                         .success_count = 1, .failure = inner_else, .failure_count = 2}},
    };
    struct state_txn_request nested = {.success = outer, .success_count = 3};
    before = state_revision(state);
    REQUIRE_OK(state_txn(state, &nested, &response, test_err, sizeof test_err));
    CHECK_EQ(response.revision, before + 1);
    CHECK_EQ(response.response_count, 3);
    if (response.response_count == 3) {
        CHECK_EQ(response.responses[0].response.range.revision, before);
        CHECK_EQ(response.responses[0].response.range.kv_count, 0);
        CHECK_EQ(response.responses[1].response.put.revision, before + 1);
        const struct state_txn_response *inner = &response.responses[2].response.txn;
        CHECK_EQ(response.responses[2].type, STATE_OP_TXN);
        CHECK(!inner->succeeded);
        CHECK_EQ(inner->revision, 0);
        CHECK_EQ(inner->response_count, 2);
        if (inner->response_count == 2) {
            CHECK_EQ(inner->responses[1].response.range.kv_count, 1);
            CHECK_EQ(inner->responses[1].response.range.revision, before + 1);
        }
    }
    state_txn_response_free(&response);
    CHECK(get_at(state, "m", 0, &kv));
    CHECK(value_is(&kv, "no n"));
    CHECK_EQ(kv.mod_revision, before + 1);
    free_kv(&kv);

    /* A failing check anywhere in the tree writes nothing. */
    struct state_op deep_bad[1] = {
        {.type = STATE_OP_RANGE, .request.range = {.key = bytes_of("n"), .revision = 999}}};
    struct state_op outer_bad[2] = {
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("v"), .value = bytes_of("1")}},
        {.type = STATE_OP_TXN, .request.txn = {.failure = deep_bad, .failure_count = 1,
                                               .compares = &n_is_1, .compare_count = 0}},
    };
    struct state_txn_request nested_bad = {.success = outer_bad, .success_count = 2};
    before = state_revision(state);
    /* The nested txn has no compares, so it takes its (empty) success branch: no error. */
    REQUIRE_OK(state_txn(state, &nested_bad, &response, test_err, sizeof test_err));
    state_txn_response_free(&response);
    outer_bad[1].request.txn.compare_count = 1; /* "n" is "1" now: still success */
    n_is_1.result = STATE_COMPARE_NOT_EQUAL;    /* now the failure branch, with the bad range */
    before = state_revision(state);
    CHECK_EQ(state_txn(state, &nested_bad, &response, test_err, sizeof test_err),
             STATE_ERR_FUTURE_REV);
    CHECK_EQ(state_revision(state), before);
    CHECK(get_at(state, "v", 0, &kv));
    CHECK_EQ(kv.version, 1); /* only the first txn's put */
    free_kv(&kv);
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    state_close(state);
}

/* Returns the keys of a range as "k1,k2," (values appended as =v when with_values). */
static void range_keys(struct state *state, const struct state_range_request *request, char *out,
                       size_t out_len, struct state_range_response *response_out)
{
    struct state_range_response response;
    out[0] = '\0';
    if (state_range(state, request, &response, test_err, sizeof test_err) != STATE_OK) {
        snprintf(out, out_len, "error");
        memset(response_out, 0, sizeof *response_out);
        return;
    }
    for (size_t i = 0; i < response.kv_count; i++) {
        size_t used = strlen(out);
        snprintf(out + used, out_len - used, "%.*s,", (int)response.kvs[i].key_len,
                 (const char *)response.kvs[i].key);
    }
    *response_out = response;
}

static void test_range_past_revisions(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "a", "1"), STATE_OK); /* 2: a new store is at 1 */
    CHECK_EQ(put(state, "a", "2"), STATE_OK); /* 3 */
    CHECK_EQ(put(state, "b", "1"), STATE_OK); /* 4 */
    CHECK_EQ(delete_range(state, "a", NULL), 1); /* 5 */
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));

    struct state_kv kv;
    CHECK(!get_at(state, "a", 1, &kv)); /* the start revision: nothing written yet */
    CHECK(get_at(state, "a", 2, &kv));
    CHECK(value_is(&kv, "1"));
    CHECK_EQ(kv.version, 1);
    free_kv(&kv);
    CHECK(get_at(state, "a", 4, &kv));
    CHECK(value_is(&kv, "2"));
    CHECK_EQ(kv.version, 2);
    CHECK_EQ(kv.mod_revision, 3);
    free_kv(&kv);
    CHECK(!get_at(state, "a", 5, &kv));
    CHECK(!get_at(state, "b", 3, &kv));

    char keys[256];
    struct state_range_response response;
    struct state_range_request all_at_4 = {.key = bytes_of("\x01"),
                                           .range_end = {(const uint8_t *)"", 1}, .revision = 4};
    range_keys(state, &all_at_4, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "a,b,") == 0);
    CHECK_EQ(response.count, 2);
    CHECK_EQ(response.revision, 5); /* the header carries the store revision */
    state_range_response_free(&response);
    all_at_4.revision = 5;
    range_keys(state, &all_at_4, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "b,") == 0);
    state_range_response_free(&response);
    all_at_4.revision = 1;
    range_keys(state, &all_at_4, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "") == 0);
    CHECK_EQ(response.count, 0);
    state_range_response_free(&response);

    struct state_range_request future = {.key = bytes_of("a"), .revision = 6};
    CHECK_EQ(state_range(state, &future, &response, test_err, sizeof test_err),
             STATE_ERR_FUTURE_REV);
    CHECK(strstr(test_err, "mvcc: required revision is a future revision") != NULL);

    /* Keys holding zero bytes keep their order in history: a, a\0, a\0\xff, a\x01. */
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    const char *odd[] = {"a\x01", "a\0\xff", "a", "a\0"};
    const size_t odd_len[] = {2, 3, 1, 2};
    for (int i = 0; i < 4; i++) {
        struct state_put_request request = {.key = {(const uint8_t *)odd[i], odd_len[i]},
                                            .value = bytes_of("z")};
        struct state_put_response put_response;
        REQUIRE_OK(state_put(state, &request, &put_response, test_err, sizeof test_err));
    }
    REQUIRE_OK(state_batch_commit(state, 2, test_err, sizeof test_err));
    int64_t now = state_revision(state);
    CHECK_EQ(put_batch(state, 3, "zz", "later"), STATE_OK);
    struct state_range_request prefix_a = {.key = bytes_of("a"), .range_end = bytes_of("b"),
                                           .revision = now};
    CHECK(state_range(state, &prefix_a, &response, test_err, sizeof test_err) == STATE_OK);
    CHECK_EQ(response.kv_count, 4);
    const size_t want_len[] = {1, 2, 3, 2};
    const char *want[] = {"a", "a\0", "a\0\xff", "a\x01"};
    for (size_t i = 0; i < response.kv_count && i < 4; i++)
        CHECK(response.kvs[i].key_len == want_len[i] &&
              memcmp(response.kvs[i].key, want[i], want_len[i]) == 0);
    state_range_response_free(&response);
    state_close(state);
}

static void test_range_options(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    /* put order gives mod revisions: e=2 d=3 c=4 b=5 a=6 da=7; values reverse the key order */
    const char *keys_in[] = {"e", "d", "c", "b", "a", "da"};
    const char *values[] = {"1", "3", "4", "5", "6", "2"};
    for (int i = 0; i < 6; i++)
        CHECK_EQ(put(state, keys_in[i], values[i]), STATE_OK);
    CHECK_EQ(put(state, "a", "6"), STATE_OK); /* a: version 2, mod 8 */
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));

    char keys[256];
    struct state_range_response response;
    struct state_range_request prefix = {.key = bytes_of("d"), .range_end = bytes_of("e")};
    range_keys(state, &prefix, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "d,da,") == 0);
    state_range_response_free(&response);

    struct state_range_request from_c = {.key = bytes_of("c"),
                                         .range_end = {(const uint8_t *)"", 1}};
    range_keys(state, &from_c, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "c,d,da,e,") == 0);
    state_range_response_free(&response);

    struct state_range_request limited = {.key = bytes_of("a"), .range_end = bytes_of("z"),
                                          .limit = 2};
    range_keys(state, &limited, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "a,b,") == 0);
    CHECK_EQ(response.count, 6);
    CHECK(response.more);
    state_range_response_free(&response);
    limited.limit = 6;
    range_keys(state, &limited, keys, sizeof keys, &response);
    CHECK_EQ(response.kv_count, 6);
    CHECK(!response.more);
    state_range_response_free(&response);

    struct state_range_request counting = {.key = bytes_of("a"), .range_end = bytes_of("z"),
                                           .count_only = true, .limit = 1};
    range_keys(state, &counting, keys, sizeof keys, &response);
    CHECK_EQ(response.kv_count, 0);
    CHECK_EQ(response.count, 6);
    CHECK(!response.more);
    state_range_response_free(&response);

    struct state_range_request keys_only = {.key = bytes_of("a"), .range_end = bytes_of("c"),
                                            .keys_only = true};
    range_keys(state, &keys_only, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "a,b,") == 0);
    for (size_t i = 0; i < response.kv_count; i++) {
        CHECK_EQ(response.kvs[i].value_len, 0);
        CHECK(response.kvs[i].mod_revision > 0);
    }
    state_range_response_free(&response);

    struct state_range_request descending = {.key = bytes_of("a"), .range_end = bytes_of("z"),
                                             .limit = 2, .sort_order = STATE_SORT_DESCEND};
    range_keys(state, &descending, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "e,da,") == 0);
    CHECK_EQ(response.count, 6);
    CHECK(response.more);
    state_range_response_free(&response);

    struct state_range_request by_mod = {.key = bytes_of("a"), .range_end = bytes_of("z"),
                                         .sort_target = STATE_SORT_BY_MOD}; /* NONE: ascending */
    range_keys(state, &by_mod, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "e,d,c,b,da,a,") == 0);
    state_range_response_free(&response);

    struct state_range_request by_value = {.key = bytes_of("a"), .range_end = bytes_of("z"),
                                           .sort_target = STATE_SORT_BY_VALUE,
                                           .sort_order = STATE_SORT_DESCEND, .keys_only = true,
                                           .limit = 3};
    range_keys(state, &by_value, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "a,b,c,") == 0);
    CHECK_EQ(response.kvs[0].value_len, 0);
    state_range_response_free(&response);

    struct state_range_request by_version = {.key = bytes_of("a"), .range_end = bytes_of("z"),
                                             .sort_target = STATE_SORT_BY_VERSION,
                                             .sort_order = STATE_SORT_DESCEND, .limit = 1};
    range_keys(state, &by_version, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "a,") == 0);
    state_range_response_free(&response);

    /* Revision filters (mod: e=2 d=3 c=4 b=5 da=7 a=8; create: a=6, the rest as mod): applied after
     * counting, so count stays 6, and more says whether the filtered keys exceed the limit. */
    struct state_range_request filtered = {.key = bytes_of("a"), .range_end = bytes_of("z"),
                                           .min_mod_revision = 4, .max_mod_revision = 7};
    range_keys(state, &filtered, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "b,c,da,") == 0);
    CHECK_EQ(response.count, 6);
    CHECK(!response.more);
    state_range_response_free(&response);
    filtered.limit = 2;
    range_keys(state, &filtered, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "b,c,") == 0);
    CHECK(response.more);
    state_range_response_free(&response);
    filtered.limit = 3;
    range_keys(state, &filtered, keys, sizeof keys, &response);
    CHECK(!response.more);
    state_range_response_free(&response);
    struct state_range_request created = {.key = bytes_of("a"), .range_end = bytes_of("z"),
                                          .min_create_revision = 3, .max_create_revision = 6,
                                          .sort_target = STATE_SORT_BY_CREATE,
                                          .sort_order = STATE_SORT_DESCEND, .limit = 1};
    range_keys(state, &created, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "a,") == 0); /* created 3..6: d c b a; newest first */
    CHECK(response.more);
    state_range_response_free(&response);
    /* An order outside the enum sorts nothing (etcd 3.4). */
    struct state_range_request odd_order = {.key = bytes_of("a"), .range_end = bytes_of("z"),
                                            .sort_order = (enum state_sort_order)3,
                                            .sort_target = STATE_SORT_BY_VALUE, .limit = 2};
    range_keys(state, &odd_order, keys, sizeof keys, &response);
    CHECK(strcmp(keys, "a,b,") == 0);
    CHECK(response.more);
    state_range_response_free(&response);

    struct state_range_request missing = {.key = bytes_of("nope")};
    range_keys(state, &missing, keys, sizeof keys, &response);
    CHECK_EQ(response.count, 0);
    CHECK_EQ(response.kv_count, 0);
    state_range_response_free(&response);
    state_close(state);
}

static void test_compaction(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "a", "1"), STATE_OK);     /* 2: a new store is at 1 */
    CHECK_EQ(put(state, "a", "2"), STATE_OK);     /* 3 */
    CHECK_EQ(put(state, "b", "1"), STATE_OK);     /* 4 */
    CHECK_EQ(delete_range(state, "b", NULL), 1);  /* 5 */
    CHECK_EQ(put(state, "c", "1"), STATE_OK);     /* 6 */
    CHECK_EQ(put(state, "a", "3"), STATE_OK);     /* 7 */
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));

    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    REQUIRE_OK(state_compact(state, 5, test_err, sizeof test_err));
    CHECK_EQ(state_compact(state, 5, test_err, sizeof test_err), STATE_ERR_COMPACTED);
    CHECK(strstr(test_err, "mvcc: required revision has been compacted") != NULL);
    CHECK_EQ(state_compact(state, 4, test_err, sizeof test_err), STATE_ERR_COMPACTED);
    CHECK_EQ(state_compact(state, 8, test_err, sizeof test_err), STATE_ERR_FUTURE_REV);
    REQUIRE_OK(state_batch_commit(state, 2, test_err, sizeof test_err));
    CHECK_EQ(state_compact_revision(state), 5);
    CHECK_EQ(state_revision(state), 7); /* compaction makes no revision */

    struct state_kv kv;
    struct state_range_request old = {.key = bytes_of("a"), .revision = 4};
    struct state_range_response response;
    CHECK_EQ(state_range(state, &old, &response, test_err, sizeof test_err), STATE_ERR_COMPACTED);
    CHECK(strstr(test_err, "mvcc: required revision has been compacted") != NULL);
    /* At the compact revision itself: the newest version at or below it is kept. */
    CHECK(get_at(state, "a", 5, &kv));
    CHECK(value_is(&kv, "2"));
    CHECK_EQ(kv.version, 2);
    free_kv(&kv);
    CHECK(!get_at(state, "b", 5, &kv));
    CHECK(get_at(state, "a", 6, &kv));
    CHECK(value_is(&kv, "2"));
    free_kv(&kv);
    CHECK(get_at(state, "a", 7, &kv));
    CHECK(value_is(&kv, "3"));
    CHECK_EQ(kv.version, 3);
    free_kv(&kv);

    /* Events from the compact revision on (etcd lets a watch start there): c@6 and a@7, whose
     * prev_kv (a@3, kept by the compaction) is still there. b's delete at 5 is gone with the
     * compaction; below 5 nothing can be read. */
    struct state_bytes every_key_after = {(const uint8_t *)"", 1};
    struct state_event_list events;
    CHECK_EQ(state_events_read(state, 4, bytes_of("a"), every_key_after, 0, false, &events, test_err,
                               sizeof test_err),
             STATE_ERR_COMPACTED);
    for (int64_t from = 5; from <= 6; from++) {
        REQUIRE_OK(state_events_read(state, from, bytes_of("a"), every_key_after, 0, true, &events,
                                     test_err, sizeof test_err));
        CHECK_EQ(events.count, 2);
        if (events.count == 2) {
            CHECK(key_is(&events.events[0].kv, "c"));
            CHECK(key_is(&events.events[1].kv, "a"));
            CHECK(events.events[1].has_prev_kv);
            CHECK(value_is(&events.events[1].prev_kv, "2"));
        }
        state_event_list_free(&events);
    }

    /* A put at the compact revision stays an event from it, until the next compaction passes it. */
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    REQUIRE_OK(state_compact(state, 6, test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(state, 3, test_err, sizeof test_err));
    REQUIRE_OK(state_events_read(state, 6, bytes_of("a"), every_key_after, 0, true, &events, test_err,
                                 sizeof test_err));
    CHECK_EQ(events.count, 2);
    if (events.count == 2) {
        CHECK(key_is(&events.events[0].kv, "c"));
        CHECK_EQ(events.events[0].kv.mod_revision, 6);
        CHECK(!events.events[0].has_prev_kv);
    }
    state_event_list_free(&events);

    /* Tombstones at or below the compact revision are dropped: compacting the whole history
     * after deleting everything leaves nothing for a range at that revision. */
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(delete_range(state, "a", "z"), 2); /* 8 */
    REQUIRE_OK(state_compact(state, 8, test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(state, 4, test_err, sizeof test_err));
    /* The deletes at 8 went with the compaction, their revision-order records too. */
    REQUIRE_OK(state_events_read(state, 8, every_key_after, every_key_after, 0, true, &events,
                                 test_err, sizeof test_err));
    CHECK_EQ(events.count, 0);
    state_event_list_free(&events);
    uint32_t hash_empty_after;
    int64_t hashed;
    REQUIRE_OK(state_hash(state, 0, &hash_empty_after, &hashed, test_err, sizeof test_err));
    struct state *empty = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(empty, test_err, sizeof test_err));
    for (int i = 0; i < 6; i++)
        CHECK_EQ(put(empty, "x", "x"), STATE_OK);
    CHECK_EQ(delete_range(empty, "x", NULL), 1); /* 8 */
    REQUIRE_OK(state_compact(empty, 8, test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(empty, 3, test_err, sizeof test_err));
    uint32_t hash_other;
    REQUIRE_OK(state_hash(empty, 0, &hash_other, &hashed, test_err, sizeof test_err));
    /* Both hold no history at all, only compact revision 8. */
    CHECK_EQ(hash_empty_after, hash_other);
    state_close(empty);

    /* The compact revision survives a restart. */
    state_close(state);
    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    CHECK_EQ(state_compact_revision(state), 8);
    CHECK_EQ(state_revision(state), 8);
    state_close(state);
}

/* Puts find the previous version in memory (key_index.c) and batches stay unindexed until a read
 * needs them (access.c): both must give exactly what RocksDB holds, across aborts, deletes, reads in
 * the middle of a batch and restarts. */
static void expect_version(struct state *state, const char *key, int64_t create, int64_t mod,
                           int64_t version)
{
    struct state_kv kv;
    CHECK(get_at(state, key, 0, &kv));
    CHECK_EQ(kv.create_revision, create);
    CHECK_EQ(kv.mod_revision, mod);
    CHECK_EQ(kv.version, version);
    free_kv(&kv);
}

static void test_batches_and_key_index(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(put_batch(state, 1, "a", "1")); /* rev 2 */
    expect_version(state, "a", 2, 2, 1);

    /* An aborted batch leaves nothing behind, also not in memory. */
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "a", "2"), STATE_OK); /* rev 3, dropped */
    CHECK_EQ(put(state, "new", "x"), STATE_OK);
    state_batch_abort(state);
    REQUIRE_OK(put_batch(state, 2, "a", "2")); /* rev 3 */
    expect_version(state, "a", 2, 3, 2);
    REQUIRE_OK(put_batch(state, 3, "new", "y")); /* rev 4 */
    expect_version(state, "new", 4, 4, 1);

    /* Delete and re-create inside one batch, a key written twice, a read in the middle. */
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(delete_range(state, "a", NULL), 1); /* rev 5 */
    CHECK_EQ(put(state, "a", "3"), STATE_OK);     /* rev 6 */
    CHECK_EQ(put(state, "b", "1"), STATE_OK);     /* rev 7 */
    expect_version(state, "b", 7, 7, 1);          /* a read: the batch is indexed from here */
    CHECK_EQ(put(state, "b", "2"), STATE_OK);     /* rev 8 */
    CHECK_EQ(put(state, "c", "1"), STATE_OK);     /* rev 9 */
    expect_version(state, "a", 6, 6, 1);
    REQUIRE_OK(state_batch_commit(state, 4, test_err, sizeof test_err));
    expect_version(state, "a", 6, 6, 1);
    expect_version(state, "b", 7, 8, 2);
    expect_version(state, "c", 9, 9, 1);
    REQUIRE_OK(put_batch(state, 5, "b", "3")); /* rev 10 */
    expect_version(state, "b", 7, 10, 3);

    /* History and revision records of unindexed batches read back in revision order. */
    struct state_kv kv;
    CHECK(get_at(state, "b", 7, &kv));
    CHECK(value_is(&kv, "1"));
    free_kv(&kv);
    CHECK(get_at(state, "b", 9, &kv));
    CHECK(value_is(&kv, "2"));
    free_kv(&kv);
    CHECK(!get_at(state, "a", 5, &kv));
    /* Watch events come from the revision records: every revision of the batches above, in order,
     * also those written after the read that indexed the batch. */
    struct state_event_list events;
    struct state_bytes every_key = {(const uint8_t *)"\0", 1};
    REQUIRE_OK(state_events_read(state, 2, every_key, every_key, 0, false, &events,
                                 test_err, sizeof test_err));
    CHECK_EQ(events.count, 9); /* revisions 2 .. 10, one change each */
    for (size_t i = 0; i < events.count; i++)
        CHECK_EQ(events.events[i].kv.mod_revision, (int64_t)i + 2);
    if (events.count == 9) {
        CHECK_EQ(events.events[3].type, STATE_EVENT_DELETE);
        CHECK(key_is(&events.events[6].kv, "b") && value_is(&events.events[6].kv, "2"));
    }
    state_event_list_free(&events);

    /* prev_kv after a put in the same batch sees that put. */
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "c", "2"), STATE_OK); /* rev 11 */
    struct state_put_request request = {.key = bytes_of("c"), .value = bytes_of("3"),
                                        .prev_kv = true};
    struct state_put_response response;
    REQUIRE_OK(state_put(state, &request, &response, test_err, sizeof test_err)); /* rev 12 */
    CHECK(response.has_prev_kv);
    CHECK(value_is(&response.prev_kv, "2"));
    CHECK_EQ(response.prev_kv.version, 2);
    state_put_response_free(&response);
    CHECK_EQ(delete_range(state, "b", NULL), 1); /* rev 13 */
    REQUIRE_OK(state_batch_commit(state, 6, test_err, sizeof test_err));
    CHECK(!get_at(state, "b", 0, &kv));
    REQUIRE_OK(put_batch(state, 7, "b", "4")); /* rev 14 */
    expect_version(state, "b", 14, 14, 1);
    state_close(state);

    /* After a restart the index starts empty and learns from RocksDB. */
    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    REQUIRE_OK(put_batch(state, 8, "c", "4")); /* rev 15 */
    expect_version(state, "c", 9, 15, 4);
    REQUIRE_OK(put_batch(state, 9, "a", "4")); /* rev 16 */
    expect_version(state, "a", 6, 16, 2);
    state_close(state);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_program = argv[0];
    RUN(test_revisions);
    RUN(test_versions);
    RUN(test_txn_compares);
    RUN(test_range_past_revisions);
    RUN(test_range_options);
    RUN(test_compaction);
    RUN(test_batches_and_key_index);
    return test_failures == 0 ? 0 : 1;
}
