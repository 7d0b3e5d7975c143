/* tests/control/test_proto.c: the etcd wire protocol of control/proto/ against byte sequences derived
 * by hand from etcd's field numbers (protobuf encoding: a tag is the varint (field_number << 3) |
 * wire_type, wire type 0 = varint, 2 = length-delimited; proto3 omits fields at their default). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "raft_internal.pb-c.h"
#include "raft_internal_fields.h"
#include "rpc.pb-c.h"

#include "check.h"

static ProtobufCBinaryData bytes_of(const char *text)
{
	ProtobufCBinaryData data = {strlen(text), (uint8_t *)text};
	return data;
}

static int bytes_equal(const ProtobufCBinaryData *data, const char *text)
{
	return data->len == strlen(text) && memcmp(data->data, text, data->len) == 0;
}

static void print_hex(const char *label, const uint8_t *bytes, size_t length)
{
	printf("  %s (%zu):", label, length);
	for (size_t i = 0; i < length; i++)
		printf(" %02x", bytes[i]);
	printf("\n");
}

/* Packs message into a buffer and compares it with expected; on a mismatch prints both. */
static void check_packed(const char *name, const ProtobufCMessage *message, const uint8_t *expected,
                         size_t expected_length)
{
	uint8_t buffer[256];
	size_t size = protobuf_c_message_get_packed_size(message);
	CHECK(size == expected_length, "%s: packed size %zu, expected %zu", name, size, expected_length);
	if (size > sizeof(buffer))
		return;
	size_t packed = protobuf_c_message_pack(message, buffer);
	CHECK(packed == size, "%s: pack wrote %zu of %zu bytes", name, packed, size);
	if (packed != expected_length || memcmp(buffer, expected, expected_length) != 0) {
		CHECK(0, "%s: encoding differs", name);
		print_hex("got     ", buffer, packed);
		print_hex("expected", expected, expected_length);
	}
}

/* Member 42's attributes (name n1, client URL http://127.0.0.1:2379), as a member publishes them. */
static Membershippb__ClusterMemberAttrSetRequest *member_42_attributes(void)
{
	static char *client_urls[] = {"http://127.0.0.1:2379"};
	static Membershippb__Attributes attributes = MEMBERSHIPPB__ATTRIBUTES__INIT;
	static Membershippb__ClusterMemberAttrSetRequest attr_set = MEMBERSHIPPB__CLUSTER_MEMBER_ATTR_SET_REQUEST__INIT;
	attributes.name = "n1";
	attributes.n_client_urls = 1;
	attributes.client_urls = client_urls;
	attr_set.member_id = 42;
	attr_set.member_attributes = &attributes;
	return &attr_set;
}

/* PutRequest: key = 1 (bytes), value = 2 (bytes), lease = 3, prev_kv = 4 (bool). */
static const uint8_t put_foo_bar[] = {
    0x0a, 0x03, 'f', 'o', 'o', /* key:     field 1, wire type 2 -> tag (1 << 3) | 2 = 0x0a, length 3 */
    0x12, 0x03, 'b', 'a', 'r', /* value:   field 2, wire type 2 -> tag (2 << 3) | 2 = 0x12, length 3 */
    0x20, 0x01,                /* prev_kv: field 4, wire type 0 -> tag (4 << 3) | 0 = 0x20, true = 1 */
};

static void test_put_request_bytes(void)
{
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	put.key = bytes_of("foo");
	put.value = bytes_of("bar");
	put.prev_kv = 1;
	/* lease = 0, ignore_value and ignore_lease = false: defaults, not on the wire. */
	check_packed("PutRequest", &put.base, put_foo_bar, sizeof(put_foo_bar));
}

static void test_range_request_bytes(void)
{
	/* RangeRequest: key = 1, range_end = 2, limit = 3 (int64), revision = 4, sort_order = 5,
	 * sort_target = 6, serializable = 7 (bool), keys_only = 8, count_only = 9, min/max revisions 10-13. */
	static const uint8_t expected[] = {
	    0x0a, 0x01, 'a', /* key:          field 1, wire type 2 -> 0x0a, length 1 */
	    0x12, 0x01, 'b', /* range_end:    field 2, wire type 2 -> 0x12, length 1 */
	    0x18, 0x0a,      /* limit:        field 3, wire type 0 -> (3 << 3) | 0 = 0x18, varint 10 = 0x0a */
	    0x38, 0x01,      /* serializable: field 7, wire type 0 -> (7 << 3) | 0 = 0x38, true = 1 */
	};
	Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
	range.key = bytes_of("a");
	range.range_end = bytes_of("b");
	range.limit = 10;
	range.serializable = 1;
	check_packed("RangeRequest", &range.base, expected, sizeof(expected));
}

