/* tests/sim/member.c: one simulated member, driven as a real node's core thread drives the core.
 *
 * Start (bootstrap or empty), crash (everything not durable is lost), restart (raft_new from the durable
 * hard state, snapshot and entries, with config.applied = the durable applied index), shut down when
 * removed. member_process drains the Readys and honours the contract of consensus/raft.h field by field:
 * `messages` leave at once; hard state, snapshot and entries go to storage (synchronously, or queued and
 * made durable later, in order); `messages_after_persist` leave only when their Ready is durable, and
 * then raft_persisted reports it; committed entries are applied in order; read states are served once
 * the applied index reaches them. The checker sees every step of it.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

const char *message_type_name(int type)
{
	static const char *const names[] = {"MsgHup", "MsgBeat", "MsgProp", "MsgApp", "MsgAppResp", "MsgVote",
	                                    "MsgVoteResp", "MsgSnap", "MsgHeartbeat", "MsgHeartbeatResp",
	                                    "MsgUnreachable", "MsgSnapStatus", "MsgCheckQuorum",
	                                    "MsgTransferLeader", "MsgTimeoutNow", "MsgReadIndex",
	                                    "MsgReadIndexResp", "MsgPreVote", "MsgPreVoteResp"};
	return type >= 0 && (size_t)type < sizeof(names) / sizeof(names[0]) ? names[type] : "MsgUnknown";
}

static struct raft_config member_config(struct sim_cluster *cluster, uint64_t id, uint32_t incarnation)
{
	struct raft_config config;
	raft_config_defaults(&config, id);
	config.election_tick = SIM_ELECTION_TICKS;
	config.heartbeat_tick = 1;
	config.check_quorum = cluster->check_quorum;
	config.pre_vote = cluster->pre_vote;
	config.max_size_per_msg = cluster->max_size_per_msg;
	config.max_inflight_msgs = cluster->max_inflight;
	config.read_only_option = RAFT_READ_ONLY_SAFE;
	config.random_seed = sim_mix(cluster->seed, id * 7919 + incarnation);
	return config;
}

static void schedule_member_event(struct sim_cluster *cluster, size_t slot, enum sim_event_kind kind, uint64_t at)
{
	struct sim_event event = {0};
	event.time = at;
	event.kind = kind;
	event.slot = slot;
	event.incarnation = cluster->members[slot].incarnation;
	events_push(&cluster->events, &event);
}

static size_t new_slot(struct sim_cluster *cluster, uint64_t id)
{
	if (cluster->members_count == SIM_MAX_MEMBERS) {
		sim_fail(cluster, "simulation: more than %d members started", SIM_MAX_MEMBERS);
		return SIZE_MAX;
	}
	size_t slot = cluster->members_count++;
	struct sim_member *member = &cluster->members[slot];
	*member = (struct sim_member){0};
	member->id = id;
	member->ever_member = true;
	/* half the members write synchronously; the others acknowledge writes after a random delay */
	member->persist_delay_max = rng_chance(&cluster->rng, 500) ? 0 : rng_range(&cluster->rng, 1, cluster->quiet ? 5 : 30);
	return slot;
}

static bool member_open(struct sim_cluster *cluster, size_t slot, const struct raft_restore *restore)
{
	struct sim_member *member = &cluster->members[slot];
	char error[256] = "";
	member->config = member_config(cluster, member->id, member->incarnation);
	member->config.applied = member->app.applied;
	member->raft = raft_new(&member->config, restore, error, sizeof(error));
	if (member->raft == NULL) {
		sim_fail(cluster, "Restart: raft_new refused member %llu (applied %llu): %s", (unsigned long long)member->id,
		         (unsigned long long)member->app.applied, error);
		member->state = MEMBER_CRASHED;
		return false;
	}
	member->state = MEMBER_ALIVE;
	struct raft_status status;
	raft_get_status(member->raft, &status);
	member->first_index_after_advance = status.first_index;
	member->batch_until = 0;
	member->seen_commit = 0;
	member->seen_role = RAFT_FOLLOWER;
	member->seen_term = 0;
	member->seen_leader_term = 0;
	member->appended_term = 0;
	schedule_member_event(cluster, slot, EVENT_TICK, cluster->now + rng_range(&cluster->rng, 1, SIM_TICK_MS));
	return true;
}

