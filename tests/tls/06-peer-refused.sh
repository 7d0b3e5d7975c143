#!/usr/bin/env bash
# tests/tls/06-peer-refused.sh: peer TLS keeps out members whose certificates it must refuse, and the cluster
# stays healthy without them. (1) With --peer-client-cert-auth and the test CA, a member whose peer
# certificate comes from another CA is not admitted: the other two elect a leader and commit, it never learns
# a key, a side logs the refusal in Go's words, "x509: certificate signed by unknown authority" (quorumd:
# "rejected connection" or "peer TLS handshake failed"; no frame goes to a member without a session, counted
# unsent_no_session). Restarted
# with a certificate of the test CA, it joins. (2) --peer-cert-allowed-cn quorumd-peer: a member whose
# certificate (same CA) has CN=intruder is not admitted, with etcd's "client certificate authentication
# failed". Ports 27500-27599.
source "$(dirname "$(realpath "$0")")/lib.sh"

peer_flags() { # NAME CERT [extra...]
	local cert=$2
	echo "--peer-cert-file $PKI/$cert.pem --peer-key-file $PKI/$cert-key.pem --peer-trusted-ca-file $PKI/ca.pem"
	echo "--peer-client-cert-auth --enable-pprof"
	shift 2
	echo "$@"
}
start() { # NAME CERT [extra peer flags...]
	local name=$1
	# shellcheck disable=SC2046
	start_member "$name" "$IC" new $(tls_flags "$name" 2>/dev/null || true) $(peer_flags "$@")
}
tls_flags() {
	echo "--cert-file $PKI/infra1.pem --key-file $PKI/infra1-key.pem --trusted-ca-file $PKI/ca.pem --client-cert-auth"
}
# refused_logged NAME...: one of them logged a refused peer handshake naming why.
refused_logged() {
	local n
	for n in "$@"; do
		grep -qE '"msg":"(rejected connection|peer TLS handshake failed)".*"error":"[^"]*'"$REASON" "$TMP/$n.log" &&
			return 0
	done
	return 1
}
# value_on NAME KEY: NAME's own (serializable) read of KEY; sets OUT.
value_on() { ctl --endpoints="${CLIENT[$1]}" --dial-timeout=1s --command-timeout=2s get "$2" --consistency=s --print-value-only; }
vars() {
	curl -sS --max-time 5 --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client-key.pem" \
		"${CLIENT[$1]}/debug/vars" | "$PYTHON" -c "import json, sys; t = json.load(sys.stdin)['transport']; print($2)"
}

# expect_not_admitted GOOD1 GOOD2 OUTSIDER: the two commit; the outsider never sees the write.
expect_not_admitted() {
	local a=$1 b=$2 outsider=$3
	wait_ready 30 "$a" "$b"
	expect_out "OK" --endpoints="$(endpoints "$a" "$b")" put "kept-out" "$outsider"
	wait_until "a refusal of $outsider's certificate logged ($REASON)" 15 refused_logged "$a" "$b" "$outsider"
	# For three election timeouts after the refusal the outsider has no leader and no data.
	local i
	for i in $(seq 1 15); do
		value_on "$outsider" kept-out
		assert_eq "$outsider's own read of the key written without it (look $i)" "" "$OUT"
		sleep 0.2
	done
	all_healthy "$outsider" && fail "$outsider is healthy although its certificate is refused"
	all_healthy "$a" "$b" || fail "$a and $b are not healthy with $outsider refused"
	if [ "$KIND" = quorumd ]; then
		local unsent
		unsent=$(vars "$outsider" "t['unsent_no_session']")
		[ "$unsent" -gt 0 ] || fail "$outsider sent without a session (unsent_no_session $unsent)"
		[ "$(vars "$outsider" "t['messages_in']")" = 0 ] || fail "$outsider received messages without a session"
	fi
}

# ---- (1) a certificate from another CA ----
add_tls_member infra1 27510
add_tls_member infra2 27520
add_tls_member infra3 27530
for n in infra1 infra2 infra3; do PEER[$n]=${PEER[$n]/http:/https:}; done
IC=$(initial_cluster infra1 infra2 infra3)
start infra1 infra1
start infra2 infra2
start infra3 other-peer
REASON="x509: certificate signed by unknown authority"
expect_not_admitted infra1 infra2 infra3
stop_member infra3
start infra3 infra3
wait_ready 30 infra1 infra2 infra3
wait_until "infra3 has the write made without it" 15 eval 'value_on infra3 kept-out; [ "$OUT" = infra3 ]'
for n in infra1 infra2 infra3; do stop_member "$n"; done

# ---- (2) --peer-cert-allowed-cn ----
add_tls_member p1 27540
add_tls_member p2 27550
add_tls_member p3 27560
for n in p1 p2 p3; do PEER[$n]=${PEER[$n]/http:/https:}; done
IC=$(initial_cluster p1 p2 p3)
start p1 peer1 --peer-cert-allowed-cn quorumd-peer
start p2 peer2 --peer-cert-allowed-cn quorumd-peer
start p3 intruder --peer-cert-allowed-cn quorumd-peer
REASON="client certificate authentication failed"
expect_not_admitted p1 p2 p3
stop_member p3
start p3 peer3 --peer-cert-allowed-cn quorumd-peer
wait_ready 30 p1 p2 p3
for n in p1 p2 p3; do stop_member "$n"; done
assert_no_sanitizer_reports
log "ok"
