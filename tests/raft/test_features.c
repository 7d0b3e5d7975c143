/* tests/raft/test_features.c: what the core adds to Figure 2 (thesis chapters 3, 6, 9, 10 and etcd):
 * PreVote, CheckQuorum, leadership transfer, ReadIndex and lease reads, snapshots to lagging
 * followers, flow control of appends, and the uncommitted-size limit.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static void pre_vote_and_check_quorum(struct raft_config *config)
{
	config->pre_vote = true;
	config->check_quorum = true;
}

static void check_quorum_only(struct raft_config *config)
{
	config->check_quorum = true;
}

static void lease_reads(struct raft_config *config)
{
	config->check_quorum = true;
	config->read_only_option = RAFT_READ_ONLY_LEASE_BASED;
}

static void tick_alone(struct cluster *cluster, uint64_t id, int ticks)
{
	for (int k = 0; k < ticks; k++) {
		tick(cluster, id, 1);
		stabilize(cluster);
	}
}

/* ---- PreVote (thesis §9.6) --------------------------------------------------------------------- */

/* A member cut off from the others keeps timing out, but a PreVote round it cannot win does not raise
 * its term; when it rejoins, the leader keeps its term and its leadership. */
static void TestPreVoteRejoiningMemberDoesNotDisrupt(void)
{
	struct cluster *cluster = cluster_new_configured(3, pre_vote_and_check_quorum);
	elect(cluster, 1);
	uint64_t term = node_status(cluster, 1).term;
	uint64_t votes_before = cluster->sent_by_type[RAFT_MSG_VOTE];
	uint64_t pre_votes_before = cluster->sent_by_type[RAFT_MSG_PRE_VOTE];
	isolate(cluster, 3);
	tick_alone(cluster, 3, 5 * node(cluster, 3)->config.election_tick);
	struct raft_status isolated = node_status(cluster, 3);
	CHECK_U64("isolated member's term", term, isolated.term);
	CHECK_U64("isolated member's durable term", term, node(cluster, 3)->hard_state.term);
	CHECK(isolated.role == RAFT_PRE_CANDIDATE || isolated.role == RAFT_FOLLOWER);
	CHECK(cluster->sent_by_type[RAFT_MSG_PRE_VOTE] > pre_votes_before);
	CHECK_U64("real vote requests while isolated", votes_before, cluster->sent_by_type[RAFT_MSG_VOTE]);

	heal(cluster);
	tick_all_and_stabilize(cluster, 3 * node(cluster, 1)->config.election_tick);
	CHECK_U64("leader after the rejoin", 1, leader_of(cluster));
	for (uint64_t id = 1; id <= 3; id++)
		CHECK_U64("term after the rejoin", term, node_status(cluster, id).term);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "after"));
	stabilize(cluster);
	CHECK(applied_contains(cluster, 3, "after"));
}

/* Without PreVote the same rejoin forces a new election at a higher term (the disruption PreVote is
 * for) — a contrast that shows the test above measures something. */
static void TestWithoutPreVoteRejoiningMemberBumpsTerm(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	uint64_t term = node_status(cluster, 1).term;
	isolate(cluster, 3);
	tick_alone(cluster, 3, 3 * node(cluster, 3)->config.election_tick);
	CHECK(node_status(cluster, 3).term > term);
	heal(cluster);
	tick_all_and_stabilize(cluster, 3 * node(cluster, 1)->config.election_tick);
	CHECK(node_status(cluster, 1).term > term);
}

/* PreVote still elects a leader in a healthy cluster, and the winner's term goes up by exactly one. */
static void TestPreVoteElection(void)
{
	struct cluster *cluster = cluster_new_configured(3, pre_vote_and_check_quorum);
	uint64_t term = node_status(cluster, 1).term;
	elect(cluster, 1);
	CHECK_U64("term after a PreVote election", term + 1, node_status(cluster, 1).term);
	CHECK(cluster->sent_by_type[RAFT_MSG_PRE_VOTE] >= 2);
}

/* ---- CheckQuorum (thesis §6.2) ----------------------------------------------------------------- */

