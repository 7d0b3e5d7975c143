#!/usr/bin/env bash
# bench/cpu_budget.sh: microseconds of CPU per put, per stage of the write path, on the leader and on a
# follower, from perf samples attributed by function and source file (issue 16's CPU budget).
#
#   bench/cpu_budget.sh [--build DIR] [--seconds S] [--freq HZ] [--out DIR] [--keep-perf]
#                       [--val-size BYTES] [--load CLIENTS/CONNS]...
#
# Builds nothing: takes the binaries of --build DIR (default build/; measure a release build:
# `meson setup build-release --buildtype=release`). Starts a three-member quorumd cluster on loopback
# (--dataplane=udp, data under $BUDGET_TMPDIR, default /var/tmp, refused if a tmpfs), then for each load
# runs quorum-bench puts against the leader (8-byte sequential keys, --val-size bytes, default 256) while
# `perf record -a` samples every CPU (cpu-clock with DWARF call graphs, plus every context switch), and
# keeps the samples of the leader's and one follower's processes (all their threads, io_uring's iou-wrk
# workers included: they carry the process id). Loads: 1 client / 1 connection, then 1,000 clients /
# 100 connections, S seconds each (default 8); --load CLIENTS/CONNS (repeatable) runs those instead, e.g.
# --val-size 65536 --load 256/32 for the 64 KiB row of compare.sh's value-size sweep.
#
# Each sample's call chain is walked from the leaf towards the thread's root; the first frame that matches
# a row of STAGE_RULES below decides the stage (rows are tried in table order for each frame). Frames that
# match no row (libc's memcpy and malloc, protobuf-c, nghttp2, the kernel's generic paths) are transparent:
# their caller decides, so a memcpy is charged to whoever called it. A chain that reaches its root without a
# match is "other". Prints, per load, µs of CPU per put for each stage (leader, follower), their totals,
# the share left unattributed, and context switches per put; writes the table and the per-stage top
# functions to OUT (default bench/results/cpu-budget-<UTC time>/).
#
# Environment: BUDGET_BASE_PORT (default 62000; members use BASE+11 .. BASE+32, moved up by 100 while one is
# taken), BUDGET_TMPDIR, QUORUMD, QUORUM_BENCH, PERF (default perf), KEEP_TMP=1. Needs root (perf -a),
# perf with DWARF unwinding, python3, jq, ss.
set -euo pipefail

COMMAND_LINE="bench/cpu_budget.sh $*"

