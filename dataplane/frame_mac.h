/* dataplane/frame_mac.h: the keyed MAC peer frames carry in their 16-byte mac field (frame.h, offset 56),
 * so that only holders of the cluster's key file (--peer-frame-key-file) can send frames a member accepts.
 *
 * Algorithm: keyed BLAKE2b (RFC 7693) with a 16-byte output (BLAKE2b's digest_length parameter set to 16:
 * a native short output, not a truncation), the 64-byte key below, and the personalisation string
 * "quorumd frame v1" (exactly BLAKE2b's 16 bytes; it keeps these MACs apart from any other use of the
 * key). From OpenSSL's libcrypto (EVP_MAC "BLAKE2BMAC"). Python computes the same value with
 *   hashlib.blake2b(data, digest_size=16, key=key, person=b"quorumd frame v1").digest()
 *
 * Covered: the whole frame, header and payload, with the crc32c field (offset 48, 4 bytes) and the mac
 * field (offset 56, 16 bytes) taken as zeros. The sender writes the MAC first and then the CRC32C, whose
 * definition (frame.h) includes the mac field, so random corruption still shows as a CRC error and only
 * a frame with a correct CRC reaches the MAC check.
 *
 * Key: the 64-byte BLAKE2b-512 digest of the key file's bytes, as they are (a trailing newline counts),
 * so any file of at least FRAME_MAC_MIN_KEY_FILE bytes works: 32 random bytes, a hex string, a PEM file.
 * Python: hashlib.blake2b(open(path, "rb").read()).digest()
 *
 * Cost: one struct frame_mac holds an EVP_MAC_CTX with the key set once; each frame re-initialises it
 * with the stored key (no allocation) and hashes 72 + payload bytes. One struct is used by one thread. */
#ifndef QUORUMD_DATAPLANE_FRAME_MAC_H
#define QUORUMD_DATAPLANE_FRAME_MAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

#define FRAME_MAC_KEY_SIZE 64u
/* A key file shorter than this is refused: too little to be a secret. */
#define FRAME_MAC_MIN_KEY_FILE 16u
/* A key file longer than this is refused (a wrong path such as a log or a device, not a key). */
#define FRAME_MAC_MAX_KEY_FILE (1u << 20)
#define FRAME_MAC_PERSONAL "quorumd frame v1"

struct frame_mac;

/* The key from a key file's contents: BLAKE2b-512 of the bytes. 0, or -EINVAL when fewer than
 * FRAME_MAC_MIN_KEY_FILE bytes, -EIO when libcrypto fails. */
int frame_mac_derive_key(const uint8_t *bytes, size_t length, uint8_t key[FRAME_MAC_KEY_SIZE]);

/* Reads path and derives the key. On failure returns -errno and writes a message naming the file into
 * err (may be NULL): "peer frame key file /etc/quorumd/peer.key: cannot read: No such file or directory", "...: empty",
 * "...: 7 bytes, need at least 16 ...", "...: over 1048576 bytes ...". */
int frame_mac_load_key_file(const char *path, uint8_t key[FRAME_MAC_KEY_SIZE], char *err, size_t errlen);

/* A keyed context for one thread. 0, or -ENOMEM / -EIO (libcrypto has no BLAKE2BMAC). */
int frame_mac_create(const uint8_t key[FRAME_MAC_KEY_SIZE], struct frame_mac **out);
void frame_mac_destroy(struct frame_mac *mac);

/* The MAC of a complete frame (length >= FRAME_HEADER_SIZE) as defined above. 0, or -EIO. */
int frame_mac_compute(struct frame_mac *mac, const uint8_t *frame, size_t length, uint8_t out[FRAME_MAC_SIZE]);

/* Writes the MAC into a frame frame_encode produced and recomputes its CRC32C. 0, or -EIO. */
int frame_mac_seal(struct frame_mac *mac, uint8_t *frame, size_t length);

/* True when the frame's mac field holds its MAC (compared in constant time). */
bool frame_mac_verify(struct frame_mac *mac, const uint8_t *frame, size_t length);

#endif
