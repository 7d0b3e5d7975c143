/* control/config/flags.c: one table of flags; parsing as Go's flag package does it for etcd (`--flag=value`,
 * `--flag value`, `-flag`, bare booleans), then ETCD_* variables for flags not given. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "flags.h"

enum flag_kind { FLAG_STRING, FLAG_UINT, FLAG_INT, FLAG_BOOL, FLAG_CLUSTER_STATE, FLAG_DURATION_MS };

struct flag_spec {
	const char *name;
	enum flag_kind kind;
	size_t offset;
	const char *default_value; /* NULL: no default */
	const char *help;
};

#define FIELD(member) offsetof(struct node_flags, member)

static const struct flag_spec flag_specs[] = {
	{"name", FLAG_STRING, FIELD(name), "default", "Human-readable name for this member."},
	{"data-dir", FLAG_STRING, FIELD(data_dir), NULL, "Path to the data directory (default: ${name}.etcd)."},
	{"wal-dir", FLAG_STRING, FIELD(wal_dir), "", "Path to the dedicated WAL directory (default: inside data-dir)."},
	{"initial-cluster", FLAG_STRING, FIELD(initial_cluster), "default=http://localhost:2380",
	 "Initial cluster configuration for bootstrapping: NAME=PEER_URL,..."},
	{"initial-cluster-state", FLAG_CLUSTER_STATE, FIELD(initial_cluster_state), "new",
	 "Initial cluster state ('new' or 'existing')."},
	{"initial-cluster-token", FLAG_STRING, FIELD(initial_cluster_token), "etcd-cluster",
	 "Initial cluster token for the cluster during bootstrap."},
	{"listen-peer-urls", FLAG_STRING, FIELD(listen_peer_urls), "http://localhost:2380",
	 "List of URLs to listen on for peer traffic."},
	{"initial-advertise-peer-urls", FLAG_STRING, FIELD(initial_advertise_peer_urls), "http://localhost:2380",
	 "List of this member's peer URLs to advertise to the rest of the cluster."},
	{"listen-client-urls", FLAG_STRING, FIELD(listen_client_urls), "http://localhost:2379",
	 "List of URLs to listen on for client traffic."},
	{"advertise-client-urls", FLAG_STRING, FIELD(advertise_client_urls), "http://localhost:2379",
	 "List of this member's client URLs to advertise to the public."},
	{"listen-metrics-urls", FLAG_STRING, FIELD(listen_metrics_urls), "",
	 "List of additional URLs to listen on that answer /metrics and /health (http:// or https://, the latter "
	 "with the client certificate)."},
	{"cert-file", FLAG_STRING, FIELD(cert_file), "", "Path to the client server TLS cert file."},
	{"key-file", FLAG_STRING, FIELD(key_file), "", "Path to the client server TLS key file."},
	{"client-cert-auth", FLAG_BOOL, FIELD(client_cert_auth), "false", "Enable client cert authentication."},
	{"trusted-ca-file", FLAG_STRING, FIELD(trusted_ca_file), "", "Path to the client server TLS trusted CA cert file."},
	{"client-crl-file", FLAG_STRING, FIELD(client_crl_file), "",
	 "Path to the client certificate revocation list file."},
	{"client-cert-allowed-hostname", FLAG_STRING, FIELD(client_cert_allowed_hostname), "",
	 "Allowed TLS hostname for client cert authentication."},
	{"auto-tls", FLAG_BOOL, FIELD(auto_tls), "false", "Client TLS using generated certificates"},
	{"cipher-suites", FLAG_STRING, FIELD(cipher_suites), "",
	 "Comma-separated list of supported TLS cipher suites between client/server (etcd's Go names; empty: Go's "
	 "defaults)."},
	{"max-request-bytes", FLAG_UINT, FIELD(max_request_bytes), "1572864",
	 "Maximum client request size in bytes the server will accept."},
	{"max-concurrent-streams", FLAG_UINT, FIELD(max_concurrent_streams), "4294967295",
	 "Maximum concurrent streams that each client can open at a time."},
	{"client-threads", FLAG_UINT, FIELD(client_threads), "1",
	 "Threads serving the client URLs (each its own connections; at most 15)."},
	{"heartbeat-interval", FLAG_UINT, FIELD(heartbeat_interval_ms), "100",
	 "Time (in milliseconds) of a heartbeat interval."},
	{"election-timeout", FLAG_UINT, FIELD(election_timeout_ms), "1000",
	 "Time (in milliseconds) for an election to timeout."},
	{"snapshot-count", FLAG_UINT, FIELD(snapshot_count), "100000",
	 "Number of committed transactions to trigger a snapshot to disk (client requests applied; 0: never)."},
	{"snapshot-catchup-entries", FLAG_UINT, FIELD(snapshot_catchup_entries), "5000",
	 "Number of entries for a slow follower to catch up after compacting the raft storage entries (etcd 3.5; "
	 "counted in client requests)."},
	{"max-snapshots", FLAG_UINT, FIELD(max_snapshots), "5", "Maximum number of snapshot files to retain (0 is unlimited)."},
	{"max-wals", FLAG_UINT, FIELD(max_wals), "5", "Maximum number of wal files to retain (0 is unlimited)."},
	{"auto-compaction-mode", FLAG_STRING, FIELD(auto_compaction_mode), "periodic",
	 "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, "
	 "defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention."},
	{"auto-compaction-retention", FLAG_STRING, FIELD(auto_compaction_retention), "0",
	 "Auto compaction retention for mvcc key value store. 0 means disable auto compaction."},
	{"quota-backend-bytes", FLAG_INT, FIELD(quota_backend_bytes), "0",
	 "Raise alarms when backend size exceeds the given quota. 0 means use the default quota (2 GiB); a negative "
	 "value disables the quota."},
	{"strict-reconfig-check", FLAG_BOOL, FIELD(strict_reconfig_check), "true",
	 "Reject reconfiguration requests that would cause quorum loss."},
	{"force-new-cluster", FLAG_BOOL, FIELD(force_new_cluster), "false",
	 "Force to create a new one member cluster from this member's data."},
	{"dataplane", FLAG_STRING, FIELD(dataplane), "udp", "Peer transport: 'udp' (kernel sockets) or 'dpdk'."},
	{"dpdk-args", FLAG_STRING, FIELD(dpdk_args), "", "DPDK EAL arguments for --dataplane=dpdk."},
	{"dataplane-idle", FLAG_STRING, FIELD(dataplane_idle), "adaptive",
	 "DPDK lcore when idle: 'adaptive' (busy-poll under traffic, pause and short sleeps when idle) or 'poll' "
	 "(always spin, for bare metal)."},
	{"dpdk-neighbors", FLAG_STRING, FIELD(dpdk_neighbors), "",
	 "Static ARP entries for --dataplane=dpdk: IP=MAC,... (other peers are resolved with ARP)."},
	{"control-socket", FLAG_STRING, FIELD(control_socket), NULL,
	 "Path of the operator control socket (default: DATA_DIR/control.sock)."},
	{"logger", FLAG_STRING, FIELD(logger), "zap", "Logger: 'zap' (JSON lines, as etcd's zap logger)."},
	{"log-outputs", FLAG_STRING, FIELD(log_outputs), "default",
	 "Where logs go: 'default' (stderr), 'stderr', 'stdout' or file paths, comma-separated."},
	{"log-level", FLAG_STRING, FIELD(log_level), "info", "Log level: debug, info, warn or error."},
	{"enable-pprof", FLAG_BOOL, FIELD(enable_pprof), "false",
	 "Serve /debug/vars (the node's counters as JSON) and /debug/pprof/ (how to profile a C node: perf) on the "
	 "client URLs."},
	{"peer-cert-file", FLAG_STRING, FIELD(peer_cert_file), "", "Path to the peer server TLS cert file."},
	{"peer-key-file", FLAG_STRING, FIELD(peer_key_file), "", "Path to the peer server TLS key file."},
	{"peer-client-cert-auth", FLAG_BOOL, FIELD(peer_client_cert_auth), "false", "Enable peer client cert authentication."},
	{"peer-trusted-ca-file", FLAG_STRING, FIELD(peer_trusted_ca_file), "", "Path to the peer server TLS trusted CA file."},
	{"peer-cert-allowed-cn", FLAG_STRING, FIELD(peer_cert_allowed_cn), "", "Allowed CN for inter peer authentication."},
	{"peer-cert-allowed-hostname", FLAG_STRING, FIELD(peer_cert_allowed_hostname), "",
	 "Allowed TLS hostname for inter peer authentication."},
	{"peer-crl-file", FLAG_STRING, FIELD(peer_crl_file), "", "Path to the peer certificate revocation list file."},
	{"peer-auto-tls", FLAG_BOOL, FIELD(peer_auto_tls), "false", "Peer TLS using generated certificates"},
	{"peer-frame-key-file", FLAG_STRING, FIELD(peer_frame_key_file), "",
	 "File whose bytes key a MAC on every peer frame, the same file on every member (quorumd's own, lighter than "
	 "peer TLS: authenticated, not encrypted). Without it or peer TLS, peers are unauthenticated."},
	{"auth-token", FLAG_STRING, FIELD(auth_token), "simple",
	 "Auth token type and its options: 'simple' (random tokens known to the members, forgotten after "
	 "--auth-token-ttl unused) or 'jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256|ES256|...[,ttl=5m]'."},
	{"auth-token-ttl", FLAG_UINT, FIELD(auth_token_ttl), "300", "The lifetime in seconds of the auth token."},
	{"bcrypt-cost", FLAG_UINT, FIELD(bcrypt_cost), "10",
	 "Bcrypt's cost factor for hashing auth passwords (4 to 31; other values give 10)."},
	{"discovery-srv", FLAG_STRING, FIELD(discovery_srv), "",
	 "DNS domain whose SRV records (_etcd-server-ssl._tcp.DOMAIN and _etcd-server._tcp.DOMAIN) list the initial "
	 "members, for bootstrapping a new cluster."},
	{"discovery-srv-name", FLAG_STRING, FIELD(discovery_srv_name), "",
	 "Suffix to the DNS SRV service name queried when using --discovery-srv (_etcd-server-SUFFIX._tcp)."},
	{"discovery-endpoints", FLAG_STRING, FIELD(discovery_endpoints), "",
	 "Client URLs of an etcd-compatible cluster used for v3 discovery (as etcd 3.6), comma-separated."},
	{"discovery-token", FLAG_STRING, FIELD(discovery_token), "",
	 "Token naming this cluster's registration in v3 discovery (/_etcd/registry/TOKEN/); it is also the "
	 "cluster token."},
	{"discovery-cluster-size", FLAG_UINT, FIELD(discovery_cluster_size), "0",
	 "v3 discovery: the expected size; written to /_etcd/registry/TOKEN/_config/size when that key is absent, "
	 "and checked against it when present (quorumd's own; 0: read the key as etcd does)."},
	{"experimental-watch-progress-notify-interval", FLAG_DURATION_MS, FIELD(watch_progress_notify_interval_ms),
	 "10m", "Duration of periodical watch progress notification."},
	{"help", FLAG_BOOL, FIELD(help), "false", "Show this help and exit."},
	{"version", FLAG_BOOL, FIELD(version), "false", "Print the version and exit."},
};

