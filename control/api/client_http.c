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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "client_internal.h"
#include "log.h"
#include "process_metrics.h"

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
		text->data = xrealloc(text->data, text->capacity);
	}
}

static void metric(struct text *text, const char *name, const char *type, const char *help, const char *labels,
                   double value)
{
	char number[40];
	prometheus_number(value, number, sizeof(number));
	append(text, "# HELP %s %s\n# TYPE %s %s\n%s%s %s\n", name, help, name, type, name, labels ? labels : "",
	       number);
}

/* Prometheus' process collector, which etcd registers: names, help texts and types as etcd 3.4 serves them.
 * `etcdctl check datascale` reads process_resident_memory_bytes before and after its writes. */
static void process_metrics(struct text *text)
{
	struct process_metrics process;
	char error[96];
	if (process_metrics_read(&process, error, sizeof(error)) != 0)
		log_write("warn", "process metrics incomplete", "\"error\":\"%s\"", error);
	metric(text, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", NULL,
	       process.cpu_seconds);
	metric(text, "process_max_fds", "gauge", "Maximum number of open file descriptors.", NULL, process.max_fds);
	metric(text, "process_open_fds", "gauge", "Number of open file descriptors.", NULL, process.open_fds);
	metric(text, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", NULL,
	       process.resident_bytes);
	metric(text, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
	       NULL, process.start_time_seconds);
	metric(text, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", NULL,
	       process.virtual_bytes);
	metric(text, "process_virtual_memory_max_bytes", "gauge", "Maximum amount of virtual memory available in bytes.",
	       NULL, process.virtual_max_bytes);
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
	metric(text, "etcd_server_quota_backend_bytes", "gauge", "Current backend storage quota size in bytes.", NULL,
	       (double)node->quota_bytes);
	metric(text, "etcd_mvcc_db_total_size_in_bytes", "gauge", "Total size of the underlying database physically "
	       "allocated in bytes.", NULL, (double)atomic_load(&node->db_size));
	metric(text, "etcd_debugging_mvcc_current_revision", "gauge", "The current revision of store.", NULL,
	       (double)atomic_load(&node->revision));
	metric(text, "etcd_debugging_auth_revision", "gauge", "The current revision of auth store.", NULL,
	       (double)node_auth_revision(&node->auth));

	/* quorumd's own: the peer transport (udp or dpdk), packets, bytes and drops by reason. */
	struct transport_counters counters = transport_counters(node->transport);
	append(text, "# HELP quorumd_transport_total Peer transport counters by name (packets, bytes, drops by reason).\n"
	             "# TYPE quorumd_transport_total counter\n");
	for (size_t k = 0; k < transport_counter_count(); k++)
		append(text, "quorumd_transport_total{counter=\"%s\"} %" PRIu64 "\n", transport_counter_name(k),
		       (uint64_t)transport_counter_value(&counters, k));

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

	process_metrics(text);
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
	uint64_t fsyncs = atomic_load(&node->wal_fsyncs);
	uint64_t microseconds = atomic_load(&node->wal_fsync_microseconds);
	json_object_set_new(fsync, "count", json_integer((json_int_t)fsyncs));
	json_object_set_new(fsync, "total_seconds", json_real((double)microseconds / 1e6));
	json_object_set_new(fsync, "mean_seconds", json_real(fsyncs ? (double)microseconds / 1e6 / (double)fsyncs : 0));
	json_t *buckets = json_object();
	double bound = 0.001;
	uint64_t below = 0;
	for (int k = 0; k < NODE_FSYNC_BUCKETS; k++, bound *= 2) {
		char name[32];
		snprintf(name, sizeof(name), "le_%g", bound);
		uint64_t count = atomic_load(&node->wal_fsync_buckets[k]);
		below += count;
		json_object_set_new(buckets, name, json_integer((json_int_t)count));
	}
	json_object_set_new(buckets, "le_inf", json_integer((json_int_t)(fsyncs > below ? fsyncs - below : 0)));
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
                      struct text *text)
{
	if (!strcmp(path, "/debug/vars")) {
		json_t *vars = debug_vars(thread);
		char *body = json_dumps(vars, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
		json_decref(vars);
		if (!body)
			alloc_failed(0); /* jansson fails only for memory here */
		append(text, "%s\n", body);
		free(body);
		response->status = 200;
		response->content_type = "application/json; charset=utf-8";
		return true;
	}
	if (!strcmp(path, "/debug/pprof") || !strcmp(path, "/debug/pprof/")) {
		append(text, "%s", pprof_page);
		response->status = 200;
		response->content_type = "text/plain; charset=utf-8";
		return true;
	}
	if (!strncmp(path, "/debug/pprof/", 13)) {
		/* A Go profile (profile, heap, goroutine, ...): not something a C node has. */
		append(text, "%s is Go's profiler, which quorumd (a C program) does not have.\n\n%s", path, pprof_page);
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
	struct text text = {0};
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
		append(&text, "{\"health\":\"%s\"}", healthy ? "true" : "false");
		response->status = healthy ? 200 : 503;
		response->content_type = "text/plain; charset=utf-8";
		response->get_only = true;
	} else if (!strcmp(path, "/version")) {
		append(&text, "{\"etcdserver\":\"3.4.0-quorumd\",\"etcdcluster\":\"3.4.0\"}");
		response->status = 200;
		response->content_type = "application/json";
		response->get_only = true;
	} else if (!strcmp(path, "/metrics")) {
		metrics(node, &text);
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
