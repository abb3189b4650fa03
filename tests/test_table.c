/* test_table.c: the chunked table layout through the library. The central property is history
 * independence: applying random edits incrementally must give exactly the rows tree (same object
 * id) that building the final rows from scratch gives, while rewriting only a few chunks. Also: the
 * import's external sort (a tiny memory budget, many spilled runs) gives the same tree as an
 * in-memory sort, and duplicate rows of keyless tables never straddle a chunk boundary. */
#include <fcntl.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"
#include "tablehub/import.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"

typedef struct model_row {
	long id; /* -1: deleted */
	char v[48];
} model_row;

typedef struct feed {
	const th_schema *s;
	model_row *rows; /* sorted by id */
	size_t n, pos;
	int with_deletes;
	th_buf key, line;
	int group; /* keyless: one edit per run of equal rows, with its count */
} feed;

static void schema_init(th_schema *s, int keyless)
{
	static th_column cols[2] = { { "id", TH_TYPE_INTEGER, 0 }, { "v", TH_TYPE_TEXT, 1 } };
	static size_t pk[1] = { 0 };

	s->ncols = 2;
	s->cols = cols;
	s->npk = keyless ? 0 : 1;
	s->pk = pk;
}

static int feed_next(void *payload, th_edit *e, th_error *err)
{
	feed *f = payload;
	th_cell cells[2];
	char idtxt[32];
	model_row *r;
	int error;

	while (f->pos < f->n && f->rows[f->pos].id < 0 && !f->with_deletes)
		f->pos++;
	if (f->pos >= f->n)
		return 0;
	r = &f->rows[f->pos++];
	e->count = 1;
	while (f->group && f->pos < f->n && f->rows[f->pos].id == r->id &&
	       strcmp(f->rows[f->pos].v, r->v) == 0) {
		f->pos++;
		e->count++;
	}
	snprintf(idtxt, sizeof(idtxt), "%ld", r->id < 0 ? -r->id - 1 : r->id);
	cells[0].s = idtxt;
	cells[0].len = strlen(idtxt);
	cells[0].is_null = 0;
	cells[1].s = r->v;
	cells[1].len = strlen(r->v);
	cells[1].is_null = 0;
	th_buf_clear(&f->key);
	th_buf_clear(&f->line);
	if ((error = th_row_key(&f->key, f->s, cells, err)) < 0 ||
	    (error = th_row_encode(&f->line, f->s, cells, err)) < 0)
		return error;
	e->key = (const unsigned char *)f->key.ptr;
	e->keylen = f->key.size;
	e->line = r->id < 0 ? NULL : f->line.ptr;
	e->linelen = r->id < 0 ? 0 : f->line.size;
	return 1;
}

/* A new repository at DIR/r.git, open for writing (freed by the caller). */
static th_repo *new_repo(const char *dir)
{
	char path[4096];
	th_repo *repo = NULL;
	th_error err;

	snprintf(path, sizeof(path), "%s/r.git", dir);
	CHECK_OK(th_repo_create(path, "t", &err), &err);
	CHECK_OK(th_repo_open(&repo, path, 1, &err), &err);
	return repo;
}

/* Options that create table t on main from a CSV, keyed on id when `keyed`, spilling in DIR. */
static void create_opts(th_import_opts *o, const char *dir, int keyed)
{
	static const char *const id_key[] = { "id" };

	memset(o, 0, sizeof(*o));
	o->table = "t";
	o->op = TH_OP_CREATE;
	o->pk = keyed ? id_key : NULL;
	o->npk = keyed ? 1 : 0;
	o->format = th_format_find("Csv");
	o->branch = "main";
	o->tmpdir = dir;
}

static void fill(char *v, unsigned seed)
{
	snprintf(v, 48, "value-%u-%u", seed, seed * 2654435761u);
}

