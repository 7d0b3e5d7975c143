#!/usr/bin/env bash
# Power loss, not just a crash: each member's data dir is on its own lazyfs (tests/lazyfs: a FUSE file system
# that keeps every write in memory until the file is fsynced), and a "power cut" kills the member and its
# lazyfs together, so every write the member never synced is gone, as on a real disk. Three times one member
# (the leader first), then all three at once, while twelve writers run through the cluster. Afterwards every
# acknowledged put is on every member with its value and revision and `endpoint hashkv` agrees: nothing was
# acknowledged before it was durable on a quorum. Also runs against etcd 3.4.23 (run-against-etcd.sh).
# Needs /dev/fuse and tests/lazyfs/lazyfs (libfuse3): skipped without them.
# Ports: 268x0 (client 268x9).
[ $# -ge 3 ] && [ -x "$3" ] || { echo "usage: $0 PATH/quorumd|PATH/etcd PATH/regress-client PATH/lazyfs" >&2; exit 2; }
LAZYFS=$(realpath "$3")
source "$(dirname "$0")/lib.sh"
[ -c /dev/fuse ] || { log "no /dev/fuse"; exit 77; }

all=(m1 m2 m3)
data_dir() { echo "$TMP/$1.mnt/data"; }
# mount_lazyfs NAME: the member's lazyfs over TMP/NAME.backing at TMP/NAME.mnt, in the foreground of a
# tracked process (its PID in LAZYFS_PID[NAME]); returns once the mount answers.
declare -A LAZYFS_PID=()
mount_lazyfs() {
	mkdir -p "$TMP/$1.backing" "$TMP/$1.mnt"
	"$LAZYFS" "$TMP/$1.backing" "$TMP/$1.mnt" -f -o max_threads=64 2>>"$TMP/$1.lazyfs.log" &
	LAZYFS_PID[$1]=$!
	track_pid "$!"
	[ -n "${UNMOUNT_AT_EXIT[$1]:-}" ] || at_cleanup unmount_lazyfs "$1"
	UNMOUNT_AT_EXIT[$1]=yes
	wait_until "lazyfs mounted for $1" 10 mounted "$1"
}
declare -A UNMOUNT_AT_EXIT=()
mounted() { mountpoint -q "$TMP/$1.mnt"; }
# At exit the lazyfs processes are already killed: a dead FUSE mount does not answer mountpoint, so unmount
# whatever is there.
unmount_lazyfs() { fusermount3 -u -z "$TMP/$1.mnt" 2>/dev/null || true; }
# power_cut NAME...: the members and their file systems die together; what they had not synced is lost.
power_cut() {
	local n pids=()
	for n in "$@"; do pids+=(${PID[$n]:-} "${LAZYFS_PID[$n]}"); done
	kill_pids "${pids[@]}" || fail "a member or its lazyfs survived SIGKILL"
	for n in "$@"; do
		[ -z "${PID[$n]:-}" ] || unset "PID[$n]"
		fusermount3 -u -z "$TMP/$n.mnt" || fail "unmounting $n's lazyfs"
	done
	log "power cut: $* with $(acked_count) puts acknowledged"
}
restart() {
	local n
	for n in "$@"; do mount_lazyfs "$n"; done
	# shellcheck disable=SC2046
	for n in "$@"; do start_member "$n" "$IC" new $(snapshot_flags 500 100); done
}

# The instrument first: a write never synced is gone after a power cut, a synced one is not.
mount_lazyfs probe
printf synced >"$TMP/probe.mnt/synced" && sync "$TMP/probe.mnt/synced"
printf unsynced >"$TMP/probe.mnt/unsynced"
power_cut probe
assert_eq "a synced file after the power cut" synced "$(cat "$TMP/probe.backing/synced")"
assert_eq "size of a never-synced file after the power cut" 0 "$(stat -c %s "$TMP/probe.backing/unsynced")"

add_member m1 26810
add_member m2 26820
add_member m3 26830
IC=$(initial_cluster "${all[@]}")
restart "${all[@]}"
wait_ready 30 "${all[@]}"
start_writer power "$(endpoints "${all[@]}")" 12
for victim in "$LEADER" m1 m2; do
	wait_until "300 more acknowledged puts before the power cut of $victim" 60 acked_at_least $(($(acked_count) + 300))
	power_cut "$victim"
	wait_until "200 more acknowledged puts while $victim is off" 60 acked_at_least $(($(acked_count) + 200))
	restart "$victim"
	wait_until "$victim answering after its power cut" 30 all_healthy "$victim"
done
wait_until "300 more acknowledged puts before the whole cluster loses power" 60 acked_at_least $(($(acked_count) + 300))
power_cut "${all[@]}"
restart "${all[@]}"
wait_ready 60 "${all[@]}"
wait_until "300 more acknowledged puts after the cluster's power came back" 60 acked_at_least $(($(acked_count) + 300))
stop_writer
wait_until "every member's applied index at the leader's" 60 applied_converged "${all[@]}"
wait_until "one hash at one revision on every member (endpoint hashkv)" 30 hashkv_equal "${all[@]}"
log "hashkv: $HASHKV"
check_acked "$(endpoints "${all[@]}")"
