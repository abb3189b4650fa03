/* pulls.c: a pull request's diff and its merge operation (see include/tablehub/pulls.h).
 *
 * The diff walks the tables of two commit trees. A table whose tree id is equal on both sides is
 * skipped unread; a changed one is compared with the streaming row diff (src/diff.c), which reads
 * only the chunks that differ, so a one-row change to a table of a million rows costs a few chunk
 * reads. Tables whose schema changed are compared by column name: a row is modified when some
 * column's value differs, a missing column counting as NULL, so adding a column of NULLs modifies
 * no row. When the key itself changed, rows cannot be matched, and the table is listed as all its
 * old rows removed, then all its new rows added.
 *
 * Paging: the API lists rows in (table, phase, key) order; a page token is the hex of the last row
 * listed (table name, NUL, phase byte, key bytes), and the next page lists the rows after it. The
 * summary counts need the whole diff anyway, and the diff costs what the change costs, so each page
 * walks it again rather than keeping state on the server.
 *
 * The merge: the heads of both branches are merged over their merge base (src/merge.c), the result
 * is written as a commit with both heads as parents, and the target branch moves by compare-and-
 * swap; if another writer moved it meanwhile, the merge is recomputed on the new head.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tablehub/ids.h"
#include "tablehub/datadir.h"
#include "tablehub/hash.h"
#include "tablehub/log.h"
#include "tablehub/pulls.h"

#define MERGE_MAX_ATTEMPTS 100
#define RECOVER_LOG_LIMIT 1000 /* commits searched for a merge an earlier attempt made */
#define DEFAULT_PAGE_SIZE 200

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
	unsigned char *changed;
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

/* Count the cells a modified row changed (by column name) and mark them in w->changed. */
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
	for (i = 0; i < w->fs->ncols; i++)
		if (!w->from_kept[i] && !w->before.c[i].is_null)
			n++;
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
	th_diff_iter *it = NULL;
	int error;

	if ((error = th_diff_iter_new(&it, w->repo, s1, r1, s2, r2, err)) < 0)
		return error;
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
		if (w.to_from == NULL || w.changed == NULL || w.from_kept == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		for (i = 0; i < tt.schema.ncols; i++) {
			w.to_from[i] = th_schema_find(&tf.schema, tt.schema.cols[i].name);
			if (w.to_from[i] >= 0)
				w.from_kept[w.to_from[i]] = 1;
		}
	}
	if (v->table_begin && (error = v->table_begin(v->payload, &w.td, err)) != 0)
		goto cleanup;
	if (!hf)
		error = walk_rows(&w, &tt.schema, NULL, &tt.schema, &tt.rows, 0, err);
	else if (!ht)
		error = walk_rows(&w, &tf.schema, &tf.rows, &tf.schema, NULL, 0, err);
	else if (!w.td.key_changed)
		error = walk_rows(&w, &tf.schema, &tf.rows, &tt.schema, &tt.rows, 0, err);
	else if ((error = walk_rows(&w, &tf.schema, &tf.rows, &tf.schema, NULL, 0, err)) == 0)
		error = walk_rows(&w, &tt.schema, NULL, &tt.schema, &tt.rows, 1, err);
	if (error != 0)
		goto cleanup;
	if (v->table_end)
		error = v->table_end(v->payload, &w.td, err);

cleanup:
	free(w.to_from);
	free(w.changed);
	free(w.from_kept);
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

/* --- the JSON of a diff ----------------------------------------------------------------------- */

typedef struct json_diff {
	th_buf tables, rows;
	size_t ntables, nrows, page_size;
	unsigned kinds;
	/* The position after which rows are listed (from the page token). */
	int have_pos;
	th_buf pos_table, pos_key;
	int pos_phase;
	/* The last row listed, and whether another one followed (then it is the next token). */
	th_buf last_table, last_key;
	int last_phase, more;
} json_diff;

