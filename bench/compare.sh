#!/usr/bin/env bash
# bench/compare.sh: the real etcd 3.4 and quorumd side by side, measured by the same load generator.
#
#   bench/compare.sh [--build DIR] [--quick] [--seconds S] [--out DIR] [--publish] [--no-check-perf]
#                    [--dataplane udp|dpdk] [--tls | --tls-layers]
#
# One system at a time (etcd first, then quorumd), each as a three-member cluster on loopback with its
# data under one temp dir on the same disk, both fsyncing before they acknowledge; then a one-member and
# a five-member cluster of each. The same quorum-bench loads run against each:
#   - etcd's published set: put 1 client / 1 conn and 1,000 clients / 100 conns (8-byte keys, 256-byte
#     values), linearizable and serializable range at 1 and 1,000 clients; then txn (CAS) and mixed;
#   - a client sweep (put; 1, 8, 64, 256, 1,000 clients), a value-size sweep (16 B, 256 B, 4 KiB,
#     64 KiB at 256 clients), cluster sizes 1, 3, 5 (put, 1,000 clients);
#   - an open-loop put at 50% of etcd's saturation rate (its closed-loop put 1,000/100 throughput in this
#     run), latency counted from each request's scheduled time: p50 / p99 / p99.9 and the CDF;
#   - `etcdctl check perf --load=m` against both (60 s each; skipped by --quick);
#   - a bare write + fdatasync reference on the data dir's disk (bench/fsync_probe.c).
# Prints one table (each figure for both systems and the ratio quorumd / etcd, the members' CPU seconds
# per 1,000 successful requests from /proc, and the issue's goals with the figures that bear on them),
# writes it with the raw quorum-bench JSON lines and gnuplot PNGs (throughput against clients and against
# value size, the open-loop latency CDF and its tail) into a results folder, and stops what it started and removes its
# data on every exit path (also ^C). bench/README.md says how to read it.
#
# A system that does not answer Maintenance.Status on all its client URLs is not measured: its column
# says why; the script never prints numbers it did not measure.
#
# Options: --build DIR (default build/); --seconds S per load (default 8: the full run takes ~10 minutes
# on 2 cores); --quick (1 s per load, no check perf: a 2-3 minute smoke run); --out DIR (the results
# folder, default bench/results/<UTC time>/); --publish (also copy table.txt, the PNGs and the command to
# bench/results/latest/, which is committed and linked from the README); --no-check-perf;
# --dataplane dpdk (root): quorumd's peers on DPDK's af_packet PMD instead of kernel UDP. Loopback cannot
# carry that, so then every member of both systems runs in its own network namespace on a veth to one
# bridge (tests/lib/netns.sh builds it) and the clients run in the bridge's namespace: etcd's
# members own 10.77.0.I on their veth; a quorumd member's DPDK stack owns 10.77.0.I for its peers and the
# kernel holds 10.77.1.I on the same veth for its clients. Both systems cross the same veths and bridge.
# --tls: the cost of TLS instead of the whole table. A PKI made with the openssl CLI in the run's temp dir
# (tests/tls/make-pki.sh: a CA, member certificates for 127.0.0.1 with serverAuth and clientAuth, a client
# certificate); each system runs as a three-member cluster twice, once plain and once with client TLS
# (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth; quorum-bench with --cacert, --cert, --key)
# and peer TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth, https://
# peer URLs) on the same certificates, under put 1 client, put 1,000 clients / 100 conns and range l
# 1,000 / 100; it prints quorumd / etcd for each with and without TLS, and whether the lead held within
# 10% (the TLS ratio at least 0.9 times the plain one). For reading: nothing fails on it. No plots, no
# check perf; not with --dataplane dpdk. --tls-layers: the same with each layer alone too — client TLS only
# (https:// client URLs, plain peers) and peer TLS only (sealed peers, plain clients) between plain and both —
# so each layer's cost shows: every system's op/s with the layer over its op/s plain.
# Environment: COMPARE_BASE_PORT (default 61000; the clusters use BASE+11 .. BASE+582, a cluster's block
# moved up by 600 while one of its ports is taken), COMPARE_TMPDIR (where the data dirs go, default /var/tmp; not a tmpfs),
# ETCD, QUORUMD, QUORUM_BENCH, FSYNC_PROBE (binaries other than DIR's), KEEP_TMP=1 (keep data and logs).
set -euo pipefail

COMMAND_LINE="bench/compare.sh $*"
BUILD=build
QUICK=0
OUT=""
PUBLISH=0
DATAPLANE=udp
TLS=0
TLS_VARIANTS=(plain tls) # --tls-layers adds client (client TLS only) and peer (peer TLS only)
SECS=""
CHECK_PERF=""
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$2; shift 2 ;;
	--build=*) BUILD=${1#*=}; shift ;;
	--quick) QUICK=1; shift ;;
	--seconds) SECS=$2; shift 2 ;;
	--seconds=*) SECS=${1#*=}; shift ;;
	--out) OUT=$2; shift 2 ;;
	--out=*) OUT=${1#*=}; shift ;;
	--publish) PUBLISH=1; shift ;;
	--no-check-perf) CHECK_PERF=0; shift ;;
	--dataplane) DATAPLANE=$2; shift 2 ;;
	--dataplane=*) DATAPLANE=${1#*=}; shift ;;
	--tls) TLS=1; shift ;;
	--tls-layers) TLS=1; TLS_VARIANTS=(plain client peer tls); shift ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "compare.sh: $1: unknown option (--build DIR, --quick, --seconds S, --out DIR, --publish, --no-check-perf, --dataplane udp|dpdk, --tls, --tls-layers)" >&2
		exit 2 ;;
	esac
done
if [ -z "$SECS" ]; then
	if [ "$QUICK" = 1 ]; then SECS=1; else SECS=8; fi
fi
case "$DATAPLANE" in
udp | dpdk) ;;
*) echo "compare.sh: --dataplane: udp or dpdk, not \"$DATAPLANE\"" >&2; exit 2 ;;
esac
if [ "$DATAPLANE" = dpdk ] && [ "$(id -u)" != 0 ]; then
	echo "compare.sh: --dataplane dpdk needs root (network namespaces, af_packet)" >&2
	exit 2
fi
if [ "$TLS" = 1 ] && [ "$DATAPLANE" = dpdk ]; then
	echo "compare.sh: --tls runs on loopback only (peer TLS handshakes need the kernel's TCP on the peer address)" >&2
	exit 2
fi
if [ "$TLS" = 1 ] && [ "$PUBLISH" = 1 ]; then
	echo "compare.sh: --publish takes the whole table, not --tls" >&2
	exit 2
