/* tests/raft/test_election.c: leader election, rule by rule from Figure 2 of the Raft paper
 * ("Rules for Servers" and "RequestVote RPC"), in the shape of etcd's raft_paper_test.go.
 *
 * Hand-made RequestVotes go to a member restored with a known log, so "up to date" can be checked
 * against exact (index, term) pairs; whole-cluster elections use the harness.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

/* A follower restored with the log 1:t1 (snapshot) 2:t1 3:t1 4:t2 5:t2 6:t3 at term 3: the voter of
 * the RequestVote tests. Its peers are not started, so its answers stay in the queue for the test. */
static const uint64_t voter_terms[] = {1, 1, 2, 2, 3};
#define VOTER_TERM 3
#define VOTER_LAST_INDEX 6
#define VOTER_LAST_TERM 3

static struct cluster *restored_voter(void)
{
	struct cluster *cluster = cluster_new_empty(3, NULL);
	node_start_restored(cluster, 2, 3, voter_terms, sizeof voter_terms / sizeof voter_terms[0], VOTER_TERM,
	                    RAFT_NONE);
	process_all_readies(cluster);
	drop_queue(cluster);
	return cluster;
}

static Raftpb__Message vote_request(uint64_t from, uint64_t term, uint64_t last_index, uint64_t last_term)
{
	Raftpb__Message request = message(RAFT_MSG_VOTE, from, 2, term);
	request.index = last_index;
	request.log_term = last_term;
	return request;
}

/* The answer node 2 queued for candidate, or NULL. */
static Raftpb__Message *vote_answer(struct cluster *cluster, uint64_t candidate)
{
	process_all_readies(cluster);
	return queued(cluster, 2, candidate, RAFT_MSG_VOTE_RESP, 0);
}

/* Figure 2, Rules for Servers: every member starts as a follower and knows no leader. */
static void TestStartAsFollower(void)
{
	struct cluster *cluster = cluster_new(3);
	for (uint64_t id = 1; id <= 3; id++) {
		struct raft_status status = node_status(cluster, id);
		CHECK(status.role == RAFT_FOLLOWER);
		CHECK_U64("leader", RAFT_NONE, status.leader);
		/* raft_bootstrap: one ConfChange per voter, committed and applied. */
		CHECK_U64("last index after bootstrap", 3, status.last_index);
		CHECK_U64("commit after bootstrap", 3, status.commit);
		CHECK_U64("applied after bootstrap", 3, status.applied);
		CHECK_U64("entries applied by the harness", 3, node(cluster, id)->applied_index);
	}
}

/* Figure 2, Candidates: on conversion, increment currentTerm, vote for self, send RequestVote to all
 * other servers; a majority of votes makes the candidate leader. */
static void TestLeaderElection(void)
{
	struct cluster *cluster = cluster_new(3);
	uint64_t term = node_status(cluster, 1).term;
	REQUIRE_RC(RAFT_OK, campaign(cluster, 1));
	process_ready(cluster, 1);
	struct raft_status status = node_status(cluster, 1);
	CHECK(status.role == RAFT_CANDIDATE);
	CHECK_U64("candidate term", term + 1, status.term);
	CHECK_U64("candidate votes for itself", 1, status.vote);
	CHECK_U64("durable vote", 1, node(cluster, 1)->hard_state.vote);
	for (uint64_t peer = 2; peer <= 3; peer++) {
		Raftpb__Message *request = queued(cluster, 1, peer, RAFT_MSG_VOTE, 0);
		REQUIRE(request != NULL);
		CHECK_U64("RequestVote term", term + 1, request->term);
		CHECK_U64("RequestVote lastLogIndex", status.last_index, request->index);
		CHECK_U64("RequestVote lastLogTerm", raft_term_at(node(cluster, 1)->raft, status.last_index),
		          request->log_term);
	}
	stabilize(cluster);
	CHECK(node_status(cluster, 1).role == RAFT_LEADER);
	for (uint64_t id = 1; id <= 3; id++) {
		CHECK_U64("term after the election", term + 1, node_status(cluster, id).term);
		CHECK_U64("leader known to every member", 1, node_status(cluster, id).leader);
	}
}

