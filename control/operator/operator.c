/* control/operator/operator.c: the operator thread. It serves the operator control socket (JSON lines, see
 * control_socket.h): each request becomes a node_request posted to the core thread (or, for a
 * serializable read, straight to the storage thread), and each node_reply coming back is turned into the
 * JSON result of the request that is waiting for it. It also stops the node on SIGINT/SIGTERM. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "control_socket.h"
#include "grpc_status.h"
#include "log.h"
#include "node.h"
#include "operator.h"

struct waiting_request {
	uint64_t request_id;
	struct control_request *request;
	char command[24];
};

struct control_context {
	struct node *node;
	struct control_socket *server;
	struct waiting_request *waiting;
	size_t waiting_count;
	size_t waiting_capacity;
	uint64_t next_request_id;
	/* A stop asked for by a signal: the leadership hand-over it waits for (etcd's TransferLeadership,
	 * bounded by etcd's request timeout), then the member stops. */
	uint64_t stop_transfer_request_id;
	uint64_t stop_transfer_started_ms;
	uint64_t stop_transfer_deadline_ms;
	uint64_t stop_transfer_leader;
	uint64_t nospace_raised_ms; /* when this thread last proposed this member's NOSPACE alarm */
};

static uint64_t new_request_id(struct control_context *context)
{
	return node_request_id(context->node->member_id, 0, context->next_request_id++);
}

static void remember(struct control_context *context, uint64_t request_id, struct control_request *request)
{
	if (context->waiting_count == context->waiting_capacity) {
		context->waiting_capacity = context->waiting_capacity ? context->waiting_capacity * 2 : 64;
		context->waiting = xrealloc(context->waiting, context->waiting_capacity * sizeof(struct waiting_request));
	}
	struct waiting_request *waiting = &context->waiting[context->waiting_count++];
	waiting->request_id = request_id;
	waiting->request = request;
	snprintf(waiting->command, sizeof(waiting->command), "%s", request->command);
}

static void post_to_core(struct control_context *context, struct node_request *request)
{
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = CORE_MAIL_REQUEST;
	mail->request = request;
	core_mailbox_post(&context->node->core_inbox, mail);
}

static void begin_stop(struct control_context *context)
{
	struct node *node = context->node;
	if (context->stop_transfer_request_id != 0)
		return;
	struct node_request *transfer = xcalloc(1, sizeof(*transfer));
	transfer->kind = REQUEST_MOVE_LEADER;
	transfer->member_id = 0; /* the core picks the most caught-up voter, or skips */
	transfer->request_id = new_request_id(context);
	context->stop_transfer_request_id = transfer->request_id;
	context->stop_transfer_started_ms = clock_monotonic_ms();
	context->stop_transfer_deadline_ms = context->stop_transfer_started_ms + node_request_timeout_ms(node);
	context->stop_transfer_leader = atomic_load(&node->leader_id);
	post_to_core(context, transfer);
}

/* The hand-over is done (or there was nothing to hand over, or it failed): the member stops now. */
static void finish_stop(struct control_context *context, const struct node_reply *reply)
{
	struct node *node = context->node;
	uint64_t took_ms = clock_monotonic_ms() - context->stop_transfer_started_ms;
	uint64_t leader = atomic_load(&node->leader_id);
	if (reply && reply->grpc_code == GRPC_OK && context->stop_transfer_leader == node->member_id &&
	    leader != node->member_id) {
		log_write("info", "leadership transfer finished",
		          "\"local-member-id\":\"%" PRIx64 "\",\"old-leader-member-id\":\"%" PRIx64 "\","
		          "\"new-leader-member-id\":\"%" PRIx64 "\",\"took\":\"%" PRIu64 "ms\"",
		          node->member_id, node->member_id, leader, took_ms);
	} else if (!reply || reply->grpc_code != GRPC_OK) {
		char escaped[512];
		log_write("warn", "leadership transfer failed", "\"local-member-id\":\"%" PRIx64 "\",\"error\":\"%s\"",
		          node->member_id,
		          log_json_escape(reply ? reply->error : "etcdserver: request timed out, leader transfer took too long",
		                          escaped, sizeof(escaped)));
	}
	context->stop_transfer_deadline_ms = 0;
	atomic_store(&node->stopping, true);
}

