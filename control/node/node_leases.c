/* control/node/node_leases.c: the leader's lease clocks (see node_leases.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "little_endian.h"
#include "log.h"
#include "node_leases.h"
#include "raft_internal.pb-c.h"

/* A revoke that has not been applied after this long is proposed again (a lost leadership, a dropped
 * proposal). */
enum { REVOKE_RETRY_MS = 3000, FORWARD_TIMEOUT_MS = 5000 };
/* etcd's leaseRevokeRate (1,000 a second), refilled continuously. At most one heartbeat tick's worth is
 * proposed at once (100 at etcd's default 100 ms): the revokes of one tick join one batch, applied as one
 * step that every other write waits behind, so etcd's burst of half a second's worth (its lessor checks
 * every 500 ms) would make that step five times longer for no gain in rate. */
enum { REVOKES_PER_SECOND = 1000 };
/* Peer body: operation, forward id, lease id, value (remaining or granted TTL; -1: no such lease). */
enum { LEASE_OPERATION_RENEW = 1, LEASE_OPERATION_TIME_TO_LIVE = 2, LEASE_MESSAGE_BYTES = 1 + 8 + 8 + 8 };

void lease_clocks_init(struct lease_clocks *clocks, struct node *node)
{
	memset(clocks, 0, sizeof(*clocks));
	clocks->node = node;
	clocks->next_counter = node_request_counter_start();
}

void lease_clocks_free(struct lease_clocks *clocks)
{
	free(clocks->clocks);
	free(clocks->slots);
	for (size_t k = 0; k < clocks->forwarded_count; k++)
		node_request_free(clocks->forwarded[k].request);
	free(clocks->forwarded);
	for (size_t k = 0; k < clocks->waiting_count; k++)
		node_request_free(clocks->waiting[k].request);
	free(clocks->waiting);
	memset(clocks, 0, sizeof(*clocks));
}

/* ---- the index of clocks by lease id ---- */

static size_t slot_of(const struct lease_clocks *clocks, int64_t id)
{
	uint64_t hash = (uint64_t)id * 0x9e3779b97f4a7c15u; /* lease ids are often sequential */
	return (size_t)(hash >> 32) & (clocks->slot_capacity - 1);
}

/* The slot holding id, or the free slot where it would go. */
static size_t probe(const struct lease_clocks *clocks, int64_t id)
{
	size_t slot = slot_of(clocks, id);
	while (clocks->slots[slot] != 0 && clocks->clocks[clocks->slots[slot] - 1].id != id)
		slot = (slot + 1) & (clocks->slot_capacity - 1);
	return slot;
}

static void index_rebuild(struct lease_clocks *clocks, size_t capacity)
{
	free(clocks->slots);
	clocks->slot_capacity = capacity;
	clocks->slots = xcalloc(capacity, sizeof(*clocks->slots));
	for (size_t k = 0; k < clocks->count; k++)
		clocks->slots[probe(clocks, clocks->clocks[k].id)] = (uint32_t)(k + 1);
}

/* Linear probing's deletion: the entries after the freed slot that could sit in it move back. */
static void index_remove_slot(struct lease_clocks *clocks, size_t freed)
{
	size_t mask = clocks->slot_capacity - 1;
	clocks->slots[freed] = 0;
	for (size_t slot = (freed + 1) & mask; clocks->slots[slot] != 0; slot = (slot + 1) & mask) {
		size_t home = slot_of(clocks, clocks->clocks[clocks->slots[slot] - 1].id);
		/* It may move to freed unless its home lies cyclically in (freed, slot]. */
		bool stays = freed <= slot ? (home > freed && home <= slot) : (home > freed || home <= slot);
		if (stays)
			continue;
		clocks->slots[freed] = clocks->slots[slot];
		clocks->slots[slot] = 0;
		freed = slot;
	}
}

static struct lease_clock *find(struct lease_clocks *clocks, int64_t id)
{
	if (clocks->slot_capacity == 0)
		return NULL;
	uint32_t position = clocks->slots[probe(clocks, id)];
	return position ? &clocks->clocks[position - 1] : NULL;
}

