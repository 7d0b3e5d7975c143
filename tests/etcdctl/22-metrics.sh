#!/usr/bin/env bash
# /metrics of three members after puts, gets and a watch, on the client URLs and on --listen-metrics-urls:
# every family that etcd's Grafana dashboard and the usual etcd alert rules read is there with etcd 3.4.23's
# TYPE and label names (the list below was taken from etcd 3.4.23's own /metrics), the text is well formed
# (one TYPE per family, histograms' buckets cumulative up to le="+Inf" = _count), and the counters moved with
# what was done: bytes sent to and received from each peer (labelled by its member ID), gRPC calls by method
# and code (the puts, the gets, the watch stream and its messages, a snapshot stream), backend commits,
# backend snapshots and WAL fsyncs, the round trip to each peer, Raft's committed and applied indexes,
# leadership. Runs against etcd 3.4.23 too.
# Ports: 287x0 (client 287x9), metrics 287x1.
source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "$0: curl not found (Debian package curl)" >&2; exit 2; }

add_member infra1 28710
add_member infra2 28720
add_member infra3 28730
declare -A METRICS=([infra1]=http://127.0.0.1:28711 [infra2]=http://127.0.0.1:28721 [infra3]=http://127.0.0.1:28731)
ic=$(initial_cluster infra1 infra2 infra3)
for n in infra1 infra2 infra3; do
	start_member "$n" "$ic" new --listen-metrics-urls="${METRICS[$n]}"
done
wait_ready 20 infra1 infra2 infra3
FOLLOWER=infra1
[ "$LEADER" != infra1 ] || FOLLOWER=infra2
declare -A ID=()
for n in infra1 infra2 infra3; do ID[$n]=$(member_id "$n"); done
log "leader $LEADER, follower $FOLLOWER"

scrape() { curl -s --max-time 5 "$1/metrics"; }
# value TEXT SERIES: the value of the series written exactly so (name{labels} as in the text); empty if absent.
value() { awk -v s="$2" '$1 == s { print $2; found = 1; exit } END { if (!found) print "" }' <<<"$1"; }
# at_least DESCRIPTION VALUE MINIMUM: VALUE is a number >= MINIMUM (Go's number format: 1.5e+06 too).
at_least() {
	[ -n "$2" ] || fail "$1: no such series"
	awk -v v="$2" -v m="$3" 'BEGIN { exit !(v + 0 >= m + 0) }' || fail "$1: $2, want at least $3"
}

# ---- what the members are asked ----
PUTS_LEADER=20
PUTS_FOLLOWER=7
GETS_FOLLOWER=5
L=--endpoints=${CLIENT[$LEADER]}
F=--endpoints=${CLIENT[$FOLLOWER]}
for ((i = 0; i < PUTS_LEADER; i++)); do expect_out OK "$L" put "/metrics/leader/$i" "v$i"; done
for ((i = 0; i < PUTS_FOLLOWER; i++)); do expect_out OK "$F" put "/metrics/follower/$i" "v$i"; done
for ((i = 0; i < GETS_FOLLOWER; i++)); do expect_out "/metrics/leader/$i
v$i" "$F" get "/metrics/leader/$i"; done

# A watch on the follower: created (the Watch stream counted as started), then one event delivered.
watch_series='{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"}'
ctl_bg watch "$F" watch /metrics/watched
watch_started() {
	local text
	text=$(scrape "${CLIENT[$FOLLOWER]}")
	[ "$(value "$text" "grpc_server_started_total$watch_series")" = 1 ] &&
		awk -v v="$(value "$text" "grpc_server_msg_sent_total$watch_series")" 'BEGIN { exit !(v >= 1) }'
}
wait_until "the follower counted the watch stream and its created response" 10 watch_started
expect_out OK "$L" put /metrics/watched seen
wait_until "the watch saw the put" 10 grep -qx seen "$TMP/watch"

# A snapshot of the follower (Maintenance.Snapshot, a server stream): its backend snapshot is timed.
ctl_ok "$F" snapshot save "$TMP/follower.db"

# The round trip to each peer: etcd measures it with its prober (the first figure after about 5 s),
# quorumd with every heartbeat's ping; either way the leader has one for each peer within a bounded wait.
round_trips_measured() {
	local text peer
	text=$(scrape "${CLIENT[$LEADER]}")
	for peer in infra1 infra2 infra3; do
		[ "$peer" != "$LEADER" ] || continue
		[ "$(value "$text" "etcd_network_peer_round_trip_time_seconds_count{To=\"${ID[$peer]}\"}")" != "" ] || return 1
		[ "$(value "$text" "etcd_network_peer_round_trip_time_seconds_count{To=\"${ID[$peer]}\"}")" != 0 ] || return 1
	done
}
wait_until "the leader's round trip to each peer" 40 round_trips_measured
# No proposal left pending once every answer came (a gauge that comes back to 0).
pending_zero() { [ "$(value "$(scrape "${CLIENT[$1]}")" etcd_server_proposals_pending)" = 0 ]; }
wait_until "no pending proposals on $LEADER" 10 pending_zero "$LEADER"
wait_until "no pending proposals on $FOLLOWER" 10 pending_zero "$FOLLOWER"

leader_text=$(scrape "${CLIENT[$LEADER]}")
follower_text=$(scrape "${METRICS[$FOLLOWER]}")
[ -n "$leader_text" ] || fail "no /metrics from $LEADER"
[ -n "$follower_text" ] || fail "no /metrics from $FOLLOWER on its --listen-metrics-urls"

# ---- the families, their types and label names, as etcd 3.4.23 serves them ----
# name type label-names (the first sample's, le left out; - for none)
EXPECTED_FAMILIES="etcd_cluster_version gauge cluster_version
etcd_debugging_auth_revision gauge -
etcd_debugging_mvcc_current_revision gauge -
etcd_debugging_mvcc_db_total_size_in_bytes gauge -
etcd_disk_backend_commit_duration_seconds histogram -
etcd_disk_backend_snapshot_duration_seconds histogram -
etcd_disk_wal_fsync_duration_seconds histogram -
etcd_mvcc_db_total_size_in_bytes gauge -
etcd_mvcc_db_total_size_in_use_in_bytes gauge -
etcd_network_client_grpc_received_bytes_total counter -
etcd_network_client_grpc_sent_bytes_total counter -
etcd_network_peer_received_bytes_total counter From
etcd_network_peer_round_trip_time_seconds histogram To
etcd_network_peer_sent_bytes_total counter To
etcd_server_has_leader gauge -
etcd_server_heartbeat_send_failures_total counter -
etcd_server_id gauge server_id
etcd_server_is_leader gauge -
etcd_server_is_learner gauge -
etcd_server_leader_changes_seen_total counter -
etcd_server_proposals_applied_total gauge -
etcd_server_proposals_committed_total gauge -
etcd_server_proposals_failed_total counter -
etcd_server_proposals_pending gauge -
etcd_server_quota_backend_bytes gauge -
etcd_server_slow_apply_total counter -
etcd_server_version gauge server_version
grpc_server_handled_total counter grpc_code,grpc_method,grpc_service,grpc_type
grpc_server_msg_received_total counter grpc_method,grpc_service,grpc_type
grpc_server_msg_sent_total counter grpc_method,grpc_service,grpc_type
grpc_server_started_total counter grpc_method,grpc_service,grpc_type
process_cpu_seconds_total counter -
process_max_fds gauge -
process_open_fds gauge -
process_resident_memory_bytes gauge -
process_start_time_seconds gauge -
process_virtual_memory_bytes gauge -
process_virtual_memory_max_bytes gauge -"

# families TEXT: "name type labels" of every family with samples (labels of its first sample, le dropped).
families() {
	awk '
		/^# TYPE / { type[$3] = $4; next }
		/^#/ { next }
		{
			series = $1; name = series; sub(/\{.*/, "", name)
			base = name
			if (!(base in type)) { b = base; sub(/_(bucket|sum|count)$/, "", b); if (b in type) base = b }
			if (base in seen || (base != name && name !~ /_bucket$/)) next
			seen[base] = 1
			labels = ""
			if (series ~ /\{/) {
				l = series; sub(/^[^{]*\{/, "", l); sub(/\}$/, "", l)
				m = split(l, parts, /",/)
				for (i = 1; i <= m; i++) {
					k = parts[i]; sub(/=.*/, "", k)
					if (k != "le") labels = labels (labels ? "," : "") k
				}
			}
			print base, type[base], (labels ? labels : "-")
		}' <<<"$1" | sort
}

# well_formed WHO TEXT: every line a comment or "series value"; one TYPE per family; every histogram's
# buckets cumulative, ending in le="+Inf" equal to its _count.
well_formed() {
	local problems
	problems=$(awk '
		/^# TYPE / { if (++types[$3] > 1) print "two TYPE lines for " $3; next }
		/^# HELP / { next }
		/^#/ { print "unexpected comment: " $0; next }
		NF != 2 || $2 !~ /^([-+]?[0-9.]+(e[-+][0-9]+)?|NaN|[-+]Inf)$/ { print "malformed sample: " $0; next }
		$1 ~ /_bucket\{/ {
			key = $1; sub(/,?le="[^"]*"/, "", key); sub(/\{\}/, "", key); sub(/_bucket/, "", key)
			if ((key in last) && $2 + 0 < last[key]) print "buckets not cumulative: " $0
			last[key] = $2 + 0
			if ($1 ~ /le="\+Inf"/) inf[key] = $2 + 0
			next
		}
		$1 ~ /_count(\{|$)/ { key = $1; sub(/_count/, "", key); count[key] = $2 + 0 }
		END {
			for (k in inf) if (!(k in count) || count[k] != inf[k]) print "le=\"+Inf\" is not _count for " k
			for (k in last) if (!(k in inf)) print "no le=\"+Inf\" bucket for " k
		}' <<<"$2")
	[ -z "$problems" ] || fail "/metrics of $1 is not well formed: $(head -n 5 <<<"$problems")"
}

for who in leader follower; do
	if [ "$who" = leader ]; then text=$leader_text; else text=$follower_text; fi
	well_formed "$who" "$text"
	got=$(families "$text")
	missing=$(comm -23 <(sort <<<"$EXPECTED_FAMILIES") <(printf '%s\n' "$got"))
	[ -z "$missing" ] || fail "families of etcd 3.4.23 missing or different on the $who (name type labels): $missing
(the $who has: $(grep -F -f <(awk '{ print $1 " " }' <<<"$missing") <<<"$got" | tr '\n' ';'))"
done

# ---- the counters moved with what was done ----
for pair in "leader:$LEADER" "follower:$FOLLOWER"; do
	who=${pair%%:*} self=${pair#*:}
	if [ "$who" = leader ]; then text=$leader_text; else text=$follower_text; fi
	# Raft traffic runs between the leader and each follower (followers need not talk to each other).
	for peer in infra1 infra2 infra3; do
		[ "$peer" != "$self" ] || continue
		[ "$who" = leader ] || [ "$peer" = "$LEADER" ] || continue
		at_least "$who: bytes sent to $peer" "$(value "$text" "etcd_network_peer_sent_bytes_total{To=\"${ID[$peer]}\"}")" 1
		at_least "$who: bytes received from $peer" \
			"$(value "$text" "etcd_network_peer_received_bytes_total{From=\"${ID[$peer]}\"}")" 1
	done
	[ -z "$(value "$text" "etcd_network_peer_sent_bytes_total{To=\"${ID[$self]}\"}")" ] ||
		fail "$who counts bytes sent to itself"
	at_least "$who: backend commits" "$(value "$text" etcd_disk_backend_commit_duration_seconds_count)" 1
	at_least "$who: WAL fsyncs" "$(value "$text" etcd_disk_wal_fsync_duration_seconds_count)" 1
	at_least "$who: committed index" "$(value "$text" etcd_server_proposals_committed_total)" \
		$((PUTS_LEADER + PUTS_FOLLOWER + 1))
	at_least "$who: applied index" "$(value "$text" etcd_server_proposals_applied_total)" \
		$((PUTS_LEADER + PUTS_FOLLOWER + 1))
	at_least "$who: db size" "$(value "$text" etcd_mvcc_db_total_size_in_bytes)" 1
	at_least "$who: db size in use" "$(value "$text" etcd_mvcc_db_total_size_in_use_in_bytes)" 1
	at_least "$who: revision" "$(value "$text" etcd_debugging_mvcc_current_revision)" $((PUTS_LEADER + PUTS_FOLLOWER + 2))
	assert_eq "$who: etcd_server_has_leader" 1 "$(value "$text" etcd_server_has_leader)"
	assert_eq "$who: etcd_server_id" 1 "$(value "$text" "etcd_server_id{server_id=\"${ID[$self]}\"}")"
	assert_eq "$who: etcd_server_is_learner" 0 "$(value "$text" etcd_server_is_learner)"
	at_least "$who: leader changes seen" "$(value "$text" etcd_server_leader_changes_seen_total)" 1
	# go-grpc-prometheus initialises every method with every code, so a series exists before its first call.
	assert_eq "$who: an uncalled method's series" 0 "$(value "$text" \
		'grpc_server_handled_total{grpc_code="DataLoss",grpc_method="Compact",grpc_service="etcdserverpb.KV",grpc_type="unary"}')"
done
assert_eq "etcd_server_is_leader of the leader" 1 "$(value "$leader_text" etcd_server_is_leader)"
assert_eq "etcd_server_is_leader of the follower" 0 "$(value "$follower_text" etcd_server_is_leader)"

put_ok='{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}'
put_started='{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}'
range_ok='{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"}'
at_least "leader: Put answered OK" "$(value "$leader_text" "grpc_server_handled_total$put_ok")" $((PUTS_LEADER + 1))
at_least "leader: Put started" "$(value "$leader_text" "grpc_server_started_total$put_started")" $((PUTS_LEADER + 1))
at_least "leader: Put requests received" "$(value "$leader_text" "grpc_server_msg_received_total$put_started")" \
	$((PUTS_LEADER + 1))
at_least "leader: Put responses sent" "$(value "$leader_text" "grpc_server_msg_sent_total$put_started")" \
	$((PUTS_LEADER + 1))
at_least "follower: Put answered OK" "$(value "$follower_text" "grpc_server_handled_total$put_ok")" "$PUTS_FOLLOWER"
at_least "follower: Range answered OK" "$(value "$follower_text" "grpc_server_handled_total$range_ok")" "$GETS_FOLLOWER"
assert_eq "follower: Watch streams started" 1 "$(value "$follower_text" "grpc_server_started_total$watch_series")"
at_least "follower: Watch requests received" "$(value "$follower_text" "grpc_server_msg_received_total$watch_series")" 1
at_least "follower: Watch responses sent (created, the event)" \
	"$(value "$follower_text" "grpc_server_msg_sent_total$watch_series")" 2
assert_eq "follower: the open Watch stream is not handled yet" 0 \
	"$(value "$follower_text" 'grpc_server_handled_total{grpc_code="OK",grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"}')"
snapshot_series='{grpc_method="Snapshot",grpc_service="etcdserverpb.Maintenance",grpc_type="server_stream"}'
assert_eq "follower: Snapshot streams started" 1 "$(value "$follower_text" "grpc_server_started_total$snapshot_series")"
assert_eq "follower: Snapshot streams answered OK" 1 "$(value "$follower_text" \
	'grpc_server_handled_total{grpc_code="OK",grpc_method="Snapshot",grpc_service="etcdserverpb.Maintenance",grpc_type="server_stream"}')"
at_least "follower: Snapshot messages sent" "$(value "$follower_text" "grpc_server_msg_sent_total$snapshot_series")" 1
assert_eq "follower: backend snapshots timed" 1 "$(value "$follower_text" etcd_disk_backend_snapshot_duration_seconds_count)"
at_least "follower: client gRPC bytes sent" "$(value "$follower_text" etcd_network_client_grpc_sent_bytes_total)" 1
at_least "follower: client gRPC bytes received" "$(value "$follower_text" etcd_network_client_grpc_received_bytes_total)" 1
for peer in infra1 infra2 infra3; do
	[ "$peer" != "$LEADER" ] || continue
	at_least "leader: round trips to $peer" \
		"$(value "$leader_text" "etcd_network_peer_round_trip_time_seconds_count{To=\"${ID[$peer]}\"}")" 1
	at_least "leader: round-trip buckets to $peer" \
		"$(value "$leader_text" "etcd_network_peer_round_trip_time_seconds_bucket{To=\"${ID[$peer]}\",le=\"+Inf\"}")" 1
done

# ---- a clean stop; no sanitizer report in any log ----
for n in infra1 infra2 infra3; do stop_member "$n"; done
assert_no_sanitizer_reports
log "PASS"
