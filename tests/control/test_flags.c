/* tests/control/test_flags.c: etcd's flags and ETCD_* variables as an operator uses them, and the
 * errors a wrong flag gives. */
#include <stdio.h>
#include <string.h>

#include "flags.h"

#include "check.h"

static int parse(char **argv, char **environment, struct node_flags *flags, char *error)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	return node_flags_parse(argc, argv, environment, flags, error, 256, NULL);
}

static void test_defaults(void)
{
	char *argv[] = {"quorumd", NULL};
	char *environment[] = {NULL};
	struct node_flags flags;
	char error[256];
	CHECK(parse(argv, environment, &flags, error) == 0, "%s", error);
	CHECK(strcmp(flags.name, "default") == 0, "name %s", flags.name);
	CHECK(strcmp(flags.data_dir, "default.etcd") == 0, "data dir %s", flags.data_dir);
	CHECK(strcmp(flags.control_socket, "default.etcd/control.sock") == 0, "socket %s", flags.control_socket);
	CHECK(flags.heartbeat_interval_ms == 100 && flags.election_timeout_ms == 1000, "timing");
	CHECK(flags.snapshot_count == 100000 && flags.strict_reconfig_check && !flags.force_new_cluster, "defaults");
	CHECK(flags.initial_cluster_state == INITIAL_CLUSTER_STATE_NEW, "state");
	CHECK(strcmp(flags.initial_cluster_token, "etcd-cluster") == 0, "token %s", flags.initial_cluster_token);
	CHECK(flags.max_concurrent_streams == 4294967295u, "etcd 3.5's --max-concurrent-streams default: %llu",
	      (unsigned long long)flags.max_concurrent_streams);
	CHECK(strcmp(flags.auto_compaction_mode, "periodic") == 0 && strcmp(flags.auto_compaction_retention, "0") == 0,
	      "etcd's auto-compaction defaults: %s %s", flags.auto_compaction_mode, flags.auto_compaction_retention);
	CHECK(strcmp(flags.auth_token, "simple") == 0 && flags.auth_token_ttl == 300 && flags.bcrypt_cost == 10,
	      "etcd's auth defaults: %s %llu %llu", flags.auth_token, (unsigned long long)flags.auth_token_ttl,
	      (unsigned long long)flags.bcrypt_cost);
	CHECK(flags.quota_backend_bytes == 0, "etcd's --quota-backend-bytes default (0: 2 GiB): %lld",
	      (long long)flags.quota_backend_bytes);
	node_flags_free(&flags);
	char *quota[] = {"quorumd", "--quota-backend-bytes=-1", NULL};
	char *quota_environment[] = {"ETCD_QUOTA_BACKEND_BYTES=16777216", NULL};
	CHECK(parse(quota, environment, &flags, error) == 0 && flags.quota_backend_bytes == -1,
	      "a negative quota (no quota) is etcd's too: %s", error);
	node_flags_free(&flags);
	char *no_quota_flag[] = {"quorumd", NULL};
	CHECK(parse(no_quota_flag, quota_environment, &flags, error) == 0 && flags.quota_backend_bytes == 16777216,
	      "ETCD_QUOTA_BACKEND_BYTES: %s", error);
	node_flags_free(&flags);
	char *quota_bad[] = {"quorumd", "--quota-backend-bytes=16MiB", NULL};
	char *none_environment[] = {NULL};
	CHECK(parse(quota_bad, none_environment, &flags, error) != 0 && strstr(error, "quota-backend-bytes"),
	      "a quota that is no integer is refused naming the flag: %s", error);
	char *auth[] = {"quorumd", "--auth-token", "jwt,pub-key=/k.pub,priv-key=/k,sign-method=ES256", "--bcrypt-cost=4",
	                NULL};
	char *auth_environment[] = {"ETCD_AUTH_TOKEN_TTL=60", "ETCD_BCRYPT_COST=12", NULL};
	CHECK(parse(auth, auth_environment, &flags, error) == 0 &&
	          strcmp(flags.auth_token, "jwt,pub-key=/k.pub,priv-key=/k,sign-method=ES256") == 0 &&
	          flags.auth_token_ttl == 60 && flags.bcrypt_cost == 4,
	      "auth flags and ETCD_AUTH_TOKEN_TTL (the flag wins over ETCD_BCRYPT_COST): %s", error);
	node_flags_free(&flags);
	CHECK(flags.snapshot_catchup_entries == 5000 && flags.max_snapshots == 5 && flags.max_wals == 5,
	      "etcd's snapshot defaults: catch-up %llu, snapshots %llu, wals %llu",
	      (unsigned long long)flags.snapshot_catchup_entries, (unsigned long long)flags.max_snapshots,
	      (unsigned long long)flags.max_wals);
	node_flags_free(&flags);
	char *snapshots[] = {"quorumd", "--snapshot-catchup-entries=100", "--max-snapshots", "2", NULL};
	char *snapshots_environment[] = {"ETCD_MAX_WALS=0", NULL};
	CHECK(parse(snapshots, snapshots_environment, &flags, error) == 0 && flags.snapshot_catchup_entries == 100 &&
	      flags.max_snapshots == 2 && flags.max_wals == 0,
	      "snapshot flags and ETCD_MAX_WALS: %s", error);
	node_flags_free(&flags);
	char *limited[] = {"quorumd", NULL};
	char *limited_environment[] = {"ETCD_MAX_CONCURRENT_STREAMS=16", NULL};
	CHECK(parse(limited, limited_environment, &flags, error) == 0 && flags.max_concurrent_streams == 16,
	      "ETCD_MAX_CONCURRENT_STREAMS=16: %llu", (unsigned long long)flags.max_concurrent_streams);
	node_flags_free(&flags);
}

