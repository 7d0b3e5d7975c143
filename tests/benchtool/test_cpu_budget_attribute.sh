#!/usr/bin/env bash
# tests/benchtool/test_cpu_budget_attribute.sh SOURCE_ROOT: bench/cpu_budget.sh's attribution, on perf script
# text written here (no perf, no cluster): with the stage table as the script holds it, each sample goes to
# the stage of the frame nearest its leaf that a row matches (kernel frames before the user code that entered
# the kernel; libc, nghttp2 and protobuf-c frames transparent), samples of other processes are ignored, and
# the figures are µs per put and context switches per put.
set -euo pipefail
ROOT=${1:?usage: test_cpu_budget_attribute.sh SOURCE_ROOT}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The table exactly as cpu_budget.sh has it (between its heredoc markers).
awk '/^read -r -d .. STAGE_RULES <<.EOF./ { inside = 1; next } inside && /^EOF$/ { exit } inside' \
	"$ROOT/bench/cpu_budget.sh" >"$TMP/rules"
[ "$(grep -cv '^#' "$TMP/rules")" -ge 10 ] || { echo "FAIL: no stage table read from cpu_budget.sh" >&2; exit 1; }

printf '%s\t%s\n' \
	state_apply_put storage/state/write.c \
	node_storage_main control/node/node_storage.c \
	read_response control/grpc/grpc_call.c \
	grpc_http2_fill_output control/grpc/grpc_http2.c \
	connection_flush control/grpc/grpc_server.c \
	grpc_http2_receive control/grpc/grpc_http2.c \
	raft_step_bytes consensus/raft.c \
	node_core_main control/node/node_core.c \
	udp_send_batch dataplane/udp.c >"$TMP/symbols"

# pid 100 is the leader, 200 the follower, 300 someone else. Periods in ns; 2 puts.
tab=$'\t'
cat >"$TMP/script" <<EOF
   100    1000000 cpu-clock: 
${tab}    7f0000000001 __memmove_avx512_unaligned_erms (/usr/lib/x86_64-linux-gnu/libc.so.6)
${tab}    55000000a001 state_apply_put (/work/build/control/quorumd)
${tab}    55000000a002 node_storage_main (/work/build/control/quorumd)
${tab}    7f0000000002 start_thread (/usr/lib/x86_64-linux-gnu/libc.so.6)

   100    2000000 cpu-clock: 
${tab}ffffffff81000001 _raw_spin_unlock_irq ([kernel.kallsyms])
${tab}ffffffff81000002 do_epoll_wait ([kernel.kallsyms])
${tab}ffffffff81000003 __x64_sys_epoll_wait ([kernel.kallsyms])
${tab}    7f0000000003 epoll_wait (/usr/lib/x86_64-linux-gnu/libc.so.6)
${tab}    55000000a002 node_storage_main (/work/build/control/quorumd)

   100    4000000 cpu-clock: 
${tab}    7f1000000001 nghttp2_session_mem_send (/usr/lib/x86_64-linux-gnu/libnghttp2.so.14.24.1)
${tab}    55000000b001 read_response (/work/build/control/quorumd)
${tab}    55000000b002 grpc_http2_fill_output (/work/build/control/quorumd)
${tab}    55000000b003 connection_flush (/work/build/control/quorumd)

   100    8000000 cpu-clock: 
${tab}    7f2000000001 protobuf_c_message_unpack (/usr/lib/x86_64-linux-gnu/libprotobuf-c.so.1.0.0)
${tab}    55000000b004 grpc_http2_receive (/work/build/control/quorumd)

   100   16000000 cpu-clock: 
${tab}ffffffff81000010 copy_user_generic ([kernel.kallsyms])
${tab}ffffffff81000011 udp_sendmsg ([kernel.kallsyms])
${tab}ffffffff81000012 __x64_sys_sendmmsg ([kernel.kallsyms])
${tab}    7f0000000004 sendmmsg (/usr/lib/x86_64-linux-gnu/libc.so.6)
${tab}    55000000c001 udp_send_batch (/work/build/control/quorumd)
${tab}    55000000c002 raft_step_bytes (/work/build/control/quorumd)
${tab}    55000000c003 node_core_main (/work/build/control/quorumd)

   100          1 context-switches/period=1,call-graph=no/:  ffffffff8224a1b3 schedule ([kernel.kallsyms])
   100          1 context-switches/period=1,call-graph=no/:  ffffffff8224a1b3 schedule ([kernel.kallsyms])
   100          1 context-switches/period=1,call-graph=no/:  ffffffff8224a1b3 schedule ([kernel.kallsyms])
   200          1 context-switches/period=1,call-graph=no/:  ffffffff8224a1b3 schedule ([kernel.kallsyms])
   200    6000000 cpu-clock: 
${tab}ffffffff81000020 iowrite16 ([kernel.kallsyms])
${tab}ffffffff81000021 blk_mq_submit_bio ([kernel.kallsyms])
${tab}ffffffff81000022 io_fsync ([kernel.kallsyms])
${tab}ffffffff81000023 io_wq_worker ([kernel.kallsyms])

   200    2000000 cpu-clock: 
${tab}    7f0000000009 [unknown] ([unknown])

   300  500000000 cpu-clock: 
${tab}    55000000a001 state_apply_put (/work/build/control/quorumd)

EOF

python3 "$ROOT/bench/cpu_budget_attribute.py" --symbols "$TMP/symbols" --rules "$TMP/rules" \
	--role 100=leader --role 200=follower --puts 2 --top "$TMP/top" <"$TMP/script" >"$TMP/out"

failures=0
expect() { # ROLE STAGE VALUE
	local got
	got=$(awk -v r="$1" -v s="$2" '$1 == r && $2 == s { print $3 }' "$TMP/out")
	if [ "$got" != "$3" ]; then
		echo "FAIL: $1 $2 = ${got:-missing}, want $3" >&2
		failures=$((failures + 1))
	fi
}
expect leader apply 500.0      # memcpy is charged to state_apply_put
expect leader handoff 1000.0   # the kernel's epoll wait wins over node_storage_main
expect leader reply 2000.0     # nghttp2 is transparent, read_response decides
expect leader client 4000.0    # protobuf-c unpack under the gRPC receive
expect leader transport 8000.0 # the kernel's UDP send, not the Raft code that called it
expect leader raft 0.0
expect leader total 15500.0
expect leader ctxsw 1.50
expect leader unattributed_pct 0.0
expect follower wal 3000.0     # an io-wq worker's fdatasync: kernel frames only
expect follower other 1000.0   # nothing matched
expect follower total 4000.0
expect follower unattributed_pct 25.0
expect follower ctxsw 0.50
grep -q 'storage/state/write.c:state_apply_put' "$TMP/top" ||
	{ echo "FAIL: the top listing does not name the deciding frame" >&2; failures=$((failures + 1)); }
if [ "$failures" -ne 0 ]; then
	cat "$TMP/out" >&2
	exit 1
fi
echo "ok: $(wc -l <"$TMP/out") figures as expected"
