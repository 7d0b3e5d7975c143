#!/usr/bin/env bash
# Runs every tests/tls script against the real etcd (Debian's etcd-server, 3.4.x), where the expected outputs come
# from: `tests/tls/run-against-etcd.sh [PATH/etcd]`. Exits 1 if any failed (a skip, exit 77, is not a failure).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
etcd_bin=${1:-$(command -v etcd || true)}
[ -n "$etcd_bin" ] && [ -x "$etcd_bin" ] || { echo "usage: $0 [PATH/etcd]" >&2; exit 2; }
failed=0
for script in "$here"/[0-9]*.sh; do
	rc=0
	output=$("$script" "$etcd_bin" 2>&1) || rc=$?
	# 77: the script is quorumd's own (07, 11, 12), skipped against etcd.
	[ "$rc" = 0 ] || [ "$rc" = 77 ] || failed=1
	grep -v '^{"level"' <<<"$output" | grep -vE '^(WARNING: |[0-9]{4}-[0-9]{2}-[0-9]{2} )' || true
done
exit "$failed"