static struct node_request *new_request(struct control_context *context, enum node_request_kind kind,
                                        struct control_request *request)
{
	struct node_request *node_request = xcalloc(1, sizeof(*node_request));
	node_request->kind = kind;
	node_request->request_id = new_request_id(context);
	remember(context, node_request->request_id, request);
	return node_request;
}

/* The operator socket is the machine's own (mode 0600, the owner's uid only): its writes are made as root,
 * whatever etcd's auth allows clients. */
static uint8_t *pack_internal(struct control_context *context, Etcdserverpb__InternalRaftRequest *internal,
                              uint64_t request_id, size_t *length)
{
	Etcdserverpb__RequestHeader header = ETCDSERVERPB__REQUEST_HEADER__INIT;
	header.id = request_id;
	header.username = AUTH_ROOT;
	header.auth_revision = node_auth_revision(&context->node->auth);
	internal->header = &header;
	*length = etcdserverpb__internal_raft_request__get_packed_size(internal);
	uint8_t *bytes = xmalloc(*length ? *length : 1);
	etcdserverpb__internal_raft_request__pack(internal, bytes);
	internal->header = NULL;
	return bytes;
}

/* A write: packed with a new request id in its header and handed to the core, which batches it. */
static void propose(struct control_context *context, struct control_request *request,
                    Etcdserverpb__InternalRaftRequest *internal)
{
	struct node_request *node_request = new_request(context, REQUEST_PROPOSE, request);
	node_request->payload = pack_internal(context, internal, node_request->request_id, &node_request->payload_length);
	post_to_core(context, node_request);
}

/* Reads key / range_end / value of a request: 0, or -1 after answering with the error. */
static int read_bytes(struct control_context *context, struct control_request *request, const char *name,
                      bool required, ProtobufCBinaryData *out, char **holder)
{
	char error[256];
	size_t length = 0;
	int rc = control_json_get_bytes(request->json, name, holder, &length, error, sizeof(error));
	if (rc < 0 || (rc == 1 && required)) {
		if (rc == 1)
			snprintf(error, sizeof(error), "etcdserver: %s is not provided", name);
		control_socket_reply_error(context->server, request, "InvalidArgument", "%s", error);
		return -1;
	}
	out->data = (uint8_t *)*holder;
	out->len = rc == 1 ? 0 : length;
	return 0;
}

/* key (required) and range_end (optional) of a get or del. */
static int read_key_range(struct control_context *context, struct control_request *request, ProtobufCBinaryData *key,
                          char **key_holder, ProtobufCBinaryData *range_end, char **range_end_holder)
{
	return read_bytes(context, request, "key", true, key, key_holder) ||
	       read_bytes(context, request, "range_end", false, range_end, range_end_holder);
}

static void handle_put(struct control_context *context, struct control_request *request)
{
	char *key = NULL, *value = NULL;
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	if (read_bytes(context, request, "key", true, &put.key, &key) ||
	    read_bytes(context, request, "value", false, &put.value, &value))
		goto done;
	if (put.key.len == 0) {
		control_socket_reply_error(context->server, request, "InvalidArgument", "etcdserver: key is not provided");
		goto done;
	}
	/* The space quota, as for a client's put. */
	if (node_refuse_for_space(context->node, space_quota_cost_put(&put), new_request_id(context),
	                          &context->nospace_raised_ms)) {
		control_socket_reply_error(context->server, request, "ResourceExhausted", "%s", SPACE_QUOTA_ERROR);
		goto done;
	}
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.put = &put;
	propose(context, request, &internal);
done:
	free(key);
	free(value);
}

static void handle_delete(struct control_context *context, struct control_request *request)
{
	char *key = NULL, *range_end = NULL;
	Etcdserverpb__DeleteRangeRequest delete_range = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	if (read_key_range(context, request, &delete_range.key, &key, &delete_range.range_end, &range_end))
		goto done;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.delete_range = &delete_range;
	propose(context, request, &internal);
done:
	free(key);
	free(range_end);
}

static void handle_get(struct control_context *context, struct control_request *request)
{
	char *key = NULL, *range_end = NULL;
	Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
	if (read_key_range(context, request, &range.key, &key, &range.range_end, &range_end))
		goto done;
	json_t *serializable = json_object_get(request->json, "serializable");
	range.serializable = json_is_true(serializable);
	struct node_request *node_request = new_request(context, REQUEST_READ, request);
	node_request->serializable = range.serializable;
	node_request->payload_length = etcdserverpb__range_request__get_packed_size(&range);
	node_request->payload = xmalloc(node_request->payload_length ? node_request->payload_length : 1);
	etcdserverpb__range_request__pack(&range, node_request->payload);
	if (range.serializable) {
		/* Served from this member's applied state, no Raft round (etcd's --consistency=s). */
		struct storage_mail *mail = xcalloc(1, sizeof(*mail));
		mail->kind = STORAGE_MAIL_READ_NOW;
		mail->request = node_request;
		storage_mailbox_post(&context->node->storage_inbox, mail);
	} else {
		post_to_core(context, node_request);
	}
done:
	free(key);
	free(range_end);
}

