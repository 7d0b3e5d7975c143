#!/usr/bin/env bash
# A request pending on a lost leader is answered, not left hanging: with the leader stopped (SIGSTOP) a put
# through a follower, whose proposal went to the stopped leader, is answered with etcd's
# "etcdserver: request timed out" (or its variant "..., possibly due to previous leader failure", when the
# rest of the cluster elected a new leader meanwhile) within etcd's request timeout (5 s + 2 election
# timeouts = 7 s here) and well before the client's own 30 s deadline; the client may retry, and the retry
# succeeds on the new leader. etcd 3.4.23 answers the same way (run-against-etcd.sh).
# Then the leader (the one elected meanwhile) is SIGKILLed and at once two puts go through a follower, which
# still takes the dead member for its leader: one by etcdctl with a 25 s deadline, one by a client with no
# deadline at all (h2-probe: no grpc-timeout header). Each must be answered — OK after the re-election (and
# then the value is there), or one of etcd's errors — within etcd's bound (an election timeout plus the
# request timeout, 8 s; 12 s allowed here for a loaded CI machine), well before the 25 s deadline. The times
# are printed ("after N ms").
# Usage: 14-leader-loss.sh PATH/quorumd|PATH/etcd [PATH/h2-probe]
# Ports: 281x0 (client 281x9).
source "$(dirname "$0")/lib.sh"

find_tool PROBE h2-probe "${2:-${H2_PROBE:-}}" tests/etcdctl/h2-probe

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

# ---- the leader SIGKILLed, puts through a follower right after ----
wait_ready 30 infra1 infra2 infra3
killed=$LEADER
for n in infra1 infra2 infra3; do [ "$n" = "$killed" ] || { follower=$n; break; }; done
survivor=
for n in infra1 infra2 infra3; do [ "$n" = "$killed" ] || [ "$n" = "$follower" ] || survivor=$n; done
kill9 "$killed"
"$PROBE" "${CLIENT[$follower]##*:}" put after-kill-no-deadline 1 60 >"$TMP/no-deadline.out" 2>"$TMP/no-deadline.err" &
track_pid "$!"
started_ms=$(($(date +%s%N) / 1000000))
ctl --endpoints="${CLIENT[$follower]}" --command-timeout=25s put after-kill 1
took_ms=$(($(date +%s%N) / 1000000 - started_ms))
log "the put through $follower with the leader $killed killed: rc $RC after ${took_ms} ms: $(tail -n 1 <<<"$ERR")"
# The answers a client may get: OK once a new leader committed it, or etcd's errors for a lost leader.
etcd_leader_loss_error='etcdserver: (request timed out(, possibly due to previous leader failure)?|leader changed|no leader)'
if [ "$RC" -eq 0 ]; then
	expect_out "after-kill
1" --endpoints="${CLIENT[$survivor]}" get after-kill
else
	[[ "$(tail -n 1 <<<"$ERR")" =~ ^"Error: "$etcd_leader_loss_error$ ]] ||
		fail "the put after the leader was killed was not answered with one of etcd's errors: $ERR"
fi
[ "$took_ms" -le 12000 ] || fail "the put after the leader was killed was answered after $took_ms ms (etcd's bound: 8 s)"

answered() { grep -q ' after=[0-9]*$' "$TMP/no-deadline.out"; }
wait_until "the put without a deadline to be answered or given up (h2-probe waits 60 s)" 70 answered
answer=$(cat "$TMP/no-deadline.out")
no_deadline_ms=${answer##* after=}
log "the put without a deadline through $follower with the leader $killed killed: answered after ${no_deadline_ms} ms: $answer"
case "$answer" in
"put grpc-status=0 message= after="*)
	expect_out "after-kill-no-deadline
1" --endpoints="${CLIENT[$survivor]}" get after-kill-no-deadline ;;
"put grpc-status="*)
	[[ "$answer" =~ ^"put grpc-status="[0-9]+" message="$etcd_leader_loss_error" after=" ]] ||
		fail "the put without a deadline was not answered with one of etcd's errors: $answer" ;;
*) fail "the put without a deadline was not answered: $answer (stderr: $(cat "$TMP/no-deadline.err"))" ;;
esac
[ "$no_deadline_ms" -le 12000 ] ||
	fail "the put without a deadline was answered after $no_deadline_ms ms (etcd's bound: 8 s)"
