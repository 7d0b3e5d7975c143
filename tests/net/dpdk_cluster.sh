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
set -- "${NET_QUORUMD:-$1}" "${NET_QUORUMCTL:-$2}"
source "$HERE/../cluster/lib.sh"

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
	member_cmd "$name" "$ic" "$state"
	start_raw "$name" ip netns exec "$SEG" "${MEMBER_CMD[@]}" \
		--dataplane=dpdk --dpdk-args="$(seg_dpdk_args "${INDEX[$name]}")" "$@"
}

# start_new_dpdk_cluster NAME...: a new cluster of exactly those members.
start_new_dpdk_cluster() {
	local ic n
	ic=$(initial_cluster "$@")
	for n in "$@"; do start_dpdk "$n" "$ic" new; done
}

# start_udp NAME I INITIAL_CLUSTER [flags...]: member NAME on the kernel's udp transport at member I's
# address, in namespace seg_ns I (net_isolate I first).
start_udp() {
	local name=$1 i=$2
	member_cmd "$name" "$3" new
	shift 3
	start_raw "$name" ip netns exec "$(seg_ns "$i")" "${MEMBER_CMD[@]}" --dataplane=udp "$@"
}
