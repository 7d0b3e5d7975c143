#!/usr/bin/env bash
# Installs the Debian 12 packages quorumd builds and tests with, then configures and builds build/.
# Sourced by demo.sh and test.sh so that either one alone sets up a fresh machine.
set -euo pipefail
QUORUMD_PACKAGES=(meson ninja-build gcc pkg-config clang libclang-rt-14-dev python3
  protobuf-c-compiler libprotobuf-c-dev liburing-dev librocksdb-dev libssl-dev libjansson-dev libnghttp2-dev etcd-client etcd-server
  libdpdk-dev iproute2 iputils-ping nftables curl jq dnsmasq-base gnuplot-nox
  openssl golang-go golang-etcd-server-dev libfuse3-dev fuse3 tcpdump)

quorumd_install_packages() {
  local missing=()
  for p in "${QUORUMD_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# quorumd_install_npm_etcd3 BUILD_DIR...: npm's etcd3 client, pinned at the version tests/tls/10-npm-etcd3.sh
# pins, into BUILD_DIR/npm-etcd3 of each build dir (where that test looks, next to the quorumd it tests), with
# Debian's nodejs and npm if node or npm is missing. Done here, before the tests, because the tests run in
# network namespaces with no route to the registry. When it cannot be installed the test skips; that is said
# in one line and is not an error of the set-up.
QUORUMD_NPM_ETCD3_VERSION=1.1.2
quorumd_install_npm_etcd3() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "installing Debian packages: nodejs npm"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; } ||
       ! command -v node >/dev/null || ! command -v npm >/dev/null; then
      echo "npm etcd3@$QUORUMD_NPM_ETCD3_VERSION not installed: node and npm are missing and apt-get could not install them; tls-10-npm-etcd3 will be skipped"
      return 0
    fi
  fi
  local build_dir dir log
  for build_dir in "$@"; do
    dir=$build_dir/npm-etcd3
    if grep -qs "\"version\": *\"$QUORUMD_NPM_ETCD3_VERSION\"" "$dir/node_modules/etcd3/package.json"; then
      continue
    fi
    mkdir -p "$dir"
    log=$dir/npm-install.log
    if timeout 300 npm install --prefix "$dir" --cache "$dir/.npm-cache" --no-audit --no-fund --no-save \
         --loglevel=error "etcd3@$QUORUMD_NPM_ETCD3_VERSION" >"$log" 2>&1; then
      echo "installed npm etcd3@$QUORUMD_NPM_ETCD3_VERSION into $dir"
    else
      echo "npm etcd3@$QUORUMD_NPM_ETCD3_VERSION not installed into $dir (npm failed: $(grep -v "A complete log" "$log" | tail -n 1)); tls-10-npm-etcd3 will be skipped"
    fi
  done
}

# quorumd_build DIR [meson options...] [-- TARGETS...]: configure DIR once, then build it (or only TARGETS).
quorumd_build() {
  local dir=$1; shift
  local options=() targets=()
  while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; targets=("$@"); break; fi
    options+=("$1"); shift
  done
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "${options[@]}"
  fi
  ninja -C "$dir" "${targets[@]}"
}
