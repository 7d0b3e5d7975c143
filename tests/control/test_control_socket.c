/* tests/control/test_control_socket.c: the control socket server with real Unix sockets. The server runs in
 * this process, driven as the node drives it (poll its one fd, call control_socket_process); clients are
 * plain sockets, and one client is a child process under another uid. The handler echoes, or holds requests
 * so that the test answers them later, out of order, or after the client has gone. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control_socket.h"

#include "check.h"

/* ---- a test handler: "echo" answers at once, "hold" keeps the request for the test ---------------- */

enum { MAX_HELD = 64 };

struct test_handler {
	struct control_socket *server;
	struct control_request *held[MAX_HELD];
	int held_count;
	int seen;
};

static void test_handler(void *context, struct control_request *request)
{
	struct test_handler *h = context;
	h->seen++;
	if (strcmp(request->command, "echo") == 0) {
		json_t *result = json_object();
		json_t *arg = json_object_get(request->json, "arg");
		json_object_set(result, "echo", arg ? arg : json_null());
		control_socket_reply(h->server, request, result);
	} else if (strcmp(request->command, "hold") == 0 && h->held_count < MAX_HELD) {
		h->held[h->held_count++] = request;
	} else {
		control_socket_reply_error(h->server, request, "Unimplemented", "unknown command %s", request->command);
	}
}

