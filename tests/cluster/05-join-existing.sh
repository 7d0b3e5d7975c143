#!/usr/bin/env bash
# Rule 5: two-phase join. `member add m4 --peer-urls=http://localhost:40540` (the seed's case: the cluster
# knows m4 by a host name); m4 started with a wrong --initial-cluster (m4=http://127.0.0.1:40540, the address
# localhost resolves to) and --initial-cluster-state existing refuses with `unmatched member while checking
# PeerURLs` naming both URLs and exits 1; a --initial-cluster with a member missing refuses with `member count
# is unequal`; started with the variables that `member add` printed (as ETCD_* environment variables) it
# catches up (data written before it joined is there), shows `started`, and serves. Ports: 405x0.
source "$(dirname "$0")/lib.sh"

add_member m1 40510
add_member m2 40520
add_member m3 40530
add_member m4 40540
start_new_cluster m1 m2 m3
wait_ready 10 m1 m2 m3
for i in 1 2 3 4 5; do put_get "m$(((i % 3) + 1))" "pre/$i" "v$i"; done

m4_url=http://localhost:40540
ctl_ok m2 member add m4 --peer-urls="$m4_url"
m4_id=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$OUT")
[ -n "$m4_id" ] || fail "no member ID in the output of member add: $OUT"
var() { sed -n "s/^$1=\"\(.*\)\"$/\1/p" <<<"$add_output"; }
add_output=$OUT
assert_eq "ETCD_NAME" m4 "$(var ETCD_NAME)"
assert_eq "ETCD_INITIAL_ADVERTISE_PEER_URLS" "$m4_url" "$(var ETCD_INITIAL_ADVERTISE_PEER_URLS)"
assert_eq "ETCD_INITIAL_CLUSTER_STATE" existing "$(var ETCD_INITIAL_CLUSTER_STATE)"
assert_eq "ETCD_INITIAL_CLUSTER (sorted)" \
	"$(printf '%s\n' "m1=${PEER[m1]}" "m2=${PEER[m2]}" "m3=${PEER[m3]}" "m4=$m4_url" | sort)" \
	"$(var ETCD_INITIAL_CLUSTER | tr ',' '\n' | sort)"

# run_refused LABEL INITIAL_CLUSTER: m4 with that --initial-cluster must exit 1; sets JOIN_LOG.
run_refused() {
	local label=$1 ic=$2
	: >"$TMP/m4.log"
	start_raw m4 "$QUORUMD" --name m4 --data-dir "$TMP/m4" --listen-peer-urls "$m4_url" \
		--initial-advertise-peer-urls "$m4_url" --advertise-client-urls "${CLIENT[m4]}" \
		--initial-cluster-token "$TOKEN" --initial-cluster "$ic" --initial-cluster-state existing
	wait_exit m4 20
	JOIN_LOG=$(cat "$TMP/m4.log")
	assert_eq "exit code of m4 started with $label (log: $JOIN_LOG)" 1 "$EXIT_CODE"
}

run_refused "a wrong --initial-cluster" \
	"m1=${PEER[m1]},m2=${PEER[m2]},m3=${PEER[m3]},m4=http://127.0.0.1:40540"
assert_contains "m4's refusal" 'unmatched member while checking PeerURLs' "$JOIN_LOG"
assert_contains "m4's refusal names the cluster's URL" '"http://localhost:40540"' "$JOIN_LOG"
assert_contains "m4's refusal names the flag's URL" '"http://127.0.0.1:40540"' "$JOIN_LOG"
assert_contains "m4's refusal, seed wording" \
	'unmatched member while checking PeerURLs ("http://localhost:40540"(resolved from "http://localhost:40540") != "http://127.0.0.1:40540"(resolved from "http://127.0.0.1:40540"))' \
	"$JOIN_LOG"

run_refused "a member missing from --initial-cluster" "m1=${PEER[m1]},m2=${PEER[m2]},m4=$m4_url"
assert_contains "m4's refusal" 'member count is unequal' "$JOIN_LOG"

for n in m1 m2 m3; do
	ctl_ok "$n" member list
	assert_contains "m4 still unstarted on $n" "$m4_id, unstarted, , $m4_url, , false" "$OUT"
done
put_get m1 pre/6 v6

# With the printed variables.
rm -rf "${TMP:?}/m4"
mkdir -p "$TMP/m4"
start_raw m4 env ETCD_NAME="$(var ETCD_NAME)" ETCD_INITIAL_CLUSTER="$(var ETCD_INITIAL_CLUSTER)" \
	ETCD_INITIAL_ADVERTISE_PEER_URLS="$(var ETCD_INITIAL_ADVERTISE_PEER_URLS)" \
	ETCD_INITIAL_CLUSTER_STATE="$(var ETCD_INITIAL_CLUSTER_STATE)" \
	"$QUORUMD" --data-dir "$TMP/m4" --listen-peer-urls "$m4_url" --advertise-client-urls "${CLIENT[m4]}" \
	--initial-cluster-token "$TOKEN"
m4_started() {
	local n
	for n in m1 m2 m3 m4; do
		ctl "$n" member list && [ "$RC" -eq 0 ] &&
			grep -qxF "$m4_id, started, m4, $m4_url, ${CLIENT[m4]}, false" <<<"$OUT" || return 1
	done
}
wait_until "every member lists m4 started" 20 m4_started
wait_leader 10 m1 m2 m3 m4
wait_until "m4 applied the leader's last index" 15 applied_converged m1 m2 m3 m4
assert_eq "m4's ID in endpoint status" "$m4_id" "$(member_id m4)"
for i in 1 2 3 4 5 6; do
	ctl_ok m4 get "pre/$i" --consistency=s
	assert_eq "serializable get pre/$i on m4" "pre/$i"$'\n'"v$i" "$OUT"
done
put_get m4 post/1 through-m4
ctl_ok m1 member list
assert_eq "number of members" 4 "$(wc -l <<<"$OUT")"
