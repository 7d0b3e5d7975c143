/* tests/state/test_events.c: watch events read from history: revision order, key filtering, types,
 * prev_kv, continuation with next_revision, that one revision's events are never split, and views. */
#include "state_test.h"

static char root[128];
static const struct state_bytes all_keys = {(const uint8_t *)"", 1};

static void test_events_in_order(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "foo/a", "1"), STATE_OK);        /* 2: a new store is at 1 */
    CHECK_EQ(put(state, "bar", "1"), STATE_OK);          /* 3 */
    CHECK_EQ(put(state, "foo/a", "2"), STATE_OK);        /* 4 */
    CHECK_EQ(delete_range(state, "foo/a", NULL), 1);     /* 5 */
    CHECK_EQ(put(state, "foo/b", "1"), STATE_OK);        /* 6 */
    /* The batch is not committed yet: events come from committed state only. */
    struct state_event_list events;
    REQUIRE_OK(state_events_read(state, 2, bytes_of("foo/"), bytes_of("foo0"), 0, true, &events,
                                 test_err, sizeof test_err));
    CHECK_EQ(events.count, 0);
    state_event_list_free(&events);
    REQUIRE_OK(state_batch_commit(state, 7, test_err, sizeof test_err));

    REQUIRE_OK(state_events_read(state, 2, bytes_of("foo/"), bytes_of("foo0"), 0, true, &events,
                                 test_err, sizeof test_err));
    CHECK_EQ(events.count, 4);
    CHECK_EQ(events.next_revision, 7);
    if (events.count == 4) {
        const struct state_event *e = events.events;
        CHECK_EQ(e[0].type, STATE_EVENT_PUT);
        CHECK(key_is(&e[0].kv, "foo/a"));
        CHECK_EQ(e[0].kv.mod_revision, 2);
        CHECK(!e[0].has_prev_kv);
        CHECK_EQ(e[1].type, STATE_EVENT_PUT);
        CHECK_EQ(e[1].kv.version, 2);
        CHECK(e[1].has_prev_kv);
        CHECK(value_is(&e[1].prev_kv, "1"));
        CHECK_EQ(e[2].type, STATE_EVENT_DELETE);
        CHECK(key_is(&e[2].kv, "foo/a"));
        CHECK_EQ(e[2].kv.mod_revision, 5);
        CHECK_EQ(e[2].kv.version, 0);
        CHECK(e[2].has_prev_kv);
        CHECK(value_is(&e[2].prev_kv, "2"));
        CHECK(key_is(&e[3].kv, "foo/b"));
        CHECK_EQ(e[3].kv.create_revision, 6);
    }
    state_event_list_free(&events);

    /* From revision 4, one key, without prev_kv. */
    REQUIRE_OK(state_events_read(state, 4, bytes_of("foo/a"), (struct state_bytes){0}, 0, false,
                                 &events, test_err, sizeof test_err));
    CHECK_EQ(events.count, 2);
    if (events.count == 2) {
        CHECK_EQ(events.events[0].kv.mod_revision, 4);
        CHECK(!events.events[0].has_prev_kv);
        CHECK_EQ(events.events[1].type, STATE_EVENT_DELETE);
    }
    state_event_list_free(&events);

    /* Beyond the current revision: nothing yet, continue from there. */
    REQUIRE_OK(state_events_read(state, 10, all_keys, all_keys, 0, false, &events, test_err,
                                 sizeof test_err));
    CHECK_EQ(events.count, 0);
    CHECK_EQ(events.next_revision, 10);
    state_event_list_free(&events);
    state_close(state);
}

static void test_events_pagination(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "a", "1"), STATE_OK); /* 2: a new store is at 1 */
    struct state_op puts[3] = {
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("x"), .value = bytes_of("1")}},
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("y"), .value = bytes_of("1")}},
        {.type = STATE_OP_PUT, .request.put = {.key = bytes_of("z"), .value = bytes_of("1")}},
    };
    struct state_txn_request txn = {.success = puts, .success_count = 3};
    struct state_txn_response response;
    REQUIRE_OK(state_txn(state, &txn, &response, test_err, sizeof test_err)); /* 3.0 3.1 3.2 */
    state_txn_response_free(&response);
    CHECK_EQ(put(state, "b", "1"), STATE_OK); /* 4 */
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));

    /* max 2: the first page stops after a whole revision (2 and all of 3). */
    struct state_event_list events;
    REQUIRE_OK(state_events_read(state, 2, bytes_of("\x01"), all_keys, 2, false, &events,
                                 test_err, sizeof test_err));
    CHECK_EQ(events.count, 4);
    CHECK_EQ(events.next_revision, 4);
    if (events.count == 4) {
        CHECK(key_is(&events.events[0].kv, "a"));
        CHECK_EQ(events.events[0].kv.mod_revision, 2);
        CHECK(key_is(&events.events[1].kv, "x"));
        CHECK(key_is(&events.events[3].kv, "z"));
        CHECK_EQ(events.events[3].kv.mod_revision, 3);
    }
    int64_t next = events.next_revision;
    state_event_list_free(&events);
    REQUIRE_OK(state_events_read(state, next, bytes_of("\x01"), all_keys, 2, false, &events,
                                 test_err, sizeof test_err));
    CHECK_EQ(events.count, 1);
    if (events.count == 1)
        CHECK(key_is(&events.events[0].kv, "b"));
    CHECK_EQ(events.next_revision, 5);
    state_event_list_free(&events);
    state_close(state);
}

