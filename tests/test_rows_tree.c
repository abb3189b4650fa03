/* test_rows_tree.c: two-level rows trees (src/rows_tree.c). Past 256 chunks a rows tree gets a
 * second level; an apply then passes untouched subtrees through whole and a diff skips equal
 * subtrees unread. The trees must stay exactly those a write from scratch gives (the same object
 * ids for the same rows), which is checked two ways: on a real table of wide rows under edits of
 * every kind, and on the tree writer alone with made-up chunk lists whose edits move subtree cuts
 * (renamed or removed group ends, cut names numbered across a cut, appends after the last group,
 * a shrink back to one level). */
#include <stdint.h>

#include "harness.h"
#include "util.h"
#include "tablehub/hash.h"
#include "tablehub/merge.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"
#include "../src/chunk.h"

static void schema_init(th_schema *s)
{
	static th_column cols[2] = { { "id", TH_TYPE_INTEGER, 0 }, { "v", TH_TYPE_TEXT, 1 } };
	static size_t pk[1] = { 0 };

	s->ncols = 2;
	s->cols = cols;
	s->npk = 1;
	s->pk = pk;
}

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

/* --- a table of wide rows ---------------------------------------------------------------------
 * Wide rows (~4 KB) make ~380 chunks of 6,250 rows. The model: row id present with version
 * ver[id] (0: absent). */

#define WIDE_IDS 15000

typedef struct wide_feed {
	const th_schema *s;
	const int *ver;      /* the wanted version of every id (0: removed) */
	const char *touched; /* ids to emit (NULL: every present id) */
	long id;             /* the next id to look at */
	th_buf key, line;
	char v[4100];
} wide_feed;

static int wide_next(void *payload, th_edit *e, th_error *err)
{
	wide_feed *f = payload;
	th_cell cells[2];
	char idtxt[32];
	size_t k;
	int error;

	while (f->id < WIDE_IDS && (f->touched ? !f->touched[f->id] : f->ver[f->id] == 0))
		f->id++;
	if (f->id >= WIDE_IDS)
		return 0;
	snprintf(idtxt, sizeof(idtxt), "%ld", f->id);
	for (k = 0; k + 20 < 4000; k += 20)
		snprintf(f->v + k, 21, "%08lx-%03d-%07zu", f->id * 2654435761u, f->ver[f->id], k);
	cells[0].s = idtxt;
	cells[0].len = strlen(idtxt);
	cells[0].is_null = 0;
	cells[1].s = f->v;
	cells[1].len = strlen(f->v);
	cells[1].is_null = 0;
	th_buf_clear(&f->key);
	th_buf_clear(&f->line);
	if ((error = th_row_key(&f->key, f->s, cells, err)) < 0 ||
	    (error = th_row_encode(&f->line, f->s, cells, err)) < 0)
		return error;
	e->key = (const unsigned char *)f->key.ptr;
	e->keylen = f->key.size;
	e->count = 1;
	e->line = f->ver[f->id] ? f->line.ptr : NULL;
	e->linelen = f->ver[f->id] ? f->line.size : 0;
	f->id++;
	return 1;
}

/* The rows tree of the model written from scratch (new chunks into one pack: one sync, not one
 * per chunk). */
static void wide_fresh(th_oid *out, th_repo *repo, const th_schema *s, const int *ver)
{
	wide_feed f;
	th_pack *pack = NULL;
	th_error err;

	memset(&f, 0, sizeof(f));
	f.s = s;
	f.ver = ver;
	CHECK_OK(th_pack_new(&pack, repo, 1, &err), &err);
	CHECK_OK(th_table_apply(out, NULL, repo, s, NULL, wide_next, &f, pack, &err), &err);
	th_buf_dispose(&f.key);
	th_buf_dispose(&f.line);
}

static int top_has_subtrees(th_repo *repo, const th_oid *tree)
{
	th_tree_list l = { NULL, 0 };
	th_error err;
	int any;

	CHECK_OK(th_repo_tree_read(&l, repo, tree, &err), &err);
	any = l.n > 0 && l.entries[0].is_tree;
	th_tree_list_dispose(&l);
	return any;
}

/* Remove the last row of each subtree of `tree` but the last: the chunks holding them get new
 * names, so the subtree cuts after them move. */
