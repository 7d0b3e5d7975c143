#!/usr/bin/env bash
# Rule 7, quorum lost, as etcd 3.4.23 answers it: `member remove` and `put` time out (`context deadline exceeded`), both right
# after the kill and once the survivor noticed it has no leader (endpoint status ERRORS `etcdserver: no
# leader`): the request waits for a leader, as etcd's does. Usage: 07c-remove-during-outage.sh QUORUMD
# QUORUMCTL. Ports: 431x0.
source "$(dirname "$0")/lib.sh"
add_member m1 43110
add_member m2 43120
add_member m3 43130
start_new_cluster m1 m2 m3
wait_ready 10 m1 m2 m3
id3=$(member_id m3)
s=m1
[ "$LEADER" != m1 ] || s=m2
for n in m1 m2 m3; do [ "$n" = "$s" ] || kill9 "$n"; done
no_leader() { [ "$(status_field "$s" 10)" = "etcdserver: no leader" ]; }
wait_until "$s noticed" 10 no_leader
ctl "$s" --command-timeout=3s put k v
assert_eq "put without quorum (as etcd)" "Error: context deadline exceeded" "$ERR"
expect_error "$s" "Error: context deadline exceeded" --command-timeout=3s member remove "$id3"
