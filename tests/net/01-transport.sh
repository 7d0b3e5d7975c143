#!/usr/bin/env bash
# tests/net/01-transport.sh PATH/net-peer: the dpdk transport between two processes on a veth segment.
# - kernel ping reaches a dpdk member (ARP and ICMP echo answered by its own stack);
# - dpdk <-> dpdk: messages of 64 B .. 1 MiB (790 frames) echoed intact;
# - udp (kernel) <-> dpdk on the same segment: the same frames, so the same messages;
# - start-up errors say what is wrong (no port, unusable listen address, no hugepages).
source "$(dirname "$0")/peer_test.sh"

net_segment 2

# echo_member I PEER_ID PEER_ADDRESS: a dpdk echo peer on qvI in the background.
echo_member() {
	in_seg "$NET_PEER" echo --dataplane dpdk --dpdk-args "$(seg_dpdk_args "$1")" --listen "$(member_ip "$1"):2380" \
		--id "$1" --peer "$2=$3" --seconds 90 >>"$TMP/echo$1.log" 2>&1 &
	ECHO_PID=$!
	track_pid "$!"
}

log "dpdk member 1 on qv1 (af_packet), answering ping"
echo_member 1 2 "$(member_ip 2):2380"
# EAL start-up takes a moment: wait until the member answers ARP and ICMP.
for ((i = 0; i < 100; i++)); do
	in_seg ping -c 1 -W 1 "$(member_ip 1)" >/dev/null 2>&1 && break
	sleep 0.2
done
in_seg ping -c 3 -i 0.2 -W 1 "$(member_ip 1)" >"$TMP/ping.log" 2>&1 || fail "ping 10.77.0.1: $(cat "$TMP/ping.log")"
log "ping: $(grep -o '[0-9]* received' "$TMP/ping.log")"

log "dpdk member 2 on qv2 pings member 1 with messages of 64 B .. 1 MiB"
in_seg timeout 120 "$NET_PEER" ping --dataplane dpdk --dpdk-args "$(seg_dpdk_args 2)" --listen "$(member_ip 2):2380" \
	--id 2 --peer "1=$(member_ip 1):2380" --count 10 >"$TMP/dpdk-dpdk.out" 2>>"$TMP/ping2.log" \
	|| fail "dpdk -> dpdk echo failed"
cat "$TMP/dpdk-dpdk.out" >&2
wait "$ECHO_PID" || fail "dpdk echo member exited with an error"

log "udp (kernel, 10.77.0.254 on the bridge) pings dpdk member 1"
echo_member 1 3 "10.77.0.254:2390"
in_seg timeout 120 "$NET_PEER" ping --dataplane udp --listen 10.77.0.254:2390 --id 3 --peer "1=$(member_ip 1):2380" \
	--count 10 >"$TMP/udp-dpdk.out" 2>>"$TMP/ping3.log" || fail "udp -> dpdk echo failed"
cat "$TMP/udp-dpdk.out" >&2
wait "$ECHO_PID" || fail "dpdk echo member exited with an error"
grep -q 'drop_bad_crc\|drop_malformed' "$TMP/echo1.log" && fail "frames dropped as bad: $(grep counters "$TMP/echo1.log")"

log "start-up errors"
out=$(in_seg "$NET_PEER" echo --dataplane dpdk --dpdk-args "--no-pci --no-huge -m 64 --no-shconf --file-prefix=$SEG-x --no-telemetry --log-level=lib.eal:error" \
	--listen "$(member_ip 1):2380" --id 1 2>&1) && fail "a dpdk transport without a port started"
case "$out" in *"dpdk: no Ethernet port"*) ;; *) fail "no port: $out" ;; esac
out=$(in_seg "$NET_PEER" echo --dataplane dpdk --dpdk-args "$(seg_dpdk_args 1)" --listen 0.0.0.0:2380 --id 1 2>&1) \
	&& fail "a dpdk transport on 0.0.0.0 started"
case "$out" in *"listen address 0.0.0.0 is not usable"*) ;; *) fail "wildcard: $out" ;; esac
if [ "$(awk '/HugePages_Free/ { print $2 }' /proc/meminfo)" = 0 ]; then
	out=$(in_seg "$NET_PEER" echo --dataplane dpdk --dpdk-args "--no-pci --vdev=net_af_packet0,iface=qv1" \
		--listen "$(member_ip 1):2380" --id 1 2>&1) && fail "a dpdk transport without hugepages started"
	case "$out" in *"no hugepages"*"--no-huge"*) ;; *) fail "no hugepages: $out" ;; esac
fi
