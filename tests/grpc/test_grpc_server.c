/* tests/grpc/test_grpc_server.c: the gRPC server (control/grpc/) against a real HTTP/2 client.
 *
 * A server thread runs a small test service on 127.0.0.1:0 (echo unary, a server stream of N
 * messages, a bidi echo, a slow method answered later by call id, a 4 MiB stream paced by
 * grpc_call_pending_bytes, a failing method); the main thread talks to it with nghttp2's client
 * session (tests/grpc/http2_client.c), plain sockets (HTTP/1.1, garbage) and, when installed, curl.
 * What the service saw (on_close, late replies) is logged under a mutex and checked from here.
 *
 * Run: build-grpc/tests/grpc/test-grpc-server (prints FAIL lines and exits 1 on failure). */
#include "grpc_server.h"
#include "grpc_status.h"
#include "http2_client.h"
#include "../control/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BIG_TOTAL (4 * 1024 * 1024)
#define BIG_CHUNK (64 * 1024)
#define BIG_PENDING_BOUND (256 * 1024)
#define MAX_MESSAGE (1024 * 1024)

static uint64_t now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

static uint8_t big_byte(size_t offset)
{
	return (uint8_t)((offset * 7 + offset / 4099) % 251);
}

/* ---- what the service saw, shared with the main thread ---- */

struct close_record {
	uint64_t call_id;
	bool cancelled;
	char path[64];
};

struct slow_call {
	uint64_t call_id;
	uint64_t due_ms;
	uint8_t message[64];
	size_t length;
	bool answered;
	bool found_when_due; /* did grpc_server_find_call still find it */
	bool fd_woke;        /* the server fd was readable right after the answer was queued */
};

struct big_call {
	uint64_t call_id;
	size_t sent;
	bool done;
};

static struct {
	pthread_mutex_t mutex;
	struct grpc_server_stats stats;
	struct close_record closes[4096];
	size_t close_count;
	struct slow_call slow[16];
	size_t slow_count;
	struct big_call big[4];
	size_t big_count;
	size_t big_max_pending;
	size_t big_waits; /* rounds the producer found the call's queue full */
	char header_seen[64];
	struct grpc_server *server; /* the main server, for find_call inside callbacks */
	uint64_t rounds;            /* loops of the main server's thread */
} shared = { .mutex = PTHREAD_MUTEX_INITIALIZER };

/* ---- the test service (server thread) ---- */

static void echo_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	const char *header = grpc_call_header(call, "x-test-header");
	pthread_mutex_lock(&shared.mutex);
	snprintf(shared.header_seen, sizeof shared.header_seen, "%s", header != NULL ? header : "(none)");
	pthread_mutex_unlock(&shared.mutex);
	grpc_call_send(call, message, length);
	grpc_call_finish(call, 0, NULL);
}

static void stream_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	if (length != 8) {
		grpc_call_finish(call, 3, "want 8 bytes: count and size");
		return;
	}
	uint32_t count = (uint32_t)message[0] << 24 | (uint32_t)message[1] << 16 | (uint32_t)message[2] << 8 | message[3];
	uint32_t size = (uint32_t)message[4] << 24 | (uint32_t)message[5] << 16 | (uint32_t)message[6] << 8 | message[7];
	uint8_t *reply = calloc(1, size < 4 ? 4 : size);
	for (uint32_t i = 0; i < count; i++) {
		reply[0] = (uint8_t)(i >> 24);
		reply[1] = (uint8_t)(i >> 16);
		reply[2] = (uint8_t)(i >> 8);
		reply[3] = (uint8_t)i;
		CHECK(grpc_call_send(call, reply, size < 4 ? 4 : size) == 0, "send %u", i);
	}
	free(reply);
	grpc_call_finish(call, 0, NULL);
}

static void bidi_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	grpc_call_send(call, message, length);
}

static void slow_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	pthread_mutex_lock(&shared.mutex);
	if (shared.slow_count < 16 && length <= 64 && length >= 4) {
		struct slow_call *slow = &shared.slow[shared.slow_count++];
		uint32_t delay = (uint32_t)message[0] << 24 | (uint32_t)message[1] << 16 | (uint32_t)message[2] << 8 |
			message[3];
		slow->call_id = grpc_call_id(call);
		slow->due_ms = now_ms() + delay;
		memcpy(slow->message, message, length);
		slow->length = length;
	}
	pthread_mutex_unlock(&shared.mutex);
}

static void big_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	(void)message;
	(void)length;
	pthread_mutex_lock(&shared.mutex);
	if (shared.big_count < 4)
		shared.big[shared.big_count++] = (struct big_call){ .call_id = grpc_call_id(call) };
	pthread_mutex_unlock(&shared.mutex);
}

static void fail_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	(void)message;
	(void)length;
	grpc_call_finish(call, 5, "not found: 100% \xc3\xbc" "n\xc3\xaf" "code\n");
}

/* A watcher's pattern: Subscribe (bidi) calls are kept by id; a Publish on any connection sends its
 * message to every subscriber from inside its own on_message. */
static uint64_t subscribers[8];
static size_t subscriber_count;

static void subscribe_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	(void)message;
	(void)length;
	pthread_mutex_lock(&shared.mutex);
	if (subscriber_count < 8)
		subscribers[subscriber_count++] = grpc_call_id(call);
	pthread_mutex_unlock(&shared.mutex);
	grpc_call_send(call, (const uint8_t *)"subscribed", 10);
}

static void publish_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	size_t delivered = 0;
	pthread_mutex_lock(&shared.mutex);
	for (size_t i = 0; i < subscriber_count; i++) {
		struct grpc_call *subscriber = grpc_server_find_call(shared.server, subscribers[i]);
		if (subscriber != NULL && grpc_call_send(subscriber, message, length) == 0)
			delivered++;
	}
	pthread_mutex_unlock(&shared.mutex);
	uint8_t count = (uint8_t)delivered;
	grpc_call_send(call, &count, 1);
	grpc_call_finish(call, 0, NULL);
}

/* An empty RangeResponse (no header, no keys): enough for etcdctl get to succeed. */
static void range_message(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	(void)message;
	(void)length;
	grpc_call_send(call, (const uint8_t *)"", 0);
	grpc_call_finish(call, 0, NULL);
}

static void record_close(void *context, struct grpc_call *call, bool cancelled)
{
	(void)context;
	pthread_mutex_lock(&shared.mutex);
	if (shared.close_count < 4096) {
		struct close_record *record = &shared.closes[shared.close_count++];
		record->call_id = grpc_call_id(call);
		record->cancelled = cancelled;
		snprintf(record->path, sizeof record->path, "%s", grpc_call_path(call));
	}
	pthread_mutex_unlock(&shared.mutex);
}

static void bidi_close(void *context, struct grpc_call *call, bool cancelled)
{
	record_close(context, call, cancelled);
	if (!cancelled)
		grpc_call_finish(call, 0, "bidi done");
}

static bool http_get(void *context, const char *path, struct grpc_http_response *response)
{
	(void)context;
	if (strcmp(path, "/version") == 0) {
		/* GET only, as etcd's /version: HEAD is refused with 405 and "Allow: GET". */
		static const char version[] = "{}";
		response->status = 200;
		response->body = strdup(version);
		response->body_length = sizeof version - 1;
		response->get_only = true;
		return true;
	}
	if (strcmp(path, "/health") != 0)
		return false;
	static const char body[] = "{\"health\":\"true\",\"reason\":\"\"}";
	response->status = 200;
	response->content_type = "application/json";
	response->body = strdup(body);
	response->body_length = sizeof body - 1;
	return true;
}

