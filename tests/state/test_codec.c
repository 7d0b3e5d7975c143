/* tests/state/test_codec.c: what a put writes, byte for byte and record by record. A put packs its
 * KeyValue once and builds the history record's event as a few bytes in front of it, so those bytes
 * must stay exactly what protobuf-c packs for an mvccpb.Event (members compare hashes of them, and
 * older members wrote them so); and the batch's records reach RocksDB grouped by kind (access.c), so
 * the history a batch writes must read back as written, also for keys that need escaping and when the
 * same batch deletes or compacts what it wrote. */
#include "state_test.h"

#include "internal.h"
#include "kv.pb-c.h"

static void check_event_bytes(enum state_event_type type, size_t key_len, size_t value_len)
{
    uint8_t *key = malloc(key_len + 1), *value = malloc(value_len + 1);
    memset(key, 'k', key_len);
    for (size_t i = 0; i < value_len; i++)
        value[i] = (uint8_t)(i * 7);
    struct state_kv kv = {.key = key, .key_len = key_len, .value = value, .value_len = value_len,
                          .create_revision = 3, .mod_revision = 1234567, .version = 9, .lease = 0};
    if (type == STATE_EVENT_DELETE)
        kv = (struct state_kv){.key = key, .key_len = key_len, .mod_revision = 77};

    /* The reference: the Event message packed by protobuf-c. */
    Mvccpb__KeyValue kv_message = MVCCPB__KEY_VALUE__INIT;
    kv_message.key.data = kv.key;
    kv_message.key.len = kv.key_len;
    kv_message.value.data = kv.value;
    kv_message.value.len = kv.value_len;
    kv_message.create_revision = kv.create_revision;
    kv_message.mod_revision = kv.mod_revision;
    kv_message.version = kv.version;
    kv_message.lease = kv.lease;
    Mvccpb__Event event = MVCCPB__EVENT__INIT;
    event.type = type == STATE_EVENT_DELETE ? MVCCPB__EVENT__EVENT_TYPE__DELETE
                                            : MVCCPB__EVENT__EVENT_TYPE__PUT;
    event.kv = &kv_message;
    size_t expected_len = mvccpb__event__get_packed_size(&event);
    uint8_t *expected = malloc(expected_len);
    CHECK_EQ(mvccpb__event__pack(&event, expected), expected_len);

    size_t packed_len = state_kv_packed_size(&kv);
    uint8_t *actual = malloc(STATE_EVENT_PREFIX_MAX + packed_len);
    size_t prefix_len = state_event_prefix(type, packed_len, actual);
    CHECK(prefix_len <= STATE_EVENT_PREFIX_MAX);
    CHECK_EQ(state_kv_pack(&kv, actual + prefix_len), packed_len);
    CHECK_EQ(prefix_len + packed_len, expected_len);
    if (prefix_len + packed_len == expected_len && memcmp(actual, expected, expected_len) != 0) {
        fprintf(stderr, "event bytes differ: type %d, key %zu, value %zu bytes\n", (int)type, key_len,
                value_len);
        test_failures++;
    }
    free(actual);
    free(expected);
    free(key);
    free(value);
}

static void test_event_prefix_is_protobufs(void)
{
    /* Value sizes around each length of the kv's varint length (1, 2, 3 and 4 bytes). */
    const size_t values[] = {0, 1, 100, 110, 111, 112, 113, 127, 128, 16340, 16350, 16360, 16383, 16384,
                             2097100, 2097130, 2097152, 2200000};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        check_event_bytes(STATE_EVENT_PUT, 8, values[i]);
        check_event_bytes(STATE_EVENT_PUT, 1, values[i]);
    }
    const size_t keys[] = {1, 100, 120, 130, 16380, 16400};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        check_event_bytes(STATE_EVENT_DELETE, keys[i], 0);
}

static int put_bytes(struct state *state, struct state_bytes key, const char *value)
{
    struct state_put_request request = {.key = key, .value = bytes_of(value)};
    struct state_put_response response;
    int status = state_put(state, &request, &response, test_err, sizeof test_err);
    state_put_response_free(&response);
    return status;
}

/* The value of `key` at `revision` (0: now), or NULL when absent; in a static buffer. */
static const char *value_at(struct state *state, struct state_bytes key, int64_t revision)
{
    static char value[64];
    struct state_range_request request = {.key = key, .revision = revision};
    struct state_range_response response;
    if (state_range(state, &request, &response, test_err, sizeof test_err) != STATE_OK ||
        response.kv_count != 1) {
        state_range_response_free(&response);
        return NULL;
    }
    snprintf(value, sizeof value, "%.*s", (int)response.kvs[0].value_len, (const char *)response.kvs[0].value);
    state_range_response_free(&response);
    return value;
}

static bool same(const char *actual, const char *expected)
{
    return actual != NULL && strcmp(actual, expected) == 0;
}

