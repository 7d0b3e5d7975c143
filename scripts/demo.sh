#!/usr/bin/env bash
# The README's demo: a 5-member Raft cluster told as a story (elections, a leader crash, a partition and its
# heal, a learner joining and being promoted, a member removed), run inside the deterministic simulator
# with every safety check on. Later issues replace it with a cluster of real quorumd processes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
quorumd_install_packages
quorumd_build build
exec build/tests/raft-sim --demo --nodes 5 --first-seed 42
