#!/usr/bin/env bash
# The seed's runtime-reconfiguration commands, verbatim, with this test's ports:
#   etcdctl --endpoints=$ENDPOINTS member list -w table
#   etcdctl member update ID --peer-urls=http://127.0.0.1:NEW   (then the member restarts on NEW)
#   etcdctl member remove ID                                    (the removed member exits)
#   etcdctl member add infra4 --peer-urls=http://localhost:PORT (then infra4 starts with the printed ETCD_*)
# IDs are etcd's (SHA-1 of peer URLs + token); the cluster ID has 14 hex digits, so etcdctl's %16x pads it
# with two spaces. Expected outputs taken from etcd 3.4.23. Ports: 242x0 (client 242x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 24210
add_member infra2 24220
add_member infra3 24230
add_member infra4 24240
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)

id1=2ceef3c2189cd9cd id2=5d1f408c1f241914 id3=353cc8308e7b0f98
# The IDs are computed, not assigned: endpoint status through each member names its own.
for n in infra1 infra2 infra3; do
	var=id${n#infra}
	assert_eq "ID of $n (endpoint status)" "${!var}" "$(member_id "$n")"
done

expect_out "+------------------+---------+--------+------------------------+------------------------+------------+
|        ID        | STATUS  |  NAME  |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+---------+--------+------------------------+------------------------+------------+
| 2ceef3c2189cd9cd | started | infra1 | http://127.0.0.1:24210 | http://127.0.0.1:24209 |      false |
| 353cc8308e7b0f98 | started | infra3 | http://127.0.0.1:24230 | http://127.0.0.1:24229 |      false |
| 5d1f408c1f241914 | started | infra2 | http://127.0.0.1:24220 | http://127.0.0.1:24219 |      false |
+------------------+---------+--------+------------------------+------------------------+------------+" \
	--endpoints="$ENDPOINTS" member list -w table

# ---- member update: infra3 moves to a new peer URL, then restarts listening on it ----
expect_out "Member 353cc8308e7b0f98 updated in cluster   352d9ef3680bde" \
	--endpoints="$ENDPOINTS" member update "$id3" --peer-urls=http://127.0.0.1:24250
list_after_update="2ceef3c2189cd9cd, started, infra1, http://127.0.0.1:24210, http://127.0.0.1:24209, false
353cc8308e7b0f98, started, infra3, http://127.0.0.1:24250, http://127.0.0.1:24229, false
5d1f408c1f241914, started, infra2, http://127.0.0.1:24220, http://127.0.0.1:24219, false"
for n in infra1 infra2 infra3; do
	expect_out "$list_after_update" --endpoints="${CLIENT[$n]}" member list
done
stop_member infra3
PEER[infra3]=http://127.0.0.1:24250
start_member infra3 "$(initial_cluster infra1 infra2 infra3)" new
wait_ready 20 infra1 infra2 infra3
expect_out "$list_after_update" --endpoints="$ENDPOINTS" member list
expect_out "OK" --endpoints="${CLIENT[infra3]}" put after-update v

# ---- member remove: infra2 leaves and exits ----
# etcd refuses a member change while a voter has been connected for less than 5 s (infra3 just restarted)
# with "etcdserver: unhealthy cluster", changing nothing: retried while that is the answer.
ctl_retry_unhealthy 15 --endpoints="$ENDPOINTS" member remove "$id2"
assert_eq "output of member remove" "Member 5d1f408c1f241914 removed from cluster   352d9ef3680bde" "$OUT"
wait_exit infra2 15
ENDPOINTS=$(endpoints infra1 infra3)
wait_ready 20 infra1 infra3
expect_out "2ceef3c2189cd9cd, started, infra1, http://127.0.0.1:24210, http://127.0.0.1:24209, false
353cc8308e7b0f98, started, infra3, http://127.0.0.1:24250, http://127.0.0.1:24229, false" \
	--endpoints="$ENDPOINTS" member list

# ---- member add: infra4, then started with the variables etcdctl printed ----
ctl_retry_unhealthy 15 --endpoints="$ENDPOINTS" member add infra4 --peer-urls=http://localhost:24240
add_out=$OUT
id4=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$OUT")
[ -n "$id4" ] || fail "no member ID in the output of member add: $OUT"
# ETCD_INITIAL_CLUSTER lists the members in the order of MemberList (sorted by ID, and the new ID depends on
# the time of the add): compared as a set.
ic=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$OUT")
assert_eq "members in ETCD_INITIAL_CLUSTER (sorted)" \
	"infra1=http://127.0.0.1:24210
infra3=http://127.0.0.1:24250
infra4=http://localhost:24240" "$(tr ',' '\n' <<<"$ic" | sort)"
assert_eq "output of member add" "Member $(pad16 "$id4") added to cluster   352d9ef3680bde

ETCD_NAME=\"infra4\"
ETCD_INITIAL_CLUSTER=\"$ic\"
ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://localhost:24240\"
ETCD_INITIAL_CLUSTER_STATE=\"existing\"" "$OUT"
expected_rows="2ceef3c2189cd9cd, started, infra1, http://127.0.0.1:24210, http://127.0.0.1:24209, false
353cc8308e7b0f98, started, infra3, http://127.0.0.1:24250, http://127.0.0.1:24229, false
$id4, unstarted, , http://localhost:24240, , false"
ctl_ok --endpoints="$ENDPOINTS" member list
assert_eq "member list with infra4 unstarted (sorted)" "$(sort <<<"$expected_rows")" "$(sort <<<"$OUT")"

start_with_printed_env infra4 "$add_out" http://127.0.0.1:24240
PEER[infra4]=http://localhost:24240
wait_ready 30 infra1 infra3 infra4
ENDPOINTS=$(endpoints infra1 infra3 infra4)
ctl_ok --endpoints="$ENDPOINTS" member list -w table
table=$OUT
check_table_layout "member list -w table with infra4" "$table"
assert_eq "cells of member list -w table with infra4 (rows sorted)" \
	"ID|STATUS|NAME|PEER ADDRS|CLIENT ADDRS|IS LEARNER
$(sort <<<"2ceef3c2189cd9cd|started|infra1|http://127.0.0.1:24210|http://127.0.0.1:24209|false
353cc8308e7b0f98|started|infra3|http://127.0.0.1:24250|http://127.0.0.1:24229|false
$id4|started|infra4|http://localhost:24240|http://127.0.0.1:24239|false")" \
	"$(table_cells "$table" | { IFS= read -r h; echo "$h"; sort; })"
expect_out "OK" --endpoints="${CLIENT[infra4]}" put after-add v
for n in infra1 infra3 infra4; do
	expect_out "after-add
v
after-update
v" --endpoints="${CLIENT[$n]}" get after --prefix
done
