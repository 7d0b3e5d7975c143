/* dataplane/reassembly.h: puts fragmented messages back together on the receive side.
 *
 * Keyed by (from, message_id). Fragments may arrive in any order and more than once; a complete message
 * is delivered once (a per-sender window of the last REASSEMBLY_WINDOW message ids remembers what was
 * delivered, so a late duplicate fragment or a duplicated single-frame message is recognised). An
 * incomplete message is dropped when its first fragment is older than the timeout, or, oldest first,
 * when keeping it would exceed the memory bound. Time comes in from the caller (monotonic nanoseconds,
 * never decreasing): no clock is read here, so tests are deterministic.
 *
 * Input frames must have passed frame_parse() (fields consistent). One struct reassembly is used by one
 * thread (the transport's receive thread). */
#ifndef QUORUMD_DATAPLANE_REASSEMBLY_H
#define QUORUMD_DATAPLANE_REASSEMBLY_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/* Message ids remembered per sender for duplicate detection, and senders remembered (least recently
 * seen sender forgotten first). Ids below a sender's window are treated as new. */
#define REASSEMBLY_WINDOW 1024u
#define REASSEMBLY_SENDERS 64u

struct reassembly;

struct reassembly_config {
	size_t memory_limit;   /* bytes held by incomplete messages, bookkeeping included */
	uint64_t timeout_ns;   /* an incomplete message whose first fragment is this old is dropped */
};

struct reassembly_counters {
	uint64_t completed;      /* messages delivered (single-frame ones included) */
	uint64_t duplicates;     /* fragments already held, or of a message already delivered */
	uint64_t timeouts;       /* incomplete messages dropped by age */
	uint64_t memory_drops;   /* incomplete messages evicted, plus fragments refused because their
	                          * message alone exceeds the memory limit */
	uint64_t mismatched;     /* fragments whose length/count disagree with earlier fragments */
	uint64_t pending;        /* incomplete messages held now */
	uint64_t memory_used;    /* bytes held now */
};

enum reassembly_result {
	REASSEMBLY_PENDING,      /* stored; the message is not complete yet */
	REASSEMBLY_COMPLETE,     /* *out holds the message */
	REASSEMBLY_DUPLICATE,    /* ignored: seen before */
	REASSEMBLY_DROPPED,      /* ignored: memory bound or mismatched fragment (see counters) */
};

/* A delivered message. data stays valid until the next call on the same struct reassembly. */
struct reassembly_message {
	uint64_t from;
	uint64_t message_id;
	const uint8_t *data;
	size_t length;
};

/* 0 or -ENOMEM / -EINVAL (memory_limit or timeout 0). */
int reassembly_create(const struct reassembly_config *config, struct reassembly **out);
void reassembly_destroy(struct reassembly *r);

/* Adds one parsed fragment received at now_ns. Expires timed-out messages first. */
enum reassembly_result reassembly_add(struct reassembly *r, const struct frame_header *header,
	const uint8_t *payload, uint64_t now_ns, struct reassembly_message *out);

/* Drops incomplete messages whose first fragment is at least timeout_ns old at now_ns. */
void reassembly_expire(struct reassembly *r, uint64_t now_ns);

/* When the oldest incomplete message times out (UINT64_MAX if none). */
uint64_t reassembly_next_expiry(const struct reassembly *r);

void reassembly_counters(const struct reassembly *r, struct reassembly_counters *out);

#endif
