/* dataplane/peer_tls.c: peer TLS handshakes on a thread of their own, keys into the transport (peer_tls.h).
 *
 * The thread is an event loop: every socket is non-blocking, and each handshake in progress (dialled or
 * accepted) is a small state machine — connect, TLS handshake, hello out, hello in, the one-byte go — that
 * moves whenever poll says its socket is ready. A connection that never speaks holds only its own slot until
 * its deadline, never the others' handshakes. */
#include "peer_tls.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "certificate_checks.h"
#include "log.h"
#include "transport.h"

#define HELLO_SIZE 24u                 /* "QRDP", version, 3 zero bytes, member id, cluster id */
#define HELLO_VERSION 1u
#define HANDSHAKE_TIMEOUT_MS 3000      /* connect, handshake, hellos and go, all told */
#define MAX_ACCEPTING 32u              /* accepted connections still handshaking; beyond, the oldest goes */
#define MAX_PENDING (MAX_ACCEPTING + 64u)
#define POLL_MS 200
#define RETRY_FIRST_MS 200u
#define RETRY_MAX_MS 5000u
#define LOG_REPEAT_MS 30000u
#define DEFAULT_REKEY_INTERVAL_MS (3600u * 1000u)
#define DEFAULT_REKEY_FRAMES ((uint64_t)1 << 32)
#define MAX_LINKS TRANSPORT_MAX_SESSIONS

struct tls_peer {
	uint64_t id;
	char host[256];
	uint16_t port;
};

/* A session's connection. */
struct tls_link {
	int fd;
	SSL *ssl;
	uint64_t peer;
	int64_t token;
	bool dialled;
	uint64_t established_ms;
};

/* What the verify callback saw of one handshake (SSL app data). */
struct verify_note {
	char revoked[96]; /* etcd's words for a revoked certificate, when one was */
};

enum handshake_step {
	STEP_CONNECT,      /* dialled: waiting for the TCP connection */
	STEP_HANDSHAKE,    /* SSL_connect / SSL_accept */
	STEP_WRITE_HELLO,
	STEP_READ_HELLO,
	STEP_WRITE_GO,     /* dialled: the byte that accepts the listener's hello */
	STEP_READ_GO,      /* accepted: waiting for it */
};

/* A handshake in progress. Heap-allocated, so the verify note the SSL points at stays put. */
struct tls_pending {
	int fd;
	SSL *ssl;
	bool dialled;
	enum handshake_step step;
	short events;               /* what poll waits for */
	uint64_t started_ms, deadline_ms;
	struct verify_note note;
	struct tls_peer peer;       /* dialled: whom */
	char remote[INET6_ADDRSTRLEN + 8]; /* accepted: from where */
	uint8_t hello_in[HELLO_SIZE];
	size_t hello_in_length;
	uint64_t their_id, their_cluster;
	bool other_member;          /* dialled: the member at the address is another one */
};

/* Dialling state per peer. */
struct tls_attempt {
	uint64_t peer;
	uint64_t next_ms;
	uint64_t backoff_ms;
	uint64_t logged_ms;
	char last_error[256];
	/* The member at this address said it is another one (a placeholder id for a member answering a join,
	 * once that member runs under its own id): not dialled again until the address changes. */
	bool other_member;
	char other_host[256];
	uint16_t other_port;
};

struct peer_tls {
	SSL_CTX *context;
	struct transport *transport;
	uint64_t member_id, cluster_id;
	bool client_cert_auth, skip_verify, ask_client_certificate;
	char *allowed_cn;
	char *allowed_hostname;
	uint64_t rekey_interval_ms, rekey_frames;
	int listen_fd, wake_fd;
	pthread_t thread;
	bool started;
	_Atomic bool stop;
	/* The files, kept to build a new context on reload (SIGHUP), and the reload requests seen. */
	struct peer_tls_settings files;
	unsigned reloads_seen;

	pthread_mutex_t lock;          /* peers: written by the transport's send side, read by the thread */
	struct tls_peer *peers;
	size_t peer_count, peer_capacity;

	/* thread only */
	struct tls_link links[MAX_LINKS];
	size_t link_count;
	struct tls_attempt attempts[MAX_LINKS];
	size_t attempt_count;
	struct tls_pending *pending[MAX_PENDING];
	size_t pending_count;
	uint64_t abandoned, abandoned_logged_ms; /* accepted handshakes dropped for room, and when last logged */
};

/* Requests to re-read the certificate files (peer_tls_reload_all), a counter every thread compares. */
static atomic_uint reload_requests;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Go's words (crypto/x509, as etcd logs them) for a certificate OpenSSL refused, so operators and tests see
 * the same reasons from quorumd and etcd; a name the peer URL's host does not match in the peer
 * transport's own. */
static const char *go_x509_text(long code)
{
	if (code == X509_V_ERR_IP_ADDRESS_MISMATCH || code == X509_V_ERR_HOSTNAME_MISMATCH)
		return "x509: certificate is not valid for the peer URL's host";
	return certificate_go_error_text(code);
}

static int verify_peer(int preverify_ok, X509_STORE_CTX *store)
{
	/* --peer-crl-file refuses only the serials it lists (certificate_checks.h). */
	if (certificate_verify_passes(preverify_ok, store))
		return 1;
	int code = X509_STORE_CTX_get_error(store);
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct verify_note *note = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *certificate = X509_STORE_CTX_get_current_cert(store);
	if (code == X509_V_ERR_CERT_REVOKED && note && certificate)
		certificate_describe_revoked(certificate, note->revoked, sizeof note->revoked);
	return 0;
}

