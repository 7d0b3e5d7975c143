/* tests/state/test_lease.c: etcd 3.4 lease semantics in the state machine: grant, keys attached by
 * put and detached by put/delete/txn, revoke deleting the attached keys in one revision (and showing
 * as watch events), missing leases refused before anything is written, and leases kept across
 * restart, snapshot and restore while state_hash and compaction stay blind to them. */
#include "state_test.h"

static char root[128];
static const struct state_bytes all_keys = {(const uint8_t *)"", 1};

static int grant(struct state *state, int64_t id, int64_t ttl)
{
    return state_lease_grant(state, id, ttl, test_err, sizeof test_err);
}

static int put_lease(struct state *state, const char *key, const char *value, int64_t lease)
{
    struct state_put_request request = {.key = bytes_of(key), .value = bytes_of(value),
                                        .lease = lease};
    struct state_put_response response;
    int status = state_put(state, &request, &response, test_err, sizeof test_err);
    state_put_response_free(&response);
    return status;
}

static int revoke_lease(struct state *state, int64_t id, struct state_lease_revoke_response *response)
{
    return state_lease_revoke(state, id, response, test_err, sizeof test_err);
}

/* The keys of lease `id` joined with ',' ("" when none, "-" when the lease does not exist). */
static const char *keys_of(struct state *state, int64_t id)
{
    static char joined[256];
    struct state_lease lease;
    if (state_lease_get(state, id, true, &lease, test_err, sizeof test_err) != STATE_OK)
        return "-";
    joined[0] = '\0';
    for (size_t i = 0; i < lease.key_count; i++) {
        size_t used = strlen(joined);
        snprintf(joined + used, sizeof joined - used, "%s%.*s", i ? "," : "",
                 (int)lease.keys[i].len, (const char *)lease.keys[i].data);
    }
    state_lease_free(&lease);
    return joined;
}

static int64_t lease_of(struct state *state, const char *key)
{
    struct state_kv kv;
    if (!get_at(state, key, 0, &kv))
        return -1;
    int64_t lease = kv.lease;
    free_kv(&kv);
    return lease;
}

static bool exists(struct state *state, const char *key)
{
    return lease_of(state, key) >= 0;
}

static void test_grant(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(grant(state, 0x10, 60), STATE_OK);
    CHECK_EQ(grant(state, 0x10, 30), STATE_ERR_LEASE_EXISTS);
    CHECK(strncmp(test_err, "etcdserver: lease already exists", 32) == 0);
    CHECK_EQ(grant(state, 0, 60), STATE_ERR_LEASE_NOT_FOUND);
    CHECK(strncmp(test_err, "etcdserver: requested lease not found", 37) == 0);
    CHECK_EQ(grant(state, -5, 60), STATE_ERR_INVALID);
    CHECK_EQ(grant(state, 0x11, -1), STATE_ERR_INVALID);
    /* A lease granted earlier in the batch is there for the batch's puts; no revision for grants. */
    CHECK_EQ(put_lease(state, "a", "1", 0x10), STATE_OK);
    CHECK_EQ(state_revision(state), 2);
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    CHECK_EQ(lease_of(state, "a"), 0x10);
    CHECK(strcmp(keys_of(state, 0x10), "a") == 0);
    struct state_lease lease;
    REQUIRE_OK(state_lease_get(state, 0x10, false, &lease, test_err, sizeof test_err));
    CHECK_EQ(lease.id, 0x10);
    CHECK_EQ(lease.ttl, 60);
    CHECK_EQ(lease.key_count, 0);
    state_lease_free(&lease);
    CHECK_EQ(state_lease_get(state, 0x99, true, &lease, test_err, sizeof test_err),
             STATE_ERR_LEASE_NOT_FOUND);
    CHECK_EQ(state_status_message(STATE_ERR_LEASE_NOT_FOUND)[0], 'e');

    /* A grant in an aborted batch never happened. */
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(grant(state, 0x12, 5), STATE_OK);
    state_batch_abort(state);
    CHECK(strcmp(keys_of(state, 0x12), "-") == 0);
    state_close(state);
}

