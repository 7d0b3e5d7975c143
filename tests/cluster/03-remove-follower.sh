#!/usr/bin/env bash
# Rule 3: `member remove ID` of a follower prints `Member ID removed from cluster CID`; the removed member logs
# etcd's two lines and exits; restarted on its old data dir it says the same and exits non-zero; the others
# keep serving puts and gets. Second case: a follower removed while it is down, restarted on its old data
# dir, learns it was removed (the others drop its frames, counted in drop_removed_member of the `counters`
# command, and tell it): it logs the same two lines and exits non-zero; the others keep serving.
# Ports: 403x0.
source "$(dirname "$0")/lib.sh"

all=(m1 m2 m3 m4)
add_member m1 40310
add_member m2 40320
add_member m3 40330
add_member m4 40340
start_new_cluster "${all[@]}"
wait_ready 10 "${all[@]}"
put_get "$LEADER" before remove
cluster_hex=$(cluster_id m1)

# others_than NAME...: the members of $all that are not named.
others_than() {
	local n x keep
	for n in "${all[@]}"; do
		keep=1
		for x in "$@"; do [ "$n" = "$x" ] && keep=0; done
		[ "$keep" -eq 0 ] || echo "$n"
	done
}

# expect_removed_lines NAME: the member's log has etcd's two lines about its removal.
expect_removed_lines() {
	log_has "$1" 'the member has been permanently removed from the cluster' ||
		fail "$1 did not log 'the member has been permanently removed from the cluster'"
	log_has "$1" 'the data-dir used by this member must be removed' ||
		fail "$1 did not log 'the data-dir used by this member must be removed'"
}

# ---- case 1: a running follower ----
mapfile -t followers < <(others_than "$LEADER")
victim=${followers[0]} asker=${followers[1]}
victim_id=$(member_id "$victim")
log "removing running follower $victim ($victim_id) through follower $asker; cluster $cluster_hex"
ctl_ok "$asker" member remove "$victim_id"
assert_eq "output of member remove" "Member $(pad16 "$victim_id") removed from cluster $(pad16 "$cluster_hex")" "$OUT"
wait_exit "$victim" 10
log "$victim exited with code $EXIT_CODE"
expect_removed_lines "$victim"

mapfile -t all < <(others_than "$victim")
wait_leader 10 "${all[@]}"
for n in "${all[@]}"; do
	ctl_ok "$n" member list
	assert_eq "number of members listed on $n" 3 "$(wc -l <<<"$OUT")"
	case "$OUT" in *"$victim_id"*) fail "$n still lists $victim_id: $OUT" ;; esac
	put_get "$n" "after-$n" "value-$n"
done

# Restarted on its old data dir: the same two lines, and a non-zero exit code.
: >"$TMP/$victim.log"
start_member "$victim" "$(initial_cluster m1 m2 m3 m4)" new
wait_exit "$victim" 15
log "restarted $victim exited with code $EXIT_CODE"
[ "$EXIT_CODE" -ne 0 ] || fail "restarted removed member $victim exited with code 0 (expected non-zero)"
expect_removed_lines "$victim"
for n in "${all[@]}"; do put_get "$n" "after-restart-$n" v; done

# ---- case 2: a follower removed while it is down, then restarted ----
wait_leader 10 "${all[@]}"
mapfile -t followers < <(others_than "$LEADER")
victim2=${followers[0]}
victim2_id=$(member_id "$victim2")
kill9 "$victim2"
mapfile -t all < <(others_than "$victim2")
log "removing stopped follower $victim2 ($victim2_id) through $LEADER"
ctl_ok "$LEADER" member remove "$victim2_id"
assert_eq "output of member remove" "Member $(pad16 "$victim2_id") removed from cluster $(pad16 "$cluster_hex")" "$OUT"
for n in "${all[@]}"; do put_get "$n" "two-left-$n" v; done

drops() {
	local n sum=0 c
	for n in "${all[@]}"; do
		c=$(counter "$n" drop_removed_member)
		sum=$((sum + ${c:-0}))
	done
	echo "$sum"
}
drops_before=$(drops)
: >"$TMP/$victim2.log"
start_member "$victim2" "$(initial_cluster m1 m2 m3 m4)" new
wait_exit "$victim2" 15
log "restarted $victim2 (removed while down) exited with code $EXIT_CODE"
[ "$EXIT_CODE" -ne 0 ] || fail "restarted removed member $victim2 exited with code 0 (expected non-zero)"
expect_removed_lines "$victim2"
drops_grew() { [ "$(drops)" -gt "$drops_before" ]; }
wait_until "drop_removed_member grew on ${all[*]} while $victim2 ran again (was $drops_before)" 5 drops_grew
log "drop_removed_member on ${all[*]}: $drops_before before $victim2 restarted, $(drops) after"
for n in "${all[@]}"; do
	put_get "$n" "end-$n" v
	ctl_ok "$n" member list
	assert_eq "number of members listed on $n" 2 "$(wc -l <<<"$OUT")"
done
