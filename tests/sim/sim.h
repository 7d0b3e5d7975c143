/* tests/sim/sim.h: the shared types of the deterministic Raft simulation (build/tests/raft-sim).
 *
 * One simulated cluster runs one seed: a virtual clock, an event queue (message deliveries, ticks,
 * storage completions, workload and fault actions), one consensus core per member, a simulated network
 * and a simulated durable storage per member. Everything random comes from the cluster's own PRNG, so a
 * seed replays exactly. The checker (checker.c) holds the oracles the safety properties are checked
 * against after every step. Each .c file here has one job; this header is what they share.
 */
#ifndef QUORUMD_TESTS_SIM_SIM_H
#define QUORUMD_TESTS_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "raft.h"

/* --- Time ----------------------------------------------------------------------------------------
 * The virtual clock counts milliseconds. Each member ticks every SIM_TICK_MS (the heartbeat interval);
 * an election timeout is SIM_ELECTION_TICKS ticks, as etcd's defaults (100 ms heartbeat, 10 ticks). */
#define SIM_TICK_MS 10
#define SIM_ELECTION_TICKS 10
#define SIM_ELECTION_TIMEOUT_MS ((uint64_t)SIM_TICK_MS * SIM_ELECTION_TICKS)
/* Liveness bound of the final quiet phase, in election timeouts. */
#define SIM_LIVENESS_TIMEOUTS 60
/* Members ever started in one run (initial ones plus every member added by a conf change). */
#define SIM_MAX_MEMBERS 48

/* --- prng.c: the only source of randomness ------------------------------------------------------- */
struct sim_rng {
	uint64_t state[4];
};
void rng_seed(struct sim_rng *rng, uint64_t seed);
uint64_t rng_next(struct sim_rng *rng);
uint64_t rng_below(struct sim_rng *rng, uint64_t bound);            /* [0, bound); 0 when bound is 0 */
uint64_t rng_range(struct sim_rng *rng, uint64_t low, uint64_t high); /* [low, high] */
bool rng_chance(struct sim_rng *rng, unsigned per_thousand);       /* true with per_thousand / 1000 */
uint64_t sim_hash_bytes(const void *data, size_t length);
uint64_t sim_mix(uint64_t a, uint64_t b);

/* --- Messages on the simulated wire ------------------------------------------------------------- */
struct sim_message {
	uint64_t from;   /* the member that put it on the wire */
	uint64_t origin; /* the message's own from: another member for forwarded proposals and reads */
	uint64_t to;
	uint32_t from_incarnation; /* to give transport feedback only to the incarnation that sent it */
	int type;
	bool corrupt;  /* bytes deliberately made undecodable: the core must reject them */
	bool injected; /* a decodable message of a local-only type: the core must reject it */
	uint64_t term;   /* a few header fields, kept for the checks and the trace */
	uint64_t index;
	uint64_t commit;
	uint64_t reject_hint;
	bool reject;
	size_t entries_count;
	uint8_t *bytes;
	size_t length;
};
void message_free(struct sim_message *message);

/* --- events.c: the event queue, ordered by (time, insertion order) ------------------------------ */
enum sim_event_kind {
	EVENT_DELIVER,  /* a message reaches its destination */
	EVENT_TICK,     /* a member's heartbeat-interval timer */
	EVENT_PERSIST,  /* a member's storage may have made something durable */
	EVENT_WORKLOAD, /* the client side acts: propose, read, reconfigure, ... */
	EVENT_FAULT,    /* the environment acts: crash, partition, change loss */
	EVENT_RESTART,  /* a crashed member comes back */
	EVENT_HEAL,     /* a partition ends */
	EVENT_CRASH,    /* a targeted crash of one member (see cluster_on_commit) */
	EVENT_SNAPSHOT, /* a member's snapshot taken earlier is durable: the core learns it and compacts */
	EVENT_SNAPSHOT_REPORT, /* the transport's late verdict on a snapshot stream (raft_report_snapshot) */
	EVENT_PROCESS,  /* a member's core thread ends its turn: the Readys of the inputs batched so far */
};

