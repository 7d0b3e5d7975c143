/* dataplane/transport.h: the peer transport interface. The node hands Raft messages (opaque bytes: packed
 * protobuf) to a transport and gets received ones back; behind the interface sit the kernel UDP
 * transport (udp.h), DPDK's poll-mode lcore (dpdk/dpdk.h) and the in-memory one tests use (memory.h).
 * Like redis connection.h: a named-field ops table, called through the small inline wrappers below;
 * the shared machinery (framing, filtering, reassembly, fault layer, counters) lives in transport.c so
 * every implementation behaves the same.
 *
 * Threading contract (no locks on the data path):
 * - Send side: transport_add_peer, transport_remove_peer, transport_send and transport_flush are called
 *   by one thread at a time (the Raft core thread). They touch only send-side state.
 * - Receive side: transport_poll, transport_sleep_begin and transport_sleep_end are called by one thread at
 *   a time, which may be another thread than the send side (the node's core thread plays both roles; deliver
 *   may send). They touch only receive-side state.
 * - Any thread: transport_mark_removed, transport_is_removed, transport_counters, transport_fd,
 *   transport_local_address.
 * - transport_close after both sides have stopped.
 * One thread may play both roles (the node's core thread and tests do).
 *
 * Errors: functions returning int return 0 (or a count) on success and -errno on failure, and write a
 * message naming what failed into err (err may be NULL), e.g. "bind 127.0.0.1:12380: Address already in
 * use". */
#ifndef QUORUMD_DATAPLANE_TRANSPORT_H
#define QUORUMD_DATAPLANE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fault.h"
#include "frame.h"

#define TRANSPORT_DEFAULT_MAX_MESSAGE (64u * 1024u * 1024u)
#define TRANSPORT_DEFAULT_REASSEMBLY_MEMORY (256u * 1024u * 1024u)
#define TRANSPORT_DEFAULT_REASSEMBLY_TIMEOUT_MS 5000u
/* Removed member ids remembered (etcd never reuses a member id). */
#define TRANSPORT_MAX_REMOVED 4096u

struct transport_config {
	uint64_t cluster_id;
	uint64_t member_id;            /* this member: frames to another id are dropped. Both ids 0: join
	                                * mode, for a member that must ask the cluster who it is: its frames
	                                * go out as cluster 0, to 0 (peers are added under any local id) and
	                                * it takes every frame; members with ids accept such join queries. */
	uint64_t first_message_id;     /* 0: CLOCK_REALTIME in ns, so a restarted member's ids keep growing
	                                * past those its peers remember (duplicate detection) */
	size_t max_datagram;           /* largest frame sent, header included: 1400 (Ethernet MTU 1500);
	                                * loopback can use up to FRAME_MAX_DATAGRAM */
	size_t max_message;            /* largest message sent or accepted: 64 MiB */
	size_t reassembly_memory;      /* bytes of incomplete messages held: 256 MiB */
	uint32_t reassembly_timeout_ms;/* incomplete messages dropped after: 5000 ms */
	unsigned receive_batch;        /* datagrams per recvmmsg: 64 */
	size_t send_queue;             /* frames queued before send flushes by itself: 1024 */
	size_t socket_buffer;          /* SO_RCVBUF and SO_SNDBUF: 8 MiB (forced when privileged, else the
	                                * kernel caps it at net.core.rmem_max / wmem_max) */
	struct fault_config fault;     /* test only: off unless fault.enabled (receive side) */
	const char *frame_key_file;     /* the cluster's shared secret: every frame sent carries a keyed MAC
	                                * of it and frames without the right one are dropped (drop_bad_mac);
	                                * read once at open (unreadable, empty or under 16 bytes: refused),
	                                * the pointer is not kept. NULL or "": frames carry zeros in the mac
	                                * field and none is checked (frame_mac.h) */
	/* Peer TLS (peer_tls.h): with settings, the transport runs TLS 1.3 handshakes with its peers over TCP
	 * on its own port number, on a thread of its own, and seals every frame with AES-256-GCM under the
	 * keys each handshake exports (frame_seal.h); nothing is sent to or taken from a member without a
	 * session. NULL: off. Not with frame_key_file. Read at open; the pointer is not kept. */
	const struct peer_tls_settings *peer_tls;
	/* Frames sealed as with peer_tls, but the keys come from transport_install_session only (tests, and
	 * transports without a TCP side: memory). Implied by peer_tls. */
	bool sealed;
	/* Called on the receive thread for each frame dropped because its sender was removed (NULL: none). */
	void (*on_removed_member)(void *arg, uint64_t from);
	void *on_removed_member_arg;
};

