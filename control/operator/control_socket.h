/* control/operator/control_socket.h: the operator control socket — a Unix stream socket speaking JSON lines, served
 * from the owner's epoll loop (no threads of its own), with asynchronous replies. This header is the contract
 * between quorumd and quorumctl.
 *
 * ## Transport
 * A Unix stream socket at the path given by `--control-socket`, mode 0600. A connection whose peer (SO_PEERCRED)
 * runs under another uid than the server gets one error response (code "PermissionDenied") and is closed.
 * One request object per line (`\n`-terminated UTF-8 JSON), one response object per line. Many connections at
 * once; a connection may pipeline requests, and responses may come back in any order: match them by `id`.
 * A line longer than the server's limit (1 MiB by default) gets an error response and the connection closes.
 *
 * ## Request
 *   {"id": N, "command": "NAME", ...arguments}
 * `id` is a JSON integer chosen by the client (>= 0), echoed in the response. A request without a usable
 * `id` or `command`, or a line that is not a JSON object, gets an error response with `"id": null` (or the id
 * when there was one), code "InvalidArgument"; the connection stays open.
 *
 * ## Response
 *   {"id": N, "ok": true, "result": {...}}
 *   {"id": N, "ok": false, "error": "etcdserver: member not found", "code": "NotFound"}
 * `error` is etcd's exact text (quorumctl prints `Error: TEXT` on stderr and exits 1, as etcdctl does);
 * `code` is a gRPC status code name: NotFound, FailedPrecondition, Unavailable, InvalidArgument,
 * DeadlineExceeded, PermissionDenied, Unimplemented, Internal, ...
 *
 * ## Values inside requests and results
 * - Member and cluster IDs (uint64) are strings of lowercase hex without leading zeros ("8211f1d0f64f3269"),
 *   because a uint64 does not fit a JSON number. Other counters (revision, raft_term, indexes, sizes) are
 *   JSON integers.
 * - Member:  {"id":"8211f1d0f64f3269","name":"infra1","peer_urls":["http://127.0.0.1:12380"],
 *             "client_urls":["http://127.0.0.1:12379"],"is_learner":false}
 *   An added member that has not started yet has "name":"" and "client_urls":[]. Optional in member_list
 *   results: "match_index":N, the leader's view of how far that member's log matches its own (quorumctl's
 *   `member replace` reports it and waits for it to reach the leader's raft_index before promoting).
 * - Header:  {"cluster_id":"ef37ad9dc622a7c4","member_id":"8211f1d0f64f3269","revision":N,"raft_term":N}
 * - Keys, range ends and values are JSON strings holding the bytes as UTF-8 text. Bytes that are not valid
 *   UTF-8 (or contain NUL) travel base64-encoded (RFC 4648, with padding), flagged by `"encoding":"base64"` in
 *   the same object: in a request the flag covers key, range_end and value; in a result each kv object
 *   carries its own flag. Without the flag the text is taken as is.
 *
 * ## Commands (arguments → result)
 *   member_list                                          → {"header":H,"members":[M...]}
 *   member_add     {"peer_urls":[...],"is_learner":bool} → {"header":H,"member":M,"members":[M...]}
 *   member_remove  {"member_id":"hex"}                   → {"header":H,"members":[M...]}
 *   member_update  {"member_id":"hex","peer_urls":[...]} → {"header":H,"members":[M...]}
 *   member_promote {"member_id":"hex"}                   → {"header":H,"members":[M...]}
 *   endpoint_status → {"header":H,"version":"3.4.0-quorumd","db_size":N,"leader":"hex","raft_index":N,
 *                      "raft_term":N,"raft_applied_index":N,"is_learner":bool,"errors":["..."]}
 *                     ("leader" is "0" when there is none)
 *   move_leader    {"target_id":"hex"}                   → {"header":H}
 *   put            {"key":K,"value":V}                   → {"header":H}
 *   get            {"key":K,"range_end":E?,"serializable":bool}
 *                  → {"header":H,"kvs":[{"key":K,"value":V,"create_revision":N,"mod_revision":N,"version":N,
 *                                        "lease":N}...],"count":N}
 *   del            {"key":K,"range_end":E?}              → {"header":H,"deleted":N}
 *   counters                                             → a free-form object of named numbers
 * `range_end` follows etcd: absent means the single key; "\u0000" means every key >= key (quorumctl sends it
 * for `--prefix` with an empty key); otherwise the end of the half-open range [key, range_end).
 * An unknown command should be answered with code "Unimplemented" and error "unknown command NAME".
 */
#ifndef QUORUMD_CONTROL_CONTROL_SOCKET_H
#define QUORUMD_CONTROL_CONTROL_SOCKET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTROL_SOCKET_DEFAULT_MAX_LINE (1024 * 1024)
#define CONTROL_SOCKET_DEFAULT_MAX_PENDING 1024

struct control_socket;

/* One parsed request, handed to the handler. It stays valid until it is answered with control_socket_reply*
 * or released with control_socket_drop (exactly one of them, exactly once), which frees it. */
