/* tests/fuzz/fuzz_grpc.c: libFuzzer target for the client request path: bytes a client sends to a
 * client URL, read by the real gRPC server (control/grpc/grpc_server.h: connection detection, HTTP/2
 * through nghttp2, gRPC message framing, HTTP/1.1 GETs, the JSON gateway's POSTs: bodies, JSON to protobuf
 * and back) over a real loopback TCP connection, and handed
 * to a small etcd service that unpacks the messages as etcd's RangeRequest / PutRequest / WatchRequest
 * (control/proto) and answers.
 *
 * The server's internals take received bytes only from a socket (connection_receive is private to
 * grpc_server.c), so the target is a client: one server listens on 127.0.0.1:0 for the whole run; each
 * input opens a connection, writes the input, and calls grpc_server_process until the server is quiet,
 * reading what it answers so it never stops on a full socket.
 *
 * Input: byte 0 configures the run (bits 0-2: bytes per write(), 4096 down to 1; bit 3: Put is answered
 * late, after the server has gone round again, found by its call id as the node does after Raft; bit 4:
 * the client closes before the late answers are given; bit 5: the client half-closes (shutdown) after
 * its last byte). The rest is what the client sends: normally the HTTP/2 client preface, SETTINGS and
 * frames (tests/fuzz/make_seeds.py builds them by hand, HPACK literals included).
 *
 * The service checks the call contract of grpc_server.h: no callback for a call after the service
 * finished it or after on_close(cancelled = true); at most one on_close(cancelled = false); and the
 * server must close every connection once the client has gone.
 *
 * tests/fuzz/make_seeds.py writes the seed corpus (corpus/grpc/). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc_server.h"
#include "rpc.pb-c.h"

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, "fuzz-grpc: " __VA_ARGS__);                            \
		fputc('\n', stderr);                                                   \
		abort();                                                               \
	} while (0)

enum { TRACKED = 1024, LATE = 64 };

/* What the service knows about a call, by id. */
struct tracked {
	uint64_t id;
	bool finished;   /* by the service */
	bool cancelled;  /* on_close(true) came */
	bool half_closed;/* on_close(false) came */
};

static struct grpc_server *server;
static int port;
static struct tracked tracked[TRACKED];
static size_t tracked_count;
static uint64_t late[LATE];
static size_t late_count;
static bool answer_late;

static bool trace; /* FUZZ_GRPC_TRACE=1: print the service's callbacks and the bytes answered */

static struct tracked *track(struct grpc_call *call)
{
	uint64_t id = grpc_call_id(call);
	if (id == 0)
		FAIL("a call with id 0");
	for (size_t k = 0; k < tracked_count; k++)
		if (tracked[k].id == id)
			return &tracked[k];
	if (tracked_count == TRACKED)
		return NULL;
	tracked[tracked_count] = (struct tracked){.id = id};
	return &tracked[tracked_count++];
}

static void check_alive(struct tracked *t, const char *what)
{
	if (t == NULL)
		return;
	if (t->finished)
		FAIL("%s for call %llu after the service finished it", what, (unsigned long long)t->id);
	if (t->cancelled)
		FAIL("%s for call %llu after on_close(cancelled)", what, (unsigned long long)t->id);
}

static void finish(struct grpc_call *call, int status, const char *message)
{
	struct tracked *t = track(call);
	grpc_call_finish(call, status, message);
	if (t != NULL)
		t->finished = true;
}

static Etcdserverpb__ResponseHeader *header(void)
{
	static Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	h.cluster_id = 0xef37ad9dc622a7c4ull;
	h.member_id = 0x8211f1d0f64f3269ull;
	h.revision = 7;
	h.raft_term = 2;
	return &h;
}

static void send_packed(struct grpc_call *call, const ProtobufCMessage *message)
{
	size_t length = protobuf_c_message_get_packed_size(message);
	uint8_t *bytes = malloc(length ? length : 1);
	protobuf_c_message_pack(message, bytes);
	grpc_call_send(call, bytes, length);
	free(bytes);
}

static void on_range(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	if (trace)
		fprintf(stderr, "Range call %llu: %zu bytes\n", (unsigned long long)grpc_call_id(call), length);
	check_alive(track(call), "Range message");
	(void)grpc_call_header(call, "hasleader");
	(void)grpc_call_path(call);
	Etcdserverpb__RangeRequest *request = etcdserverpb__range_request__unpack(NULL, length, message);
	if (request == NULL) {
		finish(call, 3, "etcdserver: bad RangeRequest");
		return;
	}
	Etcdserverpb__RangeResponse response = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT, *kvs[1] = {&kv};
	kv.key = request->key;
	kv.value = request->range_end;
	kv.mod_revision = request->revision;
	response.header = header();
	response.kvs = kvs;
	response.n_kvs = request->count_only ? 0 : 1;
	response.count = 1;
	send_packed(call, &response.base);
	etcdserverpb__range_request__free_unpacked(request, NULL);
	finish(call, 0, NULL);
}

