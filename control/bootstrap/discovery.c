/* control/bootstrap/discovery.c: bootstrap discovery. DNS SRV records through glibc's resolver (libresolv), and
 * etcd 3.6's v3 discovery as a few unary KV calls (Range, Put, Txn) to an etcd-compatible cluster with
 * the project's gRPC client. The texts of errors and logs are etcd's (pkg/srv, embed/config.go,
 * etcdserver/api/v3discovery) so an operator's searches and alerts keep working. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "discovery.h"
#include "grpc_client.h"
#include "log.h"
#include "peer_url.h"
#include "rpc.pb-c.h"
#include "text_buffer.h"

/* node.c's zap-style logger. node.h is not included: it brings kv_apply.h, whose gRPC status names clash
 * with grpc_client.h's. */
void log_write(const char *level, const char *message, const char *fields_format, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- small helpers: handing over a text, JSON escaping for log fields, waiting that a signal cuts short ---- */

/* The text (or "") with ownership passed to the caller. */
static char *text_take(struct text_buffer *text)
{
	if (!text->data)
		text_buffer_append(text, "%s", "");
	char *data = text->data;
	memset(text, 0, sizeof(*text));
	return data;
}

static void text_append_json(struct text_buffer *text, const char *value)
{
	text_buffer_append(text, "\"");
	for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
		if (*c == '"' || *c == '\\')
			text_buffer_append(text, "\\%c", *c);
		else if (*c < 0x20)
			text_buffer_append(text, "\\u%04x", *c);
		else
			text_buffer_append(text, "%c", *c);
	}
	text_buffer_append(text, "\"");
}

/* A JSON array of the comma-separated items of list. */
static void text_append_json_list(struct text_buffer *text, const char *list)
{
	text_buffer_append(text, "[");
	const char *start = list;
	bool first = true;
	while (*start) {
		const char *comma = strchr(start, ',');
		size_t part = comma ? (size_t)(comma - start) : strlen(start);
		char *item = xstrndup(start, part);
		text_buffer_append(text, "%s", first ? "" : ",");
		text_append_json(text, item);
		free(item);
		first = false;
		if (!comma)
			break;
		start = comma + 1;
	}
	text_buffer_append(text, "]");
}

/* Sleeps up to milliseconds; -1 when SIGINT or SIGTERM came (main.c blocks both for its signalfd, so they
 * wait here as pending signals and a member waiting for its peers still stops when asked). */
static int wait_unless_stopped(uint64_t milliseconds)
{
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	struct timespec timeout = {.tv_sec = (time_t)(milliseconds / 1000),
	                           .tv_nsec = (long)(milliseconds % 1000) * 1000000L};
	for (;;) {
		int signal_number = sigtimedwait(&stop, NULL, &timeout);
		if (signal_number == SIGINT || signal_number == SIGTERM)
			return -1;
		if (signal_number < 0 && errno == EINTR)
			continue; /* another signal: the remaining time is not known; the caller's loop polls again */
		return 0;
	}
}

/* ---- DNS SRV (etcd's pkg/srv GetCluster and embed.Config.GetDNSClusterNames) ---- */

struct srv_record {
	uint16_t priority, weight, port;
	size_t order; /* position in the answer: ties keep the server's order */
	char target[NS_MAXDNAME];
};