static void test_history_independence(void)
{
	char *dir = t_mkdtemp();
	th_repo *repo = NULL;
	th_error err;
	th_schema s;
	th_oid tree, inc, fresh;
	th_apply_stats st;
	model_row *all, *edits;
	size_t n = 20000, i, round;
	unsigned seed = 12345;

	schema_init(&s, 0);
	CHECK_OK(th_repo_global_init(&err), &err);
	repo = new_repo(dir);
	all = calloc(n * 2, sizeof(*all));
	edits = calloc(64, sizeof(*edits));
	for (i = 0; i < n; i++) {
		all[i].id = (long)i * 2; /* even ids: room for inserts */
		fill(all[i].v, (unsigned)i);
	}
	{
		feed f = { &s, all, n, 0, 0, TH_BUF_INIT, TH_BUF_INIT, 0 };
		CHECK_OK(th_table_apply(&tree, &st, repo, &s, NULL, feed_next, &f, NULL, &err),
		         &err);
		CHECK(st.added == n);
		CHECK(st.chunks_written > 8);
		th_buf_dispose(&f.key);
		th_buf_dispose(&f.line);
	}
	for (round = 0; round < 30; round++) {
		size_t ne = 1 + (size_t)(rand_r(&seed) % 20), j, k;
		feed f = { &s, edits, 0, 0, 1, TH_BUF_INIT, TH_BUF_INIT, 0 };
		feed g = { &s, all, n, 0, 0, TH_BUF_INIT, TH_BUF_INIT, 0 };
		uint64_t add = 0, mod = 0, rem = 0;

		/* Random distinct ids: update, insert (odd id) or delete. */
		for (j = 0; j < ne; j++) {
			/* one round in three also appends past the last key */
			long id = j == 0 && round % 3 == 0 ? all[n - 1].id + 1 + (long)round
			                                   : (long)(rand_r(&seed) % (n * 2));
			for (k = 0; k < j && edits[k].id != id && -edits[k].id - 1 != id; k++)
				;
			if (k < j) {
				j--;
				ne--;
				continue;
			}
			edits[j].id = id;
			fill(edits[j].v, rand_r(&seed));
		}
		/* sort edits by id */
		for (j = 1; j < ne; j++)
			for (k = j; k > 0 && edits[k - 1].id > edits[k].id; k--) {
				model_row t = edits[k];
				edits[k] = edits[k - 1];
				edits[k - 1] = t;
			}
		/* apply to the model; a third of existing rows are deleted instead */
		for (j = 0; j < ne; j++) {
			long id = edits[j].id;
			size_t lo = 0, hi = n;
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				if (all[mid].id < id)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < n && all[lo].id == id) {
				if (rand_r(&seed) % 3 == 0) {
					memmove(&all[lo], &all[lo + 1],
					        (n - lo - 1) * sizeof(*all));
					n--;
					edits[j].id = -id - 1;
					rem++;
				} else {
					all[lo] = edits[j];
					mod++;
				}
			} else {
				memmove(&all[lo + 1], &all[lo], (n - lo) * sizeof(*all));
				all[lo] = edits[j];
				n++;
				add++;
			}
		}
		f.n = ne;
		g.n = n;
		CHECK_OK(th_table_apply(&inc, &st, repo, &s, &tree, feed_next, &f, NULL, &err),
		         &err);
		CHECK(st.added == add && st.modified == mod && st.removed == rem);
		/* Few chunks rewritten: the edits touch at most ~2 chunks each. */
		CHECK(st.chunks_written <= 3 * ne + 2);
		CHECK(st.chunks_reused > 0);
		CHECK_OK(th_table_apply(&fresh, NULL, repo, &s, NULL, feed_next, &g, NULL, &err),
		         &err);
		CHECK(th_oid_equal(&inc, &fresh));
		tree = inc;
		th_buf_dispose(&f.key);
		th_buf_dispose(&f.line);
		th_buf_dispose(&g.key);
		th_buf_dispose(&g.line);
	}
	free(all);
	free(edits);
	th_repo_free(repo);
	t_rmdir(dir);
}

