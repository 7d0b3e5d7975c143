/* control/grpc/grpc_server.c: listeners, the server's epoll fd, connections (accept, read, write,
 * close) and the table that finds calls by id. The protocols live in grpc_http2.c and grpc_http1.c;
 * this file only moves bytes and decides, from a connection's first bytes, which of them it speaks.
 *
 * epoll is level-triggered: a connection is watched for input unless its output is above the
 * high-water mark, and for output while bytes wait for the socket. A call answered from outside
 * grpc_server_process (after a round through Raft) marks its connection dirty and watches for output,
 * so the server's fd becomes readable and the next grpc_server_process writes the answer. */
#include "alloc.h"
#include "grpc_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char http2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define HTTP2_PREFACE_LENGTH (sizeof http2_preface - 1)

uint64_t grpc_now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* ---- buffers ---- */

int grpc_buffer_append(struct grpc_buffer *buffer, const void *bytes, size_t length)
{
	if (length == 0)
		return 0;
	if (buffer->capacity - buffer->end < length) {
		size_t used = buffer->end - buffer->start;
		/* Slide the unread bytes to the front before growing: output buffers are drained from the
		 * front all the time and would otherwise creep forward forever. */
		if (buffer->start > 0 && buffer->capacity - used >= length && buffer->start >= used) {
			memmove(buffer->data, buffer->data + buffer->start, used);
		} else {
			size_t capacity = buffer->capacity ? buffer->capacity : 4096;
			while (capacity - used < length)
				capacity *= 2;
			uint8_t *data = malloc(capacity);
			if (data == NULL)
				return -1;
			if (used > 0)
				memcpy(data, buffer->data + buffer->start, used);
			free(buffer->data);
			buffer->data = data;
			buffer->capacity = capacity;
		}
		buffer->start = 0;
		buffer->end = used;
	}
	memcpy(buffer->data + buffer->end, bytes, length);
	buffer->end += length;
	return 0;
}

int grpc_buffer_reserve(struct grpc_buffer *buffer, size_t length)
{
	/* A buffer in use grows in grpc_buffer_append as before. */
	if (buffer->capacity != 0)
		return 0;
	size_t capacity = (length + 63) & ~(size_t)63;
	buffer->data = malloc(capacity ? capacity : 64);
	if (buffer->data == NULL)
		return -1;
	buffer->capacity = capacity ? capacity : 64;
	buffer->start = buffer->end = 0;
	return 0;
}

void grpc_buffer_consume(struct grpc_buffer *buffer, size_t length)
{
	buffer->start += length;
	if (buffer->start == buffer->end)
		buffer->start = buffer->end = 0;
}

void grpc_buffer_free(struct grpc_buffer *buffer)
{
	free(buffer->data);
	memset(buffer, 0, sizeof *buffer);
}

/* ---- the call table ---- */

static size_t table_slot(const struct grpc_server *server, uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (server->call_table_size - 1);
}

void grpc_server_table_insert(struct grpc_server *server, struct grpc_call *call)
{
	if (server->call_count >= server->call_table_size) {
		size_t size = server->call_table_size * 2;
		struct grpc_call **table = calloc(size, sizeof *table);
		if (table != NULL) {
			struct grpc_call **old = server->call_table;
			size_t old_size = server->call_table_size;
			server->call_table = table;
			server->call_table_size = size;
			for (size_t i = 0; i < old_size; i++) {
				struct grpc_call *entry = old[i];
				while (entry != NULL) {
					struct grpc_call *next = entry->table_next;
					size_t slot = table_slot(server, entry->id);
					entry->table_next = table[slot];
					table[slot] = entry;
					entry = next;
				}
			}
			free(old);
		}
		/* On allocation failure the chains just grow longer. */
	}
	size_t slot = table_slot(server, call->id);
	call->table_next = server->call_table[slot];
	server->call_table[slot] = call;
	call->in_table = true;
	server->call_count++;
}

void grpc_server_table_remove(struct grpc_server *server, struct grpc_call *call)
{
	if (!call->in_table)
		return;
	struct grpc_call **link = &server->call_table[table_slot(server, call->id)];
	while (*link != NULL && *link != call)
		link = &(*link)->table_next;
	if (*link == call)
		*link = call->table_next;
	call->table_next = NULL;
	call->in_table = false;
	server->call_count--;
}

