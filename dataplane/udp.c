/* dataplane/udp.c: the kernel UDP transport (udp.h). Send-side state (peer table, frame queue, mmsghdrs)
 * and receive-side state (receive buffers, mmsghdrs) are separate structs so the two threads of the
 * contract in transport.h never touch the same memory; the socket is the only thing they share, and the
 * kernel serialises it. */
#include "udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport_core.h"

/* Big enough for any UDP datagram, so nothing is truncated. */
#define RECEIVE_SLOT 65536u
/* recvmmsg rounds per poll before returning, so the caller's loop gets a turn. */
#define RECEIVE_ROUNDS 16
/* How long flush waits for a full socket buffer to drain before dropping the rest. */
#define SEND_WAIT_MS 10

union udp_address {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

struct udp_peer {
	uint64_t id;
	union udp_address address;
	socklen_t address_length;
};

struct udp_send_side {
	struct udp_peer *peers;       /* unsorted; a cluster has a handful of members */
	size_t peer_count;
	size_t peer_capacity;
	size_t queued;                /* frames in the queue */
	uint8_t *frames;              /* send_queue slots of max_datagram bytes (a zero-copy frame uses 72) */
	struct mmsghdr *messages;
	struct iovec *iovecs;         /* two per slot: the frame (or its header), the fragment in the message */
	uint8_t **owned;              /* messages given with send_owned whose frames are queued: freed by flush */
	size_t owned_count;
	size_t owned_capacity;
	union udp_address *addresses;
	uint64_t *destinations;       /* member id per queued frame, for error messages */
};

struct udp_receive_side {
	uint8_t *buffers;             /* receive_batch slots of RECEIVE_SLOT bytes */
	struct mmsghdr *messages;
	struct iovec *iovecs;
};

struct udp_transport {
	struct transport base;
	int fd;
	int family;
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	struct udp_send_side tx;
	struct udp_receive_side rx;
};

static const struct transport_ops udp_ops;

static struct udp_transport *udp_of(struct transport *t)
{
	return (struct udp_transport *)t;
}

static const struct udp_transport *udp_of_const(const struct transport *t)
{
	return (const struct udp_transport *)t;
}

static const char *strip_brackets(const char *host, char *buffer, size_t size)
{
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < size) {
		memcpy(buffer, host + 1, n - 2);
		buffer[n - 2] = '\0';
		return buffer;
	}
	return host;
}

/* Resolves host:port for a socket of family (AF_UNSPEC: any). "what" names the address in errors. */
static int resolve(const char *what, const char *host, uint16_t port, int family, bool passive,
	union udp_address *out, socklen_t *out_length, char *err, size_t errlen)
{
	char buffer[256];
	const char *name = strip_brackets(host, buffer, sizeof buffer);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
	if (passive)
		hints.ai_flags |= AI_PASSIVE;
	char service[8];
	snprintf(service, sizeof service, "%u", port);
	struct addrinfo *list = NULL;
	int rv = getaddrinfo(*name ? name : NULL, service, &hints, &list);
	if (rv != 0)
		return transport_error(err, errlen, rv == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL,
			"%s %s:%u: %s", what, host, port, gai_strerror(rv));
	/* Prefer IPv6 for the wildcard (it takes IPv4 too), else the first answer. */
	struct addrinfo *pick = NULL;
	for (struct addrinfo *a = list; a; a = a->ai_next) {
		if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
			continue;
		if (family == AF_INET && a->ai_family != AF_INET)
			continue;
		if (!pick || (passive && !*name && a->ai_family == AF_INET6 && pick->ai_family != AF_INET6))
			pick = a;
	}
	if (!pick && family == AF_INET) {
		freeaddrinfo(list);
		return transport_error(err, errlen, -EAFNOSUPPORT,
			"%s %s:%u: IPv6 address, but the listen address is IPv4", what, host, port);
	}
	if (!pick) {
		freeaddrinfo(list);
		return transport_error(err, errlen, -EADDRNOTAVAIL, "%s %s:%u: no IPv4 or IPv6 address", what,
			host, port);
	}
	memset(out, 0, sizeof *out);
	if (family == AF_INET6 && pick->ai_family == AF_INET) {
		/* A dual-stack IPv6 socket reaches IPv4 peers through v4-mapped addresses. */
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)pick->ai_addr;
		out->v6.sin6_family = AF_INET6;
		out->v6.sin6_port = v4->sin_port;
		out->v6.sin6_addr.s6_addr[10] = 0xff;
		out->v6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&out->v6.sin6_addr.s6_addr[12], &v4->sin_addr, 4);
		*out_length = sizeof out->v6;
	} else {
		memcpy(out, pick->ai_addr, pick->ai_addrlen);
		*out_length = pick->ai_addrlen;
	}
	freeaddrinfo(list);
	return 0;
}

