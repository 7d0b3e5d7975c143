#!/usr/bin/env bash
# Builds a Go program or test suite written against etcd's own Go client, offline, in GOPATH mode, against the
# etcd 3.4 client sources Debian's golang-etcd-server-dev installs under /usr/share/gocode (GOCLIENT_GOPATH
# overrides it):
#     tests/lib/go-build.sh test|command PACKAGE_DIR OUTPUT [GOCACHE_DIR]
# `test` compiles PACKAGE_DIR's tests into a test binary (go test -c: tests/goclient), `command` its main
# package into a program (go build: tests/regressions/tool). Modules, the proxy and the user's Go settings
# are switched off so the build is the same on every machine and never touches the network.
set -euo pipefail
[ $# -ge 3 ] && { [ "$1" = test ] || [ "$1" = command ]; } ||
	{ echo "usage: $0 test|command PACKAGE_DIR OUTPUT [GOCACHE_DIR]" >&2; exit 2; }
mode=$1
package_dir=$(realpath "$2")
output=$(realpath -m "$3")
cache=$(realpath -m "${4:-$(dirname "$output")/gocache}")
gopath=${GOCLIENT_GOPATH:-/usr/share/gocode}
command -v go >/dev/null || { echo "$0: go not found (Debian package golang-go)" >&2; exit 2; }
[ -d "$gopath/src/go.etcd.io/etcd/clientv3" ] ||
	{ echo "$0: no etcd client sources in $gopath (Debian package golang-etcd-server-dev)" >&2; exit 2; }
mkdir -p "$cache"
cd "$package_dir"
if [ "$mode" = test ]; then build=(test -c); else build=(build); fi
env GO111MODULE=off GOPATH="$gopath" GOFLAGS= GOENV=off GOPROXY=off GOCACHE="$cache" CGO_ENABLED=0 \
	go "${build[@]}" -o "$output" .
