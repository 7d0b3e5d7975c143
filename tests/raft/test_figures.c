/* tests/raft/test_figures.c: the Raft paper's Figure 7 (a new leader brings followers with missing,
 * extra and conflicting entries in line with its log) and Figure 8 (a leader must not commit an entry
 * of an earlier term by counting replicas).
 *
 * The logs are built exactly as drawn, through restored state: a snapshot at index 1 (term 1, the
 * configuration) and the entries 2.. with the terms of the figure.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

/* ---- Figure 7 ---------------------------------------------------------------------------------- */

struct figure7_log {
	const char *name;
	uint64_t term; /* the member's current term */
	uint64_t terms[16]; /* terms of indexes 2.. (index 1 is term 1 in every log) */
	size_t count;
};

/* Index:        1  2  3  4  5  6  7  8  9  10 11 12
 * leader (t8):  1  1  1  4  4  5  5  6  6  6
 * (a)           1  1  1  4  4  5  5  6  6
 * (b)           1  1  1  4
 * (c)           1  1  1  4  4  5  5  6  6  6  6
 * (d)           1  1  1  4  4  5  5  6  6  6  7  7
 * (e)           1  1  1  4  4  4  4
 * (f)           1  1  1  2  2  2  3  3  3  3  3      */
static const struct figure7_log figure7[] = {
	{"leader", 7, {1, 1, 4, 4, 5, 5, 6, 6, 6}, 9},
	{"(a)", 6, {1, 1, 4, 4, 5, 5, 6, 6}, 8},
	{"(b)", 4, {1, 1, 4}, 3},
	{"(c)", 6, {1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 10},
	{"(d)", 7, {1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 11},
	{"(e)", 4, {1, 1, 4, 4, 4, 4}, 6},
	{"(f)", 3, {1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 10},
};

struct rejection_count {
	uint64_t by_member[HARNESS_MAX_NODES + 1];
};

/* A network that delivers everything and counts the appends each follower rejects. */
static bool count_rejections(const Raftpb__Message *message, void *argument)
{
	struct rejection_count *count = argument;
	if (message->type == RAFT_MSG_APP_RESP && message->reject && message->from <= HARNESS_MAX_NODES)
		count->by_member[message->from]++;
	return true;
}

/* Figure 7 / §5.3: "the leader handles inconsistencies by forcing the followers' logs to duplicate
 * its own"; the leader of term 8 wins with (a), (b), (e), (f) (not (c), (d): their logs are more up to
 * date), then every follower converges. With the reject hint, each follower needs at most a couple of
 * rejected probes (etcd's probe_and_replicate.txt shows the same shape). */
static void TestFigure7LeaderSyncsFollowerLogs(void)
{
	size_t members = sizeof figure7 / sizeof figure7[0];
	struct cluster *cluster = cluster_new_empty(members, NULL);
	for (size_t k = 0; k < members; k++)
		node_start_restored(cluster, k + 1, members, figure7[k].terms, figure7[k].count, figure7[k].term,
		                    RAFT_NONE);
	stabilize(cluster);
	struct rejection_count rejections;
	memset(&rejections, 0, sizeof rejections);
	set_filter(cluster, count_rejections, &rejections);

	REQUIRE_RC(RAFT_OK, campaign(cluster, 1));
	process_ready(cluster, 1);
	deliver_all(cluster);
	process_all_readies(cluster);
	/* Votes: (c) and (d) refuse a candidate whose log is behind theirs (§5.4.1). */
	for (uint64_t id = 2; id <= members; id++) {
		Raftpb__Message *answer = queued(cluster, id, 1, RAFT_MSG_VOTE_RESP, 0);
		if (answer == NULL) {
			test_fail(__FILE__, __LINE__, "%s did not answer the vote request", figure7[id - 1].name);
			continue;
		}
		bool should_grant = id != 4 && id != 5;
		if (answer->reject == should_grant)
			test_fail(__FILE__, __LINE__, "%s: expected the vote %s, got %s", figure7[id - 1].name,
			          should_grant ? "granted" : "rejected", answer->reject ? "rejected" : "granted");
	}
	stabilize(cluster);
	struct raft_status leader = node_status(cluster, 1);
	REQUIRE(leader.role == RAFT_LEADER);
	CHECK_U64("leader term", 8, leader.term);
	CHECK_U64("leader last index (the empty entry of term 8)", 11, leader.last_index);
	for (int round = 0; round < 5; round++) /* heartbeats let probes resume if any stalled */
		tick_all_and_stabilize(cluster, 1);

	for (uint64_t id = 2; id <= members; id++) {
		char why[160];
		if (!logs_equal(cluster, 1, id, why, sizeof why))
			test_fail(__FILE__, __LINE__, "follower %s did not converge: %s", figure7[id - 1].name, why);
		CHECK_U64("follower commit", 11, node_status(cluster, id).commit);
		if (rejections.by_member[id] > 2)
			test_fail(__FILE__, __LINE__, "follower %s needed %llu rejected probes (expected <= 2)",
			          figure7[id - 1].name, (unsigned long long)rejections.by_member[id]);
	}
	fprintf(stderr, "    figure 7 rejected probes:");
	for (uint64_t id = 2; id <= members; id++)
		fprintf(stderr, " %s=%llu", figure7[id - 1].name, (unsigned long long)rejections.by_member[id]);
	fputc('\n', stderr);
}

/* ---- Figure 8 ---------------------------------------------------------------------------------- */

/* Figure 8 (c): S1 is leader of term 4 and has just replicated index 2 (term 2) to S2 and S3; S5 holds
 * index 2 of term 3. Index 2 is on a majority, yet it is not committed. */
static void one_entry_per_append(struct raft_config *config)
{
	config->max_size_per_msg = 0;
}

static const uint64_t figure8_s1[] = {2}, figure8_s2[] = {2}, figure8_s5[] = {3};

static struct cluster *figure8_start(void)
{
	struct cluster *cluster = cluster_new_empty(5, one_entry_per_append);
	node_start_restored(cluster, 1, 5, figure8_s1, 1, 3, RAFT_NONE);
	node_start_restored(cluster, 2, 5, figure8_s2, 1, 2, RAFT_NONE);
	node_start_restored(cluster, 3, 5, NULL, 0, 3, 5);
	node_start_restored(cluster, 4, 5, NULL, 0, 3, 5);
	node_start_restored(cluster, 5, 5, figure8_s5, 1, 3, 5);
	stabilize(cluster);
	return cluster;
}

/* Removes the entries of term >= term from the appends in flight, as if the leader had sent only the
 * older ones so far (the message stays a valid append). */
static void strip_entries_from_term(struct cluster *cluster, uint64_t term)
{
	for (size_t k = 0; k < cluster->queue_count; k++) {
		Raftpb__Message *message = cluster->queue[k].message;
		if (message->type != RAFT_MSG_APP)
			continue;
		size_t keep = 0;
		while (keep < message->n_entries && message->entries[keep]->term < term)
			keep++;
		for (size_t e = keep; e < message->n_entries; e++)
			raftpb__entry__free_unpacked(message->entries[e], NULL);
		message->n_entries = keep;
	}
}

/* Runs S1's term-4 leadership with its own entries held back: index 2 spreads, index 3 does not. */
static void figure8_replicate_old_entry_only(struct cluster *cluster)
{
	isolate(cluster, 5);
	REQUIRE_RC(RAFT_OK, campaign(cluster, 1));
	for (int round = 0; round < 30; round++) {
		process_all_readies(cluster);
		strip_entries_from_term(cluster, 4);
		deliver_all(cluster);
		if (round % 3 == 2)
			tick(cluster, 1, 1);
	}
	process_all_readies(cluster);
	strip_entries_from_term(cluster, 4);
}

static void TestFigure8OldTermEntryNotCommittedByCounting(void)
{
	struct cluster *cluster = figure8_start();
	figure8_replicate_old_entry_only(cluster);
	struct raft_status leader = node_status(cluster, 1);
	REQUIRE(leader.role == RAFT_LEADER);
	CHECK_U64("S1's term", 4, leader.term);
	size_t holders = 0;
	for (uint64_t id = 1; id <= 4; id++)
		if (raft_term_at(node(cluster, id)->raft, 2) == 2)
			holders++;
	REQUIRE(holders >= 3); /* index 2 (term 2) is on a majority of 5 */
	/* Figure 2, Leaders: commit N only if log[N].term == currentTerm (§5.4.2). */
	CHECK_U64("S1's commit with only index 2 of term 2 replicated", 1, leader.commit);
	for (uint64_t id = 1; id <= 4; id++)
		CHECK_U64("applied", 1, node(cluster, id)->applied_index);

	/* Figure 8 (d): S1 crashes; S5 (last entry of term 3) is elected by S2, S3, S4 and overwrites
	 * index 2 — harmless, because nobody applied it. */
	drop_queue(cluster);
	heal(cluster);
	isolate(cluster, 1);
	for (int attempt = 0; attempt < 3 && node_status(cluster, 5).role != RAFT_LEADER; attempt++) {
		(void)campaign(cluster, 5);
		stabilize(cluster);
	}
	REQUIRE(node_status(cluster, 5).role == RAFT_LEADER);
	tick_all_and_stabilize(cluster, 3);
	for (uint64_t id = 2; id <= 5; id++)
		CHECK_U64("index 2 now holds S5's term-3 entry", 3, raft_term_at(node(cluster, id)->raft, 2));
}

/* Figure 8 (e): once S1 replicates an entry of its own term to a majority, that entry and the older
 * one before it commit, and S5 can no longer be elected. */
static void TestFigure8OldEntryCommitsWithCurrentTermEntry(void)
{
	struct cluster *cluster = figure8_start();
	figure8_replicate_old_entry_only(cluster);
	REQUIRE(node_status(cluster, 1).role == RAFT_LEADER);
	REQUIRE_U64("commit before the term-4 entry spreads", 1, node_status(cluster, 1).commit);
	tick_all_and_stabilize(cluster, 3);
	struct raft_status leader = node_status(cluster, 1);
	CHECK_U64("commit once the term-4 entry is on a majority", 3, leader.commit);
	CHECK_U64("S1 applied both", 3, node(cluster, 1)->applied_index);

	drop_queue(cluster);
	heal(cluster);
	isolate(cluster, 1);
	for (int attempt = 0; attempt < 4; attempt++) {
		(void)campaign(cluster, 5);
		stabilize(cluster);
		CHECK(node_status(cluster, 5).role != RAFT_LEADER);
	}
}

const struct test_case paper_figure_tests[] = {
	{"TestFigure7LeaderSyncsFollowerLogs", TestFigure7LeaderSyncsFollowerLogs},
	{"TestFigure8OldTermEntryNotCommittedByCounting", TestFigure8OldTermEntryNotCommittedByCounting},
	{"TestFigure8OldEntryCommitsWithCurrentTermEntry", TestFigure8OldEntryCommitsWithCurrentTermEntry},
	{NULL, NULL},
};
