/* control/node/node_core.c: the Raft core thread, a run-to-completion loop. It alone touches the Raft core,
 * the member list, the WAL and the transport's receive side.
 *
 * Loop: receive what the transport has (each message stepped at once, no copy, no hand-off), take the
 * fsyncs the WAL completed (held acknowledgements leave, raft_persisted), take the mail (client requests,
 * snapshot and lease news), tick when the heartbeat timer fired, propose all queued client writes as one
 * batch, then for each Ready: send the leader's messages, write the WAL (node_core_wal.c) and hand what
 * is committed to the storage thread; flush the transport once. This is the one batching point (as
 * redis' beforeSleep is for its writes): many clients, one Raft append, one WAL write; and a follower
 * receives, persists and acknowledges an append without leaving this thread. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "failpoint.h"
#include "little_endian.h"
#include "log.h"
#include "node.h"
#include "node_compactor.h"
#include "node_core_wal.h"
#include "node_leases.h"
#include "node_members.h"
#include "node_snapshot.h"
#include "raft_internal.pb-c.h"

/* Client writes older than this without an answer fail (etcd's request timeout is 7 s by default). */
enum { REQUEST_TIMEOUT_MS = 7000 };

struct queued_proposal {
	struct node_request *request;
	uint64_t queued_at_ms;
};

struct core_context {
	struct node *node;
	struct queued_proposal *proposals; /* waiting for a leader */
	size_t proposals_count;
	size_t proposals_capacity;
	struct pending_read *reads;        /* waiting for a read index: batch 0 not asked for yet */
	size_t reads_count;
	size_t reads_capacity;
	size_t reads_unasked;              /* of those, how many wait for the turn's read index request */
	uint64_t read_batches;             /* read index requests made, for their tokens */
	struct members_context members;
	struct lease_clocks leases;
	struct compactor compactor;
	struct core_wal *wal;
	bool stop_after_ready;             /* removed from the cluster: stop once this Ready is handled */
};


/* ---- sending ---- */

static uint8_t *pack_raft_message(const Raftpb__Message *message, size_t *length)
{
	size_t size = raftpb__message__get_packed_size(message);
	uint8_t *bytes = xmalloc(size + 1);
	bytes[0] = PEER_RAFT;
	raftpb__message__pack(message, bytes + 1);
	*length = size + 1;
	return bytes;
}

/* Counts a send (etcd_network_peer_sent_bytes_total / _sent_failures_total); false when refused. */
static bool count_sent(struct node *node, uint64_t to, size_t length, int rc)
{
	struct node_peer_metrics *metrics = node_peer_metrics_of(node, to);
	if (metrics && rc < 0)
		atomic_fetch_add_explicit(&metrics->sent_failures, 1, memory_order_relaxed);
	else if (metrics)
		atomic_fetch_add_explicit(&metrics->sent_bytes, length, memory_order_relaxed);
	return rc >= 0;
}

static bool send_counted(struct node *node, uint64_t to, const uint8_t *bytes, size_t length)
{
	char error[256];
	return count_sent(node, to, length, transport_send(node->transport, to, bytes, length, error, sizeof(error)));
}

void node_send_peer(struct node *node, uint64_t to, const uint8_t *bytes, size_t length)
{
	/* unreachable or refused: counted, and Raft retries */
	(void)send_counted(node, to, bytes, length);
}

/* etcd_server_heartbeat_send_failures_total, as etcd's timeout detector counts it: a heartbeat to a peer
 * that leaves more than two heartbeat intervals after the previous one (the leader was too busy, most
 * likely waiting on its disk), or that the transport refused. */
static void note_heartbeat(struct node *node, uint64_t to, bool sent)
{
	struct node_peer_metrics *metrics = node_peer_metrics_of(node, to);
	if (!metrics)
		return;
	uint64_t now = clock_monotonic_ms();
	bool late = metrics->last_heartbeat_ms != 0 && now - metrics->last_heartbeat_ms > 2 * node->flags.heartbeat_interval_ms;
	metrics->last_heartbeat_ms = now;
	if (late || !sent) {
		atomic_fetch_add_explicit(&node->heartbeat_send_failures, 1, memory_order_relaxed);
		if (late)
			log_write("warn", "leader failed to send out heartbeat on time; took too long, leader is overloaded "
			          "likely from slow disk", "\"to\":\"%" PRIx64 "\",\"heartbeat-interval\":\"%" PRIu64 "ms\"", to,
			          node->flags.heartbeat_interval_ms);
	}
}

static void send_raft_now(struct node *node, const Raftpb__Message *message)
{
	size_t length;
	uint8_t *bytes = pack_raft_message(message, &length);
	/* The transport takes the packed message: the kernel transport sends its frames from it (a header
	 * per frame, the fragment where it lies) instead of copying every fragment of a big append. */
	char error[256];
	bool sent = count_sent(node, message->to, length,
	                       transport_send_owned(node->transport, message->to, bytes, length, error, sizeof(error)));
	if (message->type == RAFT_MSG_HEARTBEAT)
		note_heartbeat(node, message->to, sent);
}

