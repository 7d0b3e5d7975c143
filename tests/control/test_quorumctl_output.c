/* tests/control/test_quorumctl_output.c: the real quorumctl binary (path in argv[1]) against a test server
 * that replays canned JSON results over a real control socket. This tests quorumctl's parsing of its
 * command line, the requests it sends, and its *formatting* (etcdctl 3.4's exact text, exit codes); the
 * canned server is not quorumd and stands for none of quorumd's behaviour. Expected texts are written out
 * by hand from etcdctl's printers, not produced by quorumctl's code. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control_socket.h"
#include "check.h"

static const char *quorumctl_path;
static const char *environment_socket; /* QUORUMCTL_CONTROL_SOCKET for the next runs, NULL: unset */
static char directory[64];


/* ---- the canned server (a child process) --------------------------------------------------------------- */

static const char header_json[] =
    "{\"cluster_id\":\"ef37ad9dc622a7c4\",\"member_id\":\"8211f1d0f64f3269\",\"revision\":5,\"raft_term\":2}";
static const char members_json[] =
    "[{\"id\":\"2be2218c372f48ba\",\"name\":\"\",\"peer_urls\":[\"http://127.0.0.1:42380\"],\"client_urls\":[],"
    "\"is_learner\":false},"
    "{\"id\":\"8211f1d0f64f3269\",\"name\":\"infra1\",\"peer_urls\":[\"http://127.0.0.1:12380\"],"
    "\"client_urls\":[\"http://127.0.0.1:12379\"],\"is_learner\":false},"
    "{\"id\":\"91bc3c398fb3c146\",\"name\":\"infra2\",\"peer_urls\":[\"http://127.0.0.1:22380\"],"
    "\"client_urls\":[\"http://127.0.0.1:22379\"],\"is_learner\":false}]";

struct canned {
	struct control_socket *server;
	bool troubled; /* endpoint_status reports no leader and errors */
	int promote_attempts;
	int list_calls_after_add;
	bool learner_added;
	bool old_removed;
};

static json_t *parse(const char *text)
{
	json_error_t error;
	json_t *value = json_loads(text, 0, &error);
	if (!value) {
		fprintf(stderr, "canned JSON: %s: %s\n", error.text, text);
		abort();
	}
	return value;
}

static const char *arg(const struct control_request *request, const char *name)
{
	const char *value = json_string_value(json_object_get(request->json, name));
	return value ? value : "";
}

static json_t *with_header(const char *members)
{
	json_t *result = json_object();
	json_object_set_new(result, "header", parse(header_json));
	if (members)
		json_object_set_new(result, "members", parse(members));
	return result;
}

/* The member list during `member replace`: the learner appears, starts (gets its name) on the second look,
 * and the old member goes away at the end. */
static json_t *replace_members(struct canned *c)
{
	json_t *members = json_array();
	if (!c->old_removed)
		json_array_append_new(members, parse("{\"id\":\"8211f1d0f64f3269\",\"name\":\"infra1\",\"peer_urls\":"
		                                     "[\"http://127.0.0.1:12380\"],\"client_urls\":[],\"is_learner\":false}"));
	json_array_append_new(members, parse("{\"id\":\"91bc3c398fb3c146\",\"name\":\"infra2\",\"peer_urls\":"
	                                     "[\"http://127.0.0.1:22380\"],\"client_urls\":[],\"is_learner\":false}"));
	if (c->learner_added) {
		bool started = c->list_calls_after_add >= 2;
		json_t *learner = parse("{\"id\":\"93bd8eb8b8ea02c\",\"peer_urls\":[\"http://127.0.0.1:43380\"],"
		                        "\"client_urls\":[],\"is_learner\":true}");
		json_object_set_new(learner, "name", json_string(started ? "infra4" : ""));
		json_array_append_new(members, learner);
	}
	return members;
}