static void test_member_add_request_bytes(void)
{
	/* MemberAddRequest: peerURLs = 1 (repeated string), isLearner = 2 (bool). */
	static const uint8_t expected[] = {
	    /* peerURLs[0]: field 1, wire type 2 -> 0x0a; length of "http://127.0.0.1:42380" is
	     * 7 ("http://") + 9 ("127.0.0.1") + 6 (":42380") = 22 = 0x16. */
	    0x0a, 0x16, 'h', 't', 't', 'p', ':', '/', '/', '1', '2', '7', '.', '0', '.', '0', '.', '1', ':',
	    '4', '2', '3', '8', '0',
	    0x10, 0x01, /* isLearner: field 2, wire type 0 -> (2 << 3) | 0 = 0x10, true = 1 */
	};
	char *peer_urls[] = {"http://127.0.0.1:42380"};
	Etcdserverpb__MemberAddRequest add = ETCDSERVERPB__MEMBER_ADD_REQUEST__INIT;
	add.n_peerurls = 1;
	add.peerurls = peer_urls;
	add.islearner = 1;
	check_packed("MemberAddRequest", &add.base, expected, sizeof(expected));
}

static void test_internal_raft_request_unpack(void)
{
	/* InternalRaftRequest: ID = 1, put = 4, header = 100; RequestHeader: ID = 1, username = 2,
	 * auth_revision = 3. */
	static const uint8_t entry[] = {
	    /* header: field 100, wire type 2 -> tag 802 = 0x322, varint 0xa2 0x06
	     * (low 7 bits 0x22 with the continuation bit, then 802 >> 7 = 6); length 11. */
	    0xa2, 0x06, 0x0b,
	    0x08, 0xac, 0x02,                   /* header.ID: field 1 varint, 300 = 0x12c -> 0xac 0x02 */
	    0x12, 0x04, 'r', 'o', 'o', 't',     /* header.username: field 2, length 4 */
	    0x18, 0x05,                         /* header.auth_revision: field 3 varint, 5 */
	    0x08, 0x07,                         /* ID: field 1 varint, 7 */
	    0x22, 0x0c,                         /* put: field 4, wire type 2 -> (4 << 3) | 2 = 0x22, length 12 */
	    0x0a, 0x03, 'f', 'o', 'o', 0x12, 0x03, 'b', 'a', 'r', 0x20, 0x01, /* put_foo_bar */
	};
	Etcdserverpb__InternalRaftRequest *request =
	    etcdserverpb__internal_raft_request__unpack(NULL, sizeof(entry), entry);
	CHECK(request != NULL, "unpack failed");
	if (request == NULL)
		return;
	CHECK(request->id == 7, "ID %llu", (unsigned long long)request->id);
	CHECK(request->header != NULL, "no header");
	if (request->header != NULL) {
		CHECK(request->header->id == 300, "header.ID %llu", (unsigned long long)request->header->id);
		CHECK(strcmp(request->header->username, "root") == 0, "header.username '%s'",
		      request->header->username);
		CHECK(request->header->auth_revision == 5, "header.auth_revision %llu",
		      (unsigned long long)request->header->auth_revision);
	}
	CHECK(request->put != NULL, "no put");
	if (request->put != NULL) {
		CHECK(bytes_equal(&request->put->key, "foo"), "put.key");
		CHECK(bytes_equal(&request->put->value, "bar"), "put.value");
		CHECK(request->put->prev_kv == 1, "put.prev_kv %d", request->put->prev_kv);
		CHECK(request->put->lease == 0, "put.lease %lld", (long long)request->put->lease);
	}
	CHECK(request->range == NULL && request->delete_range == NULL && request->txn == NULL &&
	          request->cluster_member_attr_set == NULL,
	      "other requests set");
	CHECK(request->base.n_unknown_fields == 0, "%u unknown fields", request->base.n_unknown_fields);

	/* Packing it back gives the same bytes (fields go out in field-number order: ID, put, header). */
	uint8_t buffer[64];
	size_t size = etcdserverpb__internal_raft_request__get_packed_size(request);
	CHECK(size == sizeof(entry), "repacked size %zu", size);
	if (size == sizeof(entry)) {
		etcdserverpb__internal_raft_request__pack(request, buffer);
		static const uint8_t reordered[] = {
		    0x08, 0x07, 0x22, 0x0c, 0x0a, 0x03, 'f', 'o', 'o', 0x12, 0x03, 'b', 'a', 'r', 0x20, 0x01,
		    0xa2, 0x06, 0x0b, 0x08, 0xac, 0x02, 0x12, 0x04, 'r', 'o', 'o', 't', 0x18, 0x05,
		};
		CHECK(memcmp(buffer, reordered, sizeof(reordered)) == 0, "repacked bytes differ");
	}
	etcdserverpb__internal_raft_request__free_unpacked(request, NULL);
}

