/* test_diff.c: th_diff_rows and the streaming diff iterator against a brute-force comparison.
 *
 * Tables are written through the real engine (th_table_apply into a real repository in a temp
 * dir) from an in-memory model; random edits make a second version the way an import would (by
 * applying the edits to the first version's rows tree). For many seeds, the diff must list exactly
 * the rows the two models differ in, in key order, and agree with a full read of both versions;
 * and a small change to a large table must decode only the chunks around it.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util.h"
#include "tablehub/diff.h"
#include "tablehub/merge.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"

static th_repo *repo;
static char *tmp;

/* --- a deterministic generator -------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

/* --- the keyed model: id integer (key), name text, score integer (nullable) ---------------------
 */

#define MAXK 60000

typedef struct mrow {
	int present;
	char name[24];
	int score_null;
	int64_t score;
} mrow;

static const char *KEYED_SCHEMA = "{\"format\":1,\"columns\":["
                                  "{\"name\":\"id\",\"type\":\"integer\",\"nullable\":false},"
                                  "{\"name\":\"name\",\"type\":\"text\",\"nullable\":true},"
                                  "{\"name\":\"score\",\"type\":\"integer\",\"nullable\":true}],"
                                  "\"primaryKey\":[\"id\"]}";

static void random_name(char *out)
{
	static const char *parts[] = { "ann", "bo", "c,d", "\"q\"", "é", "x y", "", "zz\\" };
	snprintf(out, 24, "%s%u", parts[rnd_below(8)], rnd_below(1000));
}

static void random_row(mrow *r)
{
	r->present = 1;
	random_name(r->name);
	r->score_null = rnd_below(10) == 0;
	r->score = (int64_t)rnd_below(200000) - 100000;
}

/* The line and key of model row `id` into line/key (cleared first). */
static void encode_row(th_buf *line, th_buf *key, const th_schema *s, int64_t id, const mrow *r)
{
	char idtxt[32], sc[32];
	th_cell cells[3];
	th_error err;

	snprintf(idtxt, sizeof(idtxt), "%" PRId64, id);
	snprintf(sc, sizeof(sc), "%" PRId64, r->score);
	cells[0] = (th_cell){ idtxt, strlen(idtxt), 0 };
	cells[1] = (th_cell){ r->name, strlen(r->name), 0 };
	cells[2] = r->score_null ? (th_cell){ NULL, 0, 1 } : (th_cell){ sc, strlen(sc), 0 };
	th_buf_clear(line);
	th_buf_clear(key);
	if (th_row_encode(line, s, cells, &err) < 0 || th_row_key(key, s, cells, &err) < 0)
		abort();
}

/* An edit source over the model: the rows whose `dirty` flag is set, in id (= key) order. */
typedef struct model_edits {
	const th_schema *s;
	const mrow *rows;
	const unsigned char *dirty;
	int64_t n, next;
	th_buf line, key;
} model_edits;

static int model_next(void *payload, th_edit *out, th_error *err)
{
	model_edits *m = payload;

	(void)err;
	while (m->next < m->n && !m->dirty[m->next])
		m->next++;
	if (m->next >= m->n)
		return 0;
	encode_row(&m->line, &m->key, m->s, m->next, &m->rows[m->next]);
	out->key = (const unsigned char *)m->key.ptr;
	out->keylen = m->key.size;
	out->line = m->rows[m->next].present ? m->line.ptr : NULL;
	out->linelen = m->rows[m->next].present ? m->line.size : 0;
	out->count = 1;
	m->next++;
	return 1;
}

/* Apply the dirty rows of the model to rows tree `base`, giving *out. */
static void apply_model(th_oid *out, const th_schema *s, const th_oid *base, const mrow *rows,
                        const unsigned char *dirty, int64_t n)
{
	model_edits m = { s, rows, dirty, n, 0, TH_BUF_INIT, TH_BUF_INIT };
	th_error err;

	CHECK_OK(th_table_apply(out, NULL, repo, s, base, model_next, &m, NULL, &err), &err);
	th_buf_dispose(&m.line);
	th_buf_dispose(&m.key);
}

