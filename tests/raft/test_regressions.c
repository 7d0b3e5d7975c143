/* tests/raft/test_regressions.c: core bugs found by these tests and the fuzzer, each test naming the rule
 * it checks and the diagnosis that led to the fix. Run: raft-unit --group regressions
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

/* Thesis §6.4 step 3 / etcd bcastHeartbeat: a pending ReadIndex is confirmed by a heartbeat round
 * answered by a quorum. When the round sent with the request is lost (here: a partition that heals),
 * the leader's regular heartbeats must carry the newest pending request's context so that the next
 * round confirms it; otherwise the read waits until the leader changes.
 * Diagnosis: step_leader's MSG_BEAT calls replication_broadcast_heartbeat(r, NULL, 0); etcd passes
 * r.readOnly.lastPendingRequestCtx(). read_only_last_context() exists in read_only.c but is unused. */
static void TestReadIndexConfirmedByLaterHeartbeatRound(void)
{
	struct cluster *cluster = cluster_new(5);
	elect(cluster, 1);
	cut(cluster, 1, 3);
	cut(cluster, 1, 4);
	cut(cluster, 1, 5);
	REQUIRE_RC(RAFT_OK, raft_read_index(node(cluster, 1)->raft, "q", 1));
	stabilize(cluster);
	CHECK_U64("read states with 2 of 5", 0, node(cluster, 1)->read_states_count);
	heal(cluster);
	tick_all_and_stabilize(cluster, 2 * node(cluster, 1)->config.election_tick);
	CHECK_U64("read states once heartbeats reach a quorum again", 1, node(cluster, 1)->read_states_count);
}

/* Bad input: an append whose prevLogTerm is above the message's own term cannot come from a correct
 * leader (prevLogTerm is the term of an entry in its log, never above its current term), like an entry
 * term above the message term, which the core does reject as RAFT_ERR_BAD_INDEX.
 * Diagnosis: the validation of appends checks entry terms and indexes but not log_term <= term; the
 * message goes on to the normal log-matching path (rejected with a hint, harmless), returns RAFT_OK
 * and is not counted as bad input. Minor: a validation gap, not a safety problem. */
static void TestRejectAppendWithPreviousTermAboveTerm(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	struct raft_status before = node_status(cluster, 2);
	Raftpb__Message append = message(RAFT_MSG_APP, 1, 2, before.term);
	append.index = before.last_index;
	append.log_term = before.term + 1;
	uint64_t counted = raft_get_counters(node(cluster, 2)->raft)->rejected[RAFT_ERR_BAD_INDEX];
	CHECK_RC(RAFT_ERR_BAD_INDEX, step(cluster, 2, &append));
	CHECK_U64("rejected[RAFT_ERR_BAD_INDEX]", counted + 1,
	          raft_get_counters(node(cluster, 2)->raft)->rejected[RAFT_ERR_BAD_INDEX]);
}

/* Figure 2: currentTerm only grows. A message with a term near 2^64 (a forged or corrupted message;
 * found by fuzz-raft-step) is adopted, and the member's next elections overflow the term: it wraps to
 * 0 and starts again from 1, after which it would accept messages of terms it has long left behind and
 * vote again in them. Diagnosis: nothing bounds message->term, and the candidate's term + 1 is not
 * checked for overflow (raft_become_candidate / raft_become_pre_candidate). A fix: reject messages
 * whose term is UINT64_MAX (or beyond some sane bound) as RAFT_ERR_BAD_INDEX, and never campaign at
 * UINT64_MAX. */
static void TestTermNeverWraps(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	isolate(cluster, 3);
	Raftpb__Message heartbeat = message(RAFT_MSG_HEARTBEAT, 1, 3, UINT64_MAX - 1);
	int rc = step(cluster, 3, &heartbeat);
	process_ready(cluster, 3);
	uint64_t term = node_status(cluster, 3).term;
	fprintf(stderr, "    heartbeat of term 2^64-2: %s, member term now %llu\n", raft_error_name(rc),
	        (unsigned long long)term);
	for (int round = 0; round < 4; round++) {
		tick(cluster, 3, 2 * node(cluster, 3)->config.election_tick);
		process_ready(cluster, 3);
		drop_queue(cluster);
		uint64_t now = node_status(cluster, 3).term;
		if (now < term) {
			test_fail(__FILE__, __LINE__, "term went back from %llu to %llu after an election",
			          (unsigned long long)term, (unsigned long long)now);
			break;
		}
		term = now;
	}
}

/* Figure 2 / raft.h's ordering contract: an append acknowledgement promises that the entries it covers
 * are durable. A core that takes several inputs before its next Ready (as a node's core thread does)
 * may acknowledge an append from the leader of term T, then, before that Ready, take an append from a
 * newer leader that replaces those entries. The Ready then persists only the replacement, and the old
 * acknowledgement must not leave: the old leader, still leading term T, would count entries this
 * member never stored towards a commit (a committed entry a new leader may then overwrite).
 * Diagnosis (found by raft-sim with batched inputs): the acknowledgement was queued in
 * messages_after_persist when the first append was stepped, and the truncation of the conflicting
 * suffix (log_truncate_after) or a snapshot install (log_restore_snapshot) left it there. Fix: both
 * withdraw the queued acknowledgements above the point the log still holds. */
