#!/usr/bin/env bash
# issue 18: every member's disk full at once, and the cluster back without a restart. Three members, each data
# dir on its own 64 MiB ext4 file system (loop mounts: the test needs root, else it is skipped, exit 77). After
# 20 puts, ballast leaves each file system 3 MiB free, less than the state keeps for RocksDB's own writes, so
# the next put is committed through Raft (the WALs have room) and acknowledged, but no member can apply it
# (the state answers before its batch is written; the entry is durable in every WAL): all three log
# "failed to commit tx", keep running, and refuse puts with etcd's "database space exceeded"; reads of what
# they applied go on. The ballast is deleted: each member (same PID) resumes applying, the put it could not
# apply first, applies its own NOSPACE alarm and logs that it writes again; puts stay refused until `alarm
# disarm` (which lists the three alarms), then succeed through every member. Every acknowledged put, the one
# made while the disks were full too, is read back from every member. Ports: 484x0.
source "$(dirname "$0")/lib.sh"
require_small_file_systems
all=(s1 s2 s3)
add_member s1 48410
add_member s2 48420
add_member s3 48430
ic=$(initial_cluster "${all[@]}")
for n in "${all[@]}"; do small_file_system 64M "$TMP/$n-fs"; done
data_dir() { echo "$TMP/$1-fs/$1"; }
free_bytes() { df -B1 --output=avail "$TMP/$1-fs" | tail -n 1 | tr -d ' '; }
start() { start_with_wal_segments "$1" $((4 * 1024 * 1024)) "$ic"; }

for n in "${all[@]}"; do start "$n"; done
for n in "${all[@]}"; do wait_until "$n answers a linearizable read" 30 healthy "$n"; done
declare -A STARTED_PID ID
for n in "${all[@]}"; do
	STARTED_PID[$n]=${PID[$n]}
	ID[$n]=$(decimal_id "$n")
done

acked=()
value=$(head -c 102400 /dev/zero | tr '\0' 'v')
for i in $(seq 1 20); do
	ectl s1 put "key$i" "$value"
	assert_eq "put key$i" OK "$OUT"
	acked+=("key$i")
done

# Every disk full at once: 3 MiB left on each, then one put.
for n in "${all[@]}"; do
	fallocate -l $(($(free_bytes "$n") - 3 * 1024 * 1024)) "$TMP/$n-fs/ballast" || fail "ballast on $n's file system"
	log "$n: $(free_bytes "$n") bytes free with the ballast"
done
# (a put that fails, say to a leader change, commits nothing, and nothing fills: the next one is tried)
full() { grep -q '"msg":"out of disk space' "$TMP/$1.log"; }
for attempt in 1 2 3 4 5; do
	ectl s1 put "while-full-$attempt" committed
	log "put $attempt while every disk is full: '$OUT' '$ERR'"
	if [ "$OUT" = OK ]; then
		acked+=("while-full-$attempt")
		break
	fi
	! full s1 || break
done
for n in "${all[@]}"; do wait_until "$n reports it is out of disk space" 15 full "$n"; done
for n in "${all[@]}"; do
	grep '"msg":"failed to commit tx"' "$TMP/$n.log" | grep -qF "\"data-dir\":\"$(data_dir "$n")\"" ||
		fail "$n did not log what failed where"
done
for n in "${all[@]}"; do
	ectl "$n" put refused while-full
	assert_eq "put through $n while every disk is full (stderr)" "Error: $nospace" "$ERR"
	ectl "$n" get key20 --print-value-only --consistency=s
	assert_eq "serializable read of key20 through $n while full" "$value" "$OUT"
done
for n in "${all[@]}"; do
	running "$n" || fail "$n stopped on a full disk"
	! grep -q 'Assertion\|Aborted' "$TMP/$n.log" || fail "$n aborted"
done

# Space back on every member: each resumes in place.
for n in "${all[@]}"; do rm -f "$TMP/$n-fs/ballast"; done
writing() { grep -q '"msg":"the disk has room again: member writing' "$TMP/$1.log"; }
for n in "${all[@]}"; do wait_until "$n logs that it writes again" 30 writing "$n"; done
for n in "${all[@]}"; do
	grep -q '"msg":"the disk has room again: applying resumed"' "$TMP/$n.log" || fail "$n did not log that it applies again"
	assert_eq "$n's PID after it resumed" "${STARTED_PID[$n]}" "${PID[$n]}"
done
ectl s2 put refused before-disarm
assert_eq "put through s2 before the alarms are disarmed (stderr)" "Error: $nospace" "$ERR"
expected=$(for n in "${all[@]}"; do echo "memberID:${ID[$n]} alarm:NOSPACE "; done | sort)
listed() { ectl s1 alarm list; [ "$(sort <<<"$OUT")" = "$expected" ]; }
wait_until "alarm list names the three members' NOSPACE alarms" 10 listed
ectl s1 alarm disarm
assert_eq "alarm disarm (sorted)" "$expected" "$(sort <<<"$OUT")"
for n in "${all[@]}"; do
	ectl "$n" put "after-$n" "v-$n"
	assert_eq "put through $n after the disarm" OK "$OUT"
	acked+=("after-$n")
done

# Nothing acknowledged lost, on any member.
has_acked() {
	local keys
	keys=$(e "$1" get '' --prefix --keys-only --consistency=s | grep -v '^$' | sort) || return 1
	[ "$(comm -23 <(printf '%s\n' "${acked[@]}" | sort) <(printf '%s\n' "$keys"))" = "" ]
}
for n in "${all[@]}"; do wait_until "$n has every acknowledged put" 20 has_acked "$n"; done
for n in "${all[@]}"; do
	ectl "$n" get key1 --print-value-only
	assert_eq "linearizable read of key1 through $n" "$value" "$OUT"
	assert_eq "$n's PID at the end" "${STARTED_PID[$n]}" "${PID[$n]}"
	! grep -q 'Assertion\|Aborted\|AddressSanitizer\|runtime error' "$TMP/$n.log" || fail "$n aborted or a sanitizer reported"
done
log "${#acked[@]} acknowledged puts on every member after all three disks were full"
