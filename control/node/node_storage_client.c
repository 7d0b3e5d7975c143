/* control/node/node_storage_client.c: HashKV, Snapshot, Watch and lease clocks on the storage thread (see
 * node_storage_client.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "node_storage_client.h"
#include "raft_internal.pb-c.h"

/* etcd sends a progress notification to an idle watcher that asked for them every 10 minutes. */
enum { WATCH_PROGRESS_INTERVAL_MS = 10 * 60 * 1000 };
/* Events per WatchResponse while a watcher catches up (one revision is never split). */
enum { WATCH_CATCH_UP_EVENTS = 1000 };

struct watcher {
	uint64_t reply_request_id; /* routes the responses to the client thread that owns the call */
	uint64_t call_id;
	int64_t watch_id;
	uint8_t *key;
	size_t key_length;
	uint8_t *range_end;
	size_t range_end_length;
	bool prev_kv;
	bool no_put;
	bool no_delete;
	bool progress_notify;
	int64_t next_revision;   /* the first revision this watcher has not been sent */
	uint64_t last_sent_ms;
};

struct storage_clients {
	struct node *node;
	struct watcher *watchers;
	size_t watcher_count;
	size_t watcher_capacity;
	int64_t fanned_out_revision; /* events up to here went to every watcher */
	struct lease_change *lease_changes; /* applied since the last batch, for the core's clocks */
	size_t lease_change_count;
	size_t lease_change_capacity;
};

static void post_lease_changes(struct storage_clients *clients, bool reset)
{
	struct lease_changes *changes = calloc(1, sizeof(*changes));
	struct core_mail *mail = calloc(1, sizeof(*mail));
	if (!changes || !mail)
		abort();
	changes->reset = reset;
	changes->changes = clients->lease_changes;
	changes->count = clients->lease_change_count;
	clients->lease_changes = NULL;
	clients->lease_change_count = clients->lease_change_capacity = 0;
	mail->kind = CORE_MAIL_LEASES;
	mail->leases = changes;
	core_mailbox_post(&clients->node->core_inbox, mail);
}

static void note_lease_change(struct storage_clients *clients, int64_t id, int64_t ttl, bool revoked)
{
	if (clients->lease_change_count == clients->lease_change_capacity) {
		clients->lease_change_capacity = clients->lease_change_capacity ? clients->lease_change_capacity * 2 : 16;
		clients->lease_changes =
		    realloc(clients->lease_changes, clients->lease_change_capacity * sizeof(struct lease_change));
		if (!clients->lease_changes)
			abort();
	}
	struct lease_change *change = &clients->lease_changes[clients->lease_change_count++];
	change->id = id;
	change->ttl = ttl;
	change->revoked = revoked;
}

void storage_clients_note_applied(struct storage_clients *clients, const Etcdserverpb__InternalRaftRequest *request,
                                  const struct kv_result *result)
{
	if (result->grpc_code != GRPC_OK)
		return;
	if (request->lease_grant)
		note_lease_change(clients, request->lease_grant->id, request->lease_grant->ttl, false);
	else if (request->lease_revoke)
		note_lease_change(clients, request->lease_revoke->id, 0, true);
}

struct storage_clients *storage_clients_new(struct node *node)
{
	struct storage_clients *clients = calloc(1, sizeof(*clients));
	if (!clients)
		abort();
	clients->node = node;
	clients->fanned_out_revision = state_revision(node->state);
	/* The core's clocks start from every lease this member knows. */
	struct state_lease_list list;
	char error[256];
	if (state_lease_list(node->state, &list, error, sizeof(error)) == STATE_OK) {
		for (size_t k = 0; k < list.count; k++)
			note_lease_change(clients, list.leases[k].id, list.leases[k].ttl, false);
		state_lease_list_free(&list);
	} else {
		log_write("error", "failed to list leases", "\"error\":\"%s\"", error);
	}
	post_lease_changes(clients, true);
	return clients;
}

static void watcher_free_fields(struct watcher *watcher)
{
	free(watcher->key);
	free(watcher->range_end);
}

void storage_clients_free(struct storage_clients *clients)
{
	if (!clients)
		return;
	for (size_t k = 0; k < clients->watcher_count; k++)
		watcher_free_fields(&clients->watchers[k]);
	free(clients->watchers);
	free(clients->lease_changes);
	free(clients);
}

