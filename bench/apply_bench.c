/* bench/apply_bench.c: how fast the state machine applies puts, by batch size. Each batch is one
 * state_batch_begin .. state_batch_commit, i.e. one RocksDB WriteBatch with the applied index, as the
 * storage thread applies committed Raft entries. 8-byte keys from 100000, 256-byte values, in two
 * orders: random (xorshift) and sequential (each put the next key, wrapping, as etcd's benchmark and
 * quorum-bench --sequential-keys write them). Prints puts per second, the ratio to batches of one put,
 * and the process's CPU (every thread: RocksDB's flushes and compactions too) per put. Then reads:
 * what the current records ('c') save against reading each key's newest history record ('h'), which
 * is what a store keeping one record per put would read (storage/state/README.md). Never decides
 * pass/fail. replay: what a watcher catching up from the history costs per event — 100,000 puts over
 * 1,000 keys (as tests/etcdctl/16-watch-stall writes its history), then every event read back from
 * revision 1 in the watch catch-up's steps (200 events), with and without previous values.
 * Usage: apply-bench [total puts per batch size, default 200000] [directory, default /tmp]
 *                    [random|sequential|reads|replay|all, default all] */
#include <ftw.h>
#include <sys/resource.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state.h"

#define KEY_SPACE 100000u
#define VALUE_SIZE 256

