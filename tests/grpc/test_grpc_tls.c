/* tests/grpc/test_grpc_tls.c: the server's TLS (control/grpc/grpc_tls.c) against real TLS clients.
 *
 * Needs the test PKI of tests/tls/make-pki.sh in $TLS_PKI_DIR (tests/tls/with-pki.sh makes it in a temp dir
 * and removes it afterwards, whatever happens here). A thread runs three servers: an https port requiring
 * client certificates from the test CA, the same as a metrics port (the client's address must be in its
 * certificate's IP SANs), and one port serving http:// and https:// at once without client certificates.
 * The main thread talks to them with OpenSSL clients (gRPC through nghttp2, HTTP/1.1 by hand) and curl, and
 * reads the server's log (a file) for etcd's "rejected connection" lines.
 *
 * Run: tests/tls/with-pki.sh build/tests/grpc/test-grpc-tls */
#include "grpc_server.h"
#include "grpc_tls.h"
#include "http2_client.h"
#include "log.h"
#include "../control/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BIG_TOTAL (4 * 1024 * 1024)
#define BIG_CHUNK (64 * 1024)

static const char *pki_directory;
static char log_path[512];

static uint64_t now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* PKI file NAME ("ca.pem") as a path, in one of a few rotating buffers. */
static const char *pki(const char *name)
{
	static char paths[8][512];
	static unsigned next;
	char *path = paths[next++ % 8];
	snprintf(path, sizeof paths[0], "%s/%s", pki_directory, name);
	return path;
}

static uint8_t big_byte(size_t offset)
{
	return (uint8_t)((offset * 13 + offset / 8191) % 241);
}

/* ---- the service (runs in the server thread) ---- */

enum { SERVER_AUTH, SERVER_METRICS, SERVER_BOTH, SERVER_RELOAD, SERVER_COUNT };
static struct grpc_server *servers[SERVER_COUNT];
static int ports[SERVER_COUNT];

static pthread_mutex_t big_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct grpc_server *server;
	uint64_t call_id;
	size_t sent;
} big;

static void echo_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	grpc_call_send(call, message, length);
	grpc_call_finish(call, 0, NULL);
}

static void big_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	(void)message;
	(void)length;
	pthread_mutex_lock(&big_mutex);
	big.server = servers[SERVER_AUTH];
	big.call_id = grpc_call_id(call);
	big.sent = 0;
	pthread_mutex_unlock(&big_mutex);
}

/* Sends the big stream as the client reads it (as etcd's Snapshot does). */
static void pump_big(void)
{
	static uint8_t chunk[BIG_CHUNK];
	pthread_mutex_lock(&big_mutex);
	struct grpc_call *call = big.server != NULL ? grpc_server_find_call(big.server, big.call_id) : NULL;
	while (call != NULL && big.sent < BIG_TOTAL && grpc_call_pending_bytes(call) < 256 * 1024) {
		for (size_t i = 0; i < BIG_CHUNK; i++)
			chunk[i] = big_byte(big.sent + i);
		if (grpc_call_send(call, chunk, BIG_CHUNK) != 0)
			break;
		big.sent += BIG_CHUNK;
		if (big.sent == BIG_TOTAL)
			grpc_call_finish(call, 0, NULL);
	}
	pthread_mutex_unlock(&big_mutex);
}

static bool http_get(void *context, const char *path, struct grpc_http_response *response)
{
	(void)context;
	if (strcmp(path, "/health") != 0)
		return false;
	static const char body[] = "{\"health\":\"true\"}";
	response->status = 200;
	response->content_type = "application/json";
	response->body = strdup(body);
	response->body_length = sizeof body - 1;
	response->get_only = true;
	return true;
}

static const struct grpc_method methods[] = {
	{ "/test.Echo/Unary", GRPC_METHOD_UNARY, echo_message, NULL },
	{ "/test.Echo/Big", GRPC_METHOD_SERVER_STREAM, big_message, NULL },
};

static pthread_mutex_t stop_mutex = PTHREAD_MUTEX_INITIALIZER;
static bool stopping;

static void *server_thread(void *argument)
{
	(void)argument;
	for (;;) {
		pthread_mutex_lock(&stop_mutex);
		bool stop = stopping;
		pthread_mutex_unlock(&stop_mutex);
		if (stop)
			break;
		struct pollfd fds[SERVER_COUNT];
		for (int i = 0; i < SERVER_COUNT; i++)
			fds[i] = (struct pollfd){ .fd = grpc_server_fd(servers[i]), .events = POLLIN };
		poll(fds, SERVER_COUNT, 5);
		for (int i = 0; i < SERVER_COUNT; i++) {
			grpc_server_hold_output(servers[i]);
			grpc_server_process(servers[i]);
			grpc_server_flush(servers[i]);
		}
		pump_big();
		for (int i = 0; i < SERVER_COUNT; i++)
			grpc_server_flush(servers[i]);
	}
	return NULL;
}

/* ---- clients ---- */

/* A client context trusting ca (NULL: nothing), presenting cert/key (NULL: none), offering alpn
 * (wire format, NULL: no ALPN), up to max_version (0: TLS 1.3). */
