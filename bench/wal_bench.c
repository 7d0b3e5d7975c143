/* bench/wal_bench.c: what io_uring group commit buys on this disk. In one run, on one directory, it
 * measures the bare write+fdatasync rate, a naive WAL (write() then fdatasync() per 1 KiB entry), and
 * storage/wal with 1, 8, 64 and 256 concurrent proposers in buffered and O_DIRECT modes, and prints one
 * table row per configuration with the ratio of each group-commit row to the naive baseline.
 *
 * A proposer is a closed-loop client with one append outstanding: it appends a 1 KiB entry, waits until
 * the wal reports it durable, and appends the next at once. Proposers are simulated in the one thread
 * that owns the wal, as the node's storage thread would receive them: every proposer whose entry became
 * durable appends its next entry before the loop submits again, so the next group holds all of them.
 * Latency is append-to-durable as the owner observes it. Numbers are printed, never judged. */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define ENTRY_SIZE 1024
#define BARE_WRITE_SIZE 4096
#define BASELINE_FILE_SIZE (256ull * 1024 * 1024)

struct samples {
	double *values; /* microseconds */
	size_t count;
	size_t capacity;
};

struct result {
	const char *name;
	double seconds;
	uint64_t entries;
	uint64_t syncs;
	double p50_us;
	double p99_us;
	bool has_ratio;
};

static double now_us(void)
{
	struct timespec time;
	clock_gettime(CLOCK_MONOTONIC, &time);
	return (double)time.tv_sec * 1e6 + (double)time.tv_nsec / 1e3;
}

static void add_sample(struct samples *samples, double value)
{
	if (samples->count == samples->capacity) {
		samples->capacity = samples->capacity ? samples->capacity * 2 : 4096;
		samples->values = realloc(samples->values, samples->capacity * sizeof *samples->values);
		if (samples->values == NULL) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
	}
	samples->values[samples->count++] = value;
}

static int by_value(const void *left, const void *right)
{
	double a = *(const double *)left, b = *(const double *)right;
	return a < b ? -1 : a > b;
}

static void percentiles(struct samples *samples, struct result *result)
{
	if (samples->count == 0)
		return;
	qsort(samples->values, samples->count, sizeof *samples->values, by_value);
	result->p50_us = samples->values[samples->count / 2];
	result->p99_us = samples->values[(samples->count * 99) / 100];
	free(samples->values);
	memset(samples, 0, sizeof *samples);
}

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "wal-bench: %s: %s\n", what, detail);
	exit(1);
}

/* snprintf that refuses to cut a path short. */
__attribute__((format(printf, 3, 4)))
static void format_path(char *out, size_t length, const char *format, ...)
{
	va_list arguments;
	va_start(arguments, format);
	int written = vsnprintf(out, length, format, arguments);
	va_end(arguments);
	if (written < 0 || (size_t)written >= length)
		fail("path too long", format);
}

static int remove_one(const char *path, const struct stat *status, int type, struct FTW *walk)
{
	(void)status;
	(void)type;
	(void)walk;
	remove(path);
	return 0;
}

static void remove_tree(const char *path)
{
	nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* write(size) + fdatasync in a loop, sequentially through a file preallocated with fallocate as the wal's
 * segments are; or, with prewritten, through a file whose blocks were all written before (no extent
 * changes to journal: the cheapest a synchronous write gets on this file system). */
static struct result measure_write_sync(const char *dir, const char *name, size_t size, bool prewritten,
		double seconds)
{
	char path[4200];
	format_path(path, sizeof path, "%s/baseline-%zu-%d.data", dir, size, prewritten);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || fallocate(fd, 0, 0, BASELINE_FILE_SIZE) != 0)
		fail(path, strerror(errno));
	uint8_t buffer[BARE_WRITE_SIZE];
	memset(buffer, 0xa5, sizeof buffer);
	if (prewritten) {
		static uint8_t zeros[1 << 20];
		for (uint64_t at = 0; at < BASELINE_FILE_SIZE; at += sizeof zeros)
			if (pwrite(fd, zeros, sizeof zeros, (off_t)at) != (ssize_t)sizeof zeros)
				fail(path, strerror(errno));
	}
	if (fdatasync(fd) != 0)
		fail(path, strerror(errno));
	struct samples samples = { 0 };
	struct result result = { .name = name };
	uint64_t offset = 0;
	double start = now_us(), end = start + seconds * 1e6, at = start;
	while (at < end) {
		double before = at;
		if (pwrite(fd, buffer, size, (off_t)offset) != (ssize_t)size || fdatasync(fd) != 0)
			fail(path, strerror(errno));
		offset = (offset + size) % BASELINE_FILE_SIZE;
		at = now_us();
		add_sample(&samples, at - before);
		result.entries++;
		result.syncs++;
	}
	result.seconds = (at - start) / 1e6;
	percentiles(&samples, &result);
	close(fd);
	unlink(path);
	return result;
}

