/* password.c: Argon2id password hashes and constant-time compares, through libsodium.
 *
 * Why a library: libsodium's crypto_pwhash_str is a well-kept, audited Argon2id with the salt and
 * parameters encoded in its output, and sodium_memcmp / sodium_memzero are compares and wipes the
 * compiler cannot turn into early exits or drop. Hand-written versions of either are where
 * password storage usually goes wrong.
 *
 * Concurrency: each hash takes TH_PASSWORD_MEMLIMIT bytes for ~50 ms. A counting gate (a mutex
 * and a condition variable) lets TH_PASSWORD_CONCURRENCY of them run at once and queues the rest,
 * so a burst of logins costs time, never unbounded memory. libsodium itself is thread-safe once
 * sodium_init() has run, which happens once per process (pthread_once).
 */
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "tablehub/password.h"
#include "tablehub/text.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_ok;
/* The hash verified for an unknown user: any valid hash made with today's parameters. */
static char dummy_hash[TH_PASSWORD_HASH_SIZE];

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_running;

static void gate_enter(void)
{
	pthread_mutex_lock(&gate_mu);
	while (gate_running >= TH_PASSWORD_CONCURRENCY)
		pthread_cond_wait(&gate_cv, &gate_mu);
	gate_running++;
	pthread_mutex_unlock(&gate_mu);
}

static void gate_leave(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_running--;
	pthread_cond_signal(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static void init(void)
{
	static const char pw[] = "tablehub dummy password";

	if (sodium_init() < 0)
		return;
	/* Made once per process, so its salt is random and nobody knows a password for it. */
	if (crypto_pwhash_str(dummy_hash, pw, sizeof(pw) - 1, TH_PASSWORD_OPSLIMIT,
	                      TH_PASSWORD_MEMLIMIT) != 0)
		return;
	init_ok = 1;
}

static int ensure_init(th_error *err)
{
	pthread_once(&init_once, init);
	if (!init_ok)
		return th_error_set(err, TH_ERROR,
		                    "password hashing unavailable: libsodium failed");
	return TH_OK;
}

int th_password_check(const char *password, size_t len, th_error *err)
{
	if (len < TH_PASSWORD_MIN)
		return th_error_set(err, TH_EINVALID, "password too short: use at least %d bytes",
		                    TH_PASSWORD_MIN);
	if (len > TH_PASSWORD_MAX)
		return th_error_set(err, TH_EINVALID, "password too long: use at most %d bytes",
		                    TH_PASSWORD_MAX);
	if (memchr(password, '\0', len) != NULL || !th_utf8_valid(password, len, NULL))
		return th_error_set(err, TH_EINVALID,
		                    "password must be UTF-8 text without NUL characters");
	return TH_OK;
}

int th_password_hash(char out[TH_PASSWORD_HASH_SIZE], const char *password, size_t len,
                     th_error *err)
{
	char h[TH_PASSWORD_HASH_SIZE];
	int rc, error;

	if ((error = th_password_check(password, len, err)) < 0 || (error = ensure_init(err)) < 0)
		return error;
	gate_enter();
	rc = crypto_pwhash_str(h, password, len, TH_PASSWORD_OPSLIMIT, TH_PASSWORD_MEMLIMIT);
	gate_leave();
	/* crypto_pwhash_str fails only when it cannot allocate its memory. */
	if (rc != 0)
		return th_error_set(err, TH_ENOMEM, "out of memory hashing a password");
	memcpy(out, h, sizeof(h));
	return TH_OK;
}

int th_password_verify(int *rehash, const char *stored, const char *password, size_t len,
                       th_error *err)
{
	const char *h = stored;
	int rc, error;

	if (rehash != NULL)
		*rehash = 0;
	if ((error = ensure_init(err)) < 0)
		return error;
	/* Only strings libsodium made with Argon2id are ours; anything else (a hash of another
	 * algorithm, a truncated value) is refused without hashing. The length bound keeps a
	 * corrupt row from reading past its buffer. */
	if (h != NULL &&
	    (strnlen(h, TH_PASSWORD_HASH_SIZE) >= TH_PASSWORD_HASH_SIZE ||
	     strncmp(h, crypto_pwhash_STRPREFIX, strlen(crypto_pwhash_STRPREFIX)) != 0))
		return th_error_set(err, TH_EAUTH, "wrong user name or password");
	/* A password longer than any we accept cannot be right; it is checked against the dummy
	 * so that it costs the same time as any other wrong password. */
	if (h == NULL || len > TH_PASSWORD_MAX)
		h = dummy_hash;
	gate_enter();
	rc = crypto_pwhash_str_verify(h, password, len);
	gate_leave();
	if (rc != 0 || h != stored)
		return th_error_set(err, TH_EAUTH, "wrong user name or password");
	if (rehash != NULL)
		*rehash = crypto_pwhash_str_needs_rehash(stored, TH_PASSWORD_OPSLIMIT,
		                                         TH_PASSWORD_MEMLIMIT) != 0;
	return TH_OK;
}

int th_ct_equal(const void *a, const void *b, size_t n)
{
	/* sodium_memcmp needs no sodium_init() and runs in time that depends on n only. */
	return sodium_memcmp(a, b, n) == 0;
}

void th_secure_zero(void *p, size_t n)
{
	sodium_memzero(p, n);
}
