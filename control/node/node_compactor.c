/* control/node/node_compactor.c: auto-compaction (node_compactor.h), etcd 3.4's v3compactor periodic.go
 * and revision.go on the core thread's heartbeat tick. */
#include "node_compactor.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"

/* etcd's revision compactor looks every 5 minutes (revision.go, revInterval). */
#define REVISION_CHECK_MS (5u * 60u * 1000u)
/* etcd's periodic compactor samples the revision ten times a period (retryDivisor)... */
#define SAMPLES_PER_PERIOD 10u
/* ...and compacts at least every hour whatever the period. */
#define HOUR_MS (60u * 60u * 1000u)

/* Go's time.ParseDuration, in milliseconds: "1h30m", "2.5s", "300ms" (ns, us, µs, ms, s, m, h). */
static int parse_go_duration(const char *text, uint64_t *out_ms)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}};
	const char *at = text;
	double total = 0;
	if (*at == '\0')
		return -1;
	while (*at) {
		char *end = NULL;
		if (!isdigit((unsigned char)*at) && *at != '.')
			return -1;
		double value = strtod(at, &end);
		if (end == at)
			return -1;
		at = end;
		size_t best = 0;
		double factor = 0;
		for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
			size_t length = strlen(units[k].unit);
			/* "ms" before "m": the longest unit that matches. */
			if (strncmp(at, units[k].unit, length) == 0 && length > best) {
				best = length;
				factor = units[k].ms;
			}
		}
		if (best == 0)
			return -1; /* Go requires a unit after every number but "0" */
		at += best;
		total += value * factor;
	}
	*out_ms = (uint64_t)total;
	return 0;
}

int compactor_parse(const char *mode, const char *retention, struct compactor_config *config, char *err,
                    size_t errlen)
{
	memset(config, 0, sizeof(*config));
	config->check_interval_ms = REVISION_CHECK_MS;
	bool periodic = strcmp(mode, "periodic") == 0, revision = strcmp(mode, "revision") == 0;
	if (!periodic && !revision) {
		snprintf(err, errlen, "unsupported compaction mode %s", mode);
		return -1;
	}
	/* etcd's parseCompactionRetention: a bare number is revisions or hours, anything else a duration. */
	char *end = NULL;
	long long number = strtoll(retention, &end, 10);
	if (*retention && end && *end == '\0' && number >= 0) {
		if (number == 0)
			return 0;
		if (revision) {
			config->mode = COMPACTOR_REVISION;
			config->retention = number;
		} else {
			config->mode = COMPACTOR_PERIODIC;
			config->period_ms = (uint64_t)number * HOUR_MS;
		}
	} else {
		uint64_t period = 0;
		if (parse_go_duration(retention, &period) != 0) {
			snprintf(err, errlen, "error parsing CompactionRetention: time: invalid duration \"%s\"", retention);
			return -1;
		}
		if (period == 0)
			return 0;
		if (revision) {
			/* etcd takes the duration's nanoseconds as a revision count; nobody means that. */
			snprintf(err, errlen, "--auto-compaction-retention=%s: revision mode keeps a number of revisions",
			         retention);
			return -1;
		}
		config->mode = COMPACTOR_PERIODIC;
		config->period_ms = period;
	}
	/* Test only: a revision compactor that looks more often than every 5 minutes. */
	const char *check = getenv("QUORUMD_TEST_COMPACTION_CHECK_MS");
	if (check && *check && strtoull(check, NULL, 10) > 0)
		config->check_interval_ms = strtoull(check, NULL, 10);
	return 0;
}

void compactor_init(struct compactor *compactor, struct node *node, const struct compactor_config *config)
{
	memset(compactor, 0, sizeof(*compactor));
	compactor->node = node;
	compactor->config = *config;
	compactor->started_ms = clock_monotonic_ms();
	compactor->last_success_ms = compactor->started_ms;
	compactor->base_interval_ms = config->period_ms;
	compactor->next_counter = node_request_counter_start();
	uint64_t first = config->mode == COMPACTOR_PERIODIC ? 0 : config->check_interval_ms;
	compactor->next_sample_ms = compactor->started_ms + first;
	if (config->mode == COMPACTOR_PERIODIC)
		log_write("info", "started auto periodic compactor", "\"compact-period\":\"%" PRIu64 "ms\"", config->period_ms);
	else if (config->mode == COMPACTOR_REVISION)
		log_write("info", "started auto revision compactor", "\"revision-compaction-retention\":%" PRId64,
		          config->retention);
}