static const struct grpc_method methods[] = {
	{ "/test.Echo/Unary", GRPC_METHOD_UNARY, echo_message, record_close },
	{ "/test.Echo/Stream", GRPC_METHOD_SERVER_STREAM, stream_message, record_close },
	{ "/test.Echo/Bidi", GRPC_METHOD_BIDI_STREAM, bidi_message, bidi_close },
	{ "/test.Echo/Slow", GRPC_METHOD_UNARY, slow_message, record_close },
	{ "/test.Echo/Big", GRPC_METHOD_SERVER_STREAM, big_message, record_close },
	{ "/test.Echo/Fail", GRPC_METHOD_UNARY, fail_message, record_close },
	{ "/etcdserverpb.KV/Range", GRPC_METHOD_UNARY, range_message, record_close },
	{ "/test.Echo/Subscribe", GRPC_METHOD_BIDI_STREAM, subscribe_message, record_close },
	{ "/test.Echo/Publish", GRPC_METHOD_UNARY, publish_message, record_close },
};

/* The service's own timers: slow answers and the paced big stream. */
static void run_service_work(struct grpc_server *server)
{
	pthread_mutex_lock(&shared.mutex);
	uint64_t now = now_ms();
	for (size_t i = 0; i < shared.slow_count; i++) {
		struct slow_call *slow = &shared.slow[i];
		if (slow->answered || now < slow->due_ms)
			continue;
		slow->answered = true;
		struct grpc_call *call = grpc_server_find_call(server, slow->call_id);
		slow->found_when_due = call != NULL;
		if (call != NULL) {
			grpc_call_send(call, slow->message, slow->length);
			grpc_call_finish(call, 0, NULL);
			/* Queued outside grpc_server_process: the owner's epoll must wake to write it. */
			struct pollfd poll_fd = { .fd = grpc_server_fd(server), .events = POLLIN };
			slow->fd_woke = poll(&poll_fd, 1, 0) == 1;
		}
	}
	static uint8_t chunk[BIG_CHUNK];
	for (size_t i = 0; i < shared.big_count; i++) {
		struct big_call *big = &shared.big[i];
		if (big->done)
			continue;
		struct grpc_call *call = grpc_server_find_call(server, big->call_id);
		if (call == NULL) {
			big->done = true;
			continue;
		}
		while (big->sent < BIG_TOTAL) {
			size_t pending = grpc_call_pending_bytes(call);
			if (pending > shared.big_max_pending)
				shared.big_max_pending = pending;
			if (pending >= BIG_PENDING_BOUND) {
				shared.big_waits++;
				break;
			}
			size_t take = BIG_TOTAL - big->sent < BIG_CHUNK ? BIG_TOTAL - big->sent : BIG_CHUNK;
			for (size_t j = 0; j < take; j++)
				chunk[j] = big_byte(big->sent + j);
			if (grpc_call_send(call, chunk, take) != 0)
				break;
			big->sent += take;
		}
		if (big->sent == BIG_TOTAL) {
			grpc_call_finish(call, 0, NULL);
			big->done = true;
		}
	}
	pthread_mutex_unlock(&shared.mutex);
}

struct server_runner {
	struct grpc_server *server;
	bool stop;         /* under shared.mutex */
	bool copy_stats;   /* the main server's stats go to shared.stats */
};

static void *server_thread(void *argument)
{
	struct server_runner *runner = argument;
	struct grpc_server *server = runner->server;
	for (;;) {
		pthread_mutex_lock(&shared.mutex);
		bool stop = runner->stop;
		if (runner->copy_stats) {
			grpc_server_get_stats(server, &shared.stats);
			shared.rounds++;
		}
		pthread_mutex_unlock(&shared.mutex);
		if (stop)
			break;
		struct pollfd poll_fd = { .fd = grpc_server_fd(server), .events = POLLIN };
		poll(&poll_fd, 1, 5);
		grpc_server_process(server);
		if (runner->copy_stats)
			run_service_work(server);
	}
	return NULL;
}

static struct grpc_server_stats stats_now(void)
{
	/* Two more rounds of the server thread: whatever it was doing when we asked is counted. */
	pthread_mutex_lock(&shared.mutex);
	uint64_t until = shared.rounds + 2;
	pthread_mutex_unlock(&shared.mutex);
	for (int i = 0; i < 1000; i++) {
		usleep(5000);
		pthread_mutex_lock(&shared.mutex);
		bool done = shared.rounds >= until;
		pthread_mutex_unlock(&shared.mutex);
		if (done)
			break;
	}
	pthread_mutex_lock(&shared.mutex);
	struct grpc_server_stats stats = shared.stats;
	pthread_mutex_unlock(&shared.mutex);
	return stats;
}

/* ---- helpers for the main thread ---- */

static int server_port;

static int raw_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)server_port) };
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
		perror("connect");
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads until EOF or timeout; returns bytes read, sets *closed when the peer closed. */
static size_t raw_read_all(int fd, char *buffer, size_t size, int timeout_ms, bool *closed)
{
	size_t have = 0;
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	*closed = false;
	while (now_ms() < deadline) {
		struct pollfd poll_fd = { .fd = fd, .events = POLLIN };
		if (poll(&poll_fd, 1, 20) <= 0)
			continue;
		ssize_t got = recv(fd, buffer + have, size - have - 1, 0);
		if (got <= 0) {
			*closed = true;
			break;
		}
		have += (size_t)got;
		if (have + 1 >= size)
			break;
	}
	buffer[have] = '\0';
	return have;
}

static void unary(struct client *client, struct client_stream *stream, const char *path, const void *message,
	size_t length)
{
	client_stream_init(stream);
	client_stream_start(client, stream, path);
	client_stream_write(client, stream, message, length, true);
}

static bool unary_works(int port, const char *text)
{
	struct client *client = client_open(port, 1 << 20, true);
	if (client == NULL)
		return false;
	struct client_stream stream;
	unary(client, &stream, "/test.Echo/Unary", text, strlen(text));
	bool ok = client_pump(client, client_stream_is_closed, &stream, 15000);
	const uint8_t *message;
	size_t length;
	ok = ok && stream.grpc_status == 0 && client_stream_message(&stream, 0, &message, &length) &&
		length == strlen(text) && memcmp(message, text, length) == 0;
	client_stream_free(&stream);
	client_close(client);
	return ok;
}

static bool find_close(uint64_t call_id, bool cancelled)
{
	bool found = false;
	pthread_mutex_lock(&shared.mutex);
	for (size_t i = 0; i < shared.close_count; i++)
		if (shared.closes[i].call_id == call_id && shared.closes[i].cancelled == cancelled)
			found = true;
	pthread_mutex_unlock(&shared.mutex);
	return found;
}

/* ---- the tests ---- */