/* ---- replies ---- */

/* The storage thread knows the revision it has applied, which may be ahead of the published one. */
static void fill_header(const struct node *node, Etcdserverpb__ResponseHeader *header)
{
	node_fill_response_header(node, header);
	header->revision = state_revision(node->state);
}

static struct node_reply *new_reply(uint64_t request_id)
{
	struct node_reply *reply = calloc(1, sizeof(*reply));
	if (!reply)
		abort();
	reply->request_id = request_id;
	return reply;
}

static void reply_error(struct node *node, uint64_t request_id, int code, const char *text)
{
	struct node_reply *reply = new_reply(request_id);
	reply->kv.grpc_code = code;
	snprintf(reply->kv.error, sizeof(reply->kv.error), "%s", text);
	node_post_reply(node, reply);
}

/* Posts a packed message: the answer of a unary request, or one more message of a stream (call_id). */
static void post_message(struct node *node, uint64_t request_id, uint64_t call_id, const ProtobufCMessage *message)
{
	struct node_reply *reply = new_reply(request_id);
	reply->call_id = call_id;
	reply->kv.response_length = protobuf_c_message_get_packed_size(message);
	reply->kv.response = malloc(reply->kv.response_length ? reply->kv.response_length : 1);
	if (!reply->kv.response)
		abort();
	protobuf_c_message_pack(message, reply->kv.response);
	node_post_reply(node, reply);
}

/* ---- HashKV and Snapshot ---- */

static void hash_kv(struct storage_clients *clients, struct node_request *request)
{
	struct node *node = clients->node;
	Etcdserverpb__HashKVRequest *hash_request =
	    etcdserverpb__hash_kvrequest__unpack(NULL, request->payload_length, request->payload);
	if (!hash_request) {
		reply_error(node, request->request_id, GRPC_INVALID_ARGUMENT, "etcdserver: malformed HashKV request");
		return;
	}
	uint32_t hash = 0;
	int64_t hashed_revision = 0;
	char error[256];
	int status = STATE_OK;
	/* etcd's HashByRev refuses the compacted revision itself too: its history may be gone. */
	if (hash_request->revision > 0 && hash_request->revision <= state_compact_revision(node->state))
		status = STATE_ERR_COMPACTED;
	else
		status = state_hash(node->state, hash_request->revision, &hash, &hashed_revision, error, sizeof(error));
	etcdserverpb__hash_kvrequest__free_unpacked(hash_request, NULL);
	if (status != STATE_OK) {
		char text[192];
		snprintf(text, sizeof(text), "etcdserver: %s", state_status_message(status));
		reply_error(node, request->request_id,
		            status == STATE_ERR_COMPACTED || status == STATE_ERR_FUTURE_REV ? GRPC_OUT_OF_RANGE : GRPC_INTERNAL,
		            text);
		return;
	}
	Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	fill_header(node, &header);
	header.revision = hashed_revision;
	Etcdserverpb__HashKVResponse response = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
	response.header = &header;
	response.hash = hash;
	response.compact_revision = state_compact_revision(node->state);
	post_message(node, request->request_id, 0, &response.base);
}

static void snapshot(struct storage_clients *clients, struct node_request *request)
{
	struct node *node = clients->node;
	char error[256];
	struct state_snapshot *opened = NULL;
	if (state_snapshot_open(node->state, &opened, error, sizeof(error)) != STATE_OK) {
		log_write("warn", "failed to take a snapshot for a client", "\"error\":\"%s\"", error);
		reply_error(node, request->request_id, GRPC_INTERNAL, "etcdserver: failed to take a snapshot");
		return;
	}
	struct node_reply *reply = new_reply(request->request_id);
	reply->snapshot = opened;
	node_post_reply(node, reply);
}

/* ---- watch ---- */

/* etcd's key ranges: no range_end = the key alone; range_end "\0" = every key >= key; else [key, end). */
static bool key_in_range(const struct watcher *watcher, const uint8_t *key, size_t length)
{
	size_t common = length < watcher->key_length ? length : watcher->key_length;
	int order = memcmp(key, watcher->key, common);
	if (order == 0)
		order = length < watcher->key_length ? -1 : length > watcher->key_length ? 1 : 0;
	if (watcher->range_end_length == 0)
		return order == 0;
	if (order < 0)
		return false;
	if (watcher->range_end_length == 1 && watcher->range_end[0] == 0)
		return true;
	common = length < watcher->range_end_length ? length : watcher->range_end_length;
	int end_order = memcmp(key, watcher->range_end, common);
	if (end_order == 0)
		end_order = length < watcher->range_end_length ? -1 : length > watcher->range_end_length ? 1 : 0;
	return end_order < 0;
}

