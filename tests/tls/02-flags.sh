#!/usr/bin/env bash
# tests/tls/02-flags.sh: etcd's client TLS flags one member at a time: the combinations etcd refuses, with its
# words; the ETCD_* variables; --cipher-suites; --auto-tls (etcd's self-signed certificate, kept across a
# restart); http:// and https:// client URLs at once; an https:// peer URL without peer certificates, and an
# http:// one with them. Each member is a new one-member cluster; the same script
# against etcd 3.4.23 checks the expectations. Ports 27200-27299.
source "$(dirname "$(realpath "$0")")/lib.sh"

# solo NAME: declares NAME as a one-member cluster on peer port 27210 (each case its own data dir and log).
solo() {
	add_member "$1" 27210
}

# expect_start_error NAME ERROR_JSON FLAGS...: NAME, started with FLAGS, exits with code 1 within 30 s and its log
# has ERROR_JSON (the message as a JSON string's contents) as a line's "error" field.
expect_start_error() {
	local name=$1 error=$2
	shift 2
	start_member "$name" "$(initial_cluster "$name")" new "$@"
	wait_exit "$name" 30
	assert_eq "exit code of $name ($error)" 1 "$EXIT_CODE"
	log_line_has "$name" "\"error\":\"$error\"" || fail "$name's log has no error \"$error\""
}

# ---- what etcd refuses ----
solo no-cert
CLIENT[no-cert]=https://127.0.0.1:27209
expect_start_error no-cert \
	"TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:27209 with HTTPS scheme"

solo no-key
CLIENT[no-key]=https://127.0.0.1:27209
expect_start_error no-key "KeyFile and CertFile must both be present[key: , cert: $PKI/infra1.pem]" \
	--cert-file "$PKI/infra1.pem"

solo bad-cipher
CLIENT[bad-cipher]=https://127.0.0.1:27209
expect_start_error bad-cipher 'unexpected TLS cipher suite \"TLS_BOGUS\"' --cert-file "$PKI/infra1.pem" \
	--key-file "$PKI/infra1-key.pem" --cipher-suites TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_BOGUS

# Go's HTTP/2 server (etcd's https client URLs) wants the suite HTTP/2 requires among the TLS 1.2 ones.
solo no-http2-cipher
CLIENT[no-http2-cipher]=https://127.0.0.1:27209
expect_start_error no-http2-cipher \
	"http2: TLSConfig.CipherSuites is missing an HTTP/2-required AES_128_GCM_SHA256 cipher (need at least one of TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)" \
	--cert-file "$PKI/infra1.pem" --key-file "$PKI/infra1-key.pem" --cipher-suites TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384

solo metrics-no-cert
expect_start_error metrics-no-cert "cannot listen on TLS for 127.0.0.1:27208: KeyFile and CertFile are not presented" \
	--listen-metrics-urls https://127.0.0.1:27208

solo missing-file
CLIENT[missing-file]=https://127.0.0.1:27209
expect_start_error missing-file "open $PKI/missing.pem: no such file or directory" --cert-file "$PKI/missing.pem" \
	--key-file "$PKI/infra1-key.pem"

# Peer TLS: an https:// peer URL needs the peer certificate (etcd's configurePeerListeners).
solo peer-no-cert
PEER[peer-no-cert]=https://127.0.0.1:27210
expect_start_error peer-no-cert "cannot listen on TLS for 127.0.0.1:27210: KeyFile and CertFile are not presented"
log "etcd's errors: ok"

# An http:// peer URL with peer certificates stays cleartext, with etcd's warning and its TLS info line.
solo peer-http
start_member peer-http "$(initial_cluster peer-http)" new --peer-cert-file "$PKI/infra1.pem" \
	--peer-key-file "$PKI/infra1-key.pem"
wait_ready 30 peer-http
log_line_has peer-http '"msg":"starting with peer TLS","tls-info":"cert = '"$PKI"'/infra1.pem, key = '"$PKI"'/infra1-key.pem, trusted-ca = , client-cert-auth = false, crl-file = ","cipher-suites":[]' ||
	fail "peer-http: no 'starting with peer TLS' line"
log_line_has peer-http '"msg":"scheme is HTTP while key and cert files are present; ignoring key and cert files","peer-url":"http://127.0.0.1:27210"' ||
	fail "peer-http: no warning about the http:// peer URL"