struct sim_event {
	uint64_t time;
	uint64_t sequence;
	enum sim_event_kind kind;
	size_t slot;          /* the member concerned, for member events */
	uint32_t incarnation; /* member events of an earlier incarnation are stale and skipped */
	struct sim_message message;
};

struct sim_event_queue {
	struct sim_event *heap;
	size_t count;
	size_t capacity;
	uint64_t next_sequence;
};
void events_push(struct sim_event_queue *queue, struct sim_event *event);
bool events_pop(struct sim_event_queue *queue, struct sim_event *event_out);
void events_free(struct sim_event_queue *queue);

/* --- storage.c: one member's durable state and its queue of writes in flight --------------------- */
struct sim_entry {
	uint64_t index;
	uint64_t term;
	int type;
	uint8_t *data;
	size_t length;
};

struct sim_hard_state {
	uint64_t term;
	uint64_t vote;
	uint64_t commit;
};

/* The application state: an append-only history summarised by a chained hash, so that two members'
 * states at the same index compare in O(1) and a snapshot is a few words. */
struct sim_app_state {
	uint64_t applied;      /* last applied index */
	uint64_t applied_term; /* its term */
	uint64_t chain;        /* hash chained over every applied entry, in order */
	uint64_t writes;       /* client writes applied */
	uint64_t last_write;   /* sequence number of the last client write applied (0: none) */
};
#define SIM_APP_STATE_BYTES 40
void app_state_encode(const struct sim_app_state *state, uint8_t out[SIM_APP_STATE_BYTES]);
bool app_state_decode(const uint8_t *data, size_t length, struct sim_app_state *state);

struct sim_snapshot {
	uint64_t index; /* 0: none */
	uint64_t term;
	uint8_t *packed; /* the Raftpb__Snapshot, protobuf-encoded */
	size_t packed_length;
};

/* What one Ready asked to make durable, and what may be sent once it is. */
struct sim_persist_item {
	uint64_t durable_at;
	bool has_hard_state;
	struct sim_hard_state hard_state;
	struct sim_snapshot snapshot;
	struct sim_entry *entries;
	size_t entries_count;
	struct sim_message *messages_after_persist;
	size_t messages_count;
	uint64_t persist_index;
	uint64_t persist_term;
};

struct sim_storage {
	/* durable */
	struct sim_hard_state hard_state;
	struct sim_snapshot snapshot;
	struct sim_entry *entries; /* contiguous, after the snapshot's index (or from index 1) */
	size_t entries_count;
	size_t entries_capacity;
	struct sim_app_state app; /* the application state made durable (0: nothing yet) */
	/* in flight, made durable in order */
	struct sim_persist_item *pending;
	size_t pending_head;
	size_t pending_count; /* items at pending[pending_head .. pending_head + pending_count) */
	size_t pending_capacity;
	uint64_t items_queued;  /* writes ever queued, and ever completed (or lost in a crash) */
	uint64_t items_settled;
};

uint64_t storage_last_index(const struct sim_storage *storage);
/* The durable term at index: the snapshot's at its index, 0 when not stored. */
uint64_t storage_term_at(const struct sim_storage *storage, uint64_t index);
void storage_queue_push(struct sim_storage *storage, struct sim_persist_item *item);
struct sim_persist_item *storage_queue_front(struct sim_storage *storage);
void storage_queue_pop(struct sim_storage *storage); /* frees the front item */
void storage_drop_pending(struct sim_storage *storage); /* a crash: nothing in flight survives */
/* Makes one item durable. Writes why into error and returns false when the item breaks the storage
 * contract (a gap in the log, entries inside the snapshot). */
bool storage_apply_item(struct sim_storage *storage, struct sim_persist_item *item, char *err,
                        size_t errlen);
void storage_set_snapshot(struct sim_storage *storage, uint64_t index, uint64_t term, uint8_t *packed,
                          size_t packed_length); /* takes packed */
