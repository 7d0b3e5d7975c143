#!/usr/bin/env bash
# tests/lib/own-netns.sh COMMAND [ARGS...]: runs COMMAND in a network namespace of its own (loopback only), so
# that cluster tests listening on fixed ports can run side by side under meson's --num-processes without ever
# meeting another test's port, process or leftover. As root only (unshare needs it); otherwise COMMAND runs
# as it is (each test's ports are its own block anyway, tests/etcdctl/lib.sh). Nothing outlives COMMAND: the
# namespace goes when its last process exits. Not for tests that need the outside network (npm's registry).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
	exec unshare --net -- bash -c 'ip link set lo up && exec "$@"' own-netns "$@"
fi
exec "$@"
