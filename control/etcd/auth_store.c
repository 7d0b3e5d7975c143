/* control/etcd/auth_store.c: etcd 3.4's auth store, its appliers' checks and its records in state.
 *
 * Every change builds a new store from the current one (a deep copy, then the change, then the merged
 * permission ranges of every user): auth changes are rare and stores small, and etcd rebuilds its whole
 * permission cache on every change too. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth_password.h"
#include "auth_store.h"
#include "bytes_compare.h"
#include "log.h"

/* Buckets and names of the records, etcd's bucket and key names. */
enum { BUCKET_AUTH = 'a', BUCKET_USERS = 'u', BUCKET_ROLES = 'r' };
static const char ENABLED_KEY[] = "authEnabled";
static const char REVISION_KEY[] = "authRevision";

/* ---- statuses ---- */

static const struct {
	int code;
	const char *text;
	const char *internal_text;
} status_table[] = {
#define AUTH_STATUS_ROW(name, code, text, internal_text) [name] = {code, text, internal_text},
    AUTH_STATUS_LIST(AUTH_STATUS_ROW)
#undef AUTH_STATUS_ROW
};

int auth_status_grpc_code(enum auth_status status)
{
	return status_table[status].code;
}

const char *auth_status_text(enum auth_status status)
{
	return status_table[status].text;
}

const char *auth_status_internal_text(enum auth_status status)
{
	return status_table[status].internal_text;
}

void auth_status_to_result(enum auth_status status, struct kv_result *result)
{
	result->grpc_code = auth_status_grpc_code(status);
	snprintf(result->error, sizeof(result->error), "%s", auth_status_text(status));
}

/* ---- byte ranges as etcd's adt.BytesAffineComparable: an empty bound sorts after everything ---- */

struct auth_interval {
	uint8_t *begin;
	size_t begin_length;
	uint8_t *end; /* length 0: no end */
	size_t end_length;
};

static int affine_compare(const uint8_t *a, size_t a_length, const uint8_t *b, size_t b_length)
{
	if (a_length == 0)
		return b_length == 0 ? 0 : 1;
	if (b_length == 0)
		return -1;
	return bytes_compare(a, a_length, b, b_length);
}

/* adt.Interval.Compare: -1 when query lies left of x, 1 when right of it, 0 when they overlap. */
static int interval_compare(const struct auth_interval *query, const struct auth_interval *x)
{
	int begin_to_begin = affine_compare(query->begin, query->begin_length, x->begin, x->begin_length);
	int begin_to_end = affine_compare(query->begin, query->begin_length, x->end, x->end_length);
	int end_to_begin = affine_compare(query->end, query->end_length, x->begin, x->begin_length);
	if (begin_to_begin < 0 && end_to_begin <= 0)
		return -1;
	if (begin_to_end >= 0)
		return 1;
	return 0;
}

/* adt's IntervalTree.Contains: the ranges overlapping query, by start, leave no gap and cover it. */
static bool intervals_contain(const struct auth_interval *list, size_t count, const struct auth_interval *query)
{
	const struct auth_interval *first = NULL;
	const uint8_t *max_end = NULL;
	size_t max_end_length = 0;
	for (size_t k = 0; k < count; k++) {
		const struct auth_interval *x = &list[k];
		if (interval_compare(query, x) != 0)
			continue;
		if (!first) {
			first = x;
			max_end = x->end;
			max_end_length = x->end_length;
			continue;
		}
		if (affine_compare(max_end, max_end_length, x->begin, x->begin_length) < 0)
			return false;
		if (affine_compare(x->end, x->end_length, max_end, max_end_length) > 0) {
			max_end = x->end;
			max_end_length = x->end_length;
		}
	}
	return first && affine_compare(max_end, max_end_length, query->end, query->end_length) >= 0 &&
	       affine_compare(first->begin, first->begin_length, query->begin, query->begin_length) <= 0;
}

/* adt's IntervalTree.Intersects. */
static bool intervals_intersect(const struct auth_interval *list, size_t count, const struct auth_interval *query)
{
	for (size_t k = 0; k < count; k++)
		if (interval_compare(query, &list[k]) == 0)
			return true;
	return false;
}

/* [key, key + "\0"): adt.NewBytesAffinePoint. The caller frees end. */
static struct auth_interval point_of(const uint8_t *key, size_t key_length)
{
	struct auth_interval point = {(uint8_t *)key, key_length, xmalloc(key_length + 1), key_length + 1};
	if (key_length)
		memcpy(point.end, key, key_length);
	point.end[key_length] = 0;
	return point;
}

static bool is_from_key(const uint8_t *range_end, size_t length)
{
	return length == 1 && range_end[0] == 0;
}

/* ---- building stores ---- */

static void free_permission(struct auth_permission *permission)
{
	free(permission->key);
	free(permission->range_end);
}

static void free_role(struct auth_role *role)
{
	free(role->name);
	for (size_t k = 0; k < role->permission_count; k++)
		free_permission(&role->permissions[k]);
	free(role->permissions);
}

static void free_intervals(struct auth_interval *list, size_t count)
{
	for (size_t k = 0; k < count; k++) {
		free(list[k].begin);
		free(list[k].end);
	}
	free(list);
}

static void free_user(struct auth_user *user)
{
	free(user->name);
	free(user->password_hash);
	for (size_t k = 0; k < user->role_count; k++)
		free(user->roles[k]);
	free(user->roles);
	free_intervals(user->read_intervals, user->read_interval_count);
	free_intervals(user->write_intervals, user->write_interval_count);
}

static void store_free(struct auth_store *store)
{
	for (size_t k = 0; k < store->user_count; k++)
		free_user(&store->users[k]);
	free(store->users);
	for (size_t k = 0; k < store->role_count; k++)
		free_role(&store->roles[k]);
	free(store->roles);
	free(store);
}

void auth_store_hold(struct auth_store *store)
{
	atomic_fetch_add(&store->references, 1);
}

void auth_store_release(struct auth_store *store)
{
	if (store && atomic_fetch_sub(&store->references, 1) == 1)
		store_free(store);
}

struct auth_store *auth_store_new(void)
{
	struct auth_store *store = xcalloc(1, sizeof(*store));
	atomic_init(&store->references, 1);
	store->revision = 1;
	return store;
}

static uint8_t *copy_bytes(const uint8_t *bytes, size_t length)
{
	uint8_t *copy = xmalloc(length ? length : 1);
	if (length)
		memcpy(copy, bytes, length);
	return copy;
}

static void copy_permission(struct auth_permission *to, const struct auth_permission *from)
{
	to->type = from->type;
	to->key = copy_bytes(from->key, from->key_length);
	to->key_length = from->key_length;
	to->range_end = copy_bytes(from->range_end, from->range_end_length);
	to->range_end_length = from->range_end_length;
}

static void copy_role(struct auth_role *to, const struct auth_role *from)
{
	to->name = xstrdup(from->name);
	to->permission_count = from->permission_count;
	to->permissions = xcalloc(from->permission_count ? from->permission_count : 1, sizeof(struct auth_permission));
	for (size_t k = 0; k < from->permission_count; k++)
		copy_permission(&to->permissions[k], &from->permissions[k]);
}