/* One batch writes several versions of a plain key and of keys holding zero bytes (escaped in the
 * history key, so written another way), deletes one: every version reads back at its revision, and
 * the events come in revision order with the right types. */
static void test_batch_history_reads_back(void)
{
    char root[128];
    struct state *state = open_fresh(root, sizeof root);
    const struct state_bytes plain = {(const uint8_t *)"key", 3};
    const struct state_bytes zero = {(const uint8_t *)"a\0b", 3};
    const struct state_bytes zero_end = {(const uint8_t *)"\0", 1};
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    REQUIRE_OK(put_bytes(state, plain, "p1"));     /* rev 2 */
    REQUIRE_OK(put_bytes(state, zero, "z1"));      /* rev 3 */
    REQUIRE_OK(put_bytes(state, plain, "p2"));     /* rev 4 */
    REQUIRE_OK(put_bytes(state, zero_end, "e1"));  /* rev 5 */
    REQUIRE_OK(put_bytes(state, zero, "z2"));      /* rev 6 */
    CHECK_EQ(delete_range(state, "a", "b"), 1);    /* rev 7: deletes "a\0b" */
    REQUIRE_OK(put_bytes(state, zero, "z3"));      /* rev 8 */
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));

    CHECK(same(value_at(state, plain, 2), "p1"));
    CHECK(same(value_at(state, plain, 3), "p1"));
    CHECK(same(value_at(state, plain, 0), "p2"));
    CHECK(same(value_at(state, zero, 3), "z1"));
    CHECK(same(value_at(state, zero, 6), "z2"));
    CHECK(value_at(state, zero, 7) == NULL);
    CHECK(same(value_at(state, zero, 0), "z3"));
    CHECK(same(value_at(state, zero_end, 5), "e1"));
    CHECK(value_at(state, zero_end, 4) == NULL);

    struct state_event_list events;
    REQUIRE_OK(state_events_read(state, 2, (struct state_bytes){(const uint8_t *)"\0", 1},
                                 (struct state_bytes){(const uint8_t *)"\0", 1}, 0, false, &events,
                                 test_err, sizeof test_err));
    const int64_t revisions[] = {2, 3, 4, 5, 6, 7, 8};
    CHECK_EQ(events.count, 7);
    for (size_t i = 0; i < events.count && i < 7; i++) {
        CHECK_EQ(events.events[i].kv.mod_revision, revisions[i]);
        CHECK_EQ(events.events[i].type, revisions[i] == 7 ? STATE_EVENT_DELETE : STATE_EVENT_PUT);
    }
    if (events.count == 7) {
        CHECK(events.events[5].kv.key_len == 3 && memcmp(events.events[5].kv.key, "a\0b", 3) == 0);
        CHECK(events.events[6].kv.value_len == 2 && memcmp(events.events[6].kv.value, "z3", 2) == 0);
    }
    state_event_list_free(&events);
    state_close(state);
}

/* A batch that writes history and then compacts part of it (the compaction deletes history records
 * the batch itself wrote) leaves what a compaction of committed history would. */
static void test_batch_compacts_its_own_history(void)
{
    char root[128];
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    REQUIRE_OK(put(state, "k", "v1")); /* rev 2 */
    REQUIRE_OK(put(state, "k", "v2")); /* rev 3 */
    REQUIRE_OK(put(state, "j", "w1")); /* rev 4 */
    REQUIRE_OK(state_compact(state, 3, test_err, sizeof test_err));
    REQUIRE_OK(put(state, "k", "v3")); /* rev 5 */
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));

    const struct state_bytes k = bytes_of("k"), j = bytes_of("j");
    struct state_range_request request = {.key = k, .revision = 2};
    struct state_range_response response;
    CHECK_EQ(state_range(state, &request, &response, test_err, sizeof test_err), STATE_ERR_COMPACTED);
    state_range_response_free(&response);
    CHECK(same(value_at(state, k, 3), "v2"));
    CHECK(same(value_at(state, k, 4), "v2"));
    CHECK(same(value_at(state, j, 4), "w1"));
    CHECK(same(value_at(state, k, 0), "v3"));
    struct state_event_list events;
    REQUIRE_OK(state_events_read(state, 3, bytes_of("a"), bytes_of("z"), 0, false, &events, test_err,
                                 sizeof test_err));
    CHECK_EQ(events.count, 3);
    for (size_t i = 0; i < events.count; i++)
        CHECK_EQ(events.events[i].kv.mod_revision, (int64_t)i + 3);
    state_event_list_free(&events);
    state_close(state);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_program = argv[0];
    RUN(test_event_prefix_is_protobufs);
    RUN(test_batch_history_reads_back);
    RUN(test_batch_compacts_its_own_history);
    return test_failures == 0 ? 0 : 1;
}
