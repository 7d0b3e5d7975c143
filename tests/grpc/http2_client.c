/* tests/grpc/http2_client.c: see http2_client.h. */
#include "http2_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

static void append(uint8_t **data, size_t *length, size_t *capacity, const void *bytes, size_t count)
{
	if (*length + count > *capacity) {
		size_t grown = *capacity ? *capacity : 1024;
		while (grown < *length + count)
			grown *= 2;
		*data = realloc(*data, grown);
		if (*data == NULL) {
			perror("realloc");
			abort();
		}
		*capacity = grown;
	}
	if (count > 0)
		memcpy(*data + *length, bytes, count);
	*length += count;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t name_length,
	const uint8_t *value, size_t value_length, uint8_t flags, void *user_data)
{
	(void)flags;
	(void)user_data;
	struct client_stream *stream = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (stream == NULL)
		return 0;
	if (name_length == 7 && memcmp(name, ":status", 7) == 0)
		stream->http_status = atoi((const char *)value);
	else if (name_length == 11 && memcmp(name, "grpc-status", 11) == 0)
		stream->grpc_status = atoi((const char *)value);
	else if (name_length == 12 && memcmp(name, "grpc-message", 12) == 0)
		snprintf(stream->grpc_message, sizeof stream->grpc_message, "%.*s", (int)value_length, value);
	return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t length,
	void *user_data)
{
	(void)flags;
	(void)user_data;
	struct client_stream *stream = nghttp2_session_get_stream_user_data(session, stream_id);
	if (stream != NULL)
		append(&stream->received, &stream->received_length, &stream->received_capacity, data, length);
	return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	(void)session;
	struct client *client = user_data;
	if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK))
		client->settings_received = true;
	if (frame->hd.type == NGHTTP2_GOAWAY)
		client->goaway_received = true;
	if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK))
		client->ping_acks++;
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
	(void)user_data;
	struct client_stream *stream = nghttp2_session_get_stream_user_data(session, stream_id);
	if (stream != NULL) {
		stream->closed = true;
		stream->close_error = error_code;
	}
	return 0;
}

static ssize_t read_request(nghttp2_session *session, int32_t stream_id, uint8_t *buffer, size_t length,
	uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	(void)session;
	(void)stream_id;
	(void)user_data;
	struct client_stream *stream = source->ptr;
	size_t available = stream->send_length - stream->send_offset;
	if (available == 0 && !stream->send_end) {
		stream->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	size_t take = available < length ? available : length;
	memcpy(buffer, stream->send + stream->send_offset, take);
	stream->send_offset += take;
	if (stream->send_end && stream->send_offset == stream->send_length)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)take;
}

static bool settings_arrived(void *argument)
{
	return ((struct client *)argument)->settings_received;
}

/* Drives the TLS handshake on the non-blocking socket; false on failure or after 5 s. */
static bool tls_handshake(struct client *client)
{
	uint64_t deadline = now_ms() + 5000;
	while (now_ms() < deadline) {
		int result = SSL_do_handshake(client->tls);
		if (result == 1)
			return true;
		int reason = SSL_get_error(client->tls, result);
		if (reason != SSL_ERROR_WANT_READ && reason != SSL_ERROR_WANT_WRITE)
			return false;
		struct pollfd poll_fd = { .fd = client->fd, .events = reason == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT };
		poll(&poll_fd, 1, 20);
	}
	return false;
}

static struct client *open_client(int port, SSL_CTX *tls_context, uint32_t window_size, bool large_connection_window)
{
	struct client *client = calloc(1, sizeof *client);
	client->read_chunk = 65536;
	client->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(client->fd, (struct sockaddr *)&address, sizeof address) != 0) {
		perror("connect");
		close(client->fd);
		free(client);
		return NULL;
	}
	int one = 1;
	setsockopt(client->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	fcntl(client->fd, F_SETFL, fcntl(client->fd, F_GETFL) | O_NONBLOCK);
	if (tls_context != NULL) {
		client->tls = SSL_new(tls_context);
		SSL_set_fd(client->tls, client->fd);
		SSL_set_connect_state(client->tls);
		/* The pump writes from a buffer it moves between tries. */
		SSL_set_mode(client->tls, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
		if (!tls_handshake(client)) {
			client_close(client);
			return NULL;
		}
	}

	nghttp2_session_callbacks *callbacks;
	nghttp2_session_callbacks_new(&callbacks);
	nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
	nghttp2_session_client_new(&client->session, callbacks, client);
	nghttp2_session_callbacks_del(callbacks);
	nghttp2_settings_entry settings[] = {
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window_size },
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000 },
	};
	nghttp2_submit_settings(client->session, NGHTTP2_FLAG_NONE, settings, 2);
	if (large_connection_window)
		nghttp2_session_set_local_window_size(client->session, NGHTTP2_FLAG_NONE, 0, 64 * 1024 * 1024);
	if (!client_pump(client, settings_arrived, client, 5000)) {
		fprintf(stderr, "client_open: no SETTINGS from the server\n");
		client_close(client);
		return NULL;
	}
	return client;
}

struct client *client_open(int port, uint32_t window_size, bool large_connection_window)
{
	return open_client(port, NULL, window_size, large_connection_window);
}

struct client *client_open_tls(int port, SSL_CTX *tls_context, uint32_t window_size, bool large_connection_window)
{
	return open_client(port, tls_context, window_size, large_connection_window);
}

void client_close(struct client *client)
{
	if (client == NULL)
		return;
	nghttp2_session_del(client->session);
	SSL_free(client->tls);
	close(client->fd);
	free(client->output);
	free(client);
}

