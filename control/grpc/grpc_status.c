/* control/grpc/grpc_status.c: see grpc_status.h. */
#include <stdio.h>

#include "grpc_status.h"

const char *grpc_code_name(int code, char *buffer, size_t buffer_size)
{
	static const char *const names[] = {
		[GRPC_OK] = "OK",
		[GRPC_CANCELLED] = "Canceled",
		[GRPC_UNKNOWN] = "Unknown",
		[GRPC_INVALID_ARGUMENT] = "InvalidArgument",
		[GRPC_DEADLINE_EXCEEDED] = "DeadlineExceeded",
		[GRPC_NOT_FOUND] = "NotFound",
		[GRPC_ALREADY_EXISTS] = "AlreadyExists",
		[GRPC_PERMISSION_DENIED] = "PermissionDenied",
		[GRPC_RESOURCE_EXHAUSTED] = "ResourceExhausted",
		[GRPC_FAILED_PRECONDITION] = "FailedPrecondition",
		[GRPC_ABORTED] = "Aborted",
		[GRPC_OUT_OF_RANGE] = "OutOfRange",
		[GRPC_UNIMPLEMENTED] = "Unimplemented",
		[GRPC_INTERNAL] = "Internal",
		[GRPC_UNAVAILABLE] = "Unavailable",
		[GRPC_DATA_LOSS] = "DataLoss",
		[GRPC_UNAUTHENTICATED] = "Unauthenticated",
	};
	if (code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]))
		return names[code];
	snprintf(buffer, buffer_size, "Code(%d)", code);
	return buffer;
}
