/* consensus/quorum.c: majority arithmetic for one voter set (a joint configuration combines two in
 * progress.c's tracker). Pure functions over ids and a callback, like etcd's quorum package. */
#include <stdlib.h>

#include "internal.h"

static int compare_descending(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

uint64_t majority_committed_index(const struct id_set *voters, acked_index_fn acked, const void *context)
{
	size_t n = voters->count;
	if (n == 0)
		return UINT64_MAX; /* an empty half of a joint config never holds the other back */
	uint64_t on_stack[16];
	uint64_t *indexes = n <= 16 ? on_stack : xmalloc(n * sizeof(uint64_t));
	for (size_t k = 0; k < n; k++)
		indexes[k] = acked(context, voters->ids[k]);
	qsort(indexes, n, sizeof(uint64_t), compare_descending);
	/* Sorted from high to low, the (n/2+1)-th value is held by a majority. */
	uint64_t committed = indexes[n / 2];
	if (indexes != on_stack)
		free(indexes);
	return committed;
}

enum vote_result majority_vote_result(const struct id_set *voters, vote_of_fn vote_of, const void *context)
{
	size_t n = voters->count;
	if (n == 0)
		return VOTE_WON; /* the empty config wins every vote, again so joint configs work */
	size_t granted = 0, missing = 0;
	for (size_t k = 0; k < n; k++) {
		int vote = vote_of(context, voters->ids[k]);
		if (vote < 0)
			missing++;
		else if (vote > 0)
			granted++;
	}
	size_t quorum = n / 2 + 1;
	if (granted >= quorum)
		return VOTE_WON;
	if (granted + missing >= quorum)
		return VOTE_PENDING;
	return VOTE_LOST;
}
