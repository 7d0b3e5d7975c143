/* common/certificate_checks.h: the certificate checks the client listeners (control/grpc) and the peer
 * transport (dataplane) share, so both refuse and describe a certificate as etcd 3.4 does (Go's
 * crypto/x509 and etcd's transport package). A library of its own (certificate_checks_dep): it needs
 * OpenSSL's libcrypto, which the rest of common/ does not. */
#ifndef QUORUMD_COMMON_CERTIFICATE_CHECKS_H
#define QUORUMD_COMMON_CERTIFICATE_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509_vfy.h>

/* Go's words for a certificate OpenSSL refused with verify_code (X509_V_ERR_*): an unknown authority, a
 * validity period, a key usage; NULL for a code Go has no words of its own for. */
const char *certificate_go_error_text(long verify_code);

/* The first step of a verify callback (SSL_CTX_set_verify): true when the certificate passes, either as
 * OpenSSL found it (preverify_ok) or because what OpenSSL refused is its complaint about the CRL rather
 * than about the certificate. etcd's --client-crl-file and --peer-crl-file only refuse the serials the
 * file lists: etcd does not verify the CRL, does not look at its dates and has nothing to say about a
 * certificate whose CA issued no CRL, while OpenSSL wants a valid, current CRL from the certificate's
 * issuer. Such a complaint is cleared from store, or it would stay the connection's verify result. */
bool certificate_verify_passes(int preverify_ok, X509_STORE_CTX *store);

/* etcd's words for a revoked certificate (transport.checkCRL): "transport: certificate serial %x
 * revoked", the serial's big-endian bytes in lower-case hexadecimal as Go's %x prints them (empty for a
 * NULL certificate). */
void certificate_describe_revoked(X509 *certificate, char *out, size_t size);

/* Whether host is an IPv4 or IPv6 literal: Go checks those against the certificate's IP SANs, any other
 * name against its DNS SANs (and sends no SNI for an address). */
bool certificate_host_is_ip(const char *host);

/* Makes the handshake verifying with param expect host (Go's VerifyHostname, as
 * certificate_host_is_ip says which SANs); false when OpenSSL cannot use it. */
bool certificate_expect_host(X509_VERIFY_PARAM *param, const char *host);

#endif
