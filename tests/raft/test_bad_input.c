/* tests/raft/test_bad_input.c: what arrives from the network cannot be trusted. Unknown types, local
 * types, strangers, undecodable bytes and impossible indexes are rejected with their own error code,
 * counted in raft_get_counters, and change nothing — never a crash (ASan/UBSan watch in CI).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static uint64_t rejected(struct cluster *cluster, uint64_t id, int code)
{
	return raft_get_counters(node(cluster, id)->raft)->rejected[code];
}

/* Packs a message into a fresh buffer (caller frees). */
static uint8_t *pack(const Raftpb__Message *message, size_t *length)
{
	*length = raftpb__message__get_packed_size(message);
	uint8_t *buffer = malloc(*length + 1);
	REQUIRE(buffer != NULL);
	raftpb__message__pack(message, buffer);
	return buffer;
}

/* Steps raw bytes into node id and checks the code and its counter. */
static void expect_bytes_rejected(struct cluster *cluster, uint64_t id, const uint8_t *bytes, size_t length,
                                  int code, const char *what)
{
	uint64_t before = rejected(cluster, id, code);
	int rc = raft_step_bytes(node(cluster, id)->raft, bytes, length);
	if (rc != code)
		test_fail(__FILE__, __LINE__, "%s: expected %s, got %s", what, raft_error_name(code), raft_error_name(rc));
	if (rejected(cluster, id, code) != before + 1)
		test_fail(__FILE__, __LINE__, "%s: rejected[%s] went from %llu to %llu", what, raft_error_name(code),
		          (unsigned long long)before, (unsigned long long)rejected(cluster, id, code));
}

static void expect_step_rejected(struct cluster *cluster, uint64_t id, const Raftpb__Message *message, int code,
                                 const char *what)
{
	uint64_t before = rejected(cluster, id, code);
	int rc = step(cluster, id, message);
	if (rc != code)
		test_fail(__FILE__, __LINE__, "%s: expected %s, got %s", what, raft_error_name(code), raft_error_name(rc));
	if (rejected(cluster, id, code) != before + 1)
		test_fail(__FILE__, __LINE__, "%s: rejected[%s] went from %llu to %llu", what, raft_error_name(code),
		          (unsigned long long)before, (unsigned long long)rejected(cluster, id, code));
}

/* Nothing a rejected message did may show: same term, vote, commit, log, role. */
static void check_unchanged(struct cluster *cluster, uint64_t id, const struct raft_status *before, const char *what)
{
	struct raft_status after = node_status(cluster, id);
	if (after.term != before->term || after.vote != before->vote || after.commit != before->commit ||
	    after.last_index != before->last_index || after.role != before->role)
		test_fail(__FILE__, __LINE__,
		          "%s changed node %llu: term %llu->%llu vote %llu->%llu commit %llu->%llu last %llu->%llu role "
		          "%s->%s",
		          what, (unsigned long long)id, (unsigned long long)before->term, (unsigned long long)after.term,
		          (unsigned long long)before->vote, (unsigned long long)after.vote,
		          (unsigned long long)before->commit, (unsigned long long)after.commit,
		          (unsigned long long)before->last_index, (unsigned long long)after.last_index,
		          raft_role_name(before->role), raft_role_name(after.role));
}

static void TestRejectUnknownMessageType(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	struct raft_status before = node_status(cluster, 2);
	Raftpb__Message unknown = message(77, 1, 2, before.term + 1);
	expect_step_rejected(cluster, 2, &unknown, RAFT_ERR_UNKNOWN_TYPE, "type 77 through raft_step");
	size_t length;
	uint8_t *bytes = pack(&unknown, &length);
	int rc = raft_step_bytes(node(cluster, 2)->raft, bytes, length);
	/* protobuf-c keeps an unknown enum value (proto3 enums are open) or refuses to decode it. */
	CHECK(rc == RAFT_ERR_UNKNOWN_TYPE || rc == RAFT_ERR_MALFORMED);
	free(bytes);
	check_unchanged(cluster, 2, &before, "a message of unknown type");
}

/* Local messages (MsgHup, MsgBeat, MsgCheckQuorum, MsgUnreachable, MsgSnapStatus) come from the
 * caller, never from the wire: a peer must not be able to make a member campaign. */
static void TestRejectLocalTypeFromNetwork(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	static const int local[] = {RAFT_MSG_HUP, RAFT_MSG_BEAT, RAFT_MSG_CHECK_QUORUM, RAFT_MSG_UNREACHABLE,
	                            RAFT_MSG_SNAP_STATUS};
	for (size_t k = 0; k < sizeof local / sizeof local[0]; k++) {
		struct raft_status before = node_status(cluster, 2);
		Raftpb__Message forged = message(local[k], 3, 2, before.term);
		size_t length;
		uint8_t *bytes = pack(&forged, &length);
		char what[64];
		snprintf(what, sizeof what, "local type %d from the network", local[k]);
		expect_bytes_rejected(cluster, 2, bytes, length, RAFT_ERR_LOCAL_TYPE, what);
		free(bytes);
		process_all_readies(cluster);
		check_unchanged(cluster, 2, &before, what);
	}
	CHECK_U64("leader", 1, leader_of(cluster));
}

