/* control/grpc/grpc_gateway.c: etcd 3.4's gRPC JSON gateway, on HTTP/1.1 and (a TLS client that chose h2)
 * on HTTP/2 streams. A POST's JSON body becomes
 * the request message(s) of an ordinary call of the route's method; the service's answers come back
 * through grpc_call_send and grpc_call_finish, which land here for these calls and write JSON where a
 * gRPC call would queue frames. The response heads, bodies and error shapes are those etcd 3.4.23's
 * gateway (grpc-gateway v1 with JSONPb{OrigName: true}) writes:
 *
 * - unary: 200, Content-Type application/json, Grpc-Metadata-Content-Type, Content-Length, the message;
 * - streams: 200, chunked, one chunk per message: {"result":MESSAGE} and a newline; an error after the
 *   first answer: {"error":{"grpc_code":N,"http_code":H,"message":"...","http_status":"..."}};
 * - a call's error: HTTP status by grpc-gateway's table, {"error":"TEXT","message":"TEXT","code":N},
 *   chunked with a Grpc-Trailer-Content-Type trailer on HTTP/1.1 (with a length on HTTP/2);
 * - a body that does not decode: 400 with a Content-Length and the same shape, code 3, Go's text.
 *
 * Every response carries etcd's default CORS headers. */
#include "grpc_internal.h"
#include "grpc_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char cors_headers[] = "Access-Control-Allow-Headers: accept, content-type, authorization\r\n"
				   "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\n"
				   "Access-Control-Allow-Origin: *\r\n";

/* grpc-gateway v1's HTTPStatusFromCode (FailedPrecondition is 412 there). */
static int http_status_of(int grpc_code)
{
	static const int table[] = { 200, 408, 500, 400, 504, 404, 409, 403, 429, 412, 409, 400, 501, 500, 503, 500, 401 };
	return grpc_code >= 0 && grpc_code < (int)(sizeof table / sizeof table[0]) ? table[grpc_code] : 500;
}

const struct grpc_gateway_route *grpc_gateway_find(const struct grpc_server *server, const char *path,
	bool *under_prefix)
{
	*under_prefix = false;
	for (size_t p = 0; p < server->config.gateway_prefix_count; p++) {
		const char *prefix = server->config.gateway_prefixes[p];
		size_t prefix_length = strlen(prefix);
		if (strncmp(path, prefix, prefix_length) != 0)
			continue;
		*under_prefix = true;
		for (size_t r = 0; r < server->config.gateway_route_count; r++)
			if (strcmp(path + prefix_length, server->config.gateway_routes[r].http_path) == 0)
				return &server->config.gateway_routes[r];
	}
	return NULL;
}

size_t grpc_gateway_body_limit(const struct grpc_server *server)
{
	return server->config.max_message_bytes * GRPC_GATEWAY_BODY_FACTOR;
}

/* ---- the response, on either transport ---- */

static int write_head(struct grpc_connection *connection, int status, bool chunked, bool with_metadata,
	bool with_trailer, size_t content_length, bool close_after)
{
	char head[1024];
	char length_header[48] = "";
	if (!chunked)
		snprintf(length_header, sizeof length_header, "Content-Length: %zu\r\n", content_length);
	int length = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n%sContent-Type: application/json\r\n%s%s%s%s\r\n", status,
		grpc_http_reason(status), cors_headers, with_metadata ? "Grpc-Metadata-Content-Type: application/grpc\r\n" : "",
		with_trailer ? "Trailer: Grpc-Trailer-Content-Type\r\n" : "",
		chunked ? "Transfer-Encoding: chunked\r\n" : length_header, close_after ? "Connection: close\r\n" : "");
	if (length < 0 || (size_t)length >= sizeof head)
		return -1;
	return grpc_buffer_append(&connection->output, head, (size_t)length);
}

static int write_chunk(struct grpc_connection *connection, const char *bytes, size_t length)
{
	char size[24];
	int size_length = snprintf(size, sizeof size, "%zx\r\n", length);
	if (grpc_buffer_append(&connection->output, size, (size_t)size_length) != 0 ||
		grpc_buffer_append(&connection->output, bytes, length) != 0 ||
		grpc_buffer_append(&connection->output, "\r\n", 2) != 0)
		return -1;
	return 0;
}

static bool on_http1(const struct grpc_call *call)
{
	return call->connection->mode == GRPC_MODE_HTTP1;
}

/* HTTP/2: nghttp2 pulls the body from the call's output, deferring until there is more or the call
 * ended; grpc-gateway's trailer follows a call's error. */
