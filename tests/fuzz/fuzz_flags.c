/* tests/fuzz/fuzz_flags.c: libFuzzer target for quorumd's command line (control/config/flags.h) and the URL and
 * --initial-cluster parsers (control/etcd/peer_url.h) that read what it accepted.
 *
 * Input: byte 0 is the number of command-line arguments n (mod 64); the rest is NUL-separated strings:
 * the first n are argv[1..n], the others the environment (KEY=VALUE, ETCD_* or not). node_flags_parse
 * runs on them; when it accepts, the values go where quorumd sends them: --initial-cluster with the
 * token through initial_cluster_parse (and initial_cluster_find of --name), each URL list through
 * peer_url_list_parse and each of its URLs through peer_url_parse. Whatever is rejected must come with
 * a message; nothing may crash, leak or read out of bounds. Each string is its own heap allocation, so
 * ASan sees a read past its NUL.
 *
 * tests/fuzz/make_seeds.py writes the seed corpus (corpus/flags/). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"
#include "peer_url.h"

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, "fuzz-flags: " __VA_ARGS__);                           \
		fputc('\n', stderr);                                                   \
		abort();                                                               \
	} while (0)

#define MAX_STRINGS 256

static FILE *warnings;

static void check_url_list(const char *text)
{
	if (text == NULL)
		return;
	char **urls = NULL, errbuf[512] = "";
	size_t count = 0;
	if (peer_url_list_parse(text, &urls, &count, errbuf, sizeof errbuf) != 0) {
		if (errbuf[0] == '\0')
			FAIL("peer_url_list_parse rejected \"%s\" without a message", text);
		return;
	}
	for (size_t k = 0; k < count; k++) {
		struct peer_url url;
		errbuf[0] = '\0';
		if (peer_url_parse(urls[k], &url, errbuf, sizeof errbuf) != 0) {
			if (errbuf[0] == '\0')
				FAIL("peer_url_parse rejected \"%s\" without a message", urls[k]);
			continue;
		}
		if (memchr(url.scheme, '\0', sizeof url.scheme) == NULL || memchr(url.host, '\0', sizeof url.host) == NULL)
			FAIL("peer_url_parse left a field without its NUL");
	}
	peer_url_list_free(urls, count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (warnings == NULL)
		warnings = fopen("/dev/null", "w");
	if (size < 1)
		return 0;
	size_t argc_wanted = data[0] % 64;
	char *strings[MAX_STRINGS];
	size_t count = 0, at = 1;
	while (at < size && count < MAX_STRINGS) {
		const uint8_t *end = memchr(data + at, '\0', size - at);
		size_t length = end ? (size_t)(end - (data + at)) : size - at;
		strings[count] = malloc(length + 1);
		memcpy(strings[count], data + at, length);
		strings[count][length] = '\0';
		count++;
		at += length + 1;
	}
	size_t argc_given = argc_wanted < count ? argc_wanted : count;
	char *argv[MAX_STRINGS + 2], *environment[MAX_STRINGS + 1];
	argv[0] = "quorumd";
	for (size_t k = 0; k < argc_given; k++)
		argv[1 + k] = strings[k];
	argv[1 + argc_given] = NULL;
	size_t environment_count = count - argc_given;
	for (size_t k = 0; k < environment_count; k++)
		environment[k] = strings[argc_given + k];
	environment[environment_count] = NULL;

	struct node_flags flags;
	memset(&flags, 0, sizeof flags);
	char errbuf[1024] = "";
	int rc = node_flags_parse((int)argc_given + 1, argv, environment, &flags, errbuf, sizeof errbuf, warnings);
	if (rc != 0) {
		if (errbuf[0] == '\0')
			FAIL("node_flags_parse failed without a message");
	} else if (!flags.help && !flags.version) { /* --help and --version stop before the defaults */
		if (flags.name == NULL || flags.data_dir == NULL || flags.control_socket == NULL)
			FAIL("node_flags_parse accepted but left name, data dir or control socket unset");
		if (flags.initial_cluster != NULL) {
			struct initial_cluster cluster;
			memset(&cluster, 0, sizeof cluster);
			errbuf[0] = '\0';
			if (initial_cluster_parse(flags.initial_cluster,
				    flags.initial_cluster_token ? flags.initial_cluster_token : "etcd-cluster", &cluster,
				    errbuf, sizeof errbuf) == 0) {
				for (size_t k = 0; k < cluster.count; k++) {
					if (cluster.members[k].name == NULL || cluster.members[k].peer_urls_count == 0)
						FAIL("initial_cluster_parse accepted a member without name or URL");
					if (initial_cluster_find(&cluster, cluster.members[k].name) == NULL)
						FAIL("initial_cluster_find does not find member %s", cluster.members[k].name);
					for (size_t u = 0; u < cluster.members[k].peer_urls_count; u++) {
						struct peer_url url;
						char e[512];
						if (peer_url_parse(cluster.members[k].peer_urls[u], &url, e, sizeof e) != 0)
							FAIL("--initial-cluster accepted a URL peer_url_parse rejects: %s", e);
					}
				}
				(void)initial_cluster_find(&cluster, flags.name);
				initial_cluster_free(&cluster);
			} else if (errbuf[0] == '\0') {
				FAIL("initial_cluster_parse failed without a message");
			}
		}
		check_url_list(flags.listen_peer_urls);
		check_url_list(flags.initial_advertise_peer_urls);
		check_url_list(flags.listen_client_urls);
		check_url_list(flags.advertise_client_urls);
		check_url_list(flags.listen_metrics_urls);
	}
	node_flags_free(&flags);
	/* The parsers straight on the raw strings too, whatever the flags made of them. */
	for (size_t k = 0; k < count && k < 4; k++) {
		struct initial_cluster cluster;
		memset(&cluster, 0, sizeof cluster);
		if (initial_cluster_parse(strings[k], "fuzz", &cluster, errbuf, sizeof errbuf) == 0)
			initial_cluster_free(&cluster);
		check_url_list(strings[k]);
	}
	for (size_t k = 0; k < count; k++)
		free(strings[k]);
	return 0;
}
