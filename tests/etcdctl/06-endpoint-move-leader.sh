#!/usr/bin/env bash
# move-leader (to a follower, to the leader itself, without the leader among the endpoints, to an unknown
# ID), then endpoint status (-w table, simple, --cluster, -w json), endpoint health (simple output goes to
# stderr, one line per endpoint in completion order: sorted here), endpoint hashkv (every member equal),
# alarm list and defrag. Volatile columns (VERSION checked as 3.4.x, DB SIZE, RAFT TERM (checked equal on all
# members), RAFT INDEX, RAFT APPLIED INDEX, health's TOOK) are masked; everything else, including which member
# is leader after move-leader, is compared. Expected outputs taken from etcd 3.4.23. Ports: 251x0 (251x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 25110
add_member infra2 25120
add_member infra3 25130
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)
E=--endpoints=$ENDPOINTS
# infra3's ID has 15 hex digits. Decimal forms for -w json.
id1=4f385d1b0d86b8e4 id2=e0e5ecee0477d325 id3=e5a9261fc6745d4
cid_dec=7108116943575918344 id1_dec=5708414898464536804 id3_dec=1034300013979059668
for k in a b c; do expect_out "OK" "$E" put "$k" "$k$k"; done

# ---- move-leader ----
from=$(member_id "$LEADER")
expect_out "Leadership transferred from $from to $id2" "$E" move-leader "$id2"
infra2_leads() { [ "$(leader_among infra1 infra2 infra3)" = infra2 ]; }
wait_until "infra2 is the leader" 10 infra2_leads
# Again to the member that already leads: etcdctl still prints a transfer.
expect_out "Leadership transferred from $id2 to $id2" "$E" move-leader "$id2"
# etcdctl looks for the leader among the given endpoints only (Status on each).
ctl --endpoints="${CLIENT[infra1]}" move-leader "$id3"
assert_eq "exit code of move-leader without the leader's endpoint" 128 "$RC"
assert_eq "stderr of move-leader without the leader's endpoint" \
	"Error: no leader endpoint given at [http://127.0.0.1:25109]" "$ERR"
expect_rpc_error FailedPrecondition "etcdserver: bad leader transferee" "Error: etcdserver: bad leader transferee" \
	"$E" move-leader 1234
expect_out "Leadership transferred from $id2 to $id3" "$E" move-leader "$id3"
# Every member agrees: infra3 leads and everyone is in its term with everything applied.
settled() {
	status_rows infra1 infra2 infra3 | awk -F', ' '
		{ rows++; t[rows] = $7; applied[rows] = $9; if ($5 == "true") { idx = $8; ep = $1 } }
		END {
			if (rows != 3 || ep != "http://127.0.0.1:25129") exit 1
			for (i = 1; i <= 3; i++) if (applied[i] != idx || t[i] != t[1]) exit 1
		}'
}
wait_until "infra3 leads, all members in the same term, all applied" 10 settled
term=$(status_field infra3 7)
expect_out "OK" "$E" put d dd

# ---- endpoint status ----
# check_status_cells DESCRIPTION EXPECTED_ROWS TABLE: header, then rows (masking VERSION after checking it,
# DB SIZE after checking its form, RAFT TERM after checking it is $term, RAFT INDEX, RAFT APPLIED INDEX).
check_status_cells() {
	local desc=$1 expected=$2 table=$3 cells
	check_table_layout "$desc" "$table"
	cells=$(table_cells "$table")
	assert_eq "$desc: header" \
		"ENDPOINT|ID|VERSION|DB SIZE|IS LEADER|IS LEARNER|RAFT TERM|RAFT INDEX|RAFT APPLIED INDEX|ERRORS" \
		"$(head -n 1 <<<"$cells")"
	while IFS='|' read -r _ _ v size _ _ t _ _ _; do
		version_ok "$v" || fail "$desc: VERSION $v is not 3.4.x"
		[[ "$size" =~ ^[0-9]+(\.[0-9])?\ (B|kB|MB|GB)$ ]] || fail "$desc: DB SIZE '$size'"
		assert_eq "$desc: RAFT TERM" "$term" "$t"
	done <<<"$(tail -n +2 <<<"$cells")"
	assert_eq "$desc: rows" "$expected" "$(mask_fields "$(tail -n +2 <<<"$cells")" 3 4 7 8 9)"
}
ctl_ok "$E" endpoint status -w table
check_status_cells "endpoint status -w table" "http://127.0.0.1:25109|$id1|*|*|false|false|*|*|*|
http://127.0.0.1:25119|$id2|*|*|false|false|*|*|*|
http://127.0.0.1:25129|$id3|*|*|true|false|*|*|*|" "$OUT"
ctl_ok "$E" endpoint status --cluster -w table
check_status_cells "endpoint status --cluster -w table (members in ID order)" \
	"http://127.0.0.1:25129|$id3|*|*|true|false|*|*|*|
