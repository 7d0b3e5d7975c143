/* tests/net/net_peer.c: one end of a two-process transport test on a real L2 segment (tests/net/01-*.sh).
 *
 *   net-peer echo  --dataplane dpdk|udp [--dpdk-args ARGS] --listen IP:PORT --id N --cluster C
 *                  --peer ID=IP:PORT [--seconds S]
 *   net-peer ping  ... --peer ID=IP:PORT [--sizes 64,1300,4096,65536,1048576] [--count N]
 *
 * echo answers every message with the same bytes until it gets the one-byte message 'q' (or S seconds
 * pass). ping sends COUNT messages of each size one at a time, waits for each echo, checks its bytes and
 * prints round trips (min/p50/max per size); it exits 0 only when every echo came back intact, then sends
 * 'q' to its peer. One thread plays both transport roles, as transport.h allows. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport.h"
#include "udp.h"
#ifdef QUORUMD_HAVE_DPDK
#include "dpdk.h"
#endif

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static int split_host_port(const char *text, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon = strrchr(text, ':');
	if (!colon || (size_t)(colon - text) >= hostlen)
		return -1;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	*port = (uint16_t)atoi(colon + 1);
	return 0;
}

struct echo_state {
	struct transport *t;
	bool quit;
	uint64_t echoed;
};

static void echo_deliver(void *arg, const struct transport_message *m)
{
	struct echo_state *s = arg;
	if (m->length == 1 && m->data[0] == 'q') {
		s->quit = true;
		return;
	}
	char err[256];
	if (transport_send(s->t, m->from, m->data, m->length, err, sizeof err) < 0)
		fprintf(stderr, "net-peer echo: %s\n", err);
	s->echoed++;
}

struct ping_state {
	uint64_t expect_seq;
	size_t expect_length;
	bool got;
	bool bad;
	uint8_t *check;
};

static void ping_deliver(void *arg, const struct transport_message *m)
{
	struct ping_state *s = arg;
	if (m->length != s->expect_length || m->length < 8) {
		fprintf(stderr, "net-peer ping: echo of %zu bytes, expected %zu\n", m->length, s->expect_length);
		return; /* maybe a late duplicate of an earlier size */
	}
	uint64_t seq;
	memcpy(&seq, m->data, 8);
	if (seq != s->expect_seq)
		return; /* an old echo */
	fill(s->check, m->length, seq);
	memcpy(s->check, &seq, 8);
	if (memcmp(s->check, m->data, m->length) != 0) {
		fprintf(stderr, "net-peer ping: echo %llu of %zu bytes differs\n", (unsigned long long)seq, m->length);
		s->bad = true;
	}
	s->got = true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: net-peer echo|ping --dataplane dpdk|udp [--dpdk-args ARGS] --listen IP:PORT "
			"--id N --cluster C [--peer ID=IP:PORT] [--sizes LIST] [--count N] [--seconds S]\n");
		return 2;
	}
	const char *mode = argv[1], *dataplane = "udp", *dpdk_args = "", *listen = NULL, *peer = NULL;
	const char *sizes = "64,1300,4096,65536,1048576";
	uint64_t id = 1, cluster = 7;
	int count = 20, seconds = 60;
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "--dataplane"))
			dataplane = v;
		else if (!strcmp(k, "--dpdk-args"))
			dpdk_args = v;
		else if (!strcmp(k, "--listen"))
			listen = v;
		else if (!strcmp(k, "--peer"))
			peer = v;
		else if (!strcmp(k, "--id"))
			id = strtoull(v, NULL, 0);
		else if (!strcmp(k, "--cluster"))
			cluster = strtoull(v, NULL, 0);
		else if (!strcmp(k, "--sizes"))
			sizes = v;
		else if (!strcmp(k, "--count"))
			count = atoi(v);
		else if (!strcmp(k, "--seconds"))
			seconds = atoi(v);
		else {
			fprintf(stderr, "net-peer: unknown option %s\n", k);
			return 2;
		}
	}
	char host[64];
	uint16_t port;
	if (!listen || split_host_port(listen, host, sizeof host, &port) < 0) {
		fprintf(stderr, "net-peer: --listen IP:PORT is required\n");
		return 2;
	}
	struct transport_config config;
	transport_config_init(&config);
	config.cluster_id = cluster;
	config.member_id = id;
	struct transport *t = NULL;
	char err[512];
	int rv;
	if (!strcmp(dataplane, "dpdk")) {
#ifdef QUORUMD_HAVE_DPDK
		struct dpdk_options options;
		dpdk_options_init(&options);
		options.eal_args = dpdk_args;
		rv = dpdk_transport_open(&config, &options, host, port, &t, err, sizeof err);
#else
		rv = -ENOTSUP;
		snprintf(err, sizeof err, "built without DPDK");
#endif
	} else {
		rv = udp_transport_open(&config, host, port, &t, err, sizeof err);
	}
	if (rv < 0) {
		fprintf(stderr, "net-peer: %s\n", err);
		return 1;
	}
	fprintf(stderr, "net-peer %s: %s transport on %s:%u, member %llu\n", mode, transport_name(t), host, port,
		(unsigned long long)id);
	int status = 0;
	uint64_t peer_id = 0;
	if (peer) {
		char peer_host[64];
		uint16_t peer_port;
		const char *eq = strchr(peer, '=');
		if (!eq || split_host_port(eq + 1, peer_host, sizeof peer_host, &peer_port) < 0) {
			fprintf(stderr, "net-peer: --peer ID=IP:PORT\n");
			return 2;
		}
		peer_id = strtoull(peer, NULL, 0);
		if (transport_add_peer(t, peer_id, peer_host, peer_port, err, sizeof err) < 0) {
			fprintf(stderr, "net-peer: %s\n", err);
			return 1;
		}
	}
	if (!strcmp(mode, "echo")) {
		struct echo_state s = {.t = t};
		uint64_t end = now_ns() + (uint64_t)seconds * 1000000000u;
		while (!s.quit && now_ns() < end) {
			transport_poll(t, 50, echo_deliver, &s, err, sizeof err);
			transport_flush(t, err, sizeof err);
		}
		fprintf(stderr, "net-peer echo: echoed %llu messages%s\n", (unsigned long long)s.echoed,
			s.quit ? "" : " (time limit)");
		status = s.quit ? 0 : 1;
	} else {
		if (!peer_id) {
			fprintf(stderr, "net-peer: ping needs --peer ID=IP:PORT\n");
			return 2;
		}
		printf("%10s %8s %10s %10s %10s %8s\n", "bytes", "frames", "min us", "p50 us", "max us", "retries");
		uint64_t seq = 1;
		char list[256];
		snprintf(list, sizeof list, "%s", sizes);
		for (char *save = NULL, *item = strtok_r(list, ",", &save); item && !status;
			item = strtok_r(NULL, ",", &save)) {
			size_t size = strtoull(item, NULL, 0);
			if (size < 8)
				size = 8;
			uint8_t *message = malloc(size), *check = malloc(size);
			uint64_t *rtt = calloc((size_t)count, sizeof *rtt);
			int retries = 0;
			for (int k = 0; k < count && !status; k++, seq++) {
				fill(message, size, seq);
				memcpy(message, &seq, 8);
				struct ping_state s = {.expect_seq = seq, .expect_length = size, .check = check};
				uint64_t start = now_ns(), give_up = start + 10000000000ull;
				/* Resend every second until the echo comes (the first frames may wait for ARP). */
				while (!s.got && now_ns() < give_up) {
					if (transport_send(t, peer_id, message, size, err, sizeof err) < 0 ||
						transport_flush(t, err, sizeof err) < 0)
						fprintf(stderr, "net-peer ping: %s\n", err);
					uint64_t resend = now_ns() + 1000000000u;
					while (!s.got && now_ns() < resend)
						transport_poll(t, 10, ping_deliver, &s, err, sizeof err);
					if (!s.got)
						retries++;
				}
				rtt[k] = now_ns() - start;
				if (!s.got || s.bad) {
					fprintf(stderr, "net-peer ping: message %llu of %zu bytes: %s\n", (unsigned long long)seq,
						size, s.bad ? "corrupted echo" : "no echo within 10 s");
					status = 1;
				}
			}
			if (!status) {
				qsort(rtt, (size_t)count, sizeof *rtt, cmp_u64);
				size_t frames = (size + 1400 - 72 - 1) / (1400 - 72);
				printf("%10zu %8zu %10.0f %10.0f %10.0f %8d\n", size, frames, rtt[0] / 1e3,
					rtt[count / 2] / 1e3, rtt[count - 1] / 1e3, retries);
			}
			free(message);
			free(check);
			free(rtt);
		}
		uint8_t q = 'q';
		for (int k = 0; k < 3; k++) {
			transport_send(t, peer_id, &q, 1, err, sizeof err);
			transport_flush(t, err, sizeof err);
		}
		transport_poll(t, 100, NULL, NULL, err, sizeof err);
	}
	struct transport_counters c = transport_counters(t);
	fprintf(stderr, "net-peer %s counters:", mode);
	for (size_t i = 0; i < transport_counter_count(); i++) {
		uint64_t v = transport_counter_value(&c, i);
		if (v)
			fprintf(stderr, " %s=%llu", transport_counter_name(i), (unsigned long long)v);
	}
	fprintf(stderr, "\n");
	transport_close(t);
	return status;
}
