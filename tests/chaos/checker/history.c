/* history: parser for the chaos history format (README.md "History format").
 * Every rejection names the line and the column at fault, so a harness bug is found from the message. */
#include "history.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_COLUMNS 9

struct key_table {
	uint32_t *slots; /* key index + 1; 0 is an empty slot */
	size_t slot_count;
};

struct parser {
	const char *name;
	uint32_t line;
	char *error;
	size_t error_size;
	struct history *history;
	size_t operation_capacity;
	size_t key_capacity;
	struct key_table key_table;
};

static int parse_error(struct parser *parser, const char *format, ...)
{
	int used = snprintf(parser->error, parser->error_size, "%s:%" PRIu32 ": ", parser->name, parser->line);
	if (used >= 0 && (size_t)used < parser->error_size) {
		va_list arguments;
		va_start(arguments, format);
		vsnprintf(parser->error + used, parser->error_size - (size_t)used, format, arguments);
		va_end(arguments);
	}
	return -1;
}

static int out_of_memory(struct parser *parser)
{
	return parse_error(parser, "out of memory");
}

/* Strict: digits only, no sign, no spaces, no overflow; strtoull alone would accept " -1". */
static bool parse_unsigned(const char *text, uint64_t *value)
{
	if (*text == '\0')
		return false;
	uint64_t result = 0;
	for (const char *cursor = text; *cursor != '\0'; cursor++) {
		if (*cursor < '0' || *cursor > '9')
			return false;
		uint64_t digit = (uint64_t)(*cursor - '0');
		if (result > (UINT64_MAX - digit) / 10)
			return false;
		result = result * 10 + digit;
	}
	*value = result;
	return true;
}

static bool is_dash(const char *text)
{
	return strcmp(text, "-") == 0;
}

static int parse_value_or_nil(struct parser *parser, const char *text, const char *column,
			      struct register_value *value)
{
	if (strcmp(text, "nil") == 0) {
		value->present = false;
		value->value = 0;
		return 0;
	}
	if (!parse_unsigned(text, &value->value))
		return parse_error(parser, "%s must be a non-negative 64-bit integer or nil, not '%s'", column, text);
	value->present = true;
	return 0;
}

static int parse_value(struct parser *parser, const char *text, const char *column, uint64_t *value)
{
	if (!parse_unsigned(text, value))
		return parse_error(parser, "%s must be a non-negative 64-bit integer, not '%s'", column, text);
	return 0;
}

static int expect_dash(struct parser *parser, const char *text, const char *column, const char *why)
{
	if (!is_dash(text))
		return parse_error(parser, "%s must be '-' %s, not '%s'", column, why, text);
	return 0;
}

static uint64_t hash_string(const char *text)
{
	uint64_t hash = 14695981039346656037ull; /* FNV-1a */
	for (; *text != '\0'; text++) {
		hash ^= (unsigned char)*text;
		hash *= 1099511628211ull;
	}
	return hash;
}

static int key_table_grow(struct parser *parser)
{
	size_t new_count = parser->key_table.slot_count ? parser->key_table.slot_count * 2 : 64;
	uint32_t *slots = calloc(new_count, sizeof *slots);
	if (slots == NULL)
		return out_of_memory(parser);
	for (size_t index = 0; index < parser->history->key_count; index++) {
		size_t slot = hash_string(parser->history->keys[index]) & (new_count - 1);
		while (slots[slot] != 0)
			slot = (slot + 1) & (new_count - 1);
		slots[slot] = (uint32_t)index + 1;
	}
	free(parser->key_table.slots);
	parser->key_table.slots = slots;
	parser->key_table.slot_count = new_count;
	return 0;
}

static int intern_key(struct parser *parser, const char *key, uint32_t *key_index)
{
	struct history *history = parser->history;
	if ((history->key_count + 1) * 2 > parser->key_table.slot_count && key_table_grow(parser) != 0)
		return -1;
	size_t mask = parser->key_table.slot_count - 1;
	size_t slot = hash_string(key) & mask;
	while (parser->key_table.slots[slot] != 0) {
		uint32_t existing = parser->key_table.slots[slot] - 1;
		if (strcmp(history->keys[existing], key) == 0) {
			*key_index = existing;
			return 0;
		}
		slot = (slot + 1) & mask;
	}
	if (history->key_count == parser->key_capacity) {
		size_t new_capacity = parser->key_capacity ? parser->key_capacity * 2 : 16;
		char **keys = realloc(history->keys, new_capacity * sizeof *keys);
		if (keys == NULL)
			return out_of_memory(parser);
		history->keys = keys;
		parser->key_capacity = new_capacity;
	}
	char *copy = strdup(key);
	if (copy == NULL)
		return out_of_memory(parser);
	history->keys[history->key_count] = copy;
	*key_index = (uint32_t)history->key_count;
	parser->key_table.slots[slot] = (uint32_t)history->key_count + 1;
	history->key_count++;
	return 0;
}

