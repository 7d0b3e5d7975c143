/* control/grpc/grpc_http1.c: plain HTTP/1.1 on the client port: GET and HEAD (/health, /version,
 * /metrics for curl and Prometheus), and POSTs of the JSON gateway (grpc_gateway.c), whose bodies are
 * read by Content-Length or chunked (with "100 Continue" when the client expects it). Keep-alive unless the client
 * says Connection: close (or speaks HTTP/1.0 without keep-alive); requests are answered one at a time,
 * in order. A request head over GRPC_HTTP1_MAX_REQUEST, one we cannot parse, another transfer coding or a
 * body outside the gateway gets a 400 and the connection closes. */
#include "alloc.h"
#include "grpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *grpc_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 413: return "Request Entity Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

static int respond(struct grpc_connection *connection, int status, const char *content_type, const char *body,
	size_t body_length, bool head_only)
{
	char head[512];
	int length = snprintf(head, sizeof head,
		"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n", status, grpc_http_reason(status),
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

/* Outside the gateway the answers are plain text, as etcd's mux writes them. */
static int respond_plain(struct grpc_connection *connection, int status, const char *body, bool gateway_headers)
{
	char head[768];
	int length = snprintf(head, sizeof head,
		"HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
		"Content-Length: %zu\r\n%s\r\n",
		status, grpc_http_reason(status),
		gateway_headers ? "Access-Control-Allow-Headers: accept, content-type, authorization\r\n"
				  "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\n"
				  "Access-Control-Allow-Origin: *\r\n" : "",
		strlen(body), connection->close_after_write ? "Connection: close\r\n" : "");
	if (length < 0 || (size_t)length >= sizeof head)
		return -1;
	if (grpc_buffer_append(&connection->output, head, (size_t)length) != 0)
		return -1;
	return grpc_buffer_append(&connection->output, body, strlen(body));
}

enum { ANSWERED = 0, NEED_MORE = 1 };

enum dechunk_result { DECHUNK_DONE, DECHUNK_NEED_MORE, DECHUNK_MALFORMED, DECHUNK_TOO_LARGE };

/* A chunked body at data (available bytes so far): its chunks' sizes, each "SIZE[;extension]" CRLF, the
 * data, CRLF; a zero size, trailer lines and an empty line end it. DONE: *body is the data (malloc'd,
 * *body_length bytes) and *wire_length the bytes it took. TOO_LARGE once the data passes limit
 * (*body_length: the data seen). */
static enum dechunk_result dechunk(const char *data, size_t available, size_t limit, char **body,
	size_t *body_length, size_t *wire_length, const char **malformed)
{
	*malformed = "malformed chunked encoding"; /* Go's chunked reader's words, below for the others */
	*body = NULL;
	*body_length = 0;
	char *copy = NULL;
	/* Two walks: the first measures and checks, the second copies into a body of the right size. */
	for (int walk = 0; walk < 2; walk++) {
		size_t at = 0, total = 0;
		for (;;) {
			const char *line_end = memmem(data + at, available - at, "\r\n", 2);
			if (line_end == NULL && available - at > 4096)
				*malformed = "header line too long";
			if (line_end == NULL)
				return available - at > 4096 ? DECHUNK_MALFORMED : DECHUNK_NEED_MORE;
			size_t line_length = (size_t)(line_end - (data + at));
			size_t digits = 0, size = 0;
			while (digits < line_length && strchr("0123456789abcdefABCDEF", data[at + digits]) != NULL &&
				data[at + digits] != '\0') {
				char c = data[at + digits];
				size = size * 16 + (size_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
				if (++digits > 12) {
					*malformed = "http chunk length too large";
					return DECHUNK_MALFORMED;
				}
			}
			if (digits == 0 || (digits < line_length && data[at + digits] != ';')) {
				*malformed = "invalid byte in chunk length";
				return DECHUNK_MALFORMED;
			}
			at += line_length + 2;
			if (size == 0) {
				for (;;) {
					const char *trailer_end = memmem(data + at, available - at, "\r\n", 2);
					if (trailer_end == NULL)
						return available - at > 8192 ? DECHUNK_MALFORMED : DECHUNK_NEED_MORE;
					size_t trailer_length = (size_t)(trailer_end - (data + at));
					at += trailer_length + 2;
					if (trailer_length == 0)
						break;
				}
				break;
			}
			/* The framing counts too: tiny chunks must not make the input many times the body's bound. */
			if (total + size > limit || at > 2 * limit) {
				*body_length = total + size > limit ? total + size : at;
				return DECHUNK_TOO_LARGE;
			}
			if (available - at < size + 2)
				return DECHUNK_NEED_MORE;
			if (memcmp(data + at + size, "\r\n", 2) != 0)
				return DECHUNK_MALFORMED;
			if (copy != NULL)
				memcpy(copy + total, data + at, size);
			total += size;
			at += size + 2;
		}
		if (walk == 0) {
			copy = xmalloc(total + 1);
		} else {
			*body = copy;
			*body_length = total;
			*wire_length = at;
		}
	}
	return DECHUNK_DONE;
}

/* What answer() needs from a request's head; authorization is owned. */
struct request_head {
	char method[16];
	bool head_only;    /* HEAD: the answer without its body */
	bool other_method; /* neither GET nor HEAD: 405 outside the gateway, once the head is checked */
	const char *target;
	size_t target_length;
	bool keep_alive;
	bool expect_continue;
	bool chunked;
	size_t content_length;
	char *authorization;
};

/* "METHOD /target HTTP/1.x\r\n"; *line_end is left at the line's CR. */
static bool parse_request_line(const char *head, size_t head_length, struct request_head *request,
	const char **line_end)
{
	const char *end = memchr(head, '\r', head_length);
	if (end == NULL || end[1] != '\n')
		return false;
	const char *space = memchr(head, ' ', (size_t)(end - head));
	if (space == NULL)
		return false;
	snprintf(request->method, sizeof request->method, "%.*s", (int)(space - head), head);
	request->head_only = strcmp(request->method, "HEAD") == 0;
	request->other_method = !request->head_only && strcmp(request->method, "GET") != 0;
	const char *target = space + 1;
	const char *target_end = memchr(target, ' ', (size_t)(end - target));
	if (target_end == NULL || target == target_end || target[0] != '/')
		return false;
	request->target = target;
	request->target_length = (size_t)(target_end - target);
	const char *version = target_end + 1;
	size_t version_length = (size_t)(end - version);
	if (version_length != 8 || (memcmp(version, "HTTP/1.1", 8) != 0 && memcmp(version, "HTTP/1.0", 8) != 0))
		return false;
	request->keep_alive = version[7] == '1'; /* HTTP/1.0 closes unless it asks otherwise */
	*line_end = end;
	return true;
}

/* The header fields between the request line's CRLF and the empty line's. */
static bool parse_header_fields(const char *line, const char *end, struct request_head *request)
{
	while (line < end) {
		const char *next = memchr(line, '\r', (size_t)(end - line) + 1);
		if (next == NULL || next[1] != '\n')
			return false;
		const char *colon = memchr(line, ':', (size_t)(next - line));
		if (colon == NULL || colon == line)
			return false;
		size_t name_length = (size_t)(colon - line);
		const char *value = colon + 1;
		while (value < next && (*value == ' ' || *value == '\t'))
			value++;
		size_t value_length = (size_t)(next - value);
		while (value_length > 0 && (value[value_length - 1] == ' ' || value[value_length - 1] == '\t'))
			value_length--;
		if (name_length == 10 && strncasecmp(line, "connection", 10) == 0) {
			if (list_identified(value, value_length, "close"))
				request->keep_alive = false;
			else if (list_identified(value, value_length, "keep-alive"))
				request->keep_alive = true;
		} else if (name_length == 14 && strncasecmp(line, "content-length", 14) == 0) {
			if (value_length == 0 || value_length > 15 || strspn(value, "0123456789") < value_length)
				return false;
			request->content_length = (size_t)strtoull(value, NULL, 10);
		} else if (name_length == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
			/* Only chunked is read (it wins over a Content-Length); another coding would hide where
			 * the next request starts. */
			if (!(value_length == 7 && strncasecmp(value, "chunked", 7) == 0))
				return false;
			request->chunked = true;
		} else if (name_length == 6 && strncasecmp(line, "expect", 6) == 0) {
			request->expect_continue = value_length == 12 && strncasecmp(value, "100-continue", 12) == 0;
		} else if (name_length == 13 && strncasecmp(line, "authorization", 13) == 0) {
			free(request->authorization);
			request->authorization = xstrndup(value, value_length);
		}
		line = next + 2;
	}
	return true;
}

/* A gateway request's body, whole: NEED_MORE while it has not all arrived (after "100 Continue" when the
 * client expects it), ANSWERED with *body (owned) and *wire_length (its bytes on the connection, chunk
 * framing included), or the result of answering an error. */
static int read_gateway_body(struct grpc_connection *connection, const struct request_head *request,
	size_t head_length, char **body, size_t *body_length, size_t *wire_length, bool *answered)
{
	struct grpc_server *server = connection->server;
	const char *data = (const char *)connection->input.data + connection->input.start + head_length;
	size_t available = grpc_buffer_length(&connection->input) - head_length;
	*answered = false;
	*body = NULL;
	*body_length = *wire_length = request->content_length;
	int chunks = DECHUNK_DONE;
	if (request->chunked) {
		const char *malformed = NULL;
		chunks = dechunk(data, available, grpc_gateway_body_limit(server), body, body_length, wire_length,
			&malformed);
		if (chunks == DECHUNK_MALFORMED) {
			/* Go's body reader fails, and the gateway answers its error; the connection closes. */
			*answered = true;
			connection->close_after_write = true;
			connection->bad_input = true;
			grpc_buffer_consume(&connection->input, grpc_buffer_length(&connection->input));
			return grpc_gateway_write_error(connection, GRPC_INVALID_ARGUMENT, malformed, 400);
		}
	}
	if (*body_length > grpc_gateway_body_limit(server)) {
		char message[160];
		snprintf(message, sizeof message, "request body larger than max (%zu vs. %zu)", *body_length,
			grpc_gateway_body_limit(server));
		free(*body);
		*body = NULL;
		*answered = true;
		connection->close_after_write = true;
		grpc_buffer_consume(&connection->input, grpc_buffer_length(&connection->input));
		return grpc_gateway_write_error(connection, GRPC_RESOURCE_EXHAUSTED, message, 413);
	}
	if (chunks == DECHUNK_NEED_MORE || (!request->chunked && available < request->content_length)) {
		free(*body);
		*body = NULL;
		if (request->expect_continue && !connection->continue_sent) {
			static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
			connection->continue_sent = true;
			if (grpc_buffer_append(&connection->output, go_on, sizeof go_on - 1) != 0)
				return -1;
		}
		return NEED_MORE;
	}
	/* The body is copied out: the call may outlive the input's next reallocation. */
	if (!request->chunked) {
		*body = xmalloc(request->content_length + 1);
		memcpy(*body, data, request->content_length);
	}
	return ANSWERED;
}

/* Answers a parsed request: a gateway call, the gateway's 404/405, or /health, /version, /metrics. */
static int answer_request(struct grpc_connection *connection, const struct request_head *request,
	size_t head_length)
{
	struct grpc_server *server = connection->server;
	/* The service sees the path alone; a query string (/health?serializable=true) is not its business
	 * yet. */
	size_t path_length = request->target_length;
	const char *query = memchr(request->target, '?', path_length);
	if (query != NULL)
		path_length = (size_t)(query - request->target);
	char *path = xstrndup(request->target, path_length);
	bool under_prefix;
	const struct grpc_gateway_route *route = grpc_gateway_find(server, path, &under_prefix);
	char *body = NULL;
	size_t body_length = 0, wire_length = 0;
	if (request->content_length > 0 || request->chunked) {
		/* Only the gateway reads bodies; elsewhere we could not tell where the next request starts. */
		if (!under_prefix) {
			free(path);
			return bad_request(connection);
		}
		bool answered;
		int read = read_gateway_body(connection, request, head_length, &body, &body_length, &wire_length,
			&answered);
		if (answered || read != ANSWERED) {
			free(path);
			return read;
		}
	}
	connection->continue_sent = false;
	server->stats.http_requests++;
	int result;
	if (route != NULL && strcmp(request->method, "POST") == 0) {
		if (body == NULL)
			body = xcalloc(1, 1);
		grpc_buffer_consume(&connection->input, head_length + wire_length);
		result = grpc_gateway_start(connection, route, body, body_length, request->authorization,
			!request->keep_alive);
	} else if (under_prefix) {
		/* grpc-gateway's mux: another method on a route is 405, an unknown path 404, in its words. */
		grpc_buffer_consume(&connection->input, head_length + wire_length);
		if (!request->keep_alive)
			connection->close_after_write = true;
		result = respond_plain(connection, route != NULL ? 405 : 404,
			route != NULL ? "Method Not Allowed\n" : "Not Found\n", true);
	} else {
		grpc_buffer_consume(&connection->input, head_length);
		/* etcd's /health and /version refuse other methods with 405. The connection closes then: a body we
		 * do not read would be taken for the next request. */
		if (!request->keep_alive || request->other_method)
			connection->close_after_write = true;
		struct grpc_http_answer reply;
		grpc_http_answer(server, request->method, path, &reply);
		result = respond(connection, reply.status, reply.content_type, reply.body, reply.body_length,
			request->head_only);
		grpc_http_answer_free(&reply);
	}
	free(body);
	free(path);
	return result;
}

/* One complete request head of head_length bytes at the front of the input: ANSWERED (the request and
 * its body consumed), NEED_MORE (its body is still coming), -1 (the connection must close). */
static int answer(struct grpc_connection *connection, const char *head, size_t head_length)
{
	struct request_head request = {0};
	const char *line_end;
	if (!parse_request_line(head, head_length, &request, &line_end))
		return bad_request(connection);
	/* head ends with the empty line's CRLF */
	if (!parse_header_fields(line_end + 2, head + head_length - 2, &request)) {
		free(request.authorization);
		return bad_request(connection);
	}
	int result = answer_request(connection, &request, head_length);
	free(request.authorization);
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
	found = server->config.http_get != NULL && server->config.http_get(server->config.context, path, &response);
	/* Go's mux: an unknown path is a 404 whatever the method; a known one refuses other methods. */
	if (found && !head && strcmp(method, "GET") != 0)
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

bool grpc_http1_wants_input(const struct grpc_connection *connection)
{
	return connection->http1_call == NULL || grpc_buffer_length(&connection->input) < GRPC_HTTP1_MAX_REQUEST;
}

int grpc_http1_process(struct grpc_connection *connection)
{
	grpc_gateway_free_ended(connection);
	while (!connection->close_after_write && connection->http1_call == NULL &&
		grpc_buffer_length(&connection->output) < GRPC_OUTPUT_HIGH_WATER) {
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
		int result = answer(connection, head, head_length);
		if (result < 0)
			return -1;
		if (result == NEED_MORE)
			return 0;
		/* A pipelined request already waiting starts its clock now. */
		connection->opened_ms = grpc_now_ms();
	}
	return 0;
}
