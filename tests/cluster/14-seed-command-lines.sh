#!/usr/bin/env bash
# Issue 9: the seed's command lines, verbatim with `etcd` replaced by `quorumd`. A three-member cluster;
# `etcdctl member add infra4` (the real etcdctl, ETCDCTL_API=3, on the client URLs); infra4 started with
# exactly the seed's flag form (no --data-dir: it makes infra4.etcd in its working directory, as etcd does;
# --enable-pprof --logger=zap --log-outputs=stderr); then `member add infra5` and infra5 started the
# seed's other way: `export ETCD_NAME=... ETCD_INITIAL_CLUSTER=... ETCD_INITIAL_CLUSTER_STATE=existing`,
# then quorumd with the URL flags. Both show `started` in every member's list, a put through each is
# read on all the others; every log line is a JSON object with level, ts, caller and msg. With
# --enable-pprof infra4 answers /debug/vars (its counters as JSON) and /debug/pprof/ (how to profile it
# with perf); infra1, started without it, answers 404 there. Conflicting bootstrap flags (etcd's rules),
# v2 discovery and unknown flags stop quorumd with exit code 1 and a message naming them, and every flag of
# `etcd --help` is known (accepted or refused by name, never "not defined"). Ports: 445x0 (peer), 445x9
# (client).
source "$(dirname "$0")/lib.sh"

ETCDCTL=$(command -v etcdctl || true)
[ -n "$ETCDCTL" ] || { echo "$0: etcdctl not found (Debian package etcd-client)" >&2; exit 77; }
export ETCDCTL_API=3

add_member infra1 44510
add_member infra2 44520
add_member infra3 44530
add_member infra4 44540
add_member infra5 44550
# infra4 runs as the seed says, without --data-dir: its data dir is infra4.etcd in its working directory
# ($TMP). The harness looks for TMP/infra4/control.sock, so TMP/infra4 points there.
rmdir "$TMP/infra4"
ln -s infra4.etcd "$TMP/infra4"

# ectl ENDPOINTS ARGS...: the real etcdctl; sets OUT, ERR and RC (never fails).
ectl() {
	local endpoints=$1
	shift
	run_captured "$ETCDCTL" --endpoints="$endpoints" --command-timeout=5s "$@"
}
ectl_ok() {
	ectl "$@"
	assert_captured_ok "etcdctl --endpoints=$1 ${*:2}"
}

# ---- unknown and not-yet-supported flags: exit 1, the flag named ----
refused() { # refused EXPECTED_FRAGMENT ENV... -- FLAGS...
	local expected=$1 rc=0 out
	shift
	local environment=()
	while [ "$1" != -- ]; do environment+=("$1"); shift; done
	shift
	out=$(cd "$TMP" && env "${environment[@]}" "$QUORUMD" "$@" 2>&1) || rc=$?
	assert_eq "exit code of quorumd ${environment[*]} $* (output: $out)" 1 "$rc"
	assert_contains "quorumd ${environment[*]} $*" "$expected" "$out"
}
refused "multiple discovery or bootstrap flags are set" -- --name x --discovery-srv example.com \
	--initial-cluster x=http://127.0.0.1:44580
refused "both --discovery-token and --discovery-endpoints must be set" -- --name x \
	--discovery-endpoints http://127.0.0.1:2379
refused "multiple discovery or bootstrap flags are set" \
	ETCD_DISCOVERY_SRV=example.com ETCD_INITIAL_CLUSTER=x=http://127.0.0.1:44580 -- --name x
refused "--discovery is not supported: quorumd has no v2 discovery" -- --name x \
	--discovery https://discovery.etcd.io/3e86b59982e49066c5d813af1c2e2579cbf573de
