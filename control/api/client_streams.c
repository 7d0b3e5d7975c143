/* control/api/client_streams.c: etcd's streaming RPCs — Watch and LeaseKeepAlive (bidirectional) and
 * Maintenance.Snapshot (server stream).
 *
 * Watch: this thread answers create and cancel at once (etcd's created / canceled responses), and the
 * storage thread sends the events (node_storage_client.c) on the same call through this thread's mailbox.
 * The watch IDs in use on a stream are known here, as etcd's watch stream knows them: a client may choose
 * one (refused while in use), automatic ones count from 0 stepping over those in use, and a cancel is
 * answered only for an ID in use (one cancelled by compaction stays in use until the client cancels it).
 * A watch from "now" is pinned here to the revision the created response shows, so an event committed
 * between the two can never fall in a gap.
 * Snapshot: the storage thread takes the checkpoint; this thread streams it at the client's pace,
 * never holding more than SNAPSHOT_BUFFERED_BYTES unsent. Like etcd's, the stream ends with the SHA-256
 * of everything before it, placed so that the file's size is 32 past a multiple of 512 (etcdctl
 * `snapshot save` checks exactly that); zero bytes pad the archive up to there. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bytes_compare.h"
#include "client_internal.h"
#include "clock.h"
#include "log.h"

enum { SNAPSHOT_CHUNK_BYTES = 64 * 1024, SNAPSHOT_BUFFERED_BYTES = 1024 * 1024 };

struct watch_stream {
	int64_t next_watch_id;
	int64_t *watch_ids; /* in use on the stream, ascending */
	size_t watch_id_count, watch_id_capacity;
	struct watch_backlog *backlog; /* this stream's unsent bytes, for its watchers on the storage thread */
};

static struct client_thread *thread_of(void *context)
{
	return context;
}

/* ---- Watch ---- */

static void send_watch_response(struct client_thread *thread, struct grpc_call *call, int64_t watch_id, bool created,
                                bool canceled, const char *reason)
{
	Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	node_fill_response_header(thread->node, &header);
	Etcdserverpb__WatchResponse response = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	response.header = &header;
	response.watch_id = watch_id;
	response.created = created;
	response.canceled = canceled;
	response.cancel_reason = (char *)(reason ? reason : "");
	size_t length = etcdserverpb__watch_response__get_packed_size(&response);
	uint8_t *bytes = xmalloc(length ? length : 1);
	etcdserverpb__watch_response__pack(&response, bytes);
	grpc_call_send(call, bytes, length);
	free(bytes);
}

static void post_watch(struct client_thread *thread, struct grpc_call *call, enum node_request_kind kind,
                       int64_t watch_id)
{
	struct node_request *request = client_new_request(thread, kind);
	request->call_id = grpc_call_id(call);
	request->watch_id = watch_id;
	client_post_to_storage(thread, request);
}

static void cancel_every_watch(struct client_thread *thread, struct grpc_call *call)
{
	struct node_request *request = client_new_request(thread, REQUEST_WATCH_CANCEL);
	request->call_id = grpc_call_id(call);
	request->every_watch_of_call = true;
	client_post_to_storage(thread, request);
}

/* Where watch_id is, or would go, in the stream's ascending IDs (a stream may hold many watches). */
static size_t watch_id_position(const struct watch_stream *stream, int64_t watch_id, bool *found)
{
	size_t low = 0, high = stream->watch_id_count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (stream->watch_ids[middle] < watch_id)
			low = middle + 1;
		else
			high = middle;
	}
	*found = low < stream->watch_id_count && stream->watch_ids[low] == watch_id;
	return low;
}

static bool watch_id_in_use(const struct watch_stream *stream, int64_t watch_id)
{
	bool found;
	watch_id_position(stream, watch_id, &found);
	return found;
}

static void watch_id_take(struct watch_stream *stream, int64_t watch_id)
{
	bool found;
	size_t position = watch_id_position(stream, watch_id, &found);
	if (found)
		return;
	if (stream->watch_id_count == stream->watch_id_capacity) {
		stream->watch_id_capacity = stream->watch_id_capacity ? 2 * stream->watch_id_capacity : 8;
		stream->watch_ids = xreallocarray(stream->watch_ids, stream->watch_id_capacity, sizeof(*stream->watch_ids));
	}
	memmove(stream->watch_ids + position + 1, stream->watch_ids + position,
	        (stream->watch_id_count - position) * sizeof(*stream->watch_ids));
	stream->watch_ids[position] = watch_id;
	stream->watch_id_count++;
}

