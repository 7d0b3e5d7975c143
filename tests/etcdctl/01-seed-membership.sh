#!/usr/bin/env bash
# The seed's runtime-reconfiguration commands, verbatim, with this test's ports:
#   etcdctl --endpoints=$ENDPOINTS member list -w table
#   etcdctl member update ID --peer-urls=http://127.0.0.1:NEW   (then the member restarts on NEW)
#   etcdctl member remove ID                                    (the removed member exits)
#   etcdctl member add infra4 --peer-urls=http://localhost:PORT (then infra4 starts with the printed ETCD_*)
# IDs are etcd's (SHA-1 of peer URLs + token): infra3's is 15 hex digits, so etcdctl's %16x pads it, and the
# cluster ID is 15 digits too. Expected outputs taken from etcd 3.4.23. Ports: 444x0 (client 444x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 44410
add_member infra2 44420
add_member infra3 44430
add_member infra4 44440
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)

id1=73da0150a5ad380b id2=d0140598b850eb88 id3=835271dafab5ab3 cid=e39b8e65f95a333
# The IDs are computed, not assigned: endpoint status through each member names its own.
for n in infra1 infra2 infra3; do
	var=id${n#infra}
	assert_eq "ID of $n (endpoint status)" "${!var}" "$(member_id "$n")"
done

expect_out "+------------------+---------+--------+------------------------+------------------------+------------+
|        ID        | STATUS  |  NAME  |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+---------+--------+------------------------+------------------------+------------+
|  835271dafab5ab3 | started | infra3 | http://127.0.0.1:44430 | http://127.0.0.1:44429 |      false |
| 73da0150a5ad380b | started | infra1 | http://127.0.0.1:44410 | http://127.0.0.1:44409 |      false |
| d0140598b850eb88 | started | infra2 | http://127.0.0.1:44420 | http://127.0.0.1:44419 |      false |
+------------------+---------+--------+------------------------+------------------------+------------+" \
	--endpoints="$ENDPOINTS" member list -w table

# ---- member update: infra3 moves to a new peer URL, then restarts listening on it ----
expect_out "Member  835271dafab5ab3 updated in cluster  e39b8e65f95a333" \
	--endpoints="$ENDPOINTS" member update "$id3" --peer-urls=http://127.0.0.1:44450
list_after_update="835271dafab5ab3, started, infra3, http://127.0.0.1:44450, http://127.0.0.1:44429, false
73da0150a5ad380b, started, infra1, http://127.0.0.1:44410, http://127.0.0.1:44409, false
d0140598b850eb88, started, infra2, http://127.0.0.1:44420, http://127.0.0.1:44419, false"
for n in infra1 infra2 infra3; do
	expect_out "$list_after_update" --endpoints="${CLIENT[$n]}" member list
done
stop_member infra3
PEER[infra3]=http://127.0.0.1:44450
start_member infra3 "$(initial_cluster infra1 infra2 infra3)" new
wait_ready 20 infra1 infra2 infra3
expect_out "$list_after_update" --endpoints="$ENDPOINTS" member list
expect_out "OK" --endpoints="${CLIENT[infra3]}" put after-update v

# ---- member remove: infra2 leaves and exits ----
# etcd refuses a removal that would leave the quorum depending on a member reconnected less than 5 s ago
# (infra3 just restarted) with "etcdserver: unhealthy cluster" and changes nothing, so the removal is retried
# while that is the answer.
removed() {
	ctl --endpoints="$ENDPOINTS" member remove "$id2"
	[ "$RC" -eq 0 ] && return 0
	assert_contains "the only acceptable refusal of member remove" "Error: etcdserver: unhealthy cluster" "$ERR"
	return 1
}
wait_until "member remove $id2 accepted" 15 removed
assert_eq "output of member remove" "Member d0140598b850eb88 removed from cluster  e39b8e65f95a333" "$OUT"
wait_exit infra2 15
ENDPOINTS=$(endpoints infra1 infra3)
wait_ready 20 infra1 infra3
expect_out "835271dafab5ab3, started, infra3, http://127.0.0.1:44450, http://127.0.0.1:44429, false
73da0150a5ad380b, started, infra1, http://127.0.0.1:44410, http://127.0.0.1:44409, false" \
	--endpoints="$ENDPOINTS" member list

# ---- member add: infra4, then started with the variables etcdctl printed ----
ctl_ok --endpoints="$ENDPOINTS" member add infra4 --peer-urls=http://localhost:44440
add_out=$OUT
id4=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$OUT")
[ -n "$id4" ] || fail "no member ID in the output of member add: $OUT"
# ETCD_INITIAL_CLUSTER lists the members in the order of MemberList (sorted by ID, and the new ID depends on
# the time of the add): compared as a set.
ic=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$OUT")
assert_eq "members in ETCD_INITIAL_CLUSTER (sorted)" \
	"infra1=http://127.0.0.1:44410
infra3=http://127.0.0.1:44450
infra4=http://localhost:44440" "$(tr ',' '\n' <<<"$ic" | sort)"
assert_eq "output of member add" "Member $(pad16 "$id4") added to cluster  e39b8e65f95a333

ETCD_NAME=\"infra4\"
ETCD_INITIAL_CLUSTER=\"$ic\"
ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://localhost:44440\"
ETCD_INITIAL_CLUSTER_STATE=\"existing\"" "$OUT"
expected_rows="835271dafab5ab3, started, infra3, http://127.0.0.1:44450, http://127.0.0.1:44429, false
$id4, unstarted, , http://localhost:44440, , false
73da0150a5ad380b, started, infra1, http://127.0.0.1:44410, http://127.0.0.1:44409, false"
ctl_ok --endpoints="$ENDPOINTS" member list
assert_eq "member list with infra4 unstarted (sorted)" "$(sort <<<"$expected_rows")" "$(sort <<<"$OUT")"

# Start infra4 with exactly the four variables etcdctl printed (each quoted as Go's %q prints it), plus where
# it listens.
env_vars=()
while IFS= read -r line; do
	case "$line" in ETCD_*=\"*\") env_vars+=("${line%%=*}=$(sed 's/^[^=]*="\(.*\)"$/\1/' <<<"$line")") ;; esac
done <<<"$add_out"
assert_eq "number of ETCD_* variables printed" 4 "${#env_vars[@]}"
# shellcheck disable=SC2046
start_raw infra4 env "${env_vars[@]}" "$TARGET" --data-dir "$(data_dir infra4)" \
	--listen-peer-urls http://127.0.0.1:44440 \
	--listen-client-urls "${CLIENT[infra4]}" --advertise-client-urls "${CLIENT[infra4]}" \
	--logger=zap --log-outputs=stderr $(target_only_flags infra4)
PEER[infra4]=http://localhost:44440
wait_ready 30 infra1 infra3 infra4
ENDPOINTS=$(endpoints infra1 infra3 infra4)
ctl_ok --endpoints="$ENDPOINTS" member list -w table
table=$OUT
check_table_layout "member list -w table with infra4" "$table"
assert_eq "cells of member list -w table with infra4 (rows sorted)" \
	"ID|STATUS|NAME|PEER ADDRS|CLIENT ADDRS|IS LEARNER
$(sort <<<"835271dafab5ab3|started|infra3|http://127.0.0.1:44450|http://127.0.0.1:44429|false
$id4|started|infra4|http://localhost:44440|http://127.0.0.1:44439|false
73da0150a5ad380b|started|infra1|http://127.0.0.1:44410|http://127.0.0.1:44409|false")" \
	"$(table_cells "$table" | { IFS= read -r h; echo "$h"; sort; })"
expect_out "OK" --endpoints="${CLIENT[infra4]}" put after-add v
for n in infra1 infra3 infra4; do
	expect_out "after-add
v
after-update
v" --endpoints="${CLIENT[$n]}" get after --prefix
done