void member_start_initial(struct sim_cluster *cluster, uint64_t id, const uint64_t *voters, size_t count)
{
	size_t slot = new_slot(cluster, id);
	if (slot == SIZE_MAX) {
		return;
	}
	struct raft_restore empty = {0};
	if (!member_open(cluster, slot, &empty)) {
		return;
	}
	cluster->members[slot].bootstrap_index = count;
	int result = raft_bootstrap(cluster->members[slot].raft, voters, count);
	if (result != RAFT_OK) {
		sim_fail(cluster, "Bootstrap: raft_bootstrap failed on member %llu: %s",
		         (unsigned long long)cluster->members[slot].id, raft_strerror(result));
	}
	/* the caller takes the first Readys once every initial member exists, so that the bootstrap
	 * configuration does not look like members being added */
}

void member_start_added(struct sim_cluster *cluster, uint64_t id)
{
	size_t slot = new_slot(cluster, id);
	if (slot == SIZE_MAX) {
		return;
	}
	sim_trace(cluster, "member %llu starts with an empty log (added by a conf change)", (unsigned long long)id);
	struct raft_restore empty = {0};
	if (member_open(cluster, slot, &empty)) {
		member_process(cluster, slot);
	}
}

static void member_close(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	raft_free(member->raft);
	member->raft = NULL;
	storage_drop_pending(&member->storage);
	member->app = (struct sim_app_state){0};
	member->reads_count = 0;
	/* a snapshot still being written is lost with the process */
	free(member->capture.conf_state);
	member->capture = (struct sim_capture){0};
	member->bootstrap_index = 0; /* a restart puts in force only what was applied */
	member->incarnation++;
	(void)cluster;
}

void member_crash(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	if (member->state != MEMBER_ALIVE) {
		return;
	}
	sim_trace(cluster, "member %llu crashes (%zu writes in flight lost)", (unsigned long long)member->id,
	          member->storage.pending_count);
	member_close(cluster, slot);
	member->state = MEMBER_CRASHED;
	cluster->crashes++;
}

void member_shutdown(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	if (member->state == MEMBER_REMOVED) {
		return;
	}
	sim_trace(cluster, "member %llu was removed from the configuration and shuts down", (unsigned long long)member->id);
	if (member->state == MEMBER_ALIVE) {
		member_close(cluster, slot);
	}
	/* the durable storage stays: the checker still counts what it acknowledged */
	member->state = MEMBER_REMOVED;
}

void member_restart(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	if (member->state != MEMBER_CRASHED) {
		return;
	}
	struct sim_restore restore;
	storage_restore_build(&member->storage, &restore);
	/* The application state: what it made durable, unless the snapshot is newer (a snapshot is the
	 * application state at its index). */
	member->app = member->storage.app;
	if (restore.snapshot != NULL && member->storage.snapshot.index > member->app.applied) {
		if (!app_state_decode(restore.snapshot->data.data, restore.snapshot->data.len, &member->app)) {
			sim_fail(cluster, "Restart: the durable snapshot of member %llu does not hold an application state",
			         (unsigned long long)member->id);
		}
	}
	sim_trace(cluster, "member %llu restarts: term %llu vote %llu commit %llu, snapshot %llu, %zu entries, applied %llu",
	          (unsigned long long)member->id, (unsigned long long)member->storage.hard_state.term,
	          (unsigned long long)member->storage.hard_state.vote, (unsigned long long)member->storage.hard_state.commit,
	          (unsigned long long)member->storage.snapshot.index, restore.restore.entries_count,
	          (unsigned long long)member->app.applied);
	bool opened = !cluster->failed && member_open(cluster, slot, &restore.restore);
	storage_restore_free(&restore);
	cluster->restarts++;
	member->snapshot_mark = member->app.applied;
	if (opened) {
		checker_restarted(cluster, slot);
		member_process(cluster, slot);
	}
}

