/* tests/state/test_archive.c: checkpoints served as archives at any offset and unpacked by a sink that
 * resumes after an interruption. A checkpoint read in any order of chunks gives the bytes of the
 * sequential stream; a sink interrupted after some files and reopened with the same identity resumes
 * at a file boundary, with another identity starts over; the unpacked directory installs as the state
 * (same hash, the receiver's member id) and stays intact for a second install; a flipped byte is
 * refused. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "state_test.h"

static void fill(struct state *state, uint64_t index, int count)
{
    char key[64], value[256];
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    for (int i = 0; i < count; i++) {
        snprintf(key, sizeof key, "key/%05d", i % 500);
        snprintf(value, sizeof value, "value-%d-%0200d", i, i);
        CHECK_EQ(put(state, key, value), STATE_OK);
    }
    REQUIRE_OK(state_set_ids(state, 0xc1, 1, test_err, sizeof test_err));
    REQUIRE_OK(state_set_membership(state, bytes_of("members"), test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(state, index, test_err, sizeof test_err));
}

static uint32_t hash_of(struct state *state)
{
    uint32_t hash = 0;
    int64_t revision;
    if (state_hash(state, 0, &hash, &revision, test_err, sizeof test_err) != STATE_OK)
        test_failures++;
    return hash;
}

/* The whole archive, read front to back in chunks of `chunk`. */
static uint8_t *read_all(struct state_archive_source *source, size_t chunk, size_t *len)
{
    uint64_t total = state_archive_source_size(source);
    uint8_t *bytes = malloc(total);
    uint64_t at = 0;
    while (at < total) {
        size_t got = 0;
        if (state_archive_source_read(source, at, bytes + at, chunk, &got, test_err,
                                      sizeof test_err) != STATE_OK || got == 0) {
            test_failures++;
            break;
        }
        at += got;
    }
    *len = (size_t)at;
    return bytes;
}

/* A state with several files: three batches, each turned into a table file by reopening the state
 * (RocksDB writes its recovered log to a table file at open), then a fourth left in the log. */
static struct state *make_source(char *root, size_t root_len, char *checkpoint, size_t len,
                                 uint64_t *applied)
{
    struct state *state = open_fresh(root, root_len);
    for (int batch = 0; batch < 3; batch++) {
        fill(state, (uint64_t)(10 + batch), 800);
        state_close(state);
        if (state_open(root, &state, test_err, sizeof test_err) != STATE_OK) {
            fprintf(stderr, "reopen %s: %s\n", root, test_err);
            exit(1);
        }
    }
    fill(state, 13, 300);
    snprintf(checkpoint, len, "%s/../checkpoint", root);
    if (state_checkpoint(state, checkpoint, applied, test_err, sizeof test_err) != STATE_OK)
        test_failures++;
    return state;
}

static void test_random_offsets_match_the_stream(void)
{
    char root[128], checkpoint[160];
    uint64_t applied = 0;
    struct state *state = make_source(root, sizeof root, checkpoint, sizeof checkpoint, &applied);
    CHECK_EQ(applied, 13);
    struct state_archive_source *sequential, *shuffled;
    REQUIRE_OK(state_archive_source_open(checkpoint, applied, &sequential, test_err,
                                         sizeof test_err));
    REQUIRE_OK(state_archive_source_open(checkpoint, applied, &shuffled, test_err,
                                         sizeof test_err));
    CHECK_EQ(state_archive_source_applied_index(sequential), 13);
    size_t len = 0;
    uint8_t *expected = read_all(sequential, 4096, &len);
    CHECK_EQ(len, state_archive_source_size(sequential));
    /* Chunks of 1000 bytes read backwards: every file's CRC is asked for before its data was read in
     * order, and each chunk still equals the sequential bytes. */
    size_t chunk = 1000, chunks = (len + chunk - 1) / chunk;
    uint8_t *buffer = malloc(chunk);
    for (size_t k = chunks; k-- > 0;) {
        size_t got = 0;
        REQUIRE_OK(state_archive_source_read(shuffled, k * chunk, buffer, chunk, &got, test_err,
                                             sizeof test_err));
        size_t want = len - k * chunk < chunk ? len - k * chunk : chunk;
        CHECK_EQ(got, want);
        CHECK(memcmp(buffer, expected + k * chunk, got) == 0);
    }
    size_t got = 1;
    REQUIRE_OK(state_archive_source_read(shuffled, len, buffer, chunk, &got, test_err,
                                         sizeof test_err));
    CHECK_EQ(got, 0);
    CHECK(state_archive_source_read(shuffled, len + 1, buffer, chunk, &got, test_err,
                                    sizeof test_err) == STATE_ERR_INVALID);
    free(buffer);
    free(expected);
    state_archive_source_close(sequential);
    state_archive_source_close(shuffled);
    state_close(state);
}

