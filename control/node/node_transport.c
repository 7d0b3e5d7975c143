/* control/node/node_transport.c: the transport thread. It receives peer frames, lets the transport reassemble
 * them, and posts each whole message to the core thread (snapshot streams to the snapshot thread). Sending
 * happens on the core thread. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "node.h"

static void deliver(void *argument, const struct transport_message *message)
{
	struct node *node = argument;
	struct node_peer_metrics *metrics = node_peer_metrics_of(node, message->from);
	if (metrics)
		atomic_fetch_add_explicit(&metrics->received_bytes, message->length, memory_order_relaxed);
	/* Snapshot streams go straight to their thread: their chunks would only pass through the core. */
	if (message->length > 0 && message->data[0] == PEER_SNAPSHOT) {
		struct snapshot_mail *mail = xcalloc(1, sizeof(*mail));
		mail->kind = SNAPSHOT_MAIL_PEER;
		mail->peer.from = message->from;
		mail->peer.length = message->length;
		mail->peer.bytes = xmemdup(message->data, message->length);
		snapshot_mailbox_post(&node->snapshot_inbox, mail);
		return;
	}
	struct core_mail *mail = xcalloc(1, sizeof(*mail));
	mail->kind = CORE_MAIL_PEER;
	mail->peer.from = message->from;
	mail->peer.length = message->length;
	mail->peer.bytes = xmemdup(message->data, message->length);
	core_mailbox_post(&node->core_inbox, mail);
}

void *node_transport_main(void *argument)
{
	struct node *node = argument;
	while (!atomic_load(&node->stopping)) {
		char error[256];
		int timeout = transport_next_wakeup_ms(node->transport);
		if (timeout < 0 || timeout > 100)
			timeout = 100; /* wake up now and then to notice a stop */
		transport_poll(node->transport, timeout, deliver, node, error, sizeof(error));
	}
	return NULL;
}
