#!/usr/bin/env bash
# tests/tls/14-quorum-bench-tls.sh: the load generator over TLS (bench/compare.sh --tls measures both systems with
# it), against a member with https:// client URLs and --client-cert-auth. With etcd's benchmark flags (--cacert,
# --cert, --key) status answers, a put load succeeds in full, --target-leader finds the leader; trusting another CA
# fails the dial, naming the certificate check (exit 1); without a client certificate every request fails
# (UNAVAILABLE: the server's alert, or its close); --cert without --key is a usage error (exit 2). The same against
# etcd 3.4.23.
# QUORUM_BENCH names the generator (default: the quorumd binary's build dir). Ports 28100-28149.
source "$(dirname "$(realpath "$0")")/lib.sh"

QB=${QUORUM_BENCH:-}
if [ -z "$QB" ]; then
	if [ "$KIND" = quorumd ]; then QB=$(dirname "$(realpath "$SERVER")")/../bench/quorum-bench; else QB=build/bench/quorum-bench; fi
fi
[ -x "$QB" ] || fail "no quorum-bench at $QB (set QUORUM_BENCH)"

add_tls_member solo 28110
# shellcheck disable=SC2046
start_member solo "$(initial_cluster solo)" new $(tls_flags infra1)
wait_ready 30 solo
url=${CLIENT[solo]}
client_flags=(--cacert="$PKI/ca.pem" --cert="$PKI/client.pem" --key="$PKI/client-key.pem")

run_captured "$QB" --endpoints="$url" "${client_flags[@]}" --dial-timeout=5s status --json
assert_eq "quorum-bench status over TLS: exit code (stderr: $ERR)" 0 "$RC"
assert_eq "quorum-bench status over TLS: the endpoint answered" true "$(jq -r '.endpoints[0].ok' <<<"$OUT")"

run_captured "$QB" --endpoints="$url" "${client_flags[@]}" --conns=4 --clients=32 --total=2000 --progress=false --json \
	put --val-size=256
assert_eq "quorum-bench put over TLS: exit code (stderr: $ERR)" 0 "$RC"
assert_eq "quorum-bench put over TLS: requests that succeeded" 2000 "$(jq -r .ok <<<"$OUT")"
assert_eq "quorum-bench put over TLS: requests that failed" 0 "$(jq -r .failed <<<"$OUT")"

# --target-leader asks Maintenance.Status over TLS too.
run_captured "$QB" --endpoints="$url" --cacert="$PKI/ca.pem" --cert="$PKI/client.pem" --key="$PKI/client-key.pem" \
	--target-leader --total=10 --progress=false --json put
assert_eq "quorum-bench --target-leader over TLS: exit code (stderr: $ERR)" 0 "$RC"
assert_eq "quorum-bench --target-leader over TLS: succeeded" 10 "$(jq -r .ok <<<"$OUT")"

# Trusting another CA: the dial fails on the server's certificate.
run_captured "$QB" --endpoints="$url" --cacert="$PKI/other-ca.pem" --cert="$PKI/client.pem" --key="$PKI/client-key.pem" \
	--total=10 --progress=false put
assert_eq "quorum-bench trusting another CA: exit code" 1 "$RC"
assert_contains "quorum-bench trusting another CA: why" "certificate verify failed" "$ERR"

# No client certificate: the handshake ends on the client's side, then the server refuses it; every request fails.
run_captured "$QB" --endpoints="$url" --cacert="$PKI/ca.pem" --total=10 --progress=false --json put
assert_eq "quorum-bench without a client certificate: exit code (the failures are results)" 0 "$RC"
assert_eq "quorum-bench without a client certificate: succeeded" 0 "$(jq -r .ok <<<"$OUT")"
assert_eq "quorum-bench without a client certificate: failed" 10 "$(jq -r .failed <<<"$OUT")"
# The connection broke under them: quorumd's alert arrives first ("tlsv13 alert certificate required"), etcd's
# close sometimes before it ("send: Broken pipe").
assert_eq "quorum-bench without a client certificate: the error's code" UNAVAILABLE \
	"$(jq -r '.error_details[0].name' <<<"$OUT")"
expect_rejection_logged solo "tls: client didn't provide a certificate"

run_captured "$QB" --endpoints="$url" --cert="$PKI/client.pem" put
assert_eq "quorum-bench --cert without --key: exit code" 2 "$RC"
assert_contains "quorum-bench --cert without --key: message" "--cert and --key: give both or neither" "$ERR"

stop_all_and_check solo
log "ok"
