/* consensus/conf_change.c: membership changes (single-member and joint consensus).
 *
 * A change is computed on a copy of the tracker and swapped in only when valid, so a bad change
 * leaves the core as it was. Rules, from the thesis §4 and etcd's confchange package:
 * - a simple change alters at most one voter (§4.1: then any two majorities overlap);
 * - several voter changes go through a joint configuration C_old,new in which decisions need a
 *   majority of both (§4.3), left by an empty ConfChangeV2 (explicitly, or automatically);
 * - a voter that becomes a learner while it is still in the outgoing half waits in learners_next;
 * - a configuration never has zero voters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void tracker_clone(struct tracker *destination, const struct tracker *source)
{
	memset(destination, 0, sizeof(*destination));
	tracker_config_copy(&destination->config, &source->config);
	destination->progress_count = source->progress_count;
	destination->progress_capacity = source->progress_count ? source->progress_count : 1;
	destination->progress = xcalloc(destination->progress_capacity, sizeof(struct progress));
	for (size_t k = 0; k < source->progress_count; k++) {
		const struct progress *from = &source->progress[k];
		struct progress *to = &destination->progress[k];
		*to = *from;
		to->inflights.buffer = xcalloc(from->inflights.capacity, sizeof(struct inflight));
		memcpy(to->inflights.buffer, from->inflights.buffer, from->inflights.capacity * sizeof(struct inflight));
	}
}

static struct progress *tracker_insert(raft_t *r, struct tracker *tracker, uint64_t id, bool is_learner)
{
	size_t position = 0;
	while (position < tracker->progress_count && tracker->progress[position].id < id)
		position++;
	if (tracker->progress_count == tracker->progress_capacity) {
		tracker->progress_capacity = tracker->progress_capacity ? tracker->progress_capacity * 2 : 8;
		tracker->progress = xrealloc(tracker->progress, tracker->progress_capacity * sizeof(struct progress));
	}
	memmove(tracker->progress + position + 1, tracker->progress + position,
	        (tracker->progress_count - position) * sizeof(struct progress));
	tracker->progress_count++;
	struct progress *progress = &tracker->progress[position];
	progress_init(progress, id, log_last_index(&r->log) + 1, r->config.max_inflight_msgs,
	              r->config.max_inflight_bytes, is_learner);
	/* A new member counts as active so that adding it cannot make CheckQuorum depose the leader at
	 * once (etcd does the same). */
	progress->recent_active = true;
	return progress;
}

static void tracker_delete(struct tracker *tracker, uint64_t id)
{
	struct progress *progress = tracker_progress(tracker, id);
	if (!progress)
		return;
	size_t position = (size_t)(progress - tracker->progress);
	progress_free(progress);
	memmove(tracker->progress + position, tracker->progress + position + 1,
	        (tracker->progress_count - position - 1) * sizeof(struct progress));
	tracker->progress_count--;
}

static void make_voter(raft_t *r, struct tracker *tracker, uint64_t id)
{
	struct progress *progress = tracker_progress(tracker, id);
	if (!progress) {
		tracker_insert(r, tracker, id, false);
	} else {
		progress->is_learner = false;
	}
	id_set_remove(&tracker->config.learners, id);
	id_set_remove(&tracker->config.learners_next, id);
	id_set_add(&tracker->config.voters, id);
}

static void make_learner(raft_t *r, struct tracker *tracker, uint64_t id)
{
	struct progress *progress = tracker_progress(tracker, id);
	if (!progress) {
		tracker_insert(r, tracker, id, true);
		id_set_add(&tracker->config.learners, id);
		return;
	}
	if (progress->is_learner)
		return;
	id_set_remove(&tracker->config.voters, id);
	id_set_remove(&tracker->config.learners, id);
	id_set_remove(&tracker->config.learners_next, id);
	/* Still a voter of the outgoing half: it becomes a learner only when the joint config is left. */
	if (id_set_contains(&tracker->config.voters_outgoing, id)) {
		id_set_add(&tracker->config.learners_next, id);
	} else {
		progress->is_learner = true;
		id_set_add(&tracker->config.learners, id);
	}
}

static void remove_member(struct tracker *tracker, uint64_t id)
{
	if (!tracker_progress(tracker, id))
		return;
	id_set_remove(&tracker->config.voters, id);
	id_set_remove(&tracker->config.learners, id);
	id_set_remove(&tracker->config.learners_next, id);
	/* An outgoing voter keeps its progress until the joint config is left. */
	if (!id_set_contains(&tracker->config.voters_outgoing, id))
		tracker_delete(tracker, id);
}

