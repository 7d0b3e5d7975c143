/* tests/dataplane/test_mac.c: authenticated peer frames (frame_mac.h, --peer-frame-key-file): the MAC matches
 * an independent computation (Python's hashlib, values below), key file errors and their messages, every
 * flipped bit of a sealed frame caught, and through the memory and udp transports: keyed members talk
 * normally, frames without a MAC, with another key or with a flipped bit (CRC fixed up, as a forger
 * would) are dropped and counted in drop_bad_mac before reassembly, and forged fragments do not spoil a
 * genuine message. */
#include "frame_mac.h"
#include "helpers.h"
#include "memory.h"
#include "udp.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport_core.h"

#define CLUSTER 0xc1c1c1c1ull

static char directory[] = "/tmp/quorumd-test-mac-XXXXXX";
static char key_a[256], key_b[256], key_a_copy[256];

static void write_file(const char *path, const void *bytes, size_t length)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL, "%s", path);
	CHECK_EQ(fwrite(bytes, 1, length, f), length);
	CHECK(fclose(f) == 0);
}

static void make_key_files(void)
{
	CHECK(mkdtemp(directory) != NULL);
	snprintf(key_a, sizeof key_a, "%s/a.key", directory);
	snprintf(key_b, sizeof key_b, "%s/b.key", directory);
	snprintf(key_a_copy, sizeof key_a_copy, "%s/a-copy.key", directory);
	write_file(key_a, "quorumd test key file: 32 bytes!", 32);
	write_file(key_a_copy, "quorumd test key file: 32 bytes!", 32);
	write_file(key_b, "quorumd test key file: 32 bytes?", 32);
}