fi
[[ "$SECS" =~ ^[0-9]+$ ]] && [ "$SECS" -ge 1 ] || { echo "compare.sh: --seconds: expected a whole number >= 1" >&2; exit 2; }
# The published copy is what the README shows: never a smoke run.
if [ "$PUBLISH" = 1 ] && [ "$QUICK" = 1 ]; then
	echo "compare.sh: --publish takes a full run, not --quick" >&2
	exit 2
fi
if [ -z "$CHECK_PERF" ]; then
	if [ "$QUICK" = 1 ] || [ "$TLS" = 1 ]; then CHECK_PERF=0; else CHECK_PERF=1; fi
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source tests/lib/proc.sh
source bench/lib.sh
source tests/lib/netns.sh
FP=${FSYNC_PROBE:-$BUILD/bench/fsync-probe}
ETCD=${ETCD:-$(command -v etcd || true)}
BASE=${COMPARE_BASE_PORT:-61000}
for f in "$QB" "$QD" "$FP"; do
	[ -x "$f" ] || { echo "compare.sh: $f not built (meson setup $BUILD && ninja -C $BUILD)" >&2; exit 2; }
done
[ -n "$ETCD" ] && [ -x "$ETCD" ] || { echo "compare.sh: no etcd binary (apt-get install etcd-server, or ETCD=PATH)" >&2; exit 2; }
for t in jq etcdctl gnuplot ss timeout openssl; do
	command -v "$t" >/dev/null || { echo "compare.sh: needs $t" >&2; exit 2; }
done
# awk reads all of its input: `| head -n 1` could kill the writer with SIGPIPE, fatal under pipefail.
ETCD_VERSION=$("$ETCD" --version | awk 'NR == 1 { print $3 }')

RUN_ID=$(date -u +%Y%m%dT%H%M%S)
[ -n "$OUT" ] || OUT=bench/results/$RUN_ID
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RAW=$OUT/raw.jsonl
: >"$RAW"

bench_scratch_dir COMPARE_TMPDIR qcompare
declare -A PIDS=()   # cluster label -> "pid pid ..."
declare -A EPS=()    # cluster label -> client URLs, comma-separated
declare -A DOWN=()   # cluster label -> why it is not measured (empty: measured)
declare -A CLIENT_TLS=() # cluster label -> the TLS flags quorum-bench and etcdctl take for it (empty: plain)

bench_exit_trap seg_delete

log() { printf '[%s compare] %s\n' "$(date +%T)" "$*" >&2; }

# ---- the dpdk topology (--dataplane dpdk); with udp everything is on loopback and CLIENT is empty ----
NS=""
CLIENT=()   # the prefix that runs a client (quorum-bench, etcdctl) where it reaches the members
if [ "$DATAPLANE" = dpdk ]; then
	NS=qcmp$$
	CLIENT=(ip netns exec "$NS")
fi
# The segment (tests/lib/netns.sh): namespace NS with a bridge (10.77.0.254 and 10.77.1.254, the clients'
# side) and five member namespaces NS-1 .. NS-5, each holding its end qvI of a veth whose other end is on the
# bridge. The members' addresses go on per cluster (start_cluster).
# Port blocks, one per cluster so that a cluster never binds a port the previous one just closed:
# member i of a cluster listens for clients on BLOCK+10i+1 and for peers on BLOCK+10i+2 (i = 1..5).
# The default base lies above Linux's ephemeral range (32768-60999), where the hundreds of client
# connections of a load cannot be holding one of them, and above the test suites' 12380-47999.
declare -A BLOCK=([etcd3]=0 [quorumd3]=100 [etcd1]=200 [quorumd1]=300 [etcd5]=400 [quorumd5]=500
	[etcd3tls]=50 [quorumd3tls]=150 [etcd3client]=250 [quorumd3client]=350 [etcd3peer]=450 [quorumd3peer]=550)
# cluster_base LABEL SIZE: the first of BASE+BLOCK, +600, +1200, ... whose ports for SIZE members nobody
# holds right now (TCP, or UDP for quorumd's peers), checked just before the cluster starts.
cluster_base() {
	local b m k
	# The members' own namespaces hold nothing else.
	if [ -n "$NS" ]; then echo $((BASE + ${BLOCK[$1]})); return; fi
	for ((k = 0; k < 7; k++)); do
		b=$((BASE + ${BLOCK[$1]} + 600 * k))
		((b + 52 <= 65535)) || break
		for ((m = 1; m <= $2; m++)); do
			if bench_port_busy $((b + 10 * m + 1)) || bench_port_busy $((b + 10 * m + 2)); then continue 2; fi
		done
		echo "$b"
		return
	done
	echo $((BASE + ${BLOCK[$1]}))
}

