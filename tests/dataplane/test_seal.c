/* tests/dataplane/test_seal.c: sealed peer frames (frame_seal.h) and their path through a transport with
 * fixed session keys (transport_install_session, what peer_tls.c does after a handshake): a sealed frame
 * opens only under its key and only once; altered, forged, replayed, too old, unsealed and session-less
 * frames are dropped and each counted; a re-key keeps frames in flight under the previous key; nothing
 * goes to a member without a session; the payload on the wire is not the plaintext. */
#include <errno.h>
#include <string.h>

#include "frame.h"
#include "frame_seal.h"
#include "helpers.h"
#include "memory.h"
#include "transport.h"

#define CLUSTER 0xc1u

static void key_of(uint8_t key[FRAME_SEAL_KEY_SIZE], uint8_t seed)
{
	for (unsigned i = 0; i < FRAME_SEAL_KEY_SIZE; i++)
		key[i] = (uint8_t)(seed * 31u + i);
}

/* A sealed single-fragment frame from -> to carrying message, sealed with key at counter. */
static size_t sealed_frame(uint64_t from, uint64_t to, uint64_t message_id, const uint8_t *message, size_t length,
	uint8_t key_seed, uint64_t counter, uint8_t *out, size_t out_size)
{
	const struct frame_address address = {.cluster_id = CLUSTER, .from = from, .to = to, .message_id = message_id};
	size_t size = frame_encode(&address, message, length, 1, 0, out, out_size);
	CHECK(size > 0);
	uint8_t key[FRAME_SEAL_KEY_SIZE];
	key_of(key, key_seed);
	struct frame_cipher *cipher;
	CHECK_OK(frame_cipher_create(key, true, &cipher), "cipher");
	CHECK_OK(frame_seal(cipher, counter, out, size), "seal");
	frame_cipher_destroy(cipher);
	return size;
}

