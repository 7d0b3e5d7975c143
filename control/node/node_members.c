/* control/node/node_members.c: etcd's member operations on the core thread (see node_members.h). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "little_endian.h"
#include "log.h"
#include "member_id.h"
#include "node_members.h"
#include "peer_url.h"
#include "raft_internal.pb-c.h"
#include "raft_internal_fields.h"

enum { MEMBER_REQUEST_TIMEOUT_MS = 7000, ATTRIBUTES_RETRY_MS = 2000 };
/* etcd promotes a learner only when its log has reached 90% of the leader's (readyPercent). */
#define LEARNER_READY_FRACTION 0.9

static char *hex(uint64_t id, char buffer[17])
{
	snprintf(buffer, 17, "%" PRIx64, id);
	return buffer;
}

/* ---- liveness ---- */

static struct peer_liveness *liveness_of(struct node *node, uint64_t id)
{
	for (size_t k = 0; k < node->liveness_count; k++)
		if (node->liveness[k].id == id)
			return &node->liveness[k];
	struct peer_liveness *grown = xrealloc(node->liveness, (node->liveness_count + 1) * sizeof(*grown));
	node->liveness = grown;
	struct peer_liveness *entry = &node->liveness[node->liveness_count++];
	memset(entry, 0, sizeof(*entry));
	entry->id = id;
	return entry;
}

void members_heard_from(struct members_context *context, uint64_t id)
{
	struct peer_liveness *entry = liveness_of(context->node, id);
	uint64_t now = clock_monotonic_ms();
	if (entry->last_heard_ms == 0 || now - entry->last_heard_ms > context->node->flags.election_timeout_ms)
		entry->first_heard_ms = now; /* a new stretch of contact */
	entry->last_heard_ms = now;
}

/* Heard from within an election timeout: etcd's transport would call the stream active. */
static bool is_connected(void *argument, uint64_t id)
{
	struct members_context *context = argument;
	struct node *node = context->node;
	if (id == node->member_id)
		return true;
	struct peer_liveness *entry = liveness_of(node, id);
	return entry->last_heard_ms != 0 && clock_monotonic_ms() - entry->last_heard_ms <= node->flags.election_timeout_ms;
}

/* ---- JSON results ---- */

static json_t *member_object(const struct member *member)
{
	char id[17];
	json_t *peer_urls = json_array(), *client_urls = json_array();
	for (size_t k = 0; k < member->peer_urls_count; k++)
		json_array_append_new(peer_urls, json_string(member->peer_urls[k]));
	for (size_t k = 0; k < member->client_urls_count; k++)
		json_array_append_new(client_urls, json_string(member->client_urls[k]));
	return json_pack("{s:s, s:s, s:o, s:o, s:b}", "id", hex(member->id, id), "name", member->name ? member->name : "",
	                 "peer_urls", peer_urls, "client_urls", client_urls, "is_learner", member->is_learner);
}

static json_t *header_object(struct node *node)
{
	char cluster[17], member[17];
	struct raft_status status;
	raft_get_status(node->raft, &status);
	return json_pack("{s:s, s:s, s:I, s:I}", "cluster_id", hex(node->cluster_id, cluster), "member_id",
	                 hex(node->member_id, member), "revision", (json_int_t)atomic_load(&node->revision), "raft_term",
	                 (json_int_t)status.term);
}

static json_t *members_array(struct node *node)
{
	json_t *members = json_array();
	for (size_t k = 0; k < node->membership.count; k++)
		json_array_append_new(members, member_object(&node->membership.members[k]));
	return members;
}

static char *dump(json_t *value)
{
	char *text = json_dumps(value, JSON_COMPACT);
	json_decref(value);
	if (!text)
		alloc_failed(0); /* jansson fails only for memory here */
	return text;
}

/* Sends a JSON value to a peer behind a one-byte envelope kind; takes the reference to value. */
static void send_json(struct node *node, uint64_t to, int kind, json_t *value)
{
	char *text = dump(value);
	size_t length = strlen(text);
	uint8_t *bytes = xmalloc(length + 1);
	bytes[0] = (uint8_t)kind;
	memcpy(bytes + 1, text, length);
	node_send_peer(node, to, bytes, length + 1);
	free(bytes);
	free(text);
}

/* ---- completing requests: locally, or back to the member that forwarded them ---- */

static void complete(struct members_context *context, struct node_request *request, int code, const char *error,
                     char *json)
{
	struct node *node = context->node;
	if (request->from_peer) {
		send_json(node, request->from_peer, PEER_MEMBER_REPLY,
		          json_pack("{s:I, s:i, s:s, s:s}", "forward_id", (json_int_t)request->peer_request_id, "code", code,
		                    "error", error ? error : "", "result", json ? json : ""));
		free(json);
	} else {
		struct node_reply *reply = xcalloc(1, sizeof(*reply));
		reply->request_id = request->request_id;
		reply->grpc_code = code;
		if (error)
			snprintf(reply->error, sizeof(reply->error), "%s", error);
		reply->json = json;
		node_post_reply(node, reply);
	}
	node_request_free(request);
}

static void fail(struct members_context *context, struct node_request *request, int code, const char *error)
{
	complete(context, request, code, error, NULL);
}

