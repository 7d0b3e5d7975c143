#!/usr/bin/env bash
# etcd #20418: after a process pause a member answered a linearizable read from state older than a write that
# had completed before the read was sent (a read index reused across retries). Here, for a paused follower and
# then a paused leader, twice each: a key is written, the member is stopped (SIGSTOP), the key is overwritten
# through the others (after an election when the leader was the one stopped), the member is resumed and at once
# asked for a linearizable read of the key: it must answer the new value, never the old one.
# Ports: 263x0 (client 263x9).
source "$(dirname "$0")/lib.sh"

all=(m1 m2 m3)
add_member m1 26310
add_member m2 26320
add_member m3 26330
start_new_cluster "${all[@]}"
wait_ready 20 "${all[@]}"
paused_pid=""
resume_paused() { [ -z "$paused_pid" ] || kill -CONT "$paused_pid" 2>/dev/null || true; }
trap 'resume_paused; cleanup' EXIT

round=0
for role in follower follower leader leader; do
	round=$((round + 1))
	LEADER=$(leader_among "${all[@]}")
	if [ "$role" = leader ]; then
		victim=$LEADER
	else
		for n in "${all[@]}"; do [ "$n" = "$LEADER" ] || { victim=$n; break; }; done
	fi
	live=()
	for n in "${all[@]}"; do [ "$n" = "$victim" ] || live+=("$n"); done
	ctl_ok --endpoints="$(endpoints "${all[@]}")" put r20418/key "old-$round"
	wait_until "$victim applied old-$round" 10 applied_converged "${all[@]}"
	paused_pid=${PID[$victim]}
	kill -STOP "$paused_pid"
	log "round $round: paused the $role $victim"
	overwrite() { ctl --endpoints="$(endpoints "${live[@]}")" --command-timeout=3s put r20418/key "new-$round"; [ "$RC" -eq 0 ]; }
	wait_until "the overwrite through ${live[*]}" 30 overwrite
	kill -CONT "$paused_pid"
	paused_pid=""
	ctl --endpoints="${CLIENT[$victim]}" --command-timeout=15s get r20418/key --print-value-only
	log "round $round: linearizable read through the resumed $victim: rc $RC, '$OUT' ${ERR:+($ERR)}"
	assert_eq "exit code of the linearizable read through the resumed $role $victim (round $round): $ERR" 0 "$RC"
	assert_eq "linearizable read through the resumed $role $victim (round $round)" "new-$round" "$OUT"
	wait_ready 30 "${all[@]}"
done
