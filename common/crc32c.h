/* common/crc32c.h: CRC32C (Castagnoli), the checksum of WAL records, snapshot archives and peer
 * frames. The one piece of code the lower folders share, so it lives below all of them. */
#ifndef QUORUMD_COMMON_CRC32C_H
#define QUORUMD_COMMON_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* crc is the running value (0 to start); feeding a buffer in pieces gives the same result as whole.
 * Thread-safe. */
uint32_t crc32c(uint32_t crc, const void *data, size_t length);

/* Both implementations, exposed so tests can check they agree. crc32c_hardware must only be called
 * when crc32c_has_hardware() is true. */
uint32_t crc32c_software(uint32_t crc, const void *data, size_t length);
uint32_t crc32c_hardware(uint32_t crc, const void *data, size_t length);
bool crc32c_has_hardware(void);

#endif
