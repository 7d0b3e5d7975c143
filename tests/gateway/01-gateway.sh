#!/usr/bin/env bash
# etcd 3.4's gRPC JSON gateway on the client URLs, with curl: the examples of etcd's gateway documentation
# (put, range with range_end, deleterange, txn, lease grant/timetolive/leases/keepalive/revoke, a streaming
# watch receiving a put's event, member list, maintenance status), the /v3beta/ aliases, auth through the
# Authorization header, and the error answers (malformed JSON, unknown path, wrong method, a future
# compaction revision, a lease not found, permission denied, an invalid token, bodies over the request
# limits). Keep-alive and pipelined requests on one connection come back in order.
#
# Bodies are compared byte for byte with what etcd 3.4.23 answers (taken with `run-against-etcd.sh`, which
# runs this same script against it): a new cluster's revisions and the member IDs (derived from the peer URLs)
# are the same on both, only raft_term (and status's sizes and indexes) are masked. Called as
# `01-gateway.sh PATH/quorumd` or `01-gateway.sh PATH/etcd`. Ports: 286x0 (client 286x9).
source "$(dirname "$0")/../etcdctl/lib.sh"
command -v curl >/dev/null || { echo "$0: curl not found (Debian package curl)" >&2; exit 2; }
command -v jq >/dev/null || { echo "$0: jq not found (Debian package jq)" >&2; exit 2; }

# quorumd's infra1 also serves /debug/vars (its client connection count, checked after the watch).
member_flags() {
	# shellcheck disable=SC2207 # TMP has no spaces
	MEMBER_CMD+=($(server_flags "$1"))
	[ "$KIND" != quorumd ] || [ "$1" != infra1 ] || MEMBER_CMD+=(--enable-pprof)
}

add_member infra1 28610
add_member infra2 28620
add_member infra3 28630
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
U=${CLIENT[infra1]}
# The cluster's and infra1's IDs in decimal, as the gateway writes them (the same for etcd: peer URLs fix them).
HEADER_PREFIX='{"header":{"cluster_id":"15464393345587868995","member_id":"2172841939421890696"'

# post PATH JSON [CURL_ARGS...]: POSTs JSON to infra1; sets STATUS and BODY (raft_term masked as "T").
post() {
	local path=$1 json=$2
	shift 2
	local out
	out=$(curl -sS --max-time 10 -o "$TMP/body" -w '%{http_code}' -X POST "$U$path" -d "$json" "$@") ||
		fail "curl $path: exit $?"
	STATUS=$out
	BODY=$(sed -E 's/"raft_term":"[0-9]+"/"raft_term":"T"/g' "$TMP/body")
}

# expect PATH JSON STATUS BODY [CURL_ARGS...]
expect() {
	local path=$1 json=$2 status=$3 body=$4
	shift 4
	post "$path" "$json" "$@"
	assert_eq "HTTP status of POST $path $json" "$status" "$STATUS"
	assert_eq "body of POST $path $json" "$body" "$BODY"
}

H="$HEADER_PREFIX"
hdr() { echo "$H,\"revision\":\"$1\",\"raft_term\":\"T\"}"; }

# ---- KV (etcd's gateway documentation: put, range, range with range_end) ----
# foo=bar, foo1=bar1, foo2=bar2 in base64
expect /v3/kv/put '{"key":"Zm9v","value":"YmFy"}' 200 "$(hdr 2)}"
expect /v3/kv/put '{"key":"Zm9vMQ==","value":"YmFyMQ=="}' 200 "$(hdr 3)}"
expect /v3beta/kv/put '{"key":"Zm9vMg==","value":"YmFyMg==","prev_kv":true}' 200 "$(hdr 4)}"
expect /v3/kv/range '{"key":"Zm9v"}' 200 \
	"$(hdr 4),\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}],\"count\":\"1\"}"
