/* control/node/node_storage.c: the storage thread. It owns the state machine (the WAL is the core
 * thread's: node_core_wal.c).
 *
 * Each storage job (the committed part of one Raft Ready) is applied as soon as it arrives (the core hands
 * out only entries that are committed and durable in its WAL), one state batch per job, with the applied
 * index in the same batch. Linearizable reads wait here until the applied index reaches their read index. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "failpoint.h"
#include "log.h"
#include "node.h"
#include "node_snapshot.h"
#include "node_storage_client.h"
#include "raft_internal_fields.h"

struct storage_context {
	struct node *node;
	struct pending_read *reads;   /* linearizable reads waiting for their index */
	size_t reads_count;
	size_t reads_capacity;
	bool ids_saved;
	bool failed;                     /* the state failed for another reason than space: the member stops */
	bool disk_full;                  /* the state had no room: jobs wait in `held` until it has */
	struct storage_job **held;       /* jobs not applied yet, oldest first from held_head */
	size_t held_head;
	size_t held_count;
	size_t held_capacity;
	uint64_t resume_checked_ms;
	uint64_t answered_through;       /* entries whose answers a batch that then failed posted already */
	uint64_t noted_through;          /* entries the snapshot keeper counted (a retried batch counts once) */
	struct storage_clients *clients; /* watchers, lease clocks */
	struct auth_store *auth;         /* the auth store as applied so far (node_auth.h publishes it) */
	struct snapshot_keeper *keeper;  /* when to snapshot, and what the WAL may release */
	bool batch_compacts;             /* the batch being applied holds a compaction (its failpoints) */
	struct alarm_list alarms;        /* the alarms as applied so far (node_alarms_publish publishes them) */
	uint64_t disk_full_raised_ms;    /* a full disk: when this member last proposed its NOSPACE alarm */
	uint64_t disk_full_requests;     /* request ids of those proposals */
	ProtobufCBinaryData *batch_items; /* scratch: the requests of one batch entry (scan_batch) */
	bool inline_turn;                /* the core thread is applying a job (node_storage_apply_inline) */
	bool snapshot_check_pending;     /* applied inline: the snapshot keeper looks on the next turn here */
};

static void post_reply(struct node *node, struct node_reply *reply)
{
	node_post_reply(node, reply);
}

static bool is_no_space(const char *error)
{
	return strstr(error, "No space left on device") || strstr(error, state_status_message(STATE_ERR_NOSPACE));
}

/* A full disk: this member's NOSPACE alarm proposed (and leadership handed over if it leads and still cannot
 * write). */
static void raise_disk_full_alarm(struct storage_context *context)
{
	struct node *node = context->node;
	if (context->disk_full_requests == 0)
		context->disk_full_requests = node_request_counter_start();
	context->disk_full_raised_ms = clock_monotonic_ms();
	node_propose_nospace(node, node_request_id(node->member_id, 0, context->disk_full_requests++));
	bool cannot_write = atomic_load(&node->disk_full) & (NODE_DISK_FULL_WAL | NODE_DISK_FULL_STATE);
	if (cannot_write && atomic_load(&node->leader_id) == node->member_id) {
		/* A leader that cannot persist its own log must not lead: the most caught-up voter takes over. */
		struct node_request *transfer = xcalloc(1, sizeof(*transfer));
		transfer->kind = REQUEST_MOVE_LEADER;
		transfer->request_id = node_request_id(node->member_id, 0, context->disk_full_requests++);
		struct core_mail *mail = xcalloc(1, sizeof(*mail));
		mail->kind = CORE_MAIL_REQUEST;
		mail->request = transfer;
		core_mailbox_post(&node->core_inbox, mail);
	}
}

/* The state has no room left (the WAL's full disk comes the same way, from the core: node->disk_full):
 * nothing more can be made durable here, but nothing is lost either (the state's batch was not written). Rather
 * than stopping, the member stays up as etcd's NOSPACE semantics ask: it raises its NOSPACE alarm through Raft
 * (the others commit it while they are a quorum, and then every member refuses writes), refuses writes itself,
 * hands leadership over when it has it, and goes on serving reads from its applied state (serializable reads,
 * watches of what it applied, hash, status). The job that failed and every later one wait, in order, until
 * the disk has room again (try_resume). */
