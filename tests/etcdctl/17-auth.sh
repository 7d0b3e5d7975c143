#!/usr/bin/env bash
# etcd's auth commands, every output pinned as etcd 3.4.23 prints it: user add (user:password,
# --new-user-password, stdin, --no-password), get (--detail), list, passwd, grant-role, revoke-role, delete;
# role add, get, list, grant-permission (read, write, readwrite; a key, a range, --prefix, --from-key, the
# whole key space), revoke-permission, delete; auth enable (which adds the root role itself) and disable;
# `auth status` (etcdctl 3.4 has none: it prints the auth command's help; etcd 3.4 has no AuthStatus RPC); -w json and -w fields; the root
# user and role protected while auth is on; who may read which user and role; each refusal with etcd's text
# and gRPC code. Commands go to the three members in turn: auth state is the cluster's.
# Ports: 250x0 (client 250x9).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/grpc-raw.sh"

add_member infra1 25010
add_member infra2 25020
add_member infra3 25030
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
E1=--endpoints=${CLIENT[infra1]}
E2=--endpoints=${CLIENT[infra2]}
E3=--endpoints=${CLIENT[infra3]}
CID=15093141611890540299 # the cluster ID etcd derives from these peer URLs and the token (decimal, as -w json)
MID1=$(printf '%u' "0x$(member_id infra1)")
MID2=$(printf '%u' "0x$(member_id infra2)")
ROOT=(--user root:rootpw)

# ---- `auth status`: not an etcdctl 3.4 command; the help of `auth` ----
ctl_ok "$E1" auth status
assert_eq "first lines of etcdctl auth status" "NAME:
	auth - Enable or disable authentication

USAGE:
	etcdctl auth <enable or disable> [flags]" "$(head -n 5 <<<"$OUT")"
assert_contains "etcdctl auth status" "COMMANDS:
	disable	Disables authentication
	enable	Enables authentication" "$OUT"

# auth_revision REVISION: every member's /metrics shows etcd's gauge of the auth store's revision at REVISION
# (a follower may apply the change a moment after the command returned: awaited, bounded).
auth_revision_is() { [ "$(curl -s "${CLIENT[$1]}/metrics" | grep '^etcd_debugging_auth_revision ')" = \
	"etcd_debugging_auth_revision $2" ]; }
auth_revision() {
	local n
	for n in infra1 infra2 infra3; do
		wait_until "etcd_debugging_auth_revision $1 on $n" 10 auth_revision_is "$n" "$1"
	done
}
auth_revision 1

# etcd 3.5's AuthStatus RPC is not etcd 3.4's. Asked without a request body: the answer comes from the
# method's name alone, and a body still on its way would race with the server's reset of the stream.
grpc_raw "${CLIENT[infra1]}" /etcdserverpb.Auth/AuthStatus -
assert_eq "Auth.AuthStatus" "12 unknown method AuthStatus for service etcdserverpb.Auth" "$GRPC_STATUS $GRPC_MESSAGE"

# ---- before auth: no users, no roles; enable needs root ----
expect_out "" "$E1" user list
expect_out "" "$E2" role list
expect_rpc_error FailedPrecondition "etcdserver: root user does not exist" "Error: etcdserver: root user does not exist" \
	"$E1" auth enable

# ---- users ----
expect_out "User root created" "$E1" user add root:rootpw
expect_rpc_error FailedPrecondition "etcdserver: user name already exists" "Error: etcdserver: user name already exists" \
	"$E2" user add root:other
expect_out "User alice created" "$E2" user add alice --new-user-password=apw
echo bpw >"$TMP/password"
CTL_STDIN=$TMP/password expect_out "User bob created" "$E3" user add bob --interactive=false
expect_out "User carol created" "$E1" user add carol --no-password
ctl "$E1" user add :pw
assert_eq "etcdctl user add :pw" "128 Error: empty user name is not allowed" "$RC $OUT$ERR"
expect_out "User: alice
Roles:" "$E3" user get alice
expect_rpc_error FailedPrecondition "etcdserver: user name not found" "Error: etcdserver: user name not found" \
	"$E1" user get nobody

# ---- roles and their permissions ----
expect_out "Role reader created" "$E1" role add reader
expect_out "Role writer created" "$E2" role add writer
expect_rpc_error FailedPrecondition "etcdserver: role name already exists" "Error: etcdserver: role name already exists" \
	"$E3" role add reader
expect_rpc_error InvalidArgument "etcdserver: role name is empty" "Error: etcdserver: role name is empty" \
	"$E3" role add ""
expect_out "Role reader updated" "$E1" role grant-permission reader read a c
expect_out "Role reader updated" "$E2" role grant-permission reader read --prefix p/
expect_out "Role reader updated" "$E3" role grant-permission reader read --from-key z
expect_out "Role reader updated" "$E1" role grant-permission reader readwrite k
expect_out "Role reader updated" "$E2" role grant-permission reader write w
expect_out "Role writer updated" "$E3" role grant-permission writer write "" --prefix
expect_rpc_error FailedPrecondition "etcdserver: role name not found" "Error: etcdserver: role name not found" \
	"$E1" role grant-permission nosuch read a
