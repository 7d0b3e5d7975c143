/* storage/state/state.h: the applied key-value state machine of a node, kept in RocksDB with etcd's
 * MVCC semantics (etcd 3.4 mvcc package): a store revision, per-key create/mod revision and version,
 * history until compaction, watch events, and the Raft bookkeeping (applied index, membership, ids)
 * written in the same WriteBatch as the data it describes.
 *
 * Use: one thread owns a `struct state`. Committed Raft entries are applied in batches:
 *     state_batch_begin(s) ; state_put / state_delete_range / state_txn / state_compact ... ;
 *     state_batch_commit(s, index_of_last_entry)
 * Everything in one batch becomes one atomic RocksDB write together with the applied index, so a
 * restart resumes exactly after the last committed batch and the Raft WAL replays the rest.
 * Reads (state_range) work inside a batch (they see its writes) and outside (committed state).
 *
 * Errors: every call returns a `state_status` (STATE_OK is 0) and, when `err` is not NULL, writes a
 * message with context into err[0..err_len). Messages of etcd-visible errors start with etcd's wording
 * ("mvcc: required revision has been compacted"), so the client layer can pass them on.
 *
 * Memory: responses own their kvs; free them with the matching *_free function. Requests only borrow. */
#ifndef STATE_STATE_H
#define STATE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_STATUS_LIST(X)                                                      \
    X(STATE_OK, "ok")                                                             \
    X(STATE_ERR_COMPACTED, "mvcc: required revision has been compacted")          \
    X(STATE_ERR_FUTURE_REV, "mvcc: required revision is a future revision")       \
    X(STATE_ERR_KEY_NOT_FOUND, "etcdserver: key not found")                       \
    X(STATE_ERR_INVALID, "invalid argument")                                      \
    X(STATE_ERR_NO_BATCH, "no batch is open")                                     \
    X(STATE_ERR_BATCH_OPEN, "a batch is already open")                            \
    X(STATE_ERR_IO, "i/o error")                                                  \
    X(STATE_ERR_CORRUPT, "corrupt data")                                          \
    X(STATE_ERR_NOMEM, "out of memory")                                           \
    X(STATE_ERR_LEASE_NOT_FOUND, "etcdserver: requested lease not found")         \
    X(STATE_ERR_LEASE_EXISTS, "etcdserver: lease already exists")                \
    X(STATE_ERR_NOSPACE, "no space left on device")

enum state_status {
#define STATE_STATUS_ENUM(name, message) name,
    STATE_STATUS_LIST(STATE_STATUS_ENUM)
#undef STATE_STATUS_ENUM
};

/* The fixed message of a status ("unknown status" for anything else). */
const char *state_status_message(int status);

struct state;

/* A borrowed byte range (keys, values, blobs). */
struct state_bytes {
    const uint8_t *data;
    size_t len;
};

/* One key version, as etcd's mvccpb.KeyValue. Buffers are owned (malloc) by whoever holds it. */
struct state_kv {
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
};

/* ---- opening, bookkeeping -------------------------------------------------------------------- */

/* Opens (creating when missing) the state kept under directory `dir`. Leftovers of an interrupted
 * snapshot restore are cleaned up here: the state is either the old one or the new one. On a file system
 * with less than 256 MiB free, RocksDB's write buffer (and so its preallocated log) is a quarter of the
 * free space (an eighth below 64 MiB) instead of 64 MiB, with a warning in the log, so a member starts in
 * a few MiB. */
int state_open(const char *dir, struct state **out, char *err, size_t errlen);
/* Closes; a batch still open is discarded (as a crash would). NULL is allowed. */
void state_close(struct state *state);

/* Working values: inside a batch they include its uncommitted changes. */
int64_t state_revision(const struct state *state);
int64_t state_compact_revision(const struct state *state);
uint64_t state_applied_index(const struct state *state);
uint64_t state_cluster_id(const struct state *state);
uint64_t state_member_id(const struct state *state);
/* Bytes the store takes: SST files plus live write buffers (etcd's "DB SIZE" in endpoint status, and
 * the size the space quota counts). */
uint64_t state_db_size(struct state *state);
/* etcd's defragment: flushes the write buffers and compacts the whole key space down to the last level,
 * so the space of history removed by state_compact (and of deleted keys) is given back. Between batches
 * only; it takes as long as rewriting the live data (the caller's thread waits). STATE_ERR_NOSPACE when the
 * file system has less free than the state's size plus STATE_DISK_RESERVE_BYTES (the rewrite needs it). */