static int read_member_id(struct control_context *context, struct control_request *request, const char *name,
                          uint64_t *id)
{
	const char *text = json_string_value(json_object_get(request->json, name));
	if (!text || control_parse_hex_id(text, id) != 0) {
		control_socket_reply_error(context->server, request, "InvalidArgument", "bad member ID arg (%s)",
		                           text ? text : "missing");
		return -1;
	}
	return 0;
}

static int read_peer_urls(struct control_context *context, struct control_request *request,
                          struct node_request *node_request)
{
	json_t *urls = json_object_get(request->json, "peer_urls");
	if (!json_is_array(urls) || json_array_size(urls) == 0) {
		control_socket_reply_error(context->server, request, "InvalidArgument", "member peer urls not provided");
		return -1;
	}
	node_request->peer_urls = xcalloc(json_array_size(urls), sizeof(char *));
	for (size_t k = 0; k < json_array_size(urls); k++) {
		const char *url = json_string_value(json_array_get(urls, k));
		if (!url) {
			control_socket_reply_error(context->server, request, "InvalidArgument", "peer URLs must be strings");
			return -1;
		}
		node_request->peer_urls[node_request->peer_urls_count++] = strdup(url);
	}
	return 0;
}

static void handle_member(struct control_context *context, struct control_request *request, enum node_request_kind kind)
{
	struct node_request probe = {0};
	probe.kind = kind;
	if ((kind == REQUEST_MEMBER_REMOVE || kind == REQUEST_MEMBER_UPDATE || kind == REQUEST_MEMBER_PROMOTE) &&
	    read_member_id(context, request, "member_id", &probe.member_id))
		return;
	if (kind == REQUEST_MOVE_LEADER && read_member_id(context, request, "target_id", &probe.member_id))
		return;
	if ((kind == REQUEST_MEMBER_ADD || kind == REQUEST_MEMBER_UPDATE) && read_peer_urls(context, request, &probe)) {
		for (size_t k = 0; k < probe.peer_urls_count; k++)
			free(probe.peer_urls[k]);
		free(probe.peer_urls);
		return;
	}
	probe.is_learner = json_is_true(json_object_get(request->json, "is_learner"));
	struct node_request *node_request = new_request(context, kind, request);
	uint64_t request_id = node_request->request_id;
	*node_request = probe;
	node_request->request_id = request_id;
	post_to_core(context, node_request);
}

static void handle_counters(struct control_context *context, struct control_request *request)
{
	struct transport_counters counters = transport_counters(context->node->transport);
	json_t *transport = json_object();
	for (size_t k = 0; k < transport_counter_count(); k++)
		json_object_set_new(transport, transport_counter_name(k),
		                    json_integer((json_int_t)transport_counter_value(&counters, k)));
	struct control_socket_stats stats;
	control_socket_get_stats(context->server, &stats);
	json_t *socket = json_pack("{s:I, s:I, s:I, s:I}", "connections_accepted", (json_int_t)stats.connections_accepted,
	                           "connections_refused", (json_int_t)stats.connections_refused, "requests",
	                           (json_int_t)stats.requests, "bad_requests", (json_int_t)stats.bad_requests);
	control_socket_reply(context->server, request,
	                     json_pack("{s:o, s:o, s:I, s:I}", "transport", transport, "control_socket", socket,
	                               "applied_index", (json_int_t)atomic_load(&context->node->applied_index),
	                               "revision", (json_int_t)atomic_load(&context->node->revision)));
}

