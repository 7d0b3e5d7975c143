/* control/grpc/grpc_tls.c: TLS on the server's connections (OpenSSL), shaped after what etcd's Go server
 * does, so that clients and operators see the same behaviour and the same log lines.
 *
 * OpenSSL never touches the socket: a BIO of our own hands it the records grpc_server.c has just read
 * and appends what it writes to connection->wire, which grpc_server.c sends like any other output. So
 * the handshake and the record layer run inside the owner thread's epoll loop, never block, and need
 * no copies beyond OpenSSL's own. The decrypted bytes go through the same protocol detection as a
 * cleartext connection's (HTTP/2 preface or an HTTP/1.1 request line).
 *
 * Failed handshakes are logged as etcd logs them (embed/config_logging.go: "rejected connection" with
 * remote-addr, server-name and error), the error in Go's crypto/tls words where OpenSSL's differ: a
 * callback notes why (the verify callback, the ClientHello and ALPN callbacks, an alert from the
 * client) and the log line uses that. */
#include "alloc.h"
#include "certificate_checks.h"
#include "grpc_internal.h"
#include "grpc_tls.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What a file was when it was loaded: a change (a renewed certificate) makes the context reload. */
struct file_stamp {
	dev_t device;
	ino_t inode;
	off_t size;
	struct timespec modified;
	bool missing;
};

struct grpc_tls_context {
	/* Client threads take new connections from the current OpenSSL context and swap it when the files
	 * change; each SSL holds a reference to the context it was made from, so a replaced one lives on until
	 * its last connection ends. */
	pthread_mutex_t mutex;
	SSL_CTX *ssl_context;
	char *cert_file, *key_file, *trusted_ca_file, *cipher_suites, *crl_file, *allowed_hostname;
	bool client_cert_auth;
	struct file_stamp stamps[4]; /* cert, key, CA, CRL */
	uint64_t checked_ms;
	unsigned reloads_seen; /* grpc_tls_reload_all's requests this context has acted on */
};

/* Requests to re-read the files whether or not they look changed (grpc_tls_reload_all, on SIGHUP). */
static atomic_uint reload_requests;

void grpc_tls_reload_all(void)
{
	atomic_fetch_add(&reload_requests, 1);
}

struct grpc_tls_connection {
	struct grpc_connection *connection;
	SSL *ssl;
	/* The records grpc_tls_receive is handing to OpenSSL (read by the BIO), only during that call. */
	const uint8_t *incoming;
	size_t incoming_length;
	/* The first record's header, checked before OpenSSL sees it (Go's "first record does not look like
	 * a TLS handshake": a cleartext client on a TLS port). */
	uint8_t first_header[5];
	size_t first_header_have;
	bool handshake_done;
	bool broken;          /* a fatal TLS error: no close_notify after it */
	char failure[320];    /* why the handshake failed, in Go's words, when a callback knew first */
	/* The refused certificate's "ip-addresses" and "dns-names" log fields, when etcd would have had the
	 * certificate in hand (a revoked one, or one refused by --client-cert-allowed-hostname). */
	char failure_names[1024];
};

/* ---- etcd's cipher suite names ---- */

/* Go's names (crypto/tls CipherSuites and InsecureCipherSuites, the names etcd's --cipher-suites takes)
 * with OpenSSL's, in Go 1.19's preference order; default marks Go's default list (what etcd offers
 * without --cipher-suites). OpenSSL builds without RC4 or 3DES skip those. */
