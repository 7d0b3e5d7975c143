/* tests/state/state_test.h: the small harness the state tests share: checks that report file, line
 * and how to rerun, temporary state directories that are always removed, and one-line helpers for
 * the common operations so each test reads like the etcd behaviour it checks. */
#ifndef STATE_TEST_H
#define STATE_TEST_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state.h"

static int test_failures;
static const char *test_program = "";
static char test_err[512];

#define CHECK(condition)                                                                           \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s); rerun: %s\n", __FILE__,    \
                    __LINE__, #condition, test_err, test_program);                                 \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(actual, expected)                                                                 \
    do {                                                                                           \
        long long actual_value = (long long)(actual), expected_value = (long long)(expected);      \
        if (actual_value != expected_value) {                                                      \
            fprintf(stderr, "%s:%d: %s == %lld, want %s == %lld (last error: %s); rerun: %s\n",    \
                    __FILE__, __LINE__, #actual, actual_value, #expected, expected_value,          \
                    test_err, test_program);                                                       \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

/* Stops the test function when an operation fails: what follows would only add noise. */
#define REQUIRE_OK(call)                                                                           \
    do {                                                                                           \
        int require_status = (call);                                                               \
        if (require_status != STATE_OK) {                                                          \
            fprintf(stderr, "%s:%d: %s returned %d: %s; rerun: %s\n", __FILE__, __LINE__, #call,   \
                    require_status, test_err, test_program);                                       \
            test_failures++;                                                                       \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static inline struct state_bytes bytes_of(const char *text)
{
    return (struct state_bytes){(const uint8_t *)text, text != NULL ? strlen(text) : 0};
}

static int remove_entry(const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    (void)info;
    (void)type;
    (void)ftw;
    return remove(path);
}

static inline void remove_dir(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#define MAX_TEMP_DIRS 16
static char temp_dirs[MAX_TEMP_DIRS][64];
static int temp_dir_count;

static void remove_temp_dirs(void)
{
    for (int i = 0; i < temp_dir_count; i++)
        remove_dir(temp_dirs[i]);
}

/* A fresh directory under /tmp, removed when the program exits (also after a failed check). */
static inline const char *temp_dir(void)
{
    if (temp_dir_count == 0)
        atexit(remove_temp_dirs);
    if (temp_dir_count == MAX_TEMP_DIRS)
        abort();
    char *dir = temp_dirs[temp_dir_count];
    snprintf(dir, 64, "/tmp/state-test-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    temp_dir_count++;
    return dir;
}

/* A state root inside a fresh temp dir. */
static inline struct state *open_fresh(char *root_out, size_t root_len)
{
    snprintf(root_out, root_len, "%s/state", temp_dir());
    struct state *state = NULL;
    if (state_open(root_out, &state, test_err, sizeof test_err) != STATE_OK) {
        fprintf(stderr, "state_open %s: %s\n", root_out, test_err);
        exit(1);
    }
    return state;
}

static inline int put(struct state *state, const char *key, const char *value)
{
    struct state_put_request request = {.key = bytes_of(key), .value = bytes_of(value)};
    struct state_put_response response;
    int status = state_put(state, &request, &response, test_err, sizeof test_err);
    state_put_response_free(&response);
    return status;
}

static inline int64_t delete_range(struct state *state, const char *key, const char *end)
{
    struct state_delete_request request = {.key = bytes_of(key), .range_end = bytes_of(end)};
    struct state_delete_response response;
    if (state_delete_range(state, &request, &response, test_err, sizeof test_err) != STATE_OK)
        return -1;
    int64_t deleted = response.deleted;
    state_delete_response_free(&response);
    return deleted;
}

/* Applies one batch with a single put. */
static inline int put_batch(struct state *state, uint64_t index, const char *key, const char *value)
{
    int status = state_batch_begin(state, test_err, sizeof test_err);
    if (status == STATE_OK)
        status = put(state, key, value);
    if (status == STATE_OK)
        return state_batch_commit(state, index, test_err, sizeof test_err);
    state_batch_abort(state);
    return status;
}

/* Gets one key at `revision` (0: now); returns false when absent. */
static inline bool get_at(struct state *state, const char *key, int64_t revision,
                          struct state_kv *out)
{
    struct state_range_request request = {.key = bytes_of(key), .revision = revision};
    struct state_range_response response;
    *out = (struct state_kv){0};
    if (state_range(state, &request, &response, test_err, sizeof test_err) != STATE_OK ||
        response.kv_count == 0) {
        state_range_response_free(&response);
        return false;
    }
    *out = response.kvs[0];
    response.kvs[0] = (struct state_kv){0};
    state_range_response_free(&response);
    return true;
}

static inline bool value_is(const struct state_kv *kv, const char *value)
{
    return kv->value_len == strlen(value) && memcmp(kv->value, value, kv->value_len) == 0;
}

static inline bool key_is(const struct state_kv *kv, const char *key)
{
    return kv->key_len == strlen(key) && memcmp(kv->key, key, kv->key_len) == 0;
}

static inline void free_kv(struct state_kv *kv)
{
    free(kv->key);
    free(kv->value);
    *kv = (struct state_kv){0};
}

#define RUN(test)                                                                                  \
    do {                                                                                           \
        int failures_before = test_failures;                                                       \
        test_err[0] = '\0';                                                                        \
        test();                                                                                    \
        printf("%s %s\n", test_failures == failures_before ? "ok  " : "FAIL", #test);              \
    } while (0)

#endif
