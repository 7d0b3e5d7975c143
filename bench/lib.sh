#!/usr/bin/env bash
# bench/lib.sh: what the benchmark scripts that run clusters from the build share (compare.sh,
# catchup_compare.sh, cpu_budget.sh), sourced after tests/lib/proc.sh (track_pid, kill_tracked): the scratch
# directory on a real disk, the exit trap that stops everything they started, and whether a port is taken.
# BENCH_NAME, the script's file name, starts their messages; QB and QD are quorum-bench and quorumd of the
# build in BUILD (the script sets it before sourcing this), unless QUORUM_BENCH or QUORUMD name others.

BENCH_NAME=$(basename "$0")
QB=${QUORUM_BENCH:-$BUILD/bench/quorum-bench}
QD=${QUORUMD:-$BUILD/control/quorumd}

# bench_scratch_dir VARIABLE PREFIX: TMP, a new directory PREFIX.XXXXXX below the directory the variable
# named VARIABLE holds (default /var/tmp). Refused (exit 2) on a tmpfs: the members' data dirs must sit on
# a real disk, since fdatasync on a tmpfs costs nothing and would flatter whatever is measured.
bench_scratch_dir() {
	local parent=${!1:-/var/tmp}
	if [ "$(stat -f -c %T "$parent")" = tmpfs ]; then
		echo "$BENCH_NAME: $parent is a tmpfs (fdatasync there costs nothing); set $1 to a directory on the disk to measure" >&2
		exit 2
	fi
	TMP=$(mktemp -d "$parent/$2.XXXXXX")
}

# bench_exit_trap [COMMAND]: from here on, at exit and on SIGINT or SIGTERM (exit 130 or 143), every
# tracked process is stopped, COMMAND (what else the script set up) runs, a failed run shows the last
# lines of each TMP/*.log, and TMP goes unless KEEP_TMP is set.
bench_exit_trap() {
	BENCH_EXIT_ALSO=${1:-}
	trap bench_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

bench_exit() {
	local rc=$?
	trap - EXIT INT TERM
	kill_tracked || echo "$BENCH_NAME: a process still runs 10 s after SIGKILL" >&2
	[ -z "$BENCH_EXIT_ALSO" ] || "$BENCH_EXIT_ALSO"
	if [ "$rc" = 130 ] || [ "$rc" = 143 ]; then
		echo "$BENCH_NAME: interrupted; stopped everything it started" >&2
	elif [ "$rc" -ne 0 ]; then
		for f in "$TMP"/*.log; do
			[ -e "$f" ] || continue
			echo "---- last lines of $(basename "$f") ----" >&2
			tail -n 15 "$f" >&2 || true
		done
	fi
	if [ -n "${KEEP_TMP:-}" ]; then echo "$BENCH_NAME: kept $TMP" >&2; else rm -rf "$TMP"; fi
	exit "$rc"
}

# bench_port_busy PORT: something holds PORT (TCP or UDP, time-wait aside).
bench_port_busy() { [ -n "$(ss -Htuan exclude time-wait "( sport = :$1 )" 2>/dev/null)" ]; }
