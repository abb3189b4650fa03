/* merge.c: three-way, cell-wise merge of tables and commit trees (see include/tablehub/merge.h).
 *
 * Table by table: a table changed on one side only is taken from that side whole (one tree entry,
 * nothing read); a table changed on both sides is merged row by row. The row merge joins two
 * streaming diffs, base->ours and base->theirs, by key: a key changed on theirs only becomes an
 * edit of ours, a key changed on both is merged cell by cell (a cell changed on one side takes
 * that side's value; changed alike on both is fine; changed differently is a conflict). The edits
 * come out in key order and go straight into th_table_apply, which re-chunks only the regions they
 * touch: memory holds one chunk per diff side plus the chunk being rewritten, never the table.
 *
 * Saved queries (queries/, saved.c) are merged file by file after the tables.
 *
 * Schemas: a table's schema may change on one side only if the other side left the table's rows
 * alone (the changed side is then taken whole); a change of nullability alone is reconciled by
 * allowing NULL where either side does; any other schema change on both sides is a conflict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/merge.h"
#include "tablehub/saved.h"

#define CONFLICTS_DEFAULT_LIMIT 1000

/* --- conflict lists --------------------------------------------------------------------------- */

static void conflict_dispose(th_conflict *c)
{
	free(c->table);
	free(c->key);
	free(c->column);
	free(c->base);
	free(c->ours);
	free(c->theirs);
	free(c->reason);
}

