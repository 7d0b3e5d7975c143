/* tests/raft/harness.c: the in-test cluster of tests/raft/harness.h and the check helpers.
 *
 * Storage persists every Ready before anything else happens, so the messages of both lists may leave
 * at once; the harness still checks, Ready by Ready, what raft.h promises (entries contiguous and not
 * rewriting committed ones, committed entries durable and in order, one vote per term), because a test
 * that drives the core should catch a broken promise wherever it shows up.
 */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks ------------------------------------------------------------------------------------- */

extern const char *current_test_name;
extern int current_test_failures;
extern jmp_buf current_test_abort;
void test_register_cluster(struct cluster *cluster);

void test_fail(const char *file, int line, const char *format, ...)
{
	va_list arguments;
	fprintf(stderr, "    FAIL %s: %s:%d: ", current_test_name ? current_test_name : "?", file, line);
	va_start(arguments, format);
	vfprintf(stderr, format, arguments);
	va_end(arguments);
	fputc('\n', stderr);
	current_test_failures++;
}

_Noreturn void test_abort(void)
{
	longjmp(current_test_abort, 1);
}

const char *raft_error_name(int code)
{
	static const char *const names[] = {
#define RAFT_ERROR_NAME(code, text) #code,
		RAFT_ERROR_LIST(RAFT_ERROR_NAME)
#undef RAFT_ERROR_NAME
	};
	if (code < 0 || code >= RAFT_ERROR_COUNT)
		return "RAFT_ERR_(out of table)";
	return names[code];
}

bool check_rc(const char *file, int line, const char *expression, int expected, int got)
{
	if (expected == got)
		return true;
	test_fail(file, line, "%s: expected %s, got %s (%d: %s)", expression, raft_error_name(expected),
	          raft_error_name(got), got, raft_strerror(got));
	return false;
}

static uint64_t stored_last_index(const struct node *member);

/* ---- small helpers ------------------------------------------------------------------------------- */

static void *checked_calloc(size_t count, size_t size)
{
	void *pointer = calloc(count ? count : 1, size ? size : 1);
	if (pointer == NULL) {
		fprintf(stderr, "harness: out of memory\n");
		abort();
	}
	return pointer;
}

static void *checked_realloc(void *pointer, size_t size)
{
	void *grown = realloc(pointer, size ? size : 1);
	if (grown == NULL) {
		fprintf(stderr, "harness: out of memory\n");
		abort();
	}
	return grown;
}

static uint8_t *copy_bytes(const void *data, size_t length)
{
	uint8_t *copy = checked_calloc(length + 1, 1);
	if (length)
		memcpy(copy, data, length);
	return copy;
}

/* A deep copy through the wire format: the queue owns it, and packing every message also checks
 * that everything the core emits encodes and decodes. */
static Raftpb__Message *copy_message(const Raftpb__Message *message)
{
	size_t size = raftpb__message__get_packed_size(message);
	uint8_t *buffer = checked_calloc(size + 1, 1);
	raftpb__message__pack(message, buffer);
	Raftpb__Message *copy = raftpb__message__unpack(NULL, size, buffer);
	free(buffer);
	if (copy == NULL) {
		test_fail(__FILE__, __LINE__, "a message of type %d from %llu does not survive pack/unpack",
		          (int)message->type, (unsigned long long)message->from);
		test_abort();
	}
	return copy;
}

struct node *node(struct cluster *cluster, uint64_t id)
{
	if (id == 0 || id > cluster->size) {
		test_fail(__FILE__, __LINE__, "no node %llu in a cluster of %zu", (unsigned long long)id,
		          cluster->size);
		test_abort();
	}
	return &cluster->nodes[id];
}

static raft_t *started(struct cluster *cluster, uint64_t id)
{
	struct node *member = node(cluster, id);
	if (member->raft == NULL) {
		test_fail(__FILE__, __LINE__, "node %llu is not started", (unsigned long long)id);
		test_abort();
	}
	return member->raft;
}

struct raft_status node_status(struct cluster *cluster, uint64_t id)
{
	struct raft_status status;
	memset(&status, 0, sizeof status);
	raft_get_status(started(cluster, id), &status);
	return status;
}

/* ---- construction -------------------------------------------------------------------------------- */

static void make_config(struct cluster *cluster, uint64_t id, configure_fn configure)
{
	struct raft_config *config = &cluster->nodes[id].config;
	raft_config_defaults(config, id);
	/* The paper's protocol unless a test asks for more: raft_config_defaults turns PreVote and
	 * CheckQuorum on, and the Figure 2 tests check the rules without them. */
	config->pre_vote = false;
	config->check_quorum = false;
	config->random_seed = 0x9e3779b97f4a7c15ull * id + 12345;
	if (configure)
		configure(config);
	config->id = id;
}

