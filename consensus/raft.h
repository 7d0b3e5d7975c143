/* consensus/raft.h: the Raft protocol as a pure state machine.
 *
 * No I/O, no clock, no threads, no global state: the caller feeds in messages (raft_step), ticks
 * (raft_tick) and proposals, takes back a Ready bundle (what to persist, what to send, what to apply),
 * hands its parts to their owners, and calls raft_advance. Storage may be asynchronous: the caller
 * reports what became durable with raft_persisted. Time and randomness come in (ticks, the seed in the
 * config); decisions come out. One core is owned by one thread; nothing here locks.
 *
 * Messages are the protobuf-c types generated from consensus/raft.proto (Raftpb__Message, ...).
 * Rules quoted as "Figure 2" are from the Raft paper (Ongaro & Ousterhout, 2014); "thesis" is
 * Ongaro's dissertation (2014).
 */
#ifndef QUORUMD_CONSENSUS_RAFT_H
#define QUORUMD_CONSENSUS_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.pb-c.h"

/* Short names for the generated enums; the generated ones stay valid. */
#define RAFT_MSG_HUP RAFTPB__MESSAGE_TYPE__MSG_HUP
#define RAFT_MSG_BEAT RAFTPB__MESSAGE_TYPE__MSG_BEAT
#define RAFT_MSG_PROP RAFTPB__MESSAGE_TYPE__MSG_PROP
#define RAFT_MSG_APP RAFTPB__MESSAGE_TYPE__MSG_APP
#define RAFT_MSG_APP_RESP RAFTPB__MESSAGE_TYPE__MSG_APP_RESP
#define RAFT_MSG_VOTE RAFTPB__MESSAGE_TYPE__MSG_VOTE
#define RAFT_MSG_VOTE_RESP RAFTPB__MESSAGE_TYPE__MSG_VOTE_RESP
#define RAFT_MSG_SNAP RAFTPB__MESSAGE_TYPE__MSG_SNAP
#define RAFT_MSG_HEARTBEAT RAFTPB__MESSAGE_TYPE__MSG_HEARTBEAT
#define RAFT_MSG_HEARTBEAT_RESP RAFTPB__MESSAGE_TYPE__MSG_HEARTBEAT_RESP
#define RAFT_MSG_UNREACHABLE RAFTPB__MESSAGE_TYPE__MSG_UNREACHABLE
#define RAFT_MSG_SNAP_STATUS RAFTPB__MESSAGE_TYPE__MSG_SNAP_STATUS
#define RAFT_MSG_CHECK_QUORUM RAFTPB__MESSAGE_TYPE__MSG_CHECK_QUORUM
#define RAFT_MSG_TRANSFER_LEADER RAFTPB__MESSAGE_TYPE__MSG_TRANSFER_LEADER
#define RAFT_MSG_TIMEOUT_NOW RAFTPB__MESSAGE_TYPE__MSG_TIMEOUT_NOW
#define RAFT_MSG_READ_INDEX RAFTPB__MESSAGE_TYPE__MSG_READ_INDEX
#define RAFT_MSG_READ_INDEX_RESP RAFTPB__MESSAGE_TYPE__MSG_READ_INDEX_RESP
#define RAFT_MSG_PRE_VOTE RAFTPB__MESSAGE_TYPE__MSG_PRE_VOTE
#define RAFT_MSG_PRE_VOTE_RESP RAFTPB__MESSAGE_TYPE__MSG_PRE_VOTE_RESP

#define RAFT_ENTRY_NORMAL RAFTPB__ENTRY_TYPE__ENTRY_NORMAL
#define RAFT_ENTRY_CONF_CHANGE RAFTPB__ENTRY_TYPE__ENTRY_CONF_CHANGE
#define RAFT_ENTRY_CONF_CHANGE_V2 RAFTPB__ENTRY_TYPE__ENTRY_CONF_CHANGE_V2

#define RAFT_CC_ADD_NODE RAFTPB__CONF_CHANGE_TYPE__CONF_CHANGE_ADD_NODE
#define RAFT_CC_REMOVE_NODE RAFTPB__CONF_CHANGE_TYPE__CONF_CHANGE_REMOVE_NODE
#define RAFT_CC_UPDATE_NODE RAFTPB__CONF_CHANGE_TYPE__CONF_CHANGE_UPDATE_NODE
#define RAFT_CC_ADD_LEARNER_NODE RAFTPB__CONF_CHANGE_TYPE__CONF_CHANGE_ADD_LEARNER_NODE

#define RAFT_NONE 0 /* no member: member IDs are never 0 */