static int compare_srv_records(const void *a, const void *b)
{
	const struct srv_record *x = a, *y = b;
	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->weight != y->weight)
		return x->weight > y->weight ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Go's net.LookupSRV with the first name server of resolv.conf; errors in Go's words ("lookup NAME on
 * SERVER: no such host"), since etcd's messages embed them. */
static int lookup_srv(const char *query, struct srv_record **records_out, size_t *count_out, char *err,
                      size_t errlen)
{
	*records_out = NULL;
	*count_out = 0;
	struct __res_state resolver;
	memset(&resolver, 0, sizeof(resolver));
	if (res_ninit(&resolver) != 0) {
		snprintf(err, errlen, "lookup %s: cannot read the resolver configuration (/etc/resolv.conf)", query);
		return -1;
	}
	char server[INET6_ADDRSTRLEN + 16] = "the name server";
	if (resolver.nscount > 0 && resolver.nsaddr_list[0].sin_family == AF_INET) {
		char address[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &resolver.nsaddr_list[0].sin_addr, address, sizeof(address));
		snprintf(server, sizeof(server), "%s:%u", address, (unsigned)ntohs(resolver.nsaddr_list[0].sin_port));
	}
	enum { ANSWER_BYTES = 65536 };
	unsigned char *answer = xmalloc(ANSWER_BYTES);
	struct timespec started, finished;
	clock_gettime(CLOCK_MONOTONIC, &started);
	int answer_length = res_nquery(&resolver, query, ns_c_in, ns_t_srv, answer, ANSWER_BYTES);
	clock_gettime(CLOCK_MONOTONIC, &finished);
	if (answer_length < 0) {
		/* Go's words: NXDOMAIN or an empty answer is "no such host"; SERVFAIL or REFUSED "server
		 * misbehaving"; no answer at all "i/o timeout" (glibc says TRY_AGAIN for both of the last two,
		 * so the time spent tells them apart). */
		const char *reason = "server misbehaving";
		if (resolver.res_h_errno == HOST_NOT_FOUND || resolver.res_h_errno == NO_DATA)
			reason = "no such host";
		else if (resolver.res_h_errno == TRY_AGAIN && finished.tv_sec - started.tv_sec >= resolver.retrans)
			reason = "i/o timeout";
		snprintf(err, errlen, "lookup %s on %s: %s", query, server, reason);
		free(answer);
		res_nclose(&resolver);
		return -1;
	}
	ns_msg message;
	if (ns_initparse(answer, answer_length, &message) != 0) {
		snprintf(err, errlen, "lookup %s on %s: cannot unmarshal DNS message", query, server);
		free(answer);
		res_nclose(&resolver);
		return -1;
	}
	int answers = ns_msg_count(message, ns_s_an);
	struct srv_record *records = xcalloc((size_t)(answers > 0 ? answers : 1), sizeof(*records));
	size_t count = 0;
	for (int k = 0; k < answers; k++) {
		ns_rr record;
		if (ns_parserr(&message, ns_s_an, k, &record) != 0 || ns_rr_type(record) != ns_t_srv ||
		    ns_rr_rdlen(record) < 7)
			continue;
		const unsigned char *data = ns_rr_rdata(record);
		struct srv_record *srv = &records[count];
		srv->priority = ns_get16(data);
		srv->weight = ns_get16(data + 2);
		srv->port = ns_get16(data + 4);
		srv->order = count;
		if (dn_expand(ns_msg_base(message), ns_msg_end(message), data + 6, srv->target, sizeof(srv->target)) < 0)
			continue;
		count++;
	}
	free(answer);
	res_nclose(&resolver);
	if (count == 0) {
		free(records);
		snprintf(err, errlen, "lookup %s on %s: no such host", query, server);
		return -1;
	}
	/* Go orders by priority and, within one priority, randomly by weight; here heavier first and then
	 * the server's order, so every member lists the peers in the same order. */
	qsort(records, count, sizeof(*records), compare_srv_records);
	*records_out = records;
	*count_out = count;
	return 0;
}

/* Go's net.ResolveTCPAddr("tcp", host:port).String(): an IPv4 address first, as Go prefers. */
static int resolve_tcp_address(const char *host, unsigned port, char *out, size_t size, char *err, size_t errlen)
{
	char bare[NS_MAXDNAME];
	size_t host_length = strlen(host);
	if (host_length >= 2 && host[0] == '[' && host[host_length - 1] == ']')
		snprintf(bare, sizeof(bare), "%.*s", (int)(host_length - 2), host + 1);
	else
		snprintf(bare, sizeof(bare), "%s", host);
	int families[] = {AF_INET, AF_INET6};
	int last = 0;
	for (size_t k = 0; k < 2; k++) {
		struct addrinfo hints = {.ai_family = families[k], .ai_socktype = SOCK_STREAM};
		struct addrinfo *list = NULL;
		last = getaddrinfo(bare, NULL, &hints, &list);
		if (last != 0)
			continue;
		char address[INET6_ADDRSTRLEN];
		if (list->ai_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)list->ai_addr)->sin_addr, address, sizeof(address));
			snprintf(out, size, "%s:%u", address, port);
		} else {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)list->ai_addr)->sin6_addr, address, sizeof(address));
			snprintf(out, size, "[%s]:%u", address, port);
		}
		freeaddrinfo(list);
		return 0;
	}
	snprintf(err, errlen, "lookup %.255s: %s", bare, last == EAI_NONAME || last == EAI_NODATA ? "no such host"
	                                                                                         : gai_strerror(last));
	return -1;
}

struct advertised {
	char scheme[8];
	char url[512];
	char address[INET6_ADDRSTRLEN + 16];
};

/* One service (etcd's GetCluster for one scheme): appends `NAME=SCHEME://HOST:PORT` items to cluster. */
static int srv_service(const char *service, const char *scheme, const char *domain, const char *name,
                       const struct advertised *self, size_t self_count, struct text_buffer *cluster, char *err,
                       size_t errlen)
{
	char query[NS_MAXDNAME + 64];
	snprintf(query, sizeof(query), "_%s._tcp.%s", service, domain);
	size_t query_length = strlen(query);
	if (query_length > 1 && query[query_length - 1] == '.')
		query[query_length - 1] = '\0';
	struct srv_record *records;
	size_t count;
	char reason[1024];
	if (lookup_srv(query, &records, &count, reason, sizeof(reason)) != 0) {
		snprintf(err, errlen, "error querying DNS SRV records for _%s %s", service, reason);
		return -1;
	}
	unsigned temporary_name = 0;
	size_t added = 0;
	reason[0] = '\0';
	for (size_t k = 0; k < count; k++) {
		char address[INET6_ADDRSTRLEN + 16];
		if (resolve_tcp_address(records[k].target, records[k].port, address, sizeof(address), reason,
		                        sizeof(reason)) != 0)
			continue;
		const struct advertised *match = NULL;
		for (size_t s = 0; s < self_count && !match; s++)
			if (strcmp(self[s].address, address) == 0)
				match = &self[s];
		char host_port[NS_MAXDNAME + 16];
		if (strchr(records[k].target, ':'))
			snprintf(host_port, sizeof(host_port), "[%s]:%u", records[k].target, (unsigned)records[k].port);
		else
			snprintf(host_port, sizeof(host_port), "%s:%u", records[k].target, (unsigned)records[k].port);
		if (match && strcmp(match->scheme, scheme) != 0) {
			snprintf(reason, sizeof(reason), "bootstrap at %s://%.300s from DNS for %.300s has scheme mismatch "
			         "with expected peer %.300s", scheme, host_port, service, match->url);
			continue;
		}
		char temporary[24];
		snprintf(temporary, sizeof(temporary), "%u", temporary_name);
		if (!match)
			temporary_name++;
		text_buffer_append(cluster, "%s%s=%s://%s", cluster->length ? "," : "", match ? name : temporary, scheme,
		            host_port);
		added++;
	}
	free(records);
	if (added == 0) {
		snprintf(err, errlen, "error querying DNS SRV records for _%s %s", service, reason);
		return -1;
	}
	return 0;
}

