/* limit.c: the login rate limiter (design in limit.h).
 *
 * GCRA in one number: each key keeps `tat`, the time at which its bucket would be full again.
 * An attempt at `now` is allowed when max(tat, now) - now <= tolerance, where tolerance =
 * (burst - 1) * interval, and then moves tat on by one interval. An entry with tat <= now is idle
 * (a full bucket), the same as no entry at all, so idle entries are free to reuse. The set of a
 * key is picked with SipHash (libsodium's crypto_shorthash) under a key made at start.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "limit.h"
#include "tablehub/ids.h"

#define WAYS 8
#define KEY_MAX 128

typedef struct entry {
	int64_t tat; /* 0 = empty */
	char key[KEY_MAX];
} entry;

struct api_limiter {
	pthread_mutex_t mu;
	size_t nsets;
	int64_t interval_ms, tolerance_ms;
	unsigned char hkey[crypto_shorthash_KEYBYTES];
	entry *e; /* nsets * WAYS */
};

api_limiter *api_limiter_new(size_t slots, unsigned burst, int64_t interval_ms)
{
	api_limiter *l;

	if (burst < 1 || interval_ms <= 0 || (l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->nsets = (slots + WAYS - 1) / WAYS;
	if (l->nsets == 0)
		l->nsets = 1;
	l->interval_ms = interval_ms;
	l->tolerance_ms = (int64_t)(burst - 1) * interval_ms;
	if ((l->e = calloc(l->nsets * WAYS, sizeof(*l->e))) == NULL ||
	    th_random_bytes(l->hkey, sizeof(l->hkey), NULL) < 0) {
		free(l->e);
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->mu, NULL);
	return l;
}

void api_limiter_free(api_limiter *l)
{
	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l->e);
	free(l);
}

/* The entry of `key` (its text cut to KEY_MAX - 1 bytes in k), or NULL when it has none. With
 * `make`, a missing key takes the idle entry of its set, or the one that will be idle soonest.
 * Called with the mutex held. */
static entry *find(api_limiter *l, const char k[KEY_MAX], int make)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t set;
	entry *s, *victim = NULL;

	crypto_shorthash(h, (const unsigned char *)k, strlen(k), l->hkey);
	memcpy(&set, h, sizeof(set));
	s = &l->e[(set % l->nsets) * WAYS];
	for (int i = 0; i < WAYS; i++) {
		if (s[i].tat != 0 && strcmp(s[i].key, k) == 0)
			return &s[i];
		if (victim == NULL || s[i].tat < victim->tat)
			victim = &s[i];
	}
	/* Empty entries (tat 0) come first, then idle ones (tat <= now), then the soonest idle. */
	if (!make)
		return NULL;
	memcpy(victim->key, k, KEY_MAX);
	victim->tat = 0;
	return victim;
}

static void cut_key(char out[KEY_MAX], const char *key)
{
	memset(out, 0, KEY_MAX);
	strncpy(out, key, KEY_MAX - 1);
}

unsigned api_limiter_check(api_limiter *l, const char *key, int64_t now_ms, int take)
{
	char k[KEY_MAX];
	entry *e;
	int64_t tat, wait;
	unsigned r = 0;

	cut_key(k, key);
	pthread_mutex_lock(&l->mu);
	e = find(l, k, take);
	tat = e != NULL && e->tat > now_ms ? e->tat : now_ms;
	wait = tat - now_ms - l->tolerance_ms;
	if (wait > 0)
		r = (unsigned)((wait + 999) / 1000);
	else if (take)
		e->tat = tat + l->interval_ms;
	pthread_mutex_unlock(&l->mu);
	return r;
}

void api_limiter_charge(api_limiter *l, const char *key, int64_t now_ms)
{
	char k[KEY_MAX];
	entry *e;

	cut_key(k, key);
	pthread_mutex_lock(&l->mu);
	e = find(l, k, 1);
	/* A charge past the limit waits out at most one more interval: refused attempts cannot
	 * push the wait ever further into the future. */
	e->tat = (e->tat > now_ms ? e->tat : now_ms) + l->interval_ms;
	if (e->tat > now_ms + l->tolerance_ms + l->interval_ms)
		e->tat = now_ms + l->tolerance_ms + l->interval_ms;
	pthread_mutex_unlock(&l->mu);
}

void api_limiter_forget(api_limiter *l, const char *key)
{
	char k[KEY_MAX];
	entry *e;

	cut_key(k, key);
	pthread_mutex_lock(&l->mu);
	if ((e = find(l, k, 0)) != NULL)
		e->tat = 0;
	pthread_mutex_unlock(&l->mu);
}
