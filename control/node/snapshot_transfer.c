/* control/node/snapshot_transfer.c: the snapshot thread. It streams snapshots to followers and receives
 * the leader's, over the peer transport (PEER_SNAPSHOT messages; dataplane/snapshot_stream.h), so disk
 * reads and writes of a whole state never stall the core or the storage thread.
 *
 * Sending: the core hands over each MsgSnap it addresses to a follower. The snapshot it names is the
 * newest in member/snap; its checkpoint is streamed as an archive (state_archive_source: read at any
 * offset, nothing kept in memory but one chunk), the MsgSnap travelling in the offer. When the stream
 * ends the core hears whether it succeeded (raft_report_snapshot drives the follower's progress, as in
 * etcd-raft). Stream messages go out through the core, the transport's one sending thread.
 *
 * Receiving: an offer for a snapshot newer than the applied index is unpacked into
 * member/snap/NAME.incoming (state_archive_sink: every CRC checked, progress durable file by file, so a
 * restarted sender or receiver resumes). Complete, it becomes a snapshot of the store, and only then is
 * the MsgSnap stepped into the core: the core's Ready hands it to the storage thread, which installs it.
 * The leader is told DONE once the MsgSnap is with the core. */
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
#include "node_snapshot.h"
#include "snapshot_stream.h"

struct outgoing {
	struct transfer *transfer;
	uint64_t peer;
	uint64_t index;
	uint64_t term;
	struct state_archive_source *source;
	struct stream_sender *sender;
	uint64_t started_ms;
};

struct incoming {
	bool open;
	uint64_t peer;
	uint64_t index;
	uint64_t term;
	uint8_t *message; /* the MsgSnap, stepped into the core once the state is here */
	size_t message_length;
	struct state_archive_sink *sink;
	uint64_t resumed_at;
	uint64_t total;
	uint64_t started_ms;
};

struct transfer {
	struct node *node;
	struct stream_config config;
	struct outgoing **outgoing;
	size_t outgoing_count;
	struct stream_receiver *receiver;
	struct incoming incoming;
	uint64_t next_stream_id;
};

static void post_peer_message(struct node *node, uint64_t peer, uint8_t envelope, const uint8_t *message,
                              size_t length, enum core_mail_kind kind)
{
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = kind;
	mail->peer.from = peer;
	mail->peer.length = length + 1;
	mail->peer.bytes = xmalloc(length + 1);
	mail->peer.bytes[0] = envelope;
	memcpy(mail->peer.bytes + 1, message, length);
	core_mailbox_post(&node->core_inbox, mail);
}

/* ---- sending ---- */

static int outgoing_read(void *arg, uint64_t offset, uint8_t *buffer, size_t length, char *err, size_t errlen)
{
	struct outgoing *outgoing = arg;
	size_t got = 0;
	int status = state_archive_source_read(outgoing->source, offset, buffer, length, &got, err, errlen);
	if (status != STATE_OK)
		return -EIO;
	if (got != length) {
		snprintf(err, errlen, "the archive ends %zu bytes early", length - got);
		return -EIO;
	}
	return 0;
}

static void outgoing_send(void *arg, const uint8_t *message, size_t length)
{
	struct outgoing *outgoing = arg;
	post_peer_message(outgoing->transfer->node, outgoing->peer, PEER_SNAPSHOT, message, length, CORE_MAIL_SNAPSHOT_OUT);
}

static void outgoing_free(struct outgoing *outgoing)
{
	if (!outgoing)
		return;
	stream_sender_free(outgoing->sender);
	state_archive_source_close(outgoing->source);
	free(outgoing);
}

static void report(struct node *node, uint64_t peer, bool failed)
{
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = CORE_MAIL_SNAPSHOT_STATUS;
	mail->status.peer = peer;
	mail->status.failed = failed;
	core_mailbox_post(&node->core_inbox, mail);
}

/* Content identity: the same snapshot of the same member gives the same archive, so a receiver may
 * resume it; another member's snapshot at the same index is other files. */
static uint64_t identity_of(uint64_t member, uint64_t term, uint64_t index, uint64_t total)
{
	uint64_t words[4] = {member, term, index, total}, hash = 0xcbf29ce484222325ull;
	for (int w = 0; w < 4; w++)
		for (int b = 0; b < 8; b++)
			hash = (hash ^ ((words[w] >> (8 * b)) & 0xff)) * 0x100000001b3ull;
	return hash;
}

