/* sqlcache.h: query snapshots, one SQLite file holding every table of one commit, and the cache
 * directory that keeps them (storage/sqlcache_*.c; their roles are listed in
 * storage/sqlcache_internal.h).
 *
 * A snapshot is written once (th_snap_create, or th_snap_open on a copy of an older snapshot that
 * is then brought up to date row by row), committed, and from then on only read, through
 * th_snap_query: a read-only, sandboxed connection that refuses anything but reading, with time,
 * memory and row limits, streaming its result to a sink. Every tablehub table becomes one SQLite
 * table of the same name; a table with a primary key is a WITHOUT ROWID table keyed as declared
 * (so a plain scan is in key order), a keyless table an ordinary table whose rows were inserted in
 * key order. Column types: integer -> INTEGER, real -> REAL, boolean -> BOOLEAN (stored as the
 * integers 0 and 1), date -> DATE, datetime -> DATETIME, text -> TEXT (the date and text types
 * hold TEXT values; the declared names only let a query see the tablehub type).
 *
 * The files live in DIR/cache/<owner>/<db>/<key>.sqlite. This layer manages them (names, the
 * right to build one, copies, publishing by rename, eviction by a size budget) without knowing
 * what a key means or how a snapshot's rows are found: that is the caller's (src/query*.c). No
 * SQLite type appears in this header.
 */
#ifndef TABLEHUB_SQLCACHE_H
#define TABLEHUB_SQLCACHE_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "error.h"
#include "value.h"

/* --- writing a snapshot ------------------------------------------------------------------ */

typedef struct th_snap th_snap;
typedef struct th_snap_table th_snap_table;

/* Create a new, empty snapshot file at `path` (replacing any file there) and start its one write
 * transaction; the file is written without a journal or syncs, so it must be a temporary name
 * that is renamed into place after th_snap_commit. Returns TH_OK or TH_ESTORE. */
int th_snap_create(th_snap **out, const char *path, th_error *err);

/* Open the existing snapshot at `path` (a private copy of an older snapshot) to change it, as
 * th_snap_create does. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_snap_open(th_snap **out, const char *path, th_error *err);

/* Commit the snapshot's changes and close it. Frees `snap` whatever the result. Returns TH_OK or
 * TH_ESTORE. Every th_snap_table of it must have been freed first. */
int th_snap_commit(th_snap *snap, th_error *err);

/* Abandon the changes and close the file (which the caller then removes). Accepts NULL. */
void th_snap_free(th_snap *snap);

/* Create table `name` with schema `s` in the snapshot (dropping a table of that name first) and
 * prepare its writes into *out (caller frees with th_snap_table_free, before th_snap_commit).
 * `s` is borrowed and must outlive *out. Returns TH_OK; TH_ELIMIT (more columns than SQLite allows:
 * nothing was written) or TH_EINVALID (SQLite refuses the table, e.g. two column names that differ
 * only in case), both about this table alone; or TH_ESTORE. */
int th_snap_table_create(th_snap_table **out, th_snap *snap, const char *name, const th_schema *s,
                         th_error *err);

/* Prepare writes into the existing table `name`, whose schema is `s` (borrowed, as above).
 * Returns TH_OK, TH_ENOTFOUND (no such table in the file) or TH_ESTORE. */
int th_snap_table_open(th_snap_table **out, th_snap *snap, const char *name, const th_schema *s,
                       th_error *err);

void th_snap_table_free(th_snap_table *t);

/* Drop table `name` if the snapshot has it. Returns TH_OK or TH_ESTORE. */
int th_snap_table_drop(th_snap *snap, const char *name, th_error *err);

/* Store the row `cells` (one per column, valid for the column types): it replaces the row with
 * the same primary key. For a keyless table `count` copies are added. Returns TH_OK, TH_EINVALID
 * (a cell that does not fit its column, e.g. a NULL key), TH_ELIMIT (a value or row larger than
 * SQLite allows) or TH_ESTORE. */
int th_snap_put(th_snap_table *t, const th_cell *cells, uint64_t count, th_error *err);

/* th_snap_put of `n` rows, each rows[i] one row's cells, one copy each: the same result, written
 * several rows to a statement. The cells need stay valid only during the call. Returns as
 * th_snap_put does. */
