/* dataplane/frame.c: encode and parse peer frames (layout in frame.h). Pure functions. */
#include "frame.h"

#include <string.h>

#include "crc32c.h"

static const char *const error_messages[] = {
#define FRAME_ERROR_MESSAGE(name, message) message,
	FRAME_ERRORS(FRAME_ERROR_MESSAGE)
#undef FRAME_ERROR_MESSAGE
};

static const char *const error_names[] = {
#define FRAME_ERROR_NAME(name, message) #name,
	FRAME_ERRORS(FRAME_ERROR_NAME)
#undef FRAME_ERROR_NAME
};

const char *frame_error_message(enum frame_error error)
{
	if ((unsigned)error >= FRAME_ERROR_COUNT)
		return "unknown frame error";
	return error_messages[error];
}

const char *frame_error_name(enum frame_error error)
{
	if ((unsigned)error >= FRAME_ERROR_COUNT)
		return "FRAME_ERR_UNKNOWN";
	return error_names[error];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void frame_write_header(const struct frame_header *h, uint8_t out[FRAME_HEADER_SIZE])
{
	put32(out + 0, FRAME_MAGIC);
	out[4] = h->version;
	out[5] = h->flags;
	put16(out + 6, h->fragment_index);
	put16(out + 8, h->fragment_count);
	put16(out + 10, h->fragment_length);
	put32(out + 12, h->message_length);
	put64(out + 16, h->cluster_id);
	put64(out + 24, h->from);
	put64(out + 32, h->to);
	put64(out + 40, h->message_id);
	if (h->flags == FRAME_FLAG_SEALED) {
		put64(out + FRAME_COUNTER_OFFSET, h->counter);
	} else {
		put32(out + FRAME_CRC_OFFSET, h->crc);
		put32(out + 52, 0);
	}
	memcpy(out + FRAME_MAC_OFFSET, h->mac, FRAME_MAC_SIZE);
}

void frame_read_header(const uint8_t in[FRAME_HEADER_SIZE], struct frame_header *h)
{
	h->version = in[4];
	h->flags = in[5];
	h->fragment_index = get16(in + 6);
	h->fragment_count = get16(in + 8);
	h->fragment_length = get16(in + 10);
	h->message_length = get32(in + 12);
	h->cluster_id = get64(in + 16);
	h->from = get64(in + 24);
	h->to = get64(in + 32);
	h->message_id = get64(in + 40);
	h->crc = get32(in + FRAME_CRC_OFFSET);
	h->counter = get64(in + FRAME_COUNTER_OFFSET);
	memcpy(h->mac, in + FRAME_MAC_OFFSET, FRAME_MAC_SIZE);
}

uint32_t frame_compute_crc(const uint8_t *frame, size_t length)
{
	static const uint8_t zero[4];
	uint32_t crc = crc32c(0, frame, FRAME_CRC_OFFSET);
	crc = crc32c(crc, zero, sizeof zero);
	return crc32c(crc, frame + FRAME_CRC_OFFSET + 4, length - FRAME_CRC_OFFSET - 4);
}

void frame_write_crc(uint8_t *frame, uint32_t crc)
{
	put32(frame + FRAME_CRC_OFFSET, crc);
}

size_t frame_count(size_t message_length, size_t max_datagram)
{
	if (max_datagram <= FRAME_HEADER_SIZE || max_datagram > FRAME_MAX_DATAGRAM)
		return 0;
	if (message_length > UINT32_MAX)
		return 0;
	size_t chunk = max_datagram - FRAME_HEADER_SIZE;
	size_t count = message_length == 0 ? 1 : (message_length + chunk - 1) / chunk;
	return count > FRAME_MAX_FRAGMENTS ? 0 : count;
}

enum frame_error frame_fragment_span(uint32_t message_length, uint16_t count, uint16_t index,
	size_t *offset, size_t *length)
{
	if (count == 0)
		return FRAME_ERR_COUNT_ZERO;
	if (index >= count)
		return FRAME_ERR_INDEX;
	if (message_length == 0) {
		if (count != 1)
			return FRAME_ERR_GEOMETRY;
		*offset = 0;
		*length = 0;
		return FRAME_OK;
	}
	uint64_t chunk = ((uint64_t)message_length + count - 1) / count;
	/* The last fragment must not be empty: otherwise two counts would describe the same split. */
	if ((uint64_t)(count - 1) * chunk >= message_length)
		return FRAME_ERR_GEOMETRY;
	/* A fragment's length travels in 16 bits. */
	if (chunk > UINT16_MAX)
		return FRAME_ERR_GEOMETRY;
	uint64_t start = (uint64_t)index * chunk;
	uint64_t rest = message_length - start;
	*offset = (size_t)start;
	*length = (size_t)(rest < chunk ? rest : chunk);
	return FRAME_OK;
}

/* The header of fragment index with its CRC field still zero, and the fragment's span. */
static int fragment_header(const struct frame_address *address, size_t message_length, uint16_t count,
	uint16_t index, uint8_t out[FRAME_HEADER_SIZE], size_t *offset, size_t *length)
{
	if (message_length > UINT32_MAX)
		return -1;
	if (frame_fragment_span((uint32_t)message_length, count, index, offset, length) != FRAME_OK)
		return -1;
	struct frame_header h = {
		.version = FRAME_VERSION,
		.flags = 0,
		.fragment_index = index,
		.fragment_count = count,
		.fragment_length = (uint16_t)*length,
		.message_length = (uint32_t)message_length,
		.cluster_id = address->cluster_id,
		.from = address->from,
		.to = address->to,
		.message_id = address->message_id,
		.crc = 0,
	};
	frame_write_header(&h, out);
	return 0;
}

size_t frame_encode(const struct frame_address *address, const uint8_t *message, size_t message_length,
	uint16_t count, uint16_t index, uint8_t *out, size_t out_size)
{
	size_t offset, length;
	if (message_length > UINT32_MAX ||
		frame_fragment_span((uint32_t)message_length, count, index, &offset, &length) != FRAME_OK ||
		out_size < FRAME_HEADER_SIZE + length)
		return 0;
	if (fragment_header(address, message_length, count, index, out, &offset, &length) != 0)
		return 0;
	if (length > 0)
		memcpy(out + FRAME_HEADER_SIZE, message + offset, length);
	size_t size = FRAME_HEADER_SIZE + length;
	put32(out + FRAME_CRC_OFFSET, frame_compute_crc(out, size));
	return size;
}

int frame_encode_header(const struct frame_address *address, const uint8_t *message, size_t message_length,
	uint16_t count, uint16_t index, uint8_t out[FRAME_HEADER_SIZE], size_t *payload_offset,
	size_t *payload_length)
{
	if (fragment_header(address, message_length, count, index, out, payload_offset, payload_length) != 0)
		return -1;
	/* The CRC field is zero in out, as the CRC's definition takes it. */
	uint32_t crc = crc32c(0, out, FRAME_HEADER_SIZE);
	if (*payload_length > 0)
		crc = crc32c(crc, message + *payload_offset, *payload_length);
	put32(out + FRAME_CRC_OFFSET, crc);
	return 0;
}

enum frame_error frame_parse(const uint8_t *datagram, size_t length, size_t max_message_length,
	struct frame_header *header, const uint8_t **payload)
{
	if (length < FRAME_HEADER_SIZE)
		return FRAME_ERR_SHORT;
	if (get32(datagram) != FRAME_MAGIC)
		return FRAME_ERR_MAGIC;
	struct frame_header h;
	frame_read_header(datagram, &h);
	if (h.version != FRAME_VERSION)
		return FRAME_ERR_VERSION;
	if ((size_t)h.fragment_length != length - FRAME_HEADER_SIZE)
		return FRAME_ERR_LENGTH;
	if (h.flags != FRAME_FLAG_SEALED) {
		if (frame_compute_crc(datagram, length) != h.crc)
			return FRAME_ERR_CRC;
		if (h.flags != 0)
			return FRAME_ERR_FLAGS;
		if (get32(datagram + 52) != 0)
			return FRAME_ERR_RESERVED;
	}
	if (h.fragment_count == 0)
		return FRAME_ERR_COUNT_ZERO;
	if (h.fragment_index >= h.fragment_count)
		return FRAME_ERR_INDEX;
	if (h.message_length > max_message_length)
		return FRAME_ERR_TOO_BIG;
	size_t offset, span;
	enum frame_error error = frame_fragment_span(h.message_length, h.fragment_count, h.fragment_index,
		&offset, &span);
	if (error != FRAME_OK)
		return error;
	if (span != h.fragment_length)
		return FRAME_ERR_GEOMETRY;
	*header = h;
	*payload = datagram + FRAME_HEADER_SIZE;
	return FRAME_OK;
}
