/* tests/dataplane/test_memory.c: the shared transport machinery through the in-memory transport with a
 * virtual clock: delivery of small and 1 MiB messages, the filters (cluster, to, removed member), bad
 * frames counted by reason, reassembly timeout, the fault layer's delay on the virtual clock, and the
 * send-side errors. */
#include "memory.h"
#include "helpers.h"

#include <errno.h>

#include "transport_core.h"

#define MS 1000000ull
#define CLUSTER 0xc1c1c1c1ull

struct inbox {
	size_t count;
	uint64_t from[4096];
	uint64_t ids[4096];
	size_t lengths[4096];
	uint8_t *last;
	size_t last_length;
};

static void deliver(void *arg, const struct transport_message *m)
{
	struct inbox *in = arg;
	CHECK(in->count < 4096);
	in->from[in->count] = m->from;
	in->ids[in->count] = m->message_id;
	in->lengths[in->count] = m->length;
	in->count++;
	free(in->last);
	in->last = malloc(m->length ? m->length : 1);
	memcpy(in->last, m->data, m->length);
	in->last_length = m->length;
}

static struct memory_network *net;

static struct transport *open_member(uint64_t cluster, uint64_t id, struct fault_config *fault)
{
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = cluster;
	c.member_id = id;
	c.first_message_id = id * 1000000;
	c.reassembly_timeout_ms = 100;
	if (fault)
		c.fault = *fault;
	struct transport *t = NULL;
	char err[256];
	CHECK_OK(memory_transport_open(net, &c, &t, err, sizeof err), err);
	CHECK(strcmp(transport_name(t), "memory") == 0);
	return t;
}

static void link_peers(struct transport *a, uint64_t a_id, struct transport *b, uint64_t b_id)
{
	char err[256];
	CHECK_OK(transport_add_peer(a, b_id, "ignored", 1, err, sizeof err), err);
	CHECK_OK(transport_add_peer(b, a_id, "ignored", 1, err, sizeof err), err);
}

static void send_one(struct transport *t, uint64_t to, const uint8_t *data, size_t length)
{
	char err[256];
	CHECK_OK(transport_send(t, to, data, length, err, sizeof err), err);
	CHECK_OK(transport_flush(t, err, sizeof err), err);
}

static int poll_now(struct transport *t, struct inbox *in)
{
	char err[256];
	int n = transport_poll(t, 0, deliver, in, err, sizeof err);
	CHECK(n >= 0, "poll: %s", err);
	return n;
}

static void test_exchange(void)
{
	struct transport *a = open_member(CLUSTER, 1, NULL), *b = open_member(CLUSTER, 2, NULL);
	link_peers(a, 1, b, 2);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	uint8_t buffer[5000];
	char err[256];
	/* Nothing leaves before flush (while the queue has room). */
	for (size_t i = 0; i < 100; i++)
		CHECK_OK(transport_send(a, 2, buffer, 100, err, sizeof err), err);
	CHECK_EQ(poll_now(b, &in), 0);
	CHECK_OK(transport_flush(a, err, sizeof err), err);
	CHECK_EQ(poll_now(b, &in), 100);
	/* More frames than the queue holds: send flushes by itself when it is full. */
	in.count = 0;
	for (size_t i = 0; i < 500; i++) {
		size_t length = (i * 37) % sizeof buffer;
		test_fill(buffer, length, i);
		CHECK_OK(transport_send(a, 2, buffer, length, err, sizeof err), err);
	}
	CHECK_OK(transport_flush(a, err, sizeof err), err);
	CHECK_EQ(poll_now(b, &in), 500);
	for (size_t i = 0; i < 500; i++) {
		CHECK_EQ(in.from[i], 1);
		CHECK_EQ(in.ids[i], 1000100 + i);
		CHECK_EQ(in.lengths[i], (i * 37) % sizeof buffer);
	}
	/* 1 MiB: 790 frames, intact. */
	size_t big = 1u << 20;
	uint8_t *message = malloc(big);
	test_fill(message, big, 99);
	struct transport_counters before, after;
	before = transport_counters(a);
	send_one(a, 2, message, big);
	after = transport_counters(a);
	CHECK_EQ(after.packets_out - before.packets_out, 790);
	CHECK_EQ(poll_now(b, &in), 1);
	CHECK_EQ(in.last_length, big);
	CHECK(memcmp(in.last, message, big) == 0, "1 MiB message corrupted");
	/* Counters on both sides agree. */
	struct transport_counters ca, cb;
	ca = transport_counters(a);
	cb = transport_counters(b);
	CHECK_EQ(ca.messages_out, 601);
	CHECK_EQ(cb.messages_in, 601);
	CHECK_EQ(ca.packets_out, cb.packets_in);
	CHECK_EQ(ca.bytes_out, cb.bytes_in);
	CHECK_EQ(cb.drop_bad_crc + cb.drop_malformed + cb.duplicates, 0);
	free(message);
	free(in.last);
	in.last = NULL;
	transport_close(a);
	transport_close(b);
}

