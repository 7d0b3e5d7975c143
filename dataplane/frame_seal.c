/* dataplane/frame_seal.c: AES-256-GCM on peer frames and the replay window (frame_seal.h). */
#include "frame_seal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct frame_cipher {
	EVP_CIPHER_CTX *context;
	bool encrypt;
};

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t frame_seal_counter(const uint8_t *frame)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | frame[FRAME_COUNTER_OFFSET + i];
	return v;
}

static void nonce_of(uint64_t counter, uint8_t nonce[FRAME_SEAL_NONCE_SIZE])
{
	memset(nonce, 0, 4);
	put64(nonce + 4, counter);
}

int frame_cipher_create(const uint8_t key[FRAME_SEAL_KEY_SIZE], bool encrypt, struct frame_cipher **out)
{
	struct frame_cipher *cipher = calloc(1, sizeof *cipher);
	if (!cipher)
		return -ENOMEM;
	cipher->encrypt = encrypt;
	cipher->context = EVP_CIPHER_CTX_new();
	int ok = cipher->context != NULL;
	/* The key schedule is computed once here; each frame then sets only its nonce. */
	if (ok && encrypt)
		ok = EVP_EncryptInit_ex(cipher->context, EVP_aes_256_gcm(), NULL, key, NULL) == 1;
	else if (ok)
		ok = EVP_DecryptInit_ex(cipher->context, EVP_aes_256_gcm(), NULL, key, NULL) == 1;
	if (!ok) {
		frame_cipher_destroy(cipher);
		return -EIO;
	}
	*out = cipher;
	return 0;
}

void frame_cipher_destroy(struct frame_cipher *cipher)
{
	if (!cipher)
		return;
	EVP_CIPHER_CTX_free(cipher->context); /* wipes the key schedule */
	free(cipher);
}

int frame_seal(struct frame_cipher *cipher, uint64_t counter, uint8_t *frame, size_t length)
{
	if (!cipher->encrypt || counter == 0 || length < FRAME_HEADER_SIZE || length > FRAME_MAX_DATAGRAM)
		return -EINVAL;
	frame[5] = FRAME_FLAG_SEALED;
	put64(frame + FRAME_COUNTER_OFFSET, counter);
	memset(frame + FRAME_MAC_OFFSET, 0, FRAME_MAC_SIZE);
	uint8_t nonce[FRAME_SEAL_NONCE_SIZE];
	nonce_of(counter, nonce);
	uint8_t *payload = frame + FRAME_HEADER_SIZE;
	int payload_length = (int)(length - FRAME_HEADER_SIZE), written = 0, final = 0;
	if (EVP_EncryptInit_ex(cipher->context, NULL, NULL, NULL, nonce) != 1 ||
		EVP_EncryptUpdate(cipher->context, NULL, &written, frame, FRAME_SEAL_AAD_SIZE) != 1 ||
		(payload_length > 0 &&
			EVP_EncryptUpdate(cipher->context, payload, &written, payload, payload_length) != 1) ||
		EVP_EncryptFinal_ex(cipher->context, payload + payload_length, &final) != 1 ||
		EVP_CIPHER_CTX_ctrl(cipher->context, EVP_CTRL_GCM_GET_TAG, FRAME_MAC_SIZE, frame + FRAME_MAC_OFFSET) != 1)
		return -EIO;
	return 0;
}

int frame_open(struct frame_cipher *cipher, const uint8_t *frame, size_t length, uint8_t *payload_out)
{
	if (cipher->encrypt)
		return -EINVAL;
	if (length < FRAME_HEADER_SIZE || length > FRAME_MAX_DATAGRAM || frame[5] != FRAME_FLAG_SEALED)
		return -EBADMSG;
	uint8_t nonce[FRAME_SEAL_NONCE_SIZE], tag[FRAME_MAC_SIZE];
	nonce_of(frame_seal_counter(frame), nonce);
	memcpy(tag, frame + FRAME_MAC_OFFSET, FRAME_MAC_SIZE);
	int payload_length = (int)(length - FRAME_HEADER_SIZE), written = 0, final = 0;
	if (EVP_DecryptInit_ex(cipher->context, NULL, NULL, NULL, nonce) != 1 ||
		EVP_DecryptUpdate(cipher->context, NULL, &written, frame, FRAME_SEAL_AAD_SIZE) != 1 ||
		(payload_length > 0 && EVP_DecryptUpdate(cipher->context, payload_out, &written,
			frame + FRAME_HEADER_SIZE, payload_length) != 1) ||
		EVP_CIPHER_CTX_ctrl(cipher->context, EVP_CTRL_GCM_SET_TAG, FRAME_MAC_SIZE, tag) != 1)
		return -EBADMSG;
	/* The tag is compared here (in constant time); on a mismatch payload_out holds unauthenticated bytes
	 * the caller must not use. */
	if (EVP_DecryptFinal_ex(cipher->context, payload_out + payload_length, &final) != 1)
		return -EBADMSG;
	return 0;
}

/* ---- replay window: a ring of 64-bit words, as WireGuard's (RFC 6479) ---- */

#define RING_BITS (64u * FRAME_SEAL_WINDOW_WORDS)

void frame_replay_init(struct frame_replay_window *window)
{
	memset(window, 0, sizeof *window);
}

enum frame_replay_verdict frame_replay_check(const struct frame_replay_window *window, uint64_t counter)
{
	if (counter == 0)
		return FRAME_REPLAY_TOO_OLD;
	if (counter > window->highest)
		return FRAME_REPLAY_NEW;
	if (window->highest - counter >= FRAME_SEAL_REPLAY_WINDOW)
		return FRAME_REPLAY_TOO_OLD;
	uint64_t bit = counter % RING_BITS;
	return (window->bits[bit / 64] >> (bit % 64)) & 1u ? FRAME_REPLAY_SEEN : FRAME_REPLAY_NEW;
}

void frame_replay_accept(struct frame_replay_window *window, uint64_t counter)
{
	if (counter > window->highest) {
		/* Words the window slides over now stand for new counters: clear them (at most all of them). */
		uint64_t old_word = window->highest / 64, new_word = counter / 64;
		uint64_t steps = new_word - old_word;
		if (steps > FRAME_SEAL_WINDOW_WORDS)
			steps = FRAME_SEAL_WINDOW_WORDS;
		for (uint64_t i = 1; i <= steps; i++)
			window->bits[(old_word + i) % FRAME_SEAL_WINDOW_WORDS] = 0;
		window->highest = counter;
	}
	uint64_t bit = counter % RING_BITS;
	window->bits[bit / 64] |= (uint64_t)1 << (bit % 64);
}
