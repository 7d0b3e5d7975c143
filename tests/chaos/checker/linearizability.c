/* linearizability: the per-key search and the per-history driver (see linearizability.h, README.md).
 *
 * Search (Wing & Gong 1993, with Lowe 2017's cache; the algorithm of porcupine and of Horn & Kroening's
 * P-compositional checker): the key's operations become a doubly linked list of call and return events in
 * time order. A configuration is (set of operations linearized so far, register value). From the list head
 * up to the first return event lies the window of operations that may take effect next; the search
 * linearizes one (removing its events), restarts at the head, and backtracks when it meets a return event
 * whose operation is not linearized yet: that operation had to take effect before it returned.
 * A cache of configurations already explored cuts the search from exponential to, in practice, linear.
 *
 * Unknown operations have a call event and no return event, so nothing ever forces them: they may be
 * linearized at any point after their call, or never. To keep many of them from multiplying the state
 * space by every subset of them, the cache compares configurations by dominance: (ok set, value, unknown
 * set U) fails whenever (ok set, value, U') with U' a subset of U was fully explored and failed, because
 * every continuation of the first is a continuation of the second. Trying ok operations before unknown
 * ones at each node makes the small-U configurations finish first, so the dominance check prunes. */
#include "linearizability.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NO_ENTRY UINT32_MAX
#define CACHE_CHUNK_SHIFT 12
#define CACHE_CHUNK_ENTRIES (1u << CACHE_CHUNK_SHIFT)
#define PREFIX_STEPS_SHOWN 12

/* One call or return event. Index 0 is the list's sentinel; the list is circular through it. */
struct event {
	uint32_t operation; /* index into search.operations */
	uint32_t match;     /* a call's return event, or NO_ENTRY for an unknown operation */
	uint32_t previous;
	uint32_t next;
	uint64_t time_ns;
	bool is_return;
};

struct cache_header {
	uint64_t hash;
	uint64_t value;
	uint32_t next; /* next header in the same bucket */
	bool present;
	bool done;     /* fully explored without success */
};

/* Entries live in fixed-size chunks so that growing never copies hundreds of megabytes. */
struct cache {
	struct cache_header **header_chunks;
	uint64_t **bit_chunks;
	size_t chunk_count;
	size_t chunk_capacity;
	uint32_t *buckets;
	size_t bucket_count;
	size_t count;
	size_t words_per_entry;
	uint64_t memory_bytes;
};

struct frame {
	uint32_t call_event;
	uint32_t cache_entry;
	struct register_value previous_value;
	uint8_t phase; /* enum phase of the node this move was made from */
};

/* What the deepest dead end looked like, for the explanation. */
struct dead_end {
	bool recorded;
	size_t ok_linearized;
	uint32_t *prefix; /* history operation indices, in linearization order */
	size_t prefix_length;
	struct register_value value;
	uint32_t blocking; /* history index of the operation whose return event stopped the search */
	uint32_t *window;  /* history indices of the operations that could have come next (blocking among them) */
	size_t window_length;
};

struct search {
	const struct history *history;
	const uint32_t *operations; /* history indices: ok operations first, then unknown ones */
	size_t ok_count;
	size_t operation_count;
	struct event *events;
	size_t event_count;
	uint64_t *zobrist;          /* a random 64-bit word per ok operation: the ok set's hash is their XOR */
	bool *unobserved;           /* per unknown operation: nothing ever reads or compares against what it writes */
	uint64_t *ok_bits;
	uint64_t *unknown_bits;
	size_t ok_words;
	size_t unknown_words;
	struct cache cache;
	struct frame *stack;
	size_t depth;
	struct dead_end dead_end;
	uint64_t max_states;
	uint64_t max_memory_bytes;
};

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t mixed = (*state += 0x9e3779b97f4a7c15ull);
	mixed = (mixed ^ (mixed >> 30)) * 0xbf58476d1ce4e5b9ull;
	mixed = (mixed ^ (mixed >> 27)) * 0x94d049bb133111ebull;
	return mixed ^ (mixed >> 31);
}

