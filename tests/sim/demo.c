/* tests/sim/demo.c: `raft-sim --demo`, one simulated cluster's story told in plain sentences.
 *
 * The same simulated cluster as the seeded runs (cores, wire, disks, checker after every step), but a
 * script acts instead of the random workload: elections, writes committing, the leader crashing and a
 * new one taking over, a partition that isolates the leader and then heals, and a membership change
 * (a learner joins, is promoted, a member is removed). It ends with a summary of terms, leaders,
 * entries and the safety checks that ran. The README's demo shows it (scripts/demo.sh).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define ULL(x) ((unsigned long long)(x))

static void say(struct sim_cluster *cluster, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void say(struct sim_cluster *cluster, const char *format, ...)
{
	va_list arguments;
	va_start(arguments, format);
	printf("[t=%5llu.%03llus] ", ULL(cluster->now / 1000), ULL(cluster->now % 1000));
	vprintf(format, arguments);
	putchar('\n');
	va_end(arguments);
}

static uint64_t last_leader_announced;

static void announce_leader(struct sim_cluster *cluster, uint64_t id, uint64_t term)
{
	say(cluster, "member %llu is elected leader of term %llu", ULL(id), ULL(term));
	last_leader_announced = id;
}

typedef bool (*demo_predicate)(struct sim_cluster *cluster, const void *argument);

/* Runs the simulation until the predicate holds; false on a failed check or after timeout_ms. */
static bool run_until(struct sim_cluster *cluster, demo_predicate predicate, const void *argument, uint64_t timeout_ms)
{
	uint64_t deadline = cluster->now + timeout_ms;
	while (!cluster->failed && !predicate(cluster, argument)) {
		if (cluster->now > deadline || !cluster_step(cluster)) {
			return false;
		}
	}
	return !cluster->failed;
}

static void run_for(struct sim_cluster *cluster, uint64_t duration_ms)
{
	uint64_t end = cluster->now + duration_ms;
	while (!cluster->failed && cluster->now < end && cluster_step(cluster)) {
	}
}

static bool has_leader(struct sim_cluster *cluster, const void *argument)
{
	const uint64_t *not_this = argument;
	struct sim_member *leader = cluster_leader(cluster);
	return leader != NULL && (not_this == NULL || leader->id != *not_this);
}

/* Every live member in the configuration applied at least this many writes. */
static bool all_applied_writes(struct sim_cluster *cluster, const void *argument)
{
	uint64_t writes = *(const uint64_t *)argument;
	for (size_t i = 0; i < cluster->members_count; i++) {
		const struct sim_member *member = &cluster->members[i];
		if (member->state == MEMBER_ALIVE && !checker_removal_pending(cluster, member->id) && member->app.writes < writes) {
			return false;
		}
	}
	return true;
}

struct demo_catch_up {
	uint64_t id;
	uint64_t writes;
};

static bool member_caught_up(struct sim_cluster *cluster, const void *argument)
{
	const struct demo_catch_up *goal = argument;
	struct sim_member *member = cluster_member_by_id(cluster, goal->id);
	return member != NULL && member->state == MEMBER_ALIVE && member->app.writes >= goal->writes;
}

static bool member_gone(struct sim_cluster *cluster, const void *argument)
{
	struct sim_member *member = cluster_member_by_id(cluster, *(const uint64_t *)argument);
	return member != NULL && member->state == MEMBER_REMOVED;
}

static bool is_voter(struct sim_cluster *cluster, const void *argument)
{
	uint64_t id = *(const uint64_t *)argument;
	struct sim_member *leader = cluster_leader(cluster);
	if (leader == NULL) {
		return false;
	}
	struct raft_conf_view view;
	raft_get_conf(leader->raft, &view);
	for (size_t i = 0; i < view.voters_count; i++) {
		if (view.voters[i] == id && view.voters_outgoing_count == 0) {
			return true;
		}
	}
	return false;
}

static uint64_t max_writes(struct sim_cluster *cluster)
{
	return cluster->checker.writes_applied;
}

/* Proposes count writes on the current leader; returns the number of writes the cluster should then
 * have applied. */
static uint64_t write_through_leader(struct sim_cluster *cluster, uint64_t count)
{
	uint64_t target = max_writes(cluster);
	struct sim_member *leader = cluster_leader(cluster);
	for (uint64_t i = 0; leader != NULL && i < count; i++) {
		if (workload_propose_write(cluster, cluster_slot_of(cluster, leader)) != 0) {
			target++;
		}
	}
	return target;
}

static bool change_membership(struct sim_cluster *cluster, int type, uint64_t id)
{
	struct sim_member *leader = cluster_leader(cluster);
	if (leader == NULL) {
		return false;
	}
	Raftpb__ConfChange change = RAFTPB__CONF_CHANGE__INIT;
	change.type = (Raftpb__ConfChangeType)type;
	change.node_id = id;
	uint64_t index = 0;
	int result = raft_propose_conf_change(leader->raft, &change, &index);
	if (result != RAFT_OK) {
		say(cluster, "the leader refused the membership change: %s", raft_strerror(result));
		return false;
	}
	member_process(cluster, cluster_slot_of(cluster, leader));
	return true;
}

