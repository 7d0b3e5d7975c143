/* tests/raft/test_replication.c: log replication, rule by rule from Figure 2 of the Raft paper
 * ("AppendEntries RPC", receiver implementation 1-5, and the leader's rules), in the shape of etcd's
 * raft_paper_test.go.
 *
 * The receiver rules are checked on a follower restored with a known log, fed hand-made appends from
 * leader 1; the leader's rules on a whole cluster.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

/* Follower 2: 1:t1 (snapshot) 2:t1 3:t1 4:t2 5:t2 6:t3, at term 3, leader 1. */
static const uint64_t follower_terms[] = {1, 1, 2, 2, 3};
#define FOLLOWER_TERM 3
#define FOLLOWER_LAST 6

static struct cluster *restored_follower(void)
{
	struct cluster *cluster = cluster_new_empty(3, NULL);
	node_start_restored(cluster, 2, 3, follower_terms, sizeof follower_terms / sizeof follower_terms[0],
	                    FOLLOWER_TERM, RAFT_NONE);
	process_all_readies(cluster);
	drop_queue(cluster);
	return cluster;
}

static Raftpb__Message append(uint64_t term, uint64_t previous_index, uint64_t previous_term, uint64_t commit)
{
	Raftpb__Message built = message(RAFT_MSG_APP, 1, 2, term);
	built.index = previous_index;
	built.log_term = previous_term;
	built.commit = commit;
	return built;
}

/* Steps an append into follower 2, processes its Ready, and returns its answer (or NULL). */
static Raftpb__Message *append_answer(struct cluster *cluster, const Raftpb__Message *request)
{
	(void)step(cluster, 2, request);
	process_all_readies(cluster);
	return queued(cluster, 2, 1, RAFT_MSG_APP_RESP, 0);
}

static void check_follower_log(struct cluster *cluster, const uint64_t *expected, size_t count, int line)
{
	uint64_t terms[64];
	size_t got = log_terms(cluster, 2, terms, 64);
	/* log_terms starts at first_index (2 here: index 1 is the snapshot). */
	bool same = got == count;
	for (size_t k = 0; same && k < count; k++)
		same = terms[k] == expected[k];
	if (!same) {
		char want_text[256] = "", got_text[256] = "";
		for (size_t k = 0; k < count; k++)
			snprintf(want_text + strlen(want_text), sizeof want_text - strlen(want_text), " %llu",
			         (unsigned long long)expected[k]);
		for (size_t k = 0; k < got; k++)
			snprintf(got_text + strlen(got_text), sizeof got_text - strlen(got_text), " %llu",
			         (unsigned long long)terms[k]);
		test_fail(__FILE__, line, "follower log terms from index 2: expected [%s ], got [%s ]", want_text,
		          got_text);
	}
}

/* Figure 2, AppendEntries receiver 1: "Reply false if term < currentTerm." */
static void TestRejectStaleTermAppend(void)
{
	struct cluster *cluster = restored_follower();
	Raftpb__Message request = append(FOLLOWER_TERM - 1, FOLLOWER_LAST, FOLLOWER_TERM, FOLLOWER_LAST);
	uint64_t terms[] = {FOLLOWER_TERM - 1};
	message_entries(&request, FOLLOWER_LAST + 1, terms, 1);
	CHECK_RC(RAFT_ERR_STALE_TERM, step(cluster, 2, &request));
	process_all_readies(cluster);
	Raftpb__Message *answer = queued(cluster, 2, 1, RAFT_MSG_APP_RESP, 0);
	/* etcd answers a stale leader with its own term so that it steps down; never with an ack. */
	if (answer != NULL)
		CHECK_U64("answer carries the newer term", FOLLOWER_TERM, answer->term);
	CHECK_U64("last index", FOLLOWER_LAST, node_status(cluster, 2).last_index);
	CHECK_U64("term", FOLLOWER_TERM, node_status(cluster, 2).term);
	CHECK(raft_get_counters(node(cluster, 2)->raft)->rejected[RAFT_ERR_STALE_TERM] >= 1);
}

/* Figure 2, AppendEntries receiver 2: "Reply false if log doesn't contain an entry at prevLogIndex
 * whose term matches prevLogTerm" — both when the index is beyond the log and when the term differs.
 * The rejection carries a hint no higher than the follower's last index (fast backtracking). */
