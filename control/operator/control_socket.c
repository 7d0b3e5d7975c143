/* control/operator/control_socket.c: the operator control socket (JSON lines over a Unix stream socket). The server
 * keeps its own epoll set of the listener and the connections and exposes only that epoll fd: the owner's
 * loop watches one fd and calls control_socket_process when it is readable. Requests go to the owner's
 * handler; replies may come later, so a request names its connection by slot and generation, never by
 * pointer: a reply to a connection that closed meanwhile finds another generation and is dropped. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "alloc.h"
#include "control_socket.h"

enum {
	READ_CHUNK = 64 * 1024,
	ACCEPTS_PER_CALL = 64,
	EVENTS_PER_CALL = 64,
	READS_PER_EVENT = 4,           /* bounded work per connection and call: fairness */
	OUTPUT_HIGH_WATER = 8 << 20,   /* stop reading a connection whose client does not read its replies */
	MAX_SLOTS = 1 << 20,
};

#define LISTENER_TAG UINT64_MAX

struct connection {
	int fd;
	uint32_t slot;
	uint64_t generation;
	char *in;
	size_t in_length, in_capacity;
	char *out;
	size_t out_offset, out_length, out_capacity;
	uint32_t interest;      /* events currently registered */
	uint64_t pending;       /* requests handed to the handler and not answered yet */
	bool closing;           /* read no more; close once the output is flushed */
	bool peer_done;         /* the client shut down its side: close when answered and flushed */
	bool dead;              /* an I/O error: close at the next chance */
	bool resume;            /* complete lines wait in `in` for the pending count to drop: handle them */
};

struct control_socket {
	int epoll_fd;
	int listen_fd;
	char *path;
	dev_t socket_dev;
	ino_t socket_ino;
	size_t max_line;
	uint64_t max_pending;
	control_request_handler handler;
	void *handler_context;
	uid_t uid;
	struct connection **slots;
	uint32_t slot_count;
	uint64_t next_generation;
	struct control_request *pending; /* doubly linked list of requests not answered yet */
	struct control_socket_stats stats;
};

static void set_error(char *err, size_t errlen, const char *format, ...) __attribute__((format(printf, 3, 4)));
static void set_error(char *err, size_t errlen, const char *format, ...)
{
	if (!err || errlen == 0)
		return;
	va_list args;
	va_start(args, format);
	vsnprintf(err, errlen, format, args);
	va_end(args);
}

/* ---- IDs and bytes ---------------------------------------------------------------------------------- */

int control_parse_hex_id(const char *text, uint64_t *id)
{
	size_t length = text ? strlen(text) : 0;
	if (length == 0 || length > 16)
		return -1;
	uint64_t value = 0;
	for (size_t k = 0; k < length; k++) {
		char c = text[k];
		unsigned digit;
		if (c >= '0' && c <= '9')
			digit = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			digit = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			digit = (unsigned)(c - 'A' + 10);
		else
			return -1;
		value = value << 4 | digit;
	}
	*id = value;
	return 0;
}

char *control_format_hex_id(uint64_t id, char *buf)
{
	snprintf(buf, 17, "%llx", (unsigned long long)id);
	return buf;
}

