/* control/node/node_leases.h: the leader's lease clocks, on the core thread (etcd's lessor, the half that
 * is not in the state machine).
 *
 * Which leases exist and their granted TTLs come from the storage thread as it applies grants and
 * revokes (CORE_MAIL_LEASES). Only the leader's clocks run: when a member becomes leader every lease gets
 * its full TTL again (etcd's Promote), KeepAlive renewals and TimeToLive questions go to the leader
 * (forwarded over PEER_LEASE_REQUEST by other members), and a lease whose clock runs out is revoked
 * through Raft — the revoke deletes its keys on every member at the same log position. */
#ifndef QUORUMD_CONTROL_NODE_LEASES_H
#define QUORUMD_CONTROL_NODE_LEASES_H

#include "node.h"

struct lease_clock {
	int64_t id;
	int64_t ttl;            /* granted, seconds */
	uint64_t expiry_ms;     /* monotonic; meaningful on the leader */
	uint64_t revoke_sent_ms;
};

struct forwarded_lease_request {
	struct node_request *request;
	uint64_t sent_ms;
};

/* A question the leader cannot answer yet: the lease is not in its clocks, but its state machine has not
 * applied everything committed when the question came, and the grant may be among it (another member, or
 * this member's storage thread, acknowledged the grant before this core heard of it). Asked by a local
 * client (request) or by another member (from, forward_id). */
struct waiting_lease_question {
	struct node_request *request;
	uint64_t from;
	uint64_t forward_id;
	int operation;
	int64_t lease_id;
	uint64_t wait_index; /* answered "no such lease" once the clocks cover this index */
};

struct lease_clocks {
	struct node *node;
	struct lease_clock *clocks;
	size_t count;
	size_t capacity;
	/* Where each lease's clock is in clocks: open addressing by id (linear probing, a power of two, at
	 * most half full), each slot the clock's position + 1 (0: free). A grant or revoke finds its clock in
	 * constant time, not by a scan: granting or revoking 10,000 leases was 10^8 comparisons on the core
	 * thread, which every write waits for. */
	uint32_t *slots;
	size_t slot_capacity;
	bool leader;
	uint64_t next_counter;
	struct forwarded_lease_request *forwarded;
	size_t forwarded_count;
	size_t forwarded_capacity;
	struct waiting_lease_question *waiting;
	size_t waiting_count;
	size_t waiting_capacity;
	/* Every lease change of the entries up to here is in the clocks: the storage thread posts each one
	 * before it moves the applied index past its entry, and the core reads the applied index before it
	 * takes its mail (lease_clocks_covered). */
	uint64_t covered_index;
	/* etcd's ensureLeadership before revoking: an expired lease is revoked only once a quorum has confirmed,
	 * through a read-index round begun after the lease expired, that this member still leads. A leader whose
	 * process stalled past its leases' TTLs while the others elected a new leader (which kept the leases
	 * alive) would otherwise revoke them all the moment it resumes: its revokes, forwarded to the new
	 * leader once it steps down, would commit (etcd #15247). */
	uint64_t leadership_check_token;        /* read-index context of the round in flight; 0: none */
	uint64_t leadership_check_started_ms;
	uint64_t leadership_check_term;
	uint64_t leadership_confirmed_as_of_ms; /* when the latest round a quorum confirmed began */
	/* etcd's lessor revokes at most 1,000 expired leases a second (leaseRevokeRate), so that a storm of
	 * expiries is spread over time instead of becoming one apply that stalls every other client. */
	uint64_t revoke_allowance_ms; /* when the allowance was last refilled */
	uint64_t revoke_allowance;    /* revokes that may be proposed now */
};

void lease_clocks_init(struct lease_clocks *clocks, struct node *node);
void lease_clocks_free(struct lease_clocks *clocks);
void lease_clocks_update(struct lease_clocks *clocks, const struct lease_changes *changes);
/* Each heartbeat tick: notices leadership changes, revokes expired leases (once leadership is confirmed,
 * above), fails stale forwards. term: Raft's current term. */
void lease_clocks_tick(struct lease_clocks *clocks, bool is_leader, uint64_t term);
/* A read state came back: true when its context is the lease clocks' leadership round (then consumed; the
 * round counts only if this member still leads in the term it began in). */
bool lease_clocks_read_confirmed(struct lease_clocks *clocks, uint64_t token, bool is_leader, uint64_t term);
/* REQUEST_LEASE_RENEW and REQUEST_LEASE_TIME_TO_LIVE; takes ownership. commit_index: Raft's, now. */
void lease_clocks_handle_request(struct lease_clocks *clocks, struct node_request *request, bool is_leader,
                                 uint64_t leader_id, uint64_t commit_index);
void lease_clocks_handle_peer(struct lease_clocks *clocks, uint64_t from, int kind, const uint8_t *body, size_t length,
                              bool is_leader, uint64_t commit_index);
/* After the core took its mail: applied_before_mail is the applied index it read before taking it, so
 * every lease change up to there has been through lease_clocks_update. Answers the waiting questions
 * that can be answered now. */
void lease_clocks_covered(struct lease_clocks *clocks, uint64_t applied_before_mail, bool is_leader);

#endif
