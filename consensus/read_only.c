/* consensus/read_only.c: linearizable reads without log writes (thesis §6.4).
 *
 * ReadIndex: the leader (1) has committed an entry of its own term, so its commit index is at least
 * that of every earlier leader; (2) records the commit index as the read index; (3) confirms it is
 * still leader with a heartbeat round answered by a quorum; then the read may be served once the
 * state machine has applied the read index. The lease variant skips (3), trusting CheckQuorum. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void read_only_add_request(struct read_only *read_only, uint64_t index, uint64_t from, const uint8_t *context,
                           size_t length, uint64_t self)
{
	if (read_only->count == read_only->capacity) {
		read_only->capacity = read_only->capacity ? read_only->capacity * 2 : 16;
		read_only->queue = xrealloc(read_only->queue, read_only->capacity * sizeof(struct read_request));
	}
	struct read_request *request = &read_only->queue[read_only->count++];
	memset(request, 0, sizeof(*request));
	request->index = index;
	request->from = from;
	request->context = xmemdup(context, length);
	request->context_length = length;
	id_set_add(&request->acks, self);
}

struct read_request *read_only_find(struct read_only *read_only, const uint8_t *context, size_t length)
{
	/* Newest first: heartbeats carry the newest request's context. */
	for (size_t k = read_only->count; k > 0; k--) {
		struct read_request *request = &read_only->queue[k - 1];
		if (request->context_length == length && memcmp(request->context, context, length) == 0)
			return request;
	}
	return NULL;
}

void read_only_free_requests(struct read_request *requests, size_t count)
{
	for (size_t k = 0; k < count; k++) {
		free(requests[k].context);
		id_set_free(&requests[k].acks);
	}
}

void read_only_drop_waiting(struct read_only *read_only);

size_t read_only_advance(struct read_only *read_only, const struct read_request *through)
{
	return (size_t)(through - read_only->queue) + 1;
}

const uint8_t *read_only_last_context(const struct read_only *read_only, size_t *length)
{
	if (read_only->count == 0) {
		*length = 0;
		return NULL;
	}
	*length = read_only->queue[read_only->count - 1].context_length;
	return read_only->queue[read_only->count - 1].context;
}

void read_only_reset(struct read_only *read_only)
{
	read_only_free_requests(read_only->queue, read_only->count);
	read_only->count = 0;
	read_only_drop_waiting(read_only);
}

void read_only_free(struct read_only *read_only)
{
	read_only_reset(read_only);
	free(read_only->queue);
	free(read_only->waiting);
	memset(read_only, 0, sizeof(*read_only));
}

void raft_add_read_state(raft_t *r, uint64_t index, const uint8_t *context, size_t length)
{
	if (r->read_states_count == r->read_states_capacity) {
		r->read_states_capacity = r->read_states_capacity ? r->read_states_capacity * 2 : 16;
		r->read_states = xrealloc(r->read_states, r->read_states_capacity * sizeof(struct raft_read_state));
	}
	struct raft_read_state *state = &r->read_states[r->read_states_count++];
	state->index = index;
	state->context = arena_memdup(&r->arena, context, length);
	state->context_length = length;
}

/* Answers a confirmed request: locally as a read state, or to the follower that forwarded it. */
static void respond(raft_t *r, uint64_t from, uint64_t index, const uint8_t *context, size_t length)
{
	if (from == RAFT_NONE || from == r->id) {
		raft_add_read_state(r, index, context, length);
		return;
	}
	Raftpb__Message *response = raft_new_message(r, RAFT_MSG_READ_INDEX_RESP, from);
	response->index = index;
	response->context.data = arena_memdup(&r->arena, context, length);
	response->context.len = length;
	raft_send(r, response);
}

static bool committed_entry_in_current_term(const raft_t *r)
{
	return log_term(&r->log, r->log.committed) == r->term;
}

