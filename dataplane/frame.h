/* dataplane/frame.h: the peer frame, the wire format every transport (udp, dpdk, memory) shares.
 *
 * A Raft message (opaque bytes: a packed protobuf) travels as one or more frames, one frame per
 * datagram. Pure functions: no I/O, no allocation, no clock.
 *
 * Byte order: every integer is little-endian, written and read byte by byte (never a struct cast of the
 * wire). Layout of the 72-byte header (version 1), payload right behind it:
 *
 *   offset size field
 *        0    4 magic            0x46445251: the bytes 'Q' 'R' 'D' 'F'
 *        4    1 version          1
 *        5    1 flags            0, or FRAME_FLAG_SEALED (peer TLS, frame_seal.h); no other flag
 *        6    2 fragment_index   0 .. fragment_count-1
 *        8    2 fragment_count   >= 1
 *       10    2 fragment_length  payload bytes in this frame
 *       12    4 message_length   bytes of the whole message
 *       16    8 cluster_id
 *       24    8 from             sending member id
 *       32    8 to               receiving member id
 *       40    8 message_id       per sender, increasing (the sender never reuses one)
 *       48    4 crc32c           CRC32C of the header with this field zeroed, then of the payload
 *       52    4 reserved         must be 0
 *       56   16 mac              keyed BLAKE2b of the frame (frame_mac.h) when the cluster has a key
 *                                  (--peer-frame-key-file); zeros without one, and then not checked
 *       72    - payload
 *
 * Fragmentation is an even split, so a receiver needs no offset field: with L = message_length and
 * n = fragment_count, every fragment carries chunk = ceil(L / n) bytes except the last, which carries the
 * rest; fragment i starts at i * chunk. A header is valid only if the last fragment is not empty
 * ((n-1) * chunk < L) or L == 0 and n == 1. The encoder picks n = ceil(L / (max_datagram - 72)), which
 * always satisfies that.
 *
 * The MAC covers the header (crc32c and mac fields taken as zeros) and the payload of this one frame, so
 * every fragment is authenticated on its own, before reassembly. The sender writes the MAC, then the
 * CRC32C (which covers the mac field). frame_parse checks the CRC, not the MAC: the transport does that
 * (transport.c) when it has a key.
 *
 * A sealed frame (flags FRAME_FLAG_SEALED, peer TLS: frame_seal.h) uses offsets 48..55 for its 64-bit
 * nonce counter and the mac field for its AES-256-GCM tag; its payload is ciphertext. It has no CRC: the
 * tag covers every byte, so frame_parse skips the CRC and reserved checks for it and the transport opens
 * it before anything else looks at it. */
#ifndef QUORUMD_DATAPLANE_FRAME_H
#define QUORUMD_DATAPLANE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_MAGIC 0x46445251u
#define FRAME_VERSION 1u
#define FRAME_HEADER_SIZE 72u
#define FRAME_MAC_SIZE 16u
#define FRAME_CRC_OFFSET 48u
#define FRAME_MAC_OFFSET 56u
#define FRAME_FLAG_SEALED 0x01u
#define FRAME_COUNTER_OFFSET 48u
#define FRAME_MAX_FRAGMENTS 65535u
/* A UDP datagram over IPv4 carries at most 65507 bytes. */
#define FRAME_MAX_DATAGRAM 65507u
/* 1500-byte Ethernet MTU minus IPv6 (40) and UDP (8) headers, rounded down: fits IPv4 and IPv6. */
#define FRAME_DEFAULT_DATAGRAM 1400u

/* Why a datagram is not a valid frame; one code per reason. X(name, message). */
#define FRAME_ERRORS(X)                                                                          \
	X(FRAME_OK, "ok")                                                                        \
	X(FRAME_ERR_SHORT, "datagram shorter than the frame header")                             \
	X(FRAME_ERR_MAGIC, "bad magic")                                                          \
	X(FRAME_ERR_VERSION, "unsupported version")                                              \
	X(FRAME_ERR_LENGTH, "fragment length does not match the datagram length")                \
	X(FRAME_ERR_CRC, "CRC32C mismatch")                                                      \
	X(FRAME_ERR_FLAGS, "unknown flags")                                                      \
	X(FRAME_ERR_RESERVED, "reserved field not zero")                                         \
	X(FRAME_ERR_COUNT_ZERO, "fragment count is zero")                                        \
	X(FRAME_ERR_INDEX, "fragment index not below fragment count")                            \
	X(FRAME_ERR_TOO_BIG, "message length over the configured maximum")                      \
	X(FRAME_ERR_GEOMETRY, "fragment count or length inconsistent with the message length")

