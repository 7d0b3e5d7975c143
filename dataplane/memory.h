/* dataplane/memory.h: an in-memory transport for tests. Transports opened on one memory_network reach
 * each other by member id (add_peer's host and port are ignored); frames go through the same encode,
 * parse, filter, fault layer and reassembly as on a socket. Time is virtual: the network's clock only
 * moves when the test sets it, so timeouts and fault-layer delays are deterministic.
 *
 * Threading as in transport.h; the network's inboxes have a lock, so senders and receivers may be
 * different threads. */
#ifndef QUORUMD_DATAPLANE_MEMORY_H
#define QUORUMD_DATAPLANE_MEMORY_H

#include <stdint.h>

#include "transport.h"

struct memory_network;

int memory_network_create(struct memory_network **out);
/* After every transport on it is closed. */
void memory_network_destroy(struct memory_network *net);

/* The virtual monotonic clock (ns) every transport on net reads; starts at 1 s. */
void memory_network_set_time(struct memory_network *net, uint64_t now_ns);
uint64_t memory_network_time(const struct memory_network *net);

/* Puts raw bytes in member to's inbox as if a datagram had arrived (tests craft bad frames).
 * -ENOENT when no transport has that member id. */
int memory_network_inject(struct memory_network *net, uint64_t to, const uint8_t *datagram, size_t length);

/* -EADDRINUSE when a transport on net already has config->member_id. poll's timeout waits in real time
 * for a datagram to arrive. */
int memory_transport_open(struct memory_network *net, const struct transport_config *config,
	struct transport **out, char *err, size_t errlen);

#endif