/* transport_send_owned on a transport without its own (memory): sends as transport_send does and frees the
 * message, also when it is refused (ASan reports a leak or a double free otherwise). */
static void test_send_owned_fallback(void)
{
	struct transport *a = open_member(CLUSTER, 1, NULL), *b = open_member(CLUSTER, 2, NULL);
	link_peers(a, 1, b, 2);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	char err[256];
	size_t length = 5000;
	uint8_t *expect = malloc(length);
	uint8_t *message = malloc(length);
	CHECK(expect != NULL && message != NULL);
	test_fill(expect, length, 7);
	memcpy(message, expect, length);
	CHECK_OK(transport_send_owned(a, 2, message, length, err, sizeof err), err);
	CHECK_OK(transport_flush(a, err, sizeof err), err);
	CHECK_EQ(poll_now(b, &in), 1);
	CHECK_EQ(in.last_length, length);
	CHECK(memcmp(in.last, expect, length) == 0, "owned message corrupted");
	uint8_t *refused = malloc(100);
	CHECK(refused != NULL);
	CHECK(transport_send_owned(a, 9, refused, 100, err, sizeof err) == -EHOSTUNREACH);
	free(expect);
	free(in.last);
	in.last = NULL;
	transport_close(a);
	transport_close(b);
}

static void test_filters(void)
{
	struct transport *a = open_member(CLUSTER, 1, NULL), *b = open_member(CLUSTER, 2, NULL);
	struct transport *stranger = open_member(CLUSTER + 1, 3, NULL);
	link_peers(a, 1, b, 2);
	link_peers(stranger, 3, b, 2);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	uint8_t data[3000] = {1, 2, 3};
	struct transport_counters c;

	/* Another cluster: every frame dropped and counted (3000 bytes: 3 frames). */
	send_one(stranger, 2, data, sizeof data);
	CHECK_EQ(poll_now(b, &in), 0);
	c = transport_counters(b);
	CHECK_EQ(c.drop_unknown_cluster, 3);

	/* Not for us: a valid frame of our cluster addressed to member 7. */
	uint8_t frame[200];
	struct frame_address addr = {.cluster_id = CLUSTER, .from = 1, .to = 7, .message_id = 5};
	size_t size = frame_encode(&addr, data, 10, 1, 0, frame, sizeof frame);
	CHECK_EQ(memory_network_inject(net, 2, frame, size), 0);
	CHECK_EQ(poll_now(b, &in), 0);
	c = transport_counters(b);
	CHECK_EQ(c.drop_not_for_us, 1);

	/* Removed member: dropped from the moment it is marked. */
	send_one(a, 2, data, 10);
	CHECK_EQ(poll_now(b, &in), 1);
	CHECK(!transport_is_removed(b, 1));
	CHECK_OK(transport_mark_removed(b, 1), "mark");
	CHECK_OK(transport_mark_removed(b, 1), "mark twice is fine");
	CHECK(transport_is_removed(b, 1));
	send_one(a, 2, data, sizeof data);
	CHECK_EQ(poll_now(b, &in), 0);
	c = transport_counters(b);
	CHECK_EQ(c.drop_removed_member, 3);
	CHECK_EQ(c.messages_in, 1);

	/* Damaged frames, counted by reason. */
	addr.to = 2;
	addr.from = 3;
	addr.cluster_id = CLUSTER;
	size = frame_encode(&addr, data, 10, 1, 0, frame, sizeof frame);
	frame[FRAME_HEADER_SIZE + 3] ^= 0x10;
	CHECK_EQ(memory_network_inject(net, 2, frame, size), 0);
	CHECK_EQ(memory_network_inject(net, 2, frame, 10), 0);           /* short */
	frame[0] = 'X';
	CHECK_EQ(memory_network_inject(net, 2, frame, size), 0);         /* magic */
	CHECK_EQ(poll_now(b, &in), 0);
	c = transport_counters(b);
	CHECK_EQ(c.drop_bad_crc, 1);
	CHECK_EQ(c.drop_malformed, 2);
	CHECK_EQ(c.parse_errors[FRAME_ERR_CRC], 1);
	CHECK_EQ(c.parse_errors[FRAME_ERR_SHORT], 1);
	CHECK_EQ(c.parse_errors[FRAME_ERR_MAGIC], 1);
	/* An intact frame from 3 still gets through. */
	frame_encode(&addr, data, 10, 1, 0, frame, sizeof frame);
	CHECK_EQ(memory_network_inject(net, 2, frame, size), 0);
	CHECK_EQ(poll_now(b, &in), 1);
	CHECK_EQ(in.from[in.count - 1], 3);
	/* And a duplicate of it is recognised. */
	CHECK_EQ(memory_network_inject(net, 2, frame, size), 0);
	CHECK_EQ(poll_now(b, &in), 0);
	c = transport_counters(b);
	CHECK_EQ(c.duplicates, 1);
	free(in.last);
	in.last = NULL;
	transport_close(a);
	transport_close(b);
	transport_close(stranger);
}

