/* common/failpoint.h: named points in the member's work where a test makes the process crash or stall, as
 * etcd's gofail failpoints (and under etcd's names, so a robustness scenario written for etcd reads the same).
 *
 * Armed by the environment at start: QUORUMD_FAILPOINTS="NAME=ACTION[;NAME=ACTION...]", parsed once by
 * failpoints_init before any thread runs. ACTION is
 *   crash       SIGKILL to itself: nothing flushed, nothing cleaned up — what a power cut leaves of the
 *               process (the page cache survives; tests/lazyfs-style file systems drop that too)
 *   sleep(MS)   the thread that reached the point stalls MS milliseconds, every time
 * optionally prefixed by "N*" to fire only on the Nth time the point is reached ("3*crash"). A point fires
 * after a log line naming it ("failpoint fired"), so a test can tell where the member stopped.
 *
 * Unarmed, a point costs one load and a predictable branch. A build configured with -Dfailpoints=false has
 * no points at all (FAILPOINT expands to nothing) and refuses QUORUMD_FAILPOINTS. */
#ifndef QUORUMD_COMMON_FAILPOINT_H
#define QUORUMD_COMMON_FAILPOINT_H

#include <stdbool.h>
#include <stddef.h>

#ifndef QUORUMD_FAILPOINTS
#define QUORUMD_FAILPOINTS 1
#endif

extern bool failpoints_armed;

/* spec: QUORUMD_FAILPOINTS's value (NULL or "": nothing armed). -1 with a message naming the bad part: an
 * unknown point (the message lists the known ones), a malformed action. */
int failpoints_init(const char *spec, char *err, size_t errlen);
/* The points, for --help-like listings and tests: NULL-terminated. */
extern const char *const failpoint_names[];
void failpoint_reached(const char *name);

#if QUORUMD_FAILPOINTS
#define FAILPOINT(name)                          \
	do {                                         \
		if (failpoints_armed)                    \
			failpoint_reached(name);             \
	} while (0)
#else
#define FAILPOINT(name) \
	do {                \
	} while (0)
#endif

#endif
