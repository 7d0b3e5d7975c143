#!/usr/bin/env bash
# bench/compare.sh: the real etcd 3.4 and quorumd side by side, measured by the same load generator.
#
#   bench/compare.sh [--build DIR] [--quick] [--out DIR]
#
# Starts a three-member etcd (Debian's etcd-server) and a three-member quorumd on loopback, data of both
# under one temp dir on the same disk; runs the same quorum-bench loads against each (etcd's published
# set: put 1 client / 1 connection and 1,000 clients / 100 connections, 8-byte keys and 256-byte values,
# linearizable and serializable ranges; then txn and mixed); prints one table with each figure for both
# and the ratio quorumd / etcd, plus the servers' CPU seconds per 1,000 successful requests (utime + stime
# of the three members from /proc, before and after each load). Stops what it started and removes its
# data on every exit path.
#
# A system that does not answer Maintenance.Status on all its client URLs (quorum-bench status) is not
# measured: its column says why, the script never prints numbers it did not measure. This is how the
# quorumd half reports itself until quorumd serves the etcd v3 gRPC API.
#
# Options: --build DIR (default build/), --quick (a tenth of the requests: a smoke run), --out DIR (also
# keep every quorum-bench JSON result there). Environment: COMPARE_BASE_PORT (default 51100; etcd uses
# BASE+11.., quorumd BASE+111..; moved up by 1000 while one of them is taken), COMPARE_N1 / COMPARE_N2
# (requests of the 1-client and the 1,000-client loads), ETCD, QUORUMD, QUORUM_BENCH (binaries other than
# DIR's), KEEP_TMP=1 (keep the data and logs).
#
# Still to come (issue 7): client sweep, value-size sweep, cluster sizes 1 and 5, the dpdk dataplane,
# `etcdctl check perf --load=m` against both, gnuplot plots, the bare-fdatasync reference.
set -euo pipefail

