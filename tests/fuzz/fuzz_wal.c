/* tests/fuzz/fuzz_wal.c: libFuzzer target for WAL recovery (storage/wal/wal.h) on arbitrary file
 * contents: the input becomes the segment files of a WAL directory, and wal_open recovers it. Errors
 * (a corrupt segment named with its offset) are fine; a crash, a hang or a read out of bounds is not.
 *
 * Input: byte 0 configures the run (bit 0: after a successful open, append one entry, wait for it to
 * be durable, close and open again: the entry and everything recovered the first time must be there;
 * bit 1: reseal the records of every file first, i.e. walk them by their length fields and recompute
 * each CRC32C with wal_record_seal, so mutated payloads get past the checksum into the decoders).
 * Then up to four file records: a name byte k, two bytes a and b, a 2-byte little-endian length, then
 * that many bytes of contents (the last record takes what is left). The name is open-A (k % 3 == 0),
 * the closed name A-B in %016x form (1), or A-B.A (2), as the WAL itself names segments.
 *
 * After a successful open, what was recovered must be sane: entries in consecutive index order, each
 * readable in full (ASan sees their bytes), above the snapshot marker, the last index what
 * wal_last_index says and not below the snapshot marker.
 *
 * The seed corpus is real segments written by the WAL: FUZZ_WAL_MAKE_SEEDS=DIR fuzz-wal writes them (a
 * few logs: entries across two segments, with hard states, a snapshot marker and a truncation) into DIR
 * in the format above, then exits. The directories live under /dev/shm when it exists (tmpfs: the
 * WAL's fdatasync and fallocate are cheap there), else $TMPDIR or /tmp. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "record.h"
#include "wal.h"

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, "fuzz-wal: " __VA_ARGS__);                             \
		fputc('\n', stderr);                                                   \
		abort();                                                               \
	} while (0)

#define SEGMENT_SIZE (16u * 1024u)
#define MAX_FILES 4

static char directory[256];

static struct wal_options options(void)
{
	struct wal_options o;
	wal_options_init(&o);
	o.segment_size = SEGMENT_SIZE;
	o.ring_entries = 8;
	return o;
}

static bool trace; /* FUZZ_WAL_TRACE=1: print what wal_open said and recovered */

/* A fresh directory for each input, removed after it: libFuzzer ends a timed run without atexit
 * handlers, so a directory kept for the whole run would stay behind in /dev/shm. */
static void make_directory(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(directory, sizeof directory, "%s/fuzz-wal.XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(directory) == NULL)
		FAIL("mkdtemp %s: %s", directory, strerror(errno));
	trace = getenv("FUZZ_WAL_TRACE") != NULL;
}

static void empty_directory(void)
{
	DIR *d = opendir(directory);
	if (d == NULL)
		FAIL("opendir %s: %s", directory, strerror(errno));
	struct dirent *item;
	while ((item = readdir(d)) != NULL) {
		if (strcmp(item->d_name, ".") == 0 || strcmp(item->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), item->d_name, 0) != 0)
			FAIL("unlink %s/%s: %s", directory, item->d_name, strerror(errno));
	}
	closedir(d);
}

/* Recomputes the CRC of each record of a segment's bytes, walking them by their length fields. */
static void reseal(uint8_t *bytes, size_t length)
{
	size_t offset = 0;
	while (offset + WAL_RECORD_HEADER_SIZE <= length) {
		uint8_t *header = bytes + offset;
		uint32_t payload = (uint32_t)header[0] | (uint32_t)header[1] << 8 | (uint32_t)header[2] << 16 |
			(uint32_t)header[3] << 24;
		if (payload == 0 && header[8] == 0)
			break;
		if (payload > length - offset - WAL_RECORD_HEADER_SIZE)
			break;
		wal_record_seal(header, header[8], payload);
		offset += WAL_RECORD_HEADER_SIZE + payload;
	}
}

static void write_file(const char *name, const uint8_t *data, size_t length, bool seal)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", directory, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		FAIL("open %s: %s", path, strerror(errno));
	uint8_t *copy = NULL;
	if (seal && length > 0) {
		copy = malloc(length);
		memcpy(copy, data, length);
		reseal(copy, length);
		data = copy;
	}
	size_t done = 0;
	while (done < length) {
		ssize_t n = write(fd, data + done, length - done);
		if (n <= 0)
			FAIL("write %s: %s", path, strerror(errno));
		done += (size_t)n;
	}
	close(fd);
	free(copy);
}