static void TestCheckQuorumLeaderStepsDown(void)
{
	struct cluster *cluster = cluster_new_configured(3, check_quorum_only);
	elect(cluster, 1);
	int election_tick = node(cluster, 1)->config.election_tick;
	/* Healthy: heartbeats answered, the leader stays. */
	tick_all_and_stabilize(cluster, 3 * election_tick);
	CHECK_U64("leader with an active quorum", 1, leader_of(cluster));
	/* Cut off: after an election timeout without hearing from a quorum, it steps down. */
	isolate(cluster, 1);
	tick_alone(cluster, 1, election_tick);
	tick_alone(cluster, 1, election_tick);
	CHECK(node_status(cluster, 1).role != RAFT_LEADER);
}

/* ---- leadership transfer (thesis §3.10) -------------------------------------------------------- */

static void TestLeaderTransfer(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	uint64_t term = node_status(cluster, 1).term;
	REQUIRE_RC(RAFT_OK, raft_transfer_leadership(node(cluster, 1)->raft, 2));
	stabilize(cluster);
	CHECK_U64("leader after the transfer", 2, leader_of(cluster));
	CHECK_U64("term after the transfer", term + 1, node_status(cluster, 2).term);
	CHECK(cluster->sent_by_type[RAFT_MSG_TIMEOUT_NOW] == 1);
	CHECK_U64("transferee cleared on the old leader", 0, node_status(cluster, 1).lead_transferee);
}

/* The transferee must be caught up before TimeoutNow goes out (otherwise it could not win). */
struct timeout_now_watch {
	struct cluster *cluster;
	uint64_t transferee_last_at_timeout_now;
	uint64_t leader_last_at_timeout_now;
	bool seen;
};

static bool watch_timeout_now(const Raftpb__Message *message, void *argument)
{
	struct timeout_now_watch *watch = argument;
	if (message->type == RAFT_MSG_TIMEOUT_NOW && !watch->seen) {
		watch->seen = true;
		watch->transferee_last_at_timeout_now = node_status(watch->cluster, message->to).last_index;
		watch->leader_last_at_timeout_now = node_status(watch->cluster, message->from).last_index;
	}
	return true;
}

static void TestLeaderTransferToLaggingFollower(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	isolate(cluster, 3);
	for (int k = 0; k < 5; k++) {
		REQUIRE_RC(RAFT_OK, propose(cluster, 1, "lag"));
		stabilize(cluster);
	}
	heal(cluster);
	struct timeout_now_watch watch = {.cluster = cluster};
	set_filter(cluster, watch_timeout_now, &watch);
	REQUIRE_RC(RAFT_OK, raft_transfer_leadership(node(cluster, 1)->raft, 3));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	REQUIRE(watch.seen);
	CHECK_U64("transferee's last index when TimeoutNow is sent", watch.leader_last_at_timeout_now,
	          watch.transferee_last_at_timeout_now);
	CHECK_U64("leader after the transfer", 3, leader_of(cluster));
	CHECK(applied_contains(cluster, 3, "lag"));
}

static void TestLeaderTransferAbortsAfterElectionTimeout(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	isolate(cluster, 3);
	REQUIRE_RC(RAFT_OK, raft_transfer_leadership(node(cluster, 1)->raft, 3));
	stabilize(cluster);
	CHECK_U64("transferee while the transfer runs", 3, node_status(cluster, 1).lead_transferee);
	/* Proposals are refused while leadership is being handed over. */
	int rc = propose(cluster, 1, "during");
	if (rc != RAFT_ERR_TRANSFER_IN_PROGRESS && rc != RAFT_ERR_PROPOSAL_DROPPED)
		CHECK_RC(RAFT_ERR_TRANSFER_IN_PROGRESS, rc);
	tick_all_and_stabilize(cluster, node(cluster, 1)->config.election_tick);
	struct raft_status status = node_status(cluster, 1);
	CHECK_U64("transferee after an election timeout", 0, status.lead_transferee);
	CHECK(status.role == RAFT_LEADER);
	CHECK_RC(RAFT_OK, propose(cluster, 1, "after"));
	stabilize(cluster);
	CHECK(applied_contains(cluster, 2, "after"));
	CHECK(!applied_contains(cluster, 2, "during"));
}