static SSL_CTX *client_context(const char *ca, const char *cert, const char *key, const char *alpn, int max_version)
{
	SSL_CTX *context = SSL_CTX_new(TLS_client_method());
	if (ca != NULL) {
		SSL_CTX_load_verify_locations(context, ca, NULL);
		SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
		X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(context), "127.0.0.1");
	}
	if (cert != NULL) {
		SSL_CTX_use_certificate_chain_file(context, cert);
		SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM);
	}
	if (alpn != NULL)
		SSL_CTX_set_alpn_protos(context, (const unsigned char *)alpn, (unsigned)strlen(alpn));
	if (max_version != 0) {
		SSL_CTX_set_min_proto_version(context, 0);
		SSL_CTX_set_max_proto_version(context, max_version);
		/* TLS 1.1 needs SHA-1 signatures, below OpenSSL 3's default level. */
		SSL_CTX_set_security_level(context, 0);
	}
	return context;
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
		close(fd);
		return -1;
	}
	struct timeval timeout = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
	return fd;
}

struct exchange {
	bool handshake;       /* the client's side of the handshake completed */
	char alpn[16];        /* the protocol the server chose */
	int version;          /* TLS1_2_VERSION, TLS1_3_VERSION */
	char response[2048];  /* what came back for the request */
	size_t response_length;
	bool close_notify;    /* the server ended with close_notify (a clean TLS close) */
};

/* Connects with context, sends request (may be NULL) and reads until the server closes or 5 s pass. */
static void tls_exchange(int port, SSL_CTX *context, const char *request, struct exchange *result)
{
	memset(result, 0, sizeof *result);
	int fd = connect_to(port);
	if (fd < 0)
		return;
	SSL *ssl = SSL_new(context);
	SSL_set_fd(ssl, fd);
	result->handshake = SSL_connect(ssl) == 1;
	if (result->handshake) {
		const unsigned char *alpn;
		unsigned alpn_length;
		SSL_get0_alpn_selected(ssl, &alpn, &alpn_length);
		snprintf(result->alpn, sizeof result->alpn, "%.*s", (int)alpn_length, alpn);
		result->version = SSL_version(ssl);
		if (request != NULL)
			SSL_write(ssl, request, (int)strlen(request));
		for (;;) {
			int got = SSL_read(ssl, result->response + result->response_length,
				(int)(sizeof result->response - 1 - result->response_length));
			if (got <= 0) {
				result->close_notify = SSL_get_error(ssl, got) == SSL_ERROR_ZERO_RETURN;
				break;
			}
			result->response_length += (size_t)got;
		}
		result->response[result->response_length] = '\0';
	}
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
}

