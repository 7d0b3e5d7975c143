/* Unit and randomized tests of the linearizability checker.
 *
 * The randomized part simulates a real register: concurrent processes invoke operations at random times,
 * each takes effect at a random instant inside its window (an unknown one possibly after its client gave
 * up, or never), and results come from applying them in that order. Such a history is linearizable by
 * construction, so the checker must accept it. Then single mutations that make it impossible (a read of
 * a value never written, a stale read, a read of nil after a completed write) must be rejected.
 *
 * Reproduce one case: test-linearizability --seed N [--dump] (--dump prints the history and its mutants).
 * Write a simulated history for the command-line checker:
 *   test-linearizability --generate SEED PROCESSES OPERATIONS KEYS UNKNOWN_PERCENT FAIL_PERCENT MAX_DURATION_NS [VALUES]
 * (VALUES: draw written values from 1..VALUES instead of making each one new).
 * Larger timing cases: test-linearizability [--seeds N] --benchmark
 * More comparisons with exhaustive search: test-linearizability --brute-force CASES MAX_OPERATIONS FIRST_CASE */
#include "history.h"
#include "linearizability.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures;

#define EXPECT(condition, ...)                                                        \
	do {                                                                          \
		if (!(condition)) {                                                   \
			failures++;                                                   \
			fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);           \
			fprintf(stderr, __VA_ARGS__);                                 \
			fprintf(stderr, "\n");                                        \
		}                                                                     \
	} while (0)

static uint64_t random_next(uint64_t *state)
{
	uint64_t mixed = (*state += 0x9e3779b97f4a7c15ull);
	mixed = (mixed ^ (mixed >> 30)) * 0xbf58476d1ce4e5b9ull;
	mixed = (mixed ^ (mixed >> 27)) * 0x94d049bb133111ebull;
	return mixed ^ (mixed >> 31);
}

static uint64_t random_below(uint64_t *state, uint64_t bound)
{
	return random_next(state) % bound;
}

/* One simulated operation: the fields of a history line plus when (and whether) it took effect. */
struct simulated {
	uint64_t process;
	uint64_t invoke_ns;
	uint64_t complete_ns;
	uint64_t effect_ns;
	bool takes_effect;
	enum operation_outcome outcome;
	enum operation_kind kind;
	unsigned key;
	struct register_value argument;
	uint64_t cas_new_value;
	struct register_value read_result;
	bool cas_swapped;
};

struct workload {
	unsigned processes;
	unsigned operations;
	unsigned keys;
	unsigned unknown_percent;
	unsigned fail_percent;
	uint64_t max_duration_ns;
	uint64_t value_domain; /* 0: every write a new value; otherwise values 1..value_domain, as Jepsen's register */
};

static struct simulated *sorting_base;

static int compare_effect(const void *left, const void *right)
{
	const struct simulated *a = &sorting_base[*(const uint32_t *)left];
	const struct simulated *b = &sorting_base[*(const uint32_t *)right];
	if (a->effect_ns != b->effect_ns)
		return a->effect_ns < b->effect_ns ? -1 : 1;
	return *(const uint32_t *)left < *(const uint32_t *)right ? -1 : 1;
}

