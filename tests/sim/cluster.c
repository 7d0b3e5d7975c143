/* tests/sim/cluster.c: one seed's world and its schedule.
 *
 * cluster_init draws the seed's settings (pre-vote, check-quorum, message sizes, network behaviour,
 * storage speeds) and bootstraps the initial members; cluster_step processes one event and then checks
 * every member (cluster_run's "after every step"); cluster_run plays the fault phase for the requested
 * number of steps, then the quiet phase, in which the network is perfect, every crashed member restarts,
 * and a leader must be elected and a new proposal applied by every live member within
 * SIM_LIVENESS_TIMEOUTS election timeouts of simulated time.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define ULL(x) ((unsigned long long)(x))

void sim_fail(struct sim_cluster *cluster, const char *format, ...)
{
	if (cluster->failed) {
		return;
	}
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(cluster->failure, sizeof(cluster->failure), format, arguments);
	va_end(arguments);
	cluster->failed = true;
	sim_trace(cluster, "FAILED: %s", cluster->failure);
}

void sim_trace(struct sim_cluster *cluster, const char *format, ...)
{
	if (!cluster->trace) {
		return;
	}
	va_list arguments;
	va_start(arguments, format);
	printf("[%6llu ms] ", ULL(cluster->now));
	vprintf(format, arguments);
	putchar('\n');
	va_end(arguments);
}

struct sim_member *cluster_member_by_id(struct sim_cluster *cluster, uint64_t id)
{
	for (size_t i = 0; i < cluster->members_count; i++) {
		if (cluster->members[i].id == id) {
			return &cluster->members[i];
		}
	}
	return NULL;
}

size_t cluster_slot_of(const struct sim_cluster *cluster, const struct sim_member *member)
{
	return (size_t)(member - cluster->members);
}

struct sim_member *cluster_leader(struct sim_cluster *cluster)
{
	struct sim_member *best = NULL;
	uint64_t best_term = 0;
	for (size_t i = 0; i < cluster->members_count; i++) {
		struct sim_member *member = &cluster->members[i];
		if (member->state != MEMBER_ALIVE) {
			continue;
		}
		struct raft_status status;
		raft_get_status(member->raft, &status);
		if (status.role == RAFT_LEADER && status.term >= best_term) {
			best = member;
			best_term = status.term;
		}
	}
	return best;
}

static void schedule(struct sim_cluster *cluster, enum sim_event_kind kind, uint64_t delay)
{
	struct sim_event event = {0};
	event.time = cluster->now + delay;
	event.kind = kind;
	events_push(&cluster->events, &event);
}

void cluster_init(struct sim_cluster *cluster, const struct sim_options *options, uint64_t seed)
{
	*cluster = (struct sim_cluster){0};
	cluster->options = *options;
	cluster->seed = seed;
	cluster->trace = options->verbose;
	cluster->random_events = !options->demo;
	cluster->allow_corruption = true;
	rng_seed(&cluster->rng, seed);
	cluster->members = calloc(SIM_MAX_MEMBERS, sizeof(*cluster->members));
	if (cluster->members == NULL) {
		abort();
	}
	checker_init(&cluster->checker);
	workload_init(&cluster->workload);

	static const uint64_t message_sizes[] = {0, 64, 512, 1024 * 1024};
	static const int inflight[] = {1, 4, 256};
	bool stormy = rng_chance(&cluster->rng, 400);
	cluster->fault_period_max = stormy ? 80 : 300;
	cluster->leader_crash_per_thousand = stormy ? 800 : 300;
	cluster->pre_vote = rng_chance(&cluster->rng, 500);
	cluster->check_quorum = rng_chance(&cluster->rng, 500);
	cluster->max_size_per_msg = message_sizes[rng_below(&cluster->rng, 4)];
	cluster->max_inflight = inflight[rng_below(&cluster->rng, 3)];
	if (cluster->max_size_per_msg == 0 && cluster->max_inflight == 1) {
		/* one entry per round trip cannot catch a follower up within the liveness bound */
		cluster->max_inflight = 4;
	}
	cluster->network.loss_per_thousand = (unsigned)rng_below(&cluster->rng, 80);
	cluster->network.duplicate_per_thousand = (unsigned)rng_below(&cluster->rng, 30);
	cluster->network.corrupt_per_thousand = (unsigned)rng_below(&cluster->rng, 8);
	cluster->network.delay_min = rng_range(&cluster->rng, 0, 3);
	cluster->network.delay_max = cluster->network.delay_min + rng_range(&cluster->rng, 1, 20);
	/* The snapshot policy: often small enough that members snapshot and compact many times while the
	 * faults go on, so lagging, restarted and new members catch up by snapshot. */
	static const uint64_t snapshot_counts[] = {0, 3, 8, 20, 60};
	static const uint64_t catchups[] = {0, 1, 5, 25};
	static const uint64_t snapshot_delays[] = {0, 5, 40, 200};
	cluster->snapshot_count = snapshot_counts[rng_below(&cluster->rng, 5)];
	cluster->catchup_entries = catchups[rng_below(&cluster->rng, 4)];
	cluster->snapshot_delay_max = snapshot_delays[rng_below(&cluster->rng, 4)];
	static const unsigned batch_rates[] = {0, 0, 100, 400};
	cluster->batch_per_thousand = batch_rates[rng_below(&cluster->rng, 4)];
	cluster->batch_window_max = rng_chance(&cluster->rng, 500) ? 3 : 15;
	if (options->snapshot_policy_given) {
		cluster->snapshot_count = options->snapshot_count;
		cluster->catchup_entries = options->catchup_entries;
	}
	if (options->demo) {
		cluster->snapshot_count = 0;
		cluster->batch_per_thousand = 0;
		/* the story needs a well-behaved cluster: etcd's production settings and a clean network */
		cluster->pre_vote = true;
		cluster->check_quorum = true;
		cluster->max_size_per_msg = 1024 * 1024;
		cluster->max_inflight = 256;
		cluster->network = (struct sim_network){.delay_min = 1, .delay_max = 5};
		cluster->allow_corruption = false;
	}
	sim_trace(cluster, "seed %llu: %d members, %s faults, pre-vote %s, check-quorum %s, max message %llu bytes, "
	          "%d in flight, snapshot every %llu entries (0: random only) keeping %llu, durable within %llu ms, "
	          "%u/1000 Readys deferred up to %llu ms",
	          ULL(seed), options->nodes, cluster->fault_period_max < 100 ? "stormy" : "calm",
	          cluster->pre_vote ? "on" : "off", cluster->check_quorum ? "on" : "off", ULL(cluster->max_size_per_msg),
	          cluster->max_inflight, ULL(cluster->snapshot_count), ULL(cluster->catchup_entries),
	          ULL(cluster->snapshot_delay_max), cluster->batch_per_thousand, ULL(cluster->batch_window_max));

	size_t count = (size_t)options->nodes;
	uint64_t voters[SIM_MAX_MEMBERS];
	for (size_t i = 0; i < count; i++) {
		voters[i] = i + 1;
	}
	cluster->next_member_id = count + 1;
	for (size_t i = 0; i < count && !cluster->failed; i++) {
		member_start_initial(cluster, voters[i], voters, count);
	}
	for (size_t slot = 0; slot < cluster->members_count && !cluster->failed; slot++) {
		member_process(cluster, slot);
	}
	if (cluster->random_events) {
		schedule(cluster, EVENT_WORKLOAD, rng_range(&cluster->rng, 1, 20));
		schedule(cluster, EVENT_FAULT, rng_range(&cluster->rng, 50, 300));
	}
}

