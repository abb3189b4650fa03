/* tests/repo_fixture.h: helpers the content-store tests share (test_repo.c, test_pack.c): a
 * deterministic blob generator, a fresh repository in a temporary directory, and file counting. */
#ifndef TH_TESTS_REPO_FIXTURE_H
#define TH_TESTS_REPO_FIXTURE_H

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "harness.h"
#include "util.h"
#include "tablehub/repo.h"

static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Fill buf with len bytes derived from seed: random bytes for even seeds, row-like text (which
 * deflates well, like real chunks) for odd ones. */
static inline void gen_blob(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	size_t i = 0;

	if (seed % 2 == 0) {
		for (; i < len; i++)
			buf[i] = (unsigned char)(rng_next(&s) >> 32);
		return;
	}
	while (i < len) {
		char line[96];
		int n = snprintf(line, sizeof(line), "[%llu,\"user-%llu\",%llu.%02llu,%s]\n",
		                 (unsigned long long)(rng_next(&s) % 1000000),
		                 (unsigned long long)(rng_next(&s) % 5000),
		                 (unsigned long long)(rng_next(&s) % 1000),
		                 (unsigned long long)(rng_next(&s) % 100),
		                 rng_next(&s) % 2 ? "true" : "false");
		size_t k = (size_t)n < len - i ? (size_t)n : len - i;

		memcpy(buf + i, line, k);
		i += k;
	}
}

static inline char *repo_path(const char *dir)
{
	char *p = malloc(strlen(dir) + 32);

	if (p == NULL)
		abort();
	sprintf(p, "%s/alice/db.git", dir);
	return p;
}

/* A fresh repository at <dir>/alice/db.git, opened as writer. */
static inline th_repo *fresh_repo(const char *dir, char **path_out)
{
	th_error err = { 0 };
	th_repo *r = NULL;
	char *path = repo_path(dir);

	CHECK_OK(th_repo_create(path, "alice", &err), &err);
	CHECK_OK(th_repo_open(&r, path, 1, &err), &err);
	if (r == NULL)
		abort();
	*path_out = path;
	return r;
}

static inline int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static inline int pack_dir_files(const char *path)
{
	char *out = NULL;
	int n;

	t_sh(&out, "ls -A '%s/objects/pack'", path);
	n = count_lines(out);
	free(out);
	return n;
}

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A commit on top of `parent` whose tree is `parent`'s with `path` set to a blob of `content`. */

#endif
