/* storage/state/internal.h: what the files of storage/state share and nobody else sees: the state
 * struct, the write context of one revision, error formatting, and the read/write helpers that go
 * through the open batch so that a batch reads its own writes. */
#ifndef STATE_INTERNAL_H
#define STATE_INTERNAL_H

#include <rocksdb/c.h>

#include "state.h"

/* Bookkeeping kept in memory and written under the meta prefix with every batch. */
struct state_meta {
    uint64_t applied_index;
    int64_t revision;
    int64_t compact_revision;
    uint64_t cluster_id;
    uint64_t member_id;
    uint8_t *membership; /* owned */
    size_t membership_len;
};

/* key_index.c: the current version's facts per user key, so a put need not read RocksDB. */
enum state_key_known { STATE_KEY_UNKNOWN = 0, STATE_KEY_ABSENT, STATE_KEY_PRESENT };
struct state_key_meta {
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
};
struct state_key_index_entry;
struct state_key_index {
    struct state_key_index_entry **slots; /* open addressing, capacity a power of two */
    size_t capacity;
    size_t count;
    uint64_t generation;                  /* of the open batch */
    struct state_key_index_entry **touched; /* written in the open batch, promoted at commit */
    size_t touched_count;
    size_t touched_capacity;
    bool batch_unreliable;                /* a write of this batch could not be noted */
};
void state_key_index_clear(struct state_key_index *index);
void state_key_index_batch_begin(struct state_key_index *index);
void state_key_index_batch_commit(struct state_key_index *index);
void state_key_index_batch_abort(struct state_key_index *index);
/* What the index vouches for (the open batch's view first); STATE_KEY_UNKNOWN: read RocksDB. */
enum state_key_known state_key_index_find(const struct state_key_index *index, const uint8_t *key,
                                          size_t key_len, struct state_key_meta *meta);
/* A RocksDB read outside the batch's own writes saw this (committed) version, or no version. */
void state_key_index_learn(struct state_key_index *index, const uint8_t *key, size_t key_len,
                           bool found, const struct state_key_meta *meta);
/* The open batch wrote the key's current version (present) or deleted it. */
void state_key_index_note(struct state_key_index *index, const uint8_t *key, size_t key_len,
                          bool present, const struct state_key_meta *meta);

struct state {
    char *root;        /* directory given to state_open */
    unsigned generation; /* root/db.<generation> is the live RocksDB directory */
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_readoptions_t *read_options;
    rocksdb_writeoptions_t *write_options;
    rocksdb_writeoptions_t *sync_write_options;
    struct state_meta committed; /* as in RocksDB */
    struct state_meta working;   /* committed + the open batch */
    bool batch_open;
    rocksdb_writebatch_t *plain;     /* the open batch's records while nothing read through it */
    rocksdb_writebatch_t *history;   /* its history records, written after the others (access.c) */
    rocksdb_writebatch_t *revisions; /* its revision records, written last (access.c) */
    rocksdb_writebatch_wi_t *batch;  /* the open batch once indexed for a read: holds everything */
    unsigned snapshot_sequence;  /* names checkpoint directories */
    bool txn_has_writes; /* a txn branch wrote: the working revision no longer means "now" */
    struct state_key_index key_index; /* follows every write of a current ('c') record */
    uint64_t free_bytes_estimate; /* the file system's free bytes at the last statvfs, less what was written since */
    uint64_t free_checked_ms;     /* when that statvfs was made (monotonic; 0: never) */
    uint64_t reserve_estimate;    /* what RocksDB may write on its own, as of that statvfs (store.c) */
    uint8_t *scratch;             /* state_scratch's buffer (access.c) */
    size_t scratch_capacity;
    uint64_t reserve_base;        /* the part of it besides write buffers and compactions (STATE_DISK_RESERVE_BYTES,
                                   * less on a small file system: store.c, fit_to_free_space) */
    bool write_failed;            /* RocksDB failed a write: it refuses every later one until reopened (state_resume) */
};

