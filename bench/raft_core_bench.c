/* bench/raft_core_bench.c: throughput of the Raft core alone — no disk, no network, one thread.
 *
 * Three cores in memory; the leader proposes batches of small entries (raft_propose_batch); every
 * Ready is "persisted" at once (raft_persisted right after raft_advance) and its messages are handed
 * straight to the other cores' raft_step (allowed: step only reads the message, and the sender's Ready
 * stays valid until its raft_advance). The loop ends when N entries are applied on all three members.
 * Prints entries/s and heap allocations per committed entry (malloc/calloc/realloc are counted by
 * wrappers below that forward to glibc). With --encode every message is packed and unpacked on the
 * way (raft_step_bytes), which shows what protobuf costs; --compare runs both and prints the ratio.
 * Never pass/fail: it measures and prints.
 *
 * --compact N snapshots and compacts each member's log every N applied entries, as a node would, so the
 * in-memory log stays small (steady state) instead of growing to N entries.
 *
 *   build/bench/raft-core-bench [--entries N] [--batch B] [--payload BYTES] [--compact N]
 *                               [--encode | --compare]
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft.h"

/* ---- allocation counting --------------------------------------------------------------------------
 * Our own malloc/calloc/realloc/free take precedence over libc's for the whole program (the core and
 * protobuf-c included) and forward to glibc's implementations. Not under a sanitizer, whose runtime
 * replaces the allocator itself. */
#if defined(__SANITIZE_ADDRESS__)
#define BENCH_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define BENCH_COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef BENCH_COUNT_ALLOCATIONS
#define BENCH_COUNT_ALLOCATIONS 1
#endif

static uint64_t malloc_calls, calloc_calls, realloc_calls;

#if BENCH_COUNT_ALLOCATIONS
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void __libc_free(void *pointer);

void *malloc(size_t size)
{
	malloc_calls++;
	return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
	calloc_calls++;
	return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size)
{
	realloc_calls++;
	return __libc_realloc(pointer, size);
}

void free(void *pointer)
{
	__libc_free(pointer);
}
#endif

static uint64_t allocations(void)
{
	return malloc_calls + calloc_calls + realloc_calls;
}

/* ---- the cluster ----------------------------------------------------------------------------------- */

#define MEMBERS 3

struct bench {
	raft_t *cores[MEMBERS + 1]; /* ids 1..3 */
	uint64_t applied_payloads[MEMBERS + 1];
	size_t payload_size;
	bool encode;
	uint64_t compact_every; /* 0: never */
	uint64_t compacted[MEMBERS + 1];
	uint8_t *buffer; /* --encode: one message at a time */
	size_t buffer_size;
	uint64_t messages;
	uint64_t encoded_bytes;
};

static void die(const char *what, int code)
{
	fprintf(stderr, "raft-core-bench: %s: %s\n", what, raft_strerror(code));
	exit(1);
}

static void deliver(struct bench *bench, const Raftpb__Message *message)
{
	if (message->to == 0 || message->to > MEMBERS)
		return;
	bench->messages++;
	raft_t *target = bench->cores[message->to];
	if (!bench->encode) {
		(void)raft_step(target, message);
		return;
	}
	size_t size = raftpb__message__get_packed_size(message);
	if (size > bench->buffer_size) {
		bench->buffer_size = size * 2;
		bench->buffer = realloc(bench->buffer, bench->buffer_size);
		if (bench->buffer == NULL) {
			fprintf(stderr, "raft-core-bench: out of memory\n");
			exit(1);
		}
	}
	raftpb__message__pack(message, bench->buffer);
	bench->encoded_bytes += size;
	(void)raft_step_bytes(target, bench->buffer, size);
}

/* Takes every Ready of one member: persist (nothing to do), send, apply, advance, report durable. */
static bool pump(struct bench *bench, uint64_t id)
{
	raft_t *core = bench->cores[id];
	bool moved = false;
	struct raft_ready ready;
	while (raft_ready(core, &ready)) {
		moved = true;
		for (size_t k = 0; k < ready.messages_count; k++)
			deliver(bench, ready.messages[k]);
		/* Durable already (no disk): the after-persist messages may leave now. */
		for (size_t k = 0; k < ready.messages_after_persist_count; k++)
			deliver(bench, ready.messages_after_persist[k]);
		for (size_t k = 0; k < ready.committed_entries_count; k++) {
			const Raftpb__Entry *entry = ready.committed_entries[k];
			if (entry->type == RAFT_ENTRY_NORMAL && entry->data.len == bench->payload_size)
				bench->applied_payloads[id]++;
		}
		uint64_t persist_index = ready.persist_index, persist_term = ready.persist_term;
		raft_advance(core, &ready);
		if (persist_index || persist_term)
			raft_persisted(core, persist_index, persist_term);
	}
	return moved;
}

