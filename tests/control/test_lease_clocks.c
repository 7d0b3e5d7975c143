/* tests/control/test_lease_clocks.c: the leader's lease clocks keep exactly the leases the applied grants and
 * revokes leave, however many and in whatever order (the clocks are found through an index on the lease id,
 * whose deletions move entries: a lost or duplicated clock would be a lease never revoked, or revoked twice). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "node_leases.h"

enum { LEASES = 20000 };

static void apply(struct lease_clocks *clocks, int64_t id, int64_t ttl, bool revoked)
{
	struct lease_change change = {.id = id, .ttl = ttl, .revoked = revoked};
	struct lease_changes changes = {.changes = &change, .count = 1};
	lease_clocks_update(clocks, &changes);
}

/* Every clock in the array once, and each id's presence as `alive` says. */
static void expect_exactly(const struct lease_clocks *clocks, const int64_t *ids, const bool *alive, size_t count,
                           const char *when)
{
	size_t want = 0;
	for (size_t k = 0; k < count; k++)
		want += alive[k];
	CHECK(clocks->count == want, "%s: %zu clocks, want %zu", when, clocks->count, want);
	bool *seen = calloc(count, sizeof(*seen));
	for (size_t k = 0; k < clocks->count; k++) {
		size_t at = count;
		for (size_t j = 0; j < count; j++)
			if (ids[j] == clocks->clocks[k].id) {
				at = j;
				break;
			}
		CHECK(at < count && alive[at] && !seen[at], "%s: clock of lease %lld should not be there (or twice)", when,
		      (long long)clocks->clocks[k].id);
		if (at < count)
			seen[at] = true;
	}
	free(seen);
}

int main(void)
{
	struct node *node = calloc(1, sizeof(*node));
	struct lease_clocks clocks;
	lease_clocks_init(&clocks, node);
	int64_t *ids = malloc(LEASES * sizeof(*ids));
	bool *alive = calloc(LEASES, sizeof(*alive));
	srand(18);
	/* Sequential ids (as a member hands them out) and random ones, which collide in the index more. */
	for (size_t k = 0; k < LEASES; k++)
		ids[k] = k % 2 ? (int64_t)(0x694d7a8b00000000ull + k) : ((int64_t)rand() << 31 | rand()) + 1;
	for (size_t k = 0; k < LEASES; k++) {
		apply(&clocks, ids[k], 15, false);
		alive[k] = true;
	}
	expect_exactly(&clocks, ids, alive, LEASES, "after the grants");
	/* A lease granted again (a TTL change, a replay) keeps one clock, with the new TTL. */
	for (size_t k = 0; k < LEASES; k += 3)
		apply(&clocks, ids[k], 30, false);
	expect_exactly(&clocks, ids, alive, LEASES, "after granting a third again");
	for (size_t k = 0; k < clocks.count; k++) {
		bool regranted = false;
		for (size_t j = 0; j < LEASES; j += 3)
			regranted |= ids[j] == clocks.clocks[k].id;
		CHECK(clocks.clocks[k].ttl == (regranted ? 30 : 15), "lease %lld: TTL %lld",
		      (long long)clocks.clocks[k].id, (long long)clocks.clocks[k].ttl);
	}
	/* Revokes in random order, some of them twice (a retried revoke) and of leases that never were. */
	for (size_t round = 0; round < 3 * LEASES / 4; round++) {
		size_t k = (size_t)rand() % LEASES;
		apply(&clocks, ids[k], 0, true);
		alive[k] = false;
		apply(&clocks, -(int64_t)round - 1, 0, true);
	}
	expect_exactly(&clocks, ids, alive, LEASES, "after the revokes");
	/* What is left can still be found: revoking it all leaves nothing. */
	for (size_t k = 0; k < LEASES; k++) {
		apply(&clocks, ids[k], 0, true);
		alive[k] = false;
	}
	expect_exactly(&clocks, ids, alive, LEASES, "after revoking the rest");
	/* And the index works again after it emptied and after a reset (a snapshot installed). */
	for (size_t k = 0; k < 100; k++) {
		apply(&clocks, ids[k], 15, false);
		alive[k] = true;
	}
	expect_exactly(&clocks, ids, alive, LEASES, "after granting 100 anew");
	struct lease_changes reset = {.reset = true};
	lease_clocks_update(&clocks, &reset);
	memset(alive, 0, LEASES * sizeof(*alive));
	apply(&clocks, ids[5], 15, false);
	alive[5] = true;
	apply(&clocks, ids[5], 15, false);
	expect_exactly(&clocks, ids, alive, LEASES, "after a reset and one grant, twice");
	lease_clocks_free(&clocks);
	free(ids);
	free(alive);
	free(node);
	return failures != 0;
}
