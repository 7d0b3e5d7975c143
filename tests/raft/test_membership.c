/* tests/raft/test_membership.c: membership changes (thesis chapter 4): learners, single-member changes,
 * joint consensus entered and left automatically or explicitly, one pending change at a time, and a
 * removed leader stepping down.
 *
 * New members start with an empty log and no configuration; the leader sends them the whole log,
 * bootstrap entries included, exactly as a member added to a running etcd cluster.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

/* A three-voter cluster led by 1 with node 4 started empty, ready to be added. */
static struct cluster *cluster_with_newcomer(void)
{
	struct cluster *cluster = cluster_new_sized(3, 4, NULL);
	elect(cluster, 1);
	node_start_empty(cluster, 4);
	return cluster;
}

/* Learners receive the log but never vote and do not count toward a quorum (thesis §4.2.1). */
static void TestLearnerReceivesLogButNeverVotes(void)
{
	struct cluster *cluster = cluster_with_newcomer();
	REQUIRE_RC(RAFT_OK, propose_change(cluster, 1, RAFT_CC_ADD_LEARNER_NODE, 4));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	for (uint64_t id = 1; id <= 4; id++)
		CHECK(conf_has_learner(cluster, id, 4));
	static const uint64_t voters[] = {1, 2, 3};
	CHECK(conf_voters_are(cluster, 1, voters, 3));
	char why[160];
	if (!logs_equal(cluster, 1, 4, why, sizeof why))
		test_fail(__FILE__, __LINE__, "learner log: %s", why);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "to-learner"));
	stabilize(cluster);
	CHECK(applied_contains(cluster, 4, "to-learner"));

	/* It never campaigns, however long it hears nothing. */
	uint64_t term = node_status(cluster, 4).term;
	isolate(cluster, 4);
	for (int k = 0; k < 5 * node(cluster, 4)->config.election_tick; k++) {
		tick(cluster, 4, 1);
		stabilize(cluster);
	}
	CHECK(node_status(cluster, 4).role == RAFT_FOLLOWER);
	CHECK_U64("learner's term", term, node_status(cluster, 4).term);
	CHECK_U64("elections started by the learner", 0, raft_get_counters(node(cluster, 4)->raft)->elections_started);
	(void)campaign(cluster, 4);
	process_ready(cluster, 4);
	CHECK(node_status(cluster, 4).role == RAFT_FOLLOWER);
	CHECK_U64("vote requests from the learner", 0, queued_count(cluster, 4, 0, RAFT_MSG_VOTE));
	heal(cluster);

	/* A candidate does not ask the learner for its vote. */
	drop_queue(cluster);
	REQUIRE_RC(RAFT_OK, campaign(cluster, 2));
	process_ready(cluster, 2);
	CHECK_U64("vote requests to the learner", 0, queued_count(cluster, 2, 4, RAFT_MSG_VOTE));
	CHECK_U64("vote requests to the voters", 2, queued_count(cluster, 2, 0, RAFT_MSG_VOTE));
}

static void TestLearnerNotCountedForQuorum(void)
{
	struct cluster *cluster = cluster_with_newcomer();
	REQUIRE_RC(RAFT_OK, propose_change(cluster, 1, RAFT_CC_ADD_LEARNER_NODE, 4));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	uint64_t commit = node_status(cluster, 1).commit;
	cut(cluster, 1, 2);
	cut(cluster, 1, 3);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "learner-only"));
	stabilize(cluster);
	CHECK_U64("learner has the entry", node_status(cluster, 1).last_index, node_status(cluster, 4).last_index);
	CHECK_U64("commit with the leader and a learner", commit, node_status(cluster, 1).commit);
	heal(cluster);
	tick_all_and_stabilize(cluster, 2);
	CHECK(applied_contains(cluster, 1, "learner-only"));
}