static void test_cluster_member_attr_set_bytes(void)
{
	/* quorumd's addition: InternalRaftRequest.cluster_member_attr_set = 10000, carrying etcd 3.5's
	 * membershippb.ClusterMemberAttrSetRequest{member_ID = 1, member_attributes = 2} with
	 * Attributes{name = 1, client_urls = 2}. */
	static const uint8_t expected[] = {
	    /* field 10000, wire type 2 -> tag 80002 = 0x13882: varint 0x82 (low 7 bits 0x02), 0xf1
	     * (80002 >> 7 = 625, low 7 bits 0x71), 0x04 (625 >> 7); length 2 + 2 + 27 = 31. */
	    0x82, 0xf1, 0x04, 0x1f,
	    0x08, 0x2a,       /* member_ID: field 1 varint, 42 */
	    0x12, 0x1b,       /* member_attributes: field 2, length 4 + 2 + 21 = 27 */
	    0x0a, 0x02, 'n', '1', /* name: field 1, length 2 */
	    /* client_urls[0]: field 2, length of "http://127.0.0.1:2379" = 7 + 9 + 5 = 21 = 0x15 */
	    0x12, 0x15, 'h', 't', 't', 'p', ':', '/', '/', '1', '2', '7', '.', '0', '.', '0', '.', '1', ':',
	    '2', '3', '7', '9',
	};
	Etcdserverpb__InternalRaftRequest request = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	request.cluster_member_attr_set = member_42_attributes();
	check_packed("InternalRaftRequest.cluster_member_attr_set", &request.base, expected, sizeof(expected));
}

/* The named field numbers code writes and scans raw bytes with agree with the generated descriptors. */
static void check_field_number(const ProtobufCMessageDescriptor *descriptor, const char *name, unsigned expected)
{
	const ProtobufCFieldDescriptor *field = protobuf_c_message_descriptor_get_field_by_name(descriptor, name);
	if (!field || field->id != expected) {
		printf("FAIL: %s.%s is field %u in raft_internal_fields.h but %d in the .proto\n", descriptor->name, name,
		       expected, field ? (int)field->id : -1);
		failures++;
	}
}

static void test_named_field_numbers(void)
{
	const ProtobufCMessageDescriptor *internal = &etcdserverpb__internal_raft_request__descriptor;
	check_field_number(&etcdserverpb__request_header__descriptor, "ID", REQUEST_HEADER_FIELD_ID);
	check_field_number(&etcdserverpb__request_header__descriptor, "username", REQUEST_HEADER_FIELD_USERNAME);
	check_field_number(&etcdserverpb__request_header__descriptor, "auth_revision", REQUEST_HEADER_FIELD_AUTH_REVISION);
	check_field_number(internal, "alarm", INTERNAL_RAFT_FIELD_ALARM);
	check_field_number(internal, "auth_enable", INTERNAL_RAFT_FIELD_AUTH_ENABLE);
	check_field_number(internal, "auth_disable", INTERNAL_RAFT_FIELD_AUTH_DISABLE);
	check_field_number(internal, "authenticate", INTERNAL_RAFT_FIELD_AUTHENTICATE);
	check_field_number(internal, "auth_user_add", INTERNAL_RAFT_FIELD_AUTH_USER_ADD);
	check_field_number(internal, "auth_user_delete", INTERNAL_RAFT_FIELD_AUTH_USER_DELETE);
	check_field_number(internal, "auth_user_get", INTERNAL_RAFT_FIELD_AUTH_USER_GET);
	check_field_number(internal, "auth_user_change_password", INTERNAL_RAFT_FIELD_AUTH_USER_CHANGE_PASSWORD);
	check_field_number(internal, "auth_user_grant_role", INTERNAL_RAFT_FIELD_AUTH_USER_GRANT_ROLE);
	check_field_number(internal, "auth_user_revoke_role", INTERNAL_RAFT_FIELD_AUTH_USER_REVOKE_ROLE);
	check_field_number(internal, "auth_user_list", INTERNAL_RAFT_FIELD_AUTH_USER_LIST);
	check_field_number(internal, "auth_role_list", INTERNAL_RAFT_FIELD_AUTH_ROLE_LIST);
	check_field_number(internal, "auth_role_add", INTERNAL_RAFT_FIELD_AUTH_ROLE_ADD);
	check_field_number(internal, "auth_role_delete", INTERNAL_RAFT_FIELD_AUTH_ROLE_DELETE);
	check_field_number(internal, "auth_role_get", INTERNAL_RAFT_FIELD_AUTH_ROLE_GET);
	check_field_number(internal, "auth_role_grant_permission", INTERNAL_RAFT_FIELD_AUTH_ROLE_GRANT_PERMISSION);
	check_field_number(internal, "auth_role_revoke_permission", INTERNAL_RAFT_FIELD_AUTH_ROLE_REVOKE_PERMISSION);
	check_field_number(internal, "range", INTERNAL_RAFT_FIELD_RANGE);
	check_field_number(internal, "put", INTERNAL_RAFT_FIELD_PUT);
	check_field_number(internal, "delete_range", INTERNAL_RAFT_FIELD_DELETE_RANGE);
	check_field_number(internal, "txn", INTERNAL_RAFT_FIELD_TXN);
	check_field_number(internal, "compaction", INTERNAL_RAFT_FIELD_COMPACTION);
	check_field_number(internal, "lease_grant", INTERNAL_RAFT_FIELD_LEASE_GRANT);
	check_field_number(internal, "lease_revoke", INTERNAL_RAFT_FIELD_LEASE_REVOKE);
	check_field_number(internal, "header", INTERNAL_RAFT_FIELD_HEADER);
	check_field_number(internal, "cluster_member_attr_set", INTERNAL_RAFT_FIELD_CLUSTER_MEMBER_ATTR_SET);
	check_field_number(internal, "batch", INTERNAL_RAFT_FIELD_BATCH);
}

