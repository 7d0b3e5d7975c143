/* tests/sim/workload.c: what clients, operators and the environment do to the simulated cluster.
 *
 * The workload: client writes with unique payloads ("W" + sequence, so any entry traces back to its
 * proposal), batched writes, ReadIndex reads with unique contexts, leadership transfers, forced
 * campaigns, snapshots and compaction, the application making its state durable, and membership changes
 * (add voter, add learner, promote, demote, remove, remove the leader, joint changes with automatic or
 * explicit leave). The faults: crashes with later restarts, partitions of several shapes, loss,
 * duplication, delay and corruption rates that change over time, and forged bytes. In the final quiet
 * phase only the liveness probe and harmless client traffic remain.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define ULL(x) ((unsigned long long)(x))

void workload_init(struct sim_workload *workload)
{
	*workload = (struct sim_workload){0};
	workload->next_write = 1;
	workload->next_read = 1;
}

void workload_free(struct sim_workload *workload)
{
	free(workload->proposed_at);
	*workload = (struct sim_workload){0};
}

static void encode_payload(uint8_t out[9], char kind, uint64_t sequence)
{
	out[0] = (uint8_t)kind;
	for (int i = 0; i < 8; i++) {
		out[1 + i] = (uint8_t)(sequence >> (8 * i));
	}
}

bool payload_write_sequence(const uint8_t *data, size_t length, uint64_t *sequence, bool *marker)
{
	if (data == NULL || length != 9 || (data[0] != 'W' && data[0] != 'M')) {
		return false;
	}
	*sequence = 0;
	for (int i = 0; i < 8; i++) {
		*sequence |= (uint64_t)data[1 + i] << (8 * i);
	}
	*marker = data[0] == 'M';
	return true;
}

static uint64_t next_write(struct sim_cluster *cluster)
{
	struct sim_workload *workload = &cluster->workload;
	uint64_t sequence = workload->next_write++;
	if (sequence >= workload->proposed_capacity) {
		size_t old = workload->proposed_capacity;
		workload->proposed_capacity = old ? old * 2 : 1024;
		workload->proposed_at = realloc(workload->proposed_at, workload->proposed_capacity * sizeof(uint64_t));
		if (workload->proposed_at == NULL) {
			abort();
		}
		memset(workload->proposed_at + old, 0, (workload->proposed_capacity - old) * sizeof(uint64_t));
	}
	/* +1 so that a write proposed at time 0 is still told apart from "never proposed" */
	workload->proposed_at[sequence] = cluster->now + 1;
	workload->writes_proposed++;
	return sequence;
}

static size_t random_alive(struct sim_cluster *cluster)
{
	size_t live[SIM_MAX_MEMBERS], count = 0;
	for (size_t i = 0; i < cluster->members_count; i++) {
		if (cluster->members[i].state == MEMBER_ALIVE) {
			live[count++] = i;
		}
	}
	return count ? live[rng_below(&cluster->rng, count)] : SIZE_MAX;
}

static size_t pick_target(struct sim_cluster *cluster)
{
	struct sim_member *leader = cluster_leader(cluster);
	if (leader != NULL && rng_chance(&cluster->rng, 700)) {
		return cluster_slot_of(cluster, leader);
	}
	return random_alive(cluster);
}

static uint64_t propose_payload(struct sim_cluster *cluster, size_t slot, char kind)
{
	struct sim_member *member = &cluster->members[slot];
	uint64_t sequence = next_write(cluster);
	uint8_t payload[9];
	encode_payload(payload, kind, sequence);
	uint64_t index = 0;
	int result = raft_propose(member->raft, payload, sizeof(payload), &index);
	sim_trace(cluster, "propose %s %llu on member %llu: %s (index %llu)", kind == 'M' ? "marker" : "write",
	          ULL(sequence), ULL(member->id), raft_strerror(result), ULL(index));
	member_process(cluster, slot);
	return result == RAFT_OK ? sequence : 0;
}

uint64_t workload_propose_write(struct sim_cluster *cluster, size_t slot)
{
	return propose_payload(cluster, slot, 'W');
}

static void propose_batch(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	uint8_t payloads[5][9];
	struct raft_buffer buffers[5];
	size_t count = (size_t)rng_range(&cluster->rng, 2, 5);
	for (size_t i = 0; i < count; i++) {
		encode_payload(payloads[i], 'W', next_write(cluster));
		buffers[i] = (struct raft_buffer){payloads[i], sizeof(payloads[i])};
	}
	uint64_t first = 0;
	int result = raft_propose_batch(member->raft, buffers, count, &first);
	sim_trace(cluster, "propose a batch of %zu writes on member %llu: %s (first index %llu)", count, ULL(member->id),
	          raft_strerror(result), ULL(first));
	member_process(cluster, slot);
}

