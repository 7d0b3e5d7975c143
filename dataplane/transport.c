/* dataplane/transport.c: what all transports share (see transport_core.h): the receive pipeline, message
 * ids and fragment counts for sending, the removed-member set and the counters. */
#include "transport_core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stddef.h>

#include <openssl/crypto.h>

#include "peer_tls.h"

/* transport_counters() copies the atomics onto the struct's leading uint64_t fields by index. */
_Static_assert(offsetof(struct transport_counters, parse_errors) == TRANSPORT_COUNTER_COUNT * sizeof(uint64_t),
	"struct transport_counters must start with exactly the TRANSPORT_COUNTERS fields");

static const char *const counter_names[] = {
#define TRANSPORT_COUNTER_NAME(name, meaning) #name,
	TRANSPORT_COUNTERS(TRANSPORT_COUNTER_NAME)
#undef TRANSPORT_COUNTER_NAME
};

static const char *const counter_meanings[] = {
#define TRANSPORT_COUNTER_MEANING(name, meaning) meaning,
	TRANSPORT_COUNTERS(TRANSPORT_COUNTER_MEANING)
#undef TRANSPORT_COUNTER_MEANING
};

int transport_error(char *err, size_t errlen, int code, const char *format, ...)
{
	if (err && errlen) {
		va_list args;
		va_start(args, format);
		vsnprintf(err, errlen, format, args);
		va_end(args);
	}
	return code;
}

void transport_config_init(struct transport_config *config)
{
	memset(config, 0, sizeof *config);
	config->max_datagram = FRAME_DEFAULT_DATAGRAM;
	config->max_message = TRANSPORT_DEFAULT_MAX_MESSAGE;
	config->reassembly_memory = TRANSPORT_DEFAULT_REASSEMBLY_MEMORY;
	config->reassembly_timeout_ms = TRANSPORT_DEFAULT_REASSEMBLY_TIMEOUT_MS;
	config->receive_batch = 64;
	config->send_queue = 1024;
	config->socket_buffer = 8u * 1024u * 1024u;
}