void member_make_app_durable(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	/* Only when nothing is in flight: the durable applied index must never run ahead of a durable log
	 * that could still lose a snapshot installed a moment ago. */
	if (member->state == MEMBER_ALIVE && member->storage.pending_count == 0) {
		member->storage.app = member->app;
		(void)cluster;
	}
}

static void conf_view_to_state(const struct raft_conf_view *view, Raftpb__ConfState *state)
{
	*state = (Raftpb__ConfState)RAFTPB__CONF_STATE__INIT;
	state->n_voters = view->voters_count;
	state->voters = (uint64_t *)view->voters;
	state->n_voters_outgoing = view->voters_outgoing_count;
	state->voters_outgoing = (uint64_t *)view->voters_outgoing;
	state->n_learners = view->learners_count;
	state->learners = (uint64_t *)view->learners;
	state->n_learners_next = view->learners_next_count;
	state->learners_next = (uint64_t *)view->learners_next;
	state->auto_leave = view->auto_leave;
}

bool member_take_snapshot(struct sim_cluster *cluster, size_t slot, bool compact_everything)
{
	struct sim_member *member = &cluster->members[slot];
	if (member->state != MEMBER_ALIVE || member->storage.pending_count != 0 ||
	    member->app.applied <= member->storage.snapshot.index) {
		return false;
	}
	uint64_t index = member->app.applied;
	struct raft_status before;
	raft_get_status(member->raft, &before);
	if (index + 1 < before.first_index) {
		return false; /* the leader's snapshot, stepped in this batching turn, is not handed out yet */
	}
	checker_snapshot_taken(cluster, slot, index, member->app.applied_term, &member->app);
	if (cluster->failed) {
		return false;
	}
	uint8_t data[SIM_APP_STATE_BYTES];
	app_state_encode(&member->app, data);
	struct raft_conf_view view;
	raft_get_conf(member->raft, &view);
	Raftpb__ConfState conf_state;
	conf_view_to_state(&view, &conf_state);
	Raftpb__SnapshotMetadata metadata = RAFTPB__SNAPSHOT_METADATA__INIT;
	metadata.conf_state = &conf_state;
	metadata.index = index;
	metadata.term = member->app.applied_term;
	Raftpb__Snapshot snapshot = RAFTPB__SNAPSHOT__INIT;
	snapshot.data.data = data;
	snapshot.data.len = sizeof(data);
	snapshot.metadata = &metadata;
	size_t packed_length = raftpb__snapshot__get_packed_size(&snapshot);
	uint8_t *packed = malloc(packed_length ? packed_length : 1);
	if (packed == NULL) {
		abort();
	}
	raftpb__snapshot__pack(&snapshot, packed);
	/* conf_state NULL asks the core for the configuration at the applied index: exercise both forms */
	int result = raft_create_snapshot(member->raft, index, rng_chance(&cluster->rng, 500) ? &conf_state : NULL, data,
	                                  sizeof(data));
	if (result != RAFT_OK) {
		free(packed);
		sim_fail(cluster, "Snapshot: raft_create_snapshot(%llu) on member %llu failed: %s (applied %llu)",
		         (unsigned long long)index, (unsigned long long)member->id, raft_strerror(result),
		         (unsigned long long)member->app.applied);
		return false;
	}
	/* the snapshot file is written (and synced) before the log is compacted, as a real node does */
	storage_set_snapshot(&member->storage, index, member->app.applied_term, packed, packed_length);
	if (member->storage.app.applied < index) {
		member->storage.app = member->app;
	}
	struct raft_status status;
	raft_get_status(member->raft, &status);
	uint64_t limit = index < status.persisted ? index : status.persisted;
	uint64_t compact_to = 0;
	if (limit >= status.first_index) {
		compact_to = compact_everything ? limit : rng_range(&cluster->rng, status.first_index, limit);
		result = raft_compact(member->raft, compact_to);
		if (result != RAFT_OK) {
			sim_fail(cluster, "Snapshot: raft_compact(%llu) on member %llu failed: %s (first %llu, persisted %llu, "
			         "snapshot %llu)", (unsigned long long)compact_to, (unsigned long long)member->id,
			         raft_strerror(result), (unsigned long long)status.first_index,
			         (unsigned long long)status.persisted, (unsigned long long)index);
			return false;
		}
		storage_compact(&member->storage, compact_to);
		cluster->checker.compactions++;
	}
	sim_trace(cluster, "member %llu snapshots at %llu and compacts up to %llu", (unsigned long long)member->id,
	          (unsigned long long)index, (unsigned long long)compact_to);
	return true;
}

