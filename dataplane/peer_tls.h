/* dataplane/peer_tls.h: the TLS 1.3 handshakes that key sealed peer frames (frame_seal.h), with etcd's
 * peer certificate flags (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file,
 * --peer-client-cert-auth, --peer-auto-tls, --peer-cert-allowed-cn).
 *
 * A thread of its own per transport (the dataplane's poll loops never wait for it) listens on TCP at the
 * transport's address and port number (TCP and UDP ports are separate spaces), runs every handshake
 * non-blocking in its poll loop (each bounded by 3 s, at most 32 accepted ones at once: a silent connection
 * delays no other handshake) and, for every peer whose
 * member id is above ours, dials it; so each pair of members has one TCP connection, opened by the lower
 * id (a joining member, id 0, dials everyone). After the handshake (OpenSSL, TLS 1.3 only) the client
 * sends "QRDP", a version byte and its member and cluster ids, the server answers with its own; both then
 * export two 32-byte keys with SSL_export_keying_material:
 *   "EXPORTER-quorumd-frames-client-to-server"  seals what the dialling member sends
 *   "EXPORTER-quorumd-frames-server-to-client"  seals what the listening member sends
 * and install them in the transport (transport_install_session; the data path picks them up at its next
 * frame). The connection then stays open as the session's lifeline: when it closes (the peer stopped or
 * restarted) the keys are dropped, nothing goes to that peer until it handshakes again, and a restarted
 * peer's new keys make frames under its old ones fail. The dialling side re-keys with a new connection
 * every rekey_interval_ms (an hour) or after rekey_frames frames (2^32) under one key.
 *
 * Certificates: the client checks the server's certificate against the trusted CAs (the system's without
 * --peer-trusted-ca-file) and the peer URL's host (IP SAN or DNS name), unless skip_verify
 * (--peer-auto-tls: self-signed, as etcd, which skips verification then). The server asks for and checks
 * the client's certificate when client_cert_auth is set or a trusted CA file is given (etcd 3.4's
 * TLSInfo.ServerConfig). allowed_cn: the other side's certificate must have that CN, on both sides
 * (etcd's "client certificate authentication failed"); allowed_hostname likewise, a SAN. crl_file: OpenSSL's
 * CRL checking of the other side's (leaf) certificate, on both sides too — etcd checks its CRL only where it
 * listens, but each of its members dials every other and so meets each certificate as a listener; with one
 * connection per pair, only checking both ends keeps a revoked member out whichever end it is. A refused handshake is logged on the listening
 * side as etcd's "rejected connection", on the dialling side as "peer TLS handshake failed" (at most
 * once per peer and reason every 30 s). */
#ifndef QUORUMD_DATAPLANE_PEER_TLS_H
#define QUORUMD_DATAPLANE_PEER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct transport;

struct peer_tls_settings {
	const char *cert_file;        /* PEM, the member's certificate (chain) */
	const char *key_file;         /* PEM, its private key */
	const char *trusted_ca_file;  /* PEM; NULL or "": the system's CAs */
	bool client_cert_auth;
	bool skip_verify;             /* --peer-auto-tls: certificates are not verified */
	const char *allowed_cn;       /* NULL or "": any */
	/* etcd's --peer-cert-allowed-hostname (exclusive with allowed_cn): the other side's certificate must be
	 * valid for this name or IP address by its SANs, on both sides. NULL or "": any. */
	const char *allowed_hostname;
	/* etcd's --peer-crl-file (PEM or DER): a certificate it lists is refused, "transport: certificate
	 * serial ... revoked", where certificates are verified. NULL or "": none. */
	const char *crl_file;
	uint64_t rekey_interval_ms;   /* 0: one hour */
	uint64_t rekey_frames;        /* 0: 2^32 */
};

#define PEER_TLS_LABEL_CLIENT_TO_SERVER "EXPORTER-quorumd-frames-client-to-server"
#define PEER_TLS_LABEL_SERVER_TO_CLIENT "EXPORTER-quorumd-frames-server-to-client"

struct peer_tls;

/* Loads the certificate and key (errors name the file: "peer TLS: cannot load certificate FILE: ..."),
 * listens on TCP host:port and starts the thread, which installs sessions in t. */
int peer_tls_start(const struct peer_tls_settings *settings, struct transport *t, uint64_t member_id,
	uint64_t cluster_id, const char *host, uint16_t port, struct peer_tls **out, char *err, size_t errlen);
/* The thread dials members above our id at these addresses. Any thread. */
void peer_tls_set_peer(struct peer_tls *tls, uint64_t id, const char *host, uint16_t port);
void peer_tls_remove_peer(struct peer_tls *tls, uint64_t id);
/* Asks every peer TLS thread of the process to re-read its certificate, key, CA and CRL files (quorumd calls it
 * on SIGHUP; async-signal-safe, one atomic increment). Each thread builds a new context from the same paths
 * within 200 ms: handshakes from then on use it, sessions up keep their keys. A file that does not load keeps
 * the previous context, logged as "peer TLS: cannot reload the certificates; still using the previous ones"
 * with the error; success is logged as "peer TLS: reloaded the certificates". */
void peer_tls_reload_all(void);
/* Stops the thread and closes every connection. NULL: nothing. */
void peer_tls_stop(struct peer_tls *tls);

#endif
