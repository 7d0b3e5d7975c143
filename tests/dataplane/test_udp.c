/* tests/dataplane/test_udp.c: two (or more) real UDP transports on loopback. Binding and its errors,
 * many messages both ways with their content checked, a 1 MiB message in 790 frames, a sender and a
 * receiver thread (the threading contract) with a messages/s measurement, IPv6 and dual stack, the
 * filters and bad frames from a raw socket, send errors, the fault layer on a real socket, and messages
 * handed over with transport_send_owned (frames pointing into them) across flushes of a small queue. Waits
 * are bounded poll loops on a condition, never sleeps. */
#include "udp.h"
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLUSTER 0xabcdef0123ull
#define WAIT_NS (10ull * 1000 * 1000 * 1000)
#define MAX_LOG 200000

/* What a receiver saw. Payloads carry their sequence number in the first 8 bytes and bytes derived
 * from it after, so the deliver callback checks content as it goes. */
struct inbox {
	uint64_t count;
	uint64_t bad_content;
	uint64_t last_length;
	uint64_t sequences[4096];   /* first 4096 deliveries */
	uint64_t *log;              /* optional: every sequence */
};

static void make_payload(uint8_t *buffer, size_t length, uint64_t sequence)
{
	test_fill(buffer, length, sequence * 7919 + length);
	for (size_t i = 0; i < 8 && i < length; i++)
		buffer[i] = (uint8_t)(sequence >> (8 * i));
}

static void deliver(void *arg, const struct transport_message *m)
{
	struct inbox *in = arg;
	uint64_t sequence = 0;
	for (size_t i = 0; i < 8 && i < m->length; i++)
		sequence |= (uint64_t)m->data[i] << (8 * i);
	uint8_t *expect = malloc(m->length ? m->length : 1);
	make_payload(expect, m->length, sequence);
	if (memcmp(expect, m->data, m->length) != 0)
		in->bad_content++;
	free(expect);
	if (in->count < 4096)
		in->sequences[in->count] = sequence;
	if (in->log && in->count < MAX_LOG)
		in->log[in->count] = sequence;
	in->last_length = m->length;
	in->count++;
}

/* DATAPLANE_TEST_SOCKET_BUFFER=0 runs with the kernel's default buffers, as an unprivileged process
 * on a stock kernel would get them; tests that need a big burst then adapt or say they skip. */
static size_t socket_buffer(void)
{
	const char *env = getenv("DATAPLANE_TEST_SOCKET_BUFFER");
	return env ? (size_t)strtoull(env, NULL, 0) : 8u << 20;
}

static int receive_buffer(struct transport *t)
{
	int receive = 0, send = 0;
	CHECK_OK(udp_transport_buffers(t, &receive, &send), "buffers");
	CHECK(receive > 0 && send > 0);
	return receive;
}

static uint64_t clamp(uint64_t v, uint64_t low, uint64_t high)
{
	return v < low ? low : v > high ? high : v;
}

/* Bytes the kernel charges a receive buffer per queued datagram (measured on loopback). */
#define TRUESIZE_FULL 2304u
#define TRUESIZE_SMALL 832u

static struct transport *open_udp(const char *host, uint64_t cluster, uint64_t id, const struct fault_config *fault,
	size_t max_datagram)
{
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = cluster;
	c.member_id = id;
	c.first_message_id = 1000 * id;
	if (max_datagram)
		c.max_datagram = max_datagram;
	if (fault)
		c.fault = *fault;
	c.socket_buffer = socket_buffer();
	struct transport *t = NULL;
	char err[256];
	CHECK_OK(udp_transport_open(&c, host, 0, &t, err, sizeof err), err);
	CHECK(strcmp(transport_name(t), "udp") == 0);
	return t;
}

static uint16_t port_of(struct transport *t)
{
	char host[64];
	uint16_t port = 0;
	CHECK_OK(transport_local_address(t, host, sizeof host, &port), "local address");
	CHECK(port != 0);
	return port;
}