static void log_srv_service(const char *scheme, const char *service, const char *name, const char *domain,
                            const char *advertise_peer_urls, const char *found, const char *error)
{
	struct text_buffer fields = {0};
	text_buffer_append(&fields, "\"service-scheme\":\"%s\",\"service-name\":", scheme);
	text_append_json(&fields, service);
	text_buffer_append(&fields, ",\"server-name\":");
	text_append_json(&fields, name);
	text_buffer_append(&fields, ",\"discovery-srv\":");
	text_append_json(&fields, domain);
	text_buffer_append(&fields, ",\"advertise-peer-urls\":");
	text_append_json_list(&fields, advertise_peer_urls);
	text_buffer_append(&fields, ",\"found-cluster\":");
	text_append_json_list(&fields, found);
	if (error && *error) {
		text_buffer_append(&fields, ",\"error\":");
		text_append_json(&fields, error);
	}
	char *line = text_take(&fields);
	log_write("info", !strcmp(scheme, "https") ? "get cluster for etcd-server-ssl SRV" : "get cluster for etcd-server SRV",
	         "%s", line);
	free(line);
}

int discovery_srv_cluster(const char *domain, const char *service_suffix, const char *name,
                          const char *advertise_peer_urls, char **initial_cluster, char *err, size_t errlen)
{
	*initial_cluster = NULL;
	/* The local member is the record whose target resolves to the address one of our advertised peer
	 * URLs resolves to (etcd compares resolved TCP addresses, not names). */
	char **urls = NULL;
	size_t url_count = 0;
	if (peer_url_list_parse(advertise_peer_urls, &urls, &url_count, err, errlen) != 0)
		return -1;
	struct advertised *self = xcalloc(url_count ? url_count : 1, sizeof(*self));
	for (size_t k = 0; k < url_count; k++) {
		struct peer_url url;
		char reason[512];
		int failed = peer_url_parse(urls[k], &url, err, errlen);
		if (!failed && resolve_tcp_address(url.host, url.port, self[k].address, sizeof(self[k].address), reason,
		                                   sizeof(reason)) != 0) {
			snprintf(err, errlen, "error setting up initial cluster: %s", reason);
			failed = -1;
		}
		if (failed) {
			free(self);
			peer_url_list_free(urls, url_count);
			return -1;
		}
		snprintf(self[k].scheme, sizeof(self[k].scheme), "%s", url.scheme);
		snprintf(self[k].url, sizeof(self[k].url), "%s", urls[k]);
	}
	peer_url_list_free(urls, url_count);

	char suffix[300] = "";
	if (service_suffix && *service_suffix)
		snprintf(suffix, sizeof(suffix), "-%s", service_suffix);
	char https_service[320], http_service[320];
	snprintf(https_service, sizeof(https_service), "etcd-server-ssl%s", suffix);
	snprintf(http_service, sizeof(http_service), "etcd-server%s", suffix);

	/* etcd 3.5 and later combine both services and fail only when neither gave a member (3.4.23 used the
	 * http records only when their lookup failed: a bug, fixed upstream, not copied here). */
	struct text_buffer cluster = {0};
	char https_error[2048] = "", http_error[2048] = "";
	struct text_buffer https_cluster = {0};
	if (srv_service(https_service, "https", domain, name, self, url_count, &https_cluster, https_error,
	                sizeof(https_error)) == 0)
		text_buffer_append(&cluster, "%s", https_cluster.data);
	free(https_cluster.data);
	log_srv_service("https", https_service, name, domain, advertise_peer_urls, cluster.data ? cluster.data : "",
	                https_error);
	struct text_buffer http_cluster = {0};
	if (srv_service(http_service, "http", domain, name, self, url_count, &http_cluster, http_error,
	                sizeof(http_error)) == 0)
		text_buffer_append(&cluster, "%s%s", cluster.length ? "," : "", http_cluster.data);
	free(http_cluster.data);
	log_srv_service("http", http_service, name, domain, advertise_peer_urls, cluster.data ? cluster.data : "",
	                http_error);
	free(self);

	/* Go's errors.Join puts a newline between the two; a log line and an exit message read better with
	 * "; " (the texts are otherwise etcd's). */
	char joined[4200];
	snprintf(joined, sizeof(joined), "%s%s%s", https_error, *https_error && *http_error ? "; " : "", http_error);
	if (*joined) {
		struct text_buffer fields = {0};
		text_buffer_append(&fields, "\"error\":");
		text_append_json(&fields, joined);
		char *line = text_take(&fields);
		log_write("warn", "failed to resolve during SRV discovery", "%s", line);
		free(line);
	}
	if (cluster.length == 0) {
		free(cluster.data);
		snprintf(err, errlen, "error setting up initial cluster: %s", joined);
		return -1;
	}
	char *found = text_take(&cluster);
	bool self_found = false;
	size_t name_length = strlen(name);
	for (char *item = found; item && *item;) {
		char *comma = strchr(item, ',');
		size_t item_length = comma ? (size_t)(comma - item) : strlen(item);
		struct text_buffer fields = {0};
		char *node_text = xstrndup(item, item_length);
		text_buffer_append(&fields, "\"node\":");
		text_append_json(&fields, node_text);
		free(node_text);
		char *line = text_take(&fields);
		log_write("info", "got bootstrap from DNS for etcd-server", "%s", line);
		free(line);
		if (item_length > name_length && strncmp(item, name, name_length) == 0 && item[name_length] == '=')
			self_found = true;
		item = comma ? comma + 1 : NULL;
	}
	if (!self_found) {
		snprintf(err, errlen, "error setting up initial cluster: cannot find local etcd member \"%s\" in SRV "
		         "records", name);
		free(found);
		return -1;
	}
	*initial_cluster = found;
	return 0;
}

