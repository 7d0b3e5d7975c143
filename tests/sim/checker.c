/* tests/sim/checker.c: the oracles and the safety properties, checked as the simulation runs.
 *
 * Oracles, kept over the whole run: the leader of every term; every committed index with its term, the
 * term in which it was first committed, its content and the application state after it; every (index,
 * term) that entered some member's log, with its content and the term before it; every read with what
 * was acknowledged when it was issued. Against them (Raft paper, Figure 3, and thesis §6.4):
 *   Election Safety      at most one leader per term;
 *   Log Matching         same index and term => same entry and same history (checked incrementally as
 *                        each Ready's entries arrive, by content and by the term before each entry, and
 *                        over whole logs periodically);
 *   Leader Completeness  a new leader of term T holds every entry committed in a term before T;
 *   Leader Append-Only   a leader only appends to its log within its term;
 *   State Machine Safety no two members apply different entries (or histories) at one index;
 *   commit durability    when a leader commits an index, a quorum of its configuration (both halves of a
 *                        joint one) holds that entry durably;
 *   ReadIndex            a read reflects every write acknowledged before it was issued, and its read
 *                        point was committed when it was answered;
 *   the Ready contract   vote grants and append acknowledgements leave only once durable, committed
 *                        entries are locally durable, hard state never goes back, no committed entry is
 *                        dropped from a member's log.
 * Every failure names the property and the details and stops the seed.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define ULL(x) ((unsigned long long)(x))

static void *grow(void *pointer, size_t *capacity, size_t needed, size_t element)
{
	if (needed <= *capacity) {
		return pointer;
	}
	size_t old = *capacity;
	size_t fresh = old ? old : 64;
	while (fresh < needed) {
		fresh *= 2;
	}
	uint8_t *result = realloc(pointer, fresh * element);
	if (result == NULL) {
		abort();
	}
	memset(result + old * element, 0, (fresh - old) * element);
	*capacity = fresh;
	return result;
}

void checker_init(struct sim_checker *checker)
{
	*checker = (struct sim_checker){0};
}

void checker_free(struct sim_checker *checker)
{
	for (size_t i = 0; i < checker->seen_capacity; i++) {
		free(checker->seen[i].items);
	}
	free(checker->seen);
	free(checker->leader_of_term);
	free(checker->committed);
	free(checker->reads);
	free(checker->config_ids);
	free(checker->conf_history);
	*checker = (struct sim_checker){0};
}

uint64_t entry_digest(uint64_t index, uint64_t term, int type, const void *data, size_t length)
{
	return sim_mix(sim_mix(index, term), sim_mix((uint64_t)type + 1, sim_hash_bytes(data, length)));
}

static struct sim_committed *committed_at(struct sim_checker *checker, uint64_t index)
{
	checker->committed = grow(checker->committed, &checker->committed_capacity, index + 1, sizeof(*checker->committed));
	return &checker->committed[index];
}

static void conf_change_committed(struct sim_checker *checker, uint64_t index);

static bool storage_holds(const struct sim_storage *storage, uint64_t index, uint64_t term)
{
	return index <= storage->snapshot.index || storage_term_at(storage, index) == term;
}

/* Counts the voters among ids whose durable log holds (index, term); true when they are a majority. */
static bool durable_majority(struct sim_cluster *cluster, const uint64_t *ids, size_t count, uint64_t index,
                             uint64_t term, char *who, size_t who_length)
{
	size_t holding = 0, used = 0;
	for (size_t i = 0; i < count; i++) {
		struct sim_member *voter = cluster_member_by_id(cluster, ids[i]);
		bool holds = voter != NULL && storage_holds(&voter->storage, index, term);
		holding += holds;
		if (used + 40 < who_length) {
			used += (size_t)snprintf(who + used, who_length - used, " %llu:%s", ULL(ids[i]), holds ? "yes" : "no");
		}
	}
	return holding * 2 > count;
}

static void check_leader_completeness(struct sim_cluster *cluster, struct sim_member *leader,
                                      const struct raft_status *status)
{
	struct sim_checker *checker = &cluster->checker;
	for (uint64_t index = status->first_index; index <= checker->commit_index; index++) {
		const struct sim_committed *record = &checker->committed[index];
		if (record->term == 0 || record->commit_term >= status->term) {
			continue; /* committed in this term or later: not owed to this leader */
		}
		uint64_t term = index <= status->last_index ? raft_term_at(leader->raft, index) : 0;
		if (term != record->term) {
			sim_fail(cluster, "Leader Completeness: member %llu became leader of term %llu without the entry at index "
			         "%llu (term %llu, committed in term %llu); its log has term %llu there (first %llu, last %llu)",
			         ULL(leader->id), ULL(status->term), ULL(index), ULL(record->term), ULL(record->commit_term),
			         ULL(term), ULL(status->first_index), ULL(status->last_index));
			return;
		}
	}
}

static void observe_commit(struct sim_cluster *cluster, struct sim_member *member, const struct raft_status *status)
{
	struct sim_checker *checker = &cluster->checker;
	if (status->commit <= member->seen_commit) {
		member->seen_commit = status->commit;
		return;
	}
	uint64_t old_global = checker->commit_index;
	uint64_t from = member->seen_commit + 1;
	if (from < status->first_index) {
		from = status->first_index; /* compacted: a snapshot, checked when it was installed */
	}
	committed_at(checker, status->commit);
	for (uint64_t index = from; index <= status->commit; index++) {
		uint64_t term = raft_term_at(member->raft, index);
		struct sim_committed *record = &checker->committed[index];
		if (term == 0) {
			continue;
		}
		if (index > old_global) {
			record->term = term;
			record->commit_term = status->term;
		} else if (record->term == 0) {
			record->term = term;
		} else if (record->term != term) {
			sim_fail(cluster, "State Machine Safety: member %llu (term %llu) considers index %llu committed with term %llu, "
			         "but index %llu was committed with term %llu", ULL(member->id), ULL(status->term), ULL(index),
			         ULL(term), ULL(index), ULL(record->term));
			return;
		}
		checker->commits_checked++;
	}
	if (status->commit > checker->commit_index) {
		checker->commit_index = status->commit;
	}
	if (status->role == RAFT_LEADER && status->commit > member->seen_commit) {
		/* The leader counted a quorum: that quorum must really hold the entry on disk (thesis §10.2.1: the
		 * leader's own entry counts only once persisted; followers acknowledge only what is durable). */
		uint64_t index = status->commit, term = checker->committed[index].term;
		struct raft_conf_view view;
		raft_get_conf(member->raft, &view);
		char who[512] = "";
		if (term != 0 && (!durable_majority(cluster, view.voters, view.voters_count, index, term, who, sizeof(who)) ||
		                  (view.voters_outgoing_count &&
		                   !durable_majority(cluster, view.voters_outgoing, view.voters_outgoing_count, index, term,
		                                     who + strlen(who), sizeof(who) - strlen(who))))) {
			sim_fail(cluster, "Commit durability: leader %llu of term %llu committed index %llu (term %llu) but no quorum "
			         "holds it durably (voters%s%s)", ULL(member->id), ULL(status->term), ULL(index), ULL(term),
			         view.voters_outgoing_count ? ", joint with outgoing" : "", who);
			return;
		}
		cluster_on_commit(cluster, cluster_slot_of(cluster, member));
	}
	member->seen_commit = status->commit;
}