static int files_in(const char *path)
{
    DIR *dir = opendir(path);
    int count = 0;
    struct dirent *entry;
    while (dir != NULL && (entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.')
            count++;
    if (dir != NULL)
        closedir(dir);
    return count;
}

static bool exists(const char *directory, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", directory, name);
    return access(path, F_OK) == 0;
}

static void test_sink_resumes_after_interruption(void)
{
    char root[128], checkpoint[160];
    uint64_t applied = 0;
    struct state *source_state = make_source(root, sizeof root, checkpoint, sizeof checkpoint,
                                             &applied);
    uint32_t source_hash = hash_of(source_state);
    struct state_archive_source *source;
    REQUIRE_OK(state_archive_source_open(checkpoint, applied, &source, test_err, sizeof test_err));
    size_t len = 0;
    uint8_t *image = read_all(source, 65536, &len);
    state_archive_source_close(source);
    CHECK(files_in(checkpoint) >= 3);

    char target[160];
    snprintf(target, sizeof target, "%s/incoming", temp_dir());
    struct state_archive_sink *sink;
    uint64_t resume = 99;
    REQUIRE_OK(state_archive_sink_open(target, 7, &sink, &resume, test_err, sizeof test_err));
    CHECK_EQ(resume, 0);
    /* Two thirds of the stream, in odd chunks, then the receiver goes away. */
    size_t cut = len * 2 / 3;
    for (size_t at = 0; at < cut; at += 777) {
        size_t take = cut - at < 777 ? cut - at : 777;
        REQUIRE_OK(state_archive_sink_write(sink, image + at, take, test_err, sizeof test_err));
    }
    uint64_t durable = state_archive_sink_durable_offset(sink);
    CHECK(durable > 32 && durable <= cut);
    CHECK(!state_archive_sink_complete(sink));
    state_archive_sink_close(sink);

    /* Another identity does not trust what is there. */
    REQUIRE_OK(state_archive_sink_open(target, 8, &sink, &resume, test_err, sizeof test_err));
    CHECK_EQ(resume, 0);
    CHECK_EQ(files_in(target), 0);
    for (size_t at = 0; at < cut; at += 4096) {
        size_t take = cut - at < 4096 ? cut - at : 4096;
        REQUIRE_OK(state_archive_sink_write(sink, image + at, take, test_err, sizeof test_err));
    }
    durable = state_archive_sink_durable_offset(sink);
    state_archive_sink_close(sink);

    /* The same identity resumes at the end of the last complete file. */
    REQUIRE_OK(state_archive_sink_open(target, 8, &sink, &resume, test_err, sizeof test_err));
    CHECK_EQ(resume, durable);
    REQUIRE_OK(state_archive_sink_write(sink, image + resume, len - resume, test_err,
                                        sizeof test_err));
    CHECK(state_archive_sink_complete(sink));
    CHECK_EQ(state_archive_sink_applied_index(sink), applied);
    REQUIRE_OK(state_archive_sink_finish(sink, test_err, sizeof test_err));
    state_archive_sink_close(sink);
    CHECK(!exists(target, ".archive-progress"));
    CHECK_EQ(files_in(target), files_in(checkpoint));

    /* Installed twice from the same directory: the directory stays usable. */
    char state_root[128];
    struct state *receiver = open_fresh(state_root, sizeof state_root);
    for (int round = 0; round < 2; round++) {
        REQUIRE_OK(state_restore_from_directory(receiver, target, 5, test_err, sizeof test_err));
        CHECK_EQ(hash_of(receiver), source_hash);
        CHECK_EQ(state_applied_index(receiver), applied);
        CHECK_EQ(state_member_id(receiver), 5);
        CHECK_EQ(state_cluster_id(receiver), 0xc1);
        CHECK(state_membership(receiver).len == 7);
        CHECK_EQ(put_batch(receiver, applied + 1, "after", "install"), STATE_OK);
        CHECK(hash_of(receiver) != source_hash);
    }
    CHECK_EQ(files_in(target), files_in(checkpoint));
    /* Restarted, the installed state is still the source's plus the put after it. */
    uint32_t after = hash_of(receiver);
    state_close(receiver);
    REQUIRE_OK(state_open(state_root, &receiver, test_err, sizeof test_err));
    CHECK_EQ(hash_of(receiver), after);
    CHECK_EQ(state_member_id(receiver), 5);
    state_close(receiver);
    free(image);
    state_close(source_state);
}

static void test_sink_refuses_damage(void)
{
    char root[128], checkpoint[160];
    uint64_t applied = 0;
    struct state *state = make_source(root, sizeof root, checkpoint, sizeof checkpoint, &applied);
    struct state_archive_source *source;
    REQUIRE_OK(state_archive_source_open(checkpoint, applied, &source, test_err, sizeof test_err));
    size_t len = 0;
    uint8_t *image = read_all(source, 65536, &len);
    state_archive_source_close(source);
    char target[160];
    snprintf(target, sizeof target, "%s/incoming", temp_dir());
    /* A flipped byte anywhere (header, a file head, data, a crc, the trailer) is refused. */
    size_t positions[] = {5, 40, len / 2, len - 20, len - 3};
    for (size_t p = 0; p < sizeof positions / sizeof positions[0]; p++) {
        image[positions[p]] ^= 0x10;
        struct state_archive_sink *sink;
        uint64_t resume;
        REQUIRE_OK(state_archive_sink_open(target, 1, &sink, &resume, test_err, sizeof test_err));
        int status = state_archive_sink_write(sink, image + resume, len - resume, test_err,
                                              sizeof test_err);
        CHECK(status == STATE_ERR_CORRUPT || !state_archive_sink_complete(sink));
        CHECK(state_archive_sink_finish(sink, test_err, sizeof test_err) != STATE_OK);
        state_archive_sink_close(sink);
        image[positions[p]] ^= 0x10;
        /* Start over clean for the next position. */
        remove_dir(target);
    }
    free(image);
    state_close(state);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_program = argv[0];
    RUN(test_random_offsets_match_the_stream);
    RUN(test_sink_resumes_after_interruption);
    RUN(test_sink_refuses_damage);
    return test_failures == 0 ? 0 : 1;
}
