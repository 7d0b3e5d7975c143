/* tests/sim/events.c: the simulation's event queue, a binary min-heap on (time, insertion order).
 *
 * Ties in time are broken by insertion order so the schedule is a pure function of the seed.
 */
#include <stdlib.h>

#include "sim.h"

static bool event_before(const struct sim_event *a, const struct sim_event *b)
{
	return a->time != b->time ? a->time < b->time : a->sequence < b->sequence;
}

static void swap_events(struct sim_event *a, struct sim_event *b)
{
	struct sim_event t = *a;
	*a = *b;
	*b = t;
}

void events_push(struct sim_event_queue *queue, struct sim_event *event)
{
	if (queue->count == queue->capacity) {
		queue->capacity = queue->capacity ? queue->capacity * 2 : 256;
		queue->heap = realloc(queue->heap, queue->capacity * sizeof(*queue->heap));
		if (queue->heap == NULL) {
			abort();
		}
	}
	event->sequence = queue->next_sequence++;
	size_t at = queue->count++;
	queue->heap[at] = *event;
	while (at > 0) {
		size_t parent = (at - 1) / 2;
		if (!event_before(&queue->heap[at], &queue->heap[parent])) {
			break;
		}
		swap_events(&queue->heap[at], &queue->heap[parent]);
		at = parent;
	}
}

bool events_pop(struct sim_event_queue *queue, struct sim_event *event_out)
{
	if (queue->count == 0) {
		return false;
	}
	*event_out = queue->heap[0];
	queue->heap[0] = queue->heap[--queue->count];
	size_t at = 0;
	for (;;) {
		size_t left = 2 * at + 1, right = left + 1, smallest = at;
		if (left < queue->count && event_before(&queue->heap[left], &queue->heap[smallest])) {
			smallest = left;
		}
		if (right < queue->count && event_before(&queue->heap[right], &queue->heap[smallest])) {
			smallest = right;
		}
		if (smallest == at) {
			break;
		}
		swap_events(&queue->heap[at], &queue->heap[smallest]);
		at = smallest;
	}
	return true;
}

void events_free(struct sim_event_queue *queue)
{
	for (size_t i = 0; i < queue->count; i++) {
		message_free(&queue->heap[i].message);
	}
	free(queue->heap);
	*queue = (struct sim_event_queue){0};
}
