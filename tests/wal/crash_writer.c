/* tests/wal/crash_writer.c: the process test_wal_crash kills. Opens the wal in argv[1] (argv[2] "direct"
 * for O_DIRECT, "dsync" for O_DIRECT writes carrying RWF_DSYNC), continues the log after what recovery found, and appends entries with deterministic
 * content (helpers.c) in batches of random size, forever. After each completed write+fdatasync it prints
 * "durable N" and flushes, so a line on stdout is an acknowledgement. */
#include "helpers.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEGMENT_SIZE (128u * 1024u)

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s DIR buffered|direct|dsync MAX_LENGTH\n", argv[0]);
		return 2;
	}
	size_t max_length = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 2000;
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct wal_options options;
	test_options(&options, SEGMENT_SIZE, strcmp(argv[2], "direct") == 0 ? TEST_DIRECT
			: strcmp(argv[2], "dsync") == 0 ? TEST_DIRECT_DSYNC : TEST_BUFFERED);
	struct wal *wal = NULL;
	char err[512];
	CHECK_OK(wal_open(argv[1], &options, &wal, err, sizeof err), err);
	wal_recovered_release(wal);
	uint64_t next = wal_last_index(wal) + 1;
	printf("recovered %llu\n", (unsigned long long)(next - 1));
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	uint64_t reported = next - 1;
	for (;;) {
		/* Several batches per wait: appends arriving while one is in flight join the next. */
		unsigned count = 1 + (unsigned)rand() % 48;
		for (unsigned i = 0; i < count; i++, next++)
			test_append_range(wal, next, next, 1 + next / 500, max_length);
		CHECK_OK(wal_submit(wal, err, sizeof err), err);
		uint64_t durable = 0;
		CHECK_OK(wal_wait(wal, &durable, err, sizeof err), err);
		if (durable > reported) {
			printf("durable %llu\n", (unsigned long long)durable);
			reported = durable;
		}
	}
}