static const char health_request[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

static bool served_health(const struct exchange *exchange)
{
	return strncmp(exchange->response, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
		strstr(exchange->response, "\r\n\r\n{\"health\":\"true\"}") != NULL;
}

static bool echo_works(struct client *client, const char *text)
{
	if (client == NULL)
		return false;
	struct client_stream stream;
	client_stream_init(&stream);
	client_stream_start(client, &stream, "/test.Echo/Unary");
	client_stream_write(client, &stream, (const uint8_t *)text, strlen(text), true);
	bool ok = client_pump(client, client_stream_is_closed, &stream, 10000);
	const uint8_t *message;
	size_t length;
	ok = ok && stream.grpc_status == 0 && client_stream_message(&stream, 0, &message, &length) &&
		length == strlen(text) && memcmp(message, text, length) == 0;
	client_stream_free(&stream);
	return ok;
}

/* The server's log holds a line with every fragment (polled: the server thread writes it). */
static bool log_has_line(const char *first, const char *second)
{
	uint64_t deadline = now_ms() + 5000;
	while (now_ms() < deadline) {
		FILE *file = fopen(log_path, "r");
		char line[4096];
		bool found = false;
		while (file != NULL && !found && fgets(line, sizeof line, file) != NULL)
			found = strstr(line, first) != NULL && (second == NULL || strstr(line, second) != NULL);
		if (file != NULL)
			fclose(file);
		if (found)
			return true;
		usleep(20000);
	}
	return false;
}

static uint64_t rejected_count(int server)
{
	struct grpc_server_stats stats;
	grpc_server_get_stats(servers[server], &stats);
	return stats.tls_rejected;
}

/* ---- the tests ---- */

/* Every Go name etcd takes maps to the suite OpenSSL knows by the same standard name. */
static void test_cipher_names(void)
{
	const char *tls12[] = {
		"TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_AES_128_GCM_SHA256",
		"TLS_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
		"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
		"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
		"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
		"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
		"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
		"TLS_RSA_WITH_RC4_128_SHA", "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
	};
	size_t compared = 0;
	for (size_t i = 0; i < sizeof tls12 / sizeof tls12[0]; i++) {
		const char *ours = grpc_tls_cipher_openssl_name(tls12[i]);
		const char *openssl = OPENSSL_cipher_name(tls12[i]);
		CHECK(ours != NULL && ours[0] != '\0', "%s has no OpenSSL name", tls12[i]);
		if (ours != NULL && strcmp(openssl, "(NONE)") != 0) {
			CHECK(strcmp(ours, openssl) == 0, "%s: ours %s, OpenSSL's %s", tls12[i], ours, openssl);
			compared++;
		}
	}
	CHECK(compared >= 16, "only %zu names compared with OpenSSL's table", compared);
	CHECK(strcmp(grpc_tls_cipher_openssl_name("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"), "ECDHE-RSA-CHACHA20-POLY1305") == 0,
		"etcd's short ChaCha20 spelling");
	CHECK(strcmp(grpc_tls_cipher_openssl_name("TLS_AES_128_GCM_SHA256"), "") == 0, "a TLS 1.3 suite is accepted");
	CHECK(grpc_tls_cipher_openssl_name("ECDHE-RSA-AES128-GCM-SHA256") == NULL, "an OpenSSL name is not etcd's");
	CHECK(grpc_tls_cipher_openssl_name("TLS_BOGUS") == NULL, "an unknown name");
}

static void expect_context_error(const struct grpc_tls_settings *settings, const char *expected)
{
	char error[512] = "";
	struct grpc_tls_context *context = grpc_tls_context_new(settings, error, sizeof error);
	CHECK(context == NULL && strstr(error, expected) != NULL, "expected an error with \"%s\", got \"%s\"", expected,
		error);
	grpc_tls_context_free(context);
}

static void test_context_errors(void)
{
	char cert[512], key[512], expected[1200];
	snprintf(cert, sizeof cert, "%s", pki("infra1.pem"));
	snprintf(key, sizeof key, "%s", pki("infra1-key.pem"));
	snprintf(expected, sizeof expected, "KeyFile and CertFile must both be present[key: , cert: %s]", cert);
	expect_context_error(&(struct grpc_tls_settings){ .cert_file = cert }, expected);
	char missing[512];
	snprintf(missing, sizeof missing, "%s", pki("missing.pem"));
	snprintf(expected, sizeof expected, "open %s: no such file or directory", missing);
	expect_context_error(&(struct grpc_tls_settings){ .cert_file = missing, .key_file = key }, expected);
	expect_context_error(&(struct grpc_tls_settings){ .cert_file = cert, .key_file = pki("client-key.pem") },
		"tls: private key does not match public key");
	expect_context_error(&(struct grpc_tls_settings){ .cert_file = key, .key_file = key },
		"tls: failed to find any PEM data in certificate input");
	expect_context_error(&(struct grpc_tls_settings){ .cert_file = cert, .key_file = key,
		.cipher_suites = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_BOGUS" }, "unexpected TLS cipher suite \"TLS_BOGUS\"");
	expect_context_error(&(struct grpc_tls_settings){ .cert_file = cert, .key_file = key, .trusted_ca_file = missing },
		"no such file or directory");

	char error[256];
	struct grpc_tls_context *context = grpc_tls_context_new(&(struct grpc_tls_settings){ .cert_file = cert,
		.key_file = key, .cipher_suites = "TLS_AES_128_GCM_SHA256" }, error, sizeof error);
	CHECK(context != NULL, "only TLS 1.3 suites named: %s", error);
	grpc_tls_context_free(context);
}

/* --auto-tls: etcd's transport.SelfCert. */
static void test_self_signed(void)
{
	char directory[600];
	snprintf(directory, sizeof directory, "%s/auto/fixtures/client", pki_directory);
	const char *hosts[] = { "127.0.0.1:2379", "[::1]:2379", "localhost:2379" };
	bool created = false;
	char error[256];
	CHECK(grpc_tls_self_signed(directory, hosts, 3, &created, error, sizeof error) == 0 && created, "%s", error);
	char cert_path[700], key_path[700];
	snprintf(cert_path, sizeof cert_path, "%s/cert.pem", directory);
	snprintf(key_path, sizeof key_path, "%s/key.pem", directory);
	struct stat key_info, directory_info;
	CHECK(stat(key_path, &key_info) == 0 && (key_info.st_mode & 0777) == 0600, "key mode %o", key_info.st_mode & 0777);
	CHECK(stat(directory, &directory_info) == 0 && (directory_info.st_mode & 0777) == 0700, "directory mode %o",
		directory_info.st_mode & 0777);
	FILE *file = fopen(key_path, "r");
	char first_line[64] = "";
	if (file != NULL && fgets(first_line, sizeof first_line, file) == NULL)
		first_line[0] = '\0';
	if (file != NULL)
		fclose(file);
	CHECK(strcmp(first_line, "-----BEGIN EC PRIVATE KEY-----\n") == 0, "key PEM type: %s", first_line);

	file = fopen(cert_path, "r");
	X509 *certificate = file != NULL ? PEM_read_X509(file, NULL, NULL, NULL) : NULL;
	if (file != NULL)
		fclose(file);
	CHECK(certificate != NULL, "cert.pem does not parse");
	if (certificate != NULL) {
		char subject[128];
		X509_NAME_oneline(X509_get_subject_name(certificate), subject, sizeof subject);
		CHECK(strcmp(subject, "/O=etcd") == 0, "subject %s", subject);
		CHECK(X509_check_ip_asc(certificate, "127.0.0.1", 0) == 1, "no IP SAN 127.0.0.1");
		CHECK(X509_check_ip_asc(certificate, "::1", 0) == 1, "no IP SAN ::1");
		CHECK(X509_check_host(certificate, "localhost", 0, 0, NULL) == 1, "no DNS SAN localhost");
		CHECK(X509_check_purpose(certificate, X509_PURPOSE_SSL_SERVER, 0) == 1, "not a server certificate");
		CHECK(X509_check_ca(certificate) == 0, "a CA certificate");
		EVP_PKEY *key = X509_get0_pubkey(certificate);
		char group[32] = "";
		size_t group_length = 0;
		EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &group_length);
		CHECK(strcmp(group, "secp521r1") == 0, "key group %s", group);
		int days = 0, seconds = 0;
		ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(certificate), X509_get0_notAfter(certificate));
		CHECK(days == 365, "valid for %d days", days);
		X509_free(certificate);
	}
	struct grpc_tls_context *context = grpc_tls_context_new(&(struct grpc_tls_settings){ .cert_file = cert_path,
		.key_file = key_path }, error, sizeof error);
	CHECK(context != NULL, "the generated pair does not load: %s", error);
	grpc_tls_context_free(context);
	/* A restart keeps the files (the clients may have pinned the certificate). */
	struct stat before, after;
	stat(cert_path, &before);
	CHECK(grpc_tls_self_signed(directory, hosts, 3, &created, error, sizeof error) == 0 && !created,
		"the second start made new files: %s", error);
	stat(cert_path, &after);
	CHECK(before.st_ino == after.st_ino && before.st_size == after.st_size, "cert.pem was rewritten");
}

static void test_grpc_over_tls(void)
{
	SSL_CTX *context = client_context(pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), "\x02h2", 0);
	struct client *client = client_open_tls(ports[SERVER_AUTH], context, 1 << 20, true);
	CHECK(client != NULL, "no HTTP/2 over TLS with a client certificate");
	if (client != NULL) {
		const unsigned char *alpn;
		unsigned alpn_length;
		SSL_get0_alpn_selected(client->tls, &alpn, &alpn_length);
		CHECK(alpn_length == 2 && memcmp(alpn, "h2", 2) == 0, "ALPN %.*s", (int)alpn_length, alpn);
		CHECK(SSL_version(client->tls) == TLS1_3_VERSION, "version %s", SSL_get_version(client->tls));
		CHECK(echo_works(client, "over TLS 1.3"), "a unary call over TLS 1.3");
		CHECK(echo_works(client, "again"), "a second call on the same connection");
	}
	client_close(client);
	SSL_CTX_free(context);

	context = client_context(pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), "\x02h2", TLS1_2_VERSION);
	SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
	client = client_open_tls(ports[SERVER_AUTH], context, 1 << 20, true);
	CHECK(client != NULL && SSL_version(client->tls) == TLS1_2_VERSION, "no TLS 1.2");
	if (client != NULL) {
		/* Go's first choice for an RSA certificate. */
		CHECK(strcmp(SSL_get_cipher_name(client->tls), "ECDHE-RSA-AES128-GCM-SHA256") == 0, "cipher %s",
			SSL_get_cipher_name(client->tls));
		CHECK(echo_works(client, "over TLS 1.2"), "a unary call over TLS 1.2");
	}
	client_close(client);
	SSL_CTX_free(context);
}