struct grpc_call *grpc_server_find_call(struct grpc_server *server, uint64_t call_id)
{
	if (server == NULL || call_id == 0)
		return NULL;
	struct grpc_call *call = server->call_table[table_slot(server, call_id)];
	while (call != NULL && call->id != call_id)
		call = call->table_next;
	return call;
}

/* ---- listeners ---- */

/* "http://IP:PORT", "https://localhost:PORT", "http://[IPv6]:PORT", an optional trailing '/'. */
static int parse_listen_url(const char *url, struct sockaddr_storage *address, socklen_t *address_length,
	bool *secure, char *err, size_t errlen)
{
	const char *host;
	if (strncmp(url, "http://", 7) == 0) {
		*secure = false;
		host = url + 7;
	} else if (strncmp(url, "https://", 8) == 0) {
		*secure = true;
		host = url + 8;
	} else if (strncmp(url, "unix://", 7) == 0 || strncmp(url, "unixs://", 8) == 0) {
		snprintf(err, errlen, "bad listen URL %s: unix socket client URLs are not served", url);
		return -1;
	} else {
		snprintf(err, errlen, "bad listen URL %s: the scheme must be http:// or https://", url);
		return -1;
	}
	const char *host_end;
	const char *colon;
	char host_text[64];
	bool ipv6 = false;
	if (*host == '[') {
		host++;
		host_end = strchr(host, ']');
		if (host_end == NULL || host_end[1] != ':') {
			snprintf(err, errlen, "bad listen URL %s: expected [IPv6]:port", url);
			return -1;
		}
		colon = host_end + 1;
		ipv6 = true;
	} else {
		colon = strrchr(host, ':');
		if (colon == NULL) {
			snprintf(err, errlen, "bad listen URL %s: missing port", url);
			return -1;
		}
		host_end = colon;
	}
	size_t host_length = (size_t)(host_end - host);
	if (host_length == 0 || host_length >= sizeof host_text) {
		snprintf(err, errlen, "bad listen URL %s: bad host", url);
		return -1;
	}
	memcpy(host_text, host, host_length);
	host_text[host_length] = '\0';

	char *port_end;
	errno = 0;
	long port = strtol(colon + 1, &port_end, 10);
	if (port_end == colon + 1 || errno != 0 || port < 0 || port > 65535 ||
		!(*port_end == '\0' || (port_end[0] == '/' && port_end[1] == '\0'))) {
		snprintf(err, errlen, "bad listen URL %s: bad port", url);
		return -1;
	}

	memset(address, 0, sizeof *address);
	if (!ipv6 && strcmp(host_text, "localhost") == 0)
		strcpy(host_text, "127.0.0.1");
	if (ipv6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)address;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host_text, &in6->sin6_addr) != 1) {
			snprintf(err, errlen, "bad listen URL %s: %s is not an IPv6 address", url, host_text);
			return -1;
		}
		*address_length = sizeof *in6;
	} else {
		struct sockaddr_in *in4 = (struct sockaddr_in *)address;
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host_text, &in4->sin_addr) != 1) {
			snprintf(err, errlen, "bad listen URL %s: the host must be an IP address or localhost", url);
			return -1;
		}
		*address_length = sizeof *in4;
	}
	return 0;
}