static void test_keyless_duplicates_not_split(void)
{
	char *dir = t_mkdtemp();
	th_repo *repo = NULL;
	th_error err;
	th_schema s;
	th_oid tree;
	th_chunk_ref *chunks = NULL;
	th_chunk_rows a = { 0, NULL, TH_BUF_INIT, TH_BUF_INIT },
	              b = { 0, NULL, TH_BUF_INIT, TH_BUF_INIT };
	model_row *rows;
	size_t n = 30000, i, nchunks = 0;

	schema_init(&s, 1);
	repo = new_repo(dir);
	rows = calloc(n, sizeof(*rows));
	for (i = 0; i < n; i++) { /* runs of 50 identical rows */
		rows[i].id = (long)(i / 50);
		snprintf(rows[i].v, sizeof(rows[i].v), "dup %ld padding padding padding",
		         rows[i].id);
	}
	{
		/* keyless edits: one per distinct row with its count */
		feed f = { &s, rows, n, 0, 0, TH_BUF_INIT, TH_BUF_INIT, 1 };
		th_apply_stats st;
		CHECK_OK(th_table_apply(&tree, &st, repo, &s, NULL, feed_next, &f, NULL, &err),
		         &err);
		th_buf_dispose(&f.key);
		th_buf_dispose(&f.line);
	}
	CHECK_OK(th_table_chunks(&chunks, &nchunks, repo, &tree, &err), &err);
	CHECK(nchunks > 5);
	if (nchunks <= 5)
		fprintf(stderr, "nchunks %zu\n", nchunks);
	for (i = 0; i + 1 < nchunks; i++) {
		CHECK_OK(th_chunk_rows_read(&a, repo, &s, &chunks[i].oid, &err), &err);
		CHECK_OK(th_chunk_rows_read(&b, repo, &s, &chunks[i + 1].oid, &err), &err);
		CHECK(a.n > 0 && b.n > 0);
		CHECK(a.rows[a.n - 1].keylen != b.rows[0].keylen ||
		      memcmp(a.rows[a.n - 1].key, b.rows[0].key, b.rows[0].keylen) != 0);
	}
	th_chunk_rows_dispose(&a);
	th_chunk_rows_dispose(&b);
	free(chunks);
	free(rows);
	th_repo_free(repo);
	t_rmdir(dir);
}

/* Import with a 64 KiB sort budget (dozens of spilled runs) equals the in-memory import. */
static void test_external_sort(void)
{
	char *dir = t_mkdtemp(), csv[4096];
	th_repo *repo = NULL;
	th_error err;
	th_import_opts o;
	th_import_result r1, r2;
	th_table t1 = TH_TABLE_INIT, t2 = TH_TABLE_INIT;
	th_commit_info c1, c2;
	int fd;

	snprintf(csv, sizeof(csv), "%s/in.csv", dir);
	CHECK(t_sh(NULL, "%s/../scripts/bench.d/gen-csv 20000 %s", TH_FIXTURES, csv) == 0);
	repo = new_repo(dir);
	create_opts(&o, dir, 1);
	o.mem_budget = 64 << 10;
	fd = open(csv, O_RDONLY);
	CHECK_OK(th_import_fd(&r1, repo, fd, &o, &err), &err);
	close(fd);
	CHECK(r1.added == 20000 && r1.rows == 20000);
	/* The same file with the default budget, on a second branch from the initial commit. */
	{
		th_oid init;
		CHECK_OK(th_repo_resolve(&init, repo, "main~1", &err), &err);
		CHECK_OK(th_repo_branch_cas(repo, "other", &init, NULL, "test", &err), &err);
	}
	o.branch = "other";
	o.mem_budget = 0;
	fd = open(csv, O_RDONLY);
	CHECK_OK(th_import_fd(&r2, repo, fd, &o, &err), &err);
	close(fd);
	memset(&c1, 0, sizeof(c1));
	memset(&c2, 0, sizeof(c2));
	CHECK_OK(th_repo_commit_read(&c1, repo, &r1.commit, &err), &err);
	CHECK_OK(th_repo_commit_read(&c2, repo, &r2.commit, &err), &err);
	CHECK_OK(th_table_load(&t1, repo, &c1.tree, "t", &err), &err);
	CHECK_OK(th_table_load(&t2, repo, &c2.tree, "t", &err), &err);
	CHECK(th_oid_equal(&t1.rows, &t2.rows));
	CHECK(t1.row_count == 20000);
	th_table_dispose(&t1);
	th_table_dispose(&t2);
	th_commit_info_dispose(&c1);
	th_commit_info_dispose(&c2);
	th_repo_free(repo);
	t_rmdir(dir);
}

