/* consensus/replication.c: log replication (Figure 2, AppendEntries; §5.3), commitment (§5.4.2 and
 * Figure 8), heartbeats, flow control, fast backtracking and snapshots sent to lagging followers. */
#include <string.h>

#include "internal.h"

static Raftpb__Entry **entries_for_message(raft_t *r, uint64_t low, uint64_t last, size_t *count_out,
                                           uint64_t *bytes_out)
{
	size_t count = (size_t)(last - low + 1);
	Raftpb__Entry **pointers = arena_alloc(&r->arena, count * sizeof(Raftpb__Entry *));
	Raftpb__Entry *structs = arena_alloc(&r->arena, count * sizeof(Raftpb__Entry));
	uint64_t bytes = 0;
	for (size_t k = 0; k < count; k++) {
		const struct log_entry *entry = log_entry_at(&r->log, low + k);
		raftpb__entry__init(&structs[k]);
		structs[k].term = entry->term;
		structs[k].index = low + k;
		structs[k].type = entry->type;
		/* Copied: messages wait in the queue while the log may change under them. */
		structs[k].data.data = arena_memdup(&r->arena, entry->data, entry->length);
		structs[k].data.len = entry->length;
		pointers[k] = &structs[k];
		bytes += entry->length;
	}
	*count_out = count;
	*bytes_out = bytes;
	return pointers;
}

static bool send_snapshot(raft_t *r, struct progress *progress)
{
	if (!progress->recent_active || !r->snapshot || !r->snapshot->metadata)
		return false; /* an inactive follower gets its snapshot once it answers again */
	Raftpb__Message *message = raft_new_message(r, RAFT_MSG_SNAP, progress->id);
	Raftpb__Snapshot *snapshot = arena_alloc(&r->arena, sizeof(*snapshot));
	Raftpb__SnapshotMetadata *metadata = arena_alloc(&r->arena, sizeof(*metadata));
	Raftpb__ConfState *conf_state = arena_alloc(&r->arena, sizeof(*conf_state));
	raftpb__snapshot__init(snapshot);
	raftpb__snapshot_metadata__init(metadata);
	const Raftpb__SnapshotMetadata *source = r->snapshot->metadata;
	metadata->index = source->index;
	metadata->term = source->term;
	raftpb__conf_state__init(conf_state);
	if (source->conf_state) {
		const Raftpb__ConfState *c = source->conf_state;
		conf_state->n_voters = c->n_voters;
		conf_state->voters = arena_memdup(&r->arena, c->voters, c->n_voters * sizeof(uint64_t));
		conf_state->n_voters_outgoing = c->n_voters_outgoing;
		conf_state->voters_outgoing =
		    arena_memdup(&r->arena, c->voters_outgoing, c->n_voters_outgoing * sizeof(uint64_t));
		conf_state->n_learners = c->n_learners;
		conf_state->learners = arena_memdup(&r->arena, c->learners, c->n_learners * sizeof(uint64_t));
		conf_state->n_learners_next = c->n_learners_next;
		conf_state->learners_next =
		    arena_memdup(&r->arena, c->learners_next, c->n_learners_next * sizeof(uint64_t));
		conf_state->auto_leave = c->auto_leave;
	}
	metadata->conf_state = conf_state;
	snapshot->metadata = metadata;
	snapshot->data.data = arena_memdup(&r->arena, r->snapshot->data.data, r->snapshot->data.len);
	snapshot->data.len = r->snapshot->data.len;
	message->snapshot = snapshot;
	progress_become_snapshot(progress, source->index);
	r->counters.snapshots_sent++;
	raft_send(r, message);
	return true;
}