static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buffer, size_t length,
	uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	(void)user_data;
	struct grpc_call *call = source->ptr;
	size_t available = grpc_buffer_length(&call->output);
	if (available == 0 && !call->finished) {
		call->data_deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	size_t take = available < length ? available : length;
	if (take > 0) {
		memcpy(buffer, call->output.data + call->output.start, take);
		grpc_buffer_consume(&call->output, take);
	}
	if (call->finished && grpc_buffer_length(&call->output) == 0) {
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
		if (call->gateway_trailer) {
			*data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			nghttp2_nv trailer[] = { { (uint8_t *)"grpc-trailer-content-type", (uint8_t *)"application/grpc", 25, 16,
				NGHTTP2_NV_FLAG_NONE } };
			nghttp2_submit_trailer(session, stream_id, trailer, 1);
		}
	}
	return (ssize_t)take;
}

static void resume_output(struct grpc_call *call)
{
	if (!on_http1(call) && call->data_deferred) {
		call->data_deferred = false;
		nghttp2_session_resume_data(call->connection->session, call->stream_id);
	}
	grpc_connection_mark_dirty(call->connection);
}

/* The status line and headers: chunked (a stream, or an error etcd writes so) or with a Content-Length. */
static int out_head(struct grpc_call *call, int status, bool chunked, bool with_metadata, bool with_trailer,
	size_t content_length)
{
	call->gateway_head_written = true;
	if (on_http1(call))
		return write_head(call->connection, status, chunked, with_metadata, with_trailer, content_length,
			call->gateway_close);
	char status_text[8], length_text[24];
	snprintf(status_text, sizeof status_text, "%d", status);
	snprintf(length_text, sizeof length_text, "%zu", content_length);
#define HEADER(name, value) { (uint8_t *)(name), (uint8_t *)(value), strlen(name), strlen(value), NGHTTP2_NV_FLAG_NONE }
	nghttp2_nv headers[8] = {
		HEADER(":status", status_text),
		HEADER("access-control-allow-headers", "accept, content-type, authorization"),
		HEADER("access-control-allow-methods", "POST, GET, OPTIONS, PUT, DELETE"),
		HEADER("access-control-allow-origin", "*"),
		HEADER("content-type", "application/json"),
	};
	size_t count = 5;
	if (with_metadata)
		headers[count++] = (nghttp2_nv)HEADER("grpc-metadata-content-type", "application/grpc");
	if (with_trailer)
		headers[count++] = (nghttp2_nv)HEADER("trailer", "Grpc-Trailer-Content-Type");
	if (!chunked)
		headers[count++] = (nghttp2_nv)HEADER("content-length", length_text);
#undef HEADER
	nghttp2_data_provider provider = { .source.ptr = call, .read_callback = read_body };
	call->headers_submitted = true;
	return nghttp2_submit_response(call->connection->session, call->stream_id, headers, count, &provider) == 0 ? 0 : -1;
}

/* Body bytes: a chunk of their own when chunked (on HTTP/2, DATA frames do that). */
static int out_body(struct grpc_call *call, const char *bytes, size_t length, bool chunked)
{
	int result;
	if (on_http1(call))
		result = chunked ? write_chunk(call->connection, bytes, length)
				 : grpc_buffer_append(&call->connection->output, bytes, length);
	else
		result = grpc_buffer_append(&call->output, bytes, length);
	resume_output(call);
	return result;
}

/* The end of the body (the call is finished by now), with grpc-gateway's trailer or not. */
static int out_end(struct grpc_call *call, bool chunked, bool with_trailer)
{
	int result = 0;
	if (on_http1(call)) {
		static const char last[] = "0\r\n\r\n";
		static const char last_with_trailer[] = "0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n\r\n";
		if (chunked && with_trailer)
			result = grpc_buffer_append(&call->connection->output, last_with_trailer, sizeof last_with_trailer - 1);
		else if (chunked)
			result = grpc_buffer_append(&call->connection->output, last, sizeof last - 1);
	} else {
		call->gateway_trailer = with_trailer;
	}
	resume_output(call);
	return result;
}

static char *error_body(int grpc_code, const char *message, size_t *length)
{
	json_t *error = json_object();
	json_object_set_new(error, "error", json_string(message));
	json_object_set_new(error, "message", json_string(message));
	json_object_set_new(error, "code", json_integer(grpc_code));
	char *text = grpc_json_dump(error, length);
	json_decref(error);
	return text;
}