void cluster_free(struct sim_cluster *cluster)
{
	for (size_t i = 0; i < cluster->members_count; i++) {
		struct sim_member *member = &cluster->members[i];
		raft_free(member->raft);
		storage_free(&member->storage);
		free(member->capture.conf_state);
		free(member->reads);
	}
	free(cluster->members);
	events_free(&cluster->events);
	checker_free(&cluster->checker);
	workload_free(&cluster->workload);
	*cluster = (struct sim_cluster){0};
}

static bool member_event_current(struct sim_cluster *cluster, const struct sim_event *event)
{
	return event->slot < cluster->members_count && cluster->members[event->slot].incarnation == event->incarnation;
}

bool cluster_step(struct sim_cluster *cluster)
{
	struct sim_event event;
	if (!events_pop(&cluster->events, &event)) {
		return false;
	}
	cluster->now = event.time;
	cluster->steps++;
	struct sim_member *member = event.slot < cluster->members_count ? &cluster->members[event.slot] : NULL;
	switch (event.kind) {
	case EVENT_DELIVER:
		network_deliver(cluster, &event);
		break;
	case EVENT_TICK:
		if (member_event_current(cluster, &event) && member->state == MEMBER_ALIVE) {
			raft_tick(member->raft);
			member_process(cluster, event.slot);
			struct sim_event next = {0};
			next.time = cluster->now + SIM_TICK_MS;
			next.kind = EVENT_TICK;
			next.slot = event.slot;
			next.incarnation = member->incarnation;
			events_push(&cluster->events, &next);
		}
		break;
	case EVENT_PERSIST:
		if (member_event_current(cluster, &event) && member->state == MEMBER_ALIVE) {
			member_persist_due(cluster, event.slot);
			member_process(cluster, event.slot);
		}
		break;
	case EVENT_WORKLOAD:
		workload_act(cluster);
		schedule(cluster, EVENT_WORKLOAD, rng_range(&cluster->rng, 2, 25));
		break;
	case EVENT_FAULT:
		if (!cluster->quiet) {
			workload_fault(cluster);
			schedule(cluster, EVENT_FAULT, rng_range(&cluster->rng, 20, cluster->fault_period_max));
		}
		break;
	case EVENT_RESTART:
		if (member_event_current(cluster, &event) && member->state == MEMBER_CRASHED) {
			member_restart(cluster, event.slot);
		}
		break;
	case EVENT_CRASH:
		if (member_event_current(cluster, &event) && member->state == MEMBER_ALIVE && !cluster->quiet) {
			member_crash(cluster, event.slot);
			struct sim_event restart = {0};
			restart.time = cluster->now + rng_range(&cluster->rng, 5, 2 * SIM_ELECTION_TIMEOUT_MS);
			restart.kind = EVENT_RESTART;
			restart.slot = event.slot;
			restart.incarnation = member->incarnation;
			events_push(&cluster->events, &restart);
		}
		break;
	case EVENT_SNAPSHOT:
		if (member_event_current(cluster, &event) && member->state == MEMBER_ALIVE) {
			member_finish_snapshot(cluster, event.slot);
			member_process(cluster, event.slot);
		}
		break;
	case EVENT_SNAPSHOT_REPORT:
		network_snapshot_report_due(cluster, &event);
		break;
	case EVENT_PROCESS:
		if (member_event_current(cluster, &event) && member->state == MEMBER_ALIVE) {
			member_end_batch(cluster, event.slot);
		}
		break;
	case EVENT_HEAL:
		if (event.incarnation == (uint32_t)cluster->partitions) {
			network_heal(cluster);
		}
		break;
	}
	/* Transport feedback and similar inputs may have left a Ready behind: take it now, in order. */
	for (size_t slot = 0; slot < cluster->members_count && !cluster->failed; slot++) {
		if (cluster->members[slot].state == MEMBER_ALIVE && raft_has_ready(cluster->members[slot].raft)) {
			member_process(cluster, slot);
		}
	}
	checker_observe_all(cluster);
	if (!cluster->failed && cluster->checker.removals_count) {
		checker_retire_removed(cluster);
	}
	if (!cluster->failed && cluster->steps % 512 == 0) {
		checker_full_logs(cluster);
	}
	return true;
}

