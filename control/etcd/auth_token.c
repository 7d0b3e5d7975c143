/* control/etcd/auth_token.c: simple tokens in a locked hash table (open addressing, deletion by backward
 * shift), JWTs signed and verified with OpenSSL as golang-jwt does it (base64url without padding,
 * {"alg","typ"} then {"exp","revision","username"} with keys in Go's sorted order, ECDSA signatures as
 * r || s of the curve's size). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "auth_token.h"
#include "log.h"

enum token_kind { TOKEN_NONE, TOKEN_SIMPLE, TOKEN_JWT };
enum jwt_family { JWT_RSA, JWT_RSA_PSS, JWT_ECDSA, JWT_HMAC };

struct simple_token {
	char *token; /* NULL: free slot */
	char *user;
	uint64_t expires_ms;
};

struct auth_tokens {
	enum token_kind kind;
	pthread_mutex_t lock; /* the simple tokens and enabled */
	bool enabled;
	uint64_t ttl_ms;
	struct simple_token *slots;
	size_t capacity; /* a power of two */
	size_t count;
	/* jwt */
	char algorithm[8];
	enum jwt_family family;
	const EVP_MD *digest;
	EVP_PKEY *key;         /* private (signs and verifies) or public (verifies only) */
	bool verify_only;
	uint8_t *hmac_key;
	size_t hmac_key_length;
	uint64_t jwt_ttl_seconds;
};

/* ---- the simple token table ---- */

static uint64_t hash_text(const char *text)
{
	uint64_t hash = UINT64_C(14695981039346656037);
	for (const unsigned char *c = (const unsigned char *)text; *c; c++)
		hash = (hash ^ *c) * UINT64_C(1099511628211);
	return hash;
}

static size_t home_of(const struct auth_tokens *tokens, const char *token)
{
	return (size_t)hash_text(token) & (tokens->capacity - 1);
}

static struct simple_token *find_slot(struct auth_tokens *tokens, const char *token)
{
	if (!tokens->capacity)
		return NULL;
	for (size_t at = home_of(tokens, token);; at = (at + 1) & (tokens->capacity - 1)) {
		if (!tokens->slots[at].token)
			return NULL;
		if (strcmp(tokens->slots[at].token, token) == 0)
			return &tokens->slots[at];
	}
}

static void place(struct auth_tokens *tokens, struct simple_token entry)
{
	size_t at = home_of(tokens, entry.token);
	while (tokens->slots[at].token)
		at = (at + 1) & (tokens->capacity - 1);
	tokens->slots[at] = entry;
}

static void grow(struct auth_tokens *tokens)
{
	struct simple_token *old = tokens->slots;
	size_t old_capacity = tokens->capacity;
	tokens->capacity = old_capacity ? 2 * old_capacity : 64;
	tokens->slots = xcalloc(tokens->capacity, sizeof(struct simple_token));
	for (size_t k = 0; k < old_capacity; k++)
		if (old[k].token)
			place(tokens, old[k]);
	free(old);
}

/* Frees the entry in slot and closes the gap so that lookups never stop early. */
static void remove_slot(struct auth_tokens *tokens, struct simple_token *slot)
{
	size_t mask = tokens->capacity - 1, hole = (size_t)(slot - tokens->slots);
	free(slot->token);
	free(slot->user);
	*slot = (struct simple_token){0};
	tokens->count--;
	for (size_t next = (hole + 1) & mask; tokens->slots[next].token; next = (next + 1) & mask) {
		size_t home = home_of(tokens, tokens->slots[next].token);
		bool movable = hole <= next ? (home <= hole || home > next) : (home <= hole && home > next);
		if (movable) {
			tokens->slots[hole] = tokens->slots[next];
			tokens->slots[next] = (struct simple_token){0};
			hole = next;
		}
	}
}

static void forget_all(struct auth_tokens *tokens)
{
	for (size_t k = 0; k < tokens->capacity; k++) {
		free(tokens->slots[k].token);
		free(tokens->slots[k].user);
	}
	free(tokens->slots);
	tokens->slots = NULL;
	tokens->capacity = 0;
	tokens->count = 0;
}

