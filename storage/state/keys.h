/* storage/state/keys.h: the RocksDB key layout. One column family, six prefixes:
 *   'c' + user key                         -> KeyValue  current version of each live key
 *   'h' + escaped user key + 00 01 + ~main + ~sub (big-endian u64s)
 *                                          -> Event     every version and delete (history)
 *   'r' + main + sub (big-endian u64s)     -> user key  the same records in revision order
 *   'l' + lease id (big-endian u64)        -> TTL       a lease and its granted TTL (big-endian u64)
 *   'l' + lease id + user key              -> empty     a key attached to that lease
 *   'm' + name                             -> meta      applied index, revisions, ids, membership
 *   'b' + bucket byte + name               -> record    other stores' records (bucket.c: auth)
 * Escaping (00 -> 00 FF, end -> 00 01) keeps history keys in user-key order for any bytes, and the
 * inverted revision puts a key's newest version first: "newest version <= R" is one seek. A lease
 * record sorts right before the keys attached to it (lease ids are positive), so one seek lists them;
 * the lease prefix is outside the MVCC prefixes, so hash and compaction never meet it. */
#ifndef STATE_KEYS_H
#define STATE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_PREFIX_CURRENT 'c'
#define STATE_PREFIX_HISTORY 'h'
#define STATE_PREFIX_REVISION 'r'
#define STATE_PREFIX_LEASE 'l'
#define STATE_PREFIX_META 'm'
#define STATE_PREFIX_BUCKET 'b'

#define STATE_REVISION_KEY_LEN 17
#define STATE_LEASE_KEY_LEN 9

void state_put_be64(uint8_t *out, uint64_t value);
uint64_t state_get_be64(const uint8_t *in);
void state_put_be32(uint8_t *out, uint32_t value);
uint32_t state_get_be32(const uint8_t *in);

/* Each returns a malloc'd key (NULL when out of memory) and its length. */
uint8_t *state_key_current(const uint8_t *user_key, size_t user_key_len, size_t *out_len);
uint8_t *state_key_history(const uint8_t *user_key, size_t user_key_len, int64_t main, int64_t sub,
                           size_t *out_len);
/* The first history key after every version of user_key. */
uint8_t *state_key_history_after(const uint8_t *user_key, size_t user_key_len, size_t *out_len);
/* The first history key of user_key (its newest version). */
uint8_t *state_key_history_first(const uint8_t *user_key, size_t user_key_len, size_t *out_len);

/* Splits a history key; *user_key is malloc'd. False when it is not a well-formed history key. */
bool state_key_history_parse(const uint8_t *key, size_t key_len, uint8_t **user_key,
                             size_t *user_key_len, int64_t *main, int64_t *sub);

void state_key_revision(int64_t main, int64_t sub, uint8_t out[STATE_REVISION_KEY_LEN]);
bool state_key_revision_parse(const uint8_t *key, size_t key_len, int64_t *main, int64_t *sub);

void state_key_lease(int64_t id, uint8_t out[STATE_LEASE_KEY_LEN]);
/* The attachment record of user_key to lease id; malloc'd, NULL when out of memory. */
uint8_t *state_key_lease_item(int64_t id, const uint8_t *user_key, size_t user_key_len,
                              size_t *out_len);

#endif