/* A PEER_PONG: our clock from the ping it answers, so now minus it is the round trip to that member. */
static void observe_round_trip(struct node *node, uint64_t from, const uint8_t *body, size_t length)
{
	struct node_peer_metrics *metrics = node_peer_metrics_of(node, from);
	if (!metrics || length != 8)
		return;
	uint64_t sent_ns = little_endian_get64(body);
	uint64_t now = clock_monotonic_ns();
	if (sent_ns <= now)
		histogram_observe_ns(&metrics->round_trip, now - sent_ns);
}

/* ---- requests from the control thread ---- */

static void reply_kv_error(struct node *node, uint64_t request_id, int code, const char *text)
{
	struct node_reply *reply = xcalloc(1, sizeof(*reply));
	reply->request_id = request_id;
	reply->kv.grpc_code = code;
	snprintf(reply->kv.error, sizeof(reply->kv.error), "%s", text);
	node_post_reply(node, reply);
}

static void queue_proposal(struct core_context *context, struct node_request *request)
{
	if (context->proposals_count == context->proposals_capacity) {
		context->proposals_capacity = context->proposals_capacity ? context->proposals_capacity * 2 : 256;
		context->proposals =
		    xrealloc(context->proposals, context->proposals_capacity * sizeof(struct queued_proposal));
	}
	context->proposals[context->proposals_count].request = request;
	context->proposals[context->proposals_count].queued_at_ms = clock_monotonic_ms();
	context->proposals_count++;
}

/* Client requests packed into few entries: each entry an InternalRaftRequest whose `batch` holds up to
 * ENTRY_PACK_BYTES of requests (small entries keep each MsgApp to a few datagrams), one request alone as
 * itself. One append, one WAL write, few entries, however many clients. */
enum { ENTRY_PACK_BYTES = 48 * 1024 };

struct packed_entries {
	struct raft_buffer *buffers;
	uint8_t **owned; /* packed batch entries to free */
	size_t count;
	size_t owned_count;
};

static void packed_entries_free(struct packed_entries *packed)
{
	for (size_t k = 0; k < packed->owned_count; k++)
		free(packed->owned[k]);
	free(packed->owned);
	free(packed->buffers);
}

static struct packed_entries pack_proposals(const struct queued_proposal *proposals, size_t count)
{
	struct packed_entries packed = {0};
	packed.buffers = xcalloc(count, sizeof(struct raft_buffer));
	packed.owned = xcalloc(count, sizeof(uint8_t *));
	ProtobufCBinaryData *items = xcalloc(count, sizeof(ProtobufCBinaryData));
	size_t first = 0;
	while (first < count) {
		size_t last = first, bytes = proposals[first].request->payload_length;
		while (last + 1 < count && bytes + proposals[last + 1].request->payload_length <= ENTRY_PACK_BYTES)
			bytes += proposals[++last].request->payload_length;
		struct raft_buffer *buffer = &packed.buffers[packed.count++];
		if (last == first) {
			buffer->data = proposals[first].request->payload;
			buffer->length = proposals[first].request->payload_length;
		} else {
			Etcdserverpb__InternalRaftRequest batch = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
			batch.n_batch = last - first + 1;
			batch.batch = items;
			for (size_t k = first; k <= last; k++) {
				items[k - first].data = proposals[k].request->payload;
				items[k - first].len = proposals[k].request->payload_length;
			}
			size_t length = etcdserverpb__internal_raft_request__get_packed_size(&batch);
			uint8_t *data = xmalloc(length);
			etcdserverpb__internal_raft_request__pack(&batch, data);
			packed.owned[packed.owned_count++] = data;
			buffer->data = data;
			buffer->length = length;
		}
		first = last + 1;
	}
	free(items);
	return packed;
}