static void enter_disk_full(struct storage_context *context, const char *what, const char *error)
{
	struct node *node = context->node;
	context->disk_full = true;
	context->resume_checked_ms = clock_monotonic_ms();
	atomic_fetch_or(&node->disk_full, NODE_DISK_FULL_STATE | NODE_DISK_FULL_ALARM_UNSEEN);
	char escaped[600];
	/* etcd's words for its backend write failures (backend's batch_tx.go). */
	log_write("error", "failed to commit tx", "\"what\":\"%s\",\"data-dir\":\"%s\",\"error\":\"%s\"", what,
	          node->flags.data_dir, log_json_escape(error, escaped, sizeof(escaped)));
	log_write("warn", "out of disk space: raising alarm NOSPACE, refusing writes, serving reads until the disk has room again",
	          "\"member-id\":\"%" PRIx64 "\",\"data-dir\":\"%s\"", node->member_id, node->flags.data_dir);
	raise_disk_full_alarm(context);
}

/* RocksDB failed: nothing more can be applied, so the member must stop acknowledging. The core stops the
 * member on this report. */
static void stop_member(struct storage_context *context, const char *what, const char *error)
{
	if (context->failed)
		return;
	context->failed = true;
	/* Nothing more can be applied: the core must stop acknowledging. Tell it. */
	struct storage_failure *failure = xcalloc(1, sizeof(*failure));
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
	snprintf(failure->error, sizeof(failure->error), "%s: %s", what, error);
	mail->kind = CORE_MAIL_STORAGE_FAILED;
	mail->failure = failure;
	core_mailbox_post(&context->node->core_inbox, mail);
}

/* A full disk is the exception (enter_disk_full): the member stays up. */
static void stop_on_storage_failure(struct storage_context *context, const char *what, const char *error)
{
	if (context->failed)
		return;
	if (is_no_space(error)) {
		if (!context->disk_full)
			enter_disk_full(context, what, error);
		return;
	}
	stop_member(context, what, error);
}

static struct kv_header header_for(const struct node *node, uint64_t raft_term)
{
	struct kv_header header = {node->cluster_id, node->member_id, raft_term};
	return header;
}

static void serve_read(struct storage_context *context, uint64_t request_id, const uint8_t *range_bytes,
                       size_t length, uint64_t raft_term)
{
	struct node *node = context->node;
	struct node_reply *reply = xcalloc(1, sizeof(*reply));
	reply->request_id = request_id;
	Etcdserverpb__RangeRequest *range = etcdserverpb__range_request__unpack(NULL, length, range_bytes);
	if (!range) {
		reply->kv.grpc_code = GRPC_INVALID_ARGUMENT;
		snprintf(reply->kv.error, sizeof(reply->kv.error), "etcdserver: malformed range request");
	} else {
		struct kv_header header = header_for(node, raft_term);
		kv_range(node->state, range, &header, &reply->kv);
		etcdserverpb__range_request__free_unpacked(range, NULL);
	}
	post_reply(node, reply);
}

static void serve_ready_reads(struct storage_context *context, uint64_t raft_term)
{
	uint64_t applied = state_applied_index(context->node->state);
	size_t kept = 0;
	for (size_t k = 0; k < context->reads_count; k++) {
		struct pending_read *read = &context->reads[k];
		if (read->read_index <= applied) {
			serve_read(context, read->request_id, read->range_request, read->range_request_length, raft_term);
			free(read->range_request);
		} else {
			context->reads[kept++] = *read;
		}
	}
	context->reads_count = kept;
}

/* Authenticate's token: a simple one is registered on every member (a client may use it on any), a JWT
 * is signed only where the client waits for it. */
struct token_assignment {
	struct node *node;
	bool local;
};

static int assign_token(void *argument, const char *user, uint64_t revision, const char *simple_prefix, uint64_t index,
                        char **token, char *err, size_t errlen)
{
	struct token_assignment *assignment = argument;
	struct auth_tokens *tokens = assignment->node->auth.tokens;
	if (!assignment->local && !auth_tokens_are_simple(tokens)) {
		*token = xstrdup("");
		return 0;
	}
	return auth_tokens_assign(tokens, user, revision, simple_prefix, index, clock_monotonic_ms(), token, err, errlen);
}

