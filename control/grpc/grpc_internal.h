/* control/grpc/grpc_internal.h: what the files of the gRPC server share (never included outside
 * control/grpc/). grpc_server.c owns sockets, epoll, connections and the call table; grpc_http2.c
 * speaks HTTP/2 and gRPC framing through nghttp2; grpc_call.c is the service-facing call API;
 * grpc_http1.c answers plain HTTP/1.1 GETs. */
#ifndef QUORUMD_CONTROL_GRPC_INTERNAL_H
#define QUORUMD_CONTROL_GRPC_INTERNAL_H

#include <nghttp2/nghttp2.h>
#include <sys/socket.h>

#include "grpc_server.h"
#include "grpc_status.h"

/* Above this many bytes waiting for the socket, a connection stops pulling frames out of nghttp2
 * and stops reading requests: a client that does not read cannot make us buffer more. */
#define GRPC_OUTPUT_HIGH_WATER (256 * 1024)
/* The largest HTTP/1.1 request head (request line and headers). */
#define GRPC_HTTP1_MAX_REQUEST (8 * 1024)
/* Request headers (metadata) kept per call; a larger header block resets the stream. */
#define GRPC_MAX_HEADER_BYTES (64 * 1024)
/* A connection that has not shown whether it speaks HTTP/2 or HTTP/1.1, or an HTTP/1.1 connection
 * in the middle of a request head, is closed after this long (slow clients must not hold slots). */
#define GRPC_IDLE_HANDSHAKE_MS 10000
/* How long a refused connection waits for the client to close after our last bytes (grpc_connection_linger). */
#define GRPC_LINGER_MS 1000

/* Growable byte buffer with a read position: response messages of a call, a connection's output. */
struct grpc_buffer {
	uint8_t *data;
	size_t start;  /* first unread byte */
	size_t end;    /* one past the last byte */
	size_t capacity;
};

int grpc_buffer_append(struct grpc_buffer *buffer, const void *bytes, size_t length);
/* An empty buffer gets room for exactly length bytes (rounded up to 64) instead of append's default 4 KiB;
 * a buffer in use is left to append. */
int grpc_buffer_reserve(struct grpc_buffer *buffer, size_t length);
static inline size_t grpc_buffer_length(const struct grpc_buffer *buffer)
{
	return buffer->end - buffer->start;
}
void grpc_buffer_consume(struct grpc_buffer *buffer, size_t length);
void grpc_buffer_free(struct grpc_buffer *buffer);

/* epoll's data.ptr points at one of these, first member of a listener or a connection. */
enum grpc_poll_kind { GRPC_POLL_LISTENER, GRPC_POLL_CONNECTION };

struct grpc_listener {
	enum grpc_poll_kind kind;
	int fd;
	/* What the URLs on this address asked for: http:// (plain), https:// (secure), or both, as etcd serves
	 * both schemes on one port when both are listed (the first byte of a connection tells them apart). */
	bool plain;
	bool secure;
	struct sockaddr_storage address;
	socklen_t address_length;
	/* Out of file descriptors: epoll stops watching the listener until then, or a level-triggered
	 * listener that cannot accept would wake the thread in a busy loop. 0 = watched. */
	uint64_t paused_until_ms;
};

enum grpc_connection_mode {
	GRPC_MODE_DETECTING, /* the first bytes decide between HTTP/2 and HTTP/1.1 */
	GRPC_MODE_HTTP2,
	GRPC_MODE_HTTP1,
};

struct grpc_header {
	struct grpc_header *next;
	char *name;
	char *value;
};
/* A header and its two strings in one block (free() it whole); NULL when out of memory. */
struct grpc_header *grpc_header_new(const char *name, size_t name_length, const char *value, size_t value_length);

struct grpc_connection;
struct grpc_http_answer;

struct grpc_call {
	uint64_t id;
	struct grpc_connection *connection;
	int32_t stream_id;
	const struct grpc_method *method; /* NULL: the call is answered by the server itself */
	struct grpc_call *table_next;     /* in the server's id table while findable */
	struct grpc_call *connection_previous, *connection_next;
	bool in_table;
	void *user;

	char *path;
	char *http_method;
	char *content_type;
	char *grpc_encoding;
	struct grpc_header *headers;
	size_t header_bytes;