static void issue_read(struct sim_cluster *cluster, size_t slot)
{
	struct sim_member *member = &cluster->members[slot];
	uint64_t context = cluster->workload.next_read++;
	uint8_t bytes[9];
	encode_payload(bytes, 'R', context);
	checker_read_issued(cluster, slot, context);
	int result = raft_read_index(member->raft, bytes, sizeof(bytes));
	sim_trace(cluster, "read %llu on member %llu: %s", ULL(context), ULL(member->id), raft_strerror(result));
	member_process(cluster, slot);
}

static const char *change_name(int type)
{
	switch (type) {
	case RAFT_CC_ADD_NODE:
		return "add voter";
	case RAFT_CC_REMOVE_NODE:
		return "remove";
	case RAFT_CC_UPDATE_NODE:
		return "update";
	default:
		return "add learner";
	}
}

/* Proposes changes through the single-change API or ConfChangeV2 (always V2 for several changes). */
static void propose_changes(struct sim_cluster *cluster, size_t slot, const Raftpb__ConfChangeSingle *changes,
                            size_t count, int transition)
{
	struct sim_member *member = &cluster->members[slot];
	uint64_t index = 0;
	int result;
	char text[160];
	size_t used = 0;
	text[0] = '\0';
	for (size_t i = 0; i < count && used < sizeof(text) - 40; i++) {
		used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s %llu", i ? ", " : "",
		                         change_name(changes[i].type), ULL(changes[i].node_id));
	}
	if (count == 1 && transition < 0) {
		Raftpb__ConfChange change = RAFTPB__CONF_CHANGE__INIT;
		change.id = cluster->workload.conf_changes_proposed + 1;
		change.type = changes[0].type;
		change.node_id = changes[0].node_id;
		result = raft_propose_conf_change(member->raft, &change, &index);
	} else {
		Raftpb__ConfChangeSingle copies[4];
		Raftpb__ConfChangeSingle *pointers[4];
		for (size_t i = 0; i < count; i++) {
			copies[i] = changes[i];
			pointers[i] = &copies[i];
		}
		Raftpb__ConfChangeV2 change = RAFTPB__CONF_CHANGE_V2__INIT;
		change.transition = (Raftpb__ConfChangeTransition)(transition < 0 ? 0 : transition);
		change.n_changes = count;
		change.changes = count ? pointers : NULL;
		result = raft_propose_conf_change_v2(member->raft, &change, &index);
	}
	cluster->workload.conf_changes_proposed++;
	if (result == RAFT_OK) {
		cluster->workload.conf_changes_accepted++;
	}
	sim_trace(cluster, "conf change on leader %llu: %s%s%s: %s (index %llu)", ULL(member->id),
	          count ? text : "leave the joint configuration",
	          transition == 1 ? " (joint, auto leave)" : transition == 2 ? " (joint, explicit leave)" : "",
	          transition == 0 && count > 1 ? " (joint, auto)" : "", raft_strerror(result), ULL(index));
	member_process(cluster, slot);
}

static Raftpb__ConfChangeSingle single(int type, uint64_t id)
{
	Raftpb__ConfChangeSingle change = RAFTPB__CONF_CHANGE_SINGLE__INIT;
	change.type = (Raftpb__ConfChangeType)type;
	change.node_id = id;
	return change;
}

