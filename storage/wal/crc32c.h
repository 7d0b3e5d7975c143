/* storage/wal/crc32c.h: CRC32C (Castagnoli), the checksum of every WAL record. */
#ifndef QUORUMD_STORAGE_WAL_CRC32C_H
#define QUORUMD_STORAGE_WAL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc is the running value (0 to start); feeding a buffer in pieces gives the same result as whole. */
uint32_t wal_crc32c(uint32_t crc, const void *data, size_t length);

/* Both implementations, exposed so tests can check they agree. wal_crc32c_hardware must only be called
 * when wal_crc32c_has_hardware() is true. */
uint32_t wal_crc32c_software(uint32_t crc, const void *data, size_t length);
uint32_t wal_crc32c_hardware(uint32_t crc, const void *data, size_t length);
int wal_crc32c_has_hardware(void);

#endif
