/* tests/raft/main.c: the runner of the Raft core's unit tests.
 *
 * Usage: raft-unit [--list] [--group NAME] [SUBSTRING...]. Runs every test whose name contains one of
 * the substrings (all when none is given), prints "--- PASS/FAIL: TestName" the way `go test -v` does,
 * and exits non-zero when any failed. A failure line names the test; rerun just it with
 * `build/tests/raft/raft-unit TestName`.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

const char *current_test_name;
int current_test_failures;
jmp_buf current_test_abort;

void message_pool_reset(void);

/* Clusters created by the running test, freed when it ends (also after a REQUIRE aborted it). */
#define MAX_CLUSTERS_PER_TEST 16
static struct cluster *test_clusters[MAX_CLUSTERS_PER_TEST];
static size_t test_clusters_count;

void test_register_cluster(struct cluster *cluster)
{
	if (test_clusters_count == MAX_CLUSTERS_PER_TEST) {
		fprintf(stderr, "too many clusters in one test\n");
		abort();
	}
	test_clusters[test_clusters_count++] = cluster;
}

struct group {
	const char *name;
	const struct test_case *tests;
};

extern const struct test_case regression_tests[];

static const struct group groups[] = {
	{"election", election_tests},     {"replication", replication_tests}, {"figures", paper_figure_tests},
	{"features", feature_tests},      {"membership", membership_tests},   {"bad-input", bad_input_tests},
	{"restart", restart_tests},       {"regressions", regression_tests},
};

static bool selected(const char *name, int argc, char **argv, int first_filter)
{
	if (first_filter >= argc)
		return true;
	for (int k = first_filter; k < argc; k++)
		if (strstr(name, argv[k]) != NULL)
			return true;
	return false;
}

static bool run_one(const struct test_case *test)
{
	current_test_name = test->name;
	current_test_failures = 0;
	test_clusters_count = 0;
	message_pool_reset();
	fprintf(stderr, "=== RUN   %s\n", test->name);
	if (setjmp(current_test_abort) == 0)
		test->run();
	for (size_t k = 0; k < test_clusters_count; k++)
		cluster_free(test_clusters[k]);
	test_clusters_count = 0;
	bool passed = current_test_failures == 0;
	fprintf(stderr, "--- %s: %s\n", passed ? "PASS" : "FAIL", test->name);
	return passed;
}

int main(int argc, char **argv)
{
	bool list = false;
	const char *group_name = NULL;
	int first_filter = 1;
	while (first_filter < argc && strncmp(argv[first_filter], "--", 2) == 0) {
		if (strcmp(argv[first_filter], "--list") == 0) {
			list = true;
			first_filter++;
		} else if (strcmp(argv[first_filter], "--group") == 0 && first_filter + 1 < argc) {
			group_name = argv[first_filter + 1];
			first_filter += 2;
		} else {
			fprintf(stderr, "usage: %s [--list] [--group NAME] [SUBSTRING...]\n", argv[0]);
			return 2;
		}
	}

	size_t passed = 0, failed = 0;
	const char *failed_names[512];
	const char *failed_groups[512];
	for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
		if (group_name && strcmp(group_name, groups[g].name) != 0)
			continue;
		for (const struct test_case *test = groups[g].tests; test->name; test++) {
			if (!selected(test->name, argc, argv, first_filter))
				continue;
			if (list) {
				printf("%s %s\n", groups[g].name, test->name);
				continue;
			}
			if (run_one(test)) {
				passed++;
			} else {
				if (failed < sizeof failed_names / sizeof failed_names[0])
					failed_names[failed] = test->name, failed_groups[failed] = groups[g].name;
				failed++;
			}
		}
	}
	if (list)
		return 0;
	fprintf(stderr, "%zu passed, %zu failed\n", passed, failed);
	for (size_t k = 0; k < failed && k < sizeof failed_names / sizeof failed_names[0]; k++)
		fprintf(stderr, "  reproduce: %s --group %s %s\n", argv[0], failed_groups[k], failed_names[k]);
	if (passed + failed == 0) {
		fprintf(stderr, "no test matched\n");
		return 1;
	}
	return failed ? 1 : 0;
}
