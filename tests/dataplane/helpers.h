/* tests/dataplane/helpers.h: checks and small utilities shared by the dataplane tests. A failed check
 * prints where, what, and the command that reruns the test, then exits 1. */
#ifndef QUORUMD_TESTS_DATAPLANE_HELPERS_H
#define QUORUMD_TESTS_DATAPLANE_HELPERS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *test_name = "dataplane";

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fprintf(stderr, "\nreproduce: meson test -C build --suite dataplane %s --verbose\n", \
			test_name);                                                                \
		exit(1);                                                                           \
	} while (0)

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			FAIL("check failed: " #cond ": " __VA_ARGS__);                             \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		unsigned long long check_a_ = (unsigned long long)(a);                             \
		unsigned long long check_b_ = (unsigned long long)(b);                             \
		if (check_a_ != check_b_)                                                          \
			FAIL("%s == %s: %llu != %llu", #a, #b, check_a_, check_b_);                \
	} while (0)

#define CHECK_OK(expr, err)                                                                        \
	do {                                                                                       \
		int check_rv_ = (expr);                                                            \
		if (check_rv_ < 0)                                                                 \
			FAIL("%s returned %d: %s", #expr, check_rv_, (err));                       \
	} while (0)

#define RUN(test)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "-- %s\n", #test);                                                 \
		test();                                                                            \
	} while (0)

/* Deterministic bytes: splitmix64 from a seed. */
static inline uint64_t test_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void test_fill(uint8_t *buffer, size_t length, uint64_t seed)
{
	uint64_t state = seed;
	for (size_t i = 0; i < length; i++)
		buffer[i] = (uint8_t)test_random(&state);
}

static inline uint64_t test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