/* Proposes every queued write in one batch; without a leader they wait (and expire). */
static void flush_proposals(struct core_context *context)
{
	struct node *node = context->node;
	if (context->proposals_count == 0)
		return;
	struct raft_status status;
	raft_get_status(node->raft, &status);
	if (status.leader == RAFT_NONE) {
		uint64_t now = clock_monotonic_ms();
		size_t kept = 0;
		for (size_t k = 0; k < context->proposals_count; k++) {
			struct queued_proposal *proposal = &context->proposals[k];
			if (now - proposal->queued_at_ms > REQUEST_TIMEOUT_MS) {
				atomic_fetch_add_explicit(&node->proposals_failed, 1, memory_order_relaxed);
				reply_kv_error(node, proposal->request->request_id, GRPC_UNAVAILABLE, "etcdserver: request timed out");
				node_request_free(proposal->request);
			} else {
				context->proposals[kept++] = *proposal;
			}
		}
		context->proposals_count = kept;
		return;
	}
	/* A lease revoke decided by the leader of another term, or by a member that no longer leads, is dropped
	 * here: forwarded to a new leader it would revoke a lease that leader keeps alive. */
	size_t count = 0;
	for (size_t k = 0; k < context->proposals_count; k++) {
		struct node_request *request = context->proposals[k].request;
		if (request->leader_term && (status.role != RAFT_LEADER || status.term != request->leader_term)) {
			node_request_free(request);
			continue;
		}
		context->proposals[count++] = context->proposals[k];
	}
	context->proposals_count = count;
	if (count == 0)
		return;
	struct packed_entries packed = pack_proposals(context->proposals, count);
	int rc = raft_propose_batch(node->raft, packed.buffers, packed.count, NULL);
	packed_entries_free(&packed);
	for (size_t k = 0; k < count; k++) {
		if (rc != RAFT_OK) {
			/* etcd answers a dropped proposal with a retryable error (and counts it failed). */
			atomic_fetch_add_explicit(&node->proposals_failed, 1, memory_order_relaxed);
			reply_kv_error(node, context->proposals[k].request->request_id, GRPC_UNAVAILABLE,
			               rc == RAFT_ERR_TOO_LARGE ? "etcdserver: too many requests"
			                                        : "etcdserver: leader changed");
		}
		node_request_free(context->proposals[k].request);
	}
	context->proposals_count = 0;
}

/* A linearizable read waits for the read index request of its turn: every read that arrived in one turn of
 * the loop shares one request (flush_reads), as etcd's server shares one among the reads waiting for it. The
 * index it returns is the commit index once leadership was confirmed after all of them arrived, so each of
 * them may be served at it. One Raft read index per read instead cost a heartbeat broadcast and its
 * answers per read. */
static void request_read_index(struct core_context *context, struct node_request *request)
{
	if (context->reads_count == context->reads_capacity) {
		context->reads_capacity = context->reads_capacity ? context->reads_capacity * 2 : 64;
		context->reads = xrealloc(context->reads, context->reads_capacity * sizeof(struct pending_read));
	}
	struct pending_read *read = &context->reads[context->reads_count++];
	read->request_id = request->request_id;
	read->read_index = 0;
	read->batch = 0;
	read->range_request = request->payload;
	read->range_request_length = request->payload_length;
	request->payload = NULL;
	node_request_free(request);
	context->reads_unasked++;
}

/* The token of a batch's read index request: a marker byte, so that no lease request's 8-byte token (its
 * request id) is taken for one, then the batch number. */
enum { READ_BATCH_MARKER = 'R', READ_BATCH_TOKEN_LENGTH = 9 };

/* The reads not asked for yet are the last reads_unasked of the array: reads are only appended, and taken
 * out in order (match_read_states). */
static void flush_reads(struct core_context *context)
{
	if (context->reads_unasked == 0)
		return;
	struct node *node = context->node;
	uint64_t batch = ++context->read_batches;
	uint8_t token[READ_BATCH_TOKEN_LENGTH] = {READ_BATCH_MARKER};
	little_endian_put64(token + 1, batch);
	int rc = raft_read_index(node->raft, token, sizeof(token));
	size_t first = context->reads_count - context->reads_unasked;
	for (size_t k = first; k < context->reads_count; k++) {
		struct pending_read *read = &context->reads[k];
		if (rc == RAFT_OK) {
			read->batch = batch;
			continue;
		}
		reply_kv_error(node, read->request_id, GRPC_UNAVAILABLE, "etcdserver: no leader");
		free(read->range_request);
	}
	if (rc != RAFT_OK)
		context->reads_count = first;
	context->reads_unasked = 0;
}

static void handle_request(struct core_context *context, struct node_request *request)
{
	switch (request->kind) {
	case REQUEST_PROPOSE:
		queue_proposal(context, request);
		return;
	case REQUEST_READ:
		request_read_index(context, request);
		return;
	case REQUEST_LEASE_RENEW:
	case REQUEST_LEASE_TIME_TO_LIVE: {
		struct raft_status status;
		raft_get_status(context->node->raft, &status);
		lease_clocks_handle_request(&context->leases, request, status.role == RAFT_LEADER, status.leader,
		                            status.commit);
		return;
	}
	default:
		members_handle_request(&context->members, request);
		return;
	}
}

/* ---- the Ready ---- */

static void copy_committed(struct storage_job *job, const struct raft_ready *ready)
{
	job->committed_count = ready->committed_entries_count;
	job->committed = xcalloc(job->committed_count ? job->committed_count : 1, sizeof(struct committed_entry));
	for (size_t k = 0; k < job->committed_count; k++) {
		const Raftpb__Entry *entry = ready->committed_entries[k];
		struct committed_entry *out = &job->committed[k];
		out->index = entry->index;
		out->term = entry->term;
		out->type = entry->type;
		out->length = entry->data.len;
		out->data = xmalloc(entry->data.len ? entry->data.len : 1);
		if (entry->data.len)
			memcpy(out->data, entry->data.data, entry->data.len);
	}
}