/* Calls the core must refuse without changing anything: compacting what is gone or what no snapshot
 * covers, a snapshot beyond the applied index. */
static void check_refused_calls(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	struct raft_status before, after;
	raft_get_status(member->raft, &before);
	int gone = before.first_index > 1 ? raft_compact(member->raft, before.first_index - 1) : RAFT_ERR_COMPACTED;
	int uncovered = raft_compact(member->raft, before.last_index + 1);
	uint8_t data[SIM_APP_STATE_BYTES] = {0};
	int ahead = raft_create_snapshot(member->raft, before.applied + 1, NULL, data, sizeof(data));
	raft_get_status(member->raft, &after);
	if (gone != RAFT_ERR_COMPACTED || uncovered != RAFT_ERR_UNAVAILABLE || ahead != RAFT_ERR_INVALID_ARGUMENT ||
	    after.first_index != before.first_index || after.last_index != before.last_index ||
	    after.applied != before.applied) {
		sim_fail(cluster, "Snapshot API: member %llu (log %llu..%llu, applied %llu) answered compact(%llu) %s, compact(%llu) "
		         "%s, create_snapshot(%llu) %s; log now %llu..%llu", (unsigned long long)member->id,
		         (unsigned long long)before.first_index, (unsigned long long)before.last_index,
		         (unsigned long long)before.applied, (unsigned long long)(before.first_index - 1), raft_strerror(gone),
		         (unsigned long long)(before.last_index + 1), raft_strerror(uncovered),
		         (unsigned long long)(before.applied + 1), raft_strerror(ahead), (unsigned long long)after.first_index,
		         (unsigned long long)after.last_index);
	}
}

/* The snapshot policy, as a real node runs it: every snapshot_count applied entries the application
 * state and the configuration at the applied index are captured; the snapshot becomes durable a little
 * later (EVENT_SNAPSHOT, member_finish_snapshot), and only then does the core learn it and compact. */
static void maybe_capture_snapshot(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	if (cluster->snapshot_count == 0 || member->state != MEMBER_ALIVE || member->capture.active ||
	    member->app.applied < member->snapshot_mark + cluster->snapshot_count ||
	    member->app.applied <= member->storage.snapshot.index) {
		return;
	}
	checker_snapshot_taken(cluster, slot, member->app.applied, member->app.applied_term, &member->app);
	if (cluster->failed) {
		return;
	}
	struct raft_conf_view view;
	raft_get_conf(member->raft, &view);
	Raftpb__ConfState conf_state;
	conf_view_to_state(&view, &conf_state);
	struct sim_capture *capture = &member->capture;
	capture->active = true;
	capture->index = member->app.applied;
	capture->app = member->app;
	capture->conf_state_length = raftpb__conf_state__get_packed_size(&conf_state);
	capture->conf_state = malloc(capture->conf_state_length ? capture->conf_state_length : 1);
	if (capture->conf_state == NULL) {
		abort();
	}
	raftpb__conf_state__pack(&conf_state, capture->conf_state);
	capture->after_item = member->storage.items_queued;
	member->snapshot_mark = capture->index;
	uint64_t delay = rng_range(&cluster->rng, 0, cluster->snapshot_delay_max);
	sim_trace(cluster, "member %llu takes a snapshot at %llu (durable in %llu ms)", (unsigned long long)member->id,
	          (unsigned long long)capture->index, (unsigned long long)delay);
	schedule_member_event(cluster, slot, EVENT_SNAPSHOT, cluster->now + delay);
}