/* ---- ReadIndex (thesis §6.4) and lease reads (§6.4.1) ------------------------------------------ */

static bool read_state_is(const struct node *member, size_t k, const char *context)
{
	return k < member->read_states_count && member->read_states[k].context_length == strlen(context) &&
	       memcmp(member->read_states[k].context, context, strlen(context)) == 0;
}

/* The leader answers a read only after a heartbeat round confirms it is still the leader. */
static void TestReadIndexConfirmedByHeartbeatRound(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	uint64_t commit = node_status(cluster, 1).commit;
	REQUIRE_RC(RAFT_OK, raft_read_index(node(cluster, 1)->raft, "read-1", 6));
	process_ready(cluster, 1);
	CHECK_U64("read states before the heartbeat round", 0, node(cluster, 1)->read_states_count);
	Raftpb__Message *heartbeat = queued(cluster, 1, 2, RAFT_MSG_HEARTBEAT, 0);
	REQUIRE(heartbeat != NULL);
	CHECK(heartbeat->context.len == 6 && memcmp(heartbeat->context.data, "read-1", 6) == 0);
	stabilize(cluster);
	const struct node *leader = node(cluster, 1);
	REQUIRE_U64("read states after the round", 1, leader->read_states_count);
	CHECK(read_state_is(leader, 0, "read-1"));
	CHECK_U64("read index", commit, leader->read_states[0].index);
}

/* One acknowledgement from a minority is not enough: the read waits for a quorum. (That a later
 * heartbeat round confirms it once the partition heals is in test_regressions.c.) */
static void TestReadIndexNeedsQuorum(void)
{
	struct cluster *cluster = cluster_new(5);
	elect(cluster, 1);
	cut(cluster, 1, 3);
	cut(cluster, 1, 4);
	cut(cluster, 1, 5);
	REQUIRE_RC(RAFT_OK, raft_read_index(node(cluster, 1)->raft, "q", 1));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	CHECK_U64("read states with 2 of 5", 0, node(cluster, 1)->read_states_count);
	/* A second read once the partition heals is confirmed by its own round. */
	heal(cluster);
	REQUIRE_RC(RAFT_OK, raft_read_index(node(cluster, 1)->raft, "r", 1));
	stabilize(cluster);
	CHECK(node(cluster, 1)->read_states_count >= 1);
}

static bool drop_appends(const Raftpb__Message *message, void *argument)
{
	(void)argument;
	return message->type != RAFT_MSG_APP;
}

/* A new leader does not know the commit index until an entry of its term commits (thesis §6.4 step
 * 1), so it answers reads only after that. */
static void TestReadIndexWaitsForCurrentTermCommit(void)
{
	struct cluster *cluster = cluster_new(3);
	set_filter(cluster, drop_appends, NULL);
	elect(cluster, 1);
	uint64_t empty_entry = node_status(cluster, 1).last_index;
	REQUIRE(node_status(cluster, 1).commit < empty_entry);
	REQUIRE_RC(RAFT_OK, raft_read_index(node(cluster, 1)->raft, "early", 5));
	tick_all_and_stabilize(cluster, 2);
	CHECK_U64("read states before the leader's entry commits", 0, node(cluster, 1)->read_states_count);
	set_filter(cluster, NULL, NULL);
	tick_all_and_stabilize(cluster, 2);
	const struct node *leader = node(cluster, 1);
	REQUIRE_U64("read states after the commit", 1, leader->read_states_count);
	CHECK(read_state_is(leader, 0, "early"));
	CHECK(leader->read_states[0].index >= empty_entry);
}