static void start_sending(struct transfer *transfer, struct snapshot_send *send)
{
	struct node *node = transfer->node;
	for (size_t k = 0; k < transfer->outgoing_count; k++) {
		struct outgoing *existing = transfer->outgoing[k];
		if (existing->peer != send->to)
			continue;
		if (existing->index == send->index && existing->term == send->term &&
		    stream_sender_state(existing->sender) <= STREAM_STATE_SENDING)
			return; /* already on its way */
		outgoing_free(existing);
		transfer->outgoing[k] = transfer->outgoing[--transfer->outgoing_count];
		break;
	}
	char fault[700] = "";
	struct snap_info info;
	uint8_t *record = NULL;
	size_t record_length = 0;
	struct outgoing *outgoing = xcalloc(1, sizeof(*outgoing));
	outgoing->transfer = transfer;
	outgoing->peer = send->to;
	outgoing->index = send->index;
	outgoing->term = send->term;
	outgoing->started_ms = clock_monotonic_ms();
	if (!snap_store_find(node->snapshots, send->index, &info) || info.term != send->term)
		snprintf(fault, sizeof(fault), "no snapshot at index %" PRIu64 ", term %" PRIu64 " in %s", send->index,
		         send->term, snap_store_dir(node->snapshots));
	else if (snap_store_load(node->snapshots, &info, &record, &record_length, fault, sizeof(fault)) == 0) {
		char db[4200];
		snap_store_db_path(node->snapshots, &info, db, sizeof(db));
		state_archive_source_open(db, send->index, &outgoing->source, fault, sizeof(fault));
	}
	free(record);
	if (!fault[0]) {
		uint64_t total = state_archive_source_size(outgoing->source);
		struct stream_sender_callbacks callbacks = {.arg = outgoing, .read = outgoing_read, .send = outgoing_send};
		outgoing->sender = stream_sender_new(&transfer->config, &callbacks, transfer->next_stream_id++, total,
		                                     identity_of(node->member_id, send->term, send->index, total), send->message,
		                                     send->length);
		if (!outgoing->sender)
			alloc_failed(send->length);
		log_write("info", "sending database snapshot",
		          "\"remote-peer-id\":\"%" PRIx64 "\",\"snapshot-index\":%" PRIu64 ",\"snapshot-size\":%" PRIu64, send->to,
		          send->index, total);
		transfer->outgoing = xreallocarray(transfer->outgoing, transfer->outgoing_count + 1, sizeof(*transfer->outgoing));
		transfer->outgoing[transfer->outgoing_count++] = outgoing;
		return;
	}
	char escaped[800];
	log_write("warn", "failed to send database snapshot", "\"remote-peer-id\":\"%" PRIx64 "\",\"error\":\"%s\"", send->to,
	          log_json_escape(fault, escaped, sizeof(escaped)));
	outgoing_free(outgoing);
	report(node, send->to, true);
}

/* Reports and forgets the streams that ended. */
static void reap_outgoing(struct transfer *transfer)
{
	for (size_t k = 0; k < transfer->outgoing_count;) {
		struct outgoing *outgoing = transfer->outgoing[k];
		enum stream_state state = stream_sender_state(outgoing->sender);
		if (state != STREAM_STATE_SUCCEEDED && state != STREAM_STATE_FAILED) {
			k++;
			continue;
		}
		const struct stream_counters *counters = stream_sender_counters(outgoing->sender);
		uint64_t took = clock_monotonic_ms() - outgoing->started_ms;
		/* etcd_disk_backend_snapshot_duration_seconds: etcd times its backend snapshot until the send ends. */
		histogram_observe_ns(&transfer->node->backend_snapshot_duration, took * 1000000u);
		if (state == STREAM_STATE_SUCCEEDED) {
			atomic_fetch_add(&transfer->node->snapshots_sent, 1);
			log_write("info", "sent database snapshot",
			          "\"remote-peer-id\":\"%" PRIx64 "\",\"snapshot-index\":%" PRIu64 ",\"bytes-sent\":%" PRIu64
			          ",\"chunks-resent\":%" PRIu64 ",\"took-ms\":%" PRIu64, outgoing->peer, outgoing->index,
			          counters->bytes_sent, counters->chunks_resent, took);
		} else {
			char escaped[600];
			log_write("warn", "failed to send database snapshot",
			          "\"remote-peer-id\":\"%" PRIx64 "\",\"snapshot-index\":%" PRIu64 ",\"error\":\"%s\",\"took-ms\":%" PRIu64,
			          outgoing->peer, outgoing->index,
			          log_json_escape(stream_sender_error(outgoing->sender), escaped, sizeof(escaped)), took);
		}
		report(transfer->node, outgoing->peer, state == STREAM_STATE_FAILED);
		outgoing_free(outgoing);
		transfer->outgoing[k] = transfer->outgoing[--transfer->outgoing_count];
	}
}