static void tokens_enabled(void *argument)
{
	auth_tokens_enable(((struct token_assignment *)argument)->node->auth.tokens);
}

static void tokens_disabled(void *argument)
{
	auth_tokens_disable(((struct token_assignment *)argument)->node->auth.tokens);
}

static void user_invalidated(void *argument, const char *user)
{
	auth_tokens_invalidate_user(((struct token_assignment *)argument)->node->auth.tokens, user);
}

/* An auth request (etcd's authStore through authApplierV3), or a KV or lease request after the checks
 * etcd's authApplierV3 makes against the header's user. A changed store is published before the answer
 * goes out, so the client that made the change finds it in force on its next request. */
static void apply_with_auth(struct storage_context *context, const Etcdserverpb__InternalRaftRequest *request,
                            const struct kv_header *header, uint64_t index, uint64_t request_id, struct kv_result *result)
{
	struct node *node = context->node;
	if (!auth_is_auth_request(request)) {
		enum auth_status status = auth_check_kv_request(context->auth, node->state, request);
		if (status != AUTH_OK)
			auth_status_to_result(status, result);
		else
			kv_apply_request(node->state, request, header, result);
		return;
	}
	struct token_assignment assignment = {node, node_request_is_local(node, request_id)};
	const struct auth_apply_hooks hooks = {
	    .context = &assignment,
	    .bcrypt_cost = node->auth.bcrypt_cost,
	    .assign_token = assign_token,
	    .enabled = tokens_enabled,
	    .disabled = tokens_disabled,
	    .user_invalidated = user_invalidated,
	};
	struct auth_store *before = context->auth;
	char error[256] = "";
	if (auth_apply_request(&context->auth, node->state, request, header, index, &hooks, result, error,
	                       sizeof(error)) != 0) {
		stop_on_storage_failure(context, "auth apply", error);
		return;
	}
	if (context->auth != before)
		node_auth_publish(node, context->auth);
}

/* One client request: applied in the open batch, answered if it was made on this member. */
enum { SLOW_APPLY_NANOSECONDS = 100 * 1000 * 1000 };

static void apply_one(struct storage_context *context, const Etcdserverpb__InternalRaftRequest *request,
                      const struct kv_header *header, uint64_t index)
{
	struct node *node = context->node;
	uint64_t request_id = request->header ? request->header->id : request->id;
	struct node_reply *reply = xcalloc(1, sizeof(*reply));
	reply->request_id = request_id;
	if (request->compaction)
		context->batch_compacts = true;
	uint64_t started_ns = clock_monotonic_ns();
	if (request->alarm) {
		/* etcd's applier takes alarms without an auth check (any client may list and disarm). */
		char error[256] = "";
		bool changed = false;
		if (alarm_apply(&context->alarms, node->state, request->alarm, header, &reply->kv, &changed, error,
		                sizeof(error)) != 0)
			stop_on_storage_failure(context, "alarm apply", error);
		else if (changed)
			node_alarms_publish(node, &context->alarms);
	} else if (!alarm_refuses(&context->alarms, request, &reply->kv)) {
		/* (refused: a NOSPACE alarm is active; etcd's capped applier answers before the auth checks) */
		apply_with_auth(context, request, header, index, request_id, &reply->kv);
	}
	/* etcd_server_slow_apply_total: etcd counts an apply over its warnApplyDuration, 100 ms. */
	if (clock_monotonic_ns() - started_ns > SLOW_APPLY_NANOSECONDS)
		atomic_fetch_add_explicit(&node->slow_applies, 1, memory_order_relaxed);
	storage_clients_note_applied(context->clients, request, &reply->kv);
	/* (an entry of a batch that failed for want of space and is applied again was answered the first time,
	 * with the same result) */
	if (node_request_is_local(node, request_id) && index > context->answered_through)
		post_reply(node, reply);
	else
		node_reply_free(reply);
}

/* The requests of a batch entry, found in place: the core packs such an entry with `batch` fields only
 * (node_core.c), and unpacking it whole would copy every request once more before each is unpacked. Fills
 * items (capacity given) and returns how many, or -1 when the entry is not a batch of this shape or holds
 * more than capacity (the caller unpacks it then). */
