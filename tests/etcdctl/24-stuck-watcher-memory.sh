#!/usr/bin/env bash
# A watcher that never reads does not make its member's memory grow with the writes: on a follower, a watch of
# every key is created by a client that then never reads its socket again (h2-probe stuck-watch: its HTTP/2
# windows are open wide, so nothing but the server's own limits holds the events back), and PUTS puts of
# 256-byte values go through the leader (quorum-bench; CI's form 100,000, the issue's 500,000 with
# STUCK_WATCHER_PUTS=500000). The watcher's member's RSS (/proc/PID/status VmRSS) may grow by at most 64 MiB
# over those puts; the other follower (no watcher, the same entries applied) is the control, and its growth and
# the leader's are printed beside it. The watcher's member must still answer a put and a get meanwhile. Once
# the client goes, that member's RSS is printed again. The watcher sits on a follower so that the figure is the
# watcher's: the member taking the client's writes grows with them by itself (quorumd's leader here: some
# 30 MiB per 100,000 puts with no watcher anywhere, which the leader's figure shows). etcd 3.4.23 passes the
# same (run-against-etcd.sh).
# The members take a snapshot every 10,000 requests (--snapshot-count, both servers), so the Raft log held in
# memory is bounded, and a warm-up of 50,000 puts before the watcher fills what is bounded anyway (memtables,
# caches, an ASan build's quarantine) so that the growth measured is the watcher's.
# Usage: 24-stuck-watcher-memory.sh PATH/quorumd|PATH/etcd [PATH/h2-probe [PATH/quorum-bench]]
# (or H2_PROBE and QUORUM_BENCH in the environment).
# Ports: 291x0 (client 291x9).
source "$(dirname "$0")/lib.sh"

find_tool PROBE h2-probe "${2:-${H2_PROBE:-}}" tests/etcdctl/h2-probe
find_tool BENCH quorum-bench "${3:-${QUORUM_BENCH:-}}" bench/quorum-bench
[ -x "$PROBE" ] && [ -x "$BENCH" ] || { echo "$0: $PROBE or $BENCH is not executable" >&2; exit 2; }
PUTS=${STUCK_WATCHER_PUTS:-100000}
[[ "$PUTS" =~ ^[0-9]+$ ]] && [ "$PUTS" -ge 10000 ] || fail "STUCK_WATCHER_PUTS=$PUTS: a whole number of at least 10,000"
BOUND_MIB=64
# Under ASan, freed memory waits in its quarantine (256 MiB by default) before it is reused, so RSS grows with
# any churn until the quarantine is full: a small one keeps the figure the member's own.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"

add_member infra1 29110
add_member infra2 29120
add_member infra3 29130
member_flags() { MEMBER_CMD+=($(server_flags "$1") --snapshot-count 10000); }
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
leader=$LEADER
followers=()
for n in infra1 infra2 infra3; do [ "$n" = "$leader" ] || followers+=("$n"); done
target=${followers[0]}
control=${followers[1]}
endpoint=${CLIENT[$leader]#http://}

# puts COUNT: COUNT puts of 256-byte values through the leader.
puts() {
	"$BENCH" --endpoints="$endpoint" --conns=4 --clients=32 --total="$1" --progress=false --json \
		put --key-size=16 --val-size=256 --key-space-size=10000 >"$TMP/puts.json" ||
		fail "quorum-bench could not put $1 keys: $(cat "$TMP/puts.json")"
}
rss_mib() { awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/${PID[$1]}/status"; }

puts 50000
rss_before=$(rss_mib "$target")
control_before=$(rss_mib "$control")
leader_before=$(rss_mib "$leader")

mkfifo "$TMP/stuck.in"
"$PROBE" "${CLIENT[$target]##*:}" stuck-watch '' <"$TMP/stuck.in" >"$TMP/stuck.out" 2>"$TMP/stuck.err" &
PROBE_PID=$!
track_pid "$PROBE_PID"
exec 7>"$TMP/stuck.in" # the probe never reads its socket until this closes
watching() { grep -q '^watching$' "$TMP/stuck.out"; }
wait_until "the watch of every key on $target" 20 watching

puts "$PUTS"
rss_stuck=$(rss_mib "$target")
control_after=$(rss_mib "$control")
leader_after=$(rss_mib "$leader")
growth=$((rss_stuck - rss_before))
log "RSS over $PUTS puts with a watcher that never reads: $target (the watcher's member) $rss_before -> $rss_stuck MiB," \
	"growth $growth MiB; $control (follower, no watcher) growth $((control_after - control_before)) MiB;" \
	"$leader (leader, taking the puts) growth $((leader_after - leader_before)) MiB"
pid_alive "$PROBE_PID" || fail "the watcher that never reads exited: $(cat "$TMP/stuck.out" "$TMP/stuck.err")"

# The member still serves, the stuck watcher still there.
ctl_ok --endpoints="${CLIENT[$target]}" --command-timeout=5s put stuck-watcher/after 1
expect_out "stuck-watcher/after
1" --endpoints="${CLIENT[$target]}" --command-timeout=5s get stuck-watcher/after
[ "$growth" -le "$BOUND_MIB" ] ||
	fail "$target's RSS grew by $growth MiB over $PUTS puts with a watcher that never reads (bound: $BOUND_MIB MiB)"

exec 7>&-
probe_gone() { ! pid_alive "$PROBE_PID"; }
wait_until "the watcher that never reads to go" 20 probe_gone
ctl_ok --endpoints="${CLIENT[$target]}" --command-timeout=5s get stuck-watcher/after
log "RSS of $target once the watcher's client went: $(rss_mib "$target") MiB"