/* Builds a linearizable history: each operation takes effect at effect_ns, in that order. */
static struct simulated *simulate(uint64_t seed, const struct workload *workload)
{
	uint64_t random = seed * 0x9e3779b97f4a7c15ull + 1;
	struct simulated *operations = calloc(workload->operations, sizeof *operations);
	uint64_t *process_clock = calloc(workload->processes, sizeof *process_clock);
	uint64_t *process_number = calloc(workload->processes, sizeof *process_number);
	uint32_t *order = calloc(workload->operations, sizeof *order);
	if (operations == NULL || process_clock == NULL || process_number == NULL || order == NULL)
		abort();
	uint64_t next_process = workload->processes;
	for (unsigned client = 0; client < workload->processes; client++)
		process_number[client] = client;
	for (unsigned index = 0; index < workload->operations; index++) {
		unsigned client = (unsigned)random_below(&random, workload->processes);
		struct simulated *operation = &operations[index];
		operation->process = process_number[client];
		operation->invoke_ns = process_clock[client] + random_below(&random, workload->max_duration_ns / 4 + 1);
		operation->complete_ns = operation->invoke_ns + 1 + random_below(&random, workload->max_duration_ns);
		process_clock[client] = operation->complete_ns;
		operation->key = (unsigned)random_below(&random, workload->keys);
		unsigned kind = (unsigned)random_below(&random, 10);
		operation->kind = kind < 5 ? OPERATION_READ : kind < 8 ? OPERATION_WRITE : OPERATION_CAS;
		unsigned outcome = (unsigned)random_below(&random, 100);
		operation->outcome = outcome < workload->unknown_percent ? OUTCOME_UNKNOWN
				     : outcome < workload->unknown_percent + workload->fail_percent ? OUTCOME_FAIL
												: OUTCOME_OK;
		uint64_t window = operation->complete_ns - operation->invoke_ns;
		operation->takes_effect = true;
		operation->effect_ns = operation->invoke_ns + random_below(&random, window + 1);
		if (operation->outcome == OUTCOME_FAIL) {
			operation->takes_effect = false;
		} else if (operation->outcome == OUTCOME_UNKNOWN) {
			/* Half never happen; the rest may land long after the client gave up. */
			operation->takes_effect = random_below(&random, 2) == 0;
			operation->effect_ns = operation->invoke_ns + random_below(&random, window * 4 + 1);
			process_number[client] = next_process++;
		}
		order[index] = index;
	}
	sorting_base = operations;
	qsort(order, workload->operations, sizeof *order, compare_effect);

	struct register_value *registers = calloc(workload->keys, sizeof *registers);
	uint64_t next_value = 1;
	for (unsigned position = 0; position < workload->operations; position++) {
		struct simulated *operation = &operations[order[position]];
		struct register_value *current = &registers[operation->key];
		/* Arguments are chosen at the effect instant so that cas compares hold often enough to matter;
		 * values written are unique, which the mutations rely on. */
		switch (operation->kind) {
		case OPERATION_READ:
			operation->read_result = *current;
			break;
		case OPERATION_WRITE:
			operation->argument = (struct register_value){ .present = true, .value = next_value++ };
			if (workload->value_domain != 0)
				operation->argument.value = 1 + random_below(&random, workload->value_domain);
			if (operation->takes_effect)
				*current = operation->argument;
			break;
		case OPERATION_CAS:
			if (random_below(&random, 2) == 0)
				operation->argument = *current;
			else if (random_below(&random, 4) == 0)
				operation->argument = (struct register_value){ .present = false };
			else
				operation->argument = (struct register_value){ .present = true,
									       .value = 1 + random_below(&random, next_value) };
			operation->cas_new_value = workload->value_domain != 0 ? 1 + random_below(&random, workload->value_domain)
									       : next_value++;
			operation->cas_swapped = current->present == operation->argument.present &&
						 (!current->present || current->value == operation->argument.value);
			if (operation->takes_effect && operation->cas_swapped)
				*current = (struct register_value){ .present = true, .value = operation->cas_new_value };
			break;
		}
	}
	free(registers);
	free(process_clock);
	free(process_number);
	free(order);
	return operations;
}

static void format_value(struct register_value value, char *buffer, size_t size)
{
	register_value_format(value, buffer, size);
}

static char *render(const struct simulated *operations, unsigned count)
{
	char *text = NULL;
	size_t length = 0;
	FILE *stream = open_memstream(&text, &length);
	if (stream == NULL)
		abort();
	fprintf(stream, "# generated\n");
	for (unsigned index = 0; index < count; index++) {
		const struct simulated *operation = &operations[index];
		const char *outcome = operation->outcome == OUTCOME_OK ? "ok" : operation->outcome == OUTCOME_FAIL ? "fail" : "unknown";
		char argument[32], result[32];
		fprintf(stream, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %s ", operation->process, operation->invoke_ns,
			operation->complete_ns, outcome);
		switch (operation->kind) {
		case OPERATION_READ:
			format_value(operation->read_result, result, sizeof result);
			fprintf(stream, "read key%u - - %s\n", operation->key, operation->outcome == OUTCOME_OK ? result : "-");
			break;
		case OPERATION_WRITE:
			fprintf(stream, "write key%u %" PRIu64 " - -\n", operation->key, operation->argument.value);
			break;
		case OPERATION_CAS:
			format_value(operation->argument, argument, sizeof argument);
			fprintf(stream, "cas key%u %s %" PRIu64 " %s\n", operation->key, argument, operation->cas_new_value,
				operation->outcome != OUTCOME_OK ? "-" : operation->cas_swapped ? "true" : "false");
			break;
		}
	}
	fclose(stream);
	return text;
}

