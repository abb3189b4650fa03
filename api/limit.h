/* limit.h: rate limits for login attempts (api/limit.c), private to api/.
 *
 * A limiter counts attempts per key ("a:127.0.0.1", "u:alice") with the generic cell rate
 * algorithm (GCRA, a token bucket kept as one time stamp a key): `burst` attempts at once, then one
 * more every `interval_ms`. Login uses two: every attempt from an address is charged to the
 * address, and every failed attempt to the user name, so neither one address guessing many
 * passwords nor many addresses guessing one user's password get far. A refused attempt is answered
 * 429 with Retry-After.
 *
 * Memory is fixed: `slots` entries in sets of 8; a new key takes an idle entry of its set, or the
 * one closest to idle. The set is chosen by a hash keyed with random bytes made at start, so a
 * client cannot aim keys at one set to push a blocked key out.
 */
#ifndef TABLEHUB_API_LIMIT_H
#define TABLEHUB_API_LIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct api_limiter api_limiter;

/* Login defaults: an address may try 20 logins at once, then one every 3 s (20 a minute); a user
 * name may fail 10 times at once, then once a minute. */
#define API_LOGIN_ADDR_BURST 20
#define API_LOGIN_ADDR_INTERVAL_MS 3000
#define API_LOGIN_USER_BURST 10
#define API_LOGIN_USER_INTERVAL_MS 60000

/* A limiter of about `slots` keys (rounded up to a multiple of 8), `burst` >= 1 attempts at once,
 * then one every interval_ms > 0. Returns NULL when out of memory (or random bytes fail). Free
 * with api_limiter_free (accepts NULL). */
api_limiter *api_limiter_new(size_t slots, unsigned burst, int64_t interval_ms);
void api_limiter_free(api_limiter *l);

/* May `key` make an attempt at now_ms (any monotonic clock in ms)? Returns 0 when it may (and,
 * with take != 0, charges the attempt), else the whole seconds to wait before it may (>= 1), for
 * Retry-After. Keys longer than 127 bytes are cut there. */
unsigned api_limiter_check(api_limiter *l, const char *key, int64_t now_ms, int take);

/* Charge one attempt to `key` whether or not it was allowed (a failure found after the check). */
void api_limiter_charge(api_limiter *l, const char *key, int64_t now_ms);

/* Forget `key`: its next attempts start from a full burst (a successful login). */
void api_limiter_forget(api_limiter *l, const char *key);

#endif
