/* control/grpc/grpc_call.c: the call as services see it. Response messages are queued on the call
 * and pulled by nghttp2 through a data provider that defers when the queue is empty and is resumed
 * by the next grpc_call_send or grpc_call_finish; the trailers follow the last queued byte. */
#include "grpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct grpc_call *grpc_call_new(struct grpc_connection *connection, int32_t stream_id)
{
	struct grpc_call *call = calloc(1, sizeof *call);
	if (call == NULL)
		return NULL;
	struct grpc_server *server = connection->server;
	call->id = server->next_call_id++;
	call->connection = connection;
	call->stream_id = stream_id;
	grpc_server_table_insert(server, call);
	call->connection_next = connection->calls;
	if (connection->calls != NULL)
		connection->calls->connection_previous = call;
	connection->calls = call;
	return call;
}

struct grpc_method_counters *grpc_call_counters(const struct grpc_call *call)
{
	const struct grpc_server_config *config = &call->connection->server->config;
	/* JSON gateway calls are not gRPC calls here (etcd's gateway loops back through gRPC and is counted:
	 * a difference the README names). */
	if (call->method == NULL || call->gateway != NULL || config->method_counters == NULL)
		return NULL;
	return &config->method_counters[call->method - config->methods];
}

void grpc_call_count_handled(struct grpc_call *call, int code)
{
	struct grpc_method_counters *counters = grpc_call_counters(call);
	if (counters == NULL || call->handled_counted)
		return;
	call->handled_counted = true;
	if (code < 0 || code >= GRPC_STATUS_CODE_COUNT)
		code = GRPC_UNKNOWN;
	atomic_fetch_add_explicit(&counters->handled[code], 1, memory_order_relaxed);
}

struct grpc_header *grpc_header_new(const char *name, size_t name_length, const char *value, size_t value_length)
{
	/* One allocation per header, its strings behind it: a call keeps a handful, and each was three mallocs
	 * and three frees on every request. grpc_call_free frees the block. */
	struct grpc_header *header = malloc(sizeof *header + name_length + 1 + value_length + 1);
	if (header == NULL)
		return NULL;
	header->next = NULL;
	header->name = (char *)(header + 1);
	memcpy(header->name, name, name_length);
	header->name[name_length] = '\0';
	header->value = header->name + name_length + 1;
	memcpy(header->value, value, value_length);
	header->value[value_length] = '\0';
	return header;
}

void grpc_call_free(struct grpc_call *call)
{
	struct grpc_connection *connection = call->connection;
	/* Gone before it was finished: the client cancelled it (a reset, or its connection closed). */
	grpc_call_count_handled(call, GRPC_CANCELLED);
	if (call->connection_previous != NULL)
		call->connection_previous->connection_next = call->connection_next;
	else
		connection->calls = call->connection_next;
	if (call->connection_next != NULL)
		call->connection_next->connection_previous = call->connection_previous;
	while (call->headers != NULL) {
		struct grpc_header *header = call->headers;
		call->headers = header->next;
		free(header); /* its strings live in the same block */
	}
	free(call->path);
	free(call->http_method);
	free(call->message);
	free(call->grpc_message);
	grpc_buffer_free(&call->output);
	grpc_buffer_free(&call->gateway_body);
	free(call);
}

/* The gRPC spec's percent-encoding of grpc-message: printable ASCII except '%' stays. */
void grpc_percent_encode(const char *text, char *out, size_t out_size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t used = 0;
	for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
		bool plain = *c >= 0x20 && *c <= 0x7E && *c != '%';
		size_t need = plain ? 1 : 3;
		if (used + need >= out_size)
			break;
		if (plain) {
			out[used++] = (char)*c;
		} else {
			out[used++] = '%';
			out[used++] = hex[*c >> 4];
			out[used++] = hex[*c & 15];
		}
	}
	if (out_size > 0)
		out[used] = '\0';
}

static void submit_trailers(nghttp2_session *session, struct grpc_call *call)
{
	char status[16];
	snprintf(status, sizeof status, "%d", call->grpc_status);
	nghttp2_nv trailers[] = {
		{ (uint8_t *)"grpc-status", (uint8_t *)status, 11, strlen(status), NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"grpc-message", (uint8_t *)call->grpc_message, 12, strlen(call->grpc_message),
			NGHTTP2_NV_FLAG_NONE },
	};
	nghttp2_submit_trailer(session, call->stream_id, trailers, call->grpc_message[0] != '\0' ? 2 : 1);
}

