/* dataplane/transport_core.h: the machinery every transport implementation shares, private to
 * dataplane/. Receive side: datagram -> fault layer (if enabled) -> frame_parse -> MAC (with a key) ->
 * filters (cluster, to, removed member) -> reassembly -> deliver. Send side: message ids, fragmentation
 * and the MAC (transport_core_encode). Both sides
 * write counters (atomics, single writer per counter) that any thread may read.
 *
 * An implementation embeds struct transport, calls transport_core_create in its open function, feeds
 * every received datagram to transport_core_receive and calls transport_core_tick once per poll. */
#ifndef QUORUMD_DATAPLANE_TRANSPORT_CORE_H
#define QUORUMD_DATAPLANE_TRANSPORT_CORE_H

#include <pthread.h>
#include <stdatomic.h>

#include "fault.h"
#include "frame_mac.h"
#include "frame_seal.h"
#include "reassembly.h"
#include "transport.h"

enum transport_counter_index {
#define TRANSPORT_COUNTER_INDEX(name, meaning) TRANSPORT_COUNTER_##name,
	TRANSPORT_COUNTERS(TRANSPORT_COUNTER_INDEX)
#undef TRANSPORT_COUNTER_INDEX
	TRANSPORT_COUNTER_COUNT
};

typedef uint64_t (*transport_clock_fn)(void *arg);

struct transport_core {
	struct transport_config config;
	transport_clock_fn clock;      /* monotonic ns */
	void *clock_arg;

	/* receive side */
	struct reassembly *reassembly;
	struct fault *fault;           /* NULL unless config.fault.enabled */
	transport_deliver_fn deliver;  /* set for the duration of one poll */
	void *deliver_arg;
	int delivered;

	struct frame_mac *receive_mac; /* NULL without a key file; keyed context of the receive thread */

	/* send side */
	uint64_t next_message_id;
	struct frame_mac *send_mac;    /* NULL without a key file; the send thread's own context, since a
	                                * libcrypto context must not be shared between threads */

	/* sealed frames (peer TLS): slots are written by whoever installs keys (the handshake thread),
	 * under sessions_lock, and published with a release store of their generation; each data thread
	 * keeps its own ciphers per slot and rebuilds them when it sees the generation change. */
	bool sealed;
	struct peer_tls *peer_tls;     /* the handshake thread, when config.peer_tls was given */
	pthread_mutex_t sessions_lock;
	uint64_t next_generation;      /* under sessions_lock */
	_Atomic size_t session_count;
	struct transport_session_slot {
		_Atomic uint64_t peer;
		_Atomic uint64_t generation;   /* 0: no keys */
		_Atomic uint64_t frames_sent;  /* written by the send thread */
		uint8_t send_key[TRANSPORT_SESSION_KEY_SIZE];
		uint8_t receive_key[TRANSPORT_SESSION_KEY_SIZE];
	} sessions[TRANSPORT_MAX_SESSIONS];
	struct transport_send_session {
		uint64_t generation;
		struct frame_cipher *cipher;
		uint64_t counter;
	} *send_sessions;              /* send thread's, one per slot */
	struct transport_receive_session {
		uint64_t generation;
		uint8_t key[TRANSPORT_SESSION_KEY_SIZE];
		struct frame_cipher *current, *previous;
		struct frame_replay_window current_window, previous_window;
	} *receive_sessions;           /* receive thread's, one per slot */
	uint8_t *opened;               /* receive thread: one frame's plaintext payload */

	/* any thread */
	pthread_mutex_t removed_lock;  /* serialises writers; readers use removed_count */
	_Atomic size_t removed_count;
	_Atomic uint64_t removed[TRANSPORT_MAX_REMOVED];
	_Atomic uint64_t counters[TRANSPORT_COUNTER_COUNT];
	_Atomic uint64_t parse_errors[FRAME_ERROR_COUNT];
};

/* Validates config (message in err) and sets up the shared state. clock NULL: CLOCK_MONOTONIC. */
int transport_core_create(const struct transport_config *config, transport_clock_fn clock, void *clock_arg,
	struct transport_core **out, char *err, size_t errlen);
void transport_core_destroy(struct transport_core *core);

uint64_t transport_core_now(const struct transport_core *core);
uint64_t transport_monotonic_ns(void *unused);

/* Single-writer increment: a relaxed load and store, no locked instruction. */
static inline void transport_core_count(struct transport_core *core, enum transport_counter_index i,
	uint64_t n)
{
	atomic_store_explicit(&core->counters[i],
		atomic_load_explicit(&core->counters[i], memory_order_relaxed) + n, memory_order_relaxed);
}

/* Receive side. begin/end bracket one poll; receive takes one datagram (counted in packets_in);
 * tick releases due fault-layer frames and expires reassembly; deadline is when tick has work next
 * (UINT64_MAX: none). end returns the number of messages delivered since begin. */
void transport_core_begin(struct transport_core *core, transport_deliver_fn deliver, void *arg);
void transport_core_receive(struct transport_core *core, const uint8_t *datagram, size_t length,
	uint64_t now_ns);
void transport_core_tick(struct transport_core *core, uint64_t now_ns);
uint64_t transport_core_deadline(const struct transport_core *core);
int transport_core_end(struct transport_core *core);

/* Send side, first of all: refuses a member the transport has no address for (has_address false:
 * -EHOSTUNREACH naming it, counted drop_unknown_peer) and, sealed, one without a session yet (-ENOTCONN,
 * counted unsent_no_session; Raft retries); then checks the size (-EMSGSIZE with message) and returns the
 * frame count and a fresh message id; counts messages_out. */
int transport_core_prepare(struct transport_core *core, uint64_t to, bool has_address, size_t length,
	struct frame_address *address, uint16_t *count, char *err, size_t errlen);

/* Send side: frame_encode, then, with a key, the MAC (and the CRC again, which covers it), or, sealed, the
 * AEAD under the session with peer (the member the frame goes to). Returns the frame's size, or 0 when the
 * span is invalid, out too small, there is no session or libcrypto failed. */
size_t transport_core_encode(struct transport_core *core, uint64_t peer, const struct frame_address *address,
	const uint8_t *message, size_t message_length, uint16_t count, uint16_t index, uint8_t *out,
	size_t out_size);

/* Starts the peer TLS thread (config.peer_tls) once the transport listens on host:port; add_peer and
 * remove_peer report peers' addresses to it. No-ops without peer TLS. */
int transport_core_start_peer_tls(struct transport_core *core, struct transport *t, const char *host, uint16_t port,
	char *err, size_t errlen);
void transport_core_peer_address(struct transport_core *core, uint64_t id, const char *host, uint16_t port);
void transport_core_peer_removed(struct transport_core *core, uint64_t id);

/* snprintf into err when err is not NULL; returns code. */
int transport_error(char *err, size_t errlen, int code, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

#endif
