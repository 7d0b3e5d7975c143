/* storage/state/keys.c: encodes and parses the RocksDB keys described in keys.h. */
#include "keys.h"

#include <stdlib.h>
#include <string.h>

void state_put_be64(uint8_t *out, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)value;
        value >>= 8;
    }
}

uint64_t state_get_be64(const uint8_t *in)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | in[i];
    return value;
}

void state_put_be32(uint8_t *out, uint32_t value)
{
    for (int i = 3; i >= 0; i--) {
        out[i] = (uint8_t)value;
        value >>= 8;
    }
}

uint32_t state_get_be32(const uint8_t *in)
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

uint8_t *state_key_current(const uint8_t *user_key, size_t user_key_len, size_t *out_len)
{
    uint8_t *key = malloc(user_key_len + 1);
    if (key == NULL)
        return NULL;
    key[0] = STATE_PREFIX_CURRENT;
    if (user_key_len > 0)
        memcpy(key + 1, user_key, user_key_len);
    *out_len = user_key_len + 1;
    return key;
}

/* Writes 'h' + escaped key + terminator into a buffer with `extra` spare bytes at the end. */
static uint8_t *history_prefix(const uint8_t *user_key, size_t user_key_len, uint8_t terminator,
                               size_t extra, size_t *used)
{
    size_t zeros = 0;
    for (size_t i = 0; i < user_key_len; i++)
        zeros += user_key[i] == 0;
    uint8_t *key = malloc(1 + user_key_len + zeros + 2 + extra);
    if (key == NULL)
        return NULL;
    size_t at = 0;
    key[at++] = STATE_PREFIX_HISTORY;
    for (size_t i = 0; i < user_key_len; i++) {
        key[at++] = user_key[i];
        if (user_key[i] == 0)
            key[at++] = 0xff;
    }
    key[at++] = 0x00;
    key[at++] = terminator;
    *used = at;
    return key;
}

uint8_t *state_key_history(const uint8_t *user_key, size_t user_key_len, int64_t main, int64_t sub,
                           size_t *out_len)
{
    size_t used;
    uint8_t *key = history_prefix(user_key, user_key_len, 0x01, 16, &used);
    if (key == NULL)
        return NULL;
    state_put_be64(key + used, ~(uint64_t)main);
    state_put_be64(key + used + 8, ~(uint64_t)sub);
    *out_len = used + 16;
    return key;
}

uint8_t *state_key_history_first(const uint8_t *user_key, size_t user_key_len, size_t *out_len)
{
    return history_prefix(user_key, user_key_len, 0x01, 0, out_len);
}

uint8_t *state_key_history_after(const uint8_t *user_key, size_t user_key_len, size_t *out_len)
{
    /* 00 02 sorts after every 00 01 + revision and before 00 FF (a longer key with a zero byte). */
    return history_prefix(user_key, user_key_len, 0x02, 0, out_len);
}

bool state_key_history_parse(const uint8_t *key, size_t key_len, uint8_t **user_key,
                             size_t *user_key_len, int64_t *main, int64_t *sub)
{
    if (key_len < 1 + 2 + 16 || key[0] != STATE_PREFIX_HISTORY)
        return false;
    size_t body_end = key_len - 16; /* terminator ends here */
    if (key[body_end - 2] != 0x00 || key[body_end - 1] != 0x01)
        return false;
    uint8_t *out = malloc(body_end + 1); /* +1: never malloc(0) */
    if (out == NULL)
        return false;
    size_t length = 0;
    for (size_t i = 1; i < body_end - 2; i++) {
        out[length++] = key[i];
        if (key[i] == 0) {
            if (i + 1 >= body_end - 2 || key[i + 1] != 0xff) {
                free(out);
                return false;
            }
            i++;
        }
    }
    *user_key = out;
    *user_key_len = length;
    *main = (int64_t)~state_get_be64(key + body_end);
    *sub = (int64_t)~state_get_be64(key + body_end + 8);
    return true;
}

void state_key_revision(int64_t main, int64_t sub, uint8_t out[STATE_REVISION_KEY_LEN])
{
    out[0] = STATE_PREFIX_REVISION;
    state_put_be64(out + 1, (uint64_t)main);
    state_put_be64(out + 9, (uint64_t)sub);
}

bool state_key_revision_parse(const uint8_t *key, size_t key_len, int64_t *main, int64_t *sub)
{
    if (key_len != STATE_REVISION_KEY_LEN || key[0] != STATE_PREFIX_REVISION)
        return false;
    *main = (int64_t)state_get_be64(key + 1);
    *sub = (int64_t)state_get_be64(key + 9);
    return true;
}

void state_key_lease(int64_t id, uint8_t out[STATE_LEASE_KEY_LEN])
{
    out[0] = STATE_PREFIX_LEASE;
    state_put_be64(out + 1, (uint64_t)id);
}

uint8_t *state_key_lease_item(int64_t id, const uint8_t *user_key, size_t user_key_len,
                              size_t *out_len)
{
    uint8_t *key = malloc(STATE_LEASE_KEY_LEN + user_key_len);
    if (key == NULL)
        return NULL;
    state_key_lease(id, key);
    if (user_key_len > 0)
        memcpy(key + STATE_LEASE_KEY_LEN, user_key, user_key_len);
    *out_len = STATE_LEASE_KEY_LEN + user_key_len;
    return key;
}
