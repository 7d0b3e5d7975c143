#!/usr/bin/env bash
# JWT tokens (--auth-token jwt,pub-key=...,priv-key=...,sign-method=RS256|ES256,ttl=...), against etcd
# 3.4.23: etcdctl works through every member; a token's header and claims are golang-jwt's
# ({"alg","typ"}, {"exp","revision","username"}); any member verifies a token another signed; a token made by
# hand with the key (openssl) is accepted and one signed with another key, altered, of another algorithm or
# expired is not; a token from before an auth change is refused as of an old revision; a member with the
# public key alone verifies tokens but cannot issue them.
# Ports: 240x0 (client 240x9).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/grpc-raw.sh"

command -v openssl >/dev/null || fail "openssl not found"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/rs.key" 2>/dev/null
openssl pkey -in "$TMP/rs.key" -pubout -out "$TMP/rs.pub"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/other.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/es.key" 2>/dev/null
openssl pkey -in "$TMP/es.key" -pubout -out "$TMP/es.pub"

add_member infra1 24010
add_member infra2 24020
add_member infra3 24030
# start NAME STATE KEY_OPTIONS
start() {
	start_member "$1" "$(initial_cluster infra1 infra2 infra3)" "$2" --auth-token "jwt,$3"
}
RS="pub-key=$TMP/rs.pub,priv-key=$TMP/rs.key,sign-method=RS256,ttl=4s"
ES="pub-key=$TMP/es.pub,priv-key=$TMP/es.key,sign-method=ES256"
for n in infra1 infra2 infra3; do start "$n" new "$RS"; done
wait_ready 20 infra1 infra2 infra3
E1=--endpoints=${CLIENT[infra1]}
E2=--endpoints=${CLIENT[infra2]}
E3=--endpoints=${CLIENT[infra3]}
R=(--user root:rootpw)
U=(--user u:upw)

