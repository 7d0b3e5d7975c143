/* control/grpc/grpc_client.h: unary gRPC calls over one HTTP/2 connection, cleartext with prior knowledge
 * (as etcd clients speak to http:// endpoints) or TLS with ALPN h2 (https:// endpoints, OpenSSL), with
 * nghttp2's client session.
 *
 * A gconn owns a non-blocking socket and an nghttp2 session; it never blocks after gconn_open and has
 * no thread or loop of its own. The owner registers gconn_fd() in its epoll set (the epoll data is the
 * owner's), calls gconn_on_event() when it fires and gconn_flush() once per loop turn after starting
 * calls, and watches gconn_wants_write() for EPOLLOUT. Many calls run at once, one HTTP/2 stream each;
 * more than the server's SETTINGS_MAX_CONCURRENT_STREAMS wait inside nghttp2.
 *
 * A call is a struct gcall the caller owns (embedded in its own per-client state). Its request (the
 * serialized protobuf, without gRPC's 5-byte prefix) is copied at gconn_start_call. Exactly one done()
 * follows every successful start: the server's grpc-status and grpc-message, or a status made up here
 * when the stream or connection broke (UNAVAILABLE for a refused stream or a lost connection, CANCELLED
 * after gconn_cancel, INTERNAL for a malformed reply, an HTTP status mapped as gRPC's spec says).
 * done() may start new calls on any connection, but not free the gconn it came from. */
#ifndef QUORUMD_GRPC_CLIENT_H
#define QUORUMD_GRPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc_status.h"

/* "UNAVAILABLE" for 14; "CODE_<n>" beyond the table. */
const char *grpc_status_name(int code);

struct gconn;
struct gcall;
struct gconn_tls;

typedef void (*gcall_done_fn)(struct gcall *call, int status, const char *message, const uint8_t *response,
    size_t response_length);

struct gcall {
	gcall_done_fn done; /* set by the caller */
	/* Private to grpc_client.c. */
	struct gconn *conn;
	struct gcall *prev, *next; /* the connection's calls in flight */
	int32_t stream_id;
	int http_status;
	int grpc_status; /* -1 until a grpc-status header arrives */
	bool cancelled;
	char message[200];
	uint8_t *request; /* 5-byte prefix + message; reused across calls */
	size_t request_length, request_capacity, request_offset;
	uint8_t *response; /* DATA received, reused across calls */
	size_t response_length, response_capacity;
};

/* Connects (blocking, at most timeout_ns) to host:port and prepares the session. NULL with a message
 * naming the address on failure. authority is the :authority header ("127.0.0.1:2379"). */
struct gconn *gconn_open(const char *host, const char *port, uint64_t timeout_ns, char *err, size_t errlen);
/* The same over TLS (tls NULL: cleartext): the handshake is done here, within timeout_ns, so the connection
 * returned is as ready as a cleartext one. The server's certificate must chain to the CAs and be valid for
 * host (an IP address against its IP SANs, a name against its DNS SANs, also sent as SNI). OpenSSL writes to the
 * socket with write(), so a TLS user must ignore SIGPIPE (a server closing first would kill the process). */
struct gconn *gconn_open_tls(const char *host, const char *port, const struct gconn_tls *tls, uint64_t timeout_ns,
    char *err, size_t errlen);
int gconn_fd(const struct gconn *conn);

/* A TLS client configuration any number of connections (and threads) share: the CAs that sign the servers'
 * certificates (ca_file; NULL or "": the system's), an optional client certificate and key (both or
 * neither), ALPN h2, TLS 1.2 or 1.3. skip_verify: the server's certificate is not checked. NULL with a
 * message naming the file on failure. */
struct gconn_tls *gconn_tls_new(const char *ca_file, const char *cert_file, const char *key_file, bool skip_verify,
    char *err, size_t errlen);
void gconn_tls_free(struct gconn_tls *tls);
/* Fails every call in flight (UNAVAILABLE "connection closed"), closes the socket, frees. */
void gconn_close(struct gconn *conn);

/* Starts a unary call of path ("/etcdserverpb.KV/Put") with request bytes. 0, or -1 (the connection is
 * broken; done() is not called). */
int gconn_start_call(struct gconn *conn, struct gcall *call, const char *path, const uint8_t *request,
    size_t length);
/* Resets the call's stream; its done() follows with CANCELLED and message. */
void gconn_cancel(struct gconn *conn, struct gcall *call, int status, const char *message);

/* Reads what the socket has and runs the callbacks. */
void gconn_on_event(struct gconn *conn, uint32_t epoll_events);
/* Writes what nghttp2 has queued. */
void gconn_flush(struct gconn *conn);
bool gconn_wants_write(const struct gconn *conn);
/* False once the connection failed or was closed by the server (GOAWAY and drained); every call in
 * flight has then had its done(). The owner closes it and may open another. */
bool gconn_alive(const struct gconn *conn);
const char *gconn_error(const struct gconn *conn);
size_t gconn_calls_in_flight(const struct gconn *conn);

void gcall_free(struct gcall *call); /* frees its buffers (not the struct) */

/* One call on a connection of its own, waited for (target-leader, status). Returns the gRPC status
 * (or UNAVAILABLE/DEADLINE_EXCEEDED made up here), message in message, response bytes malloc'd into
 * *response (caller frees). */
int gconn_call_sync(const char *host, const char *port, const char *path, const uint8_t *request, size_t length,
    uint64_t timeout_ns, uint8_t **response, size_t *response_length, char *message, size_t message_length);
int gconn_call_sync_tls(const char *host, const char *port, const struct gconn_tls *tls, const char *path,
    const uint8_t *request, size_t length, uint64_t timeout_ns, uint8_t **response, size_t *response_length,
    char *message, size_t message_length);

uint64_t mono_ns(void);

#endif