struct outcome {
	int verdict; /* linearizability_verdict, 2 for a parse error, -1 out of memory */
	uint64_t states;
	double seconds;
};

static struct outcome check_text(const char *text, uint64_t max_states, FILE *report)
{
	struct outcome outcome = { 0 };
	FILE *stream = fmemopen((void *)text, strlen(text), "r");
	if (stream == NULL)
		abort();
	struct history history;
	char error[512];
	if (history_parse(stream, "generated", &history, error, sizeof error) != 0) {
		fclose(stream);
		fprintf(stderr, "parse error: %s\n", error);
		outcome.verdict = 2;
		return outcome;
	}
	fclose(stream);
	struct linearizability_options options = {
		.max_states = max_states,
		.max_memory_bytes = LINEARIZABILITY_DEFAULT_MAX_MEMORY_BYTES,
		.report = report,
	};
	struct linearizability_summary summary;
	struct timespec start, end;
	clock_gettime(CLOCK_MONOTONIC, &start);
	outcome.verdict = linearizability_check_history(&history, &options, &summary) == 0 ? (int)summary.verdict : -1;
	clock_gettime(CLOCK_MONOTONIC, &end);
	outcome.seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
	outcome.states = summary.states_explored;
	history_free(&history);
	return outcome;
}

static bool writes_value(const struct simulated *operation)
{
	return operation->outcome == OUTCOME_OK &&
	       (operation->kind == OPERATION_WRITE || (operation->kind == OPERATION_CAS && operation->cas_swapped));
}

static uint64_t value_written(const struct simulated *operation)
{
	return operation->kind == OPERATION_WRITE ? operation->argument.value : operation->cas_new_value;
}

enum mutation { MUTATION_NEVER_WRITTEN, MUTATION_STALE_READ, MUTATION_NIL_AFTER_WRITE, MUTATION_COUNT };
static const char *const mutation_names[] = { "read of a value never written", "stale read", "read of nil after a write" };

/* Applies one mutation that no linearization can explain; returns false when the history offers no spot. */
static bool mutate(struct simulated *operations, unsigned count, enum mutation mutation, uint64_t *random)
{
	unsigned start = (unsigned)random_below(random, count);
	for (unsigned step = 0; step < count; step++) {
		struct simulated *read = &operations[(start + step) % count];
		if (read->kind != OPERATION_READ || read->outcome != OUTCOME_OK)
			continue;
		if (mutation == MUTATION_NEVER_WRITTEN) {
			read->read_result = (struct register_value){ .present = true, .value = UINT64_C(1) << 62 };
			return true;
		}
		/* A newer write completed before the read began, and an older one completed before the newer began:
		 * values are unique, so after the newer write the older value can never be read again, and nil
		 * never comes back at all. */
		for (unsigned newer = 0; newer < count; newer++) {
			const struct simulated *second = &operations[newer];
			if (second->key != read->key || !writes_value(second) || second->complete_ns >= read->invoke_ns)
				continue;
			if (mutation == MUTATION_NIL_AFTER_WRITE) {
				read->read_result = (struct register_value){ .present = false };
				return true;
			}
			for (unsigned older = 0; older < count; older++) {
				const struct simulated *first = &operations[older];
				if (first->key != read->key || !writes_value(first) || first->complete_ns >= second->invoke_ns)
					continue;
				read->read_result = (struct register_value){ .present = true, .value = value_written(first) };
				return true;
			}
		}
	}
	return false;
}

static const char *verdict_name(int verdict)
{
	switch (verdict) {
	case LINEARIZABLE: return "linearizable";
	case NOT_LINEARIZABLE: return "not linearizable";
	case SEARCH_BOUND_HIT: return "search bound hit";
	case 2: return "parse error";
	default: return "out of memory";
	}
}

static void random_workload(uint64_t seed, struct workload *workload)
{
	uint64_t random = seed ^ 0xabcdef;
	workload->processes = 2 + (unsigned)random_below(&random, 19);
	workload->operations = 20 + (unsigned)random_below(&random, 300);
	workload->keys = 1 + (unsigned)random_below(&random, 3);
	workload->unknown_percent = (unsigned)random_below(&random, 3) == 0 ? 0 : (unsigned)random_below(&random, 12);
	workload->fail_percent = (unsigned)random_below(&random, 6);
	workload->max_duration_ns = 10 + random_below(&random, 1000);
	workload->value_domain = random_below(&random, 3) == 0 ? 1 + random_below(&random, 5) : 0;
}

