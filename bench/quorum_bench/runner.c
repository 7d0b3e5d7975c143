/* bench/quorum_bench/runner.c: the event-loop threads that drive the clients (see runner.h).
 *
 * Each thread owns its connections, their clients, a workload_thread and its own bench_results; it
 * shares only the issued-request counter (--total), the stop flag (SIGINT) and relaxed progress
 * counters the main thread prints once a second. One loop turn: issue a request for every idle client
 * that may send, flush the connections that have output, sleep in epoll until input, the next due
 * request (open loop), the deadline or the 100 ms tick (per-request timeouts, reconnects). */
#include "runner.h"

#include "grpc_client.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS 100000000ull
#define RECONNECT_DELAY_NS 200000000ull

struct bench_thread;
struct bench_conn;

struct bench_client {
	struct gcall call; /* first: the done callback gets &call */
	struct bench_thread *thread;
	struct bench_conn *conn;
	struct workload_client wl;
	enum op_kind kind;
	bool busy;
	uint64_t start_ns; /* latency origin: send time, or the intended time in open loop */
	uint64_t sent_ns;  /* for the timeout */
};

struct bench_conn {
	struct gconn *g; /* NULL while down */
	const struct bench_endpoint *endpoint;
	struct bench_thread *thread;
	uint32_t epoll_events; /* registered interest */
	bool dirty;
	uint64_t down_since, retry_at;
	char last_error[200];
	struct bench_client **parked; /* idle clients waiting for the connection to come back */
	size_t parked_count;
};

struct bench_run;

struct bench_thread {
	struct bench_run *run;
	unsigned index;
	pthread_t tid;
	int epfd;
	struct bench_conn **conns;
	size_t conn_count;
	struct bench_client **clients;
	size_t client_count;
	struct bench_client **idle; /* stack */
	size_t idle_count;
	struct bench_conn **dirty;
	size_t dirty_count;
	size_t in_flight;
	struct workload_thread wl;
	struct bench_results *results;
	double rate;        /* requests/s of this thread, 0 = closed loop */
	uint64_t phase_ns;  /* open loop: this thread's schedule offset */
	uint64_t issued;
	bool exhausted;     /* will issue no more */
	uint64_t last_reply_ns;
	uint64_t next_tick_ns;
	_Atomic uint64_t progress_ok, progress_failed, progress_in_flight;
};

struct bench_run {
	const struct bench_config *cfg;
	struct workload_shared shared;
	struct bench_thread *threads;
	struct bench_conn *conns;
	struct bench_client *clients;
	_Atomic uint64_t issued;
	uint64_t start_ns, deadline_ns;
	_Atomic unsigned threads_done;
};

static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig)
{
	(void)sig;
	stop_requested = 1;
	signal(SIGINT, SIG_DFL); /* a second ^C ends at once */
}

/* ---- results ---- */

void bench_results_init(struct bench_results *r)
{
	memset(r, 0, sizeof(*r));
	hist_init(&r->all);
	for (int k = 0; k < OP_KINDS; k++)
		hist_init(&r->by_kind[k]);
}

void bench_results_add_error(struct bench_results *r, int code, const char *message, uint64_t count)
{
	r->failed += count;
	r->by_code[code >= 0 && code < BENCH_STATUS_CODES ? code : BENCH_STATUS_CODES] += count;
	for (size_t i = 0; i < r->error_kind_count; i++)
		if (r->errors[i].code == code && !strcmp(r->errors[i].message, message)) {
			r->errors[i].count += count;
			return;
		}
	if (r->error_kind_count == BENCH_ERROR_KINDS) {
		r->other_messages += count;
		return;
	}
	struct bench_error_kind *e = &r->errors[r->error_kind_count++];
	e->code = code;
	snprintf(e->message, sizeof(e->message), "%s", message);
	e->count = count;
}