/* ---- base64url (RFC 7515: no padding) ---- */

static char *base64url_encode(const uint8_t *bytes, size_t length)
{
	char *text = xmalloc(4 * ((length + 2) / 3) + 1);
	int written = EVP_EncodeBlock((unsigned char *)text, bytes, (int)length);
	while (written > 0 && text[written - 1] == '=')
		written--;
	text[written] = '\0';
	for (char *c = text; *c; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	return text;
}

/* A malloc'd decoding of length characters of text; NULL when it is not base64url. */
static uint8_t *base64url_decode(const char *text, size_t length, size_t *decoded_length)
{
	if (length % 4 == 1)
		return NULL;
	size_t padded = (length + 3) / 4 * 4;
	char *standard = xmalloc(padded + 1);
	for (size_t k = 0; k < length; k++) {
		char c = text[k];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (c == '+' || c == '/' || c == '=')
			c = '!'; /* not base64url: makes the decoder fail */
		standard[k] = c;
	}
	for (size_t k = length; k < padded; k++)
		standard[k] = '=';
	standard[padded] = '\0';
	uint8_t *bytes = xmalloc(padded / 4 * 3 + 1);
	int decoded = EVP_DecodeBlock(bytes, (const unsigned char *)standard, (int)padded);
	free(standard);
	if (decoded < 0) {
		free(bytes);
		return NULL;
	}
	*decoded_length = (size_t)decoded - (padded - length); /* EVP_DecodeBlock counts the padding */
	return bytes;
}

/* ---- options ---- */

static const char INVALID_OPTIONS[] = "auth: invalid auth options";

struct option_pair {
	char *name;
	char *value;
};

static void free_pairs(struct option_pair *pairs, size_t count)
{
	for (size_t k = 0; k < count; k++) {
		free(pairs[k].name);
		free(pairs[k].value);
	}
	free(pairs);
}

static const char *option(const struct option_pair *pairs, size_t count, const char *name)
{
	for (size_t k = 0; k < count; k++)
		if (strcmp(pairs[k].name, name) == 0)
			return pairs[k].value;
	return "";
}

/* etcd's decomposeOpts: "TYPE,NAME=VALUE,..." with every pair exactly one '=' and no name twice. */
static int decompose(const char *options, char **type, struct option_pair **pairs, size_t *count, char *err,
                     size_t errlen)
{
	char *copy = xstrdup(options);
	*pairs = NULL;
	*count = 0;
	char *comma = strchr(copy, ',');
	*type = xstrndup(copy, comma ? (size_t)(comma - copy) : strlen(copy));
	for (char *part = comma ? comma + 1 : NULL; part;) {
		char *next = strchr(part, ',');
		if (next)
			*next = '\0';
		char *equals = strchr(part, '=');
		bool malformed = !equals || strchr(equals + 1, '=');
		if (!malformed) {
			*equals = '\0';
			for (size_t k = 0; k < *count && !malformed; k++)
				malformed = strcmp((*pairs)[k].name, part) == 0;
		}
		if (malformed) {
			log_write("warn", "invalid token option", "\"option\":\"%s\"", options);
			snprintf(err, errlen, "%s", INVALID_OPTIONS);
			free(copy);
			free(*type);
			free_pairs(*pairs, *count);
			return -1;
		}
		*pairs = xreallocarray(*pairs, *count + 1, sizeof(struct option_pair));
		(*pairs)[*count].name = xstrdup(part);
		(*pairs)[*count].value = xstrdup(equals + 1);
		(*count)++;
		part = next ? next + 1 : NULL;
	}
	free(copy);
	return 0;
}

/* Go's time.ParseDuration for what a JWT ttl is written as: a sequence of NUMBER UNIT (h, m, s, ms). */
static int parse_duration_seconds(const char *text, uint64_t *seconds)
{
	double total = 0;
	const char *at = text;
	if (!*at)
		return -1;
	while (*at) {
		char *end;
		errno = 0;
		double number = strtod(at, &end);
		if (errno || end == at)
			return -1;
		at = end;
		double unit;
		if (strncmp(at, "ms", 2) == 0) {
			unit = 0.001;
			at += 2;
		} else if (*at == 'h') {
			unit = 3600;
			at++;
		} else if (*at == 'm') {
			unit = 60;
			at++;
		} else if (*at == 's') {
			unit = 1;
			at++;
		} else {
			return -1;
		}
		total += number * unit;
	}
	*seconds = total < 0 ? 0 : (uint64_t)total;
	return 0;
}

static char *read_file(const char *path, size_t *length, char *err, size_t errlen)
{
	FILE *file = fopen(path, "rb");
	if (!file) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return NULL;
	}
	size_t capacity = 4096, used = 0;
	char *bytes = xmalloc(capacity);
	size_t got;
	while ((got = fread(bytes + used, 1, capacity - used - 1, file)) > 0) {
		used += got;
		if (capacity - used - 1 == 0)
			bytes = xrealloc(bytes, capacity *= 2);
	}
	bool failed = ferror(file);
	fclose(file);
	if (failed) {
		snprintf(err, errlen, "read %s: %s", path, strerror(errno));
		free(bytes);
		return NULL;
	}
	bytes[used] = '\0';
	*length = used;
	return bytes;
}

