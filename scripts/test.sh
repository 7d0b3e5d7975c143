#!/usr/bin/env bash
# Runs every test: installs packages, builds build/ (the binaries other tools use) and build-sanitize/
# (ASan+UBSan, where the suite runs), then the libFuzzer smoke runs in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
quorumd_install_packages
quorumd_build build
quorumd_build build-sanitize -Db_sanitize=address,undefined -Db_lundef=false
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
CC=clang quorumd_build build-fuzz -Dfuzz=true -Dwerror=true
exec meson test -C build-sanitize --print-errorlogs --num-processes 2 "$@"
