/* tests/dataplane/udp_bench.c: messages/s and MB/s of the UDP transport over loopback by message size,
 * one sender thread and one receiver thread (the node's arrangement), with 1400-byte frames (Ethernet)
 * and 65507-byte frames (loopback). A program, not a test: it prints a table and decides nothing.
 * Run: build/tests/dataplane/dataplane-udp-bench [seconds per row, default 1] */
#include "udp.h"
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

struct receiver {
	struct transport *t;
	_Atomic uint64_t delivered;
	_Atomic bool stop;
};

static void count(void *arg, const struct transport_message *m)
{
	struct receiver *r = arg;
	(void)m;
	atomic_store_explicit(&r->delivered, atomic_load_explicit(&r->delivered, memory_order_relaxed) + 1,
		memory_order_release);
}

static void *receive_loop(void *arg)
{
	struct receiver *r = arg;
	while (!atomic_load(&r->stop))
		transport_poll(r->t, 10, count, r, NULL, 0);
	return NULL;
}

static struct transport *open_member(uint64_t id, size_t max_datagram)
{
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = 1;
	c.member_id = id;
	c.max_datagram = max_datagram;
	struct transport *t = NULL;
	char err[256];
	CHECK_OK(udp_transport_open(&c, "127.0.0.1", 0, &t, err, sizeof err), err);
	return t;
}

static void row(size_t size, size_t max_datagram, double seconds)
{
	struct transport *a = open_member(1, max_datagram);
	static struct receiver r;
	memset(&r, 0, sizeof r);
	r.t = open_member(2, max_datagram);
	uint16_t port;
	transport_local_address(r.t, NULL, 0, &port);
	char err[256];
	CHECK_OK(transport_add_peer(a, 2, "127.0.0.1", port, err, sizeof err), err);
	int rcvbuf, sndbuf;
	udp_transport_buffers(r.t, &rcvbuf, &sndbuf);
	size_t frames = frame_count(size, max_datagram);
	/* Keep what is in flight within half the receive buffer (kernel cost per datagram ~ size + 900). */
	uint64_t per_message = frames * (max_datagram + 900);
	uint64_t window = (uint64_t)rcvbuf / 2 / per_message;
	if (window < 1)
		window = 1;
	uint8_t *message = calloc(1, size);
	pthread_t thread;
	pthread_create(&thread, NULL, receive_loop, &r);
	uint64_t sent = 0, start = test_now_ns(), end = start + (uint64_t)(seconds * 1e9);
	while (test_now_ns() < end) {
		while (sent - atomic_load_explicit(&r.delivered, memory_order_acquire) >= window) {
			if (test_now_ns() > end + 2000000000ull)
				break;
			sched_yield();
		}
		transport_send(a, 2, message, size, NULL, 0);
		sent++;
		if (sent % 32 == 0 || sent - atomic_load(&r.delivered) >= window)
			transport_flush(a, NULL, 0);
	}
	transport_flush(a, NULL, 0);
	uint64_t until = test_now_ns() + 2000000000ull;
	while (atomic_load(&r.delivered) < sent && test_now_ns() < until)
		sched_yield();
	double elapsed = (double)(test_now_ns() - start) / 1e9;
	atomic_store(&r.stop, true);
	pthread_join(thread, NULL);
	uint64_t delivered = atomic_load(&r.delivered);
	printf("%9zu %6zu %6zu %8llu %12.0f %10.1f %12.0f %8llu\n", size, max_datagram, frames,
		(unsigned long long)window, delivered / elapsed, delivered * (double)size / elapsed / 1e6,
		delivered * (double)frames / elapsed, (unsigned long long)(sent - delivered));
	free(message);
	transport_close(a);
	transport_close(r.t);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0;
	printf("UDP transport over loopback, sender and receiver threads, %.1f s per row\n", seconds);
	printf("%9s %6s %6s %8s %12s %10s %12s %8s\n", "bytes", "frame", "frames", "window", "messages/s", "MB/s",
		"frames/s", "lost");
	size_t sizes[] = {64, 512, 1300, 4096, 16384, 65536, 1u << 20};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
		row(sizes[i], FRAME_DEFAULT_DATAGRAM, seconds);
	for (size_t i = 3; i < sizeof sizes / sizeof *sizes; i++)
		row(sizes[i], FRAME_MAX_DATAGRAM, seconds);
	return 0;
}