static int code_of_membership_error(int error)
{
	switch (error) {
	case MEMBERSHIP_ERR_ID_NOT_FOUND:
	case MEMBERSHIP_ERR_ID_REMOVED:
		return GRPC_NOT_FOUND;
	case MEMBERSHIP_ERR_UNHEALTHY:
		return GRPC_UNAVAILABLE;
	case MEMBERSHIP_ERR_INVALID:
		return GRPC_INVALID_ARGUMENT;
	default:
		return GRPC_FAILED_PRECONDITION;
	}
}

static char *list_result(struct members_context *context, const struct member *member)
{
	json_t *result = json_pack("{s:o, s:o}", "header", header_object(context->node), "members",
	                           members_array(context->node));
	if (member)
		json_object_set_new(result, "member", member_object(member));
	return dump(result);
}

/* ---- forwarding to the leader ---- */

static const char *request_kind_name(enum node_request_kind kind)
{
	switch (kind) {
	case REQUEST_MEMBER_ADD:
		return "member_add";
	case REQUEST_MEMBER_REMOVE:
		return "member_remove";
	case REQUEST_MEMBER_UPDATE:
		return "member_update";
	case REQUEST_MEMBER_PROMOTE:
		return "member_promote";
	case REQUEST_MOVE_LEADER:
		return "move_leader";
	default:
		return "unknown";
	}
}

static void add_pending(struct members_context *context, struct node_request *request, uint64_t target,
                        bool forwarded)
{
	if (context->pending_count == context->pending_capacity) {
		context->pending_capacity = context->pending_capacity ? context->pending_capacity * 2 : 16;
		context->pending = xrealloc(context->pending, context->pending_capacity * sizeof(struct pending_change));
	}
	context->pending[context->pending_count].request = request;
	context->pending[context->pending_count].proposed_at_ms = clock_monotonic_ms();
	context->pending[context->pending_count].target_id = target;
	context->pending[context->pending_count].forwarded = forwarded;
	context->pending[context->pending_count].awaiting_transfer = false;
	context->pending[context->pending_count].probing_since_ms = 0;
	context->pending[context->pending_count].awaiting_leader = false;
	context->pending_count++;
}

static void forward_to_leader(struct members_context *context, struct node_request *request, uint64_t leader)
{
	char id[17];
	json_t *urls = json_array();
	for (size_t k = 0; k < request->peer_urls_count; k++)
		json_array_append_new(urls, json_string(request->peer_urls[k]));
	uint64_t forward_id = ++context->next_forward_id;
	send_json(context->node, leader, PEER_MEMBER_REQUEST,
	          json_pack("{s:s, s:I, s:s, s:o, s:b}", "kind", request_kind_name(request->kind), "forward_id",
	                    (json_int_t)forward_id, "member_id", hex(request->member_id, id), "peer_urls", urls,
	                    "is_learner", request->is_learner));
	/* Wait for the leader's answer like for a proposal of our own (target_id holds the forward id). */
	request->peer_request_id = forward_id;
	add_pending(context, request, 0, true);
}

/* ---- the operations (on the leader) ---- */

static int propose_change(struct members_context *context, struct node_request *request, int type, uint64_t node_id,
                          const struct member *member)
{
	Raftpb__ConfChange change = RAFTPB__CONF_CHANGE__INIT;
	change.id = request->request_id;
	change.type = type;
	change.node_id = node_id;
	char *json = member ? member_to_json(member) : NULL;
	if (json) {
		change.context.data = (uint8_t *)json;
		change.context.len = strlen(json);
	}
	int rc = raft_propose_conf_change(context->node->raft, &change, NULL);
	free(json);
	switch (rc) {
	case RAFT_OK:
		add_pending(context, request, node_id, false);
		return 0;
	case RAFT_ERR_CONF_CHANGE_PENDING:
		fail(context, request, GRPC_FAILED_PRECONDITION,
		     "etcdserver: unhealthy cluster: a configuration change is still in progress");
		return -1;
	case RAFT_ERR_TRANSFER_IN_PROGRESS:
		fail(context, request, GRPC_UNAVAILABLE, "etcdserver: leader changed");
		return -1;
	case RAFT_ERR_NOT_LEADER:
		fail(context, request, GRPC_UNAVAILABLE, "etcdserver: not leader");
		return -1;
	default:
		fail(context, request, GRPC_FAILED_PRECONDITION, raft_strerror(rc));
		return -1;
	}
}

static bool urls_valid(struct members_context *context, struct node_request *request)
{
	if (request->peer_urls_count == 0) {
		fail(context, request, GRPC_INVALID_ARGUMENT, "member peer urls not provided");
		return false;
	}
	for (size_t k = 0; k < request->peer_urls_count; k++) {
		struct peer_url url;
		char error[256];
		if (peer_url_parse(request->peer_urls[k], &url, error, sizeof(error)) != 0) {
			fail(context, request, GRPC_INVALID_ARGUMENT, error);
			return false;
		}
	}
	return true;
}

static void member_add_propose(struct members_context *context, struct node_request *request);
static void member_add_continue(struct members_context *context, struct node_request *request);