/* A follower forwards the read to the leader and gets the leader's commit index back. */
static void TestReadIndexOnFollowerIsForwarded(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "x"));
	stabilize(cluster);
	uint64_t commit = node_status(cluster, 1).commit;
	REQUIRE_RC(RAFT_OK, raft_read_index(node(cluster, 2)->raft, "follower", 8));
	process_ready(cluster, 2);
	CHECK_U64("forwarded read requests", 1, queued_count(cluster, 2, 1, RAFT_MSG_READ_INDEX));
	stabilize(cluster);
	const struct node *follower = node(cluster, 2);
	REQUIRE_U64("read states on the follower", 1, follower->read_states_count);
	CHECK(read_state_is(follower, 0, "follower"));
	CHECK_U64("read index", commit, follower->read_states[0].index);
	CHECK_U64("read states on the leader", 0, node(cluster, 1)->read_states_count);
	/* Without a leader there is no one to ask. */
	struct cluster *leaderless = cluster_new(3);
	CHECK_RC(RAFT_ERR_NO_LEADER, raft_read_index(node(leaderless, 2)->raft, "none", 4));
}

/* Lease-based reads are answered from the leader's lease, without a round of messages. */
static void TestLeaseReadAnsweredWithoutRound(void)
{
	struct cluster *cluster = cluster_new_configured(3, lease_reads);
	elect(cluster, 1);
	uint64_t commit = node_status(cluster, 1).commit;
	REQUIRE_RC(RAFT_OK, raft_read_index(node(cluster, 1)->raft, "lease", 5));
	process_ready(cluster, 1);
	const struct node *leader = node(cluster, 1);
	REQUIRE_U64("read states without any message delivered", 1, leader->read_states_count);
	CHECK(read_state_is(leader, 0, "lease"));
	CHECK_U64("read index", commit, leader->read_states[0].index);
}

/* ---- snapshots (§7) ------------------------------------------------------------------------------ */

/* A follower whose next entry the leader has compacted receives the snapshot and installs it, then
 * takes the entries after it. */
static void TestSnapshotSentToFollowerBehindCompaction(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	isolate(cluster, 3);
	for (int k = 0; k < 10; k++) {
		REQUIRE_RC(RAFT_OK, propose(cluster, 1, "before-snapshot"));
		stabilize(cluster);
	}
	struct raft_status leader = node_status(cluster, 1);
	uint64_t snapshot_index = leader.applied;
	REQUIRE_RC(RAFT_OK, raft_create_snapshot(node(cluster, 1)->raft, snapshot_index, NULL, "state", 5));
	REQUIRE_RC(RAFT_OK, raft_compact(node(cluster, 1)->raft, snapshot_index));
	CHECK_U64("leader first index after compaction", snapshot_index + 1, node_status(cluster, 1).first_index);
	Raftpb__Entry **entries = NULL;
	size_t count = 0;
	CHECK_RC(RAFT_ERR_COMPACTED, raft_copy_entries(node(cluster, 1)->raft, 1, snapshot_index, &entries, &count));

	heal(cluster);
	tick_all_and_stabilize(cluster, 3);
	CHECK(raft_get_counters(node(cluster, 1)->raft)->snapshots_sent >= 1);
	CHECK(cluster->sent_by_type[RAFT_MSG_SNAP] >= 1);
	const struct node *follower = node(cluster, 3);
	CHECK_U64("snapshots installed by the follower", 1, follower->snapshots_installed);
	CHECK_U64("follower storage's snapshot index", snapshot_index, follower->snapshot_index);
	struct raft_status status = node_status(cluster, 3);
	CHECK(status.commit >= snapshot_index);
	CHECK_U64("follower first index", snapshot_index + 1, status.first_index);

	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "after-snapshot"));
	stabilize(cluster);
	CHECK(applied_contains(cluster, 3, "after-snapshot"));
	char why[160];
	if (!logs_equal(cluster, 1, 3, why, sizeof why))
		test_fail(__FILE__, __LINE__, "follower log after the snapshot: %s", why);
}

