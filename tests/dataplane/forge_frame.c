/* tests/dataplane/forge_frame.c: forge-peer-frame, an outsider's tool for tests/net/06-forged-peer-frames:
 * sends a Raft message in a member's name straight to a member's peer port, as well-formed peer frames
 * (magic, version, geometry and CRC32C all valid) whose mac field holds zeros (no MAC), random bytes
 * (a guessed MAC), or, with --key-file, the MAC under that key (an insider, or a member with another key).
 *
 *   forge-peer-frame --host 10.77.0.1 --port 2380 --cluster HEX --from HEX --to HEX [--mac zero|random]
 *                    [--key-file PATH] [--repeat N] [--max-datagram N] MESSAGE...
 *   MESSAGE: vote TERM LOG_TERM INDEX        MsgVote with context "CampaignTransfer" (a forced vote: no
 *                                             lease protects against it)
 *            app TERM LOG_TERM INDEX COMMIT KEY VALUE
 *                                             MsgApp with one entry at INDEX+1 that puts KEY=VALUE
 *            (VALUE "@N": N bytes of 'x', so the message needs several frames)
 *
 * The payload is what control/node/node.h's peers send: the byte PEER_RAFT (1), then a packed raftpb.Message
 * (consensus/raft.proto), encoded here by hand so the tool depends on nothing but the frame code. The
 * entry's data is a packed etcdserverpb.InternalRaftRequest {ID, put {key, value}}. Prints the number of
 * datagrams sent. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "frame_mac.h"

#define PEER_RAFT 1
#define MSG_APP 3
#define MSG_VOTE 5

struct buffer {
	uint8_t *data;
	size_t length;
	size_t capacity;
};

static void put_bytes(struct buffer *b, const void *bytes, size_t length)
{
	if (b->length + length > b->capacity) {
		b->capacity = (b->length + length) * 2 + 64;
		b->data = realloc(b->data, b->capacity);
		if (!b->data) {
			perror("forge-peer-frame: realloc");
			exit(1);
		}
	}
	memcpy(b->data + b->length, bytes, length);
	b->length += length;
}

static void put_varint(struct buffer *b, uint64_t v)
{
	uint8_t out[10];
	size_t n = 0;
	do {
		out[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	put_bytes(b, out, n);
}

/* Protobuf: field number, wire type 0 (varint) or 2 (length-delimited). */
static void put_uint(struct buffer *b, unsigned field, uint64_t v)
{
	put_varint(b, (uint64_t)field << 3);
	put_varint(b, v);
}

static void put_field_bytes(struct buffer *b, unsigned field, const void *bytes, size_t length)
{
	put_varint(b, (uint64_t)field << 3 | 2);
	put_varint(b, length);
	put_bytes(b, bytes, length);
}

static uint64_t number(const char *text, int base)
{
	char *end;
	errno = 0;
	uint64_t v = strtoull(text, &end, base);
	if (errno || *end || end == text) {
		fprintf(stderr, "forge-peer-frame: not a number: %s\n", text);
		exit(2);
	}
	return v;
}