/* The reason for the last failure: a refused certificate in Go's words (with OpenSSL's), else OpenSSL's. */
static void describe_failure(SSL *ssl, bool server, char *out, size_t size)
{
	unsigned long code = ERR_peek_last_error();
	long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	const struct verify_note *note = ssl ? SSL_get_app_data(ssl) : NULL;
	char reason[200] = "";
	if (code)
		ERR_error_string_n(code, reason, sizeof reason);
	if (verify == X509_V_ERR_CERT_REVOKED && note && note->revoked[0]) {
		snprintf(out, size, "%s", note->revoked);
	} else if (verify != X509_V_OK) {
		const char *go = go_x509_text(verify);
		snprintf(out, size, "%s%s (OpenSSL: %s)", server ? "tls: failed to verify client certificate: " : "",
			go ? go : "x509: certificate verify failed", X509_verify_cert_error_string(verify));
	} else if (code) {
		snprintf(out, size, "%s", reason);
	} else if (errno && errno != EAGAIN && errno != EWOULDBLOCK) {
		snprintf(out, size, "%s", strerror(errno));
	} else {
		snprintf(out, size, "connection closed during the handshake");
	}
	ERR_clear_error();
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void format_hello(const struct peer_tls *tls, uint8_t hello[HELLO_SIZE])
{
	memset(hello, 0, HELLO_SIZE);
	memcpy(hello, "QRDP", 4);
	hello[4] = HELLO_VERSION;
	put64(hello + 8, tls->member_id);
	put64(hello + 16, tls->cluster_id);
}

/* etcd's AllowedCN or AllowedHostname check (exclusive), on whichever side we are. The hostname as Go's
 * Certificate.VerifyHostname: an IP address against the IP SANs, a name against the DNS SANs (a wildcard
 * for the leftmost label only), never the CN. */
static bool certificate_allowed(const struct peer_tls *tls, SSL *ssl)
{
	if (!tls->allowed_cn && !tls->allowed_hostname)
		return true;
	X509 *certificate = SSL_get1_peer_certificate(ssl);
	if (!certificate)
		return false;
	bool allowed;
	if (tls->allowed_cn) {
		char name[256] = "";
		X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name, sizeof name);
		allowed = strcmp(name, tls->allowed_cn) == 0;
	} else if (certificate_host_is_ip(tls->allowed_hostname)) {
		allowed = X509_check_ip_asc(certificate, tls->allowed_hostname, 0) == 1;
	} else {
		allowed = X509_check_host(certificate, tls->allowed_hostname, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
			X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
	}
	X509_free(certificate);
	return allowed;
}

static void certificate_common_name(SSL *ssl, char *out, size_t size)
{
	out[0] = '\0';
	X509 *certificate = SSL_get1_peer_certificate(ssl);
	if (certificate) {
		X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, out, (int)size);
		X509_free(certificate);
	}
}

/* Exports both directions' keys and installs them; the token, or < 0. */
static int64_t install_keys(struct peer_tls *tls, SSL *ssl, uint64_t peer, bool dialled)
{
	uint8_t client_to_server[TRANSPORT_SESSION_KEY_SIZE], server_to_client[TRANSPORT_SESSION_KEY_SIZE];
	if (SSL_export_keying_material(ssl, client_to_server, sizeof client_to_server, PEER_TLS_LABEL_CLIENT_TO_SERVER,
		strlen(PEER_TLS_LABEL_CLIENT_TO_SERVER), NULL, 0, 0) != 1 ||
		SSL_export_keying_material(ssl, server_to_client, sizeof server_to_client, PEER_TLS_LABEL_SERVER_TO_CLIENT,
		strlen(PEER_TLS_LABEL_SERVER_TO_CLIENT), NULL, 0, 0) != 1)
		return -EIO;
	int64_t token = dialled ? transport_install_session(tls->transport, peer, client_to_server, server_to_client)
		: transport_install_session(tls->transport, peer, server_to_client, client_to_server);
	OPENSSL_cleanse(client_to_server, sizeof client_to_server);
	OPENSSL_cleanse(server_to_client, sizeof server_to_client);
	return token;
}

static void close_link(struct peer_tls *tls, size_t i, bool drop_keys)
{
	struct tls_link *link = &tls->links[i];
	if (drop_keys)
		transport_drop_session(tls->transport, link->peer, link->token);
	SSL_free(link->ssl);
	close(link->fd);
	tls->links[i] = tls->links[--tls->link_count];
}

/* Adds an established connection, replacing any older one with the same peer (its keys are replaced
 * already, so they are not dropped). */
static void add_link(struct peer_tls *tls, int fd, SSL *ssl, uint64_t peer, int64_t token, bool dialled)
{
	for (size_t i = 0; i < tls->link_count; i++)
		if (tls->links[i].peer == peer) {
			close_link(tls, i, false);
			break;
		}
	if (tls->link_count == MAX_LINKS) {
		transport_drop_session(tls->transport, peer, token);
		SSL_free(ssl);
		close(fd);
		return;
	}
	tls->links[tls->link_count++] = (struct tls_link){
		.fd = fd, .ssl = ssl, .peer = peer, .token = token, .dialled = dialled, .established_ms = now_ms(),
	};
}

