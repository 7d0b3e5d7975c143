#!/usr/bin/env bash
# Rule 1: three members started with --initial-cluster-state new get etcd's IDs (seed vector: token
# etcd-cluster-1, infra1..3 on 127.0.0.1:12380/22380/32380) and `member list` shows all three started, with
# etcdctl's exact table and simple output. Ports: 12379-12380, 22379-22380, 32379-32380 (the vector's).
source "$(dirname "$0")/lib.sh"

add_member infra1 12380
add_member infra2 22380
add_member infra3 32380
start_new_cluster infra1 infra2 infra3
wait_leader 10 infra1 infra2 infra3
log "leader: $LEADER"

expected_table='+------------------+---------+--------+------------------------+------------------------+------------+
|        ID        | STATUS  |  NAME  |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+---------+--------+------------------------+------------------------+------------+
| 8211f1d0f64f3269 | started | infra1 | http://127.0.0.1:12380 | http://127.0.0.1:12379 |      false |
| 91bc3c398fb3c146 | started | infra2 | http://127.0.0.1:22380 | http://127.0.0.1:22379 |      false |
| fd422379fda50e48 | started | infra3 | http://127.0.0.1:32380 | http://127.0.0.1:32379 |      false |
+------------------+---------+--------+------------------------+------------------------+------------+'
expected_simple='8211f1d0f64f3269, started, infra1, http://127.0.0.1:12380, http://127.0.0.1:12379, false
91bc3c398fb3c146, started, infra2, http://127.0.0.1:22380, http://127.0.0.1:22379, false
fd422379fda50e48, started, infra3, http://127.0.0.1:32380, http://127.0.0.1:32379, false'

# Every member publishes its name and client URLs through Raft after the election: wait until each one
# shows all three started, then compare the exact text on each member.
all_started() { ctl "$1" member list && [ "$RC" -eq 0 ] && [ "$OUT" = "$expected_simple" ]; }
for n in infra1 infra2 infra3; do
	wait_until "member list on $n shows three started members" 10 all_started "$n"
	ctl_ok "$n" member list -w table
	assert_eq "member list -w table on $n" "$expected_table" "$OUT"
	ctl_ok "$n" member list
	assert_eq "member list on $n" "$expected_simple" "$OUT"
done

# endpoint status: each member reports its own ID, and exactly one of them is leader.
declare -A want_id=([infra1]=8211f1d0f64f3269 [infra2]=91bc3c398fb3c146 [infra3]=fd422379fda50e48)
leaders=0
for n in infra1 infra2 infra3; do
	assert_eq "ID in endpoint status of $n" "${want_id[$n]}" "$(member_id "$n")"
	[ "$(status_field "$n" 5)" = true ] && leaders=$((leaders + 1))
done
assert_eq "number of members reporting IS LEADER true" 1 "$leaders"
grep -qF '"cluster-id":"ef37ad9dc622a7c4"' "$TMP/infra1.log" ||
	fail "infra1's log does not name cluster ef37ad9dc622a7c4"

# The cluster serves writes and reads through any member.
put_get infra1 foo bar
applied_foo() { ctl "$1" get foo --consistency=s && [ "$RC" -eq 0 ] && [ "$OUT" = $'foo\nbar' ]; }
for n in infra2 infra3; do wait_until "$n applied foo=bar" 5 applied_foo "$n"; done
