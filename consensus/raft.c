/* consensus/raft.c: roles, terms and the dispatch of every input (Figure 2, "Rules for Servers").
 *
 * Each input goes through raft_step_internal: the term rules first (any message with a higher term
 * makes us a follower, stale ones are dropped), then the handler of the current role. Outputs are
 * queued and handed out by raft_ready (ready.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

bool election_is_transfer_context(const Raftpb__Message *message);

/* ---- small helpers ---- */

uint64_t raft_random(raft_t *r)
{
	/* splitmix64: deterministic from the caller's seed, good enough to spread election timeouts. */
	uint64_t z = (r->random_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void raft_reset_randomized_election_timeout(raft_t *r)
{
	/* §5.2: randomized timeouts in [T, 2T) make split votes rare. */
	r->randomized_election_timeout =
	    r->config.election_tick + (int)(raft_random(r) % (uint64_t)r->config.election_tick);
}

int raft_reject(raft_t *r, int code)
{
	if (code > 0 && code < RAFT_ERROR_COUNT)
		r->counters.rejected[code]++;
	return code;
}

Raftpb__Message *raft_new_message(raft_t *r, int type, uint64_t to)
{
	Raftpb__Message *message = arena_alloc(&r->arena, sizeof(*message));
	raftpb__message__init(message);
	message->type = type;
	message->to = to;
	return message;
}

static void queue_push(struct message_queue *queue, Raftpb__Message *message)
{
	if (queue->count == queue->capacity) {
		queue->capacity = queue->capacity ? queue->capacity * 2 : 64;
		queue->items = xrealloc(queue->items, queue->capacity * sizeof(Raftpb__Message *));
	}
	queue->items[queue->count++] = message;
}

void raft_send(raft_t *r, Raftpb__Message *message)
{
	if (message->from == RAFT_NONE)
		message->from = r->id;
	switch (message->type) {
	case RAFT_MSG_VOTE:
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PRE_VOTE:
	case RAFT_MSG_PRE_VOTE_RESP:
		break; /* the term was chosen by the election code */
	case RAFT_MSG_PROP:
	case RAFT_MSG_READ_INDEX:
		break; /* forwarded requests carry no term: they are not bound to one */
	default:
		message->term = r->term;
	}
	/* Ordering contract (raft.h): whatever promises durable state waits for the local write — a vote
	 * request (our own vote and term), a vote grant, an append acknowledgement. The rest may leave now. */
	switch (message->type) {
	case RAFT_MSG_APP_RESP:
	case RAFT_MSG_VOTE:
	case RAFT_MSG_VOTE_RESP:
		queue_push(&r->messages_after_persist, message);
		break;
	default:
		queue_push(&r->messages, message);
	}
}

void raft_withdraw_acknowledgements_above(raft_t *r, uint64_t index)
{
	struct message_queue *queue = &r->messages_after_persist;
	size_t kept = 0;
	for (size_t k = 0; k < queue->count; k++) {
		const Raftpb__Message *message = queue->items[k];
		if (message->type == RAFT_MSG_APP_RESP && !message->reject && message->index > index)
			continue; /* arena memory: freed with the Ready's */
		queue->items[kept++] = queue->items[k];
	}
	queue->count = kept;
}

uint64_t raft_entries_bytes(const raft_t *r, uint64_t low, uint64_t high)
{
	uint64_t bytes = 0;
	for (uint64_t index = low; index < high; index++) {
		const struct log_entry *entry = log_entry_at(&r->log, index);
		if (entry)
			bytes += entry->length;
	}
	return bytes;
}

Raftpb__Snapshot *raft_copy_snapshot(const Raftpb__Snapshot *snapshot)
{
	/* Pack and unpack: a deep copy that the generated free function can release. */
	size_t size = raftpb__snapshot__get_packed_size(snapshot);
	uint8_t *buffer = xmalloc(size);
	raftpb__snapshot__pack(snapshot, buffer);
	Raftpb__Snapshot *copy = raftpb__snapshot__unpack(NULL, size, buffer);
	free(buffer);
	if (!copy)
		alloc_failed(size); /* the bytes were just packed from a valid message: only memory can fail */
	return copy;
}

/* ---- roles ---- */

static void abort_leader_transfer(raft_t *r)
{
	r->lead_transferee = RAFT_NONE;
}

/* The voter of the current configuration with the longest matching log, other than us. */
static uint64_t best_transferee(const raft_t *r)
{
	uint64_t best = RAFT_NONE, best_match = 0;
	for (size_t k = 0; k < r->tracker.progress_count; k++) {
		const struct progress *progress = &r->tracker.progress[k];
		if (progress->id == r->id || !tracker_config_is_voter(&r->tracker.config, progress->id))
			continue;
		if (best == RAFT_NONE || progress->match > best_match) {
			best = progress->id;
			best_match = progress->match;
		}
	}
	return best;
}

static int transfer_leadership(raft_t *r, uint64_t transferee);

/* Thesis §4.2.2: a leader removed from the configuration steps down once the change is committed. If it
 * stopped at once, the others might never learn that the change committed (the commit index travels with
 * the leader's messages) and, still in the joint configuration, would need our vote. So it hands over:
 * it keeps replicating and transfers leadership to the most caught-up voter, again each election
 * timeout, until a newer term makes it a follower. */
static void hand_over(raft_t *r)
{
	uint64_t transferee = best_transferee(r);
	if (transferee == RAFT_NONE) {
		raft_become_follower(r, r->term, RAFT_NONE);
		return;
	}
	r->handing_over = true;
	abort_leader_transfer(r);
	transfer_leadership(r, transferee);
}

static void reset(raft_t *r, uint64_t term)
{
	if (r->term != term) {
		r->term = term;
		r->vote = RAFT_NONE;
	}
	r->leader = RAFT_NONE;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	raft_reset_randomized_election_timeout(r);
	abort_leader_transfer(r);
	tracker_reset_votes(&r->tracker);
	uint64_t last = log_last_index(&r->log);
	for (size_t k = 0; k < r->tracker.progress_count; k++) {
		struct progress *progress = &r->tracker.progress[k];
		bool is_learner = progress->is_learner;
		uint64_t id = progress->id;
		progress_free(progress);
		progress_init(progress, id, last + 1, r->config.max_inflight_msgs, r->config.max_inflight_bytes,
		              is_learner);
		if (id == r->id)
			progress->match = r->log.persisted; /* our own entries count only once durable */
	}
	r->pending_conf_index = 0;
	r->log.uncommitted_bytes = 0;
	r->handing_over = false;
	r->campaign_after_apply = false;
	read_only_reset(&r->read_only);
}

void raft_become_follower(raft_t *r, uint64_t term, uint64_t leader)
{
	reset(r, term);
	r->leader = leader;
	r->role = RAFT_FOLLOWER;
}

void raft_become_candidate(raft_t *r)
{
	reset(r, r->term + 1);
	r->vote = r->id;
	r->role = RAFT_CANDIDATE;
	r->counters.elections_started++;
}

void raft_become_pre_candidate(raft_t *r)
{
	/* Neither the term nor the vote changes: a PreVote that fails leaves no trace (thesis §9.6). */
	tracker_reset_votes(&r->tracker);
	r->leader = RAFT_NONE;
	r->role = RAFT_PRE_CANDIDATE;
	r->counters.elections_started++;
}

void raft_become_leader(raft_t *r)
{
	reset(r, r->term);
	r->leader = r->id;
	r->role = RAFT_LEADER;
	struct progress *self = tracker_progress(&r->tracker, r->id);
	if (self) {
		progress_become_replicate(self);
		self->recent_active = true;
	}
	/* No configuration change until everything from earlier terms is applied: the change would be
	 * checked against a configuration that is about to change. */
	r->pending_conf_index = log_last_index(&r->log);
	/* §8 / thesis §6.4: an empty entry of the new term commits every earlier entry and lets ReadIndex
	 * learn the commit index. */
	struct raft_buffer empty = {NULL, 0};
	int type = RAFT_ENTRY_NORMAL;
	raft_append_local(r, &empty, &type, 1, NULL);
}

int raft_append_local(raft_t *r, const struct raft_buffer *buffers, const int *types, size_t count,
                      uint64_t *first_index_out)
{
	uint64_t bytes = 0;
	for (size_t k = 0; k < count; k++)
		bytes += buffers[k].length;
	if (r->config.max_uncommitted_entries_size && r->log.uncommitted_bytes > 0 &&
	    r->log.uncommitted_bytes + bytes > r->config.max_uncommitted_entries_size)
		return RAFT_ERR_TOO_LARGE;
	uint64_t first = log_last_index(&r->log) + 1;
	for (size_t k = 0; k < count; k++)
		log_append(&r->log, r->term, types ? types[k] : RAFT_ENTRY_NORMAL, buffers[k].data, buffers[k].length);
	r->log.uncommitted_bytes += bytes;
	if (first_index_out)
		*first_index_out = first;
	/* Followers get the new entries at once (pipelined); our own copy counts once persisted. */
	replication_broadcast_append(r);
	return RAFT_OK;
}

/* ---- construction ---- */

void raft_config_defaults(struct raft_config *config, uint64_t id)
{
	memset(config, 0, sizeof(*config));
	config->id = id;
	config->election_tick = 10;
	config->heartbeat_tick = 1;
	config->max_size_per_msg = 1024 * 1024;
	config->max_inflight_msgs = 256;
	config->check_quorum = true;
	config->pre_vote = true;
	config->read_only_option = RAFT_READ_ONLY_SAFE;
	config->random_seed = id;
}

static int validate_config(const struct raft_config *config, char *err, size_t errlen)
{
	if (config->id == RAFT_NONE) {
		snprintf(err, errlen, "raft config: id must not be 0");
		return RAFT_ERR_INVALID_ARGUMENT;
	}
	if (config->heartbeat_tick <= 0) {
		snprintf(err, errlen, "raft config: heartbeat tick must be greater than 0");
		return RAFT_ERR_INVALID_ARGUMENT;
	}
	if (config->election_tick <= config->heartbeat_tick) {
		snprintf(err, errlen, "raft config: election tick (%d) must be greater than heartbeat tick (%d)",
		         config->election_tick, config->heartbeat_tick);
		return RAFT_ERR_INVALID_ARGUMENT;
	}
	if (config->max_inflight_msgs <= 0) {
		snprintf(err, errlen, "raft config: max inflight messages must be greater than 0");
		return RAFT_ERR_INVALID_ARGUMENT;
	}
	if (config->read_only_option == RAFT_READ_ONLY_LEASE_BASED && !config->check_quorum) {
		snprintf(err, errlen, "raft config: lease-based reads need check_quorum");
		return RAFT_ERR_INVALID_ARGUMENT;
	}
	return RAFT_OK;
}

raft_t *raft_new(const struct raft_config *config, const struct raft_restore *restore, char *err,
                 size_t errlen)
{
	if (validate_config(config, err, errlen) != RAFT_OK)
		return NULL;
	raft_t *r = xcalloc(1, sizeof(*r));
	r->config = *config;
	r->id = config->id;
	r->random_state = config->random_seed ^ (config->id * 0x2545f4914f6cdd1dULL);

	const Raftpb__Snapshot *snapshot = restore ? restore->snapshot : NULL;
	if (snapshot) {
		if (!snapshot->metadata || !snapshot->metadata->conf_state) {
			snprintf(err, errlen, "raft restore: snapshot without metadata");
			goto fail;
		}
		r->log.boundary_index = snapshot->metadata->index;
		r->log.boundary_term = snapshot->metadata->term;
		r->log.committed = snapshot->metadata->index;
		r->log.applied = snapshot->metadata->index;
		if (conf_change_restore(r, snapshot->metadata->conf_state, &r->tracker) != RAFT_OK) {
			snprintf(err, errlen, "raft restore: snapshot at %llu has an invalid configuration",
			         (unsigned long long)snapshot->metadata->index);
			goto fail;
		}
		r->snapshot = raft_copy_snapshot(snapshot);
	}
	size_t count = restore ? restore->entries_count : 0;
	for (size_t k = 0; k < count; k++) {
		const Raftpb__Entry *entry = restore->entries[k];
		uint64_t expected = r->log.boundary_index + 1 + k;
		if (!entry || entry->index != expected || entry->term < log_last_term(&r->log)) {
			snprintf(err, errlen, "raft restore: entry %zu has index %llu term %llu, expected index %llu "
			         "and a term of at least %llu", k, entry ? (unsigned long long)entry->index : 0ULL,
			         entry ? (unsigned long long)entry->term : 0ULL, (unsigned long long)expected,
			         (unsigned long long)log_last_term(&r->log));
			goto fail;
		}
		log_append(&r->log, entry->term, entry->type, entry->data.data, entry->data.len);
	}
	uint64_t last = log_last_index(&r->log);
	r->log.persisted = last;
	r->log.handed_next = last + 1;
	if (restore && restore->hard_state) {
		const Raftpb__HardState *hard_state = restore->hard_state;
		if (hard_state->commit > last) {
			snprintf(err, errlen, "raft restore: commit %llu is beyond the last index %llu",
			         (unsigned long long)hard_state->commit, (unsigned long long)last);
			goto fail;
		}
		r->term = hard_state->term;
		r->vote = hard_state->vote;
		if (hard_state->commit > r->log.committed)
			r->log.committed = hard_state->commit;
	}
	if (config->applied > r->log.committed) {
		snprintf(err, errlen, "raft restore: applied index %llu is beyond the commit index %llu",
		         (unsigned long long)config->applied, (unsigned long long)r->log.committed);
		goto fail;
	}
	if (config->applied > r->log.applied)
		r->log.applied = config->applied;
	/* Conf changes up to the applied index took effect before the restart; later ones take effect
	 * again when they are delivered. */
	for (uint64_t index = r->log.boundary_index + 1; index <= r->log.applied; index++) {
		const struct log_entry *entry = log_entry_at(&r->log, index);
		if (entry->type != RAFT_ENTRY_NORMAL)
			conf_change_apply_entry(r, index, entry->type, entry->data, entry->length);
	}
	uint64_t term = r->term;
	raft_become_follower(r, term, RAFT_NONE);
	r->previous_hard_state.term = r->term;
	r->previous_hard_state.vote = r->vote;
	r->previous_hard_state.commit = r->log.committed;
	r->previous_role = RAFT_FOLLOWER;
	return r;
fail:
	raft_free(r);
	return NULL;
}

void raft_free(raft_t *r)
{
	if (!r)
		return;
	log_free(&r->log);
	tracker_free(&r->tracker);
	read_only_free(&r->read_only);
	if (r->snapshot)
		raftpb__snapshot__free_unpacked(r->snapshot, NULL);
	free(r->messages.items);
	free(r->messages_after_persist.items);
	free(r->read_states);
	arena_free(&r->arena);
	free(r);
}

int raft_bootstrap_members(raft_t *r, const uint64_t *voters, const struct raft_buffer *contexts, size_t count)
{
	if (count == 0 || log_last_index(&r->log) != 0 || r->term != 0)
		return RAFT_ERR_INVALID_ARGUMENT;
	for (size_t k = 0; k < count; k++)
		if (voters[k] == RAFT_NONE)
			return RAFT_ERR_INVALID_ARGUMENT;
	raft_become_follower(r, 1, RAFT_NONE);
	for (size_t k = 0; k < count; k++) {
		Raftpb__ConfChange change = RAFTPB__CONF_CHANGE__INIT;
		change.type = RAFT_CC_ADD_NODE;
		change.node_id = voters[k];
		if (contexts) {
			change.context.data = (uint8_t *)contexts[k].data;
			change.context.len = contexts[k].length;
		}
		size_t length = raftpb__conf_change__get_packed_size(&change);
		uint8_t *buffer = xmalloc(length);
		raftpb__conf_change__pack(&change, buffer);
		log_append(&r->log, 1, RAFT_ENTRY_CONF_CHANGE, buffer, length);
		/* Every initial member applies the same changes, so they agree before any message. */
		conf_change_apply_entry(r, k + 1, RAFT_ENTRY_CONF_CHANGE, buffer, length);
		free(buffer);
	}
	r->log.committed = count;
	return RAFT_OK;
}

int raft_bootstrap(raft_t *r, const uint64_t *voters, size_t count)
{
	return raft_bootstrap_members(r, voters, NULL, count);
}

/* ---- configuration switch ---- */

void raft_switch_tracker(raft_t *r, struct tracker *next)
{
	tracker_free(&r->tracker);
	r->tracker = *next;
	const struct progress *self = tracker_progress_const(&r->tracker, r->id);
	r->is_learner = self && self->is_learner;
	if (r->role == RAFT_LEADER && (!self || self->is_learner)) {
		/* Removed or demoted: hand leadership over, then step down (see hand_over). */
		hand_over(r);
		return;
	}
	if (r->role != RAFT_LEADER || r->tracker.config.voters.count == 0)
		return;
	if (r->lead_transferee != RAFT_NONE && !tracker_config_is_voter(&r->tracker.config, r->lead_transferee)) {
		abort_leader_transfer(r);
		if (r->handing_over)
			hand_over(r);
	}
	/* The quorum changed: the commit index may move, and new members need their first append. */
	if (replication_maybe_commit(r)) {
		read_index_release_waiting(r);
		replication_broadcast_append(r);
	} else {
		for (size_t k = 0; k < r->tracker.progress_count; k++)
			if (r->tracker.progress[k].id != r->id)
				replication_send_append(r, r->tracker.progress[k].id, false);
	}
}

/* ---- stepping ---- */

static bool is_local_type(int type)
{
	return type == RAFT_MSG_HUP || type == RAFT_MSG_BEAT || type == RAFT_MSG_UNREACHABLE ||
	       type == RAFT_MSG_SNAP_STATUS || type == RAFT_MSG_CHECK_QUORUM;
}

static int propose_forwarded(raft_t *r, const Raftpb__Message *message)
{
	if (message->n_entries == 0)
		return raft_reject(r, RAFT_ERR_MALFORMED);
	if (r->lead_transferee != RAFT_NONE)
		return raft_reject(r, RAFT_ERR_TRANSFER_IN_PROGRESS);
	if (!tracker_progress(&r->tracker, r->id))
		return raft_reject(r, RAFT_ERR_PROPOSAL_DROPPED);
	struct raft_buffer on_stack[16];
	struct raft_buffer *buffers =
	    message->n_entries <= 16 ? on_stack : xmalloc(message->n_entries * sizeof(struct raft_buffer));
	for (size_t k = 0; k < message->n_entries; k++) {
		/* Membership changes are proposed on the leader only, where they are validated. */
		if (message->entries[k]->type != RAFT_ENTRY_NORMAL) {
			if (buffers != on_stack)
				free(buffers);
			return raft_reject(r, RAFT_ERR_CONF_CHANGE_INVALID);
		}
		buffers[k].data = message->entries[k]->data.data;
		buffers[k].length = message->entries[k]->data.len;
	}
	int rc = raft_append_local(r, buffers, NULL, message->n_entries, NULL);
	if (buffers != on_stack)
		free(buffers);
	return rc == RAFT_OK ? RAFT_OK : raft_reject(r, rc);
}

static int transfer_leadership(raft_t *r, uint64_t transferee)
{
	struct progress *progress = tracker_progress(&r->tracker, transferee);
	if (!progress)
		return raft_reject(r, RAFT_ERR_UNKNOWN_SENDER);
	if (progress->is_learner)
		return raft_reject(r, RAFT_ERR_IGNORED); /* a learner cannot lead */
	if (r->lead_transferee != RAFT_NONE) {
		if (r->lead_transferee == transferee)
			return RAFT_OK; /* already under way */
		abort_leader_transfer(r);
	}
	if (transferee == r->id)
		return RAFT_OK;
	/* Thesis §3.10: the transfer must finish within an election timeout or is abandoned. */
	r->election_elapsed = 0;
	r->lead_transferee = transferee;
	if (progress->match == log_last_index(&r->log))
		raft_send(r, raft_new_message(r, RAFT_MSG_TIMEOUT_NOW, transferee));
	else
		replication_send_append(r, transferee, true);
	return RAFT_OK;
}

static int step_leader(raft_t *r, const Raftpb__Message *message)
{
	switch (message->type) {
	case RAFT_MSG_BEAT: {
		/* Each heartbeat round also confirms the newest pending read (etcd does the same): if the
		 * round sent with the request was lost, the next one answers it. */
		size_t length = 0;
		const uint8_t *context = read_only_last_context(&r->read_only, &length);
		replication_broadcast_heartbeat(r, context, length);
		return RAFT_OK;
	}
	case RAFT_MSG_CHECK_QUORUM:
		/* A leader that cannot hear a quorum may be partitioned away: step down so the rest elect. */
		if (!tracker_quorum_active(&r->tracker))
			raft_become_follower(r, r->term, RAFT_NONE);
		for (size_t k = 0; k < r->tracker.progress_count; k++)
			r->tracker.progress[k].recent_active = r->tracker.progress[k].id == r->id;
		return RAFT_OK;
	case RAFT_MSG_PROP:
		return propose_forwarded(r, message);
	case RAFT_MSG_READ_INDEX:
		return read_index_handle(r, message);
	case RAFT_MSG_APP_RESP:
		return replication_handle_append_response(r, message);
	case RAFT_MSG_HEARTBEAT_RESP:
		return replication_handle_heartbeat_response(r, message);
	case RAFT_MSG_SNAP_STATUS:
		return replication_handle_snapshot_status(r, message);
	case RAFT_MSG_UNREACHABLE:
		return replication_handle_unreachable(r, message);
	case RAFT_MSG_TRANSFER_LEADER:
		return transfer_leadership(r, message->from);
	case RAFT_MSG_APP:
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_SNAP:
		/* Another leader in our own term would break Election Safety; never from a correct peer. */
		return raft_reject(r, RAFT_ERR_BAD_INDEX);
	default:
		return raft_reject(r, RAFT_ERR_IGNORED);
	}
}

static int step_candidate(raft_t *r, const Raftpb__Message *message)
{
	switch (message->type) {
	case RAFT_MSG_PROP:
		r->counters.proposals_dropped++;
		return raft_reject(r, RAFT_ERR_NO_LEADER);
	case RAFT_MSG_APP:
		/* Figure 2: AppendEntries from the new leader of this term: become its follower. */
		raft_become_follower(r, message->term, message->from);
		return replication_handle_append(r, message);
	case RAFT_MSG_HEARTBEAT:
		raft_become_follower(r, message->term, message->from);
		return replication_handle_heartbeat(r, message);
	case RAFT_MSG_SNAP:
		raft_become_follower(r, message->term, message->from);
		return replication_handle_snapshot(r, message);
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PRE_VOTE_RESP:
		return election_handle_vote_response(r, message);
	default:
		return raft_reject(r, RAFT_ERR_IGNORED);
	}
}

static int step_follower(raft_t *r, const Raftpb__Message *message)
{
	switch (message->type) {
	case RAFT_MSG_PROP:
		if (r->leader == RAFT_NONE) {
			r->counters.proposals_dropped++;
			return raft_reject(r, RAFT_ERR_NO_LEADER);
		}
		if (r->config.disable_proposal_forwarding) {
			r->counters.proposals_dropped++;
			return raft_reject(r, RAFT_ERR_PROPOSAL_DROPPED);
		}
		{
			/* Forward a copy: the caller's message is only borrowed. */
			Raftpb__Message *forward = raft_new_message(r, RAFT_MSG_PROP, r->leader);
			size_t count = message->n_entries;
			forward->entries = arena_alloc(&r->arena, count * sizeof(Raftpb__Entry *));
			for (size_t k = 0; k < count; k++) {
				Raftpb__Entry *entry = arena_alloc(&r->arena, sizeof(*entry));
				raftpb__entry__init(entry);
				entry->type = message->entries[k]->type;
				entry->data.data = arena_memdup(&r->arena, message->entries[k]->data.data,
				                                message->entries[k]->data.len);
				entry->data.len = message->entries[k]->data.len;
				forward->entries[k] = entry;
			}
			forward->n_entries = count;
			raft_send(r, forward);
		}
		return RAFT_OK;
	case RAFT_MSG_APP:
		r->election_elapsed = 0;
		r->leader = message->from;
		return replication_handle_append(r, message);
	case RAFT_MSG_HEARTBEAT:
		r->election_elapsed = 0;
		r->leader = message->from;
		return replication_handle_heartbeat(r, message);
	case RAFT_MSG_SNAP:
		r->election_elapsed = 0;
		r->leader = message->from;
		return replication_handle_snapshot(r, message);
	case RAFT_MSG_TRANSFER_LEADER:
	case RAFT_MSG_READ_INDEX:
		if (r->leader == RAFT_NONE)
			return raft_reject(r, RAFT_ERR_NO_LEADER);
		{
			Raftpb__Message *forward = raft_new_message(r, message->type, r->leader);
			forward->from = message->from; /* the transferee, or the member that asked to read */
			if (message->context.len) {
				forward->context.data = arena_memdup(&r->arena, message->context.data, message->context.len);
				forward->context.len = message->context.len;
			}
			raft_send(r, forward);
		}
		return RAFT_OK;
	case RAFT_MSG_TIMEOUT_NOW:
		/* The leader hands over: campaign at once, even before our election timeout (thesis §3.10). A
		 * leader that removed itself sends this as soon as it applied the change, often before we have
		 * applied it; then we campaign right after applying (raft_advance). */
		if (raft_promotable(r) && raft_has_unapplied_conf_changes(r)) {
			r->campaign_after_apply = true;
			return RAFT_OK;
		}
		return election_hup(r, true);
	case RAFT_MSG_READ_INDEX_RESP:
		return read_index_handle_response(r, message);
	default:
		return raft_reject(r, RAFT_ERR_IGNORED);
	}
}

static int step_internal(raft_t *r, const Raftpb__Message *message)
{
	int type = message->type;
	if (message->term == 0) {
		/* Local input or a forwarded request: not bound to a term. */
	} else if (message->term > r->term) {
		if (type == RAFT_MSG_VOTE || type == RAFT_MSG_PRE_VOTE) {
			/* Thesis §4.2.3: within the lease of a leader we heard from, ignore vote requests, so a
			 * member rejoining a healthy cluster cannot disrupt it. A transfer overrides the lease. */
			bool in_lease = r->config.check_quorum && r->leader != RAFT_NONE &&
			                r->election_elapsed < r->config.election_tick;
			if (in_lease && !election_is_transfer_context(message))
				return raft_reject(r, RAFT_ERR_IGNORED);
		}
		if (type == RAFT_MSG_PRE_VOTE) {
			/* Never change our term in response to a PreVote. */
		} else if (type == RAFT_MSG_PRE_VOTE_RESP && !message->reject) {
			/* A granted PreVote carries the term we asked with; ours moves only if we win. */
		} else {
			/* Figure 2: a higher term makes us a follower of that term. */
			bool from_leader = type == RAFT_MSG_APP || type == RAFT_MSG_HEARTBEAT || type == RAFT_MSG_SNAP;
			raft_become_follower(r, message->term, from_leader ? message->from : RAFT_NONE);
		}
	} else if (message->term < r->term) {
		if (type == RAFT_MSG_HEARTBEAT || type == RAFT_MSG_APP) {
			/* A stale leader (after a partition, or a removed leader that handed over and is no
			 * longer contacted) would never learn our term from a dropped message; answer so that it
			 * steps down. Safe in every mode: learning a newer term is always allowed. */
			raft_send(r, raft_new_message(r, RAFT_MSG_APP_RESP, message->from));
		} else if (type == RAFT_MSG_PRE_VOTE || type == RAFT_MSG_VOTE) {
			/* Figure 2, RequestVote: reply false with our term, so a candidate behind us in term moves
			 * up instead of asking in vain (a member whose term ran ahead while it could not win would
			 * otherwise ignore the one candidate that can). */
			Raftpb__Message *response = raft_new_message(
			    r, type == RAFT_MSG_VOTE ? RAFT_MSG_VOTE_RESP : RAFT_MSG_PRE_VOTE_RESP, message->from);
			response->term = r->term;
			response->reject = true;
			election_attach_commit(r, response);
			raft_send(r, response);
		}
		return raft_reject(r, RAFT_ERR_STALE_TERM);
	}

	switch (type) {
	case RAFT_MSG_HUP:
		return election_hup(r, false);
	case RAFT_MSG_VOTE:
	case RAFT_MSG_PRE_VOTE:
		return election_handle_vote_request(r, message);
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PRE_VOTE_RESP:
		if (message->reject)
			election_learn_commit(r, message);
		break;
	default:
		break;
	}
	switch (r->role) {
	case RAFT_LEADER:
		return step_leader(r, message);
	case RAFT_CANDIDATE:
	case RAFT_PRE_CANDIDATE:
		return step_candidate(r, message);
	case RAFT_FOLLOWER:
		return step_follower(r, message);
	}
	return RAFT_ERR_IGNORED;
}

int raft_step(raft_t *r, const Raftpb__Message *message)
{
	r->counters.messages_stepped++;
	if (!message)
		return raft_reject(r, RAFT_ERR_MALFORMED);
	if ((unsigned)message->type > RAFT_MSG_PRE_VOTE_RESP)
		return raft_reject(r, RAFT_ERR_UNKNOWN_TYPE);
	if (is_local_type(message->type))
		return raft_reject(r, RAFT_ERR_LOCAL_TYPE);
	if (message->from == RAFT_NONE || message->to != r->id)
		return raft_reject(r, RAFT_ERR_MALFORMED);
	for (size_t k = 0; k < message->n_entries; k++)
		if (!message->entries[k])
			return raft_reject(r, RAFT_ERR_MALFORMED);
	/* No cluster lives through 2^63 terms; such a term is forged or corrupt, and adopting it would let
	 * the next elections wrap the term around to 0 (Figure 2: currentTerm only grows). */
	if (message->term >= RAFT_MAX_TERM || message->log_term >= RAFT_MAX_TERM)
		return raft_reject(r, RAFT_ERR_BAD_INDEX);
	/* Only forwarded requests travel without a term. */
	if (message->term == 0 && message->type != RAFT_MSG_PROP && message->type != RAFT_MSG_READ_INDEX &&
	    message->type != RAFT_MSG_TRANSFER_LEADER)
		return raft_reject(r, RAFT_ERR_MALFORMED);
	/* Responses and reports concern members we track; from anyone else they are noise. */
	switch (message->type) {
	case RAFT_MSG_APP_RESP:
	case RAFT_MSG_HEARTBEAT_RESP:
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PRE_VOTE_RESP:
		if (!tracker_progress(&r->tracker, message->from) && message->term <= r->term)
			return raft_reject(r, RAFT_ERR_UNKNOWN_SENDER);
		break;
	default:
		break;
	}
	return step_internal(r, message);
}

int raft_step_bytes(raft_t *r, const uint8_t *bytes, size_t length)
{
	Raftpb__Message *message = raftpb__message__unpack(NULL, length, bytes);
	if (!message) {
		r->counters.messages_stepped++;
		return raft_reject(r, RAFT_ERR_MALFORMED);
	}
	int rc = raft_step(r, message);
	raftpb__message__free_unpacked(message, NULL);
	return rc;
}

static int step_local(raft_t *r, int type, uint64_t from)
{
	Raftpb__Message message = RAFTPB__MESSAGE__INIT;
	message.type = type;
	message.from = from;
	message.to = r->id;
	return step_internal(r, &message);
}

void raft_tick(raft_t *r)
{
	if (r->role != RAFT_LEADER) {
		r->election_elapsed++;
		if (raft_promotable(r) && r->election_elapsed >= r->randomized_election_timeout) {
			r->election_elapsed = 0;
			step_local(r, RAFT_MSG_HUP, r->id);
		}
		return;
	}
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->election_elapsed >= r->config.election_tick) {
		r->election_elapsed = 0;
		if (r->config.check_quorum)
			step_local(r, RAFT_MSG_CHECK_QUORUM, r->id);
		if (r->role == RAFT_LEADER && r->handing_over)
			hand_over(r); /* the target did not take over in time: try again, maybe another */
		else if (r->role == RAFT_LEADER && r->lead_transferee != RAFT_NONE)
			abort_leader_transfer(r); /* the target did not take over in time */
	}
	if (r->role != RAFT_LEADER)
		return;
	if (r->heartbeat_elapsed >= r->config.heartbeat_tick) {
		r->heartbeat_elapsed = 0;
		step_local(r, RAFT_MSG_BEAT, r->id);
	}
}

int raft_campaign(raft_t *r)
{
	return step_local(r, RAFT_MSG_HUP, r->id);
}

int raft_propose_batch(raft_t *r, const struct raft_buffer *buffers, size_t count, uint64_t *first_index_out)
{
	if (first_index_out)
		*first_index_out = 0;
	if (count == 0)
		return RAFT_ERR_INVALID_ARGUMENT;
	if (r->role != RAFT_LEADER) {
		/* Forwarded through the follower path, which copies the data. */
		Raftpb__Message message = RAFTPB__MESSAGE__INIT;
		Raftpb__Entry on_stack[16];
		Raftpb__Entry *on_stack_pointers[16];
		Raftpb__Entry *entries = count <= 16 ? on_stack : xmalloc(count * sizeof(Raftpb__Entry));
		Raftpb__Entry **pointers = count <= 16 ? on_stack_pointers : xmalloc(count * sizeof(Raftpb__Entry *));
		for (size_t k = 0; k < count; k++) {
			raftpb__entry__init(&entries[k]);
			entries[k].data.data = (uint8_t *)buffers[k].data;
			entries[k].data.len = buffers[k].length;
			pointers[k] = &entries[k];
		}
		message.type = RAFT_MSG_PROP;
		message.from = r->id;
		message.to = r->id;
		message.entries = pointers;
		message.n_entries = count;
		int rc = r->role == RAFT_FOLLOWER ? step_follower(r, &message) : step_candidate(r, &message);
		if (entries != on_stack)
			free(entries);
		if (pointers != on_stack_pointers)
			free(pointers);
		return rc;
	}
	if (r->lead_transferee != RAFT_NONE) {
		r->counters.proposals_dropped++;
		return RAFT_ERR_TRANSFER_IN_PROGRESS;
	}
	if (!tracker_progress(&r->tracker, r->id)) {
		r->counters.proposals_dropped++;
		return RAFT_ERR_PROPOSAL_DROPPED; /* removed: about to step down */
	}
	int rc = raft_append_local(r, buffers, NULL, count, first_index_out);
	if (rc != RAFT_OK)
		r->counters.proposals_dropped++;
	return rc;
}

int raft_propose(raft_t *r, const void *data, size_t length, uint64_t *index_out)
{
	struct raft_buffer buffer = {data, length};
	return raft_propose_batch(r, &buffer, 1, index_out);
}

static int propose_conf_change_entry(raft_t *r, int entry_type, const uint8_t *data, size_t length,
                                     uint64_t *index_out)
{
	if (index_out)
		*index_out = 0;
	if (r->role != RAFT_LEADER)
		return RAFT_ERR_NOT_LEADER;
	if (r->lead_transferee != RAFT_NONE)
		return RAFT_ERR_TRANSFER_IN_PROGRESS;
	if (r->pending_conf_index > r->log.applied)
		return RAFT_ERR_CONF_CHANGE_PENDING;
	struct conf_change_decoded decoded;
	int rc = conf_change_decode(entry_type, data, length, &decoded);
	if (rc != RAFT_OK)
		return RAFT_ERR_CONF_CHANGE_INVALID;
	/* Validate against the configuration it will apply to: with one change pending at a time, that
	 * is the current one. */
	struct tracker next;
	char reason[128];
	rc = conf_change_apply(r, &r->tracker, &decoded.request, &next, reason, sizeof(reason));
	conf_change_decoded_free(&decoded);
	if (rc != RAFT_OK)
		return RAFT_ERR_CONF_CHANGE_INVALID;
	tracker_free(&next);
	struct raft_buffer buffer = {data, length};
	uint64_t index = 0;
	rc = raft_append_local(r, &buffer, &entry_type, 1, &index);
	if (rc != RAFT_OK)
		return rc;
	r->pending_conf_index = index;
	if (index_out)
		*index_out = index;
	return RAFT_OK;
}

int raft_propose_conf_change(raft_t *r, const Raftpb__ConfChange *change, uint64_t *index_out)
{
	size_t length = raftpb__conf_change__get_packed_size(change);
	uint8_t *data = xmalloc(length);
	raftpb__conf_change__pack(change, data);
	int rc = propose_conf_change_entry(r, RAFT_ENTRY_CONF_CHANGE, data, length, index_out);
	free(data);
	return rc;
}

int raft_propose_conf_change_v2(raft_t *r, const Raftpb__ConfChangeV2 *change, uint64_t *index_out)
{
	size_t length = raftpb__conf_change_v2__get_packed_size(change);
	uint8_t *data = xmalloc(length);
	raftpb__conf_change_v2__pack(change, data);
	int rc = propose_conf_change_entry(r, RAFT_ENTRY_CONF_CHANGE_V2, data, length, index_out);
	free(data);
	return rc;
}

int raft_transfer_leadership(raft_t *r, uint64_t transferee)
{
	if (transferee == RAFT_NONE)
		return RAFT_ERR_INVALID_ARGUMENT;
	if (r->role == RAFT_LEADER)
		return transfer_leadership(r, transferee);
	if (r->leader == RAFT_NONE)
		return RAFT_ERR_NO_LEADER;
	Raftpb__Message message = RAFTPB__MESSAGE__INIT;
	message.type = RAFT_MSG_TRANSFER_LEADER;
	message.from = transferee;
	message.to = r->id;
	return step_follower(r, &message);
}

int raft_read_index(raft_t *r, const void *context, size_t length)
{
	if (length == 0)
		return RAFT_ERR_INVALID_ARGUMENT; /* the context is how the answer is matched */
	Raftpb__Message message = RAFTPB__MESSAGE__INIT;
	message.type = RAFT_MSG_READ_INDEX;
	message.from = r->id;
	message.to = r->id;
	message.context.data = (uint8_t *)context;
	message.context.len = length;
	switch (r->role) {
	case RAFT_LEADER:
		return read_index_handle(r, &message);
	case RAFT_FOLLOWER:
		return step_follower(r, &message);
	default:
		return RAFT_ERR_NO_LEADER;
	}
}

void raft_report_unreachable(raft_t *r, uint64_t id)
{
	if (r->role == RAFT_LEADER)
		step_local(r, RAFT_MSG_UNREACHABLE, id);
}

void raft_report_snapshot(raft_t *r, uint64_t id, bool failed)
{
	if (r->role != RAFT_LEADER)
		return;
	Raftpb__Message message = RAFTPB__MESSAGE__INIT;
	message.type = RAFT_MSG_SNAP_STATUS;
	message.from = id;
	message.to = r->id;
	message.reject = failed;
	step_internal(r, &message);
}

void raft_persisted(raft_t *r, uint64_t index, uint64_t term)
{
	if (index <= r->log.persisted || index >= r->log.handed_next)
		return;
	if (log_term(&r->log, index) != term)
		return; /* the suffix was replaced after this write was issued */
	r->log.persisted = index;
	if (r->role != RAFT_LEADER)
		return;
	struct progress *self = tracker_progress(&r->tracker, r->id);
	if (self && progress_maybe_update(self, index) && replication_maybe_commit(r)) {
		read_index_release_waiting(r);
		replication_broadcast_append(r);
	}
}

int raft_create_snapshot(raft_t *r, uint64_t index, const Raftpb__ConfState *conf_state, const void *data,
                         size_t length)
{
	if (index == 0 || index > r->log.applied || index < r->log.boundary_index)
		return RAFT_ERR_INVALID_ARGUMENT;
	if (r->snapshot && r->snapshot->metadata && r->snapshot->metadata->index >= index)
		return RAFT_ERR_SNAPSHOT_OUT_OF_DATE;
	Raftpb__ConfState current;
	struct arena scratch = {0};
	if (!conf_state) {
		conf_state_from_membership(&scratch, &r->tracker.config, &current);
		conf_state = &current;
	}
	Raftpb__SnapshotMetadata metadata = RAFTPB__SNAPSHOT_METADATA__INIT;
	metadata.index = index;
	metadata.term = log_term(&r->log, index);
	metadata.conf_state = (Raftpb__ConfState *)conf_state;
	Raftpb__Snapshot snapshot = RAFTPB__SNAPSHOT__INIT;
	snapshot.metadata = &metadata;
	snapshot.data.data = (uint8_t *)data;
	snapshot.data.len = length;
	Raftpb__Snapshot *copy = raft_copy_snapshot(&snapshot);
	arena_free(&scratch);
	if (r->snapshot)
		raftpb__snapshot__free_unpacked(r->snapshot, NULL);
	r->snapshot = copy;
	return RAFT_OK;
}

int raft_compact(raft_t *r, uint64_t index)
{
	if (index <= r->log.boundary_index)
		return RAFT_ERR_COMPACTED;
	if (!r->snapshot || !r->snapshot->metadata || index > r->snapshot->metadata->index ||
	    index > r->log.persisted || index > r->log.applied)
		return RAFT_ERR_UNAVAILABLE;
	log_compact(&r->log, index);
	return RAFT_OK;
}

/* ---- introspection ---- */

void raft_get_status(const raft_t *r, struct raft_status *status)
{
	memset(status, 0, sizeof(*status));
	status->id = r->id;
	status->term = r->term;
	status->vote = r->vote;
	status->commit = r->log.committed;
	status->applied = r->log.applied;
	status->persisted = r->log.persisted;
	status->first_index = log_first_index(&r->log);
	status->last_index = log_last_index(&r->log);
	status->leader = r->leader;
	status->lead_transferee = r->lead_transferee;
	status->role = r->role;
	status->joint = tracker_config_is_joint(&r->tracker.config);
	status->peers_count = r->role == RAFT_LEADER ? r->tracker.progress_count : 0;
}

size_t raft_get_progress(const raft_t *r, struct raft_peer_status *peers, size_t max)
{
	if (r->role != RAFT_LEADER)
		return 0;
	for (size_t k = 0; k < r->tracker.progress_count && k < max; k++) {
		const struct progress *progress = &r->tracker.progress[k];
		peers[k].id = progress->id;
		peers[k].match = progress->match;
		peers[k].next = progress->next;
		peers[k].state = progress->state;
		peers[k].is_learner = progress->is_learner;
		peers[k].recent_active = progress->recent_active;
	}
	return r->tracker.progress_count;
}

const struct raft_counters *raft_get_counters(const raft_t *r)
{
	return &r->counters;
}

void raft_get_conf(const raft_t *r, struct raft_conf_view *view)
{
	const struct tracker_config *config = &r->tracker.config;
	view->voters = config->voters.ids;
	view->voters_count = config->voters.count;
	view->voters_outgoing = config->voters_outgoing.ids;
	view->voters_outgoing_count = config->voters_outgoing.count;
	view->learners = config->learners.ids;
	view->learners_count = config->learners.count;
	view->learners_next = config->learners_next.ids;
	view->learners_next_count = config->learners_next.count;
	view->auto_leave = config->auto_leave;
}

uint64_t raft_term_at(const raft_t *r, uint64_t index)
{
	return log_term(&r->log, index);
}

int raft_copy_entries(const raft_t *r, uint64_t low, uint64_t high, Raftpb__Entry ***entries_out,
                      size_t *count_out)
{
	*entries_out = NULL;
	*count_out = 0;
	if (low <= r->log.boundary_index)
		return RAFT_ERR_COMPACTED;
	if (high > log_last_index(&r->log) + 1 || low > high)
		return RAFT_ERR_UNAVAILABLE;
	size_t count = (size_t)(high - low);
	Raftpb__Entry **entries = xcalloc(count ? count : 1, sizeof(Raftpb__Entry *));
	for (size_t k = 0; k < count; k++) {
		const struct log_entry *entry = log_entry_at(&r->log, low + k);
		Raftpb__Entry *copy = xmalloc(sizeof(*copy));
		raftpb__entry__init(copy);
		copy->type = entry->type;
		copy->term = entry->term;
		copy->index = low + k;
		copy->data.len = entry->length;
		copy->data.data = entry->length ? xmemdup(entry->data, entry->length) : NULL;
		entries[k] = copy;
	}
	*entries_out = entries;
	*count_out = count;
	return RAFT_OK;
}

void raft_free_entries(Raftpb__Entry **entries, size_t count)
{
	for (size_t k = 0; k < count; k++) {
		if (entries[k]) {
			free(entries[k]->data.data);
			free(entries[k]);
		}
	}
	free(entries);
}
