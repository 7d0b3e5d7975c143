/* bench/quorum_bench/bench_flags.c: the command-line parser (see bench_flags.h for the form).
 *
 * One table lists every flag: its names, where it may appear (global, or after which workloads), its
 * type and where its value goes. Parsing walks argv once; checks that span flags (--total against
 * --duration, KEY for range, the key size against the key space) run after. */
#include "bench_flags.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Where a flag may appear. */
#define AT_GLOBAL 0x01u
#define AT_PUT    0x02u
#define AT_RANGE  0x04u
#define AT_TXN    0x08u
#define AT_MIXED  0x10u
#define AT_STATUS 0x20u
#define AT_ANY    0x3fu

enum flag_type {
	FLAG_UINT,        /* unsigned, within [min, max] */
	FLAG_U64,
	FLAG_DOUBLE,      /* >= 0 */
	FLAG_BOOL,
	FLAG_DURATION,
	FLAG_ENDPOINTS,
	FLAG_CONSISTENCY, /* l | s */
	FLAG_READ_RATIO,  /* 0..1 */
	FLAG_RW_RATIO,    /* etcd's reads/writes, >= 0 */
	FLAG_OUTPUT,      /* etcd's --output: json (or "simple"/"" for the table) */
	FLAG_PATH,        /* a non-empty file name, kept as a pointer into argv */
	FLAG_IGNORED,     /* accepted for etcd's command lines, does nothing here (value taken if =) */
	FLAG_UNSUPPORTED, /* etcd has it; we refuse with a message (TLS, auth) */
};

struct flag_def {
	const char *name;
	enum flag_type type;
	unsigned where;
	size_t offset;     /* into struct bench_config */
	uint64_t min, max; /* FLAG_UINT / FLAG_U64 */
};

#define OFF(field) offsetof(struct bench_config, field)

static const struct flag_def flags[] = {
	{"endpoints", FLAG_ENDPOINTS, AT_ANY, 0, 0, 0},
	{"conns", FLAG_UINT, AT_ANY, OFF(conns), 1, 100000},
	{"clients", FLAG_UINT, AT_ANY, OFF(clients), 1, 1000000},
	{"threads", FLAG_UINT, AT_ANY, OFF(threads), 1, 64},
	{"total", FLAG_U64, AT_ANY, OFF(total), 1, UINT64_MAX / 2},
	{"duration", FLAG_DURATION, AT_ANY, OFF(duration_ns), 0, 0},
	{"target-leader", FLAG_BOOL, AT_ANY, OFF(target_leader), 0, 0},
	{"rate", FLAG_DOUBLE, AT_ANY, OFF(rate), 0, 0},
	{"json", FLAG_BOOL, AT_ANY, OFF(json), 0, 0},
	{"output", FLAG_OUTPUT, AT_ANY, OFF(json), 0, 0},
	{"precise", FLAG_BOOL, AT_ANY, OFF(precise), 0, 0},
	{"progress", FLAG_BOOL, AT_ANY, OFF(progress), 0, 0},
	{"timeout", FLAG_DURATION, AT_ANY, OFF(timeout_ns), 0, 0},
	{"dial-timeout", FLAG_DURATION, AT_ANY, OFF(dial_timeout_ns), 0, 0},
	{"seed", FLAG_U64, AT_ANY, OFF(seed), 0, UINT64_MAX},
	{"cdf-out", FLAG_PATH, AT_ANY, OFF(cdf_out), 0, 0},
	{"sample", FLAG_IGNORED, AT_ANY, 0, 0, 0},
	{"cert", FLAG_PATH, AT_ANY, OFF(cert_file), 0, 0},
	{"key", FLAG_PATH, AT_ANY, OFF(key_file), 0, 0},
	{"cacert", FLAG_PATH, AT_ANY, OFF(ca_file), 0, 0},
	{"insecure-skip-tls-verify", FLAG_BOOL, AT_ANY, OFF(insecure_skip_verify), 0, 0},
	{"user", FLAG_UNSUPPORTED, AT_ANY, 0, 0, 0},
	{"key-size", FLAG_UINT, AT_PUT | AT_TXN | AT_MIXED, OFF(key_size), 1, 1u << 20},
	{"val-size", FLAG_UINT, AT_PUT | AT_TXN | AT_MIXED, OFF(val_size), 0, 64u << 20},
	{"key-space-size", FLAG_U64, AT_PUT | AT_TXN | AT_MIXED, OFF(key_space), 1, UINT64_MAX / 4},
	{"key-space", FLAG_U64, AT_PUT | AT_TXN | AT_MIXED, OFF(key_space), 1, UINT64_MAX / 4},
	{"sequential-keys", FLAG_BOOL, AT_PUT | AT_TXN | AT_MIXED, OFF(sequential_keys), 0, 0},
	{"consistency", FLAG_CONSISTENCY, AT_RANGE | AT_MIXED, OFF(serializable), 0, 0},
	{"read-ratio", FLAG_READ_RATIO, AT_MIXED, OFF(read_ratio), 0, 0},
	{"rw-ratio", FLAG_RW_RATIO, AT_MIXED, OFF(read_ratio), 0, 0},
	{"compact-interval", FLAG_UNSUPPORTED, AT_PUT, 0, 0, 0},
	{"check-hashkv", FLAG_UNSUPPORTED, AT_PUT, 0, 0, 0},
};