void member_finish_snapshot(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	if (member->capture.active && member->state == MEMBER_ALIVE &&
	    member->storage.items_settled < member->capture.after_item) {
		/* One storage thread writes in order: the writes queued before the snapshot land first (one of
		 * them may be the leader's snapshot the application state came from). */
		schedule_member_event(cluster, slot, EVENT_SNAPSHOT, cluster->now + rng_range(&cluster->rng, 1, 10));
		return;
	}
	struct sim_capture capture = member->capture;
	member->capture = (struct sim_capture){0};
	if (!capture.active || member->state != MEMBER_ALIVE) {
		free(capture.conf_state);
		return;
	}
	struct raft_status status;
	raft_get_status(member->raft, &status);
	if (capture.index <= member->storage.snapshot.index || capture.index + 1 < status.first_index) {
		/* A newer snapshot came meanwhile (from the leader, or the workload's own): this one is not needed,
		 * and storing it would move the durable snapshot backwards. */
		sim_trace(cluster, "member %llu drops its snapshot at %llu: superseded (durable snapshot %llu, log from %llu)",
		          (unsigned long long)member->id, (unsigned long long)capture.index,
		          (unsigned long long)member->storage.snapshot.index, (unsigned long long)status.first_index);
		cluster->workload.snapshots_superseded++;
		free(capture.conf_state);
		return;
	}
	Raftpb__ConfState *conf_state = raftpb__conf_state__unpack(NULL, capture.conf_state_length, capture.conf_state);
	free(capture.conf_state);
	if (conf_state == NULL) {
		abort();
	}
	uint8_t data[SIM_APP_STATE_BYTES];
	app_state_encode(&capture.app, data);
	Raftpb__SnapshotMetadata metadata = RAFTPB__SNAPSHOT_METADATA__INIT;
	metadata.conf_state = conf_state;
	metadata.index = capture.index;
	metadata.term = capture.app.applied_term;
	Raftpb__Snapshot snapshot = RAFTPB__SNAPSHOT__INIT;
	snapshot.data.data = data;
	snapshot.data.len = sizeof(data);
	snapshot.metadata = &metadata;
	checker_snapshot_config(cluster, slot, &snapshot, "the snapshot taken");
	size_t packed_length = raftpb__snapshot__get_packed_size(&snapshot);
	uint8_t *packed = malloc(packed_length ? packed_length : 1);
	if (packed == NULL) {
		abort();
	}
	raftpb__snapshot__pack(&snapshot, packed);
	/* durable before the core hears of it, as on a real node */
	storage_set_snapshot(&member->storage, capture.index, capture.app.applied_term, packed, packed_length);
	/* NULL asks the core for the configuration at its applied index: right only when nothing was applied
	 * since the capture */
	bool current = capture.index == status.applied && rng_chance(&cluster->rng, 500);
	int result = raft_create_snapshot(member->raft, capture.index, current ? NULL : conf_state, data, sizeof(data));
	raftpb__conf_state__free_unpacked(conf_state, NULL);
	if (result == RAFT_ERR_SNAPSHOT_OUT_OF_DATE) {
		/* the core installed the leader's snapshot at this very index and has not handed it out yet */
		cluster->workload.snapshots_superseded++;
		return;
	}
	if (result != RAFT_OK) {
		sim_fail(cluster, "Snapshot: raft_create_snapshot(%llu) on member %llu failed: %s (applied %llu, log from %llu)",
		         (unsigned long long)capture.index, (unsigned long long)member->id, raft_strerror(result),
		         (unsigned long long)status.applied, (unsigned long long)status.first_index);
		return;
	}
	cluster->workload.snapshots_created++;
	if (rng_chance(&cluster->rng, 100)) {
		check_refused_calls(cluster, slot);
		if (cluster->failed) {
			return;
		}
	}
	/* Keep catchup_entries entries before the snapshot for followers that lag a little. */
	uint64_t compact_to = capture.index > cluster->catchup_entries ? capture.index - cluster->catchup_entries : 0;
	if (compact_to > status.persisted) {
		compact_to = status.persisted;
	}
	if (compact_to >= status.first_index) {
		result = raft_compact(member->raft, compact_to);
		if (result != RAFT_OK) {
			sim_fail(cluster, "Snapshot: raft_compact(%llu) on member %llu failed: %s (log from %llu, persisted %llu, "
			         "snapshot %llu)", (unsigned long long)compact_to, (unsigned long long)member->id,
			         raft_strerror(result), (unsigned long long)status.first_index,
			         (unsigned long long)status.persisted, (unsigned long long)capture.index);
			return;
		}
		storage_compact(&member->storage, compact_to);
		cluster->checker.compactions++;
	}
	sim_trace(cluster, "member %llu's snapshot at %llu is durable; log compacted up to %llu", (unsigned long long)member->id,
	          (unsigned long long)capture.index, (unsigned long long)compact_to);
}