/* ---- v3 discovery (etcd 3.6's server/etcdserver/api/v3discovery) ---- */

#define ERROR_INVALID_URL "discovery: invalid peer URL"
#define ERROR_BAD_SIZE_KEY "discovery: size key is bad"
#define ERROR_SIZE_NOT_FOUND "discovery: size key not found"
#define ERROR_FULL_CLUSTER "discovery: cluster is full"

enum check_result { CHECK_OK, CHECK_FULL, CHECK_SIZE_NOT_FOUND, CHECK_BAD_SIZE, CHECK_SIZE_MISMATCH, CHECK_STOPPED };

struct endpoint {
	char host[256];
	char port[8];
	char url[300];
};

struct registered {
	char *key, *value;
	int64_t create_revision;
};

struct discovery {
	const struct discovery_v3_config *config;
	struct endpoint *endpoints;
	size_t endpoint_count, current;
	char *size_key, *members_prefix, *self_key, *self_value;
	char *log_context; /* "discovery-token", "discovery-endpoints": on every line, as etcd's lg.With */
	unsigned retries;
	uint64_t size, size_seen;
	struct registered *members;
	size_t member_count;
	int64_t revision;
	char last_error[512];
};

static void discovery_log(const struct discovery *discovery, const char *level, const char *message,
                          const char *fields)
{
	log_write(level, message, "%s%s%s", discovery->log_context, fields && *fields ? "," : "", fields ? fields : "");
}

static void registered_free(struct registered *members, size_t count)
{
	for (size_t k = 0; k < count; k++) {
		free(members[k].key);
		free(members[k].value);
	}
	free(members);
}

static int parse_endpoints(struct discovery *discovery, char *err, size_t errlen)
{
	const char *start = discovery->config->endpoints;
	for (;;) {
		const char *comma = strchr(start, ',');
		size_t part = comma ? (size_t)(comma - start) : strlen(start);
		while (part && (*start == ' ' || *start == '\t')) {
			start++;
			part--;
		}
		while (part && (start[part - 1] == ' ' || start[part - 1] == '\t'))
			part--;
		char url[300];
		snprintf(url, sizeof(url), "%.*s", (int)part, start);
		const char *rest = url;
		if (!strncmp(url, "https://", 8)) {
			snprintf(err, errlen, "--discovery-endpoints %s: https is not supported yet (quorumd's discovery "
			         "client speaks cleartext gRPC)", url);
			return -1;
		}
		if (!strncmp(url, "http://", 7))
			rest = url + 7;
		const char *colon = strrchr(rest, ':');
		const char *slash = strchr(rest, '/');
		if (!colon || colon == rest || (slash && slash < colon)) {
			snprintf(err, errlen, "--discovery-endpoints %s: expected http://HOST:PORT", url);
			return -1;
		}
		discovery->endpoints = xrealloc(discovery->endpoints, (discovery->endpoint_count + 1) * sizeof(struct endpoint));
		struct endpoint *endpoint = &discovery->endpoints[discovery->endpoint_count++];
		snprintf(endpoint->host, sizeof(endpoint->host), "%.*s", (int)(colon - rest), rest);
		if (endpoint->host[0] == '[') { /* [::1]:2379 */
			size_t host_length = strlen(endpoint->host);
			if (host_length >= 2 && endpoint->host[host_length - 1] == ']') {
				memmove(endpoint->host, endpoint->host + 1, host_length - 2);
				endpoint->host[host_length - 2] = '\0';
			}
		}
		snprintf(endpoint->port, sizeof(endpoint->port), "%.*s", (int)(slash ? slash - colon - 1 : (long)strlen(colon + 1)),
		         colon + 1);
		snprintf(endpoint->url, sizeof(endpoint->url), "%s", url);
		if (!comma)
			return 0;
		start = comma + 1;
	}
}

