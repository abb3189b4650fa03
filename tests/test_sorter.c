/* test_sorter.c: the external sorter (src/sorter.c): records read back in key order (bytes, a
 * prefix first) and, within a key, in seq order, whether they stayed in memory or went through
 * many run files; the merge's fan-in bounded however many runs there are; nothing left in the
 * temporary directory; records larger than a block; the empty sorter; a run that cannot be
 * written. Checked against qsort of the same records. */
#include <dirent.h>
#include <stdint.h>

#include "harness.h"
#include "util.h"
#include "tablehub/sorter.h"

typedef struct ref {
	unsigned char key[24];
	size_t keylen;
	uint64_t seq;
	uint64_t value; /* the data: 8 bytes derived from the seq */
} ref;

static int ref_cmp(const void *pa, const void *pb)
{
	const ref *a = pa, *b = pb;
	size_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
	int c = memcmp(a->key, b->key, n);

	if (c)
		return c;
	if (a->keylen != b->keylen)
		return a->keylen < b->keylen ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Entries in dir other than . and .. */
static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		abort();
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* Put `n` records with short random keys (many repeated, some prefixes of others) in an order
 * unrelated to their seq, with `budget`, and check what comes back against qsort. What the sorter
 * did goes to *stats (may be NULL). */
static void sort_and_check_stats(size_t n, size_t budget, th_sorter_stats *stats)
{
	char *dir = t_mkdtemp();
	ref *refs = calloc(n, sizeof(*refs));
	th_sorter *s = NULL;
	th_sorter_rec r;
	th_error err;
	size_t i, got = 0, bad = 0;

	if (refs == NULL)
		abort();
	for (i = 0; i < n; i++) {
		size_t k;
		refs[i].keylen = next_rand() % 4; /* 0-3 bytes of 4 letters: many equal keys */
		for (k = 0; k < refs[i].keylen; k++)
			refs[i].key[k] = (unsigned char)('a' + next_rand() % 4);
		if (i % 7 == 0) { /* some long keys sharing their first 8 bytes */
			memcpy(refs[i].key, "prefix-8", 8);
			refs[i].keylen = 8 + next_rand() % 12;
			for (k = 8; k < refs[i].keylen; k++)
				refs[i].key[k] = (unsigned char)(next_rand() % 3);
		}
		refs[i].seq = (i * 7919) % n; /* each seq once, not in put order */
		refs[i].value = refs[i].seq * 2654435761u;
	}
	th_error_clear(&err);
	CHECK_OK(th_sorter_new(&s, dir, budget, &err), &err);
	for (i = 0; i < n; i++)
		CHECK_OK(th_sorter_put(s, refs[i].key, refs[i].keylen, &refs[i].value,
		                       sizeof(refs[i].value), refs[i].seq, &err),
		         &err);
	CHECK(entries(dir) == 0); /* run files are unlinked as they are made */
	CHECK_OK(th_sorter_finish(s, &err), &err);
	qsort(refs, n, sizeof(*refs), ref_cmp);
	while (th_sorter_peek(&r, s)) {
		uint64_t v;
		if (got >= n)
			break;
		memcpy(&v, r.data, sizeof(v));
		if (r.keylen != refs[got].keylen ||
		    (r.keylen && memcmp(r.key, refs[got].key, r.keylen) != 0) ||
		    r.seq != refs[got].seq || r.datalen != sizeof(v) || v != refs[got].value)
			bad++;
		got++;
		CHECK_OK(th_sorter_pop(s, &err), &err);
	}
	CHECK(got == n);
	CHECK(bad == 0);
	CHECK(th_sorter_peek(&r, s) == 0);
	CHECK_OK(th_sorter_pop(s, &err), &err); /* past the end: nothing to do */
	if (stats)
		th_sorter_get_stats(stats, s);
	th_sorter_free(s);
	CHECK(entries(dir) == 0);
	free(refs);
	t_rmdir(dir); /* (and frees it) */
}

static void sort_and_check(size_t n, size_t budget)
{
	sort_and_check_stats(n, budget, NULL);
}

static void test_in_memory(void)
{
	sort_and_check(10000, 0); /* the default budget: one run, in memory */
}

static void test_many_runs(void)
{
	sort_and_check(100000, 64 << 10); /* ~60 runs on disk and one in memory */
	sort_and_check(200, 1);           /* a budget below one record: one record per run */
}

/* Thousands of runs (one record each): merged TH_SORTER_FANIN at a time, in passes, so at no
 * moment are more than a few levels' worth of run files open, and no merge reads more than
 * TH_SORTER_FANIN runs; the result is still exact. */
static void test_bounded_fanin(void)
{
	th_sorter_stats st;

	memset(&st, 0, sizeof(st));
	sort_and_check_stats(5000, 1, &st); /* 5,000 runs: three levels of merges */
	printf("5000 runs: %llu run files written, %llu merges, at most %zu read at once and %zu "
	       "open\n",
	       (unsigned long long)st.runs, (unsigned long long)st.merges, st.max_fanin,
	       st.max_open);
	CHECK(st.runs >= 5000);
	CHECK(st.merges >= 5000 / TH_SORTER_FANIN);
	CHECK(st.max_fanin <= TH_SORTER_FANIN);
	/* At most FANIN - 1 runs wait at each of the log16(5000) < 4 levels, plus a merge's
	 * output. */
	CHECK(st.max_open <= 4 * (TH_SORTER_FANIN - 1) + 1);

	memset(&st, 0, sizeof(st));
	sort_and_check_stats(10000, 0, &st); /* in memory: no run file at all */
	CHECK(st.runs == 0 && st.merges == 0 && st.max_open == 0 && st.max_fanin == 1);
}

static void test_empty(void)
{
	th_sorter *s = NULL;
	th_sorter_rec r;
	th_error err;

	CHECK_OK(th_sorter_new(&s, NULL, 0, &err), &err);
	CHECK_OK(th_sorter_finish(s, &err), &err);
	CHECK(th_sorter_peek(&r, s) == 0);
	th_sorter_free(s);
	th_sorter_free(NULL);
}

/* Records larger than an arena block (the budget / 8) and than the budget itself. */
static void test_large_records(void)
{
	char *dir = t_mkdtemp();
	size_t sizes[] = { 100, 300000, 5, 70000, 1 << 20 };
	th_sorter *s = NULL;
	th_sorter_rec r;
	th_error err;
	char *data;
	size_t i;

	if ((data = malloc(1 << 20)) == NULL)
		abort();
	CHECK_OK(th_sorter_new(&s, dir, 256 << 10, &err), &err);
	for (i = 0; i < 5; i++) {
		unsigned char key = (unsigned char)(10 - i); /* put in descending key order */
		memset(data, 'a' + (int)i, sizes[i]);
		CHECK_OK(th_sorter_put(s, &key, 1, data, sizes[i], i, &err), &err);
	}
	CHECK_OK(th_sorter_finish(s, &err), &err);
	for (i = 5; i-- > 0;) {
		CHECK(th_sorter_peek(&r, s) == 1);
		CHECK(r.keylen == 1 && r.key[0] == 10 - i && r.seq == i);
		CHECK(r.datalen == sizes[i]);
		CHECK(((const char *)r.data)[0] == 'a' + (int)i);
		CHECK(((const char *)r.data)[sizes[i] - 1] == 'a' + (int)i);
		CHECK_OK(th_sorter_pop(s, &err), &err);
	}
	CHECK(th_sorter_peek(&r, s) == 0);
	th_sorter_free(s);
	free(data);
	t_rmdir(dir); /* (and frees it) */
}

/* A run that cannot be written fails the put with TH_ESTORE, and the message does not name the
 * directory (it may reach a client). */
static void test_no_tmpdir(void)
{
	th_sorter *s = NULL;
	th_error err;
	size_t i;
	int rc = TH_OK;

	CHECK_OK(th_sorter_new(&s, "/nonexistent/th-sorter-dir", 4096, &err), &err);
	for (i = 0; i < 1000 && rc == TH_OK; i++)
		rc = th_sorter_put(s, "key", 3, "some data for the record", 24, i, &err);
	CHECK(rc == TH_ESTORE);
	CHECK_CONTAINS(err.msg, "cannot create a temporary file");
	CHECK(strstr(err.msg, "nonexistent") == NULL);
	th_sorter_free(s);
}

int main(void)
{
	RUN(test_in_memory);
	RUN(test_many_runs);
	RUN(test_bounded_fanin);
	RUN(test_empty);
	RUN(test_large_records);
	RUN(test_no_tmpdir);
	TH_TEST_END();
}
