/* tests/etcdctl/h2-probe.c: a raw HTTP/2 client for 10-bad-client-input.sh, sending what etcdctl never
 * sends. Frames are written by hand (so it can break the protocol and ignore the server's stream limit);
 * header blocks are encoded and decoded with nghttp2's HPACK (so response headers, Huffman-coded and
 * indexed, are read exactly). Every wait has a deadline. Usage:
 *
 *   h2-probe PORT garbage          calls with bad request bodies on one connection, then a good Put on
 *                                  the same connection; one line per call: NAME grpc-status=N message=TEXT
 *                                  (N -1: no status; "rst=CODE" instead when the stream was reset)
 *   h2-probe PORT broken KIND      one connection broken in one way (KIND below); prints
 *                                  "goaway=CODE" when a GOAWAY came, then "closed" or "open" (after 5 s)
 *   h2-probe PORT bidi             Watch and LeaseKeepAlive streams ended in odd ways (see bidi()); lines as
 *                                  for garbage, then the client drops the connection with watches open
 *   h2-probe PORT many N PREFIX    N Put streams (keys PREFIX%05d, value "v") opened at once on one
 *                                  connection; prints "ok KEY" for every Put answered grpc-status 0,
 *                                  then a summary line: ok=A error=B refused=C unanswered=D goaway=yes|no
 *                                  closed=yes|no (the server closed the connection)
 *
 *   h2-probe PORT idle N SECONDS   N more connections, each sending the preface and an empty SETTINGS and
 *                                  then nothing; prints "held N" once all are open (connections the server
 *                                  closed meanwhile are counted in "closed=C" on a last line), holds them
 *                                  SECONDS (or until stdin closes), then exits
 *   h2-probe PORT put KEY VALUE SECONDS
 *                                  one Put sent without a grpc-timeout header (a client with no deadline of its
 *                                  own), waited for up to SECONDS: "put grpc-status=N message=TEXT after=MS"
 *                                  (or "put no-answer after=MS", "put rst=CODE after=MS")
 *   h2-probe PORT stuck-watch PREFIX
 *                                  a Watch of every key under PREFIX ("": every key) on a connection whose windows are open
 *                                  wide (16 MiB per stream, 1 GiB for the connection); prints "watching" once
 *                                  the watch is created, then never reads the socket again until stdin closes
 *                                  (the server's sends back up in its own memory), then resets the connection
 *                                  and prints "gone"
 *
 * Kinds: random (random bytes, no preface), bad-preface, data-stream0, bad-hpack, settings-length,
 * oversized-frame, even-stream, window-overflow, abort-mid-frame (half a frame, then the client closes),
 * abort-mid-message (half a gRPC message, then the client closes). H2_PROBE_DEBUG=1 logs every frame received
 * to stderr. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

enum { F_DATA = 0, F_HEADERS = 1, F_RST = 3, F_SETTINGS = 4, F_PING = 6, F_GOAWAY = 7, F_WINDOW = 8, F_CONT = 9 };
enum { FL_END_STREAM = 1, FL_ACK = 1, FL_END_HEADERS = 4, FL_PADDED = 8, FL_PRIORITY = 0x20 };

struct stream {
	int grpc_status;
	char message[256];
	bool done;
	bool reset;
	uint32_t reset_code;
	size_t data_bytes;
};

static int fd = -1;
static nghttp2_hd_deflater *deflater;
static nghttp2_hd_inflater *inflater;
static uint8_t in[1 << 20];
static size_t in_length;
static bool eof;
static bool goaway;
static uint32_t goaway_code;
static uint32_t goaway_last;
static struct stream *streams; /* by (id - 1) / 2 */
static size_t stream_count;
static uint8_t header_block[1 << 16];
static size_t header_block_length;
static int32_t header_stream;
static uint8_t header_flags;
static int64_t send_window = 65535; /* the connection's, for our DATA */

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void die(const char *what)
{
	fprintf(stderr, "h2-probe: %s\n", what);
	exit(2);
}

static int port_of_probe;