/* ---- receiving ---- */

static void incoming_reset(struct incoming *incoming)
{
	state_archive_sink_close(incoming->sink);
	free(incoming->message);
	memset(incoming, 0, sizeof(*incoming));
}

static int incoming_open(void *arg, const struct stream_offer *offer, uint64_t *resume_offset, char *err, size_t errlen)
{
	struct transfer *transfer = arg;
	struct node *node = transfer->node;
	struct incoming *incoming = &transfer->incoming;
	Raftpb__Message *message = raftpb__message__unpack(NULL, offer->header_length, offer->header);
	if (!message || message->type != RAFT_MSG_SNAP || !message->snapshot || !message->snapshot->metadata) {
		if (message)
			raftpb__message__free_unpacked(message, NULL);
		snprintf(err, errlen, "the offer carries no MsgSnap");
		return -EINVAL;
	}
	uint64_t index = message->snapshot->metadata->index, term = message->snapshot->metadata->term;
	raftpb__message__free_unpacked(message, NULL);
	uint64_t applied = atomic_load(&node->applied_index);
	if (index <= applied) {
		snprintf(err, errlen, "the snapshot at index %" PRIu64 " is not newer than the applied index %" PRIu64, index,
		         applied);
		return -EALREADY;
	}
	char db[4200], store_error[512];
	if (snap_store_incoming(node->snapshots, term, index, db, sizeof(db), store_error, sizeof(store_error)) != 0) {
		snprintf(err, errlen, "%s", store_error);
		return -EIO;
	}
	struct state_archive_sink *sink = NULL;
	if (state_archive_sink_open(db, offer->identity, &sink, resume_offset, store_error, sizeof(store_error)) != STATE_OK) {
		snprintf(err, errlen, "%s", store_error);
		return -EIO;
	}
	incoming->open = true;
	incoming->peer = offer->peer;
	incoming->index = index;
	incoming->term = term;
	incoming->message = xmemdup(offer->header, offer->header_length);
	incoming->message_length = offer->header_length;
	incoming->sink = sink;
	incoming->resumed_at = *resume_offset;
	incoming->total = offer->total;
	incoming->started_ms = clock_monotonic_ms();
	log_write("info", "receiving database snapshot",
	          "\"local-member-id\":\"%" PRIx64 "\",\"remote-snapshot-sender-id\":\"%" PRIx64 "\",\"incoming-snapshot-index\":%"
	          PRIu64 ",\"incoming-snapshot-size\":%" PRIu64 ",\"resumed-at-byte\":%" PRIu64,
	          node->member_id, offer->peer, index, offer->total, *resume_offset);
	return 0;
}

static int incoming_write(void *arg, uint64_t offset, const uint8_t *data, size_t length, char *err, size_t errlen)
{
	struct incoming *incoming = &((struct transfer *)arg)->incoming;
	if (offset != state_archive_sink_offset(incoming->sink)) {
		snprintf(err, errlen, "bytes at %" PRIu64 " where the sink expects %" PRIu64, offset,
		         state_archive_sink_offset(incoming->sink));
		return -EINVAL;
	}
	if (state_archive_sink_write(incoming->sink, data, length, err, errlen) != STATE_OK)
		return -EIO;
	return 0;
}

