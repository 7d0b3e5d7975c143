/* control/api/client_api.h: etcd's v3 API (gRPC over HTTP/2 cleartext) on the client URLs, and /health,
 * /version, /metrics over plain HTTP on the same ports and on --listen-metrics-urls.
 *
 * --client-threads threads each run their own server on the same addresses (SO_REUSEPORT): a
 * connection belongs to one thread for its life. A thread turns each call into a node_request for the
 * core thread (writes, linearizable reads, member operations) or the storage thread (serializable
 * reads, HashKV, Snapshot, Watch, leases), and answers it when the reply comes back on its own mailbox
 * (its reply channel, node.h). Proposals from every thread still meet in the core's one batch. */
#ifndef QUORUMD_CONTROL_CLIENT_API_H
#define QUORUMD_CONTROL_CLIENT_API_H

#include <stddef.h>

struct node;
struct client_api;

/* Opens every listener first (so a bad URL or a port in use fails the start with a message naming it),
 * then starts the threads. NULL with a message on error. */
struct client_api *client_api_start(struct node *node, char *err, size_t errlen);
/* Ends every call (UNAVAILABLE "etcdserver: server stopped"), closes the listeners, joins the threads. */
void client_api_stop(struct client_api *api);

#endif
