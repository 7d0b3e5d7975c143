#!/usr/bin/env bash
# tests/tls/07-peer-capture.sh: what an eavesdropper on the segment sees of peer traffic. In a network
# namespace of its own (unshare --net; root), tcpdump records every packet on the test's ports while three
# members commit puts of a distinctive key and value, with client TLS on both runs: with peer TLS (https://
# peer URLs and peer certificates) neither the key nor the value appears anywhere in the capture, although it
# holds the peers' UDP frames and TCP handshakes; without it (http:// peer URLs, the control) both do. quorumd
# only (etcd's peers speak TLS over TCP, with no UDP to look at). Ports 27600-27699.
if [ -z "${PEER_CAPTURE_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "07-peer-capture: needs root for a network namespace of its own; skipped" >&2; exit 77; }
	command -v tcpdump >/dev/null || { echo "07-peer-capture: no tcpdump (scripts/deps.sh installs it); skipped" >&2; exit 77; }
	# The namespace goes away with the last process in it, failures included.
	exec env PEER_CAPTURE_NETNS=1 unshare --net -- bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi
source "$(dirname "$(realpath "$0")")/lib.sh"
[ "$KIND" = quorumd ] || { echo "07-peer-capture: quorumd only; skipped" >&2; exit 77; }

KEY=capture-key-5e1f0a
VALUE=capture-value-93c7d2

peer_flags() {
	echo "--peer-cert-file $PKI/$1.pem --peer-key-file $PKI/$1-key.pem --peer-trusted-ca-file $PKI/ca.pem"
	echo "--peer-client-cert-auth"
}
tcpdump_listening() { grep -q "listening on lo" "$TMP/tcpdump.err"; }

# capture SCHEME BASE: a three-member cluster with SCHEME peer URLs on ports BASE+10.., puts KEY=VALUE
# through every member, and leaves the capture of ports BASE..BASE+49 in TMP/SCHEME.pcap.
capture() {
	local scheme=$1 base=$2 n extra
	: >"$TMP/tcpdump.err"
	tcpdump -i lo --immediate-mode -nn -U -s 0 -w "$TMP/$scheme.pcap" "portrange $base-$((base + 49))" 2>"$TMP/tcpdump.err" &
	TCPDUMP_PID=$!
	track_pid "$TCPDUMP_PID"
	wait_until "tcpdump listening" 10 tcpdump_listening
	MEMBERS=()
	add_tls_member "c$base-1" $((base + 10))
	add_tls_member "c$base-2" $((base + 20))
	add_tls_member "c$base-3" $((base + 30))
	for n in "${MEMBERS[@]}"; do PEER[$n]=${PEER[$n]/http:/$scheme:}; done
	local ic
	ic=$(initial_cluster "${MEMBERS[@]}")
	local i=0
	for n in "${MEMBERS[@]}"; do
		i=$((i + 1))
		extra=""
		[ "$scheme" = http ] || extra=$(peer_flags "infra$i")
		# shellcheck disable=SC2046,SC2086
		start_member "$n" "$ic" new $(tls_flags "infra$i") $extra
	done
	wait_ready 30 "${MEMBERS[@]}"
	for n in "${MEMBERS[@]}"; do
		expect_out "OK" --endpoints="${CLIENT[$n]}" put "$KEY-$n" "$VALUE"
	done
	expect_out "$VALUE" --endpoints="${CLIENT[${MEMBERS[0]}]}" get "$KEY-${MEMBERS[2]}" --print-value-only
	for n in "${MEMBERS[@]}"; do stop_member "$n"; done
	stop_pids 5 "$TCPDUMP_PID" || fail "tcpdump did not stop"
	local udp tcp
	udp=$(tcpdump -r "$TMP/$scheme.pcap" -nn udp 2>/dev/null | wc -l)
	tcp=$(tcpdump -r "$TMP/$scheme.pcap" -nn tcp 2>/dev/null | wc -l)
	log "$scheme peers: captured $udp UDP and $tcp TCP packets"
	[ "$udp" -gt 20 ] || fail "the $scheme capture holds only $udp UDP packets: peer frames were not captured"
}

# The control: plaintext peers carry the key and value where tcpdump sees them.
capture http 27600
grep -qaF "$KEY" "$TMP/http.pcap" || fail "the control capture (http peers) does not show the key: the capture sees nothing"
grep -qaF "$VALUE" "$TMP/http.pcap" || fail "the control capture (http peers) does not show the value"

capture https 27650
tcp=$(tcpdump -r "$TMP/https.pcap" -nn tcp 2>/dev/null | wc -l)
[ "$tcp" -gt 0 ] || fail "no TCP handshake in the https capture"
if grep -qaF "$KEY" "$TMP/https.pcap" || grep -qaF "$VALUE" "$TMP/https.pcap"; then
	fail "peer TLS: the key or the value is readable in the capture of peer traffic"
fi
assert_no_sanitizer_reports
log "ok"
