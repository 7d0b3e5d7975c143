/* consensus/memory.c: the Ready's bump arena and small sorted id sets (allocation itself: common/alloc.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t size;
	_Alignas(16) unsigned char data[];
};

enum { ARENA_CHUNK_SIZE = 64 * 1024 };

void *arena_alloc(struct arena *arena, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	struct arena_chunk *chunk = arena->chunks;
	/* Only the head chunk takes new allocations; full chunks behind it just wait for the reset. */
	if (!chunk || chunk->size - chunk->used < size) {
		size_t chunk_size = size > ARENA_CHUNK_SIZE ? size : ARENA_CHUNK_SIZE;
		chunk = xmalloc(sizeof(*chunk) + chunk_size);
		chunk->size = chunk_size;
		chunk->used = 0;
		chunk->next = arena->chunks;
		arena->chunks = chunk;
	}
	void *p = chunk->data + chunk->used;
	chunk->used += size;
	return p;
}

void *arena_memdup(struct arena *arena, const void *data, size_t length)
{
	if (length == 0)
		return NULL;
	void *p = arena_alloc(arena, length);
	memcpy(p, data, length);
	return p;
}

void arena_reset(struct arena *arena)
{
	/* Keep one standard chunk so the steady state allocates nothing. */
	struct arena_chunk *keep = NULL;
	struct arena_chunk *chunk = arena->chunks;
	while (chunk) {
		struct arena_chunk *next = chunk->next;
		if (!keep && chunk->size == ARENA_CHUNK_SIZE) {
			keep = chunk;
			keep->used = 0;
			keep->next = NULL;
		} else {
			free(chunk);
		}
		chunk = next;
	}
	arena->chunks = keep;
}

void arena_free(struct arena *arena)
{
	arena_reset(arena);
	free(arena->chunks);
	arena->chunks = NULL;
}

static size_t id_set_position(const struct id_set *set, uint64_t id)
{
	size_t low = 0, high = set->count;
	while (low < high) {
		size_t middle = (low + high) / 2;
		if (set->ids[middle] < id)
			low = middle + 1;
		else
			high = middle;
	}
	return low;
}

bool id_set_contains(const struct id_set *set, uint64_t id)
{
	size_t position = id_set_position(set, id);
	return position < set->count && set->ids[position] == id;
}

void id_set_add(struct id_set *set, uint64_t id)
{
	size_t position = id_set_position(set, id);
	if (position < set->count && set->ids[position] == id)
		return;
	if (set->count == set->capacity) {
		set->capacity = set->capacity ? set->capacity * 2 : 8;
		set->ids = xrealloc(set->ids, set->capacity * sizeof(uint64_t));
	}
	memmove(set->ids + position + 1, set->ids + position, (set->count - position) * sizeof(uint64_t));
	set->ids[position] = id;
	set->count++;
}

void id_set_remove(struct id_set *set, uint64_t id)
{
	size_t position = id_set_position(set, id);
	if (position >= set->count || set->ids[position] != id)
		return;
	memmove(set->ids + position, set->ids + position + 1, (set->count - position - 1) * sizeof(uint64_t));
	set->count--;
}

void id_set_copy(struct id_set *destination, const struct id_set *source)
{
	if (destination->capacity < source->count) {
		destination->capacity = source->count;
		destination->ids = xrealloc(destination->ids, destination->capacity * sizeof(uint64_t));
	}
	if (source->count)
		memcpy(destination->ids, source->ids, source->count * sizeof(uint64_t));
	destination->count = source->count;
}

void id_set_clear(struct id_set *set)
{
	set->count = 0;
}

void id_set_free(struct id_set *set)
{
	free(set->ids);
	set->ids = NULL;
	set->count = set->capacity = 0;
}
