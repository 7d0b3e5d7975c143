#!/usr/bin/env bash
# Issue 9: v3 discovery (etcd 3.6's --discovery-endpoints and --discovery-token) through a running
# one-member quorumd cluster, "disco". With /_etcd/registry/tok-a/_config/size = 3: a1 and a2 register and
# keep waiting (no cluster, a log line saying so); a3 comes and the three form one cluster, each registered
# under /_etcd/registry/tok-a/members/<the member ID it runs with>; a fourth member with the same token
# stops with "discovery: cluster is full". A missing size key and a bad one ("three", " 3") give etcd's errors;
# --discovery-cluster-size (quorumd's own) writes the size key when absent; a member still waiting stops
# on SIGTERM. With disco stopped, a1 restarted with its discovery flags starts from its data and logs that
# the token is ignored, and with its identity file removed (WAL records left) it stops rather than asking
# discovery. Last, the real etcd (3.4) as the discovery service, when installed. As root the
# test runs in a network namespace of its own (ports nobody else takes).
# Ports 473x0 (client) and 473x1 (peer).
source "$(dirname "$0")/lib.sh"

own_ports
add_member disco 47301
start_raw disco "${IN_NETNS[@]}" "$QUORUMD" --name disco --data-dir "$TMP/disco" \
	--listen-peer-urls "${PEER[disco]}" --initial-advertise-peer-urls "${PEER[disco]}" \
	--listen-client-urls "${CLIENT[disco]}" --advertise-client-urls "${CLIENT[disco]}" \
	--initial-cluster "disco=${PEER[disco]}"
wait_ready 20 disco
DISCO=${CLIENT[disco]}
ctl_ok disco put /_etcd/registry/tok-a/_config/size 3
add_member a1 47311
add_member a2 47321
add_member a3 47331
add_member a4 47341
add_member b1 47351
add_member b2 47361
add_member c1 47371
add_member w1 47381
v3() { start_discovering "$1" "${PEER[$1]}" --discovery-endpoints "$DISCO" --discovery-token "$2" "${@:3}"; }

# registered TOKEN: the registration keys under /_etcd/registry/TOKEN/members, one a line.
registered() {
	"$QUORUMCTL" --control-socket "$(sock disco)" --command-timeout=2s get "/_etcd/registry/$1/members" \
		--prefix 2>/dev/null | awk 'NR % 2 == 1'
}
registered_count() { [ "$(registered "$1" | grep -c .)" -eq "$2" ]; }

# ---- too small a group: two of three wait ----
v3 a1 tok-a
v3 a2 tok-a
wait_until "a1 and a2 registered" 15 registered_count tok-a 2
wait_until "a1 says it waits" 10 log_has a1 '"msg":"waiting for peers from discovery service"'
wait_until "a2 says it waits" 10 log_has a2 '"msg":"waiting for peers from discovery service"'
log_has a2 '"discovery-token":"tok-a","discovery-endpoints":"http://127.0.0.1:47300","clusterSize":3' ||
	fail "a2's waiting line lacks etcd's fields"
for n in a1 a2; do
	running "$n" || fail "$n stopped while waiting for its peers"
	! log_has "$n" '"msg":"starting a new cluster"' || fail "$n started a cluster with 2 of 3 members"
	[ -z "$(status_field "$n" 5)" ] || fail "$n answers endpoint status (a cluster) before its peers came"
done

# ---- the third arrives: one cluster of three ----
v3 a3 tok-a
wait_ready 30 a1 a2 a3
list=$(member_list a1)
assert_eq "member list through a1 (name, peer URL)" "a1, ${PEER[a1]}
a2, ${PEER[a2]}
a3, ${PEER[a3]}" "$(awk -F', ' '{ print $3 ", " $4 }' <<<"$list" | sort)"
assert_eq "member list through a3" "$list" "$(member_list a3)"
ctl_ok a1 put v3/key from-a1
ctl_ok a3 get v3/key
assert_eq "get through a3" $'v3/key\nfrom-a1' "$OUT"
# Each member registered under the ID it runs with.
expected_keys=$(awk -F', ' '{ print "/_etcd/registry/tok-a/members/" $1 }' <<<"$list" | sort)
assert_eq "registration keys are the member IDs" "$expected_keys" "$(registered tok-a | sort)"
ctl_ok disco get "/_etcd/registry/tok-a/members/$(awk -F', ' '$3 == "a2" { print $1 }' <<<"$list")" \
	--print-value-only
assert_eq "a2's registration value" "a2=${PEER[a2]}" "$OUT"
log_has a1 '"msg":"discovery joined cluster successfully"' || fail "a1 did not log etcd's success line"

# ---- a fourth member with the same token ----
v3 a4 tok-a
wait_exit a4 20
assert_eq "exit code of a fourth member" 1 "$EXIT_CODE"
log_has a4 "failed to join discovery cluster (discovery: cluster is full)" || fail "a4: not etcd's error"
log_has a4 '"msg":"do not reuse discovery token; generate a new one to bootstrap a cluster"' ||
	fail "a4 did not log etcd's advice"

