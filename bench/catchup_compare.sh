#!/usr/bin/env bash
# bench/catchup_compare.sh: catch-up and restart of the real etcd 3.4 and quorumd, side by side in one run.
#
#   bench/catchup_compare.sh [--build DIR] [--quick] [--puts M] [--behind N] [--snapshot-count S] [--out DIR]
#
# For each system in turn (etcd first, then quorumd; only one cluster exists at a time), a three-member
# cluster on loopback with its data on the same disk, --snapshot-count S on both (etcd 3.4 keeps 5,000 entries
# behind a snapshot, a constant; quorumd gets the same with --snapshot-catchup-entries 5000), the same load from
# bench/quorum-bench (puts of 256-byte values over 10,000 keys, 64 clients on 3 connections):
#   (c) M puts through all members, then each member's RSS (/proc/PID/status VmRSS);
#   (b) a follower stopped (SIGTERM) and started again: the time from its exec to its first successful
#       linearizable get (a quorum-bench range of one key, --consistency=l, tried every 20 ms);
#   (a) the same follower stopped while N more puts go through the other two, then started: the time from
#       its exec until its Maintenance.Status raft_applied_index equals the leader's raft_index (polled every
#       50 ms), whether it got there by a snapshot (its log's "applied snapshot"), and the leader's extra RSS
#       meanwhile (the peak of its VmRSS, sampled at each poll, minus its VmRSS just before the start).
# Prints a table with ratios quorumd / etcd (below 1: quorumd took less), the settings and the load average,
# into OUT/table.txt too, and the figures as JSON lines into OUT/results.jsonl; nothing passes or fails on a
# figure. Stops what it started and removes its data on
# every exit path.
#
# Defaults: M = 1,000,000, N = 250,000, S = 10,000 (issue 15's sizes; ~15-20 minutes on 2 cores).
# --quick: M = 5,000, N = 8,000, S = 500 (a smoke run of under 30 s: snapshots still taken and sent).
# Environment: CATCHUP_BASE_PORT (default 64000; ports BASE+11 .. BASE+32), COMPARE_TMPDIR (where the data
# dirs go, default /var/tmp; not a tmpfs), ETCD, QUORUMD, QUORUM_BENCH, KEEP_TMP=1.
set -euo pipefail