# start_cluster LABEL SYSTEM SIZE [tls|client|peer]: members LABEL-1 .. LABEL-SIZE, etcd's flags for both
# binaries; with tls, https:// client and peer URLs with etcd's TLS flags on the run's PKI (member i has
# infraI's certificate, serverAuth and clientAuth, for both sides); client or peer: that side only.
start_cluster() {
	local label=$1 sys=$2 size=$3 tls=${4:-} base ic="" eps="" i pids="" bin extra scheme=http peer_scheme=http
	base=$(cluster_base "$label" "$size")
	# 8 GiB quota on both: the 64 KiB value loads write a few GiB of revisions, and the default 2 GiB quota
	# would turn them into "database space exceeded" errors rather than a measurement.
	if [ "$sys" = etcd ]; then
		bin=$ETCD
		extra="--logger=zap --log-outputs=stderr --quota-backend-bytes=8589934592"
	else
		bin=$QD
		extra="--dataplane=$DATAPLANE --quota-backend-bytes=8589934592"
	fi
	CLIENT_TLS[$label]=""
	if [ "$tls" = tls ] || [ "$tls" = client ]; then
		scheme=https
		CLIENT_TLS[$label]="--cacert=$PKI/ca.pem --cert=$PKI/client.pem --key=$PKI/client-key.pem"
	fi
	[ "$tls" != tls ] && [ "$tls" != peer ] || peer_scheme=https
	# Where member i listens: loopback, or in dpdk mode its namespace's addresses (see the header).
	local -a peer_ip client_ip
	for ((i = 1; i <= size; i++)); do
		if [ -z "$NS" ]; then
			peer_ip[i]=127.0.0.1 client_ip[i]=127.0.0.1
		elif [ "$sys" = etcd ]; then
			peer_ip[i]=10.77.0.$i client_ip[i]=10.77.0.$i
		else
			peer_ip[i]=10.77.0.$i client_ip[i]=10.77.1.$i
		fi
		ic+="${ic:+,}$label-$i=$peer_scheme://${peer_ip[i]}:$((base + 10 * i + 2))"
		eps+="${eps:+,}$scheme://${client_ip[i]}:$((base + 10 * i + 1))"
	done
	for ((i = 1; i <= size; i++)); do
		local dir=$TMP/$label-$i
		local -a inns=() dpdk=() tlsflags=()
		mkdir -p "$dir"
		local cert=$PKI/infra$(((i - 1) % 3 + 1))
		[ "$scheme" = http ] || tlsflags+=(--cert-file "$cert.pem" --key-file "$cert-key.pem"
			--trusted-ca-file "$PKI/ca.pem" --client-cert-auth)
		[ "$peer_scheme" = http ] || tlsflags+=(--peer-cert-file "$cert.pem" --peer-key-file "$cert-key.pem"
			--peer-trusted-ca-file "$PKI/ca.pem" --peer-client-cert-auth)
		if [ -n "$NS" ]; then
			inns=(ip netns exec "$NS-$i")
			ip -n "$NS-$i" addr flush dev "qv$i"
			ip -n "$NS-$i" addr add "${client_ip[i]}/24" dev "qv$i"
			if [ "$sys" = quorumd ]; then
				# The af_packet PMD on the member's veth, no hugepages, the lcore allowed on every CPU but one
				# thread (it yields when idle: 2 CPUs carry everything); a file prefix per cluster, removed
				# by stop_cluster.
				dpdk=("--dpdk-args=$(seg_dpdk_args "$i" "$label-$i")")
			fi
		fi
		# shellcheck disable=SC2086
		"${inns[@]}" "$bin" --name "$label-$i" --data-dir "$dir" \
			--listen-client-urls "$scheme://${client_ip[i]}:$((base + 10 * i + 1))" \
			--advertise-client-urls "$scheme://${client_ip[i]}:$((base + 10 * i + 1))" \
			--listen-peer-urls "$peer_scheme://${peer_ip[i]}:$((base + 10 * i + 2))" \
			--initial-advertise-peer-urls "$peer_scheme://${peer_ip[i]}:$((base + 10 * i + 2))" \
			--initial-cluster-token "compare-$label" --initial-cluster "$ic" --initial-cluster-state new \
			$extra "${dpdk[@]}" "${tlsflags[@]}" >"$TMP/$label-$i.log" 2>&1 &
		track_pid "$!"
		pids+="$! "
	done
	PIDS[$label]=$pids
	EPS[$label]=$eps
}

# stop_cluster LABEL: SIGTERM, up to 5 s to exit, then SIGKILL; its data dirs removed (logs kept until the end).
stop_cluster() {
	local label=$1 i
	# shellcheck disable=SC2086
	stop_pids 5 ${PIDS[$label]} || log "$label: a member still runs 10 s after SIGKILL"
	rm -rf "${TMP:?}/$label"-[0-9]
	if [ -n "$NS" ]; then
		for ((i = 1; i <= 5; i++)); do ip -n "$NS-$i" addr flush dev "qv$i" 2>/dev/null || true; done
		rm -rf /var/run/dpdk/"$NS-$label"-*
	fi
}

# wait_ready LABEL: every member answers Maintenance.Status and one is the leader, within 30 s.
# Otherwise records in DOWN why the cluster is not measured.
wait_ready() {
	local label=$1 i out="" p
	for ((i = 0; i < 60; i++)); do
		for p in ${PIDS[$label]}; do
			if ! pid_alive "$p"; then
				DOWN[$label]="a member exited at start: $(grep -h -m1 -iE 'fatal|error|panic' "$TMP/$label"-*.log | head -n 1 | cut -c1-200 || true)"
				return
			fi
		done
		# shellcheck disable=SC2086
		if out=$("${CLIENT[@]}" "$QB" --endpoints="${EPS[$label]}" ${CLIENT_TLS[$label]} --dial-timeout=1s status --json 2>&1) &&
			[ "$(jq '[.endpoints[] | select(.is_leader)] | length' <<<"$out" 2>/dev/null)" = 1 ]; then
			DOWN[$label]=""
			return
		fi
		sleep 0.5
	done
	local why
	why=$(jq -r '[.endpoints[] | select(.ok | not) | "\(.endpoint): \(.code) \(.message)"] | first // "no leader"' \
		<<<"$out" 2>/dev/null || echo "$out")
	DOWN[$label]="Maintenance.Status fails ($why)"
}

# cpu_ticks LABEL: utime + stime of its members, in clock ticks.
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

# ---- the loads ----
# The range loads read one printable key holding 256 bytes, written with etcdctl before them (quorum-bench's
# own keys are etcd's benchmark keys, binary varints that a shell argument cannot carry).
RANGE_KEY=compare-range-key
D="--duration=${SECS}s"
PUT="put --key-size=8 --sequential-keys"
declare -A NAME=() ARGS=() SIZE=()
ORDER=()
# load ID MEMBERS NAME ARGS: one closed-loop quorum-bench run against each system (endpoints are added).
load() { ORDER+=("$1"); SIZE[$1]=$2; NAME[$1]=$3; ARGS[$1]="$D $4"; }
load put1     3 "put 1 client, 1 conn"         "--target-leader --conns=1 --clients=1 $PUT --val-size=256"
load put1000  3 "put 1000 clients, 100 conns"  "--target-leader --conns=100 --clients=1000 $PUT --val-size=256"
load putall   3 "put 1000/100, all members"    "--conns=100 --clients=1000 $PUT --val-size=256"
load rl1      3 "range l 1 client"             "--conns=1 --clients=1 range $RANGE_KEY --consistency=l"
load rl1000   3 "range l 1000/100"             "--conns=100 --clients=1000 range $RANGE_KEY --consistency=l"
load rs1      3 "range s 1 client"             "--conns=1 --clients=1 range $RANGE_KEY --consistency=s"
load rs1000   3 "range s 1000/100"             "--conns=100 --clients=1000 range $RANGE_KEY --consistency=s"
load txn      3 "txn (CAS) 256/32"             "--target-leader --conns=32 --clients=256 txn --val-size=256"
load mixed    3 "mixed 90% s-reads 256/32"     "--conns=32 --clients=256 mixed --read-ratio=0.9 --consistency=s --key-space=10000 --val-size=256"
# Client sweep (put, leader, 256 B values); 1 and 1,000 clients are put1 and put1000.
load put8     3 "put 8 clients, 8 conns"       "--target-leader --conns=8 --clients=8 $PUT --val-size=256"
load put64    3 "put 64 clients, 16 conns"     "--target-leader --conns=16 --clients=64 $PUT --val-size=256"
load put256   3 "put 256 clients, 32 conns"    "--target-leader --conns=32 --clients=256 $PUT --val-size=256"
# Value-size sweep at 256 clients / 32 conns; 256 B is put256.
load val16    3 "put 16 B values, 256/32"      "--target-leader --conns=32 --clients=256 $PUT --val-size=16"
load val4k    3 "put 4 KiB values, 256/32"     "--target-leader --conns=32 --clients=256 $PUT --val-size=4096"
load val64k   3 "put 64 KiB values, 256/32"    "--target-leader --conns=32 --clients=256 $PUT --val-size=65536"
# Cluster sizes (put 1,000/100 to the leader); 3 is put1000.
load size1    1 "1 member: put 1000/100"       "--target-leader --conns=100 --clients=1000 $PUT --val-size=256"
load size5    5 "5 members: put 1000/100"      "--target-leader --conns=100 --clients=1000 $PUT --val-size=256"
SWEEP_CLIENTS=("1 put1" "8 put8" "64 put64" "256 put256" "1000 put1000")
SWEEP_VALUES=("16 val16" "256 put256" "4096 val4k" "65536 val64k")
SWEEP_SIZES=("1 size1" "3 put1000" "5 size5")

