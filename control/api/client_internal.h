/* control/api/client_internal.h: what the client API's files share (client_api.c: threads, calls, unary
 * services; client_streams.c: Watch, LeaseKeepAlive, Snapshot; client_http.c: /health, /version,
 * /metrics; client_gateway.c: the JSON gateway's paths). Not for use outside client_*.c. */
#ifndef QUORUMD_CONTROL_CLIENT_INTERNAL_H
#define QUORUMD_CONTROL_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "grpc_server.h"
#include "node.h"
#include "raft_internal_fields.h"

/* What a call is waiting for, by request id. */
enum waiting_kind {
	WAITING_UNARY_KV,         /* reply.kv holds the packed response */
	WAITING_MEMBER_ADD,       /* reply.json: the member list with the new member */
	WAITING_MEMBER_REMOVE,
	WAITING_MEMBER_UPDATE,
	WAITING_MEMBER_LIST,
	WAITING_MEMBER_PROMOTE,
	WAITING_STATUS,
	WAITING_MOVE_LEADER,
	WAITING_SNAPSHOT,         /* reply.snapshot */
	WAITING_STREAM,           /* replies carry call_id; nothing to match */
	WAITING_AUTHENTICATE_READ, /* Authenticate's read point is applied here (client_auth.c) */
	WAITING_AUTHENTICATE,     /* Authenticate's token was made */
	WAITING_DEFRAGMENT,       /* as WAITING_UNARY_KV, without the request timeout (etcd's defrag has none) */
};

struct waiting_call {
	uint64_t request_id; /* 0: free slot */
	uint64_t call_id;
	enum waiting_kind kind;
	uint64_t started_ms; /* monotonic: etcd's request timeout counts from here */
	bool proposal;       /* a client_propose: counted in the node's proposals_pending until taken */
	/* A read checked against the auth store at this revision: refused if the store moved before the answer
	 * (etcd's doSerialize). 0: no token, nothing to recheck. */
	uint64_t auth_revision;
};

/* Request id → waiting call: open addressing, linear probing, deletion by backward shift. */
struct waiting_table {
	struct waiting_call *slots;
	size_t capacity; /* a power of two */
	size_t count;
};

struct snapshot_stream {
	uint64_t call_id;
	struct state_snapshot *snapshot;
	uint64_t sent_bytes;
	uint64_t opened_ns;           /* monotonic: etcd_disk_backend_snapshot_duration_seconds runs from here */
	struct evp_md_ctx_st *sha256; /* over everything sent: the stream ends with it, as etcd's does */
};

typedef void (*client_message_fn)(void *context, struct grpc_call *call, const uint8_t *message, size_t length);

/* A message whose simple token names an entry this member has not applied yet: handed to its method again
 * once it has (client_auth.c). */
struct held_message {
	uint64_t call_id;
	client_message_fn on_message;
	uint8_t *message;
	size_t length;
	uint64_t wait_index; /* 0: only held behind an earlier message of the same call */
	uint64_t deadline_ms;
};

/* An Authenticate under way: its request, and the auth revision its password was checked at. */
struct authentication {
	uint64_t call_id;
	uint8_t *message;
	size_t length;
	uint64_t checked_revision;
};

/* A Watch stream of this thread and the backlog its watchers on the storage thread look at. */
struct watch_stream_backlog {
	uint64_t call_id;
	struct watch_backlog *backlog;
};

struct client_thread {
	struct node *node;
	unsigned channel;
	pthread_t thread;
	bool thread_started;
	struct reply_mailbox inbox;
	struct grpc_server *server;
	struct grpc_server *metrics_server; /* --listen-metrics-urls (first thread only) */
	/* Every thread's servers serve these methods and count into these (grpc_server.h), for /metrics. */
	const struct grpc_method *methods;
	struct grpc_method_counters *method_counters;
	size_t method_count;
	struct waiting_table waiting;
	uint64_t next_counter;
	uint64_t last_timeout_sweep_ms;
	struct watch_stream_backlog *watch_streams;
	size_t watch_stream_count;
	size_t watch_stream_capacity;
	uint64_t last_backlog_refresh_ms;
	struct snapshot_stream *snapshots;
	size_t snapshot_count;
	size_t snapshot_capacity;
	struct held_message *held;
	size_t held_count;
	size_t held_capacity;
	uint64_t releasing_call_id; /* the call whose held message runs again now */
	bool releasing_expired;     /* ... because its wait ran out: its token is invalid */
	struct authentication *authentications;
	size_t authentication_count;
	size_t authentication_capacity;
	uint64_t nospace_raised_ms; /* when this thread last proposed this member's NOSPACE alarm */
	atomic_bool stopping;
};

/* Who a call is from (etcd's AuthInfo): its token's user, or with --client-cert-auth its verified client
 * certificate's CN; identified false for neither. */
struct client_auth {
	bool identified;
	char *user;
	uint64_t revision;
};

/* client_api.c */
uint64_t client_new_request_id(struct client_thread *thread);
struct node_request *client_new_request(struct client_thread *thread, enum node_request_kind kind);
void client_wait(struct client_thread *thread, uint64_t request_id, uint64_t call_id, enum waiting_kind kind);
/* A read checked against the auth store at auth_revision (0: not checked). */
void client_wait_read(struct client_thread *thread, uint64_t request_id, uint64_t call_id, uint64_t auth_revision);
/* A write through Raft: message (the client's bytes) wrapped as field of an InternalRaftRequest whose header
 * carries the request id and auth's user and revision; the apply answers it. */
void client_propose(struct client_thread *thread, struct grpc_call *call, const struct client_auth *auth,
                    enum internal_raft_request_field field, const uint8_t *message, size_t length);
