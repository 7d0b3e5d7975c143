#!/usr/bin/env bash
# tests/tls/09-peer-crl-hostname.sh: --peer-crl-file and --peer-cert-allowed-hostname keep a member out of a
# peer-TLS cluster (--peer-client-cert-auth, the test CA) and the other two commit without it. (1) Every member
# has the CA's CRL; the third one's certificate is listed: it is not admitted, a side logs etcd's
# "transport: certificate serial HEX revoked" (quorumd: "rejected connection" or "peer TLS handshake failed"),
# it never learns a key (etcd, which checks its CRL only where it listens, lets the others' connections to it
# through and so lets the member in: there only the refusal's words are checked); restarted with a good certificate, it joins and catches up. (2) --peer-cert-allowed-hostname
# localhost: a member whose certificate's only DNS SAN is stranger.example is not admitted ("client certificate
# authentication failed"), then joins with a good one. (3) --peer-cert-allowed-cn with
# --peer-cert-allowed-hostname stops the member with etcd's error. Ports 27800-27899.
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
	start_member "$name" "$IC" new $(tls_flags infra1) $(peer_flags "$@")
}
# refused_logged NAME...: one of them logged a refused peer handshake naming why ($REASON).
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
}
# expect_admitted_after_restart OUTSIDER CERT [extra peer flags...]: restarted with CERT, it joins and catches up.
expect_admitted_after_restart() {
	local outsider=$1
	stop_member "$outsider"
	start "$@"
	wait_until "$outsider has the write made without it" 30 eval 'value_on '"$outsider"' kept-out; [ "$OUT" = '"$outsider"' ]'
}

# ---- (1) --peer-crl-file: a revoked member certificate ----
add_tls_member r1 27810
add_tls_member r2 27820
add_tls_member r3 27830
for n in r1 r2 r3; do PEER[$n]=${PEER[$n]/http:/https:}; done
IC=$(initial_cluster r1 r2 r3)
start r1 peer1 --peer-crl-file "$PKI/ca.crl"
start r2 peer2 --peer-crl-file "$PKI/ca.crl"
start r3 revoked-peer --peer-crl-file "$PKI/ca.crl"
serial=$(openssl x509 -in "$PKI/revoked-peer.pem" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f')
[ -n "$serial" ] || fail "no serial read from revoked-peer.pem"
REASON="transport: certificate serial $serial revoked"
wait_until "r1's \"starting with peer TLS\" names the CRL file" 10 \
	log_line_has r1 '"msg":"starting with peer TLS"' "crl-file = $PKI/ca.crl\""
if [ "$KIND" = etcd ]; then
	# etcd checks its CRL only where it listens: the revoked member's dials are refused with this line, but the
	# others' dials to it are not (a dialling client does not look at the CRL), and rafthttp carries messages
	# both ways over those (streams and pipelines), so the member takes part anyway. quorumd has one connection
	# per pair and checks the CRL at both ends: only the refusal's words are etcd's to pin.
	wait_until "a refusal of r3's certificate logged ($REASON)" 30 refused_logged r1 r2
else
	expect_not_admitted r1 r2 r3
	expect_admitted_after_restart r3 peer3 --peer-crl-file "$PKI/ca.crl"
fi
for n in r1 r2 r3; do stop_member "$n"; done

# ---- (2) --peer-cert-allowed-hostname ----
add_tls_member h1 27840
add_tls_member h2 27850
add_tls_member h3 27860
for n in h1 h2 h3; do PEER[$n]=${PEER[$n]/http:/https:}; done
IC=$(initial_cluster h1 h2 h3)
start h1 peer1 --peer-cert-allowed-hostname localhost
start h2 peer2 --peer-cert-allowed-hostname localhost
start h3 stranger-peer --peer-cert-allowed-hostname localhost
REASON="client certificate authentication failed"
expect_not_admitted h1 h2 h3
expect_admitted_after_restart h3 peer3 --peer-cert-allowed-hostname localhost
for n in h1 h2 h3; do stop_member "$n"; done

# ---- (3) a CN and a hostname at once ----
add_tls_member both 27870
PEER[both]=${PEER[both]/http:/https:}
IC=$(initial_cluster both)
start both peer1 --peer-cert-allowed-cn quorumd-peer --peer-cert-allowed-hostname localhost
wait_exit both 30
assert_eq "exit code with --peer-cert-allowed-cn and --peer-cert-allowed-hostname" 1 "$EXIT_CODE"
log_line_has both \
	'"error":"AllowedCN and AllowedHostname are mutually exclusive (cn=\"quorumd-peer\", hostname=\"localhost\")"' ||
	fail "both's log has no \"mutually exclusive\" error"
assert_no_sanitizer_reports
log "ok"
