/* storage/wal/encode.c: turning appends into records in the pending batch. Decides which segment a
 * record goes to: when it does not fit in the active segment, appends move on to the prepared one,
 * which starts with a header record and the current snapshot marker and hard state, so that deleting
 * older segments never loses them. */
#include "error.h"
#include "record.h"
#include "wal.pb-c.h"
#include "wal_internal.h"

#include <errno.h>
#include <string.h>

/* Bytes the records opening a segment can take: header, snapshot marker (with its metadata) and hard
 * state, each with at most ten bytes per varint field plus tags. */
#define SEGMENT_START_RESERVE (3 * WAL_RECORD_HEADER_SIZE + 3 * 11 + 3 * 11 + WAL_SNAPSHOT_METADATA_MAX + 11)

int wal_check_record_size(const struct wal *wal, size_t payload_length, char *err, size_t errlen)
{
	uint64_t limit = wal->options.segment_size - SEGMENT_START_RESERVE - WAL_RECORD_HEADER_SIZE;
	if (payload_length > limit || payload_length > UINT32_MAX)
		return wal_error(err, errlen, E2BIG, "%s: a record of %zu bytes does not fit in a %llu-byte segment",
				wal->dir, payload_length, (unsigned long long)wal->options.segment_size);
	return 0;
}

/* Packs message as a record of type at the end of the active segment. */
static int put_record(struct wal *wal, uint8_t type, const ProtobufCMessage *message, char *err, size_t errlen)
{
	struct wal_segment *segment = wal->active;
	size_t payload_length = protobuf_c_message_get_packed_size(message);
	size_t size = WAL_RECORD_HEADER_SIZE + payload_length;
	struct wal_chunk *chunk = wal_writer_chunk_for(wal, segment, err, errlen);
	if (chunk == NULL)
		return wal->failed;
	int rc = wal_writer_reserve(wal, chunk, size, err, errlen);
	if (rc != 0)
		return rc;
	uint8_t *record = chunk->buffer + chunk->length;
	protobuf_c_message_pack(message, record + WAL_RECORD_HEADER_SIZE);
	wal_record_seal(record, type, (uint32_t)payload_length);
	chunk->length += size;
	chunk->last_index = wal->last_index;
	chunk->records_end = ++wal->records_appended;
	segment->write_offset += size;
	return 0;
}

/* protobuf's key of Entry.data (field 4, length-delimited). */
#define ENTRY_DATA_KEY ((4u << 3) | 2u)

static size_t put_varint(uint8_t *out, uint64_t value)
{
	size_t used = 0;
	while (value >= 0x80) {
		out[used++] = (uint8_t)(value | 0x80);
		value >>= 7;
	}
	out[used++] = (uint8_t)value;
	return used;
}

/* An Entry record whose data the write takes from the caller's buffer. Entry.data is the message's last
 * field, so the payload is the other fields packed as protobuf-c packs them, then data's key and length,
 * then the data: the same bytes wal_append_entries writes. Returns 1 when the chunk cannot take another
 * lent piece (the caller copies instead). */
static int put_lent_entry(struct wal *wal, Walpb__Entry *message, char *err, size_t errlen)
{
	struct wal_segment *segment = wal->active;
	const uint8_t *data = message->data.data;
	size_t data_length = message->data.len;
	message->data.len = 0;
	size_t fields_length = protobuf_c_message_get_packed_size(&message->base);
	uint8_t key_and_length[11];
	size_t key_length = put_varint(key_and_length, ENTRY_DATA_KEY);
	key_length += put_varint(key_and_length + key_length, data_length);
	size_t framed = WAL_RECORD_HEADER_SIZE + fields_length + key_length;
	struct wal_chunk *chunk = wal_writer_chunk_for(wal, segment, err, errlen);
	if (chunk == NULL)
		return wal->failed;
	int rc = wal_writer_reserve(wal, chunk, framed, err, errlen);
	if (rc != 0)
		return rc;
	uint8_t *record = chunk->buffer + chunk->length;
	size_t packed = protobuf_c_message_pack(&message->base, record + WAL_RECORD_HEADER_SIZE);
	memcpy(record + WAL_RECORD_HEADER_SIZE + packed, key_and_length, key_length);
	size_t payload_length = packed + key_length + data_length;
	/* Sealed before lending: if the chunk has no room for the piece, nothing was added yet. */
	chunk->length += framed;
	if (!wal_writer_lend(wal, chunk, data, data_length)) {
		chunk->length -= framed;
		message->data.len = data_length;
		return 1;
	}
	wal_record_seal_with_tail(record, WAL_RECORD_ENTRY, (uint32_t)payload_length, data, data_length);
	chunk->last_index = wal->last_index;
	chunk->records_end = ++wal->records_appended;
	segment->write_offset += framed + data_length;
	return 0;
}

