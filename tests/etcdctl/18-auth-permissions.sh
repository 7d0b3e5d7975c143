#!/usr/bin/env bash
# etcd's auth checks on each kind of call, against etcd 3.4.23's answers: Range (a key, a range, --from-key,
# a prefix, serializable), Put (and its prev_kv and lease), DeleteRange (and prev_kv), Txn (compares and both
# branches checked whichever runs), Watch (a refused create is canceled with the reason), Lease (revoke and
# attach need write on the lease's keys; grant, time-to-live and list need nothing), Maintenance (Snapshot,
# HashKV, Defragment need root, with the auth package's own errors; Status and member list need nothing),
# Compact; role changes taking effect at once. Tokens (simple, --auth-token-ttl=2): one made through a member
# works on the others, a forged one is refused, one of an index not applied yet waits for it, an unused
# token is forgotten after the TTL while its use elsewhere keeps it there, tokens hold across a leader
# change and die with a restart, and the auth state survives the restart of every member.
# Ports: 252x0 (client 252x9).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/grpc-raw.sh"

add_member infra1 25210
add_member infra2 25220
add_member infra3 25230
TTL_FLAGS=(--auth-token-ttl=2)
start_all() {
	local ic n
	ic=$(initial_cluster infra1 infra2 infra3)
	for n in infra1 infra2 infra3; do start_member "$n" "$ic" "$1" "${TTL_FLAGS[@]}"; done
}
start_all new
wait_ready 20 infra1 infra2 infra3
E=--endpoints=$(endpoints infra1 infra2 infra3)
E1=--endpoints=${CLIENT[infra1]}
E2=--endpoints=${CLIENT[infra2]}
E3=--endpoints=${CLIENT[infra3]}
R=(--user root:rootpw)
U=(--user u:upw)
denied="etcdserver: permission denied"

# u: read and write [a, c), read under ro/, write wo only.
expect_out "User root created" "$E1" user add root:rootpw
expect_out "User u created" "$E2" user add u:upw
expect_out "Role r created" "$E3" role add r
expect_out "Role r updated" "$E1" role grant-permission r readwrite a c
expect_out "Role r updated" "$E2" role grant-permission r read --prefix ro/
expect_out "Role r updated" "$E3" role grant-permission r write wo
expect_out "Role r is granted to user u" "$E1" user grant-role u r
ctl_ok "$E2" auth enable
expect_out "OK" "$E3" "${R[@]}" put a1 v1
expect_out "OK" "$E1" "${R[@]}" put ro/1 v
expect_out "OK" "$E2" "${R[@]}" put x v

# ---- Range ----
expect_out "a1
v1" "$E1" "${U[@]}" get a1
expect_out "a1
v1" "$E2" "${U[@]}" get a1 --consistency=s
expect_out "a1
v1" "$E3" "${U[@]}" get a c
expect_out "ro/1
v" "$E1" "${U[@]}" get ro/ --prefix
expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E2" "${U[@]}" get x
expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E3" "${U[@]}" get a d
expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E1" "${U[@]}" get a --from-key
expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E2" "${U[@]}" get wo
expect_rpc_error InvalidArgument "etcdserver: user name is empty" "Error: etcdserver: user name is empty" "$E3" get a1

# ---- Put ----
expect_out "OK" "$E1" "${U[@]}" put a2 v
expect_out "OK" "$E2" "${U[@]}" put wo v
expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E3" "${U[@]}" put ro/2 v
expect_rpc_error InvalidArgument "etcdserver: user name is empty" "Error: etcdserver: user name is empty" "$E1" put a2 v
# prev_kv reads the key too: wo is write-only.
expect_out "OK
a1
v1" "$E2" "${U[@]}" put a1 v2 --prev-kv
expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E3" "${U[@]}" put wo v --prev-kv

