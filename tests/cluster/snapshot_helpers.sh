# tests/cluster/snapshot_helpers.sh: what the snapshot tests (17-20) add to lib.sh. Sourced after lib.sh by
# tests called as TEST.sh PATH/quorumd PATH/quorumctl PATH/quorum-bench.
[ $# -ge 3 ] || fail "usage: $0 PATH/quorumd PATH/quorumctl PATH/quorum-bench"
BENCH=$(realpath "$3")
command -v etcdctl >/dev/null || fail "etcdctl (Debian's etcd-client) is needed for endpoint hashkv"
export ETCDCTL_API=3

# client_hostport NAME: host:port of the member's client URL, for quorum-bench and etcdctl.
client_hostport() { echo "${CLIENT[$1]#http://}"; }

# bench_puts COUNT NAME...: COUNT puts of 200-byte values over 2,000 keys through the named members.
bench_puts() {
	local count=$1 endpoints="" n
	shift
	for n in "$@"; do endpoints+="${endpoints:+,}$(client_hostport "$n")"; done
	"$BENCH" --endpoints="$endpoints" --conns=$# --clients=8 --total="$count" --progress=false --timeout=10s \
		put --key-space-size=2000 --val-size=200 >"$TMP/bench.out" 2>&1 ||
		fail "quorum-bench put $count through $*: $(tail -5 "$TMP/bench.out")"
}

# hashkv NAME: the member's `etcdctl endpoint hashkv` hash (empty when it does not answer).
hashkv() {
	etcdctl --endpoints="$(client_hostport "$1")" --command-timeout=3s endpoint hashkv 2>/dev/null | awk -F', ' '{ print $2 }'
}

# hashkv_equal NAME...: every named member answers hashkv, with the same hash.
hashkv_equal() {
	local first="" n h
	for n in "$@"; do
		h=$(hashkv "$n")
		[ -n "$h" ] || return 1
		[ -z "$first" ] && first=$h
		[ "$h" = "$first" ] || return 1
	done
	HASH=$first
}

# converged_and_equal NAME...: every member applied the leader's last index, and the hashes agree.
converged_and_equal() { applied_converged "$@" && hashkv_equal "$@"; }

# snapshot_dirs NAME: complete snapshots in the member's snap directory.
snapshot_dirs() { find "$TMP/$1/member/snap" -mindepth 1 -maxdepth 1 -type d -name '????????????????-????????????????' | wc -l; }

# wal_files NAME: files in the member's WAL directory (closed segments, the active one, prepared ones).
wal_files() { find "$TMP/$1/member/wal" -mindepth 1 -maxdepth 1 -type f | wc -l; }

# log_field NAME MESSAGE FIELD: FIELD of the last line of NAME's log whose msg is MESSAGE (numbers only).
log_field() {
	{ grep -F "\"msg\":\"$2\"" "$TMP/$1.log" || true; } | tail -n 1 | sed -n "s/.*\"$3\":\([0-9]*\).*/\1/p"
}

# count_lines NAME MESSAGE: lines of NAME's log whose msg is MESSAGE.
count_lines() { grep -cF "\"msg\":\"$2\"" "$TMP/$1.log" || true; }
