/* tests/fuzz/fuzz_control_socket.c: libFuzzer target for the operator control socket
 * (control/operator/control_socket.h): the bytes a client writes, parsed by the real server over a real Unix
 * socket, and the request helpers a node's handler uses on what arrives.
 *
 * Input: byte 0 configures the run (bit 0: the server with a 256-byte line limit instead of the default
 * 1 MiB; bits 1-3: how many bytes go per write(), 4096 down to 1; bit 4: close the client before the held
 * requests are answered). The rest is written to one connection as it is: JSON lines.
 *
 * The handler, driven as the node drives it (control_socket_process whenever the fd is readable):
 *   echo   {"key":K,"range_end":E,"value":V,"encoding":...} reads each byte string with
 *          control_json_get_bytes, turns it back into JSON with control_json_bytes and reads that again:
 *          the bytes must survive (UTF-8 text as is, anything else in base64); answers at once.
 *   hex    {"member_id":S}: control_parse_hex_id, then control_format_hex_id must give S in lower case
 *          without leading zeros.
 *   hold   kept, answered after the input is written (or after the client is gone); drop: released
 *          without an answer; anything else: the Unimplemented error.
 * Every complete line the server writes back must be a JSON object with "id" and "ok".
 *
 * tests/fuzz/make_seeds.py writes the seed corpus (corpus/control-socket/). */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control_socket.h"

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, "fuzz-control-socket: " __VA_ARGS__);                  \
		fputc('\n', stderr);                                                   \
		abort();                                                               \
	} while (0)

enum { MAX_HELD = 64 };

struct handler {
	struct control_socket *server;
	struct control_request *held[MAX_HELD];
	int held_count;
};

static struct handler handlers[2];
static char socket_paths[2][128];

/* Reads name, turns it into JSON and back: the bytes must come out the same. */
static void bytes_round_trip(const json_t *object, const char *name, json_t *result)
{
	char *data = NULL, errbuf[256];
	size_t length = 0;
	int rc = control_json_get_bytes(object, name, &data, &length, errbuf, sizeof errbuf);
	if (rc != 0) {
		if (rc < 0 && errbuf[0] == '\0')
			FAIL("control_json_get_bytes failed without a message");
		free(data);
		return;
	}
	if (data[length] != '\0')
		FAIL("control_json_get_bytes: no NUL behind the bytes");
	bool base64 = false;
	json_t *text = control_json_bytes(data, length, &base64);
	if (text == NULL)
		FAIL("control_json_bytes returned NULL");
	json_t *again = json_object();
	json_object_set(again, "x", text);
	if (base64)
		json_object_set_new(again, "encoding", json_string("base64"));
	char *data2 = NULL;
	size_t length2 = 0;
	if (control_json_get_bytes(again, "x", &data2, &length2, errbuf, sizeof errbuf) != 0)
		FAIL("the JSON made by control_json_bytes does not read back: %s", errbuf);
	if (length2 != length || memcmp(data, data2, length) != 0)
		FAIL("%zu bytes came back as %zu different ones (base64 %d)", length, length2, base64);
	json_object_set_new(result, name, text);
	json_decref(again);
	free(data);
	free(data2);
}