/* Sends the events of `list` that this watcher wants (revision >= its next, in its range, not
 * filtered out), as one WatchResponse; nothing when none match. */
static void send_events(struct storage_clients *clients, struct watcher *watcher, const struct state_event_list *list)
{
	size_t chosen_count = 0;
	Mvccpb__Event *events = calloc(list->count ? list->count : 1, sizeof(Mvccpb__Event));
	Mvccpb__Event **pointers = calloc(list->count ? list->count : 1, sizeof(Mvccpb__Event *));
	Mvccpb__KeyValue *kvs = calloc(list->count ? list->count * 2 : 1, sizeof(Mvccpb__KeyValue));
	if (!events || !pointers || !kvs)
		abort();
	for (size_t k = 0; k < list->count; k++) {
		const struct state_event *event = &list->events[k];
		if (event->kv.mod_revision < watcher->next_revision ||
		    !key_in_range(watcher, event->kv.key, event->kv.key_len))
			continue;
		if ((event->type == STATE_EVENT_PUT && watcher->no_put) ||
		    (event->type == STATE_EVENT_DELETE && watcher->no_delete))
			continue;
		Mvccpb__Event *out = &events[chosen_count];
		mvccpb__event__init(out);
		out->type = event->type == STATE_EVENT_PUT ? MVCCPB__EVENT__EVENT_TYPE__PUT : MVCCPB__EVENT__EVENT_TYPE__DELETE;
		kv_to_proto(&event->kv, &kvs[2 * chosen_count]);
		out->kv = &kvs[2 * chosen_count];
		if (watcher->prev_kv && event->has_prev_kv) {
			kv_to_proto(&event->prev_kv, &kvs[2 * chosen_count + 1]);
			out->prev_kv = &kvs[2 * chosen_count + 1];
		}
		pointers[chosen_count] = out;
		chosen_count++;
	}
	if (chosen_count) {
		Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		fill_header(clients->node, &header);
		Etcdserverpb__WatchResponse response = ETCDSERVERPB__WATCH_RESPONSE__INIT;
		response.header = &header;
		response.watch_id = watcher->watch_id;
		response.n_events = chosen_count;
		response.events = pointers;
		post_message(clients->node, watcher->reply_request_id, watcher->call_id, &response.base);
		watcher->last_sent_ms = clock_monotonic_ms();
	}
	free(events);
	free(pointers);
	free(kvs);
}

static void send_watch_cancel(struct storage_clients *clients, const struct watcher *watcher, int64_t compact_revision,
                              const char *reason)
{
	Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	fill_header(clients->node, &header);
	Etcdserverpb__WatchResponse response = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	response.header = &header;
	response.watch_id = watcher->watch_id;
	response.canceled = true;
	response.compact_revision = compact_revision;
	response.cancel_reason = (char *)reason;
	post_message(clients->node, watcher->reply_request_id, watcher->call_id, &response.base);
}

/* Brings a watcher that starts in the past up to the current revision. False: it was cancelled. */
static bool catch_up(struct storage_clients *clients, struct watcher *watcher)
{
	struct node *node = clients->node;
	int64_t current = state_revision(node->state);
	while (watcher->next_revision <= current) {
		struct state_event_list list;
		char error[256];
		struct state_bytes key = {watcher->key, watcher->key_length};
		struct state_bytes range_end = {watcher->range_end, watcher->range_end_length};
		int status = state_events_read(node->state, watcher->next_revision, key, range_end, WATCH_CATCH_UP_EVENTS,
		                               watcher->prev_kv, &list, error, sizeof(error));
		if (status == STATE_ERR_COMPACTED) {
			/* etcd: the response carries the compact revision and the watch is cancelled. */
			send_watch_cancel(clients, watcher, state_compact_revision(node->state),
			                  "etcdserver: mvcc: required revision has been compacted");
			return false;
		}
		if (status != STATE_OK) {
			send_watch_cancel(clients, watcher, 0, error);
			return false;
		}
		send_events(clients, watcher, &list);
		int64_t next = list.next_revision;
		state_event_list_free(&list);
		if (next <= watcher->next_revision)
			break;
		watcher->next_revision = next;
	}
	watcher->next_revision = current + 1;
	return true;
}