int grpc_gateway_write_error(struct grpc_connection *connection, int grpc_code, const char *message, int http_status)
{
	size_t length;
	char *body = error_body(grpc_code, message, &length);
	if (body == NULL)
		return -1;
	int result = write_head(connection, http_status, false, false, false, length, connection->close_after_write);
	if (result == 0)
		result = grpc_buffer_append(&connection->output, body, length);
	free(body);
	grpc_connection_mark_dirty(connection);
	return result;
}

/* The call is over for everyone: late answers find nothing, the next pipelined request may start. */
static void end_call(struct grpc_call *call)
{
	struct grpc_connection *connection = call->connection;
	call->finished = true;
	call->service_done = true;
	call->discarding = true;
	grpc_server_table_remove(connection->server, call);
	if (connection->http1_call == call) {
		connection->http1_call = NULL;
		/* A pipelined request waiting behind this call starts its clock now. */
		connection->opened_ms = grpc_now_ms();
	}
	if (call->gateway_close)
		connection->close_after_write = true;
}

/* An error as etcd's gateway answers it: a call's error (chunked, with the trailer), or a request that
 * never became one (a Content-Length). Ends the call. */
static void answer_error(struct grpc_call *call, int grpc_code, const char *message, bool call_error, int http_status)
{
	end_call(call);
	size_t length;
	char *body = error_body(grpc_code, message, &length);
	if (body == NULL)
		return;
	/* etcd's HTTP/1.1 answer to a call's error is chunked with a trailer; its HTTP/2 one has a length and
	 * the metadata header instead (Go's HTTP/2 writer). */
	bool chunked = call_error && on_http1(call);
	bool metadata = call_error && !on_http1(call);
	if (out_head(call, http_status != 0 ? http_status : http_status_of(grpc_code), chunked, metadata, chunked,
		length) == 0)
		out_body(call, body, length, chunked);
	out_end(call, chunked, chunked);
	free(body);
}

void grpc_gateway_refuse_body(struct grpc_call *call, size_t body_length)
{
	char message[160];
	snprintf(message, sizeof message, "request body larger than max (%zu vs. %zu)", body_length,
		grpc_gateway_body_limit(call->connection->server));
	grpc_buffer_free(&call->gateway_body);
	answer_error(call, GRPC_RESOURCE_EXHAUSTED, message, false, 413);
}

static const struct grpc_method *method_of(const struct grpc_server *server, const char *path)
{
	for (size_t i = 0; i < server->config.method_count; i++)
		if (strcmp(server->config.methods[i].path, path) == 0)
			return &server->config.methods[i];
	return NULL;
}

/* One request message from a JSON value, packed. NULL with the gateway's error text. */
static uint8_t *pack_request(const struct grpc_gateway_route *route, const json_t *json, size_t *length, char *err,
	size_t errlen)
{
	ProtobufCMessage *message = grpc_json_to_message(route->request, json, err, errlen);
	if (message == NULL)
		return NULL;
	*length = protobuf_c_message_get_packed_size(message);
	uint8_t *packed = malloc(*length > 0 ? *length : 1);
	if (packed != NULL)
		protobuf_c_message_pack(message, packed);
	else
		snprintf(err, errlen, "out of memory");
	protobuf_c_message_free_unpacked(message, NULL);
	return packed;
}

struct packed_request {
	uint8_t *bytes;
	size_t length;
};

static void free_requests(struct packed_request *requests, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(requests[i].bytes);
	free(requests);
}

static bool only_space(const char *text, size_t length)
{
	for (size_t i = 0; i < length; i++)
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
			return false;
	return true;
}

/* The body's request messages: one for a unary call (an empty body is the empty message, as Go's
 * decoder's EOF is ignored there), a sequence of JSON values for a stream, which ends at the first
 * value that does not decode when that is not the first (grpc-gateway stops sending there). -1 with the
 * error text; *too_large when a message is over max_message_bytes (gRPC's RESOURCE_EXHAUSTED, not a
 * decode error). */
