/* consensus/internal.h: the core's private state, shared by the files of consensus/ only.
 *
 * One file per topic: log.c (the in-memory log and its durable/handed-out marks), progress.c (what the
 * leader knows of each follower, with the in-flight window), quorum.c (majority and joint majority
 * arithmetic), conf_change.c (membership changes), election.c, replication.c, read_only.c, ready.c,
 * raft.c (roles and message dispatch), arena.c (the Ready's memory).
 */
#ifndef QUORUMD_CONSENSUS_INTERNAL_H
#define QUORUMD_CONSENSUS_INTERNAL_H

#include "alloc.h"
#include "raft.h"

/* Terms at or above this are refused (see raft_step); a member at it no longer campaigns. */
#define RAFT_MAX_TERM (UINT64_C(1) << 63)

/* ---- memory ---------------------------------------------------------------------------------- */

/* Allocation is common/alloc.h's and cannot fail: the core has no way to make progress without memory,
 * and a half-updated state machine would be worse than a crash that restarts from durable state. */

/* Bump allocator for everything a Ready points at; emptied by raft_advance. Chunks are never moved,
 * so pointers stay valid while more is allocated. */
struct arena_chunk;
struct arena {
	struct arena_chunk *chunks;
};
void *arena_alloc(struct arena *arena, size_t size);
void *arena_memdup(struct arena *arena, const void *data, size_t length);
void arena_reset(struct arena *arena);
void arena_free(struct arena *arena);

/* ---- id sets: small sorted arrays of member ids ------------------------------------------------ */

struct id_set {
	uint64_t *ids;
	size_t count;
	size_t capacity;
};
bool id_set_contains(const struct id_set *set, uint64_t id);
void id_set_add(struct id_set *set, uint64_t id);
void id_set_remove(struct id_set *set, uint64_t id);
void id_set_copy(struct id_set *destination, const struct id_set *source);
void id_set_clear(struct id_set *set);
void id_set_free(struct id_set *set);

/* ---- quorum.c ---------------------------------------------------------------------------------- */

enum vote_result { VOTE_PENDING, VOTE_LOST, VOTE_WON };

/* The largest index acknowledged by a majority of voters; acked(id) gives each voter's index.
 * An empty configuration returns UINT64_MAX so that it never limits a joint configuration. */
typedef uint64_t (*acked_index_fn)(const void *context, uint64_t id);
uint64_t majority_committed_index(const struct id_set *voters, acked_index_fn acked, const void *context);
/* votes(id): 1 granted, 0 rejected, -1 no answer yet. */
typedef int (*vote_of_fn)(const void *context, uint64_t id);
enum vote_result majority_vote_result(const struct id_set *voters, vote_of_fn vote_of, const void *context);

/* ---- progress.c -------------------------------------------------------------------------------- */

/* The sliding window of MsgApps in flight to one follower (flow control by count and bytes). */
struct inflight {
	uint64_t index; /* last entry index of the message */
	uint64_t bytes;
};
struct inflights {
	struct inflight *buffer;
	size_t start;
	size_t count;
	size_t capacity;
	uint64_t bytes;
	uint64_t max_bytes; /* 0: no byte limit */
};

struct progress {
	uint64_t id;
	uint64_t match;
	uint64_t next;
	enum raft_progress_state state;
	uint64_t pending_snapshot; /* in SNAPSHOT state: the index of the snapshot sent */
	bool recent_active;        /* heard from since the last CheckQuorum round */
	bool msg_app_flow_paused;  /* PROBE: one append sent, wait; REPLICATE: window full */
	bool is_learner;
	struct inflights inflights;
};

void progress_init(struct progress *progress, uint64_t id, uint64_t next, int max_inflight,
                   uint64_t max_inflight_bytes, bool is_learner);
void progress_free(struct progress *progress);
void progress_become_probe(struct progress *progress);
void progress_become_replicate(struct progress *progress);
void progress_become_snapshot(struct progress *progress, uint64_t snapshot_index);
/* An acknowledgement up to index: true when it raised match. */
bool progress_maybe_update(struct progress *progress, uint64_t index);
/* A rejection of the append at rejected with a hint; false when it is stale. */
bool progress_maybe_decrease_to(struct progress *progress, uint64_t rejected, uint64_t match_hint);
/* Records an append sent with entries up to last (count entries, bytes of payload). */
void progress_sent_entries(struct progress *progress, size_t count, uint64_t last, uint64_t bytes);
bool progress_is_paused(const struct progress *progress);
void inflights_free_to(struct inflights *inflights, uint64_t index);
bool inflights_full(const struct inflights *inflights);
void inflights_reset(struct inflights *inflights);

