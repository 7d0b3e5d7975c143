/* dataplane/frame_mac.c: keyed BLAKE2b over peer frames (definition in frame_mac.h), from libcrypto. */
#include "frame_mac.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

struct frame_mac {
	EVP_MAC_CTX *context;  /* keyed once in frame_mac_create; re-initialised per frame with that key */
};

int frame_mac_derive_key(const uint8_t *bytes, size_t length, uint8_t key[FRAME_MAC_KEY_SIZE])
{
	if (length < FRAME_MAC_MIN_KEY_FILE)
		return -EINVAL;
	unsigned int size = 0;
	if (EVP_Digest(bytes, length, key, &size, EVP_blake2b512(), NULL) != 1 || size != FRAME_MAC_KEY_SIZE)
		return -EIO;
	return 0;
}

int frame_mac_load_key_file(const char *path, uint8_t key[FRAME_MAC_KEY_SIZE], char *err, size_t errlen)
{
	char no_message[1];
	if (!err) { /* the transports' callers may pass no buffer */
		err = no_message;
		errlen = sizeof no_message;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "peer frame key file %s: cannot read: %s", path, strerror(e));
		return -e;
	}
	/* One byte more than allowed, so an oversized file is seen as such. */
	size_t capacity = FRAME_MAC_MAX_KEY_FILE + 1;
	uint8_t *bytes = malloc(capacity);
	if (!bytes) {
		close(fd);
		snprintf(err, errlen, "peer frame key file %s: out of memory", path);
		return -ENOMEM;
	}
	size_t length = 0;
	int rv = 0;
	while (length < capacity) {
		ssize_t n = read(fd, bytes + length, capacity - length);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = -errno;
			snprintf(err, errlen, "peer frame key file %s: cannot read: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		length += (size_t)n;
	}
	close(fd);
	if (rv == 0 && length == 0) {
		rv = -EINVAL;
		snprintf(err, errlen, "peer frame key file %s: empty (put at least %u secret bytes in it, e.g. head -c 32 "
			"/dev/urandom > FILE, the same file on every member)", path, FRAME_MAC_MIN_KEY_FILE);
	} else if (rv == 0 && length < FRAME_MAC_MIN_KEY_FILE) {
		rv = -EINVAL;
		snprintf(err, errlen, "peer frame key file %s: %zu bytes, need at least %u (e.g. head -c 32 /dev/urandom "
			"> FILE, the same file on every member)", path, length, FRAME_MAC_MIN_KEY_FILE);
	} else if (rv == 0 && length > FRAME_MAC_MAX_KEY_FILE) {
		rv = -EFBIG;
		snprintf(err, errlen, "peer frame key file %s: over %u bytes: not a key file", path, FRAME_MAC_MAX_KEY_FILE);
	} else if (rv == 0 && frame_mac_derive_key(bytes, length, key) != 0) {
		rv = -EIO;
		snprintf(err, errlen, "peer frame key file %s: libcrypto has no BLAKE2b-512", path);
	}
	OPENSSL_cleanse(bytes, length);
	free(bytes);
	return rv;
}

int frame_mac_create(const uint8_t key[FRAME_MAC_KEY_SIZE], struct frame_mac **out)
{
	struct frame_mac *mac = calloc(1, sizeof *mac);
	if (!mac)
		return -ENOMEM;
	EVP_MAC *algorithm = EVP_MAC_fetch(NULL, "BLAKE2BMAC", NULL);
	if (algorithm)
		mac->context = EVP_MAC_CTX_new(algorithm);
	EVP_MAC_free(algorithm); /* the context holds its own reference */
	if (!mac->context) {
		free(mac);
		return -EIO;
	}
	size_t size = FRAME_MAC_SIZE;
	char personal[] = FRAME_MAC_PERSONAL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_CUSTOM, personal, sizeof personal - 1),
		OSSL_PARAM_construct_end(),
	};
	if (EVP_MAC_init(mac->context, key, FRAME_MAC_KEY_SIZE, params) != 1) {
		frame_mac_destroy(mac);
		return -EIO;
	}
	*out = mac;
	return 0;
}

void frame_mac_destroy(struct frame_mac *mac)
{
	if (!mac)
		return;
	EVP_MAC_CTX_free(mac->context); /* wipes the key it holds */
	free(mac);
}

int frame_mac_compute(struct frame_mac *mac, const uint8_t *frame, size_t length, uint8_t out[FRAME_MAC_SIZE])
{
	if (length < FRAME_HEADER_SIZE)
		return -EINVAL;
	uint8_t header[FRAME_HEADER_SIZE];
	memcpy(header, frame, FRAME_HEADER_SIZE);
	memset(header + FRAME_CRC_OFFSET, 0, 4);
	memset(header + FRAME_MAC_OFFSET, 0, FRAME_MAC_SIZE);
	size_t size = 0;
	/* A NULL key re-initialises with the key given at create: no allocation, one BLAKE2b block for the
	 * key, and the size and personalisation parameters stay set. */
	if (EVP_MAC_init(mac->context, NULL, 0, NULL) != 1 ||
		EVP_MAC_update(mac->context, header, sizeof header) != 1 ||
		EVP_MAC_update(mac->context, frame + FRAME_HEADER_SIZE, length - FRAME_HEADER_SIZE) != 1 ||
		EVP_MAC_final(mac->context, out, &size, FRAME_MAC_SIZE) != 1 || size != FRAME_MAC_SIZE)
		return -EIO;
	return 0;
}

int frame_mac_seal(struct frame_mac *mac, uint8_t *frame, size_t length)
{
	uint8_t tag[FRAME_MAC_SIZE];
	int rv = frame_mac_compute(mac, frame, length, tag);
	if (rv < 0)
		return rv;
	memcpy(frame + FRAME_MAC_OFFSET, tag, FRAME_MAC_SIZE);
	frame_write_crc(frame, frame_compute_crc(frame, length));
	return 0;
}

bool frame_mac_verify(struct frame_mac *mac, const uint8_t *frame, size_t length)
{
	uint8_t expected[FRAME_MAC_SIZE];
	if (frame_mac_compute(mac, frame, length, expected) != 0)
		return false;
	return CRYPTO_memcmp(expected, frame + FRAME_MAC_OFFSET, FRAME_MAC_SIZE) == 0;
}
