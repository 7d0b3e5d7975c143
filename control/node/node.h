/* control/node/node.h: one quorumd member at run time — the threads that own its parts and the typed
 * mail between them:
 *
 *   core thread       the run-to-completion Raft loop: receives peer frames, steps the Raft core, writes
 *                     each Ready to the WAL (io_uring group commit) and reaps its fsyncs, sends to peers;
 *                     owns the member list and batches proposals                    (node_core.c,
 *                                                                                    node_core_wal.c)
 *   storage thread    owns the state machine: applies committed entries, serves reads and watchers;
 *                     takes and installs snapshots of the state               (node_storage.c,
 *                                                                              snapshot_keeper.c)
 *   snapshot thread   streams snapshots to followers and receives the leader's         (snapshot_transfer.c)
 *   operator thread   serves the control socket; turns requests into proposals/reads    (operator/)
 *   client threads    serve etcd's API on the client URLs (--client-threads of them)      (api/)
 *
 * The member is opened by bootstrap/ (bootstrap_open), then node_start_threads starts the first three.
 * Threads talk only through mailboxes (core_mailbox, storage_mailbox, snapshot_mailbox, reply_mailbox
 * below), each typed by the one message struct it carries; every message kind names its sender and
 * receiver, and the receiver frees it. A put on the leader crosses three batched hand-offs (client →
 * core, core → storage, storage → client); a follower receives, persists and acknowledges an append on
 * the core thread alone. */
#ifndef QUORUMD_CONTROL_NODE_H
#define QUORUMD_CONTROL_NODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "flags.h"
#include "histogram.h"
#include "kv_apply.h"
#include "mailbox.h"
#include "membership.h"
#include "node_auth.h"
#include "raft.h"
#include "snap.h"
#include "space_quota.h"
#include "state.h"
#include "transport.h"
#include "wal.h"

/* What travels between members besides Raft itself: the first byte of every transport message. */
enum peer_envelope {
	PEER_RAFT = 1,           /* a packed raftpb.Message */
	PEER_PING = 2,           /* liveness for etcd's "connected" checks; body: nothing, or the sender's
	                          * monotonic clock in ns (8 bytes, little-endian), to be echoed in a PEER_PONG */
	PEER_MEMBER_REQUEST = 3, /* a member operation forwarded to the leader; body: JSON */
	PEER_MEMBER_REPLY = 4,   /* its answer; body: JSON */
	PEER_CLUSTER_QUERY = 5,  /* a member starting with --initial-cluster-state existing asks for the members */
	PEER_CLUSTER_REPLY = 6,  /* body: {"cluster_id":HEX,"membership":BLOB} */
	PEER_REMOVED = 7,        /* to a removed member that still talks: you were removed; body: nothing */
	PEER_LEASE_REQUEST = 8,  /* a lease renew or time-to-live for the leader's clocks (node_leases.c) */
	PEER_LEASE_REPLY = 9,
	PEER_SNAPSHOT = 10,      /* a snapshot stream message (dataplane/snapshot_stream.h) */
	PEER_PONG = 11,          /* the answer to a PEER_PING carrying the sender's clock: that clock echoed
	                          * (8 bytes), which gives the sender the round trip (node_peer_metrics) */
	/* Not on the wire: the transport telling the core that a removed member sent a frame. */
	PEER_REMOVED_MEMBER_SEEN = 100,
};

/* The scratch peer id under which a join query's reply address is registered (never a member id: etcd
 * IDs are SHA-1 prefixes, and this one is reserved here). */
#define JOIN_REPLY_PEER UINT64_MAX

/* ---- core → storage: one per Ready ---- */

struct packed_message {
	uint64_t to;
	uint8_t *bytes; /* envelope byte + packed raftpb.Message */
	size_t length;
};

struct committed_entry {
	uint64_t index;
	uint64_t term;
	int type;
	uint8_t *data;
	size_t length;
};

struct pending_read {
	uint64_t request_id;
	uint64_t read_index;
	uint64_t batch;         /* the core's read index request it waits for (0: not asked yet) */
	uint8_t *range_request; /* packed etcdserverpb.RangeRequest */
	size_t range_request_length;
};

