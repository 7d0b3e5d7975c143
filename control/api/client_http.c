/* control/api/client_http.c: etcd's plain-HTTP endpoints on the client URLs (and --listen-metrics-urls):
 * /health and /version as etcd 3.4 writes them, /metrics in Prometheus' text format with etcd's metric
 * names where the meaning is the same, so existing etcd dashboards and alerts keep working.
 *
 * With --enable-pprof, /debug/ as well. etcd serves Go's net/http/pprof there; a C node has no Go
 * runtime to profile, so /debug/vars (Go's expvar path) gives the node's counters as one JSON object,
 * and /debug/pprof/ is a short page saying how to profile quorumd (perf) and what /debug/vars holds.
 * The handler is shared with --listen-metrics-urls, so /debug/ answers there too when enabled. */
#include <inttypes.h>
#include <jansson.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "client_internal.h"
#include "log.h"
#include "process_metrics.h"
#include "prometheus_text.h"

/* Prometheus' process collector, which etcd registers: names, help texts and types as etcd 3.4 serves them.
 * `etcdctl check datascale` reads process_resident_memory_bytes before and after its writes. */
static void process_metrics(struct text_buffer *text)
{
	struct process_metrics process;
	char error[96];
	if (process_metrics_read(&process, error, sizeof(error)) != 0)
		log_write("warn", "process metrics incomplete", "\"error\":\"%s\"", error);
	prometheus_metric(text, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
	                  NULL, process.cpu_seconds);
	prometheus_metric(text, "process_max_fds", "gauge", "Maximum number of open file descriptors.", NULL,
	                  process.max_fds);
	prometheus_metric(text, "process_open_fds", "gauge", "Number of open file descriptors.", NULL, process.open_fds);
	prometheus_metric(text, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", NULL,
	                  process.resident_bytes);
	prometheus_metric(text, "process_start_time_seconds", "gauge",
	                  "Start time of the process since unix epoch in seconds.", NULL, process.start_time_seconds);
	prometheus_metric(text, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", NULL,
	                  process.virtual_bytes);
	prometheus_metric(text, "process_virtual_memory_max_bytes", "gauge",
	                  "Maximum amount of virtual memory available in bytes.", NULL, process.virtual_max_bytes);
}

/* etcd_network_peer_*: one series per peer slot in use (the label is the member ID in hex, as etcd
 * prints it). A failure counter with no failures yet has no series, and then, as in etcd (a vector
 * without children), no HELP or TYPE either. */
enum peer_counter { PEER_SENT_BYTES, PEER_RECEIVED_BYTES, PEER_SENT_FAILURES, PEER_RECEIVED_FAILURES };

static uint64_t peer_counter_value(const struct node_peer_metrics *peer, enum peer_counter which)
{
	switch (which) {
	case PEER_SENT_BYTES:
		return atomic_load_explicit(&peer->sent_bytes, memory_order_relaxed);
	case PEER_RECEIVED_BYTES:
		return atomic_load_explicit(&peer->received_bytes, memory_order_relaxed);
	case PEER_SENT_FAILURES:
		return atomic_load_explicit(&peer->sent_failures, memory_order_relaxed);
	default:
		return atomic_load_explicit(&peer->received_failures, memory_order_relaxed);
	}
}

static void peer_counter(struct text_buffer *text, const struct node *node, const char *name, const char *help,
                         const char *label, enum peer_counter which, bool only_nonzero)
{
	bool family = false;
	for (size_t k = 0; k < NODE_PEER_METRIC_SLOTS; k++) {
		const struct node_peer_metrics *peer = &node->peer_metrics[k];
		uint64_t id = atomic_load_explicit(&peer->id, memory_order_acquire);
		uint64_t value = peer_counter_value(peer, which);
		if (!id || (only_nonzero && !value))
			continue;
		if (!family)
			prometheus_family(text, name, "counter", help);
		family = true;
		char labels[64];
		snprintf(labels, sizeof(labels), "%s=\"%" PRIx64 "\"", label, id);
		prometheus_sample(text, name, labels, (double)value);
	}
}