/* A new clock for id (not in the clocks yet), uninitialised but for its id. */
static struct lease_clock *clock_add(struct lease_clocks *clocks, int64_t id)
{
	if (clocks->count == clocks->capacity) {
		clocks->capacity = clocks->capacity ? clocks->capacity * 2 : 64;
		clocks->clocks = xrealloc(clocks->clocks, clocks->capacity * sizeof(struct lease_clock));
	}
	if (2 * (clocks->count + 1) > clocks->slot_capacity)
		index_rebuild(clocks, clocks->slot_capacity ? 2 * clocks->slot_capacity : 128);
	struct lease_clock *clock = &clocks->clocks[clocks->count++];
	clock->id = id;
	clocks->slots[probe(clocks, id)] = (uint32_t)clocks->count;
	return clock;
}

/* The last clock moves into the removed one's place. */
static void clock_remove(struct lease_clocks *clocks, struct lease_clock *clock)
{
	index_remove_slot(clocks, probe(clocks, clock->id));
	struct lease_clock *last = &clocks->clocks[clocks->count - 1];
	if (clock != last) {
		clocks->slots[probe(clocks, last->id)] = (uint32_t)(clock - clocks->clocks + 1);
		*clock = *last;
	}
	clocks->count--;
}

void lease_clocks_update(struct lease_clocks *clocks, const struct lease_changes *changes)
{
	if (changes->reset) {
		clocks->count = 0;
		if (clocks->slot_capacity)
			memset(clocks->slots, 0, clocks->slot_capacity * sizeof(*clocks->slots));
	}
	uint64_t now = clock_monotonic_ms();
	for (size_t k = 0; k < changes->count; k++) {
		const struct lease_change *change = &changes->changes[k];
		struct lease_clock *clock = find(clocks, change->id);
		if (change->revoked) {
			if (clock)
				clock_remove(clocks, clock);
			continue;
		}
		if (!clock)
			clock = clock_add(clocks, change->id);
		clock->ttl = change->ttl;
		clock->expiry_ms = now + (uint64_t)change->ttl * 1000u;
		clock->revoke_sent_ms = 0;
	}
}

/* etcd's Promote: a new leader cannot know how long ago the old one renewed, so every lease gets its full
 * TTL. Done before anything reads the clocks as the leader's — a renewal served between the election and
 * the next tick would otherwise see a follower's stale expiry and answer "expired". */
static void sync_leadership(struct lease_clocks *clocks, bool is_leader)
{
	if (is_leader != clocks->leader) {
		clocks->leadership_check_token = 0;
		clocks->leadership_confirmed_as_of_ms = 0;
	}
	if (is_leader && !clocks->leader) {
		uint64_t now = clock_monotonic_ms();
		for (size_t k = 0; k < clocks->count; k++) {
			clocks->clocks[k].expiry_ms = now + (uint64_t)clocks->clocks[k].ttl * 1000u;
			clocks->clocks[k].revoke_sent_ms = 0;
		}
	}
	clocks->leader = is_leader;
}

/* ---- answers ---- */

/* One LeaseKeepAliveResponse on the client's stream: TTL 0 when the lease is gone (etcd). */
static void answer_renew(struct node *node, const struct node_request *request, int64_t ttl)
{
	Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	node_fill_response_header(node, &header);
	Etcdserverpb__LeaseKeepAliveResponse response = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
	response.header = &header;
	response.id = request->lease_id;
	response.ttl = ttl < 0 ? 0 : ttl;
	struct node_reply *reply = xcalloc(1, sizeof(*reply));
	reply->request_id = request->request_id;
	reply->call_id = request->call_id;
	reply->kv.response_length = etcdserverpb__lease_keep_alive_response__get_packed_size(&response);
	reply->kv.response = xmalloc(reply->kv.response_length ? reply->kv.response_length : 1);
	etcdserverpb__lease_keep_alive_response__pack(&response, reply->kv.response);
	node_post_reply(node, reply);
}

/* The remaining TTL is known: the storage thread adds the granted TTL and keys and answers. */
static void answer_time_to_live(struct node *node, struct node_request *request, int64_t remaining)
{
	request->lease_remaining_ttl = remaining;
	struct storage_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = STORAGE_MAIL_CLIENT_REQUEST;
	mail->request = request;
	storage_mailbox_post(&node->storage_inbox, mail);
}

