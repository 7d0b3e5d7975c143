#!/usr/bin/env bash
# tests/deploy/01-deploy.sh SOURCE_DIR BUILD_DIR: the deployment pieces, as far as this machine allows (no NIC
# to bind, maybe no IOMMU, no root needed).
# - scripts/host-setup.sh --dry-run --nic 0000:00:00.0 --hugepages 1G on this host: exit code 0 and the plan
#   (dpdk-hugepages.py, modprobe vfio-pci, dpdk-devbind.py), whatever the host has.
# - The same against fake /sys and /proc trees (HOST_SETUP_SYSFS, HOST_SETUP_PROC): no IOMMU and no 1G
#   pages give their messages; a host with both passes the checks; a missing PCI device is named; the trees
#   are unchanged afterwards; a real (not dry) run with a failing check exits 1 and runs nothing (every
#   command it could run is a stub that records calls). Bad arguments exit 2.
# - meson install --destdir of BUILD_DIR: binaries, unit (ExecStart rewritten to the prefix), man pages,
#   README, example.env, sbin/quorumd-host-setup.
# - systemd-analyze verify of the installed unit (ExecStart pointed into the destdir, MANPATH to its man
#   pages) and of deploy/quorumd@.service itself, when systemd-analyze exists; otherwise SKIPPED with the
#   reason (never counted as passed).
# - deploy/example.env names only variables that quorumd --help lists; README.md's flag table has a row for
#   every flag in quorumd --help.
set -euo pipefail
if [ $# -ne 2 ]; then
	echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2
	exit 2
fi
SRC=$(realpath "$1")
BUILD=$(realpath "$2")
SETUP="$SRC/scripts/host-setup.sh"
TMP=$(mktemp -d /tmp/qd-deploy.XXXXXX)
PASSED=0
SKIPPED=0
cleanup() {
	local rc=$?
	rm -rf "$TMP"
	if [ "$rc" -eq 0 ]; then
		echo "PASS: 01-deploy ($PASSED checks passed, $SKIPPED skipped)"
	else
		echo "FAIL: 01-deploy (exit code $rc)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT

fail() {
	echo "ASSERTION FAILED: $*" >&2
	exit 1
}
pass() { PASSED=$((PASSED + 1)); }
# contains DESCRIPTION NEEDLE HAYSTACK
contains() {
	case "$3" in
	*"$2"*) pass ;;
	*) printf 'ASSERTION FAILED: %s\n--- expected to contain ---\n%s\n--- actual ---\n%s\n' "$1" "$2" "$3" >&2; exit 1 ;;
	esac
}
lacks() {
	case "$3" in
	*"$2"*) printf 'ASSERTION FAILED: %s\n--- expected not to contain ---\n%s\n--- actual ---\n%s\n' "$1" "$2" "$3" >&2
	        exit 1 ;;
	*) pass ;;
	esac
}
equals() {
	[ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
	pass
}
# setup ARGS...: runs host-setup.sh; sets OUT (stdout and stderr) and RC.
setup() {
	RC=0
	OUT=$("$SETUP" "$@" 2>&1) || RC=$?
}

# ---- host-setup.sh on this host, the brief's command ----
setup --dry-run --nic 0000:00:00.0 --hugepages 1G
equals "exit code of host-setup.sh --dry-run on this host (output: $OUT)" 0 "$RC"
contains "dry run header" "dry run (nothing is changed)" "$OUT"
contains "hugepages step" "would run: dpdk-hugepages.py --pagesize " "$OUT"
contains "hugepages amount" " --reserve 1G" "$OUT"
contains "vfio module step" "would run: modprobe vfio-pci" "$OUT"
contains "bind step" "would run: dpdk-devbind.py --bind=vfio-pci 0000:00:00.0" "$OUT"
contains "user step" "quorumd" "$OUT"
contains "summary line" "dry run: " "$(tail -n 1 <<<"$OUT")"
lacks "a dry run runs nothing" "  run: " "$OUT"

# ---- fake hosts ----
# Host A: no IOMMU, only 2M pages, a NIC at 0000:3b:00.0 on ixgbe.
mkdir -p "$TMP/a/sys/kernel/iommu_groups" "$TMP/a/sys/kernel/mm/hugepages/hugepages-2048kB" \
	"$TMP/a/sys/bus/pci/devices/0000:3b:00.0" "$TMP/a/sys/bus/pci/drivers/ixgbe" "$TMP/a/proc"
echo 0 >"$TMP/a/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
echo 0x020000 >"$TMP/a/sys/bus/pci/devices/0000:3b:00.0/class"
ln -s ../../drivers/ixgbe "$TMP/a/sys/bus/pci/devices/0000:3b:00.0/driver"
printf 'MemTotal:       16384000 kB\nHugepagesize:       2048 kB\n' >"$TMP/a/proc/meminfo"
: >"$TMP/a/proc/mounts"
# Host B: as A, with an IOMMU (one group, the NIC in it) and 1G pages.
cp -a "$TMP/a" "$TMP/b"
mkdir -p "$TMP/b/sys/kernel/iommu_groups/17/devices" "$TMP/b/sys/kernel/mm/hugepages/hugepages-1048576kB"
echo 0 >"$TMP/b/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"
ln -s ../../../../kernel/iommu_groups/17 "$TMP/b/sys/bus/pci/devices/0000:3b:00.0/iommu_group"
tree_state() { (cd "$TMP" && find a b -printf '%p %y %l\n' | sort && find a b -type f -exec md5sum {} + | sort); }
before=$(tree_state)

fake() { # fake a|b ARGS...
	local host=$1
	shift
	RC=0
	OUT=$(HOST_SETUP_SYSFS="$TMP/$host/sys" HOST_SETUP_PROC="$TMP/$host/proc" "$SETUP" "$@" 2>&1) || RC=$?
}

fake a --dry-run --nic 0000:3b:00.0 --hugepages 2G --page-size 1G
equals "exit code of a dry run with problems (output: $OUT)" 0 "$RC"
contains "no IOMMU" "PROBLEM: IOMMU: $TMP/a/sys/kernel/iommu_groups is empty, so vfio-pci cannot take a NIC" "$OUT"
contains "how to enable the IOMMU" "'intel_iommu=on iommu=pt'" "$OUT"
contains "no 1G pages" "PROBLEM: hugepages: this host has no 1G hugepages" "$OUT"
contains "what 1G pages need" "pdpe1gb" "$OUT"
contains "how to reserve 1G pages at boot" "hugepagesz=1G hugepages=2" "$OUT"
contains "the NIC is recognised" "ok: NIC 0000:3b:00.0 is a network controller (class 0x020000), driver now: ixgbe" "$OUT"
contains "problem count" "dry run: 2 problem(s) above would stop a real run" "$OUT"
contains "plan still printed" "would run: dpdk-devbind.py --bind=vfio-pci 0000:3b:00.0" "$OUT"

fake a --dry-run --hugepages 1G --no-user
equals "exit code, 2M pages by default (output: $OUT)" 0 "$RC"
contains "the kernel's page size is the default" "ok: hugepages of 2M are supported" "$OUT"
contains "512 pages of 2M make 1G" "512 wanted (1G)" "$OUT"
contains "reserve step" "would run: dpdk-hugepages.py --pagesize 2M --reserve 1G" "$OUT"
contains "no problems" "dry run: no problems found" "$OUT"
lacks "--no-user leaves users alone" "useradd" "$OUT"

fake b --dry-run --nic 0000:3b:00.0 --hugepages 2G --page-size 1G --user quorumd
equals "exit code on a ready host (output: $OUT)" 0 "$RC"
contains "IOMMU found" "ok: IOMMU is on (1 groups in $TMP/b/sys/kernel/iommu_groups)" "$OUT"
contains "1G pages found" "ok: hugepages of 1G are supported" "$OUT"
contains "reserve 2G in 1G pages" "would run: dpdk-hugepages.py --pagesize 1G --reserve 2G" "$OUT"
contains "a hugepage mount for the user" "would run: mount -t hugetlbfs -o pagesize=1G,mode=0770 nodev /dev/hugepages-quorumd" "$OUT"
contains "the vfio udev rule" 'would write /etc/udev/rules.d/90-quorumd-vfio.rules: SUBSYSTEM=="vfio", OWNER="quorumd"' "$OUT"
contains "no problems" "dry run: no problems found" "$OUT"

fake b --dry-run --nic 0000:99:00.0
contains "a missing device is named" "PROBLEM: NIC 0000:99:00.0: no such PCI device" "$OUT"

after=$(tree_state)
equals "the fake trees are unchanged by dry runs" "$before" "$after"

# A real run on host A: the checks fail, so nothing may run. Every command it could run is a stub.
mkdir -p "$TMP/stubs"
for command in apt-get dpdk-hugepages.py dpdk-devbind.py modprobe useradd mount install mkdir chown udevadm; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/stub-calls"\n' "$command" "$TMP" >"$TMP/stubs/$command"
	chmod +x "$TMP/stubs/$command"
done
RC=0
OUT=$(PATH="$TMP/stubs:$PATH" HOST_SETUP_SYSFS="$TMP/a/sys" HOST_SETUP_PROC="$TMP/a/proc" "$SETUP" \
	--nic 0000:3b:00.0 --hugepages 2G --page-size 1G 2>&1) || RC=$?
equals "exit code of a real run with failing checks (output: $OUT)" 1 "$RC"
contains "it says nothing changed" "problem(s) above; nothing was changed" "$OUT"
lacks "it ran nothing" "  run: " "$OUT"
[ ! -e "$TMP/stub-calls" ] || fail "a real run with failing checks called: $(cat "$TMP/stub-calls")"
pass

# A real run on copies of host B with stubs that act like the tools: the steps in order, each checked after.
# Needs root (the script refuses otherwise); stubs stand in for every command that would change this host.
if [ "$(id -u)" -eq 0 ]; then
	for host in b2 b3; do cp -a "$TMP/b" "$TMP/$host"; done
	mkdir -p "$TMP/etc/udev/rules.d"
	rm -f "$TMP/stub-calls"
	# real_run HOST: host-setup.sh as root on the fake HOST; the dpdk stubs reserve pages (on b2 only) and
	# move the NIC's driver link to vfio-pci, as the real tools would.
	real_run() {
		local host=$1 nic="$TMP/$1/sys/bus/pci/devices/0000:3b:00.0"
		printf '#!/bin/sh
echo "dpdk-hugepages.py $*" >>"%s/stub-calls"
%s
' "$TMP" \
			"$([ "$host" = b2 ] && echo "echo 2 >$TMP/$host/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages")" \
			>"$TMP/stubs/dpdk-hugepages.py"
		printf '#!/bin/sh
echo "dpdk-devbind.py $*" >>"%s/stub-calls"
ln -sfn ../../drivers/vfio-pci "%s/driver"
' \
			"$TMP" "$nic" >"$TMP/stubs/dpdk-devbind.py"
		RC=0
		OUT=$(PATH="$TMP/stubs:$PATH" HOST_SETUP_SYSFS="$TMP/$host/sys" HOST_SETUP_PROC="$TMP/$host/proc" \
			HOST_SETUP_ETC="$TMP/etc" "$SETUP" --nic 0000:3b:00.0 --hugepages 2G --page-size 1G \
			--user qd-test-nobody 2>&1) || RC=$?
	}
	real_run b2
	equals "exit code of a real run on a ready host (output: $OUT)" 0 "$RC"
	contains "pages checked after reserving" "checked: 2 hugepages of 1G reserved" "$OUT"
	contains "binding checked after" "checked: 0000:3b:00.0 is on vfio-pci (IOMMU group 17)" "$OUT"
	equals "the steps, in order" "dpdk-hugepages.py --pagesize 1G --reserve 2G
mkdir -p /dev/hugepages-qd-test-nobody
mount -t hugetlbfs -o pagesize=1G,mode=0770 nodev /dev/hugepages-qd-test-nobody
modprobe vfio-pci
dpdk-devbind.py --bind=vfio-pci 0000:3b:00.0
useradd --system --user-group --home-dir /var/lib/qd-test-nobody --no-create-home --shell /usr/sbin/nologin qd-test-nobody
install -d -o qd-test-nobody -g qd-test-nobody -m 0750 /var/lib/qd-test-nobody
install -d -o root -g qd-test-nobody -m 0750 $TMP/etc/quorumd
chown qd-test-nobody:qd-test-nobody /dev/hugepages-qd-test-nobody
udevadm control --reload
udevadm trigger --subsystem-match=vfio --action=add" "$(cat "$TMP/stub-calls")"
	equals "the udev rule" 'SUBSYSTEM=="vfio", OWNER="qd-test-nobody", GROUP="qd-test-nobody", MODE="0660"' \
		"$(cat "$TMP/etc/udev/rules.d/90-quorumd-vfio.rules")"
	rm -f "$TMP/stub-calls"
	real_run b3
	equals "exit code when the pages cannot be reserved (output: $OUT)" 1 "$RC"
	contains "why and what to do" "only 0 of 2 hugepages of 1G could be reserved" "$OUT"
	contains "boot-time reservation advice" "'hugepagesz=1G hugepages=2' on the kernel command line" "$OUT"
	equals "it stopped right after the failed step" "dpdk-hugepages.py --pagesize 1G --reserve 2G" "$(cat "$TMP/stub-calls")"
else
	SKIPPED=$((SKIPPED + 1))
	echo "SKIPPED: host-setup.sh real run with stub tools (needs root; this runs as uid $(id -u))"
fi

for bad in "--nic bogus" "--hugepages lots" "--page-size 3" "--frobnicate" "--user Bad:Name"; do
	# shellcheck disable=SC2086
	setup --dry-run $bad
	equals "exit code of host-setup.sh $bad" 2 "$RC"
done
contains "usage on a bad argument" "--dry-run          check and print the plan" "$OUT"

# ---- meson install --destdir ----
DEST="$TMP/root"
meson install -C "$BUILD" --no-rebuild --destdir "$DEST" >"$TMP/install.log" 2>&1 ||
	fail "meson install failed: $(tail -n 20 "$TMP/install.log")"
PREFIX=$(meson introspect "$BUILD" --buildoptions | python3 -c \
	'import json, sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')
R="$DEST$PREFIX"
for file in bin/quorumd bin/quorumctl sbin/quorumd-host-setup; do
	[ -x "$R/$file" ] || fail "meson install: $PREFIX/$file missing or not executable ($(cat "$TMP/install.log"))"
	pass
done
for file in lib/systemd/system/quorumd@.service share/man/man8/quorumd.8 share/man/man1/quorumctl.1 \
	share/doc/quorumd/README.md share/doc/quorumd/examples/example.env; do
	[ -s "$R/$file" ] || fail "meson install: $PREFIX/$file missing or empty"
	pass
done
UNIT="$R/lib/systemd/system/quorumd@.service"
contains "installed unit's ExecStart" "ExecStart=$PREFIX/bin/quorumd"$'\n' "$(cat "$UNIT")"$'\n'
for line in "EnvironmentFile=/etc/quorumd/%i.env" "Restart=on-failure" "LimitNOFILE=65536" "User=quorumd"; do
	contains "the unit has $line" "$line" "$(cat "$UNIT")"
done
contains "the unit documents DPDK" "vfio-pci" "$(cat "$UNIT")"
"$R/bin/quorumd" --help >"$TMP/help" || fail "installed quorumd --help failed"
contains "the man page has every flag of --help" "enable-pprof" "$(cat "$R/share/man/man8/quorumd.8")"
for flag in $(grep -o '^  --[a-z-]*' "$TMP/help"); do
	contains "quorumd.8 lists $flag" "  $flag"$'\n' "$(cat "$R/share/man/man8/quorumd.8")"
done
if command -v man >/dev/null 2>&1; then
	MANWIDTH=100 man -l "$R/share/man/man8/quorumd.8" 2>/dev/null >"$TMP/man.txt" || true
	contains "man renders quorumd.8" "--initial-cluster-state" "$(cat "$TMP/man.txt")"
fi
equals "installed host-setup is the script" "$(md5sum <"$SETUP")" "$(md5sum <"$R/sbin/quorumd-host-setup")"

# ---- systemd-analyze verify ----
if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir -p "$TMP/verify"
	sed "s|^ExecStart=$PREFIX/bin/quorumd\$|ExecStart=$R/bin/quorumd|" "$UNIT" >"$TMP/verify/quorumd@.service"
	RC=0
	OUT=$(cd "$TMP" && MANPATH="$R/share/man" systemd-analyze verify "$TMP/verify/quorumd@.service" 2>&1) || RC=$?
	equals "systemd-analyze verify of the installed unit (output: $OUT)" 0 "$RC"
	equals "systemd-analyze verify of the installed unit says nothing" "" "$OUT"
	# The source file names /usr/local/bin/quorumd, which this machine may not have: that complaint alone
	# is allowed.
	RC=0
	OUT=$(cd "$TMP" && systemd-analyze verify --man=no "$SRC/deploy/quorumd@.service" 2>&1) || RC=$?
	other=$(grep -v 'Command /usr/local/bin/quorumd is not executable' <<<"$OUT" || true)
	equals "systemd-analyze verify deploy/quorumd@.service: nothing but a missing /usr/local/bin/quorumd" "" "$other"
else
	SKIPPED=$((SKIPPED + 1))
	echo "SKIPPED: systemd-analyze verify (systemd-analyze not found on this machine; Debian package systemd)"
fi

# ---- example.env names only quorumd's variables ----
known=$(grep -o '\[ETCD_[A-Z_]*\]' "$TMP/help" | tr -d '[]' | sort -u)
for variable in $(grep -oE '^#? ?ETCD_[A-Z_]+=' "$SRC/deploy/example.env" | sed 's/^# \{0,1\}//; s/=$//' | sort -u); do
	grep -qx "$variable" <<<"$known" || fail "deploy/example.env sets $variable, which quorumd --help does not list"
	pass
done

# ---- README.md's flag table has every flag of quorumd --help ----
table=$(sed -n '/^| flag (env) | meaning, as in etcd |$/,/^$/p' "$SRC/README.md")
[ -n "$table" ] || fail "README.md has no flag table (| flag (env) | meaning, as in etcd |)"
for flag in $(grep -o '^  --[a-z-]*' "$TMP/help"); do
	grep -q "^| .*\`$flag[\` ]" <<<"$table" || fail "README.md's flag table has no row for $flag"
	pass
done
