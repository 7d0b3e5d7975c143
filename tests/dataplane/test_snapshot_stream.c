/* tests/dataplane/test_snapshot_stream.c: the snapshot stream protocol over a simulated network with a
 * virtual clock. The stream arrives byte-exact on a clean network without resends, and under loss,
 * reordering and duplication (over many seeds) with the sender never past its window and the
 * receiver never buffering more than a window; a restarted sender is resumed from what the sink kept,
 * a restarted receiver makes the sender offer again and resume; a refusal, a failed finish and a
 * silent peer end the stream on both sides with the reason. */
#include "helpers.h"
#include "snapshot_stream.h"

#include <errno.h>
#include <stdbool.h>

#define DURABLE_EVERY (256u * 1024u) /* the sink keeps whole "files" of this size across a close */

/* ---- the network: messages between the sender (side 1) and the receiver (side 0) ---- */

struct in_flight {
	int to;
	uint64_t due;
	uint8_t *bytes;
	size_t length;
};

struct network {
	struct in_flight *items;
	size_t count;
	size_t capacity;
	uint64_t now;
	uint64_t random;
	unsigned loss_percent;
	unsigned duplicate_percent;
	unsigned jitter_ms;   /* each message is delayed 1 + [0, jitter) ms: reordering */
	bool cut;             /* everything is lost */
	uint64_t delivered;
};

static void network_post(struct network *net, int to, const uint8_t *bytes, size_t length)
{
	int copies = 1;
	if (net->cut || test_random(&net->random) % 100 < net->loss_percent)
		copies = 0;
	else if (test_random(&net->random) % 100 < net->duplicate_percent)
		copies = 2;
	for (int c = 0; c < copies; c++) {
		if (net->count == net->capacity) {
			net->capacity = net->capacity ? net->capacity * 2 : 256;
			net->items = realloc(net->items, net->capacity * sizeof *net->items);
			CHECK(net->items != NULL, "out of memory");
		}
		struct in_flight *item = &net->items[net->count++];
		item->to = to;
		item->due = net->now + 1 + (net->jitter_ms ? test_random(&net->random) % net->jitter_ms : 0);
		item->bytes = malloc(length ? length : 1);
		CHECK(item->bytes != NULL, "out of memory");
		memcpy(item->bytes, bytes, length);
		item->length = length;
	}
}

static void network_drop_all(struct network *net)
{
	for (size_t k = 0; k < net->count; k++)
		free(net->items[k].bytes);
	net->count = 0;
}

/* ---- the source and the sink ---- */

struct source {
	const uint8_t *bytes;
	uint64_t total;
	bool fail_reads;
};

static int source_read(void *arg, uint64_t offset, uint8_t *buffer, size_t length, char *err, size_t errlen)
{
	struct source *source = arg;
	if (source->fail_reads) {
		snprintf(err, errlen, "disk on fire");
		return -EIO;
	}
	CHECK(offset + length <= source->total, "read beyond the source: %" PRIu64 "+%zu", offset, length);
	memcpy(buffer, source->bytes + offset, length);
	return 0;
}

struct sink {
	uint8_t *bytes;
	uint64_t total;
	uint64_t identity;
	uint64_t written;
	uint64_t durable;
	bool open;
	bool finished;
	bool closed_failed;
	bool refuse;
	bool fail_finish;
	unsigned opens;
	uint64_t last_resume;
};

static int sink_open(void *arg, const struct stream_offer *offer, uint64_t *resume, char *err, size_t errlen)
{
	struct sink *sink = arg;
	CHECK(!sink->open, "opened twice without a close");
	if (sink->refuse) {
		snprintf(err, errlen, "not now");
		return -EPERM;
	}
	CHECK(offer->header_length == 5 && memcmp(offer->header, "raft!", 5) == 0, "the offer's header");
	if (offer->identity != sink->identity || offer->total != sink->total) {
		sink->identity = offer->identity;
		sink->total = offer->total;
		sink->durable = 0;
		free(sink->bytes);
		sink->bytes = calloc(1, offer->total ? offer->total : 1);
	}
	sink->written = sink->durable;
	sink->open = true;
	sink->opens++;
	*resume = sink->last_resume = sink->durable;
	return 0;
}