static ssize_t read_response(nghttp2_session *session, int32_t stream_id, uint8_t *buffer, size_t length,
	uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	(void)stream_id;
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
		/* The trailers end the stream, not the last DATA frame. */
		*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		submit_trailers(session, call);
	}
	return (ssize_t)take;
}

static int submit_headers(struct grpc_call *call)
{
	nghttp2_nv headers[] = {
		{ (uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE },
	};
	nghttp2_data_provider provider = { .source.ptr = call, .read_callback = read_response };
	if (nghttp2_submit_response(call->connection->session, call->stream_id, headers, 2, &provider) != 0)
		return -1;
	call->headers_submitted = true;
	return 0;
}

static void resume(struct grpc_call *call)
{
	if (call->data_deferred) {
		call->data_deferred = false;
		nghttp2_session_resume_data(call->connection->session, call->stream_id);
	}
	grpc_connection_mark_dirty(call->connection);
}

static void finish_submit(struct grpc_call *call, int http_status, int grpc_status, const char *message)
{
	char encoded[1024];
	grpc_percent_encode(message != NULL ? message : "", encoded, sizeof encoded);
	call->finished = true;
	call->discarding = true;
	call->grpc_status = grpc_status;
	call->grpc_message = strdup(encoded);
	if (call->grpc_message == NULL) {
		nghttp2_submit_rst_stream(call->connection->session, NGHTTP2_FLAG_NONE, call->stream_id,
			NGHTTP2_INTERNAL_ERROR);
		grpc_connection_mark_dirty(call->connection);
		return;
	}
	if (call->headers_submitted) {
		resume(call);
		return;
	}
	/* Nothing was sent yet: a trailers-only response (one HEADERS frame ending the stream). */
	char http_status_text[16], grpc_status_text[16];
	snprintf(http_status_text, sizeof http_status_text, "%d", http_status);
	snprintf(grpc_status_text, sizeof grpc_status_text, "%d", grpc_status);
	nghttp2_nv headers[] = {
		{ (uint8_t *)":status", (uint8_t *)http_status_text, 7, strlen(http_status_text), NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"grpc-status", (uint8_t *)grpc_status_text, 11, strlen(grpc_status_text),
			NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"grpc-message", (uint8_t *)call->grpc_message, 12, strlen(call->grpc_message),
			NGHTTP2_NV_FLAG_NONE },
	};
	call->headers_submitted = true;
	nghttp2_submit_response(call->connection->session, call->stream_id, headers,
		call->grpc_message[0] != '\0' ? 4 : 3, NULL);
	grpc_connection_mark_dirty(call->connection);
}

/* A plain HTTP response's body: no trailers, the last DATA frame ends the stream. */
static ssize_t read_http_body(nghttp2_session *session, int32_t stream_id, uint8_t *buffer, size_t length,
	uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	(void)session;
	(void)stream_id;
	(void)user_data;
	struct grpc_call *call = source->ptr;
	size_t available = grpc_buffer_length(&call->output);
	size_t take = available < length ? available : length;
	if (take > 0) {
		memcpy(buffer, call->output.data + call->output.start, take);
		grpc_buffer_consume(&call->output, take);
	}
	if (grpc_buffer_length(&call->output) == 0)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)take;
}

void grpc_call_respond_http(struct grpc_call *call, const struct grpc_http_answer *answer, bool head_only)
{
	call->finished = true;
	call->service_done = true;
	call->discarding = true;
	char status[16], content_length[24];
	snprintf(status, sizeof status, "%d", answer->status);
	snprintf(content_length, sizeof content_length, "%zu", answer->body_length);
	const char *content_type = answer->content_type != NULL ? answer->content_type : "text/plain; charset=utf-8";
	nghttp2_nv headers[] = {
		{ (uint8_t *)":status", (uint8_t *)status, 7, strlen(status), NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"content-type", (uint8_t *)content_type, 12, strlen(content_type), NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"content-length", (uint8_t *)content_length, 14, strlen(content_length), NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"allow", (uint8_t *)"GET", 5, 3, NGHTTP2_NV_FLAG_NONE },
	};
	bool with_body = !head_only && answer->body_length > 0 &&
		grpc_buffer_append(&call->output, answer->body, answer->body_length) == 0;
	nghttp2_data_provider provider = { .source.ptr = call, .read_callback = read_http_body };
	call->headers_submitted = true;
	nghttp2_submit_response(call->connection->session, call->stream_id, headers, answer->allow_get ? 4 : 3,
		with_body ? &provider : NULL);
	grpc_connection_mark_dirty(call->connection);
}

