#!/usr/bin/env bash
# A keep-alive must never be answered "expired" (TTL 0) by a member that has just become leader. Followers'
# lease clocks are never renewed (renewals are the leader's), so a follower's expiry times are long past;
# a new leader must give every lease its full TTL (etcd's Promote) before it serves any renewal — a renewal
# served in the gap saw the stale expiry (a bug found here: control/node/node_leases.c sync_leadership).
# Here: 30 leases (TTL 5 s) kept alive through follower F; 4 times the leadership moves to F for 1 s, then
# away for 6 s (so that F's clocks are stale again when it next leads).
# Ports: 258x0 (client 258x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 25810
add_member infra2 25820
add_member infra3 25830
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ALL=(infra1 infra2 infra3)
L=$LEADER
for n in "${ALL[@]}"; do [ "$n" = "$L" ] || F=$n; done
IDL=$(member_id "$L")
IDF=$(member_id "$F")
LEASES=()
for i in $(seq 0 29); do
	ctl_ok --endpoints="${CLIENT[$F]}" lease grant 5
	LEASES+=("$(lease_id "$OUT")")
	ctl_bg "ka$i" --endpoints="${CLIENT[$F]}" lease keep-alive "${LEASES[$i]}"
	expect_out OK --endpoints="${CLIENT[$F]}" put --lease="${LEASES[$i]}" "/pw/$i" v
done
sleep 6 # past the TTL: F's own clocks of these leases are now stale
kas() { ls "$TMP"/ka[0-9] "$TMP"/ka[0-9][0-9]; }
# (every keep-alive is working before the first move)
for f in $(kas); do grep -q 'keepalived with TTL(5)' "$f" || fail "$(basename "$f") never renewed: $(cat "$f" "$f.err")"; done
[ -z "$(grep -l 'expired or revoked' $(kas))" ] || fail "a keep-alive ended before the first move"

E=--endpoints=$(endpoints "${ALL[@]}")
leads() { [ "$(leader_among "${ALL[@]}")" = "$1" ]; }
for round in 1 2 3 4; do
	ctl_ok "$E" move-leader "$IDF"
	wait_until "$F leads" 10 leads "$F"
	sleep 1
	ctl_ok "$E" move-leader "$IDL"
	wait_until "$L leads" 10 leads "$L"
	sleep 6
	bad=$(grep -l 'expired or revoked' $(kas) || true)
	[ -z "$bad" ] || break
done
if [ -n "$bad" ]; then
	ctl_ok --endpoints="${CLIENT[$L]}" lease timetolive "$(sed -n 's/^lease \([0-9a-f]*\) expired or revoked.*/\1/p' $bad | head -n 1)"
	fail "round $round: keep-alives renewed every ~1.7 s were told 'expired or revoked' (TTL 0) when $F became leader: $(cat $bad | grep expired | tr '\n' ' ')(now, unrenewed since: $OUT)"
fi
for i in $(seq 0 29); do expect_out "/pw/$i" --endpoints="${CLIENT[$L]}" get "/pw/$i" --keys-only; done
