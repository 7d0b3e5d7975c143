/* storage/state/kv_codec.c: stored values as protobuf-c mvccpb messages (kv.proto), converted to and
 * from the plain struct state_kv the API uses. protobuf-c packs fields in field-number order, so equal
 * kvs encode to equal bytes on every member, which state_hash relies on. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kv.pb-c.h"

static void kv_to_message(const struct state_kv *kv, Mvccpb__KeyValue *message)
{
    mvccpb__key_value__init(message);
    message->key.data = kv->key;
    message->key.len = kv->key_len;
    message->create_revision = kv->create_revision;
    message->mod_revision = kv->mod_revision;
    message->version = kv->version;
    message->value.data = kv->value;
    message->value.len = kv->value_len;
    message->lease = kv->lease;
}

size_t state_kv_packed_size(const struct state_kv *kv)
{
    Mvccpb__KeyValue message;
    kv_to_message(kv, &message);
    return mvccpb__key_value__get_packed_size(&message);
}

size_t state_kv_pack(const struct state_kv *kv, uint8_t *out)
{
    Mvccpb__KeyValue message;
    kv_to_message(kv, &message);
    return mvccpb__key_value__pack(&message, out);
}

/* mvccpb.Event is {type = 1 (enum), kv = 2 (KeyValue), prev_kv = 3}, and protobuf-c packs fields in
 * field-number order, leaving out proto3 defaults: a PUT (0) is the kv field alone, a DELETE has the
 * type first. So an event's bytes are these few followed by the kv's packed bytes, byte for byte what
 * mvccpb__event__pack writes (tests/state/test_codec.c holds the two together), and a put's history
 * record can reuse the bytes of its current record instead of packing the value a second time. */
size_t state_event_prefix(enum state_event_type type, size_t kv_packed_len,
                          uint8_t out[STATE_EVENT_PREFIX_MAX])
{
    size_t at = 0;
    if (type == STATE_EVENT_DELETE) {
        out[at++] = 1u << 3 | 0; /* field 1, varint */
        out[at++] = MVCCPB__EVENT__EVENT_TYPE__DELETE;
    }
    out[at++] = 2u << 3 | 2; /* field 2, length-delimited */
    uint64_t length = kv_packed_len;
    do {
        out[at++] = (uint8_t)(length & 0x7f) | (length > 0x7f ? 0x80 : 0);
        length >>= 7;
    } while (length != 0);
    return at;
}

static uint8_t *copy_bytes(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len + 1); /* +1: a non-NULL pointer even for empty bytes */
    if (copy != NULL && len > 0)
        memcpy(copy, data, len);
    return copy;
}

static int kv_from_message(const Mvccpb__KeyValue *message, bool keys_only, struct state_kv *kv)
{
    memset(kv, 0, sizeof *kv);
    kv->key = copy_bytes(message->key.data, message->key.len);
    if (kv->key == NULL)
        return STATE_ERR_NOMEM;
    kv->key_len = message->key.len;
    if (!keys_only) {
        kv->value = copy_bytes(message->value.data, message->value.len);
        if (kv->value == NULL) {
            state_kv_free_fields(kv);
            return STATE_ERR_NOMEM;
        }
        kv->value_len = message->value.len;
    }
    kv->create_revision = message->create_revision;
    kv->mod_revision = message->mod_revision;
    kv->version = message->version;
    kv->lease = message->lease;
    return STATE_OK;
}

int state_kv_decode(const uint8_t *data, size_t len, bool keys_only, struct state_kv *kv)
{
    Mvccpb__KeyValue *message = mvccpb__key_value__unpack(NULL, len, data);
    if (message == NULL)
        return STATE_ERR_CORRUPT;
    int status = kv_from_message(message, keys_only, kv);
    mvccpb__key_value__free_unpacked(message, NULL);
    return status;
}

int state_event_decode(const uint8_t *data, size_t len, bool keys_only,
                       enum state_event_type *type, struct state_kv *kv)
{
    Mvccpb__Event *message = mvccpb__event__unpack(NULL, len, data);
    if (message == NULL)
        return STATE_ERR_CORRUPT;
    int status = STATE_ERR_CORRUPT;
    if (message->kv != NULL) {
        *type = message->type == MVCCPB__EVENT__EVENT_TYPE__DELETE ? STATE_EVENT_DELETE
                                                                   : STATE_EVENT_PUT;
        status = kv_from_message(message->kv, keys_only, kv);
    }
    mvccpb__event__free_unpacked(message, NULL);
    return status;
}

int state_kv_copy(struct state_kv *to, const struct state_kv *from)
{
    *to = *from;
    to->key = copy_bytes(from->key, from->key_len);
    to->value = from->value != NULL ? copy_bytes(from->value, from->value_len) : NULL;
    if (to->key == NULL || (from->value != NULL && to->value == NULL)) {
        state_kv_free_fields(to);
        return STATE_ERR_NOMEM;
    }
    return STATE_OK;
}

void state_kv_free_fields(struct state_kv *kv)
{
    if (kv == NULL)
        return;
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

int state_kv_list_push(struct state_kv_list *list, struct state_kv *kv)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 16;
        struct state_kv *items = realloc(list->items, capacity * sizeof *items);
        if (items == NULL)
            return STATE_ERR_NOMEM;
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] = *kv;
    memset(kv, 0, sizeof *kv);
    return STATE_OK;
}

void state_kv_list_free(struct state_kv_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        state_kv_free_fields(&list->items[i]);
    free(list->items);
    memset(list, 0, sizeof *list);
}
