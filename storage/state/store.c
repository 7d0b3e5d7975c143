/* storage/state/store.c: opening and closing the state, the meta getters, and the batch lifecycle
 * (begin, commit with the applied index, abort) plus state_sync, the durability point the Raft WAL
 * waits for before releasing segments. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "failpoint.h"
#include "internal.h"
#include "log.h"

#define LINK_NAME "current"
#define LINK_TEMP_NAME "current.tmp"

/* Reads root/current; creates it (pointing at db.1) on a fresh directory. */
static int resolve_generation(struct state *state, char *err, size_t errlen)
{
    char *link = state_path_join(state->root, LINK_NAME);
    if (link == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "path");
    char target[64];
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len >= 0) {
        target[len] = '\0';
        free(link);
        if (sscanf(target, "db.%u", &state->generation) != 1 || state->generation == 0)
            return state_fail(err, errlen, STATE_ERR_CORRUPT, "%s/%s points at '%s'",
                              state->root, LINK_NAME, target);
        return STATE_OK;
    }
    if (errno != ENOENT) {
        int status = state_fail(err, errlen, STATE_ERR_IO, "readlink %s: %s", link,
                                strerror(errno));
        free(link);
        return status;
    }
    char *temp = state_path_join(state->root, LINK_TEMP_NAME);
    int status = STATE_OK;
    unlink(temp);
    if (temp == NULL)
        status = state_fail(err, errlen, STATE_ERR_NOMEM, "path");
    else if (symlink("db.1", temp) != 0 || rename(temp, link) != 0)
        status = state_fail(err, errlen, STATE_ERR_IO, "create %s: %s", link, strerror(errno));
    else
        status = state_fsync_path(state->root, err, errlen);
    state->generation = 1;
    free(temp);
    free(link);
    return status;
}

/* Removes what an interrupted snapshot or restore left: directories not named by the link. */
static void remove_leftovers(struct state *state)
{
    DIR *dir = opendir(state->root);
    if (dir == NULL)
        return;
    char live[32];
    snprintf(live, sizeof live, "db.%u", state->generation);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        bool ours = strncmp(name, "db.", 3) == 0 || strncmp(name, "incoming.", 9) == 0 ||
                    strncmp(name, "snapshot.", 9) == 0 || strcmp(name, LINK_TEMP_NAME) == 0;
        if (!ours || strcmp(name, live) == 0)
            continue;
        char *path = state_path_join(state->root, name);
        if (path != NULL)
            state_remove_tree(path);
        free(path);
    }
    closedir(dir);
}

/* RocksDB's defaults took about 70 MiB of a disk before the first write while batches went through its log
 * (preallocated to 1.1 times the 64 MiB write buffer); its manifest takes 4 MiB, and the reserve check_space keeps counts the
 * write buffers besides STATE_DISK_RESERVE_BYTES. Where the free space is less than four write buffers, the
 * write buffer is made a quarter of it, or an eighth below 64 MiB free (at least 1 MiB, in 64 KiB steps),
 * the manifest's preallocation 64 KiB and the base reserve twice the write buffer (2 to 8 MiB), with a
 * warning naming the free space: a member then starts and restarts in a few MiB. Not smaller than needed:
 * every flush adds a level-0 file, and from four of them on RocksDB's pending-compaction estimate (all of
 * level 0, which check_space keeps free) makes a disk of 100-odd MiB look full (tests/cluster/25-disk-full). */
static void fit_to_free_space(struct state *state)
{
    const uint64_t write_buffer = UINT64_C(64) << 20; /* RocksDB's default */
    state->reserve_base = STATE_DISK_RESERVE_BYTES;
    struct statvfs info;
    if (statvfs(state->root, &info) != 0)
        return;
    uint64_t free_bytes = (uint64_t)info.f_bavail * info.f_frsize;
    if (free_bytes / 4 >= write_buffer)
        return;
    uint64_t fitted = free_bytes < (UINT64_C(64) << 20) ? free_bytes / 8 : free_bytes / 4;
    fitted = fitted / (UINT64_C(64) << 10) * (UINT64_C(64) << 10);
    if (fitted < (UINT64_C(1) << 20))
        fitted = UINT64_C(1) << 20;
    rocksdb_options_set_write_buffer_size(state->options, (size_t)fitted);
    rocksdb_options_set_manifest_preallocation_size(state->options, (size_t)64 << 10);
    state->reserve_base = 2 * fitted;
    if (state->reserve_base < (UINT64_C(2) << 20))
        state->reserve_base = UINT64_C(2) << 20;
    if (state->reserve_base > STATE_DISK_RESERVE_BYTES)
        state->reserve_base = STATE_DISK_RESERVE_BYTES;
    char escaped[512];
    log_write("warn", "little free space for the state; using smaller RocksDB write buffers",
              "\"state-dir\":\"%s\",\"free-bytes\":%llu,\"write-buffer-bytes\":%llu,\"reserved-bytes\":%llu",
              log_json_escape(state->root, escaped, sizeof escaped), (unsigned long long)free_bytes,
              (unsigned long long)fitted, (unsigned long long)state->reserve_base);
}

