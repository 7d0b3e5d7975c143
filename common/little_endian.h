/* common/little_endian.h: fixed-width integers in and out of byte buffers, least significant byte first — the
 * order of every hand-made field in quorumd's peer messages and tokens (Raft read-index contexts, lease and
 * ping messages, snapshot stream headers), whatever the host's own order. */
#ifndef QUORUMD_COMMON_LITTLE_ENDIAN_H
#define QUORUMD_COMMON_LITTLE_ENDIAN_H

#include <stdint.h>

static inline void little_endian_put32(uint8_t *out, uint32_t value)
{
	for (int b = 0; b < 4; b++)
		out[b] = (uint8_t)(value >> (8 * b));
}

static inline void little_endian_put64(uint8_t *out, uint64_t value)
{
	for (int b = 0; b < 8; b++)
		out[b] = (uint8_t)(value >> (8 * b));
}

static inline uint32_t little_endian_get32(const uint8_t *in)
{
	uint32_t value = 0;
	for (int b = 0; b < 4; b++)
		value |= (uint32_t)in[b] << (8 * b);
	return value;
}

static inline uint64_t little_endian_get64(const uint8_t *in)
{
	uint64_t value = 0;
	for (int b = 0; b < 8; b++)
		value |= (uint64_t)in[b] << (8 * b);
	return value;
}

#endif