static long scan_batch(const uint8_t *data, size_t length, ProtobufCBinaryData *items, size_t capacity)
{
	const uint8_t *at = data, *end = data + length;
	size_t count = 0;
	while (at < end) {
		uint64_t tag, size;
		if (!protobuf_read_varint(&at, end, &tag) ||
		    tag != PROTOBUF_TAG(INTERNAL_RAFT_FIELD_BATCH, PROTOBUF_WIRE_LENGTH_DELIMITED) ||
		    !protobuf_read_varint(&at, end, &size) || size > (uint64_t)(end - at) || count == capacity)
			return -1;
		items[count++] = (ProtobufCBinaryData){(size_t)size, (uint8_t *)at};
		at += size;
	}
	return count > 0 ? (long)count : -1;
}

enum { BATCH_SCAN_CAPACITY = 4096 };

/* Several client requests in one entry: applied in order, each answered on its own. */
static void apply_batch(struct storage_context *context, const ProtobufCBinaryData *items, size_t count,
                        const struct kv_header *header, uint64_t index)
{
	for (size_t b = 0; b < count; b++) {
		Etcdserverpb__InternalRaftRequest *inner =
		    etcdserverpb__internal_raft_request__unpack(NULL, items[b].len, items[b].data);
		if (!inner) {
			log_write("warn", "skipping a batched request that does not decode", "\"index\":%" PRIu64 ",\"position\":%zu",
			          index, b);
			continue;
		}
		apply_one(context, inner, header, index);
		etcdserverpb__internal_raft_request__free_unpacked(inner, NULL);
	}
}

/* Applies the job's committed entries in one state batch. False when the batch was not written: the state had
 * no room (context->disk_full: the job is applied again later) or failed (context->failed). */
static bool apply_committed(struct storage_context *context, struct storage_job *job)
{
	struct node *node = context->node;
	if (context->failed)
		return false;
	if (job->committed_count == 0 && !job->membership_blob)
		return true;
	char error[256] = "";
	if (state_batch_begin(node->state, error, sizeof(error)) != STATE_OK) {
		stop_on_storage_failure(context, "state batch", error);
		return false;
	}
	if (!context->ids_saved && state_cluster_id(node->state) == 0) {
		if (state_set_ids(node->state, node->cluster_id, node->member_id, error, sizeof(error)) != STATE_OK) {
			state_batch_abort(node->state);
			stop_on_storage_failure(context, "state ids", error);
			return false;
		}
		context->ids_saved = true;
	}
	uint64_t applied = state_applied_index(node->state);
	uint64_t last = applied;
	struct kv_header header = header_for(node, job->raft_term);
	context->batch_compacts = false;
	for (size_t k = 0; k < job->committed_count; k++) {
		struct committed_entry *entry = &job->committed[k];
		if (entry->index <= applied)
			continue; /* applied before a restart: the applied index is exact, this never repeats work */
		last = entry->index;
		bool noted = entry->index <= context->noted_through;
		context->noted_through = entry->index;
		if (entry->type != RAFT_ENTRY_NORMAL || entry->length == 0) {
			if (!noted)
				snapshot_keeper_note_entry(context->keeper, entry->index, entry->term, 1);
			continue; /* membership changes arrive as the blob; empty entries are a new leader's */
		}
		long batched = scan_batch(entry->data, entry->length, context->batch_items, BATCH_SCAN_CAPACITY);
		if (batched > 0) {
			/* --snapshot-count counts client requests, however many one entry holds. */
			if (!noted)
				snapshot_keeper_note_entry(context->keeper, entry->index, entry->term, (uint64_t)batched);
			apply_batch(context, context->batch_items, (size_t)batched, &header, entry->index);
			continue;
		}
		Etcdserverpb__InternalRaftRequest *request =
		    etcdserverpb__internal_raft_request__unpack(NULL, entry->length, entry->data);
		/* --snapshot-count counts client requests, however many one entry holds. */
		if (!noted)
			snapshot_keeper_note_entry(context->keeper, entry->index, entry->term,
			                           request && request->n_batch ? request->n_batch : 1);
		if (!request) {
			log_write("warn", "skipping an entry that does not decode", "\"index\":%" PRIu64, entry->index);
			continue;
		}
		if (request->n_batch) {
			apply_batch(context, request->batch, request->n_batch, &header, entry->index);
		} else if (!request->cluster_member_attr_set) {
			/* (member attributes: the core thread keeps the member list; the blob below persists it) */
			apply_one(context, request, &header, entry->index);
		}
		etcdserverpb__internal_raft_request__free_unpacked(request, NULL);
	}
	if (job->membership_blob) {
		struct state_bytes blob = {(const uint8_t *)job->membership_blob, strlen(job->membership_blob)};
		if (state_set_membership(node->state, blob, error, sizeof(error)) != STATE_OK) {
			state_batch_abort(node->state);
			stop_on_storage_failure(context, "state membership", error);
			return false;
		}
	}
	if (last == applied) {
		state_batch_abort(node->state);
		return true;
	}
	FAILPOINT("beforeCommit");
	if (context->batch_compacts)
		FAILPOINT("compactBeforeCommitScheduledCompact");
	/* etcd_disk_backend_commit_duration_seconds: etcd times its bolt transaction's commit; this is ours. */
	uint64_t commit_started_ns = clock_monotonic_ns();
	if (state_batch_commit(node->state, last, error, sizeof(error)) != STATE_OK) {
		/* Its local requests were answered as they were applied: not again when it is retried. */
		if (last > context->answered_through)
			context->answered_through = last;
		stop_on_storage_failure(context, "state commit", error);
		return false;
	}
	histogram_observe_ns(&node->backend_commit_duration, clock_monotonic_ns() - commit_started_ns);
	FAILPOINT("afterCommit");
	if (context->batch_compacts)
		FAILPOINT("compactAfterCommitScheduledCompact");
	atomic_store(&node->applied_index, last);
	atomic_store(&node->revision, (uint64_t)state_revision(node->state));
	atomic_store(&node->db_size, state_db_size(node->state));
	atomic_store(&node->db_size_in_use, state_db_size_in_use(node->state));
	storage_clients_after_apply(context->clients);
	/* (a snapshot that finds no room is taken again after a later batch, once the disk has room) */
	if (context->inline_turn)
		context->snapshot_check_pending = true; /* a checkpoint never runs on the Raft loop */
	else if (snapshot_keeper_after_apply(context->keeper, error, sizeof(error)) != 0)
		stop_on_storage_failure(context, "snapshot", error);
	return true;
}