/* The user's name, hash, options and roles; the merged ranges are rebuilt by finish_store. */
static void copy_user(struct auth_user *to, const struct auth_user *from)
{
	memset(to, 0, sizeof(*to));
	to->name = xstrdup(from->name);
	to->password_hash = xstrdup(from->password_hash);
	to->no_password = from->no_password;
	to->role_count = from->role_count;
	to->roles = xcalloc(from->role_count ? from->role_count : 1, sizeof(char *));
	for (size_t k = 0; k < from->role_count; k++)
		to->roles[k] = xstrdup(from->roles[k]);
}

/* A private copy of store to change (one reference, merged ranges not yet built). */
static struct auth_store *copy_store(const struct auth_store *store)
{
	struct auth_store *copy = xcalloc(1, sizeof(*copy));
	atomic_init(&copy->references, 1);
	copy->enabled = store->enabled;
	copy->revision = store->revision;
	copy->user_count = store->user_count;
	copy->users = xcalloc(store->user_count ? store->user_count : 1, sizeof(struct auth_user));
	for (size_t k = 0; k < store->user_count; k++)
		copy_user(&copy->users[k], &store->users[k]);
	copy->role_count = store->role_count;
	copy->roles = xcalloc(store->role_count ? store->role_count : 1, sizeof(struct auth_role));
	for (size_t k = 0; k < store->role_count; k++)
		copy_role(&copy->roles[k], &store->roles[k]);
	return copy;
}

static int compare_names(const char *a, const char *b)
{
	return bytes_compare((const uint8_t *)a, strlen(a), (const uint8_t *)b, strlen(b));
}

/* Position of name in a sorted array of count elements of size bytes whose first member is the name;
 * *found tells whether it is there (else the position is where it would go). */
static size_t find_sorted(const void *array, size_t count, size_t size, const char *name, bool *found)
{
	size_t low = 0, high = count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		const char *at = *(char *const *)((const char *)array + middle * size);
		int order = compare_names(at, name);
		if (order == 0) {
			*found = true;
			return middle;
		}
		if (order < 0)
			low = middle + 1;
		else
			high = middle;
	}
	*found = false;
	return low;
}

const struct auth_user *auth_store_user(const struct auth_store *store, const char *name)
{
	bool found;
	size_t at = find_sorted(store->users, store->user_count, sizeof(struct auth_user), name, &found);
	return found ? &store->users[at] : NULL;
}

const struct auth_role *auth_store_role(const struct auth_store *store, const char *name)
{
	bool found;
	size_t at = find_sorted(store->roles, store->role_count, sizeof(struct auth_role), name, &found);
	return found ? &store->roles[at] : NULL;
}

static struct auth_user *user_of(struct auth_store *store, const char *name)
{
	return (struct auth_user *)auth_store_user(store, name);
}

static struct auth_role *role_of(struct auth_store *store, const char *name)
{
	return (struct auth_role *)auth_store_role(store, name);
}

bool auth_user_has_role(const struct auth_user *user, const char *role)
{
	for (size_t k = 0; k < user->role_count; k++)
		if (strcmp(user->roles[k], role) == 0)
			return true;
	return false;
}

struct interval_list {
	struct auth_interval *items;
	size_t count;
	size_t capacity;
};

static void interval_push(struct interval_list *list, const struct auth_interval *interval)
{
	if (list->count == list->capacity) {
		list->capacity = list->capacity ? 2 * list->capacity : 8;
		list->items = xreallocarray(list->items, list->capacity, sizeof(struct auth_interval));
	}
	struct auth_interval *copy = &list->items[list->count++];
	copy->begin = copy_bytes(interval->begin, interval->begin_length);
	copy->begin_length = interval->begin_length;
	copy->end = copy_bytes(interval->end, interval->end_length);
	copy->end_length = interval->end_length;
}

/* Ordered by start; equal starts keep their order of insertion, as in etcd's tree (an equal start goes
 * right of the nodes already there). Lists are short: insertion sort. */
static void intervals_sort(struct interval_list *list)
{
	for (size_t k = 1; k < list->count; k++) {
		struct auth_interval moving = list->items[k];
		size_t at = k;
		while (at > 0 && affine_compare(moving.begin, moving.begin_length, list->items[at - 1].begin,
		                                list->items[at - 1].begin_length) < 0) {
			list->items[at] = list->items[at - 1];
			at--;
		}
		list->items[at] = moving;
	}
}

/* range_perm_cache.go's getMergedPerms. */
static void merge_permissions(const struct auth_store *store, struct auth_user *user)
{
	struct interval_list read = {0}, write = {0};
	for (size_t r = 0; r < user->role_count; r++) {
		const struct auth_role *role = auth_store_role(store, user->roles[r]);
		if (!role)
			continue;
		for (size_t p = 0; p < role->permission_count; p++) {
			const struct auth_permission *permission = &role->permissions[p];
			struct auth_interval interval;
			uint8_t *point_end = NULL;
			if (permission->range_end_length) {
				bool open_ended = is_from_key(permission->range_end, permission->range_end_length);
				interval = (struct auth_interval){permission->key, permission->key_length,
				                                  open_ended ? NULL : permission->range_end,
				                                  open_ended ? 0 : permission->range_end_length};
			} else {
				interval = point_of(permission->key, permission->key_length);
				point_end = interval.end;
			}
			if (permission->type == AUTHPB__PERMISSION__TYPE__READ ||
			    permission->type == AUTHPB__PERMISSION__TYPE__READWRITE)
				interval_push(&read, &interval);
			if (permission->type == AUTHPB__PERMISSION__TYPE__WRITE ||
			    permission->type == AUTHPB__PERMISSION__TYPE__READWRITE)
				interval_push(&write, &interval);
			free(point_end);
		}
	}
	intervals_sort(&read);
	intervals_sort(&write);
	user->read_intervals = read.items;
	user->read_interval_count = read.count;
	user->write_intervals = write.items;
	user->write_interval_count = write.count;
}

/* The store as others will read it: every user's merged ranges rebuilt (refreshRangePermCache). */
static void finish_store(struct auth_store *store)
{
	for (size_t k = 0; k < store->user_count; k++) {
		struct auth_user *user = &store->users[k];
		free_intervals(user->read_intervals, user->read_interval_count);
		free_intervals(user->write_intervals, user->write_interval_count);
		merge_permissions(store, user);
	}
}

/* Inserts a zeroed user named name (not present) and returns it. */
static struct auth_user *insert_user(struct auth_store *store, const char *name)
{
	bool found;
	size_t at = find_sorted(store->users, store->user_count, sizeof(struct auth_user), name, &found);
	store->users = xreallocarray(store->users, store->user_count + 1, sizeof(struct auth_user));
	memmove(&store->users[at + 1], &store->users[at], (store->user_count - at) * sizeof(struct auth_user));
	store->user_count++;
	memset(&store->users[at], 0, sizeof(struct auth_user));
	store->users[at].name = xstrdup(name);
	return &store->users[at];
}