static void reconfigure(struct sim_cluster *cluster)
{
	struct sim_member *leader = cluster_leader(cluster);
	if (leader == NULL) {
		return;
	}
	size_t slot = cluster_slot_of(cluster, leader);
	struct raft_conf_view view;
	raft_get_conf(leader->raft, &view);
	if (view.voters_outgoing_count > 0) {
		if (!view.auto_leave) {
			propose_changes(cluster, slot, NULL, 0, 0);
		}
		return;
	}
	size_t voters = view.voters_count, learners = view.learners_count;
	size_t nodes = (size_t)cluster->options.nodes;
	size_t minimum = nodes > 1 ? nodes - 1 : 1, maximum = nodes + 1;
	bool room = cluster->members_count + 4 < SIM_MAX_MEMBERS;
	uint64_t some_voter = voters ? view.voters[rng_below(&cluster->rng, voters)] : 0;
	uint64_t some_learner = learners ? view.learners[rng_below(&cluster->rng, learners)] : 0;
	int transition = rng_chance(&cluster->rng, 500) ? -1 : 0; /* -1: the v1 API for a single change */
	Raftpb__ConfChangeSingle changes[2];
	for (int attempt = 0; attempt < 6; attempt++) {
		switch (rng_below(&cluster->rng, 9)) {
		case 0: /* add a voter */
			if (voters < maximum && room) {
				changes[0] = single(RAFT_CC_ADD_NODE, cluster->next_member_id++);
				propose_changes(cluster, slot, changes, 1, transition);
				return;
			}
			break;
		case 1: /* add a learner */
			if (learners < 2 && room) {
				changes[0] = single(RAFT_CC_ADD_LEARNER_NODE, cluster->next_member_id++);
				propose_changes(cluster, slot, changes, 1, transition);
				return;
			}
			break;
		case 2: /* promote a learner: ADD_NODE on a learner */
			if (learners > 0 && voters < maximum) {
				changes[0] = single(RAFT_CC_ADD_NODE, some_learner);
				propose_changes(cluster, slot, changes, 1, transition);
				return;
			}
			break;
		case 3: /* remove a voter, perhaps the leader itself */
			if (voters > minimum) {
				uint64_t id = rng_chance(&cluster->rng, 300) ? leader->id : some_voter;
				changes[0] = single(RAFT_CC_REMOVE_NODE, id);
				propose_changes(cluster, slot, changes, 1, transition);
				return;
			}
			break;
		case 4: /* remove a learner */
			if (learners > 0) {
				changes[0] = single(RAFT_CC_REMOVE_NODE, some_learner);
				propose_changes(cluster, slot, changes, 1, transition);
				return;
			}
			break;
		case 5: /* demote a voter to learner */
			if (voters > minimum && some_voter != leader->id) {
				changes[0] = single(RAFT_CC_ADD_LEARNER_NODE, some_voter);
				propose_changes(cluster, slot, changes, 1, transition);
				return;
			}
			break;
		case 6: /* replace a voter through a joint configuration */
			if (room && voters >= 1) {
				changes[0] = single(RAFT_CC_ADD_NODE, cluster->next_member_id++);
				changes[1] = single(RAFT_CC_REMOVE_NODE, some_voter);
				propose_changes(cluster, slot, changes, 2, (int)rng_below(&cluster->rng, 3));
				return;
			}
			break;
		case 7: /* one change, but through a joint configuration left explicitly or automatically */
			if (learners > 0 && voters < maximum) {
				changes[0] = single(RAFT_CC_ADD_NODE, some_learner);
				propose_changes(cluster, slot, changes, 1, (int)rng_range(&cluster->rng, 1, 2));
				return;
			}
			break;
		default: /* an update changes nothing in the configuration but must still commit */
			changes[0] = single(RAFT_CC_UPDATE_NODE, some_voter);
			propose_changes(cluster, slot, changes, 1, transition);
			return;
		}
	}
}

static void transfer(struct sim_cluster *cluster)
{
	struct sim_member *leader = cluster_leader(cluster);
	if (leader == NULL) {
		return;
	}
	struct raft_conf_view view;
	raft_get_conf(leader->raft, &view);
	uint64_t target;
	if (view.learners_count && rng_chance(&cluster->rng, 100)) {
		target = view.learners[rng_below(&cluster->rng, view.learners_count)]; /* must be refused or ignored */
	} else if (view.voters_count) {
		target = view.voters[rng_below(&cluster->rng, view.voters_count)];
	} else {
		return;
	}
	int result = raft_transfer_leadership(leader->raft, target);
	cluster->workload.transfers++;
	sim_trace(cluster, "leader %llu transfers leadership to %llu: %s", ULL(leader->id), ULL(target), raft_strerror(result));
	member_process(cluster, cluster_slot_of(cluster, leader));
}

/* Quiet phase: make sure a marker is proposed to the current leader; re-propose after a leader change
 * or when the last one seems lost. */
static void liveness_propose(struct sim_cluster *cluster)
{
	struct sim_workload *workload = &cluster->workload;
	struct sim_member *leader = cluster_leader(cluster);
	if (leader == NULL) {
		return;
	}
	struct raft_status status;
	raft_get_status(leader->raft, &status);
	if (workload->marker_sequence != 0 && workload->marker_term == status.term &&
	    cluster->now - workload->marker_proposed_at < 5 * SIM_ELECTION_TIMEOUT_MS) {
		return;
	}
	uint64_t sequence = propose_payload(cluster, cluster_slot_of(cluster, leader), 'M');
	if (sequence != 0) {
		if (workload->marker_sequence == 0) {
			workload->marker_sequence = sequence; /* the first marker: any marker from here on counts */
		}
		workload->marker_term = status.term;
		workload->marker_proposed_at = cluster->now;
	}
}

bool workload_liveness_probe(struct sim_cluster *cluster)
{
	uint64_t first = cluster->workload.marker_sequence;
	if (first == 0) {
		return false;
	}
	size_t alive = 0;
	for (size_t i = 0; i < cluster->members_count; i++) {
		const struct sim_member *member = &cluster->members[i];
		if (member->state == MEMBER_CRASHED) {
			return false;
		}
		if (member->state == MEMBER_ALIVE && !checker_removal_pending(cluster, member->id)) {
			if (member->marker_applied < first) {
				return false;
			}
			alive++;
		}
	}
	return alive > 0 && cluster_leader(cluster) != NULL;
}

