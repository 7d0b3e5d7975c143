#!/usr/bin/env bash
# tests/net/02-membership.sh PATH/quorumd PATH/quorumctl: three members on --dataplane=dpdk (af_packet
# ports on veths) walk the node issue's membership scenario: update a peer URL (the member comes back on
# a new IP, resolved again with ARP), remove a follower, a two-phase add refused with the wrong
# --initial-cluster then joined with the right one, a learner added, caught up and promoted.
source "$(dirname "$0")/dpdk_cluster.sh"

net_segment 5
add_dpdk_member m1 1
add_dpdk_member m2 2
add_dpdk_member m3 3
add_dpdk_member m4 4
add_dpdk_member m5 5
ic=$(initial_cluster m1 m2 m3)
start_new_dpdk_cluster m1 m2 m3
wait_ready 60 m1 m2 m3
cluster_hex=$(cluster_id m1)
log "three dpdk members ready, leader $LEADER, cluster $cluster_hex"
put_get "$LEADER" k0 v0
for n in m1 m2 m3; do in_seg ping -c 1 -W 1 "$(member_ip "${INDEX[$n]}")" >/dev/null || fail "ping $n"; done

# --- update: m2 moves to 10.77.0.12 on the same port ---
id2=$(member_id m2)
new_url="http://$(member_ip 12):2380"
ctl_ok m1 member update "$id2" --peer-urls="$new_url"
assert_eq "output of member update" "Member $(pad16 "$id2") updated in cluster $(pad16 "$cluster_hex")" "$OUT"
lists_new_url() { ctl "$1" member list && [ "$RC" -eq 0 ] && grep -qF "$id2, started, m2, $new_url," <<<"$OUT"; }
for n in m1 m2 m3; do wait_until "$n lists m2 at $new_url" 10 lists_new_url "$n"; done
stop_member m2
PEER[m2]=$new_url
start_dpdk m2 "$ic" new
wait_leader 30 m1 m2 m3
put_get m2 k1 after-update
wait_until "m2 caught up" 20 applied_converged m1 m2 m3
log "m2 answers on $new_url"

# --- remove a follower ---
victim=m3
[ "$LEADER" != m3 ] || victim=m1
victim_id=$(member_id "$victim")
asker=m2
ctl_ok "$asker" member remove "$victim_id"
assert_eq "output of member remove" "Member $(pad16 "$victim_id") removed from cluster $(pad16 "$cluster_hex")" "$OUT"
wait_exit "$victim" 20
log_has "$victim" 'the member has been permanently removed from the cluster' || fail "$victim did not log its removal"
remaining=(m2)
[ "$victim" = m3 ] && remaining+=(m1) || remaining+=(m3)
wait_leader 20 "${remaining[@]}"
for n in "${remaining[@]}"; do
	ctl_ok "$n" member list
	assert_eq "members listed on $n after the remove" 2 "$(wc -l <<<"$OUT")"
	put_get "$n" "after-remove-$n" v
done
log "$victim removed; ${remaining[*]} commit"

# --- two-phase add: wrong --initial-cluster, then the right one ---
ctl_ok m2 member add m4 --peer-urls="${PEER[m4]}"
m4_id=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$OUT")
[ -n "$m4_id" ] || fail "no member ID in the output of member add: $OUT"
m4_ic=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$OUT")
wrong_ic="${m4_ic/${PEER[m4]}/http://$(member_ip 44):2380}"
start_dpdk m4 "$wrong_ic" existing
wait_exit m4 30
assert_eq "exit code of m4 with a wrong --initial-cluster" 1 "$EXIT_CODE"
log_has m4 'unmatched member while checking PeerURLs' || fail "m4's refusal: $(tail -3 "$TMP/m4.log")"
rm -rf "${TMP:?}/m4" && mkdir -p "$TMP/m4"
start_dpdk m4 "$m4_ic" existing
members=("${remaining[@]}" m4)
wait_until "m4 started in every member's list" 40 all_published "${members[@]}"
wait_leader 20 "${members[@]}"
wait_until "m4 caught up" 20 applied_converged "${members[@]}"
ctl_ok m4 get k0 --consistency=s
assert_eq "serializable get k0 on m4" $'k0\nv0' "$OUT"
put_get m4 k2 through-m4
log "m4 joined (two phases) over dpdk"

# --- learner: add, catch up, promote ---
ctl_ok m4 member add m5 --peer-urls="${PEER[m5]}" --learner
m5_id=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$OUT")
m5_ic=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$OUT")
start_dpdk m5 "$m5_ic" existing
learner_started() { ctl "$1" member list && [ "$RC" -eq 0 ] && grep -qF "$m5_id, started, m5, ${PEER[m5]}, ${CLIENT[m5]}, true" <<<"$OUT"; }
for n in "${members[@]}"; do wait_until "$n lists the learner m5 started" 40 learner_started "$n"; done
promoted() { ctl m2 member promote "$m5_id" && [ "$RC" -eq 0 ]; }
wait_until "m5 promoted (in sync with the leader)" 30 promoted
assert_eq "output of member promote" "Member $(pad16 "$m5_id") promoted in cluster $(pad16 "$cluster_hex")" "$OUT"
members+=(m5)
voter_listed() { ctl "$1" member list && [ "$RC" -eq 0 ] && grep -qF "$m5_id, started, m5, ${PEER[m5]}, ${CLIENT[m5]}, false" <<<"$OUT"; }
for n in "${members[@]}"; do wait_until "$n lists m5 as a voter" 20 voter_listed "$n"; done
wait_leader 20 "${members[@]}"
for n in "${members[@]}"; do put_get "$n" "end-$n" v; done
wait_until "every member applied the leader's index" 20 applied_converged "${members[@]}"
for n in "${members[@]}"; do
	for k in k0:v0 k1:after-update k2:through-m4; do
		ctl_ok "$n" get "${k%%:*}" --consistency=s
		assert_eq "get ${k%%:*} on $n" "${k%%:*}"$'\n'"${k#*:}" "$OUT"
	done
done
log "counters of $LEADER: packets_out=$(counter "$LEADER" packets_out) drop_no_neighbour=$(counter "$LEADER" drop_no_neighbour) drop_ring_full=$(counter "$LEADER" drop_ring_full)"