static EVP_PKEY *public_key_from_pem(const char *pem, size_t length)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)length);
	EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!key) {
		/* golang-jwt also takes a certificate's key. */
		(void)BIO_reset(bio);
		X509 *certificate = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (certificate) {
			key = X509_get_pubkey(certificate);
			X509_free(certificate);
		}
	}
	BIO_free(bio);
	ERR_clear_error();
	return key;
}

static EVP_PKEY *private_key_from_pem(const char *pem, size_t length)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)length);
	EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return key;
}

static int choose_method(struct auth_tokens *tokens, const char *method)
{
	static const struct {
		const char *name;
		enum jwt_family family;
		int bits;
	} methods[] = {
	    {"RS256", JWT_RSA, 256},   {"RS384", JWT_RSA, 384},   {"RS512", JWT_RSA, 512},
	    {"PS256", JWT_RSA_PSS, 256}, {"PS384", JWT_RSA_PSS, 384}, {"PS512", JWT_RSA_PSS, 512},
	    {"ES256", JWT_ECDSA, 256}, {"ES384", JWT_ECDSA, 384}, {"ES512", JWT_ECDSA, 512},
	    {"HS256", JWT_HMAC, 256},  {"HS384", JWT_HMAC, 384},  {"HS512", JWT_HMAC, 512},
	};
	for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++) {
		if (strcmp(methods[k].name, method) != 0)
			continue;
		snprintf(tokens->algorithm, sizeof(tokens->algorithm), "%s", method);
		tokens->family = methods[k].family;
		tokens->digest = methods[k].bits == 256 ? EVP_sha256() : methods[k].bits == 384 ? EVP_sha384() : EVP_sha512();
		return 0;
	}
	return -1;
}

static bool key_fits_family(EVP_PKEY *key, enum jwt_family family)
{
	int id = EVP_PKEY_get_base_id(key);
	return family == JWT_ECDSA ? id == EVP_PKEY_EC : id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS;
}

