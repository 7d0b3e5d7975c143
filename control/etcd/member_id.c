/* control/etcd/member_id.c: etcd's ID derivation (etcdserver/api/membership: NewMember, genID). */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "member_id.h"

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int compare_ids(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t big_endian_prefix(const unsigned char digest[20])
{
	uint64_t value = 0;
	for (int k = 0; k < 8; k++)
		value = value << 8 | digest[k];
	return value;
}

uint64_t member_id_compute(const char *const *peer_urls, size_t count, const char *cluster_token,
                           bool has_added_at, int64_t added_at_unix_seconds)
{
	const char **sorted = xmalloc((count ? count : 1) * sizeof(char *));
	if (count)
		memcpy(sorted, peer_urls, count * sizeof(char *));
	qsort(sorted, count, sizeof(char *), compare_strings);
	EVP_MD_CTX *context = EVP_MD_CTX_new();
	if (!context || !EVP_DigestInit_ex(context, EVP_sha1(), NULL))
		abort();
	for (size_t k = 0; k < count; k++)
		EVP_DigestUpdate(context, sorted[k], strlen(sorted[k]));
	if (cluster_token)
		EVP_DigestUpdate(context, cluster_token, strlen(cluster_token));
	if (has_added_at) {
		char seconds[32];
		int length = snprintf(seconds, sizeof(seconds), "%lld", (long long)added_at_unix_seconds);
		EVP_DigestUpdate(context, seconds, (size_t)length);
	}
	unsigned char digest[20];
	unsigned int digest_length = 0;
	EVP_DigestFinal_ex(context, digest, &digest_length);
	EVP_MD_CTX_free(context);
	free(sorted);
	return big_endian_prefix(digest);
}

uint64_t cluster_id_compute(const uint64_t *member_ids, size_t count)
{
	uint64_t *sorted = xmalloc((count ? count : 1) * sizeof(uint64_t));
	unsigned char *bytes = xmalloc((count ? count : 1) * 8);
	if (count)
		memcpy(sorted, member_ids, count * sizeof(uint64_t));
	qsort(sorted, count, sizeof(uint64_t), compare_ids);
	for (size_t k = 0; k < count; k++)
		for (int b = 0; b < 8; b++)
			bytes[8 * k + (size_t)b] = (unsigned char)(sorted[k] >> (56 - 8 * b));
	unsigned char digest[20];
	unsigned int digest_length = 0;
	if (!EVP_Digest(bytes, count * 8, digest, &digest_length, EVP_sha1(), NULL))
		abort();
	free(sorted);
	free(bytes);
	return big_endian_prefix(digest);
}
