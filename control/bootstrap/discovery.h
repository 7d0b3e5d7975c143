/* control/bootstrap/discovery.h: bootstrap discovery — the `--initial-cluster` of a new cluster found from DNS SRV
 * records (etcd's --discovery-srv) or through an existing etcd-compatible cluster (etcd 3.6's v3
 * discovery: --discovery-endpoints, --discovery-token). Used only when the data dir is new (node.c).
 *
 * Both block the calling thread (bootstrap_open, before any thread starts). While they wait, SIGINT and
 * SIGTERM (blocked by main.c for the signalfd) are polled, so a waiting member still stops when asked. */
#ifndef QUORUMD_CONTROL_DISCOVERY_H
#define QUORUMD_CONTROL_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

/* etcd's srv.GetCluster for `_etcd-server-ssl[-SUFFIX]._tcp.DOMAIN` (https) and
 * `_etcd-server[-SUFFIX]._tcp.DOMAIN` (http): each record becomes `NAME=SCHEME://TARGET:PORT`, NAME being
 * `name` when the target resolves to the address one of advertise_peer_urls resolves to, and "0", "1",
 * ... otherwise. Returns 0 with *initial_cluster malloc'd, or -1 with etcd's error text in error. */
int discovery_srv_cluster(const char *domain, const char *service_suffix, const char *name,
                          const char *advertise_peer_urls, char **initial_cluster, char *err, size_t errlen);

struct discovery_v3_config {
	const char *endpoints;          /* comma-separated client URLs of the discovery cluster */
	const char *token;              /* /_etcd/registry/<token>/ */
	const char *name;               /* this member's --name */
	const char *advertise_peer_urls;
	uint64_t member_id;             /* the id this member bootstraps with (registration key) */
	uint64_t expected_size;         /* --discovery-cluster-size: 0, or the size to create/check */
	uint64_t request_timeout_ms;
};

/* etcd 3.6's v3discovery.JoinCluster: reads /_etcd/registry/<token>/_config/size, registers
 * /_etcd/registry/<token>/members/<member id %x> = `name=peerURL,...`, waits until `size` members have
 * registered, and returns in *initial_cluster the first `size` registrations by create revision. -1 with
 * etcd's error ("discovery: cluster is full", "discovery: size key not found", ...) in error. */
int discovery_v3_join(const struct discovery_v3_config *config, char **initial_cluster, char *err, size_t errlen);

#endif