/* Snapshot and compaction arguments are checked. */
static void TestSnapshotArguments(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	struct raft_status status = node_status(cluster, 1);
	raft_t *raft = node(cluster, 1)->raft;
	CHECK(raft_create_snapshot(raft, status.applied + 5, NULL, "x", 1) != RAFT_OK);
	REQUIRE_RC(RAFT_OK, raft_create_snapshot(raft, status.applied, NULL, "x", 1));
	CHECK_RC(RAFT_ERR_SNAPSHOT_OUT_OF_DATE, raft_create_snapshot(raft, status.applied - 1, NULL, "x", 1));
	CHECK(raft_compact(raft, status.applied + 1) != RAFT_OK);
	CHECK_RC(RAFT_OK, raft_compact(raft, status.applied));
}

/* ---- flow control ------------------------------------------------------------------------------ */

static void small_window(struct raft_config *config)
{
	config->max_size_per_msg = 0; /* one entry per append */
	config->max_inflight_msgs = 3;
}

static void byte_window(struct raft_config *config)
{
	config->max_size_per_msg = 0;
	config->max_inflight_bytes = 250;
}

static size_t appends_with_entries(struct cluster *cluster, uint64_t from, uint64_t to)
{
	size_t count = 0;
	for (size_t k = 0; k < cluster->queue_count; k++) {
		const Raftpb__Message *message = cluster->queue[k].message;
		if (message->type == RAFT_MSG_APP && message->from == from && message->to == to && message->n_entries)
			count++;
	}
	return count;
}

static void propose_many(struct cluster *cluster, int count, size_t size)
{
	char payload[512];
	memset(payload, 'p', sizeof payload);
	payload[size < sizeof payload ? size : sizeof payload - 1] = '\0';
	for (int k = 0; k < count; k++) {
		REQUIRE_RC(RAFT_OK, propose(cluster, 1, payload));
		process_ready(cluster, 1);
	}
}

/* In replicate state at most max_inflight_msgs appends are outstanding; acknowledgements open the
 * window again. */
static void TestFlowControlInflightMessages(void)
{
	struct cluster *cluster = cluster_new_configured(3, small_window);
	elect(cluster, 1);
	struct raft_peer_status peers[4];
	size_t peers_count = raft_get_progress(node(cluster, 1)->raft, peers, 4);
	REQUIRE(peers_count == 3);
	for (size_t k = 0; k < peers_count; k++)
		if (peers[k].id != 1)
			CHECK(peers[k].state == RAFT_PROGRESS_REPLICATE);
	propose_many(cluster, 10, 10);
	size_t outstanding = appends_with_entries(cluster, 1, 2);
	if (outstanding > 3 || outstanding == 0)
		test_fail(__FILE__, __LINE__, "appends in flight to 2 with a window of 3: %zu", outstanding);
	/* The follower acknowledges; the window slides. */
	deliver_matching(cluster, 1, 2, RAFT_MSG_APP);
	process_ready(cluster, 2);
	deliver_matching(cluster, 2, 1, RAFT_MSG_APP_RESP);
	process_ready(cluster, 1);
	outstanding = appends_with_entries(cluster, 1, 2);
	if (outstanding > 3 || outstanding == 0)
		test_fail(__FILE__, __LINE__, "appends in flight to 2 after the window slid: %zu", outstanding);
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	char why[160];
	if (!logs_equal(cluster, 1, 2, why, sizeof why))
		test_fail(__FILE__, __LINE__, "follower 2 did not catch up: %s", why);
}

/* The window in bytes: 100-byte entries and a 250-byte window leave at most 3 appends outstanding. */
static void TestFlowControlInflightBytes(void)
{
	struct cluster *cluster = cluster_new_configured(3, byte_window);
	elect(cluster, 1);
	propose_many(cluster, 10, 100);
	size_t outstanding = appends_with_entries(cluster, 1, 2);
	if (outstanding > 3 || outstanding == 0)
		test_fail(__FILE__, __LINE__, "100-byte appends in flight with a 250-byte window: %zu", outstanding);
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	char why[160];
	if (!logs_equal(cluster, 1, 2, why, sizeof why))
		test_fail(__FILE__, __LINE__, "follower 2 did not catch up: %s", why);
}

