/* bench/wal_bench.c: does the WAL's group commit run at the disk's speed? In one run, on one directory,
 * it measures the disk's own rate (a bare pwrite + fdatasync loop, at 4 KiB and at the size of one group
 * of 1, 8 and 64 entries) next to storage/wal with 1, 8 and 64 closed-loop proposers, and prints for each
 * wal row its ratio to the bare loop that writes the same bytes per fdatasync.
 *
 * Like for like: the bare loop writes sequentially into files preallocated with fallocate and never
 * written before, as the wal writes its segments (on ext4 a first write into such blocks costs a journal
 * commit on the next fdatasync; on a thin-provisioned virtual disk it also costs the host an allocation).
 * When a file is full the loop moves to a new one prepared outside the timed part, as the wal prepares
 * segments ahead. One row overwrites blocks written before, the cheapest durable write the disk does, as
 * a reference only.
 *
 * A proposer has one entry outstanding: it appends, waits until the wal reports the entry durable, and
 * appends the next one at once. Proposers are simulated in the thread that owns the wal, as the node's
 * storage thread sees them: after each completion, every proposer whose entry became durable appends
 * again, then the loop submits (one Ready). "In N waves" splits the proposers into N groups that submit
 * separately, as clients in different phases send separate Readies; with the wal's pipeline, one group's
 * write then runs while the other group's fdatasync does. In one wave (lockstep) every group holds all
 * proposers and the pipeline has nothing to overlap.
 *
 * Each wal first writes past its first segment (prepared synchronously at open, so only preallocated):
 * what is measured is the steady state, appends into segments prepared ahead.
 *
 * ratio = the wal's entries/s divided by the entries/s of the bare loop writing the same group size
 * (its writes/s times the group's entries), once for fresh preallocated blocks (a segment that is only
 * preallocated) and once for blocks written before (a zero-filled segment, without the cost of filling
 * it). In one wave each is exactly the ratio of fdatasyncs per second.
 *
 * A shared or virtual disk drifts by several times within a minute, so configurations run round-robin in
 * 0.25 s slices until each has had --seconds: a slow spell hits every row alike. Numbers are printed, never
 * judged. */
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

#define BARE_SMALL_SIZE 4096
#define BARE_FILE_SIZE (64ull * 1024 * 1024)  /* the wal's default segment size */
#define OVERWRITE_FILE_SIZE (16ull * 1024 * 1024)
#define SLICE_SECONDS 0.25
#define MAX_CONFIGURATIONS 32
#define ALIGNMENT 4096u

enum kind { BARE, BARE_OVERWRITE, WAL };

struct samples {
	double *values; /* microseconds */
	size_t count;
	size_t capacity;
};

struct configuration {
	char name[80];
	enum kind kind;
	bool direct_io;
	bool dsync_writes;      /* wal rows: RWF_DSYNC writes instead of fdatasync */
	size_t write_size;       /* bare: bytes per write */
	unsigned group_entries;  /* bare: entries that write stands for; wal: proposers */
	unsigned waves;          /* wal: groups of proposers that submit separately */
	struct configuration *disk; /* wal: the bare row writing its group size into fresh blocks */
	struct configuration *disk_written; /* wal: the same over blocks written before */
	/* running state */
	int fd;
	int next_fd;             /* bare: the next preallocated file, ready before the current one is full */
	unsigned file_number;
	uint64_t offset;
	struct wal *wal;
	uint64_t *outstanding;   /* per proposer: index of its entry in flight, 0 if none */
	double *appended_at;
	uint64_t next_index;
	/* results */
	double seconds;
	uint64_t entries;
	uint64_t syncs;
	struct samples latency;
};

static char work_dir[4200];
static bool no_zero_segments;
static size_t entry_size = 1024;
static uint8_t *write_buffer;

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

static size_t varint_size(uint64_t value)
{
	size_t size = 1;
	while (value >= 0x80) {
		value >>= 7;
		size++;
	}
	return size;
}

/* What one entry weighs in the wal: the record header (9 bytes), then the walpb.Entry fields (term 1,
 * an index of about a million, type 0 omitted, then the data). */
static size_t record_size(void)
{
	return 9 + 2 + 1 + varint_size(1000000) + 1 + varint_size(entry_size) + entry_size;
}

