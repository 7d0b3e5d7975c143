/* control/etcd/space_quota.c: etcd 3.4's space quota and alarm store (space_quota.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "space_quota.h"

/* The state bucket of the alarms (etcd's "alarm" bucket). A record's name is the member id and the type,
 * big-endian, so a scan lists them ordered by member; its value is nothing (the name says it all). */
enum { BUCKET_ALARMS = 'A' };

/* etcd's costs (quota.go). */
enum { KV_OVERHEAD = 256 };

int64_t space_quota_bytes(int64_t flag_value)
{
	if (flag_value < 0)
		return 0;
	return flag_value == 0 ? SPACE_QUOTA_DEFAULT_BYTES : flag_value;
}

void space_quota_format_bytes(uint64_t bytes, char *out, size_t size)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
	if (bytes < 10) {
		snprintf(out, size, "%" PRIu64 " B", bytes);
		return;
	}
	int exponent = 0;
	double scale = 1;
	for (uint64_t rest = bytes; rest >= 1000 && exponent < 6; rest /= 1000) {
		exponent++;
		scale *= 1000;
	}
	double value = (double)(uint64_t)((double)bytes / scale * 10 + 0.5) / 10;
	snprintf(out, size, value < 10 ? "%.1f %s" : "%.0f %s", value, units[exponent]);
}

void space_quota_log(int64_t flag_value)
{
	if (flag_value < 0) {
		log_write("info", "disabled backend quota", "\"quota-name\":\"v3-applier\",\"quota-size-bytes\":%" PRId64,
		          flag_value);
		return;
	}
	int64_t quota = space_quota_bytes(flag_value);
	char human[32];
	space_quota_format_bytes((uint64_t)quota, human, sizeof(human));
	if (flag_value == 0) {
		log_write("info", "enabled backend quota with default value",
		          "\"quota-name\":\"v3-applier\",\"quota-size-bytes\":%" PRId64 ",\"quota-size\":\"%s\"", quota, human);
		return;
	}
	if (quota > SPACE_QUOTA_MAX_BYTES) {
		char maximum[32];
		space_quota_format_bytes((uint64_t)SPACE_QUOTA_MAX_BYTES, maximum, sizeof(maximum));
		log_write("warn", "quota exceeds the maximum value",
		          "\"quota-name\":\"v3-applier\",\"quota-size-bytes\":%" PRId64 ",\"quota-size\":\"%s\","
		          "\"quota-maximum-size-bytes\":%" PRId64 ",\"quota-maximum-size\":\"%s\"",
		          quota, human, SPACE_QUOTA_MAX_BYTES, maximum);
	}
	log_write("info", "enabled backend quota",
	          "\"quota-name\":\"v3-applier\",\"quota-size-bytes\":%" PRId64 ",\"quota-size\":\"%s\"", quota, human);
}

int64_t space_quota_cost_put(const Etcdserverpb__PutRequest *put)
{
	return KV_OVERHEAD + (int64_t)put->key.len + (int64_t)put->value.len;
}

static int64_t cost_ops(Etcdserverpb__RequestOp *const *ops, size_t count)
{
	int64_t cost = 0;
	for (size_t k = 0; k < count; k++) {
		if (ops[k]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT)
			cost += space_quota_cost_put(ops[k]->request_put);
		else if (ops[k]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN)
			cost += space_quota_cost_txn(ops[k]->request_txn);
	}
	return cost;
}

int64_t space_quota_cost_txn(const Etcdserverpb__TxnRequest *txn)
{
	int64_t success = cost_ops(txn->success, txn->n_success);
	int64_t failure = cost_ops(txn->failure, txn->n_failure);
	return success > failure ? success : failure;
}

bool space_quota_available(uint64_t db_size, int64_t cost, int64_t quota)
{
	/* A request that writes nothing (a txn of reads and deletes) passes, as in etcd 3.4. */
	if (quota <= 0 || cost == 0)
		return true;
	return (int64_t)db_size + cost < quota;
}

/* ---- alarms ---- */

static const char *type_name(Etcdserverpb__AlarmType type)
{
	const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value(&etcdserverpb__alarm_type__descriptor, type);
	return value ? value->name : "UNKNOWN";
}

