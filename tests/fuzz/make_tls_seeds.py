#!/usr/bin/env python3
"""tests/fuzz/make_tls_seeds.py: writes fuzz-tls's seed corpus into corpus/tls/ (the input format is in
fuzz_tls.c's opening comment). Raw seeds are real ClientHellos: the first flight openssl s_client and curl send
(TLS 1.3 and 1.2, ALPN h2, http/1.1 or none, with SNI), captured on a loopback listener that answers nothing.
Session seeds are plaintext for an in-process client to send once its handshake is done: the HTTP/2 client
preface with SETTINGS and a gRPC call, and HTTP/1.1 GETs. ClientHellos carry random bytes, so a rerun writes
different (equally valid) raw seeds.

    python3 tests/fuzz/make_tls_seeds.py
"""
import os
import shutil
import socket
import struct
import subprocess
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
DIRECTORY = os.path.join(HERE, "corpus", "tls")


def write(name, data):
    os.makedirs(DIRECTORY, exist_ok=True)
    with open(os.path.join(DIRECTORY, name), "wb") as out:
        out.write(data)


def capture(command_for_port):
    """The first bytes a client sends to a listener that never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    process = subprocess.Popen(command_for_port(port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    listener.settimeout(5)
    connection, _ = listener.accept()
    connection.settimeout(1)
    data = b""
    try:
        while len(data) < 65536:
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    process.kill()
    process.wait()
    connection.close()
    listener.close()
    return data


def s_client(*options):
    return lambda port: ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, *options]


def h2_frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    name, value = name.encode(), value.encode()
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def main():
    raw = {
        "hello-tls13-h2": s_client("-tls1_3", "-alpn", "h2"),
        "hello-tls12-h2": s_client("-tls1_2", "-alpn", "h2"),
        "hello-tls12-no-alpn": s_client("-tls1_2"),
        "hello-alpn-http11": s_client("-alpn", "http/1.1", "-servername", "localhost"),
        "hello-alpn-unknown": s_client("-alpn", "foo,bar"),
    }
    if shutil.which("curl"):
        raw["hello-curl"] = lambda port: ["curl", "-sk", "-m", "2", "https://127.0.0.1:%d/health" % port]
    for name, command in raw.items():
        hello = capture(command)
        if hello:
            write(name, b"\x00" + hello)
    write("plain-http", b"\x00GET /health HTTP/1.1\r\nHost: x\r\n\r\n")

    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b"")
    headers = (hpack_literal(":method", "POST") + hpack_literal(":scheme", "https") +
               hpack_literal(":path", "/etcdserverpb.KV/Range") + hpack_literal(":authority", "127.0.0.1") +
               hpack_literal("content-type", "application/grpc") + hpack_literal("te", "trailers"))
    message = b"\x0a\x03foo"
    call = h2_frame(1, 0x4, 1, headers) + h2_frame(0, 0x1, 1, b"\x00" + struct.pack(">I", len(message)) + message)
    get = (hpack_literal(":method", "GET") + hpack_literal(":scheme", "https") + hpack_literal(":path", "/health") +
           hpack_literal(":authority", "127.0.0.1"))
    write("session-h2-call", b"\x01\x00" + preface + call)
    write("session-h2-get", b"\x01\x00" + preface + h2_frame(1, 0x5, 1, get))
    write("session-tls12-h2-call", b"\x03\x00" + preface + call)
    write("session-http11", b"\x11\x00GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\n\r\n")
    write("session-flipped", b"\x05\x40" + preface + call)
    write("session-client-auth", b"\x09\x00" + preface + call)


if __name__ == "__main__":
    main()
