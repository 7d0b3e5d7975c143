#!/usr/bin/env bash
# issue 18: a member whose disk filled resumes by itself once space is freed, without a restart. Three members;
# s3's WAL (--wal-dir) is on a 32 MiB ext4 file system with 12 MiB of ballast (a loop mount: the test needs
# root, else it is skipped, exit 77), so its WAL is what fills (tests/cluster/29 fills the state). 1 MiB puts
# through s1 fill it: s3 logs etcd's "failed to save Raft hard state and entries", raises its NOSPACE alarm
# and the cluster refuses puts with etcd's error. Then the ballast is deleted: the same s3 process (same PID)
# logs that its WAL resumed (it continues from what is on disk and writes again what Raft handed out after its
# durable index) and that it writes again; until an operator disarms the alarm, puts are still refused
# (etcd's behaviour); after `alarm disarm`, puts through s3 and through s1 succeed and s3 serves them. Every
# put acknowledged before the disk filled is read back, byte for byte, from s3, and its key from each member;
# restarted, s3 opens the WAL it wrote after resuming and still has everything. Ports: 483x0.
source "$(dirname "$0")/lib.sh"
require_small_file_systems
all=(s1 s2 s3)
add_member s1 48310
add_member s2 48320
add_member s3 48330
ic=$(initial_cluster "${all[@]}")
mount_point=$TMP/s3-wal-fs
small_file_system 32M "$mount_point"
dd if=/dev/zero of="$mount_point/ballast" bs=1M count=12 status=none || fail "ballast"
member_flags() { if [ "$1" = s3 ]; then MEMBER_CMD+=(--wal-dir "$mount_point/wal"); fi; }
start() { start_with_wal_segments "$1" $((4 * 1024 * 1024)) "$ic"; }

for n in "${all[@]}"; do start "$n"; done
for n in "${all[@]}"; do wait_until "$n answers a linearizable read" 20 healthy "$n"; done
s3_id=$(decimal_id s3)
s3_pid=${PID[s3]}

# 1 MiB puts of random bytes through s1 until s3 is out of space; each acknowledged one's checksum is kept.
mkdir -p "$TMP/values"
declare -A SUM
acked=()
s3_full() { grep -q '"msg":"out of disk space' "$TMP/s3.log"; }
puts=0
until s3_full; do
	[ $puts -lt 120 ] || fail "s3 never ran out of space after $puts puts of 1 MiB"
	head -c 1048576 /dev/urandom >"$TMP/values/key$puts"
	run_captured bash -c "etcdctl --endpoints=${CLIENT[s1]} --command-timeout=10s put key$puts <'$TMP/values/key$puts'"
	if [ "$RC" -eq 0 ] && [ "$OUT" = OK ]; then
		acked+=("key$puts")
		SUM[key$puts]=$(md5sum <"$TMP/values/key$puts" | cut -d' ' -f1)
	fi
	puts=$((puts + 1))
done
log "s3 out of space after $puts puts (${#acked[@]} acknowledged); $(df -h --output=used,avail "$mount_point" | tail -n 1)"
grep '"msg":"failed to save Raft hard state and entries"' "$TMP/s3.log" | grep -F "$mount_point/wal" |
	grep -q 'No space left on device' || fail "s3 did not log that its WAL's disk is full"

alarm="memberID:$s3_id alarm:NOSPACE "
listed() { ectl s1 alarm list; [ "$OUT" = "$alarm" ]; }
wait_until "alarm list through s1 names s3's NOSPACE" 10 listed
ectl s1 put refused while-full
assert_eq "put through s1 while s3 is full (stderr)" "Error: $nospace" "$ERR"
ectl s3 put refused while-full
assert_eq "put through the full s3 (stderr)" "Error: $nospace" "$ERR"
running s3 || fail "s3 stopped on a full disk"

# Space comes back. s3 resumes by itself: the same process.
rm -f "$mount_point/ballast"
log "ballast freed: $(df -h --output=used,avail "$mount_point" | tail -n 1)"
writing() { grep -q '"msg":"the disk has room again: member writing' "$TMP/s3.log"; }
wait_until "s3 logs that it writes again" 30 writing
assert_eq "s3's PID after it resumed" "$s3_pid" "${PID[s3]}"
running s3 || fail "s3 is not running after it resumed"
grep -q '"msg":"the disk has room again: WAL resumed"' "$TMP/s3.log" || fail "s3 did not log that its WAL resumed"
! grep -q 'Assertion\|Aborted\|AddressSanitizer' "$TMP/s3.log" || fail "s3 aborted"

# Until the alarm is disarmed, writes stay refused (etcd keeps a NOSPACE alarm until disarmed).
ectl s3 put refused before-disarm
assert_eq "put through s3 before the alarm is disarmed (stderr)" "Error: $nospace" "$ERR"
ectl s1 alarm disarm
assert_eq "alarm disarm" "$alarm" "$OUT"
put_ok() { ectl "$1" put "$2" "$3"; [ "$OUT" = OK ]; }
wait_until "a put through s3 succeeds after the disarm" 10 put_ok s3 after-disarm-s3 v3
ectl s1 put after-disarm-s1 v1
assert_eq "put through s1 after the disarm" OK "$OUT"
ectl s3 get after-disarm-s1 --print-value-only
assert_eq "linearizable get through s3 of the put through s1" v1 "$OUT"
assert_eq "s3's PID at the end" "$s3_pid" "${PID[s3]}"

# Nothing acknowledged was lost: every acknowledged key on every member, and s3's values byte for byte.
has_acked() {
	local keys
	keys=$(e "$1" get key --prefix --keys-only --consistency=s | grep '^key' | sort) || return 1
	[ "$(comm -23 <(printf '%s\n' "${acked[@]}" | sort) <(printf '%s\n' "$keys"))" = "" ]
}
for n in "${all[@]}"; do wait_until "$n has every acknowledged put" 30 has_acked "$n"; done
for key in "${acked[@]}"; do
	e s3 get "$key" --print-value-only --consistency=s >"$TMP/value"
	sum=$(head -c 1048576 "$TMP/value" | md5sum | cut -d' ' -f1)
	assert_eq "checksum of $key read through s3" "${SUM[$key]}" "$sum"
done
for n in "${all[@]}"; do
	ectl "$n" get after-disarm-s3 --print-value-only --consistency=s
	[ "$OUT" = v3 ] || wait_until "$n has the put made through s3 after the disarm" 10 \
		bash -c "[ \"\$(etcdctl --endpoints=${CLIENT[$n]} get after-disarm-s3 --print-value-only --consistency=s)\" = v3 ]"
done
log "${#acked[@]} acknowledged puts of 1 MiB read back after s3 resumed in place"

# The WAL written after the resume opens again: s3 restarted (SIGTERM) has everything.
stop_member s3
start s3
wait_until "s3 answers a linearizable read after a restart" 30 healthy s3
has_after_disarm() { [ "$(e s3 get after-disarm-s1 --print-value-only --consistency=s)" = v1 ]; }
wait_until "s3 has the puts made after the disarm, after a restart" 10 has_after_disarm
has_acked s3 || fail "s3 lacks an acknowledged put after a restart"
! grep -q 'Assertion\|Aborted\|AddressSanitizer\|runtime error' "$TMP/s3.log" || fail "s3 aborted or a sanitizer reported"