void checker_observe_member(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_checker *checker = &cluster->checker;
	if (member->state != MEMBER_ALIVE || cluster->failed) {
		return;
	}
	struct raft_status status;
	raft_get_status(member->raft, &status);
	if (status.term < member->seen_term) {
		sim_fail(cluster, "Term monotonicity: member %llu went from term %llu back to %llu", ULL(member->id),
		         ULL(member->seen_term), ULL(status.term));
		return;
	}
	if (status.role == RAFT_LEADER) {
		checker->leader_of_term = grow(checker->leader_of_term, &checker->terms_capacity, status.term + 1,
		                               sizeof(*checker->leader_of_term));
		uint64_t *leader = &checker->leader_of_term[status.term];
		if (*leader != 0 && *leader != member->id) {
			sim_fail(cluster, "Election Safety: members %llu and %llu were both leader of term %llu", ULL(*leader),
			         ULL(member->id), ULL(status.term));
			return;
		}
		if (member->seen_leader_term != status.term) {
			bool first = *leader == 0;
			*leader = member->id;
			member->seen_leader_term = status.term;
			checker->leaders_checked++;
			sim_trace(cluster, "member %llu is leader of term %llu (log %llu..%llu, commit %llu)", ULL(member->id),
			          ULL(status.term), ULL(status.first_index), ULL(status.last_index), ULL(status.commit));
			check_leader_completeness(cluster, member, &status);
			if (first && cluster->on_leader != NULL) {
				cluster->on_leader(cluster, member->id, status.term);
			}
		}
	}
	member->seen_term = status.term;
	member->seen_role = status.role;
	if (status.first_index > status.commit + 1) {
		sim_fail(cluster, "Compaction: member %llu's log starts at %llu but its commit index is %llu (a compacted or "
		         "snapshot index must be committed)", ULL(member->id), ULL(status.first_index), ULL(status.commit));
		return;
	}
	if (!cluster->failed) {
		observe_commit(cluster, member, &status);
	}
}

void checker_observe_all(struct sim_cluster *cluster)
{
	for (size_t slot = 0; slot < cluster->members_count && !cluster->failed; slot++) {
		checker_observe_member(cluster, slot);
	}
}

void checker_record_entries(struct sim_cluster *cluster, size_t slot, const struct sim_entry_digest *digests,
                            size_t count)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_checker *checker = &cluster->checker;
	uint64_t current_term = member->state == MEMBER_ALIVE ? member->seen_term : 0;
	if (member->state == MEMBER_ALIVE && count > 0) {
		struct raft_status status;
		raft_get_status(member->raft, &status);
		current_term = status.term;
		/* Leader Append-Only (Figure 3): a leader never overwrites or deletes entries in its log, so
		 * within its term each batch it hands to storage starts after the previous one. */
		if (status.role == RAFT_LEADER && member->appended_term == status.term &&
		    digests[0].index <= member->appended_last) {
			sim_fail(cluster, "Leader Append-Only: leader %llu of term %llu handed out entries up to %llu, then entries "
			         "from %llu", ULL(member->id), ULL(status.term), ULL(member->appended_last), ULL(digests[0].index));
			return;
		}
		if (status.role == RAFT_LEADER) {
			member->appended_term = status.term;
			member->appended_last = digests[count - 1].index;
		} else {
			member->appended_term = 0;
		}
	}
	for (size_t i = 0; i < count; i++) {
		const struct sim_entry_digest *digest = &digests[i];
		uint64_t previous_term;
		if (i > 0) {
			previous_term = digests[i - 1].term;
			if (digest->index != digests[i - 1].index + 1 || digest->term < previous_term) {
				sim_fail(cluster, "Log Matching: member %llu was handed entries (%llu,%llu) then (%llu,%llu): not "
				         "contiguous or terms going back", ULL(member->id), ULL(digests[i - 1].index),
				         ULL(digests[i - 1].term), ULL(digest->index), ULL(digest->term));
				return;
			}
		} else {
			previous_term = digest->index <= 1 ? 0 : member->state == MEMBER_ALIVE ? raft_term_at(member->raft, digest->index - 1) : 0;
		}
		bool previous_known = digest->index <= 1 || previous_term != 0;
		if (digest->term == 0 || digest->term > current_term) {
			sim_fail(cluster, "Log Matching: member %llu (term %llu) was handed an entry at index %llu with term %llu",
			         ULL(member->id), ULL(current_term), ULL(digest->index), ULL(digest->term));
			return;
		}
		checker->seen = grow(checker->seen, &checker->seen_capacity, digest->index + 1, sizeof(*checker->seen));
		struct sim_seen_slot *seen = &checker->seen[digest->index];
		struct sim_seen_entry *found = NULL;
		for (uint32_t k = 0; k < seen->count; k++) {
			if (seen->items[k].term == digest->term) {
				found = &seen->items[k];
			}
		}
		if (found == NULL) {
			if (seen->count == seen->capacity) {
				seen->capacity = seen->capacity ? seen->capacity * 2 : 2;
				seen->items = realloc(seen->items, seen->capacity * sizeof(*seen->items));
				if (seen->items == NULL) {
					abort();
				}
			}
			seen->items[seen->count++] =
				(struct sim_seen_entry){digest->term, digest->hash, previous_known ? previous_term : UINT64_MAX};
			continue;
		}
		checker->logs_checked++;
		if (found->hash != digest->hash) {
			sim_fail(cluster, "Log Matching: member %llu holds an entry at index %llu term %llu whose content differs "
			         "from the entry with the same index and term in another log", ULL(member->id), ULL(digest->index),
			         ULL(digest->term));
			return;
		}
		if (previous_known) {
			if (found->previous_term == UINT64_MAX) {
				found->previous_term = previous_term;
			} else if (found->previous_term != previous_term) {
				sim_fail(cluster, "Log Matching: the entry at index %llu term %llu follows term %llu in member %llu's log "
				         "but term %llu in another log", ULL(digest->index), ULL(digest->term), ULL(previous_term),
				         ULL(member->id), ULL(found->previous_term));
				return;
			}
		}
	}
}

