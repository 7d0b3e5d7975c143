/* tests/sim/network.c: the simulated wire between members.
 *
 * Every message crosses it protobuf-encoded (raftpb__message__pack, then raft_step_bytes at the other
 * end) so the encoding is exercised on every hop. The wire loses, duplicates, delays and therefore
 * reorders messages, cuts the cluster into partitions that later heal, and sometimes corrupts a message
 * so that it no longer decodes: the core must then answer RAFT_ERR_MALFORMED and carry on. Corruption
 * is only ever delivered when it really does not decode: a flipped bit that still decodes would be a
 * Byzantine message, which Raft does not claim to survive. The transport feedback a real node gives
 * (peer unreachable, snapshot delivered or failed) is reported back to the sender.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

struct sim_message message_pack(const Raftpb__Message *message, uint64_t sender, uint32_t incarnation)
{
	struct sim_message out = {0};
	out.from = sender;
	out.origin = message->from;
	out.to = message->to;
	out.from_incarnation = incarnation;
	out.type = message->type;
	out.term = message->term;
	out.index = message->index;
	out.commit = message->commit;
	out.reject = message->reject;
	out.reject_hint = message->reject_hint;
	out.entries_count = message->n_entries;
	out.length = raftpb__message__get_packed_size(message);
	out.bytes = malloc(out.length ? out.length : 1);
	if (out.bytes == NULL) {
		abort();
	}
	raftpb__message__pack(message, out.bytes);
	return out;
}

void message_free(struct sim_message *message)
{
	free(message->bytes);
	message->bytes = NULL;
	message->length = 0;
}

bool network_connected(const struct sim_cluster *cluster, uint64_t from, uint64_t to)
{
	if (!cluster->network.partitioned || from == to) {
		return true;
	}
	const struct sim_member *a = cluster_member_by_id((struct sim_cluster *)cluster, from);
	const struct sim_member *b = cluster_member_by_id((struct sim_cluster *)cluster, to);
	return a != NULL && b != NULL && a->group == b->group;
}

static bool decodes(const uint8_t *bytes, size_t length)
{
	Raftpb__Message *message = raftpb__message__unpack(NULL, length, bytes);
	if (message == NULL) {
		return false;
	}
	raftpb__message__free_unpacked(message, NULL);
	return true;
}

/* Damages the bytes until they no longer decode: truncation inside a field, random byte flips, or a tag
 * with an invalid wire type. What still decodes after a few tries gets a tag no decoder accepts. */
static void corrupt_message(struct sim_cluster *cluster, struct sim_message *message)
{
	for (int attempt = 0; attempt < 4; attempt++) {
		switch (rng_below(&cluster->rng, 3)) {
		case 0:
			if (message->length > 1) {
				message->length = 1 + rng_below(&cluster->rng, message->length - 1);
			}
			break;
		case 1:
			for (int flips = 1 + (int)rng_below(&cluster->rng, 3); flips > 0 && message->length; flips--) {
				message->bytes[rng_below(&cluster->rng, message->length)] ^= (uint8_t)rng_range(&cluster->rng, 1, 255);
			}
			break;
		default:
			/* field 1 with wire type 7, which does not exist */
			message->bytes[rng_below(&cluster->rng, message->length ? message->length : 1)] = 0x0f;
			break;
		}
		if (!decodes(message->bytes, message->length)) {
			message->corrupt = true;
			return;
		}
	}
	message->bytes[0] = 0x0f;
	message->length = message->length ? message->length : 1;
	message->corrupt = !decodes(message->bytes, message->length);
}

/* The verdict on a snapshot stream reaches the sender's core (raft_report_snapshot). A real stream
 * reports when its last chunk is acknowledged or its connection gives up, which may be long after the
 * follower installed it, after a newer snapshot was sent, or after leadership moved; and an
 * acknowledgement lost at the very end fails a stream the follower did install. */