static bool watch_id_release(struct watch_stream *stream, int64_t watch_id)
{
	bool found;
	size_t position = watch_id_position(stream, watch_id, &found);
	if (!found)
		return false;
	memmove(stream->watch_ids + position, stream->watch_ids + position + 1,
	        (stream->watch_id_count - position - 1) * sizeof(*stream->watch_ids));
	stream->watch_id_count--;
	return true;
}

static struct watch_stream *start_watch_stream(struct client_thread *thread, struct grpc_call *call)
{
	struct watch_stream *stream = xcalloc(1, sizeof(*stream));
	stream->backlog = watch_backlog_new();
	grpc_call_set_user(call, stream);
	if (thread->watch_stream_count == thread->watch_stream_capacity) {
		thread->watch_stream_capacity = thread->watch_stream_capacity ? 2 * thread->watch_stream_capacity : 16;
		thread->watch_streams =
		    xreallocarray(thread->watch_streams, thread->watch_stream_capacity, sizeof(struct watch_stream_backlog));
	}
	thread->watch_streams[thread->watch_stream_count++] =
	    (struct watch_stream_backlog){grpc_call_id(call), stream->backlog};
	return stream;
}

static void end_watch_stream(struct client_thread *thread, struct grpc_call *call)
{
	struct watch_stream *stream = grpc_call_user(call);
	if (!stream)
		return;
	uint64_t call_id = grpc_call_id(call);
	for (size_t k = 0; k < thread->watch_stream_count; k++) {
		if (thread->watch_streams[k].call_id == call_id) {
			thread->watch_streams[k] = thread->watch_streams[--thread->watch_stream_count];
			break;
		}
	}
	watch_backlog_release(stream->backlog);
	free(stream->watch_ids);
	free(stream);
	grpc_call_set_user(call, NULL);
}

/* The storage thread parks a watcher whose stream has too much unsent; what is unsent is known here. */
static void refresh_watch_backlogs(struct client_thread *thread)
{
	for (size_t k = 0; k < thread->watch_stream_count; k++) {
		struct grpc_call *call = grpc_server_find_call(thread->server, thread->watch_streams[k].call_id);
		atomic_store(&thread->watch_streams[k].backlog->unsent_bytes, call ? grpc_call_pending_bytes(call) : 0);
	}
}

/* etcd's isWatchPermitted, with the key and range end as its watch stream normalises them first: an
 * empty key is "\0", and a range end of "\0" (every key from key on) becomes empty, which the permission
 * check then takes for the key alone. */
static enum auth_status watch_permission(struct client_thread *thread, const struct client_auth *auth,
                                         const Etcdserverpb__WatchCreateRequest *create)
{
	const uint8_t *key = create->key.len ? create->key.data : (const uint8_t *)"";
	size_t key_length = create->key.len ? create->key.len : 1;
	bool from_key = create->range_end.len == 1 && create->range_end.data[0] == 0;
	return client_auth_range_status(thread, auth, key, key_length, create->range_end.data,
	                                from_key ? 0 : create->range_end.len);
}

/* The create is refused as etcd refuses it: a response both created and canceled, for watch -1, with the
 * reason as the text of the gRPC error etcd would have returned (etcd writes rpctypes' status errors
 * there, "rpc error: code = PermissionDenied desc = etcdserver: permission denied"); the stream goes on. */
static bool watch_refused(struct client_thread *thread, struct grpc_call *call, enum auth_status status)
{
	if (status == AUTH_OK)
		return false;
	if (status != AUTH_ERR_INVALID_AUTH_TOKEN && status != AUTH_ERR_AUTH_OLD_REVISION && status != AUTH_ERR_USER_EMPTY)
		status = AUTH_ERR_PERMISSION_DENIED;
	char code_name[32], reason[160];
	snprintf(reason, sizeof(reason), "rpc error: code = %s desc = %s",
	         grpc_code_name(auth_status_grpc_code(status), code_name, sizeof(code_name)), auth_status_text(status));
	send_watch_response(thread, call, -1, true, true, reason);
	return true;
}