static void member_add(struct members_context *context, struct node_request *request)
{
	struct node *node = context->node;
	if (!urls_valid(context, request))
		return;
	if (membership_find_peer_url(&node->membership, (const char *const *)request->peer_urls, request->peer_urls_count, 0)) {
		fail(context, request, GRPC_FAILED_PRECONDITION, membership_strerror(MEMBERSHIP_ERR_PEER_URL_EXISTS));
		return;
	}
	int rc = membership_may_add(&node->membership, request->is_learner, node->flags.strict_reconfig_check,
	                            node->member_id, is_connected, context);
	if (rc != MEMBERSHIP_OK) {
		fail(context, request, code_of_membership_error(rc), membership_strerror(rc));
		return;
	}
	if (node->flags.strict_reconfig_check) {
		/* etcd adds only while the member asked is connected to every voter (isConnectedFullySince).
		 * Over UDP a dead peer shows no broken connection, so check actively: every member pings each
		 * heartbeat; go on once each voter was heard after now, or answer "unhealthy cluster" if one
		 * stays silent (members_probe). Checked here, before forwarding, as etcd checks on the member
		 * the client asked. */
		add_pending(context, request, 0, false);
		context->pending[context->pending_count - 1].probing_since_ms = clock_monotonic_ms();
		return;
	}
	member_add_continue(context, request);
}

/* After the checks: propose on the leader, else forward to it. */
static void member_add_continue(struct members_context *context, struct node_request *request)
{
	struct raft_status status;
	raft_get_status(context->node->raft, &status);
	if (status.role == RAFT_LEADER)
		member_add_propose(context, request);
	else if (status.leader != RAFT_NONE && !request->from_peer)
		forward_to_leader(context, request, status.leader);
	else
		fail(context, request, GRPC_UNAVAILABLE, membership_strerror(MEMBERSHIP_ERR_UNHEALTHY));
}

static void member_add_propose(struct members_context *context, struct node_request *request)
{
	/* A member added at run time gets an ID that also depends on the time (etcd: NewMember with now). */
	struct member member = {0};
	member.id = member_id_compute((const char *const *)request->peer_urls, request->peer_urls_count, NULL, true,
	                              (int64_t)time(NULL));
	member.name = "";
	member.peer_urls = request->peer_urls;
	member.peer_urls_count = request->peer_urls_count;
	member.is_learner = request->is_learner;
	propose_change(context, request, request->is_learner ? RAFT_CC_ADD_LEARNER_NODE : RAFT_CC_ADD_NODE, member.id,
	               &member);
}

/* The voter (not us, not a learner) whose log matches the leader's furthest: it can take over with the
 * shortest catch-up. RAFT_NONE when there is none. */
static uint64_t most_caught_up_voter(struct members_context *context)
{
	struct node *node = context->node;
	struct raft_peer_status peers[64];
	size_t count = raft_get_progress(node->raft, peers, 64);
	uint64_t target = RAFT_NONE, best = 0;
	for (size_t k = 0; k < count && k < 64; k++) {
		const struct member *member = membership_find(&node->membership, peers[k].id);
		if (peers[k].id == node->member_id || !member || member->is_learner)
			continue;
		if (target == RAFT_NONE || peers[k].match > best) {
			target = peers[k].id;
			best = peers[k].match;
		}
	}
	return target;
}

static void member_remove(struct members_context *context, struct node_request *request)
{
	struct node *node = context->node;
	int rc = membership_may_remove(&node->membership, request->member_id, node->flags.strict_reconfig_check,
	                               node->member_id, is_connected, context);
	if (rc != MEMBERSHIP_OK) {
		fail(context, request, code_of_membership_error(rc), membership_strerror(rc));
		return;
	}
	if (request->member_id == node->member_id) {
		/* Removing the leader: hand leadership to the most caught-up voter first, then let the new leader
		 * remove us (control/README.md, membership), so the cluster never waits for an election. */
		uint64_t target = most_caught_up_voter(context);
		if (target != RAFT_NONE && raft_transfer_leadership(node->raft, target) == RAFT_OK) {
			log_write("info", "transferring leadership before removing the leader",
			         "\"member-id\":\"%" PRIx64 "\",\"transferee\":\"%" PRIx64 "\"", node->member_id, target);
			add_pending(context, request, target, false);
			context->pending[context->pending_count - 1].awaiting_transfer = true;
			return;
		}
	}
	propose_change(context, request, RAFT_CC_REMOVE_NODE, request->member_id, NULL);
}

static void member_update(struct members_context *context, struct node_request *request)
{
	struct node *node = context->node;
	if (!urls_valid(context, request))
		return;
	const struct member *existing = membership_find(&node->membership, request->member_id);
	if (!existing) {
		fail(context, request, GRPC_NOT_FOUND, membership_strerror(MEMBERSHIP_ERR_ID_NOT_FOUND));
		return;
	}
	if (membership_find_peer_url(&node->membership, (const char *const *)request->peer_urls, request->peer_urls_count,
	                             request->member_id)) {
		fail(context, request, GRPC_FAILED_PRECONDITION, membership_strerror(MEMBERSHIP_ERR_PEER_URL_EXISTS));
		return;
	}
	struct member updated = *existing;
	updated.peer_urls = request->peer_urls;
	updated.peer_urls_count = request->peer_urls_count;
	propose_change(context, request, RAFT_CC_UPDATE_NODE, request->member_id, &updated);
}