static void test_reassembly_timeout(void)
{
	struct transport *b = open_member(CLUSTER, 2, NULL);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	uint8_t data[4000], frame[1500];
	test_fill(data, sizeof data, 3);
	struct frame_address addr = {.cluster_id = CLUSTER, .from = 1, .to = 2, .message_id = 77};
	size_t count = frame_count(sizeof data, FRAME_DEFAULT_DATAGRAM);
	CHECK_EQ(count, 4);
	memory_network_set_time(net, 10000 * MS);
	for (size_t i = 0; i + 1 < count; i++) {   /* the last fragment is lost */
		size_t size = frame_encode(&addr, data, sizeof data, (uint16_t)count, (uint16_t)i, frame, sizeof frame);
		CHECK_EQ(memory_network_inject(net, 2, frame, size), 0);
	}
	CHECK_EQ(poll_now(b, &in), 0);
	struct transport_counters c;
	c = transport_counters(b);
	CHECK_EQ(c.drop_reassembly_timeout, 0);
	memory_network_set_time(net, 10099 * MS);
	poll_now(b, &in);
	c = transport_counters(b);
	CHECK_EQ(c.drop_reassembly_timeout, 0);
	memory_network_set_time(net, 10100 * MS);   /* the configured 100 ms */
	poll_now(b, &in);
	c = transport_counters(b);
	CHECK_EQ(c.drop_reassembly_timeout, 1);
	/* The lost fragment arriving now does not resurrect the message. */
	size_t size = frame_encode(&addr, data, sizeof data, (uint16_t)count, (uint16_t)(count - 1), frame,
		sizeof frame);
	CHECK_EQ(memory_network_inject(net, 2, frame, size), 0);
	CHECK_EQ(poll_now(b, &in), 0);
	CHECK_EQ(in.count, 0);
	free(in.last);
	transport_close(b);
}

static void test_fault_delay(void)
{
	struct fault_config fault = {.enabled = true, .seed = 5, .delay_ms = 50};
	struct transport *a = open_member(CLUSTER, 1, NULL), *b = open_member(CLUSTER, 2, &fault);
	link_peers(a, 1, b, 2);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	memory_network_set_time(net, 20000 * MS);
	uint8_t data[100] = {9};
	send_one(a, 2, data, sizeof data);
	CHECK_EQ(poll_now(b, &in), 0);
	CHECK_EQ(transport_next_wakeup_ms(b), 50);
	memory_network_set_time(net, 20049 * MS);
	CHECK_EQ(poll_now(b, &in), 0);
	CHECK_EQ(transport_next_wakeup_ms(b), 1);
	memory_network_set_time(net, 20050 * MS);
	CHECK_EQ(poll_now(b, &in), 1);
	CHECK_EQ(transport_next_wakeup_ms(b), -1);
	free(in.last);
	transport_close(a);
	transport_close(b);
}

