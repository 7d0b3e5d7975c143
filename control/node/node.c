/* control/node/node.c: the node's threads started and stopped, the mail between them freed, and the
 * helpers every thread uses (request ids, reply routing, etcd's response header). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "node.h"

/* ---- frees ---- */

struct watch_backlog *watch_backlog_new(void)
{
	struct watch_backlog *backlog = xcalloc(1, sizeof(*backlog));
	atomic_init(&backlog->unsent_bytes, 0);
	atomic_init(&backlog->references, 1);
	return backlog;
}

void watch_backlog_hold(struct watch_backlog *backlog)
{
	atomic_fetch_add(&backlog->references, 1);
}

void watch_backlog_release(struct watch_backlog *backlog)
{
	if (backlog && atomic_fetch_sub(&backlog->references, 1) == 1)
		free(backlog);
}

void node_request_free(struct node_request *request)
{
	if (!request)
		return;
	watch_backlog_release(request->watch_backlog);
	free(request->payload);
	for (size_t k = 0; k < request->peer_urls_count; k++)
		free(request->peer_urls[k]);
	free(request->peer_urls);
	free(request);
}

void node_reply_free(struct node_reply *reply)
{
	if (!reply)
		return;
	kv_result_free(&reply->kv);
	free(reply->json);
	state_snapshot_close(reply->snapshot);
	free(reply);
}

void storage_job_free(struct storage_job *job)
{
	if (!job)
		return;
	for (size_t k = 0; k < job->committed_count; k++)
		free(job->committed[k].data);
	free(job->committed);
	free(job->membership_blob);
	free(job->snapshot);
	free(job->conf_state);
	for (size_t k = 0; k < job->reads_count; k++)
		free(job->reads[k].range_request);
	free(job->reads);
	free(job);
}

bool node_request_is_local(const struct node *node, uint64_t request_id)
{
	return (request_id >> 48) == (node->member_id & 0xffff);
}

uint64_t node_request_id(uint64_t member_id, unsigned channel, uint64_t counter)
{
	return ((member_id & 0xffff) << 48) | ((uint64_t)(channel & 0xf) << NODE_REQUEST_COUNTER_BITS) |
	       (counter & ((UINT64_C(1) << NODE_REQUEST_COUNTER_BITS) - 1));
}

