#!/usr/bin/env bash
# Bad client input against three members started with --max-request-bytes=1048576: a put over the limit, or
# whose Raft entry is (InvalidArgument "request is too large", nothing written) and over the limit + gRPC's 512 KiB
# (ResourceExhausted), one just under it (written whole); garbage request bodies, broken HTTP/2 and random
# bytes from h2-probe (an error status for each call, never a hang; the connection closed for broken framing,
# still serving after garbage bodies); Watch and LeaseKeepAlive streams reset, half-closed or dropped; 2000 streams opened at once on one connection (each one served or
# refused); /health, /version and /metrics over HTTP/1.1 on the client and the metrics URLs. Afterwards every
# member still serves, every acknowledged write is on every member, and no member logged a sanitizer report.
# Usage: 10-bad-client-input.sh PATH/quorumd|PATH/etcd [PATH/h2-probe] (the probe is built by meson next to
# quorumd: BUILD/tests/etcdctl/h2-probe; H2_PROBE=... works too).
# Ports: 253x0 (client 253x9), metrics 253x1.
source "$(dirname "$0")/lib.sh"

find_tool PROBE h2-probe "${2:-${H2_PROBE:-}}" tests/etcdctl/h2-probe
command -v curl >/dev/null || { echo "$0: curl not found (Debian package curl)" >&2; exit 2; }

