/* bench/wal_bench.c: what io_uring group commit buys on this disk. In one run, on one directory, it
 * measures the bare write+fdatasync rate, a naive WAL (write() then fdatasync() per 1 KiB entry), a raw
 * 64 KiB write+fdatasync (the disk's floor for a group of 64), and
 * storage/wal with 1, 8, 64 and 256 concurrent proposers in buffered and O_DIRECT modes, and prints one
 * table row per configuration with the ratio of each group-commit row to the naive baseline.
 *
 * A proposer is a closed-loop client with one append outstanding: it appends a 1 KiB entry, waits until
 * the wal reports it durable, and appends the next at once. Proposers are simulated in the one thread
 * that owns the wal, as the node's storage thread would receive them: every proposer whose entry became
 * durable appends its next entry before the loop submits again, so the next group holds all of them.
 * Latency is append-to-durable as the owner observes it.
 *
 * A shared or virtual disk drifts by several times within a minute, so configurations are not measured
 * one after the other: each runs in short slices, round-robin, until it has had --seconds in total. A
 * slow spell then hits every row alike and the ratios stay meaningful. Numbers are printed, never judged. */
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
/* What 64 proposers' entries weigh: the floor for one group commit of 64 on this disk. */
#define RAW_BATCH_SIZE (64 * ENTRY_SIZE)
#define BASELINE_FILE_SIZE (128ull * 1024 * 1024)
#define SLICE_SECONDS 0.25

enum kind { BARE, NAIVE, NAIVE_PREWRITTEN, RAW_BATCH, GROUP_COMMIT };

struct samples {
	double *values; /* microseconds */
	size_t count;
	size_t capacity;
};

struct configuration {
	char name[64];
	enum kind kind;
	unsigned proposers;
	bool direct_io;
	/* running state */
	int fd;
	uint64_t offset;
	struct wal *wal;
	uint64_t *outstanding;  /* per proposer: index of its entry in flight, 0 if none */
	double *appended_at;
	uint64_t next_index;
	/* results */
	double seconds;
	uint64_t entries;
	uint64_t syncs;
	struct samples latency;
};

static char work_dir[4200];

static double now_us(void)
{
	struct timespec time;
	clock_gettime(CLOCK_MONOTONIC, &time);
	return (double)time.tv_sec * 1e6 + (double)time.tv_nsec / 1e3;
}

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "wal-bench: %s: %s\n", what, detail);
	exit(1);
}

static void add_sample(struct samples *samples, double value)
{
	if (samples->count == samples->capacity) {
		samples->capacity = samples->capacity ? samples->capacity * 2 : 4096;
		samples->values = realloc(samples->values, samples->capacity * sizeof *samples->values);
		if (samples->values == NULL)
			fail("realloc", "out of memory");
	}
	samples->values[samples->count++] = value;
}

static int by_value(const void *left, const void *right)
{
	double a = *(const double *)left, b = *(const double *)right;
	return a < b ? -1 : a > b;
}