/* The alarms the state keeps (at start, and after a snapshot replaced the state), published. */
static int reload_alarms(struct storage_context *context, char *err, size_t errlen)
{
	struct alarm_list loaded;
	if (alarm_list_load(context->node->state, &loaded, err, errlen) != 0)
		return -1;
	alarm_list_free(&context->alarms);
	context->alarms = loaded;
	node_alarms_publish(context->node, &context->alarms);
	return 0;
}

/* One job: a snapshot to install, the committed entries, the reads waiting for them. False when the state had
 * no room for it (context->disk_full): the job is kept and run again once it has, without what it finished
 * (an installed snapshot). */
static bool run_job(struct storage_context *context, struct storage_job *job)
{
	struct node *node = context->node;
	if (job->snapshot && !context->failed) {
		char error[512] = "";
		storage_clients_before_state_change(context->clients);
		if (snapshot_keeper_install(context->keeper, job, error, sizeof(error)) != 0) {
			stop_on_storage_failure(context, "snapshot install", error);
		} else if (node_auth_reload(node, &context->auth, error, sizeof(error)) != 0) {
			stop_on_storage_failure(context, "auth store after a snapshot install", error);
		} else if (reload_alarms(context, error, sizeof(error)) != 0) {
			stop_on_storage_failure(context, "alarms after a snapshot install", error);
		} else {
			/* The leases first: the core must know them before the applied index passes them. */
			storage_clients_after_restore(context->clients);
			atomic_store(&node->applied_index, state_applied_index(node->state));
			atomic_store(&node->revision, (uint64_t)state_revision(node->state));
			atomic_store(&node->db_size, state_db_size(node->state));
			atomic_store(&node->db_size_in_use, state_db_size_in_use(node->state));
			free(job->snapshot);
			job->snapshot = NULL;
		}
		if (context->disk_full)
			return false;
	}
	if (job->conf_state)
		snapshot_keeper_note_conf(context->keeper, job->conf_state, job->conf_state_length);
	if (!apply_committed(context, job) && context->disk_full)
		return false;
	for (size_t k = 0; k < job->reads_count; k++) {
		if (context->reads_count == context->reads_capacity) {
			context->reads_capacity = context->reads_capacity ? context->reads_capacity * 2 : 64;
			context->reads = xrealloc(context->reads, context->reads_capacity * sizeof(struct pending_read));
		}
		context->reads[context->reads_count++] = job->reads[k];
	}
	job->reads_count = 0;
	serve_ready_reads(context, job->raft_term);
	return true;
}

