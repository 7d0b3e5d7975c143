/* dataplane/reassembly.c: fragment reassembly (contract in reassembly.h).
 *
 * Incomplete messages live in one allocation each (bookkeeping, bitmap of received fragments, message
 * buffer), indexed by a chained hash table on (from, message_id) and linked in arrival order of their
 * first fragment, which is both the timeout order and the eviction order. */
#include "reassembly.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct partial {
	uint64_t from;
	uint64_t message_id;
	uint64_t first_seen_ns;
	uint32_t length;
	uint16_t count;
	uint16_t received;
	size_t footprint;
	struct partial *hash_next;
	struct partial *older;
	struct partial *newer;
	uint8_t *bitmap;
	uint8_t *data;
};

/* Which message ids of one sender were delivered: bit (id % WINDOW) for ids in (highest-WINDOW, highest]. */
struct sender {
	bool used;
	bool started;
	uint64_t id;
	uint64_t highest;
	uint64_t last_used;
	uint64_t bits[REASSEMBLY_WINDOW / 64];
};

struct reassembly {
	struct reassembly_config config;
	struct partial **buckets;
	size_t bucket_count;    /* power of two */
	size_t partial_count;
	struct partial *oldest;
	struct partial *newest;
	struct partial *delivered;   /* completed message handed out last; freed at the next call */
	struct sender senders[REASSEMBLY_SENDERS];
	uint64_t sender_clock;
	struct reassembly_counters counters;
};

static size_t hash_key(uint64_t from, uint64_t message_id)
{
	uint64_t h = from * 0x9e3779b97f4a7c15ull ^ message_id;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (size_t)h;
}

