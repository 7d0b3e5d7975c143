/* control/operator/operator.h: the operator thread — the member's control socket (control_socket.h:
 * JSON lines, what quorumctl speaks) turned into node requests, and SIGINT/SIGTERM turned into a stop. */
#ifndef QUORUMD_CONTROL_OPERATOR_H
#define QUORUMD_CONTROL_OPERATOR_H

#include <stddef.h>

struct node;

/* Serves the control socket on the calling thread until the node stops (a signal, a removal, a fatal
 * storage error). Returns 0, or -1 with a message when the socket cannot be served. */
int operator_run(struct node *node, char *err, size_t errlen);

#endif