http://127.0.0.1:25109|$id1|*|*|false|false|*|*|*|
http://127.0.0.1:25119|$id2|*|*|false|false|*|*|*|" "$OUT"
ctl_ok "$E" endpoint status
assert_eq "endpoint status (simple; VERSION, DB SIZE, RAFT INDEX, RAFT APPLIED INDEX masked)" \
	"http://127.0.0.1:25109, $id1, *, *, false, false, $term, *, *, 
http://127.0.0.1:25119, $id2, *, *, false, false, $term, *, *, 
http://127.0.0.1:25129, $id3, *, *, true, false, $term, *, *, " \
	"$(awk -F', ' -v OFS=', ' '{ $3 = "*"; $4 = "*"; $8 = "*"; $9 = "*"; print }' <<<"$OUT")"
ctl_ok --endpoints="${CLIENT[infra1]}" endpoint status -w json
assert_match "endpoint status -w json through infra1" \
	"\[\{\"Endpoint\":\"http://127.0.0.1:25109\",\"Status\":\{\"header\":\{\"cluster_id\":$cid_dec,\"member_id\":$id1_dec,\"revision\":5,\"raft_term\":$term\},\"version\":\"3\.4\.[^\"]*\",\"dbSize\":[0-9]+,\"leader\":$id3_dec,\"raftIndex\":[0-9]+,\"raftTerm\":$term,\"raftAppliedIndex\":[0-9]+(,\"dbSizeInUse\":[0-9]+)?\}\}\]" \
	"$OUT"

# ---- endpoint health: a quorum read of key "health" through each endpoint ----
ctl_ok "$E" endpoint health
assert_eq "stdout of endpoint health (simple output goes to stderr)" "" "$OUT"
assert_eq "endpoint health (sorted, took masked)" \
	"http://127.0.0.1:25109 is healthy: successfully committed proposal: took = *
http://127.0.0.1:25119 is healthy: successfully committed proposal: took = *
http://127.0.0.1:25129 is healthy: successfully committed proposal: took = *" \
	"$(sed 's/took = [0-9.]*[µmn]*s$/took = */' <<<"$ERR" | sort)"
ctl_ok "$E" endpoint health --cluster -w table
check_table_layout "endpoint health -w table" "$OUT"
assert_eq "endpoint health --cluster -w table (rows sorted, TOOK masked)" "ENDPOINT|HEALTH|TOOK|ERROR
http://127.0.0.1:25109|true|*|
http://127.0.0.1:25119|true|*|
http://127.0.0.1:25129|true|*|" \
	"$(table_cells "$OUT" | { IFS= read -r h; echo "$h"; mask_fields "$(cat)" 3 | sort; })"

# ---- endpoint hashkv ----
wait_until "every member applied what the leader has" 10 applied_converged infra1 infra2 infra3
ctl_ok "$E" endpoint hashkv -w table
h=$(table_cells "$OUT" | sed -n '2s/^.*|//p')
assert_match "hash" '[0-9]+' "$h"
check_table_layout "endpoint hashkv -w table" "$OUT"
assert_eq "endpoint hashkv -w table (every member equal)" "ENDPOINT|HASH
http://127.0.0.1:25109|$h
http://127.0.0.1:25119|$h
http://127.0.0.1:25129|$h" "$(table_cells "$OUT")"
ctl_ok "$E" endpoint hashkv
assert_eq "endpoint hashkv" "http://127.0.0.1:25109, $h
http://127.0.0.1:25119, $h
http://127.0.0.1:25129, $h" "$OUT"

# ---- alarm list (none), defrag ----
expect_out "" "$E" alarm list
expect_out "Finished defragmenting etcd member[http://127.0.0.1:25119]" --endpoints="${CLIENT[infra2]}" defrag
expect_out "a
aa
b
bb
c
cc
d
dd" --endpoints="${CLIENT[infra2]}" get "" --prefix
