/* control/etcd/member_id.h: member and cluster IDs computed exactly as etcd 3.4 computes them, so the same
 * `--initial-cluster` and token give the same IDs on every member (and the same as etcd would). */
#ifndef QUORUMD_CONTROL_MEMBER_ID_H
#define QUORUMD_CONTROL_MEMBER_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SHA-1 over the peer URLs sorted and concatenated, then the cluster token, then — for a member added
 * at run time — the decimal Unix time of the add; the first 8 bytes of the digest, big-endian. */
uint64_t member_id_compute(const char *const *peer_urls, size_t count, const char *cluster_token,
                           bool has_added_at, int64_t added_at_unix_seconds);

/* SHA-1 over the member IDs sorted, each as 8 bytes big-endian; the first 8 bytes, big-endian. */
uint64_t cluster_id_compute(const uint64_t *member_ids, size_t count);

#endif
