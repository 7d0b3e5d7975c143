#!/usr/bin/env bash
# The main job: a three-member quorumd cluster on loopback doing real work (through quorumctl and through
# the real etcdctl on the client URLs: watch, txn, lease), then etcd's runtime
# reconfiguration scenario step by step — each command shown with its output: writes and reads, member
# update and restart on the new URL, a two-phase member add, a learner added and promoted, a member
# removed, the leader killed and replaced. Every process it starts is stopped at the end, also on failure.
# (The deterministic simulation has its own narrative: build/tests/raft-sim --demo --nodes 5.)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. tests/lib/proc.sh
quorumd_install_packages
quorumd_build build >/dev/null

QUORUMD=$PWD/build/control/quorumd
QUORUMCTL=$PWD/build/control/quorumctl
WORK=$(mktemp -d /tmp/quorumd-demo.XXXXXX)
declare -A PID=() PEER=() CLIENT=()

cleanup() {
	# SIGTERM first: the members shut down as an operator's would (STARTED_PIDS: tests/lib/proc.sh).
	stop_pids 10 "${STARTED_PIDS[@]}" || echo "demo: a process still runs 10 s after SIGKILL" >&2
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { # run NAME ARGS...: quorumctl against member NAME, shown as an operator would type it
	local name=$1; shift
	printf '$ quorumctl --control-socket %s/control.sock %s\n' "$name" "$*"
	"$QUORUMCTL" --control-socket "$WORK/$name/control.sock" "$@"
}
ctl() { local name=$1; shift; "$QUORUMCTL" --control-socket "$WORK/$name/control.sock" "$@"; }
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...: poll a condition, bounded
	local deadline=$((SECONDS + $1)) what=$2; shift 2
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || { echo "demo: gave up waiting for $what" >&2; exit 1; }
		sleep 0.1
	done
}
start() { # start NAME PEER_PORT CLIENT_PORT [extra flags...]
	local name=$1 peer=$2 client=$3; shift 3
	PEER[$name]="http://127.0.0.1:$peer"
	CLIENT[$name]="http://127.0.0.1:$client"
	"$QUORUMD" --name "$name" --data-dir "$WORK/$name" \
		--listen-peer-urls "${PEER[$name]}" --initial-advertise-peer-urls "${PEER[$name]}" \
		--listen-client-urls "${CLIENT[$name]}" --advertise-client-urls "${CLIENT[$name]}" "$@" >>"$WORK/$name.log" 2>&1 &
	PID[$name]=$!
	track_pid "$!"
}
# A member started from a subshell (to keep the ETCD_* variables out of this shell) is not this shell's
# child: the subshell writes its PID to WORK/NAME.pid, and it is tracked here.
adopt() { PID[$1]=$(cat "$WORK/$1.pid"); track_pid "${PID[$1]}"; }
gone() { ! pid_alive "$1"; }
has_leader() { ctl "$1" endpoint status | awk -F', ' '{print $1}' | grep -q .; ctl "$1" endpoint status | grep -qv ', etcdserver: no leader'; }
leader_of() { for n in "$@"; do ctl "$n" endpoint status 2>/dev/null | awk -F', ' -v n="$n" '$5=="true"{print n}'; done; }
started() { ctl "$1" member list | grep -q "started, $2,"; }

say "Three members, bootstrapped with etcd's flags (member IDs as etcd computes them)"
IC="infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"
for i in 1 2 3; do
	start "infra$i" "${i}2380" "${i}2379" --initial-cluster-token etcd-cluster-1 --initial-cluster "$IC"
done
for i in 1 2 3; do wait_until 15 "infra$i to publish itself" started infra1 "infra$i"; done
run infra1 member list -w table

say "Writes on one member, reads on another (linearizable and serializable)"
run infra1 put greeting "hello from quorumd"
run infra2 get greeting
for k in 1 2 3 4 5; do ctl infra3 put "key$k" "value$k" >/dev/null; done
run infra3 get key --prefix --consistency=s
run infra1 endpoint status -w table

