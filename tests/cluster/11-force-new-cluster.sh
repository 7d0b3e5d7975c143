#!/usr/bin/env bash
# Rule 11: majority lost for good. Kill two of three (SIGKILL), restart the survivor from its data dir with
# --force-new-cluster: it serves as a one-member cluster (member list: itself only; it is the leader) with all
# committed data; members are then added back one at a time (member add, start with the printed variables and
# --initial-cluster-state existing), each catching up; the cluster ends with three started members holding
# all the data. Ports: 411x0.
source "$(dirname "$0")/lib.sh"

add_member m1 41110
add_member m2 41120
add_member m3 41130
add_member n2 41140
add_member n3 41150
start_new_cluster m1 m2 m3
wait_ready 10 m1 m2 m3
for i in $(seq 1 10); do put_get "m$(((i % 3) + 1))" "k/$i" "v$i"; done
# The survivor must hold every committed entry before the others die.
wait_until "all members applied the leader's last index" 10 applied_converged m1 m2 m3
id1=$(member_id m1)
ctl_ok m1 member list
m1_row=$(grep -F "$id1, started, m1," <<<"$OUT")

kill9 m2
kill9 m3
kill9 m1
start_member m1 "$(initial_cluster m1 m2 m3)" new --force-new-cluster
alone() { ctl m1 member list && [ "$RC" -eq 0 ] && [ "$OUT" = "$m1_row" ]; }
wait_until "m1 lists itself only" 15 alone
wait_leader 10 m1
assert_eq "leader of the forced cluster" m1 "$LEADER"
for i in $(seq 1 10); do
	ctl_ok m1 get "k/$i"
	assert_eq "get k/$i on the forced cluster" "k/$i"$'\n'"v$i" "$OUT"
done
put_get m1 k/alone v-alone

# join NAME: member add through m1, then start NAME with the printed variables; waits until it is started.
join() {
	local name=$1 id add_output
	ctl_ok m1 member add "$name" --peer-urls="${PEER[$name]}"
	add_output=$OUT
	id=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$add_output")
	[ -n "$id" ] || fail "no member ID in the output of member add: $add_output"
	var() { sed -n "s/^$1=\"\(.*\)\"$/\1/p" <<<"$add_output"; }
	assert_eq "ETCD_INITIAL_CLUSTER_STATE for $name" existing "$(var ETCD_INITIAL_CLUSTER_STATE)"
	start_member "$name" "$(var ETCD_INITIAL_CLUSTER)" existing
	joined() { ctl m1 member list && [ "$RC" -eq 0 ] &&
		grep -qxF "$id, started, $name, ${PEER[$name]}, ${CLIENT[$name]}, false" <<<"$OUT"; }
	wait_until "$name started in m1's member list" 20 joined
}
join n2
wait_leader 10 m1 n2
put_get n2 k/two v-two
join n3
members=(m1 n2 n3)
wait_leader 10 "${members[@]}"
wait_until "all members applied the leader's last index" 15 applied_converged "${members[@]}"
for n in "${members[@]}"; do
	ctl_ok "$n" member list
	assert_eq "number of members listed on $n" 3 "$(wc -l <<<"$OUT")"
	assert_eq "started members listed on $n" 3 "$(grep -c ', started, ' <<<"$OUT")"
	for k in k/1:v1 k/10:v10 k/alone:v-alone k/two:v-two; do
		ctl_ok "$n" get "${k%%:*}" --consistency=s
		assert_eq "serializable get ${k%%:*} on $n" "${k%%:*}"$'\n'"${k#*:}" "$OUT"
	done
done
put_get n3 k/three v-three
