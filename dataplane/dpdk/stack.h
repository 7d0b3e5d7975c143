/* dataplane/dpdk/stack.h: the dpdk transport's own small network stack — Ethernet, ARP, IPv4, UDP and
 * ICMP echo — as pure functions on byte buffers plus the neighbour (ARP) table. No DPDK, no I/O, no clock
 * (time comes in), so tests/dataplane/test_dpdk_stack.c checks it without EAL or a port. The poll-mode
 * lcore in dpdk.c owns one struct stack_neighbours and calls these on mbuf data.
 *
 * Byte order: the wire is big-endian; every field is read and written byte by byte. IPv4 addresses and
 * ports are held in host order (10.0.0.1 is 0x0a000001). */
#ifndef QUORUMD_DATAPLANE_DPDK_STACK_H
#define QUORUMD_DATAPLANE_DPDK_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STACK_ETH_HEADER 14u
#define STACK_IPV4_HEADER 20u
#define STACK_UDP_HEADER 8u
/* Ethernet + IPv4 + UDP in front of a frame. */
#define STACK_UDP_OVERHEAD (STACK_ETH_HEADER + STACK_IPV4_HEADER + STACK_UDP_HEADER)
#define STACK_ARP_PACKET 42u    /* Ethernet + ARP for IPv4; padded to 60 on the wire by the port */
#define STACK_MIN_FRAME 60u
#define STACK_ETHERTYPE_IPV4 0x0800u
#define STACK_ETHERTYPE_ARP 0x0806u

struct stack_local {
	uint8_t mac[6];
	uint32_t ip;     /* host order */
	uint16_t port;   /* our UDP port */
};

/* What a received Ethernet frame is, for the lcore. */
enum stack_kind {
	STACK_IGNORE,          /* not for us (another MAC or IP, another protocol, our own echo) */
	STACK_MALFORMED,       /* too short, bad IPv4 header or checksum, an IP fragment, bad lengths */
	STACK_FRAME,           /* UDP to our IP and port: payload/payload_length is a quorumd frame */
	STACK_ARP_REQUEST,     /* ARP request for our IP: answer it (sender_* is the asker, learn it too) */
	STACK_ARP_REPLY,       /* ARP reply or other ARP from a neighbour: learn sender_ip -> sender_mac */
	STACK_ICMP_ECHO,       /* ICMP echo request to our IP: stack_icmp_echo_reply turns it around */
};

struct stack_packet {
	enum stack_kind kind;
	uint8_t sender_mac[6];
	uint32_t sender_ip;
	uint16_t sender_port;
	size_t payload_offset;   /* STACK_FRAME: UDP payload; STACK_ICMP_ECHO: the ICMP message */
	size_t payload_length;
};

/* Classifies one received Ethernet frame of length bytes (trailing Ethernet padding allowed). Accepts
 * Ethernet frames to our MAC or broadcast. ip_checksum_checked: the port already verified the IPv4
 * header checksum (offload), so it is not recomputed. */
void stack_classify(const uint8_t *packet, size_t length, const struct stack_local *local,
	bool ip_checksum_checked, struct stack_packet *out);

/* The Internet checksum (RFC 1071) of length bytes, folded and complemented. */
uint16_t stack_checksum(const uint8_t *data, size_t length);

void stack_write_ethernet(uint8_t *out, const uint8_t destination[6], const uint8_t source[6], uint16_t type);

/* Writes the IPv4 and UDP headers (28 bytes) for payload_length bytes of UDP payload: DF set, TTL 64, UDP
 * checksum 0 (none: the frame carries a CRC32C). The IPv4 header checksum is computed unless
 * checksum_offload (then 0, for the port to fill). */
void stack_write_ipv4_udp(uint8_t *out, uint32_t source_ip, uint16_t source_port, uint32_t destination_ip,
	uint16_t destination_port, size_t payload_length, uint16_t ip_id, bool checksum_offload);

/* The destination IPv4 address of a header written by stack_write_ipv4_udp. */
uint32_t stack_ipv4_destination(const uint8_t *ipv4_header);

/* Writes a 42-byte ARP packet (Ethernet header included). Request (op 1): to broadcast, target MAC 0.
 * Reply (op 2): to target_mac. Returns STACK_ARP_PACKET. */
size_t stack_write_arp(uint8_t *out, bool reply, const struct stack_local *local, const uint8_t target_mac[6],
	uint32_t target_ip);

/* Turns a classified STACK_ICMP_ECHO packet into its echo reply in place (addresses swapped, type 0,
 * checksums recomputed). Returns the reply's length (Ethernet padding removed). */