void workload_act(struct sim_cluster *cluster)
{
	if (cluster->quiet) {
		liveness_propose(cluster);
	}
	size_t slot = pick_target(cluster);
	if (slot == SIZE_MAX) {
		return;
	}
	unsigned roll = (unsigned)rng_below(&cluster->rng, 1000);
	if (cluster->quiet && roll < 400) {
		/* Clients stop writing so that lagging members can catch up: with one entry per message and one
		 * message in flight a follower replicates about one entry per round trip, slower than a busy
		 * client writes. Reads, snapshots and the liveness marker go on. */
		return;
	}
	if (roll < 350) {
		workload_propose_write(cluster, slot);
	} else if (roll < 400) {
		propose_batch(cluster, slot);
	} else if (roll < 620) {
		/* mostly on the leader, where a read is confirmed fastest; sometimes forwarded by a follower */
		issue_read(cluster, slot);
	} else if (roll < 720) {
		member_make_app_durable(cluster, random_alive(cluster));
	} else if (roll < 760) {
		size_t target = random_alive(cluster);
		if (member_take_snapshot(cluster, target, rng_chance(&cluster->rng, 300))) {
			cluster->workload.snapshots_created++;
			member_process(cluster, target);
		}
	} else if (cluster->quiet) {
		return; /* no membership churn, transfers or forced elections in the quiet phase */
	} else if (roll < 800) {
		reconfigure(cluster);
	} else if (roll < 815) {
		transfer(cluster);
	} else if (roll < 825) {
		size_t target = random_alive(cluster);
		int result = raft_campaign(cluster->members[target].raft);
		sim_trace(cluster, "member %llu campaigns: %s", ULL(cluster->members[target].id), raft_strerror(result));
		member_process(cluster, target);
	}
}

static void schedule(struct sim_cluster *cluster, enum sim_event_kind kind, size_t slot, uint32_t incarnation,
                     uint64_t delay)
{
	struct sim_event event = {0};
	event.time = cluster->now + delay;
	event.kind = kind;
	event.slot = slot;
	event.incarnation = incarnation;
	events_push(&cluster->events, &event);
}

void workload_fault(struct sim_cluster *cluster)
{
	unsigned roll = (unsigned)rng_below(&cluster->rng, 1000);
	struct sim_network *network = &cluster->network;
	if (roll < 250) {
		size_t slot = rng_chance(&cluster->rng, cluster->leader_crash_per_thousand) && cluster_leader(cluster) != NULL
			? cluster_slot_of(cluster, cluster_leader(cluster))
			: random_alive(cluster);
		if (slot == SIZE_MAX) {
			return;
		}
		member_crash(cluster, slot);
		uint64_t downtime = rng_chance(&cluster->rng, 800) ? rng_range(&cluster->rng, 5, 3 * SIM_ELECTION_TIMEOUT_MS)
		                                                   : rng_range(&cluster->rng, 300, 3000);
		schedule(cluster, EVENT_RESTART, slot, cluster->members[slot].incarnation, downtime);
	} else if (roll < 450) {
		if (!network->partitioned) {
			network_partition_random(cluster);
			/* the heal event carries the partition's number so that an old heal cannot end a newer cut */
			schedule(cluster, EVENT_HEAL, 0, (uint32_t)cluster->partitions, rng_range(&cluster->rng, 50, 1500));
		}
	} else if (roll < 700) {
		network->loss_per_thousand = rng_chance(&cluster->rng, 300) ? 0 : (unsigned)rng_range(&cluster->rng, 1, 200);
		network->duplicate_per_thousand = (unsigned)rng_below(&cluster->rng, 60);
		network->corrupt_per_thousand = (unsigned)rng_below(&cluster->rng, 15);
		network->delay_min = rng_range(&cluster->rng, 0, 5);
		network->delay_max = network->delay_min + rng_range(&cluster->rng, 1, rng_chance(&cluster->rng, 200) ? 150 : 30);
		sim_trace(cluster, "network: loss %u/1000, duplication %u/1000, corruption %u/1000, delay %llu..%llu ms",
		          network->loss_per_thousand, network->duplicate_per_thousand, network->corrupt_per_thousand,
		          ULL(network->delay_min), ULL(network->delay_max));
	} else if (roll < 800) {
		network_inject_garbage(cluster);
	} else if (roll < 900) {
		size_t slot = random_alive(cluster);
		if (slot != SIZE_MAX) {
			/* storage speed changes: a member switches between synchronous and slow asynchronous writes */
			cluster->members[slot].persist_delay_max =
				rng_chance(&cluster->rng, 400) ? 0 : rng_range(&cluster->rng, 1, 60);
		}
	}
}
