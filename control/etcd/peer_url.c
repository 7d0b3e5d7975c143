/* control/etcd/peer_url.c: parsing of member URLs and of --initial-cluster. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "member_id.h"
#include "peer_url.h"

int peer_url_parse(const char *text, struct peer_url *url, char *err, size_t errlen)
{
	memset(url, 0, sizeof(*url));
	const char *separator = strstr(text, "://");
	if (!separator) {
		snprintf(err, errlen, "URL %s has no scheme (expected http://, https:// or udp://HOST:PORT)", text);
		return -1;
	}
	size_t scheme_length = (size_t)(separator - text);
	if (scheme_length >= sizeof(url->scheme)) {
		snprintf(err, errlen, "URL %s: scheme must be http, https or udp", text);
		return -1;
	}
	memcpy(url->scheme, text, scheme_length);
	if (strcmp(url->scheme, "http") && strcmp(url->scheme, "https") && strcmp(url->scheme, "udp")) {
		snprintf(err, errlen, "URL %s: scheme must be http, https or udp", text);
		return -1;
	}
	const char *host = separator + 3;
	const char *host_end;
	const char *port_text;
	if (*host == '[') { /* IPv6 literal */
		host_end = strchr(host, ']');
		if (!host_end || host_end[1] != ':') {
			snprintf(err, errlen, "URL %s: expected [IPv6]:PORT", text);
			return -1;
		}
		host++;
		port_text = host_end + 2;
	} else {
		host_end = strrchr(host, ':');
		if (!host_end) {
			snprintf(err, errlen, "URL %s has no port (expected %s://HOST:PORT)", text, url->scheme);
			return -1;
		}
		port_text = host_end + 1;
	}
	size_t host_length = (size_t)(host_end - host);
	if (host_length == 0 || host_length >= sizeof(url->host)) {
		snprintf(err, errlen, "URL %s: missing or too long host", text);
		return -1;
	}
	memcpy(url->host, host, host_length);
	char *end = NULL;
	errno = 0;
	unsigned long port = strtoul(port_text, &end, 10);
	if (errno || end == port_text || port == 0 || port > 65535 || (*end && strcmp(end, "/") != 0)) {
		snprintf(err, errlen, "URL %s: invalid port", text);
		return -1;
	}
	url->port = (uint16_t)port;
	return 0;
}

static char *trimmed_copy(const char *start, size_t length)
{
	while (length && isspace((unsigned char)*start)) {
		start++;
		length--;
	}
	while (length && isspace((unsigned char)start[length - 1]))
		length--;
	char *copy = xmalloc(length + 1);
	memcpy(copy, start, length);
	copy[length] = '\0';
	return copy;
}

void peer_url_list_free(char **urls, size_t count)
{
	for (size_t k = 0; k < count; k++)
		free(urls[k]);
	free(urls);
}

int peer_url_list_parse(const char *text, char ***urls_out, size_t *count_out, char *err, size_t errlen)
{
	char **urls = NULL;
	size_t count = 0;
	const char *cursor = text;
	while (true) {
		const char *comma = strchr(cursor, ',');
		size_t length = comma ? (size_t)(comma - cursor) : strlen(cursor);
		char *item = trimmed_copy(cursor, length);
		struct peer_url parsed;
		if (!*item || peer_url_parse(item, &parsed, err, errlen) != 0) {
			if (!*item)
				snprintf(err, errlen, "empty URL in list \"%s\"", text);
			free(item);
			peer_url_list_free(urls, count);
			return -1;
		}
		urls = xrealloc(urls, (count + 1) * sizeof(char *));
		urls[count++] = item;
		if (!comma)
			break;
		cursor = comma + 1;
	}
	*urls_out = urls;
	*count_out = count;
	return 0;
}

const struct initial_member *initial_cluster_find(const struct initial_cluster *cluster, const char *name)
{
	for (size_t k = 0; k < cluster->count; k++)
		if (strcmp(cluster->members[k].name, name) == 0)
			return &cluster->members[k];
	return NULL;
}

void initial_cluster_free(struct initial_cluster *cluster)
{
	for (size_t k = 0; k < cluster->count; k++) {
		free(cluster->members[k].name);
		peer_url_list_free(cluster->members[k].peer_urls, cluster->members[k].peer_urls_count);
	}
	free(cluster->members);
	memset(cluster, 0, sizeof(*cluster));
}

int initial_cluster_parse(const char *text, const char *cluster_token, struct initial_cluster *cluster,
                          char *err, size_t errlen)
{
	memset(cluster, 0, sizeof(*cluster));
	if (!text || !*text) {
		snprintf(err, errlen, "--initial-cluster is empty");
		return -1;
	}
	const char *cursor = text;
	while (true) {
		const char *comma = strchr(cursor, ',');
		size_t length = comma ? (size_t)(comma - cursor) : strlen(cursor);
		char *item = trimmed_copy(cursor, length);
		char *equals = strchr(item, '=');
		struct peer_url parsed;
		if (!equals || equals == item) {
			snprintf(err, errlen, "--initial-cluster: \"%s\" is not NAME=URL", item);
			free(item);
			goto fail;
		}
		*equals = '\0';
		const char *url = equals + 1;
		if (peer_url_parse(url, &parsed, err, errlen) != 0) {
			free(item);
			goto fail;
		}
		for (size_t m = 0; m < cluster->count; m++)
			for (size_t u = 0; u < cluster->members[m].peer_urls_count; u++)
				if (strcmp(cluster->members[m].peer_urls[u], url) == 0) {
					snprintf(err, errlen, "--initial-cluster: URL %s is given twice", url);
					free(item);
					goto fail;
				}
		struct initial_member *member = (struct initial_member *)initial_cluster_find(cluster, item);
		if (!member) {
			cluster->members = xrealloc(cluster->members, (cluster->count + 1) * sizeof(*member));
			member = &cluster->members[cluster->count++];
			memset(member, 0, sizeof(*member));
			member->name = xstrdup(item);
		}
		member->peer_urls = xrealloc(member->peer_urls, (member->peer_urls_count + 1) * sizeof(char *));
		member->peer_urls[member->peer_urls_count++] = strdup(url);
		free(item);
		if (!comma)
			break;
		cursor = comma + 1;
	}
	uint64_t *ids = xmalloc(cluster->count * sizeof(uint64_t));
	for (size_t m = 0; m < cluster->count; m++) {
		struct initial_member *member = &cluster->members[m];
		member->id = member_id_compute((const char *const *)member->peer_urls, member->peer_urls_count,
		                               cluster_token, false, 0);
		ids[m] = member->id;
	}
	cluster->cluster_id = cluster_id_compute(ids, cluster->count);
	free(ids);
	return 0;
fail:
	initial_cluster_free(cluster);
	return -1;
}
