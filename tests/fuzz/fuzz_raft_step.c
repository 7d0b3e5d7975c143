/* tests/fuzz/fuzz_raft_step.c: libFuzzer target driving a live 3-member cluster of Raft cores.
 *
 * The input is a script. Byte 0 picks the configuration (PreVote, CheckQuorum, lease reads, small
 * messages, a small in-flight window). Then records: a selector byte s chooses the member
 * (s % 3 + 1) and the action ((s / 3) % ACTION_COUNT), followed by the action's own bytes. Actions are
 * what a node and its network can do: tick, campaign, propose, take a Ready (persist at once, queue the
 * messages), deliver / drop / duplicate / reorder queued messages, cut links, read index, membership
 * changes, leadership transfer, transport reports, snapshot and compaction — and hostile ones: raw
 * bytes through raft_step_bytes, a decoded message re-addressed to the member, a queued message with
 * one field changed.
 *
 * After every action each member is checked (commit <= last index, applied <= commit, first index <=
 * last + 1, terms and commit never go back, no log entry above the current term, the Ready contract:
 * entries contiguous from storage, committed entries delivered in order and durable). While no hostile
 * input has been stepped, the cluster-wide safety properties are checked too (one leader per term,
 * members apply the same entry at each index): Raft tolerates loss, duplication and reordering, not
 * forged messages. Any violation aborts, which libFuzzer reports with the input.
 *
 * tests/fuzz/make_corpus.py writes the seed corpus in this format (the action numbers below).
 * Environment knobs for people, not for CI: FUZZ_RAFT_TRACE=1 prints every action and the members after
 * it, FUZZ_RAFT_VERBOSE=1 the members at the end, FUZZ_RAFT_HONEST=1 skips the hostile actions so a
 * long run checks the cross-member safety properties all the way.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"

#define MEMBERS 3
#define QUEUE_LIMIT 256
#define TRACKED_INDEXES 4096
#define TRACKED_TERMS 1024

enum action {
	ACTION_TICK,
	ACTION_TICK_ELECTION,
	ACTION_CAMPAIGN,
	ACTION_PROPOSE,
	ACTION_PROPOSE_BATCH,
	ACTION_READY,
	ACTION_DELIVER_ONE,
	ACTION_DELIVER_ALL,
	ACTION_DROP_ONE,
	ACTION_DUPLICATE_ONE,
	ACTION_STABILIZE,
	ACTION_READ_INDEX,
	ACTION_CONF_CHANGE,
	ACTION_CONF_CHANGE_V2,
	ACTION_TRANSFER,
	ACTION_UNREACHABLE,
	ACTION_SNAPSHOT_STATUS,
	ACTION_SNAPSHOT_COMPACT,
	ACTION_STEP_BYTES,
	ACTION_STEP_MESSAGE,
	ACTION_TAMPER,
	ACTION_TOGGLE_LINK,
	ACTION_READY_ASYNC, /* take a Ready, but its write completes later (ACTION_PERSIST_ONE) */
	ACTION_PERSIST_ONE, /* the oldest write in flight completes: raft_persisted, after-persist sends */
	ACTION_RESTART,     /* crash and restart from storage; the application may have lost a few entries */
	ACTION_COUNT
};

/* One entry as storage holds it (a restart hands it back to raft_new). */
struct stored_entry {
	uint64_t term;
	int type;
	uint8_t *data;
	size_t length;
};

/* A write handed to asynchronous storage: what raft_persisted reports when it completes and the
 * messages that may leave only then. Writes complete in order. */
struct pending_write {
	uint64_t index, term;
	Raftpb__Message **messages;
	size_t count;
};
#define PENDING_LIMIT 32

/* What one member's storage and application hold, to check the Ready contract against. */
struct member {
	struct pending_write pending[PENDING_LIMIT];
	size_t pending_count;
	uint64_t durable_index; /* highest index reported with raft_persisted */
	raft_t *raft;
	uint64_t snapshot_index;
	struct stored_entry *entries; /* entries[k] has index snapshot_index + 1 + k */
	size_t entries_count, entries_capacity;
	uint8_t *snapshot; /* the last snapshot installed, packed (NULL: none) */
	size_t snapshot_length;
	uint64_t snapshot_term;
	struct raft_config config;
	uint64_t applied;
	uint64_t hard_term, hard_vote, hard_commit;
	uint64_t last_status_term, last_status_commit;
};

