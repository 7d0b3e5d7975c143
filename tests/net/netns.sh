# tests/net/netns.sh: a private L2 segment for the net tests, sourced by each script.
#
#   netns_create N     namespace qn-PID with bridge qbr (10.77.0.254/24, the kernel's own address on the
#                      segment) and N veth pairs: qvI is member I's end (its DPDK af_packet port, or its
#                      kernel address for a udp member), qbI is enslaved to the bridge.
#   in_ns CMD...       runs CMD inside the namespace.
#   member_ip I        10.77.0.I
#   dpdk_args I        EAL arguments for member I: af_packet on qvI, no hugepages, no shared files, the
#                      lcore free to run on any CPU. (--in-memory would be tidier but EAL refuses it
#                      with --no-huge; each member gets its own --file-prefix, removed by netns_delete.)
#   netns_delete       deletes the namespace and with it every interface in it (idempotent; call it
#                      from the script's cleanup, after its processes are gone).
NS="qn-$$"
NETNS_CREATED=0

in_ns() { ip netns exec "$NS" "$@"; }
member_ip() { echo "10.77.0.$1"; }
dpdk_args() {
	local cpus
	cpus=$(($(nproc) - 1))
	echo "--lcores=0@(0-$cpus) --no-pci --no-huge -m 160 --no-shconf --file-prefix=$NS-$1 --no-telemetry --log-level=lib.eal:notice --vdev=net_af_packet0,iface=qv$1,framecnt=2048"
}

netns_create() {
	local n=$1 i
	ip netns add "$NS"
	NETNS_CREATED=1
	in_ns ip link set lo up
	in_ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	in_ns ip link add qbr type bridge
	in_ns ip link set qbr up
	in_ns ip addr add 10.77.0.254/24 dev qbr
	for ((i = 1; i <= n; i++)); do
		in_ns ip link add "qv$i" type veth peer name "qb$i"
		in_ns ip link set "qb$i" master qbr
		in_ns ip link set "qb$i" up
		in_ns ip link set "qv$i" up
	done
}

# netns_isolate I: moves qvI into a namespace of its own, $NS-I, with the kernel address 10.77.0.I/24 on
# it, for a member on the kernel's udp transport (in $NS it would reach the other kernel addresses over
# loopback, not over its veth). Run the member with in_member_ns I CMD...
netns_isolate() {
	ip netns add "$NS-$1"
	ISOLATED+=("$NS-$1")
	ip -n "$NS-$1" link set lo up
	ip netns exec "$NS-$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	in_ns ip link set "qv$1" netns "$NS-$1"
	ip -n "$NS-$1" addr add "$(member_ip "$1")/24" dev "qv$1"
	ip -n "$NS-$1" link set "qv$1" up
}
in_member_ns() { local i=$1; shift; ip netns exec "$NS-$i" "$@"; }
ISOLATED=()

netns_delete() {
	local n
	for n in "${ISOLATED[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	ISOLATED=()
	if [ "$NETNS_CREATED" = 1 ]; then
		ip netns del "$NS" 2>/dev/null || true
		rm -rf /var/run/dpdk/"$NS"-* 2>/dev/null || true
		NETNS_CREATED=0
	fi
}

# netns_requirements: exit 77 (skip) unless root with ip netns.
netns_requirements() {
	if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
		echo "SKIP: tests/net need root and iproute2 (network namespaces, veth, bridge)" >&2
		exit 77
	fi
}