static uint64_t value_hash(struct register_value value)
{
	uint64_t state = value.present ? value.value : 0x5bd1e9955bd1e995ull;
	return splitmix64(&state);
}

static bool values_equal(struct register_value left, struct register_value right)
{
	return left.present == right.present && (!left.present || left.value == right.value);
}

/* The register's sequential specification. Returns whether the operation may take effect on value, and
 * the value after it. An unknown operation whose effect would change nothing is refused: leaving it for
 * later (or never) covers every history that placing it here would. */
static bool register_apply(const struct operation *operation, struct register_value value,
			   struct register_value *after)
{
	bool known = operation->outcome == OUTCOME_OK;
	*after = value;
	switch (operation->kind) {
	case OPERATION_WRITE:
		*after = operation->argument;
		return known || !values_equal(value, operation->argument);
	case OPERATION_READ:
		return known && values_equal(value, operation->read_result);
	case OPERATION_CAS: {
		bool compare_holds = values_equal(value, operation->argument);
		if (known && !operation->cas_swapped)
			return !compare_holds;
		if (compare_holds) {
			after->present = true;
			after->value = operation->cas_new_value;
		}
		return compare_holds;
	}
	}
	return false;
}

static void bit_flip(uint64_t *bits, size_t index)
{
	bits[index / 64] ^= 1ull << (index % 64);
}

static struct cache_header *cache_header_at(struct cache *cache, uint32_t entry)
{
	return &cache->header_chunks[entry >> CACHE_CHUNK_SHIFT][entry & (CACHE_CHUNK_ENTRIES - 1)];
}

static uint64_t *cache_bits_at(struct cache *cache, uint32_t entry)
{
	return cache->bit_chunks[entry >> CACHE_CHUNK_SHIFT] +
	       (size_t)(entry & (CACHE_CHUNK_ENTRIES - 1)) * cache->words_per_entry;
}

static void cache_free(struct cache *cache)
{
	for (size_t chunk = 0; chunk < cache->chunk_count; chunk++) {
		free(cache->header_chunks[chunk]);
		free(cache->bit_chunks[chunk]);
	}
	free(cache->header_chunks);
	free(cache->bit_chunks);
	free(cache->buckets);
	memset(cache, 0, sizeof *cache);
}

static int cache_grow_buckets(struct cache *cache)
{
	size_t new_count = cache->bucket_count ? cache->bucket_count * 2 : 4096;
	uint32_t *buckets = malloc(new_count * sizeof *buckets);
	if (buckets == NULL)
		return -1;
	for (size_t bucket = 0; bucket < new_count; bucket++)
		buckets[bucket] = NO_ENTRY;
	for (uint32_t entry = 0; entry < cache->count; entry++) {
		struct cache_header *header = cache_header_at(cache, entry);
		size_t bucket = header->hash & (new_count - 1);
		header->next = buckets[bucket];
		buckets[bucket] = entry;
	}
	cache->memory_bytes += (new_count - cache->bucket_count) * sizeof *buckets;
	free(cache->buckets);
	cache->buckets = buckets;
	cache->bucket_count = new_count;
	return 0;
}

/* Is the configuration (ok bits, value, unknown bits) dominated by one fully explored already? */
static bool cache_dominated(struct search *search, uint64_t hash, struct register_value value)
{
	struct cache *cache = &search->cache;
	if (cache->bucket_count == 0)
		return false;
	for (uint32_t entry = cache->buckets[hash & (cache->bucket_count - 1)]; entry != NO_ENTRY;) {
		struct cache_header *header = cache_header_at(cache, entry);
		if (header->hash == hash && header->done && header->present == value.present &&
		    (!value.present || header->value == value.value)) {
			const uint64_t *bits = cache_bits_at(cache, entry);
			bool same = memcmp(bits, search->ok_bits, search->ok_words * sizeof *bits) == 0;
			for (size_t word = 0; same && word < search->unknown_words; word++)
				same = (bits[search->ok_words + word] & ~search->unknown_bits[word]) == 0;
			if (same)
				return true;
		}
		entry = header->next;
	}
	return false;
}

