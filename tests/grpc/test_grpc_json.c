/* tests/grpc/test_grpc_json.c: control/grpc/grpc_json.h on etcd's messages (control/proto): what etcd
 * 3.4's gateway writes (field names, 64-bit strings, base64, enum names, zero values left out, a set
 * oneof member written even when zero), what it reads (both spellings of a name, strings or numbers,
 * nulls and unknown keys skipped, the first oneof member given), and its error texts in Go's words.
 * The expected strings come from etcd 3.4.23's gateway (tests/gateway has them end to end). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_json.h"
#include "rpc.pb-c.h"

static int failures;

#define CHECK(condition, ...)                                   \
	do {                                                    \
		if (!(condition)) {                             \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__);                        \
			printf("\n");                               \
			failures++;                                 \
		}                                               \
	} while (0)

/* message as the gateway writes it. */
static char *written(const ProtobufCMessage *message)
{
	json_t *json = grpc_json_from_message(message);
	size_t length = 0;
	char *text = json != NULL ? grpc_json_dump(json, &length) : NULL;
	json_decref(json);
	return text != NULL ? text : strdup("(null)");
}

static void expect_written(const char *what, const ProtobufCMessage *message, const char *expected)
{
	char *text = written(message);
	CHECK(strcmp(text, expected) == 0, "%s:\n  got      %s\n  expected %s", what, text, expected);
	free(text);
}

/* JSON read into descriptor's message and written back. */
static void expect_round_trip(const ProtobufCMessageDescriptor *descriptor, const char *input, const char *expected)
{
	json_error_t parse_error;
	json_t *json = json_loads(input, JSON_DECODE_ANY, &parse_error);
	CHECK(json != NULL, "%s does not parse: %s", input, parse_error.text);
	if (json == NULL)
		return;
	char error[256] = "";
	ProtobufCMessage *message = grpc_json_to_message(descriptor, json, error, sizeof error);
	json_decref(json);
	CHECK(message != NULL, "%s refused: %s", input, error);
	if (message == NULL)
		return;
	expect_written(input, message, expected);
	protobuf_c_message_free_unpacked(message, NULL);
}

static void expect_refused(const ProtobufCMessageDescriptor *descriptor, const char *input, const char *expected)
{
	json_error_t parse_error;
	json_t *json = json_loads(input, JSON_DECODE_ANY, &parse_error);
	CHECK(json != NULL, "%s does not parse: %s", input, parse_error.text);
	if (json == NULL)
		return;
	char error[256] = "";
	ProtobufCMessage *message = grpc_json_to_message(descriptor, json, error, sizeof error);
	json_decref(json);
	CHECK(message == NULL, "%s was taken", input);
	if (message != NULL)
		protobuf_c_message_free_unpacked(message, NULL);
	CHECK(strcmp(error, expected) == 0, "%s:\n  got      %s\n  expected %s", input, error, expected);
}

static void expect_syntax_error(const char *input, const char *expected)
{
	json_error_t parse_error;
	json_t *json = json_loadb(input, strlen(input), JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &parse_error);
	CHECK(json == NULL, "%s parsed", input);
	json_decref(json);
	char error[256] = "";
	grpc_json_syntax_error(&parse_error, strlen(input), error, sizeof error);
	CHECK(strcmp(error, expected) == 0, "%s:\n  got      %s\n  expected %s", input, error, expected);
}

