/* dataplane/snapshot_stream.h: a large byte stream (a snapshot archive) sent to one peer over the
 * message transport, which may lose, reorder and duplicate messages: offered, windowed, acknowledged
 * and resumable. Pure state machines, as the Raft core is: no I/O, no clock, no threads. The caller
 * passes the time in, hands received messages in, and gives callbacks that read the source, write the
 * sink and send a message; both sides then only ever hold a window of chunks.
 *
 * The exchange:
 *   sender                                   receiver
 *   OFFER(id, total, identity, header) ──►   open: refuse, or accept at a resume offset (0, or what a
 *                                     ◄──    ACCEPT(id, resume)       sink kept from an earlier try)
 *   DATA(id, offset, bytes) ×window   ──►    written to the sink in offset order, early ones buffered
 *                                     ◄──    ACK(id, received, which later chunks arrived)
 *   ...                                      all bytes written: finish (verify, commit)
 *                                     ◄──    DONE(id, ok or the failure's text)
 * Chunks are at resume + k * chunk_size; at most `window` chunks past the acknowledged offset are in
 * flight. A chunk is sent again when its timer (an RTT estimate, backing off) runs out, or at once when
 * later chunks arrived while it did not. Either side gives up after stall_timeout_ms without progress.
 * A sender restarted with a new id offers again and the receiver resumes where its sink's durable
 * progress stands; a receiver restarted answers the unknown id with ABORT(UNKNOWN_STREAM), and the
 * sender offers again. A new offer replaces the stream the receiver had; DONE is repeated to any late
 * message of a finished stream.
 *
 * Wire format, little-endian: u8 kind | u64 stream id | then by kind:
 *   OFFER  u64 total | u64 identity | u32 chunk size | u32 window | u32 header length | header
 *   ACCEPT u64 resume offset
 *   DATA   u64 offset | the chunk's bytes (the rest of the message)
 *   ACK    u64 received (every byte below is written to the sink) | u64 bits (bit k: the chunk at
 *          received + k * chunk size arrived)
 *   DONE   u8 1 ok / 0 failed | text
 *   ABORT  u8 reason | text */
#ifndef QUORUMD_DATAPLANE_SNAPSHOT_STREAM_H
#define QUORUMD_DATAPLANE_SNAPSHOT_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum stream_kind {
	STREAM_OFFER = 1,
	STREAM_ACCEPT = 2,
	STREAM_DATA = 3,
	STREAM_ACK = 4,
	STREAM_DONE = 5,
	STREAM_ABORT = 6,
};

enum stream_abort_reason {
	STREAM_ABORT_UNKNOWN_STREAM = 1, /* the receiver has no such stream (it restarted): offer again */
	STREAM_ABORT_REFUSED = 2,        /* the receiver does not want this offer */
	STREAM_ABORT_FAILED = 3,         /* a read or write failed; the text says which */
};

/* Largest chunk and window either side accepts; the window fits the ACK's 64 bits. */
#define STREAM_MAX_CHUNK (1u << 20)
#define STREAM_MAX_WINDOW 64u
#define STREAM_MAX_HEADER (1u << 20)
/* Bytes a message adds to its chunk or header. */
#define STREAM_OVERHEAD 48u

struct stream_config {
	uint32_t chunk_size;       /* bytes per DATA: 4 KiB (four 1400-byte frames: a lost frame costs little) */
	uint32_t window;           /* chunks in flight past the acknowledged offset: 64 */
	uint32_t initial_rto_ms;   /* retransmission timer before an RTT was measured: 200 */
	uint32_t min_rto_ms;       /* 20 */
	uint32_t max_rto_ms;       /* 500: losses here are frames, not congestion; long waits only slow it */
	uint32_t stall_timeout_ms; /* no progress for this long: the stream ends (30000) */
};

void stream_config_init(struct stream_config *config);

enum stream_state {
	STREAM_STATE_OFFERING,  /* waiting for ACCEPT */
	STREAM_STATE_SENDING,
	STREAM_STATE_SUCCEEDED, /* DONE(ok): the receiver has all of it, finished */
	STREAM_STATE_FAILED,    /* see stream_sender_error */
};

struct stream_counters {
	uint64_t messages_sent;
	uint64_t chunks_sent;        /* DATA messages, first sends and resends */
	uint64_t chunks_resent;      /* of those, resends (timer or hole) */
	uint64_t bytes_sent;         /* chunk bytes, resends included */
	uint64_t offers_sent;
	uint64_t max_buffered;       /* receiver: most chunks held out of order at once */
};