static void answer_put(struct grpc_call *call, const uint8_t *message, size_t length)
{
	Etcdserverpb__PutRequest *request = etcdserverpb__put_request__unpack(NULL, length, message);
	if (request == NULL) {
		finish(call, 3, "etcdserver: bad PutRequest");
		return;
	}
	Etcdserverpb__PutResponse response = ETCDSERVERPB__PUT_RESPONSE__INIT;
	Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
	kv.key = request->key;
	kv.value = request->value;
	kv.lease = request->lease;
	response.header = header();
	if (request->prev_kv)
		response.prev_kv = &kv;
	send_packed(call, &response.base);
	etcdserverpb__put_request__free_unpacked(request, NULL);
	finish(call, 0, NULL);
}

static void on_put(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	if (trace)
		fprintf(stderr, "Put call %llu: %zu bytes\n", (unsigned long long)grpc_call_id(call), length);
	check_alive(track(call), "Put message");
	if (answer_late && late_count < LATE) {
		/* Kept by id, as the node keeps a call while Raft commits. */
		late[late_count++] = grpc_call_id(call);
		return;
	}
	answer_put(call, message, length);
}

static void on_watch(void *context, struct grpc_call *call, const uint8_t *message, size_t length)
{
	(void)context;
	struct tracked *t = track(call);
	check_alive(t, "Watch message");
	if (trace)
		fprintf(stderr, "Watch call %llu: %zu bytes\n", (unsigned long long)grpc_call_id(call), length);
	Etcdserverpb__WatchRequest *request = etcdserverpb__watch_request__unpack(NULL, length, message);
	if (request == NULL) {
		finish(call, 3, "etcdserver: bad WatchRequest");
		return;
	}
	Etcdserverpb__WatchResponse response = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	response.header = header();
	response.watch_id = (int64_t)(uintptr_t)grpc_call_user(call);
	response.created = request->request_union_case == ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	response.canceled = request->request_union_case == ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST;
	grpc_call_set_user(call, (void *)((uintptr_t)grpc_call_user(call) + 1));
	send_packed(call, &response.base);
	(void)grpc_call_pending_bytes(call);
	etcdserverpb__watch_request__free_unpacked(request, NULL);
}

static void on_close(void *context, struct grpc_call *call, bool cancelled)
{
	(void)context;
	struct tracked *t = track(call);
	check_alive(t, cancelled ? "on_close(cancelled)" : "on_close");
	if (trace)
		fprintf(stderr, "on_close call %llu cancelled %d\n", (unsigned long long)grpc_call_id(call), cancelled);
	if (t != NULL && !cancelled && t->half_closed)
		FAIL("a second on_close(false) for call %llu", (unsigned long long)t->id);
	if (t != NULL) {
		if (cancelled)
			t->cancelled = true;
		else
			t->half_closed = true;
	}
	if (!cancelled && strcmp(grpc_call_path(call), "/etcdserverpb.Watch/Watch") == 0)
		finish(call, 0, NULL);
}

static bool http_get(void *context, const char *path, struct grpc_http_response *response)
{
	(void)context;
	if (strcmp(path, "/health") != 0 && strcmp(path, "/version") != 0)
		return false;
	response->status = 200;
	response->content_type = "application/json";
	response->body = strdup("{\"health\":\"true\"}");
	response->body_length = strlen(response->body);
	return true;
}

static const struct grpc_method methods[] = {
	{"/etcdserverpb.KV/Range", GRPC_METHOD_UNARY, on_range, on_close},
	{"/etcdserverpb.KV/Put", GRPC_METHOD_UNARY, on_put, on_close},
	{"/etcdserverpb.Watch/Watch", GRPC_METHOD_BIDI_STREAM, on_watch, on_close},
};

/* The same methods through the JSON gateway (HTTP/1.1 POSTs under /v3/). */
static const struct grpc_gateway_route gateway_routes[] = {
	{"kv/range", "/etcdserverpb.KV/Range", &etcdserverpb__range_request__descriptor,
		&etcdserverpb__range_response__descriptor, GRPC_GATEWAY_END_HALF_CLOSE},
	{"kv/put", "/etcdserverpb.KV/Put", &etcdserverpb__put_request__descriptor, &etcdserverpb__put_response__descriptor,
		GRPC_GATEWAY_END_HALF_CLOSE},
	{"watch", "/etcdserverpb.Watch/Watch", &etcdserverpb__watch_request__descriptor,
		&etcdserverpb__watch_response__descriptor, GRPC_GATEWAY_END_CLIENT_GONE},
};
static const char *const gateway_prefixes[] = {"/v3/"};

