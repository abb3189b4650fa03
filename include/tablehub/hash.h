/* hash.h: SHA-1 (git object ids, pack checksums), SHA-256 (upload names, token hashes) and a fast
 * 64-bit non-cryptographic hash (chunk boundaries). The SHA functions use OpenSSL's libcrypto,
 * whose assembly implementations hash several times faster than a portable C version would. */
#ifndef TABLEHUB_HASH_H
#define TABLEHUB_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct th_sha1 th_sha1;     /* opaque streaming SHA-1 */
typedef struct th_sha256 th_sha256; /* opaque streaming SHA-256 */

/* Returns NULL when out of memory. Free with th_sha1_free (accepts NULL). */
th_sha1 *th_sha1_new(void);
void th_sha1_update(th_sha1 *h, const void *data, size_t len);
/* Write the 20-byte digest to out and reset the context for reuse. */
void th_sha1_final(th_sha1 *h, unsigned char out[20]);
void th_sha1_free(th_sha1 *h);

th_sha256 *th_sha256_new(void);
void th_sha256_update(th_sha256 *h, const void *data, size_t len);
void th_sha256_final(th_sha256 *h, unsigned char out[32]);
void th_sha256_free(th_sha256 *h);

/* One-shot SHA-256 of data as 64 lower-case hex digits plus NUL. */
void th_sha256_hex(char out[65], const void *data, size_t len);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void th_hex(char *out, const unsigned char *bytes, size_t n);

/* A 64-bit hash with good avalanche (for content-defined chunk boundaries): stable across
 * platforms and releases, since stored chunk boundaries depend on it. */
uint64_t th_hash64(const void *data, size_t len);

#endif