/* 4 MiB paced by the client's reading: every byte arrives, in order, through the record layer. */
static bool big_done(void *argument)
{
	return ((struct client_stream *)argument)->closed;
}

static void test_big_stream_over_tls(void)
{
	SSL_CTX *context = client_context(pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), "\x02h2", 0);
	struct client *client = client_open_tls(ports[SERVER_AUTH], context, 256 * 1024, false);
	CHECK(client != NULL, "no connection");
	if (client != NULL) {
		client->read_chunk = 4096;
		client->read_pause_us = 100;
		struct client_stream stream;
		client_stream_init(&stream);
		client_stream_start(client, &stream, "/test.Echo/Big");
		client_stream_write(client, &stream, (const uint8_t *)"go", 2, true);
		CHECK(client_pump(client, big_done, &stream, 60000), "the stream did not finish");
		size_t count = client_stream_message_count(&stream), offset = 0;
		bool intact = stream.grpc_status == 0 && count == BIG_TOTAL / BIG_CHUNK;
		for (size_t i = 0; i < count && intact; i++) {
			const uint8_t *message;
			size_t length;
			client_stream_message(&stream, i, &message, &length);
			for (size_t j = 0; j < length && intact; j++)
				intact = message[j] == big_byte(offset + j);
			offset += length;
		}
		CHECK(intact && offset == BIG_TOTAL, "%zu messages, %zu bytes, status %d", count, offset, stream.grpc_status);
		client_stream_free(&stream);
	}
	client_close(client);
	SSL_CTX_free(context);
}

