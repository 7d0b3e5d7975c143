#!/usr/bin/env python3
"""tests/fuzz/make_seeds.py: writes the seed corpora of fuzz-frame, fuzz-control-socket, fuzz-flags and
fuzz-grpc into corpus/<target>/ (fuzz-wal's seeds are real segments the WAL writes itself:
FUZZ_WAL_MAKE_SEEDS=DIR build-fuzz/tests/fuzz/fuzz-wal). Each seed is valid input in the format the
target's opening comment describes: real frames with their CRC32C, JSON lines, flag vectors, and h2c gRPC
requests (the client preface, SETTINGS, a HEADERS frame with literal HPACK fields and DATA frames carrying
length-prefixed protobuf RangeRequest / PutRequest messages). Deterministic: rerun to regenerate.

    python3 tests/fuzz/make_seeds.py

Inputs that once crashed a target are kept next to the seeds (named crash-*) and are not written here.
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as out:
        out.write(data)


# ---- peer frames (dataplane/frame.h) -----------------------------------------------------------------

def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def frame(message, count, index, cluster=0xC1, sender=2, to=1, message_id=1):
    length = len(message)
    chunk = -(-length // count) if count else 0
    start = index * chunk
    payload = message[start:start + chunk] if count > 1 else message
    header = struct.pack("<IBBHHHIQQQQI4s16s", 0x46445251, 1, 0, index, count, len(payload), length, cluster,
                         sender, to, message_id, 0, b"\0" * 4, b"\0" * 16)
    crc = crc32c(header + payload)
    header = header[:48] + struct.pack("<I", crc) + header[52:]
    return header + payload


# The key tests/fuzz/fuzz_frame.c derives from its key file's bytes (dataplane/frame_mac.h).
FUZZ_KEY = hashlib.blake2b(b"fuzz-frame key file, 32 bytes!!!").digest()


def seal(datagram):
    """The frame with its MAC (keyed BLAKE2b-128 over the frame, CRC and MAC fields zeroed) and CRC."""
    zeroed = datagram[:48] + b"\0" * 4 + datagram[52:56] + b"\0" * 16 + datagram[72:]
    mac = hashlib.blake2b(zeroed, digest_size=16, key=FUZZ_KEY, person=b"quorumd frame v1").digest()
    with_mac = datagram[:48] + b"\0" * 4 + datagram[52:56] + mac + datagram[72:]
    return with_mac[:48] + struct.pack("<I", crc32c(with_mac)) + with_mac[52:]


def datagram_record(data, step=0):
    return struct.pack("<HB", len(data), step) + data


def send_record(message, step=0):
    return struct.pack("<HB", 0x8000 | len(message), step) + message


def frame_seeds():
    # A packed raftpb.Message (MsgApp with one entry) as a payload.
    msg = bytes.fromhex("0803100218012005280130013a080801100318012201614002")
    write("frame", "single", b"\x00" + datagram_record(frame(msg, 1, 0)))
    big = bytes(range(256)) * 3
    frames = [frame(big, 3, i, message_id=7) for i in range(3)]
    write("frame", "three-in-order", b"\x00" + b"".join(datagram_record(f) for f in frames))
    write("frame", "three-reordered-duplicate", b"\x00" + b"".join(
        datagram_record(f, step) for f, step in ((frames[2], 1), (frames[0], 2), (frames[2], 3), (frames[1], 4))))
    write("frame", "timeout", b"\x20" + datagram_record(frames[0]) + datagram_record(frames[1], 255) +
          datagram_record(frames[2]))
    write("frame", "memory-bound", b"\x00" + b"".join(
        datagram_record(frame(big, 3, 0, sender=s, message_id=s)) for s in range(2, 12)))
    # CRC fixed up by the target: a zeroed CRC field still reaches the geometry checks.
    bad_geometry = bytearray(frame(big, 3, 1, message_id=9))
    bad_geometry[8:10] = struct.pack("<H", 2)
    write("frame", "fixup-geometry", b"\x01" + datagram_record(bytes(bad_geometry)))
    write("frame", "empty-message", b"\x00" + datagram_record(frame(b"", 1, 0)))
    write("frame", "bad-magic", b"\x00" + datagram_record(b"XRDF" + frame(msg, 1, 0)[4:]))
    write("frame", "send", b"\x06" + send_record(big, 2) + send_record(msg, 1) + send_record(b"", 3))
    # Keyed (config bit 6): frames sealed with the target's key reach the reassembler; unsealed ones are
    # dropped for their MAC; bit 7 has the target seal every datagram itself.
    sealed = [seal(f) for f in frames]
    write("frame", "keyed-single", b"\x40" + datagram_record(seal(frame(msg, 1, 0))))
    write("frame", "keyed-three-reordered", b"\x40" + b"".join(
        datagram_record(f, step) for f, step in ((sealed[2], 1), (sealed[0], 2), (sealed[2], 3), (sealed[1], 4))))
    write("frame", "keyed-unsealed", b"\x40" + datagram_record(frame(msg, 1, 0)) + datagram_record(sealed[0]))
    write("frame", "keyed-self-sealed", b"\xc1" + b"".join(datagram_record(f) for f in frames))
    write("frame", "keyed-send", b"\x46" + send_record(big, 2) + send_record(msg, 1) + send_record(b"", 3))


# ---- control socket JSON lines ---------------------------------------------------------------------------

def control_seeds():
    lines = {
        "member-list": b'{"id":1,"command":"member_list"}\n',
        "echo-text": b'{"id":2,"command":"echo","key":"foo","value":"bar","range_end":"fop"}\n',
        "echo-base64": b'{"id":3,"command":"echo","key":"AP8=","value":"wyg=","encoding":"base64"}\n',
        "hex": b'{"id":4,"command":"hex","member_id":"8211F1D0F64F3269"}\n{"id":5,"command":"hex","member_id":"0001"}\n',
        "pipeline": b'{"id":6,"command":"hold"}\n{"id":7,"command":"echo","key":"\\u0000"}\n'
                    b'{"id":8,"command":"drop"}\n{"id":9,"command":"hold"}\n',
        "member-add": b'{"id":10,"command":"member_add","peer_urls":["http://127.0.0.1:42380"],"is_learner":true}\n',
        "bad-lines": b'not json\n{"command":"x"}\n{"id":-1,"command":"echo"}\n[1,2]\n{"id":11}\n',
        "put-get": b'{"id":12,"command":"put","key":"k","value":"v"}\n{"id":13,"command":"get","key":"k",'
                   b'"range_end":"\\u0000","serializable":true}\n',
        "partial": b'{"id":14,"command":"echo","key":"unterminated',
    }
    for index, (name, text) in enumerate(lines.items()):
        write("control-socket", name, bytes([index * 2 & 0x1e]) + text)
    write("control-socket", "long-line-small-limit", b"\x01" + b'{"id":15,"command":"echo","key":"' + b"x" * 300 +
          b'"}\n{"id":16,"command":"echo"}\n')
    write("control-socket", "hold-then-close", b"\x10" + b'{"id":17,"command":"hold"}\n' * 20)


# ---- flags --------------------------------------------------------------------------------------------

def flag_seed(argv, environment=()):
    return bytes([len(argv)]) + b"".join(a.encode() + b"\0" for a in argv) + \
        b"".join(e.encode() + b"\0" for e in environment)


def flag_seeds():
    ic = "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"
    write("flags", "readme", flag_seed([
        "--name", "infra1", "--data-dir", "/tmp/infra1", "--listen-peer-urls", "http://127.0.0.1:12380",
        "--initial-advertise-peer-urls", "http://127.0.0.1:12380", "--listen-client-urls",
        "http://127.0.0.1:12379", "--advertise-client-urls", "http://127.0.0.1:12379",
        "--initial-cluster-token", "etcd-cluster-1", "--initial-cluster", ic]))
    write("flags", "environment", flag_seed(["--name=infra2"], [
        "ETCD_INITIAL_CLUSTER=" + ic, "ETCD_INITIAL_CLUSTER_STATE=existing", "ETCD_NAME=shadowed",
        "ETCD_HEARTBEAT_INTERVAL=50", "ETCD_ELECTION_TIMEOUT=500", "ETCD_UNKNOWN=1", "PATH=/bin"]))
    write("flags", "ipv6-multi-url", flag_seed([
        "-name", "a", "-initial-cluster", "a=udp://[::1]:2380,a=http://[fe80::1]:2381,b=http://host.example:2380",
        "--initial-cluster-token=tok", "--force-new-cluster", "--strict-reconfig-check=false"]))
    write("flags", "dpdk", flag_seed([
        "--dataplane", "dpdk", "--dpdk-args", "-l 1 --vdev net_tap0", "--dataplane-idle", "poll",
        "--dpdk-neighbors", "10.0.0.2=02:00:00:00:00:02", "--client-threads", "4",
        "--max-request-bytes", "1572864", "--log-level", "debug", "--log-outputs", "stderr,/tmp/x.log"]))
    write("flags", "errors", flag_seed(["--election-timeout", "10", "--heartbeat-interval", "0", "--bogus",
                                        "--initial-cluster", "=http://:0,x=ftp://a", "-h"]))
    write("flags", "help-version", flag_seed(["--help", "--version", "--enable-pprof", "--snapshot-count",
                                              "100000", "--logger", "zap"]))


# ---- h2c gRPC requests --------------------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    # Literal header field without indexing, new name, no Huffman.
    def string(s):
        s = s.encode()
        assert len(s) < 127
        return bytes([len(s)]) + s
    return b"\x00" + string(name) + string(value)


def grpc_headers(path):
    return (b"\x83" +  # :method POST (static index 3)
            b"\x86" +  # :scheme http (static index 6)
            hpack_literal(":path", path) + hpack_literal(":authority", "127.0.0.1:2379") +
            hpack_literal("content-type", "application/grpc") + hpack_literal("te", "trailers") +
            hpack_literal("grpc-timeout", "5S") + hpack_literal("hasleader", "true"))


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field_bytes(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def grpc_message(data):
    return b"\x00" + struct.pack(">I", len(data)) + data


def h2c_call(path, message, stream=1, split=False):
    out = h2_frame(1, 0x4, stream, grpc_headers(path))  # HEADERS, END_HEADERS
    body = grpc_message(message)
    if split:
        out += h2_frame(0, 0, stream, body[:3]) + h2_frame(0, 0x1, stream, body[3:])
    else:
        out += h2_frame(0, 0x1, stream, body)  # DATA, END_STREAM
    return out


def grpc_seeds():
    settings = h2_frame(4, 0, 0, struct.pack(">HI", 3, 100) + struct.pack(">HI", 4, 65535))
    settings_ack = h2_frame(4, 1, 0, b"")
    start = PREFACE + settings + settings_ack
    range_request = field_bytes(1, b"foo") + field_bytes(2, b"fop") + field_varint(3, 10)
    put_request = field_bytes(1, b"foo") + field_bytes(2, b"bar") + field_varint(4, 1)
    write("grpc", "range", b"\x00" + start + h2c_call("/etcdserverpb.KV/Range", range_request))
    write("grpc", "put", b"\x00" + start + h2c_call("/etcdserverpb.KV/Put", put_request))
    write("grpc", "put-split-data", b"\x03" + start + h2c_call("/etcdserverpb.KV/Put", put_request, split=True))
    write("grpc", "two-calls", b"\x00" + start + h2c_call("/etcdserverpb.KV/Range", range_request, 1) +
          h2c_call("/etcdserverpb.KV/Put", put_request, 3) + h2_frame(6, 0, 0, b"\0" * 8))  # PING
    watch = field_bytes(1, field_bytes(1, b"foo") + field_bytes(2, b"fop"))
    write("grpc", "watch", b"\x00" + start + h2_frame(1, 0x4, 1, grpc_headers("/etcdserverpb.Watch/Watch")) +
          h2_frame(0, 0, 1, grpc_message(watch)) + h2_frame(0, 0x1, 1, grpc_message(watch)))
    write("grpc", "unimplemented", b"\x00" + start + h2c_call("/etcdserverpb.Auth/UserAdd", b""))
    write("grpc", "reset", b"\x00" + start + h2_frame(1, 0x4, 1, grpc_headers("/etcdserverpb.KV/Put")) +
          h2_frame(3, 0, 1, struct.pack(">I", 8)) + h2_frame(7, 0, 0, struct.pack(">II", 1, 0)))
    write("grpc", "window-update", b"\x00" + start + h2_frame(8, 0, 0, struct.pack(">I", 1 << 20)) +
          h2c_call("/etcdserverpb.KV/Range", range_request))
    write("grpc", "http1-health", b"\x00GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
          b"GET /version HTTP/1.1\r\nConnection: close\r\n\r\n")
    # The JSON gateway: pipelined POSTs (a put, a range with a bad body, a watch that stays open).
    def post(path, body, extra=b""):
        return (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra +
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    write("grpc", "http1-gateway",
          b"\x00" + post(b"/v3/kv/put", b'{"key":"Zm9v","value":"YmFy","lease":"7","prev_kv":true}') +
          post(b"/v3/kv/range", b'{"key":"Zm9v","range_end":"Zm9w","limit":1.5,"sort_order":"DESCEND"}') +
          post(b"/v3/kv/nothing", b"{}") +
          post(b"/v3/watch", b'{"create_request":{"key":"Zm9v","filters":["NOPUT"]}} {"cancel_request":{}}',
               b"Connection: close\r\n"))
    write("grpc", "http1-gateway-continue",
          b"\x08" + post(b"/v3/kv/put", b'{"key":"YQ==","value":"Yg=="}', b"Expect: 100-continue\r\n") +
          post(b"/v3/kv/range", b'{"key":"YQ=",}'))


if __name__ == "__main__":
    frame_seeds()
    control_seeds()
    flag_seeds()
    grpc_seeds()
