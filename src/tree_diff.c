/* tree_diff.c: the differences between two commit trees, table by table and row by row (see
 * th_tree_diff in include/tablehub/diff.h); the row diff of one table is src/diff.c.
 *
 * A table whose tree id is equal on both sides is skipped unread; a changed one is compared with
 * the streaming row diff, which reads only the chunks that differ, so a one-row change to a table
 * of a million rows costs a few chunk reads. Tables whose schema changed are compared by column
 * name: a row is modified when some column's value differs, a missing column counting as NULL, so
 * adding a column of NULLs modifies no row, and dropping a column that held a value modifies it.
 * When the key itself changed, rows cannot be matched, and the table is listed as all its old
 * rows removed, then all its new rows added (phase 1). The walk hands out values (th_table_diff,
 * th_diff_row); what to make of them (the API's JSON, the CLI's lines) is the caller's. A caller
 * that wants one page can seek into a table (chunks before the position stay unread) and stop a
 * table's rows early (TH_DIFF_NEXT_TABLE): the pull request diff (src/pulls.c) does both.
 */
#include <stdlib.h>
#include <string.h>

#include "tablehub/diff.h"
#include "tablehub/merge.h"

const char *th_table_change_name(th_table_change c)
{
	switch (c) {
	case TH_TABLE_ADDED:
		return "added";
	case TH_TABLE_DROPPED:
		return "dropped";
	case TH_TABLE_MODIFIED:
		return "modified";
	}
	return "";
}

const char *th_change_kind_name(th_change_kind k)
{
	switch (k) {
	case TH_CHANGE_ADDED:
		return "added";
	case TH_CHANGE_MODIFIED:
		return "modified";
	case TH_CHANGE_REMOVED:
		return "removed";
	}
	return "";
}

th_change_kind th_change_kind_parse(const char *s)
{
	if (s == NULL)
		return 0;
	if (strcmp(s, "added") == 0)
		return TH_CHANGE_ADDED;
	if (strcmp(s, "modified") == 0)
		return TH_CHANGE_MODIFIED;
	if (strcmp(s, "removed") == 0)
		return TH_CHANGE_REMOVED;
	return 0;
}

/* --- the tree diff walk ----------------------------------------------------------------------- */

typedef struct table_walk {
	th_repo *repo;
	const th_diff_visitor *v;
	th_table_diff td;
	const th_schema *fs, *ts; /* from/to schemas (either may be NULL) */
	int *to_from;             /* to column i -> from column index or -1 */
	unsigned char *from_kept; /* from column j also in to */
	unsigned char *changed;   /* to column i changed (a modified row) */
	unsigned char *dropped;   /* from column j dropped while it held a value (a modified row) */
	th_cells before, after;
	th_buf key;
} table_walk;

static int cell_eq(const th_cell *x, const th_cell *y)
{
	if (x == NULL || x->is_null)
		return y == NULL || y->is_null;
	if (y == NULL || y->is_null)
		return 0;
	return x->len == y->len && memcmp(x->s, y->s, x->len) == 0;
}

/* Count the cells a modified row changed (by column name) and mark them in w->changed and
 * w->dropped. */
static uint64_t count_changed_cells(table_walk *w)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < w->ts->ncols; i++) {
		int j = w->to_from[i];
		const th_cell *b = j >= 0 ? &w->before.c[j] : NULL;

		w->changed[i] = !cell_eq(b, &w->after.c[i]);
		n += w->changed[i];
	}
	for (i = 0; i < w->fs->ncols; i++) {
		w->dropped[i] = !w->from_kept[i] && !w->before.c[i].is_null;
		n += w->dropped[i];
	}
	return n;
}

