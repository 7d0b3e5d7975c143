#!/usr/bin/env bash
# Rule 7: quorum lost (two of three killed with SIGKILL). On the survivor `member add` (voter or learner)
# fails at once (within 2 s) with `Error: etcdserver: unhealthy cluster`, right after the kill and again once
# the survivor noticed; `member list` still shows the three members; `put` fails within the command timeout
# (`Error: context deadline exceeded`); `endpoint status` reports `etcdserver: no leader` in ERRORS. With a
# second member back, writes work again and the refused adds never took effect (nothing was proposed).
# Run twice: the survivor a follower (ports 407x0), then the survivor the old leader (ports 417x0).
source "$(dirname "$0")/lib.sh"

# add_refused_at_once NAME NEW_NAME PORT [--learner]
add_refused_at_once() {
	local n=$1 new=$2 port=$3 t0 ms
	shift 3
	t0=$(date +%s%N)
	expect_error "$n" "Error: etcdserver: unhealthy cluster" member add "$new" --peer-urls="http://127.0.0.1:$port" "$@"
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$ms" -le 2000 ] || fail "member add on $n took $ms ms to fail (expected at most 2000 ms)"
}

# scenario ROLE PREFIX PORT_BASE: ROLE of the survivor before the kill (follower or leader).
scenario() {
	local role=$1 p=$2 base=$3 n survivor="" dead=() list_before t0 ms back
	add_member "${p}1" $((base + 10))
	add_member "${p}2" $((base + 20))
	add_member "${p}3" $((base + 30))
	local members=("${p}1" "${p}2" "${p}3")
	start_new_cluster "${members[@]}"
	wait_ready 10 "${members[@]}"
	for n in "${members[@]}"; do
		local is_leader=no
		[ "$n" != "$LEADER" ] || is_leader=yes
		if [ -z "$survivor" ] && { [ "$role/$is_leader" = leader/yes ] || [ "$role/$is_leader" = follower/no ]; }; then
			survivor=$n
		else
			dead+=("$n")
		fi
	done
	put_get "$survivor" before v
	ctl_ok "$survivor" member list
	list_before=$OUT

	kill9 "${dead[0]}"
	kill9 "${dead[1]}"
	log "$role survivor: killed ${dead[*]} (the leader was $LEADER); $survivor survives"

	add_refused_at_once "$survivor" "${p}4" $((base + 40))
	add_refused_at_once "$survivor" "${p}4l" $((base + 50)) --learner
	ctl_ok "$survivor" member list
	assert_eq "member list on the survivor" "$list_before" "$OUT"

	t0=$(date +%s%N)
	ctl "$survivor" --command-timeout=3s put during outage
	ms=$((($(date +%s%N) - t0) / 1000000))
	log "put during the outage: exit $RC after $ms ms: $OUT $ERR"
	assert_eq "exit code of put without quorum (stderr: $ERR)" 1 "$RC"
	[ "$ms" -le 4500 ] || fail "put without quorum took $ms ms (command timeout 3 s)"
	assert_eq "stdout of put without quorum" "" "$OUT"
	assert_eq "stderr of put without quorum" "Error: context deadline exceeded" "$ERR"

	no_leader() { [ "$(status_field "$1" 10)" = "etcdserver: no leader" ] && [ "$(status_field "$1" 5)" = false ]; }
	wait_until "endpoint status of $survivor shows 'etcdserver: no leader' in ERRORS" 10 no_leader "$survivor"
	add_refused_at_once "$survivor" "${p}4" $((base + 40))
	ctl_ok "$survivor" member list
	assert_eq "member list on the survivor" "$list_before" "$OUT"

	# Quorum back: the cluster serves again (etcd makes no promise about the put that timed out).
	back=${dead[0]}
	start_member "$back" "$(initial_cluster "${members[@]}")" new
	wait_leader 15 "$survivor" "$back"
	put_get "$survivor" after v
	put_get "$back" after2 v
	for n in "$survivor" "$back"; do
		ctl_ok "$n" member list
		assert_eq "member list on $n after the outage (the refused adds never took effect)" "$list_before" "$OUT"
	done
	for n in "${members[@]}"; do kill9 "$n"; done
}

scenario follower m 40700
scenario leader l 41700
