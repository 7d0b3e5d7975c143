#!/usr/bin/env bash
# A watch across leader changes: `etcdctl watch --prefix /w -w json` in the background on a follower while
# keys are written one after the other through every member in turn; in the middle the leadership is moved
# twice (to the watched member, then away from it), then the leader is stopped (a new one is elected) and
# restarted. The watch must print every put exactly once, in revision order, with the written values; a watch
# started afterwards from the first revision (on the restarted member) must replay the same events. Then reads
# right after writes: a linearizable get on a follower always sees the write just acknowledged (ReadIndex); a
# serializable one sees it or the value before it, and catches up. The watched member's
# etcd_server_leader_changes_seen_total counts the three changes.
# Ports: 254x0 (client 254x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 25410
add_member infra2 25420
add_member infra3 25430
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ALL=(infra1 infra2 infra3)
declare -A ID=()
for n in "${ALL[@]}"; do ID[$n]=$(member_id "$n"); done

# The watched member W is a follower; the other follower is O.
L0=$LEADER
others=()
for n in "${ALL[@]}"; do [ "$n" = "$L0" ] || others+=("$n"); done
W=${others[0]}
O=${others[1]}
log "leader $L0, watching through $W"

# etcd_server_leader_changes_seen_total of W (its /metrics on the client URL): +1 for each move, +1 for the
# election after the stop.
leader_changes() {
	curl -sS --max-time 5 "${CLIENT[$W]}/metrics" | awk '$1 == "etcd_server_leader_changes_seen_total" { print $2 }'
}
CHANGES0=$(leader_changes)
[[ "$CHANGES0" =~ ^[0-9]+$ ]] || fail "etcd_server_leader_changes_seen_total of $W: '$CHANGES0'"

ctl_bg watch.json --endpoints="${CLIENT[$W]}" watch --prefix /w -w json
WATCH_PID=$BG_PID

# parse_events FILE: one line per event of etcdctl's `watch -w json` output: TYPE MOD_REVISION KEY VALUE
# (a line of the file may be partial while etcdctl writes it; only whole lines are parsed).
parse_events() {
	"$PYTHON" - "$1" <<'EOF'
import base64, json, sys
for line in open(sys.argv[1]).read().split("\n")[:-1]:
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    for e in r.get("Events") or []:
        kv = e["kv"]
        print(e.get("type", 0), kv["mod_revision"], base64.b64decode(kv["key"]).decode(),
              base64.b64decode(kv.get("value", "")).decode())
EOF
}
event_count() { parse_events "$TMP/$1" | wc -l; }
has_events() { [ "$(event_count "$1")" -ge "$2" ]; }

