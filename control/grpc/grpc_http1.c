/* control/grpc/grpc_http1.c: plain HTTP/1.1 GET and HEAD on the client port (/health, /version,
 * /metrics for curl and Prometheus). Bodiless requests only; keep-alive unless the client says
 * Connection: close (or speaks HTTP/1.0 without keep-alive); a request head over
 * GRPC_HTTP1_MAX_REQUEST or one we cannot parse gets a 400 and the connection closes. */
#include "grpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

static int respond(struct grpc_connection *connection, int status, const char *content_type, const char *body,
	size_t body_length, bool head_only)
{
	char head[512];
	int length = snprintf(head, sizeof head,
		"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n", status, reason_phrase(status),
		content_type != NULL ? content_type : "text/plain; charset=utf-8", body_length,
		status == 405 ? "Allow: GET\r\n" : "", connection->close_after_write ? "Connection: close\r\n" : "");
	if (length < 0 || (size_t)length >= sizeof head)
		return -1;
	if (grpc_buffer_append(&connection->output, head, (size_t)length) != 0)
		return -1;
	if (!head_only && grpc_buffer_append(&connection->output, body, body_length) != 0)
		return -1;
	return 0;
}

static int bad_request(struct grpc_connection *connection)
{
	static const char body[] = "400 Bad Request\n";
	connection->close_after_write = true;
	connection->bad_input = true;
	grpc_buffer_consume(&connection->input, grpc_buffer_length(&connection->input));
	return respond(connection, 400, NULL, body, sizeof body - 1, false);
}

/* "Connection: close" and friends: a comma-separated list, case-insensitive. */
static bool list_identified(const char *value, size_t length, const char *token)
{
	size_t token_length = strlen(token);
	size_t i = 0;
	while (i < length) {
		while (i < length && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
			i++;
		size_t start = i;
		while (i < length && value[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
			end--;
		if (end - start == token_length && strncasecmp(value + start, token, token_length) == 0)
			return true;
	}
	return false;
}

/* One complete request head of head_length bytes at the front of the input. */
static int answer(struct grpc_connection *connection, const char *head, size_t head_length)
{
	struct grpc_server *server = connection->server;
	const char *line_end = memchr(head, '\r', head_length);
	if (line_end == NULL || line_end[1] != '\n')
		return bad_request(connection);
	const char *space = memchr(head, ' ', (size_t)(line_end - head));
	if (space == NULL)
		return bad_request(connection);
	char method[16];
	snprintf(method, sizeof method, "%.*s", (int)(space - head), head);
	bool head_only = strcmp(method, "HEAD") == 0;
	bool other_method = !head_only && strcmp(method, "GET") != 0; /* answered 405 below, once the head is checked */
	const char *target = space + 1;
	const char *target_end = memchr(target, ' ', (size_t)(line_end - target));
	if (target_end == NULL || target == target_end || target[0] != '/')
		return bad_request(connection);
	const char *version = target_end + 1;
	size_t version_length = (size_t)(line_end - version);
	bool http10;
	if (version_length == 8 && memcmp(version, "HTTP/1.1", 8) == 0)
		http10 = false;
	else if (version_length == 8 && memcmp(version, "HTTP/1.0", 8) == 0)
		http10 = true;
	else
		return bad_request(connection);

	bool keep_alive = !http10;
	const char *line = line_end + 2;
	const char *end = head + head_length - 2; /* the empty line's CRLF */
	while (line < end) {
		const char *next = memchr(line, '\r', (size_t)(end - line) + 1);
		if (next == NULL || next[1] != '\n')
			return bad_request(connection);
		const char *colon = memchr(line, ':', (size_t)(next - line));
		if (colon == NULL || colon == line)
			return bad_request(connection);
		size_t name_length = (size_t)(colon - line);
		const char *value = colon + 1;
		while (value < next && (*value == ' ' || *value == '\t'))
			value++;
		size_t value_length = (size_t)(next - value);
		if (name_length == 10 && strncasecmp(line, "connection", 10) == 0) {
			if (list_identified(value, value_length, "close"))
				keep_alive = false;
			else if (list_identified(value, value_length, "keep-alive"))
				keep_alive = true;
		} else if ((name_length == 14 && strncasecmp(line, "content-length", 14) == 0 &&
				!(value_length == 1 && value[0] == '0')) ||
			(name_length == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)) {
			/* We never read request bodies, so we could not find the next request. */
			return bad_request(connection);
		}
		line = next + 2;
	}

	/* The service sees the path alone; a query string (/health?serializable=true) is not its business
	 * yet. */
	size_t path_length = (size_t)(target_end - target);
	const char *query = memchr(target, '?', path_length);
	if (query != NULL)
		path_length = (size_t)(query - target);
	char *path = strndup(target, path_length);
	if (path == NULL)
		return -1;
	grpc_buffer_consume(&connection->input, head_length);
	server->stats.http_requests++;
	if (!keep_alive)
		connection->close_after_write = true;

	/* etcd's /health and /version refuse other methods with 405. The connection closes then: a body we do
	 * not read would be taken for the next request. */
	if (other_method)
		connection->close_after_write = true;
	struct grpc_http_answer reply;
	grpc_http_answer(server, method, path, &reply);
	free(path);
	int result = respond(connection, reply.status, reply.content_type, reply.body, reply.body_length, head_only);
	grpc_http_answer_free(&reply);
	return result;
}

void grpc_http_answer(struct grpc_server *server, const char *method, const char *path,
	struct grpc_http_answer *answer)
{
	static const char not_allowed[] = "Method Not Allowed\n";
	static const char not_found[] = "404 page not found\n";
	memset(answer, 0, sizeof *answer);
	bool head = strcmp(method, "HEAD") == 0;
	struct grpc_http_response response = { 0 };
	bool found = false;
	if (head || strcmp(method, "GET") == 0)
		found = server->config.http_get != NULL && server->config.http_get(server->config.context, path, &response);
	else
		answer->status = 405;
	if (found && head && response.get_only)
		answer->status = 405;
	if (answer->status == 405) {
		free(response.body);
		answer->body = not_allowed;
		answer->body_length = sizeof not_allowed - 1;
		answer->allow_get = true;
		return;
	}
	if (!found) {
		free(response.body);
		answer->status = 404;
		answer->body = not_found;
		answer->body_length = sizeof not_found - 1;
		return;
	}
	answer->status = response.status;
	answer->content_type = response.content_type;
	answer->owned_body = response.body;
	answer->body = response.body;
	answer->body_length = response.body_length;
}

void grpc_http_answer_free(struct grpc_http_answer *answer)
{
	free(answer->owned_body);
	answer->owned_body = NULL;
	answer->body = NULL;
}

int grpc_http1_process(struct grpc_connection *connection)
{
	while (!connection->close_after_write && grpc_buffer_length(&connection->output) < GRPC_OUTPUT_HIGH_WATER) {
		size_t available = grpc_buffer_length(&connection->input);
		if (available == 0)
			return 0;
		const char *head = (const char *)connection->input.data + connection->input.start;
		const char *blank = memmem(head, available, "\r\n\r\n", 4);
		if (blank == NULL) {
			if (available > GRPC_HTTP1_MAX_REQUEST)
				return bad_request(connection);
			return 0;
		}
		size_t head_length = (size_t)(blank - head) + 4;
		if (head_length > GRPC_HTTP1_MAX_REQUEST)
			return bad_request(connection);
		if (answer(connection, head, head_length) != 0)
			return -1;
		/* A pipelined request already waiting starts its clock now. */
		connection->opened_ms = grpc_now_ms();
	}
	return 0;
}