static int put_cells_obj(th_buf *b, const th_schema *s, const th_cells *c, th_error *err)
{
	size_t i;
	int error;

	if (c == NULL)
		return th_buf_puts(b, "null", err);
	if ((error = th_buf_putc(b, '{', err)) < 0)
		return error;
	for (i = 0; i < s->ncols; i++) {
		if ((i && (error = th_buf_putc(b, ',', err)) < 0) ||
		    (error = th_buf_put_json_cstr(b, s->cols[i].name, err)) < 0 ||
		    (error = th_buf_putc(b, ':', err)) < 0)
			return error;
		if (c->c[i].is_null)
			error = th_buf_puts(b, "null", err);
		else
			error = th_buf_put_json_string(b, c->c[i].s, c->c[i].len, err);
		if (error < 0)
			return error;
	}
	return th_buf_putc(b, '}', err);
}

static int put_key_names(th_buf *b, const th_schema *s, th_error *err)
{
	size_t i;
	int error;

	if (s == NULL)
		return th_buf_puts(b, "null", err);
	if ((error = th_buf_putc(b, '[', err)) < 0)
		return error;
	for (i = 0; i < s->npk; i++)
		if ((i && (error = th_buf_putc(b, ',', err)) < 0) ||
		    (error = th_buf_put_json_cstr(b, s->cols[s->pk[i]].name, err)) < 0)
			return error;
	return th_buf_putc(b, ']', err);
}

/* Columns of `a` not in `b`, as a JSON array. */
static int put_missing_cols(th_buf *out, const th_schema *a, const th_schema *b, th_error *err)
{
	size_t i, n = 0;
	int error;

	if ((error = th_buf_putc(out, '[', err)) < 0)
		return error;
	for (i = 0; a && i < a->ncols; i++) {
		if (b && th_schema_find(b, a->cols[i].name) >= 0)
			continue;
		if ((n++ && (error = th_buf_putc(out, ',', err)) < 0) ||
		    (error = th_buf_put_json_cstr(out, a->cols[i].name, err)) < 0)
			return error;
	}
	return th_buf_putc(out, ']', err);
}

static int put_retyped(th_buf *out, const th_schema *f, const th_schema *t, th_error *err)
{
	size_t i, n = 0;
	int error;

	if ((error = th_buf_putc(out, '[', err)) < 0)
		return error;
	for (i = 0; f && t && i < t->ncols; i++) {
		int j = th_schema_find(f, t->cols[i].name);

		if (j < 0 || f->cols[j].type == t->cols[i].type)
			continue;
		if ((n++ && (error = th_buf_putc(out, ',', err)) < 0) ||
		    (error = th_buf_puts(out, "{\"column_name\":", err)) < 0 ||
		    (error = th_buf_put_json_cstr(out, t->cols[i].name, err)) < 0 ||
		    (error = th_buf_printf(out, err, ",\"from_type\":\"%s\",\"to_type\":\"%s\"}",
		                           th_type_name(f->cols[j].type),
		                           th_type_name(t->cols[i].type))) < 0)
			return error;
	}
	return th_buf_putc(out, ']', err);
}