void grpc_call_finish_internal(struct grpc_call *call, int http_status, int grpc_status, const char *message)
{
	if (call->finished || call->connection->closed)
		return;
	/* A service that already has the call (a bidi stream broken mid-way) must let go of it. */
	if (call->method != NULL && call->messages_delivered > 0 && !call->service_done) {
		grpc_server_table_remove(call->connection->server, call);
		call->service_done = true;
		if (call->method->on_close != NULL)
			call->method->on_close(call->connection->server->config.context, call, true);
	}
	call->service_done = true;
	grpc_call_count_handled(call, grpc_status);
	if (call->gateway != NULL) {
		grpc_gateway_finish(call, grpc_status, message);
		return;
	}
	finish_submit(call, http_status, grpc_status, message);
}

/* ---- the service's side ---- */

uint64_t grpc_call_id(const struct grpc_call *call)
{
	return call->id;
}

const char *grpc_call_path(const struct grpc_call *call)
{
	return call->path != NULL ? call->path : "";
}

const char *grpc_call_header(const struct grpc_call *call, const char *name)
{
	for (const struct grpc_header *header = call->headers; header != NULL; header = header->next)
		if (strcmp(header->name, name) == 0)
			return header->value;
	return NULL;
}

bool grpc_call_peer_common_name(const struct grpc_call *call, char *out, size_t size)
{
	/* etcd's gateway calls its own gRPC server: the client's certificate never reaches the call. */
	return call->connection != NULL && call->gateway == NULL && grpc_tls_peer_common_name(call->connection, out, size);
}

void grpc_call_set_user(struct grpc_call *call, void *user)
{
	call->user = user;
}

void *grpc_call_user(const struct grpc_call *call)
{
	return call->user;
}

int grpc_call_send(struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (call == NULL || call->finished || !call->in_table || call->connection->closed || length > UINT32_MAX)
		return -1;
	if (call->gateway != NULL)
		return grpc_gateway_send(call, message, length);
	uint8_t prefix[5] = { 0, (uint8_t)(length >> 24), (uint8_t)(length >> 16), (uint8_t)(length >> 8),
		(uint8_t)length };
	/* Sized to the answer: a call's output is usually one small message, and a default-sized buffer
	 * (4 KiB, past malloc's per-thread cache) cost more than the answer itself. */
	if (grpc_buffer_reserve(&call->output, 5 + length) != 0 || grpc_buffer_append(&call->output, prefix, 5) != 0)
		return -1;
	if (grpc_buffer_append(&call->output, message, length) != 0) {
		/* A failed append changes nothing: only the prefix is to take back. */
		call->output.end -= 5;
		if (call->output.end == call->output.start)
			call->output.start = call->output.end = 0;
		return -1;
	}
	struct grpc_method_counters *counters = grpc_call_counters(call);
	if (counters != NULL) {
		atomic_fetch_add_explicit(&counters->messages_sent, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&counters->message_bytes_sent, length, memory_order_relaxed);
	}
	if (!call->headers_submitted) {
		if (submit_headers(call) != 0)
			return -1;
		grpc_connection_mark_dirty(call->connection);
		return 0;
	}
	resume(call);
	return 0;
}

size_t grpc_call_pending_bytes(const struct grpc_call *call)
{
	if (call != NULL && call->gateway != NULL && call->connection->mode == GRPC_MODE_HTTP1)
		return grpc_connection_pending_output(call->connection);
	return call != NULL ? grpc_buffer_length(&call->output) : 0;
}

void grpc_call_finish(struct grpc_call *call, int grpc_status, const char *message)
{
	if (call == NULL || call->finished || !call->in_table || call->connection->closed)
		return;
	call->service_done = true;
	grpc_call_count_handled(call, grpc_status);
	if (call->gateway != NULL) {
		grpc_gateway_finish(call, grpc_status, message);
		return;
	}
	finish_submit(call, 200, grpc_status, message);
}
