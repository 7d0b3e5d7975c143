# tests/etcdctl/lib.sh: harness for tests that drive a cluster with the real etcdctl 3.4 (ETCDCTL_API=3) over
# the etcd v3 gRPC API on the members' client URLs. Sourced by each test script, which is called as
#     TEST.sh PATH/TO/quorumd      or      TEST.sh PATH/TO/etcd
# The same script runs against both: the expected outputs were taken from the real etcd 3.4.23 (Debian's
# etcd-server), and run-against-etcd.sh re-checks them. The target is etcd when the binary is called `etcd` or
# its --version output starts with "etcd Version:"; otherwise it is quorumd, which gets --control-socket too.
#
# The test lifecycle (temp dir, cleanup of every PID started, including background etcdctl processes;
# failure log tails, assertions, wait_until) and the members (add_member, start_member, running, stop_member,
# wait_exit, ...) are tests/lib/harness.sh's. Here: which server it is, its data dir TMP/NAME.data, etcd's
# zap logging to TMP/NAME.log, and the etcdctl helpers.
#
# Each test uses its own fixed block of 100 ports in 24000-25999, named in its header: member K has peer port
# BASE + 10 * K and client port one below it (BASE 24200: 24210, 24209). The block is below Linux's ephemeral
# range (32768-60999): a member's port in that range can be taken by some process's outgoing connection
# (seen here: "bind: address already in use" on 448x0 while another etcd benchmark ran). Member IDs derive
# from the peer URLs, so the ports fix the IDs the expected outputs show.
set -euo pipefail