static const struct {
	const char *go;
	const char *openssl;
	bool by_default;
} cipher_names[] = {
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", true },
	{ "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", true },
	{ "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", true },
	{ "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", true },
	{ "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305", true },
	{ "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305", true },
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", true },
	{ "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", true },
	{ "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", true },
	{ "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", true },
	{ "TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", true },
	{ "TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", true },
	{ "TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", true },
	{ "TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", true },
	{ "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA", true },
	{ "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", true },
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256", false },
	{ "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256", false },
	{ "TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256", false },
	{ "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "ECDHE-ECDSA-RC4-SHA", false },
	{ "TLS_ECDHE_RSA_WITH_RC4_128_SHA", "ECDHE-RSA-RC4-SHA", false },
	{ "TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA", false },
	/* etcd's tlsutil also takes these two spellings (Go's names before 1.14). */
	{ "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305", false },
	{ "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305", false },
	/* TLS 1.3: Go does not let them be configured, and neither does etcd. */
	{ "TLS_AES_128_GCM_SHA256", "", false },
	{ "TLS_AES_256_GCM_SHA384", "", false },
	{ "TLS_CHACHA20_POLY1305_SHA256", "", false },
};

/* Go's TLS 1.3 preference (AES-128 first, on hardware with AES). */
/* How often, at most, the certificate files are looked at for a change. */
#define GRPC_TLS_RELOAD_CHECK_MS 1000

static const char tls13_suites[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

const char *grpc_tls_cipher_openssl_name(const char *go_name)
{
	for (size_t i = 0; i < sizeof cipher_names / sizeof cipher_names[0]; i++)
		if (strcmp(cipher_names[i].go, go_name) == 0)
			return cipher_names[i].openssl;
	return NULL;
}

static void append_text(char *out, size_t size, const char *text)
{
	size_t used = strlen(out);
	if (used + 1 < size)
		snprintf(out + used, size - used, "%s", text);
}

/* The OpenSSL cipher list for --cipher-suites ("" when it names only TLS 1.3 suites); -1 with etcd's
 * message for a name it does not know. */
static int openssl_cipher_list(const char *go_names, char *list, size_t size, char *err, size_t errlen)
{
	list[0] = '\0';
	if (go_names == NULL || go_names[0] == '\0') {
		for (size_t i = 0; i < sizeof cipher_names / sizeof cipher_names[0]; i++) {
			if (!cipher_names[i].by_default)
				continue;
			if (list[0] != '\0')
				append_text(list, size, ":");
			append_text(list, size, cipher_names[i].openssl);
		}
		return 0;
	}
	/* etcd splits the flag on commas and takes each piece as it is (no trimming). */
	const char *start = go_names;
	for (;;) {
		const char *comma = strchr(start, ',');
		size_t name_length = comma != NULL ? (size_t)(comma - start) : strlen(start);
		char name[128];
		if (name_length >= sizeof name) {
			snprintf(err, errlen, "unexpected TLS cipher suite \"%.*s\"", (int)name_length, start);
			return -1;
		}
		memcpy(name, start, name_length);
		name[name_length] = '\0';
		const char *openssl = grpc_tls_cipher_openssl_name(name);
		if (openssl == NULL) {
			char escaped[256];
			snprintf(err, errlen, "unexpected TLS cipher suite \"%s\"", log_json_escape(name, escaped, sizeof escaped));
			return -1;
		}
		if (openssl[0] != '\0') {
			if (list[0] != '\0')
				append_text(list, size, ":");
			append_text(list, size, openssl);
		}
		if (comma == NULL)
			break;
		start = comma + 1;
	}
	return 0;
}

/* ---- Go's words for what went wrong ---- */

/* crypto/tls alert.go. */
static const char *go_alert_text(int description)
{
	switch (description) {
	case 0: return "close notify";
	case 10: return "unexpected message";
	case 20: return "bad record MAC";
	case 21: return "decryption failed";
	case 22: return "record overflow";
	case 30: return "decompression failure";
	case 40: return "handshake failure";
	case 42: return "bad certificate";
	case 43: return "unsupported certificate";
	case 44: return "revoked certificate";
	case 45: return "expired certificate";
	case 46: return "unknown certificate";
	case 47: return "illegal parameter";
	case 48: return "unknown certificate authority";
	case 49: return "access denied";
	case 50: return "error decoding message";
	case 51: return "error decrypting message";
	case 60: return "export restriction";
	case 70: return "protocol version not supported";
	case 71: return "insufficient security level";
	case 80: return "internal error";
	case 86: return "inappropriate fallback";
	case 90: return "user canceled";
	case 100: return "no renegotiation";
	case 109: return "missing extension";
	case 110: return "unsupported extension";
	case 111: return "certificate unobtainable";
	case 112: return "unrecognized name";
	case 113: return "bad certificate status response";
	case 114: return "bad certificate hash value";
	case 115: return "unknown PSK identity";
	case 116: return "certificate required";
	case 120: return "no application protocol";
	default: return NULL;
	}
}

/* Go's time.RFC3339 in UTC, as its x509 errors print times. */
static void rfc3339(const struct tm *time, char *out, size_t size)
{
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", time);
}

/* A certificate outside its validity period, as Go's x509 says it (Go checks the period before the
 * chain, so an expired certificate from an unknown CA is "expired" there too). false when it is valid. */
static bool describe_validity(const X509 *certificate, char *out, size_t size)
{
	const ASN1_TIME *limit = NULL;
	const char *relation = NULL;
	if (X509_cmp_current_time(X509_get0_notBefore(certificate)) > 0) {
		limit = X509_get0_notBefore(certificate);
		relation = "before";
	} else if (X509_cmp_current_time(X509_get0_notAfter(certificate)) < 0) {
		limit = X509_get0_notAfter(certificate);
		relation = "after";
	} else {
		return false;
	}
	struct tm limit_time, now_time;
	time_t now = time(NULL);
	gmtime_r(&now, &now_time);
	if (ASN1_TIME_to_tm(limit, &limit_time) != 1)
		memset(&limit_time, 0, sizeof limit_time);
	char now_text[32], limit_text[32];
	rfc3339(&now_time, now_text, sizeof now_text);
	rfc3339(&limit_time, limit_text, sizeof limit_text);
	snprintf(out, size, "x509: certificate has expired or is not yet valid: current time %s is %s %s", now_text,
		relation, limit_text);
	return true;
}

static void describe_verify_error(X509_STORE_CTX *store, char *out, size_t size)
{
	char x509_text[224];
	X509 *leaf = X509_STORE_CTX_get0_cert(store);
	X509 *failing = X509_STORE_CTX_get_current_cert(store);
	int code = X509_STORE_CTX_get_error(store);
	if (leaf != NULL && describe_validity(leaf, x509_text, sizeof x509_text)) {
		/* written */
	} else if ((code == X509_V_ERR_CERT_HAS_EXPIRED || code == X509_V_ERR_CERT_NOT_YET_VALID) && failing != NULL &&
	           describe_validity(failing, x509_text, sizeof x509_text)) {
		/* written */
	} else {
		const char *go = certificate_go_error_text(code);
		if (go != NULL)
			snprintf(x509_text, sizeof x509_text, "%s", go);
		else
			snprintf(x509_text, sizeof x509_text, "x509: %s", X509_verify_cert_error_string(code));
	}
	snprintf(out, size, "tls: failed to verify client certificate: %s", x509_text);
}

/* ---- callbacks ---- */

static struct grpc_tls_connection *connection_of(const SSL *ssl)
{
	return SSL_get_app_data(ssl);
}

static void certificate_names_fields(X509 *certificate, char *out, size_t size);

static int verify_client(int preverify_ok, X509_STORE_CTX *store)
{
	/* --client-crl-file refuses only the serials it lists; a CRL complaint cleared, or it would stay the
	 * connection's verify result (read by grpc_tls_peer_common_name). */
	if (certificate_verify_passes(preverify_ok, store))
		return 1;
	int code = X509_STORE_CTX_get_error(store);
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct grpc_tls_connection *tls = ssl != NULL ? connection_of(ssl) : NULL;
	if (tls == NULL || tls->failure[0] != '\0')
		return 0;
	if (code == X509_V_ERR_CERT_REVOKED) {
		certificate_describe_revoked(X509_STORE_CTX_get_current_cert(store), tls->failure, sizeof tls->failure);
		certificate_names_fields(X509_STORE_CTX_get0_cert(store), tls->failure_names, sizeof tls->failure_names);
	} else if (code == X509_V_ERR_HOSTNAME_MISMATCH || code == X509_V_ERR_IP_ADDRESS_MISMATCH) {
		/* --client-cert-allowed-hostname (etcd's TLSInfo.AllowedHostname: VerifyPeerCertificate's error). */
		snprintf(tls->failure, sizeof tls->failure, "client certificate authentication failed");
		certificate_names_fields(X509_STORE_CTX_get0_cert(store), tls->failure_names, sizeof tls->failure_names);
	} else {
		describe_verify_error(store, tls->failure, sizeof tls->failure);
	}
	return 0;
}

/* Go refuses a client that offers no version it speaks (TLS 1.2 and 1.3 here) with the versions listed
 * in hexadecimal; OpenSSL refuses it too, this only notes Go's words. */
static int inspect_client_hello(SSL *ssl, int *alert, void *argument)
{
	(void)alert;
	(void)argument;
	struct grpc_tls_connection *tls = connection_of(ssl);
	if (tls == NULL)
		return SSL_CLIENT_HELLO_SUCCESS;
	char offered[160] = "";
	bool supported = false;
	const unsigned char *extension;
	size_t extension_length;
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &extension, &extension_length) == 1) {
		size_t list_length = extension_length > 0 ? extension[0] : 0;
		if (list_length > extension_length - 1)
			list_length = extension_length - 1;
		for (size_t i = 1; i + 1 <= list_length; i += 2) {
			unsigned version = (unsigned)extension[i] << 8 | extension[i + 1];
			supported |= version == TLS1_2_VERSION || version == TLS1_3_VERSION;
			char item[8];
			snprintf(item, sizeof item, "%s%x", offered[0] != '\0' ? " " : "", version);
			append_text(offered, sizeof offered, item);
		}
	} else {
		/* Without the extension Go takes every version up to the legacy one it knows. */
		unsigned version = SSL_client_hello_get0_legacy_version(ssl);
		supported = version >= TLS1_2_VERSION;
		for (unsigned known = version; known >= TLS1_VERSION && known <= TLS1_3_VERSION; known--) {
			char item[8];
			snprintf(item, sizeof item, "%s%x", offered[0] != '\0' ? " " : "", known);
			append_text(offered, sizeof offered, item);
		}
	}
	if (!supported && tls->failure[0] == '\0')
		snprintf(tls->failure, sizeof tls->failure, "tls: client offered only unsupported versions: [%s]", offered);
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* Go's negotiateALPN with NextProtos ["h2"] (etcd's ServerConfig): h2 when offered; a client offering
 * http/1.1 (curl --http1.1) is let in without ALPN; anything else is refused. */