static const struct {
	const char *name;
	enum bench_workload workload;
	unsigned where;
} workloads[] = {
	{"put", BENCH_PUT, AT_PUT},
	{"range", BENCH_RANGE, AT_RANGE},
	{"txn", BENCH_TXN, AT_TXN},
	{"mixed", BENCH_MIXED, AT_MIXED},
	{"status", BENCH_STATUS, AT_STATUS},
};

const char *bench_workload_name(enum bench_workload w)
{
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
		if (workloads[i].workload == w)
			return workloads[i].name;
	return "none";
}

void bench_usage(FILE *out)
{
	fputs(
	    "usage: quorum-bench [global flags] WORKLOAD [ARGS] [workload flags]\n"
	    "\n"
	    "Load generator for the etcd v3 gRPC API (HTTP/2, cleartext or TLS): measures etcd and quorumd alike.\n"
	    "\n"
	    "global flags (also accepted after the workload):\n"
	    "  --endpoints=URL,URL   gRPC endpoints, http://host:port, https://host:port (TLS) or host:port\n"
	    "                        (127.0.0.1:2379)\n"
	    "  --cacert=FILE         TLS: the CAs of the servers' certificates (the system's without it)\n"
	    "  --cert=FILE --key=FILE  TLS: a client certificate and its key\n"
	    "  --insecure-skip-tls-verify  TLS: the servers' certificates are not checked\n"
	    "                        (any of these four makes every endpoint TLS, as etcd's clients do)\n"
	    "  --conns=N             HTTP/2 connections (1); client i uses connection i mod N,\n"
	    "                        connection j endpoint j mod (number of endpoints)\n"
	    "  --clients=N           requests in flight at once, as streams over the connections (1)\n"
	    "  --total=N             requests to issue (10000)\n"
	    "  --duration=D          or: issue for D (15s, 1m, 500ms), then let the in-flight ones finish\n"
	    "  --rate=R              open loop: R requests/s on a fixed schedule, latency measured from each\n"
	    "                        request's intended send time (no coordinated omission); 0 = closed loop\n"
	    "  --target-leader       send only to the leader (found with Maintenance.Status on each endpoint)\n"
	    "  --json, --output=json one JSON object on stdout instead of the table\n"
	    "  --threads=N           event-loop threads (1); connections are spread over them\n"
	    "  --timeout=D           per-request deadline, then DEADLINE_EXCEEDED (30s)\n"
	    "  --dial-timeout=D      connect timeout (5s)\n"
	    "  --progress=false      no progress line on stderr\n"
	    "  --precise             more digits in the table\n"
	    "  --seed=N              PRNG seed for keys and read/write draws (1)\n"
	    "  --cdf-out=FILE        also write the latency CDF of the successful requests to FILE:\n"
	    "                        \"latency_ms fraction\" lines, one per histogram bucket (for gnuplot)\n"
	    "\n"
	    "workloads:\n"
	    "  put    --key-size=8 --val-size=8 --key-space-size=1 (or --key-space) --sequential-keys\n"
	    "  range KEY [END]  --consistency=l|s   (as etcd's benchmark: END empty = the one key)\n"
	    "  txn    compare-and-swap: If(mod_revision(k) == last seen) Then(put k) Else(get k);\n"
	    "         --key-size --val-size --key-space-size (default: one key per client) --sequential-keys\n"
	    "  mixed  ranges of one key and puts: --read-ratio=0.5 (or etcd's --rw-ratio=R, reads/writes)\n"
	    "         --consistency=l|s --key-size --val-size --key-space-size --sequential-keys\n"
	    "  status Maintenance.Status of every endpoint (no load); exit 1 if one does not answer\n"
	    "\n"
	    "Keys are etcd's benchmark keys: the key index as a Go varint, zero-padded to --key-size bytes;\n"
	    "random in [0, key space) or, with --sequential-keys, request number mod key space.\n"
	    "Bad flags exit 2; connection failures at start exit 1.\n",
	    out);
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

unsigned bench_varint_length(uint64_t x)
{
	uint64_t ux = x << 1; /* zig-zag of a non-negative int64 */
	unsigned n = 1;
	while (ux >= 0x80) {
		ux >>= 7;
		n++;
	}
	return n;
}

void bench_make_key(uint8_t *key, unsigned size, uint64_t index)
{
	memset(key, 0, size);
	uint64_t ux = index << 1;
	unsigned i = 0;
	while (ux >= 0x80 && i < size) {
		key[i++] = (uint8_t)(ux | 0x80);
		ux >>= 7;
	}
	if (i < size)
		key[i] = (uint8_t)ux;
}

int bench_parse_duration(const char *text, uint64_t *ns)
{
	const char *p = text;
	double total = 0;
	if (*p == '\0')
		return -1;
	while (*p) {
		char *end;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno || v < 0 || !isfinite(v))
			return -1;
		p = end;
		double unit;
		if (*p == '\0') {
			if (p != text + strlen(text) || total != 0) /* "1m30" is ambiguous */
				return -1;
			unit = 1e9; /* a bare number: seconds */
		} else if (strncmp(p, "ns", 2) == 0) {
			unit = 1, p += 2;
		} else if (strncmp(p, "us", 2) == 0) {
			unit = 1e3, p += 2;
		} else if (strncmp(p, "ms", 2) == 0) {
			unit = 1e6, p += 2;
		} else if (*p == 's') {
			unit = 1e9, p += 1;
		} else if (*p == 'm') {
			unit = 60e9, p += 1;
		} else if (*p == 'h') {
			unit = 3600e9, p += 1;
		} else {
			return -1;
		}
		total += v * unit;
	}
	if (total > 1e18)
		return -1;
	*ns = (uint64_t)llround(total);
	return 0;
}

