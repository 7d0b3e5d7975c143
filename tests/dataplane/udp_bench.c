/* tests/dataplane/udp_bench.c: messages/s and MB/s of the UDP transport over loopback by message size,
 * one sender thread and one receiver thread (the node's arrangement), with 1400-byte frames (Ethernet)
 * and 65507-byte frames (loopback). A program, not a test: it prints a table and decides nothing.
 * Run: build/tests/dataplane/dataplane-udp-bench [seconds per row, default 1] [peer key file | aead | owned]
 * With a key file both members seal and check every frame (--peer-frame-key-file), and the MAC's own cost per
 * frame (seal on one side plus verify on the other, one thread) is printed first. With "aead" frames are
 * sealed with AES-256-GCM as with peer TLS (frame_seal.h; fixed session keys installed as a handshake would),
 * and the seal and open cost per frame is printed first. With "owned" each message is handed over with
 * transport_send_owned (a fresh malloc each, left unwritten: what is measured is the transport's work), so
 * plain frames go out as a header and the fragment in place instead of a copy; compare with a plain run.
 * Rows at 16 KiB frames (what loopback members use) sit between the two. */
#include "udp.h"
#include "frame_mac.h"
#include "frame_seal.h"
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>

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

static const char *key_file;
static bool aead;
static bool owned;

static uint64_t thread_cpu_ns(void);

/* CPU ns per frame to seal and to open frames of each size with AES-256-GCM, one thread. */
static void aead_cost(void)
{
	uint8_t key[FRAME_SEAL_KEY_SIZE];
	memset(key, 7, sizeof key);
	struct frame_cipher *sealer, *opener;
	CHECK_OK(frame_cipher_create(key, true, &sealer), "sealer");
	CHECK_OK(frame_cipher_create(key, false, &opener), "opener");
	static uint8_t message[FRAME_MAX_DATAGRAM], frame[FRAME_MAX_DATAGRAM], copy[FRAME_MAX_DATAGRAM],
		plain[FRAME_MAX_DATAGRAM];
	size_t sizes[] = {FRAME_HEADER_SIZE + 64, FRAME_DEFAULT_DATAGRAM, 9000, FRAME_MAX_DATAGRAM};
	printf("AES-256-GCM per frame, CPU time (seal in place; open into another buffer), one thread:\n");
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		struct frame_address address = {.cluster_id = 1, .from = 1, .to = 2, .message_id = 1};
		size_t length = sizes[i] - FRAME_HEADER_SIZE;
		size_t size = frame_encode(&address, message, length, 1, 0, frame, sizeof frame);
		unsigned rounds = (unsigned)(400000000u / sizes[i]);
		uint64_t start = thread_cpu_ns();
		for (unsigned r = 0; r < rounds; r++)
			frame_seal(sealer, r + 1, frame, size);
		uint64_t sealed = thread_cpu_ns();
		memcpy(copy, frame, size);
		unsigned good = 0;
		for (unsigned r = 0; r < rounds; r++)
			good += frame_open(opener, copy, size, plain) == 0;
		uint64_t opened = thread_cpu_ns();
		CHECK_EQ(good, rounds);
		double seal_ns = (double)(sealed - start) / rounds, open_ns = (double)(opened - sealed) / rounds;
		printf("  %6zu-byte frame: seal %7.0f ns, open %7.0f ns (%.0f MB/s)\n", size, seal_ns, open_ns,
			(double)size / open_ns * 1e3);
	}
	frame_cipher_destroy(sealer);
	frame_cipher_destroy(opener);
}

/* This thread's CPU time: the machine may be shared, and wall time would count the others' turns. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU ns per frame to seal and to verify frames of each size, one thread, the context reused. */
static void mac_cost(void)
{
	uint8_t key[FRAME_MAC_KEY_SIZE];
	char err[512];
	CHECK_OK(frame_mac_load_key_file(key_file, key, err, sizeof err), err);
	struct frame_mac *mac;
	CHECK_OK(frame_mac_create(key, &mac), "frame_mac_create");
	static uint8_t message[FRAME_MAX_DATAGRAM], frame[FRAME_MAX_DATAGRAM];
	size_t sizes[] = {FRAME_HEADER_SIZE + 64, FRAME_DEFAULT_DATAGRAM, 9000, FRAME_MAX_DATAGRAM};
	printf("keyed BLAKE2b-128 per frame, CPU time (seal = MAC + CRC again; verify = MAC), one thread:\n");
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		struct frame_address address = {.cluster_id = 1, .from = 1, .to = 2, .message_id = 1};
		size_t length = sizes[i] - FRAME_HEADER_SIZE;
		size_t size = frame_encode(&address, message, length, 1, 0, frame, sizeof frame);
		unsigned rounds = (unsigned)(200000000u / sizes[i]);
		uint64_t start = thread_cpu_ns();
		for (unsigned r = 0; r < rounds; r++)
			frame_mac_seal(mac, frame, size);
		uint64_t sealed = thread_cpu_ns();
		unsigned good = 0;
		for (unsigned r = 0; r < rounds; r++)
			good += frame_mac_verify(mac, frame, size);
		uint64_t verified = thread_cpu_ns();
		CHECK_EQ(good, rounds);
		double seal_ns = (double)(sealed - start) / rounds, verify_ns = (double)(verified - sealed) / rounds;
		printf("  %6zu-byte frame: seal %7.0f ns, verify %7.0f ns (%.0f MB/s)\n", size, seal_ns, verify_ns,
			(double)size / verify_ns * 1e3);
	}
	frame_mac_destroy(mac);
}

