/* tests/snap/test_store.c: the snapshot store. A snapshot taken from a state lists, loads its Raft
 * record and installs into another state with the same hash; damage to its meta or to a file of its
 * checkpoint is refused with the file named; a broken one leaves the list; an interrupted one is gone
 * at the next open; a received one commits (and yields to a local one of the same name); pruning keeps
 * the newest. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "snap.h"
#include "state_test.h"

static char snap_err[512];

static void fill(struct state *state, uint64_t index, int count)
{
    char key[64], value[128];
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    for (int i = 0; i < count; i++) {
        snprintf(key, sizeof key, "k/%04d", i);
        snprintf(value, sizeof value, "v-%llu-%d", (unsigned long long)index, i);
        CHECK_EQ(put(state, key, value), STATE_OK);
    }
    REQUIRE_OK(state_batch_commit(state, index, test_err, sizeof test_err));
}

static uint32_t hash_of(struct state *state)
{
    uint32_t hash = 0;
    int64_t revision;
    if (state_hash(state, 0, &hash, &revision, test_err, sizeof test_err) != STATE_OK)
        test_failures++;
    return hash;
}

static struct snap_store *open_store(const char *dir)
{
    struct snap_store *store = NULL;
    if (snap_store_open(dir, &store, snap_err, sizeof snap_err) != 0) {
        fprintf(stderr, "snap_store_open %s: %s\n", dir, snap_err);
        exit(1);
    }
    return store;
}

/* Some file of the snapshot's checkpoint whose name ends with suffix. */
static bool file_in_db(struct snap_store *store, const struct snap_info *info, const char *suffix, char *out,
                       size_t size)
{
    char db[512];
    snap_store_db_path(store, info, db, sizeof db);
    DIR *dir = opendir(db);
    struct dirent *entry;
    bool found = false;
    while (dir != NULL && !found && (entry = readdir(dir)) != NULL) {
        size_t length = strlen(entry->d_name);
        if (length >= strlen(suffix) && strcmp(entry->d_name + length - strlen(suffix), suffix) == 0) {
            found = snprintf(out, size, "%s/%s", db, entry->d_name) < (int)size;
        }
    }
    if (dir != NULL)
        closedir(dir);
    return found;
}

static void test_create_load_install(void)
{
    char root[128];
    struct state *state = open_fresh(root, sizeof root);
    fill(state, 7, 200);
    char dir[160];
    snprintf(dir, sizeof dir, "%s/snap", temp_dir());
    struct snap_store *store = open_store(dir);
    struct snap_info info;
    CHECK_EQ(snap_store_create(store, state, 3, "record-7", 8, &info, snap_err, sizeof snap_err), 0);
    CHECK_EQ(info.index, 7);
    CHECK_EQ(info.term, 3);
    CHECK(strcmp(info.name, "0000000000000003-0000000000000007") == 0);
    uint32_t at_seven = hash_of(state);
    fill(state, 9, 50);
    struct snap_info second;
    CHECK_EQ(snap_store_create(store, state, 4, "record-9", 8, &second, snap_err, sizeof snap_err), 0);

    struct snap_info *list;
    size_t count;
    CHECK_EQ(snap_store_list(store, &list, &count, snap_err, sizeof snap_err), 0);
    CHECK_EQ(count, 2);
    CHECK(count == 2 && list[0].index == 9 && list[1].index == 7);
    free(list);
    struct snap_info found;
    CHECK(snap_store_find(store, 7, &found) && found.term == 3);
    CHECK(!snap_store_find(store, 8, &found));

    uint8_t *record;
    size_t length;
    CHECK_EQ(snap_store_load(store, &info, &record, &length, snap_err, sizeof snap_err), 0);
    CHECK(length == 8 && memcmp(record, "record-7", 8) == 0);
    free(record);

    /* Another state installed from the snapshot at 7 holds exactly the state at 7. */
    char other_root[128], db[512];
    struct state *other = open_fresh(other_root, sizeof other_root);
    snap_store_db_path(store, &info, db, sizeof db);
    REQUIRE_OK(state_restore_from_directory(other, db, 2, test_err, sizeof test_err));
    CHECK_EQ(hash_of(other), at_seven);
    CHECK_EQ(state_applied_index(other), 7);
    CHECK_EQ(snap_store_load(store, &info, &record, &length, snap_err, sizeof snap_err), 0);
    free(record);
    state_close(other);
    snap_store_close(store);
    state_close(state);
}

