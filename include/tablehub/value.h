/* value.h: the values tables are made of (util/types.c, util/schema.c, util/row.c, util/key.c):
 * column types and their inference, schemas and their schema.json form, cells, the row line codec
 * (a JSON array of cells in schema order) and the order-preserving key encoding (memcmp order =
 * key order). Pure value code: no repository, no database, so every layer can use it.
 */
#ifndef TABLEHUB_VALUE_H
#define TABLEHUB_VALUE_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "error.h"

/* --- types --------------------------------------------------------------------------------- */

typedef enum {
	TH_TYPE_INTEGER = 1,  /* int64, no leading zeros ("007" is text) */
	TH_TYPE_REAL = 2,     /* a JSON number with a fraction or exponent, kept as written (".5"
	                       * and "-.5" are reals too, stored as "0.5" and "-0.5") */
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
/* The text of a real as a query prints it: the shortest of 15, 16 or 17 significant digits that
 * strtod reads back as the same double ("22.216666666666665", "0.1"), an integral value without
 * ".0" ("404"), an exponent without leading zeros ("1e-7", "1e+20"), "Inf"/"-Inf"/"NaN".
 * NUL-terminated; returns its length. */
#define TH_REAL_TEXT_MAX 32
size_t th_real_format(char out[TH_REAL_TEXT_MAX], double d);
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

/* The most columns a table may have: SQLite's limit on a table's columns (SQLITE_MAX_COLUMN, 2000
 * by default), so that every table can be materialised for SQL. Imports refuse wider tables. */
#define TH_SCHEMA_MAX_COLUMNS 2000

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
 * characters, at most TH_COLUMN_NAME_MAX bytes. */
#define TH_COLUMN_NAME_MAX 256
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
/* As th_row_decode, but only as far as the key's cells (th_row_key) reach: out->n cells, enough
 * for th_row_key, the rest of the line neither decoded nor checked. Same returns. */
int th_row_decode_key(th_cells *out, const th_schema *s, const char *line, size_t len,
                      th_error *err);
void th_cells_dispose(th_cells *c);

/* Append the row line for `cells` (s->ncols of them, already valid for their column types). */
int th_row_encode(th_buf *out, const th_schema *s, const th_cell *cells, th_error *err);

/* Chunk bodies (util/chunkbody.c): a chunk blob holds its rows' lines (format 1, starting with '[')
 * or the same lines column by column (format 2, starting with '#'), which deflate compresses much
 * better. th_chunk_body_encode appends the format 2 body of `lines` (row lines, each ending in
 * '\n') to *out, or the lines themselves when they do not have the row encoder's shape. Returns
 * TH_OK or TH_ENOMEM. th_chunk_body_decode appends the lines of a format 2 body to *out. Returns
 * TH_OK, TH_EINVALID (not a well-formed format 2 body) or TH_ENOMEM. On failure, either may have
 * appended part of its output. */
#define TH_CHUNK_BODY_COLUMNS '#'
int th_chunk_body_encode(th_buf *out, const char *lines, size_t len, th_error *err);
int th_chunk_body_decode(th_buf *out, const char *body, size_t len, th_error *err);

/* Append the order-preserving key of `cells` (the primary-key cells, or every cell when keyless).
 */
int th_row_key(th_buf *out, const th_schema *s, const th_cell *cells, th_error *err);

/* Compare two encoded keys: memcmp order, a prefix first. Returns <0, 0 or >0. */
int th_key_cmp(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen);

/* A printable form of a key for messages and diffs, e.g. `1` or `(1, 'a')`. */
int th_key_format(th_buf *out, const th_schema *s, const th_cell *cells, th_error *err);

#endif