static void test_http_over_tls(void)
{
	struct exchange exchange;
	/* curl's ALPN (h2 and http/1.1) gets h2; http/1.1 alone is let in without ALPN (Go's rule). */
	SSL_CTX *context = client_context(pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), "\x08http/1.1", 0);
	tls_exchange(ports[SERVER_AUTH], context, health_request, &exchange);
	CHECK(exchange.handshake && exchange.alpn[0] == '\0', "handshake %d, ALPN '%s'", exchange.handshake, exchange.alpn);
	CHECK(served_health(&exchange), "GET /health over TLS: %s", exchange.response);
	CHECK(exchange.close_notify, "the server closed without close_notify after Connection: close");
	SSL_CTX_free(context);

	context = client_context(pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), NULL, 0);
	tls_exchange(ports[SERVER_AUTH], context, health_request, &exchange);
	CHECK(served_health(&exchange), "GET /health without ALPN: %s", exchange.response);
	SSL_CTX_free(context);

	struct stat info;
	if (stat("/usr/bin/curl", &info) != 0) {
		printf("curl not installed: skipping the curl checks\n");
		return;
	}
	char command[2048], output[600];
	snprintf(output, sizeof output, "%s/curl.out", pki_directory);
	snprintf(command, sizeof command,
		"curl -sS -m 10 --cacert %s --cert %s --key %s -o %s -w '%%{http_version} %%{http_code}' "
		"https://127.0.0.1:%d/health > %s.status", pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), output,
		ports[SERVER_AUTH], output);
	CHECK(system(command) == 0, "%s", command);
	char body[128] = "", status[32] = "", status_path[700];
	snprintf(status_path, sizeof status_path, "%s.status", output);
	FILE *file = fopen(output, "r");
	if (file != NULL && fgets(body, sizeof body, file) == NULL)
		body[0] = '\0';
	if (file != NULL)
		fclose(file);
	file = fopen(status_path, "r");
	if (file != NULL && fgets(status, sizeof status, file) == NULL)
		status[0] = '\0';
	if (file != NULL)
		fclose(file);
	CHECK(strcmp(status, "2 200") == 0 && strcmp(body, "{\"health\":\"true\"}") == 0,
		"curl's HTTP/2 GET /health: '%s' '%s'", status, body);
	snprintf(command, sizeof command,
		"curl -sS -m 10 -I --cacert %s --cert %s --key %s -o /dev/null -w '%%{http_version} %%{http_code}' "
		"https://127.0.0.1:%d/health > %s", pki("ca.pem"), pki("client.pem"), pki("client-key.pem"),
		ports[SERVER_AUTH], status_path);
	CHECK(system(command) == 0, "%s", command);
	file = fopen(status_path, "r");
	if (file != NULL && fgets(status, sizeof status, file) == NULL)
		status[0] = '\0';
	if (file != NULL)
		fclose(file);
	CHECK(strcmp(status, "2 405") == 0, "HEAD /health over HTTP/2 (etcd: GET only): '%s'", status);
	unlink(output);
	unlink(status_path);
}

/* A client resuming its session (curl's next request, a TLS 1.3 ticket or a TLS 1.2 session id) is served
 * on the port that verifies client certificates. */
static bool resumed_and_served(SSL_CTX *context)
{
	int fd = connect_to(ports[SERVER_AUTH]);
	SSL *ssl = SSL_new(context);
	SSL_set_fd(ssl, fd);
	bool served = false;
	if (SSL_connect(ssl) == 1) {
		SSL_write(ssl, health_request, (int)strlen(health_request));
		char response[512];
		int got = SSL_read(ssl, response, sizeof response - 1);
		served = got > 0 && strncmp(response, "HTTP/1.1 200 OK", 15) == 0;
		/* A session that ends without our close_notify is not resumable (OpenSSL's rule). */
		SSL_shutdown(ssl);
	}
	SSL_SESSION *session = SSL_get1_session(ssl);
	SSL_free(ssl);
	close(fd);
	if (session == NULL)
		return false;
	fd = connect_to(ports[SERVER_AUTH]);
	ssl = SSL_new(context);
	SSL_set_fd(ssl, fd);
	SSL_set_session(ssl, session);
	bool resumed = false;
	if (served && SSL_connect(ssl) == 1) {
		resumed = SSL_session_reused(ssl) == 1;
		SSL_write(ssl, health_request, (int)strlen(health_request));
		char response[512];
		int got = SSL_read(ssl, response, sizeof response - 1);
		served = got > 0 && strncmp(response, "HTTP/1.1 200 OK", 15) == 0;
	} else {
		served = false;
	}
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
	SSL_SESSION_free(session);
	return served && resumed;
}

static void test_resumption(void)
{
	SSL_CTX *context = client_context(pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), NULL, 0);
	CHECK(resumed_and_served(context), "a TLS 1.3 session resumed with a ticket was not served");
	SSL_CTX_free(context);
	context = client_context(pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), NULL, TLS1_2_VERSION);
	SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
	SSL_CTX_set_security_level(context, 1);
	CHECK(resumed_and_served(context), "a TLS 1.2 session resumed was not served");
	SSL_CTX_free(context);
}

