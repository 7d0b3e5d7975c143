# tests/lib/proc.sh: bookkeeping of the processes a script starts, for the test harness (harness.sh), the
# chaos run, the benchmarks and the demo. Sourced; defines functions and two variables, runs nothing.
#
#   track_pid PID          record PID (in STARTED_PIDS) with its start time
#   pid_alive PID          true while PID is a live process (not a zombie) and, if tracked, still the one
#                          track_pid recorded
#   wait_gone TIMEOUT PID...   poll until none of the PIDs is alive; false after TIMEOUT seconds
#   reap_pid PID           collect the exit status of a dead child (sets REAPED_STATUS)
#   stop_pids GRACE PID... SIGTERM, GRACE seconds to exit, then SIGKILL; each one reaped
#   kill_pids PID...       SIGKILL (and SIGCONT, for a stopped one); each one reaped
#   kill_tracked           kill_pids on every tracked PID still alive (a cleanup trap's first step)
#
# Why not `kill -0 PID`: it succeeds on a zombie (a child that died but that no one has waited for yet)
# and on a process that got a SIGKILL but is still being torn down by the kernel, so "is it gone after
# kill -9" raced with both. And `wait PID` works only on children of the shell that calls it: a member
# started from a subshell is not one. pid_alive reads the state in /proc/PID/stat instead (a zombie counts
# as dead, whoever its parent is), and compares the start time recorded by track_pid, so that a PID the
# kernel has since given to another process (pid_max may be as low as 32768) is neither called alive nor
# sent a signal.
STARTED_PIDS=("${STARTED_PIDS[@]}") # every PID this script started (kept if the caller declared it already)
declare -A PID_BIRTH=()              # PID -> its start time in clock ticks since boot (field 22 of stat)

# proc_stat PID: sets PROC_STATE (R, S, D, T, Z, ...) and PROC_BIRTH from /proc/PID/stat without a fork;
# false when there is no such process. The command name (field 2) may hold spaces and parentheses, so the
# fields are counted from the last ')'.
proc_stat() {
	local line fields
	{ read -r line </proc/"$1"/stat; } 2>/dev/null || return 1
	read -r -a fields <<<"${line##*)}"
	PROC_STATE=${fields[0]}
	PROC_BIRTH=${fields[19]}
}

track_pid() {
	STARTED_PIDS+=("$1")
	# Read at once: until this shell has waited for it, the PID cannot belong to anyone else. A child
	# already gone (and reaped) by now is recorded as such.
	if proc_stat "$1"; then PID_BIRTH[$1]=$PROC_BIRTH; else PID_BIRTH[$1]=gone; fi
}

pid_alive() {
	[ -n "$1" ] && proc_stat "$1" || return 1
	case "$PROC_STATE" in Z | X | x) return 1 ;; esac
	[ -z "${PID_BIRTH[$1]:-}" ] || [ "${PID_BIRTH[$1]}" = "$PROC_BIRTH" ]
}

wait_gone() {
	local timeout=$1 deadline p
	shift
	deadline=$((SECONDS + timeout))
	for p in "$@"; do
		while pid_alive "$p"; do
			[ "$SECONDS" -lt "$deadline" ] || return 1
			sleep 0.05
		done
	done
}

# reap_pid PID: REAPED_STATUS = the exit status of a dead child (a zombie, or one bash has collected
# already: it keeps the status); 127 when PID is not a child of this shell or still runs. Never waits for a
# live process, nor for another process that has been given the PID since.
reap_pid() {
	REAPED_STATUS=127
	if proc_stat "$1"; then
		case "$PROC_STATE" in Z | X | x) ;; *) return 0 ;; esac
		[ -z "${PID_BIRTH[$1]:-}" ] || [ "${PID_BIRTH[$1]}" = "$PROC_BIRTH" ] || return 0
	fi
	REAPED_STATUS=0
	wait "$1" 2>/dev/null || REAPED_STATUS=$?
}

stop_pids() {
	local grace=$1 p live=()
	shift
	for p in "$@"; do
		pid_alive "$p" || continue
		live+=("$p")
		kill -TERM "$p" 2>/dev/null || true
	done
	[ "${#live[@]}" -eq 0 ] || wait_gone "$grace" "${live[@]}" || true
	kill_pids "$@"
}

# kill_pids PID...: false if one of them still runs 10 s after SIGKILL (a process stuck in the kernel).
kill_pids() {
	local p rc=0
	for p in "$@"; do
		pid_alive "$p" || continue
		kill -KILL "$p" 2>/dev/null || true
		kill -CONT "$p" 2>/dev/null || true
	done
	for p in "$@"; do
		wait_gone 10 "$p" || rc=1
		reap_pid "$p"
	done
	return "$rc"
}

kill_tracked() { [ "${#STARTED_PIDS[@]}" -eq 0 ] || kill_pids "${STARTED_PIDS[@]}"; }
