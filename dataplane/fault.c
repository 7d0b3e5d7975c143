/* dataplane/fault.c: the seeded fault layer (contract in fault.h).
 *
 * Every frame put in draws the same four random numbers (drop, duplicate, reorder, jitter), so the
 * decisions for the k-th frame depend on the seed and k only. Held frames sit in an array sorted by
 * (release time, sequence); with a fixed delay they arrive in order, so insertion is at the end. */
#include "fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct held {
	uint64_t release_ns;
	uint64_t sequence;
	size_t length;
	uint8_t *data;
};

struct fault {
	struct fault_config config;
	uint64_t state;          /* splitmix64 */
	uint64_t sequence;
	struct held *held;       /* held[head .. tail) sorted by (release_ns, sequence) */
	size_t head;
	size_t tail;
	size_t capacity;
	/* The frame waiting to be passed (reorder), kept out of the array until the next frame comes or
	 * its hold runs out. */
	bool waiting;
	struct held waiter;
	struct fault_counters counters;
};

static uint64_t next_random(struct fault *f)
{
	uint64_t z = (f->state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double next_unit(struct fault *f)
{
	return (double)(next_random(f) >> 11) * (1.0 / 9007199254740992.0);
}

static int set_error(char *err, size_t errlen, int code, const char *format, const char *item)
{
	if (err && errlen)
		snprintf(err, errlen, format, item);
	return code;
}

int fault_config_parse(const char *text, struct fault_config *config, char *err, size_t errlen)
{
	memset(config, 0, sizeof *config);
	config->enabled = true;
	char buffer[512];
	if (strlen(text) >= sizeof buffer)
		return set_error(err, errlen, -EINVAL, "fault spec too long: %s", text);
	strcpy(buffer, text);
	char *save = NULL;
	for (char *item = strtok_r(buffer, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (!eq)
			return set_error(err, errlen, -EINVAL, "fault spec item without '=': %s", item);
		*eq = '\0';
		const char *value = eq + 1;
		char *end = NULL;
		errno = 0;
		if (!strcmp(item, "drop") || !strcmp(item, "duplicate") || !strcmp(item, "dup") ||
			!strcmp(item, "reorder")) {
			double p = strtod(value, &end);
			if (errno || end == value || *end || !(p >= 0.0 && p <= 1.0))
				return set_error(err, errlen, -EINVAL,
					"fault spec %s: want a probability between 0 and 1", item);
			if (!strcmp(item, "drop"))
				config->drop = p;
			else if (!strcmp(item, "reorder"))
				config->reorder = p;
			else
				config->duplicate = p;
		} else if (!strcmp(item, "delay") || !strcmp(item, "jitter") || !strcmp(item, "seed")) {
			if (*value == '-')
				return set_error(err, errlen, -EINVAL, "fault spec %s: negative", item);
			unsigned long long n = strtoull(value, &end, 0);
			if (errno || end == value || *end)
				return set_error(err, errlen, -EINVAL, "fault spec %s: want a number", item);
			if (!strcmp(item, "seed")) {
				config->seed = n;
			} else if (n > 3600000) {
				return set_error(err, errlen, -EINVAL, "fault spec %s: over an hour", item);
			} else if (!strcmp(item, "delay")) {
				config->delay_ms = (uint32_t)n;
			} else {
				config->jitter_ms = (uint32_t)n;
			}
		} else {
			return set_error(err, errlen, -EINVAL,
				"fault spec: unknown item %s (want drop, duplicate, reorder, delay, jitter, seed)",
				item);
		}
	}
	return 0;
}

int fault_create(const struct fault_config *config, struct fault **out)
{
	if (!(config->drop >= 0 && config->drop <= 1) || !(config->duplicate >= 0 && config->duplicate <= 1) ||
		!(config->reorder >= 0 && config->reorder <= 1))
		return -EINVAL;
	struct fault *f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	f->config = *config;
	if (f->config.max_held == 0)
		f->config.max_held = 65536;
	f->state = config->seed;
	*out = f;
	return 0;
}

void fault_destroy(struct fault *f)
{
	if (!f)
		return;
	for (size_t i = f->head; i < f->tail; i++)
		free(f->held[i].data);
	if (f->waiting)
		free(f->waiter.data);
	free(f->held);
	free(f);
}

static size_t held_count(const struct fault *f)
{
	return f->tail - f->head + (f->waiting ? 1 : 0);
}

static bool before(const struct held *a, const struct held *b)
{
	return a->release_ns < b->release_ns || (a->release_ns == b->release_ns && a->sequence < b->sequence);
}

/* Inserts h (its data owned by the array from now on) in order. false when out of memory. */
static bool insert(struct fault *f, struct held h)
{
	if (f->tail == f->capacity) {
		if (f->head > 0) {
			memmove(f->held, f->held + f->head, (f->tail - f->head) * sizeof *f->held);
			f->tail -= f->head;
			f->head = 0;
		}
		if (f->tail == f->capacity) {
			size_t capacity = f->capacity ? f->capacity * 2 : 64;
			struct held *grown = realloc(f->held, capacity * sizeof *grown);
			if (!grown)
				return false;
			f->held = grown;
			f->capacity = capacity;
		}
	}
	size_t i = f->tail;
	while (i > f->head && before(&h, &f->held[i - 1])) {
		f->held[i] = f->held[i - 1];
		i--;
	}
	f->held[i] = h;
	f->tail++;
	return true;
}

static bool hold(struct fault *f, const uint8_t *frame, size_t length, uint64_t release_ns)
{
	if (held_count(f) >= f->config.max_held) {
		f->counters.overflow++;
		return false;
	}
	struct held h = {.release_ns = release_ns, .sequence = f->sequence++, .length = length};
	h.data = malloc(length ? length : 1);
	if (!h.data) {
		f->counters.overflow++;
		return false;
	}
	memcpy(h.data, frame, length);
	if (!insert(f, h)) {
		free(h.data);
		f->counters.overflow++;
		return false;
	}
	return true;
}

/* Moves the reorder waiter into the array, due at release_ns after everything held so far. */
static void release_waiter(struct fault *f, uint64_t release_ns)
{
	f->waiting = false;
	f->waiter.release_ns = release_ns;
	f->waiter.sequence = f->sequence++;
	if (!insert(f, f->waiter)) {
		free(f->waiter.data);
		f->counters.overflow++;
	}
}

void fault_input(struct fault *f, const uint8_t *frame, size_t length, uint64_t now_ns)
{
	f->counters.input++;
	double drop = next_unit(f), duplicate = next_unit(f), reorder = next_unit(f);
	uint64_t jitter = next_random(f);
	if (drop < f->config.drop) {
		f->counters.dropped++;
		return;
	}
	uint64_t release = now_ns + (uint64_t)f->config.delay_ms * 1000000u;
	if (f->config.jitter_ms)
		release += jitter % ((uint64_t)f->config.jitter_ms * 1000000u + 1);
	/* This frame passes the waiter: the waiter comes right after it. */
	bool had_waiter = f->waiting;
	bool wait = !had_waiter && reorder < f->config.reorder;
	if (wait) {
		if (held_count(f) >= f->config.max_held) {
			f->counters.overflow++;
			return;
		}
		uint8_t *copy = malloc(length ? length : 1);
		if (!copy) {
			f->counters.overflow++;
			return;
		}
		memcpy(copy, frame, length);
		f->waiting = true;
		f->waiter = (struct held){.release_ns = release + FAULT_REORDER_HOLD_NS, .length = length,
			.data = copy};
		f->counters.reordered++;
	} else {
		hold(f, frame, length, release);
	}
	if (duplicate < f->config.duplicate) {
		f->counters.duplicated++;
		hold(f, frame, length, release);
	}
	if (had_waiter)
		release_waiter(f, release);
}

size_t fault_output(struct fault *f, uint64_t now_ns, fault_emit_fn emit, void *arg)
{
	if (f->waiting && f->waiter.release_ns <= now_ns)
		release_waiter(f, f->waiter.release_ns);
	size_t n = 0;
	while (f->head < f->tail && f->held[f->head].release_ns <= now_ns) {
		struct held h = f->held[f->head++];
		f->counters.output++;
		emit(arg, h.data, h.length);
		free(h.data);
		n++;
	}
	if (f->head == f->tail)
		f->head = f->tail = 0;
	return n;
}

uint64_t fault_next_release(const struct fault *f)
{
	uint64_t next = UINT64_MAX;
	if (f->head < f->tail)
		next = f->held[f->head].release_ns;
	if (f->waiting && f->waiter.release_ns < next)
		next = f->waiter.release_ns;
	return next;
}

void fault_counters(const struct fault *f, struct fault_counters *out)
{
	*out = f->counters;
}
