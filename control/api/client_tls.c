/* control/api/client_tls.c: etcd's client TLS set-up (embed.configureClientListeners and serveMetrics in
 * etcd 3.4) from the flags: --cipher-suites names, --auto-tls, each URL's scheme against the certificate
 * flags, then the certificate. The errors and log lines are etcd's, so an operator's etcd configuration
 * fails, warns and starts the same way. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "client_internal.h"
#include "grpc_tls.h"
#include "log.h"

static bool is_https(const char *url)
{
	return strncmp(url, "https://", 8) == 0;
}

/* The URL's host:port (Go's url.URL.Host). */
static void host_port_of(const char *url, char *out, size_t size)
{
	const char *start = strstr(url, "://");
	start = start != NULL ? start + 3 : url;
	size_t length = strcspn(start, "/");
	snprintf(out, size, "%.*s", (int)length, start);
}

/* etcd's tlsutil.GetCipherSuites check, made before anything else (etcd makes it even when no URL is
 * https). */
static int check_cipher_suites(const char *names, char *err, size_t errlen)
{
	if (names == NULL || names[0] == '\0')
		return 0;
	char *copy = xstrdup(names);
	int result = 0;
	for (char *name = copy, *comma; name != NULL; name = comma != NULL ? comma + 1 : NULL) {
		comma = strchr(name, ',');
		if (comma != NULL)
			*comma = '\0';
		if (grpc_tls_cipher_openssl_name(name) == NULL) {
			char escaped[256];
			snprintf(err, errlen, "unexpected TLS cipher suite \"%s\"", log_json_escape(name, escaped, sizeof escaped));
			result = -1;
			break;
		}
	}
	free(copy);
	return result;
}

/* NAME is one of the comma-separated names. */
static bool lists_name(const char *names, const char *name)
{
	size_t length = strlen(name);
	for (const char *at = names; at != NULL; at = strchr(at, ',') != NULL ? strchr(at, ',') + 1 : NULL)
		if (strncmp(at, name, length) == 0 && (at[length] == ',' || at[length] == '\0'))
			return true;
	return false;
}

/* The JSON array etcd logs as "cipher-suites". */
static void cipher_suites_json(const char *names, char *out, size_t size)
{
	size_t used = (size_t)snprintf(out, size, "[");
	if (names != NULL && names[0] != '\0') {
		char *copy = xstrdup(names);
		bool first = true;
		for (char *name = copy, *comma; name != NULL && used < size; name = comma != NULL ? comma + 1 : NULL) {
			comma = strchr(name, ',');
			if (comma != NULL)
				*comma = '\0';
			char escaped[256];
			used += (size_t)snprintf(out + used, size - used, "%s\"%s\"", first ? "" : ",",
				log_json_escape(name, escaped, sizeof escaped));
			first = false;
		}
		free(copy);
	}
	if (used < size)
		snprintf(out + used, size - used, "]");
}

/* etcd's "starting with client TLS" line (embed.serveClients): its TLSInfo printed with %+v. */
static void log_starting_with_tls(const struct client_tls *tls, const char *cipher_suites)
{
	char info[8192], escaped[8192 + 512], suites[2048];
	snprintf(info, sizeof info, "cert = %s, key = %s, trusted-ca = %s, client-cert-auth = %s, crl-file = %s",
		tls->cert_file, tls->key_file, tls->trusted_ca_file, tls->client_cert_auth ? "true" : "false",
		tls->crl_file);
	cipher_suites_json(cipher_suites, suites, sizeof suites);
	log_write("info", "starting with client TLS", "\"tls-info\":\"%s\",\"cipher-suites\":%s",
		log_json_escape(info, escaped, sizeof escaped), suites);
}

/* --auto-tls: etcd's ClientSelfCert, a certificate for the hosts of every listen client URL, in
 * DATA_DIR/fixtures/client. It replaces the whole TLS configuration, so --trusted-ca-file and
 * --client-cert-auth no longer apply (etcd logs "client-cert-auth = false" then too). */
static int use_self_signed(struct client_tls *tls, const struct node_flags *flags, char *const *urls, size_t url_count,
	char *err, size_t errlen)
{
	size_t directory_size = strlen(flags->data_dir) + sizeof "/fixtures/client";
	char *directory = xmalloc(directory_size);
	snprintf(directory, directory_size, "%s/fixtures/client", flags->data_dir);
	char **hosts = xcalloc(url_count + 1, sizeof *hosts);
	for (size_t k = 0; k < url_count; k++) {
		hosts[k] = xmalloc(256);
		host_port_of(urls[k], hosts[k], 256);
	}
	bool created = false;
	int made = grpc_tls_self_signed(directory, (const char *const *)hosts, url_count, &created, err, errlen);
	for (size_t k = 0; k < url_count; k++)
		free(hosts[k]);
	free(hosts);
	if (made != 0) {
		free(directory);
		return -1;
	}
	free(tls->cert_file);
	free(tls->key_file);
	free(tls->trusted_ca_file);
	size_t path_size = directory_size + sizeof "/cert.pem";
	tls->cert_file = xmalloc(path_size);
	tls->key_file = xmalloc(path_size);
	snprintf(tls->cert_file, path_size, "%s/cert.pem", directory);
	snprintf(tls->key_file, path_size, "%s/key.pem", directory);
	tls->trusted_ca_file = xstrdup("");
	tls->client_cert_auth = false;
	/* etcd's self-signed TLSInfo has no CRL and no allowed hostname either. */
	free(tls->crl_file);
	free(tls->allowed_hostname);
	tls->crl_file = xstrdup("");
	tls->allowed_hostname = xstrdup("");
	free(directory);
	if (created) {
		char escaped[4096];
		log_write("info", "created cert file", "\"path\":\"%s\"",
			log_json_escape(tls->cert_file, escaped, sizeof escaped));
		log_write("info", "created key file", "\"path\":\"%s\"",
			log_json_escape(tls->key_file, escaped, sizeof escaped));
	}
	return 0;
}

