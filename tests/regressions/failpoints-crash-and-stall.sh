#!/usr/bin/env bash
# quorumd's failpoints (common/failpoint.h, armed through QUORUMD_FAILPOINTS; etcd's own names): a member is
# crashed (SIGKILL from inside, as a power cut leaves the process) at every point in turn — writing and
# syncing the WAL, sending as leader and as follower, committing applied entries to RocksDB and doing so
# with a compaction, saving a snapshot, releasing WAL segments, installing the leader's snapshot (before its
# WAL marker, between the marker and the state's swap, after the swap), before and after defragmenting the
# state — while
# eight writers and a compactor run through all three members; once it has died there it is restarted
# unarmed. Then the leader stalls 2 s before a WAL write. At the end every acknowledged put is on every
# member with its value and revision, and `endpoint hashkv` gives one hash at one revision on all three.
# quorumd only (etcd's failpoints need a gofail build): against etcd the test is skipped.
# Ports: 266x0 (client 266x9).
source "$(dirname "$0")/lib.sh"
[ "$KIND" = quorumd ] || { log "etcd's failpoints need a gofail build of etcd"; exit 77; }

all=(m1 m2 m3)
add_member m1 26610
add_member m2 26620
add_member m3 26630
IC=$(initial_cluster "${all[@]}")
# Snapshots every 200 requests with 20 entries kept, small WAL segments: every point is reached within a few
# hundred puts.
FLAGS=(--snapshot-count=200 --snapshot-catchup-entries=20)
# start_armed NAME [FAILPOINTS]: starts (or restarts) the member, with those failpoints armed if given.
start_armed() {
	member_cmd "$1" "$IC" new
	start_raw "$1" env QUORUMD_TEST_WAL_SEGMENT_BYTES=65536 ${2:+"QUORUMD_FAILPOINTS=$2"} "${MEMBER_CMD[@]}" \
		"${FLAGS[@]}"
}
for n in "${all[@]}"; do start_armed "$n"; done
wait_ready 20 "${all[@]}"
all_endpoints=$(endpoints "${all[@]}")
start_writer failpoints "$all_endpoints" 8
(
	while [ ! -f "$TMP/stop-writer" ]; do
		# (a compaction refused because another member's answer raced it changes nothing)
		rev=$("$REGRESS_CLIENT" revision -endpoints "$all_endpoints" 2>/dev/null) &&
			"$ETCDCTL" --endpoints="$all_endpoints" compaction $((rev - 100)) >/dev/null 2>&1 || true
		sleep 0.5 # the compaction's pace, not a wait for a condition
	done
) &
track_pid "$!"
wait_until "the first acknowledged puts" 30 acked_at_least 300

fired_at() { grep -q "\"msg\":\"failpoint fired\".*\"failpoint\":\"$2\"" "$TMP/$1.log"; }
# crash_at POINT ARMING VICTIM [THEN]: restarts VICTIM with POINT armed (ARMING: "crash", "5*crash", ...),
# runs THEN VICTIM if given, waits until it died there, restarts it unarmed and waits until it answers again.
crash_at() {
	local point=$1 arming=$2 victim=$3
	if running "$victim"; then stop_member "$victim"; fi
	start_armed "$victim" "$point=$arming"
	[ -z "${4:-}" ] || "$4" "$victim"
	wait_until "$victim to crash at $point" 60 not_running "$victim"
	fired_at "$victim" "$point" || fail "$victim died, but not at $point: $(grep -v '"level":"info"' "$TMP/$victim.log" | tail -n 5)"
	# Its main thread is a zombie once it died, but the other threads may still be tearing down (io_uring) with
	# the WAL's lock held: reaping waits until the whole process is gone, so the restart finds the lock free.
	reap_pid "${PID[$victim]}"
	unset "PID[$victim]"
	log "$victim crashed at $point with $(acked_count) puts acknowledged"
	start_armed "$victim"
	wait_until "$victim answering after its crash at $point" 30 all_healthy "$victim"
}
leader() { leader_among "${all[@]}"; }
follower() {
	local lead n
	lead=$(leader)
	for n in "${all[@]}"; do [ "$n" = "$lead" ] || { echo "$n"; return; }; done
}

# A restarted member is a follower: the leader hands its leadership over (move-leader) once it answers.
make_leader() {
	wait_until "$1 answering before it is made leader" 30 all_healthy "$1"
	ctl --endpoints="${CLIENT[$(leader)]}" move-leader "$(member_id "$1")"
	[ "$RC" -eq 0 ] || fail "move-leader to $1: $ERR"
}
crash_at raftBeforeLeaderSend 20*crash "$(follower)" make_leader
crash_at raftBeforeSave 20*crash m1
crash_at raftAfterSave 20*crash m2
crash_at beforeCommit 10*crash m3
crash_at afterCommit 10*crash m1
crash_at compactBeforeCommitScheduledCompact crash m2
crash_at compactAfterCommitScheduledCompact crash m3
crash_at raftBeforeSaveSnap crash m1
crash_at raftAfterSaveSnap crash m2
crash_at raftAfterWALRelease crash m3
crash_at raftBeforeFollowerSend 20*crash "$(follower)"
# The leader's snapshot reaches a member that missed more than the 20 entries kept behind it: it dies once the
# snapshot is received (before its WAL marker), between the durable marker and the state's swap, and once the
# state is swapped.
restored_count() { grep -c '"msg":"restored the state from the snapshot the WAL continues from' "$TMP/$1.log" || true; }
for point in raftBeforeApplySnap applyBeforeOpenSnapshot raftAfterApplySnap; do
	victim=$(follower)
	stop_member "$victim"
	wait_until "300 more puts while $victim is down" 60 acked_at_least $(($(acked_count) + 300))
	restored=$(restored_count "$victim")
	crash_at "$point" crash "$victim"
	# Killed with the marker durable and the old state below it, the restart installs the snapshot first.
	[ "$point" != applyBeforeOpenSnapshot ] || [ "$(restored_count "$victim")" -gt "$restored" ] ||
		fail "$victim restarted after $point without installing the snapshot its WAL continues from"
done
# etcd's defragmentation points: the member defragments its state (etcdctl defrag through it) under the load and
# the compactor, and dies before the rewrite starts or once it is done; the crash's failure of the call is expected.
defrag_through() {
	wait_until "$1 answering before its defragmentation" 30 all_healthy "$1"
	"$ETCDCTL" --endpoints="${CLIENT[$1]}" --command-timeout=60s defrag >>"$TMP/defrag.log" 2>&1 &
	track_pid "$!"
}
crash_at defragBeforeCopy crash m1 defrag_through
crash_at defragBeforeRename crash m2 defrag_through
# A stall instead of a crash: the leader stops 2 s before one WAL write; the others may elect another.
stalled=$(leader)
stop_member "$stalled"
start_armed "$stalled" "raftBeforeSave=50*sleep(2000)"
wait_until "$stalled to stall before a WAL write" 60 fired_at "$stalled" raftBeforeSave
wait_until "300 more puts after the stall" 60 acked_at_least $(($(acked_count) + 300))
running "$stalled" || fail "$stalled died in a stall"

stop_writer
wait_until "every member's applied index at the leader's" 60 applied_converged "${all[@]}"
wait_until "one hash at one revision on every member (endpoint hashkv)" 30 hashkv_equal "${all[@]}"
log "hashkv: $HASHKV"
check_acked "$all_endpoints"