/* etcd's watch stream refuses a range with key >= range_end (the key "" taken as "\0"); a range end of
 * "\0" is every key from key on, and none is the key alone. */
static bool watch_range_empty(const Etcdserverpb__WatchCreateRequest *create)
{
	const ProtobufCBinaryData *end = &create->range_end;
	if (end->len == 0 || (end->len == 1 && end->data[0] == 0))
		return false;
	const uint8_t zero = 0;
	const uint8_t *key = create->key.len ? create->key.data : &zero;
	size_t key_length = create->key.len ? create->key.len : 1;
	return bytes_compare(key, key_length, end->data, end->len) >= 0;
}

static void watch_create(struct client_thread *thread, struct grpc_call *call, struct watch_stream *stream,
                         Etcdserverpb__WatchCreateRequest *create, const struct client_auth *auth)
{
	/* etcdctl watch asks (metadata hasleader=true) to be refused while there is no leader. */
	const char *require_leader = grpc_call_header(call, "hasleader");
	if (require_leader && !strcmp(require_leader, "true") && atomic_load(&thread->node->leader_id) == 0) {
		cancel_every_watch(thread, call);
		end_watch_stream(thread, call);
		grpc_call_finish(call, GRPC_UNAVAILABLE, "etcdserver: no leader");
		return;
	}
	if (watch_refused(thread, call, watch_permission(thread, auth, create)))
		return;
	if (watch_range_empty(create)) {
		send_watch_response(thread, call, -1, true, true, "mvcc: watcher range is empty");
		return;
	}
	int64_t watch_id = create->watch_id;
	if (watch_id == 0) {
		while (watch_id_in_use(stream, stream->next_watch_id))
			stream->next_watch_id++;
		watch_id = stream->next_watch_id++;
	} else if (watch_id_in_use(stream, watch_id)) {
		send_watch_response(thread, call, -1, true, true, "mvcc: duplicate watch ID provided on the WatchStream");
		return;
	}
	watch_id_take(stream, watch_id);
	/* Pinned to what the created response says is current: nothing committed in between is missed. */
	int64_t current = (int64_t)atomic_load(&thread->node->revision);
	if (create->start_revision <= 0)
		create->start_revision = current + 1;
	send_watch_response(thread, call, watch_id, true, false, NULL);
	size_t length = etcdserverpb__watch_create_request__get_packed_size(create);
	uint8_t *payload = xmalloc(length ? length : 1);
	etcdserverpb__watch_create_request__pack(create, payload);
	struct node_request *request = client_new_request(thread, REQUEST_WATCH_CREATE);
	request->call_id = grpc_call_id(call);
	request->watch_id = watch_id;
	request->payload = payload;
	request->payload_length = length;
	watch_backlog_hold(stream->backlog);
	request->watch_backlog = stream->backlog;
	client_post_to_storage(thread, request);
}

static void on_watch_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	struct client_thread *thread = thread_of(context);
	if (client_auth_queued_behind(thread, call, on_watch_message, message, length))
		return;
	struct watch_stream *stream = grpc_call_user(call);
	if (!stream)
		stream = start_watch_stream(thread, call);
	Etcdserverpb__WatchRequest *request = etcdserverpb__watch_request__unpack(NULL, length, message);
	if (!request) {
		cancel_every_watch(thread, call);
		end_watch_stream(thread, call);
		client_answer_malformed(call);
		return;
	}
	switch (request->request_union_case) {
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST: {
		struct client_auth auth;
		switch (client_auth_resolve(thread, call, on_watch_message, message, length, &auth)) {
		case CLIENT_AUTH_RESOLVED:
			watch_create(thread, call, stream, request->create_request, &auth);
			break;
		case CLIENT_AUTH_INVALID:
			watch_refused(thread, call, AUTH_ERR_INVALID_AUTH_TOKEN);
			break;
		case CLIENT_AUTH_HELD:
			break;
		}
		client_auth_free(&auth);
		break;
	}
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST:
		/* etcd answers nothing for an ID the stream does not have. */
		if (watch_id_release(stream, request->cancel_request->watch_id)) {
			post_watch(thread, call, REQUEST_WATCH_CANCEL, request->cancel_request->watch_id);
			send_watch_response(thread, call, request->cancel_request->watch_id, false, true, NULL);
		}
		break;
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
		post_watch(thread, call, REQUEST_WATCH_PROGRESS, 0);
		break;
	default:
		break; /* an empty request: etcd ignores it too */
	}
	etcdserverpb__watch_request__free_unpacked(request, NULL);
}

