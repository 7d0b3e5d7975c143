/* control/etcd/membership.c: the member list, its JSON forms and etcd's reconfiguration rules. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "membership.h"

/* etcd 3.4 allows one learner at a time (membership.maxLearners). */
enum { MAX_LEARNERS = 1 };

static const char *const error_texts[] = {
#define MEMBERSHIP_ERROR_TEXT(code, text) [code] = text,
	MEMBERSHIP_ERROR_LIST(MEMBERSHIP_ERROR_TEXT)
#undef MEMBERSHIP_ERROR_TEXT
};

const char *membership_strerror(int code)
{
	if (code < 0 || (size_t)code >= sizeof(error_texts) / sizeof(error_texts[0]))
		return "unknown membership error";
	return error_texts[code];
}

static char *duplicate(const char *text)
{
	char *copy = xstrdup(text ? text : "");
	return copy;
}

static char **duplicate_list(const char *const *items, size_t count)
{
	char **copy = xcalloc(count ? count : 1, sizeof(char *));
	for (size_t k = 0; k < count; k++)
		copy[k] = duplicate(items[k]);
	return copy;
}

static void free_list(char **items, size_t count)
{
	for (size_t k = 0; k < count; k++)
		free(items[k]);
	free(items);
}

void member_free(struct member *member)
{
	free(member->name);
	free_list(member->peer_urls, member->peer_urls_count);
	free_list(member->client_urls, member->client_urls_count);
	memset(member, 0, sizeof(*member));
}

int member_copy(struct member *destination, const struct member *source)
{
	destination->id = source->id;
	destination->name = duplicate(source->name);
	destination->peer_urls = duplicate_list((const char *const *)source->peer_urls, source->peer_urls_count);
	destination->peer_urls_count = source->peer_urls_count;
	destination->client_urls = duplicate_list((const char *const *)source->client_urls, source->client_urls_count);
	destination->client_urls_count = source->client_urls_count;
	destination->is_learner = source->is_learner;
	return MEMBERSHIP_OK;
}

void membership_init(struct membership *membership, uint64_t cluster_id)
{
	memset(membership, 0, sizeof(*membership));
	membership->cluster_id = cluster_id;
}

void membership_free(struct membership *membership)
{
	for (size_t k = 0; k < membership->count; k++)
		member_free(&membership->members[k]);
	free(membership->members);
	free(membership->removed);
	memset(membership, 0, sizeof(*membership));
}

int membership_copy(struct membership *destination, const struct membership *source)
{
	membership_init(destination, source->cluster_id);
	destination->members = xcalloc(source->count ? source->count : 1, sizeof(struct member));
	destination->removed = xcalloc(source->removed_count ? source->removed_count : 1, sizeof(uint64_t));
	for (size_t k = 0; k < source->count; k++)
		member_copy(&destination->members[k], &source->members[k]);
	destination->count = source->count;
	if (source->removed_count)
		memcpy(destination->removed, source->removed, source->removed_count * sizeof(uint64_t));
	destination->removed_count = source->removed_count;
	return MEMBERSHIP_OK;
}

static struct member *find_mutable(struct membership *membership, uint64_t id)
{
	for (size_t k = 0; k < membership->count; k++)
		if (membership->members[k].id == id)
			return &membership->members[k];
	return NULL;
}

const struct member *membership_find(const struct membership *membership, uint64_t id)
{
	return find_mutable((struct membership *)membership, id);
}

bool membership_is_removed(const struct membership *membership, uint64_t id)
{
	for (size_t k = 0; k < membership->removed_count; k++)
		if (membership->removed[k] == id)
			return true;
	return false;
}

const struct member *membership_find_peer_url(const struct membership *membership, const char *const *urls,
                                              size_t count, uint64_t except_id)
{
	for (size_t m = 0; m < membership->count; m++) {
		const struct member *member = &membership->members[m];
		if (member->id == except_id)
			continue;
		for (size_t u = 0; u < member->peer_urls_count; u++)
			for (size_t k = 0; k < count; k++)
				if (strcmp(member->peer_urls[u], urls[k]) == 0)
					return member;
	}
	return NULL;
}

size_t membership_voters(const struct membership *membership)
{
	size_t voters = 0;
	for (size_t k = 0; k < membership->count; k++)
		voters += !membership->members[k].is_learner;
	return voters;
}

