#!/usr/bin/env bash
# Issue 9: --discovery-srv. A network namespace of the test's own whose resolver is a dnsmasq on its
# loopback, serving _etcd-server._tcp.qd.test SRV records for m1, m2 and m3 (host names mN.qd.test on
# 127.0.0.1, one port each). The three members start with --discovery-srv qd.test and no --initial-cluster
# and form one cluster: every member lists the three with the SRV URLs and the same IDs, a put through m1
# is read through m3. m3 advertises http://127.0.0.1:PORT rather than its DNS name: etcd finds the local
# member by comparing resolved addresses, and so does quorumd. Then: --discovery-srv-name blue reads
# _etcd-server-blue._tcp; a domain without records, and a member that is not in the records, stop with
# etcd's errors; m1 restarted with the flags still set and the SRV records gone starts from its data and
# logs that discovery is ignored. Ports 471x0 (client) and 471x1 (peer).
source "$(dirname "$0")/lib.sh"

use_netns
add_member m1 47111
add_member m2 47121
add_member m3 47131
add_member b1 47141
add_member x1 47151
add_member m9 47191
records=()
for n in m1 m2 m3; do
	port=${PEER[$n]##*:}
	records+=(--srv-host="_etcd-server._tcp.qd.test,$n.qd.test,$port,0,0" --host-record="$n.qd.test,127.0.0.1")
done
records+=(--srv-host="_etcd-server-blue._tcp.qd.test,b1.qd.test,47141,0,0" --host-record="b1.qd.test,127.0.0.1")
# Names under .test that are not configured get NXDOMAIN (Go's "no such host"), not REFUSED.
start_dnsmasq --local=/test/ "${records[@]}"

# ---- three members from the SRV records ----
start_discovering m1 http://m1.qd.test:47111 --discovery-srv qd.test
start_discovering m2 http://m2.qd.test:47121 --discovery-srv qd.test
start_discovering m3 http://127.0.0.1:47131 --discovery-srv qd.test
wait_ready 30 m1 m2 m3
expected="m1, http://m1.qd.test:47111, http://127.0.0.1:47110
m2, http://m2.qd.test:47121, http://127.0.0.1:47120
m3, http://m3.qd.test:47131, http://127.0.0.1:47130"
list1=$(member_list m1)
assert_eq "member list through m1 (name, peer URL, client URL)" "$expected" \
	"$(awk -F', ' '{ print $3 ", " $4 ", " $5 }' <<<"$list1" | sort)"
assert_eq "member list through m3 (same IDs)" "$list1" "$(member_list m3)"
assert_eq "one cluster ID" "$(cluster_id m1)" "$(cluster_id m3)"
ctl_ok m1 put srv/key from-m1
assert_eq "put through m1" OK "$OUT"
ctl_ok m3 get srv/key
assert_eq "get through m3" $'srv/key\nfrom-m1' "$OUT"
log_has m1 '"msg":"get cluster for etcd-server SRV","service-scheme":"http","service-name":"etcd-server","server-name":"m1","discovery-srv":"qd.test"' ||
	fail "m1 did not log etcd's 'get cluster for etcd-server SRV'"
log_has m3 '"msg":"got bootstrap from DNS for etcd-server","node":"m3=http://m3.qd.test:47131"' ||
	fail "m3 did not find itself (by address) in the SRV records"
log_has m1 '"msg":"failed to resolve during SRV discovery","error":"error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.qd.test on 127.0.0.1:53: no such host"' ||
	fail "m1 did not warn about the missing _etcd-server-ssl records in etcd's words"

# ---- --discovery-srv-name: _etcd-server-SUFFIX._tcp ----
start_discovering b1 http://b1.qd.test:47141 --discovery-srv qd.test --discovery-srv-name blue
wait_ready 20 b1
log_has b1 '"service-name":"etcd-server-blue","server-name":"b1","discovery-srv":"qd.test","advertise-peer-urls":["http://b1.qd.test:47141"],"found-cluster":["b1=http://b1.qd.test:47141"]' ||
	fail "b1 did not read _etcd-server-blue._tcp.qd.test"
assert_eq "b1's cluster: itself only" "b1, http://b1.qd.test:47141" \
	"$(member_list b1 | awk -F', ' '{ print $3 ", " $4 }')"
stop_member b1

# ---- etcd's errors ----
start_discovering x1 http://127.0.0.1:47151 --discovery-srv empty.test
wait_exit x1 15
assert_eq "exit code with no SRV records" 1 "$EXIT_CODE"
log_has x1 "error setting up initial cluster: error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.empty.test on 127.0.0.1:53: no such host; error querying DNS SRV records for _etcd-server lookup _etcd-server._tcp.empty.test on 127.0.0.1:53: no such host" ||
	fail "no records: not etcd's error"
start_discovering m9 http://127.0.0.1:47191 --discovery-srv qd.test
wait_exit m9 15
assert_eq "exit code of a member missing from the records" 1 "$EXIT_CODE"
log_has m9 'error setting up initial cluster: cannot find local etcd member \"m9\" in SRV records' ||
	fail "m9: not etcd's error"

# ---- existing data: discovery is not consulted ----
# The SRV records go away (a lookup would now fail); the host names stay, since the peer URLs use them.
stop_dnsmasq
hosts=()
for n in m1 m2 m3; do hosts+=(--host-record="$n.qd.test,127.0.0.1"); done
start_dnsmasq --local=/test/ "${hosts[@]}"
stop_member m1
start_discovering m1 http://m1.qd.test:47111 --discovery-srv qd.test
wait_ready 30 m1 m2 m3
log_has m1 '"msg":"DNS SRV discovery is ignored since cluster already initialized; valid logs are found"' ||
	fail "restarted m1 did not log that discovery is ignored"
assert_eq "SRV lookups by m1 (first start only)" 1 "$(grep -c '"msg":"get cluster for etcd-server SRV"' "$TMP/m1.log")"
ctl_ok m1 get srv/key
assert_eq "m1 kept its data" $'srv/key\nfrom-m1' "$OUT"
