/* control/grpc/grpc_json.c: protobuf messages ⇄ JSON through protobuf-c's descriptors, as etcd 3.4's
 * gateway (grpc-gateway's JSONPb{OrigName: true}) spells them. The rules are in grpc_json.h. */
#include "grpc_json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMBER(type, message, offset) (*(type *)((char *)(message) + (offset)))

static size_t element_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* ---- writing ---- */

static json_t *base64_string(const uint8_t *data, size_t length)
{
	size_t encoded_length = 4 * ((length + 2) / 3);
	char *encoded = malloc(encoded_length + 1);
	if (encoded == NULL)
		return NULL;
	if (length > 0)
		EVP_EncodeBlock((unsigned char *)encoded, data, (int)length);
	encoded[encoded_length] = '\0';
	json_t *value = json_stringn_nocheck(encoded, encoded_length);
	free(encoded);
	return value;
}

/* The length of the valid UTF-8 sequence at text (at most length bytes), 0 when there is none. */
static size_t utf8_sequence(const unsigned char *text, size_t length)
{
	unsigned char c = text[0];
	size_t need;
	uint32_t point;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 2;
		point = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		point = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		point = c & 0x07;
	} else {
		return 0;
	}
	if (length < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((text[i] & 0xC0) != 0x80)
			return 0;
		point = point << 6 | (text[i] & 0x3F);
	}
	bool overlong = (need == 3 && point < 0x800) || (need == 4 && point < 0x10000);
	if (overlong || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF))
		return 0;
	return need;
}

char *grpc_json_fix_utf8(const char *text, size_t length, size_t *fixed_length)
{
	size_t at = 0;
	while (at < length && utf8_sequence((const unsigned char *)text + at, length - at) != 0)
		at += utf8_sequence((const unsigned char *)text + at, length - at);
	if (at == length)
		return NULL;
	char *fixed = malloc(3 * length + 1);
	if (fixed == NULL)
		return NULL;
	size_t used = 0;
	for (at = 0; at < length;) {
		size_t sequence = utf8_sequence((const unsigned char *)text + at, length - at);
		if (sequence == 0) {
			memcpy(fixed + used, "\xEF\xBF\xBD", 3);
			used += 3;
			at++;
		} else {
			memcpy(fixed + used, text + at, sequence);
			used += sequence;
			at += sequence;
		}
	}
	fixed[used] = '\0';
	*fixed_length = used;
	return fixed;
}

/* A JSON string of text; bytes that are not UTF-8 become U+FFFD, as Go's encoder writes them. */
static json_t *string_json(const char *text)
{
	size_t length = strlen(text), fixed_length;
	char *fixed = grpc_json_fix_utf8(text, length, &fixed_length);
	if (fixed == NULL)
		return json_stringn_nocheck(text, length);
	json_t *value = json_stringn_nocheck(fixed, fixed_length);
	free(fixed);
	return value;
}

static json_t *value_json(const ProtobufCFieldDescriptor *field, const void *slot)
{
	char text[32];
	switch (field->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)slot);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)slot);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		snprintf(text, sizeof text, "%" PRId64, *(const int64_t *)slot);
		return json_string(text);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(text, sizeof text, "%" PRIu64, *(const uint64_t *)slot);
		return json_string(text);
	case PROTOBUF_C_TYPE_FLOAT:
		return json_real(*(const float *)slot);
	case PROTOBUF_C_TYPE_DOUBLE:
		return json_real(*(const double *)slot);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)slot);
	case PROTOBUF_C_TYPE_ENUM: {
		int32_t number = *(const int32_t *)slot;
		const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value(field->descriptor, number);
		return value != NULL ? json_string(value->name) : json_integer(number);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *string = *(char *const *)slot;
		return string_json(string != NULL ? string : "");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *bytes = slot;
		return base64_string(bytes->data, bytes->len);
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *message = *(ProtobufCMessage *const *)slot;
		return message != NULL ? grpc_json_from_message(message) : json_object();
	}
	}
	return json_null();
}

static bool is_zero(const ProtobufCFieldDescriptor *field, const void *slot)
{
	switch (field->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return *(const uint32_t *)slot == 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)slot == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)slot == 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)slot == 0;
	case PROTOBUF_C_TYPE_BOOL:
		return !*(const protobuf_c_boolean *)slot;
	case PROTOBUF_C_TYPE_STRING: {
		const char *string = *(char *const *)slot;
		return string == NULL || string[0] == '\0';
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)slot)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)slot == NULL;
	}
	return true;
}

