/* tests/chaos/register_client.c: chaos-register-client, the load of the chaos tests (README.md).
 *
 * N processes (one thread each, one operation in flight each) do random puts, linearizable gets
 * (Range, serializable=false) and compare-and-sets (Txn) on a few registers (keys), each operation
 * against a member picked at random among --endpoints, and write every operation to a history file in
 * the form tests/chaos/checker/ reads:
 *
 *   PROCESS INVOKE_NS COMPLETE_NS OUTCOME OP KEY ARG1 ARG2 RESULT
 *
 * Outcomes are chosen so that the checker is never told something we do not know: `ok` only for an
 * answer the server gave, `fail` only when the server refused the request before it could reach the
 * Raft log (a learner's refusal, a malformed request), `unknown` for everything else (timeouts, a lost
 * connection, "leader changed", "request timed out", ...). After an `unknown` the thread goes on under
 * a new process number, as the checker requires (the old operation may still take effect later).
 * A request that could not even be handed to a connection (the member is down) is not an operation:
 * nothing is written and the thread tries another member.
 *
 * Every written value is unique within the run (--value-base + a counter), so a read can name the
 * write it saw. Values are decimal integers stored as the key's value bytes. */
#include "grpc_client.h"
#include "rpc.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define PATH_PUT "/etcdserverpb.KV/Put"
#define PATH_RANGE "/etcdserverpb.KV/Range"
#define PATH_TXN "/etcdserverpb.KV/Txn"
#define MAX_ENDPOINTS 64
#define MAX_KEYS 64
#define NIL_VALUE UINT64_MAX

struct endpoint {
	char url[128];
	char host[64];
	char port[16];
};

struct options {
	struct endpoint endpoints[MAX_ENDPOINTS];
	size_t endpoint_count;
	const char *history_path;
	const char *key_prefix;
	unsigned processes;
	unsigned keys;
	double duration_s;    /* 0: no time bound */
	uint64_t max_ops;     /* 0: no count bound */
	uint64_t timeout_ns;  /* per operation */
	uint64_t connect_timeout_ns;
	uint64_t seed;
	uint64_t value_base;
	unsigned read_percent, write_percent; /* the rest are compare-and-sets */
	uint64_t think_us;    /* each process pauses a random 0..2*think_us between operations */
	bool verbose;
	bool dump;
};

enum op_kind { OP_READ, OP_WRITE, OP_CAS };
enum outcome { OUTCOME_OK, OUTCOME_FAIL, OUTCOME_UNKNOWN };

struct history_line {
	uint64_t invoke_ns;
	char text[160];
};

/* One thread's in-flight call: the gcall first, so done() can find the rest. */
struct worker_call {
	struct gcall call;
	bool done;
	int status;
	char message[200];
	uint8_t *response;
	size_t response_length;
};

struct worker {
	unsigned index;
	pthread_t thread;
	uint64_t rng;
	uint64_t process;
	struct gconn *conn;
	size_t endpoint; /* index of conn's endpoint */
	struct history_line *lines;
	size_t line_count, line_capacity;
	/* counts */
	uint64_t ok, failed, unknown, reads, writes, cases, cas_true, reconnects, not_sent;
	char last_error[200];
};

