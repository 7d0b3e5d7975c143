/* tests/dataplane/test_frame.c: frame encode/parse round trips (up to the maximum datagram and fragment
 * count; frame_encode_header's header the same as frame_encode's), the byte layout documented in frame.h, and every parse error reason. */
#include "frame.h"
#include "helpers.h"

#include "crc32c.h"

static const struct frame_address address = {
	.cluster_id = 0x1122334455667788ull, .from = 0xa1, .to = 0xb2, .message_id = 0x0102030405060708ull,
};

/* Encodes message into frames of at most max_datagram bytes, parses each, rebuilds the message from
 * the payloads and compares. Returns the frame count. */
static size_t round_trip(size_t length, size_t max_datagram)
{
	uint8_t *message = malloc(length ? length : 1);
	uint8_t *rebuilt = calloc(1, length ? length : 1);
	uint8_t *frame = malloc(max_datagram);
	test_fill(message, length, length * 31 + max_datagram);
	size_t count = frame_count(length, max_datagram);
	CHECK(count > 0, "length %zu max %zu", length, max_datagram);
	size_t covered = 0;
	for (size_t i = 0; i < count; i++) {
		size_t size = frame_encode(&address, message, length, (uint16_t)count, (uint16_t)i, frame,
			max_datagram);
		CHECK(size >= FRAME_HEADER_SIZE && size <= max_datagram, "size %zu", size);
		struct frame_header h;
		const uint8_t *payload;
		enum frame_error e = frame_parse(frame, size, length, &h, &payload);
		CHECK(e == FRAME_OK, "length %zu fragment %zu: %s", length, i, frame_error_message(e));
		CHECK_EQ(h.cluster_id, address.cluster_id);
		CHECK_EQ(h.from, address.from);
		CHECK_EQ(h.to, address.to);
		CHECK_EQ(h.message_id, address.message_id);
		CHECK_EQ(h.fragment_index, i);
		CHECK_EQ(h.fragment_count, count);
		CHECK_EQ(h.message_length, length);
		CHECK_EQ(h.fragment_length, size - FRAME_HEADER_SIZE);
		for (size_t k = 0; k < FRAME_MAC_SIZE; k++)
			CHECK_EQ(h.mac[k], 0);
		size_t offset, span;
		CHECK(frame_fragment_span((uint32_t)length, (uint16_t)count, (uint16_t)i, &offset, &span) == FRAME_OK);
		CHECK_EQ(offset, covered);
		CHECK_EQ(span, h.fragment_length);
		/* The header alone (the zero-copy send's) is byte for byte the frame's header, CRC included. */
		uint8_t header[FRAME_HEADER_SIZE];
		size_t header_offset = 0, header_span = 0;
		CHECK_EQ(frame_encode_header(&address, message, length, (uint16_t)count, (uint16_t)i, header,
			&header_offset, &header_span), 0);
		CHECK_EQ(header_offset, offset);
		CHECK_EQ(header_span, span);
		CHECK(memcmp(header, frame, FRAME_HEADER_SIZE) == 0, "length %zu fragment %zu: header differs", length, i);
		memcpy(rebuilt + offset, payload, span);
		covered += span;
	}
	CHECK_EQ(covered, length);
	CHECK(memcmp(message, rebuilt, length) == 0, "length %zu max %zu: rebuilt differs", length, max_datagram);
	free(message);
	free(rebuilt);
	free(frame);
	return count;
}

