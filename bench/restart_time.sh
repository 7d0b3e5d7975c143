#!/usr/bin/env bash
# bench/restart_time.sh BUILD [PUTS] [RUNS]: a one-member quorumd (BUILD: a build dir, or a quorumd binary) with PUTS puts (default 1000) in a fresh
# data dir under $RESTART_TMPDIR (default /var/tmp), stopped with SIGTERM and restarted RUNS times (default 5):
# prints the milliseconds from each start to the log line saying the data dir was opened (the WAL and the
# state recovered) and to the first healthy `etcdctl endpoint health`, and the data dir's size. The election timeout is 100 ms (heartbeat 10 ms), so the time is the member's opening more than its
# campaign. RESTART_COLD=1 drops the data dir's files from the page cache before each start (the disk's read
# time counts, as after a reboot). Run it in a private network namespace (it listens on 127.0.0.1:23790/23800).
# Prints, never fails on a time.
set -euo pipefail
build=${1:?usage: bench/restart_time.sh BUILD [PUTS] [RUNS]}
puts=${2:-1000}
runs=${3:-5}
server=$build; [ -d "$server" ] && server=$build/control/quorumd
dir=$(mktemp -d "${RESTART_TMPDIR:-/var/tmp}/restart-time-XXXXXX")
pid=
cleanup() { [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
client=http://127.0.0.1:23790
start() {
	"$server" --name m1 --data-dir "$dir/m1" --listen-client-urls $client --advertise-client-urls $client \
		--listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
		--initial-cluster m1=http://127.0.0.1:23800 --heartbeat-interval 10 --election-timeout 100 \
		>>"$dir/m1.log" 2>&1 &
	pid=$!
}
healthy() { ETCDCTL_API=3 etcdctl --endpoints=$client --command-timeout=1s endpoint health >/dev/null 2>&1; }
wait_healthy() {
	for _ in $(seq 1 3000); do healthy && return 0; sleep 0.01; done
	echo "not healthy after 30 s" >&2; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=; }
start
wait_healthy
# One entry per put; ten clients in parallel, as etcdctl put in one loop is slow.
put() { for _ in 1 2 3; do ETCDCTL_API=3 etcdctl --endpoints=$client put "$1" "$2" >/dev/null && return 0; done; return 1; }
writers=()
for c in $(seq 0 9); do
	( for i in $(seq $((c * puts / 10 + 1)) $(((c + 1) * puts / 10))); do put "key$i" "value-$i"; done ) &
	writers+=($!)
done
for writer in "${writers[@]}"; do wait "$writer"; done
[ "$(ETCDCTL_API=3 etcdctl --endpoints=$client get key$puts --print-value-only)" = "value-$puts" ]
stop
echo "data dir after $puts puts: $(du -sh "$dir/m1" | cut -f1) (du), wal: $(ls "$dir/m1/member/wal" | tr '\n' ' ')"
for run in $(seq 1 "$runs"); do
	if [ -n "${RESTART_COLD:-}" ]; then
		find "$dir/m1" -type f -exec dd if={} iflag=nocache count=0 status=none \;
	fi
	before=$(date +%s%N)
	start
	wait_healthy
	after=$(date +%s%N)
	# The "restarting member" line is logged once the WAL and the state are open and recovered.
	opened=$(grep '"msg":"restarting member"' "$dir/m1.log" | tail -n 1 | sed 's/.*"ts":"\([^"]*\)".*/\1/')
	opened=$(date -d "$opened" +%s%N)
	echo "restart $run: $(((opened - before) / 1000000)) ms to the data dir opened (WAL and state recovered)," \
		"$(((after - before) / 1000000)) ms to endpoint health OK"
	stop
done