/* X(name, meaning). Counters only grow; transport_counters() reads them from any thread. */
#define TRANSPORT_COUNTERS(X)                                                                      \
	X(packets_in, "datagrams received")                                                        \
	X(bytes_in, "bytes received")                                                              \
	X(packets_out, "datagrams sent")                                                           \
	X(bytes_out, "bytes sent")                                                                 \
	X(messages_in, "messages delivered")                                                       \
	X(messages_out, "messages queued for sending")                                             \
	X(drop_bad_crc, "frames dropped: CRC32C mismatch")                                         \
	X(drop_malformed, "frames dropped: malformed (any other parse error)")                     \
	X(drop_bad_mac, "frames dropped: MAC missing or wrong (another key, no key, or forged)")   \
	X(drop_unknown_cluster, "frames dropped: another cluster id")                              \
	X(drop_not_for_us, "frames dropped: to another member")                                    \
	X(drop_removed_member, "frames dropped: from a removed member")                            \
	X(drop_reassembly_timeout, "messages dropped: incomplete at the timeout")                  \
	X(drop_reassembly_memory, "messages dropped: reassembly memory bound")                     \
	X(drop_send_error, "frames not sent: the socket refused them")                             \
	X(drop_unknown_peer, "messages not sent: no address for the member")                       \
	X(duplicates, "frames ignored: fragment or message seen before")                           \
	X(fault_dropped, "test fault layer: frames dropped")                                       \
	X(fault_duplicated, "test fault layer: frames duplicated")                                 \
	X(fault_reordered, "test fault layer: frames reordered")                                   \
	X(drop_ring_full, "frames dropped: a ring between the dpdk lcore and the node was full")   \
	X(drop_no_mbuf, "frames dropped: the dpdk mbuf pool was empty")                            \
	X(drop_no_neighbour, "frames not sent: the peer's MAC address did not resolve (ARP)")           \
	X(drop_bad_seal, "frames dropped: peer TLS on and the frame did not open (forged, altered, another " \
		"session's key, or not sealed), or a sealed frame without peer TLS")                    \
	X(drop_replayed, "frames dropped: sealed frame whose counter was seen before or is below the replay " \
		"window")                                                                          \
	X(drop_no_session, "frames dropped: peer TLS on and no session with the sender")                \
	X(unsent_no_session, "messages not sent: peer TLS on and no session with the member yet")       \
	X(sessions_installed, "peer TLS sessions installed (handshakes completed, re-keys included)")

struct transport_counters {
#define TRANSPORT_COUNTER_FIELD(name, meaning) uint64_t name;
	TRANSPORT_COUNTERS(TRANSPORT_COUNTER_FIELD)
#undef TRANSPORT_COUNTER_FIELD
	uint64_t parse_errors[FRAME_ERROR_COUNT];  /* drop_bad_crc + drop_malformed by frame_error */
};

/* A received message, valid only during the deliver call (copy what you keep). */
struct transport_message {
	uint64_t from;
	uint64_t message_id;
	const uint8_t *data;
	size_t length;
};

typedef void (*transport_deliver_fn)(void *arg, const struct transport_message *message);

struct transport;
struct transport_core;

