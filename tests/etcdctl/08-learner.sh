#!/usr/bin/env bash
# member add --learner (etcdctl's exact output, ETCD_* variables), the unstarted learner in member list, a second
# learner refused, promote refused while the learner has not caught up and for a voter, the learner started with
# the printed variables (IS LEARNER true in endpoint status; it refuses requests that need a voter), then
# member promote (retried while it lags) and the promoted member serving writes; plus the member commands'
# not-found answers. Expected outputs taken from etcd 3.4.23. Ports: 248x0 (client 248x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 24810
add_member infra2 24820
add_member infra3 24830
add_member infra4 24840
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)
E=--endpoints=$ENDPOINTS
# The cluster ID has 15 hex digits: %16x pads it with a space.
id1=4a653925aa49313c id2=e23dfbf55f51160b # infra3: cb95a2c870a92c87
voters="4a653925aa49313c, started, infra1, http://127.0.0.1:24810, http://127.0.0.1:24809, false
cb95a2c870a92c87, started, infra3, http://127.0.0.1:24830, http://127.0.0.1:24829, false
e23dfbf55f51160b, started, infra2, http://127.0.0.1:24820, http://127.0.0.1:24819, false"
expect_out "$voters" "$E" member list
for k in a b c; do expect_out "OK" "$E" put "$k" "$k$k"; done

# ---- add the learner ----
ctl_retry_unhealthy 15 "$E" member add infra4 --learner --peer-urls=http://127.0.0.1:24840
add_out=$OUT
L=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$add_out")
[ -n "$L" ] || fail "no member ID in the output of member add --learner: $add_out"
ic=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$add_out")
assert_eq "members in ETCD_INITIAL_CLUSTER (sorted)" "infra1=http://127.0.0.1:24810
infra2=http://127.0.0.1:24820
infra3=http://127.0.0.1:24830
infra4=http://127.0.0.1:24840" "$(tr ',' '\n' <<<"$ic" | sort)"
assert_eq "output of member add --learner" "Member $(pad16 "$L") added to cluster  ea520fd983ec3e3

ETCD_NAME=\"infra4\"
ETCD_INITIAL_CLUSTER=\"$ic\"
ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:24840\"
ETCD_INITIAL_CLUSTER_STATE=\"existing\"" "$add_out"
with_learner=$(sort <<<"$voters
$L, unstarted, , http://127.0.0.1:24840, , true")
for n in infra1 infra2 infra3; do
	ctl_ok --endpoints="${CLIENT[$n]}" member list
	assert_eq "member list through $n with the unstarted learner (sorted)" "$with_learner" "$(sort <<<"$OUT")"
done
ctl_ok "$E" member list -w table
check_table_layout "member list -w table with the learner" "$OUT"
assert_eq "the learner's row in member list -w table" "$L|unstarted||http://127.0.0.1:24840||true" \
	"$(table_cells "$OUT" | grep "^$L|")"

# ---- refusals ----
expect_rpc_error FailedPrecondition "etcdserver: too many learner members in cluster" \
	"Error: etcdserver: too many learner members in cluster" \
	"$E" member add infra5 --learner --peer-urls=http://127.0.0.1:24850
expect_rpc_error FailedPrecondition "etcdserver: can only promote a learner member which is in sync with leader" \
	"Error: etcdserver: can only promote a learner member which is in sync with leader" "$E" member promote "$L"
expect_rpc_error FailedPrecondition "etcdserver: can only promote a learner member" \
	"Error: etcdserver: can only promote a learner member" "$E" member promote "$id1"
notfound="etcdserver: member not found"
expect_rpc_error NotFound "$notfound" "Error: $notfound" "$E" member promote 1234
expect_rpc_error NotFound "$notfound" "Error: $notfound" "$E" member remove 1234
expect_rpc_error NotFound "$notfound" "Error: $notfound" "$E" member update 1234 --peer-urls=http://127.0.0.1:24860
expect_rpc_error FailedPrecondition "etcdserver: Peer URLs already exists" "Error: etcdserver: Peer URLs already exists" \
	"$E" member update "$id2" --peer-urls=http://127.0.0.1:24810
ctl "$E" member promote
assert_eq "exit code of member promote without an ID" 128 "$RC"
assert_eq "stderr of member promote without an ID" "Error: member ID is not provided" "$ERR"

# ---- start the learner with the printed variables ----
start_with_printed_env infra4 "$add_out" "${PEER[infra4]}"
learner_started() {
	local out
	out=$("$ETCDCTL" "$E" member list 2>/dev/null) || return 1
	grep -qxF "$L, started, infra4, http://127.0.0.1:24840, http://127.0.0.1:24839, true" <<<"$out"
}
wait_until "the learner is published as started" 20 learner_started
learner_status() { [ "$(status_field infra4 6)" = true ] && [ "$(status_field infra4 2)" = "$L" ]; }
wait_until "endpoint status of the learner says IS LEARNER true" 20 learner_status
ctl_ok --endpoints="${CLIENT[infra4]}" endpoint status -w table
assert_eq "endpoint status -w table of the learner (VERSION, DB SIZE, TERM, INDEXES masked)" \
	"ENDPOINT|ID|VERSION|DB SIZE|IS LEADER|IS LEARNER|RAFT TERM|RAFT INDEX|RAFT APPLIED INDEX|ERRORS
http://127.0.0.1:24839|$L|*|*|false|true|*|*|*|" \
	"$(table_cells "$OUT" | { IFS= read -r h; echo "$h"; mask_fields "$(cat)" 3 4 7 8 9; })"
# A learner serves serializable reads from its own store; linearizable reads and writes need a voter.
has_c() { [ "$("$ETCDCTL" --endpoints="${CLIENT[infra4]}" get c --consistency=s 2>/dev/null)" = $'c\ncc' ]; }
wait_until "the learner has applied c" 20 has_c
unsupported="etcdserver: rpc not supported for learner"
expect_rpc_error Unavailable "$unsupported" "Error: $unsupported" --endpoints="${CLIENT[infra4]}" get c
expect_rpc_error Unavailable "$unsupported" "Error: $unsupported" --endpoints="${CLIENT[infra4]}" put d dd

# ---- promote ----
promoted() {
	ctl "$E" member promote "$L"
	[ "$RC" -eq 0 ] && return 0
	assert_contains "the only acceptable refusal of member promote" \
		"Error: etcdserver: can only promote a learner member which is in sync with leader" "$ERR"
	return 1
}
wait_until "member promote $L accepted" 20 promoted
assert_eq "output of member promote" "Member $(pad16 "$L") promoted in cluster  ea520fd983ec3e3" "$OUT"
all4="$(sort <<<"$voters
$L, started, infra4, http://127.0.0.1:24840, http://127.0.0.1:24839, false")"
voter_listed() {
	local out
	out=$("$ETCDCTL" --endpoints="${CLIENT[$1]}" member list 2>/dev/null) || return 1
	[ "$(sort <<<"$out")" = "$all4" ]
}
for n in infra1 infra2 infra3 infra4; do wait_until "$n lists infra4 as a voter" 10 voter_listed "$n"; done
not_learner() { [ "$(status_field infra4 6)" = false ]; }
wait_until "endpoint status of infra4 says IS LEARNER false" 10 not_learner
expect_out "OK" --endpoints="${CLIENT[infra4]}" put d dd
expect_out "a
aa
b
bb
c
cc
d
dd" --endpoints="${CLIENT[infra4]}" get "" --prefix
expect_rpc_error FailedPrecondition "etcdserver: can only promote a learner member" \
	"Error: etcdserver: can only promote a learner member" "$E" member promote "$L"