void cluster_on_commit(struct sim_cluster *cluster, size_t slot)
{
	if (cluster->quiet || !cluster->random_events || cluster->fault_period_max >= 100 ||
	    !rng_chance(&cluster->rng, 100)) {
		return;
	}
	struct sim_event event = {0};
	event.time = cluster->now + rng_range(&cluster->rng, 0, 3);
	event.kind = EVENT_CRASH;
	event.slot = slot;
	event.incarnation = cluster->members[slot].incarnation;
	events_push(&cluster->events, &event);
}

void cluster_begin_quiet_phase(struct sim_cluster *cluster)
{
	sim_trace(cluster, "quiet phase: the network heals, loss and corruption stop, crashed members restart, "
	          "clients stop writing");
	cluster->quiet = true;
	cluster->checker.fault_acknowledged_index = cluster->checker.acknowledged_index;
	cluster->checker.fault_acknowledged_writes = cluster->checker.acknowledged_writes;
	cluster->network.loss_per_thousand = 0;
	cluster->network.duplicate_per_thousand = 0;
	cluster->network.corrupt_per_thousand = 0;
	cluster->network.delay_min = 1;
	cluster->network.delay_max = 10;
	network_heal(cluster);
	for (size_t slot = 0; slot < cluster->members_count && !cluster->failed; slot++) {
		/* disks are healthy again too: a slow disk stretches every round trip of a catching-up follower */
		if (cluster->members[slot].persist_delay_max > 5) {
			cluster->members[slot].persist_delay_max = 5;
		}
		if (cluster->members[slot].state == MEMBER_CRASHED) {
			member_restart(cluster, slot);
		}
	}
}