/* protobuf's key of HardState.padding (field 15, length-delimited). */
#define HARD_STATE_PADDING_KEY ((15u << 3) | 2u)

static size_t varint_size(uint64_t value)
{
	size_t size = 1;
	while (value >= 0x80) {
		value >>= 7;
		size++;
	}
	return size;
}

bool wal_encode_padding(struct wal *wal, struct wal_chunk *chunk, uint64_t boundary)
{
	struct wal_segment *segment = chunk->segment;
	if (!wal->has_hard_state || segment != wal->active || segment->write_offset == 0 || wal->failed)
		return false;
	uint64_t gap = boundary - segment->write_offset % boundary;
	if (gap == boundary)
		return true;
	Walpb__HardState state = WALPB__HARD_STATE__INIT;
	state.term = wal->hard_state.term;
	state.vote = wal->hard_state.vote;
	state.commit = wal->hard_state.commit;
	size_t fields = protobuf_c_message_get_packed_size(&state.base);
	/* The filler's length varint may take one or two bytes; a gap too small for the record (or one where
	 * neither length fits exactly) takes the next boundary. */
	for (unsigned attempt = 0; attempt < 2; attempt++, gap += boundary) {
		for (size_t length_bytes = 1; length_bytes <= 2; length_bytes++) {
			size_t fixed = WAL_RECORD_HEADER_SIZE + fields + 1 + length_bytes;
			if (gap < fixed || varint_size(gap - fixed) != length_bytes)
				continue;
			size_t filler = gap - fixed;
			if (segment->write_offset + gap > segment->capacity ||
					wal_writer_reserve(wal, chunk, gap, NULL, 0) != 0)
				return false;
			uint8_t *record = chunk->buffer + chunk->length;
			uint8_t *out = record + WAL_RECORD_HEADER_SIZE;
			out += protobuf_c_message_pack(&state.base, out);
			*out++ = HARD_STATE_PADDING_KEY;
			out += put_varint(out, filler);
			/* Not zeros: a whole sector of zeros inside a record is what recovery takes for a torn write. */
			memset(out, 0xff, filler);
			wal_record_seal(record, WAL_RECORD_HARD_STATE, (uint32_t)(gap - WAL_RECORD_HEADER_SIZE));
			chunk->length += gap;
			segment->write_offset += gap;
			return true;
		}
	}
	return false;
}

static int put_snapshot(struct wal *wal, char *err, size_t errlen)
{
	Walpb__SnapshotMarker marker = WALPB__SNAPSHOT_MARKER__INIT;
	marker.index = wal->snapshot.index;
	marker.term = wal->snapshot.term;
	marker.metadata.data = (uint8_t *)wal->snapshot.metadata;
	marker.metadata.len = wal->snapshot.metadata_length;
	int rc = put_record(wal, WAL_RECORD_SNAPSHOT, &marker.base, err, errlen);
	if (rc == 0) {
		struct wal_chunk *chunk = wal->pending.items[wal->pending.count - 1];
		chunk->has_snapshot = true;
		chunk->snapshot_index = wal->snapshot.index;
	}
	return rc;
}

static int put_hard_state(struct wal *wal, char *err, size_t errlen)
{
	Walpb__HardState state = WALPB__HARD_STATE__INIT;
	state.term = wal->hard_state.term;
	state.vote = wal->hard_state.vote;
	state.commit = wal->hard_state.commit;
	return put_record(wal, WAL_RECORD_HARD_STATE, &state.base, err, errlen);
}

static int start_segment(struct wal *wal, char *err, size_t errlen)
{
	struct wal_segment *segment = wal->active;
	segment->index_before = wal->last_index;
	Walpb__SegmentHeader header = WALPB__SEGMENT_HEADER__INIT;
	header.sequence = segment->sequence;
	int rc = put_record(wal, WAL_RECORD_SEGMENT_HEADER, &header.base, err, errlen);
	if (rc == 0 && wal->has_snapshot)
		rc = put_snapshot(wal, err, errlen);
	if (rc == 0 && wal->has_hard_state)
		rc = put_hard_state(wal, err, errlen);
	return rc;
}