/* The rejected-rows report: the first 100 bad rows as JSON, all of them counted, the error naming
 * the first; nothing committed. */
static void test_rejected_report(void)
{
	char *dir = t_mkdtemp(), csv[4096];
	th_repo *repo = NULL;
	th_error err;
	th_import_opts o;
	th_import_result r;
	th_buf report = TH_BUF_INIT, text = TH_BUF_INIT;
	th_oid before, after;
	const char *p;
	size_t listed = 0;
	int fd, i;

	snprintf(csv, sizeof(csv), "%s/in.csv", dir);
	th_buf_puts(&text, "id,v\n1,\"a \"\"b\"\"\"\n", NULL);
	for (i = 2; i <= 151; i++) /* 150 rows without a key */
		th_buf_printf(&text, NULL, ",x%d\n", i);
	t_write_file(csv, text.ptr, text.size);
	repo = new_repo(dir);
	CHECK_OK(th_repo_branch_get(&before, repo, "main", &err), &err);
	create_opts(&o, dir, 1);
	o.report = &report;
	fd = open(csv, O_RDONLY);
	CHECK(th_import_fd(&r, repo, fd, &o, &err) == TH_EINVALID);
	close(fd);
	CHECK_STR(err.msg,
	          "line 3, column 1 ('id'): primary key value is NULL (an empty field); every "
	          "row needs a key (and 149 more rows rejected)");
	CHECK(err.line == 3 && err.column == 1);
	CHECK(report.ptr != NULL);
	CHECK(strncmp(report.ptr ? report.ptr : "",
	              "{\"rejected_rows\":[{\"line\":3,\"column\":1,"
	              "\"value\":null,\"reason\":\"primary key value is "
	              "NULL",
	              60) == 0);
	for (p = report.ptr; p && (p = strstr(p, "\"line\":")) != NULL; p++)
		listed++;
	CHECK(listed == 100);
	CHECK_CONTAINS(report.ptr, "],\"rejected_total\":150}");
	CHECK_OK(th_repo_branch_get(&after, repo, "main", &err), &err);
	CHECK(th_oid_equal(&before, &after));
	/* A good import leaves the report empty. */
	th_buf_clear(&text);
	th_buf_puts(&text, "id,v\n1,a\n", NULL);
	t_write_file(csv, text.ptr, text.size);
	fd = open(csv, O_RDONLY);
	CHECK_OK(th_import_fd(&r, repo, fd, &o, &err), &err);
	close(fd);
	CHECK(report.size == 0);
	th_buf_dispose(&report);
	th_buf_dispose(&text);
	th_repo_free(repo);
	t_rmdir(dir);
}

/* Found by fuzz_import: a file with a header and no rows (the sorter then holds no records) is a
 * table with no rows, committed; a table keyed on a column the header lacks is refused. */