static struct auth_role *insert_role(struct auth_store *store, const char *name)
{
	bool found;
	size_t at = find_sorted(store->roles, store->role_count, sizeof(struct auth_role), name, &found);
	store->roles = xreallocarray(store->roles, store->role_count + 1, sizeof(struct auth_role));
	memmove(&store->roles[at + 1], &store->roles[at], (store->role_count - at) * sizeof(struct auth_role));
	store->role_count++;
	memset(&store->roles[at], 0, sizeof(struct auth_role));
	store->roles[at].name = xstrdup(name);
	return &store->roles[at];
}

static void remove_user(struct auth_store *store, struct auth_user *user)
{
	size_t at = (size_t)(user - store->users);
	free_user(user);
	memmove(&store->users[at], &store->users[at + 1], (store->user_count - at - 1) * sizeof(struct auth_user));
	store->user_count--;
}

static void remove_role(struct auth_store *store, struct auth_role *role)
{
	size_t at = (size_t)(role - store->roles);
	free_role(role);
	memmove(&store->roles[at], &store->roles[at + 1], (store->role_count - at - 1) * sizeof(struct auth_role));
	store->role_count--;
}

/* ---- records in state ---- */

static struct state_bytes name_bytes(const char *name)
{
	return (struct state_bytes){(const uint8_t *)name, strlen(name)};
}

static int put_record(struct state *state, uint8_t bucket, const char *name, const ProtobufCMessage *message,
                      char *err, size_t errlen)
{
	size_t packed_length = protobuf_c_message_get_packed_size(message);
	uint8_t *packed = xmalloc(packed_length ? packed_length : 1);
	protobuf_c_message_pack(message, packed);
	int status = state_bucket_put(state, bucket, name_bytes(name), (struct state_bytes){packed, packed_length}, err,
	                              errlen);
	free(packed);
	return status;
}

static int save_user(struct state *state, const struct auth_user *user, char *err, size_t errlen)
{
	Authpb__User record = AUTHPB__USER__INIT;
	Authpb__UserAddOptions options = AUTHPB__USER_ADD_OPTIONS__INIT;
	options.no_password = user->no_password;
	record.name = (ProtobufCBinaryData){strlen(user->name), (uint8_t *)user->name};
	record.password = (ProtobufCBinaryData){strlen(user->password_hash), (uint8_t *)user->password_hash};
	record.n_roles = user->role_count;
	record.roles = user->roles;
	record.options = &options;
	return put_record(state, BUCKET_USERS, user->name, &record.base, err, errlen);
}

static int save_role(struct state *state, const struct auth_role *role, char *err, size_t errlen)
{
	Authpb__Role record = AUTHPB__ROLE__INIT;
	record.name = (ProtobufCBinaryData){strlen(role->name), (uint8_t *)role->name};
	Authpb__Permission *permissions = xcalloc(role->permission_count + 1, sizeof(Authpb__Permission));
	Authpb__Permission **pointers = xcalloc(role->permission_count + 1, sizeof(Authpb__Permission *));
	for (size_t k = 0; k < role->permission_count; k++) {
		authpb__permission__init(&permissions[k]);
		permissions[k].permtype = role->permissions[k].type;
		permissions[k].key = (ProtobufCBinaryData){role->permissions[k].key_length, role->permissions[k].key};
		permissions[k].range_end =
		    (ProtobufCBinaryData){role->permissions[k].range_end_length, role->permissions[k].range_end};
		pointers[k] = &permissions[k];
	}
	record.n_keypermission = role->permission_count;
	record.keypermission = pointers;
	int status = put_record(state, BUCKET_ROLES, role->name, &record.base, err, errlen);
	free(pointers);
	free(permissions);
	return status;
}

static int save_enabled(struct state *state, bool enabled, char *err, size_t errlen)
{
	uint8_t flag = enabled ? 1 : 0;
	return state_bucket_put(state, BUCKET_AUTH, name_bytes(ENABLED_KEY), (struct state_bytes){&flag, 1}, err, errlen);
}

/* etcd's commitRevision: the revision moves with every change that is kept. */
static int commit_revision(struct auth_store *store, struct state *state, char *err, size_t errlen)
{
	store->revision++;
	uint8_t bytes[8];
	for (int k = 0; k < 8; k++)
		bytes[k] = (uint8_t)(store->revision >> (56 - 8 * k));
	return state_bucket_put(state, BUCKET_AUTH, name_bytes(REVISION_KEY), (struct state_bytes){bytes, 8}, err,
	                        errlen);
}

struct load_context {
	struct auth_store *store;
	char *error;
	size_t length;
};

static char *string_of(ProtobufCBinaryData data)
{
	return data.len ? xstrndup((const char *)data.data, data.len) : xstrdup("");
}

static int load_user(void *argument, struct state_bytes name, struct state_bytes value)
{
	struct load_context *context = argument;
	Authpb__User *record = authpb__user__unpack(NULL, value.len, value.data);
	if (!record) {
		snprintf(context->error, context->length, "auth user record %.*s does not decode", (int)name.len,
		         (const char *)name.data);
		return STATE_ERR_CORRUPT;
	}
	char *user_name = string_of(record->name);
	struct auth_user *user = insert_user(context->store, user_name);
	free(user_name);
	user->password_hash = string_of(record->password);
	user->no_password = record->options && record->options->no_password;
	user->role_count = record->n_roles;
	user->roles = xcalloc(record->n_roles ? record->n_roles : 1, sizeof(char *));
	for (size_t k = 0; k < record->n_roles; k++)
		user->roles[k] = xstrdup(record->roles[k]);
	authpb__user__free_unpacked(record, NULL);
	return 0;
}

static int load_role(void *argument, struct state_bytes name, struct state_bytes value)
{
	struct load_context *context = argument;
	Authpb__Role *record = authpb__role__unpack(NULL, value.len, value.data);
	if (!record) {
		snprintf(context->error, context->length, "auth role record %.*s does not decode", (int)name.len,
		         (const char *)name.data);
		return STATE_ERR_CORRUPT;
	}
	char *role_name = string_of(record->name);
	struct auth_role *role = insert_role(context->store, role_name);
	free(role_name);
	role->permission_count = record->n_keypermission;
	role->permissions = xcalloc(record->n_keypermission ? record->n_keypermission : 1, sizeof(struct auth_permission));
	for (size_t k = 0; k < record->n_keypermission; k++) {
		const Authpb__Permission *from = record->keypermission[k];
		struct auth_permission *to = &role->permissions[k];
		to->type = from->permtype;
		to->key = copy_bytes(from->key.data, from->key.len);
		to->key_length = from->key.len;
		to->range_end = copy_bytes(from->range_end.data, from->range_end.len);
		to->range_end_length = from->range_end.len;
	}
	authpb__role__free_unpacked(record, NULL);
	return 0;
}