static void TestRejectAppendWithoutMatchingPrevious(void)
{
	struct cluster *cluster = restored_follower();
	Raftpb__Message beyond = append(FOLLOWER_TERM, FOLLOWER_LAST + 2, FOLLOWER_TERM, 0);
	uint64_t terms[] = {FOLLOWER_TERM};
	message_entries(&beyond, FOLLOWER_LAST + 3, terms, 1);
	Raftpb__Message *answer = append_answer(cluster, &beyond);
	REQUIRE(answer != NULL);
	CHECK(answer->reject);
	CHECK_U64("rejected index", FOLLOWER_LAST + 2, answer->index);
	CHECK(answer->reject_hint <= FOLLOWER_LAST);
	CHECK_U64("log untouched", FOLLOWER_LAST, node_status(cluster, 2).last_index);
	drop_queue(cluster);

	/* Index 5 has term 2; the leader claims term 3 there. */
	Raftpb__Message mismatch = append(FOLLOWER_TERM, 5, 3, 0);
	message_entries(&mismatch, 6, terms, 1);
	answer = append_answer(cluster, &mismatch);
	REQUIRE(answer != NULL);
	CHECK(answer->reject);
	CHECK(answer->reject_hint <= 5);
	check_follower_log(cluster, follower_terms, 5, __LINE__);
}

/* Figure 2, AppendEntries receiver 3: "If an existing entry conflicts with a new one (same index but
 * different terms), delete the existing entry and all that follow it." Storage is told to drop from
 * the first conflicting index. */
static void TestDeleteConflictingSuffix(void)
{
	struct cluster *cluster = restored_follower();
	Raftpb__Message request = append(4, 3, 1, 0);
	uint64_t terms[] = {4};
	message_entries(&request, 4, terms, 1);
	Raftpb__Message *answer = append_answer(cluster, &request);
	REQUIRE(answer != NULL);
	CHECK(!answer->reject);
	CHECK_U64("acknowledged index", 4, answer->index);
	static const uint64_t expected[] = {1, 1, 4};
	check_follower_log(cluster, expected, 3, __LINE__);
	CHECK_U64("storage rewritten from", 4, node(cluster, 2)->last_entries_first);
	CHECK_U64("stored last index", 4, node(cluster, 2)->snapshot_index + node(cluster, 2)->log_count);
}

/* Figure 2, AppendEntries receiver 4: "Append any new entries not already in the log" — entries the
 * follower has are not written again, and a stale (reordered, duplicated) append that is a prefix of
 * the log truncates nothing. */
static void TestAppendOnlyNewEntries(void)
{
	struct cluster *cluster = restored_follower();
	Raftpb__Message overlapping = append(FOLLOWER_TERM, 3, 1, 0);
	uint64_t terms[] = {2, 2, 3, 3};
	message_entries(&overlapping, 4, terms, 4);
	Raftpb__Message *answer = append_answer(cluster, &overlapping);
	REQUIRE(answer != NULL);
	CHECK(!answer->reject);
	CHECK_U64("acknowledged index", 7, answer->index);
	static const uint64_t expected[] = {1, 1, 2, 2, 3, 3};
	check_follower_log(cluster, expected, 6, __LINE__);
	CHECK_U64("only the new entry goes to storage (first)", 7, node(cluster, 2)->last_entries_first);
	CHECK_U64("only the new entry goes to storage (count)", 1, node(cluster, 2)->last_entries_count);
	drop_queue(cluster);

	Raftpb__Message stale = append(FOLLOWER_TERM, 3, 1, 0);
	message_entries(&stale, 4, terms, 1);
	answer = append_answer(cluster, &stale);
	REQUIRE(answer != NULL);
	CHECK(!answer->reject);
	check_follower_log(cluster, expected, 6, __LINE__);
}

/* Figure 2, AppendEntries receiver 5: "If leaderCommit > commitIndex, set commitIndex =
 * min(leaderCommit, index of last new entry)" — the last entry this append vouches for, not the
 * follower's last entry (which may still be a stale suffix). */