/* A file preallocated as the wal's segments are, made durable, none of its blocks written yet. */
static int preallocated_file(struct configuration *configuration, size_t index, uint64_t size)
{
	char path[4400];
	format_path(path, sizeof path, "%s/bare-%zu-%u.data", work_dir, index, configuration->file_number++);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | (configuration->direct_io ? O_DIRECT : 0),
			0644);
	if (fd < 0 || fallocate(fd, 0, 0, (off_t)size) != 0 || fdatasync(fd) != 0)
		fail(path, strerror(errno));
	/* Deleting the previous file now (not at the end) keeps the disk from filling up in long runs. */
	if (configuration->file_number >= 3) {
		format_path(path, sizeof path, "%s/bare-%zu-%u.data", work_dir, index, configuration->file_number - 3);
		unlink(path);
	}
	return fd;
}

static void start_bare(struct configuration *configuration, size_t index)
{
	if (configuration->kind == BARE_OVERWRITE) {
		configuration->fd = preallocated_file(configuration, index, OVERWRITE_FILE_SIZE);
		for (uint64_t at = 0; at < OVERWRITE_FILE_SIZE; at += configuration->write_size)
			if (pwrite(configuration->fd, write_buffer, configuration->write_size, (off_t)at) !=
					(ssize_t)configuration->write_size)
				fail(configuration->name, strerror(errno));
		if (fdatasync(configuration->fd) != 0)
			fail(configuration->name, strerror(errno));
		return;
	}
	configuration->fd = preallocated_file(configuration, index, BARE_FILE_SIZE);
	configuration->next_fd = preallocated_file(configuration, index, BARE_FILE_SIZE);
}

static void start_wal(struct configuration *configuration, size_t index, unsigned pipeline_depth)
{
	char path[4400];
	format_path(path, sizeof path, "%s/wal-%zu", work_dir, index);
	struct wal_options options;
	wal_options_init(&options);
	options.direct_io = configuration->direct_io;
	options.dsync_writes = configuration->dsync_writes;
	if (pipeline_depth != 0)
		options.pipeline_depth = pipeline_depth;
	if (no_zero_segments)
		options.zero_segments = false;
	char err[512];
	if (wal_open(path, &options, &configuration->wal, err, sizeof err) != 0)
		fail("wal_open", err);
	configuration->outstanding = calloc(configuration->group_entries, sizeof *configuration->outstanding);
	configuration->appended_at = calloc(configuration->group_entries, sizeof *configuration->appended_at);
	if (configuration->outstanding == NULL || configuration->appended_at == NULL)
		fail("calloc", "out of memory");
	configuration->next_index = 1;
	/* Warm-up: a new wal's first segment is only preallocated (prepared synchronously, before anything
	 * could fill it); a node that has run for a while appends into segments prepared ahead, zero-filled
	 * while the one before filled up in small batches. Write past the first segment in batches of 16
	 * entries (below the size where the wal stops zero-filling) before anything is measured. */
	uint64_t warm_up_bytes = options.segment_size + options.segment_size / 4;
	while ((configuration->next_index - 1) * record_size() < warm_up_bytes) {
		for (unsigned i = 0; i < 16; i++) {
			struct wal_entry entry = { .term = 1, .index = configuration->next_index++,
				.data = write_buffer, .data_length = entry_size };
			if (wal_append_entries_referenced(configuration->wal, &entry, 1, err, sizeof err) != 0)
				fail("wal_append_entries_referenced", err);
		}
		uint64_t durable = 0;
		while (durable < configuration->next_index - 1)
			if (wal_wait(configuration->wal, &durable, err, sizeof err) != 0)
				fail("wal_wait", err);
	}
}

/* The time a bare loop spends moving to its next file is not counted: the wal prepares segments ahead. */
static void run_bare_slice(struct configuration *configuration, size_t index, double seconds)
{
	size_t size = configuration->write_size;
	uint64_t file_size = configuration->kind == BARE_OVERWRITE ? OVERWRITE_FILE_SIZE : BARE_FILE_SIZE;
	double counted = 0, start = now_us(), end = start + seconds * 1e6, at = start;
	while (at < end) {
		if (configuration->offset + size > file_size) {
			configuration->offset = 0;
			if (configuration->kind == BARE) {
				double before = now_us();
				close(configuration->fd);
				configuration->fd = configuration->next_fd;
				configuration->next_fd = preallocated_file(configuration, index, BARE_FILE_SIZE);
				double spent = now_us() - before;
				end += spent;
				counted -= spent;
			}
		}
		double before = now_us();
		if (pwrite(configuration->fd, write_buffer, size, (off_t)configuration->offset) != (ssize_t)size ||
				fdatasync(configuration->fd) != 0)
			fail(configuration->name, strerror(errno));
		configuration->offset += size;
		at = now_us();
		add_sample(&configuration->latency, at - before);
		configuration->entries += configuration->group_entries;
		configuration->syncs++;
	}
	configuration->seconds += (at - start + counted) / 1e6;
}

