#!/usr/bin/env bash
# tests/tls/13-crl-chain.sh: a CRL revoking an intermediate CA refuses what that CA signed, client and peer side (the
# whole chain is checked, as etcd checks the serial of every certificate the other side sends). The PKI: an
# intermediate CA under the test CA, a client and a peer certificate it signed (each file holding the leaf and then
# the intermediate), and ca-intermediate.crl, the test CA's CRL listing the intermediate only. (1) A member with
# --client-crl-file ca-intermediate.crl: a client certificate signed by the test CA itself is served; the one
# signed by the intermediate is refused with etcd's "rejected connection" line naming the intermediate's serial;
# with the CA's other CRL (which does not list the intermediate) the same certificate is served. (2) Three
# peer-TLS members with --peer-crl-file ca-intermediate.crl, the third's certificate signed by the intermediate:
# the refusal is logged with the intermediate's serial; quorumd: it is not admitted (the others commit, it gets
# nothing), and joins once restarted with a certificate of the test CA. etcd checks its CRL only where it listens
# and lets the member in through the others' connections (tests/tls/09), so there only the refusal is pinned.
# Pinned against etcd 3.4.23. Ports 28000-28099.
source "$(dirname "$(realpath "$0")")/lib.sh"

serial=$(openssl x509 -in "$PKI/intermediate-ca.pem" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f')
[ -n "$serial" ] || fail "no serial read from intermediate-ca.pem"
REASON="transport: certificate serial $serial revoked"

# ---- (1) client certificates ----
# with_cert NAME CERT ARGS...: etcdctl ARGS on NAME with CERT as the client certificate; sets OUT, ERR, RC.
with_cert() {
	local name=$1 cert=$2
	shift 2
	ctl_plain --endpoints="${CLIENT[$name]}" --dial-timeout=2s --command-timeout=4s --cacert "$PKI/ca.pem" \
		--cert "$PKI/$cert.pem" --key "$PKI/$cert-key.pem" "$@"
}
healthy_with() { with_cert "$1" "$2" endpoint health; [ "$RC" = 0 ]; }
expect_served() { # NAME CERT: a put and a get with CERT succeed
	with_cert "$1" "$2" put "key-$2" "$2"
	assert_eq "put on $1 with $2.pem (stderr: $ERR)" "OK" "$OUT"
	with_cert "$1" "$2" get "key-$2" --print-value-only
	assert_eq "get on $1 with $2.pem (stderr: $ERR)" "$2" "$OUT"
}
solo() { # NAME PEER_PORT FLAGS...: a one-member cluster with client TLS and FLAGS, healthy to the trusted client
	local name=$1 port=$2
	shift 2
	add_tls_member "$name" "$port"
	# shellcheck disable=SC2046
	start_member "$name" "$(initial_cluster "$name")" new $(tls_flags infra1) "$@"
	wait_until "endpoint health of $name" 30 healthy_with "$name" client
}

solo chain 28010 --client-crl-file "$PKI/ca-intermediate.crl"
expect_served chain client
expect_refused "with a certificate of the revoked intermediate CA" --endpoints="${CLIENT[chain]}" \
	--cacert "$PKI/ca.pem" --cert "$PKI/intermediate-client.pem" --key "$PKI/intermediate-client-key.pem"
wait_until "chain logs the refusal naming the intermediate's serial" 5 log_line_has chain \
	'"msg":"rejected connection","remote-addr":"127.0.0.1:' \
	"\"server-name\":\"\",\"ip-addresses\":[],\"dns-names\":[],\"error\":\"$REASON\""
stop_all_and_check chain

solo leaf-crl 28020 --client-crl-file "$PKI/ca.crl"
expect_served leaf-crl intermediate-client
stop_all_and_check leaf-crl

# ---- (2) peer certificates ----
add_tls_member p1 28030
add_tls_member p2 28040
add_tls_member p3 28050
for n in p1 p2 p3; do PEER[$n]=${PEER[$n]/http:/https:}; done
IC=$(initial_cluster p1 p2 p3)
start() { # NAME CERT
	# shellcheck disable=SC2046
	start_member "$1" "$IC" new $(tls_flags infra1) --peer-cert-file "$PKI/$2.pem" --peer-key-file "$PKI/$2-key.pem" \
		--peer-trusted-ca-file "$PKI/ca.pem" --peer-client-cert-auth --peer-crl-file "$PKI/ca-intermediate.crl"
}
refused_logged() { # NAME...: one of them logged a refused peer handshake naming $REASON
	local n
	for n in "$@"; do
		grep -qE '"msg":"(rejected connection|peer TLS handshake failed)".*"error":"[^"]*'"$REASON" "$TMP/$n.log" &&
			return 0
	done
	return 1
}
value_on() { ctl --endpoints="${CLIENT[$1]}" --dial-timeout=1s --command-timeout=2s get "$2" --consistency=s --print-value-only; }
start p1 peer1
start p2 peer2
start p3 intermediate-peer
if [ "$KIND" = etcd ]; then
	wait_until "a refusal of p3's certificate logged ($REASON)" 30 refused_logged p1 p2
else
	wait_ready 30 p1 p2
	expect_out "OK" --endpoints="$(endpoints p1 p2)" put kept-out p3
	wait_until "a refusal of p3's certificate logged ($REASON)" 15 refused_logged p1 p2 p3
	# For three election timeouts after the refusal the outsider has no leader and no data.
	for i in $(seq 1 15); do
		value_on p3 kept-out
		assert_eq "p3's own read of the key written without it (look $i)" "" "$OUT"
		sleep 0.2
	done
	all_healthy p3 && fail "p3 is healthy although its certificate's issuer is revoked"
	stop_member p3
	start p3 peer3
	wait_until "p3, restarted with a certificate of the test CA, has the write made without it" 30 eval \
		'value_on p3 kept-out; [ "$OUT" = p3 ]'
fi
stop_all_and_check p1 p2 p3
log "ok"
