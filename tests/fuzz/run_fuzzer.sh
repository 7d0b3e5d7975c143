#!/bin/sh
# tests/fuzz/run_fuzzer.sh: a time-boxed libFuzzer run as a meson test.
# Usage: run_fuzzer.sh FUZZER SEED_CORPUS_DIR SECONDS
# The fuzzer writes the inputs it finds into its first corpus directory, so it gets a scratch copy of
# the seed corpus (the committed one stays as it is). A crash leaves crash-* in the scratch directory,
# whose path is printed, and fails the test.
set -eu
fuzzer=$1 seeds=$2 seconds=$3
if [ ! -x "$fuzzer" ]; then
	echo "run_fuzzer.sh: $fuzzer is missing: build the fuzz build dir (CC=clang meson setup ... -Dfuzz=true) first" >&2
	exit 1
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-corpus.XXXXXX")
# The target's own files (sockets, WAL directories) go to a TMPDIR of their own, removed afterwards:
# libFuzzer ends a timed run without atexit handlers.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-tmp.XXXXXX")
cp "$seeds"/* "$scratch"/
mkdir "$scratch/artifacts"
echo "run_fuzzer.sh: $fuzzer for ${seconds}s over $scratch" >&2
status=0
TMPDIR=$tmp "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$scratch/artifacts/" "$scratch" || status=$?
rm -rf "$tmp"
if [ "$status" -ne 0 ]; then
	echo "run_fuzzer.sh: the fuzzer failed (status $status); the input is in $scratch/artifacts/:" >&2
	ls -l "$scratch/artifacts" >&2
	echo "reproduce: $fuzzer $scratch/artifacts/<file>" >&2
	exit "$status"
fi
rm -rf "$scratch"