static double percentile(struct samples *samples, unsigned percent)
{
	if (samples->count == 0)
		return 0;
	qsort(samples->values, samples->count, sizeof *samples->values, by_value);
	return samples->values[samples->count * percent / 100];
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

/* The baselines write sequentially through a file preallocated with fallocate, as the wal's segments
 * are; the prewritten one through a file whose blocks were all written before (no extent conversion
 * to journal: the cheapest a synchronous write gets on this file system). */
static void start_baseline(struct configuration *configuration, size_t index)
{
	char path[4400];
	format_path(path, sizeof path, "%s/baseline-%zu.data", work_dir, index);
	configuration->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (configuration->fd < 0 || fallocate(configuration->fd, 0, 0, BASELINE_FILE_SIZE) != 0)
		fail(path, strerror(errno));
	if (configuration->kind == NAIVE_PREWRITTEN) {
		static uint8_t zeros[1 << 20];
		for (uint64_t at = 0; at < BASELINE_FILE_SIZE; at += sizeof zeros)
			if (pwrite(configuration->fd, zeros, sizeof zeros, (off_t)at) != (ssize_t)sizeof zeros)
				fail(path, strerror(errno));
	}
	if (fdatasync(configuration->fd) != 0)
		fail(path, strerror(errno));
}

static void start_wal(struct configuration *configuration, size_t index)
{
	char path[4400];
	format_path(path, sizeof path, "%s/wal-%zu", work_dir, index);
	struct wal_options options;
	wal_options_init(&options);
	options.direct_io = configuration->direct_io;
	char err[512];
	if (wal_open(path, &options, &configuration->wal, err, sizeof err) != 0)
		fail("wal_open", err);
	configuration->outstanding = calloc(configuration->proposers, sizeof *configuration->outstanding);
	configuration->appended_at = calloc(configuration->proposers, sizeof *configuration->appended_at);
	if (configuration->outstanding == NULL || configuration->appended_at == NULL)
		fail("calloc", "out of memory");
	configuration->next_index = 1;
}

static void run_baseline_slice(struct configuration *configuration, double seconds)
{
	static uint8_t buffer[RAW_BATCH_SIZE];
	memset(buffer, 0xa5, sizeof buffer);
	size_t size = configuration->kind == BARE ? BARE_WRITE_SIZE :
			configuration->kind == RAW_BATCH ? RAW_BATCH_SIZE : ENTRY_SIZE;
	double start = now_us(), end = start + seconds * 1e6, at = start;
	while (at < end) {
		double before = at;
		if (pwrite(configuration->fd, buffer, size, (off_t)configuration->offset) != (ssize_t)size ||
				fdatasync(configuration->fd) != 0)
			fail(configuration->name, strerror(errno));
		configuration->offset = (configuration->offset + size) % BASELINE_FILE_SIZE;
		at = now_us();
		add_sample(&configuration->latency, at - before);
		configuration->entries++;
		configuration->syncs++;
	}
	configuration->seconds += (at - start) / 1e6;
}

/* Proposers propose until the slice ends, then the slice waits for their last entries. */
static void run_wal_slice(struct configuration *configuration, double seconds)
{
	static uint8_t data[ENTRY_SIZE];
	memset(data, 0x5a, sizeof data);
	struct wal *wal = configuration->wal;
	char err[512];
	uint64_t syncs_before = wal_sync_count(wal);
	double start = now_us(), end = start + seconds * 1e6, at = start;
	bool stopping = false;
	for (;;) {
		for (unsigned p = 0; p < configuration->proposers && !stopping; p++) {
			if (configuration->outstanding[p] != 0)
				continue;
			struct wal_entry entry = { .term = 1, .index = configuration->next_index, .data = data,
				.data_length = sizeof data };
			if (wal_append_entries(wal, &entry, 1, err, sizeof err) != 0)
				fail("wal_append_entries", err);
			configuration->outstanding[p] = configuration->next_index++;
			configuration->appended_at[p] = at;
		}
		if (wal_submit(wal, err, sizeof err) != 0)
			fail("wal_submit", err);
		uint64_t durable = 0;
		if (wal_wait(wal, &durable, err, sizeof err) != 0)
			fail("wal_wait", err);
		at = now_us();
		bool any_outstanding = false;
		for (unsigned p = 0; p < configuration->proposers; p++) {
			if (configuration->outstanding[p] != 0 && configuration->outstanding[p] <= durable) {
				add_sample(&configuration->latency, at - configuration->appended_at[p]);
				configuration->outstanding[p] = 0;
				configuration->entries++;
			}
			any_outstanding |= configuration->outstanding[p] != 0;
		}
		stopping = at >= end;
		if (stopping && !any_outstanding)
			break;
	}
	configuration->syncs += wal_sync_count(wal) - syncs_before;
	configuration->seconds += (at - start) / 1e6;
}

static void print_header(void)
{
	printf("%-34s %12s %10s %9s %10s %10s %9s\n", "configuration", "entries/s", "fsyncs/s", "ent/fsync",
			"p50 us", "p99 us", "vs naive");
}

static void print_row(struct configuration *configuration, double naive_rate)
{
	double rate = (double)configuration->entries / configuration->seconds;
	char ratio[32] = "";
	if (configuration->kind == GROUP_COMMIT || configuration->kind == NAIVE_PREWRITTEN)
		snprintf(ratio, sizeof ratio, "%.1fx", rate / naive_rate);
	double p50 = percentile(&configuration->latency, 50);
	double p99 = percentile(&configuration->latency, 99);
	printf("%-34s %12.0f %10.0f %9.1f %10.0f %10.0f %9s\n", configuration->name, rate,
			(double)configuration->syncs / configuration->seconds,
			configuration->syncs ? (double)configuration->entries / (double)configuration->syncs : 0.0, p50,
			p99, ratio);
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
					"  --seconds S    time each configuration runs in total (default 3)\n", argv[0]);
			return option == 'h' ? 0 : 2;
		}
	}
	if (parent != NULL)
		format_path(work_dir, sizeof work_dir, "%s/wal-bench-XXXXXX", parent);
	else
		default_dir(work_dir, sizeof work_dir);
	if (mkdtemp(work_dir) == NULL)
		fail(work_dir, strerror(errno));

	static struct configuration configurations[16];
	size_t count = 0;
	configurations[count++] = (struct configuration){ .name = "bare write 4 KiB + fdatasync", .kind = BARE };
	configurations[count++] = (struct configuration){ .name = "naive write 1 KiB + fdatasync", .kind = NAIVE };
	configurations[count++] = (struct configuration){ .name = "naive, overwriting written blocks",
		.kind = NAIVE_PREWRITTEN };
	configurations[count++] = (struct configuration){ .name = "raw write 64 KiB + fdatasync",
		.kind = RAW_BATCH };
	static const unsigned proposer_counts[] = { 1, 8, 64, 256 };
	for (int direct = 0; direct <= 1; direct++) {
		for (size_t i = 0; i < sizeof proposer_counts / sizeof proposer_counts[0]; i++) {
			struct configuration *configuration = &configurations[count++];
			*configuration = (struct configuration){ .kind = GROUP_COMMIT,
				.proposers = proposer_counts[i], .direct_io = direct != 0 };
			snprintf(configuration->name, sizeof configuration->name, "wal %s, %u proposers",
					direct ? "O_DIRECT" : "buffered", proposer_counts[i]);
		}
	}
	for (size_t i = 0; i < count; i++) {
		if (configurations[i].kind == GROUP_COMMIT)
			start_wal(&configurations[i], i);
		else
			start_baseline(&configurations[i], i);
	}

	struct statfs filesystem;
	if (statfs(work_dir, &filesystem) == 0)
		printf("directory %s (filesystem magic 0x%lx); %.1f s per configuration in %.2f s slices, "
				"round-robin; %d-byte entries\n", work_dir, (unsigned long)filesystem.f_type, seconds,
				SLICE_SECONDS, ENTRY_SIZE);
	fflush(stdout);
	unsigned rounds = (unsigned)(seconds / SLICE_SECONDS + 0.5);
	if (rounds == 0)
		rounds = 1;
	for (unsigned round = 0; round < rounds; round++) {
		for (size_t i = 0; i < count; i++) {
			if (configurations[i].kind == GROUP_COMMIT)
				run_wal_slice(&configurations[i], seconds / rounds);
			else
				run_baseline_slice(&configurations[i], seconds / rounds);
		}
	}

	print_header();
	double naive_rate = (double)configurations[1].entries / configurations[1].seconds;
	double bare_p50 = percentile(&configurations[0].latency, 50);
	for (size_t i = 0; i < count; i++)
		print_row(&configurations[i], naive_rate);
	printf("ratios: entries/s divided by the naive row (same preallocated file layout as the wal).\n"
			"raw 64 KiB row: one write+fdatasync of what 64 proposers' entries weigh, without the wal.\n"
			"latency goal: group-commit p50 within 1.3x of the bare row's p50 (%.0f us), i.e. <= %.0f us\n",
			bare_p50, bare_p50 * 1.3);
	for (size_t i = 0; i < count; i++) {
		if (configurations[i].wal != NULL)
			wal_close(configurations[i].wal);
		if (configurations[i].kind != GROUP_COMMIT)
			close(configurations[i].fd);
		free(configurations[i].outstanding);
		free(configurations[i].appended_at);
		free(configurations[i].latency.values);
	}
	remove_tree(work_dir);
	return 0;
}
