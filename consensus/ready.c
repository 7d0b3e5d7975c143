/* consensus/ready.c: the Ready bundle (what to persist, send and apply) and advance.
 *
 * The Ready only points into the core: the log's entries (stable until advance, since no other call
 * may come between raft_ready and raft_advance) and the arena (messages, read states). */
#include <string.h>

#include "internal.h"

static bool hard_state_changed(const raft_t *r)
{
	return r->term != r->previous_hard_state.term || r->vote != r->previous_hard_state.vote ||
	       r->log.committed != r->previous_hard_state.commit;
}

/* The committed entries the application may take now: committed, locally durable, not yet given. */
static void deliverable_range(const raft_t *r, uint64_t *low, uint64_t *high)
{
	uint64_t from = r->log.applied > r->log.boundary_index ? r->log.applied : r->log.boundary_index;
	uint64_t to = r->log.committed < r->log.persisted ? r->log.committed : r->log.persisted;
	if (r->snapshot_pending_handout || r->log.applied < r->log.boundary_index)
		to = from; /* the snapshot comes first */
	*low = from + 1;
	*high = to;
}

bool raft_has_ready(const raft_t *r)
{
	if (r->leader != r->previous_leader || r->role != r->previous_role)
		return true;
	if (hard_state_changed(r) || r->snapshot_pending_handout)
		return true;
	if (r->log.handed_next <= log_last_index(&r->log))
		return true;
	if (r->messages.count || r->messages_after_persist.count || r->read_states_count)
		return true;
	uint64_t low, high;
	deliverable_range(r, &low, &high);
	return low <= high;
}

static Raftpb__Entry **entries_view(raft_t *r, uint64_t low, uint64_t high, size_t *count_out)
{
	if (high < low) {
		*count_out = 0;
		return NULL;
	}
	size_t count = (size_t)(high - low + 1);
	Raftpb__Entry **pointers = arena_alloc(&r->arena, count * sizeof(Raftpb__Entry *));
	Raftpb__Entry *structs = arena_alloc(&r->arena, count * sizeof(Raftpb__Entry));
	for (size_t k = 0; k < count; k++) {
		const struct log_entry *entry = log_entry_at(&r->log, low + k);
		raftpb__entry__init(&structs[k]);
		structs[k].type = entry->type;
		structs[k].term = entry->term;
		structs[k].index = low + k;
		structs[k].data.data = entry->data;
		structs[k].data.len = entry->length;
		pointers[k] = &structs[k];
	}
	*count_out = count;
	return pointers;
}

bool raft_ready(raft_t *r, struct raft_ready *ready)
{
	memset(ready, 0, sizeof(*ready));
	if (!raft_has_ready(r))
		return false;
	ready->leader = r->leader;
	ready->role = r->role;
	ready->soft_state_changed = r->leader != r->previous_leader || r->role != r->previous_role;
	if (hard_state_changed(r)) {
		ready->has_hard_state = true;
		raftpb__hard_state__init(&ready->hard_state);
		ready->hard_state.term = r->term;
		ready->hard_state.vote = r->vote;
		ready->hard_state.commit = r->log.committed;
	}
	if (r->snapshot_pending_handout) {
		ready->snapshot = r->snapshot;
		ready->persist_index = r->snapshot->metadata->index;
		ready->persist_term = r->snapshot->metadata->term;
	}
	uint64_t last = log_last_index(&r->log);
	ready->entries = entries_view(r, r->log.handed_next, last, &ready->entries_count);
	if (ready->entries_count) {
		ready->persist_index = last;
		ready->persist_term = log_term(&r->log, last);
	}
	r->ready_handed_next = last + 1;

	uint64_t low, high;
	deliverable_range(r, &low, &high);
	if (r->config.max_committed_size_per_ready && low <= high) {
		uint64_t bytes = 0, limit = high;
		for (uint64_t index = low; index <= high; index++) {
			bytes += log_entry_at(&r->log, index)->length;
			if (bytes > r->config.max_committed_size_per_ready && index > low) {
				limit = index - 1;
				break;
			}
		}
		high = limit;
	}
	ready->committed_entries = entries_view(r, low, high, &ready->committed_entries_count);
	r->ready_applied_to = ready->committed_entries_count ? high : 0;
	r->ready_had_snapshot = ready->snapshot != NULL;

	ready->messages = r->messages.items;
	ready->messages_count = r->messages.count;
	ready->messages_after_persist = r->messages_after_persist.items;
	ready->messages_after_persist_count = r->messages_after_persist.count;
	ready->read_states = r->read_states;
	ready->read_states_count = r->read_states_count;
	return true;
}

void raft_advance(raft_t *r, const struct raft_ready *ready)
{
	if (ready->soft_state_changed && ready->leader != r->previous_leader && ready->leader != RAFT_NONE)
		r->counters.leader_changes++;
	r->previous_leader = ready->leader;
	r->previous_role = ready->role;
	if (ready->has_hard_state)
		r->previous_hard_state = ready->hard_state;
	if (r->ready_handed_next > r->log.handed_next)
		r->log.handed_next = r->ready_handed_next;
	if (r->ready_had_snapshot) {
		r->snapshot_pending_handout = false;
		if (r->log.applied < r->log.boundary_index)
			r->log.applied = r->log.boundary_index;
	}
	r->messages.count = 0;
	r->messages_after_persist.count = 0;
	r->read_states_count = 0;
	arena_reset(&r->arena);

	/* Deliver: conf changes take effect now, in log order (after the arena reset, since taking
	 * effect may queue new messages). */
	uint64_t applied_to = r->ready_applied_to;
	r->ready_applied_to = 0;
	r->ready_had_snapshot = false;
	for (uint64_t index = r->log.applied + 1; index <= applied_to; index++) {
		const struct log_entry *entry = log_entry_at(&r->log, index);
		r->log.applied = index;
		if (!entry)
			continue;
		r->log.uncommitted_bytes =
		    r->log.uncommitted_bytes > entry->length ? r->log.uncommitted_bytes - entry->length : 0;
		if (entry->type != RAFT_ENTRY_NORMAL)
			conf_change_apply_entry(r, index, entry->type, entry->data, entry->length);
	}
	if (r->campaign_after_apply && r->role == RAFT_FOLLOWER && !raft_has_unapplied_conf_changes(r)) {
		r->campaign_after_apply = false;
		election_hup(r, true);
	}
	/* A joint configuration marked auto-leave is left by the leader as soon as it is applied. */
	if (r->role == RAFT_LEADER && r->tracker.config.auto_leave && tracker_config_is_joint(&r->tracker.config) &&
	    r->pending_conf_index <= r->log.applied) {
		Raftpb__ConfChangeV2 leave = RAFTPB__CONF_CHANGE_V2__INIT;
		raft_propose_conf_change_v2(r, &leave, NULL);
	}
}
