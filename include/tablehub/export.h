/* export.h: exporters, the formats a table or a query result is written out in (DESIGN §10), and
 * a table streamed from git through one of them (src/export.c; one file per format:
 * src/export_csv.c).
 *
 * An exporter is a table of three functions: begin(columns), row(cells), end. Each appends bytes
 * to a th_buf the caller provides and drains as it likes (to a socket, to stdout), so an export
 * runs in constant memory whatever the size of the table: the exporter holds only its own small
 * state, never the rows. The exporters are listed in th_exporters[] by the name the API and the
 * command line know them by.
 *
 * Adding a format (Xlsx ...) is one file that defines a `th_exporter` plus its line in
 * th_exporters[] (src/export.c) and its declaration below; nothing that exports needs to change.
 * A format that needs the table's name and primary key (SQL's CREATE TABLE) has a `table` hook,
 * which a table export calls before begin; a query result has neither and skips it.
 */
#ifndef TABLEHUB_EXPORT_H
#define TABLEHUB_EXPORT_H

#include <stddef.h>
#include "buf.h"
#include "error.h"
#include "table.h"
#include "value.h"

typedef struct th_exporter {
	const char *name;       /* as the API and the command line name it: "csv" */
	const char *media_type; /* the HTTP Content-Type of its output */
	const char *extension;  /* of a file of its output, without the dot: "csv" */
	size_t state_size;      /* bytes of state each export gets, zeroed (0: none) */
	/* Once, first: the columns, n names and types ("integer", "real", "boolean", "date",
	 * "datetime", "text", or SQLite's "blob" for a query result); borrowed for the call. */
	int (*begin)(void *state, th_buf *out, size_t n, const char *const *names,
	             const char *const *types, th_error *err);
	/* Each row: n cells, in the order of the columns; borrowed for the call. */
	int (*row)(void *state, th_buf *out, const th_cell *cells, size_t n, th_error *err);
	/* Once, last (may be NULL: nothing to close). */
	int (*end)(void *state, th_buf *out, th_error *err);
	/* Release what the state holds (may be NULL: nothing). */
	void (*dispose)(void *state);
	/* Before begin, when the rows are a table's (may be NULL: not needed): its name and its
	 * primary key, npk indices into the columns in key order (0: keyless); borrowed for the
	 * call. */
	int (*table)(void *state, const char *name, size_t npk, const size_t *pk, th_error *err);
} th_exporter;

/* The formats (src/export_*.c). */
extern const th_exporter th_exporter_csv; /* RFC 4180, header line first, NULL as an empty field */
/* export_json.c: an array of objects, one per row ("json"), or one object a line ("jsonl"); cells
 * typed by their column: numbers and booleans bare, everything else a string, NULL as null. */
extern const th_exporter th_exporter_json;
extern const th_exporter th_exporter_jsonl;
/* export_sql.c: a SQLite script: CREATE TABLE with the columns' types and the primary key, then
 * the rows in INSERT statements of up to 500 rows, in one transaction. */
extern const th_exporter th_exporter_sql;

/* Every exporter, NULL-terminated, in the order they are offered. */
extern const th_exporter *const th_exporters[];

/* The exporter named `name` (case-insensitive), or NULL. */
const th_exporter *th_exporter_find(const char *name);

/* --- one export ------------------------------------------------------------------------------ */

/* An exporter with the state of one export. */
typedef struct th_export th_export;

/* A new export through `fmt` (borrowed: exporters are static). Returns TH_OK or TH_ENOMEM. Free
 * with th_export_free. */
int th_export_new(th_export **out, const th_exporter *fmt, th_error *err);
/* The exporter's begin, row and end, appending to `out`. Each returns TH_OK or the exporter's
 * error (TH_ENOMEM for the formats here). */
int th_export_begin(th_export *x, th_buf *out, size_t n, const char *const *names,
                    const char *const *types, th_error *err);
int th_export_row(th_export *x, th_buf *out, const th_cell *cells, size_t n, th_error *err);
int th_export_end(th_export *x, th_buf *out, th_error *err);
/* The exporter's table hook, when it has one (TH_OK otherwise); call before th_export_begin. */
int th_export_table(th_export *x, const char *name, size_t npk, const size_t *pk, th_error *err);
/* Accepts NULL. */
void th_export_free(th_export *x);

/* --- a table from git ------------------------------------------------------------------------ */

typedef struct th_table_export th_table_export;

/* Start exporting the rows of `table` in key order through `fmt`. Takes `repo` and the contents of
 * `table` (left as TH_TABLE_INIT), even on failure: both are released by th_table_export_free.
 * Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
int th_table_export_new(th_table_export **out, const th_exporter *fmt, th_repo *repo,
                        th_table *table, th_error *err);

/* Name the table (copied) for the exporter's table hook; before the first read. Without a name
 * the hook gets "data". Returns TH_OK or TH_ENOMEM. */
int th_table_export_set_name(th_table_export *x, const char *name, th_error *err);

/* Append whole rows to `out` until it holds at least `want` bytes or the table ends (the first
 * call begins with the exporter's begin, the last ends with its end). Returns 1 (there may be
 * more), 0 (the end: nothing more will come) or a negative code (TH_ESTORE, TH_EINVALID for a
 * row that does not decode, TH_ENOMEM). */
int th_table_export_read(th_table_export *x, th_buf *out, size_t want, th_error *err);

/* Accepts NULL. */
void th_table_export_free(th_table_export *x);

#endif
