/* tests/fuzz/fuzz_frame.c: libFuzzer target for the peer frame parser and the reassembler
 * (dataplane/frame.h, dataplane/reassembly.h): arbitrary datagrams as a transport's receive thread
 * would see them.
 *
 * Input: byte 0 configures the run (bit 0: fix up the CRC of every datagram of 72 bytes or more before
 * parsing, so mutations get past the CRC check and reach the geometry checks and the reassembler; bits
 * 1-2: the reassembler's memory limit, 4 KiB .. 16 MiB; bits 3-4: the largest message accepted; bit 5:
 * a short reassembly timeout; bit 6: keyed, as a transport with --peer-frame-key-file: each datagram's MAC
 * (dataplane/frame_mac.h, under the fixed key below) is checked after frame_parse and only a frame that
 * passes reaches the reassembler; bit 7, with bit 6: seal every datagram with that key first (MAC and
 * CRC), so mutations get past the MAC check too). Then records: a 2-byte little-endian length L, a time step byte (the
 * clock advances by step * 1 ms; 255 jumps past the timeout), then L datagram bytes (fewer at the end
 * of the input). Each datagram goes through frame_parse and, when valid, reassembly_add.
 *
 * Checked on every datagram: a delivered message is as long as its header said and readable in full
 * (ASan sees the bytes); the counters stay consistent (pending messages and bytes held drop to 0 with
 * nothing pending; memory held stays under the limit). A record whose length has the top bit set
 * (L & 0x8000) is instead a message to send: its bytes (L & 0x7fff of them) are split with frame_encode
 * at a datagram size picked from the time byte, and the frames are fed back in reverse order, with the
 * first one twice; the message must come out exactly once and identical, unless the reassembler was
 * entitled to drop it (over the memory limit or the maximum message size). Keyed, each of those frames
 * is sealed, must verify, must still parse (the CRC covers the MAC), and must fail to verify with one
 * bit flipped (any bit but the CRC's, picked by the fragment index) or under another key.
 *
 * tests/fuzz/make_seeds.py writes the seed corpus (corpus/frame/). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "frame_mac.h"
#include "reassembly.h"

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, "fuzz-frame: " __VA_ARGS__);                           \
		fputc('\n', stderr);                                                   \
		abort();                                                               \
	} while (0)

static const size_t memory_limits[4] = {4096, 65536, 1u << 20, 16u << 20};
static const size_t message_limits[4] = {1024, 65536, 1u << 20, 64u << 20};

static void check_counters(const struct reassembly *r, size_t memory_limit)
{
	struct reassembly_counters counters;
	reassembly_counters(r, &counters);
	if (counters.pending == 0 && counters.memory_used != 0)
		FAIL("nothing pending but %llu bytes held", (unsigned long long)counters.memory_used);
	if (counters.memory_used > memory_limit)
		FAIL("%llu bytes held over the limit of %zu", (unsigned long long)counters.memory_used, memory_limit);
}

static void touch(const struct reassembly_message *message, const struct frame_header *header)
{
	if (message->length != header->message_length)
		FAIL("delivered %zu bytes, the header said %u", message->length, header->message_length);
	if (message->from != header->from || message->message_id != header->message_id)
		FAIL("delivered a message of another sender or id");
	volatile uint8_t sum = 0;
	for (size_t i = 0; i < message->length; i++)
		sum ^= message->data[i];
	(void)sum;
}

/* The keyed runs' key: the key file "fuzz-frame key file, 32 bytes!!!" (tests/fuzz/make_seeds.py seals
 * seeds with it), and another one no input is sealed with. Made once: libFuzzer runs inputs in one
 * process, and the contexts are reused per frame just as the transport reuses its own. */
static struct frame_mac *mac, *other_mac;

static void make_keys(void)
{
	if (mac)
		return;
	static const char file[] = "fuzz-frame key file, 32 bytes!!!", other_file[] = "another fuzz-frame key file!!!!!";
	uint8_t key[FRAME_MAC_KEY_SIZE];
	if (frame_mac_derive_key((const uint8_t *)file, sizeof file - 1, key) != 0 || frame_mac_create(key, &mac) != 0 ||
		frame_mac_derive_key((const uint8_t *)other_file, sizeof other_file - 1, key) != 0 ||
		frame_mac_create(key, &other_mac) != 0)
		FAIL("cannot set up the keyed BLAKE2b");
}

