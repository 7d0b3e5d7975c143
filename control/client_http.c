/* control/client_http.c: etcd's plain-HTTP endpoints on the client URLs (and --listen-metrics-urls):
 * /health and /version as etcd 3.4 writes them, /metrics in Prometheus' text format with etcd's metric
 * names where the meaning is the same, so existing etcd dashboards and alerts keep working. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

struct text {
	char *data;
	size_t length;
	size_t capacity;
};

static void append(struct text *text, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void append(struct text *text, const char *format, ...)
{
	for (;;) {
		va_list arguments;
		va_start(arguments, format);
		size_t room = text->capacity - text->length;
		int written = vsnprintf(text->data ? text->data + text->length : NULL, room, format, arguments);
		va_end(arguments);
		if (written < 0)
			return;
		if ((size_t)written < room) {
			text->length += (size_t)written;
			return;
		}
		text->capacity = (text->capacity + (size_t)written + 1) * 2;
		text->data = realloc(text->data, text->capacity);
		if (!text->data)
			abort();
	}
}

static void metric(struct text *text, const char *name, const char *type, const char *help, const char *labels,
                   double value)
{
	append(text, "# HELP %s %s\n# TYPE %s %s\n%s%s %.17g\n", name, help, name, type, name, labels ? labels : "",
	       value);
}

static void metrics(struct node *node, struct text *text)
{
	uint64_t leader = atomic_load(&node->leader_id);
	metric(text, "etcd_server_has_leader", "gauge", "Whether or not a leader exists. 1 is existence, 0 is not.", NULL,
	       leader != 0);
	metric(text, "etcd_server_is_leader", "gauge", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
	       NULL, leader != 0 && leader == node->member_id);
	metric(text, "etcd_server_leader_changes_seen_total", "counter", "The number of leader changes seen.", NULL,
	       (double)atomic_load(&node->leader_changes));
	metric(text, "etcd_server_proposals_committed_total", "counter", "The total number of consensus proposals committed.",
	       NULL, (double)atomic_load(&node->raft_index));
	metric(text, "etcd_server_proposals_applied_total", "counter", "The total number of consensus proposals applied.",
	       NULL, (double)atomic_load(&node->applied_index));
	metric(text, "etcd_server_proposals_failed_total", "counter", "The total number of failed proposals seen.", NULL,
	       (double)atomic_load(&node->proposals_failed));
	char labels[64];
	snprintf(labels, sizeof(labels), "{server_id=\"%" PRIx64 "\"}", node->member_id);
	metric(text, "etcd_server_id", "gauge", "Server or member ID in hexadecimal format. 1 for 'server_id' label with "
	       "current ID.", labels, 1);
	metric(text, "etcd_mvcc_db_total_size_in_bytes", "gauge", "Total size of the underlying database physically "
	       "allocated in bytes.", NULL, (double)atomic_load(&node->db_size));
	metric(text, "etcd_debugging_mvcc_current_revision", "gauge", "The current revision of store.", NULL,
	       (double)atomic_load(&node->revision));

	const char *fsync = "etcd_disk_wal_fsync_duration_seconds";
	append(text, "# HELP %s The latency distributions of fsync called by WAL.\n# TYPE %s histogram\n", fsync, fsync);
	uint64_t cumulative = 0;
	double bound = 0.001;
	for (int k = 0; k < NODE_FSYNC_BUCKETS; k++, bound *= 2) {
		cumulative += atomic_load(&node->wal_fsync_buckets[k]);
		append(text, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", fsync, bound, cumulative);
	}
	uint64_t count = atomic_load(&node->wal_fsyncs);
	append(text, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", fsync, count);
	append(text, "%s_sum %.6f\n%s_count %" PRIu64 "\n", fsync,
	       (double)atomic_load(&node->wal_fsync_microseconds) / 1e6, fsync, count);
}

bool client_http_get(void *context, const char *path, struct grpc_http_response *response)
{
	struct client_thread *thread = context;
	struct node *node = thread->node;
	struct text text = {0};
	if (!strcmp(path, "/health")) {
		/* etcd 3.4: healthy when there is a leader (and no alarm; quorumd raises none). */
		bool healthy = atomic_load(&node->leader_id) != 0;
		append(&text, "{\"health\":\"%s\"}", healthy ? "true" : "false");
		response->status = healthy ? 200 : 503;
		response->content_type = "text/plain; charset=utf-8";
	} else if (!strcmp(path, "/version")) {
		append(&text, "{\"etcdserver\":\"3.4.0-quorumd\",\"etcdcluster\":\"3.4.0\"}");
		response->status = 200;
		response->content_type = "application/json";
	} else if (!strcmp(path, "/metrics")) {
		metrics(node, &text);
		response->status = 200;
		response->content_type = "text/plain; version=0.0.4; charset=utf-8";
	} else {
		return false;
	}
	response->body = text.data;
	response->body_length = text.length;
	return true;
}
