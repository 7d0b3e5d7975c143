/* dataplane/dpdk/stack.c: Ethernet, ARP, IPv4, UDP and ICMP echo on byte buffers, and the neighbour table
 * (see stack.h). Pure: no DPDK, no I/O, no clock. */
#include "stack.h"

#include <stdio.h>
#include <string.h>

static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint16_t stack_checksum(const uint8_t *data, size_t length)
{
	uint32_t sum = 0;
	size_t i = 0;
	for (; i + 1 < length; i += 2)
		sum += get16(data + i);
	if (i < length)
		sum += (uint32_t)data[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void classify_arp(const uint8_t *arp, size_t length, const struct stack_local *local, struct stack_packet *out)
{
	/* htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4, op, sha, spa, tha, tpa */
	if (length < 28 || get16(arp) != 1 || get16(arp + 2) != STACK_ETHERTYPE_IPV4 || arp[4] != 6 || arp[5] != 4) {
		out->kind = STACK_MALFORMED;
		return;
	}
	uint16_t op = get16(arp + 6);
	memcpy(out->sender_mac, arp + 8, 6);
	out->sender_ip = get32(arp + 14);
	uint32_t target_ip = get32(arp + 24);
	if (memcmp(out->sender_mac, local->mac, 6) == 0 || out->sender_ip == local->ip || out->sender_ip == 0) {
		out->kind = STACK_IGNORE; /* our own request seen again, or an address probe */
		return;
	}
	if (op == 1 && target_ip == local->ip)
		out->kind = STACK_ARP_REQUEST;
	else if (op == 2)
		out->kind = STACK_ARP_REPLY;
	else
		out->kind = STACK_IGNORE;
}

void stack_classify(const uint8_t *packet, size_t length, const struct stack_local *local,
	bool ip_checksum_checked, struct stack_packet *out)
{
	memset(out, 0, sizeof *out);
	out->kind = STACK_MALFORMED;
	if (length < STACK_ETH_HEADER)
		return;
	if (memcmp(packet, local->mac, 6) != 0 && memcmp(packet, broadcast, 6) != 0) {
		out->kind = STACK_IGNORE;
		return;
	}
	memcpy(out->sender_mac, packet + 6, 6);
	uint16_t type = get16(packet + 12);
	const uint8_t *l3 = packet + STACK_ETH_HEADER;
	size_t l3_length = length - STACK_ETH_HEADER;
	if (type == STACK_ETHERTYPE_ARP) {
		classify_arp(l3, l3_length, local, out);
		return;
	}
	if (type != STACK_ETHERTYPE_IPV4) {
		out->kind = STACK_IGNORE;
		return;
	}
	if (l3_length < STACK_IPV4_HEADER || (l3[0] >> 4) != 4)
		return;
	size_t ihl = (size_t)(l3[0] & 0x0f) * 4;
	size_t total = get16(l3 + 2);
	if (ihl < STACK_IPV4_HEADER || total < ihl || total > l3_length)
		return;
	uint32_t destination = get32(l3 + 16);
	out->sender_ip = get32(l3 + 12);
	if (destination != local->ip) {
		out->kind = STACK_IGNORE;
		return;
	}
	if (!ip_checksum_checked && stack_checksum(l3, ihl) != 0)
		return;
	if ((get16(l3 + 6) & 0x3fff) != 0)
		return; /* MF set or a fragment offset: our frames never need IP fragmentation */
	uint8_t protocol = l3[9];
	const uint8_t *l4 = l3 + ihl;
	size_t l4_length = total - ihl;
	if (protocol == 1) { /* ICMP */
		if (l4_length < 8 || stack_checksum(l4, l4_length) != 0)
			return;
		if (l4[0] != 8 || l4[1] != 0) {
			out->kind = STACK_IGNORE;
			return;
		}
		out->kind = STACK_ICMP_ECHO;
		out->payload_offset = STACK_ETH_HEADER + ihl;
		out->payload_length = l4_length;
		return;
	}
	if (protocol != 17) {
		out->kind = STACK_IGNORE;
		return;
	}
	if (l4_length < STACK_UDP_HEADER)
		return;
	size_t udp_length = get16(l4 + 4);
	if (udp_length < STACK_UDP_HEADER || udp_length > l4_length)
		return;
	if (get16(l4 + 2) != local->port) {
		out->kind = STACK_IGNORE;
		return;
	}
	/* The UDP checksum is not checked: every frame carries a CRC32C over header and payload. */
	out->sender_port = get16(l4);
	out->kind = STACK_FRAME;
	out->payload_offset = STACK_ETH_HEADER + ihl + STACK_UDP_HEADER;
	out->payload_length = udp_length - STACK_UDP_HEADER;
}

void stack_write_ethernet(uint8_t *out, const uint8_t destination[6], const uint8_t source[6], uint16_t type)
{
	memcpy(out, destination, 6);
	memcpy(out + 6, source, 6);
	put16(out + 12, type);
}

void stack_write_ipv4_udp(uint8_t *out, uint32_t source_ip, uint16_t source_port, uint32_t destination_ip,
	uint16_t destination_port, size_t payload_length, uint16_t ip_id, bool checksum_offload)
{
	uint8_t *ip = out, *udp = out + STACK_IPV4_HEADER;
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(STACK_IPV4_HEADER + STACK_UDP_HEADER + payload_length));
	put16(ip + 4, ip_id);
	put16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = 17;
	put16(ip + 10, 0);
	put32(ip + 12, source_ip);
	put32(ip + 16, destination_ip);
	if (!checksum_offload)
		put16(ip + 10, stack_checksum(ip, STACK_IPV4_HEADER));
	put16(udp, source_port);
	put16(udp + 2, destination_port);
	put16(udp + 4, (uint16_t)(STACK_UDP_HEADER + payload_length));
	put16(udp + 6, 0);
}

uint32_t stack_ipv4_destination(const uint8_t *ipv4_header)
{
	return get32(ipv4_header + 16);
}

size_t stack_write_arp(uint8_t *out, bool reply, const struct stack_local *local, const uint8_t target_mac[6],
	uint32_t target_ip)
{
	static const uint8_t zero[6] = {0};
	stack_write_ethernet(out, reply ? target_mac : broadcast, local->mac, STACK_ETHERTYPE_ARP);
	uint8_t *arp = out + STACK_ETH_HEADER;
	put16(arp, 1);
	put16(arp + 2, STACK_ETHERTYPE_IPV4);
	arp[4] = 6;
	arp[5] = 4;
	put16(arp + 6, reply ? 2 : 1);
	memcpy(arp + 8, local->mac, 6);
	put32(arp + 14, local->ip);
	memcpy(arp + 18, reply ? target_mac : zero, 6);
	put32(arp + 24, target_ip);
	return STACK_ARP_PACKET;
}

size_t stack_icmp_echo_reply(uint8_t *packet, const struct stack_packet *classified, const struct stack_local *local)
{
	uint8_t *ip = packet + STACK_ETH_HEADER;
	size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
	stack_write_ethernet(packet, classified->sender_mac, local->mac, STACK_ETHERTYPE_IPV4);
	put32(ip + 16, classified->sender_ip);
	put32(ip + 12, local->ip);
	ip[8] = 64;
	put16(ip + 10, 0);
	put16(ip + 10, stack_checksum(ip, ihl));
	uint8_t *icmp = packet + classified->payload_offset;
	icmp[0] = 0; /* echo reply */
	put16(icmp + 2, 0);
	put16(icmp + 2, stack_checksum(icmp, classified->payload_length));
	return classified->payload_offset + classified->payload_length;
}

bool stack_parse_ipv4(const char *text, uint32_t *ip)
{
	unsigned a, b, c, d;
	char tail;
	if (sscanf(text, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 || c > 255 || d > 255)
		return false;
	*ip = (a << 24) | (b << 16) | (c << 8) | d;
	return true;
}

void stack_format_ipv4(uint32_t ip, char *out, size_t size)
{
	snprintf(out, size, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

bool stack_parse_mac(const char *text, uint8_t mac[6])
{
	unsigned v[6];
	char tail;
	if (sscanf(text, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
		return false;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 255)
			return false;
		mac[i] = (uint8_t)v[i];
	}
	return true;
}

/* ---- neighbour table ---- */

void stack_neighbours_init(struct stack_neighbours *table)
{
	memset(table, 0, sizeof *table);
}

static struct stack_neighbour *find(struct stack_neighbours *table, uint32_t ip)
{
	for (unsigned i = 0; i < STACK_NEIGHBOURS; i++)
		if (table->entries[i].state != STACK_NEIGHBOUR_FREE && table->entries[i].ip == ip)
			return &table->entries[i];
	return NULL;
}

const struct stack_neighbour *stack_neighbour_find(const struct stack_neighbours *table, uint32_t ip)
{
	return find((struct stack_neighbours *)table, ip);
}

/* A free entry, else the least recently used one without pending frames (never a static one). */
static struct stack_neighbour *allocate(struct stack_neighbours *table)
{
	struct stack_neighbour *victim = NULL;
	for (unsigned i = 0; i < STACK_NEIGHBOURS; i++) {
		struct stack_neighbour *e = &table->entries[i];
		if (e->state == STACK_NEIGHBOUR_FREE)
			return e;
		if (e->state == STACK_NEIGHBOUR_STATIC || e->pending_count > 0)
			continue;
		if (!victim || e->last_used_ns < victim->last_used_ns)
			victim = e;
	}
	if (victim)
		memset(victim, 0, sizeof *victim);
	return victim;
}

bool stack_neighbour_static(struct stack_neighbours *table, uint32_t ip, const uint8_t mac[6])
{
	struct stack_neighbour *e = find(table, ip);
	if (!e)
		e = allocate(table);
	if (!e)
		return false;
	e->state = STACK_NEIGHBOUR_STATIC;
	e->ip = ip;
	memcpy(e->mac, mac, 6);
	return true;
}

enum stack_route stack_neighbour_output(struct stack_neighbours *table, uint32_t ip, void *frame, uint64_t now_ns,
	uint8_t mac[6], bool *ask)
{
	*ask = false;
	struct stack_neighbour *e = find(table, ip);
	if (!e) {
		e = allocate(table);
		if (!e)
			return STACK_ROUTE_DROP;
		e->state = STACK_NEIGHBOUR_INCOMPLETE;
		e->ip = ip;
	}
	e->last_used_ns = now_ns;
	switch (e->state) {
	case STACK_NEIGHBOUR_STATIC:
	case STACK_NEIGHBOUR_REACHABLE:
		memcpy(mac, e->mac, 6);
		return STACK_ROUTE_SEND;
	case STACK_NEIGHBOUR_STALE:
		memcpy(mac, e->mac, 6);
		if (now_ns >= e->next_request_ns) {
			e->requests++;
			e->next_request_ns = now_ns + STACK_ARP_RETRY_NS;
			return STACK_ROUTE_SEND_ASK;
		}
		return STACK_ROUTE_SEND;
	case STACK_NEIGHBOUR_INCOMPLETE:
		if (e->pending_count == STACK_ARP_PENDING)
			return STACK_ROUTE_DROP;
		e->pending[e->pending_count++] = frame;
		if (e->requests == 0) {
			e->requests = 1;
			e->next_request_ns = now_ns + STACK_ARP_RETRY_NS;
			*ask = true;
		}
		return STACK_ROUTE_QUEUED;
	default:
		return STACK_ROUTE_DROP; /* FAILED */
	}
}

unsigned stack_neighbour_learn(struct stack_neighbours *table, uint32_t ip, const uint8_t mac[6], uint64_t now_ns,
	void **out, unsigned out_capacity)
{
	struct stack_neighbour *e = find(table, ip);
	if (!e) {
		e = allocate(table);
		if (!e)
			return 0;
		e->ip = ip;
		e->last_used_ns = now_ns;
	}
	if (e->state == STACK_NEIGHBOUR_STATIC)
		return 0; /* configured: an ARP packet does not override it */
	e->state = STACK_NEIGHBOUR_REACHABLE;
	memcpy(e->mac, mac, 6);
	e->expires_ns = now_ns + STACK_ARP_REACHABLE_NS;
	e->requests = 0;
	unsigned n = e->pending_count < out_capacity ? e->pending_count : out_capacity;
	memcpy(out, e->pending, n * sizeof *out);
	memmove(e->pending, e->pending + n, (e->pending_count - n) * sizeof *out);
	e->pending_count -= n;
	return n;
}

unsigned stack_neighbours_tick(struct stack_neighbours *table, uint64_t now_ns, uint32_t *ask, unsigned ask_capacity,
	unsigned *ask_count, void **dropped, unsigned dropped_capacity)
{
	unsigned dropped_count = 0;
	*ask_count = 0;
	for (unsigned i = 0; i < STACK_NEIGHBOURS; i++) {
		struct stack_neighbour *e = &table->entries[i];
		switch (e->state) {
		case STACK_NEIGHBOUR_REACHABLE:
			if (now_ns >= e->expires_ns) {
				e->state = STACK_NEIGHBOUR_STALE;
				e->requests = 0;
				e->next_request_ns = now_ns;
			}
			break;
		case STACK_NEIGHBOUR_STALE:
			if (e->requests >= STACK_ARP_TRIES && now_ns >= e->next_request_ns)
				memset(e, 0, sizeof *e); /* gone: the next frame starts a fresh resolution */
			break;
		case STACK_NEIGHBOUR_INCOMPLETE:
			if (now_ns < e->next_request_ns)
				break;
			if (e->requests < STACK_ARP_TRIES) {
				if (*ask_count < ask_capacity) {
					ask[(*ask_count)++] = e->ip;
					e->requests++;
					e->next_request_ns = now_ns + STACK_ARP_RETRY_NS;
				}
				break;
			}
			while (e->pending_count > 0 && dropped_count < dropped_capacity)
				dropped[dropped_count++] = e->pending[--e->pending_count];
			if (e->pending_count == 0) {
				e->state = STACK_NEIGHBOUR_FAILED;
				e->expires_ns = now_ns + STACK_ARP_FAILED_NS;
			}
			break;
		case STACK_NEIGHBOUR_FAILED:
			if (now_ns >= e->expires_ns)
				memset(e, 0, sizeof *e);
			break;
		default:
			break;
		}
	}
	return dropped_count;
}