static void report_snapshot(struct sim_cluster *cluster, const struct sim_message *message, bool failed)
{
	struct sim_member *sender = cluster_member_by_id(cluster, message->from);
	if (sender == NULL || sender->state != MEMBER_ALIVE || sender->incarnation != message->from_incarnation) {
		return;
	}
	if (!cluster->quiet && !failed && rng_chance(&cluster->rng, 50)) {
		failed = true;
	}
	if (cluster->quiet || !rng_chance(&cluster->rng, 300)) {
		raft_report_snapshot(sender->raft, message->to, failed);
		return;
	}
	struct sim_event event = {0};
	event.time = cluster->now + rng_range(&cluster->rng, 1, 3 * SIM_ELECTION_TIMEOUT_MS);
	event.kind = EVENT_SNAPSHOT_REPORT;
	event.message.from = message->from;
	event.message.to = message->to;
	event.message.from_incarnation = message->from_incarnation;
	event.message.type = RAFT_MSG_SNAP_STATUS;
	event.message.reject = failed;
	events_push(&cluster->events, &event);
}

void network_snapshot_report_due(struct sim_cluster *cluster, const struct sim_event *event)
{
	struct sim_member *sender = cluster_member_by_id(cluster, event->message.from);
	if (sender == NULL || sender->state != MEMBER_ALIVE || sender->incarnation != event->message.from_incarnation) {
		return;
	}
	sim_trace(cluster, "snapshot stream %llu->%llu reports %s late", (unsigned long long)event->message.from,
	          (unsigned long long)event->message.to, event->message.reject ? "failure" : "success");
	raft_report_snapshot(sender->raft, event->message.to, event->message.reject);
}

static void report_unreachable(struct sim_cluster *cluster, const struct sim_message *message)
{
	struct sim_member *sender = cluster_member_by_id(cluster, message->from);
	if (sender == NULL || sender->state != MEMBER_ALIVE || sender->incarnation != message->from_incarnation ||
	    message->injected) {
		return;
	}
	/* The sender's new Ready is taken at the end of the step (cluster_step), not here: this may run
	 * while the sender is itself sending, and its Readys must stay in order. A snapshot stream always
	 * ends with a verdict, corrupted or not: the core waits for it (the follower's progress stays in
	 * snapshot state until then, as in etcd-raft). */
	if (message->type == RAFT_MSG_SNAP) {
		report_snapshot(cluster, message, true);
	} else if (!message->corrupt && rng_chance(&cluster->rng, 200)) {
		/* a real transport notices a dead peer only sometimes (a failed connect, a timeout) */
		raft_report_unreachable(sender->raft, message->to);
	}
}

static void schedule_delivery(struct sim_cluster *cluster, struct sim_message *message, uint64_t delay)
{
	struct sim_event event = {0};
	event.time = cluster->now + delay;
	event.kind = EVENT_DELIVER;
	event.message = *message;
	events_push(&cluster->events, &event);
	*message = (struct sim_message){0};
}

static uint64_t random_delay(struct sim_cluster *cluster)
{
	uint64_t delay = rng_range(&cluster->rng, cluster->network.delay_min, cluster->network.delay_max);
	if (!cluster->quiet && rng_chance(&cluster->rng, 20)) {
		delay += rng_range(&cluster->rng, 1, 5 * SIM_ELECTION_TIMEOUT_MS); /* a straggler, badly reordered */
	}
	return delay;
}

void network_send_packed(struct sim_cluster *cluster, struct sim_message *message)
{
	struct sim_member *destination = cluster_member_by_id(cluster, message->to);
	if (message->to == message->from) {
		/* a note to self never touches the wire */
		schedule_delivery(cluster, message, 0);
		return;
	}
	if (destination == NULL || destination->state == MEMBER_REMOVED ||
	    !network_connected(cluster, message->from, message->to)) {
		sim_trace(cluster, "net: %s %llu->%llu dropped (%s)", message_type_name(message->type),
		          (unsigned long long)message->from, (unsigned long long)message->to,
		          destination == NULL ? "no such member" : destination->state == MEMBER_REMOVED ? "removed" : "partition");
		report_unreachable(cluster, message);
		message_free(message);
		return;
	}
	if (rng_chance(&cluster->rng, cluster->network.loss_per_thousand)) {
		sim_trace(cluster, "net: %s %llu->%llu lost", message_type_name(message->type),
		          (unsigned long long)message->from, (unsigned long long)message->to);
		if (message->type == RAFT_MSG_SNAP) {
			report_unreachable(cluster, message);
		}
		message_free(message);
		return;
	}
	if (rng_chance(&cluster->rng, cluster->network.duplicate_per_thousand)) {
		struct sim_message copy = *message;
		copy.bytes = malloc(message->length ? message->length : 1);
		if (copy.bytes == NULL) {
			abort();
		}
		memcpy(copy.bytes, message->bytes, message->length);
		schedule_delivery(cluster, &copy, random_delay(cluster));
	}
	if (cluster->allow_corruption && rng_chance(&cluster->rng, cluster->network.corrupt_per_thousand)) {
		corrupt_message(cluster, message);
		if (!message->corrupt) {
			/* could not make it undecodable: treat it as lost */
			if (message->type == RAFT_MSG_SNAP) {
				report_unreachable(cluster, message);
			}
			message_free(message);
			return;
		}
	}
	schedule_delivery(cluster, message, random_delay(cluster));
}