static void watch_create(struct storage_clients *clients, struct node_request *request)
{
	struct node *node = clients->node;
	Etcdserverpb__WatchCreateRequest *create =
	    etcdserverpb__watch_create_request__unpack(NULL, request->payload_length, request->payload);
	if (!create)
		return; /* the client thread checked it; nothing to answer on */
	struct watcher watcher = {0};
	watcher.reply_request_id = request->request_id;
	watcher.call_id = request->call_id;
	watcher.watch_id = request->watch_id;
	watcher.key_length = create->key.len;
	watcher.key = malloc(create->key.len ? create->key.len : 1);
	watcher.range_end_length = create->range_end.len;
	watcher.range_end = malloc(create->range_end.len ? create->range_end.len : 1);
	if (!watcher.key || !watcher.range_end)
		abort();
	if (create->key.len)
		memcpy(watcher.key, create->key.data, create->key.len);
	if (create->range_end.len)
		memcpy(watcher.range_end, create->range_end.data, create->range_end.len);
	watcher.prev_kv = create->prev_kv;
	watcher.progress_notify = create->progress_notify;
	for (size_t k = 0; k < create->n_filters; k++) {
		if (create->filters[k] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT)
			watcher.no_put = true;
		else if (create->filters[k] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE)
			watcher.no_delete = true;
	}
	int64_t current = state_revision(node->state);
	watcher.next_revision = create->start_revision > 0 ? create->start_revision : current + 1;
	watcher.last_sent_ms = clock_monotonic_ms();
	etcdserverpb__watch_create_request__free_unpacked(create, NULL);
	if (!catch_up(clients, &watcher)) {
		watcher_free_fields(&watcher);
		return;
	}
	if (clients->watcher_count == clients->watcher_capacity) {
		clients->watcher_capacity = clients->watcher_capacity ? clients->watcher_capacity * 2 : 16;
		clients->watchers = realloc(clients->watchers, clients->watcher_capacity * sizeof(struct watcher));
		if (!clients->watchers)
			abort();
	}
	clients->watchers[clients->watcher_count++] = watcher;
}

static void watch_cancel(struct storage_clients *clients, const struct node_request *request)
{
	size_t kept = 0;
	for (size_t k = 0; k < clients->watcher_count; k++) {
		struct watcher *watcher = &clients->watchers[k];
		unsigned channel = (unsigned)(watcher->reply_request_id >> NODE_REQUEST_COUNTER_BITS) & 0xf;
		unsigned request_channel = (unsigned)(request->request_id >> NODE_REQUEST_COUNTER_BITS) & 0xf;
		if (watcher->call_id == request->call_id && channel == request_channel &&
		    (request->watch_id < 0 || watcher->watch_id == request->watch_id)) {
			watcher_free_fields(watcher);
			continue;
		}
		clients->watchers[kept++] = *watcher;
	}
	clients->watcher_count = kept;
}

/* etcd: a response with watch id -1 and no events, sent after every event already sent on the stream. */
static void watch_progress(struct storage_clients *clients, const struct node_request *request)
{
	Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	fill_header(clients->node, &header);
	Etcdserverpb__WatchResponse response = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	response.header = &header;
	response.watch_id = -1;
	post_message(clients->node, request->request_id, request->call_id, &response.base);
}

