#!/usr/bin/env bash
# Runs the Go suite against the real etcd (Debian's etcd-server, 3.4.x), the reference every case was
# checked against: `tests/goclient/run-against-etcd.sh [PATH/etcd] [GO TEST FLAGS...]`.
# Builds the suite first (tests/lib/go-build.sh, into a temp dir; GOCLIENT_GOCACHE keeps Go's build cache between runs)
# unless GOCLIENT_TEST names a built goclient.test. Exits 1 if any case failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
etcd_bin=$(command -v etcd || true)
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
	etcd_bin=$1
	shift
fi
[ -n "$etcd_bin" ] && [ -x "$etcd_bin" ] ||
	{ echo "usage: $0 [PATH/etcd] [go test flags...] (apt-get install etcd-server etcd-client golang-go golang-etcd-server-dev)" >&2; exit 2; }
work=$(mktemp -d /tmp/goclient-etcd.XXXXXX)
trap 'rm -rf "$work"' EXIT
binary=${GOCLIENT_TEST:-}
if [ -z "$binary" ]; then
	binary=$work/goclient.test
	"$here/../lib/go-build.sh" test "$here" "$binary" "${GOCLIENT_GOCACHE:-$work/gocache}" || exit 1
fi
echo "etcd: $("$etcd_bin" --version | head -n 1)"
"$here/goclient.sh" "$etcd_bin" "$binary" "$@"