static int incoming_finish(void *arg, char *err, size_t errlen)
{
	struct transfer *transfer = arg;
	struct node *node = transfer->node;
	struct incoming *incoming = &transfer->incoming;
	int rc = 0;
	Raftpb__Message *message = raftpb__message__unpack(NULL, incoming->message_length, incoming->message);
	if (!message || !message->snapshot) {
		snprintf(err, errlen, "the MsgSnap no longer decodes");
		rc = -EINVAL;
	} else if (state_archive_sink_finish(incoming->sink, err, errlen) != STATE_OK) {
		rc = -EBADMSG;
	}
	if (rc == 0) {
		size_t record_length = raftpb__snapshot__get_packed_size(message->snapshot);
		uint8_t *record = xmalloc(record_length);
		raftpb__snapshot__pack(message->snapshot, record);
		struct snap_info info;
		if (snap_store_commit_incoming(node->snapshots, incoming->term, incoming->index, record, record_length, &info,
		                               err, errlen) != 0)
			rc = -EIO;
		free(record);
	}
	if (message)
		raftpb__message__free_unpacked(message, NULL);
	if (rc != 0) {
		snap_store_drop_incoming(node->snapshots, incoming->term, incoming->index, NULL, 0);
		incoming_reset(incoming);
		return rc;
	}
	atomic_fetch_add(&node->snapshots_received, 1);
	log_write("info", "received and saved database snapshot",
	          "\"local-member-id\":\"%" PRIx64 "\",\"remote-snapshot-sender-id\":\"%" PRIx64 "\",\"incoming-snapshot-index\":%"
	          PRIu64 ",\"incoming-snapshot-size\":%" PRIu64 ",\"took-ms\":%" PRIu64,
	          node->member_id, incoming->peer, incoming->index, incoming->total,
	          clock_monotonic_ms() - incoming->started_ms);
	/* The state is on disk: now the core may take the snapshot as Raft's. */
	post_peer_message(node, incoming->peer, PEER_RAFT, incoming->message, incoming->message_length, CORE_MAIL_PEER);
	incoming_reset(incoming);
	return 0;
}

static void incoming_close(void *arg, bool failed)
{
	struct transfer *transfer = arg;
	struct incoming *incoming = &transfer->incoming;
	if (!incoming->open)
		return;
	log_write(failed ? "warn" : "info", failed ? "failed to receive database snapshot" : "snapshot transfer paused",
	          "\"remote-snapshot-sender-id\":\"%" PRIx64 "\",\"incoming-snapshot-index\":%" PRIu64 ",\"kept-bytes\":%" PRIu64,
	          incoming->peer, incoming->index, failed ? 0 : state_archive_sink_durable_offset(incoming->sink));
	uint64_t term = incoming->term, index = incoming->index;
	incoming_reset(incoming);
	if (failed)
		snap_store_drop_incoming(transfer->node->snapshots, term, index, NULL, 0);
}

static void incoming_send(void *arg, uint64_t peer, const uint8_t *message, size_t length)
{
	struct transfer *transfer = arg;
	post_peer_message(transfer->node, peer, PEER_SNAPSHOT, message, length, CORE_MAIL_SNAPSHOT_OUT);
}

/* ---- the thread ---- */

static void take_peer(struct transfer *transfer, uint64_t now, const struct peer_message *peer)
{
	const uint8_t *message = peer->bytes + 1;
	size_t length = peer->length - 1;
	enum stream_kind kind;
	uint64_t id;
	if (peer->length < 2 || !stream_message_peek(message, length, &kind, &id))
		return;
	bool to_sender = kind == STREAM_ACCEPT || kind == STREAM_ACK || kind == STREAM_DONE;
	for (size_t k = 0; kind == STREAM_ABORT && k < transfer->outgoing_count; k++)
		to_sender |= transfer->outgoing[k]->peer == peer->from && stream_sender_id(transfer->outgoing[k]->sender) == id;
	if (!to_sender) {
		stream_receiver_receive(transfer->receiver, now, peer->from, message, length);
		return;
	}
	for (size_t k = 0; k < transfer->outgoing_count; k++) {
		struct outgoing *outgoing = transfer->outgoing[k];
		if (outgoing->peer == peer->from && stream_sender_id(outgoing->sender) == id) {
			stream_sender_receive(outgoing->sender, now, message, length);
			stream_sender_tick(outgoing->sender, now);
		}
	}
}

/* The WAL segments the core released behind a durable snapshot marker: their files go here, off the Raft loop,
 * then snapshots beyond --max-snapshots (after the segments: every marker's snapshot must exist). A failure
 * costs disk, not correctness: a restart finds the files as after a crash before the release. */
static void remove_released(struct node *node, struct wal_release *release)
{
	char error[512] = "", escaped[600];
	size_t removed = release->segments.count;
	if (removed > 0) {
		if (wal_released_remove(&release->segments, error, sizeof(error)) != 0) {
			log_write("warn", "failed to remove released WAL segments", "\"error\":\"%s\"",
			          log_json_escape(error, escaped, sizeof(escaped)));
			removed = 0;
		}
	}
	if (node->flags.max_wals > 0)
		FAILPOINT("raftAfterWALRelease");
	if (snap_store_prune(node->snapshots, (size_t)node->flags.max_snapshots, error, sizeof(error)) != 0)
		/* Old snapshots left behind cost disk, not correctness: the next snapshot prunes again. */
		log_write("warn", "failed to remove old snapshots", "\"error\":\"%s\"",
		          log_json_escape(error, escaped, sizeof(escaped)));
	if (removed > 0)
		log_write("info", "released WAL segments", "\"released-up-to-index\":%" PRIu64 ",\"segments-removed\":%zu"
		          ",\"segments-kept\":%zu", release->up_to_index, removed, release->segments_kept);
}

