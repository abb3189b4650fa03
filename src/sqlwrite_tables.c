/* sqlwrite_tables.c: writing back to git the tables a SQL write's statements changed (see
 * include/tablehub/sqlwrite.h).
 *
 * DESIGN
 * - Recorded keys. For a keyed table whose changes the session recorded (th_sqls_changed), each
 *   recorded key gives an edit: the row that now has the key, or its deletion. The edits are
 *   sorted by the order-preserving key (src/sorter.c, bounded memory) and applied to the old rows
 *   tree with th_table__apply_ex, which re-chunks only where they fall: one changed row of a
 *   1,000,000-row table writes one chunk (two if it moves a boundary) and the trees above it.
 * - Whole tables. A table the statements created or altered, or a changed keyless table, is read
 *   whole from the session, sorted by key and walked beside its old rows: only rows that differ
 *   become edits, so unchanged chunks are kept as they were. When the columns changed so that old
 *   lines no longer decode (a column added, dropped or retyped), the table is written anew.
 * - Tables left out. A table of the commit that its snapshot left out (sqlcache.h: SQLite cannot
 *   hold it) was never seen by the statements and stays as it is; one they made under its name is
 *   refused rather than put in its place.
 * - Same values, same text. A number the statements did not change keeps its old text: a REAL
 *   written "1.50" comes back from SQLite as 1.5 (th_sqlwrite__resolve), so rows are only written
 *   where values changed.
 */
#include <stdlib.h>
#include <string.h>

#include "tablehub/merge.h"
#include "tablehub/sorter.h"
#include "chunk.h"
#include "sqlwrite_impl.h"

#define SORT_BUDGET (64u << 20)
#define PACK_EDITS 2048 /* edits past which new chunks go into one pack */

/* The edit stream of one table: records sorted by key, each 'S' + row line (set) or 'D' (delete),
 * optionally walked beside the old rows (`compare`), emitting only what differs. The resolver
 * comes first: th_table__apply_ex hands this struct to th_sqlwrite__resolve as its payload. */
typedef struct edits {
	th_sqlwrite__resolver res;
	const char *table;
	const th_schema *schema;
	th_sorter *sort;
	uint64_t records;
	int whole;   /* every row of the table was sorted, not only changed keys */
	int compare; /* walk the old rows, emitting only what differs */
	/* Walk old rows of another schema with the same key (remap): count what changed, and keep
	 * the old text of numbers that did not (old_col: the old column of each column, or -1). */
	int remap;
	const th_schema *old_schema;
	int *old_col;
	uint64_t added, modified, removed;
	th_row_iter *old; /* compare, remap: the old rows */
	th_row old_row;
	int old_have;
	th_buf key, line, okey;
	th_sqlwrite__row row; /* scratch for converting values */
	th_buf kbuf, lbuf;
} edits;

static void edits_dispose(edits *e)
{
	free(e->old_col);
	th_sorter_free(e->sort);
	th_row_iter_free(e->old);
	th_buf_dispose(&e->key);
	th_buf_dispose(&e->line);
	th_buf_dispose(&e->okey);
	th_buf_dispose(&e->kbuf);
	th_buf_dispose(&e->lbuf);
	th_cells_dispose(&e->res.a);
	th_cells_dispose(&e->res.b);
	th_sqlwrite__row_dispose(&e->row);
}

/* Sort the row in e->row (all cells set): key and 'S' + line. */
static int put_row(edits *e, th_error *err)
{
	int error;

	th_buf_clear(&e->kbuf);
	th_buf_clear(&e->lbuf);
	if ((error = th_row_key(&e->kbuf, e->schema, e->row.cells, err)) < 0 ||
	    (error = th_buf_putc(&e->lbuf, 'S', err)) < 0 ||
	    (error = th_row_encode(&e->lbuf, e->schema, e->row.cells, err)) < 0)
		return error;
	e->records++;
	return th_sorter_put(e->sort, e->kbuf.ptr, e->kbuf.size, e->lbuf.ptr, e->lbuf.size,
	                     e->records, err);
}