struct world {
	struct member members[MEMBERS + 1];
	Raftpb__Message *queue[QUEUE_LIMIT];
	size_t queue_count;
	bool link_down[MEMBERS + 2][MEMBERS + 2];
	bool tainted; /* a hostile message was stepped: cross-member properties no longer promised */
	bool honest;  /* FUZZ_RAFT_HONEST set: hostile actions are skipped (their bytes still consumed), so a
	               * long run keeps checking the cross-member properties */
	uint64_t leader_of_term[TRACKED_TERMS];
	uint64_t committed_term[TRACKED_INDEXES + 1]; /* 0: nobody applied that index yet */
	uint64_t read_counter;
	const uint8_t *input;
	size_t input_length, position;
};

#define FAIL(...)                                                                                 \
	do {                                                                                       \
		fprintf(stderr, "fuzz-raft-step: invariant broken: ");                             \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		abort();                                                                           \
	} while (0)

/* ---- input ------------------------------------------------------------------------------------- */

static uint8_t take_byte(struct world *world)
{
	return world->position < world->input_length ? world->input[world->position++] : 0;
}

static const uint8_t *take_bytes(struct world *world, size_t *length)
{
	size_t available = world->input_length - world->position;
	if (*length > available)
		*length = available;
	const uint8_t *bytes = world->input + world->position;
	world->position += *length;
	return bytes;
}

/* ---- storage and the Ready contract ------------------------------------------------------------ */

static uint64_t stored_last(const struct member *member)
{
	return member->snapshot_index + member->entries_count;
}

static void store_entries(struct member *member, uint64_t id, Raftpb__Entry **entries, size_t count)
{
	uint64_t first = entries[0]->index;
	if (first <= member->snapshot_index || first > stored_last(member) + 1)
		FAIL("member %llu: Ready entries start at %llu, storage holds (%llu, %llu]", (unsigned long long)id,
		     (unsigned long long)first, (unsigned long long)member->snapshot_index,
		     (unsigned long long)stored_last(member));
	if (first <= member->applied)
		FAIL("member %llu: Ready rewrites applied index %llu", (unsigned long long)id, (unsigned long long)first);
	size_t keep = (size_t)(first - member->snapshot_index - 1);
	for (size_t k = keep; k < member->entries_count; k++)
		free(member->entries[k].data);
	member->entries_count = keep;
	if (member->entries_count + count > member->entries_capacity) {
		member->entries_capacity = (member->entries_count + count) * 2;
		member->entries = realloc(member->entries, member->entries_capacity * sizeof *member->entries);
		if (!member->entries)
			abort();
	}
	for (size_t k = 0; k < count; k++) {
		if (entries[k]->index != first + k)
			FAIL("member %llu: Ready entries not contiguous", (unsigned long long)id);
		uint8_t *data = malloc(entries[k]->data.len + 1);
		if (!data)
			abort();
		if (entries[k]->data.len)
			memcpy(data, entries[k]->data.data, entries[k]->data.len);
		member->entries[member->entries_count++] = (struct stored_entry){
			.term = entries[k]->term,
			.type = (int)entries[k]->type,
			.data = data,
			.length = entries[k]->data.len,
		};
	}
}

static uint64_t stored_term(const struct member *member, uint64_t index)
{
	if (index <= member->snapshot_index || index > stored_last(member))
		return 0;
	return member->entries[index - member->snapshot_index - 1].term;
}

static Raftpb__Message *copy_message(const Raftpb__Message *message);
static void complete_write(struct world *world, uint64_t id);

static void queue_message(struct world *world, const Raftpb__Message *message)
{
	Raftpb__Message *copy = copy_message(message);
	if (world->queue_count == QUEUE_LIMIT) { /* the network is full: the oldest message is lost */
		raftpb__message__free_unpacked(world->queue[0], NULL);
		memmove(world->queue, world->queue + 1, (QUEUE_LIMIT - 1) * sizeof world->queue[0]);
		world->queue_count--;
	}
	world->queue[world->queue_count++] = copy;
}

