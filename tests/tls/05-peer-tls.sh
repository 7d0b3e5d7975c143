#!/usr/bin/env bash
# tests/tls/05-peer-tls.sh: three members with etcd's peer TLS flags (https:// peer URLs, --peer-cert-file,
# --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth) and client TLS: writes commit, member
# list shows the https:// peer URLs (pinned against etcd 3.4.23); a member killed and restarted handshakes
# again and catches up; a fourth member added with member add joins (--initial-cluster-state existing). quorumd only: every member logs its TLS 1.3 sessions; the transport counters
# (/debug/vars) show sessions installed, re-keys every 3 s (QUORUMD_TEST_PEER_REKEY_MS) while writes go on,
# and no frame dropped as bad, replayed or session-less once the cluster is up. Then three members with
# --peer-auto-tls (self-signed peer certificates in DATA_DIR/fixtures/peer) commit. Ports 27400-27499.
source "$(dirname "$(realpath "$0")")/lib.sh"

add_tls_member infra1 27410
add_tls_member infra2 27420
add_tls_member infra3 27430
for n in infra1 infra2 infra3; do PEER[$n]=${PEER[$n]/http:/https:}; done
ic=$(initial_cluster infra1 infra2 infra3)
peer_flags() {
	echo "--peer-cert-file $PKI/$1.pem --peer-key-file $PKI/$1-key.pem --peer-trusted-ca-file $PKI/ca.pem"
	echo "--peer-client-cert-auth --enable-pprof"
}
[ "$KIND" != quorumd ] || export QUORUMD_TEST_PEER_REKEY_MS=3000
start() {
	# shellcheck disable=SC2046
	start_member "$1" "$ic" new $(tls_flags "$1") $(peer_flags "$1")
}
for n in infra1 infra2 infra3; do start "$n"; done
wait_ready 30 infra1 infra2 infra3
log "cluster ready with peer TLS, leader $LEADER"
all=$(endpoints infra1 infra2 infra3)

expect_out "OK" --endpoints="$all" put foo bar
expect_out $'foo\nbar' --endpoints="${CLIENT[infra3]}" get foo
ctl_ok --endpoints="${CLIENT[infra1]}" member list -w table
assert_eq "member list: the https:// peer URLs" \
	"$(printf '%s\n' \
		'ID|STATUS|NAME|PEER ADDRS|CLIENT ADDRS|IS LEARNER' \
		'18286b4a3d98f562|started|infra3|https://127.0.0.1:27430|https://127.0.0.1:27429|false' \
		'79bd4a27a2cb9c87|started|infra1|https://127.0.0.1:27410|https://127.0.0.1:27409|false' \
		'b86fb93559d6d8ae|started|infra2|https://127.0.0.1:27420|https://127.0.0.1:27419|false')" \
	"$(table_cells "$OUT")"

# vars NAME EXPRESSION: EXPRESSION over the member's /debug/vars transport counters (t).
vars() {
	curl -sS --max-time 5 --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client-key.pem" \
		"${CLIENT[$1]}/debug/vars" | "$PYTHON" -c "import json, sys; t = json.load(sys.stdin)['transport']; print($2)"
}
if [ "$KIND" = quorumd ]; then
	for n in infra1 infra2 infra3; do
		log_line_has "$n" '"msg":"peer TLS session established"' '"version":"TLSv1.3"' \
			'"cipher":"TLS_AES_256_GCM_SHA384"' || fail "$n logged no TLS 1.3 session"
		log_has "$n" '"msg":"peer frames are sealed with keys from TLS handshakes"' || fail "$n: not sealed"
	done
	for n in infra1 infra2 infra3; do
		sessions=$(vars "$n" "t['sessions_installed']")
		[ "$sessions" -ge 2 ] || fail "$n installed $sessions sessions, expected one per peer at least"
	done
	# Re-keys every 3 s: the dialling member (the lower ID of each pair) installs new sessions while writes
	# commit; no frame fails to open (the previous key still opens frames in flight).
	before=$(vars infra1 "t['sessions_installed']")
	bad_before=$(vars infra1 "t['drop_bad_seal'] + t['drop_replayed']")
	for i in $(seq 1 40); do
		expect_out "OK" --endpoints="${CLIENT[$LEADER]}" put "rekey$i" "v$i"
		sleep 0.2
	done
	after=$(vars infra1 "t['sessions_installed']")
	[ "$after" -ge $((before + 2)) ] || fail "infra1 installed $before then $after sessions over ~10 s of 3 s re-keys"
	bad_after=$(vars infra1 "t['drop_bad_seal'] + t['drop_replayed']")
	log "infra1: sessions $before -> $after across re-keys, bad or replayed frames $bad_before -> $bad_after"
	[ "$bad_after" -le $((bad_before + 2)) ] || fail "infra1 dropped $((bad_after - bad_before)) frames across re-keys"
