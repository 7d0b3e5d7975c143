# tests/net/netns.sh: the net tests' segment and address plan, sourced by each script before the harness.
# The segment is tests/lib/netns.sh's: hub namespace qn-PID (in_seg), bridge qbr with the kernel's own
# address 10.77.0.254/24, veth pairs qvI (member I's end: its DPDK af_packet port, seg_dpdk_args I) and qbI
# (on the bridge). Member I's address is 10.77.0.I. Skips (exit 77) without root.
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../lib/netns.sh"
seg_requirements "tests/net"

member_ip() { echo "10.77.0.$1"; }

# net_segment N: the segment with N veth pairs, deleted at exit once the test's processes are gone (call it
# after sourcing tests/lib/harness.sh).
net_segment() {
	at_cleanup seg_delete
	seg_create "qn-$$" "$1" 10.77.0.254/24
}

# net_isolate I: qvI moved into a namespace of its own (seg_ns I) with 10.77.0.I/24 on it, for a member on
# the kernel's udp transport: in the hub it would reach the other kernel addresses over loopback, not over
# its veth.
net_isolate() { seg_isolate "$1" "$(member_ip "$1")/24"; }
