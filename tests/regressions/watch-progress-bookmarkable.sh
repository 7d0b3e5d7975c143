#!/usr/bin/env bash
# etcd's bookmarkable watch guarantee under progress requests: a progress notification at revision R means
# every event up to R was already delivered on that watch. Three members hold 20,000 revisions under one prefix;
# a watcher from revision 1 (through each member in turn) asks for progress (WatchProgressRequest) every 5 ms from
# the moment its watch is created, while the member is still replaying the history to it. Every notification
# must come after every event up to its revision, R never goes backwards, and once one reaches the head every key
# was delivered (regress-client progress-check). A server that answers a progress request at once with its
# current revision, as etcd 3.4.23 does, vouches for events it has not sent yet: the check fails against it.
# Ports: 269x0 (client 269x9).
source "$(dirname "$0")/lib.sh"

all=(m1 m2 m3)
add_member m1 26910
add_member m2 26920
add_member m3 26930
start_new_cluster "${all[@]}"
wait_ready 20 "${all[@]}"
all_endpoints=$(endpoints "${all[@]}")
run_captured "$REGRESS_CLIENT" write -endpoints "$all_endpoints" -prefix progress -acked "$TMP/acked" \
	-concurrency 16 -count 1250
[ "$RC" -eq 0 ] || fail "writing the history: $ERR"
log "$OUT"
[ "$(acked_count)" -ge 19000 ] || fail "only $(acked_count) puts acknowledged of 20,000"
wait_until "every member's applied index at the leader's" 60 applied_converged "${all[@]}"
for n in "${all[@]}"; do
	run_captured "$REGRESS_CLIENT" progress-check -endpoints "${CLIENT[$n]}" -prefix progress -from-rev 1
	[ "$RC" -eq 0 ] || fail "progress through $n: $ERR"
	log "$n: $OUT"
done