static struct result measure_wal(const char *dir, const char *name, unsigned proposers, bool direct_io,
		double seconds)
{
	char path[4200];
	format_path(path, sizeof path, "%s/wal-%u-%s", dir, proposers, direct_io ? "direct" : "buffered");
	struct wal_options options;
	wal_options_init(&options);
	options.direct_io = direct_io;
	struct wal *wal = NULL;
	char err[512];
	if (wal_open(path, &options, &wal, err, sizeof err) != 0)
		fail("wal_open", err);
	uint8_t data[ENTRY_SIZE];
	memset(data, 0x5a, sizeof data);
	uint64_t *outstanding = calloc(proposers, sizeof *outstanding);
	double *appended_at = calloc(proposers, sizeof *appended_at);
	if (outstanding == NULL || appended_at == NULL)
		fail("calloc", "out of memory");
	struct samples samples = { 0 };
	struct result result = { .name = name, .has_ratio = true };
	uint64_t next_index = 1;
	double start = now_us(), end = start + seconds * 1e6, at = start;
	for (unsigned p = 0; p < proposers; p++)
		outstanding[p] = 0;
	bool stopping = false;
	for (;;) {
		/* Every proposer with nothing outstanding proposes its next entry. */
		for (unsigned p = 0; p < proposers && !stopping; p++) {
			if (outstanding[p] != 0)
				continue;
			struct wal_entry entry = { .term = 1, .index = next_index, .data = data,
				.data_length = sizeof data };
			if (wal_append_entries(wal, &entry, 1, err, sizeof err) != 0)
				fail("wal_append_entries", err);
			outstanding[p] = next_index++;
			appended_at[p] = at;
		}
		if (wal_submit(wal, err, sizeof err) != 0)
			fail("wal_submit", err);
		uint64_t durable = 0;
		if (wal_wait(wal, &durable, err, sizeof err) != 0)
			fail("wal_wait", err);
		at = now_us();
		bool any_outstanding = false;
		for (unsigned p = 0; p < proposers; p++) {
			if (outstanding[p] != 0 && outstanding[p] <= durable) {
				add_sample(&samples, at - appended_at[p]);
				outstanding[p] = 0;
				result.entries++;
			}
			any_outstanding |= outstanding[p] != 0;
		}
		stopping = at >= end;
		if (stopping && !any_outstanding)
			break;
	}
	result.seconds = (at - start) / 1e6;
	result.syncs = wal_sync_count(wal);
	percentiles(&samples, &result);
	wal_close(wal);
	free(outstanding);
	free(appended_at);
	remove_tree(path);
	return result;
}

static void print_header(void)
{
	printf("%-34s %12s %10s %9s %10s %10s %9s\n", "configuration", "entries/s", "fsyncs/s", "ent/fsync",
			"p50 us", "p99 us", "vs naive");
}

static void print_row(const struct result *result, double naive_rate)
{
	double rate = (double)result->entries / result->seconds;
	char ratio[32] = "";
	if (result->has_ratio)
		snprintf(ratio, sizeof ratio, "%.1fx", rate / naive_rate);
	printf("%-34s %12.0f %10.0f %9.1f %10.0f %10.0f %9s\n", result->name, rate,
			(double)result->syncs / result->seconds,
			result->syncs ? (double)result->entries / (double)result->syncs : 0.0, result->p50_us,
			result->p99_us, ratio);
	fflush(stdout);
}

static void default_dir(char *out, size_t length)
{
	/* Next to the binary, i.e. in the build directory, so the disk is the project's disk. */
	char self[4096];
	ssize_t got = readlink("/proc/self/exe", self, sizeof self - 1);
	if (got <= 0)
		fail("readlink /proc/self/exe", strerror(errno));
	self[got] = '\0';
	char *slash = strrchr(self, '/');
	if (slash != NULL)
		*slash = '\0';
	format_path(out, length, "%s/wal-bench-XXXXXX", self);
}

int main(int argc, char **argv)
{
	double seconds = 3.0;
	const char *parent = NULL;
	static const struct option long_options[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "seconds", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int option;
	while ((option = getopt_long(argc, argv, "d:s:h", long_options, NULL)) != -1) {
		switch (option) {
		case 'd':
			parent = optarg;
			break;
		case 's':
			seconds = strtod(optarg, NULL);
			break;
		default:
			printf("usage: %s [--dir DIR] [--seconds S]\n"
					"  --dir DIR      directory on the disk to measure (default: next to this binary)\n"
					"  --seconds S    duration of each row (default 3)\n", argv[0]);
			return option == 'h' ? 0 : 2;
		}
	}
	char dir[4200];
	if (parent != NULL)
		format_path(dir, sizeof dir, "%s/wal-bench-XXXXXX", parent);
	else
		default_dir(dir, sizeof dir);
	if (mkdtemp(dir) == NULL)
		fail(dir, strerror(errno));
	struct statfs filesystem;
	if (statfs(dir, &filesystem) == 0)
		printf("directory %s (filesystem magic 0x%lx), %.1f s per row, %d-byte entries\n", dir,
				(unsigned long)filesystem.f_type, seconds, ENTRY_SIZE);

	print_header();
	struct result bare = measure_write_sync(dir, "bare write 4 KiB + fdatasync", BARE_WRITE_SIZE, false,
			seconds);
	print_row(&bare, 1);
	struct result naive = measure_write_sync(dir, "naive write 1 KiB + fdatasync", ENTRY_SIZE, false, seconds);
	double naive_rate = (double)naive.entries / naive.seconds;
	print_row(&naive, naive_rate);
	struct result floor = measure_write_sync(dir, "naive, overwriting written blocks", ENTRY_SIZE, true,
			seconds);
	floor.has_ratio = true;
	print_row(&floor, naive_rate);
	static const unsigned proposer_counts[] = { 1, 8, 64, 256 };
	for (int direct = 0; direct <= 1; direct++) {
		for (size_t i = 0; i < sizeof proposer_counts / sizeof proposer_counts[0]; i++) {
			char name[64];
			snprintf(name, sizeof name, "wal %s, %u proposers", direct ? "O_DIRECT" : "buffered",
					proposer_counts[i]);
			struct result result = measure_wal(dir, name, proposer_counts[i], direct, seconds);
			print_row(&result, naive_rate);
		}
	}
	printf("ratios: entries/s divided by the naive row (same preallocated file layout as the wal).\n"
			"latency goal: group-commit p50 within 1.3x of the bare row's p50 (%.0f us) -> %.0f us\n",
			bare.p50_us, bare.p50_us * 1.3);
	remove_tree(dir);
	return 0;
}
