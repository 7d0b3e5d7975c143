/* storage/state/archive.h: the snapshot stream format, shared by snapshot.c (writer) and restore.c
 * (reader). All integers big-endian; every part carries a CRC-32C so a torn or altered stream is
 * refused before it can replace the state.
 *   header : "QSTATE01" | u32 version | u32 file count | u64 applied index | u32 0 | u32 crc(previous 28)
 *   file   : u32 name length | name | u64 size | u32 crc(previous) | size bytes | u32 crc(bytes)
 *   trailer: "QSTATEND" | u32 file count | u32 crc(previous 12) */
#ifndef STATE_ARCHIVE_H
#define STATE_ARCHIVE_H

#define STATE_ARCHIVE_MAGIC "QSTATE01"
#define STATE_ARCHIVE_END_MAGIC "QSTATEND"
#define STATE_ARCHIVE_VERSION 1u
#define STATE_ARCHIVE_HEADER_LEN 32
#define STATE_ARCHIVE_TRAILER_LEN 16
#define STATE_ARCHIVE_NAME_MAX 255
/* Longest file head: length, name, size, crc. */
#define STATE_ARCHIVE_FILE_HEAD_MAX (4 + STATE_ARCHIVE_NAME_MAX + 8 + 4)

#endif
