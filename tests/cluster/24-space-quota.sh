#!/usr/bin/env bash
# issue 15 (and 18's NOSPACE): etcd's space quota, NOSPACE alarm and documented recovery (etcd's
# op-guide/maintenance.md "Space quota"), with etcdctl only, so the same script runs against real etcd:
# `tests/cluster/24-space-quota.sh /usr/bin/etcd /usr/bin/true` passes against etcd 3.4.23, which is where
# every expected text here was taken from.
#
# Three members with --quota-backend-bytes=16 MiB; s3 is stopped before the space runs out. 1 MiB puts through
# s1 until etcd's "database space exceeded"; then: `alarm list` names s1 (its member ID in decimal), every
# member's `endpoint status` lists the alarm in ERRORS and /health says false; reads, deletes, a txn without a
# put and a lease revoke work, while a lease grant and a txn with a put are refused. s3 restarted catches up
# (quorumd: by snapshot, --snapshot-count 5) and reports the alarm; s2 restarted still has it. Then the
# recovery, with the guide's commands: the revision from `endpoint status -w json`, `compact`, `defrag` of the
# three (each member's DB SIZE drops below a quarter of the quota), a put through s2 still refused (the alarm,
# not the size, now refuses it), `alarm disarm` prints the alarm, `alarm list` is empty, `put newkey 123`
# prints OK.
# Ports: 480x0.
source "$(dirname "$0")/lib.sh"
command -v etcdctl >/dev/null || fail "etcdctl (Debian's etcd-client) is needed"
all=(s1 s2 s3)
add_member s1 48010
add_member s2 48020
add_member s3 48030
ic=$(initial_cluster "${all[@]}")
quota=$((16 * 1024 * 1024))
is_etcd=false
case "$("$SERVER" --version 2>/dev/null)" in *"etcd Version: "*) is_etcd=true ;; esac
member_flags() {
	MEMBER_CMD+=(--quota-backend-bytes=$quota --snapshot-count 5)
	# A follower that missed the filling catches up by snapshot (etcd 3.4 keeps 5,000 entries, so it replays them).
	$is_etcd || MEMBER_CMD+=(--snapshot-catchup-entries 2)
}

wait_healthy() { local n; for n in "$@"; do wait_until "$n answers a linearizable read" 20 healthy "$n"; done; }
# status_json NAME: `endpoint status -w json` of NAME (empty when it does not answer).
status_json() { e "$1" endpoint status -w json 2>/dev/null || true; }
db_size() { status_json "$1" | sed -n 's/.*"dbSize":\([0-9]*\).*/\1/p'; }
health_body() { curl -s --max-time 3 "${CLIENT[$1]}/health"; }
reports_alarm() { status_json "$1" | grep -qF "\"$alarm\""; }

for n in "${all[@]}"; do start_member "$n" "$ic" new; done
wait_healthy "${all[@]}"
s1_id=$(decimal_id s1)
s2_id=$(decimal_id s2)
[ -n "$s1_id" ] && [ "$s1_id" != 0 ] && [ -n "$s2_id" ] || fail "no member IDs"
alarm="memberID:$s1_id alarm:NOSPACE "

# Before the space runs out: a key to delete later, a lease to revoke later.
ectl s1 put small v
assert_eq "put small" OK "$OUT"
ectl s1 lease grant 600
assert_captured_ok "lease grant"
lease=$(awk '{ print $2 }' <<<"$OUT")
stop_member s3

# etcd's fill loop, through s1: 1 MiB values until the quota refuses one.
puts=0
while [ $puts -lt 40 ]; do
	run_captured bash -c "dd if=/dev/urandom bs=1024 count=1024 2>/dev/null | etcdctl --endpoints=${CLIENT[s1]} --command-timeout=5s put key"
	[ "$RC" -eq 0 ] || break
	puts=$((puts + 1))
done
log "$puts puts of 1 MiB before the quota refused one"
assert_eq "exit code of the refused put" 1 "$RC"
assert_eq "stderr of the refused put (last line)" "Error: $nospace" "$(tail -n 1 <<<"$ERR")"
[ $puts -ge 8 ] && [ $puts -le 20 ] || fail "the quota of 16 MiB refused the put after $puts MiB"

ectl s1 put newkey 123
assert_eq "put newkey 123 (exit code)" 1 "$RC"
assert_eq "put newkey 123 (stderr)" "Error: $nospace" "$ERR"
# quorumd: s1 refused the put before proposing it and raised its alarm. etcd 3.4 also applies a put that
# crossed the quota while in flight (answering it "database space exceeded" though it was written), and each
# member that applied it raises an alarm of its own first, as each member whose own size refuses a later
# write does: which of s1 and s2 are listed depends on timing there.
# take_alarm_list NAME: `alarm list` through NAME, sorted, into LISTED; each line one of s1's or s2's alarms.
take_alarm_list() {
	ectl "$1" alarm list
	assert_captured_ok "alarm list through $1"
	LISTED=$(sort <<<"$OUT")
	[ -n "$LISTED" ] || fail "alarm list through $1 is empty"
	$is_etcd || assert_eq "alarm list through $1" "$alarm" "$LISTED"
	local line
	while IFS= read -r line; do
		assert_match "a line of alarm list" "memberID:($s1_id|$s2_id) alarm:NOSPACE " "$line"
	done <<<"$LISTED"
}
take_alarm_list s2
alarm=$(head -n 1 <<<"$LISTED")
for n in s1 s2; do
	wait_until "$n lists the alarm in endpoint status' errors" 5 reports_alarm "$n"
	assert_eq "/health of $n" '{"health":"false"}' "$(health_body "$n")"