refused "flag provided but not defined: -bogus-flag" -- --name x --bogus-flag=1
refused "flag --enable-v2 is an etcd flag that quorumd does not support" -- --name x --enable-v2
[ ! -e "$TMP/x.etcd" ] || fail "a refused start created a data dir"
# Every flag of etcd 3.4 (`etcd --help`, Debian etcd-server) is known to quorumd: accepted, or refused with
# a message naming it as etcd's or as not supported yet, never "not defined".
if command -v etcd >/dev/null 2>&1; then
	etcd_flags=$(etcd --help 2>&1 | sed -n 's/^  *--\([a-z0-9-]*\).*/\1/p' | sort -u)
	[ "$(wc -l <<<"$etcd_flags")" -gt 50 ] || fail "etcd --help listed too few flags: $etcd_flags"
	for flag in $etcd_flags; do
		rc=0
		out=$(cd "$TMP" && "$QUORUMD" "--$flag=1" --version 2>&1) || rc=$?
		[ "$rc" -eq 0 ] && continue
		lacks_undefined=1
		case "$out" in *"not defined"*) lacks_undefined=0 ;; esac
		[ "$lacks_undefined" -eq 1 ] && [[ $out == *"$flag"* ]] ||
			fail "etcd's --$flag: quorumd said '$out' (exit code $rc)"
	done
else
	log "SKIPPED: etcd's own flag list (no etcd binary; Debian package etcd-server)"
fi

# ---- three members, the harness's way ----
start_new_cluster infra1 infra2 infra3
wait_ready 10 infra1 infra2 infra3
ectl_ok "$(endpoints infra1)" put seed/before infra4
assert_eq "put through infra1" OK "$OUT"

# ---- infra4: member add with etcdctl, then the seed's flag form ----
ectl_ok "$(endpoints infra1 infra2 infra3)" member add infra4 --peer-urls="${PEER[infra4]}"
add4=$OUT
infra4_id=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$add4")
[ -n "$infra4_id" ] || fail "no member ID in etcdctl's member add output: $add4"
var() { sed -n "s/^$1=\"\(.*\)\"$/\1/p" <<<"$2"; }
ic4=$(var ETCD_INITIAL_CLUSTER "$add4")
assert_contains "member add's ETCD_INITIAL_CLUSTER" "infra4=${PEER[infra4]}" "$ic4"
assert_eq "member add's ETCD_INITIAL_CLUSTER_STATE" existing "$(var ETCD_INITIAL_CLUSTER_STATE "$add4")"

log "infra4: quorumd --name infra4 ... --initial-cluster-state existing --enable-pprof --logger=zap --log-outputs=stderr"
start_raw infra4 env --chdir="$TMP" "$QUORUMD" --name infra4 \
	--listen-client-urls "${CLIENT[infra4]}" --advertise-client-urls "${CLIENT[infra4]}" \
	--listen-peer-urls "${PEER[infra4]}" --initial-advertise-peer-urls "${PEER[infra4]}" \
	--initial-cluster-token "$TOKEN" --initial-cluster-state existing \
	--initial-cluster "$ic4" \
	--enable-pprof --logger=zap --log-outputs=stderr

# listed_started ID NAME: every running member's etcdctl member list shows the member started.
listed_started() {
	local id=$1 name=$2 n
	for n in "${MEMBERS[@]}"; do
		running "$n" || continue
		ectl "$(endpoints "$n")" member list
		[ "$RC" -eq 0 ] || return 1
		grep -qxF "$id, started, $name, ${PEER[$name]}, ${CLIENT[$name]}, false" <<<"$OUT" || return 1
	done
}
wait_until "every member lists infra4 started" 20 listed_started "$infra4_id" infra4
[ -d "$TMP/infra4.etcd/member" ] || fail "infra4 did not make its data dir infra4.etcd in its working directory"
wait_leader 10 infra1 infra2 infra3 infra4