# ---- the size key: missing, bad ----
v3 b1 tok-none
wait_exit b1 20
assert_eq "exit code without a size key" 1 "$EXIT_CODE"
log_has b1 "failed to join discovery cluster (discovery: size key not found)" || fail "b1: not etcd's error"
ctl_ok disco put /_etcd/registry/tok-bad/_config/size three
v3 b2 tok-bad
wait_exit b2 20
assert_eq "exit code with a bad size key" 1 "$EXIT_CODE"
log_has b2 "failed to join discovery cluster (discovery: size key is bad)" || fail "b2: not etcd's error"
# Go's strconv.ParseInt takes no leading blank, where strtoll alone would read " 3" as 3.
ctl_ok disco put /_etcd/registry/tok-blank/_config/size " 3"
lines=$(wc -l <"$TMP/b2.log")
v3 b2 tok-blank
wait_exit b2 20
assert_eq "exit code with a size key of ' 3'" 1 "$EXIT_CODE"
assert_contains "b2's log with the size key ' 3'" "failed to join discovery cluster (discovery: size key is bad)" \
	"$(tail -n +$((lines + 1)) "$TMP/b2.log")"

# ---- --discovery-cluster-size writes the size key when it is absent ----
v3 c1 tok-c --discovery-cluster-size 1
wait_ready 20 c1
ctl_ok disco get /_etcd/registry/tok-c/_config/size --print-value-only
assert_eq "size key written from --discovery-cluster-size" 1 "$OUT"
stop_member c1

# ---- a member waiting for its peers stops on SIGTERM ----
ctl_ok disco put /_etcd/registry/tok-w/_config/size 2
v3 w1 tok-w
wait_until "w1 waits" 15 log_has w1 '"msg":"waiting for peers from discovery service"'
kill "${PID[w1]}"
wait_exit w1 5
assert_eq "exit code of a waiting member stopped by SIGTERM" 1 "$EXIT_CODE"

# ---- existing data: the discovery service is not consulted ----
stop_member disco
stop_member a1
v3 a1 tok-a
wait_ready 30 a1 a2 a3
log_has a1 '"msg":"discovery token is ignored since cluster already initialized; valid logs are found"' ||
	fail "restarted a1 did not log that the token is ignored"
assert_eq "v3 discovery runs by a1 (first start only)" 1 \
	"$(grep -c '"msg":"Bootstrapping cluster using v3 discovery."' "$TMP/a1.log")"
ctl_ok a1 get v3/key
assert_eq "a1 kept its data" $'v3/key\nfrom-a1' "$OUT"
stop_member a2
stop_member a3
stop_member a1
# WAL records without member/identity: not a new data dir, so discovery is not asked (the discovery
# service is down: a member that asked it would keep retrying instead of exiting).
rm "$TMP/a1/member/identity"
v3 a1 tok-a
wait_exit a1 20
assert_eq "exit code with WAL records but no identity" 1 "$EXIT_CODE"
log_has a1 'has WAL records but' || fail "a1 without its identity: no error about the data dir"
assert_eq "v3 discovery runs by a1 (still the first start only)" 1 \
	"$(grep -c '"msg":"Bootstrapping cluster using v3 discovery."' "$TMP/a1.log")"

# ---- the real etcd as the discovery service ----
if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
	start_raw etcd "${IN_NETNS[@]}" etcd --name etcd --data-dir "$TMP/etcd-data" \
		--listen-peer-urls http://127.0.0.1:47391 --initial-advertise-peer-urls http://127.0.0.1:47391 \
		--listen-client-urls http://127.0.0.1:47390 --advertise-client-urls http://127.0.0.1:47390 --initial-cluster etcd=http://127.0.0.1:47391
	etcd_put() {
		ETCDCTL_API=3 "${IN_NETNS[@]}" etcdctl --endpoints http://127.0.0.1:47390 put "$@" >/dev/null 2>&1
	}
	wait_until "etcd serves" 20 etcd_put /_etcd/registry/tok-e/_config/size 2
	add_member e1 47311
	add_member e2 47321
	DISCO=http://127.0.0.1:47390
	v3 e1 tok-e
	v3 e2 tok-e
	wait_ready 30 e1 e2
	log_has e2 '"msg":"discovery joined cluster successfully"' || fail "e2 did not join through etcd"
	keys=$(ETCDCTL_API=3 "${IN_NETNS[@]}" etcdctl --endpoints "$DISCO" get --prefix \
		/_etcd/registry/tok-e/members --keys-only | grep -c .)
	assert_eq "registrations in etcd" 2 "$keys"
else
	log "SKIPPED: the real etcd as the discovery service (no etcd/etcdctl; Debian etcd-server, etcd-client)"
fi