static void test_writing(void)
{
	Etcdserverpb__ResponseHeader header = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	header.cluster_id = 15464393345587868995u;
	header.member_id = 2172841939421890696u;
	header.revision = 4;
	header.raft_term = 2;
	Mvccpb__KeyValue first = MVCCPB__KEY_VALUE__INIT, second = MVCCPB__KEY_VALUE__INIT;
	first.key = (ProtobufCBinaryData){ 3, (uint8_t *)"foo" };
	first.create_revision = first.mod_revision = 2;
	first.version = 1;
	first.value = (ProtobufCBinaryData){ 3, (uint8_t *)"bar" };
	second.key = (ProtobufCBinaryData){ 4, (uint8_t *)"foo1" };
	second.create_revision = second.mod_revision = 3;
	second.version = 1;
	Mvccpb__KeyValue *kvs[] = { &first, &second };
	Etcdserverpb__RangeResponse range = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	range.header = &header;
	range.n_kvs = 2;
	range.kvs = kvs;
	range.more = 1;
	range.count = 3;
	expect_written("a range answer", &range.base,
		"{\"header\":{\"cluster_id\":\"15464393345587868995\",\"member_id\":\"2172841939421890696\",\"revision\":\"4\","
		"\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\","
		"\"value\":\"YmFy\"},{\"key\":\"Zm9vMQ==\",\"create_revision\":\"3\",\"mod_revision\":\"3\",\"version\":\"1\"}],"
		"\"more\":true,\"count\":\"3\"}");

	Etcdserverpb__RangeResponse empty = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	expect_written("an empty message", &empty.base, "{}");

	/* An event's type PUT is 0 and left out; DELETE is written by name; a negative int64 as a string. */
	Mvccpb__Event put = MVCCPB__EVENT__INIT, deleted = MVCCPB__EVENT__INIT;
	put.kv = &first;
	deleted.type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
	deleted.kv = &second;
	Mvccpb__Event *events[] = { &put, &deleted };
	Etcdserverpb__WatchResponse watch = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	watch.watch_id = -1;
	watch.created = 1;
	watch.n_events = 2;
	watch.events = events;
	expect_written("a watch answer", &watch.base,
		"{\"watch_id\":\"-1\",\"created\":true,\"events\":[{\"kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\","
		"\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9vMQ==\","
		"\"create_revision\":\"3\",\"mod_revision\":\"3\",\"version\":\"1\"}}]}");

	/* A set oneof member is written even when zero; an enum value with no name is a number (unquoted, as
	 * jsonpb writes it); the target VERSION is 0, left out. */
	Etcdserverpb__Compare compare = ETCDSERVERPB__COMPARE__INIT;
	compare.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION;
	compare.result = (Etcdserverpb__Compare__CompareResult)7;
	compare.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
	compare.version = 0;
	expect_written("a compare", &compare.base, "{\"result\":7,\"version\":\"0\"}");

	/* Strings as Go writes them: <, >, &, U+2028 escaped; bytes that are not UTF-8 as U+FFFD. */
	Etcdserverpb__AuthUserListResponse users = ETCDSERVERPB__AUTH_USER_LIST_RESPONSE__INIT;
	char *names[] = { "x<y&z>\xe2\x80\xa8", "bad\xff", "\xc3\xa9" };
	users.n_users = 3;
	users.users = names;
	expect_written("user names", &users.base,
		"{\"users\":[\"x\\u003cy\\u0026z\\u003e\\u2028\",\"bad\xef\xbf\xbd\",\"\xc3\xa9\"]}");
}

static void test_reading(void)
{
	expect_round_trip(&etcdserverpb__range_request__descriptor,
		"{\"key\":\"Zm9v\",\"rangeEnd\":\"Zm9w\",\"limit\":\"2\",\"revision\":5,\"sort_order\":\"DESCEND\",\"sortTarget\":2,"
		"\"keys_only\":true,\"bogus\":[1],\"count_only\":null}",
		"{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\",\"limit\":\"2\",\"revision\":\"5\",\"sort_order\":\"DESCEND\","
		"\"sort_target\":\"CREATE\",\"keys_only\":true}");
	expect_round_trip(&etcdserverpb__range_request__descriptor, "null", "{}");
	expect_round_trip(&etcdserverpb__txn_request__descriptor,
		"{\"compare\":[{\"target\":\"CREATE\",\"key\":\"Zm9v\",\"createRevision\":\"2\",\"mod_revision\":\"9\"}],"
		"\"success\":[{\"requestPut\":{\"key\":\"Zm9v\",\"value\":\"YmFy\",\"lease\":\"7587\"}}],\"failure\":[]}",
		"{\"compare\":[{\"target\":\"CREATE\",\"key\":\"Zm9v\",\"create_revision\":\"2\"}],"
		"\"success\":[{\"request_put\":{\"key\":\"Zm9v\",\"value\":\"YmFy\",\"lease\":\"7587\"}}]}");
	expect_round_trip(&etcdserverpb__member_add_request__descriptor,
		"{\"peerURLs\":[\"http://127.0.0.1:2380\",\"http://[::1]:2380\"],\"isLearner\":true}",
		"{\"peerURLs\":[\"http://127.0.0.1:2380\",\"http://[::1]:2380\"],\"isLearner\":true}");
	expect_round_trip(&etcdserverpb__lease_grant_request__descriptor, "{\"TTL\":30,\"ID\":\"-5\"}",
		"{\"TTL\":\"30\",\"ID\":\"-5\"}");
	expect_round_trip(&etcdserverpb__member_remove_request__descriptor, "{\"ID\":\"18446744073709551615\"}",
		"{\"ID\":\"18446744073709551615\"}");
}

