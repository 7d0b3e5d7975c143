/* control/grpc/grpc_server.h: gRPC over HTTP/2 (prior knowledge on http:// endpoints as etcd clients use
 * it, ALPN "h2" over TLS on https:// ones), served with nghttp2; plain HTTP/1.1 GETs on the same port
 * (/health, /version, /metrics) and the JSON gateway's POSTs, told apart by the first bytes of a
 * connection. TLS: grpc_tls.h.
 *
 * One server is driven by one thread: it sleeps in epoll on grpc_server_fd() (with its other fds) and
 * calls grpc_server_process() whenever that fd is readable (or at least every 100 ms, for timeouts).
 * Nothing here blocks. Several threads may each run their own server on the same addresses
 * (reuse_port), the kernel spreading connections among them.
 *
 * Calls: a request message (the gRPC length-prefixed message, reassembled across DATA frames) is
 * handed to the method's on_message; the service answers later — now or after a round through Raft —
 * with grpc_call_send (zero or more messages) and grpc_call_finish (the trailers). Because answers come
 * late, services keep the call's id, never the pointer: grpc_server_find_call gives NULL once the
 * client went away. on_close tells the service a call ended (client half-close, reset, connection
 * closed); after a reset or a closed connection the id no longer finds the call.
 *
 * Bad input never reaches a service: a bad preface or broken HTTP/2 closes the connection (GOAWAY), an
 * unknown path finishes with UNIMPLEMENTED, a message over max_message_bytes with RESOURCE_EXHAUSTED,
 * a compressed message (we announce no grpc-encoding) with UNIMPLEMENTED, more than
 * max_concurrent_streams open streams are refused
 * (REFUSED_STREAM) until the client acknowledges the limit and close the connection after (nghttp2: GOAWAY
 * PROTOCOL_ERROR); gRPC clients keep to the advertised limit, so only a misbehaving one meets this. */
#ifndef QUORUMD_CONTROL_GRPC_SERVER_H
#define QUORUMD_CONTROL_GRPC_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct grpc_server;
struct grpc_call;

enum grpc_method_kind {
	GRPC_METHOD_UNARY,         /* one request, one response */
	GRPC_METHOD_SERVER_STREAM, /* one request, many responses (Maintenance.Snapshot) */
	GRPC_METHOD_BIDI_STREAM,   /* many of each (Watch, LeaseKeepAlive) */
};

struct grpc_method {
	const char *path; /* "/etcdserverpb.KV/Put" */
	enum grpc_method_kind kind;
	/* A whole request message. For unary and server-stream methods it comes once, after the client
	 * half-closed or as soon as the message is complete (services must not wait for more). */
	void (*on_message)(void *context, struct grpc_call *call, const uint8_t *message, size_t length);
	/* The call is over for the client side: half-close (cancelled false; the server may still send
	 * and must finish) or reset / connection gone (cancelled true; the call is already gone, sending
	 * does nothing). May be NULL.
	 * Exactly: a call the service has seen (it got a message) ends for the service either by its
	 * own grpc_call_finish (no callback comes after it) or by one on_close(cancelled = true); before
	 * either, at most one on_close(cancelled = false) reports the half-close. A unary or
	 * server-stream call whose client half-closes without a message, or sends a second one, is
	 * answered INTERNAL by the server (on_close(true) if the service had the first). */
	void (*on_close)(void *context, struct grpc_call *call, bool cancelled);
};

/* go-grpc-prometheus' server counters of one method (grpc_server_started_total, _handled_total by code,
 * _msg_received_total, _msg_sent_total). One per method, shared by every server serving the method table
 * (each thread's): relaxed atomic adds, so no lock on a call's path. handled counts a call once, when
 * it is finished (by the service or the server: a deadline, a cardinality violation) or, when the client
 * went away first, as Canceled, which is what a Go handler returns on a cancelled context. */
enum { GRPC_STATUS_CODE_COUNT = 17 };
struct grpc_method_counters {
	atomic_uint_fast64_t started;
	atomic_uint_fast64_t messages_received;
	atomic_uint_fast64_t messages_sent;
	atomic_uint_fast64_t handled[GRPC_STATUS_CODE_COUNT];
	atomic_uint_fast64_t message_bytes_received; /* request messages' bytes, without gRPC's 5-byte prefix */
	atomic_uint_fast64_t message_bytes_sent;     /* response messages' bytes, likewise */
};

