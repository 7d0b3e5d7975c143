/* tests/dataplane/test_dpdk_stack.c: the dpdk transport's own stack (dataplane/dpdk/stack.h) without EAL
 * or a port: classification of received Ethernet frames, the headers it writes (checked against known
 * packets and checksums), ICMP echo replies, and the neighbour table's states and timers. */
#include "stack.h"

#include "helpers.h"

static const struct stack_local local = {
	.mac = {0x02, 0, 0, 0, 0, 0x01}, .ip = 0x0a4d0001, .port = 2380, /* 10.77.0.1:2380 */
};
static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
static const uint32_t peer_ip = 0x0a4d0002;

static size_t build_udp(uint8_t *p, const uint8_t *to_mac, uint32_t to_ip, uint16_t to_port, size_t payload)
{
	stack_write_ethernet(p, to_mac, peer_mac, STACK_ETHERTYPE_IPV4);
	stack_write_ipv4_udp(p + STACK_ETH_HEADER, peer_ip, 2380, to_ip, to_port, payload, 7, false);
	memset(p + STACK_UDP_OVERHEAD, 0xab, payload);
	return STACK_UDP_OVERHEAD + payload;
}

static void test_udp(void)
{
	uint8_t p[1600];
	struct stack_packet c;
	size_t n = build_udp(p, local.mac, local.ip, local.port, 100);
	/* The IPv4 header checksum of a header written without offload verifies to 0. */
	CHECK_EQ(stack_checksum(p + STACK_ETH_HEADER, STACK_IPV4_HEADER), 0);
	CHECK_EQ(p[STACK_ETH_HEADER + 6], 0x40); /* DF */
	stack_classify(p, n, &local, false, &c);
	CHECK_EQ(c.kind, STACK_FRAME);
	CHECK_EQ(c.payload_offset, STACK_UDP_OVERHEAD);
	CHECK_EQ(c.payload_length, 100);
	CHECK_EQ(c.sender_ip, peer_ip);
	CHECK_EQ(c.sender_port, 2380);
	CHECK_EQ(stack_ipv4_destination(p + STACK_ETH_HEADER), local.ip);
	/* Ethernet padding after a short datagram is not payload. */
	n = build_udp(p, local.mac, local.ip, local.port, 4);
	stack_classify(p, STACK_MIN_FRAME, &local, false, &c);
	CHECK_EQ(c.kind, STACK_FRAME);
	CHECK_EQ(c.payload_length, 4);
	/* Not for us: another MAC, IP or port. */
	static const uint8_t other[6] = {0x02, 9, 9, 9, 9, 9};
	n = build_udp(p, other, local.ip, local.port, 10);
	stack_classify(p, n, &local, false, &c);
	CHECK_EQ(c.kind, STACK_IGNORE);
	n = build_udp(p, local.mac, 0x0a4d0009, local.port, 10);
	stack_classify(p, n, &local, false, &c);
	CHECK_EQ(c.kind, STACK_IGNORE);
	n = build_udp(p, local.mac, local.ip, 9999, 10);
	stack_classify(p, n, &local, false, &c);
	CHECK_EQ(c.kind, STACK_IGNORE);
	/* A flipped bit in the IPv4 header: malformed, unless the port checked the checksum already. */
	n = build_udp(p, local.mac, local.ip, local.port, 10);
	p[STACK_ETH_HEADER + 8] ^= 1; /* TTL */
	stack_classify(p, n, &local, false, &c);
	CHECK_EQ(c.kind, STACK_MALFORMED);
	stack_classify(p, n, &local, true, &c);
	CHECK_EQ(c.kind, STACK_FRAME);
	/* A fragment, a truncated packet, a UDP length beyond the IP length. */
	n = build_udp(p, local.mac, local.ip, local.port, 10);
	p[STACK_ETH_HEADER + 6] = 0x20; /* MF */
	p[STACK_ETH_HEADER + 10] = p[STACK_ETH_HEADER + 11] = 0;
	uint16_t sum = stack_checksum(p + STACK_ETH_HEADER, STACK_IPV4_HEADER);
	p[STACK_ETH_HEADER + 10] = (uint8_t)(sum >> 8);
	p[STACK_ETH_HEADER + 11] = (uint8_t)sum;
	stack_classify(p, n, &local, false, &c);
	CHECK_EQ(c.kind, STACK_MALFORMED);
	n = build_udp(p, local.mac, local.ip, local.port, 10);
	stack_classify(p, n - 5, &local, false, &c);
	CHECK_EQ(c.kind, STACK_MALFORMED);
	stack_classify(p, 10, &local, false, &c);
	CHECK_EQ(c.kind, STACK_MALFORMED);
}