static int parse_operation(struct parser *parser, char **columns, struct operation *operation)
{
	memset(operation, 0, sizeof *operation);
	operation->line = parser->line;
	if (!parse_unsigned(columns[0], &operation->process))
		return parse_error(parser, "PROCESS must be a non-negative integer, not '%s'", columns[0]);
	if (parse_value(parser, columns[1], "INVOKE_NS", &operation->invoke_ns) != 0 ||
	    parse_value(parser, columns[2], "COMPLETE_NS", &operation->complete_ns) != 0)
		return -1;
	if (operation->complete_ns < operation->invoke_ns)
		return parse_error(parser, "COMPLETE_NS %" PRIu64 " is before INVOKE_NS %" PRIu64,
				   operation->complete_ns, operation->invoke_ns);

	const char *outcome = columns[3];
	if (strcmp(outcome, "ok") == 0)
		operation->outcome = OUTCOME_OK;
	else if (strcmp(outcome, "fail") == 0)
		operation->outcome = OUTCOME_FAIL;
	else if (strcmp(outcome, "unknown") == 0)
		operation->outcome = OUTCOME_UNKNOWN;
	else
		return parse_error(parser, "OUTCOME must be ok, fail or unknown, not '%s'", outcome);

	const char *kind = columns[4];
	const char *argument1 = columns[6], *argument2 = columns[7], *result = columns[8];
	bool answered = operation->outcome == OUTCOME_OK;
	const char *no_result_why = "when OUTCOME is not ok";
	if (strcmp(kind, "write") == 0) {
		operation->kind = OPERATION_WRITE;
		operation->argument.present = true;
		if (parse_value(parser, argument1, "ARG1 (the value written)", &operation->argument.value) != 0 ||
		    expect_dash(parser, argument2, "ARG2", "for a write") != 0 ||
		    expect_dash(parser, result, "RESULT", "for a write") != 0)
			return -1;
	} else if (strcmp(kind, "read") == 0) {
		operation->kind = OPERATION_READ;
		if (expect_dash(parser, argument1, "ARG1", "for a read") != 0 ||
		    expect_dash(parser, argument2, "ARG2", "for a read") != 0)
			return -1;
		if (answered) {
			if (parse_value_or_nil(parser, result, "RESULT (the value read)", &operation->read_result) != 0)
				return -1;
		} else if (expect_dash(parser, result, "RESULT", no_result_why) != 0) {
			return -1;
		}
	} else if (strcmp(kind, "cas") == 0) {
		operation->kind = OPERATION_CAS;
		if (parse_value_or_nil(parser, argument1, "ARG1 (the expected value)", &operation->argument) != 0 ||
		    parse_value(parser, argument2, "ARG2 (the new value)", &operation->cas_new_value) != 0)
			return -1;
		if (answered) {
			if (strcmp(result, "true") == 0)
				operation->cas_swapped = true;
			else if (strcmp(result, "false") == 0)
				operation->cas_swapped = false;
			else
				return parse_error(parser, "RESULT of an ok cas must be true or false, not '%s'", result);
		} else if (expect_dash(parser, result, "RESULT", no_result_why) != 0) {
			return -1;
		}
	} else {
		return parse_error(parser, "OP must be read, write or cas, not '%s'", kind);
	}
	return intern_key(parser, columns[5], &operation->key_index);
}

static int append_operation(struct parser *parser, const struct operation *operation)
{
	struct history *history = parser->history;
	if (history->operation_count == parser->operation_capacity) {
		size_t new_capacity = parser->operation_capacity ? parser->operation_capacity * 2 : 1024;
		struct operation *operations = realloc(history->operations, new_capacity * sizeof *operations);
		if (operations == NULL)
			return out_of_memory(parser);
		history->operations = operations;
		parser->operation_capacity = new_capacity;
	}
	history->operations[history->operation_count++] = *operation;
	return 0;
}

static int compare_by_process_then_invoke(const void *left, const void *right)
{
	const struct operation *a = *(const struct operation *const *)left;
	const struct operation *b = *(const struct operation *const *)right;
	if (a->process != b->process)
		return a->process < b->process ? -1 : 1;
	if (a->invoke_ns != b->invoke_ns)
		return a->invoke_ns < b->invoke_ns ? -1 : 1;
	return a->line < b->line ? -1 : (a->line > b->line);
}

/* The format promises one operation in flight per process, and an unknown operation stays in flight
 * forever. A history that breaks this was recorded wrongly, and its verdict would mean nothing. */