# readable_everywhere KEY VALUE NAME...: a linearizable get through each named member returns it.
readable_everywhere() {
	local key=$1 value=$2 n
	shift 2
	for n in "$@"; do
		ectl "$(endpoints "$n")" get "$key"
		[ "$RC" -eq 0 ] && [ "$OUT" = "$key"$'\n'"$value" ] || return 1
	done
}
ectl_ok "$(endpoints infra4)" put seed/infra4 "written through infra4"
assert_eq "put through infra4" OK "$OUT"
wait_until "seed/infra4 readable through every member" 10 \
	readable_everywhere seed/infra4 "written through infra4" infra1 infra2 infra3 infra4
wait_until "infra4 caught up with data written before it joined" 10 \
	readable_everywhere seed/before infra4 infra4

# ---- infra5: member add, then the seed's export form ----
ectl_ok "$(endpoints infra2)" member add infra5 --peer-urls="${PEER[infra5]}"
add5=$OUT
infra5_id=$(sed -n '1s/^Member *\([0-9a-f]*\) added to cluster .*/\1/p' <<<"$add5")
[ -n "$infra5_id" ] || fail "no member ID in etcdctl's member add output: $add5"
ic5=$(var ETCD_INITIAL_CLUSTER "$add5")
for n in infra1 infra2 infra3 infra4 infra5; do
	assert_contains "member add infra5's ETCD_INITIAL_CLUSTER" "$n=${PEER[$n]}" "$ic5"
done

log "infra5: export ETCD_NAME=infra5 ETCD_INITIAL_CLUSTER=... ETCD_INITIAL_CLUSTER_STATE=existing; quorumd ..."
(
	export ETCD_NAME="infra5"
	export ETCD_INITIAL_CLUSTER="$ic5"
	export ETCD_INITIAL_CLUSTER_STATE=existing
	exec "$QUORUMD" --listen-client-urls "${CLIENT[infra5]}" --advertise-client-urls "${CLIENT[infra5]}" \
		--listen-peer-urls "${PEER[infra5]}" --initial-advertise-peer-urls "${PEER[infra5]}" \
		--data-dir "$TMP/infra5"
) 2>>"$TMP/infra5.log" &
PID[infra5]=$!
track_pid "$!"

wait_until "every member lists infra5 started" 20 listed_started "$infra5_id" infra5
wait_until "every member still lists infra4 started" 10 listed_started "$infra4_id" infra4
wait_leader 10 infra1 infra2 infra3 infra4 infra5
ectl_ok "$(endpoints infra5)" put seed/infra5 "written through infra5"
assert_eq "put through infra5" OK "$OUT"
wait_until "seed/infra5 readable through every member" 10 \
	readable_everywhere seed/infra5 "written through infra5" infra1 infra2 infra3 infra4 infra5
wait_until "infra5 has what was written before it joined" 10 \
	readable_everywhere seed/infra4 "written through infra4" infra5
ectl_ok "$(endpoints infra1 infra2 infra3 infra4 infra5)" member list
assert_eq "members in the list" 5 "$(grep -c ', started, infra[1-5], ' <<<"$OUT")"

# ---- --enable-pprof: /debug/ on infra4's client URL; 404 on infra1 (started without it) ----
http_code() { curl -s -o "$TMP/.body" -w '%{http_code}' --max-time 5 "$1" || true; }
assert_eq "/debug/vars on infra4" 200 "$(http_code "${CLIENT[infra4]}/debug/vars")"
"$PYTHON" - "$TMP/.body" "${PID[infra4]}" "$infra4_id" <<'EOF' || fail "/debug/vars of infra4: $(cat "$TMP/.body")"
import json, sys
v = json.load(open(sys.argv[1]))
def need(cond, what):
    if not cond:
        sys.exit("/debug/vars: " + what)
