/* tests/state/test_restart.c: what a restart gives back: the applied index, revisions, ids and
 * membership of the last committed batch, nothing of a batch that was not committed, and the
 * applied-index rules of state_batch_commit and state_sync. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "state_test.h"

static char root[128];

static void test_resume_after_last_commit(void)
{
    struct state *state = open_fresh(root, sizeof root);
    CHECK_EQ(state_applied_index(state), 0);
    CHECK_EQ(state_revision(state), 1); /* a new store is at revision 1, as etcd's */
    CHECK_EQ(state_compact_revision(state), 0);
    state_close(state);
    /* Reopened before anything was committed: still at the start. */
    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    CHECK_EQ(state_applied_index(state), 0);
    CHECK_EQ(state_revision(state), 1);
    CHECK_EQ(state_compact_revision(state), 0);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "a", "1"), STATE_OK);
    CHECK_EQ(put(state, "b", "1"), STATE_OK);
    CHECK_EQ(put(state, "a", "2"), STATE_OK);
    REQUIRE_OK(state_set_ids(state, 0x1234, 0x77, test_err, sizeof test_err));
    REQUIRE_OK(state_set_membership(state, bytes_of("members:1,2,3"), test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(state, 10, test_err, sizeof test_err));
    uint64_t durable = 0;
    REQUIRE_OK(state_sync(state, &durable, test_err, sizeof test_err));
    CHECK_EQ(durable, 10);

    /* A batch that is never committed: it must leave no trace. */
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "c", "lost"), STATE_OK);
    CHECK_EQ(delete_range(state, "a", NULL), 1);
    REQUIRE_OK(state_set_membership(state, bytes_of("members:9"), test_err, sizeof test_err));
    CHECK_EQ(state_revision(state), 6);
    state_close(state); /* as a crash before the commit */

    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    CHECK_EQ(state_applied_index(state), 10);
    CHECK_EQ(state_revision(state), 4);
    CHECK_EQ(state_cluster_id(state), 0x1234);
    CHECK_EQ(state_member_id(state), 0x77);
    struct state_bytes membership = state_membership(state);
    CHECK(membership.len == 13 && memcmp(membership.data, "members:1,2,3", 13) == 0);
    struct state_kv kv;
    CHECK(!get_at(state, "c", 0, &kv));
    CHECK(get_at(state, "a", 0, &kv));
    CHECK(value_is(&kv, "2"));
    CHECK_EQ(kv.version, 2);
    free_kv(&kv);

    /* The next write continues the revision sequence exactly. */
    CHECK_EQ(put_batch(state, 11, "c", "1"), STATE_OK);
    CHECK_EQ(state_revision(state), 5);
    CHECK(get_at(state, "c", 0, &kv));
    CHECK_EQ(kv.mod_revision, 5);
    free_kv(&kv);

    /* The applied index only moves forward; a refused commit discards the batch. */
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "d", "1"), STATE_OK);
    CHECK_EQ(state_batch_commit(state, 11, test_err, sizeof test_err), STATE_ERR_INVALID);
    CHECK_EQ(state_revision(state), 5);
    CHECK(!get_at(state, "d", 0, &kv));
    /* Writes need a batch. */
    CHECK_EQ(put(state, "d", "1"), STATE_ERR_NO_BATCH);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(state_batch_begin(state, test_err, sizeof test_err), STATE_ERR_BATCH_OPEN);
    state_batch_abort(state);
    state_close(state);

    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    CHECK_EQ(state_applied_index(state), 11);
    CHECK_EQ(state_revision(state), 5);
    state_close(state);
}

static void test_empty_batches_and_delete_revisions(void)
{
    struct state *state = open_fresh(root, sizeof root);
    /* A batch of entries with no KV effect (conf changes, empty entries) still moves the index. */
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    REQUIRE_OK(state_batch_commit(state, 3, test_err, sizeof test_err));
    CHECK_EQ(state_revision(state), 1); /* still the start revision, now written in the meta */
    state_close(state);
    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    CHECK_EQ(state_applied_index(state), 3);
    CHECK_EQ(state_revision(state), 1);
    CHECK_EQ(put_batch(state, 4, "k", "v"), STATE_OK);
    struct state_kv kv;
    CHECK(get_at(state, "k", 0, &kv));
    CHECK_EQ(kv.create_revision, 2);
    CHECK_EQ(kv.mod_revision, 2);
    free_kv(&kv);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(delete_range(state, "k", NULL), 1);
    REQUIRE_OK(state_batch_commit(state, 5, test_err, sizeof test_err));
    state_close(state);
    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    /* The revision of a delete survives even though no live key carries it. */
    CHECK_EQ(state_revision(state), 3);
    CHECK_EQ(state_applied_index(state), 5);
    state_close(state);
}