struct cluster *cluster_new_empty(size_t size, configure_fn configure)
{
	if (size == 0 || size > HARNESS_MAX_NODES) {
		test_fail(__FILE__, __LINE__, "cluster size %zu out of 1..%d", size, HARNESS_MAX_NODES);
		test_abort();
	}
	struct cluster *cluster = checked_calloc(1, sizeof *cluster);
	cluster->size = size;
	for (uint64_t id = 1; id <= size; id++) {
		cluster->nodes[id].id = id;
		make_config(cluster, id, configure);
	}
	test_register_cluster(cluster);
	return cluster;
}

static void create_core(struct cluster *cluster, uint64_t id, const struct raft_restore *restore)
{
	struct node *member = node(cluster, id);
	char errbuf[256] = "";
	member->raft = raft_new(&member->config, restore, errbuf, sizeof errbuf);
	if (member->raft == NULL) {
		test_fail(__FILE__, __LINE__, "raft_new(%llu): %s", (unsigned long long)id, errbuf);
		test_abort();
	}
	member->role = RAFT_FOLLOWER;
}

struct cluster *cluster_new_configured(size_t voters, configure_fn configure)
{
	return cluster_new_sized(voters, voters, configure);
}

struct cluster *cluster_new_sized(size_t voters, size_t size, configure_fn configure)
{
	struct cluster *cluster = cluster_new_empty(size, configure);
	uint64_t ids[HARNESS_MAX_NODES];
	for (size_t k = 0; k < voters; k++)
		ids[k] = k + 1;
	for (uint64_t id = 1; id <= voters; id++) {
		create_core(cluster, id, NULL);
		REQUIRE_RC(RAFT_OK, raft_bootstrap(cluster->nodes[id].raft, ids, voters));
	}
	stabilize(cluster);
	return cluster;
}

struct cluster *cluster_new(size_t voters)
{
	return cluster_new_sized(voters, voters, NULL);
}

void node_start_empty(struct cluster *cluster, uint64_t id)
{
	create_core(cluster, id, NULL);
}

void node_start_restored(struct cluster *cluster, uint64_t id, size_t voters, const uint64_t *terms,
                         size_t terms_count, uint64_t term, uint64_t vote)
{
	struct node *member = node(cluster, id);
	uint64_t voter_ids[HARNESS_MAX_NODES];
	for (size_t k = 0; k < voters; k++)
		voter_ids[k] = k + 1;

	Raftpb__ConfState conf_state = RAFTPB__CONF_STATE__INIT;
	conf_state.voters = voter_ids;
	conf_state.n_voters = voters;
	Raftpb__SnapshotMetadata metadata = RAFTPB__SNAPSHOT_METADATA__INIT;
	metadata.conf_state = &conf_state;
	metadata.index = 1;
	metadata.term = 1;
	Raftpb__Snapshot snapshot = RAFTPB__SNAPSHOT__INIT;
	snapshot.metadata = &metadata;
	static uint8_t snapshot_data[] = "restored";
	snapshot.data.data = snapshot_data;
	snapshot.data.len = sizeof snapshot_data - 1;

	Raftpb__HardState hard_state = RAFTPB__HARD_STATE__INIT;
	hard_state.term = term;
	hard_state.vote = vote;
	hard_state.commit = 1;

	Raftpb__Entry *entries = checked_calloc(terms_count, sizeof *entries);
	Raftpb__Entry **pointers = checked_calloc(terms_count, sizeof *pointers);
	for (size_t k = 0; k < terms_count; k++) {
		Raftpb__Entry init = RAFTPB__ENTRY__INIT;
		entries[k] = init;
		entries[k].index = k + 2;
		entries[k].term = terms[k];
		pointers[k] = &entries[k];
	}
	struct raft_restore restore = {
		.hard_state = &hard_state,
		.snapshot = &snapshot,
		.entries = pointers,
		.entries_count = terms_count,
	};
	member->config.applied = 1;
	create_core(cluster, id, &restore);
	free(pointers);
	free(entries);

	/* The harness's storage holds what was restored. */
	member->hard_state = hard_state;
	member->snapshot_index = 1;
	member->snapshot_term = 1;
	member->snapshot_packed_length = raftpb__snapshot__get_packed_size(&snapshot);
	member->snapshot_packed = checked_calloc(member->snapshot_packed_length + 1, 1);
	raftpb__snapshot__pack(&snapshot, member->snapshot_packed);
	member->applied_index = 1;
	member->durable_index = 1 + terms_count;
	member->log = checked_calloc(terms_count, sizeof *member->log);
	for (size_t k = 0; k < terms_count; k++)
		member->log[k] = (struct stored_entry){.index = k + 2, .term = terms[k]};
	member->log_count = terms_count;
}

