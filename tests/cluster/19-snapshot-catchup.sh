#!/usr/bin/env bash
# issue 15: a follower that missed more than the log keeps catches up by snapshot, over a clean network and
# with 5% of its incoming peer frames lost. Three members with --snapshot-count 500
# --snapshot-catchup-entries 100; a follower stopped during 15,000 puts is restarted: the leader logs "sent
# database snapshot", the follower "received and saved database snapshot" and "applied snapshot", and all
# three converge with the same `etcdctl endpoint hashkv`. Then again with the follower losing 5% of the
# frames it receives (the test fault layer): the transfer resends chunks and still completes. The cluster
# keeps committing while a snapshot is sent. Ports: 473x0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snapshot_helpers.sh"
all=(s1 s2 s3)
add_member s1 47310
add_member s2 47320
add_member s3 47330
ic=$(initial_cluster "${all[@]}")
member_flags() { MEMBER_CMD+=(--snapshot-count 500 --snapshot-catchup-entries 100); }
start_new_cluster "${all[@]}"
wait_ready 15 "${all[@]}"
follower=""
for n in "${all[@]}"; do [ "$n" = "$LEADER" ] || follower=$n; done
others=()
for n in "${all[@]}"; do [ "$n" = "$follower" ] || others+=("$n"); done

# sent_total: "sent database snapshot" lines over the members that stayed up.
sent_total() { local t=0 n; for n in "${others[@]}"; do t=$((t + $(count_lines "$n" "sent database snapshot"))); done; echo $t; }

catch_up_round() {
	local faults=$1 round=$2
	stop_member "$follower"
	bench_puts 15000 "${others[@]}"
	local sent_before applied_before
	sent_before=$(sent_total)
	applied_before=$(count_lines "$follower" "applied snapshot")
	if [ -n "$faults" ]; then
		member_cmd "$follower" "$ic" new
		start_raw "$follower" env "QUORUMD_TEST_PEER_FAULTS=$faults" "${MEMBER_CMD[@]}"
	else
		start_member "$follower" "$ic" new
	fi
	# Writes go on while the follower catches up.
	ctl_ok "${others[0]}" put "during/$round" "$round"
	wait_until "$follower caught up (round $round), same hashkv" 90 converged_and_equal "${all[@]}"
	[ "$(count_lines "$follower" "applied snapshot")" -gt "$applied_before" ] ||
		fail "$follower caught up without installing a snapshot (round $round)"
	log_has "$follower" '"msg":"received and saved database snapshot"' || fail "$follower logged no received snapshot"
	[ "$(sent_total)" -gt "$sent_before" ] || fail "no member logged 'sent database snapshot' (round $round)"
	ctl_ok "$follower" get "during/$round" --consistency=s
	assert_eq "during/$round on $follower" "during/$round"$'\n'"$round" "$OUT"
}

catch_up_round "" 1
catch_up_round "drop=0.05,seed=15" 2
resent=0
for n in "${others[@]}"; do
	r=$(log_field "$n" "sent database snapshot" chunks-resent)
	[ -n "$r" ] && resent=$((resent + r))
done
log "chunks resent over 5% frame loss: $resent"
[ "$resent" -gt 0 ] || fail "5% frame loss cost no resent chunk: was the fault layer on?"
log_has "$follower" '"msg":"test fault layer on' || fail "$follower ran without the fault layer"
