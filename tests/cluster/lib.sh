# tests/cluster/lib.sh: harness for integration tests that start real quorumd processes on loopback.
# Sourced by each test script, which is called as: TEST.sh PATH/quorumd PATH/quorumctl
#
# - Every member gets a data dir under a private temp dir; its control socket is DATA_DIR/control.sock and
#   its log (JSON lines on stderr) is TMP/NAME.log (appended to across restarts).
# - Each test uses its own fixed peer ports (passed to add_member), so tests cannot collide with each other.
# - Conditions are awaited with bounded polling loops (wait_until), never with a bare sleep.
# - Cleanup (trap on EXIT, INT and TERM) kills only the PIDs this script started, waits for them and removes
#   the temp dir, also when an assertion fails; on failure it prints the tail of every member's log.
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 PATH/quorumd PATH/quorumctl" >&2
	exit 2
fi
QUORUMD=$(realpath "$1")
QUORUMCTL=$(realpath "$2")
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "/tmp/qc-${TEST_NAME%%-*}.XXXXXX")
TOKEN=etcd-cluster-1

declare -A PID=()      # member name -> PID of its running quorumd (absent when not running)
declare -A PEER=()     # member name -> peer URL
declare -A CLIENT=()   # member name -> advertised client URL
declare -A FLAGS=()    # member name -> extra flags used at every start
MEMBERS=()             # member names in the order they were declared
STARTED_PIDS=()        # every PID this script ever started
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../lib/harness.sh"

# ---- members ----

# add_member NAME PEER_PORT [CLIENT_PORT]: declares a member (not started).
add_member() {
	local name=$1 peer_port=$2 client_port=${3:-$(($2 - 1))}
	MEMBERS+=("$name")
	PEER[$name]="http://127.0.0.1:$peer_port"
	CLIENT[$name]="http://127.0.0.1:$client_port"
	FLAGS[$name]=""
	mkdir -p "$TMP/$name"
}

data_dir() { echo "$TMP/$1"; }
sock() { echo "$TMP/$1/control.sock"; }

# initial_cluster NAME...: NAME=PEER_URL,...
initial_cluster() {
	local out="" n
	for n in "$@"; do out+="${out:+,}$n=${PEER[$n]}"; done
	echo "$out"
}

# start_member NAME INITIAL_CLUSTER STATE [extra quorumd flags...]
start_member() {
	local name=$1 ic=$2 state=$3
	shift 3
	# shellcheck disable=SC2086
	"$QUORUMD" --name "$name" --data-dir "$TMP/$name" \
		--listen-peer-urls "${PEER[$name]}" --initial-advertise-peer-urls "${PEER[$name]}" \
		--listen-client-urls "${CLIENT[$name]}" --advertise-client-urls "${CLIENT[$name]}" \
		--initial-cluster-token "$TOKEN" --initial-cluster "$ic" --initial-cluster-state "$state" \
		${FLAGS[$name]} "$@" 2>>"$TMP/$name.log" &
	PID[$name]=$!
	STARTED_PIDS+=("$!")
}

# start_raw NAME COMMAND...: runs COMMAND (quorumd, maybe behind env VAR=...) in the background as member NAME,
# logging to NAME's log, and records its PID.
start_raw() {
	local name=$1
	shift
	"$@" 2>>"$TMP/$name.log" &
	PID[$name]=$!
	STARTED_PIDS+=("$!")
}

# start_new_cluster NAME...: starts the named members as a new cluster of exactly those members.
start_new_cluster() {
	local ic n
	ic=$(initial_cluster "$@")
	for n in "$@"; do start_member "$n" "$ic" new; done
}