void *node_snapshot_main(void *argument)
{
	struct node *node = argument;
	struct transfer transfer = {.node = node};
	stream_config_init(&transfer.config);
	/* Test only: a tiny window and chunk make a transfer slow enough for a test to interrupt it. */
	const char *test_stream = getenv("QUORUMD_TEST_SNAPSHOT_STREAM");
	unsigned chunk = 0, window = 0;
	if (test_stream && sscanf(test_stream, "chunk=%u,window=%u", &chunk, &window) == 2 && chunk > 0 &&
	    chunk <= STREAM_MAX_CHUNK && window > 0 && window <= STREAM_MAX_WINDOW) {
		transfer.config.chunk_size = chunk;
		transfer.config.window = window;
		log_write("warn", "test setting on: snapshot streams use a test chunk and window",
		          "\"chunk-bytes\":%u,\"window-chunks\":%u", chunk, window);
	}
	/* Ids keep growing across restarts, so a receiver never mistakes a new stream for an old one. */
	struct timespec now_real;
	clock_gettime(CLOCK_REALTIME, &now_real);
	transfer.next_stream_id = (uint64_t)now_real.tv_sec * 1000000000u + (uint64_t)now_real.tv_nsec;
	struct stream_receiver_callbacks callbacks = {
		.arg = &transfer,
		.open = incoming_open,
		.write = incoming_write,
		.finish = incoming_finish,
		.close = incoming_close,
		.send = incoming_send,
	};
	transfer.receiver = stream_receiver_new(&transfer.config, &callbacks);
	if (!transfer.receiver)
		alloc_failed(sizeof(struct transfer));
	int epoll = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event event = {.events = EPOLLIN};
	epoll_ctl(epoll, EPOLL_CTL_ADD, snapshot_mailbox_fd(&node->snapshot_inbox), &event);
	bool running = true;
	while (running) {
		uint64_t now = clock_monotonic_ms();
		int64_t wait = stream_receiver_wait_ms(transfer.receiver, now);
		for (size_t k = 0; k < transfer.outgoing_count; k++) {
			int64_t sender_wait = stream_sender_wait_ms(transfer.outgoing[k]->sender, now);
			if (sender_wait >= 0 && (wait < 0 || sender_wait < wait))
				wait = sender_wait;
		}
		if (wait < 0 || wait > 100)
			wait = 100;
		struct epoll_event events[1];
		int ready = epoll_wait(epoll, events, 1, (int)wait);
		if (ready < 0 && errno != EINTR)
			break;
		now = clock_monotonic_ms();
		struct snapshot_mail **items = NULL;
		size_t count = ready > 0 ? snapshot_mailbox_take_all(&node->snapshot_inbox, &items) : 0;
		for (size_t k = 0; k < count; k++) {
			struct snapshot_mail *mail = items[k];
			switch (mail->kind) {
			case SNAPSHOT_MAIL_SEND:
				start_sending(&transfer, &mail->send);
				free(mail->send.message);
				break;
			case SNAPSHOT_MAIL_PEER:
				take_peer(&transfer, now, &mail->peer);
				free(mail->peer.bytes);
				break;
			case SNAPSHOT_MAIL_STOP:
				running = false;
				break;
			case SNAPSHOT_MAIL_RELEASE:
				remove_released(node, &mail->release);
				break;
			}
			free(mail);
		}
		free(items);
		for (size_t k = 0; k < transfer.outgoing_count; k++)
			stream_sender_tick(transfer.outgoing[k]->sender, now);
		stream_receiver_tick(transfer.receiver, now);
		reap_outgoing(&transfer);
	}
	stream_receiver_free(transfer.receiver); /* closes a stream still open, keeping its sink for a resume */
	incoming_reset(&transfer.incoming);
	for (size_t k = 0; k < transfer.outgoing_count; k++)
		outgoing_free(transfer.outgoing[k]);
	free(transfer.outgoing);
	close(epoll);
	return NULL;
}
