/* tests/control/test_space_quota.c: etcd's space quota decision and alarm store (control/etcd/space_quota.h):
 * the flag's meaning, the costs, the "available" rule, and alarms applied to a real RocksDB state — listed,
 * answered as etcd's AlarmResponse, refusing the capped writes, kept across a reopen and in a checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "space_quota.h"

#include "check.h"

static const struct kv_header header = {0xef37ad9dc622a7c4ULL, 0x8211f1d0f64f3269ULL, 7};
static const uint64_t member_a = 18102032635238538418ULL, member_b = 42;

static ProtobufCBinaryData bytes(const char *value)
{
	ProtobufCBinaryData data = {strlen(value), (uint8_t *)value};
	return data;
}

static void check_quota_and_costs(void)
{
	CHECK(space_quota_bytes(0) == INT64_C(2147483648), "0 is etcd's default of 2 GiB");
	CHECK(space_quota_bytes(16777216) == 16777216, "a given quota is kept");
	CHECK(space_quota_bytes(-1) == 0, "a negative quota disables it");

	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	put.key = bytes("key");
	put.value = bytes("value");
	CHECK(space_quota_cost_put(&put) == 256 + 3 + 5, "a put costs 256 + key + value: %lld",
	      (long long)space_quota_cost_put(&put));

	/* A txn costs its costlier branch's puts; reads and deletes cost nothing. */
	Etcdserverpb__RequestOp put_op = ETCDSERVERPB__REQUEST_OP__INIT;
	put_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	put_op.request_put = &put;
	Etcdserverpb__DeleteRangeRequest delete_range = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	delete_range.key = bytes("key");
	Etcdserverpb__RequestOp delete_op = ETCDSERVERPB__REQUEST_OP__INIT;
	delete_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
	delete_op.request_delete_range = &delete_range;
	Etcdserverpb__RequestOp *two_puts[] = {&put_op, &put_op};
	Etcdserverpb__RequestOp *one_put_one_delete[] = {&put_op, &delete_op};
	Etcdserverpb__RequestOp *deletes[] = {&delete_op};
	Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
	txn.success = one_put_one_delete;
	txn.n_success = 2;
	txn.failure = two_puts;
	txn.n_failure = 2;
	CHECK(space_quota_cost_txn(&txn) == 2 * 264, "the failure branch's two puts: %lld",
	      (long long)space_quota_cost_txn(&txn));
	Etcdserverpb__TxnRequest deleting = ETCDSERVERPB__TXN_REQUEST__INIT;
	deleting.success = deletes;
	deleting.n_success = 1;
	CHECK(space_quota_cost_txn(&deleting) == 0, "a txn of deletes costs nothing");
	/* A put in a nested txn counts. */
	Etcdserverpb__RequestOp nested_op = ETCDSERVERPB__REQUEST_OP__INIT;
	nested_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
	nested_op.request_txn = &txn;
	Etcdserverpb__RequestOp *nested[] = {&nested_op};
	Etcdserverpb__TxnRequest outer = ETCDSERVERPB__TXN_REQUEST__INIT;
	outer.success = nested;
	outer.n_success = 1;
	CHECK(space_quota_cost_txn(&outer) == 2 * 264, "a nested txn's puts: %lld", (long long)space_quota_cost_txn(&outer));

	/* etcd's rule: size + cost strictly below the quota. */
	CHECK(space_quota_available(1000, 23, 1024), "1000 + 23 < 1024");
	CHECK(!space_quota_available(1000, 24, 1024), "1000 + 24 reaches 1024");
	CHECK(!space_quota_available(2000, 1, 1024), "over the quota already");
	CHECK(space_quota_available(2000, 0, 1024), "a request of cost 0 always passes");
	CHECK(space_quota_available(UINT64_C(1) << 40, 264, 0), "quota 0: none");

	struct alarm_entry entry = {member_a, ETCDSERVERPB__ALARM_TYPE__NOSPACE};
	char text[96];
	alarm_entry_format(&entry, text, sizeof(text));
	CHECK(!strcmp(text, "memberID:18102032635238538418 alarm:NOSPACE "), "etcd's text: '%s'", text);
}

/* Applies an AlarmRequest in its own batch at index; returns the decoded response (NULL on error). */
static Etcdserverpb__AlarmResponse *alarm(struct state *state, struct alarm_list *list, uint64_t index,
                                          Etcdserverpb__AlarmRequest__AlarmAction action, uint64_t member,
                                          Etcdserverpb__AlarmType type, bool *changed)
{
	Etcdserverpb__AlarmRequest request = ETCDSERVERPB__ALARM_REQUEST__INIT;
	request.action = action;
	request.memberid = member;
	request.alarm = type;
	char error[256] = "";
	struct kv_result result;
	CHECK(state_batch_begin(state, error, sizeof(error)) == STATE_OK, "%s", error);
	CHECK(alarm_apply(list, state, &request, &header, &result, changed, error, sizeof(error)) == 0, "%s", error);
	CHECK(state_batch_commit(state, index, error, sizeof(error)) == STATE_OK, "%s", error);
	CHECK(result.grpc_code == GRPC_OK && result.kind == KV_RESPONSE_ALARM, "alarm apply: %s", result.error);
	Etcdserverpb__AlarmResponse *response =
	    etcdserverpb__alarm_response__unpack(NULL, result.response_length, result.response);
	/* etcd's applier answers an alarm request without a header. */
	CHECK(response && !response->header, "the response has no header, as etcd's");
	kv_result_free(&result);
	return response;
}