static int open_listener(struct grpc_server *server, const char *url, char *err, size_t errlen)
{
	struct sockaddr_storage address;
	socklen_t address_length;
	bool secure;
	if (parse_listen_url(url, &address, &address_length, &secure, err, errlen) != 0)
		return -1;
	if (secure && server->config.tls == NULL) {
		snprintf(err, errlen, "listen %s: https needs a certificate and key", url);
		return -1;
	}
	/* The same address under both schemes: one socket serving both, as etcd does. */
	for (size_t i = 0; i < server->listener_count; i++) {
		struct grpc_listener *existing = &server->listeners[i];
		if (existing->address_length == address_length && memcmp(&existing->address, &address, address_length) == 0) {
			existing->secure |= secure;
			existing->plain |= !secure;
			return 0;
		}
	}
	int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen %s: socket: %s", url, strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (server->config.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
		snprintf(err, errlen, "listen %s: SO_REUSEPORT: %s", url, strerror(errno));
		close(fd);
		return -1;
	}
	/* Accepted sockets inherit it (Linux copies the listener's TCP options): one system call per listener
	 * rather than one per connection, which 10,000 clients connecting at once each paid for. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* [::]:P and 0.0.0.0:P must be able to listen side by side. */
	if (address.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&address, address_length) != 0) {
		snprintf(err, errlen, "listen %s: bind: %s", url, strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, SOMAXCONN) != 0) {
		snprintf(err, errlen, "listen %s: listen: %s", url, strerror(errno));
		close(fd);
		return -1;
	}
	struct grpc_listener *listener = &server->listeners[server->listener_count];
	listener->kind = GRPC_POLL_LISTENER;
	listener->fd = fd;
	listener->secure = secure;
	listener->plain = !secure;
	listener->address = address;
	listener->address_length = address_length;
	struct epoll_event event = { .events = EPOLLIN, .data.ptr = listener };
	if (epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
		snprintf(err, errlen, "listen %s: epoll_ctl: %s", url, strerror(errno));
		close(fd);
		return -1;
	}
	server->listener_count++;
	if (server->listener_count == 1) {
		struct sockaddr_storage bound;
		socklen_t bound_length = sizeof bound;
		if (getsockname(fd, (struct sockaddr *)&bound, &bound_length) == 0)
			server->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
									 : ((struct sockaddr_in *)&bound)->sin_port);
	}
	return 0;
}

