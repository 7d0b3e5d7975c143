#!/usr/bin/env bash
# Rule 8: strict reconfiguration check (etcd's IsReadyToAddVotingMember / IsReadyToRemoveVotingMember,
# "started" = published its name). Worked case where etcd's rule refuses: voters m1, m2 started and m4 added but
# never started (3 voters, 2 started): adding a voter needs quorum(3+1) = 3 started → `Error: etcdserver:
# re-configuration failed due to not enough started members`; removing started m2 would leave 1 started of 2 →
# the same error. With 3 started and 1 unstarted voter, the started count is enough (3 >= quorum(5) = 3) but
# etcd's second check (every voter connected) refuses: `Error: etcdserver: unhealthy cluster`.
# With --strict-reconfig-check=false on the members the same add succeeds. Ports: 408x0.
source "$(dirname "$0")/lib.sh"

add_member m1 40810
add_member m2 40820
add_member m3 40830
start_new_cluster m1 m2 m3
wait_ready 10 m1 m2 m3
cluster_hex=$(cluster_id m1)
id2=$(member_id m2) id3=$(member_id m3)

# 3 started voters: adding one unstarted voter is allowed (3 >= quorum(4+1)).
ctl_ok m1 member add m4 --peer-urls=http://127.0.0.1:40840
m4_id=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$OUT")
assert_eq "first line of member add" "Member $(pad16 "$m4_id") added to cluster $(pad16 "$cluster_hex")" \
	"$(head -n 1 <<<"$OUT")"
# 3 started of 4 voters: enough started, but m4 is not connected.
expect_error m1 "Error: etcdserver: unhealthy cluster" member add m5 --peer-urls=http://127.0.0.1:40850
expect_error m2 "Error: etcdserver: unhealthy cluster" member add m5 --peer-urls=http://127.0.0.1:40850

# Down to 2 started voters and one unstarted: remove m3 while it runs (m1, m2, m3 are 3 of the 4 voters
# needed to commit that; m1, m2 then are a quorum of m1, m2, m4).
wait_leader 10 m1 m2 m3
ctl_ok "$LEADER" member remove "$id3"
assert_eq "output of member remove" "Member $(pad16 "$id3") removed from cluster $(pad16 "$cluster_hex")" "$OUT"
wait_exit m3 10
wait_leader 10 m1 m2
put_get m1 two-started v

for n in m1 m2; do
	expect_error "$n" "Error: etcdserver: re-configuration failed due to not enough started members" \
		member add m5 --peer-urls=http://127.0.0.1:40850
	expect_error "$n" "Error: etcdserver: re-configuration failed due to not enough started members" \
		member remove "$id2"
done
ctl_ok m1 member list
assert_eq "members after the refused changes" 3 "$(wc -l <<<"$OUT")"

# The same add with --strict-reconfig-check=false on both members succeeds.
stop_member m1
stop_member m2
ic=$(initial_cluster m1 m2 m3)
start_member m1 "$ic" new --strict-reconfig-check=false
start_member m2 "$ic" new --strict-reconfig-check=false
wait_leader 15 m1 m2
put_get m2 restarted v
ctl_ok m1 member add m5 --peer-urls=http://127.0.0.1:40850
m5_id=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$OUT")
assert_eq "first line of member add without strict check" \
	"Member $(pad16 "$m5_id") added to cluster $(pad16 "$cluster_hex")" "$(head -n 1 <<<"$OUT")"
ctl_ok m2 member list
assert_contains "member list shows the added voter" "$m5_id, unstarted, , http://127.0.0.1:40850, , false" "$OUT"
assert_eq "members after the add" 4 "$(wc -l <<<"$OUT")"
