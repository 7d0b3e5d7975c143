#!/usr/bin/env bash
# Rule 12: durability. Batch 1: N keys, one `put` each, each must print OK. Batch 2: puts while a background
# killer SIGKILLs one random member, or all three, at a random moment. After restarting the killed members
# and waiting until every member's RAFT APPLIED INDEX equals the leader's RAFT INDEX, every key whose put
# printed OK is present with its value on every member (`get --prefix --consistency=s`), and all members hold
# the same keys. The random choices come from SEED (printed; set CLUSTER_TEST_SEED to replay). Ports: 412x0.
source "$(dirname "$0")/lib.sh"

SEED=${CLUSTER_TEST_SEED:-$(( $(date +%s%N) % 1000000 ))}
RANDOM=$SEED
all=(m1 m2 m3)
add_member m1 41210
add_member m2 41220
add_member m3 41230
ic=$(initial_cluster "${all[@]}")
start_new_cluster "${all[@]}"
wait_ready 10 "${all[@]}"

declare -A acked=() # key -> value of every put that printed OK
N1=30 N2=90
for ((i = 0; i < N1; i++)); do
	n=${all[i % 3]} key=$(printf 'dur/a%03d' "$i") value="a$i-$RANDOM"
	ctl_ok "$n" put "$key" "$value"
	assert_eq "put $key through $n" OK "$OUT"
	acked[$key]=$value
done

# The killer: after a random delay, SIGKILL one random member (mode 0..2) or all three (mode 3).
mode=$((RANDOM % 4)) delay_ms=$((200 + RANDOM % 6000)) # batch 2 takes some 9 s when nothing fails
if [ "$mode" -lt 3 ]; then victims=("${all[mode]}"); else victims=("${all[@]}"); fi
victim_pids=()
for n in "${victims[@]}"; do victim_pids+=("${PID[$n]}"); done
log "seed $SEED: killing ${victims[*]} (pids ${victim_pids[*]}) ~$delay_ms ms into batch 2"
(
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))" # the random moment, not a condition
	kill -9 "${victim_pids[@]}" 2>/dev/null || true
) &
killer=$!
track_pid "$killer" # cleanup stops the killer too if the test ends early

ok2=0 failed2=0
for ((i = 0; i < N2; i++)); do
	n=${all[i % 3]} key=$(printf 'dur/b%03d' "$i") value="b$i-$RANDOM"
	ctl "$n" --command-timeout=2s put "$key" "$value"
	if [ "$RC" -eq 0 ]; then
		assert_eq "output of a successful put $key through $n" OK "$OUT"
		acked[$key]=$value
		ok2=$((ok2 + 1))
	else
		failed2=$((failed2 + 1))
		# All three dead: nothing more can succeed.
		if [ "$mode" -eq 3 ] && ! pid_alive "$killer"; then break; fi
	fi
done
wait "$killer"
log "batch 2: $ok2 puts printed OK, $failed2 failed"
# The killer has sent SIGKILL, but a victim dies asynchronously (the kernel still has to tear it down) and
# stays a zombie until this shell reaps it: poll with a bound instead of reading its state once.
for n in "${victims[@]}"; do
	wait_until "$n (pid ${PID[$n]}) gone after SIGKILL (else it survived it)" 10 not_running "$n"
	kill9 "$n" # reaps it
done

for n in "${victims[@]}"; do start_member "$n" "$ic" new; done
wait_leader 20 "${all[@]}"
wait_until "every member applied the leader's last index" 20 applied_converged "${all[@]}"

first=""
for n in "${all[@]}"; do
	ctl_ok "$n" get dur/ --prefix --consistency=s
	got=$OUT
	# Pair the alternating key and value lines, then look for each acknowledged key.
	declare -A have=()
	while IFS= read -r k && IFS= read -r v; do have[$k]=$v; done <<<"$got"
	missing=0
	for k in "${!acked[@]}"; do
		if [ "${have[$k]-<missing>}" != "${acked[$k]}" ]; then
			echo "on $n: $k expected '${acked[$k]}', got '${have[$k]-<missing>}'" >&2
			missing=$((missing + 1))
		fi
	done
	unset have
	[ "$missing" -eq 0 ] || fail "$missing acknowledged keys lost or wrong on $n (seed $SEED)"
	if [ -z "$first" ]; then first=$got; else assert_eq "keys on $n equal the keys on ${all[0]}" "$first" "$got"; fi
	log "$n: all ${#acked[@]} acknowledged keys present"
done
put_get m1 dur/after restart