# running NAME: true while the member's process is alive.
running() { [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null; }

# kill9 NAME: SIGKILL and reap.
kill9() {
	local p=${PID[$1]:-}
	[ -n "$p" ] || return 0
	kill -9 "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset "PID[$1]"
}

# stop_member NAME: SIGTERM, wait up to 10 s for the exit, then SIGKILL.
stop_member() {
	local p=${PID[$1]:-} i
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset "PID[$1]"
}

# wait_exit NAME TIMEOUT_S: waits until the member's process exits by itself; sets EXIT_CODE.
wait_exit() {
	local p=${PID[$1]} deadline=$((SECONDS + $2 + 1))
	while kill -0 "$p" 2>/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || fail "$1 (pid $p) did not exit within $2 s"
		sleep 0.1
	done
	EXIT_CODE=0
	wait "$p" 2>/dev/null || EXIT_CODE=$?
	unset "PID[$1]"
}

# ---- quorumctl ----

# ctl NAME ARGS...: runs quorumctl against NAME's control socket; sets OUT, ERR and RC (never fails).
ctl() {
	local name=$1
	shift
	RC=0
	"$QUORUMCTL" --control-socket "$(sock "$name")" "$@" >"$TMP/.out" 2>"$TMP/.err" || RC=$?
	OUT=$(cat "$TMP/.out")
	ERR=$(cat "$TMP/.err")
}

# ctl_ok NAME ARGS...: like ctl, but the command must succeed.
ctl_ok() {
	ctl "$@"
	if [ "$RC" -ne 0 ]; then
		TEST_FAILED=1
		printf 'ASSERTION FAILED: quorumctl on %s: %s exited %s\nstdout: %s\nstderr: %s\n' "$1" "${*:2}" \
			"$RC" "$OUT" "$ERR" >&2
		exit 1
	fi
}

# expect_error NAME EXPECTED_STDERR ARGS...: the command must exit 1 and print exactly EXPECTED_STDERR.
expect_error() {
	local name=$1 expected=$2
	shift 2
	ctl "$name" "$@"
	assert_eq "exit code of quorumctl $* (stderr: $ERR)" 1 "$RC"
	assert_eq "stderr of quorumctl $*" "$expected" "$ERR"
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

# status_field NAME FIELD: one field of `endpoint status` (simple output) of NAME; empty if unreachable.
# Fields: 1 endpoint, 2 id, 3 version, 4 db size, 5 is leader, 6 is learner, 7 term, 8 index, 9 applied, 10 errors
status_field() {
	local out
	out=$("$QUORUMCTL" --control-socket "$(sock "$1")" --command-timeout=2s endpoint status 2>/dev/null) || return 0
	awk -F', ' -v f="$2" '{ print $f }' <<<"$out"
}

# member_id NAME: the member's ID as endpoint status reports it.
member_id() { status_field "$1" 2; }

# leader_among NAME...: prints the name of the member that reports IS LEADER true (first one found).
leader_among() {
	local n
	for n in "$@"; do
		running "$n" || continue
		if [ "$(status_field "$n" 5)" = true ]; then
			echo "$n"
			return 0
		fi
	done
	return 1
}

# has_leader NAME...: true when one of them is leader and every one of them knows a leader.
has_leader() {
	leader_among "$@" >/dev/null || return 1
	local n out
	for n in "$@"; do
		out=$("$QUORUMCTL" --control-socket "$(sock "$n")" --command-timeout=2s endpoint status -w json \
			2>/dev/null) || return 1
		# quorumctl leaves "leader" out of the JSON when the member knows no leader (0).
		case "$out" in *'"leader":'*) ;; *) return 1 ;; esac
		case "$out" in *'"errors"'*) return 1 ;; esac
	done
}

# wait_leader TIMEOUT NAME...: waits until the named members agree there is a leader; sets LEADER.
wait_leader() {
	local t=$1
	shift
	wait_until "a leader among $*" "$t" has_leader "$@"
	LEADER=$(leader_among "$@")
}

# can_put NAME KEY VALUE: true when the put prints OK.
can_put() {
	local out
	out=$("$QUORUMCTL" --control-socket "$(sock "$1")" --command-timeout=2s put "$2" "$3" 2>/dev/null) || return 1
	[ "$out" = OK ]
}

# put_get NAME KEY VALUE: put through NAME prints OK, and a linearizable get through NAME returns it.
put_get() {
	ctl_ok "$1" put "$2" "$3"
	assert_eq "put $2 through $1" OK "$OUT"
	ctl_ok "$1" get "$2"
	assert_eq "get $2 through $1" "$2"$'\n'"$3" "$OUT"
}

# applied_converged NAME...: every member's RAFT APPLIED INDEX equals the leader's RAFT INDEX.
applied_converged() {
	local leader idx n
	leader=$(leader_among "$@") || return 1
	idx=$(status_field "$leader" 8)
	[ -n "$idx" ] || return 1
	for n in "$@"; do
		[ "$(status_field "$n" 9)" = "$idx" ] || return 1
	done
}

# log_has NAME TEXT: the member's log contains TEXT.
log_has() { grep -qF -- "$2" "$TMP/$1.log"; }

# counter NAME KEY: a transport counter from the control socket's `counters` command (empty if unreachable).
PYTHON=python3
[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3 # a pyenv shim costs a second per call
counter() {
	"$PYTHON" - "$(sock "$1")" "$2" <<'EOF' 2>/dev/null || true
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(b'{"id":1,"command":"counters"}\n')
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
print(json.loads(buf)["result"]["transport"][sys.argv[2]])
EOF
}

# cluster_id NAME: the cluster ID the member logged at its start ("cluster-id" field).
cluster_id() { sed -n 's/.*"cluster-id":"\([0-9a-f]*\)".*/\1/p' "$TMP/$1.log" | head -n 1; }

# pad16 HEX: the ID as etcdctl's %16x prints it (left-padded with spaces to 16 characters).
pad16() { printf '%16s' "$1"; }

# all_published NAME...: every named member's `member list` shows each named member started under its name.
all_published() {
	local n m out
	for n in "$@"; do
		out=$("$QUORUMCTL" --control-socket "$(sock "$n")" --command-timeout=2s member list 2>/dev/null) || return 1
		for m in "$@"; do
			grep -q ", started, $m, " <<<"$out" || return 1
		done
	done
}

# wait_ready TIMEOUT NAME...: a leader among them, and all of them published (started) in everyone's view.
wait_ready() {
	local t=$1
	shift
	wait_until "all of $* started in every member's list" "$t" all_published "$@"
	wait_leader "$t" "$@"
}

# log_ms LOGLINE: the line's "ts" (UTC time of day) in milliseconds.
log_ms() {
	sed -n 's/.*"ts":"[^T]*T\([0-9:.]*\)Z".*/\1/p' <<<"$1" | awk -F: '{ printf "%d\n", ($1 * 3600 + $2 * 60 + $3) * 1000 }'
}