/* ---- membership: tracker and conf_change.c ---------------------------------------------------- */

struct tracker_config {
	struct id_set voters;          /* the incoming majority */
	struct id_set voters_outgoing; /* non-empty only while joint */
	struct id_set learners;
	struct id_set learners_next;
	bool auto_leave;
};

struct tracker {
	struct tracker_config config;
	struct progress *progress; /* sorted by id: voters, outgoing voters and learners */
	size_t progress_count;
	size_t progress_capacity;
	/* Votes of the current election: ids and answers. */
	uint64_t *vote_ids;
	bool *vote_granted;
	size_t votes_count;
	size_t votes_capacity;
};

void tracker_config_copy(struct tracker_config *destination, const struct tracker_config *source);
void tracker_config_free(struct tracker_config *config);
bool tracker_config_is_joint(const struct tracker_config *config);
bool tracker_config_is_voter(const struct tracker_config *config, uint64_t id);

struct progress *tracker_progress(struct tracker *tracker, uint64_t id);
const struct progress *tracker_progress_const(const struct tracker *tracker, uint64_t id);
void tracker_free(struct tracker *tracker);
uint64_t tracker_committed(const struct tracker *tracker);
void tracker_reset_votes(struct tracker *tracker);
void tracker_record_vote(struct tracker *tracker, uint64_t id, bool granted);
enum vote_result tracker_tally(const struct tracker *tracker, size_t *granted, size_t *rejected);
bool tracker_quorum_active(const struct tracker *tracker);

/* Applies a change to a copy of the tracker; on error leaves *out untouched and returns
 * RAFT_ERR_CONF_CHANGE_INVALID with a reason in errbuf. The copy receives new progress entries
 * starting at next_index. */
struct conf_change_request {
	const Raftpb__ConfChangeSingle *changes;
	size_t count;
	enum { CONF_CHANGE_SIMPLE, CONF_CHANGE_ENTER_JOINT, CONF_CHANGE_LEAVE_JOINT } kind;
	bool auto_leave;
};
/* Decodes a conf-change entry's payload into a request; *holder keeps the decoded storage (free with
 * conf_change_request_free). */
struct conf_change_decoded {
	Raftpb__ConfChangeSingle *singles;
	struct conf_change_request request;
};
int conf_change_decode(int entry_type, const uint8_t *data, size_t length, struct conf_change_decoded *out);
void conf_change_decoded_free(struct conf_change_decoded *decoded);
int conf_change_apply(raft_t *r, const struct tracker *current, const struct conf_change_request *request,
                      struct tracker *out, char *err, size_t errlen);
/* Builds a tracker from a ConfState (snapshot or restore). */
int conf_change_restore(raft_t *r, const Raftpb__ConfState *state, struct tracker *out);
void conf_state_from_membership(struct arena *arena, const struct tracker_config *config, Raftpb__ConfState *out);

/* ---- log.c ------------------------------------------------------------------------------------- */

/* Entry payloads live in chunks shared by consecutive entries, so appending an entry allocates nothing
 * in the steady state; a chunk is freed when its last entry is compacted or truncated away. */
struct log_chunk {
	size_t used;
	size_t size;
	size_t live; /* entries whose data is here */
	_Alignas(16) uint8_t data[];
};

struct log_entry {
	uint64_t term;
	int type;
	size_t length;
	uint8_t *data;
	struct log_chunk *chunk; /* NULL for empty entries */
};

/* The log from just after the compaction point (boundary) to the last entry. Marks, in order:
 * boundary <= applied <= committed, persisted <= last, handed_next - 1 <= last. */
struct raft_log {
	struct log_entry *entries; /* entries[start + k] has index boundary_index + 1 + k */
	size_t start;
	size_t count;
	size_t capacity;
	uint64_t boundary_index; /* last compacted (or snapshot) index; its term below */
	uint64_t boundary_term;
	uint64_t committed;
	uint64_t applied;     /* delivered in committed_entries and advanced */
	uint64_t persisted;   /* durable and still part of this log */
	uint64_t handed_next; /* first index not yet handed out in a Ready */
	uint64_t uncommitted_bytes;
	struct log_chunk *tail_chunk; /* where the next payload goes */
};