/* Answers from a member not in the configuration (a removed member, a stranger) are noise: rejected
 * as UNKNOWN_SENDER. Requests are not filtered by sender (a member may not have applied the change
 * that added the current leader yet, and a new member knows nobody), so a stranger's vote request is
 * kept out by the leader lease instead (thesis §4.2.3, CheckQuorum). */
static void pre_vote_and_check_quorum(struct raft_config *config)
{
	config->pre_vote = true;
	config->check_quorum = true;
}

static void TestRejectMessageFromNonMember(void)
{
	struct cluster *cluster = cluster_new_configured(3, pre_vote_and_check_quorum);
	elect(cluster, 1);
	struct raft_status leader_before = node_status(cluster, 1);
	static const int answers[] = {RAFT_MSG_APP_RESP, RAFT_MSG_HEARTBEAT_RESP, RAFT_MSG_VOTE_RESP,
	                              RAFT_MSG_PRE_VOTE_RESP};
	for (size_t k = 0; k < sizeof answers / sizeof answers[0]; k++) {
		Raftpb__Message answer = message(answers[k], 9, 1, leader_before.term);
		answer.index = leader_before.last_index;
		char what[64];
		snprintf(what, sizeof what, "answer of type %d from 9", answers[k]);
		expect_step_rejected(cluster, 1, &answer, RAFT_ERR_UNKNOWN_SENDER, what);
		size_t length;
		uint8_t *bytes = pack(&answer, &length);
		expect_bytes_rejected(cluster, 1, bytes, length, RAFT_ERR_UNKNOWN_SENDER, what);
		free(bytes);
	}
	process_all_readies(cluster);
	check_unchanged(cluster, 1, &leader_before, "answers from a non-member");

	/* A stranger's vote requests, even with a higher term and a longer log, change nothing while the
	 * followers hear from their leader. */
	struct raft_status before = node_status(cluster, 2);
	static const int requests[] = {RAFT_MSG_VOTE, RAFT_MSG_PRE_VOTE};
	for (size_t k = 0; k < sizeof requests / sizeof requests[0]; k++) {
		Raftpb__Message vote = message(requests[k], 9, 2, before.term + 5);
		vote.index = before.last_index + 10;
		vote.log_term = before.term + 5;
		CHECK(step(cluster, 2, &vote) != RAFT_OK);
	}
	process_all_readies(cluster);
	size_t granted = 0;
	for (size_t k = 0; k < cluster->queue_count; k++)
		if (cluster->queue[k].message->to == 9 && !cluster->queue[k].message->reject)
			granted++;
	CHECK_U64("votes granted to a stranger", 0, granted);
	check_unchanged(cluster, 2, &before, "vote requests from a non-member");
	Raftpb__Message zero = message(RAFT_MSG_HEARTBEAT, 0, 2, before.term + 5);
	CHECK_RC(RAFT_ERR_MALFORMED, step(cluster, 2, &zero)); /* id 0 is nobody */
	check_unchanged(cluster, 2, &before, "a message from id 0");
	drop_queue(cluster);
	tick_all_and_stabilize(cluster, 3);
	CHECK_U64("leader", 1, leader_of(cluster));
}