declare -A RESULT=()  # "system|id" -> "throughput p50 p99 p999 failed cpu_per_1000"
declare -A OPEN=()    # system -> the same fields for the open-loop run
declare -A PERF=()    # system -> "verdict throughput slowest stddev cpu_per_1000" of etcdctl check perf
NOTES=()              # failures worth a line under the table

# bench SYSTEM LABEL ID ARGS...: one quorum-bench run; sets LAST to the RESULT fields, or to "error" with a
# note (not a command substitution: NOTES must survive).
LAST=""
bench() {
	local sys=$1 label=$2 id=$3 json t0 t1 ok
	shift 3
	LAST=error
	t0=$(cpu_ticks "$label")
	# A hung server cannot stall the run: quorum-bench's own per-request deadline is 30 s, and the whole
	# run gets its duration plus a minute. --foreground keeps the child in our process group, so a ^C at
	# the terminal reaches it (and it stops at once) rather than only this script, which would wait.
	# Exit 1 means the run could not start (no leader, connection refused): under load a leader election
	# can be under way just then, so it gets two more tries 2 s apart before the row is lost.
	local attempt rc
	for attempt in 1 2 3; do
		rc=0
		# shellcheck disable=SC2086
		json=$(timeout --foreground -k 5 $((SECS + 60)) "${CLIENT[@]}" "$QB" --endpoints="${EPS[$label]}" ${CLIENT_TLS[$label]} \
			--progress=false --json "$@" 2>"$TMP/qb.err") || rc=$?
		[ "$rc" = 1 ] && [ "$attempt" -lt 3 ] || break
		log "$sys, $id: quorum-bench could not start ($(tail -n 1 "$TMP/qb.err" | cut -c1-120)); again in 2 s"
		NOTES+=("$sys, $id: try $attempt could not start: $(tail -n 1 "$TMP/qb.err" | cut -c1-200)")
		sleep 2
		t0=$(cpu_ticks "$label")
	done
	if [ "$rc" != 0 ]; then
		NOTES+=("$sys, $id: quorum-bench failed (exit $rc): $(tail -n 1 "$TMP/qb.err")")
		return
	fi
	t1=$(cpu_ticks "$label")
	jq -c --arg sys "$sys" --arg id "$id" --argjson members "${SIZE[$id]:-3}" --arg dp "$DATAPLANE" \
		--argjson cpu "$(awk -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN { printf "%.3f", t / hz }')" \
		--argjson tls "$([ -n "${CLIENT_TLS[$label]:-}" ] && echo true || echo false)" \
		'{system: $sys, load: $id, members: $members, dataplane: $dp, tls: $tls, server_cpu_s: $cpu} + .' <<<"$json" >>"$RAW"
	ok=$(jq .ok <<<"$json")
	if [ "$ok" -eq 0 ]; then
		NOTES+=("$sys, $id: no request succeeded: $(jq -r '.error_details[0] | "\(.count) x \(.name): \(.message)"' <<<"$json")")
		return
	fi
	if [ "$(jq .failed <<<"$json")" -gt 0 ]; then
		NOTES+=("$sys, $id: $(jq -r '[.error_details[] | "\(.count) x \(.name): \(.message)"] | join("; ")' <<<"$json")")
	fi
	LAST=$(jq -r --argjson cpu $((t1 - t0)) --argjson hz "$HZ" \
		'"\(.throughput) \(.latency_ms.p50) \(.latency_ms.p99) \(.latency_ms.p999) \(.failed) \($cpu / $hz * 1000 / .ok)"' \
		<<<"$json")
}

# check_perf SYSTEM LABEL: etcdctl check perf --load=m (1,000 writes/s offered by 200 clients for 60 s;
# 256-byte keys, 1 KiB values). Its verdict lines are parsed; it exits 1 on FAIL, which is a result here.
check_perf() {
	local sys=$1 label=$2 out t0 t1 verdict thr slow sd
	t0=$(cpu_ticks "$label")
	out=$(ETCDCTL_API=3 timeout --foreground -k 5 150 "${CLIENT[@]}" etcdctl --endpoints="${EPS[$label]}" --command-timeout=30s \
		check perf --load=m 2>&1 | tr '\r' '\n') || true
	t1=$(cpu_ticks "$label")
	printf '%s\n' "$out" >"$OUT/check-perf-$sys.txt"
	verdict=$(grep -E '^(PASS|FAIL)$' <<<"$out" | tail -n 1 || true)
	thr=$(grep -oE 'Throughput (is|too low:) [0-9]+' <<<"$out" | grep -oE '[0-9]+$' || true)
	slow=$(grep -oE 'Slowest request took( too long:)? [0-9.]+s?' <<<"$out" | grep -oE '[0-9.]+s?$' || true)
	sd=$(grep -oE 'Stddev (is|too high:) [0-9.]+s?' <<<"$out" | grep -oE '[0-9.]+s?$' || true)
	if [ -z "$verdict" ] || [ -z "$thr" ]; then
		PERF[$sys]="error: no verdict: $(grep -v '^ *$' <<<"$out" | tail -n 1 | cut -c1-150)"
		return
	fi
	PERF[$sys]="$verdict $thr ${slow:--} ${sd:--} $(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$thr" \
		'BEGIN { if (n > 0) printf "%.3f", t / hz * 1000 / (n * 60); else printf "-" }')"
}

