# tests/discovery/lib.sh: the cluster harness (tests/cluster/lib.sh: members, quorumctl, bounded waits,
# cleanup of the PIDs started) plus what discovery tests need: members started with discovery flags instead
# of --initial-cluster, optionally inside a network namespace whose resolver is a dnsmasq on its loopback.
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../cluster/lib.sh"

NETNS=""        # the namespace this test created, if any
IN_NETNS=()     # prefix that runs a command inside it (empty: the host's namespace)

# The namespace and its resolv.conf go at exit, once the processes running in it are gone.
delete_netns() {
	ip netns delete "$NETNS" 2>/dev/null || true
	rm -rf "/etc/netns/$NETNS"
}

# make_netns: a fresh network namespace (loopback up) whose /etc/resolv.conf (bind-mounted by `ip netns exec`
# from /etc/netns/NAME/) points at 127.0.0.1, where a test's dnsmasq may listen. Its ports are the test's own:
# on a shared machine other programs' outgoing connections take ephemeral ports in 47000-47999 too.
make_netns() {
	NETNS="qdisc-$$"
	at_cleanup delete_netns
	mkdir -p "/etc/netns/$NETNS"
	echo "nameserver 127.0.0.1" >"/etc/netns/$NETNS/resolv.conf"
	ip netns add "$NETNS"
	ip netns exec "$NETNS" ip link set lo up
	IN_NETNS=(ip netns exec "$NETNS")
}

# use_netns: make_netns, or exit 77 (skipped) without root or without dnsmasq.
use_netns() {
	if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1; then
		log "SKIPPED: needs root and iproute2 (a network namespace for the test's own DNS server)"
		exit 77
	fi
	if ! command -v dnsmasq >/dev/null 2>&1; then
		log "SKIPPED: needs dnsmasq (Debian package dnsmasq-base)"
		exit 77
	fi
	make_netns
}

# own_ports: make_netns when root, else the host's namespace (the test still runs).
own_ports() {
	if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null 2>&1; then
		make_netns
	else
		log "not root: members share the host's ports"
	fi
}

# start_dnsmasq DNSMASQ_OPTIONS...: dnsmasq in the namespace, answering only from its options (no upstream,
# no /etc/hosts); waits until it answers. Its PID is DNSMASQ_PID (also in STARTED_PIDS).
start_dnsmasq() {
	"${IN_NETNS[@]}" dnsmasq --no-daemon --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces \
		--log-facility=- "$@" 2>>"$TMP/dnsmasq.log" &
	DNSMASQ_PID=$!
	track_pid "$!"
	wait_until "dnsmasq answers in $NETNS" 10 dnsmasq_answers
}
dnsmasq_answers() {
	"${IN_NETNS[@]}" "$PYTHON" - <<'PY' 2>/dev/null
import socket, struct
query = struct.pack(">HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\x05probe\x04test\x00" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
s.sendto(query, ("127.0.0.1", 53))
s.recv(512)
PY
}
stop_dnsmasq() { stop_pids 10 "$DNSMASQ_PID"; }

# start_discovering NAME ADVERTISED_PEER_URL FLAGS...: member NAME (declared with add_member: it listens on
# its PEER and CLIENT URLs) started with the given discovery flags and no --initial-cluster, inside the
# namespace when there is one; it advertises ADVERTISED_PEER_URL (a DNS name for SRV discovery).
start_discovering() {
	local name=$1 advertised=$2
	shift 2
	start_raw "$name" "${IN_NETNS[@]}" "$QUORUMD" --name "$name" --data-dir "$TMP/$name" \
		--listen-peer-urls "${PEER[$name]}" --initial-advertise-peer-urls "$advertised" \
		--listen-client-urls "${CLIENT[$name]}" --advertise-client-urls "${CLIENT[$name]}" "$@"
}

# member_list NAME: quorumctl's `member list` (etcdctl's simple form) through NAME's control socket, sorted.
member_list() {
	ctl_ok "$1" member list
	sort <<<"$OUT"
}