/* Figure 2, Candidates: "If votes received from majority of servers: become leader" — and not
 * before: with 5 members, one granted vote besides its own is not enough, two are. */
static void TestCandidateWinsWithMajorityOnly(void)
{
	struct cluster *cluster = cluster_new(5);
	REQUIRE_RC(RAFT_OK, campaign(cluster, 1));
	process_ready(cluster, 1);
	REQUIRE_U64("vote requests", 4, queued_count(cluster, 1, 0, RAFT_MSG_VOTE));
	deliver_matching(cluster, 1, 2, RAFT_MSG_VOTE);
	drop_matching(cluster, 1, 0, RAFT_MSG_VOTE);
	process_all_readies(cluster);
	deliver_all(cluster);
	process_all_readies(cluster);
	CHECK(node_status(cluster, 1).role == RAFT_CANDIDATE);

	/* A third vote makes three of five. */
	struct cluster *second = cluster_new(5);
	REQUIRE_RC(RAFT_OK, campaign(second, 1));
	process_ready(second, 1);
	deliver_matching(second, 1, 2, RAFT_MSG_VOTE);
	deliver_matching(second, 1, 3, RAFT_MSG_VOTE);
	drop_matching(second, 1, 0, RAFT_MSG_VOTE);
	process_all_readies(second);
	deliver_all(second);
	process_ready(second, 1);
	CHECK(node_status(second, 1).role == RAFT_LEADER);
}

/* Figure 2, Candidates: "If AppendEntries RPC received from new leader: convert to follower." */
static void TestCandidateFallsBackOnAppendFromNewLeader(void)
{
	struct cluster *cluster = cluster_new(3);
	REQUIRE_RC(RAFT_OK, campaign(cluster, 1));
	process_ready(cluster, 1);
	drop_queue(cluster);
	struct raft_status status = node_status(cluster, 1);
	REQUIRE(status.role == RAFT_CANDIDATE);
	/* Node 2 won the same term meanwhile; its first append is a probe at node 1's last entry. */
	Raftpb__Message append = message(RAFT_MSG_APP, 2, 1, status.term);
	append.index = status.last_index;
	append.log_term = raft_term_at(node(cluster, 1)->raft, status.last_index);
	CHECK_RC(RAFT_OK, step(cluster, 1, &append));
	status = node_status(cluster, 1);
	CHECK(status.role == RAFT_FOLLOWER);
	CHECK_U64("leader after the append", 2, status.leader);
}

/* Figure 2, Candidates: "If election timeout elapses: start new election." */
static void TestCandidateStartsNewElectionOnTimeout(void)
{
	struct cluster *cluster = cluster_new(3);
	isolate(cluster, 1);
	REQUIRE_RC(RAFT_OK, campaign(cluster, 1));
	stabilize(cluster);
	struct raft_status before = node_status(cluster, 1);
	REQUIRE(before.role == RAFT_CANDIDATE);
	uint64_t elections = raft_get_counters(node(cluster, 1)->raft)->elections_started;
	tick(cluster, 1, 2 * node(cluster, 1)->config.election_tick);
	stabilize(cluster);
	struct raft_status after = node_status(cluster, 1);
	CHECK(after.role == RAFT_CANDIDATE);
	CHECK_U64("term after the second election", before.term + 1, after.term);
	CHECK(raft_get_counters(node(cluster, 1)->raft)->elections_started > elections);
}

/* Figure 2, Followers: "If election timeout elapses without receiving AppendEntries from current
 * leader or granting vote to candidate: convert to candidate" — after a timeout drawn from
 * [election_tick, 2 * election_tick), never earlier. */