/* The writers run in a program of their own (this one, exec'd with the writer's name): RocksDB's background
 * threads do not survive a fork, and a flush waits for them. */
static pid_t start_writer(const char *name, int pipe_ends[2])
{
    pid_t child = fork();
    if (child == 0) {
        close(pipe_ends[0]);
        char fd_text[16];
        snprintf(fd_text, sizeof fd_text, "%d", pipe_ends[1]);
        execl(test_program, test_program, name, root, fd_text, (char *)NULL);
        _exit(9);
    }
    return child;
}

/* Applies batches until killed: index i puts counter=i and key-i. */
static int writer_kill_during_apply(int started)
{
    struct state *writer;
    if (state_open(root, &writer, test_err, sizeof test_err) != STATE_OK)
        return 3;
    for (uint64_t index = 1;; index++) {
        char value[32], key[32];
        snprintf(value, sizeof value, "%llu", (unsigned long long)index);
        snprintf(key, sizeof key, "key-%llu", (unsigned long long)index);
        if (state_batch_begin(writer, test_err, sizeof test_err) != STATE_OK ||
            put(writer, "counter", value) != STATE_OK || put(writer, key, "x") != STATE_OK ||
            state_batch_commit(writer, index, test_err, sizeof test_err) != STATE_OK)
            return 4;
        /* Batches reach the disk only through flushes (they are in no log of RocksDB's): the first
         * is flushed before the parent is told, later ones every 50 batches in RocksDB's own
         * threads, so the kill lands before, during or after a flush. */
        uint64_t durable = 0;
        if (index == 1 && state_sync(writer, &durable, test_err, sizeof test_err) != STATE_OK)
            return 6;
        if (index % 50 == 0 && state_flush_in_background(writer, test_err, sizeof test_err) != STATE_OK)
            return 7;
        if (index == 1 && (write(started, "1", 1) != 1 || close(started) != 0))
            return 5;
    }
}

/* Commits batch 1 and flushes it, commits 2 and 3 without a flush, then waits to be killed. */
static int writer_unflushed(int ready)
{
    struct state *writer;
    uint64_t durable = 0;
    if (state_open(root, &writer, test_err, sizeof test_err) != STATE_OK ||
        put_batch(writer, 1, "a", "1") != STATE_OK ||
        state_sync(writer, &durable, test_err, sizeof test_err) != STATE_OK || durable != 1 ||
        put_batch(writer, 2, "a", "2") != STATE_OK || put_batch(writer, 3, "b", "3") != STATE_OK)
        return 3;
    if (write(ready, "1", 1) != 1)
        return 4;
    for (;;)
        pause(); /* killed here, batches 2 and 3 in the memtables only */
}

/* etcd #13766 in miniature: a child applies batches (index i puts counter=i and key-i) until it is
 * killed with SIGKILL at an arbitrary moment; after reopening, the applied index, the revision and
 * the data must all describe the same batch (the last one a flush wrote: the node applies the rest
 * again from the Raft WAL). The store starts at revision 1 and each batch adds 2,
 * so batch i writes counter at 2i and key-i at 2i + 1: revision = 1 + 2 * applied index. */
