#!/usr/bin/env bash
# leases: grant, keep-alive --once, a keep-alive in the background keeping an attached key past its TTL,
# timetolive (with --keys), list, revoke (deleting the attached key), expiry deleting an attached key (seen by
# a watch), and the "requested lease not found" answers. Lease IDs are chosen by the server, so they are read
# from the grant's output; remaining TTLs are checked as ranges. Expected outputs taken from etcd 3.4.23.
# Ports: 246x0 (client 246x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 24610
add_member infra2 24620
add_member infra3 24630
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)
E=--endpoints=$ENDPOINTS
notfound="etcdserver: requested lease not found"

# ---- grant, keep-alive --once, timetolive, list, revoke ----
ctl_ok "$E" lease grant 100
L=$(lease_id "$OUT")
assert_match "lease grant 100 (ID as %016x)" '[0-9a-f]{16}' "$L"
assert_eq "output of lease grant 100" "lease $L granted with TTL(100s)" "$OUT"
expect_out "lease $L keepalived with TTL(100)" "$E" lease keep-alive --once "$L"
ctl_ok "$E" lease timetolive "$L"
assert_match "lease timetolive" "lease $L granted with TTL\(100s\), remaining\((9[0-9]|100)s\)" "$OUT"
expect_out "OK" "$E" put --lease="$L" lk v
ctl_ok "$E" lease timetolive "$L" --keys
assert_match "lease timetolive --keys" \
	"lease $L granted with TTL\(100s\), remaining\((9[0-9]|100)s\), attached keys\(\[lk\]\)" "$OUT"
for n in infra1 infra2 infra3; do
	expect_out "found 1 leases
$L" --endpoints="${CLIENT[$n]}" lease list
done
expect_out "lk
v" "$E" get lk
expect_out "lease $L revoked" "$E" lease revoke "$L"
expect_out "" "$E" get lk
expect_out "lease $L already expired" "$E" lease timetolive "$L"
expect_out "found 0 leases" "$E" lease list

# ---- what a missing lease gets ----
expect_rpc_error NotFound "$notfound" "Error: failed to revoke lease ($notfound)" "$E" lease revoke "$L"
expect_rpc_error NotFound "$notfound" "Error: $notfound" "$E" put --lease=1234 x v
expect_out "" "$E" get x
# keep-alive goes through the LeaseKeepAlive stream: a missing lease is answered with TTL 0, which etcdctl
# reports as not found (no gRPC error, so no retry log line) and exits with 2.
ctl "$E" lease keep-alive --once "$L"
assert_eq "exit code of lease keep-alive --once on a revoked lease" 2 "$RC"
assert_eq "stdout of lease keep-alive --once on a revoked lease" "" "$OUT"
assert_eq "stderr of lease keep-alive --once on a revoked lease" "Error: $notfound" "$ERR"
# Lease IDs are printed with %016x.
expect_out "lease 00000000000004d2 already expired" "$E" lease timetolive 4d2

# ---- the minimum TTL: 1 s is raised to etcd's minimum for a 1 s election timeout (1.5 s, rounded up) ----
ctl_ok "$E" lease grant 1
assert_eq "output of lease grant 1" "lease $(lease_id "$OUT") granted with TTL(2s)" "$OUT"

# ---- a background keep-alive keeps the key past its TTL; after it stops, the lease expires ----
# (TTLs of 5 s leave room for slow etcdctl starts on a loaded machine.)
ctl_ok "$E" lease grant 5
K=$(lease_id "$OUT")
assert_eq "output of lease grant 5" "lease $K granted with TTL(5s)" "$OUT"
expect_out "OK" "$E" put --lease="$K" kept v
ctl_bg keepalive "$E" lease keep-alive "$K"
ka_pid=$BG_PID
# etcdctl renews every TTL/3 s and prints each renewal: 5 lines take more than 5 s.
five_renewals() { [ "$(grep -c "^lease $K keepalived with TTL(5)$" "$TMP/keepalive")" -ge 5 ]; }
wait_until "five renewals by the background keep-alive" 20 five_renewals
assert_eq "lines of the background keep-alive" "" "$(grep -v "^lease $K keepalived with TTL(5)$" "$TMP/keepalive")"
expect_out "kept
v" "$E" get kept
stop_pids 10 "$ka_pid"
ctl_ok "$E" get kept -w json
rev=$(sed -n 's/.*"revision":\([0-9]*\).*/\1/p' <<<"$OUT")
ctl_bg expiry-watch "$E" watch kept --rev="$rev"
gone() { [ -z "$("$ETCDCTL" "$E" get kept 2>/dev/null)" ]; }
wait_until "the key attached to the expired lease is deleted" 15 gone
wait_output expiry-watch 10 "PUT
kept
v
DELETE
kept
"
expect_out "lease $K already expired" "$E" lease timetolive "$K"

# ---- expiry without any keep-alive ----
ctl_ok "$E" lease grant 5
X=$(lease_id "$OUT")
expect_out "OK" "$E" put --lease="$X" ek v1
expect_out "OK" "$E" put --lease="$X" ek2 v2
ctl_ok "$E" lease timetolive "$X" --keys
assert_match "lease timetolive --keys with two keys" \
	"lease $X granted with TTL\(5s\), remaining\([0-5]s\), attached keys\(\[(ek ek2|ek2 ek)\]\)" "$OUT"
gone2() { [ -z "$("$ETCDCTL" "$E" get ek --prefix 2>/dev/null)" ]; }
wait_until "both keys attached to the expired lease are deleted" 15 gone2
for n in infra1 infra2 infra3; do
	expect_out "" --endpoints="${CLIENT[$n]}" get ek --prefix
	expect_out "lease $X already expired" --endpoints="${CLIENT[$n]}" lease timetolive "$X"
done
expect_out "found 0 leases" "$E" lease list