/* th_sqls_changed's callback: the row now, or the deletion of the recorded key. */
static int on_changed(void *payload, const th_sqlv *key, size_t nkey, const th_sqlv *row,
                      size_t ncols, th_error *err)
{
	edits *e = payload;
	int error;

	if (row != NULL) {
		if ((error = th_sqlwrite__cells(&e->row, e->schema, e->table, row, NULL, ncols,
		                                err)) < 0)
			return error;
		return put_row(e, err);
	}
	if ((error = th_sqlwrite__cells(&e->row, e->schema, e->table, key, e->schema->pk, nkey,
	                                err)) < 0)
		return error;
	th_buf_clear(&e->kbuf);
	if ((error = th_row_key(&e->kbuf, e->schema, e->row.cells, err)) < 0)
		return error;
	e->records++;
	return th_sorter_put(e->sort, e->kbuf.ptr, e->kbuf.size, "D", 1, e->records, err);
}

/* th_sqls_scan's callback: every row of a table read whole. */
static int on_scanned(void *payload, const th_sqlv *key, size_t nkey, const th_sqlv *row,
                      size_t ncols, th_error *err)
{
	edits *e = payload;
	int error;

	(void)key;
	(void)nkey;
	if ((error = th_sqlwrite__cells(&e->row, e->schema, e->table, row, NULL, ncols, err)) < 0)
		return error;
	return put_row(e, err);
}

/* Take the smallest sorted record into e->key / e->line, with the count of records of that key
 * (keyless copies; for a keyed table the last record of the key wins, a set over a delete).
 * Returns 1, 0 at the end, or an error. */
static int take_new(edits *e, uint64_t *count, th_error *err)
{
	th_sorter_rec r;
	int error;

	if (!th_sorter_peek(&r, e->sort))
		return 0;
	if ((error = th_buf_set(&e->key, r.key, r.keylen, err)) < 0 ||
	    (error = th_buf_set(&e->line, r.data, r.datalen, err)) < 0 ||
	    (error = th_sorter_pop(e->sort, err)) < 0)
		return error;
	*count = 1;
	while (th_sorter_peek(&r, e->sort) &&
	       th_key_cmp(r.key, r.keylen, (const unsigned char *)e->key.ptr, e->key.size) == 0) {
		if (e->schema->npk == 0) {
			(*count)++;
		} else if (e->whole) {
			/* SQLite holds them apart (1 and '1' in a column without a type) but the
			 * column's tablehub type does not. */
			return th_error_set(err, TH_EINVALID,
			                    "table '%s': two rows have the same primary key once "
			                    "their values are typed",
			                    e->table);
		} else if (((const char *)r.data)[0] == 'S' &&
		           (error = th_buf_set(&e->line, r.data, r.datalen, err)) < 0) {
			return error;
		}
		if ((error = th_sorter_pop(e->sort, err)) < 0)
			return error;
	}
	return 1;
}

/* The old rows of one key (keyless tables repeat a row): how many, the key and the line kept in
 * e->okey / e->res.a (decoded). */
static int take_old(edits *e, uint64_t *count, th_error *err)
{
	int error;

	if ((error = th_buf_set(&e->okey, e->old_row.key, e->old_row.keylen, err)) < 0 ||
	    (error = th_row_decode(&e->res.a, e->schema, e->old_row.line, e->old_row.linelen,
	                           err)) < 0)
		return error;
	*count = 0;
	while (e->old_have && th_key_cmp(e->old_row.key, e->old_row.keylen,
	                                 (const unsigned char *)e->okey.ptr, e->okey.size) == 0) {
		(*count)++;
		if ((error = th_row_iter_next(e->old, &e->old_row, err)) < 0)
			return error;
		e->old_have = error;
	}
	return TH_OK;
}