void alarm_entry_format(const struct alarm_entry *entry, char *out, size_t size)
{
	snprintf(out, size, "memberID:%" PRIu64 " alarm:%s ", entry->member_id, type_name(entry->type));
}

static int compare_entries(const struct alarm_entry *a, const struct alarm_entry *b)
{
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if (a->member_id != b->member_id)
		return a->member_id < b->member_id ? -1 : 1;
	return 0;
}

/* Where the entry is, or would go (*found says which). */
static size_t find_entry(const struct alarm_list *list, const struct alarm_entry *entry, bool *found)
{
	size_t at = 0;
	while (at < list->count && compare_entries(&list->entries[at], entry) < 0)
		at++;
	*found = at < list->count && compare_entries(&list->entries[at], entry) == 0;
	return at;
}

static void insert_entry(struct alarm_list *list, size_t at, const struct alarm_entry *entry)
{
	list->entries = xrealloc(list->entries, (list->count + 1) * sizeof(*list->entries));
	memmove(list->entries + at + 1, list->entries + at, (list->count - at) * sizeof(*list->entries));
	list->entries[at] = *entry;
	list->count++;
}

static void encode_name(const struct alarm_entry *entry, uint8_t name[12])
{
	for (int k = 0; k < 8; k++)
		name[k] = (uint8_t)(entry->member_id >> (56 - 8 * k));
	uint32_t type = (uint32_t)entry->type;
	for (int k = 0; k < 4; k++)
		name[8 + k] = (uint8_t)(type >> (24 - 8 * k));
}

static int load_record(void *context, struct state_bytes name, struct state_bytes value)
{
	(void)value;
	struct alarm_list *list = context;
	if (name.len != 12)
		return STATE_ERR_CORRUPT;
	struct alarm_entry entry = {0, 0};
	for (int k = 0; k < 8; k++)
		entry.member_id = entry.member_id << 8 | name.data[k];
	uint32_t type = 0;
	for (int k = 0; k < 4; k++)
		type = type << 8 | name.data[8 + k];
	entry.type = (Etcdserverpb__AlarmType)type;
	bool found;
	size_t at = find_entry(list, &entry, &found);
	if (!found)
		insert_entry(list, at, &entry);
	return 0;
}

int alarm_list_load(struct state *state, struct alarm_list *out, char *err, size_t errlen)
{
	out->entries = NULL;
	out->count = 0;
	char error[256] = "";
	int status = state_bucket_scan(state, BUCKET_ALARMS, load_record, out, error, sizeof(error));
	if (status != STATE_OK) {
		snprintf(err, errlen, "loading the alarms: %s", error[0] ? error : state_status_message(status));
		alarm_list_free(out);
		return -1;
	}
	return 0;
}

void alarm_list_free(struct alarm_list *list)
{
	free(list->entries);
	list->entries = NULL;
	list->count = 0;
}

int alarm_list_copy(struct alarm_list *to, const struct alarm_list *from)
{
	to->count = from->count;
	to->entries = from->count ? xmalloc(from->count * sizeof(*from->entries)) : NULL;
	if (from->count)
		memcpy(to->entries, from->entries, from->count * sizeof(*from->entries));
	return 0;
}

bool alarm_list_has(const struct alarm_list *list, Etcdserverpb__AlarmType type)
{
	for (size_t k = 0; k < list->count; k++)
		if (list->entries[k].type == type)
			return true;
	return false;
}

bool alarm_list_has_member(const struct alarm_list *list, uint64_t member_id, Etcdserverpb__AlarmType type)
{
	struct alarm_entry entry = {member_id, type};
	bool found;
	find_entry(list, &entry, &found);
	return found;
}