static void test_header_only(void)
{
	char *dir = t_mkdtemp(), csv[4096];
	th_repo *repo = NULL;
	th_error err;
	th_import_opts o;
	th_import_result r;
	th_commit_info ci;
	th_table t = TH_TABLE_INIT;
	th_oid before, after;
	int fd;

	snprintf(csv, sizeof(csv), "%s/in.csv", dir);
	t_write_file(csv, "ate", 3);
	repo = new_repo(dir);
	create_opts(&o, dir, 0);
	fd = open(csv, O_RDONLY);
	CHECK_OK(th_import_fd(&r, repo, fd, &o, &err), &err);
	close(fd);
	CHECK(r.rows_read == 0 && r.added == 0 && r.rows == 0);
	memset(&ci, 0, sizeof(ci));
	CHECK_OK(th_repo_commit_read(&ci, repo, &r.commit, &err), &err);
	CHECK_OK(th_table_load(&t, repo, &ci.tree, "t", &err), &err);
	CHECK(t.schema.ncols == 1 && strcmp(t.schema.cols[0].name, "ate") == 0);
	CHECK(t.schema.npk == 0 && t.row_count == 0 && th_oid_is_zero(&t.rows));
	th_table_dispose(&t);
	th_commit_info_dispose(&ci);

	CHECK_OK(th_repo_branch_get(&before, repo, "main", &err), &err);
	create_opts(&o, dir, 1);
	o.table = "u";
	fd = open(csv, O_RDONLY);
	CHECK(th_import_fd(&r, repo, fd, &o, &err) == TH_EINVALID);
	close(fd);
	CHECK_OK(th_repo_branch_get(&after, repo, "main", &err), &err);
	CHECK(th_oid_equal(&before, &after));
	th_repo_free(repo);
	t_rmdir(dir);
}

/* opts.base: the import builds on that commit and makes its branch at the new one; a branch that
 * exists already is a conflict, and nothing moves. */
static void test_base_makes_branch(void)
{
	char *dir = t_mkdtemp(), csv[4096];
	th_repo *repo = NULL;
	th_error err;
	th_import_opts o;
	th_import_result r;
	th_commit_info ci;
	th_oid base, tip, again;
	int fd;

	snprintf(csv, sizeof(csv), "%s/in.csv", dir);
	t_write_file(csv, "id,v\n1,a\n2,b\n", 13);
	repo = new_repo(dir);
	CHECK_OK(th_repo_branch_get(&base, repo, "main", &err), &err);
	create_opts(&o, dir, 1);
	o.branch = "alice/import-1";
	o.base = &base;
	CHECK(th_repo_branch_get(&tip, repo, o.branch, &err) == TH_ENOTFOUND);
	fd = open(csv, O_RDONLY);
	CHECK_OK(th_import_fd(&r, repo, fd, &o, &err), &err);
	close(fd);
	CHECK(r.added == 2 && r.rows == 2);
	CHECK_OK(th_repo_branch_get(&tip, repo, o.branch, &err), &err);
	CHECK(th_oid_equal(&tip, &r.commit));
	memset(&ci, 0, sizeof(ci));
	CHECK_OK(th_repo_commit_read(&ci, repo, &tip, &err), &err);
	CHECK(ci.nparents == 1 && th_oid_equal(&ci.parents[0], &base));
	th_commit_info_dispose(&ci);
	CHECK_OK(th_repo_branch_get(&again, repo, "main", &err), &err);
	CHECK(th_oid_equal(&again, &base));

	/* Again onto the same branch name: it exists, so the import fails and moves nothing. */
	o.table = "u";
	fd = open(csv, O_RDONLY);
	CHECK(th_import_fd(&r, repo, fd, &o, &err) == TH_ECONFLICT);
	close(fd);
	CHECK(strstr(err.msg, "branch 'alice/import-1' exists already") != NULL);
	CHECK_OK(th_repo_branch_get(&again, repo, o.branch, &err), &err);
	CHECK(th_oid_equal(&again, &tip));
	th_repo_free(repo);
	t_rmdir(dir);
}

