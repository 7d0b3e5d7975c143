#!/usr/bin/env python3
"""Attribute `perf script` samples to the write path's stages (bench/cpu_budget.sh runs it).

Reads `perf script -F pid,event,period,ip,sym,dso` (cpu-clock samples with call chains, context-switch
samples without) on stdin. Each cpu-clock sample's frames are walked from the leaf towards the root; each
frame is described as "WHERE:FUNCTION" (WHERE: the source file of quorumd's own functions, from --symbols,
or the shared object's file name) and the first frame matching a rule decides the stage (rules are tried in
file order for a frame). Prints "ROLE STAGE VALUE" lines: µs of CPU per put per stage, `total`,
`unattributed_pct` and `ctxsw` (context switches per put). --top writes each stage's heaviest frames.
"""
import argparse
import collections
import re
import sys

OPTIMISER_SUFFIX = re.compile(r"\.(constprop|isra|part|cold|lto_priv|localalias)(\.\d+)*.*$")


def load_symbols(path):
    sources = {}
    with open(path) as f:
        for line in f:
            name, _, source = line.rstrip("\n").partition("\t")
            # A static name defined in several files is ambiguous: the first one is kept (quorumd's
            # stage-relevant statics have distinct names; the --top listing shows what was chosen).
            sources.setdefault(name, source)
    return sources


def load_rules(path):
    rules = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            stage, pattern = line.split(None, 1)
            rules.append((stage, re.compile(pattern)))
    return rules


def frame_name(sym, dso, sources):
    base = OPTIMISER_SUFFIX.sub("", sym)
    source = sources.get(sym) or sources.get(base)
    if source:
        return f"{source}:{base}"
    where = dso.rsplit("/", 1)[-1] if dso else "[unknown]"
    return f"{where}:{base}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", required=True)
    parser.add_argument("--rules", required=True)
    parser.add_argument("--role", action="append", default=[], help="PID=NAME")
    parser.add_argument("--puts", type=int, required=True)
    parser.add_argument("--load", default="")
    parser.add_argument("--top")
    args = parser.parse_args()

    sources = load_symbols(args.symbols)
    rules = load_rules(args.rules)
    roles = {}
    for item in args.role:
        pid, _, name = item.partition("=")
        roles[pid] = name
    classify_cache = {}

    def classify(frame):
        if frame not in classify_cache:
            classify_cache[frame] = next((stage for stage, rule in rules if rule.search(frame)), None)
        return classify_cache[frame]

    ns = collections.defaultdict(int)            # (role, stage) -> ns of CPU
    switches = collections.defaultdict(int)      # role -> context switches
    top = collections.defaultdict(int)           # (role, stage, deciding frame) -> ns
    leaf_top = collections.defaultdict(int)      # (role, stage, leaf frame) -> ns
    header = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\S+):\s*(.*)$")
    frame_line = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")

    def finish(sample):
        if sample is None:
            return
        role, period, frames = sample
        stage, decider = "other", frames[0] if frames else "[no frames]"
        for frame in frames:
            found = classify(frame)
            if found:
                stage, decider = found, frame
                break
        ns[(role, stage)] += period
        top[(role, stage, decider)] += period
        leaf_top[(role, stage, frames[0] if frames else "[no frames]")] += period

    sample = None
    for line in sys.stdin:
        m = header.match(line)
        if m:
            finish(sample)
            sample = None
            pid, period, event, rest = m.group(1), int(m.group(2)), m.group(3), m.group(4)
            role = roles.get(pid)
            if role is None:
                continue
            if event.startswith("context-switches"):
                switches[role] += period
            elif event.startswith("cpu-clock"):
                sample = (role, period, [])
            continue
        if sample is not None:
            f = frame_line.match(line)
            if f:
                sym_dso = f.group(1)
                sample[2].append(frame_name(sym_dso if sym_dso else "[unknown]", f.group(2), sources))
    finish(sample)

    stages = ["client", "raft", "wal", "transport", "apply", "reply", "handoff", "other"]
    for role in sorted(set(roles.values())):
        total = sum(v for (r, _), v in ns.items() if r == role)
        for stage in stages:
            print(f"{role} {stage} {ns[(role, stage)] / 1000 / args.puts:.1f}")
        print(f"{role} total {total / 1000 / args.puts:.1f}")
        print(f"{role} unattributed_pct {100 * ns[(role, 'other')] / total if total else 0:.1f}")
        print(f"{role} ctxsw {switches[role] / args.puts:.2f}")

    if args.top:
        with open(args.top, "w") as out:
            out.write(f"load {args.load}: {args.puts} puts; per role and stage, the frames that decided the stage "
                      "and the leaf frames, µs per put (top 12 each)\n")
            for role in sorted(set(roles.values())):
                for stage in stages:
                    amount = ns[(role, stage)]
                    if not amount:
                        continue
                    out.write(f"\n== {role} / {stage}: {amount / 1000 / args.puts:.1f} µs per put\n")
                    for title, table in (("decided by", top), ("leaf", leaf_top)):
                        rows = sorted(((v, k[2]) for k, v in table.items() if k[0] == role and k[1] == stage),
                                      reverse=True)[:12]
                        out.write(f"  {title}:\n")
                        for v, frame in rows:
                            out.write(f"    {v / 1000 / args.puts:8.2f}  {frame}\n")


if __name__ == "__main__":
    main()
