/* sqlcache_internal.h: what the files of the query snapshot store share (see
 * include/tablehub/sqlcache.h). Nothing outside storage/ includes this file.
 *
 *   sqlcache_heap.c   SQLite's allocator wrapped with per-query heap budgets
 *   sqlcache_write.c  writing a snapshot (th_snap_create ... th_snap_commit)
 *   sqlcache_conn.c   the kept read-only connections, the readers' flock, th_snap_steal
 *   sqlcache_query.c  the sandbox: th_snap_query
 *   sqlcache_files.c  the cache directory: paths, the build lock, copies, renames, eviction
 */
#ifndef TABLEHUB_SQLCACHE_INTERNAL_H
#define TABLEHUB_SQLCACHE_INTERNAL_H

#include <sqlite3.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "tablehub/sqlcache.h"

/* The one translation of a SQLite failure: TH_ESTORE with "<what>: <SQLite's message>". */
int th_sqlcache__error(th_error *err, sqlite3 *db, const char *what);

/* --- heap budgets (sqlcache_heap.c) ------------------------------------------------------- */

typedef struct th_sqlcache_budget th_sqlcache_budget;

/* A budget of `limit` bytes for one query, or NULL: no limit asked for (0), the allocator is not
 * wrapped (a warning is logged once), or every budget slot is taken (the query runs unmetered
 * rather than waiting). Give it back with th_sqlcache__budget_release. */
th_sqlcache_budget *th_sqlcache__budget_acquire(uint64_t limit);
void th_sqlcache__budget_release(th_sqlcache_budget *b);
/* Charge this thread's SQLite allocations to `b` (NULL: to nobody) until the next call. */
void th_sqlcache__budget_enter(th_sqlcache_budget *b);
/* Did an allocation fail because `b` was spent? 0 for NULL. */
int th_sqlcache__budget_exceeded(const th_sqlcache_budget *b);

/* --- kept connections (sqlcache_conn.c) ---------------------------------------------------- */

/* What identifies a snapshot file's content: a kept connection is reused only for the same. */
typedef struct th_sqlcache_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
} th_sqlcache_file_id;

/* A read-only connection to the snapshot at `path` (kept from an earlier query of the same file,
 * or opened), and in *lock_fd the descriptor that holds a shared flock on the file until
 * th_sqlcache__conn_release. Returns TH_OK, TH_ENOTFOUND (no such file, or it was just taken
 * over: the caller makes it again) or TH_ESTORE. */
int th_sqlcache__conn_acquire(sqlite3 **out, int *lock_fd, th_sqlcache_file_id *id,
                              const char *path, th_error *err);
/* Give the connection back and drop the lock: kept when `keep` and there is room (the least
 * recently used kept one is closed to make room), else closed. */
void th_sqlcache__conn_release(sqlite3 *db, int lock_fd, const th_sqlcache_file_id *id,
                               const char *path, int keep);

#endif
