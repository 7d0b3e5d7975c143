#!/usr/bin/env bash
# etcd #15271 (and #18089, #19179): a member brought back after missing writes — caught up by a snapshot —
# replayed old events to its watchers or missed some. Here: a follower is stopped, 6,000 puts are made (more
# than either server keeps in its log behind a snapshot: quorumd keeps 20 entries here, etcd 3.4 5,000, so the
# follower is caught up by snapshot on both), and it is restarted. A watch through it from a revision before the
# stop, created while it is still catching up, then another once it has caught up, and one through the leader
# must each deliver every revision of the range exactly once, in order, as the history holds it.
# Ports: 264x0 (client 264x9).
source "$(dirname "$0")/lib.sh"

all=(m1 m2 m3)
add_member m1 26410
add_member m2 26420
add_member m3 26430
IC=$(initial_cluster "${all[@]}")
# shellcheck disable=SC2046
for n in "${all[@]}"; do start_member "$n" "$IC" new $(snapshot_flags 100 20); done
wait_ready 20 "${all[@]}"
for n in "${all[@]}"; do [ "$n" = "$LEADER" ] || { follower=$n; break; }; done
live=()
for n in "${all[@]}"; do [ "$n" = "$follower" ] || live+=("$n"); done
"$REGRESS_CLIENT" write -endpoints "$(endpoints "${all[@]}")" -prefix r15271/before -acked "$TMP/acked" \
	-concurrency 4 -count 25 >>"$TMP/writer.log" 2>&1 || fail "the first writes failed"
from_rev=$(( $(revision "${CLIENT[$LEADER]}") - 50 ))
stop_member "$follower"
"$REGRESS_CLIENT" write -endpoints "$(endpoints "${live[@]}")" -prefix r15271/during -acked "$TMP/acked" \
	-concurrency 16 -count 375 >>"$TMP/writer.log" 2>&1 || fail "the writes while $follower was down failed"
until_rev=$(revision "$(endpoints "${live[@]}")")
log "$follower missed revisions $((from_rev + 50))..$until_rev; restarting it"
# shellcheck disable=SC2046
start_member "$follower" "$IC" new $(snapshot_flags 100 20)
wait_until "$follower answering" 30 running "$follower"
watch_check() {
	"$REGRESS_CLIENT" watch-check -endpoint "$1" -endpoints "$(endpoints "${live[@]}")" -prefix r15271/ \
		-from-rev "$from_rev" -until-rev "$until_rev"
}
watch_check "${CLIENT[$follower]}" >"$TMP/watch-lagging.out" 2>&1 ||
	fail "watch through $follower while it caught up: $(cat "$TMP/watch-lagging.out")"
log "$(cat "$TMP/watch-lagging.out")"
wait_until "$follower caught up" 60 applied_converged "${all[@]}"
log_has "$follower" "applied snapshot" || fail "$follower never logged \"applied snapshot\": it was not caught up by a snapshot"
for n in "$follower" "$LEADER"; do
	watch_check "${CLIENT[$n]}" >"$TMP/watch-$n.out" 2>&1 || fail "watch through $n: $(cat "$TMP/watch-$n.out")"
	log "$(cat "$TMP/watch-$n.out")"
done
check_acked "$(endpoints "${all[@]}")"