static struct options options;
static _Atomic uint64_t next_process;    /* new process numbers after an unknown */
static _Atomic uint64_t next_value;      /* unique values */
static _Atomic uint64_t ops_started;     /* for --ops */
static _Atomic uint64_t last_seen[MAX_KEYS]; /* a value recently read or written per key, NIL_VALUE+... */
static volatile sig_atomic_t stop_requested;
static uint64_t deadline_ns; /* 0: none */

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t rng_next(uint64_t *state)
{
	/* splitmix64: any seed gives a good stream. */
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *state, uint64_t n)
{
	return n <= 1 ? 0 : rng_next(state) % n;
}

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: chaos-register-client --endpoints URL[,URL...] --history FILE [options]\n"
	    "  --processes N      concurrent processes, one operation in flight each (default 10)\n"
	    "  --keys N           registers (default 4, at most %d)\n"
	    "  --key-prefix P     key names are P0, P1, ... (default chaos/r)\n"
	    "  --duration S       stop starting operations after S seconds\n"
	    "  --ops N            stop after N operations were started\n"
	    "  --timeout-ms MS    per-operation timeout; no answer by then is `unknown` (default 1500)\n"
	    "  --connect-timeout-ms MS (default 300)\n"
	    "  --seed N           random choices (default 1)\n"
	    "  --think-us US      each process pauses a random 0..2*US microseconds between operations\n"
	    "                     (bounds the history's size, hence the checker's work; default 0)\n"
	    "  --value-base N     first written value (default 1000000)\n"
	    "  --read-percent P   share of reads (default 40); --write-percent P share of puts (default 30);\n"
	    "                     the rest are compare-and-sets\n"
	    "  --verbose          print every error\n"
	    "chaos-register-client --dump --endpoints URL [--keys N] [--key-prefix P]: prints every version of\n"
	    "every key (KEY MOD_REVISION VALUE, oldest first) as the member's own state has it (serializable\n"
	    "Range at each earlier revision; the chaos tests never compact or delete)\n",
	    MAX_KEYS);
}

static int parse_endpoint(const char *url, struct endpoint *e)
{
	const char *p = url;
	if (!strncmp(p, "http://", 7))
		p += 7;
	const char *colon = strrchr(p, ':');
	if (!colon || colon == p || strlen(url) >= sizeof(e->url))
		return -1;
	size_t host_length = (size_t)(colon - p);
	const char *port = colon + 1;
	size_t port_length = strcspn(port, "/");
	if (host_length >= sizeof(e->host) || port_length == 0 || port_length >= sizeof(e->port))
		return -1;
	snprintf(e->url, sizeof(e->url), "%s", url);
	memcpy(e->host, p, host_length);
	e->host[host_length] = 0;
	memcpy(e->port, port, port_length);
	e->port[port_length] = 0;
	return 0;
}

static int parse_u64(const char *text, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static int parse_options(int argc, char **argv)
{
	options.processes = 10;
	options.keys = 4;
	options.key_prefix = "chaos/r";
	options.timeout_ns = 1500ull * 1000000;
	options.connect_timeout_ns = 300ull * 1000000;
	options.seed = 1;
	options.value_base = 1000000;
	options.read_percent = 40;
	options.write_percent = 30;
	for (int i = 1; i < argc; i++) {
		const char *name = argv[i];
		if (!strcmp(name, "--help")) {
			usage(stdout);
			exit(0);
		}
		if (!strcmp(name, "--verbose")) {
			options.verbose = true;
			continue;
		}
		if (!strcmp(name, "--dump")) {
			options.dump = true;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "chaos-register-client: %s needs a value\n", name);
			return -1;
		}
		const char *value = argv[++i];
		uint64_t number = 0;
		bool numeric = parse_u64(value, &number) == 0;
		if (!strcmp(name, "--endpoints")) {
			char *copy = strdup(value);
			char *save = NULL;
			for (char *url = strtok_r(copy, ",", &save); url; url = strtok_r(NULL, ",", &save)) {
				if (options.endpoint_count == MAX_ENDPOINTS ||
				    parse_endpoint(url, &options.endpoints[options.endpoint_count]) != 0) {
					fprintf(stderr, "chaos-register-client: bad or too many endpoints: %s\n", url);
					free(copy);
					return -1;
				}
				options.endpoint_count++;
			}
			free(copy);
		} else if (!strcmp(name, "--history")) {
			options.history_path = value;
		} else if (!strcmp(name, "--key-prefix")) {
			options.key_prefix = value;
		} else if (!strcmp(name, "--duration")) {
			char *end;
			options.duration_s = strtod(value, &end);
			if (*end || options.duration_s < 0) {
				fprintf(stderr, "chaos-register-client: bad --duration %s\n", value);
				return -1;
			}
		} else if (numeric && !strcmp(name, "--processes") && number >= 1 && number <= 1000) {
			options.processes = (unsigned)number;
		} else if (numeric && !strcmp(name, "--keys") && number >= 1 && number <= MAX_KEYS) {
			options.keys = (unsigned)number;
		} else if (numeric && !strcmp(name, "--ops")) {
			options.max_ops = number;
		} else if (numeric && !strcmp(name, "--timeout-ms") && number >= 1) {
			options.timeout_ns = number * 1000000;
		} else if (numeric && !strcmp(name, "--connect-timeout-ms") && number >= 1) {
			options.connect_timeout_ns = number * 1000000;
		} else if (numeric && !strcmp(name, "--think-us")) {
			options.think_us = number;
		} else if (numeric && !strcmp(name, "--seed")) {
			options.seed = number;
		} else if (numeric && !strcmp(name, "--value-base")) {
			options.value_base = number;
		} else if (numeric && !strcmp(name, "--read-percent") && number <= 100) {
			options.read_percent = (unsigned)number;
		} else if (numeric && !strcmp(name, "--write-percent") && number <= 100) {
			options.write_percent = (unsigned)number;
		} else {
			fprintf(stderr, "chaos-register-client: unknown option or bad value: %s %s\n", name, value);
			return -1;
		}
	}
	if (options.dump && options.endpoint_count)
		return 0;
	if (!options.endpoint_count || !options.history_path) {
		usage(stderr);
		return -1;
	}
	if (options.read_percent + options.write_percent > 100) {
		fprintf(stderr, "chaos-register-client: --read-percent + --write-percent exceed 100\n");
		return -1;
	}
	if (options.duration_s == 0 && options.max_ops == 0) {
		fprintf(stderr, "chaos-register-client: give --duration or --ops (or both)\n");
		return -1;
	}
	return 0;
}