need(v["name"] == "infra4", "name %r" % v["name"])
need(v["member_id"] == sys.argv[3], "member_id %r" % v["member_id"])
need(v["process"]["pid"] == int(sys.argv[2]), "pid %r" % v["process"]["pid"])
need(v["process"]["threads"] > 1, "process threads")
r = v["raft"]
need(r["term"] >= 1 and r["index"] >= 1 and r["applied_index"] >= 1, "raft %r" % r)
need(r["leader_id"] not in ("", "0"), "leader_id %r" % r["leader_id"])
need(isinstance(r["leader_changes"], int), "leader_changes")
need(v["mvcc"]["revision"] >= 3 and v["mvcc"]["db_size_bytes"] > 0, "mvcc %r" % v["mvcc"])
f = v["wal_fsync"]
need(f["count"] >= 1 and f["total_seconds"] > 0, "wal_fsync %r" % f)
need(sum(f["buckets"].values()) == f["count"], "fsync buckets add up to the count")
t = v["transport"]
need(t["dataplane"] == "udp" and t["packets_in"] > 0 and t["packets_out"] > 0, "transport %r" % t)
need(v["client"]["threads"] == 1 and v["client"]["http_requests"] >= 1, "client %r" % v["client"])
EOF
assert_eq "/debug/pprof/ on infra4" 200 "$(http_code "${CLIENT[infra4]}/debug/pprof/")"
assert_contains "/debug/pprof/ says how to profile" "perf record -g -p PID" "$(cat "$TMP/.body")"
assert_contains "/debug/pprof/ says there is no Go profiler" "no Go runtime" "$(cat "$TMP/.body")"
assert_contains "/debug/pprof/ describes /debug/vars" "/debug/vars answers one JSON object" "$(cat "$TMP/.body")"
assert_eq "/debug/pprof/profile (Go's CPU profile) on infra4" 501 \
	"$(http_code "${CLIENT[infra4]}/debug/pprof/profile")"
assert_eq "/debug/nothing on infra4" 404 "$(http_code "${CLIENT[infra4]}/debug/nothing")"
for path in /debug/vars /debug/pprof/ /debug/pprof/heap; do
	assert_eq "$path on infra1 (no --enable-pprof)" 404 "$(http_code "${CLIENT[infra1]}$path")"
done
assert_eq "/health on infra4" 200 "$(http_code "${CLIENT[infra4]}/health")"
log_has infra4 '"msg":"pprof is enabled' || fail "infra4 did not log that pprof is enabled"

# ---- logs: every line of every member is one JSON object with etcd's zap keys ----
"$PYTHON" - "$TMP"/infra[1-5].log <<'EOF' || fail "a log line is not etcd's zap JSON (see above)"
import json, re, sys
bad = 0
for path in sys.argv[1:]:
    lines = open(path).read().splitlines()
    if not lines:
        print(path + ": empty log"); bad += 1
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError as error:
            print("%s:%d: not JSON (%s): %s" % (path, number, error, line)); bad += 1; continue
        if not isinstance(entry, dict):
            print("%s:%d: not an object: %s" % (path, number, line)); bad += 1; continue
        for key in ("level", "ts", "caller", "msg"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                print("%s:%d: no %s: %s" % (path, number, key, line)); bad += 1
        if entry.get("level") not in ("debug", "info", "warn", "error", "fatal", "panic"):
            print("%s:%d: level %r" % (path, number, entry.get("level"))); bad += 1
        if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", entry.get("ts", "")):
            print("%s:%d: ts %r" % (path, number, entry.get("ts"))); bad += 1
sys.exit(1 if bad else 0)
EOF
log_has infra4 "\"msg\":\"published local member to cluster through raft\",\"member-id\":\"$infra4_id\"" ||
	grep -q "published local member to cluster through raft.*\"member-id\":\"$infra4_id\"" "$TMP/infra4.log" ||
	fail "infra4 did not log publishing itself with its member-id"
grep -q "\"msg\":\"added member\".*\"added-peer-id\":\"$infra5_id\"" "$TMP/infra1.log" ||
	fail "infra1 did not log 'added member' with infra5's added-peer-id"