static void format_address(const union udp_address *a, char *host, size_t hostlen, uint16_t *port)
{
	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->v4.sin_addr, host, (socklen_t)hostlen);
		*port = ntohs(a->v4.sin_port);
	} else {
		inet_ntop(AF_INET6, &a->v6.sin6_addr, host, (socklen_t)hostlen);
		*port = ntohs(a->v6.sin6_port);
	}
}

static void set_buffer(int fd, int force_option, int option, size_t bytes)
{
	if (bytes == 0)
		return; /* the kernel's default */
	int value = bytes > INT32_MAX / 2 ? INT32_MAX / 2 : (int)bytes;
	if (setsockopt(fd, SOL_SOCKET, force_option, &value, sizeof value) < 0)
		(void)setsockopt(fd, SOL_SOCKET, option, &value, sizeof value); /* capped by rmem_max: fine */
}

static void free_owned(struct udp_transport *u)
{
	for (size_t i = 0; i < u->tx.owned_count; i++)
		free(u->tx.owned[i]);
	u->tx.owned_count = 0;
}

static void free_sides(struct udp_transport *u)
{
	free(u->tx.peers);
	free(u->tx.frames);
	free(u->tx.messages);
	free(u->tx.iovecs);
	free_owned(u);
	free(u->tx.owned);
	free(u->tx.addresses);
	free(u->tx.destinations);
	free(u->rx.buffers);
	free(u->rx.messages);
	free(u->rx.iovecs);
}

int udp_transport_open(const struct transport_config *config, const char *host, uint16_t port,
	struct transport **out, char *err, size_t errlen)
{
	struct udp_transport *u = calloc(1, sizeof *u);
	if (!u)
		return transport_error(err, errlen, -ENOMEM, "udp transport: out of memory");
	u->base.ops = &udp_ops;
	u->fd = -1;
	int rv = transport_core_create(config, NULL, NULL, &u->base.core, err, errlen);
	if (rv < 0) {
		free(u);
		return rv;
	}
	size_t queue = config->send_queue, batch = config->receive_batch;
	u->tx.frames = malloc(queue * config->max_datagram);
	u->tx.messages = calloc(queue, sizeof *u->tx.messages);
	u->tx.iovecs = calloc(2 * queue, sizeof *u->tx.iovecs);
	u->tx.addresses = calloc(queue, sizeof *u->tx.addresses);
	u->tx.destinations = calloc(queue, sizeof *u->tx.destinations);
	u->rx.buffers = malloc(batch * RECEIVE_SLOT);
	u->rx.messages = calloc(batch, sizeof *u->rx.messages);
	u->rx.iovecs = calloc(batch, sizeof *u->rx.iovecs);
	if (!u->tx.frames || !u->tx.messages || !u->tx.iovecs || !u->tx.addresses || !u->tx.destinations ||
		!u->rx.buffers || !u->rx.messages || !u->rx.iovecs) {
		rv = transport_error(err, errlen, -ENOMEM, "udp transport: out of memory for buffers");
		goto fail;
	}
	for (size_t i = 0; i < batch; i++) {
		u->rx.iovecs[i].iov_base = u->rx.buffers + i * RECEIVE_SLOT;
		u->rx.iovecs[i].iov_len = RECEIVE_SLOT;
		u->rx.messages[i].msg_hdr.msg_iov = &u->rx.iovecs[i];
		u->rx.messages[i].msg_hdr.msg_iovlen = 1;
	}

	union udp_address local;
	socklen_t local_length;
	char unbracketed[256];
	host = strip_brackets(host, unbracketed, sizeof unbracketed);
	rv = resolve("listen", host, port, AF_UNSPEC, true, &local, &local_length, err, errlen);
	if (rv < 0)
		goto fail;
	u->family = local.sa.sa_family;
	u->fd = socket(u->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0) {
		rv = transport_error(err, errlen, -errno, "socket %s: %s", u->family == AF_INET6 ? "IPv6" : "IPv4",
			strerror(errno));
		goto fail;
	}
	if (u->family == AF_INET6) {
		int off = 0;
		(void)setsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
	}
	set_buffer(u->fd, SO_RCVBUFFORCE, SO_RCVBUF, config->socket_buffer);
	set_buffer(u->fd, SO_SNDBUFFORCE, SO_SNDBUF, config->socket_buffer);
	if (bind(u->fd, &local.sa, local_length) < 0) {
		rv = transport_error(err, errlen, -errno, "bind %s%s%s:%u: %s", u->family == AF_INET6 ? "[" : "",
			host, u->family == AF_INET6 ? "]" : "", port, strerror(errno));
		goto fail;
	}
	socklen_t length = sizeof local;
	if (getsockname(u->fd, &local.sa, &length) < 0) {
		rv = transport_error(err, errlen, -errno, "getsockname: %s", strerror(errno));
		goto fail;
	}
	format_address(&local, u->host, sizeof u->host, &u->port);
	rv = transport_core_start_peer_tls(u->base.core, &u->base, u->host, u->port, err, errlen);
	if (rv < 0)
		goto fail;
	*out = &u->base;
	return 0;
fail:
	if (u->fd >= 0)
		close(u->fd);
	transport_core_destroy(u->base.core);
	free_sides(u);
	free(u);
	return rv;
}