static bool lists(const Etcdserverpb__AlarmResponse *response, size_t count, const struct alarm_entry *expected)
{
	if (!response || response->n_alarms != count)
		return false;
	for (size_t k = 0; k < count; k++)
		if (response->alarms[k]->memberid != expected[k].member_id || response->alarms[k]->alarm != expected[k].type)
			return false;
	return true;
}

static void check_alarms(const char *directory)
{
	struct state *state = NULL;
	char error[256] = "";
	CHECK(state_open(directory, &state, error, sizeof(error)) == STATE_OK, "%s", error);
	struct alarm_list list;
	CHECK(alarm_list_load(state, &list, error, sizeof(error)) == 0 && list.count == 0, "a new state has no alarm");
	const Etcdserverpb__AlarmRequest__AlarmAction GET = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET,
	                                              ACTIVATE = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE,
	                                              DEACTIVATE = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE;
	const Etcdserverpb__AlarmType NOSPACE = ETCDSERVERPB__ALARM_TYPE__NOSPACE, NONE = ETCDSERVERPB__ALARM_TYPE__NONE,
	                              CORRUPT = ETCDSERVERPB__ALARM_TYPE__CORRUPT;
	bool changed = false;
	uint64_t index = 1;

	/* Capped writes pass while there is no NOSPACE alarm. */
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	put.key = bytes("k");
	Etcdserverpb__InternalRaftRequest put_request = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	put_request.put = &put;
	struct kv_result refused;
	CHECK(!alarm_refuses(&list, &put_request, &refused), "no alarm: a put passes");

	Etcdserverpb__AlarmResponse *response = alarm(state, &list, index++, ACTIVATE, member_b, NOSPACE, &changed);
	struct alarm_entry b_nospace = {member_b, NOSPACE}, a_nospace = {member_a, NOSPACE}, a_corrupt = {member_a, CORRUPT};
	CHECK(changed && lists(response, 1, &b_nospace), "ACTIVATE answers the alarm it raised");
	etcdserverpb__alarm_response__free_unpacked(response, NULL);
	response = alarm(state, &list, index++, ACTIVATE, member_b, NOSPACE, &changed);
	CHECK(!changed && lists(response, 1, &b_nospace), "ACTIVATE again: answered, nothing changes");
	etcdserverpb__alarm_response__free_unpacked(response, NULL);
	response = alarm(state, &list, index++, ACTIVATE, member_a, NONE, &changed);
	CHECK(!changed && lists(response, 0, NULL), "ACTIVATE of NONE: nothing");
	etcdserverpb__alarm_response__free_unpacked(response, NULL);
	response = alarm(state, &list, index++, ACTIVATE, member_a, NOSPACE, &changed);
	etcdserverpb__alarm_response__free_unpacked(response, NULL);
	response = alarm(state, &list, index++, ACTIVATE, member_a, CORRUPT, &changed);
	etcdserverpb__alarm_response__free_unpacked(response, NULL);

	response = alarm(state, &list, index++, GET, 0, NONE, &changed);
	struct alarm_entry all[] = {b_nospace, a_nospace, a_corrupt};
	CHECK(!changed && lists(response, 3, all), "GET NONE lists every alarm, by type then member");
	etcdserverpb__alarm_response__free_unpacked(response, NULL);
	response = alarm(state, &list, index++, GET, 0, CORRUPT, &changed);
	CHECK(lists(response, 1, &a_corrupt), "GET CORRUPT lists that type only");
	etcdserverpb__alarm_response__free_unpacked(response, NULL);

	/* The capped applier: puts, lease grants and txns with puts refused; deletes, reads, compactions pass. */
	CHECK(alarm_refuses(&list, &put_request, &refused) && refused.grpc_code == GRPC_RESOURCE_EXHAUSTED &&
	          !strcmp(refused.error, "etcdserver: mvcc: database space exceeded"),
	      "NOSPACE refuses a put with etcd's error: %d '%s'", refused.grpc_code, refused.error);
	Etcdserverpb__LeaseGrantRequest grant = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	Etcdserverpb__InternalRaftRequest grant_request = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	grant_request.lease_grant = &grant;
	CHECK(alarm_refuses(&list, &grant_request, &refused), "NOSPACE refuses a lease grant");
	Etcdserverpb__RequestOp put_op = ETCDSERVERPB__REQUEST_OP__INIT;
	put_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	put_op.request_put = &put;
	Etcdserverpb__RequestOp *put_ops[] = {&put_op};
	Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
	Etcdserverpb__InternalRaftRequest txn_request = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	txn_request.txn = &txn;
	CHECK(!alarm_refuses(&list, &txn_request, &refused), "NOSPACE lets a txn without puts through");
	txn.failure = put_ops;
	txn.n_failure = 1;
	CHECK(alarm_refuses(&list, &txn_request, &refused), "NOSPACE refuses a txn with a put");
	Etcdserverpb__DeleteRangeRequest delete_range = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	Etcdserverpb__CompactionRequest compaction = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
	Etcdserverpb__LeaseRevokeRequest revoke = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	Etcdserverpb__InternalRaftRequest others = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	others.delete_range = &delete_range;
	CHECK(!alarm_refuses(&list, &others, &refused), "NOSPACE lets a delete through");
	others.delete_range = NULL;
	others.compaction = &compaction;
	CHECK(!alarm_refuses(&list, &others, &refused), "NOSPACE lets a compaction through");
	others.compaction = NULL;
	others.lease_revoke = &revoke;
	CHECK(!alarm_refuses(&list, &others, &refused), "NOSPACE lets a lease revoke through");

	/* Kept in the state: a reopen, and a checkpoint installed elsewhere, find the same alarms. */
	alarm_list_free(&list);
	state_close(state);
	CHECK(state_open(directory, &state, error, sizeof(error)) == STATE_OK, "%s", error);
	CHECK(alarm_list_load(state, &list, error, sizeof(error)) == 0, "%s", error);
	CHECK(list.count == 3 && alarm_list_has_member(&list, member_b, NOSPACE) &&
	          alarm_list_has_member(&list, member_a, CORRUPT),
	      "the alarms after a reopen: %zu", list.count);
	char checkpoint[600], other[600];
	snprintf(checkpoint, sizeof(checkpoint), "%s/checkpoint", directory);
	snprintf(other, sizeof(other), "%s/other", directory);
	uint64_t checkpoint_index = 0;
	CHECK(state_checkpoint(state, checkpoint, &checkpoint_index, error, sizeof(error)) == STATE_OK, "%s", error);
	struct state *installed = NULL;
	CHECK(state_open(other, &installed, error, sizeof(error)) == STATE_OK, "%s", error);
	CHECK(state_restore_from_directory(installed, checkpoint, 7, error, sizeof(error)) == STATE_OK, "%s", error);
	struct alarm_list carried;
	CHECK(alarm_list_load(installed, &carried, error, sizeof(error)) == 0 && carried.count == 3,
	      "the alarms in an installed checkpoint: %zu", carried.count);
	alarm_list_free(&carried);
	state_close(installed);

	/* DEACTIVATE answers what it removed; the last NOSPACE gone, puts pass again. */
	response = alarm(state, &list, index + 100, DEACTIVATE, member_b, NOSPACE, &changed);
	CHECK(changed && lists(response, 1, &b_nospace), "DEACTIVATE answers the alarm");
	etcdserverpb__alarm_response__free_unpacked(response, NULL);
	response = alarm(state, &list, index + 101, DEACTIVATE, member_b, NOSPACE, &changed);
	CHECK(!changed && lists(response, 0, NULL), "DEACTIVATE of an inactive alarm answers nothing");
	etcdserverpb__alarm_response__free_unpacked(response, NULL);
	CHECK(alarm_refuses(&list, &put_request, &refused), "member a's NOSPACE still refuses");
	response = alarm(state, &list, index + 102, DEACTIVATE, member_a, NOSPACE, &changed);
	etcdserverpb__alarm_response__free_unpacked(response, NULL);
	CHECK(!alarm_refuses(&list, &put_request, &refused), "no NOSPACE left: a put passes");
	CHECK(alarm_list_has(&list, CORRUPT) && !alarm_list_has(&list, NOSPACE), "CORRUPT stays");
	alarm_list_free(&list);
	state_close(state);
	CHECK(state_open(directory, &state, error, sizeof(error)) == STATE_OK, "%s", error);
	CHECK(alarm_list_load(state, &list, error, sizeof(error)) == 0 && list.count == 1, "after DEACTIVATE and a reopen");
	alarm_list_free(&list);
	state_close(state);
}

int main(void)
{
	check_quota_and_costs();
	char directory[] = "/tmp/quorumd-space-quota-XXXXXX";
	if (!mkdtemp(directory))
		return 1;
	check_alarms(directory);
	char command[128];
	snprintf(command, sizeof(command), "rm -rf %s", directory);
	if (system(command) != 0)
		printf("could not remove %s\n", directory);
	if (failures)
		printf("%d failure(s)\n", failures);
	return failures != 0;
}