static void test_put_with_missing_lease_writes_nothing(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "k", "old"), STATE_OK);
    CHECK_EQ(put_lease(state, "k", "new", 0x77), STATE_ERR_LEASE_NOT_FOUND);
    CHECK(strncmp(test_err, "etcdserver: requested lease not found", 37) == 0);
    CHECK_EQ(put_lease(state, "fresh", "v", 0x77), STATE_ERR_LEASE_NOT_FOUND);
    /* etcd checks the lease before ignore_lease's key: a missing key is not what it reports. */
    struct state_put_request request = {.key = bytes_of("nokey"), .lease = 0x77,
                                        .ignore_value = true};
    struct state_put_response response;
    CHECK_EQ(state_put(state, &request, &response, test_err, sizeof test_err),
             STATE_ERR_LEASE_NOT_FOUND);
    state_put_response_free(&response);
    CHECK_EQ(state_revision(state), 2);
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    struct state_kv kv;
    CHECK(get_at(state, "k", 0, &kv) && value_is(&kv, "old") && kv.version == 1 && kv.lease == 0);
    free_kv(&kv);
    CHECK(!exists(state, "fresh"));
    state_close(state);
}

static void test_revoke_deletes_in_one_revision(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(grant(state, 7, 10), STATE_OK);
    CHECK_EQ(grant(state, 8, 10), STATE_OK);
    CHECK_EQ(put_lease(state, "c", "3", 7), STATE_OK);
    CHECK_EQ(put_lease(state, "a", "1", 7), STATE_OK);
    CHECK_EQ(put_lease(state, "b\0x", "2", 7), STATE_OK); /* "b" (the C string ends at \0) */
    CHECK_EQ(put(state, "d", "4"), STATE_OK);
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    int64_t before = state_revision(state);
    CHECK_EQ(before, 5);

    struct state_lease_revoke_response response;
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    REQUIRE_OK(revoke_lease(state, 7, &response));
    CHECK_EQ(response.revision, before + 1);
    CHECK_EQ(response.deleted, 3);
    CHECK_EQ(revoke_lease(state, 7, &response), STATE_ERR_LEASE_NOT_FOUND);
    CHECK(strncmp(test_err, "etcdserver: requested lease not found", 37) == 0);
    /* A lease without keys goes without a revision. */
    REQUIRE_OK(revoke_lease(state, 8, &response));
    CHECK_EQ(response.revision, before + 1);
    CHECK_EQ(response.deleted, 0);
    REQUIRE_OK(state_batch_commit(state, 2, test_err, sizeof test_err));

    CHECK_EQ(state_revision(state), before + 1);
    CHECK(!exists(state, "a") && !exists(state, "b") && !exists(state, "c"));
    CHECK(exists(state, "d"));
    CHECK(strcmp(keys_of(state, 7), "-") == 0);
    CHECK(strcmp(keys_of(state, 8), "-") == 0);

    /* The watch sees three deletes at one revision with sub-revisions in key order. */
    struct state_event_list events;
    REQUIRE_OK(state_events_read(state, before + 1, bytes_of(""), all_keys, 0, true, &events,
                                 test_err, sizeof test_err));
    CHECK_EQ(events.count, 3);
    const char *order[] = {"a", "b", "c"};
    for (size_t i = 0; i < events.count && i < 3; i++) {
        CHECK_EQ(events.events[i].type, STATE_EVENT_DELETE);
        CHECK_EQ(events.events[i].kv.mod_revision, before + 1);
        CHECK(key_is(&events.events[i].kv, order[i]));
        CHECK(events.events[i].has_prev_kv && events.events[i].prev_kv.lease == 7);
    }
    state_event_list_free(&events);
    state_close(state);
}