static int load_flags(void *argument, struct state_bytes name, struct state_bytes value)
{
	struct load_context *context = argument;
	if (name.len == strlen(ENABLED_KEY) && memcmp(name.data, ENABLED_KEY, name.len) == 0) {
		context->store->enabled = value.len == 1 && value.data[0] == 1;
	} else if (name.len == strlen(REVISION_KEY) && memcmp(name.data, REVISION_KEY, name.len) == 0) {
		if (value.len != 8) {
			snprintf(context->error, context->length, "auth revision record has %zu bytes, want 8", value.len);
			return STATE_ERR_CORRUPT;
		}
		uint64_t revision = 0;
		for (size_t k = 0; k < 8; k++)
			revision = revision << 8 | value.data[k];
		context->store->revision = revision;
	}
	return 0;
}

int auth_store_load(struct state *state, struct auth_store **out, char *err, size_t errlen)
{
	struct auth_store *store = auth_store_new();
	struct load_context context = {store, err, errlen};
	char state_error[256] = "";
	int status = state_bucket_scan(state, BUCKET_AUTH, load_flags, &context, state_error, sizeof(state_error));
	if (status == STATE_OK)
		status = state_bucket_scan(state, BUCKET_USERS, load_user, &context, state_error, sizeof(state_error));
	if (status == STATE_OK)
		status = state_bucket_scan(state, BUCKET_ROLES, load_role, &context, state_error, sizeof(state_error));
	if (status != STATE_OK) {
		if (state_error[0])
			snprintf(err, errlen, "reading the auth store: %s", state_error);
		auth_store_release(store);
		return -1;
	}
	/* etcd's NewAuthStore: a store never written starts at revision 1. */
	if (store->revision == 0)
		store->revision = 1;
	finish_store(store);
	*out = store;
	return 0;
}

/* ---- checks ---- */

static bool has_root_role(const struct auth_user *user)
{
	return auth_user_has_role(user, AUTH_ROOT);
}

/* auth/store.go's isOpPermitted; write selects the write ranges. */
static enum auth_status op_permitted(const struct auth_store *store, const struct auth_info *info, const uint8_t *key,
                                     size_t key_length, const uint8_t *range_end, size_t range_end_length, bool write)
{
	if (!store->enabled)
		return AUTH_OK;
	if (!info || info->revision == 0)
		return AUTH_ERR_USER_EMPTY;
	if (info->revision < store->revision) {
		log_write("warn", "request auth revision is less than current node auth revision",
		          "\"current node auth revision\":%" PRIu64 ",\"request auth revision\":%" PRIu64
		          ",\"error\":\"auth: revision in header is old\"",
		          store->revision, info->revision);
		return AUTH_ERR_AUTH_OLD_REVISION;
	}
	const struct auth_user *user = auth_store_user(store, info->user ? info->user : "");
	if (!user) {
		char escaped[256];
		log_write("warn", "cannot find a user for permission check", "\"user-name\":\"%s\"",
		          log_json_escape(info->user ? info->user : "", escaped, sizeof(escaped)));
		return AUTH_ERR_PERMISSION_DENIED;
	}
	if (has_root_role(user))
		return AUTH_OK;
	const struct auth_interval *list = write ? user->write_intervals : user->read_intervals;
	size_t count = write ? user->write_interval_count : user->read_interval_count;
	bool permitted;
	if (range_end_length == 0) {
		struct auth_interval point = point_of(key, key_length);
		permitted = intervals_intersect(list, count, &point);
		free(point.end);
	} else {
		bool open_ended = is_from_key(range_end, range_end_length);
		struct auth_interval range = {(uint8_t *)key, key_length, open_ended ? NULL : (uint8_t *)range_end,
		                              open_ended ? 0 : range_end_length};
		permitted = intervals_contain(list, count, &range);
	}
	return permitted ? AUTH_OK : AUTH_ERR_PERMISSION_DENIED;
}

enum auth_status auth_range_permitted(const struct auth_store *store, const struct auth_info *info, const uint8_t *key,
                                      size_t key_length, const uint8_t *range_end, size_t range_end_length)
{
	return op_permitted(store, info, key, key_length, range_end, range_end_length, false);
}

enum auth_status auth_put_permitted(const struct auth_store *store, const struct auth_info *info, const uint8_t *key,
                                    size_t key_length)
{
	return op_permitted(store, info, key, key_length, NULL, 0, true);
}

enum auth_status auth_delete_permitted(const struct auth_store *store, const struct auth_info *info,
                                       const uint8_t *key, size_t key_length, const uint8_t *range_end,
                                       size_t range_end_length)
{
	return op_permitted(store, info, key, key_length, range_end, range_end_length, true);
}

enum auth_status auth_admin_permitted(const struct auth_store *store, const struct auth_info *info)
{
	if (!store->enabled)
		return AUTH_OK;
	if (!info || !info->user || !info->user[0])
		return AUTH_ERR_USER_EMPTY;
	const struct auth_user *user = auth_store_user(store, info->user);
	if (!user)
		return AUTH_ERR_USER_NOT_FOUND;
	return has_root_role(user) ? AUTH_OK : AUTH_ERR_PERMISSION_DENIED;
}

/* apply_auth.go's checkTxnReqsPermission. */
static enum auth_status check_operations(const struct auth_store *store, const struct auth_info *info,
                                         Etcdserverpb__RequestOp **operations, size_t count)
{
	for (size_t k = 0; k < count; k++) {
		const Etcdserverpb__RequestOp *operation = operations[k];
		enum auth_status status = AUTH_OK;
		switch (operation->request_case) {
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE: {
			const Etcdserverpb__RangeRequest *range = operation->request_range;
			status = auth_range_permitted(store, info, range->key.data, range->key.len, range->range_end.data,
			                              range->range_end.len);
			break;
		}
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
			status = auth_put_permitted(store, info, operation->request_put->key.data, operation->request_put->key.len);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE: {
			const Etcdserverpb__DeleteRangeRequest *deletion = operation->request_delete_range;
			if (deletion->prev_kv)
				status = auth_range_permitted(store, info, deletion->key.data, deletion->key.len,
				                              deletion->range_end.data, deletion->range_end.len);
			if (status == AUTH_OK)
				status = auth_delete_permitted(store, info, deletion->key.data, deletion->key.len,
				                               deletion->range_end.data, deletion->range_end.len);
			break;
		}
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
			/* etcd 3.4 checks nothing inside a nested txn, so any user could write any key through one;
			 * quorumd checks it as the outer txn. */
			status = auth_check_txn(store, info, operation->request_txn);
			break;
		default:
			break;
		}
		if (status != AUTH_OK)
			return status;
	}
	return AUTH_OK;
}

enum auth_status auth_check_txn(const struct auth_store *store, const struct auth_info *info,
                                const Etcdserverpb__TxnRequest *txn)
{
	for (size_t k = 0; k < txn->n_compare; k++) {
		const Etcdserverpb__Compare *compare = txn->compare[k];
		enum auth_status status = auth_range_permitted(store, info, compare->key.data, compare->key.len,
		                                               compare->range_end.data, compare->range_end.len);
		if (status != AUTH_OK)
			return status;
	}
	enum auth_status status = check_operations(store, info, txn->success, txn->n_success);
	return status != AUTH_OK ? status : check_operations(store, info, txn->failure, txn->n_failure);
}

/* checkLeasePuts: every key already attached to the lease must be writable by the user, who could
 * otherwise revoke (delete) them through it. A lease that does not exist passes (the apply refuses it). */
