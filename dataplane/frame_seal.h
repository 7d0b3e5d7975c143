/* dataplane/frame_seal.h: the AEAD on peer frames when peer TLS is on (peer_tls.h keys it). Every frame is
 * encrypted and authenticated with AES-256-GCM under a key of its direction (sender -> receiver), so a frame
 * can be neither read, forged, altered nor replayed by anyone without that session's keys.
 *
 * A sealed frame is a version-1 frame (frame.h) with flags FRAME_FLAG_SEALED and:
 *   offsets 48..55  the nonce counter, 64 bits little-endian, one per frame, starting at 1 for each key
 *   offsets 56..71  the GCM tag (16 bytes)
 *   payload         the fragment, encrypted
 * Nonce (96 bits): 4 zero bytes, then the counter little-endian. Each key is used by one sender in one
 * direction only, so a counter never repeats under a key. Additional authenticated data: the first 56
 * header bytes (everything but the tag, counter included), so a moved, renumbered or readdressed frame
 * fails like an altered one.
 *
 * The receiver keeps a replay window per key: the highest counter opened and a bitmap of the
 * FRAME_SEAL_REPLAY_WINDOW counters below it. A counter seen before or below the window is refused; a
 * counter is marked only after its frame opened, so a forged frame cannot move the window.
 *
 * One struct frame_cipher holds an OpenSSL EVP_CIPHER_CTX with its key schedule set once; each frame sets
 * only the nonce (no allocation). A cipher is used by one thread. */
#ifndef QUORUMD_DATAPLANE_FRAME_SEAL_H
#define QUORUMD_DATAPLANE_FRAME_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

#define FRAME_SEAL_KEY_SIZE 32u
#define FRAME_SEAL_NONCE_SIZE 12u
#define FRAME_SEAL_AAD_SIZE FRAME_MAC_OFFSET
/* Counters below the highest one opened that are still accepted once. */
#define FRAME_SEAL_REPLAY_WINDOW 1024u
#define FRAME_SEAL_WINDOW_WORDS (FRAME_SEAL_REPLAY_WINDOW / 64u + 1u)

struct frame_cipher;

/* A cipher for sealing (encrypt true) or opening frames under key. 0, or -ENOMEM / -EIO. */
int frame_cipher_create(const uint8_t key[FRAME_SEAL_KEY_SIZE], bool encrypt, struct frame_cipher **out);
void frame_cipher_destroy(struct frame_cipher *cipher);

/* Seals a frame frame_encode produced (length bytes, header included) in place with counter (>= 1). 0, or
 * -EINVAL (counter 0, short frame, an opening cipher) / -EIO (libcrypto). */
int frame_seal(struct frame_cipher *cipher, uint64_t counter, uint8_t *frame, size_t length);

/* Opens a sealed frame: checks the tag and writes the plaintext payload (length - FRAME_HEADER_SIZE
 * bytes) to payload_out (which may be the frame's own payload). 0, or -EBADMSG (not sealed, wrong key,
 * altered, truncated), -EINVAL (a sealing cipher). The counter is the frame's; check it with
 * frame_replay_check first and mark it with frame_replay_accept after. */
int frame_open(struct frame_cipher *cipher, const uint8_t *frame, size_t length, uint8_t *payload_out);

/* The counter of a sealed frame (offsets 48..55). */
uint64_t frame_seal_counter(const uint8_t *frame);

struct frame_replay_window {
	uint64_t highest;                          /* 0: nothing opened yet */
	uint64_t bits[FRAME_SEAL_WINDOW_WORDS];    /* a ring: bit c % (64 * words) for counter c */
};

enum frame_replay_verdict {
	FRAME_REPLAY_NEW,       /* not seen, inside or above the window */
	FRAME_REPLAY_SEEN,      /* opened before */
	FRAME_REPLAY_TOO_OLD,   /* below the window (or 0): cannot tell, refused */
};

void frame_replay_init(struct frame_replay_window *window);
enum frame_replay_verdict frame_replay_check(const struct frame_replay_window *window, uint64_t counter);
/* Marks counter (which frame_replay_check found NEW) and slides the window when it is the highest. */
void frame_replay_accept(struct frame_replay_window *window, uint64_t counter);

#endif