static void run_seed(uint64_t seed, bool dump)
{
	struct workload workload;
	random_workload(seed, &workload);
	struct simulated *operations = simulate(seed, &workload);
	char *text = render(operations, workload.operations);
	if (dump)
		printf("%s", text);
	struct outcome outcome = check_text(text, 2000000, dump ? stdout : NULL);
	EXPECT(outcome.verdict == LINEARIZABLE, "seed %" PRIu64 ": simulated history judged %s; reproduce: test-linearizability --seed %" PRIu64 " --dump",
	       seed, verdict_name(outcome.verdict), seed);
	free(text);

	uint64_t random = seed * 31 + 7;
	struct simulated *mutant = malloc(workload.operations * sizeof *mutant);
	for (int mutation = 0; mutation < MUTATION_COUNT; mutation++) {
		/* The stale-read mutants need unique values to be certainly wrong; nil-after-write does not. */
		if (workload.value_domain != 0 && mutation == MUTATION_STALE_READ)
			continue;
		memcpy(mutant, operations, workload.operations * sizeof *mutant);
		if (!mutate(mutant, workload.operations, (enum mutation)mutation, &random))
			continue;
		text = render(mutant, workload.operations);
		if (dump)
			printf("# mutant: %s\n%s", mutation_names[mutation], text);
		outcome = check_text(text, 2000000, dump ? stdout : NULL);
		EXPECT(outcome.verdict == NOT_LINEARIZABLE, "seed %" PRIu64 ": mutant (%s) judged %s; reproduce: test-linearizability --seed %" PRIu64 " --dump",
		       seed, mutation_names[mutation], verdict_name(outcome.verdict), seed);
		free(text);
	}
	free(mutant);
	free(operations);
}

/* The definition itself, by exhaustion: try every order of the operations that respects real time, with
 * each unknown operation placed anywhere after its call or left out. Only for a handful of operations. */
static bool brute_force_linearizable(const struct history *history, const uint32_t *searched, unsigned count,
				     uint32_t used, struct register_value value)
{
	bool all_ok_used = true;
	for (unsigned index = 0; index < count; index++)
		if (!(used & (1u << index)) && history->operations[searched[index]].outcome == OUTCOME_OK)
			all_ok_used = false;
	if (all_ok_used)
		return true;
	for (unsigned index = 0; index < count; index++) {
		if (used & (1u << index))
			continue;
		const struct operation *candidate = &history->operations[searched[index]];
		bool predecessors_placed = true;
		for (unsigned other = 0; other < count; other++) {
			const struct operation *before = &history->operations[searched[other]];
			if (!(used & (1u << other)) && before->outcome == OUTCOME_OK && before->complete_ns < candidate->invoke_ns)
				predecessors_placed = false;
		}
		if (!predecessors_placed)
			continue;
		struct register_value after = value;
		bool applies;
		switch (candidate->kind) {
		case OPERATION_READ:
			applies = value.present == candidate->read_result.present &&
				  (!value.present || value.value == candidate->read_result.value);
			break;
		case OPERATION_WRITE:
			applies = true;
			after = candidate->argument;
			break;
		default: {
			bool holds = value.present == candidate->argument.present &&
				     (!value.present || value.value == candidate->argument.value);
			if (candidate->outcome == OUTCOME_OK && !candidate->cas_swapped) {
				applies = !holds;
			} else {
				/* An unknown cas whose compare fails changes nothing: the same as leaving it out. */
				applies = holds;
				after = (struct register_value){ .present = true, .value = candidate->cas_new_value };
			}
			break;
		}
		}
		if (applies && brute_force_linearizable(history, searched, count, used | (1u << index), after))
			return true;
	}
	return false;
}

/* Small random histories with scrambled results, judged by the checker and by exhaustion: any disagreement
 * is a checker bug (a pruning rule that cut off the only linearization, or a wrong acceptance). */