static enum auth_status check_lease_keys(const struct auth_store *store, struct state *state,
                                         const struct auth_info *info, int64_t lease_id)
{
	if (!store->enabled || lease_id == 0)
		return AUTH_OK;
	struct state_lease lease;
	if (state_lease_get(state, lease_id, true, &lease, NULL, 0) != STATE_OK)
		return AUTH_OK;
	enum auth_status status = AUTH_OK;
	for (size_t k = 0; k < lease.key_count && status == AUTH_OK; k++)
		status = auth_put_permitted(store, info, lease.keys[k].data, lease.keys[k].len);
	state_lease_free(&lease);
	return status;
}

static struct auth_info info_of_header(const Etcdserverpb__InternalRaftRequest *request)
{
	struct auth_info info = {"", 0};
	if (request->header) {
		info.user = request->header->username ? request->header->username : "";
		info.revision = request->header->auth_revision;
	}
	return info;
}

enum auth_status auth_check_kv_request(const struct auth_store *store, struct state *state,
                                       const Etcdserverpb__InternalRaftRequest *request)
{
	if (!store->enabled)
		return AUTH_OK;
	struct auth_info info = info_of_header(request);
	enum auth_status status = AUTH_OK;
	if (request->put) {
		const Etcdserverpb__PutRequest *put = request->put;
		status = auth_put_permitted(store, &info, put->key.data, put->key.len);
		if (status == AUTH_OK)
			status = check_lease_keys(store, state, &info, put->lease);
		if (status == AUTH_OK && put->prev_kv)
			status = auth_range_permitted(store, &info, put->key.data, put->key.len, NULL, 0);
	} else if (request->delete_range) {
		const Etcdserverpb__DeleteRangeRequest *deletion = request->delete_range;
		status = auth_delete_permitted(store, &info, deletion->key.data, deletion->key.len, deletion->range_end.data,
		                               deletion->range_end.len);
		if (status == AUTH_OK && deletion->prev_kv)
			status = auth_range_permitted(store, &info, deletion->key.data, deletion->key.len,
			                              deletion->range_end.data, deletion->range_end.len);
	} else if (request->txn) {
		status = auth_check_txn(store, &info, request->txn);
	} else if (request->range) {
		const Etcdserverpb__RangeRequest *range = request->range;
		status = auth_range_permitted(store, &info, range->key.data, range->key.len, range->range_end.data,
		                              range->range_end.len);
	} else if (request->lease_revoke) {
		status = check_lease_keys(store, state, &info, request->lease_revoke->id);
	}
	return status;
}

/* ---- apply ---- */

bool auth_is_auth_request(const Etcdserverpb__InternalRaftRequest *request)
{
	return request->auth_enable || request->auth_disable || request->authenticate || request->auth_user_add ||
	       request->auth_user_delete || request->auth_user_get || request->auth_user_change_password ||
	       request->auth_user_grant_role || request->auth_user_revoke_role || request->auth_user_list ||
	       request->auth_role_list || request->auth_role_add || request->auth_role_delete || request->auth_role_get ||
	       request->auth_role_grant_permission || request->auth_role_revoke_permission;
}

/* apply_auth.go's needAdminPermission. */
static bool needs_admin(const Etcdserverpb__InternalRaftRequest *request)
{
	return request->auth_enable || request->auth_disable || request->auth_user_add || request->auth_user_delete ||
	       request->auth_user_change_password || request->auth_user_grant_role || request->auth_user_revoke_role ||
	       request->auth_role_add || request->auth_role_grant_permission || request->auth_role_revoke_permission ||
	       request->auth_role_delete || request->auth_user_list || request->auth_role_list;
}

struct apply_run {
	struct auth_store *current;  /* the store before the request */
	struct auth_store *next;     /* the changed copy, when the request changes something */
	struct state *state;
	const struct auth_apply_hooks *hooks;
	char error[256];
	bool failed;                 /* a state write failed: the batch is lost, the member must stop */
};

static struct auth_store *change(struct apply_run *run)
{
	if (!run->next)
		run->next = copy_store(run->current);
	return run->next;
}

static void note_write(struct apply_run *run, int status)
{
	if (status != STATE_OK)
		run->failed = true;
}

static void log_user(const char *message, const char *user)
{
	char escaped[256];
	log_write("info", message, "\"user-name\":\"%s\"", log_json_escape(user, escaped, sizeof(escaped)));
}

static void log_role(const char *message, const char *role)
{
	char escaped[256];
	log_write("info", message, "\"role-name\":\"%s\"", log_json_escape(role, escaped, sizeof(escaped)));
}

/* Every change moves the auth revision on, written in the same batch as what changed (run->next, which
 * change() made). */
static void commit(struct apply_run *run)
{
	note_write(run, commit_revision(run->next, run->state, run->error, sizeof(run->error)));
}

/* The end of a change to one user (or role): its record, the revision, and the line etcd logs. */
static enum auth_status user_changed(struct apply_run *run, const struct auth_user *user, const char *message)
{
	note_write(run, save_user(run->state, user, run->error, sizeof(run->error)));
	commit(run);
	log_user(message, user->name);
	return AUTH_OK;
}

static enum auth_status role_changed(struct apply_run *run, const struct auth_role *role, const char *message)
{
	note_write(run, save_role(run->state, role, run->error, sizeof(run->error)));
	commit(run);
	log_role(message, role->name);
	return AUTH_OK;
}

static enum auth_status apply_enable(struct apply_run *run)
{
	if (run->current->enabled) {
		log_write("info", "authentication is already enabled; ignored auth enable request", NULL);
		return AUTH_OK;
	}
	const struct auth_user *root = auth_store_user(run->current, AUTH_ROOT);
	if (!root)
		return AUTH_ERR_ROOT_USER_NOT_EXIST;
	if (!has_root_role(root))
		return AUTH_ERR_ROOT_ROLE_NOT_EXIST;
	struct auth_store *store = change(run);
	store->enabled = true;
	note_write(run, save_enabled(run->state, true, run->error, sizeof(run->error)));
	if (run->hooks && run->hooks->enabled)
		run->hooks->enabled(run->hooks->context);
	log_write("info", "enabled authentication", NULL);
	return AUTH_OK;
}

static enum auth_status apply_disable(struct apply_run *run)
{
	if (!run->current->enabled)
		return AUTH_OK;
	struct auth_store *store = change(run);
	store->enabled = false;
	note_write(run, save_enabled(run->state, false, run->error, sizeof(run->error)));
	commit(run);
	if (run->hooks && run->hooks->disabled)
		run->hooks->disabled(run->hooks->context);
	log_write("info", "disabled authentication", NULL);
	return AUTH_OK;
}

