/* dataplane/udp.h: the kernel UDP transport. One non-blocking UDP socket bound to the listen address
 * (IPv4 or IPv6; an IPv6 wildcard also takes IPv4 peers), recvmmsg batches on the receive side, a frame
 * queue flushed with sendmmsg on the send side. Threading and errors as in transport.h. */
#ifndef QUORUMD_DATAPLANE_UDP_H
#define QUORUMD_DATAPLANE_UDP_H

#include <stdint.h>

#include "transport.h"

/* Binds host:port (host as in --listen-peer-urls without brackets: "127.0.0.1", "::1", "0.0.0.0",
 * "::", a name, or "" for the IPv6 wildcard; port 0: the kernel picks one, see
 * transport_local_address). */
int udp_transport_open(const struct transport_config *config, const char *host, uint16_t port,
	struct transport **out, char *err, size_t errlen);

/* The socket's receive and send buffer sizes as the kernel reports them (it doubles what was asked and
 * caps an unprivileged request at net.core.rmem_max / wmem_max). A burst larger than the receive buffer
 * is lost: a 1 MiB message in 1400-byte frames takes about 1.8 MB (2304 bytes per datagram). The node
 * logs these at start-up. -EINVAL if t is not a udp transport. */
int udp_transport_buffers(const struct transport *t, int *receive, int *send);

#endif