static bool cache_full(const struct search *search)
{
	const struct cache *cache = &search->cache;
	return cache->count >= search->max_states || cache->count >= NO_ENTRY - 1 ||
	       cache->memory_bytes >= search->max_memory_bytes;
}

static int cache_insert(struct search *search, uint64_t hash, struct register_value value, uint32_t *inserted)
{
	struct cache *cache = &search->cache;
	if ((cache->count + 1) * 4 > cache->bucket_count * 3 && cache_grow_buckets(cache) != 0)
		return -1;
	if (cache->count == cache->chunk_count * CACHE_CHUNK_ENTRIES) {
		if (cache->chunk_count == cache->chunk_capacity) {
			size_t new_capacity = cache->chunk_capacity ? cache->chunk_capacity * 2 : 16;
			struct cache_header **headers = realloc(cache->header_chunks, new_capacity * sizeof *headers);
			if (headers == NULL)
				return -1;
			cache->header_chunks = headers;
			uint64_t **bits = realloc(cache->bit_chunks, new_capacity * sizeof *bits);
			if (bits == NULL)
				return -1;
			cache->bit_chunks = bits;
			cache->chunk_capacity = new_capacity;
		}
		struct cache_header *header_chunk = malloc(CACHE_CHUNK_ENTRIES * sizeof *header_chunk);
		uint64_t *bit_chunk = malloc(CACHE_CHUNK_ENTRIES * cache->words_per_entry * sizeof *bit_chunk);
		if (header_chunk == NULL || bit_chunk == NULL) {
			free(header_chunk);
			free(bit_chunk);
			return -1;
		}
		cache->header_chunks[cache->chunk_count] = header_chunk;
		cache->bit_chunks[cache->chunk_count] = bit_chunk;
		cache->chunk_count++;
		cache->memory_bytes += CACHE_CHUNK_ENTRIES * (sizeof *header_chunk + cache->words_per_entry * sizeof *bit_chunk);
	}
	uint32_t entry = (uint32_t)cache->count++;
	struct cache_header *header = cache_header_at(cache, entry);
	header->hash = hash;
	header->value = value.present ? value.value : 0;
	header->present = value.present;
	header->done = false;
	size_t bucket = hash & (cache->bucket_count - 1);
	header->next = cache->buckets[bucket];
	cache->buckets[bucket] = entry;
	uint64_t *bits = cache_bits_at(cache, entry);
	memcpy(bits, search->ok_bits, search->ok_words * sizeof *bits);
	memcpy(bits + search->ok_words, search->unknown_bits, search->unknown_words * sizeof *bits);
	*inserted = entry;
	return 0;
}

static int compare_events(const void *left, const void *right)
{
	const struct event *a = left, *b = right;
	if (a->time_ns != b->time_ns)
		return a->time_ns < b->time_ns ? -1 : 1;
	/* Equal times: calls first, so an operation invoked at the instant another completed counts as
	 * concurrent with it. Clocks this coarse cannot order the two, and the lenient reading never
	 * reports a violation that did not happen. */
	if (a->is_return != b->is_return)
		return a->is_return ? 1 : -1;
	return a->operation < b->operation ? -1 : (a->operation > b->operation);
}

static void event_unlink(struct event *events, uint32_t event)
{
	events[events[event].previous].next = events[event].next;
	events[events[event].next].previous = events[event].previous;
}

/* Dancing links: an unlinked event still knows its neighbours, so relinking in reverse order restores the list. */
static void event_relink(struct event *events, uint32_t event)
{
	events[events[event].previous].next = event;
	events[events[event].next].previous = event;
}

static void lift(struct search *search, uint32_t call_event)
{
	event_unlink(search->events, call_event);
	if (search->events[call_event].match != NO_ENTRY)
		event_unlink(search->events, search->events[call_event].match);
}

static void unlift(struct search *search, uint32_t call_event)
{
	if (search->events[call_event].match != NO_ENTRY)
		event_relink(search->events, search->events[call_event].match);
	event_relink(search->events, call_event);
}

static int compare_values(const void *left, const void *right)
{
	uint64_t a = *(const uint64_t *)left, b = *(const uint64_t *)right;
	return a < b ? -1 : (a > b);
}