void storage_compact(struct sim_storage *storage, uint64_t index);
/* What raft_new needs, built from the durable state; free with storage_restore_free. */
struct sim_restore {
	struct raft_restore restore;
	Raftpb__HardState hard_state;
	Raftpb__Snapshot *snapshot;
	Raftpb__Entry *entry_values;
	Raftpb__Entry **entry_pointers;
};
void storage_restore_build(const struct sim_storage *storage, struct sim_restore *out);
void storage_restore_free(struct sim_restore *restore);
void storage_free(struct sim_storage *storage);
void persist_item_free(struct sim_persist_item *item);
void entry_copy(struct sim_entry *out, const Raftpb__Entry *entry);

/* --- The members ---------------------------------------------------------------------------------- */
enum member_state {
	MEMBER_UNUSED,  /* slot free */
	MEMBER_ALIVE,   /* running: stepped, ticked */
	MEMBER_CRASHED, /* down; its durable storage waits for the restart */
	MEMBER_REMOVED, /* removed from the cluster and shut down for good */
};

struct sim_pending_read {
	uint64_t context; /* the read's unique id */
	uint64_t index;   /* serve once the applied index reaches it */
};

/* A snapshot taken by the snapshot policy (every snapshot_count applied entries) and not yet handed to
 * the core: a real node takes it on its storage thread and tells the core later, by which time the
 * core has applied more, or installed a newer snapshot from the leader, or the member has crashed. */
struct sim_capture {
	bool active;
	uint64_t index;             /* the applied index it was taken at */
	struct sim_app_state app;   /* the application state there */
	uint8_t *conf_state;        /* packed Raftpb__ConfState: the configuration in force there */
	size_t conf_state_length;
	uint64_t after_item;        /* written after the writes queued before it (storage.items_queued) */
};

struct sim_member {
	uint64_t id;
	enum member_state state;
	uint32_t incarnation;
	raft_t *raft;
	struct raft_config config;
	struct sim_storage storage;
	struct sim_app_state app;     /* volatile application state */
	uint64_t persist_delay_max;   /* 0: storage is synchronous; else async with delays up to this */
	int group;                    /* partition side */
	bool ever_member;             /* it has been in a configuration (initial or added) */
	/* what the checker saw last */
	uint64_t seen_commit;
	uint64_t seen_leader_term;
	enum raft_role seen_role;
	uint64_t seen_term;
	/* reads confirmed but not yet served (applied index behind) */
	struct sim_pending_read *reads;
	size_t reads_count;
	size_t reads_capacity;
	uint64_t marker_applied; /* liveness: sequence of a quiet-phase marker this member applied */
	uint64_t appended_term;  /* Leader Append-Only: the term in which this member last appended as leader */
	uint64_t appended_last;  /* and the last index it handed to storage then */
	/* The core's first log index after the last raft_advance: every message of the next Ready was made
	 * since, and the first index only grows until a restart. */
	uint64_t first_index_after_advance;
	uint64_t batch_until; /* inputs accumulate without a Ready until then (see member_process) */
	struct sim_capture capture;  /* the snapshot policy's snapshot in progress */
	uint64_t snapshot_mark;      /* applied index of the policy's last snapshot (the count runs from it) */
	uint64_t bootstrap_index;    /* raft_bootstrap puts the initial configuration in force at once */
};

/* --- network.c ------------------------------------------------------------------------------------ */
struct sim_network {
	unsigned loss_per_thousand;
	unsigned duplicate_per_thousand;
	unsigned corrupt_per_thousand;
	uint64_t delay_min;
	uint64_t delay_max;
	bool partitioned;
};

/* --- checker.c ------------------------------------------------------------------------------------ */
struct sim_committed {
	uint64_t term;        /* term of the committed entry at this index */
	uint64_t commit_term; /* term of the leader that first committed it */
	uint64_t entry_hash;  /* 0 until some member applied it */
	uint64_t chain;       /* application state chain after applying it (0: unknown yet) */
};

struct sim_seen_entry {
	uint64_t term;
	uint64_t hash;
	uint64_t previous_term; /* 0: unknown (at a compaction boundary) */
};

struct sim_seen_slot {
	struct sim_seen_entry *items; /* one per distinct term seen at this index */
	uint32_t count;
	uint32_t capacity;
};

