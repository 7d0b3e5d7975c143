#!/usr/bin/env bash
# The node's batching point: many client writes in flight at once (2,000 puts pipelined on one control
# socket connection to a follower, which forwards them) are packed into few Raft entries, and every one is
# acknowledged and applied on every member. Asserts all 2,000 answers are OK, that the log grew by at most
# half as many entries as requests (unpacked it would be 2,000; measured 70 in a normal build, ~400 under
# ASan, where the control thread feeds the core more slowly), and that each member holds the 2,000 keys.
# Ports: 432x0.
source "$(dirname "$0")/lib.sh"
add_member m1 43210
add_member m2 43220
add_member m3 43230
start_new_cluster m1 m2 m3
wait_ready 10 m1 m2 m3
follower=""
for n in m1 m2 m3; do [ "$n" = "$LEADER" ] || { follower=$n; break; }; done
before=$(status_field "$LEADER" 8)
result=$(python3 - "$(sock "$follower")" 2000 <<'PY'
import json, socket, sys
path, count = sys.argv[1], int(sys.argv[2])
client = socket.socket(socket.AF_UNIX)
client.settimeout(30)
client.connect(path)
client.sendall(b"".join((json.dumps({"id": i, "command": "put", "key": "pipelined/%05d" % i,
                                     "value": "value-%d" % i}) + "\n").encode() for i in range(count)))
pending, answers, ok = b"", 0, 0
while answers < count:
    chunk = client.recv(65536)
    if not chunk:
        break
    pending += chunk
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        answers += 1
        ok += bool(json.loads(line).get("ok"))
print(answers, ok)
PY
)
assert_eq "answers and OKs for 2000 pipelined puts" "2000 2000" "$result"
after=$(status_field "$LEADER" 8)
entries=$((after - before))
log "2000 puts took $entries Raft entries"
[ "$entries" -le 1000 ] || fail "2000 pipelined puts took $entries Raft entries: not packed (expected at most 1000)"
converged() { applied_converged m1 m2 m3; }
wait_until "applied indexes to converge" 15 converged
for n in m1 m2 m3; do
	count=$("$QUORUMCTL" --control-socket "$(sock "$n")" get pipelined/ --prefix --consistency=s | grep -c '^pipelined/')
	assert_eq "keys on $n" 2000 "$count"
done