struct grpc_server *grpc_server_open(const struct grpc_server_config *config, char *err, size_t errlen)
{
	if (config->listen_url_count == 0) {
		snprintf(err, errlen, "no listen URL");
		return NULL;
	}
	struct grpc_server *server = calloc(1, sizeof *server);
	if (server == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	server->config = *config;
	/* The URLs are only needed here; the caller may free them afterwards. */
	server->config.listen_urls = NULL;
	server->config.listen_url_count = 0;
	if (server->config.max_concurrent_streams == 0)
		server->config.max_concurrent_streams = 1000;
	if (server->config.max_connections == 0)
		server->config.max_connections = 10000;
	if (server->config.max_message_bytes == 0)
		server->config.max_message_bytes = 4 * 1024 * 1024;
	server->next_call_id = 1;
	server->call_table_size = 256;
	server->call_table = calloc(server->call_table_size, sizeof *server->call_table);
	server->listeners = calloc(config->listen_url_count, sizeof *server->listeners);
	server->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (server->call_table == NULL || server->listeners == NULL || server->epoll_fd < 0) {
		snprintf(err, errlen, "grpc server: %s", server->epoll_fd < 0 ? strerror(errno) : "out of memory");
		grpc_server_close(server);
		return NULL;
	}
	for (size_t i = 0; i < config->listen_url_count; i++) {
		if (open_listener(server, config->listen_urls[i], err, errlen) != 0) {
			grpc_server_close(server);
			return NULL;
		}
	}
	server->last_idle_check_ms = grpc_now_ms();
	return server;
}

int grpc_server_fd(const struct grpc_server *server)
{
	return server->epoll_fd;
}

int grpc_server_port(const struct grpc_server *server)
{
	return server->port;
}

void grpc_server_get_stats(const struct grpc_server *server, struct grpc_server_stats *stats)
{
	*stats = server->stats;
	stats->connections_open = server->connection_count;
}

/* ---- connections ---- */

static void connection_set_events(struct grpc_connection *connection)
{
	if (connection->closed || connection->lingering_until_ms != 0)
		return;
	uint32_t events = 0;
	bool output_waiting = grpc_connection_pending_output(connection) > 0;
	if (grpc_connection_pending_output(connection) < GRPC_OUTPUT_HIGH_WATER && !connection->close_after_write &&
		(connection->mode != GRPC_MODE_HTTP1 || grpc_http1_wants_input(connection)))
		events |= EPOLLIN;
	if (output_waiting || connection->dirty)
		events |= EPOLLOUT;
	if (events == connection->epoll_events)
		return;
	struct epoll_event event = { .events = events, .data.ptr = connection };
	if (epoll_ctl(connection->server->epoll_fd, EPOLL_CTL_MOD, connection->fd, &event) == 0)
		connection->epoll_events = events;
}

void grpc_connection_mark_dirty(struct grpc_connection *connection)
{
	if (connection->closed || connection->dirty)
		return;
	connection->dirty = true;
	connection->dirty_next = connection->server->dirty;
	connection->server->dirty = connection;
	/* Outside grpc_server_process nobody would look at the list: watching for output makes the
	 * server's fd readable, so the caller's loop comes back and the answer goes out. */
	if (!connection->server->processing)
		connection_set_events(connection);
}

void grpc_connection_close(struct grpc_connection *connection, bool bad_input)
{
	if (connection->closed)
		return;
	struct grpc_server *server = connection->server;
	connection->closed = true;
	if (bad_input || connection->bad_input)
		server->stats.connections_closed_bad_input++;
	epoll_ctl(server->epoll_fd, EPOLL_CTL_DEL, connection->fd, NULL);
	grpc_tls_connection_end(connection);
	close(connection->fd);
	connection->fd = -1;
	if (connection->session != NULL)
		grpc_http2_teardown(connection);
	if (connection->mode == GRPC_MODE_HTTP1)
		grpc_gateway_teardown(connection);
	grpc_buffer_free(&connection->input);
	grpc_buffer_free(&connection->output);
	if (connection->previous != NULL)
		connection->previous->next = connection->next;
	else
		server->connections = connection->next;
	if (connection->next != NULL)
		connection->next->previous = connection->previous;
	server->connection_count--;
	/* Freed later: the dirty list or the caller's stack may still point at it. */
	connection->dead_next = server->dead;
	server->dead = connection;
}

void grpc_connection_linger(struct grpc_connection *connection)
{
	if (connection->closed || connection->lingering_until_ms != 0)
		return;
	grpc_tls_connection_end(connection);
	shutdown(connection->fd, SHUT_WR);
	connection->lingering_until_ms = grpc_now_ms() + GRPC_LINGER_MS;
	grpc_buffer_free(&connection->input);
	grpc_buffer_free(&connection->output);
	struct epoll_event event = { .events = EPOLLIN, .data.ptr = connection };
	if (epoll_ctl(connection->server->epoll_fd, EPOLL_CTL_MOD, connection->fd, &event) == 0)
		connection->epoll_events = EPOLLIN;
}

/* A lingering connection's input is dropped until the client closes. */
static void drain_lingering(struct grpc_connection *connection)
{
	uint8_t discarded[4096];
	for (int round = 0; round < 16; round++) {
		ssize_t got = recv(connection->fd, discarded, sizeof discarded, 0);
		if (got > 0)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		break;
	}
	grpc_connection_close(connection, false);
}

/* Writes connection->output, refilling it from nghttp2; -1 when the connection is gone. */
static int connection_flush(struct grpc_connection *connection)
{
	for (;;) {
		if (connection->mode == GRPC_MODE_HTTP2 && grpc_http2_fill_output(connection) != 0) {
			grpc_connection_close(connection, true);
			return -1;
		}
		if (connection->tls != NULL && grpc_tls_encrypt(connection) != 0) {
			grpc_connection_close(connection, false);
			return -1;
		}
		struct grpc_buffer *socket_bytes = connection->tls != NULL ? &connection->wire : &connection->output;
		size_t waiting = grpc_buffer_length(socket_bytes);
		if (waiting == 0)
			break;
		ssize_t written = send(connection->fd, socket_bytes->data + socket_bytes->start, waiting, MSG_NOSIGNAL);
		if (written < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			grpc_connection_close(connection, false);
			return -1;
		}
		grpc_buffer_consume(socket_bytes, (size_t)written);
	}
	/* A connection with no call keeps no empty output buffer: 10,000 idle clients held 40 MiB of them, and
	 * the next connection's buffer is then this one, already in the cache, not a fresh page to fault in. */
	if (connection->calls == NULL && connection->output.capacity != 0 && grpc_buffer_length(&connection->output) == 0)
		grpc_buffer_free(&connection->output);
	if (grpc_connection_pending_output(connection) == 0) {
		if (connection->close_after_write ||
			(connection->mode == GRPC_MODE_HTTP2 && grpc_http2_finished(connection))) {
			grpc_connection_close(connection, false);
			return -1;
		}
	}
	return 0;
}

int grpc_connection_receive(struct grpc_connection *connection, const uint8_t *bytes, size_t length)
{
	if (connection->mode == GRPC_MODE_DETECTING) {
		size_t have = grpc_buffer_length(&connection->input);
		size_t take = HTTP2_PREFACE_LENGTH - have < length ? HTTP2_PREFACE_LENGTH - have : length;
		if (grpc_buffer_append(&connection->input, bytes, take) != 0) {
			grpc_connection_close(connection, false);
			return -1;
		}
		bytes += take;
		length -= take;
		have += take;
		const char *seen = (const char *)connection->input.data + connection->input.start;
		if (memcmp(seen, http2_preface, have) == 0) {
			if (have < HTTP2_PREFACE_LENGTH)
				return 0;
			char error[128];
			if (grpc_http2_start(connection, error, sizeof error) != 0) {
				grpc_connection_close(connection, false);
				return -1;
			}
			connection->mode = GRPC_MODE_HTTP2;
			int result = grpc_http2_receive(connection, (const uint8_t *)seen, have);
			grpc_buffer_free(&connection->input);
			if (result != 0) {
				grpc_connection_close(connection, true);
				return -1;
			}
		} else {
			/* An HTTP/1 request line starts with a method token (GET, HEAD, and POST and the others,
			 * which get 405 rather than silence); anything else is not a client of ours. */
			size_t letters = 0;
			while (letters < have && letters < 8 && seen[letters] >= 'A' && seen[letters] <= 'Z')
				letters++;
			bool method = letters < have ? letters >= 3 && seen[letters] == ' ' : letters == have;
			if (!method) {
				grpc_connection_close(connection, true);
				return -1;
			}
			if (letters == have && length == 0)
				return 0;
			connection->mode = GRPC_MODE_HTTP1;
		}
	}
	if (length == 0 && connection->mode != GRPC_MODE_HTTP1)
		return 0;
	if (connection->mode == GRPC_MODE_HTTP2) {
		if (grpc_http2_receive(connection, bytes, length) != 0) {
			grpc_connection_close(connection, true);
			return -1;
		}
		return 0;
	}
	/* A request head's clock starts with its first byte, not with the previous request. */
	if (grpc_buffer_length(&connection->input) == 0 && length > 0)
		connection->opened_ms = grpc_now_ms();
	if (grpc_buffer_append(&connection->input, bytes, length) != 0) {
		grpc_connection_close(connection, false);
		return -1;
	}
	if (grpc_http1_process(connection) != 0) {
		grpc_connection_close(connection, true);
		return -1;
	}
	return 0;
}

static void connection_handle(struct grpc_connection *connection, uint32_t events)
{
	if (connection->lingering_until_ms != 0) {
		drain_lingering(connection);
		return;
	}
	/* A budget per wake-up keeps one busy client from starving the others (epoll is
	 * level-triggered: what is left is read next time). */
	size_t budget = 1024 * 1024;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		uint8_t bytes[65536];
		while (budget > 0 && !connection->closed &&
			grpc_connection_pending_output(connection) < GRPC_OUTPUT_HIGH_WATER && !connection->close_after_write &&
			(connection->mode != GRPC_MODE_HTTP1 || grpc_http1_wants_input(connection))) {
			ssize_t got = recv(connection->fd, bytes, sizeof bytes, 0);
			if (got < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				grpc_tls_peer_closed(connection, errno);
				grpc_connection_close(connection, false);
				return;
			}
			if (got == 0) {
				/* The client is gone (or half-closed: gRPC clients never do that mid-call). */
				grpc_tls_peer_closed(connection, 0);
				grpc_connection_close(connection, connection->mode == GRPC_MODE_DETECTING &&
					grpc_buffer_length(&connection->input) > 0);
				return;
			}
			budget -= (size_t)got < budget ? (size_t)got : budget;
			connection->last_active_ms = grpc_now_ms();
			if (connection->transport_undecided) {
				/* A TLS ClientHello record starts with 22 (handshake); no HTTP request does. */
				connection->transport_undecided = false;
				if (bytes[0] == 22 && grpc_tls_connection_start(connection) != 0) {
					grpc_connection_close(connection, false);
					return;
				}
			}
			int received = connection->tls != NULL ? grpc_tls_receive(connection, bytes, (size_t)got)
				: grpc_connection_receive(connection, bytes, (size_t)got);
			if (received != 0)
				return;
			/* Answers go out as soon as they exist; the output bound is checked with them. */
			if (connection_flush(connection) != 0)
				return;
			/* A short read emptied the socket: asking again would only return EAGAIN (a syscall
			 * is a VM exit here); epoll is level-triggered and names the socket when more comes. */
			if ((size_t)got < sizeof bytes)
				break;
		}
	}
	if (connection_flush(connection) != 0)
		return;
	if (connection->mode == GRPC_MODE_HTTP1 && grpc_connection_pending_output(connection) == 0 &&
		(grpc_buffer_length(&connection->input) > 0 || connection->calls != NULL)) {
		/* Pipelined requests left while the output was full or a gateway call was open; ended calls. */
		if (grpc_http1_process(connection) != 0) {
			grpc_connection_close(connection, true);
			return;
		}
		if (connection_flush(connection) != 0)
			return;
	}
	connection_set_events(connection);
}