	/* Request reassembly: the 5-byte prefix, then the message body. */
	uint8_t prefix[5];
	size_t prefix_have;
	uint8_t *message;
	size_t message_length;
	size_t message_have;
	bool discarding;          /* finished or failed: later request bytes are dropped */
	uint64_t messages_delivered;
	bool handled_counted;     /* grpc_server_handled_total has this call (grpc_call_count_handled) */

	/* Response. */
	struct grpc_buffer output; /* length-prefixed messages not yet taken by nghttp2 */
	bool headers_submitted;
	bool data_deferred;       /* the data provider said DEFERRED; resume when more comes */
	bool finished;            /* grpc_call_finish was called (by the service or the server) */
	bool service_done;        /* no more callbacks to the service */
	bool half_closed_by_client;
	uint64_t deadline_ms;      /* from grpc-timeout (monotonic ms); 0: none */
	int grpc_status;
	char *grpc_message;       /* percent-encoded */

	/* A JSON gateway call (grpc_gateway.c), on an HTTP/1.1 connection or an HTTP/2 stream of a TLS one;
	 * NULL: a gRPC call. On HTTP/2 the body is collected until the client ends the stream, and the
	 * response goes out through output like a gRPC call's. */
	const struct grpc_gateway_route *gateway;
	struct grpc_buffer gateway_body;  /* HTTP/2: the request body so far */
	bool gateway_head_written;   /* the response's status line and headers are out */
	bool gateway_trailer;        /* HTTP/2: the response ends with grpc-gateway's trailer */
	bool gateway_body_ended;     /* every request of the body was delivered */
	bool gateway_close;          /* the connection closes after this response (Connection: close) */
	uint64_t gateway_answers;    /* response messages sent */
};

struct grpc_connection {
	enum grpc_poll_kind kind;
	int fd;
	struct grpc_server *server;
	struct grpc_connection *previous, *next;     /* the server's open connections */
	struct grpc_connection *dirty_next;          /* on the server's list to flush */
	struct grpc_connection *dead_next;           /* closed, freed at the end of processing */
	bool dirty;
	bool closed;
	bool close_after_write;  /* HTTP/1.1 Connection: close, or a 400 */
	bool bad_input;          /* counted once in connections_closed_bad_input */
	enum grpc_connection_mode mode;
	uint32_t epoll_events;   /* what epoll watches now */
	uint64_t opened_ms;
	uint64_t last_active_ms;   /* last bytes received: the least recently active idle one goes first */

	struct grpc_buffer input;   /* detection bytes, then an HTTP/1.1 request head */
	struct grpc_buffer output;  /* the protocol's bytes: for the socket, or for TLS to encrypt */

	/* TLS (grpc_tls.c): NULL on a cleartext connection. wire holds the records waiting for the socket. */
	struct grpc_tls_connection *tls;
	struct grpc_buffer wire;
	bool transport_undecided;   /* a listener serving both schemes: the first byte decides */
	/* Refused (a failed TLS handshake): our last bytes are sent and our side shut, and what the client still
	 * sends is read and dropped until it closes or this time passes, so that it reads our alert rather
	 * than a reset (closing a socket with unread input resets it). 0: not lingering. */
	uint64_t lingering_until_ms;

	nghttp2_session *session;
	struct grpc_call *calls;    /* every call of this connection */

	/* HTTP/1.1: the gateway call whose response is being written. Requests are answered one at a time
	 * in order, so pipelined ones wait in input until it ends. */
	struct grpc_call *http1_call;
	bool continue_sent;         /* "100 Continue" answered the request whose body is awaited */
};

struct grpc_server {
	struct grpc_server_config config;
	int epoll_fd;
	struct grpc_listener *listeners;
	size_t listener_count;
	int port;

	struct grpc_connection *connections;
	size_t connection_count;
	nghttp2_session_callbacks *http2_callbacks; /* every HTTP/2 session's, made at the first one */
	nghttp2_option *http2_option;
	struct grpc_connection *dirty;
	struct grpc_connection *dead;
	bool processing;

	struct grpc_call **call_table;
	size_t call_table_size; /* a power of two */
	size_t call_count;
	uint64_t next_call_id;
	uint64_t last_idle_check_ms;