/* Error codes: one table (errors.c) gives each its message. */
#define RAFT_ERROR_LIST(X)                                                                       \
	X(RAFT_OK, "ok")                                                                           \
	X(RAFT_ERR_PROPOSAL_DROPPED, "raft proposal dropped")                                      \
	X(RAFT_ERR_NOT_LEADER, "not the leader")                                                   \
	X(RAFT_ERR_NO_LEADER, "no leader")                                                         \
	X(RAFT_ERR_TRANSFER_IN_PROGRESS, "leadership transfer in progress")                        \
	X(RAFT_ERR_CONF_CHANGE_PENDING, "a configuration change is already pending")              \
	X(RAFT_ERR_CONF_CHANGE_INVALID, "invalid configuration change")                           \
	X(RAFT_ERR_TOO_LARGE, "proposal exceeds the uncommitted size limit")                       \
	X(RAFT_ERR_MALFORMED, "malformed message")                                                 \
	X(RAFT_ERR_UNKNOWN_TYPE, "unknown message type")                                           \
	X(RAFT_ERR_LOCAL_TYPE, "local message type received from the network")                     \
	X(RAFT_ERR_UNKNOWN_SENDER, "message from a member not in the configuration")               \
	X(RAFT_ERR_BAD_INDEX, "impossible index or term in message")                               \
	X(RAFT_ERR_STALE_TERM, "message from an older term ignored")                               \
	X(RAFT_ERR_IGNORED, "message ignored in this state")                                       \
	X(RAFT_ERR_COMPACTED, "requested index is compacted")                                      \
	X(RAFT_ERR_UNAVAILABLE, "requested index is not available")                                \
	X(RAFT_ERR_SNAPSHOT_OUT_OF_DATE, "snapshot is older than the existing one")                \
	X(RAFT_ERR_NOMEM, "out of memory")                                                         \
	X(RAFT_ERR_INVALID_ARGUMENT, "invalid argument")

enum raft_error {
#define RAFT_ERROR_ENUM(code, text) code,
	RAFT_ERROR_LIST(RAFT_ERROR_ENUM)
#undef RAFT_ERROR_ENUM
	RAFT_ERROR_COUNT
};

/* The text of an error code ("unknown error" for codes outside the table). */
const char *raft_strerror(int code);

enum raft_role { RAFT_FOLLOWER, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };
const char *raft_role_name(enum raft_role role);

enum raft_read_only_option {
	/* ReadIndex confirmed by a heartbeat round with a quorum (thesis §6.4): always linearizable. */
	RAFT_READ_ONLY_SAFE,
	/* Served from the leader's lease (thesis §6.4.1): needs check_quorum and bounded clock drift. */
	RAFT_READ_ONLY_LEASE_BASED,
};

struct raft_config {
	uint64_t id; /* this member, never RAFT_NONE */
	/* A follower campaigns after a randomized timeout in [election_tick, 2*election_tick) ticks. */
	int election_tick;
	int heartbeat_tick; /* the leader sends heartbeats every heartbeat_tick ticks */
	/* The caller's durable applied index at restart: committed entries above it are delivered again. */
	uint64_t applied;
	uint64_t max_size_per_msg;          /* bytes of entries in one MsgApp (0: one entry) */
	uint64_t max_committed_size_per_ready; /* bytes of committed entries per Ready (0: no limit) */
	uint64_t max_uncommitted_entries_size; /* leader refuses proposals beyond this (0: no limit) */
	int max_inflight_msgs;              /* MsgApps in flight per follower in replicate state */
	uint64_t max_inflight_bytes;        /* bytes of entries in flight per follower (0: no limit) */
	bool check_quorum;                  /* leader steps down without an active quorum */
	bool pre_vote;                      /* PreVote round before a real election (thesis §9.6) */
	enum raft_read_only_option read_only_option;
	bool disable_proposal_forwarding;   /* followers drop proposals instead of forwarding them */
	uint64_t random_seed;               /* the core's PRNG: same seed, same schedule, same decisions */
};

/* Fills defaults etcd uses: election 10 ticks, heartbeat 1, 1 MiB per message, 256 in flight. */
void raft_config_defaults(struct raft_config *config, uint64_t id);

/* What storage recovered, handed to raft_new. All pointers are borrowed: the core copies them. */
struct raft_restore {
	const Raftpb__HardState *hard_state;  /* NULL: a new member (term 0, no vote, commit 0) */
	const Raftpb__Snapshot *snapshot;     /* NULL: no snapshot; otherwise its metadata's conf_state is
	                                        * the configuration at its index */
	Raftpb__Entry *const *entries;        /* the log after the snapshot, in order, contiguous */
	size_t entries_count;
};

typedef struct raft raft_t;

/* A borrowed byte range (proposals, contexts). */
struct raft_buffer {
	const void *data;
	size_t length;
};