/* Removes and returns the held request with the given id. */
static struct control_request *take_held(struct test_handler *h, long long id)
{
	for (int k = 0; k < h->held_count; k++) {
		if (json_integer_value(h->held[k]->id) == id) {
			struct control_request *request = h->held[k];
			h->held[k] = h->held[--h->held_count];
			return request;
		}
	}
	return NULL;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the server as the node would: wait for its fd, then process. */
static void pump(struct control_socket *server, int milliseconds)
{
	long long deadline = now_ms() + milliseconds;
	do {
		struct pollfd p = {.fd = control_socket_fd(server), .events = POLLIN};
		long long left = deadline - now_ms();
		if (poll(&p, 1, left > 0 ? (int)(left < 5 ? left : 5) : 0) > 0)
			CHECK(control_socket_process(server) == 0, "process: %s", strerror(errno));
	} while (now_ms() < deadline);
}

static void pump_until_seen(struct control_socket *server, struct test_handler *h, int count)
{
	long long deadline = now_ms() + 3000;
	while (h->seen < count && now_ms() < deadline)
		pump(server, 5);
}

static void set_address(struct sockaddr_un *address, const char *path)
{
	memset(address, 0, sizeof(*address));
	address->sun_family = AF_UNIX;
	size_t length = strlen(path);
	if (length >= sizeof(address->sun_path))
		length = sizeof(address->sun_path) - 1;
	memcpy(address->sun_path, path, length);
}

static int client_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un address;
	set_address(&address, path);
	if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static void send_text(int fd, const char *text)
{
	size_t length = strlen(text), done = 0;
	while (done < length) {
		ssize_t n = send(fd, text + done, length - done, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		done += (size_t)n;
	}
}

/* A client with its own input buffer: reads one line while pumping the server. */
struct client {
	int fd;
	char buf[1 << 16];
	size_t length;
	bool eof;
};

/* Returns a malloc'ed line without its newline, or NULL at EOF or after the timeout. */
static char *client_line(struct control_socket *server, struct client *c, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		char *newline = memchr(c->buf, '\n', c->length);
		if (newline) {
			size_t n = (size_t)(newline - c->buf);
			char *line = strndup(c->buf, n);
			memmove(c->buf, newline + 1, c->length - n - 1);
			c->length -= n + 1;
			return line;
		}
		if (c->eof || now_ms() > deadline)
			return NULL;
		if (server)
			pump(server, 2);
		else
			usleep(2000);
		ssize_t r = recv(c->fd, c->buf + c->length, sizeof(c->buf) - c->length, MSG_DONTWAIT);
		if (r > 0)
			c->length += (size_t)r;
		else if (r == 0 || (r < 0 && errno == ECONNRESET))
			c->eof = true; /* a close with our request unread resets instead of EOF */
	}
}

/* True when the client sees EOF (the server closed) within the timeout. */
static bool client_sees_eof(struct control_socket *server, struct client *c, int timeout_ms)
{
	char *line = client_line(server, c, timeout_ms);
	if (line) {
		printf("  unexpected line: %s\n", line);
		free(line);
		return false;
	}
	return c->eof;
}

static char directory[64];
static char socket_path[100];

static struct control_socket *open_server_limits(struct test_handler *h, size_t max_line, size_t max_pending)
{
	char error[256] = "";
	struct control_socket_config config = {.path = socket_path,
	                                       .max_line_bytes = max_line,
	                                       .handler = test_handler,
	                                       .handler_context = h,
	                                       .max_pending_per_connection = max_pending};
	memset(h, 0, sizeof(*h));
	struct control_socket *server = control_socket_open(&config, error, sizeof(error));
	CHECK(server != NULL, "open %s: %s", socket_path, error);
	if (server)
		h->server = server;
	return server;
}

static struct control_socket *open_server(struct test_handler *h, size_t max_line)
{
	return open_server_limits(h, max_line, 0);
}

static void release_all(struct test_handler *h)
{
	while (h->held_count > 0)
		control_socket_drop(h->server, h->held[--h->held_count]);
}

/* ---- tests ------------------------------------------------------------------------------------------- */

static void test_echo_and_mode(void)
{
	struct test_handler h;
	struct control_socket *server = open_server(&h, 0);
	if (!server)
		return;
	struct stat st;
	CHECK(lstat(socket_path, &st) == 0 && S_ISSOCK(st.st_mode), "socket file missing");
	CHECK((st.st_mode & 07777) == 0600, "mode %o, want 0600", (unsigned)(st.st_mode & 07777));

	struct client c = {.fd = client_connect(socket_path)};
	CHECK(c.fd >= 0, "connect: %s", strerror(errno));
	send_text(c.fd, "{\"id\":1,\"command\":\"echo\",\"arg\":\"hello\"}\n");
	char *line = client_line(server, &c, 3000);
	CHECK(line && strcmp(line, "{\"id\":1,\"ok\":true,\"result\":{\"echo\":\"hello\"}}") == 0, "got %s", line);
	free(line);
	/* An unknown command gets an error response carrying the id. */
	send_text(c.fd, "{\"id\":2,\"command\":\"nope\"}\r\n");
	line = client_line(server, &c, 3000);
	CHECK(line && strcmp(line, "{\"id\":2,\"ok\":false,\"error\":\"unknown command nope\",\"code\":\"Unimplemented\"}") ==
	          0,
	      "got %s", line);
	free(line);
	close(c.fd);
	pump(server, 20);

	/* The server's fd works inside an outer epoll set, as the node's loop uses it. */
	int outer = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event event = {.events = EPOLLIN, .data.u32 = 7};
	CHECK(epoll_ctl(outer, EPOLL_CTL_ADD, control_socket_fd(server), &event) == 0, "epoll_ctl");
	struct epoll_event got;
	CHECK(epoll_wait(outer, &got, 1, 0) == 0, "idle server must not be ready");
	int fd = client_connect(socket_path);
	CHECK(epoll_wait(outer, &got, 1, 1000) == 1 && got.data.u32 == 7, "a new connection must wake the loop");
	close(fd);
	close(outer);
	pump(server, 20);
	struct control_socket_stats stats;
	control_socket_get_stats(server, &stats);
	CHECK(stats.connections_open == 0, "open connections %llu", (unsigned long long)stats.connections_open);
	control_socket_close(server);
	CHECK(lstat(socket_path, &st) != 0 && errno == ENOENT, "socket file must be removed on close");
}

/* The mode does not depend on the process umask: 0600 under umask 0 and under a umask that removes the
 * owner's write bit. */
static void test_mode_under_umask(void)
{
	const mode_t masks[] = {0, 0277};
	for (size_t k = 0; k < 2; k++) {
		mode_t old = umask(masks[k]);
		struct test_handler h;
		struct control_socket *server = open_server(&h, 0);
		umask(old);
		if (!server)
			continue;
		struct stat st;
		CHECK(lstat(socket_path, &st) == 0 && (st.st_mode & 07777) == 0600, "umask %03o: mode %o, want 0600",
		      (unsigned)masks[k], (unsigned)(st.st_mode & 07777));
		control_socket_close(server);
	}
}

static void test_async_out_of_order(void)
{
	struct test_handler h;
	struct control_socket *server = open_server(&h, 0);
	if (!server)
		return;
	struct client c = {.fd = client_connect(socket_path)};
	/* Three held requests and one echo, pipelined in one write. */
	send_text(c.fd, "{\"id\":1,\"command\":\"hold\"}\n{\"id\":2,\"command\":\"hold\"}\n"
	                "{\"id\":3,\"command\":\"hold\"}\n{\"id\":4,\"command\":\"echo\",\"arg\":4}\n");
	pump_until_seen(server, &h, 4);
	CHECK(h.held_count == 3, "held %d", h.held_count);
	char *line = client_line(server, &c, 3000);
	CHECK(line && strstr(line, "\"id\":4,") && strstr(line, "\"echo\":4"), "echo answered first, got %s", line);
	free(line);

	struct control_request *r3 = take_held(&h, 3), *r1 = take_held(&h, 1), *r2 = take_held(&h, 2);
	CHECK(r1 && r2 && r3, "held requests");
	if (r1 && r2 && r3) {
		CHECK(control_socket_request_connected(server, r3), "connection must be open");
		json_t *result = json_pack("{s:s}", "member", "x");
		control_socket_reply(server, r3, result);
		control_socket_reply_error(server, r1, "NotFound", "etcdserver: member not found");
		control_socket_reply(server, r2, NULL);
		const char *want[] = {
		    "{\"id\":3,\"ok\":true,\"result\":{\"member\":\"x\"}}",
		    "{\"id\":1,\"ok\":false,\"error\":\"etcdserver: member not found\",\"code\":\"NotFound\"}",
		    "{\"id\":2,\"ok\":true,\"result\":{}}",
		};
		for (int k = 0; k < 3; k++) {
			line = client_line(server, &c, 3000);
			CHECK(line && strcmp(line, want[k]) == 0, "reply %d: got %s, want %s", k, line, want[k]);
			free(line);
		}
	}
	struct control_socket_stats stats;
	control_socket_get_stats(server, &stats);
	CHECK(stats.requests == 4 && stats.requests_pending == 0, "requests %llu pending %llu",
	      (unsigned long long)stats.requests, (unsigned long long)stats.requests_pending);
	close(c.fd);
	control_socket_close(server);
}

static void test_reply_after_disconnect(void)
{
	struct test_handler h;
	struct control_socket *server = open_server(&h, 0);
	if (!server)
		return;
	/* Case 1: the server has noticed the close (slot freed) before the reply. */
	int a = client_connect(socket_path);
	send_text(a, "{\"id\":7,\"command\":\"hold\"}\n");
	pump_until_seen(server, &h, 1);
	close(a);
	pump(server, 50);
	struct control_socket_stats stats;
	control_socket_get_stats(server, &stats);
	CHECK(stats.connections_open == 0, "closed connection still open");
	/* A new connection probably reuses the slot: the generation must keep the old reply away from it. */
	struct client b = {.fd = client_connect(socket_path)};
	pump(server, 20);
	struct control_request *r = take_held(&h, 7);
	CHECK(r && !control_socket_request_connected(server, r), "request must report its connection closed");
	if (r)
		control_socket_reply(server, r, json_pack("{s:i}", "stale", 1));
	send_text(b.fd, "{\"id\":8,\"command\":\"echo\",\"arg\":8}\n");
	char *line = client_line(server, &b, 3000);
	CHECK(line && strstr(line, "\"id\":8,"), "new connection must see only its own reply, got %s", line);
	free(line);

	/* Case 2: the client is gone but the server has not looked yet: the send fails and is dropped. */
	int d = client_connect(socket_path);
	send_text(d, "{\"id\":9,\"command\":\"hold\"}\n{\"id\":10,\"command\":\"hold\"}\n");
	pump_until_seen(server, &h, 4);
	close(d);
	r = take_held(&h, 9);
	if (r)
		control_socket_reply_error(server, r, "Unavailable", "etcdserver: no leader");
	r = take_held(&h, 10);
	if (r)
		control_socket_reply(server, r, NULL);
	pump(server, 50);
	control_socket_get_stats(server, &stats);
	CHECK(stats.replies_dropped >= 2, "dropped %llu", (unsigned long long)stats.replies_dropped);
	CHECK(stats.connections_open == 1, "open %llu", (unsigned long long)stats.connections_open);

	/* Case 3: requests still held when the server closes are freed by it (no leak under ASan). */
	send_text(b.fd, "{\"id\":11,\"command\":\"hold\"}\n");
	pump_until_seen(server, &h, 6);
	CHECK(h.held_count == 1, "held %d", h.held_count);
	h.held_count = 0;
	close(b.fd);
	control_socket_close(server);
}

static void test_half_close_keeps_the_reply(void)
{
	struct test_handler h;
	struct control_socket *server = open_server(&h, 0);
	if (!server)
		return;
	/* `echo REQUEST | nc -U` style: the client shuts its side after the last line, which has no newline. */
	struct client c = {.fd = client_connect(socket_path)};
	send_text(c.fd, "{\"id\":5,\"command\":\"hold\"}");
	shutdown(c.fd, SHUT_WR);
	pump_until_seen(server, &h, 1);
	pump(server, 30);
	struct control_request *r = take_held(&h, 5);
	CHECK(r != NULL, "the last line without newline must count");
	if (r)
		control_socket_reply(server, r, NULL);
	char *line = client_line(server, &c, 3000);
	CHECK(line && strcmp(line, "{\"id\":5,\"ok\":true,\"result\":{}}") == 0, "got %s", line);
	free(line);
	CHECK(client_sees_eof(server, &c, 3000), "the server must close after the last answer");
	close(c.fd);
	control_socket_close(server);
}

static void test_bad_input(void)
{
	struct test_handler h;
	struct control_socket *server = open_server(&h, 4096);
	if (!server)
		return;
	struct client c = {.fd = client_connect(socket_path)};
	const struct {
		const char *request;
		const char *response_prefix;
	} cases[] = {
	    {"{not json\n", "{\"id\":null,\"ok\":false,\"error\":\"invalid request: "},
	    {"[1,2]\n", "{\"id\":null,\"ok\":false,\"error\":\"invalid request: not a JSON object\",\"code\":\"InvalidArgument\"}"},
	    {"{\"command\":\"echo\"}\n", "{\"id\":null,\"ok\":false,\"error\":\"invalid request: \\\"id\\\" must be"},
	    {"{\"id\":-1,\"command\":\"echo\"}\n", "{\"id\":null,\"ok\":false,"},
	    {"{\"id\":\"1\",\"command\":\"echo\"}\n", "{\"id\":null,\"ok\":false,"},
	    {"{\"id\":12,\"command\":3}\n", "{\"id\":12,\"ok\":false,\"error\":\"invalid request: \\\"command\\\" must be"},
	    {"{\"id\":13,\"id\":14,\"command\":\"echo\"}\n", "{\"id\":null,\"ok\":false,"},
	    {"\n   \n{\"id\":15,\"command\":\"echo\",\"arg\":\"still open\"}\n", "{\"id\":15,\"ok\":true,"},
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		send_text(c.fd, cases[k].request);
		char *line = client_line(server, &c, 3000);
		bool prefix = line && strncmp(line, cases[k].response_prefix, strlen(cases[k].response_prefix)) == 0;
		bool invalid = line && strstr(line, "\"code\":\"InvalidArgument\"") != NULL;
		CHECK(prefix && invalid == (k != 7), "case %zu: got %s, want prefix %s", k, line, cases[k].response_prefix);
		free(line);
	}

	/* An over-long line without a newline yet: error response, then the server closes. */
	char *big = malloc(6000);
	memset(big, 'a', 5999);
	big[5999] = '\0';
	send_text(c.fd, big);
	char *line = client_line(server, &c, 3000);
	CHECK(line && strcmp(line, "{\"id\":null,\"ok\":false,\"error\":\"invalid request: line longer than 4096 "
	                           "bytes\",\"code\":\"InvalidArgument\"}") == 0,
	      "got %s", line);
	free(line);
	CHECK(client_sees_eof(server, &c, 3000), "over-long line must close the connection");
	close(c.fd);

	/* An over-long line that arrives complete with its newline, after a good request in the same write. */
	struct client d = {.fd = client_connect(socket_path)};
	char *text = malloc(7000);
	int n = snprintf(text, 7000, "{\"id\":21,\"command\":\"echo\"}\n{\"id\":22,\"command\":\"echo\",\"arg\":\"");
	memset(text + n, 'b', 5000);
	strcpy(text + n + 5000, "\"}\n");
	send_text(d.fd, text);
	line = client_line(server, &d, 3000);
	CHECK(line && strstr(line, "\"id\":21,\"ok\":true"), "got %s", line);
	free(line);
	line = client_line(server, &d, 3000);
	CHECK(line && strstr(line, "line longer than 4096 bytes"), "got %s", line);
	free(line);
	CHECK(client_sees_eof(server, &d, 3000), "over-long line must close the connection");
	close(d.fd);
	free(text);
	free(big);
	struct control_socket_stats stats;
	control_socket_get_stats(server, &stats);
	CHECK(stats.bad_requests == 9, "bad requests %llu", (unsigned long long)stats.bad_requests);
	release_all(&h);
	control_socket_close(server);
}

/* A client that pipelines more requests than the server lets one connection have open: the server stops
 * reading it and dispatches the rest, in order, as answers free room. */
static void test_backpressure(void)
{
	struct test_handler h;
	struct control_socket *server = open_server_limits(&h, 0, 4);
	if (!server)
		return;
	struct client c = {.fd = client_connect(socket_path)};
	char text[1024] = "";
	for (int k = 1; k <= 7; k++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "{\"id\":%d,\"command\":\"hold\"}\n", k);
	/* The last one without its newline, then a half close: it must still come, last. */
	text[strlen(text) - 1] = '\0';
	send_text(c.fd, text);
	shutdown(c.fd, SHUT_WR);
	pump(server, 100);
	CHECK(h.seen == 4 && h.held_count == 4, "seen %d held %d, want 4 (the limit)", h.seen, h.held_count);
	struct control_request *r = take_held(&h, 2);
	if (r)
		control_socket_reply(server, r, NULL);
	pump(server, 50);
	CHECK(h.seen == 5, "one answer must let one more request in (seen %d)", h.seen);
	CHECK(h.held_count == 4 && json_integer_value(h.held[3]->id) == 5, "the next in order must be id 5");
	for (int id = 1; id <= 7; id++) {
		r = take_held(&h, id);
		if (r)
			control_socket_drop(server, r);
		pump(server, 30);
	}
	CHECK(h.seen == 7, "every request must be dispatched in the end (seen %d)", h.seen);
	release_all(&h);
	char *line = client_line(server, &c, 3000);
	CHECK(line && strcmp(line, "{\"id\":2,\"ok\":true,\"result\":{}}") == 0, "got %s", line);
	free(line);
	CHECK(client_sees_eof(server, &c, 3000), "all answered or dropped after a half close: the server closes");
	close(c.fd);
	control_socket_close(server);
}

static void test_many_connections(void)
{
	struct test_handler h;
	struct control_socket *server = open_server(&h, 0);
	if (!server)
		return;
	enum { N = 40 };
	static struct client clients[N];
	for (int k = 0; k < N; k++) {
		clients[k] = (struct client){.fd = client_connect(socket_path)};
		CHECK(clients[k].fd >= 0, "connect %d: %s", k, strerror(errno));
		char request[100];
		snprintf(request, sizeof(request), "{\"id\":%d,\"command\":\"echo\",\"arg\":%d}\n", k, k * 3);
		send_text(clients[k].fd, request);
	}
	for (int k = N - 1; k >= 0; k--) {
		char *line = client_line(server, &clients[k], 3000);
		char want[100];
		snprintf(want, sizeof(want), "{\"id\":%d,\"ok\":true,\"result\":{\"echo\":%d}}", k, k * 3);
		CHECK(line && strcmp(line, want) == 0, "client %d got %s", k, line);
		free(line);
		close(clients[k].fd);
	}
	pump(server, 30);
	struct control_socket_stats stats;
	control_socket_get_stats(server, &stats);
	CHECK(stats.connections_accepted == N && stats.connections_open == 0, "accepted %llu open %llu",
	      (unsigned long long)stats.connections_accepted, (unsigned long long)stats.connections_open);
	control_socket_close(server);
}

static void test_stale_and_in_use(void)
{
	struct test_handler h, h2;
	struct control_socket *server = open_server(&h, 0);
	if (!server)
		return;
	char error[256] = "";
	struct control_socket_config config = {.path = socket_path, .handler = test_handler, .handler_context = &h2};
	struct control_socket *second = control_socket_open(&config, error, sizeof(error));
	char want[300];
	snprintf(want, sizeof(want), "control socket %s is in use by another process", socket_path);
	CHECK(second == NULL && strcmp(error, want) == 0, "second open: %s", error);
	control_socket_close(second);
	control_socket_close(server);

	/* A socket file left behind by a dead process: nobody answers, so it is replaced. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un address;
	set_address(&address, socket_path);
	CHECK(bind(fd, (struct sockaddr *)&address, sizeof(address)) == 0, "bind: %s", strerror(errno));
	close(fd);
	server = open_server(&h, 0);
	CHECK(server != NULL, "a stale socket must be replaced");
	control_socket_close(server);

	/* Something that is not a socket is never removed. */
	FILE *file = fopen(socket_path, "w");
	fclose(file);
	error[0] = '\0';
	second = control_socket_open(&config, error, sizeof(error));
	CHECK(second == NULL && strstr(error, "exists and is not a socket"), "regular file: %s", error);
	control_socket_close(second);
	unlink(socket_path);
}

/* A client under another uid (the child, after setuid) must be refused. */
static void test_other_uid_refused(void)
{
	if (geteuid() != 0) {
		printf("SKIP test_other_uid_refused: needs root to switch the client to uid 65534\n");
		return;
	}
	struct test_handler h;
	struct control_socket *server = open_server(&h, 0);
	if (!server)
		return;
	/* First with the socket as created (0600): the kernel refuses the connect itself. Then with the file
	 * opened up (0666), to prove that the server checks SO_PEERCRED on its own. */
	CHECK(chmod(directory, 0755) == 0, "chmod dir");
	for (int open_up = 0; open_up < 2; open_up++) {
		if (open_up)
			CHECK(chmod(socket_path, 0666) == 0, "chmod socket");
		fflush(stdout);
		pid_t child = fork();
		if (child == 0) {
			if (setgid(65534) != 0 || setuid(65534) != 0)
				_exit(10);
			int fd = socket(AF_UNIX, SOCK_STREAM, 0);
			struct sockaddr_un address;
			set_address(&address, socket_path);
			if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0)
				_exit(errno == EACCES ? 20 : 21);
			struct timeval timeout = {.tv_sec = 5};
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
			/* The request is refused even when sent at once; the error arrives, then EOF. */
			send_text(fd, "{\"id\":1,\"command\":\"echo\"}\n");
			char buf[1024];
			size_t length = 0;
			ssize_t n;
			while (length < sizeof(buf) - 1 && (n = recv(fd, buf + length, sizeof(buf) - 1 - length, 0)) > 0)
				length += (size_t)n;
			buf[length] = '\0';
			bool refused = strstr(buf, "\"ok\":false") && strstr(buf, "\"code\":\"PermissionDenied\"") &&
			               strstr(buf, "peer uid 65534") && !strstr(buf, "\"echo\"") &&
			               (n == 0 || (n < 0 && errno == ECONNRESET));
			if (!refused)
				fprintf(stdout, "child got: %s\n", buf);
			_exit(refused ? 30 : 31);
		}
		int status = 0;
		long long deadline = now_ms() + 10000;
		while (waitpid(child, &status, WNOHANG) == 0 && now_ms() < deadline)
			pump(server, 5);
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (open_up)
			CHECK(code == 30, "child under uid 65534 must get a PermissionDenied error then EOF (exit %d)", code);
		else
			CHECK(code == 20, "connect under uid 65534 to a 0600 socket must fail with EACCES (exit %d)", code);
	}
	CHECK(h.seen == 0, "the handler must never see a refused request (seen %d)", h.seen);
	struct control_socket_stats stats;
	control_socket_get_stats(server, &stats);
	CHECK(stats.connections_refused == 1, "refused %llu", (unsigned long long)stats.connections_refused);
	control_socket_close(server);
	chmod(directory, 0700);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(directory, sizeof(directory), "/tmp/control-socket-test-XXXXXX");
	if (!mkdtemp(directory)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(socket_path, sizeof(socket_path), "%s/control.sock", directory);

	test_echo_and_mode();
	test_mode_under_umask();
	test_async_out_of_order();
	test_reply_after_disconnect();
	test_half_close_keeps_the_reply();
	test_bad_input();
	test_backpressure();
	test_many_connections();
	test_stale_and_in_use();
	test_other_uid_refused();

	unlink(socket_path);
	rmdir(directory);
	if (failures) {
		printf("%d check(s) failed; rerun: %s\n", failures, "meson test -C BUILD control-socket --verbose");
		return 1;
	}
	printf("control socket: all checks passed\n");
	return 0;
}