/* A CompactionRequest through the core's own inbox: it joins the next batch like a client's. */
static void propose(struct compactor *compactor, int64_t revision)
{
	struct node *node = compactor->node;
	Etcdserverpb__CompactionRequest compaction = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
	compaction.revision = revision;
	Etcdserverpb__RequestHeader header = ETCDSERVERPB__REQUEST_HEADER__INIT;
	/* Channel 0: the operator thread drops the answer, nobody waits for it. */
	header.id = node_request_id(node->member_id, 0, compactor->next_counter++);
	Etcdserverpb__InternalRaftRequest internal = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	internal.header = &header;
	internal.compaction = &compaction;
	struct node_request *request = xcalloc(1, sizeof(*request));
	request->kind = REQUEST_PROPOSE;
	request->request_id = header.id;
	request->payload_length = etcdserverpb__internal_raft_request__get_packed_size(&internal);
	request->payload = xmalloc(request->payload_length);
	etcdserverpb__internal_raft_request__pack(&internal, request->payload);
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = CORE_MAIL_REQUEST;
	mail->request = request;
	core_mailbox_post(&node->core_inbox, mail);
}

static void tick_periodic(struct compactor *compactor, uint64_t now, bool is_leader)
{
	const struct compactor_config *config = &compactor->config;
	uint64_t capped = config->period_ms > HOUR_MS ? HOUR_MS : config->period_ms;
	uint64_t sample_every = capped / SAMPLES_PER_PERIOD ? capped / SAMPLES_PER_PERIOD : 1;
	if (now < compactor->next_sample_ms)
		return;
	compactor->next_sample_ms = now + sample_every;
	/* samples[0] is always the revision of one period ago (periodic.go: pc.revs). */
	size_t keep = (size_t)(config->period_ms / sample_every) + 1;
	if (keep > COMPACTOR_SAMPLES)
		keep = COMPACTOR_SAMPLES;
	int64_t current = (int64_t)atomic_load(&compactor->node->revision);
	if (compactor->sample_count == keep) {
		memmove(compactor->samples, compactor->samples + 1, (keep - 1) * sizeof(compactor->samples[0]));
		compactor->sample_count--;
	}
	compactor->samples[compactor->sample_count++] = current;
	if (!is_leader || now - compactor->last_success_ms < compactor->base_interval_ms)
		return;
	/* The first waits a whole period; later ones come every period, at most every hour. */
	compactor->base_interval_ms = capped;
	int64_t revision = compactor->samples[0];
	if (revision <= 1)
		return;
	log_write("info", "starting auto periodic compaction", "\"revision\":%" PRId64 ",\"compact-period\":\"%" PRIu64 "ms\"",
	          revision, config->period_ms);
	propose(compactor, revision);
	/* The proposal goes through Raft: a compacted revision answers ErrCompacted there, which etcd
	 * counts as done too, and a lost one is proposed again a period later. */
	compactor->last_success_ms = now;
}

static void tick_revision(struct compactor *compactor, uint64_t now, bool is_leader)
{
	if (now < compactor->next_sample_ms)
		return;
	compactor->next_sample_ms = now + compactor->config.check_interval_ms;
	if (!is_leader)
		return;
	int64_t revision = (int64_t)atomic_load(&compactor->node->revision) - compactor->config.retention;
	if (revision <= 0 || revision == compactor->previous)
		return;
	log_write("info", "starting auto revision compaction",
	          "\"revision\":%" PRId64 ",\"revision-compaction-retention\":%" PRId64, revision,
	          compactor->config.retention);
	propose(compactor, revision);
	compactor->previous = revision;
}

void compactor_tick(struct compactor *compactor, bool is_leader)
{
	uint64_t now = clock_monotonic_ms();
	if (compactor->config.mode == COMPACTOR_PERIODIC)
		tick_periodic(compactor, now, is_leader);
	else if (compactor->config.mode == COMPACTOR_REVISION)
		tick_revision(compactor, now, is_leader);
}