static void test_arp_and_icmp(void)
{
	uint8_t p[128];
	struct stack_packet c;
	/* A peer asks for our address: a request for us; our reply is well-formed and reaches the peer. */
	struct stack_local peer = {.ip = peer_ip, .port = 2380};
	memcpy(peer.mac, peer_mac, 6);
	stack_write_arp(p, false, &peer, NULL, local.ip);
	memset(p + STACK_ARP_PACKET, 0, STACK_MIN_FRAME - STACK_ARP_PACKET);
	stack_classify(p, STACK_MIN_FRAME, &local, false, &c);
	CHECK_EQ(c.kind, STACK_ARP_REQUEST);
	CHECK_EQ(c.sender_ip, peer_ip);
	CHECK(memcmp(c.sender_mac, peer_mac, 6) == 0, "sender MAC");
	CHECK_EQ(stack_write_arp(p, true, &local, c.sender_mac, c.sender_ip), STACK_ARP_PACKET);
	stack_classify(p, STACK_ARP_PACKET, &peer, false, &c);
	CHECK_EQ(c.kind, STACK_ARP_REPLY);
	CHECK_EQ(c.sender_ip, local.ip);
	CHECK(memcmp(c.sender_mac, local.mac, 6) == 0, "reply's sender MAC");
	/* Our own broadcast request seen again, and a request for someone else, are ignored. */
	stack_write_arp(p, false, &local, NULL, peer_ip);
	stack_classify(p, STACK_ARP_PACKET, &local, false, &c);
	CHECK_EQ(c.kind, STACK_IGNORE);
	stack_write_arp(p, false, &peer, NULL, 0x0a4d0009);
	stack_classify(p, STACK_ARP_PACKET, &local, false, &c);
	CHECK_EQ(c.kind, STACK_IGNORE);

	/* ICMP echo request (ping's 64 bytes) -> reply with valid checksums, addresses swapped. */
	uint8_t q[128];
	stack_write_ethernet(q, local.mac, peer_mac, STACK_ETHERTYPE_IPV4);
	stack_write_ipv4_udp(q + STACK_ETH_HEADER, peer_ip, 0, local.ip, 0, 64 - 8, 1, false);
	q[STACK_ETH_HEADER + 9] = 1; /* ICMP */
	q[STACK_ETH_HEADER + 10] = q[STACK_ETH_HEADER + 11] = 0;
	uint16_t sum = stack_checksum(q + STACK_ETH_HEADER, STACK_IPV4_HEADER);
	q[STACK_ETH_HEADER + 10] = (uint8_t)(sum >> 8);
	q[STACK_ETH_HEADER + 11] = (uint8_t)sum;
	uint8_t *icmp = q + STACK_ETH_HEADER + STACK_IPV4_HEADER;
	memset(icmp, 0x5a, 64);
	icmp[0] = 8;
	icmp[1] = 0;
	icmp[2] = icmp[3] = 0;
	sum = stack_checksum(icmp, 64);
	icmp[2] = (uint8_t)(sum >> 8);
	icmp[3] = (uint8_t)sum;
	stack_classify(q, STACK_ETH_HEADER + STACK_IPV4_HEADER + 64, &local, false, &c);
	CHECK_EQ(c.kind, STACK_ICMP_ECHO);
	size_t n = stack_icmp_echo_reply(q, &c, &local);
	CHECK_EQ(n, STACK_ETH_HEADER + STACK_IPV4_HEADER + 64);
	CHECK_EQ(icmp[0], 0);
	CHECK_EQ(stack_checksum(icmp, 64), 0);
	CHECK_EQ(stack_checksum(q + STACK_ETH_HEADER, STACK_IPV4_HEADER), 0);
	CHECK(memcmp(q, peer_mac, 6) == 0 && memcmp(q + 6, local.mac, 6) == 0, "Ethernet addresses swapped");
	CHECK_EQ(stack_ipv4_destination(q + STACK_ETH_HEADER), peer_ip);
}