int bench_parse_endpoint(const char *text, struct bench_endpoint *ep, char *err, size_t errlen)
{
	memset(ep, 0, sizeof(*ep));
	snprintf(ep->url, sizeof(ep->url), "%s", text);
	const char *p = text;
	if (strncmp(p, "https://", 8) == 0) {
		ep->tls = true;
		p += 8;
	} else if (strncmp(p, "http://", 7) == 0) {
		p += 7;
	} else if (strstr(p, "://")) {
		return fail(err, errlen, "--endpoints: %s: only http:// and https:// endpoints are supported", text);
	}
	const char *host = p, *host_end, *colon;
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(host, ']');
		if (!host_end || host_end[1] != ':')
			return fail(err, errlen, "--endpoints: %s: expected [IPv6]:PORT", text);
		colon = host_end + 1;
	} else {
		colon = strrchr(p, ':');
		if (!colon)
			return fail(err, errlen, "--endpoints: %s: no port (expected host:port)", text);
		host_end = colon;
	}
	size_t host_len = (size_t)(host_end - host);
	if (host_len == 0 || host_len >= sizeof(ep->host))
		return fail(err, errlen, "--endpoints: %s: bad host", text);
	const char *port = colon + 1;
	size_t port_len = strcspn(port, "/");
	if (port[port_len] == '/' && port[port_len + 1] != '\0')
		return fail(err, errlen, "--endpoints: %s: a path is not expected", text);
	char *end;
	unsigned long n = strtoul(port, &end, 10);
	if (port_len == 0 || port_len > 5 || end != port + port_len || n == 0 || n > 65535)
		return fail(err, errlen, "--endpoints: %s: bad port", text);
	memcpy(ep->host, host, host_len);
	snprintf(ep->port, sizeof(ep->port), "%lu", n);
	return 0;
}

