/* control/grpc/grpc_json.h: protobuf messages as JSON the way etcd 3.4's gRPC gateway reads and writes
 * them (grpc-gateway's JSONPb marshaler with OrigName and without EmitDefaults), for any message,
 * driven by protobuf-c's descriptors:
 *
 * - keys are the .proto field names ("create_revision", "ID", "peerURLs"); reading also takes the
 *   lowerCamelCase JSON names ("createRevision"), and ignores unknown keys and nulls;
 * - 64-bit integers are strings ("revision":"7"), read from strings or numbers; 32-bit ones numbers;
 * - bytes are standard base64 with padding; enums their value names (numbers are read too);
 * - zero scalars, empty strings and bytes, empty repeated fields and absent messages are left out;
 *   a oneof member that is set is written even when zero; fields come in declaration order. */
#ifndef QUORUMD_CONTROL_GRPC_JSON_H
#define QUORUMD_CONTROL_GRPC_JSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* A new JSON object for message (never NULL but out of memory, which aborts through jansson's
 * allocator returning NULL: the caller checks). */
json_t *grpc_json_from_message(const ProtobufCMessage *message);

/* A new message of descriptor's type from a JSON object; free it with
 * protobuf_c_message_free_unpacked(message, NULL). NULL with a message in Go's words (the gateway's
 * error text) when a value does not fit its field. */
ProtobufCMessage *grpc_json_to_message(const ProtobufCMessageDescriptor *descriptor, const json_t *json, char *err,
	size_t errlen);

/* text with every byte that is not part of valid UTF-8 replaced by U+FFFD, as Go's JSON decoder and
 * encoder read and write strings: a malloc'd copy of *fixed_length bytes, or NULL when text is valid
 * already (or out of memory). */
char *grpc_json_fix_utf8(const char *text, size_t length, size_t *fixed_length);

/* json as Go's encoder writes it: compact, with <, >, &, U+2028, U+2029 escaped (\u003c ...). A malloc'd
 * string of *length bytes, NULL when out of memory. */
char *grpc_json_dump(const json_t *json, size_t *length);

/* jansson's parse error of an input of input_length bytes in the words of Go's encoding/json, which
 * etcd's gateway answers: "unexpected EOF", "invalid character 'x' looking for beginning of value". */
void grpc_json_syntax_error(const json_error_t *error, size_t input_length, char *err, size_t errlen);

#endif