	/* Calls with a grpc-timeout, earliest deadline first (a binary heap). Entries of calls that ended
	 * stay until they come up or the heap is compacted; the call id finds out whether one is alive. */
	struct grpc_deadline {
		uint64_t deadline_ms;
		uint64_t call_id;
	} *deadlines;
	size_t deadline_count;
	size_t deadline_capacity;

	struct grpc_server_stats stats;
};

uint64_t grpc_now_ms(void);

/* grpc_server.c */
/* The call's grpc-timeout starts counting: it is answered DEADLINE_EXCEEDED if still open then. */
void grpc_server_track_deadline(struct grpc_server *server, struct grpc_call *call);

void grpc_connection_mark_dirty(struct grpc_connection *connection);
/* The connection's cleartext bytes (decrypted ones on a TLS connection): detection, then HTTP/2 or
 * HTTP/1.1. -1 when the connection was closed. */
int grpc_connection_receive(struct grpc_connection *connection, const uint8_t *bytes, size_t length);
/* Bytes the connection still has to write, before and after encryption: what the output bound counts. */
static inline size_t grpc_connection_pending_output(const struct grpc_connection *connection)
{
	return grpc_buffer_length(&connection->output) + grpc_buffer_length(&connection->wire);
}
void grpc_connection_close(struct grpc_connection *connection, bool bad_input);
/* Ends a connection gracefully (see lingering_until_ms): TLS state freed after its last records, our
 * side shut down. grpc_connection_close follows when the client closes, or after a second. */
void grpc_connection_linger(struct grpc_connection *connection);
void grpc_server_table_insert(struct grpc_server *server, struct grpc_call *call);
void grpc_server_table_remove(struct grpc_server *server, struct grpc_call *call);

/* grpc_http2.c */
int grpc_http2_start(struct grpc_connection *connection, char *err, size_t errlen);
/* Feeds received bytes to nghttp2; -1 when the connection must close. */
int grpc_http2_receive(struct grpc_connection *connection, const uint8_t *bytes, size_t length);
/* Moves frames from nghttp2 to connection->output up to the high-water mark; -1 on a fatal error. */
int grpc_http2_fill_output(struct grpc_connection *connection);
bool grpc_http2_finished(const struct grpc_connection *connection);
/* Ends every call (on_close(cancelled = true) where the service still owned it) and the session. */
void grpc_http2_teardown(struct grpc_connection *connection);
/* Frees what grpc_http2_start made once for the server (its nghttp2 callbacks and options). */
void grpc_http2_release_setup(struct grpc_server *server);

/* grpc_call.c */
struct grpc_call *grpc_call_new(struct grpc_connection *connection, int32_t stream_id);
void grpc_call_free(struct grpc_call *call);
/* The method's counters (grpc_server.h), NULL when the call has no method or the server counts none. */
struct grpc_method_counters *grpc_call_counters(const struct grpc_call *call);
/* Counts the call in grpc_server_handled_total under code, once (later calls do nothing). */
void grpc_call_count_handled(struct grpc_call *call, int code);
/* Finishes a call the service never saw or that broke the protocol (status, optional :status). */
void grpc_call_finish_internal(struct grpc_call *call, int http_status, int grpc_status, const char *message);
void grpc_percent_encode(const char *text, char *out, size_t out_size);
/* Answers a plain HTTP request that came over HTTP/2 (headers, then the body unless head_only); the
 * call ends with the response. */
void grpc_call_respond_http(struct grpc_call *call, const struct grpc_http_answer *answer, bool head_only);

/* grpc_tls.c */
/* TLS on an accepted connection of a secure listener; -1 when the connection cannot have it. */
int grpc_tls_connection_start(struct grpc_connection *connection);
/* Records from the socket: the handshake, then the decrypted bytes go to grpc_connection_receive. A
 * failed handshake is logged as etcd logs it ("rejected connection") and closes the connection. -1
 * when the connection was closed. */
int grpc_tls_receive(struct grpc_connection *connection, const uint8_t *bytes, size_t length);
/* Encrypts connection->output into connection->wire while the wire is below the output bound. -1 on
 * a TLS error (the caller closes). */
