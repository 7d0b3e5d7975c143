#!/usr/bin/env bash
# The JSON gateway on https:// client URLs (a three-member cluster with etcd's secure set-up, tests/tls/lib.sh):
# curl over HTTP/1.1 (ALPN offering only http/1.1) and over HTTP/2 (curl's default, ALPN h2) reaches the same
# calls as over http://; a watch streams its events over both; errors and unknown paths answer as over http://.
# Bodies pinned against etcd 3.4.23 (`run-against-etcd.sh`). Ports: 286x0 for x = 4..6 (client 286x9).
source "$(dirname "$(realpath "$0")")/../tls/lib.sh"
command -v curl >/dev/null || { echo "$0: curl not found (Debian package curl)" >&2; exit 2; }

add_tls_member infra1 28650
add_tls_member infra2 28660
add_tls_member infra3 28670
ic=$(initial_cluster infra1 infra2 infra3)
for n in infra1 infra2 infra3; do
	# shellcheck disable=SC2046
	start_member "$n" "$ic" new $(tls_flags "$n")
done
wait_ready 30 infra1 infra2 infra3
U=${CLIENT[infra1]}
CURL=(curl -sS --max-time 10 --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client-key.pem")
H='{"header":{"cluster_id":"3781802471657588498","member_id":"468813186039257133"'
hdr() { echo "$H,\"revision\":\"$1\",\"raft_term\":\"T\"}"; }

# expect HTTP_VERSION_FLAG PATH JSON STATUS BODY
expect() {
	local version=$1 path=$2 json=$3 status=$4 body=$5 out
	out=$("${CURL[@]}" "$version" -o "$TMP/body" -w '%{http_version} %{http_code}' -X POST "$U$path" -d "$json") ||
		fail "curl $version $path: exit $?"
	assert_eq "HTTP version and status of POST $version $path $json" "${version#--http} $status" "$out"
	assert_eq "body of POST $version $path $json" "$body" \
		"$(sed -E 's/"raft_term":"[0-9]+"/"raft_term":"T"/g' "$TMP/body")"
}

expect --http1.1 /v3/kv/put '{"key":"Zm9v","value":"YmFy"}' 200 "$(hdr 2)}"
expect --http2 /v3/kv/put '{"key":"Zm9vMQ==","value":"YmFyMQ=="}' 200 "$(hdr 3)}"
for version in --http1.1 --http2; do
	expect "$version" /v3/kv/range '{"key":"Zm9v","range_end":"Zm9w","keys_only":true}' 200 \
		"$(hdr 3),\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\"},{\"key\":\"Zm9vMQ==\",\"create_revision\":\"3\",\"mod_revision\":\"3\",\"version\":\"1\"}],\"count\":\"2\"}"
	expect "$version" /v3/kv/compaction '{"revision":"100"}' 400 \
		'{"error":"etcdserver: mvcc: required revision is a future revision","message":"etcdserver: mvcc: required revision is a future revision","code":11}'
	expect "$version" /v3/kv/put '{"key":"Zm9v"' 400 '{"error":"unexpected EOF","message":"unexpected EOF","code":3}'
	expect "$version" /v3/kv/nothing '{}' 404 'Not Found'
done

# A watch over each: the created response, then the put's event.
revision=3
for version in --http1.1 --http2; do
	: >"$TMP/watch$version"
	"${CURL[@]}" "$version" -N --max-time 20 -X POST "$U/v3/watch" -d '{"create_request":{"key":"dw=="}}' \
		>"$TMP/watch$version" 2>"$TMP/watch$version.err" &
	track_pid $!
	lines() { [ "$(grep -c . "$TMP/watch$version")" -ge "$1" ]; }
	wait_until "the $version watch's created response" 10 lines 1
	revision=$((revision + 1))
	expect "$version" /v3/kv/put '{"key":"dw==","value":"MQ=="}' 200 "$(hdr $revision)}"
	wait_until "the $version watch's event" 10 lines 2
	assert_eq "watch over $version" "{\"result\":$(hdr $((revision - 1))),\"created\":true}}
{\"result\":$(hdr $revision),\"events\":[{\"kv\":{\"key\":\"dw==\",\"create_revision\":\"4\",\"mod_revision\":\"$revision\",\"version\":\"$((revision - 3))\",\"value\":\"MQ==\"}}]}}" \
		"$(sed -E 's/"raft_term":"[0-9]+"/"raft_term":"T"/g' "$TMP/watch$version")"
done

# ---- a clean stop (the watches still open); no sanitizer report in any log ----
for n in infra1 infra2 infra3; do stop_member "$n"; done
assert_no_sanitizer_reports