/* etcd's newTokenProviderJWT with jwtOptions.Key. */
static int open_jwt(struct auth_tokens *tokens, const struct option_pair *pairs, size_t count, char *err,
                    size_t errlen)
{
	static const char *const known[] = {"sign-method", "pub-key", "priv-key", "ttl"};
	for (size_t k = 0; k < count; k++) {
		bool is_known = false;
		for (size_t n = 0; n < sizeof(known) / sizeof(known[0]); n++)
			is_known |= strcmp(pairs[k].name, known[n]) == 0;
		if (!is_known)
			log_write("warn", "unknown JWT options", "\"keys\":[\"%s\"]", pairs[k].name);
	}
	tokens->jwt_ttl_seconds = 300;
	const char *ttl = option(pairs, count, "ttl");
	if (ttl[0] && parse_duration_seconds(ttl, &tokens->jwt_ttl_seconds) != 0) {
		snprintf(err, errlen, "time: invalid duration \"%s\"", ttl);
		return -1;
	}
	size_t public_length = 0, private_length = 0;
	char *public_pem = NULL, *private_pem = NULL;
	const char *public_path = option(pairs, count, "pub-key"), *private_path = option(pairs, count, "priv-key");
	if (public_path[0] && !(public_pem = read_file(public_path, &public_length, err, errlen)))
		return -1;
	if (private_path[0] && !(private_pem = read_file(private_path, &private_length, err, errlen))) {
		free(public_pem);
		return -1;
	}
	int status = 0;
	if (choose_method(tokens, option(pairs, count, "sign-method")) != 0) {
		snprintf(err, errlen, "auth: invalid auth signature method");
		status = -1;
	} else if (tokens->family == JWT_HMAC) {
		if (!private_pem || private_length == 0) {
			snprintf(err, errlen, "auth: missing key data");
			status = -1;
		} else {
			tokens->hmac_key = xmemdup(private_pem, private_length);
			tokens->hmac_key_length = private_length;
		}
	} else {
		EVP_PKEY *private_key = private_pem ? private_key_from_pem(private_pem, private_length) : NULL;
		EVP_PKEY *public_key = public_pem ? public_key_from_pem(public_pem, public_length) : NULL;
		const char *kind = tokens->family == JWT_ECDSA ? "EC" : "RSA";
		if ((private_pem && !private_key) || (private_key && !key_fits_family(private_key, tokens->family))) {
			snprintf(err, errlen, "%s: key must be a PEM encoded PKCS1 or PKCS8 %s private key", private_path, kind);
			status = -1;
		} else if ((public_pem && !public_key) || (public_key && !key_fits_family(public_key, tokens->family))) {
			snprintf(err, errlen, "%s: key must be a PEM encoded PKCS1 or PKCS8 %s public key", public_path, kind);
			status = -1;
		} else if (!private_key && !public_key) {
			snprintf(err, errlen, "auth: missing key data");
			status = -1;
		} else if (private_key && public_key && EVP_PKEY_eq(private_key, public_key) != 1) {
			snprintf(err, errlen, "auth: public and private keys don't match");
			status = -1;
		} else if (private_key) {
			tokens->key = private_key;
			private_key = NULL;
		} else {
			tokens->key = public_key;
			public_key = NULL;
			tokens->verify_only = true;
		}
		EVP_PKEY_free(private_key);
		EVP_PKEY_free(public_key);
	}
	free(public_pem);
	free(private_pem);
	return status;
}

int auth_tokens_open(const char *options, uint64_t ttl_seconds, struct auth_tokens **out, char *err, size_t errlen)
{
	char *type;
	struct option_pair *pairs;
	size_t count;
	if (decompose(options ? options : "", &type, &pairs, &count, err, errlen) != 0)
		return -1;
	struct auth_tokens *tokens = xcalloc(1, sizeof(*tokens));
	pthread_mutex_init(&tokens->lock, NULL);
	tokens->ttl_ms = 1000 * (ttl_seconds ? ttl_seconds : AUTH_TOKEN_DEFAULT_TTL_SECONDS);
	int status = 0;
	if (strcmp(type, "simple") == 0) {
		tokens->kind = TOKEN_SIMPLE;
		log_write("warn", "simple token is not cryptographically signed", NULL);
	} else if (strcmp(type, "jwt") == 0) {
		tokens->kind = TOKEN_JWT;
		status = open_jwt(tokens, pairs, count, err, errlen);
	} else if (type[0] == '\0') {
		tokens->kind = TOKEN_NONE;
	} else {
		log_write("warn", "unknown token type", "\"type\":\"%s\",\"error\":\"%s\"", type, INVALID_OPTIONS);
		snprintf(err, errlen, "%s", INVALID_OPTIONS);
		status = -1;
	}
	free(type);
	free_pairs(pairs, count);
	if (status != 0) {
		auth_tokens_close(tokens);
		return -1;
	}
	*out = tokens;
	return 0;
}