ctl "$E1" role grant-permission reader bogus k
assert_eq "etcdctl role grant-permission with a bad type" "128 Error: invalid permission type: bogus" "$RC $OUT$ERR"
ctl "$E1" role grant-permission reader read k1 k2 --prefix
assert_eq "etcdctl role grant-permission with an end key and --prefix" \
	"128 Error: unexpected endkey argument with --prefix flag" "$RC $OUT$ERR"
# Permissions come back ordered by key; a range's end, the prefix it is, an open end.
expect_out "Role reader
KV Read:
	[a, c)
	k
	[p/, p0) (prefix p/)
	[z, <open ended>
KV Write:
	k
	w" "$E2" role get reader
# The whole key space: etcdctl sends key "\0" for "" with --prefix, and prints it (here as @).
assert_eq "etcdctl role get writer" "Role writer
KV Read:
KV Write:
	[@, <open ended>" "$("$ETCDCTL" "$E3" role get writer | tr '\0' @)"
expect_out "reader
writer" "$E1" role list
ctl_ok "$E2" -w json role get reader
assert_eq "etcdctl -w json role get reader" \
	"{\"header\":{\"cluster_id\":$CID,\"member_id\":$MID2,\"revision\":1,\"raft_term\":T},\"perm\":[{\"key\":\"YQ==\",\"range_end\":\"Yw==\"},{\"permType\":2,\"key\":\"aw==\"},{\"key\":\"cC8=\",\"range_end\":\"cDA=\"},{\"permType\":1,\"key\":\"dw==\"},{\"key\":\"eg==\",\"range_end\":\"AA==\"}]}" \
	"$(mask_term "$OUT")"

# ---- roles of users ----
expect_out "Role reader is granted to user alice" "$E1" user grant-role alice reader
expect_out "Role reader is granted to user alice" "$E2" user grant-role alice reader
expect_rpc_error FailedPrecondition "etcdserver: role name not found" "Error: etcdserver: role name not found" \
	"$E3" user grant-role alice nosuch
expect_rpc_error FailedPrecondition "etcdserver: user name not found" "Error: etcdserver: user name not found" \
	"$E1" user grant-role nosuch reader
expect_out "Role writer is granted to user bob" "$E2" user grant-role bob writer
expect_out "Role reader is granted to user bob" "$E3" user grant-role bob reader
expect_out "User: bob
Roles: reader writer" "$E1" user get bob
assert_eq "etcdctl user get bob --detail" "User: bob

Role reader
KV Read:
	[a, c)
	k
	[p/, p0) (prefix p/)
	[z, <open ended>
KV Write:
	k
	w

Role writer
KV Read:
KV Write:
	[@, <open ended>" "$("$ETCDCTL" "$E2" user get bob --detail | tr '\0' @)"
expect_out "alice
bob
carol
root" "$E3" user list
ctl_ok "$E1" -w json user list
assert_eq "etcdctl -w json user list" \
	"{\"header\":{\"cluster_id\":$CID,\"member_id\":$MID1,\"revision\":1,\"raft_term\":T},\"users\":[\"alice\",\"bob\",\"carol\",\"root\"]}" \
	"$(mask_term "$OUT")"
ctl_ok "$E2" -w fields role list
assert_eq "etcdctl -w fields role list" "\"ClusterID\" : $CID
\"MemberID\" : $MID2
\"Revision\" : 1
\"RaftTerm\" : T
\"Roles\" : \"reader\" \"writer\"" "$(mask_term "$OUT")"
ctl "$E3" -w table user list
assert_eq "etcdctl -w table user list" "4 Error: table not supported as output format" "$RC $OUT$ERR"

# ---- revoking ----
expect_out "Permission of key w is revoked from role reader" "$E1" role revoke-permission reader w
expect_rpc_error FailedPrecondition "etcdserver: permission is not granted to the role" \
	"Error: etcdserver: permission is not granted to the role" "$E2" role revoke-permission reader w
expect_out "Permission of range [a, c) is revoked from role reader" "$E3" role revoke-permission reader a c
expect_out "Permission of range [z, <open ended> is revoked from role reader" "$E1" \
	role revoke-permission reader z --from-key
expect_out "Permission of range [p/, p0) is revoked from role reader" "$E2" role revoke-permission reader p/ --prefix
expect_rpc_error FailedPrecondition "etcdserver: role name not found" "Error: etcdserver: role name not found" \
	"$E3" role revoke-permission nosuch a
expect_out "Role reader
KV Read:
	k
KV Write:
	k" "$E3" role get reader
expect_out "Role writer is revoked from user bob" "$E1" user revoke-role bob writer
expect_rpc_error FailedPrecondition "etcdserver: role is not granted to the user" \
	"Error: etcdserver: role is not granted to the user" "$E2" user revoke-role bob writer
echo apw2 >"$TMP/password"
CTL_STDIN=$TMP/password expect_out "Password updated" "$E3" user passwd alice --interactive=false
expect_rpc_error FailedPrecondition "etcdserver: user name not found" "Error: etcdserver: user name not found" \
	"$E1" user passwd nobody --interactive=false
expect_out "User carol deleted" "$E2" user delete carol
expect_rpc_error FailedPrecondition "etcdserver: user name not found" "Error: etcdserver: user name not found" \
	"$E3" user delete carol
expect_out "User dave created" "$E1" user add dave --no-password
expect_out "Role writer deleted" "$E1" role delete writer
expect_rpc_error FailedPrecondition "etcdserver: role name not found" "Error: etcdserver: role name not found" \
	"$E2" role delete writer
expect_out "User: bob
Roles: reader" "$E3" user get bob

auth_revision 25

# ---- auth on: etcdctl's enable adds the role root and grants it to root, then enables ----
ctl_ok "$E1" auth enable
assert_eq "etcdctl auth enable" "Authentication Enabled" "$OUT"
assert_contains "the refusal auth enable retries after" \
	'"error":"rpc error: code = FailedPrecondition desc = etcdserver: root user does not have root role"' "$ERR"
expect_out "reader
root" "$E2" "${ROOT[@]}" role list
expect_out "User: root
Roles: root" "$E3" "${ROOT[@]}" user get root
expect_out "Role root
KV Read:
KV Write:" "$E1" "${ROOT[@]}" role get root
expect_out "Authentication Enabled" "$E2" "${ROOT[@]}" auth enable
expect_rpc_error InvalidArgument "etcdserver: user name is empty" "Error: etcdserver: user name is empty" "$E3" user list
for who in root:wrong nobody:pw alice:apw; do
	ctl "$E1" --user "$who" user list
	assert_eq "etcdctl --user $who user list: exit code, stdout, stderr's last line" \
		"2 | Error: etcdserver: authentication failed, invalid user ID or password" \
		"$RC $OUT| $(tail -n 1 <<<"$ERR")"
done
ctl "$E2" --user dave:x user list
assert_eq "etcdctl --user dave:x user list (no password user): exit code, stdout, stderr's last line" \
	"2 | Error: rpc error: code = Unknown desc = auth: authentication failed, password was given for no password user" "$RC $OUT| $(tail -n 1 <<<"$ERR")"
assert_contains "the code of a password given for a user without one" \
	'"error":"rpc error: code = Unknown desc = auth: authentication failed, password was given for no password user"' "$ERR"
# Anyone reads their own user and the roles they have; the rest takes root.
expect_out "User: alice
Roles: reader" "$E2" --user alice:apw2 user get alice
expect_out "Role reader
KV Read:
	k
KV Write:
	k" "$E3" --user alice:apw2 role get reader
expect_rpc_error PermissionDenied "etcdserver: permission denied" "Error: etcdserver: permission denied" \
	"$E1" --user alice:apw2 user get root
expect_rpc_error PermissionDenied "etcdserver: permission denied" "Error: etcdserver: permission denied" \
	"$E2" --user alice:apw2 role get root
expect_rpc_error PermissionDenied "etcdserver: permission denied" "Error: etcdserver: permission denied" \
	"$E3" --user alice:apw2 user list
expect_rpc_error PermissionDenied "etcdserver: permission denied" "Error: etcdserver: permission denied" \
	"$E1" --user alice:apw2 role add sneaky
expect_rpc_error PermissionDenied "etcdserver: permission denied" "Error: etcdserver: permission denied" \
	"$E2" --user alice:apw2 auth disable
# root keeps its user and role while auth is on.
expect_rpc_error InvalidArgument "etcdserver: invalid auth management" "Error: etcdserver: invalid auth management" \
	"$E3" "${ROOT[@]}" user delete root
expect_rpc_error InvalidArgument "etcdserver: invalid auth management" "Error: etcdserver: invalid auth management" \
	"$E1" "${ROOT[@]}" user revoke-role root root
expect_rpc_error InvalidArgument "etcdserver: invalid auth management" "Error: etcdserver: invalid auth management" \
	"$E2" "${ROOT[@]}" role delete root
# --password instead of user:password.
expect_out "alice
bob
dave
root" "$E3" --user root --password rootpw user list

# ---- auth off ----
expect_out "Authentication Disabled" "$E1" "${ROOT[@]}" auth disable
expect_out "Authentication Disabled" "$E2" auth disable
for n in infra1 infra2 infra3; do
	expect_out "alice
bob
dave
root" --endpoints="${CLIENT[$n]}" user list
done
auth_revision 28
expect_out "User root deleted" "$E3" user delete root
expect_out "reader
root" "$E1" role list

# Stopped together with SIGTERM (none waits for the others' quorum on its way out): a sanitizer build's
# members report at exit.
stop_pids 10 "${PID[infra1]}" "${PID[infra2]}" "${PID[infra3]}" || fail "a member still runs 10 s after SIGKILL"
assert_no_sanitizer_reports
