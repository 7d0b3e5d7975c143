#!/usr/bin/env bash
# tests/net/03-faults.sh PATH/quorumd PATH/quorumctl: three --dataplane=dpdk members under wire faults.
# - A follower's veth (its DPDK port's interface) set down: the other two keep committing; set up again:
#   the follower catches up, by a snapshot streamed over the dpdk transport (--snapshot-count 10
#   --snapshot-catchup-entries 2: the 20 puts it missed are compacted out of the leader's log).
# - 5% random loss on every veth (a bridge-family nftables rule: this kernel has no netem qdisc, so
#   `tc qdisc ... netem loss 5% delay 2ms` is used only where it exists): writes go on through two
#   members concurrently; afterwards every acknowledged write is on every member.
source "$(dirname "$0")/dpdk_cluster.sh"

net_segment 3
for i in 1 2 3; do add_dpdk_member "m$i" "$i"; done
all=(m1 m2 m3)
ic=$(initial_cluster "${all[@]}")
for n in "${all[@]}"; do start_dpdk "$n" "$ic" new --snapshot-count 10 --snapshot-catchup-entries 2; done
wait_ready 60 "${all[@]}"
put_get "$LEADER" k0 v0

# --- link down on a follower ---
follower=m1
[ "$LEADER" != m1 ] || follower=m2
others=()
for n in "${all[@]}"; do [ "$n" = "$follower" ] || others+=("$n"); done
log "qv${INDEX[$follower]} ($follower) down; leader $LEADER"
in_seg ip link set "qv${INDEX[$follower]}" down
for i in $(seq 1 20); do
	ctl_ok "${others[$((i % 2))]}" put "down/$i" "v$i"
	assert_eq "put down/$i while $follower is cut off" OK "$OUT"
done
before=$(status_field "$follower" 9)
leader_index=$(status_field "$LEADER" 8)
[ "$before" -lt "$leader_index" ] || fail "$follower applied $before, the leader is at $leader_index: it was not cut off"
in_seg ip link set "qv${INDEX[$follower]}" up
log "qv${INDEX[$follower]} up again ($follower applied $before, leader index $leader_index)"
wait_until "$follower caught up" 30 applied_converged "${all[@]}"
log_has "$follower" '"msg":"applied snapshot"' || fail "$follower caught up over dpdk without a snapshot"
log "$follower caught up by snapshot: $(grep -F '"msg":"received and saved database snapshot"' "$TMP/$follower.log" | tail -n 1)"
for i in 1 20; do
	ctl_ok "$follower" get "down/$i" --consistency=s
	assert_eq "down/$i on $follower after the link came back" "down/$i"$'\n'"v$i" "$OUT"
done

# --- 5% loss (and 2 ms delay where netem exists) on every veth ---
netem=0
if in_seg tc qdisc add dev qb1 root netem delay 2ms loss 5% 2>/dev/null; then
	netem=1
	for i in 2 3; do in_seg tc qdisc add dev "qb$i" root netem delay 2ms loss 5%; done
	for i in 1 2 3; do in_seg tc qdisc add dev "qv$i" root netem delay 2ms loss 5%; done
	log "netem: 5% loss, 2 ms delay on every veth"
else
	in_seg nft -f - <<'NFT'
table bridge qloss {
	chain forward {
		type filter hook forward priority 0; policy accept;
		numgen random mod 100 < 5 counter drop
	}
}
NFT
	log "no netem qdisc in this kernel: 5% loss from nftables on every bridge port (no added delay)"
fi
writer() {
	local member=$1 prefix=$2 i out
	for i in $(seq 1 40); do
		if out=$("$QUORUMCTL" --control-socket "$(sock "$member")" --command-timeout=5s put "$prefix/$i" "v$i" 2>/dev/null) &&
			[ "$out" = OK ]; then
			echo "$prefix/$i v$i"
		fi
	done
}
writer "$LEADER" lossy/a >"$TMP/acked.a" &
wa=$!
track_pid "$wa"
writer "$follower" lossy/b >"$TMP/acked.b" &
wb=$!
track_pid "$wb"
wait "$wa" "$wb"
acked=$(cat "$TMP/acked.a" "$TMP/acked.b" | wc -l)
if [ "$netem" = 0 ]; then
	dropped=$(in_seg nft list table bridge qloss | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
	log "$acked of 80 writes acknowledged under loss; nftables dropped $dropped frames"
	[ "${dropped:-0}" -gt 0 ] || fail "the loss rule dropped nothing"
	in_seg nft delete table bridge qloss
else
	log "$acked of 80 writes acknowledged under netem"
	for i in 1 2 3; do in_seg tc qdisc del dev "qb$i" root; in_seg tc qdisc del dev "qv$i" root; done
fi
[ "$acked" -ge 40 ] || fail "only $acked of 80 writes acknowledged under 5% loss"
wait_leader 20 "${all[@]}"
wait_until "every member applied the leader's index" 30 applied_converged "${all[@]}"
for n in "${all[@]}"; do
	ctl_ok "$n" get lossy/ --prefix --consistency=s
	while read -r key value; do
		grep -qxF "$key" <<<"$OUT" || fail "acknowledged $key missing on $n"
	done < <(cat "$TMP/acked.a" "$TMP/acked.b")
done
log "every acknowledged write is on every member"