static enum auth_status apply_user_add(struct apply_run *run, const Etcdserverpb__AuthUserAddRequest *request)
{
	const char *name = request->name ? request->name : "";
	if (!name[0])
		return AUTH_ERR_USER_EMPTY;
	if (auth_store_user(run->current, name))
		return AUTH_ERR_USER_ALREADY_EXIST;
	bool no_password = request->options && request->options->no_password;
	char *hash = NULL;
	if (no_password) {
		hash = xstrdup("");
	} else if (request->hashedpassword && request->hashedpassword[0]) {
		hash = xstrdup(request->hashedpassword);
	} else {
		/* An entry with the password itself (etcd 3.4's form): hashed here, at the configured cost. */
		unsigned cost = run->hooks ? run->hooks->bcrypt_cost : AUTH_BCRYPT_DEFAULT_COST;
		char error[256];
		if (auth_password_hash(request->password ? request->password : "", cost, &hash, error, sizeof(error)) != 0) {
			log_write("warn", "failed to bcrypt hash password", "\"error\":\"%s\"", error);
			return AUTH_ERR_AUTH_FAILED;
		}
	}
	struct auth_store *store = change(run);
	struct auth_user *user = insert_user(store, name);
	user->password_hash = hash;
	user->no_password = no_password;
	user->roles = xcalloc(1, sizeof(char *));
	return user_changed(run, user, "added a user");
}

static enum auth_status apply_user_delete(struct apply_run *run, const char *name)
{
	if (run->current->enabled && strcmp(name, AUTH_ROOT) == 0) {
		log_write("warn", "cannot delete 'root' user", "\"user-name\":\"root\"");
		return AUTH_ERR_INVALID_AUTH_MGMT;
	}
	if (!auth_store_user(run->current, name))
		return AUTH_ERR_USER_NOT_FOUND;
	struct auth_store *store = change(run);
	remove_user(store, user_of(store, name));
	note_write(run, state_bucket_delete(run->state, BUCKET_USERS, name_bytes(name), run->error, sizeof(run->error)));
	commit(run);
	if (run->hooks && run->hooks->user_invalidated)
		run->hooks->user_invalidated(run->hooks->context, name);
	log_user("deleted a user", name);
	return AUTH_OK;
}

static enum auth_status apply_change_password(struct apply_run *run,
                                              const Etcdserverpb__AuthUserChangePasswordRequest *request)
{
	const char *name = request->name ? request->name : "";
	char *hash = NULL;
	if (request->hashedpassword && request->hashedpassword[0]) {
		hash = xstrdup(request->hashedpassword);
	} else {
		unsigned cost = run->hooks ? run->hooks->bcrypt_cost : AUTH_BCRYPT_DEFAULT_COST;
		char error[256];
		if (auth_password_hash(request->password ? request->password : "", cost, &hash, error, sizeof(error)) != 0) {
			log_write("warn", "failed to bcrypt hash password", "\"error\":\"%s\"", error);
			return AUTH_ERR_AUTH_FAILED;
		}
	}
	if (!auth_store_user(run->current, name)) {
		free(hash);
		return AUTH_ERR_USER_NOT_FOUND;
	}
	struct auth_store *store = change(run);
	struct auth_user *user = user_of(store, name);
	free(user->password_hash);
	user->password_hash = hash;
	note_write(run, save_user(run->state, user, run->error, sizeof(run->error)));
	commit(run);
	if (run->hooks && run->hooks->user_invalidated)
		run->hooks->user_invalidated(run->hooks->context, name);
	log_user("changed a password of a user", name);
	return AUTH_OK;
}

static enum auth_status apply_grant_role(struct apply_run *run, const char *name, const char *role_name)
{
	const struct auth_user *existing = auth_store_user(run->current, name);
	if (!existing)
		return AUTH_ERR_USER_NOT_FOUND;
	/* root may be granted before a role of that name exists (etcdctl auth enable adds it after). */
	if (strcmp(role_name, AUTH_ROOT) != 0 && !auth_store_role(run->current, role_name))
		return AUTH_ERR_ROLE_NOT_FOUND;
	if (auth_user_has_role(existing, role_name)) {
		char escaped_user[256], escaped_role[256];
		log_write("warn", "ignored grant role request to a user",
		          "\"user-name\":\"%s\",\"duplicate-role-name\":\"%s\"",
		          log_json_escape(name, escaped_user, sizeof(escaped_user)),
		          log_json_escape(role_name, escaped_role, sizeof(escaped_role)));
		return AUTH_OK;
	}
	struct auth_store *store = change(run);
	struct auth_user *user = user_of(store, name);
	user->roles = xreallocarray(user->roles, user->role_count + 1, sizeof(char *));
	size_t at = 0;
	while (at < user->role_count && compare_names(user->roles[at], role_name) < 0)
		at++;
	memmove(&user->roles[at + 1], &user->roles[at], (user->role_count - at) * sizeof(char *));
	user->roles[at] = xstrdup(role_name);
	user->role_count++;
	return user_changed(run, user, "granted a role to a user");
}

/* Removes role_name from user's roles; false when it was not there. */
static bool drop_role(struct auth_user *user, const char *role_name)
{
	size_t kept = 0;
	for (size_t k = 0; k < user->role_count; k++) {
		if (strcmp(user->roles[k], role_name) == 0)
			free(user->roles[k]);
		else
			user->roles[kept++] = user->roles[k];
	}
	bool dropped = kept != user->role_count;
	user->role_count = kept;
	return dropped;
}

static enum auth_status apply_revoke_role(struct apply_run *run, const char *name, const char *role_name)
{
	if (run->current->enabled && strcmp(name, AUTH_ROOT) == 0 && strcmp(role_name, AUTH_ROOT) == 0) {
		log_write("warn", "'root' user cannot revoke 'root' role", "\"user-name\":\"root\",\"role-name\":\"root\"");
		return AUTH_ERR_INVALID_AUTH_MGMT;
	}
	const struct auth_user *existing = auth_store_user(run->current, name);
	if (!existing)
		return AUTH_ERR_USER_NOT_FOUND;
	if (!auth_user_has_role(existing, role_name))
		return AUTH_ERR_ROLE_NOT_GRANTED;
	struct auth_store *store = change(run);
	struct auth_user *user = user_of(store, name);
	drop_role(user, role_name);
	return user_changed(run, user, "revoked a role from a user");
}

static enum auth_status apply_role_add(struct apply_run *run, const char *name)
{
	if (!name[0])
		return AUTH_ERR_ROLE_EMPTY;
	if (auth_store_role(run->current, name))
		return AUTH_ERR_ROLE_ALREADY_EXIST;
	struct auth_store *store = change(run);
	struct auth_role *role = insert_role(store, name);
	role->permissions = xcalloc(1, sizeof(struct auth_permission));
	return role_changed(run, role, "created a role");
}

static enum auth_status apply_role_delete(struct apply_run *run, const char *name)
{
	if (run->current->enabled && strcmp(name, AUTH_ROOT) == 0) {
		log_write("warn", "cannot delete 'root' role", "\"role-name\":\"root\"");
		return AUTH_ERR_INVALID_AUTH_MGMT;
	}
	if (!auth_store_role(run->current, name))
		return AUTH_ERR_ROLE_NOT_FOUND;
	struct auth_store *store = change(run);
	remove_role(store, role_of(store, name));
	note_write(run, state_bucket_delete(run->state, BUCKET_ROLES, name_bytes(name), run->error, sizeof(run->error)));
	for (size_t k = 0; k < store->user_count; k++)
		if (drop_role(&store->users[k], name))
			note_write(run, save_user(run->state, &store->users[k], run->error, sizeof(run->error)));
	commit(run);
	log_role("deleted a role", name);
	return AUTH_OK;
}

