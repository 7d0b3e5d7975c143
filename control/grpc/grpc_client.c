/* control/grpc/grpc_client.c: unary gRPC over an nghttp2 client session (see grpc_client.h).
 *
 * With TLS the socket is driven by OpenSSL in non-blocking mode (SSL_read / SSL_write on the fd); the
 * handshake is done in gconn_open, within the dial timeout, so the loop only ever sees an open session.
 *
 * Output is gathered from nghttp2_session_mem_send into one buffer per connection and written with one
 * send() per loop turn (or when 64 KiB piled up), so a turn that completes and restarts a hundred calls
 * costs one syscall. Input is read with recv() into a stack buffer and fed to nghttp2_session_mem_recv;
 * nghttp2 sends the WINDOW_UPDATEs itself. */
#include "grpc_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "certificate_checks.h"

#define OUT_GATHER (64 * 1024)
#define READ_CHUNK (64 * 1024)
#define STREAM_WINDOW (16 * 1024 * 1024)
#define CONNECTION_WINDOW (256 * 1024 * 1024)

struct gconn_tls {
	SSL_CTX *context;
	bool skip_verify;
};

struct gconn {
	int fd;
	SSL *ssl; /* NULL: cleartext */
	char tls_error[160]; /* OpenSSL's reason when a TLS read or write failed (errno is EPROTO then) */
	nghttp2_session *session;
	char authority[300];
	struct gcall *calls; /* in flight, doubly linked */
	size_t call_count;
	bool alive;
	bool closing; /* gconn_close: callbacks from nghttp2 do nothing */
	char error[200];
	uint8_t *out;
	size_t out_off, out_len, out_cap;
	bool want_write;
};