/* In probe state the leader sends one append and waits for its answer (or the next heartbeat). */
static void TestProbeStateSendsOneAtATime(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	raft_report_unreachable(node(cluster, 1)->raft, 2);
	struct raft_peer_status peers[4];
	size_t peers_count = raft_get_progress(node(cluster, 1)->raft, peers, 4);
	for (size_t k = 0; k < peers_count; k++)
		if (peers[k].id == 2)
			CHECK(peers[k].state == RAFT_PROGRESS_PROBE);
	propose_many(cluster, 5, 10);
	size_t outstanding = appends_with_entries(cluster, 1, 2);
	if (outstanding > 1)
		test_fail(__FILE__, __LINE__, "appends sent to a probed follower without an answer: %zu", outstanding);
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 2);
	peers_count = raft_get_progress(node(cluster, 1)->raft, peers, 4);
	for (size_t k = 0; k < peers_count; k++)
		if (peers[k].id == 2)
			CHECK(peers[k].state == RAFT_PROGRESS_REPLICATE);
	CHECK(applied_contains(cluster, 2, "pppppppppp"));
}

/* ---- the uncommitted-size limit ------------------------------------------------------------------ */

static void small_uncommitted_limit(struct raft_config *config)
{
	config->max_uncommitted_entries_size = 1000;
}

static void TestUncommittedSizeLimit(void)
{
	struct cluster *cluster = cluster_new_configured(3, small_uncommitted_limit);
	elect(cluster, 1);
	isolate(cluster, 1);
	char payload[101];
	memset(payload, 'u', 100);
	payload[100] = '\0';
	int rc = RAFT_OK, accepted = 0;
	while (rc == RAFT_OK && accepted < 100) {
		rc = propose(cluster, 1, payload);
		if (rc == RAFT_OK)
			accepted++;
	}
	CHECK_RC(RAFT_ERR_TOO_LARGE, rc);
	CHECK(accepted >= 9 && accepted <= 11);
	heal(cluster);
	tick_all_and_stabilize(cluster, 2);
	CHECK_RC(RAFT_OK, propose(cluster, 1, payload));
}

/* A single-member cluster: it elects itself at once and commits an entry as soon as it is durable
 * (its own write is the whole quorum), not before. */
static void TestSingleMemberCluster(void)
{
	struct cluster *cluster = cluster_new(1);
	REQUIRE_RC(RAFT_OK, campaign(cluster, 1));
	process_ready(cluster, 1);
	CHECK(node_status(cluster, 1).role == RAFT_LEADER);
	stabilize(cluster);
	node(cluster, 1)->asynchronous = true;
	uint64_t commit = node_status(cluster, 1).commit;
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "alone"));
	process_ready(cluster, 1);
	process_ready(cluster, 1);
	CHECK_U64("commit before the write completes", commit, node_status(cluster, 1).commit);
	complete_writes(cluster, 1);
	while (process_ready(cluster, 1)) {
	}
	CHECK_U64("commit once durable", commit + 1, node_status(cluster, 1).commit);
	complete_writes(cluster, 1);
	while (process_ready(cluster, 1)) {
	}
	CHECK(applied_contains(cluster, 1, "alone"));
	REQUIRE_RC(RAFT_OK, raft_read_index(node(cluster, 1)->raft, "solo", 4));
	process_ready(cluster, 1);
	CHECK_U64("read answered at once", 1, node(cluster, 1)->read_states_count);
}

/* max_size_per_msg bounds the entry bytes of one append (at least one entry always goes);
 * max_committed_size_per_ready bounds what one Ready hands to the application. */
static void size_limits(struct raft_config *config)
{
	config->max_size_per_msg = 100;
	config->max_committed_size_per_ready = 100;
}

static bool check_append_size(const Raftpb__Message *message, void *argument)
{
	size_t *violations = argument;
	if (message->type == RAFT_MSG_APP && message->n_entries > 1) {
		size_t bytes = 0;
		for (size_t k = 0; k < message->n_entries; k++)
			bytes += message->entries[k]->data.len;
		if (bytes > 100)
			(*violations)++;
	}
	return true;
}