int state_defragment(struct state *state, char *err, size_t errlen);
/* The bytes of it that hold live data (RocksDB's estimate-live-data-size, plus the memtables): what a
 * compaction of the files would keep, etcd's "size in use" of its bolt file. */
uint64_t state_db_size_in_use(struct state *state);
/* The opaque membership blob last set (len 0 when never set). Valid until the next state call. */
struct state_bytes state_membership(const struct state *state);

/* ---- batches: one RocksDB WriteBatch per batch of committed Raft entries -------------------- */

int state_batch_begin(struct state *state, char *err, size_t errlen);
/* Writes the batch and the meta (applied index, revision, compact revision, ids, membership)
 * atomically. `applied_index` must be greater than the current applied index. The write goes to the
 * memtables only, in no log of RocksDB's: a crash loses it until a flush (see storage/README.md); use
 * state_sync before releasing Raft WAL segments. On failure
 * the batch is discarded and the working values roll back to the committed ones.
 * STATE_ERR_NOSPACE (nothing written) when the state's file system would keep less free after the
 * batch than RocksDB may still write on its own (its write buffers' flush, its pending compactions'
 * estimate, and STATE_DISK_RESERVE_BYTES more: less, 2 MiB up to it, when state_open found little free space
 * and made RocksDB's write buffers smaller), or RocksDB itself ran out of space: RocksDB must never
 * meet a full disk (it cannot recover from that, and some builds abort). */
int state_batch_commit(struct state *state, uint64_t applied_index, char *err, size_t errlen);
#define STATE_DISK_RESERVE_BYTES (UINT64_C(8) << 20)
/* After STATE_ERR_NOSPACE from a batch, between batches: STATE_OK once the state takes batches again, and
 * STATE_ERR_NOSPACE (nothing changed) while its file system still has less free than the reserve
 * state_batch_commit keeps, plus 1 MiB. A batch the reserve check refused left RocksDB as it was; a write
 * RocksDB itself failed leaves it refusing every later write (its background error, which the C API cannot
 * clear), so then RocksDB is closed and opened again, and the key index starts empty. Batches are written to no
 * log of RocksDB's, so that open finds the state as its last flush left it: if that is behind the applied
 * index, the state is closed again, its applied index and revision as they were (nothing older is ever
 * served), STATE_ERR_IO, and the owner must stop (a restart applies the lost batches again from the WAL).
 * If the open fails the state is closed: STATE_ERR_IO (never NOSPACE, whatever RocksDB said), and the
 * owner must stop (a restart opens it). */
int state_resume(struct state *state, char *err, size_t errlen);
/* Discards the open batch (no-op without one). */
void state_batch_abort(struct state *state);

/* Bookkeeping writes, inside a batch: they commit with it. */
int state_set_ids(struct state *state, uint64_t cluster_id, uint64_t member_id, char *err,
                  size_t errlen);
int state_set_membership(struct state *state, struct state_bytes blob, char *err, size_t errlen);

/* Makes everything committed so far durable (flushes the memtables into table files: batches are written
 * to no log of RocksDB's) and reports the applied index that is now durable: the Raft WAL may release
 * segments only up to that index. */
int state_sync(struct state *state, uint64_t *durable_applied_index, char *err, size_t errlen);
/* Starts writing the memtables into table files in RocksDB's background threads and returns at once: a
 * checkpoint (state_checkpoint) taken soon after then has little left to flush on the caller's thread. */
int state_flush_in_background(struct state *state, char *err, size_t errlen);
/* No memtable waits to be flushed (every flush started is done): a checkpoint now flushes only what was
 * written since. */
bool state_flush_done(struct state *state);

/* ---- range ------------------------------------------------------------------------------------ */

enum state_sort_order { STATE_SORT_NONE = 0, STATE_SORT_ASCEND = 1, STATE_SORT_DESCEND = 2 };
enum state_sort_target {
    STATE_SORT_BY_KEY = 0,
    STATE_SORT_BY_VERSION = 1,
    STATE_SORT_BY_CREATE = 2,
    STATE_SORT_BY_MOD = 3,
    STATE_SORT_BY_VALUE = 4,
};

