#!/usr/bin/env bash
# Rule 10: a member restarted with a new --advertise-client-urls publishes it through Raft: every member's
# `member list` shows the new client URL within a bounded wait (peer URLs and IDs unchanged). Ports: 410x0.
source "$(dirname "$0")/lib.sh"

add_member m1 41010
add_member m2 41020
add_member m3 41030
ic=$(initial_cluster m1 m2 m3)
start_new_cluster m1 m2 m3
wait_ready 10 m1 m2 m3
id2=$(member_id m2)
ctl_ok m1 member list
before=$OUT
assert_contains "m2's row before the restart" "$id2, started, m2, http://127.0.0.1:41020, http://127.0.0.1:41019, false" \
	"$before"

stop_member m2
CLIENT[m2]=http://127.0.0.1:41059
start_member m2 "$ic" new
expected=${before/http:\/\/127.0.0.1:41019/http:\/\/127.0.0.1:41059}
lists_new_client_url() { ctl "$1" member list && [ "$RC" -eq 0 ] && [ "$OUT" = "$expected" ]; }
for n in m1 m2 m3; do
	wait_until "$n lists m2 with client URL http://127.0.0.1:41059" 10 lists_new_client_url "$n"
	ctl_ok "$n" member list
	assert_eq "member list on $n after m2's restart" "$expected" "$OUT"
done
wait_leader 10 m1 m2 m3
put_get m2 k v
