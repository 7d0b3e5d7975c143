#!/usr/bin/env bash
# tests/benchtool/compare_smoke.sh BUILD_DIR: bench/compare.sh --quick end to end (~2-3 minutes), then
# bench/catchup_compare.sh --quick (under 30 s), then bench/compare.sh --tls --quick (under a minute).
#
# Checks that the comparison machinery works, never how fast anything is: both systems answered every
# load of the published set, the sweeps, cluster sizes 1 and 5 and the open loop with a non-zero
# throughput; the table has every section; the PNGs are PNGs; the CDFs end at 1; the bare-fdatasync
# probe ran; and compare.sh left no member running and no data dir behind. Skips (77) when etcd,
# etcdctl, gnuplot or jq is not installed.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
for t in etcd etcdctl gnuplot jq ss; do
	command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
OUT=$(mktemp -d /tmp/qcompare-smoke.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Its own port base, away from compare.sh's default 61000 (a full comparison may be running), from the
# test suites' 12380-47999 and from the ephemeral range.
if ! COMPARE_BASE_PORT=63000 "$ROOT/bench/compare.sh" --build "$BUILD" --quick --out "$OUT/results" \
	>"$OUT/stdout" 2>"$OUT/stderr"; then
	echo "FAIL: bench/compare.sh --quick exited non-zero"
	tail -n 40 "$OUT/stderr"
	exit 1
fi
R=$OUT/results

# Every load ran against both systems with requests that succeeded (one jq pass: each fork is slow on a
# loaded machine).
summary=$(jq -r 'select(.tool == "quorum-bench") |
	"\(.system) \(.load) \(.ok > 0 and .throughput > 0 and .server_cpu_s >= 0) \(.endpoints | length)"' "$R/raw.jsonl")
for sys in etcd quorumd; do
	for load in put1 put1000 putall rl1 rl1000 rs1 rs1000 txn mixed put8 put64 put256 val16 val4k val64k size1 size5 open; do
		n=$(grep -c "^$sys $load " <<<"$summary" || true)
		if [ "$n" != 1 ]; then fail "$sys $load: $n result lines in raw.jsonl, want 1"; continue; fi
		grep -q "^$sys $load true " <<<"$summary" || fail "$sys $load: no successful requests or no CPU figure"
	done
	grep -q "^$sys size5 true 1$" <<<"$summary" || fail "$sys size5: --target-leader should load 1 endpoint"
	grep -q "^$sys putall true 3$" <<<"$summary" || fail "$sys putall: should load the 3 members"
done
for mode in append overwrite; do
	jq -s -e --arg m "$mode" 'any(.[]; .tool == "fsync-probe" and .mode == $m and .count > 0 and .p50_ms > 0)' \
		"$R/raw.jsonl" >/dev/null || fail "no fsync-probe $mode result"
done

# The table: every section, a figure (not n/a or error) in both columns of the headline rows.
for want in "etcd's published set" "client sweep" "value-size sweep" "cluster size" "open loop: put at" \
	"etcdctl check perf --load=m: skipped" "goals (issue 7" "bare 4 KiB append" "bare 4 KiB overwrite"; do
	grep -qF "$want" "$R/table.txt" || fail "table.txt lacks \"$want\""
done
for rowname in "put 1 client, 1 conn" "put 1000 clients, 100 conns" "range s 1000/100" "1 member: put" "5 members: put"; do
	line=$(grep -m1 -F "$rowname" "$R/table.txt" || true)
	[[ "$line" =~ \|\ +[0-9]+\ +[0-9]+\ +[0-9.]+\ \| ]] || fail "row \"$rowname\" lacks both figures and the ratio: $line"
done
grep -q '^note:' "$R/table.txt" && echo "(notes in the table: $(grep -c '^note:' "$R/table.txt"))"

# Plots and their data.
for png in throughput_vs_clients throughput_vs_value_size latency_cdf latency_tail; do
	[ "$(head -c 4 "$R/$png.png" 2>/dev/null | od -An -tx1 | tr -d ' ')" = 89504e47 ] || fail "$png.png is missing or not a PNG"
done
for sys in etcd quorumd; do
	last=$(tail -n 1 "$R/cdf-$sys.dat" 2>/dev/null | awk '{ print $2 }')
	[ "$last" = 1.000000 ] || fail "cdf-$sys.dat does not end at 1 (\"$last\")"
done

# Nothing left behind: the data dir gone, no process running from it.
data=$(sed -n 's/.*data under \(\S*\) .*/\1/p' "$OUT/stderr" | head -n 1 || true)
if [ -z "$data" ]; then
	fail "no \"data under\" line in compare.sh's log"
else
	[ ! -e "$data" ] || fail "$data left behind"
	# shellcheck disable=SC2009
	! ps -eo args | grep -F -- "$data" | grep -v grep >/dev/null || fail "a process still runs from $data"
fi

# bench/catchup_compare.sh --quick (issue 15): both systems restarted a follower and caught one up by
# snapshot, and nothing was left behind. Its own ports, next to compare.sh's block above.
if ! CATCHUP_BASE_PORT=63700 "$ROOT/bench/catchup_compare.sh" --build "$BUILD" --quick --out "$OUT/catchup" \
	>"$OUT/catchup.stdout" 2>"$OUT/catchup.stderr"; then
	fail "bench/catchup_compare.sh --quick exited non-zero"
	tail -n 40 "$OUT/catchup.stderr"
else
	for sys in etcd quorumd; do
		jq -s -e --arg s "$sys" 'any(.[]; .system == $s and .restart_ms > 0 and .catchup_ms > 0 and
			.caught_up_by == "snapshot" and (.rss_kib | all(. > 0)) and .leader_before_kib > 0)' \
			"$OUT/catchup/results.jsonl" >/dev/null || fail "catchup_compare.sh: $sys not measured, or caught up without a snapshot"
	done
	data=$(sed -n 's/.*data under \(\S*\)$/\1/p' "$OUT/catchup.stderr" | head -n 1 || true)
	if [ -z "$data" ]; then
		fail "no \"data under\" line in catchup_compare.sh's log"
	else
		[ ! -e "$data" ] || fail "$data left behind by catchup_compare.sh"
		# shellcheck disable=SC2009
		! ps -eo args | grep -F -- "$data" | grep -v grep >/dev/null || fail "a process still runs from $data"
	fi
fi

# bench/compare.sh --tls --quick (issue 19): each system plain and with client and peer TLS, the three loads
# of the cost row answered in both, the ratios and the "lead held" line printed (never judged here).
if ! COMPARE_BASE_PORT=64000 "$ROOT/bench/compare.sh" --build "$BUILD" --tls --quick --out "$OUT/tls" \
	>"$OUT/tls.stdout" 2>"$OUT/tls.stderr"; then
	fail "bench/compare.sh --tls --quick exited non-zero"
	tail -n 40 "$OUT/tls.stderr"
else
	summary=$(jq -r 'select(.tool == "quorum-bench") | "\(.system) \(.load) \(.tls) \(.ok > 0 and .throughput > 0)"' \
		"$OUT/tls/raw.jsonl")
	for sys in etcd quorumd; do
		for load in put1 put1000 rl1000; do
			for tls in false true; do
				[ "$(grep -c "^$sys $load $tls true$" <<<"$summary" || true)" = 1 ] ||
					fail "--tls: $sys $load (tls $tls): not one successful result line"
			done
		done
	done
	grep -qE '^lead held within 10%: (yes|no)$' "$OUT/tls/table.txt" || fail "--tls: no \"lead held within 10%\" line"
	for rowname in "put 1 client, 1 conn" "put 1000 clients, 100 conns" "range l 1000/100"; do
		[ "$(grep -cE "^$rowname +\| (plain|tls) +\| +[0-9]+ +[0-9]+ +[0-9.]+ \|" "$OUT/tls/table.txt")" = 2 ] ||
			fail "--tls: row \"$rowname\" lacks figures plain and with TLS"
	done
	data=$(sed -n 's/.*data under \(\S*\) .*/\1/p' "$OUT/tls.stderr" | head -n 1 || true)
	[ -n "$data" ] && [ ! -e "$data" ] || fail "--tls: data dir \"$data\" left behind (or not logged)"
fi

# The tables go to the test log either way (a smoke run's figures: for reading, never for judging).
echo "---- table ----"
cat "$R/table.txt"
echo "---- catch-up table ----"
cat "$OUT/catchup/table.txt" 2>/dev/null || true
echo "---- TLS cost table ----"
cat "$OUT/tls/table.txt" 2>/dev/null || true
[ "$failures" = 0 ] || exit 1
echo "ok: compare.sh --quick measured both systems everywhere, wrote the table and 4 plots, left nothing behind;"
echo "    catchup_compare.sh --quick caught a follower up by snapshot in both and left nothing behind;"
echo "    compare.sh --tls --quick measured both systems plain and with TLS and printed the lead-held line"
