# tests/lib/harness.sh: what the shell integration tests share. Sourced by tests/cluster/lib.sh and
# tests/etcdctl/lib.sh (and through the first by tests/net/dpdk_cluster.sh, tests/discovery/lib.sh and
# tests/dataplane/mac_cluster_bench.sh), and by tests/net/01 and 04 directly, once they have checked their
# arguments. It sets TEST_NAME (the script's name without .sh), TMP (a private temp dir, removed at exit
# unless KEEP_TMP is set) and installs the cleanup trap. Optional settings before sourcing:
#   TMP_PREFIX     the temp dir's name: /tmp/TMP_PREFIX-NN.XXXXXX, NN the test's number (default qt)
#   HARNESS_LABEL  appended to the PASS/FAIL line (e.g. " against etcd")
#   SERVER         the server binary start_member runs (quorumd, or etcd)
#
# Test lifecycle
# - log, fail, assert_eq / assert_contains / assert_match (print expected against actual);
# - wait_until: conditions are awaited by bounded polling, never by a bare sleep;
# - every process the test starts is recorded with track_pid (tests/lib/proc.sh), and at exit (EXIT, INT,
#   TERM; also after a failed assertion) the cleanup kills only those, waits until they are gone, runs the
#   teardown steps registered with at_cleanup (a namespace, say, which must outlive its processes), prints
#   the last lines of every TMP/*.log when the test failed, then PASS, FAIL or SKIP (exit code 77).
#
# Members (servers that take etcd's flags; the suites' lib.sh add how to talk to them)
# - add_member NAME PEER_PORT [CLIENT_PORT] declares one on loopback; start_member / start_new_cluster /
#   start_raw start it, logging to TMP/NAME.log (appended to across restarts); running, kill9,
#   stop_member, wait_exit follow its process.
# - Hooks a lib.sh may redefine after sourcing: data_dir NAME (default TMP/NAME), member_flags NAME (append
#   flags to MEMBER_CMD), member_added NAME (after add_member).
set -euo pipefail
HARNESS_DIR=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
source "$HARNESS_DIR/proc.sh"

TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "/tmp/${TMP_PREFIX:-qt}-${TEST_NAME%%-*}.XXXXXX")
TEST_FAILED=0
# The first failure's one-line reason, repeated on the closing FAIL line: CI keeps only an output's tail, and
# the members' log tails printed on failure would otherwise push the reason out of it.
FAILURE_REASON=
HARNESS_LABEL=${HARNESS_LABEL:-}
CLEANUP_STEPS=()

log() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "$TEST_NAME" "$*" >&2; }

# at_cleanup COMMAND...: run COMMAND (words as given) at exit, after the test's processes are gone.
at_cleanup() { CLEANUP_STEPS+=("$(printf '%q ' "$@")"); }

