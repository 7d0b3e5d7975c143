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
# DPDK 22.11's af_packet PMD names its PACKET_FANOUT group (getpid() ^ ifindex) & 0xffff, and fanout groups
# are per network namespace: with every member's port in this one namespace, two members whose pid ^ ifindex
# agree collide, and the second one's port fails to open (EINVAL; seen about once in a few hundred starts).
# One member per host or namespace, as deployed, never meets it. Such a start is retried (a new pid), up to
# four times, and said in the test's log; any other failure is the test's to see.
start_dpdk() {
	local name=$1 ic=$2 state=$3 attempt offset
	shift 3
	member_cmd "$name" "$ic" "$state"
	for attempt in 1 2 3 4 5; do
		offset=$(stat -c %s "$TMP/$name.log" 2>/dev/null || echo 0)
		start_raw "$name" ip netns exec "$SEG" "${MEMBER_CMD[@]}" \
			--dataplane=dpdk --dpdk-args="$(seg_dpdk_args "${INDEX[$name]}")" "$@"
		fanout_collision "$name" "$offset" || return 0
		log "restarting $name: its af_packet port collided with another member's PACKET_FANOUT group (attempt $attempt)"
	done
}

# fanout_collision NAME OFFSET: waits until the member started at log OFFSET has its port up (the quota line
# comes after the dataplane) or has exited; true when it exited on a PACKET_FANOUT collision.
fanout_collision() {
	local name=$1 offset=$2 waited
	for waited in $(seq 1 300); do
		if tail -c +"$((offset + 1))" "$TMP/$name.log" | grep -q '"msg":"enabled backend quota'; then
			return 1
		fi
		if ! running "$name"; then
			tail -c +"$((offset + 1))" "$TMP/$name.log" | grep -q 'could not set PACKET_FANOUT'
			return
		fi
		sleep 0.1
	done
	return 1
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