/* The item is durable: what waited for it may leave, and the core learns it. */
static void complete_item(struct sim_cluster *cluster, size_t slot, struct sim_persist_item *item)
{
	struct sim_member *member = &cluster->members[slot];
	for (size_t i = 0; i < item->messages_count && !cluster->failed; i++) {
		checker_message_sent(cluster, slot, &item->messages_after_persist[i], true);
		network_send_packed(cluster, &item->messages_after_persist[i]);
	}
	if (item->persist_index != 0 && member->state == MEMBER_ALIVE) {
		raft_persisted(member->raft, item->persist_index, item->persist_term);
	}
}

static bool make_durable(struct sim_cluster *cluster, size_t slot, struct sim_persist_item *item)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_hard_state before = member->storage.hard_state;
	char error[256];
	checker_stored_truncation(cluster, slot, item);
	if (!storage_apply_item(&member->storage, item, error, sizeof(error))) {
		sim_fail(cluster, "Ready contract: member %llu: %s", (unsigned long long)member->id, error);
		return false;
	}
	if (item->has_hard_state) {
		checker_hard_state_durable(cluster, slot, &before, &member->storage.hard_state);
	}
	return !cluster->failed;
}

void member_persist_due(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_persist_item *item;
	while (member->state == MEMBER_ALIVE && !cluster->failed && (item = storage_queue_front(&member->storage)) != NULL &&
	       item->durable_at <= cluster->now) {
		if (make_durable(cluster, slot, item)) {
			complete_item(cluster, slot, item);
		}
		storage_queue_pop(&member->storage);
	}
}

static void trace_ready(struct sim_cluster *cluster, const struct sim_member *member, const struct raft_ready *ready)
{
	if (!cluster->trace) {
		return;
	}
	if (ready->soft_state_changed) {
		sim_trace(cluster, "member %llu is now %s (leader %llu)", (unsigned long long)member->id,
		          raft_role_name(ready->role), (unsigned long long)ready->leader);
	}
	if (ready->has_hard_state || ready->snapshot || ready->entries_count || ready->committed_entries_count) {
		sim_trace(cluster, "member %llu ready: hard state%s term %llu vote %llu commit %llu; snapshot %llu; "
		          "%zu entries from %llu; %zu committed from %llu; %zu+%zu messages; %zu reads; persist %llu/%llu",
		          (unsigned long long)member->id, ready->has_hard_state ? "" : " (unchanged)",
		          (unsigned long long)ready->hard_state.term, (unsigned long long)ready->hard_state.vote,
		          (unsigned long long)ready->hard_state.commit,
		          ready->snapshot && ready->snapshot->metadata ? (unsigned long long)ready->snapshot->metadata->index : 0ULL,
		          ready->entries_count, ready->entries_count ? (unsigned long long)ready->entries[0]->index : 0ULL,
		          ready->committed_entries_count,
		          ready->committed_entries_count ? (unsigned long long)ready->committed_entries[0]->index : 0ULL,
		          ready->messages_count, ready->messages_after_persist_count, ready->read_states_count,
		          (unsigned long long)ready->persist_index, (unsigned long long)ready->persist_term);
	}
}

