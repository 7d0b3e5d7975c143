#!/usr/bin/env bash
# snapshot save through one endpoint (a follower and the leader): stdout "Snapshot saved at PATH", the file is
# there and not empty, the temporary PATH.part is gone; etcdctl's zap log lines on stderr name the steps (their
# time stamps and durations are masked); with several endpoints etcdctl refuses before any RPC. Expected outputs
# taken from etcd 3.4.23. Ports: 247x0 (client 247x9).
source "$(dirname "$0")/lib.sh"

add_member infra1 24710
add_member infra2 24720
add_member infra3 24730
start_new_cluster infra1 infra2 infra3
wait_ready 20 infra1 infra2 infra3
ENDPOINTS=$(endpoints infra1 infra2 infra3)
E=--endpoints=$ENDPOINTS
for i in $(seq 1 20); do expect_out "OK" "$E" put "key/$i" "value-$i"; done

# humanize_bytes N: N as go-humanize's Bytes() prints it (SI units, "25 kB").
humanize_bytes() {
	"$PYTHON" -c '
import math, sys
s = int(sys.argv[1])
if s < 10:
    print("%d B" % s)
else:
    e = math.floor(math.log(s, 1000))
    suffix = ["B", "kB", "MB", "GB", "TB"][e]
    val = math.floor(s / 1000 ** e * 10 + 0.5) / 10
    print(("%.0f %s" if val >= 10 else "%.1f %s") % (val, suffix))' "$1"
}

for n in infra1 infra2 infra3; do
	file=$TMP/snapshot-$n.db
	ctl_ok --endpoints="${CLIENT[$n]}" snapshot save "$file"
	assert_eq "stdout of snapshot save through $n" "Snapshot saved at $file" "$OUT"
	[ -s "$file" ] || fail "snapshot file $file missing or empty"
	[ ! -e "$file.part" ] || fail "temporary file $file.part left behind"
	log "snapshot through $n: $(stat -c %s "$file") bytes"
	# The stream is read by a goroutine: its two messages may come before or after "fetching snapshot".
	assert_eq "messages etcdctl logged for snapshot save through $n (sorted)" \
		"completed snapshot read; closing|
created temporary db file|path=$file.part
fetched snapshot|endpoint=${CLIENT[$n]},size=$(humanize_bytes "$(stat -c %s "$file")")
fetching snapshot|endpoint=${CLIENT[$n]}
opened snapshot stream; downloading|
saved|path=$file" \
		"$("$PYTHON" -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    d = json.loads(line)
    extra = ",".join(k + "=" + str(d[k]) for k in ("path", "endpoint", "size") if k in d)
    print(d["msg"] + "|" + extra)' <<<"$ERR" | LC_ALL=C sort)"
done
# Saving again over an existing file replaces it.
ctl_ok --endpoints="${CLIENT[infra1]}" snapshot save "$TMP/snapshot-infra2.db"
assert_eq "stdout of snapshot save over an existing file" "Snapshot saved at $TMP/snapshot-infra2.db" "$OUT"

ctl "$E" snapshot save "$TMP/snapshot-all.db"
assert_eq "exit code of snapshot save with three endpoints" 5 "$RC"
assert_eq "stderr of snapshot save with three endpoints" \
	"Error: snapshot must be requested to one selected node, not multiple [http://127.0.0.1:24709 http://127.0.0.1:24719 http://127.0.0.1:24729]" \
	"$ERR"
[ ! -e "$TMP/snapshot-all.db" ] || fail "snapshot save with three endpoints wrote a file"
expect_out "key/20
value-20" "$E" get key/20
