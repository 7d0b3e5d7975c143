#!/usr/bin/env bash
# tests/net/07-peer-tls-dpdk.sh PATH/quorumd PATH/quorumctl: peer TLS (sealed frames, dataplane/peer_tls.h)
# with a --dataplane=dpdk member. Member 1 on dpdk (af_packet port on qv1, 10.77.0.1 in its own stack),
# members 2 and 3 on udp, each in a namespace of its own, all with https:// peer URLs and certificates for
# their 10.77.0.I addresses from a CA made here. The TLS handshakes go over the kernel's TCP, so the dpdk
# member's address is also given to the kernel, on qv1 (/32, the bridge keeps answering ARP only for its
# own address: arp_ignore=1; and the kernel drops what arrives for DPDK's UDP port) — the set-up of a NIC whose kernel driver keeps the interface (a bifurcated
# driver, or af_packet here) while DPDK takes the UDP frames. They elect, commit through each member, and
# every frame the dpdk member sends or receives is sealed: its sessions are logged, its counters show
# frames in and out with nothing dropped as bad, replayed or session-less once ready. An outsider on the
# segment (10.77.0.4) then sends forged plain frames (forge-peer-frame: valid CRC, a vote with a term 1000
# higher) at each member — dropped as drop_bad_seal, the term unchanged — and replays sealed frames captured
# (tcpdump on the bridge port of member 2) on their way to member 2 — each one dropped as drop_replayed.
# A stopped udp member handshakes again when it is back.
FORGE_ARGUMENT=${3:-}   # dpdk_cluster.sh keeps only the first two arguments
source "$(dirname "$0")/dpdk_cluster.sh"
FORGE=$(realpath "${NET_FORGE:-$FORGE_ARGUMENT}")

net_segment 4
for i in 2 3 4; do net_isolate "$i"; done
in_seg sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.qbr.arp_ignore=1 \
	net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.qv1.rp_filter=0
in_seg ip addr add "$(member_ip 1)/32" dev qv1
# The kernel sees the frames DPDK takes too (af_packet copies them); without a socket on the port it would
# answer each with ICMP port unreachable, which a connected sender's next send reports as refused.
in_seg nft -f - <<'NFT'
table inet peer_tls_dpdk {
	chain input {
		type filter hook input priority 0;
		iifname "qv1" udp dport 2380 drop
	}
}
NFT

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

# ---- an outsider's forged and replayed frames ----
cid=$(cluster_id m1)
[ -n "$cid" ] || fail "no cluster id in m1's log"
term=$(status_field m1 7)
declare -A BAD_BEFORE=()
for i in 1 2 3; do BAD_BEFORE[m$i]=$(counter "m$i" drop_bad_seal); done
for i in 1 2 3; do
	target=m$i
	other=m$((i % 3 + 1))
	sent=$(in_member 4 "$FORGE" --host "$(member_ip "$i")" --port 2380 --cluster "$cid" --from "$(member_id "$other")" \
		--to "$(member_id "$target")" --repeat 3 --mac random vote $((term + 1000)) $((term + 1000)) 1000000)
	wait_until "$target counts the $sent forged frames as drop_bad_seal" 10 \
		eval '[ $(( $(counter '"$target"' drop_bad_seal) - ${BAD_BEFORE['"$target"']} )) -ge '"$sent"' ]'
done
for i in 1 2 3; do
	assert_eq "m$i's term after forged votes" "$term" "$(status_field "m$i" 7)"
done
log "forged plain frames: dropped and counted (drop_bad_seal), term $term unchanged"

# Sealed frames to member 2, captured on its bridge port while writes go through (everything: picked below),
# then sent again. --immediate-mode: otherwise tcpdump's ring hands packets over in blocks of up to a second,
# and the capture, this short, would end before its first block.
: >"$TMP/tcpdump.err"
in_seg tcpdump -i qb2 --immediate-mode -nn -U -s 0 -w "$TMP/to-m2.pcap" \
	2>"$TMP/tcpdump.err" &
TCPDUMP_PID=$!
track_pid "$TCPDUMP_PID"
wait_until "tcpdump listening on qb2" 10 grep -q "listening on qb2" "$TMP/tcpdump.err"
for k in 1 2 3 4 5; do put_get m1 "captured-$k" v; done
stop_pids 5 "$TCPDUMP_PID" || fail "tcpdump did not stop"
replayed_before=$(counter m2 drop_replayed)
# replay: the UDP payloads of the capture (pcap, Ethernet, IPv4), sent again from the outsider.
replayed=$(in_member 4 "$PYTHON" - "$TMP/to-m2.pcap" "$(member_ip 2)" <<'PY'
import socket, struct, sys
data = open(sys.argv[1], "rb").read()
at, frames = 24, []
while at + 16 <= len(data):
    captured = struct.unpack_from("<I", data, at + 8)[0]
    packet = data[at + 16:at + 16 + captured]
    at += 16 + captured
    if len(packet) < 14 + 20 + 8 or packet[12:14] != b"\x08\x00":
        continue
    ihl = (packet[14] & 0x0f) * 4
    if packet[14 + 9] != 17 or socket.inet_ntoa(packet[14 + 16:14 + 20]) != sys.argv[2]:
        continue                                     # UDP to member 2 only
    if struct.unpack_from(">H", packet, 14 + ihl + 2)[0] != 2380:
        continue
    payload = packet[14 + ihl + 8:]
    if payload[:4] == b"QRDF" and payload[5] == 1:   # sealed frames only
        frames.append(payload)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for frame in frames:
    s.sendto(frame, (sys.argv[2], 2380))
print(len(frames))
PY
)
[ "$replayed" -gt 5 ] || fail "only $replayed sealed frames captured on their way to m2"
wait_until "m2 counts the $replayed replayed frames as drop_replayed" 10 \
	eval '[ $(( $(counter m2 drop_replayed) - replayed_before )) -ge '"$replayed"' ]'
assert_eq "m2's drop_replayed after $replayed replays" "$((replayed_before + replayed))" "$(counter m2 drop_replayed)"
log "$replayed captured sealed frames sent again: each dropped as replayed"

stop_member m3
wait_leader 20 m1 m2
put_get m1 without-m3 yes
start_udp m3 3 "$ic" $(tls m3)
wait_ready 60 m1 m2 m3
wait_until "m3 applied what was written while it was down" 20 applied_converged m1 m2 m3
ctl_ok m3 get without-m3 --consistency=s
assert_eq "get without-m3 on m3" $'without-m3\nyes' "$OUT"
log "m3 restarted and handshook again: ok"
