/* control/config/flags.h: quorumd's command line — etcd's flags with their meaning and defaults, each also
 * read from its ETCD_* environment variable (a flag on the command line wins), plus quorumd's own. */
#ifndef QUORUMD_CONTROL_FLAGS_H
#define QUORUMD_CONTROL_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum initial_cluster_state { INITIAL_CLUSTER_STATE_NEW, INITIAL_CLUSTER_STATE_EXISTING };

struct node_flags {
	char *name;
	char *data_dir;
	char *wal_dir;
	char *initial_cluster;
	enum initial_cluster_state initial_cluster_state;
	char *initial_cluster_token;
	char *listen_peer_urls;
	char *initial_advertise_peer_urls;
	char *listen_client_urls;
	char *advertise_client_urls;
	char *listen_metrics_urls;
	/* Client TLS, as etcd's flags of these names (grpc/grpc_tls.h serves it). */
	char *cert_file;
	char *key_file;
	char *trusted_ca_file;
	bool client_cert_auth;
	char *client_crl_file;               /* PEM or DER CRL: client certificates it lists are refused */
	char *client_cert_allowed_hostname;  /* a client certificate must be valid for it (SAN) */
	bool auto_tls;
	char *cipher_suites;  /* Go's names, comma-separated; "" = Go's defaults */
	uint64_t max_request_bytes;
	uint64_t max_concurrent_streams; /* per HTTP/2 connection (etcd 3.5's flag) */
	uint64_t client_threads;
	uint64_t heartbeat_interval_ms;
	uint64_t election_timeout_ms;
	uint64_t snapshot_count;          /* client requests applied between snapshots (0: none) */
	uint64_t snapshot_catchup_entries; /* requests' entries kept in the log behind a snapshot */
	uint64_t max_snapshots;           /* snapshots kept on disk (0: all) */
	uint64_t max_wals;                /* WAL segment files kept (0: all) */
	char *auto_compaction_mode;       /* periodic or revision */
	char *auto_compaction_retention;  /* "0": off; a duration (periodic) or a number of revisions */
	int64_t quota_backend_bytes;      /* etcd's: 0 = the default (2 GiB), negative = no quota */
	bool strict_reconfig_check;
	bool force_new_cluster;
	char *dataplane;      /* udp or dpdk */
	char *dpdk_args;
	char *dataplane_idle;  /* adaptive or poll: what a DPDK lcore does when idle */
	char *dpdk_neighbors;  /* static ARP entries for the dpdk transport: IP=MAC,... */
	char *control_socket; /* default: DATA_DIR/control.sock */
	char *logger;         /* zap (the only one: JSON lines as etcd's zap logger writes them) */
	char *log_outputs;    /* default (= stderr), stderr, stdout or file paths, comma-separated */
	char *log_level;      /* debug, info, warn or error */
	bool enable_pprof;
	/* Peer TLS, as etcd's flags of these names (dataplane/peer_tls.h): a TLS 1.3 handshake between members
	 * keys the AEAD sealing every peer frame. */
	char *peer_cert_file;
	char *peer_key_file;          /* etcd's meaning: the peer TLS private key */
	char *peer_trusted_ca_file;
	bool peer_client_cert_auth;
	bool peer_auto_tls;
	char *peer_cert_allowed_cn;
	char *peer_cert_allowed_hostname;  /* exclusive with peer_cert_allowed_cn, as in etcd */
	char *peer_crl_file;
	char *peer_frame_key_file;    /* quorumd's own, the lighter option: a shared MAC key; "": none */
	char *auth_token;             /* etcd's token provider: simple, jwt,OPTIONS or "" */
	uint64_t auth_token_ttl;      /* seconds a simple token may stay unused */
	uint64_t bcrypt_cost;         /* bcrypt's cost for users' passwords */
	char *discovery_srv;          /* bootstrap discovery, used only with a new data dir (discovery.h) */
	char *discovery_srv_name;     /* SRV service suffix: _etcd-server-SUFFIX._tcp */
	char *discovery_endpoints;    /* v3 discovery: client URLs of the discovery cluster */
	char *discovery_token;        /* v3 discovery: /_etcd/registry/TOKEN/, and the cluster token */
	uint64_t discovery_cluster_size; /* 0: read the size key (etcd); N: write it when absent, else check it */
	uint64_t watch_progress_notify_interval_ms; /* --experimental-watch-progress-notify-interval (etcd 3.4) */
	bool help;
	bool version;
};

/* Parses argv and the environment. Returns 0, or -1 with a message naming the flag in errbuf.
 * Warnings (an environment variable shadowed by a flag) go to warnings when it is not NULL. */
int node_flags_parse(int argc, char **argv, char **environment, struct node_flags *flags, char *err,
                     size_t errlen, FILE *warnings);
void node_flags_free(struct node_flags *flags);
void node_flags_print_help(FILE *out);

#endif
