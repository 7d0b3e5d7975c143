/* tests/raft/harness.h: a tiny in-test cluster for the Raft core's unit tests.
 *
 * A few cores (ids 1..n) built with raft_new + raft_bootstrap (or from a restored log), a message queue
 * that is delivered by hand, and storage that persists every Ready at once, in the order raft.h asks
 * for. The harness also checks the Ready contract and the cluster-wide safety properties as it goes
 * (one leader per term, applied entries agree, commit never moves back), so every test checks them
 * too. Tests read like the protocol: cluster_new(3); campaign(c, 1); stabilize(c); propose(c, 1, "x").
 *
 * The check macros and the test registry live here as well: a failed check prints the test, the place
 * and expected versus got, and marks the test failed; REQUIRE also ends the test (longjmp), and the
 * runner frees the clusters the test created.
 */
#ifndef QUORUMD_TESTS_RAFT_HARNESS_H
#define QUORUMD_TESTS_RAFT_HARNESS_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* ---- test registry and checks ------------------------------------------------------------------ */

struct test_case {
	const char *name; /* etcd-like: TestLeaderCommitEntry */
	void (*run)(void);
};

/* Each file exports one NULL-terminated table. */
extern const struct test_case election_tests[];
extern const struct test_case replication_tests[];
extern const struct test_case paper_figure_tests[];
extern const struct test_case feature_tests[];
extern const struct test_case membership_tests[];
extern const struct test_case bad_input_tests[];
extern const struct test_case restart_tests[];

void test_fail(const char *file, int line, const char *format, ...) __attribute__((format(printf, 3, 4)));
/* Ends the current test after a failed REQUIRE. */
_Noreturn void test_abort(void);

