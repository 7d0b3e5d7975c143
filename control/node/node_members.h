/* control/node/node_members.h: membership on the core thread — etcd's member operations (add, remove,
 * update, promote, list), endpoint status and move-leader, the member list kept from committed entries,
 * peer liveness, publishing our own name and client URLs, and forwarding member operations to the
 * leader. Core thread only. */
#ifndef QUORUMD_CONTROL_NODE_MEMBERS_H
#define QUORUMD_CONTROL_NODE_MEMBERS_H

#include "node.h"

struct pending_change {
	struct node_request *request;
	uint64_t proposed_at_ms;
	uint64_t target_id;
	bool forwarded; /* waiting for the leader's answer to a forwarded request */
	bool awaiting_transfer; /* removing ourselves as leader: waiting for target_id to lead */
	uint64_t probing_since_ms; /* member add: waiting to hear every voter since then (0: not probing) */
	bool awaiting_leader;      /* no leader known: retried when one is, or times out as in etcd */
};

struct members_context {
	struct node *node;
	struct pending_change *pending;
	size_t pending_count;
	size_t pending_capacity;
	uint64_t attributes_proposed_at_ms; /* 0: our attributes are published */
	bool removed_self;
	uint64_t next_forward_id;
};

void members_context_init(struct members_context *context, struct node *node);
void members_context_free(struct members_context *context);
void members_handle_request(struct members_context *context, struct node_request *request);
/* Applies conf changes and attribute updates among committed entries; true when the list changed. */
bool members_apply_committed(struct members_context *context, Raftpb__Entry **entries, size_t count);
void members_publish(struct members_context *context);
/* A snapshot from the leader replaced the log: its member list (membership JSON) replaces ours. */
void members_restore(struct members_context *context, const uint8_t *blob, size_t length);
void members_heard_from(struct members_context *context, uint64_t id);
void members_handle_peer(struct members_context *context, uint64_t from, int kind, const uint8_t *body, size_t length);
void members_tick(struct members_context *context);
void members_after_inputs(struct members_context *context);
/* Sends bytes to a peer through the transport (core thread). */
void node_send_peer(struct node *node, uint64_t to, const uint8_t *bytes, size_t length);

#endif
