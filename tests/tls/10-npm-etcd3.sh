#!/usr/bin/env bash
# tests/tls/10-npm-etcd3.sh: npm's etcd3 client (1.1.2, on @grpc/grpc-js) over TLS against a one-member cluster
# with --client-cert-auth and --client-crl-file: put, get, txn, watch, a lease and member list with the trusted
# certificate; no client certificate, a revoked one and trusting another CA refused (npm-client/client.js). The
# package is in BUILD/npm-etcd3 (BUILD: quorumd's build dir; build/ against etcd; or NPM_ETCD3_DIR), put there
# ahead by scripts/test.sh's set-up (quorumd_install_npm_etcd3 in scripts/deps.sh) since the tests run in network
# namespaces with no route out; when it is not there the test installs it itself if the registry answers. Only
# without node and npm, or with the package absent and the registry unreachable, is the test skipped (exit 77).
# Pinned against etcd 3.4.23. Ports 27740-27749.
source "$(dirname "$(realpath "$0")")/lib.sh"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	log "skipped: needs node and npm"
	exit 77
fi
if [ "$KIND" = quorumd ]; then
	default_dir=$(dirname "$(dirname "$(realpath "$SERVER")")")/npm-etcd3
else
	default_dir=$TLS_DIR/../../build/npm-etcd3
fi
NPM_DIR=${NPM_ETCD3_DIR:-$default_dir}
if ! grep -qs '"version": *"1.1.2"' "$NPM_DIR/node_modules/etcd3/package.json"; then
	mkdir -p "$NPM_DIR"
	if ! timeout 30 npm ping --cache "$NPM_DIR/.npm-cache" --fetch-retries=0 --fetch-timeout=10000 >/dev/null 2>&1; then
		log "skipped: etcd3 1.1.2 is not installed in $NPM_DIR and the npm registry is unreachable" \
			"(install it where the registry answers: . scripts/deps.sh; quorumd_install_npm_etcd3 $(dirname "$NPM_DIR"))"
		exit 77
	fi
	timeout 180 npm install --prefix "$NPM_DIR" --cache "$NPM_DIR/.npm-cache" --no-audit --no-fund --no-save \
		--loglevel=error etcd3@1.1.2 >"$TMP/npm.log" 2>&1 ||
		fail "npm install etcd3 failed with the registry reachable: $(tail -n 5 "$TMP/npm.log")"
fi

add_tls_member solo 27740
# shellcheck disable=SC2046
start_member solo "$(initial_cluster solo)" new $(tls_flags infra1) --client-crl-file "$PKI/ca.crl"
wait_ready 20 solo

RC=0
OUT=$(NODE_PATH="$NPM_DIR/node_modules" node "$TLS_DIR/npm-client/client.js" "${CLIENT[solo]}" "$PKI" \
	2>"$TMP/npm-client.err") || RC=$?
assert_eq "the etcd3 client's exit code (stderr: $(cat "$TMP/npm-client.err"))" 0 "$RC"
assert_eq "what the etcd3 client saw" "$(printf '%s\n' \
	'get: npm-key=npm-value' \
	'txn succeeded: true, now changed by a txn' \
	'watch: PUT npm-watched=seen by the watch' \
	'lease: npm-leased attached true' \
	'lease revoked: npm-leased is null' \
	'members: solo https://127.0.0.1:27739' \
	'no client certificate: refused' \
	'revoked certificate: refused' \
	'trusting another CA: refused')" "$OUT"
expect_rejection_logged solo "tls: client didn't provide a certificate"
expect_rejection_logged solo "transport: certificate serial $(openssl x509 -in "$PKI/revoked-client.pem" -noout -serial |
	sed 's/^serial=//' | tr 'A-F' 'a-f') revoked"
stop_all_and_check solo
log "done"