int grpc_tls_encrypt(struct grpc_connection *connection);
/* The client closed the socket (error_number 0) or reading it failed: a handshake cut short is logged
 * (Go's "EOF", or "read: connection reset by peer"). Does nothing on a cleartext connection. */
void grpc_tls_peer_closed(struct grpc_connection *connection, int error_number);
/* close_notify when the session is up (as Go's Close), then the TLS state is freed. Before the socket
 * closes. */
void grpc_tls_connection_end(struct grpc_connection *connection);
/* The subject CN of the client's certificate once the handshake verified it (the last CN, as Go's
 * pkix.Name keeps it); false on a cleartext connection or without a verified certificate. */
bool grpc_tls_peer_common_name(const struct grpc_connection *connection, char *out, size_t size);

/* grpc_http1.c */
/* Parses and answers complete requests in connection->input, one at a time (not while a gateway call
 * is open); frees the gateway calls that ended. -1 when the connection must close. */
int grpc_http1_process(struct grpc_connection *connection);
/* Whether the connection should read more: not while a gateway call is open and a request head's
 * worth of pipelined input already waits. */
bool grpc_http1_wants_input(const struct grpc_connection *connection);
/* "OK", "Not Found", ... */
const char *grpc_http_reason(int status);

/* grpc_gateway.c */
/* A request body's bound: a JSON body holds a message of at most max_message_bytes in base64 and
 * names, so it may be larger by about a third; twice is room enough. Beyond, 413. */
#define GRPC_GATEWAY_BODY_FACTOR 2
/* The route of path (no query string); NULL when none. *under_prefix: the path is under a gateway
 * prefix (its 404 is grpc-gateway's "Not Found"). */
const struct grpc_gateway_route *grpc_gateway_find(const struct grpc_server *server, const char *path,
	bool *under_prefix);
/* HTTP/1.1: turns a complete request into a call of the route's method (grpc_gateway_run).
 * authorization: the header's value or NULL. -1 when out of memory (the connection closes). */
int grpc_gateway_start(struct grpc_connection *connection, const struct grpc_gateway_route *route,
	const char *body, size_t body_length, const char *authorization, bool close_after);
/* The whole body of a gateway call is here: its requests go to the method, or the error (a body that is
 * not JSON, or not the request message) is answered. */
void grpc_gateway_run(struct grpc_call *call, const char *body, size_t body_length);
/* HTTP/1.1, a request refused before it has a call (a body over the bound): the gateway's JSON error
 * with a Content-Length. */
int grpc_gateway_write_error(struct grpc_connection *connection, int grpc_code, const char *message, int http_status);
/* HTTP/2: a body over the bound; the call ends with the same error. */
void grpc_gateway_refuse_body(struct grpc_call *call, size_t body_length);
/* The bound of a request body (GRPC_GATEWAY_BODY_FACTOR). */
size_t grpc_gateway_body_limit(const struct grpc_server *server);
/* grpc_call_send, grpc_call_finish and grpc_call_finish_internal of a gateway call. */
int grpc_gateway_send(struct grpc_call *call, const uint8_t *message, size_t length);
void grpc_gateway_finish(struct grpc_call *call, int grpc_status, const char *message);
/* The connection closes: open gateway calls are cancelled (on_close, cancelled), all are freed. */
void grpc_gateway_teardown(struct grpc_connection *connection);
/* Frees the connection's gateway calls that ended (they stay until no service can be using them). */
void grpc_gateway_free_ended(struct grpc_connection *connection);

/* A plain HTTP request (HTTP/1.1, or HTTP/2 without a gRPC content-type on a TLS connection, as etcd's
 * grpcHandlerFunc routes it): what to answer. */
struct grpc_http_answer {
	int status;
	const char *content_type; /* NULL: text/plain */
	const char *body;
	size_t body_length;
	char *owned_body;         /* the service's malloc'd body (body points at it), freed with the answer */
	bool allow_get;           /* a 405: "Allow: GET" */
};
/* method: "GET", "HEAD" or another; path without its query string. */
void grpc_http_answer(struct grpc_server *server, const char *method, const char *path,
	struct grpc_http_answer *answer);
void grpc_http_answer_free(struct grpc_http_answer *answer);

#endif
