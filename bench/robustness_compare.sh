#!/usr/bin/env bash
# bench/robustness_compare.sh: the starvation, stall and leader-loss probes, quorumd and the real etcd 3.4 side
# by side in one run. Each probe is a test script that runs against either server and prints its figures
# (tests/etcdctl/14-16, 23, 24, tests/regressions/lease-expiry-storm); this runs each against etcd, then quorumd, and
# prints one table: the figure for both and the ratio quorumd / etcd (lower is better for all but the put rates
# with and without watchers and their ratio).
#
#   bench/robustness_compare.sh [--build DIR] [--etcd PATH]
#
# | probe | what is measured |
# | leader loss | seconds until a put through a follower, pending on a SIGSTOPped leader, is answered |
# | leader killed | seconds until a put through a follower right after the leader's SIGKILL is answered, by |
# |               | etcdctl (25 s deadline) and by a client with no deadline (no grpc-timeout header) |
# | idle connections | worst /health, put or get (etcdctl, its start included) with 10,000 idle HTTP/2 connections held on the member; one connected client's put p99 and max meanwhile |
# | stuck watcher | put p99 and max while a watcher replays 100,000 revisions and stops reading |
# | history replay | put p99 and max while four more watchers replay the history with previous values |
# | lease storm | put p99 and max while 10,000 leases expire together |
# | many watchers | put rate with 10,000 watchers on one key over the rate without (puts to other keys) |
# | stuck watcher memory | RSS growth of a watcher's member over 100,000 puts while its client never reads |
#
# The probes' own bounds (what the CI tests assert) are in their scripts; here only figures are printed. A probe
# that fails against a server shows "failed" and its log's path. Takes about 6 minutes on 2 cores.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
ETCD=$(command -v etcd || true)
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$(realpath "$2"); shift 2 ;;
	--etcd) ETCD=$2; shift 2 ;;
	-h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "robustness_compare.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
QUORUMD=$BUILD/control/quorumd
for tool in "$QUORUMD" "$BUILD/bench/quorum-bench" "$BUILD/tests/etcdctl/h2-probe" "$BUILD/tests/regress-client"; do
	[ -x "$tool" ] || { echo "robustness_compare.sh: $tool is missing (ninja -C $BUILD $(realpath -m --relative-to="$BUILD" "$tool"))" >&2; exit 2; }
done
# The probes that take more than one tool find the others here.
export QUORUM_BENCH=$BUILD/bench/quorum-bench H2_PROBE=$BUILD/tests/etcdctl/h2-probe REGRESS_CLIENT=$BUILD/tests/regress-client
[ -n "$ETCD" ] && [ -x "$ETCD" ] || { echo "robustness_compare.sh: no etcd (apt-get install etcd-server, or --etcd PATH)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/robustness-compare.XXXXXX)
echo "logs in $WORK; etcd: $("$ETCD" --version | head -n 1); load: $(cut -d' ' -f1-3 /proc/loadavg)"

# run_probe NAME SERVER SCRIPT TOOL: runs the probe, its output in WORK/NAME-KIND.log.
run_probe() {
	local name=$1 server=$2 script=$3 tool=$4 kind
	kind=$([ "$server" = "$ETCD" ] && echo etcd || echo quorumd)
	if "$ROOT/$script" "$server" "$tool" >"$WORK/$name-$kind.log" 2>&1; then
		echo ok
	else
		echo failed
	fi
}

declare -A FIGURE=()
# figures NAME KIND: the probe's numbers from its log into FIGURE[NAME/KIND/field].
figures() {
	local name=$1 kind=$2 log=$WORK/$1-$2.log line
	case "$name" in
	leader-loss)
		FIGURE[$name/$kind/answered_s]=$(sed -n 's/.*with the leader .* stopped: rc [0-9]* after \([0-9]*\) s.*/\1/p' "$log" | head -n 1)
		FIGURE[$name/$kind/killed_s]=$(sed -n 's/.*the put through .* with the leader .* killed: rc [0-9]* after \([0-9]*\) ms.*/\1/p' "$log" |
			head -n 1 | awk 'NF { printf "%.1f", $1 / 1000 }')
		FIGURE[$name/$kind/no_deadline_s]=$(sed -n 's/.*the put without a deadline .* answered after \([0-9]*\) ms.*/\1/p' "$log" |
			head -n 1 | awk 'NF { printf "%.1f", $1 / 1000 }') ;;
	idle)
		FIGURE[$name/$kind/worst_ms]=$(sed -n 's/.*worst \/health, put or get \([0-9.]*\) ms.*/\1/p' "$log" | head -n 1)
		line=$(grep -m1 "one client's puts with .* idle connections held" "$log")
		FIGURE[$name/$kind/held_p99]=$(sed -n 's/.*held: p99 \([0-9.]*\) ms.*/\1/p' <<<"$line")
		FIGURE[$name/$kind/held_max]=$(sed -n 's/.*held: p99 [0-9.]* ms, max \([0-9.]*\) ms.*/\1/p' <<<"$line") ;;
	watch)
		line=$(grep -m1 'puts while a watcher replays the history and stops reading' "$log")
		FIGURE[$name/$kind/stuck_p99]=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<<"$line")
		FIGURE[$name/$kind/stuck_max]=$(sed -n 's/.*max \([0-9.]*\) ms.*/\1/p' <<<"$line")
		line=$(grep -m1 'puts while four more watchers' "$log")
		FIGURE[$name/$kind/replay_p99]=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<<"$line")
		FIGURE[$name/$kind/replay_max]=$(sed -n 's/.*max \([0-9.]*\) ms.*/\1/p' <<<"$line") ;;
	lease-storm)
		line=$(grep -m1 'latency: n=' "$log")
		FIGURE[$name/$kind/p99]=$(sed -n 's/.* p99=\([0-9.]*\) .*/\1/p' <<<"$line")
		FIGURE[$name/$kind/max]=$(sed -n 's/.* max=\([0-9.]*\) .*/\1/p' <<<"$line") ;;
	many-watchers)
		FIGURE[$name/$kind/ratio]=$(sed -n 's/.*puts with [0-9]* watchers on one key: .* with\/without \([0-9.]*\).*/\1/p' "$log" | head -n 1)
		FIGURE[$name/$kind/rate_without]=$(sed -n 's/.*puts without watchers: \([0-9]*\)\/s.*/\1/p' "$log" | head -n 1)
		FIGURE[$name/$kind/rate_with]=$(sed -n 's/.*puts with [0-9]* watchers on one key: \([0-9]*\)\/s.*/\1/p' "$log" | head -n 1) ;;
	stuck-memory)
		line=$(grep -m1 'RSS over [0-9]* puts with a watcher that never reads' "$log")
		FIGURE[$name/$kind/growth]=$(sed -n "s/.*(the watcher's member) [^;]* growth \(-\{0,1\}[0-9]*\) MiB; .*/\1/p" <<<"$line")
		FIGURE[$name/$kind/control]=$(sed -n 's/.*(follower, no watcher) growth \(-\{0,1\}[0-9]*\) MiB.*/\1/p' <<<"$line") ;;
	esac
}