static int select_alpn(SSL *ssl, const unsigned char **selected, unsigned char *selected_length,
	const unsigned char *offered, unsigned int offered_length, void *argument)
{
	(void)argument;
	bool http11 = false;
	char listed[160] = "";
	for (unsigned int i = 0; i < offered_length;) {
		unsigned int length = offered[i];
		if (length == 0 || i + 1 + length > offered_length)
			break;
		const unsigned char *name = offered + i + 1;
		if (length == 2 && memcmp(name, "h2", 2) == 0) {
			*selected = name;
			*selected_length = 2;
			return SSL_TLSEXT_ERR_OK;
		}
		http11 |= length == 8 && memcmp(name, "http/1.1", 8) == 0;
		char item[64];
		snprintf(item, sizeof item, "%s%.*s", listed[0] != '\0' ? " " : "", (int)(length < 60 ? length : 60), name);
		append_text(listed, sizeof listed, item);
		i += 1 + length;
	}
	if (http11)
		return SSL_TLSEXT_ERR_NOACK;
	struct grpc_tls_connection *tls = connection_of(ssl);
	if (tls != NULL && tls->failure[0] == '\0')
		snprintf(tls->failure, sizeof tls->failure, "tls: client requested unsupported application protocols ([%s])",
			listed);
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* An alert from the client during the handshake (it refused our certificate): Go's "remote error". */
static void note_alert(const SSL *ssl, int where, int value)
{
	if ((where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT)
		return;
	struct grpc_tls_connection *tls = connection_of(ssl);
	if (tls == NULL || tls->handshake_done || tls->failure[0] != '\0')
		return;
	int description = value & 0xff;
	const char *text = go_alert_text(description);
	if (description == 0)
		snprintf(tls->failure, sizeof tls->failure, "EOF");
	else if (text != NULL)
		snprintf(tls->failure, sizeof tls->failure, "remote error: tls: %s", text);
	else
		snprintf(tls->failure, sizeof tls->failure, "remote error: tls: alert(%d)", description);
}

/* ---- the context ---- */

/* Go's error for a file it cannot read ("open F: no such file or directory"). */
static bool readable(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		char reason[128];
		snprintf(reason, sizeof reason, "%s", strerror(errno));
		if (reason[0] >= 'A' && reason[0] <= 'Z')
			reason[0] = (char)(reason[0] - 'A' + 'a');
		snprintf(err, errlen, "open %s: %s", path, reason);
		return false;
	}
	close(fd);
	return true;
}

static void openssl_reason(char *out, size_t size)
{
	unsigned long code = ERR_peek_last_error();
	const char *reason = code != 0 ? ERR_reason_error_string(code) : NULL;
	snprintf(out, size, "%s", reason != NULL ? reason : "unknown error");
	ERR_clear_error();
}

/* An OpenSSL context for the settings, as etcd's TLSInfo.ServerConfig configures Go; NULL with etcd's message. */
static SSL_CTX *build_ssl_context(const struct grpc_tls_settings *settings, char *err, size_t errlen)
{
	const char *cert_file = settings->cert_file != NULL ? settings->cert_file : "";
	const char *key_file = settings->key_file != NULL ? settings->key_file : "";
	const char *ca_file = settings->trusted_ca_file != NULL ? settings->trusted_ca_file : "";
	const char *crl_file = settings->crl_file != NULL ? settings->crl_file : "";
	const char *allowed_hostname = settings->allowed_hostname != NULL ? settings->allowed_hostname : "";
	if (cert_file[0] == '\0' || key_file[0] == '\0') {
		snprintf(err, errlen, "KeyFile and CertFile must both be present[key: %s, cert: %s]", key_file, cert_file);
		return NULL;
	}
	char cipher_list[1024];
	if (openssl_cipher_list(settings->cipher_suites, cipher_list, sizeof cipher_list, err, errlen) != 0)
		return NULL;
	if (!readable(cert_file, err, errlen) || !readable(key_file, err, errlen) ||
		(ca_file[0] != '\0' && !readable(ca_file, err, errlen)) ||
		(crl_file[0] != '\0' && !readable(crl_file, err, errlen)))
		return NULL;

	ERR_clear_error();
	SSL_CTX *ssl_context = SSL_CTX_new(TLS_server_method());
	if (ssl_context == NULL) {
		snprintf(err, errlen, "TLS: cannot create an OpenSSL context");
		return NULL;
	}
	char reason[256];
	/* Go's server: TLS 1.2 at least (etcd's MinVersion), no renegotiation, no compression; the server's
	 * order of suites decides. Idle connections give their record buffers back (many clients, few busy). */
	SSL_CTX_set_min_proto_version(ssl_context, cipher_list[0] != '\0' ? TLS1_2_VERSION : TLS1_3_VERSION);
	SSL_CTX_set_options(ssl_context, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ssl_context, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_ciphersuites(ssl_context, tls13_suites);
	if (cipher_list[0] != '\0' && SSL_CTX_set_cipher_list(ssl_context, cipher_list) != 1) {
		snprintf(err, errlen, "none of the TLS cipher suites in --cipher-suites is available in this OpenSSL (%s)",
			settings->cipher_suites != NULL ? settings->cipher_suites : "");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ssl_context, cert_file) != 1) {
		openssl_reason(reason, sizeof reason);
		snprintf(err, errlen, "tls: failed to find any PEM data in certificate input (%s: %s)", cert_file, reason);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ssl_context, key_file, SSL_FILETYPE_PEM) != 1) {
		openssl_reason(reason, sizeof reason);
		snprintf(err, errlen, "tls: failed to find any PEM data in key input (%s: %s)", key_file, reason);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ssl_context) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "tls: private key does not match public key (%s, %s)", cert_file, key_file);
		goto fail;
	}
	if (ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_locations(ssl_context, ca_file, NULL) != 1) {
			openssl_reason(reason, sizeof reason);
			snprintf(err, errlen, "cannot read the trusted CA file %s: %s", ca_file, reason);
			goto fail;
		}
		/* The CertificateRequest names the acceptable CAs, as Go's does (clients with several
		 * certificates pick by it). */
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
		if (names != NULL)
			SSL_CTX_set_client_CA_list(ssl_context, names);
		ERR_clear_error();
	}
	/* The CRL and the allowed hostname only matter where client certificates are verified, as in etcd
	 * (its CRL check reads the certificates a verified handshake brought; Go calls VerifyPeerCertificate
	 * only when it asked for a certificate). */
	if (crl_file[0] != '\0') {
		/* etcd's x509.ParseCRL takes PEM or DER. */
		X509_LOOKUP *lookup = X509_STORE_add_lookup(SSL_CTX_get_cert_store(ssl_context), X509_LOOKUP_file());
		if (lookup == NULL || (X509_load_crl_file(lookup, crl_file, X509_FILETYPE_PEM) <= 0 &&
			X509_load_crl_file(lookup, crl_file, X509_FILETYPE_ASN1) <= 0)) {
			openssl_reason(reason, sizeof reason);
			snprintf(err, errlen, "cannot read the CRL file %s: %s", crl_file, reason);
			goto fail;
		}
		ERR_clear_error();
		/* The whole chain, not the leaf alone: etcd checks the serial of every certificate the other side
		 * sent, so a revoked intermediate CA refuses what it signed. */
		X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ssl_context),
			X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	}
	if (allowed_hostname[0] != '\0') {
		/* Go's Certificate.VerifyHostname: an IP address against the IP SANs, a name against the DNS
		 * SANs (a wildcard for the leftmost label only), never the CN. */
		X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ssl_context);
		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
			X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (!certificate_expect_host(param, allowed_hostname)) {
			snprintf(err, errlen, "cannot use %s as the allowed client certificate hostname", allowed_hostname);
			goto fail;
		}
	}
	if (ca_file[0] != '\0' || settings->client_cert_auth) {
		if (ca_file[0] == '\0')
			SSL_CTX_set_default_verify_paths(ssl_context);
		SSL_CTX_set_verify(ssl_context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_client);
	}
	/* A resumed session (curl's second request, TLS 1.3 tickets) is refused by OpenSSL when peers are verified
	 * and no session context names what the session was verified for. */
	static const unsigned char session_context[] = "quorumd client URLs";
	SSL_CTX_set_session_id_context(ssl_context, session_context, sizeof session_context - 1);
	SSL_CTX_set_alpn_select_cb(ssl_context, select_alpn, NULL);
	SSL_CTX_set_client_hello_cb(ssl_context, inspect_client_hello, NULL);
	SSL_CTX_set_info_callback(ssl_context, note_alert);
	return ssl_context;