uint64_t node_request_counter_start(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	/* 4 ids a millisecond of headroom before the counter could meet ids of an earlier run; 2^44 lasts
	 * past the year 2100 at that pace. */
	return ((uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u) << 2;
}

void node_fill_response_header(const struct node *node, Etcdserverpb__ResponseHeader *header)
{
	header->cluster_id = node->cluster_id;
	header->member_id = node->member_id;
	header->revision = (int64_t)atomic_load(&node->revision);
	header->raft_term = atomic_load(&node->raft_term);
}

void node_post_reply(struct node *node, struct node_reply *reply)
{
	unsigned channel = (unsigned)(reply->request_id >> NODE_REQUEST_COUNTER_BITS) & 0xf;
	struct reply_mailbox *mailbox = node->reply_channels[channel];
	reply_mailbox_post(mailbox ? mailbox : &node->operator_inbox, reply);
}

void node_alarms_publish(struct node *node, const struct alarm_list *alarms)
{
	struct alarm_list copy;
	alarm_list_copy(&copy, alarms);
	pthread_mutex_lock(&node->alarms_lock);
	struct alarm_list old = node->published_alarms;
	node->published_alarms = copy;
	atomic_store(&node->alarm_count, (unsigned)copy.count);
	pthread_mutex_unlock(&node->alarms_lock);
	alarm_list_free(&old);
}

void node_alarms_copy(struct node *node, struct alarm_list *out)
{
	pthread_mutex_lock(&node->alarms_lock);
	alarm_list_copy(out, &node->published_alarms);
	pthread_mutex_unlock(&node->alarms_lock);
}

bool node_alarm_active(struct node *node, uint64_t member_id, Etcdserverpb__AlarmType type)
{
	if (atomic_load(&node->alarm_count) == 0)
		return false;
	pthread_mutex_lock(&node->alarms_lock);
	bool active = alarm_list_has_member(&node->published_alarms, member_id, type);
	pthread_mutex_unlock(&node->alarms_lock);
	return active;
}

void node_stop_on_storage_failure(struct node *node, const char *error)
{
	char escaped[600];
	log_write("error", "storage failed; stopping without acknowledging anything more", "\"error\":\"%s\"",
	          log_json_escape(error, escaped, sizeof(escaped)));
	atomic_store(&node->exit_code, 1);
	atomic_store(&node->stopping, true);
}

void node_propose_nospace(struct node *node, uint64_t request_id)
{
	Etcdserverpb__AlarmRequest alarm = ETCDSERVERPB__ALARM_REQUEST__INIT;
	alarm.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
	alarm.memberid = node->member_id;
	alarm.alarm = ETCDSERVERPB__ALARM_TYPE__NOSPACE;
	Etcdserverpb__RequestHeader header = ETCDSERVERPB__REQUEST_HEADER__INIT;
	header.id = request_id;
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.header = &header;
	internal.alarm = &alarm;
	struct node_request *request = xcalloc(1, sizeof(*request));
	request->kind = REQUEST_PROPOSE;
	request->request_id = request_id;
	request->payload_length = etcdserverpb__internal_raft_request__get_packed_size(&internal);
	request->payload = xmalloc(request->payload_length);
	etcdserverpb__internal_raft_request__pack(&internal, request->payload);
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = CORE_MAIL_REQUEST;
	mail->request = request;
	core_mailbox_post(&node->core_inbox, mail);
}

bool node_refuse_for_space(struct node *node, int64_t cost, uint64_t request_id, uint64_t *last_raised_ms)
{
	if (atomic_load(&node->disk_full) && cost > 0)
		return true;
	if (space_quota_available(atomic_load(&node->db_size), cost, node->quota_bytes))
		return false;
	uint64_t now = clock_monotonic_ms();
	if (node_alarm_active(node, node->member_id, ETCDSERVERPB__ALARM_TYPE__NOSPACE) || now - *last_raised_ms < 100)
		return true;
	*last_raised_ms = now;
	node_propose_nospace(node, request_id);
	return true;
}

struct node_peer_metrics *node_peer_metrics_of(struct node *node, uint64_t id)
{
	if (id == 0 || id == JOIN_REPLY_PEER)
		return NULL;
	for (size_t k = 0; k < NODE_PEER_METRIC_SLOTS; k++) {
		struct node_peer_metrics *slot = &node->peer_metrics[k];
		uint_fast64_t holder = atomic_load_explicit(&slot->id, memory_order_acquire);
		if (holder == id)
			return slot;
		/* Two threads may take a slot for the same id at once (only the core counts today): the one whose swap
		 * fails finds the other's id there and shares the slot; another id there means: try the next. */
		if (holder == 0) {
			uint_fast64_t expected = 0;
			if (atomic_compare_exchange_strong_explicit(&slot->id, &expected, id, memory_order_acq_rel,
			                                            memory_order_acquire) ||
			    expected == id)
				return slot;
		}
	}
	return NULL;
}

/* etcd's buckets (prometheus.ExponentialBuckets as etcd's metrics.go files declare them). */
static void metrics_init(struct node *node)
{
	histogram_init(&node->wal_fsync_duration, 0.001, 2, 14);
	histogram_init(&node->backend_commit_duration, 0.001, 2, 14);
	histogram_init(&node->backend_snapshot_duration, 0.01, 2, 17);
	for (size_t k = 0; k < NODE_PEER_METRIC_SLOTS; k++)
		histogram_init(&node->peer_metrics[k].round_trip, 0.0001, 2, 16);
}

int node_start_threads(struct node *node, char *err, size_t errlen)
{
	metrics_init(node);
	if (core_mailbox_init(&node->core_inbox) || storage_mailbox_init(&node->storage_inbox) ||
	    snapshot_mailbox_init(&node->snapshot_inbox) || reply_mailbox_init(&node->operator_inbox)) {
		snprintf(err, errlen, "cannot create event fds: %s", strerror(errno));
		return -1;
	}
	pthread_mutex_init(&node->membership_lock, NULL);
	pthread_mutex_init(&node->alarms_lock, NULL);
	pthread_mutex_init(&node->storage_turn, NULL);
	node->quota_bytes = space_quota_bytes(node->flags.quota_backend_bytes);
	space_quota_log(node->flags.quota_backend_bytes);
	if (node_auth_open(node, err, errlen) != 0 || node_auth_start(node, err, errlen) != 0)
		return -1;
	/* Their owners loop anyway: senders ring only while an owner sleeps (mailbox.h). */
	core_mailbox_owner_polls(&node->core_inbox);
	storage_mailbox_owner_polls(&node->storage_inbox);
	if (pthread_create(&node->storage_thread, NULL, node_storage_main, node) ||
	    pthread_create(&node->core_thread, NULL, node_core_main, node) ||
	    pthread_create(&node->snapshot_thread, NULL, node_snapshot_main, node)) {
		snprintf(err, errlen, "cannot start threads: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void node_stop(struct node *node)
{
	atomic_store(&node->stopping, true);
	node_auth_stop(node);
	struct core_mail *stop = xcalloc(1, sizeof(*stop));
	struct storage_mail *storage_stop = xcalloc(1, sizeof(*storage_stop));
	stop->kind = CORE_MAIL_STOP;
	storage_stop->kind = STORAGE_MAIL_STOP;
	core_mailbox_post(&node->core_inbox, stop);
	pthread_join(node->core_thread, NULL);
	/* After the core (the transport's receiver): nothing posts to the snapshot thread any more. Its streams end unfinished;
	 * a receiver's sink keeps what it has for the next offer. */
	struct snapshot_mail *snapshot_stop = xcalloc(1, sizeof(*snapshot_stop));
	snapshot_stop->kind = SNAPSHOT_MAIL_STOP;
	snapshot_mailbox_post(&node->snapshot_inbox, snapshot_stop);
	pthread_join(node->snapshot_thread, NULL);
	storage_mailbox_post(&node->storage_inbox, storage_stop);
	pthread_join(node->storage_thread, NULL);
}

/* Mail still waiting when the threads have stopped: freed as its receiver would have. */
static void release_core_mail(struct core_mail *mail)
{
	switch (mail->kind) {
	case CORE_MAIL_PEER:
		free(mail->peer.bytes);
		break;
	case CORE_MAIL_REQUEST:
		node_request_free(mail->request);
		break;
	case CORE_MAIL_STORAGE_FAILED:
		free(mail->failure);
		break;
	case CORE_MAIL_LEASES:
		free(mail->leases->changes);
		free(mail->leases);
		break;
	case CORE_MAIL_SNAPSHOT_TAKEN:
		free(mail->taken.record);
		break;
	case CORE_MAIL_SNAPSHOT_OUT:
		free(mail->peer.bytes);
		break;
	case CORE_MAIL_SNAPSHOT_STATUS:
	case CORE_MAIL_STOP:
		break;
	}
	free(mail);
}

static void release_snapshot_mail(struct snapshot_mail *mail)
{
	if (mail->kind == SNAPSHOT_MAIL_SEND)
		free(mail->send.message);
	else if (mail->kind == SNAPSHOT_MAIL_PEER)
		free(mail->peer.bytes);
	else if (mail->kind == SNAPSHOT_MAIL_RELEASE) {
		/* Every thread has stopped: the files go now, as the snapshot thread would have removed them. */
		char error[512];
		(void)wal_released_remove(&mail->release.segments, error, sizeof(error));
	}
	free(mail);
}

static void release_storage_mail(struct storage_mail *mail)
{
	switch (mail->kind) {
	case STORAGE_MAIL_JOB:
		storage_job_free(mail->job);
		break;
	case STORAGE_MAIL_READ_NOW:
	case STORAGE_MAIL_CLIENT_REQUEST:
		node_request_free(mail->request);
		break;
	case STORAGE_MAIL_STOP:
		break;
	}
	free(mail);
}

void node_close(struct node *node)
{
	if (node->core_inbox.untyped.event_fd > 0) {
		struct core_mail **core_mail;
		size_t count = core_mailbox_take_all(&node->core_inbox, &core_mail);
		for (size_t k = 0; k < count; k++)
			release_core_mail(core_mail[k]);
		free(core_mail);
		struct storage_mail **storage_mail;
		count = storage_mailbox_take_all(&node->storage_inbox, &storage_mail);
		for (size_t k = 0; k < count; k++)
			release_storage_mail(storage_mail[k]);
		free(storage_mail);
		struct snapshot_mail **snapshot_mail;
		count = snapshot_mailbox_take_all(&node->snapshot_inbox, &snapshot_mail);
		for (size_t k = 0; k < count; k++)
			release_snapshot_mail(snapshot_mail[k]);
		free(snapshot_mail);
		struct node_reply **replies;
		count = reply_mailbox_take_all(&node->operator_inbox, &replies);
		for (size_t k = 0; k < count; k++)
			node_reply_free(replies[k]);
		free(replies);
		core_mailbox_destroy(&node->core_inbox);
		storage_mailbox_destroy(&node->storage_inbox);
		snapshot_mailbox_destroy(&node->snapshot_inbox);
		reply_mailbox_destroy(&node->operator_inbox);
	}
	node_auth_close(node);
	alarm_list_free(&node->published_alarms);
	transport_close(node->transport);
	if (node->wal)
		wal_close(node->wal);
	state_close(node->state);
	snap_store_close(node->snapshots);
	free(node->initial_conf_state);
	raft_free(node->raft);
	membership_free(&node->membership);
	free(node->published_membership);
	free(node->liveness);
	node_flags_free(&node->flags);
}
