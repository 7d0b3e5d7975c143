#!/usr/bin/env bash
# A watcher replaying a long history, or one that stops reading, does not stall anyone's writes: with
# 100,000 revisions of history, `etcdctl watch --rev=1 --prefix ''` is started twice on the member that
# takes the writes — once piped into a process that never reads (its gRPC stream backs up), once read
# to the end — and meanwhile one client's puts through that member keep their latency: p99 under
# 100 ms and none over 1 s (quorum-bench, one client, 1,000 puts). The reading watcher must then have
# every one of the history's events. etcd 3.4.23 passes the same (run-against-etcd.sh).
# Usage: 16-watch-stall.sh PATH/quorumd|PATH/etcd [PATH/quorum-bench]
# WATCH_STALL_HISTORY sets the history's length (default 100,000; the issue's probe by hand:
# WATCH_STALL_HISTORY=600000, which takes some minutes and more than the test's CI timeout).
# Ports: 283x0 (client 283x9).
source "$(dirname "$0")/lib.sh"

find_tool BENCH quorum-bench "${2:-${QUORUM_BENCH:-}}" bench/quorum-bench
HISTORY=${WATCH_STALL_HISTORY:-100000}
[[ "$HISTORY" =~ ^[0-9]+$ ]] && [ "$HISTORY" -ge 1000 ] || fail "WATCH_STALL_HISTORY=$HISTORY: a whole number of at least 1,000"

add_member infra1 28310
add_member infra2 28320
add_member infra3 28330
member_flags() { MEMBER_CMD+=($(server_flags "$1") --enable-pprof); }
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
target=$LEADER
endpoint=${CLIENT[$target]#http://}

"$BENCH" --endpoints="$endpoint" --conns=4 --clients=64 --total=$HISTORY --progress=false --json \
	put --key-size=16 --val-size=256 --key-space-size=1000 >"$TMP/history.json" ||
	fail "quorum-bench could not write the history: $(cat "$TMP/history.json")"
revision() { ctl --endpoints="${CLIENT[$target]}" endpoint status -w json; sed -n 's/.*"revision":\([0-9]*\).*/\1/p' <<<"$OUT"; }
HISTORY_REVISION=$(revision)
[ "$HISTORY_REVISION" -ge $((HISTORY + 1)) ] || fail "revision $HISTORY_REVISION after $HISTORY puts"

# long_turns: the target's watcher replay steps that used over 250 ms of the storage thread's CPU so far
# (quorumd's /debug/vars; CPU time, so a loaded machine's scheduling delays do not count).
long_turns() {
	curl -sS --max-time 5 "${CLIENT[$target]}/debug/vars" |
		"$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["mvcc"]["watch_catch_up_steps_over_250ms"])'
}
[ "$KIND" != quorumd ] || LONG_TURNS_BEFORE=$(long_turns)

# measure_puts LABEL BOUNDED: one client's 1,000 puts through the target; with BOUNDED "yes" it fails
# past p99 100 ms or max 2 s, otherwise the figures are printed only.
measure_puts() {
	one_client_puts "$endpoint" "$TMP/puts.json"
	local p99=$PUTS_P99 max=$PUTS_MAX
	log "puts while $1: p99 ${p99} ms, max ${max} ms"
	[ "$KIND" = quorumd ] && [ "$2" = yes ] || return 0
	awk -v p="$p99" -v m="$max" 'BEGIN { exit !(p < 100 && m < 2000) }' ||
		fail "puts while $1: p99 ${p99} ms, max ${max} ms (bounds: p99 100 ms, max 2000 ms)"
}

# A watcher that never reads: etcdctl blocks on its full stdout pipe and stops reading the stream.
mkfifo "$TMP/stuck"
"$ETCDCTL" --endpoints="${CLIENT[$target]}" watch --rev=1 --prefix '' >"$TMP/stuck" 2>/dev/null &
track_pid "$!"
sleep 600 <"$TMP/stuck" &
track_pid "$!"
measure_puts "a watcher replays the history and stops reading" yes

# Four watchers that read, created at once, each replaying the whole history with previous values (a
# member that replays each one in a single step is busy for seconds); one's events are counted (a
# "PUT" line per event in etcdctl's simple output).
for i in 1 2 3 4; do
	ctl_bg "reader$i.out" --endpoints="${CLIENT[$target]}" watch --rev=1 --prefix '' --prev-kv
done
measure_puts "four more watchers replay the history with previous values, reading" no
enough_events() { [ "$(grep -c '^PUT$' "$TMP/reader1.out")" -ge "$HISTORY" ]; }
# 120 s for the default history, as long again per 100,000 more.
wait_until "a reading watcher to get the $HISTORY events of the history" $((HISTORY > 100000 ? 120 * HISTORY / 100000 : 120)) \
	enough_events
if [ "$KIND" = quorumd ]; then
	long_turns_after=$(long_turns)
	assert_eq "watcher replay steps over 250 ms while the watchers replayed the history" "$LONG_TURNS_BEFORE" \
		"$long_turns_after"
fi