/* ---- history ---- */

static void add_line(struct worker *w, uint64_t invoke_ns, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_line(struct worker *w, uint64_t invoke_ns, const char *fmt, ...)
{
	if (w->line_count == w->line_capacity) {
		w->line_capacity = w->line_capacity ? w->line_capacity * 2 : 1024;
		w->lines = realloc(w->lines, w->line_capacity * sizeof(*w->lines));
		if (!w->lines) {
			fprintf(stderr, "chaos-register-client: out of memory for the history\n");
			abort();
		}
	}
	struct history_line *line = &w->lines[w->line_count++];
	line->invoke_ns = invoke_ns;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line->text, sizeof(line->text), fmt, ap);
	va_end(ap);
}

static int compare_lines(const void *a, const void *b)
{
	const struct history_line *x = a, *y = b;
	return x->invoke_ns < y->invoke_ns ? -1 : x->invoke_ns > y->invoke_ns;
}

static void format_value(char *out, size_t size, uint64_t value)
{
	if (value == NIL_VALUE)
		snprintf(out, size, "nil");
	else
		snprintf(out, size, "%" PRIu64, value);
}

/* ---- one call ---- */

static void call_done(struct gcall *call, int status, const char *message, const uint8_t *response, size_t length)
{
	struct worker_call *c = (struct worker_call *)call;
	c->done = true;
	c->status = status;
	snprintf(c->message, sizeof(c->message), "%s", message ? message : "");
	free(c->response);
	c->response = NULL;
	c->response_length = 0;
	if (status == GRPC_OK && length) {
		c->response = malloc(length);
		if (!c->response)
			abort();
		memcpy(c->response, response, length);
		c->response_length = length;
	}
}

static void drop_connection(struct worker *w)
{
	if (w->conn) {
		gconn_close(w->conn);
		w->conn = NULL;
	}
}

/* Opens a connection to a random member. False if none answered (then waits a little: bounded by the
 * caller's loop, the members may all be down for a while). */
