/* control/etcd/auth_token.h: etcd's token providers (auth/simple_token.go, jwt.go, nop.go), chosen by
 * --auth-token:
 *
 *   simple  "PREFIX.INDEX": 16 random letters and the Raft index of the Authenticate entry. Every member
 *           registers the token when it applies the entry, so it is good on any member; a member that has
 *           not applied that index yet makes the request wait for it (etcd's indexWaiter). A token unused for
 *           --auth-token-ttl seconds is forgotten; disabling auth, deleting the user or changing its
 *           password forgets its tokens; a restart forgets them all.
 *   jwt     "jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|
 *           ES512|HS256|HS384|HS512[,ttl=DURATION]": a signed {"exp","revision","username"}; any member with
 *           the key verifies it, nothing is registered. Only a public key: verify only (Authenticate fails).
 *   ""      no tokens: Authenticate fails, every token is invalid.
 *
 * The table of simple tokens is shared by the thread that applies (which registers) and the threads that
 * serve clients (which look up): it has its own lock. Times are the caller's monotonic milliseconds. */
#ifndef QUORUMD_CONTROL_AUTH_TOKEN_H
#define QUORUMD_CONTROL_AUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_tokens;

/* etcd's defaults: --auth-token simple, --auth-token-ttl 300 (s), JWT ttl 5m. */
#define AUTH_TOKEN_DEFAULT_TTL_SECONDS 300

/* Parses --auth-token (etcd's decomposeOpts, then the provider's options) and reads JWT keys. 0, or -1
 * with etcd's reason in error ("auth: invalid auth options", "auth: missing key data", a key file that
 * cannot be read or parsed, ...). ttl_seconds 0 means etcd's default. */
int auth_tokens_open(const char *options, uint64_t ttl_seconds, struct auth_tokens **out, char *err, size_t errlen);
void auth_tokens_close(struct auth_tokens *tokens);

/* "simple", "jwt" or "" (none). */
const char *auth_tokens_kind(const struct auth_tokens *tokens);
bool auth_tokens_are_simple(const struct auth_tokens *tokens);

/* Auth was enabled / disabled (disabling forgets every simple token). */
void auth_tokens_enable(struct auth_tokens *tokens);
void auth_tokens_disable(struct auth_tokens *tokens);

/* 16 random letters for a simple token (etcd's genTokenPrefix); "" for other providers. out: 17 bytes. */
void auth_tokens_prefix(const struct auth_tokens *tokens, char out[17]);

/* The token for user (Authenticate's apply): simple: "PREFIX.INDEX", registered while enabled; jwt: signed
 * with revision and an expiry of now + ttl. A malloc'd string in *token; 0, or -1 with the reason. */
int auth_tokens_assign(struct auth_tokens *tokens, const char *user, uint64_t revision, const char *simple_prefix,
                       uint64_t index, uint64_t now_ms, char **token, char *err, size_t errlen);

enum auth_token_lookup {
	AUTH_TOKEN_VALID,   /* *user (malloc'd) and *revision set */
	AUTH_TOKEN_INVALID,
	AUTH_TOKEN_PENDING, /* a simple token of an index not yet applied here: ask again once *wait_index is */
};

/* Who the token stands for. A simple token gets the current auth revision (current_revision), as
 * etcd's; a JWT the one it was signed with. A simple token's idle time starts again. */
enum auth_token_lookup auth_tokens_lookup(struct auth_tokens *tokens, const char *token, uint64_t applied_index,
                                          uint64_t current_revision, uint64_t now_ms, char **user,
                                          uint64_t *revision, uint64_t *wait_index);

/* Forgets the user's simple tokens (user deleted, password changed). */
void auth_tokens_invalidate_user(struct auth_tokens *tokens, const char *user);
/* Forgets the simple tokens idle for the TTL (etcd's keeper, every second); returns how many. */
size_t auth_tokens_expire(struct auth_tokens *tokens, uint64_t now_ms);
/* Simple tokens registered (for tests and /metrics). */
size_t auth_tokens_count(struct auth_tokens *tokens);

#endif