static void test_damage_is_named(void)
{
    char root[128];
    struct state *state = open_fresh(root, sizeof root);
    fill(state, 5, 300);
    char dir[160];
    snprintf(dir, sizeof dir, "%s/snap", temp_dir());
    struct snap_store *store = open_store(dir);
    struct snap_info a, b, c;
    CHECK_EQ(snap_store_create(store, state, 1, "a", 1, &a, snap_err, sizeof snap_err), 0);
    /* Reopened, the state writes its log to a table file: the next snapshots hold one. */
    state_close(state);
    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    fill(state, 6, 10);
    CHECK_EQ(snap_store_create(store, state, 1, "b", 1, &b, snap_err, sizeof snap_err), 0);
    fill(state, 8, 10);
    CHECK_EQ(snap_store_create(store, state, 1, "c", 1, &c, snap_err, sizeof snap_err), 0);
    uint8_t *record;
    size_t length;

    /* A flipped byte in the meta. */
    char meta[512];
    snprintf(meta, sizeof meta, "%s/%s/meta", dir, a.name);
    int fd = open(meta, O_RDWR);
    uint8_t byte;
    CHECK(fd >= 0 && pread(fd, &byte, 1, 30) == 1);
    byte ^= 0x01;
    CHECK(pwrite(fd, &byte, 1, 30) == 1);
    close(fd);
    CHECK(snap_store_load(store, &a, &record, &length, snap_err, sizeof snap_err) != 0);
    printf("  refused: %s\n", snap_err);
    CHECK(strstr(snap_err, meta) != NULL && strstr(snap_err, "checksum mismatch") != NULL);

    /* A table file cut short. */
    char table[512];
    CHECK(file_in_db(store, &b, ".sst", table, sizeof table));
    struct stat info;
    CHECK(stat(table, &info) == 0);
    /* The file is a hard link shared with the live state: replace it rather than cut the shared one. */
    CHECK(unlink(table) == 0);
    fd = open(table, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0 && write(fd, "short", 5) == 5);
    close(fd);
    CHECK(snap_store_load(store, &b, &record, &length, snap_err, sizeof snap_err) != 0);
    printf("  refused: %s\n", snap_err);
    CHECK(strstr(snap_err, table) != NULL && strstr(snap_err, "the snapshot recorded") != NULL);

    /* A file gone. */
    CHECK(file_in_db(store, &c, "CURRENT", table, sizeof table));
    CHECK(unlink(table) == 0);
    CHECK(snap_store_load(store, &c, &record, &length, snap_err, sizeof snap_err) != 0);
    printf("  refused: %s\n", snap_err);
    CHECK(strstr(snap_err, table) != NULL && strstr(snap_err, "missing") != NULL);

    /* Marked broken, a snapshot leaves the list but stays on disk for inspection. */
    CHECK_EQ(snap_store_mark_broken(store, &c, snap_err, sizeof snap_err), 0);
    struct snap_info *list;
    size_t count;
    CHECK_EQ(snap_store_list(store, &list, &count, snap_err, sizeof snap_err), 0);
    CHECK(count == 2 && list[0].index == 6);
    free(list);
    char broken[512];
    snprintf(broken, sizeof broken, "%s/%s.broken/meta", dir, c.name);
    CHECK(access(broken, F_OK) == 0);
    /* The live state never noticed: its own links are untouched. */
    CHECK_EQ(put_batch(state, 9, "still", "fine"), STATE_OK);
    snap_store_close(store);
    state_close(state);
}