int th_snap_put_rows(th_snap_table *t, const th_cell *const *rows, size_t n, th_error *err);

/* Remove the row whose key is that of `cells` (a full row: the primary-key cells are used; for a
 * keyless table every cell, and up to `count` equal rows go). Removing a row that is not there
 * is not an error. Returns TH_OK or TH_ESTORE. */
int th_snap_delete(th_snap_table *t, const th_cell *cells, uint64_t count, th_error *err);

/* --- querying a snapshot ----------------------------------------------------------------- */

typedef struct th_sql_limits {
	uint64_t max_rows;   /* rows returned before the result is cut (0: no limit) */
	uint32_t time_ms;    /* wall-clock budget of the statement (0: no limit) */
	uint64_t heap_bytes; /* SQLite heap the statement may use (0: no limit) */
} th_sql_limits;

/* Where th_snap_query sends its result. Pointers passed to the callbacks are borrowed for the
 * call. A non-zero return from a callback stops the query and is returned by th_snap_query. */
typedef struct th_sql_sink {
	/* Once, before the first row: the result's column names and types. A column read straight
	 * from a table has its table's type ("integer", "real", "boolean", "date", "datetime",
	 * "text"); an expression the SQLite type of its value in the first row ("integer", "real",
	 * "text", "blob"; "text" when there is no row or the value is NULL). */
	int (*columns)(void *payload, size_t n, const char *const *names, const char *const *types,
	               th_error *err);
	/* Each row: n cells in text form (NULL as is_null; a blob as lowercase hex). */
	int (*row)(void *payload, const th_cell *cells, size_t n, th_error *err);
	void *payload;
} th_sql_sink;

/* Run one read-only SQL statement `sql` against the snapshot at `path`, streaming the result to
 * `sink`; *rows gets the number of rows sent to it. The connection is opened read-only and
 * immutable (and kept for the next query of the same file: up to 16 per process), holds a shared
 * flock on the file while the statement runs (see th_snap_steal), attaches nothing
 * (SQLITE_LIMIT_ATTACHED 0), and an authorizer allows only reading: SELECT, reading columns,
 * recursive CTEs, functions other than load_extension and fts3_tokenizer, and the introspection
 * pragmas (table_info, table_xinfo, table_list, index_list, index_info, index_xinfo,
 * foreign_key_list, collation_list, function_list, module_list, pragma_list). Anything else
 * (ATTACH, DETACH, writes, DDL, temp tables, transactions, VACUUM, other pragmas) is refused.
 * *truncated is set to 1 when `lim->max_rows` cut the result (the rows before the cut were sent),
 * else 0. Returns TH_OK; TH_EINVALID (an SQL error, a refused statement, more than one statement,
 * an empty query: the message says which); TH_ELIMIT (the time or memory limit stopped it);
 * TH_ENOTFOUND (no snapshot at `path`, or it was taken over meanwhile: make it again); TH_ESTORE;
 * or a sink callback's non-zero return. */
int th_snap_query(uint64_t *rows, int *truncated, const char *path, const char *sql,
                  const th_sql_limits *lim, const th_sql_sink *sink, th_error *err);

/* Values for a statement's named parameters (":name"), bound with sqlite3_bind_*: never spliced
 * into the statement's text, so a value is only ever a value. */
typedef struct th_sql_binds {
	size_t n;
	const char *const *names;  /* without the ':' */
	const char *const *values; /* each value's text; NULL binds NULL */
	const int *types; /* each value's th_type (value.h): an integer, real or boolean is bound as
	                   * a number (its text must be one), anything else as text; NULL: text */
} th_sql_binds;

/* th_snap_query with `binds` (may be NULL) bound to the statement's parameters. Parameters must
 * be named ":name" (not ?, ?N, @name or $name), and each must have a value in `binds`; values
 * for names the statement does not use are ignored. Returns what th_snap_query does; TH_EINVALID
 * also for a parameter without a value, another kind of parameter, or a value that is not of its
 * type. */
int th_snap_query_bound(uint64_t *rows, int *truncated, const char *path, const char *sql,
                        const th_sql_binds *binds, const th_sql_limits *lim,
                        const th_sql_sink *sink, th_error *err);

