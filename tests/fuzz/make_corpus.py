#!/usr/bin/env python3
"""tests/fuzz/make_corpus.py: writes the seed corpus of fuzz-raft-step into corpus/raft-step/.

Each seed is a script in the format fuzz_raft_step.c reads: a configuration byte, then records of a
selector byte (action * 3 + member - 1) and the action's bytes. The seeds walk the paths a fuzzer
would take long to find alone: elections with and without PreVote, replication under drops and
partitions, reads, membership changes, transfer, snapshots, and valid packed protobuf messages of every
type (so mutations start from well-formed wire data). Deterministic: rerun to regenerate.

    python3 tests/fuzz/make_corpus.py
"""
import os
import random

# The actions, numbered as enum action in fuzz_raft_step.c.
(TICK, TICK_ELECTION, CAMPAIGN, PROPOSE, PROPOSE_BATCH, READY, DELIVER_ONE, DELIVER_ALL, DROP_ONE,
 DUPLICATE_ONE, STABILIZE, READ_INDEX, CONF_CHANGE, CONF_CHANGE_V2, TRANSFER, UNREACHABLE,
 SNAPSHOT_STATUS, SNAPSHOT_COMPACT, STEP_BYTES, STEP_MESSAGE, TAMPER, TOGGLE_LINK, READY_ASYNC,
 PERSIST_ONE, RESTART) = range(25)

# Configuration flags (byte 0).
PRE_VOTE, CHECK_QUORUM, LEASE, SMALL_MESSAGES, SMALL_WINDOW, SMALL_UNCOMMITTED, NO_FORWARDING = (
    1, 2, 4, 8, 16, 32, 64)

# Message types of raft.proto.
(MSG_HUP, MSG_BEAT, MSG_PROP, MSG_APP, MSG_APP_RESP, MSG_VOTE, MSG_VOTE_RESP, MSG_SNAP, MSG_HEARTBEAT,
 MSG_HEARTBEAT_RESP, MSG_UNREACHABLE, MSG_SNAP_STATUS, MSG_CHECK_QUORUM, MSG_TRANSFER_LEADER,
 MSG_TIMEOUT_NOW, MSG_READ_INDEX, MSG_READ_INDEX_RESP, MSG_PRE_VOTE, MSG_PRE_VOTE_RESP) = range(19)


# ---- a minimal protobuf writer for raft.proto ------------------------------------------------------

def varint(value):
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(value) if value else b""


def field_bytes(number, data):
    return varint((number << 3) | 2) + varint(len(data)) + data if data else b""


def entry(term, index, data=b"", kind=0):
    return field_varint(1, kind) + field_varint(2, term) + field_varint(3, index) + field_bytes(4, data)


def conf_state(voters, learners=()):
    packed_voters = b"".join(varint(v) for v in voters)
    packed_learners = b"".join(varint(v) for v in learners)
    return field_bytes(1, packed_voters) + field_bytes(2, packed_learners)


def snapshot(index, term, voters, data=b"state"):
    metadata = field_bytes(1, conf_state(voters)) + field_varint(2, index) + field_varint(3, term)
    return field_bytes(1, data) + field_bytes(2, metadata)


def message(kind, to, sender, term, log_term=0, index=0, entries=(), commit=0, snap=None, reject=False,
            reject_hint=0, context=b""):
    out = field_varint(1, kind) + field_varint(2, to) + field_varint(3, sender) + field_varint(4, term)
    out += field_varint(5, log_term) + field_varint(6, index)
    for e in entries:
        out += varint((7 << 3) | 2) + varint(len(e)) + e
    out += field_varint(8, commit)
    if snap is not None:
        out += field_bytes(9, snap)
    out += field_varint(10, 1 if reject else 0) + field_varint(11, reject_hint) + field_bytes(12, context)
    return out


# ---- script building ---------------------------------------------------------------------------------

class Script:
    def __init__(self, flags=0):
        self.data = bytearray([flags])

    def act(self, action, member=1, *arguments):
        self.data.append(action * 3 + (member - 1))
        for argument in arguments:
            if isinstance(argument, (bytes, bytearray)):
                self.data += argument
            else:
                self.data.append(argument & 0xFF)
        return self

    def elect(self, member=1):
        return self.act(CAMPAIGN, member).act(STABILIZE, member)

    def propose(self, member, text):
        data = text.encode()
        return self.act(PROPOSE, member, len(data), data)

    def step_bytes(self, member, packed):
        return self.act(STEP_BYTES, member, len(packed) & 0xFF, len(packed) >> 8, packed)

    def step_message(self, member, sender, packed):
        return self.act(STEP_MESSAGE, member, sender, len(packed) & 0xFF, len(packed) >> 8, packed)

    def heartbeats(self, rounds, member=1):
        for _ in range(rounds):
            self.act(TICK, member).act(STABILIZE, member)
        return self


