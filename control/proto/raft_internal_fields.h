/* control/proto/raft_internal_fields.h: the field numbers of InternalRaftRequest and RequestHeader
 * (raft_internal.proto), for code that writes or scans their bytes without building the messages:
 * wrapping a client's request unchanged (no decode and re-encode) and spotting a member-attributes entry
 * without decoding every entry. protoc-c generates no such constants; tests/control/test_proto.c checks
 * these against the generated descriptors. */
#ifndef QUORUMD_CONTROL_PROTO_RAFT_INTERNAL_FIELDS_H
#define QUORUMD_CONTROL_PROTO_RAFT_INTERNAL_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protobuf wire types: the low three bits of a field's tag. */
enum protobuf_wire_type {
	PROTOBUF_WIRE_VARINT = 0,
	PROTOBUF_WIRE_FIXED64 = 1,
	PROTOBUF_WIRE_LENGTH_DELIMITED = 2,
	PROTOBUF_WIRE_FIXED32 = 5,
};

/* The tag that starts a field: varint((field_number << 3) | wire type). */
#define PROTOBUF_TAG(field_number, wire_type) (((uint64_t)(field_number) << 3) | (uint64_t)(wire_type))

enum request_header_field {
	REQUEST_HEADER_FIELD_ID = 1,
	REQUEST_HEADER_FIELD_USERNAME = 2,
	REQUEST_HEADER_FIELD_AUTH_REVISION = 3,
};

enum internal_raft_request_field {
	INTERNAL_RAFT_FIELD_RANGE = 3,
	INTERNAL_RAFT_FIELD_PUT = 4,
	INTERNAL_RAFT_FIELD_DELETE_RANGE = 5,
	INTERNAL_RAFT_FIELD_TXN = 6,
	INTERNAL_RAFT_FIELD_COMPACTION = 7,
	INTERNAL_RAFT_FIELD_LEASE_GRANT = 8,
	INTERNAL_RAFT_FIELD_LEASE_REVOKE = 9,
	INTERNAL_RAFT_FIELD_ALARM = 10,
	INTERNAL_RAFT_FIELD_HEADER = 100,
	INTERNAL_RAFT_FIELD_AUTH_ENABLE = 1000,
	INTERNAL_RAFT_FIELD_AUTH_DISABLE = 1011,
	INTERNAL_RAFT_FIELD_AUTHENTICATE = 1012,
	INTERNAL_RAFT_FIELD_AUTH_USER_ADD = 1100,
	INTERNAL_RAFT_FIELD_AUTH_USER_DELETE = 1101,
	INTERNAL_RAFT_FIELD_AUTH_USER_GET = 1102,
	INTERNAL_RAFT_FIELD_AUTH_USER_CHANGE_PASSWORD = 1103,
	INTERNAL_RAFT_FIELD_AUTH_USER_GRANT_ROLE = 1104,
	INTERNAL_RAFT_FIELD_AUTH_USER_REVOKE_ROLE = 1105,
	INTERNAL_RAFT_FIELD_AUTH_USER_LIST = 1106,
	INTERNAL_RAFT_FIELD_AUTH_ROLE_LIST = 1107,
	INTERNAL_RAFT_FIELD_AUTH_ROLE_ADD = 1200,
	INTERNAL_RAFT_FIELD_AUTH_ROLE_DELETE = 1201,
	INTERNAL_RAFT_FIELD_AUTH_ROLE_GET = 1202,
	INTERNAL_RAFT_FIELD_AUTH_ROLE_GRANT_PERMISSION = 1203,
	INTERNAL_RAFT_FIELD_AUTH_ROLE_REVOKE_PERMISSION = 1204,
	INTERNAL_RAFT_FIELD_CLUSTER_MEMBER_ATTR_SET = 10000,
	INTERNAL_RAFT_FIELD_BATCH = 10001,
};

/* A varint at *at, within end (moving *at past it); false when it runs past end or past 64 bits. */
static inline bool protobuf_read_varint(const uint8_t **at, const uint8_t *end, uint64_t *value)
{
	*value = 0;
	for (unsigned shift = 0; shift < 64 && *at < end; shift += 7) {
		uint8_t byte = *(*at)++;
		*value |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80))
			return true;
	}
	return false;
}

/* Whether the encoded message has a top-level field with this number, found by stepping from field to field
 * (a length-delimited one is skipped whole, however large: a 64 KiB value costs one varint, not a scan of its
 * bytes). False for bytes that are not a well-formed message. */
static inline bool protobuf_has_field(const uint8_t *data, size_t length, uint64_t field_number)
{
	const uint8_t *at = data, *end = data + length;
	while (at < end) {
		uint64_t tag, size;
		if (!protobuf_read_varint(&at, end, &tag))
			return false;
		if (tag >> 3 == field_number)
			return true;
		switch (tag & 7) {
		case PROTOBUF_WIRE_VARINT:
			if (!protobuf_read_varint(&at, end, &size))
				return false;
			continue;
		case PROTOBUF_WIRE_FIXED64:
			size = 8;
			break;
		case PROTOBUF_WIRE_FIXED32:
			size = 4;
			break;
		case PROTOBUF_WIRE_LENGTH_DELIMITED:
			if (!protobuf_read_varint(&at, end, &size))
				return false;
			break;
		default:
			return false; /* groups: not in etcd's messages */
		}
		if (size > (uint64_t)(end - at))
			return false;
		at += size;
	}
	return false;
}

#endif
