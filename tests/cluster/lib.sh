# tests/cluster/lib.sh: the harness for integration tests that start real quorumd processes on loopback and
# drive them with quorumctl through each member's control socket. Sourced by each test script, which is called
# as: TEST.sh PATH/quorumd PATH/quorumctl
#
# The test lifecycle (temp dir, cleanup of every PID started, failure log tails, assertions, wait_until) and
# the members (add_member, start_member, running, kill9, stop_member, wait_exit, ...) are tests/lib/harness.sh's.
# Here: a member's data dir is TMP/NAME, created when it is declared, so its control socket is
# TMP/NAME/control.sock; the quorumctl helpers; and for the space and disk tests, etcdctl against one member
# and small loop-mounted file systems. Each test uses its own fixed peer ports (passed to
# add_member), so tests cannot collide with each other.
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 PATH/quorumd PATH/quorumctl" >&2
	exit 2
fi
QUORUMD=$(realpath "$1")
QUORUMCTL=$(realpath "$2")
SERVER=$QUORUMD
TMP_PREFIX=qc
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../lib/harness.sh"

member_added() { mkdir -p "$TMP/$1"; }
sock() { echo "$TMP/$1/control.sock"; }

# ---- quorumctl ----

# ctl NAME ARGS...: runs quorumctl against NAME's control socket; sets OUT, ERR and RC (never fails).
ctl() {
	local name=$1
	shift
	run_captured "$QUORUMCTL" --control-socket "$(sock "$name")" "$@"
}

# ctl_ok NAME ARGS...: like ctl, but the command must succeed.
ctl_ok() {
	ctl "$@"
	assert_captured_ok "quorumctl on $1: ${*:2}"
}

# expect_error NAME EXPECTED_STDERR ARGS...: the command must exit 1 and print exactly EXPECTED_STDERR.
expect_error() {
	local name=$1 expected=$2
	shift 2
	ctl "$name" "$@"
	assert_eq "exit code of quorumctl $* (stderr: $ERR)" 1 "$RC"
	assert_eq "stderr of quorumctl $*" "$expected" "$ERR"
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

# counter NAME KEY: a transport counter from the control socket's `counters` command (empty if unreachable).
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

# ---- etcdctl against one member, and small file systems (the space and disk tests, 24-29) ----
export ETCDCTL_API=3
nospace="etcdserver: mvcc: database space exceeded"
ETCDCTL_TIMEOUT=${ETCDCTL_TIMEOUT:-5s}
# e NAME ARGS...: etcdctl ARGS against member NAME's client URL.
e() { local n=$1; shift; etcdctl --endpoints="${CLIENT[$n]}" --command-timeout="$ETCDCTL_TIMEOUT" "$@"; }
# ectl NAME ARGS...: the same; sets OUT, ERR (without clientv3's retry warnings) and RC.
ectl() {
	run_captured e "$@"
	ERR=$(grep -v '^{"level":"warn"' <<<"$ERR" || true)
}
healthy() { e "$1" endpoint health >/dev/null 2>&1; }
# decimal_id NAME: the member's ID as etcdctl's JSON prints it.
decimal_id() { "$PYTHON" -c 'import sys; print(int(sys.argv[1], 16))' "$(e "$1" endpoint status | awk -F', ' '{ print $2 }')"; }

# require_small_file_systems: skips the test (exit 77) unless it can make loop-mounted file systems.
require_small_file_systems() {
	command -v etcdctl >/dev/null || fail "etcdctl (Debian's etcd-client) is needed"
	if [ "$(id -u)" -ne 0 ] || ! command -v mkfs.ext4 >/dev/null || ! command -v losetup >/dev/null; then
		echo "skipped: needs root, mkfs.ext4 and losetup for small loop-mounted file systems" >&2
		exit 77
	fi
}
# small_file_system SIZE MOUNT_POINT: a fresh ext4 file system of SIZE (truncate's units, e.g. 64M) in an
# image next to MOUNT_POINT, loop-mounted there until the test ends (unmounted and detached by at_cleanup,
# also on failure); skipped (exit 77) without a free loop device.
small_file_system() {
	local size=$1 mount_point=$2 image=$2.img loop
	mkdir -p "$mount_point"
	truncate -s "$size" "$image"
	mkfs.ext4 -q -F "$image" || fail "mkfs.ext4 $image"
	loop=$(losetup --find --show "$image") || { echo "skipped: no loop device" >&2; exit 77; }
	at_cleanup release_small_file_system "$mount_point" "$loop"
	mount "$loop" "$mount_point" || fail "mount $loop"
}
release_small_file_system() {
	umount "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
	losetup -d "$2" 2>/dev/null
}

# start_with_wal_segments NAME BYTES INITIAL_CLUSTER [FLAGS...]: member NAME started (state new) with WAL
# segments of BYTES, a test setting (QUORUMD_TEST_WAL_SEGMENT_BYTES): segments released after a few thousand
# writes, or small enough to fit twice on a small file system; FLAGS appended.
start_with_wal_segments() {
	local name=$1 bytes=$2
	member_cmd "$name" "$3" new
	shift 3
	start_raw "$name" env QUORUMD_TEST_WAL_SEGMENT_BYTES="$bytes" "${MEMBER_CMD[@]}" "$@"
}