static void remove_group_ends(th_repo *repo, const th_schema *s, const th_oid *tree, int *ver,
                              char *touched)
{
	th_tree_list l = { NULL, 0 };
	th_buf key = TH_BUF_INIT;
	th_error err;
	size_t g, removed = 0;
	long id;

	CHECK_OK(th_repo_tree_read(&l, repo, tree, &err), &err);
	for (g = 0; g + 1 < l.n; g++) {
		for (id = 0; id < WIDE_IDS; id++) {
			char idtxt[32], hex[64];
			th_cell c[2] = { { idtxt, 0, 0 }, { "", 0, 0 } };

			if (!ver[id])
				continue;
			snprintf(idtxt, sizeof(idtxt), "%ld", id);
			c[0].len = strlen(idtxt);
			th_buf_clear(&key);
			CHECK_OK(th_row_key(&key, s, c, &err), &err);
			th_hex(hex, (const unsigned char *)key.ptr, key.size);
			hex[2 * key.size] = '\0';
			if (strcmp(hex, l.entries[g].name) == 0) {
				touched[id] = 1;
				ver[id] = 0;
				removed++;
				break;
			}
		}
	}
	CHECK(removed == l.n - 1 && removed > 0);
	th_buf_dispose(&key);
	th_tree_list_dispose(&l);
}

static void test_two_level_incremental(void)
{
	char *dir = t_mkdtemp();
	th_repo *repo = NULL;
	th_error err;
	th_schema s;
	th_oid tree, inc, fresh;
	th_apply_stats st;
	int *ver = calloc(WIDE_IDS, sizeof(*ver));
	char *touched = calloc(WIDE_IDS, 1);
	unsigned seed = 777;
	long i;
	int round;

	schema_init(&s);
	repo = new_repo(dir);
	for (i = 0; i < 12500; i += 2)
		ver[i] = 1;
	wide_fresh(&tree, repo, &s, ver);
	CHECK(top_has_subtrees(repo, &tree));
	for (round = 0; round < 7; round++) {
		wide_feed f;
		th_diff_iter *it = NULL;
		th_diff_change ch;
		uint64_t read = 0, changes = 0;
		int rc;

		memset(touched, 0, WIDE_IDS);
		if (round == 0) { /* one row, in the middle */
			touched[6250] = 1;
			ver[6250]++;
		} else if (round == 1) { /* the first row goes, a row before it comes */
			touched[0] = touched[1] = 1;
			ver[0] = 0;
			ver[1] = 1;
		} else if (round == 2) { /* rows appended after the last */
			for (i = 12500; i < 12512; i++)
				touched[i] = 1, ver[i] = 1;
		} else if (round == 3) { /* a long run removed: whole subtrees go */
			for (i = 1250; i < 3000; i++)
				if (ver[i])
					touched[i] = 1, ver[i] = 0;
		} else if (round == 4) { /* the last rows of subtrees go: subtree cuts move */
			remove_group_ends(repo, &s, &tree, ver, touched);
		} else if (round == 6) { /* down to one level */
			for (i = 0; i < WIDE_IDS; i++)
				if (ver[i] && i % 97 != 0)
					touched[i] = 1, ver[i] = 0;
		} else { /* scattered changes, adds and removals */
			int k;
			for (k = 0; k < 40; k++) {
				long id = (long)(rand_r(&seed) % 12520);
				touched[id] = 1;
				ver[id] = ver[id] && rand_r(&seed) % 3 == 0 ? 0 : ver[id] + 1;
			}
		}
		memset(&f, 0, sizeof(f));
		f.s = &s;
		f.ver = ver;
		f.touched = touched;
		CHECK_OK(th_table_apply(&inc, &st, repo, &s, &tree, wide_next, &f, NULL, &err),
		         &err);
		th_buf_dispose(&f.key);
		th_buf_dispose(&f.line);
		wide_fresh(&fresh, repo, &s, ver);
		CHECK(th_oid_equal(&inc, &fresh));
		if (!th_oid_equal(&inc, &fresh))
			fprintf(stderr, "round %d: incremental tree differs from the fresh one\n",
			        round);
		CHECK(round == 6 ? !top_has_subtrees(repo, &inc) : top_has_subtrees(repo, &inc));
		if (round == 0)
			CHECK(st.chunks_written <= 2 && st.chunks_reused > 0);
		/* The diff reads the changed chunks only, skipping equal subtrees unread. */
		CHECK_OK(th_diff_iter_new(&it, repo, &s, &tree, &s, &inc, &err), &err);
		while ((rc = th_diff_iter_next(it, &ch, &err)) > 0)
			changes++;
		CHECK(rc == 0);
		th_diff_iter_stats(it, &read, NULL);
		if (round == 0)
			CHECK(changes == 1 && read <= 4);
		th_diff_iter_free(it);
		tree = inc;
	}
	free(ver);
	free(touched);
	th_repo_free(repo);
	t_rmdir(dir);
}

