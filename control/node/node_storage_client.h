/* control/node/node_storage_client.h: the client requests the storage thread serves from this member's applied
 * state — HashKV, Snapshot, Watch, and the lease clocks (renew, time-to-live, expiry).
 *
 * Watchers live here, on the thread that applies, so a watcher can never miss or repeat an event. As in
 * etcd's watchable store there are two groups: synced watchers get the new events after every applied
 * batch (read once, matched to watchers through an index by exact key plus a scan of range watchers,
 * one WatchResponse per watcher posted to the client thread that owns the call); unsynced ones — a new
 * watcher starting in the past, or a synced one parked because its client stopped reading (etcd's
 * victims) — catch up from the history in bounded steps, read by a replay thread at nice 19 through
 * snapshots of the state and sent from here between batches, and then join. So applying
 * never waits on a historical or slow watcher, and a slow one costs this member at most
 * WATCH_BACKLOG_BYTES of queued responses.
 *
 * Lease expiry follows etcd's lessor: only the leader's clocks run; a member that becomes leader gives
 * every lease its full TTL again; an expired lease is revoked through Raft (a LeaseRevoke proposal),
 * retried until the revoke is applied. */
#ifndef QUORUMD_CONTROL_NODE_STORAGE_CLIENT_H
#define QUORUMD_CONTROL_NODE_STORAGE_CLIENT_H

#include "node.h"

struct storage_clients;

struct storage_clients *storage_clients_new(struct node *node);
void storage_clients_free(struct storage_clients *clients);
/* Serves one request (kinds REQUEST_HASH_KV ... REQUEST_LEASE_LEASES); takes ownership of it. */
void storage_clients_handle(struct storage_clients *clients, struct node_request *request);
/* After a committed batch: fans the new events out to the watchers, and syncs the lease clocks with the
 * leases that were granted or revoked. */
void storage_clients_after_apply(struct storage_clients *clients);
/* Each applied client request (before the batch commits): grants and revokes for the lease clocks. */
void storage_clients_note_applied(struct storage_clients *clients, const Etcdserverpb__InternalRaftRequest *request,
                                  const struct kv_result *result);
/* The watchers catching up from the history (new ones that start in the past, parked ones whose clients
 * read again): the steps the replay thread read are sent, and the next ones queued for it. True when more
 * is due now (no replay thread: this thread reads a step a turn): the storage thread then polls instead of
 * sleeping. */
bool storage_clients_catch_up(struct storage_clients *clients);
/* Readable (an eventfd) when the replay thread handed steps back: the storage thread then calls
 * storage_clients_replay_heard and storage_clients_catch_up. */
int storage_clients_replay_fd(const struct storage_clients *clients);
void storage_clients_replay_heard(struct storage_clients *clients);
/* Before the state's RocksDB is replaced or reopened (a snapshot install, a resume after a full disk): the
 * replay thread stops reading through views of it; the watchers go on from where they were. */
void storage_clients_before_state_change(struct storage_clients *clients);
/* The state was replaced by a snapshot: the lease clocks start again from its leases, and watchers
 * catch up from it (or are cancelled as compacted, when the events they wait for are not in it). */
void storage_clients_after_restore(struct storage_clients *clients);
/* About every 100 ms: lease expiry on the leader, watch progress notifications. */
void storage_clients_tick(struct storage_clients *clients);

#endif