static int json_table_end(void *payload, const th_table_diff *t, th_error *err)
{
	json_diff *j = payload;
	th_buf *b = &j->tables;
	int error;

	if ((j->ntables++ && (error = th_buf_putc(b, ',', err)) < 0) ||
	    (error = th_buf_puts(b, "{\"table_name\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(b, t->name, err)) < 0 ||
	    (error = th_buf_printf(b, err,
	                           ",\"diff_type\":\"%s\",\"schema_change\":%s,"
	                           "\"key_changed\":%s,\"columns_added\":",
	                           th_table_change_name(t->change),
	                           t->schema_changed ? "true" : "false",
	                           t->key_changed ? "true" : "false")) < 0 ||
	    (error = put_missing_cols(b, t->change == TH_TABLE_MODIFIED ? t->to_schema : NULL,
	                              t->from_schema, err)) < 0 ||
	    (error = th_buf_puts(b, ",\"columns_dropped\":", err)) < 0 ||
	    (error = put_missing_cols(b, t->change == TH_TABLE_MODIFIED ? t->from_schema : NULL,
	                              t->to_schema, err)) < 0 ||
	    (error = th_buf_puts(b, ",\"columns_retyped\":", err)) < 0 ||
	    (error = put_retyped(b, t->from_schema, t->to_schema, err)) < 0 ||
	    (error = th_buf_puts(b, ",\"from_primary_key\":", err)) < 0 ||
	    (error = put_key_names(b, t->from_schema, err)) < 0 ||
	    (error = th_buf_puts(b, ",\"to_primary_key\":", err)) < 0 ||
	    (error = put_key_names(b, t->to_schema, err)) < 0 ||
	    (error = th_buf_printf(b, err,
	                           ",\"rows_added\":%llu,\"rows_modified\":%llu,"
	                           "\"rows_removed\":%llu,\"cells_modified\":%llu}",
	                           (unsigned long long)t->rows_added,
	                           (unsigned long long)t->rows_modified,
	                           (unsigned long long)t->rows_removed,
	                           (unsigned long long)t->cells_modified)) < 0)
		return error;
	return TH_OK;
}

/* Is the row at (table, phase, key) after the page token's position? */
static int after_pos(const json_diff *j, const char *table, int phase, const unsigned char *key,
                     size_t keylen)
{
	int c;

	if (!j->have_pos)
		return 1;
	if ((c = strcmp(table, j->pos_table.ptr ? j->pos_table.ptr : "")) != 0)
		return c > 0;
	if (phase != j->pos_phase)
		return phase > j->pos_phase;
	return th_key_cmp(key, keylen, (const unsigned char *)j->pos_key.ptr, j->pos_key.size) > 0;
}

static int json_row(void *payload, const th_table_diff *t, const th_diff_row *r, th_error *err)
{
	json_diff *j = payload;
	th_buf *b = &j->rows;
	size_t i, n = 0;
	int error;

	if (j->kinds && !(j->kinds & (1u << r->kind)))
		return 0;
	if (!after_pos(j, t->name, r->phase, r->rawkey, r->rawkeylen))
		return 0;
	if (j->nrows >= j->page_size) {
		j->more = 1;
		return 0;
	}
	if ((j->nrows++ && (error = th_buf_putc(b, ',', err)) < 0) ||
	    (error = th_buf_puts(b, "{\"table_name\":", err)) < 0 ||
	    (error = th_buf_put_json_cstr(b, t->name, err)) < 0 ||
	    (error = th_buf_printf(
	             b, err, ",\"diff_type\":\"%s\",\"key\":", th_change_kind_name(r->kind))) < 0 ||
	    (error = th_buf_put_json_cstr(b, r->key, err)) < 0)
		return error;
	if (t->to_schema ? t->to_schema->npk == 0 : t->from_schema->npk == 0)
		if ((error = th_buf_printf(b, err, ",\"count\":%llu",
		                           (unsigned long long)r->count)) < 0)
			return error;
	if ((error = th_buf_puts(b, ",\"before\":", err)) < 0 ||
	    (error = put_cells_obj(b, t->from_schema, r->before, err)) < 0 ||
	    (error = th_buf_puts(b, ",\"after\":", err)) < 0 ||
	    (error = put_cells_obj(b, t->to_schema, r->after, err)) < 0)
		return error;
	if (r->kind == TH_CHANGE_MODIFIED) {
		if ((error = th_buf_puts(b, ",\"changed_columns\":[", err)) < 0)
			return error;
		for (i = 0; i < t->to_schema->ncols; i++) {
			if (!r->changed[i])
				continue;
			if ((n++ && (error = th_buf_putc(b, ',', err)) < 0) ||
			    (error = th_buf_put_json_cstr(b, t->to_schema->cols[i].name, err)) < 0)
				return error;
		}
		/* Dropped columns that held a value changed too. */
		for (i = 0; i < t->from_schema->ncols; i++) {
			if (th_schema_find(t->to_schema, t->from_schema->cols[i].name) >= 0 ||
			    r->before->c[i].is_null)
				continue;
			if ((n++ && (error = th_buf_putc(b, ',', err)) < 0) ||
			    (error = th_buf_put_json_cstr(b, t->from_schema->cols[i].name, err)) <
			            0)
				return error;
		}
		if ((error = th_buf_putc(b, ']', err)) < 0)
			return error;
	}
	if ((error = th_buf_putc(b, '}', err)) < 0 ||
	    (error = th_buf_set(&j->last_table, t->name, strlen(t->name), err)) < 0 ||
	    (error = th_buf_set(&j->last_key, r->rawkey, r->rawkeylen, err)) < 0)
		return error;
	j->last_phase = r->phase;
	return 0;
}

static int hexdigit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* token = hex(table NUL phase key) */
static int token_parse(json_diff *j, const char *tok, th_error *err)
{
	size_t len = strlen(tok), i, n;
	th_buf raw = TH_BUF_INIT;
	const char *nul;
	int error = TH_OK;

	if (len % 2 || len < 6)
		goto bad;
	for (i = 0; i < len; i += 2) {
		int hi = hexdigit(tok[i]), lo = hexdigit(tok[i + 1]);
		if (hi < 0 || lo < 0)
			goto bad;
		if ((error = th_buf_putc(&raw, (char)(hi << 4 | lo), err)) < 0)
			goto cleanup;
	}
	if ((nul = memchr(raw.ptr, '\0', raw.size)) == NULL)
		goto bad;
	n = (size_t)(nul - raw.ptr);
	if (n == 0 || n + 2 > raw.size || (raw.ptr[n + 1] != 0 && raw.ptr[n + 1] != 1))
		goto bad;
	if ((error = th_buf_set(&j->pos_table, raw.ptr, n, err)) < 0 ||
	    (error = th_buf_set(&j->pos_key, raw.ptr + n + 2, raw.size - n - 2, err)) < 0)
		goto cleanup;
	j->pos_phase = raw.ptr[n + 1];
	j->have_pos = 1;
	goto cleanup;
bad:
	error = th_error_set(err, TH_EINVALID, "invalid pageToken");
cleanup:
	th_buf_dispose(&raw);
	return error;
}

static int token_write(th_buf *out, const json_diff *j, th_error *err)
{
	size_t i;
	int error;
	char hex[3];

	for (i = 0; i < j->last_table.size; i++) {
		snprintf(hex, sizeof(hex), "%02x", (unsigned char)j->last_table.ptr[i]);
		if ((error = th_buf_put(out, hex, 2, err)) < 0)
			return error;
	}
	if ((error = th_buf_printf(out, err, "000%d", j->last_phase)) < 0)
		return error;
	for (i = 0; i < j->last_key.size; i++) {
		snprintf(hex, sizeof(hex), "%02x", (unsigned char)j->last_key.ptr[i]);
		if ((error = th_buf_put(out, hex, 2, err)) < 0)
			return error;
	}
	return TH_OK;
}

static int commit_tree(th_oid *out, th_repo *repo, const th_oid *commit, th_error *err)
{
	th_commit_info ci;
	int error;

	memset(out, 0, sizeof(*out));
	if (commit == NULL || th_oid_is_zero(commit))
		return TH_OK;
	memset(&ci, 0, sizeof(ci));
	if ((error = th_repo_commit_read(&ci, repo, commit, err)) < 0)
		return error;
	*out = ci.tree;
	th_commit_info_dispose(&ci);
	return TH_OK;
}

int th_pull_diff_json(th_buf *out, th_repo *repo, const th_oid *from_commit,
                      const th_oid *to_commit, const th_pull_diff_opts *opts, th_error *err)
{
	th_diff_visitor v;
	json_diff j;
	th_oid ft, tt;
	char hf[41] = "", ht[41] = "";
	int error;

	memset(&j, 0, sizeof(j));
	j.page_size = opts && opts->page_size ? opts->page_size : DEFAULT_PAGE_SIZE;
	j.kinds = opts ? opts->kinds : 0;
	if (opts && opts->page_token && *opts->page_token &&
	    (error = token_parse(&j, opts->page_token, err)) < 0)
		goto cleanup;
	if ((error = commit_tree(&ft, repo, from_commit, err)) < 0 ||
	    (error = commit_tree(&tt, repo, to_commit, err)) < 0)
		goto cleanup;
	memset(&v, 0, sizeof(v));
	v.row = json_row;
	v.table_end = json_table_end;
	v.payload = &j;
	if ((error = th_tree_diff(repo, &ft, &tt, opts ? opts->table : NULL, &v, err)) != 0)
		goto cleanup;
	if (from_commit && !th_oid_is_zero(from_commit))
		th_oid_fmt(hf, from_commit);
	if (to_commit && !th_oid_is_zero(to_commit))
		th_oid_fmt(ht, to_commit);
	if ((error = th_buf_printf(out, err, "\"from_commit_id\":\"%s\",\"to_commit_id\":\"%s\"",
	                           hf, ht)) < 0 ||
	    (error = th_buf_puts(out, ",\"tables\":[", err)) < 0 ||
	    (error = th_buf_put(out, j.tables.ptr, j.tables.size, err)) < 0 ||
	    (error = th_buf_puts(out, "],\"rows\":[", err)) < 0 ||
	    (error = th_buf_put(out, j.rows.ptr, j.rows.size, err)) < 0 ||
	    (error = th_buf_puts(out, "],\"next_page_token\":\"", err)) < 0 ||
	    (j.more && (error = token_write(out, &j, err)) < 0) ||
	    (error = th_buf_putc(out, '"', err)) < 0)
		goto cleanup;
cleanup:
	th_buf_dispose(&j.tables);
	th_buf_dispose(&j.rows);
	th_buf_dispose(&j.pos_table);
	th_buf_dispose(&j.pos_key);
	th_buf_dispose(&j.last_table);
	th_buf_dispose(&j.last_key);
	return error;
}

static int branch_head(th_oid *out, th_repo *repo, const char *branch, th_error *err)
{
	int error = th_repo_branch_get(out, repo, branch, err);

	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", branch);
	return error;
}

static int merge_base(th_oid *out, th_repo *repo, const th_oid *a, const th_oid *b, th_error *err)
{
	int error = th_repo_merge_base(out, repo, a, b, err);

	if (error == TH_ENOTFOUND) {
		th_error_clear(err);
		memset(out, 0, sizeof(*out));
		return TH_OK;
	}
	return error;
}

int th_pull_diff_commits(th_oid *base_out, th_oid *head_out, th_repo *repo, const char *from_branch,
                         const char *to_branch, th_error *err)
{
	th_oid from, to, base;
	int error;

	if ((error = branch_head(&from, repo, from_branch, err)) < 0 ||
	    (error = branch_head(&to, repo, to_branch, err)) < 0 ||
	    (error = merge_base(&base, repo, &to, &from, err)) < 0)
		return error;
	*base_out = base;
	*head_out = from;
	return TH_OK;
}

/* --- merging ---------------------------------------------------------------------------------- */

static void conflicts_reset(th_conflicts *c)
{
	size_t limit;

	if (c == NULL)
		return;
	limit = c->limit;
	th_conflicts_dispose(c);
	c->limit = limit;
}

/* A short pause between attempts, growing with them and jittered, so racing mergers spread out. */
static void backoff(int attempt)
{
	struct timespec ts;
	long us;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	us = 200L * (attempt < 10 ? attempt : 10) + (long)((unsigned long)ts.tv_nsec / 1000 % 700);
	ts.tv_sec = 0;
	ts.tv_nsec = us * 1000;
	nanosleep(&ts, NULL);
}

/* Is the message `got` the message `want` (git may end it with a newline)? */
static int message_equal(const char *got, const char *want)
{
	size_t n = strlen(want);

	return strncmp(got, want, n) == 0 && (got[n] == '\0' || strcmp(got + n, "\n") == 0);
}

struct find_merge {
	const th_oid *theirs;
	const char *message;
	th_oid found;
};

static int find_merge_cb(const th_commit_info *ci, void *payload)
{
	struct find_merge *f = payload;

	if (ci->nparents != 2 || !th_oid_equal(&ci->parents[1], f->theirs) ||
	    !message_equal(ci->message ? ci->message : "", f->message))
		return 0;
	f->found = ci->id;
	return 1;
}

/* The merge commit with `message` and second parent `theirs` in the history of `head` (the last
 * RECOVER_LOG_LIMIT commits) into *out: 1 if found, 0 if not, or an error code. */
static int find_merge(th_oid *out, th_repo *repo, const th_oid *head, const th_oid *theirs,
                      const char *message, th_error *err)
{
	struct find_merge f;
	int rc;

	memset(&f, 0, sizeof(f));
	f.theirs = theirs;
	f.message = message;
	if ((rc = th_repo_log(repo, head, RECOVER_LOG_LIMIT, find_merge_cb, &f, err)) <= 0)
		return rc;
	*out = f.found;
	return 1;
}

int th_pull_merge_done(th_pull_merge_result *out, th_repo *repo, const char *to_branch,
                       const th_oid *commit, th_error *err)
{
	th_pull_merge_result res;
	th_commit_info ci;
	th_oid to, on, base, bt, ot, tt, tree;
	char hex[41];
	int error;

	memset(&res, 0, sizeof(res));
	memset(&ci, 0, sizeof(ci));
	th_oid_fmt(hex, commit);
	if ((error = branch_head(&to, repo, to_branch, err)) < 0 ||
	    (error = th_repo_commit_read(&ci, repo, commit, err)) < 0)
		goto cleanup;
	if (ci.nparents != 2) {
		error = th_error_set(err, TH_ENOTFOUND, "commit %.12s is not a merge commit", hex);
		goto cleanup;
	}
	if ((error = merge_base(&on, repo, &to, commit, err)) < 0)
		goto cleanup;
	if (!th_oid_equal(&on, commit)) {
		error = th_error_set(err, TH_ENOTFOUND, "merge commit %.12s is not on branch '%s'",
		                     hex, to_branch);
		goto cleanup;
	}
	/* Merge the parents again for the counts: the same objects, already stored. */
	if ((error = merge_base(&base, repo, &ci.parents[0], &ci.parents[1], err)) < 0 ||
	    (error = commit_tree(&bt, repo, &base, err)) < 0 ||
	    (error = commit_tree(&ot, repo, &ci.parents[0], err)) < 0 ||
	    (error = commit_tree(&tt, repo, &ci.parents[1], err)) < 0 ||
	    (error = th_merge_trees(&tree, &res.stats, NULL, repo,
	                            th_oid_is_zero(&base) ? NULL : &bt, &ot, &tt, 0, err)) < 0)
		goto cleanup;
	res.commit = *commit;
	res.ours = ci.parents[0];
	res.theirs = ci.parents[1];
	res.attempts = 1;
	res.recovered = 1;
	*out = res;
cleanup:
	th_commit_info_dispose(&ci);
	return error;
}

static int merge_once(th_pull_merge_result *out, th_conflicts *conflicts, th_repo *repo,
                      const char *from_branch, const char *to_branch, const char *message,
                      const char *author, const char *email, th_error *err)
{
	th_oid ours, theirs, base, base_tree, ours_tree, theirs_tree, tree, commit, parents[2];
	int error;

	if ((error = branch_head(&ours, repo, to_branch, err)) < 0 ||
	    (error = branch_head(&theirs, repo, from_branch, err)) < 0 ||
	    (error = merge_base(&base, repo, &ours, &theirs, err)) < 0)
		return error;
	out->ours = ours;
	out->theirs = theirs;
	if (!th_oid_is_zero(&base) && th_oid_equal(&base, &theirs)) {
		/* Contained already: by this very merge, made by an attempt that died before it
		 * said so? Then that commit is the result. */
		if ((error = find_merge(&commit, repo, &ours, &theirs, message, err)) < 0)
			return error;
		if (error == 1)
			return th_pull_merge_done(out, repo, to_branch, &commit, err);
		out->up_to_date = 1;
		out->commit = ours;
		return TH_OK;
	}
	if ((error = commit_tree(&base_tree, repo, &base, err)) < 0 ||
	    (error = commit_tree(&ours_tree, repo, &ours, err)) < 0 ||
	    (error = commit_tree(&theirs_tree, repo, &theirs, err)) < 0)
		return error;
	if ((error = th_merge_trees(&tree, &out->stats, conflicts, repo,
	                            th_oid_is_zero(&base) ? NULL : &base_tree, &ours_tree,
	                            &theirs_tree, 0, err)) < 0)
		return error;
	parents[0] = ours;
	parents[1] = theirs;
	if ((error = th_repo_commit_write(&commit, repo, &tree, parents, 2, author, email, message,
	                                  err)) < 0)
		return error;
	if ((error = th_repo_branch_cas(repo, to_branch, &commit, &ours, message, err)) < 0)
		return error;
	out->commit = commit;
	return TH_OK;
}

int th_pull_merge(th_pull_merge_result *out, th_conflicts *conflicts, th_repo *repo,
                  const char *from_branch, const char *to_branch, int64_t pull_id,
                  const char *author, const char *email, th_error *err)
{
	th_pull_merge_result res;
	th_conflicts local = TH_CONFLICTS_INIT;
	th_buf msg = TH_BUF_INIT, mail = TH_BUF_INIT;
	int error, attempt;

	if (conflicts == NULL)
		conflicts = &local;
	if ((error = th_buf_printf(&msg, err, "Merge pull request #%lld from %s",
	                           (long long)pull_id, from_branch)) < 0)
		goto cleanup;
	if (email == NULL) {
		if ((error = th_buf_printf(&mail, err, "%s@tablehub.local", author)) < 0)
			goto cleanup;
		email = mail.ptr;
	}
	for (attempt = 1; attempt <= MERGE_MAX_ATTEMPTS; attempt++) {
		memset(&res, 0, sizeof(res));
		res.attempts = attempt;
		conflicts_reset(conflicts);
		error = merge_once(&res, conflicts, repo, from_branch, to_branch, msg.ptr, author,
		                   email, err);
		/* TH_ECONFLICT without conflicts: the target moved between reading its head and
		 * the compare-and-swap. Recompute on the new head. */
		if (error != TH_ECONFLICT || conflicts->total > 0)
			break;
		TH_LOG(TH_LOG_DEBUG, "merge of '%s' into '%s': target moved, attempt %d",
		       from_branch, to_branch, attempt);
		th_error_clear(err);
		backoff(attempt);
	}
	if (attempt > MERGE_MAX_ATTEMPTS)
		error = th_error_set(err, TH_EBUSY,
		                     "branch '%s' kept moving: merge gave up after %d attempts",
		                     to_branch, MERGE_MAX_ATTEMPTS);
	if (error == TH_OK)
		*out = res;
cleanup:
	th_conflicts_dispose(&local);
	th_buf_dispose(&msg);
	th_buf_dispose(&mail);
	return error;
}

int th_pull_conflicts(th_conflicts *out, th_repo *repo, const char *from_branch,
                      const char *to_branch, th_error *err)
{
	th_oid ours, theirs, base, bt, ot, tt;
	int error;

	if ((error = branch_head(&ours, repo, to_branch, err)) < 0 ||
	    (error = branch_head(&theirs, repo, from_branch, err)) < 0 ||
	    (error = merge_base(&base, repo, &ours, &theirs, err)) < 0)
		return error;
	if (!th_oid_is_zero(&base) && th_oid_equal(&base, &theirs))
		return TH_OK;
	if ((error = commit_tree(&bt, repo, &base, err)) < 0 ||
	    (error = commit_tree(&ot, repo, &ours, err)) < 0 ||
	    (error = commit_tree(&tt, repo, &theirs, err)) < 0)
		return error;
	error = th_merge_trees(NULL, NULL, out, repo, th_oid_is_zero(&base) ? NULL : &bt, &ot, &tt,
	                       1, err);
	if (error == TH_ECONFLICT) {
		th_error_clear(err);
		error = TH_OK;
	}
	return error;
}
