/* control/node/node_storage_client.c: HashKV, Snapshot, Watch and lease clocks on the storage thread (see
 * node_storage_client.h). */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "node_storage_client.h"
#include "raft_internal.pb-c.h"

/* A watcher catching up from the history reads at most this many events, and at most
 * WATCH_CATCH_UP_SCANNED revisions of any key, per step (one revision is never split). The steps are read
 * by the replay thread, which runs at nice 19: on a machine with few cores the replay's CPU (some µs per
 * event, a RocksDB seek each) was taken from the put path when the storage thread read it itself. A step
 * queued for longer than WATCH_CATCH_UP_STARVED_MS (the replay thread got no CPU: a loaded machine) is read
 * by the storage thread itself, at most WATCH_CATCH_UP_STARVED_STEPS per WATCH_CATCH_UP_STARVED_MS, so a
 * replay always progresses. */
enum { WATCH_CATCH_UP_EVENTS = 200, WATCH_CATCH_UP_SCANNED = 2000, WATCH_CATCH_UP_STARVED_MS = 100,
       WATCH_CATCH_UP_STARVED_STEPS = 5 };
/* A watcher whose stream has more than this unsent is parked (etcd: a victim) until its client reads. Unsent
 * bytes sit in the call's output buffer, which grows by doubling: at 4 MiB it reached 8 MiB for a client that
 * never reads, and the buffers it went through stayed in malloc's arenas (tests/etcdctl/24). A parked watcher
 * catches up from the history once its client reads, off the put path (the replay thread). */
enum { WATCH_BACKLOG_BYTES = 1024 * 1024 };

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
	bool fragment;           /* split a response over --max-request-bytes (etcd's sendFragments) */
	/* Synced watchers get each applied batch's events as it commits; the others (new ones starting in
	 * the past, and parked ones) catch up from the history in bounded steps, then join. */
	bool synced;
	/* A step of its catch-up is with the replay thread; a watcher removed meanwhile is freed when it
	 * comes back (removed), as the replay thread reads its key and range. */
	bool replaying;
	bool removed;
	int64_t next_revision;   /* unsynced: the first revision not yet sent; synced: sends nothing before it */
	uint64_t last_sent_ms;
	struct watch_backlog *backlog; /* its stream's unsent bytes (NULL: not tracked) */
	size_t *matched;         /* during a fan-out: the indexes of this batch's events it matched */
	size_t matched_count;
	size_t matched_capacity;
};

/* Watchers of one exact key (no range_end): an event finds them by its key alone, so a put costs
 * nothing for the watchers of other keys. */
struct key_watchers {
	uint8_t *key;          /* NULL: free slot */
	size_t key_length;
	uint64_t hash;
	struct watcher **watchers;
	size_t count;
	size_t capacity;
};

/* A WatchProgressRequest answered later: its stream (the call on one client thread's channel) still had a
 * watcher catching up from the history when it came. */
struct deferred_progress {
	uint64_t request_id;
	uint64_t call_id;
};

/* One catch-up step: the events from `from_revision` on through a view of the state taken when it was
 * queued (so it never sees a later compaction, and never a revision the synced watchers were not sent). */
struct replay_step {
	struct replay_step *next;
	struct watcher *watcher;
	int64_t from_revision;
	struct state_events_view *view;
	uint64_t queued_ms;
	bool read_here;  /* read by the storage thread (starved): its events are freed there too */
	int status; /* the result, once read */
	char error[256];
	struct state_event_list list;
};

enum { REPLAY_SENT_CAPACITY = 64 };

struct replay_queue {
	struct replay_step *head;
	struct replay_step *tail;
};

/* The replay thread: it reads the queued steps and hands them back; the storage thread keeps the watchers
 * and sends what was read, so a watcher joins the synced ones without a gap or a repeat. */
struct replay {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t work;     /* a step was queued, or stop */
	pthread_cond_t idle;     /* the step being read was handed back */
	struct replay_queue queued;
	struct replay_queue done;
	/* The events of sent steps, freed by the replay thread: they were allocated there, and a free on the
	 * storage thread would take the lock of that thread's malloc arena, which it may hold when preempted (it
	 * runs at nice 19). A fixed ring, so that handing them over allocates nothing here either. */
	struct state_event_list sent[REPLAY_SENT_CAPACITY];
	size_t sent_count;
	struct replay_step *reading; /* the step being read, NULL: none */
	bool stopping;
	int done_fd;             /* an eventfd the storage thread polls: steps were handed back */
};

struct storage_clients {
	struct node *node;
	struct replay replay;
	size_t replaying_count;     /* watchers with a step queued or being read */
	size_t replay_steps;        /* steps not finished yet, removed watchers' too */
	uint64_t last_starved_read_ms; /* when this thread last read a step itself */
	struct watcher **watchers;  /* every watcher */
	size_t watcher_count;
	size_t watcher_capacity;
	struct key_watchers *by_key; /* open addressing, a power of two, at most half full */
	size_t by_key_capacity;
	size_t by_key_used;
	struct watcher **range_watchers; /* watchers of a range or prefix: matched by a scan */
	size_t range_watcher_count;
	size_t range_watcher_capacity;
	size_t unsynced_count;
	/* Kept with the synced flags, so that neither a fan-out nor a storage turn walks every watcher: with
	 * 10,000 watchers on one key, those walks halved the put rate to other keys. */
	size_t synced_prev_kv_count;
	struct watcher **touched;   /* watchers with matches in the fan-out under way */
	size_t touched_count;
	size_t touched_capacity;
	int64_t fanned_out_revision; /* events up to here went to every synced watcher */
	struct deferred_progress *deferred_progress; /* progress requests waiting for their stream to catch up */
	size_t deferred_progress_count;
	size_t deferred_progress_capacity;
	struct lease_change *lease_changes; /* applied since the last batch, for the core's clocks */
	size_t lease_change_count;
	size_t lease_change_capacity;
};