/* Proposers propose until the slice ends, then the slice waits for their last entries. */
static void run_wal_slice(struct configuration *configuration, double seconds)
{
	struct wal *wal = configuration->wal;
	char err[512];
	uint64_t syncs_before = wal_sync_count(wal);
	double start = now_us(), end = start + seconds * 1e6, at = start;
	bool stopping = false;
	for (;;) {
		for (unsigned wave = 0; wave < configuration->waves && !stopping; wave++) {
			for (unsigned p = wave; p < configuration->group_entries; p += configuration->waves) {
				if (configuration->outstanding[p] != 0)
					continue;
				/* Each proposer's data is its own piece of the buffer, lent to the wal until
				 * durable, as the storage thread lends a Ready's entries. */
				struct wal_entry entry = { .term = 1, .index = configuration->next_index,
					.data = write_buffer + (size_t)p * entry_size, .data_length = entry_size };
				if (wal_append_entries_referenced(wal, &entry, 1, err, sizeof err) != 0)
					fail("wal_append_entries_referenced", err);
				configuration->outstanding[p] = configuration->next_index++;
				configuration->appended_at[p] = at;
			}
			if (wal_submit(wal, err, sizeof err) != 0)
				fail("wal_submit", err);
		}
		uint64_t durable = 0;
		if (wal_wait(wal, &durable, err, sizeof err) != 0)
			fail("wal_wait", err);
		at = now_us();
		bool any_outstanding = false;
		for (unsigned p = 0; p < configuration->group_entries; p++) {
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

static double entry_rate(const struct configuration *configuration)
{
	return configuration->seconds > 0 ? (double)configuration->entries / configuration->seconds : 0;
}

static void print_row(struct configuration *configuration)
{
	double syncs = configuration->seconds > 0 ? (double)configuration->syncs / configuration->seconds : 0;
	char fresh_ratio[32] = "", written_ratio[32] = "";
	if (configuration->kind == WAL && entry_rate(configuration->disk) > 0)
		snprintf(fresh_ratio, sizeof fresh_ratio, "%.2f", entry_rate(configuration) / entry_rate(configuration->disk));
	if (configuration->kind == WAL && entry_rate(configuration->disk_written) > 0)
		snprintf(written_ratio, sizeof written_ratio, "%.2f",
				entry_rate(configuration) / entry_rate(configuration->disk_written));
	char size[32] = "";
	if (configuration->kind != WAL)
		snprintf(size, sizeof size, "%zu", configuration->write_size);
	double p50 = percentile(&configuration->latency, 50);
	double p99 = percentile(&configuration->latency, 99);
	printf("%-44s %6s %10.0f %9.0f %9.1f %7.0f %7.0f %7s %7s\n", configuration->name, size,
			entry_rate(configuration), syncs,
			configuration->syncs ? (double)configuration->entries / (double)configuration->syncs : 0.0, p50, p99,
			fresh_ratio, written_ratio);
}

static struct configuration configurations[MAX_CONFIGURATIONS];
static size_t configuration_count;

/* Issue 16's goal, one line per 64-proposer row: group commit at 0.75 of the disk's own rate or better. The
 * like-for-like disk row is the one into fresh preallocated blocks: at 64 entries a group is 66 KiB, above
 * the 32 KiB at which the wal stops zero-filling, so it writes only-preallocated blocks as that row does. */
static void print_goal(void)
{
	printf("\ngoal (issue 16): group commit at 64 proposers >= 0.75x the disk's own rate for the same bytes\n");
	for (size_t i = 0; i < configuration_count; i++) {
		const struct configuration *wal = &configurations[i];
		if (wal->kind != WAL || wal->group_entries != 64 || entry_rate(wal->disk) <= 0 ||
				entry_rate(wal->disk_written) <= 0)
			continue;
		double fresh = entry_rate(wal) / entry_rate(wal->disk);
		double written = entry_rate(wal) / entry_rate(wal->disk_written);
		printf("  %-40s %5.2fx the disk into fresh blocks (%s), %5.2fx over written blocks\n", wal->name, fresh,
				fresh >= 0.75 ? "met" : "NOT met", written);
	}
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


static struct configuration *add_configuration(enum kind kind, bool direct_io)
{
	if (configuration_count == MAX_CONFIGURATIONS)
		fail("configurations", "too many");
	struct configuration *configuration = &configurations[configuration_count++];
	*configuration = (struct configuration){ .kind = kind, .direct_io = direct_io, .fd = -1, .next_fd = -1 };
	return configuration;
}

static size_t aligned(size_t size, bool direct_io)
{
	return direct_io ? (size + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT : size;
}

/* The wal rows of one write mode, each pointing at the disk row of its group size. */
static void add_wal_rows(const char *mode, bool direct_io, bool dsync_writes, unsigned waves,
		struct configuration *disk_rows[3], struct configuration *written_rows[3])
{
	static const unsigned proposer_counts[] = { 1, 8, 64 };
	for (size_t i = 0; i < 3; i++) {
		struct configuration *wal = add_configuration(WAL, direct_io);
		wal->dsync_writes = dsync_writes;
		wal->group_entries = proposer_counts[i];
		wal->waves = 1;
		wal->disk = disk_rows[i];
		wal->disk_written = written_rows[i];
		snprintf(wal->name, sizeof wal->name, "wal %s: %u proposer%s", mode, proposer_counts[i],
				proposer_counts[i] == 1 ? "" : "s");
	}
	for (size_t i = 1; i < 3 && waves > 1; i++) {
		struct configuration *wal = add_configuration(WAL, direct_io);
		wal->dsync_writes = dsync_writes;
		wal->group_entries = proposer_counts[i];
		wal->waves = waves;
		wal->disk = disk_rows[i];
		wal->disk_written = written_rows[i];
		snprintf(wal->name, sizeof wal->name, "wal %s: %u proposers in %u waves", mode, proposer_counts[i],
				waves);
	}
}

/* The rows of one mode: the disk's rates, then the wal's, each wal row pointing at its disk row. */
static void add_mode(bool direct_io, unsigned waves)
{
	static const unsigned proposer_counts[] = { 1, 8, 64 };
	const char *mode = direct_io ? "O_DIRECT" : "buffered";
	struct configuration *small = add_configuration(BARE, direct_io);
	small->write_size = BARE_SMALL_SIZE;
	small->group_entries = 1;
	snprintf(small->name, sizeof small->name, "disk %s: write 4 KiB + fdatasync", mode);
	struct configuration *disk_rows[3], *written_rows[3];
	for (size_t i = 0; i < 3; i++) {
		struct configuration *disk = add_configuration(BARE, direct_io);
		disk->group_entries = proposer_counts[i];
		disk->write_size = aligned(proposer_counts[i] * record_size(), direct_io);
		snprintf(disk->name, sizeof disk->name, "disk %s: write %u entr%s + fdatasync", mode,
				proposer_counts[i], proposer_counts[i] == 1 ? "y" : "ies");
		disk_rows[i] = disk;
	}
	for (size_t i = 0; i < 3; i++) {
		struct configuration *overwrite = add_configuration(BARE_OVERWRITE, direct_io);
		overwrite->group_entries = proposer_counts[i];
		overwrite->write_size = disk_rows[i]->write_size;
		snprintf(overwrite->name, sizeof overwrite->name, "disk %s: the same over written blocks", mode);
		written_rows[i] = overwrite;
	}
	add_wal_rows(mode, direct_io, false, waves, disk_rows, written_rows);
	/* The node's mode: each write carries RWF_DSYNC, no fdatasync; against the same disk rows. */
	if (direct_io)
		add_wal_rows("O_DIRECT+RWF_DSYNC", true, true, waves, disk_rows, written_rows);
}

int main(int argc, char **argv)
{
	double seconds = 3.0;
	const char *parent = NULL;
	bool with_direct = false;
	unsigned pipeline_depth = 0;
	unsigned waves = 2;
	static const struct option long_options[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "seconds", required_argument, NULL, 's' },
		{ "entry-bytes", required_argument, NULL, 'e' },
		{ "depth", required_argument, NULL, 'p' },
		{ "waves", required_argument, NULL, 'w' },
		{ "direct", no_argument, NULL, 'o' },
		{ "no-zero-segments", no_argument, NULL, 'z' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int option;
	while ((option = getopt_long(argc, argv, "d:s:e:p:w:ozh", long_options, NULL)) != -1) {
		switch (option) {
		case 'd':
			parent = optarg;
			break;
		case 's':
			seconds = strtod(optarg, NULL);
			break;
		case 'e':
			entry_size = strtoul(optarg, NULL, 10);
			break;
		case 'p':
			pipeline_depth = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			waves = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'o':
			with_direct = true;
			break;
		case 'z':
			no_zero_segments = true;
			break;
		default:
			printf("usage: %s [--dir DIR] [--seconds S] [--entry-bytes N] [--depth D] [--waves W] [--direct]\n"
					"       [--no-zero-segments]\n"
					"  --dir DIR        directory on the disk to measure (default: next to this binary)\n"
					"  --seconds S      time each configuration runs in total (default 3)\n"
					"  --entry-bytes N  entry data size (default 1024)\n"
					"  --depth D        the wal's pipeline depth (default: the wal's default)\n"
					"  --waves W        the rows in waves split the proposers into W groups (default 2;\n"
					"                   1 leaves those rows out)\n"
					"  --direct         also the O_DIRECT rows, and the wal's O_DIRECT+RWF_DSYNC rows\n"
					"  --no-zero-segments  the wal's segments are only preallocated, not zero-filled\n", argv[0]);
			return option == 'h' ? 0 : 2;
		}
	}
	if (seconds <= 0 || entry_size == 0 || entry_size > 64 * 1024)
		fail("arguments", "--seconds must be positive and --entry-bytes 1..65536");
	if (parent != NULL)
		format_path(work_dir, sizeof work_dir, "%s/wal-bench-XXXXXX", parent);
	else
		default_dir(work_dir, sizeof work_dir);
	if (mkdtemp(work_dir) == NULL)
		fail(work_dir, strerror(errno));
	/* Every bare write and every proposer's entry data come from this one buffer (aligned for O_DIRECT). */
	size_t buffer_size = aligned(64 * record_size(), true);
	if (buffer_size < 64 * entry_size)
		buffer_size = 64 * entry_size;
	if (posix_memalign((void **)&write_buffer, ALIGNMENT, buffer_size) != 0)
		fail("posix_memalign", "out of memory");
	memset(write_buffer, 0xa5, buffer_size);

	struct wal_options defaults;
	wal_options_init(&defaults);
	unsigned depth = pipeline_depth ? pipeline_depth : defaults.pipeline_depth;
	add_mode(false, waves);
	if (with_direct)
		add_mode(true, waves);
	for (size_t i = 0; i < configuration_count; i++) {
		if (configurations[i].kind == WAL)
			start_wal(&configurations[i], i, pipeline_depth);
		else
			start_bare(&configurations[i], i);
	}

	struct statfs filesystem;
	if (statfs(work_dir, &filesystem) == 0)
		printf("directory %s (filesystem magic 0x%lx)\n%.1f s per configuration in %.2f s slices, round-robin; "
				"%zu-byte entries (%zu bytes as a record); wal pipeline depth %u%s\n", work_dir,
				(unsigned long)filesystem.f_type, seconds, SLICE_SECONDS, entry_size, record_size(), depth,
				defaults.zero_segments && !no_zero_segments ? ", zero-filled segments" : "");
	fflush(stdout);
	unsigned rounds = (unsigned)(seconds / SLICE_SECONDS + 0.5);
	if (rounds == 0)
		rounds = 1;
	for (unsigned round = 0; round < rounds; round++) {
		for (size_t i = 0; i < configuration_count; i++) {
			if (configurations[i].kind == WAL)
				run_wal_slice(&configurations[i], seconds / rounds);
			else
				run_bare_slice(&configurations[i], i, seconds / rounds);
		}
	}

	printf("%-44s %6s %10s %9s %9s %7s %7s %7s %7s\n", "configuration", "bytes", "entries/s", "fsyncs/s",
			"ent/fsync", "p50 us", "p99 us", "/fresh", "/written");
	for (size_t i = 0; i < configuration_count; i++)
		print_row(&configurations[i]);
	printf("/fresh, /written: the wal's entries/s over the entries/s of the disk row writing its group size\n"
			"into fresh preallocated blocks (a segment that is only preallocated), and over blocks written\n"
			"before (a zero-filled segment, less the cost of zero-filling it); in one wave each is the same\n"
			"as the ratio of fsyncs/s.\n");
	print_goal();
	for (size_t i = 0; i < configuration_count; i++) {
		if (configurations[i].wal != NULL)
			wal_close(configurations[i].wal);
		if (configurations[i].fd >= 0)
			close(configurations[i].fd);
		if (configurations[i].next_fd >= 0)
			close(configurations[i].next_fd);
		free(configurations[i].outstanding);
		free(configurations[i].appended_at);
		free(configurations[i].latency.values);
	}
	free(write_buffer);
	remove_tree(work_dir);
	return 0;
}