/* --- collecting changes ----------------------------------------------------------------------- */

typedef struct got_change {
	th_change_kind kind;
	char *key, *old_line, *new_line;
	size_t keylen;
	uint64_t count;
} got_change;

typedef struct got_list {
	got_change *v;
	size_t n, cap;
	size_t stop_after; /* 0 = never */
} got_list;

static char *dupn(const void *p, size_t n)
{
	char *s;

	if (p == NULL)
		return NULL;
	if ((s = malloc(n + 1)) == NULL)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static int collect(void *payload, const th_row_change *c)
{
	got_list *l = payload;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		if ((l->v = realloc(l->v, l->cap * sizeof(*l->v))) == NULL)
			abort();
	}
	l->v[l->n].kind = c->kind;
	l->v[l->n].key = dupn(c->key, c->keylen);
	l->v[l->n].keylen = c->keylen;
	l->v[l->n].old_line = dupn(c->old_line, c->old_len);
	l->v[l->n].new_line = dupn(c->new_line, c->new_len);
	l->v[l->n].count = c->count;
	l->n++;
	if (l->stop_after && l->n == l->stop_after)
		return 42;
	return 0;
}

static void got_free(got_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].old_line);
		free(l->v[i].new_line);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int line_is(const char *got, const th_buf *want)
{
	return got && strlen(got) == want->size && memcmp(got, want->ptr, want->size) == 0;
}

/* Compare the diff of two model versions with what th_diff_rows reported; returns mismatches. */
static int check_keyed_diff(const th_schema *s, const mrow *a, const mrow *b, int64_t n,
                            const got_list *got)
{
	th_buf la = TH_BUF_INIT, lb = TH_BUF_INIT, ka = TH_BUF_INIT, kb = TH_BUF_INIT;
	size_t gi = 0;
	int64_t id;
	int bad = 0;

	for (id = 0; id < n && !bad; id++) {
		th_change_kind want;
		const got_change *g;

		if (!a[id].present && !b[id].present)
			continue;
		if (a[id].present)
			encode_row(&la, &ka, s, id, &a[id]);
		if (b[id].present)
			encode_row(&lb, &kb, s, id, &b[id]);
		if (a[id].present && b[id].present) {
			if (la.size == lb.size && memcmp(la.ptr, lb.ptr, la.size) == 0)
				continue;
			want = TH_CHANGE_MODIFIED;
		} else {
			want = a[id].present ? TH_CHANGE_REMOVED : TH_CHANGE_ADDED;
		}
		if (gi >= got->n) {
			fprintf(stderr, "missing change for id %" PRId64 "\n", id);
			bad = 1;
			break;
		}
		g = &got->v[gi++];
		if (g->kind != want || g->count != 1) {
			fprintf(stderr, "id %" PRId64 ": kind %d, want %d\n", id, g->kind, want);
			bad = 1;
		}
		if (want != TH_CHANGE_ADDED && !line_is(g->old_line, &la))
			bad = 1;
		if (want != TH_CHANGE_REMOVED && !line_is(g->new_line, &lb))
			bad = 1;
		if (want == TH_CHANGE_ADDED && g->old_line != NULL)
			bad = 1;
		if (want == TH_CHANGE_REMOVED && g->new_line != NULL)
			bad = 1;
		{
			const th_buf *k = want == TH_CHANGE_ADDED ? &kb : &ka;
			if (g->keylen != k->size || memcmp(g->key, k->ptr, k->size) != 0)
				bad = 1;
		}
		if (bad)
			fprintf(stderr, "mismatch at id %" PRId64 "\n", id);
	}
	if (!bad && gi != got->n) {
		fprintf(stderr, "%zu extra changes reported\n", got->n - gi);
		bad = 1;
	}
	th_buf_dispose(&la);
	th_buf_dispose(&lb);
	th_buf_dispose(&ka);
	th_buf_dispose(&kb);
	return bad;
}

