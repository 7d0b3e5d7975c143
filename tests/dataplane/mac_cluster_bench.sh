#!/usr/bin/env bash
# tests/dataplane/mac_cluster_bench.sh PATH/quorumd PATH/quorumctl [SECONDS] [VALUE_BYTES] [ROUNDS]: what the
# peer frames' MAC costs a cluster. Not a test: starts three members on loopback (--dataplane=udp), once
# with a shared --peer-frame-key-file and once without, ROUNDS times alternating (default 2), and prints
# bench/dataplane_load.py's writes/s and p50/p99 commit latency through the leader, 1 and 64 puts in
# flight, for each. Uses tests/cluster/lib.sh (its cleanup stops the members and removes the temp dir).
SECONDS_PER_RUN=${3:-5}
VALUE_BYTES=${4:-1024}
ROUNDS=${5:-2}
source "$(dirname "$(realpath "$0")")/../cluster/lib.sh"
LOAD=$(dirname "$(realpath "$0")")/../../bench/dataplane_load.py
head -c 32 /dev/urandom >"$TMP/peer.key"

run() { # run LABEL PREFIX [quorumd flags...]
	local label=$1 p=$2 n
	shift 2
	add_member "${p}1" 23801
	add_member "${p}2" 23802
	add_member "${p}3" 23803
	local ic
	ic=$(initial_cluster "${p}1" "${p}2" "${p}3")
	for n in 1 2 3; do start_member "$p$n" "$ic" new "$@"; done
	wait_ready 60 "${p}1" "${p}2" "${p}3"
	python3 "$LOAD" "$(sock "$LEADER")" 2 64 "$VALUE_BYTES" >/dev/null # warm-up
	echo "$label, 1 in flight:  $(python3 "$LOAD" "$(sock "$LEADER")" "$SECONDS_PER_RUN" 1 "$VALUE_BYTES")"
	echo "$label, 64 in flight: $(python3 "$LOAD" "$(sock "$LEADER")" "$SECONDS_PER_RUN" 64 "$VALUE_BYTES")"
	for n in 1 2 3; do stop_member "$p$n"; done
}

for ((r = 1; r <= ROUNDS; r++)); do
	run "no key  " "n$r"
	run "with key" "k$r" --peer-frame-key-file "$TMP/peer.key"
done