void checker_apply_entry(struct sim_cluster *cluster, size_t slot, const Raftpb__Entry *entry)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_checker *checker = &cluster->checker;
	uint64_t index = entry->index;
	if (index != member->app.applied + 1) {
		sim_fail(cluster, "Apply order: member %llu was given index %llu to apply after index %llu (each index must be "
		         "applied exactly once, in order)", ULL(member->id), ULL(index), ULL(member->app.applied));
		return;
	}
	if (index > checker->commit_index) {
		sim_fail(cluster, "State Machine Safety: member %llu applies index %llu but no member ever knew an index above "
		         "%llu committed", ULL(member->id), ULL(index), ULL(checker->commit_index));
		return;
	}
	struct sim_committed *record = committed_at(checker, index);
	if (record->term != 0 && record->term != entry->term) {
		sim_fail(cluster, "State Machine Safety: member %llu applies index %llu with term %llu but index %llu was "
		         "committed with term %llu", ULL(member->id), ULL(index), ULL(entry->term), ULL(index), ULL(record->term));
		return;
	}
	if (!storage_holds(&member->storage, index, entry->term)) {
		sim_fail(cluster, "Ready contract: member %llu applies index %llu (term %llu) which is not locally durable "
		         "(durable log ends at %llu, term there %llu)", ULL(member->id), ULL(index), ULL(entry->term),
		         ULL(storage_last_index(&member->storage)), ULL(storage_term_at(&member->storage, index)));
		return;
	}
	uint64_t digest = entry_digest(index, entry->term, entry->type, entry->data.data, entry->data.len);
	if (record->entry_hash == 0) {
		record->entry_hash = digest;
		record->term = entry->term;
	} else if (record->entry_hash != digest) {
		sim_fail(cluster, "State Machine Safety: member %llu applies at index %llu an entry that differs from the one "
		         "another member applied there", ULL(member->id), ULL(index));
		return;
	}
	if (entry->type == RAFT_ENTRY_CONF_CHANGE || entry->type == RAFT_ENTRY_CONF_CHANGE_V2) {
		conf_change_committed(checker, index);
	}
	member->app.chain = sim_mix(member->app.chain, digest);
	member->app.applied = index;
	if (index > checker->applied_max) {
		checker->applied_max = index;
	}
	member->app.applied_term = entry->term;
	if (record->chain == 0) {
		record->chain = member->app.chain;
	} else if (record->chain != member->app.chain) {
		sim_fail(cluster, "State Machine Safety: member %llu reached index %llu with a different history of applied "
		         "entries than another member", ULL(member->id), ULL(index));
		return;
	}
	uint64_t sequence;
	bool marker;
	if (entry->type == RAFT_ENTRY_NORMAL && payload_write_sequence(entry->data.data, entry->data.len, &sequence, &marker)) {
		if (marker) {
			member->marker_applied = sequence;
		}
		member->app.writes++;
		member->app.last_write = sequence;
		if (member->app.writes > checker->writes_applied) {
			checker->writes_applied = member->app.writes;
		}
		if (!marker && index > checker->acknowledged_index) {
			checker->acknowledged_index = index;
			checker->acknowledged_writes = member->app.writes;
		}
	}
	checker->applies_checked++;
	checker->entries_applied++;
}

void checker_install_snapshot(struct sim_cluster *cluster, size_t slot, const Raftpb__Snapshot *snapshot)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_checker *checker = &cluster->checker;
	uint64_t index = snapshot->metadata->index;
	struct sim_app_state state;
	if (index <= member->app.applied) {
		sim_fail(cluster, "Snapshot: member %llu is asked to install a snapshot at %llu but has applied %llu already",
		         ULL(member->id), ULL(index), ULL(member->app.applied));
		return;
	}
	if (index > checker->commit_index) {
		sim_fail(cluster, "Snapshot: member %llu installs a snapshot at %llu beyond any commit (%llu)", ULL(member->id),
		         ULL(index), ULL(checker->commit_index));
		return;
	}
	if (!app_state_decode(snapshot->data.data, snapshot->data.len, &state) || state.applied != index) {
		sim_fail(cluster, "Snapshot: member %llu got a snapshot at %llu whose data is not the application state at %llu",
		         ULL(member->id), ULL(index), ULL(index));
		return;
	}
	const struct sim_committed *record = committed_at(checker, index);
	if ((record->term != 0 && record->term != snapshot->metadata->term) ||
	    (record->chain != 0 && record->chain != state.chain)) {
		sim_fail(cluster, "State Machine Safety: the snapshot member %llu installs at index %llu (term %llu) differs from "
		         "the committed history there (term %llu)", ULL(member->id), ULL(index), ULL(snapshot->metadata->term),
		         ULL(record->term));
		return;
	}
	checker_snapshot_config(cluster, slot, snapshot, "the snapshot installed");
	if (cluster->failed) {
		return;
	}
	if (cluster->trace) {
		const Raftpb__ConfState *conf = snapshot->metadata->conf_state;
		bool listed = false;
		for (size_t i = 0; i < conf->n_voters; i++) {
			listed |= conf->voters[i] == member->id;
		}
		for (size_t i = 0; i < conf->n_learners; i++) {
			listed |= conf->learners[i] == member->id;
		}
		sim_trace(cluster, "member %llu installs a snapshot at %llu (term %llu)%s", ULL(member->id), ULL(index),
		          ULL(snapshot->metadata->term), listed ? "" : ", taken before it was added");
	}
	member->app = state;
	checker->snapshots_installed++;
}

void checker_stored_truncation(struct sim_cluster *cluster, size_t slot, const struct sim_persist_item *item)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_checker *checker = &cluster->checker;
	const struct sim_storage *storage = &member->storage;
	uint64_t from;
	if (item->snapshot.packed != NULL) {
		from = item->snapshot.index + 1; /* the snapshot replaces the log; what it covers is committed */
	} else if (item->entries_count) {
		from = item->entries[0].index;
	} else {
		return;
	}
	uint64_t last = storage_last_index(storage);
	uint64_t new_first = item->entries_count ? item->entries[0].index : 0;
	uint64_t new_last = item->entries_count ? item->entries[item->entries_count - 1].index : 0;
	for (uint64_t index = from; index <= last && index <= checker->commit_index; index++) {
		uint64_t old_term = storage_term_at(storage, index);
		uint64_t committed_term = checker->committed[index].term;
		if (old_term == 0 || old_term != committed_term) {
			continue;
		}
		bool rewritten = new_first != 0 && index >= new_first && index <= new_last &&
		                 item->entries[index - new_first].term == committed_term;
		if (!rewritten) {
			sim_fail(cluster, "Log safety: member %llu drops the committed entry at index %llu (term %llu) from its "
			         "stored log (a %s from index %llu)", ULL(member->id), ULL(index), ULL(committed_term),
			         item->snapshot.packed ? "snapshot install" : "suffix replacement", ULL(from));
			return;
		}
	}
}

