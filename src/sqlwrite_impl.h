/* sqlwrite_impl.h: what the files of the SQL write engine share (see include/tablehub/sqlwrite.h).
 * Nothing else includes this file.
 *
 *   sqlwrite.c         the driver: the base commit, its snapshot, the session, the statements,
 *                      the commit; results and their JSON; the import job's Sql uploads
 *   sqlwrite_tables.c  writing back the tables the statements changed
 *   sqlwrite_values.c  SQLite's types and values in tablehub's terms
 */
#ifndef TABLEHUB_SQLWRITE_IMPL_H
#define TABLEHUB_SQLWRITE_IMPL_H

#include "tablehub/sqlsession.h"
#include "tablehub/sqlwrite.h"
#include "tablehub/table.h"
#include "tablehub/value.h"

/* Write back to git what the session's statements changed, on top of commit tree `base_root`:
 * the new root tree goes to *root_out (equal to base_root when nothing changed) and each changed
 * table to res (tables and totals). Scratch (sort runs) goes to `tmpdir`. Returns TH_OK,
 * TH_EINVALID (a value, table or column name tablehub cannot hold: the message says which),
 * TH_ENOMEM or TH_ESTORE. */
int th_sqlwrite__tables(th_oid *root_out, th_sqlwrite_result *res, th_repo *repo,
                        const th_oid *base_root, th_sqls *sess, const char *tmpdir, th_error *err);

/* Add a changed table to res (name copied) and its rows to the totals. TH_OK or TH_ENOMEM. */
int th_sqlwrite__add_table(th_sqlwrite_result *res, const char *name, th_sqlwrite_change change,
                           int schema_changed, uint64_t added, uint64_t modified, uint64_t removed,
                           th_error *err);

/* --- values (sqlwrite_values.c) ----------------------------------------------------------- */

/* The tablehub type of a column declared `decl` (see sqlwrite.h); 0 when it has no declared
 * type (the values decide). */
th_type th_sqlwrite__decl_type(const char *decl);

/* The types (TH_TYPEBIT set) the value v could be stored as, for inferring an undeclared
 * column's type (NULL: every type). */
unsigned th_sqlwrite__classify(const th_sqlv *v);

/* Cells for a row: the text of each value in its column's type. */
typedef struct th_sqlwrite__row {
	th_cell *cells; /* ncols */
	size_t *offs;
	size_t ncols;
	th_buf text; /* the cells' text */
} th_sqlwrite__row;

void th_sqlwrite__row_dispose(th_sqlwrite__row *r);

/* Convert n values (value i for column cols[i] of `s`; cols NULL = the first n columns in order)
 * into r->cells (cells of other columns are NULL). A value its column's type cannot hold, or a
 * NULL in a primary-key column, fails with TH_EINVALID naming `table`, the column and the value.
 * Returns TH_OK, TH_EINVALID or TH_ENOMEM. */
int th_sqlwrite__cells(th_sqlwrite__row *r, const th_schema *s, const char *table, const th_sqlv *v,
                       const size_t *cols, size_t n, th_error *err);

/* Do two rows of schema `s` hold the same values (numbers compared as numbers, so "1.50" and
 * "1.5" are the same)? */
int th_sqlwrite__cells_equal(const th_schema *s, const th_cell *a, const th_cell *b);

/* Are two non-NULL cells of a column of type t the same value? */
int th_sqlwrite__cells_equal_one(th_type t, const th_cell *a, const th_cell *b);

/* A th_resolve_fn for th_table__apply_ex: the new line, except that a number equal to the old
 * one keeps its old text (a REAL written "1.50" comes back from SQLite as 1.5). `payload` is a
 * th_sqlwrite__resolver. */
typedef struct th_sqlwrite__resolver {
	const th_schema *schema;
	th_cells a, b;
} th_sqlwrite__resolver;

int th_sqlwrite__resolve(void *payload, const th_row *old, const th_edit *e, th_buf *line_out,
                         th_error *err);

#endif
