#!/usr/bin/env bash
# Rule 2: `member update ID --peer-urls=NEW` prints `Member ID updated in cluster CID`; every member lists the
# new peer URL; the member is restarted listening on the new URL and catches up; the cluster stays writable
# throughout (before the update, between the update and the restart, after the restart). Ports: 402x0.
source "$(dirname "$0")/lib.sh"

add_member m1 40210
add_member m2 40220
add_member m3 40230
ic=$(initial_cluster m1 m2 m3)
start_new_cluster m1 m2 m3
wait_ready 10 m1 m2 m3
cluster_hex=$(cluster_id m1)
id2=$(member_id m2)
put_get "$LEADER" k0 before-update

new_url=http://127.0.0.1:40250
ctl_ok m1 member update "$id2" --peer-urls="$new_url"
assert_eq "output of member update" "Member $(pad16 "$id2") updated in cluster $(pad16 "$cluster_hex")" "$OUT"
lists_new_url() {
	ctl "$1" member list && [ "$RC" -eq 0 ] &&
		grep -qxF "$id2, started, m2, $new_url, http://127.0.0.1:40219, false" <<<"$OUT"
}
for n in m1 m2 m3; do wait_until "$n lists m2 with $new_url" 5 lists_new_url "$n"; done
ctl_ok m3 member list -w table
assert_contains "table row of m2 on m3" "| $(printf '%16s' "$id2") | started |   m2 | $new_url | http://127.0.0.1:40219 |      false |" "$OUT"

# Between the update and the restart: m1 and m3 keep serving.
wait_leader 10 m1 m3
put_get m1 k1 between
put_get m3 k2 between

# Restart m2 listening on the new URL.
log "restarting m2 on $new_url"
stop_member m2
PEER[m2]=$new_url
start_member m2 "$ic" new
wait_leader 15 m1 m2 m3
log "m2 restarted; leader $LEADER"
put_get m2 k3 after-restart
wait_until "m2 applied what the leader has" 10 applied_converged m1 m2 m3
for k in k0:before-update k1:between k2:between k3:after-restart; do
	for n in m1 m2 m3; do
		ctl_ok "$n" get "${k%%:*}" --consistency=s
		assert_eq "serializable get ${k%%:*} on $n" "${k%%:*}"$'\n'"${k#*:}" "$OUT"
	done
done
for n in m1 m2 m3; do
	lists_new_url "$n" || fail "$n does not list m2 with $new_url after the restart: $OUT"
	put_get "$n" "end-$n" v
done