void bench_results_merge(struct bench_results *dst, const struct bench_results *src)
{
	hist_merge(&dst->all, &src->all);
	for (int k = 0; k < OP_KINDS; k++) {
		hist_merge(&dst->by_kind[k], &src->by_kind[k]);
		dst->ok_by_kind[k] += src->ok_by_kind[k];
	}
	dst->issued += src->issued;
	dst->ok += src->ok;
	for (size_t i = 0; i < src->error_kind_count; i++)
		bench_results_add_error(dst, src->errors[i].code, src->errors[i].message, src->errors[i].count);
	/* add_error counted failed and by_code for the kept kinds; the overflow is added as is. */
	dst->other_messages += src->other_messages;
	dst->failed += src->other_messages;
	uint64_t kept[BENCH_STATUS_CODES + 1] = {0};
	for (size_t i = 0; i < src->error_kind_count; i++) {
		int c = src->errors[i].code;
		kept[c >= 0 && c < BENCH_STATUS_CODES ? c : BENCH_STATUS_CODES] += src->errors[i].count;
	}
	for (int c = 0; c <= BENCH_STATUS_CODES; c++)
		dst->by_code[c] += src->by_code[c] - kept[c];
	dst->txn_succeeded += src->txn_succeeded;
	dst->txn_failed += src->txn_failed;
	dst->reconnects += src->reconnects;
	if (!dst->gave_up[0] && src->gave_up[0])
		snprintf(dst->gave_up, sizeof(dst->gave_up), "%s", src->gave_up);
}

/* ---- one thread ---- */

static void mark_dirty(struct bench_thread *t, struct bench_conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		t->dirty[t->dirty_count++] = c;
	}
}

static void push_idle(struct bench_thread *t, struct bench_client *client)
{
	t->idle[t->idle_count++] = client;
}

static void client_done(struct gcall *call, int status, const char *message, const uint8_t *reply, size_t length)
{
	struct bench_client *client = (struct bench_client *)call;
	struct bench_thread *t = client->thread;
	struct bench_results *r = t->results;
	uint64_t now = mono_ns();
	char error[160];
	if (status == 0 && workload_reply(&t->wl, &client->wl, client->kind, reply, length, error, sizeof(error)) != 0) {
		status = 13; /* INTERNAL */
		message = error;
	}
	if (status == 0) {
		uint64_t latency = now > client->start_ns ? now - client->start_ns : 0;
		hist_record(&r->all, latency);
		hist_record(&r->by_kind[client->kind], latency);
		r->ok++;
		r->ok_by_kind[client->kind]++;
		atomic_store_explicit(&t->progress_ok, r->ok, memory_order_relaxed);
	} else {
		bench_results_add_error(r, status, message, 1);
		atomic_store_explicit(&t->progress_failed, r->failed, memory_order_relaxed);
	}
	t->last_reply_ns = now;
	client->busy = false;
	t->in_flight--;
	push_idle(t, client);
}

/* May this thread send another request now? Sets *origin to the latency origin. */
static bool may_issue(struct bench_thread *t, uint64_t now, uint64_t *origin)
{
	struct bench_run *run = t->run;
	const struct bench_config *cfg = run->cfg;
	if (t->exhausted)
		return false;
	if (stop_requested || (cfg->duration_ns && now >= run->deadline_ns)) {
		t->exhausted = true;
		return false;
	}
	if (t->rate > 0) {
		uint64_t due = run->start_ns + t->phase_ns + (uint64_t)((double)t->issued * 1e9 / t->rate);
		if (due > now)
			return false;
		*origin = due;
	} else {
		*origin = now;
	}
	if (cfg->total && atomic_fetch_add_explicit(&run->issued, 1, memory_order_relaxed) >= cfg->total) {
		t->exhausted = true;
		return false;
	}
	t->issued++;
	return true;
}

static void issue_idle(struct bench_thread *t, uint64_t now)
{
	while (t->idle_count > 0) {
		struct bench_client *client = t->idle[t->idle_count - 1];
		struct bench_conn *c = client->conn;
		if (!c->g || !gconn_alive(c->g)) {
			/* Down: the client waits for the reconnect (tick); flush_dirty retires a dead gconn. */
			t->idle_count--;
			c->parked[c->parked_count++] = client;
			if (c->g)
				mark_dirty(t, c);
			continue;
		}
		uint64_t origin;
		if (!may_issue(t, now, &origin))
			return;
		t->idle_count--;
		const char *path;
		const uint8_t *message;
		size_t length;
		t->results->issued++;
		if (workload_next(&t->wl, &client->wl, &path, &message, &length, &client->kind) != 0) {
			bench_results_add_error(t->results, 8, "out of memory building the request", 1);
			push_idle(t, client);
			return;
		}
		client->start_ns = origin;
		client->sent_ns = now;
		if (gconn_start_call(c->g, &client->call, path, message, length) != 0) {
			bench_results_add_error(t->results, 14, gconn_error(c->g), 1);
			c->parked[c->parked_count++] = client;
			mark_dirty(t, c); /* the flush retires the dead connection */
			continue;
		}
		client->busy = true;
		t->in_flight++;
		mark_dirty(t, c);
	}
}

