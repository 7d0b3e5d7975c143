#!/usr/bin/env bash
# etcd #14571 and #16658: watch events were duplicated or lost when compaction ran while watchers moved from
# catching up to live. Here: a steady write load, a compaction to 30 revisions behind the head every few
# hundred milliseconds, and watchers started one after another from 20 or 35 revisions back (so each
# starts catching up while the compaction chases it) through every member. Each must deliver every revision it owes
# exactly once, in order, as the history holds it — or be cancelled as compacted, which is allowed only when
# the compaction really passed the next revision it owed. At least one watcher must finish uncancelled.
# Ports: 265x0 (client 265x9).
source "$(dirname "$0")/lib.sh"

all=(m1 m2 m3)
add_member m1 26510
add_member m2 26520
add_member m3 26530
start_new_cluster "${all[@]}"
wait_ready 20 "${all[@]}"
all_endpoints=$(endpoints "${all[@]}")
start_writer r16658 "$all_endpoints" 8
wait_until "the first acknowledged puts" 30 acked_at_least 100
(
	while [ ! -f "$TMP/stop-writer" ]; do
		rev=$("$REGRESS_CLIENT" revision -endpoints "$all_endpoints" 2>/dev/null) || continue
		if "$ETCDCTL" --endpoints="$all_endpoints" compaction $((rev - 30)) >/dev/null 2>&1; then
			echo $((rev - 30)) >>"$TMP/compactions"
		fi
		sleep 0.2 # the compaction's pace, not a wait for a condition
	done
) &
track_pid "$!"
compactions() { [ -f "$TMP/compactions" ] && wc -l <"$TMP/compactions" || echo 0; }
compactions_at_least() { [ "$(compactions)" -ge "$1" ]; }
watchers=()
for i in 0 1 2 3 4 5 6 7; do
	n=${all[i % 3]}
	# From 20 revisions back (inside what the compaction keeps) or 35 (at or below where it last compacted
	# or about to): the watcher starts catching up while the compaction passes it.
	from=$(( $("$REGRESS_CLIENT" revision -endpoints "$all_endpoints") - (i % 2 ? 35 : 20) ))
	"$REGRESS_CLIENT" watch-check -endpoint "${CLIENT[$n]}" -endpoints "$all_endpoints" -prefix r16658/ \
		-from-rev "$from" -until-rev-file "$TMP/until-rev" -allow-compacted >"$TMP/watch$i.out" 2>&1 &
	watchers+=("$!")
	track_pid "$!"
	wait_until "200 more acknowledged puts after watcher $i" 30 acked_at_least $(($(acked_count) + 200))
	wait_until "3 more compactions after watcher $i" 30 compactions_at_least $(($(compactions) + 3))
done
stop_writer
revision "$all_endpoints" >"$TMP/until-rev.tmp"
mv "$TMP/until-rev.tmp" "$TMP/until-rev"
log "$(compactions) compactions, the last to revision $(tail -n 1 "$TMP/compactions")"
complete=0
for i in "${!watchers[@]}"; do
	wait_gone 60 "${watchers[i]}" || fail "watcher $i did not finish"
	reap_pid "${watchers[i]}"
	[ "$REAPED_STATUS" -eq 0 ] || fail "watcher $i: $(cat "$TMP/watch$i.out")"
	log "watcher $i: $(cat "$TMP/watch$i.out")"
	grep -q 'each once and in order' "$TMP/watch$i.out" && complete=$((complete + 1))
done
[ "$complete" -ge 1 ] || fail "every watcher was cancelled as compacted: nothing was checked to the end"
