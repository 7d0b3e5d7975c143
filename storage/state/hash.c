/* storage/state/hash.c: state_hash, our HashKV. It folds every committed history record (key bytes
 * with the revision, then the stored event) up to a revision into one CRC-32C, in key order. Two
 * members that applied the same entries, compactions included, hold the same records and get the
 * same hash; any divergence in a key, revision, version or value changes it. */
#include "crc32c.h" /* common/ */
#include "internal.h"
#include "keys.h"

int state_hash(struct state *state, int64_t revision, uint32_t *hash, int64_t *hashed_revision,
               char *err, size_t errlen)
{
    if (state->db == NULL)
        return state_fail(err, errlen, STATE_ERR_INVALID, "the state is closed");
    const struct state_meta *meta = &state->committed;
    if (revision <= 0)
        revision = meta->revision;
    if (revision > meta->revision)
        return state_fail(err, errlen, STATE_ERR_FUTURE_REV, "hash at %lld, current %lld",
                          (long long)revision, (long long)meta->revision);
    if (revision < meta->compact_revision)
        return state_fail(err, errlen, STATE_ERR_COMPACTED, "hash at %lld, compacted at %lld",
                          (long long)revision, (long long)meta->compact_revision);
    uint8_t start = STATE_PREFIX_HISTORY;
    uint32_t crc = 0;
    rocksdb_iterator_t *iterator = rocksdb_create_iterator(state->db, state->read_options);
    for (rocksdb_iter_seek(iterator, (const char *)&start, 1); rocksdb_iter_valid(iterator);
         rocksdb_iter_next(iterator)) {
        size_t key_len;
        const uint8_t *key = (const uint8_t *)rocksdb_iter_key(iterator, &key_len);
        if (key_len < 1 + 2 + 16 || key[0] != STATE_PREFIX_HISTORY)
            break;
        int64_t main = (int64_t)~state_get_be64(key + key_len - 16);
        if (main > revision)
            continue;
        size_t value_len;
        const uint8_t *value = (const uint8_t *)rocksdb_iter_value(iterator, &value_len);
        uint8_t lengths[8];
        state_put_be32(lengths, (uint32_t)key_len);
        state_put_be32(lengths + 4, (uint32_t)value_len);
        crc = crc32c(crc, lengths, sizeof lengths);
        crc = crc32c(crc, key, key_len);
        crc = crc32c(crc, value, value_len);
    }
    char *error = NULL;
    rocksdb_iter_get_error(iterator, &error);
    rocksdb_iter_destroy(iterator);
    if (error != NULL)
        return state_fail_rocksdb(err, errlen, error, "iterate");
    /* The compact revision is part of the MVCC state too (it decides which reads fail). */
    uint8_t compact[8];
    state_put_be64(compact, (uint64_t)meta->compact_revision);
    crc = crc32c(crc, compact, sizeof compact);
    *hash = crc;
    *hashed_revision = revision;
    return STATE_OK;
}