static void apply_committed(struct world *world, struct member *member, uint64_t id, const Raftpb__Entry *entry)
{
	if (entry->index != member->applied + 1)
		FAIL("member %llu: committed entry %llu delivered after applied %llu", (unsigned long long)id,
		     (unsigned long long)entry->index, (unsigned long long)member->applied);
	if (stored_term(member, entry->index) != entry->term)
		FAIL("member %llu: committed entry %llu (term %llu) is not the stored one (term %llu)",
		     (unsigned long long)id, (unsigned long long)entry->index, (unsigned long long)entry->term,
		     (unsigned long long)stored_term(member, entry->index));
	member->applied = entry->index;
	if (world->tainted || entry->index > TRACKED_INDEXES)
		return;
	uint64_t *first = &world->committed_term[entry->index];
	if (*first == 0)
		*first = entry->term;
	else if (*first != entry->term)
		FAIL("State Machine Safety: member %llu applied index %llu of term %llu, another applied term %llu",
		     (unsigned long long)id, (unsigned long long)entry->index, (unsigned long long)entry->term,
		     (unsigned long long)*first);
}

static Raftpb__Message *copy_message(const Raftpb__Message *message)
{
	size_t size = raftpb__message__get_packed_size(message);
	uint8_t *buffer = malloc(size + 1);
	if (!buffer)
		abort();
	raftpb__message__pack(message, buffer);
	Raftpb__Message *copy = raftpb__message__unpack(NULL, size, buffer);
	free(buffer);
	if (!copy)
		FAIL("a message of type %d emitted by the core does not decode", (int)message->type);
	return copy;
}

/* The oldest write completes: report it, then let its after-persist messages go. */
static void complete_write(struct world *world, uint64_t id)
{
	struct member *member = &world->members[id];
	if (member->pending_count == 0)
		return;
	struct pending_write write = member->pending[0];
	memmove(member->pending, member->pending + 1, (member->pending_count - 1) * sizeof member->pending[0]);
	member->pending_count--;
	if (write.index || write.term) {
		raft_persisted(member->raft, write.index, write.term);
		if (write.index > member->durable_index)
			member->durable_index = write.index;
	}
	for (size_t k = 0; k < write.count; k++) {
		queue_message(world, write.messages[k]);
		raftpb__message__free_unpacked(write.messages[k], NULL);
	}
	free(write.messages);
}

static bool process_ready(struct world *world, uint64_t id, bool asynchronous)
{
	struct member *member = &world->members[id];
	struct raft_ready ready;
	if (!raft_ready(member->raft, &ready))
		return false;
	if (ready.has_hard_state) {
		const Raftpb__HardState *hard = &ready.hard_state;
		if (hard->term < member->hard_term)
			FAIL("member %llu: durable term went back", (unsigned long long)id);
		if (hard->term == member->hard_term && member->hard_vote != RAFT_NONE && hard->vote != member->hard_vote)
			FAIL("member %llu: vote changed within term %llu", (unsigned long long)id,
			     (unsigned long long)hard->term);
		if (hard->commit < member->hard_commit)
			FAIL("member %llu: durable commit went back", (unsigned long long)id);
		member->hard_term = hard->term;
		member->hard_vote = hard->vote;
		member->hard_commit = hard->commit;
	}
	if (ready.snapshot) {
		if (!ready.snapshot->metadata)
			FAIL("member %llu: snapshot without metadata", (unsigned long long)id);
		uint64_t index = ready.snapshot->metadata->index;
		if (index <= member->applied)
			FAIL("member %llu: snapshot at %llu not ahead of applied %llu", (unsigned long long)id,
			     (unsigned long long)index, (unsigned long long)member->applied);
		member->snapshot_index = index;
		member->snapshot_term = ready.snapshot->metadata->term;
		for (size_t k = 0; k < member->entries_count; k++)
			free(member->entries[k].data);
		member->entries_count = 0;
		free(member->snapshot);
		member->snapshot_length = raftpb__snapshot__get_packed_size(ready.snapshot);
		member->snapshot = malloc(member->snapshot_length + 1);
		if (!member->snapshot)
			abort();
		raftpb__snapshot__pack(ready.snapshot, member->snapshot);
		member->applied = index;
	}
	if (ready.entries_count)
		store_entries(member, id, ready.entries, ready.entries_count);
	for (size_t k = 0; k < ready.messages_count; k++)
		queue_message(world, ready.messages[k]);
	/* The write of this Ready is issued; its after-persist messages wait for it. */
	struct pending_write write = {.index = ready.persist_index, .term = ready.persist_term};
	write.count = ready.messages_after_persist_count;
	write.messages = calloc(write.count + 1, sizeof *write.messages);
	if (!write.messages)
		abort();
	for (size_t k = 0; k < write.count; k++)
		write.messages[k] = copy_message(ready.messages_after_persist[k]);
	for (size_t k = 0; k < ready.committed_entries_count; k++) {
		const Raftpb__Entry *entry = ready.committed_entries[k];
		/* "Committed and locally durable": never beyond what storage reported. */
		if (entry->index > member->durable_index && entry->index > member->snapshot_index)
			FAIL("member %llu: committed entry %llu delivered before it is durable (reported up to %llu)",
			     (unsigned long long)id, (unsigned long long)entry->index,
			     (unsigned long long)member->durable_index);
		apply_committed(world, member, id, entry);
	}
	raft_advance(member->raft, &ready);
	if (member->pending_count == PENDING_LIMIT)
		complete_write(world, id);
	member->pending[member->pending_count++] = write;
	if (!asynchronous)
		while (member->pending_count)
			complete_write(world, id);
	return true;
}

