/* consensus/errors.c: the one table of the core's error codes and their messages. */
#include "raft.h"

static const char *const error_texts[] = {
#define RAFT_ERROR_TEXT(code, text) [code] = text,
	RAFT_ERROR_LIST(RAFT_ERROR_TEXT)
#undef RAFT_ERROR_TEXT
};

const char *raft_strerror(int code)
{
	if (code < 0 || code >= RAFT_ERROR_COUNT)
		return "unknown error";
	return error_texts[code];
}

const char *raft_role_name(enum raft_role role)
{
	switch (role) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_PRE_CANDIDATE:
		return "pre-candidate";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	}
	return "unknown";
}