/* Checks what was recovered; returns a copy of the entries' (index, term, first data byte) digest. */
static uint64_t check_recovered(struct wal *wal)
{
	const struct wal_recovered *r = wal_recovered(wal);
	uint64_t digest = 1469598103934665603ull;
	for (size_t k = 0; k < r->entry_count; k++) {
		const struct wal_entry *e = &r->entries[k];
		if (k > 0 && e->index != r->entries[k - 1].index + 1)
			FAIL("recovered entries out of order: %llu after %llu", (unsigned long long)e->index,
				(unsigned long long)r->entries[k - 1].index);
		if (e->data_length > 0 && e->data == NULL)
			FAIL("entry %llu: %zu bytes at NULL", (unsigned long long)e->index, e->data_length);
		for (size_t i = 0; i < e->data_length; i++)
			digest = (digest ^ e->data[i]) * 1099511628211ull;
		digest = (digest ^ e->index ^ (e->term << 20) ^ e->type) * 1099511628211ull;
	}
	if (r->entry_count > 0 && wal_last_index(wal) != r->entries[r->entry_count - 1].index)
		FAIL("wal_last_index %llu, last recovered entry %llu", (unsigned long long)wal_last_index(wal),
			(unsigned long long)r->entries[r->entry_count - 1].index);
	if (r->has_snapshot && r->entry_count > 0 && r->entries[0].index <= r->snapshot.index)
		FAIL("entry %llu recovered at or below the snapshot marker %llu",
			(unsigned long long)r->entries[0].index, (unsigned long long)r->snapshot.index);
	if (r->has_snapshot && wal_last_index(wal) < r->snapshot.index)
		FAIL("wal_last_index %llu below the snapshot marker %llu", (unsigned long long)wal_last_index(wal),
			(unsigned long long)r->snapshot.index);
	return digest;
}