/* A configuration reduced to what compares: a hash of its sorted id lists (and auto-leave), with a
 * description for failure messages. */
struct sim_conf_digest {
	uint64_t hash;
	char text[200];
};

/* The configuration after each committed conf change (known once some member applied it as the last
 * conf change of a Ready, when its effect can be observed). */
struct sim_conf_record {
	uint64_t index;
	bool known;
	struct sim_conf_digest conf;
};

struct sim_read {
	uint64_t context;
	size_t slot;
	uint64_t issued_at;
	uint64_t commit_at_issue; /* every write acknowledged before the read is at or below this index */
	uint64_t writes_at_issue; /* the most client writes any member had applied when the read was issued */
	uint64_t served;          /* times it was served */
};

struct sim_checker {
	uint64_t *leader_of_term;
	size_t terms_capacity;
	struct sim_committed *committed; /* by index */
	size_t committed_capacity;
	uint64_t commit_index; /* highest index any member ever knew committed */
	uint64_t writes_applied; /* the most client writes any member has applied */
	uint64_t acknowledged_index; /* highest index of a client write some member applied (acknowledged) */
	uint64_t acknowledged_writes; /* client writes in the history up to it */
	uint64_t fault_acknowledged_index; /* the same two when the faults stopped */
	uint64_t fault_acknowledged_writes;
	struct sim_seen_slot *seen; /* by index: every (index, term) that entered some log */
	size_t seen_capacity;
	struct sim_read *reads;
	size_t reads_count;
	size_t reads_capacity;
	uint64_t config_index; /* index of the last conf change some member applied */
	uint64_t *config_ids;  /* every member in the configuration after it */
	size_t config_ids_count;
	struct sim_removal {
		uint64_t id;
		uint64_t index; /* the conf change that removed it */
	} removals[SIM_MAX_MEMBERS]; /* removed members still running until the removal is durable */
	size_t removals_count;
	struct sim_conf_record *conf_history; /* by increasing index: every committed conf change */
	size_t conf_history_count;
	size_t conf_history_capacity;
	uint64_t applied_max; /* the highest index any member applied: conf_history is complete up to it */
	/* counters for the summary: every check that ran */
	uint64_t leaders_checked;
	uint64_t commits_checked;
	uint64_t applies_checked;
	uint64_t reads_checked;
	uint64_t logs_checked;
	uint64_t messages_checked;
	uint64_t rejections_checked;
	uint64_t snapshots_installed;
	uint64_t snapshots_sent;
	uint64_t configs_checked;
	uint64_t compactions;
	uint64_t entries_applied;
};

/* --- workload.c ----------------------------------------------------------------------------------- */
struct sim_workload {
	uint64_t next_write;   /* sequence of the next client write */
	uint64_t next_read;    /* context of the next read */
	uint64_t *proposed_at; /* by write sequence: when it was proposed */
	size_t proposed_capacity;
	uint64_t writes_proposed;
	uint64_t conf_changes_proposed;
	uint64_t conf_changes_accepted;
	uint64_t transfers;
	uint64_t snapshots_created;
	uint64_t snapshots_superseded; /* policy snapshots the core no longer needed when they were ready */
	uint64_t marker_sequence; /* the quiet phase's current liveness marker (0: none proposed yet) */
	uint64_t marker_term;
	uint64_t marker_proposed_at;
};

/* --- cluster.c: one seed's whole world ------------------------------------------------------------ */
struct sim_options {
	uint64_t seeds;
	uint64_t first_seed;
	int nodes;
	uint64_t steps; /* events in the fault phase */
	bool verbose;
	bool demo;
	/* The snapshot policy: a snapshot every snapshot_count applied entries, the log compacted up to
	 * catchup_entries before it. Drawn per seed unless given (snapshot_policy_given). */
	bool snapshot_policy_given;
	uint64_t snapshot_count; /* 0: only the workload's occasional random snapshots */
	uint64_t catchup_entries;
};

struct sim_cluster;
typedef void (*sim_leader_hook)(struct sim_cluster *cluster, uint64_t id, uint64_t term);