static void test_put_reattaches(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(grant(state, 1, 10), STATE_OK);
    CHECK_EQ(grant(state, 2, 10), STATE_OK);
    CHECK_EQ(put_lease(state, "k", "v1", 1), STATE_OK);
    CHECK_EQ(put_lease(state, "k", "v2", 2), STATE_OK);
    CHECK(strcmp(keys_of(state, 1), "") == 0);
    CHECK(strcmp(keys_of(state, 2), "k") == 0);
    CHECK_EQ(put(state, "k", "v3"), STATE_OK);
    CHECK(strcmp(keys_of(state, 2), "") == 0);
    CHECK_EQ(lease_of(state, "k"), 0);
    CHECK_EQ(put_lease(state, "k", "v4", 1), STATE_OK);
    /* ignore_lease keeps the lease the key has. */
    struct state_put_request request = {.key = bytes_of("k"), .value = bytes_of("v5"),
                                        .ignore_lease = true};
    struct state_put_response response;
    REQUIRE_OK(state_put(state, &request, &response, test_err, sizeof test_err));
    state_put_response_free(&response);
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    CHECK_EQ(lease_of(state, "k"), 1);
    CHECK(strcmp(keys_of(state, 1), "k") == 0);
    CHECK(strcmp(keys_of(state, 2), "") == 0);

    /* Revoking the lease the key left does not touch it. */
    struct state_lease_revoke_response revoked;
    int64_t before = state_revision(state);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    REQUIRE_OK(revoke_lease(state, 2, &revoked));
    REQUIRE_OK(state_batch_commit(state, 2, test_err, sizeof test_err));
    CHECK_EQ(revoked.deleted, 0);
    CHECK_EQ(state_revision(state), before);
    CHECK(exists(state, "k"));
    state_close(state);
}

static void test_delete_detaches(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(grant(state, 3, 10), STATE_OK);
    CHECK_EQ(put_lease(state, "k", "v", 3), STATE_OK);
    CHECK_EQ(put_lease(state, "x1", "v", 3), STATE_OK);
    CHECK_EQ(put_lease(state, "x2", "v", 3), STATE_OK);
    CHECK_EQ(put_lease(state, "y", "v", 3), STATE_OK);
    CHECK_EQ(delete_range(state, "k", NULL), 1);
    CHECK_EQ(put(state, "k", "again"), STATE_OK); /* re-put without a lease */
    CHECK_EQ(delete_range(state, "x", "x3"), 2);
    CHECK(strcmp(keys_of(state, 3), "y") == 0);
    /* A txn delete detaches too. */
    struct state_op ops[] = {{.type = STATE_OP_DELETE_RANGE,
                              .request.delete_range = {.key = bytes_of("y")}}};
    struct state_txn_request txn = {.success = ops, .success_count = 1};
    struct state_txn_response response;
    REQUIRE_OK(state_txn(state, &txn, &response, test_err, sizeof test_err));
    state_txn_response_free(&response);
    CHECK(strcmp(keys_of(state, 3), "") == 0);
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));

    int64_t before = state_revision(state);
    struct state_lease_revoke_response revoked;
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    REQUIRE_OK(revoke_lease(state, 3, &revoked));
    REQUIRE_OK(state_batch_commit(state, 2, test_err, sizeof test_err));
    CHECK_EQ(revoked.deleted, 0);
    CHECK_EQ(state_revision(state), before);
    struct state_kv kv;
    CHECK(get_at(state, "k", 0, &kv) && value_is(&kv, "again") && kv.lease == 0);
    free_kv(&kv);
    state_close(state);
}

