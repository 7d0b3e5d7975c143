/* bench/quorum_bench/bench_flags.h: quorum-bench's command line, parsed into one bench_config.
 *
 * Form as etcd's tools/benchmark: `quorum-bench [global flags] WORKLOAD [ARGS] [workload flags]`.
 * Flags are `--name=value` or `--name value`; booleans also bare (`--json`) or `--name=true|false`.
 * Global flags may also follow the workload (cobra's persistent flags do). etcd's spellings and the
 * issue's are both accepted: --key-space-size / --key-space, --output=json / --json, --rw-ratio /
 * --read-ratio. --total and --rate are global here and per-workload in etcd; both positions work.
 *
 * bench_parse_args touches no network and allocates only the endpoint list, so the unit test drives it. */
#ifndef QUORUMD_BENCH_FLAGS_H
#define QUORUMD_BENCH_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum bench_workload {
	BENCH_NONE = 0,
	BENCH_PUT,
	BENCH_RANGE,
	BENCH_TXN,   /* compare-and-swap: If(mod_revision(k) == known) Then(put k) Else(get k) */
	BENCH_MIXED, /* range or put, --read-ratio of them ranges */
	BENCH_STATUS /* Maintenance.Status on every endpoint, printed; no load */
};

struct bench_endpoint {
	char host[256];  /* "127.0.0.1", "localhost", "::1" (no brackets) */
	char port[8];
	char url[300];   /* as given, for messages and reports */
	bool tls;        /* https://, or any TLS flag given */
};

struct gconn_tls;

#define BENCH_DEFAULT_TOTAL 10000 /* etcd's --total default */

struct bench_config {
	struct bench_endpoint *endpoints; /* malloc'd; bench_config_free */
	size_t endpoint_count;
	bool endpoints_given;      /* a later --endpoints adds to the list */
	unsigned conns;            /* HTTP/2 connections (capped at clients) */
	unsigned clients;          /* requests in flight at once, spread round-robin over conns */
	unsigned threads;          /* event-loop threads, connections spread round-robin over them */
	uint64_t total;            /* requests to issue; 0 when --duration rules */
	uint64_t duration_ns;      /* 0 when --total rules */
	bool target_leader;
	double rate;               /* requests/s, open loop; 0 = closed loop */
	bool json;
	bool precise;              /* more digits in the table */
	bool progress;             /* a progress line on stderr every second (default on) */
	uint64_t timeout_ns;       /* per request; DEADLINE_EXCEEDED after it */
	uint64_t dial_timeout_ns;

	enum bench_workload workload;
	unsigned key_size;
	unsigned val_size;
	uint64_t key_space;        /* keys 0 .. key_space-1 */
	bool key_space_set;        /* given on the command line (txn defaults to one key per client) */
	bool sequential_keys;
	bool serializable;         /* --consistency=s */
	double read_ratio;         /* mixed: fraction of requests that are ranges */
	const char *range_key;     /* range: KEY (points into argv) */
	const char *range_end;     /* range: END or NULL */
	uint64_t seed;             /* PRNG seed for keys and the read/write draw */
	const char *cdf_out;       /* --cdf-out: file for the latency CDF (points into argv), or NULL */
	/* TLS, as etcd's benchmark: --cacert, --cert, --key (point into argv, or NULL), --insecure-skip-tls-verify. */
	const char *ca_file, *cert_file, *key_file;
	bool insecure_skip_verify;
	struct gconn_tls *tls;     /* made by main from those when an endpoint is TLS; NULL otherwise */
};

/* Fills cfg (defaults first). 0 on success; 1 when --help was asked (usage already printed to out);
 * -1 with a message naming the flag or argument in error. */
int bench_parse_args(int argc, char **argv, struct bench_config *cfg, FILE *out, char *err, size_t errlen);
void bench_config_free(struct bench_config *cfg);
void bench_usage(FILE *out);

/* "15s", "1m30s", "500ms", "2h", "1.5s", "250us", "100ns"; a bare number is seconds. 0 or -1. */
int bench_parse_duration(const char *text, uint64_t *ns);
/* "http://host:port", "host:port", "[::1]:port". 0 or -1 with a message. */
int bench_parse_endpoint(const char *text, struct bench_endpoint *ep, char *err, size_t errlen);

/* Bytes Go's binary.PutVarint writes for x >= 0 (etcd's benchmark key encoding). */
unsigned bench_varint_length(uint64_t x);
/* Writes key index into key[0..size): Go's PutVarint(int64(index)) at the front, zeros after, as etcd's
 * benchmark does. size must be >= bench_varint_length(index). */
void bench_make_key(uint8_t *key, unsigned size, uint64_t index);

const char *bench_workload_name(enum bench_workload w);

#endif