size_t stack_icmp_echo_reply(uint8_t *packet, const struct stack_packet *classified, const struct stack_local *local);

/* "10.0.0.1" -> host order; false if not dotted IPv4. */
bool stack_parse_ipv4(const char *text, uint32_t *ip);
void stack_format_ipv4(uint32_t ip, char *out, size_t size);
/* "02:00:00:00:00:01" -> bytes; false if malformed. */
bool stack_parse_mac(const char *text, uint8_t mac[6]);

/* ---- the neighbour table (ARP cache) ----
 *
 * A fixed table of STACK_NEIGHBOURS entries keyed by IPv4 address. An entry is STATIC (from the
 * configuration, never expires), REACHABLE (answered; usable until expires_ns, then STALE), STALE (still
 * used, a refresh request goes out; dropped if it stays unanswered for STACK_ARP_TRIES requests) or
 * INCOMPLETE (asked, no answer yet: frames wait in its pending queue; after STACK_ARP_TRIES requests
 * the pending frames are dropped and the entry is FAILED for STACK_ARP_FAILED_NS, during which frames
 * to it are dropped at once). Pending frames are opaque pointers (mbufs) the caller frees. */
#define STACK_NEIGHBOURS 64u
#define STACK_ARP_PENDING 256u
#define STACK_ARP_TRIES 5u
#define STACK_ARP_RETRY_NS (200u * 1000u * 1000u)
#define STACK_ARP_REACHABLE_NS (60ull * 1000u * 1000u * 1000u)
#define STACK_ARP_FAILED_NS (1000ull * 1000u * 1000u)

enum stack_neighbour_state {
	STACK_NEIGHBOUR_FREE,
	STACK_NEIGHBOUR_STATIC,
	STACK_NEIGHBOUR_REACHABLE,
	STACK_NEIGHBOUR_STALE,
	STACK_NEIGHBOUR_INCOMPLETE,
	STACK_NEIGHBOUR_FAILED,
};

struct stack_neighbour {
	enum stack_neighbour_state state;
	uint32_t ip;
	uint8_t mac[6];
	uint64_t expires_ns;      /* REACHABLE: becomes STALE; FAILED: becomes FREE */
	uint64_t next_request_ns; /* INCOMPLETE / STALE: when to ask again */
	unsigned requests;        /* requests sent since the last answer */
	uint64_t last_used_ns;
	void *pending[STACK_ARP_PENDING];
	unsigned pending_count;
};

struct stack_neighbours {
	struct stack_neighbour entries[STACK_NEIGHBOURS];
};

/* What stack_neighbour_output decided for one frame. */
enum stack_route {
	STACK_ROUTE_SEND,       /* mac is filled: send now */
	STACK_ROUTE_SEND_ASK,   /* send now, and send an ARP request (refresh of a STALE entry) */
	STACK_ROUTE_QUEUED,     /* held in the pending queue; *ask says whether to send an ARP request now */
	STACK_ROUTE_DROP,       /* FAILED entry, full queue or full table: free the frame, count it */
};

void stack_neighbours_init(struct stack_neighbours *table);
/* Adds a static entry (replaces any entry for ip). false if the table is full. */
bool stack_neighbour_static(struct stack_neighbours *table, uint32_t ip, const uint8_t mac[6]);
/* Routes one outgoing frame (opaque pointer) to ip. */
enum stack_route stack_neighbour_output(struct stack_neighbours *table, uint32_t ip, void *frame, uint64_t now_ns,
	uint8_t mac[6], bool *ask);
/* Learns ip -> mac from an ARP packet. If the entry had pending frames, they are moved to out (up to
 * out_capacity; the rest stay for the next call) and their count returned; the caller sends them to mac. */
unsigned stack_neighbour_learn(struct stack_neighbours *table, uint32_t ip, const uint8_t mac[6], uint64_t now_ns,
	void **out, unsigned out_capacity);
/* Timers: ages entries, and writes up to ask_capacity IPs that need an ARP request now into ask (count
 * in *ask_count). Frames dropped because resolution failed go to dropped (up to dropped_capacity; call
 * again for the rest), their count returned. */
unsigned stack_neighbours_tick(struct stack_neighbours *table, uint64_t now_ns, uint32_t *ask, unsigned ask_capacity,
	unsigned *ask_count, void **dropped, unsigned dropped_capacity);
/* The entry for ip, or NULL. */
const struct stack_neighbour *stack_neighbour_find(const struct stack_neighbours *table, uint32_t ip);

#endif