int udp_transport_buffers(const struct transport *t, int *receive, int *send)
{
	if (t->ops != &udp_ops)
		return -EINVAL;
	int fd = udp_of_const(t)->fd;
	socklen_t length = sizeof *receive;
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, receive, &length) < 0)
		return -errno;
	length = sizeof *send;
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, send, &length) < 0)
		return -errno;
	return 0;
}

static void udp_close(struct transport *t)
{
	struct udp_transport *u = udp_of(t);
	close(u->fd);
	transport_core_destroy(u->base.core);
	free_sides(u);
	free(u);
}

static int udp_fd(const struct transport *t)
{
	return udp_of_const(t)->fd;
}

static int udp_local_address(const struct transport *t, char *host, size_t hostlen, uint16_t *port)
{
	const struct udp_transport *u = udp_of_const(t);
	if (host && hostlen)
		snprintf(host, hostlen, "%s", u->host);
	if (port)
		*port = u->port;
	return 0;
}

/* ---- send side ---- */

static struct udp_peer *find_peer(struct udp_transport *u, uint64_t id)
{
	for (size_t i = 0; i < u->tx.peer_count; i++)
		if (u->tx.peers[i].id == id)
			return &u->tx.peers[i];
	return NULL;
}

static int udp_add_peer(struct transport *t, uint64_t id, const char *host, uint16_t port, char *err,
	size_t errlen)
{
	struct udp_transport *u = udp_of(t);
	char what[48];
	snprintf(what, sizeof what, "peer %llx", (unsigned long long)id);
	union udp_address address;
	socklen_t length;
	int rv = resolve(what, host, port, u->family, false, &address, &length, err, errlen);
	if (rv < 0)
		return rv;
	struct udp_peer *peer = find_peer(u, id);
	if (!peer) {
		if (u->tx.peer_count == u->tx.peer_capacity) {
			size_t capacity = u->tx.peer_capacity ? u->tx.peer_capacity * 2 : 8;
			struct udp_peer *grown = realloc(u->tx.peers, capacity * sizeof *grown);
			if (!grown)
				return transport_error(err, errlen, -ENOMEM, "%s: out of memory", what);
			u->tx.peers = grown;
			u->tx.peer_capacity = capacity;
		}
		peer = &u->tx.peers[u->tx.peer_count++];
	}
	peer->id = id;
	peer->address = address;
	peer->address_length = length;
	transport_core_peer_address(u->base.core, id, host, port);
	return 0;
}

static int udp_remove_peer(struct transport *t, uint64_t id)
{
	struct udp_transport *u = udp_of(t);
	struct udp_peer *peer = find_peer(u, id);
	if (!peer)
		return -ENOENT;
	*peer = u->tx.peers[--u->tx.peer_count];
	transport_core_peer_removed(u->base.core, id);
	return 0;
}

static void describe_destination(const struct udp_transport *u, size_t i, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	uint16_t port = 0;
	format_address(&u->tx.addresses[i], host, sizeof host, &port);
	bool v6 = u->tx.addresses[i].sa.sa_family == AF_INET6;
	snprintf(out, size, "member %llx at %s%s%s:%u", (unsigned long long)u->tx.destinations[i],
		v6 ? "[" : "", host, v6 ? "]" : "", port);
}

