/* bench/fsync_probe.c: what one bare fdatasync costs on a directory's disk, as the floor for commit latency.
 *
 *   fsync-probe [--mode append|overwrite|preallocated] [--count N] [--block BYTES] [--max-seconds S] DIR
 *
 * Writes BLOCK bytes (default 4096, a WAL record batch's typical page) to a fresh file in DIR and calls
 * fdatasync, COUNT times (default 1000) or until MAX-SECONDS (default 5) have passed, timing each
 * write + fdatasync pair; prints one JSON line: mode, count, block, and min / mean / p50 / p90 / p99 / max
 * in ms. The file is removed at the end. bench/compare.sh runs it on the directory that holds the members'
 * data, in the same run, so "commit latency at 1 client vs one fdatasync" compares figures from the same
 * disk under the same conditions.
 *
 * --mode append (default) grows the file, so each fdatasync also commits the new size (a journal commit
 * on ext4), as a WAL appending to its segment does. --mode overwrite first writes and syncs the whole
 * file (COUNT blocks, at most 64 MiB, reused round-robin beyond that), then times pwrite + fdatasync into
 * blocks that already exist: no metadata changes, only the data and the disk's cache flush, the cheapest
 * durable write this disk does (a WAL with preallocated, pre-zeroed segments gets this).
 *
 * --mode preallocated reserves COUNT blocks with fallocate first (as storage/wal prepares a segment that is
 * not zero-filled) and writes them in order, each once: the size does not change, but each first write
 * into an unwritten extent makes the fdatasync commit the extent's conversion (a journal commit on ext4). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The value at percentile p of sorted[0..n): the ceil(p% * n)-th smallest, as quorum-bench's histogram. */
static double percentile_ms(const uint64_t *sorted, size_t n, double p)
{
	size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)sorted[rank - 1] / 1e6;
}

static int usage(void)
{
	fprintf(stderr, "usage: fsync-probe [--mode append|overwrite|preallocated] [--count N] [--block BYTES] "
	        "[--max-seconds S] DIR\n");
	return 2;
}

/* A positive integer argument; 0 when it is not one. */
static unsigned long positive(const char *text)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(text, &end, 10);
	return errno || *end || text[0] == '-' ? 0 : v;
}

int main(int argc, char **argv)
{
	unsigned long count = 1000, block = 4096, max_seconds = 5;
	const char *dir = NULL, *mode = "append";
	for (int i = 1; i < argc; i++) {
		unsigned long *target = NULL;
		if (!strcmp(argv[i], "--mode")) {
			if (i + 1 >= argc || (strcmp(argv[i + 1], "append") && strcmp(argv[i + 1], "overwrite") &&
			                      strcmp(argv[i + 1], "preallocated")))
				return usage();
			mode = argv[++i];
		} else if (!strcmp(argv[i], "--count"))
			target = &count;
		else if (!strcmp(argv[i], "--block"))
			target = &block;
		else if (!strcmp(argv[i], "--max-seconds"))
			target = &max_seconds;
		else if (argv[i][0] == '-' || dir)
			return usage();
		else
			dir = argv[i];
		if (target) {
			if (i + 1 >= argc || !(*target = positive(argv[++i])))
				return usage();
		}
	}
	if (!dir || block > (64ul << 20) || count > 10000000)
		return usage();
	if (!strcmp(mode, "preallocated") && count * block > (1ul << 30)) {
		fprintf(stderr, "fsync-probe: --mode preallocated reserves COUNT x BLOCK bytes: at most 1 GiB\n");
		return 2;
	}

	char path[4096];
	snprintf(path, sizeof(path), "%s/fsync-probe.%ld", dir, (long)getpid());
	bool append = !strcmp(mode, "append");
	bool preallocated = !strcmp(mode, "preallocated");
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | (append ? O_APPEND : 0) | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "fsync-probe: %s: %s\n", path, strerror(errno));
		return 1;
	}
	char *buf = malloc(block);
	uint64_t *lat = malloc(count * sizeof(*lat));
	if (!buf || !lat) {
		fprintf(stderr, "fsync-probe: out of memory\n");
		close(fd);
		unlink(path);
		return 1;
	}
	memset(buf, 'f', block);
	/* overwrite: the blocks exist and are on disk before the first timed write. */
	unsigned long slots = count;
	if (slots > (64ul << 20) / block)
		slots = (64ul << 20) / block ? (64ul << 20) / block : 1;
	int setup_failed = 0;
	for (unsigned long i = 0; !append && !preallocated && i < slots && !setup_failed; i++)
		setup_failed = write(fd, buf, block) != (ssize_t)block;
	/* preallocated: every timed write goes to a block of its own, reserved but never written. */
	if (preallocated)
		setup_failed = fallocate(fd, 0, 0, (off_t)(count * block)) != 0;
	/* The file itself exists on disk before the first timed sync, so the first sample is not a create. */
	if (setup_failed || fdatasync(fd) != 0 || fsync(fd) != 0) {
		fprintf(stderr, "fsync-probe: preparing %s: %s\n", path, strerror(errno));
		close(fd);
		unlink(path);
		return 1;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}

	uint64_t start = now_ns(), deadline = start + (uint64_t)max_seconds * 1000000000u, sum = 0;
	size_t n = 0;
	int rc = 0;
	while (n < count) {
		uint64_t t0 = now_ns();
		off_t at = preallocated ? (off_t)(n * block) : (off_t)((n % slots) * block);
		ssize_t w = append ? write(fd, buf, block) : pwrite(fd, buf, block, at);
		if (w != (ssize_t)block || fdatasync(fd) != 0) {
			fprintf(stderr, "fsync-probe: write+fdatasync %s: %s\n", path, strerror(errno));
			rc = 1;
			break;
		}
		uint64_t t1 = now_ns();
		lat[n++] = t1 - t0;
		sum += t1 - t0;
		if (t1 >= deadline)
			break;
	}
	close(fd);
	unlink(path);
	if (n > 0) {
		qsort(lat, n, sizeof(*lat), cmp_u64);
		printf("{\"tool\": \"fsync-probe\", \"mode\": \"%s\", \"dir\": \"%s\", \"block\": %lu, \"count\": %zu, "
		       "\"min_ms\": %.4f, \"mean_ms\": %.4f, \"p50_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, "
		       "\"max_ms\": %.4f}\n",
		    mode, dir, block, n, (double)lat[0] / 1e6, (double)sum / (double)n / 1e6, percentile_ms(lat, n, 50),
		    percentile_ms(lat, n, 90), percentile_ms(lat, n, 99), (double)lat[n - 1] / 1e6);
	}
	free(buf);
	free(lat);
	return rc;
}