static void free_node(struct node *member)
{
	if (member->raft)
		raft_free(member->raft);
	member->raft = NULL;
	for (size_t k = 0; k < member->log_count; k++)
		free(member->log[k].data);
	free(member->log);
	for (size_t k = 0; k < member->applied_count; k++)
		free(member->applied[k].data);
	free(member->applied);
	for (size_t k = 0; k < member->read_states_count; k++)
		free((void *)member->read_states[k].context);
	free(member->read_states);
	free(member->snapshot_packed);
	for (size_t k = 0; k < member->pending_count; k++) {
		for (size_t m = 0; m < member->pending[k].count; m++)
			raftpb__message__free_unpacked(member->pending[k].messages[m], NULL);
		free(member->pending[k].messages);
	}
	free(member->pending);
}

void node_restart(struct cluster *cluster, uint64_t id)
{
	struct node *member = node(cluster, id);
	/* The harness's storage has no torn writes: what was issued is what a restart reads. */
	complete_writes(cluster, id);
	member->durable_index = stored_last_index(member);
	if (member->raft)
		raft_free(member->raft);
	member->raft = NULL;
	Raftpb__Snapshot *snapshot = NULL;
	if (member->snapshot_packed) {
		snapshot = raftpb__snapshot__unpack(NULL, member->snapshot_packed_length, member->snapshot_packed);
		REQUIRE(snapshot != NULL);
	}
	Raftpb__Entry *entries = checked_calloc(member->log_count, sizeof *entries);
	Raftpb__Entry **pointers = checked_calloc(member->log_count, sizeof *pointers);
	for (size_t k = 0; k < member->log_count; k++) {
		Raftpb__Entry init = RAFTPB__ENTRY__INIT;
		entries[k] = init;
		entries[k].index = member->log[k].index;
		entries[k].term = member->log[k].term;
		entries[k].type = (Raftpb__EntryType)member->log[k].type;
		entries[k].data.data = member->log[k].data;
		entries[k].data.len = member->log[k].length;
		pointers[k] = &entries[k];
	}
	struct raft_restore restore = {
		.hard_state = &member->hard_state,
		.snapshot = snapshot,
		.entries = pointers,
		.entries_count = member->log_count,
	};
	member->config.applied = member->applied_index;
	char errbuf[256] = "";
	member->raft = raft_new(&member->config, &restore, errbuf, sizeof errbuf);
	free(pointers);
	free(entries);
	if (snapshot)
		raftpb__snapshot__free_unpacked(snapshot, NULL);
	if (member->raft == NULL) {
		test_fail(__FILE__, __LINE__, "restart of %llu: raft_new: %s", (unsigned long long)id, errbuf);
		test_abort();
	}
	member->role = RAFT_FOLLOWER;
	member->leader = RAFT_NONE;
}

void cluster_free(struct cluster *cluster)
{
	if (cluster == NULL)
		return;
	for (uint64_t id = 1; id <= cluster->size; id++)
		free_node(&cluster->nodes[id]);
	for (size_t k = 0; k < cluster->queue_count; k++)
		raftpb__message__free_unpacked(cluster->queue[k].message, NULL);
	free(cluster->queue);
	for (size_t k = 0; k < cluster->committed_count; k++)
		free(cluster->committed[k].data);
	free(cluster->committed);
	free(cluster);
}

/* ---- inputs --------------------------------------------------------------------------------------- */

int campaign(struct cluster *cluster, uint64_t id)
{
	return raft_campaign(started(cluster, id));
}

int propose(struct cluster *cluster, uint64_t id, const char *text)
{
	return raft_propose(started(cluster, id), text, strlen(text), NULL);
}

int step(struct cluster *cluster, uint64_t to, const Raftpb__Message *message)
{
	return raft_step(started(cluster, to), message);
}

void tick(struct cluster *cluster, uint64_t id, int ticks)
{
	raft_t *raft = started(cluster, id);
	for (int k = 0; k < ticks; k++)
		raft_tick(raft);
}

/* ---- the Ready ------------------------------------------------------------------------------------ */

static void enqueue(struct cluster *cluster, uint64_t from, const Raftpb__Message *message)
{
	if (message->from != from)
		test_fail(__FILE__, __LINE__, "node %llu emitted a message (type %d) with from = %llu",
		          (unsigned long long)from, (int)message->type, (unsigned long long)message->from);
	if (message->to == from)
		test_fail(__FILE__, __LINE__, "node %llu emitted a message (type %d) to itself",
		          (unsigned long long)from, (int)message->type);
	if ((unsigned)message->type < 32)
		cluster->sent_by_type[message->type]++;
	if (cluster->queue_count == cluster->queue_capacity) {
		cluster->queue_capacity = cluster->queue_capacity ? 2 * cluster->queue_capacity : 64;
		cluster->queue = checked_realloc(cluster->queue, cluster->queue_capacity * sizeof *cluster->queue);
	}
	cluster->queue[cluster->queue_count++].message = copy_message(message);
}

static uint64_t stored_last_index(const struct node *member)
{
	return member->snapshot_index + member->log_count;
}