struct transport_ops {
	const char *name;
	/* send side */
	int (*add_peer)(struct transport *t, uint64_t id, const char *host, uint16_t port, char *err,
		size_t errlen);
	int (*remove_peer)(struct transport *t, uint64_t id);
	int (*send)(struct transport *t, uint64_t to, const uint8_t *data, size_t length, char *err,
		size_t errlen);
	int (*flush)(struct transport *t, char *err, size_t errlen);
	/* send side, optional: send taking a malloc'd message it frees once its frames left (udp points
	 * plain frames at it instead of copying); NULL: transport_send_owned sends a copy and frees */
	int (*send_owned)(struct transport *t, uint64_t to, uint8_t *data, size_t length, char *err,
		size_t errlen);
	/* receive side */
	int (*poll)(struct transport *t, int timeout_ms, transport_deliver_fn deliver, void *arg, char *err,
		size_t errlen);
	/* receive side, optional: for an fd that is rung only for a receiver that said it sleeps (dpdk) */
	bool (*sleep_begin)(struct transport *t);
	void (*sleep_end)(struct transport *t);
	/* any thread */
	int (*fd)(const struct transport *t);
	int (*local_address)(const struct transport *t, char *host, size_t hostlen, uint16_t *port);
	void (*close)(struct transport *t);
};

/* Every implementation's struct starts with this. */
struct transport {
	const struct transport_ops *ops;
	struct transport_core *core;  /* shared machinery, private to dataplane/ (transport_core.h) */
};

/* Fills the defaults above (cluster_id and member_id 0: set them). */
void transport_config_init(struct transport_config *config);

/* Sets the address of member id (replacing an earlier one). host as in the peer URL, without brackets
 * for IPv6 ("10.0.0.1", "::1", "node2.example"). */
static inline int transport_add_peer(struct transport *t, uint64_t id, const char *host, uint16_t port,
	char *err, size_t errlen)
{
	return t->ops->add_peer(t, id, host, port, err, errlen);
}

/* Forgets member id's address: later sends to it count drop_unknown_peer. -ENOENT if unknown. */
static inline int transport_remove_peer(struct transport *t, uint64_t id)
{
	return t->ops->remove_peer(t, id);
}

/* Fragments one message into frames and queues them for member to. Returns 0, or -EMSGSIZE (over
 * max_message), -EHOSTUNREACH (no address for to; counted drop_unknown_peer), or a flush error when the
 * queue filled and flushing by itself failed. Nothing leaves before transport_flush (or a full queue). */
static inline int transport_send(struct transport *t, uint64_t to, const uint8_t *data, size_t length,
	char *err, size_t errlen)
{
	return t->ops->send(t, to, data, length, err, errlen);
}

/* transport_send for a message the caller gives away: data is a malloc'd buffer the transport frees
 * (free()) once its frames have left, or at once when it queued none. Same returns. A transport that
 * sends from the caller's bytes (udp with plain frames: a header per frame and the fragment where it lies
 * in data, no copy) saves a copy of every fragment; the others copy as transport_send does. */
static inline int transport_send_owned(struct transport *t, uint64_t to, uint8_t *data, size_t length,
	char *err, size_t errlen)
{
	if (t->ops->send_owned)
		return t->ops->send_owned(t, to, data, length, err, errlen);
	int rv = t->ops->send(t, to, data, length, err, errlen);
	free(data);
	return rv;
}

/* Sends every queued frame, in as few system calls as possible. Frames the socket refuses are dropped
 * and counted (Raft retries); the first error is returned. The queue is empty afterwards. */
static inline int transport_flush(struct transport *t, char *err, size_t errlen)
{
	return t->ops->flush(t, err, errlen);
}

/* Receives what has arrived, waiting up to timeout_ms (0: do not wait, -1: no limit) for the first
 * datagram, and calls deliver for each complete message. May return before timeout_ms with 0 when a
 * fault-layer frame became due. Returns the number of messages delivered or -errno. */
static inline int transport_poll(struct transport *t, int timeout_ms, transport_deliver_fn deliver, void *arg,
	char *err, size_t errlen)
{
	return t->ops->poll(t, timeout_ms, deliver, arg, err, errlen);
}

/* A file descriptor to wait on for received frames (level-triggered EPOLLIN), or -1 (poll on a timer).
 * For most transports it is readable while transport_poll has work; one poll reads at most a bounded
 * number of batches, so use level-triggered epoll. Where transport_needs_polling says so (dpdk), it is
 * rung only between transport_sleep_begin and transport_sleep_end: call transport_poll every loop turn
 * (it costs no system call there) and bracket the sleep. With the fault layer's delay on, also call
 * transport_poll within transport_next_wakeup_ms. */