/* A snapshot sent to a follower: committed on the sender, the committed state and configuration there. */
static void check_snapshot_message(struct sim_cluster *cluster, size_t slot, const struct sim_message *message)
{
	struct sim_member *member = &cluster->members[slot];
	Raftpb__Message *unpacked = raftpb__message__unpack(NULL, message->length, message->bytes);
	if (unpacked == NULL || unpacked->snapshot == NULL || unpacked->snapshot->metadata == NULL) {
		sim_fail(cluster, "Ready contract: member %llu sends a snapshot message to %llu without a snapshot",
		         ULL(member->id), ULL(message->to));
	} else {
		const Raftpb__Snapshot *snapshot = unpacked->snapshot;
		struct sim_app_state state;
		uint64_t index = snapshot->metadata->index;
		if (index > member->seen_commit) {
			sim_fail(cluster, "Snapshot: member %llu sends %llu a snapshot at %llu beyond its own commit index %llu",
			         ULL(member->id), ULL(message->to), ULL(index), ULL(member->seen_commit));
		} else if (!app_state_decode(snapshot->data.data, snapshot->data.len, &state)) {
			sim_fail(cluster, "Snapshot: member %llu sends %llu a snapshot at %llu whose data is not an application state",
			         ULL(member->id), ULL(message->to), ULL(index));
		} else {
			checker_snapshot_taken(cluster, slot, index, snapshot->metadata->term, &state);
			if (!cluster->failed) {
				checker_snapshot_config(cluster, slot, snapshot, "the snapshot sent");
			}
			cluster->checker.snapshots_sent++;
		}
	}
	if (unpacked != NULL) {
		raftpb__message__free_unpacked(unpacked, NULL);
	}
}

void checker_message_sent(struct sim_cluster *cluster, size_t slot, const struct sim_message *message,
                          bool after_persist)
{
	struct sim_member *member = &cluster->members[slot];
	const struct sim_storage *storage = &member->storage;
	cluster->checker.messages_checked++;
	/* A follower forwards proposals and reads with their original sender, as etcd does. */
	bool forwarded = message->type == RAFT_MSG_PROP || message->type == RAFT_MSG_READ_INDEX;
	if ((message->origin != member->id && !(forwarded && message->origin != RAFT_NONE)) || message->to == RAFT_NONE) {
		sim_fail(cluster, "Ready contract: member %llu sends a %s from %llu to %llu", ULL(member->id),
		         message_type_name(message->type), ULL(message->origin), ULL(message->to));
		return;
	}
	const char *when = after_persist ? "messages_after_persist" : "messages";
	/* A grant leaves once the vote is durable, or once a later term is (the member can then never vote
	 * in that term again: a core that took several vote requests before one Ready persists only the
	 * last term's vote, and sends the earlier term's grant with it, as etcd-raft does). */
	if (message->type == RAFT_MSG_VOTE_RESP && !message->reject &&
	    (storage->hard_state.term < message->term ||
	     (storage->hard_state.term == message->term && storage->hard_state.vote != message->to))) {
		sim_fail(cluster, "Ready contract: member %llu grants its vote to %llu in term %llu (in %s) while its durable "
		         "hard state says term %llu vote %llu (a vote forgotten in a crash could elect two leaders)",
		         ULL(member->id), ULL(message->to), ULL(message->term), when, ULL(storage->hard_state.term),
		         ULL(storage->hard_state.vote));
		return;
	}
	if (message->type == RAFT_MSG_APP && message->index + 1 < member->first_index_after_advance) {
		/* Compaction: entries below the log's first index are gone; only a snapshot can serve them. */
		sim_fail(cluster, "Compaction: member %llu sends an append to %llu after index %llu, but its log was compacted up "
		         "to %llu", ULL(member->id), ULL(message->to), ULL(message->index),
		         ULL(member->first_index_after_advance - 1));
		return;
	}
	if (message->type == RAFT_MSG_SNAP) {
		check_snapshot_message(cluster, slot, message);
		return;
	}
	if (message->type == RAFT_MSG_APP_RESP && !message->reject && message->index <= storage_last_index(storage) &&
	    storage_term_at(storage, message->index) > message->term) {
		/* the leader of that term never had this entry: the acknowledged one was replaced */
		sim_fail(cluster, "Ready contract: member %llu acknowledges index %llu to the leader of term %llu (in %s), but "
		         "its durable log holds an entry of term %llu there", ULL(member->id), ULL(message->index),
		         ULL(message->term), when, ULL(storage_term_at(storage, message->index)));
		return;
	}
	if (message->type == RAFT_MSG_APP_RESP && !message->reject && message->index > storage_last_index(storage)) {
		sim_fail(cluster, "Ready contract: member %llu acknowledges entries up to %llu to %llu (in %s) but its durable "
		         "log ends at %llu", ULL(member->id), ULL(message->index), ULL(message->to), when,
		         ULL(storage_last_index(storage)));
		return;
	}
}

void checker_hard_state_durable(struct sim_cluster *cluster, size_t slot, const struct sim_hard_state *before,
                                const struct sim_hard_state *after)
{
	struct sim_member *member = &cluster->members[slot];
	if (after->term < before->term) {
		sim_fail(cluster, "Hard state: member %llu persisted term %llu after term %llu", ULL(member->id), ULL(after->term),
		         ULL(before->term));
	} else if (after->term == before->term && before->vote != RAFT_NONE && after->vote != before->vote) {
		sim_fail(cluster, "Hard state: member %llu voted for %llu and then for %llu in term %llu", ULL(member->id),
		         ULL(before->vote), ULL(after->vote), ULL(after->term));
	} else if (after->commit < before->commit) {
		sim_fail(cluster, "Hard state: member %llu persisted commit %llu after commit %llu", ULL(member->id),
		         ULL(after->commit), ULL(before->commit));
	}
}

/* --- configurations by index ------------------------------------------------------------------- */

static void sort_ids(uint64_t *ids, size_t count)
{
	for (size_t i = 1; i < count; i++) {
		for (size_t k = i; k > 0 && ids[k - 1] > ids[k]; k--) {
			uint64_t t = ids[k];
			ids[k] = ids[k - 1];
			ids[k - 1] = t;
		}
	}
}