static int apply_changes(raft_t *r, struct tracker *tracker, const struct conf_change_request *request,
                         char *err, size_t errlen)
{
	for (size_t k = 0; k < request->count; k++) {
		const Raftpb__ConfChangeSingle *change = &request->changes[k];
		if (change->node_id == RAFT_NONE)
			continue; /* etcd ignores changes of member 0 */
		switch (change->type) {
		case RAFT_CC_ADD_NODE:
			make_voter(r, tracker, change->node_id);
			break;
		case RAFT_CC_ADD_LEARNER_NODE:
			make_learner(r, tracker, change->node_id);
			break;
		case RAFT_CC_REMOVE_NODE:
			remove_member(tracker, change->node_id);
			break;
		case RAFT_CC_UPDATE_NODE:
			break;
		default:
			snprintf(err, errlen, "unknown change type %d", (int)change->type);
			return RAFT_ERR_CONF_CHANGE_INVALID;
		}
	}
	if (tracker->config.voters.count == 0) {
		snprintf(err, errlen, "removed all voters");
		return RAFT_ERR_CONF_CHANGE_INVALID;
	}
	return RAFT_OK;
}

static size_t symmetric_difference(const struct id_set *a, const struct id_set *b)
{
	size_t n = 0;
	for (size_t k = 0; k < a->count; k++)
		n += !id_set_contains(b, a->ids[k]);
	for (size_t k = 0; k < b->count; k++)
		n += !id_set_contains(a, b->ids[k]);
	return n;
}

int conf_change_apply(raft_t *r, const struct tracker *current, const struct conf_change_request *request,
                      struct tracker *out, char *err, size_t errlen)
{
	struct tracker next;
	tracker_clone(&next, current);
	int rc = RAFT_OK;
	switch (request->kind) {
	case CONF_CHANGE_SIMPLE:
		if (tracker_config_is_joint(&next.config)) {
			snprintf(err, errlen, "can't apply a simple config change in a joint config");
			rc = RAFT_ERR_CONF_CHANGE_INVALID;
			break;
		}
		rc = apply_changes(r, &next, request, err, errlen);
		if (rc == RAFT_OK && symmetric_difference(&current->config.voters, &next.config.voters) > 1) {
			snprintf(err, errlen, "more than one voter changed without entering a joint config");
			rc = RAFT_ERR_CONF_CHANGE_INVALID;
		}
		break;
	case CONF_CHANGE_ENTER_JOINT:
		if (tracker_config_is_joint(&next.config)) {
			snprintf(err, errlen, "config is already joint");
			rc = RAFT_ERR_CONF_CHANGE_INVALID;
			break;
		}
		if (next.config.voters.count == 0) {
			snprintf(err, errlen, "can't make a zero-voter config joint");
			rc = RAFT_ERR_CONF_CHANGE_INVALID;
			break;
		}
		id_set_copy(&next.config.voters_outgoing, &next.config.voters);
		rc = apply_changes(r, &next, request, err, errlen);
		next.config.auto_leave = request->auto_leave;
		break;
	case CONF_CHANGE_LEAVE_JOINT:
		if (!tracker_config_is_joint(&next.config)) {
			snprintf(err, errlen, "can't leave a non-joint config");
			rc = RAFT_ERR_CONF_CHANGE_INVALID;
			break;
		}
		for (size_t k = 0; k < next.config.learners_next.count; k++) {
			uint64_t id = next.config.learners_next.ids[k];
			id_set_add(&next.config.learners, id);
			struct progress *progress = tracker_progress(&next, id);
			if (progress)
				progress->is_learner = true;
		}
		id_set_clear(&next.config.learners_next);
		for (size_t k = 0; k < next.config.voters_outgoing.count; k++) {
			uint64_t id = next.config.voters_outgoing.ids[k];
			if (!id_set_contains(&next.config.voters, id) && !id_set_contains(&next.config.learners, id))
				tracker_delete(&next, id);
		}
		id_set_clear(&next.config.voters_outgoing);
		next.config.auto_leave = false;
		break;
	}
	if (rc != RAFT_OK) {
		tracker_free(&next);
		return rc;
	}
	*out = next;
	return RAFT_OK;
}

int conf_change_decode(int entry_type, const uint8_t *data, size_t length, struct conf_change_decoded *out)
{
	memset(out, 0, sizeof(*out));
	if (entry_type == RAFT_ENTRY_CONF_CHANGE) {
		Raftpb__ConfChange *change = raftpb__conf_change__unpack(NULL, length, data);
		if (!change)
			return RAFT_ERR_MALFORMED;
		out->singles = xcalloc(1, sizeof(Raftpb__ConfChangeSingle));
		raftpb__conf_change_single__init(out->singles);
		out->singles[0].type = change->type;
		out->singles[0].node_id = change->node_id;
		raftpb__conf_change__free_unpacked(change, NULL);
		out->request.changes = out->singles;
		out->request.count = 1;
		out->request.kind = CONF_CHANGE_SIMPLE;
		return RAFT_OK;
	}
	if (entry_type != RAFT_ENTRY_CONF_CHANGE_V2)
		return RAFT_ERR_INVALID_ARGUMENT;
	Raftpb__ConfChangeV2 *change = raftpb__conf_change_v2__unpack(NULL, length, data);
	if (!change)
		return RAFT_ERR_MALFORMED;
	size_t count = change->n_changes;
	out->singles = xcalloc(count ? count : 1, sizeof(Raftpb__ConfChangeSingle));
	for (size_t k = 0; k < count; k++) {
		raftpb__conf_change_single__init(&out->singles[k]);
		out->singles[k].type = change->changes[k]->type;
		out->singles[k].node_id = change->changes[k]->node_id;
	}
	out->request.changes = out->singles;
	out->request.count = count;
	if (count == 0) {
		out->request.kind = CONF_CHANGE_LEAVE_JOINT;
	} else if (change->transition == RAFTPB__CONF_CHANGE_TRANSITION__CONF_CHANGE_TRANSITION_AUTO && count == 1) {
		out->request.kind = CONF_CHANGE_SIMPLE;
	} else {
		out->request.kind = CONF_CHANGE_ENTER_JOINT;
		out->request.auto_leave =
		    change->transition != RAFTPB__CONF_CHANGE_TRANSITION__CONF_CHANGE_TRANSITION_JOINT_EXPLICIT;
	}
	raftpb__conf_change_v2__free_unpacked(change, NULL);
	return RAFT_OK;
}