# range_end "foo2" (Zm9vMg==): foo and foo1; keys_only and limit in camelCase, as jsonpb reads them too
expect /v3/kv/range '{"key":"Zm9v","range_end":"Zm9vMg=="}' 200 \
	"$(hdr 4),\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"},{\"key\":\"Zm9vMQ==\",\"create_revision\":\"3\",\"mod_revision\":\"3\",\"version\":\"1\",\"value\":\"YmFyMQ==\"}],\"count\":\"2\"}"
expect /v3beta/kv/range '{"key":"Zm9v","rangeEnd":"Zm9w","keysOnly":true,"limit":2,"sort_order":"DESCEND","sort_target":"KEY"}' 200 \
	"$(hdr 4),\"kvs\":[{\"key\":\"Zm9vMg==\",\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\"},{\"key\":\"Zm9vMQ==\",\"create_revision\":\"3\",\"mod_revision\":\"3\",\"version\":\"1\"}],\"more\":true,\"count\":\"3\"}"
expect /v3/kv/range '{"key":"Zm9v","range_end":"Zm9w","count_only":true,"bogus":1}' 200 "$(hdr 4),\"count\":\"3\"}"
expect /v3/kv/range '{"key":"bm8="}' 200 "$(hdr 4)}"

# ---- txn: compare/success (the documentation's example), and a failure branch ----
expect /v3/kv/txn '{"compare":[{"target":"CREATE","key":"Zm9v","createRevision":"2"}],"success":[{"requestPut":{"key":"Zm9v","value":"YmFy"}}]}' 200 \
	"$(hdr 5),\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":{\"revision\":\"5\"}}}]}"
expect /v3/kv/txn '{"compare":[{"target":"VALUE","key":"Zm9v","value":"YmFy","result":"EQUAL"}],"success":[{"request_range":{"key":"Zm9v"}}],"failure":[{"request_delete_range":{"key":"Zm9v"}}]}' 200 \
	"$(hdr 5),\"succeeded\":true,\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"5\"},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"5\",\"version\":\"2\",\"value\":\"YmFy\"}],\"count\":\"1\"}}]}"
expect /v3/kv/txn '{"compare":[{"target":"VERSION","key":"Zm9v","version":"7","result":"GREATER"}],"success":[],"failure":[{"request_put":{"key":"YQ==","value":"Yg==","prev_kv":true}}]}' 200 \
	"$(hdr 6),\"responses\":[{\"response_put\":{\"header\":{\"revision\":\"6\"}}}]}"

# ---- deleterange ----
expect /v3/kv/deleterange '{"key":"YQ==","prev_kv":true}' 200 \
	"$(hdr 7),\"deleted\":\"1\",\"prev_kvs\":[{\"key\":\"YQ==\",\"create_revision\":\"6\",\"mod_revision\":\"6\",\"version\":\"1\",\"value\":\"Yg==\"}]}"
expect /v3/kv/deleterange '{"key":"YQ=="}' 200 "$(hdr 7)}"

# ---- leases ----
expect /v3/lease/grant '{"TTL":30,"ID":7587}' 200 "$(hdr 7),\"ID\":\"7587\",\"TTL\":\"30\"}"
expect /v3/kv/put '{"key":"bGVhc2Vk","value":"eA==","lease":"7587"}' 200 "$(hdr 8)}"
post /v3/lease/timetolive '{"ID":7587,"keys":true}'
assert_eq "timetolive status" 200 "$STATUS"
assert_eq "timetolive (TTL masked)" "$(hdr 8),\"ID\":\"7587\",\"TTL\":\"X\",\"grantedTTL\":\"30\",\"keys\":[\"bGVhc2Vk\"]}" \
	"$(sed -E 's/"TTL":"(29|30)"/"TTL":"X"/' <<<"$BODY")"
expect /v3/lease/leases '{}' 200 "$(hdr 8),\"leases\":[{\"ID\":\"7587\"}]}"
expect /v3/kv/lease/leases '' 200 "$(hdr 8),\"leases\":[{\"ID\":\"7587\"}]}"
expect /v3/lease/keepalive '{"ID":7587}' 200 "{\"result\":$(hdr 8),\"ID\":\"7587\",\"TTL\":\"30\"}}"
expect /v3/lease/revoke '{"ID":7587}' 200 "$(hdr 9)}"
expect /v3/lease/revoke '{"ID":7587}' 404 \
	'{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}'
expect /v3/lease/timetolive '{"ID":7587}' 200 "$(hdr 9),\"ID\":\"7587\",\"TTL\":\"-1\"}"
expect /v3/kv/range '{"key":"bGVhc2Vk"}' 200 "$(hdr 9)}"

# ---- watch: a stream of {"result":...} lines; a put and a delete arrive as events ----
curl -sS -N --max-time 20 -X POST "$U/v3/watch" -d '{"create_request":{"key":"Zm9v","prev_kv":true}}' \
	>"$TMP/watch.out" 2>"$TMP/watch.err" &
watch_pid=$!
track_pid "$watch_pid"
watch_lines() { [ "$(grep -c . "$TMP/watch.out")" -ge "$1" ]; }
wait_until "the watch's created response" 10 watch_lines 1
expect /v3/kv/put '{"key":"Zm9v","value":"YmF6"}' 200 "$(hdr 10)}"
expect /v3/kv/deleterange '{"key":"Zm9v"}' 200 "$(hdr 11),\"deleted\":\"1\"}"
wait_until "the watch's two events" 10 watch_lines 3
assert_eq "watch stream" "{\"result\":$(hdr 9),\"created\":true}}
{\"result\":$(hdr 10),\"events\":[{\"kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"10\",\"version\":\"3\",\"value\":\"YmF6\"},\"prev_kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"5\",\"version\":\"2\",\"value\":\"YmFy\"}}]}}
{\"result\":$(hdr 11),\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"11\"},\"prev_kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"10\",\"version\":\"3\",\"value\":\"YmF6\"}}]}}" \
	"$(sed -E 's/"raft_term":"[0-9]+"/"raft_term":"T"/g' "$TMP/watch.out")"

# The watch lasts as long as its client. quorumd's /debug/vars (infra1 runs with --enable-pprof) counts the
# client connections: the watch's and the one asking, then the asking one alone once curl is gone.
open_connections() { curl -sS --max-time 5 "$U/debug/vars" | jq -r .client.connections_open; }
[ "$KIND" != quorumd ] || assert_eq "client connections while the watch is open" 2 "$(open_connections)"
kill "$watch_pid"
[ "$KIND" != quorumd ] || wait_until "the watch's connection closed with its client" 10 eval '[ "$(open_connections)" = 1 ]'

# ---- cluster and maintenance ----
post /v3/cluster/member/list '{}'
assert_eq "member list status" 200 "$STATUS"
assert_eq "member list" "$H,\"raft_term\":\"T\"},\"members\":[{\"ID\":\"2172841939421890696\",\"name\":\"infra1\",\"peerURLs\":[\"http://127.0.0.1:28610\"],\"clientURLs\":[\"http://127.0.0.1:28609\"]},{\"ID\":\"9914476163178682117\",\"name\":\"infra2\",\"peerURLs\":[\"http://127.0.0.1:28620\"],\"clientURLs\":[\"http://127.0.0.1:28619\"]},{\"ID\":\"13508827846498313379\",\"name\":\"infra3\",\"peerURLs\":[\"http://127.0.0.1:28630\"],\"clientURLs\":[\"http://127.0.0.1:28629\"]}]}" \
	"$BODY"
post /v3/maintenance/status '{}'
assert_eq "status status" 200 "$STATUS"
# Sizes, indexes, the leader and the version differ between servers and runs: their keys and kinds are checked.
assert_eq "status (values masked)" \
	'{"header":{"cluster_id":"15464393345587868995","member_id":"2172841939421890696","revision":"11","raft_term":"string"},"version":"string","dbSize":"string","leader":"string","raftIndex":"string","raftTerm":"string","raftAppliedIndex":"string","dbSizeInUse":"string"}' \
	"$(jq -c '(.version, .dbSize, .leader, .raftIndex, .raftTerm, .raftAppliedIndex, .dbSizeInUse, .header.raft_term) |= type' <<<"$BODY")"

# A learner added, updated, refused promotion (it never started, so it is not in sync), removed. Its ID is
# random: masked as "NEW".
members='{"ID":"2172841939421890696","name":"infra1","peerURLs":["http://127.0.0.1:28610"],"clientURLs":["http://127.0.0.1:28609"]},{"ID":"9914476163178682117","name":"infra2","peerURLs":["http://127.0.0.1:28620"],"clientURLs":["http://127.0.0.1:28619"]},{"ID":"13508827846498313379","name":"infra3","peerURLs":["http://127.0.0.1:28630"],"clientURLs":["http://127.0.0.1:28629"]}'
# etcd refuses a member until every member has been connected for 5 s ("unhealthy cluster", 503): retried.
try_member_add() {
	post /v3/cluster/member/add '{"peerURLs":["http://127.0.0.1:28640"],"isLearner":true}'
	[ "$STATUS" = 200 ] && return 0
	[ "$STATUS $BODY" = '503 {"error":"etcdserver: unhealthy cluster","message":"etcdserver: unhealthy cluster","code":14}' ] ||
		fail "member add: $STATUS $BODY"
	return 1
}
wait_until "member add accepted" 15 try_member_add
new_id=$(jq -r .member.ID <<<"$BODY")
mask_new() { sed "s/\"$new_id\"/\"NEW\"/g" <<<"$BODY"; }
# The list is in ID order, where the new member's random ID falls anywhere: sorted by name (it has none yet).
assert_eq "member add" "$H,\"raft_term\":\"T\"},\"member\":{\"ID\":\"NEW\",\"peerURLs\":[\"http://127.0.0.1:28640\"],\"isLearner\":true},\"members\":[{\"ID\":\"NEW\",\"peerURLs\":[\"http://127.0.0.1:28640\"],\"isLearner\":true},$members]}" \
	"$(jq -c '.members |= sort_by(.name)' <<<"$(mask_new)")"
post /v3/cluster/member/update "{\"ID\":\"$new_id\",\"peerURLs\":[\"http://127.0.0.1:28641\"]}"
assert_eq "member update" "200 $H,\"raft_term\":\"T\"}}" "$STATUS $(jq -c 'del(.members)' <<<"$BODY")"
expect /v3/cluster/member/promote "{\"ID\":\"$new_id\"}" 412 \
	'{"error":"etcdserver: can only promote a learner member which is in sync with leader","message":"etcdserver: can only promote a learner member which is in sync with leader","code":9}'
post /v3/cluster/member/remove "{\"ID\":\"$new_id\"}"
assert_eq "member remove" "200 $H,\"raft_term\":\"T\"},\"members\":[$members]}" \
	"$STATUS $BODY"
expect /v3/cluster/member/remove "{\"ID\":\"$new_id\"}" 404 \
	'{"error":"etcdserver: member not found","message":"etcdserver: member not found","code":5}'

# etcd answers these two without a header.
expect /v3/maintenance/alarm '{"action":"GET"}' 200 '{}'
expect /v3/maintenance/defragment '{}' 200 '{}'

# ---- errors ----
# A body that is not JSON: Go's decoder's words, 400, code 3 (InvalidArgument).
expect /v3/kv/put '{"key":"Zm9v"' 400 '{"error":"unexpected EOF","message":"unexpected EOF","code":3}'
expect /v3/kv/range '{"key":"Zm9v","limit":"abc"}' 400 \
	"{\"error\":\"invalid character 'a' looking for beginning of value\",\"message\":\"invalid character 'a' looking for beginning of value\",\"code\":3}"
expect /v3/kv/range '' 400 \
	'{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}'
# Go's words for JSON that does not parse or does not fit the message (jsonpb's), as etcd's gateway answers.
for case in \
	'{"key":"Zm9v",}|invalid character '"'}'"' looking for beginning of object key string' \
	'{"key" "Zm9v"}|invalid character '"'\\\"'"' after object key' \
	'{"key":"Zm9v","range_end":[1,2}|invalid character '"'}'"' after array element' \
	'xyz|invalid character '"'x'"' looking for beginning of value' \
	'{"key":"Zm9v",é}|invalid character '"'Ã'"' looking for beginning of object key string' \
	'[1]|json: cannot unmarshal array into Go value of type map[string]json.RawMessage' \
	'{"key":1}|json: cannot unmarshal number into Go value of type []uint8' \
	'{"key":"YQ="}|illegal base64 data at input byte 3' \
	'{"key":"Y Q=="}|illegal base64 data at input byte 1' \
	'{"key":"YQ==","limit":1.5}|json: cannot unmarshal number 1.5 into Go value of type int64' \
	'{"key":"YQ==","limit":"-1x"}|invalid character '"'x'"' after top-level value' \
	'{"key":"YQ==","serializable":"yes"}|json: cannot unmarshal string into Go value of type bool' \
	'{"key":"YQ==","sort_order":"BOGUS"}|unknown value \"BOGUS\" for enum etcdserverpb.RangeRequest_SortOrder'; do
	expect /v3/kv/range "${case%%|*}" 400 "{\"error\":\"${case#*|}\",\"message\":\"${case#*|}\",\"code\":3}"
done
expect /v3/kv/txn '{"compare":[],"success":{"a":1}}' 400 \
	'{"error":"json: cannot unmarshal object into Go value of type []json.RawMessage","message":"json: cannot unmarshal object into Go value of type []json.RawMessage","code":3}'
expect /v3/kv/range 'null' 400 \
	'{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}'
# A stream's first request that does not decode: grpc-gateway's plain error, Unknown (2), 500.
expect /v3/watch '{"create_request":{"key":"Zm9v"' 500 '{"error":"unexpected EOF","message":"unexpected EOF","code":2}'
# An unknown path under /v3/ (grpc-gateway's 404) and outside it (Go's mux), a GET of a gateway path.
expect /v3/kv/nothing '{}' 404 'Not Found'
expect /foo '' 404 '404 page not found'
assert_eq "GET /v3/kv/range" "405 Method Not Allowed" \
	"$(curl -sS --max-time 10 -o "$TMP/body" -w '%{http_code}' "$U/v3/kv/range") $(cat "$TMP/body")"
# A request error: OutOfRange is 400, and the body names the code (11).
expect /v3/kv/compaction '{"revision":"100"}' 400 \
	'{"error":"etcdserver: mvcc: required revision is a future revision","message":"etcdserver: mvcc: required revision is a future revision","code":11}'
# A value over --max-request-bytes (1.5 MiB): etcd's own check; a message over the gRPC limit (2 MiB): gRPC's.
value=$(head -c $((1600 * 1024)) /dev/zero | tr '\0' x | base64 -w 0)
printf '{"key":"Yg==","value":"%s"}' "$value" >"$TMP/big.json"
expect /v3/kv/put "@$TMP/big.json" 400 \
	'{"error":"etcdserver: request is too large","message":"etcdserver: request is too large","code":3}'
value=$(head -c $((3000 * 1024)) /dev/zero | tr '\0' x | base64 -w 0)
printf '{"key":"Yg==","value":"%s"}' "$value" >"$TMP/bigger.json"
expect /v3/kv/put "@$TMP/bigger.json" 429 \
	'{"error":"grpc: received message larger than max (3072008 vs. 2097152)","message":"grpc: received message larger than max (3072008 vs. 2097152)","code":8}'
# A body over twice that (4 MiB): quorumd refuses it unread with a 413 and closes the connection; etcd's
# gateway has no bound of its own and decodes it, then gRPC refuses the message.
value=$(head -c $((3200 * 1024)) /dev/zero | tr '\0' x | base64 -w 0)
printf '{"key":"Yg==","value":"%s"}' "$value" >"$TMP/huge.json"
size=$(stat -c %s "$TMP/huge.json")
if [ "$KIND" = quorumd ]; then
	expect /v3/kv/put "@$TMP/huge.json" 413 \
		"{\"error\":\"request body larger than max ($size vs. 4194304)\",\"message\":\"request body larger than max ($size vs. 4194304)\",\"code\":8}"
else
	expect /v3/kv/put "@$TMP/huge.json" 429 \
		'{"error":"grpc: received message larger than max (3276808 vs. 2097152)","message":"grpc: received message larger than max (3276808 vs. 2097152)","code":8}'
fi
# The raw answer of a call's error: chunked, with grpc-gateway's trailer.
raw=$(curl -sS --max-time 10 -i --raw -X POST "$U/v3/kv/compaction" -d '{"revision":"100"}' | tr -d '\r' |
	grep -v -e '^Date:' -e '^Access-Control')
assert_eq "raw error answer" 'HTTP/1.1 400 Bad Request
Content-Type: application/json
Trailer: Grpc-Trailer-Content-Type
Transfer-Encoding: chunked

93
{"error":"etcdserver: mvcc: required revision is a future revision","message":"etcdserver: mvcc: required revision is a future revision","code":11}
0
Grpc-Trailer-Content-Type: application/grpc' "$raw"

# ---- keep-alive and pipelining: three requests written at once on one connection answer in order ----
pipelined() {
	exec 3<>"/dev/tcp/127.0.0.1/${U##*:}"
	local put='{"key":"cA==","value":"MQ=="}' range='{"key":"cA=="}'
	printf 'POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%sPOST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%sPOST /v3/kv/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}' \
		"${#put}" "$put" "${#range}" "$range" >&3
	timeout 10 cat <&3 | tr -d '\r' | grep -e '^HTTP/1.1' -e '^{' -e '^Not Found'
	exec 3<&-
}
assert_eq "pipelined answers" "HTTP/1.1 200 OK
$(hdr 12)}HTTP/1.1 200 OK
$(hdr 12),\"kvs\":[{\"key\":\"cA==\",\"create_revision\":\"12\",\"mod_revision\":\"12\",\"version\":\"1\",\"value\":\"MQ==\"}],\"count\":\"1\"}HTTP/1.1 404 Not Found
Not Found" "$(pipelined | sed -E 's/"raft_term":"[0-9]+"/"raft_term":"T"/g')"

# A chunked body (with a chunk extension and a trailer), then one whose chunk size is not hex: Go's reader's
# words, and the connection closes.
chunked() {
	exec 3<>"/dev/tcp/127.0.0.1/${U##*:}"
	printf 'POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{"key\r\n8\r\n":"cA=="\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\nPOST /v3/kv/range HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n' >&3
	timeout 10 cat <&3 | tr -d '\r' | grep -e '^HTTP/1.1' -e '^{' -e '^Connection'
	exec 3<&-
}
assert_eq "chunked bodies" "HTTP/1.1 200 OK
$(hdr 12),\"kvs\":[{\"key\":\"cA==\",\"create_revision\":\"12\",\"mod_revision\":\"12\",\"version\":\"1\",\"value\":\"MQ==\"}],\"count\":\"1\"}HTTP/1.1 400 Bad Request
Connection: close
{\"error\":\"invalid byte in chunk length\",\"message\":\"invalid byte in chunk length\",\"code\":3}" \
	"$(chunked 2>/dev/null | sed -E 's/"raft_term":"[0-9]+"/"raft_term":"T"/g')"

# ---- auth through the gateway: the Authorization header carries the token ----
expect /v3/auth/authenticate '{"name":"root","password":"rootpw"}' 412 \
	'{"error":"etcdserver: authentication is not enabled","message":"etcdserver: authentication is not enabled","code":9}'
expect /v3/auth/user/add '{"name":"root","password":"rootpw"}' 200 "$(hdr 12)}"
expect /v3/auth/role/add '{"name":"root"}' 200 "$(hdr 12)}"
expect /v3/auth/user/grant '{"user":"root","role":"root"}' 200 "$(hdr 12)}"
expect /v3/auth/user/add '{"name":"alice","password":"alicepw"}' 200 "$(hdr 12)}"
expect /v3/auth/role/add '{"name":"reader"}' 200 "$(hdr 12)}"
expect /v3/auth/role/grant '{"name":"reader","perm":{"permType":"READ","key":"cA=="}}' 200 "$(hdr 12)}"
expect /v3/auth/user/grant '{"user":"alice","role":"reader"}' 200 "$(hdr 12)}"
# Names come back as Go writes strings: <, >, & and U+2028 escaped.
expect /v3/auth/user/add '{"name":"x<y&z>\u2028","password":"pw"}' 200 "$(hdr 12)}"
expect /v3/auth/user/list '{}' 200 "$(hdr 12),\"users\":[\"alice\",\"root\",\"x\\u003cy\\u0026z\\u003e\\u2028\"]}"
expect /v3/auth/enable '{}' 200 "$(hdr 12)}"
expect /v3/auth/authenticate '{"name":"alice","password":"wrong"}' 400 \
	'{"error":"etcdserver: authentication failed, invalid user ID or password","message":"etcdserver: authentication failed, invalid user ID or password","code":3}'
post /v3/auth/authenticate '{"name":"alice","password":"alicepw"}'
assert_eq "authenticate status" 200 "$STATUS"
token=$(jq -r .token <<<"$BODY")
assert_eq "authenticate (token masked)" "$(hdr 12),\"token\":\"TOKEN\"}" "$(jq -c '.token = "TOKEN"' <<<"$BODY")"
expect /v3/kv/range '{"key":"cA=="}' 200 \
	"$(hdr 12),\"kvs\":[{\"key\":\"cA==\",\"create_revision\":\"12\",\"mod_revision\":\"12\",\"version\":\"1\",\"value\":\"MQ==\"}],\"count\":\"1\"}" \
	-H "Authorization: $token"
expect /v3/kv/put '{"key":"cA==","value":"Mg=="}' 403 \
	'{"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7}' -H "Authorization: $token"
expect /v3/kv/range '{"key":"cA=="}' 401 \
	'{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16}' -H "Authorization: bogus"
expect /v3/kv/range '{"key":"cA=="}' 400 \
	'{"error":"etcdserver: user name is empty","message":"etcdserver: user name is empty","code":3}'

# ---- a request waiting for Raft does not hold up the others (quorumd: one client thread, the default) ----
# Without a quorum a put waits (until etcd's request timeout); meanwhile a serializable range and /version
# on the same member answer at once.
post /v3/auth/authenticate '{"name":"root","password":"rootpw"}'
root_token=$(jq -r .token <<<"$BODY")
stop_member infra2
stop_member infra3
curl -sS --max-time 20 -o "$TMP/stuck.body" -w '%{http_code}' -X POST "$U/v3/kv/put" -d '{"key":"cQ==","value":"MQ=="}' \
	-H "Authorization: $root_token" >"$TMP/stuck.status" 2>"$TMP/stuck.err" &
stuck=$!
track_pid "$stuck"
started=$SECONDS
expect /v3/kv/range '{"key":"cA==","serializable":true}' 200 \
	"$(hdr 12),\"kvs\":[{\"key\":\"cA==\",\"create_revision\":\"12\",\"mod_revision\":\"12\",\"version\":\"1\",\"value\":\"MQ==\"}],\"count\":\"1\"}" \
	-H "Authorization: $root_token"
assert_match "GET /version while the put waits" '\{"etcdserver":"3\.4\.[0-9]+(-quorumd)?","etcdcluster":"3\.4\.0"\}' \
	"$(curl -sS --max-time 5 "$U/version")"
kill -0 "$stuck" 2>/dev/null || fail "the put without a quorum was answered before the range: $(cat "$TMP/stuck.body")"
log "range and /version answered $((SECONDS - started)) s after the stuck put started"
wait "$stuck" || true
assert_eq "the put without a quorum, once it times out" \
	'503 {"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14}' \
	"$(cat "$TMP/stuck.status") $(cat "$TMP/stuck.body")"

# ---- a clean stop; no sanitizer report in any log (the suite also runs on build-sanitize) ----
stop_member infra1
assert_no_sanitizer_reports
