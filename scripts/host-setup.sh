#!/usr/bin/env bash
# scripts/host-setup.sh: prepares a bare-metal host for quorumd (installed as sbin/quorumd-host-setup).
#
#   host-setup.sh [--dry-run] [--nic PCI_ADDRESS]... [--hugepages SIZE] [--page-size 2M|1G]
#                 [--user NAME | --no-user]
#
#   --hugepages SIZE   reserve SIZE of hugepages for DPDK (dpdk-hugepages.py --reserve SIZE; e.g. 1G, 2048M)
#   --page-size SIZE   the hugepage size (default: the kernel's, Hugepagesize in /proc/meminfo)
#   --nic ADDRESS      bind this PCI device (0000:3b:00.0) to vfio-pci for --dataplane=dpdk (dpdk-devbind.py);
#                      may be repeated
#   --user NAME        the system user quorumd runs as (default quorumd, as deploy/quorumd@.service says):
#                      created if missing, given /var/lib/quorumd, the NIC's /dev/vfio group (udev rule) and a
#                      hugepage mount of its own (/dev/hugepages-NAME)
#   --no-user          leave users alone
#   --dry-run          check and print the plan; change nothing (no root needed)
#
# Order: every check first; if one fails, a real run stops before changing anything (exit code 1) and says
# what to do; a dry run lists the problems with the plan and exits 0. Then: install Debian's dpdk package if
# its tools are missing, reserve and mount hugepages, load vfio-pci, bind the NICs, create the user. Each
# step is printed as the command it runs, and checked after. Reservations and bindings do not survive a
# reboot: the end says how to make them permanent.
# Exit codes: 0 done (or dry run), 1 a check or a step failed, 2 bad arguments.
# For tests: HOST_SETUP_SYSFS and HOST_SETUP_PROC replace /sys and /proc (a fake tree) for the checks, and
# HOST_SETUP_ETC replaces /etc for the files it writes.
set -euo pipefail

SYS=${HOST_SETUP_SYSFS:-/sys}
PROC=${HOST_SETUP_PROC:-/proc}
ETC=${HOST_SETUP_ETC:-/etc}
DRY_RUN=0
NICS=()
HUGEPAGES=""
PAGE_SIZE=""
USER_NAME=quorumd
PROBLEMS=0

usage() {
	sed -n '4,16s/^# \{0,1\}//p' "$0" >&2
	exit 2
}
die_usage() {
	echo "host-setup: $*" >&2
	usage
}

while [ $# -gt 0 ]; do
	case "$1" in
	--dry-run) DRY_RUN=1 ;;
	--nic) [ $# -ge 2 ] || die_usage "--nic needs a PCI address"; NICS+=("$2"); shift ;;
	--nic=*) NICS+=("${1#*=}") ;;
	--hugepages) [ $# -ge 2 ] || die_usage "--hugepages needs a size"; HUGEPAGES=$2; shift ;;
	--hugepages=*) HUGEPAGES=${1#*=} ;;
	--page-size) [ $# -ge 2 ] || die_usage "--page-size needs a size"; PAGE_SIZE=$2; shift ;;
	--page-size=*) PAGE_SIZE=${1#*=} ;;
	--user) [ $# -ge 2 ] || die_usage "--user needs a name"; USER_NAME=$2; shift ;;
	--user=*) USER_NAME=${1#*=} ;;
	--no-user) USER_NAME="" ;;
	-h | --help) usage ;;
	*) die_usage "unknown argument '$1'" ;;
	esac
	shift
done

# size_kb SIZE: 2M -> 2048, 1G -> 1048576 (K, M, G; binary units, as dpdk-hugepages.py reads them).
size_kb() {
	local n=${1%[KkMmGg]} unit=${1: -1}
	[[ $n =~ ^[0-9]+$ ]] || return 1
	case "$unit" in
	K | k) echo "$n" ;;
	M | m) echo $((n * 1024)) ;;
	G | g) echo $((n * 1024 * 1024)) ;;
	*) return 1 ;;
	esac
}
for nic in "${NICS[@]}"; do
	[[ $nic =~ ^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$ ]] ||
		die_usage "--nic $nic is not a PCI address like 0000:3b:00.0 (see: dpdk-devbind.py --status)"