/* lists: voters, outgoing voters, learners, learners_next. With describe, also the text. */
static struct sim_conf_digest conf_digest(const uint64_t *const lists[4], const size_t counts[4], bool auto_leave,
                                          bool describe)
{
	static const char *const names[] = {"voters", "outgoing", "learners", "learners_next"};
	struct sim_conf_digest digest = {0};
	uint64_t hash = auto_leave ? 0x9e3779b97f4a7c15ULL : 1;
	size_t used = 0;
	for (int list = 0; list < 4; list++) {
		uint64_t ids[2 * SIM_MAX_MEMBERS];
		size_t count = counts[list] < 2 * SIM_MAX_MEMBERS ? counts[list] : 2 * SIM_MAX_MEMBERS;
		if (count > 0) {
			memcpy(ids, lists[list], count * sizeof(*ids));
		}
		sort_ids(ids, count);
		hash = sim_mix(hash, 0x100 + (uint64_t)list);
		for (size_t i = 0; i < count; i++) {
			hash = sim_mix(hash, ids[i]);
		}
		if (describe && used < sizeof(digest.text) - 24) {
			used += (size_t)snprintf(digest.text + used, sizeof(digest.text) - used, "%s%s{", list ? " " : "",
			                         names[list]);
			for (size_t i = 0; i < count && used < sizeof(digest.text) - 24; i++) {
				used += (size_t)snprintf(digest.text + used, sizeof(digest.text) - used, i ? " %llu" : "%llu",
				                         ULL(ids[i]));
			}
			used += (size_t)snprintf(digest.text + used, sizeof(digest.text) - used, "}");
		}
	}
	if (describe && auto_leave && used < sizeof(digest.text) - 12) {
		snprintf(digest.text + used, sizeof(digest.text) - used, " auto-leave");
	}
	digest.hash = hash;
	return digest;
}

static struct sim_conf_digest view_digest(const struct raft_conf_view *view, bool describe)
{
	const uint64_t *const lists[4] = {view->voters, view->voters_outgoing, view->learners, view->learners_next};
	const size_t counts[4] = {view->voters_count, view->voters_outgoing_count, view->learners_count,
	                          view->learners_next_count};
	return conf_digest(lists, counts, view->auto_leave, describe);
}

static struct sim_conf_digest conf_state_digest(const Raftpb__ConfState *state, bool describe)
{
	const uint64_t *const lists[4] = {state->voters, state->voters_outgoing, state->learners, state->learners_next};
	const size_t counts[4] = {state->n_voters, state->n_voters_outgoing, state->n_learners, state->n_learners_next};
	return conf_digest(lists, counts, state->auto_leave, describe);
}

/* The record of the last conf change at or before index; NULL when there is none (the empty
 * configuration of a member that has applied nothing). */
static struct sim_conf_record *conf_record_at(struct sim_checker *checker, uint64_t index)
{
	size_t low = 0, high = checker->conf_history_count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (checker->conf_history[middle].index <= index) {
			low = middle + 1;
		} else {
			high = middle;
		}
	}
	return low == 0 ? NULL : &checker->conf_history[low - 1];
}

/* The configuration in force once index is applied: false when it is not known yet. */
static bool conf_at(struct sim_checker *checker, uint64_t index, struct sim_conf_digest *out, uint64_t *conf_index)
{
	if (index > checker->applied_max) {
		return false; /* a conf change up to index may not have been applied by anyone yet */
	}
	const struct sim_conf_record *record = conf_record_at(checker, index);
	if (record == NULL) {
		const size_t counts[4] = {0, 0, 0, 0};
		const uint64_t *const lists[4] = {NULL, NULL, NULL, NULL};
		*out = conf_digest(lists, counts, false, true);
		*conf_index = 0;
		return true;
	}
	*out = record->conf;
	*conf_index = record->index;
	return record->known;
}

static void conf_change_committed(struct sim_checker *checker, uint64_t index)
{
	if (checker->conf_history_count && checker->conf_history[checker->conf_history_count - 1].index >= index) {
		return; /* applied before by some member: the first application of each index comes in order */
	}
	checker->conf_history = grow(checker->conf_history, &checker->conf_history_capacity,
	                             checker->conf_history_count + 1, sizeof(*checker->conf_history));
	checker->conf_history[checker->conf_history_count++] = (struct sim_conf_record){.index = index};
}

void checker_member_config(struct sim_cluster *cluster, size_t slot, const char *when)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_checker *checker = &cluster->checker;
	if (member->state != MEMBER_ALIVE || cluster->failed) {
		return;
	}
	struct sim_conf_digest expected;
	uint64_t conf_index;
	uint64_t applied = member->app.applied > member->bootstrap_index ? member->app.applied : member->bootstrap_index;
	if (!conf_at(checker, applied, &expected, &conf_index)) {
		return;
	}
	struct raft_conf_view view;
	raft_get_conf(member->raft, &view);
	checker->configs_checked++;
	if (view_digest(&view, false).hash != expected.hash) {
		struct sim_conf_digest actual = view_digest(&view, true);
		sim_fail(cluster, "Configuration: %s, member %llu (applied %llu) has the configuration %s, but the one in force "
		         "at its applied index (from the conf change at %llu) is %s", when, ULL(member->id),
		         ULL(member->app.applied), actual.text, ULL(conf_index), expected.text);
	}
}

void checker_snapshot_config(struct sim_cluster *cluster, size_t slot, const Raftpb__Snapshot *snapshot,
                             const char *what)
{
	struct sim_checker *checker = &cluster->checker;
	uint64_t index = snapshot->metadata->index;
	if (snapshot->metadata->conf_state == NULL) {
		sim_fail(cluster, "Snapshot: %s of member %llu at %llu carries no configuration", what,
		         ULL(cluster->members[slot].id), ULL(index));
		return;
	}
	struct sim_conf_digest expected;
	uint64_t conf_index;
	if (!conf_at(checker, index, &expected, &conf_index)) {
		return;
	}
	checker->configs_checked++;
	if (conf_state_digest(snapshot->metadata->conf_state, false).hash != expected.hash) {
		struct sim_conf_digest actual = conf_state_digest(snapshot->metadata->conf_state, true);
		sim_fail(cluster, "Snapshot: %s of member %llu at index %llu carries the configuration %s, but the one in force "
		         "there (from the conf change at %llu) is %s", what, ULL(cluster->members[slot].id), ULL(index),
		         actual.text, ULL(conf_index), expected.text);
	}
}

