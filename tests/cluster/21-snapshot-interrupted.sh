#!/usr/bin/env bash
# issue 15: a snapshot transfer interrupted by a restart of either side still ends with the follower caught
# up. Streams are slowed down for the test (QUORUMD_TEST_SNAPSHOT_STREAM: 1 KiB chunks, one in flight; the
# follower's incoming peer frames delayed 5 ms), so a 1-2 MB snapshot takes many seconds.
# (1) The receiving follower is SIGKILLed once its sink has completed a file; restarted, it resumes the same
#     snapshot from where its sink stands ("resumed-at-byte" > 0) instead of from the start, and catches up.
# (2) The sending leader is SIGKILLed mid-transfer, just after it acknowledged a put; the new leader sends its
#     own snapshot and the follower catches up from it, with that put. The old leader restarted, all three
#     agree on `etcdctl endpoint hashkv`.
# Ports: 475x0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snapshot_helpers.sh"
all=(s1 s2 s3)
add_member s1 47510
add_member s2 47520
add_member s3 47530
ic=$(initial_cluster "${all[@]}")
member_flags() { MEMBER_CMD+=(--snapshot-count 500 --snapshot-catchup-entries 100); }
# start NAME [FAULTS]
start() {
	local env_args=(QUORUMD_TEST_SNAPSHOT_STREAM=chunk=1024,window=1)
	[ -z "${2:-}" ] || env_args+=("QUORUMD_TEST_PEER_FAULTS=$2")
	member_cmd "$1" "$ic" new
	start_raw "$1" env "${env_args[@]}" "${MEMBER_CMD[@]}"
}
for n in "${all[@]}"; do start "$n"; done
wait_ready 15 "${all[@]}"
follower=""
for n in "${all[@]}"; do [ "$n" = "$LEADER" ] || follower=$n; done
others=()
for n in "${all[@]}"; do [ "$n" = "$follower" ] || others+=("$n"); done

# sink_has_a_file: the follower's incoming snapshot logged a complete file (its progress log holds more
# than the header record).
sink_has_a_file() {
	local progress size
	progress=$(find "$TMP/$follower/member/snap" -path '*.incoming/db/.archive-progress' 2>/dev/null | head -n 1)
	[ -n "$progress" ] || return 1
	size=$(stat -c %s "$progress")
	[ "$size" -gt 37 ]
}
receiving() { log_has "$follower" '"msg":"receiving database snapshot"'; }

# (1) the receiver restarts mid-transfer
stop_member "$follower"
bench_puts 6000 "${others[@]}"
start "$follower" delay=5
wait_until "$follower receives a snapshot" 30 receiving
wait_until "$follower's sink completed a file" 60 sink_has_a_file
kill9 "$follower"
log_has "$follower" '"msg":"applied snapshot"' && fail "the transfer finished before it could be interrupted"
start "$follower" delay=5
wait_until "$follower caught up after its restart" 120 converged_and_equal "${all[@]}"
resumed=$(log_field "$follower" "receiving database snapshot" resumed-at-byte)
log "the restarted receiver resumed at byte $resumed"
[ -n "$resumed" ] && [ "$resumed" -gt 0 ] || fail "the restarted receiver started the snapshot over (resumed at $resumed)"
log_has "$follower" '"msg":"applied snapshot"' || fail "$follower caught up without installing the snapshot"

# (2) the sender restarts mid-transfer
stop_member "$follower"
bench_puts 6000 "${others[@]}"
: >"$TMP/$follower.log"
start "$follower" delay=5
wait_until "$follower receives a snapshot" 30 receiving
wait_until "$follower's sink completed a file" 60 sink_has_a_file
old_leader=$(leader_among "${others[@]}") || fail "no leader among ${others[*]}"
# A write the sender acknowledged while it was sending: the kill must not lose it.
put_get "$old_leader" during/sending 1
log_has "$follower" '"msg":"applied snapshot"' && fail "the transfer finished before the sender could be killed"
kill9 "$old_leader"
survivors=()
for n in "${all[@]}"; do [ "$n" = "$old_leader" ] || survivors+=("$n"); done
wait_until "$follower caught up from the new leader" 120 converged_and_equal "${survivors[@]}"
log_has "$follower" '"msg":"applied snapshot"' || fail "$follower caught up without installing a snapshot"
for n in "${survivors[@]}"; do
	ctl_ok "$n" get during/sending --consistency=s
	assert_eq "during/sending on $n after the sender's kill" $'during/sending\n1' "$OUT"
done
start "$old_leader"
wait_until "all three converged" 60 converged_and_equal "${all[@]}"
put_get "$follower" after/interruptions 1
