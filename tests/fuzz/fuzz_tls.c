/* tests/fuzz/fuzz_tls.c: libFuzzer target for the TLS record entry point of the client port
 * (control/grpc/grpc_tls.c: grpc_tls_receive and what it hands on): the bytes a client sends to an https://
 * client URL, read by the real server over a real loopback TCP connection.
 *
 * Input: byte 0 configures the run:
 *   bit 0   0: raw — the rest is written to the TLS port as it is (ClientHellos, records, garbage: the
 *              first-record check, OpenSSL's parsing, our ClientHello, ALPN and alert callbacks);
 *           1: session — an in-process OpenSSL client completes a handshake first, then the rest is its
 *              plaintext (HTTP/2 or HTTP/1.1 bytes), sent as records (the decrypted path into the
 *              protocols, and the server's encrypted answers).
 *   bit 1   session: TLS 1.2 instead of 1.3.
 *   bit 2   session: one byte of the client's application-data records is flipped (the one at byte 1 of
 *           the input): the server must drop the connection, nothing else.
 *   bit 3   the server requires client certificates (the session's client presents none: refused).
 *   bit 4   session: the client offers ALPN http/1.1 instead of h2.
 *   bits 5-7 bytes per write(): 4096 >> k.
 * The server must close every connection once the client has gone.
 *
 * Seeds (corpus/tls/): ClientHellos of openssl s_client and curl captured by tests/fuzz/make_tls_seeds.sh, and
 * session inputs carrying the HTTP/2 preface or an HTTP/1.1 GET. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc_server.h"
#include "grpc_tls.h"
#include "log.h"

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, "fuzz-tls: " __VA_ARGS__);                             \
		fputc('\n', stderr);                                                   \
		abort();                                                               \
	} while (0)

static struct grpc_server *servers[2]; /* [0]: no client certificates; [1]: required */
static bool trace; /* FUZZ_TLS_TRACE=1: say how far each input got */
static int ports[2];
static SSL_CTX *client_tls12, *client_tls13;

static void echo(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	grpc_call_send(call, message, length);
	grpc_call_finish(call, 0, NULL);
}

static bool http_get(void *context, const char *path, struct grpc_http_response *response)
{
	(void)context;
	if (strcmp(path, "/health") != 0)
		return false;
	response->status = 200;
	response->content_type = "application/json";
	response->body = strdup("{\"health\":\"true\"}");
	response->body_length = response->body != NULL ? strlen(response->body) : 0;
	return true;
}

static const struct grpc_method methods[] = {
	{ "/etcdserverpb.KV/Range", GRPC_METHOD_UNARY, echo, NULL },
	{ "/etcdserverpb.Watch/Watch", GRPC_METHOD_BIDI_STREAM, echo, NULL },
};

