#!/usr/bin/env python3
"""tests/control/check_rooms.py: the dependency rules of the tree, checked on every #include.

control/ is divided into rooms whose dependencies run one way (control/README.md); the lower folders
(consensus/, storage/, dataplane/) never include each other or control/, and everything may use common/.
Each quoted #include of a C file is resolved to the folder (or control room) that owns the header, by the
header's name (generated protobuf-c headers by their .proto); an include outside what the including
folder may use is printed with its file and line, and the check fails. Usage: check_rooms.py SOURCE_ROOT
"""
import os
import re
import sys

# Who may include whom. A folder always may include itself.
ALLOWED = {
    "common": set(),
    "consensus": {"common"},
    "storage": {"common"},
    "dataplane": {"common"},
    "control/proto": {"common"},
    "control/grpc": {"common"},
    "control/etcd": {"common", "control/proto", "control/grpc", "storage"},
    "control/config": {"common", "control/etcd"},
    "control/node": {"common", "control/proto", "control/grpc", "control/etcd", "control/config", "consensus",
                     "storage", "dataplane"},
    "control/bootstrap": {"common", "control/proto", "control/grpc", "control/etcd", "control/config",
                          "control/node", "consensus", "storage", "dataplane"},
    "control/api": {"common", "control/proto", "control/grpc", "control/etcd", "control/config", "control/node",
                    "consensus", "storage", "dataplane"},
    "control/operator": {"common", "control/proto", "control/grpc", "control/etcd", "control/config",
                         "control/node", "consensus", "storage", "dataplane"},
    "control/cmd": {"common", "control/proto", "control/grpc", "control/etcd", "control/config", "control/node",
                    "control/bootstrap", "control/api", "control/operator", "consensus", "storage", "dataplane"},
}
OWNERS = sorted(ALLOWED, key=len, reverse=True)


def owner_of(relative_path):
    for owner in OWNERS:
        if relative_path == owner or relative_path.startswith(owner + "/"):
            return owner
    return None


def main():
    root = os.path.realpath(sys.argv[1])
    header_owner = {}
    sources = []
    for folder in ALLOWED:
        for directory, _, names in os.walk(os.path.join(root, folder)):
            for name in names:
                relative = os.path.relpath(os.path.join(directory, name), root)
                owner = owner_of(relative)
                if name.endswith(".h"):
                    header_owner.setdefault(name, set()).add(owner)
                elif name.endswith(".proto"):
                    header_owner.setdefault(name[:-len(".proto")] + ".pb-c.h", set()).add(owner)
                if name.endswith((".c", ".h")):
                    sources.append((relative, owner))
    include = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    problems = 0
    for relative, owner in sorted(sources):
        with open(os.path.join(root, relative), encoding="utf-8", errors="replace") as source:
            for number, line in enumerate(source, 1):
                match = include.match(line)
                if not match:
                    continue
                name = os.path.basename(match.group(1))
                # A name several folders use (internal.h) is the including folder's own when it has one.
                targets = header_owner.get(name, set())
                if not targets or owner in targets or targets & ALLOWED[owner]:
                    continue
                print(f"{relative}:{number}: {owner} includes {name} of {' or '.join(sorted(targets))}, "
                      "which it may not use")
                problems += 1
    print(f"{len(sources)} files, {problems} include(s) against the dependency rules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