enum { FLAG_COUNT = sizeof(flag_specs) / sizeof(flag_specs[0]) };

/* etcd's v2 discovery (a discovery.etcd.io-style URL) and the v3 discovery client's TLS, auth and timeout
 * knobs are not here: their flags stop quorumd with a message saying so, rather than "not defined", so an
 * operator knows the flag is meant and what to do instead. */
static const char *const v2_discovery_flags[] = {"discovery", "discovery-fallback", "discovery-proxy"};
static const char *const not_yet_flags[] = {
	"discovery-dial-timeout", "discovery-request-timeout", "discovery-keepalive-time", "discovery-keepalive-timeout",
	"discovery-insecure-transport", "discovery-insecure-skip-tls-verify", "discovery-cert", "discovery-key",
	"discovery-cacert", "discovery-user", "discovery-password",
};

/* etcd 3.4's other flags (`etcd --help`) that quorumd does not implement: named as etcd's in the error. */
static const char *const etcd_only_flags[] = {
	"initial-election-tick-advance", "backend-batch-interval",
	"backend-batch-limit", "max-txn-ops", "grpc-keepalive-min-time",
	"grpc-keepalive-interval", "grpc-keepalive-timeout", "pre-vote", "enable-v2", "cors", "host-whitelist",
	"metrics", "proxy", "proxy-failure-wait", "proxy-refresh-interval", "proxy-dial-timeout",
	"proxy-write-timeout", "proxy-read-timeout", "experimental-initial-corrupt-check",
	"experimental-corrupt-check-time", "experimental-enable-v2v3", "experimental-backend-bbolt-freelist-type",
	"experimental-enable-lease-checkpoint", "experimental-compaction-batch-limit",
	"experimental-peer-skip-client-san-verification",
	"experimental-warning-apply-duration", "debug", "log-package-levels",
};