static void member_promote(struct members_context *context, struct node_request *request)
{
	struct node *node = context->node;
	int rc = membership_may_promote(&node->membership, request->member_id, node->flags.strict_reconfig_check);
	if (rc != MEMBERSHIP_OK) {
		fail(context, request, code_of_membership_error(rc), membership_strerror(rc));
		return;
	}
	struct raft_peer_status peers[64];
	size_t count = raft_get_progress(node->raft, peers, 64);
	uint64_t leader_match = 0, learner_match = 0;
	for (size_t k = 0; k < count && k < 64; k++) {
		if (peers[k].id == node->member_id)
			leader_match = peers[k].match;
		if (peers[k].id == request->member_id)
			learner_match = peers[k].match;
	}
	if ((double)learner_match < (double)leader_match * LEARNER_READY_FRACTION || leader_match == 0) {
		fail(context, request, GRPC_FAILED_PRECONDITION, membership_strerror(MEMBERSHIP_ERR_LEARNER_NOT_READY));
		return;
	}
	struct member promoted = *membership_find(&node->membership, request->member_id);
	promoted.is_learner = false;
	propose_change(context, request, RAFT_CC_ADD_NODE, request->member_id, &promoted);
}

/* A leader that is asked to stop hands over first, as etcd's TransferLeadership does, so the cluster
 * does not wait an election timeout without a leader. Answers OK at once when there is nothing to hand
 * over; otherwise the request continues as a move-leader to the chosen voter. */
static bool stop_transfer_skipped(struct members_context *context, struct node_request *request)
{
	struct node *node = context->node;
	uint64_t leader = atomic_load(&node->leader_id);
	if (leader != node->member_id) {
		log_write("info", "skipped leadership transfer; local server is not leader",
		          "\"local-member-id\":\"%" PRIx64 "\",\"current-leader-member-id\":\"%" PRIx64 "\"",
		          node->member_id, leader);
		complete(context, request, GRPC_OK, NULL, NULL);
		return true;
	}
	uint64_t target = most_caught_up_voter(context);
	if (target == RAFT_NONE) {
		log_write("info", "skipped leadership transfer for single voting member cluster",
		          "\"local-member-id\":\"%" PRIx64 "\",\"current-leader-member-id\":\"%" PRIx64 "\"",
		          node->member_id, leader);
		complete(context, request, GRPC_OK, NULL, NULL);
		return true;
	}
	log_write("info", "leadership transfer starting",
	          "\"local-member-id\":\"%" PRIx64 "\",\"current-leader-member-id\":\"%" PRIx64 "\","
	          "\"transferee-member-id\":\"%" PRIx64 "\"", node->member_id, leader, target);
	request->member_id = target;
	return false;
}

static void move_leader(struct members_context *context, struct node_request *request)
{
	struct node *node = context->node;
	const struct member *target = membership_find(&node->membership, request->member_id);
	if (!target || target->is_learner) {
		fail(context, request, GRPC_FAILED_PRECONDITION, "etcdserver: bad leader transferee");
		return;
	}
	if (request->member_id == node->member_id) {
		complete(context, request, GRPC_OK, NULL, list_result(context, NULL));
		return;
	}
	int rc = raft_transfer_leadership(node->raft, request->member_id);
	if (rc != RAFT_OK) {
		fail(context, request, GRPC_FAILED_PRECONDITION, raft_strerror(rc));
		return;
	}
	add_pending(context, request, request->member_id, false);
}

static char *status_result(struct members_context *context)
{
	struct node *node = context->node;
	struct raft_status status;
	raft_get_status(node->raft, &status);
	char leader[17];
	json_t *errors = json_array();
	if (status.leader == RAFT_NONE)
		json_array_append_new(errors, json_string("etcdserver: no leader"));
	/* etcd 3.4 lists each active alarm in Status's errors too. */
	struct alarm_list alarms;
	node_alarms_copy(node, &alarms);
	/* A member out of disk space cannot apply the alarm it raised: it shows it all the same. */
	if (atomic_load(&node->disk_full) &&
	    !alarm_list_has_member(&alarms, node->member_id, ETCDSERVERPB__ALARM_TYPE__NOSPACE)) {
		struct alarm_entry own = {node->member_id, ETCDSERVERPB__ALARM_TYPE__NOSPACE};
		char text[96];
		alarm_entry_format(&own, text, sizeof(text));
		json_array_append_new(errors, json_string(text));
	}
	for (size_t k = 0; k < alarms.count; k++) {
		char text[96];
		alarm_entry_format(&alarms.entries[k], text, sizeof(text));
		json_array_append_new(errors, json_string(text));
	}
	alarm_list_free(&alarms);
	const struct member *self = membership_find(&node->membership, node->member_id);
	json_t *result = json_pack("{s:o, s:s, s:I, s:s, s:I, s:I, s:I, s:b, s:o}", "header", header_object(node), "version",
	                           "3.4.0-quorumd", "db_size", (json_int_t)atomic_load(&node->db_size), "leader",
	                           hex(status.leader, leader), "raft_index", (json_int_t)status.last_index, "raft_term",
	                           (json_int_t)status.term, "raft_applied_index",
	                           (json_int_t)atomic_load(&node->applied_index), "is_learner",
	                           self ? self->is_learner : false, "errors", errors);
	return dump(result);
}