# ---- DeleteRange ----
expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E1" "${U[@]}" del x
expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E2" "${U[@]}" del wo --prev-kv
expect_out "1" "$E3" "${U[@]}" del wo
expect_out "1
a1
v2" "$E1" "${U[@]}" del a1 --prev-kv
expect_out "x
v" "$E2" "${R[@]}" get x

# ---- Txn: the compares and both branches are checked, whichever branch runs ----
txn_file() { printf '%s\n' "$@" >"$TMP/txn"; }
txn_file 'mod("a2") > "0"' '' 'put a3 v' '' 'put wo v' ''
CTL_STDIN=$TMP/txn expect_out "SUCCESS

OK" "$E3" "${U[@]}" txn
txn_file 'mod("x") > "0"' '' 'put a3 v' '' ''
CTL_STDIN=$TMP/txn expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E1" "${U[@]}" txn
txn_file 'mod("a2") > "0"' '' 'get ro/1' '' 'put x v' ''
CTL_STDIN=$TMP/txn expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E2" "${U[@]}" txn
txn_file 'mod("a2") = "0"' '' 'del x' '' 'get a2' ''
CTL_STDIN=$TMP/txn expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E3" "${U[@]}" txn
txn_file '' 'get a2' '' ''
CTL_STDIN=$TMP/txn expect_out "SUCCESS

a2
v" "$E1" "${U[@]}" txn
# A txn nested in the success branch puts x. etcd 3.4.23 checks nothing inside a nested txn, so u writes x
# through one; quorumd checks it as the outer txn and refuses.
authenticate "${CLIENT[infra1]}" u upw
# TxnRequest{success: [RequestOp{request_txn: TxnRequest{success: [RequestOp{request_put: {x, nested}}]}}]}
nested_txn=$(pb_message 2 "$(pb_message 4 "$(pb_message 2 "$(pb_message 2 "$(pb_string 1 x)$(pb_string 2 nested)")")")")
grpc_raw "${CLIENT[infra1]}" /etcdserverpb.KV/Txn "$nested_txn" "token: $TOKEN"
if [ "$KIND" = etcd ]; then
	assert_eq "a nested txn's put of x as u (etcd 3.4.23 does not check it)" "0 " "$GRPC_STATUS $GRPC_MESSAGE"
	expect_out "x
nested" "$E2" "${R[@]}" get x
	expect_out "OK" "$E3" "${R[@]}" put x v
else
	assert_eq "a nested txn's put of x as u" "7 $denied" "$GRPC_STATUS $GRPC_MESSAGE"
fi
grpc_raw "${CLIENT[infra2]}" /etcdserverpb.KV/Txn \
	"$(pb_message 2 "$(pb_message 4 "$(pb_message 2 "$(pb_message 2 "$(pb_string 1 a8)$(pb_string 2 nested)")")")")" \
	"token: $TOKEN"
assert_eq "a nested txn's put of a8 as u" "0 " "$GRPC_STATUS $GRPC_MESSAGE"

# ---- Watch: refused creates are canceled with etcd's reason ----
ctl "$E3" "${U[@]}" watch x
assert_eq "etcdctl watch x as u: exit code, stdout, stderr" "5 watch was canceled (rpc error: code = PermissionDenied desc = $denied)
Error: watch is canceled by the server" "$RC $OUT$ERR"
ctl "$E1" watch a1
assert_eq "etcdctl watch a1 without user: exit code, stdout, stderr" "5 watch was canceled (rpc error: code = InvalidArgument desc = etcdserver: user name is empty)
Error: watch is canceled by the server" "$RC $OUT$ERR"
ctl_bg watch-a "$E2" "${U[@]}" watch a --prefix
# The watch is open once a put to a key it covers shows up in it (each retry a new put).
watch_open() {
	"$ETCDCTL" "$E1" "${R[@]}" put a9 "v$SECONDS" >/dev/null 2>&1
	grep -q '^a9$' "$TMP/watch-a"
}
wait_until "the watch of a/ as u delivers" 15 watch_open
expect_out "OK" "$E1" "${R[@]}" put a5 five
wait_until "the put of a5 in u's watch" 10 grep -q '^five$' "$TMP/watch-a"
stop_pids 10 "$BG_PID"