WRITTEN=()    # "KEY VALUE" in the order written
RUNNING=("${ALL[@]}")
turn=0
# write COUNT: COUNT puts, each through the next running member in turn; every one must succeed.
write() {
	local i k v n
	for ((i = 0; i < $1; i++)); do
		k=$(printf '/w/%05d' "${#WRITTEN[@]}")
		v="v${#WRITTEN[@]}-$RANDOM"
		n=${RUNNING[$((turn++ % ${#RUNNING[@]}))]}
		expect_out OK --endpoints="${CLIENT[$n]}" put "$k" "$v"
		WRITTEN+=("$k $v")
	done
}
# move_leader TARGET: moves the leadership (etcdctl asks the members which one leads) and waits until
# TARGET reports itself leader.
move_leader() {
	local from
	from=$(leader_among "${RUNNING[@]}")
	ctl_ok --endpoints="$(endpoints "${RUNNING[@]}")" move-leader "${ID[$1]}"
	assert_eq "move-leader output" "Leadership transferred from ${ID[$from]} to ${ID[$1]}" "$OUT"
	is_leader() { [ "$(leader_among "${RUNNING[@]}")" = "$1" ]; }
	wait_until "$1 leads" 10 is_leader "$1"
	log "leader moved from $from to $1"
}

# The watch is in place once it shows one of repeated puts of /w-ready (as in 04-watch); those events are
# left out of the comparisons below but not out of the revision order.
shows_ready() {
	expect_out OK --endpoints="${CLIENT[$L0]}" put /w-ready x
	sleep 0.2
	has_events watch.json 1
}
wait_until "the watch on $W is created" 10 shows_ready
write 11
move_leader "$W"   # the watched member leads
write 10
move_leader "$O"   # and no longer
write 10
# The leader stops: the two others elect one of them; the writes go on through them.
stop_member "$O"
RUNNING=("$L0" "$W")
wait_until "a new leader among $L0 $W" 20 has_leader "$L0" "$W"
log "$O stopped; $(leader_among "$L0" "$W") leads"
write 10
# It comes back and catches up.
start_member "$O" "$(initial_cluster "${ALL[@]}")" new
RUNNING=("${ALL[@]}")
wait_until "endpoint health of all three after $O's restart" 20 all_healthy "${ALL[@]}"
write 10
N=${#WRITTEN[@]}
log "$N keys written"
changes=$(leader_changes)
[ "$changes" -ge $((CHANGES0 + 3)) ] ||
	fail "etcd_server_leader_changes_seen_total of $W went from $CHANGES0 to $changes over two moves and an election"


# ---- the watch saw every put exactly once, in revision order ----
check_events() {
	local file=$1 what=$2 events
	has_put_events() { [ "$(grep -o '"mod_revision"' "$TMP/$1" | wc -l)" -ge "$2" ]; }
	wait_until "$what: $N events" 20 has_put_events "$file" "$N"
	events=$(parse_events "$TMP/$file")
	awk 'NR > 1 && $2 <= prev { bad = 1; print "revision " $2 " after " prev } { prev = $2 } END { exit bad }' \
		<<<"$events" >&2 || fail "$what: revisions not strictly increasing"
	events=$(grep -v ' /w-ready ' <<<"$events")
	assert_eq "$what: event count" "$N" "$(wc -l <<<"$events")"
	assert_eq "$what: every event a PUT" "" "$(awk '$1 != 0' <<<"$events")"
	assert_eq "$what: keys and values in the order written" "$(printf '%s\n' "${WRITTEN[@]}")" \
		"$(awk '{ print $3, $4 }' <<<"$events")"
	log "$what: $N events, each once, in order"
}
check_events watch.json "watch on $W through the leader changes"
running "$W" && pid_alive "$WATCH_PID" || fail "the watch (or $W) ended: $(cat "$TMP/watch.json.err")"
LIVE=$(parse_events "$TMP/watch.json" | grep -v ' /w-ready ')
first_rev=$(awk 'NR == 1 { print $2 }' <<<"$LIVE")

# ---- a watch from the first revision, started afterwards on the restarted member, replays the same events ----
ctl_bg replay.json --endpoints="${CLIENT[$O]}" watch --prefix /w --rev="$first_rev" -w json
check_events replay.json "watch from revision $first_rev on $O"
assert_eq "the replay from revision $first_rev equals the live watch" "$LIVE" "$(parse_events "$TMP/replay.json")"
# One put more reaches both.
write 1
N=${#WRITTEN[@]}
check_events watch.json "watch on $W after the replay"
check_events replay.json "replay watch on $O, live"

# ---- reads right after a write, on a follower ----
L=$(leader_among "${ALL[@]}")
F=$W
[ "$F" != "$L" ] || F=$O
stale=0
prev=""
for i in $(seq 1 8); do
	v="lin-$i-$RANDOM"
	# the write through the leader or through the other follower, alternately
	if ((i % 2)); then via=$L; else via=$( [ "$F" = "$W" ] && echo "$O" || echo "$W"); fi
	expect_out OK --endpoints="${CLIENT[$via]}" put /lin "$v"
	ctl_ok --endpoints="${CLIENT[$F]}" get /lin --print-value-only --consistency=s
	case "$OUT" in
	"$v") ;;
	"$prev") stale=$((stale + 1)) ;;
	*) fail "serializable get on $F right after put /lin $v: '$OUT' (neither it nor the value before, '$prev')" ;;
	esac
	expect_out "$v" --endpoints="${CLIENT[$F]}" get /lin --print-value-only
	prev=$v
done
log "serializable reads on $F right after a write: $stale of 8 stale; linearizable: none"
sees_last() { [ "$("$ETCDCTL" --endpoints="${CLIENT[$F]}" get /lin --print-value-only --consistency=s)" = "$prev" ]; }
wait_until "the serializable read on $F catches up" 5 sees_last

# ---- a clean stop; no sanitizer report in any log ----
for n in "${ALL[@]}"; do stop_member "$n"; done
assert_no_sanitizer_reports