json_t *grpc_json_from_message(const ProtobufCMessage *message)
{
	const ProtobufCMessageDescriptor *descriptor = message->descriptor;
	json_t *object = json_object();
	if (object == NULL)
		return NULL;
	for (unsigned i = 0; i < descriptor->n_fields; i++) {
		const ProtobufCFieldDescriptor *field = &descriptor->fields[i];
		const void *slot = (const char *)message + field->offset;
		json_t *value = NULL;
		if (field->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t count = MEMBER(size_t, message, field->quantifier_offset);
			if (count == 0)
				continue;
			const char *elements = *(char *const *)slot;
			value = json_array();
			for (size_t k = 0; value != NULL && k < count; k++)
				if (json_array_append_new(value, value_json(field, elements + k * element_size(field->type))) != 0) {
					json_decref(value);
					value = NULL;
				}
		} else if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (MEMBER(uint32_t, message, field->quantifier_offset) != field->id)
				continue;
			value = value_json(field, slot);
		} else if (field->label == PROTOBUF_C_LABEL_OPTIONAL && field->type != PROTOBUF_C_TYPE_MESSAGE &&
			field->type != PROTOBUF_C_TYPE_STRING) {
			if (!MEMBER(protobuf_c_boolean, message, field->quantifier_offset))
				continue;
			value = value_json(field, slot);
		} else {
			if (is_zero(field, slot))
				continue;
			value = value_json(field, slot);
		}
		if (value == NULL || json_object_set_new_nocheck(object, field->name, value) != 0) {
			json_decref(object);
			return NULL;
		}
	}
	return object;
}

/* ---- reading ---- */

/* protoc's JSON name: underscores dropped, the letter after one upper-cased ("create_revision" →
 * "createRevision"). */
static void camel_name(const char *name, char *out, size_t size)
{
	size_t used = 0;
	bool upper = false;
	for (const char *c = name; *c != '\0' && used + 1 < size; c++) {
		if (*c == '_') {
			upper = true;
			continue;
		}
		out[used++] = upper && *c >= 'a' && *c <= 'z' ? (char)(*c - 'a' + 'A') : *c;
		upper = false;
	}
	out[used] = '\0';
}

static const char *json_kind(const json_t *value)
{
	switch (json_typeof(value)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER:
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "bool";
	case JSON_NULL: return "null";
	}
	return "value";
}

static const char *go_type(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_ENUM: return "int32";
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: return "uint32";
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: return "int64";
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: return "uint64";
	case PROTOBUF_C_TYPE_FLOAT: return "float32";
	case PROTOBUF_C_TYPE_DOUBLE: return "float64";
	case PROTOBUF_C_TYPE_BOOL: return "bool";
	case PROTOBUF_C_TYPE_STRING: return "string";
	case PROTOBUF_C_TYPE_BYTES: return "[]uint8";
	case PROTOBUF_C_TYPE_MESSAGE: return "struct";
	}
	return "value";
}

static int mismatch(const ProtobufCFieldDescriptor *field, const json_t *value, char *err, size_t errlen)
{
	snprintf(err, errlen, "json: cannot unmarshal %s into Go value of type %s", json_kind(value), go_type(field->type));
	return -1;
}

/* An integer field's value: a JSON number, or a string holding one (jsonpb unquotes and reads the rest
 * as JSON, hence Go's scanner words for a string that is not a number). */
