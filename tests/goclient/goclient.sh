#!/usr/bin/env bash
# The Go suite (etcd's own clientv3 and clientv3/concurrency) against a new three-member cluster:
#     tests/goclient/goclient.sh PATH/quorumd|PATH/etcd PATH/goclient.test [GO TEST FLAGS...]
# (what meson test --suite goclient runs; run-against-etcd.sh runs it against etcd). Every case runs first
# against all three client URLs (the TestMember* ones skip there); then the TestMember* cases, given the
# members' PIDs: one stops a follower for a while, the last kills a member. Extra flags go to the first run
# (e.g. -test.run 'TestRange').
# Ports: 256x0 (client 256x9), through tests/etcdctl/lib.sh, which also cleans up on any exit.
source "$(dirname "$0")/../etcdctl/lib.sh"
[ $# -ge 2 ] && [ -x "$2" ] || fail "usage: $0 PATH/quorumd|PATH/etcd PATH/goclient.test [flags...]"
GOCLIENT_TEST=$(realpath "$2")
shift 2

add_member infra1 25610
add_member infra2 25620
add_member infra3 25630
# A progress notification interval short enough for TestWatchProgressNotify (etcd's default is 10 minutes).
PROGRESS_INTERVAL=1s
IC=$(initial_cluster infra1 infra2 infra3)
for n in infra1 infra2 infra3; do
	start_member "$n" "$IC" new --experimental-watch-progress-notify-interval="$PROGRESS_INTERVAL"
done
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)

log "the suite against $KIND at $ENDPOINTS"
"$GOCLIENT_TEST" -test.v -test.timeout 900s -endpoints "$ENDPOINTS" -progress-notify-interval "$PROGRESS_INTERVAL" "$@" ||
	fail "the Go suite failed against $KIND (the go test output above says which case)"

log "the TestMember* cases against $KIND"
"$GOCLIENT_TEST" -test.v -test.timeout 300s -test.run '^TestMember' -endpoints "$ENDPOINTS" \
	-member-pids "${PID[infra1]},${PID[infra2]},${PID[infra3]}" ||
	fail "the TestMember* cases failed against $KIND"