static void peer_metrics(struct text_buffer *text, const struct node *node)
{
	peer_counter(text, node, "etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.",
	             "From", PEER_RECEIVED_BYTES, false);
	peer_counter(text, node, "etcd_network_peer_received_failures_total",
	             "The total number of receive failures from peers.", "From", PEER_RECEIVED_FAILURES, true);
	/* A peer never timed yet (nothing observed) has no series, as in etcd before its first probe. */
	bool family = false;
	for (size_t k = 0; k < NODE_PEER_METRIC_SLOTS; k++) {
		const struct node_peer_metrics *peer = &node->peer_metrics[k];
		uint64_t id = atomic_load_explicit(&peer->id, memory_order_acquire);
		struct histogram_reading reading;
		histogram_read(&peer->round_trip, &reading);
		if (!id || !reading.count)
			continue;
		if (!family)
			prometheus_family(text, "etcd_network_peer_round_trip_time_seconds", "histogram",
			                  "Round-Trip-Time histogram between peers");
		family = true;
		char labels[64];
		snprintf(labels, sizeof(labels), "To=\"%" PRIx64 "\"", id);
		prometheus_histogram_series(text, "etcd_network_peer_round_trip_time_seconds", labels, &peer->round_trip);
	}
	peer_counter(text, node, "etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", "To",
	             PEER_SENT_BYTES, false);
	peer_counter(text, node, "etcd_network_peer_sent_failures_total", "The total number of send failures from peers.",
	             "To", PEER_SENT_FAILURES, true);
}

/* etcd's own series, with etcd 3.4.23's names, help texts, types and labels (README.md lists what feeds
 * each). Families in etcd's (client_golang's) order: sorted by name. */
static void metrics(struct client_thread *thread, struct text_buffer *text)
{
	struct node *node = thread->node;
	uint64_t leader = atomic_load(&node->leader_id);
	prometheus_metric(text, "etcd_cluster_version", "gauge",
	                  "Which version is running. 1 for 'cluster_version' label with current cluster version",
	                  "cluster_version=\"3.4\"", 1);
	prometheus_metric(text, "etcd_debugging_auth_revision", "gauge", "The current revision of auth store.", NULL,
	                  (double)node_auth_revision(&node->auth));
	prometheus_metric(text, "etcd_debugging_mvcc_current_revision", "gauge", "The current revision of store.", NULL,
	                  (double)atomic_load(&node->revision));
	prometheus_metric(text, "etcd_debugging_mvcc_db_total_size_in_bytes", "gauge",
	                  "Total size of the underlying database physically allocated in bytes.", NULL,
	                  (double)atomic_load(&node->db_size));
	prometheus_histogram(text, "etcd_disk_backend_commit_duration_seconds",
	                     "The latency distributions of commit called by backend.", NULL, &node->backend_commit_duration);
	prometheus_histogram(text, "etcd_disk_backend_snapshot_duration_seconds",
	                     "The latency distribution of backend snapshots.", NULL, &node->backend_snapshot_duration);
	prometheus_histogram(text, "etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.",
	                     NULL, &node->wal_fsync_duration);
	prometheus_metric(text, "etcd_mvcc_db_total_size_in_bytes", "gauge",
	                  "Total size of the underlying database physically allocated in bytes.", NULL,
	                  (double)atomic_load(&node->db_size));
	prometheus_metric(text, "etcd_mvcc_db_total_size_in_use_in_bytes", "gauge",
	                  "Total size of the underlying database logically in use in bytes.", NULL,
	                  (double)atomic_load(&node->db_size_in_use));
	/* etcd counts what its gRPC codec marshals and unmarshals: every message's bytes, all methods. */
	uint64_t grpc_received = 0, grpc_sent = 0;
	for (size_t k = 0; thread->method_counters && k < thread->method_count; k++) {
		grpc_received += atomic_load_explicit(&thread->method_counters[k].message_bytes_received, memory_order_relaxed);
		grpc_sent += atomic_load_explicit(&thread->method_counters[k].message_bytes_sent, memory_order_relaxed);
	}
	prometheus_metric(text, "etcd_network_client_grpc_received_bytes_total", "counter",
	                  "The total number of bytes received from grpc clients.", NULL, (double)grpc_received);
	prometheus_metric(text, "etcd_network_client_grpc_sent_bytes_total", "counter",
	                  "The total number of bytes sent to grpc clients.", NULL, (double)grpc_sent);
	peer_metrics(text, node);
	prometheus_metric(text, "etcd_server_has_leader", "gauge", "Whether or not a leader exists. 1 is existence, 0 is not.",
	                  NULL, leader != 0);
	prometheus_metric(text, "etcd_server_heartbeat_send_failures_total", "counter",
	                  "The total number of leader heartbeat send failures (likely overloaded from slow disk).", NULL,
	                  (double)atomic_load(&node->heartbeat_send_failures));
	char labels[64];
	snprintf(labels, sizeof(labels), "server_id=\"%" PRIx64 "\"", node->member_id);
	prometheus_metric(text, "etcd_server_id", "gauge",
	                  "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", labels, 1);
	prometheus_metric(text, "etcd_server_is_leader", "gauge", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
	                  NULL, leader != 0 && leader == node->member_id);
	prometheus_metric(text, "etcd_server_is_learner", "gauge",
	                  "Whether or not this member is a learner. 1 if is, 0 otherwise.", NULL,
	                  atomic_load(&node->is_learner));
	prometheus_metric(text, "etcd_server_leader_changes_seen_total", "counter", "The number of leader changes seen.", NULL,
	                  (double)atomic_load(&node->leader_changes));
	/* Gauges in etcd 3.4 (it sets them to the Raft indexes), though named _total. */
	prometheus_metric(text, "etcd_server_proposals_applied_total", "gauge",
	                  "The total number of consensus proposals applied.", NULL, (double)atomic_load(&node->applied_index));
	prometheus_metric(text, "etcd_server_proposals_committed_total", "gauge",
	                  "The total number of consensus proposals committed.", NULL,
	                  (double)atomic_load(&node->commit_index));
	prometheus_metric(text, "etcd_server_proposals_failed_total", "counter", "The total number of failed proposals seen.",
	                  NULL, (double)atomic_load(&node->proposals_failed));
	prometheus_metric(text, "etcd_server_proposals_pending", "gauge", "The current number of pending proposals to commit.",
	                  NULL, (double)atomic_load(&node->proposals_pending));
	prometheus_metric(text, "etcd_server_quota_backend_bytes", "gauge", "Current backend storage quota size in bytes.",
	                  NULL, (double)node->quota_bytes);
	prometheus_metric(text, "etcd_server_slow_apply_total", "counter",
	                  "The total number of slow apply requests (likely overloaded from slow disk).", NULL,
	                  (double)atomic_load(&node->slow_applies));
	prometheus_metric(text, "etcd_server_version", "gauge",
	                  "Which version is running. 1 for 'server_version' label with current version.",
	                  "server_version=\"3.4.0-quorumd\"", 1);

	/* go-grpc-prometheus' counters of the client URLs' gRPC methods, all threads together. */
	if (thread->method_counters) {
		size_t length = 0;
		char *grpc = grpc_method_counters_prometheus(thread->methods, thread->method_counters, thread->method_count,
		                                             &length);
		text_buffer_append(text, "%.*s", (int)length, grpc ? grpc : "");
		free(grpc);
	}

	process_metrics(text);

	/* quorumd's own: the peer transport (udp or dpdk), packets, bytes and drops by reason. */
	struct transport_counters counters = transport_counters(node->transport);
	text_buffer_append(text, "# HELP quorumd_transport_total Peer transport counters by name (packets, bytes, drops by reason).\n"
	                        "# TYPE quorumd_transport_total counter\n");
	for (size_t k = 0; k < transport_counter_count(); k++)
		text_buffer_append(text, "quorumd_transport_total{counter=\"%s\"} %" PRIu64 "\n", transport_counter_name(k),
		                  (uint64_t)transport_counter_value(&counters, k));
}

