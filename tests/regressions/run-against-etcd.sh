#!/usr/bin/env bash
# Runs every named regression test (or the ones given) against the real etcd 3.4.23, the reference for what
# each asserts: `tests/regressions/run-against-etcd.sh [PATH/etcd] [SCRIPT...]`. Builds regress-client first
# (REGRESS_GOCACHE keeps Go's build cache between runs). power-loss-lazyfs takes the lazy file system from
# LAZYFS (default: build/tests/lazyfs/lazyfs). Prints each verdict and time; exits 1 if any failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
etcd_bin=${1:-$(command -v etcd || true)}
[ -n "$etcd_bin" ] && [ -x "$etcd_bin" ] || { echo "usage: $0 [PATH/etcd] [SCRIPT...]" >&2; exit 2; }
shift || true
work=$(mktemp -d /tmp/regressions-etcd.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$here/../lib/go-build.sh" command "$here/tool" "$work/regress-client" "${REGRESS_GOCACHE:-$work/gocache}" || exit 1
lazyfs=${LAZYFS:-$here/../../build/tests/lazyfs/lazyfs}
if [ $# -gt 0 ]; then scripts=("$@"); else scripts=("$here"/etcd-*.sh "$here"/lease-expiry-storm.sh "$here"/power-loss-lazyfs.sh "$here"/watch-progress-bookmarkable.sh); fi
failed=0
for s in "${scripts[@]}"; do
	s=$(basename "$s" .sh)
	start=$SECONDS
	if "$here/$s.sh" "$etcd_bin" "$work/regress-client" "$lazyfs" >"$work/$s.log" 2>&1; then
		printf 'PASS %-42s %4d s\n' "$s" $((SECONDS - start))
	else
		printf 'FAIL %-42s %4d s\n' "$s" $((SECONDS - start))
		grep -v '^{"level"' "$work/$s.log" | tail -n 25 | sed 's/^/    /'
		failed=$((failed + 1))
	fi
done
echo "$failed failed"
[ "$failed" -eq 0 ]