/* The least recently active connection with no call open and nothing left to write, or NULL. */
static struct grpc_connection *least_recently_active_idle(struct grpc_server *server)
{
	struct grpc_connection *oldest = NULL;
	for (struct grpc_connection *connection = server->connections; connection != NULL;
		connection = connection->next) {
		bool idle = connection->calls == NULL && grpc_connection_pending_output(connection) == 0 &&
			grpc_buffer_length(&connection->input) == 0;
		if (idle && (oldest == NULL || connection->last_active_ms < oldest->last_active_ms))
			oldest = connection;
	}
	return oldest;
}

/* Makes room for one more connection by closing the idle one heard from least recently; false when
 * every connection is busy. */
static bool evict_idle_connection(struct grpc_server *server)
{
	struct grpc_connection *victim = least_recently_active_idle(server);
	if (victim == NULL)
		return false;
	server->stats.connections_evicted_idle++;
	grpc_connection_close(victim, false);
	return true;
}

static void accept_connections(struct grpc_server *server, struct grpc_listener *listener)
{
	for (int accepted = 0; accepted < 64; accepted++) {
		int fd = accept4(listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* Out of descriptors: an idle connection's descriptor is worth less than a new client's. */
			if ((errno == EMFILE || errno == ENFILE) && evict_idle_connection(server))
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				struct epoll_event event = { .events = 0, .data.ptr = listener };
				epoll_ctl(server->epoll_fd, EPOLL_CTL_MOD, listener->fd, &event);
				listener->paused_until_ms = grpc_now_ms() + 1000;
			}
			return; /* EAGAIN, or a connection that died in the queue */
		}
		server->stats.connections_accepted++;
		if (server->connection_count >= server->config.max_connections && !evict_idle_connection(server)) {
			close(fd);
			continue;
		}
		struct grpc_connection *connection = calloc(1, sizeof *connection);
		if (connection == NULL) {
			close(fd);
			continue;
		}
		connection->kind = GRPC_POLL_CONNECTION;
		connection->fd = fd;
		connection->server = server;
		connection->mode = GRPC_MODE_DETECTING;
		connection->opened_ms = grpc_now_ms();
		connection->last_active_ms = connection->opened_ms;
		connection->epoll_events = EPOLLIN;
		connection->transport_undecided = listener->secure && listener->plain;
		if (listener->secure && !listener->plain && grpc_tls_connection_start(connection) != 0) {
			close(fd);
			free(connection);
			continue;
		}
		struct epoll_event event = { .events = EPOLLIN, .data.ptr = connection };
		if (epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
			grpc_tls_connection_end(connection);
			close(fd);
			free(connection);
			continue;
		}
		connection->next = server->connections;
		if (server->connections != NULL)
			server->connections->previous = connection;
		server->connections = connection;
		server->connection_count++;
	}
}

