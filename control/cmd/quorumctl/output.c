/* control/cmd/quorumctl/output.c: etcdctl 3.4's printers, rebuilt from their observable behaviour: tables as
 * olekukonko/tablewriter draws them with etcdctl's settings, sizes as go-humanize prints them, and JSON as
 * Go's encoding/json writes etcd's protobuf structs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "control_socket.h"
#include "quorumctl.h"

void quorumctl_humanize_bytes(uint64_t bytes, char *buf, size_t length)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
	if (bytes < 10) {
		snprintf(buf, length, "%llu B", (unsigned long long)bytes);
		return;
	}
	/* The exponent is floor(log1000(bytes)); counted exactly here (humanize gets 1 for 1000 and 2 for 1e6). */
	int e = 0;
	double scale = 1;
	for (uint64_t rest = bytes; rest >= 1000 && e < 6; rest /= 1000) {
		e++;
		scale *= 1000;
	}
	double value = floor((double)bytes / scale * 10 + 0.5) / 10;
	if (value < 10)
		snprintf(buf, length, "%.1f %s", value, units[e]);
	else
		snprintf(buf, length, "%.0f %s", value, units[e]);
}

/* Display width: one column per code point (tablewriter uses runewidth; IDs, URLs and numbers are ASCII). */
static size_t display_width(const char *text)
{
	size_t width = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		if ((*p & 0xc0) != 0x80)
			width++;
	return width;
}

static void repeat(FILE *out, char c, size_t count)
{
	for (size_t k = 0; k < count; k++)
		fputc(c, out);
}

static void border(FILE *out, const size_t *widths, size_t columns)
{
	fputc('+', out);
	for (size_t c = 0; c < columns; c++) {
		repeat(out, '-', widths[c] + 2);
		fputc('+', out);
	}
	fputc('\n', out);
}

/* tablewriter's WrapString: split at spaces, then break into lines of at most `limit` columns (or the
 * longest word) with the least raggedness — the sum of squared slack, a line that is too long costing a
 * penalty more — as kr/text's WrapWords computes it. Returns the number of lines; starts[k] and counts[k]
 * say which words line k holds. */
enum { WRAP_PENALTY = 100000 };

struct wrapped {
	char **lines;
	size_t count;
};

static struct wrapped wrap_cell(const char *text, size_t limit)
{
	/* Words: split at every space (newlines count as spaces), empty words included as Go's Split does. */
	size_t word_count = 1;
	for (const char *p = text; *p; p++)
		word_count += *p == ' ' || *p == '\n';
	char **words = calloc(word_count, sizeof(*words));
	size_t *width = calloc(word_count, sizeof(*width));
	const char *start = text;
	for (size_t w = 0; w < word_count; w++) {
		size_t length = strcspn(start, " \n");
		words[w] = strndup(start, length);
		width[w] = display_width(words[w]);
		if (width[w] > limit)
			limit = width[w];
		start += length + (start[length] ? 1 : 0);
	}
	size_t n = word_count;
	long long *cost = calloc(n, sizeof(*cost));
	size_t *next_break = calloc(n, sizeof(*next_break));
	for (size_t i = n; i-- > 0;) {
		/* length of words i..n-1 joined by single spaces */
		size_t total = 0;
		for (size_t j = i; j < n; j++)
			total += width[j] + (j > i);
		if (total <= limit) {
			cost[i] = 0;
			next_break[i] = n;
			continue;
		}
		cost[i] = 0x7fffffff; /* math.MaxInt32 */
		size_t line = 0;      /* length of words i..j-1 */
		for (size_t j = i + 1; j < n; j++) {
			line += width[j - 1] + (j - 1 > i);
			long long slack = (long long)limit - (long long)line;
			long long c = slack * slack + cost[j];
			if (line > limit)
				c += WRAP_PENALTY;
			if (c < cost[i]) {
				cost[i] = c;
				next_break[i] = j;
			}
		}
	}
	struct wrapped result = {calloc(n, sizeof(char *)), 0};
	for (size_t i = 0; i < n;) {
		size_t j = next_break[i] > i ? next_break[i] : i + 1;
		size_t length = 0;
		for (size_t k = i; k < j; k++)
			length += strlen(words[k]) + 1;
		char *line = calloc(1, length + 1);
		for (size_t k = i; k < j; k++) {
			if (k > i)
				strcat(line, " ");
			strcat(line, words[k]);
		}
		result.lines[result.count++] = line;
		i = j;
	}
	for (size_t w = 0; w < word_count; w++)
		free(words[w]);
	free(words);
	free(width);
	free(cost);
	free(next_break);
	return result;
}