/* The value an unknown operation would leave behind, if it changed anything. */
static uint64_t unknown_written_value(const struct operation *operation)
{
	return operation->kind == OPERATION_WRITE ? operation->argument.value : operation->cas_new_value;
}

/* Values some operation can see: ok read results, the expected values of swapped and unknown cas ops. */
static int mark_unobserved(struct search *search)
{
	uint64_t *observed = malloc((search->operation_count + 1) * sizeof *observed);
	if (observed == NULL)
		return -1;
	size_t count = 0;
	for (size_t local = 0; local < search->operation_count; local++) {
		const struct operation *operation = &search->history->operations[search->operations[local]];
		if (operation->kind == OPERATION_READ && operation->read_result.present)
			observed[count++] = operation->read_result.value;
		else if (operation->kind == OPERATION_CAS && operation->argument.present &&
			 (operation->outcome == OUTCOME_UNKNOWN || operation->cas_swapped))
			observed[count++] = operation->argument.value;
	}
	qsort(observed, count, sizeof *observed, compare_values);
	for (size_t local = search->ok_count; local < search->operation_count; local++) {
		uint64_t value = unknown_written_value(&search->history->operations[search->operations[local]]);
		search->unobserved[local - search->ok_count] =
			bsearch(&value, observed, count, sizeof *observed, compare_values) == NULL;
	}
	free(observed);
	return 0;
}

static int search_init(struct search *search, const struct history *history, const uint32_t *operations,
		       size_t ok_count, size_t operation_count, const struct linearizability_options *options)
{
	memset(search, 0, sizeof *search);
	search->history = history;
	search->operations = operations;
	search->ok_count = ok_count;
	search->operation_count = operation_count;
	search->max_states = options->max_states;
	search->max_memory_bytes = options->max_memory_bytes;
	search->ok_words = (ok_count + 63) / 64;
	search->unknown_words = (operation_count - ok_count + 63) / 64;
	search->cache.words_per_entry = search->ok_words + search->unknown_words;
	if (search->cache.words_per_entry == 0)
		search->cache.words_per_entry = 1;
	search->event_count = 1 + ok_count * 2 + (operation_count - ok_count);
	search->events = calloc(search->event_count, sizeof *search->events);
	search->zobrist = calloc(ok_count + 1, sizeof *search->zobrist);
	search->ok_bits = calloc(search->ok_words + 1, sizeof *search->ok_bits);
	search->unknown_bits = calloc(search->unknown_words + 1, sizeof *search->unknown_bits);
	search->stack = calloc(operation_count + 1, sizeof *search->stack);
	if (search->events == NULL || search->zobrist == NULL || search->ok_bits == NULL ||
	    search->unknown_bits == NULL || search->stack == NULL)
		return -1;

	search->unobserved = calloc(operation_count - ok_count + 1, sizeof *search->unobserved);
	if (search->unobserved == NULL || mark_unobserved(search) != 0)
		return -1;

	uint64_t seed = 0x2545f4914f6cdd1dull;
	for (size_t index = 0; index < ok_count; index++)
		search->zobrist[index] = splitmix64(&seed);

	struct event *sorted = search->events + 1;
	size_t count = 0;
	for (size_t index = 0; index < operation_count; index++) {
		const struct operation *operation = &history->operations[operations[index]];
		sorted[count++] = (struct event){ .operation = (uint32_t)index, .time_ns = operation->invoke_ns };
		if (index < ok_count)
			sorted[count++] = (struct event){ .operation = (uint32_t)index, .time_ns = operation->complete_ns,
							  .is_return = true };
	}
	qsort(sorted, count, sizeof *sorted, compare_events);
	/* Matching after sorting: each call learns where its return event ended up. */
	uint32_t *call_of = malloc((operation_count + 1) * sizeof *call_of);
	if (call_of == NULL)
		return -1;
	for (uint32_t event = 1; event < search->event_count; event++) {
		struct event *current = &search->events[event];
		current->match = NO_ENTRY;
		if (current->is_return)
			search->events[call_of[current->operation]].match = event;
		else
			call_of[current->operation] = event;
		current->previous = event - 1;
		current->next = event + 1 == search->event_count ? 0 : event + 1;
	}
	free(call_of);
	search->events[0].previous = (uint32_t)search->event_count - 1;
	search->events[0].next = search->event_count > 1 ? 1 : 0;
	search->events[0].match = NO_ENTRY;
	return 0;
}

