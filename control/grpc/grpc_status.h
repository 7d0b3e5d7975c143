/* control/grpc/grpc_status.h: gRPC's status codes (google.rpc.Code), one enum for the server side (the
 * codes kv_apply and the node answer with) and the client side (what grpc_client reports). */
#ifndef QUORUMD_GRPC_STATUS_H
#define QUORUMD_GRPC_STATUS_H

#include <stddef.h>

enum grpc_status_code {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_DATA_LOSS = 15,
	GRPC_UNAUTHENTICATED = 16,
};

/* The code's name as grpc-go spells it (codes.Code.String(): "DeadlineExceeded", "Unauthenticated"),
 * which the operator socket and quorumctl print as etcdctl does; "Code(N)" for a code gRPC does not
 * define, as grpc-go prints it. The buffer is only used for such codes. */
const char *grpc_code_name(int code, char *buffer, size_t buffer_size);

#endif
