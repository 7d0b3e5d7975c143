/* tests/raft/test_vote_rejections.c: what a rejected vote tells the candidate, at the level of single
 * messages (found by the simulation: seeds 30005211 and 40002471 of 3 members, before the fixes).
 * - Figure 2: a vote request from an older term is answered "no" with the newer term, so a candidate
 *   behind a member whose term ran ahead moves up instead of asking in vain.
 * - A rejection carries the voter's commit index and its term; a candidate holding that entry learns
 *   that it is committed (a fact of the cluster), and one that does not hold it learns nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"

#include "../control/check.h"

/* Member 1 of {1,2,3}: bootstrap entries 1..3 (term 1) plus two normal entries of term 1; term 5. */
static raft_t *member_one(uint64_t commit)
{
	Raftpb__ConfChange changes[3];
	uint8_t packed[3][32];
	Raftpb__Entry entries[5];
	Raftpb__Entry *pointers[5];
	for (int k = 0; k < 5; k++) {
		raftpb__entry__init(&entries[k]);
		entries[k].term = 1;
		entries[k].index = (uint64_t)k + 1;
		pointers[k] = &entries[k];
		if (k < 3) {
			raftpb__conf_change__init(&changes[k]);
			changes[k].type = RAFT_CC_ADD_NODE;
			changes[k].node_id = (uint64_t)k + 1;
			entries[k].type = RAFT_ENTRY_CONF_CHANGE;
			entries[k].data.len = raftpb__conf_change__pack(&changes[k], packed[k]);
			entries[k].data.data = packed[k];
		}
	}
	Raftpb__HardState hard_state = RAFTPB__HARD_STATE__INIT;
	hard_state.term = 5;
	hard_state.commit = commit;
	struct raft_restore restore = {&hard_state, NULL, pointers, 5};
	struct raft_config config;
	raft_config_defaults(&config, 1);
	config.applied = 3;
	char error[256];
	raft_t *r = raft_new(&config, &restore, error, sizeof(error));
	if (!r) {
		printf("raft_new: %s\n", error);
		exit(1);
	}
	return r;
}

static void drain(raft_t *r, struct raft_ready *ready, Raftpb__Message *found, int type)
{
	found->type = -1;
	while (raft_ready(r, ready)) {
		Raftpb__Message **lists[] = {ready->messages, ready->messages_after_persist};
		size_t counts[] = {ready->messages_count, ready->messages_after_persist_count};
		for (int l = 0; l < 2; l++)
			for (size_t k = 0; k < counts[l]; k++)
				if ((int)lists[l][k]->type == type)
					*found = *lists[l][k];
		uint64_t index = ready->persist_index, term = ready->persist_term;
		raft_advance(r, ready);
		if (index)
			raft_persisted(r, index, term);
	}
}

static void test_stale_vote_answered_with_newer_term(void)
{
	raft_t *r = member_one(3);
	struct raft_ready ready;
	Raftpb__Message found;
	drain(r, &ready, &found, RAFT_MSG_VOTE_RESP);
	Raftpb__Message vote = RAFTPB__MESSAGE__INIT;
	vote.type = RAFT_MSG_VOTE;
	vote.from = 2;
	vote.to = 1;
	vote.term = 3; /* older than member 1's term 5 */
	vote.index = 9;
	vote.log_term = 3;
	CHECK(raft_step(r, &vote) == RAFT_ERR_STALE_TERM, "the stale request is counted as stale");
	drain(r, &ready, &found, RAFT_MSG_VOTE_RESP);
	CHECK((int)found.type == RAFT_MSG_VOTE_RESP, "a stale vote request is answered");
	CHECK(found.reject && found.term == 5, "with a rejection carrying our term 5 (got reject %d term %llu)",
	      found.reject, (unsigned long long)found.term);
	CHECK(found.commit == 3 && found.log_term == 1, "and our commit 3 of term 1 (got %llu/%llu)",
	      (unsigned long long)found.commit, (unsigned long long)found.log_term);
	raft_free(r);
}

static void test_candidate_learns_commit_from_rejection(int rejection_log_term, uint64_t expected_commit)
{
	raft_t *r = member_one(3);
	struct raft_ready ready;
	Raftpb__Message found;
	drain(r, &ready, &found, 0);
	CHECK(raft_campaign(r) == RAFT_OK, "campaign");
	drain(r, &ready, &found, 0);
	struct raft_status status;
	raft_get_status(r, &status);
	CHECK(status.role == RAFT_PRE_CANDIDATE, "pre-candidate (got %s)", raft_role_name(status.role));
	Raftpb__Message rejection = RAFTPB__MESSAGE__INIT;
	rejection.type = RAFT_MSG_PRE_VOTE_RESP;
	rejection.from = 2;
	rejection.to = 1;
	rejection.term = 5;
	rejection.reject = true;
	rejection.commit = 5;
	rejection.log_term = (uint64_t)rejection_log_term;
	raft_step(r, &rejection);
	raft_get_status(r, &status);
	CHECK(status.commit == expected_commit, "rejection saying 5/%d: commit %llu, expected %llu", rejection_log_term,
	      (unsigned long long)status.commit, (unsigned long long)expected_commit);
	raft_free(r);
}

int main(void)
{
	test_stale_vote_answered_with_newer_term();
	test_candidate_learns_commit_from_rejection(1, 5); /* we hold (5, term 1): learn it */
	test_candidate_learns_commit_from_rejection(2, 3); /* (5, term 2) is not our entry: learn nothing */
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
