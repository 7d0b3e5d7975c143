/* tests/control/test_peer_url.c: etcd's member and cluster IDs (the seed's test vector) and the parsing
 * of URLs and --initial-cluster, including the errors an operator sees. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "member_id.h"
#include "peer_url.h"

#include "check.h"

static void test_etcd_vector(void)
{
	/* From the seed and etcd 3.4 itself. */
	struct initial_cluster cluster;
	char error[256] = "";
	int rc = initial_cluster_parse(
	    "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380",
	    "etcd-cluster-1", &cluster, error, sizeof(error));
	CHECK(rc == 0, "parse failed: %s", error);
	if (rc != 0)
		return;
	CHECK(cluster.count == 3, "count %zu", cluster.count);
	const uint64_t expected[] = {0x8211f1d0f64f3269ULL, 0x91bc3c398fb3c146ULL, 0xfd422379fda50e48ULL};
	for (size_t k = 0; k < 3 && k < cluster.count; k++)
		CHECK(cluster.members[k].id == expected[k], "member %s id %" PRIx64 ", want %" PRIx64,
		      cluster.members[k].name, cluster.members[k].id, expected[k]);
	CHECK(cluster.cluster_id == 0xef37ad9dc622a7c4ULL, "cluster id %" PRIx64, cluster.cluster_id);
	initial_cluster_free(&cluster);
}

static void test_token_and_time_change_the_id(void)
{
	const char *urls[] = {"http://127.0.0.1:42380"};
	uint64_t plain = member_id_compute(urls, 1, "etcd-cluster-1", false, 0);
	uint64_t other_token = member_id_compute(urls, 1, "another-token", false, 0);
	uint64_t added_now = member_id_compute(urls, 1, "etcd-cluster-1", true, 1700000000);
	uint64_t added_later = member_id_compute(urls, 1, "etcd-cluster-1", true, 1700000001);
	CHECK(plain != other_token, "token must change the id");
	CHECK(plain != added_now && added_now != added_later, "the time of an add must change the id");
	/* URLs are sorted before hashing: the order given does not matter. */
	const char *forward[] = {"http://a:1", "http://b:2"};
	const char *backward[] = {"http://b:2", "http://a:1"};
	CHECK(member_id_compute(forward, 2, "t", false, 0) == member_id_compute(backward, 2, "t", false, 0),
	      "URL order must not matter");
}

static void test_url_errors(void)
{
	struct peer_url url;
	char error[256];
	CHECK(peer_url_parse("http://127.0.0.1:2380", &url, error, sizeof(error)) == 0, "%s", error);
	CHECK(strcmp(url.host, "127.0.0.1") == 0 && url.port == 2380, "host %s port %u", url.host, url.port);
	CHECK(peer_url_parse("udp://[::1]:2380", &url, error, sizeof(error)) == 0 && strcmp(url.host, "::1") == 0,
	      "%s", error);
	CHECK(peer_url_parse("127.0.0.1:2380", &url, error, sizeof(error)) == -1 &&
	          strstr(error, "127.0.0.1:2380") && strstr(error, "scheme"),
	      "no scheme: %s", error);
	CHECK(peer_url_parse("ftp://a:1", &url, error, sizeof(error)) == -1 && strstr(error, "ftp://a:1"),
	      "bad scheme: %s", error);
	CHECK(peer_url_parse("http://a:99999", &url, error, sizeof(error)) == -1 && strstr(error, "port"),
	      "bad port: %s", error);
	CHECK(peer_url_parse("http://a", &url, error, sizeof(error)) == -1 && strstr(error, "port"),
	      "no port: %s", error);
}

static void test_initial_cluster_errors(void)
{
	struct initial_cluster cluster;
	char error[256];
	CHECK(initial_cluster_parse("infra1", "t", &cluster, error, sizeof(error)) == -1 &&
	          strstr(error, "NAME=URL"),
	      "missing '=': %s", error);
	CHECK(initial_cluster_parse("=http://a:1", "t", &cluster, error, sizeof(error)) == -1, "empty name");
	CHECK(initial_cluster_parse("a=http://h:1,b=http://h:1", "t", &cluster, error, sizeof(error)) == -1 &&
	          strstr(error, "twice"),
	      "duplicate URL: %s", error);
	CHECK(initial_cluster_parse("a=h:1", "t", &cluster, error, sizeof(error)) == -1 && strstr(error, "h:1"),
	      "URL without scheme: %s", error);
	CHECK(initial_cluster_parse("", "t", &cluster, error, sizeof(error)) == -1, "empty list");
	/* One member with two URLs. */
	CHECK(initial_cluster_parse("a=http://h:1,a=http://h:2,b=http://h:3", "t", &cluster, error,
	                            sizeof(error)) == 0,
	      "%s", error);
	CHECK(cluster.count == 2 && cluster.members[0].peer_urls_count == 2, "grouping by name");
	initial_cluster_free(&cluster);
}

int main(void)
{
	test_etcd_vector();
	test_token_and_time_change_the_id();
	test_url_errors();
	test_initial_cluster_errors();
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
