/* benchutil.h: the small helpers the load programs of scripts/bench.d share (qload.c,
 * smallload.c, mergeclock.c): a monotonic clock, a sleep, a comparison for qsort of latencies, and
 * the string value of one JSON field. Header-only: each program is built by one `cc` line. */
#ifndef TABLEHUB_BENCH_UTIL_H
#define TABLEHUB_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Microseconds on the monotonic clock. */
static inline int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* qsort order of doubles, ascending. */
static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The string value of "key":"..." in json (may be NULL), into out (empty when absent or when it
 * does not fit `size`). */
static inline void json_field(char *out, size_t size, const char *json, const char *key)
{
	char pat[64];
	const char *p, *q;

	out[0] = '\0';
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	if (json == NULL || (p = strstr(json, pat)) == NULL)
		return;
	p += strlen(pat);
	if ((q = strchr(p, '"')) == NULL || (size_t)(q - p) >= size)
		return;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
}

#endif
