/* control/grpc/grpc_tls.h: TLS for the server's https:// listeners, with etcd's (Go's crypto/tls) behaviour
 * on OpenSSL: TLS 1.2 and 1.3, ALPN "h2" (HTTP/1.1 clients are let in without ALPN, as Go does), client
 * certificates required and verified against --trusted-ca-file when that or --client-cert-auth is set,
 * etcd's --cipher-suites names, and a "rejected connection" log line in etcd's words for every handshake
 * that fails. The record layer runs inside the owner thread's epoll loop like the rest of the server:
 * no thread of its own, no blocking call.
 *
 * A context holds the certificate, key and trust settings; one context may serve several servers (one
 * per client thread) at once, and must outlive every server opened with it. When the files change (a renewed
 * certificate), new connections get the new ones — etcd reads them at every handshake — checked at most once
 * a second; a broken replacement is logged and the previous certificate kept. */
#ifndef QUORUMD_CONTROL_GRPC_TLS_H
#define QUORUMD_CONTROL_GRPC_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct grpc_tls_settings {
	const char *cert_file;       /* PEM: the server certificate, intermediates after it */
	const char *key_file;        /* PEM: its private key */
	const char *trusted_ca_file; /* PEM: the CAs client certificates must chain to; NULL or "": none */
	/* Client certificates are required (and verified) when this is set or trusted_ca_file is given, as
	 * etcd 3.4's TLSInfo.ServerConfig does; without a trusted CA file they are verified against the
	 * system's CAs, as Go does. */
	bool client_cert_auth;
	/* etcd's --cipher-suites: Go's names, comma-separated, for TLS 1.2 (TLS 1.3 names are accepted and
	 * change nothing, as in Go). NULL or "": Go 1.19's default list. */
	const char *cipher_suites;
	/* etcd's --client-crl-file: a CRL (PEM or DER); a verified client certificate whose serial it lists
	 * is refused ("transport: certificate serial ... revoked"). Checked with OpenSSL's CRL checking of
	 * the leaf; complaints about the CRL itself (another issuer, out of date, bad signature) refuse
	 * nothing, as etcd reads only the serials. Re-read when the file changes. NULL or "": none. */
	const char *crl_file;
	/* etcd's --client-cert-allowed-hostname: a verified client certificate must be valid for this host
	 * name or IP address by its SANs (Go's VerifyHostname, never the CN), else "client certificate
	 * authentication failed". NULL or "": any. */
	const char *allowed_hostname;
};

struct grpc_tls_context;

/* Loads the certificate, key and CAs. NULL with etcd's message for the same mistake
 * ("KeyFile and CertFile must both be present[key: ..., cert: ...]", "open FILE: no such file or
 * directory", "unexpected TLS cipher suite \"NAME\"", ...). */
struct grpc_tls_context *grpc_tls_context_new(const struct grpc_tls_settings *settings, char *err,
	size_t errlen);
void grpc_tls_context_free(struct grpc_tls_context *context);

/* Makes every context of the process re-read its files at its next new connection, changed or not (quorumd
 * calls it on SIGHUP; async-signal-safe, one atomic increment). A broken file keeps the previous
 * certificate, logged as for a renewal. */
void grpc_tls_reload_all(void);

/* OpenSSL's name of the TLS 1.2 suite Go calls go_name; "" for a TLS 1.3 suite (always on, in Go as in
 * OpenSSL); NULL for a name etcd refuses ("unexpected TLS cipher suite"). */
const char *grpc_tls_cipher_openssl_name(const char *go_name);

/* etcd's --auto-tls (transport.SelfCert): DIRECTORY/cert.pem and DIRECTORY/key.pem, a self-signed
 * ECDSA P-521 certificate valid for a year, organization "etcd", serverAuth, with each host (host:port
 * or host) as an IP address or DNS name SAN. Existing files are kept. The directory is created (0700).
 * *created tells whether new files were written. 0, or -1 with a message naming what failed. */
int grpc_tls_self_signed(const char *directory, const char *const *hosts, size_t host_count, bool *created,
	char *err, size_t errlen);

#endif