static int decode_body(const struct grpc_server *server, const struct grpc_gateway_route *route, bool stream,
	const char *body, size_t body_length, struct packed_request **out, size_t *count, bool *too_large, char *err,
	size_t errlen)
{
	*out = NULL;
	*count = 0;
	*too_large = false;
	size_t capacity = 0, offset = 0;
	bool first = true;
	while (first || (stream && !only_space(body + offset, body_length - offset))) {
		json_t *json;
		size_t used = body_length - offset;
		if (only_space(body + offset, body_length - offset)) {
			if (stream)
				break; /* an empty stream body: no request at all */
			json = json_object();
		} else {
			json_error_t error;
			json = json_loadb(body + offset, body_length - offset, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &error);
			if (json == NULL) {
				if (*count > 0)
					break;
				grpc_json_syntax_error(&error, body_length - offset, err, errlen);
				goto failed;
			}
			used = (size_t)error.position;
		}
		first = false;
		size_t length;
		uint8_t *packed = pack_request(route, json, &length, err, errlen);
		json_decref(json);
		if (packed == NULL && *count > 0)
			break;
		if (packed == NULL)
			goto failed;
		if (length > server->config.max_message_bytes) {
			snprintf(err, errlen, "grpc: received message larger than max (%zu vs. %zu)", length,
				server->config.max_message_bytes);
			*too_large = true;
			free(packed);
			goto failed;
		}
		if (*count == capacity) {
			capacity = capacity ? 2 * capacity : 4;
			struct packed_request *grown = realloc(*out, capacity * sizeof **out);
			if (grown == NULL) {
				free(packed);
				snprintf(err, errlen, "out of memory");
				goto failed;
			}
			*out = grown;
		}
		(*out)[(*count)++] = (struct packed_request){ packed, length };
		offset += used;
		if (offset > body_length)
			offset = body_length;
	}
	return 0;
failed:
	free_requests(*out, *count);
	*out = NULL;
	*count = 0;
	return -1;
}

static bool call_alive(struct grpc_server *server, uint64_t call_id)
{
	struct grpc_call *call = grpc_server_find_call(server, call_id);
	return call != NULL && !call->finished;
}

/* Ends a call the service still owns, on the server's account (the body's requests are all answered):
 * the service lets go of it as after a reset, and the stream ends well. */
static void end_answered(struct grpc_call *call)
{
	struct grpc_server *server = call->connection->server;
	if (!call->service_done) {
		call->service_done = true;
		if (call->method->on_close != NULL)
			call->method->on_close(server->config.context, call, true);
	}
	grpc_gateway_finish(call, GRPC_OK, NULL);
}

static void run(struct grpc_call *call, const char *body, size_t body_length);

int grpc_gateway_start(struct grpc_connection *connection, const struct grpc_gateway_route *route,
	const char *body, size_t body_length, const char *authorization, bool close_after)
{
	struct grpc_call *call = grpc_call_new(connection, 0);
	if (call == NULL)
		return -1;
	call->gateway = route;
	call->gateway_close = close_after;
	call->path = strdup(route->method_path);
	call->http_method = strdup("POST");
	if (authorization != NULL) {
		/* grpc-gateway passes Authorization on as the "authorization" metadata etcd reads a token from
		 * (HTTP/2 requests have it among their headers already). */
		struct grpc_header *header = grpc_header_new("authorization", 13, authorization, strlen(authorization));
		if (header != NULL)
			call->headers = header;
	}
	connection->http1_call = call;
	grpc_gateway_run(call, body, body_length);
	return 0;
}

void grpc_gateway_run(struct grpc_call *call, const char *body, size_t body_length)
{
	/* Go's decoder takes bytes that are not UTF-8 as U+FFFD; jansson would refuse the body. */
	size_t fixed_length;
	char *fixed = grpc_json_fix_utf8(body, body_length, &fixed_length);
	if (fixed != NULL) {
		run(call, fixed, fixed_length);
		free(fixed);
	} else {
		run(call, body, body_length);
	}
}

static void run(struct grpc_call *call, const char *body, size_t body_length)
{
	struct grpc_server *server = call->connection->server;
	const struct grpc_gateway_route *route = call->gateway;
	const struct grpc_method *method = method_of(server, route->method_path);
	if (method == NULL) {
		answer_error(call, GRPC_UNIMPLEMENTED, "the method of this path is not served", true, 0);
		return;
	}
	bool stream = method->kind != GRPC_METHOD_UNARY;
	struct packed_request *requests;
	size_t count;
	bool too_large;
	char error[512];
	if (decode_body(server, route, stream, body, body_length, &requests, &count, &too_large, error, sizeof error) != 0) {
		/* A stream's first request that does not decode is a plain error to grpc-gateway: Unknown, 500. */
		int code = too_large ? GRPC_RESOURCE_EXHAUSTED : stream ? GRPC_UNKNOWN : GRPC_INVALID_ARGUMENT;
		answer_error(call, code, error, too_large, 0);
		return;
	}
	call->method = method;
	server->stats.calls_started++;
	uint64_t call_id = call->id;
	for (size_t i = 0; i < count && call_alive(server, call_id); i++) {
		call->messages_delivered++;
		method->on_message(server->config.context, call, requests[i].bytes, requests[i].length);
	}
	free_requests(requests, count);
	if (!call_alive(server, call_id))
		return;
	call->gateway_body_ended = true;
	switch (route->end) {
	case GRPC_GATEWAY_END_HALF_CLOSE:
		call->half_closed_by_client = true;
		if (method->on_close != NULL && !call->service_done)
			method->on_close(server->config.context, call, false);
		break;
	case GRPC_GATEWAY_END_AFTER_ANSWERS:
		if (call->gateway_answers >= call->messages_delivered)
			end_answered(call);
		break;
	case GRPC_GATEWAY_END_CLIENT_GONE:
		break;
	}
}