static void answer_error(struct node *node, struct node_request *request, int code, const char *text)
{
	struct node_reply *reply = xcalloc(1, sizeof(*reply));
	reply->request_id = request->request_id;
	reply->call_id = request->call_id;
	reply->end_call = request->call_id != 0;
	reply->kv.grpc_code = code;
	snprintf(reply->kv.error, sizeof(reply->kv.error), "%s", text);
	node_post_reply(node, reply);
	node_request_free(request);
}

/* The leader's view: renew gives the granted TTL, time-to-live the whole seconds left; -1: no lease. */
static int64_t serve_locally(struct lease_clocks *clocks, int operation, int64_t lease_id)
{
	struct lease_clock *clock = find(clocks, lease_id);
	if (!clock)
		return -1;
	uint64_t now = clock_monotonic_ms();
	if (operation == LEASE_OPERATION_RENEW) {
		if (clock->expiry_ms <= now)
			return -1; /* expired: its revoke is on the way */
		clock->expiry_ms = now + (uint64_t)clock->ttl * 1000u;
		return clock->ttl;
	}
	return clock->expiry_ms > now ? (int64_t)((clock->expiry_ms - now) / 1000u) : 0;
}

static void complete(struct lease_clocks *clocks, struct node_request *request, int64_t value)
{
	if (request->kind == REQUEST_LEASE_RENEW) {
		answer_renew(clocks->node, request, value);
		node_request_free(request);
	} else {
		answer_time_to_live(clocks->node, request, value);
	}
}

static void send_lease_message(struct node *node, uint64_t to, int kind, int operation, uint64_t forward_id,
                               int64_t lease_id, int64_t value)
{
	uint8_t bytes[1 + LEASE_MESSAGE_BYTES];
	bytes[0] = (uint8_t)kind;
	bytes[1] = (uint8_t)operation;
	little_endian_put64(bytes + 2, forward_id);
	little_endian_put64(bytes + 10, (uint64_t)lease_id);
	little_endian_put64(bytes + 18, (uint64_t)value);
	char error[256];
	transport_send(node->transport, to, bytes, sizeof(bytes), error, sizeof(error));
}

/* An unknown lease on the leader: answered now when the clocks cover everything committed (it does not
 * exist), else it waits for them (see struct waiting_lease_question). */
static bool wait_for_grant(struct lease_clocks *clocks, struct waiting_lease_question question)
{
	if (find(clocks, question.lease_id) || clocks->covered_index >= question.wait_index)
		return false;
	if (clocks->waiting_count == clocks->waiting_capacity) {
		clocks->waiting_capacity = clocks->waiting_capacity ? clocks->waiting_capacity * 2 : 16;
		clocks->waiting = xreallocarray(clocks->waiting, clocks->waiting_capacity, sizeof(*clocks->waiting));
	}
	clocks->waiting[clocks->waiting_count++] = question;
	return true;
}

static void answer_question(struct lease_clocks *clocks, struct waiting_lease_question *question, int64_t value)
{
	if (question->request) {
		if (value == -2)
			answer_error(clocks->node, question->request, GRPC_UNAVAILABLE, "etcdserver: not leader");
		else
			complete(clocks, question->request, value);
	} else {
		send_lease_message(clocks->node, question->from, PEER_LEASE_REPLY, question->operation, question->forward_id,
		                   question->lease_id, value);
	}
}

void lease_clocks_covered(struct lease_clocks *clocks, uint64_t applied_before_mail, bool is_leader)
{
	if (applied_before_mail > clocks->covered_index)
		clocks->covered_index = applied_before_mail;
	sync_leadership(clocks, is_leader);
	size_t kept = 0;
	for (size_t k = 0; k < clocks->waiting_count; k++) {
		struct waiting_lease_question *question = &clocks->waiting[k];
		if (!is_leader)
			answer_question(clocks, question, -2); /* the asker fails it rather than hear "expired" */
		else if (find(clocks, question->lease_id) || clocks->covered_index >= question->wait_index)
			answer_question(clocks, question, serve_locally(clocks, question->operation, question->lease_id));
		else
			clocks->waiting[kept++] = *question;
	}
	clocks->waiting_count = kept;
}