/* One unary call; an endpoint that cannot be reached passes the call to the next one (etcd's client
 * balances over the endpoints). Returns the gRPC status; the response (status OK) is malloc'd. */
static int discovery_call(struct discovery *discovery, const char *path, const ProtobufCMessage *request,
                          uint8_t **response, size_t *response_length)
{
	size_t request_length = protobuf_c_message_get_packed_size(request);
	uint8_t *packed = xmalloc(request_length ? request_length : 1);
	protobuf_c_message_pack(request, packed);
	int status = GRPC_UNAVAILABLE;
	for (size_t tried = 0; tried < discovery->endpoint_count; tried++) {
		const struct endpoint *endpoint = &discovery->endpoints[discovery->current];
		char message[256] = "";
		status = gconn_call_sync(endpoint->host, endpoint->port, path, packed, request_length,
		                         discovery->config->request_timeout_ms * 1000000ULL, response, response_length,
		                         message, sizeof(message));
		if (status == GRPC_OK)
			break;
		free(*response);
		*response = NULL;
		snprintf(discovery->last_error, sizeof(discovery->last_error), "%s: %s (%s)", endpoint->url,
		         message[0] ? message : "call failed", grpc_status_name(status));
		if (status != GRPC_UNAVAILABLE && status != GRPC_DEADLINE_EXCEEDED)
			break;
		discovery->current = (discovery->current + 1) % discovery->endpoint_count;
	}
	free(packed);
	return status;
}

/* etcd's logAndBackoffForRetry: 2^retries seconds, the exponent capped at 8. */
static int backoff_for_retry(struct discovery *discovery, const char *step)
{
	discovery->retries++;
	unsigned exponent = discovery->retries > 8 ? 8 : discovery->retries;
	uint64_t seconds = 1ULL << exponent;
	char fields[1024];
	snprintf(fields, sizeof(fields), "\"reason\":\"%s\",\"backoff\":\"%" PRIu64 "s\"", step, seconds);
	discovery_log(discovery, "warn", "retry connecting to discovery service", fields);
	return wait_unless_stopped(seconds * 1000);
}

static char *binary_string(ProtobufCBinaryData data)
{
	char *text = xmalloc(data.len + 1);
	if (data.len)
		memcpy(text, data.data, data.len);
	text[data.len] = '\0';
	return text;
}

static char *trimmed(ProtobufCBinaryData data)
{
	char *text = binary_string(data);
	size_t start = 0, end = strlen(text);
	while (start < end && (text[start] == ' ' || text[start] == '\t' || text[start] == '\n' || text[start] == '\r'))
		start++;
	while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t' || text[end - 1] == '\n' ||
	                       text[end - 1] == '\r'))
		end--;
	memmove(text, text + start, end - start);
	text[end - start] = '\0';
	return text;
}

/* Range of one key or of a prefix. NULL after a failed call (last_error says why). */
static Etcdserverpb__RangeResponse *range(struct discovery *discovery, const char *key, bool prefix)
{
	Etcdserverpb__RangeRequest request = ETCDSERVERPB__RANGE_REQUEST__INIT;
	request.key.data = (uint8_t *)key;
	request.key.len = strlen(key);
	char *end = NULL;
	if (prefix) {
		/* clientv3.WithPrefix: the key with its last byte incremented. */
		end = xstrdup(key);
		end[strlen(end) - 1]++;
		request.range_end.data = (uint8_t *)end;
		request.range_end.len = strlen(end);
	}
	uint8_t *bytes = NULL;
	size_t bytes_length = 0;
	int status = discovery_call(discovery, "/etcdserverpb.KV/Range", &request.base, &bytes, &bytes_length);
	free(end);
	if (status != GRPC_OK)
		return NULL;
	Etcdserverpb__RangeResponse *response = etcdserverpb__range_response__unpack(NULL, bytes_length, bytes);
	free(bytes);
	if (!response)
		snprintf(discovery->last_error, sizeof(discovery->last_error), "malformed RangeResponse");
	return response;
}