/* Bytes that do not decode as a Message: truncated, garbage, a wrong wire type. */
static void TestRejectMalformedBytes(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	struct raft_status before = node_status(cluster, 2);

	Raftpb__Message append = message(RAFT_MSG_APP, 1, 2, before.term);
	append.index = before.last_index;
	append.log_term = before.term;
	uint64_t terms[] = {before.term, before.term};
	message_entries(&append, before.last_index + 1, terms, 2);
	static uint8_t data[] = "payload";
	append.entries[0]->data.data = data;
	append.entries[0]->data.len = sizeof data - 1;
	size_t length;
	uint8_t *bytes = pack(&append, &length);
	/* Every strict prefix that cuts a field in half must fail to decode. */
	for (size_t cut_at = 1; cut_at < length; cut_at++) {
		Raftpb__Message *decoded = raftpb__message__unpack(NULL, cut_at, bytes);
		if (decoded != NULL) {
			raftpb__message__free_unpacked(decoded, NULL);
			continue; /* a prefix ending on a field boundary is a valid (different) message */
		}
		expect_bytes_rejected(cluster, 2, bytes, cut_at, RAFT_ERR_MALFORMED, "truncated append");
	}
	free(bytes);

	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	expect_bytes_rejected(cluster, 2, garbage, sizeof garbage, RAFT_ERR_MALFORMED, "an overlong varint");
	static const uint8_t wrong_wire_type[] = {0x0a, 0x05, 'h', 'e'}; /* field 1 as bytes, cut short */
	expect_bytes_rejected(cluster, 2, wrong_wire_type, sizeof wrong_wire_type, RAFT_ERR_MALFORMED,
	                      "a length beyond the buffer");
	static const uint8_t group_tag[] = {0x0b}; /* wire type 3 (start group) is not proto3 */
	expect_bytes_rejected(cluster, 2, group_tag, sizeof group_tag, RAFT_ERR_MALFORMED, "a group tag");
	CHECK(raft_step_bytes(node(cluster, 2)->raft, NULL, 0) != RAFT_OK); /* empty: a MsgHup from nobody */

	/* A pseudo-random stream: whatever it decodes to, the core survives and stays consistent. */
	uint64_t state = 0x243f6a8885a308d3ull;
	uint8_t noise[64];
	for (int trial = 0; trial < 2000; trial++) {
		size_t noise_length = 1 + (size_t)(state % sizeof noise);
		for (size_t k = 0; k < noise_length; k++) {
			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			noise[k] = (uint8_t)state;
		}
		(void)raft_step_bytes(node(cluster, 2)->raft, noise, noise_length);
		process_all_readies(cluster);
		drop_queue(cluster);
		struct raft_status status = node_status(cluster, 2);
		if (status.commit > status.last_index || status.applied > status.commit) {
			test_fail(__FILE__, __LINE__, "after noise trial %d: commit %llu last %llu applied %llu", trial,
			          (unsigned long long)status.commit, (unsigned long long)status.last_index,
			          (unsigned long long)status.applied);
			break;
		}
	}
	CHECK(rejected(cluster, 2, RAFT_ERR_MALFORMED) > 10);
}

/* Indexes and terms no correct peer sends. */
static void TestRejectImpossibleIndexes(void)
{
	struct cluster *cluster = cluster_new(3);
	elect(cluster, 1);
	struct raft_status before = node_status(cluster, 2);
	uint64_t term = before.term, last = before.last_index;

	/* Entries that do not follow prevLogIndex. */
	Raftpb__Message gap = message(RAFT_MSG_APP, 1, 2, term);
	gap.index = last;
	gap.log_term = term;
	uint64_t terms[] = {term, term};
	message_entries(&gap, last + 2, terms, 2);
	expect_step_rejected(cluster, 2, &gap, RAFT_ERR_BAD_INDEX, "entries starting after a gap");

	/* Entries not contiguous among themselves. */
	Raftpb__Message jumbled = message(RAFT_MSG_APP, 1, 2, term);
	jumbled.index = last;
	jumbled.log_term = term;
	message_entries(&jumbled, last + 1, terms, 2);
	jumbled.entries[1]->index = last + 5;
	expect_step_rejected(cluster, 2, &jumbled, RAFT_ERR_BAD_INDEX, "non-contiguous entries");

	/* An entry from a term later than the message's own. */
	Raftpb__Message future = message(RAFT_MSG_APP, 1, 2, term);
	future.index = last;
	future.log_term = term;
	uint64_t future_terms[] = {term + 3};
	message_entries(&future, last + 1, future_terms, 1);
	expect_step_rejected(cluster, 2, &future, RAFT_ERR_BAD_INDEX, "entry term above the message term");

	/* Entry terms going down. */
	Raftpb__Message decreasing = message(RAFT_MSG_APP, 1, 2, term);
	decreasing.index = last;
	decreasing.log_term = term;
	uint64_t decreasing_terms[] = {term, term - 1};
	message_entries(&decreasing, last + 1, decreasing_terms, 2);
	expect_step_rejected(cluster, 2, &decreasing, RAFT_ERR_BAD_INDEX, "entry terms decreasing");

	/* An index so large that index + entries overflows. */
	Raftpb__Message overflow = message(RAFT_MSG_APP, 1, 2, term);
	overflow.index = UINT64_MAX;
	overflow.log_term = term;
	message_entries(&overflow, 0, terms, 2);
	overflow.entries[0]->index = 0;
	overflow.entries[1]->index = 1;
	CHECK(step(cluster, 2, &overflow) != RAFT_OK);
	process_all_readies(cluster);
	drop_queue(cluster);
	check_unchanged(cluster, 2, &before, "impossible appends");

	/* A follower acknowledging an index the leader never had. */
	struct raft_status leader = node_status(cluster, 1);
	Raftpb__Message answer = message(RAFT_MSG_APP_RESP, 2, 1, leader.term);
	answer.index = leader.last_index + 100;
	expect_step_rejected(cluster, 1, &answer, RAFT_ERR_BAD_INDEX, "an acknowledgement beyond the leader's log");
	check_unchanged(cluster, 1, &leader, "an impossible acknowledgement");

	/* A heartbeat asking to commit beyond the follower's log: clamped or refused, never believed. */
	Raftpb__Message heartbeat = message(RAFT_MSG_HEARTBEAT, 1, 2, term);
	heartbeat.commit = last + 1000;
	(void)step(cluster, 2, &heartbeat);
	process_all_readies(cluster);
	struct raft_status after = node_status(cluster, 2);
	CHECK(after.commit <= after.last_index);

	/* A snapshot message without a snapshot. */
	Raftpb__Message snapshot = message(RAFT_MSG_SNAP, 1, 2, term);
	CHECK(step(cluster, 2, &snapshot) != RAFT_OK);

	/* The cluster still works. */
	drop_queue(cluster);
	tick_all_and_stabilize(cluster, 2);
	REQUIRE_RC(RAFT_OK, propose(cluster, 1, "still-fine"));
	stabilize(cluster);
	CHECK(applied_contains(cluster, 2, "still-fine"));
}