enum { MAX_CELL_WIDTH = 30 }; /* tablewriter's MAX_ROW_WIDTH: longer cells wrap at spaces */

void quorumctl_print_table(FILE *out, const char *const *header, size_t columns, char ***rows, size_t row_count)
{
	/* Column widths as tablewriter (the version etcd 3.4 vendors) grows them: headers first, each cell
	 * counting at most 30 columns, then wrapped at the column's width so far (a word longer than that
	 * widens the column). */
	size_t *widths = calloc(columns, sizeof(*widths));
	struct wrapped *cells = calloc(row_count * columns + 1, sizeof(*cells));
	size_t *heights = calloc(row_count + 1, sizeof(*heights));
	for (size_t c = 0; c < columns; c++) {
		size_t w = display_width(header[c]);
		widths[c] = w < MAX_CELL_WIDTH ? w : MAX_CELL_WIDTH;
	}
	for (size_t r = 0; r < row_count; r++) {
		for (size_t c = 0; c < columns; c++) {
			size_t w = display_width(rows[r][c]);
			if (w > MAX_CELL_WIDTH)
				w = MAX_CELL_WIDTH;
			if (w > widths[c])
				widths[c] = w;
			struct wrapped *cell = &cells[r * columns + c];
			*cell = wrap_cell(rows[r][c], widths[c]);
			for (size_t k = 0; k < cell->count; k++) {
				size_t line_width = display_width(cell->lines[k]);
				if (line_width > widths[c])
					widths[c] = line_width;
			}
			if (cell->count > heights[r])
				heights[r] = cell->count;
		}
	}
	border(out, widths, columns);
	/* Header: centered, the odd space of padding on the right. */
	fputc('|', out);
	for (size_t c = 0; c < columns; c++) {
		size_t hw = display_width(header[c]);
		size_t gap = widths[c] > hw ? widths[c] - hw : 0;
		repeat(out, ' ', 1 + gap / 2);
		fputs(header[c], out);
		repeat(out, ' ', gap - gap / 2 + 1);
		fputc('|', out);
	}
	fputc('\n', out);
	border(out, widths, columns);
	/* Rows: right-aligned (etcdctl sets ALIGN_RIGHT); a wrapped cell continues on the next lines. */
	for (size_t r = 0; r < row_count; r++) {
		for (size_t line = 0; line < heights[r]; line++) {
			fputc('|', out);
			for (size_t c = 0; c < columns; c++) {
				const struct wrapped *cell = &cells[r * columns + c];
				const char *text = line < cell->count ? cell->lines[line] : "";
				size_t w = display_width(text);
				repeat(out, ' ', 1 + (widths[c] > w ? widths[c] - w : 0));
				fputs(text, out);
				fputs(" |", out);
			}
			fputc('\n', out);
		}
	}
	border(out, widths, columns);
	for (size_t k = 0; k < row_count * columns; k++) {
		for (size_t l = 0; l < cells[k].count; l++)
			free(cells[k].lines[l]);
		free(cells[k].lines);
	}
	free(cells);
	free(heights);
	free(widths);
}

uint64_t quorumctl_hex_field(const json_t *object, const char *name)
{
	uint64_t id = 0;
	const char *text = json_string_value(json_object_get(object, name));
	if (text && control_parse_hex_id(text, &id) != 0)
		id = 0;
	return id;
}

/* ---- Go encoding/json ---- */

static void append(struct gojson *g, const char *text, size_t length)
{
	if (g->length + length + 1 > g->capacity) {
		size_t capacity = g->capacity ? g->capacity : 256;
		while (capacity < g->length + length + 1)
			capacity *= 2;
		g->text = realloc(g->text, capacity);
		if (!g->text)
			quorumctl_fail(EXIT_ERROR, "out of memory");
		g->capacity = capacity;
	}
	memcpy(g->text + g->length, text, length);
	g->length += length;
	g->text[g->length] = '\0';
}

void gojson_raw(struct gojson *g, const char *text)
{
	append(g, text, strlen(text));
}

/* As encoding/json escapes strings: quotes, backslash, control characters, and <, >, & (HTML-safe), and
 * U+2028/U+2029. */
