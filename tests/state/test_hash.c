/* tests/state/test_hash.c: determinism. Two stores fed the same seeded stream of puts, deletes, txns
 * and compactions, split into different batches, reach the same revision and hash (now and at past
 * revisions); one differing write makes the hashes differ. */
#include "state_test.h"

static uint64_t next_random(uint64_t *seed)
{
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    return *seed;
}

/* Applies operation number `i` of the stream given by `seed`. */
static void apply_one(struct state *state, uint64_t *seed)
{
    char key[16], end[16], value[32];
    uint64_t r = next_random(seed);
    snprintf(key, sizeof key, "k%02u", (unsigned)(r % 50));
    snprintf(value, sizeof value, "v%llu", (unsigned long long)(r >> 20));
    switch ((r >> 8) % 10) {
    case 0:
    case 1:
        snprintf(end, sizeof end, "k%02u", (unsigned)(r % 50 + 3));
        CHECK(delete_range(state, key, end) >= 0);
        break;
    case 2: {
        struct state_compare compare = {.result = STATE_COMPARE_GREATER,
                                        .target = STATE_TARGET_VERSION, .key = bytes_of(key),
                                        .number = 1};
        struct state_op yes = {.type = STATE_OP_PUT,
                               .request.put = {.key = bytes_of(key), .value = bytes_of("txn")}};
        struct state_op no = {.type = STATE_OP_DELETE_RANGE,
                              .request.delete_range = {.key = bytes_of(key)}};
        struct state_txn_request txn = {.compares = &compare, .compare_count = 1,
                                        .success = &yes, .success_count = 1, .failure = &no,
                                        .failure_count = 1};
        struct state_txn_response response;
        CHECK_EQ(state_txn(state, &txn, &response, test_err, sizeof test_err), STATE_OK);
        state_txn_response_free(&response);
        break;
    }
    case 3:
        if (state_revision(state) > 20 && (r >> 16) % 4 == 0)
            CHECK_EQ(state_compact(state, state_revision(state) - 10, test_err, sizeof test_err),
                     STATE_OK);
        break;
    default:
        CHECK_EQ(put(state, key, value), STATE_OK);
    }
}

static void feed(struct state *state, uint64_t seed, int operations, int batch_size)
{
    uint64_t index = 0;
    for (int done = 0; done < operations;) {
        REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
        for (int i = 0; i < batch_size && done < operations; i++, done++)
            apply_one(state, &seed);
        REQUIRE_OK(state_batch_commit(state, ++index, test_err, sizeof test_err));
    }
}