static void test_seed_command_line(void)
{
	/* The seed's command, etcd replaced by quorumd (both spellings of a value). */
	char *argv[] = {"quorumd", "--name", "infra4", "--listen-client-urls", "http://127.0.0.1:2379",
	                "--listen-peer-urls=http://127.0.0.1:2380", "--initial-cluster-state", "existing",
	                "--initial-cluster-token", "ef37ad9dc622a7c4", "-strict-reconfig-check=false",
	                "--force-new-cluster", "--enable-pprof", "--logger=zap", "--log-outputs=stderr", NULL};
	char *environment[] = {"ETCD_NAME=shadowed", "ETCD_SNAPSHOT_COUNT=500", "PATH=/bin", NULL};
	struct node_flags flags;
	char error[256];
	CHECK(parse(argv, environment, &flags, error) == 0, "%s", error);
	CHECK(strcmp(flags.name, "infra4") == 0, "a flag wins over ETCD_NAME: %s", flags.name);
	CHECK(flags.snapshot_count == 500, "ETCD_SNAPSHOT_COUNT applies when no flag: %llu",
	      (unsigned long long)flags.snapshot_count);
	CHECK(flags.initial_cluster_state == INITIAL_CLUSTER_STATE_EXISTING, "state");
	CHECK(!flags.strict_reconfig_check && flags.force_new_cluster, "booleans");
	CHECK(strcmp(flags.listen_peer_urls, "http://127.0.0.1:2380") == 0, "peer urls %s", flags.listen_peer_urls);
	CHECK(strcmp(flags.data_dir, "infra4.etcd") == 0, "data dir follows the name: %s", flags.data_dir);
	CHECK(flags.enable_pprof && strcmp(flags.logger, "zap") == 0 && strcmp(flags.log_outputs, "stderr") == 0 &&
	          strcmp(flags.log_level, "info") == 0,
	      "the seed's logging flags");
	node_flags_free(&flags);
}

static void test_environment_form(void)
{
	char *argv[] = {"quorumd", NULL};
	char *environment[] = {"ETCD_NAME=infra4", "ETCD_INITIAL_CLUSTER=infra4=http://127.0.0.1:42380",
	                       "ETCD_INITIAL_CLUSTER_STATE=existing", "ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:42380",
	                       NULL};
	struct node_flags flags;
	char error[256];
	CHECK(parse(argv, environment, &flags, error) == 0, "%s", error);
	CHECK(strcmp(flags.name, "infra4") == 0, "name %s", flags.name);
	CHECK(strcmp(flags.initial_cluster, "infra4=http://127.0.0.1:42380") == 0, "cluster %s", flags.initial_cluster);
	CHECK(flags.initial_cluster_state == INITIAL_CLUSTER_STATE_EXISTING, "state");
	node_flags_free(&flags);
}