/* etcd RangeRequest: range_end empty = the single key; range_end "\0" = every key >= key;
 * otherwise [key, range_end). revision <= 0 = current. limit <= 0 = no limit. The four revision
 * filters (0 = none) keep only kvs whose mod/create revision is within them; as in etcd they apply
 * after the range is counted, before sorting and the limit. A sort order other than the three is
 * etcd 3.4's "sort nothing". */
struct state_range_request {
    struct state_bytes key;
    struct state_bytes range_end;
    int64_t limit;
    int64_t revision;
    enum state_sort_order sort_order;
    enum state_sort_target sort_target;
    bool keys_only;
    bool count_only;
    int64_t min_mod_revision;
    int64_t max_mod_revision;
    int64_t min_create_revision;
    int64_t max_create_revision;
};

/* count = every key in the range, filters ignored (even past limit); more = the kvs that passed the
 * filters were cut by limit. revision: the store revision the range saw (inside a txn, the txn's
 * revision once the txn wrote something, as etcd's write transaction reports it). */
struct state_range_response {
    int64_t revision; /* store revision when the range was served */
    struct state_kv *kvs;
    size_t kv_count;
    int64_t count;
    bool more;
};

int state_range(struct state *state, const struct state_range_request *request,
                struct state_range_response *response, char *err, size_t errlen);
void state_range_response_free(struct state_range_response *response);

/* ---- writes (inside a batch) ----------------------------------------------------------------- */

struct state_put_request {
    struct state_bytes key;
    struct state_bytes value;
    int64_t lease; /* 0: none; else a granted lease (STATE_ERR_LEASE_NOT_FOUND otherwise) */
    bool prev_kv;
    bool ignore_value; /* keep the current value; the key must exist */
    bool ignore_lease; /* keep the current lease; the key must exist */
};

struct state_put_response {
    int64_t revision;
    bool has_prev_kv;
    struct state_kv prev_kv;
};

/* A put always makes a new revision. It attaches the key to its (new) lease and detaches it from
 * the lease it had; a delete detaches every key it removes. */
int state_put(struct state *state, const struct state_put_request *request,
              struct state_put_response *response, char *err, size_t errlen);
void state_put_response_free(struct state_put_response *response);

struct state_delete_request {
    struct state_bytes key;
    struct state_bytes range_end; /* as in state_range_request */
    bool prev_kv;
};

struct state_delete_response {
    int64_t revision;
    int64_t deleted;
    struct state_kv *prev_kvs;
    size_t prev_kv_count;
};

/* A delete that removes nothing leaves the revision unchanged (etcd). */
int state_delete_range(struct state *state, const struct state_delete_request *request,
                       struct state_delete_response *response, char *err, size_t errlen);
void state_delete_response_free(struct state_delete_response *response);

/* ---- txn -------------------------------------------------------------------------------------- */

enum state_compare_result {
    STATE_COMPARE_EQUAL = 0,
    STATE_COMPARE_GREATER = 1,
    STATE_COMPARE_LESS = 2,
    STATE_COMPARE_NOT_EQUAL = 3,
};
enum state_compare_target {
    STATE_TARGET_VERSION = 0,
    STATE_TARGET_CREATE = 1,
    STATE_TARGET_MOD = 2,
    STATE_TARGET_VALUE = 3,
    STATE_TARGET_LEASE = 4,
};

/* etcd Compare: the key (or every key of [key, range_end)) against `number` (version, create, mod,
 * lease) or `value`. A missing key compares as version/create/mod/lease 0; a VALUE compare on a
 * missing key is false. */
struct state_compare {
    enum state_compare_result result;
    enum state_compare_target target;
    struct state_bytes key;
    struct state_bytes range_end;
    int64_t number;
    struct state_bytes value;
};

enum state_op_type {
    STATE_OP_RANGE = 0,
    STATE_OP_PUT = 1,
    STATE_OP_DELETE_RANGE = 2,
    STATE_OP_TXN = 3, /* a nested txn (etcd >= 3.3) */
};

struct state_op;
struct state_op_response;

struct state_txn_request {
    const struct state_compare *compares;
    size_t compare_count;
    const struct state_op *success;
    size_t success_count;
    const struct state_op *failure;
    size_t failure_count;
};

struct state_txn_response {
    int64_t revision; /* the store revision after the txn; 0 in a nested txn's response (etcd) */
    bool succeeded;
    struct state_op_response *responses;
    size_t response_count;
};