static void TestMessageAndReadySizeLimits(void)
{
	struct cluster *cluster = cluster_new_configured(3, size_limits);
	elect(cluster, 1);
	size_t violations = 0;
	set_filter(cluster, check_append_size, &violations);
	struct raft_buffer buffers[10];
	char payload[40];
	memset(payload, 'z', sizeof payload);
	for (int k = 0; k < 10; k++)
		buffers[k] = (struct raft_buffer){payload, sizeof payload};
	REQUIRE_RC(RAFT_OK, raft_propose_batch(node(cluster, 1)->raft, buffers, 10, NULL));
	/* Readies of follower 2 one at a time: count committed bytes in each. */
	size_t largest = 0;
	for (int round = 0; round < 200; round++) {
		size_t before = node(cluster, 2)->applied_count;
		bool moved = false;
		for (uint64_t id = 1; id <= 3; id++) {
			moved |= complete_writes(cluster, id) > 0;
			moved |= process_ready(cluster, id);
			size_t bytes = 0;
			if (id == 2)
				for (size_t k = before; k < node(cluster, 2)->applied_count; k++)
					bytes += node(cluster, 2)->applied[k].length;
			if (bytes > largest)
				largest = bytes;
			before = node(cluster, 2)->applied_count;
		}
		moved |= deliver_all(cluster) > 0;
		if (!moved)
			break;
	}
	CHECK_U64("appends over max_size_per_msg with more than one entry", 0, violations);
	if (largest > 100)
		test_fail(__FILE__, __LINE__, "a Ready delivered %zu bytes of committed entries (limit 100)", largest);
	CHECK_U64("entries applied on 2", 10, node(cluster, 2)->applied_count - 4 /* 3 bootstrap + empty */);
}

/* Leadership transfer with PreVote and CheckQuorum on: the transferee's campaign must get through the
 * other followers' leader lease (etcd marks it as a transfer so they do not ignore it). */
static void TestLeaderTransferWithPreVoteAndCheckQuorum(void)
{
	struct cluster *cluster = cluster_new_configured(3, pre_vote_and_check_quorum);
	elect(cluster, 1);
	tick_all_and_stabilize(cluster, 2); /* followers have heard from the leader: they hold a lease */
	uint64_t term = node_status(cluster, 1).term;
	REQUIRE_RC(RAFT_OK, raft_transfer_leadership(node(cluster, 1)->raft, 3));
	stabilize(cluster);
	CHECK_U64("leader after the transfer", 3, leader_of(cluster));
	CHECK_U64("term after the transfer", term + 1, node_status(cluster, 3).term);
}

/* A follower that gets an old snapshot (its commit is already past it) keeps its log and tells the
 * leader where it is. */
static void TestStaleSnapshotIgnored(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	for (int k = 0; k < 3; k++)
		REQUIRE_RC(RAFT_OK, propose(cluster, 1, "s"));
	stabilize(cluster);
	tick_all_and_stabilize(cluster, 1);
	struct raft_status before = node_status(cluster, 2);
	static uint64_t voters[] = {1, 2, 3};
	Raftpb__ConfState conf_state = RAFTPB__CONF_STATE__INIT;
	conf_state.voters = voters;
	conf_state.n_voters = 3;
	Raftpb__SnapshotMetadata metadata = RAFTPB__SNAPSHOT_METADATA__INIT;
	metadata.conf_state = &conf_state;
	metadata.index = before.commit - 2;
	metadata.term = raft_term_at(node(cluster, 2)->raft, before.commit - 2);
	Raftpb__Snapshot snapshot = RAFTPB__SNAPSHOT__INIT;
	snapshot.metadata = &metadata;
	Raftpb__Message request = message(RAFT_MSG_SNAP, 1, 2, before.term);
	request.snapshot = &snapshot;
	(void)step(cluster, 2, &request);
	process_ready(cluster, 2);
	CHECK_U64("snapshots installed", 0, node(cluster, 2)->snapshots_installed);
	struct raft_status after = node_status(cluster, 2);
	CHECK_U64("first index", before.first_index, after.first_index);
	CHECK_U64("last index", before.last_index, after.last_index);
	Raftpb__Message *answer = queued(cluster, 2, 1, RAFT_MSG_APP_RESP, 0);
	REQUIRE(answer != NULL);
	CHECK(!answer->reject);
	CHECK_U64("answer index", before.commit, answer->index);
}