static void add_peer(struct transport *t, uint64_t id, const char *host, struct transport *peer)
{
	char err[256];
	CHECK_OK(transport_add_peer(t, id, host, port_of(peer), err, sizeof err), err);
}

static void poll_once(struct transport *t, struct inbox *in, int timeout_ms)
{
	char err[256];
	int n = transport_poll(t, timeout_ms, deliver, in, err, sizeof err);
	CHECK(n >= 0, "poll: %s", err);
}

/* Polls t until cond holds, at most WAIT_NS. */
#define POLL_UNTIL(t, in, cond)                                                                    \
	do {                                                                                       \
		uint64_t until_ = test_now_ns() + WAIT_NS;                                         \
		while (!(cond)) {                                                                  \
			CHECK(test_now_ns() < until_, "timed out waiting for " #cond);             \
			poll_once((t), (in), 50);                                                  \
		}                                                                                  \
	} while (0)

static void send_payload(struct transport *t, uint64_t to, size_t length, uint64_t sequence)
{
	static uint8_t buffer[1u << 21];
	CHECK(length <= sizeof buffer);
	make_payload(buffer, length, sequence);
	char err[256];
	CHECK_OK(transport_send(t, to, buffer, length, err, sizeof err), err);
}

static void flush(struct transport *t)
{
	char err[256];
	CHECK_OK(transport_flush(t, err, sizeof err), err);
}

static struct transport_counters counters(struct transport *t)
{
	return transport_counters(t);
}

static void test_bind(void)
{
	struct transport *a = open_udp("127.0.0.1", CLUSTER, 1, NULL, 0);
	char host[64];
	uint16_t port;
	CHECK_OK(transport_local_address(a, host, sizeof host, &port), "local");
	CHECK(strcmp(host, "127.0.0.1") == 0, "host %s", host);
	CHECK(transport_fd(a) >= 0);
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = CLUSTER;
	c.member_id = 2;
	struct transport *b = NULL;
	char err[256], want[256];
	CHECK(udp_transport_open(&c, "127.0.0.1", port, &b, err, sizeof err) == -EADDRINUSE, "%s", err);
	snprintf(want, sizeof want, "bind 127.0.0.1:%u: Address already in use", port);
	CHECK(strcmp(err, want) == 0, "message '%s'", err);
	/* poll waits for its timeout when nothing comes, and not much longer. */
	static struct inbox none;
	uint64_t start = test_now_ns();
	CHECK_EQ(transport_poll(a, 50, deliver, &none, err, sizeof err), 0);
	uint64_t waited = test_now_ns() - start;
	CHECK(waited >= 45ull * 1000 * 1000 && waited < 2000ull * 1000 * 1000, "waited %.1f ms", waited / 1e6);
	start = test_now_ns();
	CHECK_EQ(transport_poll(a, 0, deliver, &none, err, sizeof err), 0);
	CHECK(test_now_ns() - start < 1000ull * 1000 * 1000, "poll(0) blocked");
	/* An address this machine does not have. */
	CHECK(udp_transport_open(&c, "192.0.2.1", 0, &b, err, sizeof err) == -EADDRNOTAVAIL, "%s", err);
	CHECK(strstr(err, "bind 192.0.2.1:0: ") == err, "message '%s'", err);
	/* An IPv6 peer for an IPv4 socket. */
	CHECK(transport_add_peer(a, 5, "::1", 2380, err, sizeof err) == -EAFNOSUPPORT);
	CHECK(strstr(err, "peer 5 ::1:2380") != NULL, "message '%s'", err);
	transport_close(a);
}

static void test_exchange(void)
{
	struct transport *a = open_udp("127.0.0.1", CLUSTER, 1, NULL, 0);
	struct transport *b = open_udp("127.0.0.1", CLUSTER, 2, NULL, 0);
	add_peer(a, 2, "127.0.0.1", b);
	add_peer(b, 1, "127.0.0.1", a);
	static struct inbox at_a, at_b;
	memset(&at_a, 0, sizeof at_a);
	memset(&at_b, 0, sizeof at_b);
	/* A batch of up to 4-frame messages must fit in the receive buffer. */
	const uint64_t total = 10000;
	const uint64_t batch = clamp((uint64_t)receive_buffer(b) / (4 * TRUESIZE_FULL) / 2, 5, 200);
	uint64_t bytes = 0, start = test_now_ns();
	for (uint64_t sent = 0; sent < total; sent += batch) {
		uint64_t end = sent + batch < total ? sent + batch : total;
		for (uint64_t i = sent; i < end; i++) {
			size_t length = 8 + (size_t)(i * 131 % 4000);
			send_payload(a, 2, length, i);
			send_payload(b, 1, 8 + (size_t)(i % 300), i);
			bytes += length;
		}
		flush(a);
		flush(b);
		POLL_UNTIL(b, &at_b, at_b.count >= end);
		POLL_UNTIL(a, &at_a, at_a.count >= end);
	}
	double seconds = (double)(test_now_ns() - start) / 1e9;
	fprintf(stderr, "   %llu messages each way (A->B 8..4007 bytes) in batches of %llu, %.3f s: %.0f messages/s, "
		"%.1f MB/s A->B\n", (unsigned long long)total, (unsigned long long)batch, seconds, 2 * total / seconds,
		bytes / seconds / 1e6);
	CHECK_EQ(at_b.count, total);
	CHECK_EQ(at_a.count, total);
	CHECK_EQ(at_b.bad_content + at_a.bad_content, 0);
	for (uint64_t i = 0; i < 4096; i++)
		CHECK_EQ(at_b.sequences[i], i);
	struct transport_counters ca = counters(a), cb = counters(b);
	CHECK_EQ(ca.messages_out, total);
	CHECK_EQ(cb.messages_in, total);
	CHECK_EQ(ca.packets_out, cb.packets_in);
	CHECK_EQ(ca.bytes_out, cb.bytes_in);
	CHECK(ca.packets_out > total, "some A->B messages need 2..4 frames");
	CHECK_EQ(cb.drop_bad_crc + cb.drop_malformed + cb.duplicates + cb.drop_reassembly_timeout, 0);
	transport_close(a);
	transport_close(b);
}

static void test_one_mebibyte(void)
{
	struct transport *a = open_udp("127.0.0.1", CLUSTER, 1, NULL, 0);
	struct transport *b = open_udp("127.0.0.1", CLUSTER, 2, NULL, 0);
	add_peer(a, 2, "127.0.0.1", b);
	int buffer = receive_buffer(b);
	if ((uint64_t)buffer < 790ull * TRUESIZE_FULL) {
		/* The burst cannot fit: the kernel would drop frames, which is no transport bug. */
		fprintf(stderr, "   SKIPPED: the receive buffer is %d bytes, a 1 MiB burst needs %u; raise "
			"net.core.rmem_max to 4 MiB or run with CAP_NET_ADMIN\n", buffer, 790 * TRUESIZE_FULL);
		transport_close(a);
		transport_close(b);
		return;
	}
	static struct inbox in;
	memset(&in, 0, sizeof in);
	for (uint64_t round = 0; round < 3; round++) {
		struct transport_counters before = counters(a);
		uint64_t start = test_now_ns();
		send_payload(a, 2, 1u << 20, 500 + round);
		flush(a);
		POLL_UNTIL(b, &in, in.count == round + 1);
		struct transport_counters after = counters(a);
		fprintf(stderr, "   1 MiB in %llu frames delivered in %.2f ms\n",
			(unsigned long long)(after.packets_out - before.packets_out),
			(double)(test_now_ns() - start) / 1e6);
		CHECK_EQ(after.packets_out - before.packets_out, 790);
		CHECK_EQ(in.last_length, 1u << 20);
		CHECK_EQ(in.sequences[round], 500 + round);
	}
	CHECK_EQ(in.bad_content, 0);
	struct transport_counters cb = counters(b);
	CHECK_EQ(cb.packets_in, 3 * 790);
	CHECK_EQ(cb.messages_in, 3);
	transport_close(a);
	transport_close(b);

	/* Loopback with 64 KiB datagrams: 17 frames. */
	a = open_udp("127.0.0.1", CLUSTER, 1, NULL, FRAME_MAX_DATAGRAM);
	b = open_udp("127.0.0.1", CLUSTER, 2, NULL, FRAME_MAX_DATAGRAM);
	add_peer(a, 2, "127.0.0.1", b);
	memset(&in, 0, sizeof in);
	send_payload(a, 2, 1u << 20, 9);
	flush(a);
	POLL_UNTIL(b, &in, in.count == 1);
	CHECK_EQ(counters(a).packets_out, 17);
	CHECK_EQ(in.bad_content, 0);
	CHECK_EQ(in.last_length, 1u << 20);
	transport_close(a);
	transport_close(b);
}

/* One thread sends (the Raft core's role), one receives (the transport thread's). */
struct receiver {
	struct transport *t;
	struct inbox in;
	_Atomic uint64_t delivered;
	_Atomic bool stop;
	int error;
};

static void deliver_threaded(void *arg, const struct transport_message *m)
{
	struct receiver *r = arg;
	deliver(&r->in, m);
	atomic_store_explicit(&r->delivered, r->in.count, memory_order_release);
}

static void *receive_loop(void *arg)
{
	struct receiver *r = arg;
	char err[256];
	while (!atomic_load(&r->stop)) {
		int n = transport_poll(r->t, 20, deliver_threaded, r, err, sizeof err);
		if (n < 0) {
			r->error = n;
			break;
		}
	}
	return NULL;
}

static void test_threads(void)
{
	struct transport *a = open_udp("127.0.0.1", CLUSTER, 1, NULL, 0);
	static struct receiver r;
	memset(&r, 0, sizeof r);
	r.t = open_udp("127.0.0.1", CLUSTER, 2, NULL, 0);
	r.in.log = calloc(MAX_LOG, sizeof *r.in.log);
	add_peer(a, 2, "127.0.0.1", r.t);
	pthread_t thread;
	CHECK(pthread_create(&thread, NULL, receive_loop, &r) == 0);
	const uint64_t total = 100000;
	const uint64_t window = clamp((uint64_t)receive_buffer(r.t) / TRUESIZE_SMALL / 2, 16, 2048);
	uint64_t start = test_now_ns(), until = start + 4 * WAIT_NS;
	for (uint64_t i = 0; i < total; i++) {
		/* Flow control: at most `window` messages in flight, so the socket buffer never overflows. */
		while (i - atomic_load_explicit(&r.delivered, memory_order_acquire) >= window) {
			flush(a);
			CHECK(test_now_ns() < until, "receiver stuck at %llu of %llu",
				(unsigned long long)atomic_load(&r.delivered), (unsigned long long)i);
			sched_yield();
		}
		send_payload(a, 2, 100, i);
		if (i % 64 == 63)
			flush(a);
	}
	flush(a);
	while (atomic_load_explicit(&r.delivered, memory_order_acquire) < total) {
		CHECK(test_now_ns() < until, "delivered %llu of %llu", (unsigned long long)atomic_load(&r.delivered),
			(unsigned long long)total);
		sched_yield();
	}
	double seconds = (double)(test_now_ns() - start) / 1e9;
	atomic_store(&r.stop, true);
	pthread_join(thread, NULL);
	CHECK_EQ(r.error, 0);
	fprintf(stderr, "   %llu messages of 100 bytes, sender and receiver threads, window %llu: %.0f messages/s\n",
		(unsigned long long)total, (unsigned long long)window, total / seconds);
	CHECK_EQ(r.in.count, total);
	CHECK_EQ(r.in.bad_content, 0);
	for (uint64_t i = 0; i < total; i++)
		CHECK_EQ(r.in.log[i], i);
	free(r.in.log);
	transport_close(a);
	transport_close(r.t);
}

static void test_ipv6(void)
{
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = CLUSTER;
	c.member_id = 1;
	struct transport *six = NULL;
	char err[256];
	int rv = udp_transport_open(&c, "[::1]", 0, &six, err, sizeof err);
	if (rv == -EADDRNOTAVAIL || rv == -EAFNOSUPPORT) {
		fprintf(stderr, "   skipped: no IPv6 loopback (%s)\n", err);
		return;
	}
	CHECK_OK(rv, err);
	char host[64];
	uint16_t port;
	transport_local_address(six, host, sizeof host, &port);
	CHECK(strcmp(host, "::1") == 0, "host %s", host);
	struct transport *clash = NULL;
	char want[128];
	c.member_id = 9;
	CHECK(udp_transport_open(&c, "::1", port, &clash, err, sizeof err) == -EADDRINUSE);
	snprintf(want, sizeof want, "bind [::1]:%u: Address already in use", port);
	CHECK(strcmp(err, want) == 0, "message '%s'", err);
	struct transport *other = open_udp("::1", CLUSTER, 2, NULL, 0);
	add_peer(six, 2, "::1", other);
	add_peer(other, 1, "[::1]", six);
	static struct inbox in6, back;
	memset(&in6, 0, sizeof in6);
	memset(&back, 0, sizeof back);
	send_payload(six, 2, 3000, 1);
	flush(six);
	POLL_UNTIL(other, &in6, in6.count == 1);
	send_payload(other, 1, 10, 2);
	flush(other);
	POLL_UNTIL(six, &back, back.count == 1);
	CHECK_EQ(in6.bad_content + back.bad_content, 0);

	/* Dual stack: a wildcard IPv6 socket talks to an IPv4-only one. */
	struct transport *wild = open_udp("::", CLUSTER, 3, NULL, 0);
	struct transport *v4 = open_udp("127.0.0.1", CLUSTER, 4, NULL, 0);
	add_peer(wild, 4, "127.0.0.1", v4);
	add_peer(v4, 3, "127.0.0.1", wild);
	static struct inbox at_wild, at_v4;
	memset(&at_wild, 0, sizeof at_wild);
	memset(&at_v4, 0, sizeof at_v4);
	send_payload(wild, 4, 2000, 3);
	flush(wild);
	send_payload(v4, 3, 2000, 4);
	flush(v4);
	POLL_UNTIL(v4, &at_v4, at_v4.count == 1);
	POLL_UNTIL(wild, &at_wild, at_wild.count == 1);
	CHECK_EQ(at_v4.sequences[0], 3);
	CHECK_EQ(at_wild.sequences[0], 4);
	transport_close(six);
	transport_close(other);
	transport_close(wild);
	transport_close(v4);
}

static int raw_socket_to(struct transport *t, struct sockaddr_in *to)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	memset(to, 0, sizeof *to);
	to->sin_family = AF_INET;
	to->sin_port = htons(port_of(t));
	to->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return fd;
}

