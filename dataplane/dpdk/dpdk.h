/* dataplane/dpdk/dpdk.h: the DPDK transport. One Ethernet port (a NIC bound to vfio-pci, or a virtual
 * device such as net_af_packet on a veth) driven by a poll-mode lcore that owns a minimal stack (Ethernet,
 * ARP, IPv4, UDP, ICMP echo: stack.h). Frames are the udp transport's (frame.h), in UDP datagrams to and
 * from the peer URL's IP and port, so udp and dpdk members talk to each other on one L2 segment.
 *
 * Threads (transport.h's contract, unchanged):
 *   lcore           rx burst -> Ethernet/ARP/ICMP handled in place -> UDP payloads (mbufs) into rx ring;
 *                   tx ring -> neighbour lookup (ARP) -> Ethernet header -> tx burst. Owns the port's
 *                   queues and the neighbour table.
 *   receive side    transport_poll: rx ring -> the shared pipeline (frame_parse, MAC, filters, reassembly)
 *                   -> deliver. A single-frame message is delivered straight from its mbuf.
 *   send side       transport_send encodes (and seals) each fragment straight into an mbuf (IPv4/UDP header in
 *                   front, the lcore adds Ethernet), transport_flush enqueues them on the tx ring.
 * Rings are single-producer/single-consumer rte_rings; an eventfd wakes a sleeping lcore (adaptive idle)
 * or a sleeping receive side, written only when the other side said it sleeps.
 *
 * EAL is initialised once per process (the first open), from --dpdk-args split at spaces; the port,
 * mempool and rings stay for the process's lifetime and later opens reuse them (the node opens a
 * transport to ask a cluster who it is, closes it, then opens its own). One dpdk transport may be open
 * at a time. */
#ifndef QUORUMD_DATAPLANE_DPDK_DPDK_H
#define QUORUMD_DATAPLANE_DPDK_DPDK_H

#include <stdbool.h>
#include <stdint.h>

#include "transport.h"

enum dpdk_idle {
	DPDK_IDLE_ADAPTIVE, /* poll under traffic, yielding the CPU between empty polls (sched_yield: a shared
	                     * machine's other threads run, an idle one costs nothing); after DPDK_IDLE_SPIN_US
	                     * without a packet, sleeps of up to DPDK_IDLE_MAX_SLEEP_US */
	DPDK_IDLE_POLL,     /* never sleep: a full core per lcore (bare metal) */
};

/* Longest sleep of an idle lcore (adaptive): the extra latency the first packet after a pause can see
 * (not on af_packet ports: there the lcore sleeps on the PMD's sockets and a frame wakes it). */
#define DPDK_IDLE_MAX_SLEEP_US 200u
/* How long an lcore keeps spinning after its last packet before it starts to sleep (adaptive). */
#define DPDK_IDLE_SPIN_US 50u

struct dpdk_options {
	const char *eal_args;    /* --dpdk-args: "-l 1 --no-pci --vdev=net_af_packet0,iface=qv1 --no-huge -m 256
	                          * --in-memory"; argv[0] is added */
	enum dpdk_idle idle;     /* --dataplane-idle */
	const char *neighbours;  /* --dpdk-neighbors: "IP=MAC,IP=MAC" static ARP entries, or NULL/"" */
	unsigned port;           /* ethdev port id to use: 0 (the first) unless several exist */
};

void dpdk_options_init(struct dpdk_options *options);

/* "adaptive" / "poll" -> enum; -EINVAL for anything else. */
int dpdk_idle_parse(const char *text, enum dpdk_idle *idle);

/* Initialises EAL (first call only), the port and an lcore, and listens on host:port (host: this
 * member's IPv4 address from --listen-peer-urls; the port answers ARP for it). Errors name the cause:
 * "dpdk: EAL init failed (...)", "dpdk: no hugepages ... add --no-huge", "dpdk: no Ethernet port ...",
 * "dpdk: listen address 0.0.0.0 ...". */
int dpdk_transport_open(const struct transport_config *config, const struct dpdk_options *options, const char *host,
	uint16_t port, struct transport **out, char *err, size_t errlen);

/* The port's MAC address and PMD name ("net_af_packet"), for logs. -EINVAL if t is not a dpdk transport. */
int dpdk_transport_port_info(const struct transport *t, char *mac, size_t maclen, char *driver, size_t driverlen);

#endif
