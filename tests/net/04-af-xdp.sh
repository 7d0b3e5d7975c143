#!/usr/bin/env bash
# tests/net/04-af-xdp.sh PATH/net-peer: the dpdk transport on an af_xdp vdev (XDP in copy mode on a veth)
# instead of af_packet: kernel ping reaches the member, and a udp member's messages of 64 B .. 64 KiB
# come back intact. Skipped (exit 77, saying why) when the kernel refuses AF_XDP here.
#
# Limits seen on this kernel (6.x, veth): libxdp's dispatcher program fails to load (EPERM) and libxdp
# falls back to a single program, which works; with an XDP program attached, veth receives through a
# 256-entry ring, so a burst of more frames than that (a 1 MiB message is 790 frames) loses its tail
# there and Raft resends; hence no 1 MiB echo in this test (af_packet passes it: 01-transport).
source "$(dirname "$0")/peer_test.sh"

if ! ls /usr/lib/x86_64-linux-gnu/dpdk/*/librte_net_af_xdp.so >/dev/null 2>&1; then
	echo "SKIP: DPDK's af_xdp PMD is not installed" >&2
	exit 77
fi
# A sanitizer build: libxdp's own small leaks are not ours (lsan.supp).
export LSAN_OPTIONS="suppressions=$HERE/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
net_segment 1
args="$(seg_eal_args 1) --vdev=net_af_xdp0,iface=qv1,start_queue=0,queue_count=1"
# libxdp wants bpffs; `ip netns exec` gives the command a mount namespace of its own, so this mount
# stays private to the member.
in_seg sh -c 'mount -t bpf bpf /sys/fs/bpf 2>/dev/null; exec "$@"' sh "$NET_PEER" echo --dataplane dpdk \
	--dpdk-args "$args" --listen "$(member_ip 1):2380" --id 1 --peer 2=10.77.0.254:2390 --seconds 60 \
	>"$TMP/echo.log" 2>&1 &
ECHO_PID=$!
track_pid "$!"
for ((i = 0; i < 100; i++)); do
	in_seg ping -c 1 -W 1 "$(member_ip 1)" >/dev/null 2>&1 && break
	if ! pid_alive "$ECHO_PID"; then
		echo "SKIP: the af_xdp vdev does not start here: $(grep -i 'xdp\|dpdk:' "$TMP/echo.log" | tail -n 3 | tr '\n' ' ')" >&2
		exit 77
	fi
	sleep 0.2
done
in_seg ping -c 3 -i 0.2 -W 1 "$(member_ip 1)" >"$TMP/ping.log" 2>&1 || fail "ping over af_xdp: $(cat "$TMP/ping.log")"
log "ping over af_xdp: $(grep -o '[0-9]* received' "$TMP/ping.log")"
in_seg timeout 60 "$NET_PEER" ping --dataplane udp --listen 10.77.0.254:2390 --id 2 --peer "1=$(member_ip 1):2380" \
	--count 10 --sizes 64,1300,4096,65536 >"$TMP/udp-xdp.out" 2>>"$TMP/ping2.log" || fail "udp -> dpdk (af_xdp) echo failed"
cat "$TMP/udp-xdp.out" >&2
wait "$ECHO_PID" || fail "the af_xdp echo member exited with an error"