static void accept_request(raft_t *r, const Raftpb__Message *message)
{
	if (r->config.read_only_option == RAFT_READ_ONLY_LEASE_BASED) {
		respond(r, message->from, r->log.committed, message->context.data, message->context.len);
		return;
	}
	read_only_add_request(&r->read_only, r->log.committed, message->from, message->context.data,
	                      message->context.len, r->id);
	/* Our own ack: a single voter is its own quorum and answers at once. */
	Raftpb__Message ack = RAFTPB__MESSAGE__INIT;
	ack.from = r->id;
	ack.context = message->context;
	read_index_on_heartbeat_response(r, &ack);
	if (r->read_only.count > 0)
		replication_broadcast_heartbeat(r, message->context.data, message->context.len);
}

int read_index_handle(raft_t *r, const Raftpb__Message *message)
{
	if (!committed_entry_in_current_term(r)) {
		/* §6.4 step 1: wait until an entry of this term commits (the leader's empty entry). The copy
		 * lives outside the arena, which is emptied at every advance. */
		struct read_only *read_only = &r->read_only;
		if (read_only->waiting_count == read_only->waiting_capacity) {
			read_only->waiting_capacity = read_only->waiting_capacity ? read_only->waiting_capacity * 2 : 16;
			read_only->waiting =
			    xrealloc(read_only->waiting, read_only->waiting_capacity * sizeof(Raftpb__Message *));
		}
		Raftpb__Message *copy = xmalloc(sizeof(*copy));
		raftpb__message__init(copy);
		copy->type = message->type;
		copy->from = message->from;
		copy->context.data = xmemdup(message->context.data, message->context.len);
		copy->context.len = message->context.len;
		read_only->waiting[read_only->waiting_count++] = copy;
		return RAFT_OK;
	}
	accept_request(r, message);
	return RAFT_OK;
}

void read_index_release_waiting(raft_t *r)
{
	struct read_only *read_only = &r->read_only;
	if (read_only->waiting_count == 0 || !committed_entry_in_current_term(r))
		return;
	size_t count = read_only->waiting_count;
	Raftpb__Message **waiting = read_only->waiting;
	read_only->waiting = NULL;
	read_only->waiting_count = 0;
	read_only->waiting_capacity = 0;
	for (size_t k = 0; k < count; k++) {
		accept_request(r, waiting[k]);
		free(waiting[k]->context.data);
		free(waiting[k]);
	}
	free(waiting);
}

void read_only_drop_waiting(struct read_only *read_only)
{
	for (size_t k = 0; k < read_only->waiting_count; k++) {
		free(read_only->waiting[k]->context.data);
		free(read_only->waiting[k]);
	}
	read_only->waiting_count = 0;
}

static int ack_of(const void *context, uint64_t id)
{
	return id_set_contains(context, id) ? 1 : 0;
}

void read_index_on_heartbeat_response(raft_t *r, const Raftpb__Message *message)
{
	if (r->config.read_only_option != RAFT_READ_ONLY_SAFE || message->context.len == 0)
		return;
	struct read_request *request = read_only_find(&r->read_only, message->context.data, message->context.len);
	if (!request)
		return;
	id_set_add(&request->acks, message->from);
	if (majority_vote_result(&r->tracker.config.voters, ack_of, &request->acks) != VOTE_WON ||
	    majority_vote_result(&r->tracker.config.voters_outgoing, ack_of, &request->acks) != VOTE_WON)
		return;
	/* A quorum confirmed leadership after this request (and every older one) was recorded. */
	size_t released = read_only_advance(&r->read_only, request);
	for (size_t k = 0; k < released; k++) {
		struct read_request *done = &r->read_only.queue[k];
		respond(r, done->from, done->index, done->context, done->context_length);
	}
	read_only_free_requests(r->read_only.queue, released);
	memmove(r->read_only.queue, r->read_only.queue + released,
	        (r->read_only.count - released) * sizeof(struct read_request));
	r->read_only.count -= released;
}

int read_index_handle_response(raft_t *r, const Raftpb__Message *message)
{
	raft_add_read_state(r, message->index, message->context.data, message->context.len);
	return RAFT_OK;
}