done
if [ -n "$HUGEPAGES" ]; then
	size_kb "$HUGEPAGES" >/dev/null || die_usage "--hugepages $HUGEPAGES is not a size like 1G or 2048M"
fi
if [ -n "$PAGE_SIZE" ]; then
	size_kb "$PAGE_SIZE" >/dev/null || die_usage "--page-size $PAGE_SIZE is not a size like 2M or 1G"
fi
if [ -n "$USER_NAME" ] && ! [[ $USER_NAME =~ ^[a-z_][a-z0-9_-]*$ ]]; then
	die_usage "--user $USER_NAME is not a valid user name"
fi

ok() { echo "  ok: $*"; }
problem() {
	PROBLEMS=$((PROBLEMS + 1))
	echo "  PROBLEM: $*"
}
note() { echo "  note: $*"; }

# run COMMAND...: a step that changes the host; printed, and run unless this is a dry run.
run() {
	if [ "$DRY_RUN" -eq 1 ]; then
		echo "  would run: $*"
	else
		echo "  run: $*"
		"$@" || { echo "host-setup: failed: $* (exit code $?)" >&2; exit 1; }
	fi
}
# write_file PATH CONTENT: a step that writes a file.
write_file() {
	if [ "$DRY_RUN" -eq 1 ]; then
		echo "  would write $1: $2"
	else
		echo "  write $1: $2"
		[ -d "$(dirname "$1")" ] || mkdir -p "$(dirname "$1")"
		printf '%s\n' "$2" >"$1"
	fi
}

if [ "$DRY_RUN" -eq 1 ]; then
	echo "quorumd host set-up: dry run (nothing is changed)"
else
	echo "quorumd host set-up"
fi

# ---- checks ----
echo "checks:"
if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
	problem "must run as root (it reserves memory, binds drivers and adds a user); --dry-run needs no root"
fi