static void test_txn_checks_leases_first(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(grant(state, 5, 10), STATE_OK);
    int64_t before = state_revision(state);
    struct state_op ops[] = {
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("p1"), .value = bytes_of("v"),
                                               .lease = 5}},
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("p2"), .value = bytes_of("v"),
                                               .lease = 6}},
    };
    struct state_txn_request txn = {.success = ops, .success_count = 2};
    struct state_txn_response response;
    CHECK_EQ(state_txn(state, &txn, &response, test_err, sizeof test_err),
             STATE_ERR_LEASE_NOT_FOUND);
    CHECK(strncmp(test_err, "etcdserver: requested lease not found", 37) == 0);
    CHECK_EQ(state_revision(state), before);
    CHECK(!exists(state, "p1"));
    CHECK(strcmp(keys_of(state, 5), "") == 0);
    /* The same with an existing lease: both keys attached, one revision. */
    ops[1].request.put.lease = 5;
    REQUIRE_OK(state_txn(state, &txn, &response, test_err, sizeof test_err));
    CHECK_EQ(response.revision, before + 1);
    state_txn_response_free(&response);
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    CHECK(strcmp(keys_of(state, 5), "p1,p2") == 0);
    state_close(state);
}

static void test_list_and_restart(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(grant(state, 0x7fffffffffffffffLL, 100), STATE_OK);
    CHECK_EQ(grant(state, 0x300, 30), STATE_OK);
    CHECK_EQ(grant(state, 0x2, 20), STATE_OK);
    CHECK_EQ(grant(state, 0x1000, 40), STATE_OK);
    char key[16];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "key%02d", i);
        CHECK_EQ(put_lease(state, key, "v", i % 2 ? 0x300 : 0x7fffffffffffffffLL), STATE_OK);
    }
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    state_close(state);
    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));

    struct state_lease_list list;
    REQUIRE_OK(state_lease_list(state, &list, test_err, sizeof test_err));
    const int64_t ids[] = {0x2, 0x300, 0x1000, 0x7fffffffffffffffLL};
    const int64_t ttls[] = {20, 30, 40, 100};
    CHECK_EQ(list.count, 4);
    for (size_t i = 0; i < list.count && i < 4; i++) {
        CHECK_EQ(list.leases[i].id, ids[i]);
        CHECK_EQ(list.leases[i].ttl, ttls[i]);
        CHECK_EQ(list.leases[i].key_count, 0);
    }
    state_lease_list_free(&list);
    CHECK(strcmp(keys_of(state, 0x300), "key01,key03,key05,key07,key09,key11,key13,key15,key17,"
                                        "key19") == 0);

    struct state_lease_revoke_response revoked;
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    REQUIRE_OK(revoke_lease(state, 0x7fffffffffffffffLL, &revoked));
    CHECK_EQ(revoked.deleted, 10);
    REQUIRE_OK(state_lease_list(state, &list, test_err, sizeof test_err)); /* sees the batch */
    CHECK_EQ(list.count, 3);
    state_lease_list_free(&list);
    REQUIRE_OK(state_batch_commit(state, 2, test_err, sizeof test_err));
    state_close(state);
    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    CHECK(!exists(state, "key00") && exists(state, "key01"));
    REQUIRE_OK(state_lease_list(state, &list, test_err, sizeof test_err));
    CHECK_EQ(list.count, 3);
    state_lease_list_free(&list);

    /* An empty store lists nothing. */
    state_close(state);
    state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_lease_list(state, &list, test_err, sizeof test_err));
    CHECK_EQ(list.count, 0);
    state_lease_list_free(&list);
    state_close(state);
}

