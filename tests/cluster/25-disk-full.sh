#!/usr/bin/env bash
# issue 18: a full disk is an error, not an abort. Three members; s3's data dir is a 160 MiB ext4 file system
# (a loop mount, so the test needs root; without root or a loop device it is skipped, exit 77; about 80 MiB
# of it go at start to RocksDB's preallocated log and two 4 MiB WAL segments, a test size). 1 MiB puts
# through s1 fill s3's disk: s3 logs what failed where ("failed to commit tx" or "failed to save Raft hard
# state and entries", with its data dir and the error), keeps running (no abort: before, RocksDB's
# `sync_without_flush_called_` assertion killed it), raises its NOSPACE alarm through Raft (the other two
# commit it: `alarm list` through s1 names s3), refuses a put with etcd's "database space exceeded", answers a
# serializable read and says /health false; s1 refuses puts too (the alarm); SIGTERM stops s3 with exit code
# 0. Then the space comes back (the
# 24 MiB of ballast freed), s3 restarted catches up with nothing lost, `alarm disarm`, and a put works.
# Ports: 481x0.
source "$(dirname "$0")/lib.sh"
require_small_file_systems
all=(s1 s2 s3)
add_member s1 48110
add_member s2 48120
add_member s3 48130
ic=$(initial_cluster "${all[@]}")
mount_point=$TMP/s3-fs
small_file_system 160M "$mount_point"
# 24 MiB of ballast, freed later to give the space back.
dd if=/dev/zero of="$mount_point/ballast" bs=1M count=24 status=none || fail "ballast"
data_dir() { if [ "$1" = s3 ]; then echo "$mount_point/s3"; else echo "$TMP/$1"; fi; }
health_body() { curl -s --max-time 3 "${CLIENT[$1]}/health"; }
# Small WAL segments on the small file system (64 MiB ones would not fit twice).
start() { start_with_wal_segments "$1" $((4 * 1024 * 1024)) "$ic"; }

for n in "${all[@]}"; do start "$n"; done
for n in "${all[@]}"; do wait_until "$n answers a linearizable read" 20 healthy "$n"; done
s3_id=$(decimal_id s3)
log "s3's file system at start: $(df -h --output=used,avail "$mount_point" | tail -n 1)"

puts=0
s3_full() { grep -q '"msg":"out of disk space' "$TMP/s3.log"; }
until s3_full; do
	[ $puts -lt 120 ] || fail "s3 never ran out of space after $puts puts of 1 MiB"
	run_captured bash -c "dd if=/dev/urandom bs=1024 count=1024 2>/dev/null | etcdctl --endpoints=${CLIENT[s1]} --command-timeout=10s put key$puts"
	[ "$RC" -eq 0 ] || break
	puts=$((puts + 1))
done
wait_until "s3 reports it is out of disk space" 10 s3_full
log "s3 out of space after $puts puts; $(df -h --output=used,avail "$mount_point" | tail -n 1)"
grep -E '"msg":"(failed to commit tx|failed to save Raft hard state and entries)"' "$TMP/s3.log" |
	grep -qF "\"data-dir\":\"$mount_point/s3\"" || fail "s3 did not log what failed where"
grep -E '"msg":"(failed to commit tx|failed to save Raft hard state and entries)"' "$TMP/s3.log" |
	grep -q 'o space left on device' || fail "s3's log line does not say the disk is full"
running s3 || fail "s3 stopped on a full disk"

alarm="memberID:$s3_id alarm:NOSPACE "
listed() { ectl s1 alarm list; [ "$OUT" = "$alarm" ]; }
wait_until "alarm list through s1 names s3's NOSPACE" 10 listed
ectl s1 put after full
assert_eq "put through s1 under s3's alarm (stderr)" "Error: $nospace" "$ERR"
ectl s3 put after full
assert_eq "put through the full s3 (stderr)" "Error: $nospace" "$ERR"
run_captured bash -c "etcdctl --endpoints=${CLIENT[s3]} get key0 --consistency=s --print-value-only | wc -c"
assert_eq "bytes of key0 (and a newline) read through the full s3" 1048577 "$OUT"
assert_eq "/health of the full s3" '{"health":"false"}' "$(health_body s3)"
e s3 endpoint status -w json | grep -qF "\"$alarm\"" || fail "s3's endpoint status does not list its alarm"
running s3 || fail "s3 stopped while full"
! grep -q 'Assertion\|Aborted' "$TMP/s3.log" || fail "s3 aborted"

# A full member stops cleanly on SIGTERM. Then space comes back (the ballast freed); s3 restarted catches up,
# the alarm is disarmed, writes work again.
kill -TERM "${PID[s3]}"
wait_exit s3 15
assert_eq "exit code of the full s3 after SIGTERM" 0 "$EXIT_CODE"
unset "PID[s3]"
rm -f "$mount_point/ballast"
log "s3's file system with the ballast freed: $(df -h --output=used,avail "$mount_point" | tail -n 1)"
start s3
wait_until "s3 answers a linearizable read after its restart" 30 healthy s3
last=$((puts - 1))
caught_up() { [ "$(e s3 get "key$last" --consistency=s --print-value-only 2>/dev/null | wc -c)" -gt 1000000 ]; }
wait_until "s3 has every acknowledged put" 30 caught_up
ectl s1 alarm disarm
assert_eq "alarm disarm" "$alarm" "$OUT"
ectl s3 put after space
assert_eq "put through s3 after the recovery" OK "$OUT"
ectl s1 put after space
assert_eq "put through s1 after the recovery" OK "$OUT"