static void test_neighbours(void)
{
	static struct stack_neighbours table;
	stack_neighbours_init(&table);
	uint8_t mac[6];
	bool ask;
	int frames[8];
	uint64_t t = 1000;
	/* Unknown: the first frame waits and asks, the second waits without asking again. */
	CHECK_EQ(stack_neighbour_output(&table, peer_ip, &frames[0], t, mac, &ask), STACK_ROUTE_QUEUED);
	CHECK(ask, "first frame asks");
	CHECK_EQ(stack_neighbour_output(&table, peer_ip, &frames[1], t, mac, &ask), STACK_ROUTE_QUEUED);
	CHECK(!ask, "second frame does not ask again");
	/* The reply releases both, in order. */
	void *out[8];
	CHECK_EQ(stack_neighbour_learn(&table, peer_ip, peer_mac, t + 1, out, 8), 2);
	CHECK(out[0] == &frames[0] && out[1] == &frames[1], "released in order");
	CHECK_EQ(stack_neighbour_output(&table, peer_ip, &frames[2], t + 2, mac, &ask), STACK_ROUTE_SEND);
	CHECK(memcmp(mac, peer_mac, 6) == 0, "resolved MAC");
	/* After the reachable time: stale, still used, refreshed by a request. */
	uint32_t asks[4];
	unsigned ask_count;
	void *dropped[8];
	t += STACK_ARP_REACHABLE_NS + 10;
	CHECK_EQ(stack_neighbours_tick(&table, t, asks, 4, &ask_count, dropped, 8), 0);
	CHECK_EQ(stack_neighbour_find(&table, peer_ip)->state, STACK_NEIGHBOUR_STALE);
	CHECK_EQ(stack_neighbour_output(&table, peer_ip, &frames[3], t, mac, &ask), STACK_ROUTE_SEND_ASK);
	CHECK_EQ(stack_neighbour_output(&table, peer_ip, &frames[3], t + 1, mac, &ask), STACK_ROUTE_SEND);
	/* An unanswered address: retried STACK_ARP_TRIES times, then its frames are dropped, then it fails
	 * fast for a while, then it is forgotten. */
	uint32_t silent = 0x0a4d0063;
	CHECK_EQ(stack_neighbour_output(&table, silent, &frames[4], t, mac, &ask), STACK_ROUTE_QUEUED);
	unsigned total_asks = 1;
	unsigned drops = 0;
	for (int k = 0; k < 20; k++) {
		t += STACK_ARP_RETRY_NS;
		drops += stack_neighbours_tick(&table, t, asks, 4, &ask_count, dropped, 8);
		for (unsigned i = 0; i < ask_count; i++)
			total_asks += asks[i] == silent;
	}
	CHECK_EQ(total_asks, STACK_ARP_TRIES);
	CHECK_EQ(drops, 1);
	CHECK(dropped[0] == &frames[4], "the waiting frame is dropped");
	/* 20 retries = 4 s: past the failed time, so forgotten; a new frame starts over. */
	CHECK(stack_neighbour_find(&table, silent) == NULL, "failed entry forgotten");
	CHECK_EQ(stack_neighbour_output(&table, silent, &frames[5], t, mac, &ask), STACK_ROUTE_QUEUED);
	CHECK(ask, "a fresh resolution asks");
	/* Static entries answer at once, never expire, and ARP does not override them. */
	uint8_t static_mac[6] = {0x02, 0xaa, 0, 0, 0, 0x07};
	uint32_t fixed = 0x0a4d0007;
	CHECK(stack_neighbour_static(&table, fixed, static_mac), "static entry");
	stack_neighbour_learn(&table, fixed, peer_mac, t, out, 8);
	t += 10 * STACK_ARP_REACHABLE_NS;
	stack_neighbours_tick(&table, t, asks, 4, &ask_count, dropped, 8);
	CHECK_EQ(stack_neighbour_output(&table, fixed, &frames[6], t, mac, &ask), STACK_ROUTE_SEND);
	CHECK(memcmp(mac, static_mac, 6) == 0, "static MAC kept");
	/* Parsers. */
	uint32_t ip;
	CHECK(stack_parse_ipv4("10.77.0.1", &ip) && ip == local.ip, "parse IPv4");
	CHECK(!stack_parse_ipv4("10.77.0.256", &ip) && !stack_parse_ipv4("::1", &ip) && !stack_parse_ipv4("10.0.0.1x", &ip),
		"bad IPv4 refused");
	CHECK(stack_parse_mac("02:00:00:00:00:01", mac) && memcmp(mac, local.mac, 6) == 0, "parse MAC");
	CHECK(!stack_parse_mac("02:00:00:00:00", mac), "short MAC refused");
	char text[16];
	stack_format_ipv4(local.ip, text, sizeof text);
	CHECK(strcmp(text, "10.77.0.1") == 0, "format IPv4: %s", text);
}

int main(void)
{
	test_name = "dpdk_stack";
	test_udp();
	test_arp_and_icmp();
	test_neighbours();
	printf("dpdk stack: ok\n");
	return 0;
}
