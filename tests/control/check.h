/* tests/control/check.h: the one assertion the small control tests share. CHECK counts a failure and
 * prints the expression, the place and a printf-style explanation, then the test goes on; main returns
 * failures != 0. */
#ifndef QUORUMD_TESTS_CHECK_H
#define QUORUMD_TESTS_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(condition, ...)                                                                     \
	do {                                                                                          \
		if (!(condition)) {                                                                       \
			failures++;                                                                           \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #condition);                           \
			printf(__VA_ARGS__);                                                                  \
			printf("\n");                                                                         \
		}                                                                                         \
	} while (0)

#endif