# ---- the stage table: STAGE  PATTERN ----
# PATTERN is a Python regular expression searched in each frame's "WHERE:FUNCTION", where WHERE is the
# source file (relative to the repository; read from the build's object files, so static functions are
# found too) for quorumd's own code, or the shared object's file name (librocksdb.so.7.8, [kernel.kallsyms],
# libc.so.6) for anything else. Order matters only within one frame: the first row matching the frame that
# is nearest the leaf wins. Kernel frames always lie leafward of the user frames that entered the kernel,
# so a syscall row beats the user code that made the call.
read -r -d '' STAGE_RULES <<'EOF' || true
# hand-offs: waking or waiting for another thread, and the locks around the queues between threads
handoff     \[kernel\.kallsyms\]:(__x64_sys_futex|do_futex|futex_wait|futex_wake)
handoff     \[kernel\.kallsyms\]:(__x64_sys_epoll_wait|__x64_sys_epoll_pwait|do_epoll_wait|ep_poll)$
handoff     \[kernel\.kallsyms\]:(__x64_sys_poll|__x64_sys_ppoll|do_sys_poll)$
handoff     libc\.so[.0-9]*:(epoll_wait|epoll_pwait|__poll|poll|ppoll)$
handoff     \[kernel\.kallsyms\]:(eventfd_write|eventfd_read|__x64_sys_eventfd)
handoff     ^control/node/mailbox\.c:
handoff     libc\.so[.0-9]*:(pthread_mutex_|pthread_cond_|__pthread_mutex_|__pthread_cond_|___pthread_cond_|__lll_lock)
# WAL: io_uring submissions and their workers, the fdatasync, the WAL's own code and the core thread's glue
wal         \[kernel\.kallsyms\]:(__x64_sys_fdatasync|__x64_sys_fsync|vfs_fsync_range|io_fsync)$
wal         \[kernel\.kallsyms\]:_*(x64_sys_io_uring_enter|io_wq_worker|io_worker_handle_work|io_issue_sqe|io_submit_sqes|io_uring_)
wal         ^storage/wal/
wal         ^control/node/node_core_wal\.c:
# replication transport: the peer sockets (the kernel's UDP send and receive) and dataplane/
transport   \[kernel\.kallsyms\]:(udp_sendmsg|udp_recvmsg|__x64_sys_sendmmsg|__x64_sys_recvmmsg|__x64_sys_sendmsg|__x64_sys_recvmsg|__udp4_lib_rcv|udp_queue_rcv)
transport   ^dataplane/
transport   ^control/node/node_core\.c:deliver_peer$
# reply: the client thread answering from its reply mailbox (gRPC response, trailers, the socket write) and
# the packing of the response where the entry is applied
reply       \[kernel\.kallsyms\]:(tcp_sendmsg|__x64_sys_sendto|__x64_sys_writev)$
reply       ^control/api/client_api\.c:(answer|client_answer)$
reply       ^control/grpc/grpc_call\.c:(grpc_call_send|grpc_call_finish|grpc_call_finish_internal|read_response|submit_trailers|submit_headers|finish_submit|resume)$
reply       ^control/grpc/grpc_http2\.c:grpc_http2_fill_output$
reply       ^control/grpc/grpc_call\.c:grpc_call_free$
reply       ^control/grpc/grpc_server\.c:(grpc_server_flush|flush_dirty_connections|connection_flush|grpc_server_hold_output)$
reply       ^control/etcd/kv_apply\.c:pack_into$
reply       ^control/node/(node\.c|node_storage\.c):(node_post_reply|post_reply|node_reply_free|node_fill_response_header)$
# apply: the state machine (RocksDB and its compressors) and the code that applies committed entries
apply       ^storage/state/
apply       ^control/etcd/(kv_apply|txn_check|auth_store|space_quota)\.c:
apply       ^control/node/(node_storage|node_storage_client|snapshot_keeper)\.c:
apply       (librocksdb|libsnappy|liblz4|libzstd|libbz2|libz)\.so
# client parse: the gRPC server reading requests (HTTP/2 frames, protobuf unpack) and the KV handlers that
# validate them and hand them to the core
client      \[kernel\.kallsyms\]:(tcp_recvmsg|__x64_sys_recvfrom|__x64_sys_read)$
client      ^control/grpc/
client      ^control/api/
# Raft: proposing and replicating (the core thread: batching proposals, stepping the Raft core, packing
# messages for followers, counting acks, member and lease bookkeeping)
raft        ^consensus/
raft        ^control/node/(node_core|node_members|node_leases|node_compactor|node)\.c:
EOF
STAGES=(client raft wal transport apply reply handoff other)
declare -A STAGE_TITLE=(
	[client]="client parse (gRPC/HTTP2 receive, unpack, handler)"
	[raft]="propose + replication (Raft core, node core)"
	[wal]="WAL (io_uring, fdatasync, storage/wal)"
	[transport]="replication transport (UDP, dataplane/)"
	[apply]="apply (storage/state, RocksDB)"
	[reply]="reply (reply mail, gRPC response, send)"
	[handoff]="hand-offs (futex, eventfd, epoll, mailboxes)"
	[other]="other (unmatched: logging, timers, ...)"
)

BUILD=build
SECS=8
FREQ=499
OUT=""
KEEP_PERF=0
VAL_SIZE=256
LOADS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$2; shift 2 ;;
	--build=*) BUILD=${1#*=}; shift ;;
	--seconds) SECS=$2; shift 2 ;;
	--seconds=*) SECS=${1#*=}; shift ;;
	--freq) FREQ=$2; shift 2 ;;
	--freq=*) FREQ=${1#*=}; shift ;;
	--out) OUT=$2; shift 2 ;;
	--out=*) OUT=${1#*=}; shift ;;
	--keep-perf) KEEP_PERF=1; shift ;;
	--val-size) VAL_SIZE=$2; shift 2 ;;
	--val-size=*) VAL_SIZE=${1#*=}; shift ;;
	--load) LOADS+=("$2"); shift 2 ;;
	--load=*) LOADS+=("${1#*=}"); shift ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "cpu_budget.sh: $1: unknown option (--build DIR, --seconds S, --freq HZ, --out DIR, --keep-perf, --val-size BYTES, --load CLIENTS/CONNS)" >&2
		exit 2 ;;
	esac