static void open_server(void)
{
	const char *urls[] = {"http://127.0.0.1:0"};
	struct grpc_server_config config = {
		.listen_urls = urls,
		.listen_url_count = 1,
		.methods = methods,
		.method_count = sizeof methods / sizeof methods[0],
		.max_message_bytes = 64 * 1024,
		.max_concurrent_streams = 16,
		.http_get = http_get,
		.gateway_routes = gateway_routes,
		.gateway_route_count = sizeof gateway_routes / sizeof gateway_routes[0],
		.gateway_prefixes = gateway_prefixes,
		.gateway_prefix_count = 1,
	};
	char error[256];
	server = grpc_server_open(&config, error, sizeof error);
	if (server == NULL)
		FAIL("grpc_server_open: %s", error);
	port = grpc_server_port(server);
}

static bool server_ready(int timeout_ms)
{
	struct pollfd p = {.fd = grpc_server_fd(server), .events = POLLIN};
	return poll(&p, 1, timeout_ms) > 0;
}

static size_t drain(int fd)
{
	static uint8_t sink[65536];
	size_t total = 0;
	for (;;) {
		ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
		if (n <= 0)
			return total;
		if (trace)
			fprintf(stderr, "answer: %zd bytes\n", n);
		total += (size_t)n;
	}
}

static void answer_late_calls(void)
{
	for (size_t k = 0; k < late_count; k++) {
		struct grpc_call *call = grpc_server_find_call(server, late[k]);
		if (call == NULL)
			continue;
		struct tracked *t = track(call);
		if (t != NULL && (t->cancelled || t->finished))
			FAIL("grpc_server_find_call found call %llu after it ended", (unsigned long long)late[k]);
		/* An empty PutRequest: the node answers what Raft committed, not the bytes it kept. */
		answer_put(call, (const uint8_t *)"", 0);
	}
	late_count = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (server == NULL) {
		trace = getenv("FUZZ_GRPC_TRACE") != NULL;
		open_server();
	}
	if (size < 1)
		return 0;
	uint8_t config = data[0];
	size_t chunk = (size_t)4096 >> ((config & 7) * 12 / 7);
	answer_late = config & 0x08;
	bool close_early = config & 0x10;
	bool half_close = config & 0x20;
	data++, size--;
	tracked_count = 0;
	late_count = 0;

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || (connect(fd, (struct sockaddr *)&address, sizeof address) != 0 && errno != EINPROGRESS))
		FAIL("connect: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	size_t sent = 0;
	bool peer_gone = false;
	int idle = 0;
	while (idle < 3) {
		bool progress = false;
		if (sent < size && !peer_gone) {
			size_t n = size - sent < chunk ? size - sent : chunk;
			ssize_t w = send(fd, data + sent, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0) {
				sent += (size_t)w;
				progress = true;
				if (sent == size && half_close)
					shutdown(fd, SHUT_WR);
			} else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) {
				peer_gone = true; /* the server closed the connection: bad input */
			}
		}
		if (server_ready(sent < size && !peer_gone && !progress ? 1 : 0)) {
			grpc_server_process(server);
			progress = true;
		}
		if (drain(fd) > 0)
			progress = true;
		if (answer_late && late_count > 0 && !close_early && !progress) {
			answer_late_calls();
			progress = true;
		}
		idle = progress || (sent < size && !peer_gone) ? 0 : idle + 1;
	}
	if (close_early) {
		close(fd);
		fd = -1;
		for (int k = 0; k < 20 && server_ready(k == 0 ? 1 : 0); k++)
			grpc_server_process(server);
	}
	answer_late_calls();
	for (int k = 0; k < 8 && server_ready(0); k++) {
		grpc_server_process(server);
		if (fd >= 0)
			drain(fd);
	}
	if (fd >= 0)
		close(fd);
	struct grpc_server_stats stats;
	for (int k = 0; k < 200; k++) {
		grpc_server_get_stats(server, &stats);
		if (stats.connections_open == 0)
			break;
		if (server_ready(5))
			grpc_server_process(server);
	}
	grpc_server_get_stats(server, &stats);
	if (stats.connections_open != 0)
		FAIL("%llu connections still open after the client closed", (unsigned long long)stats.connections_open);
	return 0;
}