/* Each refused as etcd refuses it, with its log line; the server keeps serving. */
static void test_refusals(void)
{
	struct exchange exchange;
	uint64_t rejected = rejected_count(SERVER_AUTH);

	SSL_CTX *context = client_context(pki("ca.pem"), NULL, NULL, "\x02h2", 0);
	tls_exchange(ports[SERVER_AUTH], context, health_request, &exchange);
	CHECK(exchange.response_length == 0, "served without a client certificate: %s", exchange.response);
	CHECK(log_has_line("\"msg\":\"rejected connection\"", "\"error\":\"tls: client didn't provide a certificate\""),
		"no log line for a missing client certificate");
	CHECK(log_has_line("\"msg\":\"rejected connection\",\"remote-addr\":\"127.0.0.1:", "\"server-name\":\"\""),
		"the rejection's remote-addr and server-name fields");
	SSL_CTX_free(context);

	context = client_context(pki("ca.pem"), pki("other-client.pem"), pki("other-client-key.pem"), "\x02h2", 0);
	tls_exchange(ports[SERVER_AUTH], context, health_request, &exchange);
	CHECK(exchange.response_length == 0, "served a certificate from another CA: %s", exchange.response);
	CHECK(log_has_line("rejected connection",
		"\"error\":\"tls: failed to verify client certificate: x509: certificate signed by unknown authority\""),
		"no log line for a certificate from another CA");
	SSL_CTX_free(context);

	context = client_context(pki("ca.pem"), pki("expired-client.pem"), pki("expired-client-key.pem"), "\x02h2", 0);
	tls_exchange(ports[SERVER_AUTH], context, health_request, &exchange);
	CHECK(exchange.response_length == 0, "served an expired certificate: %s", exchange.response);
	CHECK(log_has_line("rejected connection", "x509: certificate has expired or is not yet valid: current time "),
		"no log line for an expired certificate");
	CHECK(log_has_line("rejected connection", " is after 2021-01-01T00:00:00Z\""), "the expiry date in Go's format");
	SSL_CTX_free(context);

	/* The client refuses the server (it trusts another CA): its alert is the server's reason. */
	context = client_context(pki("other-ca.pem"), pki("client.pem"), pki("client-key.pem"), "\x02h2", 0);
	tls_exchange(ports[SERVER_AUTH], context, health_request, &exchange);
	CHECK(!exchange.handshake, "the client accepted a server of another CA");
	CHECK(log_has_line("rejected connection", "\"error\":\"remote error: tls: unknown certificate authority\""),
		"no log line for the client's alert");
	SSL_CTX_free(context);

	context = client_context(pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), NULL, TLS1_1_VERSION);
	tls_exchange(ports[SERVER_AUTH], context, health_request, &exchange);
	CHECK(!exchange.handshake, "TLS 1.1 was accepted");
	CHECK(log_has_line("rejected connection", "\"error\":\"tls: client offered only unsupported versions: [302 301]\""),
		"no log line in Go's words for TLS 1.1");
	SSL_CTX_free(context);

	context = client_context(pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), "\x03" "foo\x03" "bar", 0);
	tls_exchange(ports[SERVER_AUTH], context, health_request, &exchange);
	CHECK(!exchange.handshake, "an unknown ALPN protocol was accepted");
	CHECK(log_has_line("rejected connection",
		"\"error\":\"tls: client requested unsupported application protocols ([foo bar])\""),
		"no log line for an unknown ALPN protocol");
	SSL_CTX_free(context);

	/* Cleartext HTTP on the TLS port: closed without an answer, as etcd does. */
	int fd = connect_to(ports[SERVER_AUTH]);
	send(fd, health_request, strlen(health_request), MSG_NOSIGNAL);
	char reply[64];
	ssize_t got = recv(fd, reply, sizeof reply, 0);
	CHECK(got == 0, "cleartext HTTP to the TLS port got %zd bytes", got);
	close(fd);
	CHECK(log_has_line("rejected connection", "\"error\":\"tls: first record does not look like a TLS handshake\""),
		"no log line for cleartext HTTP");

	/* A handshake record of garbage. */
	fd = connect_to(ports[SERVER_AUTH]);
	uint8_t garbage[300] = { 22, 3, 1, 1, 0x27 };
	for (size_t i = 5; i < sizeof garbage; i++)
		garbage[i] = (uint8_t)(i * 37);
	send(fd, garbage, sizeof garbage, MSG_NOSIGNAL);
	uint8_t alert[64];
	got = recv(fd, alert, sizeof alert, 0);
	CHECK(got >= 0 && got < 64 && (got == 0 || alert[0] == 21), "garbage handshake: %zd bytes, first %d", got,
		got > 0 ? alert[0] : -1);
	close(fd);

	/* A client that hangs up mid-handshake: Go's "EOF". */
	fd = connect_to(ports[SERVER_AUTH]);
	send(fd, garbage, 3, MSG_NOSIGNAL);
	close(fd);
	CHECK(log_has_line("rejected connection", "\"error\":\"EOF\""), "no log line for a handshake cut short");

	uint64_t now_rejected = 0;
	uint64_t deadline = now_ms() + 5000;
	while ((now_rejected = rejected_count(SERVER_AUTH)) < rejected + 9 && now_ms() < deadline)
		usleep(10000);
	CHECK(now_rejected == rejected + 9, "tls_rejected counted %llu of 9", (unsigned long long)(now_rejected - rejected));

	context = client_context(pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), "\x02h2", 0);
	struct client *client = client_open_tls(ports[SERVER_AUTH], context, 1 << 20, true);
	CHECK(echo_works(client, "still serving"), "the server stopped serving after the refusals");
	client_close(client);
	SSL_CTX_free(context);
}