void client_stream_init(struct client_stream *stream)
{
	memset(stream, 0, sizeof *stream);
	stream->grpc_status = -1;
}

void client_stream_free(struct client_stream *stream)
{
	free(stream->send);
	free(stream->received);
	client_stream_init(stream);
}

int client_stream_start(struct client *client, struct client_stream *stream, const char *path)
{
	return client_stream_start_typed(client, stream, path, "application/grpc");
}

static int start_stream(struct client *client, struct client_stream *stream, const char *path,
	const char *content_type, const char *timeout)
{
	nghttp2_nv headers[] = {
		{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)":authority", (uint8_t *)"127.0.0.1", 10, 9, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"content-type", (uint8_t *)content_type, 12, strlen(content_type), NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"te", (uint8_t *)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"x-test-header", (uint8_t *)"seen", 13, 4, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"grpc-timeout", (uint8_t *)timeout, 12, timeout != NULL ? strlen(timeout) : 0,
			NGHTTP2_NV_FLAG_NONE },
	};
	size_t count = sizeof headers / sizeof headers[0] - (timeout == NULL ? 1 : 0);
	nghttp2_data_provider provider = { .source.ptr = stream, .read_callback = read_request };
	stream->id = nghttp2_submit_request(client->session, NULL, headers, count, &provider, stream);
	return stream->id > 0 ? 0 : -1;
}

int client_stream_start_typed(struct client *client, struct client_stream *stream, const char *path,
	const char *content_type)
{
	return start_stream(client, stream, path, content_type, NULL);
}

int client_stream_start_with_timeout(struct client *client, struct client_stream *stream, const char *path,
	const char *timeout)
{
	return start_stream(client, stream, path, "application/grpc", timeout);
}

void client_stream_write(struct client *client, struct client_stream *stream, const uint8_t *message, size_t length,
	bool end)
{
	uint8_t prefix[5] = { 0, (uint8_t)(length >> 24), (uint8_t)(length >> 16), (uint8_t)(length >> 8),
		(uint8_t)length };
	append(&stream->send, &stream->send_length, &stream->send_capacity, prefix, 5);
	append(&stream->send, &stream->send_length, &stream->send_capacity, message, length);
	stream->send_end = end;
	if (stream->deferred && stream->id > 0) {
		stream->deferred = false;
		nghttp2_session_resume_data(client->session, stream->id);
	}
}

size_t client_stream_message_count(const struct client_stream *stream)
{
	size_t count = 0;
	const uint8_t *message;
	size_t length;
	while (client_stream_message(stream, count, &message, &length))
		count++;
	return count;
}

bool client_stream_message(const struct client_stream *stream, size_t index, const uint8_t **message, size_t *length)
{
	size_t offset = 0;
	for (size_t i = 0;; i++) {
		if (offset + 5 > stream->received_length)
			return false;
		const uint8_t *prefix = stream->received + offset;
		size_t size = (size_t)prefix[1] << 24 | (size_t)prefix[2] << 16 | (size_t)prefix[3] << 8 | prefix[4];
		if (offset + 5 + size > stream->received_length)
			return false;
		if (i == index) {
			*message = prefix + 5;
			*length = size;
			return true;
		}
		offset += 5 + size;
	}
}

bool client_stream_is_closed(void *stream)
{
	return ((struct client_stream *)stream)->closed;
}

bool client_pump(struct client *client, bool (*done)(void *argument), void *argument, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	uint8_t *buffer = malloc(client->read_chunk);
	bool result = false;
	for (;;) {
		if (done(argument)) {
			result = true;
			break;
		}
		if (client->eof || now_ms() > deadline)
			break;
		for (;;) {
			const uint8_t *bytes;
			ssize_t length = nghttp2_session_mem_send(client->session, &bytes);
			if (length <= 0)
				break;
			append(&client->output, &client->output_length, &client->output_capacity, bytes, (size_t)length);
		}
		while (client->output_length > 0) {
			ssize_t written = client->tls != NULL
				? SSL_write(client->tls, client->output, (int)client->output_length)
				: send(client->fd, client->output, client->output_length, MSG_NOSIGNAL);
			if (written <= 0)
				break;
			memmove(client->output, client->output + written, client->output_length - (size_t)written);
			client->output_length -= (size_t)written;
		}
		struct pollfd poll_fd = { .fd = client->fd, .events = POLLIN };
		if (client->output_length > 0)
			poll_fd.events |= POLLOUT;
		/* Decrypted bytes OpenSSL holds do not make the socket readable. */
		if (client->tls != NULL && SSL_pending(client->tls) > 0)
			poll_fd.revents = POLLIN;
		else if (poll(&poll_fd, 1, 10) <= 0)
			continue;
		if (poll_fd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t got;
			if (client->tls != NULL) {
				got = SSL_read(client->tls, buffer, (int)client->read_chunk);
				if (got <= 0) {
					int reason = SSL_get_error(client->tls, (int)got);
					if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE)
						continue;
					client->eof = true;
					continue;
				}
			} else {
				got = recv(client->fd, buffer, client->read_chunk, 0);
			}
			if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
				client->eof = true;
				continue;
			}
			if (got > 0) {
				if (nghttp2_session_mem_recv(client->session, buffer, (size_t)got) < 0) {
					client->eof = true;
					continue;
				}
				if (client->read_pause_us > 0)
					usleep((useconds_t)client->read_pause_us);
			}
		}
	}
	free(buffer);
	return result;
}
