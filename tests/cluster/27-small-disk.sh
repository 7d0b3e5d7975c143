#!/usr/bin/env bash
# issue 18: a member starts and restarts in a few MiB of free space. Three members, each data dir on its own
# 42 MiB ext4 file system (about 30 MiB free after mkfs; loop mounts, so the test needs root: without root or
# loop devices it is skipped, exit 77), with quorumd's defaults (no test-size WAL segments). Before, a new
# member took about 200 MiB at once (two preallocated 64 MiB WAL segments, RocksDB's 70 MiB preallocated
# log) and could not start. Now each logs that it sized its WAL segments and RocksDB's write buffer to the
# free space (naming it), starts using at most 16 MiB of its file system, takes 40 puts of 100 KiB (4 MiB,
# more than one WAL segment) and 200 small ones, and after a restart of all three (SIGTERM) and then a
# SIGKILL and restart of a follower during puts, every acknowledged put is read back from each member; writes
# go on. Last, s3 restarts with its file system filled to 6 MiB free, serves every put and applies new ones.
# Ports: 482x0.
source "$(dirname "$0")/lib.sh"
require_small_file_systems
all=(s1 s2 s3)
add_member s1 48210
add_member s2 48220
add_member s3 48230
ic=$(initial_cluster "${all[@]}")
for n in "${all[@]}"; do small_file_system 42M "$TMP/$n-fs"; done
data_dir() { echo "$TMP/$1-fs/$1"; }
used_bytes() { df -B1 --output=used "$TMP/$1-fs" | tail -n 1 | tr -d ' '; }
free_bytes() { df -B1 --output=avail "$TMP/$1-fs" | tail -n 1 | tr -d ' '; }
ETCDCTL_TIMEOUT=10s
start() {
	member_cmd "$1" "$ic" "${2:-new}"
	start_raw "$1" "${MEMBER_CMD[@]}"
}

declare -A USED_BEFORE
for n in "${all[@]}"; do
	USED_BEFORE[$n]=$(used_bytes "$n")
	log "$n's file system before start: $(free_bytes "$n") bytes free"
done
for n in "${all[@]}"; do start "$n"; done
for n in "${all[@]}"; do wait_until "$n answers a linearizable read" 30 healthy "$n"; done
for n in "${all[@]}"; do
	taken=$(($(used_bytes "$n") - USED_BEFORE[$n]))
	log "$n took $taken bytes at start; WAL: $(ls -l "$(data_dir "$n")/member/wal" | awk 'NR > 1 { printf "%s %s  ", $9, $5 }')"
	[ "$taken" -le $((16 * 1024 * 1024)) ] || fail "$n took $taken bytes of its file system at start (more than 16 MiB)"
	grep '"msg":"little free space for the WAL; using smaller segments"' "$TMP/$n.log" | grep -q '"free-bytes":[0-9]' ||
		fail "$n did not log that it sized its WAL segments to the free space"
	grep '"msg":"little free space for the state; using smaller RocksDB write buffers"' "$TMP/$n.log" |
		grep -q '"free-bytes":[0-9]' || fail "$n did not log that it sized RocksDB's write buffer to the free space"
	for segment in "$(data_dir "$n")"/member/wal/*; do
		size=$(stat -c %s "$segment")
		[ "$size" -lt $((64 * 1024 * 1024)) ] || fail "$segment is $size bytes: not sized to the free space"
	done
done

# Writes: 40 puts of 100 KiB (more than one 4 MiB WAL segment), then 200 small ones, all through s1.
value=$(head -c 102400 /dev/zero | tr '\0' 'v')
for i in $(seq 1 40); do
	run_captured e s1 put "big$i" "$value"
	assert_eq "put big$i" OK "$OUT"
done
for i in $(seq 1 200); do
	run_captured e s1 put "small$i" "value-$i"
	assert_eq "put small$i" OK "$OUT"
done
for n in "${all[@]}"; do log "$n after the puts: $(free_bytes "$n") bytes free, WAL $(ls "$(data_dir "$n")/member/wal" | tr '\n' ' ')"; done

# every_put NAME: NAME serves all 240 acknowledged puts (a serializable read of its own state).
every_put() {
	[ "$(e "$1" get big --prefix --keys-only --consistency=s | grep -c '^big')" = 40 ] &&
		[ "$(e "$1" get small --prefix --keys-only --consistency=s | grep -c '^small')" = 200 ] &&
		[ "$(e "$1" get big40 --print-value-only --consistency=s | wc -c)" = 102401 ] &&
		[ "$(e "$1" get small200 --print-value-only --consistency=s)" = value-200 ]
}
for n in "${all[@]}"; do wait_until "$n has every acknowledged put" 20 every_put "$n"; done

# All three restart (SIGTERM), on the same small file systems.
for n in "${all[@]}"; do stop_member "$n"; done
for n in "${all[@]}"; do start "$n" existing; done
for n in "${all[@]}"; do wait_until "$n answers a linearizable read after its restart" 30 healthy "$n"; done
for n in "${all[@]}"; do wait_until "$n has every acknowledged put after the restart" 20 every_put "$n"; done
! grep -q 'Assertion\|Aborted\|No space left' "$TMP/s1.log" "$TMP/s2.log" "$TMP/s3.log" ||
	fail "a member ran out of space or aborted"

# A crash (SIGKILL) of a follower other than s1 while s1 takes puts, then restarted: nothing acknowledged is
# lost. (A follower: killing the leader would fail the put in flight, which is not what is tested here.)
is_leader() { [ "$(e "$1" endpoint status | awk -F', ' '{ print $5 }')" = true ]; }
victim=s2
if is_leader s2; then victim=s3; fi
for i in $(seq 201 230); do
	run_captured e s1 put "small$i" "value-$i"
	assert_eq "put small$i" OK "$OUT"
	[ "$i" != 215 ] || kill9 "$victim"
done
start "$victim" existing
wait_until "$victim answers a linearizable read after SIGKILL and restart" 30 healthy "$victim"
has_all_230() { [ "$(e "$1" get small --prefix --keys-only --consistency=s | grep -c '^small')" = 230 ]; }
for n in "${all[@]}"; do wait_until "$n has all 230 small puts" 20 has_all_230 "$n"; done
run_captured e "$victim" put after restart
assert_eq "put through $victim after its restart" OK "$OUT"

# A restart with a few MiB free: s3's file system filled with ballast to 6 MiB free, s3 restarted (SIGTERM
# first). It starts, has every put, and takes more writes.
stop_member s3
fallocate -l $(($(free_bytes s3) - 6 * 1024 * 1024)) "$TMP/s3-fs/ballast" || fail "ballast on s3's file system"
log "s3's file system with ballast: $(free_bytes s3) bytes free"
start s3 existing
wait_until "s3 answers a linearizable read after a restart with 6 MiB free" 30 healthy s3
wait_until "s3 has all 230 small puts after a restart with 6 MiB free" 20 has_all_230 s3
for i in $(seq 231 250); do
	run_captured e s1 put "small$i" "value-$i"
	assert_eq "put small$i with s3 at 6 MiB free" OK "$OUT"
done
s3_has_250() { [ "$(e s3 get small250 --print-value-only --consistency=s)" = value-250 ]; }
wait_until "s3 applies puts with 6 MiB free" 20 s3_has_250
! grep -q 'Assertion\|Aborted\|out of disk space' "$TMP/s3.log" || fail "s3 ran out of space or aborted with 6 MiB free"
for n in "${all[@]}"; do log "$n at the end: $(free_bytes "$n") bytes free"; done