/* ---- /debug/ (--enable-pprof) ---- */

/* "Threads:" and "VmRSS:" of /proc/self/status (0 when unreadable). */
static void process_status(uint64_t *threads, uint64_t *rss_bytes)
{
	*threads = 0;
	*rss_bytes = 0;
	FILE *file = fopen("/proc/self/status", "r");
	if (!file)
		return;
	char line[256];
	unsigned long long value;
	while (fgets(line, sizeof(line), file)) {
		if (sscanf(line, "Threads: %llu", &value) == 1)
			*threads = value;
		else if (sscanf(line, "VmRSS: %llu kB", &value) == 1)
			*rss_bytes = value * 1024;
	}
	fclose(file);
}

static json_t *hex_id(uint64_t id)
{
	char text[17];
	snprintf(text, sizeof(text), "%" PRIx64, id);
	return json_string(text);
}

static json_t *debug_vars(struct client_thread *thread)
{
	struct node *node = thread->node;
	uint64_t leader = atomic_load(&node->leader_id);

	json_t *raft = json_object();
	json_object_set_new(raft, "term", json_integer((json_int_t)atomic_load(&node->raft_term)));
	json_object_set_new(raft, "index", json_integer((json_int_t)atomic_load(&node->raft_index)));
	json_object_set_new(raft, "applied_index", json_integer((json_int_t)atomic_load(&node->applied_index)));
	json_object_set_new(raft, "leader_id", hex_id(leader));
	json_object_set_new(raft, "is_leader", json_boolean(leader != 0 && leader == node->member_id));
	json_object_set_new(raft, "is_learner", json_boolean(atomic_load(&node->is_learner)));
	json_object_set_new(raft, "leader_changes", json_integer((json_int_t)atomic_load(&node->leader_changes)));
	json_object_set_new(raft, "proposals_failed", json_integer((json_int_t)atomic_load(&node->proposals_failed)));

	json_t *mvcc = json_object();
	json_object_set_new(mvcc, "revision", json_integer((json_int_t)atomic_load(&node->revision)));
	json_object_set_new(mvcc, "db_size_bytes", json_integer((json_int_t)atomic_load(&node->db_size)));
	json_object_set_new(mvcc, "storage_turns_over_500ms",
	                    json_integer((json_int_t)atomic_load(&node->storage_turns_over_500ms)));
	json_object_set_new(mvcc, "watch_catch_up_steps_over_250ms",
	                    json_integer((json_int_t)atomic_load(&node->watch_catch_up_steps_over_250ms)));

	/* The fsync histogram as /metrics has it: counts per bucket (not cumulative), upper bound in seconds. */
	json_t *fsync = json_object();
	struct histogram_reading reading;
	histogram_read(&node->wal_fsync_duration, &reading);
	json_object_set_new(fsync, "count", json_integer((json_int_t)reading.count));
	json_object_set_new(fsync, "total_seconds", json_real(reading.sum_seconds));
	json_object_set_new(fsync, "mean_seconds", json_real(reading.count ? reading.sum_seconds / (double)reading.count : 0));
	json_t *buckets = json_object();
	for (int k = 0; k < reading.bucket_count; k++) {
		char name[32];
		snprintf(name, sizeof(name), "le_%g", histogram_bound(&node->wal_fsync_duration, k));
		json_object_set_new(buckets, name, json_integer((json_int_t)reading.buckets[k]));
	}
	json_object_set_new(buckets, "le_inf", json_integer((json_int_t)reading.buckets[reading.bucket_count]));
	json_object_set_new(fsync, "buckets", buckets);

	/* Transport counters, as the control socket's `counters` command reads them. */
	json_t *transport = json_object();
	json_object_set_new(transport, "dataplane", json_string(node->flags.dataplane));
	if (node->transport) {
		struct transport_counters counters = transport_counters(node->transport);
		for (size_t k = 0; k < transport_counter_count(); k++)
			json_object_set_new(transport, transport_counter_name(k),
			                    json_integer((json_int_t)transport_counter_value(&counters, k)));
	}

	/* The client URLs' threads; connection counts are those of the thread that answers this request
	 * (each client thread has its own listener with SO_REUSEPORT). */
	json_t *client = json_object();
	json_object_set_new(client, "threads", json_integer((json_int_t)node->flags.client_threads));
	json_object_set_new(client, "this_thread", json_integer((json_int_t)thread->channel));
	if (thread->server) {
		struct grpc_server_stats stats;
		grpc_server_get_stats(thread->server, &stats);
		json_object_set_new(client, "connections_accepted", json_integer((json_int_t)stats.connections_accepted));
		json_object_set_new(client, "connections_open", json_integer((json_int_t)stats.connections_open));
		json_object_set_new(client, "connections_closed_bad_input",
		                    json_integer((json_int_t)stats.connections_closed_bad_input));
		json_object_set_new(client, "calls_started", json_integer((json_int_t)stats.calls_started));
		json_object_set_new(client, "calls_unimplemented", json_integer((json_int_t)stats.calls_unimplemented));
		json_object_set_new(client, "http_requests", json_integer((json_int_t)stats.http_requests));
	}

	uint64_t threads, rss;
	process_status(&threads, &rss);
	json_t *process = json_object();
	json_object_set_new(process, "pid", json_integer((json_int_t)getpid()));
	json_object_set_new(process, "threads", json_integer((json_int_t)threads));
	json_object_set_new(process, "rss_bytes", json_integer((json_int_t)rss));

	json_t *vars = json_object();
	json_object_set_new(vars, "name", json_string(node->flags.name));
	json_object_set_new(vars, "member_id", hex_id(node->member_id));
	json_object_set_new(vars, "cluster_id", hex_id(node->cluster_id));
	json_object_set_new(vars, "version", json_string("3.4.0-quorumd"));
	json_object_set_new(vars, "raft", raft);
	json_object_set_new(vars, "mvcc", mvcc);
	json_object_set_new(vars, "wal_fsync", fsync);
	json_object_set_new(vars, "transport", transport);
	json_object_set_new(vars, "client", client);
	json_object_set_new(vars, "process", process);
	return vars;
}

