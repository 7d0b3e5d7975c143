/* tests/wal/test_wal_crash.c: crash test with real processes. Starts crash_writer (argv[1]) on one wal
 * directory again and again, kills it with SIGKILL after a random time, and after every kill opens the wal
 * and checks that each acknowledged entry (every "durable N" line the writer printed) is present and
 * byte-identical, and that the log is gap-free with the right content beyond that too.
 *
 * SIGKILL stops a process, not the machine: the kernel finishes or drops the writes it has, so a torn
 * record from a kill alone is rare and cannot be forced. Every fifth round the test therefore also writes
 * the front of a record (the rest left as the preallocated zeros, as a power cut mid-write leaves it) behind
 * the last good record, and checks that recovery takes the torn-tail path and cuts exactly those bytes.
 * Natural torn tails are counted and printed. Set WAL_CRASH_SEED to replay a run's kill times. */
#include "helpers.h"
#include "record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 60
#define MAX_LENGTH 2000
#define SEGMENT_SIZE (128u * 1024u)
#define WAL_NAME_LENGTH 64

static uint64_t random_state;

static uint64_t next_random(void)
{
	random_state ^= random_state << 13;
	random_state ^= random_state >> 7;
	random_state ^= random_state << 17;
	return random_state;
}

static double now_ms(void)
{
	struct timespec time;
	clock_gettime(CLOCK_MONOTONIC, &time);
	return (double)time.tv_sec * 1e3 + (double)time.tv_nsec / 1e6;
}

/* Parses complete lines in buffer, raising *acknowledged and noting when the writer has opened the wal;
 * returns bytes consumed. */
static size_t parse_lines(char *buffer, size_t length, uint64_t *acknowledged, bool *opened)
{
	size_t consumed = 0;
	for (;;) {
		char *newline = memchr(buffer + consumed, '\n', length - consumed);
		if (newline == NULL)
			return consumed;
		*newline = '\0';
		unsigned long long value;
		if (sscanf(buffer + consumed, "durable %llu", &value) == 1 && value > *acknowledged)
			*acknowledged = value;
		if (strncmp(buffer + consumed, "recovered ", 10) == 0)
			*opened = true;
		consumed = (size_t)(newline - buffer) + 1;
	}
}

/* Runs the writer, kills it run_ms after it opened the wal (or, with during_open, run_ms after it
 * started, which often lands inside recovery), and returns the highest acknowledged index. */
static uint64_t run_writer(const char *writer, const char *dir, int write_mode, double run_ms, bool during_open)
{
	int pipe_fds[2];
	CHECK(pipe(pipe_fds) == 0);
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		dup2(pipe_fds[1], STDOUT_FILENO);
		close(pipe_fds[0]);
		close(pipe_fds[1]);
		execl(writer, writer, dir, write_mode == TEST_DIRECT ? "direct" : write_mode == TEST_DIRECT_DSYNC ? "dsync"
				: "buffered", "2000", (char *)NULL);
		_exit(127);
	}
	close(pipe_fds[1]);
	char buffer[65536];
	size_t used = 0;
	uint64_t acknowledged = 0;
	/* Until the writer says it opened the wal, only a generous safety limit applies (a slow disk
	 * or a sanitizer build can take a while to start). */
	double deadline = now_ms() + (during_open ? run_ms : 30000.0);
	bool killed = false, opened = false;
	for (;;) {
		double left = deadline - now_ms();
		if (!killed && left <= 0) {
			kill(child, SIGKILL);
			killed = true;
		}
		struct pollfd poll_fd = { .fd = pipe_fds[0], .events = POLLIN };
		int ready = poll(&poll_fd, 1, killed ? -1 : (int)left + 1);
		if (ready < 0 && errno == EINTR)
			continue;
		CHECK(ready >= 0);
		if (ready == 0)
			continue;
		ssize_t got = read(pipe_fds[0], buffer + used, sizeof buffer - 1 - used);
		if (got <= 0)
			break; /* the writer is gone and everything it printed has been read */
		used += (size_t)got;
		bool was_opened = opened;
		size_t consumed = parse_lines(buffer, used, &acknowledged, &opened);
		if (opened && !was_opened && !during_open)
			deadline = now_ms() + run_ms;
		memmove(buffer, buffer + consumed, used - consumed);
		used -= consumed;
		CHECK(used < sizeof buffer - 1);
	}
	close(pipe_fds[0]);
	int status;
	CHECK(waitpid(child, &status, 0) == child);
	/* It must have died from our kill, not from a failed check of its own. */
	if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		test_fail(__FILE__, __LINE__, "the writer exited by itself", "see its stderr above");
	return acknowledged;
}

/* Opens the wal and checks the log: entries 1..N, N >= acknowledged, each byte-identical to its
 * deterministic content from content_from on (earlier ones were checked in earlier rounds; the indexes
 * and terms of all of them are checked every time). */
static const struct wal_recovery_info *verify(const char *dir, uint64_t acknowledged, uint64_t content_from,
		uint64_t *last, struct wal_recovery_info *info)
{
	struct wal_options options;
	test_options(&options, SEGMENT_SIZE, 0);
	struct wal *wal = NULL;
	char err[512];
	CHECK_OK(wal_open(dir, &options, &wal, err, sizeof err), err);
	const struct wal_recovered *recovered = wal_recovered(wal);
	for (size_t i = 0; i < recovered->entry_count; i++) {
		const struct wal_entry *entry = &recovered->entries[i];
		CHECK(entry->index == i + 1);
		CHECK(entry->term == 1 + entry->index / 500);
		if (entry->index >= content_from)
			CHECK(test_entry_matches(entry, MAX_LENGTH));
	}
	*last = recovered->entry_count;
	if (*last < acknowledged) {
		fprintf(stderr, "acknowledged %llu but recovered only %llu entries\n", (unsigned long long)acknowledged,
				(unsigned long long)*last);
		test_fail(__FILE__, __LINE__, "acknowledged entry lost", dir);
	}
	*info = recovered->info;
	wal_close(wal);
	return info;
}

