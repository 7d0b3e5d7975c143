/* tests/fuzz/fuzz_sealed_frame.c: libFuzzer target for sealed peer frames (dataplane/frame_seal.h) as a
 * transport with peer TLS takes them: frame_parse, then frame_open under the session key, then the replay
 * window.
 *
 * Input: records of a 1-byte kind, a 2-byte little-endian length L, an 8-byte little-endian counter and L
 * bytes (fewer at the end of the input).
 * - kind even: the L bytes are a received datagram. It goes through frame_parse; a frame that parses and is
 *   sealed goes to frame_open under the fixed key (the plaintext lands in a buffer of exactly its size, so
 *   ASan sees any overrun) and, when it opens, through the replay window as the transport does.
 * - kind odd: the L bytes are a message fragment to seal under the fixed key with the record's counter
 *   (0 is made 1). The sealed frame must parse as sealed, open to exactly those bytes, and be refused once
 *   its counter is marked; with one bit flipped (the bit kind / 2 picks, modulo the frame's bits) it must
 *   fail to open; under another key it must fail too.
 * Checked throughout: a counter the window took is SEEN afterwards, a counter above the highest is NEW, one
 * FRAME_SEAL_REPLAY_WINDOW or more below it is TOO_OLD.
 *
 * Seeds: corpus/sealed-frame/ (tests/fuzz/make_sealed_seeds.py). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "frame_seal.h"

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, "fuzz-sealed-frame: " __VA_ARGS__);                    \
		fputc('\n', stderr);                                                   \
		abort();                                                               \
	} while (0)

static struct frame_cipher *sealer, *opener, *stranger;
static uint8_t frame_buffer[FRAME_MAX_DATAGRAM];

static void setup(void)
{
	if (sealer)
		return;
	uint8_t key[FRAME_SEAL_KEY_SIZE], other[FRAME_SEAL_KEY_SIZE];
	for (unsigned i = 0; i < FRAME_SEAL_KEY_SIZE; i++) {
		key[i] = (uint8_t)(i * 7 + 1);
		other[i] = (uint8_t)(i * 7 + 2);
	}
	if (frame_cipher_create(key, true, &sealer) != 0 || frame_cipher_create(key, false, &opener) != 0 ||
		frame_cipher_create(other, false, &stranger) != 0)
		FAIL("no AES-256-GCM in libcrypto");
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void check_window(const struct frame_replay_window *w, uint64_t taken)
{
	if (frame_replay_check(w, taken) != FRAME_REPLAY_SEEN)
		FAIL("counter %llu taken but not seen", (unsigned long long)taken);
	if (w->highest < UINT64_MAX && frame_replay_check(w, w->highest + 1) != FRAME_REPLAY_NEW)
		FAIL("counter above the highest not new");
	if (w->highest >= FRAME_SEAL_REPLAY_WINDOW &&
		frame_replay_check(w, w->highest - FRAME_SEAL_REPLAY_WINDOW) != FRAME_REPLAY_TOO_OLD)
		FAIL("counter a window below the highest not too old");
}

/* The transport's order: open, then the window; true when the frame was taken. */
static bool take(struct frame_replay_window *w, const uint8_t *frame, size_t length, uint64_t counter)
{
	size_t payload_length = length - FRAME_HEADER_SIZE;
	uint8_t *plain = malloc(payload_length ? payload_length : 1);
	if (!plain)
		FAIL("out of memory");
	bool opened = frame_open(opener, frame, length, plain) == 0;
	free(plain);
	if (!opened || frame_replay_check(w, counter) != FRAME_REPLAY_NEW)
		return false;
	frame_replay_accept(w, counter);
	check_window(w, counter);
	return true;
}

static void seal_and_check(struct frame_replay_window *w, uint8_t kind, uint64_t counter, const uint8_t *bytes,
	size_t length)
{
	if (length > FRAME_MAX_DATAGRAM - FRAME_HEADER_SIZE)
		length = FRAME_MAX_DATAGRAM - FRAME_HEADER_SIZE;
	if (counter == 0)
		counter = 1;
	const struct frame_address address = {.cluster_id = 7, .from = 1, .to = 2, .message_id = counter};
	size_t size = frame_encode(&address, bytes, length, 1, 0, frame_buffer, sizeof frame_buffer);
	if (size != FRAME_HEADER_SIZE + length)
		FAIL("encode of %zu bytes gave %zu", length, size);
	if (frame_seal(sealer, counter, frame_buffer, size) != 0)
		FAIL("seal failed");
	struct frame_header h;
	const uint8_t *payload;
	if (frame_parse(frame_buffer, size, UINT32_MAX, &h, &payload) != FRAME_OK || h.flags != FRAME_FLAG_SEALED ||
		h.counter != counter)
		FAIL("a sealed frame does not parse as sealed with its counter");
	uint8_t *plain = malloc(length ? length : 1);
	if (!plain)
		FAIL("out of memory");
	if (frame_open(opener, frame_buffer, size, plain) != 0 || memcmp(plain, bytes, length) != 0)
		FAIL("a sealed frame does not open to its bytes");
	if (frame_open(stranger, frame_buffer, size, plain) == 0)
		FAIL("a sealed frame opens under another key");
	size_t bit = ((size_t)kind / 2 * 2654435761u) % (size * 8);
	frame_buffer[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	if (frame_open(opener, frame_buffer, size, plain) == 0)
		FAIL("bit %zu flipped and the frame still opens", bit);
	frame_buffer[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	free(plain);
	enum frame_replay_verdict before = frame_replay_check(w, counter);
	bool taken = take(w, frame_buffer, size, counter);
	if (taken != (before == FRAME_REPLAY_NEW))
		FAIL("verdict %d but taken %d", before, taken);
	if (take(w, frame_buffer, size, counter))
		FAIL("the same frame taken twice");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	struct frame_replay_window window;
	frame_replay_init(&window);
	size_t at = 0;
	while (at + 11 <= size) {
		uint8_t kind = data[at];
		size_t length = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;
		uint64_t counter = get64(data + at + 3);
		at += 11;
		if (length > size - at)
			length = size - at;
		const uint8_t *bytes = data + at;
		at += length;
		if (kind & 1) {
			seal_and_check(&window, kind, counter, bytes, length);
			continue;
		}
		struct frame_header h;
		const uint8_t *payload;
		if (frame_parse(bytes, length, UINT32_MAX, &h, &payload) != FRAME_OK || h.flags != FRAME_FLAG_SEALED)
			continue;
		take(&window, bytes, length, h.counter);
	}
	return 0;
}
