/* tests/control/test_membership.c: the member list and etcd's reconfiguration rules, each rule with the
 * case that passes and the case that etcd refuses (with etcd's text). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membership.h"

#include "check.h"

static void add(struct membership *membership, uint64_t id, const char *name, const char *url, bool learner)
{
	const char *urls[] = {url};
	const char *none[] = {NULL};
	struct member member = {.id = id, .name = (char *)name, .peer_urls = (char **)urls, .peer_urls_count = 1,
	                        .client_urls = (char **)none, .client_urls_count = 0, .is_learner = learner};
	int rc = membership_add(membership, &member);
	CHECK(rc == MEMBERSHIP_OK, "add %llx: %s", (unsigned long long)id, membership_strerror(rc));
}

/* Which members this node hears: a bit per id 1..8. */
static unsigned connected_mask;
static bool connected(void *context, uint64_t id)
{
	(void)context;
	return id < 32 && (connected_mask >> id) & 1u;
}

static void test_changes_and_json(void)
{
	struct membership membership;
	membership_init(&membership, 0xef37ad9dc622a7c4ULL);
	add(&membership, 0x8211f1d0f64f3269ULL, "infra1", "http://127.0.0.1:12380", false);
	add(&membership, 0x91bc3c398fb3c146ULL, "infra2", "http://127.0.0.1:22380", false);
	add(&membership, 0xfd422379fda50e48ULL, "", "http://127.0.0.1:32380", true);
	const char *client[] = {"http://127.0.0.1:32379"};
	CHECK(membership_set_attributes(&membership, 0xfd422379fda50e48ULL, "infra3", client, 1) == MEMBERSHIP_OK, "attrs");
	const char *clash[] = {"http://127.0.0.1:22380"};
	const struct member *owner = membership_find_peer_url(&membership, clash, 1, 0);
	CHECK(owner && owner->id == 0x91bc3c398fb3c146ULL, "peer URL owner");
	CHECK(!membership_find_peer_url(&membership, clash, 1, 0x91bc3c398fb3c146ULL), "except the member itself");
	CHECK(membership_promote(&membership, 0x8211f1d0f64f3269ULL) == MEMBERSHIP_ERR_MEMBER_NOT_LEARNER, "voter");
	CHECK(membership_promote(&membership, 0xfd422379fda50e48ULL) == MEMBERSHIP_OK, "learner promoted");
	CHECK(membership_remove(&membership, 0x91bc3c398fb3c146ULL) == MEMBERSHIP_OK, "remove");
	CHECK(membership_remove(&membership, 0x91bc3c398fb3c146ULL) == MEMBERSHIP_ERR_ID_REMOVED, "twice");
	CHECK(membership_remove(&membership, 0x1234) == MEMBERSHIP_ERR_ID_NOT_FOUND, "unknown");
	CHECK(membership_is_removed(&membership, 0x91bc3c398fb3c146ULL), "remembered as removed");
	add(&membership, 0x2be2218c372f48baULL, "", "http://127.0.0.1:42380", false);
	struct member again = {.id = 0x91bc3c398fb3c146ULL, .name = "", .peer_urls = (char **)clash,
	                       .peer_urls_count = 1};
	CHECK(membership_add(&membership, &again) == MEMBERSHIP_ERR_ID_REMOVED, "a removed id never returns");

	/* Round trip through the state machine's blob keeps everything, 64-bit ids included. */
	char *blob = membership_encode(&membership);
	struct membership decoded;
	CHECK(membership_decode(blob, strlen(blob), &decoded) == MEMBERSHIP_OK, "decode %s", blob);
	CHECK(decoded.cluster_id == membership.cluster_id && decoded.count == 3 && decoded.removed_count == 1,
	      "decoded %zu members %zu removed", decoded.count, decoded.removed_count);
	const struct member *infra3 = membership_find(&decoded, 0xfd422379fda50e48ULL);
	CHECK(infra3 && strcmp(infra3->name, "infra3") == 0 && !infra3->is_learner && infra3->client_urls_count == 1,
	      "infra3 round trip");
	char *again_blob = membership_encode(&decoded);
	CHECK(strcmp(blob, again_blob) == 0, "stable encoding");
	free(blob);
	free(again_blob);
	membership_free(&decoded);

	/* The conf-change context form. */
	const struct member *added = membership_find(&membership, 0x2be2218c372f48baULL);
	CHECK(added != NULL, "the added member is listed");
	if (!added) {
		membership_free(&membership);
		return;
	}
	char *json = member_to_json(added);
	CHECK(strstr(json, "\"peerURLs\":[\"http://127.0.0.1:42380\"]") != NULL, "etcd's field names (peerURLs) missing");
	struct member parsed;
	CHECK(member_from_json(json, strlen(json), &parsed) == MEMBERSHIP_OK && parsed.id == 0x2be2218c372f48baULL,
	      "member round trip");
	member_free(&parsed);
	free(json);
	CHECK(member_from_json("{\"id\":\"x\"}", 10, &parsed) == MEMBERSHIP_ERR_INVALID, "bad context refused");
	membership_free(&membership);
}