static int udp_flush(struct transport *t, char *err, size_t errlen)
{
	struct udp_transport *u = udp_of(t);
	struct transport_core *core = u->base.core;
	size_t n = u->tx.queued, sent = 0;
	int first_error = 0;
	bool waited = false;
	while (sent < n) {
		size_t chunk = n - sent > 1024 ? 1024 : n - sent; /* UIO_MAXIOV caps one sendmmsg */
		int r = sendmmsg(u->fd, u->tx.messages + sent, (unsigned)chunk, 0);
		if (r > 0) {
			uint64_t bytes = 0;
			for (int i = 0; i < r; i++)
				bytes += u->tx.messages[sent + (size_t)i].msg_len;
			transport_core_count(core, TRANSPORT_COUNTER_packets_out, (uint64_t)r);
			transport_core_count(core, TRANSPORT_COUNTER_bytes_out, bytes);
			sent += (size_t)r;
			continue;
		}
		int e = r < 0 ? errno : EIO;
		if (e == EINTR)
			continue;
		if ((e == EAGAIN || e == ENOBUFS) && !waited) {
			/* Socket buffer full: give it one short chance to drain. */
			struct pollfd p = {.fd = u->fd, .events = POLLOUT};
			(void)poll(&p, 1, SEND_WAIT_MS);
			waited = true;
			continue;
		}
		char who[96];
		describe_destination(u, sent, who, sizeof who);
		if (!first_error)
			first_error = transport_error(err, errlen, -e, "sendmmsg to %s: %s", who, strerror(e));
		if (e == EAGAIN || e == ENOBUFS) {
			/* Still full after waiting: drop the rest, Raft retries. */
			transport_core_count(core, TRANSPORT_COUNTER_drop_send_error, n - sent);
			break;
		}
		/* This datagram is refused (unreachable network, ...): skip it, send the rest. */
		transport_core_count(core, TRANSPORT_COUNTER_drop_send_error, 1);
		sent++;
	}
	u->tx.queued = 0;
	free_owned(u);
	return first_error;
}

/* The send queue's next free slot, after a flush when the queue is full (the flush's error, if any and the first,
 * kept in *first_error). */
static size_t next_send_slot(struct transport *t, int *first_error, char *err, size_t errlen)
{
	struct udp_transport *u = udp_of(t);
	if (u->tx.queued == u->base.core->config.send_queue) {
		int rv = udp_flush(t, err, errlen);
		if (rv < 0 && !*first_error)
			*first_error = rv;
	}
	return u->tx.queued;
}

/* Queues the datagram whose iov_count pieces are in slot's iovecs, to peer. */
static void queue_send_slot(struct udp_transport *u, size_t slot, const struct udp_peer *peer, uint64_t to,
	size_t iov_count)
{
	u->tx.queued++;
	u->tx.addresses[slot] = peer->address;
	u->tx.destinations[slot] = to;
	struct msghdr *h = &u->tx.messages[slot].msg_hdr;
	memset(h, 0, sizeof *h);
	h->msg_name = &u->tx.addresses[slot];
	h->msg_namelen = peer->address_length;
	h->msg_iov = &u->tx.iovecs[2 * slot];
	h->msg_iovlen = iov_count;
}

static int udp_send(struct transport *t, uint64_t to, const uint8_t *data, size_t length, char *err,
	size_t errlen)
{
	struct udp_transport *u = udp_of(t);
	struct transport_core *core = u->base.core;
	const struct udp_peer *peer = find_peer(u, to);
	struct frame_address address;
	uint16_t count;
	int rv = transport_core_prepare(core, to, peer != NULL, length, &address, &count, err, errlen);
	if (rv < 0)
		return rv;
	size_t max = core->config.max_datagram;
	int first_error = 0;
	for (uint16_t i = 0; i < count; i++) {
		size_t slot = next_send_slot(t, &first_error, err, errlen);
		uint8_t *frame = u->tx.frames + slot * max;
		size_t size = transport_core_encode(core, to, &address, data, length, count, i, frame, max);
		if (size == 0) {
			/* Only a libcrypto failure gets here (the span and size were checked): the frame is not
			 * sent, Raft retries the message. */
			transport_core_count(core, TRANSPORT_COUNTER_drop_send_error, 1);
			if (!first_error)
				first_error = transport_error(err, errlen, -EIO,
					"send to member %llx: the frame's MAC could not be computed", (unsigned long long)to);
			continue;
		}
		struct iovec *iov = &u->tx.iovecs[2 * slot];
		iov[0].iov_base = frame;
		iov[0].iov_len = size;
		queue_send_slot(u, slot, peer, to, 1);
	}
	return first_error;
}

/* Plain frames straight from the message: each datagram is two pieces, the 72-byte header written into
 * its slot and the fragment where it lies in data, which the kernel copies once into the packet. data
 * stays alive until the flush that sends its last frame (a flush in the middle, when the queue fills,
 * frees only the messages registered before this one). A MAC or a seal needs the frame in one buffer:
 * those copy as udp_send does. */