/* The part of a Ready the storage thread handles; the core wrote the rest (entries, hard state, the
 * snapshot's WAL marker) to the WAL itself. Committed entries are durable here already (raft.h). */
struct storage_job {
	struct committed_entry *committed;
	size_t committed_count;
	char *membership_blob;          /* the member list after the committed entries, when it changed */
	struct pending_read *reads;
	size_t reads_count;
	uint64_t raft_term;
	uint8_t *snapshot;              /* a snapshot from the leader to install first: packed raftpb.Snapshot;
	                                 * its WAL marker is durable already */
	size_t snapshot_length;
	uint8_t *conf_state;            /* the configuration after the committed entries, packed raftpb.ConfState,
	                                 * when one of them changed it (the storage thread's snapshots record it) */
	size_t conf_state_length;
};

/* ---- storage → core ---- */

/* The state machine failed (other than a full disk): the core stops the member. */
struct storage_failure {
	char error[256];
};

/* ---- control ↔ core and storage ---- */

enum node_request_kind {
	REQUEST_PROPOSE,        /* payload: packed InternalRaftRequest */
	REQUEST_READ,           /* payload: packed RangeRequest; linearizable (ReadIndex) or serializable */
	REQUEST_MEMBER_LIST,
	REQUEST_MEMBER_ADD,
	REQUEST_MEMBER_REMOVE,
	REQUEST_MEMBER_UPDATE,
	REQUEST_MEMBER_PROMOTE,
	REQUEST_STATUS,
	REQUEST_MOVE_LEADER,    /* member_id: the transferee; 0: a stopping member hands over to its most
	                         * caught-up voter, or skips when it is not the leader or the only voter */
	/* Served by the storage thread (STORAGE_MAIL_CLIENT_REQUEST), against this member's applied state: */
	REQUEST_HASH_KV,          /* payload: packed HashKVRequest */
	REQUEST_SNAPSHOT,         /* reply carries an open state_snapshot the client thread streams */
	REQUEST_WATCH_CREATE,     /* payload: packed WatchCreateRequest; call_id, watch_id */
	REQUEST_WATCH_CANCEL,     /* call_id, watch_id (or every_watch_of_call) */
	REQUEST_WATCH_PROGRESS,   /* call_id: a progress response, after every event already sent */
	REQUEST_LEASE_RENEW,      /* lease_id; the leader renews, others answer TTL -1 to be forwarded */
	REQUEST_LEASE_TIME_TO_LIVE, /* payload: packed LeaseTimeToLiveRequest */
	REQUEST_LEASE_LEASES,
	REQUEST_DEFRAGMENT,       /* etcd's defrag: RocksDB compacts the whole key space (state_defragment) */
};

/* A Watch stream's unsent bytes, shared by the client thread that owns the call (it writes how much
 * of the stream is queued and not yet on the socket) and the storage thread's watchers of it (they
 * read it): a watcher whose client does not read is parked and later catches up from the history,
 * as etcd's victim watchers do, instead of making the member buffer without bound. Freed by the last
 * of its holders (watch_backlog_release). */
struct watch_backlog {
	atomic_size_t unsent_bytes;
	atomic_int references;
};
struct watch_backlog *watch_backlog_new(void); /* one reference, the caller's */
void watch_backlog_hold(struct watch_backlog *backlog);
void watch_backlog_release(struct watch_backlog *backlog);

struct node_request {
	enum node_request_kind kind;
	uint64_t request_id;
	uint8_t *payload;
	size_t payload_length;
	bool serializable;
	uint64_t member_id;            /* remove, update, promote, move-leader */
	char **peer_urls;              /* add, update */
	size_t peer_urls_count;
	bool is_learner;
	uint64_t from_peer;            /* a request forwarded by another member (0: local) */
	uint64_t peer_request_id;
	uint64_t call_id;              /* watch requests: the gRPC call (stream) they belong to */
	int64_t watch_id;              /* any value: etcd lets a client choose any ID, negative ones too */
	bool every_watch_of_call;      /* REQUEST_WATCH_CANCEL: the stream ended, cancel all its watches */
	struct watch_backlog *watch_backlog; /* REQUEST_WATCH_CREATE: a reference for the watcher (or NULL) */
	int64_t lease_id;              /* lease renew, time-to-live */
	int64_t lease_remaining_ttl;   /* time-to-live: the leader's clock, when the storage thread answers */
	uint64_t leader_term;          /* not 0: a proposal only the leader of this term may make (a lease
	                                * revoke): dropped, never forwarded, once the member no longer leads in it */
};