void auth_tokens_close(struct auth_tokens *tokens)
{
	if (!tokens)
		return;
	forget_all(tokens);
	EVP_PKEY_free(tokens->key);
	free(tokens->hmac_key);
	pthread_mutex_destroy(&tokens->lock);
	free(tokens);
}

const char *auth_tokens_kind(const struct auth_tokens *tokens)
{
	return tokens->kind == TOKEN_SIMPLE ? "simple" : tokens->kind == TOKEN_JWT ? "jwt" : "";
}

bool auth_tokens_are_simple(const struct auth_tokens *tokens)
{
	return tokens->kind == TOKEN_SIMPLE;
}

void auth_tokens_enable(struct auth_tokens *tokens)
{
	pthread_mutex_lock(&tokens->lock);
	tokens->enabled = true;
	pthread_mutex_unlock(&tokens->lock);
}

void auth_tokens_disable(struct auth_tokens *tokens)
{
	pthread_mutex_lock(&tokens->lock);
	tokens->enabled = false;
	forget_all(tokens);
	pthread_mutex_unlock(&tokens->lock);
}

void auth_tokens_prefix(const struct auth_tokens *tokens, char out[17])
{
	static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	out[0] = '\0';
	if (tokens->kind != TOKEN_SIMPLE)
		return;
	/* Uniform over the 52 letters, as crypto/rand.Int: bytes of 208 and up (4 * 52) are drawn again. */
	size_t filled = 0;
	while (filled < 16) {
		uint8_t random[32];
		if (RAND_bytes(random, sizeof(random)) != 1)
			abort(); /* no randomness: a predictable token would be worse than stopping */
		for (size_t k = 0; k < sizeof(random) && filled < 16; k++)
			if (random[k] < 4 * 52)
				out[filled++] = letters[random[k] % 52];
	}
	out[16] = '\0';
}

/* ---- JWT ---- */