static uint64_t stored_term(const struct node *member, uint64_t index)
{
	if (index == member->snapshot_index)
		return member->snapshot_term;
	if (index < member->snapshot_index || index > stored_last_index(member))
		return 0;
	return member->log[index - member->snapshot_index - 1].term;
}

static void store_hard_state(struct node *member, const Raftpb__HardState *hard_state)
{
	const Raftpb__HardState *old = &member->hard_state;
	if (hard_state->term < old->term)
		test_fail(__FILE__, __LINE__, "node %llu: hard state term went back from %llu to %llu",
		          (unsigned long long)member->id, (unsigned long long)old->term,
		          (unsigned long long)hard_state->term);
	/* Figure 2, RequestVote: a member votes for at most one candidate in a given term. */
	if (hard_state->term == old->term && old->vote != RAFT_NONE && hard_state->vote != old->vote)
		test_fail(__FILE__, __LINE__, "node %llu: vote changed from %llu to %llu within term %llu",
		          (unsigned long long)member->id, (unsigned long long)old->vote,
		          (unsigned long long)hard_state->vote, (unsigned long long)old->term);
	if (hard_state->commit < old->commit)
		test_fail(__FILE__, __LINE__, "node %llu: hard state commit went back from %llu to %llu",
		          (unsigned long long)member->id, (unsigned long long)old->commit,
		          (unsigned long long)hard_state->commit);
	member->hard_state.term = hard_state->term;
	member->hard_state.vote = hard_state->vote;
	member->hard_state.commit = hard_state->commit;
}

static void store_snapshot(struct node *member, const Raftpb__Snapshot *snapshot)
{
	if (snapshot->metadata == NULL) {
		test_fail(__FILE__, __LINE__, "node %llu: Ready snapshot without metadata",
		          (unsigned long long)member->id);
		return;
	}
	uint64_t index = snapshot->metadata->index;
	if (index <= member->applied_index)
		test_fail(__FILE__, __LINE__, "node %llu: Ready snapshot at %llu is not ahead of applied %llu",
		          (unsigned long long)member->id, (unsigned long long)index,
		          (unsigned long long)member->applied_index);
	for (size_t k = 0; k < member->log_count; k++)
		free(member->log[k].data);
	member->log_count = 0;
	free(member->snapshot_packed);
	member->snapshot_packed_length = raftpb__snapshot__get_packed_size(snapshot);
	member->snapshot_packed = checked_calloc(member->snapshot_packed_length + 1, 1);
	raftpb__snapshot__pack(snapshot, member->snapshot_packed);
	member->snapshot_index = index;
	member->snapshot_term = snapshot->metadata->term;
	/* The state machine is restored from the snapshot: it now reflects everything up to index. */
	member->applied_index = index;
	member->snapshots_installed++;
}

static void store_entries(struct node *member, Raftpb__Entry **entries, size_t count)
{
	uint64_t first = entries[0]->index;
	if (first <= member->snapshot_index || first > stored_last_index(member) + 1) {
		test_fail(__FILE__, __LINE__,
		          "node %llu: Ready entries start at %llu; storage holds (%llu, %llu] (gap or behind "
		          "the snapshot)",
		          (unsigned long long)member->id, (unsigned long long)first,
		          (unsigned long long)member->snapshot_index,
		          (unsigned long long)stored_last_index(member));
		return;
	}
	/* Log Matching / Leader Completeness: a committed entry is never rewritten. */
	if (first <= member->hard_state.commit && first <= stored_last_index(member) &&
	    stored_term(member, first) != entries[0]->term)
		test_fail(__FILE__, __LINE__, "node %llu: Ready rewrites committed index %llu (commit %llu)",
		          (unsigned long long)member->id, (unsigned long long)first,
		          (unsigned long long)member->hard_state.commit);
	/* raft.h: drop every stored entry with index >= entries[0]->index, then append. */
	size_t keep = (size_t)(first - member->snapshot_index - 1);
	for (size_t k = keep; k < member->log_count; k++)
		free(member->log[k].data);
	member->log_count = keep;
	member->log = checked_realloc(member->log, (keep + count) * sizeof *member->log);
	uint64_t previous_term = stored_term(member, first - 1);
	for (size_t k = 0; k < count; k++) {
		const Raftpb__Entry *entry = entries[k];
		if (entry->index != first + k)
			test_fail(__FILE__, __LINE__, "node %llu: Ready entries not contiguous: %llu after %llu",
			          (unsigned long long)member->id, (unsigned long long)entry->index,
			          (unsigned long long)(first + k - 1));
		if (entry->term < previous_term)
			test_fail(__FILE__, __LINE__, "node %llu: entry %llu has term %llu below its predecessor's %llu",
			          (unsigned long long)member->id, (unsigned long long)entry->index,
			          (unsigned long long)entry->term, (unsigned long long)previous_term);
		previous_term = entry->term;
		member->log[member->log_count++] = (struct stored_entry){
			.index = first + k,
			.term = entry->term,
			.type = (int)entry->type,
			.data = copy_bytes(entry->data.data, entry->data.len),
			.length = entry->data.len,
		};
	}
}