# measure SYSTEM: every load of the system, one cluster at a time.
measure() {
	local sys=$1 id label size
	for size in 3 1 5; do
		label=$sys$size
		log "$sys: starting $size member(s)"
		start_cluster "$label" "$sys" "$size"
		wait_ready "$label"
		if [ -n "${DOWN[$label]}" ]; then
			log "$sys, $size member(s): not measured: ${DOWN[$label]}"
			NOTES+=("$sys, $size member(s): not measured: ${DOWN[$label]}")
			stop_cluster "$label"
			[ "$size" = 3 ] && DOWN[$sys]=${DOWN[$label]}
			continue
		fi
		if [ "$size" = 3 ]; then
			# The 256-byte value the range loads read.
			ETCDCTL_API=3 "${CLIENT[@]}" etcdctl --endpoints="${EPS[$label]}" put "$RANGE_KEY" \
				"$(head -c 256 /dev/zero | tr '\0' v)" >/dev/null 2>"$TMP/etcdctl.err" ||
				log "$sys: etcdctl put $RANGE_KEY failed: $(cat "$TMP/etcdctl.err")"
		fi
		for id in "${ORDER[@]}"; do
			[ "${SIZE[$id]}" = "$size" ] || continue
			log "$sys: ${NAME[$id]}"
			# shellcheck disable=SC2086
			bench "$sys" "$label" "$id" ${ARGS[$id]}
			RESULT[$sys|$id]=$LAST
		done
		if [ "$size" = 3 ]; then
			open_loop "$sys" "$label"
			if [ "$CHECK_PERF" = 1 ]; then
				log "$sys: etcdctl check perf --load=m (60 s)"
				check_perf "$sys" "$label"
			fi
		fi
		stop_cluster "$label"
	done
}

# open_loop SYSTEM LABEL: put at RATE/s on a fixed schedule (1,000 clients only cap what is in flight),
# latency from each request's due time; the CDF goes to cdf-SYSTEM.dat for the plot.
RATE=""
open_loop() {
	local sys=$1 label=$2 sat
	if [ -z "$RATE" ]; then
		# etcd's saturation rate: its closed-loop put 1,000/100 throughput of this run. Only when etcd could
		# not be measured does quorumd's own stand in (said under the table).
		sat=$(cut -d' ' -f1 <<<"${RESULT[etcd|put1000]:-error}")
		RATE_FROM="etcd's put 1000/100 throughput in this run"
		if ! [[ "$sat" =~ ^[0-9.]+$ ]]; then
			sat=$(cut -d' ' -f1 <<<"${RESULT[$sys|put1000]:-error}")
			RATE_FROM="$sys's own put 1000/100 throughput (etcd's is missing)"
		fi
		if ! [[ "$sat" =~ ^[0-9.]+$ ]]; then
			NOTES+=("open loop: no saturation rate measured, not run")
			return
		fi
		RATE=$(awk -v s="$sat" 'BEGIN { r = int(s / 2); if (r < 1) r = 1; print r }')
	fi
	log "$sys: open-loop put at $RATE/s"
	SIZE[open]=3
	# shellcheck disable=SC2086
	bench "$sys" "$label" open --target-leader --conns=100 --clients=1000 "--rate=$RATE" \
		"--duration=${SECS}s" "--cdf-out=$OUT/cdf-$sys.dat" $PUT --val-size=256
	OPEN[$sys]=$LAST
}

# ---- --tls: what TLS costs each system ----
# The same three loads against a plain and a TLS three-member cluster of each system (--tls-layers: also
# client TLS only and peer TLS only), the two systems alternating (etcd plain, quorumd plain, etcd TLS,
# quorumd TLS, ...) so that each ratio compares neighbours.
TLS_LOADS=(put1 put1000 rl1000)
PKI=""
measure_tls() {
	local variant sys label id
	for variant in "${TLS_VARIANTS[@]}"; do
		for sys in etcd quorumd; do
			label=${sys}3
			[ "$variant" = plain ] || label=${sys}3$variant
			log "$sys ($variant): starting 3 members"
			if [ "$variant" = plain ]; then start_cluster "$label" "$sys" 3; else start_cluster "$label" "$sys" 3 "$variant"; fi
			wait_ready "$label"
			if [ -n "${DOWN[$label]}" ]; then
				log "$sys ($variant): not measured: ${DOWN[$label]}"
				NOTES+=("$sys ($variant): not measured: ${DOWN[$label]}")
				stop_cluster "$label"
				continue
			fi
			# shellcheck disable=SC2086
			ETCDCTL_API=3 etcdctl --endpoints="${EPS[$label]}" ${CLIENT_TLS[$label]} put "$RANGE_KEY" \
				"$(head -c 256 /dev/zero | tr '\0' v)" >/dev/null 2>"$TMP/etcdctl.err" ||
				log "$sys ($variant): etcdctl put $RANGE_KEY failed: $(cat "$TMP/etcdctl.err")"
			for id in "${TLS_LOADS[@]}"; do
				log "$sys ($variant): ${NAME[$id]}"
				# shellcheck disable=SC2086
				bench "$sys" "$label" "$id" ${ARGS[$id]}
				RESULT[$sys|$id|$variant]=$LAST
			done
			stop_cluster "$label"
		done
	done
}