static void remove_key_files(void)
{
	char path[300];
	const char *names[] = {"a.key", "b.key", "a-copy.key", "empty.key", "short.key", "sixteen.key"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", directory, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof path, "%s/subdirectory", directory);
	rmdir(path);
	rmdir(directory);
}

static void hex(const char *text, uint8_t *out, size_t length)
{
	for (size_t i = 0; i < length; i++) {
		unsigned v;
		int scanned = sscanf(text + 2 * i, "%2x", &v);
		CHECK(scanned == 1);
		out[i] = (uint8_t)v;
	}
}

static struct frame_mac *mac_for(const char *path)
{
	uint8_t key[FRAME_MAC_KEY_SIZE];
	char err[256] = "";
	CHECK_OK(frame_mac_load_key_file(path, key, err, sizeof err), err);
	struct frame_mac *mac = NULL;
	CHECK_OK(frame_mac_create(key, &mac), "frame_mac_create");
	return mac;
}

/* The values come from Python, so the definition in frame_mac.h is what the code computes:
 *   key = hashlib.blake2b(b"quorumd test key file: 32 bytes!").digest()
 *   hashlib.blake2b(header_with_crc_and_mac_zeroed + b"hello, raft", digest_size=16, key=key,
 *                   person=b"quorumd frame v1").hexdigest() */
static void test_known_answer(void)
{
	uint8_t key[FRAME_MAC_KEY_SIZE], expected_key[FRAME_MAC_KEY_SIZE];
	char err[256];
	CHECK_OK(frame_mac_load_key_file(key_a, key, err, sizeof err), err);
	hex("19eddb1eda30d77ad67a11da1c8b012d3e8366082158623070d531a36d988c0f"
	    "c70336c995ae69f67969f2af5cb09d6f4d3c811037516168ae8995068e3af5cd", expected_key, sizeof expected_key);
	CHECK(memcmp(key, expected_key, sizeof key) == 0, "key derivation differs from BLAKE2b-512 of the file");
	struct frame_mac *mac = NULL;
	CHECK_OK(frame_mac_create(key, &mac), "create");
	const struct frame_address address = {.cluster_id = 0x1122334455667788ull, .from = 1, .to = 2, .message_id = 42};
	uint8_t frame[128];
	size_t size = frame_encode(&address, (const uint8_t *)"hello, raft", 11, 1, 0, frame, sizeof frame);
	CHECK_EQ(size, FRAME_HEADER_SIZE + 11);
	CHECK_OK(frame_mac_seal(mac, frame, size), "seal");
	uint8_t expected_mac[FRAME_MAC_SIZE];
	hex("7857d6daca799650d19a1616e8f6bc20", expected_mac, sizeof expected_mac);
	CHECK(memcmp(frame + FRAME_MAC_OFFSET, expected_mac, FRAME_MAC_SIZE) == 0, "MAC differs from the reference");
	/* The CRC was recomputed over the MAC: the frame still parses. */
	struct frame_header h;
	const uint8_t *payload;
	CHECK_EQ(frame_parse(frame, size, 1000, &h, &payload), FRAME_OK);
	CHECK(frame_mac_verify(mac, frame, size));
	/* Reused context: the same answer every time (re-initialised from the stored key). */
	for (int i = 0; i < 3; i++) {
		uint8_t again[FRAME_MAC_SIZE];
		CHECK_OK(frame_mac_compute(mac, frame, size, again), "compute");
		CHECK(memcmp(again, expected_mac, FRAME_MAC_SIZE) == 0);
	}
	frame_mac_destroy(mac);
}

static void expect_key_error(const char *path, int code, const char *needle)
{
	uint8_t key[FRAME_MAC_KEY_SIZE];
	char err[512] = "";
	int rv = frame_mac_load_key_file(path, key, err, sizeof err);
	CHECK(rv == code, "%s: got %d (%s), want %d", path, rv, err, code);
	CHECK(strstr(err, path) != NULL, "message does not name the file: %s", err);
	CHECK(strstr(err, needle) != NULL, "message \"%s\" lacks \"%s\"", err, needle);
	fprintf(stderr, "   %s\n", err);
	/* The transports refuse to open with it, passing the same message on. */
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = CLUSTER;
	c.member_id = 9;
	c.frame_key_file = path;
	struct memory_network *net;
	CHECK_OK(memory_network_create(&net), "network");
	struct transport *t = NULL;
	char open_err[512] = "";
	CHECK(memory_transport_open(net, &c, &t, open_err, sizeof open_err) == code, "%s", open_err);
	CHECK(strcmp(open_err, err) == 0, "%s", open_err);
	CHECK(memory_transport_open(net, &c, &t, NULL, 0) == code, "no error buffer");
	CHECK_EQ(frame_mac_load_key_file(path, key, NULL, 100), code);
	CHECK(udp_transport_open(&c, "127.0.0.1", 0, &t, open_err, sizeof open_err) == code, "%s", open_err);
	CHECK(strstr(open_err, path) != NULL, "%s", open_err);
	memory_network_destroy(net);
}

static void test_key_file_errors(void)
{
	char path[300];
	snprintf(path, sizeof path, "%s/missing.key", directory);
	expect_key_error(path, -ENOENT, "cannot read: No such file or directory");
	snprintf(path, sizeof path, "%s/empty.key", directory);
	write_file(path, "", 0);
	expect_key_error(path, -EINVAL, "empty");
	snprintf(path, sizeof path, "%s/short.key", directory);
	write_file(path, "fifteen bytes!!", 15);
	expect_key_error(path, -EINVAL, "15 bytes, need at least 16");
	snprintf(path, sizeof path, "%s/subdirectory", directory);
	CHECK(mkdir(path, 0700) == 0);
	expect_key_error(path, -EISDIR, "cannot read: Is a directory");
	/* 16 bytes is enough; so is the same content under another name (the key is the content's). */
	snprintf(path, sizeof path, "%s/sixteen.key", directory);
	write_file(path, "sixteen bytes!!!", 16);
	uint8_t key[FRAME_MAC_KEY_SIZE], a[FRAME_MAC_KEY_SIZE], a_copy[FRAME_MAC_KEY_SIZE];
	char err[512];
	CHECK_OK(frame_mac_load_key_file(path, key, err, sizeof err), err);
	CHECK_OK(frame_mac_load_key_file(key_a, a, err, sizeof err), err);
	CHECK_OK(frame_mac_load_key_file(key_a_copy, a_copy, err, sizeof err), err);
	CHECK(memcmp(a, a_copy, sizeof a) == 0);
	CHECK(memcmp(a, key, sizeof a) != 0);
}

/* Every single-bit change of a sealed frame, header, payload or MAC, fails verification even with the
 * CRC fixed up (what a forger does); without the fix-up frame_parse refuses the frame. */
static void test_every_bit(void)
{
	struct frame_mac *mac = mac_for(key_a);
	const struct frame_address address = {.cluster_id = CLUSTER, .from = 3, .to = 4, .message_id = 77};
	uint8_t message[40], frame[256], flipped[256];
	test_fill(message, sizeof message, 5);
	size_t size = frame_encode(&address, message, sizeof message, 1, 0, frame, sizeof frame);
	CHECK_OK(frame_mac_seal(mac, frame, size), "seal");
	CHECK(frame_mac_verify(mac, frame, size));
	for (size_t bit = 0; bit < size * 8; bit++) {
		size_t byte = bit / 8;
		if (byte >= FRAME_CRC_OFFSET && byte < FRAME_CRC_OFFSET + 4)
			continue; /* the CRC field is not covered by the MAC; the CRC check catches it */
		memcpy(flipped, frame, size);
		flipped[byte] ^= (uint8_t)(1u << (bit % 8));
		struct frame_header h;
		const uint8_t *payload;
		/* CRC, or an earlier check (magic, version, length); or the flag that makes it a sealed frame,
		 * which has no CRC and which a transport with a MAC key drops as bad_seal */
		CHECK(frame_parse(flipped, size, 1000, &h, &payload) != FRAME_OK || h.flags == FRAME_FLAG_SEALED);
		frame_write_crc(flipped, frame_compute_crc(flipped, size));
		CHECK(!frame_mac_verify(mac, flipped, size), "bit %zu flipped (byte %zu) still verifies", bit, byte);
	}
	/* A zero MAC (what a member without a key sends) and a truncated frame fail too. */
	memcpy(flipped, frame, size);
	memset(flipped + FRAME_MAC_OFFSET, 0, FRAME_MAC_SIZE);
	CHECK(!frame_mac_verify(mac, flipped, size));
	CHECK(!frame_mac_verify(mac, frame, FRAME_HEADER_SIZE - 1));
	frame_mac_destroy(mac);
}

/* ---- through the transports ---- */

struct inbox {
	size_t count;
	uint8_t last[1u << 17];
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

static struct memory_network *net;

static struct transport *open_member(uint64_t id, const char *key_file)
{
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = CLUSTER;
	c.member_id = id;
	c.first_message_id = id * 1000000;
	c.frame_key_file = key_file;
	struct transport *t = NULL;
	char err[256];
	CHECK_OK(memory_transport_open(net, &c, &t, err, sizeof err), err);
	CHECK(transport_authenticated(t) == (key_file && *key_file));
	return t;
}

static void send_one(struct transport *from, uint64_t to, const uint8_t *data, size_t length)
{
	char err[256];
	CHECK_OK(transport_add_peer(from, to, "ignored", 1, err, sizeof err), err);
	CHECK_OK(transport_send(from, to, data, length, err, sizeof err), err);
	CHECK_OK(transport_flush(from, err, sizeof err), err);
}

static int poll_now(struct transport *t, struct inbox *in)
{
	char err[256];
	int n = transport_poll(t, 0, deliver, in, err, sizeof err);
	CHECK(n >= 0, "poll: %s", err);
	return n;
}

static void test_keyed_members_talk(void)
{
	CHECK_OK(memory_network_create(&net), "network");
	/* Same content, different files: the key is the content's. */
	struct transport *a = open_member(1, key_a), *b = open_member(2, key_a_copy);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	static uint8_t message[100000];
	test_fill(message, sizeof message, 11);
	for (size_t length = 0; length <= sizeof message; length = length ? length * 4 : 1) {
		send_one(a, 2, message, length);
		CHECK_EQ(poll_now(b, &in), 1);
		CHECK_EQ(in.last_length, length);
		CHECK(memcmp(in.last, message, length) == 0);
		send_one(b, 1, message, length);
		CHECK_EQ(poll_now(a, &in), 1);
	}
	struct transport_counters cb = transport_counters(b);
	CHECK_EQ(cb.drop_bad_mac + cb.drop_bad_crc + cb.drop_malformed, 0);
	CHECK(cb.packets_in > 60, "the big messages came in many frames");
	transport_close(a);
	transport_close(b);
	memory_network_destroy(net);
}

/* A keyed receiver drops frames of a keyless sender, of a sender with another key, and forged ones; a
 * keyless receiver takes a keyed sender's frames (the mac field is not checked without a key). */
static void test_keyed_receiver_drops(void)
{
	CHECK_OK(memory_network_create(&net), "network");
	struct transport *keyed = open_member(1, key_a), *keyless = open_member(2, NULL),
		*other = open_member(3, key_b), *peer = open_member(4, key_a);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	const uint8_t message[] = "MsgVote term 1000";
	send_one(keyless, 1, message, sizeof message);
	send_one(other, 1, message, sizeof message);
	CHECK_EQ(poll_now(keyed, &in), 0);
	struct transport_counters c = transport_counters(keyed);
	CHECK_EQ(c.drop_bad_mac, 2);
	CHECK_EQ(c.drop_bad_crc + c.drop_malformed + c.messages_in, 0);
	send_one(keyed, 2, message, sizeof message);
	CHECK_EQ(poll_now(keyless, &in), 1);
	CHECK(memcmp(in.last, message, sizeof message) == 0);
	/* The genuine member still gets through. */
	send_one(peer, 1, message, sizeof message);
	CHECK_EQ(poll_now(keyed, &in), 1);

	/* Injected frames, as an outsider on the segment builds them: valid CRC, no or a wrong MAC. */
	struct frame_mac *right = mac_for(key_a), *wrong = mac_for(key_b);
	const struct frame_address forged = {.cluster_id = CLUSTER, .from = 4, .to = 1, .message_id = 999};
	uint8_t frame[256];
	size_t size = frame_encode(&forged, message, sizeof message, 1, 0, frame, sizeof frame);
	CHECK_OK(memory_network_inject(net, 1, frame, size), "inject");                 /* no MAC */
	CHECK_OK(frame_mac_seal(wrong, frame, size), "seal");
	CHECK_OK(memory_network_inject(net, 1, frame, size), "inject");                 /* another key */
	CHECK_OK(frame_mac_seal(right, frame, size), "seal");
	frame[FRAME_HEADER_SIZE] ^= 1;                                                  /* payload bit */
	frame_write_crc(frame, frame_compute_crc(frame, size));
	CHECK_OK(memory_network_inject(net, 1, frame, size), "inject");
	frame[FRAME_HEADER_SIZE] ^= 1;
	frame[40] ^= 1;                                                                 /* message id bit */
	frame_write_crc(frame, frame_compute_crc(frame, size));
	CHECK_OK(memory_network_inject(net, 1, frame, size), "inject");
	frame[40] ^= 1;
	frame[FRAME_MAC_OFFSET + 15] ^= 0x80;                                           /* MAC bit */
	frame_write_crc(frame, frame_compute_crc(frame, size));
	CHECK_OK(memory_network_inject(net, 1, frame, size), "inject");
	frame[FRAME_MAC_OFFSET + 15] ^= 0x80;
	frame_write_crc(frame, frame_compute_crc(frame, size));                         /* as sealed */
	frame[FRAME_HEADER_SIZE + 3] ^= 4;                                              /* no CRC fix-up */
	CHECK_OK(memory_network_inject(net, 1, frame, size), "inject");
	CHECK_EQ(poll_now(keyed, &in), 0);
	c = transport_counters(keyed);
	CHECK_EQ(c.drop_bad_mac, 2 + 5);
	CHECK_EQ(c.drop_bad_crc, 1);
	/* The frame as sealed with the right key is taken: the forgeries above differ only in the MAC. */
	frame[FRAME_HEADER_SIZE + 3] ^= 4;
	CHECK_OK(memory_network_inject(net, 1, frame, size), "inject");
	CHECK_EQ(poll_now(keyed, &in), 1);
	CHECK(memcmp(in.last, message, sizeof message) == 0);
	/* A forged frame in a removed member's name is dropped for its MAC before the filters, so it cannot
	 * make the node answer "removed" on the removed member's behalf. */
	CHECK_OK(transport_mark_removed(keyed, 5), "mark removed");
	const struct frame_address from_removed = {.cluster_id = CLUSTER, .from = 5, .to = 1, .message_id = 1};
	size = frame_encode(&from_removed, message, sizeof message, 1, 0, frame, sizeof frame);
	CHECK_OK(memory_network_inject(net, 1, frame, size), "inject");
	CHECK_EQ(poll_now(keyed, &in), 0);
	c = transport_counters(keyed);
	CHECK_EQ(c.drop_bad_mac, 2 + 5 + 1);
	CHECK_EQ(c.drop_removed_member, 0);
	frame_mac_destroy(right);
	frame_mac_destroy(wrong);
	transport_close(keyed);
	transport_close(keyless);
	transport_close(other);
	transport_close(peer);
	memory_network_destroy(net);
}

/* Each fragment is checked on its own before reassembly: forged fragments with the genuine message's
 * sender and id, injected ahead of it, neither complete nor spoil it. */
static void test_forged_fragments(void)
{
	CHECK_OK(memory_network_create(&net), "network");
	struct transport *a = open_member(1, key_a), *b = open_member(2, key_a);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	static uint8_t message[5000], junk[5000], frame[FRAME_DEFAULT_DATAGRAM];
	test_fill(message, sizeof message, 21);
	test_fill(junk, sizeof junk, 22);
	/* The id a's next message gets (first_message_id = 1000000, none sent yet). */
	const struct frame_address address = {.cluster_id = CLUSTER, .from = 1, .to = 2, .message_id = 1000000};
	size_t count = frame_count(sizeof junk, FRAME_DEFAULT_DATAGRAM);
	CHECK_EQ(count, 4);
	for (size_t i = 0; i < count; i++) {
		size_t size = frame_encode(&address, junk, sizeof junk, (uint16_t)count, (uint16_t)i, frame,
			sizeof frame);
		CHECK_OK(memory_network_inject(net, 2, frame, size), "inject");
	}
	send_one(a, 2, message, sizeof message);
	CHECK_EQ(poll_now(b, &in), 1);
	CHECK_EQ(in.last_length, sizeof message);
	CHECK(memcmp(in.last, message, sizeof message) == 0, "a forged fragment got into the message");
	struct transport_counters c = transport_counters(b);
	CHECK_EQ(c.drop_bad_mac, count);
	CHECK_EQ(c.duplicates, 0);
	transport_close(a);
	transport_close(b);
	memory_network_destroy(net);
}

/* Members with different keys hear nothing from each other; every frame is counted. */
static void test_different_keys(void)
{
	CHECK_OK(memory_network_create(&net), "network");
	struct transport *a = open_member(1, key_a), *b = open_member(2, key_b);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	static uint8_t message[10000];
	for (int i = 0; i < 10; i++) {
		send_one(a, 2, message, sizeof message);
		send_one(b, 1, message, 100);
	}
	CHECK_EQ(poll_now(a, &in) + poll_now(b, &in), 0);
	CHECK_EQ(transport_counters(b).drop_bad_mac, 10 * frame_count(sizeof message, FRAME_DEFAULT_DATAGRAM));
	CHECK_EQ(transport_counters(a).drop_bad_mac, 10);
	transport_close(a);
	transport_close(b);
	memory_network_destroy(net);
}

/* ---- udp on loopback ---- */

static struct transport *open_udp(uint64_t id, const char *key_file)
{
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = CLUSTER;
	c.member_id = id;
	c.frame_key_file = key_file;
	c.socket_buffer = 1u << 20;
	struct transport *t = NULL;
	char err[256];
	CHECK_OK(udp_transport_open(&c, "127.0.0.1", 0, &t, err, sizeof err), err);
	return t;
}

static void udp_link(struct transport *from, uint64_t id, struct transport *to)
{
	char err[256];
	uint16_t port;
	CHECK_OK(transport_local_address(to, NULL, 0, &port), "address");
	CHECK_OK(transport_add_peer(from, id, "127.0.0.1", port, err, sizeof err), err);
}

/* Polls until count messages arrived or a second passed; returns how many did. */
static size_t udp_receive(struct transport *t, struct inbox *in, size_t count)
{
	size_t before = in->count;
	uint64_t deadline = test_now_ns() + 1000000000ull;
	char err[256];
	while (in->count - before < count && test_now_ns() < deadline)
		CHECK(transport_poll(t, 50, deliver, in, err, sizeof err) >= 0, "%s", err);
	return in->count - before;
}

static void test_udp(void)
{
	struct transport *a = open_udp(1, key_a), *b = open_udp(2, key_a_copy), *keyless = open_udp(3, NULL),
		*other = open_udp(4, key_b);
	udp_link(a, 2, b);
	udp_link(b, 1, a);
	udp_link(keyless, 2, b);
	udp_link(other, 2, b);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	static uint8_t message[60000];
	test_fill(message, sizeof message, 31);
	char err[256];
	for (int i = 0; i < 20; i++)
		CHECK_OK(transport_send(a, 2, message, (size_t)i * 3000, err, sizeof err), err);
	CHECK_OK(transport_flush(a, err, sizeof err), err);
	CHECK_EQ(udp_receive(b, &in, 20), 20);
	CHECK_EQ(in.last_length, 19 * 3000);
	CHECK(memcmp(in.last, message, in.last_length) == 0);
	CHECK_OK(transport_send(b, 1, message, 10, err, sizeof err), err);
	CHECK_OK(transport_flush(b, err, sizeof err), err);
	CHECK_EQ(udp_receive(a, &in, 1), 1);
	/* Keyless and other-key senders: nothing delivered, every frame counted. */
	uint64_t bad_before = transport_counters(b).drop_bad_mac;
	CHECK_OK(transport_send(keyless, 2, message, 10, err, sizeof err), err);
	CHECK_OK(transport_flush(keyless, err, sizeof err), err);
	CHECK_OK(transport_send(other, 2, message, 3000, err, sizeof err), err);
	CHECK_OK(transport_flush(other, err, sizeof err), err);
	CHECK_EQ(udp_receive(b, &in, 1), 0);
	CHECK_EQ(transport_counters(b).drop_bad_mac - bad_before, 1 + 3);
	transport_close(a);
	transport_close(b);
	transport_close(keyless);
	transport_close(other);
}

int main(void)
{
	test_name = "mac";
	make_key_files();
	RUN(test_known_answer);
	RUN(test_key_file_errors);
	RUN(test_every_bit);
	RUN(test_keyed_members_talk);
	RUN(test_keyed_receiver_drops);
	RUN(test_forged_fragments);
	RUN(test_different_keys);
	RUN(test_udp);
	remove_key_files();
	fprintf(stderr, "ok\n");
	return 0;
}
