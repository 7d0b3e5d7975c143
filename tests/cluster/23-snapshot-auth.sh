#!/usr/bin/env bash
# issue 15 with auth: the auth store travels in snapshots. Three members with --snapshot-count 50 get a root
# user, auth enabled, a user alice, and 150 writes as root (several snapshots after auth was enabled);
# s4, added then, joins by snapshot ("applied snapshot") and enforces the same auth without having seen the
# auth entries: root reads there, alice is refused a write with etcd's "permission denied", and a call
# without a user is refused; after a restart of s4 (from its own snapshot) the same holds. Ports: 477x0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snapshot_helpers.sh"
add_member s1 47710
add_member s2 47720
add_member s3 47730
add_member s4 47740
member_flags() { MEMBER_CMD+=(--snapshot-count 50 --snapshot-catchup-entries 10); }
start_new_cluster s1 s2 s3
wait_ready 15 s1 s2 s3
E=(--endpoints="$(client_hostport s1),$(client_hostport s2),$(client_hostport s3)" --command-timeout=5s)
ROOT=(--user root:rootpw)
# as WHAT ARGS...: etcdctl as a user (ROOT, ALICE or NONE) through every member; sets OUT and RC.
as() {
	local who=$1
	shift
	local user=()
	case "$who" in root) user=("${ROOT[@]}") ;; alice) user=(--user alice:apw) ;; esac
	RC=0
	OUT=$(etcdctl "${E[@]}" "${user[@]}" "$@" 2>&1) || RC=$?
}
as none user add root:rootpw
assert_eq "user add root (rc $RC)" "User root created" "$OUT"
as none user add alice:apw
as none role add reader
as none role grant-permission reader read data/ --prefix=true
as none user grant-role alice reader
as none role add root
as none user grant-role root root
as none auth enable
assert_eq "auth enable (rc $RC)" "Authentication Enabled" "$OUT"
for ((i = 0; i < 150; i++)); do
	as root put "data/$i" "v$i"
	[ "$RC" -eq 0 ] || fail "put data/$i as root: $OUT"
done
for n in s1 s2 s3; do
	[ "$(count_lines "$n" "saved snapshot")" -ge 2 ] || fail "$n took fewer than 2 snapshots"
done

ctl_ok s2 member add s4 --peer-urls="${PEER[s4]}"
ic=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$OUT")
start_member s4 "$ic" existing
wait_until "s4 caught up" 60 applied_converged s1 s2 s3 s4
wait_ready 15 s1 s2 s3 s4
log_has s4 '"msg":"applied snapshot"' || fail "s4 caught up without a snapshot"

# check_s4 WHEN: what s4 alone enforces.
check_s4() {
	E=(--endpoints="$(client_hostport s4)" --command-timeout=5s)
	as root get data/7 --print-value-only
	assert_eq "root reads data/7 on s4 $1 (rc $RC)" v7 "$OUT"
	as alice get data/8 --print-value-only
	assert_eq "alice reads data/8 on s4 $1 (rc $RC)" v8 "$OUT"
	as alice put data/9 x
	assert_contains "alice's write on s4 $1 (rc $RC)" "etcdserver: permission denied" "$OUT"
	as none get data/7
	[ "$RC" -ne 0 ] || fail "s4 $1 answered a read without a user: $OUT"
}
check_s4 "after joining by snapshot"
stop_member s4
start_member s4 "$ic" existing
wait_until "s4 caught up after its restart" 30 applied_converged s1 s2 s3 s4
wait_ready 15 s1 s2 s3 s4
check_s4 "after its restart"