/* Snapshot (empty state: the bench has no state machine) and drop the log up to the applied index. */
static void maybe_compact(struct bench *bench, uint64_t id)
{
	struct raft_status status;
	raft_get_status(bench->cores[id], &status);
	uint64_t upto = status.applied < status.persisted ? status.applied : status.persisted;
	if (upto < bench->compacted[id] + bench->compact_every)
		return;
	int rc = raft_create_snapshot(bench->cores[id], upto, NULL, "", 0);
	if (rc == RAFT_OK)
		rc = raft_compact(bench->cores[id], upto);
	if (rc != RAFT_OK)
		die("snapshot and compaction", rc);
	bench->compacted[id] = upto;
}

static void pump_all(struct bench *bench)
{
	bool moved = true;
	while (moved) {
		moved = false;
		for (uint64_t id = 1; id <= MEMBERS; id++)
			moved |= pump(bench, id);
	}
}

static void bench_start(struct bench *bench)
{
	uint64_t voters[MEMBERS];
	for (uint64_t id = 1; id <= MEMBERS; id++)
		voters[id - 1] = id;
	for (uint64_t id = 1; id <= MEMBERS; id++) {
		struct raft_config config;
		raft_config_defaults(&config, id);
		config.random_seed = id * 7919;
		char errbuf[256] = "";
		bench->cores[id] = raft_new(&config, NULL, errbuf, sizeof errbuf);
		if (bench->cores[id] == NULL) {
			fprintf(stderr, "raft-core-bench: raft_new: %s\n", errbuf);
			exit(1);
		}
		int rc = raft_bootstrap(bench->cores[id], voters, MEMBERS);
		if (rc != RAFT_OK)
			die("raft_bootstrap", rc);
	}
	pump_all(bench);
	int rc = raft_campaign(bench->cores[1]);
	if (rc != RAFT_OK)
		die("raft_campaign", rc);
	pump_all(bench);
	struct raft_status status;
	raft_get_status(bench->cores[1], &status);
	if (status.role != RAFT_LEADER) {
		fprintf(stderr, "raft-core-bench: member 1 did not become leader (%s)\n", raft_role_name(status.role));
		exit(1);
	}
}

static void bench_stop(struct bench *bench)
{
	for (uint64_t id = 1; id <= MEMBERS; id++)
		raft_free(bench->cores[id]);
	free(bench->buffer);
}

static uint64_t min_applied(const struct bench *bench)
{
	uint64_t least = UINT64_MAX;
	for (uint64_t id = 1; id <= MEMBERS; id++)
		if (bench->applied_payloads[id] < least)
			least = bench->applied_payloads[id];
	return least;
}

