/* dataplane/fault.h: the test-only fault layer. Sits between the socket (or port) and frame parsing on
 * the receive side of a transport and drops, delays, duplicates and reorders frames, decided by a seeded
 * PRNG: the k-th frame put in always gets the same decisions for the same seed. This machine's kernel
 * has no netem qdisc, so this is how tests get delay, duplication and reordering on loopback.
 *
 * Off unless config.enabled (the node sets it from a test flag, see fault_config_parse). Pure: time
 * comes in from the caller, no clock or I/O inside. One struct fault is used by one thread. */
#ifndef QUORUMD_DATAPLANE_FAULT_H
#define QUORUMD_DATAPLANE_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A frame chosen for reordering waits for the next frame to pass it, but never longer than this
 * beyond its delay. */
#define FAULT_REORDER_HOLD_NS (10ull * 1000 * 1000)

struct fault_config {
	bool enabled;
	uint64_t seed;
	double drop;         /* probability that a frame is lost */
	double duplicate;    /* probability that a frame comes out twice */
	double reorder;      /* probability that a frame is held back until the next one has passed it */
	uint32_t delay_ms;   /* every frame is held this long ... */
	uint32_t jitter_ms;  /* ... plus a uniform random 0..jitter_ms (jitter reorders too) */
	size_t max_held;     /* frames held at most (0: 65536); more are dropped and counted */
};

struct fault_counters {
	uint64_t input;       /* frames put in */
	uint64_t output;      /* frames handed out (duplicates included) */
	uint64_t dropped;     /* lost by the drop probability */
	uint64_t duplicated;
	uint64_t reordered;
	uint64_t overflow;    /* lost because max_held frames were held (or out of memory) */
};

struct fault;

/* Parses "drop=0.05,duplicate=0.01,reorder=0.1,delay=20,jitter=5,seed=42" (any subset, any order;
 * "dup" is short for duplicate; delay and jitter in ms) into *config with enabled set. 0 or -EINVAL with
 * a message naming the bad item. */
int fault_config_parse(const char *text, struct fault_config *config, char *err, size_t errlen);

/* 0 or -EINVAL (a probability outside 0..1) / -ENOMEM. */
int fault_create(const struct fault_config *config, struct fault **out);
void fault_destroy(struct fault *f);

/* Puts one frame in (copied) at now_ns. */
void fault_input(struct fault *f, const uint8_t *frame, size_t length, uint64_t now_ns);

typedef void (*fault_emit_fn)(void *arg, const uint8_t *frame, size_t length);

/* Hands every frame due at now_ns to emit, in release order; returns how many. A frame handed out is
 * valid only during the emit call. emit must not call back into f. */
size_t fault_output(struct fault *f, uint64_t now_ns, fault_emit_fn emit, void *arg);

/* When the next held frame is due (UINT64_MAX if none). */
uint64_t fault_next_release(const struct fault *f);

void fault_counters(const struct fault *f, struct fault_counters *out);

#endif