static void test_strict_reconfig_rules(void)
{
	struct membership membership;
	membership_init(&membership, 1);
	add(&membership, 1, "infra1", "http://h:1", false);
	add(&membership, 2, "infra2", "http://h:2", false);
	add(&membership, 3, "infra3", "http://h:3", false);
	connected_mask = 1u << 1 | 1u << 2 | 1u << 3;
	CHECK(membership_may_add(&membership, false, true, 1, connected, NULL) == MEMBERSHIP_OK, "healthy add");
	connected_mask = 1u << 1 | 1u << 2;
	CHECK(membership_may_add(&membership, false, true, 1, connected, NULL) == MEMBERSHIP_ERR_UNHEALTHY,
	      "a voter down: unhealthy cluster");
	CHECK(membership_may_add(&membership, false, false, 1, connected, NULL) == MEMBERSHIP_OK, "not strict");
	/* Two started + one unstarted: adding a voter would leave started (2) short of quorum of 4 (3). */
	add(&membership, 4, "", "http://h:4", false);
	connected_mask = 0x1e;
	CHECK(membership_may_add(&membership, false, true, 1, connected, NULL) == MEMBERSHIP_OK,
	      "3 started of 5: quorum 3");
	struct membership small;
	membership_init(&small, 1);
	add(&small, 1, "infra1", "http://h:1", false);
	add(&small, 2, "infra2", "http://h:2", false);
	add(&small, 3, "", "http://h:3", false);
	CHECK(membership_may_add(&small, false, true, 1, connected, NULL) == MEMBERSHIP_ERR_NOT_ENOUGH_STARTED,
	      "2 started of 4 needed 3");
	CHECK(membership_may_add(&small, true, true, 1, connected, NULL) == MEMBERSHIP_OK, "a learner is fine");
	add(&small, 5, "", "http://h:5", true);
	CHECK(membership_may_add(&small, true, true, 1, connected, NULL) == MEMBERSHIP_ERR_TOO_MANY_LEARNERS,
	      "one learner at a time");
	CHECK(membership_may_promote(&small, 1, true) == MEMBERSHIP_ERR_MEMBER_NOT_LEARNER, "promote a voter");
	CHECK(membership_may_promote(&small, 9, true) == MEMBERSHIP_ERR_ID_NOT_FOUND, "promote unknown");
	/* Removing a started voter of {1,2 started; 3 unstarted} leaves 1 started of 2: refused. */
	CHECK(membership_may_remove(&small, 2, true, 1, connected, NULL) == MEMBERSHIP_ERR_NOT_ENOUGH_STARTED,
	      "remove would leave too few started");
	CHECK(membership_may_remove(&small, 3, true, 1, connected, NULL) == MEMBERSHIP_OK, "remove the unstarted one");
	CHECK(membership_may_remove(&small, 5, true, 1, connected, NULL) == MEMBERSHIP_OK, "a learner goes freely");
	CHECK(membership_may_remove(&small, 2, false, 1, connected, NULL) == MEMBERSHIP_OK, "not strict");
	membership_free(&small);

	/* Quorum protection: 3 voters, one already down; removing a live one would leave 1 of 2. */
	struct membership three;
	membership_init(&three, 1);
	add(&three, 1, "a", "http://h:1", false);
	add(&three, 2, "b", "http://h:2", false);
	add(&three, 3, "c", "http://h:3", false);
	connected_mask = 1u << 1 | 1u << 2;
	CHECK(membership_may_remove(&three, 2, true, 1, connected, NULL) == MEMBERSHIP_ERR_UNHEALTHY,
	      "removing a live member while another is down");
	CHECK(membership_may_remove(&three, 3, true, 1, connected, NULL) == MEMBERSHIP_OK, "removing the down one");
	membership_free(&three);
	membership_free(&membership);
}

int main(void)
{
	test_changes_and_json();
	test_strict_reconfig_rules();
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