# tls_table: per load, both systems' op/s plain and with TLS, the ratios, and whether the lead held.
tls_table() {
	local id v e q r e50 q50 held all=yes
	declare -A RATIO=()
	printf 'TLS cost: etcd %s vs quorumd (--dataplane=udp), 3 members on loopback, one system at a time, %s cores, %s\n' \
		"$ETCD_VERSION" "$(nproc)" "$(date -u +%FT%TZ)"
	printf 'command: %s   (%s s per load; load average at the end: %s)\n' "$COMMAND_LINE" "$SECS" \
		"$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "TLS: client TLS (--cert-file --key-file --trusted-ca-file --client-cert-auth; the load generator shows a"
	echo "client certificate) and peer TLS (--peer-cert-file --peer-key-file --peer-trusted-ca-file --peer-client-cert-auth)"
	echo
	printf '%-30s | %-7s | %10s %10s %6s | %17s\n' "load (3 members)" "" "etcd op/s" "quorumd" "ratio" "p50 ms etcd/qd"
	rule
	for id in "${TLS_LOADS[@]}"; do
		for v in "${TLS_VARIANTS[@]}"; do
			e=${RESULT[etcd|$id|$v]:-n/a}
			q=${RESULT[quorumd|$id|$v]:-n/a}
			read -r e e50 _ <<<"$e"
			read -r q q50 _ <<<"$q"
			r=$(ratio "$e" "$q")
			RATIO[$id|$v]=$r
			numv e "$e" 0; numv q "$q" 0; numv e50 "${e50:--}"; numv q50 "${q50:--}"
			printf '%-30s | %-7s | %10s %10s %6s | %17s\n' "${NAME[$id]}" "$v" "$e" "$q" "$r" "$e50/$q50"
		done
	done
	rule
	echo "lead held within 10% (ratio with TLS >= 0.9 x ratio without; for reading, nothing fails on it):"
	for id in "${TLS_LOADS[@]}"; do
		held=$(awk -v p="${RATIO[$id|plain]}" -v t="${RATIO[$id|tls]}" 'BEGIN {
			if (p !~ /^[0-9.]+$/ || t !~ /^[0-9.]+$/) { print "-"; exit }
			printf "%s (%.2f of the plain ratio)", (t + 0 >= 0.9 * p) ? "held" : "not held", (p > 0) ? t / p : 0 }')
		[[ "$held" == held* ]] || all=no
		printf '  %-30s plain %6s  TLS %6s  %s\n' "${NAME[$id]}" "${RATIO[$id|plain]}" "${RATIO[$id|tls]}" "$held"
	done
	printf 'lead held within 10%%: %s\n' "$all"
	if [ "${#TLS_VARIANTS[@]}" -gt 2 ]; then
		rule
		echo "each layer's cost: op/s with it / op/s plain (client = client TLS only, peer = peer TLS only, tls = both)"
		local sys line base_ops ops
		for id in "${TLS_LOADS[@]}"; do
			for sys in etcd quorumd; do
				read -r base_ops _ <<<"${RESULT[$sys|$id|plain]:-n/a}"
				line=""
				for v in "${TLS_VARIANTS[@]}"; do
					[ "$v" != plain ] || continue
					read -r ops _ <<<"${RESULT[$sys|$id|$v]:-n/a}"
					line+=$(awk -v v="$v" -v a="$ops" -v b="$base_ops" 'BEGIN {
						if (a ~ /^[0-9.]+$/ && b + 0 > 0) printf "  %s %.2f", v, a / b; else printf "  %s -", v }')
				done
				printf '  %-30s %-8s%s\n' "${NAME[$id]}" "$sys" "$line"
			done
		done
	fi
	rule
	for note in "${NOTES[@]}"; do printf 'note: %s\n' "$note"; done
	echo "ratio = quorumd / etcd; op/s counts successful requests"
}

# ---- run ----
FSTYPE=$(df --output=fstype "$TMP" | tail -n 1)
if [ -n "$NS" ]; then
	log "dpdk: network namespaces $NS, $NS-1 .. $NS-5 (a veth per member to one bridge)"
	seg_create "$NS" 5 --isolate 10.77.0.254/24 10.77.1.254/24
fi
log "results in $OUT; data under $TMP ($FSTYPE); ports from $BASE; $SECS s per load"
# The bare-fdatasync reference, before any cluster runs: appending (each sync also commits the file size)
# and overwriting blocks already on disk (data and cache flush only, the cheapest durable write). The goal
# row compares with the lower p50 of the two, the stricter floor.
declare -A FSYNC=()
FSYNC_P50=""
[ "$TLS" = 1 ] || for mode in append overwrite; do
	log "bare write + fdatasync in $TMP ($mode)"
	FSYNC[$mode]=$("$FP" --mode "$mode" --count 2000 --max-seconds 2 "$TMP" || true)
	[ -n "${FSYNC[$mode]}" ] || continue
	printf '%s\n' "${FSYNC[$mode]}" | jq -c '{system: "disk", load: "fsync-probe"} + .' >>"$RAW"
	p=$(jq .p50_ms <<<"${FSYNC[$mode]}")
	if [ -z "$FSYNC_P50" ] || awk -v a="$p" -v b="$FSYNC_P50" 'BEGIN { exit !(a < b) }'; then FSYNC_P50=$p; fi
done
if [ "$TLS" = 1 ]; then
	PKI=$TMP/pki
	mkdir -p "$PKI"
	log "the PKI (tests/tls/make-pki.sh) in $PKI"
	bash tests/tls/make-pki.sh "$PKI" >"$TMP/pki.log" 2>&1 || { echo "compare.sh: tests/tls/make-pki.sh failed" >&2; exit 1; }
	log "etcd $ETCD_VERSION: $ETCD; quorumd: $QD"
	measure_tls
else
	log "etcd $ETCD_VERSION: $ETCD"
	measure etcd
	log "quorumd: $QD"
	measure quorumd
fi

# ---- the table ----
# The table is built from many small cells. A command substitution forks, and a fork costs tens of
# milliseconds on a loaded 2-core machine (hundreds of them took a minute), so the cell helpers come in two
# forms: NAME prints (for the few one-off uses) and NAMEv VAR ... assigns VAR without forking.
fieldv() { # VAR SYSTEM ID FIELD(1..6): a RESULT field, "n/a" when not measured, "error" when the run failed
	local _r=${RESULT[$2|$3]:-} _f
	[ "$3" = open ] && _r=${OPEN[$2]:-}
	if [ -n "${DOWN[$2${SIZE[$3]:-3}]:-}" ]; then printf -v "$1" '%s' "n/a"
	elif [ -z "$_r" ] || [ "$_r" = error ]; then printf -v "$1" '%s' error
	else
		read -r -a _f <<<"$_r"
		printf -v "$1" '%s' "${_f[$4 - 1]}"
	fi
}
field() { local v; fieldv v "$@"; echo "$v"; }
isnum() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; }
ratio() { # A B: B / A, or - when either is missing
	if isnum "$1" && isnum "$2"; then
		awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0) printf "%.2f", b / a; else printf "-" }'
	else printf -- "-"; fi
}
numv() { # VAR NUMBER [DECIMALS]: at most DECIMALS (3) decimals without trailing zeros, or the word as it is
	local _s
	if isnum "$2"; then
		printf -v _s "%.${3:-3}f" "$2"
		if [[ "$_s" == *.* ]]; then _s=${_s%"${_s##*[!0]}"}; _s=${_s%.}; fi
	else _s=$2; fi
	printf -v "$1" '%s' "$_s"
}
num() { local v; numv v "$@"; echo "$v"; }
secsv() { if isnum "$2"; then printf -v "$1" '%.3f s' "$2"; else printf -v "$1" '%s' "$2"; fi; }
secs() { local v; secsv v "$1"; echo "$v"; }
ROWFMT='%-30s | %10s %10s %6s | %17s %17s | %9s %9s\n'
row() { # ID
	local id=$1 e q e50 e99 q50 q99 ec qc
	fieldv e etcd "$id" 1
	fieldv q quorumd "$id" 1
	fieldv e50 etcd "$id" 2
	fieldv e99 etcd "$id" 3
	fieldv q50 quorumd "$id" 2
	fieldv q99 quorumd "$id" 3
	fieldv ec etcd "$id" 6
	fieldv qc quorumd "$id" 6
	numv e50 "$e50"; numv e99 "$e99"; numv q50 "$q50"; numv q99 "$q99"
	secsv ec "$ec"; secsv qc "$qc"
	local r
	r=$(ratio "$e" "$q")
	numv e "$e" 0; numv q "$q" 0
	# shellcheck disable=SC2059
	printf "$ROWFMT" "${NAME[$id]}" "$e" "$q" "$r" "$e50/$e99" "$q50/$q99" "$ec" "$qc"
}
rule() { printf '%s\n' "$(printf '%.0s-' {1..122})"; }
section() { printf '%s\n' "-- $* --"; }
verdict() { # VALUE OP LIMIT: met / not met / - (for the goals block; nothing fails on it)
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { if (v !~ /^[0-9.]+$/) { print "-"; exit }
		ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print ok ? "met" : "not met" }'
}