struct node_reply {
	uint64_t request_id;
	/* KV requests and the storage thread's requests: a packed etcd response, or etcd's error. */
	struct kv_result kv;
	uint64_t call_id;              /* not 0: kv.response is one more message of this streaming call */
	bool end_call;                 /* with call_id: finish the call after it (kv.grpc_code, kv.error) */
	struct state_snapshot *snapshot; /* REQUEST_SNAPSHOT: the receiver streams and closes it */
	char *json;                    /* member and status requests: the result object, JSON text */
	int grpc_code;                 /* for json replies */
	char error[192];
};

/* ---- storage → core: leases granted or revoked by applied entries (reset: the whole list, at start) ---- */

struct lease_change {
	int64_t id;
	int64_t ttl;
	bool revoked;
};
struct lease_changes {
	bool reset;
	struct lease_change *changes;
	size_t count;
};

/* ---- storage → core: a snapshot was taken; the core keeps it for followers and compacts its log ---- */

struct snapshot_taken {
	uint8_t *record;        /* packed raftpb.Snapshot: metadata (index, term, configuration), data (members) */
	size_t length;
	uint64_t compact_index; /* the log may drop entries up to here (0: keep them) */
	uint64_t durable_applied; /* the state is durable up to this applied index: the WAL may forget entries
	                           * up to min(snapshot index, this) once the core's marker is durable */
};

/* ---- the snapshot thread ↔ core ---- */

struct snapshot_status {
	uint64_t peer;
	bool failed;
};

/* ---- transport → core: one whole peer message, its envelope byte first ---- */

struct peer_message {
	uint64_t from;
	uint8_t *bytes;
	size_t length;
};

/* ---- the three mailboxes: what each carries, who posts, who takes ---- */

/* The core thread's mail. The receiver (core) frees the mail and what it carries. */
enum core_mail_kind {
	CORE_MAIL_PEER,       /* snapshot thread (a MsgSnap whose state is on disk), the transport's removed-member hook → core: peer */
	CORE_MAIL_REQUEST,    /* client, operator or core (lease expiry) → core: request */
	CORE_MAIL_STORAGE_FAILED, /* storage → core: failure, the state machine cannot go on */
	CORE_MAIL_LEASES,     /* storage → core: leases */
	CORE_MAIL_SNAPSHOT_TAKEN, /* storage → core: taken */
	CORE_MAIL_SNAPSHOT_OUT,   /* snapshot thread → core: peer, a stream message to send (from = the peer) */
	CORE_MAIL_SNAPSHOT_STATUS, /* snapshot thread → core: status, a stream to a follower ended */
	CORE_MAIL_STOP,       /* node_stop → core */
};
struct core_mail {
	enum core_mail_kind kind;
	union {
		struct peer_message peer;
		struct node_request *request;
		struct storage_failure *failure;
		struct lease_changes *leases;
		struct snapshot_taken taken;
		struct snapshot_status status;
	};
};
MAILBOX_OF(core_mailbox, struct core_mail)

/* The storage thread's mail. The receiver (storage) frees the mail and what it carries. */
enum storage_mail_kind {
	STORAGE_MAIL_JOB,            /* core → storage: job, one per Ready */
	STORAGE_MAIL_READ_NOW,       /* client or operator → storage: request, a serializable read */
	STORAGE_MAIL_CLIENT_REQUEST, /* client, operator or core (leases) → storage: request for hash,
	                              * snapshot, watch and lease answers (node_storage_client.c) */
	STORAGE_MAIL_STOP,           /* node_stop → storage */
};
struct storage_mail {
	enum storage_mail_kind kind;
	union {
		struct storage_job *job;
		struct node_request *request;
	};
};
MAILBOX_OF(storage_mailbox, struct storage_mail)

