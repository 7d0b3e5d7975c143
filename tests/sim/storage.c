/* tests/sim/storage.c: one member's simulated durable storage.
 *
 * It holds what survives a crash (hard state, snapshot, log entries, the application state made
 * durable) and a FIFO of writes in flight: each Ready's hard state, snapshot and entries become durable
 * together, in order, after a delay chosen by the member (0 for synchronous storage). A crash drops the
 * FIFO, so whatever was not yet durable is lost, as on a real disk without fsync. The Ready contract of
 * consensus/raft.h is enforced here: entries replace the stored suffix from their first index, a
 * snapshot replaces the whole log, and a write leaving a gap is refused as a contract violation.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void *checked_realloc(void *pointer, size_t size)
{
	void *result = realloc(pointer, size ? size : 1);
	if (result == NULL) {
		abort();
	}
	return result;
}

static uint8_t *copy_bytes(const void *data, size_t length)
{
	if (length == 0) {
		return NULL;
	}
	uint8_t *copy = checked_realloc(NULL, length);
	memcpy(copy, data, length);
	return copy;
}

static void put_u64(uint8_t *out, uint64_t value)
{
	for (int i = 0; i < 8; i++) {
		out[i] = (uint8_t)(value >> (8 * i));
	}
}

static uint64_t get_u64(const uint8_t *in)
{
	uint64_t value = 0;
	for (int i = 0; i < 8; i++) {
		value |= (uint64_t)in[i] << (8 * i);
	}
	return value;
}

void app_state_encode(const struct sim_app_state *state, uint8_t out[SIM_APP_STATE_BYTES])
{
	put_u64(out, state->applied);
	put_u64(out + 8, state->applied_term);
	put_u64(out + 16, state->chain);
	put_u64(out + 24, state->writes);
	put_u64(out + 32, state->last_write);
}

bool app_state_decode(const uint8_t *data, size_t length, struct sim_app_state *state)
{
	if (data == NULL || length != SIM_APP_STATE_BYTES) {
		return false;
	}
	state->applied = get_u64(data);
	state->applied_term = get_u64(data + 8);
	state->chain = get_u64(data + 16);
	state->writes = get_u64(data + 24);
	state->last_write = get_u64(data + 32);
	return true;
}

void entry_copy(struct sim_entry *out, const Raftpb__Entry *entry)
{
	out->index = entry->index;
	out->term = entry->term;
	out->type = entry->type;
	out->length = entry->data.len;
	out->data = copy_bytes(entry->data.data, entry->data.len);
}

static void entries_free(struct sim_entry *entries, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(entries[i].data);
	}
}

void persist_item_free(struct sim_persist_item *item)
{
	free(item->snapshot.packed);
	entries_free(item->entries, item->entries_count);
	free(item->entries);
	for (size_t i = 0; i < item->messages_count; i++) {
		message_free(&item->messages_after_persist[i]);
	}
	free(item->messages_after_persist);
	*item = (struct sim_persist_item){0};
}

uint64_t storage_last_index(const struct sim_storage *storage)
{
	return storage->entries_count ? storage->entries[storage->entries_count - 1].index : storage->snapshot.index;
}

uint64_t storage_term_at(const struct sim_storage *storage, uint64_t index)
{
	if (index != 0 && index == storage->snapshot.index) {
		return storage->snapshot.term;
	}
	if (storage->entries_count == 0 || index < storage->entries[0].index ||
	    index > storage->entries[storage->entries_count - 1].index) {
		return 0;
	}
	return storage->entries[index - storage->entries[0].index].term;
}

void storage_queue_push(struct sim_storage *storage, struct sim_persist_item *item)
{
	if (storage->pending_head + storage->pending_count == storage->pending_capacity) {
		if (storage->pending_head > 0) {
			/* slide the live items to the front before growing */
			memmove(storage->pending, storage->pending + storage->pending_head,
			        storage->pending_count * sizeof(*storage->pending));
			storage->pending_head = 0;
		}
		if (storage->pending_count == storage->pending_capacity) {
			storage->pending_capacity = storage->pending_capacity ? storage->pending_capacity * 2 : 8;
			storage->pending =
				checked_realloc(storage->pending, storage->pending_capacity * sizeof(*storage->pending));
		}
	}
	storage->pending[storage->pending_head + storage->pending_count++] = *item;
	storage->items_queued++;
	*item = (struct sim_persist_item){0};
}

struct sim_persist_item *storage_queue_front(struct sim_storage *storage)
{
	return storage->pending_count ? &storage->pending[storage->pending_head] : NULL;
}

void storage_queue_pop(struct sim_storage *storage)
{
	if (storage->pending_count == 0) {
		return;
	}
	persist_item_free(&storage->pending[storage->pending_head]);
	storage->pending_head++;
	storage->items_settled++;
	if (--storage->pending_count == 0) {
		storage->pending_head = 0;
	}
}

void storage_drop_pending(struct sim_storage *storage)
{
	while (storage->pending_count) {
		storage_queue_pop(storage);
	}
}

void storage_set_snapshot(struct sim_storage *storage, uint64_t index, uint64_t term, uint8_t *packed,
                          size_t packed_length)
{
	free(storage->snapshot.packed);
	storage->snapshot = (struct sim_snapshot){index, term, packed, packed_length};
}