/* The counters in Prometheus' text format, as etcd 3.4.23 (go-grpc-prometheus with every method
 * initialised) serves them: for each of the four counters its HELP and TYPE lines, then one series per
 * method (and per code for handled, all 17 of them even at 0), labels grpc_code, grpc_method,
 * grpc_service and grpc_type ("unary", "server_stream", "bidi_stream"), series sorted by their label
 * values as client_golang sorts them. Malloc'd text, its length in *length. */
char *grpc_method_counters_prometheus(const struct grpc_method *methods, const struct grpc_method_counters *counters,
                                      size_t method_count, size_t *length);

struct grpc_http_response {
	int status;                  /* 200, 404, 503 ... */
	const char *content_type;    /* "application/json", "text/plain; version=0.0.4" */
	char *body;                  /* malloc'd; the server frees it */
	size_t body_length;
	bool get_only;               /* HEAD gets 405 with "Allow: GET", as etcd's /health and /version */
};

struct grpc_tls_context;
struct ProtobufCMessageDescriptor;

/* etcd's gRPC JSON gateway on the same port: an HTTP/1.1 POST of a JSON request to a gateway path (or an
 * HTTP/2 one on a TLS connection, where etcd serves non-gRPC requests too) is a call of a registered method, the same the gRPC clients reach. The server turns the JSON body into the
 * request message (grpc_json.h), the service sees an ordinary call (it cannot tell), and its answers
 * go back as JSON: a unary one as the response body, a stream's as chunks of {"result":...}, an error
 * as {"error":...,"message":...,"code":N} with the HTTP status grpc-gateway maps the code to. */
enum grpc_gateway_end {
	/* The end of the request body is the client's half-close (unary calls). */
	GRPC_GATEWAY_END_HALF_CLOSE,
	/* The call ends once each request in the body has had one answer (etcd's LeaseKeepAlive server
	 * answers every request in turn and returns at the end of its input). */
	GRPC_GATEWAY_END_AFTER_ANSWERS,
	/* The call lasts until the client disconnects (etcd's Watch server keeps streaming after the end
	 * of its input). */
	GRPC_GATEWAY_END_CLIENT_GONE,
};

struct grpc_gateway_route {
	const char *http_path;   /* after a gateway prefix: "kv/put" */
	const char *method_path; /* a path of config.methods: "/etcdserverpb.KV/Put" */
	const struct ProtobufCMessageDescriptor *request;
	const struct ProtobufCMessageDescriptor *response;
	enum grpc_gateway_end end;
};

struct grpc_server_config {
	/* "http://127.0.0.1:2379", "https://[::1]:2379"; the host must be an IP address or localhost. The same
	 * address under both schemes is one port serving both. */
	const char *const *listen_urls;
	size_t listen_url_count;
	/* Serves the https:// URLs (grpc_tls.h); NULL refuses them. Must outlive the server. */
	struct grpc_tls_context *tls;
	/* etcd's metrics listeners (transport.NewListener) also refuse a client certificate whose IP SANs
	 * do not include the client's address; its client URLs do not. */
	bool tls_check_client_address;
	bool reuse_port;                /* SO_REUSEPORT, for one server per client thread */
	const struct grpc_method *methods;
	size_t method_count;
	/* One per method, parallel to methods (grpc_method_counters above); NULL: not counted. */
	struct grpc_method_counters *method_counters;
	void *context;                  /* passed to every callback */
	size_t max_message_bytes;       /* largest request message accepted (etcd: max-request-bytes + 512 KiB); 0 = 4 MiB */
	uint32_t max_concurrent_streams;/* per connection; 0 = 1000 */
	/* 0 = 10000. At the limit (or out of file descriptors) the least recently active idle connection
	 * (no open call) is closed to make room, so idle clients cannot lock out new ones; only when every
	 * connection has a call open is a new one accepted and closed at once. */
	size_t max_connections;
	/* A plain HTTP/1.1 GET (or HEAD) of path (without its query string); return false for 404 (the
	 * server then frees a body set anyway). May be NULL (every path 404). */
	bool (*http_get)(void *context, const char *path, struct grpc_http_response *response);
	/* A call's grpc-timeout ran out while it is still open: the service may answer it now with its own
	 * error, as a grpc-go handler whose context ended does (etcd tells a call still waiting for its auth
	 * token's index that the token is invalid). A call left open gets DEADLINE_EXCEEDED. May be NULL. */
	void (*on_deadline)(void *context, struct grpc_call *call);
	/* The JSON gateway: routes under each prefix ("/v3/", "/v3beta/"). A POST elsewhere under a prefix
	 * is a 404 ("Not Found"), another method on a route a 405. None: no gateway. */
	const struct grpc_gateway_route *gateway_routes;
	size_t gateway_route_count;
	const char *const *gateway_prefixes;
	size_t gateway_prefix_count;
};

