/* bench/quorum_bench/report.c: the results as a table (default) or one JSON object (--json). */
#include "report.h"

#include "grpc_client.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double round_to(double v, double unit)
{
	return round(v / unit) * unit;
}

static json_t *latency_json(const struct histogram *h)
{
	json_t *o = json_object();
	json_object_set_new(o, "min", json_real(round_to(h->count ? ms(h->min) : 0, 1e-4)));
	json_object_set_new(o, "mean", json_real(round_to(hist_mean(h) / 1e6, 1e-4)));
	json_object_set_new(o, "p50", json_real(round_to(ms(hist_percentile(h, 50)), 1e-4)));
	json_object_set_new(o, "p90", json_real(round_to(ms(hist_percentile(h, 90)), 1e-4)));
	json_object_set_new(o, "p99", json_real(round_to(ms(hist_percentile(h, 99)), 1e-4)));
	json_object_set_new(o, "p999", json_real(round_to(ms(hist_percentile(h, 99.9)), 1e-4)));
	json_object_set_new(o, "max", json_real(round_to(ms(h->max), 1e-4)));
	return o;
}

static const char *mode_name(const struct bench_config *cfg)
{
	return cfg->rate > 0 ? "open" : "closed";
}

static void report_json(const struct bench_config *cfg, const struct bench_endpoint *eps, size_t n,
    const struct bench_results *r, FILE *out)
{
	json_t *o = json_object();
	json_object_set_new(o, "tool", json_string("quorum-bench"));
	json_object_set_new(o, "workload", json_string(bench_workload_name(cfg->workload)));
	json_t *e = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(e, json_string(eps[i].url));
	json_object_set_new(o, "endpoints", e);
	json_object_set_new(o, "target_leader", json_boolean(cfg->target_leader));
	json_object_set_new(o, "conns", json_integer(cfg->conns));
	json_object_set_new(o, "clients", json_integer(cfg->clients));
	json_object_set_new(o, "threads", json_integer(cfg->threads));
	json_object_set_new(o, "mode", json_string(mode_name(cfg)));
	json_object_set_new(o, "rate", json_real(cfg->rate));
	json_object_set_new(o, "total", cfg->total ? json_integer((json_int_t)cfg->total) : json_null());
	json_object_set_new(o, "duration_s", cfg->duration_ns ? json_real((double)cfg->duration_ns / 1e9) : json_null());
	if (cfg->workload == BENCH_RANGE) {
		json_object_set_new(o, "range_key", json_string(cfg->range_key));
		json_object_set_new(o, "range_end", cfg->range_end ? json_string(cfg->range_end) : json_null());
	} else {
		json_object_set_new(o, "key_size", json_integer(cfg->key_size));
		json_object_set_new(o, "val_size", json_integer(cfg->val_size));
		json_object_set_new(o, "key_space", json_integer((json_int_t)cfg->key_space));
		json_object_set_new(o, "sequential_keys", json_boolean(cfg->sequential_keys));
	}
	if (cfg->workload == BENCH_RANGE || cfg->workload == BENCH_MIXED)
		json_object_set_new(o, "consistency", json_string(cfg->serializable ? "s" : "l"));
	if (cfg->workload == BENCH_MIXED)
		json_object_set_new(o, "read_ratio", json_real(cfg->read_ratio));

	json_object_set_new(o, "requests", json_integer((json_int_t)r->issued));
	json_object_set_new(o, "ok", json_integer((json_int_t)r->ok));
	json_object_set_new(o, "failed", json_integer((json_int_t)r->failed));
	json_object_set_new(o, "elapsed_s", json_real(round_to(r->elapsed_s, 1e-6)));
	double throughput = r->elapsed_s > 0 ? (double)r->ok / r->elapsed_s : 0;
	json_object_set_new(o, "throughput", json_real(round_to(throughput, 0.01)));
	json_object_set_new(o, "latency_ms", latency_json(&r->all));
	if (cfg->workload == BENCH_MIXED) {
		json_t *ops = json_object();
		for (int k = 0; k < OP_KINDS; k++) {
			if (!r->ok_by_kind[k])
				continue;
			json_t *op = json_object();
			json_object_set_new(op, "ok", json_integer((json_int_t)r->ok_by_kind[k]));
			json_object_set_new(op, "throughput",
			    json_real(round_to(r->elapsed_s > 0 ? (double)r->ok_by_kind[k] / r->elapsed_s : 0, 0.01)));
			json_object_set_new(op, "latency_ms", latency_json(&r->by_kind[k]));
			json_object_set_new(ops, op_kind_name((enum op_kind)k), op);
		}
		json_object_set_new(o, "ops", ops);
	}
	if (cfg->workload == BENCH_TXN) {
		json_t *t = json_object();
		json_object_set_new(t, "succeeded", json_integer((json_int_t)r->txn_succeeded));
		json_object_set_new(t, "failed_compare", json_integer((json_int_t)r->txn_failed));
		json_object_set_new(o, "txn", t);
	}
	json_t *errors = json_object();
	for (int c = 0; c <= BENCH_STATUS_CODES; c++)
		if (r->by_code[c])
			json_object_set_new(errors, c < BENCH_STATUS_CODES ? grpc_status_name(c) : "OTHER",
			    json_integer((json_int_t)r->by_code[c]));
	json_object_set_new(o, "errors", errors);
	json_t *details = json_array();
	for (size_t i = 0; i < r->error_kind_count; i++) {
		json_t *d = json_object();
		json_object_set_new(d, "code", json_integer(r->errors[i].code));
		json_object_set_new(d, "name", json_string(grpc_status_name(r->errors[i].code)));
		json_object_set_new(d, "message", json_string(r->errors[i].message));
		json_object_set_new(d, "count", json_integer((json_int_t)r->errors[i].count));
		json_array_append_new(details, d);
	}
	if (r->other_messages) {
		json_t *d = json_object();
		json_object_set_new(d, "message", json_string("(other messages)"));
		json_object_set_new(d, "count", json_integer((json_int_t)r->other_messages));
		json_array_append_new(details, d);
	}
	json_object_set_new(o, "error_details", details);
	json_t *cpu = json_object();
	json_object_set_new(cpu, "user_s", json_real(round_to(r->cpu_user_s, 1e-3)));
	json_object_set_new(cpu, "system_s", json_real(round_to(r->cpu_system_s, 1e-3)));
	double cpu_total = r->cpu_user_s + r->cpu_system_s;
	json_object_set_new(cpu, "percent_of_one_core",
	    json_real(round_to(r->elapsed_s > 0 ? 100 * cpu_total / r->elapsed_s : 0, 0.1)));
	json_object_set_new(cpu, "us_per_request",
	    json_real(round_to(r->issued ? cpu_total * 1e6 / (double)r->issued : 0, 0.01)));
	json_object_set_new(o, "bench_cpu", cpu);
	json_object_set_new(o, "reconnects", json_integer((json_int_t)r->reconnects));
	json_object_set_new(o, "interrupted", json_boolean(r->interrupted));
	if (r->gave_up[0])
		json_object_set_new(o, "gave_up", json_string(r->gave_up));
	json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	fputc('\n', out);
	json_decref(o);
}