fail:
	SSL_CTX_free(ssl_context);
	ERR_clear_error();
	return NULL;
}

static void stamp_file(const char *path, struct file_stamp *stamp)
{
	struct stat info;
	memset(stamp, 0, sizeof *stamp);
	if (path == NULL || path[0] == '\0')
		return;
	if (stat(path, &info) != 0) {
		stamp->missing = true;
		return;
	}
	stamp->device = info.st_dev;
	stamp->inode = info.st_ino;
	stamp->size = info.st_size;
	stamp->modified = info.st_mtim;
}

static bool same_stamp(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->missing == b->missing && a->device == b->device && a->inode == b->inode && a->size == b->size &&
		a->modified.tv_sec == b->modified.tv_sec && a->modified.tv_nsec == b->modified.tv_nsec;
}

static void stamp_files(const struct grpc_tls_context *context, struct file_stamp stamps[4])
{
	stamp_file(context->cert_file, &stamps[0]);
	stamp_file(context->key_file, &stamps[1]);
	stamp_file(context->trusted_ca_file, &stamps[2]);
	stamp_file(context->crl_file, &stamps[3]);
}

struct grpc_tls_context *grpc_tls_context_new(const struct grpc_tls_settings *settings, char *err, size_t errlen)
{
	SSL_CTX *ssl_context = build_ssl_context(settings, err, errlen);
	if (ssl_context == NULL)
		return NULL;
	struct grpc_tls_context *context = xcalloc(1, sizeof *context);
	pthread_mutex_init(&context->mutex, NULL);
	context->ssl_context = ssl_context;
	context->cert_file = xstrdup(settings->cert_file);
	context->key_file = xstrdup(settings->key_file);
	context->trusted_ca_file = xstrdup(settings->trusted_ca_file != NULL ? settings->trusted_ca_file : "");
	context->cipher_suites = xstrdup(settings->cipher_suites != NULL ? settings->cipher_suites : "");
	context->crl_file = xstrdup(settings->crl_file != NULL ? settings->crl_file : "");
	context->allowed_hostname = xstrdup(settings->allowed_hostname != NULL ? settings->allowed_hostname : "");
	context->client_cert_auth = settings->client_cert_auth;
	stamp_files(context, context->stamps);
	context->checked_ms = grpc_now_ms();
	context->reloads_seen = atomic_load(&reload_requests);
	return context;
}

/* etcd reads the certificate files at every handshake, so a renewed certificate is served without a restart;
 * here the files are looked at (stat) at most once a second, when a connection comes, and the context is
 * rebuilt when one changed. A broken replacement is logged and the previous certificate kept. Called with
 * the mutex held. */
