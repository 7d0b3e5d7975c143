#!/usr/bin/env bash
# Rule 6: `member add NAME --peer-urls=URL --learner` adds an unstarted learner (member list: `unstarted`,
# IS LEARNER true; etcdctl's exact add output); promoting it while it lags (never started) fails with
# `Error: etcdserver: can only promote a learner member which is in sync with leader` (exit 1); promoting a
# voter fails with `Error: etcdserver: can only promote a learner member` (exit 1). Ports: 406x0.
source "$(dirname "$0")/lib.sh"

add_member m1 40610
add_member m2 40620
add_member m3 40630
start_new_cluster m1 m2 m3
wait_ready 10 m1 m2 m3
cluster_hex=$(cluster_id m1)
id1=$(member_id m1) id2=$(member_id m2) id3=$(member_id m3)

ctl_ok m2 member add infra4 --peer-urls=http://127.0.0.1:40640 --learner
learner_id=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$OUT")
[ -n "$learner_id" ] || fail "no member ID in the output of member add: $OUT"
# etcdctl's lines, then quorumd's addition (control/cmd/quorumctl: the command that starts the new member).
# ETCD_INITIAL_CLUSTER lists the members in the order of the cluster's answer: check it as a set.
ic_line=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$OUT")
assert_eq "members in ETCD_INITIAL_CLUSTER (sorted)" \
	"$(printf '%s\n' infra4=http://127.0.0.1:40640 m1=http://127.0.0.1:40610 m2=http://127.0.0.1:40620 \
		m3=http://127.0.0.1:40630)" "$(tr ',' '\n' <<<"$ic_line" | sort)"
assert_eq "output of member add --learner" "Member $(pad16 "$learner_id") added to cluster $(pad16 "$cluster_hex")

ETCD_NAME=\"infra4\"
ETCD_INITIAL_CLUSTER=\"$ic_line\"
ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:40640\"
ETCD_INITIAL_CLUSTER_STATE=\"existing\"

quorumd --name infra4 --initial-advertise-peer-urls http://127.0.0.1:40640 --listen-peer-urls \
http://127.0.0.1:40640 --initial-cluster $ic_line --initial-cluster-state existing" "$OUT"

# member list on every member: the learner is unstarted, IS LEARNER true; rows sorted by ID as etcdctl's
# server returns them.
expected_rows=$(printf '%s\n' \
	"$id1, started, m1, http://127.0.0.1:40610, http://127.0.0.1:40609, false" \
	"$id2, started, m2, http://127.0.0.1:40620, http://127.0.0.1:40619, false" \
	"$id3, started, m3, http://127.0.0.1:40630, http://127.0.0.1:40629, false" \
	"$learner_id, unstarted, , http://127.0.0.1:40640, , true" | sort)
learner_listed() { ctl "$1" member list && [ "$RC" -eq 0 ] && [ "$(sort <<<"$OUT")" = "$expected_rows" ]; }
for n in m1 m2 m3; do
	wait_until "$n lists the learner" 5 learner_listed "$n"
	ctl_ok "$n" member list -w table
	row=$(grep -E "^\| +$learner_id \|" <<<"$OUT") || fail "no table row for $learner_id on $n: $OUT"
	assert_eq "columns of the learner's table row on $n (STATUS NAME PEER CLIENT LEARNER)" \
		"unstarted||http://127.0.0.1:40640||true" \
		"$(awk -F'|' '{ for (i = 3; i <= 7; i++) { gsub(/ /, "", $i); printf "%s%s", $i, (i < 7 ? "|" : "") } }' <<<"$row")"
done

# Promote while it lags (it never started): refused, through a follower and through the leader.
for n in m1 m2 m3; do
	expect_error "$n" "Error: etcdserver: can only promote a learner member which is in sync with leader" \
		member promote "$learner_id"
done
# Promote a voter: refused.
expect_error m1 "Error: etcdserver: can only promote a learner member" member promote "$id2"
expect_error "$LEADER" "Error: etcdserver: can only promote a learner member" member promote "$(member_id "$LEADER")"

# Nothing changed: still three voters and one learner, and the cluster serves writes.
for n in m1 m2 m3; do
	learner_listed "$n" || fail "member list on $n changed after the refused promotes: $OUT"
	put_get "$n" "k-$n" v
done
