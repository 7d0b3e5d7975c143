/* dataplane/memory.c: the in-memory transport (memory.h). Each transport has an inbox (a FIFO of
 * datagrams) in the network, guarded by the network's lock; the send side builds frames in a private
 * list and moves them into the destination inboxes on flush. */
#include "memory.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport_core.h"

struct datagram {
	struct datagram *next;
	uint64_t to;
	size_t length;
	uint8_t data[];
};

struct memory_transport {
	struct transport base;
	struct memory_network *net;
	struct memory_transport *next_endpoint;
	uint64_t member_id;
	/* inbox: guarded by net->lock */
	struct datagram *inbox_head;
	struct datagram *inbox_tail;
	/* send side */
	struct datagram *queue_head;
	struct datagram *queue_tail;
	size_t queued;
	uint64_t *peers;
	size_t peer_count;
	size_t peer_capacity;
};

struct memory_network {
	pthread_mutex_t lock;
	pthread_cond_t arrived;
	struct memory_transport *endpoints;
	_Atomic uint64_t now_ns;
};

static const struct transport_ops memory_ops;

int memory_network_create(struct memory_network **out)
{
	struct memory_network *net = calloc(1, sizeof *net);
	if (!net)
		return -ENOMEM;
	pthread_mutex_init(&net->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&net->arrived, &attr);
	pthread_condattr_destroy(&attr);
	atomic_store(&net->now_ns, 1000000000u);
	*out = net;
	return 0;
}

void memory_network_destroy(struct memory_network *net)
{
	if (!net)
		return;
	pthread_cond_destroy(&net->arrived);
	pthread_mutex_destroy(&net->lock);
	free(net);
}

void memory_network_set_time(struct memory_network *net, uint64_t now_ns)
{
	atomic_store(&net->now_ns, now_ns);
}

uint64_t memory_network_time(const struct memory_network *net)
{
	return atomic_load(&((struct memory_network *)net)->now_ns);
}

static uint64_t network_clock(void *arg)
{
	return memory_network_time(arg);
}

static struct memory_transport *find_endpoint(struct memory_network *net, uint64_t id)
{
	for (struct memory_transport *m = net->endpoints; m; m = m->next_endpoint)
		if (m->member_id == id)
			return m;
	return NULL;
}

/* Appends d to its destination's inbox (or frees it: nobody listens). Caller holds net->lock. */
static void post(struct memory_network *net, struct datagram *d)
{
	struct memory_transport *m = find_endpoint(net, d->to);
	d->next = NULL;
	if (!m) {
		free(d);
		return;
	}
	if (m->inbox_tail)
		m->inbox_tail->next = d;
	else
		m->inbox_head = d;
	m->inbox_tail = d;
}

int memory_network_inject(struct memory_network *net, uint64_t to, const uint8_t *datagram, size_t length)
{
	struct datagram *d = malloc(sizeof *d + length);
	if (!d)
		return -ENOMEM;
	d->to = to;
	d->length = length;
	memcpy(d->data, datagram, length);
	pthread_mutex_lock(&net->lock);
	int rv = 0;
	if (find_endpoint(net, to)) {
		post(net, d);
		pthread_cond_broadcast(&net->arrived);
	} else {
		free(d);
		rv = -ENOENT;
	}
	pthread_mutex_unlock(&net->lock);
	return rv;
}

static void free_list(struct datagram *d)
{
	while (d) {
		struct datagram *next = d->next;
		free(d);
		d = next;
	}
}

int memory_transport_open(struct memory_network *net, const struct transport_config *config,
	struct transport **out, char *err, size_t errlen)
{
	struct memory_transport *m = calloc(1, sizeof *m);
	if (!m)
		return transport_error(err, errlen, -ENOMEM, "memory transport: out of memory");
	m->base.ops = &memory_ops;
	m->net = net;
	m->member_id = config->member_id;
	int rv = transport_core_create(config, network_clock, net, &m->base.core, err, errlen);
	if (rv < 0) {
		free(m);
		return rv;
	}
	pthread_mutex_lock(&net->lock);
	if (find_endpoint(net, config->member_id)) {
		pthread_mutex_unlock(&net->lock);
		transport_core_destroy(m->base.core);
		free(m);
		return transport_error(err, errlen, -EADDRINUSE, "memory transport: member %llx already open",
			(unsigned long long)config->member_id);
	}
	m->next_endpoint = net->endpoints;
	net->endpoints = m;
	pthread_mutex_unlock(&net->lock);
	*out = &m->base;
	return 0;
}

static void memory_close(struct transport *t)
{
	struct memory_transport *m = (struct memory_transport *)t;
	struct memory_network *net = m->net;
	pthread_mutex_lock(&net->lock);
	for (struct memory_transport **p = &net->endpoints; *p; p = &(*p)->next_endpoint) {
		if (*p == m) {
			*p = m->next_endpoint;
			break;
		}
	}
	pthread_mutex_unlock(&net->lock);
	free_list(m->inbox_head);
	free_list(m->queue_head);
	free(m->peers);
	transport_core_destroy(m->base.core);
	free(m);
}

static int memory_fd(const struct transport *t)
{
	(void)t;
	return -1;
}

static int memory_local_address(const struct transport *t, char *host, size_t hostlen, uint16_t *port)
{
	(void)t;
	if (host && hostlen)
		snprintf(host, hostlen, "memory");
	if (port)
		*port = 0;
	return 0;
}

