/* control/cmd/quorumctl/quorumctl.h: quorumctl's parts — the control-socket client (client.c) and etcdctl's
 * printers (output.c: simple lines, tablewriter tables, Go encoding/json output). */
#ifndef QUORUMD_CONTROL_QUORUMCTL_H
#define QUORUMD_CONTROL_QUORUMCTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* etcdctl's exit codes (etcdctl/ctlv3/command/error.go). */
enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_BAD_CONNECTION = 2,
	EXIT_BAD_FEATURE = 4,
	EXIT_BAD_ARGS = 128,
};

/* Prints `Error: TEXT` on stderr as etcdctl does and exits with `code`. */
void quorumctl_fail(int code, const char *format, ...) __attribute__((format(printf, 2, 3), noreturn));

/* ---- client.c ---- */
struct quorumctl_client {
	int fd;
	const char *path;
	long long deadline_ms; /* CLOCK_MONOTONIC milliseconds: the --command-timeout of the whole command */
	int64_t next_id;
	char *buf;
	size_t length, capacity;
};

/* Connects to the control socket; exits with a message naming the path when it cannot. */
void quorumctl_connect(struct quorumctl_client *client, const char *path, long long timeout_ms);
/* Restarts the deadline (for long multi-step commands). */
void quorumctl_set_timeout(struct quorumctl_client *client, long long timeout_ms);
/* Sends {"id":N,"command":command,...arguments} (takes `arguments`, may be NULL) and waits for the response
 * with that id. Returns the response object (the caller decrefs), or exits with "context deadline exceeded"
 * after the deadline, or with a message when the socket closes. */
json_t *quorumctl_call(struct quorumctl_client *client, const char *command, json_t *arguments);
/* As quorumctl_call, and on an error response prints `Error: TEXT` and exits 1; returns the result. */
json_t *quorumctl_call_ok(struct quorumctl_client *client, const char *command, json_t *arguments);
void quorumctl_close(struct quorumctl_client *client);
long long quorumctl_now_ms(void);

/* ---- output.c ---- */

/* go-humanize Bytes: SI units ("20 kB", "1.8 GB", "9 B"), as etcdctl prints DB SIZE. */
void quorumctl_humanize_bytes(uint64_t bytes, char *buf, size_t length);

/* olekukonko/tablewriter as etcdctl 3.4 configures it: borders, header centered, cells right-aligned. */
void quorumctl_print_table(FILE *out, const char *const *header, size_t columns, char ***rows, size_t row_count);

/* Reads an ID (hex string) member of a result object; 0 when absent. */
uint64_t quorumctl_hex_field(const json_t *object, const char *name);

/* Go's encoding/json output of etcd's protobuf types (gogoproto `json:"...,omitempty"` tags). */
struct gojson {
	char *text;
	size_t length, capacity;
};
void gojson_raw(struct gojson *g, const char *text);
void gojson_string(struct gojson *g, const char *text, size_t length);
void gojson_header(struct gojson *g, const json_t *header);
void gojson_member(struct gojson *g, const json_t *member);
void gojson_members(struct gojson *g, const json_t *members, bool comma);
void gojson_print(struct gojson *g); /* prints the text and a newline on stdout and frees it */

#endif