static int finish(struct sim_cluster *cluster, bool ok, const char *what)
{
	if (!ok) {
		if (cluster->failed) {
			printf("FAILED: %s\n", cluster->failure);
		} else {
			printf("FAILED: %s did not happen in time\n", what);
		}
	}
	return ok ? 0 : 1;
}

static int demo_story(struct sim_cluster *cluster)
{
	size_t nodes = (size_t)cluster->options.nodes;
	say(cluster, "%zu members start, each bootstrapped with the same configuration (voters 1..%zu); no leader yet",
	    nodes, nodes);
	if (!run_until(cluster, has_leader, NULL, 20 * SIM_ELECTION_TIMEOUT_MS)) {
		return finish(cluster, false, "the first election");
	}

	uint64_t target = write_through_leader(cluster, 10);
	if (!run_until(cluster, all_applied_writes, &target, 20 * SIM_ELECTION_TIMEOUT_MS)) {
		return finish(cluster, false, "committing 10 writes");
	}
	say(cluster, "10 client writes are committed and applied on all %zu members (commit index %llu)", nodes,
	    ULL(cluster->checker.commit_index));

	/* The leader crashes: the others notice the silence and elect a new one. */
	struct sim_member *leader = cluster_leader(cluster);
	uint64_t crashed = leader->id;
	uint64_t crashed_at = cluster->now;
	say(cluster, "member %llu (the leader) crashes; what it had not yet written to disk is lost", ULL(crashed));
	member_crash(cluster, cluster_slot_of(cluster, leader));
	if (!run_until(cluster, has_leader, &crashed, 30 * SIM_ELECTION_TIMEOUT_MS)) {
		return finish(cluster, false, "a new election after the crash");
	}
	say(cluster, "the cluster had a new leader %llu ms after the crash", ULL(cluster->now - crashed_at));
	target = write_through_leader(cluster, 5);
	if (!run_until(cluster, all_applied_writes, &target, 20 * SIM_ELECTION_TIMEOUT_MS)) {
		return finish(cluster, false, "committing writes without the crashed member");
	}
	say(cluster, "5 more writes commit on the %zu remaining members", nodes - 1);
	member_restart(cluster, cluster_slot_of(cluster, cluster_member_by_id(cluster, crashed)));
	say(cluster, "member %llu restarts from its disk (hard state, snapshot, log) and rejoins as a follower",
	    ULL(crashed));
	if (!run_until(cluster, all_applied_writes, &target, 20 * SIM_ELECTION_TIMEOUT_MS)) {
		return finish(cluster, false, "the restarted member catching up");
	}
	say(cluster, "member %llu has caught up: every member applied all %llu writes", ULL(crashed), ULL(target));

	/* A partition cuts the leader and one follower off from the majority. */
	leader = cluster_leader(cluster);
	uint64_t old_leader = leader->id, companion = 0;
	for (size_t i = 0; i < cluster->members_count; i++) {
		cluster->members[i].group = 0;
	}
	leader->group = 1;
	for (size_t i = 0; i < cluster->members_count; i++) {
		if (cluster->members[i].state == MEMBER_ALIVE && cluster->members[i].id != old_leader) {
			cluster->members[i].group = 1;
			companion = cluster->members[i].id;
			break;
		}
	}
	cluster->network.partitioned = true;
	say(cluster, "a partition cuts the leader %llu and member %llu off from the other %zu members", ULL(old_leader),
	    ULL(companion), nodes - 2);
	struct raft_status before;
	raft_get_status(leader->raft, &before);
	uint64_t minority_first = before.last_index + 1, minority_term = before.term;
	for (int i = 0; i < 3; i++) {
		workload_propose_write(cluster, cluster_slot_of(cluster, leader));
	}
	say(cluster, "a client writes 3 entries through the isolated leader %llu: they cannot reach a majority",
	    ULL(old_leader));
	if (!run_until(cluster, has_leader, &old_leader, 30 * SIM_ELECTION_TIMEOUT_MS)) {
		return finish(cluster, false, "the majority electing a leader");
	}
	struct sim_member *majority_leader = cluster_leader(cluster);
	uint64_t before_majority = max_writes(cluster);
	for (int i = 0; i < 5; i++) {
		workload_propose_write(cluster, cluster_slot_of(cluster, majority_leader));
	}
	target = before_majority + 5;
	run_for(cluster, 10 * SIM_ELECTION_TIMEOUT_MS);
	struct raft_status isolated;
	raft_get_status(cluster_member_by_id(cluster, old_leader)->raft, &isolated);
	say(cluster, "the majority side has applied %llu of its 5 writes under leader %llu; the isolated member %llu has "
	    "commit %llu (%llu before the partition), so its 3 entries are %s",
	    ULL(majority_leader->app.writes - before_majority), ULL(majority_leader->id), ULL(old_leader),
	    ULL(isolated.commit), ULL(before.commit), isolated.commit < minority_first ? "not committed" : "COMMITTED");
	network_heal(cluster);
	say(cluster, "the partition heals");
	if (!run_until(cluster, all_applied_writes, &target, 30 * SIM_ELECTION_TIMEOUT_MS)) {
		return finish(cluster, false, "the members converging after the heal");
	}
	struct sim_member *rejoined = cluster_member_by_id(cluster, old_leader);
	raft_get_status(rejoined->raft, &isolated);
	uint64_t replaced = 0;
	for (uint64_t index = minority_first; index < minority_first + 3; index++) {
		replaced += raft_term_at(rejoined->raft, index) != minority_term;
	}
	say(cluster, "member %llu is a %s in term %llu now; %llu of the 3 entries it took while isolated were replaced by "
	    "the majority's log", ULL(old_leader), raft_role_name(isolated.role), ULL(isolated.term), ULL(replaced));

	/* Membership: a learner joins, catches up, is promoted; a member is removed. */
	uint64_t learner = cluster->next_member_id++;
	if (!change_membership(cluster, RAFT_CC_ADD_LEARNER_NODE, learner)) {
		return finish(cluster, false, "adding a learner");
	}
	say(cluster, "the leader proposes member %llu as a learner (it receives the log but does not vote)", ULL(learner));
	struct demo_catch_up goal = {learner, max_writes(cluster)};
	if (!run_until(cluster, member_caught_up, &goal, 30 * SIM_ELECTION_TIMEOUT_MS)) {
		return finish(cluster, false, "the learner catching up");
	}
	say(cluster, "member %llu started with an empty log and caught up (%llu writes applied)", ULL(learner),
	    ULL(cluster_member_by_id(cluster, learner)->app.writes));
	if (!change_membership(cluster, RAFT_CC_ADD_NODE, learner) ||
	    !run_until(cluster, is_voter, &learner, 30 * SIM_ELECTION_TIMEOUT_MS)) {
		return finish(cluster, false, "promoting the learner");
	}
	say(cluster, "member %llu is promoted to voter", ULL(learner));
	uint64_t removed = 0;
	leader = cluster_leader(cluster);
	for (size_t i = 0; i < cluster->members_count && removed == 0; i++) {
		if (cluster->members[i].state == MEMBER_ALIVE && cluster->members[i].id != leader->id &&
		    cluster->members[i].id != learner) {
			removed = cluster->members[i].id;
		}
	}
	if (!change_membership(cluster, RAFT_CC_REMOVE_NODE, removed) ||
	    !run_until(cluster, member_gone, &removed, 30 * SIM_ELECTION_TIMEOUT_MS)) {
		return finish(cluster, false, "removing a member");
	}
	say(cluster, "member %llu is removed; once every remaining member has the removal on disk it shuts down",
	    ULL(removed));
	target = write_through_leader(cluster, 5);
	if (!run_until(cluster, all_applied_writes, &target, 20 * SIM_ELECTION_TIMEOUT_MS)) {
		return finish(cluster, false, "committing writes in the new configuration");
	}
	say(cluster, "5 final writes commit in the new configuration");

	/* Summary */
	const struct sim_checker *checker = &cluster->checker;
	printf("\nsummary after %llu.%03llu simulated seconds (%llu events):\n", ULL(cluster->now / 1000),
	       ULL(cluster->now % 1000), ULL(cluster->steps));
	printf("  leaders by term:");
	for (size_t term = 0; term < checker->terms_capacity; term++) {
		if (checker->leader_of_term[term] != 0) {
			printf(" %zu:%llu", term, ULL(checker->leader_of_term[term]));
		}
	}
	printf("\n  entries committed: %llu (%llu client writes applied on every member)\n", ULL(checker->commit_index),
	       ULL(max_writes(cluster)));
	printf("  safety checks passed: election safety and leader completeness at %llu elections, %llu committed "
	       "indexes checked, %llu applies checked (state machine safety), %llu log entries matched, %llu messages "
	       "checked against the Ready contract\n",
	       ULL(checker->leaders_checked), ULL(checker->commits_checked), ULL(checker->applies_checked),
	       ULL(checker->logs_checked), ULL(checker->messages_checked));
	return 0;
}

int demo_run(const struct sim_options *options)
{
	struct sim_options demo_options = *options;
	demo_options.demo = true;
	demo_options.verbose = options->verbose;
	if (demo_options.nodes < 3) {
		demo_options.nodes = 5;
	}
	struct sim_cluster *cluster = malloc(sizeof(*cluster));
	if (cluster == NULL) {
		abort();
	}
	last_leader_announced = 0;
	cluster_init(cluster, &demo_options, options->first_seed);
	cluster->on_leader = announce_leader;
	int status = cluster->failed ? finish(cluster, false, "starting the cluster") : demo_story(cluster);
	if (status == 0) {
		checker_full_logs(cluster);
		status = finish(cluster, !cluster->failed, "the final log check");
	}
	cluster_free(cluster);
	free(cluster);
	return status;
}
