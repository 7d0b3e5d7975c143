#!/usr/bin/env bash
# tests/tls/04-auth-cert-cn.sh: etcd's auth with --client-cert-auth: a call without a token is the user its
# verified client certificate names (CN=client here), as etcd's AuthInfoFromTLS; a token, when given, wins; a
# certificate whose CN is no user is refused as an unknown user is. Outputs pinned against etcd 3.4.23. Ports
# 27400-27499.
source "$(dirname "$(realpath "$0")")/lib.sh"

add_tls_member infra1 27410
# shellcheck disable=SC2046
start_member infra1 "$(initial_cluster infra1)" new $(tls_flags infra1)
wait_ready 30 infra1
E=--endpoints=${CLIENT[infra1]}
denied="etcdserver: permission denied"

expect_out "User root created" "$E" user add root:rootpw
expect_out "User client created" "$E" user add client --no-password
expect_out "Role reader created" "$E" role add reader
expect_out "Role reader updated" "$E" role grant-permission reader readwrite a --prefix
expect_out "Role reader is granted to user client" "$E" user grant-role client reader
ctl_ok "$E" auth enable
assert_eq "auth enable over TLS" "Authentication Enabled" "$OUT"

# The certificate's CN is the user: client reads and writes under a, nothing else.
expect_out "OK" "$E" put a1 v1
expect_out $'a1\nv1' "$E" get a1
expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E" put x v
expect_rpc_error PermissionDenied "$denied" "Error: $denied" "$E" user list
expect_out $'User: client\nRoles: reader' "$E" user get client
# A token wins over the certificate.
expect_out $'client\nroot' "$E" --user root:rootpw user list
expect_out "OK" "$E" --user root:rootpw put x v
# A certificate of the trusted CA whose CN (wrong-ip) is no user: refused as an unknown user.
ctl_plain "$E" --cacert "$PKI/ca.pem" --cert "$PKI/wrong-ip-client.pem" --key "$PKI/wrong-ip-client-key.pem" get a1
assert_eq "get a1 as CN=wrong-ip: exit code, stdout, stderr's last line" "1 | Error: $denied" \
	"$RC $OUT| $(tail -n 1 <<<"$ERR")"
ctl_plain "$E" --cacert "$PKI/ca.pem" --cert "$PKI/wrong-ip-client.pem" --key "$PKI/wrong-ip-client-key.pem" \
	snapshot save "$TMP/s.db"
assert_eq "snapshot save as CN=wrong-ip: exit code, stderr's last line" \
	"5 Error: rpc error: code = Unknown desc = auth: user not found" "$RC $(tail -n 1 <<<"$ERR")"

expect_out "Authentication Disabled" "$E" --user root:rootpw auth disable
expect_out $'x\nv' "$E" get x
stop_all_and_check infra1