NEED_DPDK_TOOLS=0
if [ -n "$HUGEPAGES" ] || [ ${#NICS[@]} -gt 0 ]; then
	for tool in dpdk-hugepages.py dpdk-devbind.py; do
		if command -v "$tool" >/dev/null 2>&1; then
			ok "$tool is $(command -v "$tool")"
		else
			NEED_DPDK_TOOLS=1
			note "$tool is missing: Debian's package dpdk has it (installed in the plan below)"
		fi
	done
fi

PAGE_KB=""
PAGES=0
if [ -n "$HUGEPAGES" ]; then
	if [ -n "$PAGE_SIZE" ]; then
		PAGE_KB=$(size_kb "$PAGE_SIZE")
	else
		PAGE_KB=$(sed -n 's/^Hugepagesize: *\([0-9]*\) kB$/\1/p' "$PROC/meminfo" 2>/dev/null || true)
		[ -n "$PAGE_KB" ] || PAGE_KB=2048
		PAGE_SIZE="$((PAGE_KB / 1024))M"
		[ "$PAGE_KB" -ne 1048576 ] || PAGE_SIZE=1G
	fi
	WANT_KB=$(size_kb "$HUGEPAGES")
	PAGES=$(((WANT_KB + PAGE_KB - 1) / PAGE_KB))
	PAGE_DIR="$SYS/kernel/mm/hugepages/hugepages-${PAGE_KB}kB"
	if [ ! -d "$SYS/kernel/mm/hugepages" ]; then
		problem "hugepages: $SYS/kernel/mm/hugepages is missing: this kernel has no hugetlbfs (CONFIG_HUGETLBFS); DPDK then needs --no-huge in --dpdk-args"
	elif [ ! -d "$PAGE_DIR" ]; then
		available=$(cd "$SYS/kernel/mm/hugepages" && ls -d hugepages-*kB 2>/dev/null | sed 's/hugepages-//' | tr '\n' ' ')
		if [ "$PAGE_KB" -eq 1048576 ]; then
			problem "hugepages: this host has no 1G hugepages ($PAGE_DIR is missing; it has: ${available:-none}). 1G pages need the CPU's pdpe1gb flag (grep pdpe1gb /proc/cpuinfo) and are best reserved at boot: add 'default_hugepagesz=1G hugepagesz=1G hugepages=$PAGES' to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot; or use --page-size 2M"
		else
			problem "hugepages: this host has no ${PAGE_SIZE} hugepages ($PAGE_DIR is missing; it has: ${available:-none}); pick one of those with --page-size"
		fi
	else
		have=$(cat "$PAGE_DIR/nr_hugepages" 2>/dev/null || echo 0)
		ok "hugepages of $PAGE_SIZE are supported ($PAGE_DIR); $have reserved now, $PAGES wanted ($HUGEPAGES)"
		if [ "$PAGE_KB" -eq 1048576 ] && [ "$have" -lt "$PAGES" ]; then
			note "1G pages reserved at run time may fail once memory is fragmented; the step below checks the count"
		fi
	fi
fi

if [ ${#NICS[@]} -gt 0 ]; then
	groups=$(ls -A "$SYS/kernel/iommu_groups" 2>/dev/null | wc -l)
	if [ "$groups" -eq 0 ]; then
		problem "IOMMU: $SYS/kernel/iommu_groups is empty, so vfio-pci cannot take a NIC. Enable VT-d (Intel) or AMD-Vi (AMD) in the firmware and add 'intel_iommu=on iommu=pt' (Intel) or 'amd_iommu=on iommu=pt' (AMD) to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot. (vfio's unsafe no-IOMMU mode, /sys/module/vfio/parameters/enable_unsafe_noiommu_mode, works without one but lets the NIC write anywhere in memory.)"
	else
		ok "IOMMU is on ($groups groups in $SYS/kernel/iommu_groups)"
	fi
	for nic in "${NICS[@]}"; do
		device="$SYS/bus/pci/devices/$nic"
		if [ ! -e "$device" ]; then
			problem "NIC $nic: no such PCI device ($device is missing); list them with: dpdk-devbind.py --status"
			continue
		fi
		class=$(cat "$device/class" 2>/dev/null || echo unknown)
		driver=$(basename "$(readlink "$device/driver" 2>/dev/null || echo none)")
		case "$class" in
		0x02*) ok "NIC $nic is a network controller (class $class), driver now: $driver" ;;
		*) problem "NIC $nic is not a network controller (PCI class $class, driver $driver): check the address with dpdk-devbind.py --status" ;;
		esac
		if [ "$driver" != vfio-pci ] && [ -d "$device/net" ]; then
			for ifname in $(ls "$device/net"); do
				if ip route show default 2>/dev/null | grep -qw "dev $ifname"; then
					problem "NIC $nic is $ifname, which carries this host's default route: binding it to vfio-pci would cut the host off. Use a second NIC for quorumd's peers"
				elif [ -n "$(ip -o addr show dev "$ifname" 2>/dev/null)" ] && [ "$SYS" = /sys ]; then
					note "NIC $nic is $ifname, which has addresses; dpdk-devbind.py refuses an active interface: 'ip link set $ifname down' first (the plan does)"
				fi
			done
		fi
		if [ -n "$(ls -A "$SYS/kernel/iommu_groups" 2>/dev/null)" ] && [ ! -e "$device/iommu_group" ]; then
			problem "NIC $nic has no IOMMU group ($device/iommu_group is missing): the IOMMU does not cover it"
		fi
	done
fi

if [ -n "$USER_NAME" ]; then
	if id "$USER_NAME" >/dev/null 2>&1; then
		ok "user $USER_NAME exists"
	else
		note "user $USER_NAME does not exist yet (created in the plan below)"
	fi
fi

# ---- the plan ----
echo "plan:"
if [ "$DRY_RUN" -eq 0 ] && [ "$PROBLEMS" -gt 0 ]; then
	echo "host-setup: $PROBLEMS problem(s) above; nothing was changed" >&2
	exit 1
fi
steps=0
if [ "$NEED_DPDK_TOOLS" -eq 1 ]; then
	steps=$((steps + 1))
	run apt-get install -y --no-install-recommends dpdk
fi
if [ -n "$HUGEPAGES" ]; then
	steps=$((steps + 1))
	run dpdk-hugepages.py --pagesize "$PAGE_SIZE" --reserve "$HUGEPAGES"
	if [ "$DRY_RUN" -eq 0 ]; then
		have=$(cat "$SYS/kernel/mm/hugepages/hugepages-${PAGE_KB}kB/nr_hugepages" 2>/dev/null || echo 0)
		if [ "$have" -lt "$PAGES" ]; then
			echo "host-setup: only $have of $PAGES hugepages of $PAGE_SIZE could be reserved (memory is fragmented or too small): reserve them at boot with 'hugepagesz=$PAGE_SIZE hugepages=$PAGES' on the kernel command line" >&2
			exit 1
		fi
		echo "  checked: $have hugepages of $PAGE_SIZE reserved"
	fi
	if [ -n "$USER_NAME" ]; then
		mount_dir=/dev/hugepages-$USER_NAME
		run mkdir -p "$mount_dir"
		if ! grep -qs " $mount_dir hugetlbfs " "$PROC/mounts"; then
			run mount -t hugetlbfs -o "pagesize=$PAGE_SIZE,mode=0770" nodev "$mount_dir"
		fi
	else
		run dpdk-hugepages.py --mount
	fi
fi
if [ ${#NICS[@]} -gt 0 ]; then
	steps=$((steps + 1))
	run modprobe vfio-pci
	for nic in "${NICS[@]}"; do
		for ifname in $(ls "$SYS/bus/pci/devices/$nic/net" 2>/dev/null); do
			run ip link set "$ifname" down
		done
		run dpdk-devbind.py --bind=vfio-pci "$nic"
		if [ "$DRY_RUN" -eq 0 ]; then
			driver=$(basename "$(readlink "$SYS/bus/pci/devices/$nic/driver" 2>/dev/null || echo none)")
			[ "$driver" = vfio-pci ] || { echo "host-setup: $nic is on driver $driver after binding, not vfio-pci" >&2; exit 1; }
			echo "  checked: $nic is on vfio-pci (IOMMU group $(basename "$(readlink "$SYS/bus/pci/devices/$nic/iommu_group")"))"
		fi
	done
fi
if [ -n "$USER_NAME" ]; then
	steps=$((steps + 1))
	if ! id "$USER_NAME" >/dev/null 2>&1; then
		run useradd --system --user-group --home-dir "/var/lib/$USER_NAME" --no-create-home \
			--shell /usr/sbin/nologin "$USER_NAME"
	fi
	run install -d -o "$USER_NAME" -g "$USER_NAME" -m 0750 "/var/lib/$USER_NAME"
	run install -d -o root -g "$USER_NAME" -m 0750 "$ETC/quorumd"
	if [ -n "$HUGEPAGES" ]; then
		run chown "$USER_NAME:$USER_NAME" "/dev/hugepages-$USER_NAME"
	fi
	if [ ${#NICS[@]} -gt 0 ]; then
		write_file "$ETC/udev/rules.d/90-quorumd-vfio.rules" \
			"SUBSYSTEM==\"vfio\", OWNER=\"$USER_NAME\", GROUP=\"$USER_NAME\", MODE=\"0660\""
		run udevadm control --reload
		run udevadm trigger --subsystem-match=vfio --action=add
	fi
fi
[ "$steps" -gt 0 ] || echo "  nothing to do (give --hugepages, --nic or --user)"

echo "after a reboot:"
[ -z "$HUGEPAGES" ] || echo "  hugepages: add 'hugepagesz=$PAGE_SIZE hugepages=$PAGES' to the kernel command line (or run this again)"
[ ${#NICS[@]} -eq 0 ] || echo "  NIC binding: 'driverctl set-override ADDRESS vfio-pci' (Debian package driverctl) keeps it, or run this again"
echo "next: write /etc/quorumd/NAME.env (deploy/example.env) and 'systemctl enable --now quorumd@NAME'"
if [ "$DRY_RUN" -eq 1 ]; then
	if [ "$PROBLEMS" -gt 0 ]; then
		echo "dry run: $PROBLEMS problem(s) above would stop a real run before it changes anything"
	else
		echo "dry run: no problems found; a real run (as root) would do the above"
	fi
fi
exit 0