static void test_filters(void)
{
	struct transport *a = open_udp("127.0.0.1", CLUSTER, 1, NULL, 0);
	struct transport *b = open_udp("127.0.0.1", CLUSTER, 2, NULL, 0);
	struct transport *stranger = open_udp("127.0.0.1", CLUSTER + 1, 3, NULL, 0);
	add_peer(a, 2, "127.0.0.1", b);
	add_peer(stranger, 2, "127.0.0.1", b);
	static struct inbox in;
	memset(&in, 0, sizeof in);

	/* Wrong cluster id. */
	send_payload(stranger, 2, 3000, 1);   /* 3 frames */
	flush(stranger);
	POLL_UNTIL(b, &in, counters(b).drop_unknown_cluster == 3);

	/* Removed member. */
	send_payload(a, 2, 100, 2);
	flush(a);
	POLL_UNTIL(b, &in, in.count == 1);
	CHECK_OK(transport_mark_removed(b, 1), "mark");
	send_payload(a, 2, 100, 3);
	send_payload(a, 2, 3000, 4);
	flush(a);
	POLL_UNTIL(b, &in, counters(b).drop_removed_member == 4);

	/* Hand-made datagrams from a plain socket: a corrupted byte, garbage, a frame for member 9. */
	struct sockaddr_in to;
	int fd = raw_socket_to(b, &to);
	uint8_t payload[50], frame[200];
	make_payload(payload, sizeof payload, 5);
	struct frame_address addr = {.cluster_id = CLUSTER, .from = 7, .to = 2, .message_id = 1};
	size_t size = frame_encode(&addr, payload, sizeof payload, 1, 0, frame, sizeof frame);
	frame[FRAME_HEADER_SIZE + 20] ^= 0x01;
	CHECK(sendto(fd, frame, size, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)size);
	CHECK(sendto(fd, "garbage", 7, 0, (struct sockaddr *)&to, sizeof to) == 7);
	addr.to = 9;
	size = frame_encode(&addr, payload, sizeof payload, 1, 0, frame, sizeof frame);
	CHECK(sendto(fd, frame, size, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)size);
	POLL_UNTIL(b, &in, counters(b).drop_not_for_us == 1);
	struct transport_counters c = counters(b);
	CHECK_EQ(c.drop_bad_crc, 1);
	CHECK_EQ(c.drop_malformed, 1);
	CHECK_EQ(c.parse_errors[FRAME_ERR_SHORT], 1);
	/* The intact frame from member 7 is delivered. */
	addr.to = 2;
	size = frame_encode(&addr, payload, sizeof payload, 1, 0, frame, sizeof frame);
	CHECK(sendto(fd, frame, size, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)size);
	POLL_UNTIL(b, &in, in.count == 2);
	CHECK_EQ(in.sequences[1], 5);
	CHECK_EQ(in.bad_content, 0);
	c = counters(b);
	CHECK_EQ(c.packets_in, 3 + 1 + 4 + 4);
	CHECK_EQ(c.messages_in, 2);
	close(fd);
	transport_close(a);
	transport_close(b);
	transport_close(stranger);
}