/* Remap: count old rows up to the new row in e->key / e->line (NULL: to the end), and give the
 * new row the old text of unchanged numbers. */
static int remap_old(edits *e, int at_end, th_error *err)
{
	const th_schema *s = e->schema, *os = e->old_schema;
	int c, error, changed;
	size_t j;

	while (e->old_have &&
	       (at_end || (c = th_key_cmp(e->old_row.key, e->old_row.keylen,
	                                  (const unsigned char *)e->key.ptr, e->key.size)) < 0)) {
		e->removed++;
		if ((error = th_row_iter_next(e->old, &e->old_row, err)) < 0)
			return error;
		e->old_have = error;
	}
	if (at_end)
		return TH_OK;
	if (!e->old_have || c > 0) {
		e->added++;
		return TH_OK;
	}
	if ((error = th_row_decode(&e->res.a, os, e->old_row.line, e->old_row.linelen, err)) < 0 ||
	    (error = th_row_decode(&e->res.b, s, e->line.ptr + 1, e->line.size - 1, err)) < 0)
		return error;
	changed = 0;
	for (j = 0; j < s->ncols; j++) {
		th_cell *n = &e->res.b.c[j];
		const th_cell *o = e->old_col[j] >= 0 ? &e->res.a.c[e->old_col[j]] : NULL;
		if (o == NULL || o->is_null || n->is_null) {
			changed |= o == NULL ? !n->is_null : o->is_null != n->is_null;
			continue;
		}
		if (os->cols[e->old_col[j]].type == s->cols[j].type &&
		    th_sqlwrite__cells_equal_one(s->cols[j].type, o, n))
			*n = *o;
		else
			changed = 1;
	}
	for (j = 0; j < os->ncols && !changed; j++) { /* a dropped column that held a value */
		size_t k;
		for (k = 0; k < s->ncols && e->old_col[k] != (int)j; k++)
			;
		changed = k == s->ncols && !e->res.a.c[j].is_null;
	}
	e->modified += changed;
	th_buf_clear(&e->lbuf);
	if ((error = th_buf_putc(&e->lbuf, 'S', err)) < 0 ||
	    (error = th_row_encode(&e->lbuf, s, e->res.b.c, err)) < 0 ||
	    (error = th_buf_set(&e->line, e->lbuf.ptr, e->lbuf.size, err)) < 0)
		return error;
	if ((error = th_row_iter_next(e->old, &e->old_row, err)) < 0)
		return error;
	e->old_have = error;
	return TH_OK;
}

static int next_edit(void *payload, th_edit *out, th_error *err)
{
	edits *e = payload;
	uint64_t nnew = 0, nold = 0;
	int have_new, error, c;

	for (;;) {
		th_sorter_rec r;

		have_new = th_sorter_peek(&r, e->sort);
		if (!e->compare || !e->old_have) {
			if (!have_new)
				return e->remap ? remap_old(e, 1, err) : 0;
			if ((error = take_new(e, &nnew, err)) < 0 ||
			    (e->remap && (error = remap_old(e, 0, err)) < 0))
				return error;
			break;
		}
		c = have_new ? th_key_cmp(r.key, r.keylen, e->old_row.key, e->old_row.keylen) : 1;
		if (c < 0) {
			if ((error = take_new(e, &nnew, err)) < 0)
				return error;
			break;
		}
		if (c > 0) { /* a row the table no longer has */
			if ((error = take_old(e, &nold, err)) < 0)
				return error;
			out->key = (const unsigned char *)e->okey.ptr;
			out->keylen = e->okey.size;
			out->line = NULL;
			out->linelen = 0;
			out->count = 0;
			return 1;
		}
		if ((error = take_new(e, &nnew, err)) < 0 || (error = take_old(e, &nold, err)) < 0)
			return error;
		if ((error = th_row_decode(&e->res.b, e->schema, e->line.ptr + 1, e->line.size - 1,
		                           err)) < 0)
			return error;
		if (nnew != nold || !th_sqlwrite__cells_equal(e->schema, e->res.a.c, e->res.b.c))
			break;
		/* the same row: no edit */
	}
	out->key = (const unsigned char *)e->key.ptr;
	out->keylen = e->key.size;
	if (e->line.ptr[0] == 'D') {
		out->line = NULL;
		out->linelen = 0;
		out->count = 0;
	} else {
		out->line = e->line.ptr + 1;
		out->linelen = e->line.size - 1;
		out->count = nnew;
	}
	return 1;
}