static void connect_to(int port)
{
	fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0)
		die("connect failed");
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void read_frames(int timeout_ms);

/* Bytes to write. Frames are appended whole; ACKs the reader makes while a write is under way go after it. */
static uint8_t *out;
static size_t out_length, out_capacity;
static bool flushing;

static void queue(const void *bytes, size_t length)
{
	if (out_length + length > out_capacity) {
		out_capacity = (out_length + length) * 2;
		out = realloc(out, out_capacity);
		if (!out)
			die("out of memory");
	}
	memcpy(out + out_length, bytes, length);
	out_length += length;
}

/* Writes everything queued, reading (and handling) what comes meanwhile so neither side stalls. */
static void flush(void)
{
	if (flushing)
		return;
	flushing = true;
	uint64_t deadline = now_ms() + 10000;
	while (out_length > 0 && !eof) {
		if (now_ms() > deadline)
			die("send timed out");
		struct pollfd pfd = { .fd = fd, .events = POLLOUT | POLLIN };
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (pfd.revents & POLLOUT) {
			ssize_t n = send(fd, out, out_length, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				eof = true;
				break;
			}
			if (n > 0) {
				memmove(out, out + n, out_length - (size_t)n);
				out_length -= (size_t)n;
			}
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
			read_frames(0);
	}
	flushing = false;
}

static void send_all(const void *bytes, size_t length)
{
	queue(bytes, length);
	flush();
}

static void frame(uint8_t type, uint8_t flags, uint32_t stream, const void *payload, size_t length)
{
	uint8_t h[9] = { (uint8_t)(length >> 16), (uint8_t)(length >> 8), (uint8_t)length, type, flags,
		(uint8_t)(stream >> 24 & 0x7f), (uint8_t)(stream >> 16), (uint8_t)(stream >> 8), (uint8_t)stream };
	queue(h, 9);
	if (length)
		queue(payload, length);
	flush();
}

static void start_connection(void)
{
	send_all(PREFACE, strlen(PREFACE));
	/* ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 16 MiB */
	uint8_t settings[] = { 0, 2, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0 };
	uint32_t window = 16u << 20;
	settings[8] = (uint8_t)(window >> 24);
	settings[9] = (uint8_t)(window >> 16);
	settings[10] = (uint8_t)(window >> 8);
	settings[11] = (uint8_t)window;
	frame(F_SETTINGS, 0, 0, settings, sizeof settings);
	uint32_t increment = 1u << 30;
	uint8_t w[4] = { (uint8_t)(increment >> 24), (uint8_t)(increment >> 16), (uint8_t)(increment >> 8),
		(uint8_t)increment };
	frame(F_WINDOW, 0, 0, w, 4);
}

static struct stream *stream_of(int32_t id)
{
	if (id <= 0 || !(id & 1))
		return NULL;
	size_t index = (size_t)(id - 1) / 2;
	return index < stream_count ? &streams[index] : NULL;
}

static void decode_headers(void)
{
	struct stream *s = stream_of(header_stream);
	uint8_t *p = header_block;
	size_t left = header_block_length;
	for (;;) {
		nghttp2_nv nv;
		int flags = 0;
		ssize_t used = nghttp2_hd_inflate_hd2(inflater, &nv, &flags, p, left, 1);
		if (used < 0)
			die("cannot decode the server's header block");
		p += used;
		left -= (size_t)used;
		if (flags & NGHTTP2_HD_INFLATE_EMIT && s) {
			if (nv.namelen == 11 && !memcmp(nv.name, "grpc-status", 11))
				s->grpc_status = atoi((const char *)nv.value);
			else if (nv.namelen == 12 && !memcmp(nv.name, "grpc-message", 12))
				snprintf(s->message, sizeof s->message, "%.*s", (int)nv.valuelen, nv.value);
		}
		if (flags & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(inflater);
			break;
		}
		if (used == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT))
			break;
	}
	if (s && (header_flags & FL_END_STREAM))
		s->done = true;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void handle_frame(uint8_t type, uint8_t flags, int32_t id, const uint8_t *payload, size_t length)
{
	struct stream *s = stream_of(id);
	if (getenv("H2_PROBE_DEBUG"))
		fprintf(stderr, "frame type %u flags %#x stream %d length %zu\n", type, flags, id, length);
	if (getenv("H2_PROBE_DEBUG") && type == F_GOAWAY && length > 8)
		fprintf(stderr, "goaway debug data: %.*s\n", (int)(length - 8), payload + 8);
	switch (type) {
	case F_SETTINGS:
		if (!(flags & FL_ACK))
			frame(F_SETTINGS, FL_ACK, 0, NULL, 0);
		break;
	case F_PING:
		if (!(flags & FL_ACK) && length == 8)
			frame(F_PING, FL_ACK, 0, payload, 8);
		break;
	case F_GOAWAY:
		if (length >= 8) {
			goaway = true;
			goaway_last = be32(payload) & 0x7fffffff;
			goaway_code = be32(payload + 4);
		}
		break;
	case F_WINDOW:
		if (id == 0 && length == 4)
			send_window += be32(payload) & 0x7fffffff;
		break;
	case F_RST:
		/* A reset after the trailers (grpc-go ends a call whose request is still coming so) keeps the status. */
		if (s && length == 4 && s->grpc_status < 0) {
			s->reset = true;
			s->reset_code = be32(payload);
			s->done = true;
		}
		break;
	case F_DATA:
		if (s) {
			s->data_bytes += length;
			if (flags & FL_END_STREAM)
				s->done = true;
		}
		break;
	case F_HEADERS: {
		size_t skip = 0, pad = 0;
		if (flags & FL_PADDED) {
			pad = payload[0];
			skip = 1;
		}
		if (flags & FL_PRIORITY)
			skip += 5;
		if (skip + pad > length)
			die("bad HEADERS padding from the server");
		header_block_length = 0;
		header_stream = id;
		header_flags = flags;
		memcpy(header_block, payload + skip, length - skip - pad);
		header_block_length = length - skip - pad;
		if (flags & FL_END_HEADERS)
			decode_headers();
		break;
	}
	case F_CONT:
		if (header_block_length + length > sizeof header_block)
			die("header block too long");
		memcpy(header_block + header_block_length, payload, length);
		header_block_length += length;
		if (flags & FL_END_HEADERS)
			decode_headers();
		break;
	default:
		break;
	}
}

/* Reads what is there (waiting up to timeout_ms for the first bytes) and handles every whole frame. */
static void read_frames(int timeout_ms)
{
	/* A frame handler that answers (a SETTINGS or PING ack) flushes, and flushing reads: a read nested in
	 * the loop below would move the buffer under it (a segfault seen in 10-bad-client-input). The outer
	 * loop picks up whatever arrives meanwhile. */
	static bool reading;
	if (eof || reading)
		return;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return;
	if (in_length == sizeof in)
		die("a frame larger than the receive buffer");
	ssize_t n = recv(fd, in + in_length, sizeof in - in_length, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		eof = true;
		return;
	}
	if (n < 0)
		return;
	in_length += (size_t)n;
	reading = true;
	size_t at = 0;
	while (in_length - at >= 9) {
		size_t length = (size_t)in[at] << 16 | (size_t)in[at + 1] << 8 | in[at + 2];
		if (length > sizeof in - 9) {
			/* not HTTP/2 (e.g. an HTTP/1.1 "400 Bad Request" for a bad preface): dropped */
			in_length = 0;
			reading = false;
			return;
		}
		if (in_length - at < 9 + length)
			break;
		int32_t id = (int32_t)(be32(in + at + 5) & 0x7fffffff);
		handle_frame(in[at + 3], in[at + 4], id, in + at + 9, length);
		at += 9 + length;
	}
	memmove(in, in + at, in_length - at);
	in_length -= at;
	reading = false;
}

static void send_headers(int32_t id, const char *path, const char *content_type, bool end_stream)
{
	nghttp2_nv nv[] = {
		{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)":authority", (uint8_t *)"127.0.0.1", 10, 9, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"content-type", (uint8_t *)content_type, 12, strlen(content_type), NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"te", (uint8_t *)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE },
	};
	uint8_t block[4096];
	ssize_t length = nghttp2_hd_deflate_hd(deflater, block, sizeof block, nv, sizeof nv / sizeof nv[0]);
	if (length < 0)
		die("cannot encode headers");
	frame(F_HEADERS, FL_END_HEADERS | (end_stream ? FL_END_STREAM : 0), (uint32_t)id, block, (size_t)length);
}