/* The same seed through the whole transport gives the same deliveries, in the same order. */
static void run_faulty(uint64_t seed, struct inbox *in, struct transport_counters *c)
{
	struct fault_config fault = {.enabled = true, .seed = seed, .drop = 0.1, .duplicate = 0.1, .reorder = 0.2};
	struct transport *a = open_member(CLUSTER, 1, NULL), *b = open_member(CLUSTER, 2, &fault);
	link_peers(a, 1, b, 2);
	memset(in, 0, sizeof *in);
	memory_network_set_time(net, 30000 * MS);
	uint8_t data[2000];
	char err[256];
	for (size_t i = 0; i < 1000; i++)   /* single-frame and 2-frame messages */
		CHECK_OK(transport_send(a, 2, data, i % 2 ? 100 : sizeof data, err, sizeof err), err);
	CHECK_OK(transport_flush(a, err, sizeof err), err);
	poll_now(b, in);
	memory_network_set_time(net, 31000 * MS);   /* past the reorder hold */
	poll_now(b, in);
	*c = transport_counters(b);
	free(in->last);
	in->last = NULL;
	transport_close(a);
	transport_close(b);
}

static void test_fault_determinism(void)
{
	static struct inbox first, second;
	struct transport_counters c1, c2;
	run_faulty(42, &first, &c1);
	run_faulty(42, &second, &c2);
	CHECK(first.count > 700 && first.count < 1000, "delivered %zu of 1000 at 10%% loss", first.count);
	CHECK(c1.fault_dropped > 100 && c1.fault_duplicated > 100 && c1.fault_reordered > 200,
		"dropped %llu duplicated %llu reordered %llu", (unsigned long long)c1.fault_dropped,
		(unsigned long long)c1.fault_duplicated, (unsigned long long)c1.fault_reordered);
	CHECK_EQ(second.count, first.count);
	CHECK(memcmp(first.ids, second.ids, first.count * sizeof *first.ids) == 0, "seed 42 not reproducible");
	CHECK_EQ(c1.fault_dropped, c2.fault_dropped);
	CHECK_EQ(c1.duplicates, c2.duplicates);
	/* Delivered once each, and not in send order. */
	size_t inversions = 0;
	for (size_t i = 0; i < first.count; i++) {
		for (size_t k = 0; k < i; k++)
			CHECK(first.ids[k] != first.ids[i], "message %llu delivered twice", (unsigned long long)first.ids[i]);
		if (i > 0)
			inversions += first.ids[i] < first.ids[i - 1];
	}
	CHECK(inversions > 10, "only %zu inversions with reorder 0.2", inversions);
	CHECK_EQ(c1.messages_in, first.count);
	CHECK(c1.duplicates > 0);
	static struct inbox other;
	struct transport_counters c3;
	run_faulty(43, &other, &c3);
	CHECK(other.count != first.count || memcmp(first.ids, other.ids, first.count * sizeof *first.ids) != 0,
		"seeds 42 and 43 gave the same deliveries");
}