static void test_unary(void)
{
	struct client *client = client_open(server_port, 1 << 20, true);
	CHECK(client != NULL, "connect");
	if (client == NULL)
		return;
	struct client_stream stream;
	const char text[] = "hello quorumd";
	unary(client, &stream, "/test.Echo/Unary", text, sizeof text - 1);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000), "unary call did not end");
	CHECK(stream.http_status == 200, "status %d", stream.http_status);
	CHECK(stream.grpc_status == 0, "grpc-status %d (%s)", stream.grpc_status, stream.grpc_message);
	CHECK(client_stream_message_count(&stream) == 1, "%zu messages", client_stream_message_count(&stream));
	const uint8_t *message = NULL;
	size_t length = 0;
	client_stream_message(&stream, 0, &message, &length);
	CHECK(length == sizeof text - 1 && memcmp(message, text, length) == 0, "echo differs (%zu bytes)", length);
	pthread_mutex_lock(&shared.mutex);
	CHECK(strcmp(shared.header_seen, "seen") == 0, "metadata x-test-header: %s", shared.header_seen);
	pthread_mutex_unlock(&shared.mutex);
	client_stream_free(&stream);

	/* An empty message is a message too. */
	unary(client, &stream, "/test.Echo/Unary", "", 0);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000), "empty unary call did not end");
	CHECK(stream.grpc_status == 0 && client_stream_message_count(&stream) == 1 && stream.received_length == 5,
		"empty echo: status %d, %zu bytes", stream.grpc_status, stream.received_length);
	client_stream_free(&stream);

	/* grpc-message is percent-encoded (gRPC spec): '%', non-ASCII and control bytes. */
	unary(client, &stream, "/test.Echo/Fail", "x", 1);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000), "failing call did not end");
	CHECK(stream.grpc_status == 5, "grpc-status %d", stream.grpc_status);
	CHECK(strcmp(stream.grpc_message, "not found: 100%25 %C3%BCn%C3%AFcode%0A") == 0, "grpc-message %s",
		stream.grpc_message);
	CHECK(stream.received_length == 0, "a trailers-only answer has no DATA (%zu bytes)", stream.received_length);
	client_stream_free(&stream);
	client_close(client);
}

static bool all_closed(void *argument)
{
	struct client_stream *streams = argument;
	for (size_t i = 0; i < 300; i++)
		if (!streams[i].closed)
			return false;
	return true;
}

static void test_concurrent_streams(void)
{
	/* 300 calls on one connection; the server allows 64 at once, so nghttp2's client queues the
	 * rest and the server must keep serving as streams end. */
	struct client *client = client_open(server_port, 1 << 20, true);
	CHECK(client != NULL, "connect");
	if (client == NULL)
		return;
	static struct client_stream streams[300];
	char text[300][32];
	for (size_t i = 0; i < 300; i++) {
		snprintf(text[i], sizeof text[i], "message number %zu", i);
		unary(client, &streams[i], "/test.Echo/Unary", text[i], strlen(text[i]));
	}
	CHECK(client_pump(client, all_closed, streams, 20000), "not every concurrent call ended");
	size_t good = 0;
	for (size_t i = 0; i < 300; i++) {
		const uint8_t *message;
		size_t length;
		if (streams[i].grpc_status == 0 && client_stream_message(&streams[i], 0, &message, &length) &&
			length == strlen(text[i]) && memcmp(message, text[i], length) == 0)
			good++;
		client_stream_free(&streams[i]);
	}
	CHECK(good == 300, "%zu of 300 concurrent calls answered correctly", good);
	client_close(client);
}

static void test_server_stream(void)
{
	struct client *client = client_open(server_port, 1 << 20, true);
	CHECK(client != NULL, "connect");
	if (client == NULL)
		return;
	const uint32_t count = 2000, size = 300;
	uint8_t request[8] = { count >> 24, count >> 16, count >> 8, count & 0xff, size >> 24, size >> 16, size >> 8,
		size & 0xff };
	struct client_stream stream;
	unary(client, &stream, "/test.Echo/Stream", request, 8);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 20000), "stream did not end");
	CHECK(stream.grpc_status == 0, "grpc-status %d (%s)", stream.grpc_status, stream.grpc_message);
	size_t in_order = 0;
	const uint8_t *message;
	size_t length;
	for (uint32_t i = 0; client_stream_message(&stream, i, &message, &length); i++) {
		uint32_t index = (uint32_t)message[0] << 24 | (uint32_t)message[1] << 16 | (uint32_t)message[2] << 8 |
			message[3];
		if (length == size && index == i)
			in_order++;
	}
	CHECK(in_order == count, "%zu of %u messages arrived in order", in_order, count);
	CHECK(stream.received_length == (size_t)count * (size + 5), "received %zu bytes", stream.received_length);
	client_stream_free(&stream);
	client_close(client);
}

struct message_wait {
	struct client_stream *stream;
	size_t count;
};

static bool has_messages(void *argument)
{
	struct message_wait *wait = argument;
	return client_stream_message_count(wait->stream) >= wait->count || wait->stream->closed;
}

static void test_bidi(void)
{
	struct client *client = client_open(server_port, 1 << 20, true);
	CHECK(client != NULL, "connect");
	if (client == NULL)
		return;
	struct client_stream stream;
	client_stream_init(&stream);
	client_stream_start(client, &stream, "/test.Echo/Bidi");
	const char *words[] = { "one", "two", "three" };
	for (size_t i = 0; i < 3; i++) {
		/* Each echo must come back while the request side is still open. */
		client_stream_write(client, &stream, (const uint8_t *)words[i], strlen(words[i]), false);
		struct message_wait wait = { &stream, i + 1 };
		CHECK(client_pump(client, has_messages, &wait, 15000) && !stream.closed, "echo %zu did not come", i);
		const uint8_t *message;
		size_t length;
		CHECK(client_stream_message(&stream, i, &message, &length) && length == strlen(words[i]) &&
			memcmp(message, words[i], length) == 0, "echo %zu differs", i);
	}
	/* Two messages in one DATA frame, then the half-close. */
	client_stream_write(client, &stream, (const uint8_t *)"four", 4, false);
	client_stream_write(client, &stream, (const uint8_t *)"five", 4, true);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000), "bidi did not end");
	CHECK(client_stream_message_count(&stream) == 5, "%zu echoes", client_stream_message_count(&stream));
	CHECK(stream.grpc_status == 0 && strcmp(stream.grpc_message, "bidi done") == 0, "trailers %d %s",
		stream.grpc_status, stream.grpc_message);
	client_stream_free(&stream);
	client_close(client);
}

/* A publish on one connection reaches a subscriber on another (a send from inside another
 * connection's callback). */
static void test_cross_connection(void)
{
	struct client *watcher = client_open(server_port, 1 << 20, true);
	struct client *writer = client_open(server_port, 1 << 20, true);
	CHECK(watcher != NULL && writer != NULL, "connect");
	if (watcher == NULL || writer == NULL) {
		client_close(watcher);
		client_close(writer);
		return;
	}
	struct client_stream subscription, publish;
	client_stream_init(&subscription);
	client_stream_start(watcher, &subscription, "/test.Echo/Subscribe");
	client_stream_write(watcher, &subscription, (const uint8_t *)"hi", 2, false);
	struct message_wait wait = { &subscription, 1 };
	CHECK(client_pump(watcher, has_messages, &wait, 15000), "no subscription answer");
	unary(writer, &publish, "/test.Echo/Publish", "news", 4);
	CHECK(client_pump(writer, client_stream_is_closed, &publish, 15000) && publish.grpc_status == 0,
		"publish did not end");
	CHECK(publish.received_length == 6 && publish.received[5] == 1, "published to %d subscribers",
		publish.received_length == 6 ? publish.received[5] : -1);
	wait.count = 2;
	CHECK(client_pump(watcher, has_messages, &wait, 15000), "the subscriber did not get the news");
	const uint8_t *message;
	size_t length;
	CHECK(client_stream_message(&subscription, 1, &message, &length) && length == 4 && memcmp(message, "news", 4) == 0,
		"the subscriber got something else");
	client_stream_write(watcher, &subscription, (const uint8_t *)"bye", 3, true);
	client_pump(watcher, client_stream_is_closed, &subscription, 200);
	client_stream_free(&subscription);
	client_stream_free(&publish);
	client_close(watcher);
	client_close(writer);
}

