#!/usr/bin/env bash
# bench/dataplane_compare.sh PATH/quorumd PATH/quorumctl [SECONDS]: the same three-member cluster, once
# with --dataplane=udp and once with --dataplane=dpdk, under the same write load; prints committed writes/s
# and p50/p99 commit latency for each and the dpdk/udp ratios. Measures side by side in one run and
# decides nothing (no pass/fail).
#
# Topology (root needed; everything is created here and deleted on exit): a namespace with a bridge and,
# per member, its own namespace holding its end of a veth pair, so member-to-member traffic crosses the
# veth and the bridge for both transports (members in one namespace would reach each other's kernel
# addresses over loopback). udp members bind 10.77.0.I on their veth; dpdk members run an af_packet vdev
# on it and own 10.77.0.I in their stack. The load (bench/dataplane_load.py) goes through the leader's
# control socket: one run with 1 write in flight (commit latency), one with WINDOW in flight (throughput).
#
# af_packet on a veth still crosses the kernel (a PACKET_MMAP ring per queue and a sendto per burst), so
# this compares the two transports' own costs on the same kernel path, not a NIC: on bare metal the dpdk
# port reads the NIC's descriptor rings directly (no system call, no kernel stack, no copy), which is where
# the real difference lies.
set -euo pipefail
QUORUMD=$(realpath "$1")
QUORUMCTL=$(realpath "$2")
SECONDS_PER_RUN=${3:-10}
WINDOW=${WINDOW:-64}
VALUE_BYTES=${VALUE_BYTES:-256}
IDLE=${IDLE:-adaptive}
HERE=$(dirname "$(realpath "$0")")
source "$HERE/../tests/lib/proc.sh"
source "$HERE/../tests/lib/netns.sh"
if [ "$(id -u)" != 0 ]; then echo "bench/dataplane_compare.sh: needs root (network namespaces)" >&2; exit 1; fi
NS="qbench-$$"
TMP=$(mktemp -d /tmp/qbench.XXXXXX)
cleanup() {
	kill_tracked || echo "bench/dataplane_compare.sh: a process still runs 10 s after SIGKILL" >&2
	seg_delete
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ctl() { "$QUORUMCTL" --control-socket "$TMP/$1/m$2/control.sock" --command-timeout=2s "${@:3}"; }

# run_cluster DATAPLANE: starts three members, loads the leader, prints the two result lines.
run_cluster() {
	local dp=$1 ic="" i pids=()
	# A fresh segment per transport (tests/lib/netns.sh): a namespace per member, its veth's other end on
	# the hub's bridge.
	seg_create "$NS" 3 --isolate
	for i in 1 2 3; do ic+="${ic:+,}m$i=http://10.77.0.$i:2380"; done
	for i in 1 2 3; do
		local extra=()
		if [ "$dp" = udp ]; then
			ip -n "$NS-$i" addr add "10.77.0.$i/24" dev "qv$i"
		else
			extra=(--dataplane=dpdk --dataplane-idle="$IDLE" --dpdk-args="$(seg_dpdk_args "$i")")
		fi
		mkdir -p "$TMP/$dp/m$i"
		ip netns exec "$NS-$i" "$QUORUMD" --name "m$i" --data-dir "$TMP/$dp/m$i" \
			--listen-peer-urls "http://10.77.0.$i:2380" --initial-advertise-peer-urls "http://10.77.0.$i:2380" \
			--listen-client-urls "http://127.0.0.1:2379" --advertise-client-urls "http://127.0.0.1:2379" \
			--initial-cluster-token bench --initial-cluster "$ic" --initial-cluster-state new \
			--log-level warn "${extra[@]}" 2>>"$TMP/$dp-m$i.log" &
		track_pid "$!"
		pids+=("$!")
	done
	local leader="" tries
	for ((tries = 0; tries < 300; tries++)); do
		[ -z "$leader" ] || break
		for i in 1 2 3; do
			if ctl "$dp" "$i" endpoint status 2>/dev/null | grep -q ', true, false,'; then leader=$i; fi
		done
		[ -n "$leader" ] || sleep 0.2
	done
	[ -n "$leader" ] || { echo "no leader with --dataplane=$dp; logs in $TMP" >&2; tail -5 "$TMP"/*.log >&2; exit 1; }
	ctl "$dp" "$leader" put warm up >/dev/null
	local sock="$TMP/$dp/m$leader/control.sock"
	python3 "$HERE/dataplane_load.py" "$sock" 2 "$WINDOW" "$VALUE_BYTES" >/dev/null # warm-up
	RESULT_SEQ=$(python3 "$HERE/dataplane_load.py" "$sock" "$SECONDS_PER_RUN" 1 "$VALUE_BYTES")
	RESULT_PIPE=$(python3 "$HERE/dataplane_load.py" "$sock" "$SECONDS_PER_RUN" "$WINDOW" "$VALUE_BYTES")
	COUNTERS=$(ctl "$dp" "$leader" counters 2>/dev/null | python3 -c 'import json,sys; t=json.load(sys.stdin)["transport"]; print(" ".join("%s=%s" % (k, t[k]) for k in ("packets_out","packets_in","drop_ring_full","drop_no_mbuf","drop_no_neighbour","drop_send_error") if k in t))' 2>/dev/null || true)
	stop_pids 10 "${pids[@]}" || echo "# $dp: a member still runs 10 s after SIGKILL" >&2
	seg_delete
}

field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$1"; }

declare -A R
for dp in udp dpdk; do
	run_cluster "$dp"
	R[$dp-seq]=$RESULT_SEQ
	R[$dp-pipe]=$RESULT_PIPE
	echo "# $dp: leader counters: $COUNTERS" >&2
done

echo "three members, each in its own network namespace on a veth to one bridge; dpdk: PMD net_af_packet (af_packet vdev on the veth), --dataplane-idle=$IDLE, --no-huge"
echo "load: puts of $VALUE_BYTES-byte values through the leader's control socket, $SECONDS_PER_RUN s per run; $(nproc) CPUs shared by everything"
echo
printf '| %-22s | %-9s | %12s | %10s | %10s |\n' "load" "dataplane" "writes/s" "p50 ms" "p99 ms"
printf '| %-22s | %-9s | %12s | %10s | %10s |\n' "---" "---" "---:" "---:" "---:"
for load in seq pipe; do
	label="1 in flight"
	[ "$load" = pipe ] && label="$WINDOW in flight"
	for dp in udp dpdk; do
		r=${R[$dp-$load]}
		printf '| %-22s | %-9s | %12s | %10s | %10s |\n' "$label" "$dp" "$(field "$r" ops/s)" "$(field "$r" p50)" "$(field "$r" p99)"
	done
	u=${R[udp-$load]} d=${R[dpdk-$load]}
	printf '| %-22s | %-9s | %12s | %10s | %10s |\n' "$label" "dpdk/udp" \
		"$(awk -v a="$(field "$d" ops/s)" -v b="$(field "$u" ops/s)" 'BEGIN { printf "%.2f", a / b }')" \
		"$(awk -v a="$(field "$d" p50)" -v b="$(field "$u" p50)" 'BEGIN { printf "%.2f", a / b }')" \
		"$(awk -v a="$(field "$d" p99)" -v b="$(field "$u" p99)" 'BEGIN { printf "%.2f", a / b }')"
done
