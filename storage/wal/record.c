/* storage/wal/record.c: sealing and parsing records, and telling a torn write from corruption.
 *
 * Segments are preallocated, so never-written bytes read as zero, and a write that was cut short by a
 * crash leaves each sector either fully new or still zero (the prefix of a rewritten O_DIRECT block holds
 * the same bytes old and new). A record whose checksum fails is therefore torn when some sector it
 * covers is still zero for its part, and corrupt when every part holds non-zero bytes: a crash cannot
 * produce wrong non-zero bytes. */
#include "record.h"

#include "crc32c.h"

#include <string.h>

static void put_u32(uint8_t *out, uint32_t value)
{
	out[0] = (uint8_t)value;
	out[1] = (uint8_t)(value >> 8);
	out[2] = (uint8_t)(value >> 16);
	out[3] = (uint8_t)(value >> 24);
}

static uint32_t get_u32(const uint8_t *in)
{
	return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}

static uint32_t record_crc(const uint8_t *record, uint32_t payload_length)
{
	uint32_t crc = crc32c(0, record, 4);
	crc = crc32c(crc, record + 8, 1);
	return crc32c(crc, record + WAL_RECORD_HEADER_SIZE, payload_length);
}

void wal_record_seal(uint8_t *record, uint8_t type, uint32_t payload_length)
{
	put_u32(record, payload_length);
	record[8] = type;
	put_u32(record + 4, record_crc(record, payload_length));
}

void wal_record_seal_with_tail(uint8_t *record, uint8_t type, uint32_t payload_length, const uint8_t *tail,
		size_t tail_length)
{
	put_u32(record, payload_length);
	record[8] = type;
	uint32_t crc = record_crc(record, payload_length - (uint32_t)tail_length);
	put_u32(record + 4, crc32c(crc, tail, tail_length));
}

static int all_zero(const uint8_t *bytes, size_t length)
{
	for (size_t i = 0; i < length; i++)
		if (bytes[i] != 0)
			return 0;
	return 1;
}

/* True when some sector overlapped by [start, end) holds only zeros within that range. */
static int has_zero_sector(const uint8_t *bytes, size_t start, size_t end)
{
	size_t piece_start = start;
	while (piece_start < end) {
		size_t sector_end = (piece_start / WAL_SECTOR_SIZE + 1) * WAL_SECTOR_SIZE;
		size_t piece_end = sector_end < end ? sector_end : end;
		if (all_zero(bytes + piece_start, piece_end - piece_start))
			return 1;
		piece_start = piece_end;
	}
	return 0;
}

enum wal_record_status wal_record_parse(const uint8_t *bytes, size_t present, size_t capacity, size_t offset,
		struct wal_record_view *view, const char **why)
{
	*why = NULL;
	if (offset + WAL_RECORD_HEADER_SIZE > capacity) {
		/* No room for another record: the rest can only be zero padding. */
		if (offset < present && !all_zero(bytes + offset, present - offset)) {
			*why = "bytes after the last record that fits";
			return WAL_RECORD_CORRUPT;
		}
		return WAL_RECORD_END;
	}
	if (offset + WAL_RECORD_HEADER_SIZE > present) {
		/* The file ends inside the header: a segment cut short. */
		if (offset >= present || all_zero(bytes + offset, present - offset))
			return WAL_RECORD_END;
		return WAL_RECORD_TORN;
	}
	const uint8_t *record = bytes + offset;
	if (all_zero(record, WAL_RECORD_HEADER_SIZE))
		return WAL_RECORD_END;
	uint32_t payload_length = get_u32(record);
	if (payload_length > capacity - offset - WAL_RECORD_HEADER_SIZE) {
		*why = "record length runs past the end of the segment";
		return WAL_RECORD_CORRUPT;
	}
	size_t size = WAL_RECORD_HEADER_SIZE + (size_t)payload_length;
	if (offset + size > present)
		return WAL_RECORD_TORN;
	if (get_u32(record + 4) != record_crc(record, payload_length)) {
		if (has_zero_sector(bytes, offset, offset + size))
			return WAL_RECORD_TORN;
		*why = "checksum mismatch";
		return WAL_RECORD_CORRUPT;
	}
	if (record[8] < WAL_RECORD_ENTRY || record[8] > WAL_RECORD_SEGMENT_HEADER) {
		*why = "unknown record type";
		return WAL_RECORD_CORRUPT;
	}
	view->type = record[8];
	view->payload = record + WAL_RECORD_HEADER_SIZE;
	view->payload_length = payload_length;
	view->size = size;
	return WAL_RECORD_OK;
}