static void search_free(struct search *search)
{
	cache_free(&search->cache);
	free(search->events);
	free(search->zobrist);
	free(search->unobserved);
	free(search->ok_bits);
	free(search->unknown_bits);
	free(search->stack);
	free(search->dead_end.prefix);
	free(search->dead_end.window);
}

/* Called at each dead end: keeps the one that got furthest through the ok operations. */
static int record_dead_end(struct search *search, size_t ok_linearized, struct register_value value,
			   uint32_t blocking_event)
{
	struct dead_end *dead_end = &search->dead_end;
	if (dead_end->recorded && ok_linearized <= dead_end->ok_linearized)
		return 0;
	if (dead_end->prefix == NULL) {
		dead_end->prefix = malloc((search->operation_count + 1) * sizeof *dead_end->prefix);
		dead_end->window = malloc((search->operation_count + 1) * sizeof *dead_end->window);
		if (dead_end->prefix == NULL || dead_end->window == NULL)
			return -1;
	}
	dead_end->recorded = true;
	dead_end->ok_linearized = ok_linearized;
	dead_end->value = value;
	dead_end->prefix_length = search->depth;
	for (size_t level = 0; level < search->depth; level++)
		dead_end->prefix[level] = search->operations[search->events[search->stack[level].call_event].operation];
	dead_end->blocking = search->operations[search->events[blocking_event].operation];
	dead_end->window_length = 0;
	for (uint32_t event = search->events[0].next; event != blocking_event; event = search->events[event].next)
		dead_end->window[dead_end->window_length++] = search->operations[search->events[event].operation];
	return 0;
}

/* Reads and failed compares leave the register as it was. */
static bool is_pure(const struct operation *operation)
{
	return operation->outcome == OUTCOME_OK &&
	       (operation->kind == OPERATION_READ || (operation->kind == OPERATION_CAS && !operation->cas_swapped));
}

/* Scan phases at one node. An applicable pure operation is linearized at once and alone (PHASE_PURE):
 * it changes nothing and every operation that had to precede it already has, so if any linearization
 * exists, one places it here. That removes the branching over orders of concurrent reads, the bulk of
 * the search. Then the other ok operations, then unknown ones (see the dominance note at the top). */
enum phase { PHASE_PURE, PHASE_OK, PHASE_UNKNOWN };

static void undo_top(struct search *search, struct register_value *value, uint64_t *ok_hash, size_t *remaining)
{
	struct frame *frame = &search->stack[--search->depth];
	uint32_t undone = search->events[frame->call_event].operation;
	if (undone < search->ok_count) {
		bit_flip(search->ok_bits, undone);
		*ok_hash ^= search->zobrist[undone];
		(*remaining)++;
	} else {
		bit_flip(search->unknown_bits, undone - search->ok_count);
	}
	*value = frame->previous_value;
	unlift(search, frame->call_event);
	cache_header_at(&search->cache, frame->cache_entry)->done = true;
}

static bool failed_compare_expects(const struct search *search, struct register_value value)
{
	for (uint32_t event = search->events[0].next; !search->events[event].is_return; event = search->events[event].next) {
		uint32_t local = search->events[event].operation;
		const struct operation *operation = &search->history->operations[search->operations[local]];
		if (local < search->ok_count && operation->kind == OPERATION_CAS && !operation->cas_swapped &&
		    values_equal(operation->argument, value))
			return true;
	}
	return false;
}