static void reload_if_changed(struct grpc_tls_context *context)
{
	uint64_t now = grpc_now_ms();
	unsigned reloads = atomic_load(&reload_requests);
	bool asked = reloads != context->reloads_seen;
	if (!asked && now - context->checked_ms < GRPC_TLS_RELOAD_CHECK_MS)
		return;
	context->checked_ms = now;
	context->reloads_seen = reloads;
	struct file_stamp stamps[4];
	stamp_files(context, stamps);
	if (!asked && same_stamp(&stamps[0], &context->stamps[0]) && same_stamp(&stamps[1], &context->stamps[1]) &&
		same_stamp(&stamps[2], &context->stamps[2]) && same_stamp(&stamps[3], &context->stamps[3]))
		return;
	memcpy(context->stamps, stamps, sizeof stamps);
	struct grpc_tls_settings settings = {
		.cert_file = context->cert_file,
		.key_file = context->key_file,
		.trusted_ca_file = context->trusted_ca_file,
		.client_cert_auth = context->client_cert_auth,
		.cipher_suites = context->cipher_suites,
		.crl_file = context->crl_file,
		.allowed_hostname = context->allowed_hostname,
	};
	char error[512], escaped_error[1100], escaped_cert[1100], escaped_key[1100];
	log_json_escape(context->cert_file, escaped_cert, sizeof escaped_cert);
	log_json_escape(context->key_file, escaped_key, sizeof escaped_key);
	SSL_CTX *fresh = build_ssl_context(&settings, error, sizeof error);
	if (fresh == NULL) {
		log_write("warn", "failed to reload the client certificate; still serving the previous one",
			"\"cert-file\":\"%s\",\"key-file\":\"%s\",\"error\":\"%s\"", escaped_cert, escaped_key,
			log_json_escape(error, escaped_error, sizeof escaped_error));
		return;
	}
	SSL_CTX_free(context->ssl_context);
	context->ssl_context = fresh;
	log_write("info", "reloaded the client certificate", "\"cert-file\":\"%s\",\"key-file\":\"%s\"", escaped_cert,
		escaped_key);
}

void grpc_tls_context_free(struct grpc_tls_context *context)
{
	if (context == NULL)
		return;
	SSL_CTX_free(context->ssl_context);
	pthread_mutex_destroy(&context->mutex);
	free(context->cert_file);
	free(context->key_file);
	free(context->trusted_ca_file);
	free(context->cipher_suites);
	free(context->crl_file);
	free(context->allowed_hostname);
	free(context);
}

/* ---- the BIO between OpenSSL and the connection's buffers ---- */

static int wire_write(BIO *bio, const char *data, int length)
{
	struct grpc_tls_connection *tls = BIO_get_data(bio);
	BIO_clear_retry_flags(bio);
	if (length <= 0)
		return 0;
	if (grpc_buffer_append(&tls->connection->wire, data, (size_t)length) != 0)
		return -1;
	return length;
}

static int wire_read(BIO *bio, char *data, int length)
{
	struct grpc_tls_connection *tls = BIO_get_data(bio);
	BIO_clear_retry_flags(bio);
	if (length <= 0)
		return 0;
	if (tls->incoming_length == 0) {
		BIO_set_retry_read(bio);
		return -1;
	}
	size_t take = tls->incoming_length < (size_t)length ? tls->incoming_length : (size_t)length;
	memcpy(data, tls->incoming, take);
	tls->incoming += take;
	tls->incoming_length -= take;
	return (int)take;
}

static long wire_control(BIO *bio, int command, long number, void *pointer)
{
	(void)bio;
	(void)number;
	(void)pointer;
	/* Writes land in the wire buffer at once: there is never anything to flush. */
	return command == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *wire_method;
static pthread_once_t wire_method_once = PTHREAD_ONCE_INIT;

static void create_wire_method(void)
{
	wire_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "quorumd connection");
	if (wire_method == NULL)
		return;
	BIO_meth_set_write(wire_method, wire_write);
	BIO_meth_set_read(wire_method, wire_read);
	BIO_meth_set_ctrl(wire_method, wire_control);
}

/* ---- connections ---- */

int grpc_tls_connection_start(struct grpc_connection *connection)
{
	struct grpc_tls_context *context = connection->server->config.tls;
	pthread_once(&wire_method_once, create_wire_method);
	if (context == NULL || wire_method == NULL)
		return -1;
	struct grpc_tls_connection *tls = xcalloc(1, sizeof *tls);
	tls->connection = connection;
	pthread_mutex_lock(&context->mutex);
	reload_if_changed(context);
	tls->ssl = SSL_new(context->ssl_context);
	pthread_mutex_unlock(&context->mutex);
	BIO *bio = BIO_new(wire_method);
	if (tls->ssl == NULL || bio == NULL) {
		SSL_free(tls->ssl);
		BIO_free(bio);
		free(tls);
		ERR_clear_error();
		return -1;
	}
	BIO_set_data(bio, tls);
	BIO_set_init(bio, 1);
	SSL_set_bio(tls->ssl, bio, bio);
	SSL_set_app_data(tls->ssl, tls);
	SSL_set_accept_state(tls->ssl);
	connection->tls = tls;
	return 0;
}

/* "127.0.0.1:54321" / "[::1]:54321", as Go prints a net.Addr; the IP alone into ip when not NULL. */
static void remote_address(const struct grpc_connection *connection, char *out, size_t size, char *ip, size_t ip_size)
{
	struct sockaddr_storage address;
	socklen_t address_length = sizeof address;
	char host[INET6_ADDRSTRLEN] = "";
	int port = 0;
	bool ipv6 = false;
	if (getpeername(connection->fd, (struct sockaddr *)&address, &address_length) == 0) {
		if (address.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&address;
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
			port = ntohs(in6->sin6_port);
			ipv6 = true;
		} else if (address.ss_family == AF_INET) {
			struct sockaddr_in *in4 = (struct sockaddr_in *)&address;
			inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
			port = ntohs(in4->sin_port);
		}
	}
	snprintf(out, size, ipv6 ? "[%s]:%d" : "%s:%d", host, port);
	if (ip != NULL)
		snprintf(ip, ip_size, "%s", host);
}

/* etcd's log line for a handshake it refused (embed/config_logging.go); names is the certificate's
 * "ip-addresses" and "dns-names" fields when it was verified and then refused, else NULL. */
