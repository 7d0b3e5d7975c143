#!/usr/bin/env python3
"""bench/dataplane_load.py SOCKET SECONDS WINDOW VALUE_BYTES: a write load through one member's control
socket (JSON lines, pipelined: WINDOW puts in flight, each answered when committed and applied).
Prints one line: "puts OPS ops/s RATE p50 MS p99 MS errors N" (latency per put, send to answer)."""
import json
import socket
import sys
import time


def main():
    path, seconds, window, size = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    value = "v" * size
    sent = {}
    latencies = []
    errors = 0
    next_id = 0
    buf = b""
    start = time.monotonic()
    end = start + seconds

    def send_one():
        nonlocal next_id
        next_id += 1
        line = json.dumps({"id": next_id, "command": "put", "key": "bench/%d" % (next_id % 100000), "value": value})
        sent[next_id] = time.monotonic()
        s.sendall(line.encode() + b"\n")

    for _ in range(window):
        send_one()
    while sent:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            reply = json.loads(line)
            t0 = sent.pop(reply.get("id"), None)
            if t0 is None:
                continue
            now = time.monotonic()
            if reply.get("ok"):
                latencies.append(now - t0)
            else:
                errors += 1
            if now < end:
                send_one()
    elapsed = time.monotonic() - start
    latencies.sort()
    n = len(latencies)
    p = lambda q: latencies[min(n - 1, int(q * n))] * 1000 if n else float("nan")
    print("puts %d ops/s %.0f p50 %.3f p99 %.3f errors %d" % (n, n / elapsed, p(0.50), p(0.99), errors))


if __name__ == "__main__":
    main()
