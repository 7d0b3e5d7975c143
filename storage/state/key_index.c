/* storage/state/key_index.c: what the state knows in memory about each user key's current version
 * (create and mod revision, version, lease), so that a put finds the previous version without a
 * RocksDB read (etcd keeps the same facts in its in-memory key index). The 'c' records stay the truth:
 * an entry the index does not have, or cannot vouch for, means "read RocksDB", never "absent".
 *
 * Each entry holds the committed facts and, separately, what the open batch made of the key; commit
 * promotes the batch's view, abort drops it (a generation number makes every pending view stale at
 * once). The index is a cache with a cap: it is emptied when a batch begins with more entries than
 * that, and whenever the RocksDB underneath is closed or replaced (restore). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Entries kept before the index starts over: ~150 bytes each with the key and the slot, so at most
 * ~80 MB; a store with more live keys than this still works, it reads RocksDB more often. */
enum { KEY_INDEX_MAX_ENTRIES = 1 << 19 };

struct state_key_index_entry {
    uint64_t hash;
    enum state_key_known committed;
    struct state_key_meta committed_meta;
    uint64_t pending_generation; /* == index->generation: pending is the open batch's view */
    enum state_key_known pending;
    struct state_key_meta pending_meta;
    size_t key_len;
    uint8_t key[];
};

/* FNV-1a: keys are short, and this runs once per put. */
static uint64_t hash_key(const uint8_t *key, size_t key_len)
{
    uint64_t hash = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < key_len; i++) {
        hash ^= key[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

void state_key_index_clear(struct state_key_index *index)
{
    for (size_t i = 0; i < index->capacity; i++)
        free(index->slots[i]);
    free(index->slots);
    free(index->touched);
    uint64_t generation = index->generation;
    memset(index, 0, sizeof *index);
    /* Keeps counting: a pending view from before the clear can never look current again. */
    index->generation = generation + 1;
}

static struct state_key_index_entry *find_entry(const struct state_key_index *index,
                                                const uint8_t *key, size_t key_len, uint64_t hash)
{
    if (index->capacity == 0)
        return NULL;
    size_t mask = index->capacity - 1;
    for (size_t slot = hash & mask;; slot = (slot + 1) & mask) {
        struct state_key_index_entry *entry = index->slots[slot];
        if (entry == NULL)
            return NULL;
        if (entry->hash == hash && entry->key_len == key_len &&
            memcmp(entry->key, key, key_len) == 0)
            return entry;
    }
}

static void place(struct state_key_index_entry **slots, size_t capacity,
                  struct state_key_index_entry *entry)
{
    size_t mask = capacity - 1;
    size_t slot = entry->hash & mask;
    while (slots[slot] != NULL)
        slot = (slot + 1) & mask;
    slots[slot] = entry;
}

/* Finds or adds the entry of a key; NULL when memory runs out (the caller then knows nothing). */
static struct state_key_index_entry *entry_for(struct state_key_index *index, const uint8_t *key,
                                               size_t key_len)
{
    uint64_t hash = hash_key(key, key_len);
    struct state_key_index_entry *entry = find_entry(index, key, key_len, hash);
    if (entry != NULL)
        return entry;
    /* Half full at most, so probes stay short. */
    if ((index->count + 1) * 2 > index->capacity) {
        size_t capacity = index->capacity ? index->capacity * 2 : 1024;
        struct state_key_index_entry **slots = calloc(capacity, sizeof *slots);
        if (slots == NULL)
            return NULL;
        for (size_t i = 0; i < index->capacity; i++)
            if (index->slots[i] != NULL)
                place(slots, capacity, index->slots[i]);
        free(index->slots);
        index->slots = slots;
        index->capacity = capacity;
    }
    entry = malloc(sizeof *entry + key_len);
    if (entry == NULL)
        return NULL;
    memset(entry, 0, sizeof *entry);
    entry->hash = hash;
    entry->committed = STATE_KEY_UNKNOWN;
    entry->pending = STATE_KEY_UNKNOWN;
    entry->key_len = key_len;
    memcpy(entry->key, key, key_len);
    place(index->slots, index->capacity, entry);
    index->count++;
    return entry;
}

void state_key_index_batch_begin(struct state_key_index *index)
{
    if (index->count > KEY_INDEX_MAX_ENTRIES)
        state_key_index_clear(index);
    index->generation++;
    index->touched_count = 0;
    index->batch_unreliable = false;
}

void state_key_index_batch_commit(struct state_key_index *index)
{
    for (size_t i = 0; i < index->touched_count; i++) {
        struct state_key_index_entry *entry = index->touched[i];
        if (entry->pending_generation != index->generation)
            continue;
        entry->committed = entry->pending;
        entry->committed_meta = entry->pending_meta;
        entry->pending_generation = 0;
    }
    index->touched_count = 0;
    index->generation++;
}

void state_key_index_batch_abort(struct state_key_index *index)
{
    index->touched_count = 0;
    index->generation++; /* every pending view is stale now */
}

enum state_key_known state_key_index_find(const struct state_key_index *index, const uint8_t *key,
                                          size_t key_len, struct state_key_meta *meta)
{
    struct state_key_index_entry *entry = find_entry(index, key, key_len, hash_key(key, key_len));
    if (entry == NULL)
        return STATE_KEY_UNKNOWN;
    if (entry->pending_generation == index->generation) {
        *meta = entry->pending_meta;
        return entry->pending;
    }
    *meta = entry->committed_meta;
    return entry->committed;
}

void state_key_index_learn(struct state_key_index *index, const uint8_t *key, size_t key_len,
                           bool found, const struct state_key_meta *meta)
{
    /* A read in a batch whose writes the index may have missed could be the batch's own write. */
    if (index->batch_unreliable)
        return;
    struct state_key_index_entry *entry = entry_for(index, key, key_len);
    if (entry == NULL || entry->pending_generation == index->generation)
        return;
    entry->committed = found ? STATE_KEY_PRESENT : STATE_KEY_ABSENT;
    entry->committed_meta = found ? *meta : (struct state_key_meta){0};
}

void state_key_index_note(struct state_key_index *index, const uint8_t *key, size_t key_len,
                          bool present, const struct state_key_meta *meta)
{
    struct state_key_index_entry *entry = entry_for(index, key, key_len);
    if (entry == NULL) {
        /* No entry: lookups of this key read RocksDB through the batch, which is right; but a
         * read must not teach the index the batch's write as committed. */
        index->batch_unreliable = true;
        return;
    }
    if (entry->pending_generation != index->generation) {
        if (index->touched_count == index->touched_capacity) {
            size_t capacity = index->touched_capacity ? index->touched_capacity * 2 : 256;
            struct state_key_index_entry **touched =
                realloc(index->touched, capacity * sizeof *touched);
            if (touched == NULL) {
                /* Commit could not promote this view: forget the committed facts instead. */
                entry->committed = STATE_KEY_UNKNOWN;
            } else {
                index->touched = touched;
                index->touched_capacity = capacity;
            }
        }
        if (index->touched_count < index->touched_capacity)
            index->touched[index->touched_count++] = entry;
        entry->pending_generation = index->generation;
    }
    entry->pending = present ? STATE_KEY_PRESENT : STATE_KEY_ABSENT;
    entry->pending_meta = present ? *meta : (struct state_key_meta){0};
}