static void log_rejection(struct grpc_tls_connection *tls, const char *error, const char *names)
{
	struct grpc_connection *connection = tls->connection;
	connection->server->stats.tls_rejected++;
	char address[80];
	remote_address(connection, address, sizeof address, NULL, 0);
	const char *server_name = SSL_get_servername(tls->ssl, TLSEXT_NAMETYPE_host_name);
	char escaped_name[512], escaped_error[768];
	log_write("warn", "rejected connection", "\"remote-addr\":\"%s\",\"server-name\":\"%s\",%s%s\"error\":\"%s\"",
		address, log_json_escape(server_name != NULL ? server_name : "", escaped_name, sizeof escaped_name),
		names != NULL ? names : "", names != NULL ? "," : "", log_json_escape(error, escaped_error, sizeof escaped_error));
}

/* The last records (an alert, close_notify) get one try: the connection is ending either way. */
static void send_wire_once(struct grpc_connection *connection)
{
	size_t waiting = grpc_buffer_length(&connection->wire);
	if (waiting == 0 || connection->fd < 0)
		return;
	ssize_t written = send(connection->fd, connection->wire.data + connection->wire.start, waiting,
		MSG_NOSIGNAL | MSG_DONTWAIT);
	if (written > 0)
		grpc_buffer_consume(&connection->wire, (size_t)written);
}

static void handshake_failed(struct grpc_tls_connection *tls)
{
	char error[sizeof tls->failure + 64];
	unsigned long code = ERR_peek_error();
	if (tls->failure[0] != '\0')
		snprintf(error, sizeof error, "%s", tls->failure);
	else if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		snprintf(error, sizeof error, "tls: client didn't provide a certificate");
	else if (code != 0 && ERR_reason_error_string(code) != NULL)
		snprintf(error, sizeof error, "tls: %s", ERR_reason_error_string(code));
	else
		snprintf(error, sizeof error, "tls: handshake failed");
	ERR_clear_error();
	log_rejection(tls, error, tls->failure[0] != '\0' && tls->failure_names[0] != '\0' ? tls->failure_names : NULL);
	tls->broken = true;
	grpc_connection_linger(tls->connection);
}

/* Appends a JSON array of strings ("[\"a\",\"b\"]") to out. */
static void append_json_array(char *out, size_t size, char items[][256], size_t count)
{
	append_text(out, size, "[");
	for (size_t i = 0; i < count; i++) {
		char escaped[520];
		append_text(out, size, i > 0 ? ",\"" : "\"");
		append_text(out, size, log_json_escape(items[i], escaped, sizeof escaped));
		append_text(out, size, "\"");
	}
	append_text(out, size, "]");
}

/* The "ip-addresses" and "dns-names" fields etcd logs for a refused certificate it holds. */
static void certificate_names_fields(X509 *certificate, char *out, size_t size)
{
	enum { MAX_NAMES = 16 };
	char ips[MAX_NAMES][256], dns_names[MAX_NAMES][256];
	size_t ip_count = 0, dns_count = 0;
	GENERAL_NAMES *names = certificate != NULL ? X509_get_ext_d2i(certificate, NID_subject_alt_name, NULL, NULL) : NULL;
	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
		if (name->type == GEN_IPADD && ip_count < MAX_NAMES) {
			int length = ASN1_STRING_length(name->d.iPAddress);
			if (length == 4 || length == 16)
				inet_ntop(length == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(name->d.iPAddress),
					ips[ip_count++], sizeof ips[0]);
		} else if (name->type == GEN_DNS && dns_count < MAX_NAMES) {
			snprintf(dns_names[dns_count++], sizeof dns_names[0], "%.*s", ASN1_STRING_length(name->d.dNSName),
				(const char *)ASN1_STRING_get0_data(name->d.dNSName));
		}
	}
	GENERAL_NAMES_free(names);
	out[0] = '\0';
	append_text(out, size, "\"ip-addresses\":");
	append_json_array(out, size, ips, ip_count);
	append_text(out, size, ",\"dns-names\":");
	append_json_array(out, size, dns_names, dns_count);
}

/* etcd's metrics listeners (transport.checkSAN): a client certificate with IP SANs must name the
 * client's address. DNS names are not resolved here (that would block the loop): a certificate that has
 * any is let through. true when the connection may stay. */
static bool client_address_allowed(struct grpc_tls_connection *tls)
{
	X509 *peer = SSL_get0_peer_certificate(tls->ssl);
	if (peer == NULL)
		return true;
	GENERAL_NAMES *names = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
	if (names == NULL)
		return true;
	char address[80], remote_ip[INET6_ADDRSTRLEN];
	remote_address(tls->connection, address, sizeof address, remote_ip, sizeof remote_ip);
	unsigned char remote_bytes[16];
	int remote_length = 0;
	if (inet_pton(AF_INET, remote_ip, remote_bytes) == 1)
		remote_length = 4;
	else if (inet_pton(AF_INET6, remote_ip, remote_bytes) == 1)
		remote_length = 16;
	enum { MAX_NAMES = 16 };
	char ips[MAX_NAMES][256], dns_names[MAX_NAMES][256];
	size_t ip_count = 0, dns_count = 0;
	bool matched = false;
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
		if (name->type == GEN_IPADD) {
			const unsigned char *bytes = ASN1_STRING_get0_data(name->d.iPAddress);
			int length = ASN1_STRING_length(name->d.iPAddress);
			matched |= length == remote_length && memcmp(bytes, remote_bytes, (size_t)length) == 0;
			if (ip_count < MAX_NAMES && (length == 4 || length == 16))
				inet_ntop(length == 4 ? AF_INET : AF_INET6, bytes, ips[ip_count++], sizeof ips[0]);
		} else if (name->type == GEN_DNS && dns_count < MAX_NAMES) {
			snprintf(dns_names[dns_count++], sizeof dns_names[0], "%.*s", ASN1_STRING_length(name->d.dNSName),
				(const char *)ASN1_STRING_get0_data(name->d.dNSName));
		}
	}
	GENERAL_NAMES_free(names);
	if (matched || ip_count == 0 || dns_count > 0)
		return true;
	char error[1024] = "x509: certificate is valid for ";
	for (size_t i = 0; i < ip_count; i++) {
		append_text(error, sizeof error, i > 0 ? ", " : "");
		append_text(error, sizeof error, ips[i]);
	}
	append_text(error, sizeof error, ", not ");
	append_text(error, sizeof error, remote_ip);
	char fields[2048] = "\"ip-addresses\":";
	append_json_array(fields, sizeof fields, ips, ip_count);
	append_text(fields, sizeof fields, ",\"dns-names\":");
	append_json_array(fields, sizeof fields, dns_names, dns_count);
	log_rejection(tls, error, fields);
	return false;
}