static void latency_row(FILE *out, const char *label, const struct histogram *h, bool precise)
{
	const char *f = precise ? " %10.6f" : " %9.3f";
	fprintf(out, "  %-12s", label);
	fprintf(out, f, h->count ? ms(h->min) : 0.0);
	fprintf(out, f, hist_mean(h) / 1e6);
	fprintf(out, f, ms(hist_percentile(h, 50)));
	fprintf(out, f, ms(hist_percentile(h, 90)));
	fprintf(out, f, ms(hist_percentile(h, 99)));
	fprintf(out, f, ms(hist_percentile(h, 99.9)));
	fprintf(out, f, ms(h->max));
	fputc('\n', out);
}

static void report_table(const struct bench_config *cfg, const struct bench_endpoint *eps, size_t n,
    const struct bench_results *r, FILE *out)
{
	fprintf(out, "quorum-bench %s", bench_workload_name(cfg->workload));
	if (cfg->workload == BENCH_RANGE)
		fprintf(out, " %s%s%s (%s)", cfg->range_key, cfg->range_end ? " " : "", cfg->range_end ? cfg->range_end : "",
		    cfg->serializable ? "serializable" : "linearizable");
	else
		fprintf(out, ": key %u B, value %u B, key space %llu, %s keys", cfg->key_size, cfg->val_size,
		    (unsigned long long)cfg->key_space, cfg->sequential_keys ? "sequential" : "random");
	if (cfg->workload == BENCH_MIXED)
		fprintf(out, ", %.0f%% %s reads", cfg->read_ratio * 100, cfg->serializable ? "serializable" : "linearizable");
	fputc('\n', out);
	fprintf(out, "  %u client%s over %u connection%s, %u thread%s, %s loop", cfg->clients, cfg->clients == 1 ? "" : "s",
	    cfg->conns, cfg->conns == 1 ? "" : "s", cfg->threads, cfg->threads == 1 ? "" : "s", mode_name(cfg));
	if (cfg->rate > 0)
		fprintf(out, " at %g/s", cfg->rate);
	fprintf(out, "; %s", cfg->target_leader ? "leader " : "");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? "," : "", eps[i].url);
	fputc('\n', out);

	double throughput = r->elapsed_s > 0 ? (double)r->ok / r->elapsed_s : 0;
	fprintf(out, "\nSummary:\n");
	fprintf(out, "  Total:       %.4f s%s\n", r->elapsed_s, r->interrupted ? " (interrupted)" : "");
	fprintf(out, "  Requests:    %llu ok, %llu failed\n", (unsigned long long)r->ok, (unsigned long long)r->failed);
	fprintf(out, "  Throughput:  %.1f ops/s\n", throughput);
	if (cfg->workload == BENCH_TXN)
		fprintf(out, "  Txn:         %llu succeeded, %llu failed the compare (and learned the revision)\n",
		    (unsigned long long)r->txn_succeeded, (unsigned long long)r->txn_failed);
	fprintf(out, "\nLatency (ms)  %9s %9s %9s %9s %9s %9s %9s\n", "min", "mean", "p50", "p90", "p99", "p99.9", "max");
	latency_row(out, "all", &r->all, cfg->precise);
	if (cfg->workload == BENCH_MIXED)
		for (int k = 0; k < OP_KINDS; k++)
			if (r->ok_by_kind[k]) {
				char label[32];
				snprintf(label, sizeof(label), "%s (%llu)", op_kind_name((enum op_kind)k),
				    (unsigned long long)r->ok_by_kind[k]);
				latency_row(out, label, &r->by_kind[k], cfg->precise);
			}
	if (r->failed) {
		fprintf(out, "\nErrors:\n");
		for (size_t i = 0; i < r->error_kind_count; i++)
			fprintf(out, "  %8llu  %s (%d): %s\n", (unsigned long long)r->errors[i].count,
			    grpc_status_name(r->errors[i].code), r->errors[i].code, r->errors[i].message);
		if (r->other_messages)
			fprintf(out, "  %8llu  (other messages)\n", (unsigned long long)r->other_messages);
	}
	if (r->gave_up[0])
		fprintf(out, "\nGave up: %s\n", r->gave_up);
	double cpu = r->cpu_user_s + r->cpu_system_s;
	fprintf(out, "\nquorum-bench CPU: %.2f s user + %.2f s system = %.1f%% of one core, %.1f us per request\n",
	    r->cpu_user_s, r->cpu_system_s, r->elapsed_s > 0 ? 100 * cpu / r->elapsed_s : 0.0,
	    r->issued ? cpu * 1e6 / (double)r->issued : 0.0);
}

void bench_report(const struct bench_config *cfg, const struct bench_endpoint *endpoints, size_t endpoint_count,
    const struct bench_results *results, FILE *out)
{
	if (cfg->json)
		report_json(cfg, endpoints, endpoint_count, results, out);
	else
		report_table(cfg, endpoints, endpoint_count, results, out);
}