void checker_snapshot_taken(struct sim_cluster *cluster, size_t slot, uint64_t index, uint64_t term,
                            const struct sim_app_state *state)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_checker *checker = &cluster->checker;
	if (index == 0 || index > checker->commit_index) {
		sim_fail(cluster, "Snapshot: member %llu has a snapshot at index %llu but nothing beyond %llu was ever committed",
		         ULL(member->id), ULL(index), ULL(checker->commit_index));
		return;
	}
	const struct sim_committed *record = committed_at(checker, index);
	if (state->applied != index) {
		sim_fail(cluster, "Snapshot: member %llu's snapshot at %llu holds the application state at %llu",
		         ULL(member->id), ULL(index), ULL(state->applied));
	} else if ((record->term != 0 && (record->term != term || state->applied_term != term)) ||
	           (record->chain != 0 && record->chain != state->chain)) {
		sim_fail(cluster, "State Machine Safety: member %llu's snapshot at index %llu (term %llu) differs from the "
		         "committed history there (term %llu)", ULL(member->id), ULL(index), ULL(term), ULL(record->term));
	}
}

void checker_restarted(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_checker *checker = &cluster->checker;
	if (member->state != MEMBER_ALIVE || cluster->failed) {
		return;
	}
	/* Durability: what the member recovered (snapshot, then the application state made durable) is
	 * the committed history up to its applied index, so no acknowledged write is missing from it. */
	uint64_t applied = member->app.applied;
	if (applied > checker->commit_index) {
		sim_fail(cluster, "Durability: member %llu restarts with applied index %llu, beyond anything committed (%llu)",
		         ULL(member->id), ULL(applied), ULL(checker->commit_index));
		return;
	}
	if (applied > 0) {
		const struct sim_committed *record = committed_at(checker, applied);
		if (record->chain != 0 && record->chain != member->app.chain) {
			sim_fail(cluster, "Durability: member %llu restarts with an application state at index %llu that differs from "
			         "the committed history there (%llu writes recovered)", ULL(member->id), ULL(applied),
			         ULL(member->app.writes));
			return;
		}
	}
	struct raft_status status;
	raft_get_status(member->raft, &status);
	if (status.first_index != member->storage.snapshot.index + 1) {
		sim_fail(cluster, "Restart: member %llu's log starts at %llu after a restart from a snapshot at %llu",
		         ULL(member->id), ULL(status.first_index), ULL(member->storage.snapshot.index));
		return;
	}
	checker_member_config(cluster, slot, "after a restart");
}

static size_t conf_ids(const struct raft_conf_view *view, uint64_t *ids, size_t capacity)
{
	size_t count = 0;
	const uint64_t *lists[] = {view->voters, view->voters_outgoing, view->learners, view->learners_next};
	size_t counts[] = {view->voters_count, view->voters_outgoing_count, view->learners_count, view->learners_next_count};
	for (int list = 0; list < 4; list++) {
		for (size_t i = 0; i < counts[list]; i++) {
			bool present = false;
			for (size_t k = 0; k < count; k++) {
				present |= ids[k] == lists[list][i];
			}
			if (!present && count < capacity) {
				ids[count++] = lists[list][i];
			}
		}
	}
	/* sorted, so two members' sets compare directly */
	for (size_t i = 1; i < count; i++) {
		for (size_t k = i; k > 0 && ids[k - 1] > ids[k]; k--) {
			uint64_t t = ids[k];
			ids[k] = ids[k - 1];
			ids[k - 1] = t;
		}
	}
	return count;
}

void checker_config_applied(struct sim_cluster *cluster, size_t slot, uint64_t index)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_checker *checker = &cluster->checker;
	struct raft_conf_view view;
	raft_get_conf(member->raft, &view);
	uint64_t ids[SIM_MAX_MEMBERS * 2];
	size_t count = conf_ids(&view, ids, SIM_MAX_MEMBERS * 2);
	struct sim_conf_record *record = conf_record_at(checker, index);
	if (record == NULL || record->index != index) {
		sim_fail(cluster, "Configuration: member %llu applied a conf change at index %llu that no member applied as one",
		         ULL(member->id), ULL(index));
		return;
	}
	if (!record->known) {
		record->known = true;
		record->conf = view_digest(&view, true);
	} else if (record->conf.hash != view_digest(&view, false).hash) {
		sim_fail(cluster, "Configuration: after the conf change at index %llu member %llu has the configuration %s, "
		         "another member had %s", ULL(index), ULL(member->id), view_digest(&view, true).text,
		         record->conf.text);
		return;
	}
	if (index < checker->config_index) {
		return; /* a member catching up (or replaying after a restart) */
	}
	if (index == checker->config_index) {
		if (count != checker->config_ids_count || memcmp(ids, checker->config_ids, count * sizeof(*ids)) != 0) {
			sim_fail(cluster, "Configuration: after applying the conf change at index %llu member %llu has a different "
			         "configuration (%zu members) than another member had (%zu members)", ULL(index), ULL(member->id),
			         count, checker->config_ids_count);
		}
		return;
	}
	checker->config_index = index;
	free(checker->config_ids);
	checker->config_ids = malloc((count ? count : 1) * sizeof(*ids));
	if (checker->config_ids == NULL) {
		abort();
	}
	memcpy(checker->config_ids, ids, count * sizeof(*ids));
	checker->config_ids_count = count;
	if (cluster->trace) {
		char text[512];
		size_t used = 0;
		text[0] = '\0';
		const uint64_t *lists[] = {view.voters, view.voters_outgoing, view.learners, view.learners_next};
		size_t counts[] = {view.voters_count, view.voters_outgoing_count, view.learners_count, view.learners_next_count};
		const char *names[] = {"voters", "outgoing", "learners", "learners_next"};
		for (int list = 0; list < 4; list++) {
			used += (size_t)snprintf(text + used, sizeof(text) - used, " %s{", names[list]);
			for (size_t i = 0; i < counts[list] && used < sizeof(text) - 32; i++) {
				used += (size_t)snprintf(text + used, sizeof(text) - used, i ? " %llu" : "%llu", ULL(lists[list][i]));
			}
			used += (size_t)snprintf(text + used, sizeof(text) - used, "}");
		}
		sim_trace(cluster, "configuration after index %llu:%s%s", ULL(index), text, view.auto_leave ? " auto-leave" : "");
	}
	/* Members removed by this configuration will shut down (checker_retire_removed); new ones start
	 * empty at once. */
	for (size_t other = 0; other < cluster->members_count; other++) {
		struct sim_member *candidate = &cluster->members[other];
		bool present = false;
		for (size_t k = 0; k < count; k++) {
			present |= ids[k] == candidate->id;
		}
		if (!present && (candidate->state == MEMBER_ALIVE || candidate->state == MEMBER_CRASHED) &&
		    !checker_removal_pending(cluster, candidate->id) && checker->removals_count < SIM_MAX_MEMBERS) {
			checker->removals[checker->removals_count++] = (struct sim_removal){candidate->id, index};
			sim_trace(cluster, "member %llu is removed by the conf change at index %llu", ULL(candidate->id), ULL(index));
		}
	}
	for (size_t k = 0; k < count; k++) {
		if (cluster_member_by_id(cluster, ids[k]) == NULL) {
			member_start_added(cluster, ids[k]);
		}
	}
}

