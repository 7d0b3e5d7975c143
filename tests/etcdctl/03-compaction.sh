#!/usr/bin/env bash
# compaction: `compaction REV` prints "compacted revision REV"; reads at a revision below it fail with
# OutOfRange "etcdserver: mvcc: required revision has been compacted" (the compacted revision itself stays
# readable); compacting again at or below it fails the same way; past the current revision is "a future
# revision"; a watch from a compacted revision is canceled by the server (exit code 5); HashKV at or below the
# compacted revision is refused; the hash of every member is the same. Expected outputs taken from
# etcd 3.4.23. Ports: 244x0 (client 244x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 24410
add_member infra2 24420
add_member infra3 24430
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)
E=--endpoints=$ENDPOINTS

# Revisions 2..6.
for v in v1 v2 v3; do expect_out "OK" "$E" put k "$v"; done
expect_out "OK" "$E" put other x
expect_out "OK" "$E" put k v4
expect_out "k
v2" "$E" get k --rev=3

expect_out "compacted revision 4" "$E" compaction 4
compacted="etcdserver: mvcc: required revision has been compacted"
future="etcdserver: mvcc: required revision is a future revision"
for n in infra1 infra2 infra3; do
	expect_rpc_error OutOfRange "$compacted" "Error: $compacted" --endpoints="${CLIENT[$n]}" get k --rev=3
	expect_out "k
v3" --endpoints="${CLIENT[$n]}" get k --rev=4
	expect_out "k
v3" --endpoints="${CLIENT[$n]}" get k --rev=5 --consistency=s
done
expect_rpc_error OutOfRange "$compacted" "Error: $compacted" "$E" get k --prefix --rev=2
expect_rpc_error OutOfRange "$compacted" "Error: $compacted" "$E" compaction 4
expect_rpc_error OutOfRange "$compacted" "Error: $compacted" "$E" compaction 3
expect_rpc_error OutOfRange "$future" "Error: $future" "$E" compaction 99

# A watch from a compacted revision: the server cancels it with the compaction error.
ctl "$E" watch k --rev=2
assert_eq "exit code of watch --rev=2 after compaction 4" 5 "$RC"
assert_eq "stdout of watch --rev=2 after compaction 4" "" "$OUT"
assert_eq "stderr of watch --rev=2 after compaction 4" "watch was canceled ($compacted)
Error: watch is canceled by the server" "$ERR"

# HashKV: the same on every member (once all have applied everything: HashKV reads the local store); at or
# below the compacted revision it is refused.
wait_until "every member applied what the leader has" 10 applied_converged infra1 infra2 infra3
ctl_ok "$E" endpoint hashkv
h=$(sed -n '1s/^.*, //p' <<<"$OUT")
assert_match "hash of the first endpoint" '[0-9]+' "$h"
assert_eq "endpoint hashkv (all members equal)" "http://127.0.0.1:24409, $h
http://127.0.0.1:24419, $h
http://127.0.0.1:24429, $h" "$OUT"
ctl_ok "$E" endpoint hashkv --rev=5
h5=$(sed -n '1s/^.*, //p' <<<"$OUT")
assert_eq "endpoint hashkv --rev=5 (all members equal)" "http://127.0.0.1:24409, $h5
http://127.0.0.1:24419, $h5
http://127.0.0.1:24429, $h5" "$OUT"
[ "$h5" != "$h" ] || fail "the hash at revision 5 equals the hash at revision 6 ($h)"
ctl --endpoints="${CLIENT[infra2]}" endpoint hashkv --rev=4
assert_eq "exit code of endpoint hashkv --rev=4 (the compacted revision)" 1 "$RC"
assert_eq "last stderr lines of endpoint hashkv --rev=4" \
	"Failed to get the hash of endpoint http://127.0.0.1:24419 ($compacted)
Error: $compacted" "$(tail -n 2 <<<"$ERR")"
assert_contains "gRPC status of HashKV at the compacted revision" \
	"\"error\":\"rpc error: code = OutOfRange desc = $compacted\"" "$ERR"
ctl_ok --endpoints="${CLIENT[infra2]}" endpoint hashkv -w json
assert_eq "endpoint hashkv -w json through infra2" \
	"[{\"Endpoint\":\"http://127.0.0.1:24419\",\"HashKV\":{\"header\":{\"cluster_id\":17030801653126520107,\"member_id\":3113117883371298599,\"revision\":6,\"raft_term\":T},\"hash\":$h,\"compact_revision\":4}}]" \
	"$(mask_term "$OUT")"

# A physical compaction (waits until the compaction is applied) to the current revision.
expect_out "compacted revision 6" "$E" compaction 6 --physical
expect_rpc_error OutOfRange "$compacted" "Error: $compacted" "$E" get k --rev=5
expect_out "k
v4" "$E" get k --rev=6
expect_out "OK" "$E" put k v5
expect_out "k
v5" "$E" get k
wait_until "every member applied what the leader has" 10 applied_converged infra1 infra2 infra3
ctl_ok "$E" endpoint hashkv
h7=$(sed -n '1s/^.*, //p' <<<"$OUT")
assert_eq "endpoint hashkv after the physical compaction (all members equal)" "http://127.0.0.1:24409, $h7
http://127.0.0.1:24419, $h7
http://127.0.0.1:24429, $h7" "$OUT"