/* A new store is at revision 1 (etcd's mvcc starts there): no events yet, a watcher continues from
 * 2, and the first write's event carries revision 2. */
static void test_events_new_store(void)
{
    struct state *state = open_fresh(root, sizeof root);
    CHECK_EQ(state_revision(state), 1);
    struct state_event_list events;
    for (int64_t from = 0; from <= 2; from++) {
        REQUIRE_OK(state_events_read(state, from, all_keys, all_keys, 0, true, &events, test_err,
                                     sizeof test_err));
        CHECK_EQ(events.count, 0);
        CHECK_EQ(events.next_revision, 2);
        state_event_list_free(&events);
    }
    CHECK_EQ(put_batch(state, 1, "k", "v"), STATE_OK);
    REQUIRE_OK(state_events_read(state, 0, all_keys, all_keys, 0, true, &events, test_err,
                                 sizeof test_err));
    CHECK_EQ(events.count, 1);
    CHECK_EQ(events.next_revision, 3);
    if (events.count == 1) {
        CHECK_EQ(events.events[0].type, STATE_EVENT_PUT);
        CHECK(key_is(&events.events[0].kv, "k"));
        CHECK_EQ(events.events[0].kv.create_revision, 2);
        CHECK_EQ(events.events[0].kv.mod_revision, 2);
        CHECK_EQ(events.events[0].kv.version, 1);
        CHECK(!events.events[0].has_prev_kv);
    }
    state_event_list_free(&events);
    /* From just past it: nothing, continue from 3. */
    REQUIRE_OK(state_events_read(state, 3, all_keys, all_keys, 0, true, &events, test_err,
                                 sizeof test_err));
    CHECK_EQ(events.count, 0);
    CHECK_EQ(events.next_revision, 3);
    state_event_list_free(&events);
    state_close(state);
}

/* A watcher of a rare key reads a long history in bounded steps: max_scanned stops after about that
 * many revisions of any key (at a revision boundary), so each step is short, and stepping on from
 * next_revision finds the key's events in the end, exactly once. */
static void test_events_bounded_scan(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    for (int k = 0; k < 100; k++)
        CHECK_EQ(put(state, "busy", "v"), STATE_OK); /* revisions 2..101 */
    CHECK_EQ(put(state, "rare", "1"), STATE_OK);     /* 102 */
    REQUIRE_OK(state_batch_commit(state, 2, test_err, sizeof test_err));
    struct state_event_list events;
    int64_t from = 1, steps = 0;
    size_t found = 0;
    while (from <= state_revision(state) && steps < 1000) {
        REQUIRE_OK(state_events_read_bounded(state, from, bytes_of("rare"), (struct state_bytes){0}, 0, 10, false,
                                             &events, test_err, sizeof test_err));
        CHECK(events.next_revision > from);
        CHECK(events.next_revision - from <= 11);
        found += events.count;
        if (events.count == 1)
            CHECK_EQ(events.events[0].kv.mod_revision, 102);
        from = events.next_revision;
        state_event_list_free(&events);
        steps++;
    }
    CHECK_EQ(found, 1);
    CHECK_EQ(from, 103);
    CHECK(steps >= 10);
    state_close(state);
}

/* A view shows the state of the moment it was taken: puts committed and a compaction applied after it change
 * nothing it reads (another thread reads replay steps through one while the state's own thread applies), and
 * a cancelled view's read fails instead of going on. */
static void test_events_view(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    for (int k = 0; k < 5; k++)
        CHECK_EQ(put(state, "k", "v"), STATE_OK); /* revisions 2..6 */
    REQUIRE_OK(state_batch_commit(state, 2, test_err, sizeof test_err));
    struct state_events_view *view;
    REQUIRE_OK(state_events_view_open(state, &view, test_err, sizeof test_err));
    CHECK_EQ(state_events_view_revision(view), 6);

    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "k", "w"), STATE_OK); /* 7 */
    REQUIRE_OK(state_compact(state, 6, test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(state, 3, test_err, sizeof test_err));

    struct state_event_list events;
    /* The state itself no longer has revision 2; the view does, and nothing past 6. */
    CHECK_EQ(state_events_read(state, 2, bytes_of("k"), (struct state_bytes){0}, 0, false, &events, test_err,
                               sizeof test_err),
             STATE_ERR_COMPACTED);
    REQUIRE_OK(state_events_view_read(view, 2, bytes_of("k"), (struct state_bytes){0}, 0, 0, true, &events,
                                      test_err, sizeof test_err));
    CHECK_EQ(events.count, 5);
    CHECK_EQ(events.next_revision, 7);
    if (events.count == 5) {
        CHECK_EQ(events.events[0].kv.mod_revision, 2);
        CHECK_EQ(events.events[4].kv.mod_revision, 6);
        CHECK(events.events[4].has_prev_kv);
    }
    state_event_list_free(&events);

    state_events_view_cancel(view);
    CHECK(state_events_view_read(view, 2, bytes_of("k"), (struct state_bytes){0}, 0, 0, false, &events, test_err,
                                 sizeof test_err) != STATE_OK);
    CHECK_EQ(events.count, 0);
    state_events_view_close(view);
    state_close(state);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_program = argv[0];
    RUN(test_events_new_store);
    RUN(test_events_in_order);
    RUN(test_events_pagination);
    RUN(test_events_bounded_scan);
    RUN(test_events_view);
    return test_failures == 0 ? 0 : 1;
}