/* Creates a core. On error returns NULL and writes a message into errbuf. */
raft_t *raft_new(const struct raft_config *config, const struct raft_restore *restore, char *err,
                 size_t errlen);
void raft_free(raft_t *r);

/* A brand-new cluster: appends one ConfChange(ADD_NODE) entry per voter at term 1, indexes 1..n,
 * commits and applies them (every initial member does the same, so their logs agree, and a member
 * added later replays them). Only on an empty log. They show up in the next Ready as entries to
 * persist and then as committed entries. */
int raft_bootstrap(raft_t *r, const uint64_t *voters, size_t count);
/* The same, each ConfChange carrying contexts[k] (e.g. the member's name and URLs, which a member added
 * later learns by replaying the log). contexts may be NULL. */
int raft_bootstrap_members(raft_t *r, const uint64_t *voters, const struct raft_buffer *contexts, size_t count);

/* --- Inputs ------------------------------------------------------------------------------------ */

/* Feeds one message from a peer (or a local one such as MSG_HUP). The message is only read; the core
 * copies what it keeps. Returns RAFT_OK or the reason the message was rejected (also counted). */
int raft_step(raft_t *r, const Raftpb__Message *message);

/* Unpacks a protobuf-encoded message and steps it: RAFT_ERR_MALFORMED when it does not decode. */
int raft_step_bytes(raft_t *r, const uint8_t *bytes, size_t length);

/* One logical clock tick (the caller's heartbeat-interval timer). */
void raft_tick(raft_t *r);

/* Starts an election now (as if the election timeout had elapsed). */
int raft_campaign(raft_t *r);

/* Proposes one normal entry. On the leader *index_out (if not NULL) gets the entry's index; a
 * follower forwards it to the leader (*index_out = 0) unless forwarding is disabled. */
int raft_propose(raft_t *r, const void *data, size_t length, uint64_t *index_out);

/* Proposes several entries in one step (batched proposals: one Ready, one append, one fsync). */
int raft_propose_batch(raft_t *r, const struct raft_buffer *buffers, size_t count, uint64_t *first_index_out);

/* Proposes a membership change; only the leader accepts, at most one pending at a time, and the
 * change must be valid against the current configuration (checked here, so it is valid when applied).
 * A change takes effect when its entry is committed and delivered (raft_advance). */
int raft_propose_conf_change(raft_t *r, const Raftpb__ConfChange *change, uint64_t *index_out);
int raft_propose_conf_change_v2(raft_t *r, const Raftpb__ConfChangeV2 *change, uint64_t *index_out);

/* Asks the leader to hand leadership to transferee (thesis §3.10): it catches the target up, then
 * sends TimeoutNow. Proposals are refused while the transfer runs; it aborts after an election timeout. */
int raft_transfer_leadership(raft_t *r, uint64_t transferee);

/* Requests a linearizable read point; the answer comes back in a Ready's read_states with the same
 * context once confirmed. The context identifies the request (e.g. an 8-byte request id). */
int raft_read_index(raft_t *r, const void *context, size_t length);

/* Transport feedback: peer unreachable (leader drops it to probe), snapshot delivered or failed. */
void raft_report_unreachable(raft_t *r, uint64_t id);
void raft_report_snapshot(raft_t *r, uint64_t id, bool failed);

/* Storage reports that everything handed out up to (index, term) is durable: entries, the hard state
 * of the same Readys, and a snapshot at that index. A report whose term no longer matches the log
 * (the suffix was replaced meanwhile) is ignored. */
void raft_persisted(raft_t *r, uint64_t index, uint64_t term);

/* The application has a snapshot of its state at index (<= applied): the core keeps a copy of
 * data (sent to followers that need it) and may drop log entries up to index with raft_compact.
 * conf_state NULL means the configuration in force at the applied index. */
int raft_create_snapshot(raft_t *r, uint64_t index, const Raftpb__ConfState *conf_state, const void *data,
                         size_t length);
/* Drops log entries up to and including index (<= the snapshot index and <= persisted). */
int raft_compact(raft_t *r, uint64_t index);

/* --- Output: the Ready bundle --------------------------------------------------------------------
 * Everything in a Ready points into memory owned by the core and stays valid until raft_advance; no
 * other raft_* call may come between raft_ready and raft_advance. The caller copies what it keeps.
 * The ordering contract, field by field: */
struct raft_read_state {
	uint64_t index; /* serve the read once the applied index reaches this */
	const uint8_t *context;
	size_t context_length;
};

struct raft_ready {
	/* Informational; no ordering requirement. */
	bool soft_state_changed;
	uint64_t leader;
	enum raft_role role;

	/* Persist before any message in messages_after_persist leaves. Commit need not be fsynced for
	 * safety, but term and vote must be (a vote forgotten in a crash could elect two leaders). */
	bool has_hard_state;
	Raftpb__HardState hard_state;

