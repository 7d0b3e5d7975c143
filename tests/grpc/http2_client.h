/* tests/grpc/http2_client.h: a small HTTP/2 gRPC client (prior knowledge, or over TLS with OpenSSL) on
 * nghttp2's client session, for the server tests: streams whose request bytes can be written bit by bit,
 * responses kept whole with their status and trailers, and a pump that moves bytes until a condition holds.
 * Single-threaded and test-only; every wait has a deadline. */
#ifndef QUORUMD_TESTS_GRPC_HTTP2_CLIENT_H
#define QUORUMD_TESTS_GRPC_HTTP2_CLIENT_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client_stream {
	int32_t id;
	/* request bytes (length-prefixed messages) not yet taken by nghttp2 */
	uint8_t *send;
	size_t send_length, send_offset, send_capacity;
	bool send_end;
	bool deferred;
	/* response */
	uint8_t *received;
	size_t received_length, received_capacity;
	int http_status;
	int grpc_status; /* -1 until the trailers (or a trailers-only response) come */
	char grpc_message[512];
	bool closed;
	uint32_t close_error;
};

struct client {
	int fd;
	SSL *tls;            /* NULL: cleartext */
	nghttp2_session *session;
	bool eof;
	bool settings_received;
	bool goaway_received;
	int ping_acks;
	size_t read_chunk;   /* bytes read per pump round; small means a slow reader */
	int read_pause_us;   /* pause after each read when reading slowly */
	uint8_t *output;
	size_t output_length, output_capacity;
};

/* Connects to 127.0.0.1:port, sends the preface and SETTINGS (initial window window_size; when
 * large_connection_window the connection window is raised to 64 MiB) and waits for the server's
 * SETTINGS. NULL on failure. */
struct client *client_open(int port, uint32_t window_size, bool large_connection_window);
/* The same over TLS: the handshake with tls_context (its ALPN, CAs and certificate), then as client_open.
 * NULL when the handshake or the server's SETTINGS fail. */
struct client *client_open_tls(int port, SSL_CTX *tls_context, uint32_t window_size, bool large_connection_window);
void client_close(struct client *client);

void client_stream_init(struct client_stream *stream);
void client_stream_free(struct client_stream *stream);
/* Opens a stream (POST path, content-type application/grpc); 0 or -1. */
int client_stream_start(struct client *client, struct client_stream *stream, const char *path);
/* The same with another content-type (to test the server's refusal). */
int client_stream_start_typed(struct client *client, struct client_stream *stream, const char *path,
	const char *content_type);
/* The same with a grpc-timeout header (its value as written, "200m"). */
int client_stream_start_with_timeout(struct client *client, struct client_stream *stream, const char *path,
	const char *timeout);
/* Queues one length-prefixed message; end half-closes after it. */
void client_stream_write(struct client *client, struct client_stream *stream, const uint8_t *message, size_t length,
	bool end);
/* The index-th response message, false when there are fewer. */
bool client_stream_message(const struct client_stream *stream, size_t index, const uint8_t **message, size_t *length);
size_t client_stream_message_count(const struct client_stream *stream);

/* Moves bytes both ways until done(argument) is true (true returned), or timeout_ms passed or the
 * connection ended (false). */
bool client_pump(struct client *client, bool (*done)(void *argument), void *argument, int timeout_ms);
bool client_stream_is_closed(void *stream);

#endif