static void test_round_trips(void)
{
	size_t chunk = FRAME_DEFAULT_DATAGRAM - FRAME_HEADER_SIZE;
	size_t lengths[] = {0, 1, 2, chunk - 1, chunk, chunk + 1, 2 * chunk, 2 * chunk + 1, 10000, 65536};
	for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
		size_t count = round_trip(lengths[i], FRAME_DEFAULT_DATAGRAM);
		CHECK_EQ(count, lengths[i] == 0 ? 1 : (lengths[i] + chunk - 1) / chunk);
	}
	/* 1 MiB at the Ethernet default: 790 frames. */
	CHECK_EQ(round_trip(1u << 20, FRAME_DEFAULT_DATAGRAM), 790);
	/* The largest datagram (loopback), one full frame and one byte more. */
	size_t big = FRAME_MAX_DATAGRAM - FRAME_HEADER_SIZE;
	CHECK_EQ(round_trip(big, FRAME_MAX_DATAGRAM), 1);
	CHECK_EQ(round_trip(big + 1, FRAME_MAX_DATAGRAM), 2);
	/* The largest fragment count: one payload byte per frame. */
	CHECK_EQ(round_trip(FRAME_MAX_FRAGMENTS, FRAME_HEADER_SIZE + 1), FRAME_MAX_FRAGMENTS);
	CHECK_EQ(frame_count(FRAME_MAX_FRAGMENTS + 1, FRAME_HEADER_SIZE + 1), 0);
	/* Impossible datagram sizes. */
	CHECK_EQ(frame_count(10, FRAME_HEADER_SIZE), 0);
	CHECK_EQ(frame_count(10, FRAME_MAX_DATAGRAM + 1), 0);
	/* Every length up to a few frames with a small datagram (the even split's edge cases). */
	for (size_t length = 0; length < 300; length++)
		round_trip(length, FRAME_HEADER_SIZE + 7);
	/* A buffer too small for the frame is refused. */
	uint8_t message[100], out[FRAME_HEADER_SIZE + 99];
	memset(message, 7, sizeof message);
	CHECK_EQ(frame_encode(&address, message, sizeof message, 1, 0, out, sizeof out), 0);
	CHECK_EQ(frame_encode(&address, message, sizeof message, 1, 1, out, sizeof out), 0);
	size_t offset, span;
	CHECK_EQ(frame_encode_header(&address, message, sizeof message, 1, 1, out, &offset, &span), -1);
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The offsets frame.h and README.md document. */
static void test_layout(void)
{
	uint8_t message[10] = {'0', '1', '2', '3', '4', '5', '6', '7', '8', '9'};
	uint8_t frame[200];
	size_t size = frame_encode(&address, message, sizeof message, 2, 1, frame, sizeof frame);
	CHECK_EQ(size, FRAME_HEADER_SIZE + 5);
	CHECK(memcmp(frame, "QRDF", 4) == 0, "magic bytes");
	CHECK_EQ(frame[4], 1);
	CHECK_EQ(frame[5], 0);
	CHECK_EQ(le(frame + 6, 2), 1);
	CHECK_EQ(le(frame + 8, 2), 2);
	CHECK_EQ(le(frame + 10, 2), 5);
	CHECK_EQ(le(frame + 12, 4), 10);
	CHECK_EQ(le(frame + 16, 8), address.cluster_id);
	CHECK_EQ(frame[16], 0x88); /* little-endian */
	CHECK_EQ(le(frame + 24, 8), address.from);
	CHECK_EQ(le(frame + 32, 8), address.to);
	CHECK_EQ(le(frame + 40, 8), address.message_id);
	CHECK_EQ(le(frame + 52, 4), 0);
	for (int i = 56; i < 72; i++)
		CHECK_EQ(frame[i], 0);
	CHECK(memcmp(frame + 72, "56789", 5) == 0, "payload is the second half");
	/* CRC over the header with the crc zeroed, then the payload. */
	uint8_t copy[200];
	memcpy(copy, frame, size);
	memset(copy + 48, 0, 4);
	CHECK_EQ(le(frame + 48, 4), crc32c(0, copy, size));
}

/* A valid 3-fragment frame to damage: fragment 1 of a 30-byte message (10 bytes each). */
static size_t good_frame(uint8_t *out, struct frame_header *h)
{
	uint8_t message[30];
	test_fill(message, sizeof message, 5);
	size_t size = frame_encode(&address, message, sizeof message, 3, 1, out, 256);
	CHECK_EQ(size, FRAME_HEADER_SIZE + 10);
	frame_read_header(out, h);
	return size;
}

