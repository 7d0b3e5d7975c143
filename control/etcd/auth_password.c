/* control/etcd/auth_password.c: bcrypt through libxcrypt's crypt_gensalt_rn and crypt_r (the salt's
 * randomness is the system's, getrandom). */
#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "auth_password.h"

unsigned auth_bcrypt_cost(unsigned long long requested)
{
	if (requested < AUTH_BCRYPT_MIN_COST || requested > AUTH_BCRYPT_MAX_COST)
		return AUTH_BCRYPT_DEFAULT_COST;
	return (unsigned)requested;
}

int auth_password_hash(const char *password, unsigned cost, char **hash, char *err, size_t errlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	if (!crypt_gensalt_rn("$2b$", cost, NULL, 0, salt, sizeof(salt))) {
		snprintf(err, errlen, "bcrypt salt at cost %u: %s", cost, strerror(errno));
		return -1;
	}
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	const char *hashed = crypt_r(password, salt, data);
	/* libxcrypt's failure is a string starting with '*', never a valid hash. */
	if (!hashed || hashed[0] == '*') {
		snprintf(err, errlen, "bcrypt hash at cost %u: %s", cost, strerror(errno));
		free(data);
		return -1;
	}
	*hash = xstrdup(hashed);
	free(data);
	return 0;
}

bool auth_password_matches(const char *password, const char *hash)
{
	if (!hash || strncmp(hash, "$2", 2) != 0)
		return false;
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	const char *computed = crypt_r(password, hash, data);
	bool matches = computed && computed[0] != '*' && strlen(computed) == strlen(hash) &&
	               CRYPTO_memcmp(computed, hash, strlen(hash)) == 0;
	free(data);
	return matches;
}