static void hold_job(struct storage_context *context, struct storage_job *job)
{
	if (context->held_head + context->held_count == context->held_capacity) {
		if (context->held_head > 0) {
			memmove(context->held, context->held + context->held_head, context->held_count * sizeof(*context->held));
			context->held_head = 0;
		} else {
			context->held_capacity = context->held_capacity ? context->held_capacity * 2 : 64;
			context->held = xrealloc(context->held, context->held_capacity * sizeof(*context->held));
		}
	}
	context->held[context->held_head + context->held_count++] = job;
}

static void free_held(struct storage_context *context)
{
	for (size_t k = 0; k < context->held_count; k++)
		storage_job_free(context->held[context->held_head + k]);
	context->held_head = context->held_count = 0;
}

/* The jobs that waited for room, in order, until one finds none again. */
static void run_held(struct storage_context *context)
{
	while (!context->disk_full && !context->failed && context->held_count > 0) {
		struct storage_job *job = context->held[context->held_head];
		if (!run_job(context, job))
			break; /* no room again: it stays first */
		storage_job_free(job);
		context->held_head++;
		context->held_count--;
	}
	if (context->failed)
		free_held(context);
	if (context->held_count == 0)
		context->held_head = 0;
}

static void take_job(struct storage_context *context, struct storage_job *job)
{
	if (context->failed) {
		/* The member is stopping: its reads time out at their clients, its messages are never sent. */
		storage_job_free(job);
		return;
	}
	if (context->disk_full || context->held_count > 0) {
		hold_job(context, job);
		return;
	}
	if (run_job(context, job))
		storage_job_free(job);
	else if (context->failed)
		storage_job_free(job);
	else
		hold_job(context, job);
}

/* While the disk is full, how often the state looks for room again (a statvfs). */
enum { RESUME_CHECK_MS = 1000 };

/* The state had no room: once it has again (state_resume; RocksDB reopened if its own write failed), the
 * in-memory alarms and auth store go back to what the state holds (the failed batch changed them as it
 * applied) and the held jobs are applied, the failed one first. */
static void try_resume(struct storage_context *context)
{
	struct node *node = context->node;
	uint64_t now = clock_monotonic_ms();
	if (!context->disk_full || context->failed || now - context->resume_checked_ms < RESUME_CHECK_MS)
		return;
	context->resume_checked_ms = now;
	char error[512] = "";
	storage_clients_before_state_change(context->clients); /* a resume may reopen RocksDB */
	int status = state_resume(node->state, error, sizeof(error));
	if (status == STATE_ERR_NOSPACE)
		return;
	context->disk_full = false;
	if (status != STATE_OK) {
		/* (RocksDB could not be opened again: the state is closed, even if it says the disk is full) */
		stop_member(context, "resuming the state after a full disk", error);
	} else if (reload_alarms(context, error, sizeof(error)) != 0) {
		stop_on_storage_failure(context, "alarms after a full disk", error);
	} else if (node_auth_reload(node, &context->auth, error, sizeof(error)) != 0) {
		stop_on_storage_failure(context, "auth store after a full disk", error);
	}
	if (context->failed) {
		free_held(context);
		return;
	}
	atomic_fetch_and(&node->disk_full, ~(unsigned)NODE_DISK_FULL_STATE);
	log_write("info", "the disk has room again: applying resumed", "\"data-dir\":\"%s\",\"applied-index\":%" PRIu64
	          ",\"waiting-jobs\":%zu", node->flags.data_dir, state_applied_index(node->state), context->held_count);
	run_held(context);
}