/* A read forwarded by a follower to a leader that has not yet committed an entry of its term waits
 * there, then is answered. */
static void TestForwardedReadIndexWaitsForLeaderCommit(void)
{
	struct cluster *cluster = cluster_new(3);
	set_filter(cluster, drop_appends, NULL);
	elect(cluster, 1);
	uint64_t empty_entry = node_status(cluster, 1).last_index;
	/* Follower 2 knows its leader from a heartbeat. */
	tick_all_and_stabilize(cluster, 1);
	REQUIRE_U64("follower's leader", 1, node_status(cluster, 2).leader);
	REQUIRE_RC(RAFT_OK, raft_read_index(node(cluster, 2)->raft, "fwd", 3));
	tick_all_and_stabilize(cluster, 2);
	CHECK_U64("read states before the leader commits", 0, node(cluster, 2)->read_states_count);
	set_filter(cluster, NULL, NULL);
	tick_all_and_stabilize(cluster, 2);
	const struct node *follower = node(cluster, 2);
	REQUIRE_U64("read states after the commit", 1, follower->read_states_count);
	CHECK(follower->read_states[0].index >= empty_entry);
}

const struct test_case feature_tests[] = {
	{"TestLeaderTransferWithPreVoteAndCheckQuorum", TestLeaderTransferWithPreVoteAndCheckQuorum},
	{"TestStaleSnapshotIgnored", TestStaleSnapshotIgnored},
	{"TestForwardedReadIndexWaitsForLeaderCommit", TestForwardedReadIndexWaitsForLeaderCommit},
	{"TestSingleMemberCluster", TestSingleMemberCluster},
	{"TestMessageAndReadySizeLimits", TestMessageAndReadySizeLimits},
	{"TestPreVoteRejoiningMemberDoesNotDisrupt", TestPreVoteRejoiningMemberDoesNotDisrupt},
	{"TestWithoutPreVoteRejoiningMemberBumpsTerm", TestWithoutPreVoteRejoiningMemberBumpsTerm},
	{"TestPreVoteElection", TestPreVoteElection},
	{"TestCheckQuorumLeaderStepsDown", TestCheckQuorumLeaderStepsDown},
	{"TestLeaderTransfer", TestLeaderTransfer},
	{"TestLeaderTransferToLaggingFollower", TestLeaderTransferToLaggingFollower},
	{"TestLeaderTransferAbortsAfterElectionTimeout", TestLeaderTransferAbortsAfterElectionTimeout},
	{"TestReadIndexConfirmedByHeartbeatRound", TestReadIndexConfirmedByHeartbeatRound},
	{"TestReadIndexNeedsQuorum", TestReadIndexNeedsQuorum},
	{"TestReadIndexWaitsForCurrentTermCommit", TestReadIndexWaitsForCurrentTermCommit},
	{"TestReadIndexOnFollowerIsForwarded", TestReadIndexOnFollowerIsForwarded},
	{"TestLeaseReadAnsweredWithoutRound", TestLeaseReadAnsweredWithoutRound},
	{"TestSnapshotSentToFollowerBehindCompaction", TestSnapshotSentToFollowerBehindCompaction},
	{"TestSnapshotArguments", TestSnapshotArguments},
	{"TestFlowControlInflightMessages", TestFlowControlInflightMessages},
	{"TestFlowControlInflightBytes", TestFlowControlInflightBytes},
	{"TestProbeStateSendsOneAtATime", TestProbeStateSendsOneAtATime},
	{"TestUncommittedSizeLimit", TestUncommittedSizeLimit},
	{NULL, NULL},
};
