#!/usr/bin/env bash
# tests/tls/01-client-tls.sh: a three-member cluster whose client URLs are https:// with --client-cert-auth and
# the test CA (etcd's secure set-up), driven by etcdctl --cacert --cert --key; every client without a trusted
# certificate is refused, each with etcd's log line; curl on the client and metrics URLs. Outputs pinned
# against etcd 3.4.23 (run the script with etcd to re-check them). Ports 27100-27199.
source "$(dirname "$(realpath "$0")")/lib.sh"

add_tls_member infra1 27110
add_tls_member infra2 27120
add_tls_member infra3 27130
ic=$(initial_cluster infra1 infra2 infra3)
# infra1 also serves --listen-metrics-urls, https and http at once.
# shellcheck disable=SC2046
start_member infra1 "$ic" new $(tls_flags infra1) \
	--listen-metrics-urls "https://127.0.0.1:27108,http://127.0.0.1:27107"
# quorumd's infra2 serves its client URL from three threads sharing one TLS context (etcd has no such flag).
threads=()
[ "$KIND" = etcd ] || threads=(--client-threads 3)
# shellcheck disable=SC2046
start_member infra2 "$ic" new $(tls_flags infra2) "${threads[@]}"
# shellcheck disable=SC2046
start_member infra3 "$ic" new $(tls_flags infra3)
wait_ready 30 infra1 infra2 infra3
log "cluster ready over TLS, leader $LEADER"
all=$(endpoints infra1 infra2 infra3)

# ---- the trusted client: etcdctl as etcd's documentation shows it ----
expect_out "OK" --endpoints="$all" put foo bar
for round in 1 2 3 4 5 6; do
	expect_out $'foo\nbar' --endpoints="${CLIENT[infra2]}" get foo
done
expect_out "OK" --endpoints="${CLIENT[infra3]}" put foo2 bar2
expect_out $'foo\nbar\nfoo2\nbar2' --endpoints="${CLIENT[infra1]}" get foo --prefix
expect_out "1" --endpoints="$all" del foo2
ctl_ok --endpoints="${CLIENT[infra1]}" get foo -w json
assert_eq "get -w json over TLS" \
	'{"header":{"cluster_id":5754054865604692777,"member_id":13975272086689434772,"revision":4,"raft_term":T},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":2,"version":1,"value":"YmFy"}],"count":1}' \
	"$(mask_term "$OUT")"
ctl_ok --endpoints="${CLIENT[infra1]}" member list -w table
check_table_layout "member list over TLS" "$OUT"
assert_eq "member list: the https:// client URLs" \
	"$(printf '%s\n' \
		'ID|STATUS|NAME|PEER ADDRS|CLIENT ADDRS|IS LEARNER' \
		'49c81856b2f8ccde|started|infra3|http://127.0.0.1:27130|https://127.0.0.1:27129|false' \
		'c1f223eb2e8e4c94|started|infra1|http://127.0.0.1:27110|https://127.0.0.1:27109|false' \
		'd0a83fead4b698a8|started|infra2|http://127.0.0.1:27120|https://127.0.0.1:27119|false')" \
	"$(table_cells "$OUT")"
ctl_ok --endpoints="$all" endpoint health
assert_eq "endpoint health over TLS" "" "$OUT"
assert_match "endpoint health over TLS (stderr)" \
	"(https://127.0.0.1:271[0-9]9 is healthy: successfully committed proposal: took = [0-9.]+[mµ]?s
?){3}" "$ERR"
ctl_bg watch.out --endpoints="${CLIENT[infra1]}" watch foo --rev=2
wait_output watch.out 10 $'PUT\nfoo\nbar'
expect_out "OK" --endpoints="${CLIENT[infra2]}" put foo baz
wait_output watch.out 10 $'PUT\nfoo\nbar\nPUT\nfoo\nbaz'
kill "$BG_PID"

# ---- refused clients: each gets etcd's error, and the member logs etcd's line with Go's reason ----
expect_refused "without a client certificate" --endpoints="${CLIENT[infra1]}" --cacert "$PKI/ca.pem"
expect_rejection_logged infra1 "tls: client didn't provide a certificate"
expect_refused "with a certificate from another CA" --endpoints="${CLIENT[infra1]}" --cacert "$PKI/ca.pem" \
	--cert "$PKI/other-client.pem" --key "$PKI/other-client-key.pem"
expect_rejection_logged infra1 \
	"tls: failed to verify client certificate: x509: certificate signed by unknown authority"