static void TestFollowerStartsElectionOnTimeout(void)
{
	struct cluster *cluster = cluster_new(3);
	int election_tick = node(cluster, 1)->config.election_tick;
	uint64_t term = node_status(cluster, 1).term;
	tick(cluster, 1, election_tick - 1);
	process_ready(cluster, 1);
	CHECK(node_status(cluster, 1).role == RAFT_FOLLOWER);
	CHECK_U64("term before the timeout", term, node_status(cluster, 1).term);
	tick(cluster, 1, election_tick + 1);
	process_ready(cluster, 1);
	struct raft_status status = node_status(cluster, 1);
	CHECK(status.role == RAFT_CANDIDATE);
	CHECK_U64("term after the timeout", term + 1, status.term);
	CHECK_U64("vote for itself", 1, status.vote);
	CHECK_U64("vote requests sent", 2, queued_count(cluster, 1, 0, RAFT_MSG_VOTE));
}

/* The randomized timeout (§5.2) spreads members over [election_tick, 2 * election_tick): with
 * different seeds, followers time out after different numbers of ticks. */
static void TestFollowerElectionTimeoutRandomized(void)
{
	bool seen[64] = {false};
	int distinct = 0, election_tick = 0;
	/* 16 trials: the runner frees each test's clusters at its end and holds at most 16. */
	for (int trial = 0; trial < 16; trial++) {
		struct cluster *cluster = cluster_new_empty(3, NULL);
		node(cluster, 1)->config.random_seed = 1000 + (uint64_t)trial * 7777;
		node_start_empty(cluster, 1);
		uint64_t ids[] = {1, 2, 3};
		REQUIRE_RC(RAFT_OK, raft_bootstrap(node(cluster, 1)->raft, ids, 3));
		process_all_readies(cluster);
		election_tick = node(cluster, 1)->config.election_tick;
		int ticks = 0;
		while (node_status(cluster, 1).role == RAFT_FOLLOWER && ticks < 4 * election_tick) {
			tick(cluster, 1, 1);
			ticks++;
		}
		CHECK(ticks >= election_tick && ticks < 2 * election_tick);
		if (ticks < 64 && !seen[ticks]) {
			seen[ticks] = true;
			distinct++;
		}
	}
	if (distinct < 3)
		test_fail(__FILE__, __LINE__, "election timeouts not randomized: %d distinct values in [%d, %d)",
		          distinct, election_tick, 2 * election_tick);
}

/* Figure 2, RequestVote receiver 1: "Reply false if term < currentTerm." */
static void TestRejectStaleTermVote(void)
{
	struct cluster *cluster = restored_voter();
	Raftpb__Message request = vote_request(3, VOTER_TERM - 1, VOTER_LAST_INDEX + 5, VOTER_LAST_TERM);
	CHECK_RC(RAFT_ERR_STALE_TERM, step(cluster, 2, &request));
	Raftpb__Message *answer = vote_answer(cluster, 3);
	if (answer != NULL)
		CHECK(answer->reject && answer->term == VOTER_TERM);
	CHECK_U64("term", VOTER_TERM, node_status(cluster, 2).term);
	CHECK_U64("vote", RAFT_NONE, node_status(cluster, 2).vote);
	CHECK(raft_get_counters(node(cluster, 2)->raft)->rejected[RAFT_ERR_STALE_TERM] >= 1);
}

/* Figure 2, RequestVote receiver 2: "If votedFor is null or candidateId, and candidate's log is at
 * least as up-to-date as receiver's log, grant vote" (§5.4.1: compare last terms, then lengths). */