int membership_add(struct membership *membership, const struct member *member)
{
	if (member->id == 0)
		return MEMBERSHIP_ERR_INVALID;
	if (membership_is_removed(membership, member->id))
		return MEMBERSHIP_ERR_ID_REMOVED;
	if (membership_find(membership, member->id))
		return MEMBERSHIP_ERR_ID_EXISTS;
	size_t position = 0;
	while (position < membership->count && membership->members[position].id < member->id)
		position++;
	struct member *members = xrealloc(membership->members, (membership->count + 1) * sizeof(struct member));
	membership->members = members;
	memmove(members + position + 1, members + position, (membership->count - position) * sizeof(struct member));
	member_copy(&members[position], member);
	membership->count++;
	return MEMBERSHIP_OK;
}

int membership_remove(struct membership *membership, uint64_t id)
{
	struct member *member = find_mutable(membership, id);
	if (!member)
		return membership_is_removed(membership, id) ? MEMBERSHIP_ERR_ID_REMOVED : MEMBERSHIP_ERR_ID_NOT_FOUND;
	size_t position = (size_t)(member - membership->members);
	member_free(member);
	memmove(membership->members + position, membership->members + position + 1,
	        (membership->count - position - 1) * sizeof(struct member));
	membership->count--;
	uint64_t *removed = xrealloc(membership->removed, (membership->removed_count + 1) * sizeof(uint64_t));
	membership->removed = removed;
	removed[membership->removed_count++] = id;
	return MEMBERSHIP_OK;
}

int membership_update_peer_urls(struct membership *membership, uint64_t id, const char *const *urls, size_t count)
{
	struct member *member = find_mutable(membership, id);
	if (!member)
		return membership_is_removed(membership, id) ? MEMBERSHIP_ERR_ID_REMOVED : MEMBERSHIP_ERR_ID_NOT_FOUND;
	free_list(member->peer_urls, member->peer_urls_count);
	member->peer_urls = duplicate_list(urls, count);
	member->peer_urls_count = count;
	return MEMBERSHIP_OK;
}

int membership_promote(struct membership *membership, uint64_t id)
{
	struct member *member = find_mutable(membership, id);
	if (!member)
		return membership_is_removed(membership, id) ? MEMBERSHIP_ERR_ID_REMOVED : MEMBERSHIP_ERR_ID_NOT_FOUND;
	if (!member->is_learner)
		return MEMBERSHIP_ERR_MEMBER_NOT_LEARNER;
	member->is_learner = false;
	return MEMBERSHIP_OK;
}

int membership_set_attributes(struct membership *membership, uint64_t id, const char *name,
                              const char *const *client_urls, size_t count)
{
	struct member *member = find_mutable(membership, id);
	if (!member)
		return membership_is_removed(membership, id) ? MEMBERSHIP_ERR_ID_REMOVED : MEMBERSHIP_ERR_ID_NOT_FOUND;
	free(member->name);
	member->name = duplicate(name);
	free_list(member->client_urls, member->client_urls_count);
	member->client_urls = duplicate_list(client_urls, count);
	member->client_urls_count = count;
	return MEMBERSHIP_OK;
}

/* ---- JSON ---- */

static json_t *string_array(char *const *items, size_t count)
{
	json_t *array = json_array();
	for (size_t k = 0; k < count; k++)
		json_array_append_new(array, json_string(items[k]));
	return array;
}

static json_t *member_json(const struct member *member)
{
	char id[24];
	snprintf(id, sizeof(id), "%" PRIu64, member->id);
	return json_pack("{s:s, s:o, s:s, s:o, s:b}", "id", id, "peerURLs",
	                 string_array(member->peer_urls, member->peer_urls_count), "name", member->name ? member->name : "",
	                 "clientURLs", string_array(member->client_urls, member->client_urls_count), "isLearner",
	                 member->is_learner);
}

static char *dump(json_t *value)
{
	char *text = json_dumps(value, JSON_COMPACT);
	json_decref(value);
	if (!text)
		alloc_failed(0); /* jansson fails only for memory here */
	return text;
}

char *member_to_json(const struct member *member)
{
	return dump(member_json(member));
}