static void test_send_errors(void)
{
	struct transport *a = open_udp("127.0.0.1", CLUSTER, 1, NULL, 0);
	struct transport *b = open_udp("127.0.0.1", CLUSTER, 2, NULL, 0);
	add_peer(a, 2, "127.0.0.1", b);
	char err[256];
	/* Port 0 cannot be sent to: that frame fails, the ones after it still go. */
	CHECK_OK(transport_add_peer(a, 5, "127.0.0.1", 0, err, sizeof err), err);
	send_payload(a, 5, 10, 1);
	send_payload(a, 2, 10, 2);
	int rv = transport_flush(a, err, sizeof err);
	CHECK(rv == -EINVAL, "flush returned %d: %s", rv, err);
	CHECK(strcmp(err, "sendmmsg to member 5 at 127.0.0.1:0: Invalid argument") == 0, "message '%s'", err);
	CHECK_EQ(counters(a).drop_send_error, 1);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	POLL_UNTIL(b, &in, in.count == 1);
	CHECK_EQ(in.sequences[0], 2);
	/* No address. */
	CHECK(transport_send(a, 6, (const uint8_t *)"x", 1, err, sizeof err) == -EHOSTUNREACH);
	CHECK(strcmp(err, "send to member 6: no peer address") == 0, "message '%s'", err);
	transport_close(a);
	transport_close(b);
}