int alarm_apply(struct alarm_list *list, struct state *state, const Etcdserverpb__AlarmRequest *request,
                const struct kv_header *header, struct kv_result *result, bool *changed, char *err, size_t errlen)
{
	memset(result, 0, sizeof(*result));
	*changed = false;
	struct alarm_entry *answered = NULL;
	size_t answered_count = 0;
	struct alarm_entry entry = {request->memberid, request->alarm};
	char state_error[256] = "";
	switch (request->action) {
	case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET:
		answered = xcalloc(list->count + 1, sizeof(*answered));
		for (size_t k = 0; k < list->count; k++)
			if (request->alarm == ETCDSERVERPB__ALARM_TYPE__NONE || list->entries[k].type == request->alarm)
				answered[answered_count++] = list->entries[k];
		break;
	case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE: {
		if (request->alarm == ETCDSERVERPB__ALARM_TYPE__NONE)
			break;
		bool found;
		size_t at = find_entry(list, &entry, &found);
		answered = xcalloc(1, sizeof(*answered));
		answered[answered_count++] = entry;
		if (found)
			break;
		bool first_of_type = !alarm_list_has(list, entry.type);
		uint8_t name[12];
		encode_name(&entry, name);
		if (state_bucket_put(state, BUCKET_ALARMS, (struct state_bytes){name, sizeof(name)},
		                     (struct state_bytes){NULL, 0}, state_error, sizeof(state_error)) != STATE_OK) {
			free(answered);
			snprintf(err, errlen, "writing the alarm: %s", state_error);
			return -1;
		}
		insert_entry(list, at, &entry);
		*changed = true;
		if (first_of_type)
			log_write("warn", "alarm raised", "\"alarm\":\"%s\",\"from\":\"%" PRIx64 "\"", type_name(entry.type),
			          entry.member_id);
		break;
	}
	case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE: {
		bool found;
		size_t at = find_entry(list, &entry, &found);
		if (!found)
			break;
		uint8_t name[12];
		encode_name(&entry, name);
		if (state_bucket_delete(state, BUCKET_ALARMS, (struct state_bytes){name, sizeof(name)}, state_error,
		                        sizeof(state_error)) != STATE_OK) {
			snprintf(err, errlen, "removing the alarm: %s", state_error);
			return -1;
		}
		memmove(list->entries + at, list->entries + at + 1, (list->count - at - 1) * sizeof(*list->entries));
		list->count--;
		*changed = true;
		answered = xcalloc(1, sizeof(*answered));
		answered[answered_count++] = entry;
		if (!alarm_list_has(list, entry.type))
			log_write("warn", "alarm disarmed", "\"alarm\":\"%s\",\"from\":\"%" PRIx64 "\"", type_name(entry.type),
			          entry.member_id);
		break;
	}
	default:
		break;
	}
	/* No header: etcd's applier answers an alarm request without one (its gateway shows {} for a GET with
	 * no alarm), and nothing on the way to the client adds it. */
	(void)header;
	Etcdserverpb__AlarmResponse response = ETCDSERVERPB__ALARM_RESPONSE__INIT;
	Etcdserverpb__AlarmMember *members = xcalloc(answered_count + 1, sizeof(*members));
	Etcdserverpb__AlarmMember **pointers = xcalloc(answered_count + 1, sizeof(*pointers));
	for (size_t k = 0; k < answered_count; k++) {
		etcdserverpb__alarm_member__init(&members[k]);
		members[k].memberid = answered[k].member_id;
		members[k].alarm = answered[k].type;
		pointers[k] = &members[k];
	}
	response.alarms = pointers;
	response.n_alarms = answered_count;
	result->kind = KV_RESPONSE_ALARM;
	result->response_length = etcdserverpb__alarm_response__get_packed_size(&response);
	result->response = xmalloc(result->response_length ? result->response_length : 1);
	etcdserverpb__alarm_response__pack(&response, result->response);
	result->grpc_code = GRPC_OK;
	free(members);
	free(pointers);
	free(answered);
	return 0;
}

bool alarm_refuses(const struct alarm_list *list, const Etcdserverpb__InternalRaftRequest *request,
                   struct kv_result *result)
{
	if (!alarm_list_has(list, ETCDSERVERPB__ALARM_TYPE__NOSPACE))
		return false;
	bool refused = request->put || request->lease_grant || (request->txn && space_quota_cost_txn(request->txn) > 0);
	if (!refused)
		return false;
	memset(result, 0, sizeof(*result));
	result->grpc_code = SPACE_QUOTA_GRPC_CODE;
	snprintf(result->error, sizeof(result->error), "%s", SPACE_QUOTA_ERROR);
	return true;
}