table() {
	local id e q spec
	local where="on loopback"
	[ -z "$NS" ] || where="each member in its own network namespace on a veth to one bridge (quorumd: af_packet PMD)"
	printf 'etcd %s vs quorumd (--dataplane=%s), one system at a time, %s, %s cores, %s\n' \
		"$ETCD_VERSION" "$DATAPLANE" "$where" "$(nproc)" "$(date -u +%FT%TZ)"
	printf 'command: %s   (%s s per load; data on %s, %s; load average at the end: %s)\n' "$COMMAND_LINE" "$SECS" \
		"$(df --output=source "$TMP" | tail -n 1)" "$FSTYPE" "$(cut -d' ' -f1-3 /proc/loadavg)"
	local mode
	for mode in append overwrite; do
		[ -n "${FSYNC[$mode]:-}" ] || { echo "bare fdatasync ($mode): fsync-probe failed"; continue; }
		printf 'bare 4 KiB %-9s + fdatasync in the data dir (fsync-probe, %s samples): p50 %s ms, p99 %s ms\n' "$mode" \
			"$(jq .count <<<"${FSYNC[$mode]}")" "$(jq .p50_ms <<<"${FSYNC[$mode]}")" "$(jq .p99_ms <<<"${FSYNC[$mode]}")"
	done
	echo
	# shellcheck disable=SC2059
	printf "$ROWFMT" "load (3 members unless said)" "etcd op/s" "quorumd" "ratio" "etcd p50/p99 ms" "quorumd p50/p99" \
		"etcd cpu/1k" "quorumd"
	rule
	section "etcd's published set: 8 B keys, 256 B values"
	for id in put1 put1000 putall rl1 rl1000 rs1 rs1000; do row "$id"; done
	section "txn and mixed"
	for id in txn mixed; do row "$id"; done
	section "client sweep: put to the leader, 256 B values"
	for spec in "${SWEEP_CLIENTS[@]}"; do row "${spec#* }"; done
	section "value-size sweep: put to the leader, 256 clients / 32 conns"
	for spec in "${SWEEP_VALUES[@]}"; do row "${spec#* }"; done
	section "cluster size: put to the leader, 1000 clients / 100 conns"
	for spec in "${SWEEP_SIZES[@]}"; do row "${spec#* }"; done
	rule
	if [ -n "$RATE" ]; then
		printf 'open loop: put at %s/s (50%% of %s), 1000 clients cap, leader\n' "$RATE" "$RATE_FROM"
		printf '  %-8s %10s %10s %10s %10s %10s %9s\n' "" "done op/s" "p50 ms" "p99 ms" "p99.9 ms" "failed" "cpu/1k"
		local o1 o2 o3 o4 o5 o6
		for s in etcd quorumd; do
			fieldv o1 "$s" open 1; fieldv o2 "$s" open 2; fieldv o3 "$s" open 3
			fieldv o4 "$s" open 4; fieldv o5 "$s" open 5; fieldv o6 "$s" open 6
			numv o1 "$o1" 0; numv o2 "$o2"; numv o3 "$o3"; numv o4 "$o4"; secsv o6 "$o6"
			printf '  %-8s %10s %10s %10s %10s %10s %9s\n' "$s" "$o1" "$o2" "$o3" "$o4" "$o5" "$o6"
		done
		printf '  %-8s %10s %10s %10s %10s\n' "ratio" "" "$(ratio "$(field etcd open 2)" "$(field quorumd open 2)")" \
			"$(ratio "$(field etcd open 3)" "$(field quorumd open 3)")" "$(ratio "$(field etcd open 4)" "$(field quorumd open 4)")"
	fi
	if [ "$CHECK_PERF" = 1 ]; then
		echo "etcdctl check perf --load=m (1000 writes/s offered by 200 clients, 60 s; 256 B keys, 1 KiB values):"
		for s in etcd quorumd; do
			local p=${PERF[$s]:-}
			if [ -n "${DOWN[${s}3]:-}" ]; then printf '  %-8s n/a\n' "$s"
			elif [ -z "$p" ] || [[ "$p" == error* ]]; then printf '  %-8s %s\n' "$s" "${p:-error}"
			else
				read -r v t sl sd c <<<"$p"
				printf '  %-8s %s: %s writes/s, slowest %s, stddev %s, cpu/1k %s\n' "$s" "$v" "$t" "$sl" "$sd" "$(secs "$c")"
			fi
		done
	else
		echo "etcdctl check perf --load=m: skipped (--quick or --no-check-perf)"
	fi
	rule
	# The issue's goals, each with the figure of this run that bears on it. Informational: nothing fails on it.
	local fs_p50=${FSYNC_P50:--} q1 e1
	q1=$(field quorumd put1 2)
	e1=$(field etcd put1 2)
	printf '%-54s %8s   %s\n' "goals (issue 7; informational, nothing fails on them)" measured goal
	g() { printf '  %-52s %8s   %-8s %s\n' "$1" "$2" "$3 $4" "$(verdict "$2" "$3" "$4")"; }
	g "put 1000/100 writes/s, quorumd / etcd" "$(ratio "$(field etcd put1000 1)" "$(field quorumd put1000 1)")" ">=" 10
	g "put 1 client p50, quorumd / etcd" "$(ratio "$e1" "$q1")" "<=" 0.5
	g "put 1 client p50 of quorumd / bare fdatasync p50" "$(ratio "$fs_p50" "$q1")" "<=" 1.5
	g "open-loop p99 at 50% of etcd's rate, quorumd / etcd" "$(ratio "$(field etcd open 3)" "$(field quorumd open 3)")" "<=" 0.333
	g "range s 1000/100 reads/s, quorumd / etcd" "$(ratio "$(field etcd rs1000 1)" "$(field quorumd rs1000 1)")" ">=" 5
	g "range l 1000/100 reads/s, quorumd / etcd" "$(ratio "$(field etcd rl1000 1)" "$(field quorumd rl1000 1)")" ">=" 5
	g "CPU per write (put 1000/100 cpu/1k), quorumd / etcd" "$(ratio "$(field etcd put1000 6)" "$(field quorumd put1000 6)")" "<=" 0.25
	rule
	for note in "${NOTES[@]}"; do printf 'note: %s\n' "$note"; done
	for s in etcd quorumd; do
		[ -z "${DOWN[$s]:-}" ] || printf '%s: not measured: %s\n' "$s" "${DOWN[$s]}"
	done
	echo "ratio = quorumd / etcd; op/s counts successful requests; cpu/1k = CPU seconds (user + system, all members"
	echo "of the cluster, from /proc) per 1,000 successful requests; open loop: latency from each request's due time"
}

