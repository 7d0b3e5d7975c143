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

int state_kv_encode(const struct state_kv *kv, uint8_t **out, size_t *out_len)
{
    Mvccpb__KeyValue message;
    kv_to_message(kv, &message);
    size_t len = mvccpb__key_value__get_packed_size(&message);
    uint8_t *buffer = malloc(len + 1);
    if (buffer == NULL)
        return STATE_ERR_NOMEM;
    *out_len = mvccpb__key_value__pack(&message, buffer);
    *out = buffer;
    return STATE_OK;
}

int state_event_encode(enum state_event_type type, const struct state_kv *kv, uint8_t **out,
                       size_t *out_len)
{
    Mvccpb__KeyValue kv_message;
    kv_to_message(kv, &kv_message);
    Mvccpb__Event message;
    mvccpb__event__init(&message);
    message.type = type == STATE_EVENT_DELETE ? MVCCPB__EVENT__EVENT_TYPE__DELETE
                                              : MVCCPB__EVENT__EVENT_TYPE__PUT;
    message.kv = &kv_message;
    size_t len = mvccpb__event__get_packed_size(&message);
    uint8_t *buffer = malloc(len + 1);
    if (buffer == NULL)
        return STATE_ERR_NOMEM;
    *out_len = mvccpb__event__pack(&message, buffer);
    *out = buffer;
    return STATE_OK;
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
