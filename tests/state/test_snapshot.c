/* tests/state/test_snapshot.c: a snapshot streamed in chunks and restored elsewhere gives the same
 * state (hash, revisions, applied index, membership) while the receiver keeps its member id; a bad or
 * cut stream is refused with the old state intact; a crash at every step of the swap leaves either
 * the old or the new state after a restart, and no leftovers. */
#include <dirent.h>

#include "state_test.h"

struct image {
    uint8_t *bytes;
    size_t len;
};

static void fill(struct state *state, uint64_t first_index, const char *prefix, int count)
{
    char key[64], value[64];
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    for (int i = 0; i < count; i++) {
        snprintf(key, sizeof key, "%s/%03d", prefix, i % 37);
        snprintf(value, sizeof value, "value-%d", i);
        CHECK_EQ(put(state, key, value), STATE_OK);
        if (i % 11 == 10)
            CHECK(delete_range(state, key, NULL) >= 0);
    }
    REQUIRE_OK(state_set_ids(state, 0xc1, 1, test_err, sizeof test_err));
    REQUIRE_OK(state_set_membership(state, bytes_of(prefix), test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(state, first_index, test_err, sizeof test_err));
}

/* Streams a snapshot of `state` in chunks of `chunk` bytes into one buffer. */
static void take_snapshot(struct state *state, size_t chunk, struct image *image)
{
    image->bytes = NULL;
    image->len = 0;
    struct state_snapshot *snapshot;
    REQUIRE_OK(state_snapshot_open(state, &snapshot, test_err, sizeof test_err));
    CHECK_EQ(state_snapshot_applied_index(snapshot), state_applied_index(state));
    uint8_t *buffer = malloc(chunk);
    for (;;) {
        size_t len = 0;
        int status = state_snapshot_next_chunk(snapshot, buffer, chunk, &len, test_err,
                                               sizeof test_err);
        CHECK_EQ(status, STATE_OK);
        if (status != STATE_OK || len == 0)
            break;
        CHECK(len <= chunk);
        image->bytes = realloc(image->bytes, image->len + len);
        memcpy(image->bytes + image->len, buffer, len);
        image->len += len;
    }
    free(buffer);
    state_snapshot_close(snapshot);
}

/* Feeds image[0..len) in chunks; returns the first error or the status of finish. */
static int restore_image(struct state *state, const uint8_t *bytes, size_t len, size_t chunk,
                         int crash_step)
{
    struct state_restore *restore;
    int status = state_restore_begin(state, &restore, test_err, sizeof test_err);
    if (status != STATE_OK)
        return status;
    state_restore_set_crash_step(restore, crash_step);
    for (size_t at = 0; at < len; at += chunk) {
        size_t take = len - at < chunk ? len - at : chunk;
        status = state_restore_write(restore, bytes + at, take, test_err, sizeof test_err);
        if (status != STATE_OK) {
            state_restore_abort(restore);
            return status;
        }
    }
    return state_restore_finish(restore, test_err, sizeof test_err);
}

static uint32_t hash_of(struct state *state)
{
    uint32_t hash = 0;
    int64_t revision;
    if (state_hash(state, 0, &hash, &revision, test_err, sizeof test_err) != STATE_OK)
        test_failures++;
    return hash;
}

/* Only "current" and one db.<n> directory may remain. */
static int entries_in(const char *root)
{
    DIR *dir = opendir(root);
    int count = 0;
    struct dirent *entry;
    while (dir != NULL && (entry = readdir(dir)) != NULL)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            count++;
    if (dir != NULL)
        closedir(dir);
    return count;
}

static void test_stream_and_restore(void)
{
    char source_root[128], target_root[128];
    struct state *source = open_fresh(source_root, sizeof source_root);
    fill(source, 40, "src", 300);
    REQUIRE_OK(state_batch_begin(source, test_err, sizeof test_err));
    REQUIRE_OK(state_compact(source, 100, test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(source, 41, test_err, sizeof test_err));
    uint32_t source_hash = hash_of(source);

    struct image image;
    take_snapshot(source, 4096, &image);
    struct image again;
    take_snapshot(source, 7, &again); /* odd chunk size, same bytes */
    CHECK(image.len == again.len && memcmp(image.bytes, again.bytes, image.len) == 0);
    free(again.bytes);

    struct state *target = open_fresh(target_root, sizeof target_root);
    fill(target, 5, "tgt", 50);
    REQUIRE_OK(state_batch_begin(target, test_err, sizeof test_err));
    REQUIRE_OK(state_set_ids(target, 0xc1, 2, test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(target, 6, test_err, sizeof test_err));
    CHECK(hash_of(target) != source_hash);
    REQUIRE_OK(restore_image(target, image.bytes, image.len, 1000, 0));
    CHECK_EQ(hash_of(target), source_hash);
    CHECK_EQ(state_revision(target), state_revision(source));
    CHECK_EQ(state_compact_revision(target), 100);
    CHECK_EQ(state_applied_index(target), 41);
    CHECK_EQ(state_member_id(target), 2); /* the receiver's own id */
    CHECK(state_membership(target).len == 3 && memcmp(state_membership(target).data, "src", 3) == 0);
    struct state_kv kv;
    CHECK(get_at(target, "src/005", 0, &kv));
    free_kv(&kv);
    CHECK(!get_at(target, "tgt/005", 0, &kv));
    /* The restored state keeps working and survives a restart. */
    CHECK_EQ(put_batch(target, 42, "after", "restore"), STATE_OK);
    uint32_t after_hash = hash_of(target);
    state_close(target);
    REQUIRE_OK(state_open(target_root, &target, test_err, sizeof test_err));
    CHECK_EQ(hash_of(target), after_hash);
    CHECK_EQ(state_member_id(target), 2);
    CHECK_EQ(entries_in(target_root), 2);
    state_close(target);
    state_close(source);
    free(image.bytes);
}

static void test_bad_streams_keep_old_state(void)
{
    char source_root[128], target_root[128];
    struct state *source = open_fresh(source_root, sizeof source_root);
    fill(source, 10, "src", 120);
    struct image image;
    take_snapshot(source, 1 << 16, &image);
    state_close(source);

    struct state *target = open_fresh(target_root, sizeof target_root);
    fill(target, 3, "tgt", 40);
    uint32_t target_hash = hash_of(target);

    /* One flipped byte in the middle: refused by a crc. */
    image.bytes[image.len / 2] ^= 0x40;
    CHECK_EQ(restore_image(target, image.bytes, image.len, 333, 0), STATE_ERR_CORRUPT);
    image.bytes[image.len / 2] ^= 0x40;
    CHECK_EQ(hash_of(target), target_hash);
    /* Cut short: finish refuses an incomplete stream. */
    CHECK_EQ(restore_image(target, image.bytes, image.len - 5, 333, 0), STATE_ERR_CORRUPT);
    CHECK_EQ(hash_of(target), target_hash);
    CHECK_EQ(state_applied_index(target), 3);
    /* Bytes after the trailer. */
    uint8_t *longer = malloc(image.len + 1);
    memcpy(longer, image.bytes, image.len);
    longer[image.len] = 0;
    CHECK_EQ(restore_image(target, longer, image.len + 1, 4096, 0), STATE_ERR_CORRUPT);
    free(longer);
    CHECK_EQ(hash_of(target), target_hash);
    CHECK_EQ(entries_in(target_root), 2);
    /* And the right stream still restores. */
    CHECK_EQ(restore_image(target, image.bytes, image.len, 333, 0), STATE_OK);
    CHECK_EQ(state_applied_index(target), 10);
    state_close(target);
    free(image.bytes);
}

static void test_crash_at_each_restore_step(void)
{
    char source_root[128];
    struct state *source = open_fresh(source_root, sizeof source_root);
    fill(source, 20, "src", 80);
    uint32_t source_hash = hash_of(source);
    struct image image;
    take_snapshot(source, 1 << 16, &image);
    state_close(source);

    for (int step = 1; step <= 4; step++) {
        char target_root[128];
        struct state *target = open_fresh(target_root, sizeof target_root);
        fill(target, 3, "tgt", 30);
        uint32_t target_hash = hash_of(target);
        CHECK_EQ(restore_image(target, image.bytes, image.len, 4096, step), STATE_ERR_IO);
        state_close(target); /* the process died there */
        REQUIRE_OK(state_open(target_root, &target, test_err, sizeof test_err));
        /* Before the link switch (steps 1-3) the old state, after it (4) the new one. */
        uint32_t want = step < 4 ? target_hash : source_hash;
        if (hash_of(target) != want) {
            fprintf(stderr, "crash after step %d: wrong state after restart\n", step);
            test_failures++;
        }
        CHECK_EQ(state_applied_index(target), step < 4 ? 3 : 20);
        CHECK_EQ(entries_in(target_root), 2); /* leftovers were removed */
        state_close(target);
    }
    free(image.bytes);
}

/* A snapshot of a store that has applied only entries without KV effect (conf changes) carries the
 * start revision 1, as etcd's: the receiver answers revision 1 and its first put gets revision 2. */
static void test_restore_new_store(void)
{
    char source_root[128], target_root[128];
    struct state *source = open_fresh(source_root, sizeof source_root);
    REQUIRE_OK(state_batch_begin(source, test_err, sizeof test_err));
    REQUIRE_OK(state_set_ids(source, 0xc1, 1, test_err, sizeof test_err));
    REQUIRE_OK(state_set_membership(source, bytes_of("new"), test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(source, 3, test_err, sizeof test_err));
    CHECK_EQ(state_revision(source), 1);
    uint32_t source_hash = hash_of(source);
    struct image image;
    take_snapshot(source, 4096, &image);
    state_close(source);

    struct state *target = open_fresh(target_root, sizeof target_root);
    fill(target, 2, "tgt", 20);
    CHECK(state_revision(target) > 1);
    REQUIRE_OK(restore_image(target, image.bytes, image.len, 4096, 0));
    CHECK_EQ(state_revision(target), 1);
    CHECK_EQ(state_compact_revision(target), 0);
    CHECK_EQ(state_applied_index(target), 3);
    CHECK_EQ(hash_of(target), source_hash);
    struct state_kv kv;
    CHECK(!get_at(target, "tgt/000", 0, &kv));
    CHECK_EQ(put_batch(target, 4, "first", "put"), STATE_OK);
    CHECK(get_at(target, "first", 0, &kv));
    CHECK_EQ(kv.create_revision, 2);
    CHECK_EQ(kv.mod_revision, 2);
    free_kv(&kv);
    CHECK_EQ(state_revision(target), 2);
    state_close(target);
    free(image.bytes);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_program = argv[0];
    RUN(test_stream_and_restore);
    RUN(test_bad_streams_keep_old_state);
    RUN(test_crash_at_each_restore_step);
    RUN(test_restore_new_store);
    return test_failures == 0 ? 0 : 1;
}
