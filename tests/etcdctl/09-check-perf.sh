#!/usr/bin/env bash
# etcdctl check perf --load=s against three members: 60 s of 150 puts/s (256-byte keys under
# /etcdctl-check-perf/, 1 KiB values) from 50 clients; PASS needs a throughput above 90% of 150/s, the slowest
# request at most 0.5 s and a standard deviation at most 0.1 s. Its four result lines are checked (numbers as
# patterns), then that it deleted its keys and every member holds the same data. Before that, check perf must
# refuse to start while keys exist under its prefix. Takes about 65 s. Expected outputs taken from etcd 3.4.23.
# Ports: 249x0 (client 249x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 24910
add_member infra2 24920
add_member infra3 24930
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)
E=--endpoints=$ENDPOINTS

expect_out "OK" "$E" put /etcdctl-check-perf/leftover x
ctl "$E" check perf --load=s
assert_eq "exit code of check perf with a key under its prefix (ExitInvalidInput)" 3 "$RC"
assert_eq "stderr of check perf with a key under its prefix" \
	"Error: prefix \"/etcdctl-check-perf/\" has keys. Delete with etcdctl del --prefix /etcdctl-check-perf/ first" "$ERR"
expect_out "1" "$E" del --prefix /etcdctl-check-perf/

log "check perf --load=s: 60 s"
ctl "$E" check perf --load=s
# stdout: a progress bar redrawn with carriage returns ("  7 / 60   11.67% 00m53s"), then the verdicts: etcdctl
# prints "FAIL: Throughput too low: N writes/s", "Slowest request took too long: Xs", "Stddev too high: Xs" and
# "FAIL" (exit code 1) when it fails; on a loaded machine it can (it did once against etcd at load average 16 on
# two cores).
verdicts=$(tr '\r' '\n' <<<"$OUT" | sed -E 's/ *[0-9]+ \/ [0-9]+ +[0-9.]+%( [0-9hms]+)?//g' | grep -v '^ *$')
log "check perf: $(tr '\n' ';' <<<"$verdicts")"
assert_eq "exit code of check perf --load=s (stdout: $verdicts; stderr: $ERR)" 0 "$RC"
assert_match "verdicts of check perf --load=s" \
	"PASS: Throughput is [0-9]+ writes/s
PASS: Slowest request took 0\.[0-9]+s
PASS: Stddev is 0\.[0-9]+s
PASS" "$verdicts"
# The bar's last tick races the end of the 60 s run on a loaded machine (seen under ASan: 59 / 60), so
# only the bar of a 60-step run is required.
grep -qE ' [0-9]+ / 60 +[0-9.]+%' <<<"$OUT" || fail "check perf --load=s printed no 60-step progress bar: $OUT"

expect_out "" "$E" get --prefix /etcdctl-check-perf/ --keys-only
expect_out "OK" "$E" put after-check-perf v
wait_until "every member applied what the leader has" 20 applied_converged infra1 infra2 infra3
ctl_ok "$E" endpoint hashkv
h=$(sed -n '1s/^.*, //p' <<<"$OUT")
assert_eq "endpoint hashkv after check perf (every member equal)" "http://127.0.0.1:24909, $h
http://127.0.0.1:24919, $h
http://127.0.0.1:24929, $h" "$OUT"