int state_open(const char *dir, struct state **out, char *err, size_t errlen)
{
    *out = NULL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return state_fail(err, errlen, STATE_ERR_IO, "mkdir %s: %s", dir, strerror(errno));
    struct state *state = calloc(1, sizeof *state);
    if (state == NULL || (state->root = strdup(dir)) == NULL) {
        free(state);
        return state_fail(err, errlen, STATE_ERR_NOMEM, "state for %s", dir);
    }
    state->options = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(state->options, 1);
    /* A batch is one WAL record: after a crash RocksDB recovers a prefix of whole batches. */
    rocksdb_options_set_wal_recovery_mode(state->options, 2 /* kPointInTimeRecovery */);
    /* Bloom filters, in the memtable and in each table file: a put of a key the key index does not
     * know yet reads its current record, and for a new key (most of them under load) the answer
     * "absent" then comes from a few bits instead of a skiplist search and a block read per level.
     * Files written without filters stay readable; only new ones carry them. */
    rocksdb_block_based_table_options_t *table_options = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_filter_policy(table_options,
                                                  rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_options_set_block_based_table_factory(state->options, table_options);
    rocksdb_block_based_options_destroy(table_options);
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(state->options, 0.02);
    rocksdb_options_set_memtable_whole_key_filtering(state->options, 1);
    fit_to_free_space(state);
    state->read_options = rocksdb_readoptions_create();
    state->write_options = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(state->write_options, 0);
    /* Applied batches skip RocksDB's own log: every one of them is a range of committed entries the Raft
     * WAL already holds durably, so writing them a second time bought nothing but CPU and disk bandwidth
     * (about a fifth of the members' CPU per put at 1,000 clients; half the state's disk writes, twice a
     * value's size per put). What the memtables hold is lost by a crash and applied again from the Raft WAL
     * (the node starts Raft at the state's applied index), which keeps its entries until a flush made the
     * state durable past them (state_sync). A flush is atomic (one column family), so the applied index
     * on disk always describes the data on disk. */
    rocksdb_writeoptions_disable_WAL(state->write_options, 1);
    state->sync_write_options = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(state->sync_write_options, 1);
    state->plain = rocksdb_writebatch_create();
    state->history = rocksdb_writebatch_create();
    state->revisions = rocksdb_writebatch_create();

    int status = resolve_generation(state, err, errlen);
    if (status == STATE_OK) {
        remove_leftovers(state);
        status = state_db_open(state, err, errlen);
    }
    if (status != STATE_OK) {
        state_close(state);
        return status;
    }
    *out = state;
    return STATE_OK;
}

void state_close(struct state *state)
{
    if (state == NULL)
        return;
    state_db_close(state);
    state_meta_clear(&state->committed);
    state_meta_clear(&state->working);
    if (state->plain != NULL)
        rocksdb_writebatch_destroy(state->plain);
    if (state->history != NULL)
        rocksdb_writebatch_destroy(state->history);
    if (state->revisions != NULL)
        rocksdb_writebatch_destroy(state->revisions);
    rocksdb_writeoptions_destroy(state->sync_write_options);
    rocksdb_writeoptions_destroy(state->write_options);
    rocksdb_readoptions_destroy(state->read_options);
    rocksdb_options_destroy(state->options);
    free(state->scratch);
    free(state->root);
    free(state);
}

int64_t state_revision(const struct state *state) { return state->working.revision; }
int64_t state_compact_revision(const struct state *state)
{
    return state->working.compact_revision;
}
uint64_t state_applied_index(const struct state *state) { return state->working.applied_index; }
uint64_t state_cluster_id(const struct state *state) { return state->working.cluster_id; }
uint64_t state_member_id(const struct state *state) { return state->working.member_id; }

struct state_bytes state_membership(const struct state *state)
{
    return (struct state_bytes){state->working.membership, state->working.membership_len};
}

int state_batch_begin(struct state *state, char *err, size_t errlen)
{
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    if (state->batch_open)
        return state_fail(err, errlen, STATE_ERR_BATCH_OPEN, "commit or abort it first");
    if (state->plain == NULL || state->history == NULL || state->revisions == NULL)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "write batch");
    /* RocksDB counts every key comparison in thread-local perf counters unless told not to, per
     * thread: nobody reads them, and they cost a TLS lookup per comparison of every memtable insert.
     * The batch's thread is the one that applies, so it is told here. */
    rocksdb_set_perf_level(1 /* rocksdb_disable */);
    /* Records go to a plain WriteBatch until a read needs them indexed (access.c). */
    state->batch_open = true;
    state_key_index_batch_begin(&state->key_index);
    return STATE_OK;
}