static bool in_list(const char *const *list, size_t count, const char *name, size_t length)
{
	for (size_t k = 0; k < count; k++)
		if (strlen(list[k]) == length && strncmp(list[k], name, length) == 0)
			return true;
	return false;
}

/* The message for a flag that is not in flag_specs: why, in the words an operator needs. */
static void unknown_flag_error(const char *name, size_t length, const char *source, char *err, size_t errlen)
{
	if (in_list(v2_discovery_flags, sizeof(v2_discovery_flags) / sizeof(v2_discovery_flags[0]), name, length))
		snprintf(err, errlen, "%s --%.*s is not supported: quorumd has no v2 discovery (a discovery URL); "
		         "use v3 discovery (--discovery-endpoints and --discovery-token), --discovery-srv or "
		         "--initial-cluster", source, (int)length, name);
	else if (in_list(not_yet_flags, sizeof(not_yet_flags) / sizeof(not_yet_flags[0]), name, length))
		snprintf(err, errlen, "%s --%.*s is not supported yet: quorumd's v3 discovery client speaks "
		         "cleartext gRPC without TLS or auth, with fixed timeouts", source, (int)length, name);
	else if (in_list(etcd_only_flags, sizeof(etcd_only_flags) / sizeof(etcd_only_flags[0]), name, length))
		snprintf(err, errlen, "%s --%.*s is an etcd flag that quorumd does not support (see quorumd --help)",
		         source, (int)length, name);
	else
		snprintf(err, errlen, "flag provided but not defined: -%.*s (see quorumd --help)", (int)length, name);
}