bool checker_removal_pending(const struct sim_cluster *cluster, uint64_t id)
{
	for (size_t i = 0; i < cluster->checker.removals_count; i++) {
		if (cluster->checker.removals[i].id == id) {
			return true;
		}
	}
	return false;
}

/* Whether a member can no longer forget that index is committed: its durable commit, snapshot or
 * applied state covers it. */
static bool durably_knows(const struct sim_member *member, uint64_t index)
{
	const struct sim_storage *storage = &member->storage;
	return storage->hard_state.commit >= index || storage->snapshot.index >= index || storage->app.applied >= index;
}

/* A removed member shuts down, and its peers drop it, only once every member of the latest
 * configuration durably knows the removal committed. Shutting it down as soon as someone applies the
 * removal can strand the cluster for good without any bug in the core: the removed leader of a joint
 * configuration commits the leave entry and goes, and the survivors, who never heard that it committed
 * (or applied it but lost the commit in a crash, as asynchronous storage allows), wait forever in the
 * joint configuration for a vote from the member that is gone. etcd delays the shutdown of a removed
 * member for the same reason. */
void checker_retire_removed(struct sim_cluster *cluster)
{
	struct sim_checker *checker = &cluster->checker;
	size_t kept = 0;
	for (size_t i = 0; i < checker->removals_count; i++) {
		struct sim_removal removal = checker->removals[i];
		bool everyone_knows = true;
		for (size_t k = 0; k < checker->config_ids_count && everyone_knows; k++) {
			const struct sim_member *member = cluster_member_by_id(cluster, checker->config_ids[k]);
			everyone_knows = member != NULL && durably_knows(member, removal.index);
		}
		struct sim_member *removed = cluster_member_by_id(cluster, removal.id);
		if (everyone_knows && removed != NULL) {
			member_shutdown(cluster, cluster_slot_of(cluster, removed));
		} else {
			checker->removals[kept++] = removal;
		}
	}
	checker->removals_count = kept;
}

static uint64_t context_to_read(const uint8_t *context, size_t length)
{
	if (length != 9 || context[0] != 'R') {
		return 0;
	}
	uint64_t value = 0;
	for (int i = 0; i < 8; i++) {
		value |= (uint64_t)context[1 + i] << (8 * i);
	}
	return value;
}

void checker_read_issued(struct sim_cluster *cluster, size_t slot, uint64_t context)
{
	struct sim_checker *checker = &cluster->checker;
	checker->reads = grow(checker->reads, &checker->reads_capacity, context + 1, sizeof(*checker->reads));
	checker->reads[context] = (struct sim_read){context, slot, cluster->now, checker->commit_index,
	                                            checker->writes_applied, 0};
	if (context >= checker->reads_count) {
		checker->reads_count = context + 1;
	}
}

void checker_read_state(struct sim_cluster *cluster, size_t slot, const struct raft_read_state *state)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_checker *checker = &cluster->checker;
	uint64_t context = context_to_read(state->context, state->context_length);
	if (context == 0 || context >= checker->reads_count || checker->reads[context].context != context) {
		sim_fail(cluster, "ReadIndex: member %llu got a read state for a context no read used (%zu bytes)",
		         ULL(member->id), state->context_length);
		return;
	}
	const struct sim_read *read = &checker->reads[context];
	if (read->slot != slot) {
		sim_fail(cluster, "ReadIndex: read %llu was requested on member %llu but answered on member %llu", ULL(context),
		         ULL(cluster->members[read->slot].id), ULL(member->id));
		return;
	}
	if (state->index > checker->commit_index) {
		sim_fail(cluster, "ReadIndex: read %llu on member %llu got read point %llu, beyond anything committed (%llu)",
		         ULL(context), ULL(member->id), ULL(state->index), ULL(checker->commit_index));
		return;
	}
	if (state->index < read->commit_at_issue) {
		sim_fail(cluster, "ReadIndex linearizability: read %llu issued on member %llu at %llu ms, when index %llu was "
		         "already committed, got read point %llu", ULL(context), ULL(member->id), ULL(read->issued_at),
		         ULL(read->commit_at_issue), ULL(state->index));
		return;
	}
	if (member->reads_count == member->reads_capacity) {
		member->reads_capacity = member->reads_capacity ? member->reads_capacity * 2 : 8;
		member->reads = realloc(member->reads, member->reads_capacity * sizeof(*member->reads));
		if (member->reads == NULL) {
			abort();
		}
	}
	member->reads[member->reads_count++] = (struct sim_pending_read){context, state->index};
	checker_serve_reads(cluster, slot);
}

void checker_serve_reads(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_checker *checker = &cluster->checker;
	size_t kept = 0;
	for (size_t i = 0; i < member->reads_count; i++) {
		struct sim_pending_read pending = member->reads[i];
		if (pending.index > member->app.applied) {
			member->reads[kept++] = pending;
			continue;
		}
		struct sim_read *read = &checker->reads[pending.context];
		/* The result of the read is the application state now: it must reflect every write that some
		 * member had applied (an acknowledged write) before the read was issued... */
		if (member->app.writes < read->writes_at_issue || member->app.applied < read->commit_at_issue) {
			sim_fail(cluster, "ReadIndex linearizability: read %llu on member %llu returned a state with %llu writes "
			         "(applied %llu) but %llu writes were acknowledged (commit %llu) when it was issued at %llu ms",
			         ULL(pending.context), ULL(member->id), ULL(member->app.writes), ULL(member->app.applied),
			         ULL(read->writes_at_issue), ULL(read->commit_at_issue), ULL(read->issued_at));
			return;
		}
		/* ...and no write proposed after the read completed (now). */
		uint64_t last = member->app.last_write;
		if (last != 0 && (last >= cluster->workload.proposed_capacity || cluster->workload.proposed_at[last] > cluster->now ||
		                  cluster->workload.proposed_at[last] == 0)) {
			sim_fail(cluster, "ReadIndex linearizability: read %llu on member %llu reflects write %llu, which was not "
			         "proposed before the read completed", ULL(pending.context), ULL(member->id), ULL(last));
			return;
		}
		read->served++;
		checker->reads_checked++;
		sim_trace(cluster, "read %llu served on member %llu: %llu writes, applied %llu (read point %llu)",
		          ULL(pending.context), ULL(member->id), ULL(member->app.writes), ULL(member->app.applied),
		          ULL(pending.index));
	}
	member->reads_count = kept;
}

