/* table.h: tables stored in git as key-ordered, content-defined chunks (src/schema.c, src/key.c,
 * src/row.c, src/chunk.c, src/table.c).
 *
 * A commit's tree holds `tables/<name>/schema.json` and `tables/<name>/rows/`, the rows sorted by
 * an order-preserving encoding of the primary key (memcmp order = key order) and cut into chunks of
 * ~64 KiB where a row's key hash says so. Each row is one line, a JSON array of its cells in schema
 * order (`null` for NULL). A table without a primary key (keyless) uses the whole row as its key;
 * duplicate rows are repeated lines and never split across chunks. Large tables get a second tree
 * level. Changing one row rewrites the chunk that holds it and the trees above it, nothing else.
 */
#ifndef TABLEHUB_TABLE_H
#define TABLEHUB_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "error.h"
#include "repo.h"

/* --- types --------------------------------------------------------------------------------- */

typedef enum {
	TH_TYPE_INTEGER = 1,  /* int64, no leading zeros ("007" is text) */
	TH_TYPE_REAL = 2,     /* a JSON number with a fraction or exponent, kept as written */
	TH_TYPE_BOOLEAN = 3,  /* true/false in any case, stored as true/false */
	TH_TYPE_DATE = 4,     /* YYYY-MM-DD */
	TH_TYPE_DATETIME = 5, /* YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|+HH:MM] */
	TH_TYPE_TEXT = 6,
} th_type;

#define TH_TYPEBIT(t) (1u << (t))
#define TH_TYPEMASK_ALL 0x7eu

/* "integer", "real", "boolean", "date", "datetime", "text". */
const char *th_type_name(th_type t);
/* The type named `name`, or 0 if none. */
th_type th_type_parse(const char *name);
/* The set of types (TH_TYPEBIT bits) that the non-NULL text value s[0..len) can be stored as.
 * Text is always in the set. */
unsigned th_type_classify(const char *s, size_t len);
/* The most specific type in `mask` (the AND of a column's classifications): integer, real,
 * boolean, date, datetime, else text. */
th_type th_type_pick(unsigned mask);

/* --- schemas ------------------------------------------------------------------------------- */

typedef struct th_column {
	char *name;
	th_type type;
	int nullable;
} th_column;

typedef struct th_schema {
	size_t ncols;
	th_column *cols;
	size_t npk;
	size_t *pk; /* indices into cols in key order; npk == 0 means keyless */
} th_schema;

#define TH_SCHEMA_INIT                                                                             \
	{                                                                                          \
		0, NULL, 0, NULL                                                                   \
	}
#define TH_TABLE_FORMAT 1

/* schema.json: {"format":1,"columns":[{"name":..,"type":..,"nullable":..}],"primaryKey":[..]}. */
int th_schema_to_json(th_buf *out, const th_schema *s, th_error *err);
/* As th_schema_to_json (appends; two-space indent, one column a line, trailing newline), with
 * "rows": `rows` after "primaryKey": the schema.json a table stores. TH_OK or TH_ENOMEM. */
int th_schema_to_json_rows(th_buf *out, const th_schema *s, uint64_t rows, th_error *err);
/* The "rows" count of schema.json into *rows: 0 when absent. Returns TH_OK, or TH_EINVALID (not
 * a JSON object, or "rows" not a non-negative integer). */
int th_schema_rows_from_json(uint64_t *rows, const char *json, size_t len);
/* Parse schema.json into *out (caller disposes). Returns TH_OK or TH_EINVALID. */
int th_schema_from_json(th_schema *out, const char *json, size_t len, th_error *err);
/* Deep copy. Returns TH_OK or TH_ENOMEM. */
int th_schema_copy(th_schema *out, const th_schema *s, th_error *err);
void th_schema_dispose(th_schema *s);
/* Index of column `name`, or -1. */
int th_schema_find(const th_schema *s, const char *name);

/* Is `name` a valid table or column name? Table names: [A-Za-z0-9_-], 1-64 bytes, not starting
 * with '-' nor with "sqlite_" (SQLite's own). Column names: any non-empty UTF-8 without control
 * characters, at most 256 bytes. */
int th_table_name_valid(const char *name);
int th_column_name_valid(const char *name);

/* --- cells and rows ------------------------------------------------------------------------- */

/* A cell in text form, as CSV prints it: digits for numbers, true/false, the string itself. */
typedef struct th_cell {
	const char *s; /* NUL-terminated; NULL when is_null */
	size_t len;
	int is_null;
} th_cell;

/* A decoded row: n cells whose text lives in `store`. */
typedef struct th_cells {
	size_t n;
	th_cell *c;
	size_t cap;
	th_buf store;
} th_cells;

#define TH_CELLS_INIT                                                                              \
	{                                                                                          \
		0, NULL, 0, TH_BUF_INIT                                                            \
	}

/* Decode one row line (a JSON array, no newline) into *out (reused across calls). Returns TH_OK,
 * TH_EINVALID (malformed line or wrong number of cells) or TH_ENOMEM. */
int th_row_decode(th_cells *out, const th_schema *s, const char *line, size_t len, th_error *err);
void th_cells_dispose(th_cells *c);

/* Append the row line for `cells` (s->ncols of them, already valid for their column types). */
int th_row_encode(th_buf *out, const th_schema *s, const th_cell *cells, th_error *err);

/* Append the order-preserving key of `cells` (the primary-key cells, or every cell when keyless).
 */
int th_row_key(th_buf *out, const th_schema *s, const th_cell *cells, th_error *err);

/* Compare two encoded keys: memcmp order, a prefix first. Returns <0, 0 or >0. */
int th_key_cmp(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen);

/* A printable form of a key for messages and diffs, e.g. `1` or `(1, 'a')`. */
int th_key_format(th_buf *out, const th_schema *s, const th_cell *cells, th_error *err);

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