static void match_read_states(struct core_context *context, struct storage_job *job, const struct raft_ready *ready)
{
	if (ready->read_states_count == 0)
		return;
	size_t capacity = 0;
	for (size_t s = 0; s < ready->read_states_count; s++) {
		const struct raft_read_state *state = &ready->read_states[s];
		if (state->context_length == 8) {
			/* A lease request's (its request id): the lease clocks wait for it. */
			uint64_t request_id = little_endian_get64(state->context);
			struct raft_status status;
			raft_get_status(context->node->raft, &status);
			lease_clocks_read_confirmed(&context->leases, request_id, status.role == RAFT_LEADER, status.term);
			continue;
		}
		if (state->context_length != READ_BATCH_TOKEN_LENGTH || state->context[0] != READ_BATCH_MARKER)
			continue;
		uint64_t batch = little_endian_get64(state->context + 1);
		/* Every read of the batch goes to the storage thread with its index; the others keep their order. */
		size_t kept = 0;
		for (size_t k = 0; k < context->reads_count; k++) {
			struct pending_read read = context->reads[k];
			if (read.batch != batch) {
				context->reads[kept++] = read;
				continue;
			}
			if (job->reads_count == capacity) {
				capacity = capacity ? capacity * 2 : 16;
				job->reads = xrealloc(job->reads, capacity * sizeof(struct pending_read));
			}
			read.read_index = state->index;
			job->reads[job->reads_count++] = read;
		}
		context->reads_count = kept;
	}
}

static void hand_snapshot_over(struct node *node, const Raftpb__Message *message)
{
	struct snapshot_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = SNAPSHOT_MAIL_SEND;
	mail->send.to = message->to;
	mail->send.index = message->snapshot->metadata->index;
	mail->send.term = message->snapshot->metadata->term;
	mail->send.length = raftpb__message__get_packed_size(message);
	mail->send.message = xmalloc(mail->send.length);
	raftpb__message__pack(message, mail->send.message);
	snapshot_mailbox_post(&node->snapshot_inbox, mail);
}

/* One Ready: messages sent, the WAL written, and the storage thread's part returned as a job, posted after
 * raft_advance (post_job). */
static struct storage_job *handle_ready(struct core_context *context, struct raft_ready *ready)
{
	struct node *node = context->node;
	if (ready->soft_state_changed) {
		uint64_t previous = atomic_exchange(&node->leader_id, ready->leader);
		/* A new leadership starts the heartbeat clocks afresh (etcd resets its timeout detector). */
		if (previous != ready->leader)
			for (size_t k = 0; k < NODE_PEER_METRIC_SLOTS; k++)
				node->peer_metrics[k].last_heartbeat_ms = 0;
		if (previous != ready->leader && ready->leader != RAFT_NONE) {
			atomic_fetch_add(&node->leader_changes, 1);
			atomic_store(&node->leader_elected_ms, clock_monotonic_ms());
			struct raft_status status;
			raft_get_status(node->raft, &status);
			log_write("info", "raft.node: elected leader",
			         "\"member-id\":\"%" PRIx64 "\",\"leader-id\":\"%" PRIx64 "\",\"term\":%" PRIu64,
			         node->member_id, ready->leader, status.term);
		}
		if (ready->leader == RAFT_NONE && previous != RAFT_NONE)
			log_write("info", "raft.node: lost leader", "\"member-id\":\"%" PRIx64 "\",\"lost-leader-id\":\"%" PRIx64 "\"",
			         node->member_id, previous);
	}
	/* Leader's appends and heartbeats leave now, in parallel with our own write (thesis §10.2.1). A
	 * snapshot goes to the snapshot thread, which streams the state it names with it. */
	if (ready->messages_count) {
		if (ready->role == RAFT_LEADER)
			FAILPOINT("raftBeforeLeaderSend");
		else
			FAILPOINT("raftBeforeFollowerSend");
	}
	for (size_t k = 0; k < ready->messages_count; k++) {
		const Raftpb__Message *message = ready->messages[k];
		if (message->type == RAFT_MSG_SNAP && message->snapshot && message->snapshot->metadata)
			hand_snapshot_over(node, message);
		else
			send_raft_now(node, message);
	}
	/* Out before our own write is even submitted: a buffered write copies the entries into the page cache
	 * inside the submit, and the followers' fsyncs are what the commit waits for. */
	if (ready->messages_count && ready->entries_count) {
		char flush_error[256];
		transport_flush(node->transport, flush_error, sizeof(flush_error));
	}

