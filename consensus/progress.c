/* consensus/progress.c: the leader's view of each follower (etcd's tracker.Progress) and the tracker
 * that holds them with the membership and the votes of an election.
 *
 * States: PROBE sends one append at a time until the follower's match is known; REPLICATE streams
 * appends optimistically within the in-flight window; SNAPSHOT waits while a snapshot is delivered. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void progress_init(struct progress *progress, uint64_t id, uint64_t next, int max_inflight,
                   uint64_t max_inflight_bytes, bool is_learner)
{
	memset(progress, 0, sizeof(*progress));
	progress->id = id;
	progress->next = next;
	progress->state = RAFT_PROGRESS_PROBE;
	progress->is_learner = is_learner;
	progress->inflights.capacity = max_inflight > 0 ? (size_t)max_inflight : 1;
	progress->inflights.max_bytes = max_inflight_bytes;
	progress->inflights.buffer = xcalloc(progress->inflights.capacity, sizeof(struct inflight));
}

void progress_free(struct progress *progress)
{
	free(progress->inflights.buffer);
	progress->inflights.buffer = NULL;
}

void inflights_reset(struct inflights *inflights)
{
	inflights->start = 0;
	inflights->count = 0;
	inflights->bytes = 0;
}

bool inflights_full(const struct inflights *inflights)
{
	return inflights->count == inflights->capacity ||
	       (inflights->max_bytes != 0 && inflights->bytes >= inflights->max_bytes);
}

static void inflights_add(struct inflights *inflights, uint64_t index, uint64_t bytes)
{
	size_t slot = (inflights->start + inflights->count) % inflights->capacity;
	inflights->buffer[slot].index = index;
	inflights->buffer[slot].bytes = bytes;
	inflights->count++;
	inflights->bytes += bytes;
}

void inflights_free_to(struct inflights *inflights, uint64_t index)
{
	while (inflights->count > 0) {
		struct inflight *oldest = &inflights->buffer[inflights->start];
		if (oldest->index > index)
			break;
		inflights->bytes -= oldest->bytes;
		inflights->start = (inflights->start + 1) % inflights->capacity;
		inflights->count--;
	}
	if (inflights->count == 0)
		inflights->start = 0;
}

static void progress_reset_state(struct progress *progress, enum raft_progress_state state)
{
	progress->msg_app_flow_paused = false;
	progress->pending_snapshot = 0;
	progress->state = state;
	inflights_reset(&progress->inflights);
}

void progress_become_probe(struct progress *progress)
{
	/* From SNAPSHOT, the follower has at least the snapshot: probe from just after it. */
	if (progress->state == RAFT_PROGRESS_SNAPSHOT) {
		uint64_t pending = progress->pending_snapshot;
		progress_reset_state(progress, RAFT_PROGRESS_PROBE);
		progress->next = (progress->match + 1 > pending + 1) ? progress->match + 1 : pending + 1;
	} else {
		progress_reset_state(progress, RAFT_PROGRESS_PROBE);
		progress->next = progress->match + 1;
	}
}

void progress_become_replicate(struct progress *progress)
{
	progress_reset_state(progress, RAFT_PROGRESS_REPLICATE);
	progress->next = progress->match + 1;
}

void progress_become_snapshot(struct progress *progress, uint64_t snapshot_index)
{
	progress_reset_state(progress, RAFT_PROGRESS_SNAPSHOT);
	progress->pending_snapshot = snapshot_index;
}

bool progress_maybe_update(struct progress *progress, uint64_t index)
{
	bool updated = false;
	if (progress->match < index) {
		progress->match = index;
		updated = true;
		progress->msg_app_flow_paused = false;
	}
	if (progress->next < index + 1)
		progress->next = index + 1;
	return updated;
}

bool progress_maybe_decrease_to(struct progress *progress, uint64_t rejected, uint64_t match_hint)
{
	if (progress->state == RAFT_PROGRESS_REPLICATE) {
		/* A rejection below what we know matched is stale (reordered); otherwise the optimistic
		 * stream went wrong: fall back to just after match. */
		if (rejected <= progress->match)
			return false;
		progress->next = progress->match + 1;
		return true;
	}
	/* PROBE: only the rejection of the append we last sent counts. */
	if (progress->next - 1 != rejected)
		return false;
	uint64_t next = match_hint + 1 < rejected ? match_hint + 1 : rejected;
	if (next < 1)
		next = 1;
	if (next < progress->match + 1)
		next = progress->match + 1;
	progress->next = next;
	progress->msg_app_flow_paused = false;
	return true;
}

void progress_sent_entries(struct progress *progress, size_t count, uint64_t last, uint64_t bytes)
{
	switch (progress->state) {
	case RAFT_PROGRESS_REPLICATE:
		if (count > 0) {
			progress->next = last + 1;
			inflights_add(&progress->inflights, last, bytes);
		}
		progress->msg_app_flow_paused = inflights_full(&progress->inflights);
		break;
	case RAFT_PROGRESS_PROBE:
		/* One append per heartbeat interval while probing (etcd pauses the same way). */
		if (count > 0)
			progress->msg_app_flow_paused = true;
		break;
	case RAFT_PROGRESS_SNAPSHOT:
		break;
	}
}