BUILD=build
QUICK=0
OUT=""
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$2; shift 2 ;;
	--build=*) BUILD=${1#*=}; shift ;;
	--quick) QUICK=1; shift ;;
	--out) OUT=$2; shift 2 ;;
	--out=*) OUT=${1#*=}; shift ;;
	-h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: $1: unknown option (--build DIR, --quick, --out DIR)" >&2; exit 2 ;;
	esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
QB=${QUORUM_BENCH:-$BUILD/bench/quorum-bench}
QD=${QUORUMD:-$BUILD/control/quorumd}
ETCD=${ETCD:-$(command -v etcd || true)}
BASE=${COMPARE_BASE_PORT:-51100}
for f in "$QB" "$QD"; do
	[ -x "$f" ] || { echo "compare.sh: $f not built (meson setup $BUILD && ninja -C $BUILD)" >&2; exit 2; }
done
[ -n "$ETCD" ] && [ -x "$ETCD" ] || { echo "compare.sh: no etcd binary (apt-get install etcd-server, or ETCD=PATH)" >&2; exit 2; }
command -v jq >/dev/null || { echo "compare.sh: needs jq" >&2; exit 2; }
command -v etcdctl >/dev/null || { echo "compare.sh: needs etcdctl (apt-get install etcd-client)" >&2; exit 2; }
[ -z "$OUT" ] || mkdir -p "$OUT"

TMP=$(mktemp -d /tmp/qcompare.XXXXXX)
STARTED_PIDS=()
declare -A PIDS=()   # system -> "pid pid pid"
declare -A EPS=()    # system -> client URLs, comma-separated
declare -A DOWN=()   # system -> why it is not measured (empty: measured)

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${STARTED_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	for p in "${STARTED_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$rc" -ne 0 ]; then
		for f in "$TMP"/*.log; do
			[ -e "$f" ] || continue
			echo "---- last lines of $(basename "$f") ----" >&2
			tail -n 15 "$f" >&2 || true
		done
	fi
	if [ -n "${KEEP_TMP:-}" ]; then echo "compare.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '[%s compare] %s\n' "$(date +%T)" "$*" >&2; }

# start_cluster SYSTEM BINARY BASE [extra flags per member, with @DIR@ for the member's data dir]
# Both binaries take etcd's flags; member i listens for clients on BASE+10i+1 and peers on BASE+10i+2.
start_cluster() {
	local sys=$1 bin=$2 base=$3 extra=${4:-} ic="" eps="" i pids=""
	for i in 1 2 3; do
		ic+="${ic:+,}$sys$i=http://127.0.0.1:$((base + 10 * i + 2))"
		eps+="${eps:+,}http://127.0.0.1:$((base + 10 * i + 1))"
	done
	for i in 1 2 3; do
		local dir=$TMP/$sys$i
		mkdir -p "$dir"
		# shellcheck disable=SC2086
		"$bin" --name "$sys$i" --data-dir "$dir" \
			--listen-client-urls "http://127.0.0.1:$((base + 10 * i + 1))" \
			--advertise-client-urls "http://127.0.0.1:$((base + 10 * i + 1))" \
			--listen-peer-urls "http://127.0.0.1:$((base + 10 * i + 2))" \
			--initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 * i + 2))" \
			--initial-cluster-token "compare-$sys" --initial-cluster "$ic" --initial-cluster-state new \
			${extra//@DIR@/$dir} >"$TMP/$sys$i.log" 2>&1 &
		STARTED_PIDS+=("$!")
		pids+="$! "
	done
	PIDS[$sys]=$pids
	EPS[$sys]=$eps
}

# wait_ready SYSTEM: every member answers Maintenance.Status and one is the leader, within 30 s.
# Otherwise records in DOWN why the system is not measured.
wait_ready() {
	local sys=$1 i out="" p
	for ((i = 0; i < 60; i++)); do
		for p in ${PIDS[$sys]}; do
			if ! kill -0 "$p" 2>/dev/null; then
				DOWN[$sys]="a member exited at start: $(grep -m1 -iE 'fatal|error|panic' "$TMP/$sys"*.log | cut -c1-200)"
				return
			fi
		done
		if out=$("$QB" --endpoints="${EPS[$sys]}" --dial-timeout=1s status --json 2>&1) &&
			[ "$(jq '[.endpoints[] | select(.is_leader)] | length' <<<"$out")" = 1 ]; then
			DOWN[$sys]=""
			return
		fi
		sleep 0.5
	done
	local why
	why=$(jq -r '[.endpoints[] | select(.ok | not) | "\(.endpoint): \(.code) \(.message)"] | first // "no leader"' \
		<<<"$out" 2>/dev/null || echo "$out")
	DOWN[$sys]="Maintenance.Status fails ($why): no etcd v3 gRPC API to measure"
}

# cpu_ticks SYSTEM: utime + stime of its members, in clock ticks.
cpu_ticks() {
	local p total=0 f
	for p in ${PIDS[$1]}; do
		if f=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null); then
			total=$((total + ${f% *} + ${f#* }))
		fi
	done
	echo "$total"
}
HZ=$(getconf CLK_TCK)

# The range loads read one printable key holding 256 bytes, written with etcdctl before them (quorum-bench's
# own keys are etcd's benchmark keys, binary varints that a shell argument cannot carry).
RANGE_KEY=compare-range-key
# The loads: name | quorum-bench arguments (endpoints are added). Each runs on both systems.
N1=${COMPARE_N1:-10000} N2=${COMPARE_N2:-100000}
[ "$QUICK" = 1 ] && N1=1000 N2=10000
LOADS=(
	"put 1 client, 1 conn|--target-leader --conns=1 --clients=1 put --key-size=8 --sequential-keys --val-size=256 --total=$N1"
	"put 1000 clients, 100 conns|--target-leader --conns=100 --clients=1000 put --key-size=8 --sequential-keys --val-size=256 --total=$N2"
	"put 1000/100, all members|--conns=100 --clients=1000 put --key-size=8 --sequential-keys --val-size=256 --total=$N2"
	"range l 1 client|--conns=1 --clients=1 range $RANGE_KEY --consistency=l --total=$N1"
	"range l 1000/100|--conns=100 --clients=1000 range $RANGE_KEY --consistency=l --total=$N2"
	"range s 1 client|--conns=1 --clients=1 range $RANGE_KEY --consistency=s --total=$N1"
	"range s 1000/100|--conns=100 --clients=1000 range $RANGE_KEY --consistency=s --total=$N2"
	"txn (CAS) 256/32|--target-leader --conns=32 --clients=256 txn --val-size=256 --total=$N2"
	"mixed 90% s-reads 256/32|--conns=32 --clients=256 mixed --read-ratio=0.9 --consistency=s --key-space=10000 --val-size=256 --total=$N2"
)

declare -A RESULT=()  # "system|load index" -> "throughput p50 p99 failed cpu_per_1000"
NOTES=()              # failures worth a line under the table

measure() {
	local sys=$1 i name args json t0 t1 ok
	for i in "${!LOADS[@]}"; do
		name=${LOADS[$i]%%|*}
		args=${LOADS[$i]#*|}
		log "$sys: $name"
		t0=$(cpu_ticks "$sys")
		# shellcheck disable=SC2086
		if ! json=$("$QB" --endpoints="${EPS[$sys]}" --progress=false --json $args 2>"$TMP/qb.err"); then
			RESULT[$sys|$i]="error"
			NOTES+=("$sys, $name: quorum-bench failed: $(tail -n 1 "$TMP/qb.err")")
			continue
		fi
		t1=$(cpu_ticks "$sys")
		[ -z "$OUT" ] || printf '%s\n' "$json" >"$OUT/$sys-$i.json"
		ok=$(jq .ok <<<"$json")
		RESULT[$sys|$i]=$(jq -r --argjson cpu "$(( t1 - t0 ))" --argjson hz "$HZ" \
			'"\(.throughput) \(.latency_ms.p50) \(.latency_ms.p99) \(.failed) \(if .ok > 0 then ($cpu / $hz * 1000 / .ok) else 0 end)"' \
			<<<"$json")
		if [ "$ok" -eq 0 ]; then
			RESULT[$sys|$i]="error"
			NOTES+=("$sys, $name: no request succeeded: $(jq -r '.error_details[0] | "\(.count) x \(.name): \(.message)"' <<<"$json")")
		elif [ "$(jq .failed <<<"$json")" -gt 0 ]; then
			NOTES+=("$sys, $name: $(jq -r '[.error_details[] | "\(.count) x \(.name): \(.message)"] | join("; ")' <<<"$json")")
		fi
	done
}

# Ports in 5xxxx lie in Linux's ephemeral range, so a client connection can hold one for a while: take the
# first base (stepping by 1000) whose twelve ports nobody uses.
port_busy() { [ -n "$(ss -Htan exclude time-wait "( sport = :$1 )" 2>/dev/null)" ]; }
for ((try = 0; try < 8; try++)); do
	busy=0
	for off in 11 12 21 22 31 32 111 112 121 122 131 132; do
		if port_busy $((BASE + off)); then busy=1; break; fi
	done
	[ "$busy" = 1 ] || break
	BASE=$((BASE + 1000))
done
log "starting etcd ($("$ETCD" --version | head -n 1)) under $TMP, ports $BASE+"
start_cluster etcd "$ETCD" $((BASE)) "--logger=zap --log-outputs=stderr"
log "starting quorumd ($QD)"
start_cluster quorumd "$QD" $((BASE + 100)) "--control-socket @DIR@/control.sock"
wait_ready etcd
wait_ready quorumd

for sys in etcd quorumd; do
	if [ -n "${DOWN[$sys]:-}" ]; then
		log "$sys is not measured: ${DOWN[$sys]}"
		continue
	fi
	# The 256-byte value the range loads read.
	ETCDCTL_API=3 etcdctl --endpoints="${EPS[$sys]}" put "$RANGE_KEY" "$(head -c 256 /dev/zero | tr '\0' v)" \
		>/dev/null 2>"$TMP/etcdctl.err" || log "$sys: etcdctl put $RANGE_KEY failed: $(cat "$TMP/etcdctl.err")"
	measure "$sys"
done

# ---- the table ----
cell() { # SYSTEM INDEX FIELD(1..5)
	local r=${RESULT[$1|$2]:-}
	if [ -n "${DOWN[$1]:-}" ]; then echo "n/a"; elif [ -z "$r" ] || [ "$r" = error ]; then echo "error"; else
		echo "$r" | cut -d' ' -f"$3"; fi
}
ratio() { # A B: B / A, or - when either is missing
	awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b ~ /^[0-9.]+$/) printf "%.2f", b / a; else printf "-" }'
}
echo
printf 'quorum-bench: etcd %s vs quorumd, 3 members each on loopback, %s cores, %s\n' \
	"$("$ETCD" --version | head -n 1 | awk '{print $3}')" "$(nproc)" "$(date -u +%FT%TZ)"
printf '%-28s | %10s %10s %7s | %16s %16s | %12s %12s\n' "load" "etcd op/s" "quorumd" "ratio" "etcd p50/p99 ms" \
	"quorumd p50/p99" "etcd cpu/1k" "quorumd"
printf '%s\n' "$(printf '%.0s-' {1..128})"
for i in "${!LOADS[@]}"; do
	name=${LOADS[$i]%%|*}
	e=$(cell etcd "$i" 1)
	q=$(cell quorumd "$i" 1)
	printf '%-28s | %10s %10s %7s | %16s %16s | %12s %12s\n' "$name" "$e" "$q" "$(ratio "$e" "$q")" \
		"$(cell etcd "$i" 2)/$(cell etcd "$i" 3)" "$(cell quorumd "$i" 2)/$(cell quorumd "$i" 3)" \
		"$(cell etcd "$i" 5 | awk '{ if ($1 ~ /^[0-9.]+$/) printf "%.3f s", $1; else print $1 }')" \
		"$(cell quorumd "$i" 5 | awk '{ if ($1 ~ /^[0-9.]+$/) printf "%.3f s", $1; else print $1 }')"
done
for note in "${NOTES[@]}"; do printf '%s\n' "$note"; done
for sys in etcd quorumd; do
	[ -z "${DOWN[$sys]:-}" ] || printf '%s: not measured: %s\n' "$sys" "${DOWN[$sys]}"
done
echo "ratio = quorumd / etcd throughput; cpu/1k = the three members' CPU seconds per 1,000 successful requests"