/* Runs the handshake and the reads on what OpenSSL has been handed; -1 when the connection closed. */
static int advance(struct grpc_tls_connection *tls)
{
	struct grpc_connection *connection = tls->connection;
	if (!tls->handshake_done) {
		ERR_clear_error();
		int result = SSL_do_handshake(tls->ssl);
		if (result != 1) {
			if (SSL_get_error(tls->ssl, result) == SSL_ERROR_WANT_READ) {
				ERR_clear_error();
				return 0;
			}
			handshake_failed(tls);
			return -1;
		}
		tls->handshake_done = true;
		connection->server->stats.tls_handshakes++;
		if (connection->server->config.tls_check_client_address && !client_address_allowed(tls)) {
			grpc_connection_linger(connection);
			return -1;
		}
	}
	uint8_t plaintext[16384];
	for (;;) {
		ERR_clear_error();
		int got = SSL_read(tls->ssl, plaintext, sizeof plaintext);
		if (got > 0) {
			if (grpc_connection_receive(connection, plaintext, (size_t)got) != 0)
				return -1;
			continue;
		}
		int reason = SSL_get_error(tls->ssl, got);
		ERR_clear_error();
		if (reason == SSL_ERROR_WANT_READ)
			return 0;
		/* close_notify: the client is done; anything else is a broken record. */
		if (reason != SSL_ERROR_ZERO_RETURN)
			tls->broken = true;
		grpc_connection_close(connection, reason != SSL_ERROR_ZERO_RETURN);
		return -1;
	}
}

int grpc_tls_receive(struct grpc_connection *connection, const uint8_t *bytes, size_t length)
{
	struct grpc_tls_connection *tls = connection->tls;
	if (tls->first_header_have < sizeof tls->first_header) {
		size_t take = sizeof tls->first_header - tls->first_header_have;
		if (take > length)
			take = length;
		memcpy(tls->first_header + tls->first_header_have, bytes, take);
		tls->first_header_have += take;
		/* Go's test: a handshake or alert record of a version below 16.0. */
		const uint8_t *header = tls->first_header;
		bool looks_tls = (header[0] == 22 || header[0] == 21) && (tls->first_header_have < 2 || header[1] < 0x10);
		if (!looks_tls) {
			log_rejection(tls, "tls: first record does not look like a TLS handshake", NULL);
			tls->broken = true;
			connection->bad_input = true;
			grpc_connection_linger(connection);
			return -1;
		}
	}
	tls->incoming = bytes;
	tls->incoming_length = length;
	int result = advance(tls);
	/* The connection may be gone (closed and queued for freeing, its tls freed with it). */
	if (result == 0) {
		tls->incoming = NULL;
		tls->incoming_length = 0;
	}
	return result;
}

int grpc_tls_encrypt(struct grpc_connection *connection)
{
	struct grpc_tls_connection *tls = connection->tls;
	if (!tls->handshake_done || tls->broken)
		return 0;
	while (grpc_buffer_length(&connection->output) > 0 && grpc_buffer_length(&connection->wire) < GRPC_OUTPUT_HIGH_WATER) {
		size_t waiting = grpc_buffer_length(&connection->output);
		int take = waiting < 65536 ? (int)waiting : 65536;
		ERR_clear_error();
		int written = SSL_write(tls->ssl, connection->output.data + connection->output.start, take);
		if (written <= 0) {
			ERR_clear_error();
			tls->broken = true;
			return -1;
		}
		grpc_buffer_consume(&connection->output, (size_t)written);
	}
	return 0;
}

void grpc_tls_peer_closed(struct grpc_connection *connection, int error_number)
{
	struct grpc_tls_connection *tls = connection->tls;
	if (tls == NULL || tls->handshake_done || tls->broken)
		return;
	char reason[160] = "EOF";
	if (error_number != 0) {
		snprintf(reason, sizeof reason, "read: %s", strerror(error_number));
		reason[6] = (char)tolower((unsigned char)reason[6]);
	}
	log_rejection(tls, tls->failure[0] != '\0' ? tls->failure : reason, NULL);
	tls->broken = true;
}

void grpc_tls_connection_end(struct grpc_connection *connection)
{
	struct grpc_tls_connection *tls = connection->tls;
	if (tls == NULL)
		return;
	if (tls->handshake_done && !tls->broken) {
		ERR_clear_error();
		SSL_shutdown(tls->ssl);
	}
	/* close_notify, or the alert of a failed handshake. */
	send_wire_once(connection);
	ERR_clear_error();
	SSL_free(tls->ssl);
	free(tls);
	connection->tls = NULL;
	grpc_buffer_free(&connection->wire);
}

/* ---- etcd's --auto-tls ---- */

