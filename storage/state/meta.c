/* storage/state/meta.c: the Raft bookkeeping stored next to the data (prefix 'm'): applied index,
 * store and compact revisions, cluster and member ids, membership blob. It is staged into every
 * batch, so it is always exactly as new as the data it describes (etcd bug #13766). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "keys.h"

#define META_APPLIED_INDEX "mapplied_index"
#define META_REVISION "mrevision"
#define META_COMPACT_REVISION "mcompact_revision"
#define META_CLUSTER_ID "mcluster_id"
#define META_MEMBER_ID "mmember_id"
#define META_MEMBERSHIP "mmembership"

static int load_u64(struct state *state, const char *name, uint64_t *out, char *err,
                    size_t errlen)
{
    char *value = NULL;
    size_t len = 0;
    int status = state_get(state, (const uint8_t *)name, strlen(name), &value, &len, err, errlen);
    if (status != STATE_OK)
        return status;
    *out = 0;
    if (value == NULL)
        return STATE_OK;
    if (len != 8) {
        rocksdb_free(value);
        return state_fail(err, errlen, STATE_ERR_CORRUPT, "meta %s has %zu bytes, want 8",
                          name + 1, len);
    }
    *out = state_get_be64((const uint8_t *)value);
    rocksdb_free(value);
    return STATE_OK;
}

int state_meta_load(struct state *state, char *err, size_t errlen)
{
    struct state_meta meta = {0};
    uint64_t revision = 0, compact_revision = 0;
    int status = load_u64(state, META_APPLIED_INDEX, &meta.applied_index, err, errlen);
    if (status == STATE_OK)
        status = load_u64(state, META_REVISION, &revision, err, errlen);
    if (status == STATE_OK)
        status = load_u64(state, META_COMPACT_REVISION, &compact_revision, err, errlen);
    if (status == STATE_OK)
        status = load_u64(state, META_CLUSTER_ID, &meta.cluster_id, err, errlen);
    if (status == STATE_OK)
        status = load_u64(state, META_MEMBER_ID, &meta.member_id, err, errlen);
    if (status != STATE_OK)
        return status;
    /* etcd's store starts at revision 1 (mvcc's currentRev), so a new cluster answers revision 1
     * and the first write gets revision 2, as etcdctl users see it. */
    meta.revision = revision == 0 ? 1 : (int64_t)revision;
    meta.compact_revision = (int64_t)compact_revision;
    if (meta.revision < 0 || meta.compact_revision < 0 || meta.compact_revision > meta.revision)
        return state_fail(err, errlen, STATE_ERR_CORRUPT,
                          "meta revision %lld, compact revision %lld", (long long)meta.revision,
                          (long long)meta.compact_revision);

    char *blob = NULL;
    size_t blob_len = 0;
    status = state_get(state, (const uint8_t *)META_MEMBERSHIP, strlen(META_MEMBERSHIP), &blob,
                       &blob_len, err, errlen);
    if (status != STATE_OK)
        return status;
    if (blob != NULL && blob_len > 0) {
        meta.membership = malloc(blob_len);
        if (meta.membership == NULL) {
            rocksdb_free(blob);
            return state_fail(err, errlen, STATE_ERR_NOMEM, "membership of %zu bytes", blob_len);
        }
        memcpy(meta.membership, blob, blob_len);
        meta.membership_len = blob_len;
    }
    rocksdb_free(blob);

    state_meta_clear(&state->committed);
    state_meta_clear(&state->working);
    state->committed = meta;
    if (state_meta_copy(&state->working, &state->committed) != STATE_OK)
        return state_fail(err, errlen, STATE_ERR_NOMEM, "membership copy");
    return STATE_OK;
}

static void stage_u64(struct state *state, const char *name, uint64_t value)
{
    uint8_t bytes[8];
    state_put_be64(bytes, value);
    state_batch_put(state, (const uint8_t *)name, strlen(name), bytes, sizeof bytes);
}

void state_meta_stage(struct state *state)
{
    const struct state_meta *meta = &state->working;
    stage_u64(state, META_APPLIED_INDEX, meta->applied_index);
    stage_u64(state, META_REVISION, (uint64_t)meta->revision);
    stage_u64(state, META_COMPACT_REVISION, (uint64_t)meta->compact_revision);
    stage_u64(state, META_CLUSTER_ID, meta->cluster_id);
    stage_u64(state, META_MEMBER_ID, meta->member_id);
    state_batch_put(state, (const uint8_t *)META_MEMBERSHIP, strlen(META_MEMBERSHIP),
                    meta->membership != NULL ? meta->membership : (const uint8_t *)"",
                    meta->membership_len);
}

int state_meta_copy(struct state_meta *to, const struct state_meta *from)
{
    uint8_t *membership = NULL;
    if (from->membership_len > 0) {
        membership = malloc(from->membership_len);
        if (membership == NULL)
            return STATE_ERR_NOMEM;
        memcpy(membership, from->membership, from->membership_len);
    }
    free(to->membership);
    *to = *from;
    to->membership = membership;
    return STATE_OK;
}

void state_meta_clear(struct state_meta *meta)
{
    free(meta->membership);
    memset(meta, 0, sizeof *meta);
}

int state_meta_put_member_id(rocksdb_t *db, const rocksdb_writeoptions_t *options,
                             uint64_t member_id, char *err, size_t errlen)
{
    uint8_t bytes[8];
    state_put_be64(bytes, member_id);
    char *error = NULL;
    rocksdb_put(db, options, META_MEMBER_ID, strlen(META_MEMBER_ID), (const char *)bytes,
                sizeof bytes, &error);
    if (error != NULL)
        return state_fail_rocksdb(err, errlen, error, "put member id");
    return STATE_OK;
}