expect_refused "with an expired certificate" --endpoints="${CLIENT[infra1]}" --cacert "$PKI/ca.pem" \
	--cert "$PKI/expired-client.pem" --key "$PKI/expired-client-key.pem"
expect_rejection_logged infra1 \
	"tls: failed to verify client certificate: x509: certificate has expired or is not yet valid: current time " prefix
assert_match "the expired certificate's dates in Go's words" \
	'.*current time [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z is after 2021-01-01T00:00:00Z.*' \
	"$(grep -F 'certificate has expired' "$TMP/infra1.log" | head -n 1)"
expect_refused "trusting another CA" --endpoints="${CLIENT[infra1]}" --cacert "$PKI/other-ca.pem" \
	--cert "$PKI/client.pem" --key "$PKI/client-key.pem"
expect_rejection_logged infra1 "remote error: tls: bad certificate"
expect_refused "over plain http" --endpoints="http://127.0.0.1:27109"
expect_rejection_logged infra1 "tls: first record does not look like a TLS handshake"

# ---- curl: /health over TLS (HTTP/2 by ALPN, and HTTP/1.1), refusals, the metrics URLs ----
# shellcheck disable=SC2046
curl_status $(client_cert_curl) -w ' %{http_version} %{http_code}' "${CLIENT[infra1]}/health"
assert_eq "curl /health over TLS (HTTP/2): $ERR" '{"health":"true"} 2 200' "$OUT"
# shellcheck disable=SC2046
curl_status $(client_cert_curl) --http1.1 -w ' %{http_version} %{http_code}' "${CLIENT[infra2]}/health"
assert_eq "curl /health over TLS (HTTP/1.1): $ERR" '{"health":"true"} 1.1 200' "$OUT"
curl_status --cacert "$PKI/ca.pem" "${CLIENT[infra1]}/health"
assert_eq "curl without a client certificate: no body" "" "$OUT"
# TLS 1.3: curl's handshake is over before the server has seen its (empty) certificate; it then fails reading the
# alert (56) or, when the connection is already gone, sending the request (55). etcd gives either, by timing.
assert_match "curl without a client certificate: exit code ($ERR)" '5[56]' "$RC"
curl_status "http://127.0.0.1:27109/health"
assert_eq "curl over plain http to the https port: exit code ($ERR)" 52 "$RC"
assert_contains "curl over plain http to the https port" "Empty reply from server" "$ERR"
# shellcheck disable=SC2046
curl_status $(client_cert_curl) "https://127.0.0.1:27108/health"
assert_eq "curl /health on the https metrics URL ($ERR)" '{"health":"true"}' "$OUT"
curl_status "http://127.0.0.1:27107/health"
assert_eq "curl /health on the http metrics URL ($ERR)" '{"health":"true"}' "$OUT"
# shellcheck disable=SC2046
curl_status $(client_cert_curl) "https://127.0.0.1:27108/metrics"
assert_contains "/metrics on the https metrics URL" "etcd_server_has_leader 1" "$OUT"
# The metrics listener (etcd's transport.NewListener) also wants the client's address in the certificate's SANs;
# the client URLs do not.
curl_status --cacert "$PKI/ca.pem" --cert "$PKI/wrong-ip-client.pem" --key "$PKI/wrong-ip-client-key.pem" \
	"https://127.0.0.1:27108/health"
[ "$RC" -ne 0 ] || fail "the metrics URL served a certificate for 10.11.12.13: $OUT"
expect_rejection_logged infra1 "x509: certificate is valid for 10.11.12.13, not 127.0.0.1"
assert_contains "the rejected certificate's SANs in the log" '"ip-addresses":["10.11.12.13"],"dns-names":[]' \
	"$(grep -F 'is valid for 10.11.12.13' "$TMP/infra1.log" | head -n 1)"
curl_status --cacert "$PKI/ca.pem" --cert "$PKI/wrong-ip-client.pem" --key "$PKI/wrong-ip-client-key.pem" \
	"${CLIENT[infra1]}/health"
assert_eq "the client URL does not check the client's address ($ERR)" '{"health":"true"}' "$OUT"

# The refusals changed nothing: the cluster still serves, every member agrees.
expect_out $'foo\nbaz' --endpoints="${CLIENT[infra3]}" get foo
wait_until "every member applied the same" 10 applied_converged infra1 infra2 infra3
stop_all_and_check infra1 infra2 infra3
log "done"