static void test_send_errors(void)
{
	struct transport *a = open_member(CLUSTER, 1, NULL);
	char err[256] = "";
	uint8_t data[10] = {0};
	CHECK(transport_send(a, 9, data, sizeof data, err, sizeof err) == -EHOSTUNREACH);
	CHECK(strstr(err, "member 9") != NULL, "message '%s'", err);
	struct transport_counters c;
	c = transport_counters(a);
	CHECK_EQ(c.drop_unknown_peer, 1);
	CHECK_EQ(c.messages_out, 0);
	CHECK_OK(transport_add_peer(a, 9, "x", 1, err, sizeof err), err);
	CHECK(transport_send(a, 9, data, TRANSPORT_DEFAULT_MAX_MESSAGE + 1, err, sizeof err) == -EMSGSIZE);
	CHECK(strstr(err, "over the maximum") != NULL, "message '%s'", err);
	CHECK_EQ(transport_remove_peer(a, 9), 0);
	CHECK_EQ(transport_remove_peer(a, 9), -ENOENT);
	CHECK(transport_send(a, 9, data, sizeof data, err, sizeof err) == -EHOSTUNREACH);
	/* The removed set is bounded. */
	for (uint64_t id = 1000; id < 1000 + TRANSPORT_MAX_REMOVED; id++)
		CHECK_OK(transport_mark_removed(a, id), "mark");
	CHECK(transport_mark_removed(a, 1000 + TRANSPORT_MAX_REMOVED) == -ENOSPC);
	CHECK_OK(transport_mark_removed(a, 1000), "an id already there");
	CHECK(transport_is_removed(a, 1000 + TRANSPORT_MAX_REMOVED - 1));
	CHECK(!transport_is_removed(a, 1000 + TRANSPORT_MAX_REMOVED));
	/* Same member id twice on one network. */
	struct transport_config config;
	transport_config_init(&config);
	config.cluster_id = CLUSTER;
	config.member_id = 1;
	struct transport *dup = NULL;
	CHECK(memory_transport_open(net, &config, &dup, err, sizeof err) == -EADDRINUSE);
	config.member_id = 0;
	CHECK(memory_transport_open(net, &config, &dup, err, sizeof err) == -EINVAL);
	config.member_id = 5;
	config.max_datagram = 50;
	CHECK(memory_transport_open(net, &config, &dup, err, sizeof err) == -EINVAL);
	CHECK(strstr(err, "max datagram 50") != NULL, "message '%s'", err);
	config.max_datagram = FRAME_DEFAULT_DATAGRAM;
	config.reassembly_memory = config.max_message - 1;
	CHECK(memory_transport_open(net, &config, &dup, err, sizeof err) == -EINVAL);
	CHECK(strstr(err, "reassembly memory") != NULL, "message '%s'", err);
	transport_close(a);
}

/* A restarted member (default first message id: the realtime clock) is not mistaken for a duplicate. */
static void test_restart(void)
{
	struct transport *b = open_member(CLUSTER, 2, NULL);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	uint64_t last_id = 0;
	for (int incarnation = 0; incarnation < 3; incarnation++) {
		struct transport_config c;
		transport_config_init(&c);
		c.cluster_id = CLUSTER;
		c.member_id = 1;
		struct transport *a = NULL;
		char err[256];
		CHECK_OK(memory_transport_open(net, &c, &a, err, sizeof err), err);
		CHECK_OK(transport_add_peer(a, 2, "x", 1, err, sizeof err), err);
		uint8_t data[10] = {0};
		for (int k = 0; k < 5; k++)
			send_one(a, 2, data, sizeof data);
		CHECK_EQ(poll_now(b, &in), 5);
		CHECK(in.ids[in.count - 5] > last_id, "incarnation %d reused ids", incarnation);
		last_id = in.ids[in.count - 1];
		transport_close(a);
	}
	CHECK_EQ(transport_counters(b).duplicates, 0);
	free(in.last);
	transport_close(b);
}

static void test_counter_names(void)
{
	CHECK_EQ(transport_counter_count(), 28);
	CHECK(strcmp(transport_counter_name(0), "packets_in") == 0);
	CHECK(strcmp(transport_counter_name(6), "drop_bad_crc") == 0);
	CHECK(strcmp(transport_counter_name(8), "drop_bad_mac") == 0);
	CHECK(transport_counter_name(transport_counter_count()) == NULL);
	struct transport_counters c;
	memset(&c, 0, sizeof c);
	c.drop_send_error = 17;
	size_t i = 0;
	while (strcmp(transport_counter_name(i), "drop_send_error") != 0)
		i++;
	CHECK_EQ(transport_counter_value(&c, i), 17);
	CHECK(strlen(transport_counter_meaning(i)) > 0);
}

int main(void)
{
	test_name = "memory";
	CHECK(memory_network_create(&net) == 0);
	RUN(test_exchange);
	RUN(test_send_owned_fallback);
	RUN(test_filters);
	RUN(test_reassembly_timeout);
	RUN(test_fault_delay);
	RUN(test_fault_determinism);
	RUN(test_send_errors);
	RUN(test_restart);
	RUN(test_counter_names);
	memory_network_destroy(net);
	fprintf(stderr, "ok\n");
	return 0;
}