/* The main revision of the write being applied and the next sub-revision in it. */
struct state_write {
    int64_t main;
    int64_t sub;
};

/* errors.c: formats "<status message>: <context>" into err; returns status. */
int state_fail(char *err, size_t errlen, int status, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
/* Same for a RocksDB error string, which it frees. */
int state_fail_rocksdb(char *err, size_t errlen, char *rocksdb_error, const char *what);

/* access.c: reads see the open batch when there is one. */
rocksdb_iterator_t *state_iterator(struct state *state);
/* The same, reading with `options` (which must outlive the iterator): an iterate_upper_bound there stops
 * the iterator at the bound instead of stepping over every deleted key after the last live one in range
 * (RocksDB's Next skips tombstones until it finds a live key, however far away). */
rocksdb_iterator_t *state_iterator_with(struct state *state, rocksdb_readoptions_t *options);
/* *value is malloc'd (free with rocksdb_free), NULL when the key is absent. */
int state_get(struct state *state, const uint8_t *key, size_t key_len, char **value,
              size_t *value_len, char *err, size_t errlen);
/* The committed value only (the open batch not looked at). */
int state_get_committed(struct state *state, const uint8_t *key, size_t key_len, char **value,
                        size_t *value_len, char *err, size_t errlen);
void state_batch_put(struct state *state, const uint8_t *key, size_t key_len, const uint8_t *value,
                     size_t value_len);
/* One record whose key and value are each the concatenation of `parts` pieces (RocksDB copies them
 * into the batch once, so nobody assembles them first). The key's first piece starts with its prefix. */
struct state_piece {
    const void *data;
    size_t len;
};
void state_batch_put_pieces(struct state *state, const struct state_piece *key, int key_parts,
                            const struct state_piece *value, int value_parts);
/* A buffer of at least `size` bytes for encoding one record, reused by the next: the batch copies
 * what it is given, so a put needs no allocation of its own. NULL when out of memory. */
uint8_t *state_scratch(struct state *state, size_t size);
/* Writes the open batch to RocksDB (*error set by RocksDB on failure); the batch stays open. */
int state_batch_write(struct state *state, char **error);
/* Drops the open batch's records and closes it. */
void state_batch_discard(struct state *state);
void state_batch_delete(struct state *state, const uint8_t *key, size_t key_len);
int state_require_batch(const struct state *state, char *err, size_t errlen, const char *what);

/* meta.c */
int state_meta_load(struct state *state, char *err, size_t errlen);
void state_meta_stage(struct state *state);
int state_meta_copy(struct state_meta *to, const struct state_meta *from);
void state_meta_clear(struct state_meta *meta);
/* Writes the member id into another RocksDB (a restored snapshot keeps the local id). */
int state_meta_put_member_id(rocksdb_t *db, const rocksdb_writeoptions_t *options,
                             uint64_t member_id, char *err, size_t errlen);

/* kv_codec.c: protobuf-c encoding of stored values. */
/* A KeyValue packed into a buffer of state_kv_packed_size(kv) bytes; returns how many were written. */
size_t state_kv_packed_size(const struct state_kv *kv);
size_t state_kv_pack(const struct state_kv *kv, uint8_t *out);
/* An mvccpb.Event of `type` holding a kv packed into kv_packed_len bytes is the bytes written to out
 * (returns how many) followed by that kv's packed bytes: what protobuf-c packs for the Event, without
 * packing the kv again. */
#define STATE_EVENT_PREFIX_MAX 13
size_t state_event_prefix(enum state_event_type type, size_t kv_packed_len,
                          uint8_t out[STATE_EVENT_PREFIX_MAX]);
/* Decodes a stored KeyValue; `kv` fields are malloc'd. keys_only leaves value NULL. */
int state_kv_decode(const uint8_t *data, size_t len, bool keys_only, struct state_kv *kv);
int state_event_decode(const uint8_t *data, size_t len, bool keys_only,
                       enum state_event_type *type, struct state_kv *kv);
int state_kv_copy(struct state_kv *to, const struct state_kv *from);
void state_kv_free_fields(struct state_kv *kv);

/* A growable array of kvs. */
struct state_kv_list {
    struct state_kv *items;
    size_t count;
    size_t capacity;
};
int state_kv_list_push(struct state_kv_list *list, struct state_kv *kv); /* takes kv's buffers */
void state_kv_list_free(struct state_kv_list *list);

/* scan.c: a request's key range in user-key space (etcd rules: empty range_end = one key,
 * "\0" = every key >= key, else [key, range_end)) and scans over it. */
struct state_key_range {
    struct state_bytes key;
    struct state_bytes end;
    bool single;
    bool unbounded;
};
void state_key_range_init(struct state_key_range *range, struct state_bytes key,
                          struct state_bytes range_end);
/* True when user_key sorts at or after the range's end (a scan in key order can stop). */
bool state_key_range_after(const struct state_key_range *range, const uint8_t *user_key,
                           size_t user_key_len);
/* Called for each live kv in key order; return 0 to go on, 1 to stop, a status to fail. The kv is
 * the callback's to keep (take its buffers) or leave (the scan frees it). */
typedef int (*state_scan_fn)(void *context, struct state_kv *kv);
/* Live kvs at the working revision (current prefix), through the batch. */
int state_scan_current(struct state *state, const struct state_key_range *range, bool keys_only,
                       state_scan_fn callback, void *context, char *err, size_t errlen);
/* Live kvs as they were at `revision` (history prefix). */
int state_scan_at(struct state *state, const struct state_key_range *range, int64_t revision,
                  bool keys_only, state_scan_fn callback, void *context, char *err,
                  size_t errlen);
/* Checks a range revision (<= 0: current) against the working revisions. */
int state_check_revision(const struct state *state, int64_t revision, char *err, size_t errlen);

/* write.c: one put / delete as part of `write` (a standalone op or a txn). */
int state_apply_put(struct state *state, struct state_write *write,
                    const struct state_put_request *request, struct state_put_response *response,
                    char *err, size_t errlen);
int state_apply_delete(struct state *state, struct state_write *write,
                       const struct state_delete_request *request,
                       struct state_delete_response *response, char *err, size_t errlen);
/* Reads the current version of one key (through the batch). *found false when absent. */
int state_current_get(struct state *state, struct state_bytes key, bool *found, struct state_kv *kv,
                      char *err, size_t errlen);

/* lease.c: the checks and attachment records that put and delete make. */
/* STATE_OK when lease `id` exists, STATE_ERR_LEASE_NOT_FOUND (with context) when not. */
int state_lease_require(struct state *state, int64_t id, char *err, size_t errlen);
/* Moves user_key from lease `from` to lease `to` (either may be 0: none) in the batch. */
int state_lease_move_key(struct state *state, struct state_bytes user_key, int64_t from, int64_t to,
                         char *err, size_t errlen);

/* files.c: directory helpers for snapshots and restore. */
int state_fsync_path(const char *path, char *err, size_t errlen);
/* fsyncs every file of a flat directory, then the directory. With skip_hard_links, a regular file with other
 * links is left out: a checkpoint's table files are hard links to the live ones, whose data RocksDB synced
 * when it wrote them, and the directory's fsync makes the links durable (an fsync per link cost a journal
 * commit apiece on the applying thread: up to 125 ms a snapshot on a busy disk). */
int state_fsync_directory_files(const char *path, bool skip_hard_links, char *err, size_t errlen);
int state_remove_tree(const char *path);
char *state_path_join(const char *dir, const char *name);
/* Opens the RocksDB in state->root/db.<generation> and loads the meta. */
int state_db_open(struct state *state, char *err, size_t errlen);
void state_db_close(struct state *state);

/* store.c: STATE_ERR_NOSPACE unless `bytes` more leave free what RocksDB may still write on its own (its
 * flushes and compactions, and the reserve), asking the file system now (state_batch_commit's check uses a
 * recent answer). */
int state_check_space_now(struct state *state, uint64_t bytes, char *err, size_t errlen);

#endif