void state_batch_abort(struct state *state)
{
    if (!state->batch_open)
        return;
    state_batch_discard(state);
    state_key_index_batch_abort(&state->key_index);
    if (state_meta_copy(&state->working, &state->committed) != STATE_OK) {
        /* Out of memory while copying the membership: keep the counters right, which matter. */
        uint8_t *membership = state->working.membership;
        state->working = state->committed;
        state->working.membership = membership;
    }
}

static uint64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* Bytes of the open batch's records, as RocksDB will log them. */
static uint64_t batch_bytes(const struct state *state)
{
    size_t size = 0, more = 0;
    if (state->batch != NULL) {
        rocksdb_writebatch_wi_data(state->batch, &size);
    } else {
        size_t history = 0;
        rocksdb_writebatch_data(state->plain, &size);
        rocksdb_writebatch_data(state->history, &history);
        rocksdb_writebatch_data(state->revisions, &more);
        more += history;
    }
    return (uint64_t)size + more;
}

/* What RocksDB may still write on its own, besides a batch's log record: its write buffers when they are
 * flushed into a table file, the rewrite its pending compactions estimate, and reserve_base more
 * (STATE_DISK_RESERVE_BYTES, less on a small file system: the log itself, manifests, files being replaced). A flush or compaction that meets a full disk leaves
 * RocksDB broken (the Debian build aborts), so that much is kept free. */
static uint64_t reserve_bytes(struct state *state)
{
    uint64_t memtables = 0, pending = 0;
    if (rocksdb_property_int(state->db, "rocksdb.cur-size-all-mem-tables", &memtables) != 0)
        memtables = 0;
    if (rocksdb_property_int(state->db, "rocksdb.estimate-pending-compaction-bytes", &pending) != 0)
        pending = 0;
    return state->reserve_base + memtables + pending;
}

/* Whether `bytes` more still leave the reserve free: the file system (statvfs) and RocksDB (reserve_bytes) are
 * asked every second, and at every batch once the estimate (the last answer, less what was written since) comes
 * within 64 MiB of the reserve, so a busy state pays no system call per batch while its disk is far from full. */
static int check_space(struct state *state, uint64_t bytes, char *err, size_t errlen)
{
    uint64_t now = monotonic_ms();
    if (state->free_checked_ms == 0 || now - state->free_checked_ms >= 1000 ||
        state->free_bytes_estimate < bytes + state->reserve_estimate + (UINT64_C(64) << 20)) {
        struct statvfs info;
        if (statvfs(state->root, &info) != 0)
            return STATE_OK; /* no answer: RocksDB's own error will say what is wrong */
        state->free_bytes_estimate = (uint64_t)info.f_bavail * info.f_frsize;
        state->reserve_estimate = reserve_bytes(state);
        state->free_checked_ms = now;
    }
    if (state->free_bytes_estimate < bytes + state->reserve_estimate)
        return state_fail(err, errlen, STATE_ERR_NOSPACE,
                          "%s has %llu bytes free; a batch of %llu bytes would leave less than the %llu kept for "
                          "RocksDB's flushes and compactions", state->root,
                          (unsigned long long)state->free_bytes_estimate, (unsigned long long)bytes,
                          (unsigned long long)state->reserve_estimate);
    state->free_bytes_estimate -= bytes;
    return STATE_OK;
}