static int walk_changes(table_walk *w, th_diff_iter *it, int phase, const th_schema *key_schema,
                        th_error *err)
{
	th_diff_change ch;
	int rc, error;

	while ((rc = th_diff_iter_next(it, &ch, err)) > 0) {
		const th_row_change *c = &ch.c;
		th_diff_row r;
		int need_decode = !w->v->summary_only || c->kind == TH_CHANGE_MODIFIED;

		memset(&r, 0, sizeof(r));
		r.kind = c->kind;
		r.count = c->count;
		r.rawkey = c->key;
		r.rawkeylen = c->keylen;
		r.phase = phase;
		if (need_decode) {
			if (c->old_line && (error = th_row_decode(&w->before, w->fs, c->old_line,
			                                          c->old_len, err)) < 0)
				return error;
			if (c->new_line && (error = th_row_decode(&w->after, w->ts, c->new_line,
			                                          c->new_len, err)) < 0)
				return error;
			r.before = c->old_line ? &w->before : NULL;
			r.after = c->new_line ? &w->after : NULL;
		}
		if (c->kind == TH_CHANGE_MODIFIED) {
			r.cells_modified = count_changed_cells(w);
			if (r.cells_modified == 0)
				continue; /* equal under the two schemas */
			r.changed = w->changed;
			r.dropped = w->dropped;
			w->td.rows_modified++;
			w->td.cells_modified += r.cells_modified;
		} else if (c->kind == TH_CHANGE_ADDED) {
			w->td.rows_added += c->count;
		} else {
			w->td.rows_removed += c->count;
		}
		if (w->v->summary_only || w->v->row == NULL)
			continue;
		th_buf_clear(&w->key);
		if ((error = th_key_format(&w->key, key_schema, r.after ? r.after->c : r.before->c,
		                           err)) < 0)
			return error;
		r.key = w->key.ptr ? w->key.ptr : "";
		if ((error = w->v->row(w->v->payload, &w->td, &r, err)) != 0)
			return error;
	}
	return rc;
}

static int walk_rows(table_walk *w, const th_schema *s1, const th_oid *r1, const th_schema *s2,
                     const th_oid *r2, int phase, th_error *err)
{
	const th_diff_visitor *v = w->v;
	th_diff_iter *it = NULL;
	int error;

	if (v->seek_table && phase < v->seek_phase && strcmp(v->seek_table, w->td.name) == 0)
		return TH_OK;
	if ((error = th_diff_iter_new(&it, w->repo, s1, r1, s2, r2, err)) < 0)
		return error;
	if (v->seek_table && v->seek_key && phase == v->seek_phase &&
	    strcmp(v->seek_table, w->td.name) == 0)
		error = th_diff_iter_seek(it, v->seek_key, v->seek_keylen, err);
	if (error == TH_OK)
		error = walk_changes(w, it, phase, r2 ? s2 : s1, err);
	th_diff_iter_free(it);
	return error;
}