	if (ready->has_hard_state) {
		atomic_store(&node->raft_term, ready->hard_state.term);
		atomic_store(&node->commit_index, ready->hard_state.commit);
	}
	/* Our own write: a snapshot's marker, the entries, the hard state; what may leave only once they are
	 * durable waits in the WAL's queue. */
	size_t after_persist_count = ready->messages_after_persist_count;
	struct packed_message *after_persist = NULL;
	if (after_persist_count) {
		after_persist = xcalloc(after_persist_count, sizeof(struct packed_message));
		for (size_t k = 0; k < after_persist_count; k++) {
			after_persist[k].to = ready->messages_after_persist[k]->to;
			after_persist[k].bytes = pack_raft_message(ready->messages_after_persist[k], &after_persist[k].length);
		}
	}
	core_wal_write_ready(context->wal, ready, after_persist, after_persist_count);

	struct storage_job *job = xcalloc(1, sizeof(*job));
	if (ready->snapshot) {
		/* A snapshot from the leader: the storage thread installs it before anything else of this job,
		 * and the member list is the one it carries. */
		job->snapshot_length = raftpb__snapshot__get_packed_size(ready->snapshot);
		job->snapshot = xmalloc(job->snapshot_length);
		raftpb__snapshot__pack(ready->snapshot, job->snapshot);
		members_restore(&context->members, ready->snapshot->data.data, ready->snapshot->data.len);
		job->conf_state = snapshot_pack_conf_state(node->raft, &job->conf_state_length);
	}
	copy_committed(job, ready);
	match_read_states(context, job, ready);
	/* The member list follows the committed entries; the blob reaches the state in the same batch. */
	if (members_apply_committed(&context->members, ready->committed_entries, ready->committed_entries_count)) {
		job->membership_blob = membership_encode(&node->membership);
		members_publish(&context->members);
	}
	if (context->members.removed_self)
		context->stop_after_ready = true;
	struct raft_status status;
	raft_get_status(node->raft, &status);
	job->raft_term = status.term;
	atomic_store(&node->raft_index, status.last_index);
	if (ready->entries_count)
		atomic_store(&node->raft_index, ready->entries[ready->entries_count - 1]->index);
	return job;
}

static bool changes_configuration(const struct raft_ready *ready)
{
	for (size_t k = 0; k < ready->committed_entries_count; k++)
		if (ready->committed_entries[k]->type != RAFT_ENTRY_NORMAL)
			return true;
	return false;
}

/* After raft_advance: the configuration changes among the job's entries have taken effect, so the
 * configuration after them is known, for the snapshots the storage thread takes. */
static void post_job(struct node *node, struct storage_job *job, bool configuration_changed)
{
	/* Nothing for the storage thread: no wake-up. */
	if (job->committed_count == 0 && job->reads_count == 0 && !job->snapshot && !job->membership_blob &&
	    !job->conf_state && !configuration_changed) {
		storage_job_free(job);
		return;
	}
	if (configuration_changed) {
		free(job->conf_state);
		job->conf_state = snapshot_pack_conf_state(node->raft, &job->conf_state_length);
	}
	if (node_storage_apply_inline(node, job))
		return;
	struct storage_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = STORAGE_MAIL_JOB;
	mail->job = job;
	storage_mailbox_post(&node->storage_inbox, mail);
}

/* The storage thread took a snapshot: followers that need one get this, and the log before it (but the
 * catch-up entries) goes. */
static void snapshot_taken(struct core_context *context, const struct snapshot_taken *taken)
{
	struct node *node = context->node;
	Raftpb__Snapshot *snapshot = raftpb__snapshot__unpack(NULL, taken->length, taken->record);
	if (!snapshot || !snapshot->metadata) {
		log_write("error", "a snapshot record does not decode", NULL);
		if (snapshot)
			raftpb__snapshot__free_unpacked(snapshot, NULL);
		return;
	}
	uint64_t index = snapshot->metadata->index;
	struct raft_status status;
	raft_get_status(node->raft, &status);
	if (index + 1 < status.first_index) {
		/* The log already starts past it: a snapshot from the leader was installed meanwhile. */
		raftpb__snapshot__free_unpacked(snapshot, NULL);
		return;
	}
	size_t metadata_length = raftpb__snapshot_metadata__get_packed_size(snapshot->metadata);
	uint8_t *metadata = xmalloc(metadata_length ? metadata_length : 1);
	raftpb__snapshot_metadata__pack(snapshot->metadata, metadata);
	core_wal_mark_snapshot(context->wal, index, snapshot->metadata->term, metadata, metadata_length,
	                       taken->durable_applied);
	free(metadata);
	int rc = raft_create_snapshot(node->raft, index, snapshot->metadata->conf_state, snapshot->data.data,
	                              snapshot->data.len);
	raftpb__snapshot__free_unpacked(snapshot, NULL);
	/* Out of date: a newer snapshot from the leader was installed meanwhile; it stays. */
	if (rc != RAFT_OK && rc != RAFT_ERR_SNAPSHOT_OUT_OF_DATE) {
		log_write("warn", "the core refused a snapshot", "\"snapshot-index\":%" PRIu64 ",\"error\":\"%s\"", index,
		          raft_strerror(rc));
		return;
	}
	if (taken->compact_index == 0)
		return;
	rc = raft_compact(node->raft, taken->compact_index);
	if (rc == RAFT_OK)
		log_write("info", "compacted Raft logs", "\"compact-index\":%" PRIu64, taken->compact_index);
	else if (rc != RAFT_ERR_COMPACTED)
		log_write("warn", "failed to compact the Raft log", "\"compact-index\":%" PRIu64 ",\"error\":\"%s\"",
		          taken->compact_index, raft_strerror(rc));
}