	/* A snapshot to install (restore the state machine from it) and persist: the log before it is
	 * gone. Comes before entries (which then start at snapshot index + 1). */
	const Raftpb__Snapshot *snapshot;

	/* Append to stable storage, first dropping any stored entries with index >= entries[0]->index (a
	 * follower's conflicting suffix). Then call raft_persisted(last index, last term). */
	Raftpb__Entry **entries;
	size_t entries_count;

	/* May be sent at once, in parallel with the local write: the leader's appends, heartbeats and
	 * snapshots (thesis §10.2.1: the leader's own entry counts toward quorum only once persisted). */
	Raftpb__Message **messages;
	size_t messages_count;

	/* Send only after hard state, snapshot and entries of this Ready and of every earlier Ready are
	 * durable: vote requests and grants, append acknowledgements. Inputs stepped since the last Ready
	 * may have left older promises here: a grant or request of an earlier term (safe: the hard state
	 * persisted with them is of a later term, so that vote can never be cast again), but never an
	 * acknowledgement of entries a later input replaced (those are withdrawn). */
	Raftpb__Message **messages_after_persist;
	size_t messages_after_persist_count;

	/* Committed and locally durable: apply in order. Conf-change entries among them take effect in the
	 * core at raft_advance. */
	Raftpb__Entry **committed_entries;
	size_t committed_entries_count;

	/* Confirmed read points for raft_read_index requests made on this member. */
	struct raft_read_state *read_states;
	size_t read_states_count;

	/* Convenience: the (index, term) to report with raft_persisted once the above is durable; 0 when
	 * this Ready has nothing to persist. */
	uint64_t persist_index;
	uint64_t persist_term;
};

/* True when there is something to do; fills *ready. */
bool raft_has_ready(const raft_t *r);
bool raft_ready(raft_t *r, struct raft_ready *ready);
/* The caller has taken the Ready: entries and snapshot are handed to storage, committed entries to
 * the application (conf changes take effect now). Frees the Ready's memory. */
void raft_advance(raft_t *r, const struct raft_ready *ready);

/* --- Introspection ------------------------------------------------------------------------------ */

enum raft_progress_state { RAFT_PROGRESS_PROBE, RAFT_PROGRESS_REPLICATE, RAFT_PROGRESS_SNAPSHOT };

struct raft_peer_status {
	uint64_t id;
	uint64_t match;
	uint64_t next;
	enum raft_progress_state state;
	bool is_learner;
	bool recent_active;
};

struct raft_counters {
	uint64_t messages_stepped;
	uint64_t rejected[RAFT_ERROR_COUNT]; /* by reason, e.g. rejected[RAFT_ERR_MALFORMED] */
	uint64_t elections_started;
	uint64_t leader_changes;
	uint64_t proposals_dropped;
	uint64_t snapshots_sent;
};

struct raft_status {
	uint64_t id;
	uint64_t term;
	uint64_t vote;
	uint64_t commit;
	uint64_t applied;   /* last index delivered in committed_entries and advanced */
	uint64_t persisted; /* last index known durable */
	uint64_t first_index;
	uint64_t last_index;
	uint64_t leader;
	uint64_t lead_transferee;
	enum raft_role role;
	bool joint;          /* a joint configuration is in force */
	size_t peers_count;  /* progress entries, filled on the leader only */
};

void raft_get_status(const raft_t *r, struct raft_status *status);
/* Copies up to max peers' progress (leader only); returns how many there are. */
size_t raft_get_progress(const raft_t *r, struct raft_peer_status *peers, size_t max);
const struct raft_counters *raft_get_counters(const raft_t *r);

/* The configuration in force. The arrays stay valid until the next raft_* call that changes it. */
struct raft_conf_view {
	const uint64_t *voters;
	size_t voters_count;
	const uint64_t *voters_outgoing;
	size_t voters_outgoing_count;
	const uint64_t *learners;
	size_t learners_count;
	const uint64_t *learners_next;
	size_t learners_next_count;
	bool auto_leave;
};
void raft_get_conf(const raft_t *r, struct raft_conf_view *view);

/* The term of the entry at index, or 0 when compacted or beyond the log. */
uint64_t raft_term_at(const raft_t *r, uint64_t index);

/* Copies the entries in [low, high) into a freshly allocated array of unpacked entries for the caller
 * (e.g. a simulation checking the log); free with raft_free_entries. RAFT_ERR_COMPACTED or
 * RAFT_ERR_UNAVAILABLE when out of range. */
int raft_copy_entries(const raft_t *r, uint64_t low, uint64_t high, Raftpb__Entry ***entries_out,
                      size_t *count_out);
void raft_free_entries(Raftpb__Entry **entries, size_t count);

#endif
