/* tests/wal/helpers.h: what the wal tests share: failing with the place and a reproduce hint, temporary
 * directories removed on every exit path, and the deterministic entry content the tests check against. */
#ifndef QUORUMD_TESTS_WAL_HELPERS_H
#define QUORUMD_TESTS_WAL_HELPERS_H

#include "wal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Exit status meson reads as "skipped". */
#define TEST_SKIP 77

#define CHECK(condition) \
	do { \
		if (!(condition)) \
			test_fail(__FILE__, __LINE__, #condition, NULL); \
	} while (0)

/* For calls returning 0 / -errno with an error buffer. */
#define CHECK_OK(call, err) \
	do { \
		int check_rc_ = (call); \
		if (check_rc_ != 0) \
			test_fail(__FILE__, __LINE__, #call, (err)); \
	} while (0)

__attribute__((noreturn)) void test_fail(const char *file, int line, const char *what, const char *detail);
/* What test_fail prints as the command that reproduces a failure (a test with a seed sets its own). */
extern char test_reproduce[256];

/* 1 when dir's file system accepts O_DIRECT (tmpfs before Linux 6.6 does not). */
int test_direct_io_supported(const char *dir);

/* Enters a private mount namespace (once per process), so that what the test mounts vanishes with it. False,
 * after printing why (prefix, then the reason), when it may not: not root. */
bool test_private_mount_namespace(const char *prefix);
/* In that namespace, mounts fstype (options may be NULL) over a fresh temporary directory named after name,
 * unmounted at exit. Returns the mount point, or NULL after printing why it cannot: the test then skips. */
const char *test_mount_private(const char *name, const char *fstype, const char *options);

/* Creates a fresh directory under $TMPDIR (or /tmp), removed at exit even when a check fails. */
const char *test_temp_dir(const char *label);
void test_remove_tree(const char *path);

/* Deterministic content of entry (index, term): its length (1..max_length) and bytes. */
size_t test_entry_length(uint64_t index, uint64_t term, size_t max_length);
void test_entry_fill(uint64_t index, uint64_t term, uint8_t *out, size_t length);
/* 1 when entry matches the deterministic content for its index and term. */
int test_entry_matches(const struct wal_entry *entry, size_t max_length);

/* Appends entries first..last of term with deterministic content. */
void test_append_range(struct wal *wal, uint64_t first, uint64_t last, uint64_t term, size_t max_length);
/* Submits and waits until everything appended is durable; returns the durable index. */
uint64_t test_sync(struct wal *wal);

/* The wal's three write modes; a test's `direct_io` argument takes these values (any non-zero is O_DIRECT). */
enum test_write_mode { TEST_BUFFERED = 0, TEST_DIRECT = 1, TEST_DIRECT_DSYNC = 2 };
const char *test_write_mode_name(int write_mode);
void test_options(struct wal_options *options, uint64_t segment_size, int write_mode);

#endif
