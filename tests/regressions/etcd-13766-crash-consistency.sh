#!/usr/bin/env bash
# etcd #13766: etcd 3.5.0-3.5.2 saved the applied index apart from the data it covers, so a member killed under
# load re-applied or skipped entries on restart and the members' states diverged. Here: three members under a
# steady write load through all of them; each member in turn (the leader among them) is SIGKILLed while puts
# are being applied, the load goes on without it, and it is restarted. At the end every member holds every
# acknowledged put, and `endpoint hashkv` gives one hash at one revision on all three. Snapshots every 300
# entries put snapshot and WAL-release steps in the window of the kills.
# Ports: 261x0 (client 261x9).
source "$(dirname "$0")/lib.sh"

all=(m1 m2 m3)
add_member m1 26110
add_member m2 26120
add_member m3 26130
IC=$(initial_cluster "${all[@]}")
# shellcheck disable=SC2046
for n in "${all[@]}"; do start_member "$n" "$IC" new $(snapshot_flags 300 50); done
wait_ready 20 "${all[@]}"
start_writer r13766 "$(endpoints "${all[@]}")" 12
victims=("$LEADER" m1 m2 m3)
for victim in "${victims[@]}"; do
	wait_until "200 more acknowledged puts before killing $victim" 60 acked_at_least $(($(acked_count) + 200))
	kill9 "$victim"
	log "killed $victim with $(acked_count) puts acknowledged"
	wait_until "200 more acknowledged puts while $victim is down" 60 acked_at_least $(($(acked_count) + 200))
	# shellcheck disable=SC2046
	start_member "$victim" "$IC" new $(snapshot_flags 300 50)
	wait_until "$victim answering again" 30 all_healthy "$victim"
done
stop_writer
wait_until "every member's applied index at the leader's" 60 applied_converged "${all[@]}"
wait_until "one hash at one revision on every member (endpoint hashkv)" 30 hashkv_equal "${all[@]}"
log "hashkv: $HASHKV"
check_acked "$(endpoints "${all[@]}")"