/* Every message stepped is counted, accepted or not. */
static void TestCountersCountMessages(void)
{
	struct cluster *cluster = cluster_new(3);
	uint64_t before = raft_get_counters(node(cluster, 2)->raft)->messages_stepped;
	elect(cluster, 1);
	uint64_t after = raft_get_counters(node(cluster, 2)->raft)->messages_stepped;
	CHECK(after > before);
	CHECK(raft_get_counters(node(cluster, 1)->raft)->elections_started >= 1);
	CHECK(raft_get_counters(node(cluster, 2)->raft)->leader_changes >= 1);
	static const uint8_t garbage[] = {0xff};
	(void)raft_step_bytes(node(cluster, 2)->raft, garbage, 1);
	CHECK(raft_get_counters(node(cluster, 2)->raft)->rejected[RAFT_ERR_MALFORMED] == 1);
	CHECK(strcmp(raft_strerror(RAFT_ERR_MALFORMED), "malformed message") == 0);
	CHECK(strcmp(raft_strerror(12345), "unknown error") == 0);
	CHECK(strcmp(raft_strerror(-1), "unknown error") == 0);
}

/* Caller mistakes through the API: refused with INVALID_ARGUMENT or the relevant code, no crash. */
static void TestRejectInvalidArguments(void)
{
	struct raft_config config;
	raft_config_defaults(&config, 0);
	char errbuf[128] = "";
	CHECK(raft_new(&config, NULL, errbuf, sizeof errbuf) == NULL);
	CHECK(errbuf[0] != '\0');
	raft_config_defaults(&config, 1);
	config.heartbeat_tick = 5;
	config.election_tick = 5; /* election must exceed heartbeat */
	CHECK(raft_new(&config, NULL, errbuf, sizeof errbuf) == NULL);

	struct cluster *cluster = cluster_new(3);
	uint64_t ids[] = {1, 2, 3};
	CHECK(raft_bootstrap(node(cluster, 1)->raft, ids, 3) != RAFT_OK); /* the log is not empty */
	elect(cluster, 1);
	CHECK(raft_read_index(node(cluster, 1)->raft, NULL, 0) != RAFT_OK);
	CHECK(raft_transfer_leadership(node(cluster, 1)->raft, 9) != RAFT_OK);
	Raftpb__Entry **entries = NULL;
	size_t count = 0;
	struct raft_status status = node_status(cluster, 1);
	CHECK_RC(RAFT_ERR_UNAVAILABLE,
	         raft_copy_entries(node(cluster, 1)->raft, status.last_index + 1, status.last_index + 5, &entries, &count));
	REQUIRE_RC(RAFT_OK, raft_copy_entries(node(cluster, 1)->raft, 1, status.last_index + 1, &entries, &count));
	CHECK_U64("copied entries", status.last_index, count);
	raft_free_entries(entries, count);
	CHECK_U64("term beyond the log", 0, raft_term_at(node(cluster, 1)->raft, status.last_index + 1));
}

const struct test_case bad_input_tests[] = {
	{"TestRejectUnknownMessageType", TestRejectUnknownMessageType},
	{"TestRejectLocalTypeFromNetwork", TestRejectLocalTypeFromNetwork},
	{"TestRejectMessageFromNonMember", TestRejectMessageFromNonMember},
	{"TestRejectMalformedBytes", TestRejectMalformedBytes},
	{"TestRejectImpossibleIndexes", TestRejectImpossibleIndexes},
	{"TestCountersCountMessages", TestCountersCountMessages},
	{"TestRejectInvalidArguments", TestRejectInvalidArguments},
	{NULL, NULL},
};
