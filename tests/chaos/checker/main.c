/* linearizability-check: the chaos tests' verdict on a recorded history (format and exit codes in README.md).
 * Parsing is history.c, the search linearizability.c; this file is the command line and the summary line. */
#include "history.h"
#include "linearizability.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_BAD_INPUT 2

static void usage(FILE *stream)
{
	fprintf(stream,
		"usage: linearizability-check [--max-states N] [--max-memory-mb N] [--verbose] HISTORY_FILE|-\n"
		"exit 0 linearizable, 1 not linearizable, 2 bad input, 3 search bound hit\n");
}

static bool parse_count(const char *text, uint64_t *value)
{
	if (text == NULL || *text < '0' || *text > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long parsed = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || parsed == 0)
		return false;
	*value = parsed;
	return true;
}

static void print_counts(const struct linearizability_summary *summary)
{
	printf("%zu operations (%zu ok, %zu failed, %zu unknown) on %zu key%s", summary->operation_count,
	       summary->ok_count, summary->failed_count, summary->unknown_count, summary->key_count,
	       summary->key_count == 1 ? "" : "s");
}

int main(int argc, char **argv)
{
	struct linearizability_options options = {
		.max_states = LINEARIZABILITY_DEFAULT_MAX_STATES,
		.max_memory_bytes = LINEARIZABILITY_DEFAULT_MAX_MEMORY_BYTES,
		.report = stdout,
	};
	const char *path = NULL;
	for (int index = 1; index < argc; index++) {
		const char *argument = argv[index];
		uint64_t megabytes;
		if (strcmp(argument, "--verbose") == 0) {
			options.verbose = true;
		} else if (strcmp(argument, "--max-states") == 0) {
			if (!parse_count(index + 1 < argc ? argv[++index] : NULL, &options.max_states)) {
				fprintf(stderr, "linearizability-check: --max-states needs a positive integer\n");
				return EXIT_BAD_INPUT;
			}
		} else if (strcmp(argument, "--max-memory-mb") == 0) {
			if (!parse_count(index + 1 < argc ? argv[++index] : NULL, &megabytes) || megabytes > (UINT64_MAX >> 20)) {
				fprintf(stderr, "linearizability-check: --max-memory-mb needs a positive integer\n");
				return EXIT_BAD_INPUT;
			}
			options.max_memory_bytes = megabytes << 20;
		} else if (strcmp(argument, "--help") == 0 || strcmp(argument, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (argument[0] == '-' && argument[1] != '\0') {
			fprintf(stderr, "linearizability-check: unknown option %s\n", argument);
			usage(stderr);
			return EXIT_BAD_INPUT;
		} else if (path != NULL) {
			fprintf(stderr, "linearizability-check: one history file only\n");
			usage(stderr);
			return EXIT_BAD_INPUT;
		} else {
			path = argument;
		}
	}
	if (path == NULL) {
		usage(stderr);
		return EXIT_BAD_INPUT;
	}

	FILE *input = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (input == NULL) {
		fprintf(stderr, "linearizability-check: cannot open %s: %s\n", path, strerror(errno));
		return EXIT_BAD_INPUT;
	}
	struct history history;
	char error[512];
	int parsed = history_parse(input, strcmp(path, "-") == 0 ? "<stdin>" : path, &history, error, sizeof error);
	if (input != stdin)
		fclose(input);
	if (parsed != 0) {
		fprintf(stderr, "linearizability-check: bad history: %s\n", error);
		return EXIT_BAD_INPUT;
	}

	struct linearizability_summary summary;
	if (linearizability_check_history(&history, &options, &summary) != 0) {
		/* Running out of memory proves nothing either way, like the search bound. */
		printf("unknown: out of memory while checking\n");
		history_free(&history);
		return SEARCH_BOUND_HIT;
	}
	if (options.verbose)
		printf("%" PRIu64 " configurations explored in all\n", summary.states_explored);
	switch (summary.verdict) {
	case LINEARIZABLE:
		printf("linearizable: ");
		print_counts(&summary);
		printf("\n");
		break;
	case NOT_LINEARIZABLE:
		printf("NOT linearizable: key %s", history.keys[summary.first_bad_key]);
		if (summary.bad_key_count > 1)
			printf(" and %zu more", summary.bad_key_count - 1);
		printf(" (%zu of %zu keys); ", summary.bad_key_count, summary.key_count);
		print_counts(&summary);
		printf("\n");
		break;
	case SEARCH_BOUND_HIT:
		printf("unknown: search bound hit on key %s", history.keys[summary.first_bounded_key]);
		if (summary.bounded_key_count > 1)
			printf(" and %zu more", summary.bounded_key_count - 1);
		printf(" (--max-states %" PRIu64 ", --max-memory-mb %" PRIu64 "); ", options.max_states,
		       options.max_memory_bytes >> 20);
		print_counts(&summary);
		printf("\n");
		break;
	}
	history_free(&history);
	return (int)summary.verdict;
}