bool progress_is_paused(const struct progress *progress)
{
	switch (progress->state) {
	case RAFT_PROGRESS_PROBE:
	case RAFT_PROGRESS_REPLICATE:
		return progress->msg_app_flow_paused;
	case RAFT_PROGRESS_SNAPSHOT:
		return true;
	}
	return true;
}

/* ---- tracker ---- */

struct progress *tracker_progress(struct tracker *tracker, uint64_t id)
{
	size_t low = 0, high = tracker->progress_count;
	while (low < high) {
		size_t middle = (low + high) / 2;
		if (tracker->progress[middle].id < id)
			low = middle + 1;
		else
			high = middle;
	}
	if (low < tracker->progress_count && tracker->progress[low].id == id)
		return &tracker->progress[low];
	return NULL;
}

const struct progress *tracker_progress_const(const struct tracker *tracker, uint64_t id)
{
	return tracker_progress((struct tracker *)tracker, id);
}

void tracker_config_copy(struct tracker_config *destination, const struct tracker_config *source)
{
	id_set_copy(&destination->voters, &source->voters);
	id_set_copy(&destination->voters_outgoing, &source->voters_outgoing);
	id_set_copy(&destination->learners, &source->learners);
	id_set_copy(&destination->learners_next, &source->learners_next);
	destination->auto_leave = source->auto_leave;
}

void tracker_config_free(struct tracker_config *config)
{
	id_set_free(&config->voters);
	id_set_free(&config->voters_outgoing);
	id_set_free(&config->learners);
	id_set_free(&config->learners_next);
}

bool tracker_config_is_joint(const struct tracker_config *config)
{
	return config->voters_outgoing.count > 0;
}

bool tracker_config_is_voter(const struct tracker_config *config, uint64_t id)
{
	return id_set_contains(&config->voters, id) || id_set_contains(&config->voters_outgoing, id);
}

void tracker_free(struct tracker *tracker)
{
	tracker_config_free(&tracker->config);
	for (size_t k = 0; k < tracker->progress_count; k++)
		progress_free(&tracker->progress[k]);
	free(tracker->progress);
	free(tracker->vote_ids);
	free(tracker->vote_granted);
	memset(tracker, 0, sizeof(*tracker));
}

static uint64_t acked_match(const void *context, uint64_t id)
{
	const struct progress *progress = tracker_progress_const(context, id);
	return progress ? progress->match : 0;
}

uint64_t tracker_committed(const struct tracker *tracker)
{
	/* Joint consensus (§4.3 / thesis §4.3): an index is committed only when a majority of each of the
	 * two configurations has it. */
	uint64_t incoming = majority_committed_index(&tracker->config.voters, acked_match, tracker);
	uint64_t outgoing = majority_committed_index(&tracker->config.voters_outgoing, acked_match, tracker);
	uint64_t committed = incoming < outgoing ? incoming : outgoing;
	return committed == UINT64_MAX ? 0 : committed;
}

void tracker_reset_votes(struct tracker *tracker)
{
	tracker->votes_count = 0;
}

void tracker_record_vote(struct tracker *tracker, uint64_t id, bool granted)
{
	for (size_t k = 0; k < tracker->votes_count; k++)
		if (tracker->vote_ids[k] == id)
			return; /* the first answer counts */
	if (tracker->votes_count == tracker->votes_capacity) {
		tracker->votes_capacity = tracker->votes_capacity ? tracker->votes_capacity * 2 : 8;
		tracker->vote_ids = xrealloc(tracker->vote_ids, tracker->votes_capacity * sizeof(uint64_t));
		tracker->vote_granted = xrealloc(tracker->vote_granted, tracker->votes_capacity * sizeof(bool));
	}
	tracker->vote_ids[tracker->votes_count] = id;
	tracker->vote_granted[tracker->votes_count] = granted;
	tracker->votes_count++;
}

static int vote_of(const void *context, uint64_t id)
{
	const struct tracker *tracker = context;
	for (size_t k = 0; k < tracker->votes_count; k++)
		if (tracker->vote_ids[k] == id)
			return tracker->vote_granted[k] ? 1 : 0;
	return -1;
}

enum vote_result tracker_tally(const struct tracker *tracker, size_t *granted, size_t *rejected)
{
	size_t yes = 0, no = 0;
	for (size_t k = 0; k < tracker->votes_count; k++) {
		if (!tracker_config_is_voter(&tracker->config, tracker->vote_ids[k]))
			continue;
		if (tracker->vote_granted[k])
			yes++;
		else
			no++;
	}
	if (granted)
		*granted = yes;
	if (rejected)
		*rejected = no;
	enum vote_result incoming = majority_vote_result(&tracker->config.voters, vote_of, tracker);
	enum vote_result outgoing = majority_vote_result(&tracker->config.voters_outgoing, vote_of, tracker);
	if (incoming == outgoing)
		return incoming;
	if (incoming == VOTE_LOST || outgoing == VOTE_LOST)
		return VOTE_LOST;
	return VOTE_PENDING;
}

static int active_of(const void *context, uint64_t id)
{
	const struct progress *progress = tracker_progress_const(context, id);
	return progress && progress->recent_active ? 1 : 0;
}

bool tracker_quorum_active(const struct tracker *tracker)
{
	return majority_vote_result(&tracker->config.voters, active_of, tracker) == VOTE_WON &&
	       majority_vote_result(&tracker->config.voters_outgoing, active_of, tracker) == VOTE_WON;
}
