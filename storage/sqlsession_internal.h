/* sqlsession_internal.h: what the files of the SQL write session share (see
 * include/tablehub/sqlsession.h). Nothing outside storage/ includes this file.
 *
 *   sqlsession.c       opening a session, the sandbox, running statements
 *   sqlsession_rows.c  the record of changed keys (the preupdate hook) and reading rows back
 *   sqlsession_cow.c   the copy-on-write VFS the session's database lives in
 */
#ifndef TABLEHUB_SQLSESSION_INTERNAL_H
#define TABLEHUB_SQLSESSION_INTERNAL_H

/* The preupdate hook is in Debian's libsqlite3 (compiled with SQLITE_ENABLE_PREUPDATE_HOOK, as
 * the session extension needs); its declarations are only made visible by this define. */
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

#include "tablehub/buf.h"
#include "tablehub/sqlsession.h"
#include "sqlcache_internal.h"

#define TH_SQLSESSION_VFS "th_cow"

/* Register the copy-on-write VFS (once per process). Returns TH_OK or TH_ESTORE. */
int th_sqlsession__cow_register(th_error *err);

/* The keys recorded for one table: an open-addressing set of serialized key tuples. */
typedef struct th_sqls__keyset {
	th_buf arena;    /* the tuples, back to back */
	uint64_t *slots; /* 0 = empty, else (offset + 1) into the arena */
	size_t nslots, n;
} th_sqls__keyset;

/* A table the snapshot held, and what the statements did to it. */
typedef struct th_sqls__tab {
	char *name;
	size_t ncols;
	char **cols; /* the column names */
	size_t npk;
	int *pk;     /* column index of each key column, in key order */
	int touched; /* a row was inserted, updated or deleted */
	int inexact; /* changed rows were not all recorded: read the table whole */
	th_sqls__keyset keys;
} th_sqls__tab;

struct th_sqls {
	sqlite3 *db;
	int base_fd; /* the snapshot, a shared flock held on it */
	int over_fd;
	th_sqlcache_budget *budget;
	th_sql_limits lim;
	int failed;
	int internal; /* depth of th_sqls__begin_internal */

	/* the sandbox, for the statement being prepared or run */
	char reason[256];
	int64_t deadline_ms;
	int timed_out;

	uint64_t statements, changes;

	th_sqls__tab *tabs; /* the snapshot's tables */
	size_t ntabs;
	char **ddl; /* names a CREATE, DROP or ALTER TABLE touched */
	size_t nddl, capddl;
	size_t key_bytes; /* recorded in every table's set */
};

/* The snapshot's table named `name` (any case), or NULL. */
th_sqls__tab *th_sqls__tab_find(th_sqls *s, const char *name);

/* Read the snapshot's tables and their keys into s->tabs (before any statement). Returns TH_OK,
 * TH_ENOMEM or TH_ESTORE. */
int th_sqls__tabs_load(th_sqls *s, th_error *err);
void th_sqls__tabs_free(th_sqls *s);

/* The preupdate hook (installed by th_sqls_open). */
void th_sqls__on_preupdate(void *payload, sqlite3 *db, int op, const char *dbname,
                           const char *table, sqlite3_int64 key1, sqlite3_int64 key2);

/* Has a CREATE, DROP or ALTER TABLE touched `name` (any case)? */
int th_sqls__ddl_touched(const th_sqls *s, const char *name);

/* Run SQLite calls of the session outside the statements (reading back): charged to its heap
 * budget, without the authorizer or a deadline. th_sqls__end_internal restores them. */
void th_sqls__begin_internal(th_sqls *s);
void th_sqls__end_internal(th_sqls *s);

/* Append `name` as a quoted SQL identifier. TH_OK or TH_ENOMEM. */
int th_sqls__put_ident(th_buf *b, const char *name, th_error *err);

#endif
