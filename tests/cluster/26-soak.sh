#!/usr/bin/env bash
# issue 15: the soak test. Memory and disk of every member stay bounded while history grows, a follower
# that missed a quarter of the writes catches up by snapshot, and a member added afterwards joins by one.
#
# Three members with --snapshot-count 10000 take N puts (SOAK_PUTS, default 200,000: CI's short form; the
# issue's full form is SOAK_PUTS=2000000) of 256-byte values over 10,000 keys, in eight rounds of N/8; each
# member's RSS (/proc/PID/status) and data-dir size (du, hard-linked snapshot files counted once) are
# logged after every round. The first quarter is the warm-up: by N/4 every bounded structure has reached its
# bound, so what still grows after it grows with history. Asserted: at N each member's RSS and data-dir size
# are within 1.25x of its own at N/4, and each took at least N/10000 - 2 snapshots.
#   Why N/4 is enough: snapshots come every 10,000 requests (5 or more by N/4, so --max-snapshots' 5 are on
#   disk and the in-memory log is cut to --snapshot-catchup-entries); the MVCC history is compacted to the last
#   10,000 revisions (revision auto-compaction, looking every second instead of etcd's 5 minutes, a test
#   setting: without compaction the history, and so RocksDB, grows with every put, in etcd as well); and
#   --max-wals 1 bounds the WAL at 2 preallocated 64 MiB segments (the active one, which is the one file
#   with records kept, and the one prepared ahead) from the start. With etcd's default of 5 the WAL's bound
#   (6 segments) is reached only after 5 segments of records, more than the full form's first quarter, so
#   the comparison at N/4 would measure the WAL filling up to its bound, not growth.
# Then a follower is stopped for N/4 more puts and restarted: it installs the leader's snapshot ("applied
# snapshot" in its log) and its applied index reaches the leader's within 120 s. A fourth member added with
# `member add` and started with --initial-cluster-state existing joins by snapshot too, and `etcdctl endpoint
# hashkv` is equal on all four. Ports: 490x0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snapshot_helpers.sh"
PUTS=${SOAK_PUTS:-200000}
[[ "$PUTS" =~ ^[0-9]+$ ]] && [ "$PUTS" -ge 80000 ] || fail "SOAK_PUTS=$PUTS: a whole number of at least 80,000 (8 rounds of 10,000)"
ROUND=$((PUTS / 8))
all=(s1 s2 s3)
add_member s1 49010
add_member s2 49020
add_member s3 49030
add_member s4 49040
ic=$(initial_cluster "${all[@]}")
member_flags() {
	MEMBER_CMD+=(--snapshot-count 10000 --max-wals 1
		--auto-compaction-mode revision --auto-compaction-retention 10000)
}
start() {
	member_cmd "$1" "$2" "$3"
	start_raw "$1" env QUORUMD_TEST_COMPACTION_CHECK_MS=1000 "${MEMBER_CMD[@]}"
}
for n in "${all[@]}"; do start "$n" "$ic" new; done
wait_ready 15 "${all[@]}"

