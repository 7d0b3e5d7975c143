/* control/cmd/quorumctl/client.c: one connection to quorumd's control socket; requests and their responses
 * matched by id, all under the command's deadline (etcdctl's --command-timeout). */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "quorumctl.h"

void quorumctl_fail(int code, const char *format, ...)
{
	fflush(stdout);
	va_list args;
	va_start(args, format);
	fputs("Error: ", stderr);
	vfprintf(stderr, format, args);
	fputc('\n', stderr);
	va_end(args);
	exit(code);
}

long long quorumctl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void quorumctl_set_timeout(struct quorumctl_client *client, long long timeout_ms)
{
	client->deadline_ms = quorumctl_now_ms() + timeout_ms;
}

void quorumctl_connect(struct quorumctl_client *client, const char *path, long long timeout_ms)
{
	memset(client, 0, sizeof(*client));
	client->path = path;
	client->next_id = 1;
	quorumctl_set_timeout(client, timeout_ms);
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(address.sun_path))
		quorumctl_fail(EXIT_BAD_CONNECTION, "control socket path %s is longer than %zu bytes", path,
		               sizeof(address.sun_path) - 1);
	memcpy(address.sun_path, path, strlen(path) + 1);
	client->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (client->fd < 0 || connect(client->fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
		int saved = errno;
		const char *hint = saved == ENOENT || saved == ECONNREFUSED
		                       ? " (is quorumd running with --control-socket at this path?)"
		                       : saved == EACCES ? " (the control socket is only open to the user running quorumd)"
		                                         : "";
		quorumctl_fail(EXIT_ERROR, "cannot connect to the control socket %s: %s%s", path, strerror(saved), hint);
	}
}

static void send_all(struct quorumctl_client *client, const char *text, size_t length)
{
	size_t done = 0;
	while (done < length) {
		ssize_t n = send(client->fd, text + done, length - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			quorumctl_fail(EXIT_ERROR, "control socket %s: send: %s", client->path, strerror(errno));
		done += (size_t)n;
	}
}

/* Reads the next response line; exits on timeout or close. Returns the parsed object. */
static json_t *read_response(struct quorumctl_client *client)
{
	for (;;) {
		char *newline = client->length ? memchr(client->buf, '\n', client->length) : NULL;
		if (newline) {
			size_t n = (size_t)(newline - client->buf);
			json_error_t error;
			json_t *response = json_loadb(client->buf, n, 0, &error);
			memmove(client->buf, newline + 1, client->length - n - 1);
			client->length -= n + 1;
			if (!json_is_object(response))
				quorumctl_fail(EXIT_ERROR, "control socket %s: malformed response: %s", client->path,
				               response ? "not an object" : error.text);
			return response;
		}
		long long left = client->deadline_ms - quorumctl_now_ms();
		if (left <= 0)
			quorumctl_fail(EXIT_ERROR, "context deadline exceeded");
		struct pollfd p = {.fd = client->fd, .events = POLLIN};
		int ready = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (ready < 0 && errno != EINTR)
			quorumctl_fail(EXIT_ERROR, "control socket %s: poll: %s", client->path, strerror(errno));
		if (ready <= 0)
			continue;
		if (client->capacity - client->length < 65536) {
			client->capacity = client->capacity ? client->capacity * 2 : 65536 * 2;
			client->buf = realloc(client->buf, client->capacity);
			if (!client->buf)
				quorumctl_fail(EXIT_ERROR, "out of memory");
		}
		ssize_t n = recv(client->fd, client->buf + client->length, client->capacity - client->length, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			quorumctl_fail(EXIT_ERROR, "control socket %s: %s", client->path, strerror(errno));
		if (n == 0)
			quorumctl_fail(EXIT_ERROR, "control socket %s: quorumd closed the connection", client->path);
		client->length += (size_t)n;
	}
}

json_t *quorumctl_call(struct quorumctl_client *client, const char *command, json_t *arguments)
{
	json_t *request = arguments ? arguments : json_object();
	int64_t id = client->next_id++;
	json_object_set_new(request, "id", json_integer(id));
	json_object_set_new(request, "command", json_string(command));
	char *text = json_dumps(request, JSON_COMPACT);
	json_decref(request);
	if (!text)
		quorumctl_fail(EXIT_ERROR, "cannot encode the request");
	size_t length = strlen(text);
	text[length] = '\n'; /* replaces the NUL: send the line with its newline */
	send_all(client, text, length + 1);
	free(text);
	for (;;) {
		json_t *response = read_response(client);
		json_t *response_id = json_object_get(response, "id");
		if (json_is_integer(response_id) && json_integer_value(response_id) == id)
			return response;
		if (json_is_null(response_id) && json_is_false(json_object_get(response, "ok")))
			return response; /* a refusal or a protocol error not tied to one request */
		json_decref(response);
	}
}

json_t *quorumctl_call_ok(struct quorumctl_client *client, const char *command, json_t *arguments)
{
	json_t *response = quorumctl_call(client, command, arguments);
	if (!json_is_true(json_object_get(response, "ok"))) {
		const char *text = json_string_value(json_object_get(response, "error"));
		char *copy = strdup(text ? text : "malformed error response");
		json_decref(response);
		quorumctl_close(client);
		static char message[4096]; /* static: still reachable at exit, so leak checkers stay quiet */
		snprintf(message, sizeof(message), "%s", copy ? copy : "out of memory");
		free(copy);
		quorumctl_fail(EXIT_ERROR, "%s", message);
	}
	json_t *result = json_object_get(response, "result");
	json_t *copy = json_is_object(result) ? json_incref(result) : json_object();
	json_decref(response);
	return copy;
}

void quorumctl_close(struct quorumctl_client *client)
{
	if (client->fd >= 0)
		close(client->fd);
	client->fd = -1;
	free(client->buf);
	client->buf = NULL;
}