static void conn_down(struct bench_thread *t, struct bench_conn *c, uint64_t now)
{
	snprintf(c->last_error, sizeof(c->last_error), "%s", gconn_error(c->g));
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, gconn_fd(c->g), NULL);
	gconn_close(c->g); /* every call in flight already had its done() */
	c->g = NULL;
	c->epoll_events = 0;
	c->down_since = now;
	c->retry_at = now + RECONNECT_DELAY_NS;
}

static void flush_dirty(struct bench_thread *t, uint64_t now)
{
	for (size_t i = 0; i < t->dirty_count; i++) {
		struct bench_conn *c = t->dirty[i];
		c->dirty = false;
		if (!c->g)
			continue;
		gconn_flush(c->g);
		if (!gconn_alive(c->g)) {
			conn_down(t, c, now);
			continue;
		}
		uint32_t want = EPOLLIN | (gconn_wants_write(c->g) ? EPOLLOUT : 0);
		if (want != c->epoll_events) {
			struct epoll_event ev = {.events = want, .data.ptr = c};
			epoll_ctl(t->epfd, EPOLL_CTL_MOD, gconn_fd(c->g), &ev);
			c->epoll_events = want;
		}
	}
	t->dirty_count = 0;
}

static int conn_register(struct bench_thread *t, struct bench_conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	c->epoll_events = EPOLLIN;
	return epoll_ctl(t->epfd, EPOLL_CTL_ADD, gconn_fd(c->g), &ev);
}

static void tick(struct bench_thread *t, uint64_t now)
{
	const struct bench_config *cfg = t->run->cfg;
	for (size_t i = 0; i < t->client_count; i++) {
		struct bench_client *client = t->clients[i];
		if (client->busy && now - client->sent_ns > cfg->timeout_ns && client->conn->g) {
			gconn_cancel(client->conn->g, &client->call, 4, "no reply within --timeout (quorum-bench)");
			mark_dirty(t, client->conn);
		}
	}
	for (size_t i = 0; i < t->conn_count; i++) {
		struct bench_conn *c = t->conns[i];
		if (c->g || now < c->retry_at || t->exhausted)
			continue;
		char error[200];
		uint64_t dial = cfg->dial_timeout_ns < 1000000000ull ? cfg->dial_timeout_ns : 1000000000ull;
		c->g = gconn_open_tls(c->endpoint->host, c->endpoint->port, c->endpoint->tls ? cfg->tls : NULL, dial, error,
		    sizeof(error));
		if (!c->g) {
			snprintf(c->last_error, sizeof(c->last_error), "%s", error);
			c->retry_at = now + RECONNECT_DELAY_NS;
			if (now - c->down_since > cfg->timeout_ns) {
				snprintf(t->results->gave_up, sizeof(t->results->gave_up),
				    "%s down for longer than --timeout: %s", c->endpoint->url, c->last_error);
				t->exhausted = true;
			}
			continue;
		}
		t->results->reconnects++;
		conn_register(t, c);
		while (c->parked_count)
			push_idle(t, c->parked[--c->parked_count]);
	}
}

/* epoll_pwait2 (Linux 5.11) sleeps to the nanosecond, which the open-loop schedule wants; where it is
 * missing (older kernels, valgrind) epoll_wait rounds the timeout up to the next millisecond. */
static int wait_events(int epfd, struct epoll_event *events, int count, uint64_t wait_ns)
{
	static atomic_bool no_pwait2;
	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000u), .tv_nsec = (long)(wait_ns % 1000000000u)};
		int n = epoll_pwait2(epfd, events, count, &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
	}
	return epoll_wait(epfd, events, count, (int)((wait_ns + 999999) / 1000000));
}