static void log_established(SSL *ssl, uint64_t peer, const char *role, const char *address)
{
	char name[256], escaped_name[512], escaped_address[512];
	certificate_common_name(ssl, name, sizeof name);
	log_write("info", "peer TLS session established",
		"\"remote-peer-id\":\"%llx\",\"role\":\"%s\",\"address\":\"%s\",\"version\":\"%s\",\"cipher\":\"%s\","
		"\"peer-cn\":\"%s\"", (unsigned long long)peer, role, log_json_escape(address, escaped_address,
		sizeof escaped_address), SSL_get_version(ssl), SSL_get_cipher_name(ssl),
		log_json_escape(name, escaped_name, sizeof escaped_name));
}

static void reject(const char *remote, const char *error)
{
	char escaped_remote[256], escaped_error[512];
	/* etcd's line for a refused peer or client handshake (its embed listeners' TLS error log). */
	log_write("warn", "rejected connection", "\"remote-addr\":\"%s\",\"server-name\":\"\",\"error\":\"%s\"",
		log_json_escape(remote, escaped_remote, sizeof escaped_remote),
		log_json_escape(error, escaped_error, sizeof escaped_error));
}

/* ---- handshakes in progress ---- */

static void free_pending(struct tls_pending *p)
{
	if (p->ssl)
		SSL_free(p->ssl);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

static void remove_pending(struct peer_tls *tls, size_t i)
{
	free_pending(tls->pending[i]);
	tls->pending[i] = tls->pending[--tls->pending_count];
}

/* After an SSL call returned rv <= 0: true (and what to poll for) when it only has to wait. */
static bool must_wait(struct tls_pending *p, int rv)
{
	switch (SSL_get_error(p->ssl, rv)) {
	case SSL_ERROR_WANT_READ:
		p->events = POLLIN;
		return true;
	case SSL_ERROR_WANT_WRITE:
		p->events = POLLOUT;
		return true;
	default:
		return false;
	}
}

/* Moves a handshake as far as its socket allows: 0 waiting (p->events set), 1 done (keys may be installed),
 * -1 failed with the reason in why. */
static int advance(struct peer_tls *tls, struct tls_pending *p, char *why, size_t why_size)
{
	static const uint8_t go_byte = 1;
	for (;;) {
		int rv;
		errno = 0;
		ERR_clear_error();
		switch (p->step) {
		case STEP_CONNECT: {
			int error = 0;
			socklen_t length = sizeof error;
			if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0)
				error = errno;
			if (error) {
				snprintf(why, why_size, "dial tcp %s:%u: %s", p->peer.host, p->peer.port, strerror(error));
				return -1;
			}
			p->step = STEP_HANDSHAKE;
			continue;
		}
		case STEP_HANDSHAKE:
			rv = p->dialled ? SSL_connect(p->ssl) : SSL_accept(p->ssl);
			if (rv != 1) {
				if (must_wait(p, rv))
					return 0;
				describe_failure(p->ssl, !p->dialled, why, why_size);
				return -1;
			}
			if (!certificate_allowed(tls, p->ssl)) {
				snprintf(why, why_size, "client certificate authentication failed");
				return -1;
			}
			/* The dialling side speaks first; the listener answers once it knows who dialled. */
			p->step = p->dialled ? STEP_WRITE_HELLO : STEP_READ_HELLO;
			continue;
		case STEP_WRITE_HELLO: {
			uint8_t hello[HELLO_SIZE];
			format_hello(tls, hello);
			/* Without partial writes a record goes whole or not at all, so a retry repeats the same bytes. */
			rv = SSL_write(p->ssl, hello, sizeof hello);
			if (rv <= 0) {
				if (must_wait(p, rv))
					return 0;
				describe_failure(p->ssl, !p->dialled, why, why_size);
				return -1;
			}
			if (p->dialled) {
				p->step = STEP_READ_HELLO;
				continue;
			}
			/* The lower id dials. A higher one dialling us dialled a placeholder id (a member answering our
			 * join query, now that we run under our own id): refused, so it cannot replace the session we
			 * dialled ourselves; our hello, already sent, tells it who is here, and it stops. */
			if (tls->member_id != 0 && p->their_id > tls->member_id) {
				snprintf(why, why_size, "member %llx dialled member %llx, whose id is lower (the lower id dials)",
					(unsigned long long)p->their_id, (unsigned long long)tls->member_id);
				return -1;
			}
			p->step = STEP_READ_GO;
			continue;
		}
		case STEP_READ_HELLO:
			rv = SSL_read(p->ssl, p->hello_in + p->hello_in_length, (int)(HELLO_SIZE - p->hello_in_length));
			if (rv <= 0) {
				if (must_wait(p, rv))
					return 0;
				/* The server reads our certificate after its handshake ends: a refusal shows here, as a
				 * closed connection or its alert, before any key is used. */
				describe_failure(p->ssl, !p->dialled, why, why_size);
				return -1;
			}
			p->hello_in_length += (size_t)rv;
			if (p->hello_in_length < HELLO_SIZE)
				continue;
			if (memcmp(p->hello_in, "QRDP", 4) != 0 || p->hello_in[4] != HELLO_VERSION) {
				snprintf(why, why_size, "not a quorumd peer (unexpected hello)");
				return -1;
			}
			p->their_id = get64(p->hello_in + 8);
			p->their_cluster = get64(p->hello_in + 16);
			if (p->dialled) {
				if (tls->member_id != 0 && p->their_id != 0 && p->their_id != p->peer.id) {
					/* An id of 0 is a joining member, whom the node knows by a placeholder id; and while we
					 * join, we know the others by placeholders. */
					p->other_member = true;
					snprintf(why, why_size, "the member at %s:%u is %llx, not %llx", p->peer.host, p->peer.port,
						(unsigned long long)p->their_id, (unsigned long long)p->peer.id);
					return -1;
				}
				p->step = STEP_WRITE_GO;
				continue;
			}
			if (p->their_cluster != 0 && tls->cluster_id != 0 && p->their_cluster != tls->cluster_id) {
				snprintf(why, why_size, "member %llx is of cluster %llx, not ours (%llx)",
					(unsigned long long)p->their_id, (unsigned long long)p->their_cluster,
					(unsigned long long)tls->cluster_id);
				return -1;
			}
			p->step = STEP_WRITE_HELLO;
			continue;
		case STEP_WRITE_GO:
			rv = SSL_write(p->ssl, &go_byte, 1);
			if (rv <= 0) {
				if (must_wait(p, rv))
					return 0;
				describe_failure(p->ssl, false, why, why_size);
				return -1;
			}
			return 1;
		case STEP_READ_GO: {
			/* Keys only once the client accepted who we are: a client that dialled an address now held by
			 * another member closes instead, and nothing of ours is replaced. */
			uint8_t go = 0;
			rv = SSL_read(p->ssl, &go, 1);
			if (rv <= 0 && must_wait(p, rv))
				return 0;
			if (rv != 1 || go != 1) {
				snprintf(why, why_size, "the client closed after our hello (it dialled another member at this address)");
				return -1;
			}
			return 1;
		}
		}
	}
}