static void test_leftovers_receiving_pruning(void)
{
    char root[128];
    struct state *state = open_fresh(root, sizeof root);
    char dir[160];
    snprintf(dir, sizeof dir, "%s/snap", temp_dir());
    struct snap_store *store = open_store(dir);
    struct snap_info infos[4];
    for (int k = 0; k < 4; k++) {
        fill(state, (uint64_t)(10 + k), 20);
        CHECK_EQ(snap_store_create(store, state, 2, "r", 1, &infos[k], snap_err, sizeof snap_err), 0);
    }
    snap_store_close(store);
    /* What a crash in the middle of a snapshot leaves is gone at the next open. */
    char leftover[512];
    snprintf(leftover, sizeof leftover, "%s/0000000000000002-0000000000000020.tmp", dir);
    CHECK(mkdir(leftover, 0700) == 0);
    store = open_store(dir);
    CHECK(access(leftover, F_OK) != 0);

    /* Receiving: an older incoming transfer is dropped when another starts. */
    char db[512];
    CHECK_EQ(snap_store_incoming(store, 2, 11, db, sizeof db, snap_err, sizeof snap_err), 0);
    CHECK_EQ(snap_store_incoming(store, 5, 50, db, sizeof db, snap_err, sizeof snap_err), 0);
    snprintf(leftover, sizeof leftover, "%s/0000000000000002-000000000000000b.incoming", dir);
    CHECK(access(leftover, F_OK) != 0);
    fill(state, 50, 5);
    uint64_t applied;
    REQUIRE_OK(state_checkpoint(state, db, &applied, test_err, sizeof test_err));
    struct snap_info received;
    CHECK_EQ(snap_store_commit_incoming(store, 5, 50, "leader", 6, &received, snap_err, sizeof snap_err), 0);
    uint8_t *record;
    size_t length;
    CHECK_EQ(snap_store_load(store, &received, &record, &length, snap_err, sizeof snap_err), 0);
    CHECK(length == 6 && memcmp(record, "leader", 6) == 0);
    free(record);
    /* One of the same name already here stays (it may be the WAL marker's). */
    CHECK_EQ(snap_store_incoming(store, 2, 13, db, sizeof db, snap_err, sizeof snap_err), 0);
    REQUIRE_OK(state_checkpoint(state, db, &applied, test_err, sizeof test_err));
    CHECK_EQ(snap_store_commit_incoming(store, 2, 13, "other", 5, &received, snap_err, sizeof snap_err), 0);
    CHECK_EQ(snap_store_load(store, &infos[3], &record, &length, snap_err, sizeof snap_err), 0);
    CHECK(length == 1 && record[0] == 'r');
    free(record);

    /* Taking one locally at a term and index received before keeps the received one. */
    struct snap_info again;
    CHECK_EQ(snap_store_create(store, state, 5, "local", 5, &again, snap_err, sizeof snap_err), 0);
    CHECK(again.index == 50 && again.term == 5);
    CHECK_EQ(snap_store_load(store, &again, &record, &length, snap_err, sizeof snap_err), 0);
    CHECK(length == 6 && memcmp(record, "leader", 6) == 0);
    free(record);

    /* Pruning keeps the newest two. */
    CHECK_EQ(snap_store_prune(store, 2, snap_err, sizeof snap_err), 0);
    struct snap_info *list;
    size_t count;
    CHECK_EQ(snap_store_list(store, &list, &count, snap_err, sizeof snap_err), 0);
    CHECK(count == 2 && list[0].index == 50 && list[1].index == 13);
    free(list);
    CHECK_EQ(snap_store_prune(store, 0, snap_err, sizeof snap_err), 0);
    CHECK_EQ(snap_store_list(store, &list, &count, snap_err, sizeof snap_err), 0);
    CHECK_EQ(count, 2);
    free(list);
    snap_store_close(store);
    state_close(state);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_program = argv[0];
    RUN(test_create_load_install);
    RUN(test_damage_is_named);
    RUN(test_leftovers_receiving_pruning);
    return test_failures == 0 ? 0 : 1;
}