/* A member whose disk filled proposes its NOSPACE alarm every 2 s: it cannot see its alarm applied while it
 * applies nothing, and a proposal may be lost (to a leader change, its own hand-over); the others apply an
 * active one as a no-op. Once the WAL and the state both resumed, it goes on refusing writes until it has
 * applied its own alarm (with every member full, none could commit it before), which from then on refuses
 * writes on every member until an operator disarms it, as in etcd. */
static void watch_disk_full(struct storage_context *context, uint64_t now)
{
	struct node *node = context->node;
	unsigned full = atomic_load(&node->disk_full);
	if (full == 0)
		return;
	if (!(full & (NODE_DISK_FULL_WAL | NODE_DISK_FULL_STATE)) &&
	    alarm_list_has_member(&context->alarms, node->member_id, ETCDSERVERPB__ALARM_TYPE__NOSPACE)) {
		atomic_fetch_and(&node->disk_full, ~(unsigned)NODE_DISK_FULL_ALARM_UNSEEN);
		log_write("info", "the disk has room again: member writing; writes stay refused until the NOSPACE alarm is "
		          "disarmed", "\"member-id\":\"%" PRIx64 "\",\"data-dir\":\"%s\",\"applied-index\":%" PRIu64,
		          node->member_id, node->flags.data_dir, state_applied_index(node->state));
		return;
	}
	if (now - context->disk_full_raised_ms >= 2000)
		raise_disk_full_alarm(context);
}

enum { INLINE_MAX_ENTRIES = 256, INLINE_MAX_BYTES = 1 << 20 }; /* about 20 ms of applying small puts */

/* Applying on the core thread saves a put two wake-ups (core → storage, and the storage thread's sleep
 * after it) on every member: measured on a quiet machine (bench/README.md, "apply inline"), one client's put
 * p50 -16 % and CPU per put -20 %, +7-10 % puts/s at 1,000 clients. Only when the storage thread sleeps with
 * no mail, so jobs stay in order and a busy storage thread keeps applying off the Raft loop; what must not
 * pause heartbeats stays on the storage thread: snapshot installs (never inline), the snapshot keeper's
 * checkpoints (deferred to the storage thread's next turn, within 100 ms), watchers catching up,
 * defragmentation and client requests (storage mail). */
bool node_storage_apply_inline(struct node *node, struct storage_job *job)
{
	/* A small job only: a follower catching up receives thousands of entries at once, and applying them
	 * would hold back this loop's heartbeats and acknowledgements for as long. */
	size_t bytes = 0;
	for (size_t k = 0; k < job->committed_count; k++)
		bytes += job->committed[k].length;
	if (job->snapshot || job->committed_count > INLINE_MAX_ENTRIES || bytes > INLINE_MAX_BYTES ||
	    pthread_mutex_trylock(&node->storage_turn) != 0)
		return false;
	struct storage_context *context = node->storage_turn_context;
	bool applied = false;
	if (context && !context->failed && !context->disk_full && context->held_count == 0 &&
	    !storage_mailbox_waiting(&node->storage_inbox)) {
		context->inline_turn = true;
		take_job(context, job);
		context->inline_turn = false;
		applied = true;
	}
	pthread_mutex_unlock(&node->storage_turn);
	return applied;
}

