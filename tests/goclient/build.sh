#!/usr/bin/env bash
# Builds the Go suite into a test binary: `tests/goclient/build.sh OUTPUT [GOCACHE_DIR]`.
# Offline, in GOPATH mode, against the etcd 3.4 client sources Debian's golang-etcd-server-dev installs
# under /usr/share/gocode (GOCLIENT_GOPATH overrides it). Modules, the proxy and the user's Go settings
# are switched off so the build is the same on every machine and never touches the network.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTPUT [GOCACHE_DIR]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
output=$(realpath -m "$1")
cache=$(realpath -m "${2:-$(dirname "$output")/gocache}")
gopath=${GOCLIENT_GOPATH:-/usr/share/gocode}
command -v go >/dev/null || { echo "$0: go not found (Debian package golang-go)" >&2; exit 2; }
[ -d "$gopath/src/go.etcd.io/etcd/clientv3" ] ||
	{ echo "$0: no etcd client sources in $gopath (Debian package golang-etcd-server-dev)" >&2; exit 2; }
mkdir -p "$cache"
cd "$here"
env GO111MODULE=off GOPATH="$gopath" GOFLAGS= GOENV=off GOPROXY=off GOCACHE="$cache" CGO_ENABLED=0 \
	go test -c -o "$output" .