/* Rewrites the header from h with a correct CRC (so only the intended field is wrong). */
static void rewrite(uint8_t *frame, size_t size, struct frame_header *h)
{
	frame_write_header(h, frame);
	h->crc = frame_compute_crc(frame, size);
	frame_write_header(h, frame);
}

static enum frame_error parse(const uint8_t *frame, size_t size)
{
	struct frame_header h;
	const uint8_t *payload;
	return frame_parse(frame, size, 1000, &h, &payload);
}

#define EXPECT(error, frame, size)                                                                  \
	do {                                                                                        \
		enum frame_error got_ = parse(frame, size);                                          \
		CHECK(got_ == (error), "want %s, got %s", frame_error_name(error), frame_error_name(got_)); \
		seen[error] = 1;                                                                     \
	} while (0)

static void test_parse_errors(void)
{
	int seen[FRAME_ERROR_COUNT] = {0};
	uint8_t f[256];
	struct frame_header h;
	size_t size = good_frame(f, &h);
	EXPECT(FRAME_OK, f, size);

	EXPECT(FRAME_ERR_SHORT, f, FRAME_HEADER_SIZE - 1);
	EXPECT(FRAME_ERR_SHORT, f, 0);

	good_frame(f, &h);
	f[0] ^= 1;
	EXPECT(FRAME_ERR_MAGIC, f, size);

	good_frame(f, &h);
	h.version = 2;
	rewrite(f, size, &h);
	EXPECT(FRAME_ERR_VERSION, f, size);

	good_frame(f, &h);
	EXPECT(FRAME_ERR_LENGTH, f, size - 1);   /* datagram shorter than fragment_length says */
	EXPECT(FRAME_ERR_LENGTH, f, size + 1);   /* longer */
	h.fragment_length = 11;
	rewrite(f, size, &h);
	EXPECT(FRAME_ERR_LENGTH, f, size);

	/* A flipped bit anywhere but the magic, version and length fields is a CRC error; but the bit that
	 * makes flags FRAME_FLAG_SEALED turns the frame into a sealed one, which has no CRC (its AEAD tag
	 * fails instead, in the transport: test_seal.c). */
	for (size_t byte = 0; byte < size; byte++) {
		if (byte < 5 || byte == 10 || byte == 11)
			continue;
		for (int bit = 0; bit < 8; bit++) {
			good_frame(f, &h);
			f[byte] ^= (uint8_t)(1u << bit);
			if (byte == 5 && (1u << bit) == FRAME_FLAG_SEALED) {
				struct frame_header sealed;
				const uint8_t *payload;
				CHECK(frame_parse(f, size, 1u << 20, &sealed, &payload) == FRAME_OK &&
					sealed.flags == FRAME_FLAG_SEALED);
				continue;
			}
			EXPECT(FRAME_ERR_CRC, f, size);
		}
	}

	good_frame(f, &h);
	h.flags = 0x80;
	rewrite(f, size, &h);
	EXPECT(FRAME_ERR_FLAGS, f, size);

	good_frame(f, &h);
	f[53] = 1;
	h.crc = frame_compute_crc(f, size);
	f[48] = (uint8_t)h.crc;
	f[49] = (uint8_t)(h.crc >> 8);
	f[50] = (uint8_t)(h.crc >> 16);
	f[51] = (uint8_t)(h.crc >> 24);
	EXPECT(FRAME_ERR_RESERVED, f, size);

	good_frame(f, &h);
	h.fragment_count = 0;
	rewrite(f, size, &h);
	EXPECT(FRAME_ERR_COUNT_ZERO, f, size);

	good_frame(f, &h);
	h.fragment_index = 3;
	rewrite(f, size, &h);
	EXPECT(FRAME_ERR_INDEX, f, size);
	h.fragment_index = 65535;
	rewrite(f, size, &h);
	EXPECT(FRAME_ERR_INDEX, f, size);

	good_frame(f, &h);
	h.message_length = 1001; /* parse() allows 1000 */
	rewrite(f, size, &h);
	EXPECT(FRAME_ERR_TOO_BIG, f, size);

	/* 4 bytes in 3 fragments: chunk 2, the last fragment would be empty. */
	good_frame(f, &h);
	h.message_length = 4;
	h.fragment_index = 0;
	h.fragment_length = 2;
	rewrite(f, FRAME_HEADER_SIZE + 2, &h);
	EXPECT(FRAME_ERR_GEOMETRY, f, FRAME_HEADER_SIZE + 2);
	/* Fragment 1 of 30 bytes in 3 must carry 10 bytes, not 9. */
	good_frame(f, &h);
	h.fragment_length = 9;
	rewrite(f, size - 1, &h);
	EXPECT(FRAME_ERR_GEOMETRY, f, size - 1);
	/* A single-fragment message must be whole. */
	good_frame(f, &h);
	h.fragment_count = 1;
	h.fragment_index = 0;
	rewrite(f, size, &h);
	EXPECT(FRAME_ERR_GEOMETRY, f, size);
	/* An empty message comes in exactly one fragment. */
	good_frame(f, &h);
	h.message_length = 0;
	h.fragment_count = 2;
	h.fragment_index = 0;
	h.fragment_length = 0;
	rewrite(f, FRAME_HEADER_SIZE, &h);
	EXPECT(FRAME_ERR_GEOMETRY, f, FRAME_HEADER_SIZE);

	for (int e = 0; e < FRAME_ERROR_COUNT; e++) {
		CHECK(seen[e], "no test produced %s", frame_error_name((enum frame_error)e));
		CHECK(strlen(frame_error_message((enum frame_error)e)) > 0);
		for (int k = 0; k < e; k++)
			CHECK(strcmp(frame_error_message((enum frame_error)e), frame_error_message((enum frame_error)k)),
				"messages of %d and %d are the same", e, k);
	}
	CHECK(strcmp(frame_error_message(FRAME_ERROR_COUNT), "unknown frame error") == 0);
}