enum frame_error {
#define FRAME_ERROR_ENUM(name, message) name,
	FRAME_ERRORS(FRAME_ERROR_ENUM)
#undef FRAME_ERROR_ENUM
	FRAME_ERROR_COUNT
};

/* The decoded header. */
struct frame_header {
	uint8_t version;
	uint8_t flags;
	uint16_t fragment_index;
	uint16_t fragment_count;
	uint16_t fragment_length;
	uint32_t message_length;
	uint64_t cluster_id;
	uint64_t from;
	uint64_t to;
	uint64_t message_id;
	uint32_t crc;                /* plain frames */
	uint64_t counter;            /* sealed frames: the nonce counter (offsets 48..55) */
	uint8_t mac[FRAME_MAC_SIZE]; /* plain: the MAC; sealed: the GCM tag */
};

/* Who sends what to whom: the header fields that are the same in every fragment of a message. */
struct frame_address {
	uint64_t cluster_id;
	uint64_t from;
	uint64_t to;
	uint64_t message_id;
};

/* "bad magic", ... ; "unknown frame error" for a code out of range. */
const char *frame_error_message(enum frame_error error);
/* "FRAME_ERR_MAGIC", ... */
const char *frame_error_name(enum frame_error error);

/* Number of frames a message of message_length bytes needs when no frame may exceed max_datagram bytes.
 * 0 if impossible: max_datagram <= FRAME_HEADER_SIZE or > FRAME_MAX_DATAGRAM, message over UINT32_MAX,
 * or more than FRAME_MAX_FRAGMENTS frames needed. */
size_t frame_count(size_t message_length, size_t max_datagram);

/* Where fragment index of a message of message_length bytes split into count fragments starts and how
 * long it is (the even split above). Returns FRAME_OK or FRAME_ERR_COUNT_ZERO / FRAME_ERR_INDEX /
 * FRAME_ERR_GEOMETRY. */
enum frame_error frame_fragment_span(uint32_t message_length, uint16_t count, uint16_t index,
	size_t *offset, size_t *length);

/* Writes fragment index of count of message (message_length bytes) into out (capacity out_size), with
 * the CRC computed and the MAC zeroed. Returns the frame's size, or 0 when the span is invalid or out is
 * too small. */
size_t frame_encode(const struct frame_address *address, const uint8_t *message, size_t message_length,
	uint16_t count, uint16_t index, uint8_t *out, size_t out_size);

/* frame_encode without the copy: writes only fragment index's 72-byte header (its CRC over the header
 * and the fragment where it lies in message) and returns the fragment's span, for a sender that hands
 * the kernel header and fragment as two pieces of one datagram. Plain frames only (no MAC, not sealed).
 * -1 when the span is invalid. */
int frame_encode_header(const struct frame_address *address, const uint8_t *message, size_t message_length,
	uint16_t count, uint16_t index, uint8_t out[FRAME_HEADER_SIZE], size_t *payload_offset,
	size_t *payload_length);

/* Validates a received datagram: every field, lengths against the datagram, the fragment geometry,
 * message_length against max_message_length, and the CRC. On FRAME_OK fills *header and points *payload
 * at the fragment's bytes inside datagram. Checks run in this order, so a flipped bit in a well-formed
 * frame reports FRAME_ERR_CRC: SHORT, MAGIC, VERSION, LENGTH, CRC, FLAGS, RESERVED, COUNT_ZERO, INDEX,
 * TOO_BIG, GEOMETRY. A sealed frame skips CRC and RESERVED (its tag is checked by frame_seal_open). */
enum frame_error frame_parse(const uint8_t *datagram, size_t length, size_t max_message_length,
	struct frame_header *header, const uint8_t **payload);

/* Header codec without checks, for tests that build malformed frames. frame_write_header writes the
 * crc field as given (a sealed header: its counter); frame_compute_crc returns the CRC of a complete
 * frame as defined above. */
void frame_write_header(const struct frame_header *header, uint8_t out[FRAME_HEADER_SIZE]);
void frame_read_header(const uint8_t in[FRAME_HEADER_SIZE], struct frame_header *header);
uint32_t frame_compute_crc(const uint8_t *frame, size_t length);
/* Stores crc in a frame's crc32c field. */
void frame_write_crc(uint8_t *frame, uint32_t crc);

#endif