static void test_against_brute_force(unsigned cases, unsigned max_operations, unsigned first_case)
{
	unsigned disagreements = 0, linearizable = 0;
	for (unsigned case_number = first_case; case_number < first_case + cases; case_number++) {
		uint64_t random = case_number * 7919u;
		struct workload workload = { .processes = 2 + (unsigned)random_below(&random, 4),
					     .operations = 2 + (unsigned)random_below(&random, max_operations - 1), .keys = 1,
					     .unknown_percent = (unsigned)random_below(&random, 40),
					     .fail_percent = (unsigned)random_below(&random, 10),
					     .max_duration_ns = 5 + random_below(&random, 30),
					     .value_domain = random_below(&random, 3) == 0 ? 0 : 1 + random_below(&random, 3) };
		struct simulated *operations = simulate(case_number, &workload);
		for (unsigned index = 0; index < workload.operations; index++) {
			struct simulated *operation = &operations[index];
			if (random_below(&random, 3) != 0)
				continue;
			if (operation->kind == OPERATION_READ) {
				uint64_t pick = random_below(&random, 4);
				operation->read_result = (struct register_value){ .present = pick != 0, .value = pick };
			} else if (operation->kind == OPERATION_CAS) {
				operation->cas_swapped = !operation->cas_swapped;
			}
		}
		char *text = render(operations, workload.operations);
		FILE *stream = fmemopen(text, strlen(text), "r");
		struct history history;
		char error[256];
		if (stream == NULL || history_parse(stream, "small", &history, error, sizeof error) != 0)
			abort();
		fclose(stream);
		uint32_t searched[16];
		unsigned count = 0;
		for (unsigned index = 0; index < history.operation_count; index++) {
			const struct operation *operation = &history.operations[index];
			if (operation->outcome == OUTCOME_OK ||
			    (operation->outcome == OUTCOME_UNKNOWN && operation->kind != OPERATION_READ))
				searched[count++] = index;
		}
		bool expected = brute_force_linearizable(&history, searched, count, 0, (struct register_value){ .present = false });
		struct linearizability_options options = { .max_states = 1000000, .max_memory_bytes = 1u << 30 };
		struct linearizability_summary summary;
		if (linearizability_check_history(&history, &options, &summary) != 0)
			abort();
		linearizable += expected;
		if ((summary.verdict == LINEARIZABLE) != expected) {
			disagreements++;
			EXPECT(false, "small case %u: checker says %s, exhaustive search says %s:\n%s", case_number,
			       verdict_name((int)summary.verdict), expected ? "linearizable" : "not linearizable", text);
		}
		history_free(&history);
		free(text);
		free(operations);
	}
	printf("%u small histories (%u linearizable) agree with exhaustive search: %s\n", cases, linearizable,
	       disagreements == 0 ? "yes" : "NO");
}

/* Exact expectations that the example files do not pin down: the search bound, and the summary counts. */
static void test_search_bound(void)
{
	struct workload workload = { .processes = 10, .operations = 400, .keys = 1, .unknown_percent = 5,
				     .fail_percent = 0, .max_duration_ns = 500 };
	struct simulated *operations = simulate(99, &workload);
	char *text = render(operations, workload.operations);
	struct outcome outcome = check_text(text, 10, NULL);
	EXPECT(outcome.verdict == SEARCH_BOUND_HIT, "--max-states 10 on 400 operations gave %s", verdict_name(outcome.verdict));
	outcome = check_text(text, 2000000, NULL);
	EXPECT(outcome.verdict == LINEARIZABLE, "the same history without a bound gave %s", verdict_name(outcome.verdict));
	free(text);
	free(operations);
}

/* Many unknown writes whose values nobody reads would make a naive search try every subset of them. */
static void test_many_unknown_writes(void)
{
	char *text = NULL;
	size_t length = 0;
	FILE *stream = open_memstream(&text, &length);
	uint64_t process = 100;
	fprintf(stream, "0 0 10 ok write x 1 - -\n");
	for (unsigned index = 0; index < 60; index++)
		fprintf(stream, "%" PRIu64 " %u %u unknown write x %u - -\n", process++, 20 + index, 30 + index, 1000 + index);
	/* A stale read at the end forces the search to exhaust everything before it can say no. */
	for (unsigned index = 0; index < 200; index++)
		fprintf(stream, "%u %u %u ok write x %u - -\n", 1 + index % 5, 1000 + index * 10, 1005 + index * 10, 5000 + index);
	fprintf(stream, "9 5000 5010 ok read x - - 1\n");
	fclose(stream);
	struct outcome outcome = check_text(text, 2000000, NULL);
	EXPECT(outcome.verdict == NOT_LINEARIZABLE, "60 unknown writes then a stale read gave %s", verdict_name(outcome.verdict));
	printf("60 unknown writes, 201 ok operations, stale read: %s, %" PRIu64 " configurations, %.3f s\n",
	       verdict_name(outcome.verdict), outcome.states, outcome.seconds);
	free(text);
}