/* A metrics port (etcd's transport.NewListener): the client's address must be in its certificate. */
static void test_client_address(void)
{
	struct exchange exchange;
	SSL_CTX *context = client_context(pki("ca.pem"), pki("client.pem"), pki("client-key.pem"), NULL, 0);
	tls_exchange(ports[SERVER_METRICS], context, health_request, &exchange);
	CHECK(served_health(&exchange), "a certificate without SANs was refused on the metrics port: %s", exchange.response);
	SSL_CTX_free(context);
	context = client_context(pki("ca.pem"), pki("wrong-ip-client.pem"), pki("wrong-ip-client-key.pem"), NULL, 0);
	tls_exchange(ports[SERVER_METRICS], context, health_request, &exchange);
	CHECK(!served_health(&exchange), "a certificate for 10.11.12.13 was served on the metrics port");
	CHECK(log_has_line("\"ip-addresses\":[\"10.11.12.13\"],\"dns-names\":[]",
		"\"error\":\"x509: certificate is valid for 10.11.12.13, not 127.0.0.1\""),
		"no log line in etcd's words for the wrong address");
	SSL_CTX_free(context);
	tls_exchange(ports[SERVER_AUTH], context = client_context(pki("ca.pem"), pki("wrong-ip-client.pem"),
		pki("wrong-ip-client-key.pem"), NULL, 0), health_request, &exchange);
	CHECK(served_health(&exchange), "the client port checked the client's address (etcd does not)");
	SSL_CTX_free(context);
}

/* http:// and https:// with the same address: one port, both served (no client certificate asked). */
static void test_both_schemes(void)
{
	struct client *client = client_open(ports[SERVER_BOTH], 1 << 20, true);
	CHECK(echo_works(client, "cleartext"), "cleartext HTTP/2 on the shared port");
	client_close(client);
	SSL_CTX *context = client_context(pki("ca.pem"), NULL, NULL, "\x02h2", 0);
	client = client_open_tls(ports[SERVER_BOTH], context, 1 << 20, true);
	CHECK(echo_works(client, "encrypted"), "HTTP/2 over TLS on the shared port");
	client_close(client);
	SSL_CTX_free(context);
	int fd = connect_to(ports[SERVER_BOTH]);
	send(fd, health_request, strlen(health_request), MSG_NOSIGNAL);
	char reply[512] = "";
	size_t have = 0;
	for (ssize_t got; have < sizeof reply - 1 && (got = recv(fd, reply + have, sizeof reply - 1 - have, 0)) > 0;)
		have += (size_t)got;
	reply[have] = '\0';
	close(fd);
	CHECK(strncmp(reply, "HTTP/1.1 200 OK", 15) == 0, "cleartext HTTP/1.1 on the shared port: %s", reply);
}

/* The CN of the certificate the server at port shows; "" when the handshake fails. */
static void server_certificate_name(int port, char *name, size_t size)
{
	name[0] = '\0';
	SSL_CTX *context = client_context(NULL, NULL, NULL, NULL, 0);
	int fd = connect_to(port);
	SSL *ssl = SSL_new(context);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) == 1) {
		X509 *certificate = SSL_get1_peer_certificate(ssl);
		if (certificate != NULL)
			X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name, (int)size);
		X509_free(certificate);
	}
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(context);
}

/* Replaces PKI file target by a copy of source, atomically (as certificate renewal tools do: write, rename). */
static void replace_file(const char *source, const char *target)
{
	char temporary[700], command[2200];
	snprintf(temporary, sizeof temporary, "%s/replacing.tmp", pki_directory);
	snprintf(command, sizeof command, "cp '%s' '%s' && mv '%s' '%s'", source, temporary, temporary, target);
	if (system(command) != 0)
		printf("FAIL: %s\n", command);
}

static bool serves_certificate(const char *expected)
{
	char name[128];
	uint64_t deadline = now_ms() + 5000;
	while (now_ms() < deadline) {
		server_certificate_name(ports[SERVER_RELOAD], name, sizeof name);
		if (strcmp(name, expected) == 0)
			return true;
		usleep(50000);
	}
	printf("the server shows \"%s\", not \"%s\"\n", name, expected);
	return false;
}

/* A renewed certificate is served to new connections without a restart; a broken one is refused and the
 * previous one kept. */
static void test_reload(void)
{
	CHECK(serves_certificate("infra3"), "the certificate at start");
	char cert[600], key[600];
	snprintf(cert, sizeof cert, "%s", pki("reload.pem"));
	snprintf(key, sizeof key, "%s", pki("reload-key.pem"));
	/* The key first: between the two renames the pair does not match, and that must not stop the server. */
	replace_file(pki("infra2-key.pem"), key);
	replace_file(pki("infra2.pem"), cert);
	CHECK(serves_certificate("infra2"), "the renewed certificate is not served");
	CHECK(log_has_line("\"msg\":\"reloaded the client certificate\"", "reload.pem"), "no log line for the reload");
	replace_file(pki("ca-key.pem"), cert);
	/* The files are looked at when connections come: keep connecting until the server has. */
	bool logged = false;
	char name[128] = "";
	for (uint64_t deadline = now_ms() + 5000; !logged && now_ms() < deadline;) {
		server_certificate_name(ports[SERVER_RELOAD], name, sizeof name);
		FILE *file = fopen(log_path, "r");
		char line[4096];
		while (file != NULL && !logged && fgets(line, sizeof line, file) != NULL)
			logged = strstr(line, "failed to reload the client certificate; still serving the previous one") != NULL &&
				strstr(line, "tls: failed to find any PEM data in certificate input") != NULL;
		if (file != NULL)
			fclose(file);
		usleep(50000);
	}
	CHECK(logged, "no log line for a broken certificate");
	CHECK(serves_certificate("infra2"), "a broken certificate file replaced the working one");
}