static int sink_write(void *arg, uint64_t offset, const uint8_t *data, size_t length, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	struct sink *sink = arg;
	CHECK(sink->open, "write to a closed sink");
	CHECK_EQ(offset, sink->written);
	CHECK(offset + length <= sink->total, "write beyond the stream");
	memcpy(sink->bytes + offset, data, length);
	sink->written += length;
	sink->durable = sink->written / DURABLE_EVERY * DURABLE_EVERY;
	return 0;
}

static int sink_finish(void *arg, char *err, size_t errlen)
{
	struct sink *sink = arg;
	CHECK_EQ(sink->written, sink->total);
	if (sink->fail_finish) {
		snprintf(err, errlen, "bad trailer");
		return -EBADMSG;
	}
	sink->open = false;
	sink->finished = true;
	return 0;
}

static void sink_close(void *arg, bool failed)
{
	struct sink *sink = arg;
	CHECK(sink->open, "close of a closed sink");
	sink->open = false;
	sink->written = sink->durable;
	sink->closed_failed = failed;
	if (failed)
		sink->durable = 0;
}

/* ---- a run: one sender, one receiver, the network between them ---- */

struct run {
	struct network net;
	struct stream_config config;
	struct source source;
	struct sink sink;
	struct stream_sender *sender;
	struct stream_receiver *receiver;
	uint64_t max_ahead; /* the furthest a DATA went past the acknowledged offset, in bytes */
};

static void sender_send(void *arg, const uint8_t *message, size_t length)
{
	struct run *run = arg;
	enum stream_kind kind;
	uint64_t id;
	CHECK(stream_message_peek(message, length, &kind, &id), "the sender sent garbage");
	if (kind == STREAM_DATA && length > 17) {
		uint64_t offset = 0;
		for (int i = 7; i >= 0; i--)
			offset = offset << 8 | message[9 + i];
		uint64_t ahead = offset + (length - 17) - stream_sender_acknowledged(run->sender);
		if (ahead > run->max_ahead)
			run->max_ahead = ahead;
	}
	network_post(&run->net, 0, message, length);
}

static void receiver_send(void *arg, uint64_t peer, const uint8_t *message, size_t length)
{
	struct run *run = arg;
	CHECK_EQ(peer, 7);
	network_post(&run->net, 1, message, length);
}

static int run_read(void *arg, uint64_t offset, uint8_t *buffer, size_t length, char *err, size_t errlen)
{
	return source_read(&((struct run *)arg)->source, offset, buffer, length, err, errlen);
}

static void new_sender(struct run *run, uint64_t id)
{
	struct stream_sender_callbacks callbacks = {.arg = run, .read = run_read, .send = sender_send};
	run->sender = stream_sender_new(&run->config, &callbacks, id, run->source.total, 0xfeed, (const uint8_t *)"raft!",
			5);
	CHECK(run->sender != NULL, "stream_sender_new");
}

/* The receiver's callbacks get the run; these forward to its sink. */
static int run_open(void *arg, const struct stream_offer *offer, uint64_t *resume, char *err, size_t errlen)
{
	CHECK_EQ(offer->peer, 7);
	return sink_open(&((struct run *)arg)->sink, offer, resume, err, errlen);
}
static int run_write(void *arg, uint64_t offset, const uint8_t *data, size_t length, char *err, size_t errlen)
{
	return sink_write(&((struct run *)arg)->sink, offset, data, length, err, errlen);
}
static int run_finish(void *arg, char *err, size_t errlen)
{
	return sink_finish(&((struct run *)arg)->sink, err, errlen);
}
static void run_close(void *arg, bool failed)
{
	sink_close(&((struct run *)arg)->sink, failed);
}

static void start_receiver(struct run *run)
{
	struct stream_receiver_callbacks callbacks = {
		.arg = run, .open = run_open, .write = run_write, .finish = run_finish, .close = run_close,
		.send = receiver_send,
	};
	run->receiver = stream_receiver_new(&run->config, &callbacks);
	CHECK(run->receiver != NULL, "stream_receiver_new");
}

static void setup(struct run *run, uint64_t total, uint64_t seed)
{
	memset(run, 0, sizeof *run);
	stream_config_init(&run->config);
	run->config.chunk_size = 4096;
	run->config.window = 32;
	run->config.stall_timeout_ms = 30000; /* the default: under 30 % loss, 2 s timers need room */
	uint8_t *bytes = malloc(total);
	CHECK(bytes != NULL, "out of memory");
	test_fill(bytes, total, seed);
	run->source.bytes = bytes;
	run->source.total = total;
	run->net.random = seed * 7919 + 1;
	start_receiver(run);
	new_sender(run, 1000 + seed);
}