/* The fault layer on a real socket: 400 single-frame messages through drop/duplicate/reorder. */
static void faulty_run(uint64_t seed, struct inbox *in, struct transport_counters *c)
{
	struct fault_config fault = {.enabled = true, .seed = seed, .drop = 0.2, .duplicate = 0.2, .reorder = 0.2};
	struct transport *a = open_udp("127.0.0.1", CLUSTER, 1, NULL, 0);
	struct transport *b = open_udp("127.0.0.1", CLUSTER, 2, &fault, 0);
	add_peer(a, 2, "127.0.0.1", b);
	memset(in, 0, sizeof *in);
	/* In chunks that fit any receive buffer; the layer sees the same frame order either way. */
	for (uint64_t i = 0; i < 400; i++) {
		send_payload(a, 2, 200, i);
		if (i % 50 == 49) {
			flush(a);
			POLL_UNTIL(b, in, counters(b).packets_in == i + 1);
		}
	}
	/* Done when nothing is held any more. */
	POLL_UNTIL(b, in, transport_next_wakeup_ms(b) == -1);
	*c = counters(b);
	transport_close(a);
	transport_close(b);
}

static void test_fault_layer(void)
{
	static struct inbox first, second, other;
	struct transport_counters c1, c2, c3;
	faulty_run(9, &first, &c1);
	faulty_run(9, &second, &c2);
	fprintf(stderr, "   seed 9: %llu delivered, %llu dropped, %llu duplicated, %llu reordered\n",
		(unsigned long long)first.count, (unsigned long long)c1.fault_dropped,
		(unsigned long long)c1.fault_duplicated, (unsigned long long)c1.fault_reordered);
	CHECK(c1.fault_dropped > 40 && c1.fault_dropped < 120, "dropped %llu", (unsigned long long)c1.fault_dropped);
	CHECK(c1.fault_duplicated > 40 && c1.fault_reordered > 40);
	CHECK_EQ(first.count, 400 - c1.fault_dropped);
	CHECK_EQ(c1.duplicates, c1.fault_duplicated);   /* every duplicate recognised, none delivered */
	CHECK_EQ(first.bad_content, 0);
	size_t inversions = 0;
	for (size_t i = 1; i < first.count; i++)
		inversions += first.sequences[i] < first.sequences[i - 1];
	CHECK(inversions > 20, "%zu inversions", inversions);
	/* Deterministic: same seed, same deliveries in the same order. */
	CHECK_EQ(second.count, first.count);
	CHECK(memcmp(first.sequences, second.sequences, first.count * sizeof *first.sequences) == 0,
		"seed 9 did not reproduce");
	CHECK_EQ(c2.fault_duplicated, c1.fault_duplicated);
	faulty_run(10, &other, &c3);
	CHECK(other.count != first.count ||
		memcmp(first.sequences, other.sequences, first.count * sizeof *first.sequences) != 0,
		"seeds 9 and 10 gave the same deliveries");

	/* Delay: held 30 ms, and a poll with a long timeout returns when it is due. */
	struct fault_config delay = {.enabled = true, .seed = 1, .delay_ms = 30};
	struct transport *a = open_udp("127.0.0.1", CLUSTER, 1, NULL, 0);
	struct transport *b = open_udp("127.0.0.1", CLUSTER, 2, &delay, 0);
	add_peer(a, 2, "127.0.0.1", b);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	uint64_t start = test_now_ns();
	send_payload(a, 2, 100, 1);
	flush(a);
	POLL_UNTIL(b, &in, in.count == 1);
	uint64_t elapsed = test_now_ns() - start;
	CHECK(elapsed >= 30ull * 1000 * 1000, "delivered after %.1f ms, before the 30 ms delay", elapsed / 1e6);
	CHECK(elapsed < 5000ull * 1000 * 1000, "delivered after %.1f ms", elapsed / 1e6);
	transport_close(a);
	transport_close(b);
}

