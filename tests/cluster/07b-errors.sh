#!/usr/bin/env bash
# Rule 7b: membership errors with etcd's texts (quorumctl prints `Error: TEXT` on stderr, exits 1):
# `member update` of an unknown ID → `etcdserver: member not found`; `member update ID --peer-urls=URL of
# another member` → `etcdserver: Peer URLs already exists`; a URL without a scheme → an error naming the URL;
# the same through `member add`, `member remove` and `member promote` of an unknown ID. Nothing changes.
# Ports: 427x0.
source "$(dirname "$0")/lib.sh"

add_member m1 42710
add_member m2 42720
add_member m3 42730
start_new_cluster m1 m2 m3
wait_ready 10 m1 m2 m3
id1=$(member_id m1) id2=$(member_id m2)
ctl_ok m1 member list
list_before=$OUT

# The leader and a follower give the same answers.
follower=m1
[ "$LEADER" != m1 ] || follower=m2
for n in "$LEADER" "$follower"; do
	expect_error "$n" "Error: etcdserver: member not found" member update 1234abcd --peer-urls=http://127.0.0.1:42790
	expect_error "$n" "Error: etcdserver: member not found" member remove 1234abcd
	expect_error "$n" "Error: etcdserver: member not found" member promote 1234abcd
	expect_error "$n" "Error: etcdserver: Peer URLs already exists" member update "$id1" --peer-urls=http://127.0.0.1:42720
	expect_error "$n" "Error: etcdserver: Peer URLs already exists" member add m9 --peer-urls=http://127.0.0.1:42730

	ctl "$n" member update "$id2" --peer-urls=127.0.0.1:42791
	assert_eq "exit code of member update with a URL without scheme (stderr: $ERR)" 1 "$RC"
	assert_contains "stderr of member update with a URL without scheme names the URL" "127.0.0.1:42791" "$ERR"
	case "$ERR" in Error:*) ;; *) fail "stderr does not start with 'Error:': $ERR" ;; esac
	ctl "$n" member add m9 --peer-urls=127.0.0.1:42792
	assert_eq "exit code of member add with a URL without scheme (stderr: $ERR)" 1 "$RC"
	assert_contains "stderr of member add with a URL without scheme names the URL" "127.0.0.1:42792" "$ERR"
done

for n in m1 m2 m3; do
	ctl_ok "$n" member list
	assert_eq "member list on $n after the refused changes" "$list_before" "$OUT"
done
put_get m3 still writable