declare -A STATUS=()
probes=(leader-loss idle watch lease-storm many-watchers stuck-memory)
declare -A SCRIPT=([leader-loss]=tests/etcdctl/14-leader-loss.sh [idle]=tests/etcdctl/15-idle-connections.sh
	[watch]=tests/etcdctl/16-watch-stall.sh [lease-storm]=tests/regressions/lease-expiry-storm.sh
	[many-watchers]=tests/etcdctl/23-many-watchers.sh [stuck-memory]=tests/etcdctl/24-stuck-watcher-memory.sh)
export QUORUM_BENCH=$BUILD/bench/quorum-bench # 15-idle-connections' connected client
declare -A TOOL=([leader-loss]=$BUILD/tests/etcdctl/h2-probe [idle]=$BUILD/tests/etcdctl/h2-probe
	[watch]=$BUILD/bench/quorum-bench [lease-storm]=$BUILD/tests/regress-client [many-watchers]=$BUILD/bench/quorum-bench
	[stuck-memory]=$BUILD/tests/etcdctl/h2-probe)
for name in "${probes[@]}"; do
	for server in "$ETCD" "$QUORUMD"; do
		kind=$([ "$server" = "$ETCD" ] && echo etcd || echo quorumd)
		echo "probe $name against $kind ..." >&2
		STATUS[$name/$kind]=$(run_probe "$name" "$server" "${SCRIPT[$name]}" "${TOOL[$name]}")
		figures "$name" "$kind"
	done
done

# row LABEL NAME FIELD UNIT
row() {
	local label=$1 name=$2 field=$3 unit=$4 e q ratio
	e=${FIGURE[$name/etcd/$field]:-}
	q=${FIGURE[$name/quorumd/$field]:-}
	[ -n "$e" ] || e="— (${STATUS[$name/etcd]:-not run})"
	[ -n "$q" ] || q="— (${STATUS[$name/quorumd]:-not run})"
	ratio=$(awk -v e="$e" -v q="$q" 'BEGIN { if (e + 0 > 0 && q ~ /^[0-9.]+$/) printf "%.2f", q / e; else print "—" }')
	printf '| %-44s | %14s | %14s | %6s |\n' "$label ($unit)" "$e" "$q" "$ratio"
}
echo
printf '| %-44s | %14s | %14s | %6s |\n' "probe" "etcd 3.4" "quorumd" "q / e"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..16})" "--------"
row "leader loss: put answered after" leader-loss answered_s s
row "leader killed: put answered after" leader-loss killed_s s
row "leader killed: no-deadline put answered" leader-loss no_deadline_s s
row "10,000 idle connections: worst request" idle worst_ms ms
row "10,000 idle connections: put p99" idle held_p99 ms
row "10,000 idle connections: put max" idle held_max ms
row "stuck watcher: put p99" watch stuck_p99 ms
row "stuck watcher: put max" watch stuck_max ms
row "four watchers replaying: put p99" watch replay_p99 ms
row "four watchers replaying: put max" watch replay_max ms
row "10,000 leases expiring: put p99" lease-storm p99 ms
row "10,000 leases expiring: put max" lease-storm max ms
row "10,000 watchers: put rate without" many-watchers rate_without /s
row "10,000 watchers: put rate with" many-watchers rate_with /s
row "10,000 watchers: rate with / without" many-watchers ratio ratio
row "never-reading watcher: RSS growth" stuck-memory growth MiB
row "  the same, a follower without it" stuck-memory control MiB
for name in "${probes[@]}"; do
	for kind in etcd quorumd; do
		[ "${STATUS[$name/$kind]}" = ok ] || echo "note: probe $name failed against $kind (its assertions; figures may still be printed): $WORK/$name-$kind.log"
	done
done