int reassembly_create(const struct reassembly_config *config, struct reassembly **out)
{
	if (config->memory_limit == 0 || config->timeout_ns == 0)
		return -EINVAL;
	struct reassembly *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->config = *config;
	r->bucket_count = 64;
	r->buckets = calloc(r->bucket_count, sizeof *r->buckets);
	if (!r->buckets) {
		free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

static void release_delivered(struct reassembly *r)
{
	free(r->delivered);
	r->delivered = NULL;
}

void reassembly_destroy(struct reassembly *r)
{
	if (!r)
		return;
	release_delivered(r);
	struct partial *p = r->oldest;
	while (p) {
		struct partial *next = p->newer;
		free(p);
		p = next;
	}
	free(r->buckets);
	free(r);
}

static struct partial **find_slot(struct reassembly *r, uint64_t from, uint64_t message_id)
{
	struct partial **slot = &r->buckets[hash_key(from, message_id) & (r->bucket_count - 1)];
	while (*slot && ((*slot)->from != from || (*slot)->message_id != message_id))
		slot = &(*slot)->hash_next;
	return slot;
}

/* Unlinks p from the hash table and the age list; the caller frees or keeps it. */
static void unlink_partial(struct reassembly *r, struct partial *p)
{
	struct partial **slot = find_slot(r, p->from, p->message_id);
	*slot = p->hash_next;
	if (p->older)
		p->older->newer = p->newer;
	else
		r->oldest = p->newer;
	if (p->newer)
		p->newer->older = p->older;
	else
		r->newest = p->older;
	r->partial_count--;
	r->counters.pending--;
	r->counters.memory_used -= p->footprint;
}

static void grow(struct reassembly *r)
{
	size_t count = r->bucket_count * 2;
	struct partial **buckets = calloc(count, sizeof *buckets);
	if (!buckets)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < r->bucket_count; i++) {
		struct partial *p = r->buckets[i];
		while (p) {
			struct partial *next = p->hash_next;
			size_t b = hash_key(p->from, p->message_id) & (count - 1);
			p->hash_next = buckets[b];
			buckets[b] = p;
			p = next;
		}
	}
	free(r->buckets);
	r->buckets = buckets;
	r->bucket_count = count;
}

void reassembly_expire(struct reassembly *r, uint64_t now_ns)
{
	while (r->oldest && now_ns >= r->oldest->first_seen_ns &&
		now_ns - r->oldest->first_seen_ns >= r->config.timeout_ns) {
		struct partial *p = r->oldest;
		unlink_partial(r, p);
		free(p);
		r->counters.timeouts++;
	}
}

uint64_t reassembly_next_expiry(const struct reassembly *r)
{
	if (!r->oldest)
		return UINT64_MAX;
	return r->oldest->first_seen_ns + r->config.timeout_ns;
}

static struct sender *find_sender(struct reassembly *r, uint64_t from, bool create)
{
	struct sender *victim = &r->senders[0];
	for (size_t i = 0; i < REASSEMBLY_SENDERS; i++) {
		struct sender *s = &r->senders[i];
		if (s->used && s->id == from) {
			s->last_used = ++r->sender_clock;
			return s;
		}
		if (!s->used)
			victim = s;
		else if (victim->used && s->last_used < victim->last_used)
			victim = s;
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof *victim);
	victim->used = true;
	victim->id = from;
	victim->last_used = ++r->sender_clock;
	return victim;
}

static bool window_has(const struct sender *s, uint64_t message_id)
{
	if (message_id > s->highest || s->highest - message_id >= REASSEMBLY_WINDOW)
		return false;
	uint64_t bit = message_id % REASSEMBLY_WINDOW;
	return (s->bits[bit / 64] >> (bit % 64)) & 1;
}

static void window_clear(struct sender *s, uint64_t message_id)
{
	uint64_t bit = message_id % REASSEMBLY_WINDOW;
	s->bits[bit / 64] &= ~(1ull << (bit % 64));
}

static bool delivered_before(struct reassembly *r, uint64_t from, uint64_t message_id)
{
	struct sender *s = find_sender(r, from, false);
	return s && window_has(s, message_id);
}

static void mark_delivered(struct reassembly *r, uint64_t from, uint64_t message_id)
{
	struct sender *s = find_sender(r, from, true);
	if (!s->started) {
		s->started = true;
		s->highest = message_id;
	} else if (message_id > s->highest) {
		if (message_id - s->highest >= REASSEMBLY_WINDOW)
			memset(s->bits, 0, sizeof s->bits);
		else
			for (uint64_t id = s->highest + 1; id <= message_id; id++)
				window_clear(s, id);
		s->highest = message_id;
	} else if (s->highest - message_id >= REASSEMBLY_WINDOW) {
		return; /* below the window: not remembered */
	}
	uint64_t bit = message_id % REASSEMBLY_WINDOW;
	s->bits[bit / 64] |= 1ull << (bit % 64);
}

static enum reassembly_result complete(struct reassembly *r, uint64_t from, uint64_t message_id,
	const uint8_t *data, size_t length, struct reassembly_message *out)
{
	mark_delivered(r, from, message_id);
	r->counters.completed++;
	out->from = from;
	out->message_id = message_id;
	out->data = data;
	out->length = length;
	return REASSEMBLY_COMPLETE;
}

static struct partial *new_partial(struct reassembly *r, const struct frame_header *h, uint64_t now_ns)
{
	size_t bitmap_size = ((size_t)h->fragment_count + 7) / 8;
	size_t footprint = sizeof(struct partial) + bitmap_size + h->message_length;
	if (footprint > r->config.memory_limit) {
		r->counters.memory_drops++;
		return NULL;
	}
	while (r->counters.memory_used + footprint > r->config.memory_limit && r->oldest) {
		struct partial *victim = r->oldest;
		unlink_partial(r, victim);
		free(victim);
		r->counters.memory_drops++;
	}
	struct partial *p = malloc(footprint);
	if (!p) {
		r->counters.memory_drops++;
		return NULL;
	}
	memset(p, 0, sizeof *p + bitmap_size);
	p->from = h->from;
	p->message_id = h->message_id;
	p->first_seen_ns = now_ns;
	p->length = h->message_length;
	p->count = h->fragment_count;
	p->footprint = footprint;
	p->bitmap = (uint8_t *)(p + 1);
	p->data = p->bitmap + bitmap_size;
	if (r->partial_count >= r->bucket_count)
		grow(r);
	struct partial **slot = &r->buckets[hash_key(p->from, p->message_id) & (r->bucket_count - 1)];
	p->hash_next = *slot;
	*slot = p;
	p->older = r->newest;
	if (r->newest)
		r->newest->newer = p;
	else
		r->oldest = p;
	r->newest = p;
	r->partial_count++;
	r->counters.pending++;
	r->counters.memory_used += footprint;
	return p;
}

enum reassembly_result reassembly_add(struct reassembly *r, const struct frame_header *h,
	const uint8_t *payload, uint64_t now_ns, struct reassembly_message *out)
{
	release_delivered(r);
	reassembly_expire(r, now_ns);
	if (delivered_before(r, h->from, h->message_id)) {
		r->counters.duplicates++;
		return REASSEMBLY_DUPLICATE;
	}
	if (h->fragment_count == 1)
		return complete(r, h->from, h->message_id, payload, h->fragment_length, out);

	struct partial *p = *find_slot(r, h->from, h->message_id);
	if (p && (p->length != h->message_length || p->count != h->fragment_count)) {
		r->counters.mismatched++;
		return REASSEMBLY_DROPPED;
	}
	if (!p) {
		p = new_partial(r, h, now_ns);
		if (!p)
			return REASSEMBLY_DROPPED;
	}
	uint16_t i = h->fragment_index;
	if (p->bitmap[i / 8] & (1u << (i % 8))) {
		r->counters.duplicates++;
		return REASSEMBLY_DUPLICATE;
	}
	size_t offset, length;
	if (frame_fragment_span(h->message_length, h->fragment_count, i, &offset, &length) != FRAME_OK ||
		length != h->fragment_length) {
		r->counters.mismatched++;
		return REASSEMBLY_DROPPED;
	}
	p->bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
	memcpy(p->data + offset, payload, length);
	if (++p->received < p->count)
		return REASSEMBLY_PENDING;
	unlink_partial(r, p);
	r->delivered = p;
	return complete(r, p->from, p->message_id, p->data, p->length, out);
}

void reassembly_counters(const struct reassembly *r, struct reassembly_counters *out)
{
	*out = r->counters;
}