static bool ensure_connection(struct worker *w)
{
	if (w->conn && gconn_alive(w->conn))
		return true;
	drop_connection(w);
	size_t pick = (size_t)rng_below(&w->rng, options.endpoint_count);
	const struct endpoint *e = &options.endpoints[pick];
	char error[200];
	w->conn = gconn_open(e->host, e->port, options.connect_timeout_ns, error, sizeof(error));
	if (!w->conn) {
		snprintf(w->last_error, sizeof(w->last_error), "%s", error);
		struct timespec pause = {0, 20 * 1000 * 1000}; /* not a wait for a condition: a retry pace */
		nanosleep(&pause, NULL);
		return false;
	}
	w->endpoint = pick;
	w->reconnects++;
	return true;
}

/* Runs one call on w->conn until it is answered or the per-operation deadline passes (then cancels
 * it: the caller sees status CANCELLED with *timed_out). Returns false if the request could not be
 * handed to the connection at all (not sent). */
static bool run_call(struct worker *w, struct worker_call *c, const char *path, const uint8_t *request,
    size_t length, uint64_t deadline, bool *timed_out)
{
	*timed_out = false;
	c->done = false;
	c->call.done = call_done;
	if (gconn_start_call(w->conn, &c->call, path, request, length) != 0)
		return false;
	gconn_flush(w->conn);
	while (!c->done) {
		uint64_t now = mono_ns();
		if (now >= deadline) {
			*timed_out = true;
			gconn_cancel(w->conn, &c->call, GRPC_DEADLINE_EXCEEDED, "no answer within --timeout-ms");
			gconn_flush(w->conn);
			break;
		}
		struct pollfd pfd = {.fd = gconn_fd(w->conn),
		    .events = POLLIN | (gconn_wants_write(w->conn) ? POLLOUT : 0)};
		uint64_t wait_ms = (deadline - now) / 1000000 + 1;
		int n = poll(&pfd, 1, (int)(wait_ms > 100 ? 100 : wait_ms));
		if (n > 0) {
			uint32_t events = 0;
			if (pfd.revents & POLLIN)
				events |= EPOLLIN;
			if (pfd.revents & POLLOUT)
				events |= EPOLLOUT;
			if (pfd.revents & (POLLERR | POLLHUP))
				events |= EPOLLERR;
			gconn_on_event(w->conn, events);
		}
		gconn_flush(w->conn);
	}
	if (!c->done) {
		/* The cancel did not finish it (connection state): closing fails every call in flight. */
		drop_connection(w);
	}
	return true;
}

/* The value of a Range answer's only kv; NIL_VALUE for no kv. -1 on a malformed answer. */
static int value_of(const uint8_t *data, size_t length, uint64_t *value, char *err, size_t errlen)
{
	char text[32];
	if (length == 0 || length >= sizeof(text)) {
		snprintf(err, errlen, "value of %zu bytes is not one of ours", length);
		return -1;
	}
	memcpy(text, data, length);
	text[length] = 0;
	if (parse_u64(text, value) != 0) {
		snprintf(err, errlen, "value '%s' is not one of ours", text);
		return -1;
	}
	return 0;
}

/* Does the server's refusal mean the request never reached the Raft log? Only answers given before a
 * proposal is made: a learner serves no KV requests; a malformed request is refused on arrival. */
static bool certainly_not_applied(int status, const char *message)
{
	if (status == GRPC_INVALID_ARGUMENT || status == GRPC_UNIMPLEMENTED || status == GRPC_PERMISSION_DENIED ||
	    status == GRPC_UNAUTHENTICATED)
		return true;
	return strstr(message, "rpc not supported for learner") != NULL;
}

/* ---- the process loop ---- */

static bool should_stop(void)
{
	if (stop_requested)
		return true;
	return deadline_ns && mono_ns() >= deadline_ns;
}

