/* bench/apply_bench.c: how fast the state machine applies puts, by batch size. Each batch is one
 * state_batch_begin .. state_batch_commit, i.e. one RocksDB WriteBatch with the applied index, as the
 * storage thread applies committed Raft entries. 8-byte keys from 100000, 256-byte values, in two
 * orders: random (xorshift) and sequential (each put the next key, wrapping, as etcd's benchmark and
 * quorum-bench --sequential-keys write them). Prints puts per second, the ratio to batches of one put,
 * and the process's CPU (every thread: RocksDB's flushes and compactions too) per put. Never decides
 * pass/fail.
 * Usage: apply-bench [total puts per batch size, default 200000] [directory, default /tmp]
 *                    [random|sequential|both, default both] */
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

/* Applies `total` puts in batches of `batch_size`; returns puts per second, < 0 on error, and the
 * CPU microseconds per put in *cpu_per_put. */
static double run(const char *base, size_t batch_size, size_t total, bool sequential,
                  double *cpu_per_put)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/apply-bench-XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    char root[300];
    snprintf(root, sizeof root, "%s/state", dir);
    char err[256];
    struct state *state;
    if (state_open(root, &state, err, sizeof err) != STATE_OK) {
        fprintf(stderr, "state_open: %s\n", err);
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        return -1;
    }
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
    state_close(state);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rate;
}

int main(int argc, char **argv)
{
    size_t total = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    const char *base = argc > 2 ? argv[2] : "/tmp";
    const char *order = argc > 3 ? argv[3] : "both";
    bool random_keys = strcmp(order, "random") == 0 || strcmp(order, "both") == 0;
    bool sequential_keys = strcmp(order, "sequential") == 0 || strcmp(order, "both") == 0;
    if (total == 0 || (!random_keys && !sequential_keys)) {
        fprintf(stderr, "usage: %s [total puts per batch size] [directory] [random|sequential|both]\n",
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
    return 0;
}