/* State Machine Safety (Figure 3): no two members apply different entries at the same index. */
static void record_committed(struct cluster *cluster, const struct node *member, const Raftpb__Entry *entry)
{
	size_t position = (size_t)entry->index - 1;
	if (position < cluster->committed_count && cluster->committed[position].term != 0) {
		const struct applied_entry *first = &cluster->committed[position];
		if (first->term != entry->term || first->length != entry->data.len ||
		    (first->length && memcmp(first->data, entry->data.data, first->length) != 0))
			test_fail(__FILE__, __LINE__,
			          "node %llu applied index %llu term %llu, but term %llu was applied there before",
			          (unsigned long long)member->id, (unsigned long long)entry->index,
			          (unsigned long long)entry->term, (unsigned long long)first->term);
		return;
	}
	if (position >= cluster->committed_count) {
		cluster->committed = checked_realloc(cluster->committed, (position + 1) * sizeof *cluster->committed);
		memset(&cluster->committed[cluster->committed_count], 0,
		       (position + 1 - cluster->committed_count) * sizeof *cluster->committed);
		cluster->committed_count = position + 1;
	}
	cluster->committed[position] = (struct applied_entry){
		.index = entry->index,
		.term = entry->term,
		.type = (int)entry->type,
		.data = copy_bytes(entry->data.data, entry->data.len),
		.length = entry->data.len,
	};
}

static void apply_entries(struct cluster *cluster, struct node *member, Raftpb__Entry **entries, size_t count)
{
	for (size_t k = 0; k < count; k++) {
		const Raftpb__Entry *entry = entries[k];
		if (entry->index != member->applied_index + 1)
			test_fail(__FILE__, __LINE__, "node %llu: committed entry %llu delivered after applied %llu",
			          (unsigned long long)member->id, (unsigned long long)entry->index,
			          (unsigned long long)member->applied_index);
		if (entry->index > stored_last_index(member) || stored_term(member, entry->index) != entry->term)
			test_fail(__FILE__, __LINE__,
			          "node %llu: committed entry %llu (term %llu) is not the durable one (stored last "
			          "%llu, term there %llu)",
			          (unsigned long long)member->id, (unsigned long long)entry->index,
			          (unsigned long long)entry->term, (unsigned long long)stored_last_index(member),
			          (unsigned long long)stored_term(member, entry->index));
		if (entry->index > member->durable_index && entry->index > member->snapshot_index)
			test_fail(__FILE__, __LINE__,
			          "node %llu: committed entry %llu delivered before it is durable (reported up to %llu)",
			          (unsigned long long)member->id, (unsigned long long)entry->index,
			          (unsigned long long)member->durable_index);
		member->applied_index = entry->index;
		member->applied = checked_realloc(member->applied, (member->applied_count + 1) * sizeof *member->applied);
		member->applied[member->applied_count++] = (struct applied_entry){
			.index = entry->index,
			.term = entry->term,
			.type = (int)entry->type,
			.data = copy_bytes(entry->data.data, entry->data.len),
			.length = entry->data.len,
		};
		record_committed(cluster, member, entry);
	}
}

/* Election Safety (Figure 3): at most one leader can be elected in a given term. */
static void check_one_leader_per_term(struct cluster *cluster, const struct node *member)
{
	struct raft_status status;
	raft_get_status(member->raft, &status);
	if (status.role != RAFT_LEADER)
		return;
	if (status.term >= sizeof cluster->leader_of_term / sizeof cluster->leader_of_term[0])
		return;
	uint64_t *leader = &cluster->leader_of_term[status.term];
	if (*leader != RAFT_NONE && *leader != member->id)
		test_fail(__FILE__, __LINE__, "two leaders in term %llu: %llu and %llu", (unsigned long long)status.term,
		          (unsigned long long)*leader, (unsigned long long)member->id);
	*leader = member->id;
}