/* Returns the verdict, or -1 when memory ran out. */
static int search_run(struct search *search)
{
	if (search->ok_count == 0)
		return LINEARIZABLE;
	struct event *events = search->events;
	size_t remaining = search->ok_count;
	struct register_value value = { .present = false };
	uint64_t ok_hash = 0;
	uint32_t event = events[0].next;
	uint8_t phase = PHASE_PURE;
	/* Per node, computed when first needed: does the window hold an ok failed cas expecting the value? */
	bool compare_failure_checked = false, compare_failure_pending = false;
	for (;;) {
		/* While an ok operation is unlinearized its return event is in the list, so the scan always
		 * meets a return event before wrapping to the sentinel. */
		assert(event != 0);
		struct event *current = &events[event];
		bool backtrack = false;
		if (current->is_return) {
			if (phase != PHASE_UNKNOWN) {
				phase++;
				event = events[0].next;
				continue;
			}
			if (record_dead_end(search, search->ok_count - remaining, value, event) != 0)
				return -1;
			backtrack = true;
		} else {
			uint32_t local = current->operation;
			bool is_ok = local < search->ok_count;
			const struct operation *operation = &search->history->operations[search->operations[local]];
			bool wanted = phase == PHASE_PURE    ? is_ok && is_pure(operation)
				      : phase == PHASE_OK    ? is_ok && !is_pure(operation)
							     : !is_ok;
			/* Two unknown writes in a row: the first is overwritten unseen, so the configuration is
			 * dominated by the second alone, which the parent tries too. Without this the search would
			 * try every subset of the pending unknown writes. A cas stays: the first may enable it. */
			if (wanted && !is_ok && operation->kind == OPERATION_WRITE && search->depth > 0 &&
			    events[search->stack[search->depth - 1].call_event].operation >= search->ok_count)
				wanted = false;
			/* An unknown operation whose value nobody observes is only of use to a failed compare that
			 * needs the register to differ from its expected value; no such compare is pending when
			 * the pure phase found nothing to do here, unless it expects exactly the current value. */
			if (wanted && !is_ok && search->unobserved[local - search->ok_count]) {
				if (!compare_failure_checked) {
					compare_failure_pending = failed_compare_expects(search, value);
					compare_failure_checked = true;
				}
				wanted = compare_failure_pending;
			}
			struct register_value after;
			if (wanted && register_apply(operation, value, &after)) {
				uint64_t *bits = is_ok ? search->ok_bits : search->unknown_bits;
				size_t bit = is_ok ? local : local - search->ok_count;
				uint64_t next_ok_hash = is_ok ? ok_hash ^ search->zobrist[local] : ok_hash;
				uint64_t hash = next_ok_hash ^ value_hash(after);
				bit_flip(bits, bit);
				if (!cache_dominated(search, hash, after)) {
					if (cache_full(search))
						return SEARCH_BOUND_HIT;
					uint32_t entry;
					if (cache_insert(search, hash, after, &entry) != 0)
						return -1;
					search->stack[search->depth++] = (struct frame){
						.call_event = event, .cache_entry = entry, .previous_value = value, .phase = phase };
					value = after;
					ok_hash = next_ok_hash;
					lift(search, event);
					if (is_ok && --remaining == 0)
						return LINEARIZABLE;
					event = events[0].next;
					phase = PHASE_PURE;
					compare_failure_checked = false;
					continue;
				}
				bit_flip(bits, bit);
				/* The forced move leads only where the search has failed before: so does this node. */
				backtrack = phase == PHASE_PURE;
			}
		}
		if (!backtrack) {
			event = current->next;
			continue;
		}
		/* Undo the last move and resume scanning its node after it; a pure move was the node's only
		 * option, so its failure is the node's failure and the undoing goes on. */
		compare_failure_checked = false;
		for (;;) {
			if (search->depth == 0)
				return NOT_LINEARIZABLE;
			uint8_t undone_phase = search->stack[search->depth - 1].phase;
			uint32_t undone_event = search->stack[search->depth - 1].call_event;
			undo_top(search, &value, &ok_hash, &remaining);
			if (undone_phase != PHASE_PURE) {
				event = events[undone_event].next;
				phase = undone_phase;
				break;
			}
		}
	}
}

static void describe(const struct history *history, uint32_t operation, char *buffer, size_t size)
{
	history_describe_operation(history, &history->operations[operation], buffer, size);
}