bool replication_send_append(raft_t *r, uint64_t to, bool send_if_empty)
{
	struct progress *progress = tracker_progress(&r->tracker, to);
	if (!progress || progress_is_paused(progress))
		return false;
	uint64_t previous_index = progress->next - 1;
	uint64_t last = log_last_index(&r->log);
	/* The entry before next is compacted: only a snapshot can bring this follower up to date. */
	if (previous_index < r->log.boundary_index)
		return send_snapshot(r, progress);
	uint64_t previous_term = log_term(&r->log, previous_index);
	uint64_t high = progress->next - 1;
	uint64_t budget = 0;
	/* A full window sends only an empty append: if every message in flight was lost, its answer (an
	 * ack or a rejection) is what frees the window again. */
	bool window_full = progress->state == RAFT_PROGRESS_REPLICATE && inflights_full(&progress->inflights);
	/* Entries up to max_size_per_msg bytes, at least one: small messages keep fragment counts low. */
	while (high < last && !window_full) {
		const struct log_entry *entry = log_entry_at(&r->log, high + 1);
		if (high >= progress->next && budget + entry->length > r->config.max_size_per_msg)
			break;
		budget += entry->length;
		high++;
	}
	size_t count = 0;
	uint64_t bytes = 0;
	if (high < progress->next && !send_if_empty)
		return false;
	Raftpb__Message *message = raft_new_message(r, RAFT_MSG_APP, to);
	message->index = previous_index;
	message->log_term = previous_term;
	message->commit = r->log.committed;
	if (high >= progress->next) {
		message->entries = entries_for_message(r, progress->next, high, &count, &bytes);
		message->n_entries = count;
	}
	progress_sent_entries(progress, count, high, bytes);
	raft_send(r, message);
	return true;
}

void replication_broadcast_append(raft_t *r)
{
	for (size_t k = 0; k < r->tracker.progress_count; k++) {
		uint64_t id = r->tracker.progress[k].id;
		if (id != r->id)
			replication_send_append(r, id, true);
	}
}

void replication_broadcast_heartbeat(raft_t *r, const uint8_t *context, size_t length)
{
	for (size_t k = 0; k < r->tracker.progress_count; k++) {
		const struct progress *progress = &r->tracker.progress[k];
		if (progress->id == r->id)
			continue;
		Raftpb__Message *message = raft_new_message(r, RAFT_MSG_HEARTBEAT, progress->id);
		/* Never tell a follower to commit beyond what it is known to have. */
		message->commit = progress->match < r->log.committed ? progress->match : r->log.committed;
		if (length) {
			message->context.data = arena_memdup(&r->arena, context, length);
			message->context.len = length;
		}
		raft_send(r, message);
	}
}

bool replication_maybe_commit(raft_t *r)
{
	uint64_t index = tracker_committed(&r->tracker);
	/* §5.4.2 / Figure 8: a leader commits by counting replicas only entries of its own term; earlier
	 * entries are committed indirectly with them. */
	if (index <= r->log.committed || log_term(&r->log, index) != r->term)
		return false;
	log_commit_to(&r->log, index);
	return true;
}

static bool entries_are_consistent(const Raftpb__Message *message)
{
	/* prevLogTerm is the term of an entry in the leader's log: never above the leader's term. */
	if (message->log_term > message->term)
		return false;
	uint64_t previous_term = message->log_term;
	for (size_t k = 0; k < message->n_entries; k++) {
		const Raftpb__Entry *entry = message->entries[k];
		if (!entry || entry->index != message->index + 1 + k || entry->term < previous_term ||
		    entry->term > message->term || entry->term == 0)
			return false;
		if (entry->type > RAFT_ENTRY_CONF_CHANGE_V2)
			return false;
		previous_term = entry->term;
	}
	return message->index + message->n_entries >= message->index; /* no overflow */
}

