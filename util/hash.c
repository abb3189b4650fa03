/* hash.c: SHA-1 and SHA-256 through OpenSSL's EVP interface, and th_hash64, a fixed 64-bit hash
 * for chunk boundaries. th_hash64's output is part of the storage format (it decides where chunks
 * end), so it must never change: it is a plain FNV-1a over the bytes followed by a murmur3-style
 * finaliser for avalanche, both fully specified here. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/hash.h"

/* Both digests are one EVP context and the algorithm it restarts with after each final. */
typedef struct digest {
	EVP_MD_CTX *ctx;
	const EVP_MD *md;
} digest;

struct th_sha1 {
	digest d;
};
struct th_sha256 {
	digest d;
};

/* Set up d for md. Returns 0, or -1 when out of memory (d is then empty). */
static int digest_init(digest *d, const EVP_MD *md)
{
	d->md = md;
	if ((d->ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex(d->ctx, md, NULL) != 1) {
		EVP_MD_CTX_free(d->ctx);
		d->ctx = NULL;
		return -1;
	}
	return 0;
}

static void digest_final(digest *d, unsigned char *out, unsigned int n)
{
	EVP_DigestFinal_ex(d->ctx, out, &n);
	EVP_DigestInit_ex(d->ctx, d->md, NULL);
}

th_sha1 *th_sha1_new(void)
{
	th_sha1 *h = calloc(1, sizeof(*h));

	if (h && digest_init(&h->d, EVP_sha1()) < 0) {
		free(h);
		return NULL;
	}
	return h;
}

void th_sha1_update(th_sha1 *h, const void *data, size_t len)
{
	EVP_DigestUpdate(h->d.ctx, data, len);
}

void th_sha1_final(th_sha1 *h, unsigned char out[20])
{
	digest_final(&h->d, out, 20);
}

void th_sha1_free(th_sha1 *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->d.ctx);
	free(h);
}

th_sha256 *th_sha256_new(void)
{
	th_sha256 *h = calloc(1, sizeof(*h));

	if (h && digest_init(&h->d, EVP_sha256()) < 0) {
		free(h);
		return NULL;
	}
	return h;
}

void th_sha256_update(th_sha256 *h, const void *data, size_t len)
{
	EVP_DigestUpdate(h->d.ctx, data, len);
}

void th_sha256_final(th_sha256 *h, unsigned char out[32])
{
	digest_final(&h->d, out, 32);
}

void th_sha256_free(th_sha256 *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->d.ctx);
	free(h);
}

void th_hex(char *out, const unsigned char *bytes, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

void th_sha256_hex(char out[65], const void *data, size_t len)
{
	unsigned char md[32];
	unsigned int n = 32;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	th_hex(out, md, 32);
}

uint64_t th_hash64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}