static int make_directories(const char *path, char *err, size_t errlen)
{
	char partial[4096];
	if (strlen(path) >= sizeof partial) {
		snprintf(err, errlen, "cannot create cert directory %s: path too long", path);
		return -1;
	}
	for (size_t i = 1; path[i - 1] != '\0'; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		memcpy(partial, path, i);
		partial[i] = '\0';
		if (mkdir(partial, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create cert directory %s: %s", partial, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* "127.0.0.1:2379" → "127.0.0.1", "[::1]:2379" → "::1", "name" → "name" (Go's SplitHostPort, then the
 * host as it is when there is no port). */
static void host_of(const char *host_port, char *host, size_t size)
{
	if (host_port[0] == '[') {
		const char *close = strchr(host_port, ']');
		size_t length = close != NULL ? (size_t)(close - host_port - 1) : strlen(host_port + 1);
		snprintf(host, size, "%.*s", (int)length, host_port + 1);
		return;
	}
	const char *colon = strrchr(host_port, ':');
	size_t length = colon != NULL && strchr(host_port, ':') == colon ? (size_t)(colon - host_port) : strlen(host_port);
	snprintf(host, size, "%.*s", (int)length, host_port);
}

static int add_extension(X509 *certificate, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, certificate, certificate, NULL, NULL, 0);
	X509_EXTENSION *extension = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (extension == NULL)
		return -1;
	int result = X509_add_ext(certificate, extension, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(extension);
	return result;
}

static int add_subject_alt_names(X509 *certificate, const char *const *hosts, size_t host_count)
{
	GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	if (names == NULL)
		return -1;
	for (size_t i = 0; i < host_count; i++) {
		char host[256];
		host_of(hosts[i], host, sizeof host);
		if (host[0] == '\0')
			continue;
		GENERAL_NAME *name = NULL;
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
		if (ip != NULL) {
			name = GENERAL_NAME_new();
			if (name != NULL)
				GENERAL_NAME_set0_value(name, GEN_IPADD, ip);
			else
				ASN1_OCTET_STRING_free(ip);
		} else {
			ERR_clear_error();
			ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
			name = GENERAL_NAME_new();
			if (dns == NULL || name == NULL || ASN1_STRING_set(dns, host, (int)strlen(host)) != 1) {
				ASN1_IA5STRING_free(dns);
				GENERAL_NAME_free(name);
				name = NULL;
			} else {
				GENERAL_NAME_set0_value(name, GEN_DNS, dns);
			}
		}
		if (name == NULL || sk_GENERAL_NAME_push(names, name) == 0) {
			GENERAL_NAME_free(name);
			GENERAL_NAMES_free(names);
			return -1;
		}
	}
	int result = 0;
	if (sk_GENERAL_NAME_num(names) > 0)
		result = X509_add1_ext_i2d(certificate, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1 ? 0 : -1;
	GENERAL_NAMES_free(names);
	return result;
}

static X509 *self_signed_certificate(EVP_PKEY *key, const char *const *hosts, size_t host_count)
{
	X509 *certificate = X509_new();
	if (certificate == NULL)
		return NULL;
	unsigned char serial_bytes[16];
	BIGNUM *serial = NULL;
	bool ok = X509_set_version(certificate, 2) == 1 && RAND_bytes(serial_bytes, sizeof serial_bytes) == 1;
	serial_bytes[0] &= 0x7f; /* a positive 128-bit number, as Go's rand.Int below 2^128 */
	ok = ok && (serial = BN_bin2bn(serial_bytes, sizeof serial_bytes, NULL)) != NULL &&
		BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(certificate)) != NULL;
	BN_free(serial);
	X509_NAME *name = X509_get_subject_name(certificate);
	ok = ok && X509_gmtime_adj(X509_getm_notBefore(certificate), 0) != NULL &&
		X509_gmtime_adj(X509_getm_notAfter(certificate), 365L * 24 * 3600) != NULL &&
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"etcd", -1, -1, 0) == 1 &&
		X509_set_issuer_name(certificate, name) == 1 && X509_set_pubkey(certificate, key) == 1 &&
		add_extension(certificate, NID_key_usage, "critical,digitalSignature,keyEncipherment") == 0 &&
		add_extension(certificate, NID_ext_key_usage, "serverAuth") == 0 &&
		add_extension(certificate, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
		add_subject_alt_names(certificate, hosts, host_count) == 0 &&
		X509_sign(certificate, key, EVP_sha512()) > 0;
	if (!ok) {
		X509_free(certificate);
		return NULL;
	}
	return certificate;
}

/* Writes the key (traditional PEM) or the certificate to a new file of that mode. */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *certificate, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	BIO *out = BIO_new_fd(fd, BIO_CLOSE);
	if (out == NULL) {
		close(fd);
		snprintf(err, errlen, "cannot write %s: out of memory", path);
		return -1;
	}
	bool written = key != NULL ? PEM_write_bio_PrivateKey_traditional(out, key, NULL, NULL, 0, NULL, NULL) == 1
		: PEM_write_bio_X509(out, certificate) == 1;
	written = BIO_flush(out) == 1 && written;
	BIO_free(out);
	if (!written) {
		char reason[256];
		openssl_reason(reason, sizeof reason);
		snprintf(err, errlen, "cannot write %s: %s", path, reason);
		return -1;
	}
	return 0;
}

int grpc_tls_self_signed(const char *directory, const char *const *hosts, size_t host_count, bool *created,
	char *err, size_t errlen)
{
	*created = false;
	if (make_directories(directory, err, errlen) != 0)
		return -1;
	size_t path_size = strlen(directory) + sizeof "/cert.pem";
	char *cert_path = xmalloc(path_size), *key_path = xmalloc(path_size);
	snprintf(cert_path, path_size, "%s/cert.pem", directory);
	snprintf(key_path, path_size, "%s/key.pem", directory);
	int result = -1;
	EVP_PKEY *key = NULL;
	X509 *certificate = NULL;
	if (access(cert_path, F_OK) == 0 && access(key_path, F_OK) == 0) {
		result = 0;
		goto done;
	}
	ERR_clear_error();
	key = EVP_EC_gen("P-521");
	certificate = key != NULL ? self_signed_certificate(key, hosts, host_count) : NULL;
	if (certificate == NULL) {
		char reason[256];
		openssl_reason(reason, sizeof reason);
		snprintf(err, errlen, "cannot generate a self-signed certificate: %s", reason);
		goto done;
	}
	/* The key first, private from the start (0600): "EC PRIVATE KEY", the SEC 1 form Go's
	 * x509.MarshalECPrivateKey writes. */
	if (write_pem(key_path, 0600, key, NULL, err, errlen) != 0 ||
		write_pem(cert_path, 0644, NULL, certificate, err, errlen) != 0)
		goto done;
	*created = true;
	result = 0;
done:
	ERR_clear_error();
	X509_free(certificate);
	EVP_PKEY_free(key);
	free(cert_path);
	free(key_path);
	return result;
}

bool grpc_tls_peer_common_name(const struct grpc_connection *connection, char *out, size_t size)
{
	const struct grpc_tls_connection *tls = connection->tls;
	if (tls == NULL || !tls->handshake_done || size == 0)
		return false;
	X509 *peer = SSL_get0_peer_certificate(tls->ssl);
	if (peer == NULL || SSL_get_verify_result(tls->ssl) != X509_V_OK)
		return false;
	const X509_NAME *subject = X509_get_subject_name(peer);
	int last = -1;
	for (int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); at >= 0;
	     at = X509_NAME_get_index_by_NID(subject, NID_commonName, at))
		last = at;
	if (last < 0)
		return false;
	const ASN1_STRING *value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last));
	int length = ASN1_STRING_length(value);
	if (length <= 0 || (size_t)length >= size)
		return false;
	memcpy(out, ASN1_STRING_get0_data(value), (size_t)length);
	out[length] = '\0';
	return strlen(out) == (size_t)length; /* a CN with a NUL byte names nobody */
}