static void hex_round_trip(const json_t *object, json_t *result)
{
	const char *text = json_string_value(json_object_get(object, "member_id"));
	if (text == NULL)
		return;
	uint64_t id;
	if (control_parse_hex_id(text, &id) != 0)
		return;
	char formatted[17], expected[17];
	control_format_hex_id(id, formatted);
	size_t length = strlen(text), skip = 0, k = 0;
	if (length < 1 || length > 16)
		FAIL("control_parse_hex_id accepted \"%s\"", text);
	while (skip + 1 < length && text[skip] == '0')
		skip++;
	for (size_t i = skip; i < length; i++) {
		char c = text[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			FAIL("control_parse_hex_id accepted \"%s\"", text);
		expected[k++] = c;
	}
	expected[k] = '\0';
	if (strcmp(formatted, expected) != 0)
		FAIL("\"%s\" parsed and formatted as \"%s\"", text, formatted);
	json_object_set_new(result, "member_id", json_string(formatted));
}

static void handle(void *context, struct control_request *request)
{
	struct handler *h = context;
	if (request->command == NULL || request->json == NULL || !json_is_object(request->json))
		FAIL("a request without command or object reached the handler");
	if (strcmp(request->command, "echo") == 0 || strcmp(request->command, "hex") == 0) {
		json_t *result = json_object();
		bytes_round_trip(request->json, "key", result);
		bytes_round_trip(request->json, "range_end", result);
		bytes_round_trip(request->json, "value", result);
		hex_round_trip(request->json, result);
		control_socket_reply(h->server, request, result);
	} else if (strcmp(request->command, "hold") == 0 && h->held_count < MAX_HELD) {
		h->held[h->held_count++] = request;
	} else if (strcmp(request->command, "drop") == 0) {
		control_socket_drop(h->server, request);
	} else {
		control_socket_reply_error(h->server, request, "Unimplemented", "unknown command %s", request->command);
	}
}

static void open_servers(void)
{
	/* Under $TMPDIR: run_fuzzer.sh points it at a directory it removes afterwards (libFuzzer ends a
	 * timed run without atexit handlers, so the sockets would stay behind). */
	const char *base = getenv("TMPDIR");
	char dir[96];
	snprintf(dir, sizeof dir, "%s/fuzz-control-socket.XXXXXX", base && *base && strlen(base) < 48 ? base : "/tmp");
	if (mkdtemp(dir) == NULL)
		FAIL("mkdtemp: %s", strerror(errno));
	for (int k = 0; k < 2; k++) {
		snprintf(socket_paths[k], sizeof socket_paths[k], "%s/s%d.sock", dir, k);
		struct control_socket_config config = {
			.path = socket_paths[k],
			.max_line_bytes = k == 0 ? 0 : 256,
			.handler = handle,
			.handler_context = &handlers[k],
			.max_pending_per_connection = 16,
		};
		char errbuf[256];
		handlers[k].server = control_socket_open(&config, errbuf, sizeof errbuf);
		if (handlers[k].server == NULL)
			FAIL("control_socket_open: %s", errbuf);
	}
}

/* Answers every held request: a reply, an error or nothing (dropped), in turn. */
static void answer_held(struct handler *h)
{
	while (h->held_count > 0) {
		struct control_request *request = h->held[--h->held_count];
		(void)control_socket_request_connected(h->server, request);
		if (h->held_count % 3 == 0)
			control_socket_reply(h->server, request, json_pack("{s:i}", "held", h->held_count));
		else if (h->held_count % 3 == 1)
			control_socket_reply_error(h->server, request, "Unavailable", "held %d", h->held_count);
		else
			control_socket_drop(h->server, request);
	}
}

static void process(struct handler *h)
{
	if (control_socket_process(h->server) != 0)
		FAIL("control_socket_process: %s", strerror(errno));
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

/* Reads what the server wrote; checks every complete line. */
static void drain(int fd, char **buffer, size_t *used, size_t *capacity)
{
	for (;;) {
		if (*capacity - *used < 4096) {
			*capacity = *capacity * 2 + 8192;
			*buffer = realloc(*buffer, *capacity);
			if (*buffer == NULL)
				FAIL("out of memory");
		}
		ssize_t n = recv(fd, *buffer + *used, *capacity - *used, MSG_DONTWAIT);
		if (n <= 0)
			break;
		*used += (size_t)n;
	}
	char *start = *buffer, *end = *buffer + *used, *newline;
	while ((newline = memchr(start, '\n', (size_t)(end - start))) != NULL) {
		json_error_t error;
		json_t *line = json_loadb(start, (size_t)(newline - start), 0, &error);
		if (line == NULL || !json_is_object(line) || json_object_get(line, "id") == NULL ||
			!json_is_boolean(json_object_get(line, "ok")))
			FAIL("the server wrote a line that is not a response: %.*s", (int)(newline - start), start);
		json_decref(line);
		start = newline + 1;
	}
	*used = (size_t)(end - start);
	memmove(*buffer, start, *used);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (handlers[0].server == NULL)
		open_servers();
	if (size < 1)
		return 0;
	uint8_t config = data[0];
	struct handler *h = &handlers[config & 1];
	size_t chunk = (size_t)4096 >> (((config >> 1) & 7) * 12 / 7);
	bool close_early = config & 0x10;
	data++, size--;

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	strcpy(address.sun_path, socket_paths[config & 1]);
	if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0)
		FAIL("connect: %s", strerror(errno));
	int server_fd = control_socket_fd(h->server);
	char *buffer = NULL;
	size_t used = 0, capacity = 0, sent = 0;
	int idle = 0;
	/* Write, process and read until everything is written and the server has nothing more to do. */
	while (idle < 3) {
		bool progress = false;
		if (sent < size) {
			size_t n = size - sent < chunk ? size - sent : chunk;
			ssize_t w = send(fd, data + sent, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0) {
				sent += (size_t)w;
				progress = true;
			} else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				sent = size; /* the server closed the connection (an over-long line) */
			}
		}
		if (readable(server_fd)) {
			process(h);
			progress = true;
		}
		size_t before = used;
		drain(fd, &buffer, &used, &capacity);
		if (used != before)
			progress = true;
		idle = progress || sent < size ? 0 : idle + 1;
		if (!progress && sent < size && h->held_count > 0) {
			/* Held requests stop the server reading (max_pending_per_connection): answer one. */
			control_socket_reply(h->server, h->held[--h->held_count], NULL);
		}
	}
	if (close_early) {
		close(fd);
		fd = -1;
		for (int k = 0; k < 8 && readable(server_fd); k++)
			process(h);
	}
	/* Answer what is held; answering lets the server read on (more requests may be held), so until
	 * nothing is held and the server is quiet. */
	for (int round = 0; round < 1000; round++) {
		answer_held(h);
		bool busy = false;
		for (int k = 0; k < 8 && readable(server_fd); k++) {
			process(h);
			busy = true;
			if (fd >= 0)
				drain(fd, &buffer, &used, &capacity);
		}
		if (!busy && h->held_count == 0)
			break;
	}
	if (fd >= 0)
		close(fd);
	/* Let the server see the close, so no connection outlives its input. */
	struct control_socket_stats stats;
	for (int k = 0; k < 100; k++) {
		control_socket_get_stats(h->server, &stats);
		if (stats.connections_open == 0)
			break;
		struct pollfd p = {.fd = server_fd, .events = POLLIN};
		if (poll(&p, 1, 10) > 0)
			process(h);
		answer_held(h);
	}
	answer_held(h);
	control_socket_get_stats(h->server, &stats);
	if (stats.connections_open != 0 || stats.requests_pending != 0)
		FAIL("after the client closed: %llu connections open, %llu requests pending",
			(unsigned long long)stats.connections_open, (unsigned long long)stats.requests_pending);
	free(buffer);
	return 0;
}