/* Sends DATA, waiting for the connection window when it is short. */
static void send_data(int32_t id, const uint8_t *bytes, size_t length, bool end_stream)
{
	uint64_t deadline = now_ms() + 10000;
	while (send_window < (int64_t)length && !eof) {
		if (now_ms() > deadline)
			die("no WINDOW_UPDATE from the server");
		read_frames(100);
	}
	send_window -= (int64_t)length;
	frame(F_DATA, end_stream ? FL_END_STREAM : 0, (uint32_t)id, bytes, length);
}

/* A gRPC message: flag, 4-byte length, body; declared may differ from the body's length. */
static void send_message(int32_t id, uint8_t flag, uint32_t declared, const uint8_t *body, size_t length, bool end)
{
	uint8_t *m = malloc(5 + length);
	m[0] = flag;
	m[1] = (uint8_t)(declared >> 24);
	m[2] = (uint8_t)(declared >> 16);
	m[3] = (uint8_t)(declared >> 8);
	m[4] = (uint8_t)declared;
	if (length)
		memcpy(m + 5, body, length);
	send_data(id, m, 5 + length, end);
	free(m);
}

/* A protobuf bytes field under 128 bytes at out: its tag byte, its length, its bytes; returns the bytes written. */
static size_t put_bytes_field(uint8_t *out, uint8_t tag, const void *data, size_t length)
{
	out[0] = tag;
	out[1] = (uint8_t)length;
	memcpy(out + 2, data, length);
	return 2 + length;
}