/* ---- sender ---- */

struct stream_sender_callbacks {
	void *arg;
	/* Copies the stream's bytes [offset, offset + length) into buffer: 0, or -errno with a message. */
	int (*read)(void *arg, uint64_t offset, uint8_t *buffer, size_t length, char *err, size_t errlen);
	void (*send)(void *arg, const uint8_t *message, size_t length);
};

struct stream_sender;

/* A stream of `total` bytes with the receiver's `identity` for it (same content, same identity: what
 * lets a receiver resume) and a header the receiver sees in the offer. Nothing is sent before the
 * first stream_sender_tick. NULL when out of memory or the config is out of bounds. */
struct stream_sender *stream_sender_new(const struct stream_config *config,
		const struct stream_sender_callbacks *callbacks, uint64_t stream_id, uint64_t total, uint64_t identity,
		const uint8_t *header, size_t header_length);
void stream_sender_free(struct stream_sender *sender);
/* Sends what is due now. Call after stream_sender_receive and whenever stream_sender_wait_ms passes. */
void stream_sender_tick(struct stream_sender *sender, uint64_t now_ms);
/* A message from the receiver; other streams' messages and malformed ones are ignored. */
void stream_sender_receive(struct stream_sender *sender, uint64_t now_ms, const uint8_t *message, size_t length);
/* Milliseconds until the sender has something to do without new input (-1: nothing, it has ended). */
int64_t stream_sender_wait_ms(const struct stream_sender *sender, uint64_t now_ms);
enum stream_state stream_sender_state(const struct stream_sender *sender);
const char *stream_sender_error(const struct stream_sender *sender);
uint64_t stream_sender_id(const struct stream_sender *sender);
uint64_t stream_sender_acknowledged(const struct stream_sender *sender);
const struct stream_counters *stream_sender_counters(const struct stream_sender *sender);

/* ---- receiver ---- */

struct stream_offer {
	uint64_t peer;
	uint64_t stream_id;
	uint64_t total;
	uint64_t identity;
	uint32_t chunk_size;
	uint32_t window;
	const uint8_t *header;
	size_t header_length;
};

struct stream_receiver_callbacks {
	void *arg;
	/* An offer: open the sink and set *resume_offset (0, or where what it kept ends), or refuse with
	 * -errno and a message (sent back in an ABORT). */
	int (*open)(void *arg, const struct stream_offer *offer, uint64_t *resume_offset, char *err, size_t errlen);
	/* The stream's next bytes, in order and without gaps: 0, or -errno with a message. */
	int (*write)(void *arg, uint64_t offset, const uint8_t *data, size_t length, char *err, size_t errlen);
	/* Every byte was written: verify and commit. 0, or -errno with a message (sent back in DONE). */
	int (*finish)(void *arg, char *err, size_t errlen);
	/* The stream ends unfinished (replaced, stalled, a write failed): close the sink, keeping what a
	 * later offer of the same identity may resume unless `failed`. */
	void (*close)(void *arg, bool failed);
	void (*send)(void *arg, uint64_t peer, const uint8_t *message, size_t length);
};

struct stream_receiver;

/* One stream at a time (a member installs one snapshot at a time): a new offer replaces the current. */
struct stream_receiver *stream_receiver_new(const struct stream_config *config,
		const struct stream_receiver_callbacks *callbacks);
void stream_receiver_free(struct stream_receiver *receiver);
void stream_receiver_receive(struct stream_receiver *receiver, uint64_t now_ms, uint64_t peer,
		const uint8_t *message, size_t length);
/* Ends a stream that stalled. Call whenever stream_receiver_wait_ms passes. */
void stream_receiver_tick(struct stream_receiver *receiver, uint64_t now_ms);
int64_t stream_receiver_wait_ms(const struct stream_receiver *receiver, uint64_t now_ms);
/* True while a stream is open (between an accepted offer and its end). */
bool stream_receiver_busy(const struct stream_receiver *receiver);
const struct stream_counters *stream_receiver_counters(const struct stream_receiver *receiver);

/* The kind and stream id of a message (false when it is too short to have them). */
bool stream_message_peek(const uint8_t *message, size_t length, enum stream_kind *kind, uint64_t *stream_id);

#endif
