/* control/etcd/membership.h: the cluster's members as etcd keeps them (etcdserver/api/membership): ID, name,
 * peer and client URLs, learner flag, and the IDs removed for good. Derived from the Raft log: conf-change
 * entries carry a member (their context, JSON as etcd writes it) and attribute entries carry the name and
 * client URLs a member publishes when it starts. Also etcd's reconfiguration rules, as pure functions. */
#ifndef QUORUMD_CONTROL_MEMBERSHIP_H
#define QUORUMD_CONTROL_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct member {
	uint64_t id;
	char *name;          /* "" until the member has started and published it */
	char **peer_urls;
	size_t peer_urls_count;
	char **client_urls;
	size_t client_urls_count;
	bool is_learner;
};

struct membership {
	uint64_t cluster_id;
	struct member *members; /* sorted by id */
	size_t count;
	uint64_t *removed;      /* removed for good: their frames are dropped, they may never return */
	size_t removed_count;
};

/* etcd's errors, with the texts its v3 API answers them with (v3rpc maps membership's "ID removed" to
 * "member not found" too). */
#define MEMBERSHIP_ERROR_LIST(X)                                                                        \
	X(MEMBERSHIP_OK, "ok")                                                                            \
	X(MEMBERSHIP_ERR_ID_NOT_FOUND, "etcdserver: member not found")                                    \
	X(MEMBERSHIP_ERR_ID_REMOVED, "etcdserver: member not found")                                      \
	X(MEMBERSHIP_ERR_ID_EXISTS, "etcdserver: member ID already exist")                                \
	X(MEMBERSHIP_ERR_PEER_URL_EXISTS, "etcdserver: Peer URLs already exists")                         \
	X(MEMBERSHIP_ERR_NOT_ENOUGH_STARTED, "etcdserver: re-configuration failed due to not enough started members") \
	X(MEMBERSHIP_ERR_UNHEALTHY, "etcdserver: unhealthy cluster")                                      \
	X(MEMBERSHIP_ERR_TOO_MANY_LEARNERS, "etcdserver: too many learner members in cluster")            \
	X(MEMBERSHIP_ERR_LEARNER_NOT_READY, "etcdserver: can only promote a learner member which is in sync with leader") \
	X(MEMBERSHIP_ERR_MEMBER_NOT_LEARNER, "etcdserver: can only promote a learner member")             \
	X(MEMBERSHIP_ERR_INVALID, "etcdserver: invalid member")

enum membership_error {
#define MEMBERSHIP_ERROR_ENUM(code, text) code,
	MEMBERSHIP_ERROR_LIST(MEMBERSHIP_ERROR_ENUM)
#undef MEMBERSHIP_ERROR_ENUM
};
const char *membership_strerror(int code);

void membership_init(struct membership *membership, uint64_t cluster_id);
void membership_free(struct membership *membership);
int membership_copy(struct membership *destination, const struct membership *source);

const struct member *membership_find(const struct membership *membership, uint64_t id);
bool membership_is_removed(const struct membership *membership, uint64_t id);
/* The member (other than except_id) that already has one of these peer URLs, or NULL. */
const struct member *membership_find_peer_url(const struct membership *membership, const char *const *urls,
                                              size_t count, uint64_t except_id);
size_t membership_voters(const struct membership *membership);

/* Changes; each returns MEMBERSHIP_OK or an error code. The member is copied. */
int membership_add(struct membership *membership, const struct member *member);
int membership_remove(struct membership *membership, uint64_t id);
int membership_update_peer_urls(struct membership *membership, uint64_t id, const char *const *urls, size_t count);
int membership_promote(struct membership *membership, uint64_t id);
int membership_set_attributes(struct membership *membership, uint64_t id, const char *name,
                              const char *const *client_urls, size_t count);

void member_free(struct member *member);
int member_copy(struct member *destination, const struct member *source);

/* A member as etcd writes it in a conf change's context: {"id":..,"peerURLs":[..],"name":..,
 * "clientURLs":[..],"isLearner":..} — the id as a decimal string (JSON numbers lose 64-bit precision).
 * The returned string is malloc'd. */
char *member_to_json(const struct member *member);
int member_from_json(const char *text, size_t length, struct member *member);

/* The whole membership as a blob for the state machine (the same JSON shape, plus removed IDs). */
char *membership_encode(const struct membership *membership);
int membership_decode(const char *text, size_t length, struct membership *membership);

/* etcd's strict reconfiguration checks (server.go mayAddMember / mayRemoveMember / mayPromoteMember
 * and membership/cluster.go IsReadyTo...). A member is "started" once it published its name; connected
 * says whether this node hears it now (the local member counts as connected). */
typedef bool (*member_connected_fn)(void *context, uint64_t id);
int membership_may_add(const struct membership *membership, bool is_learner, bool strict, uint64_t local_id,
                       member_connected_fn connected, void *context);
int membership_may_remove(const struct membership *membership, uint64_t id, bool strict, uint64_t local_id,
                          member_connected_fn connected, void *context);
int membership_may_promote(const struct membership *membership, uint64_t id, bool strict);

#endif
