/* tests/raft/test_restart.c: a member crashes and restarts from what its storage holds (raft_new with
 * a raft_restore built from the harness's storage). Figure 2's "persistent state on all servers"
 * (currentTerm, votedFor, log[]) must survive, the configuration must come back with the log, and
 * committed entries the application had not applied must be delivered again (config.applied).
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static void TestRestartKeepsTermVoteLogAndConfiguration(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	for (int k = 0; k < 3; k++)
		REQUIRE_RC(RAFT_OK, propose(cluster, 1, "before-restart"));
	stabilize(cluster);
	struct raft_status before = node_status(cluster, 2);
	node_restart(cluster, 2);
	struct raft_status after = node_status(cluster, 2);
	CHECK_U64("term", before.term, after.term);
	CHECK_U64("vote", before.vote, after.vote);
	CHECK_U64("last index", before.last_index, after.last_index);
	CHECK(after.commit >= node(cluster, 2)->hard_state.commit);
	CHECK_U64("applied", before.applied, after.applied);
	static const uint64_t voters[] = {1, 2, 3};
	CHECK(conf_voters_are(cluster, 2, voters, 3));
	/* Nothing applied before is delivered again (the harness checks the order), new entries are. */
	tick_all_and_stabilize(cluster, 2);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "after-restart"));
	stabilize(cluster);
	CHECK(applied_contains(cluster, 2, "after-restart"));
	/* And it can lead: the configuration it restarted with counts it as a voter. */
	elect(cluster, 2);
}

/* Figure 2: votedFor is persistent — a member that voted, crashed and restarted must not vote for
 * another candidate in the same term. */
static void TestRestartRemembersVote(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	struct raft_status status = node_status(cluster, 2);
	Raftpb__Message request = message(RAFT_MSG_VOTE, 3, 2, status.term + 1);
	request.index = status.last_index;
	request.log_term = raft_term_at(node(cluster, 2)->raft, status.last_index);
	(void)step(cluster, 2, &request);
	process_ready(cluster, 2);
	REQUIRE_U64("durable vote", 3, node(cluster, 2)->hard_state.vote);
	drop_queue(cluster);
	node_restart(cluster, 2);
	CHECK_U64("vote after the restart", 3, node_status(cluster, 2).vote);
	Raftpb__Message other = message(RAFT_MSG_VOTE, 1, 2, status.term + 1);
	other.index = status.last_index + 5;
	other.log_term = status.term;
	(void)step(cluster, 2, &other);
	process_ready(cluster, 2);
	Raftpb__Message *answer = queued(cluster, 2, 1, RAFT_MSG_VOTE_RESP, 0);
	if (answer != NULL)
		CHECK(answer->reject);
	CHECK_U64("vote", 3, node_status(cluster, 2).vote);
}

/* The application's durable applied index may lag the commit index: committed entries after it are
 * delivered again on restart. */
static void TestRestartRedeliversEntriesAfterApplied(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "one"));
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "two"));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 1);
	struct node *member = node(cluster, 3);
	uint64_t applied = member->applied_index;
	REQUIRE(member->hard_state.commit == applied);
	/* The application lost its last two entries in the crash. */
	member->applied_index = applied - 2;
	node_restart(cluster, 3);
	CHECK_U64("status applied after the restart", applied - 2, node_status(cluster, 3).applied);
	size_t delivered_before = member->applied_count;
	process_all_readies(cluster);
	CHECK_U64("entries delivered again", 2, member->applied_count - delivered_before);
	CHECK_U64("applied again", applied, member->applied_index);
}

/* A leader that restarts comes back as a follower; the cluster elects a leader and converges. */
static void TestRestartedLeaderRejoins(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "x"));
	stabilize(cluster);
	node_restart(cluster, 1);
	CHECK(node_status(cluster, 1).role == RAFT_FOLLOWER);
	tick_all_and_stabilize(cluster, 4 * node(cluster, 1)->config.election_tick);
	uint64_t leader = leader_of(cluster);
	REQUIRE(leader != RAFT_NONE);
	REQUIRE_RC(RAFT_OK, propose(cluster, leader, "y"));
	stabilize(cluster);
	for (uint64_t id = 1; id <= 3; id++) {
		char why[160];
		if (id != leader && !logs_equal(cluster, leader, id, why, sizeof why))
			test_fail(__FILE__, __LINE__, "member %llu: %s", (unsigned long long)id, why);
		CHECK(applied_contains(cluster, id, "y"));
	}
}

/* A member that installed a snapshot restarts from it: log after the snapshot, configuration from its
 * metadata. */
static void TestRestartFromSnapshot(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	isolate(cluster, 3);
	for (int k = 0; k < 5; k++) {
		REQUIRE_RC(RAFT_OK, propose(cluster, 1, "s"));
		stabilize(cluster);
	}
	uint64_t index = node_status(cluster, 1).applied;
	REQUIRE_RC(RAFT_OK, raft_create_snapshot(node(cluster, 1)->raft, index, NULL, "state", 5));
	REQUIRE_RC(RAFT_OK, raft_compact(node(cluster, 1)->raft, index));
	heal(cluster);
	tick_all_and_stabilize(cluster, 3);
	REQUIRE_U64("snapshots installed", 1, node(cluster, 3)->snapshots_installed);
	node_restart(cluster, 3);
	struct raft_status status = node_status(cluster, 3);
	CHECK_U64("first index", index + 1, status.first_index);
	CHECK(status.commit >= index);
	static const uint64_t voters[] = {1, 2, 3};
	CHECK(conf_voters_are(cluster, 3, voters, 3));
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "after"));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	CHECK(applied_contains(cluster, 3, "after"));
}

const struct test_case restart_tests[] = {
	{"TestRestartKeepsTermVoteLogAndConfiguration", TestRestartKeepsTermVoteLogAndConfiguration},
	{"TestRestartRemembersVote", TestRestartRemembersVote},
	{"TestRestartRedeliversEntriesAfterApplied", TestRestartRedeliversEntriesAfterApplied},
	{"TestRestartedLeaderRejoins", TestRestartedLeaderRejoins},
	{"TestRestartFromSnapshot", TestRestartFromSnapshot},
	{NULL, NULL},
};