/* --- keys already in order: the import skips the sorter; the result must not change ----------- */

#define SORTED_N 3000

/* A CSV of the rows with `keys` in that order (n of them); a key's values come from it and `v`
 * (so a repeated key with another `v` is another row). Keyless: the rows' text is the key. */
static char *rows_csv(const unsigned *keys, const unsigned *vs, size_t n)
{
	th_buf b = TH_BUF_INIT;
	th_error err;
	size_t i;

	CHECK_OK(th_buf_puts(&b, "id,name,qty\n", &err), &err);
	for (i = 0; i < n; i++)
		CHECK_OK(th_buf_printf(&b, &err, "%u,\"name %u, v%u\",%u\n", keys[i], keys[i],
		                       vs[i], keys[i] * 7 + vs[i]),
		         &err);
	return b.ptr;
}

/* Import `csv` with `op` into `branch`, a new branch at `from`; the commit's tree in *tree.
 * Returns the import's code. */
static int import_csv(th_import_result *r, th_oid *tree, th_repo *repo, const char *dir,
                      const char *branch, const th_oid *from, th_import_op op, int keyed,
                      const char *csv, th_error *err)
{
	char path[4096];
	th_import_opts o;
	th_commit_info ci;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s.csv", dir, branch);
	t_write_file(path, csv, strlen(csv));
	CHECK_OK(th_repo_branch_cas(repo, branch, from, NULL, "test", err), err);
	create_opts(&o, dir, keyed);
	o.branch = branch;
	o.op = op;
	o.mem_budget = 16 << 10; /* the sort path spills runs */
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	rc = th_import_fd(r, repo, fd, &o, err);
	close(fd);
	if (rc == TH_OK) {
		memset(&ci, 0, sizeof(ci));
		CHECK_OK(th_repo_commit_read(&ci, repo, &r->commit, err), err);
		*tree = ci.tree;
		th_commit_info_dispose(&ci);
	}
	return rc;
}

/* Sorted, reverse-sorted, nearly sorted and shuffled files (and with a repeated key) give the
 * same commit trees and the same counts whether the keys came in order (no sort) or not. */