void members_handle_request(struct members_context *context, struct node_request *request)
{
	struct node *node = context->node;
	switch (request->kind) {
	case REQUEST_MEMBER_LIST:
		complete(context, request, GRPC_OK, NULL, list_result(context, NULL));
		return;
	case REQUEST_STATUS:
		complete(context, request, GRPC_OK, NULL, status_result(context));
		return;
	default:
		break;
	}
	if (request->kind == REQUEST_MOVE_LEADER && request->member_id == 0 && !request->from_peer &&
	    stop_transfer_skipped(context, request))
		return;
	if (request->kind == REQUEST_MEMBER_ADD && !request->from_peer) {
		member_add(context, request); /* checks here first, then proposes or forwards */
		return;
	}
	struct raft_status status;
	raft_get_status(node->raft, &status);
	if (status.role != RAFT_LEADER) {
		if (status.leader == RAFT_NONE && !request->from_peer) {
			/* etcd's request waits for a leader and times out (context deadline exceeded) rather than
			 * failing at once: wait here, and go on if a leader appears in time. */
			add_pending(context, request, 0, false);
			context->pending[context->pending_count - 1].awaiting_leader = true;
			return;
		}
		if (status.leader == RAFT_NONE || request->from_peer) {
			fail(context, request, GRPC_UNAVAILABLE,
			     status.leader == RAFT_NONE ? "etcdserver: no leader" : "etcdserver: not leader");
			return;
		}
		forward_to_leader(context, request, status.leader);
		return;
	}
	switch (request->kind) {
	case REQUEST_MEMBER_ADD:
		member_add(context, request);
		break;
	case REQUEST_MEMBER_REMOVE:
		member_remove(context, request);
		break;
	case REQUEST_MEMBER_UPDATE:
		member_update(context, request);
		break;
	case REQUEST_MEMBER_PROMOTE:
		member_promote(context, request);
		break;
	case REQUEST_MOVE_LEADER:
		move_leader(context, request);
		break;
	default:
		fail(context, request, GRPC_UNIMPLEMENTED, "unknown request");
		break;
	}
}

/* ---- applying committed entries ---- */

static void add_peer_address(struct node *node, const struct member *member)
{
	if (member->id == node->member_id || member->peer_urls_count == 0)
		return;
	struct peer_url url;
	char error[256];
	if (peer_url_parse(member->peer_urls[0], &url, error, sizeof(error)) != 0)
		return;
	transport_add_peer(node->transport, member->id, url.host, url.port, error, sizeof(error));
}

static void finish_pending(struct members_context *context, uint64_t request_id, const struct member *member)
{
	for (size_t k = 0; k < context->pending_count; k++) {
		struct node_request *request = context->pending[k].request;
		if (context->pending[k].forwarded || request->request_id != request_id ||
		    request->kind == REQUEST_MOVE_LEADER)
			continue;
		context->pending[k] = context->pending[--context->pending_count];
		complete(context, request, GRPC_OK, NULL, list_result(context, member));
		return;
	}
}

static bool apply_conf_change(struct members_context *context, const Raftpb__Entry *entry)
{
	struct node *node = context->node;
	Raftpb__ConfChange *change = raftpb__conf_change__unpack(NULL, entry->data.len, entry->data.data);
	if (!change)
		return false;
	struct member member = {0};
	bool has_member = change->context.len &&
	                  member_from_json((const char *)change->context.data, change->context.len, &member) == MEMBERSHIP_OK;
	bool changed = true;
	switch (change->type) {
	case RAFT_CC_ADD_NODE:
		if (membership_find(&node->membership, change->node_id)) {
			/* Already known: a learner's promotion (or a joining member replaying its own add). */
			if (membership_promote(&node->membership, change->node_id) == MEMBERSHIP_OK)
				log_write("info", "promoted member", "\"promoted-member-id\":\"%" PRIx64 "\"", change->node_id);
		} else if (has_member) {
			member.is_learner = false;
			membership_add(&node->membership, &member);
			add_peer_address(node, &member);
			log_write("info", "added member", "\"added-peer-id\":\"%" PRIx64 "\",\"added-peer-peer-urls\":\"%s\"",
			         member.id, member.peer_urls_count ? member.peer_urls[0] : "");
		}
		break;
	case RAFT_CC_ADD_LEARNER_NODE:
		if (has_member) {
			member.is_learner = true;
			membership_add(&node->membership, &member);
			add_peer_address(node, &member);
			log_write("info", "added member", "\"added-peer-id\":\"%" PRIx64 "\",\"added-peer-is-learner\":true",
			         member.id);
		}
		break;
	case RAFT_CC_REMOVE_NODE:
		membership_remove(&node->membership, change->node_id);
		/* Its address stays: if it comes back from a crash still talking, we tell it it was removed. */
		transport_mark_removed(node->transport, change->node_id);
		log_write("info", "removed member", "\"removed-member-id\":\"%" PRIx64 "\"", change->node_id);
		if (change->node_id == node->member_id)
			context->removed_self = true;
		break;
	case RAFT_CC_UPDATE_NODE:
		if (has_member) {
			membership_update_peer_urls(&node->membership, change->node_id, (const char *const *)member.peer_urls,
			                            member.peer_urls_count);
			add_peer_address(node, &member);
			log_write("info", "updated member", "\"updated-remote-peer-id\":\"%" PRIx64 "\"", change->node_id);
		}
		break;
	default:
		changed = false;
	}
	const struct member *now = membership_find(&node->membership, change->node_id);
	finish_pending(context, change->id, now);
	/* A change we forwarded to the leader is done once we apply it: answer now rather than wait for the
	 * leader's reply, which never comes when the leader was the member removed (its frames are dropped
	 * from then on) or when we are, and stop. */
	enum node_request_kind kind = change->type == RAFT_CC_REMOVE_NODE ? REQUEST_MEMBER_REMOVE
	                              : change->type == RAFT_CC_UPDATE_NODE ? REQUEST_MEMBER_UPDATE
	                              : change->type == RAFT_CC_ADD_NODE    ? REQUEST_MEMBER_PROMOTE
	                                                                    : REQUEST_MEMBER_ADD;
	for (size_t k = 0; kind != REQUEST_MEMBER_ADD && k < context->pending_count; k++) {
		struct node_request *request = context->pending[k].request;
		if (!context->pending[k].forwarded || request->kind != kind || request->member_id != change->node_id)
			continue;
		context->pending[k] = context->pending[--context->pending_count];
		complete(context, request, GRPC_OK, NULL, list_result(context, now));
		break;
	}
	if (has_member)
		member_free(&member);
	raftpb__conf_change__free_unpacked(change, NULL);
	return changed;
}