static int parse_endpoints(struct bench_config *cfg, const char *value, char *err, size_t errlen)
{
	size_t count = 1;
	for (const char *p = value; *p; p++)
		count += *p == ',';
	struct bench_endpoint *eps = calloc(count, sizeof(*eps));
	if (!eps)
		return fail(err, errlen, "out of memory");
	size_t n = 0;
	const char *p = value;
	while (1) {
		size_t len = strcspn(p, ",");
		char item[512];
		while (len && isspace((unsigned char)*p))
			p++, len--;
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		if (len == 0 || len >= sizeof(item)) {
			free(eps);
			return fail(err, errlen, "--endpoints: empty or overlong entry in \"%s\"", value);
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (bench_parse_endpoint(item, &eps[n], err, errlen) != 0) {
			free(eps);
			return -1;
		}
		n++;
		p += strcspn(p, ",");
		if (*p != ',')
			break;
		p++;
	}
	if (!cfg->endpoints_given) {
		/* The first --endpoints replaces the default; more of them add to it (cobra's StringSlice). */
		free(cfg->endpoints);
		cfg->endpoints = eps;
		cfg->endpoint_count = n;
		cfg->endpoints_given = true;
		return 0;
	}
	struct bench_endpoint *all = realloc(cfg->endpoints, (cfg->endpoint_count + n) * sizeof(*all));
	if (!all) {
		free(eps);
		return fail(err, errlen, "out of memory");
	}
	memcpy(all + cfg->endpoint_count, eps, n * sizeof(*eps));
	free(eps);
	cfg->endpoints = all;
	cfg->endpoint_count += n;
	return 0;
}

static int parse_bool(const char *value, bool *out)
{
	if (!value || !strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "t") ||
	    !strcmp(value, "TRUE") || !strcmp(value, "True"))
		*out = true;
	else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "f") ||
	         !strcmp(value, "FALSE") || !strcmp(value, "False"))
		*out = false;
	else
		return -1;
	return 0;
}