/* --- the tree writer alone ---------------------------------------------------------------------
 * A base of NBASE made-up chunks (tiny blobs) with names in order; an edit makes a new chunk list
 * from it; the list goes to th_rows_tree_write_reuse with every base subtree it holds whole and in
 * order given as a reused group, and must come out as th_rows_tree_write of the full list. */

#define NBASE 900

typedef struct item {
	char name[128]; /* raw: a cut name ends in '~' */
	th_oid oid;
	int base; /* its index in the base, or -1 */
} item;

typedef struct base_tree {
	item v[NBASE];
	th_oid root;
	th_tree_list top;
	size_t start[NBASE], end[NBASE]; /* chunk range [start, end) of each subtree */
} base_tree;

/* A chunk named `name` whose blob holds `data` (into `pack` when given, else loose). */
static void make_item_in(item *it, th_repo *repo, th_pack *pack, const char *name, const char *data,
                         int base)
{
	th_error err;

	snprintf(it->name, sizeof(it->name), "%.*s", (int)sizeof(it->name) - 1, name);
	if (pack)
		CHECK_OK(th_pack_add_blob(&it->oid, pack, data, strlen(data), &err), &err);
	else
		CHECK_OK(th_repo_blob_write(&it->oid, repo, data, strlen(data), &err), &err);
	it->base = base;
}

static void make_item(item *it, th_repo *repo, const char *name, int base)
{
	make_item_in(it, repo, NULL, name, name, base);
}

static void write_full(th_oid *out, th_repo *repo, const item *v, size_t n)
{
	th_chunk_ref *refs = calloc(n ? n : 1, sizeof(*refs));
	th_error err;
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(refs[i].name, sizeof(refs[i].name), "%s", v[i].name);
		refs[i].oid = v[i].oid;
	}
	CHECK_OK(th_rows_tree_write(out, repo, refs, n, &err), &err);
	free(refs);
}

/* Base names: "c" + 6 hex digits of 16*i; chunks 400..599 share the cut prefix "d0" + "~". */
static void base_init(base_tree *b, th_repo *repo)
{
	th_error err;
	th_pack *pack = NULL;
	size_t i, g, k = 0;

	CHECK_OK(th_pack_new(&pack, repo, 1, &err), &err);
	for (i = 0; i < NBASE; i++) {
		char name[64], data[32];
		if (i >= 400 && i < 600)
			snprintf(name, sizeof(name), "d0~");
		else
			snprintf(name, sizeof(name), "%s%06zx", i < 400 ? "c" : "e", 16 * i);
		/* equal raw names need distinct blobs: the run number tells them apart */
		snprintf(data, sizeof(data), "chunk %zu", i);
		make_item_in(&b->v[i], repo, pack, name, data, (int)i);
	}
	CHECK_OK(th_pack_commit(pack, &err), &err);
	write_full(&b->root, repo, b->v, NBASE);
	CHECK_OK(th_repo_tree_read(&b->top, repo, &b->root, &err), &err);
	CHECK(b->top.n > 4 && b->top.entries[0].is_tree);
	for (g = 0; g < b->top.n; g++) {
		th_tree_list l = { NULL, 0 };
		CHECK_OK(th_repo_tree_read(&l, repo, &b->top.entries[g].oid, &err), &err);
		b->start[g] = k;
		k += l.n;
		b->end[g] = k;
		th_tree_list_dispose(&l);
	}
	CHECK(k == NBASE);
}