static void canned_handler(void *context, struct control_request *request)
{
	struct canned *c = context;
	const char *command = request->command;
	if (strcmp(command, "member_list") == 0) {
		if (c->learner_added || c->old_removed) {
			c->list_calls_after_add++;
			json_t *result = with_header(NULL);
			json_object_set_new(result, "members", replace_members(c));
			control_socket_reply(c->server, request, result);
		} else {
			control_socket_reply(c->server, request, with_header(members_json));
		}
	} else if (strcmp(command, "member_add") == 0) {
		json_t *urls = json_object_get(request->json, "peer_urls");
		const char *url = json_string_value(json_array_get(urls, 0));
		bool replacing = url && strcmp(url, "http://127.0.0.1:43380") == 0;
		if (json_array_size(urls) != 1 || !url || (strcmp(url, "http://127.0.0.1:42380") != 0 && !replacing)) {
			control_socket_reply_error(c->server, request, "InvalidArgument", "unexpected peer_urls");
			return;
		}
		bool learner = json_is_true(json_object_get(request->json, "is_learner"));
		json_t *member = parse("{\"id\":\"93bd8eb8b8ea02c\",\"name\":\"\",\"client_urls\":[]}");
		json_object_set_new(member, "peer_urls", json_pack("[s]", url));
		json_object_set_new(member, "is_learner", json_boolean(learner));
		json_t *result = with_header(NULL);
		json_object_set_new(result, "member", json_deep_copy(member));
		json_t *members = parse("[{\"id\":\"8211f1d0f64f3269\",\"name\":\"infra1\",\"peer_urls\":"
		                        "[\"http://127.0.0.1:12380\"],\"client_urls\":[\"http://127.0.0.1:12379\"]},"
		                        "{\"id\":\"91bc3c398fb3c146\",\"name\":\"infra2\",\"peer_urls\":"
		                        "[\"http://127.0.0.1:22380\"],\"client_urls\":[\"http://127.0.0.1:22379\"]}]");
		json_array_insert_new(members, 0, member); /* sorted by ID, as etcd returns them */
		json_object_set_new(result, "members", members);
		if (replacing)
			c->learner_added = true;
		control_socket_reply(c->server, request, result);
	} else if (strcmp(command, "member_remove") == 0 || strcmp(command, "member_update") == 0 ||
	           strcmp(command, "member_promote") == 0) {
		const char *id = arg(request, "member_id");
		if (strcmp(command, "member_promote") == 0 && strcmp(id, "93bd8eb8b8ea02c") == 0) {
			if (++c->promote_attempts < 3) {
				control_socket_reply_error(c->server, request, "FailedPrecondition",
				                           "etcdserver: can only promote a learner member which is in sync with "
				                           "leader");
				return;
			}
			control_socket_reply(c->server, request, with_header(members_json));
		} else if (strcmp(command, "member_promote") == 0 && strcmp(id, "8211f1d0f64f3269") == 0) {
			control_socket_reply_error(c->server, request, "FailedPrecondition",
			                           "etcdserver: can only promote a learner member");
		} else if (strcmp(id, "8211f1d0f64f3269") == 0 || strcmp(id, "2be2218c372f48ba") == 0) {
			if (strcmp(command, "member_update") == 0 &&
			    strcmp(json_string_value(json_array_get(json_object_get(request->json, "peer_urls"), 1)) ?: "",
			           "http://127.0.0.1:12381") != 0) {
				control_socket_reply_error(c->server, request, "InvalidArgument", "unexpected peer_urls");
				return;
			}
			if (strcmp(command, "member_remove") == 0 && c->learner_added)
				c->old_removed = true;
			control_socket_reply(c->server, request, with_header(members_json));
		} else {
			control_socket_reply_error(c->server, request, "NotFound", "etcdserver: member not found");
		}
	} else if (strcmp(command, "endpoint_status") == 0) {
		json_t *result = parse("{\"version\":\"3.4.0-quorumd\",\"db_size\":20480,\"leader\":\"8211f1d0f64f3269\","
		                       "\"raft_index\":8,\"raft_term\":2,\"raft_applied_index\":8,\"is_learner\":false,"
		                       "\"errors\":[]}");
		if (c->troubled) {
			json_object_set_new(result, "leader", json_string("0"));
			json_object_set_new(result, "db_size", json_integer(1000000));
			json_object_set_new(result, "errors", json_pack("[sss]", "etcdserver: no leader", "NOSPACE", "CORRUPT"));
		}
		json_object_set_new(result, "header", parse(header_json));
		control_socket_reply(c->server, request, result);
	} else if (strcmp(command, "move_leader") == 0) {
		if (strcmp(arg(request, "target_id"), "91bc3c398fb3c146") != 0)
			control_socket_reply_error(c->server, request, "NotFound", "etcdserver: member not found");
		else
			control_socket_reply(c->server, request, with_header(NULL));
	} else if (strcmp(command, "put") == 0) {
		if (strcmp(arg(request, "key"), "slow") == 0)
			return; /* never answered: the client's deadline must fire (the request leaks with the child) */
		if (strcmp(arg(request, "key"), "foo") != 0 || strcmp(arg(request, "value"), "bar baz") != 0)
			control_socket_reply_error(c->server, request, "InvalidArgument", "unexpected put");
		else
			control_socket_reply(c->server, request, with_header(NULL));
	} else if (strcmp(command, "get") == 0 || strcmp(command, "del") == 0) {
		const char *key = arg(request, "key");
		const char *end = arg(request, "range_end");
		bool get = strcmp(command, "get") == 0;
		json_t *result = with_header(NULL);
		if (strcmp(key, "foo") == 0 && *end == '\0') {
			if (get)
				json_object_set_new(result, "kvs",
				                    parse("[{\"key\":\"foo\",\"value\":\"bar\",\"create_revision\":2,"
				                          "\"mod_revision\":3,\"version\":2,\"lease\":0}]"));
			json_object_set_new(result, get ? "count" : "deleted", json_integer(1));
		} else if (strcmp(key, "foo") == 0 && strcmp(end, "fop") == 0) {
			if (get)
				json_object_set_new(result, "kvs",
				                    parse("[{\"key\":\"foo\",\"value\":\"bar\",\"create_revision\":2,\"mod_revision\":"
				                          "3,\"version\":2,\"lease\":0},{\"key\":\"foo2\",\"value\":\"\","
				                          "\"create_revision\":4,\"mod_revision\":4,\"version\":1,\"lease\":0}]"));
			json_object_set_new(result, get ? "count" : "deleted", json_integer(2));
		} else if (strcmp(key, "bin") == 0) {
			json_object_set_new(result, "kvs",
			                    parse("[{\"key\":\"Ymlu\",\"value\":\"AAEC/w==\",\"encoding\":\"base64\","
			                          "\"create_revision\":6,\"mod_revision\":6,\"version\":1,\"lease\":0}]"));
			json_object_set_new(result, "count", json_integer(1));
		} else {
			json_decref(result);
			control_socket_reply_error(c->server, request, "InvalidArgument", "unexpected range");
			return;
		}
		control_socket_reply(c->server, request, result);
	} else if (strcmp(command, "counters") == 0) {
		control_socket_reply(c->server, request, parse("{\"proposals\":3,\"transport\":{\"sent\":10}}"));
	} else {
		control_socket_reply_error(c->server, request, "Unimplemented", "unknown command %s", command);
	}
}