void gojson_string(struct gojson *g, const char *text, size_t length)
{
	static const char hex[] = "0123456789abcdef";
	append(g, "\"", 1);
	for (size_t k = 0; k < length; k++) {
		unsigned char c = (unsigned char)text[k];
		char escape[8];
		if (c == '"' || c == '\\') {
			escape[0] = '\\';
			escape[1] = (char)c;
			append(g, escape, 2);
		} else if (c == '\n') {
			append(g, "\\n", 2);
		} else if (c == '\r') {
			append(g, "\\r", 2);
		} else if (c == '\t') {
			append(g, "\\t", 2);
		} else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
			snprintf(escape, sizeof(escape), "\\u00%c%c", hex[c >> 4], hex[c & 15]);
			append(g, escape, 6);
		} else if (c == 0xe2 && k + 2 < length && (unsigned char)text[k + 1] == 0x80 &&
		           ((unsigned char)text[k + 2] & 0xfe) == 0xa8) {
			append(g, (unsigned char)text[k + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
			k += 2;
		} else {
			append(g, (const char *)&text[k], 1);
		}
	}
	append(g, "\"", 1);
}

static void field_u64(struct gojson *g, bool *first, const char *name, uint64_t value)
{
	if (value == 0)
		return; /* omitempty */
	char buf[64];
	snprintf(buf, sizeof(buf), "%s\"%s\":%llu", *first ? "" : ",", name, (unsigned long long)value);
	*first = false;
	gojson_raw(g, buf);
}

static void field_i64(struct gojson *g, bool *first, const char *name, const json_t *value)
{
	json_int_t v = json_integer_value(value);
	if (v == 0)
		return;
	char buf[64];
	snprintf(buf, sizeof(buf), "%s\"%s\":%lld", *first ? "" : ",", name, (long long)v);
	*first = false;
	gojson_raw(g, buf);
}

static void field_strings(struct gojson *g, bool *first, const char *name, const json_t *array)
{
	if (json_array_size(array) == 0)
		return;
	gojson_raw(g, *first ? "\"" : ",\"");
	gojson_raw(g, name);
	gojson_raw(g, "\":[");
	for (size_t k = 0; k < json_array_size(array); k++) {
		const json_t *item = json_array_get(array, k);
		if (k)
			gojson_raw(g, ",");
		gojson_string(g, json_string_value(item) ? json_string_value(item) : "", json_string_length(item));
	}
	gojson_raw(g, "]");
	*first = false;
}

/* etcdserverpb.ResponseHeader: cluster_id, member_id, revision, raft_term. */
void gojson_header(struct gojson *g, const json_t *header)
{
	bool first = true;
	gojson_raw(g, "{");
	field_u64(g, &first, "cluster_id", quorumctl_hex_field(header, "cluster_id"));
	field_u64(g, &first, "member_id", quorumctl_hex_field(header, "member_id"));
	field_i64(g, &first, "revision", json_object_get(header, "revision"));
	field_i64(g, &first, "raft_term", json_object_get(header, "raft_term"));
	gojson_raw(g, "}");
}

/* etcdserverpb.Member: ID, name, peerURLs, clientURLs, isLearner. */
void gojson_member(struct gojson *g, const json_t *member)
{
	bool first = true;
	gojson_raw(g, "{");
	field_u64(g, &first, "ID", quorumctl_hex_field(member, "id"));
	const json_t *name = json_object_get(member, "name");
	if (json_string_length(name) > 0) {
		gojson_raw(g, first ? "\"name\":" : ",\"name\":");
		gojson_string(g, json_string_value(name), json_string_length(name));
		first = false;
	}
	field_strings(g, &first, "peerURLs", json_object_get(member, "peer_urls"));
	field_strings(g, &first, "clientURLs", json_object_get(member, "client_urls"));
	if (json_is_true(json_object_get(member, "is_learner"))) {
		gojson_raw(g, first ? "\"isLearner\":true" : ",\"isLearner\":true");
		first = false;
	}
	gojson_raw(g, "}");
}

void gojson_members(struct gojson *g, const json_t *members, bool comma)
{
	if (json_array_size(members) == 0)
		return;
	gojson_raw(g, comma ? ",\"members\":[" : "\"members\":[");
	for (size_t k = 0; k < json_array_size(members); k++) {
		if (k)
			gojson_raw(g, ",");
		gojson_member(g, json_array_get(members, k));
	}
	gojson_raw(g, "]");
}

void gojson_print(struct gojson *g)
{
	fputs(g->text ? g->text : "", stdout);
	fputc('\n', stdout);
	free(g->text);
	memset(g, 0, sizeof(*g));
}
