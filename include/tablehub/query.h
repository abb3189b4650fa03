/* query.h: read-only SQL over any branch, tag or commit of a database, and tables streamed out
 * through an exporter (src/query.c, src/query_build.c; exporters in export.h).
 *
 * A query runs against a snapshot: one SQLite file holding every table of a commit, kept in
 * DIR/cache/<owner>/<db>/<oid>.sqlite where <oid> is the id of the commit's `tables/` tree, so
 * commits and refs with the same tables share one file. A missing snapshot is built once (threads
 * of one process wait for the one building it, other processes for an flock), preferably from the
 * snapshot of a recent ancestor: its file is copied and only the rows that differ are applied.
 * The cache keeps to a size budget by deleting the least recently used files (use touches a
 * file's atime). Snapshots are derived data: deleting any of them at any time is safe.
 *
 * Results are values, not documents: the columns (names and types) and the rows (cells) stream to
 * a th_sql_sink, and th_query_info says how it went (the commit, RowLimit as `truncated`, row
 * count, timing). How a result is shaped for a client (DoltHub's JSON, a table on a terminal, CSV)
 * and which HTTP status a failure gets is the caller's (api/).
 */
#ifndef TABLEHUB_QUERY_H
#define TABLEHUB_QUERY_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "error.h"
#include "export.h"
#include "sqlcache.h"

typedef struct th_query_opts {
	uint64_t max_rows;       /* rows returned before the status becomes RowLimit; 0: none */
	uint32_t time_ms;        /* time limit of one statement; 0: none */
	uint64_t heap_bytes;     /* SQLite heap limit of one statement; 0: none */
	uint64_t cache_budget;   /* bytes of snapshots kept under DIR/cache; 0: no eviction */
	uint32_t ancestor_depth; /* commits searched for a cached ancestor to build from */
} th_query_opts;

#define TH_QUERY_MAX_ROWS 1000
#define TH_QUERY_TIME_MS 10000
#define TH_QUERY_HEAP_BYTES (256ull << 20)
#define TH_QUERY_CACHE_BUDGET (2ull << 30)
#define TH_QUERY_ANCESTOR_DEPTH 64

/* The defaults above. */
void th_query_opts_init(th_query_opts *o);

/* Where a query runs. All borrowed. */
typedef struct th_query_target {
	const char *datadir;
	const char *owner;
	const char *db;
	const char *ref; /* branch, tag, full or abbreviated commit id; NULL or "" means "main" */
} th_query_target;

/* The ref t names: t->ref, or "main" when it is NULL or empty. Borrowed from t or static. */
const char *th_query_ref(const th_query_target *t);

typedef enum {
	TH_SNAP_CACHED = 0,   /* the snapshot was there */
	TH_SNAP_BUILT = 1,    /* built from the commit's rows */
	TH_SNAP_ADVANCED = 2, /* copied from an ancestor's snapshot and brought up to date */
} th_snap_origin;

/* What a query ran on and how it went. */
typedef struct th_query_info {
	char commit[41];      /* the commit the ref resolved to */
	char tables_tree[41]; /* the id of its tables/ tree (the snapshot's key) */
	th_snap_origin origin;
	double build_ms; /* time spent resolving and making the snapshot ready */
	double query_ms; /* time spent running the statement */
	uint64_t rows;   /* rows sent to the sink */
	int truncated;   /* the row limit cut the result (DoltHub's RowLimit) */
} th_query_info;

/* Resolve t->ref and make sure its snapshot exists, building it if needed; the file's path is
 * appended to path_out and *info (may be NULL) filled in. Returns TH_OK; TH_ENOTFOUND (no such
 * database or ref: the message says which); TH_EINVALID (a malformed name or ref); TH_ESTORE. */
int th_query_snapshot(th_buf *path_out, th_query_info *info, const th_query_target *t,
                      const th_query_opts *o, th_error *err);

/* Run the one read-only statement `sql` at t->ref, streaming the result to `sink` (see
 * sqlcache.h), with the limits of `o` (NULL: the defaults). *info (may be NULL) says what ran.
 * Returns TH_OK (also when the row limit cut the result: info->truncated); TH_EINVALID (SQL error
 * or a refused statement, or `sql` NULL); TH_ELIMIT (time or memory limit); TH_ENOTFOUND;
 * TH_ESTORE; or what a sink callback returned. */
int th_query_run(th_query_info *info, const th_query_target *t, const char *sql,
                 const th_query_opts *o, const th_sql_sink *sink, th_error *err);

/* th_query_run with `binds` (sqlcache.h; may be NULL) bound to the statement's ":name"
 * parameters, never spliced into it. Returns what th_query_run does; TH_EINVALID also for a
 * parameter without a value, or a value not of its type. */
int th_query_run_bound(th_query_info *info, const th_query_target *t, const char *sql,
                       const th_sql_binds *binds, const th_query_opts *o, const th_sql_sink *sink,
                       th_error *err);

/* Check `sql` at t->ref as th_query_run would run it (one read-only statement over tables and
 * columns that exist there), without running it, and list its ":name" parameters into *names
 * (NULL-terminated, th_strv_free). Returns TH_OK or what th_query_run does. */
int th_query_params(char ***names, const th_query_target *t, const char *sql, th_error *err);

/* The tables at t->ref, as the result of MySQL's SHOW TABLES: one text column named
 * "Tables_in_<db>", one row a table, in name order, streamed to `sink` (no snapshot is needed).
 * *info (may be NULL) gets the commit and the row count. Returns TH_OK, TH_ENOTFOUND, TH_EINVALID,
 * TH_ESTORE or what a sink callback returned. */
int th_query_tables(th_query_info *info, const th_query_target *t, const th_sql_sink *sink,
                    th_error *err);

/* Start exporting table `table` at t->ref through exporter `fmt` (every row in key order, read
 * straight from git, without a snapshot); read it with th_table_export_read (export.h). Returns
 * TH_OK, TH_ENOTFOUND (database, ref or table: "table 'x' not found at 'ref'"), TH_EINVALID (a
 * malformed name or ref) or TH_ESTORE. Free *out with th_table_export_free. */
int th_query_export(th_table_export **out, const th_exporter *fmt, const th_query_target *t,
                    const char *table, th_error *err);

/* Every table at a ref as one zip archive (src/query_archive.c): an entry "<table>.<ext>" per
 * table in name order, each written by exporter `fmt` straight from git, deflated as it streams,
 * so the archive is made in constant memory as it is read. */
typedef struct th_query_archive th_query_archive;

/* Resolve t->ref (copied, as the other target strings) and start the archive of its tables.
 * Returns TH_OK, TH_ENOTFOUND (database or ref), TH_EINVALID (a malformed name or ref), TH_ENOMEM
 * or TH_ESTORE. Free *out with th_query_archive_free. */
int th_query_archive_new(th_query_archive **out, const th_exporter *fmt, const th_query_target *t,
                         th_error *err);
/* Append archive bytes to `out` until it holds at least `want` bytes or the archive ends.
 * Returns 1 (there may be more), 0 (the end) or a negative code (TH_ESTORE, TH_EINVALID for a
 * row that does not decode, TH_ENOMEM). */
int th_query_archive_read(th_query_archive *a, th_buf *out, size_t want, th_error *err);
/* Accepts NULL. */
void th_query_archive_free(th_query_archive *a);

#endif