/* A single voter added (thesis §4.1): it catches up, counts, and can be elected. */
static void TestAddVoter(void)
{
	struct cluster *cluster = cluster_with_newcomer();
	REQUIRE_RC(RAFT_OK, propose_change(cluster, 1, RAFT_CC_ADD_NODE, 4));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	static const uint64_t voters[] = {1, 2, 3, 4};
	for (uint64_t id = 1; id <= 4; id++)
		CHECK(conf_voters_are(cluster, id, voters, 4));
	/* Four voters: a quorum is three; the leader and one follower no longer suffice. */
	uint64_t commit = node_status(cluster, 1).commit;
	cut(cluster, 1, 3);
	cut(cluster, 1, 4);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "two-of-four"));
	stabilize(cluster);
	CHECK_U64("commit with 2 of 4", commit, node_status(cluster, 1).commit);
	heal(cluster);
	tick_all_and_stabilize(cluster, 2);
	CHECK(applied_contains(cluster, 4, "two-of-four"));
	elect(cluster, 4);
}

/* A voter removed: the two left commit on their own, the removed one stops mattering. */
static void TestRemoveVoter(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	REQUIRE_RC(RAFT_OK, propose_change(cluster, 1, RAFT_CC_REMOVE_NODE, 3));
	stabilize(cluster);
	static const uint64_t voters[] = {1, 2};
	CHECK(conf_voters_are(cluster, 1, voters, 2));
	CHECK(conf_voters_are(cluster, 2, voters, 2));
	isolate(cluster, 3);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "without-3"));
	stabilize(cluster);
	CHECK(applied_contains(cluster, 2, "without-3"));
}

/* Joint consensus (thesis §4.3): several changes at once go through C_old,new; with the automatic
 * transition the leader leaves the joint configuration by itself once it is applied. */
static void TestJointConsensusAutoLeave(void)
{
	struct cluster *cluster = cluster_with_newcomer();
	static const int types[] = {RAFT_CC_ADD_NODE, RAFT_CC_REMOVE_NODE};
	static const uint64_t ids[] = {4, 3};
	REQUIRE_RC(RAFT_OK, propose_change_v2(cluster, 1, RAFTPB__CONF_CHANGE_TRANSITION__CONF_CHANGE_TRANSITION_AUTO,
	                                      types, ids, 2));
	bool seen_joint = false;
	for (int round = 0; round < 200; round++) {
		process_all_readies(cluster);
		if (node_status(cluster, 1).joint) {
			seen_joint = true;
			struct raft_conf_view view;
			raft_get_conf(node(cluster, 1)->raft, &view);
			CHECK_U64("outgoing voters while joint", 3, view.voters_outgoing_count);
			CHECK(view.auto_leave);
		}
		if (deliver_all(cluster) == 0 && !raft_has_ready(node(cluster, 1)->raft))
			break;
	}
	stabilize(cluster);
	CHECK(seen_joint);
	CHECK(!node_status(cluster, 1).joint);
	static const uint64_t voters[] = {1, 2, 4};
	CHECK(conf_voters_are(cluster, 1, voters, 3));
	CHECK(conf_voters_are(cluster, 4, voters, 3));
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "new-config"));
	isolate(cluster, 3);
	stabilize(cluster);
	CHECK(applied_contains(cluster, 4, "new-config"));
}

/* With the explicit transition the joint configuration stays until an empty ConfChangeV2. */
static void TestJointConsensusExplicitLeave(void)
{
	struct cluster *cluster = cluster_with_newcomer();
	static const int types[] = {RAFT_CC_ADD_NODE, RAFT_CC_REMOVE_NODE};
	static const uint64_t ids[] = {4, 3};
	REQUIRE_RC(RAFT_OK,
	           propose_change_v2(cluster, 1, RAFTPB__CONF_CHANGE_TRANSITION__CONF_CHANGE_TRANSITION_JOINT_EXPLICIT,
	                             types, ids, 2));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	struct raft_status status = node_status(cluster, 1);
	CHECK(status.joint);
	struct raft_conf_view view;
	raft_get_conf(node(cluster, 1)->raft, &view);
	CHECK(!view.auto_leave);
	CHECK_U64("incoming voters", 3, view.voters_count);
	CHECK_U64("outgoing voters", 3, view.voters_outgoing_count);
	/* While joint, a decision needs both majorities: {1,2,4} and {1,2,3}. Without 2 and 3 the
	 * incoming one has {1,4}, the outgoing one only {1}: nothing commits. */
	uint64_t commit = status.commit;
	cut(cluster, 1, 2);
	cut(cluster, 1, 3);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "joint"));
	stabilize(cluster);
	CHECK_U64("commit with {1,4} while joint", commit, node_status(cluster, 1).commit);
	heal(cluster);
	tick_all_and_stabilize(cluster, 2);
	/* Another change while joint is refused; leaving is allowed. */
	CHECK(propose_change(cluster, 1, RAFT_CC_ADD_LEARNER_NODE, 3) != RAFT_OK);
	REQUIRE_RC(RAFT_OK, propose_change_v2(cluster, 1, 0, NULL, NULL, 0));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	CHECK(!node_status(cluster, 1).joint);
	static const uint64_t voters[] = {1, 2, 4};
	CHECK(conf_voters_are(cluster, 1, voters, 3));
}