static inline int transport_fd(const struct transport *t)
{
	return t->ops->fd(t);
}

/* True when transport_fd alone does not tell that frames wait (see transport_fd). */
static inline bool transport_needs_polling(const struct transport *t)
{
	return t->ops->sleep_begin != NULL;
}

/* Receive side, before a loop sleeps on transport_fd: false when frames already wait (do not sleep;
 * transport_sleep_end is not needed then). */
static inline bool transport_sleep_begin(struct transport *t)
{
	return t->ops->sleep_begin ? t->ops->sleep_begin(t) : true;
}

/* Receive side, after the sleep transport_sleep_begin allowed. */
static inline void transport_sleep_end(struct transport *t)
{
	if (t->ops->sleep_end)
		t->ops->sleep_end(t);
}

/* The bound address (after binding port 0, the port the kernel chose). */
static inline int transport_local_address(const struct transport *t, char *host, size_t hostlen,
	uint16_t *port)
{
	return t->ops->local_address(t, host, hostlen, port);
}

static inline void transport_close(struct transport *t)
{
	if (t)
		t->ops->close(t);
}

static inline const char *transport_name(const struct transport *t)
{
	return t->ops->name;
}

/* True when the transport was opened with a peer key file: its frames carry a MAC and it checks them. */
bool transport_authenticated(const struct transport *t);

/* True when frames are sealed (peer TLS, or config.sealed). */
bool transport_sealed(const struct transport *t);

#define TRANSPORT_SESSION_KEY_SIZE 32u
/* At most this many members have sessions over a transport's life (each keeps its slot). */
#define TRANSPORT_MAX_SESSIONS 256u

/* Installs the keys of a session with member peer, replacing earlier ones: frames to peer are sealed
 * with send_key (counters from 1), frames from it opened with receive_key — or with the receive key it
 * replaces, until that one is replaced in turn, so frames in flight across a re-key still open. Any
 * thread; the data path picks the keys up at its next frame for that peer. Returns a token for
 * transport_drop_session (> 0), or -ENOSPC after TRANSPORT_MAX_SESSIONS members, -EINVAL when the
 * transport does not seal. peer_tls.c calls it after each handshake; tests call it with fixed keys. */
int64_t transport_install_session(struct transport *t, uint64_t peer, const uint8_t send_key[TRANSPORT_SESSION_KEY_SIZE],
	const uint8_t receive_key[TRANSPORT_SESSION_KEY_SIZE]);
/* Forgets the session with peer if token is the one its keys were installed with (0: whatever they
 * are): nothing more is sent to it or taken from it until the next install. Any thread. */
void transport_drop_session(struct transport *t, uint64_t peer, int64_t token);
/* Frames sealed so far under the current send key to peer (for re-keying before counters run long). */
uint64_t transport_session_frames_sent(const struct transport *t, uint64_t peer);

/* Frames from member id are dropped from now on (counted drop_removed_member). Permanent, as member
 * ids are never reused. 0, or -ENOSPC after TRANSPORT_MAX_REMOVED ids. */
int transport_mark_removed(struct transport *t, uint64_t id);
bool transport_is_removed(const struct transport *t, uint64_t id);

/* A snapshot of the counters (each one consistent, not all taken at one instant). */
struct transport_counters transport_counters(const struct transport *t);

/* Milliseconds until the receive side has timed work (a delayed fault-layer frame); -1 if none. For an
 * epoll loop. Receive thread only. */
int transport_next_wakeup_ms(struct transport *t);

/* Names and meanings of the counters in the order of struct transport_counters' first fields, for the
 * control socket: transport_counter_name(i) for i < transport_counter_count(). */
size_t transport_counter_count(void);
const char *transport_counter_name(size_t i);
const char *transport_counter_meaning(size_t i);
uint64_t transport_counter_value(const struct transport_counters *c, size_t i);

#endif