# ---- Lease: revoking or attaching needs write on the lease's keys ----
ctl_ok "$E3" "${U[@]}" lease grant 100
assert_match "lease grant as u" "lease [0-9a-f]{16} granted with TTL\(100s\)" "$OUT"
ctl_ok "$E1" "${R[@]}" lease grant 100
L=$(lease_id "$OUT")
expect_out "OK" "$E2" "${R[@]}" put --lease="$L" x v
expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E3" "${U[@]}" put --lease="$L" a4 v
expect_rpc_error PermissionDenied "$denied" "Error: failed to revoke lease ($denied)" "$E1" "${U[@]}" lease revoke "$L"
ctl_ok "$E2" "${U[@]}" lease timetolive "$L"
assert_match "lease timetolive as u" "lease $L granted with TTL\(100s\), remaining\((9[0-9]|100)s\)" "$OUT"
ctl_ok "$E3" "${U[@]}" lease list
assert_contains "lease list as u" "$L" "$OUT"
expect_out "lease $L revoked" "$E1" "${R[@]}" lease revoke "$L"
# Expiry revokes a lease whoever attached its keys (the member revokes as root).
ctl_ok "$E2" "${U[@]}" lease grant 3
S=$(lease_id "$OUT")
expect_out "OK" "$E3" "${U[@]}" put --lease="$S" a6 short
short_gone() { [ -z "$("$ETCDCTL" "$E1" "${R[@]}" get a6 2>/dev/null)" ]; }
wait_until "the key of u's expired lease deleted" 15 short_gone
expect_out "lease $S already expired" "$E2" "${U[@]}" lease timetolive "$S"
expect_out "" "$E2" "${R[@]}" get x
expect_out "OK" "$E3" "${R[@]}" put x v

# ---- Maintenance ----
ctl "$E2" "${U[@]}" snapshot save "$TMP/u.db"
assert_eq "etcdctl snapshot save as u: exit code, stderr's last line" \
	"5 Error: rpc error: code = Unknown desc = auth: permission denied" "$RC $(tail -n 1 <<<"$ERR")"
ctl "$E3" snapshot save "$TMP/nobody.db"
assert_eq "etcdctl snapshot save without user: exit code, stderr's last line" \
	"5 Error: rpc error: code = Unknown desc = auth: user name is empty" "$RC $(tail -n 1 <<<"$ERR")"
ctl_ok "$E1" "${R[@]}" snapshot save "$TMP/root.db"
assert_eq "etcdctl snapshot save as root" "Snapshot saved at $TMP/root.db" "$OUT"
ctl "$E2" "${U[@]}" endpoint hashkv
assert_eq "etcdctl endpoint hashkv as u: exit code, stderr's last line" \
	"1 Error: rpc error: code = Unknown desc = auth: permission denied" "$RC $(tail -n 1 <<<"$ERR")"
assert_contains "etcdctl endpoint hashkv as u" \
	"Failed to get the hash of endpoint ${CLIENT[infra2]} (rpc error: code = Unknown desc = auth: permission denied)" "$ERR"
ctl_ok "$E3" "${R[@]}" endpoint hashkv
assert_match "endpoint hashkv as root" "${CLIENT[infra3]}, [0-9]+" "$OUT"
ctl "$E1" "${U[@]}" defrag
assert_eq "etcdctl defrag as u: exit code, stdout, stderr's last line" \
	"1 Failed to defragment etcd member[${CLIENT[infra1]}] (rpc error: code = Unknown desc = auth: permission denied)" \
	"$RC $OUT$(tail -n 1 <<<"$ERR")"