/* Count the rows of a version by a full read (the export path): rows, and check key order. */
static uint64_t full_read_count(const th_schema *s, const th_oid *rows)
{
	th_table t = TH_TABLE_INIT;
	th_row_iter *it = NULL;
	th_row r;
	th_error err;
	uint64_t n = 0;
	int rc;

	t.schema = *s;
	if (rows)
		t.rows = *rows;
	CHECK_OK(th_row_iter_new(&it, repo, &t, &err), &err);
	while ((rc = th_row_iter_next(it, &r, &err)) > 0)
		n++;
	CHECK(rc == 0);
	th_row_iter_free(it);
	return n;
}

static void schema_parse(th_schema *s, const char *json)
{
	th_error err;

	CHECK_OK(th_schema_from_json(s, json, strlen(json), &err), &err);
}

/* --- tests ---------------------------------------------------------------------------------- */

/* Random tables and random edits over many seeds: the diff equals the brute-force comparison. */
static void test_random_keyed(void)
{
	th_schema s = TH_SCHEMA_INIT;
	mrow *a = calloc(MAXK, sizeof(*a)), *b = calloc(MAXK, sizeof(*b));
	unsigned char *dirty = calloc(MAXK, 1), *all = calloc(MAXK, 1);
	int seed;

	schema_parse(&s, KEYED_SCHEMA);
	for (seed = 1; seed <= 40; seed++) {
		int64_t n = 200 + (int64_t)(seed * 997 % 12000), i;
		unsigned nedits, e;
		th_oid ta, tb, tb2;
		got_list got = { NULL, 0, 0, 0 };
		th_error err;
		uint64_t added = 0, removed = 0, modified = 0, ra, rb;
		size_t gi;

		rng_state = 0x9e3779b97f4a7c15ull * (uint64_t)seed;
		memset(a, 0, MAXK * sizeof(*a));
		memset(dirty, 0, MAXK);
		memset(all, 1, MAXK);
		for (i = 0; i < n; i++)
			if (rnd_below(10) < 8)
				random_row(&a[i]);
		apply_model(&ta, &s, NULL, a, all, n);
		memcpy(b, a, MAXK * sizeof(*a));
		/* Few edits on most seeds, many on some: the walk must re-synchronise either way.
		 */
		nedits = seed % 5 == 0 ? (unsigned)n / 3 : 1 + rnd_below(12);
		for (e = 0; e < nedits; e++) {
			int64_t id = (int64_t)rnd_below((unsigned)n + 50);
			unsigned what = rnd_below(4);

			if (what == 0)
				b[id].present = 0;
			else if (what == 1 || !b[id].present)
				random_row(&b[id]);
			else if (rnd_below(2))
				snprintf(b[id].name, sizeof(b[id].name), "edit%u", e);
			else
				b[id].score_null = !b[id].score_null;
			dirty[id] = 1;
		}
		apply_model(&tb, &s, &ta, b, dirty, n + 50);
		CHECK_OK(th_diff_rows(repo, &s, &ta, &tb, collect, &got, &err), &err);
		if (check_keyed_diff(&s, a, b, n + 50, &got)) {
			fprintf(stderr, "seed %d: diff differs from the brute-force comparison\n",
			        seed);
			CHECK(0);
		}
		/* Counts against full reads of both versions. */
		for (gi = 0; gi < got.n; gi++) {
			added += got.v[gi].kind == TH_CHANGE_ADDED;
			removed += got.v[gi].kind == TH_CHANGE_REMOVED;
			modified += got.v[gi].kind == TH_CHANGE_MODIFIED;
		}
		ra = full_read_count(&s, &ta);
		rb = full_read_count(&s, &tb);
		CHECK(ra + added - removed == rb);
		(void)modified;
		got_free(&got);

		/* The same version built from scratch: no diff, even where its chunking differs. */
		apply_model(&tb2, &s, NULL, b, all, n + 50);
		CHECK_OK(th_diff_rows(repo, &s, &tb, &tb2, collect, &got, &err), &err);
		CHECK(got.n == 0);
		got_free(&got);

		/* And the reverse direction swaps added and removed. */
		CHECK_OK(th_diff_rows(repo, &s, &tb, &ta, collect, &got, &err), &err);
		if (check_keyed_diff(&s, b, a, n + 50, &got)) {
			fprintf(stderr, "seed %d: reverse diff differs\n", seed);
			CHECK(0);
		}
		got_free(&got);
	}
	th_schema_dispose(&s);
	free(a);
	free(b);
	free(dirty);
	free(all);
}