static bool apply_attributes(struct members_context *context, const Raftpb__Entry *entry)
{
	struct node *node = context->node;
	/* Most entries are client writes: skip the decode unless the entry has the field. */
	if (!protobuf_has_field(entry->data.data, entry->data.len, INTERNAL_RAFT_FIELD_CLUSTER_MEMBER_ATTR_SET))
		return false;
	Etcdserverpb__InternalRaftRequest *request =
	    etcdserverpb__internal_raft_request__unpack(NULL, entry->data.len, entry->data.data);
	if (!request)
		return false;
	bool changed = false;
	Membershippb__ClusterMemberAttrSetRequest *attributes = request->cluster_member_attr_set;
	if (attributes && attributes->member_attributes) {
		changed = membership_set_attributes(&node->membership, attributes->member_id,
		                                    attributes->member_attributes->name,
		                                    (const char *const *)attributes->member_attributes->client_urls,
		                                    attributes->member_attributes->n_client_urls) == MEMBERSHIP_OK;
		if (changed && attributes->member_id == node->member_id)
			context->attributes_proposed_at_ms = 0;
		if (changed)
			log_write("info", "published local member to cluster through raft",
			         "\"member-id\":\"%" PRIx64 "\",\"name\":\"%s\"", attributes->member_id,
			         attributes->member_attributes->name);
	}
	etcdserverpb__internal_raft_request__free_unpacked(request, NULL);
	return changed;
}

void members_restore(struct members_context *context, const uint8_t *blob, size_t length)
{
	struct node *node = context->node;
	struct membership restored;
	if (length == 0 || membership_decode((const char *)blob, length, &restored) != MEMBERSHIP_OK) {
		log_write("warn", "the snapshot carries no member list that decodes; keeping ours", NULL);
		return;
	}
	restored.cluster_id = node->cluster_id;
	membership_free(&node->membership);
	node->membership = restored;
	for (size_t k = 0; k < node->membership.count; k++)
		add_peer_address(node, &node->membership.members[k]);
	for (size_t k = 0; k < node->membership.removed_count; k++)
		transport_mark_removed(node->transport, node->membership.removed[k]);
	if (membership_is_removed(&node->membership, node->member_id))
		context->removed_self = true;
	members_publish(context);
}

bool members_apply_committed(struct members_context *context, Raftpb__Entry **entries, size_t count)
{
	bool changed = false;
	for (size_t k = 0; k < count; k++) {
		const Raftpb__Entry *entry = entries[k];
		if (entry->type == RAFT_ENTRY_CONF_CHANGE)
			changed |= apply_conf_change(context, entry);
		else if (entry->type == RAFT_ENTRY_NORMAL && entry->data.len)
			changed |= apply_attributes(context, entry);
	}
	return changed;
}

void members_publish(struct members_context *context)
{
	struct node *node = context->node;
	char *json = membership_encode(&node->membership);
	pthread_mutex_lock(&node->membership_lock);
	free(node->published_membership);
	node->published_membership = json;
	pthread_mutex_unlock(&node->membership_lock);
	const struct member *self = membership_find(&node->membership, node->member_id);
	atomic_store(&node->is_learner, self && self->is_learner);
}

/* ---- peer messages ---- */

