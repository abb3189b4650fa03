/* table.h: tables stored in git as key-ordered, content-defined chunks (src/chunk.c, src/table.c;
 * the values they hold are in value.h).
 *
 * A commit's tree holds `tables/<name>/schema.json` and `tables/<name>/rows/`, the rows sorted by
 * an order-preserving encoding of the primary key (memcmp order = key order) and cut into chunks of
 * ~64 KiB where a row's key hash says so. Each row is one line, a JSON array of its cells in schema
 * order (`null` for NULL); a chunk blob holds its lines column by column (value.h, chunk bodies),
 * older blobs the lines as they are. A table without a primary key (keyless) uses the whole row as
 * its key; duplicate rows are repeated lines and never split across chunks. Large tables get a
 * second tree level. Changing one row rewrites the chunk that holds it and the trees above it,
 * nothing else.
 */
#ifndef TABLEHUB_TABLE_H
#define TABLEHUB_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "error.h"
#include "repo.h"
#include "value.h"

/* --- reading tables -------------------------------------------------------------------------- */

typedef struct th_table {
	th_schema schema;
	th_oid table_tree;  /* tables/<name> */
	th_oid rows;        /* tables/<name>/rows, zero when the table has no rows */
	uint64_t row_count; /* from schema.json's "rows", maintained on every write */
} th_table;

#define TH_TABLE_INIT                                                                              \
	{                                                                                          \
		TH_SCHEMA_INIT, { { 0 } }, { { 0 } }, 0                                            \
	}

/* Load table `name` from the commit tree `root`. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_table_load(th_table *out, th_repo *repo, const th_oid *root, const char *name,
                  th_error *err);
void th_table_dispose(th_table *t);

/* The table names under `root`, sorted, NULL-terminated (free with th_strv_free). */
int th_table_names(char ***out, th_repo *repo, const th_oid *root, th_error *err);

/* One chunk in key order: its tree entry name and blob id. */
typedef struct th_chunk_ref {
	char name[128];
	th_oid oid;
} th_chunk_ref;

/* All chunks of a rows tree (one or two levels), in key order, into a malloc'd array. */
int th_table_chunks(th_chunk_ref **out, size_t *n, th_repo *repo, const th_oid *rows,
                    th_error *err);

/* A row read from a table: key and line are borrowed until the next call. */
typedef struct th_row {
	const unsigned char *key;
	size_t keylen;
	const char *line;
	size_t linelen;
} th_row;

/* Split a chunk blob into rows with their keys (computed from the cells), in order. */
typedef struct th_chunk_rows {
	size_t n;
	th_row *rows; /* pointers into `data` and `keys` */
	th_buf data;
	th_buf keys;
} th_chunk_rows;

int th_chunk_rows_read(th_chunk_rows *out, th_repo *repo, const th_schema *s, const th_oid *chunk,
                       th_error *err);
void th_chunk_rows_dispose(th_chunk_rows *c);

/* Iterate every row of `t` in key order. */
typedef struct th_row_iter th_row_iter;
int th_row_iter_new(th_row_iter **out, th_repo *repo, const th_table *t, th_error *err);
/* Returns 1 (a row in *row), 0 (end) or a negative code. */
int th_row_iter_next(th_row_iter *it, th_row *row, th_error *err);
void th_row_iter_free(th_row_iter *it);

/* --- writing tables -------------------------------------------------------------------------- */

/* One change to a table: set the row with `key` to `line`, or delete it when line is NULL. For a
 * keyless table `count` copies of the row are set (count 0 with line NULL removes all). */
typedef struct th_edit {
	const unsigned char *key;
	size_t keylen;
	const char *line;
	size_t linelen;
	uint64_t count; /* keyless tables only; 1 otherwise */
} th_edit;

/* An edit source: fills *out with the next edit, keys strictly ascending. Returns 1, 0 (no more)
 * or a negative code; what *out points at stays valid until the next call. */
typedef int (*th_edit_next_fn)(void *payload, th_edit *out, th_error *err);

typedef struct th_apply_stats {
	uint64_t added, modified, removed; /* the table's new row count is its old count (th_table
	                                    * .row_count) + added - removed */
	uint64_t rows; /* rows that went through the chunker (not those of reused chunks) */
	uint64_t chunks_written, chunks_reused;
} th_apply_stats;

/* Apply the edits to the rows tree `base` (NULL or zero = empty table), re-chunking only the
 * regions the edits touch, and write the new rows tree to *out (zero oid when the table ends
 * empty). New chunks go to `pack` when given (large writes), else loose; takes `pack`, even on
 * failure: it is committed before the trees are written. Returns TH_OK, TH_EINVALID (unsorted
 * edits), TH_ENOMEM or TH_ESTORE. */
int th_table_apply(th_oid *out, th_apply_stats *stats, th_repo *repo, const th_schema *s,
                   const th_oid *base, th_edit_next_fn next, void *payload, th_pack *pack,
                   th_error *err);

/* Set table `name` in commit tree `root` to `schema` + `rows` (with `row_count` recorded), or drop
 * it when schema is NULL, writing the new root tree to *out. Returns TH_OK or TH_ESTORE. */
int th_table_store(th_oid *out, th_repo *repo, const th_oid *root, const char *name,
                   const th_schema *schema, const th_oid *rows, uint64_t row_count, th_error *err);

#endif