static long find_peer(const struct memory_transport *m, uint64_t id)
{
	for (size_t i = 0; i < m->peer_count; i++)
		if (m->peers[i] == id)
			return (long)i;
	return -1;
}

static int memory_add_peer(struct transport *t, uint64_t id, const char *host, uint16_t port, char *err,
	size_t errlen)
{
	struct memory_transport *m = (struct memory_transport *)t;
	(void)host;
	(void)port;
	if (find_peer(m, id) >= 0)
		return 0;
	if (m->peer_count == m->peer_capacity) {
		size_t capacity = m->peer_capacity ? m->peer_capacity * 2 : 8;
		uint64_t *grown = realloc(m->peers, capacity * sizeof *grown);
		if (!grown)
			return transport_error(err, errlen, -ENOMEM, "peer %llx: out of memory",
				(unsigned long long)id);
		m->peers = grown;
		m->peer_capacity = capacity;
	}
	m->peers[m->peer_count++] = id;
	return 0;
}

static int memory_remove_peer(struct transport *t, uint64_t id)
{
	struct memory_transport *m = (struct memory_transport *)t;
	long i = find_peer(m, id);
	if (i < 0)
		return -ENOENT;
	m->peers[i] = m->peers[--m->peer_count];
	return 0;
}

static int memory_flush(struct transport *t, char *err, size_t errlen)
{
	struct memory_transport *m = (struct memory_transport *)t;
	(void)err;
	(void)errlen;
	if (!m->queue_head)
		return 0;
	uint64_t packets = 0, bytes = 0;
	pthread_mutex_lock(&m->net->lock);
	struct datagram *d = m->queue_head;
	while (d) {
		struct datagram *next = d->next;
		packets++;
		bytes += d->length;
		post(m->net, d);
		d = next;
	}
	pthread_cond_broadcast(&m->net->arrived);
	pthread_mutex_unlock(&m->net->lock);
	m->queue_head = m->queue_tail = NULL;
	m->queued = 0;
	transport_core_count(m->base.core, TRANSPORT_COUNTER_packets_out, packets);
	transport_core_count(m->base.core, TRANSPORT_COUNTER_bytes_out, bytes);
	return 0;
}

static int memory_send(struct transport *t, uint64_t to, const uint8_t *data, size_t length, char *err,
	size_t errlen)
{
	struct memory_transport *m = (struct memory_transport *)t;
	struct transport_core *core = m->base.core;
	struct frame_address address;
	uint16_t count;
	int rv = transport_core_prepare(core, to, find_peer(m, to) >= 0, length, &address, &count, err, errlen);
	if (rv < 0)
		return rv;
	size_t max = core->config.max_datagram;
	for (uint16_t i = 0; i < count; i++) {
		if (m->queued == core->config.send_queue)
			memory_flush(t, err, errlen);
		struct datagram *d = malloc(sizeof *d + max);
		if (!d) {
			transport_core_count(core, TRANSPORT_COUNTER_drop_send_error, (uint64_t)(count - i));
			return transport_error(err, errlen, -ENOMEM, "send to member %llx: out of memory",
				(unsigned long long)to);
		}
		d->next = NULL;
		d->to = to;
		d->length = transport_core_encode(core, to, &address, data, length, count, i, d->data, max);
		if (d->length == 0) {
			free(d);
			transport_core_count(core, TRANSPORT_COUNTER_drop_send_error, (uint64_t)(count - i));
			return transport_error(err, errlen, -EIO, "send to member %llx: the frame's MAC could not be "
				"computed", (unsigned long long)to);
		}
		if (m->queue_tail)
			m->queue_tail->next = d;
		else
			m->queue_head = d;
		m->queue_tail = d;
		m->queued++;
	}
	return 0;
}

static int memory_poll(struct transport *t, int timeout_ms, transport_deliver_fn deliver, void *arg, char *err,
	size_t errlen)
{
	struct memory_transport *m = (struct memory_transport *)t;
	struct memory_network *net = m->net;
	struct transport_core *core = m->base.core;
	(void)err;
	(void)errlen;
	transport_core_begin(core, deliver, arg);
	transport_core_tick(core, memory_network_time(net));
	pthread_mutex_lock(&net->lock);
	if (!m->inbox_head && timeout_ms != 0 && core->delivered == 0) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		if (timeout_ms > 0) {
			until.tv_sec += timeout_ms / 1000;
			until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
		}
		while (!m->inbox_head) {
			int rv = timeout_ms > 0 ? pthread_cond_timedwait(&net->arrived, &net->lock, &until) :
				pthread_cond_wait(&net->arrived, &net->lock);
			if (rv == ETIMEDOUT)
				break;
		}
	}
	struct datagram *d = m->inbox_head;
	m->inbox_head = m->inbox_tail = NULL;
	pthread_mutex_unlock(&net->lock);
	uint64_t now = memory_network_time(net);
	while (d) {
		struct datagram *next = d->next;
		transport_core_receive(core, d->data, d->length, now);
		free(d);
		d = next;
	}
	transport_core_tick(core, now);
	return transport_core_end(core);
}

static const struct transport_ops memory_ops = {
	.name = "memory",
	.add_peer = memory_add_peer,
	.remove_peer = memory_remove_peer,
	.send = memory_send,
	.flush = memory_flush,
	.poll = memory_poll,
	.fd = memory_fd,
	.local_address = memory_local_address,
	.close = memory_close,
};