bool process_ready(struct cluster *cluster, uint64_t id)
{
	struct node *member = node(cluster, id);
	if (member->raft == NULL)
		return false;
	struct raft_ready ready;
	memset(&ready, 0, sizeof ready);
	if (!raft_ready(member->raft, &ready))
		return false;

	if (ready.soft_state_changed) {
		member->role = ready.role;
		member->leader = ready.leader;
	}
	/* Storage first: hard state, snapshot, entries; all durable before any message leaves. */
	if (ready.has_hard_state)
		store_hard_state(member, &ready.hard_state);
	if (ready.snapshot)
		store_snapshot(member, ready.snapshot);
	if (ready.entries_count) {
		member->last_entries_first = ready.entries[0]->index;
		member->last_entries_count = ready.entries_count;
		store_entries(member, ready.entries, ready.entries_count);
	}
	for (size_t k = 0; k < ready.messages_count; k++)
		enqueue(cluster, id, ready.messages[k]);
	/* The write of this Ready is issued; its after-persist messages leave once it is durable. */
	struct pending_write write = {.index = ready.persist_index, .term = ready.persist_term};
	write.count = ready.messages_after_persist_count;
	write.messages = checked_calloc(write.count + 1, sizeof *write.messages);
	for (size_t k = 0; k < write.count; k++)
		write.messages[k] = copy_message(ready.messages_after_persist[k]);
	member->pending = checked_realloc(member->pending, (member->pending_count + 1) * sizeof *member->pending);
	if (ready.committed_entries_count)
		apply_entries(cluster, member, ready.committed_entries, ready.committed_entries_count);
	for (size_t k = 0; k < ready.read_states_count; k++) {
		const struct raft_read_state *read = &ready.read_states[k];
		member->read_states = checked_realloc(member->read_states,
		                                      (member->read_states_count + 1) * sizeof *member->read_states);
		member->read_states[member->read_states_count++] = (struct raft_read_state){
			.index = read->index,
			.context = copy_bytes(read->context, read->context_length),
			.context_length = read->context_length,
		};
	}
	raft_advance(member->raft, &ready);
	member->pending[member->pending_count++] = write;
	if (!member->asynchronous)
		complete_writes(cluster, id);
	check_one_leader_per_term(cluster, member);
	return true;
}

size_t complete_writes(struct cluster *cluster, uint64_t id)
{
	struct node *member = node(cluster, id);
	size_t count = member->pending_count;
	for (size_t k = 0; k < count; k++) {
		struct pending_write *write = &member->pending[k];
		if (member->raft && (write->index || write->term)) {
			raft_persisted(member->raft, write->index, write->term);
			if (write->index > member->durable_index)
				member->durable_index = write->index;
		}
		for (size_t m = 0; m < write->count; m++) {
			if (member->raft)
				enqueue(cluster, id, write->messages[m]);
			raftpb__message__free_unpacked(write->messages[m], NULL);
		}
		free(write->messages);
	}
	member->pending_count = 0;
	return count;
}

void process_all_readies(struct cluster *cluster)
{
	for (uint64_t id = 1; id <= cluster->size; id++)
		while (process_ready(cluster, id)) {
		}
}

/* ---- the network ------------------------------------------------------------------------------------ */

static bool delivered(struct cluster *cluster, const Raftpb__Message *message)
{
	if (message->to == 0 || message->to > cluster->size || cluster->nodes[message->to].raft == NULL)
		return false;
	if (message->from >= 1 && message->from <= cluster->size && cluster->link_down[message->from][message->to])
		return false;
	if (cluster->filter && !cluster->filter(message, cluster->filter_argument))
		return false;
	return true;
}

static bool matches(const Raftpb__Message *message, uint64_t from, uint64_t to, int type)
{
	return (from == 0 || message->from == from) && (to == 0 || message->to == to) &&
	       (type < 0 || (int)message->type == type);
}

/* Removes the messages matching from/to/type (all when every criterion is open) from the queue and
 * returns them in order; *count_out gets how many. */
static Raftpb__Message **take_matching(struct cluster *cluster, uint64_t from, uint64_t to, int type,
                                       size_t limit, size_t *count_out)
{
	Raftpb__Message **taken = checked_calloc(cluster->queue_count + 1, sizeof *taken);
	size_t count = 0, kept = 0;
	for (size_t k = 0; k < cluster->queue_count; k++) {
		Raftpb__Message *message = cluster->queue[k].message;
		if (count < limit && matches(message, from, to, type))
			taken[count++] = message;
		else
			cluster->queue[kept++].message = message;
	}
	cluster->queue_count = kept;
	*count_out = count;
	return taken;
}

static size_t deliver_taken(struct cluster *cluster, Raftpb__Message **taken, size_t count)
{
	size_t done = 0;
	for (size_t k = 0; k < count; k++) {
		if (delivered(cluster, taken[k])) {
			(void)raft_step(cluster->nodes[taken[k]->to].raft, taken[k]);
			done++;
		}
		raftpb__message__free_unpacked(taken[k], NULL);
	}
	free(taken);
	return done;
}

size_t deliver_all(struct cluster *cluster)
{
	size_t count;
	Raftpb__Message **taken = take_matching(cluster, 0, 0, -1, SIZE_MAX, &count);
	deliver_taken(cluster, taken, count);
	return count;
}

size_t deliver_matching(struct cluster *cluster, uint64_t from, uint64_t to, int type)
{
	size_t count;
	Raftpb__Message **taken = take_matching(cluster, from, to, type, SIZE_MAX, &count);
	return deliver_taken(cluster, taken, count);
}