static void handle_request(void *argument, struct control_request *request)
{
	struct control_context *context = argument;
	const char *command = request->command;
	if (!strcmp(command, "put"))
		handle_put(context, request);
	else if (!strcmp(command, "get"))
		handle_get(context, request);
	else if (!strcmp(command, "del"))
		handle_delete(context, request);
	else if (!strcmp(command, "member_list"))
		handle_member(context, request, REQUEST_MEMBER_LIST);
	else if (!strcmp(command, "member_add"))
		handle_member(context, request, REQUEST_MEMBER_ADD);
	else if (!strcmp(command, "member_remove"))
		handle_member(context, request, REQUEST_MEMBER_REMOVE);
	else if (!strcmp(command, "member_update"))
		handle_member(context, request, REQUEST_MEMBER_UPDATE);
	else if (!strcmp(command, "member_promote"))
		handle_member(context, request, REQUEST_MEMBER_PROMOTE);
	else if (!strcmp(command, "endpoint_status"))
		handle_member(context, request, REQUEST_STATUS);
	else if (!strcmp(command, "move_leader"))
		handle_member(context, request, REQUEST_MOVE_LEADER);
	else if (!strcmp(command, "counters"))
		handle_counters(context, request);
	else
		control_socket_reply_error(context->server, request, "Unimplemented", "unknown command %s", command);
}

/* ---- replies ---- */

static json_t *header_json(const Etcdserverpb__ResponseHeader *header)
{
	char cluster[17], member[17];
	return json_pack("{s:s, s:s, s:I, s:I}", "cluster_id", control_format_hex_id(header ? header->cluster_id : 0, cluster),
	                 "member_id", control_format_hex_id(header ? header->member_id : 0, member), "revision",
	                 (json_int_t)(header ? header->revision : 0), "raft_term", (json_int_t)(header ? header->raft_term : 0));
}

static json_t *kv_json(const Mvccpb__KeyValue *kv)
{
	bool key_base64 = false, value_base64 = false;
	json_t *object = json_pack("{s:o, s:o, s:I, s:I, s:I, s:I}", "key",
	                           control_json_bytes((const char *)kv->key.data, kv->key.len, &key_base64), "value",
	                           control_json_bytes((const char *)kv->value.data, kv->value.len, &value_base64),
	                           "create_revision", (json_int_t)kv->create_revision, "mod_revision",
	                           (json_int_t)kv->mod_revision, "version", (json_int_t)kv->version, "lease",
	                           (json_int_t)kv->lease);
	if (key_base64 || value_base64) {
		/* One flag covers the whole object: encode both the same way. */
		if (!key_base64 || !value_base64) {
			size_t key_size = 4 * ((kv->key.len + 2) / 3) + 1, value_size = 4 * ((kv->value.len + 2) / 3) + 1;
			char *key = xmalloc(key_size), *value = xmalloc(value_size);
			control_base64_encode(kv->key.data, kv->key.len, key);
			control_base64_encode(kv->value.data, kv->value.len, value);
			json_object_set_new(object, "key", json_string(key));
			json_object_set_new(object, "value", json_string(value));
			free(key);
			free(value);
		}
		json_object_set_new(object, "encoding", json_string("base64"));
	}
	return object;
}

static json_t *kv_result_json(const struct kv_result *result)
{
	switch (result->kind) {
	case KV_RESPONSE_PUT: {
		Etcdserverpb__PutResponse *put = etcdserverpb__put_response__unpack(NULL, result->response_length, result->response);
		json_t *json = json_pack("{s:o}", "header", header_json(put ? put->header : NULL));
		etcdserverpb__put_response__free_unpacked(put, NULL);
		return json;
	}
	case KV_RESPONSE_DELETE_RANGE: {
		Etcdserverpb__DeleteRangeResponse *deleted =
		    etcdserverpb__delete_range_response__unpack(NULL, result->response_length, result->response);
		json_t *json = json_pack("{s:o, s:I}", "header", header_json(deleted ? deleted->header : NULL), "deleted",
		                         (json_int_t)(deleted ? deleted->deleted : 0));
		etcdserverpb__delete_range_response__free_unpacked(deleted, NULL);
		return json;
	}
	case KV_RESPONSE_RANGE: {
		Etcdserverpb__RangeResponse *range =
		    etcdserverpb__range_response__unpack(NULL, result->response_length, result->response);
		json_t *kvs = json_array();
		for (size_t k = 0; range && k < range->n_kvs; k++)
			json_array_append_new(kvs, kv_json(range->kvs[k]));
		json_t *json = json_pack("{s:o, s:o, s:I}", "header", header_json(range ? range->header : NULL), "kvs", kvs,
		                         "count", (json_int_t)(range ? range->count : 0));
		etcdserverpb__range_response__free_unpacked(range, NULL);
		return json;
	}
	default:
		return json_object();
	}
}