static struct tls_attempt *attempt_for(struct peer_tls *tls, uint64_t peer)
{
	for (size_t i = 0; i < tls->attempt_count; i++)
		if (tls->attempts[i].peer == peer)
			return &tls->attempts[i];
	if (tls->attempt_count == MAX_LINKS)
		return NULL;
	struct tls_attempt *a = &tls->attempts[tls->attempt_count++];
	memset(a, 0, sizeof *a);
	a->peer = peer;
	return a;
}

/* A dial that failed: back off (200 ms doubling to 5 s) and log, once per reason every 30 s. */
static void dial_failed(struct peer_tls *tls, const struct tls_peer *peer, bool other_member, const char *why)
{
	struct tls_attempt *attempt = attempt_for(tls, peer->id);
	if (!attempt)
		return;
	uint64_t now = now_ms();
	char escaped_why[600];
	if (other_member) {
		log_write("info", "peer TLS: not dialling a placeholder again", "\"remote-peer-id\":\"%llx\",\"reason\":\"%s\"",
			(unsigned long long)peer->id, log_json_escape(why, escaped_why, sizeof escaped_why));
		attempt->other_member = true;
		snprintf(attempt->other_host, sizeof attempt->other_host, "%s", peer->host);
		attempt->other_port = peer->port;
		return;
	}
	attempt->backoff_ms = attempt->backoff_ms ? attempt->backoff_ms * 2 : RETRY_FIRST_MS;
	if (attempt->backoff_ms > RETRY_MAX_MS)
		attempt->backoff_ms = RETRY_MAX_MS;
	attempt->next_ms = now + attempt->backoff_ms;
	if (strcmp(why, attempt->last_error) != 0 || now - attempt->logged_ms >= LOG_REPEAT_MS) {
		char escaped_host[512];
		log_write("warn", "peer TLS handshake failed",
			"\"remote-peer-id\":\"%llx\",\"address\":\"%s:%u\",\"error\":\"%s\"", (unsigned long long)peer->id,
			log_json_escape(peer->host, escaped_host, sizeof escaped_host), peer->port,
			log_json_escape(why, escaped_why, sizeof escaped_why));
		snprintf(attempt->last_error, sizeof attempt->last_error, "%s", why);
		attempt->logged_ms = now;
	}
}

/* A handshake ended: install its keys and keep its connection, or log why not. Frees p either way. */
static void finish_pending(struct peer_tls *tls, struct tls_pending *p, int result, const char *failure)
{
	char why[400];
	snprintf(why, sizeof why, "%s", failure ? failure : "");
	int64_t token = -1;
	if (result == 1) {
		/* Keys are filed under the id we dialled: in join mode that is a placeholder the node chose, and the
		 * node sends under it. */
		token = install_keys(tls, p->ssl, p->dialled ? p->peer.id : p->their_id, p->dialled);
		if (token < 0) {
			snprintf(why, sizeof why, "cannot install the session's keys (%lld)", (long long)token);
			result = -1;
		}
	}
	if (result != 1) {
		if (p->dialled) {
			dial_failed(tls, &p->peer, p->other_member, why);
		} else {
			reject(p->remote, why);
			if (p->ssl && p->step > STEP_HANDSHAKE)
				SSL_shutdown(p->ssl);
		}
		free_pending(p);
		return;
	}
	SSL_set_app_data(p->ssl, NULL); /* the note goes with p */
	if (p->dialled) {
		struct tls_attempt *attempt = attempt_for(tls, p->peer.id);
		if (attempt) {
			attempt->backoff_ms = 0;
			attempt->last_error[0] = '\0';
		}
		char address[300];
		snprintf(address, sizeof address, "%s:%u", p->peer.host, p->peer.port);
		log_established(p->ssl, p->peer.id, "client", address);
		add_link(tls, p->fd, p->ssl, p->peer.id, token, true);
	} else {
		log_established(p->ssl, p->their_id, "server", p->remote);
		add_link(tls, p->fd, p->ssl, p->their_id, token, false);
	}
	p->fd = -1;
	p->ssl = NULL;
	free_pending(p);
}