/* Every https:// client or metrics URL needs a certificate; an http:// one with TLS flags given is served in
 * the clear with etcd's warnings. Says whether any URL, and any client URL, is https. */
static int check_https_urls(const struct client_tls *tls, bool certificate_given, char *const *urls, size_t url_count,
	char *const *metrics_urls, size_t metrics_url_count, bool *any_https, bool *any_https_client, char *err, size_t errlen)
{
	*any_https = *any_https_client = false;
	for (size_t k = 0; k < url_count; k++) {
		char escaped[1024];
		log_json_escape(urls[k], escaped, sizeof escaped);
		if (!is_https(urls[k])) {
			if (certificate_given)
				log_write("warn", "scheme is HTTP while key and cert files are present; ignoring key and cert files",
					"\"client-url\":\"%s\"", escaped);
			if (tls->client_cert_auth)
				log_write("warn", "scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth for "
					"this URL", "\"client-url\":\"%s\"", escaped);
			continue;
		}
		if (!certificate_given) {
			snprintf(err, errlen, "TLS key/cert (--cert-file, --key-file) must be provided for client url %s with "
				"HTTPS scheme", urls[k]);
			return -1;
		}
		*any_https = *any_https_client = true;
	}
	for (size_t k = 0; k < metrics_url_count; k++) {
		if (!is_https(metrics_urls[k]))
			continue;
		if (!certificate_given) {
			char host_port[256];
			host_port_of(metrics_urls[k], host_port, sizeof host_port);
			snprintf(err, errlen, "cannot listen on TLS for %s: KeyFile and CertFile are not presented", host_port);
			return -1;
		}
		*any_https = true;
	}
	return 0;
}

int client_tls_prepare(struct client_tls *tls, const struct node_flags *flags, char *const *urls, size_t url_count,
	char *const *metrics_urls, size_t metrics_url_count, char *err, size_t errlen)
{
	memset(tls, 0, sizeof *tls);
	if (check_cipher_suites(flags->cipher_suites, err, errlen) != 0)
		return -1;
	tls->cert_file = xstrdup(flags->cert_file);
	tls->key_file = xstrdup(flags->key_file);
	tls->trusted_ca_file = xstrdup(flags->trusted_ca_file);
	tls->client_cert_auth = flags->client_cert_auth;
	tls->crl_file = xstrdup(flags->client_crl_file);
	tls->allowed_hostname = xstrdup(flags->client_cert_allowed_hostname);
	bool certificate_given = tls->cert_file[0] != '\0' || tls->key_file[0] != '\0';

	if (flags->auto_tls && certificate_given) {
		log_write("warn", "ignoring client auto TLS since certs given", NULL);
	} else if (flags->auto_tls) {
		if (use_self_signed(tls, flags, urls, url_count, err, errlen) != 0) {
			client_tls_release(tls);
			return -1;
		}
		certificate_given = true;
	}

	bool any_https, any_https_client;
	if (check_https_urls(tls, certificate_given, urls, url_count, metrics_urls, metrics_url_count, &any_https,
		&any_https_client, err, errlen) != 0) {
		client_tls_release(tls);
		return -1;
	}
	if (!any_https) {
		/* etcd says so whenever certificates are given, even when no URL uses them. */
		if (certificate_given)
			log_starting_with_tls(tls, flags->cipher_suites);
		return 0;
	}
	/* etcd's https client URLs are served by Go's HTTP/2 server, which refuses a TLS 1.2 suite list without the
	 * suite HTTP/2 requires (net/http's ConfigureServer); etcd stops with its error. */
	if (any_https_client && flags->cipher_suites != NULL && flags->cipher_suites[0] != '\0' &&
		!lists_name(flags->cipher_suites, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256") &&
		!lists_name(flags->cipher_suites, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")) {
		snprintf(err, errlen, "http2: TLSConfig.CipherSuites is missing an HTTP/2-required AES_128_GCM_SHA256 cipher "
			"(need at least one of TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)");
		client_tls_release(tls);
		return -1;
	}

	struct grpc_tls_settings settings = {
		.cert_file = tls->cert_file,
		.key_file = tls->key_file,
		.trusted_ca_file = tls->trusted_ca_file,
		.client_cert_auth = tls->client_cert_auth,
		.cipher_suites = flags->cipher_suites,
		.crl_file = tls->crl_file,
		.allowed_hostname = tls->allowed_hostname,
	};
	tls->context = grpc_tls_context_new(&settings, err, errlen);
	if (tls->context == NULL) {
		client_tls_release(tls);
		return -1;
	}
	log_starting_with_tls(tls, flags->cipher_suites);
	return 0;
}

void client_tls_log_serving(char *const *urls, size_t url_count)
{
	for (size_t k = 0; k < url_count; k++) {
		char host_port[256], escaped[600];
		host_port_of(urls[k], host_port, sizeof host_port);
		log_json_escape(host_port, escaped, sizeof escaped);
		if (is_https(urls[k]))
			log_write("info", "serving client traffic securely", "\"address\":\"%s\"", escaped);
		else
			log_write("info", "serving client traffic insecurely; this is strongly discouraged!", "\"address\":\"%s\"",
				escaped);
	}
}

void client_tls_release(struct client_tls *tls)
{
	grpc_tls_context_free(tls->context);
	free(tls->cert_file);
	free(tls->key_file);
	free(tls->trusted_ca_file);
	free(tls->crl_file);
	free(tls->allowed_hostname);
	memset(tls, 0, sizeof *tls);
}
