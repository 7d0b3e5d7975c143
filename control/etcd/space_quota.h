/* control/etcd/space_quota.h: etcd 3.4's space quota (etcdserver/quota.go) and alarm store
 * (etcdserver/api/v3alarm), on storage/state.
 *
 * The quota: a member refuses a Put, a Txn or a LeaseGrant before proposing it when the state's size
 * (state_db_size, the number `endpoint status` shows as DB SIZE) plus the request's cost would reach
 * --quota-backend-bytes, and raises the NOSPACE alarm through Raft. The alarm: replicated state (a bucket
 * of the state, so it commits with the applied index, survives restarts and travels in snapshots); while a
 * NOSPACE alarm is active every member's applier refuses Put, Txn with a put and LeaseGrant (etcd's
 * applierV3Capped), whatever the member's own size. Range, DeleteRange, Txn without puts, Compaction and
 * LeaseRevoke go on. */
#ifndef QUORUMD_CONTROL_SPACE_QUOTA_H
#define QUORUMD_CONTROL_SPACE_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_apply.h"
#include "rpc.pb-c.h"
#include "state.h"

/* etcd's DefaultQuotaBytes (2 GiB) and MaxQuotaBytes (8 GiB, above which it warns). */
#define SPACE_QUOTA_DEFAULT_BYTES (INT64_C(2) * 1024 * 1024 * 1024)
#define SPACE_QUOTA_MAX_BYTES (INT64_C(8) * 1024 * 1024 * 1024)

/* etcd's error for a write refused for space (rpctypes.ErrGRPCNoSpace), with its gRPC code. */
#define SPACE_QUOTA_ERROR "etcdserver: mvcc: database space exceeded"
#define SPACE_QUOTA_GRPC_CODE GRPC_RESOURCE_EXHAUSTED

/* The quota in force for --quota-backend-bytes: 0 gives the default, a negative value disables the quota
 * (returns 0, meaning "no quota"), as etcd's NewBackendQuota. */
int64_t space_quota_bytes(int64_t flag_value);
/* etcd's start-up log line for the quota (and its warning above 8 GiB): "enabled backend quota", ... */
void space_quota_log(int64_t flag_value);

/* go-humanize's Bytes (SI units: "2.1 GB", "20 kB"), as etcd's logs print sizes. */
void space_quota_format_bytes(uint64_t bytes, char *out, size_t size);

/* etcd's cost estimates: a put is its key and value plus 256 bytes of metadata; a txn is its costlier
 * branch's puts (nested txns' puts counted too: etcd 3.4 overlooks them); a lease grant 64 bytes. */
int64_t space_quota_cost_put(const Etcdserverpb__PutRequest *put);
int64_t space_quota_cost_txn(const Etcdserverpb__TxnRequest *txn);
#define SPACE_QUOTA_LEASE_COST 64

/* etcd's backendQuota.Available: the size after the request stays below the quota (quota 0: no quota); a
 * request of cost 0 (a txn without puts) is always available. */
bool space_quota_available(uint64_t db_size, int64_t cost, int64_t quota);

/* ---- alarms ---- */

struct alarm_entry {
	uint64_t member_id;
	Etcdserverpb__AlarmType type;
};

/* The active alarms, ordered by type then member id (etcd keeps a map; an order makes lists stable). */
struct alarm_list {
	struct alarm_entry *entries;
	size_t count;
};

/* The alarms kept in the state (committed, or the open batch). 0, or -1 with the reason. */
int alarm_list_load(struct state *state, struct alarm_list *out, char *err, size_t errlen);
void alarm_list_free(struct alarm_list *list);
int alarm_list_copy(struct alarm_list *to, const struct alarm_list *from);
/* Any member's alarm of this type. */
bool alarm_list_has(const struct alarm_list *list, Etcdserverpb__AlarmType type);
bool alarm_list_has_member(const struct alarm_list *list, uint64_t member_id, Etcdserverpb__AlarmType type);
/* etcd's AlarmMember.String(): "memberID:13803658152347727308 alarm:NOSPACE " (the trailing space is
 * gogoproto's text form, which etcdctl prints as it is). */
void alarm_entry_format(const struct alarm_entry *entry, char *out, size_t size);

/* Applies an AlarmRequest inside the open batch, as etcd's applierV3backend.Alarm: GET lists the alarms
 * (of one type, or all for NONE); ACTIVATE adds the member's alarm (not NONE) and answers it; DEACTIVATE
 * removes it and answers it, or answers nothing when it was not active. *changed says whether the list
 * changed (the caller publishes it). Logs etcd's "alarm raised" / "alarm disarmed" when the first alarm of
 * a type appears or the last one goes. Returns -1 (with err) only when the state cannot be written. */
int alarm_apply(struct alarm_list *list, struct state *state, const Etcdserverpb__AlarmRequest *request,
                const struct kv_header *header, struct kv_result *result, bool *changed, char *err, size_t errlen);

/* etcd's applierV3Capped: while a NOSPACE alarm is active, a Put, a Txn with a put or a LeaseGrant is
 * refused; true (and result filled with etcd's error) when the request is one of these. */
bool alarm_refuses(const struct alarm_list *list, const Etcdserverpb__InternalRaftRequest *request,
                   struct kv_result *result);

#endif
