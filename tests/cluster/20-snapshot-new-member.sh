#!/usr/bin/env bash
# issue 15: members added after the log was compacted join by snapshot. Three members with --snapshot-count
# 500 take 10,000 puts (their logs no longer start at entry 1); s4 added with `member add` and started with
# --initial-cluster-state existing receives the leader's snapshot ("applied snapshot": the member list and
# the configuration come with it) and then the log; s5 added as a learner does the same and is promoted.
# All five converge with the same `etcdctl endpoint hashkv`, and s4 and s5 serve writes and reads. Ports:
# 474x0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snapshot_helpers.sh"
add_member s1 47410
add_member s2 47420
add_member s3 47430
add_member s4 47440
add_member s5 47450
member_flags() { MEMBER_CMD+=(--snapshot-count 500 --snapshot-catchup-entries 100); }
start_new_cluster s1 s2 s3
wait_ready 15 s1 s2 s3
put_get s1 first/key 1
bench_puts 10000 s1 s2 s3
for n in s1 s2 s3; do log_has "$n" '"msg":"compacted Raft logs"' || fail "$n never compacted its log"; done

# join NAME [--learner]: member add, then start it with the cluster member add printed.
join() {
	local name=$1
	shift
	ctl_ok s2 member add "$name" --peer-urls="${PEER[$name]}" "$@"
	local ic
	ic=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$OUT")
	[ -n "$ic" ] || fail "member add $name printed no ETCD_INITIAL_CLUSTER: $OUT"
	start_member "$name" "$ic" existing
}

join s4
wait_until "s4 caught up, same hashkv on all four" 60 converged_and_equal s1 s2 s3 s4
log_has s4 '"msg":"joining an existing cluster"' || fail "s4 did not join as a new member"
log_has s4 '"msg":"applied snapshot"' || fail "s4 caught up without a snapshot"
wait_ready 15 s1 s2 s3 s4
put_get s4 through/s4 4
ctl_ok s4 get first/key --consistency=s
assert_eq "first/key on s4 (written before the compaction)" $'first/key\n1' "$OUT"

join s5 --learner
# A learner answers no HashKV (etcd's "rpc not supported for learner"): its applied index, then its hash
# once promoted.
wait_until "learner s5 caught up" 60 applied_converged s1 s2 s3 s4 s5
log_has s5 '"msg":"applied snapshot"' || fail "learner s5 caught up without a snapshot"
s5_id=$(member_id s5)
[ -n "$s5_id" ] || fail "s5 does not answer endpoint status"
promoted() { ctl s1 member promote "$s5_id" && [ "$RC" -eq 0 ]; }
wait_until "the learner s5 can be promoted" 20 promoted
wait_ready 15 s1 s2 s3 s4 s5
put_get s5 through/s5 5
wait_until "same hashkv on all five after the promotion" 30 converged_and_equal s1 s2 s3 s4 s5