static struct tls_pending *new_pending(struct peer_tls *tls, int fd, bool dialled)
{
	struct tls_pending *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->fd = fd;
	p->dialled = dialled;
	p->started_ms = now_ms();
	p->deadline_ms = p->started_ms + HANDSHAKE_TIMEOUT_MS;
	p->ssl = SSL_new(tls->context);
	if (!p->ssl || SSL_set_fd(p->ssl, fd) != 1) {
		ERR_clear_error();
		free_pending(p);
		return NULL;
	}
	SSL_set_app_data(p->ssl, &p->note);
	return p;
}

/* Runs a new handshake as far as it goes at once, then files it (or finishes it). */
static void begin(struct peer_tls *tls, struct tls_pending *p)
{
	if (p->step != STEP_CONNECT) {
		char why[400] = "";
		int result = advance(tls, p, why, sizeof why);
		if (result != 0) {
			finish_pending(tls, p, result, why);
			return;
		}
	}
	tls->pending[tls->pending_count++] = p;
}

/* ---- the listening side ---- */

/* Takes one connection off the listen queue and starts its handshake; false when there was none. */
static bool accept_one(struct peer_tls *tls)
{
	struct sockaddr_storage from;
	socklen_t from_length = sizeof from;
	int fd = accept4(tls->listen_fd, (struct sockaddr *)&from, &from_length, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return false;
	char host[INET6_ADDRSTRLEN] = "?";
	uint16_t port = 0;
	if (from.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, host, sizeof host);
		port = ntohs(((struct sockaddr_in *)&from)->sin_port);
	} else if (from.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&from)->sin6_addr, host, sizeof host);
		port = ntohs(((struct sockaddr_in6 *)&from)->sin6_port);
	}
	/* A flood of connections that never finish cannot take every slot: past MAX_ACCEPTING one goes, the oldest
	 * of those that have not sent a ClientHello yet (a member's handshake has, within a round trip), else the
	 * oldest. Such drops are logged at most once a second, with their count, so a flood cannot flood the log. */
	size_t accepting = 0, oldest = MAX_PENDING, oldest_silent = MAX_PENDING;
	for (size_t i = 0; i < tls->pending_count; i++) {
		const struct tls_pending *p = tls->pending[i];
		if (p->dialled)
			continue;
		accepting++;
		if (oldest == MAX_PENDING || p->started_ms < tls->pending[oldest]->started_ms)
			oldest = i;
		if (SSL_get_state(p->ssl) == TLS_ST_BEFORE &&
			(oldest_silent == MAX_PENDING || p->started_ms < tls->pending[oldest_silent]->started_ms))
			oldest_silent = i;
	}
	if ((accepting >= MAX_ACCEPTING || tls->pending_count == MAX_PENDING) && oldest != MAX_PENDING) {
		size_t victim = oldest_silent != MAX_PENDING ? oldest_silent : oldest;
		tls->abandoned++;
		uint64_t now = now_ms();
		if (now - tls->abandoned_logged_ms >= 1000) {
			char why[120];
			snprintf(why, sizeof why,
				"handshake abandoned: too many peer handshakes in progress (%llu since the last such line)",
				(unsigned long long)tls->abandoned);
			reject(tls->pending[victim]->remote, why);
			tls->abandoned = 0;
			tls->abandoned_logged_ms = now;
		}
		remove_pending(tls, victim);
	}
	if (tls->pending_count == MAX_PENDING) {
		close(fd);
		return true;
	}
	struct tls_pending *p = new_pending(tls, fd, false);
	if (!p) {
		close(fd);
		return true;
	}
	snprintf(p->remote, sizeof p->remote, "%s:%u", host, port);
	SSL_set_verify(p->ssl, tls->ask_client_certificate && !tls->skip_verify ?
		SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_NONE, verify_peer);
	p->step = STEP_HANDSHAKE;
	begin(tls, p);
	return true;
}

/* ---- the dialling side ---- */

/* Starts a connection without waiting for it: the fd (connected, or connecting when *in_progress), or -1
 * with the reason. */
