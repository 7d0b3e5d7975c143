/* history: the recorded operations of a chaos run, parsed from the text format in README.md.
 * The checker (linearizability.h) reads a struct history; the parser is its only producer, so every
 * rule of the format (columns, outcomes, one operation in flight per process) is enforced here once. */
#ifndef QUORUMD_CHAOS_HISTORY_H
#define QUORUMD_CHAOS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum operation_kind { OPERATION_READ, OPERATION_WRITE, OPERATION_CAS };

/* ok: the server answered and the operation took effect once between invoke and complete.
 * fail: it certainly never took effect.  unknown: it may take effect at any time after invoke, or never. */
enum operation_outcome { OUTCOME_OK, OUTCOME_FAIL, OUTCOME_UNKNOWN };

/* A register holds nothing (nil: the key is absent) or a 64-bit value. */
struct register_value {
	bool present;
	uint64_t value;
};

struct operation {
	uint64_t process;
	uint64_t invoke_ns;
	uint64_t complete_ns;
	enum operation_outcome outcome;
	enum operation_kind kind;
	uint32_t key_index;              /* into history.keys */
	uint32_t line;                   /* 1-based line in the history file, for reports */
	struct register_value argument;  /* write: the value written (always present); cas: the expected value */
	uint64_t cas_new_value;          /* cas only */
	struct register_value read_result; /* ok read only */
	bool cas_swapped;                /* ok cas only: true when the compare held and the swap happened */
};

struct history {
	struct operation *operations;
	size_t operation_count;
	char **keys;
	size_t key_count;
};

/* Parses a whole history. On malformed input returns -1 and writes "NAME:LINE: what is wrong" into
 * error; the history is then empty and needs no history_free (calling it is harmless). */
int history_parse(FILE *input, const char *name, struct history *history, char *err, size_t errlen);

void history_free(struct history *history);

/* "line 12: process 3 read k -> 5 ok [invoke 100, complete 250]" style description, for reports. */
void history_describe_operation(const struct history *history, const struct operation *operation,
				char *buffer, size_t buffer_size);

void register_value_format(struct register_value value, char *buffer, size_t buffer_size);

#endif