uint64_t log_last_index(const struct raft_log *log);
uint64_t log_first_index(const struct raft_log *log);
/* Term of the entry at index; 0 for compacted indexes (other than the boundary) or beyond the log. */
uint64_t log_term(const struct raft_log *log, uint64_t index);
uint64_t log_last_term(const struct raft_log *log);
const struct log_entry *log_entry_at(const struct raft_log *log, uint64_t index);
bool log_matches(const struct raft_log *log, uint64_t index, uint64_t term);
/* Figure 2 / §5.4.1: a candidate is at least as up to date if its last term is higher, or equal with
 * a last index at least as large. */
bool log_is_up_to_date(const struct raft_log *log, uint64_t last_index, uint64_t last_term);
void log_append(struct raft_log *log, uint64_t term, int type, const void *data, size_t length);
/* Drops entries with index > index (a follower's conflicting suffix). */
void log_truncate_after(struct raft_log *log, uint64_t index);
/* Drops entries up to and including index; the boundary moves there. */
void log_compact(struct raft_log *log, uint64_t index);
/* Replaces the whole log by a snapshot's boundary. */
void log_restore_snapshot(struct raft_log *log, uint64_t index, uint64_t term);
void log_commit_to(struct raft_log *log, uint64_t index);
/* The first index in entries whose term differs from the log (0: none); entries[k] has index
 * first_index + k. */
uint64_t log_find_conflict(const struct raft_log *log, uint64_t first_index, Raftpb__Entry *const *entries,
                           size_t count);
/* Fast backtracking (etcd findConflictByTerm): the largest index <= index whose term <= term. */
uint64_t log_find_conflict_by_term(const struct raft_log *log, uint64_t index, uint64_t term);
void log_free(struct raft_log *log);

/* ---- read_only.c ------------------------------------------------------------------------------- */

struct read_request {
	uint64_t index;  /* commit index when the request was accepted */
	uint64_t from;   /* who asked (this member or a follower) */
	uint8_t *context;
	size_t context_length;
	struct id_set acks;
};

struct read_only {
	struct read_request *queue;
	size_t count;
	size_t capacity;
	/* Requests waiting for the first commit of the leader's term (§6.4 step 1). */
	Raftpb__Message **waiting;
	size_t waiting_count;
	size_t waiting_capacity;
};

void read_only_add_request(struct read_only *read_only, uint64_t index, uint64_t from, const uint8_t *context,
                           size_t length, uint64_t self);
/* Records a heartbeat ack carrying context; returns the number of acks for it (0 if unknown). */
struct read_request *read_only_find(struct read_only *read_only, const uint8_t *context, size_t length);
/* Removes and returns (count via *count_out) the requests up to and including the one given. */
size_t read_only_advance(struct read_only *read_only, const struct read_request *through);
const uint8_t *read_only_last_context(const struct read_only *read_only, size_t *length);
void read_only_reset(struct read_only *read_only);
void read_only_free(struct read_only *read_only);
void read_only_free_requests(struct read_request *requests, size_t count);

/* ---- the core ------------------------------------------------------------------------------------ */

struct message_queue {
	Raftpb__Message **items;
	size_t count;
	size_t capacity;
};

struct raft {
	struct raft_config config;
	uint64_t id;
	uint64_t term;
	uint64_t vote;
	uint64_t leader;
	enum raft_role role;
	bool is_learner;

	struct raft_log log;
	struct tracker tracker;
	struct read_only read_only;

	/* The latest snapshot this member has (taken locally or received): sent to lagging followers. */
	Raftpb__Snapshot *snapshot;
	bool snapshot_pending_handout; /* a received snapshot not yet handed out in a Ready */

	uint64_t pending_conf_index; /* the leader accepts no conf change until applied reaches this */
	uint64_t lead_transferee;
	/* A leader removed (or demoted) by a committed change keeps leading only to hand over: it keeps
	 * sending the commit index and transfers leadership to the most caught-up voter. */
	bool handing_over;
	/* TimeoutNow came while a committed conf change was not applied yet: campaign once it is. */
	bool campaign_after_apply;