void lease_clocks_handle_request(struct lease_clocks *clocks, struct node_request *request, bool is_leader,
                                 uint64_t leader_id, uint64_t commit_index)
{
	int operation = request->kind == REQUEST_LEASE_RENEW ? LEASE_OPERATION_RENEW : LEASE_OPERATION_TIME_TO_LIVE;
	if (request->kind == REQUEST_LEASE_TIME_TO_LIVE && request->lease_id == 0) {
		/* The client thread passes the packed request; the lease id is in it. */
		Etcdserverpb__LeaseTimeToLiveRequest *ttl =
		    etcdserverpb__lease_time_to_live_request__unpack(NULL, request->payload_length, request->payload);
		if (ttl) {
			request->lease_id = ttl->id;
			etcdserverpb__lease_time_to_live_request__free_unpacked(ttl, NULL);
		}
	}
	sync_leadership(clocks, is_leader);
	if (is_leader) {
		struct waiting_lease_question question = {.request = request, .operation = operation,
		                                          .lease_id = request->lease_id, .wait_index = commit_index};
		if (!wait_for_grant(clocks, question))
			complete(clocks, request, serve_locally(clocks, operation, request->lease_id));
		return;
	}
	if (leader_id == 0) {
		answer_error(clocks->node, request, GRPC_UNAVAILABLE, "etcdserver: no leader");
		return;
	}
	if (clocks->forwarded_count == clocks->forwarded_capacity) {
		clocks->forwarded_capacity = clocks->forwarded_capacity ? clocks->forwarded_capacity * 2 : 16;
		clocks->forwarded =
		    xrealloc(clocks->forwarded, clocks->forwarded_capacity * sizeof(struct forwarded_lease_request));
	}
	clocks->forwarded[clocks->forwarded_count].request = request;
	clocks->forwarded[clocks->forwarded_count].sent_ms = clock_monotonic_ms();
	clocks->forwarded_count++;
	send_lease_message(clocks->node, leader_id, PEER_LEASE_REQUEST, operation, request->request_id, request->lease_id, 0);
}

void lease_clocks_handle_peer(struct lease_clocks *clocks, uint64_t from, int kind, const uint8_t *body, size_t length,
                              bool is_leader, uint64_t commit_index)
{
	if (length != LEASE_MESSAGE_BYTES)
		return;
	int operation = body[0];
	uint64_t forward_id = little_endian_get64(body + 1);
	int64_t lease_id = (int64_t)little_endian_get64(body + 9);
	int64_t value = (int64_t)little_endian_get64(body + 17);
	if (operation != LEASE_OPERATION_RENEW && operation != LEASE_OPERATION_TIME_TO_LIVE)
		return;
	sync_leadership(clocks, is_leader);
	if (kind == PEER_LEASE_REQUEST) {
		/* A member that thinks we lead: answer from our clocks. */
		struct waiting_lease_question question = {.from = from, .forward_id = forward_id, .operation = operation,
		                                          .lease_id = lease_id, .wait_index = commit_index};
		if (is_leader && wait_for_grant(clocks, question))
			return;
		/* Not leader (any more): the asker fails the request rather than saying "expired". */
		int64_t answer = is_leader ? serve_locally(clocks, operation, lease_id) : -2;
		send_lease_message(clocks->node, from, PEER_LEASE_REPLY, operation, forward_id, lease_id, answer);
		return;
	}
	for (size_t k = 0; k < clocks->forwarded_count; k++) {
		struct node_request *request = clocks->forwarded[k].request;
		if (request->request_id != forward_id)
			continue;
		clocks->forwarded[k] = clocks->forwarded[--clocks->forwarded_count];
		if (value == -2)
			answer_error(clocks->node, request, GRPC_UNAVAILABLE, "etcdserver: not leader");
		else
			complete(clocks, request, value);
		return;
	}
}