/* The open-N file with the smallest N above after (-1: any): the segment the next write goes to when
 * none fits behind the last record. */
static void next_open_segment(const char *dir, long long after, char *name, size_t length)
{
	DIR *directory = opendir(dir);
	CHECK(directory != NULL);
	long long next = -1;
	struct dirent *item;
	while ((item = readdir(directory)) != NULL) {
		long long sequence;
		char rest;
		if (sscanf(item->d_name, "open-%lld%c", &sequence, &rest) == 1 && sequence > after &&
				(next < 0 || sequence < next))
			next = sequence;
	}
	closedir(directory);
	CHECK(next >= 0);
	int written = snprintf(name, length, "open-%lld", next);
	CHECK(written > 0 && (size_t)written < length);
}

/* Writes the front third of a record behind the last good one; where no record fits behind it (or no
 * open segment holds records), at the start of the next open segment: a torn first write of the next
 * segment. Returns the bytes written. */
static size_t inject_torn_record(const char *dir, const struct wal_recovery_info *info)
{
	const size_t payload = 2000;
	char name[WAL_NAME_LENGTH];
	uint64_t offset = info->end_offset;
	if (info->last_segment[0] == '\0' || offset + WAL_RECORD_HEADER_SIZE + payload > SEGMENT_SIZE) {
		/* A torn first write can only be in the segment right after the newest one with records. */
		long long newest = -1;
		if (info->last_segment[0] != '\0')
			CHECK(sscanf(info->last_segment, "open-%lld", &newest) == 1);
		next_open_segment(dir, newest, name, sizeof name);
		offset = 0;
	} else {
		int written = snprintf(name, sizeof name, "%s", info->last_segment);
		CHECK(written > 0 && (size_t)written < sizeof name);
	}
	uint8_t record[WAL_RECORD_HEADER_SIZE + 2000];
	test_entry_fill(next_random(), 7, record + WAL_RECORD_HEADER_SIZE, payload);
	wal_record_seal(record, 1, (uint32_t)payload);
	size_t front = WAL_RECORD_HEADER_SIZE + payload / 3;
	char path[512];
	int written = snprintf(path, sizeof path, "%s/%s", dir, name);
	CHECK(written > 0 && (size_t)written < sizeof path);
	int fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, record, front, (off_t)offset) == (ssize_t)front);
	CHECK(fsync(fd) == 0);
	close(fd);
	return front;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CRASH_WRITER\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *seed_text = getenv("WAL_CRASH_SEED");
	random_state = seed_text ? strtoull(seed_text, NULL, 0) : (uint64_t)time(NULL) * 2654435761u + 1;
	printf("WAL_CRASH_SEED=%llu\n", (unsigned long long)random_state);
	snprintf(test_reproduce, sizeof test_reproduce, "WAL_CRASH_SEED=%llu meson test -C build wal_crash "
			"--verbose (kill times repeat; the kernel's timing does not)", (unsigned long long)random_state);
	const char *dir = test_temp_dir("crash");
	bool direct_supported = test_direct_io_supported(dir);
	unsigned natural_torn = 0, injected = 0, injected_detected = 0;
	uint64_t last = 0, acknowledged_total = 0;
	double started = now_ms();
	for (int round = 0; round < ROUNDS; round++) {
		/* Rounds take turns: buffered, O_DIRECT, O_DIRECT with RWF_DSYNC (one log, written in every mode). */
		int write_mode = direct_supported ? round % 3 : TEST_BUFFERED;
		/* Every seventh round dies early, often inside recovery; the others from 1 to 100 ms after
		 * the wal was opened. */
		bool during_open = round % 7 == 3;
		double run_ms = during_open ? 1.0 + (double)(next_random() % 20) : 1.0 + (double)(next_random() % 100);
		uint64_t acknowledged = run_writer(argv[1], dir, write_mode, run_ms, during_open);
		if (acknowledged > acknowledged_total)
			acknowledged_total = acknowledged;
		struct wal_recovery_info info;
		/* All content every tenth round and in the last; otherwise what the last run touched. */
		bool everything = round % 10 == 9 || round == ROUNDS - 1;
		uint64_t content_from = everything || last < 100 ? 1 : last - 100;
		verify(dir, acknowledged, content_from, &last, &info);
		CHECK(last >= acknowledged_total); /* nothing acknowledged in earlier rounds went missing */
		if (info.torn_tail)
			natural_torn++;
		if (round % 5 == 4) {
			size_t front = inject_torn_record(dir, &info);
			injected++;
			uint64_t after;
			struct wal_recovery_info again;
			verify(dir, acknowledged_total, last, &after, &again);
			CHECK(after == last);
			CHECK(again.torn_tail);
			CHECK(again.truncated_bytes == front);
			injected_detected++;
		}
	}
	printf("%d kills in %.1f s: %llu entries acknowledged, %llu recovered, torn tails: %u after a kill, "
			"%u of %u injected ones detected\n", ROUNDS, (now_ms() - started) / 1e3,
			(unsigned long long)acknowledged_total, (unsigned long long)last, natural_torn, injected_detected,
			injected);
	CHECK(acknowledged_total > 0);
	CHECK(injected == ROUNDS / 5 && injected_detected == injected);
	return 0;
}