static void test_sorted_input(void)
{
	enum { SORTED, REVERSED, NEARLY, SHUFFLED, NVAR };
	static const char *names[NVAR] = { "sorted", "reversed", "nearly", "shuffled" };
	char *dir = t_mkdtemp(), *csv, branch[64];
	th_repo *repo = new_repo(dir);
	unsigned keys[SORTED_N + 1], vs[SORTED_N + 1], seed = 7;
	th_oid init, tree[NVAR], base_commit, t2;
	th_import_result r, rr[NVAR];
	th_error err;
	size_t i, j, v;
	int keyed;

	CHECK_OK(th_repo_resolve(&init, repo, "main", &err), &err);
	for (keyed = 1; keyed >= 0; keyed--) {
		for (v = 0; v < NVAR; v++) {
			for (i = 0; i < SORTED_N; i++) {
				keys[i] = (unsigned)(v == REVERSED ? SORTED_N - i : i + 1) * 3;
				vs[i] = 0;
			}
			if (v == NEARLY) { /* in order but for the last two */
				keys[SORTED_N - 2] = SORTED_N * 3;
				keys[SORTED_N - 1] = (SORTED_N - 1) * 3;
			}
			for (i = SORTED_N - 1; v == SHUFFLED && i > 0; i--) {
				unsigned t;
				seed = seed * 1103515245u + 12345u;
				j = (seed >> 8) % (i + 1);
				t = keys[i];
				keys[i] = keys[j];
				keys[j] = t;
			}
			csv = rows_csv(keys, vs, SORTED_N);
			snprintf(branch, sizeof(branch), "c%d-%s", keyed, names[v]);
			CHECK_OK(import_csv(&rr[v], &tree[v], repo, dir, branch, &init,
			                    TH_OP_CREATE, keyed, csv, &err),
			         &err);
			free(csv);
			CHECK(rr[v].added == SORTED_N && rr[v].rows == SORTED_N);
			if (v > 0)
				CHECK(th_oid_equal(&tree[v], &tree[0]));
		}
	}

	/* Replace on the keyed table: every third row changed, the first 100 removed, 100 added;
	 * the counts come from walking the old rows in step, streamed or sorted. */
	CHECK_OK(th_repo_resolve(&base_commit, repo, "c1-sorted", &err), &err);
	for (v = SORTED; v <= SHUFFLED; v += SHUFFLED - SORTED) { /* sorted, then shuffled */
		for (i = 0; i < SORTED_N; i++) {
			keys[i] = (unsigned)(i + 101) * 3;
			vs[i] = i % 3 == 0;
		}
		if (v == SHUFFLED)
			for (i = 0; i + 1 < SORTED_N; i += 2) {
				unsigned t = keys[i];
				keys[i] = keys[i + 1];
				keys[i + 1] = t;
				t = vs[i];
				vs[i] = vs[i + 1];
				vs[i + 1] = t;
			}
		csv = rows_csv(keys, vs, SORTED_N);
		snprintf(branch, sizeof(branch), "replace-%s", names[v]);
		CHECK_OK(import_csv(&rr[v], &tree[v], repo, dir, branch, &base_commit,
		                    TH_OP_REPLACE, 1, csv, &err),
		         &err);
		free(csv);
		CHECK(rr[v].added == 100 && rr[v].removed == 100 && rr[v].modified == 967 &&
		      rr[v].rows == SORTED_N);
	}
	CHECK(th_oid_equal(&tree[SORTED], &tree[SHUFFLED]));

	/* A repeated key: Create rejects it naming both lines, Update keeps the last, in order or
	 * not (the file then takes the sort path from the repeat on). */
	for (i = 0; i < 10; i++) {
		keys[i] = (unsigned)(i + 1) * 3;
		vs[i] = 0;
	}
	keys[5] = keys[4]; /* lines 6 and 7: key 15 twice */
	vs[5] = 1;
	csv = rows_csv(keys, vs, 10);
	CHECK(import_csv(&r, &t2, repo, dir, "dup-create", &init, TH_OP_CREATE, 1, csv, &err) ==
	      TH_EINVALID);
	CHECK_CONTAINS(err.msg,
	               "line 7, column 1 ('id'): duplicate primary key 15 (also on line 6)");
	CHECK_OK(import_csv(&rr[SORTED], &tree[SORTED], repo, dir, "dup-update", &base_commit,
	                    TH_OP_UPDATE, 1, csv, &err),
	         &err);
	free(csv);
	CHECK(rr[SORTED].duplicates == 1 && rr[SORTED].modified == 1 &&
	      rr[SORTED].rows == SORTED_N);
	/* the same file without the overridden row: what Update must have kept */
	memmove(keys + 4, keys + 5, 5 * sizeof(*keys));
	memmove(vs + 4, vs + 5, 5 * sizeof(*vs));
	csv = rows_csv(keys, vs, 9);
	CHECK_OK(import_csv(&rr[REVERSED], &tree[REVERSED], repo, dir, "dup-ref", &base_commit,
	                    TH_OP_UPDATE, 1, csv, &err),
	         &err);
	free(csv);
	CHECK(th_oid_equal(&tree[SORTED], &tree[REVERSED]));
	th_repo_free(repo);
	t_rmdir(dir);
}

int main(void)
{
	RUN(test_history_independence);
	RUN(test_keyless_duplicates_not_split);
	RUN(test_external_sort);
	RUN(test_rejected_report);
	RUN(test_header_only);
	RUN(test_base_makes_branch);
	RUN(test_sorted_input);
	th_repo_global_shutdown();
	TH_TEST_END();
}