static void on_watch_close(void *context, struct grpc_call *call, bool cancelled)
{
	struct client_thread *thread = thread_of(context);
	cancel_every_watch(thread, call);
	end_watch_stream(thread, call);
	if (!cancelled)
		grpc_call_finish(call, GRPC_OK, NULL);
}

/* ---- LeaseKeepAlive ---- */

static void on_keep_alive_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	struct client_thread *thread = thread_of(context);
	Etcdserverpb__LeaseKeepAliveRequest *keep_alive =
	    etcdserverpb__lease_keep_alive_request__unpack(NULL, length, message);
	if (!keep_alive) {
		client_answer_malformed(call);
		return;
	}
	struct node_request *request = client_new_request(thread, REQUEST_LEASE_RENEW);
	request->call_id = grpc_call_id(call);
	request->lease_id = keep_alive->id;
	etcdserverpb__lease_keep_alive_request__free_unpacked(keep_alive, NULL);
	/* Renewals are the leader's: the core sends it on to the leader when we are not. */
	client_post_to_core(thread, request);
}

static void on_keep_alive_close(void *context, struct grpc_call *call, bool cancelled)
{
	(void)context;
	if (!cancelled)
		grpc_call_finish(call, GRPC_OK, NULL);
}

/* ---- Snapshot ---- */

static void on_snapshot(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	if (client_refuse_on_learner(thread_of(context), call))
		return;
	struct client_thread *thread = thread_of(context);
	if (!client_auth_begin_maintenance(thread, call, on_snapshot, message, length))
		return;
	struct node_request *request = client_new_request(thread, REQUEST_SNAPSHOT);
	client_wait(thread, request->request_id, grpc_call_id(call), WAITING_SNAPSHOT);
	client_post_to_storage(thread, request);
}

void client_streams_snapshot_ready(struct client_thread *thread, uint64_t call_id, struct state_snapshot *snapshot)
{
	if (thread->snapshot_count == thread->snapshot_capacity) {
		thread->snapshot_capacity = thread->snapshot_capacity ? thread->snapshot_capacity * 2 : 4;
		thread->snapshots = xrealloc(thread->snapshots, thread->snapshot_capacity * sizeof(struct snapshot_stream));
	}
	struct snapshot_stream *stream = &thread->snapshots[thread->snapshot_count++];
	stream->call_id = call_id;
	stream->snapshot = snapshot;
	stream->sent_bytes = 0;
	stream->opened_ns = clock_monotonic_ns();
	stream->sha256 = EVP_MD_CTX_new();
	if (!stream->sha256 || EVP_DigestInit_ex(stream->sha256, EVP_sha256(), NULL) != 1)
		abort();
}

static void send_snapshot_chunk(struct client_thread *thread, struct grpc_call *call, struct snapshot_stream *stream,
                                const uint8_t *chunk, size_t length, bool last)
{
	stream->sent_bytes += length;
	/* The archive's size is known only at its end: remaining_bytes is the store's size left to go,
	 * at least 1 until the last message (clients read to the end of the stream anyway). */
	uint64_t size = atomic_load(&thread->node->db_size);
	Etcdserverpb__SnapshotResponse response = ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
	response.remaining_bytes = last ? 0 : size > stream->sent_bytes ? size - stream->sent_bytes : 1;
	response.blob.data = (uint8_t *)chunk;
	response.blob.len = length;
	size_t packed_length = etcdserverpb__snapshot_response__get_packed_size(&response);
	uint8_t *packed = xmalloc(packed_length);
	etcdserverpb__snapshot_response__pack(&response, packed);
	grpc_call_send(call, packed, packed_length);
	free(packed);
}

