/* test_chunkbody.c: the two chunk body formats (util/chunkbody.c) and tables that mix them.
 *
 * The column format's exact bytes for a small chunk (it is a storage format), its edge cases
 * (int64 limits, deltas that wrap, nulls in each mode, escapes, empty strings), random round trips,
 * lines kept as they are when they do not have the row encoder's shape, and malformed bodies
 * refused. Then a table whose chunks are all in the older format (one row line after another, as
 * repositories written before hold them) is read, diffed, edited and merged beside the same rows
 * in the column format, and every result must be what the rows say, whatever format holds them.
 * Also th_row_decode_key, which reading a chunk uses to find the rows' keys.
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

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Encode `lines`, check the body against `want` (NULL: don't) and that it decodes back. */
static void round_trip(const char *lines, const char *want)
{
	size_t len = strlen(lines);
	th_buf body = TH_BUF_INIT, back = TH_BUF_INIT;
	th_error err;

	CHECK_OK(th_chunk_body_encode(&body, lines, len, &err), &err);
	if (want)
		CHECK_STR(body.ptr, want);
	if (body.size > 0 && body.ptr[0] == TH_CHUNK_BODY_COLUMNS) {
		CHECK_OK(th_chunk_body_decode(&back, body.ptr, body.size, &err), &err);
	} else {
		CHECK_OK(th_buf_put(&back, body.ptr, body.size, &err), &err);
	}
	CHECK(back.size == len && memcmp(back.ptr, lines, len) == 0);
	if (back.size != len || memcmp(back.ptr, lines, len) != 0)
		fprintf(stderr, "round trip of:\n%.*s\ngave:\n%s\n", (int)len, lines, back.ptr);
	th_buf_dispose(&body);
	th_buf_dispose(&back);
}

static void test_exact_bytes(void)
{
	/* Integers as deltas, strings without quotes (null a lone backslash), the rest as is. */
	round_trip("[1,\"a\",null,true]\n[3,null,2.5,false]\n[-2,\"x\\\"y\",null,null]\n",
	           "#2 3 isjj\n1\n2\n-5\na\n\\\nx\\\"y\nnull\n2.5\nnull\ntrue\nfalse\nnull\n");
	/* A column of nulls only, empty strings, and an escaped backslash at a string's end. */
	round_trip("[null,\"\",\"\\\\\"]\n[null,\"\",\"b\"]\n", "#2 2 iss\n\n\n\n\n\\\\\nb\n");
	/* Not canonical integers are kept as JSON text. */
	round_trip("[-0,007,1]\n[0,7,1]\n", "#2 2 jji\n-0\n0\n007\n7\n1\n0\n");
}

static void test_int_limits(void)
{
	const char *lines = "[9223372036854775807]\n[-9223372036854775808]\n[0]\n"
	                    "[9223372036854775807]\n[-1]\n[null]\n[5]\n";

	round_trip(lines,
	           "#2 7 i\n9223372036854775807\n1\n-9223372036854775808\n9223372036854775807\n"
	           "-9223372036854775808\n\n6\n");
	/* Past int64, or too many digits: kept as JSON text. */
	lines = "[9223372036854775808]\n[1]\n";
	round_trip(lines, "#2 2 j\n9223372036854775808\n1\n");
	lines = "[-9223372036854775809]\n[1]\n";
	round_trip(lines, "#2 2 j\n-9223372036854775809\n1\n");
}