/* Random garbage and random damage never crash the parser and never pass as a different frame. */
static void test_garbage(void)
{
	uint64_t state = 42;
	uint8_t f[512];
	for (int round = 0; round < 20000; round++) {
		size_t size = test_random(&state) % sizeof f;
		for (size_t i = 0; i < size; i++)
			f[i] = (uint8_t)test_random(&state);
		if (round % 2 == 0 && size >= 4)
			memcpy(f, "QRDF\x01", size >= 5 ? 5 : 4);
		CHECK(parse(f, size) != FRAME_OK, "round %d: random bytes parsed as a frame", round);
	}
	struct frame_header h;
	for (int round = 0; round < 20000; round++) {
		size_t size = good_frame(f, &h);
		int flips = 2 + (int)(test_random(&state) % 3);
		for (int k = 0; k < flips; k++) {
			size_t byte = 12 + test_random(&state) % (size - 12);  /* past the length fields */
			f[byte] ^= (uint8_t)(1u << (test_random(&state) % 8));
		}
		enum frame_error e = parse(f, size);
		/* An even number of flips of one bit cancels out; any real change must be caught. */
		uint8_t clean[256];
		good_frame(clean, &h);
		if (memcmp(clean, f, size) != 0)
			CHECK(e != FRAME_OK, "round %d: damaged frame parsed", round);
	}
}

int main(void)
{
	test_name = "frame";
	RUN(test_round_trips);
	RUN(test_layout);
	RUN(test_parse_errors);
	RUN(test_garbage);
	fprintf(stderr, "ok\n");
	return 0;
}