static void teardown(struct run *run)
{
	stream_sender_free(run->sender);
	stream_receiver_free(run->receiver);
	network_drop_all(&run->net);
	free(run->net.items);
	free((void *)run->source.bytes);
	free(run->sink.bytes);
}

static bool ended(const struct run *run)
{
	enum stream_state state = stream_sender_state(run->sender);
	return state == STREAM_STATE_SUCCEEDED || state == STREAM_STATE_FAILED;
}

/* Advances the virtual clock to the next event and handles it. False when nothing is left to do. */
static bool step(struct run *run)
{
	uint64_t next = UINT64_MAX;
	for (size_t k = 0; k < run->net.count; k++)
		if (run->net.items[k].due < next)
			next = run->net.items[k].due;
	int64_t wait = stream_sender_wait_ms(run->sender, run->net.now);
	if (wait >= 0 && run->net.now + (uint64_t)wait < next)
		next = run->net.now + (uint64_t)wait;
	wait = stream_receiver_wait_ms(run->receiver, run->net.now);
	if (wait >= 0 && run->net.now + (uint64_t)wait < next)
		next = run->net.now + (uint64_t)wait;
	if (next == UINT64_MAX)
		return false;
	if (next > run->net.now)
		run->net.now = next;
	/* Deliver everything due, in order of arrival time (equal times: posting order). */
	for (;;) {
		size_t pick = SIZE_MAX;
		for (size_t k = 0; k < run->net.count; k++)
			if (run->net.items[k].due <= run->net.now && (pick == SIZE_MAX || run->net.items[k].due <
					run->net.items[pick].due))
				pick = k;
		if (pick == SIZE_MAX)
			break;
		struct in_flight item = run->net.items[pick];
		memmove(&run->net.items[pick], &run->net.items[pick + 1], (run->net.count - pick - 1) * sizeof item);
		run->net.count--;
		if (getenv("STREAM_TRACE")) {
			enum stream_kind kind;
			uint64_t id, at = 0;
			stream_message_peek(item.bytes, item.length, &kind, &id);
			for (int i = 7; item.length >= 17 && i >= 0; i--)
				at = at << 8 | item.bytes[9 + i];
			fprintf(stderr, "t=%" PRIu64 " to=%d kind=%d at=%" PRIu64 " length=%zu\n", run->net.now, item.to, kind,
					at, item.length);
		}
		if (item.to == 0)
			stream_receiver_receive(run->receiver, run->net.now, 7, item.bytes, item.length);
		else
			stream_sender_receive(run->sender, run->net.now, item.bytes, item.length);
		run->net.delivered++;
		free(item.bytes);
	}
	stream_sender_tick(run->sender, run->net.now);
	stream_receiver_tick(run->receiver, run->net.now);
	return true;
}

/* Runs until the sender ends (or `until` says stop early); the virtual time is bounded. */
static void run_until(struct run *run, bool (*until)(const struct run *))
{
	uint64_t deadline = run->net.now + 600000;
	while (!ended(run) && (until == NULL || !until(run))) {
		CHECK(run->net.now < deadline, "no end after 600 virtual seconds (acknowledged %" PRIu64 ")",
				stream_sender_acknowledged(run->sender));
		if (!step(run))
			break;
	}
}

/* The seed of a run over many (rerun one: STREAM_SEED=N STREAM_SEEDS=N STREAM_TRACE=1). */
static uint64_t current_seed;

static void check_delivered(const struct run *run)
{
	CHECK(stream_sender_state(run->sender) == STREAM_STATE_SUCCEEDED, "seed %" PRIu64 ": sender ended: %s",
			current_seed, stream_sender_error(run->sender));
	CHECK(run->sink.finished, "the sink was finished");
	CHECK_EQ(run->sink.written, run->source.total);
	CHECK(memcmp(run->sink.bytes, run->source.bytes, run->source.total) == 0, "the bytes differ");
	CHECK(!stream_receiver_busy(run->receiver), "the receiver still has a stream");
	uint64_t window_bytes = (uint64_t)run->config.window * run->config.chunk_size;
	CHECK(run->max_ahead <= window_bytes, "a chunk went %" PRIu64 " bytes past the acknowledged offset",
			run->max_ahead);
	CHECK(stream_receiver_counters(run->receiver)->max_buffered < run->config.window, "buffered %" PRIu64,
			stream_receiver_counters(run->receiver)->max_buffered);
}