static void post_lease_changes(struct storage_clients *clients, bool reset)
{
	struct lease_changes *changes = xcalloc(1, sizeof(*changes));
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
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
		    xrealloc(clients->lease_changes, clients->lease_change_capacity * sizeof(struct lease_change));
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
	else
		return;
	/* At once, before the reply and before the applied index moves past it: a client told "granted" may
	 * renew right away, and the core must know the lease by then (node_leases.h). */
	post_lease_changes(clients, false);
}

static void replay_start(struct replay *replay);
static void replay_stop(struct storage_clients *clients);

struct storage_clients *storage_clients_new(struct node *node)
{
	struct storage_clients *clients = xcalloc(1, sizeof(*clients));
	clients->node = node;
	replay_start(&clients->replay);
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

static void watcher_free(struct watcher *watcher)
{
	free(watcher->key);
	free(watcher->range_end);
	free(watcher->matched);
	watch_backlog_release(watcher->backlog);
	free(watcher);
}

/* ---- the replay thread ---- */

static void replay_queue_push(struct replay_queue *queue, struct replay_step *step)
{
	step->next = NULL;
	if (queue->tail)
		queue->tail->next = step;
	else
		queue->head = step;
	queue->tail = step;
}

static struct replay_step *replay_queue_take_all(struct replay_queue *queue)
{
	struct replay_step *steps = queue->head;
	queue->head = queue->tail = NULL;
	return steps;
}

static void replay_read(struct replay_step *step)
{
	const struct watcher *watcher = step->watcher; /* its key and range never change */
	struct state_bytes key = {watcher->key, watcher->key_length};
	struct state_bytes range_end = {watcher->range_end, watcher->range_end_length};
	step->status = state_events_view_read(step->view, step->from_revision, key, range_end, WATCH_CATCH_UP_EVENTS,
	                                      WATCH_CATCH_UP_SCANNED, watcher->prev_kv, &step->list, step->error,
	                                      sizeof(step->error));
}

static void *replay_main(void *argument)
{
	struct replay *replay = argument;
	/* Nice 19 (a put's threads, at 0, weigh 68 times as much and preempt it) and SCHED_BATCH (its own wakeups
	 * preempt nobody). Not SCHED_IDLE: a thread that gets no CPU while others run keeps any lock it was
	 * preempted in (RocksDB's block cache and DB mutex, malloc's arenas) for as long, and puts waiting on one
	 * stalled for over a second beside four replaying watchers; at nice 19 it runs again soon. */
	struct sched_param parameter = {0};
	if (pthread_setschedparam(pthread_self(), SCHED_BATCH, &parameter) != 0 ||
	    setpriority(PRIO_PROCESS, (id_t)gettid(), 19) != 0)
		log_write("warn", "watch replay thread: its low priority was refused, replaying at normal priority", NULL);
	pthread_mutex_lock(&replay->lock);
	while (!replay->stopping) {
		if (replay->sent_count) {
			struct state_event_list sent[REPLAY_SENT_CAPACITY];
			size_t count = replay->sent_count;
			memcpy(sent, replay->sent, count * sizeof(sent[0]));
			replay->sent_count = 0;
			pthread_mutex_unlock(&replay->lock);
			for (size_t k = 0; k < count; k++)
				state_event_list_free(&sent[k]);
			pthread_mutex_lock(&replay->lock);
			continue;
		}
		struct replay_step *step = replay->queued.head;
		if (!step) {
			pthread_cond_wait(&replay->work, &replay->lock);
			continue;
		}
		replay->queued.head = step->next;
		if (!replay->queued.head)
			replay->queued.tail = NULL;
		replay->reading = step;
		pthread_mutex_unlock(&replay->lock);
		replay_read(step);
		pthread_mutex_lock(&replay->lock);
		replay->reading = NULL;
		replay_queue_push(&replay->done, step);
		pthread_cond_broadcast(&replay->idle);
		uint64_t one = 1;
		if (write(replay->done_fd, &one, sizeof(one)) < 0) {
			/* the counter is far from full; nothing to do but let the storage thread's tick find it */
		}
	}
	pthread_mutex_unlock(&replay->lock);
	return NULL;
}

static void replay_start(struct replay *replay)
{
	pthread_mutex_init(&replay->lock, NULL);
	pthread_cond_init(&replay->work, NULL);
	pthread_cond_init(&replay->idle, NULL);
	replay->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	/* Without the thread (or its doorbell) the storage thread reads every step itself, as before it. */
	if (replay->done_fd >= 0 && pthread_create(&replay->thread, NULL, replay_main, replay) == 0)
		replay->started = true;
	else
		log_write("warn", "watch replay thread could not start: the storage thread replays the history itself", NULL);
}

/* A step that will not be used (the state is about to change under its view, or the member stops): its
 * watcher gets a new one from the same revision later. */
static void replay_step_discard(struct storage_clients *clients, struct replay_step *step)
{
	struct watcher *watcher = step->watcher;
	state_events_view_close(step->view);
	state_event_list_free(&step->list);
	clients->replay_steps--;
	if (watcher->removed) {
		watcher_free(watcher);
	} else {
		watcher->replaying = false;
		clients->replaying_count--;
	}
	free(step);
}

/* Waits until the replay thread reads nothing and drops every step: no view outlives the state it was
 * taken of (a snapshot install or a reopen closes the RocksDB under it). */
static void replay_quiesce(struct storage_clients *clients)
{
	struct replay *replay = &clients->replay;
	pthread_mutex_lock(&replay->lock);
	struct replay_step *queued = replay_queue_take_all(&replay->queued);
	/* The step under way stops at its next record: at nice 19 on a busy machine the thread may wait long for
	 * the CPU it needs to finish a whole step. */
	if (replay->reading)
		state_events_view_cancel(replay->reading->view);
	while (replay->reading)
		pthread_cond_wait(&replay->idle, &replay->lock);
	struct replay_step *done = replay_queue_take_all(&replay->done);
	pthread_mutex_unlock(&replay->lock);
	for (struct replay_step *lists[2] = {queued, done}, **list = lists; list < lists + 2; list++) {
		for (struct replay_step *step = *list, *next; step; step = next) {
			next = step->next;
			replay_step_discard(clients, step);
		}
	}
}

static void replay_stop(struct storage_clients *clients)
{
	struct replay *replay = &clients->replay;
	replay_quiesce(clients);
	if (replay->started) {
		pthread_mutex_lock(&replay->lock);
		replay->stopping = true;
		pthread_cond_broadcast(&replay->work);
		pthread_mutex_unlock(&replay->lock);
		pthread_join(replay->thread, NULL);
	}
	for (size_t k = 0; k < replay->sent_count; k++)
		state_event_list_free(&replay->sent[k]);
	replay->sent_count = 0;
	if (replay->done_fd >= 0)
		close(replay->done_fd);
	pthread_cond_destroy(&replay->work);
	pthread_cond_destroy(&replay->idle);
	pthread_mutex_destroy(&replay->lock);
}

void storage_clients_free(struct storage_clients *clients)
{
	if (!clients)
		return;
	replay_stop(clients);
	for (size_t k = 0; k < clients->watcher_count; k++)
		watcher_free(clients->watchers[k]);
	free(clients->watchers);
	for (size_t k = 0; k < clients->by_key_capacity; k++) {
		free(clients->by_key[k].key);
		free(clients->by_key[k].watchers);
	}
	free(clients->by_key);
	free(clients->range_watchers);
	free(clients->touched);
	free(clients->lease_changes);
	free(clients->deferred_progress);
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
	struct node_reply *reply = xcalloc(1, sizeof(*reply));
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
	reply->kv.response = xmalloc(reply->kv.response_length ? reply->kv.response_length : 1);
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

/* etcd's Defragment: the state's space given back (state_defragment), here on the storage thread, so
 * this member applies nothing meanwhile, as etcd's defrag holds its backend. */
static void defragment(struct storage_clients *clients, struct node_request *request)
{
	struct node *node = clients->node;
	uint64_t before = state_db_size(node->state);
	char before_text[32], after_text[32];
	space_quota_format_bytes(before, before_text, sizeof(before_text));
	log_write("info", "defragmenting", "\"path\":\"%s\",\"current-db-size-bytes\":%" PRIu64 ",\"current-db-size\":\"%s\"",
	          node->member_dir, before, before_text);
	uint64_t started_us = clock_monotonic_us();
	char error[256] = "";
	if (state_defragment(node->state, error, sizeof(error)) != STATE_OK) {
		log_write("error", "failed to defragment", "\"path\":\"%s\",\"error\":\"%s\"", node->member_dir, error);
		reply_error(node, request->request_id, GRPC_INTERNAL, "etcdserver: failed to defragment");
		return;
	}
	uint64_t after = state_db_size(node->state);
	atomic_store(&node->db_size, after);
	space_quota_format_bytes(after, after_text, sizeof(after_text));
	uint64_t took_us = clock_monotonic_us() - started_us;
	log_write("info", "defragmented", "\"path\":\"%s\",\"current-db-size-bytes-diff\":%" PRId64 ",\"current-db-size-bytes\":%"
	          PRIu64 ",\"current-db-size\":\"%s\",\"took\":\"%" PRIu64 ".%03" PRIu64 "ms\"",
	          node->member_dir, (int64_t)after - (int64_t)before, after, after_text, took_us / 1000, took_us % 1000);
	/* No header, as etcd's maintenance server answers a defragment ({} through its gateway). */
	Etcdserverpb__DefragmentResponse response = ETCDSERVERPB__DEFRAGMENT_RESPONSE__INIT;
	post_message(node, request->request_id, 0, &response.base);
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

static bool watcher_is_exact(const struct watcher *watcher)
{
	return watcher->range_end_length == 0;
}

/* The client has not read what was sent: more would only pile up in this member's memory. */
static bool watcher_backlogged(const struct watcher *watcher)
{
	return watcher->backlog && atomic_load(&watcher->backlog->unsent_bytes) > WATCH_BACKLOG_BYTES;
}

/* ---- the exact-key index ---- */

static uint64_t key_hash(const uint8_t *key, size_t length)
{
	uint64_t hash = UINT64_C(1469598103934665603); /* FNV-1a */
	for (size_t k = 0; k < length; k++)
		hash = (hash ^ key[k]) * UINT64_C(1099511628211);
	return hash;
}

static struct key_watchers *key_slot(struct storage_clients *clients, const uint8_t *key, size_t length,
                                     uint64_t hash, bool create)
{
	if (clients->by_key_capacity == 0) {
		if (!create)
			return NULL;
		clients->by_key_capacity = 64;
		clients->by_key = xcalloc(clients->by_key_capacity, sizeof(struct key_watchers));
	}
	size_t mask = clients->by_key_capacity - 1;
	for (size_t slot = hash & mask;; slot = (slot + 1) & mask) {
		struct key_watchers *entry = &clients->by_key[slot];
		if (!entry->key) {
			if (!create)
				return NULL;
			entry->key = xmemdup(key, length);
			entry->key_length = length;
			entry->hash = hash;
			clients->by_key_used++;
			return entry;
		}
		if (entry->hash == hash && entry->key_length == length && memcmp(entry->key, key, length) == 0)
			return entry;
	}
}

static void index_add(struct storage_clients *clients, struct watcher *watcher);

/* Keeps the table at most half full of keys that still have watchers; keys whose watchers are all gone
 * are dropped here, not one by one (removing from open addressing would need tombstones). */
static void index_rebuild(struct storage_clients *clients, size_t capacity)
{
	for (size_t k = 0; k < clients->by_key_capacity; k++) {
		free(clients->by_key[k].key);
		free(clients->by_key[k].watchers);
	}
	free(clients->by_key);
	clients->by_key = xcalloc(capacity, sizeof(struct key_watchers));
	clients->by_key_capacity = capacity;
	clients->by_key_used = 0;
	clients->range_watcher_count = 0;
	for (size_t k = 0; k < clients->watcher_count; k++)
		index_add(clients, clients->watchers[k]);
}

static void pointer_append(struct watcher ***array, size_t *count, size_t *capacity, struct watcher *watcher)
{
	if (*count == *capacity) {
		*capacity = *capacity ? *capacity * 2 : 8;
		*array = xreallocarray(*array, *capacity, sizeof(struct watcher *));
	}
	(*array)[(*count)++] = watcher;
}

static bool pointer_remove(struct watcher **array, size_t *count, const struct watcher *watcher)
{
	for (size_t k = 0; k < *count; k++) {
		if (array[k] == watcher) {
			array[k] = array[--*count];
			return true;
		}
	}
	return false;
}

static void index_add(struct storage_clients *clients, struct watcher *watcher)
{
	if (!watcher_is_exact(watcher)) {
		pointer_append(&clients->range_watchers, &clients->range_watcher_count, &clients->range_watcher_capacity,
		               watcher);
		return;
	}
	uint64_t hash = key_hash(watcher->key, watcher->key_length);
	struct key_watchers *entry = key_slot(clients, watcher->key, watcher->key_length, hash, false);
	if (!entry && (clients->by_key_used + 1) * 2 > clients->by_key_capacity) {
		/* At most a quarter full after the rebuild, so the rebuild's own adds never rebuild again. */
		size_t live = 0;
		for (size_t k = 0; k < clients->by_key_capacity; k++)
			live += clients->by_key[k].count > 0;
		size_t capacity = 64;
		while (capacity < 4 * (live + 1))
			capacity *= 2;
		index_rebuild(clients, capacity); /* adds every listed watcher, this one too */
		return;
	}
	if (!entry)
		entry = key_slot(clients, watcher->key, watcher->key_length, hash, true);
	pointer_append(&entry->watchers, &entry->count, &entry->capacity, watcher);
}

static void index_remove(struct storage_clients *clients, const struct watcher *watcher)
{
	if (!watcher_is_exact(watcher)) {
		pointer_remove(clients->range_watchers, &clients->range_watcher_count, watcher);
		return;
	}
	struct key_watchers *entry =
	    key_slot(clients, watcher->key, watcher->key_length, key_hash(watcher->key, watcher->key_length), false);
	if (entry)
		pointer_remove(entry->watchers, &entry->count, watcher);
}

/* ---- sending ---- */

static void post_watch_response(struct storage_clients *clients, struct watcher *watcher,
                                Etcdserverpb__WatchResponse *response)
{
	post_message(clients->node, watcher->reply_request_id, watcher->call_id, &response->base);
	if (watcher->backlog)
		atomic_fetch_add(&watcher->backlog->unsent_bytes, etcdserverpb__watch_response__get_packed_size(response));
}

/* One WatchResponse with the events, or, for a watcher that asked for fragments, etcd's fragments when it
 * would reach --max-request-bytes (plus gRPC's allowance): each takes events while it stays below the limit (at least one), and all
 * but the last are marked `fragment`. */
static void post_events(struct storage_clients *clients, struct watcher *watcher, Mvccpb__Event **events, size_t count)
{
	Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	fill_header(clients->node, &header);
	Etcdserverpb__WatchResponse response = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	response.header = &header;
	response.watch_id = watcher->watch_id;
	response.n_events = count;
	response.events = events;
	watcher->last_sent_ms = clock_monotonic_ms();
	/* etcd's limit is --max-request-bytes plus its gRPC allowance (grpcOverheadBytes, 512 KiB). */
	size_t limit = (size_t)clients->node->flags.max_request_bytes + 512 * 1024;
	if (!watcher->fragment || count < 2 || etcdserverpb__watch_response__get_packed_size(&response) < limit) {
		post_watch_response(clients, watcher, &response);
		return;
	}
	size_t first = 0;
	while (first < count) {
		response.events = events + first;
		response.n_events = 1;
		while (first + response.n_events < count) {
			response.n_events++;
			if (etcdserverpb__watch_response__get_packed_size(&response) >= limit) {
				response.n_events--;
				break;
			}
		}
		first += response.n_events;
		response.fragment = first < count;
		post_watch_response(clients, watcher, &response);
	}
}

/* Sends the events of `list` at `indexes` (all of them when indexes is NULL) that this watcher wants
 * (revision >= its next, in its range, not filtered out), as one WatchResponse; nothing when none do. */
static void send_events(struct storage_clients *clients, struct watcher *watcher, const struct state_event_list *list,
                        const size_t *indexes, size_t index_count)
{
	size_t candidates = indexes ? index_count : list->count;
	if (candidates == 0)
		return;
	size_t chosen_count = 0;
	Mvccpb__Event *events = xcalloc(candidates, sizeof(Mvccpb__Event));
	Mvccpb__Event **pointers = xcalloc(candidates, sizeof(Mvccpb__Event *));
	Mvccpb__KeyValue *kvs = xcalloc(candidates * 2, sizeof(Mvccpb__KeyValue));
	for (size_t k = 0; k < candidates; k++) {
		const struct state_event *event = &list->events[indexes ? indexes[k] : k];
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
	if (chosen_count)
		post_events(clients, watcher, pointers, chosen_count);
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

/* ---- the watcher list ---- */

static void watcher_add(struct storage_clients *clients, struct watcher *watcher)
{
	pointer_append(&clients->watchers, &clients->watcher_count, &clients->watcher_capacity, watcher);
	index_add(clients, watcher);
	if (!watcher->synced)
		clients->unsynced_count++;
	else if (watcher->prev_kv)
		clients->synced_prev_kv_count++;
}

static void watcher_remove_at(struct storage_clients *clients, size_t position)
{
	struct watcher *watcher = clients->watchers[position];
	index_remove(clients, watcher);
	if (!watcher->synced)
		clients->unsynced_count--;
	else if (watcher->prev_kv)
		clients->synced_prev_kv_count--;
	clients->watchers[position] = clients->watchers[--clients->watcher_count];
	if (watcher->replaying) {
		watcher->removed = true; /* freed when its step comes back */
		clients->replaying_count--;
	} else {
		watcher_free(watcher);
	}
}

static void watcher_park(struct storage_clients *clients, struct watcher *watcher)
{
	if (!watcher->synced)
		return;
	watcher->synced = false;
	clients->unsynced_count++;
	if (watcher->prev_kv)
		clients->synced_prev_kv_count--;
}

static void watcher_join(struct storage_clients *clients, struct watcher *watcher)
{
	if (watcher->synced)
		return;
	watcher->synced = true;
	clients->unsynced_count--;
	if (watcher->prev_kv)
		clients->synced_prev_kv_count++;
	if (watcher->next_revision <= clients->fanned_out_revision)
		watcher->next_revision = clients->fanned_out_revision + 1;
}

static void send_deferred_progress(struct storage_clients *clients);

static size_t watcher_position(const struct storage_clients *clients, const struct watcher *watcher)
{
	for (size_t k = 0; k < clients->watcher_count; k++)
		if (clients->watchers[k] == watcher)
			return k;
	return clients->watcher_count;
}

/* A step read: its events go to the watcher, which joins the synced ones once it has everything they were
 * sent. A watcher whose next revision was compacted away is cancelled with the compact revision (etcd). */
static void replay_step_finish(struct storage_clients *clients, struct replay_step *step)
{
	struct watcher *watcher = step->watcher;
	if (watcher->removed) {
		replay_step_discard(clients, step);
		return;
	}
	watcher->replaying = false;
	clients->replaying_count--;
	clients->replay_steps--;
	state_events_view_close(step->view);
	if (step->status != STATE_OK) {
		if (step->status == STATE_ERR_COMPACTED)
			send_watch_cancel(clients, watcher, state_compact_revision(clients->node->state),
			                  "etcdserver: mvcc: required revision has been compacted");
		else
			send_watch_cancel(clients, watcher, 0, step->error);
		watcher_remove_at(clients, watcher_position(clients, watcher));
	} else {
		send_events(clients, watcher, &step->list, NULL, 0);
		if (step->list.next_revision > watcher->next_revision)
			watcher->next_revision = step->list.next_revision;
		if (watcher->next_revision > clients->fanned_out_revision)
			watcher_join(clients, watcher);
	}
	struct replay *replay = &clients->replay;
	bool handed = false;
	if (replay->started && !step->read_here) {
		pthread_mutex_lock(&replay->lock);
		if (replay->sent_count < REPLAY_SENT_CAPACITY) {
			replay->sent[replay->sent_count++] = step->list;
			handed = true;
			pthread_cond_signal(&replay->work);
		}
		pthread_mutex_unlock(&replay->lock);
	}
	if (!handed)
		state_event_list_free(&step->list);
	free(step);
}

/* The watcher's next step, read from a view of the state as it is now: every revision up to what the
 * synced watchers were sent is in it, and no compaction applied later takes any of it away. */
static struct replay_step *replay_step_new(struct storage_clients *clients, struct watcher *watcher)
{
	struct replay_step *step = xcalloc(1, sizeof(*step));
	step->watcher = watcher;
	step->from_revision = watcher->next_revision;
	step->queued_ms = clock_monotonic_ms();
	step->status = state_events_view_open(clients->node->state, &step->view, step->error, sizeof(step->error));
	watcher->replaying = true;
	clients->replaying_count++;
	clients->replay_steps++;
	return step;
}

bool storage_clients_catch_up(struct storage_clients *clients)
{
	struct replay *replay = &clients->replay;
	if (clients->replay_steps > 0) {
		pthread_mutex_lock(&replay->lock);
		struct replay_step *done = replay_queue_take_all(&replay->done);
		/* Steps the replay thread has not taken for a while (it gets no CPU on a loaded machine) are read
		 * here, up to WATCH_CATCH_UP_STARVED_STEPS (1,000 events) per WATCH_CATCH_UP_STARVED_MS, so a replay
		 * goes on at least at about etcd's pace (1,000 revisions per 100 ms) and costs the put path no more. */
		uint64_t now = clock_monotonic_ms();
		struct replay_queue starved = {0};
		if (!replay->started || now - clients->last_starved_read_ms >= WATCH_CATCH_UP_STARVED_MS) {
			size_t limit = replay->started ? WATCH_CATCH_UP_STARVED_STEPS : 1;
			for (size_t taken = 0; taken < limit && replay->queued.head; taken++) {
				struct replay_step *step = replay->queued.head;
				if (replay->started && now - step->queued_ms < WATCH_CATCH_UP_STARVED_MS)
					break;
				replay->queued.head = step->next;
				if (!replay->queued.head)
					replay->queued.tail = NULL;
				replay_queue_push(&starved, step);
				clients->last_starved_read_ms = now;
			}
		}
		pthread_mutex_unlock(&replay->lock);
		for (struct replay_step *step = starved.head, *next; step; step = next) {
			next = step->next;
			if (step->status == STATE_OK)
				replay_read(step);
			step->read_here = true;
			replay_step_finish(clients, step);
		}
		for (struct replay_step *step = done, *next; step; step = next) {
			next = step->next;
			replay_step_finish(clients, step);
		}
	}
	/* Parked watchers whose clients read again are seen here, at least every tick. */
	if (clients->unsynced_count > clients->replaying_count) {
		struct replay_queue queue = {0}, failed = {0};
		for (size_t k = 0; k < clients->watcher_count; k++) {
			struct watcher *watcher = clients->watchers[k];
			if (watcher->synced || watcher->replaying || watcher_backlogged(watcher))
				continue;
			if (watcher->next_revision > clients->fanned_out_revision) {
				watcher_join(clients, watcher);
				continue;
			}
			struct replay_step *step = replay_step_new(clients, watcher);
			if (step->status == STATE_OK)
				replay_queue_push(&queue, step);
			else
				replay_queue_push(&failed, step); /* no view: cancelled with the reason, after this walk */
		}
		for (struct replay_step *step = failed.head, *next; step; step = next) {
			next = step->next;
			replay_step_finish(clients, step);
		}
		if (queue.head) {
			pthread_mutex_lock(&replay->lock);
			if (replay->queued.tail)
				replay->queued.tail->next = queue.head;
			else
				replay->queued.head = queue.head;
			replay->queued.tail = queue.tail;
			pthread_cond_signal(&replay->work);
			pthread_mutex_unlock(&replay->lock);
		}
	}
	if (clients->deferred_progress_count)
		send_deferred_progress(clients);
	/* Without the replay thread this thread reads the steps, one a turn: it polls meanwhile. */
	return !replay->started && clients->replay_steps > 0;
}

int storage_clients_replay_fd(const struct storage_clients *clients)
{
	return clients->replay.done_fd;
}

void storage_clients_replay_heard(struct storage_clients *clients)
{
	uint64_t count;
	if (read(clients->replay.done_fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: already read */
	}
}

void storage_clients_before_state_change(struct storage_clients *clients)
{
	replay_quiesce(clients);
}

static void watch_create(struct storage_clients *clients, struct node_request *request)
{
	struct node *node = clients->node;
	Etcdserverpb__WatchCreateRequest *create =
	    etcdserverpb__watch_create_request__unpack(NULL, request->payload_length, request->payload);
	if (!create)
		return; /* the client thread checked it; nothing to answer on */
	struct watcher *watcher = xcalloc(1, sizeof(*watcher));
	watcher->reply_request_id = request->request_id;
	watcher->call_id = request->call_id;
	watcher->watch_id = request->watch_id;
	watcher->backlog = request->watch_backlog;
	request->watch_backlog = NULL; /* the watcher's reference now */
	watcher->key_length = create->key.len;
	watcher->key = xmemdup(create->key.data, create->key.len);
	watcher->range_end_length = create->range_end.len;
	watcher->range_end = xmemdup(create->range_end.data, create->range_end.len);
	watcher->prev_kv = create->prev_kv;
	watcher->progress_notify = create->progress_notify;
	watcher->fragment = create->fragment;
	for (size_t k = 0; k < create->n_filters; k++) {
		if (create->filters[k] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT)
			watcher->no_put = true;
		else if (create->filters[k] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE)
			watcher->no_delete = true;
	}
	/* A start in the future is kept: events before it are never sent, however far ahead it is. */
	watcher->next_revision =
	    create->start_revision > 0 ? create->start_revision : clients->fanned_out_revision + 1;
	watcher->synced = watcher->next_revision > clients->fanned_out_revision;
	watcher->last_sent_ms = clock_monotonic_ms();
	etcdserverpb__watch_create_request__free_unpacked(create, NULL);
	watcher_add(clients, watcher);
	(void)node;
}

static void watch_cancel(struct storage_clients *clients, const struct node_request *request)
{
	unsigned request_channel = (unsigned)(request->request_id >> NODE_REQUEST_COUNTER_BITS) & 0xf;
	for (size_t k = 0; k < clients->watcher_count;) {
		struct watcher *watcher = clients->watchers[k];
		unsigned channel = (unsigned)(watcher->reply_request_id >> NODE_REQUEST_COUNTER_BITS) & 0xf;
		if (watcher->call_id == request->call_id && channel == request_channel &&
		    (request->every_watch_of_call || watcher->watch_id == request->watch_id))
			watcher_remove_at(clients, k); /* the last watcher moved here: look at k again */
		else
			k++;
	}
}

/* One gRPC stream: the call on the client thread (reply channel) that owns it. */
static bool same_stream(uint64_t request_id, uint64_t call_id, uint64_t other_request_id, uint64_t other_call_id)
{
	unsigned channel = (unsigned)(request_id >> NODE_REQUEST_COUNTER_BITS) & 0xf;
	unsigned other_channel = (unsigned)(other_request_id >> NODE_REQUEST_COUNTER_BITS) & 0xf;
	return call_id == other_call_id && channel == other_channel;
}

/* How many watchers the stream has, and whether each of them has been sent every event so far. */
static bool stream_synced(const struct storage_clients *clients, uint64_t request_id, uint64_t call_id,
                          size_t *watcher_count)
{
	*watcher_count = 0;
	for (size_t k = 0; k < clients->watcher_count; k++) {
		const struct watcher *watcher = clients->watchers[k];
		if (!same_stream(watcher->reply_request_id, watcher->call_id, request_id, call_id))
			continue;
		(*watcher_count)++;
		if (!watcher->synced)
			return false;
	}
	return true;
}

static void send_progress(struct storage_clients *clients, uint64_t request_id, uint64_t call_id)
{
	Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	fill_header(clients->node, &header);
	Etcdserverpb__WatchResponse response = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	response.header = &header;
	response.watch_id = -1;
	post_message(clients->node, request_id, call_id, &response.base);
}

/* etcd: a response with watch id -1 and no events at the current revision, which promises that every event
 * up to it was sent on the stream (bookmarkable). So it goes out only once every watcher of the stream has
 * caught up: until then it waits (as later etcd releases defer it; one per stream is enough, as there). */
static void watch_progress(struct storage_clients *clients, const struct node_request *request)
{
	size_t watchers;
	if (stream_synced(clients, request->request_id, request->call_id, &watchers)) {
		send_progress(clients, request->request_id, request->call_id);
		return;
	}
	for (size_t k = 0; k < clients->deferred_progress_count; k++)
		if (same_stream(clients->deferred_progress[k].request_id, clients->deferred_progress[k].call_id,
		                request->request_id, request->call_id))
			return;
	if (clients->deferred_progress_count == clients->deferred_progress_capacity) {
		clients->deferred_progress_capacity = clients->deferred_progress_capacity ? clients->deferred_progress_capacity * 2 : 8;
		clients->deferred_progress = xreallocarray(clients->deferred_progress, clients->deferred_progress_capacity,
		                                           sizeof(*clients->deferred_progress));
	}
	clients->deferred_progress[clients->deferred_progress_count++] =
	    (struct deferred_progress){request->request_id, request->call_id};
}

/* The deferred progress requests whose streams have caught up are answered; those whose streams lost every
 * watcher (cancelled, the call closed) are dropped. */
static void send_deferred_progress(struct storage_clients *clients)
{
	for (size_t k = 0; k < clients->deferred_progress_count;) {
		struct deferred_progress pending = clients->deferred_progress[k];
		size_t watchers;
		if (!stream_synced(clients, pending.request_id, pending.call_id, &watchers)) {
			k++;
			continue;
		}
		if (watchers > 0)
			send_progress(clients, pending.request_id, pending.call_id);
		clients->deferred_progress[k] = clients->deferred_progress[--clients->deferred_progress_count];
	}
}

static void match(struct storage_clients *clients, struct watcher *watcher, size_t event_index)
{
	if (watcher->matched_count == 0)
		pointer_append(&clients->touched, &clients->touched_count, &clients->touched_capacity, watcher);
	if (watcher->matched_count == watcher->matched_capacity) {
		watcher->matched_capacity = watcher->matched_capacity ? watcher->matched_capacity * 2 : 16;
		watcher->matched = xreallocarray(watcher->matched, watcher->matched_capacity, sizeof(size_t));
	}
	watcher->matched[watcher->matched_count++] = event_index;
}

/* One list of new events (revisions from `from` on) to the synced watchers: each event finds the
 * watchers of its key through the index and the range watchers by a scan; each watcher then gets one
 * response with its events. A synced watcher has been sent everything before `from` (its own next
 * revision only matters when it starts in the future), so one whose client is not reading is parked
 * with `from` as its next revision and later catches up from there. */
static void fan_out(struct storage_clients *clients, const struct state_event_list *list, int64_t from)
{
	for (size_t e = 0; e < list->count; e++) {
		const struct state_event *event = &list->events[e];
		struct key_watchers *entry = key_slot(clients, event->kv.key, event->kv.key_len,
		                                      key_hash(event->kv.key, event->kv.key_len), false);
		for (size_t k = 0; entry && k < entry->count; k++)
			if (entry->watchers[k]->synced)
				match(clients, entry->watchers[k], e);
		for (size_t k = 0; k < clients->range_watcher_count; k++) {
			struct watcher *watcher = clients->range_watchers[k];
			if (watcher->synced && key_in_range(watcher, event->kv.key, event->kv.key_len))
				match(clients, watcher, e);
		}
	}
	for (size_t k = 0; k < clients->touched_count; k++) {
		struct watcher *watcher = clients->touched[k];
		if (watcher_backlogged(watcher)) {
			watcher_park(clients, watcher);
			if (watcher->next_revision < from)
				watcher->next_revision = from;
		} else
			send_events(clients, watcher, list, watcher->matched, watcher->matched_count);
		watcher->matched_count = 0;
	}
	clients->touched_count = 0;
}

void storage_clients_after_apply(struct storage_clients *clients)
{
	struct node *node = clients->node;
	if (clients->lease_change_count)
		post_lease_changes(clients, false);
	int64_t current = state_revision(node->state);
	if (current <= clients->fanned_out_revision)
		return;
	size_t synced = clients->watcher_count - clients->unsynced_count;
	if (synced == 0) {
		clients->fanned_out_revision = current;
		return;
	}
	bool want_prev_kv = clients->synced_prev_kv_count > 0;
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
			char escaped[512];
			log_write("error", "failed to read watch events", "\"error\":\"%s\"",
			          log_json_escape(error, escaped, sizeof(escaped)));
			while (clients->watcher_count > 0) {
				send_watch_cancel(clients, clients->watchers[0], 0, "etcdserver: failed to read events");
				watcher_remove_at(clients, 0);
			}
			break;
		}
		fan_out(clients, &list, from);
		int64_t next = list.next_revision;
		state_event_list_free(&list);
		if (next <= from)
			break;
		from = next;
	}
	clients->fanned_out_revision = current;
}

void storage_clients_after_restore(struct storage_clients *clients)
{
	struct node *node = clients->node;
	free(clients->lease_changes);
	clients->lease_changes = NULL;
	clients->lease_change_count = clients->lease_change_capacity = 0;
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
	/* Every watcher goes on from its own next revision in the new state, as one that starts in the past:
	 * it catches up from the history, or is cancelled as compacted when the snapshot no longer has it. */
	for (size_t k = 0; k < clients->watcher_count; k++) {
		struct watcher *watcher = clients->watchers[k];
		if (watcher->synced && watcher->next_revision <= clients->fanned_out_revision)
			watcher->next_revision = clients->fanned_out_revision + 1;
		watcher_park(clients, watcher);
	}
	clients->fanned_out_revision = state_revision(node->state);
}

void storage_clients_tick(struct storage_clients *clients)
{
	/* etcd: every --experimental-watch-progress-notify-interval, a watcher that asked for progress
	 * notifications and was sent nothing meanwhile gets one, if it is synced (has every event so far). */
	if (clients->deferred_progress_count)
		send_deferred_progress(clients);
	uint64_t now = clock_monotonic_ms();
	uint64_t interval = clients->node->flags.watch_progress_notify_interval_ms;
	for (size_t k = 0; k < clients->watcher_count; k++) {
		struct watcher *watcher = clients->watchers[k];
		if (!watcher->progress_notify || !watcher->synced || interval == 0 || now - watcher->last_sent_ms < interval)
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
	case REQUEST_DEFRAGMENT:
		defragment(clients, request);
		break;
	default:
		reply_error(clients->node, request->request_id, GRPC_UNIMPLEMENTED, "etcdserver: not implemented");
		break;
	}
	node_request_free(request);
}