/* PutRequest{key: 1, value: 2} */
static size_t put_request(uint8_t *out, const char *key, const char *value)
{
	size_t at = put_bytes_field(out, 0x0a, key, strlen(key));
	return at + put_bytes_field(out + at, 0x12, value, strlen(value));
}

static void setup_streams(size_t count)
{
	stream_count = count;
	streams = calloc(count, sizeof *streams);
	for (size_t i = 0; i < count; i++)
		streams[i].grpc_status = -1;
}

static bool wait_done(int32_t id, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	while (!stream_of(id)->done && !eof && now_ms() < deadline)
		read_frames(50);
	return stream_of(id)->done;
}

static void report(const char *name, int32_t id)
{
	struct stream *s = stream_of(id);
	if (s->reset)
		printf("%s rst=%u\n", name, s->reset_code);
	else if (!s->done)
		printf("%s no-answer\n", name);
	else
		printf("%s grpc-status=%d message=%s\n", name, s->grpc_status, s->message);
	fflush(stdout);
}

static int garbage(void)
{
	static const struct {
		const char *name;
		const char *path;
		const char *body; /* hex */
		uint8_t flag;
		long declared; /* -1: the body's length */
		bool end;
	} cases[] = {
		{ "put-bad-varint", "/etcdserverpb.KV/Put", "08ffffffffffffffffffffff01", 0, -1, true },
		{ "put-bad-wiretype", "/etcdserverpb.KV/Put", "0f00", 0, -1, true },
		{ "put-truncated-field", "/etcdserverpb.KV/Put", "0a7f61", 0, -1, true },
		{ "put-random", "/etcdserverpb.KV/Put",
		  "9be2f41c0e57a3d8c4917be02a5c36ff81d4b9e07723c6a15e08fd93bb4e6102", 0, -1, true },
		{ "range-bad-varint", "/etcdserverpb.KV/Range", "08ffffffffffffffffffffff01", 0, -1, true },
		{ "txn-bad-wiretype", "/etcdserverpb.KV/Txn", "0f00", 0, -1, true },
		{ "lease-grant-truncated", "/etcdserverpb.Lease/LeaseGrant", "0a7f61", 0, -1, true },
		{ "watch-bad-varint", "/etcdserverpb.Watch/Watch", "08ffffffffffffffffffffff01", 0, -1, true },
		{ "keepalive-bad-wiretype", "/etcdserverpb.Lease/LeaseKeepAlive", "0f00", 0, -1, true },
		{ "put-short-message", "/etcdserverpb.KV/Put", "0a03616263", 0, 100, true },
		{ "put-no-message", "/etcdserverpb.KV/Put", NULL, 0, 0, true },
		{ "put-compressed", "/etcdserverpb.KV/Put", "0a0161", 1, -1, true },
		{ "put-declared-64MiB", "/etcdserverpb.KV/Put", "0a0161", 0, 64L << 20, false },
		{ "unknown-method", "/etcdserverpb.KV/Nope", "0a0161", 0, -1, true },
	};
	size_t n = sizeof cases / sizeof cases[0];
	setup_streams(n + 1);
	start_connection();
	int32_t id = 1;
	for (size_t i = 0; i < n; i++, id += 2) {
		uint8_t body[256];
		size_t length = 0;
		if (cases[i].body != NULL) {
			for (const char *h = cases[i].body; h[0] && h[1]; h += 2) {
				unsigned byte;
				sscanf(h, "%2x", &byte);
				body[length++] = (uint8_t)byte;
			}
		}
		send_headers(id, cases[i].path, "application/grpc", cases[i].body == NULL);
		if (cases[i].body != NULL)
			send_message(id, cases[i].flag, cases[i].declared < 0 ? (uint32_t)length : (uint32_t)cases[i].declared,
				body, length, cases[i].end);
		wait_done(id, 5000);
		report(cases[i].name, id);
		if (eof) {
			printf("connection closed\n");
			return 0;
		}
	}
	/* The connection still serves a good call. */
	uint8_t put[64];
	size_t length = put_request(put, "/garbage/after", "ok");
	send_headers(id, "/etcdserverpb.KV/Put", "application/grpc", false);
	send_message(id, 0, (uint32_t)length, put, length, true);
	wait_done(id, 5000);
	report("put-after-garbage", id);
	printf(eof ? "connection closed\n" : "connection open\n");
	return 0;
}