b64url() { basenc --base64url -w0 | tr -d '='; }
b64url_decode() {
	local text=$1
	while [ $((${#text} % 4)) -ne 0 ]; do text+="="; done
	basenc --base64url -d <<<"$text"
}
# make_jwt KEY ALG CLAIMS: a JWT signed by hand (RSA, PKCS #1 v1.5 with SHA-256) with openssl.
make_jwt() {
	local input
	input="$(printf '{"alg":"%s","typ":"JWT"}' "$2" | b64url).$(printf '%s' "$3" | b64url)"
	printf '%s.%s' "$input" "$(printf '%s' "$input" | openssl dgst -sha256 -sign "$1" | b64url)"
}
# expect_range URL TOKEN EXPECTED: a Range of a1 with TOKEN answers "STATUS MESSAGE".
expect_range() {
	range_with_token "$1" a1 "$2"
	assert_eq "Range on $1 with token ${2:0:24}..." "$3" "$GRPC_STATUS $GRPC_MESSAGE"
}

expect_out "User root created" "$E1" user add root:rootpw
expect_out "User u created" "$E2" user add u:upw
expect_out "Role r created" "$E3" role add r
expect_out "Role r updated" "$E1" role grant-permission r readwrite a c
expect_out "Role r is granted to user u" "$E2" user grant-role u r
ctl_ok "$E3" auth enable
for n in infra1 infra2 infra3; do
	expect_out "OK" --endpoints="${CLIENT[$n]}" "${U[@]}" put a1 "$n"
	expect_out "a1
$n" --endpoints="${CLIENT[$n]}" "${U[@]}" get a1
	expect_rpc_error PermissionDenied "etcdserver: permission denied" "Error: etcdserver: permission denied" \
		--endpoints="${CLIENT[$n]}" "${U[@]}" get x
done

# ---- what a token is, and who verifies it ----
authenticate "${CLIENT[infra1]}" u upw
IFS=. read -r header claims signature <<<"$TOKEN"
assert_eq "the token's header" '{"alg":"RS256","typ":"JWT"}' "$(b64url_decode "$header")"
# The revision: user add (2, 3), role add (4), grant-permission (5), grant-role (6), the root role added and
# granted by auth enable (7, 8).
claims_json=$(b64url_decode "$claims")
assert_match "the token's claims" '\{"exp":[0-9]+,"revision":8,"username":"u"\}' "$claims_json"
expires=$(sed 's/.*"exp":\([0-9]*\).*/\1/' <<<"$claims_json")
left=$((expires - $(date +%s)))
[ "$left" -ge 2 ] && [ "$left" -le 5 ] || fail "the token expires in $left s, its ttl is 4 s"
assert_eq "the signature's length (RSA 2048)" 342 "${#signature}"
for n in infra1 infra2 infra3; do expect_range "${CLIENT[$n]}" "$TOKEN" "0 "; done
invalid="16 etcdserver: invalid auth token"
expect_range "${CLIENT[infra2]}" "$header.$(printf '{"exp":%s,"revision":8,"username":"root"}' "$expires" | b64url).$signature" \
	"$invalid"
now=$(date +%s)
expect_range "${CLIENT[infra3]}" "$(make_jwt "$TMP/rs.key" RS256 "{\"exp\":$((now + 60)),\"revision\":8,\"username\":\"u\"}")" \
	"0 "
expect_range "${CLIENT[infra3]}" "$(make_jwt "$TMP/rs.key" RS256 "{\"exp\":$((now + 60)),\"revision\":8,\"username\":\"root\"}")" \
	"0 "
expect_range "${CLIENT[infra1]}" "$(make_jwt "$TMP/other.key" RS256 "{\"exp\":$((now + 60)),\"revision\":8,\"username\":\"u\"}")" \
	"$invalid"
expect_range "${CLIENT[infra2]}" "$(make_jwt "$TMP/rs.key" RS256 "{\"exp\":$((now - 1)),\"revision\":8,\"username\":\"u\"}")" \
	"$invalid"
expect_range "${CLIENT[infra3]}" "$(make_jwt "$TMP/rs.key" RS384 "{\"exp\":$((now + 60)),\"revision\":8,\"username\":\"u\"}")" \
	"$invalid"

# ---- a token carries its auth revision: after a change it is refused as old ----
OLD_TOKEN=$TOKEN
expect_out "Role r updated" "$E2" "${R[@]}" role grant-permission r read x
expect_range "${CLIENT[infra2]}" "$OLD_TOKEN" "3 etcdserver: revision of auth store is old"
expect_out "a1
infra3" "$E3" "${U[@]}" get a1

# ---- expiry: ttl=4s ----
authenticate "${CLIENT[infra2]}" u upw
expect_range "${CLIENT[infra3]}" "$TOKEN" "0 "
expired() {
	range_with_token "${CLIENT[infra1]}" a1 "$TOKEN"
	[ "$GRPC_STATUS $GRPC_MESSAGE" = "$invalid" ]
}
wait_until "the token's expiry" 15 expired

# ---- ES256, and a member that only verifies ----
for n in infra1 infra2 infra3; do stop_member "$n"; done
start infra1 existing "$ES"
start infra2 existing "$ES"
start infra3 existing "pub-key=$TMP/es.pub,sign-method=ES256"
healthy_as_root() {
	"$ETCDCTL" --endpoints="$(endpoints infra1 infra2)" "${R[@]}" --dial-timeout=1s --command-timeout=2s \
		endpoint health >/dev/null 2>&1
}
wait_until "infra1 and infra2 answer root after the restart" 30 healthy_as_root
wait_until "a leader after the restart" 20 has_leader infra1 infra2 infra3
authenticate "${CLIENT[infra1]}" u upw
IFS=. read -r header claims signature <<<"$TOKEN"
assert_eq "the ES256 token's header" '{"alg":"ES256","typ":"JWT"}' "$(b64url_decode "$header")"
assert_eq "the signature's length (P-256: r and s, 32 bytes each)" 86 "${#signature}"
for n in infra1 infra2 infra3; do expect_range "${CLIENT[$n]}" "$TOKEN" "0 "; done
# One signature character changed (to one it is not: an ES256 signature is random, and 1 in 64 has an A there).
changed=A
[ "${signature:40:1}" != A ] || changed=B
expect_range "${CLIENT[infra3]}" "$header.$claims.${signature:0:40}$changed${signature:41}" "$invalid"
expect_range "${CLIENT[infra2]}" "$(make_jwt "$TMP/rs.key" RS256 "{\"exp\":$(($(date +%s) + 60)),\"revision\":9,\"username\":\"u\"}")" \
	"$invalid"
grpc_raw "${CLIENT[infra3]}" /etcdserverpb.Auth/Authenticate "$(pb_string 1 u)$(pb_string 2 upw)"
assert_eq "Authenticate through the member that only verifies" "2 auth: token signing attempted with verify-only key" \
	"$GRPC_STATUS $GRPC_MESSAGE"
expect_out "a1
infra3" "$E1" "${U[@]}" get a1
expect_out "Authentication Disabled" "$E2" "${R[@]}" auth disable

# Stopped together with SIGTERM (none waits for the others' quorum on its way out): a sanitizer build's
# members report at exit.
stop_pids 10 "${PID[infra1]}" "${PID[infra2]}" "${PID[infra3]}" || fail "a member still runs 10 s after SIGKILL"
assert_no_sanitizer_reports