/* Makes the active segment able to take a record with this payload, moving to the next one if needed. */
static int make_room(struct wal *wal, size_t payload_length, char *err, size_t errlen)
{
	if (wal->failed) {
		wal_error(err, errlen, -wal->failed, "%s", wal->failure);
		return wal->failed;
	}
	int rc = wal_check_record_size(wal, payload_length, err, errlen);
	if (rc != 0)
		return rc;
	struct wal_segment *segment = wal->active;
	if (segment->write_offset == 0)
		return start_segment(wal, err, errlen);
	if (segment->write_offset + WAL_RECORD_HEADER_SIZE + payload_length <= segment->capacity)
		return 0;
	segment->full = true;
	if (wal->segments[wal->segment_count - 1] == segment) {
		/* Normally a prepared segment is waiting; it is missing only when one batch spans several
		 * segments, or when preparing failed earlier (a full disk: this failure stops the wal). */
		char reason[sizeof wal->failure];
		rc = wal_writer_prepare_ahead(wal, reason, sizeof reason);
		if (rc != 0) {
			wal_fail(wal, -rc, "%s", reason);
			return wal_error(err, errlen, -rc, "%s", wal->failure);
		}
	}
	for (size_t i = 0; i + 1 < wal->segment_count; i++)
		if (wal->segments[i] == segment) {
			wal->active = wal->segments[i + 1];
			break;
		}
	return start_segment(wal, err, errlen);
}

int wal_encode_entry(struct wal *wal, const struct wal_entry *entry, bool lend, char *err, size_t errlen)
{
	Walpb__Entry message = WALPB__ENTRY__INIT;
	message.term = entry->term;
	message.index = entry->index;
	message.type = entry->type;
	message.data.data = (uint8_t *)entry->data;
	message.data.len = entry->data_length;
	int rc = make_room(wal, protobuf_c_message_get_packed_size(&message.base), err, errlen);
	if (rc != 0)
		return rc;
	struct wal_segment *segment = wal->active;
	if (!segment->has_entries) {
		segment->has_entries = true;
		segment->first_index = entry->index;
		segment->max_index = entry->index;
	}
	segment->last_index = entry->index;
	if (entry->index > segment->max_index)
		segment->max_index = entry->index;
	wal->last_index = entry->index;
	if (lend && !wal->options.direct_io && entry->data_length >= WAL_REFERENCE_MIN_BYTES) {
		rc = put_lent_entry(wal, &message, err, errlen);
		if (rc <= 0)
			return rc;
	}
	return put_record(wal, WAL_RECORD_ENTRY, &message.base, err, errlen);
}

int wal_encode_hard_state(struct wal *wal, char *err, size_t errlen)
{
	Walpb__HardState state = WALPB__HARD_STATE__INIT;
	state.term = wal->hard_state.term;
	state.vote = wal->hard_state.vote;
	state.commit = wal->hard_state.commit;
	int rc = make_room(wal, protobuf_c_message_get_packed_size(&state.base), err, errlen);
	return rc != 0 ? rc : put_hard_state(wal, err, errlen);
}

int wal_encode_snapshot(struct wal *wal, char *err, size_t errlen)
{
	Walpb__SnapshotMarker marker = WALPB__SNAPSHOT_MARKER__INIT;
	marker.index = wal->snapshot.index;
	marker.term = wal->snapshot.term;
	marker.metadata.data = (uint8_t *)wal->snapshot.metadata;
	marker.metadata.len = wal->snapshot.metadata_length;
	int rc = make_room(wal, protobuf_c_message_get_packed_size(&marker.base), err, errlen);
	if (rc != 0)
		return rc;
	/* A snapshot beyond the log replaces it: the next entry follows the snapshot. Applied after a
	 * possible roll, as recovery applies it after the new segment's header. */
	if (wal->last_index < wal->snapshot.index)
		wal->last_index = wal->snapshot.index;
	return put_snapshot(wal, err, errlen);
}

int wal_encode_truncate(struct wal *wal, uint64_t after_index, char *err, size_t errlen)
{
	Walpb__Truncate truncate = WALPB__TRUNCATE__INIT;
	truncate.after_index = after_index;
	int rc = make_room(wal, protobuf_c_message_get_packed_size(&truncate.base), err, errlen);
	if (rc != 0)
		return rc;
	wal->last_index = after_index;
	if (wal->durable_index > after_index)
		wal->durable_index = after_index;
	rc = put_record(wal, WAL_RECORD_TRUNCATE, &truncate.base, err, errlen);
	if (rc == 0) {
		struct wal_chunk *chunk = wal->pending.items[wal->pending.count - 1];
		if (after_index < chunk->truncated_to)
			chunk->truncated_to = after_index;
	}
	return rc;
}