static void answer(struct control_context *context, struct node_reply *reply)
{
	for (size_t k = 0; k < context->waiting_count; k++) {
		if (context->waiting[k].request_id != reply->request_id)
			continue;
		struct control_request *request = context->waiting[k].request;
		context->waiting[k] = context->waiting[--context->waiting_count];
		char code_name[24];
		if (reply->json || reply->error[0] || reply->grpc_code) {
			/* A member or status request. */
			if (reply->grpc_code != GRPC_OK) {
				control_socket_reply_error(context->server, request,
				                           grpc_code_name(reply->grpc_code, code_name, sizeof(code_name)), "%s",
				                           reply->error);
			} else {
				json_error_t error;
				json_t *result = reply->json ? json_loads(reply->json, 0, &error) : json_object();
				control_socket_reply(context->server, request, result);
			}
		} else if (reply->kv.grpc_code != GRPC_OK) {
			control_socket_reply_error(context->server, request,
			                           grpc_code_name(reply->kv.grpc_code, code_name, sizeof(code_name)), "%s",
			                           reply->kv.error);
		} else {
			control_socket_reply(context->server, request, kv_result_json(&reply->kv));
		}
		return;
	}
	/* Nobody waits: the client went away, or this answers a request made before a restart. */
}

int operator_run(struct node *node, char *err, size_t errlen)
{
	struct control_context context = {.node = node};
	context.next_request_id = node_request_counter_start();
	struct control_socket_config config = {
	    .path = node->flags.control_socket, .handler = handle_request, .handler_context = &context};
	context.server = control_socket_open(&config, err, errlen);
	if (!context.server)
		return -1;
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	int signal_fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
	int epoll = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event event = {.events = EPOLLIN};
	event.data.u32 = 1;
	epoll_ctl(epoll, EPOLL_CTL_ADD, control_socket_fd(context.server), &event);
	event.data.u32 = 2;
	epoll_ctl(epoll, EPOLL_CTL_ADD, reply_mailbox_fd(&node->operator_inbox), &event);
	event.data.u32 = 3;
	epoll_ctl(epoll, EPOLL_CTL_ADD, signal_fd, &event);
	log_write("info", "serving the control socket", "\"path\":\"%s\"", node->flags.control_socket);
	while (!atomic_load(&node->stopping)) {
		struct epoll_event events[8];
		int ready = epoll_wait(epoll, events, 8, 100);
		if (ready < 0 && errno != EINTR)
			break;
		for (int k = 0; k < ready; k++) {
			if (events[k].data.u32 == 3) {
				struct signalfd_siginfo info;
				if (read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
					log_write("info", "received signal; shutting down", "\"signal\":\"%s\"", strsignal((int)info.ssi_signo));
					/* A second signal while handing over stops at once. */
					if (context.stop_transfer_request_id != 0)
						atomic_store(&node->stopping, true);
					else
						begin_stop(&context);
				}
			}
		}
		control_socket_process(context.server);
		struct node_reply **items;
		size_t count = reply_mailbox_take_all(&node->operator_inbox, &items);
		for (size_t k = 0; k < count; k++) {
			if (context.stop_transfer_request_id != 0 && items[k]->request_id == context.stop_transfer_request_id)
				finish_stop(&context, items[k]);
			else
				answer(&context, items[k]);
			node_reply_free(items[k]);
		}
		free(items);
		if (context.stop_transfer_deadline_ms != 0 && clock_monotonic_ms() >= context.stop_transfer_deadline_ms)
			finish_stop(&context, NULL);
	}
	/* Answers posted just before the stop (e.g. the confirmation of our own removal) still go out. */
	struct node_reply **items;
	size_t count = reply_mailbox_take_all(&node->operator_inbox, &items);
	for (size_t k = 0; k < count; k++) {
		answer(&context, items[k]);
		node_reply_free(items[k]);
	}
	free(items);
	for (size_t k = 0; k < context.waiting_count; k++)
		control_socket_reply_error(context.server, context.waiting[k].request, "Unavailable", "etcdserver: server stopped");
	for (int round = 0; round < 5; round++) {
		struct epoll_event events[8];
		control_socket_process(context.server);
		epoll_wait(epoll, events, 8, 20);
	}
	free(context.waiting);
	control_socket_close(context.server);
	close(epoll);
	close(signal_fd);
	return 0;
}