COMMAND_LINE="bench/catchup_compare.sh $*"
BUILD=build
QUICK=0
OUT=""
PUTS="" BEHIND="" SNAPSHOT_COUNT=""
usage="--build DIR, --quick, --puts M, --behind N, --snapshot-count S, --out DIR"
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$2; shift 2 ;;
	--build=*) BUILD=${1#*=}; shift ;;
	--quick) QUICK=1; shift ;;
	--puts) PUTS=$2; shift 2 ;;
	--puts=*) PUTS=${1#*=}; shift ;;
	--behind) BEHIND=$2; shift 2 ;;
	--behind=*) BEHIND=${1#*=}; shift ;;
	--snapshot-count) SNAPSHOT_COUNT=$2; shift 2 ;;
	--snapshot-count=*) SNAPSHOT_COUNT=${1#*=}; shift ;;
	--out) OUT=$2; shift 2 ;;
	--out=*) OUT=${1#*=}; shift ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "catchup_compare.sh: $1: unknown option ($usage)" >&2; exit 2 ;;
	esac
done
if [ "$QUICK" = 1 ]; then
	PUTS=${PUTS:-5000} BEHIND=${BEHIND:-8000} SNAPSHOT_COUNT=${SNAPSHOT_COUNT:-500}
else
	PUTS=${PUTS:-1000000} BEHIND=${BEHIND:-250000} SNAPSHOT_COUNT=${SNAPSHOT_COUNT:-10000}
fi
for v in PUTS BEHIND SNAPSHOT_COUNT; do
	[[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || { echo "catchup_compare.sh: $v=${!v}: a whole number >= 1" >&2; exit 2; }
done
CATCHUP_ENTRIES=5000
# A follower that missed fewer requests than the log keeps behind a snapshot catches up from the log.
[ "$BEHIND" -gt $((CATCHUP_ENTRIES + SNAPSHOT_COUNT)) ] ||
	echo "catchup_compare.sh: --behind $BEHIND is within what the leaders keep (5,000 + --snapshot-count): no snapshot will be sent" >&2

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source tests/lib/proc.sh
source bench/lib.sh
ETCD=${ETCD:-$(command -v etcd || true)}
BASE=${CATCHUP_BASE_PORT:-64000}
for f in "$QB" "$QD"; do
	[ -x "$f" ] || { echo "catchup_compare.sh: $f not built (meson setup $BUILD && ninja -C $BUILD)" >&2; exit 2; }
done
[ -n "$ETCD" ] && [ -x "$ETCD" ] || { echo "catchup_compare.sh: no etcd binary (apt-get install etcd-server, or ETCD=PATH)" >&2; exit 2; }
command -v jq >/dev/null || { echo "catchup_compare.sh: needs jq" >&2; exit 2; }
ETCD_VERSION=$("$ETCD" --version | awk 'NR == 1 { print $3 }')

[ -n "$OUT" ] || OUT=bench/results/catchup-$(date -u +%Y%m%dT%H%M%S)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
bench_scratch_dir COMPARE_TMPDIR qcatchup

bench_exit_trap

log() { printf '[%s catchup] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# Ports: member i listens for clients on BASE + 10i + 1 and for peers on BASE + 10i + 2.
client_url() { echo "http://127.0.0.1:$((BASE + 10 * $1 + 1))"; }
peer_url() { echo "http://127.0.0.1:$((BASE + 10 * $1 + 2))"; }
INITIAL_CLUSTER="m1=$(peer_url 1),m2=$(peer_url 2),m3=$(peer_url 3)"
ALL_CLIENTS="$(client_url 1),$(client_url 2),$(client_url 3)"
for i in 1 2 3; do
	for p in $((BASE + 10 * i + 1)) $((BASE + 10 * i + 2)); do
		! ss -Htln "sport = :$p" | grep -q . || die "port $p is taken (CATCHUP_BASE_PORT moves them)"
	done
done

declare -A MEMBER_PID=()
SYS=""
# start_member I STATE: member mI of the current system, its log appended to TMP/SYS-mI.log.
start_member() {
	local i=$1 bin extra
	if [ "$SYS" = etcd ]; then
		bin=$ETCD
		# zap logs, for "applied snapshot"; an 8 GiB quota so a million puts of history stay far from it.
		extra=(--logger=zap --log-outputs=stderr --quota-backend-bytes=8589934592 --snapshot-count "$SNAPSHOT_COUNT")
	else
		bin=$QD
		extra=(--snapshot-count "$SNAPSHOT_COUNT" --snapshot-catchup-entries "$CATCHUP_ENTRIES")
	fi
	"$bin" --name "m$i" --data-dir "$TMP/$SYS-m$i" \
		--listen-client-urls "$(client_url "$i")" --advertise-client-urls "$(client_url "$i")" \
		--listen-peer-urls "$(peer_url "$i")" --initial-advertise-peer-urls "$(peer_url "$i")" \
		--initial-cluster-token "catchup-$SYS" --initial-cluster "$INITIAL_CLUSTER" --initial-cluster-state new \
		"${extra[@]}" >>"$TMP/$SYS-m$i.log" 2>&1 &
	track_pid "$!"
	MEMBER_PID[$i]=$!
}
stop_member() {
	stop_pids 10 "${MEMBER_PID[$1]}" || die "$SYS m$1 still runs 10 s after SIGKILL"
}

# status URLS: quorum-bench's Maintenance.Status JSON of the endpoints (empty when one does not answer).
status() { "$QB" --endpoints="$1" --dial-timeout=1s status --json 2>/dev/null || true; }

# wait_leader: every member answers and one is the leader (60 s); sets LEADER (its index 1-3).
wait_leader() {
	local deadline=$((SECONDS + 60)) out
	while [ "$SECONDS" -lt "$deadline" ]; do
		out=$(status "$ALL_CLIENTS")
		if [ -n "$out" ] && [ "$(jq '[.endpoints[] | select(.ok and .is_leader)] | length' <<<"$out")" = 1 ]; then
			LEADER=$(jq -r '.endpoints | map(.is_leader) | index(true) + 1' <<<"$out")
			return
		fi
		sleep 0.2
	done
	die "$SYS: no leader among all three members within 60 s"
}

# puts COUNT URLS: COUNT puts through the endpoints; sets RATE (puts/s). Every put must succeed.
puts() {
	local count=$1 urls=$2 n
	n=$(awk -F, '{ print NF }' <<<"$urls")
	"$QB" --endpoints="$urls" --conns="$n" --clients=64 --total="$count" --progress=false --timeout=30s \
		put --key-space-size=10000 --val-size=256 --json >"$TMP/bench.json" 2>"$TMP/bench.err" ||
		die "$SYS: quorum-bench put: $(tail -3 "$TMP/bench.err")"
	[ "$(jq .ok "$TMP/bench.json")" = "$count" ] || die "$SYS: $(jq -c '{ok, failed, errors}' "$TMP/bench.json") of $count puts"
	RATE=$(jq '.throughput | floor' "$TMP/bench.json")
}

# linearizable_get URL: one linearizable range of the probe key succeeds.
linearizable_get() {
	local out
	out=$("$QB" --endpoints="$1" --dial-timeout=1s --timeout=1s --conns=1 --clients=1 --total=1 --progress=false \
		range catchup-probe --consistency=l --json 2>/dev/null) || return 1
	[ "$(jq .ok <<<"$out")" = 1 ]
}

declare -A RESULT=()
measure() {
	SYS=$1
	local i follower before peak t0 done_ms out leader_index=0 snapshots_before lead_pid
	log "$SYS: three members, --snapshot-count $SNAPSHOT_COUNT; data under $TMP"
	for i in 1 2 3; do start_member "$i"; done
	wait_leader
	# quorum-bench's keys are binary; the probe key is written with etcdctl so range can name it.
	ETCDCTL_API=3 etcdctl --endpoints="$(client_url "$LEADER")" put catchup-probe x >/dev/null || die "$SYS: put catchup-probe"

	log "$SYS: (c) $PUTS puts through all members"
	puts "$PUTS" "$ALL_CLIENTS"
	RESULT[$SYS,rate]=$RATE
	local max=0 r
	for i in 1 2 3; do
		r=$(rss_kib "${MEMBER_PID[$i]}")
		RESULT[$SYS,rss$i]=$r
		[ "$r" -le "$max" ] || max=$r
	done
	RESULT[$SYS,rss_max]=$max

	wait_leader
	follower=$((LEADER % 3 + 1))
	log "$SYS: (b) restart of follower m$follower"
	stop_member "$follower"
	t0=$(now_ms)
	start_member "$follower"
	until linearizable_get "$(client_url "$follower")"; do
		[ $(($(now_ms) - t0)) -lt 300000 ] || die "$SYS: m$follower served no linearizable get within 300 s of its restart"
		pid_alive "${MEMBER_PID[$follower]}" || die "$SYS: m$follower exited after its restart"
		sleep 0.02
	done
	RESULT[$SYS,restart_ms]=$(($(now_ms) - t0))

	log "$SYS: (a) m$follower stopped for $BEHIND puts, then restarted"
	wait_leader
	[ "$LEADER" != "$follower" ] || die "$SYS: the restarted m$follower became leader"
	stop_member "$follower"
	local others=""
	for i in 1 2 3; do [ "$i" = "$follower" ] || others+="${others:+,}$(client_url "$i")"; done
	puts "$BEHIND" "$others"
	log "$SYS: $BEHIND puts at $RATE/s with m$follower down"
	wait_leader
	lead_pid=${MEMBER_PID[$LEADER]}
	snapshots_before=$(grep -c '"msg":"applied snapshot"' "$TMP/$SYS-m$follower.log" || true)
	before=$(rss_kib "$lead_pid")
	peak=$before
	t0=$(now_ms)
	start_member "$follower"
	done_ms=""
	while [ -z "$done_ms" ]; do
		r=$(rss_kib "$lead_pid")
		[ "$r" -le "$peak" ] || peak=$r
		out=$(status "$(client_url "$LEADER"),$(client_url "$follower")")
		# Both answered, and the follower applied what the leader has.
		if [ -n "$out" ] && [ "$(jq '.endpoints[0].ok and .endpoints[1].ok and
			.endpoints[1].raft_applied_index >= .endpoints[0].raft_index' <<<"$out")" = true ]; then
			done_ms=$(($(now_ms) - t0))
			leader_index=$(jq '.endpoints[0].raft_index' <<<"$out")
		fi
		[ -n "$done_ms" ] || [ $(($(now_ms) - t0)) -lt 600000 ] || die "$SYS: m$follower did not catch up within 600 s"
		pid_alive "${MEMBER_PID[$follower]}" || die "$SYS: m$follower exited while catching up"
		[ -n "$done_ms" ] || sleep 0.05
	done
	r=$(rss_kib "$lead_pid")
	[ "$r" -le "$peak" ] || peak=$r
	RESULT[$SYS,catchup_ms]=$done_ms
	RESULT[$SYS,leader_extra_kib]=$((peak - before))
	RESULT[$SYS,leader_before_kib]=$before
	if [ "$(grep -c '"msg":"applied snapshot"' "$TMP/$SYS-m$follower.log" || true)" -gt "$snapshots_before" ]; then
		RESULT[$SYS,by]=snapshot
	else
		RESULT[$SYS,by]=log
	fi
	RESULT[$SYS,index]=$leader_index
	log "$SYS: caught up in $done_ms ms (${RESULT[$SYS,by]}), restart ${RESULT[$SYS,restart_ms]} ms"
	# Measured: SIGKILL, as the data goes. A SIGTERM'd leader would spend seconds on a leadership transfer to
	# members stopping at the same time (both systems do).
	kill_pids "${MEMBER_PID[1]}" "${MEMBER_PID[2]}" "${MEMBER_PID[3]}" || die "$SYS: a member still runs 10 s after SIGKILL"
	rm -rf "${TMP:?}/$SYS"-m[0-9]
}

START=$SECONDS
measure etcd
measure quorumd

# ---- the table ----
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
sec() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }
ratio() { awk -v q="$2" -v e="$1" 'BEGIN { if (e > 0) printf "%.2f", q / e; else print "-" }'; }
row() { printf '%-60s | %17s %17s %6s\n' "$@"; }
{
	echo "catch-up and restart: etcd $ETCD_VERSION against quorumd, 3 members on loopback, one at a time, $(nproc) CPUs"
	echo "load: puts of 256-byte values over 10,000 keys, 64 clients on 3 connections (quorum-bench)"
	echo "settings: etcd --snapshot-count $SNAPSHOT_COUNT (5,000 entries kept behind a snapshot: etcd 3.4's constant)"
	echo "          quorumd --snapshot-count $SNAPSHOT_COUNT --snapshot-catchup-entries $CATCHUP_ENTRIES (both: --max-snapshots 5 --max-wals 5, defaults)"
	echo "          etcd also --quota-backend-bytes=8589934592 (history of the puts, far from any quota)"
	echo
	row "" etcd quorumd "q/e"
	row "(c) puts/s loading $PUTS puts through all members" "${RESULT[etcd,rate]}" "${RESULT[quorumd,rate]}" \
		"$(ratio "${RESULT[etcd,rate]}" "${RESULT[quorumd,rate]}")"
	row "(c) RSS after $PUTS puts, MiB (largest member)" "$(mib "${RESULT[etcd,rss_max]}")" \
		"$(mib "${RESULT[quorumd,rss_max]}")" "$(ratio "${RESULT[etcd,rss_max]}" "${RESULT[quorumd,rss_max]}")"
	row "    each member m1 m2 m3, MiB" \
		"$(mib "${RESULT[etcd,rss1]}")/$(mib "${RESULT[etcd,rss2]}")/$(mib "${RESULT[etcd,rss3]}")" \
		"$(mib "${RESULT[quorumd,rss1]}")/$(mib "${RESULT[quorumd,rss2]}")/$(mib "${RESULT[quorumd,rss3]}")" ""
	row "(b) restart after $PUTS puts to 1st linearizable get, s" "$(sec "${RESULT[etcd,restart_ms]}")" \
		"$(sec "${RESULT[quorumd,restart_ms]}")" "$(ratio "${RESULT[etcd,restart_ms]}" "${RESULT[quorumd,restart_ms]}")"
	row "(a) catch-up after missing $BEHIND puts, s" "$(sec "${RESULT[etcd,catchup_ms]}")" \
		"$(sec "${RESULT[quorumd,catchup_ms]}")" "$(ratio "${RESULT[etcd,catchup_ms]}" "${RESULT[quorumd,catchup_ms]}")"
	row "    caught up by" "${RESULT[etcd,by]}" "${RESULT[quorumd,by]}" ""
	row "    leader's RSS before, MiB" "$(mib "${RESULT[etcd,leader_before_kib]}")" \
		"$(mib "${RESULT[quorumd,leader_before_kib]}")" ""
	row "(a) leader's extra RSS during catch-up, MiB" "$(mib "${RESULT[etcd,leader_extra_kib]}")" \
		"$(mib "${RESULT[quorumd,leader_extra_kib]}")" "$(ratio "${RESULT[etcd,leader_extra_kib]}" "${RESULT[quorumd,leader_extra_kib]}")"
	echo
	echo "ratios are quorumd / etcd (times and RSS: below 1 is quorumd's advantage); one run each, not repeated"
	echo "restart: a follower stopped (SIGTERM) and started; time from its exec to a linearizable range answered by it"
	echo "catch-up: from the follower's exec until its raft_applied_index equals the leader's raft_index (polled every 50 ms)"
	echo "command: $COMMAND_LINE ($((SECONDS - START)) s)"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/table.txt"
# The same figures for programs (tests/benchtool/compare_smoke.sh): one JSON object per system.
for sys in etcd quorumd; do
	jq -cn --arg system "$sys" --arg by "${RESULT[$sys,by]}" --argjson puts "$PUTS" --argjson behind "$BEHIND" \
		--argjson snapshot_count "$SNAPSHOT_COUNT" --argjson rate "${RESULT[$sys,rate]}" \
		--argjson rss_kib "[${RESULT[$sys,rss1]},${RESULT[$sys,rss2]},${RESULT[$sys,rss3]}]" \
		--argjson restart_ms "${RESULT[$sys,restart_ms]}" --argjson catchup_ms "${RESULT[$sys,catchup_ms]}" \
		--argjson leader_before_kib "${RESULT[$sys,leader_before_kib]}" \
		--argjson leader_extra_kib "${RESULT[$sys,leader_extra_kib]}" \
		'{$system, $puts, $behind, $snapshot_count, puts_per_s: $rate, $rss_kib, $restart_ms, $catchup_ms,
		  caught_up_by: $by, $leader_before_kib, $leader_extra_kib}'
done >"$OUT/results.jsonl"