static void TestAcknowledgementWithdrawnWhenEntriesReplacedBeforeReady(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	struct raft_status before = node_status(cluster, 2);
	uint64_t last = before.last_index, term = before.term;
	uint64_t last_term = raft_term_at(node(cluster, 2)->raft, last);

	Raftpb__Message from_old_leader = message(RAFT_MSG_APP, 1, 2, term);
	from_old_leader.index = last;
	from_old_leader.log_term = last_term;
	from_old_leader.commit = before.commit;
	const uint64_t old_terms[] = {term, term};
	message_entries(&from_old_leader, last + 1, old_terms, 2);
	REQUIRE_RC(RAFT_OK, step(cluster, 2, &from_old_leader));

	Raftpb__Message from_new_leader = message(RAFT_MSG_APP, 3, 2, term + 1);
	from_new_leader.index = last;
	from_new_leader.log_term = last_term;
	from_new_leader.commit = before.commit;
	const uint64_t new_terms[] = {term + 1};
	message_entries(&from_new_leader, last + 1, new_terms, 1);
	REQUIRE_RC(RAFT_OK, step(cluster, 2, &from_new_leader));

	drop_queue(cluster);
	REQUIRE(process_ready(cluster, 2));
	CHECK_U64("entries persisted end at", last + 1, node_status(cluster, 2).persisted);
	CHECK_U64("term of the entry persisted", term + 1, raft_term_at(node(cluster, 2)->raft, last + 1));
	for (size_t k = 0; k < queued_count(cluster, 2, 1, RAFT_MSG_APP_RESP); k++) {
		const Raftpb__Message *ack = queued(cluster, 2, 1, RAFT_MSG_APP_RESP, k);
		if (!ack->reject && ack->index > last)
			test_fail(__FILE__, __LINE__, "member 2 acknowledges index %llu (term %llu) to the old leader, but "
			          "its log holds term %llu there", (unsigned long long)ack->index,
			          (unsigned long long)ack->term, (unsigned long long)(term + 1));
	}
	const Raftpb__Message *to_new = queued(cluster, 2, 3, RAFT_MSG_APP_RESP, 0);
	REQUIRE(to_new != NULL);
	CHECK(!to_new->reject);
	CHECK_U64("acknowledged to the new leader", last + 1, to_new->index);
}

/* The same through a snapshot: entries acknowledged to the old leader, then a newer leader's snapshot
 * below them installed before the Ready. */
static void TestAcknowledgementWithdrawnWhenSnapshotInstalledBeforeReady(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "a"));
	stabilize(cluster);
	struct raft_status before = node_status(cluster, 2);
	uint64_t last = before.last_index, term = before.term;

	Raftpb__Message from_old_leader = message(RAFT_MSG_APP, 1, 2, term);
	from_old_leader.index = last;
	from_old_leader.log_term = raft_term_at(node(cluster, 2)->raft, last);
	from_old_leader.commit = before.commit;
	const uint64_t old_terms[] = {term, term, term};
	message_entries(&from_old_leader, last + 1, old_terms, 3);
	REQUIRE_RC(RAFT_OK, step(cluster, 2, &from_old_leader));

	/* A snapshot at last + 1 with a newer term: the member's entry there (term T) does not match. */
	uint64_t voters[] = {1, 2, 3};
	Raftpb__ConfState conf = RAFTPB__CONF_STATE__INIT;
	conf.n_voters = 3;
	conf.voters = voters;
	Raftpb__SnapshotMetadata metadata = RAFTPB__SNAPSHOT_METADATA__INIT;
	metadata.index = last + 1;
	metadata.term = term + 1;
	metadata.conf_state = &conf;
	Raftpb__Snapshot snapshot = RAFTPB__SNAPSHOT__INIT;
	snapshot.metadata = &metadata;
	Raftpb__Message from_new_leader = message(RAFT_MSG_SNAP, 3, 2, term + 1);
	from_new_leader.snapshot = &snapshot;
	REQUIRE_RC(RAFT_OK, step(cluster, 2, &from_new_leader));

	drop_queue(cluster);
	REQUIRE(process_ready(cluster, 2));
	for (size_t k = 0; k < queued_count(cluster, 2, 1, RAFT_MSG_APP_RESP); k++) {
		const Raftpb__Message *ack = queued(cluster, 2, 1, RAFT_MSG_APP_RESP, k);
		if (!ack->reject && ack->index > last + 1)
			test_fail(__FILE__, __LINE__, "member 2 acknowledges index %llu to the old leader after installing a "
			          "snapshot at %llu that replaced it", (unsigned long long)ack->index,
			          (unsigned long long)(last + 1));
	}
	const Raftpb__Message *to_new = queued(cluster, 2, 3, RAFT_MSG_APP_RESP, 0);
	REQUIRE(to_new != NULL);
	CHECK_U64("acknowledged to the new leader", last + 1, to_new->index);
}

const struct test_case regression_tests[] = {
	{"TestAcknowledgementWithdrawnWhenEntriesReplacedBeforeReady", TestAcknowledgementWithdrawnWhenEntriesReplacedBeforeReady},
	{"TestAcknowledgementWithdrawnWhenSnapshotInstalledBeforeReady", TestAcknowledgementWithdrawnWhenSnapshotInstalledBeforeReady},
	{"TestTermNeverWraps", TestTermNeverWraps},
	{"TestRejectAppendWithPreviousTermAboveTerm", TestRejectAppendWithPreviousTermAboveTerm},
	{"TestReadIndexConfirmedByLaterHeartbeatRound", TestReadIndexConfirmedByLaterHeartbeatRound},
	{NULL, NULL},
};