static struct grpc_server *open_server(const char *const *urls, size_t count, struct grpc_tls_context *tls,
	bool check_address)
{
	struct grpc_server_config config = {
		.listen_urls = urls,
		.listen_url_count = count,
		.tls = tls,
		.tls_check_client_address = check_address,
		.methods = methods,
		.method_count = sizeof methods / sizeof methods[0],
		.http_get = http_get,
	};
	char error[256];
	struct grpc_server *server = grpc_server_open(&config, error, sizeof error);
	if (server == NULL)
		printf("FAIL grpc_server_open: %s\n", error);
	return server;
}

int main(void)
{
	pki_directory = getenv("TLS_PKI_DIR");
	if (pki_directory == NULL) {
		printf("FAIL: TLS_PKI_DIR is not set (run through tests/tls/with-pki.sh)\n");
		return 1;
	}
	snprintf(log_path, sizeof log_path, "%s/server.log", pki_directory);
	char error[512];
	if (log_configure("info", log_path, error, sizeof error) != 0) {
		printf("FAIL log_configure: %s\n", error);
		return 1;
	}
	struct grpc_tls_context *with_auth = grpc_tls_context_new(&(struct grpc_tls_settings){
		.cert_file = pki("infra1.pem"), .key_file = pki("infra1-key.pem"), .trusted_ca_file = pki("ca.pem"),
		.client_cert_auth = true }, error, sizeof error);
	struct grpc_tls_context *without_auth = grpc_tls_context_new(&(struct grpc_tls_settings){
		.cert_file = pki("infra2.pem"), .key_file = pki("infra2-key.pem") }, error, sizeof error);
	replace_file(pki("infra3.pem"), pki("reload.pem"));
	replace_file(pki("infra3-key.pem"), pki("reload-key.pem"));
	struct grpc_tls_context *reloading = grpc_tls_context_new(&(struct grpc_tls_settings){
		.cert_file = pki("reload.pem"), .key_file = pki("reload-key.pem") }, error, sizeof error);
	if (with_auth == NULL || without_auth == NULL || reloading == NULL) {
		printf("FAIL grpc_tls_context_new: %s\n", error);
		return 1;
	}
	const char *https[] = { "https://127.0.0.1:0" };
	servers[SERVER_AUTH] = open_server(https, 1, with_auth, false);
	servers[SERVER_METRICS] = open_server(https, 1, with_auth, true);
	/* A free port for the shared one: the kernel's pick for a listener closed at once. */
	const char *probe_urls[] = { "http://127.0.0.1:0" };
	struct grpc_server *probe = open_server(probe_urls, 1, NULL, false);
	char plain_url[64], secure_url[64];
	snprintf(plain_url, sizeof plain_url, "http://127.0.0.1:%d", probe != NULL ? grpc_server_port(probe) : 0);
	snprintf(secure_url, sizeof secure_url, "https://127.0.0.1:%d", probe != NULL ? grpc_server_port(probe) : 0);
	grpc_server_close(probe);
	const char *both[] = { plain_url, secure_url };
	servers[SERVER_BOTH] = open_server(both, 2, without_auth, false);
	servers[SERVER_RELOAD] = open_server(https, 1, reloading, false);
	for (int i = 0; i < SERVER_COUNT; i++) {
		if (servers[i] == NULL)
			return 1;
		ports[i] = grpc_server_port(servers[i]);
	}
	pthread_t thread;
	pthread_create(&thread, NULL, server_thread, NULL);

	struct {
		const char *name;
		void (*run)(void);
	} tests[] = {
		{ "etcd's cipher suite names", test_cipher_names },
		{ "certificate and flag errors", test_context_errors },
		{ "--auto-tls certificate", test_self_signed },
		{ "gRPC over TLS 1.3 and 1.2", test_grpc_over_tls },
		{ "4 MiB stream over TLS to a slow reader", test_big_stream_over_tls },
		{ "HTTP/1.1 and HTTP/2 GET over TLS", test_http_over_tls },
		{ "resumed sessions with client certificates", test_resumption },
		{ "refused clients and their log lines", test_refusals },
		{ "the metrics port's address check", test_client_address },
		{ "http and https on one port", test_both_schemes },
		{ "a renewed certificate without a restart", test_reload },
	};
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		int before = failures;
		uint64_t start = now_ms();
		tests[i].run();
		printf("%s %s (%llu ms)\n", failures == before ? "ok  " : "FAIL", tests[i].name,
			(unsigned long long)(now_ms() - start));
	}

	pthread_mutex_lock(&stop_mutex);
	stopping = true;
	pthread_mutex_unlock(&stop_mutex);
	pthread_join(thread, NULL);
	for (int i = 0; i < SERVER_COUNT; i++)
		grpc_server_close(servers[i]);
	grpc_tls_context_free(with_auth);
	grpc_tls_context_free(without_auth);
	grpc_tls_context_free(reloading);
	printf("%d failure(s)\n", failures);
	return failures != 0;
}