static bool ping_acknowledged(void *argument)
{
	return ((struct client *)argument)->ping_acks > 0;
}

static bool connection_ended(void *argument)
{
	return ((struct client *)argument)->eof;
}

/* PING is answered; a client's GOAWAY lets its open call finish, then the server closes. */
static void test_ping_and_goaway(void)
{
	struct client *client = client_open(server_port, 1 << 20, true);
	CHECK(client != NULL, "connect");
	if (client == NULL)
		return;
	nghttp2_submit_ping(client->session, NGHTTP2_FLAG_NONE, (const uint8_t *)"12345678");
	CHECK(client_pump(client, ping_acknowledged, client, 15000), "no PING ACK");
	uint8_t request[8] = { 0, 0, 0, 100, 'g', 'o', 'a', 'w' }; /* answered after 100 ms */
	struct client_stream stream;
	unary(client, &stream, "/test.Echo/Slow", request, 8);
	client_pump(client, client_stream_is_closed, &stream, 30);
	nghttp2_submit_goaway(client->session, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000) && stream.grpc_status == 0,
		"the call open at GOAWAY did not finish (status %d)", stream.grpc_status);
	CHECK(client_pump(client, connection_ended, client, 15000), "the server kept the connection after GOAWAY");
	client_stream_free(&stream);
	client_close(client);
}

static void test_unknown_and_too_large(void)
{
	struct grpc_server_stats before = stats_now();
	struct client *client = client_open(server_port, 1 << 20, true);
	CHECK(client != NULL, "connect");
	if (client == NULL)
		return;
	struct client_stream stream;
	unary(client, &stream, "/test.Echo/Nope", "x", 1);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000), "unknown method did not end");
	CHECK(stream.grpc_status == 12, "grpc-status %d", stream.grpc_status);
	CHECK(strcmp(stream.grpc_message, "unknown method Nope for service test.Echo") == 0, "message %s",
		stream.grpc_message);
	client_stream_free(&stream);

	unary(client, &stream, "/etcdserverpb.Foo/Bar", "x", 1);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000), "unknown service did not end");
	CHECK(stream.grpc_status == 12, "grpc-status %d", stream.grpc_status);
	CHECK(strcmp(stream.grpc_message, "unknown service etcdserverpb.Foo") == 0, "message %s", stream.grpc_message);
	client_stream_free(&stream);

	size_t large = MAX_MESSAGE + 1;
	uint8_t *big = calloc(1, large);
	unary(client, &stream, "/test.Echo/Unary", big, large);
	free(big);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 20000), "too large did not end");
	CHECK(stream.grpc_status == 8, "grpc-status %d", stream.grpc_status);
	char expected[128];
	snprintf(expected, sizeof expected, "grpc: received message larger than max (%zu vs. %d)", large, MAX_MESSAGE);
	CHECK(strcmp(stream.grpc_message, expected) == 0, "message %s", stream.grpc_message);
	client_stream_free(&stream);

	/* A message of exactly the maximum is accepted. */
	big = calloc(1, MAX_MESSAGE);
	big[MAX_MESSAGE - 1] = 42;
	unary(client, &stream, "/test.Echo/Unary", big, MAX_MESSAGE);
	free(big);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 20000), "maximum message did not end");
	CHECK(stream.grpc_status == 0 && stream.received_length == MAX_MESSAGE + 5 &&
		stream.received[stream.received_length - 1] == 42, "maximum message: status %d, %zu bytes",
		stream.grpc_status, stream.received_length);
	client_stream_free(&stream);

	/* A compressed message: we announce no grpc-encoding, so UNIMPLEMENTED. */
	client_stream_init(&stream);
	client_stream_start(client, &stream, "/test.Echo/Unary");
	client_stream_write(client, &stream, (const uint8_t *)"zzz", 3, true);
	stream.send[0] = 1;
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000), "compressed did not end");
	CHECK(stream.grpc_status == 12 && strstr(stream.grpc_message, "Decompressor is not installed") != NULL,
		"compressed: %d %s", stream.grpc_status, stream.grpc_message);
	client_stream_free(&stream);

	/* Not gRPC's content-type: HTTP 415. */
	client_stream_init(&stream);
	client_stream_start_typed(client, &stream, "/test.Echo/Unary", "application/json");
	client_stream_write(client, &stream, (const uint8_t *)"{}", 2, true);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000), "json call did not end");
	CHECK(stream.http_status == 415 && stream.grpc_status > 0, "content-type json: %d, grpc-status %d",
		stream.http_status, stream.grpc_status);
	client_stream_free(&stream);

	/* The connection still serves after all that. */
	unary(client, &stream, "/test.Echo/Unary", "still", 5);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000) && stream.grpc_status == 0,
		"connection broken after errors");
	client_stream_free(&stream);
	client_close(client);
	struct grpc_server_stats after = stats_now();
	CHECK(after.calls_unimplemented - before.calls_unimplemented == 2, "calls_unimplemented +%llu",
		(unsigned long long)(after.calls_unimplemented - before.calls_unimplemented));
}

static bool slow_count_at_least(void *argument)
{
	size_t want = *(size_t *)argument;
	pthread_mutex_lock(&shared.mutex);
	bool done = shared.slow_count >= want;
	pthread_mutex_unlock(&shared.mutex);
	return done;
}

static bool slow_answered(size_t index)
{
	pthread_mutex_lock(&shared.mutex);
	bool answered = shared.slow[index].answered;
	pthread_mutex_unlock(&shared.mutex);
	return answered;
}

