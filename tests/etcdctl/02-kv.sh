#!/usr/bin/env bash
# put/get/del with --prefix and the other range flags, get --rev (including a future revision), and txn read
# from a file on stdin (with -i, which prompts, and without), through all three endpoints. Every write's
# revision is fixed by the order of the writes (a new cluster starts at revision 1), so -w json/fields outputs
# are compared whole except the raft term. Expected outputs taken from etcd 3.4.23. Ports: 243x0 (client 243x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 24310
add_member infra2 24320
add_member infra3 24330
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)
E=--endpoints=$ENDPOINTS
# IDs in decimal, as -w json and -w fields print them: cluster 3bc021039516194b, infra1 f7a659e09ded7398,
# infra2 56f65f12611f77a8, infra3 247792a8a56e173e.
cid=4305477543036066123 id1=17845049394759299992 id2=6266300464076126120 id3=2627730160621590334

# ---- put (revisions 2..6) ----
expect_out "OK" "$E" put foo bar
expect_out "OK" "$E" put foo1 bar1
expect_out "OK" "$E" put foo2 bar2 --prev-kv
expect_out "OK
foo2
bar2" "$E" put foo2 bar22 --prev-kv
expect_out "OK" "$E" put zoo z

# ---- get ----
expect_out "foo
bar" "$E" get foo
expect_out "foo
bar
foo1
bar1
foo2
bar22" "$E" get foo --prefix
expect_out "foo

foo1

foo2" "$E" get foo --prefix --keys-only
expect_out "bar
bar1
bar22" "$E" get foo --prefix --print-value-only
expect_out "foo
bar" "$E" get foo --prefix --limit=1
expect_out "foo2
bar22
foo1
bar1
foo
bar" "$E" get foo --prefix --sort-by=MODIFY --order=DESCEND
expect_out "foo
bar
foo1
bar1" "$E" get foo foo2
expect_out "foo
bar
foo1
bar1
foo2
bar22
zoo
z" "$E" get foo --from-key
expect_out "" "$E" get nothing
for n in infra1 infra2 infra3; do
	expect_out "foo2
bar22" --endpoints="${CLIENT[$n]}" get foo2 --consistency=s
done

# ---- get --rev ----
expect_out "foo2
bar2" "$E" get foo2 --rev=4
expect_out "foo2
bar22" "$E" get foo2 --rev=5
expect_out "" "$E" get foo2 --rev=3
expect_out "foo
bar
foo1
bar1" "$E" get foo --prefix --rev=3
expect_rpc_error OutOfRange "etcdserver: mvcc: required revision is a future revision" \
	"Error: etcdserver: mvcc: required revision is a future revision" "$E" get foo2 --rev=99

# ---- the response header and key metadata, through one member ----
ctl_ok --endpoints="${CLIENT[infra2]}" get foo2 -w json
assert_eq "get -w json through infra2" \
	"{\"header\":{\"cluster_id\":$cid,\"member_id\":$id2,\"revision\":6,\"raft_term\":T},\"kvs\":[{\"key\":\"Zm9vMg==\",\"create_revision\":4,\"mod_revision\":5,\"version\":2,\"value\":\"YmFyMjI=\"}],\"count\":1}" \
	"$(mask_term "$OUT")"
ctl_ok --endpoints="${CLIENT[infra3]}" get foo --prefix --limit=2 -w fields
assert_eq "get -w fields through infra3" "\"ClusterID\" : $cid
\"MemberID\" : $id3
\"Revision\" : 6
\"RaftTerm\" : T
\"Key\" : \"foo\"
\"CreateRevision\" : 2
\"ModRevision\" : 2
\"Version\" : 1
\"Value\" : \"bar\"
\"Lease\" : 0
\"Key\" : \"foo1\"
\"CreateRevision\" : 3
\"ModRevision\" : 3
\"Version\" : 1
\"Value\" : \"bar1\"
\"Lease\" : 0
\"More\" : true
\"Count\" : 3" "$(mask_term "$OUT")"

# ---- del (revisions 7, 8) ----
expect_out "3" "$E" del foo --prefix
expect_out "0" "$E" del foo --prefix
expect_out "1
zoo
z" "$E" del zoo --prev-kv
expect_out "" "$E" get "" --prefix
expect_out "foo1
bar1" "$E" get foo1 --rev=6

# ---- txn from a file on stdin (revisions 9..12) ----
expect_out "OK" "$E" put a 1
cat >"$TMP/txn-success" <<'TXN'
value("a") = "1"

put b 2
get a

put b 3

TXN
CTL_STDIN=$TMP/txn-success expect_out "compares:
success requests (get, put, del):
failure requests (get, put, del):
SUCCESS

OK

a
1" "$E" txn -i
CTL_STDIN=$TMP/txn-success expect_out "SUCCESS

OK

a
1" "$E" txn
cat >"$TMP/txn-failure" <<'TXN'
mod("a") > "100"
version("b") = "2"

put b 2

put b 3
get b
del a

TXN
CTL_STDIN=$TMP/txn-failure expect_out "compares:
success requests (get, put, del):
failure requests (get, put, del):
FAILURE

OK

b
3

1" "$E" txn -i
expect_out "b
3" "$E" get b
expect_out "b
2" "$E" get b --rev=11
ctl_ok --endpoints="${CLIENT[infra1]}" get b -w json
assert_eq "get b -w json through infra1" \
	"{\"header\":{\"cluster_id\":$cid,\"member_id\":$id1,\"revision\":12,\"raft_term\":T},\"kvs\":[{\"key\":\"Yg==\",\"create_revision\":10,\"mod_revision\":12,\"version\":3,\"value\":\"Mw==\"}],\"count\":1}" \
	"$(mask_term "$OUT")"
expect_out "" "$E" get a