static void TestFollowerCommitIsMinOfLeaderCommitAndLastNewEntry(void)
{
	struct cluster *cluster = restored_follower();
	Raftpb__Message short_append = append(FOLLOWER_TERM, 3, 1, FOLLOWER_LAST);
	uint64_t terms[] = {2};
	message_entries(&short_append, 4, terms, 1);
	(void)append_answer(cluster, &short_append);
	CHECK_U64("commit after an append ending at 4 with leaderCommit 6", 4, node_status(cluster, 2).commit);
	CHECK_U64("applied", 4, node(cluster, 2)->applied_index);
	drop_queue(cluster);

	Raftpb__Message far_commit = append(FOLLOWER_TERM, FOLLOWER_LAST, FOLLOWER_TERM, 100);
	uint64_t more[] = {FOLLOWER_TERM};
	message_entries(&far_commit, FOLLOWER_LAST + 1, more, 1);
	(void)append_answer(cluster, &far_commit);
	CHECK_U64("commit after an append ending at 7 with leaderCommit 100", 7, node_status(cluster, 2).commit);
	CHECK_U64("applied", 7, node(cluster, 2)->applied_index);
}

/* Figure 2, Leaders: "If command received from client: append entry to local log, respond after entry
 * applied to state machine"; "If there exists an N such that N > commitIndex, a majority of
 * matchIndex[i] >= N, and log[N].term == currentTerm: set commitIndex = N". */
static void TestLeaderCommitEntry(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	uint64_t index = 0;
	REQUIRE_RC(RAFT_OK, raft_propose(node(cluster, 1)->raft, "x", 1, &index));
	CHECK_U64("index of the proposal", node_status(cluster, 1).last_index, index);
	process_ready(cluster, 1);
	for (uint64_t id = 2; id <= 3; id++) {
		Raftpb__Message *request = queued(cluster, 1, id, RAFT_MSG_APP, 0);
		REQUIRE(request != NULL);
		REQUIRE(request->n_entries >= 1);
		CHECK_U64("replicated index", index, request->entries[request->n_entries - 1]->index);
	}
	stabilize(cluster);
	for (uint64_t id = 1; id <= 3; id++) {
		CHECK(node_status(cluster, id).commit >= index);
		CHECK(applied_contains(cluster, id, "x"));
	}
}

/* A majority and no fewer: with 5 members, an entry on the leader and one follower does not commit;
 * once a third member has it, it does. */
static void TestLeaderCommitsOnlyWithMajority(void)
{
	struct cluster *cluster = cluster_new(5);
	elect(cluster, 1);
	uint64_t commit = node_status(cluster, 1).commit;
	cut(cluster, 1, 3);
	cut(cluster, 1, 4);
	cut(cluster, 1, 5);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "x"));
	stabilize(cluster);
	CHECK_U64("commit with 2 of 5", commit, node_status(cluster, 1).commit);
	CHECK(!applied_contains(cluster, 1, "x"));
	heal(cluster);
	cut(cluster, 1, 4);
	cut(cluster, 1, 5);
	tick_all_and_stabilize(cluster, 3);
	CHECK(node_status(cluster, 1).commit > commit);
	CHECK(applied_contains(cluster, 1, "x"));
	CHECK(applied_contains(cluster, 3, "x"));
}

/* Figure 2, Leaders: "If AppendEntries fails because of log inconsistency: decrement nextIndex and
 * retry" — here with the follower's hint, so a follower far behind is caught up in one round trip
 * instead of one per missing entry. */
static void TestLeaderBacktracksWithRejectHint(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	isolate(cluster, 3);
	for (int k = 0; k < 50; k++) {
		char text[16];
		snprintf(text, sizeof text, "entry-%d", k);
		REQUIRE_RC(RAFT_OK, propose(cluster, 1, text));
		stabilize(cluster);
	}
	heal(cluster);
	uint64_t rejections = 0;
	for (int round = 0; round < 20; round++) {
		tick(cluster, 1, 1);
		process_all_readies(cluster);
		for (size_t k = 0; k < cluster->queue_count; k++) {
			const Raftpb__Message *message = cluster->queue[k].message;
			if (message->type == RAFT_MSG_APP_RESP && message->from == 3 && message->reject)
				rejections++;
		}
		stabilize(cluster);
	}
	char why[160];
	if (!logs_equal(cluster, 1, 3, why, sizeof why))
		test_fail(__FILE__, __LINE__, "follower 3 did not catch up: %s", why);
	CHECK(applied_contains(cluster, 3, "entry-49"));
	if (rejections > 2)
		test_fail(__FILE__, __LINE__, "%llu rejections to catch up a follower 50 entries behind (hint unused?)",
		          (unsigned long long)rejections);
}