static int read_integer(const ProtobufCFieldDescriptor *field, const json_t *value, bool is_unsigned, int64_t *signed_out,
	uint64_t *unsigned_out, char *err, size_t errlen)
{
	if (json_is_integer(value)) {
		json_int_t number = json_integer_value(value);
		if (is_unsigned && number < 0) {
			snprintf(err, errlen, "json: cannot unmarshal number %" JSON_INTEGER_FORMAT " into Go value of type %s",
				number, go_type(field->type));
			return -1;
		}
		*signed_out = number;
		*unsigned_out = (uint64_t)number;
		return 0;
	}
	if (json_is_real(value)) {
		double number = json_real_value(value);
		if (number != floor(number) || (is_unsigned && number < 0) || fabs(number) > 9.2e18) {
			snprintf(err, errlen, "json: cannot unmarshal number %g into Go value of type %s", number, go_type(field->type));
			return -1;
		}
		*signed_out = (int64_t)number;
		*unsigned_out = (uint64_t)number;
		return 0;
	}
	if (!json_is_string(value))
		return mismatch(field, value, err, errlen);
	const char *text = json_string_value(value);
	if (text[0] != '-' && (text[0] < '0' || text[0] > '9')) {
		if (text[0] == '\0')
			snprintf(err, errlen, "unexpected end of JSON input");
		else
			snprintf(err, errlen, "invalid character '%c' looking for beginning of value", text[0]);
		return -1;
	}
	char *end;
	errno = 0;
	if (is_unsigned) {
		if (text[0] == '-') {
			snprintf(err, errlen, "json: cannot unmarshal number %s into Go value of type %s", text, go_type(field->type));
			return -1;
		}
		*unsigned_out = strtoull(text, &end, 10);
		*signed_out = (int64_t)*unsigned_out;
	} else {
		*signed_out = strtoll(text, &end, 10);
		*unsigned_out = (uint64_t)*signed_out;
	}
	if (end != text && *end != '\0' && *end != '.' && *end != 'e' && *end != 'E') {
		/* jsonpb reads the unquoted text as JSON: a number followed by something else. */
		snprintf(err, errlen, "invalid character '%c' after top-level value", *end);
		return -1;
	}
	if (errno != 0 || *end != '\0') {
		snprintf(err, errlen, "json: cannot unmarshal number %s into Go value of type %s", text, go_type(field->type));
		return -1;
	}
	return 0;
}

/* Go's name of an enum type: the package, then the nesting joined by '_' ("etcdserverpb.RangeRequest_SortOrder"). */
static void go_enum_name(const ProtobufCEnumDescriptor *descriptor, char *out, size_t size)
{
	size_t package_length = descriptor->package_name != NULL ? strlen(descriptor->package_name) : 0;
	snprintf(out, size, "%s", descriptor->name);
	for (char *c = out + (package_length > 0 ? package_length + 1 : 0); c < out + strlen(out); c++)
		if (*c == '.')
			*c = '_';
}

static bool base64_letter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Go's StdEncoding.Decode's verdict, with its error offsets (EVP_DecodeBlock would take whitespace and
 * misplaced padding); SIZE_MAX when valid. *padding: the '=' at the end. */
static size_t base64_invalid_at(const char *text, size_t length, size_t *padding)
{
	*padding = 0;
	size_t at = 0;
	while (at < length) {
		for (size_t j = 0; j < 4; j++) {
			if (at == length)
				return j == 0 ? SIZE_MAX : at - j;
			char c = text[at++];
			if (base64_letter(c))
				continue;
			if (c != '=' || j < 2)
				return at - 1;
			if (j == 2) {
				if (at == length)
					return length;
				if (text[at] != '=')
					return at - 1;
				at++;
			}
			*padding = 4 - j;
			return at < length ? at : SIZE_MAX;
		}
	}
	return SIZE_MAX;
}

