#!/usr/bin/env bash
# issue 15: a damaged snapshot never makes a silent start from wrong state. Three members with
# --snapshot-count 300 take 6,000 puts, then:
# (a) s1 stopped, the meta of the snapshot its WAL continues from flipped: s1 starts from its state (which is
#     past that snapshot), names the damaged file in a warning, sets it aside (NAME.broken) and takes a new
#     snapshot with the first entry it applies;
# (b) s2's state replaced by an older copy of itself (what a crash between the WAL marker and the state
#     swap of an install leaves): s2 installs the snapshot the WAL names before starting, and converges;
# (c) the same on s3 with that snapshot damaged too: s3 refuses to start (exit 1) with an error naming the
#     damaged file, rather than run on a state the log cannot continue.
# After (a) and (b), `etcdctl endpoint hashkv` agrees on s1 and s2 and the leader. Ports: 472x0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snapshot_helpers.sh"
all=(s1 s2 s3)
add_member s1 47210
add_member s2 47220
add_member s3 47230
ic=$(initial_cluster "${all[@]}")
member_flags() { MEMBER_CMD+=(--snapshot-count 300 --snapshot-catchup-entries 50); }
start_new_cluster "${all[@]}"
wait_ready 15 "${all[@]}"

# Older copies of s2's and s3's state, taken while they are stopped (consistent).
for n in s2 s3; do
	stop_member "$n"
	cp -a "$TMP/$n/member/state" "$TMP/$n.old-state"
	start_member "$n" "$ic" new
done
wait_ready 15 "${all[@]}"
bench_puts 6000 "${all[@]}"
wait_until "every member applied everything, same hashkv" 30 converged_and_equal "${all[@]}"

# newest_snapshot NAME: the directory of the member's snapshot with the highest index.
newest_snapshot() {
	find "$TMP/$1/member/snap" -mindepth 1 -maxdepth 1 -type d -name '????????????????-????????????????' |
		sort -t- -k2 | tail -n 1
}
# flip_byte FILE OFFSET
flip_byte() { printf '\xff' | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc status=none; }

# (a)
stop_member s1
damaged=$(newest_snapshot s1)
flip_byte "$damaged/meta" 40
start_member s1 "$ic" new
wait_ready 15 "${all[@]}"
log_has s1 '"msg":"the snapshot the WAL continues from is damaged; the state is past it' ||
	fail "s1 did not warn about its damaged snapshot"
log_has s1 "$damaged/meta: checksum mismatch" || fail "s1's warning does not name $damaged/meta"
[ -d "$damaged.broken" ] || fail "the damaged snapshot was not set aside as $damaged.broken"
put_get s1 after/damage 1
# The new snapshot comes with the first entry applied after the restart (a new leader's, or the put).
has_new_snapshot() {
	[ "$(awk '/"msg":"restarting member"/ { n = 0 } /"msg":"saved snapshot"/ { n++ } END { print n + 0 }' \
		"$TMP/s1.log")" -gt 0 ]
}
wait_until "s1 takes a new snapshot after its restart" 10 has_new_snapshot

# (b)
stop_member s2
rm -rf "$TMP/s2/member/state"
mv "$TMP/s2.old-state" "$TMP/s2/member/state"
start_member s2 "$ic" new
wait_ready 15 "${all[@]}"
log_has s2 '"msg":"restored the state from the snapshot the WAL continues from' ||
	fail "s2 did not install the snapshot its WAL continues from over its older state"
wait_until "every member applied everything after (a) and (b), same hashkv" 30 converged_and_equal "${all[@]}"
ctl_ok s2 get after/damage --consistency=s
assert_eq "after/damage on s2" $'after/damage\n1' "$OUT"

# (c)
stop_member s3
rm -rf "$TMP/s3/member/state"
mv "$TMP/s3.old-state" "$TMP/s3/member/state"
damaged=$(newest_snapshot s3)
flip_byte "$damaged/meta" 40
start_member s3 "$ic" new
wait_exit s3 15
assert_eq "exit code of s3 started on a state behind a damaged snapshot" 1 "$EXIT_CODE"
log_has s3 "the snapshot the WAL continues from is damaged ($damaged/meta: checksum mismatch), and the state is behind it" ||
	fail "s3's error does not name $damaged/meta: $(tail -n 3 "$TMP/s3.log")"
put_get s1 after/refusal 2