static void rst(int32_t id, uint32_t code)
{
	uint8_t c[4] = { (uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8), (uint8_t)code };
	frame(F_RST, 0, (uint32_t)id, c, 4);
}

static bool wait_data(int32_t id, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	while (stream_of(id)->data_bytes == 0 && !stream_of(id)->done && !eof && now_ms() < deadline)
		read_frames(50);
	return stream_of(id)->data_bytes > 0;
}

/* Bidirectional streams ended in odd ways: garbage after a good Watch create, a reset watch, a half-closed
 * watch, a keep-alive of an unknown lease then reset, and watches left open when the client drops the
 * connection while a put they watch is in flight. */
static int bidi(void)
{
	/* WatchRequest{create_request{key "/bidi", range_end "/bidj"}}, LeaseKeepAliveRequest{ID 123} */
	static const uint8_t create[] = { 0x0a, 0x0e, 0x0a, 0x05, '/', 'b', 'i', 'd', 'i', 0x12, 0x05, '/', 'b', 'i', 'd', 'j' };
	static const uint8_t keepalive[] = { 0x08, 0x7b };
	static const uint8_t garbage[] = { 0x0f, 0x00 };
	setup_streams(16);
	start_connection();
	const char *watch = "/etcdserverpb.Watch/Watch";
	/* 1: a good create, then garbage on the same stream */
	send_headers(1, watch, "application/grpc", false);
	send_message(1, 0, sizeof create, create, sizeof create, false);
	printf("watch-created %s\n", wait_data(1, 5000) ? "yes" : "no");
	send_message(1, 0, sizeof garbage, garbage, sizeof garbage, false);
	wait_done(1, 5000);
	report("watch-garbage-after-create", 1);
	/* 3: a create, then the client resets the stream */
	send_headers(3, watch, "application/grpc", false);
	send_message(3, 0, sizeof create, create, sizeof create, false);
	wait_data(3, 5000);
	rst(3, 8 /* CANCEL */);
	/* 5: a create, then the client half-closes */
	send_headers(5, watch, "application/grpc", false);
	send_message(5, 0, sizeof create, create, sizeof create, false);
	wait_data(5, 5000);
	send_data(5, NULL, 0, true);
	/* 7: a keep-alive of an unknown lease: answered (TTL 0), then reset by the client */
	send_headers(7, "/etcdserverpb.Lease/LeaseKeepAlive", "application/grpc", false);
	send_message(7, 0, sizeof keepalive, keepalive, sizeof keepalive, false);
	printf("keepalive-answered %s\n", wait_data(7, 5000) ? "yes" : "no");
	rst(7, 8);
	/* 9: a put the watches see */
	uint8_t put[64];
	size_t length = put_request(put, "/bidi/x", "1");
	send_headers(9, "/etcdserverpb.KV/Put", "application/grpc", false);
	send_message(9, 0, (uint32_t)length, put, length, true);
	wait_done(9, 5000);
	report("put-after-bidi", 9);
	/* 11, 13: watches left open; a put in flight; the client drops the connection */
	for (int32_t id = 11; id <= 13; id += 2) {
		send_headers(id, watch, "application/grpc", false);
		send_message(id, 0, sizeof create, create, sizeof create, false);
		wait_data(id, 5000);
	}
	length = put_request(put, "/bidi/y", "2");
	send_headers(15, "/etcdserverpb.KV/Put", "application/grpc", false);
	send_message(15, 0, (uint32_t)length, put, length, true);
	printf(eof ? "connection closed\n" : "connection open\n");
	fflush(stdout);
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close); /* RST */
	close(fd);
	return 0;
}