/* The snapshot thread's mail. The receiver (snapshot) frees the mail and what it carries. */
enum snapshot_mail_kind {
	SNAPSHOT_MAIL_SEND, /* core → snapshot: send, a MsgSnap the core addressed to a follower */
	SNAPSHOT_MAIL_PEER, /* core (as the transport's receiver) → snapshot: peer, a stream message
	                     * (envelope byte first) */
	SNAPSHOT_MAIL_STOP, /* node_stop → snapshot */
	SNAPSHOT_MAIL_RELEASE, /* core → snapshot: release, WAL segments a durable marker made unneeded, to
	                        * remove (unlinks and a directory fsync), then snapshots beyond --max-snapshots */
};
struct wal_release {
	struct wal_released segments; /* owned: removed by the receiver */
	uint64_t up_to_index;
	size_t segments_kept;
};
struct snapshot_send {
	uint64_t to;
	uint64_t index;
	uint64_t term;
	uint8_t *message; /* packed raftpb.Message (MsgSnap) */
	size_t length;
};
struct snapshot_mail {
	enum snapshot_mail_kind kind;
	union {
		struct snapshot_send send;
		struct peer_message peer;
		struct wal_release release;
	};
};
MAILBOX_OF(snapshot_mailbox, struct snapshot_mail)

/* Replies: core or storage → the thread that asked (a client thread or the operator thread, by the
 * reply channel in the request id). The receiver frees them. */
MAILBOX_OF(reply_mailbox, struct node_reply)

/* ---- the node ---- */

/* etcd's rafthttp metrics for one peer (etcd_network_peer_*), in a fixed table: a slot is taken for a member
 * id the first time something is sent to or received from it (compare-and-swap of id from 0) and kept;
 * readers skip slots whose id is 0. Each counter has one writer thread (named), read by /metrics. */
struct node_peer_metrics {
	atomic_uint_fast64_t id;
	atomic_uint_fast64_t sent_bytes;        /* core thread: message bytes handed to the transport */
	atomic_uint_fast64_t sent_failures;     /* core thread: messages the transport refused */
	atomic_uint_fast64_t received_bytes;    /* core thread: bytes of whole messages the transport delivered */
	atomic_uint_fast64_t received_failures; /* core thread: messages from the peer that did not decode */
	struct histogram round_trip;            /* core thread: PEER_PING sent → its PEER_PONG back */
	uint64_t last_heartbeat_ms;             /* core thread only: the last MsgHeartbeat sent to it */
};
/* The slot of member id, taken if need be; NULL for id 0, the join scratch id, or a full table. */
struct node_peer_metrics *node_peer_metrics_of(struct node *node, uint64_t id);

/* Request ids: our member id's low 16 bits (etcd's idutil: only the proposing member answers), the reply
 * channel in the next 4 bits (which thread waits for the answer), then a counter. */
enum { NODE_REPLY_CHANNELS = 16, NODE_REQUEST_COUNTER_BITS = 44, NODE_PEER_METRIC_SLOTS = 32 };
uint64_t node_request_id(uint64_t member_id, unsigned channel, uint64_t counter);
/* A starting counter that keeps growing across restarts (the clock, like etcd's idutil). */
uint64_t node_request_counter_start(void);

struct node {
	struct node_flags flags;
	uint64_t member_id;
	uint64_t cluster_id;
	char member_dir[4096];

	raft_t *raft;                    /* core thread only */
	struct membership membership;    /* core thread only */
	pthread_mutex_t membership_lock; /* guards published_membership */
	char *published_membership;      /* a JSON copy for other threads */
	atomic_bool is_learner;          /* this member, in the published membership */