done
[[ "$SECS" =~ ^[0-9]+$ ]] && [ "$SECS" -ge 1 ] || { echo "cpu_budget.sh: --seconds: a whole number >= 1" >&2; exit 2; }
[[ "$VAL_SIZE" =~ ^[0-9]+$ ]] && [ "$VAL_SIZE" -ge 1 ] || { echo "cpu_budget.sh: --val-size: a whole number of bytes >= 1" >&2; exit 2; }
for l in "${LOADS[@]}"; do
	[[ "$l" =~ ^[1-9][0-9]*/[1-9][0-9]*$ ]] || { echo "cpu_budget.sh: --load: CLIENTS/CONNS, e.g. 256/32, not \"$l\"" >&2; exit 2; }
done
[[ "$FREQ" =~ ^[0-9]+$ ]] && [ "$FREQ" -ge 10 ] || { echo "cpu_budget.sh: --freq: a whole number >= 10" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "cpu_budget.sh: needs root (perf record -a)" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source tests/lib/proc.sh
source bench/lib.sh
PERF=${PERF:-perf}
for f in "$QB" "$QD"; do
	[ -x "$f" ] || { echo "cpu_budget.sh: $f not built (meson setup $BUILD --buildtype=release && ninja -C $BUILD)" >&2; exit 2; }
done
for t in "$PERF" python3 jq ss nm; do
	command -v "$t" >/dev/null || { echo "cpu_budget.sh: needs $t" >&2; exit 2; }
done
"$PERF" version --build-options 2>/dev/null | grep -Eq '(libdw-dwarf-unwind|libunwind): *\[ on' ||
	{ echo "cpu_budget.sh: $PERF cannot unwind DWARF call graphs (built without libdw/libunwind)" >&2; exit 2; }

RUN_ID=$(date -u +%Y%m%dT%H%M%S)
[ -n "$OUT" ] || OUT=bench/results/cpu-budget-$RUN_ID
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
bench_scratch_dir BUDGET_TMPDIR qbudget
PIDS=()

bench_exit_trap
log() { printf '[%s budget] %s\n' "$(date +%T)" "$*" >&2; }

# ---- symbol -> source file, from the build's object files ----
# Meson names an object after its source: DIR/libNAME.a.p/FILE.c.o (generated sources:
# meson-generated_.._FILE.c.o); nm lists what each defines, static functions included.
SYMBOLS=$TMP/symbols.tsv
: >"$SYMBOLS"
while IFS= read -r -d '' object; do
	rel=${object#"$BUILD"/}
	dir=${rel%%/lib*.p/*}
	[ "$dir" != "$rel" ] || dir=${rel%/*.p/*}
	file=${object##*/}
	file=${file%.o}
	file=${file#meson-generated_.._}
	nm --defined-only "$object" 2>/dev/null | awk -v src="$dir/$file" '$2 ~ /^[tTwW]$/ { print $3 "\t" src }' >>"$SYMBOLS"
done < <(find "$BUILD" -name '*.o' -path '*.p/*' -not -path '*/tests/*' -not -path '*/bench/*' -print0)
[ -s "$SYMBOLS" ] || { echo "cpu_budget.sh: no object files under $BUILD" >&2; exit 2; }

# ---- the cluster ----
BASE=${BUDGET_BASE_PORT:-62000}
for ((k = 0; k < 20; k++)); do
	busy=0
	for m in 1 2 3; do
		if bench_port_busy $((BASE + 10 * m + 1)) || bench_port_busy $((BASE + 10 * m + 2)); then busy=1; fi
	done
	[ "$busy" = 1 ] || break
	BASE=$((BASE + 100))
done
IC="" EPS=""
for m in 1 2 3; do
	IC+="${IC:+,}budget-$m=http://127.0.0.1:$((BASE + 10 * m + 2))"
	EPS+="${EPS:+,}http://127.0.0.1:$((BASE + 10 * m + 1))"
done
for m in 1 2 3; do
	mkdir -p "$TMP/m$m"
	"$QD" --name "budget-$m" --data-dir "$TMP/m$m" \
		--listen-client-urls "http://127.0.0.1:$((BASE + 10 * m + 1))" \
		--advertise-client-urls "http://127.0.0.1:$((BASE + 10 * m + 1))" \
		--listen-peer-urls "http://127.0.0.1:$((BASE + 10 * m + 2))" \
		--initial-advertise-peer-urls "http://127.0.0.1:$((BASE + 10 * m + 2))" \
		--initial-cluster-token budget --initial-cluster "$IC" --initial-cluster-state new \
		--dataplane=udp --quota-backend-bytes=8589934592 >"$TMP/m$m.log" 2>&1 &
	track_pid "$!"
	PIDS+=("$!")
done

# cpu_ticks PID: utime + stime of every thread of PID, in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# minor_faults PID: the page faults every thread of PID took (fresh memory from the kernel each time).
minor_faults() { awk '{ sub(/^.*\) /, ""); print $8 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# The leader: the endpoint whose Status says so, within 30 s.
LEADER="" FOLLOWER=""
for ((i = 0; i < 60; i++)); do
	for m in 0 1 2; do pid_alive "${PIDS[m]}" || { echo "cpu_budget.sh: member $((m + 1)) exited at start" >&2; exit 1; }; done
	if out=$("$QB" --endpoints="$EPS" --dial-timeout=1s status --json 2>/dev/null) &&
		idx=$(jq -e '[.endpoints[] | .is_leader] | index(true)' <<<"$out" 2>/dev/null); then
		LEADER=${PIDS[idx]}
		FOLLOWER=${PIDS[(idx + 1) % 3]}
		LEADER_EP=$(jq -r ".endpoints[$idx].endpoint" <<<"$out")
		break
	fi
	sleep 0.5
done
[ -n "$LEADER" ] || { echo "cpu_budget.sh: no leader within 30 s" >&2; exit 1; }
log "leader pid $LEADER ($LEADER_EP), follower pid $FOLLOWER; ${SECS} s per load, cpu-clock at $FREQ Hz"

# ---- the loads ----
PUT="put --key-size=8 --sequential-keys --val-size=$VAL_SIZE"
LOAD_IDS=(put1 put1000)
declare -A LOAD_NAME=([put1]="put 1 client, 1 conn" [put1000]="put 1000 clients, 100 conns")
declare -A LOAD_ARGS=([put1]="--conns=1 --clients=1" [put1000]="--conns=100 --clients=1000")
if [ "${#LOADS[@]}" -gt 0 ]; then
	LOAD_IDS=()
	for l in "${LOADS[@]}"; do
		id="put${l%/*}_${l#*/}"
		# the same load twice (a warm-up, then a run on the warmed members) gets a second id
		while [ -n "${LOAD_NAME[$id]:-}" ]; do id+="+"; done
		LOAD_IDS+=("$id")
		LOAD_NAME[$id]="put ${l%/*} clients, ${l#*/} conns"
		LOAD_ARGS[$id]="--conns=${l#*/} --clients=${l%/*}"
	done
fi
SUMMARY=$OUT/budget.tsv
: >"$SUMMARY"
for id in "${LOAD_IDS[@]}"; do
	log "${LOAD_NAME[$id]}: recording"
	# perf samples from before the first put until after the last one; the few idle heartbeats around the
	# load cost next to nothing.
	# perf starts with its events disabled and enables them when told on its control fifo; its "ack" says
	# they are on, so no put runs before sampling does.
	rm -f "$TMP/ctl" "$TMP/ack"
	mkfifo "$TMP/ctl" "$TMP/ack"
	exec {ctl_fd}<>"$TMP/ctl" {ack_fd}<>"$TMP/ack"
	"$PERF" record -q -a -D -1 --control "fifo:$TMP/ctl,$TMP/ack" -o "$TMP/$id.data" -F "$FREQ" \
		--call-graph dwarf,16384 -e cpu-clock -e 'context-switches/period=1,call-graph=no/' \
		>"$TMP/perf-$id.log" 2>&1 &
	perf_pid=$!
	track_pid "$perf_pid"
	echo enable >&"$ctl_fd"
	reply=""
	read -r -t 30 reply <&"$ack_fd" || true
	[ "$reply" = ack ] || { echo "cpu_budget.sh: perf record did not start sampling within 30 s" >&2; exit 1; }
	exec {ctl_fd}>&- {ack_fd}>&-
	ticks_before=("$(cpu_ticks "$LEADER")" "$(cpu_ticks "$FOLLOWER")")
	faults_before=("$(minor_faults "$LEADER")" "$(minor_faults "$FOLLOWER")")
	# shellcheck disable=SC2086
	json=$(timeout --foreground -k 5 $((SECS + 60)) "$QB" --endpoints="$LEADER_EP" --progress=false --json \
		--duration="${SECS}s" ${LOAD_ARGS[$id]} $PUT 2>"$TMP/qb-$id.err") ||
		{ kill -INT "$perf_pid"; echo "cpu_budget.sh: quorum-bench failed: $(tail -n 1 "$TMP/qb-$id.err")" >&2; exit 1; }
	kill -INT "$perf_pid"
	wait "$perf_pid" || true
	ticks_after=("$(cpu_ticks "$LEADER")" "$(cpu_ticks "$FOLLOWER")")
	faults_after=("$(minor_faults "$LEADER")" "$(minor_faults "$FOLLOWER")")
	ok=$(jq .ok <<<"$json")
	[ "$ok" -gt 0 ] || { echo "cpu_budget.sh: ${LOAD_NAME[$id]}: no put succeeded" >&2; exit 1; }
	printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$ok" "$(jq .throughput <<<"$json")" "$(jq .latency_ms.p50 <<<"$json")" \
		"$(jq .failed <<<"$json")" >>"$SUMMARY"
	# The same CPU read from /proc (every thread's utime + stime over perf's whole window): a total far
	# above the samples' means perf lost samples, one far below that it charged other processes.
	for r in 0 1; do
		printf '%s proc_total %s\n' "$([ "$r" = 0 ] && echo leader || echo follower)" \
			"$(awk -v t=$((ticks_after[r] - ticks_before[r])) -v hz="$HZ" -v n="$ok" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
		printf '%s page_faults %s\n' "$([ "$r" = 0 ] && echo leader || echo follower)" \
			"$(awk -v f=$((faults_after[r] - faults_before[r])) -v n="$ok" 'BEGIN { printf "%.1f", f / n }')"
	done >"$TMP/$id.proc"
	log "${LOAD_NAME[$id]}: $ok puts; attributing samples"
	"$PERF" script -i "$TMP/$id.data" --pid "$LEADER,$FOLLOWER" --no-inline -F pid,event,period,ip,sym,dso 2>/dev/null |
		python3 "$ROOT/bench/cpu_budget_attribute.py" --symbols "$SYMBOLS" --rules <(printf '%s\n' "$STAGE_RULES") \
			--role "$LEADER=leader" --role "$FOLLOWER=follower" --puts "$ok" --load "$id" \
			--top "$OUT/top-$id.txt" >"$TMP/$id.stages"
	cat "$TMP/$id.proc" >>"$TMP/$id.stages"
	[ "$KEEP_PERF" = 1 ] && cp "$TMP/$id.data" "$OUT/$id.perf.data"
	rm -f "$TMP/$id.data"
done

# ---- the table ----
{
	printf 'CPU per put (µs) by stage, 3 members on loopback (udp), puts of %s B to the leader, %s s per load\n' "$VAL_SIZE" "$SECS"
	printf '%-52s' "stage"
	for id in "${LOAD_IDS[@]}"; do printf ' | %-25s' "${LOAD_NAME[$id]}"; done
	printf '\n%-52s' ""
	for id in "${LOAD_IDS[@]}"; do printf ' | %12s %12s' leader follower; done
	printf '\n'
	for stage in "${STAGES[@]}" total proc_total unattributed_pct ctxsw page_faults; do
		case "$stage" in
		total) title="total µs per put (perf samples)" ;;
		proc_total) title="total µs per put (/proc utime+stime, check)" ;;
		unattributed_pct) title="share of samples with no stage (other), %" ;;
		ctxsw) title="context switches per put" ;;
		page_faults) title="page faults per put (/proc minflt)" ;;
		*) title=${STAGE_TITLE[$stage]} ;;
		esac
		printf '%-52s' "$title"
		for id in "${LOAD_IDS[@]}"; do
			for role in leader follower; do
				printf ' %12s' "$(awk -v r="$role" -v s="$stage" '$1 == r && $2 == s { print $3 }' "$TMP/$id.stages")"
			done
			printf ' '
		done
		printf '\n'
	done
	while IFS=$'\t' read -r id ok thr p50 failed; do
		printf '%s: %s puts, %s puts/s, p50 %s ms, %s failed\n' "${LOAD_NAME[$id]}" "$ok" "$thr" "$p50" "$failed"
	done <"$SUMMARY"
	printf 'load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf 'command: %s (build %s)\n' "$COMMAND_LINE" "$BUILD"
} | tee "$OUT/table.txt"
stop_pids 5 "${PIDS[@]}" || true
log "table and the top functions of each stage in $OUT"
