/* control/kv_apply.h: etcd's KV requests (etcdserverpb) carried out on the state machine.
 *
 * Writes come out of committed Raft entries (InternalRaftRequest) and run inside the storage thread's
 * open batch; reads (Range) run against committed state once the read index is applied. Each call gives
 * back the packed etcd response (PutResponse, RangeResponse, ...) with its ResponseHeader filled, or an
 * error with etcd's text and the gRPC code a client would see. */
#ifndef QUORUMD_CONTROL_KV_APPLY_H
#define QUORUMD_CONTROL_KV_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "raft_internal.pb-c.h"
#include "rpc.pb-c.h"
#include "state.h"

/* gRPC status codes used in results (grpc/status codes). */
enum grpc_code {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
};
const char *grpc_code_name(int code);

enum kv_response_kind {
	KV_RESPONSE_NONE,
	KV_RESPONSE_RANGE,
	KV_RESPONSE_PUT,
	KV_RESPONSE_DELETE_RANGE,
	KV_RESPONSE_TXN,
	KV_RESPONSE_COMPACTION,
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

/* Applies the write in request (put, delete_range, txn or compaction) inside the open batch. Requests
 * that are not KV writes give GRPC_UNIMPLEMENTED. */
void kv_apply_request(struct state *state, const Etcdserverpb__InternalRaftRequest *request,
                      const struct kv_header *header, struct kv_result *result);
/* Serves a Range against the state (committed, or the open batch inside the storage thread). */
void kv_range(struct state *state, const Etcdserverpb__RangeRequest *request, const struct kv_header *header,
              struct kv_result *result);
void kv_result_free(struct kv_result *result);

#endif
