/* linearizability: decides whether a parsed history (history.h) of single-key register operations is
 * linearizable. Keys are independent, so each is searched alone (P-compositionality, Herlihy & Wing);
 * the per-key search is Wing & Gong's with Lowe's cache of explored configurations (README.md). */
#ifndef QUORUMD_CHAOS_LINEARIZABILITY_H
#define QUORUMD_CHAOS_LINEARIZABILITY_H

#include "history.h"

/* The numeric values are the program's exit codes (2 is bad input, decided before any search). */
enum linearizability_verdict {
	LINEARIZABLE = 0,
	NOT_LINEARIZABLE = 1,
	SEARCH_BOUND_HIT = 3,
};

struct linearizability_options {
	uint64_t max_states;       /* explored configurations cached per key before giving up */
	uint64_t max_memory_bytes; /* memory for that cache per key before giving up */
	bool verbose;              /* per-key statistics, whole prefixes in explanations */
	FILE *report;              /* explanations and statistics go here; NULL for silence */
};

#define LINEARIZABILITY_DEFAULT_MAX_STATES 50000000ull
#define LINEARIZABILITY_DEFAULT_MAX_MEMORY_BYTES (2048ull << 20)

struct linearizability_summary {
	enum linearizability_verdict verdict; /* the worst key: NOT_LINEARIZABLE beats SEARCH_BOUND_HIT */
	size_t operation_count;
	size_t ok_count;
	size_t failed_count;
	size_t unknown_count;
	size_t key_count;
	size_t bad_key_count;     /* keys proven not linearizable */
	size_t bounded_key_count; /* keys whose search hit the bound */
	uint32_t first_bad_key;   /* valid when bad_key_count > 0 */
	uint32_t first_bounded_key; /* valid when bounded_key_count > 0 */
	uint64_t states_explored; /* all keys together */
};

/* Checks every key and writes the explanation of each bad or bounded key to options->report.
 * Returns 0, or -1 when memory ran out (summary is then meaningless). */
int linearizability_check_history(const struct history *history, const struct linearizability_options *options,
				  struct linearizability_summary *summary);

#endif