static void test_errors(void)
{
	const ProtobufCMessageDescriptor *range = &etcdserverpb__range_request__descriptor;
	expect_refused(range, "[1]", "json: cannot unmarshal array into Go value of type map[string]json.RawMessage");
	expect_refused(range, "{\"key\":1}", "json: cannot unmarshal number into Go value of type []uint8");
	expect_refused(range, "{\"key\":\"YQ=\"}", "illegal base64 data at input byte 3");
	expect_refused(range, "{\"key\":\"YQ\"}", "illegal base64 data at input byte 0");
	expect_refused(range, "{\"key\":\"Y Q==\"}", "illegal base64 data at input byte 1");
	expect_refused(range, "{\"key\":\"YQ==YQ==\"}", "illegal base64 data at input byte 4");
	expect_refused(range, "{\"limit\":1.5}", "json: cannot unmarshal number 1.5 into Go value of type int64");
	expect_refused(range, "{\"limit\":\"abc\"}", "invalid character 'a' looking for beginning of value");
	expect_refused(range, "{\"limit\":\"-1x\"}", "invalid character 'x' after top-level value");
	expect_refused(range, "{\"serializable\":\"yes\"}", "json: cannot unmarshal string into Go value of type bool");
	expect_refused(range, "{\"sort_order\":\"BOGUS\"}",
		"unknown value \"BOGUS\" for enum etcdserverpb.RangeRequest_SortOrder");
	expect_refused(&etcdserverpb__txn_request__descriptor, "{\"success\":{\"a\":1}}",
		"json: cannot unmarshal object into Go value of type []json.RawMessage");
	expect_refused(&etcdserverpb__lease_grant_request__descriptor, "{\"ID\":\"18446744073709551615\"}",
		"json: cannot unmarshal number 18446744073709551615 into Go value of type int64");
	expect_refused(&etcdserverpb__lease_keep_alive_request__descriptor, "{\"ID\":true}",
		"json: cannot unmarshal bool into Go value of type int64");

	expect_syntax_error("{\"key\":\"Zm9v\"", "unexpected EOF");
	expect_syntax_error("{\"key\":\"Zm9v\",}", "invalid character '}' looking for beginning of object key string");
	expect_syntax_error("{\"key\" \"Zm9v\"}", "invalid character '\"' after object key");
	expect_syntax_error("{\"key\":\"Zm9v\" : 1}", "invalid character ':' after object key:value pair");
	expect_syntax_error("{\"a\":[1,2}", "invalid character '}' after array element");
	expect_syntax_error("xyz", "invalid character 'x' looking for beginning of value");
	expect_syntax_error("{\"a\":1,\xc3\xa9}", "invalid character '\xc3\x83' looking for beginning of object key string");

	size_t length = 0;
	char *fixed = grpc_json_fix_utf8("ok", 2, &length);
	CHECK(fixed == NULL, "valid UTF-8 copied");
	fixed = grpc_json_fix_utf8("a\xc0\xafz\xed\xa0\x80", 7, &length);
	CHECK(fixed != NULL && length == 2 + 3 * 5 && memcmp(fixed, "a\xef\xbf\xbd\xef\xbf\xbdz", 8) == 0,
		"an overlong '/' and a surrogate are not UTF-8 (each byte a U+FFFD, as Go's decoder)");
	free(fixed);
}

int main(void)
{
	test_writing();
	test_reading();
	test_errors();
	printf("%d failure(s)\n", failures);
	return failures != 0;
}