static void test_snapshot_keeps_leases(void)
{
    struct state *source = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(source, test_err, sizeof test_err));
    CHECK_EQ(grant(source, 42, 90), STATE_OK);
    CHECK_EQ(put_lease(source, "s1", "v", 42), STATE_OK);
    CHECK_EQ(put_lease(source, "s2", "v", 42), STATE_OK);
    REQUIRE_OK(state_batch_commit(source, 3, test_err, sizeof test_err));

    struct state_snapshot *snapshot;
    REQUIRE_OK(state_snapshot_open(source, &snapshot, test_err, sizeof test_err));
    char target_root[128];
    struct state *target = open_fresh(target_root, sizeof target_root);
    struct state_restore *restore;
    REQUIRE_OK(state_restore_begin(target, &restore, test_err, sizeof test_err));
    uint8_t chunk[4096];
    for (;;) {
        size_t len = 0;
        int status = state_snapshot_next_chunk(snapshot, chunk, sizeof chunk, &len, test_err,
                                               sizeof test_err);
        CHECK_EQ(status, STATE_OK);
        if (status != STATE_OK || len == 0)
            break;
        CHECK_EQ(state_restore_write(restore, chunk, len, test_err, sizeof test_err), STATE_OK);
    }
    state_snapshot_close(snapshot);
    CHECK_EQ(state_restore_finish(restore, test_err, sizeof test_err), STATE_OK);
    state_close(source);

    struct state_lease lease;
    REQUIRE_OK(state_lease_get(target, 42, true, &lease, test_err, sizeof test_err));
    CHECK_EQ(lease.ttl, 90);
    CHECK_EQ(lease.key_count, 2);
    state_lease_free(&lease);
    struct state_lease_revoke_response revoked;
    REQUIRE_OK(state_batch_begin(target, test_err, sizeof test_err));
    REQUIRE_OK(revoke_lease(target, 42, &revoked));
    REQUIRE_OK(state_batch_commit(target, 4, test_err, sizeof test_err));
    CHECK_EQ(revoked.deleted, 2);
    CHECK(!exists(target, "s1") && !exists(target, "s2"));
    state_close(target);
}

static uint32_t hash_of(struct state *state)
{
    uint32_t hash = 0;
    int64_t revision;
    if (state_hash(state, 0, &hash, &revision, test_err, sizeof test_err) != STATE_OK)
        test_failures++;
    return hash;
}

/* The same kv writes give the same hash whatever lease bookkeeping surrounds them, and compaction
 * leaves the leases alone. */
static void test_hash_ignores_lease_records(void)
{
    char other_root[128];
    struct state *plain = open_fresh(root, sizeof root);
    struct state *busy = open_fresh(other_root, sizeof other_root);
    struct state *states[] = {plain, busy};
    for (int s = 0; s < 2; s++) {
        struct state *state = states[s];
        REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
        CHECK_EQ(grant(state, 9, 10), STATE_OK);
        if (s == 1) {
            CHECK_EQ(grant(state, 10, 10), STATE_OK);
            CHECK_EQ(grant(state, 11, 10), STATE_OK);
        }
        CHECK_EQ(put_lease(state, "h1", "v", 9), STATE_OK);
        CHECK_EQ(put_lease(state, "h2", "v", 9), STATE_OK);
        if (s == 1) {
            struct state_lease_revoke_response revoked;
            CHECK_EQ(revoke_lease(state, 10, &revoked), STATE_OK);
        }
        CHECK_EQ(put(state, "h1", "w"), STATE_OK);
        REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    }
    CHECK_EQ(hash_of(plain), hash_of(busy));
    CHECK_EQ(state_revision(plain), state_revision(busy));

    REQUIRE_OK(state_batch_begin(busy, test_err, sizeof test_err));
    REQUIRE_OK(state_compact(busy, state_revision(busy), test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(busy, 2, test_err, sizeof test_err));
    CHECK(strcmp(keys_of(busy, 9), "h2") == 0);
    CHECK(strcmp(keys_of(busy, 11), "") == 0);
    state_close(plain);
    state_close(busy);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_program = argv[0];
    RUN(test_grant);
    RUN(test_put_with_missing_lease_writes_nothing);
    RUN(test_revoke_deletes_in_one_revision);
    RUN(test_put_reattaches);
    RUN(test_delete_detaches);
    RUN(test_txn_checks_leases_first);
    RUN(test_list_and_restart);
    RUN(test_snapshot_keeps_leases);
    RUN(test_hash_ignores_lease_records);
    return test_failures == 0 ? 0 : 1;
}