static struct node_request *request_from_json(json_t *body, uint64_t from)
{
	const char *kind = NULL, *member_id = NULL;
	json_int_t forward_id = 0;
	json_t *urls = NULL;
	int is_learner = 0;
	if (json_unpack(body, "{s:s, s:I, s:s, s:o, s:b}", "kind", &kind, "forward_id", &forward_id, "member_id",
	                &member_id, "peer_urls", &urls, "is_learner", &is_learner) != 0)
		return NULL;
	struct node_request *request = xcalloc(1, sizeof(*request));
	if (!strcmp(kind, "member_add"))
		request->kind = REQUEST_MEMBER_ADD;
	else if (!strcmp(kind, "member_remove"))
		request->kind = REQUEST_MEMBER_REMOVE;
	else if (!strcmp(kind, "member_update"))
		request->kind = REQUEST_MEMBER_UPDATE;
	else if (!strcmp(kind, "member_promote"))
		request->kind = REQUEST_MEMBER_PROMOTE;
	else if (!strcmp(kind, "move_leader"))
		request->kind = REQUEST_MOVE_LEADER;
	else {
		free(request);
		return NULL;
	}
	request->member_id = strtoull(member_id, NULL, 16);
	request->is_learner = is_learner;
	request->from_peer = from;
	request->peer_request_id = (uint64_t)forward_id;
	/* The leader's own request id for the conf change: local id space, answered over the wire. */
	request->request_id = ((uint64_t)forward_id << 16) ^ from ^ (uint64_t)clock_monotonic_ms() << 40;
	size_t count = json_is_array(urls) ? json_array_size(urls) : 0;
	request->peer_urls = xcalloc(count ? count : 1, sizeof(char *));
	for (size_t k = 0; k < count; k++) {
		const char *url = json_string_value(json_array_get(urls, k));
		request->peer_urls[request->peer_urls_count++] = strdup(url ? url : "");
	}
	return request;
}

/* A member starting with --initial-cluster-state existing asks who is in the cluster (etcd: GET /members
 * on a peer URL). The answer goes to the address it gives, under a scratch peer id. */
static void answer_cluster_query(struct members_context *context, json_t *query)
{
	struct node *node = context->node;
	const char *host = NULL;
	json_int_t port = 0;
	if (json_unpack(query, "{s:s, s:I}", "reply_host", &host, "reply_port", &port) != 0 || port <= 0 || port > 65535)
		return;
	char error[256];
	if (transport_add_peer(node->transport, JOIN_REPLY_PEER, host, (uint16_t)port, error, sizeof(error)) != 0)
		return;
	char cluster[17];
	char *blob = membership_encode(&node->membership);
	send_json(node, JOIN_REPLY_PEER, PEER_CLUSTER_REPLY,
	          json_pack("{s:s, s:s}", "cluster_id", hex(node->cluster_id, cluster), "membership", blob));
	free(blob);
}

void members_handle_peer(struct members_context *context, uint64_t from, int kind, const uint8_t *body, size_t length)
{
	json_error_t error;
	json_t *value = json_loadb((const char *)body, length, 0, &error);
	if (!value)
		return;
	if (kind == PEER_CLUSTER_QUERY) {
		answer_cluster_query(context, value);
	} else if (from == 0) {
		/* Join queries are the only thing taken from a member without an id. */
	} else if (kind == PEER_MEMBER_REQUEST) {
		struct node_request *request = request_from_json(value, from);
		if (request)
			members_handle_request(context, request);
	} else if (kind == PEER_MEMBER_REPLY) {
		json_int_t forward_id = 0;
		int code = 0;
		const char *text = NULL, *result = NULL;
		if (json_unpack(value, "{s:I, s:i, s:s, s:s}", "forward_id", &forward_id, "code", &code, "error", &text,
		                "result", &result) == 0) {
			for (size_t k = 0; k < context->pending_count; k++) {
				struct node_request *request = context->pending[k].request;
				if (!context->pending[k].forwarded || request->peer_request_id != (uint64_t)forward_id)
					continue;
				context->pending[k] = context->pending[--context->pending_count];
				complete(context, request, code, *text ? text : NULL, *result ? strdup(result) : NULL);
				break;
			}
		}
	}
	json_decref(value);
}

/* ---- periodic work ---- */

static void publish_attributes(struct members_context *context)
{
	struct node *node = context->node;
	const struct member *self = membership_find(&node->membership, node->member_id);
	if (!self || atomic_load(&node->leader_id) == RAFT_NONE)
		return;
	char **client_urls = NULL;
	size_t client_count = 0;
	char error[256];
	if (peer_url_list_parse(node->flags.advertise_client_urls, &client_urls, &client_count, error, sizeof(error)) != 0)
		return;
	bool same = strcmp(self->name, node->flags.name) == 0 && self->client_urls_count == client_count;
	for (size_t k = 0; same && k < client_count; k++)
		same = strcmp(self->client_urls[k], client_urls[k]) == 0;
	uint64_t now = clock_monotonic_ms();
	if (same || (context->attributes_proposed_at_ms && now - context->attributes_proposed_at_ms < ATTRIBUTES_RETRY_MS)) {
		peer_url_list_free(client_urls, client_count);
		return;
	}
	Membershippb__Attributes attributes = MEMBERSHIPPB__ATTRIBUTES__INIT;
	attributes.name = node->flags.name;
	attributes.client_urls = client_urls;
	attributes.n_client_urls = client_count;
	Membershippb__ClusterMemberAttrSetRequest set = MEMBERSHIPPB__CLUSTER_MEMBER_ATTR_SET_REQUEST__INIT;
	set.member_id = node->member_id;
	set.member_attributes = &attributes;
	Etcdserverpb__RequestHeader header = ETCDSERVERPB__REQUEST_HEADER__INIT;
	header.id = ((node->member_id & 0xffff) << 48) | (now & 0xffffffffffffULL);
	Etcdserverpb__InternalRaftRequest request = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	request.header = &header;
	request.cluster_member_attr_set = &set;
	size_t length = etcdserverpb__internal_raft_request__get_packed_size(&request);
	uint8_t *bytes = xmalloc(length);
	etcdserverpb__internal_raft_request__pack(&request, bytes);
	if (raft_propose(node->raft, bytes, length, NULL) == RAFT_OK)
		context->attributes_proposed_at_ms = now;
	free(bytes);
	peer_url_list_free(client_urls, client_count);
}