/* Empty sides, equal trees and a callback that stops the walk. */
static void test_edges(void)
{
	th_schema s = TH_SCHEMA_INIT;
	mrow *a = calloc(100, sizeof(*a));
	unsigned char all[100];
	th_oid ta, zero;
	got_list got = { NULL, 0, 0, 0 };
	th_error err;
	int i, rc;

	schema_parse(&s, KEYED_SCHEMA);
	rng_state = 7;
	memset(all, 1, sizeof(all));
	memset(&zero, 0, sizeof(zero));
	for (i = 0; i < 100; i++)
		random_row(&a[i]);
	apply_model(&ta, &s, NULL, a, all, 100);

	CHECK_OK(th_diff_rows(repo, &s, NULL, &ta, collect, &got, &err), &err);
	CHECK(got.n == 100);
	for (i = 0; i < (int)got.n; i++)
		CHECK(got.v[i].kind == TH_CHANGE_ADDED && got.v[i].old_line == NULL);
	got_free(&got);

	CHECK_OK(th_diff_rows(repo, &s, &ta, &zero, collect, &got, &err), &err);
	CHECK(got.n == 100);
	for (i = 0; i < (int)got.n; i++)
		CHECK(got.v[i].kind == TH_CHANGE_REMOVED && got.v[i].new_line == NULL);
	got_free(&got);

	CHECK_OK(th_diff_rows(repo, &s, &ta, &ta, collect, &got, &err), &err);
	CHECK(got.n == 0);
	CHECK_OK(th_diff_rows(repo, &s, NULL, NULL, collect, &got, &err), &err);
	CHECK(got.n == 0);

	got.stop_after = 3;
	rc = th_diff_rows(repo, &s, &zero, &ta, collect, &got, &err);
	CHECK(rc == 42);
	CHECK(got.n == 3);
	got_free(&got);
	th_schema_dispose(&s);
	free(a);
}

/* One changed row in a table of 60,000: only the chunks around it are decoded. */
static void test_cost_follows_change(void)
{
	const int64_t n = 60000;
	th_schema s = TH_SCHEMA_INIT;
	mrow *a = calloc((size_t)n, sizeof(*a));
	unsigned char *all = malloc((size_t)n), *dirty = calloc((size_t)n, 1);
	th_chunk_ref *chunks = NULL;
	size_t nchunks = 0;
	th_oid ta, tb;
	th_diff_iter *it = NULL;
	th_diff_change ch;
	th_error err;
	uint64_t read = 0, skipped = 0;
	int64_t i;
	int rc, changes = 0;

	schema_parse(&s, KEYED_SCHEMA);
	rng_state = 99;
	memset(all, 1, (size_t)n);
	for (i = 0; i < n; i++)
		random_row(&a[i]);
	apply_model(&ta, &s, NULL, a, all, n);
	CHECK_OK(th_table_chunks(&chunks, &nchunks, repo, &ta, &err), &err);
	CHECK(nchunks >= 10);
	free(chunks);

	snprintf(a[31337].name, sizeof(a[31337].name), "changed");
	dirty[31337] = 1;
	apply_model(&tb, &s, &ta, a, dirty, n);

	CHECK_OK(th_diff_iter_new(&it, repo, &s, &ta, &s, &tb, &err), &err);
	while ((rc = th_diff_iter_next(it, &ch, &err)) > 0) {
		changes++;
		CHECK(ch.c.kind == TH_CHANGE_MODIFIED);
		CHECK(ch.c.new_line && strstr(ch.c.new_line, "\"changed\"") != NULL);
	}
	CHECK(rc == 0);
	CHECK(changes == 1);
	th_diff_iter_stats(it, &read, &skipped);
	CHECK(read <= 4);
	CHECK(skipped + read >= 2 * nchunks - 4);
	if (read > 4)
		fprintf(stderr, "read %" PRIu64 " chunks of %zu\n", read, nchunks);
	th_diff_iter_free(it);

	/* Schemas that differ only in nullability still skip equal chunks; a renamed column does
	 * not, and every row is handed over (equal lines then may mean different rows). */
	{
		th_schema s2 = TH_SCHEMA_INIT;
		CHECK_OK(th_schema_copy(&s2, &s, &err), &err);
		s2.cols[1].nullable = !s2.cols[1].nullable;
		CHECK_OK(th_diff_iter_new(&it, repo, &s, &ta, &s2, &tb, &err), &err);
		changes = 0;
		while ((rc = th_diff_iter_next(it, &ch, &err)) > 0)
			changes++;
		th_diff_iter_stats(it, &read, &skipped);
		CHECK(rc == 0 && changes == 1 && read <= 4);
		th_diff_iter_free(it);
		free(s2.cols[2].name);
		s2.cols[2].name = strdup("renamed");
		CHECK_OK(th_diff_iter_new(&it, repo, &s, &ta, &s2, &tb, &err), &err);
		changes = 0;
		while ((rc = th_diff_iter_next(it, &ch, &err)) > 0)
			changes++;
		th_diff_iter_stats(it, &read, &skipped);
		CHECK(rc == 0 && changes == n && skipped == 0 && read >= 2 * nchunks - 2);
		th_diff_iter_free(it);
		th_schema_dispose(&s2);
	}
	th_schema_dispose(&s);
	free(a);
	free(all);
	free(dirty);
}

