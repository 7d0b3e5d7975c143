#!/usr/bin/env bash
# issue 15: etcd 3.4's auto-compaction. Revision mode (--auto-compaction-mode revision
# --auto-compaction-retention 50, looking every 300 ms instead of etcd's 5 minutes: a test setting): after
# 500 puts the leader logs "starting auto revision compaction" at the current revision minus 50, and on every
# member a read at that revision works while one below it fails with etcd's "required revision has been
# compacted". Periodic mode (--auto-compaction-retention 2s, restarted): the leader compacts every 2 s to the
# revision of 2 s before; once it logged a compaction at or past a revision written earlier, that revision's
# predecessor is compacted on every member and every newer revision is readable. Ports: 476x0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snapshot_helpers.sh"
all=(s1 s2 s3)
add_member s1 47610
add_member s2 47620
add_member s3 47630
ic=$(initial_cluster "${all[@]}")
MODE=(--auto-compaction-mode revision --auto-compaction-retention 50)
member_flags() { MEMBER_CMD+=("${MODE[@]}"); }
start() {
	member_cmd "$1" "$ic" new
	start_raw "$1" env QUORUMD_TEST_COMPACTION_CHECK_MS=300 "${MEMBER_CMD[@]}"
}
compacted="etcdserver: mvcc: required revision has been compacted"

# revision NAME: the member's current store revision (etcd's response header).
revision() {
	etcdctl --endpoints="$(client_hostport "$1")" --command-timeout=3s endpoint status -w json 2>/dev/null |
		sed -n 's/.*"revision":\([0-9]*\).*/\1/p'
}
# compacted_at REV: on every member a get at REV works and one at REV-1 is refused as compacted.
compacted_at() {
	local n out
	for n in "${all[@]}"; do
		out=$(etcdctl --endpoints="$(client_hostport "$n")" --command-timeout=3s get some/key --rev="$(($1 - 1))" 2>&1) &&
			return 1
		case "$out" in *"$compacted"*) ;; *) return 1 ;; esac
		etcdctl --endpoints="$(client_hostport "$n")" --command-timeout=3s get some/key --rev="$1" >/dev/null 2>&1 ||
			return 1
	done
}

for n in "${all[@]}"; do start "$n"; done
wait_ready 15 "${all[@]}"
bench_puts 500 "${all[@]}"
wait_until "every member applied the puts" 20 applied_converged "${all[@]}"
current=$(revision s1)
[ -n "$current" ] && [ "$current" -gt 500 ] || fail "revision after 500 puts: '$current'"
target=$((current - 50))
logged_target() { grep -qF "\"msg\":\"starting auto revision compaction\",\"revision\":$target," "$TMP/$LEADER.log"; }
wait_until "the leader compacts to revision $target" 10 logged_target
wait_until "every member compacted at revision $target" 10 compacted_at "$target"
log_has "$LEADER" '"revision-compaction-retention":50' || fail "the log line lacks etcd's retention field"

# Periodic mode.
for n in "${all[@]}"; do stop_member "$n"; done
MODE=(--auto-compaction-mode periodic --auto-compaction-retention 2s)
for n in "${all[@]}"; do start "$n"; done
wait_ready 15 "${all[@]}"
bench_puts 300 "${all[@]}"
written=$(revision "$LEADER")
# last_periodic_revision: the revision of the leader's newest periodic compaction line (empty: none yet).
last_periodic_revision() {
	{ grep -F '"msg":"starting auto periodic compaction"' "$TMP/$LEADER.log" || true; } | tail -n 1 |
		sed -n 's/.*"revision":\([0-9]*\).*/\1/p'
}
periodic_reached() {
	ctl s1 put tick "$RANDOM" >/dev/null # the clock goes on: keep revisions coming
	local r
	r=$(last_periodic_revision)
	[ -n "$r" ] && [ "$r" -ge "$written" ]
}
wait_until "a periodic compaction at or past revision $written" 20 periodic_reached
target=$(last_periodic_revision)
wait_until "every member compacted at revision $target" 10 compacted_at "$target"
log_has "$LEADER" '"compact-period":"2000ms"' || fail "the log line lacks the compact period"
now=$(revision "$LEADER")
for n in "${all[@]}"; do
	etcdctl --endpoints="$(client_hostport "$n")" get some/key --rev="$now" >/dev/null || fail "revision $now unreadable on $n"
done
