#!/usr/bin/env bash
# tests/tls/11-peer-reload.sh: SIGHUP makes quorumd read its TLS certificates again. Three members with peer and
# client TLS, each reading its certificates from copies of its own. (1) infra1's peer certificate files are
# replaced by another certificate of the CA (CN=quorumd-peer instead of CN=infra1) and infra1 gets SIGHUP: it logs
# the reload; a handshake with its peer port (openssl s_client) gets the new certificate; infra2, restarted,
# handshakes with infra1 again and logs the new CN for it; writes commit through infra2. (2) A broken replacement
# (not PEM): SIGHUP logs that the previous certificates are kept, s_client still gets CN=quorumd-peer, and infra3,
# restarted, handshakes with infra1 and commits. (3) infra1's client certificate replaced, SIGHUP: its client port
# serves the new one. quorumd only: etcd reads its files at every handshake and has no SIGHUP (it exits on it).
# Ports 27900-27949.
source "$(dirname "$(realpath "$0")")/lib.sh"
[ "$KIND" = quorumd ] || { echo "11-peer-reload: quorumd only (etcd exits on SIGHUP); skipped" >&2; exit 77; }

add_tls_member infra1 27910
add_tls_member infra2 27920
add_tls_member infra3 27930
for n in infra1 infra2 infra3; do PEER[$n]=${PEER[$n]/http:/https:}; done
ic=$(initial_cluster infra1 infra2 infra3)
for n in infra1 infra2 infra3; do
	for side in peer client; do
		cp "$PKI/$n.pem" "$TMP/$n-$side.pem"
		cp "$PKI/$n-key.pem" "$TMP/$n-$side-key.pem"
	done
done
start() {
	start_member "$1" "$ic" new \
		--cert-file "$TMP/$1-client.pem" --key-file "$TMP/$1-client-key.pem" --trusted-ca-file "$PKI/ca.pem" \
		--client-cert-auth --peer-cert-file "$TMP/$1-peer.pem" --peer-key-file "$TMP/$1-peer-key.pem" \
		--peer-trusted-ca-file "$PKI/ca.pem" --peer-client-cert-auth
}
for n in infra1 infra2 infra3; do start "$n"; done
wait_ready 30 infra1 infra2 infra3
expect_out "OK" --endpoints="$(endpoints infra1 infra2 infra3)" put before reload
infra1_id=$(member_id infra1)
[ -n "$infra1_id" ] || fail "no member id for infra1"

# served_cn PORT: the CN of the certificate a TLS server on 127.0.0.1:PORT presents (we show infra2's
# certificate, as a member would).
served_cn() {
	timeout 10 openssl s_client -connect "127.0.0.1:$1" -CAfile "$PKI/ca.pem" -cert "$PKI/infra2.pem" \
		-key "$PKI/infra2-key.pem" </dev/null 2>/dev/null |
		openssl x509 -noout -subject -nameopt RFC2253 2>/dev/null | sed -n 's/^subject=.*CN=\([^,]*\).*/\1/p'
}
peer_port=${PEER[infra1]##*:}
client_port=${CLIENT[infra1]##*:}
assert_eq "the peer certificate infra1 starts with" "infra1" "$(served_cn "$peer_port")"

# sessions_with NAME PEER_ID CN: NAME logged a session established with PEER_ID, whose certificate has CN.
sessions_with() {
	grep -F '"msg":"peer TLS session established"' "$TMP/$1.log" | grep -F "\"remote-peer-id\":\"$2\"" |
		grep -qF "\"peer-cn\":\"$3\""
}
value_on() { # NAME KEY VALUE: NAME's own read of KEY is VALUE
	ctl --endpoints="${CLIENT[$1]}" --dial-timeout=1s --command-timeout=2s get "$2" --consistency=s --print-value-only
	[ "$OUT" = "$3" ]
}
# restart_and_commit NAME: NAME restarted; it handshakes with infra1 again, commits a write and reads it back.
restart_and_commit() {
	kill9 "$1"
	start "$1"
	wait_ready 30 infra1 infra2 infra3
	expect_out "OK" --endpoints="${CLIENT[$1]}" put "after-$1-restart" yes
	wait_until "$1 reads its write back" 10 value_on "$1" "after-$1-restart" yes
}

# ---- (1) a new peer certificate ----
cp "$PKI/peer1.pem" "$TMP/infra1-peer.pem"
cp "$PKI/peer1-key.pem" "$TMP/infra1-peer-key.pem"
# Until the signal the old certificate is served: the files are read on SIGHUP, not on change.
assert_eq "infra1's peer certificate before SIGHUP" "infra1" "$(served_cn "$peer_port")"
kill -HUP "${PID[infra1]}"
wait_until "infra1 logs the reload" 5 log_has infra1 '"msg":"peer TLS: reloaded the certificates"'
log_line_has infra1 '"msg":"received SIGHUP: reloading the TLS certificates"' || fail "infra1 did not log SIGHUP"
assert_eq "infra1's peer certificate after SIGHUP" "quorumd-peer" "$(served_cn "$peer_port")"
restart_and_commit infra2
wait_until "infra2 logs its new session with infra1's new certificate" 10 sessions_with infra2 "$infra1_id" quorumd-peer
running infra1 || fail "infra1 stopped after SIGHUP"

# ---- (2) a broken replacement keeps the previous certificate ----
printf 'not a certificate\n' >"$TMP/infra1-peer.pem"
kill -HUP "${PID[infra1]}"
wait_until "infra1 logs that it keeps the previous certificates" 5 log_line_has infra1 \
	'"msg":"peer TLS: cannot reload the certificates; still using the previous ones"' "\"cert-file\":\"$TMP/infra1-peer.pem\"" \
	'"error":"peer TLS: cannot load certificate'
assert_eq "infra1's peer certificate after a broken replacement" "quorumd-peer" "$(served_cn "$peer_port")"
restart_and_commit infra3
wait_until "infra3 logs a session with infra1's kept certificate" 10 sessions_with infra3 "$infra1_id" quorumd-peer

# ---- (3) the client certificate too ----
assert_eq "infra1's client certificate before" "infra1" "$(served_cn "$client_port")"
cp "$PKI/peer2.pem" "$TMP/infra1-client.pem"
cp "$PKI/peer2-key.pem" "$TMP/infra1-client-key.pem"
kill -HUP "${PID[infra1]}"
wait_until "infra1's client port serves the new certificate" 5 eval '[ "$(served_cn '"$client_port"')" = quorumd-peer ]'
log_line_has infra1 '"msg":"reloaded the client certificate"' || fail "infra1 did not log the client certificate's reload"
expect_out "OK" --endpoints="${CLIENT[infra1]}" put after-client-reload yes

stop_all_and_check infra1 infra2 infra3
log "ok"