static void test_kill_during_apply(void)
{
    struct state *state = open_fresh(root, sizeof root);
    state_close(state); /* the parent holds nothing open while the child writes */
    /* The child reports its first commit, so the kill always lands mid-run, however slowly the
     * child starts (sanitizers, a loaded machine), and never before anything was applied. */
    int started[2];
    REQUIRE_OK(pipe(started) == 0 ? STATE_OK : STATE_ERR_IO);
    pid_t child = start_writer("kill-during-apply", started);
    close(started[1]);
    CHECK(child > 0);
    if (child < 0) { /* never kill(-1, ...) */
        close(started[0]);
        return;
    }
    char byte = 0;
    CHECK_EQ(read(started[0], &byte, 1), 1); /* 0 (EOF): the child died before committing */
    close(started[0]);
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    kill(child, SIGKILL);
    int wait_status = 0;
    waitpid(child, &wait_status, 0);
    CHECK(WIFSIGNALED(wait_status)); /* killed mid-run, not failed on its own */

    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    uint64_t applied = state_applied_index(state);
    CHECK(applied > 0);
    CHECK_EQ(state_revision(state), 1 + 2 * applied);
    struct state_kv kv;
    CHECK(get_at(state, "counter", 0, &kv));
    char counter[32] = "";
    if (kv.value != NULL && kv.value_len < sizeof counter)
        memcpy(counter, kv.value, kv.value_len);
    CHECK_EQ(strtoull(counter, NULL, 10), applied);
    CHECK_EQ(kv.version, applied);
    CHECK_EQ(kv.create_revision, 2);
    CHECK_EQ(kv.mod_revision, 2 * applied);
    free_kv(&kv);
    char key[32];
    snprintf(key, sizeof key, "key-%llu", (unsigned long long)applied);
    CHECK(get_at(state, key, 0, &kv));
    CHECK_EQ(kv.mod_revision, 2 * applied + 1);
    free_kv(&kv);
    snprintf(key, sizeof key, "key-%llu", (unsigned long long)applied + 1);
    CHECK(!get_at(state, key, 0, &kv));
    /* The WAL replays from applied + 1: applying it continues the sequence exactly. */
    CHECK_EQ(put_batch(state, applied + 1, "counter", "next"), STATE_OK);
    CHECK_EQ(state_revision(state), 1 + 2 * applied + 1);
    state_close(state);
}

/* Batches are written to no log of RocksDB's: a crash loses what no flush wrote yet (the node applies it
 * again from the Raft WAL, from the applied index the state reopens at), and a clean close keeps all. */
static void test_crash_loses_only_unflushed_batches(void)
{
    struct state *state = open_fresh(root, sizeof root);
    state_close(state);
    int ready[2];
    REQUIRE_OK(pipe(ready) == 0 ? STATE_OK : STATE_ERR_IO);
    pid_t child = start_writer("unflushed", ready);
    close(ready[1]);
    CHECK(child > 0);
    if (child < 0) {
        close(ready[0]);
        return;
    }
    char byte = 0;
    CHECK_EQ(read(ready[0], &byte, 1), 1);
    close(ready[0]);
    kill(child, SIGKILL);
    int wait_status = 0;
    waitpid(child, &wait_status, 0);
    CHECK(WIFSIGNALED(wait_status));

    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    CHECK_EQ(state_applied_index(state), 1);
    CHECK_EQ(state_revision(state), 2);
    struct state_kv kv;
    CHECK(get_at(state, "a", 0, &kv));
    CHECK(value_is(&kv, "1"));
    free_kv(&kv);
    CHECK(!get_at(state, "b", 0, &kv));
    /* Applied again, as the WAL replays them, then a clean close: both survive without a flush of ours. */
    CHECK_EQ(put_batch(state, 2, "a", "2"), STATE_OK);
    CHECK_EQ(put_batch(state, 3, "b", "3"), STATE_OK);
    state_close(state);
    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    CHECK_EQ(state_applied_index(state), 3);
    CHECK_EQ(state_revision(state), 4);
    CHECK(get_at(state, "b", 0, &kv));
    CHECK(value_is(&kv, "3"));
    free_kv(&kv);
    state_close(state);
}

int main(int argc, char **argv)
{
    test_program = argv[0];
    if (argc == 4) {
        snprintf(root, sizeof root, "%s", argv[2]);
        int fd = atoi(argv[3]);
        if (strcmp(argv[1], "kill-during-apply") == 0)
            return writer_kill_during_apply(fd);
        if (strcmp(argv[1], "unflushed") == 0)
            return writer_unflushed(fd);
        return 2;
    }
    RUN(test_resume_after_last_commit);
    RUN(test_empty_batches_and_delete_revisions);
    RUN(test_kill_during_apply);
    RUN(test_crash_loses_only_unflushed_batches);
    return test_failures == 0 ? 0 : 1;
}
