/* tests/sim/raft_sim.c: build/tests/raft-sim, proof of the Raft core by deterministic simulation.
 *
 *   raft-sim --seeds N --first-seed S --nodes K [--steps M] [--snapshot-count C --catchup-entries E]
 *            [--verbose] [--demo]
 *
 * Runs N seeded schedules of a K-member simulated cluster, each a pure function of its seed (see
 * cluster.c for the phases, checker.c for the properties). A failing seed prints what broke and the
 * command that replays it with a trace; the last line is always "P passed, F failed". --demo tells the
 * story of one 5-member run in plain sentences instead (demo.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* Events in the fault phase per seed and member: every member ticks and exchanges heartbeats, so a
 * bigger cluster needs more events for the same simulated time (about 5 to 10 simulated seconds, 50 to
 * 100 election timeouts). Sized so that the CI seed counts (1000 x 3, 700 x 5, 400 x 7 members) stay
 * within a few minutes under ASan+UBSan on two cores. */
#define DEFAULT_STEPS_PER_MEMBER 2000

static void usage(FILE *out)
{
	fprintf(out, "usage: raft-sim --seeds N --first-seed S --nodes K [--steps M]\n"
	             "                [--snapshot-count C --catchup-entries E] [--verbose] [--demo]\n"
	             "  runs N deterministic simulations of a K-member Raft cluster (seeds S..S+N-1) and checks\n"
	             "  Raft's safety properties after every step and liveness once the faults stop\n"
	             "  --snapshot-count C: every member snapshots every C applied entries (0: only occasional\n"
	             "  random snapshots) and compacts its log up to E entries before the snapshot\n"
	             "  (--catchup-entries); without them each seed draws its own policy\n");
}

static bool parse_number(const char *text, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
		return false;
	}
	*out = value;
	return true;
}

int main(int argc, char **argv)
{
	struct sim_options options = {.seeds = 1, .first_seed = 1, .nodes = 3};
	bool steps_given = false, snapshot_count_given = false, catchup_given = false;
	for (int i = 1; i < argc; i++) {
		uint64_t value = 0;
		const char *name = argv[i];
		bool takes_value = strcmp(name, "--seeds") == 0 || strcmp(name, "--first-seed") == 0 ||
		                   strcmp(name, "--nodes") == 0 || strcmp(name, "--steps") == 0 ||
		                   strcmp(name, "--snapshot-count") == 0 || strcmp(name, "--catchup-entries") == 0;
		if (takes_value) {
			if (i + 1 >= argc || !parse_number(argv[i + 1], &value)) {
				fprintf(stderr, "raft-sim: %s needs a non-negative number\n", name);
				usage(stderr);
				return 2;
			}
			i++;
		}
		if (strcmp(name, "--seeds") == 0) {
			options.seeds = value;
		} else if (strcmp(name, "--first-seed") == 0) {
			options.first_seed = value;
		} else if (strcmp(name, "--nodes") == 0) {
			if (value < 1 || value > 9) {
				fprintf(stderr, "raft-sim: --nodes must be between 1 and 9\n");
				return 2;
			}
			options.nodes = (int)value;
		} else if (strcmp(name, "--steps") == 0) {
			options.steps = value;
			steps_given = true;
		} else if (strcmp(name, "--snapshot-count") == 0) {
			options.snapshot_count = value;
			snapshot_count_given = true;
		} else if (strcmp(name, "--catchup-entries") == 0) {
			options.catchup_entries = value;
			catchup_given = true;
		} else if (strcmp(name, "--verbose") == 0) {
			options.verbose = true;
		} else if (strcmp(name, "--demo") == 0) {
			options.demo = true;
		} else if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "raft-sim: unknown argument '%s'\n", name);
			usage(stderr);
			return 2;
		}
	}
	if (snapshot_count_given != catchup_given) {
		fprintf(stderr, "raft-sim: --snapshot-count and --catchup-entries go together\n");
		return 2;
	}
	options.snapshot_policy_given = snapshot_count_given;
	if (!steps_given) {
		options.steps = DEFAULT_STEPS_PER_MEMBER * (uint64_t)options.nodes;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (options.demo) {
		return demo_run(&options);
	}

	uint64_t passed = 0, failed = 0;
	for (uint64_t n = 0; n < options.seeds; n++) {
		uint64_t seed = options.first_seed + n;
		struct sim_cluster *cluster = malloc(sizeof(*cluster));
		if (cluster == NULL) {
			abort();
		}
		cluster_init(cluster, &options, seed);
		bool ok = !cluster->failed && cluster_run(cluster);
		if (ok) {
			passed++;
			if (options.verbose) {
				const struct sim_checker *c = &cluster->checker;
				printf("seed %llu passed: %llu steps, %llu ms simulated, %llu leaders, %llu entries applied, %llu reads "
				       "checked, %llu snapshots taken, %llu sent, %llu installed, %llu compactions, %llu configurations "
				       "checked, %llu crashes, %llu partitions, %llu/%llu conf changes accepted\n",
				       (unsigned long long)seed, (unsigned long long)cluster->steps, (unsigned long long)cluster->now,
				       (unsigned long long)c->leaders_checked, (unsigned long long)c->entries_applied,
				       (unsigned long long)c->reads_checked, (unsigned long long)cluster->workload.snapshots_created,
				       (unsigned long long)c->snapshots_sent, (unsigned long long)c->snapshots_installed,
				       (unsigned long long)c->compactions, (unsigned long long)c->configs_checked,
				       (unsigned long long)cluster->crashes, (unsigned long long)cluster->partitions,
				       (unsigned long long)cluster->workload.conf_changes_accepted,
				       (unsigned long long)cluster->workload.conf_changes_proposed);
			}
		} else {
			failed++;
			printf("seed %llu FAILED: %s\n", (unsigned long long)seed, cluster->failure);
			char steps[48] = "", policy[80] = "";
			if (steps_given) {
				snprintf(steps, sizeof(steps), " --steps %llu", (unsigned long long)options.steps);
			}
			if (options.snapshot_policy_given) {
				snprintf(policy, sizeof(policy), " --snapshot-count %llu --catchup-entries %llu",
				         (unsigned long long)options.snapshot_count, (unsigned long long)options.catchup_entries);
			}
			printf("  replay: build/tests/raft-sim --seeds 1 --first-seed %llu --nodes %d%s%s --verbose\n",
			       (unsigned long long)seed, options.nodes, steps, policy);
		}
		cluster_free(cluster);
		free(cluster);
	}
	printf("%llu passed, %llu failed\n", (unsigned long long)passed, (unsigned long long)failed);
	return failed == 0 ? 0 : 1;
}