if [ $# -lt 1 ]; then
	echo "usage: $0 PATH/quorumd|PATH/etcd" >&2
	exit 2
fi
TARGET=$(command -v "$1" || true)
[ -n "$TARGET" ] && [ -x "$TARGET" ] || { echo "$0: no executable $1" >&2; exit 2; }
TARGET=$(realpath "$TARGET")
if [ "$(basename "$TARGET")" = etcd ] || "$TARGET" --version 2>/dev/null | grep -q '^etcd Version:'; then
	KIND=etcd
else
	KIND=quorumd
fi
ETCDCTL=${ETCDCTL:-$(command -v etcdctl || true)}
[ -n "$ETCDCTL" ] || { echo "$0: etcdctl not found (Debian package etcd-client)" >&2; exit 2; }
export ETCDCTL_API=3
unset ETCDCTL_ENDPOINTS ETCDCTL_DIAL_TIMEOUT ETCDCTL_COMMAND_TIMEOUT ETCDCTL_WRITE_OUT

SERVER=$TARGET
TMP_PREFIX=qe
HARNESS_LABEL=" against $KIND"
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../lib/harness.sh"

# ---- members ----

data_dir() { echo "$TMP/$1.data"; }

# server_flags NAME: what every start of a member adds to etcd's cluster flags: etcd's JSON logs on stderr
# (the member's log), and for quorumd its operator socket (etcd has no such flag).
server_flags() {
	echo "--logger=zap --log-outputs=stderr"
	[ "$KIND" != quorumd ] || echo "--control-socket $TMP/$1.sock"
}
# shellcheck disable=SC2207 # TMP has no spaces (mktemp above)
member_flags() { MEMBER_CMD+=($(server_flags "$1")); }

# ---- etcdctl ----

# ctl ARGS...: runs etcdctl ARGS; sets OUT, ERR and RC (never fails). Input comes from CTL_STDIN when set.
ctl() { run_captured "$ETCDCTL" "$@" <"${CTL_STDIN:-/dev/null}"; }

# ctl_ok ARGS...: like ctl, but the command must succeed (exit 0).
ctl_ok() {
	ctl "$@"
	assert_captured_ok "etcdctl $*"
}

# expect_out EXPECTED_STDOUT ARGS...: etcdctl ARGS must succeed and print exactly EXPECTED_STDOUT.
expect_out() {
	local expected=$1
	shift
	ctl_ok "$@"
	assert_eq "stdout of etcdctl $*" "$expected" "$OUT"
}

# expect_error EXPECTED_STDERR ARGS...: etcdctl ARGS must exit 1 and print exactly EXPECTED_STDERR, no stdout.
expect_error() {
	local expected=$1
	shift
	ctl "$@"
	assert_eq "exit code of etcdctl $* (stdout: $OUT; stderr: $ERR)" 1 "$RC"
	assert_eq "stderr of etcdctl $*" "$expected" "$ERR"
	assert_eq "stdout of etcdctl $*" "" "$OUT"
}

# status_field NAME FIELD: one field of `endpoint status` (simple output) of NAME; empty if unreachable.
# Fields: 1 endpoint, 2 id, 3 version, 4 db size, 5 is leader, 6 is learner, 7 term, 8 index, 9 applied,
# 10 errors.
status_field() {
	local out
	out=$("$ETCDCTL" --endpoints="${CLIENT[$1]}" --dial-timeout=1s --command-timeout=2s endpoint status \
		2>/dev/null) || return 0
	awk -F', ' -v f="$2" '{ print $f }' <<<"$out"
}

# member_id NAME: the member's ID (hex) as endpoint status reports it.
member_id() { status_field "$1" 2; }

# status_rows NAME...: `endpoint status` (simple output) of the named members in one etcdctl call, one line
# each (fields as for status_field); unreachable members are left out.
status_rows() {
	"$ETCDCTL" --endpoints="$(endpoints "$@")" --dial-timeout=1s --command-timeout=2s endpoint status \
		2>/dev/null || true
}

# name_of CLIENT_URL: the member name with that client URL.
name_of() {
	local n
	for n in "${MEMBERS[@]}"; do
		[ "${CLIENT[$n]}" != "$1" ] || { echo "$n"; return 0; }
	done
	return 1
}

# leader_among NAME...: prints the name of the member among them that reports IS LEADER true.
leader_among() {
	local ep
	ep=$(status_rows "$@" | awk -F', ' '$5 == "true" { print $1; exit }')
	[ -n "$ep" ] && name_of "$ep"
}

# has_leader NAME...: one of them reports IS LEADER true.
has_leader() { leader_among "$@" >/dev/null; }

# all_healthy NAME...: `endpoint health` of all of them succeeds (a quorum read through each of them).
all_healthy() {
	"$ETCDCTL" --endpoints="$(endpoints "$@")" --dial-timeout=1s --command-timeout=2s endpoint health \
		>/dev/null 2>&1
}

# all_published NAME...: member list (through the first) shows every named member started under its name.
all_published() {
	local out m
	out=$("$ETCDCTL" --endpoints="${CLIENT[$1]}" --dial-timeout=1s --command-timeout=2s member list \
		2>/dev/null) || return 1
	for m in "$@"; do
		grep -q ", started, $m, " <<<"$out" || return 1
	done
}

# applied_converged NAME...: all of them answer, one is leader, and every one's RAFT APPLIED INDEX equals the
# leader's RAFT INDEX.
applied_converged() {
	status_rows "$@" | awk -F', ' -v n=$# '
		{ rows++; applied[rows] = $9; if ($5 == "true") idx = $8 }
		END {
			if (rows != n || idx == "") exit 1
			for (i = 1; i <= rows; i++) if (applied[i] != idx) exit 1
		}'
}

# wait_ready TIMEOUT NAME...: all of them healthy, published, with one leader among them; sets LEADER.
wait_ready() {
	local t=$1
	shift
	wait_until "endpoint health of $*" "$t" all_healthy "$@"
	wait_until "all of $* started in member list" "$t" all_published "$@"
	wait_until "a leader among $*" "$t" has_leader "$@"
	LEADER=$(leader_among "$@")
}

# table_cells TABLE: the cells of an etcdctl table, one row per line, cells trimmed and joined by '|';
# the border lines must be exactly etcdctl's (+---+ with each column as wide as its widest cell plus 2).
table_cells() {
	awk '
		/^\+/ { next }
		{
			line = ""
			n = split($0, c, "|")
			for (i = 2; i < n; i++) { gsub(/^ +| +$/, "", c[i]); line = line (i > 2 ? "|" : "") c[i] }
			print line
		}' <<<"$1"
}

# check_table_layout DESCRIPTION TABLE: the table is laid out as etcdctl (tablewriter) lays it out: a border,
# the header, a border, the rows, a border; every column as wide as its widest cell plus one space each side.
# (Cell contents are compared with table_cells; exact whole tables are compared where nothing is volatile.)
check_table_layout() {
	local desc=$1 table=$2 border widths
	# etcdctl's table writer counts characters, awk (mawk) and a C-locale bash count bytes: a duration under a
	# millisecond ("850.1µs", health's TOOK) would make its column look one wider than its border.
	table=${table//µ/u}
	border=$(head -n 1 <<<"$table")
	widths=$(awk -F'|' '
		/^\+/ { next }
		{ for (i = 2; i < NF; i++) if (length($i) > w[i]) w[i] = length($i); n = NF }
		END { s = "+"; for (i = 2; i < n; i++) { for (j = 0; j < w[i]; j++) s = s "-"; s = s "+" } print s }' \
		<<<"$table")
	assert_eq "$desc: border line" "$widths" "$border"
	assert_eq "$desc: border lines (1st, 3rd, last)" "$border"$'\n'"$border"$'\n'"$border" \
		"$(sed -n '1p;3p;$p' <<<"$table")"
	local line
	while IFS= read -r line; do
		[ "${#line}" -eq "${#border}" ] || fail "$desc: a line is not as wide as the border: '$line'"
	done <<<"$table"
}

# mask_fields CELLS COLUMNS...: replaces the given 1-based columns of '|'-joined cell rows with '*'.
mask_fields() {
	local cells=$1
	shift
	awk -F'|' -v OFS='|' -v cols="$*" '
		BEGIN { n = split(cols, m, " ") }
		{ for (i = 1; i <= n; i++) $m[i] = "*"; print }' <<<"$cells"
}

# version_ok VERSION: the server version etcdctl shows (endpoint status) is an etcd 3.4 API version.
version_ok() { [[ "$1" =~ ^3\.4\.[0-9]+ ]]; }

# lease_id LINE: the lease ID (hex) from etcdctl's "lease ID granted with TTL(Ns)".
lease_id() { sed -n 's/^lease \([0-9a-f]*\) granted with TTL.*/\1/p' <<<"$1"; }

# expect_rpc_error CODE DESC EXPECTED_LAST_STDERR_LINE ARGS...: etcdctl ARGS must exit 1 with no stdout, its
# last stderr line must be EXPECTED_LAST_STDERR_LINE, and clientv3's retry interceptor must have logged the
# gRPC status it got: "error":"rpc error: code = CODE desc = DESC" (CODE as grpc-go names it: OutOfRange,
# NotFound, Unavailable, FailedPrecondition, InvalidArgument, ...). That log line carries a time stamp and a
# random client ID, so only that field is compared.
expect_rpc_error() {
	local code=$1 desc=$2 expected=$3
	shift 3
	ctl "$@"
	assert_eq "exit code of etcdctl $* (stdout: $OUT; stderr: $ERR)" 1 "$RC"
	assert_eq "stdout of etcdctl $*" "" "$OUT"
	assert_eq "last stderr line of etcdctl $*" "$expected" "$(tail -n 1 <<<"$ERR")"
	assert_contains "gRPC status etcdctl $* received" "\"error\":\"rpc error: code = $code desc = $desc\"" "$ERR"
}

# mask_term JSON: etcdctl's JSON or fields output with the raft term (which elections decide) replaced by T.
mask_term() { sed -e 's/"raft_term":[0-9]*/"raft_term":T/g' -e 's/^"RaftTerm" : [0-9]*$/"RaftTerm" : T/' <<<"$1"; }

# start_with_printed_env NAME MEMBER_ADD_OUTPUT LISTEN_PEER_URL: starts member NAME as an operator does after
# `member add`: with exactly the ETCD_* variables etcdctl printed (four of them, each quoted as Go's %q
# prints it), plus where it listens.
start_with_printed_env() {
	local name=$1 line vars=()
	while IFS= read -r line; do
		case "$line" in ETCD_*=\"*\") vars+=("${line%%=*}=$(sed 's/^[^=]*="\(.*\)"$/\1/' <<<"$line")") ;; esac
	done <<<"$2"
	assert_eq "number of ETCD_* variables printed" 4 "${#vars[@]}"
	# shellcheck disable=SC2046
	start_raw "$name" env "${vars[@]}" "$TARGET" --data-dir "$(data_dir "$name")" --listen-peer-urls "$3" \
		--listen-client-urls "${CLIENT[$name]}" --advertise-client-urls "${CLIENT[$name]}" $(server_flags "$name")
}

# ctl_bg FILE ARGS...: runs etcdctl ARGS in the background (e.g. a watch), stdout to TMP/FILE, stderr to
# TMP/FILE.err; sets BG_PID. Cleanup kills it.
ctl_bg() {
	local file=$1
	shift
	"$ETCDCTL" "$@" </dev/null >"$TMP/$file" 2>"$TMP/$file.err" &
	BG_PID=$!
	track_pid "$!"
}

# file_is FILE EXPECTED: TMP/FILE holds exactly EXPECTED (both without their final newlines).
file_is() { [ "$(cat "$TMP/$1")" = "$(printf '%s' "$2")" ]; }

# wait_output FILE TIMEOUT EXPECTED: waits until TMP/FILE holds EXPECTED; fails showing the difference.
wait_output() {
	local file=$1 t=$2 expected=$3 deadline=$((SECONDS + $2 + 1))
	until file_is "$file" "$expected"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			assert_eq "output of background etcdctl $file after $t s (stderr: $(cat "$TMP/$file.err"))" \
				"$(printf '%s' "$expected")" "$(cat "$TMP/$file")"
		fi
		sleep 0.1
	done
}


# ctl_retry_unhealthy TIMEOUT ARGS...: runs etcdctl ARGS until it succeeds, for at most TIMEOUT s, as long as
# it is refused with "etcdserver: unhealthy cluster": etcd refuses member changes until every voter has been
# connected to the leader for 5 s (so right after a start or restart), and a refusal changes nothing. Any other
# failure fails the test. Sets OUT, ERR and RC like ctl.
ctl_retry_unhealthy() {
	local t=$1
	shift
	_try_member_change() {
		ctl "$@"
		[ "$RC" -eq 0 ] && return 0
		case "$ERR" in
		*"Error: etcdserver: unhealthy cluster") return 1 ;;
		esac
		fail "etcdctl $* failed (exit code $RC): $ERR"
	}
	wait_until "etcdctl $* accepted" "$t" _try_member_change "$@"
}

# find_tool VAR NAME GIVEN RELATIVE_PATH: sets VAR to GIVEN (a test's argument or environment variable), or to
# the tool NAME at RELATIVE_PATH in the build dir beside the server under test or under build/; a usage error
# (exit 2) when there is none.
find_tool() {
	local candidate found=$3
	if [ -z "$found" ]; then
		for candidate in "$(dirname "$TARGET")/../$4" "$(dirname "$0")/../../build/$4"; do
			[ -x "$candidate" ] && { found=$candidate; break; }
		done
	fi
	[ -n "$found" ] && [ -x "$found" ] || { echo "$0: $2 not found (give its path as an argument)" >&2; exit 2; }
	printf -v "$1" '%s' "$found"
}

# one_client_puts ENDPOINT FILE: one client's 1,000 puts of 256-byte values through ENDPOINT (host:port) with
# quorum-bench (BENCH), its JSON report kept in FILE; sets PUTS_P99 and PUTS_MAX (ms). A failed run fails the test.
one_client_puts() {
	"$BENCH" --endpoints="$1" --clients=1 --total=1000 --progress=false --json \
		put --key-size=16 --val-size=256 --key-space-size=100 >"$2" || fail "quorum-bench puts through $1: $(cat "$2")"
	read -r PUTS_P99 PUTS_MAX < <("$PYTHON" -c '
import json, sys
latency = json.load(open(sys.argv[1]))["latency_ms"]
print(latency["p99"], latency["max"])' "$2")
	[[ "$PUTS_P99" =~ ^[0-9.]+$ && "$PUTS_MAX" =~ ^[0-9.]+$ ]] ||
		fail "quorum-bench's report in $2 has no p99 and max latency: $(head -c 300 "$2")"
}