/* Keyed: seals an encoded frame and checks what the receiver relies on. */
static void seal_and_check(uint8_t *frame, size_t size, size_t index)
{
	if (frame_mac_seal(mac, frame, size) != 0)
		FAIL("frame_mac_seal failed on a frame of %zu bytes", size);
	if (!frame_mac_verify(mac, frame, size))
		FAIL("a sealed frame of %zu bytes does not verify", size);
	if (frame_mac_verify(other_mac, frame, size))
		FAIL("a sealed frame verifies under another key");
	size_t bit = (index * 131) % (size * 8);
	if (bit / 8 >= FRAME_CRC_OFFSET && bit / 8 < FRAME_CRC_OFFSET + 4)
		bit += 32; /* the CRC field is not covered by the MAC */
	frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	if (frame_mac_verify(mac, frame, size))
		FAIL("a sealed frame with bit %zu flipped still verifies", bit);
	frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

/* The target's own messages come from this sender; once an input datagram claims to be from it (a
 * forged fragment of one of them, which the reassembler cannot tell), the exact checks are off. */
#define SELF 0xfeedu
static uint64_t send_id;
static bool forged;

/* Splits message into frames and feeds them back (reverse order, the first one duplicated). */
static void round_trip(struct reassembly *r, const uint8_t *message, size_t length, size_t datagram, uint64_t now,
	size_t memory_limit, size_t message_limit, bool keyed)
{
	size_t count = frame_count(length, datagram);
	if (count == 0 || count > 1024) /* many tiny frames teach nothing new and slow every run */
		return;
	struct frame_address address = {.cluster_id = 7, .from = SELF, .to = 1, .message_id = send_id++};
	uint8_t *frame = malloc(datagram);
	if (frame == NULL)
		return;
	struct reassembly_counters before, after;
	reassembly_counters(r, &before);
	bool delivered = false, dropped = false;
	for (size_t k = 0; k <= count; k++) {
		size_t index = k == count ? 0 : count - 1 - k; /* reverse, then fragment 0 again */
		size_t size = frame_encode(&address, message, length, (uint16_t)count, (uint16_t)index, frame, datagram);
		if (size == 0 || size > datagram)
			FAIL("frame_encode of fragment %zu/%zu of %zu bytes into %zu gave %zu", index, count, length,
				datagram, size);
		if (keyed)
			seal_and_check(frame, size, index);
		struct frame_header header;
		const uint8_t *payload;
		enum frame_error error = frame_parse(frame, size, message_limit, &header, &payload);
		if (error == FRAME_ERR_TOO_BIG && length > message_limit)
			return free(frame);
		if (error != FRAME_OK)
			FAIL("an encoded frame does not parse: %s", frame_error_name(error));
		struct reassembly_message out;
		enum reassembly_result result = reassembly_add(r, &header, payload, now, &out);
		if (result == REASSEMBLY_COMPLETE) {
			if (delivered && !forged)
				FAIL("message delivered twice");
			delivered = true;
			touch(&out, &header);
			if (!forged && (out.length != length || (length > 0 && memcmp(out.data, message, length) != 0)))
				FAIL("a message of %zu bytes came back different", length);
		} else if (result == REASSEMBLY_DROPPED) {
			dropped = true;
		}
		check_counters(r, memory_limit);
	}
	reassembly_counters(r, &after);
	if (!delivered && !dropped && !forged && after.memory_drops == before.memory_drops)
		FAIL("a message of %zu bytes in %zu frames was neither delivered nor dropped", length, count);
	free(frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t config = data[0];
	bool fix_crc = config & 1;
	size_t memory_limit = memory_limits[(config >> 1) & 3];
	size_t message_limit = message_limits[(config >> 3) & 3];
	uint64_t timeout_ns = (config & 0x20) ? 5000000ull : 2000000000ull;
	bool keyed = config & 0x40, seal = keyed && (config & 0x80);
	if (keyed)
		make_keys();
	struct reassembly_config rc = {.memory_limit = memory_limit, .timeout_ns = timeout_ns};
	struct reassembly *r;
	if (reassembly_create(&rc, &r) != 0)
		FAIL("reassembly_create");
	uint64_t now = 1000000000ull;
	send_id = 1;
	forged = false;
	size_t at = 1;
	while (at + 3 <= size) {
		size_t length = (size_t)data[at] | (size_t)data[at + 1] << 8;
		uint8_t step = data[at + 2];
		at += 3;
		bool send = length & 0x8000;
		length &= 0x7fff;
		if (length > size - at)
			length = size - at;
		now += step == 255 ? timeout_ns + 1 : (uint64_t)step * 1000000ull;
		if (send) {
			static const size_t datagrams[4] = {FRAME_HEADER_SIZE + 1, FRAME_HEADER_SIZE + 7, 512,
				FRAME_DEFAULT_DATAGRAM};
			round_trip(r, data + at, length, datagrams[step & 3], now, memory_limit, message_limit, keyed);
			at += length;
			continue;
		}
		/* A copy of exactly length bytes on the heap, so ASan catches a read past the datagram. */
		uint8_t *datagram = malloc(length ? length : 1);
		if (datagram == NULL)
			break;
		memcpy(datagram, data + at, length);
		at += length;
		if (fix_crc && length >= FRAME_HEADER_SIZE) {
			memset(datagram + FRAME_CRC_OFFSET, 0, 4);
			uint32_t crc = frame_compute_crc(datagram, length);
			for (int i = 0; i < 4; i++)
				datagram[FRAME_CRC_OFFSET + i] = (uint8_t)(crc >> (8 * i));
		}
		if (seal && length >= FRAME_HEADER_SIZE)
			(void)frame_mac_seal(mac, datagram, length);
		struct frame_header header;
		const uint8_t *payload = NULL;
		enum frame_error error = frame_parse(datagram, length, message_limit, &header, &payload);
		(void)frame_error_message(error);
		/* The transport's order: parse, then the MAC, then reassembly. A datagram shorter than a header
		 * never verifies (frame_mac_compute refuses it). */
		bool authentic = !keyed || frame_mac_verify(mac, datagram, length);
		if (keyed && length < FRAME_HEADER_SIZE && authentic)
			FAIL("a %zu-byte datagram verified", length);
		if (seal && length >= FRAME_HEADER_SIZE && !authentic)
			FAIL("a sealed datagram of %zu bytes does not verify", length);
		if (error == FRAME_OK && authentic) {
			size_t offset, span;
			if (frame_fragment_span(header.message_length, header.fragment_count, header.fragment_index,
				    &offset, &span) != FRAME_OK)
				FAIL("a parsed frame has an invalid span");
			if (span != header.fragment_length || payload != datagram + FRAME_HEADER_SIZE ||
				FRAME_HEADER_SIZE + span != length)
				FAIL("a parsed frame's payload does not match its datagram");
			/* The header codec round-trips what parse accepted. */
			uint8_t again[FRAME_HEADER_SIZE];
			frame_write_header(&header, again);
			if (memcmp(again, datagram, FRAME_HEADER_SIZE) != 0)
				FAIL("frame_write_header does not reproduce a parsed header");
			if (header.from == SELF)
				forged = true;
			struct reassembly_message out;
			if (reassembly_add(r, &header, payload, now, &out) == REASSEMBLY_COMPLETE)
				touch(&out, &header);
		}
		free(datagram);
		if ((step & 0x0f) == 0x0f)
			reassembly_expire(r, now);
		(void)reassembly_next_expiry(r);
		check_counters(r, memory_limit);
	}
	reassembly_expire(r, now + timeout_ns);
	struct reassembly_counters counters;
	reassembly_counters(r, &counters);
	if (counters.pending != 0 || counters.memory_used != 0)
		FAIL("after every timeout %llu messages, %llu bytes still held", (unsigned long long)counters.pending,
			(unsigned long long)counters.memory_used);
	reassembly_destroy(r);
	return 0;
}