static int check_processes(struct parser *parser)
{
	struct history *history = parser->history;
	if (history->operation_count < 2)
		return 0;
	const struct operation **order = malloc(history->operation_count * sizeof *order);
	if (order == NULL)
		return out_of_memory(parser);
	for (size_t index = 0; index < history->operation_count; index++)
		order[index] = &history->operations[index];
	qsort(order, history->operation_count, sizeof *order, compare_by_process_then_invoke);
	int status = 0;
	for (size_t index = 1; index < history->operation_count && status == 0; index++) {
		const struct operation *previous = order[index - 1], *current = order[index];
		if (previous->process != current->process)
			continue;
		parser->line = current->line;
		if (previous->outcome == OUTCOME_UNKNOWN)
			status = parse_error(parser, "process %" PRIu64 " starts an operation after its unknown operation on line %" PRIu32
					     " (a client that got unknown must continue as a new process)",
					     current->process, previous->line);
		else if (current->invoke_ns < previous->complete_ns)
			status = parse_error(parser, "process %" PRIu64 " invokes at %" PRIu64 " while its operation on line %" PRIu32
					     " is in flight until %" PRIu64, current->process, current->invoke_ns,
					     previous->line, previous->complete_ns);
	}
	free(order);
	return status;
}

int history_parse(FILE *input, const char *name, struct history *history, char *err, size_t errlen)
{
	memset(history, 0, sizeof *history);
	struct parser parser = { .name = name, .error = err, .error_size = errlen, .history = history };
	char *line = NULL;
	size_t line_capacity = 0;
	int status = 0;
	while (status == 0) {
		errno = 0;
		ssize_t length = getline(&line, &line_capacity, input);
		if (length < 0) {
			if (errno != 0 && !feof(input))
				status = parse_error(&parser, "read error: %s", strerror(errno));
			break;
		}
		parser.line++;
		if (strlen(line) != (size_t)length) {
			status = parse_error(&parser, "line contains a NUL byte");
			break;
		}
		char *columns[HISTORY_COLUMNS];
		size_t column_count = 0;
		char *save = NULL;
		for (char *token = strtok_r(line, " \t\r\n", &save); token != NULL; token = strtok_r(NULL, " \t\r\n", &save)) {
			if (column_count == 0 && token[0] == '#')
				break;
			if (column_count == HISTORY_COLUMNS) {
				column_count++;
				break;
			}
			columns[column_count++] = token;
		}
		if (column_count == 0)
			continue;
		if (column_count != HISTORY_COLUMNS) {
			status = parse_error(&parser, "expected %d columns (PROCESS INVOKE_NS COMPLETE_NS OUTCOME OP KEY ARG1 ARG2 RESULT), found %s%zu",
					     HISTORY_COLUMNS, column_count > HISTORY_COLUMNS ? "more than " : "",
					     column_count > HISTORY_COLUMNS ? (size_t)HISTORY_COLUMNS : column_count);
			break;
		}
		struct operation operation;
		status = parse_operation(&parser, columns, &operation);
		if (status == 0)
			status = append_operation(&parser, &operation);
	}
	free(line);
	if (status == 0)
		status = check_processes(&parser);
	free(parser.key_table.slots);
	if (status != 0)
		history_free(history);
	return status;
}

void history_free(struct history *history)
{
	for (size_t index = 0; index < history->key_count; index++)
		free(history->keys[index]);
	free(history->keys);
	free(history->operations);
	memset(history, 0, sizeof *history);
}

void register_value_format(struct register_value value, char *buffer, size_t buffer_size)
{
	if (value.present)
		snprintf(buffer, buffer_size, "%" PRIu64, value.value);
	else
		snprintf(buffer, buffer_size, "nil");
}

static const char *outcome_name(enum operation_outcome outcome)
{
	switch (outcome) {
	case OUTCOME_OK: return "ok";
	case OUTCOME_FAIL: return "fail";
	case OUTCOME_UNKNOWN: return "unknown";
	}
	return "?";
}

void history_describe_operation(const struct history *history, const struct operation *operation,
				char *buffer, size_t buffer_size)
{
	char what[160];
	char argument[32], result[32];
	const char *key = history->keys[operation->key_index];
	register_value_format(operation->argument, argument, sizeof argument);
	switch (operation->kind) {
	case OPERATION_WRITE:
		snprintf(what, sizeof what, "write %s %s", key, argument);
		break;
	case OPERATION_READ:
		register_value_format(operation->read_result, result, sizeof result);
		snprintf(what, sizeof what, "read %s -> %s", key, operation->outcome == OUTCOME_OK ? result : "?");
		break;
	case OPERATION_CAS:
		snprintf(what, sizeof what, "cas %s %s -> %" PRIu64 " %s", key, argument, operation->cas_new_value,
			 operation->outcome != OUTCOME_OK ? "?" : operation->cas_swapped ? "true" : "false");
		break;
	}
	snprintf(buffer, buffer_size, "line %" PRIu32 ": process %" PRIu64 " %s, %s [invoked %" PRIu64 ", %s %" PRIu64 "]",
		 operation->line, operation->process, what, outcome_name(operation->outcome), operation->invoke_ns,
		 operation->outcome == OUTCOME_UNKNOWN ? "gave up" : "completed", operation->complete_ns);
}