/* The end of the stream: zero padding, then the SHA-256 of all that came before. */
static void send_snapshot_tail(struct client_thread *thread, struct grpc_call *call, struct snapshot_stream *stream)
{
	uint8_t tail[512 + EVP_MAX_MD_SIZE];
	size_t padding = (512 - stream->sent_bytes % 512) % 512;
	memset(tail, 0, padding);
	EVP_DigestUpdate(stream->sha256, tail, padding);
	unsigned digest_length = 0;
	EVP_DigestFinal_ex(stream->sha256, tail + padding, &digest_length);
	send_snapshot_chunk(thread, call, stream, tail, padding + digest_length, true);
}

/* Sends chunks until the call has enough queued; true when the stream is over (finished or gone). */
static bool pump_one(struct client_thread *thread, struct snapshot_stream *stream, uint8_t *chunk)
{
	struct grpc_call *call = grpc_server_find_call(thread->server, stream->call_id);
	if (!call)
		return true;
	while (grpc_call_pending_bytes(call) < SNAPSHOT_BUFFERED_BYTES) {
		size_t length = 0;
		char error[256];
		if (state_snapshot_next_chunk(stream->snapshot, chunk, SNAPSHOT_CHUNK_BYTES, &length, error, sizeof(error)) !=
		    STATE_OK) {
			log_write("warn", "failed to stream a snapshot", "\"error\":\"%s\"", error);
			grpc_call_finish(call, GRPC_INTERNAL, "etcdserver: failed to read the snapshot");
			return true;
		}
		if (length == 0) {
			send_snapshot_tail(thread, call, stream);
			grpc_call_finish(call, GRPC_OK, NULL);
			return true;
		}
		EVP_DigestUpdate(stream->sha256, chunk, length);
		send_snapshot_chunk(thread, call, stream, chunk, length, false);
	}
	return false;
}

void client_streams_pump(struct client_thread *thread)
{
	uint64_t now = clock_monotonic_ms();
	if (now - thread->last_backlog_refresh_ms >= 20) {
		thread->last_backlog_refresh_ms = now;
		refresh_watch_backlogs(thread);
	}
	if (!thread->snapshot_count)
		return;
	uint8_t *chunk = xmalloc(SNAPSHOT_CHUNK_BYTES);
	size_t kept = 0;
	for (size_t k = 0; k < thread->snapshot_count; k++) {
		if (pump_one(thread, &thread->snapshots[k], chunk)) {
			histogram_observe_ns(&thread->node->backend_snapshot_duration,
			                     clock_monotonic_ns() - thread->snapshots[k].opened_ns);
			state_snapshot_close(thread->snapshots[k].snapshot);
			EVP_MD_CTX_free(thread->snapshots[k].sha256);
		} else
			thread->snapshots[kept++] = thread->snapshots[k];
	}
	thread->snapshot_count = kept;
	free(chunk);
}

void client_streams_close(struct client_thread *thread)
{
	/* The list only borrows the streams' backlogs: each is released when the server ends its call. */
	free(thread->watch_streams);
	thread->watch_streams = NULL;
	thread->watch_stream_count = 0;
	for (size_t k = 0; k < thread->snapshot_count; k++) {
		struct grpc_call *call = grpc_server_find_call(thread->server, thread->snapshots[k].call_id);
		if (call)
			grpc_call_finish(call, GRPC_UNAVAILABLE, "etcdserver: server stopped");
		state_snapshot_close(thread->snapshots[k].snapshot);
		EVP_MD_CTX_free(thread->snapshots[k].sha256);
	}
	free(thread->snapshots);
	thread->snapshots = NULL;
	thread->snapshot_count = 0;
}

const struct grpc_method client_stream_methods[] = {
    {"/etcdserverpb.Watch/Watch", GRPC_METHOD_BIDI_STREAM, on_watch_message, on_watch_close},
    {"/etcdserverpb.Lease/LeaseKeepAlive", GRPC_METHOD_BIDI_STREAM, on_keep_alive_message, on_keep_alive_close},
    {"/etcdserverpb.Maintenance/Snapshot", GRPC_METHOD_SERVER_STREAM, on_snapshot, NULL},
};
const size_t client_stream_method_count = sizeof(client_stream_methods) / sizeof(client_stream_methods[0]);
