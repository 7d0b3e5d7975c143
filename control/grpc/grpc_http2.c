/* control/grpc/grpc_http2.c: one HTTP/2 server session per connection (nghttp2), and the gRPC rules
 * on top of it: a request is routed when its headers are complete, its length-prefixed messages are
 * reassembled across DATA frames and handed to the service whole, and the service hears of the
 * client's half-close or reset. Nothing here touches the socket: nghttp2 is fed with mem_recv and
 * drained with mem_send by grpc_server.c. */
#include "alloc.h"
#include "grpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Large windows: etcd requests reach 2 MiB and snapshots stream for long; a 64 KiB window would
 * make throughput a function of the round-trip time. Received data counts as consumed at once
 * (nghttp2's automatic window updates), so the windows are a credit, not memory we reserve; what
 * a call buffers is at most one partial message, bounded by max_message_bytes. */
#define STREAM_WINDOW (2 * 1024 * 1024)
#define CONNECTION_WINDOW (16 * 1024 * 1024)

static struct grpc_call *stream_call(nghttp2_session *session, int32_t stream_id)
{
	return nghttp2_session_get_stream_user_data(session, stream_id);
}

static void service_close(struct grpc_call *call, bool cancelled)
{
	struct grpc_server *server = call->connection->server;
	/* After a half-close the service still owns the call and must finish it. */
	if (cancelled)
		call->service_done = true;
	if (call->method->on_close != NULL)
		call->method->on_close(server->config.context, call, cancelled);
}

/* The client half-closed: a partial message or a missing unary request is the client's fault,
 * otherwise the service learns it will get no more. */
static void client_half_closed(struct grpc_call *call)
{
	call->half_closed_by_client = true;
	if (call->gateway != NULL && call->method == NULL && !call->finished) {
		/* A gateway request's body is complete. */
		struct grpc_buffer body = call->gateway_body;
		memset(&call->gateway_body, 0, sizeof call->gateway_body);
		grpc_gateway_run(call, body.data != NULL ? (const char *)body.data + body.start : "", grpc_buffer_length(&body));
		grpc_buffer_free(&body);
		return;
	}
	if (call->service_done || call->method == NULL)
		return;
	if (call->prefix_have > 0) {
		grpc_call_finish_internal(call, 200, GRPC_INTERNAL, "grpc: client half-closed in the middle of a message");
		return;
	}
	if (call->method->kind != GRPC_METHOD_BIDI_STREAM && call->messages_delivered == 0) {
		grpc_call_finish_internal(call, 200, GRPC_INTERNAL,
			"grpc: cardinality violation: received no request message from stream");
		return;
	}
	service_close(call, false);
}

/* grpc-go's words for a path no method has. */
static void finish_unimplemented(struct grpc_call *call)
{
	struct grpc_server *server = call->connection->server;
	const char *path = call->path != NULL ? call->path : "";
	char message[512];
	const char *service_start = path[0] == '/' ? path + 1 : path;
	const char *slash = strrchr(service_start, '/');
	if (path[0] != '/' || slash == NULL) {
		snprintf(message, sizeof message, "malformed method name: \"%s\"", path);
	} else {
		size_t service_length = (size_t)(slash - path) + 1; /* "/service/" */
		bool service_known = false;
		for (size_t i = 0; i < server->config.method_count && !service_known; i++)
			service_known = strncmp(server->config.methods[i].path, path, service_length) == 0;
		if (service_known)
			snprintf(message, sizeof message, "unknown method %s for service %.*s", slash + 1,
				(int)(slash - service_start), service_start);
		else
			snprintf(message, sizeof message, "unknown service %.*s", (int)(slash - service_start),
				service_start);
	}
	server->stats.calls_unimplemented++;
	grpc_call_finish_internal(call, 200, GRPC_UNIMPLEMENTED, message);
}

/* etcd's TLS port hands every HTTP/2 request without a gRPC content-type to its HTTP handlers
 * (grpcHandlerFunc): curl's HTTP/2 GET /health gets the same answer as an HTTP/1.1 one. */
static void answer_http(struct grpc_call *call)
{
	struct grpc_server *server = call->connection->server;
	const char *target = call->path != NULL ? call->path : "/";
	size_t path_length = strcspn(target, "?");
	char *path = xstrndup(target, path_length);
	const char *method = call->http_method != NULL ? call->http_method : "";
	struct grpc_http_answer answer;
	grpc_http_answer(server, method, path, &answer);
	free(path);
	server->stats.http_requests++;
	grpc_call_respond_http(call, &answer, strcmp(method, "HEAD") == 0);
	grpc_http_answer_free(&answer);
}

/* A JSON gateway request over HTTP/2 (a TLS client that chose h2, as curl does): a POST to a route is
 * a gateway call whose body is collected until the stream's end; under a prefix, another method or path
 * is grpc-gateway's 405 or 404. False: not the gateway's. */
static bool route_gateway(struct grpc_call *call)
{
	struct grpc_server *server = call->connection->server;
	const char *target = call->path != NULL ? call->path : "/";
	char *path = xstrndup(target, strcspn(target, "?"));
	bool under_prefix;
	const struct grpc_gateway_route *gateway = grpc_gateway_find(server, path, &under_prefix);
	free(path);
	if (!under_prefix)
		return false;
	server->stats.http_requests++;
	if (gateway != NULL && call->http_method != NULL && strcmp(call->http_method, "POST") == 0) {
		call->gateway = gateway;
		return true;
	}
	static const char method_not_allowed[] = "Method Not Allowed\n", not_found[] = "Not Found\n";
	struct grpc_http_answer answer = {
		.status = gateway != NULL ? 405 : 404,
		.body = gateway != NULL ? method_not_allowed : not_found,
		.body_length = gateway != NULL ? sizeof method_not_allowed - 1 : sizeof not_found - 1,
	};
	grpc_call_respond_http(call, &answer, false);
	return true;
}

static void route(struct grpc_call *call)
{
	struct grpc_server *server = call->connection->server;
	const char *content_type = grpc_call_header(call, "content-type");
	if (call->connection->tls != NULL && (content_type == NULL || strstr(content_type, "application/grpc") == NULL)) {
		if (!route_gateway(call))
			answer_http(call);
		return;
	}
	if (call->http_method == NULL || strcmp(call->http_method, "POST") != 0) {
		grpc_call_finish_internal(call, 405, GRPC_INTERNAL, "gRPC requires method POST");
		return;
	}
	if (content_type == NULL || strncmp(content_type, "application/grpc", 16) != 0 ||
		(content_type[16] != '\0' && content_type[16] != '+' && content_type[16] != ';')) {
		char message[256];
		snprintf(message, sizeof message, "invalid gRPC request content-type \"%s\"",
			content_type != NULL ? content_type : "");
		grpc_call_finish_internal(call, 415, GRPC_INTERNAL, message);
		return;
	}
	for (size_t i = 0; i < server->config.method_count; i++) {
		if (call->path != NULL && strcmp(server->config.methods[i].path, call->path) == 0) {
			call->method = &server->config.methods[i];
			server->stats.calls_started++;
			struct grpc_method_counters *counters = grpc_call_counters(call);
			if (counters != NULL)
				atomic_fetch_add_explicit(&counters->started, 1, memory_order_relaxed);
			if (call->deadline_ms != 0)
				grpc_server_track_deadline(server, call);
			return;
		}
	}
	finish_unimplemented(call);
}

static void deliver(struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (call->service_done || call->method == NULL)
		return;
	if (call->method->kind != GRPC_METHOD_BIDI_STREAM && call->messages_delivered > 0) {
		grpc_call_finish_internal(call, 200, GRPC_INTERNAL,
			"grpc: cardinality violation: expected <EOF> for non client-streaming RPCs, but received another message");
		return;
	}
	call->messages_delivered++;
	struct grpc_method_counters *counters = grpc_call_counters(call);
	if (counters != NULL) {
		atomic_fetch_add_explicit(&counters->messages_received, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&counters->message_bytes_received, length, memory_order_relaxed);
	}
	call->method->on_message(call->connection->server->config.context, call, message, length);
}

static void reset_reassembly(struct grpc_call *call)
{
	free(call->message);
	call->message = NULL;
	call->message_length = call->message_have = 0;
	call->prefix_have = 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
	size_t length, void *user_data)
{
	(void)flags;
	struct grpc_connection *connection = user_data;
	struct grpc_call *call = stream_call(session, stream_id);
	if (connection->closed || call == NULL)
		return 0;
	size_t max = connection->server->config.max_message_bytes;
	if (call->gateway != NULL && call->method == NULL && !call->finished) {
		size_t limit = grpc_gateway_body_limit(connection->server);
		size_t have = grpc_buffer_length(&call->gateway_body);
		if (have + length > limit)
			grpc_gateway_refuse_body(call, have + length);
		else if (grpc_buffer_append(&call->gateway_body, data, length) != 0)
			grpc_gateway_refuse_body(call, have + length);
		return 0;
	}
	while (length > 0 && !call->discarding && call->method != NULL) {
		if (call->prefix_have < 5) {
			size_t take = 5 - call->prefix_have < length ? 5 - call->prefix_have : length;
			memcpy(call->prefix + call->prefix_have, data, take);
			call->prefix_have += take;
			data += take;
			length -= take;
			if (call->prefix_have < 5)
				break;
			size_t message_length = (size_t)call->prefix[1] << 24 | (size_t)call->prefix[2] << 16 |
				(size_t)call->prefix[3] << 8 | (size_t)call->prefix[4];
			if (call->prefix[0] & 1) {
				/* We announce no grpc-encoding, so a conforming client never compresses. */
				char message[256];
				const char *encoding = grpc_call_header(call, "grpc-encoding");
				snprintf(message, sizeof message, "grpc: Decompressor is not installed for grpc-encoding \"%s\"",
					encoding != NULL ? encoding : "");
				grpc_call_finish_internal(call, 200, GRPC_UNIMPLEMENTED, message);
				break;
			}
			if (message_length > max) {
				char message[256];
				snprintf(message, sizeof message, "grpc: received message larger than max (%zu vs. %zu)",
					message_length, max);
				grpc_call_finish_internal(call, 200, GRPC_RESOURCE_EXHAUSTED, message);
				break;
			}
			call->message_length = message_length;
			call->message_have = 0;
			if (message_length <= length) {
				/* The whole message is in this chunk: no copy. */
				call->prefix_have = 0;
				const uint8_t *message = data;
				data += message_length;
				length -= message_length;
				deliver(call, message, message_length);
				continue;
			}
			call->message = malloc(message_length);
			if (call->message == NULL) {
				grpc_call_finish_internal(call, 200, GRPC_RESOURCE_EXHAUSTED, "grpc: out of memory for the request message");
				break;
			}
			continue;
		}
		size_t take = call->message_length - call->message_have;
		if (take > length)
			take = length;
		memcpy(call->message + call->message_have, data, take);
		call->message_have += take;
		data += take;
		length -= take;
		if (call->message_have == call->message_length) {
			uint8_t *message = call->message;
			size_t message_length = call->message_length;
			call->message = NULL;
			reset_reassembly(call);
			deliver(call, message, message_length);
			free(message);
		}
	}
	if (call->discarding)
		reset_reassembly(call);
	return 0;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct grpc_connection *connection = user_data;
	if (connection->closed || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct grpc_call *call = grpc_call_new(connection, frame->hd.stream_id);
	if (call == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
	nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
	return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t name_length,
	const uint8_t *value, size_t value_length, uint8_t flags, void *user_data)
{
	(void)flags;
	struct grpc_connection *connection = user_data;
	if (connection->closed || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* request trailers carry nothing gRPC uses */
	struct grpc_call *call = stream_call(session, frame->hd.stream_id);
	if (call == NULL)
		return 0;
	call->header_bytes += name_length + value_length + 32;
	if (call->header_bytes > GRPC_MAX_HEADER_BYTES)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (name_length == 5 && memcmp(name, ":path", 5) == 0) {
		free(call->path);
		call->path = strndup((const char *)value, value_length);
		return call->path != NULL ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	if (name_length == 7 && memcmp(name, ":method", 7) == 0) {
		free(call->http_method);
		call->http_method = strndup((const char *)value, value_length);
		return call->http_method != NULL ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	if (name_length > 0 && name[0] == ':')
		return 0;
	/* The client's deadline bounds the call here too, as in grpc-go: a request nobody can answer in
	 * time (a lost leader) is ended instead of waiting for ever. */
	if (name_length == 12 && memcmp(name, "grpc-timeout", 12) == 0) {
		char text[16];
		uint64_t milliseconds;
		if (value_length < sizeof text) {
			memcpy(text, value, value_length);
			text[value_length] = '\0';
			if (grpc_parse_timeout(text, &milliseconds))
				call->deadline_ms = grpc_now_ms() + milliseconds;
		}
	}
	struct grpc_header *header = grpc_header_new((const char *)name, name_length, (const char *)value, value_length);
	if (header == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	header->next = call->headers;
	call->headers = header;
	return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct grpc_connection *connection = user_data;
	if (connection->closed)
		return 0;
	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	struct grpc_call *call = stream_call(session, frame->hd.stream_id);
	if (call == NULL)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
		route(call);
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
		client_half_closed(call);
	return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct grpc_connection *connection = user_data;
	if (connection->closed)
		return 0;
	if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
		connection->bad_input = true;
		return 0;
	}
	if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	struct grpc_call *call = stream_call(session, frame->hd.stream_id);
	if (call == NULL)
		return 0;
	/* The trailers are written: the call is over, late answers must not find it. */
	grpc_server_table_remove(connection->server, call);
	/* The client is still sending (a bidi stream we ended, a request we refused): tell it to stop,
	 * as grpc-go does, instead of reading the rest. */
	if (nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0)
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
	(void)error_code;
	struct grpc_connection *connection = user_data;
	struct grpc_call *call = stream_call(session, stream_id);
	if (connection->closed || call == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(session, stream_id, NULL);
	grpc_server_table_remove(connection->server, call);
	/* Closed before the service finished: a reset (or our own refusal) cancelled the call. */
	if (call->method != NULL && call->messages_delivered > 0 && !call->service_done)
		service_close(call, true);
	grpc_call_free(call);
	return 0;
}

/* The callbacks and options are the same for every connection: made once per server (10,000 clients
 * connecting at once each paid for a dozen allocations here). */
static int prepare_session_setup(struct grpc_server *server, char *err, size_t errlen)
{
	if (server->http2_callbacks != NULL)
		return 0;
	nghttp2_session_callbacks *callbacks;
	if (nghttp2_session_callbacks_new(&callbacks) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
	/* etcd's clientv3 dials its maintenance calls (Status, HashKV, Defragment, MoveLeader) with the
	 * endpoint URL itself as :authority ("http://127.0.0.1:2379"), which nghttp2's HTTP checks reset as a
	 * PROTOCOL_ERROR; grpc-go accepts it. The gRPC layer checks :path and content-type itself. */
	nghttp2_option *option;
	if (nghttp2_option_new(&option) != 0) {
		nghttp2_session_callbacks_del(callbacks);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	nghttp2_option_set_no_http_messaging(option, 1);
	/* nghttp2 keeps closed streams for RFC 7540's priority tree, as many as SETTINGS_MAX_CONCURRENT_STREAMS,
	 * which is etcd's 2^32 - 1 by default: every call ever made on a connection stayed in memory (some 250 B
	 * each; a client's 500,000 puts on its connections grew the member by 150 MiB). gRPC has no priorities. */
	nghttp2_option_set_no_closed_streams(option, 1);
	server->http2_callbacks = callbacks;
	server->http2_option = option;
	return 0;
}

void grpc_http2_release_setup(struct grpc_server *server)
{
	nghttp2_session_callbacks_del(server->http2_callbacks);
	nghttp2_option_del(server->http2_option);
	server->http2_callbacks = NULL;
	server->http2_option = NULL;
}

int grpc_http2_start(struct grpc_connection *connection, char *err, size_t errlen)
{
	if (prepare_session_setup(connection->server, err, errlen) != 0)
		return -1;
	int result = nghttp2_session_server_new2(&connection->session, connection->server->http2_callbacks, connection,
		connection->server->http2_option);
	if (result != 0) {
		connection->session = NULL;
		snprintf(err, errlen, "nghttp2_session_server_new: %s", nghttp2_strerror(result));
		return -1;
	}
	const nghttp2_settings_entry settings[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, connection->server->config.max_concurrent_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, GRPC_MAX_HEADER_BYTES },
	};
	result = nghttp2_submit_settings(connection->session, NGHTTP2_FLAG_NONE, settings,
		sizeof settings / sizeof settings[0]);
	if (result == 0)
		result = nghttp2_session_set_local_window_size(connection->session, NGHTTP2_FLAG_NONE, 0,
			CONNECTION_WINDOW);
	if (result != 0) {
		snprintf(err, errlen, "nghttp2 settings: %s", nghttp2_strerror(result));
		nghttp2_session_del(connection->session);
		connection->session = NULL;
		return -1;
	}
	return 0;
}

int grpc_http2_receive(struct grpc_connection *connection, const uint8_t *bytes, size_t length)
{
	ssize_t used = nghttp2_session_mem_recv(connection->session, bytes, length);
	return used < 0 ? -1 : 0;
}

int grpc_http2_fill_output(struct grpc_connection *connection)
{
	while (grpc_buffer_length(&connection->output) < GRPC_OUTPUT_HIGH_WATER) {
		const uint8_t *bytes;
		ssize_t length = nghttp2_session_mem_send(connection->session, &bytes);
		if (length < 0)
			return -1;
		if (length == 0)
			break;
		if (grpc_buffer_append(&connection->output, bytes, (size_t)length) != 0)
			return -1;
	}
	return 0;
}

bool grpc_http2_finished(const struct grpc_connection *connection)
{
	return !nghttp2_session_want_read(connection->session) && !nghttp2_session_want_write(connection->session);
}

void grpc_http2_teardown(struct grpc_connection *connection)
{
	struct grpc_server *server = connection->server;
	while (connection->calls != NULL) {
		struct grpc_call *call = connection->calls;
		grpc_server_table_remove(server, call);
		if (call->method != NULL && call->messages_delivered > 0 && !call->service_done)
			service_close(call, true);
		grpc_call_free(call);
	}
	/* nghttp2_session_del calls no callbacks, and every stream's user data is freed above. */
	nghttp2_session_del(connection->session);
	connection->session = NULL;
}
