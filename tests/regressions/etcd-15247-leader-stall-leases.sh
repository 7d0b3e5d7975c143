#!/usr/bin/env bash
# etcd #15247: a leader whose process stalled longer than its leases' TTLs revoked every lease when it came
# back, although the clients had kept them alive through the rest of the cluster all along. Here: three leases
# (TTL 6 s) with a key each, kept alive through a follower; the leader is stopped (SIGSTOP) until the others
# have elected a new leader and twice the TTL has passed, then resumed and watched for another two TTLs. No key
# may be deleted (a watch on their prefix records every event from before the stall on) and every lease must
# still be alive with its key attached.
# Ports: 262x0 (client 262x9).
source "$(dirname "$0")/lib.sh"

all=(m1 m2 m3)
add_member m1 26210
add_member m2 26220
add_member m3 26230
start_new_cluster "${all[@]}"
wait_ready 20 "${all[@]}"
old=$LEADER
others=()
for n in "${all[@]}"; do [ "$n" = "$old" ] || others+=("$n"); done
follower=${others[0]}
ttl=6
leases=()
for i in 1 2 3; do
	ctl_ok --endpoints="${CLIENT[$follower]}" lease grant "$ttl"
	leases+=("$(lease_id "$OUT")")
	ctl_ok --endpoints="${CLIENT[$follower]}" put "r15247/key$i" "v$i" --lease="${leases[-1]}"
done
start_rev=$(revision "${CLIENT[$follower]}")
ctl_bg watch.out --endpoints="${CLIENT[$follower]}" watch --prefix r15247/ --rev="$start_rev"
for i in 0 1 2; do ctl_bg "keepalive$i.out" --endpoints="${CLIENT[$follower]}" lease keep-alive "${leases[i]}"; done

leader_pid=${PID[$old]}
kill -STOP "$leader_pid"
resume_leader() { kill -CONT "$leader_pid" 2>/dev/null || true; }
trap 'resume_leader; cleanup' EXIT
stopped_at=$SECONDS
log "leader $old (pid $leader_pid) stopped"
wait_until "a new leader among ${others[*]}" 20 has_leader "${others[@]}"
# The stall itself is the fault: it must outlast the leases' TTL twice over, whatever the election took.
sleep $((2 * ttl - (SECONDS - stopped_at) > 0 ? 2 * ttl - (SECONDS - stopped_at) : 0))
resume_leader
log "leader $old resumed after $((SECONDS - stopped_at)) s"
wait_until "every member's applied index at the leader's after the resume" 30 applied_converged "${all[@]}"
# The symptom shows within the resumed member's first lease checks; two TTLs of watching cover them.
observe_until=$((SECONDS + 2 * ttl))
while [ "$SECONDS" -lt "$observe_until" ]; do
	if grep -q '^DELETE$' "$TMP/watch.out"; then
		fail "keys of leases kept alive were deleted after the leader's stall: $(cat "$TMP/watch.out")"
	fi
	sleep 0.5
done
grep -q '^DELETE$' "$TMP/watch.out" && fail "keys deleted after the stall: $(cat "$TMP/watch.out")"
for i in 0 1 2; do
	ctl_ok --endpoints="${CLIENT[$old]}" lease timetolive "${leases[i]}" --keys
	assert_match "lease ${leases[i]} alive with its key, read through the resumed $old" \
		"^lease ${leases[i]} granted with TTL\\(${ttl}s\\), remaining\\([1-9][0-9]*s\\), attached keys\\(\\[r15247/key$((i + 1))\\]\\)$" "$OUT"
done
expect_out "r15247/key1
v1
r15247/key2
v2
r15247/key3
v3" --endpoints="${CLIENT[$old]}" get --prefix r15247/
