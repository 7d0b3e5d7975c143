#!/usr/bin/env bash
# etcd #14370: a single-member etcd (3.5.0-3.5.4) acknowledged puts before they were durable, and a crash lost
# them. Here: one member, sixteen writers; three times, once some hundreds of puts were acknowledged, SIGKILL
# and restart; every put ever acknowledged is then present with its value and revision. Snapshots are taken
# every 500 entries, so some kills fall around a snapshot or a released WAL segment.
# Ports: 260x0 (client 260x9).
source "$(dirname "$0")/lib.sh"

add_member solo 26010
IC=$(initial_cluster solo)
# shellcheck disable=SC2046
start_member solo "$IC" new $(snapshot_flags 500 100)
wait_ready 20 solo
for round in 1 2 3; do
	before=$(acked_count)
	start_writer "r14370/$round" "${CLIENT[solo]}" 16
	wait_until "300 more acknowledged puts (round $round)" 60 acked_at_least $((before + 300))
	kill9 solo
	stop_writer
	log "round $round: SIGKILL with $(acked_count) puts acknowledged in all"
	# shellcheck disable=SC2046
	start_member solo "$IC" new $(snapshot_flags 500 100)
	wait_ready 30 solo
	check_acked "${CLIENT[solo]}"
done
