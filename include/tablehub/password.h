/* password.h: password hashing and constant-time comparison (util/password.c), on libsodium.
 *
 * Passwords are hashed with Argon2id (libsodium's crypto_pwhash_str): a random salt and the cost
 * parameters travel inside the stored string ("$argon2id$v=19$m=32768,t=3,p=1$<salt>$<hash>"), so
 * the parameters can be raised later and older hashes still verify (th_password_verify says when
 * a stored hash should be replaced). Hashing is deliberately slow and memory-hard; at most
 * TH_PASSWORD_CONCURRENCY hashes run at once in a process (the others wait their turn), which
 * bounds the memory a burst of logins can take to TH_PASSWORD_CONCURRENCY * TH_PASSWORD_MEMLIMIT.
 *
 * Nothing here logs, and no message repeats a password.
 */
#ifndef TABLEHUB_PASSWORD_H
#define TABLEHUB_PASSWORD_H

#include <stddef.h>

#include "error.h"

/* Argon2id cost: 3 passes over 32 MiB. Measured on the 2-core development server: ~51 ms a hash
 * (best of 5; 64 MiB with 2 passes, libsodium's "interactive" preset, took ~75 ms). Twice
 * OWASP's minimum memory (19 MiB, t=2), and half the memory of the preset, which matters when
 * TH_PASSWORD_CONCURRENCY hashes run at once on a small server. */
#define TH_PASSWORD_OPSLIMIT 3
#define TH_PASSWORD_MEMLIMIT ((size_t)32 << 20)
#define TH_PASSWORD_CONCURRENCY 2

/* A stored hash is at most 127 chars plus NUL (libsodium's crypto_pwhash_STRBYTES). */
#define TH_PASSWORD_HASH_SIZE 128

/* Accepted passwords: 8 to 256 bytes of valid UTF-8 without NUL. */
#define TH_PASSWORD_MIN 8
#define TH_PASSWORD_MAX 256

/* Check `password` (len bytes) against the rules above. Returns TH_OK or TH_EINVALID (the message
 * says which rule, never the password). */
int th_password_check(const char *password, size_t len, th_error *err);

/* Hash `password` (len bytes; checked with th_password_check first) into out, NUL-terminated.
 * Blocks while TH_PASSWORD_CONCURRENCY other hashes run. Returns TH_OK, TH_EINVALID (the
 * password breaks a rule), TH_ENOMEM (Argon2's memory could not be had) or TH_ERROR (libsodium
 * could not start). */
int th_password_hash(char out[TH_PASSWORD_HASH_SIZE], const char *password, size_t len,
                     th_error *err);

/* Verify `password` against `stored` (a string from th_password_hash). With stored == NULL (no
 * such user) a fixed dummy hash is verified instead and the result is TH_EAUTH, so an unknown
 * name costs the same time as a wrong password. *rehash (may be NULL) is set to 1 when the
 * password was right but `stored` uses other parameters than today's. Returns TH_OK, TH_EAUTH
 * (wrong password, unknown user, or `stored` not a hash of ours) or TH_ERROR. */
int th_password_verify(int *rehash, const char *stored, const char *password, size_t len,
                       th_error *err);

/* 1 when the n bytes at a and b are equal, else 0, in time that depends on n only. */
int th_ct_equal(const void *a, const void *b, size_t n);

/* Zero n bytes at p in a way the compiler may not drop (for secrets on the stack). */
void th_secure_zero(void *p, size_t n);

#endif
