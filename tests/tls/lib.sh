# tests/tls/lib.sh: harness for the client TLS tests: tests/etcdctl/lib.sh (and through it tests/lib/harness.sh:
# members, etcdctl, cleanup, the same script against quorumd or etcd 3.4.23) plus a test PKI and members serving
# https:// client URLs.
# Sourced by each test script, called as
#     TEST.sh PATH/TO/quorumd      or      TEST.sh PATH/TO/etcd
#
# - The PKI (make-pki.sh: a CA, member certificates for 127.0.0.1, client certificates, a certificate from
#   another CA, expired ones) is made in the test's temp dir at start and goes with it.
# - $ETCDCTL, which every helper of tests/etcdctl/lib.sh runs, becomes a wrapper passing --cacert, --cert and
#   --key of the trusted client; ctl_plain runs the real etcdctl with exactly the arguments given, for the
#   clients that must be refused.
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../etcdctl/lib.sh"

TLS_DIR=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
PKI=$TMP/pki
mkdir -p "$PKI"
"$TLS_DIR/make-pki.sh" "$PKI"

unset ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY ETCDCTL_INSECURE_TRANSPORT ETCDCTL_INSECURE_SKIP_TLS_VERIFY
ETCDCTL_BIN=$ETCDCTL
ETCDCTL=$TMP/etcdctl-tls
cat >"$ETCDCTL" <<EOF
#!/bin/sh
exec "$ETCDCTL_BIN" --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client-key.pem" "\$@"
EOF
chmod +x "$ETCDCTL"

# add_tls_member NAME PEER_PORT: like add_member, with an https:// client URL (peers stay http://).
add_tls_member() {
	add_member "$@"
	CLIENT[$1]="https://127.0.0.1:$(($2 - 1))"
}

# tls_flags NAME: the client TLS flags of a member requiring client certificates from the test CA.
tls_flags() {
	echo "--cert-file $PKI/$1.pem --key-file $PKI/$1-key.pem --trusted-ca-file $PKI/ca.pem --client-cert-auth"
}

# ctl_plain ARGS...: the real etcdctl with exactly ARGS (no client certificate unless given); sets OUT, ERR, RC.
ctl_plain() { run_captured "$ETCDCTL_BIN" "$@" </dev/null; }

# expect_refused DESCRIPTION ARGS...: etcdctl ARGS (a get with short timeouts) fails as etcdctl fails against a
# server that refuses its TLS connection: exit 1, no output, the balancer's error, "context deadline exceeded".
expect_refused() {
	local desc=$1
	shift
	ctl_plain --dial-timeout=1s --command-timeout=2s "$@" get foo
	assert_eq "exit code of etcdctl $desc (stderr: $ERR)" 1 "$RC"
	assert_eq "stdout of etcdctl $desc" "" "$OUT"
	assert_eq "last stderr line of etcdctl $desc" "Error: context deadline exceeded" "$(tail -n 1 <<<"$ERR")"
	assert_contains "etcdctl $desc: the balancer's error" \
		'"error":"rpc error: code = DeadlineExceeded desc = latest balancer error: all SubConns are in TransientFailure"' \
		"$ERR"
}

# log_line_has NAME FRAGMENT...: one line of the member's log contains every fragment.
log_line_has() {
	local name=$1 line
	shift
	while IFS= read -r line; do
		local fragment found=1
		for fragment in "$@"; do
			[[ "$line" == *"$fragment"* ]] || { found=0; break; }
		done
		[ "$found" -eq 0 ] || return 0
	done <"$TMP/$name.log"
	return 1
}

# expect_rejection_logged NAME ERROR [prefix]: the member logs etcd's line for a refused TLS connection with that
# error (zap JSON: "msg":"rejected connection", remote-addr, server-name, error), within 5 s; with "prefix" the
# error only starts so.
expect_rejection_logged() {
	local end='"'
	[ "${3:-}" != prefix ] || end=''
	wait_until "$1 logs a rejected connection: $2" 5 \
		log_line_has "$1" '"msg":"rejected connection","remote-addr":"127.0.0.1:' "\"error\":\"$2$end"
}

# curl_status ARGS...: runs curl -sS ARGS; sets OUT (the body), RC (curl's exit code) and ERR.
curl_status() { run_captured curl -sS -m 10 "$@"; }

# stop_all_and_check NAME...: stops the members together (SIGTERM: a sanitizer build's members report at exit;
# together, so that none waits for the others' quorum on its way out) and fails on any sanitizer report in the
# logs.
stop_all_and_check() {
	local n pids=()
	for n in "$@"; do
		[ -z "${PID[$n]:-}" ] || pids+=("${PID[$n]}")
	done
	[ "${#pids[@]}" -eq 0 ] || stop_pids 10 "${pids[@]}" || fail "a member still runs 10 s after SIGKILL"
	for n in "$@"; do unset "PID[$n]"; done
	assert_no_sanitizer_reports
}

# client_cert_curl: curl's flags for the trusted client.
client_cert_curl() {
	echo "--cacert $PKI/ca.pem --cert $PKI/client.pem --key $PKI/client-key.pem"
}