struct control_request {
	json_t *id;          /* the request's id (a JSON integer), echoed in the response */
	const char *command; /* the command name; points into `json` */
	json_t *json;        /* the whole request object; arguments are its other members */
	struct {             /* opaque: which connection asked (slot and generation, so a reply to a */
		uint32_t slot;   /* connection closed meanwhile is recognised and dropped) */
		uint64_t generation;
	} connection;
	struct control_request *prev_pending, *next_pending; /* private: the server's list of open requests */
};

/* Called once per request, from within control_socket_process. The handler may reply at once or keep the
 * request and reply later (after Raft commits), from the same thread that calls control_socket_process. */
typedef void (*control_request_handler)(void *context, struct control_request *request);

struct control_socket_config {
	const char *path;       /* where to create the socket */
	size_t max_line_bytes;  /* 0: CONTROL_SOCKET_DEFAULT_MAX_LINE */
	control_request_handler handler;
	void *handler_context;
	size_t max_pending_per_connection; /* 0: CONTROL_SOCKET_DEFAULT_MAX_PENDING. A connection with this many
	                                    * requests unanswered is not read until one is answered */
};

/* Creates the socket file with mode 0600 and starts listening. A socket file left by a dead process is
 * removed first; if a process still answers on it, fails with "control socket PATH is in use by another
 * process". Returns NULL with a message naming the path in errbuf on failure. */
struct control_socket *control_socket_open(const struct control_socket_config *config, char *err,
                                           size_t errlen);

/* The one file descriptor the owner watches (EPOLLIN) in its own epoll loop: it becomes readable whenever
 * the server has work (a new connection, input, room to write pending output). */
int control_socket_fd(const struct control_socket *server);

/* Does all work that is ready now without blocking: accepts, reads, parses and dispatches requests to the
 * handler, writes pending output, closes finished connections. Returns 0, or -1 on an internal error of the
 * event set (errno set). */
int control_socket_process(struct control_socket *server);

/* Answers a request with {"id":..,"ok":true,"result":result} and frees the request. Takes the caller's
 * reference to `result` (NULL means an empty object). If the connection has closed meanwhile, the reply is
 * dropped. */
void control_socket_reply(struct control_socket *server, struct control_request *request, json_t *result);

/* Answers with {"id":..,"ok":false,"error":TEXT,"code":CODE} (TEXT from the printf-style format) and frees
 * the request. */
void control_socket_reply_error(struct control_socket *server, struct control_request *request, const char *code,
                                const char *format, ...) __attribute__((format(printf, 4, 5)));

/* Frees a request without answering it (the client sees no response for that id). */
void control_socket_drop(struct control_socket *server, struct control_request *request);

/* True while the connection that sent the request is still open. */
bool control_socket_request_connected(const struct control_socket *server, const struct control_request *request);

/* Counters of the server itself, for the node's `counters` command. */
struct control_socket_stats {
	uint64_t connections_accepted;
	uint64_t connections_refused; /* another uid */
	uint64_t connections_open;
	uint64_t requests;
	uint64_t bad_requests;        /* malformed JSON, missing id or command, over-long lines */
	uint64_t replies_dropped;     /* answered after the connection had closed */
	uint64_t requests_pending;
};
void control_socket_get_stats(const struct control_socket *server, struct control_socket_stats *stats);

/* Closes every connection, frees requests still pending (pointers to them become invalid), removes the
 * socket file and frees the server. NULL is a no-op. */
void control_socket_close(struct control_socket *server);

/* Helpers shared by the node and quorumctl. */

/* Parses a member or cluster ID as etcd does (strconv.ParseUint(s, 16, 64)): 1 to 16 hex digits, either
 * case, nothing else. Returns 0, or -1. */
int control_parse_hex_id(const char *text, uint64_t *id);

/* Formats an ID as lowercase hex without leading zeros into buf (at least 17 bytes). Returns buf. */
char *control_format_hex_id(uint64_t id, char *buf);

/* Reads the byte string `name` of a request or kv object, honouring "encoding":"base64". On success *data
 * is a malloc'ed buffer with a NUL after the *length bytes; returns 0. Returns 1 when the member is absent,
 * -1 with a message in errbuf when it is not a string or not valid base64. */
int control_json_get_bytes(const json_t *object, const char *name, char **data, size_t *length, char *err,
                           size_t errlen);

/* Builds the JSON string for bytes: the text itself when they are valid UTF-8 without NUL, else base64
 * (and *used_base64 is set). Returns a new reference, or NULL on allocation failure. */
json_t *control_json_bytes(const char *data, size_t length, bool *used_base64);

/* Base64 (RFC 4648 with padding). decode returns -1 on invalid input; out needs 3*(len/4)+3 bytes. */
size_t control_base64_encode(const unsigned char *data, size_t length, char *out); /* out: 4*((len+2)/3)+1 */
int control_base64_decode(const char *text, size_t length, unsigned char *out, size_t *out_length);

#endif