/* Apply the sorted edits to `base` (NULL: write the table anew) into *rows. */
static int apply(th_oid *rows, th_apply_stats *st, th_repo *repo, edits *e, const th_oid *base,
                 th_error *err)
{
	th_pack *pack = NULL;
	int error;

	if ((error = th_sorter_finish(e->sort, err)) < 0)
		return error;
	if (e->records > PACK_EDITS && (error = th_pack_new(&pack, repo, 1, err)) < 0)
		return error;
	e->res.schema = e->schema;
	return th_table__apply_ex(rows, st, repo, e->schema, base, next_edit, e,
	                          base != NULL ? th_sqlwrite__resolve : NULL, 0, pack, err);
}

static int edits_init(edits *e, const char *table, const th_schema *s, const char *tmpdir,
                      th_error *err)
{
	memset(e, 0, sizeof(*e));
	e->table = table;
	e->schema = s;
	return th_sorter_new(&e->sort, tmpdir, SORT_BUDGET, err);
}

/* A keyed table whose changed keys were recorded. */
static int write_recorded(th_oid *root, th_sqlwrite_result *res, th_repo *repo, th_sqls *sess,
                          const char *name, const th_table *old, const char *tmpdir, th_error *err)
{
	edits e;
	th_apply_stats st;
	th_oid rows;
	int error;

	if ((error = edits_init(&e, name, &old->schema, tmpdir, err)) < 0 ||
	    (error = th_sqls_changed(sess, name, on_changed, &e, err)) < 0 ||
	    (error = apply(&rows, &st, repo, &e, &old->rows, err)) < 0)
		goto cleanup;
	if (st.added + st.modified + st.removed == 0)
		goto cleanup; /* written, but to the same values */
	if ((error = th_table_store(root, repo, root, name, &old->schema, &rows,
	                            old->row_count + st.added - st.removed, err)) < 0)
		goto cleanup;
	error = th_sqlwrite__add_table(res, name, TH_SQLWRITE_MODIFIED, 0, st.added, st.modified,
	                               st.removed, err);
cleanup:
	edits_dispose(&e);
	return error;
}

/* The schema of a table read whole: the declared types, or inferred ones (a scan). */
typedef struct infer {
	th_schema *s;
	unsigned *mask;
} infer;

static int on_infer(void *payload, const th_sqlv *key, size_t nkey, const th_sqlv *row,
                    size_t ncols, th_error *err)
{
	infer *in = payload;
	size_t i;

	(void)key;
	(void)nkey;
	(void)err;
	for (i = 0; i < ncols && i < in->s->ncols; i++)
		in->mask[i] &= th_sqlwrite__classify(&row[i]);
	return TH_OK;
}