static void handle_peer(struct core_context *context, const struct peer_message *message)
{
	struct node *node = context->node;
	if (message->length == 0)
		return;
	if (message->bytes[0] == PEER_REMOVED_MEMBER_SEEN) {
		uint64_t now = clock_monotonic_ms();
		if (now - node->removed_notice_ms >= 1000) {
			uint8_t notice = PEER_REMOVED;
			node->removed_notice_ms = now;
			node_send_peer(node, message->from, &notice, 1);
		}
		return;
	}
	if (message->from != 0)
		members_heard_from(&context->members, message->from);
	switch (message->bytes[0]) {
	case PEER_REMOVED:
		/* A member of our cluster says we were removed (we were down when it happened). */
		if (membership_find(&node->membership, message->from) && !context->stop_after_ready) {
			log_write("warn", "the member has been permanently removed from the cluster",
			         "\"member-id\":\"%" PRIx64 "\",\"told-by\":\"%" PRIx64 "\"", node->member_id, message->from);
			log_write("warn", "the data-dir used by this member must be removed", "\"data-dir\":\"%s\"",
			         node->flags.data_dir);
			atomic_store(&node->exit_code, 1);
			atomic_store(&node->stopping, true);
		}
		break;
	case PEER_RAFT:
		if (raft_step_bytes(node->raft, message->bytes + 1, message->length - 1) == RAFT_ERR_MALFORMED) {
			/* etcd_network_peer_received_failures_total: a message from the peer we could not read. */
			struct node_peer_metrics *metrics = node_peer_metrics_of(node, message->from);
			if (metrics)
				atomic_fetch_add_explicit(&metrics->received_failures, 1, memory_order_relaxed);
		}
		break;
	case PEER_PING:
		if (message->length == 9) {
			uint8_t pong[9];
			memcpy(pong, message->bytes, sizeof(pong));
			pong[0] = PEER_PONG;
			node_send_peer(node, message->from, pong, sizeof(pong));
		}
		break;
	case PEER_PONG:
		observe_round_trip(node, message->from, message->bytes + 1, message->length - 1);
		break;
	case PEER_LEASE_REQUEST:
	case PEER_LEASE_REPLY: {
		struct raft_status status;
		raft_get_status(node->raft, &status);
		lease_clocks_handle_peer(&context->leases, message->from, message->bytes[0], message->bytes + 1, message->length - 1,
		                         status.role == RAFT_LEADER, status.commit);
		break;
	}
	default:
		members_handle_peer(&context->members, message->from, message->bytes[0], message->bytes + 1, message->length - 1);
		break;
	}
}

static void tick(struct core_context *context)
{
	raft_tick(context->node->raft);
	members_tick(&context->members);
	struct raft_status status;
	raft_get_status(context->node->raft, &status);
	lease_clocks_tick(&context->leases, status.role == RAFT_LEADER, status.term);
	compactor_tick(&context->compactor, status.role == RAFT_LEADER);
}

/* The transport's receive side delivers here, on this thread: a message is stepped while the transport
 * still holds its bytes, and only snapshot streams leave for their own thread. */
static void deliver_peer(void *argument, const struct transport_message *message)
{
	struct core_context *context = argument;
	struct node *node = context->node;
	struct node_peer_metrics *metrics = node_peer_metrics_of(node, message->from);
	if (metrics)
		atomic_fetch_add_explicit(&metrics->received_bytes, message->length, memory_order_relaxed);
	if (message->length > 0 && message->data[0] == PEER_SNAPSHOT) {
		struct snapshot_mail *mail = xcalloc(1, sizeof(*mail));
		mail->kind = SNAPSHOT_MAIL_PEER;
		mail->peer.from = message->from;
		mail->peer.length = message->length;
		mail->peer.bytes = xmemdup(message->data, message->length);
		snapshot_mailbox_post(&node->snapshot_inbox, mail);
		return;
	}
	struct peer_message view = {message->from, (uint8_t *)message->data, message->length};
	handle_peer(context, &view);
}