/* One change at a time (thesis §4.1): a second proposal while one is uncommitted or unapplied is
 * refused; an invalid one too. */
static void TestOnePendingConfChange(void)
{
	struct cluster *cluster = cluster_with_newcomer();
	REQUIRE_RC(RAFT_OK, propose_change(cluster, 1, RAFT_CC_ADD_LEARNER_NODE, 4));
	CHECK_RC(RAFT_ERR_CONF_CHANGE_PENDING, propose_change(cluster, 1, RAFT_CC_REMOVE_NODE, 3));
	stabilize(cluster);
	CHECK_RC(RAFT_ERR_CONF_CHANGE_INVALID, propose_change_v2(cluster, 1, 0, NULL, NULL, 0)); /* not joint */
	CHECK_RC(RAFT_OK, propose_change(cluster, 1, RAFT_CC_ADD_NODE, 4));
	stabilize(cluster);
	CHECK_RC(RAFT_ERR_NOT_LEADER, propose_change(cluster, 2, RAFT_CC_REMOVE_NODE, 4));
}

/* A leader that removes itself keeps leading until the change commits, then steps down; the others
 * elect a leader among themselves. */
static void TestRemovedLeaderStepsDown(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	REQUIRE_RC(RAFT_OK, propose_change(cluster, 1, RAFT_CC_REMOVE_NODE, 1));
	stabilize(cluster);
	static const uint64_t voters[] = {2, 3};
	CHECK(conf_voters_are(cluster, 2, voters, 2));
	/* It hands over (TimeoutNow to the most caught-up voter) instead of leaving the others to time out:
	 * a new leader of the remaining voters exists before any election timeout, and the old leader
	 * steps down at its next heartbeat, answered with the newer term. */
	uint64_t successor = leader_of(cluster);
	CHECK(successor == 2 || successor == 3);
	tick_all_and_stabilize(cluster, 2);
	CHECK(node_status(cluster, 1).role != RAFT_LEADER);
	isolate(cluster, 1);
	tick_all_and_stabilize(cluster, 4 * node(cluster, 2)->config.election_tick);
	uint64_t leader = leader_of(cluster);
	CHECK(leader == 2 || leader == 3);
	if (leader == 2 || leader == 3) {
		REQUIRE_RC(RAFT_OK, propose(cluster, leader, "after-removal"));
		stabilize(cluster);
		CHECK(applied_contains(cluster, 2, "after-removal") && applied_contains(cluster, 3, "after-removal"));
	}
}

/* A learner promoted to voter (etcd's usual way of adding a member safely). */
static void TestPromoteLearner(void)
{
	struct cluster *cluster = cluster_with_newcomer();
	REQUIRE_RC(RAFT_OK, propose_change(cluster, 1, RAFT_CC_ADD_LEARNER_NODE, 4));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	REQUIRE_RC(RAFT_OK, propose_change(cluster, 1, RAFT_CC_ADD_NODE, 4));
	stabilize(cluster);
	static const uint64_t voters[] = {1, 2, 3, 4};
	CHECK(conf_voters_are(cluster, 1, voters, 4));
	CHECK(!conf_has_learner(cluster, 1, 4));
	CHECK(!conf_has_learner(cluster, 4, 4));
}

/* Joint consensus removing the leader itself (thesis §4.2.2): it manages the change, then steps down
 * once the new configuration (without it) is in force; the others carry on. */
