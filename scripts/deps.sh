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