/* Connections that never said which protocol they speak, or sit in the middle of an HTTP/1.1
 * request head, would hold a slot forever. */
static void close_stalled_connections(struct grpc_server *server, uint64_t now)
{
	struct grpc_connection *connection = server->connections;
	while (connection != NULL) {
		struct grpc_connection *next = connection->next;
		bool stalled = connection->mode == GRPC_MODE_DETECTING ||
			(connection->mode == GRPC_MODE_HTTP1 && connection->http1_call == NULL &&
				grpc_buffer_length(&connection->input) > 0);
		if ((stalled && now - connection->opened_ms > GRPC_IDLE_HANDSHAKE_MS) ||
			(connection->lingering_until_ms != 0 && now >= connection->lingering_until_ms))
			grpc_connection_close(connection, false);
		connection = next;
	}
}

/* ---- deadlines ---- */

bool grpc_parse_timeout(const char *value, uint64_t *milliseconds)
{
	size_t digits = strspn(value, "0123456789");
	if (digits == 0 || digits > 8 || value[digits] == '\0' || value[digits + 1] != '\0')
		return false;
	uint64_t amount = strtoull(value, NULL, 10);
	switch (value[digits]) {
	case 'H': *milliseconds = amount * 3600000u; return true;
	case 'M': *milliseconds = amount * 60000u; return true;
	case 'S': *milliseconds = amount * 1000u; return true;
	case 'm': *milliseconds = amount; return true;
	case 'u': *milliseconds = (amount + 999u) / 1000u; return true;
	case 'n': *milliseconds = (amount + 999999u) / 1000000u; return true;
	default: return false;
	}
}

