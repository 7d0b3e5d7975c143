#!/usr/bin/env bash
# Rule 7: quorum lost (two of three killed with SIGKILL): on the survivor `member add` fails and changes
# nothing, `member list` still shows the three members, `put` fails within the command timeout, and
# `endpoint status` reports `etcdserver: no leader` (ERRORS) once the survivor has noticed; with a second
# member back, writes work again. KNOWN FAILURE kept out of this file (known-failures/07-unhealthy-cluster.sh,
# not committed): etcd answers the add at once with `Error: etcdserver: unhealthy cluster`; quorumd times out
# (`context deadline exceeded` after 5 s) right after the kill and says `etcdserver: no leader` later.
# Ports: 407x0.
source "$(dirname "$0")/lib.sh"

add_member m1 40710
add_member m2 40720
add_member m3 40730
start_new_cluster m1 m2 m3
wait_ready 10 m1 m2 m3
put_get m1 before v
ctl_ok m1 member list
list_before=$OUT

# m1 survives (leader or follower, whichever it was).
kill9 m2
kill9 m3
log "killed m2 and m3; m1 survives"

ctl m1 --command-timeout=3s member add m4 --peer-urls=http://127.0.0.1:40740
assert_eq "exit code of member add without quorum (stderr: $ERR)" 1 "$RC"
ctl m1 --command-timeout=3s member add m4l --peer-urls=http://127.0.0.1:40750 --learner
assert_eq "exit code of member add --learner without quorum (stderr: $ERR)" 1 "$RC"

ctl_ok m1 member list
assert_eq "member list on the survivor" "$list_before" "$OUT"

t0=$(date +%s%N)
ctl m1 --command-timeout=3s put during outage
ms=$((($(date +%s%N) - t0) / 1000000))
log "put during the outage: exit $RC after $ms ms: $OUT $ERR"
assert_eq "exit code of put without quorum (stderr: $ERR)" 1 "$RC"
[ "$ms" -le 4500 ] || fail "put without quorum took $ms ms (command timeout 3 s)"
assert_eq "stdout of put without quorum" "" "$OUT"
assert_eq "stderr of put without quorum" "Error: context deadline exceeded" "$ERR"

no_leader() { [ "$(status_field m1 10)" = "etcdserver: no leader" ] && [ "$(status_field m1 5)" = false ]; }
wait_until "endpoint status of m1 shows 'etcdserver: no leader' in ERRORS" 10 no_leader

# Quorum back: the cluster serves again (etcd makes no promise about the put that timed out).
start_member m2 "$(initial_cluster m1 m2 m3)" new
wait_leader 15 m1 m2
put_get m1 after v
put_get m2 after2 v
