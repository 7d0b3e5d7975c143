/* bench/quorum_bench/main.c: quorum-bench, a load generator for the etcd v3 gRPC API (README.md).
 *
 * Parse the flags (exit 2 on a bad one), answer `status` at once, otherwise find the leader if asked,
 * connect, run the workload and print the report. Exit 0 when the run happened (failed requests are
 * results, not errors), 1 when it could not start (no connection, no leader). */
#include "bench_flags.h"
#include "grpc_client.h"
#include "report.h"
#include "runner.h"
#include "status.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static void free_config(struct bench_config *cfg)
{
	gconn_tls_free(cfg->tls);
	cfg->tls = NULL;
	bench_config_free(cfg);
}

int main(int argc, char **argv)
{
	struct bench_config cfg;
	char error[1024];
	int rc = bench_parse_args(argc, argv, &cfg, stdout, error, sizeof(error));
	if (rc == 1) {
		free_config(&cfg);
		return 0;
	}
	if (rc != 0) {
		fprintf(stderr, "quorum-bench: %s\n", error);
		fprintf(stderr, "(quorum-bench --help lists the flags)\n");
		free_config(&cfg);
		return 2;
	}
	bool any_tls = false;
	for (size_t i = 0; i < cfg.endpoint_count; i++)
		any_tls = any_tls || cfg.endpoints[i].tls;
	if (any_tls) {
		/* OpenSSL writes to the socket without MSG_NOSIGNAL: a server that closes on us (one refusing our
		 * certificate) must be an error on that connection, not the end of the run. */
		signal(SIGPIPE, SIG_IGN);
		cfg.tls = gconn_tls_new(cfg.ca_file, cfg.cert_file, cfg.key_file, cfg.insecure_skip_verify, error,
		    sizeof(error));
		if (!cfg.tls) {
			fprintf(stderr, "quorum-bench: %s\n", error);
			free_config(&cfg);
			return 2;
		}
	}
	if (cfg.workload == BENCH_STATUS) {
		rc = bench_print_status(&cfg, stdout);
		free_config(&cfg);
		return rc;
	}
	const struct bench_endpoint *endpoints = cfg.endpoints;
	size_t endpoint_count = cfg.endpoint_count;
	if (cfg.target_leader) {
		size_t leader;
		if (bench_find_leader(&cfg, &leader, error, sizeof(error)) != 0) {
			fprintf(stderr, "quorum-bench: --target-leader: no endpoint is the leader (%s)\n", error);
			free_config(&cfg);
			return 1;
		}
		endpoints = &cfg.endpoints[leader];
		endpoint_count = 1;
		if (cfg.progress)
			fprintf(stderr, "quorum-bench: leader is %s\n", endpoints->url);
	}
	struct bench_results *results = malloc(sizeof(*results));
	if (!results) {
		fprintf(stderr, "quorum-bench: out of memory\n");
		return 1;
	}
	if (bench_run(&cfg, endpoints, endpoint_count, results, error, sizeof(error)) != 0) {
		fprintf(stderr, "quorum-bench: %s\n", error);
		free(results);
		free_config(&cfg);
		return 1;
	}
	bench_report(&cfg, endpoints, endpoint_count, results, stdout);
	fflush(stdout);
	rc = 0;
	if (cfg.cdf_out) {
		/* The histogram is in nanoseconds; the CDF is in milliseconds as every other latency printed. */
		FILE *f = fopen(cfg.cdf_out, "w");
		int bad = !f || hist_write_cdf(&results->all, 1e6, f) != 0;
		if ((f && fclose(f) != 0) || bad) {
			fprintf(stderr, "quorum-bench: --cdf-out %s: cannot write it\n", cfg.cdf_out);
			rc = 1;
		}
	}
	free(results);
	free_config(&cfg);
	return rc;
}