def seeds():
    out = {}

    # Elections.
    for flags, name in ((0, "plain"), (PRE_VOTE, "prevote"), (PRE_VOTE | CHECK_QUORUM, "prevote-cq"),
                        (CHECK_QUORUM | LEASE, "lease")):
        out["elect-" + name] = Script(flags).elect(1)
        out["elect-by-timeout-" + name] = Script(flags).act(TICK_ELECTION, 2).act(STABILIZE, 1)
        out["competing-candidates-" + name] = (Script(flags).act(CAMPAIGN, 1).act(CAMPAIGN, 2)
                                                .act(READY, 1).act(READY, 2).act(DELIVER_ALL, 1)
                                                .act(READY, 3).act(DELIVER_ALL, 1).act(STABILIZE, 1))

    # Replication.
    s = Script(0).elect(1)
    for k in range(5):
        s.propose(1, "entry-%d" % k)
    out["replicate"] = s.act(STABILIZE, 1)
    out["replicate-batch"] = Script(0).elect(1).act(PROPOSE_BATCH, 1, 7).act(STABILIZE, 1)
    out["forwarded-proposal"] = Script(0).elect(1).propose(2, "via-follower").act(STABILIZE, 1)
    out["no-forwarding"] = Script(NO_FORWARDING).elect(1).propose(3, "dropped").act(STABILIZE, 1)
    s = Script(SMALL_MESSAGES | SMALL_WINDOW).elect(1)
    for k in range(8):
        s.propose(1, "windowed-%d" % k).act(READY, 1)
    out["flow-control"] = s.act(STABILIZE, 1).heartbeats(3)
    s = Script(SMALL_UNCOMMITTED).elect(1).act(TOGGLE_LINK, 1, 1).act(TOGGLE_LINK, 1, 2)
    for k in range(10):
        s.propose(1, "x" * 40)
    out["uncommitted-limit"] = s.act(TOGGLE_LINK, 1, 1).act(TOGGLE_LINK, 1, 2).heartbeats(3)

    # Faults: drops, duplicates, reordering, partitions.
    s = Script(0).act(CAMPAIGN, 1).act(READY, 1).act(DUPLICATE_ONE, 1, 0).act(DELIVER_ONE, 1, 2)
    out["duplicate-vote"] = s.act(STABILIZE, 1)
    s = Script(0).elect(1).propose(1, "a").propose(1, "b").act(READY, 1).act(DROP_ONE, 1, 0)
    out["dropped-append"] = s.act(STABILIZE, 1).heartbeats(3)
    s = Script(0).elect(1).propose(1, "a").act(READY, 1).propose(1, "b").act(READY, 1)
    out["reordered-appends"] = s.act(DELIVER_ONE, 1, 3).act(DELIVER_ONE, 1, 1).act(STABILIZE, 1)
    s = Script(PRE_VOTE | CHECK_QUORUM).elect(1).act(TOGGLE_LINK, 3, 1).act(TOGGLE_LINK, 3, 2)
    s.act(TICK_ELECTION, 3).act(STABILIZE, 1).act(TICK_ELECTION, 3).act(STABILIZE, 1)
    out["partitioned-rejoin"] = s.act(TOGGLE_LINK, 3, 1).act(TOGGLE_LINK, 3, 2).heartbeats(5)
    s = Script(CHECK_QUORUM).elect(1).act(TOGGLE_LINK, 1, 2).act(TOGGLE_LINK, 1, 3)
    out["leader-isolated"] = s.act(TICK_ELECTION, 1).act(TICK_ELECTION, 2).act(STABILIZE, 1)
    s = Script(0).elect(1).act(TOGGLE_LINK, 1, 1).propose(1, "lost").act(STABILIZE, 1)
    s.act(TICK_ELECTION, 3).act(STABILIZE, 1).act(TOGGLE_LINK, 1, 1)
    out["leader-change-overwrites"] = s.heartbeats(4, 3)

    # Reads.
    out["read-index"] = Script(0).elect(1).act(READ_INDEX, 1).act(STABILIZE, 1)
    out["read-index-follower"] = Script(0).elect(1).act(READ_INDEX, 2).act(STABILIZE, 1)
    out["read-lease"] = Script(CHECK_QUORUM | LEASE).elect(1).act(READ_INDEX, 1).act(READY, 1)
    out["read-before-commit"] = (Script(0).act(CAMPAIGN, 1).act(READY, 1).act(DELIVER_ALL, 1)
                                 .act(READY, 2).act(READY, 3).act(DELIVER_ALL, 1).act(READ_INDEX, 1)
                                 .act(STABILIZE, 1))

    # Membership.
    out["remove-member"] = Script(0).elect(1).act(CONF_CHANGE, 1, (2 << 2) | 1).act(STABILIZE, 1).heartbeats(3)
    out["add-learner"] = Script(0).elect(1).act(CONF_CHANGE, 1, (3 << 2) | 3).act(STABILIZE, 1)
    out["remove-leader"] = Script(0).elect(1).act(CONF_CHANGE, 1, (0 << 2) | 1).act(STABILIZE, 1).act(
        TICK_ELECTION, 2).act(STABILIZE, 1)
    # Joint: add 4 and remove 3, auto / explicit, then leave.
    out["joint-auto"] = Script(0).elect(1).act(CONF_CHANGE_V2, 1, (0 << 4) | (3 << 2) | 0,
                                                (2 << 4) | (2 << 2) | 1).act(STABILIZE, 1).heartbeats(3)
    out["joint-explicit"] = (Script(0).elect(1).act(CONF_CHANGE_V2, 1, (2 << 4) | (3 << 2) | 0,
                                                    (2 << 4) | (2 << 2) | 1).act(STABILIZE, 1)
                             .act(CONF_CHANGE_V2, 1, 0, 0).act(STABILIZE, 1).heartbeats(2))
    out["pending-change"] = (Script(0).elect(1).act(CONF_CHANGE, 1, (3 << 2) | 3)
                             .act(CONF_CHANGE, 1, (2 << 2) | 1).act(STABILIZE, 1))

    # Transfer.
    out["transfer"] = Script(0).elect(1).act(TRANSFER, 1, 1).act(STABILIZE, 1)
    out["transfer-lagging"] = (Script(0).elect(1).act(TOGGLE_LINK, 1, 2).propose(1, "lag").act(STABILIZE, 1)
                               .act(TOGGLE_LINK, 1, 2).act(TRANSFER, 1, 2).act(STABILIZE, 1).heartbeats(3))
    out["transfer-abort"] = (Script(0).elect(1).act(TOGGLE_LINK, 1, 2).act(TRANSFER, 1, 2)
                             .propose(1, "refused").heartbeats(12))

    # Snapshots.
    s = Script(0).elect(1).act(TOGGLE_LINK, 1, 2)
    for k in range(6):
        s.propose(1, "before-%d" % k).act(STABILIZE, 1)
    s.act(SNAPSHOT_COMPACT, 1).act(TOGGLE_LINK, 1, 2).heartbeats(4)
    out["snapshot-to-follower"] = s.act(SNAPSHOT_STATUS, 1, 2).act(UNREACHABLE, 1, 1).heartbeats(2)

    # Asynchronous storage: writes complete later, out of step with the protocol.
    s = Script(0).elect(1).propose(1, "async").act(READY_ASYNC, 1).act(DELIVER_ALL, 1)
    s.act(READY_ASYNC, 2).act(READY_ASYNC, 3).act(DELIVER_ALL, 1).act(PERSIST_ONE, 2).act(DELIVER_ALL, 1)
    s.act(READY, 1).act(PERSIST_ONE, 3).act(PERSIST_ONE, 1)
    out["async-replicate"] = s.act(STABILIZE, 1)
    s = Script(0).act(CAMPAIGN, 1).act(READY_ASYNC, 1).act(DELIVER_ALL, 1).act(READY_ASYNC, 2)
    out["async-vote"] = s.act(DELIVER_ALL, 1).act(PERSIST_ONE, 2).act(DELIVER_ALL, 1).act(STABILIZE, 1)
    s = Script(0).elect(1).act(TOGGLE_LINK, 1, 1).act(TOGGLE_LINK, 1, 2)
    s.propose(1, "doomed").act(READY_ASYNC, 1).act(TICK_ELECTION, 2).act(STABILIZE, 2)
    s.act(TOGGLE_LINK, 1, 1).act(TOGGLE_LINK, 1, 2).heartbeats(2, 2).act(PERSIST_ONE, 1)
    out["async-overwritten-suffix"] = s.heartbeats(3, 2)
    s = Script(SMALL_MESSAGES).elect(1)
    for k in range(4):
        s.propose(1, "p%d" % k).act(READY_ASYNC, 1).act(DELIVER_ALL, 1).act(READY_ASYNC, 2).act(READY_ASYNC, 3)
    out["async-pipeline"] = s.act(PERSIST_ONE, 2).act(DELIVER_ALL, 1).act(PERSIST_ONE, 1).act(STABILIZE, 1)

    # Crash and restart from storage.
    s = Script(0).elect(1).propose(1, "kept").act(STABILIZE, 1).act(RESTART, 2, 0).heartbeats(2)
    out["restart-follower"] = s.propose(1, "after").act(STABILIZE, 1)
    s = Script(0).elect(1).propose(1, "kept").act(STABILIZE, 1).act(RESTART, 1, 3)
    out["restart-leader-lost-applied"] = s.act(TICK_ELECTION, 2).act(STABILIZE, 1).heartbeats(3, 2)
    s = Script(0).act(CAMPAIGN, 1).act(READY, 1).act(DELIVER_ALL, 1).act(READY, 2).act(RESTART, 2, 0)
    out["restart-after-vote"] = s.act(CAMPAIGN, 3).act(STABILIZE, 1)
    s = Script(0).elect(1).act(TOGGLE_LINK, 1, 2)
    for k in range(5):
        s.propose(1, "before-%d" % k).act(STABILIZE, 1)
    s.act(SNAPSHOT_COMPACT, 1).act(TOGGLE_LINK, 1, 2).heartbeats(3).act(RESTART, 3, 1).act(RESTART, 1, 2)
    out["restart-after-snapshot"] = s.act(TICK_ELECTION, 2).act(STABILIZE, 1).heartbeats(3, 2)
    s = Script(0).elect(1).act(CONF_CHANGE, 1, (2 << 2) | 1).act(STABILIZE, 1).act(RESTART, 2, 2)
    out["restart-after-conf-change"] = s.act(TICK_ELECTION, 2).act(STABILIZE, 1).heartbeats(3, 2)

    # Figure 8 with three members: S1 (term 2) holds index 5 alone; S2 wins term 3 and holds its own
    # index 5; S1 restarts, wins term 4 and replicates its term-2 index 5 to S3 (one entry per append)
    # but not its term-4 entry; S2 restarts and wins term 5 with S3's vote, overwriting index 5. A core
    # that committed S1's index 5 by counting replicas breaks State Machine Safety here.
    s = Script(SMALL_MESSAGES).elect(1)
    s.act(TOGGLE_LINK, 1, 1).act(TOGGLE_LINK, 1, 2)
    s.propose(1, "e2").act(READY, 1).act(DELIVER_ALL, 1)
    s.act(CAMPAIGN, 2).act(READY, 2).act(DELIVER_ALL, 1).act(READY, 3).act(DELIVER_ALL, 1)
    s.act(TOGGLE_LINK, 2, 2).act(READY, 2).act(DELIVER_ALL, 1)
    s.act(RESTART, 1, 0).act(TOGGLE_LINK, 1, 2)
    for _ in range(2):
        s.act(CAMPAIGN, 1).act(READY, 1).act(DELIVER_ALL, 1).act(READY, 3).act(DELIVER_ALL, 1).act(READY, 1)
    s.act(DELIVER_ALL, 1).act(READY, 3).act(DELIVER_ALL, 1)
    s.act(READY, 1).act(DELIVER_ALL, 1).act(READY, 3)
    s.act(DELIVER_ALL, 1).act(TOGGLE_LINK, 1, 2).act(READY, 1).act(DELIVER_ALL, 1)
    s.act(RESTART, 2, 0).act(TOGGLE_LINK, 2, 2)
    for _ in range(2):
        s.act(CAMPAIGN, 2).act(STABILIZE, 1)
    out["figure8-schedule"] = s.act(STABILIZE, 1)

    # Valid packed messages of every type, stepped raw and re-addressed.
    e = [entry(1, 4, b"one"), entry(2, 5, b"two")]
    packed = {
        "app": message(MSG_APP, 1, 2, 2, log_term=1, index=3, entries=e, commit=4),
        "app-resp": message(MSG_APP_RESP, 1, 2, 2, index=5),
        "app-reject": message(MSG_APP_RESP, 1, 2, 2, index=5, reject=True, reject_hint=3, log_term=1),
        "vote": message(MSG_VOTE, 1, 2, 5, log_term=1, index=3),
        "vote-resp": message(MSG_VOTE_RESP, 1, 2, 2),
        "pre-vote": message(MSG_PRE_VOTE, 1, 3, 3, log_term=1, index=10),
        "pre-vote-resp": message(MSG_PRE_VOTE_RESP, 1, 3, 3),
        "snap": message(MSG_SNAP, 1, 2, 3, snap=snapshot(8, 2, [1, 2, 3])),
        "heartbeat": message(MSG_HEARTBEAT, 1, 2, 2, commit=3, context=b"ctx"),
        "heartbeat-resp": message(MSG_HEARTBEAT_RESP, 1, 2, 2, context=b"ctx"),
        "prop": message(MSG_PROP, 1, 2, 0, entries=[entry(0, 0, b"proposal")]),
        "transfer": message(MSG_TRANSFER_LEADER, 1, 3, 2),
        "timeout-now": message(MSG_TIMEOUT_NOW, 1, 2, 2),
        "read-index": message(MSG_READ_INDEX, 1, 2, 2, context=b"read-ctx"),
        "read-index-resp": message(MSG_READ_INDEX_RESP, 1, 2, 2, index=3, context=b"read-ctx"),
        "hup": message(MSG_HUP, 1, 2, 2),
        "conf-entry": message(MSG_APP, 1, 2, 2, log_term=1, index=3,
                              entries=[entry(2, 4, varint(0x10) + varint(1) + varint(0x18) + varint(2), kind=1)]),
    }
    for name, wire in packed.items():
        out["raw-" + name] = Script(0).step_bytes(1, wire).act(STABILIZE, 1)
        out["raw-" + name + "-after-election"] = Script(PRE_VOTE | CHECK_QUORUM).elect(2).step_message(1, 1, wire).act(
            STABILIZE, 1)
    out["raw-garbage"] = Script(0).step_bytes(1, bytes([0xFF] * 11 + [0x01])).step_bytes(2, b"\x0b").elect(1)

    # Tampering with real traffic.
    s = Script(0).act(CAMPAIGN, 1).act(READY, 1).act(TAMPER, 1, 0, 0, 5).act(STABILIZE, 1)
    out["tamper-vote-term"] = s
    s = Script(0).elect(1).propose(1, "t").act(READY, 1).act(TAMPER, 1, 0, 2, 0x83).act(STABILIZE, 1)
    out["tamper-append-index"] = s
    s = Script(0).elect(1).propose(1, "t").act(READY, 1).act(TAMPER, 1, 0, 6, 7).act(STABILIZE, 1)
    out["tamper-entry-term"] = s
    s = Script(0).elect(1).propose(1, "t").act(READY, 1).act(DELIVER_ALL, 1).act(READY, 2)
    out["tamper-ack"] = s.act(TAMPER, 1, 0, 2, 100).act(STABILIZE, 1)

    # A few random scripts over the honest actions (seeded: the corpus is reproducible).
    rng = random.Random(20261125)
    honest = [TICK, TICK_ELECTION, CAMPAIGN, PROPOSE, READY, DELIVER_ONE, DELIVER_ALL, DROP_ONE,
              DUPLICATE_ONE, STABILIZE, READ_INDEX, TRANSFER, TOGGLE_LINK, READY_ASYNC, PERSIST_ONE, RESTART]
    for k in range(6):
        s = Script(rng.choice([0, PRE_VOTE, PRE_VOTE | CHECK_QUORUM]))
        for _ in range(60):
            action = rng.choice(honest)
            member = rng.randint(1, 3)
            if action == PROPOSE:
                s.propose(member, "r%d" % rng.randint(0, 99))
            elif action in (DELIVER_ONE, DROP_ONE, DUPLICATE_ONE, TRANSFER, TOGGLE_LINK, RESTART):
                s.act(action, member, rng.randint(0, 255))
            else:
                s.act(action, member)
        out["random-%d" % k] = s
    return out


def main():
    directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "raft-step")
    os.makedirs(directory, exist_ok=True)
    for old in os.listdir(directory):
        os.remove(os.path.join(directory, old))
    corpus = seeds()
    for name, script in sorted(corpus.items()):
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(bytes(script.data))
    print("wrote %d seeds to %s" % (len(corpus), directory))


if __name__ == "__main__":
    main()