int replication_handle_append(raft_t *r, const Raftpb__Message *message)
{
	if (!entries_are_consistent(message))
		return raft_reject(r, RAFT_ERR_BAD_INDEX);
	Raftpb__Message *response = raft_new_message(r, RAFT_MSG_APP_RESP, message->from);
	if (message->index < r->log.committed) {
		/* Everything up to our commit index is settled; tell the leader where we are. */
		response->index = r->log.committed;
		raft_send(r, response);
		return RAFT_OK;
	}
	if (log_matches(&r->log, message->index, message->log_term)) {
		uint64_t last_new = message->index + message->n_entries;
		uint64_t conflict = log_find_conflict(&r->log, message->index + 1, message->entries, message->n_entries);
		if (conflict != 0 && conflict <= r->log.committed) {
			/* A leader contradicting a committed entry: impossible from a correct leader. */
			return raft_reject(r, RAFT_ERR_BAD_INDEX);
		}
		if (conflict != 0) {
			/* Figure 2: delete the conflicting entry and all that follow, append the new ones. */
			raft_withdraw_acknowledgements_above(r, conflict - 1);
			log_truncate_after(&r->log, conflict - 1);
			for (uint64_t index = conflict; index <= last_new; index++) {
				const Raftpb__Entry *entry = message->entries[index - message->index - 1];
				log_append(&r->log, entry->term, entry->type, entry->data.data, entry->data.len);
			}
		}
		/* Figure 2: commitIndex = min(leaderCommit, index of last new entry). */
		log_commit_to(&r->log, message->commit < last_new ? message->commit : last_new);
		response->index = last_new;
		raft_send(r, response);
		return RAFT_OK;
	}
	/* Fast backtracking: hint the largest index that can match, with its term, so the leader skips
	 * a whole conflicting term in one round trip. */
	uint64_t hint = message->index < log_last_index(&r->log) ? message->index : log_last_index(&r->log);
	hint = log_find_conflict_by_term(&r->log, hint, message->log_term);
	response->index = message->index;
	response->reject = true;
	response->reject_hint = hint;
	response->log_term = log_term(&r->log, hint);
	raft_send(r, response);
	return RAFT_OK;
}

int replication_handle_append_response(raft_t *r, const Raftpb__Message *message)
{
	struct progress *progress = tracker_progress(&r->tracker, message->from);
	if (!progress)
		return raft_reject(r, RAFT_ERR_UNKNOWN_SENDER);
	if (message->index > log_last_index(&r->log) && !message->reject)
		return raft_reject(r, RAFT_ERR_BAD_INDEX);
	progress->recent_active = true;
	if (message->reject) {
		uint64_t next_probe = message->reject_hint;
		if (message->log_term > 0)
			next_probe = log_find_conflict_by_term(&r->log, message->reject_hint, message->log_term);
		if (progress_maybe_decrease_to(progress, message->index, next_probe)) {
			if (progress->state == RAFT_PROGRESS_REPLICATE)
				progress_become_probe(progress);
			replication_send_append(r, message->from, true);
		}
		return RAFT_OK;
	}
	bool was_paused = progress_is_paused(progress);
	if (!progress_maybe_update(progress, message->index) &&
	    !(progress->match == message->index && progress->state == RAFT_PROGRESS_PROBE))
		return RAFT_OK;
	switch (progress->state) {
	case RAFT_PROGRESS_PROBE:
		progress_become_replicate(progress);
		break;
	case RAFT_PROGRESS_SNAPSHOT:
		if (progress->match + 1 >= log_first_index(&r->log)) {
			progress_become_probe(progress);
			progress_become_replicate(progress);
		}
		break;
	case RAFT_PROGRESS_REPLICATE:
		inflights_free_to(&progress->inflights, message->index);
		progress->msg_app_flow_paused = inflights_full(&progress->inflights);
		break;
	}
	if (replication_maybe_commit(r)) {
		read_index_release_waiting(r);
		replication_broadcast_append(r);
	} else if (was_paused) {
		replication_send_append(r, message->from, true);
	}
	/* Fill the window: pipelining keeps several appends in flight. */
	while (replication_send_append(r, message->from, false))
		;
	if (message->from == r->lead_transferee && progress->match == log_last_index(&r->log)) {
		raft_send(r, raft_new_message(r, RAFT_MSG_TIMEOUT_NOW, message->from));
	}
	return RAFT_OK;
}