uint64_t transport_monotonic_ns(void *unused)
{
	(void)unused;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t transport_core_now(const struct transport_core *core)
{
	return core->clock(core->clock_arg);
}

int transport_core_create(const struct transport_config *config, transport_clock_fn clock, void *clock_arg,
	struct transport_core **out, char *err, size_t errlen)
{
	if (config->member_id == 0 && config->cluster_id != 0)
		return transport_error(err, errlen, -EINVAL, "transport: member id 0 is not a member");
	if (config->max_datagram <= FRAME_HEADER_SIZE || config->max_datagram > FRAME_MAX_DATAGRAM)
		return transport_error(err, errlen, -EINVAL,
			"transport: max datagram %zu outside %u..%u", config->max_datagram,
			FRAME_HEADER_SIZE + 1, FRAME_MAX_DATAGRAM);
	if (config->max_message > UINT32_MAX)
		return transport_error(err, errlen, -EINVAL, "transport: max message %zu over 4 GiB",
			config->max_message);
	if (config->receive_batch == 0 || config->receive_batch > 1024 || config->send_queue == 0)
		return transport_error(err, errlen, -EINVAL,
			"transport: receive batch must be 1..1024 and send queue at least 1");
	if (config->reassembly_memory == 0 || config->reassembly_timeout_ms == 0)
		return transport_error(err, errlen, -EINVAL,
			"transport: reassembly memory and timeout must not be 0");
	if (config->reassembly_memory < config->max_message)
		return transport_error(err, errlen, -EINVAL,
			"transport: reassembly memory %zu below the max message %zu: such a message could never "
			"be reassembled", config->reassembly_memory, config->max_message);
	struct transport_core *core = calloc(1, sizeof *core);
	if (!core)
		return transport_error(err, errlen, -ENOMEM, "transport: out of memory");
	core->config = *config;
	core->config.frame_key_file = NULL; /* the caller's string; only the key derived from it is kept */
	core->clock = clock ? clock : transport_monotonic_ns;
	core->clock_arg = clock_arg;
	pthread_mutex_init(&core->removed_lock, NULL);
	pthread_mutex_init(&core->sessions_lock, NULL);
	struct reassembly_config rc = {
		.memory_limit = config->reassembly_memory,
		.timeout_ns = (uint64_t)config->reassembly_timeout_ms * 1000000u,
	};
	int rv = reassembly_create(&rc, &core->reassembly);
	if (rv < 0) {
		transport_core_destroy(core);
		return transport_error(err, errlen, rv, "transport: reassembly: %s", strerror(-rv));
	}
	if (config->fault.enabled) {
		rv = fault_create(&config->fault, &core->fault);
		if (rv < 0) {
			transport_core_destroy(core);
			return transport_error(err, errlen, rv, "transport: fault layer: %s", strerror(-rv));
		}
	}
	core->sealed = config->sealed || config->peer_tls != NULL;
	if (core->sealed && config->frame_key_file && *config->frame_key_file) {
		transport_core_destroy(core);
		return transport_error(err, errlen, -EINVAL, "peer TLS and a peer frame key file are exclusive: "
			"sealed frames are authenticated already");
	}
	if (core->sealed) {
		core->send_sessions = calloc(TRANSPORT_MAX_SESSIONS, sizeof *core->send_sessions);
		core->receive_sessions = calloc(TRANSPORT_MAX_SESSIONS, sizeof *core->receive_sessions);
		core->opened = malloc(FRAME_MAX_DATAGRAM);
		if (!core->send_sessions || !core->receive_sessions || !core->opened) {
			transport_core_destroy(core);
			return transport_error(err, errlen, -ENOMEM, "transport: out of memory");
		}
	}
	if (config->frame_key_file && *config->frame_key_file) {
		uint8_t key[FRAME_MAC_KEY_SIZE];
		rv = frame_mac_load_key_file(config->frame_key_file, key, err, errlen);
		if (rv == 0 && (frame_mac_create(key, &core->send_mac) != 0 ||
			frame_mac_create(key, &core->receive_mac) != 0))
			rv = transport_error(err, errlen, -EIO, "peer frame key file %s: libcrypto has no keyed BLAKE2b "
				"(EVP_MAC BLAKE2BMAC)", config->frame_key_file);
		OPENSSL_cleanse(key, sizeof key);
		if (rv < 0) {
			transport_core_destroy(core);
			return rv;
		}
	}
	core->next_message_id = config->first_message_id;
	if (core->next_message_id == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		core->next_message_id = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	*out = core;
	return 0;
}

void transport_core_destroy(struct transport_core *core)
{
	if (!core)
		return;
	reassembly_destroy(core->reassembly);
	fault_destroy(core->fault);
	frame_mac_destroy(core->send_mac);
	frame_mac_destroy(core->receive_mac);
	peer_tls_stop(core->peer_tls); /* first: its thread installs keys */
	if (core->send_sessions)
		for (size_t i = 0; i < TRANSPORT_MAX_SESSIONS; i++)
			frame_cipher_destroy(core->send_sessions[i].cipher);
	if (core->receive_sessions)
		for (size_t i = 0; i < TRANSPORT_MAX_SESSIONS; i++) {
			frame_cipher_destroy(core->receive_sessions[i].current);
			frame_cipher_destroy(core->receive_sessions[i].previous);
		}
	free(core->send_sessions);
	if (core->receive_sessions)
		OPENSSL_cleanse(core->receive_sessions, TRANSPORT_MAX_SESSIONS * sizeof *core->receive_sessions);
	free(core->receive_sessions);
	free(core->opened);
	OPENSSL_cleanse(core->sessions, sizeof core->sessions);
	pthread_mutex_destroy(&core->sessions_lock);
	pthread_mutex_destroy(&core->removed_lock);
	free(core);
}

static bool core_is_removed(const struct transport_core *core, uint64_t id)
{
	size_t n = atomic_load_explicit(&core->removed_count, memory_order_acquire);
	for (size_t i = 0; i < n; i++)
		if (atomic_load_explicit(&core->removed[i], memory_order_relaxed) == id)
			return true;
	return false;
}

int transport_mark_removed(struct transport *t, uint64_t id)
{
	struct transport_core *core = t->core;
	int rv = 0;
	pthread_mutex_lock(&core->removed_lock);
	size_t n = atomic_load_explicit(&core->removed_count, memory_order_relaxed);
	if (!core_is_removed(core, id)) {
		if (n == TRANSPORT_MAX_REMOVED) {
			rv = -ENOSPC;
		} else {
			atomic_store_explicit(&core->removed[n], id, memory_order_relaxed);
			atomic_store_explicit(&core->removed_count, n + 1, memory_order_release);
		}
	}
	pthread_mutex_unlock(&core->removed_lock);
	return rv;
}

bool transport_authenticated(const struct transport *t)
{
	return t->core->receive_mac != NULL;
}

bool transport_sealed(const struct transport *t)
{
	return t->core->sealed;
}

/* ---- sessions (sealed frames) ---- */

static int find_session(const struct transport_core *core, uint64_t peer)
{
	size_t n = atomic_load_explicit(&core->session_count, memory_order_acquire);
	for (size_t i = 0; i < n; i++)
		if (atomic_load_explicit(&core->sessions[i].peer, memory_order_relaxed) == peer)
			return (int)i;
	return -1;
}

int64_t transport_install_session(struct transport *t, uint64_t peer, const uint8_t send_key[TRANSPORT_SESSION_KEY_SIZE],
	const uint8_t receive_key[TRANSPORT_SESSION_KEY_SIZE])
{
	struct transport_core *core = t->core;
	if (!core->sealed)
		return -EINVAL;
	pthread_mutex_lock(&core->sessions_lock);
	int i = find_session(core, peer);
	if (i < 0) {
		size_t n = atomic_load_explicit(&core->session_count, memory_order_relaxed);
		if (n == TRANSPORT_MAX_SESSIONS) {
			pthread_mutex_unlock(&core->sessions_lock);
			return -ENOSPC;
		}
		atomic_store_explicit(&core->sessions[n].peer, peer, memory_order_relaxed);
		atomic_store_explicit(&core->sessions[n].generation, 0, memory_order_relaxed);
		atomic_store_explicit(&core->session_count, n + 1, memory_order_release);
		i = (int)n;
	}
	struct transport_session_slot *slot = &core->sessions[i];
	memcpy(slot->send_key, send_key, TRANSPORT_SESSION_KEY_SIZE);
	memcpy(slot->receive_key, receive_key, TRANSPORT_SESSION_KEY_SIZE);
	atomic_store_explicit(&slot->frames_sent, 0, memory_order_relaxed);
	uint64_t generation = ++core->next_generation;
	atomic_store_explicit(&slot->generation, generation, memory_order_release);
	pthread_mutex_unlock(&core->sessions_lock);
	transport_core_count(core, TRANSPORT_COUNTER_sessions_installed, 1);
	return (int64_t)generation;
}

void transport_drop_session(struct transport *t, uint64_t peer, int64_t token)
{
	struct transport_core *core = t->core;
	pthread_mutex_lock(&core->sessions_lock);
	int i = find_session(core, peer);
	if (i >= 0) {
		struct transport_session_slot *slot = &core->sessions[i];
		uint64_t generation = atomic_load_explicit(&slot->generation, memory_order_relaxed);
		if (token == 0 || (uint64_t)token == generation) {
			OPENSSL_cleanse(slot->send_key, sizeof slot->send_key);
			OPENSSL_cleanse(slot->receive_key, sizeof slot->receive_key);
			atomic_store_explicit(&slot->generation, 0, memory_order_release);
		}
	}
	pthread_mutex_unlock(&core->sessions_lock);
}

uint64_t transport_session_frames_sent(const struct transport *t, uint64_t peer)
{
	int i = find_session(t->core, peer);
	return i < 0 ? 0 : atomic_load_explicit(&t->core->sessions[i].frames_sent, memory_order_relaxed);
}

/* The send thread's cipher for slot i, rebuilt when the slot's keys changed; NULL without keys. */
static struct transport_send_session *send_session(struct transport_core *core, int i)
{
	struct transport_session_slot *slot = &core->sessions[i];
	struct transport_send_session *session = &core->send_sessions[i];
	if (atomic_load_explicit(&slot->generation, memory_order_acquire) != session->generation) {
		uint8_t key[TRANSPORT_SESSION_KEY_SIZE];
		pthread_mutex_lock(&core->sessions_lock);
		uint64_t generation = atomic_load_explicit(&slot->generation, memory_order_relaxed);
		memcpy(key, slot->send_key, sizeof key);
		pthread_mutex_unlock(&core->sessions_lock);
		frame_cipher_destroy(session->cipher);
		session->cipher = NULL;
		session->counter = 0;
		session->generation = generation;
		if (generation != 0 && frame_cipher_create(key, true, &session->cipher) != 0)
			session->cipher = NULL;
		OPENSSL_cleanse(key, sizeof key);
	}
	return session->cipher ? session : NULL;
}

/* The receive thread's ciphers for slot i: a new key becomes current and the one it replaces stays as
 * previous (frames sealed before the peer switched still open); no keys clears both. */
static struct transport_receive_session *receive_session(struct transport_core *core, int i)
{
	struct transport_session_slot *slot = &core->sessions[i];
	struct transport_receive_session *session = &core->receive_sessions[i];
	if (atomic_load_explicit(&slot->generation, memory_order_acquire) != session->generation) {
		uint8_t key[TRANSPORT_SESSION_KEY_SIZE];
		pthread_mutex_lock(&core->sessions_lock);
		uint64_t generation = atomic_load_explicit(&slot->generation, memory_order_relaxed);
		memcpy(key, slot->receive_key, sizeof key);
		pthread_mutex_unlock(&core->sessions_lock);
		session->generation = generation;
		if (generation == 0) {
			frame_cipher_destroy(session->current);
			frame_cipher_destroy(session->previous);
			session->current = session->previous = NULL;
		} else if (!session->current || CRYPTO_memcmp(key, session->key, sizeof key) != 0) {
			struct frame_cipher *cipher = NULL;
			if (frame_cipher_create(key, false, &cipher) == 0) {
				frame_cipher_destroy(session->previous);
				session->previous = session->current;
				session->previous_window = session->current_window;
				session->current = cipher;
				frame_replay_init(&session->current_window);
				memcpy(session->key, key, sizeof key);
			}
		}
		OPENSSL_cleanse(key, sizeof key);
	}
	return session->current ? session : NULL;
}

/* Opens a sealed frame from its sender's session into core->opened. True when it opened and its counter
 * is new under the key that opened it (then marked); false counted as bad_seal, replayed or no_session. */
static bool open_sealed(struct transport_core *core, const struct frame_header *h, const uint8_t *datagram,
	size_t length)
{
	int i = find_session(core, h->from);
	struct transport_receive_session *session = i < 0 ? NULL : receive_session(core, i);
	if (!session) {
		transport_core_count(core, TRANSPORT_COUNTER_drop_no_session, 1);
		return false;
	}
	struct {
		struct frame_cipher *cipher;
		struct frame_replay_window *window;
	} keys[2] = {{session->current, &session->current_window}, {session->previous, &session->previous_window}};
	for (int k = 0; k < 2; k++) {
		if (!keys[k].cipher || frame_open(keys[k].cipher, datagram, length, core->opened) != 0)
			continue;
		if (frame_replay_check(keys[k].window, h->counter) != FRAME_REPLAY_NEW) {
			transport_core_count(core, TRANSPORT_COUNTER_drop_replayed, 1);
			return false;
		}
		frame_replay_accept(keys[k].window, h->counter);
		return true;
	}
	transport_core_count(core, TRANSPORT_COUNTER_drop_bad_seal, 1);
	return false;
}

/* ---- peer TLS hooks ---- */

int transport_core_start_peer_tls(struct transport_core *core, struct transport *t, const char *host, uint16_t port,
	char *err, size_t errlen)
{
	/* config.peer_tls is still the caller's here (the open call has not returned); peer_tls_start copies
	 * what it needs and the pointer is dropped. */
	const struct peer_tls_settings *settings = core->config.peer_tls;
	core->config.peer_tls = NULL;
	if (!settings)
		return 0;
	return peer_tls_start(settings, t, core->config.member_id, core->config.cluster_id, host, port, &core->peer_tls,
		err, errlen);
}

void transport_core_peer_address(struct transport_core *core, uint64_t id, const char *host, uint16_t port)
{
	if (core->peer_tls)
		peer_tls_set_peer(core->peer_tls, id, host, port);
}

void transport_core_peer_removed(struct transport_core *core, uint64_t id)
{
	if (core->peer_tls)
		peer_tls_remove_peer(core->peer_tls, id);
}

bool transport_is_removed(const struct transport *t, uint64_t id)
{
	return core_is_removed(t->core, id);
}

struct transport_counters transport_counters(const struct transport *t)
{
	const struct transport_core *core = t->core;
	struct transport_counters out;
	memset(&out, 0, sizeof out);
	for (size_t i = 0; i < TRANSPORT_COUNTER_COUNT; i++) {
		uint64_t v = atomic_load_explicit(&core->counters[i], memory_order_relaxed);
		memcpy((uint64_t *)&out + i, &v, sizeof v);
	}
	for (size_t i = 0; i < FRAME_ERROR_COUNT; i++)
		out.parse_errors[i] = atomic_load_explicit(&core->parse_errors[i], memory_order_relaxed);
	return out;
}

size_t transport_counter_count(void)
{
	return TRANSPORT_COUNTER_COUNT;
}

const char *transport_counter_name(size_t i)
{
	return i < TRANSPORT_COUNTER_COUNT ? counter_names[i] : NULL;
}

const char *transport_counter_meaning(size_t i)
{
	return i < TRANSPORT_COUNTER_COUNT ? counter_meanings[i] : NULL;
}

uint64_t transport_counter_value(const struct transport_counters *c, size_t i)
{
	uint64_t v = 0;
	if (i < TRANSPORT_COUNTER_COUNT)
		memcpy(&v, (const uint64_t *)c + i, sizeof v);
	return v;
}

int transport_next_wakeup_ms(struct transport *t)
{
	uint64_t deadline = transport_core_deadline(t->core);
	if (deadline == UINT64_MAX)
		return -1;
	uint64_t now = transport_core_now(t->core);
	if (deadline <= now)
		return 0;
	uint64_t ms = (deadline - now + 999999) / 1000000;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* ---- receive side ---- */

void transport_core_begin(struct transport_core *core, transport_deliver_fn deliver, void *arg)
{
	core->deliver = deliver;
	core->deliver_arg = arg;
	core->delivered = 0;
}

static void set_counter(struct transport_core *core, enum transport_counter_index i, uint64_t v)
{
	atomic_store_explicit(&core->counters[i], v, memory_order_relaxed);
}

/* Reassembly and fault counts are kept by their modules; mirror them into the atomics. */
static void sync_counters(struct transport_core *core)
{
	struct reassembly_counters rc;
	reassembly_counters(core->reassembly, &rc);
	set_counter(core, TRANSPORT_COUNTER_drop_reassembly_timeout, rc.timeouts);
	set_counter(core, TRANSPORT_COUNTER_drop_reassembly_memory, rc.memory_drops);
	set_counter(core, TRANSPORT_COUNTER_duplicates, rc.duplicates);
	if (core->fault) {
		struct fault_counters fc;
		fault_counters(core->fault, &fc);
		set_counter(core, TRANSPORT_COUNTER_fault_dropped, fc.dropped + fc.overflow);
		set_counter(core, TRANSPORT_COUNTER_fault_duplicated, fc.duplicated);
		set_counter(core, TRANSPORT_COUNTER_fault_reordered, fc.reordered);
	}
}

static void process(struct transport_core *core, const uint8_t *datagram, size_t length, uint64_t now_ns)
{
	struct frame_header h;
	const uint8_t *payload;
	enum frame_error error = frame_parse(datagram, length, core->config.max_message, &h, &payload);
	if (error != FRAME_OK) {
		atomic_store_explicit(&core->parse_errors[error],
			atomic_load_explicit(&core->parse_errors[error], memory_order_relaxed) + 1,
			memory_order_relaxed);
		transport_core_count(core, error == FRAME_ERR_CRC ? TRANSPORT_COUNTER_drop_bad_crc :
			TRANSPORT_COUNTER_drop_malformed, 1);
		return;
	}
	/* Sealed or not must match what this transport does; a sealed frame opens before anything else
	 * looks at it, for the reasons the MAC below is checked first. */
	if (core->sealed != (h.flags == FRAME_FLAG_SEALED)) {
		transport_core_count(core, TRANSPORT_COUNTER_drop_bad_seal, 1);
		return;
	}
	if (core->sealed) {
		if (!open_sealed(core, &h, datagram, length))
			return;
		payload = core->opened;
	}
	/* With a key, nothing else looks at a frame before its MAC is checked: not the filters (a forged
	 * frame must not trigger on_removed_member) and not reassembly (a forged fragment must not take
	 * memory or the place of a genuine one). */
	if (core->receive_mac && !frame_mac_verify(core->receive_mac, datagram, length)) {
		transport_core_count(core, TRANSPORT_COUNTER_drop_bad_mac, 1);
		return;
	}
	/* Join mode (member and cluster id 0): a member starting with --initial-cluster-state existing does
	 * not know its ids yet and takes the answers to its query, whatever they say. A member that knows
	 * its ids also takes such a query (cluster 0, to 0); the node answers nothing else from it. */
	bool joining = core->config.member_id == 0;
	bool join_query = h.cluster_id == 0 && h.to == 0;
	if (!joining && !join_query && h.cluster_id != core->config.cluster_id) {
		transport_core_count(core, TRANSPORT_COUNTER_drop_unknown_cluster, 1);
		return;
	}
	if (!joining && !join_query && h.to != core->config.member_id) {
		transport_core_count(core, TRANSPORT_COUNTER_drop_not_for_us, 1);
		return;
	}
	if (core_is_removed(core, h.from)) {
		transport_core_count(core, TRANSPORT_COUNTER_drop_removed_member, 1);
		/* The node may tell it so (etcd answers a removed member's stream with 410 Gone). */
		if (core->config.on_removed_member)
			core->config.on_removed_member(core->config.on_removed_member_arg, h.from);
		return;
	}
	struct reassembly_message m;
	if (reassembly_add(core->reassembly, &h, payload, now_ns, &m) != REASSEMBLY_COMPLETE)
		return;
	transport_core_count(core, TRANSPORT_COUNTER_messages_in, 1);
	core->delivered++;
	if (core->deliver) {
		struct transport_message message = {
			.from = m.from, .message_id = m.message_id, .data = m.data, .length = m.length,
		};
		core->deliver(core->deliver_arg, &message);
	}
}

struct fault_emit_context {
	struct transport_core *core;
	uint64_t now_ns;
};

static void fault_emit(void *arg, const uint8_t *frame, size_t length)
{
	struct fault_emit_context *c = arg;
	process(c->core, frame, length, c->now_ns);
}

void transport_core_receive(struct transport_core *core, const uint8_t *datagram, size_t length,
	uint64_t now_ns)
{
	transport_core_count(core, TRANSPORT_COUNTER_packets_in, 1);
	transport_core_count(core, TRANSPORT_COUNTER_bytes_in, length);
	if (core->fault)
		fault_input(core->fault, datagram, length, now_ns);
	else
		process(core, datagram, length, now_ns);
}

void transport_core_tick(struct transport_core *core, uint64_t now_ns)
{
	if (core->fault) {
		struct fault_emit_context c = {.core = core, .now_ns = now_ns};
		fault_output(core->fault, now_ns, fault_emit, &c);
	}
	reassembly_expire(core->reassembly, now_ns);
	sync_counters(core);
}

uint64_t transport_core_deadline(const struct transport_core *core)
{
	return core->fault ? fault_next_release(core->fault) : UINT64_MAX;
}

int transport_core_end(struct transport_core *core)
{
	core->deliver = NULL;
	core->deliver_arg = NULL;
	return core->delivered;
}

/* ---- send side ---- */

size_t transport_core_encode(struct transport_core *core, uint64_t peer, const struct frame_address *address,
	const uint8_t *message, size_t message_length, uint16_t count, uint16_t index, uint8_t *out,
	size_t out_size)
{
	size_t size = frame_encode(address, message, message_length, count, index, out, out_size);
	if (size && core->sealed) {
		int i = find_session(core, peer);
		struct transport_send_session *session = i < 0 ? NULL : send_session(core, i);
		if (!session || frame_seal(session->cipher, ++session->counter, out, size) != 0)
			return 0;
		atomic_store_explicit(&core->sessions[i].frames_sent, session->counter, memory_order_relaxed);
		return size;
	}
	if (size && core->send_mac && frame_mac_seal(core->send_mac, out, size) != 0)
		return 0;
	return size;
}

int transport_core_prepare(struct transport_core *core, uint64_t to, bool has_address, size_t length,
	struct frame_address *address, uint16_t *count, char *err, size_t errlen)
{
	if (!has_address) {
		transport_core_count(core, TRANSPORT_COUNTER_drop_unknown_peer, 1);
		return transport_error(err, errlen, -EHOSTUNREACH, "send to member %llx: no peer address",
			(unsigned long long)to);
	}
	if (core->sealed) {
		int i = find_session(core, to);
		if (i < 0 || send_session(core, i) == NULL) {
			transport_core_count(core, TRANSPORT_COUNTER_unsent_no_session, 1);
			return transport_error(err, errlen, -ENOTCONN, "send to member %llx: no peer TLS session with it yet",
				(unsigned long long)to);
		}
	}
	if (length > core->config.max_message)
		return transport_error(err, errlen, -EMSGSIZE,
			"send to member %llx: message of %zu bytes over the maximum of %zu",
			(unsigned long long)to, length, core->config.max_message);
	size_t n = frame_count(length, core->config.max_datagram);
	if (n == 0)
		return transport_error(err, errlen, -EMSGSIZE,
			"send to member %llx: message of %zu bytes needs more than %u frames of %zu bytes",
			(unsigned long long)to, length, FRAME_MAX_FRAGMENTS, core->config.max_datagram);
	address->cluster_id = core->config.cluster_id;
	address->from = core->config.member_id;
	/* In join mode peers are known by address only: the frame goes to member 0 of cluster 0. */
	address->to = core->config.member_id == 0 ? 0 : to;
	address->message_id = core->next_message_id++;
	*count = (uint16_t)n;
	transport_core_count(core, TRANSPORT_COUNTER_messages_out, 1);
	return 0;
}
