/* dataplane/snapshot_stream.c: the snapshot stream's sender and receiver (snapshot_stream.h).
 *
 * Both sides keep one slot per chunk of the window. The sender's slot says when the chunk was last
 * sent, how often, and whether the receiver reported it arrived (an ACK's bits); the receiver's holds a
 * chunk that came before the ones the sink still waits for, in a ring indexed by its place on the chunk
 * grid. Retransmission follows TCP in spirit: a timer from a smoothed RTT (measured only on chunks sent
 * once, Karn's rule) that doubles when it fires, and a resend without waiting for the timer once three
 * later chunks arrived (the receiver's bits play the part of duplicate ACKs). */
#include "snapshot_stream.h"

#include "little_endian.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Later chunks (sent after it) that must have arrived before a missing one is sent again without its
 * timer: reordering by fewer places is not taken for loss. */
#define FAST_RESEND_AFTER 3

void stream_config_init(struct stream_config *config)
{
	config->chunk_size = 4 * 1024;
	config->window = 64;
	config->initial_rto_ms = 200;
	config->min_rto_ms = 20;
	config->max_rto_ms = 500;
	config->stall_timeout_ms = 30000;
}

static bool config_valid(const struct stream_config *config)
{
	return config->chunk_size >= 1 && config->chunk_size <= STREAM_MAX_CHUNK && config->window >= 1 &&
	       config->window <= STREAM_MAX_WINDOW && config->min_rto_ms >= 1 &&
	       config->min_rto_ms <= config->max_rto_ms && config->stall_timeout_ms > 0;
}

/* ---- encoding ---- */

#define PREFIX 9 /* kind, stream id */

static size_t put_prefix(uint8_t *out, enum stream_kind kind, uint64_t stream_id)
{
	out[0] = (uint8_t)kind;
	little_endian_put64(out + 1, stream_id);
	return PREFIX;
}

bool stream_message_peek(const uint8_t *message, size_t length, enum stream_kind *kind, uint64_t *stream_id)
{
	if (length < PREFIX || message[0] < STREAM_OFFER || message[0] > STREAM_ABORT)
		return false;
	*kind = (enum stream_kind)message[0];
	*stream_id = little_endian_get64(message + 1);
	return true;
}

/* DONE and ABORT: a byte and a text. */
static void send_status(void (*send)(void *, uint64_t, const uint8_t *, size_t), void *arg, uint64_t peer,
		enum stream_kind kind, uint64_t stream_id, uint8_t code, const char *text)
{
	uint8_t message[PREFIX + 1 + 256];
	size_t length = put_prefix(message, kind, stream_id);
	message[length++] = code;
	size_t text_length = strnlen(text, 255);
	memcpy(message + length, text, text_length);
	send(arg, peer, message, length + text_length);
}

/* ---- sender ---- */

struct send_slot {
	uint64_t sent_at;
	uint32_t sends;
	bool arrived;
};

struct stream_sender {
	struct stream_config config;
	struct stream_sender_callbacks callbacks;
	uint64_t id;
	uint64_t total;
	uint64_t identity;
	uint8_t *header;
	size_t header_length;
	enum stream_state state;
	char error[256];
	bool started;
	uint64_t base;                           /* the chunk grid's origin: the accepted resume offset */
	uint64_t acknowledged;                   /* every byte below is written at the receiver */
	struct send_slot slots[STREAM_MAX_WINDOW]; /* slot k: the chunk at acknowledged + k * chunk_size */
	uint64_t offer_sent_at;
	uint64_t poke_sent_at;                   /* everything acknowledged: asking for DONE */
	uint32_t rto_ms;
	uint32_t srtt_ms;                        /* 0: not measured yet */
	uint32_t rttvar_ms;
	uint64_t last_progress;
	uint8_t *buffer;                         /* one DATA message */
	struct stream_counters counters;
};

static void sender_send(struct stream_sender *sender, const uint8_t *message, size_t length)
{
	sender->counters.messages_sent++;
	sender->callbacks.send(sender->callbacks.arg, message, length);
}

static void sender_send_status(void *arg, uint64_t peer, const uint8_t *message, size_t length)
{
	(void)peer;
	sender_send(arg, message, length);
}