static int parse_u64(const char *value, uint64_t *out)
{
	if (!*value || *value == '-' || *value == '+' || isspace((unsigned char)*value))
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(value, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static int parse_double(const char *value, double *out)
{
	if (!*value || isspace((unsigned char)*value))
		return -1;
	char *end;
	errno = 0;
	double v = strtod(value, &end);
	if (errno || *end || !isfinite(v) || v < 0)
		return -1;
	*out = v;
	return 0;
}

static const struct flag_def *find_flag(const char *name, size_t name_len)
{
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strlen(flags[i].name) == name_len && !strncmp(flags[i].name, name, name_len))
			return &flags[i];
	return NULL;
}

static void set_defaults(struct bench_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->conns = 1;
	cfg->clients = 1;
	cfg->threads = 1;
	cfg->progress = true;
	cfg->timeout_ns = 30ull * 1000000000;
	cfg->dial_timeout_ns = 5ull * 1000000000;
	cfg->key_size = 8;
	cfg->val_size = 8;
	cfg->key_space = 1;
	cfg->read_ratio = 0.5;
	cfg->seed = 1;
}

void bench_config_free(struct bench_config *cfg)
{
	free(cfg->endpoints);
	cfg->endpoints = NULL;
	cfg->endpoint_count = 0;
}

/* Applies one flag; value is NULL for a bare boolean. */
static int apply_flag(struct bench_config *cfg, const struct flag_def *f, const char *value, char *err,
    size_t errlen, bool *total_set, bool *duration_set)
{
	char *base = (char *)cfg;
	switch (f->type) {
	case FLAG_UINT: {
		uint64_t v;
		if (parse_u64(value, &v) || v < f->min || v > f->max)
			return fail(err, errlen, "--%s: expected an integer from %llu to %llu, got \"%s\"", f->name,
			    (unsigned long long)f->min, (unsigned long long)f->max, value);
		*(unsigned *)(base + f->offset) = (unsigned)v;
		break;
	}
	case FLAG_U64: {
		uint64_t v;
		if (parse_u64(value, &v) || v < f->min || v > f->max)
			return fail(err, errlen, "--%s: expected an integer from %llu, got \"%s\"", f->name,
			    (unsigned long long)f->min, value);
		*(uint64_t *)(base + f->offset) = v;
		if (!strcmp(f->name, "total"))
			*total_set = true;
		if (!strncmp(f->name, "key-space", 9))
			cfg->key_space_set = true;
		break;
	}
	case FLAG_DOUBLE: {
		double v;
		if (parse_double(value, &v))
			return fail(err, errlen, "--%s: expected a number >= 0, got \"%s\"", f->name, value);
		*(double *)(base + f->offset) = v;
		break;
	}
	case FLAG_BOOL: {
		bool v;
		if (parse_bool(value, &v))
			return fail(err, errlen, "--%s: expected true or false, got \"%s\"", f->name, value);
		*(bool *)(base + f->offset) = v;
		break;
	}
	case FLAG_DURATION: {
		uint64_t v;
		if (bench_parse_duration(value, &v) || v == 0)
			return fail(err, errlen, "--%s: expected a positive duration such as 15s, 1m or 500ms, got \"%s\"",
			    f->name, value);
		*(uint64_t *)(base + f->offset) = v;
		if (!strcmp(f->name, "duration"))
			*duration_set = true;
		break;
	}
	case FLAG_ENDPOINTS:
		return parse_endpoints(cfg, value, err, errlen);
	case FLAG_CONSISTENCY:
		if (!strcmp(value, "l") || !strcmp(value, "linearizable"))
			cfg->serializable = false;
		else if (!strcmp(value, "s") || !strcmp(value, "serializable"))
			cfg->serializable = true;
		else
			return fail(err, errlen, "--consistency: expected l (linearizable) or s (serializable), got \"%s\"",
			    value);
		break;
	case FLAG_READ_RATIO: {
		double v;
		if (parse_double(value, &v) || v > 1)
			return fail(err, errlen, "--read-ratio: expected a fraction from 0 to 1, got \"%s\"", value);
		cfg->read_ratio = v;
		break;
	}
	case FLAG_RW_RATIO: {
		double v;
		if (parse_double(value, &v))
			return fail(err, errlen, "--rw-ratio: expected reads per write (a number >= 0), got \"%s\"", value);
		cfg->read_ratio = v / (1 + v);
		break;
	}
	case FLAG_OUTPUT:
		if (!strcmp(value, "json"))
			cfg->json = true;
		else if (!strcmp(value, "") || !strcmp(value, "simple") || !strcmp(value, "table"))
			cfg->json = false;
		else
			return fail(err, errlen, "--output: expected json, got \"%s\"", value);
		break;
	case FLAG_PATH:
		if (!*value)
			return fail(err, errlen, "--%s: expected a file name", f->name);
		*(const char **)(base + f->offset) = value;
		break;
	case FLAG_IGNORED:
		break;
	case FLAG_UNSUPPORTED:
		return fail(err, errlen, "--%s: not supported by quorum-bench (no auth, no compaction)",
		    f->name);
	}
	return 0;
}

static bool takes_bare(const struct flag_def *f)
{
	return f->type == FLAG_BOOL || f->type == FLAG_IGNORED;
}

int bench_parse_args(int argc, char **argv, struct bench_config *cfg, FILE *out, char *err, size_t errlen)
{
	set_defaults(cfg);
	struct bench_endpoint def;
	if (bench_parse_endpoint("127.0.0.1:2379", &def, err, errlen) != 0)
		return -1;
	cfg->endpoints = malloc(sizeof(def));
	if (!cfg->endpoints)
		return fail(err, errlen, "out of memory");
	cfg->endpoints[0] = def;
	cfg->endpoint_count = 1;

	bool total_set = false, duration_set = false, rate_given = false;
	unsigned where = AT_GLOBAL;
	const char *positional[4];
	size_t positional_count = 0;
	bool flags_done = false;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!flags_done && (!strcmp(arg, "-h") || !strcmp(arg, "--help"))) {
			bench_usage(out);
			return 1;
		}
		if (!flags_done && !strcmp(arg, "--")) {
			flags_done = true;
			continue;
		}
		if (!flags_done && arg[0] == '-' && arg[1] != '\0') {
			if (arg[1] != '-')
				return fail(err, errlen, "%s: unknown flag (flags are spelled --name)", arg);
			const char *name = arg + 2;
			const char *eq = strchr(name, '=');
			size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
			const struct flag_def *f = find_flag(name, name_len);
			if (!f)
				return fail(err, errlen, "--%.*s: unknown flag%s", (int)name_len, name,
				    cfg->workload == BENCH_NONE ? "" : " for this workload");
			if (!(f->where & where) && !(f->where & AT_GLOBAL)) {
				if (cfg->workload == BENCH_NONE)
					return fail(err, errlen, "--%s: a workload flag, give it after the workload name", f->name);
				return fail(err, errlen, "--%s: not a flag of the %s workload", f->name,
				    bench_workload_name(cfg->workload));
			}
			const char *value = eq ? eq + 1 : NULL;
			if (!value && !takes_bare(f)) {
				if (i + 1 >= argc)
					return fail(err, errlen, "--%s: needs a value", f->name);
				value = argv[++i];
			}
			if (!strcmp(f->name, "rate"))
				rate_given = true;
			if (apply_flag(cfg, f, value, err, errlen, &total_set, &duration_set) != 0)
				return -1;
			continue;
		}
		if (cfg->workload == BENCH_NONE) {
			for (size_t w = 0; w < sizeof(workloads) / sizeof(workloads[0]); w++)
				if (!strcmp(arg, workloads[w].name)) {
					cfg->workload = workloads[w].workload;
					where = workloads[w].where;
				}
			if (cfg->workload == BENCH_NONE)
				return fail(err, errlen, "%s: unknown workload (expected put, range, txn, mixed or status)", arg);
			continue;
		}
		if (positional_count == sizeof(positional) / sizeof(positional[0]))
			return fail(err, errlen, "%s: too many arguments", arg);
		positional[positional_count++] = arg;
	}

	if (cfg->workload == BENCH_NONE)
		return fail(err, errlen, "no workload given (expected put, range, txn, mixed or status; --help lists them)");
	if (cfg->workload == BENCH_RANGE) {
		if (positional_count == 0)
			return fail(err, errlen, "range: needs KEY (usage: range KEY [END] --consistency=l|s)");
		if (positional_count > 2)
			return fail(err, errlen, "range: %s: too many arguments (usage: range KEY [END])", positional[2]);
		cfg->range_key = positional[0];
		cfg->range_end = positional_count == 2 ? positional[1] : NULL;
	} else if (positional_count > 0) {
		return fail(err, errlen, "%s: unexpected argument to %s", positional[0], bench_workload_name(cfg->workload));
	}
	if (total_set && duration_set)
		return fail(err, errlen, "--total and --duration: give one or the other");
	if (!duration_set && !total_set)
		cfg->total = BENCH_DEFAULT_TOTAL;
	if (duration_set)
		cfg->total = 0;
	else
		cfg->duration_ns = 0;
	if (rate_given && cfg->rate > 0 && cfg->rate < 0.001)
		return fail(err, errlen, "--rate: %g requests/s is too slow (0 means closed loop)", cfg->rate);
	if ((cfg->cert_file != NULL) != (cfg->key_file != NULL))
		return fail(err, errlen, "--cert and --key: give both or neither");
	if (cfg->ca_file || cfg->cert_file || cfg->insecure_skip_verify)
		for (size_t i = 0; i < cfg->endpoint_count; i++)
			cfg->endpoints[i].tls = true; /* etcd's clients: TLS settings make every endpoint TLS */
	if (cfg->conns > cfg->clients)
		cfg->conns = cfg->clients; /* etcd's benchmark would leave the extra connections idle */
	if (cfg->threads > cfg->conns)
		cfg->threads = cfg->conns;
	if (cfg->workload == BENCH_TXN && !cfg->key_space_set)
		cfg->key_space = cfg->clients;
	if (cfg->workload == BENCH_PUT || cfg->workload == BENCH_TXN || cfg->workload == BENCH_MIXED) {
		unsigned need = bench_varint_length(cfg->key_space - 1);
		if (cfg->key_size < need)
			return fail(err, errlen,
			    "--key-size: %u bytes cannot hold %llu distinct keys (at least %u needed for --key-space-size)",
			    cfg->key_size, (unsigned long long)cfg->key_space, need);
	}
	return 0;
}