static int schema_of(th_schema *out, th_sqls *sess, const char *name, const th_sqls_table *info,
                     th_error *err)
{
	th_schema s = TH_SCHEMA_INIT;
	infer in = { &s, NULL };
	size_t i, j, untyped = 0;
	int error = TH_OK;

	if ((s.cols = calloc(info->ncols, sizeof(*s.cols))) == NULL ||
	    (s.pk = calloc(info->ncols, sizeof(*s.pk))) == NULL ||
	    (in.mask = calloc(info->ncols, sizeof(*in.mask))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < info->ncols; i++) {
		const th_sqls_column *c = &info->cols[i];
		if (!th_column_name_valid(c->name)) {
			error = th_error_set(err, TH_EINVALID,
			                     "table '%s': bad column name '%.64s' (1-256 bytes of "
			                     "UTF-8, no control characters)",
			                     name, c->name);
			goto cleanup;
		}
		if ((s.cols[i].name = strdup(c->name)) == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		s.ncols++;
		s.cols[i].type = th_sqlwrite__decl_type(c->decltype);
		s.cols[i].nullable = !c->notnull && c->pk == 0;
		in.mask[i] = TH_TYPEMASK_ALL;
		untyped += s.cols[i].type == 0;
		if (c->pk > 0)
			s.npk++;
	}
	for (i = 0; i < info->ncols; i++)
		for (j = 0; j < info->ncols; j++)
			if (info->cols[j].pk == (int)i + 1)
				s.pk[i] = j;
	if (untyped > 0 && (error = th_sqls_scan(sess, name, on_infer, &in, err)) < 0)
		goto cleanup;
	for (i = 0; i < s.ncols; i++)
		if (s.cols[i].type == 0)
			s.cols[i].type = th_type_pick(in.mask[i]);
	*out = s;
	memset(&s, 0, sizeof(s));
cleanup:
	free(in.mask);
	th_schema_dispose(&s);
	return error;
}

/* Remap: the old column of each new column, by name. */
static int map_columns(edits *e, const th_schema *old, th_error *err)
{
	size_t j;

	if ((e->old_col = calloc(e->schema->ncols + 1, sizeof(*e->old_col))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	e->old_schema = old;
	for (j = 0; j < e->schema->ncols; j++)
		e->old_col[j] = th_schema_find(old, e->schema->cols[j].name);
	return TH_OK;
}

/* Can rows stored under schema a be read under schema b (names aside)? */
static int lines_compatible(const th_schema *a, const th_schema *b)
{
	size_t i;

	if (a->ncols != b->ncols || a->npk != b->npk)
		return 0;
	for (i = 0; i < a->ncols; i++)
		if (a->cols[i].type != b->cols[i].type)
			return 0;
	for (i = 0; i < a->npk; i++)
		if (a->pk[i] != b->pk[i])
			return 0;
	return 1;
}

/* A table read whole: created, altered, or a changed keyless one. `old` is NULL when the base
 * commit has no such table. */
static int write_whole(th_oid *root, th_sqlwrite_result *res, th_repo *repo, th_sqls *sess,
                       const char *name, const th_sqls_table *info, const th_table *old,
                       const char *tmpdir, th_error *err)
{
	th_schema s = TH_SCHEMA_INIT;
	edits e;
	th_apply_stats st;
	th_oid rows;
	uint64_t count, added, removed;
	int error, same_lines, schema_changed;

	memset(&e, 0, sizeof(e));
	if ((error = schema_of(&s, sess, name, info, err)) < 0 ||
	    (error = edits_init(&e, name, &s, tmpdir, err)) < 0)
		goto cleanup;
	e.whole = 1;
	if ((error = th_sqls_scan(sess, name, on_scanned, &e, err)) < 0)
		goto cleanup;
	same_lines = old != NULL && lines_compatible(&old->schema, &s);
	schema_changed = old == NULL || !th_schema_equal(&old->schema, &s);
	e.compare = same_lines;
	e.remap = !same_lines && old != NULL && s.npk > 0 && th_schema_same_key(&old->schema, &s);
	if (e.remap && (error = map_columns(&e, &old->schema, err)) < 0)
		goto cleanup;
	if (e.compare || e.remap) {
		if ((error = th_row_iter_new(&e.old, repo, old, err)) < 0 ||
		    (error = th_row_iter_next(e.old, &e.old_row, err)) < 0)
			goto cleanup;
		e.old_have = error;
	}
	if ((error = apply(&rows, &st, repo, &e, same_lines ? &old->rows : NULL, err)) < 0)
		goto cleanup;
	if (same_lines) {
		added = st.added;
		removed = st.removed;
		count = old->row_count + st.added - st.removed;
	} else if (e.remap) {
		added = e.added;
		removed = e.removed;
		st.modified = e.modified;
		count = st.added;
	} else {
		added = st.added;
		removed = old ? old->row_count : 0;
		count = st.added;
		st.modified = 0;
	}
	if (old != NULL && !schema_changed && th_oid_equal(&rows, &old->rows))
		goto cleanup; /* read whole, found as it was */
	if ((error = th_table_store(root, repo, root, name, &s, &rows, count, err)) < 0)
		goto cleanup;
	error = th_sqlwrite__add_table(res, name, old ? TH_SQLWRITE_MODIFIED : TH_SQLWRITE_ADDED,
	                               schema_changed, added, st.modified, removed, err);
cleanup:
	edits_dispose(&e);
	th_schema_dispose(&s);
	return error;
}

static int in_list(char **v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return 1;
	return 0;
}

int th_sqlwrite__tables(th_oid *root_out, th_sqlwrite_result *res, th_repo *repo,
                        const th_oid *base_root, th_sqls *sess, const char *tmpdir, th_error *err)
{
	char **before = NULL, **now = NULL;
	th_oid root = *base_root;
	size_t i;
	int error;

	if ((error = th_table_names(&before, repo, base_root, err)) < 0 ||
	    (error = th_sqls_tables(&now, sess, err)) < 0)
		goto cleanup;
	for (i = 0; before[i] != NULL; i++) {
		th_table old = TH_TABLE_INIT;
		/* Still there, or never in the snapshot (left out: SQL could not touch it). */
		if (in_list(now, before[i]) || !th_sqls_had_table(sess, before[i]))
			continue;
		if ((error = th_table_load(&old, repo, base_root, before[i], err)) == 0 &&
		    (error = th_table_store(&root, repo, &root, before[i], NULL, NULL, 0, err)) ==
		            0)
			error = th_sqlwrite__add_table(res, before[i], TH_SQLWRITE_DROPPED, 1, 0, 0,
			                               old.row_count, err);
		th_table_dispose(&old);
		if (error < 0)
			goto cleanup;
	}
	for (i = 0; now[i] != NULL; i++) {
		th_sqls_table info;
		th_table old = TH_TABLE_INIT;
		int had = in_list(before, now[i]);

		memset(&info, 0, sizeof(info));
		if (!th_table_name_valid(now[i])) {
			error = th_error_set(err, TH_EINVALID,
			                     "bad table name '%.64s': use 1-64 of [A-Za-z0-9_-]",
			                     now[i]);
			goto cleanup;
		}
		if (had && !th_sqls_had_table(sess, now[i])) {
			error = th_error_set(
			        err, TH_EINVALID,
			        "table '%s' cannot be written with SQL: SQLite cannot hold it "
			        "(too many columns, or column names that differ only in case)",
			        now[i]);
			goto cleanup;
		}
		if ((error = th_sqls_table_info(&info, sess, now[i], err)) < 0)
			goto cleanup;
		if (had && !info.changed) {
			th_sqls_table_dispose(&info);
			continue;
		}
		if (had)
			error = th_table_load(&old, repo, base_root, now[i], err);
		if (error == TH_OK && had && info.exact && old.schema.ncols == info.ncols)
			error = write_recorded(&root, res, repo, sess, now[i], &old, tmpdir, err);
		else if (error == TH_OK)
			error = write_whole(&root, res, repo, sess, now[i], &info,
			                    had ? &old : NULL, tmpdir, err);
		th_table_dispose(&old);
		th_sqls_table_dispose(&info);
		if (error < 0)
			goto cleanup;
	}
	*root_out = root;
cleanup:
	th_strv_free(before);
	th_strv_free(now);
	return error;
}