static const char pprof_page[] =
    "quorumd /debug/pprof/\n"
    "\n"
    "etcd serves Go's profiler here. quorumd is written in C and has no Go runtime, so there is no\n"
    "/debug/pprof/profile, heap or goroutine dump to fetch; `go tool pprof` does not apply.\n"
    "\n"
    "To profile a running member, use Linux perf on its process (the pid is in /debug/vars):\n"
    "    perf record -g -p PID -- sleep 30     # CPU profile of every thread for 30 s\n"
    "    perf report                            # or: perf script | your flame graph tool\n"
    "    perf top -p PID                        # live view\n"
    "`perf report --sort tid` splits the time by thread (core, storage, transport, client, dpdk lcores).\n"
    "The default build type (debugoptimized) keeps the symbols perf needs.\n"
    "\n"
    "/debug/vars answers one JSON object with the node's counters:\n"
    "    name, member_id, cluster_id, version\n"
    "    raft: term, index, applied_index, leader_id, is_leader, is_learner, leader_changes, proposals_failed\n"
    "    mvcc: revision, db_size_bytes\n"
    "    wal_fsync: count, total_seconds, mean_seconds, buckets (fsyncs per duration bucket, le_ seconds)\n"
    "    transport: dataplane (udp or dpdk) and the peer transport's packet, byte and drop counters\n"
    "    client: threads serving the client URLs, and the answering thread's connection and call counts\n"
    "    process: pid, threads, rss_bytes\n"
    "/metrics has the same figures under etcd's Prometheus metric names.\n";

