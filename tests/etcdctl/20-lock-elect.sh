#!/usr/bin/env bash
# etcdctl lock and elect under contention (clientv3/concurrency's Mutex and Election, which wait on a range
# with max_create_revision): a second `lock L` waits while the first holds L and gets it as soon as the first
# is stopped; four processes taking turns on one lock increment a counter with a plain get and put and lose
# no increment; the exit status of a locked command; a campaign waits behind the leader, wins when the leader
# is stopped (it resigns), and an observer (`elect -l`) prints each leader. Lock and election keys carry the
# session's lease ID, so they are matched by pattern. Expected outputs taken from etcd 3.4.23.
# Ports: 284x0 (client 284x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 28410
add_member infra2 28420
add_member infra3 28430
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)
E=--endpoints=$ENDPOINTS

# matches FILE REGEX: TMP/FILE as a whole (every line) matches the extended regex.
matches() { [[ "$(cat "$TMP/$1")" =~ ^$2$ ]]; }

# wait_match FILE TIMEOUT REGEX: waits until TMP/FILE matches; fails showing what it holds.
wait_match() {
	local file=$1 t=$2 regex=$3 deadline=$((SECONDS + $2 + 1))
	until matches "$file" "$regex"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			assert_match "output of background etcdctl $file after $t s (stderr: $(cat "$TMP/$file.err"))" \
				"$regex" "$(cat "$TMP/$file")"
		fi
		sleep 0.1
	done
}

# key_count PREFIX: how many keys start with PREFIX.
key_count() { "$ETCDCTL" "$E" get "$1" --prefix --keys-only 2>/dev/null | grep -c "^$1" || true; }
has_keys() { [ "$(key_count "$1")" = "$2" ]; }

# stop_bg PID NAME: SIGTERM (etcdctl unlocks or resigns on it), then the exit status must be 0.
stop_bg() {
	kill -TERM "$1"
	local rc=0
	wait "$1" || rc=$?
	assert_eq "exit status of $2 after SIGTERM (stderr: $(cat "$TMP/$2.err"))" 0 "$rc"
}

# ---- lock: a second holder waits for the first ----
ctl_bg lock1 "$E" lock L
lock1=$BG_PID
wait_match lock1 10 'L/[0-9a-f]+'
ctl_bg lock2 "$E" lock L -- sh -c 'echo "got $ETCD_LOCK_KEY at $ETCD_LOCK_REV"'
lock2=$BG_PID
wait_until "the second locker's key" 10 has_keys L/ 2
# Its key is there: it has made its attempt, found the first holder and waits.
expect_out "OK" "$E" put after-attempt x
assert_eq "output of the waiting lock" "" "$(cat "$TMP/lock2")"
kill -0 "$lock2" || fail "the waiting lock exited: $(cat "$TMP/lock2.err")"
holder=$(head -n 1 "$TMP/lock1")
stop_bg "$lock1" lock1
wait_match lock2 10 'got L/[0-9a-f]+ at [0-9]+'
got=$(cat "$TMP/lock2")
[ "${got#got }" != "$holder at ${got##* at }" ] || fail "the second locker got the first's key $holder"
rc=0
wait "$lock2" || rc=$?
assert_eq "exit status of a lock whose command succeeded" 0 "$rc"
wait_until "no lock key left" 10 has_keys L/ 0

# The command's failure is the lock's.
expect_error "Error: exit status 3" "$E" lock L -- sh -c 'exit 3'
wait_until "no lock key left after the failed command" 10 has_keys L/ 0

# ---- lock: four processes, three increments each, through the lock only ----
expect_out "OK" "$E" put counter 0
cat >"$TMP/increment.sh" <<SH
#!/bin/sh
v=\$("$ETCDCTL" $E get counter --print-value-only) || exit 1
"$ETCDCTL" $E put counter \$((v + 1)) >/dev/null
SH
chmod +x "$TMP/increment.sh"
workers=()
for w in 1 2 3 4; do
	(for round in 1 2 3; do "$ETCDCTL" "$E" lock C "$TMP/increment.sh" >/dev/null || exit 1; done) \
		2>"$TMP/worker$w.err" &
	workers+=("$!")
	track_pid "$!"
done
for w in 1 2 3 4; do
	rc=0
	wait "${workers[$((w - 1))]}" || rc=$?
	assert_eq "exit status of lock worker $w (stderr: $(cat "$TMP/worker$w.err"))" 0 "$rc"
done
expect_out "12" "$E" get counter --print-value-only
wait_until "no lock key left after the workers" 10 has_keys C/ 0

# ---- elect: an observer, a leader, a waiting candidate ----
ctl "$E" elect E
assert_eq "elect without a proposal or -l: exit status (etcdctl's ExitBadArgs)" 128 "$RC"
assert_eq "elect without a proposal or -l: stderr" "Error: no proposal argument but -l not set" "$ERR"
ctl_bg observer "$E" elect -l E
observer=$BG_PID
ctl_bg cand1 "$E" elect E cand1
cand1=$BG_PID
wait_match cand1 10 'E/[0-9a-f]+'$'\n''cand1'
key1=$(head -n 1 "$TMP/cand1")
wait_output observer 10 "$key1
cand1"
ctl_bg cand2 "$E" elect E cand2
cand2=$BG_PID
wait_until "the second candidate's key" 10 has_keys E/ 2
expect_out "OK" "$E" put after-campaign x
assert_eq "output of the waiting candidate" "" "$(cat "$TMP/cand2")"
kill -0 "$cand2" || fail "the waiting candidate exited: $(cat "$TMP/cand2.err")"
stop_bg "$cand1" cand1
wait_match cand2 10 'E/[0-9a-f]+'$'\n''cand2'
key2=$(head -n 1 "$TMP/cand2")
[ "$key2" != "$key1" ] || fail "the second candidate shows the first's key $key1"
wait_output observer 10 "$key1
cand1
$key2
cand2"
stop_bg "$cand2" cand2
wait_until "no election key left" 10 has_keys E/ 0
stop_bg "$observer" observer