static const struct flag_spec *find_flag(const char *name, size_t length)
{
	for (size_t k = 0; k < FLAG_COUNT; k++)
		if (strlen(flag_specs[k].name) == length && strncmp(flag_specs[k].name, name, length) == 0)
			return &flag_specs[k];
	return NULL;
}

/* Go's time.ParseDuration for the non-negative durations etcd's flags take ("10m", "1.5s", "1h30m", "500ms"),
 * rounded down to milliseconds. */
static int parse_duration_ms(const char *text, uint64_t *out)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}};
	if (!strcmp(text, "0")) {
		*out = 0;
		return 0;
	}
	double total = 0;
	const char *c = text;
	if (*c == '+')
		c++;
	if (!*c)
		return -1;
	while (*c) {
		if (!isdigit((unsigned char)*c) && *c != '.')
			return -1;
		char *end = NULL;
		double number = strtod(c, &end);
		if (end == c)
			return -1;
		c = end;
		size_t best = 0, best_length = 0;
		for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
			size_t length = strlen(units[k].unit);
			if (length > best_length && strncmp(c, units[k].unit, length) == 0) {
				best = k;
				best_length = length;
			}
		}
		if (!best_length)
			return -1;
		total += number * units[best].ms;
		c += best_length;
	}
	*out = (uint64_t)total;
	return 0;
}

