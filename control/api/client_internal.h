/* control/api/client_internal.h: what the client API's files share (client_api.c: threads, calls, unary
 * services; client_streams.c: Watch, LeaseKeepAlive, Snapshot; client_http.c: /health, /version,
 * /metrics). Not for use outside client_*.c. */
#ifndef QUORUMD_CONTROL_CLIENT_INTERNAL_H
#define QUORUMD_CONTROL_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "grpc_server.h"
#include "node.h"

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
};

struct waiting_call {
	uint64_t request_id; /* 0: free slot */
	uint64_t call_id;
	enum waiting_kind kind;
	uint64_t started_ms; /* monotonic: etcd's request timeout counts from here */
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
	struct evp_md_ctx_st *sha256; /* over everything sent: the stream ends with it, as etcd's does */
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
	atomic_bool stopping;
};

/* client_api.c */
uint64_t client_new_request_id(struct client_thread *thread);
struct node_request *client_new_request(struct client_thread *thread, enum node_request_kind kind);
void client_wait(struct client_thread *thread, uint64_t request_id, uint64_t call_id, enum waiting_kind kind);
void client_post_to_core(struct client_thread *thread, struct node_request *request);
void client_post_to_storage(struct client_thread *thread, struct node_request *request);
/* Sends one message and finishes the call with OK. */
void client_answer(struct grpc_call *call, const ProtobufCMessage *message);
/* A learner answers only Status and serializable reads: true when it refused this call. */
bool client_refuse_on_learner(struct client_thread *thread, struct grpc_call *call);
/* A request that does not decode: grpc-go's wording. */
void client_answer_malformed(struct grpc_call *call);

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
};
/* etcd's checks and set-up for client TLS, in etcd's order and words: the --cipher-suites names, --auto-tls
 * (writes DATA_DIR/fixtures/client/{cert,key}.pem), every https:// client and metrics URL needing a
 * certificate, then the certificate and CAs loaded into a context the servers share. 0, or -1 with etcd's
 * message. */
int client_tls_prepare(struct client_tls *tls, const struct node_flags *flags, char *const *urls, size_t url_count,
	char *const *metrics_urls, size_t metrics_url_count, char *error, size_t length);
/* etcd's "serving client traffic securely" / "insecurely" line for each client URL. */
void client_tls_log_serving(char *const *urls, size_t url_count);
/* After every server using the context is closed. */
void client_tls_release(struct client_tls *tls);

/* client_http.c */
bool client_http_get(void *context, const char *path, struct grpc_http_response *response);

#endif