	int election_elapsed;
	int heartbeat_elapsed;
	int randomized_election_timeout;
	uint64_t random_state;

	struct message_queue messages;
	struct message_queue messages_after_persist;
	struct raft_read_state *read_states;
	size_t read_states_count;
	size_t read_states_capacity;
	struct arena arena;

	/* What the last Ready reported, to detect changes. */
	uint64_t previous_leader;
	enum raft_role previous_role;
	Raftpb__HardState previous_hard_state;

	/* Entries and snapshot handed out by the current Ready, applied at advance. */
	uint64_t ready_handed_next;
	uint64_t ready_applied_to;
	bool ready_had_snapshot;

	struct raft_counters counters;
};

/* raft.c */
void raft_become_follower(raft_t *r, uint64_t term, uint64_t leader);
void raft_become_candidate(raft_t *r);
void raft_become_pre_candidate(raft_t *r);
void raft_become_leader(raft_t *r);
void raft_send(raft_t *r, Raftpb__Message *message);
/* An append acknowledgement queued for the next Ready promises that the entries it covers are in the
 * log that Ready persists. Several inputs may come before that Ready (a node steps everything that
 * arrived, then takes it): when a later one replaces entries (a newer leader's conflicting suffix, or
 * its snapshot) the acknowledgements above what the log still holds must not leave, or the leader that
 * sent those entries would count them as stored here. */
void raft_withdraw_acknowledgements_above(raft_t *r, uint64_t index);
Raftpb__Message *raft_new_message(raft_t *r, int type, uint64_t to);
void raft_reset_randomized_election_timeout(raft_t *r);
bool raft_promotable(const raft_t *r);
int raft_reject(raft_t *r, int code);
bool raft_append_entries_from_leader(raft_t *r, const Raftpb__Message *message);
int raft_append_local(raft_t *r, const struct raft_buffer *buffers, const int *types, size_t count,
                      uint64_t *first_index_out);

/* election.c */
int election_hup(raft_t *r, bool transfer);
void election_campaign(raft_t *r, bool pre_vote, bool transfer);
int election_handle_vote_request(raft_t *r, const Raftpb__Message *message);
int election_handle_vote_response(raft_t *r, const Raftpb__Message *message);
void election_attach_commit(raft_t *r, Raftpb__Message *response);
void election_learn_commit(raft_t *r, const Raftpb__Message *message);

/* replication.c */
bool replication_send_append(raft_t *r, uint64_t to, bool send_if_empty);
void replication_broadcast_append(raft_t *r);
void replication_broadcast_heartbeat(raft_t *r, const uint8_t *context, size_t length);
bool replication_maybe_commit(raft_t *r);
int replication_handle_append(raft_t *r, const Raftpb__Message *message);
int replication_handle_append_response(raft_t *r, const Raftpb__Message *message);
int replication_handle_heartbeat(raft_t *r, const Raftpb__Message *message);
int replication_handle_heartbeat_response(raft_t *r, const Raftpb__Message *message);
int replication_handle_snapshot(raft_t *r, const Raftpb__Message *message);
int replication_handle_snapshot_status(raft_t *r, const Raftpb__Message *message);
int replication_handle_unreachable(raft_t *r, const Raftpb__Message *message);

/* read_only.c (leader side) */
int read_index_handle(raft_t *r, const Raftpb__Message *message);
int read_index_handle_response(raft_t *r, const Raftpb__Message *message);
void read_index_on_heartbeat_response(raft_t *r, const Raftpb__Message *message);
void read_index_release_waiting(raft_t *r);
void raft_add_read_state(raft_t *r, uint64_t index, const uint8_t *context, size_t length);

/* conf_change.c (core side) */
void conf_change_apply_entry(raft_t *r, uint64_t index, int type, const uint8_t *data, size_t length);
void raft_switch_tracker(raft_t *r, struct tracker *next);

/* helpers */
bool election_is_transfer_context(const Raftpb__Message *message);
Raftpb__Snapshot *raft_copy_snapshot(const Raftpb__Snapshot *snapshot);
uint64_t raft_random(raft_t *r);
bool raft_has_unapplied_conf_changes(const raft_t *r);
uint64_t raft_entries_bytes(const raft_t *r, uint64_t low, uint64_t high);

#endif