int grpc_gateway_send(struct grpc_call *call, const uint8_t *message, size_t length)
{
	bool stream = call->method->kind != GRPC_METHOD_UNARY;
	if (!stream && call->gateway_head_written)
		return -1; /* a unary call answers once */
	ProtobufCMessage *response = protobuf_c_message_unpack(call->gateway->response, NULL, length, message);
	if (response == NULL)
		return -1;
	json_t *json = grpc_json_from_message(response);
	protobuf_c_message_free_unpacked(response, NULL);
	if (json != NULL && stream) {
		json_t *wrapped = json_object();
		if (wrapped != NULL && json_object_set_new(wrapped, "result", json) == 0) {
			json = wrapped;
		} else {
			json_decref(wrapped);
			json = NULL;
		}
	}
	size_t text_length = 0;
	char *text = json != NULL ? grpc_json_dump(json, &text_length) : NULL;
	json_decref(json);
	if (text == NULL)
		return -1;
	int result = 0;
	if (!call->gateway_head_written)
		result = out_head(call, 200, stream, true, false, text_length);
	if (result == 0 && stream) {
		/* grpc-gateway writes each message, then a newline, and flushes: one chunk here. */
		text[text_length] = '\n';
		result = out_body(call, text, text_length + 1, true);
	} else if (result == 0) {
		result = out_body(call, text, text_length, false);
	}
	free(text);
	call->gateway_answers++;
	if (call->gateway->end == GRPC_GATEWAY_END_AFTER_ANSWERS && call->gateway_body_ended &&
		call->gateway_answers >= call->messages_delivered)
		end_answered(call);
	return result;
}

void grpc_gateway_finish(struct grpc_call *call, int grpc_status, const char *message)
{
	if (call->finished)
		return;
	const char *text = message != NULL ? message : "";
	bool stream = call->method != NULL && call->method->kind != GRPC_METHOD_UNARY;
	if (!stream) {
		if (grpc_status != GRPC_OK && !call->gateway_head_written) {
			answer_error(call, grpc_status, text, true, 0);
			return;
		}
		end_call(call);
		/* Answered already (a status after the answer has nowhere to go), or an OK without a message. */
		if (!call->gateway_head_written && out_head(call, 200, false, true, false, 2) == 0)
			out_body(call, "{}", 2, false);
		out_end(call, false, false);
		return;
	}
	end_call(call);
	if (grpc_status != GRPC_OK) {
		/* grpc-gateway's stream error: the status line only when nothing was written yet. */
		int http_status = http_status_of(grpc_status);
		if (!call->gateway_head_written)
			out_head(call, http_status, true, true, false, 0);
		json_t *inner = json_object();
		json_object_set_new(inner, "grpc_code", json_integer(grpc_status));
		json_object_set_new(inner, "http_code", json_integer(http_status));
		json_object_set_new(inner, "message", json_string(text));
		json_object_set_new(inner, "http_status", json_string(grpc_http_reason(http_status)));
		json_t *outer = json_object();
		json_object_set_new(outer, "error", inner);
		size_t body_length = 0;
		char *body = grpc_json_dump(outer, &body_length);
		json_decref(outer);
		if (body != NULL)
			out_body(call, body, body_length, true);
		free(body);
	}
	if (!call->gateway_head_written)
		out_head(call, 200, true, true, false, 0);
	out_end(call, true, false);
}

void grpc_gateway_free_ended(struct grpc_connection *connection)
{
	struct grpc_call *call = connection->calls;
	while (call != NULL) {
		struct grpc_call *next = call->connection_next;
		if (call->finished)
			grpc_call_free(call);
		call = next;
	}
}

void grpc_gateway_teardown(struct grpc_connection *connection)
{
	struct grpc_server *server = connection->server;
	connection->http1_call = NULL;
	while (connection->calls != NULL) {
		struct grpc_call *call = connection->calls;
		grpc_server_table_remove(server, call);
		if (call->method != NULL && call->messages_delivered > 0 && !call->service_done) {
			call->service_done = true;
			if (call->method->on_close != NULL)
				call->method->on_close(server->config.context, call, true);
		}
		grpc_call_free(call);
	}
}