/* etcd's getClusterSize. 1: a transport error (retried by the caller). */
static int get_cluster_size(struct discovery *discovery, enum check_result *result)
{
	Etcdserverpb__RangeResponse *response = range(discovery, discovery->size_key, false);
	if (!response) {
		struct text_buffer fields = {0};
		text_buffer_append(&fields, "\"clusterSizeKey\":");
		text_append_json(&fields, discovery->size_key);
		text_buffer_append(&fields, ",\"error\":");
		text_append_json(&fields, discovery->last_error);
		char *line = text_take(&fields);
		discovery_log(discovery, "warn", "failed to get cluster size from discovery service", line);
		free(line);
		return 1;
	}
	if (response->n_kvs == 0) {
		etcdserverpb__range_response__free_unpacked(response, NULL);
		*result = CHECK_SIZE_NOT_FOUND;
		return 0;
	}
	char *value = binary_string(response->kvs[0]->value);
	/* Go's strconv.ParseInt: the whole value, an optional sign and digits only (strtoll alone would also
	 * take leading blanks, and a NUL byte would end the text early). */
	bool whole = strlen(value) == response->kvs[0]->value.len && !isspace((unsigned char)value[0]);
	etcdserverpb__range_response__free_unpacked(response, NULL);
	char *end = NULL;
	errno = 0;
	long long size = strtoll(value, &end, 10);
	bool good = whole && errno == 0 && end != value && *end == '\0' && size > 0;
	free(value);
	if (!good) {
		*result = CHECK_BAD_SIZE;
		return 0;
	}
	discovery->size = (uint64_t)size;
	if (discovery->config->expected_size && discovery->size != discovery->config->expected_size) {
		*result = CHECK_SIZE_MISMATCH;
		return 0;
	}
	*result = CHECK_OK;
	return 0;
}

/* quorumd's --discovery-cluster-size: writes the size key only when it does not exist (a Txn comparing
 * its create revision with 0), so the first member to come sets it and no one overwrites it. */
static int create_size_key(struct discovery *discovery)
{
	char size_text[32];
	snprintf(size_text, sizeof(size_text), "%" PRIu64, discovery->config->expected_size);
	Etcdserverpb__Compare compare = ETCDSERVERPB__COMPARE__INIT;
	compare.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
	compare.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
	compare.key.data = (uint8_t *)discovery->size_key;
	compare.key.len = strlen(discovery->size_key);
	compare.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
	compare.create_revision = 0;
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	put.key = compare.key;
	put.value.data = (uint8_t *)size_text;
	put.value.len = strlen(size_text);
	Etcdserverpb__RequestOp operation = ETCDSERVERPB__REQUEST_OP__INIT;
	operation.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	operation.request_put = &put;
	Etcdserverpb__Compare *compares[] = {&compare};
	Etcdserverpb__RequestOp *operations[] = {&operation};
	Etcdserverpb__TxnRequest request = ETCDSERVERPB__TXN_REQUEST__INIT;
	request.n_compare = 1;
	request.compare = compares;
	request.n_success = 1;
	request.success = operations;
	uint8_t *bytes = NULL;
	size_t bytes_length = 0;
	if (discovery_call(discovery, "/etcdserverpb.KV/Txn", &request.base, &bytes, &bytes_length) != GRPC_OK)
		return 1;
	Etcdserverpb__TxnResponse *response = etcdserverpb__txn_response__unpack(NULL, bytes_length, bytes);
	free(bytes);
	if (!response) {
		snprintf(discovery->last_error, sizeof(discovery->last_error), "malformed TxnResponse");
		return 1;
	}
	struct text_buffer fields = {0};
	text_buffer_append(&fields, "\"clusterSizeKey\":");
	text_append_json(&fields, discovery->size_key);
	text_buffer_append(&fields, ",\"clusterSize\":%" PRIu64 ",\"created\":%s", discovery->config->expected_size,
	            response->succeeded ? "true" : "false");
	char *line = text_take(&fields);
	discovery_log(discovery, "info", "set the cluster size key from --discovery-cluster-size", line);
	free(line);
	etcdserverpb__txn_response__free_unpacked(response, NULL);
	return 0;
}

static int compare_registered(const void *a, const void *b)
{
	const struct registered *x = a, *y = b;
	return x->create_revision < y->create_revision ? -1 : x->create_revision > y->create_revision;
}

static bool is_known(const struct registered *members, size_t count, const char *key)
{
	for (size_t k = 0; k < count; k++)
		if (!strcmp(members[k].key, key))
			return true;
	return false;
}

/* etcd's getClusterMembers: every key under the members prefix, ordered by create revision; a member
 * not seen before is logged once ("found peer from discovery service"). 1: a transport error. */