/* Followers learn the commit index from the leader's next append or heartbeat (§5.3). */
static void TestFollowerLearnsCommitFromHeartbeat(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "x"));
	process_ready(cluster, 1);
	deliver_all(cluster);
	process_all_readies(cluster);
	deliver_all(cluster); /* the acks reach the leader: it commits */
	process_ready(cluster, 1);
	uint64_t commit = node_status(cluster, 1).commit;
	drop_queue(cluster); /* the append that would carry the new commit is lost */
	CHECK(node_status(cluster, 2).commit < commit);
	tick(cluster, 1, node(cluster, 1)->config.heartbeat_tick);
	stabilize(cluster);
	CHECK_U64("follower commit after a heartbeat", commit, node_status(cluster, 2).commit);
	CHECK(applied_contains(cluster, 2, "x"));
}

/* Proposals on a follower are forwarded to the leader (etcd's MsgProp), or refused when forwarding is
 * disabled. */
static void disable_forwarding(struct raft_config *config)
{
	config->disable_proposal_forwarding = true;
}

static void TestFollowerForwardsProposals(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	uint64_t index = 99;
	CHECK_RC(RAFT_OK, raft_propose(node(cluster, 2)->raft, "fwd", 3, &index));
	CHECK_U64("index on a follower", 0, index);
	process_ready(cluster, 2);
	CHECK_U64("forwarded proposals", 1, queued_count(cluster, 2, 1, RAFT_MSG_PROP));
	stabilize(cluster);
	for (uint64_t id = 1; id <= 3; id++)
		CHECK(applied_contains(cluster, id, "fwd"));

	struct cluster *strict = cluster_new_configured(3, disable_forwarding);
	elect(strict, 1);
	int rc = propose(strict, 2, "no");
	CHECK(rc == RAFT_ERR_PROPOSAL_DROPPED || rc == RAFT_ERR_NOT_LEADER);
	process_ready(strict, 2);
	CHECK_U64("forwarded proposals", 0, queued_count(strict, 2, 1, RAFT_MSG_PROP));
	/* No leader at all: nothing to forward to. */
	struct cluster *leaderless = cluster_new(3);
	rc = propose(leaderless, 2, "no");
	CHECK(rc == RAFT_ERR_NO_LEADER || rc == RAFT_ERR_PROPOSAL_DROPPED);
}

/* A batch is one append of consecutive indexes, all committed together. */
static void TestProposeBatch(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	struct raft_buffer buffers[] = {{"a", 1}, {"b", 1}, {"c", 1}};
	uint64_t first = 0, last = node_status(cluster, 1).last_index;
	REQUIRE_RC(RAFT_OK, raft_propose_batch(node(cluster, 1)->raft, buffers, 3, &first));
	CHECK_U64("first index of the batch", last + 1, first);
	CHECK_U64("last index after the batch", last + 3, node_status(cluster, 1).last_index);
	stabilize(cluster);
	for (uint64_t id = 1; id <= 3; id++) {
		const struct node *member = node(cluster, id);
		REQUIRE(member->applied_count >= 3);
		const struct applied_entry *tail = &member->applied[member->applied_count - 3];
		CHECK(tail[0].length == 1 && tail[0].data[0] == 'a' && tail[0].index == first);
		CHECK(tail[1].length == 1 && tail[1].data[0] == 'b');
		CHECK(tail[2].length == 1 && tail[2].data[0] == 'c');
	}
}

/* Thesis §10.2.1: the leader may send its entries in parallel with its own write, but its own copy
 * counts toward a majority only once durable. With asynchronous storage on the leader, one follower's
 * acknowledgement is not a majority of three; the leader's completed write makes it one. */