cleanup() {
	local rc=$? step
	trap - EXIT INT TERM ERR
	set +e
	# A test whose own exit trap ran a command before this one (resuming a stopped member) reaches here with
	# that command's status: a failed assertion must still fail the test.
	if [ "$TEST_FAILED" -ne 0 ] && [ "$rc" -eq 0 ]; then rc=1; fi
	kill_tracked || echo "harness: a process of $TEST_NAME still runs 10 s after SIGKILL" >&2
	for step in "${CLEANUP_STEPS[@]}"; do eval "$step"; done
	if [ "$rc" -eq 77 ]; then
		echo "SKIP: $TEST_NAME$HARNESS_LABEL" >&2
	elif [ "$rc" -ne 0 ] || [ "$TEST_FAILED" -ne 0 ]; then
		local f
		for f in "$TMP"/*.log; do
			[ -e "$f" ] || continue
			echo "---- last lines of $(basename "$f") ----" >&2
			tail -n 30 "$f" >&2
		done
		echo "FAIL: $TEST_NAME$HARNESS_LABEL (exit code $rc)${FAILURE_REASON:+: $FAILURE_REASON}" >&2
	else
		echo "PASS: $TEST_NAME$HARNESS_LABEL ($SECONDS s)" >&2
	fi
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
# A command that fails outside an assertion ends the test through set -e: name it and where it was.
set -E
trap 'record_failure "command failed (status $?) at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# record_failure REASON: marks the test failed, keeping the first reason for the closing line.
record_failure() {
	TEST_FAILED=1
	[ -n "$FAILURE_REASON" ] || FAILURE_REASON=$1
}

fail() {
	record_failure "ASSERTION FAILED: $*"
	echo "ASSERTION FAILED: $*" >&2
	exit 1
}

# assert_eq DESCRIPTION EXPECTED ACTUAL
assert_eq() {
	if [ "$2" != "$3" ]; then
		record_failure "ASSERTION FAILED: $1"
		{
			echo "ASSERTION FAILED: $1"
			echo "--- expected ---"
			printf '%s\n' "$2"
			echo "--- actual ---"
			printf '%s\n' "$3"
			echo "--- diff (expected vs actual) ---"
			diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") || true
		} >&2
		exit 1
	fi
}

# assert_contains DESCRIPTION NEEDLE HAYSTACK
assert_contains() {
	case "$3" in
	*"$2"*) ;;
	*) record_failure "ASSERTION FAILED: $1"
	   printf 'ASSERTION FAILED: %s\n--- expected to contain ---\n%s\n--- actual ---\n%s\n' "$1" "$2" "$3" >&2
	   exit 1 ;;
	esac
}

# assert_match DESCRIPTION EXTENDED_REGEX ACTUAL: ACTUAL as a whole (all its lines) matches the regex.
assert_match() {
	if ! [[ "$3" =~ ^$2$ ]]; then
		record_failure "ASSERTION FAILED: $1"
		printf 'ASSERTION FAILED: %s\n--- expected to match ---\n%s\n--- actual ---\n%s\n' "$1" "$2" "$3" >&2
		exit 1
	fi
}

# run_captured COMMAND...: runs COMMAND; sets OUT, ERR and RC (never fails).
run_captured() {
	RC=0
	"$@" >"$TMP/.out" 2>"$TMP/.err" || RC=$?
	OUT=$(cat "$TMP/.out")
	ERR=$(cat "$TMP/.err")
}

# assert_captured_ok DESCRIPTION: the last run_captured command (DESCRIPTION names it) exited 0.
assert_captured_ok() {
	[ "$RC" -eq 0 ] && return 0
	record_failure "ASSERTION FAILED: $1 exited $RC"
	printf 'ASSERTION FAILED: %s exited %s\nstdout: %s\nstderr: %s\n' "$1" "$RC" "$OUT" "$ERR" >&2
	exit 1
}

# assert_no_sanitizer_reports: no AddressSanitizer, LeakSanitizer or UBSan report in any TMP/*.log (a
# sanitizer build's members print them at exit: call it after stopping them).
assert_no_sanitizer_reports() {
	local pattern='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:'
	if grep -lE "$pattern" "$TMP"/*.log >/dev/null 2>&1; then
		grep -hE -A 20 "$pattern" "$TMP"/*.log | head -n 60 >&2
		fail "a sanitizer report in the member logs"
	fi
}

# wait_until DESCRIPTION TIMEOUT_S COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_until() {
	local desc=$1 timeout=$2 deadline=$((SECONDS + $2 + 1))
	shift 2
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || fail "timed out after $timeout s waiting for: $desc"
		sleep 0.1
	done
	local waited=$((SECONDS - deadline + timeout + 1))
	[ "$waited" -lt 2 ] || log "waited ~$waited s for: $desc"
}

PYTHON=python3
[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3 # a pyenv shim costs a second per call
export PYTHON

# ---- members ----

TOKEN=etcd-cluster-1
declare -A PID=()      # member name -> PID of its running server (absent when not running)
declare -A PEER=()     # member name -> peer URL
declare -A CLIENT=()   # member name -> client URL (listened on and advertised)
MEMBERS=()             # member names in the order they were declared

data_dir() { echo "$TMP/$1"; }
member_flags() { :; }
member_added() { :; }

# add_member NAME PEER_PORT [CLIENT_PORT]: declares a member on loopback (not started); the client port
# defaults to PEER_PORT - 1.
add_member() {
	local name=$1 peer_port=$2 client_port=${3:-$(($2 - 1))}
	MEMBERS+=("$name")
	PEER[$name]="http://127.0.0.1:$peer_port"
	CLIENT[$name]="http://127.0.0.1:$client_port"
	member_added "$name"
}

# initial_cluster NAME...: NAME=PEER_URL,...
initial_cluster() {
	local out="" n
	for n in "$@"; do out+="${out:+,}$n=${PEER[$n]}"; done
	echo "$out"
}

# endpoints NAME...: the members' client URLs joined by commas (for --endpoints=).
endpoints() {
	local out="" n
	for n in "$@"; do out+="${out:+,}${CLIENT[$n]}"; done
	echo "$out"
}

# member_cmd NAME INITIAL_CLUSTER STATE: MEMBER_CMD = SERVER with etcd's flags for the member, then
# member_flags'. A caller may run it behind a prefix (ip netns exec ...) with start_raw.
member_cmd() {
	local name=$1
	MEMBER_CMD=("$SERVER" --name "$name" --data-dir "$(data_dir "$name")"
		--listen-peer-urls "${PEER[$name]}" --initial-advertise-peer-urls "${PEER[$name]}"
		--listen-client-urls "${CLIENT[$name]}" --advertise-client-urls "${CLIENT[$name]}"
		--initial-cluster-token "$TOKEN" --initial-cluster "$2" --initial-cluster-state "$3")
	member_flags "$name"
}

# start_member NAME INITIAL_CLUSTER STATE [extra server flags...]
start_member() {
	local name=$1
	member_cmd "$name" "$2" "$3"
	shift 3
	start_raw "$name" "${MEMBER_CMD[@]}" "$@"
}

# start_raw NAME COMMAND...: runs COMMAND (the server, maybe behind env VAR=... or ip netns exec, which
# exec it: the PID stays the server's) in the background as member NAME, logging to NAME's log.
start_raw() {
	local name=$1
	shift
	"$@" 2>>"$TMP/$name.log" &
	PID[$name]=$!
	track_pid "$!"
}

# start_new_cluster NAME...: starts the named members as a new cluster of exactly those members.
start_new_cluster() {
	local ic n
	ic=$(initial_cluster "$@")
	for n in "$@"; do start_member "$n" "$ic" new; done
}

# running NAME: true while the member's process is alive (a zombie is not).
running() { pid_alive "${PID[$1]:-}"; }
not_running() { ! running "$1"; }

# kill9 NAME: SIGKILL; returns once it is gone and reaped.
kill9() {
	local p=${PID[$1]:-}
	[ -n "$p" ] || return 0
	kill_pids "$p" || fail "$1 (pid $p) still runs 10 s after SIGKILL"
	unset "PID[$1]"
}

# stop_member NAME: SIGTERM, up to 10 s to exit, then SIGKILL.
stop_member() {
	local p=${PID[$1]:-}
	[ -n "$p" ] || return 0
	stop_pids 10 "$p" || fail "$1 (pid $p) still runs 10 s after SIGKILL"
	unset "PID[$1]"
}

# wait_exit NAME TIMEOUT_S: waits until the member's process exits by itself; sets EXIT_CODE (127 when the
# process was not this shell's child, so its status is unknown).
wait_exit() {
	local p=${PID[$1]}
	wait_gone "$(($2 + 1))" "$p" || fail "$1 (pid $p) did not exit within $2 s"
	reap_pid "$p"
	EXIT_CODE=$REAPED_STATUS
	unset "PID[$1]"
}

# log_has NAME TEXT: the member's log contains TEXT.
log_has() { grep -qF -- "$2" "$TMP/$1.log"; }

# pad16 HEX: the ID as etcdctl's %16x prints it (left-padded with spaces to 16 characters).
pad16() { printf '%16s' "$1"; }