static void test_slow_and_cancel(void)
{
	struct client *client = client_open(server_port, 1 << 20, true);
	CHECK(client != NULL, "connect");
	if (client == NULL)
		return;
	pthread_mutex_lock(&shared.mutex);
	size_t first = shared.slow_count;
	pthread_mutex_unlock(&shared.mutex);
	/* Answered 300 ms later by id. */
	uint8_t request[8] = { 0, 0, 0x01, 0x2c, 'l', 'a', 't', 'e' };
	struct client_stream answered;
	unary(client, &answered, "/test.Echo/Slow", request, 8);
	/* Reset by the client before the answer. */
	struct client_stream cancelled;
	/* Due in 2 s: time enough for the reset to arrive first even on a loaded machine. */
	uint8_t cancelled_request[8] = { 0, 0, 0x07, 0xd0, 'l', 'a', 't', 'e' };
	unary(client, &cancelled, "/test.Echo/Slow", cancelled_request, 8);
	size_t want = first + 2;
	CHECK(client_pump(client, slow_count_at_least, &want, 15000), "slow calls did not reach the service");
	nghttp2_submit_rst_stream(client->session, NGHTTP2_FLAG_NONE, cancelled.id, NGHTTP2_CANCEL);
	CHECK(client_pump(client, client_stream_is_closed, &answered, 15000), "slow call did not end");
	CHECK(answered.grpc_status == 0 && answered.received_length == 13, "slow answer: status %d, %zu bytes",
		answered.grpc_status, answered.received_length);
	for (int i = 0; i < 1000 && !(slow_answered(first) && slow_answered(first + 1)); i++)
		usleep(10000);
	pthread_mutex_lock(&shared.mutex);
	/* Call ids rise in arrival order, and one connection's streams arrive in the order opened. */
	uint64_t answered_id = shared.slow[first].call_id, cancelled_id = shared.slow[first + 1].call_id;
	bool answered_found = shared.slow[first].found_when_due;
	bool cancelled_found = shared.slow[first + 1].found_when_due;
	bool woke = shared.slow[first].fd_woke;
	pthread_mutex_unlock(&shared.mutex);
	CHECK(woke, "an answer queued outside grpc_server_process did not make the server fd readable");
	CHECK(answered_found, "the answered call was not found by id");
	CHECK(!cancelled_found, "a reset call was still found by id");
	CHECK(find_close(cancelled_id, true), "no on_close(cancelled = true) after RST_STREAM");
	CHECK(find_close(answered_id, false), "no on_close(cancelled = false) after the half-close");
	CHECK(!find_close(answered_id, true), "an answered call was reported cancelled");
	client_stream_free(&answered);
	client_stream_free(&cancelled);

	/* A connection closed under a pending call: on_close(cancelled = true), the id finds nothing. */
	pthread_mutex_lock(&shared.mutex);
	first = shared.slow_count;
	pthread_mutex_unlock(&shared.mutex);
	struct client_stream orphan;
	unary(client, &orphan, "/test.Echo/Slow", cancelled_request, 8);
	want = first + 1;
	CHECK(client_pump(client, slow_count_at_least, &want, 15000), "slow call did not reach the service");
	client_close(client);
	for (int i = 0; i < 1000 && !slow_answered(first); i++)
		usleep(10000);
	pthread_mutex_lock(&shared.mutex);
	uint64_t orphan_id = shared.slow[first].call_id;
	bool orphan_found = shared.slow[first].found_when_due;
	pthread_mutex_unlock(&shared.mutex);
	CHECK(!orphan_found, "a call of a closed connection was still found by id");
	CHECK(find_close(orphan_id, true), "no on_close(cancelled = true) after the connection closed");
	client_stream_free(&orphan);
}