/* Why an operation cannot take effect on this value, in words a person checks against the file. */
static void explain_refusal(const struct operation *operation, struct register_value value, char *buffer, size_t size)
{
	char held[32], wanted[32];
	register_value_format(value, held, sizeof held);
	struct register_value after;
	if (register_apply(operation, value, &after)) {
		snprintf(buffer, size, "could take effect here, but no order of the remaining operations works after it");
		return;
	}
	switch (operation->kind) {
	case OPERATION_READ:
		register_value_format(operation->read_result, wanted, sizeof wanted);
		snprintf(buffer, size, "read %s but the register holds %s", wanted, held);
		return;
	case OPERATION_CAS:
		register_value_format(operation->argument, wanted, sizeof wanted);
		if (operation->outcome == OUTCOME_OK && !operation->cas_swapped)
			snprintf(buffer, size, "returned false but the register holds the expected %s", held);
		else if (operation->outcome == OUTCOME_OK)
			snprintf(buffer, size, "returned true but the register holds %s, not the expected %s", held, wanted);
		else
			snprintf(buffer, size, "the register holds %s, not the expected %s", held, wanted);
		return;
	case OPERATION_WRITE:
		snprintf(buffer, size, "would not change the register");
		return;
	}
}

/* proven: the search finished and found no linearization; otherwise it hit its bound. */
static void explain_key(const struct search *search, bool proven, bool verbose, FILE *report)
{
	const struct history *history = search->history;
	const struct dead_end *dead_end = &search->dead_end;
	const char *key = history->keys[history->operations[search->operations[0]].key_index];
	char line[512], reason[160], value_text[32];
	fprintf(report, "key %s: %s (%zu ok and %zu unknown operations on this key, %zu configurations explored)\n",
		key, proven ? "NOT linearizable" : "unknown: search bound hit", search->ok_count, search->operation_count - search->ok_count, search->cache.count);
	if (!dead_end->recorded)
		return;
	if (!proven) {
		fprintf(report, "  the search stopped unfinished; its deepest dead end had linearized %zu of %zu ok operations"
			" (raise --max-states or --max-memory-mb)\n",
			dead_end->ok_linearized, search->ok_count);
		return;
	}
	size_t shown_from = 0;
	if (!verbose && dead_end->prefix_length > PREFIX_STEPS_SHOWN)
		shown_from = dead_end->prefix_length - PREFIX_STEPS_SHOWN;
	fprintf(report, "  longest linearizable prefix: %zu of %zu ok operations", dead_end->ok_linearized, search->ok_count);
	if (dead_end->prefix_length > dead_end->ok_linearized)
		fprintf(report, " and %zu unknown ones", dead_end->prefix_length - dead_end->ok_linearized);
	if (shown_from > 0)
		fprintf(report, "; its last %d steps (--verbose shows all):\n", PREFIX_STEPS_SHOWN);
	else
		fprintf(report, ":\n");
	for (size_t step = shown_from; step < dead_end->prefix_length; step++) {
		describe(history, dead_end->prefix[step], line, sizeof line);
		fprintf(report, "    %s\n", line);
	}
	register_value_format(dead_end->value, value_text, sizeof value_text);
	fprintf(report, "  register after that prefix: %s\n", value_text);
	fprintf(report, "  stuck: line %" PRIu32 " completed, so one of these operations, all invoked before then, must "
		"take effect next, and none can:\n", history->operations[dead_end->blocking].line);
	for (size_t index = 0; index < dead_end->window_length; index++) {
		uint32_t candidate = dead_end->window[index];
		describe(history, candidate, line, sizeof line);
		explain_refusal(&history->operations[candidate], dead_end->value, reason, sizeof reason);
		fprintf(report, "    %s: %s\n", line, reason);
	}
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Checks one key whose searchable operations are listed (ok ones first). Returns the verdict or -1. */
static int check_key(const struct history *history, const uint32_t *operations, size_t ok_count,
		     size_t operation_count, const struct linearizability_options *options, uint64_t *states)
{
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	struct search search;
	int verdict = search_init(&search, history, operations, ok_count, operation_count, options);
	if (verdict == 0)
		verdict = search_run(&search);
	*states = search.cache.count;
	if (options->report != NULL && verdict >= 0) {
		if (verdict == NOT_LINEARIZABLE)
			explain_key(&search, true, options->verbose, options->report);
		else if (verdict == SEARCH_BOUND_HIT)
			explain_key(&search, false, options->verbose, options->report);
		if (options->verbose && operation_count > 0)
			fprintf(options->report, "key %s: %s, %zu ok + %zu unknown operations, %zu configurations, %.3f s\n",
				history->keys[history->operations[operations[0]].key_index],
				verdict == LINEARIZABLE ? "linearizable" : verdict == NOT_LINEARIZABLE ? "not linearizable" : "bound hit",
				ok_count, operation_count - ok_count, search.cache.count, seconds_since(&start));
	}
	search_free(&search);
	return verdict;
}

/* Whether the operation can affect the register or constrain it; failed ones and unanswered reads cannot. */
static bool is_searched(const struct operation *operation)
{
	if (operation->outcome == OUTCOME_FAIL)
		return false;
	return !(operation->outcome == OUTCOME_UNKNOWN && operation->kind == OPERATION_READ);
}

int linearizability_check_history(const struct history *history, const struct linearizability_options *options,
				  struct linearizability_summary *summary)
{
	memset(summary, 0, sizeof *summary);
	summary->verdict = LINEARIZABLE;
	summary->operation_count = history->operation_count;
	summary->key_count = history->key_count;
	for (size_t index = 0; index < history->operation_count; index++) {
		enum operation_outcome outcome = history->operations[index].outcome;
		summary->ok_count += outcome == OUTCOME_OK;
		summary->failed_count += outcome == OUTCOME_FAIL;
		summary->unknown_count += outcome == OUTCOME_UNKNOWN;
	}
	/* Counting sort by key, ok operations ahead of unknown ones within a key. */
	size_t *key_start = calloc(history->key_count + 1, sizeof *key_start);
	size_t *key_ok = calloc(history->key_count + 1, sizeof *key_ok);
	size_t *fill = calloc(history->key_count + 1, sizeof *fill);
	uint32_t *ordered = malloc((history->operation_count + 1) * sizeof *ordered);
	int status = 0;
	if (key_start == NULL || key_ok == NULL || fill == NULL || ordered == NULL) {
		status = -1;
		goto out;
	}
	for (size_t index = 0; index < history->operation_count; index++) {
		const struct operation *operation = &history->operations[index];
		if (!is_searched(operation))
			continue;
		key_start[operation->key_index + 1]++;
		key_ok[operation->key_index] += operation->outcome == OUTCOME_OK;
	}
	for (size_t key = 0; key < history->key_count; key++)
		key_start[key + 1] += key_start[key];
	for (size_t key = 0; key < history->key_count; key++)
		fill[key] = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t index = 0; index < history->operation_count; index++) {
			const struct operation *operation = &history->operations[index];
			if (!is_searched(operation) || (operation->outcome == OUTCOME_OK) != (pass == 0))
				continue;
			ordered[key_start[operation->key_index] + fill[operation->key_index]++] = (uint32_t)index;
		}
	}
	for (size_t key = 0; key < history->key_count; key++) {
		uint64_t states = 0;
		int verdict = check_key(history, ordered + key_start[key], key_ok[key], key_start[key + 1] - key_start[key],
					options, &states);
		summary->states_explored += states;
		if (verdict < 0) {
			status = -1;
			goto out;
		}
		if (verdict == NOT_LINEARIZABLE) {
			if (summary->bad_key_count++ == 0)
				summary->first_bad_key = (uint32_t)key;
			summary->verdict = NOT_LINEARIZABLE;
		} else if (verdict == SEARCH_BOUND_HIT) {
			if (summary->bounded_key_count++ == 0)
				summary->first_bounded_key = (uint32_t)key;
			if (summary->verdict == LINEARIZABLE)
				summary->verdict = SEARCH_BOUND_HIT;
		}
	}
out:
	free(key_start);
	free(key_ok);
	free(fill);
	free(ordered);
	return status;
}