static void TestVoteOnlyForUpToDateCandidate(void)
{
	static const struct {
		uint64_t last_index, last_term;
		bool granted;
	} cases[] = {
		{VOTER_LAST_INDEX + 4, VOTER_LAST_TERM - 1, false}, /* longer but older last term */
		{VOTER_LAST_INDEX - 1, VOTER_LAST_TERM, false},     /* same last term, shorter */
		{VOTER_LAST_INDEX, VOTER_LAST_TERM, true},          /* identical */
		{VOTER_LAST_INDEX + 1, VOTER_LAST_TERM, true},      /* same last term, longer */
		{2, VOTER_LAST_TERM + 1, true},                     /* newer last term, shorter */
		{0, 0, false},                                      /* empty log */
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct cluster *cluster = restored_voter();
		Raftpb__Message request = vote_request(3, VOTER_TERM + 1, cases[k].last_index, cases[k].last_term);
		(void)step(cluster, 2, &request);
		Raftpb__Message *answer = vote_answer(cluster, 3);
		if (answer == NULL) {
			test_fail(__FILE__, __LINE__, "case %zu: no vote response", k);
			continue;
		}
		if (answer->reject == cases[k].granted)
			test_fail(__FILE__, __LINE__,
			          "case %zu: candidate last (%llu, term %llu) vs voter (%d, term %d): expected %s, got %s",
			          k, (unsigned long long)cases[k].last_index, (unsigned long long)cases[k].last_term,
			          VOTER_LAST_INDEX, VOTER_LAST_TERM, cases[k].granted ? "granted" : "rejected",
			          answer->reject ? "rejected" : "granted");
		CHECK_U64("answer term", VOTER_TERM + 1, answer->term);
		/* A higher term makes the voter adopt it whether or not it grants (Figure 2, all servers). */
		CHECK_U64("voter term", VOTER_TERM + 1, node_status(cluster, 2).term);
		CHECK_U64("durable vote", cases[k].granted ? 3 : RAFT_NONE, node(cluster, 2)->hard_state.vote);
	}
}

/* Figure 2, RequestVote: one vote per term, first come first served (a repeat to the same candidate
 * is granted again: the answer may have been lost). */
static void TestVoteOncePerTerm(void)
{
	struct cluster *cluster = restored_voter();
	Raftpb__Message first = vote_request(3, VOTER_TERM + 1, VOTER_LAST_INDEX, VOTER_LAST_TERM);
	(void)step(cluster, 2, &first);
	Raftpb__Message *answer = vote_answer(cluster, 3);
	REQUIRE(answer != NULL);
	CHECK(!answer->reject);
	CHECK_U64("durable vote", 3, node(cluster, 2)->hard_state.vote);
	drop_queue(cluster);

	Raftpb__Message other = vote_request(1, VOTER_TERM + 1, VOTER_LAST_INDEX + 1, VOTER_LAST_TERM);
	(void)step(cluster, 2, &other);
	answer = vote_answer(cluster, 1);
	if (answer != NULL)
		CHECK(answer->reject);
	CHECK_U64("vote unchanged", 3, node_status(cluster, 2).vote);
	drop_queue(cluster);

	(void)step(cluster, 2, &first);
	answer = vote_answer(cluster, 3);
	REQUIRE(answer != NULL);
	CHECK(!answer->reject);
}

/* Figure 2, All servers: "If RPC request or response contains term T > currentTerm: set currentTerm
 * = T, convert to follower." Checked on a leader for each message type. */
static void TestStepDownOnHigherTerm(void)
{
	static const int types[] = {RAFT_MSG_APP, RAFT_MSG_HEARTBEAT, RAFT_MSG_APP_RESP, RAFT_MSG_HEARTBEAT_RESP,
	                            RAFT_MSG_VOTE};
	for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
		struct cluster *cluster = cluster_new(3);
		elect(cluster, 1);
		struct raft_status leader = node_status(cluster, 1);
		Raftpb__Message higher = message(types[k], 2, 1, leader.term + 1);
		higher.index = leader.last_index;
		higher.log_term = raft_term_at(node(cluster, 1)->raft, leader.last_index);
		(void)step(cluster, 1, &higher);
		struct raft_status status = node_status(cluster, 1);
		if (status.role != RAFT_FOLLOWER || status.term != leader.term + 1)
			test_fail(__FILE__, __LINE__, "message type %d with term %llu: leader became %s at term %llu",
			          types[k], (unsigned long long)(leader.term + 1), raft_role_name(status.role),
			          (unsigned long long)status.term);
		if (types[k] == RAFT_MSG_APP || types[k] == RAFT_MSG_HEARTBEAT)
			CHECK_U64("new leader", 2, status.leader);
	}
}