void network_deliver(struct sim_cluster *cluster, struct sim_event *event)
{
	struct sim_message *message = &event->message;
	struct sim_member *destination = cluster_member_by_id(cluster, message->to);
	if (destination == NULL || destination->state != MEMBER_ALIVE ||
	    !network_connected(cluster, message->from, message->to)) {
		report_unreachable(cluster, message);
		message_free(message);
		return;
	}
	size_t slot = cluster_slot_of(cluster, destination);
	if (cluster->trace && !message->corrupt && !message->injected) {
		sim_trace(cluster, "deliver %s %llu->%llu term %llu index %llu entries %zu commit %llu%s",
		          message_type_name(message->type), (unsigned long long)message->from,
		          (unsigned long long)message->to, (unsigned long long)message->term,
		          (unsigned long long)message->index, message->entries_count,
		          (unsigned long long)message->commit, message->reject ? " reject" : "");
		if (message->reject) {
			sim_trace(cluster, "  (reject hint %llu)", (unsigned long long)message->reject_hint);
		}
	}
	int result = raft_step_bytes(destination->raft, message->bytes, message->length);
	cluster->checker.messages_checked++;
	if (message->corrupt) {
		cluster->checker.rejections_checked++;
		sim_trace(cluster, "deliver corrupted bytes to %llu: %s", (unsigned long long)message->to, raft_strerror(result));
		if (result != RAFT_ERR_MALFORMED) {
			sim_fail(cluster, "Robustness: member %llu answered %d (%s) to %zu bytes that do not decode; "
			         "expected RAFT_ERR_MALFORMED", (unsigned long long)message->to, result,
			         raft_strerror(result), message->length);
		}
	} else if (message->injected) {
		cluster->checker.rejections_checked++;
		sim_trace(cluster, "deliver a %s (type %d) from the network to %llu: %s", message_type_name(message->type),
		          message->type, (unsigned long long)message->to, raft_strerror(result));
		if (result == RAFT_OK) {
			sim_fail(cluster, "Robustness: member %llu accepted a message of local-only or unknown type %d (%s) "
			         "from the network", (unsigned long long)message->to, message->type,
			         message_type_name(message->type));
		}
	}
	member_process(cluster, slot);
	if (message->type == RAFT_MSG_SNAP && !message->injected) {
		/* a real snapshot stream ends with a verdict: delivered, or failed (a corrupt chunk fails its CRC) */
		report_snapshot(cluster, message, message->corrupt);
	}
	message_free(message);
}

void network_heal(struct sim_cluster *cluster)
{
	if (cluster->network.partitioned) {
		sim_trace(cluster, "partition healed");
	}
	cluster->network.partitioned = false;
	for (size_t i = 0; i < cluster->members_count; i++) {
		cluster->members[i].group = 0;
	}
}

/* Cuts the cluster in two: a random split, the leader alone, a random minority, or the leader with a
 * minority. The heal comes later as its own event. */