static int sign(struct auth_tokens *tokens, const char *input, uint8_t **signature, size_t *signature_length,
                char *err, size_t errlen)
{
	if (tokens->family == JWT_HMAC) {
		*signature = xmalloc(EVP_MAX_MD_SIZE);
		unsigned int written = 0;
		if (!HMAC(tokens->digest, tokens->hmac_key, (int)tokens->hmac_key_length, (const unsigned char *)input,
		          strlen(input), *signature, &written)) {
			snprintf(err, errlen, "HMAC failed");
			free(*signature);
			return -1;
		}
		*signature_length = written;
		return 0;
	}
	EVP_MD_CTX *context = EVP_MD_CTX_new();
	EVP_PKEY_CTX *key_context = NULL;
	int status = -1;
	uint8_t *der = NULL;
	if (EVP_DigestSignInit(context, &key_context, tokens->digest, NULL, tokens->key) != 1)
		goto done;
	if (tokens->family == JWT_RSA_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto done;
	size_t der_length = 0;
	if (EVP_DigestSign(context, NULL, &der_length, (const unsigned char *)input, strlen(input)) != 1)
		goto done;
	der = xmalloc(der_length);
	if (EVP_DigestSign(context, der, &der_length, (const unsigned char *)input, strlen(input)) != 1)
		goto done;
	if (tokens->family != JWT_ECDSA) {
		*signature = der;
		*signature_length = der_length;
		der = NULL;
		status = 0;
		goto done;
	}
	/* JWS wants ECDSA's r and s as two big-endian numbers of the curve's size, not DER. */
	const unsigned char *cursor = der;
	ECDSA_SIG *pair = d2i_ECDSA_SIG(NULL, &cursor, (long)der_length);
	if (!pair)
		goto done;
	size_t half = (size_t)(EVP_PKEY_get_bits(tokens->key) + 7) / 8;
	*signature = xcalloc(2, half);
	BN_bn2binpad(ECDSA_SIG_get0_r(pair), *signature, (int)half);
	BN_bn2binpad(ECDSA_SIG_get0_s(pair), *signature + half, (int)half);
	*signature_length = 2 * half;
	ECDSA_SIG_free(pair);
	status = 0;
done:
	if (status != 0)
		snprintf(err, errlen, "signing a JWT with %s failed", tokens->algorithm);
	free(der);
	EVP_MD_CTX_free(context);
	ERR_clear_error();
	return status;
}

static bool verify(struct auth_tokens *tokens, const char *input, size_t input_length, const uint8_t *signature,
                   size_t signature_length)
{
	if (tokens->family == JWT_HMAC) {
		uint8_t expected[EVP_MAX_MD_SIZE];
		unsigned int written = 0;
		if (!HMAC(tokens->digest, tokens->hmac_key, (int)tokens->hmac_key_length, (const unsigned char *)input,
		          input_length, expected, &written))
			return false;
		return written == signature_length && CRYPTO_memcmp(expected, signature, written) == 0;
	}
	uint8_t *der = NULL;
	size_t der_length = signature_length;
	const uint8_t *checked = signature;
	if (tokens->family == JWT_ECDSA) {
		size_t half = (size_t)(EVP_PKEY_get_bits(tokens->key) + 7) / 8;
		if (signature_length != 2 * half)
			return false;
		ECDSA_SIG *pair = ECDSA_SIG_new();
		ECDSA_SIG_set0(pair, BN_bin2bn(signature, (int)half, NULL), BN_bin2bn(signature + half, (int)half, NULL));
		int encoded = i2d_ECDSA_SIG(pair, &der);
		ECDSA_SIG_free(pair);
		if (encoded <= 0)
			return false;
		der_length = (size_t)encoded;
		checked = der;
	}
	EVP_MD_CTX *context = EVP_MD_CTX_new();
	EVP_PKEY_CTX *key_context = NULL;
	bool valid = EVP_DigestVerifyInit(context, &key_context, tokens->digest, NULL, tokens->key) == 1;
	if (valid && tokens->family == JWT_RSA_PSS)
		valid = EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PSS_PADDING) == 1 &&
		        EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, RSA_PSS_SALTLEN_AUTO) == 1;
	valid = valid && EVP_DigestVerify(context, checked, der_length, (const unsigned char *)input, input_length) == 1;
	EVP_MD_CTX_free(context);
	OPENSSL_free(der);
	ERR_clear_error();
	return valid;
}