static int set_value(const struct flag_spec *spec, struct node_flags *flags, const char *value, const char *source,
                     char *err, size_t errlen)
{
	char *field = (char *)flags + spec->offset;
	switch (spec->kind) {
	case FLAG_STRING: {
		char **slot = (char **)field;
		free(*slot);
		*slot = xstrdup(value);
		return 0;
	}
	case FLAG_UINT: {
		char *end = NULL;
		errno = 0;
		unsigned long long parsed = strtoull(value, &end, 10);
		if (errno || end == value || *end || value[0] == '-') {
			snprintf(err, errlen, "invalid value \"%s\" for %s %s: must be a non-negative integer", value,
			         source, spec->name);
			return -1;
		}
		*(uint64_t *)field = parsed;
		return 0;
	}
	case FLAG_INT: {
		char *end = NULL;
		errno = 0;
		long long parsed = strtoll(value, &end, 10);
		if (errno || end == value || *end) {
			snprintf(err, errlen, "invalid value \"%s\" for %s %s: must be an integer", value, source, spec->name);
			return -1;
		}
		*(int64_t *)field = parsed;
		return 0;
	}
	case FLAG_BOOL:
		/* The spellings Go's strconv.ParseBool accepts. */
		if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "t") || !strcmp(value, "T") ||
		    !strcmp(value, "TRUE") || !strcmp(value, "True")) {
			*(bool *)field = true;
			return 0;
		}
		if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "f") || !strcmp(value, "F") ||
		    !strcmp(value, "FALSE") || !strcmp(value, "False")) {
			*(bool *)field = false;
			return 0;
		}
		snprintf(err, errlen, "invalid boolean value \"%s\" for %s %s", value, source, spec->name);
		return -1;
	case FLAG_DURATION_MS:
		if (parse_duration_ms(value, (uint64_t *)field) != 0) {
			snprintf(err, errlen, "invalid value \"%s\" for %s %s: time: invalid duration %s", value, source,
			         spec->name, value);
			return -1;
		}
		return 0;
	case FLAG_CLUSTER_STATE:
		if (!strcmp(value, "new")) {
			*(enum initial_cluster_state *)field = INITIAL_CLUSTER_STATE_NEW;
			return 0;
		}
		if (!strcmp(value, "existing")) {
			*(enum initial_cluster_state *)field = INITIAL_CLUSTER_STATE_EXISTING;
			return 0;
		}
		snprintf(err, errlen, "invalid value \"%s\" for %s %s: valid values are \"new\" and \"existing\"",
		         value, source, spec->name);
		return -1;
	}
	return -1;
}

