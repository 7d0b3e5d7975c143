/* tests/control/test_failpoint.c: QUORUMD_FAILPOINTS's grammar (common/failpoint.h): what is armed, what is
 * refused with which message, and that a sleep point fires on its Nth hit only. (Crashes are exercised by
 * tests/regressions/failpoints-crash-and-stall.sh, on real members.) */
#include <string.h>
#include <time.h>

#include "check.h"
#include "failpoint.h"

static int refused(const char *spec, const char *expected_part)
{
	char err[1024] = "";
	int rc = failpoints_init(spec, err, sizeof(err));
	CHECK(rc == -1, "\"%s\" was accepted", spec);
	CHECK(strstr(err, expected_part) != NULL, "\"%s\": message \"%s\" lacks \"%s\"", spec, err, expected_part);
	return rc;
}

static double elapsed_ms(const struct timespec *from)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - from->tv_sec) * 1000.0 + (double)(now.tv_nsec - from->tv_nsec) / 1e6;
}

int main(void)
{
	char err[1024] = "";
	CHECK(failpoints_init(NULL, err, sizeof(err)) == 0 && !failpoints_armed, "no spec arms nothing");
	CHECK(failpoints_init("", err, sizeof(err)) == 0 && !failpoints_armed, "an empty spec arms nothing");
	refused("bogus=crash", "unknown failpoint \"bogus\" (known: raftBeforeSave raftAfterSave");
	refused("raftBeforeSave", "\"raftBeforeSave\" is not NAME=ACTION");
	refused("raftBeforeSave=explode", "expected crash or sleep(MILLISECONDS)");
	refused("raftBeforeSave=sleep()", "expected crash or sleep(MILLISECONDS)");
	refused("raftBeforeSave=sleep(5)x", "expected crash or sleep(MILLISECONDS)");
	refused("raftBeforeSave=0*crash", "the count before '*' must be a positive integer");
	refused("raftBeforeSave=x*crash", "the count before '*' must be a positive integer");
	CHECK(!failpoints_armed, "a refused spec armed something");

	/* beforeCommit sleeps 300 ms on its 2nd hit only; afterCommit is armed too (a list). */
	CHECK(failpoints_init("beforeCommit=2*sleep(300);afterCommit=5*sleep(1)", err, sizeof(err)) == 0, "%s", err);
	CHECK(failpoints_armed, "a valid spec armed nothing");
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	FAILPOINT("beforeCommit");
	CHECK(elapsed_ms(&start) < 250, "the 1st hit slept %.0f ms", elapsed_ms(&start));
	clock_gettime(CLOCK_MONOTONIC, &start);
	FAILPOINT("beforeCommit");
	CHECK(elapsed_ms(&start) >= 300, "the 2nd hit slept only %.0f ms", elapsed_ms(&start));
	clock_gettime(CLOCK_MONOTONIC, &start);
	FAILPOINT("beforeCommit");
	FAILPOINT("raftBeforeSave"); /* not armed */
	CHECK(elapsed_ms(&start) < 250, "the 3rd hit or an unarmed point slept %.0f ms", elapsed_ms(&start));
	return failures != 0;
}