say "The real etcdctl (etcd 3.4's client, Debian's etcd-client) on the client URLs: watch, txn, lease"
export ETCDCTL_API=3
EP="${CLIENT[infra1]},${CLIENT[infra2]},${CLIENT[infra3]}"
etc() { printf '$ etcdctl --endpoints=$EP %s\n' "$*"; etcdctl --endpoints="$EP" "$@"; }
# From the next revision on, so the watch sees every write below however late it connects.
next=$(( $(etcdctl --endpoints="$EP" get demo/ -w json | sed 's/.*"revision":\([0-9]*\).*/\1/') + 1 ))
printf '$ etcdctl --endpoints=%s watch --prefix demo/ --rev=%s &\n' "${CLIENT[infra2]}" "$next"
etcdctl --endpoints="${CLIENT[infra2]}" watch --prefix demo/ --rev="$next" >"$WORK/watch.txt" 2>&1 &
PID[watch]=$!
track_pid "$!"
etc put demo/colour blue
printf 'value("demo/colour") = "blue"\n\nput demo/colour green\n\nput demo/colour red\n\n' >"$WORK/txn.txt"
printf '$ etcdctl --endpoints=$EP txn < txn.txt   # if colour is blue then green else red\n'
etcdctl --endpoints="$EP" txn <"$WORK/txn.txt"
lease=$(etcdctl --endpoints="$EP" lease grant 30 | awk '{print $2}')
echo "(lease $lease granted for 30 s)"
etc put demo/session alive --lease="$lease"
etc lease timetolive "$lease" --keys
etc get demo/ --prefix
wait_until 10 "the watch to see three events" bash -c "[ \$(grep -c '^PUT' '$WORK/watch.txt') -ge 3 ]"
echo "what the watch on infra2 printed:"
sed 's/^/  /' "$WORK/watch.txt"
stop_pids 10 "${PID[watch]}"
unset 'PID[watch]'
etc endpoint status -w table

say "member update: infra3 moves to a new peer URL, then restarts on it"
id3=$(ctl infra1 member list | awk -F', ' '$3=="infra3"{print $1}')
run infra1 member update "$id3" --peer-urls=http://127.0.0.1:33380
stop_pids 10 "${PID[infra3]}"
start infra3 33380 32379
wait_until 15 "infra3 to rejoin on its new URL" ctl infra3 get greeting
run infra1 member list

say "Two-phase add: the cluster agrees first, then infra4 starts with --initial-cluster-state existing"
run infra1 member add infra4 --peer-urls=http://127.0.0.1:42380 | tee "$WORK/add4.txt"
(
	eval "$(grep '^ETCD_' "$WORK/add4.txt" | sed 's/^/export /')"
	start infra4 42380 42379
	echo "${PID[infra4]}" >"$WORK/infra4.pid"
)
adopt infra4
wait_until 20 "infra4 to start" started infra1 infra4
run infra4 get greeting --consistency=s
run infra1 member list -w table

say "A learner: it receives the log but does not vote; promoted once in sync"
run infra1 member add infra5 --learner --peer-urls=http://127.0.0.1:52380 | tee "$WORK/add5.txt"
id5=$(awk '/^Member/{print $2}' "$WORK/add5.txt")
printf '$ quorumctl ... member promote %s   (infra5 has not started: it lags)\n' "$id5"
ctl infra1 member promote "$id5" || true
(
	eval "$(grep '^ETCD_' "$WORK/add5.txt" | sed 's/^/export /')"
	start infra5 52380 52379
	echo "${PID[infra5]}" >"$WORK/infra5.pid"
)
adopt infra5
wait_until 20 "infra5 to start" started infra1 infra5
wait_until 20 "infra5 to catch up and be promoted" ctl infra1 member promote "$id5"
echo "(infra5 caught up: member promote $id5 succeeded)"
run infra1 member list

say "member remove: infra2 leaves; it logs that it was removed and exits"
id2=$(ctl infra1 member list | awk -F', ' '$3=="infra2"{print $1}')
run infra1 member remove "$id2"
wait_until 10 "infra2 to exit" gone "${PID[infra2]}"
reap_pid "${PID[infra2]}"
unset 'PID[infra2]'
grep -h 'permanently removed\|data-dir used by this member' "$WORK/infra2.log" | sed 's/^/infra2 log: /'
run infra1 member list

say "The leader is killed (kill -9): the others elect a new one and keep every acknowledged write"
members=(infra1 infra3 infra4 infra5)
wait_until 10 "a leader" bash -c "[ -n \"\$(for n in ${members[*]}; do $QUORUMCTL --control-socket $WORK/\$n/control.sock endpoint status 2>/dev/null | awk -F', ' '\$5==\"true\"'; done)\" ]"
leader=$(leader_of "${members[@]}")
echo "leader: $leader — kill -9 ${PID[$leader]}"
kill_pids "${PID[$leader]}"
unset "PID[$leader]"
rest=()
for n in "${members[@]}"; do [ "$n" = "$leader" ] || rest+=("$n"); done
wait_until 15 "a new leader" bash -c "[ -n \"\$(for n in ${rest[*]}; do $QUORUMCTL --control-socket $WORK/\$n/control.sock endpoint status 2>/dev/null | awk -F', ' '\$5==\"true\"'; done)\" ]"
echo "new leader: $(leader_of "${rest[@]}")"
run "${rest[0]}" put after-failover still-writable
run "${rest[1]}" get "" --prefix --print-value-only | head -8
run "${rest[0]}" endpoint status -w table

say "Done: stopping every member this demo started"