/* Client TLS takes etcd's flags and their variables; nothing is checked here (the files and their
 * combinations are checked when the client URLs open, as etcd does). */
static void test_client_tls(void)
{
	char *argv[] = {"quorumd", "--cert-file=/pki/server.pem", "--key-file", "/pki/server-key.pem", "--client-cert-auth",
	                "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	                NULL};
	char *environment[] = {"ETCD_TRUSTED_CA_FILE=/pki/ca.pem", "ETCD_AUTO_TLS=true", "ETCD_KEY_FILE=/shadowed.pem",
	                       NULL};
	struct node_flags flags;
	char error[256];
	CHECK(parse(argv, environment, &flags, error) == 0, "%s", error);
	CHECK(strcmp(flags.cert_file, "/pki/server.pem") == 0, "cert file %s", flags.cert_file);
	CHECK(strcmp(flags.key_file, "/pki/server-key.pem") == 0, "--key-file wins over ETCD_KEY_FILE: %s", flags.key_file);
	CHECK(strcmp(flags.trusted_ca_file, "/pki/ca.pem") == 0, "ETCD_TRUSTED_CA_FILE: %s", flags.trusted_ca_file);
	CHECK(flags.client_cert_auth && flags.auto_tls, "--client-cert-auth and ETCD_AUTO_TLS");
	CHECK(strcmp(flags.cipher_suites, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384") == 0,
	      "cipher suites %s", flags.cipher_suites);
	node_flags_free(&flags);

	char *plain[] = {"quorumd", NULL};
	char *none[] = {NULL};
	CHECK(parse(plain, none, &flags, error) == 0, "%s", error);
	CHECK(!flags.client_cert_auth && !flags.auto_tls && !*flags.cert_file && !*flags.key_file &&
	          !*flags.trusted_ca_file && !*flags.cipher_suites,
	      "client TLS is off by default");
	node_flags_free(&flags);
}

static void expect_error(char **argv, char **environment, const char *fragment)
{
	struct node_flags flags;
	char error[256] = "";
	int rc = parse(argv, environment, &flags, error);
	CHECK(rc == -1 && strstr(error, fragment), "expected an error containing \"%s\", got rc %d \"%s\"", fragment,
	      rc, error);
}

static void test_errors(void)
{
	char *none[] = {NULL};
	char *unknown[] = {"quorumd", "--enable-v2", NULL};
	expect_error(unknown, none, "enable-v2");
	char *state[] = {"quorumd", "--initial-cluster-state=old", NULL};
	expect_error(state, none, "\"old\"");
	char *number[] = {"quorumd", "--snapshot-count", "lots", NULL};
	expect_error(number, none, "snapshot-count");
	char *missing[] = {"quorumd", "--name", NULL};
	expect_error(missing, none, "--name");
	char *timing[] = {"quorumd", "--heartbeat-interval=300", "--election-timeout=1000", NULL};
	expect_error(timing, none, "5 times");
	char *dataplane[] = {"quorumd", "--dataplane=rdma", NULL};
	expect_error(dataplane, none, "rdma");
	char *logger[] = {"quorumd", "--logger=capnslog", NULL};
	expect_error(logger, none, "capnslog");
	char *level[] = {"quorumd", "--log-level=chatty", NULL};
	expect_error(level, none, "chatty");
	char *positional[] = {"quorumd", "infra1", NULL};
	expect_error(positional, none, "infra1");
	char *ok[] = {"quorumd", NULL};
	char *bad_environment[] = {"ETCD_STRICT_RECONFIG_CHECK=maybe", NULL};
	expect_error(ok, bad_environment, "ETCD_STRICT_RECONFIG_CHECK");
}

/* --experimental-watch-progress-notify-interval takes Go's durations, as etcd's flag does. */
static void test_durations(void)
{
	struct {
		const char *value;
		uint64_t ms;
	} cases[] = {{"10m", 600000}, {"1s", 1000}, {"1.5s", 1500}, {"250ms", 250}, {"1h30m", 5400000}, {"0", 0}};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		char flag[96];
		snprintf(flag, sizeof(flag), "--experimental-watch-progress-notify-interval=%s", cases[k].value);
		char *argv[] = {"quorumd", flag, NULL};
		char *environment[] = {NULL};
		struct node_flags flags;
		char error[256];
		CHECK(parse(argv, environment, &flags, error) == 0 &&
		          flags.watch_progress_notify_interval_ms == cases[k].ms,
		      "%s: %s, %llu ms", cases[k].value, error, (unsigned long long)flags.watch_progress_notify_interval_ms);
		node_flags_free(&flags);
	}
	char *none[] = {NULL};
	char *defaults[] = {"quorumd", NULL};
	struct node_flags flags;
	char error[256];
	CHECK(parse(defaults, none, &flags, error) == 0 && flags.watch_progress_notify_interval_ms == 600000,
	      "default progress notify interval: %llu", (unsigned long long)flags.watch_progress_notify_interval_ms);
	node_flags_free(&flags);
	char *unitless[] = {"quorumd", "--experimental-watch-progress-notify-interval=5", NULL};
	expect_error(unitless, none, "time: invalid duration 5");
	char *negative[] = {"quorumd", "--experimental-watch-progress-notify-interval=-1s", NULL};
	expect_error(negative, none, "invalid duration");
}

/* An unknown flag is never ignored: the error names it, and says why when it is one of etcd's. */
static void test_unknown_flags(void)
{
	char *none[] = {NULL};
	char *made_up[] = {"quorumd", "--name", "infra1", "--no-such-flag=1", NULL};
	expect_error(made_up, none, "flag provided but not defined: -no-such-flag");
	char *single_dash[] = {"quorumd", "-no-such-flag", NULL};
	expect_error(single_dash, none, "-no-such-flag");
	char *etcd_only[] = {"quorumd", "--enable-v2=true", NULL};
	expect_error(etcd_only, none, "--enable-v2 is an etcd flag that quorumd does not support");
	char *cors[] = {"quorumd", "--cors", "*", NULL};
	expect_error(cors, none, "--cors is an etcd flag");
	/* Half a peer TLS configuration stops quorumd as it stops etcd, naming both flags and where the old
	 * meaning of --peer-key-file (a frame MAC key) went. */
	char *key_alone[] = {"quorumd", "--peer-key-file", "/etc/quorumd/peer.key", NULL};
	expect_error(key_alone, none, "KeyFile and CertFile must both be present[key: /etc/quorumd/peer.key, cert: ] "
	             "(--peer-key-file is the peer TLS private key and needs --peer-cert-file");
	expect_error(key_alone, none, "--peer-frame-key-file");
	char *cert_alone[] = {"quorumd", "--peer-cert-file", "/etc/ssl/x.pem", NULL};
	expect_error(cert_alone, none, "KeyFile and CertFile must both be present[key: , cert: /etc/ssl/x.pem]");
	/* Bootstrap discovery: etcd's rules (embed.Config.Validate). One way to bootstrap only; a discovery flag
	 * replaces the default --initial-cluster but not an explicit one; token and endpoints go together. */
	char *conflict[] = {"quorumd", "--discovery-srv", "example.com", "--initial-cluster", "a=http://127.0.0.1:2380",
	                    NULL};
	expect_error(conflict, none, "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", "
	             "\"discovery\", \"discovery-endpoints\" or \"discovery-srv\"");
	char *both_discoveries[] = {"quorumd", "--discovery-srv=example.com", "--discovery-endpoints",
	                            "http://127.0.0.1:2379", "--discovery-token", "t", NULL};
	expect_error(both_discoveries, none, "multiple discovery or bootstrap flags are set");
	char *no_token[] = {"quorumd", "--discovery-endpoints", "http://127.0.0.1:2379", NULL};
	expect_error(no_token, none, "both --discovery-token and --discovery-endpoints must be set");
	char *no_endpoints[] = {"quorumd", "--discovery-token", "t", NULL};
	expect_error(no_endpoints, none, "both --discovery-token and --discovery-endpoints must be set");
	char *empty_endpoint[] = {"quorumd", "--discovery-endpoints", "http://127.0.0.1:2379, ", "--discovery-token", "t",
	                          NULL};
	expect_error(empty_endpoint, none, "--discovery-endpoints must not contain empty endpoints");
	char *v2[] = {"quorumd", "--discovery", "https://discovery.etcd.io/abc", NULL};
	expect_error(v2, none, "--discovery is not supported: quorumd has no v2 discovery");
	char *discovery_tls[] = {"quorumd", "--discovery-cert", "/etc/ssl/x.pem", NULL};
	expect_error(discovery_tls, none, "--discovery-cert is not supported yet");
	char *ok[] = {"quorumd", NULL};
	char *v2_environment[] = {"ETCD_DISCOVERY=https://discovery.etcd.io/abc", NULL};
	expect_error(ok, v2_environment, "--discovery is not supported");
	char *conflict_environment[] = {"ETCD_DISCOVERY_SRV=example.com", "ETCD_INITIAL_CLUSTER=a=http://127.0.0.1:2380",
	                                NULL};
	expect_error(ok, conflict_environment, "multiple discovery or bootstrap flags are set");
	{
		struct node_flags flags;
		char error[256];
		char *srv[] = {"quorumd", "--discovery-srv", "example.com", "--discovery-srv-name", "blue", NULL};
		CHECK(parse(srv, none, &flags, error) == 0, "--discovery-srv: %s", error);
		CHECK(strcmp(flags.discovery_srv, "example.com") == 0 && strcmp(flags.discovery_srv_name, "blue") == 0,
		      "srv %s name %s", flags.discovery_srv, flags.discovery_srv_name);
		CHECK(strcmp(flags.initial_cluster, "") == 0, "the default --initial-cluster stays: %s", flags.initial_cluster);
		node_flags_free(&flags);
		char *v3[] = {"quorumd", "--discovery-endpoints", "http://127.0.0.1:2379,http://127.0.0.1:22379",
		              "--discovery-token", "tok", "--discovery-cluster-size=3", NULL};
		CHECK(parse(v3, none, &flags, error) == 0, "v3 discovery: %s", error);
		CHECK(strcmp(flags.discovery_token, "tok") == 0 && flags.discovery_cluster_size == 3 &&
		      strcmp(flags.initial_cluster, "") == 0, "v3 discovery flags");
		node_flags_free(&flags);
		char *v3_environment[] = {"ETCD_DISCOVERY_ENDPOINTS=http://127.0.0.1:2379", "ETCD_DISCOVERY_TOKEN=tok", NULL};
		CHECK(parse(ok, v3_environment, &flags, error) == 0, "v3 discovery by variables: %s", error);
		CHECK(flags.discovery_cluster_size == 0, "--discovery-cluster-size defaults to 0 (read the size key)");
		node_flags_free(&flags);
	}
	/* Other unknown ETCD_* variables only warn, as etcd does. */
	char *other_environment[] = {"ETCD_UNHEARD_OF=1", NULL};
	struct node_flags flags;
	char error[256];
	CHECK(parse(ok, other_environment, &flags, error) == 0, "ETCD_UNHEARD_OF: %s", error);
	node_flags_free(&flags);
	/* --enable-pprof is accepted in every spelling the seed and Go allow. */
	char *pprof[] = {"quorumd", "--enable-pprof=false", "-enable-pprof", NULL};
	CHECK(parse(pprof, none, &flags, error) == 0 && flags.enable_pprof, "--enable-pprof: %s", error);
	node_flags_free(&flags);
}

int main(void)
{
	test_defaults();
	test_seed_command_line();
	test_environment_form();
	test_client_tls();
	test_errors();
	test_durations();
	test_unknown_flags();
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