static void test_clean_network(void)
{
	struct run run;
	setup(&run, 3 * 1024 * 1024 + 123, 1);
	run_until(&run, NULL);
	check_delivered(&run);
	const struct stream_counters *counters = stream_sender_counters(run.sender);
	CHECK_EQ(counters->chunks_resent, 0);
	CHECK_EQ(counters->bytes_sent, run.source.total);
	CHECK_EQ(counters->offers_sent, 1);
	CHECK_EQ(stream_receiver_counters(run.receiver)->max_buffered, 0);
	CHECK_EQ(run.sink.opens, 1);
	teardown(&run);
}

static void test_loss_reordering_duplicates(void)
{
	uint64_t first = getenv("STREAM_SEED") ? strtoull(getenv("STREAM_SEED"), NULL, 10) : 1;
	uint64_t last = getenv("STREAM_SEEDS") ? strtoull(getenv("STREAM_SEEDS"), NULL, 10) : 200;
	for (uint64_t seed = first; seed <= last; seed++) {
		current_seed = seed;
		struct run run;
		setup(&run, 1024 * 1024 + seed * 977, seed);
		run.net.loss_percent = 5 + (unsigned)(seed % 6) * 5; /* 5 to 30 % of messages */
		run.net.duplicate_percent = 3;
		run.net.jitter_ms = 20;
		run_until(&run, NULL);
		check_delivered(&run);
		CHECK(stream_sender_counters(run.sender)->chunks_resent > 0, "seed %" PRIu64 ": loss needs resends", seed);
		teardown(&run);
	}
}

static bool sender_halfway(const struct run *run)
{
	return stream_sender_acknowledged(run->sender) >= run->source.total / 2;
}

static void test_sender_restart_resumes(void)
{
	struct run run;
	setup(&run, 2 * 1024 * 1024, 3);
	run.net.loss_percent = 5;
	run.net.jitter_ms = 5;
	run_until(&run, sender_halfway);
	uint64_t halfway = stream_sender_acknowledged(run.sender);
	/* The sender dies with everything it had in flight; a new one (a new id) offers the same stream. */
	stream_sender_free(run.sender);
	network_drop_all(&run.net);
	new_sender(&run, 5000);
	run_until(&run, NULL);
	check_delivered(&run);
	CHECK_EQ(run.sink.opens, 2);
	CHECK(run.sink.last_resume > 0 && run.sink.last_resume <= halfway, "resumed at %" PRIu64 " (halfway %" PRIu64 ")",
			run.sink.last_resume, halfway);
	CHECK(stream_sender_counters(run.sender)->bytes_sent < run.source.total, "the new sender sent everything again");
	teardown(&run);
}

static bool receiver_halfway(const struct run *run)
{
	return run->sink.written >= run->source.total / 2;
}

static void test_receiver_restart_resumes(void)
{
	struct run run;
	setup(&run, 2 * 1024 * 1024, 4);
	run.net.loss_percent = 5;
	run.net.jitter_ms = 5;
	run_until(&run, receiver_halfway);
	/* The receiver dies; its sink keeps whole files. The sender's next chunk meets a stranger. */
	stream_receiver_free(run.receiver);
	CHECK(!run.sink.open && !run.sink.closed_failed, "the sink was closed, keeping what it had");
	start_receiver(&run);
	run_until(&run, NULL);
	check_delivered(&run);
	CHECK_EQ(run.sink.opens, 2);
	CHECK(run.sink.last_resume >= DURABLE_EVERY, "resumed at %" PRIu64, run.sink.last_resume);
	CHECK(stream_sender_counters(run.sender)->offers_sent >= 2, "offered again");
	teardown(&run);
}

static void test_refused(void)
{
	struct run run;
	setup(&run, 100000, 5);
	run.sink.refuse = true;
	run_until(&run, NULL);
	CHECK(stream_sender_state(run.sender) == STREAM_STATE_FAILED, "refused");
	CHECK(strstr(stream_sender_error(run.sender), "refused") && strstr(stream_sender_error(run.sender), "not now"),
			"%s", stream_sender_error(run.sender));
	CHECK_EQ(stream_sender_counters(run.sender)->chunks_sent, 0);
	teardown(&run);
}