static double clock_seconds(clockid_t clock)
{
	struct timespec now;
	clock_gettime(clock, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

struct result {
	uint64_t entries;
	double seconds;
	double cpu_seconds; /* this process's CPU time: what the rate would be on an idle core */
	uint64_t allocations;
	uint64_t messages;
	uint64_t encoded_bytes;
};

/* Proposes `entries` payloads in batches, keeping at most `window` entries not yet applied everywhere
 * (as a node would bound its proposal queue), and returns the measurements. */
static struct result run(uint64_t entries, size_t batch, size_t payload_size, bool encode, uint64_t compact_every)
{
	struct bench bench;
	memset(&bench, 0, sizeof bench);
	bench.payload_size = payload_size;
	bench.encode = encode;
	bench.compact_every = compact_every;
	bench_start(&bench);

	uint8_t *payloads = malloc(batch * payload_size);
	struct raft_buffer *buffers = malloc(batch * sizeof *buffers);
	if (payloads == NULL || buffers == NULL) {
		fprintf(stderr, "raft-core-bench: out of memory\n");
		exit(1);
	}
	for (size_t k = 0; k < batch; k++) {
		memset(payloads + k * payload_size, (int)('a' + k % 26), payload_size);
		buffers[k].data = payloads + k * payload_size;
		buffers[k].length = payload_size;
	}
	const uint64_t window = 64 * (uint64_t)batch;
	uint64_t proposed = 0;
	uint64_t allocations_before = allocations();
	double start = clock_seconds(CLOCK_MONOTONIC);
	double cpu_start = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
	while (min_applied(&bench) < entries) {
		while (proposed < entries && proposed - min_applied(&bench) < window) {
			size_t count = (size_t)(entries - proposed < batch ? entries - proposed : batch);
			uint64_t first_index = 0;
			int rc = raft_propose_batch(bench.cores[1], buffers, count, &first_index);
			if (rc != RAFT_OK)
				die("raft_propose_batch", rc);
			proposed += count;
			pump(&bench, 1); /* hand the batch out before taking the next: one append per batch */
		}
		pump_all(&bench);
		if (compact_every)
			for (uint64_t id = 1; id <= MEMBERS; id++)
				maybe_compact(&bench, id);
	}
	double seconds = clock_seconds(CLOCK_MONOTONIC) - start;
	double cpu_seconds = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
	struct result result = {
		.entries = entries,
		.seconds = seconds,
		.cpu_seconds = cpu_seconds,
		.allocations = allocations() - allocations_before,
		.messages = bench.messages,
		.encoded_bytes = bench.encoded_bytes,
	};
	free(buffers);
	free(payloads);
	bench_stop(&bench);
	return result;
}

static void print_result(const char *mode, const struct result *result)
{
	double rate = (double)result->entries / result->seconds;
	printf("%-8s committed %llu entries in %.2f s: %.0f entries/s (%.2f s of CPU: %.0f entries per CPU second)\n",
	       mode, (unsigned long long)result->entries, result->seconds, rate, result->cpu_seconds,
	       (double)result->entries / result->cpu_seconds);
	if (BENCH_COUNT_ALLOCATIONS)
		printf("%-8s allocations: %.3f per committed entry (%llu in all; malloc %llu, calloc %llu, realloc %llu "
		       "over the whole program)\n",
		       mode, (double)result->allocations / (double)result->entries,
		       (unsigned long long)result->allocations, (unsigned long long)malloc_calls,
		       (unsigned long long)calloc_calls, (unsigned long long)realloc_calls);
	else
		printf("%-8s allocations: not counted (sanitizer build replaces the allocator)\n", mode);
	printf("%-8s messages delivered: %llu (%.1f entries per message)", mode, (unsigned long long)result->messages,
	       (double)result->entries / (double)(result->messages ? result->messages : 1));
	if (result->encoded_bytes)
		printf(", %.1f MB encoded", (double)result->encoded_bytes / 1e6);
	printf("\n");
}

static void usage(const char *program)
{
	fprintf(stderr, "usage: %s [--entries N] [--batch B] [--payload BYTES] [--compact N] [--encode | --compare]\n",
	        program);
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t entries = 2000000;
	size_t batch = 256, payload_size = 16;
	uint64_t compact_every = 0;
	bool encode = false, compare = false;
	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--entries") == 0 && k + 1 < argc)
			entries = strtoull(argv[++k], NULL, 10);
		else if (strcmp(argv[k], "--batch") == 0 && k + 1 < argc)
			batch = (size_t)strtoull(argv[++k], NULL, 10);
		else if (strcmp(argv[k], "--payload") == 0 && k + 1 < argc)
			payload_size = (size_t)strtoull(argv[++k], NULL, 10);
		else if (strcmp(argv[k], "--compact") == 0 && k + 1 < argc)
			compact_every = strtoull(argv[++k], NULL, 10);
		else if (strcmp(argv[k], "--encode") == 0)
			encode = true;
		else if (strcmp(argv[k], "--compare") == 0)
			compare = true;
		else
			usage(argv[0]);
	}
	if (entries == 0 || batch == 0 || payload_size == 0)
		usage(argv[0]);

	printf("raft-core-bench: %d members in memory, one thread, %zu-byte entries in batches of %zu, no disk, ",
	       MEMBERS, payload_size, batch);
	if (compact_every)
		printf("log compacted every %llu entries\n", (unsigned long long)compact_every);
	else
		printf("log never compacted\n");
	if (!compare) {
		struct result result = run(entries, batch, payload_size, encode, compact_every);
		print_result(encode ? "encoded" : "direct", &result);
		return 0;
	}
	struct result direct = run(entries, batch, payload_size, false, compact_every);
	print_result("direct", &direct);
	malloc_calls = calloc_calls = realloc_calls = 0;
	struct result encoded = run(entries, batch, payload_size, true, compact_every);
	print_result("encoded", &encoded);
	double direct_rate = (double)direct.entries / direct.seconds;
	double encoded_rate = (double)encoded.entries / encoded.seconds;
	double direct_cpu_rate = (double)direct.entries / direct.cpu_seconds;
	double encoded_cpu_rate = (double)encoded.entries / encoded.cpu_seconds;
	printf("\n%-8s %14s %16s %10s %16s\n", "mode", "entries/s", "entries/CPU-s", "ratio", "allocs/entry");
	printf("%-8s %14.0f %16.0f %10.2f %16.3f\n", "direct", direct_rate, direct_cpu_rate, 1.0,
	       (double)direct.allocations / (double)direct.entries);
	printf("%-8s %14.0f %16.0f %10.2f %16.3f\n", "encoded", encoded_rate, encoded_cpu_rate,
	       encoded_cpu_rate / direct_cpu_rate, (double)encoded.allocations / (double)encoded.entries);
	printf("(ratio: entries per CPU second against direct delivery, the baseline)\n");
	return 0;
}