static void reopen_check(struct wal *wal)
{
	const struct wal_recovered *r = wal_recovered(wal);
	uint64_t last = wal_last_index(wal);
	if (r->entry_count == 0 && r->has_snapshot)
		last = last > r->snapshot.index ? last : r->snapshot.index;
	uint64_t term = r->entry_count > 0 ? r->entries[r->entry_count - 1].term : 1;
	size_t count_before = r->entry_count;
	uint64_t first_before = count_before ? r->entries[0].index : 0;
	char err[512];
	static const uint8_t payload[] = "fuzz-wal appended entry";
	struct wal_entry entry = {.term = term, .index = last + 1, .type = 0, .data = payload,
		.data_length = sizeof payload};
	if (wal_append_entries(wal, &entry, 1, err, sizeof err) != 0) {
		wal_close(wal);
		return; /* e.g. an index the WAL cannot go past: refused, not a crash */
	}
	uint64_t durable = 0;
	int rc = wal_wait(wal, &durable, err, sizeof err);
	wal_close(wal);
	if (rc != 0)
		FAIL("wal_wait after a successful recovery: %s", err);
	struct wal_options o = options();
	struct wal *again;
	if (wal_open(directory, &o, &again, err, sizeof err) != 0)
		FAIL("a WAL recovered and appended to does not open again: %s", err);
	check_recovered(again);
	const struct wal_recovered *r2 = wal_recovered(again);
	if (r2->entry_count == 0 || r2->entries[r2->entry_count - 1].index != last + 1 ||
		r2->entries[r2->entry_count - 1].data_length != sizeof payload ||
		memcmp(r2->entries[r2->entry_count - 1].data, payload, sizeof payload) != 0)
		FAIL("the entry appended at %llu is not recovered", (unsigned long long)(last + 1));
	if (count_before > 0 && (r2->entries[0].index != first_before || r2->entry_count != count_before + 1))
		FAIL("the second recovery has %zu entries from %llu, the first had %zu from %llu", r2->entry_count,
			(unsigned long long)r2->entries[0].index, count_before, (unsigned long long)first_before);
	wal_close(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	make_directory();
	uint8_t config = data[0];
	size_t at = 1;
	for (int k = 0; k < MAX_FILES && at + 5 <= size; k++) {
		uint8_t kind = data[at], a = data[at + 1], b = data[at + 2];
		size_t length = (size_t)data[at + 3] | (size_t)data[at + 4] << 8;
		at += 5;
		if (length > size - at || k == MAX_FILES - 1)
			length = size - at;
		char name[64];
		if (kind % 3 == 0)
			snprintf(name, sizeof name, "open-%u", a);
		else if (kind % 3 == 1)
			snprintf(name, sizeof name, "%016x-%016x", a, b);
		else
			snprintf(name, sizeof name, "%016x-%016x.%u", a, b, a);
		write_file(name, data + at, length, config & 2);
		at += length;
	}
	struct wal_options o = options();
	struct wal *wal = NULL;
	char err[512] = "";
	if (wal_open(directory, &o, &wal, err, sizeof err) == 0) {
		check_recovered(wal);
		if (trace)
			fprintf(stderr, "fuzz-wal: opened: %zu entries, last index %llu\n", wal_recovered(wal)->entry_count,
				(unsigned long long)wal_last_index(wal));
		if (config & 1)
			reopen_check(wal);
		else
			wal_close(wal);
	} else if (err[0] == '\0') {
		FAIL("wal_open failed without a message");
	} else if (trace) {
		fprintf(stderr, "fuzz-wal: %s\n", err);
	}
	empty_directory();
	if (rmdir(directory) != 0)
		FAIL("rmdir %s: %s", directory, strerror(errno));
	return 0;
}

/* ---- FUZZ_WAL_MAKE_SEEDS: real logs written by the WAL, in the input format ---- */

static size_t add_files(uint8_t *out, size_t used, size_t capacity)
{
	DIR *d = opendir(directory);
	struct dirent *item;
	int files = 0;
	while ((item = readdir(d)) != NULL && files < MAX_FILES) {
		unsigned long long a = 0, b = 0, c = 0;
		uint8_t kind;
		if (sscanf(item->d_name, "open-%llu", &a) == 1) {
			kind = 0;
		} else if (sscanf(item->d_name, "%16llx-%16llx.%llu", &a, &b, &c) == 3) {
			kind = 2;
		} else if (sscanf(item->d_name, "%16llx-%16llx", &a, &b) == 2) {
			kind = 1;
		} else {
			continue;
		}
		if (a > 255 || b > 255)
			FAIL("seed segment %s: name fields over 255", item->d_name);
		char path[512];
		snprintf(path, sizeof path, "%s/%s", directory, item->d_name);
		FILE *f = fopen(path, "rb");
		uint8_t *header = out + used;
		used += 5;
		size_t length = fread(out + used, 1, capacity - used, f);
		fclose(f);
		/* Trailing zeros are the WAL's preallocation: keep the seed small. */
		while (length > 0 && out[used + length - 1] == 0)
			length--;
		header[0] = kind;
		header[1] = (uint8_t)a;
		header[2] = (uint8_t)b;
		header[3] = (uint8_t)length;
		header[4] = (uint8_t)(length >> 8);
		used += length;
		files++;
	}
	closedir(d);
	return used;
}

static void save_seed(const char *out_dir, const char *name, uint8_t config)
{
	static uint8_t buffer[1 << 20];
	buffer[0] = config;
	size_t used = add_files(buffer, 1, sizeof buffer);
	char path[512];
	snprintf(path, sizeof path, "%s/%s", out_dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(buffer, 1, used, f) != used)
		FAIL("writing %s", path);
	fclose(f);
}

static void append(struct wal *wal, uint64_t first, uint64_t count, uint64_t term, size_t size)
{
	char err[512];
	uint8_t *bytes = malloc(size);
	struct wal_entry *entries = calloc(count, sizeof *entries);
	for (uint64_t k = 0; k < count; k++) {
		memset(bytes, (int)('a' + (first + k) % 26), size);
		entries[k] = (struct wal_entry){.term = term, .index = first + k, .type = (uint32_t)(k % 2),
			.data = bytes, .data_length = size};
	}
	if (wal_append_entries(wal, entries, count, err, sizeof err) != 0)
		FAIL("seed: append: %s", err);
	uint64_t durable;
	if (wal_wait(wal, &durable, err, sizeof err) != 0)
		FAIL("seed: wait: %s", err);
	free(entries);
	free(bytes);
}

static void make_seeds(const char *out_dir)
{
	make_directory();
	char err[512];
	struct wal_options o = options();
	struct wal *wal;
	uint64_t durable;

	/* 1: a few small entries and a hard state, one segment. */
	if (wal_open(directory, &o, &wal, err, sizeof err) != 0)
		FAIL("seed: open: %s", err);
	struct wal_hard_state hs = {.term = 1, .vote = 1, .commit = 3};
	append(wal, 1, 5, 1, 16);
	wal_set_hard_state(wal, &hs, err, sizeof err);
	wal_wait(wal, &durable, err, sizeof err);
	wal_close(wal);
	save_seed(out_dir, "small-log", 0);
	save_seed(out_dir, "small-log-reopen", 1);

	/* 2: the same log, then a follower's truncation and new term, a snapshot marker. */
	if (wal_open(directory, &o, &wal, err, sizeof err) != 0)
		FAIL("seed: reopen: %s", err);
	append(wal, 4, 3, 2, 40);
	struct wal_snapshot_marker snap = {.index = 2, .term = 1};
	wal_save_snapshot(wal, &snap, err, sizeof err);
	hs = (struct wal_hard_state){.term = 2, .vote = 3, .commit = 5};
	wal_set_hard_state(wal, &hs, err, sizeof err);
	wal_wait(wal, &durable, err, sizeof err);
	wal_close(wal);
	save_seed(out_dir, "truncated-snapshot", 1);
	save_seed(out_dir, "truncated-snapshot-resealed", 2);
	empty_directory();

	/* 3: entries across segments (16 KiB each): a closed segment and the open one. */
	if (wal_open(directory, &o, &wal, err, sizeof err) != 0)
		FAIL("seed: open: %s", err);
	append(wal, 1, 12, 1, 1000);
	append(wal, 13, 12, 2, 1000);
	wal_close(wal);
	save_seed(out_dir, "two-segments", 0);
	save_seed(out_dir, "two-segments-reopen", 1);
	save_seed(out_dir, "two-segments-resealed", 3);
	empty_directory();

	/* 4: a fresh WAL with nothing appended (just its prepared segment). */
	if (wal_open(directory, &o, &wal, err, sizeof err) != 0)
		FAIL("seed: open: %s", err);
	wal_close(wal);
	save_seed(out_dir, "fresh", 1);
	empty_directory();
	rmdir(directory);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *out_dir = getenv("FUZZ_WAL_MAKE_SEEDS");
	if (out_dir != NULL) {
		make_seeds(out_dir);
		exit(0);
	}
	return 0;
}
