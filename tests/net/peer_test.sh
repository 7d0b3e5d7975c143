# tests/net/peer_test.sh: the start of a test of the transport alone (net-peer, no quorumd), sourced by a
# test called as TEST.sh PATH/net-peer: the segment and address plan (netns.sh) and the harness
# (tests/lib/harness.sh). NET_PEER in the environment overrides the binary, as NET_QUORUMD does for
# dpdk_cluster.sh.
set -euo pipefail
NET_PEER=${NET_PEER:-$(realpath "$1")}
HERE=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
source "$HERE/netns.sh"
TMP_PREFIX=qn
source "$HERE/../lib/harness.sh"