void network_partition_random(struct sim_cluster *cluster)
{
	size_t live[SIM_MAX_MEMBERS], count = 0;
	for (size_t i = 0; i < cluster->members_count; i++) {
		cluster->members[i].group = 0;
		if (cluster->members[i].state == MEMBER_ALIVE || cluster->members[i].state == MEMBER_CRASHED) {
			live[count++] = i;
		}
	}
	if (count < 2) {
		return;
	}
	struct sim_member *leader = cluster_leader(cluster);
	const char *kind;
	switch (rng_below(&cluster->rng, 4)) {
	case 0:
		kind = "random split";
		for (size_t i = 0; i < count; i++) {
			cluster->members[live[i]].group = (int)rng_below(&cluster->rng, 2);
		}
		break;
	case 1:
		kind = "leader isolated";
		if (leader != NULL) {
			leader->group = 1;
			break;
		}
		/* no leader: isolate a random member instead */
		cluster->members[live[rng_below(&cluster->rng, count)]].group = 1;
		break;
	case 2: {
		kind = "minority cut off";
		size_t minority = 1 + rng_below(&cluster->rng, (count - 1) / 2 + (count == 2));
		for (size_t i = 0; i < minority; i++) {
			cluster->members[live[rng_below(&cluster->rng, count)]].group = 1;
		}
		break;
	}
	default: {
		kind = "leader with a minority";
		if (leader != NULL) {
			leader->group = 1;
		}
		size_t extra = rng_below(&cluster->rng, (count - 1) / 2);
		for (size_t i = 0; i < extra; i++) {
			cluster->members[live[rng_below(&cluster->rng, count)]].group = 1;
		}
		break;
	}
	}
	cluster->network.partitioned = true;
	cluster->partitions++;
	if (cluster->trace) {
		char sides[2][256];
		size_t used[2] = {0, 0};
		sides[0][0] = sides[1][0] = '\0';
		for (size_t i = 0; i < count; i++) {
			struct sim_member *m = &cluster->members[live[i]];
			int g = m->group ? 1 : 0;
			if (used[g] < sizeof(sides[g]) - 24) {
				used[g] += (size_t)snprintf(sides[g] + used[g], sizeof(sides[g]) - used[g], " %llu",
				                            (unsigned long long)m->id);
			}
		}
		sim_trace(cluster, "partition (%s): {%s } | {%s }", kind, sides[0], sides[1]);
	}
}

/* Bytes that must be refused: random garbage that does not decode, or a well-formed message of a type
 * that only the local node may generate (a peer cannot make us campaign or beat) or of no known type. */
void network_inject_garbage(struct sim_cluster *cluster)
{
	size_t live[SIM_MAX_MEMBERS], count = 0;
	for (size_t i = 0; i < cluster->members_count; i++) {
		if (cluster->members[i].state == MEMBER_ALIVE) {
			live[count++] = i;
		}
	}
	if (count == 0) {
		return;
	}
	struct sim_member *target = &cluster->members[live[rng_below(&cluster->rng, count)]];
	struct sim_member *source = &cluster->members[live[rng_below(&cluster->rng, count)]];
	struct sim_message message = {0};
	if (rng_chance(&cluster->rng, 500)) {
		message.length = 1 + rng_below(&cluster->rng, 40);
		message.bytes = malloc(message.length);
		if (message.bytes == NULL) {
			abort();
		}
		for (size_t i = 0; i < message.length; i++) {
			message.bytes[i] = (uint8_t)rng_next(&cluster->rng);
		}
		message.from = source->id;
		message.to = target->id;
		corrupt_message(cluster, &message);
		if (!message.corrupt) {
			message_free(&message);
			return;
		}
	} else {
		static const int local_types[] = {RAFT_MSG_HUP, RAFT_MSG_BEAT, RAFT_MSG_UNREACHABLE, RAFT_MSG_SNAP_STATUS,
		                                  RAFT_MSG_CHECK_QUORUM, 99};
		Raftpb__Message forged = RAFTPB__MESSAGE__INIT;
		forged.type = (Raftpb__MessageType)local_types[rng_below(&cluster->rng, 6)];
		forged.from = source->id;
		forged.to = target->id;
		struct raft_status status;
		raft_get_status(target->raft, &status);
		forged.term = status.term;
		message = message_pack(&forged, source->id, source->incarnation);
		message.injected = true;
	}
	struct sim_event event = {0};
	event.time = cluster->now + rng_range(&cluster->rng, 0, 20);
	event.kind = EVENT_DELIVER;
	event.message = message;
	events_push(&cluster->events, &event);
}