static int diff_table(th_repo *repo, const th_oid *from_root, const th_oid *to_root,
                      const char *name, const th_diff_visitor *v, th_error *err)
{
	th_table tf = TH_TABLE_INIT, tt = TH_TABLE_INIT;
	int hf = 0, ht = 0, error = TH_OK;
	table_walk w;
	size_t i;

	memset(&w, 0, sizeof(w));
	if (from_root && !th_oid_is_zero(from_root)) {
		error = th_table_load(&tf, repo, from_root, name, err);
		if (error == TH_ENOTFOUND)
			th_error_clear(err);
		else if (error < 0)
			goto cleanup;
		else
			hf = 1;
	}
	if (to_root && !th_oid_is_zero(to_root)) {
		error = th_table_load(&tt, repo, to_root, name, err);
		if (error == TH_ENOTFOUND)
			th_error_clear(err);
		else if (error < 0)
			goto cleanup;
		else
			ht = 1;
	}
	error = TH_OK;
	if ((!hf && !ht) || (hf && ht && th_oid_equal(&tf.table_tree, &tt.table_tree)))
		goto cleanup;
	if (hf && ht && th_oid_equal(&tf.rows, &tt.rows) && th_schema_equal(&tf.schema, &tt.schema))
		goto cleanup; /* only the recorded row count's text differs */

	w.repo = repo;
	w.v = v;
	w.td.name = name;
	w.td.change = !hf ? TH_TABLE_ADDED : !ht ? TH_TABLE_DROPPED : TH_TABLE_MODIFIED;
	w.fs = w.td.from_schema = hf ? &tf.schema : NULL;
	w.ts = w.td.to_schema = ht ? &tt.schema : NULL;
	if (hf && ht) {
		w.td.schema_changed = !th_schema_equal(&tf.schema, &tt.schema);
		w.td.key_changed = !th_schema_same_key(&tf.schema, &tt.schema);
		w.to_from = calloc(tt.schema.ncols + 1, sizeof(*w.to_from));
		w.changed = calloc(tt.schema.ncols + 1, 1);
		w.from_kept = calloc(tf.schema.ncols + 1, 1);
		w.dropped = calloc(tf.schema.ncols + 1, 1);
		if (w.to_from == NULL || w.changed == NULL || w.from_kept == NULL ||
		    w.dropped == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		for (i = 0; i < tt.schema.ncols; i++) {
			w.to_from[i] = th_schema_find(&tf.schema, tt.schema.cols[i].name);
			if (w.to_from[i] >= 0)
				w.from_kept[w.to_from[i]] = 1;
		}
	}
	if (v->table_begin && (error = v->table_begin(v->payload, &w.td, err)) != 0) {
		if (error != TH_DIFF_NEXT_TABLE)
			goto cleanup;
	} else if (!hf)
		error = walk_rows(&w, &tt.schema, NULL, &tt.schema, &tt.rows, 0, err);
	else if (!ht)
		error = walk_rows(&w, &tf.schema, &tf.rows, &tf.schema, NULL, 0, err);
	else if (!w.td.key_changed)
		error = walk_rows(&w, &tf.schema, &tf.rows, &tt.schema, &tt.rows, 0, err);
	else if ((error = walk_rows(&w, &tf.schema, &tf.rows, &tf.schema, NULL, 0, err)) == 0)
		error = walk_rows(&w, &tt.schema, NULL, &tt.schema, &tt.rows, 1, err);
	if (error != 0 && error != TH_DIFF_NEXT_TABLE)
		goto cleanup;
	error = TH_OK;
	if (v->table_end)
		error = v->table_end(v->payload, &w.td, err);

cleanup:
	free(w.to_from);
	free(w.changed);
	free(w.from_kept);
	free(w.dropped);
	th_cells_dispose(&w.before);
	th_cells_dispose(&w.after);
	th_buf_dispose(&w.key);
	th_table_dispose(&tf);
	th_table_dispose(&tt);
	return error;
}

static int add_name(char ***names, size_t *n, size_t *cap, const char *name, th_error *err)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp((*names)[i], name) == 0)
			return TH_OK;
	if (*n + 1 >= *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		char **p = realloc(*names, ncap * sizeof(*p));
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		*names = p;
		*cap = ncap;
	}
	if (((*names)[*n] = strdup(name)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	(*n)++;
	return TH_OK;
}

static int names_of(char ***names, size_t *n, size_t *cap, th_repo *repo, const th_oid *root,
                    th_error *err)
{
	char **v = NULL;
	size_t i;
	int error;

	if (root == NULL || th_oid_is_zero(root))
		return TH_OK;
	if ((error = th_table_names(&v, repo, root, err)) < 0)
		return error;
	for (i = 0; v && v[i] && error == TH_OK; i++)
		error = add_name(names, n, cap, v[i], err);
	th_strv_free(v);
	return error;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int th_tree_diff(th_repo *repo, const th_oid *from_root, const th_oid *to_root,
                 const char *only_table, const th_diff_visitor *v, th_error *err)
{
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	int error = TH_OK;

	if (from_root && to_root && th_oid_equal(from_root, to_root))
		return TH_OK;
	if (only_table) {
		error = add_name(&names, &n, &cap, only_table, err);
	} else if ((error = names_of(&names, &n, &cap, repo, from_root, err)) == 0 &&
	           (error = names_of(&names, &n, &cap, repo, to_root, err)) == 0 && n > 1) {
		qsort(names, n, sizeof(*names), str_cmp);
	}
	for (i = 0; i < n && error == 0; i++)
		error = diff_table(repo, from_root, to_root, names[i], v, err);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return error;
}
