/* sqlsession.h: a private, writable SQL session on a query snapshot (storage/sqlsession*.c), where
 * SQL writes run (src/sqlwrite.c): the user's statements change the session, then the engine
 * reads back what they changed and writes that to git.
 *
 * DESIGN
 * - Copy on write. A session opens the snapshot of a commit (sqlcache.h) through a VFS that only
 *   ever reads the shared file (under a shared flock, so no snapshot builder takes it over
 *   meanwhile) and sends every page SQLite writes to an anonymous overlay file of the session.
 *   Opening costs nothing and a write costs the pages it changes, whatever the size of the
 *   snapshot; the snapshot itself never changes. The statements run in one transaction that is
 *   never committed: when the session is freed, its changes are gone.
 * - Sandbox. As for queries (th_snap_query), with writes allowed on user tables: reads, INSERT,
 *   UPDATE, DELETE, CREATE TABLE, ALTER TABLE (ADD, DROP and RENAME COLUMN, RENAME TO), DROP
 *   TABLE, functions other than load_extension and fts3_tokenizer, the introspection pragmas.
 *   Everything else (ATTACH, other pragmas, indexes, triggers, views, virtual and temporary
 *   tables, transactions, VACUUM, ANALYZE) is refused with a message that names it. Limits: time
 *   per statement, heap for the session, length of a statement and of a value.
 * - What changed. A preupdate hook records the primary key of every row a statement inserts,
 *   updates or deletes in the keyed tables the snapshot held, so the rows to write back are found
 *   without comparing tables. Tables created, dropped or altered, keyless tables that were
 *   changed, and tables whose changes outgrow the record (256 MiB of keys) are only marked: the
 *   caller reads their rows whole.
 * No SQLite type appears in this header.
 */
#ifndef TABLEHUB_SQLSESSION_H
#define TABLEHUB_SQLSESSION_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "sqlcache.h"

/* A value as SQLite holds it. */
typedef enum {
	TH_SQLV_NULL = 0,
	TH_SQLV_INTEGER = 1,
	TH_SQLV_REAL = 2,
	TH_SQLV_TEXT = 3,
	TH_SQLV_BLOB = 4,
} th_sqlv_type;

typedef struct th_sqlv {
	th_sqlv_type type;
	int64_t i;     /* INTEGER */
	double d;      /* REAL */
	const char *s; /* TEXT (NUL-terminated) or BLOB bytes; borrowed */
	size_t len;    /* bytes of s */
} th_sqlv;

typedef struct th_sqls th_sqls;

/* Open a session on the snapshot file at `snapshot`, its overlay an anonymous file in `tmpdir`,
 * with the limits of `lim` (its time_ms per statement and heap_bytes for the session; max_rows
 * is not used; NULL: none). Returns TH_OK, TH_ENOTFOUND (no snapshot at that path, or it was just
 * taken over: make it again), TH_ENOMEM or TH_ESTORE. *out is the caller's: th_sqls_free. */
int th_sqls_open(th_sqls **out, const char *snapshot, const char *tmpdir, const th_sql_limits *lim,
                 th_error *err);

/* Drop the session and everything it changed. Accepts NULL. */
void th_sqls_free(th_sqls *s);

/* Run the statements of text[0..len), in order. `line` and `column` are where text begins in the
 * caller's input (1-based), so that a failure is placed in it. Returns TH_OK; TH_EINVALID for an
 * SQL error or a refused statement: the message is "statement N (line L, column C): <why>" and
 * err->line/column are set, at the error's token when SQLite names one, else at the statement's
 * start; TH_ELIMIT (time or memory limit, placed likewise); TH_ENOMEM; TH_ESTORE. After a failure
 * the session refuses everything but th_sqls_free. */
int th_sqls_exec(th_sqls *s, const char *text, size_t len, uint64_t line, uint32_t column,
                 th_error *err);

/* Statements run so far, and rows they inserted, updated or deleted (SQLite's changes()). */
uint64_t th_sqls_statements(const th_sqls *s);
uint64_t th_sqls_changes(const th_sqls *s);

/* Did the snapshot hold table `name` (exactly so named) when the session opened? A table of the
 * commit that it did not hold was left out of the snapshot (sqlcache.h): SQL never saw it. */
int th_sqls_had_table(const th_sqls *s, const char *name);

/* The user tables the session holds now (names not starting with "sqlite_"), sorted by name,
 * NULL-terminated (free with th_strv_free). Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
int th_sqls_tables(char ***out, th_sqls *s, th_error *err);

typedef struct th_sqls_column {
	char *name;
	char *decltype; /* as declared ("" when none) */
	int notnull;
	int pk; /* 1-based position in the primary key, 0 when not in it */
} th_sqls_column;

typedef struct th_sqls_table {
	size_t ncols;
	th_sqls_column *cols; /* in table order, as SELECT * returns them */
	int in_base;          /* the snapshot held a table of this name */
	int changed;          /* rows or schema may differ from the snapshot's */
	/* Every changed row's key was recorded (th_sqls_changed lists them): a keyed table of the
	 * snapshot that no DDL touched. Otherwise a changed table must be read whole. */
	int exact;
} th_sqls_table;

/* What the session knows of table `name` now. Returns TH_OK, TH_ENOTFOUND, TH_ENOMEM or
 * TH_ESTORE; *out is the caller's: th_sqls_table_dispose. */
int th_sqls_table_info(th_sqls_table *out, th_sqls *s, const char *name, th_error *err);
void th_sqls_table_dispose(th_sqls_table *t);

/* A row handed to the caller. `key` (nkey values) is the primary key of a recorded change, `row`
 * (ncols values) the row now, NULL when it is gone. Everything is borrowed for the call. A
 * non-zero return stops the walk and is returned. */
typedef int (*th_sqls_row_fn)(void *payload, const th_sqlv *key, size_t nkey, const th_sqlv *row,
                              size_t ncols, th_error *err);

/* For an `exact` table: call cb once for each recorded key, in no particular order, with the row
 * that has that key now (or NULL). Returns TH_OK, what cb returned, TH_EINVALID (the table is not
 * exact), TH_ENOMEM or TH_ESTORE. */
int th_sqls_changed(th_sqls *s, const char *name, th_sqls_row_fn cb, void *payload, th_error *err);

/* Call cb for every row of table `name` now (key NULL), in the table's order. Returns TH_OK, what
 * cb returned, TH_ENOTFOUND, TH_ENOMEM or TH_ESTORE. */
int th_sqls_scan(th_sqls *s, const char *name, th_sqls_row_fn cb, void *payload, th_error *err);

#endif