/* --- keyless tables: rows are multisets ------------------------------------------------------ */

#define KL_X 40
#define KL_Y 3
static const char *kl_y[KL_Y] = { "a", "b", "b b" }; /* in key order */

static const char *KEYLESS_SCHEMA = "{\"format\":1,\"columns\":["
                                    "{\"name\":\"x\",\"type\":\"integer\",\"nullable\":true},"
                                    "{\"name\":\"y\",\"type\":\"text\",\"nullable\":true}],"
                                    "\"primaryKey\":[]}";

static void kl_encode(th_buf *line, th_buf *key, const th_schema *s, int x, int y)
{
	char xt[16];
	th_cell cells[2];
	th_error err;

	snprintf(xt, sizeof(xt), "%d", x);
	cells[0] = (th_cell){ xt, strlen(xt), 0 };
	cells[1] = (th_cell){ kl_y[y], strlen(kl_y[y]), 0 };
	th_buf_clear(line);
	th_buf_clear(key);
	if (th_row_encode(line, s, cells, &err) < 0 || th_row_key(key, s, cells, &err) < 0)
		abort();
}

typedef struct kl_edits {
	const th_schema *s;
	const unsigned *count;
	const unsigned char *dirty;
	int next;
	th_buf line, key;
} kl_edits;

static int kl_next(void *payload, th_edit *out, th_error *err)
{
	kl_edits *m = payload;

	(void)err;
	while (m->next < KL_X * KL_Y && !m->dirty[m->next])
		m->next++;
	if (m->next >= KL_X * KL_Y)
		return 0;
	kl_encode(&m->line, &m->key, m->s, m->next / KL_Y, m->next % KL_Y);
	out->key = (const unsigned char *)m->key.ptr;
	out->keylen = m->key.size;
	out->count = m->count[m->next];
	out->line = out->count ? m->line.ptr : NULL;
	out->linelen = out->count ? m->line.size : 0;
	m->next++;
	return 1;
}