static int connect_start(const char *host, uint16_t port, bool *in_progress, char *why, size_t why_size)
{
	char service[8];
	snprintf(service, sizeof service, "%u", port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *list = NULL;
	int rv = getaddrinfo(host, service, &hints, &list);
	if (rv != 0 || !list) {
		snprintf(why, why_size, "resolve %s: %s", host, rv ? gai_strerror(rv) : "no address");
		return -1;
	}
	int fd = socket(list->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(why, why_size, "socket: %s", strerror(errno));
		freeaddrinfo(list);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	rv = connect(fd, list->ai_addr, list->ai_addrlen);
	freeaddrinfo(list);
	*in_progress = rv < 0 && errno == EINPROGRESS;
	if (rv < 0 && !*in_progress) {
		snprintf(why, why_size, "dial tcp %s:%u: %s", host, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static bool dialling(const struct peer_tls *tls, uint64_t peer)
{
	for (size_t i = 0; i < tls->pending_count; i++)
		if (tls->pending[i]->dialled && tls->pending[i]->peer.id == peer)
			return true;
	return false;
}

/* Starts a handshake with peer; its end comes through finish_pending. */
static void dial(struct peer_tls *tls, const struct tls_peer *peer)
{
	char why[400] = "";
	bool in_progress = false;
	int fd = connect_start(peer->host, peer->port, &in_progress, why, sizeof why);
	if (fd < 0) {
		dial_failed(tls, peer, false, why);
		return;
	}
	struct tls_pending *p = tls->pending_count < MAX_PENDING ? new_pending(tls, fd, true) : NULL;
	if (!p) {
		close(fd);
		dial_failed(tls, peer, false, "no room for another handshake");
		return;
	}
	p->peer = *peer;
	bool ok = true;
	if (!tls->skip_verify) {
		SSL_set_verify(p->ssl, SSL_VERIFY_PEER, verify_peer);
		X509_VERIFY_PARAM *param = SSL_get0_param(p->ssl);
		ok = certificate_expect_host(param, peer->host) &&
			(certificate_host_is_ip(peer->host) || SSL_set_tlsext_host_name(p->ssl, peer->host) == 1);
	} else {
		SSL_set_verify(p->ssl, SSL_VERIFY_NONE, NULL);
	}
	if (!ok) {
		ERR_clear_error();
		snprintf(why, sizeof why, "cannot verify certificates against the host %s", peer->host);
		finish_pending(tls, p, -1, why);
		return;
	}
	p->step = in_progress ? STEP_CONNECT : STEP_HANDSHAKE;
	p->events = POLLOUT;
	begin(tls, p);
}

static struct tls_link *link_for(struct peer_tls *tls, uint64_t peer)
{
	for (size_t i = 0; i < tls->link_count; i++)
		if (tls->links[i].peer == peer)
			return &tls->links[i];
	return NULL;
}

/* Starts a handshake with each peer above our id that has no session, or whose session is due for a new
 * key, unless one is under way. */
static void dial_peers(struct peer_tls *tls, const struct tls_peer *peers, size_t count)
{
	for (size_t p = 0; p < count && !atomic_load(&tls->stop); p++) {
		const struct tls_peer *peer = &peers[p];
		if (peer->id <= tls->member_id || dialling(tls, peer->id))
			continue;
		uint64_t now = now_ms();
		struct tls_link *link = link_for(tls, peer->id);
		if (link && now - link->established_ms < tls->rekey_interval_ms &&
			transport_session_frames_sent(tls->transport, peer->id) < tls->rekey_frames)
			continue;
		struct tls_attempt *attempt = attempt_for(tls, peer->id);
		if (!attempt || now < attempt->next_ms)
			continue;
		if (attempt->other_member && attempt->other_port == peer->port && strcmp(attempt->other_host, peer->host) == 0)
			continue;
		attempt->other_member = false;
		dial(tls, peer);
	}
}

/* ---- reload ---- */

static SSL_CTX *build_context(const struct peer_tls_settings *settings, char *err, size_t errlen);

/* A new context from the same files (SIGHUP): new handshakes use it, sessions up keep theirs. A file that
 * does not load keeps the previous context, said in the log. */
static void reload(struct peer_tls *tls)
{
	char error[512] = "", escaped_error[1100], escaped_cert[1100], escaped_key[1100];
	log_json_escape(tls->files.cert_file ? tls->files.cert_file : "", escaped_cert, sizeof escaped_cert);
	log_json_escape(tls->files.key_file ? tls->files.key_file : "", escaped_key, sizeof escaped_key);
	SSL_CTX *fresh = build_context(&tls->files, error, sizeof error);
	if (!fresh) {
		log_write("warn", "peer TLS: cannot reload the certificates; still using the previous ones",
			"\"cert-file\":\"%s\",\"key-file\":\"%s\",\"error\":\"%s\"", escaped_cert, escaped_key,
			log_json_escape(error, escaped_error, sizeof escaped_error));
		return;
	}
	SSL_CTX_free(tls->context); /* sessions and handshakes under way hold their own reference */
	tls->context = fresh;
	log_write("info", "peer TLS: reloaded the certificates", "\"cert-file\":\"%s\",\"key-file\":\"%s\"", escaped_cert,
		escaped_key);
}

/* ---- the thread ---- */

static void *run(void *argument)
{
	struct peer_tls *tls = argument;
	struct tls_peer *peers = NULL;
	size_t capacity = 0;
	while (!atomic_load(&tls->stop)) {
		unsigned reloads = atomic_load(&reload_requests);
		if (reloads != tls->reloads_seen) {
			tls->reloads_seen = reloads;
			reload(tls);
		}
		pthread_mutex_lock(&tls->lock);
		size_t count = tls->peer_count;
		if (count > capacity) {
			struct tls_peer *grown = realloc(peers, count * sizeof *grown);
			if (grown) {
				peers = grown;
				capacity = count;
			} else {
				count = capacity;
			}
		}
		if (count)
			memcpy(peers, tls->peers, count * sizeof *peers);
		pthread_mutex_unlock(&tls->lock);

		/* Sessions we dialled with members no longer among the peers end. */
		for (size_t i = 0; i < tls->link_count;) {
			bool known = !tls->links[i].dialled;
			for (size_t p = 0; p < count && !known; p++)
				known = peers[p].id == tls->links[i].peer;
			if (known)
				i++;
			else
				close_link(tls, i, true);
		}
		dial_peers(tls, peers, count);

		struct pollfd fds[2 + MAX_LINKS + MAX_PENDING];
		fds[0] = (struct pollfd){.fd = tls->listen_fd, .events = POLLIN};
		fds[1] = (struct pollfd){.fd = tls->wake_fd, .events = POLLIN};
		size_t links = tls->link_count, pendings = tls->pending_count;
		for (size_t i = 0; i < links; i++)
			fds[2 + i] = (struct pollfd){.fd = tls->links[i].fd, .events = POLLIN};
		uint64_t now = now_ms();
		int timeout = POLL_MS;
		for (size_t i = 0; i < pendings; i++) {
			const struct tls_pending *p = tls->pending[i];
			fds[2 + links + i] = (struct pollfd){.fd = p->fd, .events = p->events};
			int left = p->deadline_ms > now ? (int)(p->deadline_ms - now) : 0;
			if (left < timeout)
				timeout = left;
		}
		int ready = poll(fds, 2 + links + pendings, timeout);
		if (ready < 0)
			continue;
		if (fds[1].revents) {
			uint64_t drained;
			ssize_t r = read(tls->wake_fd, &drained, sizeof drained);
			(void)r;
		}
		/* Links first (finished handshakes may reorder them). Nothing is expected on a link: whatever
		 * arrives is read and dropped; an end (EOF, error, close_notify) ends the session. */
		for (size_t i = links; i-- > 0;) {
			if (!fds[2 + i].revents || i >= tls->link_count)
				continue;
			struct tls_link *link = &tls->links[i];
			char scratch[256];
			int n = SSL_read(link->ssl, scratch, sizeof scratch);
			int error = n > 0 ? SSL_ERROR_NONE : SSL_get_error(link->ssl, n);
			if (error == SSL_ERROR_NONE || error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE)
				continue;
			ERR_clear_error();
			log_write("info", "peer TLS session closed", "\"remote-peer-id\":\"%llx\"",
				(unsigned long long)link->peer);
			close_link(tls, i, true);
		}
		/* Handshakes whose socket is ready move on; those past their deadline end. Descending, so that a
		 * removal (the last one moved into its slot) never skips one not yet looked at. */
		now = now_ms();
		for (size_t i = pendings; i-- > 0;) {
			struct tls_pending *p = tls->pending[i];
			char why[400] = "";
			int result = 0;
			if (fds[2 + links + i].revents) {
				result = advance(tls, p, why, sizeof why);
			}
			if (result == 0 && now >= p->deadline_ms) {
				result = -1;
				snprintf(why, sizeof why, "no answer within %d ms", HANDSHAKE_TIMEOUT_MS);
			}
			if (result == 0)
				continue;
			tls->pending[i] = tls->pending[--tls->pending_count];
			finish_pending(tls, p, result, why);
		}
		if (fds[0].revents & POLLIN)
			for (int k = 0; k < 16 && accept_one(tls); k++)
				;
	}
	free(peers);
	return NULL;
}

/* ---- set-up ---- */

static SSL_CTX *build_context(const struct peer_tls_settings *settings, char *err, size_t errlen)
{
	SSL_CTX *context = SSL_CTX_new(TLS_method());
	if (!context) {
		snprintf(err, errlen, "peer TLS: out of memory");
		return NULL;
	}
	char reason[256] = "";
	const char *what = NULL, *file = NULL;
	SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION);
	SSL_CTX_set_num_tickets(context, 0);
	SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(context, settings->cert_file) != 1) {
		what = "cannot load certificate";
		file = settings->cert_file;
	} else if (SSL_CTX_use_PrivateKey_file(context, settings->key_file, SSL_FILETYPE_PEM) != 1) {
		what = "cannot load private key";
		file = settings->key_file;
	} else if (SSL_CTX_check_private_key(context) != 1) {
		what = "private key does not match the certificate";
		file = settings->key_file;
	} else if (settings->trusted_ca_file && *settings->trusted_ca_file) {
		if (SSL_CTX_load_verify_locations(context, settings->trusted_ca_file, NULL) != 1) {
			what = "cannot load trusted CA file";
			file = settings->trusted_ca_file;
		}
	} else if (SSL_CTX_set_default_verify_paths(context) != 1) {
		what = "cannot load the system's CAs";
		file = "";
	}
	if (!what && settings->crl_file && *settings->crl_file) {
		/* etcd's x509.ParseCRL takes PEM or DER. */
		X509_LOOKUP *lookup = X509_STORE_add_lookup(SSL_CTX_get_cert_store(context), X509_LOOKUP_file());
		if (!lookup || (X509_load_crl_file(lookup, settings->crl_file, X509_FILETYPE_PEM) <= 0 &&
			X509_load_crl_file(lookup, settings->crl_file, X509_FILETYPE_ASN1) <= 0)) {
			what = "cannot load CRL file";
			file = settings->crl_file;
		} else {
			ERR_clear_error();
			/* The whole chain, not the leaf alone: etcd checks the serial of every certificate the other side
			 * sent, so a revoked intermediate CA refuses what it signed. */
			X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(context),
				X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
		}
	}
	if (what) {
		unsigned long code = ERR_peek_last_error();
		if (code)
			ERR_error_string_n(code, reason, sizeof reason);
		ERR_clear_error();
		snprintf(err, errlen, "peer TLS: %s %s: %s", what, file, reason);
		SSL_CTX_free(context);
		return NULL;
	}
	return context;
}

static int listen_on(const char *host, uint16_t port, char *err, size_t errlen)
{
	char service[8];
	snprintf(service, sizeof service, "%u", port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *list = NULL;
	int rv = getaddrinfo(host, service, &hints, &list);
	if (rv != 0 || !list) {
		snprintf(err, errlen, "peer TLS: listen %s:%u: %s", host, port, rv ? gai_strerror(rv) : "no address");
		return -EINVAL;
	}
	int fd = socket(list->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, off = 0;
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (list->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
	}
	if (fd < 0 || bind(fd, list->ai_addr, list->ai_addrlen) != 0 || listen(fd, 64) != 0) {
		int e = errno;
		snprintf(err, errlen, "peer TLS: listen tcp %s:%u: %s", host, port, strerror(e));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(list);
		return -e;
	}
	freeaddrinfo(list);
	return fd;
}

int peer_tls_start(const struct peer_tls_settings *settings, struct transport *t, uint64_t member_id,
	uint64_t cluster_id, const char *host, uint16_t port, struct peer_tls **out, char *err, size_t errlen)
{
	struct peer_tls *tls = calloc(1, sizeof *tls);
	if (!tls) {
		snprintf(err, errlen, "peer TLS: out of memory");
		return -ENOMEM;
	}
	tls->listen_fd = tls->wake_fd = -1;
	pthread_mutex_init(&tls->lock, NULL);
	tls->transport = t;
	tls->member_id = member_id;
	tls->cluster_id = cluster_id;
	tls->client_cert_auth = settings->client_cert_auth;
	tls->skip_verify = settings->skip_verify;
	tls->ask_client_certificate = settings->client_cert_auth ||
		(settings->trusted_ca_file && *settings->trusted_ca_file);
	tls->allowed_cn = settings->allowed_cn && *settings->allowed_cn ? strdup(settings->allowed_cn) : NULL;
	tls->allowed_hostname = settings->allowed_hostname && *settings->allowed_hostname ?
		strdup(settings->allowed_hostname) : NULL;
	tls->rekey_interval_ms = settings->rekey_interval_ms ? settings->rekey_interval_ms : DEFAULT_REKEY_INTERVAL_MS;
	tls->rekey_frames = settings->rekey_frames ? settings->rekey_frames : DEFAULT_REKEY_FRAMES;
	tls->files = (struct peer_tls_settings){
		.cert_file = settings->cert_file ? strdup(settings->cert_file) : NULL,
		.key_file = settings->key_file ? strdup(settings->key_file) : NULL,
		.trusted_ca_file = settings->trusted_ca_file ? strdup(settings->trusted_ca_file) : NULL,
		.crl_file = settings->crl_file ? strdup(settings->crl_file) : NULL,
	};
	tls->reloads_seen = atomic_load(&reload_requests);
	int rv = 0;
	tls->context = build_context(settings, err, errlen);
	if (!tls->context)
		rv = -EINVAL;
	if (rv == 0) {
		tls->listen_fd = listen_on(host, port, err, errlen);
		if (tls->listen_fd < 0)
			rv = tls->listen_fd;
	}
	if (rv == 0) {
		tls->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (tls->wake_fd < 0) {
			rv = -errno;
			snprintf(err, errlen, "peer TLS: eventfd: %s", strerror(errno));
		}
	}
	if (rv == 0) {
		int e = pthread_create(&tls->thread, NULL, run, tls);
		if (e != 0) {
			rv = -e;
			snprintf(err, errlen, "peer TLS: thread: %s", strerror(e));
		} else {
			tls->started = true;
		}
	}
	if (rv != 0) {
		peer_tls_stop(tls);
		return rv;
	}
	*out = tls;
	return 0;
}

static void wake(struct peer_tls *tls)
{
	uint64_t one = 1;
	ssize_t w = write(tls->wake_fd, &one, sizeof one);
	(void)w;
}

void peer_tls_set_peer(struct peer_tls *tls, uint64_t id, const char *host, uint16_t port)
{
	pthread_mutex_lock(&tls->lock);
	struct tls_peer *peer = NULL;
	for (size_t i = 0; i < tls->peer_count && !peer; i++)
		if (tls->peers[i].id == id)
			peer = &tls->peers[i];
	if (!peer && tls->peer_count == tls->peer_capacity) {
		size_t capacity = tls->peer_capacity ? tls->peer_capacity * 2 : 8;
		struct tls_peer *grown = realloc(tls->peers, capacity * sizeof *grown);
		if (grown) {
			tls->peers = grown;
			tls->peer_capacity = capacity;
		}
	}
	if (!peer && tls->peer_count < tls->peer_capacity)
		peer = &tls->peers[tls->peer_count++];
	if (peer) {
		peer->id = id;
		snprintf(peer->host, sizeof peer->host, "%s", host);
		peer->port = port;
	}
	pthread_mutex_unlock(&tls->lock);
	wake(tls);
}

void peer_tls_remove_peer(struct peer_tls *tls, uint64_t id)
{
	pthread_mutex_lock(&tls->lock);
	for (size_t i = 0; i < tls->peer_count; i++)
		if (tls->peers[i].id == id) {
			tls->peers[i] = tls->peers[--tls->peer_count];
			break;
		}
	pthread_mutex_unlock(&tls->lock);
	wake(tls);
}

void peer_tls_stop(struct peer_tls *tls)
{
	if (!tls)
		return;
	if (tls->started) {
		atomic_store(&tls->stop, true);
		wake(tls);
		pthread_join(tls->thread, NULL);
	}
	while (tls->link_count)
		close_link(tls, tls->link_count - 1, false);
	while (tls->pending_count)
		remove_pending(tls, tls->pending_count - 1);
	free((char *)tls->files.cert_file);
	free((char *)tls->files.key_file);
	free((char *)tls->files.trusted_ca_file);
	free((char *)tls->files.crl_file);
	if (tls->listen_fd >= 0)
		close(tls->listen_fd);
	if (tls->wake_fd >= 0)
		close(tls->wake_fd);
	SSL_CTX_free(tls->context);
	free(tls->allowed_cn);
	free(tls->allowed_hostname);
	free(tls->peers);
	pthread_mutex_destroy(&tls->lock);
	free(tls);
}

void peer_tls_reload_all(void)
{
	atomic_fetch_add(&reload_requests, 1);
}