static void test_same_ops_same_hash(void)
{
    char root_a[128], root_b[128];
    struct state *a = open_fresh(root_a, sizeof root_a);
    struct state *b = open_fresh(root_b, sizeof root_b);
    const uint64_t seed = 0x9e3779b97f4a7c15ull;
    feed(a, seed, 2000, 1);
    feed(b, seed, 2000, 97);
    CHECK(state_revision(a) > 1000);
    CHECK_EQ(state_revision(a), state_revision(b));
    CHECK(state_compact_revision(a) > 0);
    CHECK_EQ(state_compact_revision(a), state_compact_revision(b));
    uint32_t hash_a, hash_b;
    int64_t at_a, at_b;
    REQUIRE_OK(state_hash(a, 0, &hash_a, &at_a, test_err, sizeof test_err));
    REQUIRE_OK(state_hash(b, 0, &hash_b, &at_b, test_err, sizeof test_err));
    CHECK_EQ(hash_a, hash_b);
    CHECK_EQ(at_a, state_revision(a));
    int64_t past = state_compact_revision(a) + 1;
    REQUIRE_OK(state_hash(a, past, &hash_a, &at_a, test_err, sizeof test_err));
    REQUIRE_OK(state_hash(b, past, &hash_b, &at_b, test_err, sizeof test_err));
    CHECK_EQ(hash_a, hash_b);
    CHECK_EQ(state_hash(a, state_compact_revision(a) - 1, &hash_a, &at_a, test_err,
                        sizeof test_err),
             STATE_ERR_COMPACTED);
    CHECK_EQ(state_hash(a, state_revision(a) + 1, &hash_a, &at_a, test_err, sizeof test_err),
             STATE_ERR_FUTURE_REV);

    /* Same ranges everywhere. */
    struct state_range_request all = {.key = bytes_of("k"), .range_end = bytes_of("l")};
    struct state_range_response range_a, range_b;
    REQUIRE_OK(state_range(a, &all, &range_a, test_err, sizeof test_err));
    REQUIRE_OK(state_range(b, &all, &range_b, test_err, sizeof test_err));
    CHECK_EQ(range_a.count, range_b.count);
    for (size_t i = 0; i < range_a.kv_count && i < range_b.kv_count; i++) {
        CHECK_EQ(range_a.kvs[i].mod_revision, range_b.kvs[i].mod_revision);
        CHECK_EQ(range_a.kvs[i].version, range_b.kvs[i].version);
    }
    state_range_response_free(&range_a);
    state_range_response_free(&range_b);

    /* One differing write: different hashes. */
    uint64_t index = state_applied_index(a) + 1;
    CHECK_EQ(put_batch(a, index, "k00", "left"), STATE_OK);
    CHECK_EQ(put_batch(b, state_applied_index(b) + 1, "k00", "right"), STATE_OK);
    REQUIRE_OK(state_hash(a, 0, &hash_a, &at_a, test_err, sizeof test_err));
    REQUIRE_OK(state_hash(b, 0, &hash_b, &at_b, test_err, sizeof test_err));
    CHECK(hash_a != hash_b);
    state_close(a);
    state_close(b);
}

/* A new store is at revision 1: its hash is taken at 1, revision 2 is in the future, and a store
 * that committed batches without KV effect (conf changes) hashes the same. */
static void test_new_store_hash(void)
{
    char root_a[128], root_b[128];
    struct state *a = open_fresh(root_a, sizeof root_a);
    struct state *b = open_fresh(root_b, sizeof root_b);
    uint32_t hash_a, hash_b, hash_at_1;
    int64_t at_a = 0, at_b = 0;
    REQUIRE_OK(state_hash(a, 0, &hash_a, &at_a, test_err, sizeof test_err));
    CHECK_EQ(at_a, 1);
    REQUIRE_OK(state_hash(a, 1, &hash_at_1, &at_a, test_err, sizeof test_err));
    CHECK_EQ(at_a, 1);
    CHECK_EQ(hash_at_1, hash_a);
    CHECK_EQ(state_hash(a, 2, &hash_at_1, &at_a, test_err, sizeof test_err),
             STATE_ERR_FUTURE_REV);
    REQUIRE_OK(state_batch_begin(b, test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(b, 5, test_err, sizeof test_err));
    REQUIRE_OK(state_hash(b, 0, &hash_b, &at_b, test_err, sizeof test_err));
    CHECK_EQ(at_b, 1);
    CHECK_EQ(hash_b, hash_a);
    /* The first write (revision 2) changes the hash now, not at revision 1. */
    CHECK_EQ(put_batch(a, 1, "k", "v"), STATE_OK);
    REQUIRE_OK(state_hash(a, 0, &hash_a, &at_a, test_err, sizeof test_err));
    CHECK_EQ(at_a, 2);
    CHECK(hash_a != hash_b);
    REQUIRE_OK(state_hash(a, 1, &hash_at_1, &at_a, test_err, sizeof test_err));
    CHECK_EQ(at_a, 1);
    CHECK_EQ(hash_at_1, hash_b);
    state_close(a);
    state_close(b);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_program = argv[0];
    RUN(test_new_store_hash);
    RUN(test_same_ops_same_hash);
    return test_failures == 0 ? 0 : 1;
}