/* One Ready: copy what must outlive raft_advance, persist, apply, advance, then send and report. */
static void handle_ready(struct sim_cluster *cluster, size_t slot, struct raft_ready *ready)
{
	struct sim_member *member = &cluster->members[slot];
	struct sim_persist_item item = {0};
	trace_ready(cluster, member, ready);

	item.has_hard_state = ready->has_hard_state;
	if (ready->has_hard_state) {
		item.hard_state = (struct sim_hard_state){ready->hard_state.term, ready->hard_state.vote, ready->hard_state.commit};
	}
	if (ready->snapshot != NULL) {
		if (ready->snapshot->metadata == NULL) {
			sim_fail(cluster, "Ready contract: member %llu got a snapshot without metadata", (unsigned long long)member->id);
			raft_advance(member->raft, ready);
	struct raft_status status;
	raft_get_status(member->raft, &status);
	member->first_index_after_advance = status.first_index;
			persist_item_free(&item);
			return;
		}
		item.snapshot.index = ready->snapshot->metadata->index;
		item.snapshot.term = ready->snapshot->metadata->term;
		item.snapshot.packed_length = raftpb__snapshot__get_packed_size(ready->snapshot);
		item.snapshot.packed = malloc(item.snapshot.packed_length ? item.snapshot.packed_length : 1);
		if (item.snapshot.packed == NULL) {
			abort();
		}
		raftpb__snapshot__pack(ready->snapshot, item.snapshot.packed);
	}
	struct sim_entry_digest *digests = NULL;
	if (ready->entries_count) {
		item.entries = calloc(ready->entries_count, sizeof(*item.entries));
		digests = calloc(ready->entries_count, sizeof(*digests));
		if (item.entries == NULL || digests == NULL) {
			abort();
		}
		item.entries_count = ready->entries_count;
		for (size_t i = 0; i < ready->entries_count; i++) {
			const Raftpb__Entry *entry = ready->entries[i];
			entry_copy(&item.entries[i], entry);
			digests[i] = (struct sim_entry_digest){entry->index, entry->term,
			                                       entry_digest(entry->index, entry->term, entry->type,
			                                                    entry->data.data, entry->data.len)};
		}
	}
	if (ready->messages_after_persist_count) {
		item.messages_after_persist = calloc(ready->messages_after_persist_count, sizeof(struct sim_message));
		if (item.messages_after_persist == NULL) {
			abort();
		}
		item.messages_count = ready->messages_after_persist_count;
		for (size_t i = 0; i < item.messages_count; i++) {
			item.messages_after_persist[i] = message_pack(ready->messages_after_persist[i], member->id, member->incarnation);
		}
	}
	item.persist_index = ready->persist_index;
	item.persist_term = ready->persist_term;

	/* Messages that may leave at once: checked now, against what is durable before this Ready. */
	struct sim_message *now_messages = NULL;
	size_t now_count = ready->messages_count;
	if (now_count) {
		now_messages = calloc(now_count, sizeof(*now_messages));
		if (now_messages == NULL) {
			abort();
		}
		for (size_t i = 0; i < now_count; i++) {
			now_messages[i] = message_pack(ready->messages[i], member->id, member->incarnation);
			checker_message_sent(cluster, slot, &now_messages[i], false);
		}
	}

	/* Synchronous only when nothing is queued: an earlier asynchronous write must land first. */
	bool synchronous = member->persist_delay_max == 0 && member->storage.pending_count == 0;
	if (synchronous && !cluster->failed) {
		/* a synchronous node writes (and fsyncs) before it applies */
		make_durable(cluster, slot, &item);
	}
	if (ready->snapshot != NULL && !cluster->failed) {
		checker_install_snapshot(cluster, slot, ready->snapshot);
	}
	uint64_t last_conf_index = 0;
	for (size_t i = 0; i < ready->committed_entries_count && !cluster->failed; i++) {
		const Raftpb__Entry *entry = ready->committed_entries[i];
		checker_apply_entry(cluster, slot, entry);
		if (entry->type == RAFT_ENTRY_CONF_CHANGE || entry->type == RAFT_ENTRY_CONF_CHANGE_V2) {
			last_conf_index = entry->index;
		}
	}
	for (size_t i = 0; i < ready->read_states_count && !cluster->failed; i++) {
		checker_read_state(cluster, slot, &ready->read_states[i]);
	}

	raft_advance(member->raft, ready);
	struct raft_status status;
	raft_get_status(member->raft, &status);
	member->first_index_after_advance = status.first_index;

	if (!cluster->failed && digests != NULL) {
		checker_record_entries(cluster, slot, digests, ready->entries_count);
	}
	free(digests);
	for (size_t i = 0; i < now_count; i++) {
		if (!cluster->failed) {
			network_send_packed(cluster, &now_messages[i]);
		} else {
			message_free(&now_messages[i]);
		}
	}
	free(now_messages);
	if (cluster->failed) {
		persist_item_free(&item);
		return;
	}
	if (synchronous) {
		complete_item(cluster, slot, &item);
		persist_item_free(&item);
	} else {
		/* asynchronous storage: durable later, but never before an earlier write */
		struct sim_persist_item *last = member->storage.pending_count
			? &member->storage.pending[member->storage.pending_head + member->storage.pending_count - 1]
			: NULL;
		item.durable_at = cluster->now + rng_range(&cluster->rng, 0, member->persist_delay_max);
		if (last != NULL && last->durable_at > item.durable_at) {
			item.durable_at = last->durable_at;
		}
		uint64_t at = item.durable_at;
		storage_queue_push(&member->storage, &item);
		schedule_member_event(cluster, slot, EVENT_PERSIST, at);
		member_persist_due(cluster, slot);
	}
	if (last_conf_index != 0 && member->state == MEMBER_ALIVE && !cluster->failed) {
		checker_config_applied(cluster, slot, last_conf_index);
	}
	checker_member_config(cluster, slot, "after a Ready");
	if (member->state == MEMBER_ALIVE && !cluster->failed) {
		maybe_capture_snapshot(cluster, slot);
	}
	if (member->state == MEMBER_ALIVE && !cluster->failed) {
		checker_serve_reads(cluster, slot);
	}
}