static const char *const status_names[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
	"PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};

const char *grpc_status_name(int code)
{
	static _Thread_local char other[24];
	if (code >= 0 && (size_t)code < sizeof(status_names) / sizeof(status_names[0]))
		return status_names[code];
	snprintf(other, sizeof(other), "CODE_%d", code);
	return other;
}

uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void unlink_call(struct gconn *conn, struct gcall *call)
{
	if (call->prev)
		call->prev->next = call->next;
	else
		conn->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	call->prev = call->next = NULL;
	call->conn = NULL;
	conn->call_count--;
}

static void finish(struct gcall *call, int status, const char *message, const uint8_t *response, size_t length)
{
	if (message != call->message)
		snprintf(call->message, sizeof(call->message), "%s", message ? message : "");
	call->done(call, status, call->message, response, length);
}

/* Closes the connection for good: every call in flight gets UNAVAILABLE with the reason. */
static void conn_fail(struct gconn *conn, const char *fmt, const char *detail)
{
	if (!conn->alive)
		return;
	conn->alive = false;
	snprintf(conn->error, sizeof(conn->error), fmt, detail);
	while (conn->calls) {
		struct gcall *call = conn->calls;
		unlink_call(conn, call);
		if (call->cancelled)
			finish(call, call->grpc_status, call->message, NULL, 0);
		else
			finish(call, GRPC_UNAVAILABLE, conn->error, NULL, 0);
	}
}

static int http_to_grpc(int http_status)
{
	switch (http_status) {
	case 400: return GRPC_INTERNAL;
	case 401: return GRPC_UNAUTHENTICATED;
	case 403: return GRPC_PERMISSION_DENIED;
	case 404: return GRPC_UNIMPLEMENTED;
	case 429: case 502: case 503: case 504: return GRPC_UNAVAILABLE;
	default: return GRPC_UNKNOWN;
	}
}

static void percent_decode(char *dst, size_t size, const uint8_t *src, size_t length)
{
	size_t o = 0;
	for (size_t i = 0; i < length && o + 1 < size; i++) {
		if (src[i] == '%' && i + 2 < length) {
			char hex[3] = {(char)src[i + 1], (char)src[i + 2], 0};
			char *end;
			long v = strtol(hex, &end, 16);
			if (*end == '\0') {
				dst[o++] = (char)v;
				i += 2;
				continue;
			}
		}
		dst[o++] = (char)src[i];
	}
	dst[o] = '\0';
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
	(void)flags;
	struct gconn *conn = user_data;
	if (conn->closing || frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct gcall *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (!call)
		return 0;
	if (namelen == 7 && !memcmp(name, ":status", 7)) {
		call->http_status = 0;
		for (size_t i = 0; i < valuelen && value[i] >= '0' && value[i] <= '9'; i++)
			call->http_status = call->http_status * 10 + (value[i] - '0');
	} else if (namelen == 11 && !memcmp(name, "grpc-status", 11)) {
		int code = 0;
		for (size_t i = 0; i < valuelen && value[i] >= '0' && value[i] <= '9' && code < 1000; i++)
			code = code * 10 + (value[i] - '0');
		if (!call->cancelled)
			call->grpc_status = code;
	} else if (namelen == 12 && !memcmp(name, "grpc-message", 12)) {
		if (!call->cancelled)
			percent_decode(call->message, sizeof(call->message), value, valuelen);
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
    size_t len, void *user_data)
{
	(void)flags;
	struct gconn *conn = user_data;
	if (conn->closing)
		return 0;
	struct gcall *call = nghttp2_session_get_stream_user_data(session, stream_id);
	if (!call)
		return 0;
	if (call->response_length + len > call->response_capacity) {
		size_t cap = call->response_capacity ? call->response_capacity : 256;
		while (cap < call->response_length + len)
			cap *= 2;
		uint8_t *p = realloc(call->response, cap);
		if (!p)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		call->response = p;
		call->response_capacity = cap;
	}
	memcpy(call->response + call->response_length, data, len);
	call->response_length += len;
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
	struct gconn *conn = user_data;
	if (conn->closing)
		return 0;
	struct gcall *call = nghttp2_session_get_stream_user_data(session, stream_id);
	if (!call || call->conn != conn)
		return 0;
	unlink_call(conn, call);
	if (call->cancelled) {
		finish(call, call->grpc_status, call->message, NULL, 0);
		return 0;
	}
	if (call->grpc_status >= 0) {
		if (call->grpc_status != GRPC_OK) {
			finish(call, call->grpc_status, call->message, NULL, 0);
			return 0;
		}
		const uint8_t *r = call->response;
		size_t n = call->response_length;
		if (n < 5) {
			finish(call, GRPC_INTERNAL, "OK without a response message", NULL, 0);
		} else if (r[0] != 0) {
			finish(call, GRPC_INTERNAL, "compressed response (none was asked for)", NULL, 0);
		} else {
			uint32_t len = (uint32_t)r[1] << 24 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 8 | r[4];
			if (len != n - 5)
				finish(call, GRPC_INTERNAL, "response length prefix does not match the DATA received", NULL, 0);
			else
				finish(call, GRPC_OK, "", r + 5, len);
		}
		return 0;
	}
	char text[160];
	if (error_code == NGHTTP2_REFUSED_STREAM) {
		finish(call, GRPC_UNAVAILABLE, "stream refused (REFUSED_STREAM)", NULL, 0);
	} else if (error_code == NGHTTP2_CANCEL) {
		finish(call, GRPC_CANCELLED, "stream reset by the server (CANCEL)", NULL, 0);
	} else if (error_code == NGHTTP2_ENHANCE_YOUR_CALM) {
		finish(call, GRPC_RESOURCE_EXHAUSTED, "stream reset by the server (ENHANCE_YOUR_CALM)", NULL, 0);
	} else if (error_code != NGHTTP2_NO_ERROR) {
		snprintf(text, sizeof(text), "stream reset: %s", nghttp2_http2_strerror(error_code));
		finish(call, GRPC_INTERNAL, text, NULL, 0);
	} else if (call->http_status != 200) {
		snprintf(text, sizeof(text), "HTTP status %d", call->http_status);
		finish(call, http_to_grpc(call->http_status), text, NULL, 0);
	} else {
		finish(call, GRPC_UNKNOWN, "reply without grpc-status", NULL, 0);
	}
	return 0;
}

static ssize_t read_request(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
    uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	(void)session, (void)stream_id, (void)user_data;
	struct gcall *call = source->ptr;
	size_t left = call->request_length - call->request_offset;
	size_t n = left < length ? left : length;
	memcpy(buf, call->request + call->request_offset, n);
	call->request_offset += n;
	if (call->request_offset == call->request_length)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int connect_with_timeout(const char *host, const char *port, uint64_t timeout_ns, char *err, size_t errlen)
{
	struct addrinfo hints = {0}, *res, *ai;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(strcmp(host, "localhost") ? host : "127.0.0.1", port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s:%s: %s", host, port, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	int socket_error = 0;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			socket_error = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int ms = (int)(timeout_ns / 1000000) + 1;
			int n;
			do
				n = poll(&pfd, 1, ms);
			while (n < 0 && errno == EINTR);
			if (n == 1) {
				socklen_t len = sizeof(socket_error);
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &socket_error, &len);
				if (socket_error == 0)
					break;
			} else {
				socket_error = ETIMEDOUT;
			}
		} else {
			socket_error = errno;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "connect %s:%s: %s", host, port, strerror(socket_error ? socket_error : ECONNREFUSED));
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* ---- TLS ---- */

static void openssl_reason(char *out, size_t size)
{
	unsigned long code = ERR_peek_last_error();
	const char *reason = code ? ERR_reason_error_string(code) : NULL;
	snprintf(out, size, "%s", reason ? reason : "unknown error");
	ERR_clear_error();
}

struct gconn_tls *gconn_tls_new(const char *ca_file, const char *cert_file, const char *key_file, bool skip_verify,
    char *err, size_t errlen)
{
	char reason[200];
	if ((cert_file && *cert_file) != (key_file && *key_file)) {
		snprintf(err, errlen, "TLS: a client certificate needs its key and a key its certificate (--cert and --key)");
		return NULL;
	}
	SSL_CTX *context = SSL_CTX_new(TLS_client_method());
	if (!context) {
		snprintf(err, errlen, "TLS: cannot create an OpenSSL context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
	/* Records go out as they are written; the reads are one record at a time (no read-ahead), so what
	 * OpenSSL has not handed us yet is still in the socket and epoll keeps saying so. */
	SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	static const unsigned char alpn[] = {2, 'h', '2'};
	SSL_CTX_set_alpn_protos(context, alpn, sizeof alpn);
	if (ca_file && *ca_file) {
		if (SSL_CTX_load_verify_locations(context, ca_file, NULL) != 1) {
			openssl_reason(reason, sizeof reason);
			snprintf(err, errlen, "TLS: cannot read the CA file %s: %s", ca_file, reason);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(context) != 1) {
		openssl_reason(reason, sizeof reason);
		snprintf(err, errlen, "TLS: cannot load the system's CAs: %s", reason);
		goto fail;
	}
	if (cert_file && *cert_file) {
		if (SSL_CTX_use_certificate_chain_file(context, cert_file) != 1) {
			openssl_reason(reason, sizeof reason);
			snprintf(err, errlen, "TLS: cannot read the certificate %s: %s", cert_file, reason);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(context, key_file, SSL_FILETYPE_PEM) != 1) {
			openssl_reason(reason, sizeof reason);
			snprintf(err, errlen, "TLS: cannot read the key %s: %s", key_file, reason);
			goto fail;
		}
		if (SSL_CTX_check_private_key(context) != 1) {
			ERR_clear_error();
			snprintf(err, errlen, "TLS: the key %s does not match the certificate %s", key_file, cert_file);
			goto fail;
		}
	}
	SSL_CTX_set_verify(context, skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	struct gconn_tls *tls = calloc(1, sizeof(*tls));
	if (!tls) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	tls->context = context;
	tls->skip_verify = skip_verify;
	return tls;
fail:
	SSL_CTX_free(context);
	return NULL;
}

void gconn_tls_free(struct gconn_tls *tls)
{
	if (!tls)
		return;
	SSL_CTX_free(tls->context);
	free(tls);
}

/* The handshake on the non-blocking socket, waiting in poll() until deadline. 0, or -1 with a message. */
static int tls_handshake(struct gconn *conn, const struct gconn_tls *tls, const char *host, const char *port,
    uint64_t deadline, char *err, size_t errlen)
{
	conn->ssl = SSL_new(tls->context);
	if (!conn->ssl || SSL_set_fd(conn->ssl, conn->fd) != 1) {
		snprintf(err, errlen, "TLS: cannot create a session for %s:%s", host, port);
		ERR_clear_error();
		return -1;
	}
	if (!certificate_host_is_ip(host))
		SSL_set_tlsext_host_name(conn->ssl, host);
	if (!tls->skip_verify) {
		if (!certificate_expect_host(SSL_get0_param(conn->ssl), host)) {
			snprintf(err, errlen, "TLS: cannot verify against the host %s", host);
			ERR_clear_error();
			return -1;
		}
	}
	for (;;) {
		ERR_clear_error();
		int rv = SSL_connect(conn->ssl);
		if (rv == 1)
			break;
		int error = SSL_get_error(conn->ssl, rv);
		short events = error == SSL_ERROR_WANT_READ ? POLLIN : error == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
		uint64_t now = mono_ns();
		if (events && now < deadline) {
			struct pollfd pfd = {.fd = conn->fd, .events = events};
			if (poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1) >= 0 || errno == EINTR)
				continue;
		}
		long verify = SSL_get_verify_result(conn->ssl);
		char reason[200];
		if (verify != X509_V_OK)
			snprintf(reason, sizeof reason, "certificate verify failed: %s", X509_verify_cert_error_string(verify));
		else if (events)
			snprintf(reason, sizeof reason, "no answer within the dial timeout");
		else if (ERR_peek_last_error())
			openssl_reason(reason, sizeof reason);
		else
			snprintf(reason, sizeof reason, "connection closed during the handshake");
		snprintf(err, errlen, "TLS handshake with %s:%s: %s", host, port, reason);
		ERR_clear_error();
		return -1;
	}
	const unsigned char *protocol = NULL;
	unsigned int protocol_length = 0;
	SSL_get0_alpn_selected(conn->ssl, &protocol, &protocol_length);
	if (protocol_length != 2 || memcmp(protocol, "h2", 2) != 0) {
		snprintf(err, errlen, "TLS handshake with %s:%s: the server did not agree to HTTP/2 (ALPN h2)", host, port);
		return -1;
	}
	return 0;
}

static void free_conn(struct gconn *conn)
{
	SSL_free(conn->ssl);
	close(conn->fd);
	free(conn);
}

struct gconn *gconn_open(const char *host, const char *port, uint64_t timeout_ns, char *err, size_t errlen)
{
	return gconn_open_tls(host, port, NULL, timeout_ns, err, errlen);
}

struct gconn *gconn_open_tls(const char *host, const char *port, const struct gconn_tls *tls, uint64_t timeout_ns,
    char *err, size_t errlen)
{
	uint64_t deadline = mono_ns() + timeout_ns;
	int fd = connect_with_timeout(host, port, timeout_ns, err, errlen);
	if (fd < 0)
		return NULL;
	struct gconn *conn = calloc(1, sizeof(*conn));
	if (!conn) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	conn->fd = fd;
	if (tls && tls_handshake(conn, tls, host, port, deadline, err, errlen) != 0) {
		free_conn(conn);
		return NULL;
	}
	conn->alive = true;
	if (strchr(host, ':'))
		snprintf(conn->authority, sizeof(conn->authority), "[%s]:%s", host, port);
	else
		snprintf(conn->authority, sizeof(conn->authority), "%s:%s", host, port);

	nghttp2_session_callbacks *cbs;
	nghttp2_session_callbacks_new(&cbs);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	int rv = nghttp2_session_client_new(&conn->session, cbs, conn);
	nghttp2_session_callbacks_del(cbs);
	if (rv != 0) {
		snprintf(err, errlen, "nghttp2_session_client_new: %s", nghttp2_strerror(rv));
		free_conn(conn);
		return NULL;
	}
	nghttp2_settings_entry settings[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
	};
	nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings, sizeof(settings) / sizeof(settings[0]));
	nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0, CONNECTION_WINDOW);
	gconn_flush(conn);
	return conn;
}

int gconn_fd(const struct gconn *conn)
{
	return conn->fd;
}

bool gconn_alive(const struct gconn *conn)
{
	return conn->alive;
}

bool gconn_wants_write(const struct gconn *conn)
{
	return conn->alive && conn->want_write;
}

const char *gconn_error(const struct gconn *conn)
{
	return conn->error;
}

size_t gconn_calls_in_flight(const struct gconn *conn)
{
	return conn->call_count;
}

void gconn_close(struct gconn *conn)
{
	if (!conn)
		return;
	conn_fail(conn, "%s", "connection closed");
	conn->closing = true;
	nghttp2_session_del(conn->session);
	free(conn->out);
	free_conn(conn);
}

void gcall_free(struct gcall *call)
{
	free(call->request);
	free(call->response);
	call->request = call->response = NULL;
	call->request_capacity = call->response_capacity = 0;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME}

int gconn_start_call(struct gconn *conn, struct gcall *call, const char *path, const uint8_t *request,
    size_t length)
{
	if (!conn->alive)
		return -1;
	size_t need = length + 5;
	if (need > call->request_capacity) {
		uint8_t *p = realloc(call->request, need);
		if (!p)
			return -1;
		call->request = p;
		call->request_capacity = need;
	}
	call->request[0] = 0;
	call->request[1] = (uint8_t)(length >> 24);
	call->request[2] = (uint8_t)(length >> 16);
	call->request[3] = (uint8_t)(length >> 8);
	call->request[4] = (uint8_t)length;
	if (length)
		memcpy(call->request + 5, request, length);
	call->request_length = need;
	call->request_offset = 0;
	call->response_length = 0;
	call->http_status = 0;
	call->grpc_status = -1;
	call->cancelled = false;
	call->message[0] = '\0';

	const nghttp2_nv headers[] = {
		NV(":method", "POST"),
		NV(":scheme", conn->ssl ? "https" : "http"),
		NV(":path", path),
		NV(":authority", conn->authority),
		NV("content-type", "application/grpc"),
		NV("te", "trailers"),
		NV("user-agent", "quorum-bench/0.1"),
	};
	nghttp2_data_provider provider = {.source.ptr = call, .read_callback = read_request};
	int32_t id = nghttp2_submit_request(conn->session, NULL, headers, sizeof(headers) / sizeof(headers[0]),
	    &provider, call);
	if (id < 0) {
		/* Stream IDs exhausted (2^30 calls on one connection) or out of memory: retire the connection. */
		conn_fail(conn, "nghttp2_submit_request: %s", nghttp2_strerror(id));
		return -1;
	}
	call->stream_id = id;
	call->conn = conn;
	call->prev = NULL;
	call->next = conn->calls;
	if (conn->calls)
		conn->calls->prev = call;
	conn->calls = call;
	conn->call_count++;
	return 0;
}

void gconn_cancel(struct gconn *conn, struct gcall *call, int status, const char *message)
{
	if (call->conn != conn || call->cancelled)
		return;
	call->cancelled = true;
	call->grpc_status = status;
	snprintf(call->message, sizeof(call->message), "%s", message);
	if (nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL) != 0) {
		unlink_call(conn, call);
		finish(call, status, call->message, NULL, 0);
	}
}

/* recv()'s contract on the TLS session: > 0 bytes, 0 at the end (close_notify or EOF), -1 with errno
 * (EAGAIN while a record is incomplete, EPROTO for a TLS error). */
static ssize_t tls_receive(struct gconn *conn, uint8_t *buf, size_t size)
{
	ERR_clear_error();
	int n = SSL_read(conn->ssl, buf, (int)size);
	if (n > 0)
		return n;
	switch (SSL_get_error(conn->ssl, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0 || ERR_peek_last_error() == 0)
			return errno ? -1 : 0;
		/* fall through */
	default:
		openssl_reason(conn->tls_error, sizeof(conn->tls_error));
		errno = EPROTO;
		return -1;
	}
}

/* send()'s contract on the TLS session. */
static ssize_t tls_send(struct gconn *conn, const uint8_t *data, size_t length)
{
	ERR_clear_error();
	int n = SSL_write(conn->ssl, data, length > INT32_MAX ? INT32_MAX : (int)length);
	if (n > 0)
		return n;
	switch (SSL_get_error(conn->ssl, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_SYSCALL:
		if (errno)
			return -1;
		/* fall through */
	default:
		openssl_reason(conn->tls_error, sizeof(conn->tls_error));
		errno = EPROTO;
		return -1;
	}
}

/* What failed, for a read or write that returned -1. */
static const char *io_error(const struct gconn *conn)
{
	return errno == EPROTO && conn->tls_error[0] ? conn->tls_error : strerror(errno);
}

void gconn_on_event(struct gconn *conn, uint32_t events)
{
	if (!conn->alive)
		return;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		uint8_t buf[READ_CHUNK];
		for (int i = 0; i < 8 || (conn->ssl && SSL_pending(conn->ssl) > 0); i++) {
			ssize_t n = conn->ssl ? tls_receive(conn, buf, sizeof(buf)) : recv(conn->fd, buf, sizeof(buf), 0);
			if (n > 0) {
				ssize_t rv = nghttp2_session_mem_recv(conn->session, buf, (size_t)n);
				if (rv < 0) {
					conn_fail(conn, "HTTP/2 error: %s", nghttp2_strerror((int)rv));
					return;
				}
				if (!conn->ssl && (size_t)n < sizeof(buf))
					break;
			} else if (n == 0) {
				conn_fail(conn, "%s", "connection closed by the server");
				return;
			} else if (errno == EINTR) {
				continue;
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				break;
			} else {
				conn_fail(conn, "recv: %s", io_error(conn));
				return;
			}
		}
	}
	if (events & EPOLLOUT)
		gconn_flush(conn);
}

void gconn_flush(struct gconn *conn)
{
	while (conn->alive) {
		while (conn->out_len - conn->out_off < OUT_GATHER) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(conn->session, &data);
			if (n < 0) {
				conn_fail(conn, "HTTP/2 error: %s", nghttp2_strerror((int)n));
				return;
			}
			if (n == 0)
				break;
			if (conn->out_len + (size_t)n > conn->out_cap) {
				if (conn->out_off > 0) {
					memmove(conn->out, conn->out + conn->out_off, conn->out_len - conn->out_off);
					conn->out_len -= conn->out_off;
					conn->out_off = 0;
				}
				size_t cap = conn->out_cap ? conn->out_cap : OUT_GATHER;
				while (cap < conn->out_len + (size_t)n)
					cap *= 2;
				if (cap != conn->out_cap) {
					uint8_t *p = realloc(conn->out, cap);
					if (!p) {
						conn_fail(conn, "%s", "out of memory");
						return;
					}
					conn->out = p;
					conn->out_cap = cap;
				}
			}
			memcpy(conn->out + conn->out_len, data, (size_t)n);
			conn->out_len += (size_t)n;
		}
		if (conn->out_off == conn->out_len) {
			conn->out_off = conn->out_len = 0;
			conn->want_write = false;
			break;
		}
		ssize_t w = conn->ssl ? tls_send(conn, conn->out + conn->out_off, conn->out_len - conn->out_off)
		                      : send(conn->fd, conn->out + conn->out_off, conn->out_len - conn->out_off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn->want_write = true;
				return;
			}
			conn_fail(conn, "send: %s", io_error(conn));
			return;
		}
		conn->out_off += (size_t)w;
		if (conn->out_off < conn->out_len) {
			conn->want_write = true;
			return;
		}
		conn->out_off = conn->out_len = 0;
	}
	if (conn->alive && !nghttp2_session_want_read(conn->session) && !nghttp2_session_want_write(conn->session))
		conn_fail(conn, "%s", "connection closed by the server (GOAWAY)");
}

/* ---- one call, waited for ---- */

struct sync_call {
	struct gcall call;
	bool done;
	int status;
	uint8_t *response;
	size_t response_length;
};

static void sync_done(struct gcall *call, int status, const char *message, const uint8_t *response, size_t length)
{
	(void)message;
	struct sync_call *s = (struct sync_call *)call;
	s->done = true;
	s->status = status;
	if (status == GRPC_OK) {
		s->response = malloc(length ? length : 1);
		if (s->response) {
			memcpy(s->response, response, length);
			s->response_length = length;
		} else {
			s->status = GRPC_RESOURCE_EXHAUSTED;
		}
	}
}

int gconn_call_sync(const char *host, const char *port, const char *path, const uint8_t *request, size_t length,
    uint64_t timeout_ns, uint8_t **response, size_t *response_length, char *message, size_t message_length)
{
	return gconn_call_sync_tls(host, port, NULL, path, request, length, timeout_ns, response, response_length, message,
	    message_length);
}

int gconn_call_sync_tls(const char *host, const char *port, const struct gconn_tls *tls, const char *path,
    const uint8_t *request, size_t length, uint64_t timeout_ns, uint8_t **response, size_t *response_length,
    char *message, size_t message_length)
{
	*response = NULL;
	*response_length = 0;
	uint64_t deadline = mono_ns() + timeout_ns;
	struct gconn *conn = gconn_open_tls(host, port, tls, timeout_ns, message, message_length);
	if (!conn)
		return GRPC_UNAVAILABLE;
	struct sync_call s = {0};
	s.call.done = sync_done;
	if (gconn_start_call(conn, &s.call, path, request, length) != 0) {
		snprintf(message, message_length, "%s", conn->error);
		gconn_close(conn);
		gcall_free(&s.call);
		return GRPC_UNAVAILABLE;
	}
	gconn_flush(conn);
	while (!s.done) {
		uint64_t now = mono_ns();
		if (now >= deadline) {
			gconn_cancel(conn, &s.call, GRPC_DEADLINE_EXCEEDED, "no answer within the timeout");
			break;
		}
		struct pollfd pfd = {.fd = conn->fd, .events = POLLIN | (conn->want_write ? POLLOUT : 0)};
		int n = poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1);
		if (n > 0) {
			uint32_t ev = 0;
			if (pfd.revents & POLLIN)
				ev |= EPOLLIN;
			if (pfd.revents & POLLOUT)
				ev |= EPOLLOUT;
			if (pfd.revents & (POLLERR | POLLHUP))
				ev |= EPOLLERR;
			gconn_on_event(conn, ev);
			gconn_flush(conn);
		}
	}
	if (!s.done) {
		gconn_close(conn); /* finishes the call (cancelled: DEADLINE_EXCEEDED) */
		conn = NULL;
	}
	snprintf(message, message_length, "%s", s.call.message);
	if (conn)
		gconn_close(conn);
	gcall_free(&s.call);
	*response = s.response;
	*response_length = s.response_length;
	return s.status;
}