size_t drop_matching(struct cluster *cluster, uint64_t from, uint64_t to, int type)
{
	size_t count;
	Raftpb__Message **taken = take_matching(cluster, from, to, type, SIZE_MAX, &count);
	for (size_t k = 0; k < count; k++)
		raftpb__message__free_unpacked(taken[k], NULL);
	free(taken);
	return count;
}

void drop_queue(struct cluster *cluster)
{
	drop_matching(cluster, 0, 0, -1);
}

Raftpb__Message *queued(struct cluster *cluster, uint64_t from, uint64_t to, int type, size_t k)
{
	for (size_t position = 0; position < cluster->queue_count; position++) {
		Raftpb__Message *message = cluster->queue[position].message;
		if (matches(message, from, to, type) && k-- == 0)
			return message;
	}
	return NULL;
}

size_t queued_count(struct cluster *cluster, uint64_t from, uint64_t to, int type)
{
	size_t count = 0;
	for (size_t position = 0; position < cluster->queue_count; position++)
		if (matches(cluster->queue[position].message, from, to, type))
			count++;
	return count;
}

void stabilize(struct cluster *cluster)
{
	for (int round = 0; round < 10000; round++) {
		bool moved = false;
		for (uint64_t id = 1; id <= cluster->size; id++) {
			if (complete_writes(cluster, id) > 0)
				moved = true;
			while (process_ready(cluster, id))
				moved = true;
		}
		if (deliver_all(cluster) > 0)
			moved = true;
		if (!moved)
			return;
	}
	test_fail(__FILE__, __LINE__, "the cluster did not settle after 10000 rounds");
	test_abort();
}

void tick_all_and_stabilize(struct cluster *cluster, int rounds)
{
	for (int round = 0; round < rounds; round++) {
		for (uint64_t id = 1; id <= cluster->size; id++)
			if (cluster->nodes[id].raft)
				raft_tick(cluster->nodes[id].raft);
		stabilize(cluster);
	}
}

void elect(struct cluster *cluster, uint64_t id)
{
	REQUIRE_RC(RAFT_OK, campaign(cluster, id));
	stabilize(cluster);
	struct raft_status status = node_status(cluster, id);
	if (status.role != RAFT_LEADER) {
		test_fail(__FILE__, __LINE__, "node %llu campaigned but is %s at term %llu", (unsigned long long)id,
		          raft_role_name(status.role), (unsigned long long)status.term);
		test_abort();
	}
}

void isolate(struct cluster *cluster, uint64_t id)
{
	for (uint64_t other = 1; other <= cluster->size; other++)
		if (other != id)
			cut(cluster, id, other);
}

void cut(struct cluster *cluster, uint64_t a, uint64_t b)
{
	cluster->link_down[a][b] = true;
	cluster->link_down[b][a] = true;
}

void heal(struct cluster *cluster)
{
	memset(cluster->link_down, 0, sizeof cluster->link_down);
	cluster->filter = NULL;
}

void set_filter(struct cluster *cluster, network_filter_fn filter, void *argument)
{
	cluster->filter = filter;
	cluster->filter_argument = argument;
}

/* ---- membership ------------------------------------------------------------------------------------ */

int propose_change(struct cluster *cluster, uint64_t id, int type, uint64_t node_id)
{
	Raftpb__ConfChange change = RAFTPB__CONF_CHANGE__INIT;
	change.type = (Raftpb__ConfChangeType)type;
	change.node_id = node_id;
	return raft_propose_conf_change(started(cluster, id), &change, NULL);
}

int propose_change_v2(struct cluster *cluster, uint64_t id, int transition, const int *types,
                      const uint64_t *node_ids, size_t count)
{
	Raftpb__ConfChangeSingle singles[HARNESS_MAX_NODES * 2];
	Raftpb__ConfChangeSingle *pointers[HARNESS_MAX_NODES * 2];
	if (count > HARNESS_MAX_NODES * 2)
		return RAFT_ERR_INVALID_ARGUMENT;
	for (size_t k = 0; k < count; k++) {
		Raftpb__ConfChangeSingle init = RAFTPB__CONF_CHANGE_SINGLE__INIT;
		singles[k] = init;
		singles[k].type = (Raftpb__ConfChangeType)types[k];
		singles[k].node_id = node_ids[k];
		pointers[k] = &singles[k];
	}
	Raftpb__ConfChangeV2 change = RAFTPB__CONF_CHANGE_V2__INIT;
	change.transition = (Raftpb__ConfChangeTransition)transition;
	change.changes = count ? pointers : NULL;
	change.n_changes = count;
	return raft_propose_conf_change_v2(started(cluster, id), &change, NULL);
}

static bool id_lists_equal(const uint64_t *have, size_t have_count, const uint64_t *want, size_t want_count)
{
	if (have_count != want_count)
		return false;
	for (size_t k = 0; k < want_count; k++) {
		bool found = false;
		for (size_t j = 0; j < have_count && !found; j++)
			found = have[j] == want[k];
		if (!found)
			return false;
	}
	return true;
}

