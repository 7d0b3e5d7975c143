# tests/net/dpdk_cluster.sh: tests/cluster/lib.sh for members on --dataplane=dpdk inside a private network
# namespace (netns.sh). Sourced by a test called as TEST.sh PATH/quorumd PATH/quorumctl.
#
# Member I's DPDK port is an af_packet vdev on veth qvI, its peer URL http://10.77.0.I:2380; its client
# URL is on the namespace's loopback (127.0.0.1:4I379: the kernel owns no 10.77.0.I address). quorumctl
# reaches a member through its control socket, a path, from outside the namespace.
#
# NET_QUORUMD / NET_QUORUMCTL override the binaries (a sanitizer build's net suite runs the plain build's:
# see dataplane/README.md, Tests).
HERE=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
source "$HERE/netns.sh"
netns_requirements
set -- "${NET_QUORUMD:-$1}" "${NET_QUORUMCTL:-$2}"
source "$HERE/../cluster/lib.sh"

# The namespace goes after every member has stopped; then lib.sh's cleanup reports and removes TMP.
eval "cluster_$(declare -f cleanup)"
cleanup() {
	local rc=$? p
	for p in "${STARTED_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	for p in "${STARTED_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	netns_delete
	(exit "$rc")
	cluster_cleanup
}

declare -A INDEX=()   # member name -> its veth index I

# add_dpdk_member NAME I: declares member NAME on qvI (not started).
add_dpdk_member() {
	add_member "$1" 2380
	INDEX[$1]=$2
	PEER[$1]="http://$(member_ip "$2"):2380"
	CLIENT[$1]="http://127.0.0.1:4${2}379"
}

# start_dpdk NAME INITIAL_CLUSTER STATE [extra quorumd flags...]
start_dpdk() {
	local name=$1 ic=$2 state=$3
	shift 3
	start_raw "$name" ip netns exec "$NS" "$QUORUMD" --name "$name" --data-dir "$TMP/$name" \
		--listen-peer-urls "${PEER[$name]}" --initial-advertise-peer-urls "${PEER[$name]}" \
		--listen-client-urls "${CLIENT[$name]}" --advertise-client-urls "${CLIENT[$name]}" \
		--initial-cluster-token "$TOKEN" --initial-cluster "$ic" --initial-cluster-state "$state" \
		--dataplane=dpdk --dpdk-args="$(dpdk_args "${INDEX[$name]}")" "$@"
}

# start_new_dpdk_cluster NAME...: a new cluster of exactly those members.
start_new_dpdk_cluster() {
	local ic n
	ic=$(initial_cluster "$@")
	for n in "$@"; do start_dpdk "$n" "$ic" new; done
}
