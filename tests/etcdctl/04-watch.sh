#!/usr/bin/env bash
# watch in the background: watches from revision 2 replay the history and then see new puts live (simple
# output, --prev-kv, -w json with the response header); a watch without --rev sees the puts made after it was
# created (created is detected by repeated puts of a ready value until it shows one). Output of a background
# watch is awaited with polling loops. Expected outputs taken from etcd 3.4.23. Ports: 245x0 (client 245x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 24510
add_member infra2 24520
add_member infra3 24530
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)
E=--endpoints=$ENDPOINTS
# Decimal IDs (-w json): cluster 18f93db089423c73, infra2 a33ef3e4fd2d3386.
cid=1799537354537581683 id2=11763107441564005254

# History: revisions 2..6.
expect_out "OK" "$E" put foo bar
expect_out "OK" "$E" put foo1 bar1
expect_out "OK" "$E" put foo baz
expect_out "1" "$E" del foo
expect_out "OK" "$E" put bar x

ctl_bg w-prefix "$E" watch foo --prefix --rev=2
ctl_bg w-prev "$E" watch foo --prev-kv --rev=2
ctl_bg w-json --endpoints="${CLIENT[infra2]}" watch foo -w json --rev=2
history_prefix="PUT
foo
bar
PUT
foo1
bar1
PUT
foo
baz
DELETE
foo

"
history_prev="PUT
foo
bar
PUT
foo
bar
foo
baz
DELETE
foo
baz
foo

"
hdr() { echo "{\"Header\":{\"cluster_id\":$cid,\"member_id\":$id2,\"revision\":$1,\"raft_term\":T},\"Events\":[$2],\"CompactRevision\":0,\"Canceled\":false,\"Created\":false}"; }
history_json="$(hdr 6 '{"kv":{"key":"Zm9v","create_revision":2,"mod_revision":2,"version":1,"value":"YmFy"}},{"kv":{"key":"Zm9v","create_revision":2,"mod_revision":4,"version":2,"value":"YmF6"}},{"type":1,"kv":{"key":"Zm9v","mod_revision":5}}')"
wait_output w-prefix 10 "$history_prefix"
wait_output w-prev 10 "$history_prev"
masked_json() { [ "$(mask_term "$(cat "$TMP/w-json")")" = "$1" ]; }
wait_until "watch -w json replayed the history" 10 masked_json "$history_json"

# Live: the same watches see new puts (revisions 7, 8), and not the other keys (9).
expect_out "OK" "$E" put foo live
expect_out "OK" "$E" put foo2 live2
expect_out "OK" "$E" put other y
wait_output w-prefix 10 "${history_prefix}PUT
foo
live
PUT
foo2
live2"
wait_output w-prev 10 "${history_prev}PUT
foo
live"
json_live="$history_json
$(hdr 7 '{"kv":{"key":"Zm9v","create_revision":7,"mod_revision":7,"version":1,"value":"bGl2ZQ=="}}')"
wait_until "watch -w json saw the live put" 10 masked_json "$json_live"

# A watch from now on (no --rev): once it shows a ready value, it sees the next puts in order.
ctl_bg w-now "$E" watch now --prefix
shows_ready() {
	grep -qx ready "$TMP/w-now" && return 0
	"$ETCDCTL" "$E" put now ready >/dev/null
	sleep 0.2
	grep -qx ready "$TMP/w-now"
}
wait_until "the watch without --rev is created" 10 shows_ready
for i in 1 2 3; do expect_out "OK" "$E" put "now/$i" "v$i"; done
expect_out "1" "$E" del now/2
ready_lines=$(grep -c '^ready$' "$TMP/w-now")
expected_now=$(for ((i = 0; i < ready_lines; i++)); do printf 'PUT\nnow\nready\n'; done; printf 'PUT\nnow/1\nv1\nPUT\nnow/2\nv2\nPUT\nnow/3\nv3\nDELETE\nnow/2\n\n')
wait_output w-now 10 "$expected_now"
for f in w-prefix w-prev w-json w-now; do
	assert_eq "stderr of the background watch $f" "" "$(cat "$TMP/$f.err")"
done
