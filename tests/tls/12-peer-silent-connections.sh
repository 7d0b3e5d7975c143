#!/usr/bin/env bash
# tests/tls/12-peer-silent-connections.sh: TCP connections that never speak do not hold up peer handshakes.
# Three members with peer TLS; a client opens 12 connections to every member's peer port, says nothing, and opens
# a new one whenever a member closes one (after its 3 s handshake deadline), so silent connections wait at every
# port for the whole test. Handshakes of one at a time would each wait out a silent connection first (12 of them:
# 36 s); in the event loop they do not wait at all. With the silent connections held: infra2 killed and
# restarted handshakes with both others and commits a write within 10 s of its start; the members log the silent
# ones' end as a refusal ("no answer within 3000 ms"). Then 40 more at infra1 alone, beyond the 32 a member keeps
# handshaking: the oldest silent ones are dropped (logged at most once a second) and infra3, restarted, still
# handshakes with infra1 and commits. quorumd only (etcd's peers have no such handshake: they
# are HTTPS servers). Ports 27950-27999.
source "$(dirname "$(realpath "$0")")/lib.sh"
[ "$KIND" = quorumd ] || { echo "12-peer-silent-connections: quorumd only; skipped" >&2; exit 77; }

add_tls_member infra1 27960
add_tls_member infra2 27970
add_tls_member infra3 27980
for n in infra1 infra2 infra3; do PEER[$n]=${PEER[$n]/http:/https:}; done
ic=$(initial_cluster infra1 infra2 infra3)
start() {
	# shellcheck disable=SC2046
	start_member "$1" "$ic" new $(tls_flags "$1") --peer-cert-file "$PKI/$1.pem" --peer-key-file "$PKI/$1-key.pem" \
		--peer-trusted-ca-file "$PKI/ca.pem" --peer-client-cert-auth
}
for n in infra1 infra2 infra3; do start "$n"; done
wait_ready 30 infra1 infra2 infra3
expect_out "OK" --endpoints="$(endpoints infra1 infra2 infra3)" put before silent
ids=()
for n in infra1 infra2 infra3; do ids+=("$(member_id "$n")"); done

# The silent client: COUNT connections to each port, each reopened when the other side closes it; it prints
# "held" once all are open, then runs until killed. A port that refuses (a member down) is retried.
cat >"$TMP/silent.py" <<'EOF'
import selectors, socket, sys, time
count = int(sys.argv[1])
ports = [int(p) for p in sys.argv[2:]]
sel = selectors.DefaultSelector()
want = {p: count for p in ports}
held = {p: 0 for p in ports}
announced = False
while True:
    for port in ports:
        while held[port] < want[port]:
            s = socket.socket()
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                s.close()
                break
            sel.register(s, selectors.EVENT_READ, port)
            held[port] += 1
    if not announced and all(held[p] == want[p] for p in ports):
        print("held", flush=True)
        announced = True
    for key, _ in sel.select(timeout=0.2):
        try:
            data = key.fileobj.recv(4096)
        except OSError:
            data = b""
        if not data:
            sel.unregister(key.fileobj)
            key.fileobj.close()
            held[key.data] -= 1
EOF
"$PYTHON" "$TMP/silent.py" 12 "${PEER[infra1]##*:}" "${PEER[infra2]##*:}" "${PEER[infra3]##*:}" >"$TMP/silent.out" 2>&1 &
track_pid "$!"
silent_pid=$!
wait_until "the silent client holds its connections" 10 grep -q '^held$' "$TMP/silent.out"
# Each member ends silent connections as refusals once their deadline passes.
for n in infra1 infra2 infra3; do
	wait_until "$n ends a silent connection" 10 log_line_has "$n" '"msg":"rejected connection"' \
		'"error":"no answer within 3000 ms"'
done

# established_with NAME ID: NAME logged a session with ID after its restart (its log starts again at the restart
# mark).
established_with() {
	sed -n '/restart mark/,$p' "$TMP/$1.log" | grep -F '"msg":"peer TLS session established"' |
		grep -qF "\"remote-peer-id\":\"$2\""
}
value_on() { # NAME KEY VALUE: NAME's own read of KEY is VALUE
	ctl --endpoints="${CLIENT[$1]}" --dial-timeout=1s --command-timeout=2s get "$2" --consistency=s --print-value-only
	[ "$OUT" = "$3" ]
}
kill9 infra2
echo "restart mark" >>"$TMP/infra2.log"
started=$SECONDS
start infra2
for id in "${ids[0]}" "${ids[2]}"; do
	wait_until "restarted infra2 handshakes with $id despite the silent connections" 10 established_with infra2 "$id"
done
wait_until "restarted infra2 commits a write" 10 eval \
	'ctl --endpoints="${CLIENT[infra2]}" --dial-timeout=1s --command-timeout=2s put after-restart yes; [ "$OUT" = OK ]'
wait_until "infra2 reads it back" 5 value_on infra2 after-restart yes
took=$((SECONDS - started))
log "infra2: sessions with both others and a committed write ~$took s after its start, with 36 silent connections held"
[ "$took" -le 10 ] || fail "infra2 took $took s to handshake and commit (want at most 10)"
pid_alive "$silent_pid" || fail "the silent client stopped: $(cat "$TMP/silent.out")"

# More silent connections than a member keeps handshaking (32): infra1 drops the oldest silent ones (the client
# reopens them at once, so they churn), logging the drops at most once a second; a member's handshake, which
# speaks at once, is not among those dropped: infra3 restarted handshakes with infra1 and commits.
"$PYTHON" "$TMP/silent.py" 40 "${PEER[infra1]##*:}" >"$TMP/flood.out" 2>&1 &
track_pid "$!"
flood_pid=$!
wait_until "infra1 drops silent connections beyond 32" 10 log_line_has infra1 '"msg":"rejected connection"' \
	'"error":"handshake abandoned: too many peer handshakes in progress ('
kill9 infra3
echo "restart mark" >>"$TMP/infra3.log"
started=$SECONDS
start infra3
wait_until "restarted infra3 handshakes with infra1 through the flood" 10 established_with infra3 "${ids[0]}"
wait_until "restarted infra3 commits a write" 10 eval \
	'ctl --endpoints="${CLIENT[infra3]}" --dial-timeout=1s --command-timeout=2s put after-flood yes; [ "$OUT" = OK ]'
log "infra3: a session with infra1 and a committed write ~$((SECONDS - started)) s after its start, infra1 flooded"
drop_lines=$(grep -c '"error":"handshake abandoned' "$TMP/infra1.log" || true)
flood_seconds=$((SECONDS - started + 10))
[ "$drop_lines" -le "$flood_seconds" ] ||
	fail "infra1 logged $drop_lines drop lines in at most $flood_seconds s (want at most one a second)"
kill_pids "$flood_pid" "$silent_pid" || true

stop_all_and_check infra1 infra2 infra3
log "ok"