static void deadline_sift_up(struct grpc_deadline *heap, size_t at)
{
	while (at > 0) {
		size_t parent = (at - 1) / 2;
		if (heap[parent].deadline_ms <= heap[at].deadline_ms)
			break;
		struct grpc_deadline swap = heap[parent];
		heap[parent] = heap[at];
		heap[at] = swap;
		at = parent;
	}
}

static void deadline_sift_down(struct grpc_deadline *heap, size_t count, size_t at)
{
	for (;;) {
		size_t smallest = at, left = 2 * at + 1, right = left + 1;
		if (left < count && heap[left].deadline_ms < heap[smallest].deadline_ms)
			smallest = left;
		if (right < count && heap[right].deadline_ms < heap[smallest].deadline_ms)
			smallest = right;
		if (smallest == at)
			return;
		struct grpc_deadline swap = heap[smallest];
		heap[smallest] = heap[at];
		heap[at] = swap;
		at = smallest;
	}
}

/* Drops the entries of calls that are over, so that a busy server whose calls end long before their
 * deadlines does not keep one entry per call for the length of the timeout. */
static void compact_deadlines(struct grpc_server *server)
{
	size_t kept = 0;
	for (size_t k = 0; k < server->deadline_count; k++)
		if (grpc_server_find_call(server, server->deadlines[k].call_id) != NULL)
			server->deadlines[kept++] = server->deadlines[k];
	server->deadline_count = kept;
	for (size_t k = kept / 2; k-- > 0;)
		deadline_sift_down(server->deadlines, kept, k);
}

void grpc_server_track_deadline(struct grpc_server *server, struct grpc_call *call)
{
	if (server->deadline_count >= 1024 && server->deadline_count > 4 * server->call_count)
		compact_deadlines(server);
	if (server->deadline_count == server->deadline_capacity) {
		server->deadline_capacity = server->deadline_capacity ? 2 * server->deadline_capacity : 64;
		server->deadlines = xreallocarray(server->deadlines, server->deadline_capacity, sizeof *server->deadlines);
	}
	server->deadlines[server->deadline_count] = (struct grpc_deadline){ call->deadline_ms, call->id };
	deadline_sift_up(server->deadlines, server->deadline_count++);
}

/* grpc-go's server ends a call whose deadline passed with DEADLINE_EXCEEDED, "context deadline
 * exceeded"; the service is told the call is gone (on_close, cancelled) and answers nothing more. */