/* A request proposed as the client sent it (etcd checks nothing before Raft but that it decodes): refused on
 * a learner, malformed refused, then client_propose once the token resolved; self is the calling handler,
 * run again if the token is held. */
void client_propose_as_sent(void *context, struct grpc_call *call, const uint8_t *message, size_t length,
                            const ProtobufCMessageDescriptor *descriptor, enum internal_raft_request_field field,
                            client_message_fn self);
void client_post_to_core(struct client_thread *thread, struct node_request *request);
void client_post_to_storage(struct client_thread *thread, struct node_request *request);
/* Sends one message and finishes the call with OK. */
void client_answer(struct grpc_call *call, const ProtobufCMessage *message);
/* A learner answers only Status and serializable reads: true when it refused this call. */
bool client_refuse_on_learner(struct client_thread *thread, struct grpc_call *call);
/* A request that does not decode: grpc-go's wording. */
void client_answer_malformed(struct grpc_call *call);

/* client_auth.c */
extern const struct grpc_method client_auth_methods[];
extern const size_t client_auth_method_count;
enum client_auth_resolution { CLIENT_AUTH_RESOLVED, CLIENT_AUTH_INVALID, CLIENT_AUTH_HELD };
/* The call's token resolved into *auth (free it with client_auth_free); HELD: the message was kept and
 * on_message runs again once this member applied the token's index. */
enum client_auth_resolution client_auth_resolve(struct client_thread *thread, struct grpc_call *call,
                                                client_message_fn on_message, const uint8_t *message, size_t length,
                                                struct client_auth *auth);
/* client_auth_resolve for a handler that goes on only with a resolved token: false when the call was
 * answered (etcd's invalid auth token) or held. */
bool client_auth_begin(struct client_thread *thread, struct grpc_call *call, client_message_fn on_message,
                       const uint8_t *message, size_t length, struct client_auth *auth);
void client_auth_free(struct client_auth *auth);
/* A stream's message behind an earlier one that is held: kept too, in order; true when it was. */
bool client_auth_queued_behind(struct client_thread *thread, struct grpc_call *call, client_message_fn on_message,
                               const uint8_t *message, size_t length);
/* Read permission of [key, range_end) against the published store. */
enum auth_status client_auth_range_status(struct client_thread *thread, const struct client_auth *auth,
                                          const uint8_t *key, size_t key_length, const uint8_t *range_end,
                                          size_t range_end_length);
/* The same, answering the call with etcd's error when refused: true when permitted. */
bool client_auth_permits_range(struct client_thread *thread, struct grpc_call *call, const struct client_auth *auth,
                               const uint8_t *key, size_t key_length, const uint8_t *range_end,
                               size_t range_end_length);
/* Snapshot, Hash, HashKV, Defragment: the call's token resolved and the root role required (etcd's
 * authMaintenanceServer); true when the call goes on, false when it was answered or held. */
bool client_auth_begin_maintenance(struct client_thread *thread, struct grpc_call *call, client_message_fn on_message,
                                   const uint8_t *message, size_t length);
/* Replies of WAITING_AUTHENTICATE_READ and WAITING_AUTHENTICATE. */
void client_auth_answer(struct client_thread *thread, struct grpc_call *call, const struct waiting_call *waiting,
                        const struct node_reply *reply);
/* Held messages whose index is applied run again; those past etcd's request timeout are refused. */
void client_auth_pump(struct client_thread *thread);
/* The server's on_deadline: a call whose messages wait for their token's index is answered now, the token
 * found invalid, as etcd answers when the call's context ends — not with the server's DEADLINE_EXCEEDED. */
void client_auth_on_deadline(void *context, struct grpc_call *call);
void client_auth_close(struct client_thread *thread);

/* client_gateway.c: etcd's JSON gateway paths, each a method above. */
extern const struct grpc_gateway_route client_gateway_routes[];
extern const size_t client_gateway_route_count;
extern const char *const client_gateway_prefixes[];
extern const size_t client_gateway_prefix_count;

/* client_streams.c */
extern const struct grpc_method client_stream_methods[];
extern const size_t client_stream_method_count;
void client_streams_snapshot_ready(struct client_thread *thread, uint64_t call_id, struct state_snapshot *snapshot);
/* Sends more snapshot chunks where the clients have read what was sent. */
void client_streams_pump(struct client_thread *thread);
void client_streams_close(struct client_thread *thread);

/* client_tls.c */
struct client_tls {
	struct grpc_tls_context *context; /* NULL: no URL is https */
	char *cert_file;                  /* the flags', or --auto-tls's files */
	char *key_file;
	char *trusted_ca_file;
	bool client_cert_auth;
	char *crl_file;                   /* --client-crl-file ("" with --auto-tls's certificate, as etcd) */
	char *allowed_hostname;           /* --client-cert-allowed-hostname (likewise) */
};
/* etcd's checks and set-up for client TLS, in etcd's order and words: the --cipher-suites names, --auto-tls
 * (writes DATA_DIR/fixtures/client/{cert,key}.pem), every https:// client and metrics URL needing a
 * certificate, then the certificate and CAs loaded into a context the servers share. 0, or -1 with etcd's
 * message. */
int client_tls_prepare(struct client_tls *tls, const struct node_flags *flags, char *const *urls, size_t url_count,
	char *const *metrics_urls, size_t metrics_url_count, char *err, size_t errlen);
/* etcd's "serving client traffic securely" / "insecurely" line for each client URL. */
void client_tls_log_serving(char *const *urls, size_t url_count);
/* After every server using the context is closed. */
void client_tls_release(struct client_tls *tls);

/* client_http.c */
bool client_http_get(void *context, const char *path, struct grpc_http_response *response);

#endif