/* Crash and restart from storage (raft_new with a raft_restore of what was written). Writes in flight
 * complete first: this storage has no torn writes. Readies not yet taken are lost, as in a crash. The
 * application's durable applied index may lag by up to 3 entries (not below the snapshot), so those are
 * delivered again and must be the same entries. */
static void restart(struct world *world, uint64_t id)
{
	struct member *member = &world->members[id];
	uint8_t lag = take_byte(world) % 4;
	while (member->pending_count)
		complete_write(world, id);
	raft_free(member->raft);
	member->raft = NULL;

	Raftpb__Snapshot *snapshot = NULL;
	if (member->snapshot) {
		snapshot = raftpb__snapshot__unpack(NULL, member->snapshot_length, member->snapshot);
		if (!snapshot)
			FAIL("member %llu: stored snapshot does not decode", (unsigned long long)id);
	}
	Raftpb__Entry *entries = calloc(member->entries_count + 1, sizeof *entries);
	Raftpb__Entry **pointers = calloc(member->entries_count + 1, sizeof *pointers);
	if (!entries || !pointers)
		abort();
	for (size_t k = 0; k < member->entries_count; k++) {
		raftpb__entry__init(&entries[k]);
		entries[k].index = member->snapshot_index + 1 + k;
		entries[k].term = member->entries[k].term;
		entries[k].type = (Raftpb__EntryType)member->entries[k].type;
		entries[k].data.data = member->entries[k].data;
		entries[k].data.len = member->entries[k].length;
		pointers[k] = &entries[k];
	}
	Raftpb__HardState hard_state = RAFTPB__HARD_STATE__INIT;
	hard_state.term = member->hard_term;
	hard_state.vote = member->hard_vote;
	hard_state.commit = member->hard_commit;
	struct raft_restore restore = {
		.hard_state = &hard_state,
		.snapshot = snapshot,
		.entries = pointers,
		.entries_count = member->entries_count,
	};
	uint64_t applied = member->applied;
	if (applied >= member->snapshot_index + lag)
		applied -= lag;
	if (applied > member->hard_commit && applied > member->snapshot_index)
		applied = member->hard_commit > member->snapshot_index ? member->hard_commit : member->snapshot_index;
	member->config.applied = applied;
	char errbuf[256] = "";
	member->raft = raft_new(&member->config, &restore, errbuf, sizeof errbuf);
	free(pointers);
	free(entries);
	if (snapshot)
		raftpb__snapshot__free_unpacked(snapshot, NULL);
	if (!member->raft)
		FAIL("member %llu: restart refused: %s", (unsigned long long)id, errbuf);
	member->applied = applied;
	member->durable_index = stored_last(member);
	/* Only what was durable survives: the term and commit may be behind what the core had in memory. */
	member->last_status_term = member->hard_term;
	member->last_status_commit = 0;
}

/* ---- the network ------------------------------------------------------------------------------- */