static void test_garbage(void)
{
	struct grpc_server_stats before = stats_now();
	int fd = raw_connect();
	const char garbage[] = "GARBAGE GARBAGE GARBAGE GARBAGE GARBAGE\r\n\r\n";
	CHECK(send(fd, garbage, sizeof garbage - 1, MSG_NOSIGNAL) > 0, "send garbage");
	char buffer[4096];
	bool closed;
	raw_read_all(fd, buffer, sizeof buffer, 10000, &closed);
	CHECK(closed, "the server kept a connection that sent garbage");
	close(fd);

	/* A good preface and then a broken frame (SETTINGS on stream 1): GOAWAY and close. */
	fd = raw_connect();
	static const char bad_frame[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
		"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  /* an empty SETTINGS */
		"\x00\x00\x06\x04\x00\x00\x00\x00\x01"  /* SETTINGS on stream 1: a connection error */
		"\x00\x03\x00\x00\x00\x01";
	CHECK(send(fd, bad_frame, sizeof bad_frame - 1, MSG_NOSIGNAL) > 0, "send bad frame");
	size_t got = raw_read_all(fd, buffer, sizeof buffer, 10000, &closed);
	CHECK(closed, "the server kept a connection with a broken frame");
	bool goaway = false;
	for (size_t i = 0; i + 9 <= got;) {
		size_t frame_length = (size_t)(uint8_t)buffer[i] << 16 | (size_t)(uint8_t)buffer[i + 1] << 8 |
			(uint8_t)buffer[i + 2];
		if (buffer[i + 3] == 7)
			goaway = true;
		i += 9 + frame_length;
	}
	CHECK(goaway, "no GOAWAY before closing (%zu bytes)", got);
	close(fd);

	struct grpc_server_stats after = stats_now();
	CHECK(after.connections_closed_bad_input - before.connections_closed_bad_input == 2,
		"connections_closed_bad_input +%llu",
		(unsigned long long)(after.connections_closed_bad_input - before.connections_closed_bad_input));
	CHECK(unary_works(server_port, "after garbage"), "the server stopped serving after garbage");
}

/* Random bytes after the HTTP/2 preface, after "GET ", or alone, on many connections (fixed seed):
 * the server survives (the sanitizer build checks its memory) and keeps serving. */
static void test_random_input(void)
{
	unsigned seed = 12345;
	char buffer[4096];
	for (int round = 0; round < 150; round++) {
		int fd = raw_connect();
		if (fd < 0)
			break;
		uint8_t bytes[4096];
		size_t length = 0;
		int kind = round % 3;
		if (kind == 0) {
			memcpy(bytes, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
			length = 24;
		} else if (kind == 1) {
			memcpy(bytes, "GET ", 4);
			length = 4;
		}
		size_t extra = (size_t)(rand_r(&seed) % 3000);
		for (size_t i = 0; i < extra; i++)
			bytes[length++] = (uint8_t)rand_r(&seed);
		send(fd, bytes, length, MSG_NOSIGNAL);
		/* Close at once on odd rounds (the server may be mid-write), read on even ones. */
		if (round % 2 == 0) {
			bool closed;
			raw_read_all(fd, buffer, sizeof buffer, 20, &closed);
		}
		close(fd);
	}
	CHECK(unary_works(server_port, "after random input"), "the server stopped serving after random input");
	struct grpc_server_stats stats;
	for (int i = 0; i < 500; i++) {
		stats = stats_now();
		if (stats.connections_open == 0)
			break;
	}
	CHECK(stats.connections_open == 0, "%llu connections still open", (unsigned long long)stats.connections_open);
}

/* Reads one HTTP/1.1 response (head and Content-Length body) from buffer at *offset. */
static bool parse_response(const char *buffer, size_t length, size_t *offset, int *status, char *body,
	size_t body_size, bool head_only)
{
	const char *start = buffer + *offset;
	const char *end = memmem(start, length - *offset, "\r\n\r\n", 4);
	if (end == NULL || sscanf(start, "HTTP/1.1 %d", status) != 1)
		return false;
	const char *content_length = strcasestr(start, "Content-Length: ");
	if (content_length == NULL || content_length > end)
		return false;
	size_t body_length = strtoul(content_length + 16, NULL, 10);
	size_t head_length = (size_t)(end - start) + 4;
	if (head_only)
		body_length = 0;
	if (*offset + head_length + body_length > length)
		return false;
	snprintf(body, body_size, "%.*s", (int)body_length, start + head_length);
	*offset += head_length + body_length;
	return true;
}

static void test_http1(void)
{
	struct grpc_server_stats before = stats_now();
	int fd = raw_connect();
	/* Two pipelined requests on one keep-alive connection, then one that closes it. */
	const char requests[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
		"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	CHECK(send(fd, requests, sizeof requests - 1, MSG_NOSIGNAL) > 0, "send");
	char buffer[8192];
	size_t have = 0;
	uint64_t deadline = now_ms() + 10000;
	int status = 0;
	char body[256];
	size_t offset = 0;
	bool first = false, second = false;
	while (now_ms() < deadline && !second) {
		struct pollfd poll_fd = { .fd = fd, .events = POLLIN };
		if (poll(&poll_fd, 1, 20) > 0) {
			ssize_t got = recv(fd, buffer + have, sizeof buffer - have - 1, 0);
			if (got <= 0)
				break;
			have += (size_t)got;
		}
		if (!first && parse_response(buffer, have, &offset, &status, body, sizeof body, false)) {
			first = true;
			CHECK(status == 200, "GET /health: %d", status);
			CHECK(strcmp(body, "{\"health\":\"true\",\"reason\":\"\"}") == 0, "GET /health body %s", body);
		}
		if (first && parse_response(buffer, have, &offset, &status, body, sizeof body, false)) {
			second = true;
			CHECK(status == 404, "GET /nope: %d", status);
		}
	}
	CHECK(first && second, "pipelined responses missing (%zu bytes)", have);
	buffer[have] = '\0';
	CHECK(strstr(buffer, "Content-Type: application/json\r\n") != NULL, "content type missing: %s", buffer);

	const char last[] = "HEAD /health?serializable=true HTTP/1.1\r\nConnection: close\r\n\r\n";
	CHECK(send(fd, last, sizeof last - 1, MSG_NOSIGNAL) > 0, "send");
	bool closed;
	have = raw_read_all(fd, buffer, sizeof buffer, 10000, &closed);
	offset = 0;
	CHECK(parse_response(buffer, have, &offset, &status, body, sizeof body, true) && status == 200,
		"HEAD /health: %s", buffer);
	CHECK(offset == have, "HEAD sent a body (%zu of %zu bytes)", offset, have);
	CHECK(closed, "Connection: close was not honoured");
	close(fd);

	/* HEAD on a GET-only path: 405, "Allow: GET", no body. */
	fd = raw_connect();
	const char head_version[] = "HEAD /version HTTP/1.1\r\nConnection: close\r\n\r\n";
	CHECK(send(fd, head_version, sizeof head_version - 1, MSG_NOSIGNAL) > 0, "send");
	have = raw_read_all(fd, buffer, sizeof buffer, 10000, &closed);
	offset = 0;
	CHECK(parse_response(buffer, have, &offset, &status, body, sizeof body, true) && status == 405,
		"HEAD /version: %s", buffer);
	CHECK(offset == have, "HEAD /version sent a body (%zu of %zu bytes)", offset, have);
	buffer[have] = '\0';
	CHECK(strstr(buffer, "Allow: GET\r\n") != NULL, "405 without Allow: GET: %s", buffer);
	close(fd);

	/* An oversized request head: 400 and close. */
	fd = raw_connect();
	char *huge = malloc(20000);
	memset(huge, 'a', 20000);
	memcpy(huge, "GET /health HTTP/1.1\r\nX-Long: ", 30);
	send(fd, huge, 20000, MSG_NOSIGNAL);
	free(huge);
	have = raw_read_all(fd, buffer, sizeof buffer, 10000, &closed);
	CHECK(strncmp(buffer, "HTTP/1.1 400", 12) == 0, "oversized request: %.40s", buffer);
	CHECK(closed, "oversized request: connection kept");
	close(fd);

	struct grpc_server_stats after = stats_now();
	CHECK(after.http_requests - before.http_requests == 4, "http_requests +%llu",
		(unsigned long long)(after.http_requests - before.http_requests));
}

static void test_big_slow_reader(void)
{
	/* A 64 KiB window and a reader taking 16 KiB every 2 ms: the producer must be held back by
	 * grpc_call_pending_bytes and every byte must still arrive in order. */
	struct client *client = client_open(server_port, 65535, false);
	CHECK(client != NULL, "connect");
	if (client == NULL)
		return;
	client->read_chunk = 16384;
	client->read_pause_us = 2000;
	pthread_mutex_lock(&shared.mutex);
	shared.big_waits = 0;
	shared.big_max_pending = 0;
	pthread_mutex_unlock(&shared.mutex);
	struct client_stream stream;
	unary(client, &stream, "/test.Echo/Big", "go", 2);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 60000), "big stream did not end");
	CHECK(stream.grpc_status == 0, "grpc-status %d (%s)", stream.grpc_status, stream.grpc_message);
	size_t total = 0, wrong = 0;
	const uint8_t *message;
	size_t length;
	for (size_t i = 0; client_stream_message(&stream, i, &message, &length); i++) {
		for (size_t j = 0; j < length; j++)
			wrong += message[j] != big_byte(total + j);
		total += length;
	}
	CHECK(total == BIG_TOTAL && wrong == 0, "big stream: %zu bytes, %zu wrong", total, wrong);
	pthread_mutex_lock(&shared.mutex);
	size_t waits = shared.big_waits, max_pending = shared.big_max_pending;
	pthread_mutex_unlock(&shared.mutex);
	CHECK(waits > 0, "the producer never had to wait: pending bytes do not follow the slow reader");
	CHECK(max_pending < BIG_PENDING_BOUND + BIG_CHUNK + 5 * 2, "pending grew to %zu", max_pending);
	client_stream_free(&stream);
	client_close(client);
}

static void test_curl(void)
{
	struct stat info;
	if (stat("/usr/bin/curl", &info) != 0) {
		printf("curl not installed: skipping the curl checks\n");
		return;
	}
	char directory[] = "/tmp/grpc-test-XXXXXX";
	if (mkdtemp(directory) == NULL)
		return;
	char request_path[128], response_path[128], command[1024];
	snprintf(request_path, sizeof request_path, "%s/request", directory);
	snprintf(response_path, sizeof response_path, "%s/response", directory);
	FILE *file = fopen(request_path, "wb");
	const uint8_t request[] = { 0, 0, 0, 0, 9, 'f', 'r', 'o', 'm', ' ', 'c', 'u', 'r', 'l' };
	fwrite(request, 1, sizeof request, file);
	fclose(file);
	snprintf(command, sizeof command,
		"curl -s -m 10 --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' "
		"--data-binary @%s -o %s http://127.0.0.1:%d/test.Echo/Unary",
		request_path, response_path, server_port);
	CHECK(system(command) == 0, "%s", command);
	uint8_t response[64] = { 0 };
	file = fopen(response_path, "rb");
	size_t got = file != NULL ? fread(response, 1, sizeof response, file) : 0;
	if (file != NULL)
		fclose(file);
	CHECK(got == sizeof request && memcmp(response, request, got) == 0, "curl h2c echo: %zu bytes", got);

	snprintf(command, sizeof command, "curl -s -m 10 http://127.0.0.1:%d/health > %s", server_port, response_path);
	CHECK(system(command) == 0, "%s", command);
	char body[128] = "";
	file = fopen(response_path, "r");
	if (file != NULL) {
		if (fgets(body, sizeof body, file) == NULL)
			body[0] = '\0';
		fclose(file);
	}
	CHECK(strcmp(body, "{\"health\":\"true\",\"reason\":\"\"}") == 0, "curl /health: %s", body);
	unlink(request_path);
	unlink(response_path);
	rmdir(directory);
}

/* Closing a server with a call the service still holds: on_close(cancelled = true), the client
 * sees the connection end. */
static void test_close_with_open_call(void)
{
	const char *urls[] = { "http://127.0.0.1:0" };
	struct grpc_server_config config = { .listen_urls = urls, .listen_url_count = 1, .methods = methods,
		.method_count = sizeof methods / sizeof methods[0], .max_message_bytes = MAX_MESSAGE };
	char error[256];
	struct grpc_server *server = grpc_server_open(&config, error, sizeof error);
	CHECK(server != NULL, "open: %s", error);
	if (server == NULL)
		return;
	struct server_runner runner = { .server = server };
	pthread_t thread;
	pthread_create(&thread, NULL, server_thread, &runner);
	struct client *client = client_open(grpc_server_port(server), 1 << 20, true);
	CHECK(client != NULL, "connect");
	pthread_mutex_lock(&shared.mutex);
	size_t first = shared.slow_count;
	pthread_mutex_unlock(&shared.mutex);
	struct client_stream stream;
	uint8_t request[4] = { 0, 0, 0x27, 0x10 }; /* ten seconds: never answered */
	if (client != NULL) {
		unary(client, &stream, "/test.Echo/Slow", request, 4);
		size_t want = first + 1;
		CHECK(client_pump(client, slow_count_at_least, &want, 15000), "slow call did not reach the service");
	}
	pthread_mutex_lock(&shared.mutex);
	runner.stop = true;
	/* The main server's thread must not answer this one: its ids are another server's. */
	uint64_t call_id = shared.slow_count > first ? shared.slow[first].call_id : 0;
	if (shared.slow_count > first)
		shared.slow[first].answered = true;
	pthread_mutex_unlock(&shared.mutex);
	pthread_join(thread, NULL);
	grpc_server_close(server);
	CHECK(call_id != 0 && find_close(call_id, true), "no on_close(cancelled = true) when the server closed");
	if (client != NULL) {
		client_pump(client, client_stream_is_closed, &stream, 15000);
		CHECK(client->eof, "the client's connection is still open after grpc_server_close");
		client_stream_free(&stream);
		client_close(client);
	}
}

/* A real grpc-go client: etcdctl, when installed. */
static void test_etcdctl(void)
{
	struct stat info;
	if (stat("/usr/bin/etcdctl", &info) != 0) {
		printf("etcdctl not installed: skipping the etcdctl checks\n");
		return;
	}
	char command[512], output[4096];
	snprintf(command, sizeof command,
		"ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:%d --dial-timeout=5s --command-timeout=5s get foo 2>&1",
		server_port);
	FILE *pipe = popen(command, "r");
	size_t got = fread(output, 1, sizeof output - 1, pipe);
	output[got] = '\0';
	int status = pclose(pipe);
	CHECK(status == 0, "etcdctl get (exit %d): %s", status, output);
	snprintf(command, sizeof command,
		"ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:%d --dial-timeout=5s --command-timeout=5s put foo bar 2>&1",
		server_port);
	pipe = popen(command, "r");
	got = fread(output, 1, sizeof output - 1, pipe);
	output[got] = '\0';
	status = pclose(pipe);
	CHECK(status != 0 && strstr(output, "code = Unimplemented desc = unknown method Put for service etcdserverpb.KV"),
		"etcdctl put (exit %d): %s", status, output);
}

/* Servers driven from this thread only (no server thread): URLs, reuse_port, max_connections. */
static void test_open_and_limits(void)
{
	char error[256];
	const char *https[] = { "https://127.0.0.1:2379" };
	struct grpc_server_config config = { .listen_urls = https, .listen_url_count = 1, .methods = methods,
		.method_count = 1, .max_message_bytes = 1024 };
	CHECK(grpc_server_open(&config, error, sizeof error) == NULL, "https opened without a TLS context");
	CHECK(strcmp(error, "listen https://127.0.0.1:2379: https needs a certificate and key") == 0, "error: %s", error);

	const char *bad[] = { "http://example.com:2379" };
	config.listen_urls = bad;
	CHECK(grpc_server_open(&config, error, sizeof error) == NULL, "a host name opened");
	CHECK(strstr(error, "example.com") != NULL, "error does not name the URL: %s", error);

	/* Two servers on one port with reuse_port (one per client thread); without it, address in use. */
	char url[64];
	snprintf(url, sizeof url, "http://localhost:%d", server_port);
	const char *same[] = { url };
	config.listen_urls = same;
	CHECK(grpc_server_open(&config, error, sizeof error) == NULL, "a second listener without reuse_port");
	CHECK(strstr(error, url) != NULL && strstr(error, "in use") != NULL, "error: %s", error);

	const char *zero[] = { "http://127.0.0.1:0" };
	config.listen_urls = zero;
	config.reuse_port = true;
	struct grpc_server *first = grpc_server_open(&config, error, sizeof error);
	CHECK(first != NULL, "open: %s", error);
	if (first == NULL)
		return;
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", grpc_server_port(first));
	config.listen_urls = same;
	struct grpc_server *third = grpc_server_open(&config, error, sizeof error);
	CHECK(third != NULL && grpc_server_port(third) == grpc_server_port(first), "reuse_port: %s", error);
	grpc_server_close(third);
	grpc_server_close(first);

	const char *ipv6[] = { "http://[::1]:0" };
	config.listen_urls = ipv6;
	config.reuse_port = false;
	struct grpc_server *six = grpc_server_open(&config, error, sizeof error);
	if (six == NULL)
		printf("no IPv6 loopback here (%s): skipping the [::1] check\n", error);
	else
		CHECK(grpc_server_port(six) > 0, "IPv6 port %d", grpc_server_port(six));
	grpc_server_close(six);

	/* max_connections = 1: an idle connection makes room for a new one (the least recently active
	 * idle one goes), so idle clients cannot lock out new ones. */
	config.listen_urls = zero;
	config.max_connections = 1;
	struct grpc_server *limited = grpc_server_open(&config, error, sizeof error);
	CHECK(limited != NULL, "open: %s", error);
	if (limited == NULL)
		return;
	int saved_port = server_port;
	server_port = grpc_server_port(limited);
	int one = raw_connect();
	for (int i = 0; i < 10; i++) {
		grpc_server_process(limited);
		usleep(5000);
	}
	int two = raw_connect();
	server_port = saved_port;
	for (int i = 0; i < 20; i++) {
		grpc_server_process(limited);
		usleep(5000);
	}
	struct pollfd poll_fd = { .fd = one, .events = POLLIN };
	char byte;
	CHECK(poll(&poll_fd, 1, 100) == 1 && recv(one, &byte, 1, 0) == 0, "the idle connection was not closed for "
		"the new one");
	poll_fd.fd = two;
	CHECK(poll(&poll_fd, 1, 50) == 0, "the new connection was closed instead of the idle one");
	struct grpc_server_stats stats;
	grpc_server_get_stats(limited, &stats);
	CHECK(stats.connections_accepted == 2 && stats.connections_open == 1 && stats.connections_evicted_idle == 1,
		"accepted %llu, open %llu, evicted %llu", (unsigned long long)stats.connections_accepted,
		(unsigned long long)stats.connections_open, (unsigned long long)stats.connections_evicted_idle);
	close(one);
	close(two);
	grpc_server_close(limited);

	/* Out of file descriptors: the listener cannot accept; the server fd must not stay readable (a
	 * busy loop), and accepting resumes once descriptors are free again. */
	config.max_connections = 0;
	struct grpc_server *starved = grpc_server_open(&config, error, sizeof error);
	CHECK(starved != NULL, "open: %s", error);
	if (starved == NULL)
		return;
	server_port = grpc_server_port(starved);
	int waiting = raw_connect();
	server_port = saved_port;
	struct rlimit limit;
	getrlimit(RLIMIT_NOFILE, &limit);
	struct rlimit low = limit;
	int highest = dup(0);
	close(highest);
	low.rlim_cur = (rlim_t)highest + 8;
	setrlimit(RLIMIT_NOFILE, &low);
	int fillers[64];
	int filler_count = 0;
	while (filler_count < 64 && (fillers[filler_count] = dup(0)) >= 0)
		filler_count++;
	for (int i = 0; i < 5; i++) {
		grpc_server_process(starved);
		usleep(2000);
	}
	poll_fd.fd = grpc_server_fd(starved);
	poll_fd.events = POLLIN;
	CHECK(poll(&poll_fd, 1, 0) == 0, "the server fd stays readable while accept fails (EMFILE): a busy loop");
	for (int i = 0; i < filler_count; i++)
		close(fillers[i]);
	setrlimit(RLIMIT_NOFILE, &limit);
	for (int i = 0; i < 150; i++) {
		grpc_server_process(starved);
		grpc_server_get_stats(starved, &stats);
		if (stats.connections_accepted == 1)
			break;
		usleep(10000);
	}
	CHECK(stats.connections_accepted == 1, "accepting did not resume after EMFILE");
	close(waiting);
	grpc_server_close(starved);
}

/* A unary call with grpc-timeout that its service never answers: the server ends it with
 * DEADLINE_EXCEEDED, "context deadline exceeded" (grpc-go's words), and tells the service it is gone. */
static void test_deadline(void)
{
	uint64_t parsed = 0;
	CHECK(grpc_parse_timeout("200m", &parsed) && parsed == 200, "200m: %llu", (unsigned long long)parsed);
	CHECK(grpc_parse_timeout("5S", &parsed) && parsed == 5000, "5S");
	CHECK(grpc_parse_timeout("1H", &parsed) && parsed == 3600000, "1H");
	CHECK(grpc_parse_timeout("1500u", &parsed) && parsed == 2, "1500u rounds up: %llu", (unsigned long long)parsed);
	CHECK(grpc_parse_timeout("1n", &parsed) && parsed == 1, "1n rounds up");
	CHECK(!grpc_parse_timeout("", &parsed) && !grpc_parse_timeout("m", &parsed) &&
		!grpc_parse_timeout("123456789S", &parsed) && !grpc_parse_timeout("10x", &parsed) &&
		!grpc_parse_timeout("10mm", &parsed) && !grpc_parse_timeout("-1S", &parsed), "a malformed grpc-timeout parsed");

	struct client *client = client_open(server_port, 1 << 20, true);
	CHECK(client != NULL, "connect");
	if (client == NULL)
		return;
	pthread_mutex_lock(&shared.mutex);
	size_t first = shared.slow_count;
	pthread_mutex_unlock(&shared.mutex);
	/* The service would answer after 60 s; the client allows 300 ms. */
	uint8_t request[8] = { 0, 0, 0xea, 0x60, 'n', 'e', 'v', 'r' };
	struct client_stream stream;
	client_stream_init(&stream);
	client_stream_start_with_timeout(client, &stream, "/test.Echo/Slow", "300m");
	client_stream_write(client, &stream, request, sizeof request, true);
	uint64_t started = now_ms();
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000), "the call did not end by its deadline");
	uint64_t took = now_ms() - started;
	CHECK(stream.grpc_status == GRPC_DEADLINE_EXCEEDED, "status %d (%s)", stream.grpc_status, stream.grpc_message);
	CHECK(strcmp(stream.grpc_message, "context deadline exceeded") == 0, "message: %s", stream.grpc_message);
	/* The server looks at deadlines every turn (at least every 100 ms): not before 300 ms, not long after. */
	CHECK(took >= 290 && took < 5000, "ended after %llu ms", (unsigned long long)took);
	pthread_mutex_lock(&shared.mutex);
	uint64_t call_id = shared.slow_count > first ? shared.slow[first].call_id : 0;
	pthread_mutex_unlock(&shared.mutex);
	CHECK(call_id != 0 && find_close(call_id, true), "the service was not told the call is gone");
	struct grpc_server_stats stats = stats_now();
	CHECK(stats.calls_deadline_exceeded >= 1, "calls_deadline_exceeded %llu",
		(unsigned long long)stats.calls_deadline_exceeded);
	client_stream_free(&stream);

	/* A call answered in time is not touched by its deadline. */
	client_stream_init(&stream);
	client_stream_start_with_timeout(client, &stream, "/test.Echo/Unary", "5S");
	client_stream_write(client, &stream, (const uint8_t *)"in time", 7, true);
	CHECK(client_pump(client, client_stream_is_closed, &stream, 15000) && stream.grpc_status == 0,
		"a call with a deadline answered in time: status %d", stream.grpc_status);
	client_stream_free(&stream);
	client_close(client);
}

