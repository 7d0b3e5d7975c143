#!/usr/bin/env bash
# tests/tls/with-pki.sh PROGRAM [ARGS...]: runs PROGRAM with TLS_PKI_DIR naming a fresh temp dir that holds the
# test PKI (make-pki.sh), and removes that dir afterwards, whatever PROGRAM did.
set -euo pipefail
dir=$(mktemp -d /tmp/qtls-pki.XXXXXX)
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$(dirname "$(realpath "$0")")/make-pki.sh" "$dir"
TLS_PKI_DIR=$dir "$@"
