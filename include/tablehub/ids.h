/* ids.h: the clock, random bytes, uuids and API token secrets (util/ids.c). Times are integer
 * milliseconds since the epoch (UTC) everywhere in tablehub; th_time_fmt gives their ISO-8601 text.
 */
#ifndef TABLEHUB_IDS_H
#define TABLEHUB_IDS_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

/* Now, in ms since the epoch (UTC). */
int64_t th_now_ms(void);
/* ISO-8601 UTC with milliseconds, "2023-05-23T17:46:45.035Z" (24 chars plus NUL). */
void th_time_fmt(char out[32], int64_t ms);

/* Fill out[0..n) from getrandom(). Returns TH_OK or TH_ESTORE. */
int th_random_bytes(unsigned char *out, size_t n, th_error *err);

/* A uuid is 36 chars plus NUL. */
#define TH_UUID_SIZE 37
/* A new random (version 4) uuid, lower-case. Returns TH_OK or TH_ESTORE. */
int th_uuid4(char out[TH_UUID_SIZE], th_error *err);
/* Is s (NUL-terminated) a uuid: 8-4-4-4-12 hex digits, only lower-case ones when `lower_only`?
 * Returns 1 or 0. */
int th_uuid_valid(const char *s, int lower_only);

/* A token is "thp_" followed by 64 hex digits (32 random bytes): 68 chars plus NUL. Only its
 * SHA-256 is stored, so a token is shown once, when it is created. */
#define TH_TOKEN_SIZE 69
#define TH_TOKEN_PREFIX "thp_"
/* A new token secret into out. Returns TH_OK or TH_ESTORE. */
int th_token_new(char out[TH_TOKEN_SIZE], th_error *err);

#endif