static void remove_message(struct world *world, size_t position)
{
	raftpb__message__free_unpacked(world->queue[position], NULL);
	memmove(world->queue + position, world->queue + position + 1,
	        (world->queue_count - position - 1) * sizeof world->queue[0]);
	world->queue_count--;
}

static void deliver(struct world *world, size_t position)
{
	Raftpb__Message *message = world->queue[position];
	world->queue[position] = NULL;
	memmove(world->queue + position, world->queue + position + 1,
	        (world->queue_count - position - 1) * sizeof world->queue[0]);
	world->queue_count--;
	uint64_t to = message->to, from = message->from;
	if (to >= 1 && to <= MEMBERS && !(from <= MEMBERS + 1 && world->link_down[from][to]))
		(void)raft_step(world->members[to].raft, message);
	raftpb__message__free_unpacked(message, NULL);
}

static void deliver_all(struct world *world)
{
	size_t count = world->queue_count;
	for (size_t k = 0; k < count && world->queue_count; k++)
		deliver(world, 0);
}

static void stabilize(struct world *world)
{
	for (int round = 0; round < 50; round++) {
		bool moved = false;
		for (uint64_t id = 1; id <= MEMBERS; id++) {
			while (world->members[id].pending_count) {
				complete_write(world, id);
				moved = true;
			}
			while (process_ready(world, id, false))
				moved = true;
		}
		if (world->queue_count) {
			moved = true;
			deliver_all(world);
		}
		if (!moved)
			return;
	}
}

/* ---- invariants -------------------------------------------------------------------------------- */

static void check_member(struct world *world, uint64_t id)
{
	struct member *member = &world->members[id];
	struct raft_status status;
	raft_get_status(member->raft, &status);
	if (status.commit > status.last_index)
		FAIL("member %llu: commit %llu beyond last index %llu", (unsigned long long)id,
		     (unsigned long long)status.commit, (unsigned long long)status.last_index);
	if (status.applied > status.commit)
		FAIL("member %llu: applied %llu beyond commit %llu", (unsigned long long)id,
		     (unsigned long long)status.applied, (unsigned long long)status.commit);
	if (status.first_index > status.last_index + 1)
		FAIL("member %llu: first index %llu beyond last index %llu + 1", (unsigned long long)id,
		     (unsigned long long)status.first_index, (unsigned long long)status.last_index);
	if (status.persisted > status.last_index)
		FAIL("member %llu: persisted %llu beyond last index %llu", (unsigned long long)id,
		     (unsigned long long)status.persisted, (unsigned long long)status.last_index);
	if (status.term < member->last_status_term)
		FAIL("member %llu: term went back from %llu to %llu", (unsigned long long)id,
		     (unsigned long long)member->last_status_term, (unsigned long long)status.term);
	if (status.commit < member->last_status_commit)
		FAIL("member %llu: commit went back from %llu to %llu", (unsigned long long)id,
		     (unsigned long long)member->last_status_commit, (unsigned long long)status.commit);
	if (status.applied != member->applied)
		FAIL("member %llu: status applied %llu, delivered %llu", (unsigned long long)id,
		     (unsigned long long)status.applied, (unsigned long long)member->applied);
	if (status.role == RAFT_LEADER && status.leader != id)
		FAIL("member %llu: leader that names %llu as leader", (unsigned long long)id,
		     (unsigned long long)status.leader);
	if (status.last_index >= status.first_index && raft_term_at(member->raft, status.last_index) > status.term)
		FAIL("member %llu: last entry term %llu above current term %llu", (unsigned long long)id,
		     (unsigned long long)raft_term_at(member->raft, status.last_index), (unsigned long long)status.term);
	member->last_status_term = status.term;
	member->last_status_commit = status.commit;

	if (!world->tainted && status.role == RAFT_LEADER && status.term < TRACKED_TERMS) {
		uint64_t *leader = &world->leader_of_term[status.term];
		if (*leader != RAFT_NONE && *leader != id)
			FAIL("Election Safety: members %llu and %llu both lead term %llu", (unsigned long long)*leader,
			     (unsigned long long)id, (unsigned long long)status.term);
		*leader = id;
	}
}

static void check_all(struct world *world)
{
	for (uint64_t id = 1; id <= MEMBERS; id++)
		check_member(world, id);
}