bool conf_voters_are(struct cluster *cluster, uint64_t id, const uint64_t *voters, size_t count)
{
	struct raft_conf_view view;
	raft_get_conf(started(cluster, id), &view);
	if (id_lists_equal(view.voters, view.voters_count, voters, count))
		return true;
	char text[128] = "";
	for (size_t k = 0; k < view.voters_count; k++)
		snprintf(text + strlen(text), sizeof text - strlen(text), " %llu", (unsigned long long)view.voters[k]);
	fprintf(stderr, "    (node %llu has voters [%s ])\n", (unsigned long long)id, text);
	return false;
}

bool conf_has_learner(struct cluster *cluster, uint64_t id, uint64_t learner)
{
	struct raft_conf_view view;
	raft_get_conf(started(cluster, id), &view);
	for (size_t k = 0; k < view.learners_count; k++)
		if (view.learners[k] == learner)
			return true;
	return false;
}

/* ---- queries ------------------------------------------------------------------------------------------ */

uint64_t leader_of(struct cluster *cluster)
{
	uint64_t leader = RAFT_NONE, best_term = 0;
	for (uint64_t id = 1; id <= cluster->size; id++) {
		if (cluster->nodes[id].raft == NULL)
			continue;
		struct raft_status status = node_status(cluster, id);
		if (status.role == RAFT_LEADER && status.term >= best_term) {
			best_term = status.term;
			leader = id;
		}
	}
	return leader;
}

bool logs_equal(struct cluster *cluster, uint64_t a, uint64_t b, char *why, size_t why_length)
{
	struct raft_status status_a = node_status(cluster, a), status_b = node_status(cluster, b);
	if (status_a.last_index != status_b.last_index) {
		snprintf(why, why_length, "last index %llu on %llu, %llu on %llu",
		         (unsigned long long)status_a.last_index, (unsigned long long)a,
		         (unsigned long long)status_b.last_index, (unsigned long long)b);
		return false;
	}
	uint64_t first = status_a.first_index > status_b.first_index ? status_a.first_index : status_b.first_index;
	for (uint64_t index = first; index <= status_a.last_index; index++) {
		uint64_t term_a = raft_term_at(cluster->nodes[a].raft, index);
		uint64_t term_b = raft_term_at(cluster->nodes[b].raft, index);
		if (term_a != term_b) {
			snprintf(why, why_length, "index %llu has term %llu on %llu, %llu on %llu",
			         (unsigned long long)index, (unsigned long long)term_a, (unsigned long long)a,
			         (unsigned long long)term_b, (unsigned long long)b);
			return false;
		}
	}
	return true;
}

size_t log_terms(struct cluster *cluster, uint64_t id, uint64_t *terms, size_t max)
{
	struct raft_status status = node_status(cluster, id);
	size_t count = 0;
	for (uint64_t index = status.first_index; index <= status.last_index && count < max; index++)
		terms[count++] = raft_term_at(cluster->nodes[id].raft, index);
	return count;
}

bool applied_contains(struct cluster *cluster, uint64_t id, const char *text)
{
	const struct node *member = node(cluster, id);
	size_t length = strlen(text);
	for (size_t k = 0; k < member->applied_count; k++)
		if (member->applied[k].type == RAFT_ENTRY_NORMAL && member->applied[k].length == length &&
		    memcmp(member->applied[k].data, text, length) == 0)
			return true;
	return false;
}

/* ---- hand-made messages --------------------------------------------------------------------------------- */

/* Entries for hand-made messages: a pool reset before each test (message_pool_reset). */
#define MESSAGE_POOL_SIZE 512
static Raftpb__Entry entry_pool[MESSAGE_POOL_SIZE];
static Raftpb__Entry *entry_pointer_pool[MESSAGE_POOL_SIZE];
static size_t entry_pool_used;

void message_pool_reset(void)
{
	entry_pool_used = 0;
}

Raftpb__Message message(int type, uint64_t from, uint64_t to, uint64_t term)
{
	Raftpb__Message built = RAFTPB__MESSAGE__INIT;
	built.type = (Raftpb__MessageType)type;
	built.from = from;
	built.to = to;
	built.term = term;
	return built;
}

void message_entries(Raftpb__Message *built, uint64_t first_index, const uint64_t *terms, size_t count)
{
	if (entry_pool_used + count > MESSAGE_POOL_SIZE) {
		test_fail(__FILE__, __LINE__, "message entry pool exhausted");
		test_abort();
	}
	built->entries = &entry_pointer_pool[entry_pool_used];
	built->n_entries = count;
	for (size_t k = 0; k < count; k++) {
		Raftpb__Entry init = RAFTPB__ENTRY__INIT;
		Raftpb__Entry *entry = &entry_pool[entry_pool_used];
		*entry = init;
		entry->index = first_index + k;
		entry->term = terms[k];
		entry_pointer_pool[entry_pool_used++] = entry;
	}
}