static int udp_send_owned(struct transport *t, uint64_t to, uint8_t *data, size_t length, char *err,
	size_t errlen)
{
	struct udp_transport *u = udp_of(t);
	struct transport_core *core = u->base.core;
	if (core->sealed || core->send_mac) {
		int rv = udp_send(t, to, data, length, err, errlen);
		free(data);
		return rv;
	}
	const struct udp_peer *peer = find_peer(u, to);
	struct frame_address address;
	uint16_t count;
	int rv = transport_core_prepare(core, to, peer != NULL, length, &address, &count, err, errlen);
	if (rv < 0) {
		free(data);
		return rv;
	}
	if (u->tx.owned_count == u->tx.owned_capacity) {
		size_t capacity = u->tx.owned_capacity ? u->tx.owned_capacity * 2 : 64;
		uint8_t **grown = realloc(u->tx.owned, capacity * sizeof *grown);
		if (!grown) {
			rv = udp_send(t, to, data, length, err, errlen);
			free(data);
			return rv;
		}
		u->tx.owned = grown;
		u->tx.owned_capacity = capacity;
	}
	size_t max = core->config.max_datagram;
	int first_error = 0;
	for (uint16_t i = 0; i < count; i++) {
		size_t slot = next_send_slot(t, &first_error, err, errlen);
		uint8_t *header = u->tx.frames + slot * max;
		size_t offset, fragment;
		/* The span was checked by prepare; a failure here is a bug, and the frame is not sent. */
		if (frame_encode_header(&address, data, length, count, i, header, &offset, &fragment) != 0) {
			transport_core_count(core, TRANSPORT_COUNTER_drop_send_error, 1);
			if (!first_error)
				first_error = transport_error(err, errlen, -EIO, "send to member %llx: fragment %u of %u "
					"has no valid span", (unsigned long long)to, i, count);
			continue;
		}
		struct iovec *iov = &u->tx.iovecs[2 * slot];
		iov[0].iov_base = header;
		iov[0].iov_len = FRAME_HEADER_SIZE;
		iov[1].iov_base = data + offset;
		iov[1].iov_len = fragment;
		queue_send_slot(u, slot, peer, to, fragment ? 2 : 1);
	}
	u->tx.owned[u->tx.owned_count++] = data;
	return first_error;
}

/* ---- receive side ---- */

static int udp_poll(struct transport *t, int timeout_ms, transport_deliver_fn deliver, void *arg, char *err,
	size_t errlen)
{
	struct udp_transport *u = udp_of(t);
	struct transport_core *core = u->base.core;
	unsigned batch = core->config.receive_batch;
	transport_core_begin(core, deliver, arg);
	uint64_t now = transport_core_now(core);
	transport_core_tick(core, now);
	bool waited = false;
	int rv = 0;
	for (int round = 0; round < RECEIVE_ROUNDS; round++) {
		int n = recvmmsg(u->fd, u->rx.messages, batch, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				rv = transport_error(err, errlen, -errno, "recvmmsg on %s:%u: %s", u->host, u->port,
					strerror(errno));
				break;
			}
			if (waited || round > 0 || timeout_ms == 0 || core->delivered > 0)
				break;
			/* Nothing yet: wait for the socket, or for the next delayed fault-layer frame. */
			int wait = timeout_ms;
			uint64_t deadline = transport_core_deadline(core);
			if (deadline != UINT64_MAX) {
				uint64_t ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
				if (wait < 0 || ms < (uint64_t)wait)
					wait = (int)ms;
			}
			struct pollfd p = {.fd = u->fd, .events = POLLIN};
			int ready = poll(&p, 1, wait);
			waited = true;
			now = transport_core_now(core);
			if (ready <= 0)
				break;
			round--; /* the wait is not a round */
			continue;
		}
		now = transport_core_now(core);
		for (int i = 0; i < n; i++) {
			struct mmsghdr *m = &u->rx.messages[i];
			if (m->msg_hdr.msg_flags & MSG_TRUNC)
				continue; /* cannot happen with 64 KiB slots */
			transport_core_receive(core, u->rx.iovecs[i].iov_base, m->msg_len, now);
			m->msg_hdr.msg_flags = 0;
		}
		transport_core_tick(core, now);
		if ((unsigned)n < batch)
			break;
	}
	transport_core_tick(core, now);
	int delivered = transport_core_end(core);
	return rv < 0 ? rv : delivered;
}

static const struct transport_ops udp_ops = {
	.name = "udp",
	.add_peer = udp_add_peer,
	.remove_peer = udp_remove_peer,
	.send = udp_send,
	.flush = udp_flush,
	.send_owned = udp_send_owned,
	.poll = udp_poll,
	.fd = udp_fd,
	.local_address = udp_local_address,
	.close = udp_close,
};