struct sim_cluster {
	struct sim_options options;
	uint64_t seed;
	struct sim_rng rng;
	uint64_t now;
	uint64_t steps;
	struct sim_member *members; /* SIM_MAX_MEMBERS slots, never reallocated */
	size_t members_count;       /* slots in use */
	uint64_t next_member_id;
	struct sim_event_queue events;
	struct sim_network network;
	struct sim_checker checker;
	struct sim_workload workload;
	bool quiet;         /* final phase: no faults */
	bool random_events; /* false in the demo: the script acts instead of the random workload */
	bool allow_corruption;
	bool failed;
	char failure[1200];
	bool trace;
	sim_leader_hook on_leader;
	/* per-seed core settings */
	/* the seed's fault profile: calm seeds leave time between faults, stormy ones keep knocking the
	 * leader over, which is where the subtle election and commitment bugs (Raft Figure 8) live */
	uint64_t fault_period_max;
	unsigned leader_crash_per_thousand;
	bool pre_vote;
	bool check_quorum;
	uint64_t max_size_per_msg;
	int max_inflight;
	uint64_t crashes;
	uint64_t partitions;
	uint64_t restarts;
	/* the seed's snapshot policy (see sim_options) and how long a policy snapshot takes to be durable */
	uint64_t snapshot_count;
	uint64_t catchup_entries;
	uint64_t snapshot_delay_max;
	/* how often a member's core takes several inputs before its next Ready, and for how long at most */
	unsigned batch_per_thousand;
	uint64_t batch_window_max;
};

/* sim_fail records the first failure (the run stops at the end of the step); sim_trace prints a line of
 * the verbose trace with the simulated time. */
void sim_fail(struct sim_cluster *cluster, const char *format, ...) __attribute__((format(printf, 2, 3)));
void sim_trace(struct sim_cluster *cluster, const char *format, ...) __attribute__((format(printf, 2, 3)));
struct sim_member *cluster_member_by_id(struct sim_cluster *cluster, uint64_t id);
size_t cluster_slot_of(const struct sim_cluster *cluster, const struct sim_member *member);
/* The live member that leads with the highest term, NULL when none. */
struct sim_member *cluster_leader(struct sim_cluster *cluster);
void cluster_init(struct sim_cluster *cluster, const struct sim_options *options, uint64_t seed);
void cluster_free(struct sim_cluster *cluster);
/* Processes one event; false when the queue is empty. */
bool cluster_step(struct sim_cluster *cluster);
/* Runs a whole seed: the fault phase, then the quiet phase and its liveness check. */
bool cluster_run(struct sim_cluster *cluster);
void cluster_begin_quiet_phase(struct sim_cluster *cluster);
/* A leader just advanced its commit index: in stormy seeds, sometimes crash it a moment later, the
 * window where a wrongly counted commit (Raft Figure 8) turns into lost data. */
void cluster_on_commit(struct sim_cluster *cluster, size_t slot);

/* member.c: lifecycle and the Ready loop (what a real node's core thread does) */
void member_start_initial(struct sim_cluster *cluster, uint64_t id, const uint64_t *voters, size_t count);
void member_start_added(struct sim_cluster *cluster, uint64_t id);
void member_crash(struct sim_cluster *cluster, size_t slot);
void member_restart(struct sim_cluster *cluster, size_t slot);
void member_shutdown(struct sim_cluster *cluster, size_t slot);
/* Drains every Ready, unless the member is in a batching turn (then its EVENT_PROCESS does it). */
void member_process(struct sim_cluster *cluster, size_t slot);
void member_end_batch(struct sim_cluster *cluster, size_t slot); /* EVENT_PROCESS */
void member_persist_due(struct sim_cluster *cluster, size_t slot);
void member_make_app_durable(struct sim_cluster *cluster, size_t slot);
bool member_take_snapshot(struct sim_cluster *cluster, size_t slot, bool compact_everything);
void member_finish_snapshot(struct sim_cluster *cluster, size_t slot); /* EVENT_SNAPSHOT */
const char *message_type_name(int type);