static bool same_bytes(const uint8_t *a, size_t a_length, const uint8_t *b, size_t b_length)
{
	return a_length == b_length && (a_length == 0 || memcmp(a, b, a_length) == 0);
}

static enum auth_status apply_grant_permission(struct apply_run *run,
                                               const Etcdserverpb__AuthRoleGrantPermissionRequest *request)
{
	const char *name = request->name ? request->name : "";
	if (!auth_store_role(run->current, name))
		return AUTH_ERR_ROLE_NOT_FOUND;
	Authpb__Permission empty = AUTHPB__PERMISSION__INIT;
	const Authpb__Permission *granted = request->perm ? request->perm : &empty;
	struct auth_store *store = change(run);
	struct auth_role *role = role_of(store, name);
	/* etcd looks only at the first permission whose key is not below the granted one (sort.Search): an
	 * equal key and range end there is updated, anything else appends a new permission. */
	size_t at = 0;
	while (at < role->permission_count && bytes_compare(role->permissions[at].key, role->permissions[at].key_length,
	                                                    granted->key.data, granted->key.len) < 0)
		at++;
	if (at < role->permission_count &&
	    same_bytes(role->permissions[at].key, role->permissions[at].key_length, granted->key.data, granted->key.len) &&
	    same_bytes(role->permissions[at].range_end, role->permissions[at].range_end_length, granted->range_end.data,
	               granted->range_end.len)) {
		role->permissions[at].type = granted->permtype;
	} else {
		role->permissions = xreallocarray(role->permissions, role->permission_count + 1, sizeof(struct auth_permission));
		/* Kept ordered by key, a new one after those with an equal key (a stable sort, as Go's on few). */
		size_t insert = role->permission_count;
		while (insert > 0 && bytes_compare(role->permissions[insert - 1].key, role->permissions[insert - 1].key_length,
		                                   granted->key.data, granted->key.len) > 0)
			insert--;
		memmove(&role->permissions[insert + 1], &role->permissions[insert],
		        (role->permission_count - insert) * sizeof(struct auth_permission));
		struct auth_permission *permission = &role->permissions[insert];
		permission->type = granted->permtype;
		permission->key = copy_bytes(granted->key.data, granted->key.len);
		permission->key_length = granted->key.len;
		permission->range_end = copy_bytes(granted->range_end.data, granted->range_end.len);
		permission->range_end_length = granted->range_end.len;
		role->permission_count++;
	}
	return role_changed(run, role, "granted/updated a permission to a user");
}

static enum auth_status apply_revoke_permission(struct apply_run *run,
                                                const Etcdserverpb__AuthRoleRevokePermissionRequest *request)
{
	const char *name = request->role ? request->role : "";
	const struct auth_role *existing = auth_store_role(run->current, name);
	if (!existing)
		return AUTH_ERR_ROLE_NOT_FOUND;
	bool granted = false;
	for (size_t k = 0; k < existing->permission_count && !granted; k++)
		granted = same_bytes(existing->permissions[k].key, existing->permissions[k].key_length, request->key.data,
		                     request->key.len) &&
		          same_bytes(existing->permissions[k].range_end, existing->permissions[k].range_end_length,
		                     request->range_end.data, request->range_end.len);
	if (!granted)
		return AUTH_ERR_PERMISSION_NOT_GRANTED;
	struct auth_store *store = change(run);
	struct auth_role *role = role_of(store, name);
	size_t kept = 0;
	for (size_t k = 0; k < role->permission_count; k++) {
		struct auth_permission *permission = &role->permissions[k];
		if (same_bytes(permission->key, permission->key_length, request->key.data, request->key.len) &&
		    same_bytes(permission->range_end, permission->range_end_length, request->range_end.data,
		               request->range_end.len))
			free_permission(permission);
		else
			role->permissions[kept++] = *permission;
	}
	role->permission_count = kept;
	return role_changed(run, role, "revoked a permission on range");
}

/* ---- responses ---- */

static void fill_header(Etcdserverpb__ResponseHeader *out, const struct kv_header *header, struct state *state)
{
	etcdserverpb__response_header__init(out);
	out->cluster_id = header->cluster_id;
	out->member_id = header->member_id;
	out->revision = state_revision(state);
	out->raft_term = header->raft_term;
}

static void pack_result(struct kv_result *result, const ProtobufCMessage *message)
{
	result->grpc_code = GRPC_OK;
	result->error[0] = '\0';
	result->response_length = protobuf_c_message_get_packed_size(message);
	result->response = xmalloc(result->response_length ? result->response_length : 1);
	protobuf_c_message_pack(message, result->response);
}

/* Every Auth response but a few is {ResponseHeader header = 1}: one message packs them all. */
static void answer_header_only(struct kv_result *result, Etcdserverpb__ResponseHeader *header)
{
	Etcdserverpb__AuthUserAddResponse response = ETCDSERVERPB__AUTH_USER_ADD_RESPONSE__INIT;
	response.header = header;
	pack_result(result, &response.base);
}

static void answer_names(struct kv_result *result, Etcdserverpb__ResponseHeader *header, char **names, size_t count)
{
	/* AuthUserGetResponse, AuthUserListResponse, AuthRoleListResponse: {header = 1, repeated string = 2}. */
	Etcdserverpb__AuthUserListResponse response = ETCDSERVERPB__AUTH_USER_LIST_RESPONSE__INIT;
	response.header = header;
	response.n_users = count;
	response.users = names;
	pack_result(result, &response.base);
}

static void answer_role(struct kv_result *result, Etcdserverpb__ResponseHeader *header, const struct auth_role *role)
{
	Etcdserverpb__AuthRoleGetResponse response = ETCDSERVERPB__AUTH_ROLE_GET_RESPONSE__INIT;
	Authpb__Permission *permissions = xcalloc(role->permission_count + 1, sizeof(Authpb__Permission));
	Authpb__Permission **pointers = xcalloc(role->permission_count + 1, sizeof(Authpb__Permission *));
	for (size_t k = 0; k < role->permission_count; k++) {
		authpb__permission__init(&permissions[k]);
		permissions[k].permtype = role->permissions[k].type;
		permissions[k].key = (ProtobufCBinaryData){role->permissions[k].key_length, role->permissions[k].key};
		permissions[k].range_end =
		    (ProtobufCBinaryData){role->permissions[k].range_end_length, role->permissions[k].range_end};
		pointers[k] = &permissions[k];
	}
	response.header = header;
	response.n_perm = role->permission_count;
	response.perm = pointers;
	pack_result(result, &response.base);
	free(pointers);
	free(permissions);
}