static int base64_decode(const char *text, ProtobufCBinaryData *out, char *err, size_t errlen)
{
	size_t length = strlen(text);
	out->len = 0;
	out->data = NULL;
	if (length == 0)
		return 0;
	size_t padding;
	size_t invalid = base64_invalid_at(text, length, &padding);
	if (invalid != SIZE_MAX) {
		snprintf(err, errlen, "illegal base64 data at input byte %zu", invalid);
		return -1;
	}
	out->data = malloc(length / 4 * 3 + 1);
	if (out->data == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int decoded = EVP_DecodeBlock(out->data, (const unsigned char *)text, (int)length);
	if (decoded < 0) {
		free(out->data);
		out->data = NULL;
		snprintf(err, errlen, "illegal base64 data at input byte 0");
		return -1;
	}
	out->len = (size_t)decoded - padding;
	return 0;
}

static int read_value(const ProtobufCFieldDescriptor *field, const json_t *value, void *slot, char *err, size_t errlen)
{
	int64_t signed_value = 0;
	uint64_t unsigned_value = 0;
	switch (field->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (read_integer(field, value, false, &signed_value, &unsigned_value, err, errlen) != 0)
			return -1;
		if (signed_value < INT32_MIN || signed_value > INT32_MAX) {
			snprintf(err, errlen, "json: cannot unmarshal number %" PRId64 " into Go value of type int32", signed_value);
			return -1;
		}
		*(int32_t *)slot = (int32_t)signed_value;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (read_integer(field, value, true, &signed_value, &unsigned_value, err, errlen) != 0)
			return -1;
		if (unsigned_value > UINT32_MAX) {
			snprintf(err, errlen, "json: cannot unmarshal number %" PRIu64 " into Go value of type uint32", unsigned_value);
			return -1;
		}
		*(uint32_t *)slot = (uint32_t)unsigned_value;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (read_integer(field, value, false, &signed_value, &unsigned_value, err, errlen) != 0)
			return -1;
		*(int64_t *)slot = signed_value;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (read_integer(field, value, true, &signed_value, &unsigned_value, err, errlen) != 0)
			return -1;
		*(uint64_t *)slot = unsigned_value;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		if (!json_is_number(value))
			return mismatch(field, value, err, errlen);
		if (field->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)slot = (float)json_number_value(value);
		else
			*(double *)slot = json_number_value(value);
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(value))
			return mismatch(field, value, err, errlen);
		*(protobuf_c_boolean *)slot = json_is_true(value);
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *enum_descriptor = field->descriptor;
		char name[256];
		if (json_is_string(value)) {
			const ProtobufCEnumValue *named =
				protobuf_c_enum_descriptor_get_value_by_name(enum_descriptor, json_string_value(value));
			if (named == NULL) {
				go_enum_name(enum_descriptor, name, sizeof name);
				snprintf(err, errlen, "unknown value \"%s\" for enum %s", json_string_value(value), name);
				return -1;
			}
			*(int32_t *)slot = named->value;
			return 0;
		}
		if (read_integer(field, value, false, &signed_value, &unsigned_value, err, errlen) != 0)
			return -1;
		*(int32_t *)slot = (int32_t)signed_value;
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING: {
		if (!json_is_string(value))
			return mismatch(field, value, err, errlen);
		char *copy = strndup(json_string_value(value), json_string_length(value));
		if (copy == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		*(char **)slot = copy;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES:
		if (!json_is_string(value))
			return mismatch(field, value, err, errlen);
		return base64_decode(json_string_value(value), slot, err, errlen);
	case PROTOBUF_C_TYPE_MESSAGE: {
		if (!json_is_object(value))
			return mismatch(field, value, err, errlen);
		ProtobufCMessage *message = grpc_json_to_message(field->descriptor, value, err, errlen);
		if (message == NULL)
			return -1;
		*(ProtobufCMessage **)slot = message;
		return 0;
	}
	}
	snprintf(err, errlen, "unsupported field type");
	return -1;
}

ProtobufCMessage *grpc_json_to_message(const ProtobufCMessageDescriptor *descriptor, const json_t *json, char *err,
	size_t errlen)
{
	bool null = json_is_null(json); /* Go's decoder leaves the message as it was */
	if (!null && !json_is_object(json)) {
		snprintf(err, errlen, "json: cannot unmarshal %s into Go value of type map[string]json.RawMessage",
			json_kind(json));
		return NULL;
	}
	ProtobufCMessage *message = calloc(1, descriptor->sizeof_message);
	if (message == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	descriptor->message_init(message);
	for (unsigned i = 0; !null && i < descriptor->n_fields; i++) {
		const ProtobufCFieldDescriptor *field = &descriptor->fields[i];
		json_t *value = json_object_get(json, field->name);
		if (value == NULL) {
			char camel[256];
			camel_name(field->name, camel, sizeof camel);
			value = json_object_get(json, camel);
		}
		if (value == NULL || json_is_null(value))
			continue;
		void *slot = (char *)message + field->offset;
		if (field->label == PROTOBUF_C_LABEL_REPEATED) {
			if (!json_is_array(value)) {
				/* jsonpb reads a list into []json.RawMessage first. */
				snprintf(err, errlen, "json: cannot unmarshal %s into Go value of type []json.RawMessage",
					json_kind(value));
				goto failed;
			}
			size_t count = json_array_size(value);
			if (count == 0)
				continue;
			size_t size = element_size(field->type);
			char *elements = calloc(count, size);
			if (elements == NULL) {
				snprintf(err, errlen, "out of memory");
				goto failed;
			}
			/* Set before the elements are read, so a failure part-way frees what was read. */
			*(char **)slot = elements;
			for (size_t k = 0; k < count; k++) {
				if (read_value(field, json_array_get(value, k), elements + k * size, err, errlen) != 0)
					goto failed;
				MEMBER(size_t, message, field->quantifier_offset) = k + 1;
			}
			continue;
		}
		if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			/* The first member of a oneof given wins; another would share its storage. */
			if (MEMBER(uint32_t, message, field->quantifier_offset) != 0)
				continue;
			if (read_value(field, value, slot, err, errlen) != 0)
				goto failed;
			MEMBER(uint32_t, message, field->quantifier_offset) = field->id;
			continue;
		}
		if (read_value(field, value, slot, err, errlen) != 0)
			goto failed;
		if (field->label == PROTOBUF_C_LABEL_OPTIONAL && field->type != PROTOBUF_C_TYPE_MESSAGE &&
			field->type != PROTOBUF_C_TYPE_STRING)
			MEMBER(protobuf_c_boolean, message, field->quantifier_offset) = 1;
	}
	return message;
failed:
	protobuf_c_message_free_unpacked(message, NULL);
	return NULL;
}

char *grpc_json_dump(const json_t *json, size_t *length)
{
	char *text = json_dumps(json, JSON_COMPACT);
	if (text == NULL)
		return NULL;
	/* Go's encoder escapes <, > and & (HTML-safe), U+2028 and U+2029, and writes \b and \f as \u escapes.
	 * None of these bytes is JSON's own syntax, so they are in strings wherever they are. */
	size_t extra = 0;
	for (const char *c = text; *c != '\0'; c++)
		if (*c == '<' || *c == '>' || *c == '&' || (c[0] == '\\' && (c[1] == 'b' || c[1] == 'f')) ||
			((unsigned char)c[0] == 0xE2 && (unsigned char)c[1] == 0x80 &&
				((unsigned char)c[2] == 0xA8 || (unsigned char)c[2] == 0xA9)))
			extra += 5;
	if (extra == 0) {
		*length = strlen(text);
		return text;
	}
	char *escaped = malloc(strlen(text) + extra + 1);
	if (escaped == NULL) {
		free(text);
		return NULL;
	}
	size_t used = 0;
	for (const char *c = text; *c != '\0'; c++) {
		const char *replacement = NULL;
		size_t skip = 0;
		if (*c == '<')
			replacement = "\\u003c";
		else if (*c == '>')
			replacement = "\\u003e";
		else if (*c == '&')
			replacement = "\\u0026";
		else if (c[0] == '\\' && (c[1] == 'b' || c[1] == 'f'))
			replacement = c[1] == 'b' ? "\\u0008" : "\\u000c", skip = 1;
		else if ((unsigned char)c[0] == 0xE2 && (unsigned char)c[1] == 0x80 &&
			((unsigned char)c[2] == 0xA8 || (unsigned char)c[2] == 0xA9))
			replacement = (unsigned char)c[2] == 0xA8 ? "\\u2028" : "\\u2029", skip = 2;
		else if (c[0] == '\\' && c[1] != '\0') {
			/* Another escape: copied whole, so that its second byte is not taken for one of the above. */
			escaped[used++] = *c++;
			escaped[used++] = *c;
			continue;
		}
		if (replacement != NULL) {
			memcpy(escaped + used, replacement, 6);
			used += 6;
			c += skip;
		} else {
			escaped[used++] = *c;
		}
	}
	escaped[used] = '\0';
	free(text);
	*length = used;
	return escaped;
}

void grpc_json_syntax_error(const json_error_t *error, size_t input_length, char *err, size_t errlen)
{
	/* jansson: "'}' expected near 'x'", "invalid token near 'abc'", "... near end of file". */
	(void)input_length;
	const char *near = strstr(error->text, "near '");
	if (near == NULL || near[6] == '\0' || strstr(error->text, "end of file") != NULL) {
		snprintf(err, errlen, "unexpected EOF");
		return;
	}
	/* Go's scanner quotes the offending byte as if it were a rune: 0xC3, the start of "é", is 'Ã'. */
	char character[4];
	unsigned char byte = (unsigned char)near[6];
	if (byte < 0x80)
		snprintf(character, sizeof character, "%c", byte);
	else
		snprintf(character, sizeof character, "%c%c", 0xC0 | byte >> 6, 0x80 | (byte & 0x3F));
	const char *context = "looking for beginning of value";
	if (strstr(error->text, "string or '}' expected") != NULL)
		context = "looking for beginning of object key string";
	else if (strstr(error->text, "':' expected") != NULL)
		context = "after object key";
	else if (strstr(error->text, "'}' expected") != NULL)
		context = "after object key:value pair";
	else if (strstr(error->text, "']' expected") != NULL)
		context = "after array element";
	if (strcmp(character, "'") == 0)
		snprintf(err, errlen, "invalid character '\\'' %s", context);
	else
		snprintf(err, errlen, "invalid character '%s' %s", character, context);
}
