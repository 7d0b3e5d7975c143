#!/usr/bin/env bash
# tests/tls/03-go-client.sh: etcd's Go client (clientv3 3.4) over TLS against a one-member cluster with
# --client-cert-auth: put, get, txn, watch and member list with the trusted certificate; every other client
# refused with the same error as etcd 3.4.23 gives it. The client (go-client/main.go) is built offline in
# GOPATH mode from Debian's etcd sources (golang-etcd-server-dev); without Go or those sources the test is
# skipped (exit 77). Ports 27300-27399.
source "$(dirname "$(realpath "$0")")/lib.sh"

GO_SOURCES=/usr/share/gocode
if ! command -v go >/dev/null || [ ! -d "$GO_SOURCES/src/go.etcd.io/etcd/clientv3" ]; then
	log "skipped: needs go and etcd's Go sources in $GO_SOURCES (golang-go, golang-etcd-server-dev)"
	exit 77
fi
mkdir -p "$TMP/gopath/src/go-client"
cp "$TLS_DIR/go-client/main.go" "$TMP/gopath/src/go-client/"
# GOPATH mode, no network: every import comes from Debian's sources.
(cd "$TMP/gopath/src/go-client" &&
	GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$TMP/gopath:$GO_SOURCES" nice go build -o "$TMP/go-client" .) ||
	fail "cannot build the Go client"

add_tls_member solo 27310
# shellcheck disable=SC2046
start_member solo "$(initial_cluster solo)" new $(tls_flags infra1)
wait_ready 20 solo

RC=0
OUT=$("$TMP/go-client" "${CLIENT[solo]}" "$PKI" 2>"$TMP/go-client.err") || RC=$?
assert_eq "the Go client's exit code (stderr: $(cat "$TMP/go-client.err"))" 0 "$RC"
assert_eq "what the Go client saw" "$(printf '%s\n' \
	'get: go-key=go-value (version 1)' \
	'txn succeeded: true' \
	'watch: PUT go-watched=changed by a txn' \
	'member: solo [https://127.0.0.1:27309]' \
	'no client certificate: put: context deadline exceeded' \
	'certificate from another CA: put: context deadline exceeded' \
	'expired certificate: put: context deadline exceeded' \
	'trusting another CA: put: context deadline exceeded')" "$OUT"
expect_rejection_logged solo "tls: client didn't provide a certificate"
expect_rejection_logged solo "remote error: tls: bad certificate"
stop_all_and_check solo
log "done"