# soak_puts COUNT NAME...: COUNT puts of 256-byte values over 10,000 keys through the named members.
soak_puts() {
	local count=$1 endpoints="" n
	shift
	for n in "$@"; do endpoints+="${endpoints:+,}$(client_hostport "$n")"; done
	"$BENCH" --endpoints="$endpoints" --conns=$# --clients=64 --total="$count" --progress=false --timeout=10s \
		put --key-space-size=10000 --val-size=256 --json >"$TMP/bench.out" 2>&1 ||
		fail "quorum-bench put $count through $*: $(tail -5 "$TMP/bench.out")"
	local ok
	ok=$(sed -n 's/.*"ok": *\([0-9]*\).*/\1/p' "$TMP/bench.out")
	[ "$ok" = "$count" ] || fail "quorum-bench: $ok of $count puts succeeded: $(head -c 600 "$TMP/bench.out")"
	RATE=$(sed -n 's/.*"throughput": *\([0-9]*\).*/\1/p' "$TMP/bench.out")
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/${PID[$1]}/status"; }
# dir_kib NAME: the bytes in the member's data dir, in KiB (du --apparent-size: a file hard-linked from
# several snapshots counts once; a WAL segment counts its full 64 MiB, as it is created at that size).
# Allocated blocks would swing by 70 MiB from one moment to the next: RocksDB preallocates each of its own
# log files to 1.1x its 64 MiB memtable, and a snapshot's memtable flush starts a new one and deletes the
# old. disk_kib NAME: allocated blocks, logged for reading.
dir_kib() { du -sk --apparent-size "$TMP/$1" | awk '{ print $1 }'; }
disk_kib() { du -sk "$TMP/$1" | awk '{ print $1 }'; }

declare -A RSS_QUARTER=() DIR_QUARTER=() RSS_FULL=() DIR_FULL=()
log "soak: $PUTS puts in 8 rounds of $ROUND (warm-up: the first 2 rounds)"
for ((round = 1; round <= 8; round++)); do
	soak_puts "$ROUND" "${all[@]}"
	line="after $((round * ROUND)) puts ($RATE puts/s):"
	for n in "${all[@]}"; do
		rss=$(rss_kib "$n")
		dir=$(dir_kib "$n")
		line+=" $n rss $((rss / 1024)) MiB dir $((dir / 1024)) MiB (disk $(($(disk_kib "$n") / 1024))), $(snapshot_dirs "$n") snap, $(wal_files "$n") wal;"
		if [ "$round" = 2 ]; then
			RSS_QUARTER[$n]=$rss
			DIR_QUARTER[$n]=$dir
		elif [ "$round" = 8 ]; then
			RSS_FULL[$n]=$rss
			DIR_FULL[$n]=$dir
		fi
	done
	log "$line"
done
for n in "${all[@]}"; do
	# within 1.25x: 4 * at_N <= 5 * at_quarter
	[ $((4 * RSS_FULL[$n])) -le $((5 * RSS_QUARTER[$n])) ] ||
		fail "$n: RSS grew from ${RSS_QUARTER[$n]} KiB at $((PUTS / 4)) puts to ${RSS_FULL[$n]} KiB at $PUTS (more than 1.25x)"
	[ $((4 * DIR_FULL[$n])) -le $((5 * DIR_QUARTER[$n])) ] ||
		fail "$n: data dir grew from ${DIR_QUARTER[$n]} KiB at $((PUTS / 4)) puts to ${DIR_FULL[$n]} KiB at $PUTS (more than 1.25x): $(du -sk "$TMP/$n"/member/* | tr '\n' ' ')"
	taken=$(count_lines "$n" "saved snapshot")
	[ "$taken" -ge $((PUTS / 10000 - 2)) ] || fail "$n took $taken snapshots over $PUTS puts with --snapshot-count 10000"
	log_has "$n" '"msg":"compacted Raft logs"' || fail "$n never compacted its Raft log"
done
grep -qF '"msg":"starting auto revision compaction"' "$TMP"/s[123].log || fail "no member auto-compacted the history"

# A follower stopped for N/4 puts catches up by snapshot.
wait_leader 15 "${all[@]}"
follower=""
for n in "${all[@]}"; do [ "$n" = "$LEADER" ] || follower=$n; done
others=()
for n in "${all[@]}"; do [ "$n" = "$follower" ] || others+=("$n"); done
stop_member "$follower"
soak_puts $((PUTS / 4)) "${others[@]}"
applied_before=$(count_lines "$follower" "applied snapshot")
start "$follower" "$ic" new
restarted=$SECONDS
wait_until "$follower's applied index reaches the leader's" 120 applied_converged "${all[@]}"
log "$follower caught up $((PUTS / 4)) puts in ~$((SECONDS - restarted)) s"
[ "$(count_lines "$follower" "applied snapshot")" -gt "$applied_before" ] ||
	fail "$follower caught up without installing a snapshot"
log_has "$follower" '"msg":"received and saved database snapshot"' || fail "$follower logged no received snapshot"
wait_until "same hashkv on the three members" 30 converged_and_equal "${all[@]}"

# A member added now joins by snapshot.
ctl_ok "$LEADER" member add s4 --peer-urls="${PEER[s4]}"
ic4=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$OUT")
[ -n "$ic4" ] || fail "member add s4 printed no ETCD_INITIAL_CLUSTER: $OUT"
start s4 "$ic4" existing
wait_until "s4 caught up, same hashkv on all four" 120 converged_and_equal s1 s2 s3 s4
log_has s4 '"msg":"joining an existing cluster"' || fail "s4 did not join as a new member"
log_has s4 '"msg":"applied snapshot"' || fail "s4 caught up without a snapshot"
log "hashkv on all four members: $HASH"
for n in s1 s2 s3 s4; do log "$n: rss $(($(rss_kib "$n") / 1024)) MiB, dir $(($(dir_kib "$n") / 1024)) MiB"; done