static void handle_mail(struct core_context *context, struct core_mail *mail, bool *stop)
{
	struct node *node = context->node;
	switch (mail->kind) {
	case CORE_MAIL_PEER:
		handle_peer(context, &mail->peer);
		free(mail->peer.bytes);
		break;
	case CORE_MAIL_REQUEST:
		handle_request(context, mail->request);
		break;
	case CORE_MAIL_STORAGE_FAILED:
		node_stop_on_storage_failure(node, mail->failure->error);
		free(mail->failure);
		break;
	case CORE_MAIL_LEASES:
		lease_clocks_update(&context->leases, mail->leases);
		free(mail->leases->changes);
		free(mail->leases);
		break;
	case CORE_MAIL_SNAPSHOT_TAKEN:
		snapshot_taken(context, &mail->taken);
		free(mail->taken.record);
		break;
	case CORE_MAIL_SNAPSHOT_OUT:
		node_send_peer(node, mail->peer.from, mail->peer.bytes, mail->peer.length);
		free(mail->peer.bytes);
		break;
	case CORE_MAIL_SNAPSHOT_STATUS:
		raft_report_snapshot(node->raft, mail->status.peer, mail->status.failed);
		break;
	case CORE_MAIL_STOP:
		*stop = true;
		break;
	}
	free(mail);
}

/* Every Ready the inputs produced, and those that durability reported meanwhile produces (a leader alone,
 * or the commit its own fsync completes). */
static void drain_readies(struct core_context *context)
{
	struct node *node = context->node;
	do {
		struct raft_ready ready;
		while (raft_ready(node->raft, &ready)) {
			struct storage_job *job = handle_ready(context, &ready);
			bool configuration_changed = changes_configuration(&ready);
			raft_advance(node->raft, &ready);
			post_job(node, job, configuration_changed);
		}
	} while (core_wal_report_durable(context->wal, false));
}

enum core_event { EVENT_MAIL = 1, EVENT_TIMER = 2, EVENT_WAL = 3, EVENT_TRANSPORT = 4 };

/* What the core thread waits on: its mailbox, the tick timer, the WAL's completions and the transport. */
struct core_inputs {
	int epoll;
	int timer;
	int transport_fd;     /* < 0: the transport has no fd to wait on */
	bool poll_every_turn; /* the transport is looked at every turn, not only when its fd says so */
};

static void core_inputs_open(struct node *node, struct core_wal *wal, struct core_inputs *inputs)
{
	inputs->epoll = epoll_create1(EPOLL_CLOEXEC);
	inputs->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec interval = {0};
	interval.it_interval.tv_sec = (time_t)(node->flags.heartbeat_interval_ms / 1000);
	interval.it_interval.tv_nsec = (long)(node->flags.heartbeat_interval_ms % 1000) * 1000000L;
	interval.it_value = interval.it_interval;
	timerfd_settime(inputs->timer, 0, &interval, NULL);
	struct epoll_event event = {.events = EPOLLIN};
	event.data.u32 = EVENT_MAIL;
	epoll_ctl(inputs->epoll, EPOLL_CTL_ADD, core_mailbox_fd(&node->core_inbox), &event);
	event.data.u32 = EVENT_TIMER;
	epoll_ctl(inputs->epoll, EPOLL_CTL_ADD, inputs->timer, &event);
	event.data.u32 = EVENT_WAL;
	epoll_ctl(inputs->epoll, EPOLL_CTL_ADD, core_wal_event_fd(wal), &event);
	inputs->transport_fd = transport_fd(node->transport);
	if (inputs->transport_fd >= 0) {
		event.data.u32 = EVENT_TRANSPORT;
		epoll_ctl(inputs->epoll, EPOLL_CTL_ADD, inputs->transport_fd, &event);
	}
	/* A transport whose fd does not say everything (a DPDK ring rings its fd only for a receiver that said
	 * it sleeps) is looked at every turn: that costs no system call. */
	inputs->poll_every_turn = inputs->transport_fd < 0 || transport_needs_polling(node->transport);
}

/* One turn of the core's loop: waits for inputs unless some are waiting already, then ticks, reports WAL
 * durability, takes peer frames and mail, proposes, and hands out what Raft made ready. False when the
 * thread must stop now. */
