/* control/grpc/grpc_metrics.c: the method counters of grpc_server.h in Prometheus' text format, as
 * go-grpc-prometheus registers them in etcd (every method initialised, so a series exists before its
 * first call and rate() works from the start). */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "grpc_server.h"
#include "grpc_status.h"
#include "text_buffer.h"

/* A method's labels: "/etcdserverpb.KV/Put" is service "etcdserverpb.KV", method "Put". */
struct method_labels {
	size_t index;
	const char *service;
	int service_length;
	const char *method;
	const char *type;
};

static int compare_labels(const void *left, const void *right)
{
	const struct method_labels *a = left, *b = right;
	int order = strcmp(a->method, b->method);
	if (order)
		return order;
	int common = a->service_length < b->service_length ? a->service_length : b->service_length;
	order = strncmp(a->service, b->service, (size_t)common);
	if (order)
		return order;
	if (a->service_length != b->service_length)
		return a->service_length - b->service_length;
	return strcmp(a->type, b->type);
}

static const char *type_name(enum grpc_method_kind kind)
{
	switch (kind) {
	case GRPC_METHOD_SERVER_STREAM:
		return "server_stream";
	case GRPC_METHOD_BIDI_STREAM:
		return "bidi_stream";
	default:
		return "unary";
	}
}

static int compare_codes(const void *left, const void *right)
{
	char a_buffer[16], b_buffer[16];
	return strcmp(grpc_code_name(*(const int *)left, a_buffer, sizeof(a_buffer)),
	              grpc_code_name(*(const int *)right, b_buffer, sizeof(b_buffer)));
}

static void method_series(struct text_buffer *text, const char *name, const struct method_labels *labels, size_t count,
                          const struct grpc_method_counters *counters, size_t field_offset)
{
	for (size_t k = 0; k < count; k++) {
		const atomic_uint_fast64_t *value =
		    (const atomic_uint_fast64_t *)((const char *)&counters[labels[k].index] + field_offset);
		text_buffer_append(text, "%s{grpc_method=\"%s\",grpc_service=\"%.*s\",grpc_type=\"%s\"} %" PRIu64 "\n", name,
		       labels[k].method, labels[k].service_length, labels[k].service, labels[k].type,
		       (uint64_t)atomic_load_explicit(value, memory_order_relaxed));
	}
}

char *grpc_method_counters_prometheus(const struct grpc_method *methods, const struct grpc_method_counters *counters,
                                      size_t method_count, size_t *length)
{
	struct method_labels *labels = xcalloc(method_count ? method_count : 1, sizeof(*labels));
	size_t count = 0;
	for (size_t k = 0; k < method_count; k++) {
		const char *path = methods[k].path;
		const char *slash = path[0] == '/' ? strrchr(path + 1, '/') : NULL;
		if (!slash)
			continue;
		labels[count].index = k;
		labels[count].service = path + 1;
		labels[count].service_length = (int)(slash - (path + 1));
		labels[count].method = slash + 1;
		labels[count].type = type_name(methods[k].kind);
		count++;
	}
	qsort(labels, count, sizeof(*labels), compare_labels);
	int codes[GRPC_STATUS_CODE_COUNT];
	for (int code = 0; code < GRPC_STATUS_CODE_COUNT; code++)
		codes[code] = code;
	qsort(codes, GRPC_STATUS_CODE_COUNT, sizeof(int), compare_codes);

	struct text_buffer text = {0};
	/* client_golang writes the families sorted by name. */
	text_buffer_append(&text, "# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of "
	              "success or failure.\n# TYPE grpc_server_handled_total counter\n");
	for (int c = 0; c < GRPC_STATUS_CODE_COUNT; c++) {
		char buffer[16];
		const char *code_name = grpc_code_name(codes[c], buffer, sizeof(buffer));
		for (size_t k = 0; k < count; k++)
			text_buffer_append(&text,
			       "grpc_server_handled_total{grpc_code=\"%s\",grpc_method=\"%s\",grpc_service=\"%.*s\","
			       "grpc_type=\"%s\"} %" PRIu64 "\n",
			       code_name, labels[k].method, labels[k].service_length, labels[k].service, labels[k].type,
			       (uint64_t)atomic_load_explicit(&counters[labels[k].index].handled[codes[c]],
			                                      memory_order_relaxed));
	}
	text_buffer_append(&text, "# HELP grpc_server_msg_received_total Total number of RPC stream messages received on the "
	              "server.\n# TYPE grpc_server_msg_received_total counter\n");
	method_series(&text, "grpc_server_msg_received_total", labels, count, counters,
	              offsetof(struct grpc_method_counters, messages_received));
	text_buffer_append(&text, "# HELP grpc_server_msg_sent_total Total number of gRPC stream messages sent by the server.\n"
	              "# TYPE grpc_server_msg_sent_total counter\n");
	method_series(&text, "grpc_server_msg_sent_total", labels, count, counters,
	              offsetof(struct grpc_method_counters, messages_sent));
	text_buffer_append(&text, "# HELP grpc_server_started_total Total number of RPCs started on the server.\n"
	              "# TYPE grpc_server_started_total counter\n");
	method_series(&text, "grpc_server_started_total", labels, count, counters,
	              offsetof(struct grpc_method_counters, started));
	free(labels);
	*length = text.length;
	return text.data;
}