static void sender_fail(struct stream_sender *sender, bool tell_receiver, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

static void sender_fail(struct stream_sender *sender, bool tell_receiver, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	vsnprintf(sender->error, sizeof sender->error, format, args);
	va_end(args);
	sender->state = STREAM_STATE_FAILED;
	if (tell_receiver)
		send_status(sender_send_status, sender, 0, STREAM_ABORT, sender->id, STREAM_ABORT_FAILED, sender->error);
}

struct stream_sender *stream_sender_new(const struct stream_config *config,
		const struct stream_sender_callbacks *callbacks, uint64_t stream_id, uint64_t total, uint64_t identity,
		const uint8_t *header, size_t header_length)
{
	if (!config_valid(config) || header_length > STREAM_MAX_HEADER)
		return NULL;
	struct stream_sender *sender = calloc(1, sizeof *sender);
	if (sender == NULL)
		return NULL;
	sender->config = *config;
	sender->callbacks = *callbacks;
	sender->id = stream_id;
	sender->total = total;
	sender->identity = identity;
	sender->header = malloc(header_length ? header_length : 1);
	sender->buffer = malloc(PREFIX + 8 + (size_t)config->chunk_size);
	if (sender->header == NULL || sender->buffer == NULL) {
		stream_sender_free(sender);
		return NULL;
	}
	if (header_length)
		memcpy(sender->header, header, header_length);
	sender->header_length = header_length;
	sender->rto_ms = config->initial_rto_ms;
	sender->state = STREAM_STATE_OFFERING;
	return sender;
}

void stream_sender_free(struct stream_sender *sender)
{
	if (sender == NULL)
		return;
	free(sender->header);
	free(sender->buffer);
	free(sender);
}

static void send_offer(struct stream_sender *sender, uint64_t now)
{
	size_t length = PREFIX + 8 + 8 + 4 + 4 + 4 + sender->header_length;
	uint8_t *message = malloc(length);
	if (message == NULL)
		return; /* the offer timer tries again */
	size_t at = put_prefix(message, STREAM_OFFER, sender->id);
	little_endian_put64(message + at, sender->total);
	little_endian_put64(message + at + 8, sender->identity);
	little_endian_put32(message + at + 16, sender->config.chunk_size);
	little_endian_put32(message + at + 20, sender->config.window);
	little_endian_put32(message + at + 24, (uint32_t)sender->header_length);
	memcpy(message + at + 28, sender->header, sender->header_length);
	sender_send(sender, message, length);
	free(message);
	sender->offer_sent_at = now;
	sender->counters.offers_sent++;
}

static uint64_t chunk_length(const struct stream_sender *sender, uint64_t offset)
{
	uint64_t left = sender->total - offset;
	return left < sender->config.chunk_size ? left : sender->config.chunk_size;
}

/* Sends the chunk at offset (empty at the end of the stream: a poke for ACK and DONE). */
static bool send_chunk(struct stream_sender *sender, uint64_t offset)
{
	size_t length = (size_t)chunk_length(sender, offset);
	size_t at = put_prefix(sender->buffer, STREAM_DATA, sender->id);
	little_endian_put64(sender->buffer + at, offset);
	at += 8;
	if (length > 0) {
		char error[200] = "";
		int rc = sender->callbacks.read(sender->callbacks.arg, offset, sender->buffer + at, length, error,
				sizeof error);
		if (rc != 0) {
			sender_fail(sender, true, "reading the stream at offset %llu: %s", (unsigned long long)offset,
					error[0] ? error : strerror(-rc));
			return false;
		}
		sender->counters.chunks_sent++;
		sender->counters.bytes_sent += length;
	}
	sender_send(sender, sender->buffer, at + length);
	return true;
}

static void send_slot(struct stream_sender *sender, size_t k, uint64_t now)
{
	struct send_slot *slot = &sender->slots[k];
	if (slot->sends > 0)
		sender->counters.chunks_resent++;
	if (!send_chunk(sender, sender->acknowledged + k * (uint64_t)sender->config.chunk_size))
		return;
	slot->sent_at = now;
	slot->sends++;
}

/* A chunk is lost, not late, once FAST_RESEND_AFTER chunks sent after it arrived. */
static bool hole_is_lost(const struct stream_sender *sender, size_t k)
{
	const struct send_slot *slot = &sender->slots[k];
	if (slot->arrived || slot->sends == 0)
		return false;
	size_t arrived_after = 0;
	for (size_t later = k + 1; later < sender->config.window && arrived_after < FAST_RESEND_AFTER; later++)
		if (sender->slots[later].arrived && sender->slots[later].sent_at >= slot->sent_at)
			arrived_after++;
	return arrived_after >= FAST_RESEND_AFTER;
}

/* A lost chunk goes again once a round trip has passed since it was sent, so a resend is never answered
 * by the ACKs of the send before it. */
static uint32_t round_trip_ms(const struct stream_sender *sender)
{
	return sender->srtt_ms > 1 ? sender->srtt_ms : 1;
}

static void resend_holes(struct stream_sender *sender, uint64_t now)
{
	for (size_t k = 0; k + 1 < sender->config.window && sender->state == STREAM_STATE_SENDING; k++)
		if (hole_is_lost(sender, k) && now - sender->slots[k].sent_at >= round_trip_ms(sender))
			send_slot(sender, k, now);
}

void stream_sender_tick(struct stream_sender *sender, uint64_t now)
{
	if (sender->state == STREAM_STATE_SUCCEEDED || sender->state == STREAM_STATE_FAILED)
		return;
	if (!sender->started) {
		sender->started = true;
		sender->last_progress = now;
		send_offer(sender, now);
		return;
	}
	if (now - sender->last_progress >= sender->config.stall_timeout_ms) {
		sender_fail(sender, true, "no progress for %u ms (%llu of %llu bytes acknowledged)",
				sender->config.stall_timeout_ms, (unsigned long long)sender->acknowledged,
				(unsigned long long)sender->total);
		return;
	}
	if (sender->state == STREAM_STATE_OFFERING) {
		if (now - sender->offer_sent_at >= sender->rto_ms) {
			send_offer(sender, now);
			sender->rto_ms = sender->rto_ms * 2 > sender->config.max_rto_ms ? sender->config.max_rto_ms
			                                                                 : sender->rto_ms * 2;
		}
		return;
	}
	if (sender->acknowledged == sender->total) {
		if (now - sender->poke_sent_at >= sender->rto_ms) {
			send_chunk(sender, sender->total);
			sender->poke_sent_at = now;
		}
		return;
	}
	resend_holes(sender, now);
	bool timer_fired = false;
	for (size_t k = 0; k < sender->config.window && sender->state == STREAM_STATE_SENDING; k++) {
		uint64_t offset = sender->acknowledged + k * (uint64_t)sender->config.chunk_size;
		if (offset >= sender->total)
			break;
		struct send_slot *slot = &sender->slots[k];
		if (slot->arrived)
			continue;
		if (slot->sends == 0) {
			send_slot(sender, k, now);
		} else if (now - slot->sent_at >= sender->rto_ms) {
			send_slot(sender, k, now);
			timer_fired = true;
		}
	}
	if (timer_fired)
		sender->rto_ms = sender->rto_ms * 2 > sender->config.max_rto_ms ? sender->config.max_rto_ms
		                                                                 : sender->rto_ms * 2;
}

/* RFC 6298's estimator, in milliseconds. */
static void sample_rtt(struct stream_sender *sender, uint64_t rtt)
{
	uint32_t sample = rtt > 60000 ? 60000 : (uint32_t)rtt;
	if (sender->srtt_ms == 0 && sender->rttvar_ms == 0) {
		sender->srtt_ms = sample;
		sender->rttvar_ms = sample / 2;
	} else {
		uint32_t difference = sample > sender->srtt_ms ? sample - sender->srtt_ms : sender->srtt_ms - sample;
		sender->rttvar_ms = (3 * sender->rttvar_ms + difference) / 4;
		sender->srtt_ms = (7 * sender->srtt_ms + sample) / 8;
	}
	uint32_t rto = sender->srtt_ms + 4 * sender->rttvar_ms;
	if (rto < sender->config.min_rto_ms)
		rto = sender->config.min_rto_ms;
	if (rto > sender->config.max_rto_ms)
		rto = sender->config.max_rto_ms;
	sender->rto_ms = rto;
}

static void take_ack(struct stream_sender *sender, uint64_t now, uint64_t received, uint64_t bits)
{
	uint64_t chunk = sender->config.chunk_size;
	if (received > sender->total || received < sender->acknowledged)
		return;
	if (received > sender->acknowledged) {
		if (received != sender->total && (received - sender->base) % chunk != 0)
			return; /* off the grid: not an ACK of this stream's chunks */
		uint64_t advanced = (received - sender->acknowledged + chunk - 1) / chunk;
		struct send_slot *newest = advanced <= sender->config.window ? &sender->slots[advanced - 1] : NULL;
		if (newest != NULL && newest->sends == 1)
			sample_rtt(sender, now - newest->sent_at);
		else if (sender->srtt_ms != 0)
			sample_rtt(sender, sender->srtt_ms); /* progress ends the backoff (as Linux does) */
		size_t window = sender->config.window;
		size_t shift = advanced < window ? (size_t)advanced : window;
		memmove(sender->slots, sender->slots + shift, (window - shift) * sizeof sender->slots[0]);
		memset(sender->slots + window - shift, 0, shift * sizeof sender->slots[0]);
		sender->acknowledged = received;
		sender->last_progress = now;
	}
	for (size_t k = 1; k < sender->config.window && k < 64; k++) {
		if (bits & (UINT64_C(1) << k)) {
			if (!sender->slots[k].arrived)
				sender->last_progress = now;
			sender->slots[k].arrived = true;
		}
	}
	resend_holes(sender, now);
}

void stream_sender_receive(struct stream_sender *sender, uint64_t now, const uint8_t *message, size_t length)
{
	enum stream_kind kind;
	uint64_t id;
	if (!stream_message_peek(message, length, &kind, &id) || id != sender->id)
		return;
	if (sender->state == STREAM_STATE_SUCCEEDED || sender->state == STREAM_STATE_FAILED)
		return;
	const uint8_t *body = message + PREFIX;
	size_t body_length = length - PREFIX;
	switch (kind) {
	case STREAM_ACCEPT: {
		if (body_length < 8 || sender->state != STREAM_STATE_OFFERING)
			return;
		uint64_t resume = little_endian_get64(body);
		if (resume > sender->total) {
			sender_fail(sender, true, "the receiver resumes at %llu, beyond the stream's %llu bytes",
					(unsigned long long)resume, (unsigned long long)sender->total);
			return;
		}
		sender->base = sender->acknowledged = resume;
		memset(sender->slots, 0, sizeof sender->slots);
		sender->state = STREAM_STATE_SENDING;
		sender->last_progress = now;
		sender->poke_sent_at = now;
		if (sender->srtt_ms == 0)
			sample_rtt(sender, now - sender->offer_sent_at);
		return;
	}
	case STREAM_ACK:
		if (body_length >= 16 && sender->state == STREAM_STATE_SENDING)
			take_ack(sender, now, little_endian_get64(body), little_endian_get64(body + 8));
		return;
	case STREAM_DONE:
		if (body_length < 1)
			return;
		if (body[0] == 1) {
			sender->acknowledged = sender->total;
			sender->state = STREAM_STATE_SUCCEEDED;
		} else {
			sender_fail(sender, false, "the receiver could not finish: %.*s", (int)(body_length - 1),
					(const char *)body + 1);
		}
		return;
	case STREAM_ABORT:
		if (body_length < 1)
			return;
		if (body[0] == STREAM_ABORT_UNKNOWN_STREAM) {
			/* The receiver restarted: offer again; it resumes from what its sink kept. */
			if (sender->state == STREAM_STATE_SENDING) {
				sender->state = STREAM_STATE_OFFERING;
				send_offer(sender, now);
			}
			return;
		}
		sender_fail(sender, false, "the receiver %s: %.*s",
				body[0] == STREAM_ABORT_REFUSED ? "refused the stream" : "failed", (int)(body_length - 1),
				(const char *)body + 1);
		return;
	default:
		return;
	}
}

/* When resend_holes will next send. */
static uint64_t resend_holes_due(const struct stream_sender *sender)
{
	uint64_t due = UINT64_MAX;
	for (size_t k = 0; k + 1 < sender->config.window; k++)
		if (hole_is_lost(sender, k) && sender->slots[k].sent_at + round_trip_ms(sender) < due)
			due = sender->slots[k].sent_at + round_trip_ms(sender);
	return due;
}

int64_t stream_sender_wait_ms(const struct stream_sender *sender, uint64_t now)
{
	if (sender->state == STREAM_STATE_SUCCEEDED || sender->state == STREAM_STATE_FAILED)
		return -1;
	if (!sender->started)
		return 0;
	uint64_t due = sender->last_progress + sender->config.stall_timeout_ms;
	if (sender->state == STREAM_STATE_OFFERING) {
		uint64_t offer = sender->offer_sent_at + sender->rto_ms;
		due = offer < due ? offer : due;
	} else if (sender->acknowledged == sender->total) {
		uint64_t poke = sender->poke_sent_at + sender->rto_ms;
		due = poke < due ? poke : due;
	} else {
		uint64_t hole = resend_holes_due(sender);
		due = hole < due ? hole : due;
		for (size_t k = 0; k < sender->config.window; k++) {
			uint64_t offset = sender->acknowledged + k * (uint64_t)sender->config.chunk_size;
			if (offset >= sender->total)
				break;
			const struct send_slot *slot = &sender->slots[k];
			if (slot->arrived)
				continue;
			if (slot->sends == 0)
				return 0;
			uint64_t resend = slot->sent_at + sender->rto_ms;
			due = resend < due ? resend : due;
		}
	}
	return due <= now ? 0 : (int64_t)(due - now);
}

enum stream_state stream_sender_state(const struct stream_sender *sender)
{
	return sender->state;
}

const char *stream_sender_error(const struct stream_sender *sender)
{
	return sender->error;
}

uint64_t stream_sender_id(const struct stream_sender *sender)
{
	return sender->id;
}

uint64_t stream_sender_acknowledged(const struct stream_sender *sender)
{
	return sender->acknowledged;
}

const struct stream_counters *stream_sender_counters(const struct stream_sender *sender)
{
	return &sender->counters;
}

/* ---- receiver ---- */

struct stream_receiver {
	struct stream_config config;
	struct stream_receiver_callbacks callbacks;
	bool busy;
	uint64_t peer;
	uint64_t id;
	uint64_t total;
	uint32_t chunk_size;
	uint32_t window;
	uint64_t base;     /* the chunk grid's origin */
	uint64_t received; /* every byte below is written to the sink */
	uint64_t last_progress;
	uint8_t *buffer;   /* window * chunk_size: chunks that came early, by grid position mod window */
	size_t buffer_size;
	bool present[STREAM_MAX_WINDOW];
	uint32_t lengths[STREAM_MAX_WINDOW];
	size_t buffered;
	bool has_finished; /* the last stream that ended by finishing, to answer its late messages */
	uint64_t finished_peer;
	uint64_t finished_id;
	bool finished_ok;
	char finished_text[256];
	struct stream_counters counters;
};

struct stream_receiver *stream_receiver_new(const struct stream_config *config,
		const struct stream_receiver_callbacks *callbacks)
{
	if (!config_valid(config))
		return NULL;
	struct stream_receiver *receiver = calloc(1, sizeof *receiver);
	if (receiver == NULL)
		return NULL;
	receiver->config = *config;
	receiver->callbacks = *callbacks;
	return receiver;
}

void stream_receiver_free(struct stream_receiver *receiver)
{
	if (receiver == NULL)
		return;
	if (receiver->busy)
		receiver->callbacks.close(receiver->callbacks.arg, false);
	free(receiver->buffer);
	free(receiver);
}

static void receiver_send(struct stream_receiver *receiver, uint64_t peer, const uint8_t *message, size_t length)
{
	receiver->counters.messages_sent++;
	receiver->callbacks.send(receiver->callbacks.arg, peer, message, length);
}

static void receiver_send_status(void *arg, uint64_t peer, const uint8_t *message, size_t length)
{
	receiver_send(arg, peer, message, length);
}

static void send_abort(struct stream_receiver *receiver, uint64_t peer, uint64_t id, enum stream_abort_reason reason,
		const char *text)
{
	send_status(receiver_send_status, receiver, peer, STREAM_ABORT, id, (uint8_t)reason, text);
}

static void send_done(struct stream_receiver *receiver)
{
	send_status(receiver_send_status, receiver, receiver->finished_peer, STREAM_DONE, receiver->finished_id,
			receiver->finished_ok ? 1 : 0, receiver->finished_text);
}

static void send_accept(struct stream_receiver *receiver)
{
	uint8_t message[PREFIX + 8];
	size_t at = put_prefix(message, STREAM_ACCEPT, receiver->id);
	little_endian_put64(message + at, receiver->received);
	receiver_send(receiver, receiver->peer, message, sizeof message);
}

static size_t ring_slot(const struct stream_receiver *receiver, uint64_t offset)
{
	return (size_t)(((offset - receiver->base) / receiver->chunk_size) % receiver->window);
}

static void send_ack(struct stream_receiver *receiver)
{
	uint64_t bits = 0;
	for (size_t k = 1; k < receiver->window; k++) {
		uint64_t offset = receiver->received + k * (uint64_t)receiver->chunk_size;
		if (offset < receiver->total && receiver->present[ring_slot(receiver, offset)])
			bits |= UINT64_C(1) << k;
	}
	uint8_t message[PREFIX + 16];
	size_t at = put_prefix(message, STREAM_ACK, receiver->id);
	little_endian_put64(message + at, receiver->received);
	little_endian_put64(message + at + 8, bits);
	receiver_send(receiver, receiver->peer, message, sizeof message);
}

static void end_stream(struct stream_receiver *receiver, bool close_sink, bool failed)
{
	if (close_sink)
		receiver->callbacks.close(receiver->callbacks.arg, failed);
	receiver->busy = false;
	memset(receiver->present, 0, sizeof receiver->present);
	receiver->buffered = 0;
}

/* Every byte is in the sink: finish it and say how that went (repeated to late messages). */
static void finish_stream(struct stream_receiver *receiver)
{
	char error[200] = "";
	int rc = receiver->callbacks.finish(receiver->callbacks.arg, error, sizeof error);
	receiver->has_finished = true;
	receiver->finished_peer = receiver->peer;
	receiver->finished_id = receiver->id;
	receiver->finished_ok = rc == 0;
	snprintf(receiver->finished_text, sizeof receiver->finished_text, "%s",
			rc == 0 ? "" : error[0] ? error : strerror(-rc));
	end_stream(receiver, rc != 0, true);
	send_done(receiver);
}

static void take_offer(struct stream_receiver *receiver, uint64_t now, uint64_t peer, uint64_t id, const uint8_t *body,
		size_t body_length)
{
	if (receiver->busy && receiver->id == id && receiver->peer == peer) {
		send_accept(receiver); /* our ACCEPT was lost */
		return;
	}
	if (receiver->has_finished && receiver->finished_id == id && receiver->finished_peer == peer) {
		send_done(receiver);
		return;
	}
	if (body_length < 28)
		return;
	struct stream_offer offer = {
		.peer = peer,
		.stream_id = id,
		.total = little_endian_get64(body),
		.identity = little_endian_get64(body + 8),
		.chunk_size = little_endian_get32(body + 16),
		.window = little_endian_get32(body + 20),
		.header_length = little_endian_get32(body + 24),
		.header = body + 28,
	};
	if (offer.header_length != body_length - 28 || offer.chunk_size == 0 || offer.chunk_size > STREAM_MAX_CHUNK ||
			offer.window == 0 || offer.window > STREAM_MAX_WINDOW) {
		send_abort(receiver, peer, id, STREAM_ABORT_REFUSED, "malformed offer");
		return;
	}
	if (receiver->busy)
		end_stream(receiver, true, false); /* replaced: what the sink kept may still be resumed */
	size_t buffer_size = (size_t)offer.chunk_size * offer.window;
	if (buffer_size > receiver->buffer_size) {
		uint8_t *buffer = realloc(receiver->buffer, buffer_size);
		if (buffer == NULL) {
			send_abort(receiver, peer, id, STREAM_ABORT_REFUSED, "out of memory");
			return;
		}
		receiver->buffer = buffer;
		receiver->buffer_size = buffer_size;
	}
	uint64_t resume = 0;
	char error[200] = "";
	int rc = receiver->callbacks.open(receiver->callbacks.arg, &offer, &resume, error, sizeof error);
	if (rc == 0 && resume > offer.total) {
		receiver->callbacks.close(receiver->callbacks.arg, true);
		rc = -EINVAL;
		snprintf(error, sizeof error, "resume offset %llu is beyond the stream", (unsigned long long)resume);
	}
	if (rc != 0) {
		send_abort(receiver, peer, id, STREAM_ABORT_REFUSED, error[0] ? error : strerror(-rc));
		return;
	}
	receiver->busy = true;
	receiver->peer = peer;
	receiver->id = id;
	receiver->total = offer.total;
	receiver->chunk_size = offer.chunk_size;
	receiver->window = offer.window;
	receiver->base = receiver->received = resume;
	receiver->last_progress = now;
	memset(receiver->present, 0, sizeof receiver->present);
	receiver->buffered = 0;
	send_accept(receiver);
	if (resume == offer.total)
		finish_stream(receiver);
}

/* Writes the chunk at `received` and every buffered one that follows it. False when the sink failed. */
static bool write_in_order(struct stream_receiver *receiver, const uint8_t *data, size_t length)
{
	for (;;) {
		char error[200] = "";
		int rc = receiver->callbacks.write(receiver->callbacks.arg, receiver->received, data, length, error,
				sizeof error);
		if (rc != 0) {
			send_abort(receiver, receiver->peer, receiver->id, STREAM_ABORT_FAILED, error[0] ? error : strerror(-rc));
			end_stream(receiver, true, true);
			return false;
		}
		receiver->received += length;
		if (receiver->received >= receiver->total)
			return true;
		size_t slot = ring_slot(receiver, receiver->received);
		if (!receiver->present[slot])
			return true;
		receiver->present[slot] = false;
		receiver->buffered--;
		data = receiver->buffer + slot * (size_t)receiver->chunk_size;
		length = receiver->lengths[slot];
	}
}

static void take_data(struct stream_receiver *receiver, uint64_t now, uint64_t peer, uint64_t id, const uint8_t *body,
		size_t body_length)
{
	if (!receiver->busy || receiver->id != id || receiver->peer != peer) {
		if (receiver->has_finished && receiver->finished_id == id && receiver->finished_peer == peer)
			send_done(receiver);
		else
			send_abort(receiver, peer, id, STREAM_ABORT_UNKNOWN_STREAM, "no such stream");
		return;
	}
	if (body_length < 8)
		return;
	uint64_t offset = little_endian_get64(body);
	const uint8_t *data = body + 8;
	size_t length = body_length - 8;
	if (length == 0) {
		send_ack(receiver); /* a poke */
		return;
	}
	uint64_t expected = offset < receiver->total ? receiver->total - offset : 0;
	if (expected > receiver->chunk_size)
		expected = receiver->chunk_size;
	if (offset < receiver->base || (offset - receiver->base) % receiver->chunk_size != 0 || length != expected)
		return; /* not a chunk of this grid */
	if (offset >= receiver->received) {
		uint64_t ahead = (offset - receiver->received) / receiver->chunk_size;
		if (ahead >= receiver->window)
			return; /* beyond the window the sender may use: it will come again */
		if (ahead == 0) {
			if (!write_in_order(receiver, data, length))
				return;
			receiver->last_progress = now;
			if (receiver->received == receiver->total) {
				finish_stream(receiver);
				return;
			}
		} else {
			size_t slot = ring_slot(receiver, offset);
			if (!receiver->present[slot]) {
				memcpy(receiver->buffer + slot * (size_t)receiver->chunk_size, data, length);
				receiver->present[slot] = true;
				receiver->lengths[slot] = (uint32_t)length;
				receiver->buffered++;
				if (receiver->buffered > receiver->counters.max_buffered)
					receiver->counters.max_buffered = receiver->buffered;
				receiver->last_progress = now;
			}
		}
	}
	send_ack(receiver);
}

void stream_receiver_receive(struct stream_receiver *receiver, uint64_t now, uint64_t peer, const uint8_t *message,
		size_t length)
{
	enum stream_kind kind;
	uint64_t id;
	if (!stream_message_peek(message, length, &kind, &id))
		return;
	const uint8_t *body = message + PREFIX;
	size_t body_length = length - PREFIX;
	switch (kind) {
	case STREAM_OFFER:
		take_offer(receiver, now, peer, id, body, body_length);
		return;
	case STREAM_DATA:
		take_data(receiver, now, peer, id, body, body_length);
		return;
	case STREAM_ABORT:
		if (receiver->busy && receiver->id == id && receiver->peer == peer)
			end_stream(receiver, true, false); /* the sender gave up; a later offer may resume */
		return;
	default:
		return;
	}
}

void stream_receiver_tick(struct stream_receiver *receiver, uint64_t now)
{
	if (receiver->busy && now - receiver->last_progress >= receiver->config.stall_timeout_ms)
		end_stream(receiver, true, false);
}

int64_t stream_receiver_wait_ms(const struct stream_receiver *receiver, uint64_t now)
{
	if (!receiver->busy)
		return -1;
	uint64_t due = receiver->last_progress + receiver->config.stall_timeout_ms;
	return due <= now ? 0 : (int64_t)(due - now);
}

bool stream_receiver_busy(const struct stream_receiver *receiver)
{
	return receiver->busy;
}

const struct stream_counters *stream_receiver_counters(const struct stream_receiver *receiver)
{
	return &receiver->counters;
}
