#!/usr/bin/env bash
# tests/net/07-peer-tls-dpdk.sh PATH/quorumd PATH/quorumctl: peer TLS (sealed frames, dataplane/peer_tls.h)
# with a --dataplane=dpdk member. Member 1 on dpdk (af_packet port on qv1, 10.77.0.1 in its own stack),
# members 2 and 3 on udp, each in a namespace of its own, all with https:// peer URLs and certificates for
# their 10.77.0.I addresses from a CA made here. The TLS handshakes go over the kernel's TCP, so the dpdk
# member's address is also given to the kernel, on qv1 (/32, the bridge keeps answering ARP only for its
# own address: arp_ignore=1) — the set-up of a NIC whose kernel driver keeps the interface (a bifurcated
# driver, or af_packet here) while DPDK takes the UDP frames. They elect, commit through each member, and
# every frame the dpdk member sends or receives is sealed: its sessions are logged, its counters show
# frames in and out with nothing dropped as bad, replayed or session-less once ready; a stopped udp member
# handshakes again when it is back.
source "$(dirname "$0")/dpdk_cluster.sh"

net_segment 3
for i in 2 3; do net_isolate "$i"; done
in_seg sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.qbr.arp_ignore=1 \
	net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.qv1.rp_filter=0
in_seg ip addr add "$(member_ip 1)/32" dev qv1

# A CA and one certificate per member for its 10.77.0.I (serverAuth and clientAuth).
PKI=$TMP/pki
mkdir -p "$PKI"
(
	cd "$PKI"
	export OPENSSL_CONF=/dev/null
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca-key.pem -out ca.pem \
		-days 2 -subj "/CN=net test CA" 2>/dev/null
	for i in 1 2 3; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "m$i-key.pem" -out "m$i.csr" \
			-subj "/CN=m$i" 2>/dev/null
		printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$(member_ip "$i")" >"m$i.ext"
		openssl x509 -req -in "m$i.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile "m$i.ext" \
			-out "m$i.pem" 2>/dev/null
	done
) || fail "could not make the test PKI"

for i in 1 2 3; do
	add_dpdk_member "m$i" "$i"
	PEER[m$i]="https://$(member_ip "$i"):2380"
done
ic=$(initial_cluster m1 m2 m3)
tls() {
	echo "--peer-cert-file $PKI/$1.pem --peer-key-file $PKI/$1-key.pem --peer-trusted-ca-file $PKI/ca.pem"
	echo "--peer-client-cert-auth"
}
# shellcheck disable=SC2046
start_dpdk m1 "$ic" new $(tls m1)
# shellcheck disable=SC2046
start_udp m2 2 "$ic" $(tls m2)
# shellcheck disable=SC2046
start_udp m3 3 "$ic" $(tls m3)
wait_ready 60 m1 m2 m3
log "dpdk m1, udp m2 and m3 ready with peer TLS; leader $LEADER"
for n in m1 m2 m3; do put_get "$n" "k-$n" "via-$n"; done
count=$(grep -c '"msg":"peer TLS session established"' "$TMP/m1.log" || true)
[ "$count" -ge 2 ] || fail "m1 (dpdk) logged $count peer TLS sessions, expected one per peer"
log_has m1 '"msg":"peer frames are sealed with keys from TLS handshakes"' || fail "m1 does not seal"
[ "$(counter m1 sessions_installed)" -ge 2 ] || fail "m1 installed $(counter m1 sessions_installed) sessions"
[ "$(counter m1 messages_in)" -gt 0 ] && [ "$(counter m1 packets_out)" -gt 0 ] || fail "m1 moved no frames"
for c in drop_bad_seal drop_replayed; do
	assert_eq "m1's $c" 0 "$(counter m1 "$c")"
done

stop_member m3
wait_leader 20 m1 m2
put_get m1 without-m3 yes
start_udp m3 3 "$ic" $(tls m3)
wait_ready 60 m1 m2 m3
wait_until "m3 applied what was written while it was down" 20 applied_converged m1 m2 m3
ctl_ok m3 get without-m3 --consistency=s
assert_eq "get without-m3 on m3" $'without-m3\nyes' "$OUT"
log "m3 restarted and handshook again: ok"