static void test_kept_as_lines(void)
{
	static const char *const cases[] = {
		"[1,2]\n[3]\n", /* a different number of cells */
		"[1,\"a\" ]\n", /* whitespace */
		"[1,2]",        /* no final newline */
		"[]\n",         /* no cells */
		"[1,]\n",       /* an empty cell */
		"[\"a]\n",      /* a string that does not end */
		"[\"a\"b]\n",   /* text after a string */
		"{1}\n",        /* not an array */
		"[1]\n\n",      /* an empty line */
		"[1]\n[1\"]\n", /* a quote in a number */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		round_trip(cases[i], cases[i]);
}

static void test_malformed(void)
{
	static const char *const cases[] = {
		"#2",
		"#2 0 i\n",                       /* no rows */
		"#2 2 i\n1\n",                    /* too few lines */
		"#2 1 i\n1\n2\n",                 /* too many */
		"#2 1 x\n1\n",                    /* an unknown mode */
		"#2 1 \n1\n",                     /* no columns */
		"#2 1 i\n1a\n",                   /* not a delta */
		"#2 1 i\n12345678901234567890\n", /* 20 digits */
		"#2 1 i\n-\n",
		"#2 1 s\n1",   /* no final newline */
		"#3 1 j\n1\n", /* another version */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		th_buf out = TH_BUF_INIT;
		th_error err;

		memset(&err, 0, sizeof(err));
		CHECK(th_chunk_body_decode(&out, cases[i], strlen(cases[i]), &err) == TH_EINVALID);
		CHECK_CONTAINS(err.msg, "malformed chunk");
		th_buf_dispose(&out);
	}
}

/* A random cell of kind k: 0 canonical ints, 1 strings, 2 reals and booleans, 3 any of these. */
static void random_cell(th_buf *b, unsigned k)
{
	/* Escapes around quotes: a backslash, a quote, both, two backslashes at the end. */
	static const char *const strs[] = { "\"\"",         "\"a\"",      "\"\\\\\"",
		                            "\"\\\"\"",     "\"x y, z\"", "\"\\u00e9\\n\"",
		                            "\"null\"",     "\"12\"",     "\"\\\\\\\"x\"",
		                            "\"a\\\\\\\\\"" };
	static const char *const other[] = { "1.5", "-0.25", "true", "false", "1e10", "-0", "01" };
	static const int64_t ints[] = { 0, 1, -1, 42, INT64_MAX, INT64_MIN, 1000000007, -99 };
	th_error err;

	if (rnd() % 6 == 0) {
		CHECK_OK(th_buf_puts(b, "null", &err), &err);
		return;
	}
	if (k == 3)
		k = (unsigned)(rnd() % 3);
	if (k == 0)
		CHECK_OK(
		        th_buf_printf(b, &err, "%" PRId64,
		                      rnd() % 2 ? ints[rnd() % 8] : (int64_t)(rnd() % 2000) - 1000),
		        &err);
	else if (k == 1)
		CHECK_OK(th_buf_puts(b, strs[rnd() % (sizeof(strs) / sizeof(strs[0]))], &err),
		         &err);
	else
		CHECK_OK(th_buf_puts(b, other[rnd() % 7], &err), &err);
}

static void test_random_round_trips(void)
{
	int iter;

	for (iter = 0; iter < 3000; iter++) {
		size_t ncols = 1 + rnd() % 6, nrows = 1 + rnd() % 40, r, c;
		unsigned kinds[6];
		th_buf lines = TH_BUF_INIT;
		th_error err;

		for (c = 0; c < ncols; c++)
			kinds[c] = (unsigned)(rnd() % 4);
		for (r = 0; r < nrows; r++) {
			for (c = 0; c < ncols; c++) {
				CHECK_OK(th_buf_putc(&lines, c ? ',' : '[', &err), &err);
				random_cell(&lines, kinds[c]);
			}
			CHECK_OK(th_buf_puts(&lines, "]\n", &err), &err);
		}
		round_trip(lines.ptr, NULL);
		th_buf_dispose(&lines);
	}
}

/* th_row_decode_key decodes as far as the key reaches and no further. */
static void test_decode_key(void)
{
	static const char *json = "{\"format\":1,\"columns\":["
	                          "{\"name\":\"a\",\"type\":\"text\",\"nullable\":true},"
	                          "{\"name\":\"id\",\"type\":\"integer\",\"nullable\":false},"
	                          "{\"name\":\"c\",\"type\":\"text\",\"nullable\":true}],"
	                          "\"primaryKey\":[\"id\"]}";
	th_schema s = TH_SCHEMA_INIT;
	th_cells c = TH_CELLS_INIT;
	th_error err;

	CHECK_OK(th_schema_from_json(&s, json, strlen(json), &err), &err);
	CHECK_OK(th_row_decode_key(&c, &s, "[\"x\",42,\"z\"]", 12, &err), &err);
	CHECK(c.n == 2 && c.c[1].len == 2 && memcmp(c.c[1].s, "42", 2) == 0);
	/* What lies past the key is not read: the whole decode refuses this line. */
	CHECK_OK(th_row_decode_key(&c, &s, "[null,7,oops", 12, &err), &err);
	CHECK(c.n == 2 && c.c[0].is_null && strcmp(c.c[1].s, "7") == 0);
	CHECK(th_row_decode(&c, &s, "[null,7,oops", 12, &err) == TH_EINVALID);
	CHECK(th_row_decode_key(&c, &s, "[\"x\"]", 5, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "fewer cells");
	/* Keyless: every cell, checked. */
	s.npk = 0;
	CHECK(th_row_decode_key(&c, &s, "[\"x\",1]", 7, &err) == TH_EINVALID);
	CHECK_OK(th_row_decode_key(&c, &s, "[\"x\",1,\"y\"]", 11, &err), &err);
	CHECK(c.n == 3);
	th_cells_dispose(&c);
	th_schema_dispose(&s);
}

/* --- tables mixing the two formats ----------------------------------------------------------- */

#define NROWS 40000

static const char *SCHEMA = "{\"format\":1,\"columns\":["
                            "{\"name\":\"id\",\"type\":\"integer\",\"nullable\":false},"
                            "{\"name\":\"name\",\"type\":\"text\",\"nullable\":true},"
                            "{\"name\":\"score\",\"type\":\"integer\",\"nullable\":true}],"
                            "\"primaryKey\":[\"id\"]}";

typedef struct mrow {
	int present;
	char name[24];
	int64_t score; /* INT64_MIN: NULL */
} mrow;

typedef struct edits {
	const th_schema *s;
	const mrow *rows;
	const unsigned char *dirty; /* NULL: every row */
	int64_t next;
	th_buf line, key;
} edits;

static int edits_next(void *payload, th_edit *out, th_error *err)
{
	edits *m = payload;
	char idtxt[32], sc[32];
	th_cell cells[3];
	const mrow *r;
	int error;

	while (m->next < NROWS && m->dirty && !m->dirty[m->next])
		m->next++;
	while (m->next < NROWS && !m->dirty && !m->rows[m->next].present)
		m->next++;
	if (m->next >= NROWS)
		return 0;
	r = &m->rows[m->next];
	snprintf(idtxt, sizeof(idtxt), "%" PRId64, m->next);
	snprintf(sc, sizeof(sc), "%" PRId64, r->score);
	cells[0] = (th_cell){ idtxt, strlen(idtxt), 0 };
	cells[1] = (th_cell){ r->name, strlen(r->name), 0 };
	cells[2] = r->score == INT64_MIN ? (th_cell){ NULL, 0, 1 } : (th_cell){ sc, strlen(sc), 0 };
	th_buf_clear(&m->line);
	th_buf_clear(&m->key);
	if ((error = th_row_key(&m->key, m->s, cells, err)) < 0 ||
	    (error = th_row_encode(&m->line, m->s, cells, err)) < 0)
		return error;
	out->key = (const unsigned char *)m->key.ptr;
	out->keylen = m->key.size;
	out->line = r->present ? m->line.ptr : NULL;
	out->linelen = r->present ? m->line.size : 0;
	out->count = 1;
	m->next++;
	return 1;
}

/* Rows tree `base` with the model's dirty rows (all rows when dirty is NULL) applied. */
static th_oid apply(const th_schema *s, const th_oid *base, const mrow *rows,
                    const unsigned char *dirty)
{
	edits m = { s, rows, dirty, 0, TH_BUF_INIT, TH_BUF_INIT };
	th_oid out;
	th_error err;

	CHECK_OK(th_table_apply(&out, NULL, repo, s, base, edits_next, &m, NULL, &err), &err);
	th_buf_dispose(&m.line);
	th_buf_dispose(&m.key);
	return out;
}

/* The same rows tree with every chunk rewritten in the older format: its lines as they are. */
static th_oid old_format(const th_schema *s, const th_oid *rows)
{
	th_chunk_ref *chunks = NULL;
	th_tree_entry *e;
	size_t n = 0, i;
	th_oid out;
	th_error err;

	CHECK_OK(th_table_chunks(&chunks, &n, repo, rows, &err), &err);
	CHECK(n > 4 && n <= 256); /* one tree level */
	e = calloc(n, sizeof(*e));
	for (i = 0; i < n; i++) {
		th_chunk_rows cr = { 0, NULL, TH_BUF_INIT, TH_BUF_INIT };

		CHECK_OK(th_chunk_rows_read(&cr, repo, s, &chunks[i].oid, &err), &err);
		CHECK(cr.data.size > 0 && cr.data.ptr[0] == '[');
		CHECK_OK(th_repo_blob_write(&e[i].oid, repo, cr.data.ptr, cr.data.size, &err),
		         &err);
		e[i].name = chunks[i].name;
		th_chunk_rows_dispose(&cr);
	}
	CHECK_OK(th_repo_tree_write(&out, repo, e, n, &err), &err);
	free(e);
	free(chunks);
	return out;
}

/* How many chunks of `rows` are held in each format. */
static void count_formats(size_t *lines, size_t *columns, const th_oid *rows)
{
	th_chunk_ref *chunks = NULL;
	size_t n = 0, i;
	th_error err;

	*lines = *columns = 0;
	CHECK_OK(th_table_chunks(&chunks, &n, repo, rows, &err), &err);
	for (i = 0; i < n; i++) {
		th_buf b = TH_BUF_INIT;

		CHECK_OK(th_repo_blob_read(&b, repo, &chunks[i].oid, &err), &err);
		*lines += b.size > 0 && b.ptr[0] == '[';
		*columns += b.size > 0 && b.ptr[0] == TH_CHUNK_BODY_COLUMNS;
		th_buf_dispose(&b);
	}
	free(chunks);
}

static int count_cb(void *payload, const th_row_change *c)
{
	(void)c;
	++*(size_t *)payload;
	return 0;
}

static size_t ndiff(const th_schema *s, const th_oid *a, const th_oid *b)
{
	size_t n = 0;
	th_error err;

	CHECK_OK(th_diff_rows(repo, s, a, b, count_cb, &n, &err), &err);
	return n;
}

/* A commit tree holding table t with `rows`. */
static th_oid commit_tree(const th_schema *s, const th_oid *rows)
{
	th_oid root;
	th_error err;

	CHECK_OK(th_table_store(&root, repo, NULL, "t", s, rows, 0, &err), &err);
	return root;
}

static void edit_some(mrow *rows, unsigned char *dirty, int64_t from, int64_t to, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		int64_t id = from + (int64_t)(rnd() % (uint64_t)(to - from));

		dirty[id] = 1;
		if (rnd() % 4 == 0) {
			rows[id].present = !rows[id].present;
		} else {
			rows[id].present = 1;
			snprintf(rows[id].name, sizeof(rows[id].name), "edit %u", i);
		}
	}
}

static void test_mixed_formats(void)
{
	th_schema s = TH_SCHEMA_INIT;
	mrow *base = calloc(NROWS, sizeof(*base)), *ours = calloc(NROWS, sizeof(*ours));
	mrow *theirs = calloc(NROWS, sizeof(*theirs)), *both = calloc(NROWS, sizeof(*both));
	unsigned char *dirty_o = calloc(NROWS, 1), *dirty_t = calloc(NROWS, 1);
	th_oid r2, r1, o1, t2, merged, want, base_root, ours_root, theirs_root;
	th_table mt = TH_TABLE_INIT;
	size_t nl, nc, i;
	th_error err;

	CHECK_OK(th_schema_from_json(&s, SCHEMA, strlen(SCHEMA), &err), &err);
	for (i = 0; i < NROWS; i++) {
		base[i].present = rnd() % 8 != 0;
		snprintf(base[i].name, sizeof(base[i].name), "name \"%u\"",
		         (unsigned)(rnd() % 1000));
		base[i].score = rnd() % 5 == 0 ? INT64_MIN : (int64_t)(rnd() % 100000) - 50000;
	}
	r2 = apply(&s, NULL, base, NULL);
	count_formats(&nl, &nc, &r2);
	CHECK(nl == 0 && nc > 4);
	r1 = old_format(&s, &r2);
	count_formats(&nl, &nc, &r1);
	CHECK(nl > 4 && nc == 0);
	CHECK(!th_oid_equal(&r1, &r2));
	/* The same rows in either format: no difference either way. */
	CHECK(ndiff(&s, &r1, &r2) == 0);
	CHECK(ndiff(&s, &r2, &r1) == 0);

	/* Edits on the older format rewrite the chunks they touch in the new one, keep the rest. */
	memcpy(ours, base, NROWS * sizeof(*base));
	edit_some(ours, dirty_o, 0, NROWS / 2, 40);
	o1 = apply(&s, &r1, ours, dirty_o);
	count_formats(&nl, &nc, &o1);
	CHECK(nl > 0 && nc > 0);
	want = apply(&s, NULL, ours, NULL);
	CHECK(ndiff(&s, &o1, &want) == 0);
	CHECK(ndiff(&s, &r1, &o1) == ndiff(&s, &r2, &want));
	CHECK(ndiff(&s, &r1, &o1) > 0);

	/* A three-way merge over an old-format base, a mixed side and a new-format side. */
	memcpy(theirs, base, NROWS * sizeof(*base));
	edit_some(theirs, dirty_t, NROWS / 2, NROWS, 40);
	t2 = apply(&s, &r2, theirs, dirty_t);
	memcpy(both, ours, NROWS * sizeof(*ours));
	for (i = 0; i < NROWS; i++)
		if (dirty_t[i])
			both[i] = theirs[i];
	base_root = commit_tree(&s, &r1);
	ours_root = commit_tree(&s, &o1);
	theirs_root = commit_tree(&s, &t2);
	CHECK_OK(th_merge_trees(&merged, NULL, NULL, repo, &base_root, &ours_root, &theirs_root, 0,
	                        &err),
	         &err);
	CHECK_OK(th_table_load(&mt, repo, &merged, "t", &err), &err);
	want = apply(&s, NULL, both, NULL);
	CHECK(ndiff(&s, &mt.rows, &want) == 0);
	CHECK(ndiff(&s, &r1, &mt.rows) > ndiff(&s, &r1, &o1));

	th_table_dispose(&mt);
	th_schema_dispose(&s);
	free(base);
	free(ours);
	free(theirs);
	free(both);
	free(dirty_o);
	free(dirty_t);
}

int main(void)
{
	char *tmp = t_mkdtemp(), path[4096];
	th_error err;

	RUN(test_exact_bytes);
	RUN(test_int_limits);
	RUN(test_kept_as_lines);
	RUN(test_malformed);
	RUN(test_random_round_trips);
	RUN(test_decode_key);
	snprintf(path, sizeof(path), "%s/db.git", tmp);
	if (th_repo_global_init(&err) < 0 || th_repo_create(path, "test", &err) < 0 ||
	    th_repo_open(&repo, path, 1, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return 1;
	}
	RUN(test_mixed_formats);
	th_repo_free(repo);
	th_repo_global_shutdown();
	t_rmdir(tmp);
	TH_TEST_END();
}