int state_check_space_now(struct state *state, uint64_t bytes, char *err, size_t errlen)
{
    state->free_checked_ms = 0; /* ask the file system now, not the estimate */
    return check_space(state, bytes, err, errlen);
}

int state_batch_commit(struct state *state, uint64_t applied_index, char *err, size_t errlen)
{
    int status = state_require_batch(state, err, errlen, "state_batch_commit");
    if (status != STATE_OK)
        return status;
    if (applied_index <= state->committed.applied_index) {
        state_batch_abort(state);
        return state_fail(err, errlen, STATE_ERR_INVALID,
                          "applied index %llu is not after the committed %llu",
                          (unsigned long long)applied_index,
                          (unsigned long long)state->committed.applied_index);
    }
    state->working.applied_index = applied_index;
    state_meta_stage(state);
    status = check_space(state, batch_bytes(state), err, errlen);
    if (status != STATE_OK) {
        state_batch_abort(state);
        return status;
    }
    char *error = NULL;
    if (state_batch_write(state, &error) != STATE_OK) {
        state_batch_abort(state);
        state->write_failed = true;
        return state_fail_rocksdb(err, errlen, error, "write batch");
    }
    state_batch_discard(state);
    state_key_index_batch_commit(&state->key_index);
    /* The working membership becomes the committed one; nothing can fail from here. */
    free(state->committed.membership);
    state->committed = state->working;
    state->working.membership = NULL;
    if (state_meta_copy(&state->working, &state->committed) != STATE_OK) {
        state->working = state->committed;
        state->working.membership = NULL;
        state->working.membership_len = 0;
        return state_fail(err, errlen, STATE_ERR_NOMEM,
                          "batch committed, but the membership copy failed");
    }
    return STATE_OK;
}

int state_resume(struct state *state, char *err, size_t errlen)
{
    if (state->batch_open)
        return state_fail(err, errlen, STATE_ERR_BATCH_OPEN, "resume between batches");
    const uint64_t margin = UINT64_C(1) << 20; /* so a batch or two fits: no resume only to fail again */
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    int status = state_check_space_now(state, margin, err, errlen);
    if (status != STATE_OK)
        return status;
    state->free_checked_ms = 0; /* the margin was not written */
    if (!state->write_failed)
        return STATE_OK;
    /* The meta as it was: what the owner has served so far. A reopen that comes back behind it must
     * leave the state closed at it, never serving an older revision for a moment (a watcher would see
     * a progress notification go back in time). */
    struct state_meta committed_before = state->committed, working_before = state->working;
    state->committed.membership = NULL;
    state->working.membership = NULL;
    state_db_close(state);
    state->write_failed = false;
    char open_error[400] = "";
    status = state_db_open(state, open_error, sizeof open_error);
    if (status == STATE_OK && state->committed.applied_index == committed_before.applied_index) {
        free(committed_before.membership);
        free(working_before.membership);
        return STATE_OK;
    }
    uint64_t applied_found = state->committed.applied_index;
    state_db_close(state);
    state_meta_clear(&state->committed);
    state_meta_clear(&state->working);
    state->committed = committed_before;
    state->working = working_before;
    if (status != STATE_OK)
        return state_fail(err, errlen, STATE_ERR_IO, "reopening RocksDB after a full disk: %s", open_error);
    /* Batches still in the memtables when RocksDB failed are gone (they are in no log of its own): the
     * owner cannot go on from its applied index, but a restart applies them again from the Raft WAL. */
    return state_fail(err, errlen, STATE_ERR_IO,
                      "reopening RocksDB after a full disk lost the batches it had not written to table "
                      "files (applied index %llu, found %llu); a restart applies them again from the WAL",
                      (unsigned long long)committed_before.applied_index, (unsigned long long)applied_found);
}

int state_set_ids(struct state *state, uint64_t cluster_id, uint64_t member_id, char *err,
                  size_t errlen)
{
    int status = state_require_batch(state, err, errlen, "state_set_ids");
    if (status != STATE_OK)
        return status;
    state->working.cluster_id = cluster_id;
    state->working.member_id = member_id;
    return STATE_OK;
}

