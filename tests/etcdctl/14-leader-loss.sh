#!/usr/bin/env bash
# A request pending on a lost leader is answered, not left hanging: with the leader stopped (SIGSTOP) a put
# through a follower, whose proposal went to the stopped leader, is answered with etcd's
# "etcdserver: request timed out" (or its variant "..., possibly due to previous leader failure", when the
# rest of the cluster elected a new leader meanwhile) within etcd's request timeout (5 s + 2 election
# timeouts = 7 s here) and well before the client's own 30 s deadline; the client may retry, and the retry
# succeeds on the new leader. etcd 3.4.23 answers the same way (run-against-etcd.sh).
# Ports: 281x0 (client 281x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 28110
add_member infra2 28120
add_member infra3 28130
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
old=$LEADER
others=()
for n in infra1 infra2 infra3; do [ "$n" = "$old" ] || others+=("$n"); done
follower=${others[0]}
ctl_ok --endpoints="${CLIENT[$follower]}" put before-loss 1

leader_pid=${PID[$old]}
kill -STOP "$leader_pid"
# The stopped leader must go on when the test ends, or its SIGTERM would wait in the queue.
resume_leader() { kill -CONT "$leader_pid" 2>/dev/null || true; }
trap 'resume_leader; cleanup' EXIT
started=$SECONDS
ctl --endpoints="${CLIENT[$follower]}" --command-timeout=30s put during-loss 1
took=$((SECONDS - started))
log "the put through $follower with the leader $old stopped: rc $RC after ${took} s: $ERR"
assert_eq "exit code of the put pending on a stopped leader (stdout: $OUT)" 1 "$RC"
# etcdctl prints its client's retry warnings (zap lines) first, then the error.
[[ "$(tail -n 1 <<<"$ERR")" =~ ^"Error: etcdserver: request timed out"(", possibly due to previous leader failure")?$ ]] ||
	fail "the put pending on a stopped leader was not answered with etcd's request timeout: $ERR"
[ "$took" -le 12 ] || fail "the put pending on a stopped leader was answered after $took s (etcd's bound: 7 s)"

# The retry goes to the leader the others elected.
retry_put() { ctl --endpoints="${CLIENT[$follower]}" --command-timeout=5s put during-loss 2; [ "$RC" -eq 0 ]; }
wait_until "a put through $follower after the election" 20 retry_put
expect_out "during-loss
2" --endpoints="${CLIENT[${others[1]}]}" get during-loss
resume_leader
