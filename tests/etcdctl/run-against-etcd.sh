#!/usr/bin/env bash
# Runs every tests/etcdctl script against the real etcd (Debian's etcd-server, 3.4.x), the reference the
# expected outputs were taken from: `tests/etcdctl/run-against-etcd.sh [PATH/etcd] [SCRIPT...]` (a SCRIPT with a
# slash is a path, so other suites' scripts run through it too: tests/gateway/run-against-etcd.sh).
# Prints each script's verdict and time, and exits 1 if any failed. Needs etcd and etcdctl on PATH or given.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
etcd_bin=${1:-$(command -v etcd || true)}
[ -n "$etcd_bin" ] && [ -x "$etcd_bin" ] || { echo "usage: $0 [PATH/etcd] [SCRIPT...] (apt-get install etcd-server etcd-client)" >&2; exit 2; }
shift || true
command -v etcdctl >/dev/null || { echo "$0: etcdctl not found (apt-get install etcd-client)" >&2; exit 2; }
if [ $# -gt 0 ]; then
	scripts=("$@")
else
	scripts=()
	for s in "$here"/[0-9]*.sh; do scripts+=("$(basename "$s" .sh)"); done
fi
echo "etcd: $("$etcd_bin" --version | head -n 1); $(etcdctl version | head -n 1)"
failed=()
total_start=$SECONDS
for s in "${scripts[@]}"; do
	# A path (another suite's script, tests/gateway's) runs as given; a name is one of ours.
	case $s in
	*/*) script=$s ;;
	*) script=$here/$(basename "$s" .sh).sh ;;
	esac
	s=$(basename "$s" .sh)
	start=$SECONDS
	log=$(mktemp "/tmp/etcdctl-$s.XXXXXX.log")
	if "$script" "$etcd_bin" >"$log" 2>&1; then
		printf 'PASS %-26s %4d s\n' "$s" $((SECONDS - start))
		rm -f "$log"
	else
		printf 'FAIL %-26s %4d s (output: %s)\n' "$s" $((SECONDS - start)) "$log"
		grep -v '^{"level"' "$log" | tail -n 25 | sed 's/^/    /'
		failed+=("$s")
	fi
done
echo "total: $((SECONDS - total_start)) s; ${#failed[@]} failed${failed[*]:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
