#!/usr/bin/env bash
# issue 15: snapshots, log compaction and restart from the newest snapshot plus the WAL tail. Three members
# with --snapshot-count 400 --snapshot-catchup-entries 100 --max-snapshots 2 --max-wals 2, and WAL segments
# of 128 KiB (a test setting, so segments fill and are released within the test) take 15,000 puts: each
# member records snapshots ("saved snapshot"), compacts its log ("compacted Raft logs") and deletes WAL
# segments ("released WAL segments"), and keeps at most 2 snapshots and a handful of WAL files. Each member
# restarted in turn starts from a snapshot and a short WAL tail ("restarting member": snapshot-index past
# 1,000 and fewer WAL entries than 2,000), keys written before and after are there, and `etcdctl endpoint
# hashkv` agrees on all. Then s1 alone, restarted with --force-new-cluster from that data (its log starts at a
# snapshot), serves every value as a one-member cluster. Ports: 471x0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snapshot_helpers.sh"
all=(s1 s2 s3)
add_member s1 47110
add_member s2 47120
add_member s3 47130
ic=$(initial_cluster "${all[@]}")
member_flags() { MEMBER_CMD+=(--snapshot-count 400 --snapshot-catchup-entries 100 --max-snapshots 2 --max-wals 2); }
start() { start_with_wal_segments "$1" 131072 "$ic"; }
for n in "${all[@]}"; do start "$n"; done
wait_ready 15 "${all[@]}"
put_get s1 before/snapshots 1

bench_puts 15000 "${all[@]}"
put_get s2 after/snapshots 2
wait_until "every member applied everything, same hashkv" 30 converged_and_equal "${all[@]}"
before=$HASH
for n in "${all[@]}"; do
	taken=$(count_lines "$n" "saved snapshot")
	[ "$taken" -ge 5 ] || fail "$n took $taken snapshots over 15,000 puts with --snapshot-count 400"
	log_has "$n" '"msg":"compacted Raft logs"' || fail "$n never compacted its log"
	log_has "$n" '"msg":"released WAL segments"' || fail "$n never released WAL segments"
	kept=$(snapshot_dirs "$n")
	[ "$kept" -ge 1 ] && [ "$kept" -le 2 ] || fail "$n keeps $kept snapshots (--max-snapshots 2)"
	files=$(wal_files "$n")
	# --max-wals 2, plus the segment being written, one prepared ahead, and what a snapshot interval adds.
	[ "$files" -le 5 ] || fail "$n keeps $files WAL files (--max-wals 2): $(ls "$TMP/$n/member/wal")"
	log "$n: $taken snapshots taken, $kept kept, $files WAL files"
done

for n in "${all[@]}"; do
	stop_member "$n"
	start "$n"
	wait_ready 15 "${all[@]}"
	snapshot_index=$(log_field "$n" "restarting member" snapshot-index)
	wal_entries=$(log_field "$n" "restarting member" wal-entries)
	log "$n restarted from snapshot $snapshot_index with $wal_entries WAL entries"
	[ -n "$snapshot_index" ] && [ "$snapshot_index" -gt 1000 ] || fail "$n restarted without a snapshot ($snapshot_index)"
	[ -n "$wal_entries" ] && [ "$wal_entries" -lt 2000 ] || fail "$n replayed $wal_entries WAL entries"
done
wait_until "every member applied everything after the restarts" 30 converged_and_equal "${all[@]}"
assert_eq "hashkv after restarting every member" "$before" "$HASH"
for n in "${all[@]}"; do
	ctl_ok "$n" get before/snapshots --consistency=s
	assert_eq "before/snapshots on $n" $'before/snapshots\n1' "$OUT"
	ctl_ok "$n" get after/snapshots --consistency=s
	assert_eq "after/snapshots on $n" $'after/snapshots\n2' "$OUT"
done
put_get s3 after/restarts 3

# --force-new-cluster from data whose log starts at a snapshot: s1 alone, with every value.
wait_until "every member applied the last put" 30 converged_and_equal "${all[@]}"
before=$HASH
for n in "${all[@]}"; do kill9 "$n"; done
start_with_wal_segments s1 131072 "$ic" --force-new-cluster
wait_leader 15 s1
assert_eq "hashkv of s1 forced into a one-member cluster" "$before" "$(hashkv s1)"
ctl_ok s1 member list
assert_eq "members of the forced cluster" 1 "$(wc -l <<<"$OUT")"
put_get s1 after/forced 4