static int get_cluster_members(struct discovery *discovery)
{
	Etcdserverpb__RangeResponse *response = range(discovery, discovery->members_prefix, true);
	if (!response) {
		struct text_buffer fields = {0};
		text_buffer_append(&fields, "\"membersKeyPrefix\":");
		text_append_json(&fields, discovery->members_prefix);
		text_buffer_append(&fields, ",\"error\":");
		text_append_json(&fields, discovery->last_error);
		char *line = text_take(&fields);
		discovery_log(discovery, "warn", "failed to get cluster members from discovery service", line);
		free(line);
		return 1;
	}
	struct registered *members = xcalloc(response->n_kvs ? response->n_kvs : 1, sizeof(*members));
	size_t count = 0;
	for (size_t k = 0; k < response->n_kvs; k++) {
		char *key = trimmed(response->kvs[k]->key);
		char *value = trimmed(response->kvs[k]->value);
		const char *problem = NULL;
		if (strncmp(key, discovery->members_prefix, strlen(discovery->members_prefix)) != 0)
			problem = "invalid peer registry key";
		else if (!strchr(value, '='))
			problem = "invalid peer info returned from discovery service";
		else if (is_known(members, count, key))
			problem = "found duplicate peer from discovery service";
		if (problem || !is_known(discovery->members, discovery->member_count, key)) {
			struct text_buffer fields = {0};
			text_buffer_append(&fields, "\"memberKey\":");
			text_append_json(&fields, key);
			text_buffer_append(&fields, ",\"memberInfo\":");
			text_append_json(&fields, value);
			char *line = text_take(&fields);
			discovery_log(discovery, problem ? "warn" : "info", problem ? problem : "found peer from discovery service",
			              line);
			free(line);
		}
		if (problem) {
			free(key);
			free(value);
			continue;
		}
		members[count].key = key;
		members[count].value = value;
		members[count].create_revision = response->kvs[k]->create_revision;
		count++;
	}
	qsort(members, count, sizeof(*members), compare_registered);
	discovery->revision = response->header ? response->header->revision : 0;
	etcdserverpb__range_response__free_unpacked(response, NULL);
	registered_free(discovery->members, discovery->member_count);
	discovery->members = members;
	discovery->member_count = count;
	return 0;
}

/* etcd's checkCluster: the size, the members, and whether this member is (or would be) among the first
 * `size` registrations. Transport errors are retried with etcd's backoff, as long as it takes. */
static enum check_result check_cluster(struct discovery *discovery)
{
	for (;;) {
		enum check_result result = CHECK_OK;
		int failed = get_cluster_size(discovery, &result);
		if (!failed && result == CHECK_SIZE_NOT_FOUND && discovery->config->expected_size) {
			failed = create_size_key(discovery);
			if (!failed)
				continue;
		}
		if (!failed && result != CHECK_OK)
			return result;
		if (!failed)
			failed = get_cluster_members(discovery);
		if (failed) {
			if (backoff_for_retry(discovery, "cluster status check") != 0)
				return CHECK_STOPPED;
			continue;
		}
		discovery->retries = 0;
		size_t position = 0;
		for (size_t k = 0; k < discovery->member_count; k++) {
			if (!strcmp(discovery->members[k].key, discovery->self_key))
				break;
			if (position + 1 >= discovery->size)
				return CHECK_FULL;
			position++;
		}
		return CHECK_OK;
	}
}

/* etcd's registerSelf: a plain Put (a member that registers again keeps its create revision, so its
 * place in the order). */
static int register_self(struct discovery *discovery)
{
	for (;;) {
		Etcdserverpb__PutRequest request = ETCDSERVERPB__PUT_REQUEST__INIT;
		request.key.data = (uint8_t *)discovery->self_key;
		request.key.len = strlen(discovery->self_key);
		request.value.data = (uint8_t *)discovery->self_value;
		request.value.len = strlen(discovery->self_value);
		uint8_t *bytes = NULL;
		size_t bytes_length = 0;
		int status = discovery_call(discovery, "/etcdserverpb.KV/Put", &request.base, &bytes, &bytes_length);
		free(bytes);
		struct text_buffer fields = {0};
		text_buffer_append(&fields, "\"memberKey\":");
		text_append_json(&fields, discovery->self_key);
		if (status == GRPC_OK) {
			text_buffer_append(&fields, ",\"memberInfo\":");
			text_append_json(&fields, discovery->self_value);
			char *line = text_take(&fields);
			discovery_log(discovery, "info", "register member itself successfully", line);
			free(line);
			discovery->retries = 0;
			return 0;
		}
		text_buffer_append(&fields, ",\"error\":");
		text_append_json(&fields, discovery->last_error);
		char *line = text_take(&fields);
		discovery_log(discovery, "warn", "failed to register members itself to the discovery service", line);
		free(line);
		if (backoff_for_retry(discovery, "register member itself") != 0)
			return -1;
	}
}

/* etcd's waitPeers, by polling the member list (etcd watches it): every new registration is logged as it
 * is seen; returns when `size` have registered. */
static int wait_peers(struct discovery *discovery)
{
	char fields[256];
	snprintf(fields, sizeof(fields), "\"clusterSize\":%" PRIu64 ",\"found-peers\":%zu", discovery->size,
	         discovery->member_count);
	discovery_log(discovery, "info", "waiting for peers from discovery service", fields);
	uint64_t pause_ms = 100;
	while (discovery->member_count < discovery->size) {
		if (wait_unless_stopped(pause_ms) != 0)
			return -1;
		pause_ms = pause_ms * 2 > 1000 ? 1000 : pause_ms * 2;
		while (get_cluster_members(discovery) != 0)
			if (backoff_for_retry(discovery, "cluster status check") != 0)
				return -1;
		discovery->retries = 0;
	}
	snprintf(fields, sizeof(fields), "\"clusterSize\":%" PRIu64 ",\"found-peers\":%zu", discovery->size,
	         discovery->member_count);
	discovery_log(discovery, "info", "found all needed peers from discovery service", fields);
	return 0;
}