/* Check `sql` against the snapshot at `path` as th_snap_query would (one statement, read-only,
 * allowed by the authorizer, tables and columns that exist) without running it, and list its
 * parameters ("min" for ":min", in order of first use) into *names, NULL-terminated (free with
 * th_strv_free). Returns TH_OK or what th_snap_query_bound does. */
int th_snap_params(char ***names, const char *path, const char *sql, th_error *err);

/* Take over the snapshot at `path` for a build instead of copying it: when no query is reading it
 * (an exclusive flock on it is granted at once), it is renamed to `to`, where the caller changes it
 * (th_snap_open) and then renames it to its new name. *lock_fd holds the lock until the caller
 * closes it, after that last rename: a query that opened the old path meanwhile waits for it, then
 * finds the path gone and has the snapshot made again. Returns TH_OK, TH_EBUSY (a query is
 * reading it: copy it instead), TH_ENOTFOUND (gone meanwhile) or TH_ESTORE. */
int th_snap_steal(int *lock_fd, const char *path, const char *to, th_error *err);

/* Does the heap limit of th_snap_query work in this process? It needs SQLite's allocator to be
 * wrapped before SQLite's first use, which storage/sqlcache_heap.c does from a constructor; 0 if
 * that failed (the limit is then not enforced, and a warning is logged once). */
int th_snap_heap_limit_available(void);

/* --- the cache directory ----------------------------------------------------------------- */

/* Keep this process's snapshots under `dir` instead of DIR/cache (serve --cache: each of several
 * servers sharing one data dir keeps its own cache on a local disk). `dir` is created when missing
 * and kept resolved (realpath). Call before any query runs; NULL goes back to DIR/cache. Returns
 * TH_OK, TH_EINVALID (too long) or TH_ESTORE (cannot be created or resolved). */
int th_snap_set_dir(const char *dir, th_error *err);

/* The directory th_snap_set_dir set (resolved; static), or NULL when snapshots are in DIR/cache. */
const char *th_snap_dir(void);

/* Append the path of the snapshot `key` of owner/db: DIR/cache/<owner>/<db>/<key>.sqlite, or
 * under th_snap_dir() when set. The names must be valid (th_name_valid; a key is a hex object id).
 * Returns TH_OK or TH_ENOMEM. */
int th_snap_path(th_buf *out, const char *datadir, const char *owner, const char *db,
                 const char *key, th_error *err);

/* Is there a snapshot file at `path`? */
int th_snap_exists(const char *path);

/* Mark the snapshot at `path` used now, for the eviction order (its atime; failures ignored). */
void th_snap_touch(const char *path);

typedef struct th_snap_lock th_snap_lock;

/* Wait for the right to build the missing snapshot at `path`: threads of this process wait for
 * the one building it, other processes for an flock on <path>.building (the directory is made as
 * needed). *out NULL: another thread built it meanwhile. *out set: the caller holds the right,
 * checks th_snap_exists(path) again (another process may have built it), builds if not, and
 * releases with th_snap_unlock_build. Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
int th_snap_lock_build(th_snap_lock **out, const char *path, th_error *err);

/* Release the right; `tried`: the caller tried to build (the lock file goes, under the lock).
 * Accepts NULL. */
void th_snap_unlock_build(th_snap_lock *lock, int tried);

/* Append a temporary name beside `path` to build under: unique in this process and host. */
int th_snap_tmp_path(th_buf *out, const char *path, th_error *err);

/* Copy the file `src` to `dst` (created or truncated): a reflink if the file system can, else
 * in-kernel. Returns TH_OK, TH_ENOTFOUND (no `src`) or TH_ESTORE. */
int th_snap_copy(const char *src, const char *dst, th_error *err);

/* Sync the finished snapshot `tmp` and rename it to `path`. On failure `tmp` is removed. Returns
 * TH_OK or TH_ESTORE. */
int th_snap_publish(const char *tmp, const char *path, th_error *err);

/* Remove the file at `path` (an abandoned build); no error if it is not there. */
void th_snap_remove(const char *path);

/* Delete the least recently used snapshots under DIR/cache (or th_snap_dir()) until they total at
 * most `budget` bytes (0: no limit), never `keep` (may be NULL), and temporary files older than an
 * hour (left by a crash). Failures only leave files behind. */
void th_snap_evict(const char *datadir, uint64_t budget, const char *keep);

#endif