#define CHECK(condition)                                                                        \
	((condition) ? (void)0 : test_fail(__FILE__, __LINE__, "expected %s", #condition))
#define REQUIRE(condition)                                                                      \
	do {                                                                                         \
		if (!(condition)) {                                                                  \
			test_fail(__FILE__, __LINE__, "required %s", #condition);                    \
			test_abort();                                                                \
		}                                                                                    \
	} while (0)
#define CHECK_U64(what, expected, got)                                                          \
	do {                                                                                         \
		unsigned long long expected_value_ = (unsigned long long)(expected);                 \
		unsigned long long got_value_ = (unsigned long long)(got);                           \
		if (expected_value_ != got_value_)                                                   \
			test_fail(__FILE__, __LINE__, "%s: expected %llu, got %llu", (what),         \
			          expected_value_, got_value_);                                      \
	} while (0)
#define REQUIRE_U64(what, expected, got)                                                        \
	do {                                                                                         \
		unsigned long long expected_value_ = (unsigned long long)(expected);                 \
		unsigned long long got_value_ = (unsigned long long)(got);                           \
		if (expected_value_ != got_value_) {                                                 \
			test_fail(__FILE__, __LINE__, "%s: expected %llu, got %llu", (what),         \
			          expected_value_, got_value_);                                      \
			test_abort();                                                                \
		}                                                                                    \
	} while (0)
/* Return codes are compared by name so a failure reads "expected RAFT_OK (ok), got ...". */
#define CHECK_RC(expected, got) check_rc(__FILE__, __LINE__, #got, (expected), (got))
#define REQUIRE_RC(expected, got)                                                               \
	do {                                                                                         \
		if (!check_rc(__FILE__, __LINE__, #got, (expected), (got)))                          \
			test_abort();                                                                \
	} while (0)
bool check_rc(const char *file, int line, const char *expression, int expected, int got);
const char *raft_error_name(int code);

/* ---- the cluster --------------------------------------------------------------------------------- */

#define HARNESS_MAX_NODES 8

/* What the harness's storage holds for one member: the durable state a restart would read. */
struct stored_entry {
	uint64_t index;
	uint64_t term;
	int type;
	uint8_t *data;
	size_t length;
};

struct applied_entry {
	uint64_t index;
	uint64_t term;
	int type;
	uint8_t *data;
	size_t length;
};

struct node {
	uint64_t id;
	raft_t *raft; /* NULL: not started (a member added later) or crashed */
	struct raft_config config;
	/* Storage, written from each Ready before raft_persisted. */
	Raftpb__HardState hard_state;
	uint64_t snapshot_index;
	uint64_t snapshot_term;
	uint8_t *snapshot_packed; /* the last snapshot installed, as stored (NULL: none) */
	size_t snapshot_packed_length;
	struct stored_entry *log; /* log[k] has index snapshot_index + 1 + k */
	size_t log_count;
	/* The application: every committed entry delivered, in order. */
	uint64_t applied_index;
	struct applied_entry *applied;
	size_t applied_count;
	struct raft_read_state *read_states; /* contexts copied */
	size_t read_states_count;
	uint64_t snapshots_installed;
	/* The entries of the last Ready that had some: which indexes storage was asked to write. */
	uint64_t last_entries_first;
	size_t last_entries_count;
	enum raft_role role;
	uint64_t leader;
	/* Asynchronous storage (set by the test): a Ready's write completes only at complete_writes(),
	 * which reports it with raft_persisted and only then releases its after-persist messages. */
	bool asynchronous;
	struct pending_write *pending;
	size_t pending_count;
	uint64_t durable_index; /* highest index reported with raft_persisted */
};

/* A write handed to asynchronous storage, completed in order. */
struct pending_write {
	uint64_t index, term;
	Raftpb__Message **messages; /* after-persist messages, owned */
	size_t count;
};

/* A message on the wire: an unpacked copy the test may inspect or change before delivery. */
struct queued_message {
	Raftpb__Message *message;
};

/* Decides whether the network delivers a message (false: dropped). */
typedef bool (*network_filter_fn)(const Raftpb__Message *message, void *argument);

struct cluster {
	size_t size; /* nodes 1..size exist in the harness (started or not) */
	struct node nodes[HARNESS_MAX_NODES + 1];
	struct queued_message *queue;
	size_t queue_count;
	size_t queue_capacity;
	bool link_down[HARNESS_MAX_NODES + 1][HARNESS_MAX_NODES + 1]; /* [from][to] */
	network_filter_fn filter;
	void *filter_argument;
	/* Counts of messages sent, by type, since the cluster started (delivered or not). */
	uint64_t sent_by_type[32];
	/* Cluster-wide safety: the term of each leader seen, and the committed log as first applied. */
	uint64_t leader_of_term[4096];
	struct applied_entry *committed; /* committed[i - 1] is index i as first applied anywhere */
	size_t committed_count;
	/* The configuration every node is created with (ids and seeds filled per node). */
	struct raft_config base_config;
};

/* Configuration knobs: a function that edits each member's config before raft_new. */
typedef void (*configure_fn)(struct raft_config *config);

/* n voters bootstrapped at term 1 with raft_config_defaults (election 10 ticks, heartbeat 1) but
 * PreVote and CheckQuorum off (the paper's protocol; tests turn them on with a configure_fn); the
 * bootstrap entries are persisted and applied before this returns. Freed by the runner. */
struct cluster *cluster_new(size_t voters);
struct cluster *cluster_new_configured(size_t voters, configure_fn configure);
/* voters bootstrapped as above, and nodes voters+1..size present but not started (members to add). */
struct cluster *cluster_new_sized(size_t voters, size_t size, configure_fn configure);
/* A cluster whose nodes are not started: start each with node_start_* below. */
struct cluster *cluster_new_empty(size_t size, configure_fn configure);
void cluster_free(struct cluster *cluster);

/* Starts node id with an empty log and no configuration (a member about to be added). */
void node_start_empty(struct cluster *cluster, uint64_t id);
/* Starts node id from a restored state: a snapshot at index 1, term 1 whose configuration has voters
 * 1..voters, then entries 2.. with the given terms (terms[k] is the term of index k + 2), and a hard
 * state (term, vote, commit 1). Models the paper's figures, whose logs all begin with a term-1 entry. */
void node_start_restored(struct cluster *cluster, uint64_t id, size_t voters, const uint64_t *terms,
                         size_t terms_count, uint64_t term, uint64_t vote);

/* Crash and restart: frees node id's core and creates a new one from what its storage holds (hard
 * state, snapshot, entries) with config.applied = the index its application reached; messages in
 * flight to it are kept (the network does not know). */
void node_restart(struct cluster *cluster, uint64_t id);

struct node *node(struct cluster *cluster, uint64_t id);
struct raft_status node_status(struct cluster *cluster, uint64_t id);

/* Inputs. Each returns the core's result code. */
int campaign(struct cluster *cluster, uint64_t id);
int propose(struct cluster *cluster, uint64_t id, const char *text);
int step(struct cluster *cluster, uint64_t to, const Raftpb__Message *message);
void tick(struct cluster *cluster, uint64_t id, int ticks);

/* Takes and persists one Ready of node id (if any), queues its messages; true when there was one. */
bool process_ready(struct cluster *cluster, uint64_t id);
/* Completes every write node id has in flight (asynchronous storage); returns how many. */
size_t complete_writes(struct cluster *cluster, uint64_t id);
/* Processes Readies of every node (no delivery). */
void process_all_readies(struct cluster *cluster);
/* Delivers every message queued now (not those their delivery produces); returns how many. */
size_t deliver_all(struct cluster *cluster);
/* Readies and deliveries until nothing moves; fails the test if it does not settle. */
void stabilize(struct cluster *cluster);
/* Ticks every started node once and stabilizes, n times. */
void tick_all_and_stabilize(struct cluster *cluster, int rounds);
/* campaign(id) + stabilize, requiring id to become the leader. */
void elect(struct cluster *cluster, uint64_t id);

/* The network. */
void isolate(struct cluster *cluster, uint64_t id);
void cut(struct cluster *cluster, uint64_t a, uint64_t b); /* both directions */
void heal(struct cluster *cluster);
void set_filter(struct cluster *cluster, network_filter_fn filter, void *argument);
void drop_queue(struct cluster *cluster);
/* The k-th queued message (in queue order) matching from/to/type (0 = any), or NULL. */
Raftpb__Message *queued(struct cluster *cluster, uint64_t from, uint64_t to, int type, size_t k);
size_t queued_count(struct cluster *cluster, uint64_t from, uint64_t to, int type);
/* Delivers and removes the queued messages matching from/to/type; returns how many. */
size_t deliver_matching(struct cluster *cluster, uint64_t from, uint64_t to, int type);
size_t drop_matching(struct cluster *cluster, uint64_t from, uint64_t to, int type);

/* Proposes a membership change on node id; returns the core's code. */
int propose_change(struct cluster *cluster, uint64_t id, int type, uint64_t node_id);
/* Joint consensus: count (type, node) pairs with a transition; an empty list leaves a joint config. */
int propose_change_v2(struct cluster *cluster, uint64_t id, int transition, const int *types,
                      const uint64_t *node_ids, size_t count);
/* The configuration node id has in force, as sorted id lists. */
bool conf_voters_are(struct cluster *cluster, uint64_t id, const uint64_t *voters, size_t count);
bool conf_has_learner(struct cluster *cluster, uint64_t id, uint64_t learner);

/* Queries. */
uint64_t leader_of(struct cluster *cluster); /* the one leader of the highest term, or 0 */
bool logs_equal(struct cluster *cluster, uint64_t a, uint64_t b, char *why, size_t why_length);
/* Terms of node id's log, indexes first..last, into terms (returns count). */
size_t log_terms(struct cluster *cluster, uint64_t id, uint64_t *terms, size_t max);
bool applied_contains(struct cluster *cluster, uint64_t id, const char *text);

/* Message building for hand-made RPCs: entries live in a static pool reset by message_reset(). */
Raftpb__Message message(int type, uint64_t from, uint64_t to, uint64_t term);
/* Attaches count entries with indexes first.. and the given terms. */
void message_entries(Raftpb__Message *message, uint64_t first_index, const uint64_t *terms, size_t count);

#endif