/* Write `v` both ways and compare; returns how many base subtrees it offered for reuse. */
static size_t check_reuse(th_repo *repo, const base_tree *b, const item *v, size_t n)
{
	th_chunk_ref *refs = calloc(n ? n : 1, sizeof(*refs));
	th_rows_group *groups = calloc(b->top.n, sizeof(*groups));
	th_oid full, inc;
	th_error err;
	size_t i = 0, nr = 0, ng = 0, g, k;

	while (i < n) {
		int whole = 0;
		for (g = 0; g < b->top.n && v[i].base >= 0; g++) {
			if ((size_t)v[i].base != b->start[g] || i + (b->end[g] - b->start[g]) > n)
				continue;
			whole = 1;
			for (k = b->start[g]; k < b->end[g] && whole; k++)
				whole = v[i + k - b->start[g]].base == (int)k;
			break;
		}
		if (!whole) {
			snprintf(refs[nr].name, sizeof(refs[nr].name), "%s", v[i].name);
			refs[nr++].oid = v[i++].oid;
			continue;
		}
		groups[ng].at = nr;
		groups[ng].oid = b->top.entries[g].oid;
		snprintf(groups[ng].name, sizeof(groups[ng].name), "%s", b->top.entries[g].name);
		if ((groups[ng].has_prev = g > 0))
			snprintf(groups[ng].prev, sizeof(groups[ng].prev), "%s",
			         b->top.entries[g - 1].name);
		groups[ng].base_last = g + 1 == b->top.n;
		ng++;
		i += b->end[g] - b->start[g];
	}
	write_full(&full, repo, v, n);
	CHECK_OK(th_rows_tree_write_reuse(&inc, repo, refs, nr, groups, ng, &err), &err);
	CHECK(th_oid_equal(&full, &inc));
	free(refs);
	free(groups);
	return ng;
}

/* The base with chunk `at` replaced by `name` (NULL: removed), and chunks `add` (names) inserted
 * before chunk `ins`. */
static size_t edit(item *out, th_repo *repo, const base_tree *b, size_t at, const char *name,
                   size_t ins, const char *const *add)
{
	size_t i, n = 0;

	for (i = 0; i <= NBASE; i++) {
		if (i == ins)
			for (; add && *add; add++)
				make_item(&out[n++], repo, *add, -1);
		if (i == NBASE)
			break;
		if (i != at)
			out[n++] = b->v[i];
		else if (name)
			make_item(&out[n++], repo, name, -1);
	}
	return n;
}

static void test_tree_writer_reuse(void)
{
	char *dir = t_mkdtemp();
	th_repo *repo = new_repo(dir);
	base_tree *b = calloc(1, sizeof(*b));
	item *v = calloc(NBASE + 16, sizeof(*v));
	char name[160];
	size_t n, g, i, reused = 0;
	const char *const tail[] = { "f00000", "f00001", NULL };

	base_init(b, repo);
	/* Unchanged: every subtree reused. */
	CHECK(check_reuse(repo, b, b->v, NBASE) == b->top.n);
	for (g = 0; g + 1 < b->top.n && g < 6; g++) {
		size_t last = b->end[g] - 1;
		/* The group's last chunk renamed (its cut moves) or removed. */
		snprintf(name, sizeof(name), "%s0", b->v[last].name);
		if (strchr(name, '~') == NULL) {
			n = edit(v, repo, b, last, name, NBASE + 1, NULL);
			reused += check_reuse(repo, b, v, n);
		}
		n = edit(v, repo, b, last, NULL, NBASE + 1, NULL);
		reused += check_reuse(repo, b, v, n);
		/* A chunk inserted right after the group. */
		snprintf(name, sizeof(name), "%s1", b->v[last].name);
		if (strchr(name, '~') == NULL) {
			const char *const one[] = { name, NULL };
			n = edit(v, repo, b, NBASE + 1, NULL, last + 1, one);
			reused += check_reuse(repo, b, v, n);
		}
	}
	CHECK(reused > 0);
	/* Cut names: removing one of the run renumbers every later one, across subtrees. */
	for (i = 400; i < 600; i += 37) {
		n = edit(v, repo, b, i, NULL, NBASE + 1, NULL);
		check_reuse(repo, b, v, n);
	}
	/* Appended after the last chunk: the last subtree may have ended with the table. */
	n = edit(v, repo, b, NBASE + 1, NULL, NBASE, tail);
	check_reuse(repo, b, v, n);
	/* Shrunk to 256 chunks or fewer: one level again, reused subtrees read back. */
	n = 0;
	for (i = 0; i < NBASE; i++)
		if (i < b->end[0] || i >= NBASE - 20)
			v[n++] = b->v[i];
	if (n <= TH_ROWS_FLAT_MAX)
		check_reuse(repo, b, v, n);
	th_tree_list_dispose(&b->top);
	free(b);
	free(v);
	th_repo_free(repo);
	t_rmdir(dir);
}

int main(void)
{
	th_error err;

	CHECK_OK(th_repo_global_init(&err), &err);
	RUN(test_tree_writer_reuse);
	RUN(test_two_level_incremental);
	th_repo_global_shutdown();
	TH_TEST_END();
}
