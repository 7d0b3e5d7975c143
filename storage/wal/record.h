/* storage/wal/record.h: the framing of one WAL record, `length | crc32c | type | payload`.
 *
 * length (u32, little endian) counts payload bytes; crc32c (u32, little endian) covers the length bytes,
 * the type byte and the payload; type (u8) says which walpb message the payload is. Records are packed
 * back to back; an all-zero header (never written: type 0 does not exist) marks the end of a segment. */
#ifndef QUORUMD_STORAGE_WAL_RECORD_H
#define QUORUMD_STORAGE_WAL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define WAL_RECORD_HEADER_SIZE 9u
/* Torn writes happen in units of a disk sector, at least this large. */
#define WAL_SECTOR_SIZE 512u

enum wal_record_type {
	WAL_RECORD_ENTRY = 1,
	WAL_RECORD_HARD_STATE = 2,
	WAL_RECORD_SNAPSHOT = 3,
	WAL_RECORD_TRUNCATE = 4,
	WAL_RECORD_SEGMENT_HEADER = 5,
};

/* Fills the header in front of a payload already written at record + WAL_RECORD_HEADER_SIZE. */
void wal_record_seal(uint8_t *record, uint8_t type, uint32_t payload_length);
/* The same for a record whose payload ends with tail_length bytes kept elsewhere (entry data written
 * from the caller's buffer): record holds the header and the first payload_length - tail_length bytes. */
void wal_record_seal_with_tail(uint8_t *record, uint8_t type, uint32_t payload_length, const uint8_t *tail,
		size_t tail_length);

enum wal_record_status {
	WAL_RECORD_OK,       /* a whole record with a good checksum */
	WAL_RECORD_END,      /* an all-zero header: nothing was written here */
	WAL_RECORD_TORN,     /* looks like a write that did not fully reach the disk */
	WAL_RECORD_CORRUPT,  /* damage a crash cannot explain */
};

struct wal_record_view {
	uint8_t type;
	const uint8_t *payload;
	uint32_t payload_length;
	size_t size;          /* header plus payload */
};

/* Parses the record at offset of a segment whose first `present` bytes are in `bytes` (the file may be
 * shorter than the segment: missing bytes read as zero) and which holds at most `capacity` bytes.
 * On WAL_RECORD_CORRUPT *why says what is wrong. */
enum wal_record_status wal_record_parse(const uint8_t *bytes, size_t present, size_t capacity, size_t offset,
		struct wal_record_view *view, const char **why);

#endif