	struct wal *wal;                 /* core thread only (bootstrap before the threads start) */
	struct state *state;             /* storage thread only */
	struct node_auth auth;           /* the published auth store, tokens, the bcrypt thread (node_auth.h) */
	/* The space quota in force (--quota-backend-bytes; 0: none), and the alarms as the storage thread
	 * last applied them, published for the client threads (Status's errors, /health, the quota check). */
	int64_t quota_bytes;
	pthread_mutex_t alarms_lock;     /* guards published_alarms */
	struct alarm_list published_alarms;
	atomic_uint alarm_count;         /* published_alarms.count, without the lock */
	/* The WAL or the state ran out of disk space (NODE_DISK_FULL_* bits; 0: neither): this member writes
	 * nothing more until its disk has room again, refuses writes with etcd's NOSPACE error and serves what it
	 * can read; once both resumed, it goes on refusing until it has applied its own NOSPACE alarm, which then
	 * refuses writes cluster-wide until an operator disarms it (node_storage.c). Any bit set: "disk full". */
	atomic_uint disk_full;
	struct snap_store *snapshots;    /* member/snap: storage thread (takes, installs, prunes) and snapshot
	                                  * thread (streams, receives); the store is safe for both */
	struct transport *transport;
	/* Set by bootstrap for the storage thread's first snapshot: the configuration at the applied index
	 * (packed raftpb.ConfState) and the index of the snapshot the WAL continues from. */
	uint8_t *initial_conf_state;
	size_t initial_conf_state_length;
	uint64_t initial_snapshot_index;
	bool snapshot_now;               /* bootstrap found the WAL's snapshot damaged: take a new one */

	struct core_mailbox core_inbox;
	struct storage_mailbox storage_inbox;
	/* Held by the storage thread for each turn of its loop; the core thread applies a job itself when it can
	 * take it and the storage thread has no mail (node_storage_apply_inline). */
	pthread_mutex_t storage_turn;
	void *storage_turn_context; /* the storage thread's context while it runs (under storage_turn) */
	struct snapshot_mailbox snapshot_inbox;
	struct reply_mailbox operator_inbox; /* replies for the operator thread (reply channel 0) */

	/* Where replies go, by the reply channel in their request id (node_post_reply). Channel 0 is the
	 * control socket's thread; the client threads take 1 and up. Set before the threads start. */
	struct reply_mailbox *reply_channels[NODE_REPLY_CHANNELS];

	pthread_t core_thread;
	pthread_t storage_thread;
	pthread_t snapshot_thread;
	atomic_bool stopping;
	atomic_int exit_code;
	/* Peers heard from: monotonic ms of the last frame, by position in membership (core thread). */
	struct peer_liveness {
		uint64_t id;
		uint64_t last_heard_ms;
		uint64_t first_heard_ms;
	} *liveness;
	size_t liveness_count;
	uint64_t removed_notice_ms; /* last PEER_REMOVED sent (core thread): at most one a second */

	/* Counters for status. */
	atomic_uint_fast64_t applied_index;
	atomic_uint_fast64_t raft_term;
	atomic_uint_fast64_t raft_index;
	atomic_uint_fast64_t leader_id;
	atomic_uint_fast64_t revision;
	atomic_uint_fast64_t db_size;
	atomic_uint_fast64_t snapshot_index;     /* the newest snapshot taken or installed here */
	atomic_uint_fast64_t snapshots_taken;
	atomic_uint_fast64_t snapshots_installed;
	atomic_uint_fast64_t snapshots_sent;
	atomic_uint_fast64_t snapshots_received;

	/* For /metrics (etcd's names in client_http.c). */
	atomic_uint_fast64_t leader_changes;
	atomic_uint_fast64_t leader_elected_ms; /* monotonic ms when this member last learned of a new leader */
	atomic_uint_fast64_t proposals_failed;
	/* Turns of the storage thread (apply, watchers, reads) that ran longer than 500 ms: every client of
	 * this member waited that long (/debug/vars; a warning is logged for each). */
	atomic_uint_fast64_t storage_turns_over_500ms;
	/* Steps of watchers catching up from the history that took over 250 ms: each is bounded so that
	 * applying never waits long on a watcher (/debug/vars). */
	atomic_uint_fast64_t watch_catch_up_steps_over_250ms;
	/* etcd's histograms, etcd's buckets (node_start_threads sets them up; README of api/ for each):
	 * WAL records submitted → durable (1 ms doubling, 14), the state's batch commit to RocksDB (1 ms
	 * doubling, 14), a snapshot of the state streamed to a follower or a Maintenance.Snapshot client
	 * (10 ms doubling, 17). */
	struct histogram wal_fsync_duration;
	struct histogram backend_commit_duration;
	struct histogram backend_snapshot_duration;
	atomic_uint_fast64_t commit_index;          /* core thread: the Raft commit index */
	atomic_uint_fast64_t proposals_pending;     /* client threads: proposals made and not yet answered */
	atomic_uint_fast64_t heartbeat_send_failures; /* core thread: a heartbeat late or refused */
	atomic_uint_fast64_t slow_applies;          /* storage thread: requests whose apply took over 100 ms */
	atomic_uint_fast64_t db_size_in_use;        /* storage thread: RocksDB's live data estimate */
	struct node_peer_metrics peer_metrics[NODE_PEER_METRIC_SLOTS];
};