/* /debug/...: true when answered (false: 404). */
static bool debug_get(struct client_thread *thread, const char *path, struct grpc_http_response *response,
                      struct text_buffer *text)
{
	if (!strcmp(path, "/debug/vars")) {
		json_t *vars = debug_vars(thread);
		char *body = json_dumps(vars, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
		json_decref(vars);
		if (!body)
			alloc_failed(0); /* jansson fails only for memory here */
		text_buffer_append(text, "%s\n", body);
		free(body);
		response->status = 200;
		response->content_type = "application/json; charset=utf-8";
		return true;
	}
	if (!strcmp(path, "/debug/pprof") || !strcmp(path, "/debug/pprof/")) {
		text_buffer_append(text, "%s", pprof_page);
		response->status = 200;
		response->content_type = "text/plain; charset=utf-8";
		return true;
	}
	if (!strncmp(path, "/debug/pprof/", 13)) {
		/* A Go profile (profile, heap, goroutine, ...): not something a C node has. */
		text_buffer_append(text, "%s is Go's profiler, which quorumd (a C program) does not have.\n\n%s", path, pprof_page);
		response->status = 501;
		response->content_type = "text/plain; charset=utf-8";
		return true;
	}
	return false;
}

bool client_http_get(void *context, const char *path, struct grpc_http_response *response)
{
	struct client_thread *thread = context;
	struct node *node = thread->node;
	struct text_buffer text = {0};
	if (!strcmp(path, "/health")) {
		/* etcd 3.4: unhealthy while any alarm is active (logged as etcd logs it), or without a leader. */
		bool healthy = atomic_load(&node->leader_id) != 0 && !atomic_load(&node->disk_full);
		if (atomic_load(&node->alarm_count) != 0) {
			healthy = false;
			struct alarm_list alarms;
			node_alarms_copy(node, &alarms);
			for (size_t k = 0; k < alarms.count; k++) {
				char alarm[96];
				alarm_entry_format(&alarms.entries[k], alarm, sizeof(alarm));
				log_write("warn", "/health error due to an alarm", "\"alarm\":\"%s\"", alarm);
			}
			alarm_list_free(&alarms);
		}
		text_buffer_append(&text, "{\"health\":\"%s\"}", healthy ? "true" : "false");
		response->status = healthy ? 200 : 503;
		response->content_type = "text/plain; charset=utf-8";
		response->get_only = true;
	} else if (!strcmp(path, "/version")) {
		text_buffer_append(&text, "{\"etcdserver\":\"3.4.0-quorumd\",\"etcdcluster\":\"3.4.0\"}");
		response->status = 200;
		response->content_type = "application/json";
		response->get_only = true;
	} else if (!strcmp(path, "/metrics")) {
		metrics(thread, &text);
		response->status = 200;
		response->content_type = "text/plain; version=0.0.4; charset=utf-8";
	} else if (node->flags.enable_pprof && !strncmp(path, "/debug/", 7) && debug_get(thread, path, response, &text)) {
		/* answered */
	} else {
		return false;
	}
	response->body = text.data;
	response->body_length = text.length;
	return true;
}