static const char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t control_base64_encode(const unsigned char *data, size_t length, char *out)
{
	size_t o = 0;
	for (size_t k = 0; k < length; k += 3) {
		uint32_t chunk = (uint32_t)data[k] << 16;
		if (k + 1 < length)
			chunk |= (uint32_t)data[k + 1] << 8;
		if (k + 2 < length)
			chunk |= data[k + 2];
		out[o++] = base64_alphabet[chunk >> 18 & 63];
		out[o++] = base64_alphabet[chunk >> 12 & 63];
		out[o++] = k + 1 < length ? base64_alphabet[chunk >> 6 & 63] : '=';
		out[o++] = k + 2 < length ? base64_alphabet[chunk & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static int base64_value(char c)
{
	const char *at = c ? strchr(base64_alphabet, c) : NULL;
	return at ? (int)(at - base64_alphabet) : -1;
}

int control_base64_decode(const char *text, size_t length, unsigned char *out, size_t *out_length)
{
	if (length % 4 != 0)
		return -1;
	size_t o = 0;
	for (size_t k = 0; k < length; k += 4) {
		int v[4];
		int padding = 0;
		for (int j = 0; j < 4; j++) {
			if (text[k + j] == '=' && k + 4 == length && j >= 2) {
				v[j] = 0;
				padding++;
			} else if (padding) {
				return -1; /* data after padding */
			} else if ((v[j] = base64_value(text[k + j])) < 0) {
				return -1;
			}
		}
		uint32_t chunk = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		out[o++] = (unsigned char)(chunk >> 16);
		if (padding < 2)
			out[o++] = (unsigned char)(chunk >> 8);
		if (padding < 1)
			out[o++] = (unsigned char)chunk;
	}
	*out_length = o;
	return 0;
}

/* Strict UTF-8 as jansson accepts it (no overlongs, no surrogates, at most U+10FFFF), and no NUL. */
static bool valid_text(const unsigned char *s, size_t length)
{
	size_t k = 0;
	while (k < length) {
		unsigned char c = s[k];
		if (c == 0)
			return false;
		if (c < 0x80) {
			k++;
			continue;
		}
		size_t need;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (k + need >= length)
			return false;
		for (size_t j = 1; j <= need; j++) {
			if ((s[k + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[k + j] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		k += need + 1;
	}
	return true;
}

json_t *control_json_bytes(const char *data, size_t length, bool *used_base64)
{
	if (valid_text((const unsigned char *)data, length)) {
		if (used_base64)
			*used_base64 = false;
		return json_stringn(data, length);
	}
	char *encoded = malloc(4 * ((length + 2) / 3) + 1);
	if (!encoded)
		return NULL;
	size_t n = control_base64_encode((const unsigned char *)data, length, encoded);
	json_t *result = json_stringn(encoded, n);
	free(encoded);
	if (used_base64)
		*used_base64 = true;
	return result;
}

int control_json_get_bytes(const json_t *object, const char *name, char **data, size_t *length, char *err,
                           size_t errlen)
{
	json_t *member = json_object_get(object, name);
	if (!member)
		return 1;
	if (!json_is_string(member)) {
		set_error(err, errlen, "\"%s\" must be a string", name);
		return -1;
	}
	const char *text = json_string_value(member);
	size_t text_length = json_string_length(member);
	const char *encoding = json_string_value(json_object_get(object, "encoding"));
	if (encoding && strcmp(encoding, "base64") == 0) {
		unsigned char *out = malloc(3 * (text_length / 4) + 3 + 1);
		if (!out) {
			set_error(err, errlen, "out of memory");
			return -1;
		}
		size_t out_length;
		if (control_base64_decode(text, text_length, out, &out_length) != 0) {
			free(out);
			set_error(err, errlen, "\"%s\" is not valid base64", name);
			return -1;
		}
		out[out_length] = '\0';
		*data = (char *)out;
		*length = out_length;
		return 0;
	}
	if (encoding && strcmp(encoding, "text") != 0) {
		set_error(err, errlen, "unknown encoding \"%s\"", encoding);
		return -1;
	}
	char *copy = malloc(text_length + 1);
	if (!copy) {
		set_error(err, errlen, "out of memory");
		return -1;
	}
	memcpy(copy, text, text_length);
	copy[text_length] = '\0';
	*data = copy;
	*length = text_length;
	return 0;
}

/* ---- connections ------------------------------------------------------------------------------------ */

static uint64_t epoll_tag(const struct connection *conn)
{
	/* slot in the low 24 bits, generation above: an event queued for a closed connection whose slot was
	 * reused within the same batch is recognised as stale. */
	return (conn->generation << 24) | conn->slot;
}

static void update_interest(struct control_socket *server, struct connection *conn)
{
	uint32_t want = 0;
	bool output = conn->out_length > conn->out_offset;
	if (!conn->closing && !conn->peer_done && !conn->dead &&
	    conn->out_length - conn->out_offset < OUTPUT_HIGH_WATER && conn->pending < server->max_pending)
		want |= EPOLLIN;
	/* EPOLLOUT also when the connection only waits to be closed: a writable socket reports at once, and
	 * control_socket_process then closes it. */
	if (output || conn->dead || conn->resume || (conn->closing && !output) ||
	    (conn->peer_done && conn->pending == 0))
		want |= EPOLLOUT;
	if (want == conn->interest)
		return;
	struct epoll_event event = {.events = want, .data.u64 = epoll_tag(conn)};
	if (epoll_ctl(server->epoll_fd, EPOLL_CTL_MOD, conn->fd, &event) == 0)
		conn->interest = want;
	else
		conn->dead = true;
}

static struct connection *connection_of(const struct control_socket *server, uint32_t slot, uint64_t generation)
{
	if (slot >= server->slot_count)
		return NULL;
	struct connection *conn = server->slots[slot];
	return conn && conn->generation == generation ? conn : NULL;
}

static void flush_output(struct connection *conn)
{
	while (!conn->dead && conn->out_offset < conn->out_length) {
		ssize_t n = send(conn->fd, conn->out + conn->out_offset, conn->out_length - conn->out_offset,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			conn->out_offset += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			break;
		} else {
			conn->dead = true; /* EPIPE, ECONNRESET: the client is gone */
		}
	}
	if (conn->out_offset == conn->out_length)
		conn->out_offset = conn->out_length = 0;
}

/* Queues one serialized line (adds the newline) and tries to send it now. */
static void queue_line(struct control_socket *server, struct connection *conn, const char *text, size_t length)
{
	if (conn->dead)
		return;
	if (conn->out_offset > 0 && conn->out_offset == conn->out_length)
		conn->out_offset = conn->out_length = 0;
	size_t need = conn->out_length + length + 1;
	if (need > conn->out_capacity) {
		if (conn->out_offset > 0) { /* reclaim the part already sent */
			memmove(conn->out, conn->out + conn->out_offset, conn->out_length - conn->out_offset);
			conn->out_length -= conn->out_offset;
			conn->out_offset = 0;
			need = conn->out_length + length + 1;
		}
		if (need > conn->out_capacity) {
			size_t capacity = conn->out_capacity ? conn->out_capacity : 4096;
			while (capacity < need)
				capacity *= 2;
			conn->out = xrealloc(conn->out, capacity);
			conn->out_capacity = capacity;
		}
	}
	memcpy(conn->out + conn->out_length, text, length);
	conn->out[conn->out_length + length] = '\n';
	conn->out_length += length + 1;
	flush_output(conn);
	update_interest(server, conn);
}

static void queue_json(struct control_socket *server, struct connection *conn, json_t *response)
{
	char *text = json_dumps(response, JSON_COMPACT);
	if (!text) {
		static const char fallback[] =
		    "{\"id\":null,\"ok\":false,\"error\":\"cannot serialize the response\",\"code\":\"Internal\"}";
		queue_line(server, conn, fallback, sizeof(fallback) - 1);
		return;
	}
	queue_line(server, conn, text, strlen(text));
	free(text);
}

static json_t *error_response(json_t *id, const char *code, const char *text)
{
	json_t *response = json_object();
	json_object_set(response, "id", id ? id : json_null());
	json_object_set_new(response, "ok", json_false());
	json_object_set_new(response, "error", json_string(text));
	json_object_set_new(response, "code", json_string(code));
	return response;
}

static void queue_error(struct control_socket *server, struct connection *conn, json_t *id, const char *code,
                        const char *text)
{
	json_t *response = error_response(id, code, text);
	queue_json(server, conn, response);
	json_decref(response);
}

static void connection_free(struct control_socket *server, struct connection *conn)
{
	/* Closing a Unix socket with unread input resets the peer (ECONNRESET instead of EOF), which could
	 * hide the error line just sent: discard what has arrived first. */
	char discard[4096];
	for (int k = 0; k < 64 && recv(conn->fd, discard, sizeof(discard), MSG_DONTWAIT) > 0; k++)
		;
	epoll_ctl(server->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
	close(conn->fd);
	server->slots[conn->slot] = NULL;
	server->stats.connections_open--;
	free(conn->in);
	free(conn->out);
	free(conn);
}

static bool connection_finished(const struct connection *conn)
{
	bool output = conn->out_length > conn->out_offset;
	return conn->dead || (conn->closing && !output) ||
	       (conn->peer_done && conn->pending == 0 && !output && conn->in_length == 0);
}

static void accept_connections(struct control_socket *server)
{
	for (int k = 0; k < ACCEPTS_PER_CALL; k++) {
		int fd = accept4(server->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or EMFILE and friends: try again at the next readiness */
		uint32_t slot = 0;
		while (slot < server->slot_count && server->slots[slot])
			slot++;
		if (slot == server->slot_count) {
			if (server->slot_count >= MAX_SLOTS) {
				close(fd);
				continue;
			}
			uint32_t count = server->slot_count ? server->slot_count * 2 : 16;
			server->slots = xrealloc(server->slots, count * sizeof(*server->slots));
			memset(server->slots + server->slot_count, 0, (count - server->slot_count) * sizeof(*server->slots));
			server->slot_count = count;
		}
		struct connection *conn = calloc(1, sizeof(*conn));
		if (!conn) {
			close(fd);
			continue;
		}
		conn->fd = fd;
		conn->slot = slot;
		conn->generation = ++server->next_generation;
		conn->interest = EPOLLIN;
		struct epoll_event event = {.events = EPOLLIN, .data.u64 = epoll_tag(conn)};
		if (epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
			close(fd);
			free(conn);
			continue;
		}
		server->slots[slot] = conn;
		server->stats.connections_accepted++;
		server->stats.connections_open++;

		struct ucred credentials;
		socklen_t length = sizeof(credentials);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0 ||
		    credentials.uid != server->uid) {
			char text[160];
			if (length == sizeof(credentials))
				snprintf(text, sizeof(text),
				         "permission denied: peer uid %u is not the uid %u that runs the control socket",
				         (unsigned)credentials.uid, (unsigned)server->uid);
			else
				snprintf(text, sizeof(text), "permission denied: cannot read the peer's credentials");
			server->stats.connections_refused++;
			queue_error(server, conn, NULL, "PermissionDenied", text);
			conn->closing = true;
			update_interest(server, conn);
		}
	}
}

static void handle_line(struct control_socket *server, struct connection *conn, const char *line, size_t length)
{
	while (length > 0 && (line[length - 1] == '\r' || line[length - 1] == ' ' || line[length - 1] == '\t'))
		length--;
	size_t start = 0;
	while (start < length && (line[start] == ' ' || line[start] == '\t'))
		start++;
	if (start == length)
		return; /* blank lines are ignored */

	json_error_t parse_error;
	json_t *request_json = json_loadb(line + start, length - start, JSON_REJECT_DUPLICATES, &parse_error);
	char text[300];
	if (!request_json || !json_is_object(request_json)) {
		if (request_json)
			snprintf(text, sizeof(text), "invalid request: not a JSON object");
		else
			snprintf(text, sizeof(text), "invalid request: %s (column %d)", parse_error.text,
			         parse_error.column);
		json_decref(request_json);
		server->stats.bad_requests++;
		queue_error(server, conn, NULL, "InvalidArgument", text);
		return;
	}
	json_t *id = json_object_get(request_json, "id");
	if (!json_is_integer(id) || json_integer_value(id) < 0) {
		server->stats.bad_requests++;
		queue_error(server, conn, NULL, "InvalidArgument",
		            "invalid request: \"id\" must be a non-negative integer");
		json_decref(request_json);
		return;
	}
	json_t *command = json_object_get(request_json, "command");
	if (!json_is_string(command) || json_string_length(command) == 0) {
		server->stats.bad_requests++;
		queue_error(server, conn, id, "InvalidArgument", "invalid request: \"command\" must be a non-empty string");
		json_decref(request_json);
		return;
	}

	struct control_request *request = calloc(1, sizeof(*request));
	if (!request) {
		queue_error(server, conn, id, "Internal", "out of memory");
		json_decref(request_json);
		return;
	}
	request->json = request_json;
	request->id = json_incref(id);
	request->command = json_string_value(command);
	request->connection.slot = conn->slot;
	request->connection.generation = conn->generation;
	request->next_pending = server->pending;
	if (server->pending)
		server->pending->prev_pending = request;
	server->pending = request;
	server->stats.requests++;
	server->stats.requests_pending++;
	conn->pending++;
	if (server->handler)
		server->handler(server->handler_context, request);
	else
		control_socket_reply_error(server, request, "Unimplemented", "unknown command %s", request->command);
}

/* Splits the input into lines and handles the complete ones, as long as the connection has fewer than
 * max_pending requests open (the rest waits in the buffer, and reading stops); enforces the line limit. */
static void handle_input(struct control_socket *server, struct connection *conn)
{
	size_t consumed = 0;
	while (!conn->closing && !conn->dead && conn->pending < server->max_pending) {
		char *newline = memchr(conn->in + consumed, '\n', conn->in_length - consumed);
		if (!newline)
			break;
		size_t line_length = (size_t)(newline - (conn->in + consumed));
		if (line_length > server->max_line)
			break; /* reported below */
		handle_line(server, conn, conn->in + consumed, line_length);
		consumed += line_length + 1;
	}
	if (consumed > 0) {
		memmove(conn->in, conn->in + consumed, conn->in_length - consumed);
		conn->in_length -= consumed;
	}
	size_t scan = conn->in_length < server->max_line + 1 ? conn->in_length : server->max_line + 1;
	if (!conn->closing && !conn->dead && conn->in_length > server->max_line && !memchr(conn->in, '\n', scan)) {
		char text[120];
		snprintf(text, sizeof(text), "invalid request: line longer than %zu bytes", server->max_line);
		server->stats.bad_requests++;
		queue_error(server, conn, NULL, "InvalidArgument", text);
		conn->closing = true;
		conn->in_length = 0;
		update_interest(server, conn);
	}
}

static void read_connection(struct control_socket *server, struct connection *conn)
{
	for (int k = 0; k < READS_PER_EVENT && !conn->closing && !conn->dead && !conn->peer_done; k++) {
		if (conn->out_length - conn->out_offset >= OUTPUT_HIGH_WATER || conn->pending >= server->max_pending)
			break;
		if (conn->in_capacity - conn->in_length < READ_CHUNK) {
			size_t capacity = conn->in_capacity ? conn->in_capacity : READ_CHUNK;
			while (capacity - conn->in_length < READ_CHUNK)
				capacity *= 2;
			conn->in = xrealloc(conn->in, capacity);
			conn->in_capacity = capacity;
		}
		ssize_t n = recv(conn->fd, conn->in + conn->in_length, conn->in_capacity - conn->in_length, MSG_DONTWAIT);
		if (n > 0) {
			conn->in_length += (size_t)n;
			handle_input(server, conn);
			if ((size_t)n < READ_CHUNK)
				break;
		} else if (n == 0) {
			/* The client shut down its side. A last line without its newline still counts. */
			conn->peer_done = true;
			if (conn->in_length > 0 && conn->in[conn->in_length - 1] != '\n' && !conn->closing) {
				conn->in[conn->in_length++] = '\n'; /* room: READ_CHUNK bytes were free for the recv */
				handle_input(server, conn);
			}
			break;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			break;
		} else {
			conn->dead = true;
		}
	}
	/* Return the memory of a connection that once carried a long line. */
	if (conn->in_length == 0 && conn->in_capacity > 4 * READ_CHUNK) {
		free(conn->in);
		conn->in = NULL;
		conn->in_capacity = 0;
	}
	update_interest(server, conn);
}

/* ---- public API ------------------------------------------------------------------------------------- */

struct control_socket *control_socket_open(const struct control_socket_config *config, char *err,
                                           size_t errlen)
{
	const char *path = config->path;
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	if (!path || !*path) {
		set_error(err, errlen, "control socket path is empty");
		return NULL;
	}
	if (strlen(path) >= sizeof(address.sun_path)) {
		set_error(err, errlen, "control socket %s: path longer than %zu bytes", path,
		          sizeof(address.sun_path) - 1);
		return NULL;
	}
	memcpy(address.sun_path, path, strlen(path) + 1);

	/* A socket file already there: in use if something answers, else left by a dead process. */
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			set_error(err, errlen, "control socket %s exists and is not a socket", path);
			return NULL;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (probe < 0) {
			set_error(err, errlen, "control socket %s: socket: %s", path, strerror(errno));
			return NULL;
		}
		int rc = connect(probe, (struct sockaddr *)&address, sizeof(address));
		int saved = errno;
		close(probe);
		if (rc == 0 || saved == EAGAIN || saved == EINPROGRESS) {
			set_error(err, errlen, "control socket %s is in use by another process", path);
			return NULL;
		}
		if (saved != ECONNREFUSED) {
			set_error(err, errlen, "control socket %s: cannot check the existing socket: %s", path,
			          strerror(saved));
			return NULL;
		}
		if (unlink(path) != 0 && errno != ENOENT) {
			set_error(err, errlen, "control socket %s: cannot remove the stale socket: %s", path,
			          strerror(errno));
			return NULL;
		}
	} else if (errno != ENOENT) {
		set_error(err, errlen, "control socket %s: %s", path, strerror(errno));
		return NULL;
	}

	struct control_socket *server = calloc(1, sizeof(*server));
	if (!server) {
		set_error(err, errlen, "control socket %s: out of memory", path);
		return NULL;
	}
	server->listen_fd = -1;
	server->epoll_fd = -1;
	server->path = strdup(path);
	server->max_line = config->max_line_bytes ? config->max_line_bytes : CONTROL_SOCKET_DEFAULT_MAX_LINE;
	server->max_pending = config->max_pending_per_connection ? config->max_pending_per_connection
	                                                         : CONTROL_SOCKET_DEFAULT_MAX_PENDING;
	server->handler = config->handler;
	server->handler_context = config->handler_context;
	server->uid = geteuid();
	if (!server->path)
		goto fail_errno;

	server->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (server->listen_fd < 0) {
		set_error(err, errlen, "control socket %s: socket: %s", path, strerror(errno));
		goto fail;
	}
	/* The socket file takes the socket inode's mode (less the umask) at bind: 0600 from the first moment,
	 * without touching the process-wide umask. The chmod after bind covers a umask that removed bits. */
	if (fchmod(server->listen_fd, 0600) != 0) {
		set_error(err, errlen, "control socket %s: fchmod: %s", path, strerror(errno));
		goto fail;
	}
	if (bind(server->listen_fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
		set_error(err, errlen, "control socket %s: bind: %s", path, strerror(errno));
		goto fail;
	}
	if (chmod(path, 0600) != 0 || lstat(path, &st) != 0) {
		set_error(err, errlen, "control socket %s: chmod: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	server->socket_dev = st.st_dev;
	server->socket_ino = st.st_ino;
	if (listen(server->listen_fd, 64) != 0) {
		set_error(err, errlen, "control socket %s: listen: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	server->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event event = {.events = EPOLLIN, .data.u64 = LISTENER_TAG};
	if (server->epoll_fd < 0 || epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, server->listen_fd, &event) != 0) {
		set_error(err, errlen, "control socket %s: epoll: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	return server;

fail_errno:
	set_error(err, errlen, "control socket %s: %s", path, strerror(errno));
fail:
	if (server->listen_fd >= 0)
		close(server->listen_fd);
	if (server->epoll_fd >= 0)
		close(server->epoll_fd);
	free(server->path);
	free(server);
	return NULL;
}

int control_socket_fd(const struct control_socket *server)
{
	return server->epoll_fd;
}

int control_socket_process(struct control_socket *server)
{
	struct epoll_event events[EVENTS_PER_CALL];
	int count;
	do
		count = epoll_wait(server->epoll_fd, events, EVENTS_PER_CALL, 0);
	while (count < 0 && errno == EINTR);
	if (count < 0)
		return -1;
	for (int k = 0; k < count; k++) {
		if (events[k].data.u64 == LISTENER_TAG) {
			accept_connections(server);
			continue;
		}
		uint32_t slot = (uint32_t)(events[k].data.u64 & 0xffffff);
		uint64_t generation = events[k].data.u64 >> 24;
		struct connection *conn = connection_of(server, slot, generation);
		if (!conn)
			continue; /* closed earlier in this batch */
		if (events[k].events & EPOLLOUT)
			flush_output(conn);
		if (conn->resume) {
			conn->resume = false;
			handle_input(server, conn);
		}
		if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			read_connection(server, conn);
		update_interest(server, conn);
		/* On a Unix socket EPOLLHUP means the peer shut down both directions (closed): nobody will read
		 * replies any more. A half close (shutdown SHUT_WR, as `nc -U` does) is only EOF, and the
		 * connection stays open for the replies still owed. */
		if (events[k].events & (EPOLLHUP | EPOLLERR))
			conn->dead = true;
		if (connection_finished(conn))
			connection_free(server, conn);
	}
	return 0;
}

static void unlink_pending(struct control_socket *server, struct control_request *request)
{
	if (request->prev_pending)
		request->prev_pending->next_pending = request->next_pending;
	else
		server->pending = request->next_pending;
	if (request->next_pending)
		request->next_pending->prev_pending = request->prev_pending;
	server->stats.requests_pending--;
}

static void request_free(struct control_request *request)
{
	json_decref(request->id);
	json_decref(request->json);
	free(request);
}

/* Detaches the request from the server and returns its connection if that is still open. */
static struct connection *finish_request(struct control_socket *server, struct control_request *request)
{
	unlink_pending(server, request);
	struct connection *conn = connection_of(server, request->connection.slot, request->connection.generation);
	if (conn) {
		conn->pending--;
		conn->resume |= conn->in_length > 0 && conn->pending < server->max_pending;
		if (conn->dead) {
			server->stats.replies_dropped++;
			return NULL;
		}
	} else {
		server->stats.replies_dropped++;
	}
	return conn;
}

void control_socket_reply(struct control_socket *server, struct control_request *request, json_t *result)
{
	struct connection *conn = finish_request(server, request);
	if (conn) {
		json_t *response = json_object();
		json_object_set(response, "id", request->id);
		json_object_set_new(response, "ok", json_true());
		json_object_set_new(response, "result", result ? json_incref(result) : json_object());
		queue_json(server, conn, response);
		json_decref(response);
		update_interest(server, conn);
	}
	json_decref(result);
	request_free(request);
}

void control_socket_reply_error(struct control_socket *server, struct control_request *request, const char *code,
                                const char *format, ...)
{
	struct connection *conn = finish_request(server, request);
	if (conn) {
		char text[1024];
		va_list args;
		va_start(args, format);
		vsnprintf(text, sizeof(text), format, args);
		va_end(args);
		queue_error(server, conn, request->id, code, text);
		update_interest(server, conn);
	}
	request_free(request);
}

void control_socket_drop(struct control_socket *server, struct control_request *request)
{
	struct connection *conn = connection_of(server, request->connection.slot, request->connection.generation);
	unlink_pending(server, request);
	if (conn) {
		conn->pending--;
		conn->resume |= conn->in_length > 0 && conn->pending < server->max_pending;
		update_interest(server, conn);
	}
	request_free(request);
}

bool control_socket_request_connected(const struct control_socket *server, const struct control_request *request)
{
	const struct connection *conn =
	    connection_of(server, request->connection.slot, request->connection.generation);
	return conn && !conn->dead;
}

void control_socket_get_stats(const struct control_socket *server, struct control_socket_stats *stats)
{
	*stats = server->stats;
}

void control_socket_close(struct control_socket *server)
{
	if (!server)
		return;
	for (uint32_t slot = 0; slot < server->slot_count; slot++)
		if (server->slots[slot])
			connection_free(server, server->slots[slot]);
	free(server->slots);
	while (server->pending) {
		struct control_request *request = server->pending;
		unlink_pending(server, request);
		request_free(request);
	}
	/* Remove the socket file only if it is still ours (not replaced by a newer server). */
	struct stat st;
	if (lstat(server->path, &st) == 0 && st.st_dev == server->socket_dev && st.st_ino == server->socket_ino)
		unlink(server->path);
	close(server->listen_fd);
	close(server->epoll_fd);
	free(server->path);
	free(server);
}