static void test_failed_finish_and_read(void)
{
	struct run run;
	setup(&run, 300000, 6);
	run.sink.fail_finish = true;
	run_until(&run, NULL);
	CHECK(stream_sender_state(run.sender) == STREAM_STATE_FAILED, "failed finish");
	CHECK(strstr(stream_sender_error(run.sender), "bad trailer") != NULL, "%s", stream_sender_error(run.sender));
	CHECK(run.sink.closed_failed && !run.sink.open, "the sink was closed as failed");
	teardown(&run);

	setup(&run, 300000, 7);
	run.source.fail_reads = true;
	run_until(&run, NULL);
	CHECK(stream_sender_state(run.sender) == STREAM_STATE_FAILED, "failed read");
	CHECK(strstr(stream_sender_error(run.sender), "disk on fire") != NULL, "%s", stream_sender_error(run.sender));
	/* The receiver heard the ABORT and closed its sink (keeping it: the data it has is sound). */
	for (int k = 0; k < 10 && stream_receiver_busy(run.receiver); k++)
		step(&run);
	CHECK(!stream_receiver_busy(run.receiver) && !run.sink.open && !run.sink.closed_failed, "receiver closed");
	teardown(&run);
}

static bool a_quarter(const struct run *run)
{
	return run->sink.written >= run->source.total / 4;
}

static void test_silent_peer_stalls(void)
{
	struct run run;
	setup(&run, 2 * 1024 * 1024, 8);
	run_until(&run, a_quarter);
	uint64_t cut_at = run.net.now;
	run.net.cut = true;
	network_drop_all(&run.net);
	run_until(&run, NULL);
	CHECK(stream_sender_state(run.sender) == STREAM_STATE_FAILED, "stalled");
	CHECK(strstr(stream_sender_error(run.sender), "no progress") != NULL, "%s", stream_sender_error(run.sender));
	/* Progress stopped when the cut came (give or take the last ACK's flight): the sender waited out
	 * the stall timeout from there, not a retransmission timer. */
	CHECK(run.net.now - cut_at + 50 >= run.config.stall_timeout_ms &&
			run.net.now - cut_at <= run.config.stall_timeout_ms + 50, "gave up after %" PRIu64 " ms",
			run.net.now - cut_at);
	/* The receiver gives up on its own clock too, keeping its sink for a resume. */
	while (stream_receiver_busy(run.receiver))
		CHECK(step(&run), "the receiver has a timer");
	CHECK(!run.sink.open && !run.sink.closed_failed && run.sink.durable > 0, "sink kept");
	teardown(&run);
}

/* Garbage and truncated messages are ignored by both sides (no crash, no state change). */
static void test_garbage(void)
{
	struct run run;
	setup(&run, 200000, 9);
	run_until(&run, a_quarter);
	uint64_t random = 42;
	uint8_t message[128];
	for (int k = 0; k < 20000; k++) {
		size_t length = (size_t)(test_random(&random) % sizeof message);
		for (size_t i = 0; i < length; i++)
			message[i] = (uint8_t)test_random(&random);
		if (length > 0 && k % 2)
			message[0] = (uint8_t)(1 + k % 6); /* a valid kind with a random body */
		if (length >= 9 && k % 4 == 1)
			for (int i = 0; i < 8; i++) /* this stream's id */
				message[1 + i] = (uint8_t)(stream_sender_id(run.sender) >> (8 * i));
		stream_receiver_receive(run.receiver, run.net.now, 7, message, length);
		stream_sender_receive(run.sender, run.net.now, message, length);
	}
	network_drop_all(&run.net);
	run_until(&run, NULL);
	/* Garbage may have carried a DONE or an ABORT for this stream: it ends either way, and when it
	 * says it succeeded, the bytes are all there. */
	if (stream_sender_state(run.sender) == STREAM_STATE_SUCCEEDED && run.sink.finished)
		check_delivered(&run);
	CHECK(ended(&run), "the stream ended");
	teardown(&run);
}

int main(void)
{
	test_name = "snapshot_stream";
	RUN(test_clean_network);
	RUN(test_loss_reordering_duplicates);
	RUN(test_sender_restart_resumes);
	RUN(test_receiver_restart_resumes);
	RUN(test_refused);
	RUN(test_failed_finish_and_read);
	RUN(test_silent_peer_stalls);
	RUN(test_garbage);
	fprintf(stderr, "snapshot stream tests passed\n");
	return 0;
}