add_member infra1 25310
add_member infra2 25320
add_member infra3 25330
declare -A METRICS=([infra1]=http://127.0.0.1:25311 [infra2]=http://127.0.0.1:25321 [infra3]=http://127.0.0.1:25331)
ic=$(initial_cluster infra1 infra2 infra3)
for n in infra1 infra2 infra3; do
	start_member "$n" "$ic" new --max-request-bytes=1048576 --listen-metrics-urls="${METRICS[$n]}"
done
wait_ready 20 infra1 infra2 infra3
E=--endpoints=$(endpoints infra1 infra2 infra3)
port_of() { echo "${CLIENT[$1]##*:}"; }
# Writes acknowledged to a client: key -> value, checked on every member at the end.
declare -A WRITTEN=()
put_ok() { expect_out OK "$E" put "$1" "$2"; WRITTEN[$1]=$2; }

# ---- (a) --max-request-bytes ----
MAX=1048576
head -c "$MAX" /dev/zero | tr '\0' a >"$TMP/value-max"
head -c $((MAX - 16)) /dev/zero | tr '\0' d >"$TMP/value-entry-over"
head -c $((MAX - 128)) /dev/zero | tr '\0' b >"$TMP/value-under"
head -c $((MAX + 768 * 1024)) /dev/zero | tr '\0' c >"$TMP/value-grpc-max"
CTL_STDIN=$TMP/value-max expect_rpc_error InvalidArgument "etcdserver: request is too large" \
	"Error: etcdserver: request is too large" "$E" put big
# Over max-request-bytes + 512 KiB gRPC itself refuses the message (its length: the value, the key and tags).
CTL_STDIN=$TMP/value-grpc-max expect_rpc_error ResourceExhausted \
	"grpc: received message larger than max ($((MAX + 768 * 1024 + 9)) vs. $((MAX + 512 * 1024)))" \
	"Error: rpc error: code = ResourceExhausted desc = grpc: received message larger than max ($((MAX + 768 * 1024 + 9)) vs. $((MAX + 512 * 1024)))" \
	"$E" put big
# The limit bounds the whole Raft entry, as etcd measures it: the PutRequest (value + 9 bytes here) inside
# its InternalRaftRequest with the request header (~17 bytes more). A value of MAX - 16 fits in the limit as a
# PutRequest but not as an entry: refused.
CTL_STDIN=$TMP/value-entry-over expect_rpc_error InvalidArgument "etcdserver: request is too large" \
	"Error: etcdserver: request is too large" "$E" put big
expect_out "" "$E" get big
CTL_STDIN=$TMP/value-under expect_out OK "$E" put big
ctl_ok "$E" get big --print-value-only
assert_eq "the value just under the limit, read back (length)" $((MAX - 128)) "${#OUT}"
assert_eq "the value just under the limit, read back" "$(cat "$TMP/value-under")" "$OUT"
WRITTEN[big]=$(cat "$TMP/value-under")
log "max-request-bytes checked"

# ---- (b) garbage request bodies on one connection (through a follower: the leader is not needed) ----
FOLLOWER=infra1
[ "$LEADER" != infra1 ] || FOLLOWER=infra2
out=$("$PROBE" "$(port_of "$FOLLOWER")" garbage)
log "garbage: $(tr '\n' ';' <<<"$out")"
# Every call ends with a gRPC error status (never OK, never a reset or no answer) and the connection survives.
# Codes as etcd's grpc-go gives them: 13 INTERNAL for what does not decode, 8 RESOURCE_EXHAUSTED for a
# message declared over the limit, 12 UNIMPLEMENTED for an unknown method.
code_of() { sed -n "s/^$1 grpc-status=\\([0-9-]*\\) .*/\\1/p" <<<"$out"; }
for c in put-bad-varint put-bad-wiretype put-truncated-field put-random range-bad-varint txn-bad-wiretype \
	lease-grant-truncated watch-bad-varint keepalive-bad-wiretype; do
	assert_eq "gRPC status of $c (probe output: $out)" 13 "$(code_of "$c")"
done
# A message shorter than its prefix says, then the end of the stream: grpc-go answers 2 UNKNOWN "unexpected
# EOF"; any error status will do. A unary call ended without any message: etcd (grpc-go) never answers it;
# quorumd must (INTERNAL).
[[ "$(code_of put-short-message)" =~ ^[1-9][0-9]*$ ]] || fail "put-short-message: no error status ($out)"
# The compressed flag without a grpc-encoding: etcd's grpc-go answers 13 INTERNAL, quorumd 12 UNIMPLEMENTED.
[[ "$(code_of put-compressed)" =~ ^1[23]$ ]] || fail "put-compressed: not INTERNAL or UNIMPLEMENTED ($out)"
if [ "$KIND" = quorumd ]; then
	assert_eq "gRPC status of put-no-message (probe output: $out)" 13 "$(code_of put-no-message)"
fi
assert_eq "gRPC status of put-declared-64MiB (probe output: $out)" 8 "$(code_of put-declared-64MiB)"
assert_eq "gRPC status of unknown-method (probe output: $out)" 12 "$(code_of unknown-method)"
assert_eq "gRPC status of the good Put after the garbage (probe output: $out)" 0 "$(code_of put-after-garbage)"
assert_contains "the connection still open after garbage bodies" "connection open" "$out"
WRITTEN[/garbage/after]=ok
expect_out "" "$E" get /abort/mid

# ---- bidirectional streams ended oddly: garbage after a good Watch create (INTERNAL), a watch reset by the
# client, a half-closed watch, an unknown lease's keep-alive then reset, watches left open when the client
# drops the connection (RST) with a put in flight ----
out=$("$PROBE" "$(port_of "$FOLLOWER")" bidi)
log "bidi: $(tr '\n' ';' <<<"$out")"
assert_eq "bidi streams (probe output: $out)" "watch-created yes
watch-garbage-after-create 13
keepalive-answered yes
put-after-bidi 0
connection open" "$(sed 's/ grpc-status=\([0-9-]*\) .*/ \1/' <<<"$out")"
WRITTEN[/bidi/x]=1

# ---- broken HTTP/2 and random bytes: the connection is closed, by quorumd (nghttp2) after a GOAWAY with the
# error where there is one (etcd's grpc-go often just closes) ----
broken() {
	local kind=$1 expected=$2 etcd_expected=${3:-} got
	got=$("$PROBE" "$(port_of "$FOLLOWER")" broken "$kind" | tr '\n' ' ')
	got=${got% }
	log "connection with $kind: $got"
	if [ "$KIND" = etcd ]; then
		got=${got#goaway=* }
		expected=${etcd_expected:-${expected#goaway=* }}
	fi
	assert_eq "connection with $kind" "$expected" "$got"
}
broken random closed
broken bad-preface closed
broken data-stream0 "goaway=1 closed"       # PROTOCOL_ERROR
broken bad-hpack "goaway=9 closed"          # COMPRESSION_ERROR
broken settings-length "goaway=6 closed"    # FRAME_SIZE_ERROR
broken oversized-frame "goaway=6 closed"    # FRAME_SIZE_ERROR
broken even-stream "goaway=1 closed"        # PROTOCOL_ERROR
broken window-overflow "goaway=3 closed" open # FLOW_CONTROL_ERROR (grpc-go does not check)
broken abort-mid-frame "aborted by the client"
broken abort-mid-message "aborted by the client"
put_ok /after/broken 1
log "garbage and broken connections checked"

# ---- (c) 2000 streams at once on one connection: each served or refused, or the connection closed ----
# etcd announces MAX_CONCURRENT_STREAMS 2^32-1 and serves all 2000. quorumd announces 1000; nghttp2 treats a
# HEADERS over the acknowledged limit as a connection error (GOAWAY PROTOCOL_ERROR "max concurrent streams
# exceeded", then the connection is closed, often before the client reads the GOAWAY), so some calls get no
# answer: the issue allows "a gRPC error or a closed connection". Puts answered OK must be on every member (checked
# at the end); unanswered ones may or may not have been applied. Then 1000 streams (quorumd's limit) on a new
# connection are all served.
many_streams() {
	local count=$1 prefix=$2 out summary
	out=$("$PROBE" "$(port_of "$FOLLOWER")" many "$count" "$prefix")
	summary=$(tail -n 1 <<<"$out")
	log "$count streams: $summary"
	sed -n 's/^ok //p' <<<"$out" >>"$TMP/many-ok"
	SUMMARY=$summary
}
many_streams 2000 /many/a/
if [[ "$SUMMARY" =~ ^ok=([0-9]+)\ error=0\ refused=([0-9]+)\ unanswered=0\ goaway=no\ closed=no$ ]]; then
	assert_eq "2000 streams: served + refused" 2000 $((BASH_REMATCH[1] + BASH_REMATCH[2]))
elif [ "$KIND" = etcd ] || ! [[ "$SUMMARY" =~ ^ok=[0-9]+\ error=0\ refused=0\ unanswered=[0-9]+\ goaway=(yes|no)\ closed=yes$ ]]; then
	fail "2000 streams on one connection: neither all answered nor the connection closed: $SUMMARY"
fi
many_streams 1000 /many/b/
assert_eq "1000 streams on one connection" "ok=1000 error=0 refused=0 unanswered=0 goaway=no closed=no" "$SUMMARY"
put_ok /after/many 1

# ---- (d) /health, /version, /metrics over HTTP/1.1 ----
http_get() { curl -sS --max-time 5 "$1"; }
metric_value() { awk -v m="$1" '$1 == m { print $2 }' <<<"$2"; }
for n in infra1 infra2 infra3; do
	# (etcd serves /version on the client URLs only; /health and /metrics on both)
	assert_match "/version of $n" '\{"etcdserver":"3\.4\.[^"]*","etcdcluster":"3\.4\.0"\}' \
		"$(http_get "${CLIENT[$n]}/version")"
	for base in "${CLIENT[$n]}" "${METRICS[$n]}"; do
		assert_eq "/health of $n at $base" '{"health":"true"}' "$(http_get "$base/health")"
		m=$(http_get "$base/metrics")
		assert_eq "etcd_server_has_leader of $n at $base" 1 "$(metric_value etcd_server_has_leader "$m")"
		[[ "$(metric_value etcd_server_leader_changes_seen_total "$m")" =~ ^[1-9][0-9]*$ ]] ||
			fail "etcd_server_leader_changes_seen_total of $n at $base: $(grep leader_changes <<<"$m")"
		grep -qE '^etcd_disk_wal_fsync_duration_seconds_bucket\{le="[^"]+"\} [0-9]+$' <<<"$m" ||
			fail "no etcd_disk_wal_fsync_duration_seconds_bucket in /metrics of $n at $base"
		grep -qE '^etcd_disk_wal_fsync_duration_seconds_bucket\{le="\+Inf"\} [1-9][0-9]*$' <<<"$m" ||
			fail "no fsync counted in /metrics of $n at $base"
	done
done
committed() { metric_value etcd_server_proposals_committed_total "$(http_get "$1/metrics")"; }
before=$(committed "${METRICS[$FOLLOWER]}")
[[ "$before" =~ ^[0-9]+$ ]] || fail "etcd_server_proposals_committed_total of $FOLLOWER: '$before'"
for i in 1 2 3 4 5; do put_ok "/metrics/$i" "$i"; done
grown() { local now; now=$(committed "${METRICS[$FOLLOWER]}"); [ "$now" -ge $((before + 5)) ]; }
wait_until "etcd_server_proposals_committed_total of $FOLLOWER grows by 5 after 5 puts (was $before)" 10 grown
assert_eq "POST /health" 405 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "${CLIENT[infra1]}/health")"
# HEAD: etcd's /health and /version answer 405 with "Allow: GET"; /metrics (Prometheus' handler) answers 200.
for path in health version; do
	assert_eq "HEAD /$path" 405 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -I "${CLIENT[infra1]}/$path")"
	assert_contains "Allow header of HEAD /$path" "Allow: GET" \
		"$(curl -s --max-time 5 -I "${CLIENT[infra1]}/$path" | tr -d '\r')"
done
assert_eq "HEAD /metrics" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -I "${CLIENT[infra1]}/metrics")"
assert_eq "an unknown path" 404 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${CLIENT[infra1]}/nope")"
log "HTTP endpoints checked"

# ---- afterwards: every member serves, and every acknowledged write is on every member ----
wait_until "endpoint health of all members" 10 all_healthy infra1 infra2 infra3
for n in infra1 infra2 infra3; do
	running "$n" || fail "$n is not running"
	put_ok "/final/$n" "$n"
	expect_out "$n" --endpoints="${CLIENT[$n]}" get "/final/$n" --print-value-only
done
wait_until "applied indexes converge" 10 applied_converged infra1 infra2 infra3
sort "$TMP/many-ok" >"$TMP/many-ok.sorted"
for n in infra1 infra2 infra3; do
	"$ETCDCTL" --endpoints="${CLIENT[$n]}" get --prefix /many/ --keys-only --consistency=s |
		sed '/^$/d' | sort >"$TMP/many-$n"
	missing=$(comm -23 "$TMP/many-ok.sorted" "$TMP/many-$n")
	[ -z "$missing" ] || fail "$n: acknowledged /many/ puts missing: $(head -n 5 <<<"$missing")"
	for k in "${!WRITTEN[@]}"; do
		ctl_ok --endpoints="${CLIENT[$n]}" get "$k" --print-value-only --consistency=s
		[ "$OUT" = "${WRITTEN[$k]}" ] || fail "$n: acknowledged write $k is not there (got ${#OUT} bytes)"
	done
done
log "every acknowledged write ($((${#WRITTEN[@]} + $(wc -l <"$TMP/many-ok"))) keys) is on every member"

# ---- a clean stop; no sanitizer report in any log ----
for n in infra1 infra2 infra3; do stop_member "$n"; done
assert_no_sanitizer_reports
