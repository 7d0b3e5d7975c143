#!/usr/bin/env bash
# Membership (control/README.md): removing a voter from a two-member cluster needs explicit intent, as the seed warns.
# `member remove ID` of either member of a two-member cluster is refused by quorumctl (exit 1, nothing
# changes, the cluster keeps serving); `member remove ID --force` removes it: the removed member logs etcd's
# two lines and exits, and the other one serves alone. A learner is not a voter: removing the learner of
# "two voters + a learner" needs no --force. Ports: 424x0.
source "$(dirname "$0")/lib.sh"

add_member m1 42410
add_member m2 42420
start_new_cluster m1 m2
wait_ready 10 m1 m2
cluster_hex=$(cluster_id m1)
id1=$(member_id m1) id2=$(member_id m2)
ctl_ok m1 member list
list_before=$OUT

# A learner (never started) is removed without --force.
ctl_ok m1 member add m3 --peer-urls=http://127.0.0.1:42430 --learner
learner_id=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$OUT")
ctl_ok m2 member remove "$learner_id"
assert_eq "output of member remove of the learner" \
	"Member $(pad16 "$learner_id") removed from cluster $(pad16 "$cluster_hex")" "$OUT"

expected_error="Error: removing a member from a two-member cluster leaves a single member: if it fails, or the \
removed member stops before the change is applied on both, the cluster stops serving; repeat with --force to \
remove it anyway"
for n in m1 m2; do
	for id in "$id1" "$id2"; do
		expect_error "$n" "$expected_error" member remove "$id"
	done
done
for n in m1 m2; do
	ctl_ok "$n" member list
	assert_eq "member list on $n after the refused removals" "$list_before" "$OUT"
	put_get "$n" "k-$n" v
done

ctl_ok m1 member remove "$id2" --force
assert_eq "output of member remove --force" "Member $(pad16 "$id2") removed from cluster $(pad16 "$cluster_hex")" "$OUT"
wait_exit m2 10
log_has m2 'the member has been permanently removed from the cluster' ||
	fail "m2 did not log 'the member has been permanently removed from the cluster'"
log_has m2 'the data-dir used by this member must be removed' ||
	fail "m2 did not log 'the data-dir used by this member must be removed'"
wait_leader 10 m1
ctl_ok m1 member list
assert_eq "member list on m1 alone" "$(grep -F "$id1," <<<"$list_before")" "$OUT"
put_get m1 alone v
ctl_ok m1 get k-m2
assert_eq "data written through m2 before the removal" $'k-m2\nv' "$OUT"