/* Figure 2, Leaders: "Upon election: send initial empty AppendEntries RPCs (heartbeat) to each
 * server; repeat during idle periods". As in etcd (and thesis §6.4), the new leader appends an empty
 * entry of its term so that it can commit. */
static void TestLeaderSendsEmptyEntryAndHeartbeats(void)
{
	struct cluster *cluster = cluster_new(3);
	uint64_t last = node_status(cluster, 1).last_index;
	elect(cluster, 1);
	struct raft_status status = node_status(cluster, 1);
	CHECK_U64("last index after the election", last + 1, status.last_index);
	CHECK_U64("term of the empty entry", status.term, raft_term_at(node(cluster, 1)->raft, last + 1));
	CHECK_U64("the empty entry commits", last + 1, status.commit);
	for (uint64_t id = 2; id <= 3; id++)
		CHECK_U64("follower has the empty entry", status.term, raft_term_at(node(cluster, id)->raft, last + 1));
	const struct node *leader = node(cluster, 1);
	CHECK(leader->applied_count > 0 && leader->applied[leader->applied_count - 1].length == 0);

	tick(cluster, 1, leader->config.heartbeat_tick);
	process_ready(cluster, 1);
	for (uint64_t id = 2; id <= 3; id++) {
		Raftpb__Message *heartbeat = queued(cluster, 1, id, RAFT_MSG_HEARTBEAT, 0);
		REQUIRE(heartbeat != NULL);
		CHECK_U64("heartbeat term", status.term, heartbeat->term);
		CHECK(heartbeat->commit <= status.commit);
	}
}

/* Figure 2, Followers: "Respond to RPCs from candidates and leaders" — and a follower that hears
 * from its leader does not campaign (heartbeats reset the election timer). */
static void TestHeartbeatsKeepFollowers(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	uint64_t term = node_status(cluster, 1).term;
	tick_all_and_stabilize(cluster, 10 * node(cluster, 1)->config.election_tick);
	for (uint64_t id = 1; id <= 3; id++)
		CHECK_U64("term stays", term, node_status(cluster, id).term);
	CHECK_U64("leader", 1, leader_of(cluster));
}

const struct test_case election_tests[] = {
	{"TestStartAsFollower", TestStartAsFollower},
	{"TestLeaderElection", TestLeaderElection},
	{"TestCandidateWinsWithMajorityOnly", TestCandidateWinsWithMajorityOnly},
	{"TestCandidateFallsBackOnAppendFromNewLeader", TestCandidateFallsBackOnAppendFromNewLeader},
	{"TestCandidateStartsNewElectionOnTimeout", TestCandidateStartsNewElectionOnTimeout},
	{"TestFollowerStartsElectionOnTimeout", TestFollowerStartsElectionOnTimeout},
	{"TestFollowerElectionTimeoutRandomized", TestFollowerElectionTimeoutRandomized},
	{"TestRejectStaleTermVote", TestRejectStaleTermVote},
	{"TestVoteOnlyForUpToDateCandidate", TestVoteOnlyForUpToDateCandidate},
	{"TestVoteOncePerTerm", TestVoteOncePerTerm},
	{"TestStepDownOnHigherTerm", TestStepDownOnHigherTerm},
	{"TestLeaderSendsEmptyEntryAndHeartbeats", TestLeaderSendsEmptyEntryAndHeartbeats},
	{"TestHeartbeatsKeepFollowers", TestHeartbeatsKeepFollowers},
	{NULL, NULL},
};
