# tests/lib/netns.sh: a private L2 segment in network namespaces, for tests/net, tests/chaos/run,
# bench/compare.sh and bench/dataplane_compare.sh. Sourced; creates nothing until seg_create.
#
#   seg_create NAME COUNT [--isolate] [--member-cidr FORMAT] [BRIDGE_CIDR...]
#       Namespace NAME (the hub) holding bridge ${SEG_IF}br, up, with the BRIDGE_CIDRs on it, and COUNT
#       veth pairs: ${SEG_IF}bI enslaved to the bridge, ${SEG_IF}vI the member's end (I = 1..COUNT), up.
#       --isolate: every vI goes into a namespace NAME-I of its own (see seg_isolate); --member-cidr
#       FORMAT: with --isolate, printf FORMAT I is vI's address (e.g. 10.78.1.%d/24).
#   seg_isolate I [CIDR]   moves vI out of the hub into namespace NAME-I (loopback up, IPv6 off), CIDR on it.
#   in_seg CMD...          runs CMD in the hub; in_member I CMD... runs it in NAME-I.
#   seg_ns I               prints NAME-I.
#   seg_eal_args TAG       the EAL arguments every DPDK process here shares: no PCI, no hugepages, no
#                          shared config, file prefix NAME-TAG (so seg_delete finds its runtime dir), its one
#                          lcore free to run on any CPU (the machines running these have 2 cores).
#   seg_dpdk_args I [TAG]  seg_eal_args TAG (default I) plus af_packet on vI: member I's DPDK port.
#   seg_delete             deletes every namespace seg_create and seg_isolate made (and with them every
#                          veth and the bridge: nothing is created in the caller's own namespace) and the
#                          DPDK runtime dirs NAME-*. Idempotent; call it from the script's cleanup trap,
#                          after the processes running in the namespaces are gone.
#   seg_requirements WHAT  exits 77 (skipped) unless root with iproute2, saying WHAT needs them.
#
# SEG_IF (default q) prefixes the interface names; it only has to differ between segments that share a
# namespace, which these never do. IPv6 is off in every namespace made here: its neighbour discovery and
# MLD frames would otherwise cross the bridge and reach the DPDK ports and the fault rules.
SEG=""
SEG_IF=${SEG_IF:-q}
SEG_NAMESPACES=() # created here, in order
SEG_DPDK=""       # the DPDK runtime dirs to remove (/var/run/dpdk/NAME-*), once the hub is ours

# seg_add_ns NAME: a namespace, recorded only once it exists (a name taken by someone else is never deleted).
seg_add_ns() {
	ip netns add "$1"
	SEG_NAMESPACES+=("$1")
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

seg_create() {
	local count=$2 isolate=0 member_cidr="" bridge_cidrs=() i batch cidr
	SEG=$1
	shift 2
	while [ $# -gt 0 ]; do
		case "$1" in
		--isolate) isolate=1; shift ;;
		--member-cidr) member_cidr=$2; shift 2 ;;
		*) bridge_cidrs+=("$1"); shift ;;
		esac
	done
	seg_add_ns "$SEG"
	SEG_DPDK=$SEG
	# One `ip -batch` per namespace: on a loaded machine every ip process takes a while to start.
	batch="link set lo up
link add ${SEG_IF}br type bridge
link set ${SEG_IF}br up
"
	for cidr in "${bridge_cidrs[@]}"; do batch+="addr add $cidr dev ${SEG_IF}br
"; done
	for ((i = 1; i <= count; i++)); do
		batch+="link add ${SEG_IF}v$i type veth peer name ${SEG_IF}b$i
link set ${SEG_IF}b$i master ${SEG_IF}br
link set ${SEG_IF}b$i up
"
		if [ "$isolate" = 1 ]; then
			seg_add_ns "$(seg_ns "$i")"
			batch+="link set ${SEG_IF}v$i netns $(seg_ns "$i")
"
		else
			batch+="link set ${SEG_IF}v$i up
"
		fi
	done
	ip -n "$SEG" -batch - <<<"$batch"
	[ "$isolate" = 1 ] || return 0
	for ((i = 1; i <= count; i++)); do
		batch="link set lo up
"
		# shellcheck disable=SC2059
		[ -z "$member_cidr" ] || batch+="addr add $(printf "$member_cidr" "$i") dev ${SEG_IF}v$i
"
		# Moving a link to another namespace sets it down: up again in its new home.
		ip -n "$(seg_ns "$i")" -batch - <<<"${batch}link set ${SEG_IF}v$i up"
	done
}

seg_isolate() {
	local i=$1 ns
	ns=$(seg_ns "$i")
	seg_add_ns "$ns"
	in_seg ip link set "${SEG_IF}v$i" netns "$ns"
	ip -n "$ns" -batch - <<EOF
link set lo up
${2:+addr add $2 dev ${SEG_IF}v$i}
link set ${SEG_IF}v$i up
EOF
}

in_seg() { ip netns exec "$SEG" "$@"; }
in_member() { local i=$1; shift; ip netns exec "$(seg_ns "$i")" "$@"; }
seg_ns() { echo "$SEG-$1"; }

seg_eal_args() {
	echo "--lcores=0@(0-$(($(nproc) - 1))) --no-pci --no-huge -m 160 --no-shconf --file-prefix=$SEG-$1 --no-telemetry"
}
seg_dpdk_args() {
	echo "$(seg_eal_args "${2:-$1}") --log-level=lib.eal:notice --vdev=net_af_packet0,iface=${SEG_IF}v$1,framecnt=2048"
}

seg_delete() {
	local i
	# Members' namespaces first: their veth ends go with them, then the hub with the bridge.
	for ((i = ${#SEG_NAMESPACES[@]} - 1; i >= 0; i--)); do
		ip netns del "${SEG_NAMESPACES[$i]}" 2>/dev/null || true
	done
	SEG_NAMESPACES=()
	[ -z "$SEG_DPDK" ] || rm -rf /var/run/dpdk/"$SEG_DPDK"-* 2>/dev/null || true
	SEG_DPDK=""
}

seg_requirements() {
	if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
		echo "SKIP: $1 need root and iproute2 (network namespaces, veth, bridge)" >&2
		exit 77
	fi
}