static void propose_revoke(struct lease_clocks *clocks, struct lease_clock *clock, uint64_t term)
{
	struct node *node = clocks->node;
	Etcdserverpb__LeaseRevokeRequest revoke = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	revoke.id = clock->id;
	Etcdserverpb__RequestHeader header = ETCDSERVERPB__REQUEST_HEADER__INIT;
	/* Channel 0: the control thread drops the answer, nobody waits for it. */
	header.id = node_request_id(node->member_id, 0, clocks->next_counter++);
	/* As root, as etcd's WithRoot: the member's own revoke of an expired lease passes auth's checks whatever
	 * keys the lease holds. */
	header.username = AUTH_ROOT;
	header.auth_revision = node_auth_revision(&node->auth);
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.header = &header;
	internal.lease_revoke = &revoke;
	struct node_request *request = xcalloc(1, sizeof(*request));
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
	request->kind = REQUEST_PROPOSE;
	request->request_id = header.id;
	request->leader_term = term;
	request->payload_length = etcdserverpb__internal_raft_request__get_packed_size(&internal);
	request->payload = xmalloc(request->payload_length);
	etcdserverpb__internal_raft_request__pack(&internal, request->payload);
	/* Through the core's own inbox: it joins the next batch like any client write. */
	mail->kind = CORE_MAIL_REQUEST;
	mail->request = request;
	core_mailbox_post(&node->core_inbox, mail);
	log_write("info", "revoking an expired lease", "\"lease-id\":\"%llx\"", (unsigned long long)clock->id);
}

/* Starts a read-index round whose confirmation says this member still led when it began; one at a time,
 * started again if the core dropped it (a lost leadership drops pending reads). */
static void begin_leadership_check(struct lease_clocks *clocks, uint64_t now, uint64_t term)
{
	if (clocks->leadership_check_token && now - clocks->leadership_check_started_ms < REVOKE_RETRY_MS)
		return;
	uint64_t token = node_request_id(clocks->node->member_id, 0, clocks->next_counter++);
	uint8_t context[8];
	little_endian_put64(context, token);
	if (raft_read_index(clocks->node->raft, context, sizeof(context)) != RAFT_OK) {
		clocks->leadership_check_token = 0;
		return;
	}
	clocks->leadership_check_token = token;
	clocks->leadership_check_started_ms = now;
	clocks->leadership_check_term = term;
}

bool lease_clocks_read_confirmed(struct lease_clocks *clocks, uint64_t token, bool is_leader, uint64_t term)
{
	if (token == 0 || token != clocks->leadership_check_token)
		return false;
	clocks->leadership_check_token = 0;
	if (is_leader && clocks->leader && term == clocks->leadership_check_term)
		clocks->leadership_confirmed_as_of_ms = clocks->leadership_check_started_ms;
	return true;
}

void lease_clocks_tick(struct lease_clocks *clocks, bool is_leader, uint64_t term)
{
	uint64_t now = clock_monotonic_ms();
	sync_leadership(clocks, is_leader);
	if (is_leader) {
		uint64_t burst = REVOKES_PER_SECOND * clocks->node->flags.heartbeat_interval_ms / 1000;
		if (burst < 1)
			burst = 1;
		uint64_t refill = (now - clocks->revoke_allowance_ms) * REVOKES_PER_SECOND / 1000;
		if (refill > 0) {
			clocks->revoke_allowance = clocks->revoke_allowance + refill > burst ? burst
			                                                                     : clocks->revoke_allowance + refill;
			clocks->revoke_allowance_ms = now;
		}
		bool unconfirmed = false;
		for (size_t k = 0; k < clocks->count && clocks->revoke_allowance > 0; k++) {
			struct lease_clock *clock = &clocks->clocks[k];
			if (clock->expiry_ms > now)
				continue;
			if (clock->revoke_sent_ms && now - clock->revoke_sent_ms < REVOKE_RETRY_MS)
				continue;
			if (clocks->leadership_confirmed_as_of_ms < clock->expiry_ms) {
				unconfirmed = true;
				continue;
			}
			clock->revoke_sent_ms = now;
			clocks->revoke_allowance--;
			propose_revoke(clocks, clock, term);
		}
		if (unconfirmed)
			begin_leadership_check(clocks, now, term);
	}
	size_t kept = 0;
	for (size_t k = 0; k < clocks->forwarded_count; k++) {
		if (now - clocks->forwarded[k].sent_ms > FORWARD_TIMEOUT_MS)
			answer_error(clocks->node, clocks->forwarded[k].request, GRPC_UNAVAILABLE,
			             "etcdserver: request timed out");
		else
			clocks->forwarded[kept++] = clocks->forwarded[k];
	}
	clocks->forwarded_count = kept;
}