int replication_handle_heartbeat(raft_t *r, const Raftpb__Message *message)
{
	log_commit_to(&r->log, message->commit);
	Raftpb__Message *response = raft_new_message(r, RAFT_MSG_HEARTBEAT_RESP, message->from);
	if (message->context.len) {
		response->context.data = arena_memdup(&r->arena, message->context.data, message->context.len);
		response->context.len = message->context.len;
	}
	raft_send(r, response);
	return RAFT_OK;
}

int replication_handle_heartbeat_response(raft_t *r, const Raftpb__Message *message)
{
	struct progress *progress = tracker_progress(&r->tracker, message->from);
	if (!progress)
		return raft_reject(r, RAFT_ERR_UNKNOWN_SENDER);
	progress->recent_active = true;
	progress->msg_app_flow_paused = false;
	if (progress->match < log_last_index(&r->log) || progress->state == RAFT_PROGRESS_PROBE)
		replication_send_append(r, message->from, true);
	read_index_on_heartbeat_response(r, message);
	return RAFT_OK;
}

static bool snapshot_is_well_formed(const Raftpb__Snapshot *snapshot)
{
	return snapshot && snapshot->metadata && snapshot->metadata->index > 0 && snapshot->metadata->term > 0 &&
	       snapshot->metadata->conf_state && snapshot->metadata->conf_state->n_voters > 0;
}

int replication_handle_snapshot(raft_t *r, const Raftpb__Message *message)
{
	if (!snapshot_is_well_formed(message->snapshot) || message->snapshot->metadata->term > message->term)
		return raft_reject(r, RAFT_ERR_MALFORMED);
	const Raftpb__SnapshotMetadata *metadata = message->snapshot->metadata;
	Raftpb__Message *response = raft_new_message(r, RAFT_MSG_APP_RESP, message->from);
	if (metadata->index <= r->log.committed) {
		response->index = r->log.committed;
		raft_send(r, response);
		return RAFT_OK;
	}
	if (log_matches(&r->log, metadata->index, metadata->term)) {
		/* We already have the snapshot's last entry: the prefix matches, just commit it. */
		log_commit_to(&r->log, metadata->index);
		response->index = r->log.committed;
		raft_send(r, response);
		return RAFT_OK;
	}
	struct tracker next;
	if (conf_change_restore(r, metadata->conf_state, &next) != RAFT_OK)
		return raft_reject(r, RAFT_ERR_MALFORMED);
	/* The log is replaced: what was acknowledged beyond the commit index may differ from the
	 * snapshot's history. */
	raft_withdraw_acknowledgements_above(r, r->log.committed);
	log_restore_snapshot(&r->log, metadata->index, metadata->term);
	if (r->snapshot)
		raftpb__snapshot__free_unpacked(r->snapshot, NULL);
	r->snapshot = raft_copy_snapshot(message->snapshot);
	r->snapshot_pending_handout = true;
	raft_switch_tracker(r, &next);
	response->index = log_last_index(&r->log);
	raft_send(r, response);
	return RAFT_OK;
}

int replication_handle_snapshot_status(raft_t *r, const Raftpb__Message *message)
{
	struct progress *progress = tracker_progress(&r->tracker, message->from);
	if (!progress)
		return raft_reject(r, RAFT_ERR_UNKNOWN_SENDER);
	if (progress->state != RAFT_PROGRESS_SNAPSHOT)
		return RAFT_OK;
	if (message->reject)
		progress->pending_snapshot = 0; /* failed: probe from match again */
	progress_become_probe(progress);
	/* Wait for a heartbeat answer before the next append: the follower may still be installing. */
	progress->msg_app_flow_paused = true;
	return RAFT_OK;
}

int replication_handle_unreachable(raft_t *r, const Raftpb__Message *message)
{
	struct progress *progress = tracker_progress(&r->tracker, message->from);
	if (!progress)
		return raft_reject(r, RAFT_ERR_UNKNOWN_SENDER);
	/* The optimistic stream was probably lost: go back to probing. */
	if (progress->state == RAFT_PROGRESS_REPLICATE)
		progress_become_probe(progress);
	return RAFT_OK;
}
