/* control/etcd/auth_password.h: users' passwords hashed with bcrypt through libxcrypt ($2b$), as etcd hashes
 * them with Go's bcrypt ($2a$; libxcrypt checks either). A hash costs 2^cost rounds: ~70 ms at etcd's
 * default cost 10, so callers keep it off the threads that serve requests. */
#ifndef QUORUMD_CONTROL_AUTH_PASSWORD_H
#define QUORUMD_CONTROL_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* Go's bcrypt.MinCost, MaxCost and DefaultCost (etcd's --bcrypt-cost default). */
enum { AUTH_BCRYPT_MIN_COST = 4, AUTH_BCRYPT_MAX_COST = 31, AUTH_BCRYPT_DEFAULT_COST = 10 };

/* The cost etcd uses for --bcrypt-cost: the given one, or the default when it is out of bcrypt's range
 * (etcd warns and goes on; so does quorumd, at start). */
unsigned auth_bcrypt_cost(unsigned long long requested);

/* bcrypt of password with a fresh random salt at cost: a malloc'd "$2b$CC$..." in *hash. 0, or -1 with
 * the reason in error. */
int auth_password_hash(const char *password, unsigned cost, char **hash, char *err, size_t errlen);
/* Whether password is the one hash was made from (compared in constant time). A malformed hash matches
 * nothing. */
bool auth_password_matches(const char *password, const char *hash);

#endif