static int parse_id(const char *text, uint64_t *id)
{
	char *end = NULL;
	unsigned long long value = strtoull(text, &end, 10);
	if (!*text || *end)
		return -1;
	*id = value;
	return 0;
}

static int read_string_array(json_t *array, char ***items_out, size_t *count_out)
{
	if (!json_is_array(array))
		return -1;
	size_t count = json_array_size(array);
	char **items = xcalloc(count ? count : 1, sizeof(char *));
	for (size_t k = 0; k < count; k++) {
		const char *text = json_string_value(json_array_get(array, k));
		if (!text) {
			free_list(items, k);
			return -1;
		}
		items[k] = duplicate(text);
	}
	*items_out = items;
	*count_out = count;
	return 0;
}

static int member_from_value(json_t *value, struct member *member)
{
	memset(member, 0, sizeof(*member));
	const char *id = NULL, *name = NULL;
	json_t *peer_urls = NULL, *client_urls = NULL;
	int is_learner = 0;
	if (json_unpack(value, "{s:s, s:o, s?s, s?o, s?b}", "id", &id, "peerURLs", &peer_urls, "name", &name,
	                "clientURLs", &client_urls, "isLearner", &is_learner) != 0)
		return MEMBERSHIP_ERR_INVALID;
	if (parse_id(id, &member->id) != 0 || read_string_array(peer_urls, &member->peer_urls, &member->peer_urls_count))
		return MEMBERSHIP_ERR_INVALID;
	if (client_urls && read_string_array(client_urls, &member->client_urls, &member->client_urls_count)) {
		member_free(member);
		return MEMBERSHIP_ERR_INVALID;
	}
	if (!member->client_urls)
		member->client_urls = duplicate_list(NULL, 0);
	member->name = duplicate(name);
	member->is_learner = is_learner;
	return MEMBERSHIP_OK;
}

int member_from_json(const char *text, size_t length, struct member *member)
{
	json_error_t error;
	json_t *value = json_loadb(text, length, 0, &error);
	if (!value)
		return MEMBERSHIP_ERR_INVALID;
	int rc = member_from_value(value, member);
	json_decref(value);
	return rc;
}

char *membership_encode(const struct membership *membership)
{
	json_t *members = json_array();
	for (size_t k = 0; k < membership->count; k++)
		json_array_append_new(members, member_json(&membership->members[k]));
	json_t *removed = json_array();
	for (size_t k = 0; k < membership->removed_count; k++) {
		char id[24];
		snprintf(id, sizeof(id), "%" PRIu64, membership->removed[k]);
		json_array_append_new(removed, json_string(id));
	}
	char cluster_id[24];
	snprintf(cluster_id, sizeof(cluster_id), "%" PRIu64, membership->cluster_id);
	return dump(json_pack("{s:s, s:o, s:o}", "clusterID", cluster_id, "members", members, "removed", removed));
}

int membership_decode(const char *text, size_t length, struct membership *membership)
{
	membership_init(membership, 0);
	json_error_t error;
	json_t *value = json_loadb(text, length, 0, &error);
	if (!value)
		return MEMBERSHIP_ERR_INVALID;
	const char *cluster_id = NULL;
	json_t *members = NULL, *removed = NULL;
	int rc = MEMBERSHIP_ERR_INVALID;
	if (json_unpack(value, "{s:s, s:o, s:o}", "clusterID", &cluster_id, "members", &members, "removed", &removed) ||
	    parse_id(cluster_id, &membership->cluster_id) || !json_is_array(members) || !json_is_array(removed))
		goto done;
	for (size_t k = 0; k < json_array_size(members); k++) {
		struct member member;
		if (member_from_value(json_array_get(members, k), &member) != MEMBERSHIP_OK)
			goto done;
		int added = membership_add(membership, &member);
		member_free(&member);
		if (added != MEMBERSHIP_OK)
			goto done;
	}
	for (size_t k = 0; k < json_array_size(removed); k++) {
		const char *id_text = json_string_value(json_array_get(removed, k));
		uint64_t id;
		if (!id_text || parse_id(id_text, &id))
			goto done;
		uint64_t *grown = xrealloc(membership->removed, (membership->removed_count + 1) * sizeof(uint64_t));
		membership->removed = grown;
		membership->removed[membership->removed_count++] = id;
	}
	rc = MEMBERSHIP_OK;
done:
	json_decref(value);
	if (rc != MEMBERSHIP_OK)
		membership_free(membership);
	return rc;
}