static int assign_jwt(struct auth_tokens *tokens, const char *user, uint64_t revision, char **token, char *err,
                      size_t errlen)
{
	if (tokens->verify_only) {
		snprintf(err, errlen, "auth: token signing attempted with verify-only key");
		return -1;
	}
	char header_json[64];
	snprintf(header_json, sizeof(header_json), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", tokens->algorithm);
	/* Go's encoding/json writes a map's keys sorted. */
	json_t *claims = json_pack("{s:I, s:I, s:s}", "exp", (json_int_t)(time(NULL) + (time_t)tokens->jwt_ttl_seconds),
	                           "revision", (json_int_t)revision, "username", user);
	char *claims_json = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(claims);
	char *header_part = base64url_encode((const uint8_t *)header_json, strlen(header_json));
	char *claims_part = base64url_encode((const uint8_t *)claims_json, strlen(claims_json));
	free(claims_json);
	size_t input_length = strlen(header_part) + 1 + strlen(claims_part);
	char *input = xmalloc(input_length + 1);
	snprintf(input, input_length + 1, "%s.%s", header_part, claims_part);
	free(header_part);
	free(claims_part);
	uint8_t *signature;
	size_t signature_length;
	if (sign(tokens, input, &signature, &signature_length, err, errlen) != 0) {
		free(input);
		return -1;
	}
	char *signature_part = base64url_encode(signature, signature_length);
	free(signature);
	size_t total = input_length + 1 + strlen(signature_part) + 1;
	*token = xmalloc(total);
	snprintf(*token, total, "%s.%s", input, signature_part);
	free(input);
	free(signature_part);
	return 0;
}

/* golang-jwt's Parse with etcd's key function, then MapClaims.Valid (exp, iat, nbf against now). */
static enum auth_token_lookup lookup_jwt(struct auth_tokens *tokens, const char *token, char **user,
                                         uint64_t *revision)
{
	const char *first = strchr(token, '.');
	const char *second = first ? strchr(first + 1, '.') : NULL;
	if (!first || !second || strchr(second + 1, '.'))
		return AUTH_TOKEN_INVALID;
	size_t header_length, claims_length, signature_length;
	uint8_t *header_bytes = base64url_decode(token, (size_t)(first - token), &header_length);
	uint8_t *claims_bytes = base64url_decode(first + 1, (size_t)(second - first - 1), &claims_length);
	uint8_t *signature = base64url_decode(second + 1, strlen(second + 1), &signature_length);
	enum auth_token_lookup result = AUTH_TOKEN_INVALID;
	json_t *header = NULL, *claims = NULL;
	if (!header_bytes || !claims_bytes || !signature)
		goto done;
	header = json_loadb((const char *)header_bytes, header_length, 0, NULL);
	claims = json_loadb((const char *)claims_bytes, claims_length, 0, NULL);
	const char *algorithm = json_string_value(json_object_get(header, "alg"));
	if (!json_is_object(claims) || !algorithm || strcmp(algorithm, tokens->algorithm) != 0)
		goto done;
	if (!verify(tokens, token, (size_t)(second - token), signature, signature_length))
		goto done;
	double now = (double)time(NULL);
	json_t *expires = json_object_get(claims, "exp"), *issued = json_object_get(claims, "iat"),
	       *not_before = json_object_get(claims, "nbf");
	if ((expires && !(json_is_number(expires) && (json_number_value(expires) == 0 || now < json_number_value(expires)))) ||
	    (issued && !(json_is_number(issued) && now >= json_number_value(issued))) ||
	    (not_before && !(json_is_number(not_before) && now >= json_number_value(not_before))))
		goto done;
	const char *name = json_string_value(json_object_get(claims, "username"));
	json_t *claimed_revision = json_object_get(claims, "revision");
	if (!name || !json_is_number(claimed_revision))
		goto done;
	*user = xstrdup(name);
	*revision = (uint64_t)json_number_value(claimed_revision);
	result = AUTH_TOKEN_VALID;
done:
	if (result != AUTH_TOKEN_VALID) {
		char escaped[512];
		log_write("warn", "failed to parse a JWT token", "\"token\":\"%s\"", log_json_escape(token, escaped, sizeof(escaped)));
	}
	json_decref(header);
	json_decref(claims);
	free(header_bytes);
	free(claims_bytes);
	free(signature);
	return result;
}

/* ---- the providers ---- */

int auth_tokens_assign(struct auth_tokens *tokens, const char *user, uint64_t revision, const char *simple_prefix,
                       uint64_t index, uint64_t now_ms, char **token, char *err, size_t errlen)
{
	if (tokens->kind == TOKEN_JWT)
		return assign_jwt(tokens, user, revision, token, err, errlen);
	if (tokens->kind == TOKEN_NONE) {
		snprintf(err, errlen, "auth: authentication failed, invalid user ID or password");
		return -1;
	}
	size_t size = strlen(simple_prefix) + 24;
	*token = xmalloc(size);
	snprintf(*token, size, "%s.%" PRIu64, simple_prefix, index);
	pthread_mutex_lock(&tokens->lock);
	if (tokens->enabled) {
		struct simple_token *existing = find_slot(tokens, *token);
		if (existing) {
			/* etcd panics on a reused token; the same entry applied twice can only come from a replay. */
			free(existing->user);
			existing->user = xstrdup(user);
			existing->expires_ms = now_ms + tokens->ttl_ms;
		} else {
			if ((tokens->count + 1) * 2 > tokens->capacity)
				grow(tokens);
			place(tokens, (struct simple_token){xstrdup(*token), xstrdup(user), now_ms + tokens->ttl_ms});
			tokens->count++;
		}
	}
	pthread_mutex_unlock(&tokens->lock);
	return 0;
}

/* strconv.Atoi of the part after the dot: an optional sign and decimal digits that fit an int64. */
static bool parse_index(const char *text, uint64_t *index)
{
	const char *digits = text[0] == '+' || text[0] == '-' ? text + 1 : text;
	if (!*digits)
		return false;
	uint64_t value = 0;
	for (const char *c = digits; *c; c++) {
		if (*c < '0' || *c > '9' || value > (UINT64_C(9223372036854775807) - (uint64_t)(*c - '0')) / 10)
			return false;
		value = value * 10 + (uint64_t)(*c - '0');
	}
	/* A negative index becomes a huge uint64 in etcd and is never reached; here it is refused. */
	if (text[0] == '-' && value != 0)
		return false;
	*index = value;
	return true;
}

enum auth_token_lookup auth_tokens_lookup(struct auth_tokens *tokens, const char *token, uint64_t applied_index,
                                          uint64_t current_revision, uint64_t now_ms, char **user,
                                          uint64_t *revision, uint64_t *wait_index)
{
	if (tokens->kind == TOKEN_JWT)
		return lookup_jwt(tokens, token, user, revision);
	if (tokens->kind == TOKEN_NONE)
		return AUTH_TOKEN_INVALID;
	const char *dot = strchr(token, '.');
	uint64_t index;
	if (!dot || strchr(dot + 1, '.') || !parse_index(dot + 1, &index))
		return AUTH_TOKEN_INVALID;
	if (index > applied_index) {
		*wait_index = index;
		return AUTH_TOKEN_PENDING;
	}
	enum auth_token_lookup result = AUTH_TOKEN_INVALID;
	pthread_mutex_lock(&tokens->lock);
	struct simple_token *slot = find_slot(tokens, token);
	if (slot && slot->expires_ms > now_ms) {
		slot->expires_ms = now_ms + tokens->ttl_ms;
		*user = xstrdup(slot->user);
		*revision = current_revision;
		result = AUTH_TOKEN_VALID;
	}
	pthread_mutex_unlock(&tokens->lock);
	return result;
}

void auth_tokens_invalidate_user(struct auth_tokens *tokens, const char *user)
{
	pthread_mutex_lock(&tokens->lock);
	for (size_t k = 0; k < tokens->capacity;) {
		struct simple_token *slot = &tokens->slots[k];
		/* A removal may shift a later entry into this slot: look at it again. */
		if (slot->token && strcmp(slot->user, user) == 0)
			remove_slot(tokens, slot);
		else
			k++;
	}
	pthread_mutex_unlock(&tokens->lock);
}

size_t auth_tokens_expire(struct auth_tokens *tokens, uint64_t now_ms)
{
	size_t expired = 0;
	pthread_mutex_lock(&tokens->lock);
	for (size_t k = 0; k < tokens->capacity;) {
		struct simple_token *slot = &tokens->slots[k];
		if (slot->token && slot->expires_ms <= now_ms) {
			char user[256], token[256];
			log_write("info", "deleted a simple token", "\"user-name\":\"%s\",\"token\":\"%s\"",
			          log_json_escape(slot->user, user, sizeof(user)), log_json_escape(slot->token, token, sizeof(token)));
			remove_slot(tokens, slot);
			expired++;
		} else {
			k++;
		}
	}
	pthread_mutex_unlock(&tokens->lock);
	return expired;
}

size_t auth_tokens_count(struct auth_tokens *tokens)
{
	pthread_mutex_lock(&tokens->lock);
	size_t count = tokens->count;
	pthread_mutex_unlock(&tokens->lock);
	return count;
}