void checker_full_logs(struct sim_cluster *cluster)
{
	struct sim_checker *checker = &cluster->checker;
	for (size_t slot = 0; slot < cluster->members_count && !cluster->failed; slot++) {
		struct sim_member *member = &cluster->members[slot];
		if (member->state != MEMBER_ALIVE) {
			continue;
		}
		struct raft_status status;
		raft_get_status(member->raft, &status);
		if (status.first_index > 1) {
			/* Compaction: what is below the first index is not served from the log any more, and the
			 * boundary's term (the snapshot's) is the committed one. */
			Raftpb__Entry **below = NULL;
			size_t below_count = 0;
			int below_result = raft_copy_entries(member->raft, status.first_index - 1, status.first_index, &below,
			                                     &below_count);
			raft_free_entries(below, below_count);
			uint64_t boundary = status.first_index - 1;
			uint64_t boundary_term = raft_term_at(member->raft, boundary);
			uint64_t committed_term = boundary <= checker->commit_index ? checker->committed[boundary].term : 0;
			if (below_result != RAFT_ERR_COMPACTED) {
				sim_fail(cluster, "Compaction: member %llu's log starts at %llu, but asking it for index %llu gives %s",
				         ULL(member->id), ULL(status.first_index), ULL(boundary), raft_strerror(below_result));
			} else if (boundary > 1 && raft_term_at(member->raft, boundary - 1) != 0) {
				sim_fail(cluster, "Compaction: member %llu's log starts at %llu but still knows a term at %llu",
				         ULL(member->id), ULL(status.first_index), ULL(boundary - 1));
			} else if (committed_term != 0 && boundary_term != committed_term) {
				sim_fail(cluster, "Compaction: member %llu's log was compacted up to %llu with term %llu there, but term "
				         "%llu was committed at that index", ULL(member->id), ULL(boundary), ULL(boundary_term),
				         ULL(committed_term));
			}
			if (cluster->failed) {
				return;
			}
		}
		if (status.last_index < status.first_index) {
			continue;
		}
		Raftpb__Entry **entries = NULL;
		size_t count = 0;
		int result = raft_copy_entries(member->raft, status.first_index, status.last_index + 1, &entries, &count);
		if (result != RAFT_OK || count != status.last_index + 1 - status.first_index) {
			sim_fail(cluster, "Introspection: raft_copy_entries(%llu, %llu) on member %llu gave %s and %zu entries",
			         ULL(status.first_index), ULL(status.last_index + 1), ULL(member->id), raft_strerror(result), count);
			raft_free_entries(entries, count);
			return;
		}
		/* With a Ready still to take (a member in a batching turn), appended entries may not have been
		 * handed out yet. */
		bool drained = !raft_has_ready(member->raft);
		bool quiet_storage = member->storage.pending_count == 0 && drained;
		for (size_t i = 0; i < count && !cluster->failed; i++) {
			const Raftpb__Entry *entry = entries[i];
			uint64_t index = status.first_index + i;
			uint64_t digest = entry_digest(entry->index, entry->term, entry->type, entry->data.data, entry->data.len);
			const struct sim_seen_slot *seen = index < checker->seen_capacity ? &checker->seen[index] : NULL;
			const struct sim_seen_entry *found = NULL;
			for (uint32_t k = 0; seen != NULL && k < seen->count; k++) {
				if (seen->items[k].term == entry->term) {
					found = &seen->items[k];
				}
			}
			if (entry->index != index) {
				sim_fail(cluster, "Log: member %llu holds index %llu at position %llu of its log", ULL(member->id),
				         ULL(entry->index), ULL(index));
			} else if (found == NULL && drained) {
				sim_fail(cluster, "Ready contract: member %llu holds the entry at index %llu term %llu, which no Ready ever "
				         "handed to storage", ULL(member->id), ULL(index), ULL(entry->term));
			} else if (found != NULL && found->hash != digest) {
				sim_fail(cluster, "Log Matching: member %llu holds at index %llu term %llu an entry that differs from the one "
				         "with the same index and term seen in another log", ULL(member->id), ULL(index), ULL(entry->term));
			} else if (i > 0 && entry->term < entries[i - 1]->term) {
				sim_fail(cluster, "Log: member %llu has term %llu at index %llu after term %llu", ULL(member->id),
				         ULL(entry->term), ULL(index), ULL(entries[i - 1]->term));
			} else if (index <= status.commit && index <= checker->commit_index && checker->committed[index].term != 0 &&
			           checker->committed[index].term != entry->term) {
				sim_fail(cluster, "State Machine Safety: member %llu has term %llu at its committed index %llu, but term "
				         "%llu was committed there", ULL(member->id), ULL(entry->term), ULL(index),
				         ULL(checker->committed[index].term));
			} else if (quiet_storage && index > member->storage.snapshot.index &&
			           storage_term_at(&member->storage, index) != entry->term) {
				sim_fail(cluster, "Ready contract: with no write in flight member %llu has term %llu at index %llu in memory "
				         "but term %llu on disk", ULL(member->id), ULL(entry->term), ULL(index),
				         ULL(storage_term_at(&member->storage, index)));
			}
			checker->logs_checked++;
		}
		if (!cluster->failed && quiet_storage && storage_last_index(&member->storage) != status.last_index) {
			sim_fail(cluster, "Ready contract: with no write in flight member %llu's log ends at %llu in memory but at %llu "
			         "on disk", ULL(member->id), ULL(status.last_index), ULL(storage_last_index(&member->storage)));
		}
		raft_free_entries(entries, count);
	}
}

void checker_acknowledged_writes(struct sim_cluster *cluster)
{
	const struct sim_checker *checker = &cluster->checker;
	for (size_t slot = 0; slot < cluster->members_count && !cluster->failed; slot++) {
		const struct sim_member *member = &cluster->members[slot];
		if (member->state != MEMBER_ALIVE || checker_removal_pending(cluster, member->id)) {
			continue;
		}
		if (member->app.applied < checker->fault_acknowledged_index ||
		    member->app.writes < checker->fault_acknowledged_writes) {
			sim_fail(cluster, "Durability: after the faults member %llu has applied %llu entries holding %llu writes, but a "
			         "write was acknowledged at index %llu with %llu writes up to it", ULL(member->id),
			         ULL(member->app.applied), ULL(member->app.writes), ULL(checker->fault_acknowledged_index),
			         ULL(checker->fault_acknowledged_writes));
		}
	}
}