fi

# ---- a restarted member handshakes again ----
victim=infra2
[ "$LEADER" != infra2 ] || victim=infra3
established_before=$(grep -c '"msg":"peer TLS session established"' "$TMP/$victim.log" || true)
kill9 "$victim"
log "killed $victim"
others=()
for n in infra1 infra2 infra3; do [ "$n" = "$victim" ] || others+=("$n"); done
expect_out "OK" --endpoints="$(endpoints "${others[@]}")" put after-kill yes
start "$victim"
wait_ready 30 infra1 infra2 infra3
expect_out "OK" --endpoints="${CLIENT[$victim]}" put after-restart yes
# value_on NAME KEY VALUE: NAME's own (serializable) read of KEY is VALUE.
value_on() {
	ctl --endpoints="${CLIENT[$1]}" get "$2" --consistency=s --print-value-only
	[ "$OUT" = "$3" ]
}
wait_until "$victim serves the writes made while it was down" 15 value_on "$victim" after-kill yes
expect_out "yes" --endpoints="${CLIENT[$victim]}" get after-kill --print-value-only
if [ "$KIND" = quorumd ]; then
	established_after=$(grep -c '"msg":"peer TLS session established"' "$TMP/$victim.log")
	[ "$established_after" -ge $((established_before + 2)) ] ||
		fail "$victim logged $established_before sessions before its restart and $established_after after"
	for n in "${others[@]}"; do
		log_has "$n" '"msg":"peer TLS session closed"' || fail "$n did not log the end of its session with $victim"
	done
fi

# ---- member add: a fourth member joins over peer TLS (it asks the others for the member list first) ----
add_tls_member infra4 27440
PEER[infra4]=${PEER[infra4]/http:/https:}
ctl_retry_unhealthy 15 --endpoints="$all" member add infra4 --peer-urls="${PEER[infra4]}"
# shellcheck disable=SC2046
start_member infra4 "$(initial_cluster infra1 infra2 infra3 infra4)" existing $(tls_flags infra1) $(peer_flags infra3)
wait_ready 30 infra1 infra2 infra3 infra4
expect_out "OK" --endpoints="${CLIENT[infra4]}" put after-add yes
expect_out "yes" --endpoints="${CLIENT[infra1]}" get after-add --print-value-only
wait_until "infra4 serves the writes made before it joined" 15 value_on infra4 after-kill yes

for n in infra1 infra2 infra3 infra4; do stop_member "$n"; done

# ---- --peer-auto-tls: self-signed peer certificates made at start, not verified ----
add_tls_member auto1 27450
add_tls_member auto2 27460
add_tls_member auto3 27470
for n in auto1 auto2 auto3; do PEER[$n]=${PEER[$n]/http:/https:}; done
ic=$(initial_cluster auto1 auto2 auto3)
for n in auto1 auto2 auto3; do
	# shellcheck disable=SC2046
	start_member "$n" "$ic" new $(tls_flags infra1) --peer-auto-tls
done
wait_ready 30 auto1 auto2 auto3
expect_out "OK" --endpoints="$(endpoints auto1 auto2 auto3)" put auto tls
expect_out "tls" --endpoints="${CLIENT[auto3]}" get auto --print-value-only
for n in auto1 auto2 auto3; do
	cert="$(data_dir "$n")/fixtures/peer/cert.pem"
	[ -s "$cert" ] && [ -s "$(data_dir "$n")/fixtures/peer/key.pem" ] || fail "$n made no peer certificate in fixtures/peer"
	log_line_has "$n" '"msg":"created cert file"' "fixtures/peer/cert.pem" || fail "$n did not log its new peer certificate"
	san=$(openssl x509 -in "$cert" -noout -ext subjectAltName 2>/dev/null | tail -n 1 | tr -d ' ')
	assert_eq "$n's self-signed peer certificate's SAN" "IPAddress:127.0.0.1" "$san"
done
for n in auto1 auto2 auto3; do stop_member "$n"; done
assert_no_sanitizer_reports
log "ok"
