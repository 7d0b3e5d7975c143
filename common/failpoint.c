/* common/failpoint.c: see failpoint.h. */
#include "failpoint.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Where each point is, in etcd's words where etcd has the point. */
const char *const failpoint_names[] = {
    "raftBeforeSave",           /* a Ready's entries and hard state about to be written to the WAL */
    "raftAfterSave",            /* they are durable; the core has not been told */
    "raftBeforeLeaderSend",     /* the leader about to send its Ready's messages */
    "raftBeforeFollowerSend",   /* a follower about to send its Ready's messages (votes, acks) */
    "beforeCommit",             /* a batch of applied entries about to be committed to RocksDB */
    "afterCommit",              /* committed, the applied index not yet published */
    "compactBeforeCommitScheduledCompact", /* a batch that compacts the MVCC history, before its commit */
    "compactAfterCommitScheduledCompact",  /* and after */
    "raftBeforeSaveSnap",       /* a snapshot about to be written */
    "raftAfterSaveSnap",        /* the snapshot and its WAL marker written, the log not yet compacted */
    "raftAfterWALRelease",      /* WAL segments before a snapshot just deleted */
    "raftBeforeApplySnap",      /* a snapshot from the leader received, its WAL marker not yet written */
    "applyBeforeOpenSnapshot",  /* its WAL marker durable, the state not yet replaced (etcd: the snapshot
                                 * persisted, its backend not yet opened) */
    "raftAfterApplySnap",       /* the state replaced, the WAL not yet told */
    "defragBeforeCopy",         /* a defragmentation about to rewrite the state (etcd: before the copy) */
    "defragBeforeRename",       /* the state rewritten, the defragmentation not yet answered (etcd: the copy
                                 * done, not yet renamed over the database) */
    NULL,
};

enum failpoint_action { ACTION_NONE, ACTION_CRASH, ACTION_SLEEP };

struct failpoint {
	enum failpoint_action action;
	uint64_t sleep_ms;
	uint64_t on_hit; /* 0: every time */
	atomic_uint_fast64_t hits;
};

#define FAILPOINT_COUNT (sizeof(failpoint_names) / sizeof(failpoint_names[0]) - 1)
static struct failpoint points[FAILPOINT_COUNT];
bool failpoints_armed;

static int index_of(const char *name, size_t length)
{
	for (size_t k = 0; failpoint_names[k]; k++)
		if (strlen(failpoint_names[k]) == length && memcmp(failpoint_names[k], name, length) == 0)
			return (int)k;
	return -1;
}

static int parse_action(const char *text, size_t length, struct failpoint *point, char *err, size_t errlen)
{
	char action[64];
	if (length >= sizeof(action)) {
		snprintf(err, errlen, "failpoint action \"%.*s\" is too long", (int)length, text);
		return -1;
	}
	memcpy(action, text, length);
	action[length] = '\0';
	char *rest = action;
	char *star = strchr(action, '*');
	if (star) {
		char *end;
		unsigned long long hit = strtoull(action, &end, 10);
		if (end != star || hit == 0) {
			snprintf(err, errlen, "failpoint action \"%s\": the count before '*' must be a positive integer", action);
			return -1;
		}
		point->on_hit = hit;
		rest = star + 1;
	}
	char *end = NULL;
	unsigned long long ms = 0;
	if (strncmp(rest, "sleep(", 6) == 0)
		ms = strtoull(rest + 6, &end, 10);
	if (strcmp(rest, "crash") == 0) {
		point->action = ACTION_CRASH;
	} else if (end && end != rest + 6 && strcmp(end, ")") == 0) {
		point->action = ACTION_SLEEP;
		point->sleep_ms = ms;
	} else {
		snprintf(err, errlen, "failpoint action \"%s\": expected crash or sleep(MILLISECONDS), optionally after N*",
		         action);
		return -1;
	}
	return 0;
}

int failpoints_init(const char *spec, char *err, size_t errlen)
{
	if (spec == NULL || *spec == '\0')
		return 0;
#if !QUORUMD_FAILPOINTS
	snprintf(err, errlen, "QUORUMD_FAILPOINTS is set, but this quorumd was built without failpoints (-Dfailpoints=false)");
	return -1;
#endif
	const char *at = spec;
	while (*at) {
		const char *end = strchr(at, ';');
		size_t length = end ? (size_t)(end - at) : strlen(at);
		const char *equals = memchr(at, '=', length);
		if (length > 0) {
			if (!equals) {
				snprintf(err, errlen, "QUORUMD_FAILPOINTS: \"%.*s\" is not NAME=ACTION", (int)length, at);
				return -1;
			}
			int index = index_of(at, (size_t)(equals - at));
			if (index < 0) {
				size_t used = (size_t)snprintf(err, errlen, "QUORUMD_FAILPOINTS: unknown failpoint \"%.*s\" (known:",
				                               (int)(equals - at), at);
				for (size_t k = 0; failpoint_names[k] && used < errlen; k++)
					used += (size_t)snprintf(err + used, errlen - used, " %s", failpoint_names[k]);
				if (used < errlen)
					snprintf(err + used, errlen - used, ")");
				return -1;
			}
			if (parse_action(equals + 1, length - (size_t)(equals + 1 - at), &points[index], err, errlen) != 0)
				return -1;
			failpoints_armed = true;
		}
		at += length + (end ? 1 : 0);
	}
	return 0;
}

void failpoint_reached(const char *name)
{
	int index = index_of(name, strlen(name));
	if (index < 0)
		return;
	struct failpoint *point = &points[index];
	if (point->action == ACTION_NONE)
		return;
	uint64_t hit = atomic_fetch_add(&point->hits, 1) + 1;
	if (point->on_hit && hit != point->on_hit)
		return;
	log_write("warn", "failpoint fired", "\"failpoint\":\"%s\",\"action\":\"%s\",\"hit\":%llu", name,
	          point->action == ACTION_CRASH ? "crash" : "sleep", (unsigned long long)hit);
	if (point->action == ACTION_CRASH) {
		raise(SIGKILL);
		_exit(137); /* not reached: SIGKILL cannot be caught */
	}
	struct timespec pause = {(time_t)(point->sleep_ms / 1000), (long)(point->sleep_ms % 1000) * 1000000L};
	while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
	}
}