/* ETCD_INITIAL_CLUSTER_STATE for initial-cluster-state. */
static void environment_name(const char *flag, char *out, size_t size)
{
	size_t k = 0;
	k += (size_t)snprintf(out, size, "ETCD_");
	for (const char *c = flag; *c && k + 1 < size; c++)
		out[k++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
	out[k] = '\0';
}

/* The command line, over the defaults; given[] records which flags it set. */
static int read_command_line(int argc, char **argv, struct node_flags *flags, bool *given, char *err, size_t errlen,
                             FILE *warnings)
{
	for (int i = 1; i < argc; i++) {
		const char *argument = argv[i];
		if (argument[0] != '-' || argument[1] == '\0') {
			snprintf(err, errlen, "'%s' is not a valid flag", argument);
			return -1;
		}
		const char *name = argument + (argument[1] == '-' ? 2 : 1);
		const char *equals = strchr(name, '=');
		size_t name_length = equals ? (size_t)(equals - name) : strlen(name);
		const struct flag_spec *spec = find_flag(name, name_length);
		if (!spec) {
			unknown_flag_error(name, name_length, "flag", err, errlen);
			return -1;
		}
		size_t index = (size_t)(spec - flag_specs);
		const char *value;
		if (equals) {
			value = equals + 1;
		} else if (spec->kind == FLAG_BOOL) {
			value = "true";
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			snprintf(err, errlen, "flag needs an argument: --%s", spec->name);
			return -1;
		}
		if (given[index] && warnings)
			fprintf(warnings, "warning: --%s given more than once; the last value is used\n", spec->name);
		if (set_value(spec, flags, value, "flag", err, errlen) != 0)
			return -1;
		given[index] = true;
	}
	return 0;
}

/* An ETCD_ variable that names no flag quorumd has: refused when it names a discovery flag quorumd does not
 * take, since silently bootstrapping without it would make a different cluster than the operator asked
 * for; otherwise a warning, as etcd's. */
static int unknown_environment_variable(const char *variable, const char *equals, char *err, size_t errlen,
                                        FILE *warnings)
{
	char flag[96];
	size_t length = 0;
	for (const char *c = variable + 5; c < equals && length + 1 < sizeof(flag); c++)
		flag[length++] = *c == '_' ? '-' : (char)tolower((unsigned char)*c);
	flag[length] = '\0';
	if (in_list(not_yet_flags, sizeof(not_yet_flags) / sizeof(not_yet_flags[0]), flag, length) ||
	    in_list(v2_discovery_flags, sizeof(v2_discovery_flags) / sizeof(v2_discovery_flags[0]), flag, length)) {
		char source[128];
		snprintf(source, sizeof(source), "environment variable %.*s for flag", (int)(equals - variable), variable);
		unknown_flag_error(flag, length, source, err, errlen);
		return -1;
	}
	if (warnings)
		fprintf(warnings, "warning: unrecognized environment variable %.*s\n", (int)(equals - variable), variable);
	return 0;
}

/* etcd's ETCD_<FLAG> variables, for the flags the command line did not give. */
static int read_environment(char **environment, struct node_flags *flags, bool *given, char *err, size_t errlen,
                            FILE *warnings)
{
	for (char **variable = environment; variable && *variable; variable++) {
		if (strncmp(*variable, "ETCD_", 5) != 0)
			continue;
		const char *equals = strchr(*variable, '=');
		if (!equals)
			continue;
		const struct flag_spec *spec = NULL;
		for (size_t k = 0; k < FLAG_COUNT && !spec; k++) {
			char expected[96];
			environment_name(flag_specs[k].name, expected, sizeof(expected));
			if (strlen(expected) == (size_t)(equals - *variable) &&
			    strncmp(expected, *variable, (size_t)(equals - *variable)) == 0)
				spec = &flag_specs[k];
		}
		if (!spec) {
			if (unknown_environment_variable(*variable, equals, err, errlen, warnings) != 0)
				return -1;
			continue;
		}
		size_t index = (size_t)(spec - flag_specs);
		if (given[index]) {
			if (warnings)
				fprintf(warnings, "warning: recognized environment variable %.*s, but unused: shadowed by "
				        "corresponding flag\n", (int)(equals - *variable), *variable);
			continue;
		}
		char source[96];
		snprintf(source, sizeof(source), "environment variable %.*s for", (int)(equals - *variable), *variable);
		if (set_value(spec, flags, equals + 1, source, err, errlen) != 0)
			return -1;
		given[index] = true;
	}
	return 0;
}

/* Values that are one of a few words. */
static int check_choices(const struct node_flags *flags, char *err, size_t errlen)
{
	if (strcmp(flags->dataplane, "udp") != 0 && strcmp(flags->dataplane, "dpdk") != 0) {
		snprintf(err, errlen, "invalid value \"%s\" for flag --dataplane: valid values are \"udp\" and \"dpdk\"",
		         flags->dataplane);
		return -1;
	}
	if (strcmp(flags->dataplane_idle, "adaptive") != 0 && strcmp(flags->dataplane_idle, "poll") != 0) {
		snprintf(err, errlen,
		         "invalid value \"%s\" for flag --dataplane-idle: valid values are \"adaptive\" and \"poll\"",
		         flags->dataplane_idle);
		return -1;
	}
	if (strcmp(flags->logger, "zap") != 0) {
		snprintf(err, errlen, "invalid value \"%s\" for flag --logger: quorumd writes zap's JSON lines "
		         "(\"zap\")", flags->logger);
		return -1;
	}
	if (strcmp(flags->log_level, "debug") && strcmp(flags->log_level, "info") && strcmp(flags->log_level, "warn") &&
	    strcmp(flags->log_level, "error")) {
		snprintf(err, errlen, "invalid value \"%s\" for flag --log-level: valid values are debug, info, warn "
		         "and error", flags->log_level);
		return -1;
	}
	return 0;
}

/* etcd's bootstrap rules (embed.Config.Validate, etcd 3.6 wording since v3 discovery is 3.6's): a discovery
 * flag replaces the default --initial-cluster, and only one way to bootstrap may be given. */
static int check_bootstrap(struct node_flags *flags, const bool *given, char *err, size_t errlen)
{
	bool discovering = *flags->discovery_srv || *flags->discovery_endpoints;
	if (discovering && !given[find_flag("initial-cluster", strlen("initial-cluster")) - flag_specs]) {
		free(flags->initial_cluster);
		flags->initial_cluster = xstrdup("");
	}
	if ((*flags->initial_cluster != '\0') + (*flags->discovery_srv != '\0') + (*flags->discovery_endpoints != '\0') > 1) {
		snprintf(err, errlen, "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", "
		         "\"discovery\", \"discovery-endpoints\" or \"discovery-srv\"");
		return -1;
	}
	if ((*flags->discovery_token != '\0') != (*flags->discovery_endpoints != '\0')) {
		snprintf(err, errlen, "both --discovery-token and --discovery-endpoints must be set");
		return -1;
	}
	if (*flags->discovery_endpoints) {
		const char *start = flags->discovery_endpoints;
		for (;;) {
			const char *comma = strchr(start, ',');
			size_t part = comma ? (size_t)(comma - start) : strlen(start);
			size_t blank = 0;
			while (blank < part && isspace((unsigned char)start[blank]))
				blank++;
			if (blank == part) {
				snprintf(err, errlen, "--discovery-endpoints must not contain empty endpoints");
				return -1;
			}
			if (!comma)
				break;
			start = comma + 1;
		}
	}
	return 0;
}

/* Rules between flags: peer TLS pairs, heartbeat and election timeout. */
static int check_combinations(const struct node_flags *flags, char *err, size_t errlen)
{
	/* etcd stops on half a peer TLS configuration whatever the peer URLs' scheme (TLSInfo validation at
	 * start). Said with the flags' names too: before peer TLS, quorumd's --peer-key-file was a frame MAC key,
	 * so an old command line lands here and must say where that key went. */
	if ((*flags->peer_cert_file != '\0') != (*flags->peer_key_file != '\0')) {
		snprintf(err, errlen, "KeyFile and CertFile must both be present[key: %s, cert: %s] (--peer-key-file is "
		         "the peer TLS private key and needs --peer-cert-file, as in etcd; quorumd's shared frame MAC key "
		         "is --peer-frame-key-file)", flags->peer_key_file, flags->peer_cert_file);
		return -1;
	}
	if (flags->heartbeat_interval_ms == 0) {
		snprintf(err, errlen, "--heartbeat-interval must be greater than 0");
		return -1;
	}
	/* etcd's own rule: the election timeout is at least five heartbeats, and at most 50 s. */
	if (flags->election_timeout_ms < 5 * flags->heartbeat_interval_ms) {
		snprintf(err, errlen, "--election-timeout[%llums] should be at least as 5 times as "
		         "--heartbeat-interval[%llums]", (unsigned long long)flags->election_timeout_ms,
		         (unsigned long long)flags->heartbeat_interval_ms);
		return -1;
	}
	if (flags->election_timeout_ms > 50000) {
		snprintf(err, errlen, "--election-timeout[%llums] is too long, and should be set less than 50000ms",
		         (unsigned long long)flags->election_timeout_ms);
		return -1;
	}
	return 0;
}

int node_flags_parse(int argc, char **argv, char **environment, struct node_flags *flags, char *err,
                     size_t errlen, FILE *warnings)
{
	memset(flags, 0, sizeof(*flags));
	bool given[FLAG_COUNT] = {false};
	for (size_t k = 0; k < FLAG_COUNT; k++)
		if (flag_specs[k].default_value &&
		    set_value(&flag_specs[k], flags, flag_specs[k].default_value, "default", err, errlen) != 0)
			goto fail;
	if (read_command_line(argc, argv, flags, given, err, errlen, warnings) != 0 ||
	    read_environment(environment, flags, given, err, errlen, warnings) != 0)
		goto fail;
	if (flags->help || flags->version)
		return 0;
	if (!flags->data_dir) {
		size_t length = strlen(flags->name) + sizeof(".etcd");
		flags->data_dir = xmalloc(length);
		snprintf(flags->data_dir, length, "%s.etcd", flags->name);
	}
	if (!flags->control_socket) {
		size_t length = strlen(flags->data_dir) + sizeof("/control.sock");
		flags->control_socket = xmalloc(length);
		snprintf(flags->control_socket, length, "%s/control.sock", flags->data_dir);
	}
	if (check_choices(flags, err, errlen) != 0 || check_bootstrap(flags, given, err, errlen) != 0 ||
	    check_combinations(flags, err, errlen) != 0)
		goto fail;
	return 0;
fail:
	node_flags_free(flags);
	return -1;
}

void node_flags_free(struct node_flags *flags)
{
	for (size_t k = 0; k < FLAG_COUNT; k++) {
		if (flag_specs[k].kind == FLAG_STRING) {
			char **slot = (char **)((char *)flags + flag_specs[k].offset);
			free(*slot);
			*slot = NULL;
		}
	}
}

void node_flags_print_help(FILE *out)
{
	fprintf(out, "Usage: quorumd [flags]\n\n"
	             "An etcd-compatible Raft consensus node. Every flag can also be set with its ETCD_* "
	             "environment variable\n(e.g. --initial-cluster-state as ETCD_INITIAL_CLUSTER_STATE); a flag "
	             "on the command line wins.\n\n");
	for (size_t k = 0; k < FLAG_COUNT; k++) {
		char environment[96];
		environment_name(flag_specs[k].name, environment, sizeof(environment));
		fprintf(out, "  --%s\n      %s", flag_specs[k].name, flag_specs[k].help);
		if (flag_specs[k].default_value && *flag_specs[k].default_value)
			fprintf(out, " (default: %s)", flag_specs[k].default_value);
		fprintf(out, " [%s]\n", environment);
	}
	fprintf(out, "\nBootstrap: --initial-cluster, or discovery with --discovery-srv (DNS SRV records) or "
	             "--discovery-endpoints\nand --discovery-token (v3 discovery through an etcd-compatible cluster); "
	             "discovery is used only\nwhen the data dir is new. Not supported: v2 discovery (--discovery URL), "
	             "the v3 discovery client's\nTLS/auth/timeouts; etcd's peer TLS, v2 and proxy flags are "
	             "refused\nwith a message naming them.\n");
}