static enum auth_status apply_authenticate(struct apply_run *run, const Etcdserverpb__InternalAuthenticateRequest *request,
                                           uint64_t index, Etcdserverpb__ResponseHeader *header, struct kv_result *result)
{
	if (!run->current->enabled)
		return AUTH_ERR_AUTH_NOT_ENABLED;
	const char *name = request->name ? request->name : "";
	const struct auth_user *user = auth_store_user(run->current, name);
	if (!user || user->no_password)
		return AUTH_ERR_AUTH_FAILED;
	char *token = NULL;
	char error[256] = "";
	if (!run->hooks || !run->hooks->assign_token ||
	    run->hooks->assign_token(run->hooks->context, name, run->current->revision,
	                             request->simple_token ? request->simple_token : "", index, &token, error,
	                             sizeof(error)) != 0) {
		char escaped_user[256], escaped_error[512];
		log_write("warn", "failed to assign an auth token", "\"user-name\":\"%s\",\"error\":\"%s\"",
		          log_json_escape(name, escaped_user, sizeof(escaped_user)),
		          log_json_escape(error, escaped_error, sizeof(escaped_error)));
		/* No provider refuses as a failed authentication; a JWT that cannot be signed is the provider's own
		 * error, which etcd does not convert (Unknown). */
		if (strcmp(error, auth_status_internal_text(AUTH_ERR_AUTH_FAILED)) == 0)
			return AUTH_ERR_AUTH_FAILED;
		result->grpc_code = GRPC_UNKNOWN;
		snprintf(result->error, sizeof(result->error), "%s", error);
		return AUTH_ERR_PROVIDER;
	}
	Etcdserverpb__AuthenticateResponse response = ETCDSERVERPB__AUTHENTICATE_RESPONSE__INIT;
	response.header = header;
	response.token = token;
	pack_result(result, &response.base);
	free(token);
	return AUTH_OK;
}

/* The apply proper, after the admin check. */
static enum auth_status apply_one(struct apply_run *run, const Etcdserverpb__InternalRaftRequest *request,
                                  const struct auth_info *info, uint64_t index, Etcdserverpb__ResponseHeader *header,
                                  struct kv_result *result)
{
	if (request->authenticate)
		return apply_authenticate(run, request->authenticate, index, header, result);
	enum auth_status status = AUTH_OK;
	if (request->auth_enable) {
		status = apply_enable(run);
	} else if (request->auth_disable) {
		status = apply_disable(run);
	} else if (request->auth_user_add) {
		status = apply_user_add(run, request->auth_user_add);
	} else if (request->auth_user_delete) {
		status = apply_user_delete(run, request->auth_user_delete->name ? request->auth_user_delete->name : "");
	} else if (request->auth_user_change_password) {
		status = apply_change_password(run, request->auth_user_change_password);
	} else if (request->auth_user_grant_role) {
		const Etcdserverpb__AuthUserGrantRoleRequest *grant = request->auth_user_grant_role;
		status = apply_grant_role(run, grant->user ? grant->user : "", grant->role ? grant->role : "");
	} else if (request->auth_user_revoke_role) {
		const Etcdserverpb__AuthUserRevokeRoleRequest *revoke = request->auth_user_revoke_role;
		status = apply_revoke_role(run, revoke->name ? revoke->name : "", revoke->role ? revoke->role : "");
	} else if (request->auth_role_add) {
		status = apply_role_add(run, request->auth_role_add->name ? request->auth_role_add->name : "");
	} else if (request->auth_role_delete) {
		status = apply_role_delete(run, request->auth_role_delete->role ? request->auth_role_delete->role : "");
	} else if (request->auth_role_grant_permission) {
		status = apply_grant_permission(run, request->auth_role_grant_permission);
	} else if (request->auth_role_revoke_permission) {
		status = apply_revoke_permission(run, request->auth_role_revoke_permission);
	} else if (request->auth_user_get) {
		const char *name = request->auth_user_get->name ? request->auth_user_get->name : "";
		/* Anyone may read their own user; others need the root role. */
		status = auth_admin_permitted(run->current, info);
		if (status != AUTH_OK && strcmp(name, info->user) != 0)
			return status;
		const struct auth_user *user = auth_store_user(run->current, name);
		if (!user)
			return AUTH_ERR_USER_NOT_FOUND;
		answer_names(result, header, user->roles, user->role_count);
		return AUTH_OK;
	} else if (request->auth_role_get) {
		const char *name = request->auth_role_get->role ? request->auth_role_get->role : "";
		/* Anyone may read a role they have. */
		status = auth_admin_permitted(run->current, info);
		const struct auth_user *user = auth_store_user(run->current, info->user);
		if (status != AUTH_OK && !(user && auth_user_has_role(user, name)))
			return status;
		const struct auth_role *role = auth_store_role(run->current, name);
		if (!role)
			return AUTH_ERR_ROLE_NOT_FOUND;
		answer_role(result, header, role);
		return AUTH_OK;
	} else if (request->auth_user_list) {
		char **names = xcalloc(run->current->user_count + 1, sizeof(char *));
		for (size_t k = 0; k < run->current->user_count; k++)
			names[k] = run->current->users[k].name;
		answer_names(result, header, names, run->current->user_count);
		free(names);
		return AUTH_OK;
	} else if (request->auth_role_list) {
		/* etcd lists the roles between "\x00" and "\xff" (a bbolt range): a name from 0xff on is left out. */
		char **names = xcalloc(run->current->role_count + 1, sizeof(char *));
		size_t count = 0;
		for (size_t k = 0; k < run->current->role_count; k++)
			if ((uint8_t)run->current->roles[k].name[0] != 0xff)
				names[count++] = run->current->roles[k].name;
		answer_names(result, header, names, count);
		free(names);
		return AUTH_OK;
	}
	if (status == AUTH_OK)
		answer_header_only(result, header);
	return status;
}

int auth_apply_request(struct auth_store **store, struct state *state, const Etcdserverpb__InternalRaftRequest *request,
                       const struct kv_header *header, uint64_t index, const struct auth_apply_hooks *hooks,
                       struct kv_result *result, char *err, size_t errlen)
{
	memset(result, 0, sizeof(*result));
	struct auth_info info = info_of_header(request);
	if (needs_admin(request)) {
		enum auth_status status = auth_admin_permitted(*store, &info);
		if (status != AUTH_OK) {
			auth_status_to_result(status, result);
			return 0;
		}
	}
	struct apply_run run = {.current = *store, .state = state, .hooks = hooks};
	Etcdserverpb__ResponseHeader response_header;
	fill_header(&response_header, header, state);
	enum auth_status status = apply_one(&run, request, &info, index, &response_header, result);
	if (run.failed) {
		auth_store_release(run.next);
		kv_result_free(result);
		result->grpc_code = GRPC_INTERNAL;
		snprintf(result->error, sizeof(result->error), "etcdserver: auth store write failed");
		snprintf(err, errlen, "auth store write: %s", run.error);
		return -1;
	}
	if (status == AUTH_ERR_PROVIDER) {
		auth_store_release(run.next);
		return 0; /* result holds the provider's error */
	}
	if (status != AUTH_OK) {
		auth_store_release(run.next);
		kv_result_free(result);
		auth_status_to_result(status, result);
		return 0;
	}
	if (run.next) {
		finish_store(run.next);
		auth_store_release(*store);
		*store = run.next;
	}
	return 0;
}
