#!/usr/bin/env bash
# Runs the tests/gateway scripts against the real etcd (Debian's etcd-server, 3.4.x), where their expected
# bodies come from: `tests/gateway/run-against-etcd.sh [PATH/etcd] [SCRIPT...]` (tests/etcdctl's runner,
# given these scripts).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
etcd_bin=${1:-$(command -v etcd || true)}
shift || true
if [ $# -eq 0 ]; then
	set -- "$here"/[0-9]*.sh
fi
scripts=()
for s in "$@"; do
	case $s in
	*/*) scripts+=("$s") ;;
	*) scripts+=("$here/$(basename "$s" .sh).sh") ;;
	esac
done
exec "$here/../etcdctl/run-against-etcd.sh" "$etcd_bin" "${scripts[@]}"