void conf_change_decoded_free(struct conf_change_decoded *decoded)
{
	free(decoded->singles);
	decoded->singles = NULL;
}

int conf_change_restore(raft_t *r, const Raftpb__ConfState *state, struct tracker *out)
{
	struct tracker next;
	memset(&next, 0, sizeof(next));
	for (size_t k = 0; k < state->n_voters; k++)
		if (state->voters[k] != RAFT_NONE)
			id_set_add(&next.config.voters, state->voters[k]);
	for (size_t k = 0; k < state->n_voters_outgoing; k++)
		if (state->voters_outgoing[k] != RAFT_NONE)
			id_set_add(&next.config.voters_outgoing, state->voters_outgoing[k]);
	for (size_t k = 0; k < state->n_learners; k++)
		if (state->learners[k] != RAFT_NONE)
			id_set_add(&next.config.learners, state->learners[k]);
	for (size_t k = 0; k < state->n_learners_next; k++)
		if (state->learners_next[k] != RAFT_NONE)
			id_set_add(&next.config.learners_next, state->learners_next[k]);
	next.config.auto_leave = state->auto_leave && next.config.voters_outgoing.count > 0;

	/* Invariants: a learner is never a voter; a pending learner is an outgoing voter only. */
	bool valid = true;
	for (size_t k = 0; k < next.config.learners.count && valid; k++)
		valid = !tracker_config_is_voter(&next.config, next.config.learners.ids[k]);
	for (size_t k = 0; k < next.config.learners_next.count && valid; k++) {
		uint64_t id = next.config.learners_next.ids[k];
		valid = id_set_contains(&next.config.voters_outgoing, id) && !id_set_contains(&next.config.voters, id);
	}
	if (!valid) {
		tracker_free(&next);
		return RAFT_ERR_CONF_CHANGE_INVALID;
	}
	const struct id_set *sets[] = {&next.config.voters, &next.config.voters_outgoing, &next.config.learners};
	for (size_t s = 0; s < 3; s++)
		for (size_t k = 0; k < sets[s]->count; k++)
			if (!tracker_progress(&next, sets[s]->ids[k]))
				tracker_insert(r, &next, sets[s]->ids[k], s == 2);
	*out = next;
	return RAFT_OK;
}

static void copy_ids(struct arena *arena, const struct id_set *set, size_t *count_out, uint64_t **ids_out)
{
	*count_out = set->count;
	*ids_out = set->count ? arena_memdup(arena, set->ids, set->count * sizeof(uint64_t)) : NULL;
}

void conf_state_from_membership(struct arena *arena, const struct tracker_config *config, Raftpb__ConfState *out)
{
	raftpb__conf_state__init(out);
	copy_ids(arena, &config->voters, &out->n_voters, &out->voters);
	copy_ids(arena, &config->voters_outgoing, &out->n_voters_outgoing, &out->voters_outgoing);
	copy_ids(arena, &config->learners, &out->n_learners, &out->learners);
	copy_ids(arena, &config->learners_next, &out->n_learners_next, &out->learners_next);
	out->auto_leave = config->auto_leave;
}

/* A committed conf-change entry takes effect (called from raft_advance, in log order). */
void conf_change_apply_entry(raft_t *r, uint64_t index, int type, const uint8_t *data, size_t length)
{
	struct conf_change_decoded decoded;
	if (conf_change_decode(type, data, length, &decoded) != RAFT_OK) {
		r->counters.rejected[RAFT_ERR_MALFORMED]++;
		return;
	}
	struct tracker next;
	char reason[128];
	int rc = conf_change_apply(r, &r->tracker, &decoded.request, &next, reason, sizeof(reason));
	conf_change_decoded_free(&decoded);
	if (rc != RAFT_OK) {
		/* Validated when proposed, so only a change proposed against another configuration can land
		 * here; like an unknown entry, it changes nothing. */
		r->counters.rejected[RAFT_ERR_CONF_CHANGE_INVALID]++;
		return;
	}
	(void)index;
	raft_switch_tracker(r, &next);
}
