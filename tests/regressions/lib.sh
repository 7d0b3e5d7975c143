# tests/regressions/lib.sh: sourced by each named regression test, called as
#     TEST.sh PATH/quorumd|PATH/etcd PATH/regress-client
# The members and etcdctl helpers are tests/etcdctl/lib.sh's (the same script runs against quorumd and the real
# etcd 3.4.23); the workload and its checks are regress-client's (tool/main.go, etcd's own Go client).
[ $# -ge 2 ] && [ -x "$2" ] || { echo "usage: $0 PATH/quorumd|PATH/etcd PATH/regress-client" >&2; exit 2; }
REGRESS_CLIENT=$(realpath "$2")
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../etcdctl/lib.sh"

# snapshot_flags COUNT CATCHUP: a snapshot every COUNT applied entries; quorumd also keeps only CATCHUP entries
# behind it (etcd 3.4 has no such flag: it keeps 5,000).
snapshot_flags() {
	echo "--snapshot-count=$1"
	[ "$KIND" != quorumd ] || echo "--snapshot-catchup-entries=$2"
}

# acked_count: how many puts the workload has been told OK so far.
acked_count() { [ -f "$TMP/acked" ] && wc -l <"$TMP/acked" || echo 0; }
acked_at_least() { [ "$(acked_count)" -ge "$1" ]; }

# start_writer PREFIX ENDPOINTS [WRITERS]: regress-client write in the background, until stop_writer.
start_writer() {
	rm -f "$TMP/stop-writer"
	"$REGRESS_CLIENT" write -endpoints "$2" -prefix "$1" -acked "$TMP/acked" -concurrency "${3:-8}" \
		-until-file "$TMP/stop-writer" >>"$TMP/writer.log" 2>&1 &
	WRITER_PID=$!
	track_pid "$WRITER_PID"
}

# stop_writer: asks the writer to stop and waits for it (a put in flight may take its 3 s timeout).
stop_writer() {
	touch "$TMP/stop-writer"
	wait_gone 15 "$WRITER_PID" || fail "the writer (pid $WRITER_PID) did not stop"
	reap_pid "$WRITER_PID"
	[ "$REAPED_STATUS" -eq 0 ] || fail "the writer failed (exit $REAPED_STATUS): $(tail -n 3 "$TMP/writer.log")"
	log "$(tail -n 1 "$TMP/writer.log")"
}

# check_acked ENDPOINTS: every acknowledged put is on every listed member, with its value and revision.
check_acked() {
	run_captured "$REGRESS_CLIENT" check-acked -endpoints "$1" -acked "$TMP/acked"
	[ "$RC" -eq 0 ] || fail "acknowledged writes lost or changed: $ERR"
	log "$OUT"
}

# revision ENDPOINTS: the cluster's current revision (a linearizable read).
revision() { "$REGRESS_CLIENT" revision -endpoints "$1"; }

# hashkv_equal NAME...: endpoint hashkv gives one hash at one revision on all the named members; sets HASHKV
# ("REVISION HASH" lines, one per distinct answer).
hashkv_equal() {
	local out
	out=$("$ETCDCTL" --endpoints="$(endpoints "$@")" --command-timeout=10s endpoint hashkv -w json 2>/dev/null) ||
		return 1
	out=$(sed 's/},{"Endpoint"/}\n{"Endpoint"/g' <<<"$out" |
		sed -nE 's/.*"revision":([0-9]+).*"hash":([0-9]+).*/\1 \2/p')
	HASHKV=$(sort -u <<<"$out")
	[ "$(grep -c . <<<"$out")" -eq $# ] && [ "$(grep -c . <<<"$HASHKV")" -eq 1 ]
}