struct state_op {
    enum state_op_type type;
    union {
        struct state_range_request range;
        struct state_put_request put;
        struct state_delete_request delete_range;
        struct state_txn_request txn;
    } request;
};

struct state_op_response {
    enum state_op_type type;
    union {
        struct state_range_response range;
        struct state_put_response put;
        struct state_delete_response delete_range;
        struct state_txn_response txn;
    } response;
};

/* etcd's Txn, nested ones included: every compare of the tree is evaluated first, on the state
 * before the txn, which picks one branch at each level; then the chosen branches are checked (put
 * checks of the whole tree: ignore_value/ignore_lease keys, leases; then range revisions), so a
 * failing txn writes nothing; then applied in order, depth first. All writes share one new main
 * revision (sub-revisions 0,1,2..); a tree that writes nothing leaves the revision unchanged. Ranges
 * see the writes before them. The ops' revisions are etcd's: a put's is the txn's, a range's and a
 * delete's the txn's once something was written before (or by) it, the previous one until then.
 * Duplicate-key and operation-count checks are the caller's (etcd makes them before proposing). */
int state_txn(struct state *state, const struct state_txn_request *request,
              struct state_txn_response *response, char *err, size_t errlen);
void state_txn_response_free(struct state_txn_response *response);

/* ---- leases ---------------------------------------------------------------------------------- */

/* etcd's lessor, the persistent half: which leases exist with their granted TTL, and which keys are
 * attached to each. Expiry is not here: the node keeps the clock (and rebuilds its expiry table from
 * state_lease_list after a restart or on becoming leader) and proposes a revoke when a lease runs
 * out. Lease records live beside the MVCC records but outside them: state_hash and compaction never
 * see them, snapshots and restores carry them (one DB). Like the keys, they change inside a batch. */

/* A lease; `keys` (from state_lease_get with want_keys) are the attached keys in key order, each
 * and the array malloc'd. */
struct state_lease {
    int64_t id;
    int64_t ttl; /* granted TTL in seconds, as given to state_lease_grant */
    struct state_bytes *keys;
    size_t key_count;
};

struct state_lease_list {
    struct state_lease *leases; /* by id, ascending; no keys */
    size_t count;
};

struct state_lease_revoke_response {
    int64_t revision; /* store revision after the revoke */
    int64_t deleted;  /* keys deleted */
};

/* Inside a batch: grants lease `id` (> 0; 0 is etcd's NoLease: STATE_ERR_LEASE_NOT_FOUND) with
 * `ttl` >= 0, stored as given (etcd's minimum and maximum TTL are the caller's: see kv_apply.h).
 * STATE_ERR_LEASE_EXISTS when the id is taken. No revision. */
int state_lease_grant(struct state *state, int64_t id, int64_t ttl, char *err, size_t errlen);
/* Inside a batch: deletes every key attached to the lease as one write (one new main revision,
 * sub-revisions in key order, as etcd's lessor does in one txn; none when no key is attached), then
 * the lease. STATE_ERR_LEASE_NOT_FOUND when it does not exist. */
int state_lease_revoke(struct state *state, int64_t id,
                       struct state_lease_revoke_response *response, char *err, size_t errlen);
/* One lease (and its keys when want_keys); STATE_ERR_LEASE_NOT_FOUND when it does not exist. */
int state_lease_get(struct state *state, int64_t id, bool want_keys, struct state_lease *out,
                    char *err, size_t errlen);
void state_lease_free(struct state_lease *lease);
/* Every lease with its granted TTL. */
int state_lease_list(struct state *state, struct state_lease_list *out, char *err, size_t errlen);
void state_lease_list_free(struct state_lease_list *list);

/* ---- buckets ---------------------------------------------------------------------------------- */

/* Records of other stores (etcd's auth users, roles and flags), each named by a bucket byte and a
 * name, kept beside the MVCC data: they change inside a batch (committing with the applied index),
 * snapshots and restores carry them, hash and compaction never see them. */
int state_bucket_put(struct state *state, uint8_t bucket, struct state_bytes name,
                     struct state_bytes value, char *err, size_t errlen);
int state_bucket_delete(struct state *state, uint8_t bucket, struct state_bytes name, char *err,
                        size_t errlen);
/* Called for each record of the bucket in name order (through the open batch, if any); return 0 to go
 * on, 1 to stop, another status to fail with it. Name and value are valid during the call only. */