# ---- plots ----
plots() {
	local spec term
	{
		echo "# clients etcd_ops quorumd_ops"
		for spec in "${SWEEP_CLIENTS[@]}"; do
			echo "${spec% *} $(field etcd "${spec#* }" 1) $(field quorumd "${spec#* }" 1)"
		done
	} >"$OUT/clients.dat"
	{
		echo "# value_bytes etcd_ops quorumd_ops"
		for spec in "${SWEEP_VALUES[@]}"; do
			echo "${spec% *} $(field etcd "${spec#* }" 1) $(field quorumd "${spec#* }" 1)"
		done
	} >"$OUT/values.dat"
	# pngcairo draws anti-aliased lines; plain png (libgd) is there when cairo is not.
	local terms
	terms=$(gnuplot -e 'set terminal' 2>&1 || true)
	if grep -q pngcairo <<<"$terms"; then term="pngcairo size 900,560 font 'sans,10'"; else term="png size 900,560"; fi
	cat >"$OUT/plots.gp" <<-EOF
		# gnuplot script written by bench/compare.sh ($RUN_ID); run it in this folder to redraw.
		set terminal $term
		set datafile missing '-'
		set grid
		set key top left
		set title "put to the leader, 8 B keys, 256 B values, 3 members ($SECS s per point)"
		set output 'throughput_vs_clients.png'
		set logscale x
		set xlabel 'clients in flight'
		set ylabel 'committed writes / s'
		set yrange [0:*]
		plot 'clients.dat' using 1:(strcol(2) eq 'n/a' || strcol(2) eq 'error' ? NaN : \$2) with linespoints lw 2 pt 7 title 'etcd $ETCD_VERSION', \
		     '' using 1:(strcol(3) eq 'n/a' || strcol(3) eq 'error' ? NaN : \$3) with linespoints lw 2 pt 5 title 'quorumd ($DATAPLANE)'
		set title "put to the leader, 256 clients / 32 conns, 3 members ($SECS s per point)"
		set output 'throughput_vs_value_size.png'
		set xlabel 'value size (bytes)'
		set ylabel 'committed writes / s'
		set logscale y
		set yrange [*:*]
		plot 'values.dat' using 1:(strcol(2) eq 'n/a' || strcol(2) eq 'error' ? NaN : \$2) with linespoints lw 2 pt 7 title 'etcd $ETCD_VERSION', \
		     '' using 1:(strcol(3) eq 'n/a' || strcol(3) eq 'error' ? NaN : \$3) with linespoints lw 2 pt 5 title 'quorumd ($DATAPLANE)'
		unset logscale y
	EOF
	if [ -s "$OUT/cdf-etcd.dat" ] || [ -s "$OUT/cdf-quorumd.dat" ]; then
		local cdfs="" s
		for s in etcd quorumd; do
			[ -s "$OUT/cdf-$s.dat" ] || continue
			local legend=$s
			[ "$s" = etcd ] || legend="$s ($DATAPLANE)"
			cdfs+="${cdfs:+, }'cdf-$s.dat' using 1:2 with lines lw 2 title '$legend'"
		done
		cat >>"$OUT/plots.gp" <<-EOF
			set title "open-loop put at $RATE/s (50% of etcd's saturation), latency from the scheduled send time"
			set output 'latency_cdf.png'
			set key bottom right
			set xlabel 'latency (ms)'
			set ylabel 'fraction of requests at or below'
			set yrange [0:1]
			set ytics 0.1
			plot $cdfs
			# The tail on a log scale: the fraction slower than x, so p99 and p99.9 are where the curves cross
			# 0.01 and 0.001.
			set title "open-loop put at $RATE/s: the tail (fraction of requests slower than x)"
			set output 'latency_tail.png'
			set key top right
			set ylabel 'fraction of requests slower'
			set logscale y
			set yrange [0.0001:1]
			set ytics auto
			set format y '%g'
			plot ${cdfs//using 1:2/using 1:(1 - \$2)}
		EOF
	fi
	if ! (cd "$OUT" && gnuplot plots.gp 2>"$TMP/gnuplot.err"); then
		NOTES+=("gnuplot failed: $(head -n 3 "$TMP/gnuplot.err" | tr '\n' ' ')")
	fi
}

if [ "$TLS" = 1 ]; then
	tls_table | tee "$OUT/table.txt"
	echo "results: $OUT"
	exit 0
fi
plots
table | tee "$OUT/table.txt"
echo "results: $OUT ($(cd "$OUT" && ls -- *.png 2>/dev/null | tr '\n' ' '))"
if [ "$PUBLISH" = 1 ]; then
	LATEST=$ROOT/bench/results/latest
	mkdir -p "$LATEST"
	rm -f "$LATEST"/*.png
	cp "$OUT/table.txt" "$LATEST/"
	cp "$OUT"/*.png "$LATEST/" 2>/dev/null || true
	printf '%s\n' "$COMMAND_LINE" >"$LATEST/command.txt"
	echo "published: $LATEST (commit it: git add bench/results/latest)"
fi