/* ---- actions ----------------------------------------------------------------------------------- */

static void conf_change(struct world *world, uint64_t id)
{
	uint8_t parameter = take_byte(world);
	Raftpb__ConfChange change = RAFTPB__CONF_CHANGE__INIT;
	change.type = (Raftpb__ConfChangeType)(parameter % 4);
	change.node_id = (uint64_t)((parameter >> 2) % (MEMBERS + 1)) + 1; /* 4: a member without a core */
	(void)raft_propose_conf_change(world->members[id].raft, &change, NULL);
}

static void conf_change_v2(struct world *world, uint64_t id)
{
	uint8_t parameter = take_byte(world), second = take_byte(world);
	Raftpb__ConfChangeSingle singles[2] = {RAFTPB__CONF_CHANGE_SINGLE__INIT, RAFTPB__CONF_CHANGE_SINGLE__INIT};
	Raftpb__ConfChangeSingle *pointers[2] = {&singles[0], &singles[1]};
	singles[0].type = (Raftpb__ConfChangeType)(parameter % 4);
	singles[0].node_id = (uint64_t)((parameter >> 2) % (MEMBERS + 1)) + 1;
	singles[1].type = (Raftpb__ConfChangeType)(second % 4);
	singles[1].node_id = (uint64_t)((second >> 2) % (MEMBERS + 1)) + 1;
	Raftpb__ConfChangeV2 change = RAFTPB__CONF_CHANGE_V2__INIT;
	change.transition = (Raftpb__ConfChangeTransition)((parameter >> 4) % 3);
	change.n_changes = (size_t)((second >> 4) % 3); /* 0: leave a joint configuration */
	change.changes = change.n_changes ? pointers : NULL;
	(void)raft_propose_conf_change_v2(world->members[id].raft, &change, NULL);
}

static void snapshot_and_compact(struct world *world, uint64_t id)
{
	raft_t *raft = world->members[id].raft;
	struct raft_status status;
	raft_get_status(raft, &status);
	if (status.applied == 0)
		return;
	if (raft_create_snapshot(raft, status.applied, NULL, "snapshot", 8) == RAFT_OK) {
		uint64_t upto = status.applied < status.persisted ? status.applied : status.persisted;
		(void)raft_compact(raft, upto);
	}
}

static void step_hostile_bytes(struct world *world, uint64_t id)
{
	size_t length = take_byte(world);
	length |= (size_t)take_byte(world) << 8;
	const uint8_t *bytes = take_bytes(world, &length);
	if (world->honest)
		return;
	Raftpb__Message *decoded = raftpb__message__unpack(NULL, length, bytes);
	if (decoded) {
		world->tainted = true;
		raftpb__message__free_unpacked(decoded, NULL);
	}
	(void)raft_step_bytes(world->members[id].raft, bytes, length);
}

/* A decoded message re-addressed to the member, from a chosen peer (4: not a member), so that mutated
 * messages reach the logic behind the address checks. */
static void step_hostile_message(struct world *world, uint64_t id)
{
	uint8_t from = take_byte(world);
	size_t length = take_byte(world);
	length |= (size_t)take_byte(world) << 8;
	const uint8_t *bytes = take_bytes(world, &length);
	if (world->honest)
		return;
	Raftpb__Message *decoded = raftpb__message__unpack(NULL, length, bytes);
	if (!decoded)
		return;
	world->tainted = true;
	decoded->to = id;
	decoded->from = (uint64_t)(from % (MEMBERS + 1)) + 1;
	(void)raft_step(world->members[id].raft, decoded);
	raftpb__message__free_unpacked(decoded, NULL);
}

/* Changes one field of a queued message by a small amount and delivers it. */
static void tamper(struct world *world)
{
	uint8_t position = take_byte(world), field = take_byte(world), amount = take_byte(world);
	if (world->queue_count == 0 || world->honest)
		return;
	Raftpb__Message *message = world->queue[position % world->queue_count];
	uint64_t delta = amount & 0x7f;
	bool down = amount & 0x80;
	uint64_t *target = NULL;
	switch (field % 8) {
	case 0: target = &message->term; break;
	case 1: target = &message->log_term; break;
	case 2: target = &message->index; break;
	case 3: target = &message->commit; break;
	case 4: target = &message->reject_hint; break;
	case 5: message->reject = !message->reject; break;
	case 6:
		if (message->n_entries)
			target = &message->entries[delta % message->n_entries]->term;
		break;
	case 7:
		if (message->n_entries)
			target = &message->entries[delta % message->n_entries]->index;
		break;
	}
	if (target)
		*target = down ? *target - delta : *target + delta; /* wraps: impossible values are the point */
	world->tainted = true;
	deliver(world, position % world->queue_count);
}