static void drain_readys(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	int rounds = 0;
	while (!cluster->failed && member->state == MEMBER_ALIVE && raft_has_ready(member->raft)) {
		if (++rounds > 10000) {
			sim_fail(cluster, "Progress: member %llu still has a Ready after 10000 rounds in one step",
			         (unsigned long long)member->id);
			return;
		}
		/* observe commit and role before the Ready takes them elsewhere */
		checker_observe_member(cluster, slot);
		if (cluster->failed) {
			return;
		}
		struct raft_ready ready;
		if (!raft_ready(member->raft, &ready)) {
			sim_fail(cluster, "Ready contract: raft_has_ready is true but raft_ready returned false on member %llu",
			         (unsigned long long)member->id);
			return;
		}
		handle_ready(cluster, slot, &ready);
	}
	if (!cluster->failed && member->state == MEMBER_ALIVE) {
		checker_observe_member(cluster, slot);
	}
}

/* A real node's core thread takes every input that arrived (ticks, peer messages, storage reports,
 * snapshot verdicts, proposals) and only then drains its Readys. Some seeds do that too: a member then
 * sometimes lets inputs accumulate for a few milliseconds before its next Ready, so that the core sees
 * several steps, reports and snapshot calls between two Readys. */
void member_process(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	if (member->state != MEMBER_ALIVE || cluster->failed) {
		return;
	}
	if (member->batch_until > cluster->now) {
		return; /* its turn ends with EVENT_PROCESS */
	}
	if (cluster->batch_per_thousand && raft_has_ready(member->raft) &&
	    rng_chance(&cluster->rng, cluster->batch_per_thousand)) {
		member->batch_until = cluster->now + rng_range(&cluster->rng, 1, cluster->batch_window_max);
		schedule_member_event(cluster, slot, EVENT_PROCESS, member->batch_until);
		return;
	}
	drain_readys(cluster, slot);
}

void member_end_batch(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	member->batch_until = 0;
	if (member->state == MEMBER_ALIVE && !cluster->failed) {
		drain_readys(cluster, slot);
	}
}