static const char *check_error(enum check_result result)
{
	switch (result) {
	case CHECK_FULL:
		return ERROR_FULL_CLUSTER;
	case CHECK_SIZE_NOT_FOUND:
		return ERROR_SIZE_NOT_FOUND;
	case CHECK_BAD_SIZE:
		return ERROR_BAD_SIZE_KEY;
	case CHECK_STOPPED:
		return "discovery: stopped by a signal while waiting";
	case CHECK_SIZE_MISMATCH:
	case CHECK_OK:
		break;
	}
	return NULL;
}

/* `name=url,name=url` with the pairs sorted, as etcd's types.URLsMap.String() writes the registration. */
static char *registration_value(const char *name, const char *advertise_peer_urls, char *err, size_t errlen)
{
	char **urls = NULL;
	size_t count = 0;
	if (peer_url_list_parse(advertise_peer_urls, &urls, &count, err, errlen) != 0)
		return NULL;
	char **pairs = xcalloc(count ? count : 1, sizeof(char *));
	for (size_t k = 0; k < count; k++)
		if (asprintf(&pairs[k], "%s=%s", name, urls[k]) < 0)
			alloc_failed(strlen(name) + strlen(urls[k]) + 2);
	peer_url_list_free(urls, count);
	for (size_t i = 1; i < count; i++) /* a member has one or two URLs: insertion sort */
		for (size_t j = i; j > 0 && strcmp(pairs[j - 1], pairs[j]) > 0; j--) {
			char *swap = pairs[j];
			pairs[j] = pairs[j - 1];
			pairs[j - 1] = swap;
		}
	struct text_buffer value = {0};
	for (size_t k = 0; k < count; k++) {
		text_buffer_append(&value, "%s%s", k ? "," : "", pairs[k]);
		free(pairs[k]);
	}
	free(pairs);
	return text_take(&value);
}

int discovery_v3_join(const struct discovery_v3_config *config, char **initial_cluster, char *err, size_t errlen)
{
	*initial_cluster = NULL;
	struct discovery discovery = {.config = config};
	struct text_buffer context = {0};
	text_buffer_append(&context, "\"discovery-token\":");
	text_append_json(&context, config->token);
	text_buffer_append(&context, ",\"discovery-endpoints\":");
	text_append_json(&context, config->endpoints);
	discovery.log_context = text_take(&context);
	int rc = -1;
	char *cluster = NULL;
	if (parse_endpoints(&discovery, err, errlen) != 0)
		goto done;
	if (asprintf(&discovery.size_key, "/_etcd/registry/%s/_config/size", config->token) < 0 ||
	    asprintf(&discovery.members_prefix, "/_etcd/registry/%s/members", config->token) < 0 ||
	    asprintf(&discovery.self_key, "/_etcd/registry/%s/members/%" PRIx64, config->token, config->member_id) < 0)
		alloc_failed(strlen(config->token) + 64);
	discovery.self_value = registration_value(config->name, config->advertise_peer_urls, err, errlen);
	if (!discovery.self_value)
		goto done;

	enum check_result result = check_cluster(&discovery);
	if (result == CHECK_OK) {
		if (register_self(&discovery) != 0)
			result = CHECK_STOPPED;
		else
			result = check_cluster(&discovery);
	}
	if (result == CHECK_OK && wait_peers(&discovery) != 0)
		result = CHECK_STOPPED;
	const char *failure = check_error(result);
	char mismatch[256];
	if (result == CHECK_SIZE_MISMATCH) {
		snprintf(mismatch, sizeof(mismatch), "discovery: size key is %" PRIu64 " but --discovery-cluster-size is "
		         "%" PRIu64, discovery.size, config->expected_size);
		failure = mismatch;
	}
	/* etcd's getInitClusterStr: the first `size` registrations; a URL that does not parse is
	 * ErrInvalidURL. */
	struct text_buffer joined = {0};
	for (size_t k = 0; k < discovery.member_count && k < discovery.size; k++)
		text_buffer_append(&joined, "%s%s", k ? "," : "", discovery.members[k].value);
	cluster = text_take(&joined);
	if (!failure) {
		struct initial_cluster parsed;
		char reason[512];
		if (initial_cluster_parse(cluster, config->token, &parsed, reason, sizeof(reason)) != 0)
			failure = ERROR_INVALID_URL;
		else
			initial_cluster_free(&parsed);
	}
	struct text_buffer fields = {0};
	text_buffer_append(&fields, "\"cluster\":");
	text_append_json(&fields, failure ? "" : cluster);
	if (failure) {
		text_buffer_append(&fields, ",\"error\":");
		text_append_json(&fields, failure);
		snprintf(err, errlen, "failed to join discovery cluster (%s)", failure);
	}
	char *line = text_take(&fields);
	discovery_log(&discovery, failure ? "error" : "info",
	              failure ? "discovery failed to join cluster" : "discovery joined cluster successfully", line);
	free(line);
	if (!failure) {
		*initial_cluster = cluster;
		cluster = NULL;
		rc = 0;
	}
done:
	free(cluster);
	free(discovery.endpoints);
	free(discovery.size_key);
	free(discovery.members_prefix);
	free(discovery.self_key);
	free(discovery.self_value);
	free(discovery.log_context);
	registered_free(discovery.members, discovery.member_count);
	return rc;
}
