/* storage/state/crc32c.h: CRC-32C over byte ranges, chainable (start with 0). */
#ifndef STATE_CRC32C_H
#define STATE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t state_crc32c_extend(uint32_t crc, const void *data, size_t len);

#endif