done
ectl s1 endpoint status -w table
assert_contains "endpoint status -w table of s1" "$(cut -d' ' -f1 <<<"$alarm") |" "$OUT"
assert_contains "endpoint status -w table of s1" "alarm:NOSPACE  |" "$OUT"

# Under the alarm: reads, deletes, a txn without a put and a lease revoke go on; grants and txn puts do not.
run_captured bash -c "etcdctl --endpoints=${CLIENT[s2]} get key --print-value-only | wc -c"
assert_eq "bytes of key's value (and newline) read through s2" 1048577 "$OUT"
ectl s2 del small
assert_eq "del small" 1 "$OUT"
ectl s1 lease grant 100
assert_eq "lease grant (exit code)" 1 "$RC"
assert_eq "lease grant (stderr)" "Error: failed to grant lease ($nospace)" "$ERR"
run_captured bash -c "printf '\nput a b\n\n\n' | etcdctl --endpoints=${CLIENT[s1]} txn"
assert_eq "txn with a put (exit code; stderr: $ERR)" 1 "$RC"
assert_eq "txn with a put (stderr)" "Error: $nospace" "$(grep -v '^{"level"' <<<"$ERR")"
run_captured bash -c "printf '\ndel a\n\n\n' | etcdctl --endpoints=${CLIENT[s1]} txn"
assert_eq "txn with a delete" $'SUCCESS\n\n0' "$OUT"
if ! $is_etcd; then
	# quorumctl's put through the operator socket meets the same quota.
	expect_error s1 "Error: $nospace" put through/quorumctl v
fi
ectl s1 lease revoke "$lease"
assert_eq "lease revoke" "lease $lease revoked" "$OUT"

# s3 comes back: it catches up and knows the alarm.
take_alarm_list s1
listed=$LISTED
start_member s3 "$ic" new
wait_until "s3 lists the alarm in endpoint status' errors" 30 reports_alarm s3
if ! $is_etcd; then
	log_has s3 '"msg":"applied snapshot"' || fail "s3 caught up without installing a snapshot"
fi
ectl s3 alarm list
assert_eq "alarm list through s3" "$listed" "$(sort <<<"$OUT")"

# s2 restarted keeps the alarm.
stop_member s2
start_member s2 "$ic" new
wait_healthy s2
assert_eq "/health of s2 after its restart" '{"health":"false"}' "$(health_body s2)"
reports_alarm s2 || fail "s2 lost the alarm over its restart: $(status_json s2)"
ectl s2 alarm list
assert_eq "alarm list through s2 after its restart" "$listed" "$(sort <<<"$OUT")"

# etcd's recovery sequence.
rev=$(status_json s1 | grep -Eo '"revision":[0-9]*' | grep -Eo '[0-9].*')
[ -n "$rev" ] || fail "no revision in endpoint status"
# `compact`, as the guide spells it (etcdctl's prefix for `compaction`).
ectl s1 compact "$rev"
assert_eq "compact" "compacted revision $rev" "$OUT"
declare -A before=()
for n in "${all[@]}"; do before[$n]=$(db_size "$n"); done
run_captured etcdctl --endpoints="$(endpoints "${all[@]}")" --command-timeout=30s defrag
assert_captured_ok "defrag"
expected=""
for n in "${all[@]}"; do expected+="${expected:+$'\n'}Finished defragmenting etcd member[${CLIENT[$n]}]"; done
assert_eq "defrag" "$expected" "$OUT"
for n in "${all[@]}"; do
	after=$(db_size "$n")
	log "$n: DB SIZE ${before[$n]} -> $after bytes"
	[ -n "$after" ] && [ "$after" -lt $((quota / 4)) ] && [ "$after" -lt "${before[$n]}" ] ||
		fail "defrag left $n at '$after' bytes (before: ${before[$n]})"
done
# Below the quota everywhere now, but the alarm still refuses writes on every member.
ectl s2 put newkey 123
assert_eq "put through s2 before the disarm (stderr)" "Error: $nospace" "$ERR"
ectl s1 alarm disarm
assert_captured_ok "alarm disarm"
assert_eq "alarm disarm" "$listed" "$(sort <<<"$OUT")"
ectl s2 alarm list
assert_captured_ok "alarm list after the disarm"
assert_eq "alarm list after the disarm" "" "$OUT"
ectl s1 put newkey 123
assert_eq "put newkey 123 after the recovery" OK "$OUT"
ectl s2 put newkey 456
assert_eq "put through s2 after the recovery" OK "$OUT"
health_true() { [ "$(health_body "$1")" = '{"health":"true"}' ]; }
for n in "${all[@]}"; do wait_until "$n healthy again" 5 health_true "$n"; done
if ! $is_etcd; then
	log_has s1 '"msg":"alarm raised","alarm":"NOSPACE"' || fail "s1 logged no 'alarm raised'"
	log_has s1 '"msg":"alarm disarmed","alarm":"NOSPACE"' || fail "s1 logged no 'alarm disarmed'"
	log_has s1 '"msg":"enabled backend quota","quota-name":"v3-applier","quota-size-bytes":16777216' ||
		fail "s1 logged no 'enabled backend quota'"
fi