static void *thread_main(void *arg)
{
	struct bench_thread *t = arg;
	struct bench_run *run = t->run;
	const struct bench_config *cfg = run->cfg;
	struct epoll_event events[256];
	t->next_tick_ns = run->start_ns + TICK_NS;
	for (;;) {
		uint64_t now = mono_ns();
		issue_idle(t, now);
		flush_dirty(t, now);
		atomic_store_explicit(&t->progress_in_flight, t->in_flight, memory_order_relaxed);
		if (t->in_flight == 0) {
			if (t->exhausted || stop_requested || (cfg->duration_ns && now >= run->deadline_ns))
				break;
		}
		uint64_t wake = t->next_tick_ns;
		if (t->rate > 0 && t->idle_count > 0 && !t->exhausted) {
			uint64_t due = run->start_ns + t->phase_ns + (uint64_t)((double)t->issued * 1e9 / t->rate);
			if (due < wake)
				wake = due;
		}
		if (cfg->duration_ns && now < run->deadline_ns && run->deadline_ns < wake)
			wake = run->deadline_ns;
		uint64_t wait = wake > now ? wake - now : 0;
		int n = wait_events(t->epfd, events, (int)(sizeof(events) / sizeof(events[0])), wait);
		if (n < 0 && errno != EINTR) {
			snprintf(t->results->gave_up, sizeof(t->results->gave_up), "epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct bench_conn *c = events[i].data.ptr;
			if (!c->g)
				continue;
			gconn_on_event(c->g, events[i].events);
			mark_dirty(t, c);
		}
		now = mono_ns();
		if (now >= t->next_tick_ns) {
			tick(t, now);
			t->next_tick_ns = now + TICK_NS;
		}
	}
	atomic_fetch_add(&run->threads_done, 1);
	return NULL;
}

/* ---- the run ---- */

static double timeval_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void print_progress(struct bench_run *run, uint64_t now, uint64_t *last_ok, uint64_t *last_ns)
{
	const struct bench_config *cfg = run->cfg;
	uint64_t ok = 0, failed = 0, in_flight = 0;
	for (unsigned i = 0; i < cfg->threads; i++) {
		ok += atomic_load_explicit(&run->threads[i].progress_ok, memory_order_relaxed);
		failed += atomic_load_explicit(&run->threads[i].progress_failed, memory_order_relaxed);
		in_flight += atomic_load_explicit(&run->threads[i].progress_in_flight, memory_order_relaxed);
	}
	double elapsed = (double)(now - run->start_ns) / 1e9;
	double window = (double)(now - *last_ns) / 1e9;
	double recent = window > 0 ? (double)(ok - *last_ok) / window : 0;
	char goal[64] = "";
	if (cfg->total)
		snprintf(goal, sizeof(goal), " of %llu", (unsigned long long)cfg->total);
	else
		snprintf(goal, sizeof(goal), " (%.0fs of %.0fs)", elapsed, (double)cfg->duration_ns / 1e9);
	fprintf(stderr, "quorum-bench: %6.1fs  %llu ok%s  %llu failed  %.0f/s now  %.0f/s average  %llu in flight\n",
	    elapsed, (unsigned long long)ok, goal, (unsigned long long)failed, recent,
	    elapsed > 0 ? (double)ok / elapsed : 0.0, (unsigned long long)in_flight);
	*last_ok = ok;
	*last_ns = now;
}

int bench_run(const struct bench_config *cfg, const struct bench_endpoint *endpoints, size_t endpoint_count,
    struct bench_results *results, char *err, size_t errlen)
{
	int rc = -1;
	struct bench_run run;
	memset(&run, 0, sizeof(run));
	run.cfg = cfg;
	bench_results_init(results);
	if (workload_prepare(&run.shared, cfg, err, errlen) != 0)
		return -1;
	unsigned nthreads = cfg->threads, nconns = cfg->conns, nclients = cfg->clients;
	run.threads = calloc(nthreads, sizeof(*run.threads));
	run.conns = calloc(nconns, sizeof(*run.conns));
	run.clients = calloc(nclients, sizeof(*run.clients));
	struct bench_results *thread_results = calloc(nthreads, sizeof(*thread_results));
	if (!run.threads || !run.conns || !run.clients || !thread_results) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		struct bench_thread *t = &run.threads[i];
		t->run = &run;
		t->index = i;
		t->epfd = -1;
		t->results = &thread_results[i];
		bench_results_init(t->results);
		workload_thread_init(&t->wl, &run.shared, i, nthreads);
		/* Sizes: conns and clients are dealt round-robin. */
		size_t my_conns = nconns / nthreads + (i < nconns % nthreads);
		t->conns = calloc(my_conns, sizeof(*t->conns));
		t->clients = calloc(nclients, sizeof(*t->clients));
		t->idle = calloc(nclients, sizeof(*t->idle));
		t->dirty = calloc(my_conns, sizeof(*t->dirty));
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (!t->conns || !t->clients || !t->idle || !t->dirty || t->epfd < 0) {
			snprintf(err, errlen, "out of memory or epoll_create1 failed");
			goto out;
		}
		if (cfg->rate > 0) {
			t->rate = cfg->rate / nthreads;
			t->phase_ns = (uint64_t)((double)i * 1e9 / cfg->rate);
		}
	}
	for (unsigned j = 0; j < nconns; j++) {
		struct bench_conn *c = &run.conns[j];
		struct bench_thread *t = &run.threads[j % nthreads];
		c->endpoint = &endpoints[j % endpoint_count];
		c->thread = t;
		c->parked = calloc(nclients / nconns + 1, sizeof(*c->parked));
		if (!c->parked) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		t->conns[t->conn_count++] = c;
		c->g = gconn_open_tls(c->endpoint->host, c->endpoint->port, c->endpoint->tls ? cfg->tls : NULL,
		    cfg->dial_timeout_ns, err, errlen);
		if (!c->g)
			goto out;
		conn_register(t, c);
	}
	for (unsigned i = 0; i < nclients; i++) {
		struct bench_client *client = &run.clients[i];
		struct bench_conn *c = &run.conns[i % nconns];
		struct bench_thread *t = c->thread;
		client->thread = t;
		client->conn = c;
		client->call.done = client_done;
		workload_client_init(&client->wl, cfg, i);
		t->clients[t->client_count++] = client;
	}
	/* Idle stacks pop from the top: push in reverse so client 0 goes first. */
	for (unsigned i = nclients; i-- > 0;)
		push_idle(run.clients[i].thread, &run.clients[i]);

	struct sigaction sa = {0};
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);

	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	run.start_ns = mono_ns();
	run.deadline_ns = cfg->duration_ns ? run.start_ns + cfg->duration_ns : UINT64_MAX;
	unsigned started = 0;
	for (; started < nthreads; started++)
		if (pthread_create(&run.threads[started].tid, NULL, thread_main, &run.threads[started]) != 0) {
			snprintf(err, errlen, "pthread_create failed");
			stop_requested = 1;
			break;
		}
	uint64_t last_ok = 0, last_ns = run.start_ns, next_print = run.start_ns + 1000000000ull;
	while (atomic_load(&run.threads_done) < started) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
		uint64_t now = mono_ns();
		if (cfg->progress && now >= next_print) {
			print_progress(&run, now, &last_ok, &last_ns);
			next_print += 1000000000ull;
		}
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(run.threads[i].tid, NULL);
	getrusage(RUSAGE_SELF, &ru1);
	if (started < nthreads)
		goto out;

	uint64_t end = run.start_ns;
	for (unsigned i = 0; i < nthreads; i++) {
		if (run.threads[i].last_reply_ns > end)
			end = run.threads[i].last_reply_ns;
		bench_results_merge(results, run.threads[i].results);
	}
	if (end == run.start_ns)
		end = mono_ns();
	results->elapsed_s = (double)(end - run.start_ns) / 1e9;
	results->cpu_user_s = timeval_s(ru1.ru_utime) - timeval_s(ru0.ru_utime);
	results->cpu_system_s = timeval_s(ru1.ru_stime) - timeval_s(ru0.ru_stime);
	results->interrupted = stop_requested;
	for (unsigned i = 0; i < nthreads; i++) {
		results->txn_succeeded += run.threads[i].wl.txn_succeeded;
		results->txn_failed += run.threads[i].wl.txn_failed;
	}
	rc = 0;
out:
	signal(SIGINT, SIG_DFL);
	if (run.conns)
		for (unsigned j = 0; j < nconns; j++) {
			if (run.conns[j].g)
				gconn_close(run.conns[j].g);
			free(run.conns[j].parked);
		}
	if (run.clients)
		for (unsigned i = 0; i < nclients; i++)
			gcall_free(&run.clients[i].call);
	if (run.threads)
		for (unsigned i = 0; i < nthreads; i++) {
			struct bench_thread *t = &run.threads[i];
			if (t->epfd >= 0)
				close(t->epfd);
			free(t->conns);
			free(t->clients);
			free(t->idle);
			free(t->dirty);
			workload_thread_free(&t->wl);
		}
	free(run.threads);
	free(run.conns);
	free(run.clients);
	free(thread_results);
	workload_shared_free(&run.shared);
	return rc;
}