static void run_action(struct world *world, uint64_t id, enum action action)
{
	raft_t *raft = world->members[id].raft;
	switch (action) {
	case ACTION_TICK:
		raft_tick(raft);
		break;
	case ACTION_TICK_ELECTION:
		for (int k = 0; k < 20; k++)
			raft_tick(raft);
		break;
	case ACTION_CAMPAIGN:
		(void)raft_campaign(raft);
		break;
	case ACTION_PROPOSE: {
		size_t length = take_byte(world) % 48;
		const uint8_t *data = take_bytes(world, &length);
		(void)raft_propose(raft, data, length, NULL);
		break;
	}
	case ACTION_PROPOSE_BATCH: {
		struct raft_buffer buffers[8];
		size_t count = (size_t)(take_byte(world) % 8) + 1;
		for (size_t k = 0; k < count; k++)
			buffers[k] = (struct raft_buffer){.data = "batched-entry", .length = 13};
		(void)raft_propose_batch(raft, buffers, count, NULL);
		break;
	}
	case ACTION_READY:
		(void)process_ready(world, id, false);
		break;
	case ACTION_READY_ASYNC:
		(void)process_ready(world, id, true);
		break;
	case ACTION_PERSIST_ONE:
		complete_write(world, id);
		break;
	case ACTION_RESTART:
		restart(world, id);
		break;
	case ACTION_DELIVER_ONE: {
		uint8_t position = take_byte(world);
		if (world->queue_count)
			deliver(world, position % world->queue_count);
		break;
	}
	case ACTION_DELIVER_ALL:
		deliver_all(world);
		break;
	case ACTION_DROP_ONE: {
		uint8_t position = take_byte(world);
		if (world->queue_count)
			remove_message(world, position % world->queue_count);
		break;
	}
	case ACTION_DUPLICATE_ONE: {
		uint8_t position = take_byte(world);
		if (world->queue_count)
			queue_message(world, world->queue[position % world->queue_count]);
		break;
	}
	case ACTION_STABILIZE:
		stabilize(world);
		break;
	case ACTION_READ_INDEX: {
		uint64_t context = ++world->read_counter;
		(void)raft_read_index(raft, &context, sizeof context);
		break;
	}
	case ACTION_CONF_CHANGE:
		conf_change(world, id);
		break;
	case ACTION_CONF_CHANGE_V2:
		conf_change_v2(world, id);
		break;
	case ACTION_TRANSFER:
		(void)raft_transfer_leadership(raft, (uint64_t)(take_byte(world) % (MEMBERS + 1)) + 1);
		break;
	case ACTION_UNREACHABLE:
		raft_report_unreachable(raft, (uint64_t)(take_byte(world) % MEMBERS) + 1);
		break;
	case ACTION_SNAPSHOT_STATUS: {
		uint8_t parameter = take_byte(world);
		raft_report_snapshot(raft, (uint64_t)(parameter % MEMBERS) + 1, parameter & 0x80);
		break;
	}
	case ACTION_SNAPSHOT_COMPACT:
		snapshot_and_compact(world, id);
		break;
	case ACTION_STEP_BYTES:
		step_hostile_bytes(world, id);
		break;
	case ACTION_STEP_MESSAGE:
		step_hostile_message(world, id);
		break;
	case ACTION_TAMPER:
		tamper(world);
		break;
	case ACTION_TOGGLE_LINK: {
		uint64_t other = (uint64_t)(take_byte(world) % MEMBERS) + 1;
		bool down = !world->link_down[id][other];
		world->link_down[id][other] = world->link_down[other][id] = down;
		break;
	}
	case ACTION_COUNT:
		break;
	}
}

