#!/usr/bin/env bash
# etcdctl check datascale --load=s against three members: it reads process_resident_memory_bytes from the first
# endpoint's /metrics, writes 10,000 keys of 1 KiB under /etcdctl-check-datascale/ from 50 clients, reads the
# metric again and deletes its keys; PASS reports the memory grown in MB. Before that it must refuse to start
# while a key exists under its prefix. /metrics carries Prometheus' process_* series with etcd's names, help
# texts and types, and values that make sense for the member's process. Expected outputs taken from etcd 3.4.23.
# Ports: 285x0 (client 285x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 28510
add_member infra2 28520
add_member infra3 28530
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)
E=--endpoints=$ENDPOINTS

# ---- the process_* series, as etcd 3.4.23 serves them ----
metrics=$(curl -s --max-time 5 "${CLIENT[infra1]}/metrics")
assert_eq "HELP and TYPE lines of the process_* series" "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
# HELP process_max_fds Maximum number of open file descriptors.
# TYPE process_max_fds gauge
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
# HELP process_virtual_memory_bytes Virtual memory size in bytes.
# TYPE process_virtual_memory_bytes gauge
# HELP process_virtual_memory_max_bytes Maximum amount of virtual memory available in bytes.
# TYPE process_virtual_memory_max_bytes gauge" "$(grep -E '^# (HELP|TYPE) process_' <<<"$metrics")"
value() { awk -v m="$1" '$1 == m { print $2 }' <<<"$metrics"; }
pid=${PID[infra1]}
# Go's number format: digits, or a mantissa with e+NN.
number='[0-9]+(\.[0-9]+)?(e[+-][0-9]+)?'
for m in process_cpu_seconds_total process_max_fds process_open_fds process_resident_memory_bytes \
	process_start_time_seconds process_virtual_memory_bytes process_virtual_memory_max_bytes; do
	assert_match "$m of infra1" "$number" "$(value "$m")"
done
assert_eq "process_max_fds of infra1 (its soft limit)" "$(awk '/^Max open files/ { print $4 }' "/proc/$pid/limits")" \
	"$(printf '%.0f' "$(value process_max_fds)")"
rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
awk -v m="$(value process_resident_memory_bytes)" -v k="$rss_kib" 'BEGIN { exit !(m > k * 1024 / 2 && m < k * 1024 * 2) }' ||
	fail "process_resident_memory_bytes $(value process_resident_memory_bytes) is far from VmRSS $rss_kib kB"
started=$(value process_start_time_seconds)
awk -v s="$started" -v now="$(date +%s)" 'BEGIN { exit !(s > now - 120 && s <= now + 1) }' ||
	fail "process_start_time_seconds $started is not within the last two minutes"
fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
awk -v m="$(value process_open_fds)" -v n="$fds" 'BEGIN { exit !(m > n - 20 && m < n + 20) }' ||
	fail "process_open_fds $(value process_open_fds) is far from the $fds entries of /proc/$pid/fd"

# ---- check datascale ----
expect_out "OK" "$E" put /etcdctl-check-datascale/leftover x
ctl "$E" check datascale --load=s
assert_eq "exit code of check datascale with a key under its prefix (ExitInvalidInput)" 3 "$RC"
assert_eq "stderr of check datascale with a key under its prefix" \
	"Error: prefix \"/etcdctl-check-datascale/\" has keys. Delete with etcdctl del --prefix /etcdctl-check-datascale/ first" \
	"$ERR"
expect_out "1" "$E" del --prefix /etcdctl-check-datascale/

log "check datascale --load=s"
ctl "$E" check datascale --load=s
# stdout: the start line, a progress bar redrawn with carriage returns, then the verdict.
verdicts=$(tr '\r' '\n' <<<"$OUT" | sed -E 's/ *[0-9]+ \/ [0-9]+ +[0-9.]+%( [0-9hms]+)?//g' | grep -v '^ *$')
log "check datascale: $(tr '\n' ';' <<<"$verdicts")"
assert_eq "exit code of check datascale --load=s (stdout: $verdicts; stderr: $ERR)" 0 "$RC"
assert_match "verdicts of check datascale --load=s" \
	"Start data scale check for work load \[10000 key-value pairs, 1024 bytes per key-value, 50 concurrent clients\]\.
PASS: Approximate system memory used : -?[0-9]+\.[0-9]{2} MB\." "$verdicts"
expect_out "" "$E" get --prefix /etcdctl-check-datascale/ --keys-only