static void expire_deadlines(struct grpc_server *server, uint64_t now)
{
	while (server->deadline_count > 0 && server->deadlines[0].deadline_ms <= now) {
		uint64_t call_id = server->deadlines[0].call_id;
		server->deadlines[0] = server->deadlines[--server->deadline_count];
		deadline_sift_down(server->deadlines, server->deadline_count, 0);
		struct grpc_call *call = grpc_server_find_call(server, call_id);
		if (call == NULL || call->finished)
			continue;
		if (server->config.on_deadline != NULL) {
			server->config.on_deadline(server->config.context, call);
			call = grpc_server_find_call(server, call_id);
			if (call == NULL || call->finished)
				continue;
		}
		server->stats.calls_deadline_exceeded++;
		grpc_call_finish_internal(call, 200, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
	}
}

static void free_dead_connections(struct grpc_server *server)
{
	while (server->dead != NULL) {
		struct grpc_connection *connection = server->dead;
		server->dead = connection->dead_next;
		free(connection);
	}
}

static void flush_dirty_connections(struct grpc_server *server)
{
	while (server->dirty != NULL) {
		struct grpc_connection *connection = server->dirty;
		server->dirty = connection->dirty_next;
		connection->dirty_next = NULL;
		connection->dirty = false;
		if (connection->closed)
			continue;
		/* A gateway call that ended: the next pipelined request's turn. */
		if (connection->mode == GRPC_MODE_HTTP1 && connection->http1_call == NULL && connection->calls != NULL &&
			grpc_http1_process(connection) != 0) {
			grpc_connection_close(connection, true);
			continue;
		}
		if (connection_flush(connection) == 0)
			connection_set_events(connection);
	}
}

void grpc_server_hold_output(struct grpc_server *server)
{
	/* Outside grpc_server_process, mark_dirty arms EPOLLOUT only because nobody would look at the
	 * dirty list; the caller promises to (grpc_server_flush). */
	server->processing = true;
}

void grpc_server_flush(struct grpc_server *server)
{
	server->processing = true;
	flush_dirty_connections(server);
	free_dead_connections(server);
	server->processing = false;
}

void grpc_server_process(struct grpc_server *server)
{
	server->processing = true;
	struct epoll_event events[64];
	int count = epoll_wait(server->epoll_fd, events, 64, 0);
	for (int i = 0; i < count; i++) {
		enum grpc_poll_kind *kind = events[i].data.ptr;
		if (*kind == GRPC_POLL_LISTENER) {
			accept_connections(server, (struct grpc_listener *)kind);
		} else {
			struct grpc_connection *connection = (struct grpc_connection *)kind;
			if (!connection->closed)
				connection_handle(connection, events[i].events);
		}
	}
	uint64_t now = grpc_now_ms();
	for (size_t i = 0; i < server->listener_count; i++) {
		struct grpc_listener *listener = &server->listeners[i];
		if (listener->paused_until_ms != 0 && now >= listener->paused_until_ms) {
			struct epoll_event event = { .events = EPOLLIN, .data.ptr = listener };
			epoll_ctl(server->epoll_fd, EPOLL_CTL_MOD, listener->fd, &event);
			listener->paused_until_ms = 0;
		}
	}
	if (now - server->last_idle_check_ms >= 1000) {
		server->last_idle_check_ms = now;
		close_stalled_connections(server, now);
	}
	expire_deadlines(server, now);
	/* Answers a callback gave to other connections' calls (a put waking a watcher). Last before the
	 * dead are freed: the dirty list may name a connection closed during this round. */
	flush_dirty_connections(server);
	free_dead_connections(server);
	server->processing = false;
}

void grpc_server_close(struct grpc_server *server)
{
	if (server == NULL)
		return;
	server->processing = true;
	while (server->connections != NULL)
		grpc_connection_close(server->connections, false);
	free_dead_connections(server);
	for (size_t i = 0; i < server->listener_count; i++)
		close(server->listeners[i].fd);
	free(server->listeners);
	if (server->epoll_fd >= 0)
		close(server->epoll_fd);
	free(server->call_table);
	free(server->deadlines);
	grpc_http2_release_setup(server);
	free(server);
}
