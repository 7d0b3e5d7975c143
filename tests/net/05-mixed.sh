#!/usr/bin/env bash
# tests/net/05-mixed.sh PATH/quorumd PATH/quorumctl: one cluster of two --dataplane=dpdk members and one
# --dataplane=udp member (kernel sockets, in a namespace of its own) on the same L2 segment: they elect,
# commit through each member, and with either dpdk member stopped the other and the udp member still
# commit (so frames go both ways between the two transports).
source "$(dirname "$0")/dpdk_cluster.sh"

net_segment 3
net_isolate 3
add_dpdk_member m1 1
add_dpdk_member m2 2
add_dpdk_member m3 3
ic=$(initial_cluster m1 m2 m3)
start_dpdk m1 "$ic" new
start_dpdk m2 "$ic" new
start_udp m3 3 "$ic"
wait_ready 60 m1 m2 m3
log "dpdk m1, m2 and udp m3 ready; leader $LEADER"
for n in m1 m2 m3; do put_get "$n" "k-$n" "via-$n"; done
for stopped in m1 m2; do
	stop_member "$stopped"
	up=(m3)
	[ "$stopped" = m1 ] && up+=(m2) || up+=(m1)
	wait_leader 20 "${up[@]}"
	for n in "${up[@]}"; do put_get "$n" "without-$stopped-$n" v; done
	log "$stopped stopped: ${up[*]} (dpdk and udp) commit, leader $LEADER"
	start_dpdk "$stopped" "$ic" new
	wait_leader 30 m1 m2 m3
	wait_until "every member applied the leader's index" 20 applied_converged m1 m2 m3
done
for n in m1 m2 m3; do
	ctl_ok "$n" get without-m1-m3 --consistency=s
	assert_eq "get without-m1-m3 on $n" $'without-m1-m3\nv' "$OUT"
done