static SSL_CTX *client_context(int version)
{
	SSL_CTX *context = SSL_CTX_new(TLS_client_method());
	if (context == NULL)
		FAIL("SSL_CTX_new");
	SSL_CTX_set_min_proto_version(context, version);
	SSL_CTX_set_max_proto_version(context, version);
	SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
	return context;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char error[512];
	/* The rejections are logged at warn: quiet for a run of millions. */
	if (log_configure("error", "stderr", error, sizeof error) != 0)
		FAIL("log_configure: %s", error);
	const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	char directory[512];
	snprintf(directory, sizeof directory, "%s/fuzz-tls-%d", tmp, (int)getpid());
	const char *hosts[] = { "127.0.0.1:0" };
	bool created;
	if (grpc_tls_self_signed(directory, hosts, 1, &created, error, sizeof error) != 0)
		FAIL("grpc_tls_self_signed: %s", error);
	char cert[600], key[600];
	snprintf(cert, sizeof cert, "%s/cert.pem", directory);
	snprintf(key, sizeof key, "%s/key.pem", directory);
	struct grpc_tls_context *open_context = grpc_tls_context_new(&(struct grpc_tls_settings){ .cert_file = cert,
		.key_file = key }, error, sizeof error);
	struct grpc_tls_context *auth_context = grpc_tls_context_new(&(struct grpc_tls_settings){ .cert_file = cert,
		.key_file = key, .trusted_ca_file = cert, .client_cert_auth = true }, error, sizeof error);
	if (open_context == NULL || auth_context == NULL)
		FAIL("grpc_tls_context_new: %s", error);
	/* The contexts hold what they need in memory now. */
	unlink(cert);
	unlink(key);
	rmdir(directory);
	const char *urls[] = { "https://127.0.0.1:0" };
	for (int i = 0; i < 2; i++) {
		struct grpc_server_config config = {
			.listen_urls = urls,
			.listen_url_count = 1,
			.tls = i == 0 ? open_context : auth_context,
			.methods = methods,
			.method_count = sizeof methods / sizeof methods[0],
			.max_message_bytes = 1 << 20,
			.http_get = http_get,
		};
		servers[i] = grpc_server_open(&config, error, sizeof error);
		if (servers[i] == NULL)
			FAIL("grpc_server_open: %s", error);
		ports[i] = grpc_server_port(servers[i]);
	}
	trace = getenv("FUZZ_TLS_TRACE") != NULL;
	client_tls12 = client_context(TLS1_2_VERSION);
	client_tls13 = client_context(TLS1_3_VERSION);
	return 0;
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0 && errno != EINPROGRESS)
		FAIL("connect: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* The client's end of the wire: what the server wrote goes to the session (when there is one). */
struct wire {
	int fd;
	struct grpc_server *server;
	BIO *to_client;   /* session: the server's records, for the client SSL */
	BIO *from_client; /* session: the client's records, for the socket */
	bool server_closed;
	size_t sent;      /* bytes of client records written so far */
	size_t flip_at;   /* flip the byte at this offset of the client's records (SIZE_MAX: never) */
	size_t flip_after_handshake; /* flip_at once the handshake is done */
};

static void pump(struct wire *wire, size_t chunk)
{
	grpc_server_process(wire->server);
	uint8_t buffer[16384];
	for (;;) {
		ssize_t got = recv(wire->fd, buffer, sizeof buffer, 0);
		if (got > 0) {
			if (wire->to_client != NULL)
				BIO_write(wire->to_client, buffer, (int)got);
			continue;
		}
		if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			wire->server_closed = true;
		break;
	}
	if (wire->from_client == NULL)
		return;
	while (BIO_ctrl_pending(wire->from_client) > 0 && !wire->server_closed) {
		int length = BIO_read(wire->from_client, buffer, (int)(chunk < sizeof buffer ? chunk : sizeof buffer));
		if (length <= 0)
			break;
		if (wire->flip_at >= wire->sent && wire->flip_at < wire->sent + (size_t)length)
			buffer[wire->flip_at - wire->sent] ^= 0x5a;
		wire->sent += (size_t)length;
		if (send(wire->fd, buffer, (size_t)length, MSG_NOSIGNAL) < 0)
			wire->server_closed = true;
		grpc_server_process(wire->server);
	}
}

static void send_raw(struct wire *wire, const uint8_t *data, size_t size, size_t chunk)
{
	for (size_t offset = 0; offset < size && !wire->server_closed; offset += chunk) {
		size_t take = size - offset < chunk ? size - offset : chunk;
		if (send(wire->fd, data + offset, take, MSG_NOSIGNAL) < 0) {
			wire->server_closed = true;
			break;
		}
		pump(wire, chunk);
	}
}

static void run_session(struct wire *wire, const uint8_t *data, size_t size, uint8_t config, size_t chunk)
{
	SSL *ssl = SSL_new(config & 2 ? client_tls12 : client_tls13);
	BIO *client_side, *network_side;
	if (ssl == NULL || BIO_new_bio_pair(&client_side, 0, &network_side, 0) != 1)
		FAIL("client SSL");
	SSL_set_bio(ssl, client_side, client_side);
	SSL_set_connect_state(ssl);
	static const unsigned char h2[] = "\x02h2", http11[] = "\x08http/1.1";
	if (config & 16)
		SSL_set_alpn_protos(ssl, http11, sizeof http11 - 1);
	else
		SSL_set_alpn_protos(ssl, h2, sizeof h2 - 1);
	/* The bio pair: what the client writes is read from network_side, what the server sent is written
	 * into it. */
	wire->to_client = network_side;
	wire->from_client = network_side;
	bool up = false;
	size_t answered = 0;
	for (int round = 0; round < 200 && !wire->server_closed; round++) {
		int result = SSL_do_handshake(ssl);
		pump(wire, chunk);
		if (result == 1) {
			up = true;
			/* The flip hits the records of the application data. */
			wire->sent = 0;
			wire->flip_at = wire->flip_after_handshake;
			break;
		}
		int reason = SSL_get_error(ssl, result);
		if (reason != SSL_ERROR_WANT_READ && reason != SSL_ERROR_WANT_WRITE)
			break;
		struct pollfd poll_fd = { .fd = wire->fd, .events = POLLIN };
		poll(&poll_fd, 1, 1);
	}
	for (size_t offset = 0; up && offset < size && !wire->server_closed; offset += chunk) {
		size_t take = size - offset < chunk ? size - offset : chunk;
		if (SSL_write(ssl, data + offset, (int)take) <= 0)
			break;
		pump(wire, chunk);
		uint8_t plaintext[16384];
		for (int got; (got = SSL_read(ssl, plaintext, sizeof plaintext)) > 0;)
			answered += (size_t)got;
	}
	/* The answers, until the server is quiet. */
	for (int round = 0; up && round < 20 && !wire->server_closed; round++) {
		struct pollfd poll_fd = { .fd = wire->fd, .events = POLLIN };
		poll(&poll_fd, 1, 1);
		pump(wire, chunk);
		uint8_t plaintext[16384];
		for (int got; (got = SSL_read(ssl, plaintext, sizeof plaintext)) > 0;)
			answered += (size_t)got;
	}
	if (trace) {
		const unsigned char *alpn = NULL;
		unsigned alpn_length = 0;
		if (up)
			SSL_get0_alpn_selected(ssl, &alpn, &alpn_length);
		fprintf(stderr, "fuzz-tls: handshake %s (%s, ALPN '%.*s'); %zu bytes of records sent, %zu bytes of answers "
			"read; the server %s\n", up ? "done" : "failed", SSL_get_version(ssl), (int)alpn_length,
			alpn != NULL ? (const char *)alpn : "", wire->sent, answered, wire->server_closed ? "closed" : "kept it open");
	}
	ERR_clear_error();
	wire->to_client = wire->from_client = NULL;
	SSL_free(ssl);
	BIO_free(network_side);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t config = data[0];
	size_t chunk = (size_t)4096 >> ((config >> 5) & 7);
	int which = config & 8 ? 1 : 0;
	struct wire wire = { .fd = connect_to(ports[which]), .server = servers[which], .flip_at = SIZE_MAX,
		.flip_after_handshake = config & 4 ? data[1] : SIZE_MAX };
	/* accept */
	for (int round = 0; round < 3; round++)
		grpc_server_process(wire.server);
	if (config & 1)
		run_session(&wire, data + 2, size - 2, config, chunk);
	else
		send_raw(&wire, data + 1, size - 1, chunk);
	for (int round = 0; round < 20 && !wire.server_closed; round++) {
		struct pollfd poll_fd = { .fd = wire.fd, .events = POLLIN };
		poll(&poll_fd, 1, 1);
		pump(&wire, chunk);
	}
	close(wire.fd);
	/* Whatever state the connection was in (handshaking, lingering, serving), it must go once the client has. */
	struct grpc_server_stats stats;
	for (int round = 0; round < 2000; round++) {
		grpc_server_process(wire.server);
		grpc_server_get_stats(wire.server, &stats);
		if (stats.connections_open == 0)
			break;
		struct pollfd poll_fd = { .fd = grpc_server_fd(wire.server), .events = POLLIN };
		poll(&poll_fd, 1, 1);
	}
	if (stats.connections_open != 0)
		FAIL("%llu connection(s) still open after the client closed", (unsigned long long)stats.connections_open);
	return 0;
}
