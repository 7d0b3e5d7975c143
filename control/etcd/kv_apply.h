/* control/etcd/kv_apply.h: etcd's KV requests (etcdserverpb) carried out on the state machine.
 *
 * Writes come out of committed Raft entries (InternalRaftRequest) and run inside the storage thread's
 * open batch; reads (Range) run against committed state once the read index is applied. Each call gives
 * back the packed etcd response (PutResponse, RangeResponse, ...) with its ResponseHeader filled, or an
 * error with etcd's text and the gRPC code a client would see. */
#ifndef QUORUMD_CONTROL_KV_APPLY_H
#define QUORUMD_CONTROL_KV_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "grpc_status.h"
#include "raft_internal.pb-c.h"
#include "rpc.pb-c.h"
#include "state.h"

enum kv_response_kind {
	KV_RESPONSE_NONE,
	KV_RESPONSE_RANGE,
	KV_RESPONSE_PUT,
	KV_RESPONSE_DELETE_RANGE,
	KV_RESPONSE_TXN,
	KV_RESPONSE_COMPACTION,
	KV_RESPONSE_LEASE_GRANT,        /* LeaseGrantResponse */
	KV_RESPONSE_LEASE_REVOKE,       /* LeaseRevokeResponse */
	KV_RESPONSE_LEASE_TIME_TO_LIVE, /* LeaseTimeToLiveResponse (kv_lease_time_to_live) */
	KV_RESPONSE_LEASE_LEASES,       /* LeaseLeasesResponse (kv_lease_leases) */
	KV_RESPONSE_ALARM,              /* AlarmResponse (space_quota.h: alarm_apply) */
	KV_RESPONSE_DEFRAGMENT,         /* DefragmentResponse */
};

struct kv_result {
	int grpc_code;            /* GRPC_OK, or the code of error */
	char error[192];          /* etcd's text, e.g. "etcdserver: mvcc: required revision has been compacted" */
	enum kv_response_kind kind;
	uint8_t *response;        /* packed etcdserverpb response (malloc'd), when grpc_code == GRPC_OK */
	size_t response_length;
};

struct kv_header {
	uint64_t cluster_id;
	uint64_t member_id;
	uint64_t raft_term;
};

/* Applies the write in request (put, delete_range, txn, compaction, lease_grant or lease_revoke) inside the
 * open batch. Other requests give GRPC_UNIMPLEMENTED. A put or txn put naming a lease that does not exist gives
 * GRPC_NOT_FOUND "etcdserver: requested lease not found" and writes nothing. A lease_grant is applied as etcd's
 * lessor.Grant does: ID 0: GRPC_NOT_FOUND (as above); TTL above KV_LEASE_MAX_TTL: GRPC_OUT_OF_RANGE
 * "etcdserver: too large lease TTL"; an existing ID: GRPC_FAILED_PRECONDITION "etcdserver: lease already
 * exists"; the TTL is stored as proposed (raise it with kv_lease_clamp_ttl before proposing). lease_revoke deletes
 * the lease's keys in one revision; the header carries the revision after it. */
void kv_apply_request(struct state *state, const Etcdserverpb__InternalRaftRequest *request,
                      const struct kv_header *header, struct kv_result *result);
/* Serves a Range against the state (committed, or the open batch inside the storage thread). */
void kv_range(struct state *state, const Etcdserverpb__RangeRequest *request, const struct kv_header *header,
              struct kv_result *result);
void kv_result_free(struct kv_result *result);
/* A state key-value as etcd's mvccpb.KeyValue; out borrows kv's buffers. */
void kv_to_proto(const struct state_kv *kv, Mvccpb__KeyValue *out);

/* ---- leases ---- */

/* etcd's lease.MaxLeaseTTL, in seconds. */
#define KV_LEASE_MAX_TTL 9000000000LL

/* etcd's minimum lease TTL in seconds for --heartbeat-interval and --election-timeout (ms): the time of
 * (3 * election ticks / 2) heartbeats, rounded up (etcd 3.4 NewServer: 2 s for 100/1000). */
int64_t kv_lease_min_ttl(int64_t heartbeat_ms, int64_t election_ms);
/* The TTL etcd's lessor grants for a requested one: at least min_ttl. The caller applies it to
 * LeaseGrantRequest.TTL before proposing, so every member stores the same value. */
int64_t kv_lease_clamp_ttl(int64_t ttl, int64_t min_ttl);

/* LeaseTimeToLive from the state: ID, grantedTTL, the attached keys when request->keys, and TTL =
 * remaining_ttl, which the caller (who owns the expiry clock) passes in. A lease that does not exist answers
 * OK with TTL -1, as etcd's v3rpc LeaseTimeToLive does (etcdctl prints "already expired"). */
void kv_lease_time_to_live(struct state *state, const Etcdserverpb__LeaseTimeToLiveRequest *request,
                           const struct kv_header *header, int64_t remaining_ttl, struct kv_result *result);
/* LeaseLeases: every lease ID in the state, ascending. */
void kv_lease_leases(struct state *state, const struct kv_header *header, struct kv_result *result);

#endif