static struct transport *open_member(uint64_t id, size_t max_datagram)
{
	struct transport_config c;
	transport_config_init(&c);
	c.cluster_id = 1;
	c.member_id = id;
	c.max_datagram = max_datagram;
	c.frame_key_file = key_file;
	c.sealed = aead;
	struct transport *t = NULL;
	char err[256];
	CHECK_OK(udp_transport_open(&c, "127.0.0.1", 0, &t, err, sizeof err), err);
	return t;
}

/* CPU time of the whole process, user and system (the kernel's share of sending and receiving counts):
 * per frame it is the cost a member pays, whatever else runs on the machine. */
static uint64_t process_cpu_ns(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return ((uint64_t)u.ru_utime.tv_sec + (uint64_t)u.ru_stime.tv_sec) * 1000000000u +
		((uint64_t)u.ru_utime.tv_usec + (uint64_t)u.ru_stime.tv_usec) * 1000u;
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
	if (aead) {
		uint8_t one_way[TRANSPORT_SESSION_KEY_SIZE], other_way[TRANSPORT_SESSION_KEY_SIZE];
		memset(one_way, 1, sizeof one_way);
		memset(other_way, 2, sizeof other_way);
		CHECK(transport_install_session(a, 2, one_way, other_way) > 0);
		CHECK(transport_install_session(r.t, 1, other_way, one_way) > 0);
	}
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
	uint64_t cpu_start = process_cpu_ns();
	uint64_t sent = 0, start = test_now_ns(), end = start + (uint64_t)(seconds * 1e9);
	while (test_now_ns() < end) {
		while (sent - atomic_load_explicit(&r.delivered, memory_order_acquire) >= window) {
			if (test_now_ns() > end + 2000000000ull)
				break;
			sched_yield();
		}
		if (owned) {
			uint8_t *copy = malloc(size ? size : 1);
			CHECK(copy != NULL);
			transport_send_owned(a, 2, copy, size, NULL, 0);
		} else {
			transport_send(a, 2, message, size, NULL, 0);
		}
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
	double cpu_per_frame = delivered ? (double)(process_cpu_ns() - cpu_start) / 1e3 / ((double)delivered * frames) : 0;
	printf("%9zu %6zu %6zu %8llu %12.0f %10.1f %12.0f %8llu %10.2f\n", size, max_datagram, frames,
		(unsigned long long)window, delivered / elapsed, delivered * (double)size / elapsed / 1e6,
		delivered * (double)frames / elapsed, (unsigned long long)(sent - delivered), cpu_per_frame);
	free(message);
	transport_close(a);
	transport_close(r.t);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0;
	key_file = argc > 2 ? argv[2] : NULL;
	if (key_file && strcmp(key_file, "owned") == 0) {
		owned = true;
		key_file = NULL;
	} else if (key_file && strcmp(key_file, "aead") == 0) {
		aead = true;
		key_file = NULL;
		aead_cost();
	} else if (key_file) {
		mac_cost();
	}
	printf("UDP transport over loopback, sender and receiver threads, %.1f s per row, %s\n", seconds,
		aead ? "frames sealed with AES-256-GCM (peer TLS)" : key_file ? "frames sealed and checked (keyed BLAKE2b)" :
		owned ? "no key, messages handed over (transport_send_owned: frames point into them)" : "no key (no MAC)");
	printf("%9s %6s %6s %8s %12s %10s %12s %8s %10s\n", "bytes", "frame", "frames", "window", "messages/s", "MB/s",
		"frames/s", "lost", "cpu us/fr");
	size_t sizes[] = {64, 512, 1300, 4096, 16384, 65536, 1u << 20};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
		row(sizes[i], FRAME_DEFAULT_DATAGRAM, seconds);
	for (size_t i = 3; i < sizeof sizes / sizeof *sizes; i++)
		row(sizes[i], 16384, seconds);
	for (size_t i = 3; i < sizeof sizes / sizeof *sizes; i++)
		row(sizes[i], FRAME_MAX_DATAGRAM, seconds);
	return 0;
}