static void describe_liveness_failure(struct sim_cluster *cluster)
{
	char text[1024];
	size_t used = 0;
	text[0] = '\0';
	for (size_t i = 0; i < cluster->members_count && used < sizeof(text) - 512; i++) {
		struct sim_member *member = &cluster->members[i];
		if (member->state != MEMBER_ALIVE) {
			continue;
		}
		struct raft_status status;
		raft_get_status(member->raft, &status);
		used += (size_t)snprintf(text + used, sizeof(text) - used, " [%llu %s term %llu commit %llu applied %llu%s]",
		                         ULL(member->id), raft_role_name(status.role), ULL(status.term), ULL(status.commit),
		                         ULL(member->app.applied),
		                         member->marker_applied >= cluster->workload.marker_sequence &&
		                                 cluster->workload.marker_sequence
		                             ? " has marker"
		                             : "");
	}
	struct sim_member *leader = cluster_leader(cluster);
	if (leader != NULL) {
		struct raft_peer_status peers[SIM_MAX_MEMBERS];
		size_t count = raft_get_progress(leader->raft, peers, SIM_MAX_MEMBERS);
		static const char *const states[] = {"probe", "replicate", "snapshot"};
		used += (size_t)snprintf(text + used, sizeof(text) - used, "; leader %llu's progress:", ULL(leader->id));
		for (size_t i = 0; i < count && i < SIM_MAX_MEMBERS && used < sizeof(text) - 80; i++) {
			used += (size_t)snprintf(text + used, sizeof(text) - used, " [%llu %s match %llu next %llu%s%s]",
			                         ULL(peers[i].id), states[peers[i].state % 3], ULL(peers[i].match),
			                         ULL(peers[i].next), peers[i].is_learner ? " learner" : "",
			                         peers[i].recent_active ? "" : " inactive");
		}
	}
	sim_fail(cluster, "Liveness: %llu election timeouts after the faults healed, %s; members:%s",
	         ULL(SIM_LIVENESS_TIMEOUTS),
	         cluster->workload.marker_sequence == 0 ? "no leader accepted a proposal"
	                                                : "a new proposal is not applied on every live member",
	         text);
}

bool cluster_run(struct sim_cluster *cluster)
{
	while (!cluster->failed && cluster->steps < cluster->options.steps && cluster_step(cluster)) {
	}
	if (cluster->failed) {
		return false;
	}
	cluster_begin_quiet_phase(cluster);
	uint64_t deadline = cluster->now + SIM_LIVENESS_TIMEOUTS * SIM_ELECTION_TIMEOUT_MS;
	while (!cluster->failed && !workload_liveness_probe(cluster)) {
		if (cluster->now > deadline || !cluster_step(cluster)) {
			describe_liveness_failure(cluster);
			break;
		}
	}
	if (!cluster->failed) {
		checker_full_logs(cluster);
		checker_acknowledged_writes(cluster);
		sim_trace(cluster, "liveness: every live member applied a new proposal %llu ms into the quiet phase",
		          ULL(cluster->now + SIM_LIVENESS_TIMEOUTS * SIM_ELECTION_TIMEOUT_MS - deadline));
	}
	return !cluster->failed;
}