static void TestJointConsensusRemovingLeader(void)
{
	struct cluster *cluster = cluster_with_newcomer();
	static const int types[] = {RAFT_CC_ADD_NODE, RAFT_CC_REMOVE_NODE};
	static const uint64_t ids[] = {4, 1};
	REQUIRE_RC(RAFT_OK, propose_change_v2(cluster, 1, RAFTPB__CONF_CHANGE_TRANSITION__CONF_CHANGE_TRANSITION_AUTO,
	                                      types, ids, 2));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	CHECK(!node_status(cluster, 2).joint);
	static const uint64_t voters[] = {2, 3, 4};
	CHECK(conf_voters_are(cluster, 2, voters, 3));
	tick_all_and_stabilize(cluster, 2);
	CHECK(node_status(cluster, 1).role != RAFT_LEADER);
	isolate(cluster, 1);
	tick_all_and_stabilize(cluster, 4 * node(cluster, 2)->config.election_tick);
	uint64_t leader = leader_of(cluster);
	CHECK(leader >= 2 && leader <= 4);
	if (leader >= 2 && leader <= 4) {
		REQUIRE_RC(RAFT_OK, propose(cluster, leader, "without-1"));
		stabilize(cluster);
		CHECK(applied_contains(cluster, 4, "without-1"));
	}
}

/* A voter demoted to learner through a joint configuration (learners_next): it stays a voter of the
 * outgoing half until the joint configuration is left, then becomes a learner. */
static void TestDemoteVoterThroughJointConfiguration(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	static const int types[] = {RAFT_CC_ADD_LEARNER_NODE};
	static const uint64_t ids[] = {3};
	REQUIRE_RC(RAFT_OK,
	           propose_change_v2(cluster, 1, RAFTPB__CONF_CHANGE_TRANSITION__CONF_CHANGE_TRANSITION_JOINT_EXPLICIT,
	                             types, ids, 1));
	stabilize(cluster);
	struct raft_conf_view view;
	raft_get_conf(node(cluster, 1)->raft, &view);
	CHECK(node_status(cluster, 1).joint);
	CHECK_U64("learners_next while joint", 1, view.learners_next_count);
	CHECK_U64("outgoing voters while joint", 3, view.voters_outgoing_count);
	REQUIRE_RC(RAFT_OK, propose_change_v2(cluster, 1, 0, NULL, NULL, 0));
	stabilize(cluster);
	static const uint64_t voters[] = {1, 2};
	CHECK(conf_voters_are(cluster, 1, voters, 2));
	CHECK(conf_has_learner(cluster, 1, 3));
	CHECK(conf_has_learner(cluster, 3, 3));
	raft_get_conf(node(cluster, 1)->raft, &view);
	CHECK_U64("learners_next after leaving", 0, view.learners_next_count);
}

/* Leadership cannot go to a learner (it cannot win a vote). */
static void TestNoLeadershipTransferToLearner(void)
{
	struct cluster *cluster = cluster_with_newcomer();
	REQUIRE_RC(RAFT_OK, propose_change(cluster, 1, RAFT_CC_ADD_LEARNER_NODE, 4));
	stabilize(cluster);
	(void)raft_transfer_leadership(node(cluster, 1)->raft, 4);
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	CHECK_U64("leader", 1, leader_of(cluster));
	CHECK_U64("TimeoutNow sent to a learner", 0, cluster->sent_by_type[RAFT_MSG_TIMEOUT_NOW]);
}

const struct test_case membership_tests[] = {
	{"TestJointConsensusRemovingLeader", TestJointConsensusRemovingLeader},
	{"TestDemoteVoterThroughJointConfiguration", TestDemoteVoterThroughJointConfiguration},
	{"TestNoLeadershipTransferToLearner", TestNoLeadershipTransferToLearner},
	{"TestLearnerReceivesLogButNeverVotes", TestLearnerReceivesLogButNeverVotes},
	{"TestLearnerNotCountedForQuorum", TestLearnerNotCountedForQuorum},
	{"TestAddVoter", TestAddVoter},
	{"TestRemoveVoter", TestRemoveVoter},
	{"TestJointConsensusAutoLeave", TestJointConsensusAutoLeave},
	{"TestJointConsensusExplicitLeave", TestJointConsensusExplicitLeave},
	{"TestOnePendingConfChange", TestOnePendingConfChange},
	{"TestRemovedLeaderStepsDown", TestRemovedLeaderStepsDown},
	{"TestPromoteLearner", TestPromoteLearner},
	{NULL, NULL},
};