/* Opens the listening sockets (IPv4 and IPv6 literals, localhost = 127.0.0.1). NULL with a message
 * naming the URL on error (bad URL, https:// without a TLS context, address in use). */
struct grpc_server *grpc_server_open(const struct grpc_server_config *config, char *err, size_t errlen);
/* One fd (an epoll fd of the server's own) that becomes readable when the server has work. */
int grpc_server_fd(const struct grpc_server *server);
/* Accepts, reads, runs callbacks, writes what is pending; returns without blocking. */
void grpc_server_process(struct grpc_server *server);
/* Answers given between grpc_server_hold_output and grpc_server_flush (a batch of replies from the
 * node's threads) are written by the flush, one send per connection, instead of each arming EPOLLOUT
 * (two epoll_ctl per connection per batch). The caller must call grpc_server_flush after the hold. */
void grpc_server_hold_output(struct grpc_server *server);
/* Writes what the held answers queued; returns without blocking. */
void grpc_server_flush(struct grpc_server *server);
/* Closes every connection and listener; calls still open get on_close(cancelled = true). */
void grpc_server_close(struct grpc_server *server);

/* grpc-timeout's value ("100m", "5S", "1H": an integer of at most 8 digits and a unit) in milliseconds,
 * rounded up; false when malformed. A call with one is answered DEADLINE_EXCEEDED, "context deadline
 * exceeded", if still open when it runs out (the service gets on_close, cancelled). */
bool grpc_parse_timeout(const char *value, uint64_t *milliseconds);

/* The bound port of the first listener (for tests that listen on port 0). */
int grpc_server_port(const struct grpc_server *server);

struct grpc_server_stats {
	uint64_t connections_accepted;
	uint64_t connections_open;
	uint64_t connections_closed_bad_input;
	uint64_t calls_started;
	uint64_t calls_unimplemented;
	uint64_t calls_deadline_exceeded;  /* answered DEADLINE_EXCEEDED when their grpc-timeout ran out */
	uint64_t connections_evicted_idle; /* idle connections closed to make room for a new one */
	uint64_t http_requests;
	uint64_t tls_handshakes;          /* completed */
	uint64_t tls_rejected;            /* handshakes that failed, each logged "rejected connection" */
};
void grpc_server_get_stats(const struct grpc_server *server, struct grpc_server_stats *stats);

/* ---- calls ---- */

/* Unique for the server's lifetime, never 0. */
uint64_t grpc_call_id(const struct grpc_call *call);
struct grpc_call *grpc_server_find_call(struct grpc_server *server, uint64_t call_id);
const char *grpc_call_path(const struct grpc_call *call);
/* A request header (metadata) by lower-case name, e.g. "hasleader"; NULL when absent. */
const char *grpc_call_header(const struct grpc_call *call, const char *name);
/* The subject CN of the verified client certificate of the call's TLS connection (etcd's AuthInfoFromTLS
 * takes it for the user); false on cleartext or without a verified certificate. */
bool grpc_call_peer_common_name(const struct grpc_call *call, char *out, size_t size);
void grpc_call_set_user(struct grpc_call *call, void *user);
void *grpc_call_user(const struct grpc_call *call);

/* Queues one response message (copied). 0, or -1 when the call is finished or gone. */
int grpc_call_send(struct grpc_call *call, const uint8_t *message, size_t length);
/* Bytes queued on this call and not yet written: a streaming service waits (stops reading its
 * source) while this is large, so a slow client cannot make us buffer a whole snapshot. */
size_t grpc_call_pending_bytes(const struct grpc_call *call);
/* Sends the trailers (grpc-status, grpc-message percent-encoded) after what is queued and ends the
 * call; the call is gone once they are written. Finishing twice does nothing. */
void grpc_call_finish(struct grpc_call *call, int grpc_status, const char *message);

#endif
