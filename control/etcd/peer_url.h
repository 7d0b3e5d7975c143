/* control/etcd/peer_url.h: etcd-style member URLs (`http://10.0.0.1:2380`, `udp://...`) and the
 * `--initial-cluster` list, parsed with errors that name the offending text. */
#ifndef QUORUMD_CONTROL_PEER_URL_H
#define QUORUMD_CONTROL_PEER_URL_H

#include <stddef.h>
#include <stdint.h>

struct peer_url {
	char scheme[8];   /* http, https or udp */
	char host[256];   /* as written: a name is not resolved for comparisons, as in etcd */
	uint16_t port;
};

/* Parses one URL; on error returns -1 with a message naming the URL in errbuf. */
int peer_url_parse(const char *text, struct peer_url *url, char *err, size_t errlen);

/* A comma-separated list of URLs as given to --listen-peer-urls and friends. The caller frees
 * *urls_out with free(); each string with free() too. */
int peer_url_list_parse(const char *text, char ***urls_out, size_t *count_out, char *err, size_t errlen);
void peer_url_list_free(char **urls, size_t count);

struct initial_member {
	char *name;
	char **peer_urls; /* as written, in the order given */
	size_t peer_urls_count;
	uint64_t id;      /* computed as etcd does from the sorted URLs and the cluster token */
};

struct initial_cluster {
	struct initial_member *members;
	size_t count;
	uint64_t cluster_id;
};

/* Parses `name=url,name=url,...` (a name may repeat to give a member several URLs), computes member and
 * cluster IDs with the token, and rejects empty names, bad URLs and a URL given to two members. */
int initial_cluster_parse(const char *text, const char *cluster_token, struct initial_cluster *cluster,
                          char *err, size_t errlen);
const struct initial_member *initial_cluster_find(const struct initial_cluster *cluster, const char *name);
void initial_cluster_free(struct initial_cluster *cluster);

#endif
