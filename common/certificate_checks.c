/* common/certificate_checks.c: see certificate_checks.h. */
#include "certificate_checks.h"

#include <arpa/inet.h>
#include <stdio.h>

#include <openssl/bn.h>
#include <openssl/x509.h>

const char *certificate_go_error_text(long verify_code)
{
	switch (verify_code) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
		return "x509: certificate signed by unknown authority";
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "x509: certificate has expired or is not yet valid";
	case X509_V_ERR_INVALID_PURPOSE:
		return "x509: certificate specifies an incompatible key usage";
	default:
		return NULL;
	}
}

static bool crl_complaint(int verify_code)
{
	switch (verify_code) {
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
		return true;
	default:
		return false;
	}
}

bool certificate_verify_passes(int preverify_ok, X509_STORE_CTX *store)
{
	if (preverify_ok)
		return true;
	if (!crl_complaint(X509_STORE_CTX_get_error(store)))
		return false;
	X509_STORE_CTX_set_error(store, X509_V_OK);
	return true;
}

void certificate_describe_revoked(X509 *certificate, char *out, size_t size)
{
	char serial[2 * 64 + 1] = "";
	BIGNUM *number = certificate != NULL ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), NULL) : NULL;
	unsigned char bytes[64];
	int length = number != NULL && BN_num_bytes(number) <= (int)sizeof bytes ? BN_bn2bin(number, bytes) : 0;
	for (int i = 0; i < length; i++)
		snprintf(serial + 2 * i, 3, "%02x", bytes[i]);
	BN_free(number);
	snprintf(out, size, "transport: certificate serial %s revoked", serial);
}

bool certificate_host_is_ip(const char *host)
{
	unsigned char address[16];
	return inet_pton(AF_INET, host, address) == 1 || inet_pton(AF_INET6, host, address) == 1;
}

bool certificate_expect_host(X509_VERIFY_PARAM *param, const char *host)
{
	return (certificate_host_is_ip(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host) :
		X509_VERIFY_PARAM_set1_host(param, host, 0)) == 1;
}