static int remove_entry(const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    (void)info;
    (void)type;
    (void)ftw;
    return remove(path);
}

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
           (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

/* A state in a new directory under base (its path in dir); NULL, with the reason printed, if it cannot be made. */
static struct state *scratch_state_open(const char *base, char *dir, size_t dir_size)
{
    snprintf(dir, dir_size, "%s/apply-bench-XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return NULL;
    }
    char root[300];
    snprintf(root, sizeof root, "%s/state", dir);
    char err[256];
    struct state *state;
    if (state_open(root, &state, err, sizeof err) != STATE_OK) {
        fprintf(stderr, "state_open: %s\n", err);
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        return NULL;
    }
    return state;
}

static void scratch_state_close(struct state *state, const char *dir)
{
    state_close(state);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Applies `total` puts in batches of `batch_size`; returns puts per second, < 0 on error, and the
 * CPU microseconds per put in *cpu_per_put. */
static double run(const char *base, size_t batch_size, size_t total, bool sequential,
                  double *cpu_per_put)
{
    char dir[256];
    char err[256];
    struct state *state = scratch_state_open(base, dir, sizeof dir);
    if (state == NULL)
        return -1;
    uint8_t value[VALUE_SIZE];
    memset(value, 'v', sizeof value);
    uint64_t seed = 0x2545f4914f6cdd1dull;
    uint64_t index = 0;
    double rate = -1;
    double start = now_seconds();
    double cpu_start = cpu_seconds();
    size_t done = 0;
    while (done < total) {
        if (state_batch_begin(state, err, sizeof err) != STATE_OK)
            goto fail;
        for (size_t i = 0; i < batch_size && done < total; i++, done++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char key[9];
            snprintf(key, sizeof key, "%08u", (unsigned)((sequential ? done : seed) % KEY_SPACE));
            struct state_put_request request = {.key = {(const uint8_t *)key, 8},
                                                .value = {value, sizeof value}};
            struct state_put_response response;
            if (state_put(state, &request, &response, err, sizeof err) != STATE_OK)
                goto fail;
            state_put_response_free(&response);
        }
        if (state_batch_commit(state, ++index, err, sizeof err) != STATE_OK)
            goto fail;
    }
    rate = (double)total / (now_seconds() - start);
    *cpu_per_put = (cpu_seconds() - cpu_start) * 1e6 / (double)total;
    goto out;
fail:
    fprintf(stderr, "apply failed: %s\n", err);
out:
    scratch_state_close(state, dir);
    return rate;
}

/* The time of one range of every key at `revision` (0: now), in seconds; < 0 on error. */
static double time_range(struct state *state, int64_t revision, size_t *keys)
{
    char err[256];
    struct state_range_request request = {.key = {(const uint8_t *)"\0", 1},
                                          .range_end = {(const uint8_t *)"\0", 1},
                                          .revision = revision};
    struct state_range_response response;
    double start = now_seconds();
    if (state_range(state, &request, &response, err, sizeof err) != STATE_OK) {
        fprintf(stderr, "range: %s\n", err);
        return -1;
    }
    double took = now_seconds() - start;
    *keys = response.kv_count;
    state_range_response_free(&response);
    return took;
}

/* The time of `count` one-key ranges of random keys at `revision`, in seconds; < 0 on error. */
static double time_gets(struct state *state, int64_t revision, size_t count)
{
    char err[256];
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    double start = now_seconds();
    for (size_t i = 0; i < count; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        char key[9];
        snprintf(key, sizeof key, "%08u", (unsigned)(seed % KEY_SPACE));
        struct state_range_request request = {.key = {(const uint8_t *)key, 8}, .revision = revision};
        struct state_range_response response;
        if (state_range(state, &request, &response, err, sizeof err) != STATE_OK ||
            response.kv_count != 1) {
            fprintf(stderr, "get %s: %s\n", key, err);
            state_range_response_free(&response);
            return -1;
        }
        state_range_response_free(&response);
    }
    return now_seconds() - start;
}

/* count puts of 256-byte values in batches of batch_size; put i writes key (i * stride) % key_space, printed
 * with format (its length is the key's). */
static int put_keys(struct state *state, size_t count, size_t batch_size, size_t key_space, size_t stride,
                    const char *format, char *err, size_t errlen)
{
    uint8_t value[VALUE_SIZE];
    memset(value, 'v', sizeof value);
    uint64_t index = 0;
    for (size_t done = 0; done < count;) {
        if (state_batch_begin(state, err, errlen) != STATE_OK)
            return -1;
        for (size_t i = 0; i < batch_size && done < count; i++, done++) {
            char key[32];
            int length = snprintf(key, sizeof key, format, (done * stride) % key_space);
            struct state_put_request request = {.key = {(const uint8_t *)key, (size_t)length},
                                                .value = {value, sizeof value}};
            struct state_put_response response;
            if (state_put(state, &request, &response, err, errlen) != STATE_OK)
                return -1;
            state_put_response_free(&response);
        }
        if (state_batch_commit(state, ++index, err, errlen) != STATE_OK)
            return -1;
    }
    return 0;
}

/* Every key written twice, compacted into table files (defragment), then read both ways: at the
 * current revision through the 'c' records, and one revision earlier through the 'h' records (one seek
 * per key for the newest version at or below it): the same answers but one key's value. */
static int reads(const char *base)
{
    char dir[256];
    char err[256];
    struct state *state = scratch_state_open(base, dir, sizeof dir);
    if (state == NULL)
        return -1;
    int result = -1;
    if (put_keys(state, 2 * (size_t)KEY_SPACE, 1024, KEY_SPACE, 1, "%08zu", err, sizeof err) != 0)
        goto fail;
    if (state_defragment(state, err, sizeof err) != STATE_OK)
        goto fail;
    int64_t before = state_revision(state) - 1;
    enum { ROUNDS = 5, GETS = 20000 };
    double range_now = 1e9, range_before = 1e9, get_now = 1e9, get_before = 1e9;
    size_t keys_now = 0, keys_before = 0;
    for (int round = 0; round < ROUNDS; round++) { /* the best of each, rounds interleaved */
        double t;
        if ((t = time_range(state, 0, &keys_now)) < 0)
            goto out;
        range_now = t < range_now ? t : range_now;
        if ((t = time_range(state, before, &keys_before)) < 0)
            goto out;
        range_before = t < range_before ? t : range_before;
        if ((t = time_gets(state, 0, GETS)) < 0)
            goto out;
        get_now = t < get_now ? t : get_now;
        if ((t = time_gets(state, before, GETS)) < 0)
            goto out;
        get_before = t < get_before ? t : get_before;
    }
    printf("reads: %u keys written twice each, defragmented into table files; best of %d\n", KEY_SPACE,
           ROUNDS);
    printf("%28s %22s %22s %8s\n", "", "current records ('c')", "history records ('h')", "h / c");
    printf("%28s %22.1f %22.1f %7.2fx\n", "range of every key, ms", range_now * 1e3, range_before * 1e3,
           range_before / range_now);
    printf("%28s %22.2f %22.2f %7.2fx\n", "one key, µs per get", get_now * 1e6 / GETS,
           get_before * 1e6 / GETS, get_before / get_now);
    if (keys_now != KEY_SPACE || keys_before != KEY_SPACE)
        fprintf(stderr, "apply-bench: a range returned %zu and %zu keys, not %u\n", keys_now, keys_before,
                KEY_SPACE);
    else
        result = 0;
    goto out;
fail:
    fprintf(stderr, "reads: %s\n", err);
out:
    scratch_state_close(state, dir);
    return result;
}

static double thread_cpu_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Every event from revision 1 on, in steps of at most 200 (the watch catch-up's); the events read, and
 * the CPU seconds it took in *seconds; < 0 on error. */
static long time_replay(struct state *state, bool prev_kv, double *seconds)
{
    char err[256];
    long events = 0;
    double started = thread_cpu_seconds();
    for (int64_t from = 1; from <= state_revision(state);) {
        struct state_event_list list;
        struct state_bytes all = {(const uint8_t *)"\0", 1};
        if (state_events_read_bounded(state, from, all, all, 200, 2000, prev_kv, &list, err, sizeof err) !=
            STATE_OK) {
            fprintf(stderr, "replay: %s\n", err);
            return -1;
        }
        events += (long)list.count;
        from = list.next_revision;
        state_event_list_free(&list);
    }
    *seconds = thread_cpu_seconds() - started;
    return events;
}

static int replay(const char *base)
{
    enum { HISTORY = 100000, REPLAY_KEYS = 1000, ROUNDS = 3 };
    char dir[256];
    char err[256];
    struct state *state = scratch_state_open(base, dir, sizeof dir);
    if (state == NULL)
        return -1;
    int result = -1;
    if (put_keys(state, HISTORY, 64, REPLAY_KEYS, 7919, "key-%012zu", err, sizeof err) != 0)
        goto fail;
    double plain = 1e9, with_prev = 1e9;
    for (int round = 0; round < ROUNDS; round++) { /* the best of each, rounds interleaved */
        double t;
        long events = time_replay(state, false, &t);
        if (events != HISTORY) {
            fprintf(stderr, "replay: %ld events, not %d\n", events, HISTORY);
            goto out;
        }
        plain = t < plain ? t : plain;
        if (time_replay(state, true, &t) != HISTORY)
            goto out;
        with_prev = t < with_prev ? t : with_prev;
    }
    printf("replay: %d puts over %d keys read back as watch events in steps of 200; best of %d\n", HISTORY,
           REPLAY_KEYS, ROUNDS);
    printf("%28s %10.2f\n", "CPU µs per event", plain * 1e6 / HISTORY);
    printf("%28s %10.2f\n", "with prev_kv, µs per event", with_prev * 1e6 / HISTORY);
    result = 0;
    goto out;
fail:
    fprintf(stderr, "replay: %s\n", err);
out:
    scratch_state_close(state, dir);
    return result;
}

int main(int argc, char **argv)
{
    size_t total = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    const char *base = argc > 2 ? argv[2] : "/tmp";
    const char *order = argc > 3 ? argv[3] : "all";
    bool all = strcmp(order, "all") == 0;
    bool random_keys = all || strcmp(order, "random") == 0;
    bool sequential_keys = all || strcmp(order, "sequential") == 0;
    bool read_back = all || strcmp(order, "reads") == 0;
    bool read_events = all || strcmp(order, "replay") == 0;
    if (total == 0 || (!random_keys && !sequential_keys && !read_back && !read_events)) {
        fprintf(stderr, "usage: %s [total puts per batch size] [directory] [random|sequential|reads|replay|all]\n",
                argv[0]);
        return 2;
    }
    const size_t sizes[] = {1, 64, 256, 1024};
    printf("apply-bench: %zu puts per run, 8-byte keys from %u, %d-byte values, dir %s\n", total,
           KEY_SPACE, VALUE_SIZE, base);
    for (int pass = 0; pass < 2; pass++) {
        bool sequential = pass == 1;
        if (sequential ? !sequential_keys : !random_keys)
            continue;
        printf("%s keys\n", sequential ? "sequential" : "random");
        printf("%12s %14s %10s %14s\n", "puts/batch", "puts/s", "vs batch 1", "cpu µs/put");
        double first = 0;
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            double cpu_per_put = 0;
            double rate = run(base, sizes[i], total, sequential, &cpu_per_put);
            if (rate < 0)
                return 1;
            if (i == 0)
                first = rate;
            printf("%12zu %14.0f %9.2fx %14.2f\n", sizes[i], rate, rate / first, cpu_per_put);
            fflush(stdout);
        }
    }
    if (read_back && reads(base) != 0)
        return 1;
    if (read_events && replay(base) != 0)
        return 1;
    return 0;
}