/* Drops stored entries at and above index (a follower's conflicting suffix being replaced). */
static void truncate_from(struct sim_storage *storage, uint64_t index)
{
	while (storage->entries_count && storage->entries[storage->entries_count - 1].index >= index) {
		free(storage->entries[--storage->entries_count].data);
	}
}

void storage_compact(struct sim_storage *storage, uint64_t index)
{
	size_t drop = 0;
	while (drop < storage->entries_count && storage->entries[drop].index <= index) {
		free(storage->entries[drop].data);
		drop++;
	}
	memmove(storage->entries, storage->entries + drop, (storage->entries_count - drop) * sizeof(*storage->entries));
	storage->entries_count -= drop;
}

bool storage_apply_item(struct sim_storage *storage, struct sim_persist_item *item, char *err,
                        size_t errlen)
{
	if (item->has_hard_state) {
		storage->hard_state = item->hard_state;
	}
	if (item->snapshot.packed != NULL) {
		/* "the log before it is gone": the snapshot replaces the whole stored log, as etcd's storage
		 * does when it applies a snapshot; the entries of the same Ready follow it. */
		truncate_from(storage, 0);
		storage_set_snapshot(storage, item->snapshot.index, item->snapshot.term, item->snapshot.packed,
		                     item->snapshot.packed_length);
		item->snapshot.packed = NULL;
	}
	if (item->entries_count == 0) {
		return true;
	}
	uint64_t first = item->entries[0].index;
	if (first <= storage->snapshot.index) {
		snprintf(err, errlen, "Ready entries start at index %llu, inside the stored snapshot (index %llu)",
		         (unsigned long long)first, (unsigned long long)storage->snapshot.index);
		return false;
	}
	if (first > storage_last_index(storage) + 1) {
		snprintf(err, errlen, "Ready entries start at index %llu but the stored log ends at %llu (a gap)",
		         (unsigned long long)first, (unsigned long long)storage_last_index(storage));
		return false;
	}
	for (size_t i = 1; i < item->entries_count; i++) {
		if (item->entries[i].index != first + i) {
			snprintf(err, errlen, "Ready entries are not contiguous: index %llu follows %llu",
			         (unsigned long long)item->entries[i].index, (unsigned long long)item->entries[i - 1].index);
			return false;
		}
	}
	truncate_from(storage, first);
	if (storage->entries_count + item->entries_count > storage->entries_capacity) {
		storage->entries_capacity = (storage->entries_count + item->entries_count) * 2;
		storage->entries = checked_realloc(storage->entries, storage->entries_capacity * sizeof(*storage->entries));
	}
	/* move the entries: the item gives up its copies */
	memcpy(storage->entries + storage->entries_count, item->entries, item->entries_count * sizeof(*item->entries));
	storage->entries_count += item->entries_count;
	item->entries_count = 0;
	return true;
}

void storage_restore_build(const struct sim_storage *storage, struct sim_restore *out)
{
	*out = (struct sim_restore){0};
	out->hard_state = (Raftpb__HardState)RAFTPB__HARD_STATE__INIT;
	out->hard_state.term = storage->hard_state.term;
	out->hard_state.vote = storage->hard_state.vote;
	out->hard_state.commit = storage->hard_state.commit;
	bool has_hard_state = storage->hard_state.term != 0 || storage->hard_state.commit != 0;
	out->restore.hard_state = has_hard_state ? &out->hard_state : NULL;
	if (storage->snapshot.packed != NULL) {
		out->snapshot = raftpb__snapshot__unpack(NULL, storage->snapshot.packed_length, storage->snapshot.packed);
		if (out->snapshot == NULL) {
			abort(); /* we packed it ourselves */
		}
		out->restore.snapshot = out->snapshot;
	}
	/* only the entries after the snapshot: raft_restore wants the log after it */
	size_t skip = 0;
	while (skip < storage->entries_count && storage->entries[skip].index <= storage->snapshot.index) {
		skip++;
	}
	size_t count = storage->entries_count - skip;
	out->entry_values = checked_realloc(NULL, count * sizeof(*out->entry_values));
	out->entry_pointers = checked_realloc(NULL, count * sizeof(*out->entry_pointers));
	for (size_t i = 0; i < count; i++) {
		const struct sim_entry *stored = &storage->entries[skip + i];
		Raftpb__Entry *entry = &out->entry_values[i];
		*entry = (Raftpb__Entry)RAFTPB__ENTRY__INIT;
		entry->index = stored->index;
		entry->term = stored->term;
		entry->type = (Raftpb__EntryType)stored->type;
		entry->data.data = stored->data;
		entry->data.len = stored->length;
		out->entry_pointers[i] = entry;
	}
	out->restore.entries = out->entry_pointers;
	out->restore.entries_count = count;
}

void storage_restore_free(struct sim_restore *restore)
{
	if (restore->snapshot != NULL) {
		raftpb__snapshot__free_unpacked(restore->snapshot, NULL);
	}
	free(restore->entry_values);
	free(restore->entry_pointers);
	*restore = (struct sim_restore){0};
}

void storage_free(struct sim_storage *storage)
{
	storage_drop_pending(storage);
	free(storage->pending);
	entries_free(storage->entries, storage->entries_count);
	free(storage->entries);
	free(storage->snapshot.packed);
	*storage = (struct sim_storage){0};
}
