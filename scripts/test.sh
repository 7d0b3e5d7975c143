#!/usr/bin/env bash
# Runs every test: installs packages (npm's etcd3 client too), builds build/ (the binaries other tools use),
# the libFuzzer targets in build-fuzz/ (clang), and build-sanitize/ (gcc, ASan+UBSan) where the whole suite
# runs — the fuzz smoke runs included, through -Dfuzz_build_dir. Ends with meson test's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
quorumd_install_packages
quorumd_build build
CC=clang quorumd_build build-fuzz -Dfuzz=true -- tests/fuzz/fuzz-{raft-step,frame,sealed-frame,control-socket,flags,grpc,tls,wal}
quorumd_build build-sanitize -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz_build_dir="$PWD/build-fuzz"
# npm's etcd3 next to each quorumd the tls tests run (build-sanitize/: CI; build/: run-against-etcd.sh), now,
# while the registry is reachable: the tests run where it is not.
quorumd_install_npm_etcd3 build build-sanitize
# A build-sanitize/ configured earlier without the fuzz targets gets them too.
meson configure build-sanitize -Dfuzz_build_dir="$PWD/build-fuzz" >/dev/null
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
exec meson test -C build-sanitize --print-errorlogs --num-processes 2 "$@"
