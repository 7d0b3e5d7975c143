/* control/cmd/quorumd.c: the quorumd command. Flags and ETCD_* variables in, a running member out; exit code 1
 * with a message naming the problem when it cannot start. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "alloc.h"
#include "bootstrap.h"
#include "client_api.h"
#include "failpoint.h"
#include "grpc_tls.h"
#include "log.h"
#include "node.h"
#include "operator.h"
#include "peer_tls.h"

extern char **environ;

/* SIGHUP: the TLS certificates (peer and client) are read again from their files; new handshakes use them.
 * (etcd reads its files at every handshake and has no SIGHUP; quorumd reads client certificates again when
 * they change, and peer certificates when told.) A thread of its own waits for it, the signal being blocked
 * everywhere else. */
static void *reload_on_sighup(void *argument)
{
	(void)argument;
	sigset_t hangup;
	sigemptyset(&hangup);
	sigaddset(&hangup, SIGHUP);
	for (;;) {
		int signal_number = 0;
		if (sigwait(&hangup, &signal_number) != 0 || signal_number != SIGHUP)
			continue;
		log_write("info", "received SIGHUP: reloading the TLS certificates", "\"signal\":\"SIGHUP\"");
		peer_tls_reload_all();
		grpc_tls_reload_all();
	}
	return NULL;
}

static pthread_t sighup_thread;
static bool sighup_thread_started;

static void stop_sighup_thread(void)
{
	if (!sighup_thread_started)
		return;
	pthread_cancel(sighup_thread); /* sigwait is a cancellation point */
	pthread_join(sighup_thread, NULL);
	sighup_thread_started = false;
}

int main(int argc, char **argv)
{
	struct node *node = xcalloc(1, sizeof(*node));
	char error[1024] = "";
	if (node_flags_parse(argc, argv, environ, &node->flags, error, sizeof(error), stderr) != 0) {
		fprintf(stderr, "quorumd: %s\n", error);
		free(node);
		return 1;
	}
	if (node->flags.help) {
		node_flags_print_help(stdout);
		node_flags_free(&node->flags);
		free(node);
		return 0;
	}
	if (node->flags.version) {
		printf("quorumd Version: %s\netcd API Version: 3.4\n", QUORUMD_VERSION);
		node_flags_free(&node->flags);
		free(node);
		return 0;
	}
	if (log_configure(node->flags.log_level, node->flags.log_outputs, error, sizeof(error)) != 0) {
		fprintf(stderr, "quorumd: %s\n", error);
		node_flags_free(&node->flags);
		free(node);
		return 1;
	}
	if (failpoints_init(getenv("QUORUMD_FAILPOINTS"), error, sizeof(error)) != 0) {
		fprintf(stderr, "quorumd: %s\n", error);
		node_flags_free(&node->flags);
		free(node);
		return 1;
	}
	if (failpoints_armed)
		log_write("warn", "failpoints armed (a test's QUORUMD_FAILPOINTS)", "\"failpoints\":\"%s\"",
		         getenv("QUORUMD_FAILPOINTS"));
	if (node->flags.enable_pprof)
		log_write("info", "pprof is enabled under /debug/ on the client URLs: /debug/vars has the node's counters "
		         "as JSON; quorumd has no Go profiler, /debug/pprof/ says how to profile it with perf",
		         "\"path\":\"%s\"", "/debug/");
	/* Every client connection, WAL segment and RocksDB table takes a descriptor; the default soft limit
	 * (often 1024) would refuse clients long before the connection limit. Go raises it for etcd too. */
	struct rlimit descriptors;
	if (getrlimit(RLIMIT_NOFILE, &descriptors) == 0 && descriptors.rlim_cur < descriptors.rlim_max) {
		descriptors.rlim_cur = descriptors.rlim_max;
		setrlimit(RLIMIT_NOFILE, &descriptors);
	}
	/* SIGINT and SIGTERM are taken by the control thread through a signalfd, SIGHUP by a thread of its own:
	 * block them in every thread. */
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	sighup_thread_started = pthread_create(&sighup_thread, NULL, reload_on_sighup, NULL) == 0;

	int exit_code = 0;
	if (bootstrap_open(node, error, sizeof(error)) != 0 || node_start_threads(node, error, sizeof(error)) != 0) {
		char escaped[2 * sizeof(error) + 8];
		log_write("fatal", "cannot start quorumd", "\"error\":\"%s\"",
		         log_json_escape(error, escaped, sizeof(escaped)));
		fprintf(stderr, "quorumd: %s\n", error);
		node_close(node);
		free(node);
		stop_sighup_thread();
		return 1;
	}
	struct client_api *client_api = client_api_start(node, error, sizeof(error));
	if (!client_api) {
		char escaped[2 * sizeof(error) + 8];
		log_write("fatal", "cannot serve the client URLs", "\"error\":\"%s\"",
		         log_json_escape(error, escaped, sizeof(escaped)));
		fprintf(stderr, "quorumd: %s\n", error);
		node_stop(node);
		node_close(node);
		free(node);
		stop_sighup_thread();
		return 1;
	}
	if (operator_run(node, error, sizeof(error)) != 0) {
		fprintf(stderr, "quorumd: %s\n", error);
		exit_code = 1;
	}
	/* The core and storage threads stop first: after that no reply is addressed to a client thread. */
	node_stop(node);
	client_api_stop(client_api);
	if (exit_code == 0)
		exit_code = atomic_load(&node->exit_code);
	node_close(node);
	free(node);
	stop_sighup_thread();
	return exit_code;
}