/* FUZZ_RAFT_VERBOSE=1 fuzz-raft-step FILE: where a script led (to read a seed or a crash). */
static void print_summary(struct world *world)
{
	for (uint64_t id = 1; id <= MEMBERS; id++) {
		struct raft_status status;
		raft_get_status(world->members[id].raft, &status);
		fprintf(stderr, "member %llu: %s term %llu leader %llu commit %llu applied %llu log [%llu, %llu]%s\n",
		        (unsigned long long)id, raft_role_name(status.role), (unsigned long long)status.term,
		        (unsigned long long)status.leader, (unsigned long long)status.commit,
		        (unsigned long long)status.applied, (unsigned long long)status.first_index,
		        (unsigned long long)status.last_index, status.joint ? " joint" : "");
	}
	fprintf(stderr, "%zu messages in flight; hostile input %s\n", world->queue_count,
	        world->tainted ? "stepped (cross-member checks off)" : "none");
}

/* ---- the cluster ------------------------------------------------------------------------------- */

static void configure(struct raft_config *config, uint64_t id, uint8_t flags)
{
	raft_config_defaults(config, id);
	config->random_seed = id * 0x9e3779b97f4a7c15ull + flags;
	config->pre_vote = flags & 1;
	config->check_quorum = (flags & 2) || (flags & 4);
	config->read_only_option = (flags & 4) ? RAFT_READ_ONLY_LEASE_BASED : RAFT_READ_ONLY_SAFE;
	if (flags & 8)
		config->max_size_per_msg = 0;
	if (flags & 16) {
		config->max_inflight_msgs = 2;
		config->max_inflight_bytes = 64;
	}
	if (flags & 32)
		config->max_uncommitted_entries_size = 256;
	if (flags & 64)
		config->disable_proposal_forwarding = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct world world; /* large: kept off the stack, reset each run */
	memset(&world, 0, sizeof world);
	world.input = data;
	world.input_length = size;
	uint8_t flags = take_byte(&world);
	bool trace = getenv("FUZZ_RAFT_TRACE") != NULL; /* every action and the members after it */
	world.honest = getenv("FUZZ_RAFT_HONEST") != NULL;

	uint64_t voters[MEMBERS];
	for (uint64_t id = 1; id <= MEMBERS; id++)
		voters[id - 1] = id;
	for (uint64_t id = 1; id <= MEMBERS; id++) {
		struct raft_config config;
		configure(&config, id, flags);
		world.members[id].config = config;
		char errbuf[256];
		world.members[id].raft = raft_new(&config, NULL, errbuf, sizeof errbuf);
		if (!world.members[id].raft)
			FAIL("raft_new: %s", errbuf);
		if (raft_bootstrap(world.members[id].raft, voters, MEMBERS) != RAFT_OK)
			FAIL("raft_bootstrap failed");
	}
	stabilize(&world);
	check_all(&world);

	while (world.position < world.input_length) {
		uint8_t selector = take_byte(&world);
		uint64_t id = (uint64_t)(selector % MEMBERS) + 1;
		enum action action = (enum action)((selector / MEMBERS) % ACTION_COUNT);
		run_action(&world, id, action);
		check_all(&world);
		if (trace) {
			fprintf(stderr, "-- action %d on member %llu\n", (int)action, (unsigned long long)id);
			print_summary(&world);
		}
	}
	/* Let the network settle and check once more (a crash here is as telling as anywhere). */
	stabilize(&world);
	check_all(&world);
	if (getenv("FUZZ_RAFT_VERBOSE"))
		print_summary(&world);

	for (size_t k = 0; k < world.queue_count; k++)
		raftpb__message__free_unpacked(world.queue[k], NULL);
	for (uint64_t id = 1; id <= MEMBERS; id++) {
		raft_free(world.members[id].raft);
		for (size_t k = 0; k < world.members[id].entries_count; k++)
			free(world.members[id].entries[k].data);
		free(world.members[id].entries);
		free(world.members[id].snapshot);
		for (size_t k = 0; k < world.members[id].pending_count; k++) {
			struct pending_write *write = &world.members[id].pending[k];
			for (size_t m = 0; m < write->count; m++)
				raftpb__message__free_unpacked(write->messages[m], NULL);
			free(write->messages);
		}
	}
	return 0;
}
