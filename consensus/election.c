/* consensus/election.c: leader election (Figure 2, "Candidates"; §5.2), PreVote (thesis §9.6) and
 * the vote a member gives. */
#include <string.h>

#include "internal.h"

static const char campaign_transfer[] = "CampaignTransfer";

bool raft_promotable(const raft_t *r)
{
	const struct progress *self = tracker_progress_const(&r->tracker, r->id);
	return self && !self->is_learner && !r->snapshot_pending_handout;
}

bool raft_has_unapplied_conf_changes(const raft_t *r)
{
	uint64_t from = r->log.applied > r->log.boundary_index ? r->log.applied : r->log.boundary_index;
	for (uint64_t index = from + 1; index <= r->log.committed; index++) {
		const struct log_entry *entry = log_entry_at(&r->log, index);
		if (entry && entry->type != RAFT_ENTRY_NORMAL)
			return true;
	}
	return false;
}

int election_hup(raft_t *r, bool transfer)
{
	if (r->role == RAFT_LEADER)
		return RAFT_ERR_IGNORED;
	if (r->term >= RAFT_MAX_TERM - 1)
		return RAFT_ERR_IGNORED; /* one more election would leave the term space */
	if (!raft_promotable(r))
		return RAFT_ERR_IGNORED;
	/* A member must not campaign with a committed configuration change it has not applied yet: it
	 * would count votes with the wrong configuration (etcd refuses the same way). */
	if (raft_has_unapplied_conf_changes(r))
		return RAFT_ERR_IGNORED;
	election_campaign(r, r->config.pre_vote && !transfer, transfer);
	return RAFT_OK;
}

void election_campaign(raft_t *r, bool pre_vote, bool transfer)
{
	uint64_t term;
	int type;
	if (pre_vote) {
		raft_become_pre_candidate(r);
		type = RAFT_MSG_PRE_VOTE;
		/* PreVote asks with the term we would use, without incrementing ours. */
		term = r->term + 1;
	} else {
		raft_become_candidate(r);
		type = RAFT_MSG_VOTE;
		term = r->term;
	}
	tracker_record_vote(&r->tracker, r->id, true);
	if (tracker_tally(&r->tracker, NULL, NULL) == VOTE_WON) {
		/* A single voter wins at once: with PreVote, go on to the real election. */
		if (pre_vote)
			election_campaign(r, false, transfer);
		else
			raft_become_leader(r);
		return;
	}
	const struct id_set *halves[] = {&r->tracker.config.voters, &r->tracker.config.voters_outgoing};
	for (size_t h = 0; h < 2; h++) {
		for (size_t k = 0; k < halves[h]->count; k++) {
			uint64_t id = halves[h]->ids[k];
			if (id == r->id)
				continue;
			if (h == 1 && id_set_contains(&r->tracker.config.voters, id))
				continue; /* already asked as an incoming voter */
			Raftpb__Message *message = raft_new_message(r, type, id);
			message->term = term;
			message->index = log_last_index(&r->log);
			message->log_term = log_last_term(&r->log);
			if (transfer) {
				message->context.data = (uint8_t *)campaign_transfer;
				message->context.len = sizeof(campaign_transfer) - 1;
			}
			raft_send(r, message);
		}
	}
}

bool election_is_transfer_context(const Raftpb__Message *message)
{
	return message->context.len == sizeof(campaign_transfer) - 1 &&
	       memcmp(message->context.data, campaign_transfer, message->context.len) == 0;
}

int election_handle_vote_request(raft_t *r, const Raftpb__Message *message)
{
	bool pre_vote = message->type == RAFT_MSG_PRE_VOTE;
	/* Figure 2, RequestVote: grant if we have not voted for another in this term (or, for PreVote,
	 * the candidate's term is ahead) and its log is at least as up to date as ours (§5.4.1). */
	bool can_vote = r->vote == message->from || (r->vote == RAFT_NONE && r->leader == RAFT_NONE) ||
	                (pre_vote && message->term > r->term);
	Raftpb__Message *response =
	    raft_new_message(r, pre_vote ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP, message->from);
	if (can_vote && log_is_up_to_date(&r->log, message->index, message->log_term)) {
		/* The response carries the candidate's term, so the candidate counts it (for PreVote, a term
		 * we have not taken ourselves). */
		response->term = message->term;
		if (!pre_vote) {
			r->election_elapsed = 0;
			r->vote = message->from;
		}
	} else {
		response->term = r->term;
		response->reject = true;
		election_attach_commit(r, response);
	}
	raft_send(r, response);
	return RAFT_OK;
}

/* A rejection tells the candidate our commit index and the term of that entry. Which entries are
 * committed is a fact of the cluster, not of a leader: a candidate whose log has that entry (same index
 * and term, so by Log Matching the same prefix) may commit up to it. This frees survivors of a joint
 * change that only a removed member saw commit: they learn it, apply it, and elect in the new
 * configuration without the removed member's vote. */
void election_attach_commit(raft_t *r, Raftpb__Message *response)
{
	response->commit = r->log.committed;
	response->log_term = log_term(&r->log, r->log.committed);
}

void election_learn_commit(raft_t *r, const Raftpb__Message *message)
{
	if (message->commit > r->log.committed && message->log_term != 0 &&
	    log_matches(&r->log, message->commit, message->log_term))
		log_commit_to(&r->log, message->commit);
}

int election_handle_vote_response(raft_t *r, const Raftpb__Message *message)
{
	bool pre = r->role == RAFT_PRE_CANDIDATE;
	if ((pre && message->type != RAFT_MSG_PRE_VOTE_RESP) || (!pre && message->type != RAFT_MSG_VOTE_RESP))
		return RAFT_ERR_IGNORED;
	tracker_record_vote(&r->tracker, message->from, !message->reject);
	switch (tracker_tally(&r->tracker, NULL, NULL)) {
	case VOTE_WON:
		if (pre) {
			election_campaign(r, false, false);
		} else {
			raft_become_leader(r);
			replication_broadcast_append(r);
		}
		break;
	case VOTE_LOST:
		/* Figure 2 does not need this, but a lost election waits for the next timeout as a follower
		 * of this term rather than splitting votes again at once. */
		raft_become_follower(r, r->term, RAFT_NONE);
		break;
	case VOTE_PENDING:
		break;
	}
	return RAFT_OK;
}
