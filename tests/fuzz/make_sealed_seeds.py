#!/usr/bin/env python3
"""tests/fuzz/make_sealed_seeds.py DIR: seeds for fuzz-sealed-frame (tests/fuzz/fuzz_sealed_frame.c).

Each seed is records of kind (1 byte), length (2 bytes LE), counter (8 bytes LE) and bytes. Odd kinds seal
their bytes in the target (so the fuzzer starts from frames that open), even kinds are raw datagrams: here a
sealed-looking header (flag 0x01, a counter in place of the CRC) with random payload and tag, which parses
and fails to open."""
import os
import random
import struct
import sys

MAGIC = 0x46445251


def record(kind, counter, data):
    return struct.pack("<BHQ", kind, len(data), counter) + data


def sealed_looking(counter, payload):
    header = struct.pack("<IBBHHHIQQQQQ", MAGIC, 1, 1, 0, 1, len(payload), len(payload), 7, 1, 2, counter, counter)
    return header + bytes(16) + payload


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(19)
    seeds = {
        "seal-small": record(1, 1, b"hello") + record(1, 2, b"") + record(3, 2, b"again"),
        "seal-window": b"".join(record(2 * k + 1, c, bytes(rng.randrange(256) for _ in range(40)))
                               for k, c in enumerate([5, 3, 2000, 1000, 976, 977, 5000, 3977, 3976])),
        "raw-sealed": record(0, 0, sealed_looking(9, bytes(rng.randrange(256) for _ in range(64)))),
        "seal-large": record(5, 1 << 40, bytes(rng.randrange(256) for _ in range(1400))),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
