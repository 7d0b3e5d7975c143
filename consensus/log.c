/* consensus/log.c: the core's in-memory Raft log.
 *
 * The core keeps every entry since the last compaction (as etcd's MemoryStorage does for etcd), so
 * appends, conflict checks and sends never wait on storage; the WAL holds the durable copy. Entries
 * live in one array with a moving start, so compaction and appends are amortized O(1). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { LOG_CHUNK_SIZE = 256 * 1024 };

static uint8_t *chunk_store(struct raft_log *log, const void *data, size_t length, struct log_chunk **chunk_out)
{
	struct log_chunk *chunk = log->tail_chunk;
	if (!chunk || chunk->size - chunk->used < length) {
		size_t size = length > LOG_CHUNK_SIZE ? length : LOG_CHUNK_SIZE;
		/* The old tail stays alive while entries use it; the last of them frees it. */
		if (chunk && chunk->live == 0)
			free(chunk);
		chunk = xmalloc(sizeof(*chunk) + size);
		chunk->used = 0;
		chunk->size = size;
		chunk->live = 0;
		log->tail_chunk = chunk;
	}
	uint8_t *stored = chunk->data + chunk->used;
	memcpy(stored, data, length);
	chunk->used += (length + 15) & ~(size_t)15;
	if (chunk->used > chunk->size)
		chunk->used = chunk->size;
	chunk->live++;
	*chunk_out = chunk;
	return stored;
}

static void entry_release(struct raft_log *log, struct log_entry *entry)
{
	struct log_chunk *chunk = entry->chunk;
	entry->chunk = NULL;
	entry->data = NULL;
	if (!chunk || --chunk->live > 0)
		return;
	if (chunk == log->tail_chunk)
		chunk->used = 0; /* empty again: reuse it */
	else
		free(chunk);
}

uint64_t log_first_index(const struct raft_log *log)
{
	return log->boundary_index + 1;
}

uint64_t log_last_index(const struct raft_log *log)
{
	return log->boundary_index + log->count;
}

const struct log_entry *log_entry_at(const struct raft_log *log, uint64_t index)
{
	if (index <= log->boundary_index || index > log_last_index(log))
		return NULL;
	return &log->entries[log->start + (index - log->boundary_index - 1)];
}

uint64_t log_term(const struct raft_log *log, uint64_t index)
{
	if (index == log->boundary_index)
		return log->boundary_term;
	const struct log_entry *entry = log_entry_at(log, index);
	return entry ? entry->term : 0;
}

uint64_t log_last_term(const struct raft_log *log)
{
	return log_term(log, log_last_index(log));
}

bool log_matches(const struct raft_log *log, uint64_t index, uint64_t term)
{
	if (index < log->boundary_index)
		return false;
	return log_term(log, index) == term;
}

bool log_is_up_to_date(const struct raft_log *log, uint64_t last_index, uint64_t last_term)
{
	uint64_t our_term = log_last_term(log);
	return last_term > our_term || (last_term == our_term && last_index >= log_last_index(log));
}

void log_append(struct raft_log *log, uint64_t term, int type, const void *data, size_t length)
{
	if (log->start + log->count == log->capacity) {
		if (log->start > log->capacity / 2) {
			/* Mostly compacted away: slide down instead of growing. */
			memmove(log->entries, log->entries + log->start, log->count * sizeof(struct log_entry));
			log->start = 0;
		} else {
			log->capacity = log->capacity ? log->capacity * 2 : 256;
			log->entries = xrealloc(log->entries, log->capacity * sizeof(struct log_entry));
		}
	}
	struct log_entry *entry = &log->entries[log->start + log->count];
	entry->term = term;
	entry->type = type;
	entry->length = length;
	entry->chunk = NULL;
	entry->data = length ? chunk_store(log, data, length, &entry->chunk) : NULL;
	log->count++;
}

void log_truncate_after(struct raft_log *log, uint64_t index)
{
	while (log_last_index(log) > index && log->count > 0) {
		struct log_entry *entry = &log->entries[log->start + log->count - 1];
		entry_release(log, entry);
		log->count--;
	}
	if (log->handed_next > index + 1)
		log->handed_next = index + 1;
	if (log->persisted > index)
		log->persisted = index;
}

void log_compact(struct raft_log *log, uint64_t index)
{
	if (index <= log->boundary_index)
		return;
	uint64_t term = log_term(log, index);
	while (log->boundary_index < index && log->count > 0) {
		entry_release(log, &log->entries[log->start]);
		log->start++;
		log->count--;
		log->boundary_index++;
	}
	log->boundary_term = term;
	if (log->count == 0)
		log->start = 0;
}

void log_restore_snapshot(struct raft_log *log, uint64_t index, uint64_t term)
{
	for (size_t k = 0; k < log->count; k++)
		entry_release(log, &log->entries[log->start + k]);
	log->start = 0;
	log->count = 0;
	log->boundary_index = index;
	log->boundary_term = term;
	log->committed = index;
	log->handed_next = index + 1;
	if (log->persisted > index)
		log->persisted = 0; /* only the snapshot's own persistence makes this log durable again */
	log->uncommitted_bytes = 0;
}

void log_commit_to(struct raft_log *log, uint64_t index)
{
	if (index > log->committed && index <= log_last_index(log))
		log->committed = index;
}

uint64_t log_find_conflict(const struct raft_log *log, uint64_t first_index, Raftpb__Entry *const *entries,
                           size_t count)
{
	for (size_t k = 0; k < count; k++) {
		uint64_t index = first_index + k;
		if (index <= log->boundary_index)
			continue; /* compacted entries are committed and therefore match */
		if (!log_matches(log, index, entries[k]->term))
			return index;
	}
	return 0;
}

uint64_t log_find_conflict_by_term(const struct raft_log *log, uint64_t index, uint64_t term)
{
	if (index > log_last_index(log))
		index = log_last_index(log);
	while (index > log->boundary_index) {
		if (log_term(log, index) <= term)
			return index;
		index--;
	}
	return index;
}

void log_free(struct raft_log *log)
{
	for (size_t k = 0; k < log->count; k++)
		entry_release(log, &log->entries[log->start + k]);
	free(log->tail_chunk);
	free(log->entries);
	memset(log, 0, sizeof(*log));
}
