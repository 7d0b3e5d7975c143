#!/usr/bin/env bash
# tests/tls/08-crl-hostname.sh: --client-crl-file and --client-cert-allowed-hostname, each on a one-member cluster
# with https:// client URLs and --client-cert-auth, driven by etcdctl. (1) The test CA's CRL: the trusted client is
# served, the revoked one is refused with etcd's log line ("transport: certificate serial HEX revoked", with the
# certificate's names); "crl-file = PATH" in "starting with client TLS". (2) A CRL of another CA refuses nothing
# (etcd reads only the serials it lists). (3) --client-cert-allowed-hostname client.example.com: a certificate with
# that DNS SAN is served; one without SANs, and one whose CN (not a SAN) is that name, are refused with "client
# certificate authentication failed". Pinned against etcd 3.4.23 (run the script with etcd). Ports 27700-27739.
source "$(dirname "$(realpath "$0")")/lib.sh"

# solo NAME PEER_PORT CERT FLAGS...: NAME, a one-member cluster with an https:// client URL, started with the client
# TLS flags and FLAGS, healthy to a client with CERT.
solo() {
	local name=$1 port=$2 cert=$3
	shift 3
	add_tls_member "$name" "$port"
	# shellcheck disable=SC2046
	start_member "$name" "$(initial_cluster "$name")" new $(tls_flags infra1) "$@"
	wait_until "endpoint health of $name with $cert.pem" 30 healthy_with "$name" "$cert"
}
healthy_with() { with_cert "$1" "$2" endpoint health; [ "$RC" = 0 ]; }
# with_cert NAME CERT ARGS...: etcdctl ARGS on NAME with CERT as the client certificate; sets OUT, ERR, RC.
with_cert() {
	local name=$1 cert=$2
	shift 2
	ctl_plain --endpoints="${CLIENT[$name]}" --dial-timeout=2s --command-timeout=4s --cacert "$PKI/ca.pem" \
		--cert "$PKI/$cert.pem" --key "$PKI/$cert-key.pem" "$@"
}
# expect_served NAME CERT: a put and a get with CERT succeed.
expect_served() {
	with_cert "$1" "$2" put "key-$2" "$2"
	assert_eq "put on $1 with $2.pem (stderr: $ERR)" "OK" "$OUT"
	with_cert "$1" "$2" get "key-$2" --print-value-only
	assert_eq "get on $1 with $2.pem (stderr: $ERR)" "$2" "$OUT"
}
# serial_hex CERT: the certificate's serial as Go's %x prints its bytes.
serial_hex() { openssl x509 -in "$PKI/$1.pem" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f'; }

# ---- (1) the CA's own CRL ----
solo crl 27710 client --client-crl-file "$PKI/ca.crl"
log_line_has crl '"msg":"starting with client TLS"' \
	"\"tls-info\":\"cert = $PKI/infra1.pem, key = $PKI/infra1-key.pem, trusted-ca = $PKI/ca.pem, client-cert-auth = true, crl-file = $PKI/ca.crl\"" ||
	fail "crl's log has no \"starting with client TLS\" naming the CRL file"
expect_served crl client
expect_refused "with a revoked certificate" --endpoints="${CLIENT[crl]}" --cacert "$PKI/ca.pem" \
	--cert "$PKI/revoked-client.pem" --key "$PKI/revoked-client-key.pem"
serial=$(serial_hex revoked-client)
[ -n "$serial" ] || fail "no serial read from revoked-client.pem"
wait_until "crl logs the revoked certificate's rejection" 5 log_line_has crl \
	'"msg":"rejected connection","remote-addr":"127.0.0.1:' \
	"\"server-name\":\"\",\"ip-addresses\":[],\"dns-names\":[],\"error\":\"transport: certificate serial $serial revoked\""
# The CRL does not stand for the CA: a certificate it does not list, with names, is still served.
expect_served crl host-client
stop_all_and_check crl

# ---- (2) a CRL of another CA: nothing it lists is ours ----
solo other-crl 27720 client --client-crl-file "$PKI/other-ca.crl"
expect_served other-crl client
expect_served other-crl revoked-client
stop_all_and_check other-crl

# ---- (3) --client-cert-allowed-hostname ----
solo hostname 27730 host-client --client-cert-allowed-hostname client.example.com
expect_served hostname host-client
expect_refused "with a certificate without SANs (allowed hostname)" --endpoints="${CLIENT[hostname]}" \
	--cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client-key.pem"
expect_rejection_logged hostname "client certificate authentication failed"
log_line_has hostname '"ip-addresses":[],"dns-names":[],"error":"client certificate authentication failed"' ||
	fail "hostname's rejection does not name the certificate's (empty) SANs"
expect_refused "with the hostname only as CN" --endpoints="${CLIENT[hostname]}" \
	--cacert "$PKI/ca.pem" --cert "$PKI/cn-host-client.pem" --key "$PKI/cn-host-client-key.pem"
# Still served after the refusals.
with_cert hostname host-client get key-host-client --print-value-only
assert_eq "get on hostname after the refusals (stderr: $ERR)" "host-client" "$OUT"
stop_all_and_check hostname
log "ok"