void th_conflicts_dispose(th_conflicts *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		conflict_dispose(&c->v[i]);
	free(c->v);
	c->v = NULL;
	c->n = c->cap = 0;
	c->total = 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Record a conflict (the strings are copied). Past the list's limit only `total` grows. */
static int conflict_add(th_conflicts *list, const char *table, const char *key, const char *column,
                        const char *base, const char *ours, const char *theirs, const char *reason,
                        th_error *err)
{
	size_t limit;
	th_conflict c;

	if (list == NULL)
		return TH_OK;
	list->total++;
	limit = list->limit ? list->limit : CONFLICTS_DEFAULT_LIMIT;
	if (list->n >= limit)
		return TH_OK;
	if (list->n == list->cap) {
		size_t ncap = list->cap ? list->cap * 2 : 16;
		th_conflict *p = realloc(list->v, ncap * sizeof(*p));
		if (p == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		list->v = p;
		list->cap = ncap;
	}
	c.table = dup_or_null(table);
	c.key = dup_or_null(key);
	c.column = dup_or_null(column);
	c.base = strdup(base ? base : "null");
	c.ours = strdup(ours ? ours : "null");
	c.theirs = strdup(theirs ? theirs : "null");
	c.reason = dup_or_null(reason);
	if (c.table == NULL || (key && c.key == NULL) || (column && c.column == NULL) ||
	    c.base == NULL || c.ours == NULL || c.theirs == NULL || (reason && c.reason == NULL)) {
		conflict_dispose(&c);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	list->v[list->n++] = c;
	return TH_OK;
}

int th_conflicts_to_json(th_buf *out, const th_conflicts *c, th_error *err)
{
	size_t i;
	int error = TH_OK;

	if ((error = th_buf_putc(out, '[', err)) < 0)
		return error;
	for (i = 0; i < c->n && error == TH_OK; i++) {
		const th_conflict *x = &c->v[i];

		if ((i && (error = th_buf_putc(out, ',', err)) < 0) ||
		    (error = th_buf_puts(out, "{\"table\":", err)) < 0 ||
		    (error = th_buf_put_json_cstr(out, x->table, err)) < 0 ||
		    (error = th_buf_puts(out, ",\"key\":", err)) < 0 ||
		    (error = th_buf_put_json_cstr(out, x->key, err)) < 0 ||
		    (error = th_buf_puts(out, ",\"column\":", err)) < 0 ||
		    (error = th_buf_put_json_cstr(out, x->column, err)) < 0 ||
		    (error = th_buf_printf(out, err, ",\"base\":%s,\"ours\":%s,\"theirs\":%s",
		                           x->base, x->ours, x->theirs)) < 0 ||
		    (error = th_buf_puts(out, ",\"reason\":", err)) < 0 ||
		    (error = th_buf_put_json_cstr(out, x->reason, err)) < 0 ||
		    (error = th_buf_putc(out, '}', err)) < 0)
			return error;
	}
	return th_buf_putc(out, ']', err);
}

/* --- JSON forms of cells and rows for conflict reports ------------------------------------------
 */

static int cell_json(th_buf *out, const th_cell *c, th_error *err)
{
	if (c->is_null)
		return th_buf_puts(out, "null", err);
	return th_buf_put_json_string(out, c->s, c->len, err);
}

/* A row line as {"col":"text"|null,...}; `null` for NULL line. */
static int row_json(th_buf *out, th_cells *scratch, const th_schema *s, const char *line,
                    size_t len, th_error *err)
{
	size_t i;
	int error;

	if (line == NULL)
		return th_buf_puts(out, "null", err);
	if ((error = th_row_decode(scratch, s, line, len, err)) < 0 ||
	    (error = th_buf_putc(out, '{', err)) < 0)
		return error;
	for (i = 0; i < s->ncols; i++) {
		const char *name = s->cols[i].name;

		if ((i && (error = th_buf_putc(out, ',', err)) < 0) ||
		    (error = th_buf_put_json_string(out, name, strlen(name), err)) < 0 ||
		    (error = th_buf_putc(out, ':', err)) < 0 ||
		    (error = cell_json(out, &scratch->c[i], err)) < 0)
			return error;
	}
	return th_buf_putc(out, '}', err);
}

/* --- the row merge ---------------------------------------------------------------------------- */

typedef struct row_merge {
	th_repo *repo;
	const char *table;
	const th_schema *schema; /* the merged schema: same columns as base, ours and theirs */
	int keyless;
	th_diff_iter *dours, *dtheirs;
	th_diff_change co, ct;
	int ho, ht; /* 1: co/ct hold a change; 0: that diff ended; -1: fetch the next */
	th_conflicts *conflicts;
	uint64_t nconflicts; /* found in this table */
	th_merge_stats *stats;
	th_cells cb, cours, ctheirs, scratch;
	th_cell *merged; /* schema->ncols cells borrowed from the three decodes */
	th_buf line, fmt, vb, vo, vt;
} row_merge;

static int change_key_cmp(const th_row_change *x, const th_row_change *y)
{
	return th_key_cmp(x->key, x->keylen, y->key, y->keylen);
}

static int cell_eq(const th_cell *x, const th_cell *y)
{
	if (x->is_null || y->is_null)
		return x->is_null && y->is_null;
	return x->len == y->len && memcmp(x->s, y->s, x->len) == 0;
}

/* Format the key of a row line (any version of the row) into m->fmt. */
static int format_key(row_merge *m, const char *line, size_t len, th_error *err)
{
	int error;

	th_buf_clear(&m->fmt);
	if ((error = th_row_decode(&m->scratch, m->schema, line, len, err)) < 0)
		return error;
	return th_key_format(&m->fmt, m->schema, m->scratch.c, err);
}

/* A whole-row conflict: the row as each side has it. */
static int row_conflict(row_merge *m, const char *keyline, size_t keylen, const th_row_change *b,
                        const th_row_change *o, const th_row_change *t, const char *reason,
                        th_error *err)
{
	int error;

	m->nconflicts++;
	if ((error = format_key(m, keyline, keylen, err)) < 0)
		return error;
	th_buf_clear(&m->vb);
	th_buf_clear(&m->vo);
	th_buf_clear(&m->vt);
	if ((error = row_json(&m->vb, &m->scratch, m->schema, b ? b->old_line : NULL,
	                      b ? b->old_len : 0, err)) < 0 ||
	    (error = row_json(&m->vo, &m->scratch, m->schema, o->new_line, o->new_len, err)) < 0 ||
	    (error = row_json(&m->vt, &m->scratch, m->schema, t->new_line, t->new_len, err)) < 0)
		return error;
	return conflict_add(m->conflicts, m->table, m->fmt.ptr, NULL, m->vb.ptr, m->vo.ptr,
	                    m->vt.ptr, reason, err);
}

/* Merge one row changed on both sides, cell by cell. `o` and `t` are the two changes of one key
 * (modified/modified, or added/added when `b_line` is NULL). Sets *edit_line to the merged line in
 * m->line when it differs from ours, NULL when ours already is the result or on conflict. */
static int merge_cells(row_merge *m, const char *b_line, size_t b_len, const th_row_change *o,
                       const th_row_change *t, const char **edit_line, th_error *err)
{
	const th_schema *s = m->schema;
	size_t i;
	int error, from_theirs = 0, from_ours = 0, conflict = 0;

	*edit_line = NULL;
	if ((b_line && (error = th_row_decode(&m->cb, s, b_line, b_len, err)) < 0) ||
	    (error = th_row_decode(&m->cours, s, o->new_line, o->new_len, err)) < 0 ||
	    (error = th_row_decode(&m->ctheirs, s, t->new_line, t->new_len, err)) < 0)
		return error;
	for (i = 0; i < s->ncols; i++) {
		const th_cell *cb = b_line ? &m->cb.c[i] : NULL, *co = &m->cours.c[i],
		              *ct = &m->ctheirs.c[i];

		if (cell_eq(co, ct)) {
			m->merged[i] = *co;
		} else if (cb && cell_eq(co, cb)) {
			m->merged[i] = *ct;
			from_theirs = 1;
		} else if (cb && cell_eq(ct, cb)) {
			m->merged[i] = *co;
			from_ours = 1;
		} else {
			if (!conflict) {
				th_buf_clear(&m->fmt);
				if ((error = th_key_format(&m->fmt, s, m->cours.c, err)) < 0)
					return error;
			}
			conflict = 1;
			m->nconflicts++;
			th_buf_clear(&m->vb);
			th_buf_clear(&m->vo);
			th_buf_clear(&m->vt);
			if ((error = cb ? cell_json(&m->vb, cb, err)
			                : th_buf_puts(&m->vb, "null", err)) < 0 ||
			    (error = cell_json(&m->vo, co, err)) < 0 ||
			    (error = cell_json(&m->vt, ct, err)) < 0 ||
			    (error = conflict_add(
			             m->conflicts, m->table, m->fmt.ptr, s->cols[i].name, m->vb.ptr,
			             m->vo.ptr, m->vt.ptr,
			             cb ? "both sides changed the cell"
			                : "both sides added the row with different values",
			             err)) < 0)
				return error;
		}
	}
	if (conflict || !from_theirs)
		return TH_OK;
	if (from_ours && m->stats)
		m->stats->cells_merged++;
	th_buf_clear(&m->line);
	if ((error = th_row_encode(&m->line, s, m->merged, err)) < 0)
		return error;
	*edit_line = m->line.ptr;
	return TH_OK;
}

static int fetch(th_diff_iter *it, th_diff_change *c, int *have, th_error *err)
{
	int r;

	if (*have != -1)
		return TH_OK;
	if ((r = th_diff_iter_next(it, c, err)) < 0)
		return r;
	*have = r;
	return TH_OK;
}

/* th_edit_next_fn: the next edit of ours, in key order. */
static int row_merge_next(void *payload, th_edit *out, th_error *err)
{
	row_merge *m = payload;
	int error;

	for (;;) {
		const th_row_change *o, *t;
		int c;

		if ((error = fetch(m->dours, &m->co, &m->ho, err)) < 0 ||
		    (error = fetch(m->dtheirs, &m->ct, &m->ht, err)) < 0)
			return error;
		if (!m->ho && !m->ht)
			return 0;
		o = &m->co.c;
		t = &m->ct.c;
		c = !m->ho ? 1 : !m->ht ? -1 : change_key_cmp(o, t);
		if (c < 0) { /* changed on ours only: ours already holds it */
			m->ho = -1;
			continue;
		}
		memset(out, 0, sizeof(*out));
		out->key = t->key;
		out->keylen = t->keylen;
		out->count = 1;
		if (c > 0) { /* changed on theirs only: apply it to ours */
			m->ht = -1;
			if (m->keyless) {
				out->count = m->ct.new_count;
				out->line = m->ct.new_count ? t->new_line : NULL;
				out->linelen = m->ct.new_count ? t->new_len : 0;
			} else {
				out->line = t->new_line;
				out->linelen = t->new_line ? t->new_len : 0;
			}
			if (m->stats)
				m->stats->rows_changed++;
			return 1;
		}
		/* Changed on both sides. */
		m->ho = m->ht = -1;
		if (m->keyless) {
			int64_t base = (int64_t)m->co.old_count;
			int64_t dov = (int64_t)m->co.new_count - base;
			int64_t dth = (int64_t)m->ct.new_count - base;
			int64_t merged;
			const char *line = t->new_line ? t->new_line : t->old_line;
			size_t len = t->new_line ? t->new_len : t->old_len;

			if (dov == dth)
				continue;
			if ((dov < 0) != (dth < 0)) {
				if ((error = row_conflict(m, line, len, NULL, o, t,
				                          "one side added copies of the row, the "
				                          "other removed some",
				                          err)) < 0)
					return error;
				continue;
			}
			merged = base + dov + dth;
			if (merged < 0)
				merged = 0;
			out->count = (uint64_t)merged;
			out->line = merged ? line : NULL;
			out->linelen = merged ? len : 0;
			if (m->stats)
				m->stats->rows_changed++;
			return 1;
		}
		if (o->kind == TH_CHANGE_REMOVED && t->kind == TH_CHANGE_REMOVED)
			continue;
		if (o->kind == TH_CHANGE_REMOVED || t->kind == TH_CHANGE_REMOVED) {
			const th_row_change *b = o->kind == TH_CHANGE_REMOVED ? o : t;

			if ((error = row_conflict(m, b->old_line, b->old_len, b, o, t,
			                          o->kind == TH_CHANGE_REMOVED
			                                  ? "deleted on ours, changed on theirs"
			                                  : "changed on ours, deleted on theirs",
			                          err)) < 0)
				return error;
			continue;
		}
		if (o->new_len == t->new_len && memcmp(o->new_line, t->new_line, o->new_len) == 0)
			continue;
		{
			const char *line;
			const char *bl = o->kind == TH_CHANGE_MODIFIED ? o->old_line : NULL;
			size_t bn = o->kind == TH_CHANGE_MODIFIED ? o->old_len : 0;

			if ((error = merge_cells(m, bl, bn, o, t, &line, err)) < 0)
				return error;
			if (line == NULL || m->nconflicts)
				continue;
			out->key = o->key;
			out->keylen = o->keylen;
			out->line = line;
			out->linelen = m->line.size;
			if (m->stats)
				m->stats->rows_changed++;
			return 1;
		}
	}
}

static void row_merge_dispose(row_merge *m)
{
	th_diff_iter_free(m->dours);
	th_diff_iter_free(m->dtheirs);
	th_cells_dispose(&m->cb);
	th_cells_dispose(&m->cours);
	th_cells_dispose(&m->ctheirs);
	th_cells_dispose(&m->scratch);
	free(m->merged);
	th_buf_dispose(&m->line);
	th_buf_dispose(&m->fmt);
	th_buf_dispose(&m->vb);
	th_buf_dispose(&m->vo);
	th_buf_dispose(&m->vt);
}

/* --- tables ---------------------------------------------------------------------------------- */

typedef struct side_table {
	th_table t;
	int present;
} side_table;

typedef struct merge_ctx {
	th_repo *repo;
	th_oid root; /* the result so far: ours with merged tables */
	th_merge_stats *stats;
	th_conflicts *conflicts;
	uint64_t nconflicts;
	int dry_run;
} merge_ctx;

static int load_side(side_table *s, th_repo *repo, const th_oid *root, const char *name,
                     th_error *err)
{
	th_table init = TH_TABLE_INIT;
	int error;

	s->t = init;
	s->present = 0;
	if (root == NULL || th_oid_is_zero(root))
		return TH_OK;
	error = th_table_load(&s->t, repo, root, name, err);
	if (error == TH_ENOTFOUND) {
		th_error_clear(err);
		s->t = init;
		return TH_OK;
	}
	if (error < 0)
		return error;
	s->present = 1;
	return TH_OK;
}

static int same_table(const side_table *x, const side_table *y)
{
	if (!x->present || !y->present)
		return x->present == y->present;
	return th_oid_equal(&x->t.table_tree, &y->t.table_tree);
}

/* Same columns (names, types) and key: nullability may differ. */
static int schema_compatible(const th_schema *a, const th_schema *b)
{
	size_t i;

	if (a->ncols != b->ncols || a->npk != b->npk)
		return 0;
	for (i = 0; i < a->ncols; i++)
		if (a->cols[i].type != b->cols[i].type ||
		    strcmp(a->cols[i].name, b->cols[i].name) != 0)
			return 0;
	for (i = 0; i < a->npk; i++)
		if (a->pk[i] != b->pk[i])
			return 0;
	return 1;
}

static int rows_equal(const th_table *a, const th_table *b)
{
	return th_oid_equal(&a->rows, &b->rows);
}

static int table_conflict(merge_ctx *ctx, const char *name, const side_table *b,
                          const side_table *o, const side_table *t, const char *reason,
                          th_error *err)
{
	th_buf vb = TH_BUF_INIT, vo = TH_BUF_INIT, vt = TH_BUF_INIT;
	int error;

	ctx->nconflicts++;
	if ((error = b->present ? th_schema_to_json(&vb, &b->t.schema, err)
	                        : th_buf_puts(&vb, "null", err)) < 0 ||
	    (error = o->present ? th_schema_to_json(&vo, &o->t.schema, err)
	                        : th_buf_puts(&vo, "null", err)) < 0 ||
	    (error = t->present ? th_schema_to_json(&vt, &t->t.schema, err)
	                        : th_buf_puts(&vt, "null", err)) < 0)
		goto cleanup;
	error = conflict_add(ctx->conflicts, name, NULL, NULL, vb.ptr, vo.ptr, vt.ptr, reason, err);
cleanup:
	th_buf_dispose(&vb);
	th_buf_dispose(&vo);
	th_buf_dispose(&vt);
	return error;
}

static int set_table_tree(merge_ctx *ctx, const char *name, const th_oid *tree, th_error *err)
{
	char path[128];

	snprintf(path, sizeof(path), "tables/%s", name);
	if (ctx->stats)
		ctx->stats->tables_changed++;
	if (ctx->dry_run || ctx->nconflicts)
		return TH_OK;
	return th_repo_tree_update(&ctx->root, ctx->repo, &ctx->root, path, tree, 1, err);
}

/* Merge the rows of a table changed on both sides with compatible schemas. */
static int merge_rows(merge_ctx *ctx, const char *name, const side_table *b, const side_table *o,
                      const side_table *t, th_error *err)
{
	row_merge m;
	th_schema schema = TH_SCHEMA_INIT;
	const th_schema *bs = b->present ? &b->t.schema : &o->t.schema;
	const th_oid *brows = b->present ? &b->t.rows : NULL;
	size_t i;
	int error, schema_changed = 0;

	memset(&m, 0, sizeof(m));
	if ((error = th_schema_copy(&schema, &o->t.schema, err)) < 0)
		return error;
	for (i = 0; i < schema.ncols; i++) {
		if (t->t.schema.cols[i].nullable && !schema.cols[i].nullable) {
			schema.cols[i].nullable = 1;
			schema_changed = 1;
		}
	}
	m.repo = ctx->repo;
	m.table = name;
	m.schema = &schema;
	m.keyless = schema.npk == 0;
	m.ho = m.ht = -1;
	m.conflicts = ctx->conflicts;
	m.stats = ctx->stats;
	if ((m.merged = calloc(schema.ncols ? schema.ncols : 1, sizeof(*m.merged))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = th_diff_iter_new(&m.dours, ctx->repo, bs, brows, &o->t.schema, &o->t.rows,
	                              err)) < 0 ||
	    (error = th_diff_iter_new(&m.dtheirs, ctx->repo, bs, brows, &t->t.schema, &t->t.rows,
	                              err)) < 0)
		goto cleanup;

	if (ctx->dry_run || ctx->nconflicts) {
		/* Only look for conflicts: drain the edits without writing. */
		th_edit e;
		while ((error = row_merge_next(&m, &e, err)) > 0)
			;
		if (error < 0)
			goto cleanup;
		ctx->nconflicts += m.nconflicts;
		if (!m.nconflicts && ctx->stats && schema_changed)
			ctx->stats->tables_changed++;
	} else {
		th_apply_stats st;
		th_oid rows;
		uint64_t before = ctx->stats ? ctx->stats->rows_changed : 0;
		int touched;

		memset(&st, 0, sizeof(st));
		if ((error = th_table_apply(&rows, &st, ctx->repo, &schema, &o->t.rows,
		                            row_merge_next, &m, NULL, err)) < 0)
			goto cleanup;
		ctx->nconflicts += m.nconflicts;
		touched = schema_changed || !th_oid_equal(&rows, &o->t.rows) ||
		          (ctx->stats && ctx->stats->rows_changed != before);
		if (m.nconflicts || !touched)
			goto cleanup;
		if (ctx->stats)
			ctx->stats->tables_changed++;
		error = th_table_store(&ctx->root, ctx->repo, &ctx->root, name, &schema, &rows,
		                       o->t.row_count + st.added - st.removed, err);
	}
cleanup:
	row_merge_dispose(&m);
	th_schema_dispose(&schema);
	return error;
}

static int merge_table(merge_ctx *ctx, const th_oid *base, const th_oid *ours, const th_oid *theirs,
                       const char *name, th_error *err)
{
	side_table b, o, t;
	int error;

	memset(&b, 0, sizeof(b));
	memset(&o, 0, sizeof(o));
	memset(&t, 0, sizeof(t));
	if ((error = load_side(&b, ctx->repo, base, name, err)) < 0 ||
	    (error = load_side(&o, ctx->repo, ours, name, err)) < 0 ||
	    (error = load_side(&t, ctx->repo, theirs, name, err)) < 0)
		goto cleanup;

	if (same_table(&o, &t) || same_table(&b, &t))
		goto cleanup; /* ours already is the result */
	if (same_table(&b, &o)) {
		error = set_table_tree(ctx, name, t.present ? &t.t.table_tree : NULL, err);
		goto cleanup;
	}
	/* Changed on both sides. */
	if (!o.present || !t.present) {
		error = table_conflict(ctx, name, &b, &o, &t,
		                       !o.present ? "dropped on ours, changed on theirs"
		                                  : "changed on ours, dropped on theirs",
		                       err);
		goto cleanup;
	}
	if (schema_compatible(&o.t.schema, &t.t.schema)) {
		if (!b.present || schema_compatible(&b.t.schema, &o.t.schema))
			error = merge_rows(ctx, name, &b, &o, &t, err);
		else
			error = table_conflict(ctx, name, &b, &o, &t,
			                       "both sides changed the schema and the rows", err);
		goto cleanup;
	}
	if (!b.present) {
		error = table_conflict(ctx, name, &b, &o, &t,
		                       "added on both sides with different schemas", err);
		goto cleanup;
	}
	if (schema_compatible(&b.t.schema, &o.t.schema)) {
		/* Theirs changed the schema: fine if ours left the rows alone. */
		if (rows_equal(&b.t, &o.t))
			error = set_table_tree(ctx, name, &t.t.table_tree, err);
		else
			error = table_conflict(ctx, name, &b, &o, &t,
			                       "incompatible schema change: theirs changed the "
			                       "schema, ours changed rows",
			                       err);
		goto cleanup;
	}
	if (schema_compatible(&b.t.schema, &t.t.schema)) {
		if (!rows_equal(&b.t, &t.t))
			error = table_conflict(ctx, name, &b, &o, &t,
			                       "incompatible schema change: ours changed the "
			                       "schema, theirs changed rows",
			                       err);
		goto cleanup;
	}
	error = table_conflict(ctx, name, &b, &o, &t, "both sides changed the schema differently",
	                       err);
cleanup:
	th_table_dispose(&b.t);
	th_table_dispose(&o.t);
	th_table_dispose(&t.t);
	return error;
}

/* Append the names of `v` not yet in the sorted list (*names, *n). */
static int add_names(char ***names, size_t *n, size_t *cap, char **v, th_error *err)
{
	size_t i, j;

	for (i = 0; v && v[i]; i++) {
		int found = 0;
		for (j = 0; j < *n && !found; j++)
			found = strcmp((*names)[j], v[i]) == 0;
		if (found)
			continue;
		if (*n + 1 >= *cap) {
			size_t ncap = *cap ? *cap * 2 : 16;
			char **p = realloc(*names, ncap * sizeof(*p));
			if (p == NULL)
				return th_error_set(err, TH_ENOMEM, "out of memory");
			*names = p;
			*cap = ncap;
		}
		if (((*names)[*n] = strdup(v[i])) == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
		(*n)++;
		(*names)[*n] = NULL;
	}
	return TH_OK;
}

static int name_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int root_names(char ***out, th_repo *repo, const th_oid *root, th_error *err)
{
	int error;

	*out = NULL;
	if (root == NULL || th_oid_is_zero(root))
		return TH_OK;
	error = th_table_names(out, repo, root, err);
	if (error == TH_ENOTFOUND) {
		th_error_clear(err);
		*out = NULL;
		return TH_OK;
	}
	return error;
}

/* A saved query changed differently on both sides (saved.c). */
static int query_conflict(void *payload, const char *path, th_error *err)
{
	merge_ctx *ctx = payload;

	ctx->nconflicts++;
	return conflict_add(ctx->conflicts, path, NULL, NULL, NULL, NULL, NULL,
	                    "the saved query was changed differently on both sides", err);
}

int th_merge_trees(th_oid *out, th_merge_stats *stats, th_conflicts *conflicts, th_repo *repo,
                   const th_oid *base, const th_oid *ours, const th_oid *theirs, int dry_run,
                   th_error *err)
{
	char **nb = NULL, **no = NULL, **nt = NULL, **names = NULL;
	size_t n = 0, cap = 0, i;
	merge_ctx ctx;
	int error;

	memset(&ctx, 0, sizeof(ctx));
	ctx.repo = repo;
	ctx.stats = stats;
	ctx.conflicts = conflicts;
	ctx.dry_run = dry_run;
	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (ours && !th_oid_is_zero(ours))
		ctx.root = *ours;
	else
		th_repo_empty_tree(&ctx.root);

	if ((error = root_names(&nb, repo, base, err)) < 0 ||
	    (error = root_names(&no, repo, ours, err)) < 0 ||
	    (error = root_names(&nt, repo, theirs, err)) < 0 ||
	    (error = add_names(&names, &n, &cap, nb, err)) < 0 ||
	    (error = add_names(&names, &n, &cap, no, err)) < 0 ||
	    (error = add_names(&names, &n, &cap, nt, err)) < 0)
		goto cleanup;
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++)
		if ((error = merge_table(&ctx, base, ours, theirs, names[i], err)) < 0)
			goto cleanup;
	if ((error = th_saved_merge(&ctx.root, repo, base, ours, theirs, query_conflict, &ctx,
	                            err)) < 0)
		goto cleanup;
	if (ctx.nconflicts) {
		error = th_error_set(err, TH_ECONFLICT, "merge conflict: %llu conflicting change%s",
		                     (unsigned long long)ctx.nconflicts,
		                     ctx.nconflicts == 1 ? "" : "s");
		goto cleanup;
	}
	if (!dry_run)
		*out = ctx.root;
cleanup:
	th_strv_free(nb);
	th_strv_free(no);
	th_strv_free(nt);
	if (names) {
		for (i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return error;
}

int th_merge_commits(th_oid *tree_out, th_oid *base_out, th_merge_stats *stats,
                     th_conflicts *conflicts, th_repo *repo, const th_oid *ours,
                     const th_oid *theirs, int dry_run, th_error *err)
{
	th_commit_info co, ct, cb;
	th_oid base;
	int error, have_base = 0;

	memset(&co, 0, sizeof(co));
	memset(&ct, 0, sizeof(ct));
	memset(&cb, 0, sizeof(cb));
	memset(&base, 0, sizeof(base));
	error = th_repo_merge_base(&base, repo, ours, theirs, err);
	if (error == TH_ENOTFOUND) {
		th_error_clear(err);
		memset(&base, 0, sizeof(base));
	} else if (error < 0) {
		return error;
	} else {
		have_base = 1;
	}
	if ((error = th_repo_commit_read(&co, repo, ours, err)) < 0 ||
	    (error = th_repo_commit_read(&ct, repo, theirs, err)) < 0 ||
	    (have_base && (error = th_repo_commit_read(&cb, repo, &base, err)) < 0))
		goto cleanup;
	if ((error = th_merge_trees(tree_out, stats, conflicts, repo, have_base ? &cb.tree : NULL,
	                            &co.tree, &ct.tree, dry_run, err)) < 0)
		goto cleanup;
	if (base_out)
		*base_out = base;
cleanup:
	th_commit_info_dispose(&co);
	th_commit_info_dispose(&cb);
	th_commit_info_dispose(&ct);
	return error;
}