int state_set_membership(struct state *state, struct state_bytes blob, char *err, size_t errlen)
{
    int status = state_require_batch(state, err, errlen, "state_set_membership");
    if (status != STATE_OK)
        return status;
    uint8_t *copy = NULL;
    if (blob.len > 0) {
        copy = malloc(blob.len);
        if (copy == NULL)
            return state_fail(err, errlen, STATE_ERR_NOMEM, "membership of %zu bytes", blob.len);
        memcpy(copy, blob.data, blob.len);
    }
    free(state->working.membership);
    state->working.membership = copy;
    state->working.membership_len = blob.len;
    return STATE_OK;
}

/* Writes the memtables into table files, waiting for it or only starting it in RocksDB's own threads; a
 * failure is RocksDB's message in *error. */
static void flush_memtables(struct state *state, bool wait, char **error)
{
    rocksdb_flushoptions_t *flush = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(flush, wait ? 1 : 0);
    rocksdb_flush(state->db, flush, error);
    rocksdb_flushoptions_destroy(flush);
}

int state_sync(struct state *state, uint64_t *durable_applied_index, char *err, size_t errlen)
{
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    /* A flush that meets a full disk breaks RocksDB for good (its write error cannot be cleared), and the
     * batches it held are then lost until a restart: refuse it while the reserve is not free. */
    int status = state_check_space_now(state, 0, err, errlen);
    if (status != STATE_OK)
        return status;
    /* Batches are not in a log of RocksDB's: only table files hold them durably. A flush writes every
     * memtable (RocksDB fsyncs the table files and the manifest); after a checkpoint it has little left. */
    char *error = NULL;
    flush_memtables(state, true, &error);
    if (error != NULL) {
        state->write_failed = true;
        return state_fail_rocksdb(err, errlen, error, "flush");
    }
    *durable_applied_index = state->committed.applied_index;
    return STATE_OK;
}

int state_flush_in_background(struct state *state, char *err, size_t errlen)
{
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    char *error = NULL;
    flush_memtables(state, false, &error);
    if (error != NULL)
        return state_fail_rocksdb(err, errlen, error, "flush (in the background)");
    return STATE_OK;
}

uint64_t state_db_size_in_use(struct state *state)
{
    uint64_t live = 0, memtables = 0;
    if (rocksdb_property_int(state->db, "rocksdb.estimate-live-data-size", &live) != 0)
        live = 0;
    if (rocksdb_property_int(state->db, "rocksdb.cur-size-all-mem-tables", &memtables) != 0)
        memtables = 0;
    return live + memtables;
}

uint64_t state_db_size(struct state *state)
{
    uint64_t sst = 0, memtables = 0;
    if (rocksdb_property_int(state->db, "rocksdb.total-sst-files-size", &sst) != 0)
        sst = 0;
    if (rocksdb_property_int(state->db, "rocksdb.cur-size-all-mem-tables", &memtables) != 0)
        memtables = 0;
    return sst + memtables;
}

int state_defragment(struct state *state, char *err, size_t errlen)
{
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    if (state->batch_open)
        return state_fail(err, errlen, STATE_ERR_BATCH_OPEN, "defragment between batches");
    /* A compaction writes the live data anew before it drops the old files: that much must be free. */
    int status = state_check_space_now(state, state_db_size(state), err, errlen);
    if (status != STATE_OK)
        return status;
    char *error = NULL;
    /* etcd's defragmentation copies its bolt file and renames the copy over it; RocksDB rewrites its tables
     * under its own MANIFEST instead, so etcd's two points are before the rewrite starts and once it is done. */
    FAILPOINT("defragBeforeCopy");
    /* The memtables first: what compaction deleted may still sit there, and a flush turns it into tables
     * the compaction below can drop. */
    flush_memtables(state, true, &error);
    if (error != NULL)
        return state_fail_rocksdb(err, errlen, error, "flush");
    /* The bottommost level too (kForce): that is where deleted history and its tombstones meet and go. */
    rocksdb_compactoptions_t *options = rocksdb_compactoptions_create();
    rocksdb_compactoptions_set_bottommost_level_compaction(options, 2 /* kForce */);
    rocksdb_compactoptions_set_exclusive_manual_compaction(options, 1);
    rocksdb_compact_range_opt(state->db, options, NULL, 0, NULL, 0);
    rocksdb_compactoptions_destroy(options);
    FAILPOINT("defragBeforeRename");
    state->free_checked_ms = 0; /* space came back: ask again */
    return STATE_OK;
}