stop_member peer-http

# ---- the ETCD_* variables, and --cipher-suites (TLS 1.2 only: Go does not let TLS 1.3's be chosen) ----
solo by-environment
CLIENT[by-environment]=https://127.0.0.1:27209
export ETCD_CERT_FILE=$PKI/infra1.pem ETCD_KEY_FILE=$PKI/infra1-key.pem ETCD_TRUSTED_CA_FILE=$PKI/ca.pem \
	ETCD_CLIENT_CERT_AUTH=true ETCD_CIPHER_SUITES=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
start_member by-environment "$(initial_cluster by-environment)" new
unset ETCD_CERT_FILE ETCD_KEY_FILE ETCD_TRUSTED_CA_FILE ETCD_CLIENT_CERT_AUTH ETCD_CIPHER_SUITES
wait_ready 20 by-environment
expect_out "OK" --endpoints="${CLIENT[by-environment]}" put from-environment yes
expect_refused "without a client certificate (ETCD_CLIENT_CERT_AUTH)" --endpoints="${CLIENT[by-environment]}" \
	--cacert "$PKI/ca.pem"
log_line_has by-environment '"msg":"starting with client TLS"' \
	"\"tls-info\":\"cert = $PKI/infra1.pem, key = $PKI/infra1-key.pem, trusted-ca = $PKI/ca.pem, client-cert-auth = true, crl-file = \"" \
	'"cipher-suites":["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]' || fail "no 'starting with client TLS' line as etcd's"
# shellcheck disable=SC2046
curl_status $(client_cert_curl) --tls-max 1.2 --ciphers ECDHE-RSA-AES128-GCM-SHA256 "${CLIENT[by-environment]}/health"
assert_eq "TLS 1.2 with the listed suite ($ERR)" '{"health":"true"}' "$OUT"
# shellcheck disable=SC2046
curl_status $(client_cert_curl) --tls-max 1.2 --ciphers ECDHE-RSA-AES256-GCM-SHA384 "${CLIENT[by-environment]}/health"
assert_eq "TLS 1.2 with a suite not listed: curl's exit code ($ERR)" 35 "$RC"
# shellcheck disable=SC2046
curl_status $(client_cert_curl) --tlsv1.3 "${CLIENT[by-environment]}/health"
assert_eq "TLS 1.3 whatever --cipher-suites says ($ERR)" '{"health":"true"}' "$OUT"
# shellcheck disable=SC2046
curl_status $(client_cert_curl) --tlsv1.1 --tls-max 1.1 "${CLIENT[by-environment]}/health"
assert_eq "TLS 1.1: curl's exit code ($ERR)" 35 "$RC"
expect_rejection_logged by-environment "tls: client offered only unsupported versions: [302 301]"
stop_member by-environment
log "variables and cipher suites: ok"

# ---- --auto-tls: etcd's self-signed certificate; it replaces --trusted-ca-file and --client-cert-auth ----
solo auto
CLIENT[auto]=https://127.0.0.1:27209
auto_flags=(--auto-tls --trusted-ca-file "$PKI/ca.pem" --client-cert-auth)
start_member auto "$(initial_cluster auto)" new "${auto_flags[@]}"
# etcdctl trusts nothing it was not told to, and --insecure-transport (default true) means cleartext.
insecure=(--endpoints="${CLIENT[auto]}" --insecure-transport=false --insecure-skip-tls-verify)
auto_healthy() { ctl_plain "${insecure[@]}" --dial-timeout=1s --command-timeout=2s endpoint health && [ "$RC" -eq 0 ]; }
wait_until "the --auto-tls member is healthy" 20 auto_healthy
ctl_plain "${insecure[@]}" put auto-key auto-value
assert_eq "put with --auto-tls, no client certificate (stderr: $ERR)" "OK" "$OUT"
ctl_plain "${insecure[@]}" get auto-key
assert_eq "get with --auto-tls" $'auto-key\nauto-value' "$OUT"
ctl_plain --endpoints="${CLIENT[auto]}" --cacert "$PKI/ca.pem" --dial-timeout=1s --command-timeout=2s get auto-key
assert_eq "a client verifying the self-signed certificate against the test CA fails (stderr: $ERR)" 1 "$RC"
fixtures=$(data_dir auto)/fixtures/client
assert_eq "the certificate etcd makes" \
	"$(printf '%s\n' 'subject=O = etcd' 'issuer=O = etcd' \
		'X509v3 Key Usage: critical' '    Digital Signature, Key Encipherment' \
		'X509v3 Extended Key Usage: ' '    TLS Web Server Authentication' \
		'X509v3 Basic Constraints: critical' '    CA:FALSE' \
		'X509v3 Subject Alternative Name: ' '    IP Address:127.0.0.1' \
		'Public-Key: (521 bit)' 'Signature Algorithm: ecdsa-with-SHA512')" \
	"$(openssl x509 -in "$fixtures/cert.pem" -noout -subject -issuer \
		-ext keyUsage,extendedKeyUsage,basicConstraints,subjectAltName
	   openssl x509 -in "$fixtures/cert.pem" -noout -text | grep -E '^ *(Public-Key|Signature Algorithm)' |
		sed 's/^ *//' | sort -u)"