/* protobuf_has_field: node_members.c finds member-attributes entries with it, field by field. */
static void test_has_field(void)
{
	Etcdserverpb__RequestHeader header = ETCDSERVERPB__REQUEST_HEADER__INIT;
	header.id = 7;
	Etcdserverpb__InternalRaftRequest request = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	request.header = &header;
	request.cluster_member_attr_set = member_42_attributes();
	uint8_t packed[256];
	size_t length = protobuf_c_message_pack(&request.base, packed);
	if (!protobuf_has_field(packed, length, INTERNAL_RAFT_FIELD_CLUSTER_MEMBER_ATTR_SET) ||
	    !protobuf_has_field(packed, length, INTERNAL_RAFT_FIELD_HEADER) ||
	    protobuf_has_field(packed, length, INTERNAL_RAFT_FIELD_PUT)) {
		printf("FAIL: protobuf_has_field on a member-attributes request\n");
		failures++;
	}
	/* A put whose value holds the attribute field's tag bytes (82 f1 04): a scan of the bytes would find
	 * them, a walk of the fields does not. */
	static uint8_t value[65536];
	for (size_t k = 0; k + 3 <= sizeof(value); k += 3)
		memcpy(value + k, "\x82\xf1\x04", 3);
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	put.key = (ProtobufCBinaryData){1, (uint8_t *)"k"};
	put.value = (ProtobufCBinaryData){sizeof(value), value};
	Etcdserverpb__InternalRaftRequest put_request = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	put_request.header = &header;
	put_request.put = &put;
	static uint8_t put_packed[65536 + 256];
	size_t put_length = protobuf_c_message_pack(&put_request.base, put_packed);
	if (protobuf_has_field(put_packed, put_length, INTERNAL_RAFT_FIELD_CLUSTER_MEMBER_ATTR_SET) ||
	    !protobuf_has_field(put_packed, put_length, INTERNAL_RAFT_FIELD_PUT)) {
		printf("FAIL: protobuf_has_field on a put holding the attribute tag's bytes\n");
		failures++;
	}
	/* Fixed-width fields are stepped over; a length past the end, or a cut varint, is not a message. */
	const uint8_t fixed[] = {0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x15, 1, 2, 3, 4, 0x82, 0xf1, 0x04, 0x00};
	const uint8_t overlong[] = {0x22, 0x7f, 0x01};
	const uint8_t cut[] = {0x82, 0xf1};
	if (!protobuf_has_field(fixed, sizeof(fixed), INTERNAL_RAFT_FIELD_CLUSTER_MEMBER_ATTR_SET) ||
	    protobuf_has_field(overlong, sizeof(overlong), INTERNAL_RAFT_FIELD_CLUSTER_MEMBER_ATTR_SET) ||
	    protobuf_has_field(cut, sizeof(cut), INTERNAL_RAFT_FIELD_CLUSTER_MEMBER_ATTR_SET)) {
		printf("FAIL: protobuf_has_field on hand-made bytes\n");
		failures++;
	}
}

int main(void)
{
	test_named_field_numbers();
	test_put_request_bytes();
	test_range_request_bytes();
	test_member_add_request_bytes();
	test_internal_raft_request_unpack();
	test_cluster_member_attr_set_bytes();
	test_has_field();
	if (failures != 0) {
		printf("%d failure(s)\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