static uint32_t lcg = 12345;
static uint8_t random_byte(void)
{
	lcg = lcg * 1103515245u + 12345u;
	return (uint8_t)(lcg >> 16);
}

static int broken(const char *kind)
{
	setup_streams(4);
	bool expect_close = true;
	if (!strcmp(kind, "random")) {
		uint8_t junk[4096];
		for (size_t i = 0; i < sizeof junk; i++)
			junk[i] = random_byte();
		junk[0] = 0x9b; /* neither "PRI" nor an HTTP/1.1 method */
		send_all(junk, sizeof junk);
	} else if (!strcmp(kind, "bad-preface")) {
		send_all("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", 24);
	} else {
		start_connection();
		if (!strcmp(kind, "data-stream0")) {
			frame(F_DATA, 0, 0, "abcd", 4);
		} else if (!strcmp(kind, "bad-hpack")) {
			/* an indexed field far past the static and (empty) dynamic tables */
			static const uint8_t block[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
			frame(F_HEADERS, FL_END_HEADERS | FL_END_STREAM, 1, block, sizeof block);
		} else if (!strcmp(kind, "settings-length")) {
			frame(F_SETTINGS, 0, 0, "\0\4\0\0\0", 5);
		} else if (!strcmp(kind, "oversized-frame")) {
			/* a DATA frame header announcing 16 MiB - 1 (over the default 16 KiB max frame size) */
			uint8_t h[9] = { 0xff, 0xff, 0xff, F_DATA, 0, 0, 0, 0, 1 };
			send_all(h, 9);
			uint8_t filler[4096] = { 0 };
			send_all(filler, sizeof filler);
		} else if (!strcmp(kind, "even-stream")) {
			send_headers(2, "/etcdserverpb.KV/Range", "application/grpc", true);
		} else if (!strcmp(kind, "window-overflow")) {
			uint8_t w[4] = { 0x7f, 0xff, 0xff, 0xff };
			frame(F_WINDOW, 0, 0, w, 4);
			frame(F_WINDOW, 0, 0, w, 4);
		} else if (!strcmp(kind, "abort-mid-frame")) {
			uint8_t h[9] = { 0, 0, 100, F_HEADERS, FL_END_HEADERS, 0, 0, 0, 1 };
			send_all(h, 9);
			send_all("\x82\x86", 2);
			expect_close = false;
		} else if (!strcmp(kind, "abort-mid-message")) {
			uint8_t put[64];
			size_t length = put_request(put, "/abort/mid", "never");
			send_headers(1, "/etcdserverpb.KV/Put", "application/grpc", false);
			uint8_t half[5 + 64] = { 0, 0, 0, 0, (uint8_t)length };
			memcpy(half + 5, put, length);
			send_data(1, half, 5 + length / 2, false);
			expect_close = false;
		} else {
			die("unknown kind");
		}
	}
	if (!expect_close) {
		read_frames(200);
		printf("aborted by the client\n");
		return 0;
	}
	uint64_t deadline = now_ms() + 5000;
	while (!eof && now_ms() < deadline) {
		read_frames(50);
		/* Without a preface the server may answer HTTP/1.1 bytes: drop what does not parse as frames. */
		if (in_length > sizeof in / 2)
			in_length = 0;
	}
	if (goaway)
		printf("goaway=%u\n", goaway_code);
	printf(eof ? "closed\n" : "open\n");
	return 0;
}

static int many(int count, const char *prefix)
{
	setup_streams((size_t)count);
	start_connection();
	/* Every stream at once: HEADERS and the whole request, without waiting for answers. */
	for (int i = 0; i < count && !eof; i++) {
		int32_t id = 2 * i + 1;
		char key[128];
		snprintf(key, sizeof key, "%s%05d", prefix, i);
		uint8_t put[256];
		size_t length = put_request(put, key, "v");
		send_headers(id, "/etcdserverpb.KV/Put", "application/grpc", false);
		send_message(id, 0, (uint32_t)length, put, length, true);
	}
	uint64_t deadline = now_ms() + 30000;
	for (;;) {
		int open = 0;
		for (int i = 0; i < count; i++)
			open += !streams[i].done;
		if (open == 0 || eof || now_ms() > deadline)
			break;
		read_frames(50);
	}
	int ok = 0, error = 0, refused = 0, unanswered = 0;
	for (int i = 0; i < count; i++) {
		struct stream *s = &streams[i];
		if (s->reset)
			refused++;
		else if (!s->done)
			unanswered++;
		else if (s->grpc_status == 0) {
			ok++;
			printf("ok %s%05d\n", prefix, i);
		} else
			error++;
	}
	printf("ok=%d error=%d refused=%d unanswered=%d goaway=%s closed=%s\n", ok, error, refused, unanswered,
		goaway ? "yes" : "no", eof ? "yes" : "no");
	return 0;
}

/* Idle clients that hold HTTP/2 connections open and never call: they must not lock out other clients. */
static int idle(int count, int seconds)
{
	int *fds = calloc((size_t)count, sizeof(int));
	if (!fds)
		die("out of memory");
	uint8_t settings[9] = { 0, 0, 0, F_SETTINGS, 0, 0, 0, 0, 0 };
	for (int i = 0; i < count; i++) {
		if (i > 0)
			connect_to(port_of_probe);
		fds[i] = fd;
		if (write(fd, PREFACE, strlen(PREFACE)) < 0 || write(fd, settings, sizeof settings) < 0)
			die("write to an idle connection failed");
	}
	printf("held %d\n", count);
	fflush(stdout);
	uint64_t deadline = now_ms() + (uint64_t)seconds * 1000u;
	while (now_ms() < deadline) {
		struct pollfd input = { .fd = 0, .events = POLLIN };
		if (poll(&input, 1, 200) == 1) {
			char byte;
			if (read(0, &byte, 1) <= 0)
				break;
		}
	}
	int closed = 0;
	for (int i = 0; i < count; i++) {
		char buffer[4096];
		ssize_t got;
		/* What the server sent (its SETTINGS, a GOAWAY) is drained; 0 means it closed the connection. */
		while ((got = recv(fds[i], buffer, sizeof buffer, MSG_DONTWAIT)) > 0)
			;
		if (got == 0)
			closed++;
		close(fds[i]);
	}
	printf("closed=%d\n", closed);
	free(fds);
	return 0;
}

static int put(const char *key, const char *value, int seconds)
{
	setup_streams(1);
	start_connection();
	uint64_t started = now_ms();
	uint8_t request[512];
	if (strlen(key) > 127 || strlen(value) > 127)
		die("key and value must be under 128 bytes");
	size_t length = put_request(request, key, value);
	send_headers(1, "/etcdserverpb.KV/Put", "application/grpc", false);
	send_message(1, 0, (uint32_t)length, request, length, true);
	wait_done(1, seconds * 1000);
	struct stream *s = stream_of(1);
	if (s->reset)
		printf("put rst=%u", s->reset_code);
	else if (!s->done)
		printf("put no-answer");
	else
		printf("put grpc-status=%d message=%s", s->grpc_status, s->message);
	printf(" after=%llu\n", (unsigned long long)(now_ms() - started));
	return 0;
}

/* A watcher whose client stops reading: what the server still sends has nowhere to go but its own memory. */
static int stuck_watch(const char *prefix)
{
	/* WatchRequest{create_request{key, range_end}}: PREFIX up to PREFIX with its last byte + 1, or for "" (as
	 * etcdctl's --prefix '') every key: key "\0", range_end "\0". */
	size_t length = strlen(prefix);
	if (length > 100)
		die("the prefix must be at most 100 bytes");
	uint8_t key[101] = { 0 }, end[101] = { 0 };
	size_t key_length = 1;
	if (length > 0) {
		memcpy(key, prefix, length);
		memcpy(end, prefix, length);
		end[length - 1]++;
		key_length = length;
	}
	uint8_t create[256];
	size_t at = 0;
	create[at++] = 0x0a;
	create[at++] = (uint8_t)(2 * (2 + key_length));
	at += put_bytes_field(create + at, 0x0a, key, key_length);
	at += put_bytes_field(create + at, 0x12, end, key_length);
	setup_streams(1);
	start_connection();
	send_headers(1, "/etcdserverpb.Watch/Watch", "application/grpc", false);
	send_message(1, 0, (uint32_t)at, create, at, false);
	if (!wait_data(1, 10000))
		die("the watch was not created within 10 s");
	printf("watching\n");
	fflush(stdout);
	char byte;
	while (read(0, &byte, 1) > 0)
		;
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
	close(fd);
	printf("gone\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		die("usage: h2-probe PORT garbage | broken KIND | many N PREFIX | idle N SECONDS | put KEY VALUE SECONDS | "
		    "stuck-watch PREFIX");
	port_of_probe = atoi(argv[1]);
	connect_to(port_of_probe);
	if (nghttp2_hd_deflate_new(&deflater, 4096) != 0 || nghttp2_hd_inflate_new(&inflater) != 0)
		die("nghttp2 HPACK setup failed");
	if (!strcmp(argv[2], "garbage"))
		return garbage();
	if (!strcmp(argv[2], "bidi"))
		return bidi();
	if (!strcmp(argv[2], "broken") && argc == 4)
		return broken(argv[3]);
	if (!strcmp(argv[2], "many") && argc == 5)
		return many(atoi(argv[3]), argv[4]);
	if (!strcmp(argv[2], "idle") && argc == 5)
		return idle(atoi(argv[3]), atoi(argv[4]));
	if (!strcmp(argv[2], "put") && argc == 6)
		return put(argv[3], argv[4], atoi(argv[5]));
	if (!strcmp(argv[2], "stuck-watch") && argc == 4)
		return stuck_watch(argv[3]);
	die("usage: h2-probe PORT garbage | broken KIND | many N PREFIX | idle N SECONDS | put KEY VALUE SECONDS | "
	    "stuck-watch PREFIX");
}