static void one_operation(struct worker *w, uint8_t *buffer, size_t buffer_size)
{
	if (!ensure_connection(w))
		return;
	unsigned key_index = (unsigned)rng_below(&w->rng, options.keys);
	char key[96];
	snprintf(key, sizeof(key), "%s%u", options.key_prefix, key_index);
	unsigned roll = (unsigned)rng_below(&w->rng, 100);
	enum op_kind kind = roll < options.read_percent                          ? OP_READ
	                    : roll < options.read_percent + options.write_percent ? OP_WRITE
	                                                                          : OP_CAS;
	uint64_t new_value = 0, expected = NIL_VALUE;
	char new_text[32], expected_text[32];
	const char *path;
	size_t length;
	Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__Compare compare = ETCDSERVERPB__COMPARE__INIT;
	Etcdserverpb__RequestOp then_op = ETCDSERVERPB__REQUEST_OP__INIT;
	Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
	Etcdserverpb__Compare *compares[1] = {&compare};
	Etcdserverpb__RequestOp *thens[1] = {&then_op};
	ProtobufCMessage *message;
	if (kind == OP_READ) {
		range.key.data = (uint8_t *)key;
		range.key.len = strlen(key);
		range.serializable = false; /* linearizable */
		path = PATH_RANGE;
		message = &range.base;
	} else {
		new_value = options.value_base + atomic_fetch_add(&next_value, 1);
		snprintf(new_text, sizeof(new_text), "%" PRIu64, new_value);
		put.key.data = (uint8_t *)key;
		put.key.len = strlen(key);
		put.value.data = (uint8_t *)new_text;
		put.value.len = strlen(new_text);
		if (kind == OP_WRITE) {
			path = PATH_PUT;
			message = &put.base;
		} else {
			/* Expect the value last seen for the key most of the time (so many cas succeed), sometimes
			 * nil (which succeeds only before the first write), sometimes a stale one. */
			uint64_t seen = atomic_load(&last_seen[key_index]);
			unsigned choice = (unsigned)rng_below(&w->rng, 10);
			expected = choice == 0 ? NIL_VALUE : seen;
			if (expected == NIL_VALUE) {
				/* nil: the key does not exist, i.e. its create_revision is 0. */
				compare.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
				compare.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
				compare.create_revision = 0;
			} else {
				format_value(expected_text, sizeof(expected_text), expected);
				compare.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
				compare.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
				compare.value.data = (uint8_t *)expected_text;
				compare.value.len = strlen(expected_text);
			}
			compare.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
			compare.key.data = (uint8_t *)key;
			compare.key.len = strlen(key);
			then_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
			then_op.request_put = &put;
			txn.n_compare = 1;
			txn.compare = compares;
			txn.n_success = 1;
			txn.success = thens;
			path = PATH_TXN;
			message = &txn.base;
		}
	}
	length = protobuf_c_message_get_packed_size(message);
	if (length > buffer_size) {
		fprintf(stderr, "chaos-register-client: request of %zu bytes\n", length);
		abort();
	}
	protobuf_c_message_pack(message, buffer);

	if (options.max_ops && atomic_fetch_add(&ops_started, 1) >= options.max_ops) {
		stop_requested = 1; /* the budget is spent: every thread stops */
		return;
	}
	struct worker_call call = {0};
	uint64_t invoke = mono_ns();
	bool timed_out;
	if (!run_call(w, &call, path, buffer, length, invoke + options.timeout_ns, &timed_out)) {
		/* Not handed to the connection: never sent, so it is no operation at all. */
		snprintf(w->last_error, sizeof(w->last_error), "%s", gconn_error(w->conn));
		w->not_sent++;
		drop_connection(w);
		gcall_free(&call.call);
		return;
	}
	uint64_t complete = mono_ns();
	enum outcome outcome;
	char result[32] = "-";
	if (call.status == GRPC_OK) {
		outcome = OUTCOME_OK;
		char error[120] = "";
		if (kind == OP_READ) {
			Etcdserverpb__RangeResponse *r = etcdserverpb__range_response__unpack(NULL, call.response_length,
			    call.response);
			uint64_t value = NIL_VALUE;
			if (!r)
				snprintf(error, sizeof(error), "unreadable RangeResponse");
			else if (r->n_kvs > 1)
				snprintf(error, sizeof(error), "%zu kvs for one key", r->n_kvs);
			else if (r->n_kvs == 1)
				value_of(r->kvs[0]->value.data, r->kvs[0]->value.len, &value, error, sizeof(error));
			if (r)
				etcdserverpb__range_response__free_unpacked(r, NULL);
			if (!error[0]) {
				format_value(result, sizeof(result), value);
				if (value != NIL_VALUE)
					atomic_store(&last_seen[key_index], value);
			}
		} else if (kind == OP_CAS) {
			Etcdserverpb__TxnResponse *r = etcdserverpb__txn_response__unpack(NULL, call.response_length,
			    call.response);
			if (!r) {
				snprintf(error, sizeof(error), "unreadable TxnResponse");
			} else {
				snprintf(result, sizeof(result), "%s", r->succeeded ? "true" : "false");
				if (r->succeeded) {
					w->cas_true++;
					atomic_store(&last_seen[key_index], new_value);
				}
				etcdserverpb__txn_response__free_unpacked(r, NULL);
			}
		} else {
			atomic_store(&last_seen[key_index], new_value);
		}
		if (error[0]) {
			/* An answer we cannot read says nothing about the effect: unknown, and loudly. */
			fprintf(stderr, "chaos-register-client: process %" PRIu64 ": %s\n", w->process, error);
			outcome = OUTCOME_UNKNOWN;
			snprintf(result, sizeof(result), "-");
		}
	} else if (!timed_out && certainly_not_applied(call.status, call.message)) {
		outcome = OUTCOME_FAIL;
	} else {
		outcome = OUTCOME_UNKNOWN;
	}
	if (call.status != GRPC_OK) {
		snprintf(w->last_error, sizeof(w->last_error), "%.100s %s: %.80s", options.endpoints[w->endpoint].url,
		    grpc_status_name(call.status), call.message);
		if (options.verbose)
			fprintf(stderr, "chaos-register-client: process %" PRIu64 ": %s\n", w->process, w->last_error);
	}
	if (kind == OP_READ && outcome == OUTCOME_FAIL)
		snprintf(result, sizeof(result), "-");

	static const char *const outcome_names[] = {"ok", "fail", "unknown"};
	const char *name = outcome_names[outcome];
	char new_column[32];
	format_value(new_column, sizeof(new_column), new_value);
	switch (kind) {
	case OP_READ:
		w->reads++;
		add_line(w, invoke, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %s read %s - - %s", w->process, invoke, complete,
		    name, key, result);
		break;
	case OP_WRITE:
		w->writes++;
		add_line(w, invoke, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %s write %s %s - -", w->process, invoke,
		    complete, name, key, new_column);
		break;
	case OP_CAS:
		w->cases++;
		format_value(expected_text, sizeof(expected_text), expected);
		add_line(w, invoke, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %s cas %s %s %s %s", w->process, invoke,
		    complete, name, key, expected_text, new_column, outcome == OUTCOME_OK ? result : "-");
		break;
	}
	if (outcome == OUTCOME_OK)
		w->ok++;
	else if (outcome == OUTCOME_FAIL)
		w->failed++;
	else
		w->unknown++;
	if (outcome == OUTCOME_UNKNOWN)
		w->process = atomic_fetch_add(&next_process, 1);
	free(call.response);
	gcall_free(&call.call);
	/* After any error, or now and then anyway, go to another member: every member serves clients. */
	if (call.status != GRPC_OK || rng_below(&w->rng, 5) == 0 || (w->conn && !gconn_alive(w->conn)))
		drop_connection(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t buffer[1024];
	while (!should_stop()) {
		one_operation(w, buffer, sizeof(buffer));
		if (options.think_us) {
			/* A pace, not a wait for a condition: it spreads the operations out in time. */
			uint64_t us = rng_below(&w->rng, 2 * options.think_us + 1);
			struct timespec pause = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
			nanosleep(&pause, NULL);
		}
	}
	drop_connection(w);
	return NULL;
}

/* One serializable Range of key at revision (0: the latest) on the first endpoint. 1 with the kv's
 * mod_revision and value, 0 when the key did not exist then, -1 on an error (printed). */
static int dump_range(const char *key, int64_t revision, int64_t *mod_revision, char *value, size_t value_size)
{
	Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
	range.key.data = (uint8_t *)key;
	range.key.len = strlen(key);
	range.revision = revision;
	range.serializable = true; /* the member's own state, which is what is compared */
	uint8_t request[256];
	size_t length = etcdserverpb__range_request__pack(&range, request);
	/* One connection for the whole dump (thousands of Ranges), opened again if it breaks. */
	static struct worker dumper;
	const struct endpoint *e = &options.endpoints[0];
	struct worker_call call = {0};
	bool timed_out = false, sent = false;
	for (int attempt = 0; attempt < 3 && !sent; attempt++) {
		if (!dumper.conn || !gconn_alive(dumper.conn)) {
			drop_connection(&dumper);
			char error[200];
			dumper.conn = gconn_open(e->host, e->port, 5ull * 1000000000, error, sizeof(error));
			if (!dumper.conn) {
				fprintf(stderr, "chaos-register-client: %s: %s\n", e->url, error);
				return -1;
			}
		}
		sent = run_call(&dumper, &call, PATH_RANGE, request, length, mono_ns() + 10ull * 1000000000, &timed_out);
		if (!sent)
			drop_connection(&dumper);
	}
	int status = sent ? call.status : GRPC_UNAVAILABLE;
	uint8_t *response = call.response;
	size_t response_length = call.response_length;
	gcall_free(&call.call);
	if (status != GRPC_OK) {
		fprintf(stderr, "chaos-register-client: Range %s at revision %" PRId64 " on %s: %s: %s\n", key, revision,
		    e->url, grpc_status_name(status), sent ? call.message : "not sent");
		free(response);
		return -1;
	}
	Etcdserverpb__RangeResponse *r = etcdserverpb__range_response__unpack(NULL, response_length, response);
	free(response);
	if (!r || r->n_kvs > 1) {
		fprintf(stderr, "chaos-register-client: bad RangeResponse for %s at revision %" PRId64 "\n", key, revision);
		if (r)
			etcdserverpb__range_response__free_unpacked(r, NULL);
		return -1;
	}
	int found = 0;
	if (r->n_kvs == 1) {
		found = 1;
		*mod_revision = r->kvs[0]->mod_revision;
		size_t n = r->kvs[0]->value.len < value_size - 1 ? r->kvs[0]->value.len : value_size - 1;
		memcpy(value, r->kvs[0]->value.data, n);
		value[n] = 0;
	}
	etcdserverpb__range_response__free_unpacked(r, NULL);
	return found;
}

/* --dump: every version of every key, walking back from the latest one revision before each. */
static int dump_keys(void)
{
	int rc = 0;
	for (unsigned k = 0; k < options.keys && rc == 0; k++) {
		char key[96];
		snprintf(key, sizeof(key), "%s%u", options.key_prefix, k);
		size_t count = 0, capacity = 0;
		struct version {
			int64_t revision;
			char value[64];
		} *versions = NULL;
		int64_t revision = 0;
		for (;;) {
			int64_t mod_revision = 0;
			char value[64];
			int found = dump_range(key, revision, &mod_revision, value, sizeof(value));
			if (found < 0) {
				rc = 1;
				break;
			}
			if (found == 0)
				break;
			if (revision != 0 && mod_revision > revision) {
				fprintf(stderr, "chaos-register-client: %s at revision %" PRId64 " has mod_revision %" PRId64 "\n",
				    key, revision, mod_revision);
				rc = 1;
				break;
			}
			if (count == capacity) {
				capacity = capacity ? capacity * 2 : 256;
				versions = realloc(versions, capacity * sizeof(*versions));
				if (!versions)
					abort();
			}
			versions[count].revision = mod_revision;
			snprintf(versions[count].value, sizeof(versions[count].value), "%s", value);
			count++;
			if (mod_revision <= 1)
				break;
			revision = mod_revision - 1;
		}
		for (size_t i = count; i-- > 0;)
			printf("%s %" PRId64 " %s\n", key, versions[i].revision, versions[i].value);
		free(versions);
	}
	return rc;
}

int main(int argc, char **argv)
{
	if (parse_options(argc, argv) != 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	if (options.dump)
		return dump_keys();
	struct sigaction sa = {0};
	sa.sa_handler = on_stop_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	FILE *history = fopen(options.history_path, "w");
	if (!history) {
		fprintf(stderr, "chaos-register-client: %s: %s\n", options.history_path, strerror(errno));
		return 2;
	}
	for (unsigned k = 0; k < MAX_KEYS; k++)
		atomic_store(&last_seen[k], NIL_VALUE);
	atomic_store(&next_process, options.processes);
	uint64_t start = mono_ns();
	if (options.duration_s > 0)
		deadline_ns = start + (uint64_t)(options.duration_s * 1e9);
	struct worker *workers = calloc(options.processes, sizeof(*workers));
	if (!workers)
		return 2;
	for (unsigned i = 0; i < options.processes; i++) {
		workers[i].index = i;
		workers[i].process = i;
		workers[i].rng = options.seed * 0x100000001b3ull + i;
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
			fprintf(stderr, "chaos-register-client: pthread_create failed\n");
			return 2;
		}
	}
	uint64_t ok = 0, failed = 0, unknown = 0, reads = 0, writes = 0, cases = 0, cas_true = 0, reconnects = 0,
	         not_sent = 0;
	size_t total_lines = 0;
	for (unsigned i = 0; i < options.processes; i++) {
		pthread_join(workers[i].thread, NULL);
		struct worker *w = &workers[i];
		ok += w->ok;
		failed += w->failed;
		unknown += w->unknown;
		reads += w->reads;
		writes += w->writes;
		cases += w->cases;
		cas_true += w->cas_true;
		reconnects += w->reconnects;
		not_sent += w->not_sent;
		total_lines += w->line_count;
	}
	/* One file ordered by invocation time (the checker does not need it; a reader does). */
	struct history_line *all = malloc((total_lines ? total_lines : 1) * sizeof(*all));
	if (!all)
		return 2;
	size_t n = 0;
	for (unsigned i = 0; i < options.processes; i++) {
		memcpy(all + n, workers[i].lines, workers[i].line_count * sizeof(*all));
		n += workers[i].line_count;
	}
	qsort(all, n, sizeof(*all), compare_lines);
	for (size_t i = 0; i < n; i++)
		fprintf(history, "%s\n", all[i].text);
	if (fclose(history) != 0) {
		fprintf(stderr, "chaos-register-client: writing %s: %s\n", options.history_path, strerror(errno));
		return 2;
	}
	double seconds = (double)(mono_ns() - start) / 1e9;
	printf("chaos-register-client: %zu operations in %.1f s: ok %" PRIu64 " fail %" PRIu64 " unknown %" PRIu64
	       " (reads %" PRIu64 ", writes %" PRIu64 ", cas %" PRIu64 " of which %" PRIu64
	       " swapped); connections %" PRIu64 ", requests not sent %" PRIu64 "\n",
	    n, seconds, ok, failed, unknown, reads, writes, cases, cas_true, reconnects, not_sent);
	printf("summary ops=%zu ok=%" PRIu64 " fail=%" PRIu64 " unknown=%" PRIu64 "\n", n, ok, failed, unknown);
	for (unsigned i = 0; i < options.processes; i++)
		if (workers[i].last_error[0] && options.verbose)
			printf("process thread %u last error: %s\n", i, workers[i].last_error);
	for (unsigned i = 0; i < options.processes; i++)
		free(workers[i].lines);
	free(workers);
	free(all);
	/* No operation at all means the cluster never served: the harness must notice. */
	return ok > 0 ? 0 : 1;
}