static void benchmark(const char *label, uint64_t seed, struct workload workload, bool mutate_it)
{
	struct simulated *operations = simulate(seed, &workload);
	uint64_t random = seed;
	if (mutate_it)
		mutate(operations, workload.operations, MUTATION_STALE_READ, &random);
	char *text = render(operations, workload.operations);
	struct outcome outcome = check_text(text, LINEARIZABILITY_DEFAULT_MAX_STATES, NULL);
	int expected = mutate_it ? NOT_LINEARIZABLE : LINEARIZABLE;
	EXPECT(outcome.verdict == expected, "%s: %s", label, verdict_name(outcome.verdict));
	printf("%-58s %-17s %9" PRIu64 " configurations %7.3f s\n", label, verdict_name(outcome.verdict), outcome.states, outcome.seconds);
	free(text);
	free(operations);
}

int main(int argc, char **argv)
{
	if ((argc == 9 || argc == 10) && strcmp(argv[1], "--generate") == 0) {
		struct workload workload = {
			.processes = (unsigned)strtoul(argv[3], NULL, 10), .operations = (unsigned)strtoul(argv[4], NULL, 10),
			.keys = (unsigned)strtoul(argv[5], NULL, 10), .unknown_percent = (unsigned)strtoul(argv[6], NULL, 10),
			.fail_percent = (unsigned)strtoul(argv[7], NULL, 10), .max_duration_ns = strtoull(argv[8], NULL, 10),
			.value_domain = argc == 10 ? strtoull(argv[9], NULL, 10) : 0 };
		struct simulated *operations = simulate(strtoull(argv[2], NULL, 10), &workload);
		char *text = render(operations, workload.operations);
		printf("%s", text);
		free(text);
		free(operations);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "--brute-force") == 0) {
		test_against_brute_force((unsigned)strtoul(argv[2], NULL, 10), (unsigned)strtoul(argv[3], NULL, 10),
					 (unsigned)strtoul(argv[4], NULL, 10));
		return failures == 0 ? 0 : 1;
	}
	if (argc >= 3 && strcmp(argv[1], "--seed") == 0) {
		run_seed(strtoull(argv[2], NULL, 10), argc >= 4 && strcmp(argv[3], "--dump") == 0);
		return failures == 0 ? 0 : 1;
	}
	unsigned seeds = argc >= 3 && strcmp(argv[1], "--seeds") == 0 ? (unsigned)strtoul(argv[2], NULL, 10) : 300;
	for (uint64_t seed = 1; seed <= seeds; seed++)
		run_seed(seed, false);
	printf("%u random histories and their mutants checked\n", seeds);
	test_against_brute_force(20000, 8, 1);
	test_search_bound();
	test_many_unknown_writes();
	benchmark("5000 operations, 10 processes, 1 key, 2% unknown", 7,
		  (struct workload){ 10, 5000, 1, 2, 1, 200, 0 }, false);
	benchmark("5000 operations, 10 processes, 1 key, 2% unknown, stale read", 7,
		  (struct workload){ 10, 5000, 1, 2, 1, 200, 0 }, true);
	if (argc >= 2 && strcmp(argv[argc - 1], "--benchmark") == 0) {
		benchmark("3000 operations, 20 processes, 1 key, 5% unknown", 8,
			  (struct workload){ 20, 3000, 1, 5, 2, 300, 0 }, false);
		benchmark("3000 operations, 20 processes, 1 key, 5% unknown, stale read", 8,
			  (struct workload){ 20, 3000, 1, 5, 2, 300, 0 }, true);
		benchmark("20000 operations, 20 processes, 5 keys, 2% unknown", 9,
			  (struct workload){ 20, 20000, 5, 2, 1, 300, 0 }, false);
		benchmark("3000 operations, 20 processes, 1 key, 5% unknown, values 1..5", 10,
			  (struct workload){ 20, 3000, 1, 5, 2, 300, 5 }, false);
	}
	if (failures != 0) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("all passed\n");
	return 0;
}