expect_out "Finished defragmenting etcd member[${CLIENT[infra1]}]" "$E1" "${R[@]}" defrag
ctl_ok "$E2" "${U[@]}" endpoint status
assert_match "endpoint status as u" "${CLIENT[infra2]}, [0-9a-f]+, 3\.4\.[^,]*, .*" "$OUT"
ctl_ok "$E3" "${U[@]}" member list
assert_eq "member list as u: rows" 3 "$(wc -l <<<"$OUT")"
expect_out "compacted revision 3" "$E1" "${U[@]}" compaction 3

# ---- role changes take effect at once, on every member ----
expect_out "Role r is revoked from user u" "$E2" "${R[@]}" user revoke-role u r
for e in "$E1" "$E2" "$E3"; do
	expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$e" "${U[@]}" get a2
done
expect_out "Role r is granted to user u" "$E3" "${R[@]}" user grant-role u r
expect_out "Role r updated" "$E1" "${R[@]}" role grant-permission r read x
for e in "$E1" "$E2" "$E3"; do
	expect_out "x
v" "$e" "${U[@]}" get x
done

# ---- tokens ----
# One made through infra1 serves on every member; forged or unknown ones are refused.
authenticate "${CLIENT[infra1]}" u upw
for n in infra1 infra2 infra3; do
	range_with_token "${CLIENT[$n]}" a2 "$TOKEN"
	assert_eq "Range on $n with a token from infra1" "0 " "$GRPC_STATUS $GRPC_MESSAGE"
done
range_with_token "${CLIENT[infra2]}" x "$TOKEN"
assert_eq "Range of x on infra2 with u's token" "0 " "$GRPC_STATUS $GRPC_MESSAGE"
range_with_token "${CLIENT[infra3]}" ro/2 "$TOKEN"
assert_eq "Range of ro/2 with u's token" "0 " "$GRPC_STATUS $GRPC_MESSAGE"
range_with_token "${CLIENT[infra3]}" wo "$TOKEN"
assert_eq "Range of wo with u's token" "7 $denied" "$GRPC_STATUS $GRPC_MESSAGE"
for forged in garbage abc.def "${TOKEN%.*}.1"; do
	range_with_token "${CLIENT[infra2]}" a2 "$forged"
	assert_eq "Range with the token '$forged'" "16 etcdserver: invalid auth token" "$GRPC_STATUS $GRPC_MESSAGE"
done
grpc_raw "${CLIENT[infra1]}" /etcdserverpb.Auth/Authenticate "$(pb_string 1 u)$(pb_string 2 wrong)"
assert_eq "Authenticate with a wrong password" \
	"3 etcdserver: authentication failed, invalid user ID or password" "$GRPC_STATUS $GRPC_MESSAGE"
# A simple token names the Raft index of its Authenticate entry; a member waits until it has applied that
# index before looking the token up (etcd's indexWaiter): one far ahead waits until the call's deadline, then
# is invalid.
started=$SECONDS
range_with_token "${CLIENT[infra3]}" a2 "${TOKEN%.*}.99999999" "grpc-timeout: 2S"
assert_eq "Range with a token of an index not applied yet" "16 etcdserver: invalid auth token" \
	"$GRPC_STATUS $GRPC_MESSAGE"
[ $((SECONDS - started)) -ge 1 ] || fail "a token of an index not applied yet was refused before the deadline"

# Unused for --auth-token-ttl (2 s), a token is forgotten by every member that did not see it used; using it
# on infra2 every half second keeps it alive there.
authenticate "${CLIENT[infra2]}" u upw
forgotten_on() { grep -q "\"msg\":\"deleted a simple token\".*\"token\":\"$TOKEN\"" "$TMP/$1.log"; }
uses=0
until forgotten_on infra1 && forgotten_on infra3; do
	[ "$uses" -lt 40 ] || fail "token $TOKEN not forgotten by infra1 and infra3 within 20 s"
	range_with_token "${CLIENT[infra2]}" a2 "$TOKEN"
	assert_eq "Range on infra2 with a token in use" "0 " "$GRPC_STATUS $GRPC_MESSAGE"
	uses=$((uses + 1))
	sleep 0.5