typedef int (*state_bucket_fn)(void *context, struct state_bytes name, struct state_bytes value);
int state_bucket_scan(struct state *state, uint8_t bucket, state_bucket_fn callback, void *context,
                      char *err, size_t errlen);

/* ---- compaction ------------------------------------------------------------------------------ */

/* Inside a batch: drops history below `revision`, keeping each key's newest version at or below it
 * unless that version is a delete. Does not change the store revision. Errors: revision <= current
 * compact revision (compacted), revision > store revision (future). */
int state_compact(struct state *state, int64_t revision, char *err, size_t errlen);

/* ---- watch events ----------------------------------------------------------------------------- */

enum state_event_type { STATE_EVENT_PUT = 0, STATE_EVENT_DELETE = 1 };

struct state_event {
    enum state_event_type type;
    struct state_kv kv; /* DELETE: key and mod_revision (revision of the delete) only */
    bool has_prev_kv;
    struct state_kv prev_kv;
};

struct state_event_list {
    struct state_event *events;
    size_t count;
    int64_t next_revision; /* pass as from_revision to continue */
};

/* Committed events with revision >= from_revision for [key, range_end) (range_end as in range), in
 * revision order. Stops after about max_events (0 = no limit) but never splits one revision's events.
 * Error STATE_ERR_COMPACTED when from_revision < compact revision. From the compact revision itself
 * the puts made at it are there, a delete made at it is not (compaction drops it), as in etcd. */
int state_events_read(struct state *state, int64_t from_revision, struct state_bytes key,
                      struct state_bytes range_end, size_t max_events, bool want_prev_kv,
                      struct state_event_list *out, char *err, size_t errlen);
/* The same, stopping also after about max_scanned revision records of any key (0 = no limit), so that a
 * watcher of a rare key catching up over a long history reads it in bounded steps. */
int state_events_read_bounded(struct state *state, int64_t from_revision, struct state_bytes key,
                              struct state_bytes range_end, size_t max_events, size_t max_scanned,
                              bool want_prev_kv, struct state_event_list *out, char *err, size_t errlen);
void state_event_list_free(struct state_event_list *list);
/* A view of the committed state for reading watch events on another thread while this one goes on
 * applying (a RocksDB snapshot: nothing applied or compacted later changes what it shows). Opened on the
 * state's thread between batches; reads on any one thread at a time; closed (on any thread) before the
 * state is closed, restored or reopened. */
struct state_events_view;
int state_events_view_open(struct state *state, struct state_events_view **out, char *err, size_t errlen);
/* The committed revision it shows. */
int64_t state_events_view_revision(const struct state_events_view *view);
/* state_events_read_bounded through the view. */
int state_events_view_read(struct state_events_view *view, int64_t from_revision, struct state_bytes key,
                           struct state_bytes range_end, size_t max_events, size_t max_scanned,
                           bool want_prev_kv, struct state_event_list *out, char *err, size_t errlen);
/* Any thread: a read under way through the view stops at its next revision record and fails (the owner
 * must close the view soon, and the reading thread may get little CPU). */
void state_events_view_cancel(struct state_events_view *view);
void state_events_view_close(struct state_events_view *view);

/* ---- hash ------------------------------------------------------------------------------------- */

/* Like etcd HashKV: CRC-32C over every committed MVCC record (key, revision, kv) with revision <=
 * `revision` (<= 0: current). Members that applied the same entries give the same hash. */
int state_hash(struct state *state, int64_t revision, uint32_t *hash, int64_t *hashed_revision,
               char *err, size_t errlen);

/* ---- snapshots -------------------------------------------------------------------------------- */

/* Writes a RocksDB checkpoint of the committed state (no batch may be open: it is not included) into
 * `directory`, which must not exist: the table files are hard links, so it costs no copy. Everything
 * in it is fsync'd before this returns. *applied_index is the applied index it holds. */
int state_checkpoint(struct state *state, const char *directory, uint64_t *applied_index,
                     char *err, size_t errlen);

/* A directory of files (a checkpoint) as an archive stream (the format of state_snapshot_*), readable
 * at any offset: a sender resends lost parts and resumes where a receiver stopped without keeping
 * anything in memory. Every file is opened here (the directory may be removed afterwards). */