/* network.c */
struct sim_message message_pack(const Raftpb__Message *message, uint64_t sender, uint32_t incarnation);
void network_send_packed(struct sim_cluster *cluster, struct sim_message *message); /* takes bytes */
void network_deliver(struct sim_cluster *cluster, struct sim_event *event);
void network_snapshot_report_due(struct sim_cluster *cluster, const struct sim_event *event);
bool network_connected(const struct sim_cluster *cluster, uint64_t from, uint64_t to);
void network_partition_random(struct sim_cluster *cluster);
void network_heal(struct sim_cluster *cluster);
void network_inject_garbage(struct sim_cluster *cluster);

/* checker.c */
void checker_init(struct sim_checker *checker);
void checker_free(struct sim_checker *checker);
void checker_observe_member(struct sim_cluster *cluster, size_t slot);
void checker_observe_all(struct sim_cluster *cluster);
struct sim_entry_digest {
	uint64_t index;
	uint64_t term;
	uint64_t hash;
};
void checker_record_entries(struct sim_cluster *cluster, size_t slot, const struct sim_entry_digest *digests,
                            size_t count);
void checker_apply_entry(struct sim_cluster *cluster, size_t slot, const Raftpb__Entry *entry);
void checker_install_snapshot(struct sim_cluster *cluster, size_t slot, const Raftpb__Snapshot *snapshot);
/* Before an item becomes durable: does it drop a committed entry from the member's stored log? */
void checker_stored_truncation(struct sim_cluster *cluster, size_t slot, const struct sim_persist_item *item);
void checker_message_sent(struct sim_cluster *cluster, size_t slot, const struct sim_message *message,
                          bool after_persist);
void checker_hard_state_durable(struct sim_cluster *cluster, size_t slot, const struct sim_hard_state *before,
                                const struct sim_hard_state *after);
void checker_config_applied(struct sim_cluster *cluster, size_t slot, uint64_t index);
/* The member's configuration must be the one in force at its applied index (after every Ready, after a
 * restart); a snapshot's must be the one at the snapshot's index. */
void checker_member_config(struct sim_cluster *cluster, size_t slot, const char *when);
void checker_snapshot_config(struct sim_cluster *cluster, size_t slot, const Raftpb__Snapshot *snapshot,
                             const char *what);
/* A restarted member's state (application state, log boundary) against the committed history. */
void checker_restarted(struct sim_cluster *cluster, size_t slot);
/* A snapshot a member takes or sends: at a committed index, with the committed state there. */
void checker_snapshot_taken(struct sim_cluster *cluster, size_t slot, uint64_t index, uint64_t term,
                            const struct sim_app_state *state);
/* Shuts down removed members once the remaining ones cannot forget the removal (see checker.c). */
void checker_retire_removed(struct sim_cluster *cluster);
bool checker_removal_pending(const struct sim_cluster *cluster, uint64_t id);
void checker_read_issued(struct sim_cluster *cluster, size_t slot, uint64_t context);
void checker_read_state(struct sim_cluster *cluster, size_t slot, const struct raft_read_state *state);
void checker_serve_reads(struct sim_cluster *cluster, size_t slot);
void checker_full_logs(struct sim_cluster *cluster);
/* After the quiet phase: every live member holds every write acknowledged during the faults. */
void checker_acknowledged_writes(struct sim_cluster *cluster);
uint64_t entry_digest(uint64_t index, uint64_t term, int type, const void *data, size_t length);

/* workload.c */
void workload_init(struct sim_workload *workload);
void workload_free(struct sim_workload *workload);
void workload_act(struct sim_cluster *cluster);
void workload_fault(struct sim_cluster *cluster);
/* Proposes one client write on the member; returns its sequence (0 when refused). */
uint64_t workload_propose_write(struct sim_cluster *cluster, size_t slot);
bool workload_liveness_probe(struct sim_cluster *cluster); /* true once the quiet phase's goal is met */
bool payload_write_sequence(const uint8_t *data, size_t length, uint64_t *sequence, bool *marker);

/* demo.c */
int demo_run(const struct sim_options *options);

#endif