/* node.c: starts the core, storage and snapshot threads of a member bootstrap_open has opened; stops
 * and frees everything. */
int node_start_threads(struct node *node, char *err, size_t errlen);
void node_stop(struct node *node);
void node_close(struct node *node);


void node_request_free(struct node_request *request);
void node_reply_free(struct node_reply *reply);
void storage_job_free(struct storage_job *job);

void *node_core_main(void *node);
void *node_storage_main(void *node);
/* The core thread, instead of posting a job: applies it now on its own thread when the storage thread sleeps
 * with no mail waiting and nothing held back (a full disk), and the job installs no snapshot. False: post it. */
bool node_storage_apply_inline(struct node *node, struct storage_job *job);
void *node_snapshot_main(void *node);

/* Member IDs of requests made here carry our member id in the top 16 bits (etcd's idutil), so a
 * storage thread replies only to requests of its own member. */
bool node_request_is_local(const struct node *node, uint64_t request_id);
/* etcd's ResponseHeader as any thread sees it: the published revision and term. */
void node_fill_response_header(const struct node *node, Etcdserverpb__ResponseHeader *header);
/* etcd's ReqTimeout: 5 s for queueing, computation and the disk, plus two election timeouts for a
 * possible election. Bounds a client request and a stopping leader's hand-over alike. */
static inline uint64_t node_request_timeout_ms(const struct node *node)
{
	return 5000 + 2 * node->flags.election_timeout_ms;
}

/* The alarms (space_quota.h): the storage thread publishes each list it applied; any thread copies it
 * (free the copy with alarm_list_free) or asks about one alarm. */
void node_alarms_publish(struct node *node, const struct alarm_list *alarms);
void node_alarms_copy(struct node *node, struct alarm_list *out);
bool node_alarm_active(struct node *node, uint64_t member_id, Etcdserverpb__AlarmType type);
/* etcd's quota check before a Put, Txn or LeaseGrant of this cost is proposed (space_quota_available on this
 * member's published DB size): true when it must be refused with SPACE_QUOTA_ERROR. Then this member's NOSPACE
 * alarm is proposed under request_id (nobody need wait for it), unless it is active already or the caller
 * proposed it less than 100 ms ago (*last_raised_ms, the caller's thread's; etcd proposes it every time).
 * A member whose disk is full (disk_full) refuses every such write; its storage thread raised the alarm. */
bool node_refuse_for_space(struct node *node, int64_t cost, uint64_t request_id, uint64_t *last_raised_ms);
/* Proposes this member's NOSPACE alarm (ACTIVATE) under request_id; nobody waits for its answer. */
void node_propose_nospace(struct node *node, uint64_t request_id);
/* node->disk_full's bits: the WAL (core thread) or the state (storage thread) cannot write; this member's NOSPACE
 * alarm was not yet seen applied since its disk filled (storage thread). */
enum { NODE_DISK_FULL_WAL = 1u, NODE_DISK_FULL_STATE = 2u, NODE_DISK_FULL_ALARM_UNSEEN = 4u };

/* Storage (the WAL or the state machine) failed for another reason than a full disk: logs error (what
 * failed and why) and stops the member with exit code 1, acknowledging nothing more. Core thread. */
void node_stop_on_storage_failure(struct node *node, const char *error);

/* Posts a reply to the thread waiting for it (by the channel in its request id). */
void node_post_reply(struct node *node, struct node_reply *reply);

#endif
