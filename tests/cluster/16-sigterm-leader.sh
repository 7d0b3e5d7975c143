#!/usr/bin/env bash
# SIGTERM on the leader hands leadership over before the member stops, as etcd's TransferLeadership does:
# the stopping leader logs etcd's "leadership transfer starting" / "leadership transfer finished" with the
# transferee, and the remaining members have that transferee as leader well before an election could have
# made one. The election timeout is 5 s, so followers of a leader that just vanished would not even
# campaign for 5 s; a new leader within 4 s of the SIGTERM can only come from the hand-over. SIGTERM on a
# follower skips the transfer (etcd's "skipped leadership transfer; local server is not leader").
# Ports: 461x0.
source "$(dirname "$0")/lib.sh"
add_member m1 46110
add_member m2 46120
add_member m3 46130
ic=$(initial_cluster m1 m2 m3)
for n in m1 m2 m3; do start_member "$n" "$ic" new --heartbeat-interval 100 --election-timeout 5000; done
wait_ready 20 m1 m2 m3
old=$LEADER
others=()
for n in m1 m2 m3; do [ "$n" = "$old" ] || others+=("$n"); done
ctl_ok "${others[0]}" put before-stop 1

started=$(date +%s%N)
stop_member "$old"
new_leader_named() { leader=$(leader_among "${others[@]}") && has_leader "${others[@]}"; }
wait_until "a leader among ${others[*]} after SIGTERM of $old" 10 new_leader_named
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
log "new leader $leader ${elapsed_ms} ms after SIGTERM of the leader $old"
[ "$elapsed_ms" -lt 4000 ] || fail "the cluster had no leader for ${elapsed_ms} ms after SIGTERM of the leader: " \
	"an election, not a hand-over (election timeout 5000 ms)"
log_has "$old" '"msg":"leadership transfer starting"' || fail "$old did not log 'leadership transfer starting'"
log_has "$old" '"msg":"leadership transfer finished"' || fail "$old did not log 'leadership transfer finished'"
transferee=$(sed -n 's/.*"msg":"leadership transfer starting".*"transferee-member-id":"\([0-9a-f]*\)".*/\1/p' \
	"$TMP/$old.log" | tail -n 1)
assert_eq "the new leader is the transferee $old named" "$transferee" "$(member_id "$leader")"
ctl_ok "$leader" put after-stop 1

# A follower stopping has nothing to hand over.
follower=${others[0]}
[ "$follower" != "$leader" ] || follower=${others[1]}
stop_member "$follower"
log_has "$follower" '"msg":"skipped leadership transfer; local server is not leader"' ||
	fail "$follower did not log 'skipped leadership transfer; local server is not leader'"
