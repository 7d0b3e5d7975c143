#!/usr/bin/env bash
# A lease across leader changes: a lease (TTL 5 s) with three keys, kept alive by `etcdctl lease keep-alive` in
# the background through a follower (which forwards the renewals to the leader). The leadership is moved
# away (to the other follower), then that leader is stopped (an election) and restarted: after each, two TTLs
# later the keys are still on every member and the keep-alive still gets TTL(5) answers. Then the keep-alive
# stops: the keys are gone from every member within the TTL plus 3 s, and the lease is expired.
# Ports: 255x0 (client 255x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 25510
add_member infra2 25520
add_member infra3 25530
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ALL=(infra1 infra2 infra3)
L0=$LEADER
others=()
for n in "${ALL[@]}"; do [ "$n" = "$L0" ] || others+=("$n"); done
F=${others[0]} # the keep-alive's endpoint, a follower throughout
O=${others[1]} # the next leader
TTL=5

ctl_ok --endpoints="${CLIENT[$F]}" lease grant "$TTL"
LEASE=$(lease_id "$OUT")
assert_eq "lease grant $TTL through $F" "lease $LEASE granted with TTL(${TTL}s)" "$OUT"
for k in 1 2 3; do expect_out OK --endpoints="${CLIENT[$F]}" put --lease="$LEASE" "/lk/$k" "v$k"; done
KEYS=$'/lk/1\n/lk/2\n/lk/3'
ctl_bg keepalive.out --endpoints="${CLIENT[$F]}" lease keep-alive "$LEASE"
KA_PID=$BG_PID
log "lease $LEASE kept alive through $F; leader $L0"

keepalives() { grep -c "^lease $LEASE keepalived with TTL($TTL)\$" "$TMP/keepalive.out" || true; }
# keys_on NAMES...: the three keys are on each named member (serializable reads: each member's own state).
keys_on() {
	local n
	for n in "$@"; do
		ctl_ok --endpoints="${CLIENT[$n]}" get --prefix /lk/ --keys-only --consistency=s
		assert_eq "keys of lease $LEASE on $n" "$KEYS" "$(sed '/^$/d' <<<"$OUT")"
	done
}
# survives WHAT NAMES...: two TTLs from now the keys are on every named member and the keep-alive is still
# being answered with the full TTL; the lease's remaining TTL is within (0, TTL].
survives() {
	local what=$1 before after
	shift
	before=$(keepalives)
	sleep $((2 * TTL))
	pid_alive "$KA_PID" ||
		fail "the keep-alive ended $what: $(tail -n 2 "$TMP/keepalive.out" | tr '\n' ' ')$(tail -c 300 "$TMP/keepalive.out.err")"
	keys_on "$@"
	after=$(keepalives)
	[ "$after" -ge $((before + 3)) ] ||
		fail "the keep-alive got $((after - before)) answers in $((2 * TTL)) s $what: $(tail -n 3 "$TMP/keepalive.out") $(cat "$TMP/keepalive.out.err")"
	assert_eq "keep-alive output $what: only TTL($TTL) answers" "" \
		"$(grep -v "^lease $LEASE keepalived with TTL($TTL)\$" "$TMP/keepalive.out" || true)"
	ctl_ok --endpoints="$(endpoints "$@")" lease timetolive "$LEASE" --keys
	assert_match "lease timetolive $what" \
		"lease $LEASE granted with TTL\(${TTL}s\), remaining\([1-$TTL]s\), attached keys\(\[[/lk0-9 ]*\]\)" "$OUT"
	# (the attached keys come in no particular order: etcd keeps them in a map)
	assert_eq "keys attached to lease $LEASE $what" "$KEYS" \
		"$(sed 's/.*attached keys(\[\(.*\)\])$/\1/' <<<"$OUT" | tr ' ' '\n' | sort)"
	log "lease survives $what ($((after - before)) keep-alives in $((2 * TTL)) s)"
}

answered() { [ "$(keepalives)" -ge 1 ]; }
wait_until "the first keep-alive answer" 5 answered
keys_on "${ALL[@]}"

# ---- the leadership moves away from L0 to the other follower ----
ctl_ok --endpoints="$(endpoints "${ALL[@]}")" move-leader "$(member_id "$O")"
is_leader() { [ "$(leader_among "${@:2}")" = "$1" ]; }
wait_until "$O leads" 10 is_leader "$O" "${ALL[@]}"
survives "the move of the leadership from $L0 to $O" "${ALL[@]}"

# ---- the leader stops: an election among the two others ----
stop_member "$O"
wait_until "a leader among $L0 $F" 20 has_leader "$L0" "$F"
survives "the stop of the leader $O ($(leader_among "$L0" "$F") elected)" "$L0" "$F"
start_member "$O" "$(initial_cluster "${ALL[@]}")" new
wait_until "endpoint health of all three after $O's restart" 20 all_healthy "${ALL[@]}"
keys_on "${ALL[@]}"

# ---- the keep-alive stops: the lease expires, its keys go from every member ----
stop_pids 10 "$KA_PID"
stopped=$SECONDS
gone_everywhere() {
	local n
	for n in "${ALL[@]}"; do
		[ -z "$("$ETCDCTL" --endpoints="${CLIENT[$n]}" get --prefix /lk/ --keys-only --consistency=s)" ] || return 1
	done
}
wait_until "the keys of lease $LEASE gone from every member" $((TTL + 3)) gone_everywhere
log "keys gone from every member $((SECONDS - stopped)) s after the keep-alive stopped"
for n in "${ALL[@]}"; do
	expect_out "lease $LEASE already expired" --endpoints="${CLIENT[$n]}" lease timetolive "$LEASE"
	expect_out "" --endpoints="${CLIENT[$n]}" get --prefix /lk/
done
expect_out "found 0 leases" --endpoints="${CLIENT[$F]}" lease list

# ---- a clean stop; no sanitizer report in any log ----
for n in "${ALL[@]}"; do stop_member "$n"; done
assert_no_sanitizer_reports