/* transport_send_owned: frames point into the message, which must stay alive until the flush that
 * sends its last frame, also when the queue fills in the middle of a message (send_queue 7 here, messages
 * of up to 30 frames, under 64 in flight: a default receive buffer holds them) and flushes the frames before it; mixed with copied sends, empty messages, and an
 * owned message to an unknown member (refused, freed: ASan would report a leak). */
static void test_send_owned(void)
{
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = CLUSTER;
	c.member_id = 1;
	c.first_message_id = 1000;
	c.send_queue = 7;
	c.socket_buffer = socket_buffer();
	struct transport *a = NULL;
	char err[256];
	CHECK_OK(udp_transport_open(&c, "127.0.0.1", 0, &a, err, sizeof err), err);
	struct transport *b = open_udp("127.0.0.1", CLUSTER, 2, NULL, 0);
	add_peer(a, 2, "127.0.0.1", b);
	static struct inbox in;
	memset(&in, 0, sizeof in);
	const size_t chunk = FRAME_DEFAULT_DATAGRAM - FRAME_HEADER_SIZE;
	const size_t lengths[] = {0, 1, 8, chunk, chunk + 1, 7 * chunk, 7 * chunk + 5, 30 * chunk - 3};
	const uint64_t rounds = 40;
	uint64_t sequence = 0, expected_frames = 0;
	for (uint64_t round = 0; round < rounds; round++) {
		for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
			size_t length = lengths[k] < 8 ? 8 : lengths[k];
			if (lengths[k] == 0 && round == 0)
				length = 0; /* one empty message: one header-only frame */
			uint8_t *message = malloc(length ? length : 1);
			CHECK(message != NULL);
			make_payload(message, length, sequence++);
			CHECK_OK(transport_send_owned(a, 2, message, length, err, sizeof err), err);
			expected_frames += frame_count(length, FRAME_DEFAULT_DATAGRAM);
			if (k % 3 == 0) {
				send_payload(a, 2, 3000, sequence++);
				expected_frames += frame_count(3000, FRAME_DEFAULT_DATAGRAM);
			}
		}
		flush(a);
		POLL_UNTIL(b, &in, in.count == sequence);
	}
	uint8_t *refused = malloc(100);
	CHECK(refused != NULL);
	CHECK(transport_send_owned(a, 9, refused, 100, err, sizeof err) == -EHOSTUNREACH);
	/* one frame queued, its message kept until the transport closes (freed there, or ASan reports it) */
	uint8_t *unsent = malloc(100);
	CHECK(unsent != NULL);
	make_payload(unsent, 100, sequence);
	CHECK_OK(transport_send_owned(a, 2, unsent, 100, err, sizeof err), err);
	CHECK_EQ(in.bad_content, 0);
	CHECK_EQ(in.count, sequence);
	for (uint64_t i = 0; i < sequence && i < 4096; i++)
		CHECK_EQ(in.sequences[i], i);
	struct transport_counters ca = counters(a), cb = counters(b);
	CHECK_EQ(ca.packets_out, expected_frames);
	CHECK_EQ(cb.packets_in, expected_frames);
	CHECK_EQ(ca.bytes_out, cb.bytes_in);
	CHECK_EQ(cb.drop_bad_crc + cb.drop_malformed + cb.duplicates, 0);
	transport_close(a);
	transport_close(b);
}

int main(void)
{
	test_name = "udp";
	RUN(test_bind);
	RUN(test_exchange);
	RUN(test_one_mebibyte);
	RUN(test_threads);
	RUN(test_ipv6);
	RUN(test_filters);
	RUN(test_send_errors);
	RUN(test_fault_layer);
	RUN(test_send_owned);
	fprintf(stderr, "ok\n");
	return 0;
}