done
[ "$uses" -ge 4 ] || fail "token $TOKEN forgotten after $uses uses, before its TTL of 2 s"
# infra2 first: its TTL runs from the last use, and the calls to the others may take a while on a loaded machine.
range_with_token "${CLIENT[infra2]}" a2 "$TOKEN"
assert_eq "Range on infra2 with the token it kept" "0 " "$GRPC_STATUS $GRPC_MESSAGE"
for n in infra1 infra3; do
	range_with_token "${CLIENT[$n]}" a2 "$TOKEN"
	assert_eq "Range on $n with a token it forgot" "16 etcdserver: invalid auth token" "$GRPC_STATUS $GRPC_MESSAGE"
done

# ---- a leader change: tokens and permissions hold ----
leader=$(leader_among infra1 infra2 infra3)
for n in infra1 infra2 infra3; do [ "$n" = "$leader" ] || target=$n; done
authenticate "${CLIENT[$target]}" u upw
ctl_ok --endpoints="$(endpoints infra1 infra2 infra3)" move-leader "$(member_id "$target")"
wait_until "$target leads" 15 test "$(leader_among infra1 infra2 infra3)" = "$target"
for n in infra1 infra2 infra3; do
	range_with_token "${CLIENT[$n]}" a2 "$TOKEN"
	assert_eq "Range on $n after the leader change" "0 " "$GRPC_STATUS $GRPC_MESSAGE"
	expect_rpc_error PermissionDenied "$denied" "Error: $denied" --endpoints="${CLIENT[$n]}" "${U[@]}" put x v
	expect_out "OK" --endpoints="${CLIENT[$n]}" "${U[@]}" put "a7$n" "$n"
done

# ---- a restart of every member: the auth state is kept, the tokens are not ----
for n in infra1 infra2 infra3; do stop_member "$n"; done
start_all existing
healthy_as_root() {
	"$ETCDCTL" --endpoints="$(endpoints infra1 infra2 infra3)" "${R[@]}" --dial-timeout=1s --command-timeout=2s \
		endpoint health >/dev/null 2>&1
}
wait_until "every member answers root after the restart" 30 healthy_as_root
wait_until "a leader after the restart" 20 has_leader infra1 infra2 infra3
for n in infra1 infra2 infra3; do
	range_with_token "${CLIENT[$n]}" a2 "$TOKEN"
	assert_eq "Range on $n with a token from before the restart" "16 etcdserver: invalid auth token" \
		"$GRPC_STATUS $GRPC_MESSAGE"
	expect_out "root
u" --endpoints="${CLIENT[$n]}" "${R[@]}" user list
	expect_out "a7$n
$n" --endpoints="${CLIENT[$n]}" "${U[@]}" get "a7$n"
	expect_rpc_error PermissionDenied "$denied" "Error: $denied" --endpoints="${CLIENT[$n]}" "${U[@]}" get wo
	expect_rpc_error InvalidArgument "etcdserver: user name is empty" "Error: etcdserver: user name is empty" \
		--endpoints="${CLIENT[$n]}" get "a7$n"
done
expect_out "Role r
KV Read:
	[a, c)
	[ro/, ro0) (prefix ro/)
	x
KV Write:
	[a, c)
	wo" "$E" "${R[@]}" role get r
expect_out "Authentication Disabled" "$E" "${R[@]}" auth disable
expect_out "a7infra3
infra3" "$E" get a7infra3

# Stopped together with SIGTERM (none waits for the others' quorum on its way out): a sanitizer build's
# members report at exit.
stop_pids 10 "${PID[infra1]}" "${PID[infra2]}" "${PID[infra3]}" || fail "a member still runs 10 s after SIGKILL"
assert_no_sanitizer_reports