struct state_archive_source;
int state_archive_source_open(const char *directory, uint64_t applied_index,
                              struct state_archive_source **out, char *err, size_t errlen);
uint64_t state_archive_source_size(const struct state_archive_source *source);
uint64_t state_archive_source_applied_index(const struct state_archive_source *source);
/* Copies up to len bytes from offset; *got < len only at the end of the stream. */
int state_archive_source_read(struct state_archive_source *source, uint64_t offset, uint8_t *buf,
                              size_t len, size_t *got, char *err, size_t errlen);
void state_archive_source_close(struct state_archive_source *source);

/* Unpacks an archive stream into `directory` (created when missing), refusing any part whose CRC
 * fails. Progress is durable file by file: opened again with the same identity after an
 * interruption (a crash, a lost sender), it keeps the complete files and *resume_offset says where
 * the stream must continue; otherwise (other identity, nothing usable) it empties the directory and
 * *resume_offset is 0. Write the stream's bytes from that offset on, in order. */
struct state_archive_sink;
int state_archive_sink_open(const char *directory, uint64_t identity,
                            struct state_archive_sink **out, uint64_t *resume_offset, char *err,
                            size_t errlen);
int state_archive_sink_write(struct state_archive_sink *sink, const uint8_t *chunk, size_t len,
                             char *err, size_t errlen);
/* True once the trailer was checked: every file is complete. */
bool state_archive_sink_complete(const struct state_archive_sink *sink);
uint64_t state_archive_sink_applied_index(const struct state_archive_sink *sink);
uint64_t state_archive_sink_offset(const struct state_archive_sink *sink);
/* Where a resume would continue if the sink were lost now. */
uint64_t state_archive_sink_durable_offset(const struct state_archive_sink *sink);
const char *state_archive_sink_directory(const struct state_archive_sink *sink);
/* On a complete stream: removes the progress log, leaving exactly the archive's files, durable. */
int state_archive_sink_finish(struct state_archive_sink *sink, char *err, size_t errlen);
/* Frees the sink; the directory stays as it is (a partial one can be resumed). NULL is allowed. */
void state_archive_sink_close(struct state_archive_sink *sink);

struct state_snapshot;

/* Takes a RocksDB checkpoint of the committed state (no batch may be open) and streams it as an
 * archive: header, files (each with its CRC-32C), trailer. */
int state_snapshot_open(struct state *state, struct state_snapshot **out, char *err, size_t errlen);
/* Fills buf with up to capacity bytes (capacity >= 1); *len == 0 means the stream is complete. */
int state_snapshot_next_chunk(struct state_snapshot *snapshot, uint8_t *buf, size_t capacity,
                              size_t *len, char *err, size_t errlen);
uint64_t state_snapshot_applied_index(const struct state_snapshot *snapshot);
/* Removes the checkpoint. NULL is allowed. */
void state_snapshot_close(struct state_snapshot *snapshot);

struct state_restore;

/* Receives a snapshot stream into a temporary directory beside the state (no batch may be open). */
int state_restore_begin(struct state *state, struct state_restore **out, char *err, size_t errlen);
int state_restore_write(struct state_restore *restore, const uint8_t *chunk, size_t len, char *err,
                        size_t errlen);
/* Verifies the stream is complete, fsyncs it, keeps the local member id, swaps it in with one
 * rename and reopens the state on it. Consumes `restore` whatever the outcome. On failure before
 * the swap the old state stays in use. */
int state_restore_finish(struct state_restore *restore, char *err, size_t errlen);
/* Drops the partial stream and its directory. NULL is allowed. */
void state_restore_abort(struct state_restore *restore);

/* Installs a checkpoint directory (state_checkpoint's, or an archive unpacked by a sink) as the
 * state, as state_restore_finish does: the directory itself is left as it was (its table files are
 * shared by hard links, the rest copied). The new state carries member_id (0: the current local
 * one), so a member that never applied anything gets its own id, not the sender's. */
int state_restore_from_directory(struct state *state, const char *directory, uint64_t member_id,
                                 char *err, size_t errlen);

/* Test hook: make state_restore_finish stop right after step `step` (1: files fsync'd, 2: directory
 * renamed, 3: link to it written, 4: link switched) as a crash would, returning STATE_ERR_IO. The
 * state must then be closed and reopened. 0 disables. */
void state_restore_set_crash_step(struct state_restore *restore, int step);

#endif
