/* tests/state/test_bucket.c: bucket records (what etcd keeps in bbolt buckets beside the keys: auth users,
 * roles and flags): written only inside a batch and seen through it, gone when the batch is aborted,
 * kept across restart, carried by a snapshot, and invisible to state_hash and to key ranges. */
#include "state_test.h"

static char root[128];

struct collected {
    char text[512];
};

/* Appends "name=value;" for each record. */
static int collect(void *context, struct state_bytes name, struct state_bytes value)
{
    struct collected *out = context;
    size_t used = strlen(out->text);
    snprintf(out->text + used, sizeof out->text - used, "%.*s=%.*s;", (int)name.len,
             (const char *)name.data, (int)value.len, (const char *)value.data);
    return 0;
}

static const char *records(struct state *state, uint8_t bucket)
{
    static struct collected out;
    out.text[0] = '\0';
    if (state_bucket_scan(state, bucket, collect, &out, test_err, sizeof test_err) != STATE_OK)
        return "(scan failed)";
    return out.text;
}

static int bucket_put(struct state *state, uint8_t bucket, const char *name, const char *value)
{
    return state_bucket_put(state, bucket, bytes_of(name), bytes_of(value), test_err, sizeof test_err);
}

static void test_batch_only_and_read_through(void)
{
    struct state *state = open_fresh(root, sizeof root);
    CHECK_EQ(bucket_put(state, 'u', "alice", "1"), STATE_ERR_NO_BATCH);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(bucket_put(state, 'u', "bob", "2"), STATE_OK);
    CHECK_EQ(bucket_put(state, 'u', "alice", "1"), STATE_OK);
    CHECK_EQ(bucket_put(state, 'r', "root", ""), STATE_OK);
    CHECK(strcmp(records(state, 'u'), "alice=1;bob=2;") == 0);
    CHECK_EQ(state_bucket_delete(state, 'u', bytes_of("bob"), test_err, sizeof test_err), STATE_OK);
    CHECK(strcmp(records(state, 'u'), "alice=1;") == 0);
    CHECK(strcmp(records(state, 'r'), "root=;") == 0);
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    CHECK(strcmp(records(state, 'u'), "alice=1;") == 0);

    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(bucket_put(state, 'u', "carol", "3"), STATE_OK);
    state_batch_abort(state);
    CHECK(strcmp(records(state, 'u'), "alice=1;") == 0);
    /* Neither records nor their deletes change the revision, and no key range sees them. */
    CHECK_EQ(state_revision(state), 1);
    struct state_range_request everything = {.key = bytes_of("\x01"), .range_end = {(const uint8_t *)"", 1}};
    struct state_range_response response;
    REQUIRE_OK(state_range(state, &everything, &response, test_err, sizeof test_err));
    CHECK_EQ(response.count, 0);
    state_range_response_free(&response);
    state_close(state);
}

static void test_restart_and_snapshot(void)
{
    struct state *state = open_fresh(root, sizeof root);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(bucket_put(state, 'a', "authEnabled", "\x01"), STATE_OK);
    CHECK_EQ(put(state, "k", "v"), STATE_OK);
    REQUIRE_OK(state_batch_commit(state, 1, test_err, sizeof test_err));
    state_close(state);
    state = NULL;
    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    CHECK(strcmp(records(state, 'a'), "authEnabled=\x01;") == 0);

    struct state_snapshot *snapshot;
    REQUIRE_OK(state_snapshot_open(state, &snapshot, test_err, sizeof test_err));
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
    CHECK(strcmp(records(target, 'a'), "authEnabled=\x01;") == 0);
    state_close(target);
    state_close(state);
}

static void test_hash_ignores_records(void)
{
    char other_root[128];
    struct state *plain = open_fresh(root, sizeof root);
    struct state *busy = open_fresh(other_root, sizeof other_root);
    REQUIRE_OK(put_batch(plain, 1, "h", "v"));
    REQUIRE_OK(state_batch_begin(busy, test_err, sizeof test_err));
    CHECK_EQ(bucket_put(busy, 'u', "alice", "x"), STATE_OK);
    CHECK_EQ(put(busy, "h", "v"), STATE_OK);
    REQUIRE_OK(state_batch_commit(busy, 1, test_err, sizeof test_err));
    uint32_t plain_hash = 0, busy_hash = 1;
    int64_t revision;
    REQUIRE_OK(state_hash(plain, 0, &plain_hash, &revision, test_err, sizeof test_err));
    REQUIRE_OK(state_hash(busy, 0, &busy_hash, &revision, test_err, sizeof test_err));
    CHECK_EQ(plain_hash, busy_hash);
    state_close(plain);
    state_close(busy);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_program = argv[0];
    RUN(test_batch_only_and_read_through);
    RUN(test_restart_and_snapshot);
    RUN(test_hash_ignores_records);
    return test_failures == 0 ? 0 : 1;
}