/* ---- etcd's reconfiguration rules ---- */

static bool is_started(const struct member *member)
{
	return member->name && member->name[0] != '\0';
}

int membership_may_add(const struct membership *membership, bool is_learner, bool strict, uint64_t local_id,
                       member_connected_fn connected, void *context)
{
	if (is_learner) {
		size_t learners = membership->count - membership_voters(membership);
		if (learners + 1 > MAX_LEARNERS)
			return MEMBERSHIP_ERR_TOO_MANY_LEARNERS;
	}
	if (!strict)
		return MEMBERSHIP_OK;
	if (!is_learner) {
		/* IsReadyToAddVotingMember: the started voters must be a quorum of the grown cluster. */
		size_t members = 1, started = 0;
		for (size_t k = 0; k < membership->count; k++) {
			const struct member *member = &membership->members[k];
			if (member->is_learner)
				continue;
			members++;
			started += is_started(member);
		}
		/* Adding a second member to a one-member cluster restores a cluster after --force-new-cluster. */
		bool restoring = started == 1 && members == 2;
		if (!restoring && started < members / 2 + 1)
			return MEMBERSHIP_ERR_NOT_ENOUGH_STARTED;
	}
	/* isConnectedFullySince: every voter must be reachable before the cluster grows. */
	for (size_t k = 0; k < membership->count; k++) {
		const struct member *member = &membership->members[k];
		if (!member->is_learner && member->id != local_id && !connected(context, member->id))
			return MEMBERSHIP_ERR_UNHEALTHY;
	}
	return MEMBERSHIP_OK;
}

int membership_may_remove(const struct membership *membership, uint64_t id, bool strict, uint64_t local_id,
                          member_connected_fn connected, void *context)
{
	const struct member *target = membership_find(membership, id);
	if (!target)
		return membership_is_removed(membership, id) ? MEMBERSHIP_ERR_ID_REMOVED : MEMBERSHIP_ERR_ID_NOT_FOUND;
	if (!strict || target->is_learner)
		return MEMBERSHIP_OK;
	/* IsReadyToRemoveVotingMember: the started voters left must be a quorum of what is left. */
	size_t members = 0, started = 0;
	for (size_t k = 0; k < membership->count; k++) {
		const struct member *member = &membership->members[k];
		if (member->is_learner || member->id == id)
			continue;
		members++;
		started += is_started(member);
	}
	if (started < members / 2 + 1)
		return MEMBERSHIP_ERR_NOT_ENOUGH_STARTED;
	/* A member that is down is not part of the active quorum: removing it is safe. */
	if (id != local_id && !connected(context, id))
		return MEMBERSHIP_OK;
	/* Protect the quorum when others are down: the connected voters after removal must be a quorum. */
	size_t voters = 0, active = 0;
	for (size_t k = 0; k < membership->count; k++) {
		const struct member *member = &membership->members[k];
		if (member->is_learner)
			continue;
		voters++;
		active += member->id == local_id || connected(context, member->id);
	}
	if (active < 2 + (voters - 1) / 2) /* active - 1 < 1 + (voters - 1) / 2, without underflow */
		return MEMBERSHIP_ERR_UNHEALTHY;
	return MEMBERSHIP_OK;
}

int membership_may_promote(const struct membership *membership, uint64_t id, bool strict)
{
	const struct member *target = membership_find(membership, id);
	if (!target)
		return membership_is_removed(membership, id) ? MEMBERSHIP_ERR_ID_REMOVED : MEMBERSHIP_ERR_ID_NOT_FOUND;
	if (!target->is_learner)
		return MEMBERSHIP_ERR_MEMBER_NOT_LEARNER;
	if (!strict)
		return MEMBERSHIP_OK;
	/* IsReadyToPromoteMember: the promoted learner counts as started. */
	size_t members = 1, started = 1;
	for (size_t k = 0; k < membership->count; k++) {
		const struct member *member = &membership->members[k];
		if (member->is_learner)
			continue;
		members++;
		started += is_started(member);
	}
	if (started < members / 2 + 1)
		return MEMBERSHIP_ERR_NOT_ENOUGH_STARTED;
	return MEMBERSHIP_OK;
}