void storage_clients_after_apply(struct storage_clients *clients)
{
	struct node *node = clients->node;
	if (clients->lease_change_count)
		post_lease_changes(clients, false);
	int64_t current = state_revision(node->state);
	if (current <= clients->fanned_out_revision)
		return;
	if (clients->watcher_count == 0) {
		clients->fanned_out_revision = current;
		return;
	}
	bool want_prev_kv = false;
	for (size_t k = 0; k < clients->watcher_count; k++)
		want_prev_kv |= clients->watchers[k].prev_kv;
	/* Every key: read the new events once, then each watcher takes its own. */
	static const uint8_t zero = 0;
	struct state_bytes all_keys = {&zero, 1}, empty = {NULL, 0};
	int64_t from = clients->fanned_out_revision + 1;
	while (from <= current) {
		struct state_event_list list;
		char error[256];
		int status = state_events_read(node->state, from, empty, all_keys, 0, want_prev_kv, &list, error, sizeof(error));
		if (status != STATE_OK) {
			/* Compacted under us cannot happen (compaction is applied here too, after this read); any
			 * other failure cancels the watchers rather than letting them miss events silently. */
			log_write("error", "failed to read watch events", "\"error\":\"%s\"", error);
			for (size_t k = 0; k < clients->watcher_count; k++) {
				send_watch_cancel(clients, &clients->watchers[k], 0, "etcdserver: failed to read events");
				watcher_free_fields(&clients->watchers[k]);
			}
			clients->watcher_count = 0;
			break;
		}
		for (size_t k = 0; k < clients->watcher_count; k++) {
			send_events(clients, &clients->watchers[k], &list);
			if (clients->watchers[k].next_revision < list.next_revision)
				clients->watchers[k].next_revision = list.next_revision;
		}
		int64_t next = list.next_revision;
		state_event_list_free(&list);
		if (next <= from)
			break;
		from = next;
	}
	for (size_t k = 0; k < clients->watcher_count; k++)
		if (clients->watchers[k].next_revision <= current)
			clients->watchers[k].next_revision = current + 1;
	clients->fanned_out_revision = current;
}

void storage_clients_tick(struct storage_clients *clients)
{
	uint64_t now = clock_monotonic_ms();
	for (size_t k = 0; k < clients->watcher_count; k++) {
		struct watcher *watcher = &clients->watchers[k];
		if (!watcher->progress_notify || now - watcher->last_sent_ms < WATCH_PROGRESS_INTERVAL_MS)
			continue;
		Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		fill_header(clients->node, &header);
		Etcdserverpb__WatchResponse response = ETCDSERVERPB__WATCH_RESPONSE__INIT;
		response.header = &header;
		response.watch_id = watcher->watch_id;
		post_message(clients->node, watcher->reply_request_id, watcher->call_id, &response.base);
		watcher->last_sent_ms = now;
	}
}

/* TimeToLive (the remaining TTL came from the leader's clock through the core) and Leases. */
static void lease_answer(struct storage_clients *clients, struct node_request *request)
{
	struct node *node = clients->node;
	struct kv_header header = {node->cluster_id, node->member_id, atomic_load(&node->raft_term)};
	struct node_reply *reply = new_reply(request->request_id);
	if (request->kind == REQUEST_LEASE_LEASES) {
		kv_lease_leases(node->state, &header, &reply->kv);
	} else {
		Etcdserverpb__LeaseTimeToLiveRequest *ttl =
		    etcdserverpb__lease_time_to_live_request__unpack(NULL, request->payload_length, request->payload);
		if (!ttl) {
			reply->kv.grpc_code = GRPC_INVALID_ARGUMENT;
			snprintf(reply->kv.error, sizeof(reply->kv.error), "etcdserver: malformed LeaseTimeToLive request");
		} else {
			kv_lease_time_to_live(node->state, ttl, &header, request->lease_remaining_ttl, &reply->kv);
			etcdserverpb__lease_time_to_live_request__free_unpacked(ttl, NULL);
		}
	}
	node_post_reply(node, reply);
}

void storage_clients_handle(struct storage_clients *clients, struct node_request *request)
{
	switch (request->kind) {
	case REQUEST_HASH_KV:
		hash_kv(clients, request);
		break;
	case REQUEST_SNAPSHOT:
		snapshot(clients, request);
		break;
	case REQUEST_WATCH_CREATE:
		watch_create(clients, request);
		break;
	case REQUEST_WATCH_CANCEL:
		watch_cancel(clients, request);
		break;
	case REQUEST_WATCH_PROGRESS:
		watch_progress(clients, request);
		break;
	case REQUEST_LEASE_TIME_TO_LIVE:
	case REQUEST_LEASE_LEASES:
		lease_answer(clients, request);
		break;
	default:
		reply_error(clients->node, request->request_id, GRPC_UNIMPLEMENTED, "etcdserver: not implemented");
		break;
	}
	node_request_free(request);
}