int main(void)
{
	const char *urls[] = { "http://127.0.0.1:0" };
	struct grpc_server_config config = {
		.listen_urls = urls,
		.listen_url_count = 1,
		.methods = methods,
		.method_count = sizeof methods / sizeof methods[0],
		.max_message_bytes = MAX_MESSAGE,
		.max_concurrent_streams = 64,
		.http_get = http_get,
	};
	char error[256];
	struct grpc_server *server = grpc_server_open(&config, error, sizeof error);
	if (server == NULL) {
		printf("FAIL grpc_server_open: %s\n", error);
		return 1;
	}
	server_port = grpc_server_port(server);
	shared.server = server;
	pthread_t thread;
	struct server_runner runner = { .server = server, .copy_stats = true };
	pthread_create(&thread, NULL, server_thread, &runner);

	struct {
		const char *name;
		void (*run)(void);
	} tests[] = {
		{ "unary", test_unary },
		{ "concurrent streams", test_concurrent_streams },
		{ "server stream", test_server_stream },
		{ "bidi", test_bidi },
		{ "a publish reaching another connection", test_cross_connection },
		{ "PING and GOAWAY", test_ping_and_goaway },
		{ "unknown method, message too large", test_unknown_and_too_large },
		{ "slow answer by id, client reset, connection lost", test_slow_and_cancel },
		{ "grpc-timeout", test_deadline },
		{ "garbage and broken frames", test_garbage },
		{ "HTTP/1.1", test_http1 },
		{ "random input", test_random_input },
		{ "4 MiB to a slow reader", test_big_slow_reader },
		{ "curl", test_curl },
		{ "etcdctl", test_etcdctl },
		{ "close with a call open", test_close_with_open_call },
		{ "open, reuse_port, max_connections", test_open_and_limits },
	};
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		int before = failures;
		uint64_t start = now_ms();
		tests[i].run();
		printf("%s %s (%llu ms)\n", failures == before ? "ok  " : "FAIL", tests[i].name,
			(unsigned long long)(now_ms() - start));
	}

	pthread_mutex_lock(&shared.mutex);
	runner.stop = true;
	pthread_mutex_unlock(&shared.mutex);
	pthread_join(thread, NULL);
	grpc_server_close(server);
	printf("%d failure(s)\n", failures);
	return failures != 0;
}