void members_tick(struct members_context *context)
{
	struct node *node = context->node;
	/* Each ping carries our clock; the PEER_PONG that echoes it times the round trip to that member. */
	uint8_t ping[9] = {PEER_PING};
	uint64_t sent_ns = clock_monotonic_ns();
	little_endian_put64(ping + 1, sent_ns);
	for (size_t k = 0; k < node->membership.count; k++)
		if (node->membership.members[k].id != node->member_id)
			node_send_peer(node, node->membership.members[k].id, ping, sizeof(ping));
	publish_attributes(context);
	uint64_t now = clock_monotonic_ms();
	struct raft_status status;
	raft_get_status(node->raft, &status);
	size_t kept = 0;
	for (size_t k = 0; k < context->pending_count; k++) {
		struct pending_change *pending = &context->pending[k];
		if (pending->awaiting_transfer && status.role == RAFT_LEADER && status.lead_transferee == RAFT_NONE) {
			/* The transfer was abandoned: remove ourselves directly; the core hands over afterwards. */
			struct node_request *request = pending->request;
			context->pending[k] = context->pending[--context->pending_count];
			k--;
			propose_change(context, request, RAFT_CC_REMOVE_NODE, request->member_id, NULL);
			continue;
		}
		if (now - pending->proposed_at_ms > MEMBER_REQUEST_TIMEOUT_MS) {
			const char *text = pending->request->kind == REQUEST_MOVE_LEADER
			                       ? "etcdserver: request timed out, leader transfer took too long"
			                       : "etcdserver: request timed out";
			fail(context, pending->request, GRPC_DEADLINE_EXCEEDED, text);
		} else {
			context->pending[kept++] = *pending;
		}
	}
	context->pending_count = kept;
}

static bool every_voter_heard_since(struct members_context *context, uint64_t since)
{
	struct node *node = context->node;
	for (size_t k = 0; k < node->membership.count; k++) {
		const struct member *member = &node->membership.members[k];
		if (member->is_learner || member->id == node->member_id)
			continue;
		if (liveness_of(node, member->id)->last_heard_ms < since)
			return false;
	}
	return true;
}

/* Member adds waiting for every voter to be heard (see member_add). */
static void members_probe(struct members_context *context)
{
	struct node *node = context->node;
	uint64_t now = clock_monotonic_ms();
	uint64_t window = 5 * node->flags.heartbeat_interval_ms;
	if (window < 500)
		window = 500;
	for (size_t k = 0; k < context->pending_count; k++) {
		struct pending_change *pending = &context->pending[k];
		if (!pending->probing_since_ms)
			continue;
		bool healthy = every_voter_heard_since(context, pending->probing_since_ms);
		if (!healthy && now - pending->probing_since_ms <= window)
			continue;
		struct node_request *request = pending->request;
		context->pending[k] = context->pending[--context->pending_count];
		k--;
		if (healthy)
			member_add_continue(context, request);
		else
			fail(context, request, GRPC_UNAVAILABLE, membership_strerror(MEMBERSHIP_ERR_UNHEALTHY));
	}
}

void members_after_inputs(struct members_context *context)
{
	struct node *node = context->node;
	members_probe(context);
	uint64_t leader = atomic_load(&node->leader_id);
	size_t kept = 0;
	for (size_t k = 0; k < context->pending_count; k++) {
		struct pending_change *pending = &context->pending[k];
		if (pending->request->kind == REQUEST_MOVE_LEADER && !pending->forwarded && leader == pending->target_id) {
			complete(context, pending->request, GRPC_OK, NULL, list_result(context, NULL));
		} else if (pending->awaiting_leader && leader != RAFT_NONE) {
			/* A leader at last: handle the request now (its age keeps counting toward the timeout only
			 * in the client, which is what etcd's clients see too). */
			members_handle_request(context, pending->request);
		} else if (pending->awaiting_transfer && leader == pending->target_id) {
			/* The new leader removes us; its answer comes back to whoever asked. */
			forward_to_leader(context, pending->request, leader);
		} else {
			context->pending[kept++] = *pending;
		}
	}
	context->pending_count = kept;
}

void members_context_init(struct members_context *context, struct node *node)
{
	memset(context, 0, sizeof(*context));
	context->node = node;
	for (size_t k = 0; k < node->membership.count; k++)
		add_peer_address(node, &node->membership.members[k]);
	for (size_t k = 0; k < node->membership.removed_count; k++)
		transport_mark_removed(node->transport, node->membership.removed[k]);
}

void members_context_free(struct members_context *context)
{
	for (size_t k = 0; k < context->pending_count; k++)
		fail(context, context->pending[k].request, GRPC_UNAVAILABLE, "etcdserver: server stopped");
	free(context->pending);
	context->pending = NULL;
	context->pending_count = 0;
}