static pid_t start_canned_server(const char *path, bool troubled)
{
	fflush(stdout);
	pid_t child = fork();
	if (child != 0)
		return child;
	struct canned canned = {.troubled = troubled};
	char error[256];
	struct control_socket_config config = {.path = path, .handler = canned_handler, .handler_context = &canned};
	canned.server = control_socket_open(&config, error, sizeof(error));
	if (!canned.server) {
		fprintf(stderr, "canned server: %s\n", error);
		_exit(1);
	}
	for (;;) {
		struct pollfd p = {.fd = control_socket_fd(canned.server), .events = POLLIN};
		if (poll(&p, 1, 1000) > 0)
			control_socket_process(canned.server);
		if (getppid() == 1)
			_exit(0);
	}
}

/* ---- running quorumctl ------------------------------------------------------------------------------------ */

struct run {
	char out[16384];
	char err[16384];
	int code;
};

static void run_quorumctl(struct run *r, const char *const *args)
{
	int out_pipe[2], err_pipe[2];
	if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0)
		abort();
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		dup2(out_pipe[1], 1);
		dup2(err_pipe[1], 2);
		close(out_pipe[0]);
		close(err_pipe[0]);
		FILE *null = freopen("/dev/null", "r", stdin);
		(void)null;
		const char *argv[40] = {quorumctl_path};
		size_t n = 1;
		for (; args[n - 1] && n < 39; n++)
			argv[n] = args[n - 1];
		argv[n] = NULL;
		if (environment_socket)
			setenv("QUORUMCTL_CONTROL_SOCKET", environment_socket, 1);
		else
			unsetenv("QUORUMCTL_CONTROL_SOCKET");
		execv(quorumctl_path, (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", quorumctl_path, strerror(errno));
		_exit(127);
	}
	close(out_pipe[1]);
	close(err_pipe[1]);
	size_t out_length = 0, err_length = 0;
	struct pollfd p[2] = {{.fd = out_pipe[0], .events = POLLIN}, {.fd = err_pipe[0], .events = POLLIN}};
	int open_count = 2;
	while (open_count > 0 && poll(p, 2, 20000) > 0) {
		for (int k = 0; k < 2; k++) {
			if (p[k].fd < 0 || !(p[k].revents & (POLLIN | POLLHUP)))
				continue;
			char *buf = k == 0 ? r->out : r->err;
			size_t *length = k == 0 ? &out_length : &err_length;
			ssize_t n = read(p[k].fd, buf + *length, sizeof(r->out) - 1 - *length);
			if (n <= 0) {
				close(p[k].fd);
				p[k].fd = -1;
				open_count--;
			} else {
				*length += (size_t)n;
			}
		}
	}
	r->out[out_length] = '\0';
	r->err[err_length] = '\0';
	int status;
	waitpid(child, &status, 0);
	r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Runs quorumctl against the canned server and compares stdout, stderr and the exit code exactly. */
static void expect(const char *const *args, const char *want_out, const char *want_err, int want_code)
{
	struct run r;
	run_quorumctl(&r, args);
	char command[512] = "quorumctl";
	for (size_t k = 0; args[k]; k++)
		snprintf(command + strlen(command), sizeof(command) - strlen(command), " %s", args[k]);
	CHECK(strcmp(r.out, want_out) == 0, "%s\n--- stdout:\n%s--- want:\n%s---", command, r.out, want_out);
	if (want_err)
		CHECK(strcmp(r.err, want_err) == 0, "%s\n--- stderr:\n%s--- want:\n%s---", command, r.err, want_err);
	CHECK(r.code == want_code, "%s: exit code %d, want %d (stderr: %s)", command, r.code, want_code, r.err);
}

#define ARGS(...) ((const char *const[]){"--control-socket=c.sock", __VA_ARGS__, NULL})

static void test_member_list(void)
{
	expect(ARGS("member", "list"),
	       "2be2218c372f48ba, unstarted, , http://127.0.0.1:42380, , false\n"
	       "8211f1d0f64f3269, started, infra1, http://127.0.0.1:12380, http://127.0.0.1:12379, false\n"
	       "91bc3c398fb3c146, started, infra2, http://127.0.0.1:22380, http://127.0.0.1:22379, false\n",
	       "", 0);
	expect(ARGS("member", "list", "-w", "table"),
	       "+------------------+-----------+--------+------------------------+------------------------+------------+\n"
	       "|        ID        |  STATUS   |  NAME  |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |\n"
	       "+------------------+-----------+--------+------------------------+------------------------+------------+\n"
	       "| 2be2218c372f48ba | unstarted |        | http://127.0.0.1:42380 |                        |      false |\n"
	       "| 8211f1d0f64f3269 |   started | infra1 | http://127.0.0.1:12380 | http://127.0.0.1:12379 |      false |\n"
	       "| 91bc3c398fb3c146 |   started | infra2 | http://127.0.0.1:22380 | http://127.0.0.1:22379 |      false |\n"
	       "+------------------+-----------+--------+------------------------+------------------------+------------+\n",
	       "", 0);
	/* Go's encoding/json of pb.MemberListResponse: uint64 IDs in decimal, empty fields omitted. */
	expect(ARGS("--write-out=json", "member", "list"),
	       "{\"header\":{\"cluster_id\":17237436991929493444,\"member_id\":9372538179322589801,\"revision\":5,"
	       "\"raft_term\":2},\"members\":[{\"ID\":3162126774472493242,\"peerURLs\":[\"http://127.0.0.1:42380\"]},"
	       "{\"ID\":9372538179322589801,\"name\":\"infra1\",\"peerURLs\":[\"http://127.0.0.1:12380\"],"
	       "\"clientURLs\":[\"http://127.0.0.1:12379\"]},{\"ID\":10501334649042878790,\"name\":\"infra2\","
	       "\"peerURLs\":[\"http://127.0.0.1:22380\"],\"clientURLs\":[\"http://127.0.0.1:22379\"]}]}\n",
	       "", 0);
}

static void test_member_changes(void)
{
	/* %16x pads a 15-digit ID with a space. */
	const char *add_tail =
	    "\n"
	    "ETCD_NAME=\"infra4\"\n"
	    "ETCD_INITIAL_CLUSTER=\"infra4=http://127.0.0.1:42380,infra1=http://127.0.0.1:12380,"
	    "infra2=http://127.0.0.1:22380\"\n"
	    "ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:42380\"\n"
	    "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"
	    "\n"
	    "quorumd --name infra4 --initial-advertise-peer-urls http://127.0.0.1:42380 --listen-peer-urls "
	    "http://127.0.0.1:42380 --initial-cluster infra4=http://127.0.0.1:42380,infra1=http://127.0.0.1:12380,"
	    "infra2=http://127.0.0.1:22380 --initial-cluster-state existing\n";
	char want[2048];
	snprintf(want, sizeof(want), "Member  93bd8eb8b8ea02c added to cluster ef37ad9dc622a7c4\n%s", add_tail);
	expect(ARGS("member", "add", "infra4", "--peer-urls=http://127.0.0.1:42380"), want, "", 0);
	/* etcdctl 3.4 prints the same form for a learner. */
	snprintf(want, sizeof(want), "Member  93bd8eb8b8ea02c added to cluster ef37ad9dc622a7c4\n%s", add_tail);
	expect(ARGS("member", "add", "infra4", "--peer-urls", "http://127.0.0.1:42380", "--learner"), want, "", 0);

	expect(ARGS("member", "remove", "8211f1d0f64f3269"),
	       "Member 8211f1d0f64f3269 removed from cluster ef37ad9dc622a7c4\n", "", 0);
	expect(ARGS("member", "update", "8211f1d0f64f3269", "--peer-urls=http://127.0.0.1:12380,http://127.0.0.1:12381"),
	       "Member 8211f1d0f64f3269 updated in cluster ef37ad9dc622a7c4\n", "", 0);
	expect(ARGS("member", "promote", "8211f1d0f64f3269"), "", "Error: etcdserver: can only promote a learner member\n",
	       1);
	expect(ARGS("member", "remove", "1234"), "", "Error: etcdserver: member not found\n", 1);
	expect(ARGS("-w", "json", "member", "remove", "2be2218c372f48ba"),
	       "{\"header\":{\"cluster_id\":17237436991929493444,\"member_id\":9372538179322589801,\"revision\":5,"
	       "\"raft_term\":2},\"members\":[{\"ID\":3162126774472493242,\"peerURLs\":[\"http://127.0.0.1:42380\"]},"
	       "{\"ID\":9372538179322589801,\"name\":\"infra1\",\"peerURLs\":[\"http://127.0.0.1:12380\"],"
	       "\"clientURLs\":[\"http://127.0.0.1:12379\"]},{\"ID\":10501334649042878790,\"name\":\"infra2\","
	       "\"peerURLs\":[\"http://127.0.0.1:22380\"],\"clientURLs\":[\"http://127.0.0.1:22379\"]}]}\n",
	       "", 0);
}

static void test_endpoint_and_leader(void)
{
	expect(ARGS("endpoint", "status", "-w", "table"),
	       "+----------+------------------+---------------+---------+-----------+------------+-----------+------------"
	       "+--------------------+--------+\n"
	       "| ENDPOINT |        ID        |    VERSION    | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX "
	       "| RAFT APPLIED INDEX | ERRORS |\n"
	       "+----------+------------------+---------------+---------+-----------+------------+-----------+------------"
	       "+--------------------+--------+\n"
	       "|   c.sock | 8211f1d0f64f3269 | 3.4.0-quorumd |   20 kB |      true |      false |         2 |          8 "
	       "|                  8 |        |\n"
	       "+----------+------------------+---------------+---------+-----------+------------+-----------+------------"
	       "+--------------------+--------+\n",
	       "", 0);
	expect(ARGS("endpoint", "status"), "c.sock, 8211f1d0f64f3269, 3.4.0-quorumd, 20 kB, true, false, 2, 8, 8, \n", "",
	       0);
	expect(ARGS("endpoint", "status", "-w", "json"),
	       "[{\"Endpoint\":\"c.sock\",\"Status\":{\"header\":{\"cluster_id\":17237436991929493444,\"member_id\":"
	       "9372538179322589801,\"revision\":5,\"raft_term\":2},\"version\":\"3.4.0-quorumd\",\"dbSize\":20480,"
	       "\"leader\":9372538179322589801,\"raftIndex\":8,\"raftTerm\":2,\"raftAppliedIndex\":8}}]\n",
	       "", 0);
	expect(ARGS("counters"), "{\n  \"proposals\": 3,\n  \"transport\": {\n    \"sent\": 10\n  }\n}\n", "", 0);
	expect(ARGS("move-leader", "91bc3c398fb3c146"), "Leadership transferred from 8211f1d0f64f3269 to 91bc3c398fb3c146\n",
	       "", 0);
}

/* No leader and several errors: tablewriter wraps a cell longer than 30 columns at spaces (least
 * raggedness), the column keeps 30, IS LEADER is false, sizes in SI units. */
static void test_endpoint_errors(void)
{
	expect((const char *const[]){"--control-socket=e.sock", "endpoint", "status", "-w", "table", NULL},
	       "+----------+------------------+---------------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+\n"
	       "| ENDPOINT |        ID        |    VERSION    | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX |             ERRORS             |\n"
	       "+----------+------------------+---------------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+\n"
	       "|   e.sock | 8211f1d0f64f3269 | 3.4.0-quorumd |  1.0 MB |     false |      false |         2 |          8 |                  8 |         etcdserver: no leader, |\n"
	       "|          |                  |               |         |           |            |           |            |                    |               NOSPACE, CORRUPT |\n"
	       "+----------+------------------+---------------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+\n",
	       "", 0);
	expect((const char *const[]){"--control-socket=e.sock", "endpoint", "status", NULL},
	       "e.sock, 8211f1d0f64f3269, 3.4.0-quorumd, 1.0 MB, false, false, 2, 8, 8, etcdserver: no leader, NOSPACE, "
	       "CORRUPT\n",
	       "", 0);
	expect((const char *const[]){"--control-socket=e.sock", "-w", "json", "endpoint", "status", NULL},
	       "[{\"Endpoint\":\"e.sock\",\"Status\":{\"header\":{\"cluster_id\":17237436991929493444,\"member_id\":"
	       "9372538179322589801,\"revision\":5,\"raft_term\":2},\"version\":\"3.4.0-quorumd\",\"dbSize\":1000000,"
	       "\"raftIndex\":8,\"raftTerm\":2,\"raftAppliedIndex\":8,\"errors\":[\"etcdserver: no leader\",\"NOSPACE\","
	       "\"CORRUPT\"]}}]\n",
	       "", 0);
}

static void test_kv(void)
{
	expect(ARGS("put", "foo", "bar baz"), "OK\n", "", 0);
	expect(ARGS("get", "foo"), "foo\nbar\n", "", 0);
	expect(ARGS("get", "foo", "--print-value-only"), "bar\n", "", 0);
	expect(ARGS("get", "--prefix", "foo", "--consistency=s"), "foo\nbar\nfoo2\n\n", "", 0);
	expect(ARGS("-w", "json", "get", "foo"),
	       "{\"header\":{\"cluster_id\":17237436991929493444,\"member_id\":9372538179322589801,\"revision\":5,"
	       "\"raft_term\":2},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":3,\"version\":2,"
	       "\"value\":\"YmFy\"}],\"count\":1}\n",
	       "", 0);
	expect(ARGS("del", "foo"), "1\n", "", 0);
	expect(ARGS("del", "foo", "--prefix"), "2\n", "", 0);
	expect(ARGS("get", "foo", "--consistency=x"), "", "Error: unknown consistency flag \"x\"\n", 4);
}

static void test_binary_value(void)
{
	struct run r;
	run_quorumctl(&r, ARGS("get", "bin", "--print-value-only"));
	/* The value is 00 01 02 ff: stdout holds NUL first, so compare bytes. */
	CHECK(r.code == 0 && r.out[0] == 0 && memcmp(r.out, "\x00\x01\x02\xff\n", 5) == 0, "binary value: code %d",
	      r.code);
}

static void test_errors_and_usage(void)
{
	expect(ARGS("member", "remove"), "", "Error: member ID is not provided\n", 128);
	expect(ARGS("member", "remove", "xyz"), "",
	       "Error: bad member ID arg (strconv.ParseUint: parsing \"xyz\": invalid syntax), expecting ID in Hex\n", 128);
	expect(ARGS("member", "add", "infra4"), "", "Error: member peer urls not provided\n", 128);
	expect(ARGS("member", "add"), "", "Error: member name not provided\n", 128);
	expect(ARGS("member", "add", "infra4", "http://127.0.0.1:42380"), "",
	       "Error: too many arguments, did you mean --peer-urls=http://127.0.0.1:42380\n", 128);
	expect(ARGS("put", "foo"), "", "Error: unexpected put\n", 1); /* the value comes from stdin: empty here */
	expect(ARGS("put"), "", "Error: put command needs 1 argument and input from stdin or 2 arguments\n", 128);
	expect(ARGS("frobnicate"), "", "Error: unknown command \"frobnicate\" for \"quorumctl\"\n"
	                               "Run 'quorumctl --help' for usage.\n", 1);
	expect(ARGS("member", "list", "--bogus"), "", "Error: unknown flag: --bogus\n", 1);
	expect(ARGS("member", "list", "--learner"), "", "Error: unknown flag: --learner\n", 1);
	expect(ARGS("--endpoints=127.0.0.1:2379", "member", "list"), "",
	       "Error: --endpoints is not supported until quorumd's client API exists; quorumctl talks to one node "
	       "through --control-socket (or QUORUMCTL_CONTROL_SOCKET)\n",
	       1);
	expect(ARGS("--command-timeout=300ms", "put", "slow", "x"), "", "Error: context deadline exceeded\n", 1);
	expect(ARGS("put", "foo", "bar baz", "-w", "table"), "", "Error: table not supported as output format\n", 4);
	expect((const char *const[]){"--control-socket=missing.sock", "member", "list", NULL}, "",
	       "Error: cannot connect to the control socket missing.sock: No such file or directory (is quorumd running "
	       "with --control-socket at this path?)\n",
	       1);
}

static void test_socket_selection(void)
{
	/* The environment names the socket; the flag wins over it. */
	environment_socket = "c.sock";
	expect((const char *const[]){"endpoint", "status", NULL},
	       "c.sock, 8211f1d0f64f3269, 3.4.0-quorumd, 20 kB, true, false, 2, 8, 8, \n", "", 0);
	expect((const char *const[]){"--control-socket", "e.sock", "put", "foo", "bar baz", NULL}, "OK\n", "", 0);
	environment_socket = NULL;
	/* A socket file nobody listens on (left by a dead quorumd). */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un address = {.sun_family = AF_UNIX, .sun_path = "stale.sock"};
	CHECK(bind(fd, (struct sockaddr *)&address, sizeof(address)) == 0, "bind stale.sock: %s", strerror(errno));
	close(fd);
	expect((const char *const[]){"--control-socket=stale.sock", "member", "list", NULL}, "",
	       "Error: cannot connect to the control socket stale.sock: Connection refused (is quorumd running with "
	       "--control-socket at this path?)\n",
	       1);
	unlink("stale.sock");
	expect(ARGS("-w", "yaml", "member", "list"), "",
	       "Error: unsupported output format \"yaml\" (quorumctl prints simple, table or json)\n", 4);
	expect(ARGS("get", "foo", "fop"), "foo\nbar\nfoo2\n\n", "", 0);
	expect(ARGS("get", "foo", "fop", "--prefix"), "",
	       "Error: too many arguments, only accept one argument when `--prefix` or `--from-key` is set\n", 128);
	expect(ARGS("--command-timeout", "1.5x", "member", "list"), "",
	       "Error: invalid argument \"1.5x\" for \"--command-timeout\" flag: time: invalid duration \"1.5x\"\n", 1);
}

static void test_member_replace(void)
{
	expect(ARGS("member", "replace", "8211f1d0f64f3269", "infra4", "--peer-urls=http://127.0.0.1:43380"),
	       "[1/4] Member  93bd8eb8b8ea02c added to cluster ef37ad9dc622a7c4\n"
	       "\n"
	       "ETCD_NAME=\"infra4\"\n"
	       "ETCD_INITIAL_CLUSTER=\"infra4=http://127.0.0.1:43380,infra1=http://127.0.0.1:12380,"
	       "infra2=http://127.0.0.1:22380\"\n"
	       "ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:43380\"\n"
	       "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"
	       "\n"
	       "quorumd --name infra4 --initial-advertise-peer-urls http://127.0.0.1:43380 --listen-peer-urls "
	       "http://127.0.0.1:43380 --initial-cluster infra4=http://127.0.0.1:43380,infra1=http://127.0.0.1:12380,"
	       "infra2=http://127.0.0.1:22380 --initial-cluster-state existing\n"
	       "[2/4] Waiting up to 600s for learner 93bd8eb8b8ea02c to start and catch up with the leader...\n"
	       "[2/4] ... learner not started yet; leader 8211f1d0f64f3269 at raft index 8\n"
	       "[2/4] Learner 93bd8eb8b8ea02c has started.\n"
	       "[3/4] Member  93bd8eb8b8ea02c promoted in cluster ef37ad9dc622a7c4\n"
	       "[4/4] Member 8211f1d0f64f3269 removed from cluster ef37ad9dc622a7c4\n",
	       "", 0);
	/* The old member is gone now: a second replace stops at step 1 and says nothing changed. */
	expect(ARGS("member", "replace", "8211f1d0f64f3269", "infra5", "--peer-urls=http://127.0.0.1:52380"), "",
	       "Error: etcdserver: member not found\n"
	       "member replace stopped at step 1/4 (add learner).\n"
	       "Nothing changed: 8211f1d0f64f3269 is still a member and no member was added.\n",
	       1);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH_TO_QUORUMCTL\n", argv[0]);
		return 2;
	}
	quorumctl_path = realpath(argv[1], NULL);
	if (!quorumctl_path) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(directory, sizeof(directory), "/tmp/quorumctl-test-XXXXXX");
	if (!mkdtemp(directory) || chdir(directory) != 0) {
		perror(directory);
		return 1;
	}
	pid_t server = start_canned_server("c.sock", false);
	pid_t troubled = start_canned_server("e.sock", true);
	for (int k = 0; k < 200 && (access("c.sock", F_OK) != 0 || access("e.sock", F_OK) != 0); k++)
		usleep(10000);

	test_member_list();
	test_member_changes();
	test_endpoint_and_leader();
	test_endpoint_errors();
	test_kv();
	test_binary_value();
	test_errors_and_usage();
	test_socket_selection();
	test_member_replace();

	kill(server, SIGTERM);
	kill(troubled, SIGTERM);
	waitpid(server, NULL, 0);
	waitpid(troubled, NULL, 0);
	unlink("c.sock");
	unlink("e.sock");
	if (chdir("/") == 0)
		rmdir(directory);
	free((void *)quorumctl_path);
	if (failures) {
		printf("%d check(s) failed; rerun: meson test -C BUILD control-quorumctl-output --verbose\n", failures);
		return 1;
	}
	printf("quorumctl output: all checks passed\n");
	return 0;
}