assert_eq "key.pem: mode and PEM type" "600 -----BEGIN EC PRIVATE KEY-----" \
	"$(stat -c %a "$fixtures/key.pem") $(head -n 1 "$fixtures/key.pem")"
log_line_has auto '"msg":"starting with client TLS"' \
	"\"tls-info\":\"cert = $fixtures/cert.pem, key = $fixtures/key.pem, trusted-ca = , client-cert-auth = false, crl-file = \"" ||
	fail "no 'starting with client TLS' line for --auto-tls"
log_line_has auto '"msg":"created cert file"' "\"path\":\"$fixtures/cert.pem\"" || fail "no 'created cert file' line"
fingerprint=$(openssl x509 -in "$fixtures/cert.pem" -noout -fingerprint -sha256)
stop_member auto
start_member auto "$(initial_cluster auto)" new "${auto_flags[@]}"
wait_until "the --auto-tls member is healthy after a restart" 20 auto_healthy
assert_eq "the certificate is kept across a restart" "$fingerprint" \
	"$(openssl x509 -in "$fixtures/cert.pem" -noout -fingerprint -sha256)"
stop_member auto
log "--auto-tls: ok"

# ---- http:// and https:// client URLs at once, each served as its scheme says ----
add_member both 27210
CLIENT[both]=https://127.0.0.1:27212
# shellcheck disable=SC2046
start_raw both "$SERVER" --name both --data-dir "$(data_dir both)" \
	--listen-peer-urls "${PEER[both]}" --initial-advertise-peer-urls "${PEER[both]}" \
	--listen-client-urls http://127.0.0.1:27211,https://127.0.0.1:27212 \
	--advertise-client-urls https://127.0.0.1:27212 \
	--initial-cluster-token "$TOKEN" --initial-cluster "$(initial_cluster both)" --initial-cluster-state new \
	$(server_flags both) $(tls_flags infra1)
wait_ready 20 both
ctl_plain --endpoints=http://127.0.0.1:27211 put cleartext yes
assert_eq "put over the http:// URL (stderr: $ERR)" "OK" "$OUT"
expect_out $'cleartext\nyes' --endpoints="${CLIENT[both]}" get cleartext
expect_refused "without a client certificate on the https:// URL" --endpoints="${CLIENT[both]}" --cacert "$PKI/ca.pem"
log_line_has both '"msg":"scheme is HTTP while key and cert files are present; ignoring key and cert files"' \
	'"client-url":"http://127.0.0.1:27211"' || fail "no warning for the http:// URL with certificates"
log_line_has both \
	'"msg":"scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth for this URL"' \
	'"client-url":"http://127.0.0.1:27211"' || fail "no warning for the http:// URL with --client-cert-auth"
log_line_has both '"msg":"serving client traffic insecurely; this is strongly discouraged!"' \
	'"address":"127.0.0.1:27211"' || fail "no 'serving insecurely' line for the http:// URL"
log_line_has both '"msg":"serving client traffic securely"' '"address":"127.0.0.1:27212"' ||
	fail "no 'serving securely' line for the https:// URL"
stop_all_and_check both
log "http and https at once: ok"