static void test_seal_open(void)
{
	uint8_t message[300], frame[512], plain[512];
	test_fill(message, sizeof message, 3);
	size_t size = sealed_frame(1, 2, 9, message, sizeof message, 7, 5, frame, sizeof frame);
	struct frame_header h;
	const uint8_t *payload;
	CHECK_EQ(frame_parse(frame, size, 1u << 20, &h, &payload), FRAME_OK);
	CHECK_EQ(h.flags, FRAME_FLAG_SEALED);
	CHECK_EQ(h.counter, 5);
	CHECK_EQ(frame_seal_counter(frame), 5);
	/* The payload on the wire is not the message. */
	CHECK(memcmp(frame + FRAME_HEADER_SIZE, message, sizeof message) != 0);

	uint8_t key[FRAME_SEAL_KEY_SIZE], other[FRAME_SEAL_KEY_SIZE];
	key_of(key, 7);
	key_of(other, 8);
	struct frame_cipher *opener, *wrong, *sealer;
	CHECK_OK(frame_cipher_create(key, false, &opener), "opener");
	CHECK_OK(frame_cipher_create(other, false, &wrong), "wrong");
	CHECK_OK(frame_cipher_create(key, true, &sealer), "sealer");
	CHECK_EQ(frame_open(opener, frame, size, plain), 0);
	CHECK(memcmp(plain, message, sizeof message) == 0);
	CHECK_EQ(frame_open(wrong, frame, size, plain), -EBADMSG);
	CHECK_EQ(frame_open(sealer, frame, size, plain), -EINVAL);
	CHECK_EQ(frame_seal(opener, 1, frame, size), -EINVAL);
	CHECK_EQ(frame_seal(sealer, 0, frame, size), -EINVAL);

	/* Any flipped bit, header (counter included) or payload or tag, fails to open. */
	uint8_t altered[512];
	for (size_t bit = 0; bit < size * 8; bit++) {
		memcpy(altered, frame, size);
		altered[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		CHECK(frame_open(opener, altered, size, plain) == -EBADMSG, "bit %zu flipped still opens", bit);
	}
	/* Truncated, and an unsealed frame. */
	CHECK_EQ(frame_open(opener, frame, size - 1, plain), -EBADMSG);
	const struct frame_address address = {.cluster_id = CLUSTER, .from = 1, .to = 2, .message_id = 9};
	size_t plain_size = frame_encode(&address, message, sizeof message, 1, 0, altered, sizeof altered);
	CHECK_EQ(frame_open(opener, altered, plain_size, plain), -EBADMSG);
	/* An empty payload seals and opens too (a zero-length message). */
	size = sealed_frame(1, 2, 10, message, 0, 7, 6, frame, sizeof frame);
	CHECK_EQ(size, FRAME_HEADER_SIZE);
	CHECK_EQ(frame_open(opener, frame, size, plain), 0);
	frame_cipher_destroy(opener);
	frame_cipher_destroy(wrong);
	frame_cipher_destroy(sealer);
}

static void test_replay_window(void)
{
	struct frame_replay_window w;
	frame_replay_init(&w);
	CHECK_EQ(frame_replay_check(&w, 0), FRAME_REPLAY_TOO_OLD);
	CHECK_EQ(frame_replay_check(&w, 1), FRAME_REPLAY_NEW);
	frame_replay_accept(&w, 1);
	CHECK_EQ(frame_replay_check(&w, 1), FRAME_REPLAY_SEEN);
	/* Out of order inside the window: each once. */
	frame_replay_accept(&w, 10);
	CHECK_EQ(frame_replay_check(&w, 5), FRAME_REPLAY_NEW);
	frame_replay_accept(&w, 5);
	CHECK_EQ(frame_replay_check(&w, 5), FRAME_REPLAY_SEEN);
	CHECK_EQ(frame_replay_check(&w, 10), FRAME_REPLAY_SEEN);
	/* The window's edge: highest - 1023 is inside, highest - 1024 below. */
	frame_replay_accept(&w, 5000);
	CHECK_EQ(frame_replay_check(&w, 5000 - (FRAME_SEAL_REPLAY_WINDOW - 1)), FRAME_REPLAY_NEW);
	CHECK_EQ(frame_replay_check(&w, 5000 - FRAME_SEAL_REPLAY_WINDOW), FRAME_REPLAY_TOO_OLD);
	CHECK_EQ(frame_replay_check(&w, 10), FRAME_REPLAY_TOO_OLD);
	/* A slide clears what the ring reuses: counters one ring apart are not confused. */
	for (uint64_t c = 5001; c < 5000 + 3 * FRAME_SEAL_REPLAY_WINDOW; c += 7) {
		CHECK_EQ(frame_replay_check(&w, c), FRAME_REPLAY_NEW);
		frame_replay_accept(&w, c);
		CHECK_EQ(frame_replay_check(&w, c), FRAME_REPLAY_SEEN);
		if (c > 5000 + 64 * FRAME_SEAL_WINDOW_WORDS)
			CHECK_EQ(frame_replay_check(&w, c - 1), FRAME_REPLAY_NEW);
	}
	/* Every counter of a dense run, in a shuffled order within the window, once. */
	frame_replay_init(&w);
	uint64_t state = 42;
	static uint8_t seen[4096];
	memset(seen, 0, sizeof seen);
	for (uint64_t base = 1; base < 4096 - 600; base += 500)
		for (int k = 0; k < 2000; k++) {
			uint64_t c = base + test_random(&state) % 600;
			enum frame_replay_verdict v = frame_replay_check(&w, c);
			if (v == FRAME_REPLAY_NEW) {
				CHECK(!seen[c], "counter %llu taken twice", (unsigned long long)c);
				seen[c] = 1;
				frame_replay_accept(&w, c);
			} else if (v == FRAME_REPLAY_SEEN) {
				CHECK(seen[c], "counter %llu called seen but never taken", (unsigned long long)c);
			}
		}
}

/* ---- through a transport ---- */

struct inbox {
	size_t count;
	uint8_t last[4096];
	size_t last_length;
};

static void deliver(void *arg, const struct transport_message *m)
{
	struct inbox *in = arg;
	in->count++;
	CHECK(m->length <= sizeof in->last);
	memcpy(in->last, m->data, m->length);
	in->last_length = m->length;
}

static struct transport *open_member(struct memory_network *net, uint64_t id, bool sealed)
{
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = CLUSTER;
	c.member_id = id;
	c.first_message_id = id * 1000000;
	c.sealed = sealed;
	struct transport *t = NULL;
	char err[256];
	CHECK_OK(memory_transport_open(net, &c, &t, err, sizeof err), err);
	CHECK(transport_sealed(t) == sealed);
	return t;
}

static int poll_now(struct transport *t, struct inbox *in)
{
	char err[256];
	int n = transport_poll(t, 0, deliver, in, err, sizeof err);
	CHECK(n >= 0, "poll: %s", err);
	return n;
}

static uint64_t counter(struct transport *t, const char *name)
{
	struct transport_counters c = transport_counters(t);
	for (size_t i = 0; i < transport_counter_count(); i++)
		if (strcmp(transport_counter_name(i), name) == 0)
			return transport_counter_value(&c, i);
	FAIL("no counter %s", name);
}

static void install(struct transport *t, uint64_t peer, uint8_t send_seed, uint8_t receive_seed)
{
	uint8_t send_key[FRAME_SEAL_KEY_SIZE], receive_key[FRAME_SEAL_KEY_SIZE];
	key_of(send_key, send_seed);
	key_of(receive_key, receive_seed);
	CHECK(transport_install_session(t, peer, send_key, receive_key) > 0);
}

static void inject(struct memory_network *net, uint64_t to, const uint8_t *frame, size_t size)
{
	CHECK_OK(memory_network_inject(net, to, frame, size), "inject");
}

static void test_transport(void)
{
	struct memory_network *net;
	CHECK_OK(memory_network_create(&net), "network");
	struct transport *a = open_member(net, 1, true), *b = open_member(net, 2, true);
	char err[256];
	CHECK_OK(transport_add_peer(a, 2, "ignored", 1, err, sizeof err), err);
	CHECK_OK(transport_add_peer(b, 1, "ignored", 1, err, sizeof err), err);
	static struct inbox in;
	uint8_t message[2000];
	test_fill(message, sizeof message, 5);

	/* No session yet: nothing is sent (counted), and an unsealed frame is refused. */
	CHECK_EQ(transport_send(a, 2, message, 100, err, sizeof err), -ENOTCONN);
	CHECK(strstr(err, "no peer TLS session") != NULL, "%s", err);
	CHECK_EQ(counter(a, "unsent_no_session"), 1);

	/* Keys for 1 -> 2 (seed 11) and 2 -> 1 (seed 12): messages of several fragments each way. */
	install(a, 2, 11, 12);
	install(b, 1, 12, 11);
	CHECK_EQ(counter(a, "sessions_installed"), 1);
	for (size_t length = 0; length <= sizeof message; length += 999) {
		CHECK_OK(transport_send(a, 2, message, length, err, sizeof err), err);
		CHECK_OK(transport_flush(a, err, sizeof err), err);
		CHECK_EQ(poll_now(b, &in), 1);
		CHECK_EQ(in.last_length, length);
		CHECK(memcmp(in.last, message, length) == 0);
		CHECK_OK(transport_send(b, 1, message, length, err, sizeof err), err);
		CHECK_OK(transport_flush(b, err, sizeof err), err);
		CHECK_EQ(poll_now(a, &in), 1);
	}
	CHECK(transport_session_frames_sent(a, 2) >= 3);

	/* Crafted frames under the 1 -> 2 key, counters far above what a sent. */
	uint8_t frame[512], altered[512];
	size_t size = sealed_frame(1, 2, 777, message, 200, 11, 100000, frame, sizeof frame);
	inject(net, 2, frame, size);
	CHECK_EQ(poll_now(b, &in), 1);
	/* The same frame again: replayed. The same message under a new counter: a duplicate message, which
	 * reassembly ignores, but the frame itself opens. */
	inject(net, 2, frame, size);
	CHECK_EQ(poll_now(b, &in), 0);
	CHECK_EQ(counter(b, "drop_replayed"), 1);
	/* An altered byte (payload, header, tag): bad seal. */
	size_t positions[] = {FRAME_HEADER_SIZE + 3, 30, FRAME_COUNTER_OFFSET, FRAME_MAC_OFFSET + 1};
	for (size_t k = 0; k < sizeof positions / sizeof positions[0]; k++) {
		memcpy(altered, frame, size);
		altered[positions[k]] ^= 0x10;
		inject(net, 2, altered, size);
		CHECK_EQ(poll_now(b, &in), 0);
	}
	/* Byte 30 is inside "from": that one is the frame of another member, who has no session. */
	CHECK_EQ(counter(b, "drop_no_session"), 1);
	CHECK_EQ(counter(b, "drop_bad_seal"), 3);
	/* A wrong key (2 -> 1's key used 1 -> 2, another session's key, a forger's key). */
	size = sealed_frame(1, 2, 778, message, 200, 12, 100001, frame, sizeof frame);
	inject(net, 2, frame, size);
	size = sealed_frame(1, 2, 779, message, 200, 99, 100002, frame, sizeof frame);
	inject(net, 2, frame, size);
	CHECK_EQ(poll_now(b, &in), 0);
	CHECK_EQ(counter(b, "drop_bad_seal"), 5);
	/* Out of the window: a genuine frame whose counter is 1024 or more below the highest opened. */
	size = sealed_frame(1, 2, 780, message, 200, 11, 100000 - FRAME_SEAL_REPLAY_WINDOW, frame, sizeof frame);
	inject(net, 2, frame, size);
	CHECK_EQ(poll_now(b, &in), 0);
	CHECK_EQ(counter(b, "drop_replayed"), 2);
	/* Inside the window, never seen: taken. */
	size = sealed_frame(1, 2, 781, message, 200, 11, 100000 - 5, frame, sizeof frame);
	inject(net, 2, frame, size);
	CHECK_EQ(poll_now(b, &in), 1);
	/* A plain (unsealed) frame with a valid CRC: bad seal. */
	const struct frame_address address = {.cluster_id = CLUSTER, .from = 1, .to = 2, .message_id = 782};
	size = frame_encode(&address, message, 200, 1, 0, frame, sizeof frame);
	inject(net, 2, frame, size);
	CHECK_EQ(poll_now(b, &in), 0);
	CHECK_EQ(counter(b, "drop_bad_seal"), 6);

	/* Re-key: b's receive key for 1 becomes seed 21. A frame still under the old key (in flight when the
	 * sender switched) opens; one under the new key opens; after a second re-key the oldest does not. */
	install(b, 1, 12, 21);
	size = sealed_frame(1, 2, 800, message, 200, 11, 200000, frame, sizeof frame);
	inject(net, 2, frame, size);
	size = sealed_frame(1, 2, 801, message, 200, 21, 1, frame, sizeof frame);
	inject(net, 2, frame, size);
	CHECK_EQ(poll_now(b, &in), 2);
	install(b, 1, 12, 22);
	size = sealed_frame(1, 2, 802, message, 200, 11, 200001, frame, sizeof frame);
	inject(net, 2, frame, size);
	CHECK_EQ(poll_now(b, &in), 0);
	CHECK_EQ(counter(b, "drop_bad_seal"), 7);

	/* A dropped session (the peer's connection closed): nothing in or out until the next install; a
	 * token of an older install does not drop a newer one. */
	transport_drop_session(b, 1, 1);
	size = sealed_frame(1, 2, 803, message, 200, 22, 1, frame, sizeof frame);
	inject(net, 2, frame, size);
	CHECK_EQ(poll_now(b, &in), 1);
	transport_drop_session(b, 1, 0);
	size = sealed_frame(1, 2, 804, message, 200, 22, 2, frame, sizeof frame);
	inject(net, 2, frame, size);
	CHECK_EQ(poll_now(b, &in), 0);
	CHECK_EQ(counter(b, "drop_no_session"), 2);
	CHECK_EQ(transport_send(b, 1, message, 10, err, sizeof err), -ENOTCONN);

	/* A transport that does not seal refuses sealed frames. */
	struct transport *plain = open_member(net, 3, false);
	size = sealed_frame(1, 3, 900, message, 200, 11, 1, frame, sizeof frame);
	inject(net, 3, frame, size);
	CHECK_EQ(poll_now(plain, &in), 0);
	CHECK_EQ(counter(plain, "drop_bad_seal"), 1);
	CHECK_EQ(transport_install_session(plain, 1, frame, frame), -EINVAL);

	transport_close(a);
	transport_close(b);
	transport_close(plain);
	memory_network_destroy(net);
}

/* Sealed and MAC-keyed are exclusive. */
static void test_exclusive(void)
{
	struct memory_network *net;
	CHECK_OK(memory_network_create(&net), "network");
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = CLUSTER;
	c.member_id = 1;
	c.sealed = true;
	c.frame_key_file = "/dev/null";
	struct transport *t = NULL;
	char err[256] = "";
	CHECK(memory_transport_open(net, &c, &t, err, sizeof err) < 0);
	CHECK(strstr(err, "exclusive") != NULL, "%s", err);
	memory_network_destroy(net);
}

int main(void)
{
	test_name = "seal";
	RUN(test_seal_open);
	RUN(test_replay_window);
	RUN(test_transport);
	RUN(test_exclusive);
	fprintf(stderr, "ok\n");
	return 0;
}