static void test_keyless(void)
{
	th_schema s = TH_SCHEMA_INIT;
	th_buf line = TH_BUF_INIT, key = TH_BUF_INIT;
	int seed;

	schema_parse(&s, KEYLESS_SCHEMA);
	for (seed = 1; seed <= 20; seed++) {
		unsigned ca[KL_X * KL_Y], cb[KL_X * KL_Y];
		unsigned char all[KL_X * KL_Y], dirty[KL_X * KL_Y];
		kl_edits ea = { &s, ca, all, 0, TH_BUF_INIT, TH_BUF_INIT };
		kl_edits eb = { &s, cb, dirty, 0, TH_BUF_INIT, TH_BUF_INIT };
		got_list got = { NULL, 0, 0, 0 };
		th_oid ta, tb;
		th_error err;
		size_t gi = 0;
		int v, bad = 0;

		rng_state = 1234567ull * (uint64_t)seed;
		memset(all, 1, sizeof(all));
		memset(dirty, 0, sizeof(dirty));
		for (v = 0; v < KL_X * KL_Y; v++)
			ca[v] = rnd_below(4) ? rnd_below(40)
			                     : 0; /* many copies: chunks hold runs */
		memcpy(cb, ca, sizeof(ca));
		for (v = 0; v < 1 + seed % 7; v++) {
			int at = (int)rnd_below(KL_X * KL_Y);
			cb[at] = rnd_below(3) ? rnd_below(50) : 0;
			dirty[at] = 1;
		}
		CHECK_OK(th_table_apply(&ta, NULL, repo, &s, NULL, kl_next, &ea, NULL, &err), &err);
		CHECK_OK(th_table_apply(&tb, NULL, repo, &s, &ta, kl_next, &eb, NULL, &err), &err);
		CHECK_OK(th_diff_rows(repo, &s, &ta, &tb, collect, &got, &err), &err);
		for (v = 0; v < KL_X * KL_Y && !bad; v++) {
			const got_change *g;

			if (ca[v] == cb[v])
				continue;
			if (gi >= got.n) {
				bad = 1;
				break;
			}
			g = &got.v[gi++];
			kl_encode(&line, &key, &s, v / KL_Y, v % KL_Y);
			if (g->kind != (cb[v] > ca[v] ? TH_CHANGE_ADDED : TH_CHANGE_REMOVED) ||
			    g->count != (cb[v] > ca[v] ? cb[v] - ca[v] : ca[v] - cb[v]) ||
			    !line_is(cb[v] > ca[v] ? g->new_line : g->old_line, &line) ||
			    g->keylen != key.size || memcmp(g->key, key.ptr, key.size) != 0)
				bad = 1;
		}
		if (bad || gi != got.n) {
			fprintf(stderr,
			        "keyless seed %d: diff differs from the multiset comparison\n",
			        seed);
			CHECK(0);
		}
		got_free(&got);
		th_buf_dispose(&ea.line);
		th_buf_dispose(&ea.key);
		th_buf_dispose(&eb.line);
		th_buf_dispose(&eb.key);
	}
	th_buf_dispose(&line);
	th_buf_dispose(&key);
	th_schema_dispose(&s);
}

/* Schemas: equality and key compatibility. */
static void test_schema_compare(void)
{
	th_schema a = TH_SCHEMA_INIT, b = TH_SCHEMA_INIT, c = TH_SCHEMA_INIT;

	schema_parse(&a, KEYED_SCHEMA);
	schema_parse(&b, KEYED_SCHEMA);
	schema_parse(&c, KEYLESS_SCHEMA);
	CHECK(th_schema_equal(&a, &b));
	CHECK(th_schema_same_key(&a, &b));
	CHECK(!th_schema_equal(&a, &c));
	CHECK(!th_schema_same_key(&a, &c));
	b.cols[1].nullable = 0;
	CHECK(!th_schema_equal(&a, &b));
	CHECK(th_schema_same_key(&a, &b));
	b.cols[0].type = TH_TYPE_TEXT;
	CHECK(!th_schema_same_key(&a, &b));
	th_schema_dispose(&a);
	th_schema_dispose(&b);
	th_schema_dispose(&c);
}

int main(void)
{
	th_error err;
	char path[4096];

	tmp = t_mkdtemp();
	snprintf(path, sizeof(path), "%s/db.git", tmp);
	if (th_repo_global_init(&err) < 0 || th_repo_create(path, "test", &err) < 0 ||
	    th_repo_open(&repo, path, 1, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return 1;
	}
	RUN(test_schema_compare);
	RUN(test_edges);
	RUN(test_random_keyed);
	RUN(test_keyless);
	RUN(test_cost_follows_change);
	th_repo_free(repo);
	th_repo_global_shutdown();
	t_rmdir(tmp);
	TH_TEST_END();
}
