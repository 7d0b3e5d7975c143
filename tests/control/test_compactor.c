/* tests/control/test_compactor.c: the auto-compaction flags as etcd 3.4 reads them
 * (parseCompactionRetention): 0 is off, a bare number is hours (periodic) or revisions (revision), anything
 * else a Go duration; what is neither, or an unknown mode, is refused with etcd's words. */
#include <string.h>

#include "check.h"
#include "node_compactor.h"

static void expect(const char *mode, const char *retention, enum compactor_mode want_mode, uint64_t want_period_ms,
                   int64_t want_retention)
{
	struct compactor_config config;
	char error[256] = "";
	int rc = compactor_parse(mode, retention, &config, error, sizeof(error));
	CHECK(rc == 0, "%s %s: %s", mode, retention, error);
	CHECK(config.mode == want_mode, "%s %s: mode %d, want %d", mode, retention, config.mode, want_mode);
	CHECK(config.period_ms == want_period_ms, "%s %s: period %llu ms, want %llu", mode, retention,
	      (unsigned long long)config.period_ms, (unsigned long long)want_period_ms);
	CHECK(config.retention == want_retention, "%s %s: retention %lld, want %lld", mode, retention,
	      (long long)config.retention, (long long)want_retention);
}

static void refused(const char *mode, const char *retention, const char *want)
{
	struct compactor_config config;
	char error[256] = "";
	CHECK(compactor_parse(mode, retention, &config, error, sizeof(error)) != 0 && strstr(error, want) != NULL,
	      "%s %s: error '%s', want '%s'", mode, retention, error, want);
}

int main(void)
{
	expect("periodic", "0", COMPACTOR_OFF, 0, 0);
	expect("revision", "0", COMPACTOR_OFF, 0, 0);
	expect("periodic", "0s", COMPACTOR_OFF, 0, 0);
	expect("periodic", "1", COMPACTOR_PERIODIC, 3600000, 0);
	expect("periodic", "72", COMPACTOR_PERIODIC, 72 * 3600000ull, 0);
	expect("periodic", "30m", COMPACTOR_PERIODIC, 1800000, 0);
	expect("periodic", "1h30m", COMPACTOR_PERIODIC, 5400000, 0);
	expect("periodic", "2.5s", COMPACTOR_PERIODIC, 2500, 0);
	expect("periodic", "1500ms", COMPACTOR_PERIODIC, 1500, 0);
	expect("revision", "1000", COMPACTOR_REVISION, 0, 1000);
	refused("periodic", "5x", "error parsing CompactionRetention: time: invalid duration \"5x\"");
	refused("periodic", "", "invalid duration");
	refused("periodic", "-1", "invalid duration");
	refused("periodic", "h", "invalid duration");
	refused("revision", "1h", "revision mode keeps a number of revisions");
	refused("hourly", "1", "unsupported compaction mode hourly");
	printf("%s\n", failures ? "FAIL" : "ok");
	return failures != 0;
}