static bool core_turn(struct core_context *context, const struct core_inputs *inputs)
{
	struct node *node = context->node;
	int timeout = 200;
	int transport_due = transport_next_wakeup_ms(node->transport); /* a delayed fault-layer frame */
	if (transport_due >= 0 && transport_due < timeout)
		timeout = transport_due;
	if (inputs->transport_fd < 0 && timeout > 1)
		timeout = 1;
	/* Sleep only when neither the mailbox nor the transport has something: both ring their fds only
	 * while this loop said it sleeps, so a busy loop costs its senders no system call. */
	bool mail_asleep = timeout > 0 && core_mailbox_sleep_begin(&node->core_inbox);
	bool transport_asleep = mail_asleep && transport_sleep_begin(node->transport);
	struct epoll_event events[8];
	int ready_count = epoll_wait(inputs->epoll, events, 8, transport_asleep ? timeout : 0);
	int wait_errno = errno;
	if (transport_asleep)
		transport_sleep_end(node->transport);
	if (mail_asleep)
		core_mailbox_sleep_end(&node->core_inbox);
	if (ready_count < 0 && wait_errno != EINTR) {
		log_write("error", "the core thread cannot wait for its inputs; stopping", "\"error\":\"%s\"",
		          strerror(wait_errno));
		atomic_store(&node->exit_code, 1);
		atomic_store(&node->stopping, true);
		return false;
	}
	/* Only the fds epoll named are read: every syscall costs a VM exit here, and a loop turn
	 * under load is woken by its inputs alone. */
	bool timer_fired = false, mail_waiting = false, wal_completed = false, frames_waiting = false;
	for (int k = 0; k < ready_count; k++) {
		timer_fired |= events[k].data.u32 == EVENT_TIMER;
		mail_waiting |= events[k].data.u32 == EVENT_MAIL;
		wal_completed |= events[k].data.u32 == EVENT_WAL;
		frames_waiting |= events[k].data.u32 == EVENT_TRANSPORT;
	}
	uint64_t expirations = 0;
	if (timer_fired && read(inputs->timer, &expirations, sizeof(expirations)) == sizeof(expirations)) {
		for (uint64_t k = 0; k < expirations && k < 10; k++)
			tick(context);
	}
	/* Durability first: the acknowledgements it releases are the cluster's commit. */
	if (wal_completed)
		(void)core_wal_report_durable(context->wal, true);
	/* A bounded number of datagram batches per turn (level-triggered: the rest wakes the next turn), so
	 * a flood of peer frames cannot starve the mail. */
	char error[256];
	if (frames_waiting || inputs->poll_every_turn || transport_due >= 0)
		(void)transport_poll(node->transport, 0, deliver_peer, context, error, sizeof(error));
	/* Read before the mail is taken: the lease changes of every entry up to here are in it. */
	uint64_t applied_before_mail = atomic_load(&node->applied_index);
	struct core_mail **items = NULL;
	if (mail_waiting)
		core_mailbox_doorbell_heard(&node->core_inbox);
	size_t count = core_mailbox_waiting(&node->core_inbox) ? core_mailbox_take_all(&node->core_inbox, &items) : 0;
	bool stop = false;
	for (size_t k = 0; k < count; k++)
		handle_mail(context, items[k], &stop);
	core_mailbox_give_back(&node->core_inbox, items);
	/* The mailbox was looked at after the applied index was read, every turn: whatever lease changes
	 * the storage thread posted before it applied up to there were taken just now, so the clocks cover
	 * it (with no mail at all too: the storage thread posts to the core only when leases change). */
	if (context->leases.waiting_count || applied_before_mail > context->leases.covered_index) {
		struct raft_status status;
		raft_get_status(node->raft, &status);
		lease_clocks_covered(&context->leases, applied_before_mail, status.role == RAFT_LEADER);
	}
	flush_proposals(context);
	flush_reads(context);
	members_after_inputs(&context->members);
	drain_readies(context);
	transport_flush(node->transport, error, sizeof(error));
	if (stop)
		return false;
	if (context->stop_after_ready) {
		log_write("warn", "the member has been permanently removed from the cluster",
		         "\"member-id\":\"%" PRIx64 "\"", node->member_id);
		log_write("warn", "the data-dir used by this member must be removed", "\"data-dir\":\"%s\"",
		         node->flags.data_dir);
		atomic_store(&node->exit_code, 0);
		atomic_store(&node->stopping, true);
	}
	return true;
}

void *node_core_main(void *argument)
{
	struct node *node = argument;
	struct core_context context = {.node = node};
	members_context_init(&context.members, node);
	lease_clocks_init(&context.leases, node);
	context.wal = core_wal_new(node);
	/* Checked by bootstrap already: this parse cannot fail. */
	struct compactor_config compaction;
	char compaction_error[256];
	if (compactor_parse(node->flags.auto_compaction_mode, node->flags.auto_compaction_retention, &compaction,
	                    compaction_error, sizeof(compaction_error)) != 0)
		compaction.mode = COMPACTOR_OFF;
	compactor_init(&context.compactor, node, &compaction);
	struct core_inputs inputs;
	core_inputs_open(node, context.wal, &inputs);
	while (!atomic_load(&node->stopping) && core_turn(&context, &inputs))
		;
	for (size_t k = 0; k < context.proposals_count; k++)
		node_request_free(context.proposals[k].request);
	free(context.proposals);
	for (size_t k = 0; k < context.reads_count; k++)
		free(context.reads[k].range_request);
	free(context.reads);
	members_context_free(&context.members);
	lease_clocks_free(&context.leases);
	core_wal_free(context.wal);
	close(inputs.timer);
	close(inputs.epoll);
	return NULL;
}