static void TestLeaderOwnEntryCountsOnlyOncePersisted(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	node(cluster, 1)->asynchronous = true;
	uint64_t commit = node_status(cluster, 1).commit;
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "parallel"));
	process_ready(cluster, 1); /* the write is issued, not complete; the appends leave at once */
	REQUIRE(queued(cluster, 1, 2, RAFT_MSG_APP, 0) != NULL);
	deliver_matching(cluster, 1, 2, RAFT_MSG_APP);
	drop_matching(cluster, 1, 3, RAFT_MSG_APP);
	process_ready(cluster, 2);
	deliver_matching(cluster, 2, 1, RAFT_MSG_APP_RESP);
	while (process_ready(cluster, 1)) {
	}
	CHECK_U64("commit with one follower and the leader's write in flight", commit, node_status(cluster, 1).commit);
	CHECK(!applied_contains(cluster, 1, "parallel"));
	complete_writes(cluster, 1);
	while (process_ready(cluster, 1)) {
	}
	CHECK(node_status(cluster, 1).commit > commit);
	CHECK(applied_contains(cluster, 1, "parallel"));
}

/* A follower acknowledges an append only once it is durable (the answer is an after-persist message),
 * and a vote is granted on the wire only once durable. */
static void TestFollowerAnswersOnlyAfterPersisting(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	node(cluster, 2)->asynchronous = true;
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "durable-first"));
	process_ready(cluster, 1);
	deliver_matching(cluster, 1, 2, RAFT_MSG_APP);
	process_ready(cluster, 2);
	CHECK_U64("acknowledgements before the write completes", 0, queued_count(cluster, 2, 1, RAFT_MSG_APP_RESP));
	complete_writes(cluster, 2);
	CHECK_U64("acknowledgements after the write completes", 1, queued_count(cluster, 2, 1, RAFT_MSG_APP_RESP));
	stabilize(cluster);
	CHECK(applied_contains(cluster, 2, "durable-first"));

	uint64_t term = node_status(cluster, 3).term;
	node(cluster, 3)->asynchronous = true;
	REQUIRE_RC(RAFT_OK, campaign(cluster, 2));
	process_ready(cluster, 2);
	complete_writes(cluster, 2);
	deliver_matching(cluster, 2, 3, RAFT_MSG_VOTE);
	drop_queue(cluster);
	process_ready(cluster, 3);
	CHECK_U64("vote answers before the vote is durable", 0, queued_count(cluster, 3, 2, RAFT_MSG_VOTE_RESP));
	CHECK_U64("term", term + 1, node(cluster, 3)->hard_state.term);
	complete_writes(cluster, 3);
	CHECK_U64("vote answers once durable", 1, queued_count(cluster, 3, 2, RAFT_MSG_VOTE_RESP));
}

const struct test_case replication_tests[] = {
	{"TestLeaderOwnEntryCountsOnlyOncePersisted", TestLeaderOwnEntryCountsOnlyOncePersisted},
	{"TestFollowerAnswersOnlyAfterPersisting", TestFollowerAnswersOnlyAfterPersisting},
	{"TestRejectStaleTermAppend", TestRejectStaleTermAppend},
	{"TestRejectAppendWithoutMatchingPrevious", TestRejectAppendWithoutMatchingPrevious},
	{"TestDeleteConflictingSuffix", TestDeleteConflictingSuffix},
	{"TestAppendOnlyNewEntries", TestAppendOnlyNewEntries},
	{"TestFollowerCommitIsMinOfLeaderCommitAndLastNewEntry", TestFollowerCommitIsMinOfLeaderCommitAndLastNewEntry},
	{"TestLeaderCommitEntry", TestLeaderCommitEntry},
	{"TestLeaderCommitsOnlyWithMajority", TestLeaderCommitsOnlyWithMajority},
	{"TestLeaderBacktracksWithRejectHint", TestLeaderBacktracksWithRejectHint},
	{"TestFollowerLearnsCommitFromHeartbeat", TestFollowerLearnsCommitFromHeartbeat},
	{"TestFollowerForwardsProposals", TestFollowerForwardsProposals},
	{"TestProposeBatch", TestProposeBatch},
	{NULL, NULL},
};