void *node_storage_main(void *argument)
{
	struct node *node = argument;
	struct storage_context context = {.node = node};
	context.clients = storage_clients_new(node);
	context.auth = node_auth_acquire(node);
	context.keeper = snapshot_keeper_new(node);
	context.batch_items = xcalloc(BATCH_SCAN_CAPACITY, sizeof(*context.batch_items));
	char load_error[256] = "";
	if (reload_alarms(&context, load_error, sizeof(load_error)) != 0)
		stop_on_storage_failure(&context, "alarms", load_error);
	uint64_t last_tick_ms = clock_monotonic_ms();
	int epoll = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event event = {.events = EPOLLIN};
	event.data.u32 = 1;
	epoll_ctl(epoll, EPOLL_CTL_ADD, storage_mailbox_fd(&node->storage_inbox), &event);
	if (storage_clients_replay_fd(context.clients) >= 0) {
		event.data.u32 = 2; /* the watch replay thread handed steps back */
		epoll_ctl(epoll, EPOLL_CTL_ADD, storage_clients_replay_fd(context.clients), &event);
	}
	bool running = true;
	bool catching_up = false; /* watchers still reading history: poll instead of sleeping */
	pthread_mutex_lock(&node->storage_turn);
	node->storage_turn_context = &context;
	pthread_mutex_unlock(&node->storage_turn);
	while (running) {
		struct epoll_event events[4];
		/* The senders ring the inbox only while this thread said it sleeps (mailbox.h). */
		bool asleep = !catching_up && storage_mailbox_sleep_begin(&node->storage_inbox);
		int ready = epoll_wait(epoll, events, 4, asleep ? 100 : 0);
		if (asleep)
			storage_mailbox_sleep_end(&node->storage_inbox);
		if (ready < 0 && errno != EINTR)
			break;
		pthread_mutex_lock(&node->storage_turn);
		uint64_t turn_started_us = clock_monotonic_us();
		/* The inbox's eventfd is read only when epoll named it (a syscall is a VM exit here). */
		for (int k = 0; k < ready; k++) {
			if (events[k].data.u32 == 1)
				storage_mailbox_doorbell_heard(&node->storage_inbox);
			else if (events[k].data.u32 == 2)
				storage_clients_replay_heard(context.clients);
		}
		struct storage_mail **items = NULL;
		size_t count = storage_mailbox_waiting(&node->storage_inbox) ? storage_mailbox_take_all(&node->storage_inbox, &items) : 0;
		for (size_t k = 0; k < count; k++) {
			struct storage_mail *mail = items[k];
			switch (mail->kind) {
			case STORAGE_MAIL_JOB:
				take_job(&context, mail->job);
				break;
			case STORAGE_MAIL_READ_NOW:
				serve_read(&context, mail->request->request_id, mail->request->payload,
				           mail->request->payload_length, atomic_load(&node->raft_term));
				node_request_free(mail->request);
				break;
			case STORAGE_MAIL_CLIENT_REQUEST:
				storage_clients_handle(context.clients, mail->request);
				mail->request = NULL;
				break;
			case STORAGE_MAIL_STOP:
				running = false;
				break;
			}
			free(mail);
		}
		storage_mailbox_give_back(&node->storage_inbox, items);
		if (context.snapshot_check_pending && !context.failed) {
			context.snapshot_check_pending = false;
			char error[512];
			if (snapshot_keeper_after_apply(context.keeper, error, sizeof(error)) != 0)
				stop_on_storage_failure(&context, "snapshot", error);
		}
		uint64_t now = clock_monotonic_ms();
		if (now - last_tick_ms >= 100) {
			last_tick_ms = now;
			storage_clients_tick(context.clients);
		}
		try_resume(&context);
		watch_disk_full(&context, now);
		/* Between batches, never inside one: a watcher reading history sees only committed revisions. Its
		 * bound is on the thread's CPU time: the replay's own cost, not time spent waiting for a core. */
		uint64_t catch_up_started_us = clock_thread_cpu_us();
		catching_up = storage_clients_catch_up(context.clients);
		if (clock_thread_cpu_us() - catch_up_started_us > 250000)
			atomic_fetch_add(&node->watch_catch_up_steps_over_250ms, 1);
		uint64_t turn_us = clock_monotonic_us() - turn_started_us;
		if (turn_us > 500000) {
			atomic_fetch_add(&node->storage_turns_over_500ms, 1);
			log_write("warn", "storage thread turn took too long", "\"took\":\"%" PRIu64 "ms\","
			          "\"expected-duration\":\"500ms\"", turn_us / 1000);
		}
		pthread_mutex_unlock(&node->storage_turn);
	}
	pthread_mutex_lock(&node->storage_turn);
	node->storage_turn_context = NULL;
	pthread_mutex_unlock(&node->storage_turn);
	free_held(&context);
	free(context.held);
	storage_clients_free(context.clients);
	auth_store_release(context.auth);
	snapshot_keeper_free(context.keeper);
	free(context.batch_items);
	alarm_list_free(&context.alarms);
	for (size_t k = 0; k < context.reads_count; k++)
		free(context.reads[k].range_request);
	free(context.reads);
	close(epoll);
	return NULL;
}