static void usage(void)
{
	fprintf(stderr, "usage: forge-peer-frame --host IP --port N --cluster HEX --from HEX --to HEX [--mac zero|random] "
		"[--key-file PATH] [--repeat N] [--max-datagram N] (vote TERM LOG_TERM INDEX | app TERM LOG_TERM INDEX "
		"COMMIT KEY VALUE)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *host = NULL, *key_file = NULL, *mac_mode = "zero";
	uint16_t port = 0;
	uint64_t cluster = 0, from = 0, to = 0, repeat = 1;
	size_t max_datagram = FRAME_DEFAULT_DATAGRAM;
	static const struct option options[] = {
		{"host", required_argument, NULL, 'h'}, {"port", required_argument, NULL, 'p'},
		{"cluster", required_argument, NULL, 'c'}, {"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'}, {"mac", required_argument, NULL, 'm'},
		{"key-file", required_argument, NULL, 'k'}, {"repeat", required_argument, NULL, 'r'},
		{"max-datagram", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0},
	};
	int option;
	while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (option) {
		case 'h': host = optarg; break;
		case 'p': port = (uint16_t)number(optarg, 10); break;
		case 'c': cluster = number(optarg, 16); break;
		case 'f': from = number(optarg, 16); break;
		case 't': to = number(optarg, 16); break;
		case 'm': mac_mode = optarg; break;
		case 'k': key_file = optarg; break;
		case 'r': repeat = number(optarg, 10); break;
		case 'd': max_datagram = (size_t)number(optarg, 10); break;
		default: usage();
		}
	}
	if (!host || !port || optind >= argc)
		usage();
	if (strcmp(mac_mode, "zero") != 0 && strcmp(mac_mode, "random") != 0)
		usage();
	const char *kind = argv[optind];
	int rest = argc - optind - 1;
	char **arg = argv + optind + 1;

	struct buffer message = {0};
	uint8_t envelope = PEER_RAFT;
	put_bytes(&message, &envelope, 1);
	if (strcmp(kind, "vote") == 0 && rest == 3) {
		static const char transfer[] = "CampaignTransfer";
		put_uint(&message, 1, MSG_VOTE);
		put_uint(&message, 2, to);
		put_uint(&message, 3, from);
		put_uint(&message, 4, number(arg[0], 10));
		put_uint(&message, 5, number(arg[1], 10));
		put_uint(&message, 6, number(arg[2], 10));
		put_field_bytes(&message, 12, transfer, sizeof transfer - 1);
	} else if (strcmp(kind, "app") == 0 && rest == 6) {
		uint64_t term = number(arg[0], 10), index = number(arg[2], 10);
		const char *key = arg[4], *value = arg[5];
		struct buffer long_value = {0};
		if (value[0] == '@') {
			size_t n = (size_t)number(value + 1, 10);
			for (size_t i = 0; i < n; i++)
				put_bytes(&long_value, "x", 1);
		} else {
			put_bytes(&long_value, value, strlen(value));
		}
		struct buffer put = {0}, request = {0}, entry = {0};
		put_field_bytes(&put, 1, key, strlen(key));
		put_field_bytes(&put, 2, long_value.data, long_value.length);
		put_uint(&request, 1, 0x5eed0000u + (uint64_t)getpid());
		put_field_bytes(&request, 4, put.data, put.length);
		put_uint(&entry, 2, term);        /* type 0 (normal) is the default: left out */
		put_uint(&entry, 3, index + 1);
		put_field_bytes(&entry, 4, request.data, request.length);
		put_uint(&message, 1, MSG_APP);
		put_uint(&message, 2, to);
		put_uint(&message, 3, from);
		put_uint(&message, 4, term);
		put_uint(&message, 5, number(arg[1], 10));
		put_uint(&message, 6, index);
		put_field_bytes(&message, 7, entry.data, entry.length);
		put_uint(&message, 8, number(arg[3], 10));
		free(long_value.data);
		free(put.data);
		free(request.data);
		free(entry.data);
	} else {
		usage();
	}

	struct frame_mac *mac = NULL;
	if (key_file) {
		uint8_t key[FRAME_MAC_KEY_SIZE];
		char err[512];
		if (frame_mac_load_key_file(key_file, key, err, sizeof err) != 0 || frame_mac_create(key, &mac) != 0) {
			fprintf(stderr, "forge-peer-frame: %s\n", err);
			return 1;
		}
	}
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
		fprintf(stderr, "forge-peer-frame: not an IPv4 address: %s\n", host);
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("forge-peer-frame: socket");
		return 1;
	}
	size_t count = frame_count(message.length, max_datagram);
	if (count == 0) {
		fprintf(stderr, "forge-peer-frame: message of %zu bytes does not fit\n", message.length);
		return 1;
	}
	uint8_t *frame = malloc(max_datagram);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	/* Message ids far from the members' own (CLOCK_REALTIME ns at their start), and new each time, so
	 * the receiver's duplicate detection plays no part. */
	uint64_t message_id = ((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec) ^ 0xf0f0000000000000ull;
	srandom((unsigned)now.tv_nsec);
	size_t sent = 0;
	for (uint64_t r = 0; r < repeat; r++) {
		struct frame_address frame_address = {.cluster_id = cluster, .from = from, .to = to, .message_id = message_id++};
		for (size_t i = 0; i < count; i++) {
			size_t size = frame_encode(&frame_address, message.data, message.length, (uint16_t)count, (uint16_t)i,
				frame, max_datagram);
			if (mac) {
				frame_mac_seal(mac, frame, size);
			} else if (strcmp(mac_mode, "random") == 0) {
				for (size_t b = 0; b < FRAME_MAC_SIZE; b++)
					frame[FRAME_MAC_OFFSET + b] = (uint8_t)random();
				frame_write_crc(frame, frame_compute_crc(frame, size));
			}
			if (sendto(fd, frame, size, 0, (const struct sockaddr *)&address, sizeof address) != (ssize_t)size) {
				perror("forge-peer-frame: sendto");
				return 1;
			}
			sent++;
		}
		/* Spread the copies a little: a burst could overflow nothing here, but the members' Raft ticks
		 * should see the forgeries at different moments. */
		struct timespec pause = {0, 20 * 1000000L};
		nanosleep(&pause, NULL);
	}
	printf("%zu\n", sent);
	frame_mac_destroy(mac);
	free(frame);
	free(message.data);
	close(fd);
	return 0;
}
