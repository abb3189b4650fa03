/* sqlcache.c: query snapshots as SQLite files, written in bulk and read through a sandbox (see
 * include/tablehub/sqlcache.h).
 *
 * Writing: a snapshot is scratch data derived from git, rebuilt whenever it is lost, so it is
 * written the fastest way SQLite allows: no journal, no syncs, an exclusive lock, one transaction,
 * one prepared INSERT per table bound with typed values. Rows arrive in key order, so a WITHOUT
 * ROWID table only ever appends to its right-most leaf. Pages are 64 KiB: a snapshot is read
 * through a memory map, and a scan (a count(*) of a million rows) then touches 1,900 pages
 * instead of 15,000 at 8 KiB, 4 ms instead of 11 ms in a new connection.
 *
 * Reading: th_snap_query opens the file read-only and `immutable` (no SQLite locks, no change
 * checks: a snapshot never changes under a reader), memory-mapped, keeps the connection for the
 * next query of that file, and puts fences around the one statement it runs: its first word
 * (INSERT, VACUUM, ATTACH... are refused by name), an authorizer that allows reads only,
 * sqlite3_stmt_readonly (which also catches VACUUM, a statement the authorizer never sees),
 * SQLITE_LIMIT_ATTACHED 0, PRAGMA query_only, and limits on time (a progress handler), rows and
 * heap.
 *
 * The heap limit: SQLite's own limits are process-wide (sqlite3_hard_heap_limit64), which would
 * let one greedy query fail every other connection. So SQLite's allocator is wrapped, from a
 * constructor that runs before main() and hence before SQLite's first use: each block carries a
 * 16-byte header naming the budget it was charged to. A query thread sets its budget in a
 * thread-local while it prepares, steps and closes its statement, so only the query's own
 * allocations count, and a block is uncharged from the budget it was charged to wherever it is
 * freed. Budgets live in a static array and are never freed, so a block that outlives its query
 * can never point at freed memory.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tablehub/buf.h"
#include "tablehub/log.h"
#include "tablehub/sqlcache.h"

/* --- the budgeted allocator ------------------------------------------------------------------ */

#define HEAP_HDR 16
#define HEAP_SLOTS 64

typedef struct heap_budget {
	_Atomic int64_t used;
	int64_t limit;
	atomic_int exceeded;
	int in_use; /* guarded by heap_mu */
} heap_budget;

static heap_budget heap_budgets[HEAP_SLOTS];
static pthread_mutex_t heap_mu = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local heap_budget *heap_current;
static sqlite3_mem_methods heap_base;
static int heap_installed;

static int heap_charge(heap_budget *b, int64_t n)
{
	int64_t now = atomic_fetch_add(&b->used, n) + n;

	if (n > 0 && b->limit > 0 && now > b->limit) {
		atomic_fetch_sub(&b->used, n);
		atomic_store(&b->exceeded, 1);
		return -1;
	}
	return 0;
}

static void heap_header_read(void *q, heap_budget **b, int64_t *size)
{
	unsigned char *p = (unsigned char *)q - HEAP_HDR;

	memcpy(b, p, sizeof(*b));
	memcpy(size, p + 8, sizeof(*size));
}

static void *heap_header_write(unsigned char *p, heap_budget *b, int64_t size)
{
	memcpy(p, &b, sizeof(b));
	memcpy(p + 8, &size, sizeof(size));
	return p + HEAP_HDR;
}

static void *heap_malloc(int n)
{
	heap_budget *b = heap_current;
	unsigned char *p;

	if (n < 0)
		return NULL;
	if (b != NULL && heap_charge(b, (int64_t)n + HEAP_HDR) < 0)
		return NULL;
	if ((p = heap_base.xMalloc(n + HEAP_HDR)) == NULL) {
		if (b != NULL)
			heap_charge(b, -((int64_t)n + HEAP_HDR));
		return NULL;
	}
	return heap_header_write(p, b, n);
}

static void heap_free(void *q)
{
	heap_budget *b;
	int64_t size;

	if (q == NULL)
		return;
	heap_header_read(q, &b, &size);
	if (b != NULL)
		atomic_fetch_sub(&b->used, size + HEAP_HDR);
	heap_base.xFree((unsigned char *)q - HEAP_HDR);
}

static void *heap_realloc(void *q, int n)
{
	heap_budget *b;
	int64_t size, delta;
	unsigned char *p;

	if (q == NULL)
		return heap_malloc(n);
	if (n < 0)
		return NULL;
	heap_header_read(q, &b, &size);
	delta = (int64_t)n - size;
	if (b != NULL && delta > 0 && heap_charge(b, delta) < 0)
		return NULL;
	if ((p = heap_base.xRealloc((unsigned char *)q - HEAP_HDR, n + HEAP_HDR)) == NULL) {
		if (b != NULL && delta > 0)
			heap_charge(b, -delta);
		return NULL;
	}
	if (b != NULL && delta < 0)
		atomic_fetch_add(&b->used, delta);
	return heap_header_write(p, b, n);
}

static int heap_size(void *q)
{
	heap_budget *b;
	int64_t size;

	if (q == NULL)
		return 0;
	heap_header_read(q, &b, &size);
	return (int)size;
}

static int heap_roundup(int n)
{
	return (n + 7) & ~7;
}

static int heap_init(void *app)
{
	(void)app;
	return heap_base.xInit(heap_base.pAppData);
}

static void heap_shutdown(void *app)
{
	(void)app;
	heap_base.xShutdown(heap_base.pAppData);
}

/* Runs before main(): sqlite3_config(SQLITE_CONFIG_MALLOC) is refused once SQLite is in use. */
__attribute__((constructor)) static void heap_install(void)
{
	static sqlite3_mem_methods wrapped = { heap_malloc,  heap_free, heap_realloc,  heap_size,
		                               heap_roundup, heap_init, heap_shutdown, NULL };

	if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &heap_base) != SQLITE_OK)
		return;
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &wrapped) == SQLITE_OK)
		heap_installed = 1;
}

int th_snap_heap_limit_available(void)
{
	return heap_installed;
}

static heap_budget *heap_budget_acquire(uint64_t limit)
{
	static atomic_int warned;
	heap_budget *b = NULL;
	size_t i;

	if (limit == 0)
		return NULL;
	if (!heap_installed) {
		if (atomic_exchange(&warned, 1) == 0)
			TH_LOG(TH_LOG_WARN,
			       "query heap limit not enforced: SQLite's allocator could "
			       "not be wrapped");
		return NULL;
	}
	pthread_mutex_lock(&heap_mu);
	for (i = 0; i < HEAP_SLOTS; i++) {
		if (!heap_budgets[i].in_use) {
			b = &heap_budgets[i];
			b->in_use = 1;
			atomic_store(&b->used, 0);
			atomic_store(&b->exceeded, 0);
			b->limit = limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
			break;
		}
	}
	pthread_mutex_unlock(&heap_mu);
	/* More than HEAP_SLOTS queries at once: this one runs unmetered rather than waiting. */
	return b;
}

static void heap_budget_release(heap_budget *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&heap_mu);
	b->in_use = 0;
	pthread_mutex_unlock(&heap_mu);
}

/* --- helpers -----------------------------------------------------------------------------------
 */

/* The one translation of a SQLite failure in this file: TH_ESTORE with SQLite's message. */
static int sql_error(th_error *err, sqlite3 *db, const char *what)
{
	return th_error_set(err, TH_ESTORE, "%s: %s", what, db ? sqlite3_errmsg(db) : "no memory");
}

static int put_ident(th_buf *b, const char *name, th_error *err)
{
	int error;
	const char *p;

	if ((error = th_buf_putc(b, '"', err)) < 0)
		return error;
	for (p = name; *p; p++) {
		if ((error = th_buf_putc(b, *p, err)) < 0)
			return error;
		if (*p == '"' && (error = th_buf_putc(b, '"', err)) < 0)
			return error;
	}
	return th_buf_putc(b, '"', err);
}

static const char *decl_type(th_type t)
{
	switch (t) {
	case TH_TYPE_INTEGER:
		return "INTEGER";
	case TH_TYPE_REAL:
		return "REAL";
	case TH_TYPE_BOOLEAN:
		return "BOOLEAN";
	case TH_TYPE_DATE:
		return "DATE";
	case TH_TYPE_DATETIME:
		return "DATETIME";
	default:
		return "TEXT";
	}
}

/* --- writing -----------------------------------------------------------------------------------
 */

struct th_snap {
	sqlite3 *db;
};

struct th_snap_table {
	th_snap *snap;
	const th_schema *schema;
	char *name;
	sqlite3_stmt *ins;
	sqlite3_stmt *del; /* prepared on the first delete */
};

static int snap_open(th_snap **out, const char *path, int create, th_error *err)
{
	static const char *pragmas = "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
	                             "PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-65536; "
	                             "PRAGMA temp_store=MEMORY; BEGIN IMMEDIATE";
	th_snap *snap;
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;

	if (create) {
		flags |= SQLITE_OPEN_CREATE;
		if (unlink(path) < 0 && errno != ENOENT)
			return th_error_set(err, TH_ESTORE, "cannot remove '%s': %s", path,
			                    strerror(errno));
	} else if (access(path, F_OK) < 0) {
		return th_error_set(err, TH_ENOTFOUND, "snapshot '%s' not found", path);
	}
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK)
		goto fail;
	if (create && sqlite3_exec(db, "PRAGMA page_size=65536", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if ((snap = calloc(1, sizeof(*snap))) == NULL) {
		sqlite3_close_v2(db);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	snap->db = db;
	*out = snap;
	return TH_OK;
fail:
	th_error_set(err, TH_ESTORE, "cannot open snapshot '%s': %s", path,
	             db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_close_v2(db);
	return TH_ESTORE;
}

int th_snap_create(th_snap **out, const char *path, th_error *err)
{
	return snap_open(out, path, 1, err);
}

int th_snap_open(th_snap **out, const char *path, th_error *err)
{
	return snap_open(out, path, 0, err);
}

int th_snap_commit(th_snap *snap, th_error *err)
{
	int error = TH_OK;

	if (sqlite3_exec(snap->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		error = sql_error(err, snap->db, "cannot commit snapshot");
	if (sqlite3_close(snap->db) != SQLITE_OK && error == TH_OK)
		error = sql_error(err, snap->db, "cannot close snapshot");
	if (error < 0)
		sqlite3_close_v2(snap->db); /* close() failed and kept it open: let it go */
	free(snap);
	return error;
}

void th_snap_free(th_snap *snap)
{
	if (snap == NULL)
		return;
	sqlite3_exec(snap->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close_v2(snap->db);
	free(snap);
}

static int exec_buf(th_snap *snap, th_buf *sql, const char *what, th_error *err)
{
	if (sqlite3_exec(snap->db, sql->ptr, NULL, NULL, NULL) != SQLITE_OK)
		return sql_error(err, snap->db, what);
	return TH_OK;
}

int th_snap_table_drop(th_snap *snap, const char *name, th_error *err)
{
	th_buf sql = TH_BUF_INIT;
	int error;

	if ((error = th_buf_puts(&sql, "DROP TABLE IF EXISTS ", err)) == 0 &&
	    (error = put_ident(&sql, name, err)) == 0)
		error = exec_buf(snap, &sql, "cannot drop table", err);
	th_buf_dispose(&sql);
	return error;
}

static int table_new(th_snap_table **out, th_snap *snap, const char *name, const th_schema *s,
                     int fresh, th_error *err)
{
	th_snap_table *t = NULL;
	th_buf sql = TH_BUF_INIT;
	size_t i;
	int error;

	if ((t = calloc(1, sizeof(*t))) == NULL || (t->name = strdup(name)) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	t->snap = snap;
	t->schema = s;
	/* A fresh keyed table gets rows with distinct keys in key order: a plain INSERT. A table
	 * being brought up to date replaces the row of the same key. */
	if ((error = th_buf_puts(&sql,
	                         fresh || s->npk == 0 ? "INSERT INTO " : "INSERT OR REPLACE INTO ",
	                         err)) < 0 ||
	    (error = put_ident(&sql, name, err)) < 0 ||
	    (error = th_buf_puts(&sql, " VALUES (", err)) < 0)
		goto cleanup;
	for (i = 0; i < s->ncols; i++)
		if ((error = th_buf_printf(&sql, err, "%s?%zu", i ? "," : "", i + 1)) < 0)
			goto cleanup;
	if ((error = th_buf_putc(&sql, ')', err)) < 0)
		goto cleanup;
	if (sqlite3_prepare_v3(snap->db, sql.ptr, -1, SQLITE_PREPARE_PERSISTENT, &t->ins, NULL) !=
	    SQLITE_OK) {
		error = sql_error(err, snap->db, "cannot prepare insert");
		goto cleanup;
	}
	*out = t;
	t = NULL;
cleanup:
	th_snap_table_free(t);
	th_buf_dispose(&sql);
	return error;
}

int th_snap_table_create(th_snap_table **out, th_snap *snap, const char *name, const th_schema *s,
                         th_error *err)
{
	th_buf sql = TH_BUF_INIT;
	size_t i;
	int error;

	if ((error = th_snap_table_drop(snap, name, err)) < 0)
		return error;
	if ((error = th_buf_puts(&sql, "CREATE TABLE ", err)) < 0 ||
	    (error = put_ident(&sql, name, err)) < 0 || (error = th_buf_puts(&sql, " (", err)) < 0)
		goto cleanup;
	for (i = 0; i < s->ncols; i++) {
		if ((i && (error = th_buf_puts(&sql, ", ", err)) < 0) ||
		    (error = put_ident(&sql, s->cols[i].name, err)) < 0 ||
		    (error = th_buf_printf(&sql, err, " %s%s", decl_type(s->cols[i].type),
		                           s->cols[i].nullable ? "" : " NOT NULL")) < 0)
			goto cleanup;
	}
	if (s->npk > 0) {
		if ((error = th_buf_puts(&sql, ", PRIMARY KEY (", err)) < 0)
			goto cleanup;
		for (i = 0; i < s->npk; i++)
			if ((i && (error = th_buf_puts(&sql, ", ", err)) < 0) ||
			    (error = put_ident(&sql, s->cols[s->pk[i]].name, err)) < 0)
				goto cleanup;
		if ((error = th_buf_puts(&sql, ")) WITHOUT ROWID", err)) < 0)
			goto cleanup;
	} else if ((error = th_buf_putc(&sql, ')', err)) < 0) {
		goto cleanup;
	}
	if ((error = exec_buf(snap, &sql, "cannot create table", err)) < 0)
		goto cleanup;
	error = table_new(out, snap, name, s, 1, err);
cleanup:
	th_buf_dispose(&sql);
	return error;
}

int th_snap_table_open(th_snap_table **out, th_snap *snap, const char *name, const th_schema *s,
                       th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(snap->db,
	                       "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1", -1,
	                       &st, NULL) != SQLITE_OK)
		return sql_error(err, snap->db, "cannot read snapshot schema");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return th_error_set(err, TH_ENOTFOUND, "table '%s' not found in snapshot", name);
	if (rc != SQLITE_ROW)
		return sql_error(err, snap->db, "cannot read snapshot schema");
	return table_new(out, snap, name, s, 0, err);
}

void th_snap_table_free(th_snap_table *t)
{
	if (t == NULL)
		return;
	sqlite3_finalize(t->ins);
	sqlite3_finalize(t->del);
	free(t->name);
	free(t);
}

/* Parse a decimal int64 (the only form integer cells take). Returns 0 on success. */
static int parse_int64(const char *s, size_t len, sqlite3_int64 *out)
{
	uint64_t v = 0;
	size_t i = 0;
	int neg = 0;

	if (len > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len || len - i > 19)
		return -1;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
		return -1;
	*out = neg ? (sqlite3_int64)(0 - v) : (sqlite3_int64)v;
	return 0;
}

/* Bind cell `c` of a column of type `type` to parameter `idx`. Text is bound SQLITE_STATIC: it
 * must live until the statement is stepped and reset. */
static int bind_cell(sqlite3_stmt *st, int idx, th_type type, const th_cell *c)
{
	sqlite3_int64 i64;

	if (c->is_null || c->s == NULL)
		return sqlite3_bind_null(st, idx);
	switch (type) {
	case TH_TYPE_INTEGER:
		if (parse_int64(c->s, c->len, &i64) == 0)
			return sqlite3_bind_int64(st, idx, i64);
		break;
	case TH_TYPE_REAL: {
		char *end;
		double d = strtod(c->s, &end);
		if (end != c->s && *end == '\0')
			return sqlite3_bind_double(st, idx, d);
		break;
	}
	case TH_TYPE_BOOLEAN:
		if (c->len > 0 && (c->s[0] == 't' || c->s[0] == 'T' || c->s[0] == '1'))
			return sqlite3_bind_int(st, idx, 1);
		if (c->len > 0 && (c->s[0] == 'f' || c->s[0] == 'F' || c->s[0] == '0'))
			return sqlite3_bind_int(st, idx, 0);
		break;
	default:
		break;
	}
	return sqlite3_bind_text(st, idx, c->s, (int)c->len, SQLITE_STATIC);
}

static int step_reset(th_snap_table *t, sqlite3_stmt *st, const char *what, th_error *err)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return TH_OK;
	if (rc == SQLITE_CONSTRAINT)
		return th_error_set(err, TH_EINVALID, "cannot %s a row of table '%s': %s", what,
		                    t->name, sqlite3_errmsg(t->snap->db));
	return th_error_set(err, TH_ESTORE, "cannot %s a row of table '%s': %s", what, t->name,
	                    sqlite3_errmsg(t->snap->db));
}

int th_snap_put(th_snap_table *t, const th_cell *cells, uint64_t count, th_error *err)
{
	const th_schema *s = t->schema;
	uint64_t k;
	size_t i;
	int error = TH_OK;

	if (s->npk > 0)
		count = 1;
	for (i = 0; i < s->ncols; i++)
		bind_cell(t->ins, (int)i + 1, s->cols[i].type, &cells[i]);
	for (k = 0; k < count && error == TH_OK; k++)
		error = step_reset(t, t->ins, "insert", err);
	sqlite3_clear_bindings(t->ins);
	return error;
}

static int prepare_delete(th_snap_table *t, th_error *err)
{
	const th_schema *s = t->schema;
	th_buf sql = TH_BUF_INIT;
	size_t i;
	int error;

	if (s->npk > 0) {
		if ((error = th_buf_puts(&sql, "DELETE FROM ", err)) < 0 ||
		    (error = put_ident(&sql, t->name, err)) < 0 ||
		    (error = th_buf_puts(&sql, " WHERE ", err)) < 0)
			goto cleanup;
		for (i = 0; i < s->npk; i++)
			if ((i && (error = th_buf_puts(&sql, " AND ", err)) < 0) ||
			    (error = put_ident(&sql, s->cols[s->pk[i]].name, err)) < 0 ||
			    (error = th_buf_printf(&sql, err, " = ?%zu", i + 1)) < 0)
				goto cleanup;
	} else {
		/* Keyless: remove `count` of the rows equal in every column (IS matches NULLs). */
		if ((error = th_buf_puts(&sql, "DELETE FROM ", err)) < 0 ||
		    (error = put_ident(&sql, t->name, err)) < 0 ||
		    (error = th_buf_puts(&sql, " WHERE rowid IN (SELECT rowid FROM ", err)) < 0 ||
		    (error = put_ident(&sql, t->name, err)) < 0 ||
		    (error = th_buf_puts(&sql, " WHERE ", err)) < 0)
			goto cleanup;
		for (i = 0; i < s->ncols; i++)
			if ((i && (error = th_buf_puts(&sql, " AND ", err)) < 0) ||
			    (error = put_ident(&sql, s->cols[i].name, err)) < 0 ||
			    (error = th_buf_printf(&sql, err, " IS ?%zu", i + 1)) < 0)
				goto cleanup;
		if ((error = th_buf_printf(&sql, err, " LIMIT ?%zu)", s->ncols + 1)) < 0)
			goto cleanup;
	}
	if (sqlite3_prepare_v3(t->snap->db, sql.ptr, -1, SQLITE_PREPARE_PERSISTENT, &t->del,
	                       NULL) != SQLITE_OK)
		error = sql_error(err, t->snap->db, "cannot prepare delete");
cleanup:
	th_buf_dispose(&sql);
	return error;
}

int th_snap_delete(th_snap_table *t, const th_cell *cells, uint64_t count, th_error *err)
{
	const th_schema *s = t->schema;
	size_t i;
	int error;

	if (t->del == NULL && (error = prepare_delete(t, err)) < 0)
		return error;
	if (s->npk > 0) {
		for (i = 0; i < s->npk; i++)
			bind_cell(t->del, (int)i + 1, s->cols[s->pk[i]].type, &cells[s->pk[i]]);
	} else {
		for (i = 0; i < s->ncols; i++)
			bind_cell(t->del, (int)i + 1, s->cols[i].type, &cells[i]);
		sqlite3_bind_int64(t->del, (int)s->ncols + 1,
		                   count > INT64_MAX ? INT64_MAX : (sqlite3_int64)count);
	}
	error = step_reset(t, t->del, "delete", err);
	sqlite3_clear_bindings(t->del);
	return error;
}

/* --- querying ----------------------------------------------------------------------------------
 */

typedef struct query_ctx {
	char reason[256]; /* why the authorizer refused, for the error message */
	char word[32];    /* the statement's first word, upper-cased */
	int64_t deadline_ms;
	int timed_out;
} query_ctx;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int on_progress(void *p)
{
	query_ctx *q = p;

	if (q->deadline_ms > 0 && now_ms() > q->deadline_ms) {
		q->timed_out = 1;
		return 1;
	}
	return 0;
}

static const char *const allowed_pragmas[] = {
	"table_info",    "table_xinfo", "table_list",       "index_list",
	"index_info",    "index_xinfo", "foreign_key_list", "collation_list",
	"function_list", "module_list", "pragma_list",      NULL,
};

static const char *action_name(int action)
{
	switch (action) {
	case SQLITE_INSERT:
		return "INSERT";
	case SQLITE_UPDATE:
		return "UPDATE";
	case SQLITE_DELETE:
		return "DELETE";
	case SQLITE_TRANSACTION:
		return "a transaction";
	case SQLITE_SAVEPOINT:
		return "SAVEPOINT";
	case SQLITE_ANALYZE:
		return "ANALYZE";
	case SQLITE_REINDEX:
		return "REINDEX";
	case SQLITE_ALTER_TABLE:
		return "ALTER TABLE";
	case SQLITE_CREATE_TEMP_TABLE:
	case SQLITE_CREATE_TEMP_INDEX:
	case SQLITE_CREATE_TEMP_TRIGGER:
	case SQLITE_CREATE_TEMP_VIEW:
		return "creating a temporary object";
	case SQLITE_CREATE_TABLE:
	case SQLITE_CREATE_INDEX:
	case SQLITE_CREATE_TRIGGER:
	case SQLITE_CREATE_VIEW:
	case SQLITE_CREATE_VTABLE:
		return "CREATE";
	case SQLITE_DROP_TABLE:
	case SQLITE_DROP_INDEX:
	case SQLITE_DROP_TRIGGER:
	case SQLITE_DROP_VIEW:
	case SQLITE_DROP_VTABLE:
	case SQLITE_DROP_TEMP_TABLE:
	case SQLITE_DROP_TEMP_INDEX:
	case SQLITE_DROP_TEMP_TRIGGER:
	case SQLITE_DROP_TEMP_VIEW:
		return "DROP";
	default:
		return "this statement";
	}
}

static int deny(query_ctx *q, const char *fmt, ...) TH_PRINTF(2, 3);
static int deny(query_ctx *q, const char *fmt, ...)
{
	va_list ap;

	if (q->reason[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(q->reason, sizeof(q->reason), fmt, ap);
		va_end(ap);
	}
	return SQLITE_DENY;
}

static int authorize(void *p, int action, const char *a1, const char *a2, const char *dbname,
                     const char *trigger)
{
	query_ctx *q = p;
	size_t i;

	(void)dbname;
	(void)trigger;
	switch (action) {
	case SQLITE_SELECT:
	case SQLITE_READ:
	case SQLITE_RECURSIVE:
		return SQLITE_OK;
	case SQLITE_FUNCTION:
		if (a2 != NULL && (strcasecmp(a2, "load_extension") == 0 ||
		                   strcasecmp(a2, "fts3_tokenizer") == 0))
			return deny(q, "function %s() is not allowed", a2);
		return SQLITE_OK;
	case SQLITE_PRAGMA:
		for (i = 0; a1 != NULL && allowed_pragmas[i] != NULL; i++)
			if (strcasecmp(a1, allowed_pragmas[i]) == 0)
				return SQLITE_OK;
		return deny(q, "PRAGMA %s is not allowed: queries are read-only", a1 ? a1 : "");
	case SQLITE_ATTACH:
		return deny(q, "%s is not allowed: a query reads only its own database", "ATTACH");
	case SQLITE_DETACH:
		return deny(q, "%s is not allowed: a query reads only its own database", "DETACH");
	case SQLITE_UPDATE:
		/* The first use of a table-valued pragma (pragma_table_info) makes SQLite ask to
		 * update sqlite_master's columns for its internal schema entry. Harmless:
		 * statements that really write are refused by their first word and by
		 * sqlite3_stmt_readonly, and the connection is read-only. */
		if (a1 != NULL &&
		    (strcmp(a1, "sqlite_master") == 0 || strcmp(a1, "sqlite_temp_master") == 0))
			return SQLITE_OK;
		return deny(q, "%s is not allowed: queries are read-only", action_name(action));
	default:
		return deny(q, "%s is not allowed: queries are read-only", action_name(action));
	}
}

/* The first word of `sql` after blanks and comments, upper-cased, for messages. */
static void first_word(char out[32], const char *sql)
{
	size_t n = 0;

	for (;;) {
		while (isspace((unsigned char)*sql) || *sql == ';' || *sql == '(')
			sql++;
		if (sql[0] == '-' && sql[1] == '-') {
			sql += strcspn(sql, "\n");
		} else if (sql[0] == '/' && sql[1] == '*') {
			const char *end = strstr(sql + 2, "*/");
			sql = end ? end + 2 : sql + strlen(sql);
		} else {
			break;
		}
	}
	while (n < 31 && isalpha((unsigned char)sql[n])) {
		out[n] = (char)toupper((unsigned char)sql[n]);
		n++;
	}
	out[n] = '\0';
}

/* Refuse a statement that writes by its first word, before SQLite sees it, with a message that
 * names it (the authorizer and sqlite3_stmt_readonly would refuse it too, less clearly). Returns
 * why, or NULL when the statement may go on. */
static const char *refuse_word(const char *word)
{
	static const char *const writing[] = { "INSERT",  "UPDATE",   "DELETE",    "REPLACE",
		                               "CREATE",  "DROP",     "ALTER",     "VACUUM",
		                               "REINDEX", "ANALYZE",  "BEGIN",     "COMMIT",
		                               "END",     "ROLLBACK", "SAVEPOINT", "RELEASE",
		                               NULL };
	size_t i;

	if (strcmp(word, "ATTACH") == 0 || strcmp(word, "DETACH") == 0)
		return "a query reads only its own database";
	for (i = 0; writing[i] != NULL; i++)
		if (strcmp(word, writing[i]) == 0)
			return "queries are read-only";
	return NULL;
}

/* "file:" + path with the characters a URI reserves escaped + "?immutable=1". */
static int immutable_uri(th_buf *out, const char *path, th_error *err)
{
	const char *p;
	int error;

	if ((error = th_buf_puts(out, "file:", err)) < 0)
		return error;
	for (p = path; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (isalnum(c) || strchr("/-._~", c) != NULL)
			error = th_buf_putc(out, (char)c, err);
		else
			error = th_buf_printf(out, err, "%%%02X", c);
		if (error < 0)
			return error;
	}
	return th_buf_puts(out, "?immutable=1", err);
}

static const char *type_of_decl(const char *decl)
{
	static const char *const names[][2] = {
		{ "INTEGER", "integer" }, { "REAL", "real" },         { "BOOLEAN", "boolean" },
		{ "DATE", "date" },       { "DATETIME", "datetime" }, { "TEXT", "text" },
	};
	size_t i;

	for (i = 0; decl != NULL && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(decl, names[i][0]) == 0)
			return names[i][1];
	return NULL;
}

static const char *type_of_value(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		return "integer";
	case SQLITE_FLOAT:
		return "real";
	case SQLITE_BLOB:
		return "blob";
	default:
		return "text";
	}
}

/* Send the column names and types (`have_row`: the statement is on its first row). */
static int send_columns(sqlite3_stmt *st, int have_row, const th_sql_sink *sink, th_error *err)
{
	int n = sqlite3_column_count(st), i, error;
	const char **names, **types;

	if (sink->columns == NULL)
		return TH_OK;
	names = calloc((size_t)n + 1, sizeof(*names));
	types = calloc((size_t)n + 1, sizeof(*types));
	if (names == NULL || types == NULL) {
		free(names);
		free(types);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		const char *t = type_of_decl(sqlite3_column_decltype(st, i));
		names[i] = sqlite3_column_name(st, i);
		if (names[i] == NULL)
			names[i] = "";
		types[i] = t ? t : have_row ? type_of_value(st, i) : "text";
	}
	error = sink->columns(sink->payload, (size_t)n, names, types, err);
	free(names);
	free(types);
	return error;
}

static int send_row(sqlite3_stmt *st, th_cell *cells, size_t *offsets, th_buf *scratch,
                    const th_sql_sink *sink, th_error *err)
{
	int n = sqlite3_column_count(st), i, error;

	th_buf_clear(scratch);
	for (i = 0; i < n; i++) {
		int type = sqlite3_column_type(st, i);
		cells[i].is_null = type == SQLITE_NULL;
		cells[i].s = NULL;
		cells[i].len = 0;
		if (type == SQLITE_NULL)
			continue;
		if (type == SQLITE_INTEGER) {
			/* A boolean column (stored 0/1) reads as true/false, as in its CSV. */
			const char *decl = sqlite3_column_decltype(st, i);
			sqlite3_int64 v = sqlite3_column_int64(st, i);
			if (decl != NULL && strcasecmp(decl, "BOOLEAN") == 0 &&
			    (v == 0 || v == 1)) {
				cells[i].s = v ? "true" : "false";
				cells[i].len = v ? 4 : 5;
				continue;
			}
		}
		if (type == SQLITE_BLOB) {
			/* Hex into scratch; the pointers are set once scratch stops growing. */
			const unsigned char *b = sqlite3_column_blob(st, i);
			int j, len = sqlite3_column_bytes(st, i);
			cells[i].len = (size_t)len * 2;
			offsets[i] = scratch->size;
			for (j = 0; j < len; j++)
				if ((error = th_buf_printf(scratch, err, "%02x", b[j])) < 0)
					return error;
			if ((error = th_buf_putc(scratch, '\0', err)) < 0)
				return error;
			continue;
		}
		cells[i].s = (const char *)sqlite3_column_text(st, i);
		cells[i].len = (size_t)sqlite3_column_bytes(st, i);
		if (cells[i].s == NULL)
			return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++)
		if (sqlite3_column_type(st, i) == SQLITE_BLOB)
			cells[i].s = scratch->ptr + offsets[i];
	return sink->row ? sink->row(sink->payload, cells, (size_t)n, err) : TH_OK;
}

static int query_failed(sqlite3 *db, int rc, const query_ctx *q, const heap_budget *hb,
                        const th_sql_limits *lim, th_error *err)
{
	if (q->timed_out) {
		if (lim->time_ms % 1000 == 0)
			return th_error_set(err, TH_ELIMIT, "query exceeded the time limit of %u s",
			                    lim->time_ms / 1000);
		return th_error_set(err, TH_ELIMIT, "query exceeded the time limit of %u ms",
		                    lim->time_ms);
	}
	if (hb != NULL && atomic_load(&hb->exceeded))
		return th_error_set(err, TH_ELIMIT, "query exceeded the memory limit of %llu MiB",
		                    (unsigned long long)((lim->heap_bytes + (1 << 20) - 1) >> 20));
	/* A refusal may surface as SQLITE_AUTH, or as SQLITE_ERROR from a table-valued pragma that
	 * prepared its own statement: either way the authorizer's reason is the message. */
	if (q->reason[0])
		return th_error_set(err, TH_EINVALID, "%s", q->reason);
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return th_error_set(err, TH_ENOMEM, "query error: out of memory");
	case SQLITE_IOERR:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_CANTOPEN:
	case SQLITE_FULL:
		return th_error_set(err, TH_ESTORE, "query error: %s", sqlite3_errmsg(db));
	default:
		return th_error_set(err, TH_EINVALID, "query error: %s", sqlite3_errmsg(db));
	}
}

/* Does `tail` (what follows the first statement) hold another statement? */
static int has_more_statements(sqlite3 *db, const char *tail)
{
	sqlite3_stmt *st = NULL;
	int rc, more;

	while (isspace((unsigned char)*tail) || *tail == ';')
		tail++;
	if (*tail == '\0')
		return 0;
	rc = sqlite3_prepare_v2(db, tail, -1, &st, NULL);
	more = rc != SQLITE_OK || st != NULL;
	sqlite3_finalize(st);
	return more;
}

/* --- open connections ----------------------------------------------------------------------- *
 * Opening a snapshot costs a parse of its schema and, worse, the page faults of a fresh memory
 * map: a count(*) over a million rows takes ~5 ms in a new connection and ~0.2 ms in a used one.
 * So read-only connections are kept, up to POOL_MAX, each used by one query at a time and closed
 * least recently used first. A kept connection holds no state between queries (nothing a query
 * can do survives it: writes, temp objects and pragmas that set are refused). Entries made by
 * another process (after a fork) are never touched.
 *
 * A query holds a shared flock on its snapshot file while it runs, so that a builder may take
 * over a snapshot nobody reads (th_snap_steal) instead of copying it. A query therefore opens the
 * file, locks it, checks that the path still names that file (it was not taken over meanwhile),
 * and has SQLite open that very file through /proc/self/fd. A kept connection is reused only for
 * the same file unchanged (device, inode, size and mtime; the cache's use marks set only atime). */

#define POOL_MAX 16

typedef struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
} file_id;

typedef struct pooled {
	char *path;
	sqlite3 *db;
	file_id id;
	pid_t pid;
	uint64_t last_use;
} pooled;

static pooled pool[POOL_MAX];
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t pool_clock;

static void file_id_of(file_id *out, const struct stat *st)
{
	memset(out, 0, sizeof(*out));
	out->dev = st->st_dev;
	out->ino = st->st_ino;
	out->size = st->st_size;
	out->mtime = st->st_mtim;
}

static int file_id_equal(const file_id *a, const file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static int conn_open(sqlite3 **out, int fd, const char *path, th_error *err)
{
	char proc[64];
	th_buf uri = TH_BUF_INIT;
	sqlite3 *db = NULL;
	int rc, error;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((error = immutable_uri(&uri, proc, err)) < 0)
		return error;
	rc = sqlite3_open_v2(uri.ptr, &db,
	                     SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX |
	                             SQLITE_OPEN_PRIVATECACHE,
	                     NULL);
	th_buf_dispose(&uri);
	if (rc != SQLITE_OK) {
		error = th_error_set(err, TH_ESTORE, "cannot open snapshot '%s': %s", path,
		                     db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close_v2(db);
		return error;
	}
	/* Settings first, while nothing is refused; the authorizer comes with each query. */
	sqlite3_exec(db, "PRAGMA mmap_size=2147418112", NULL, NULL, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
	sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
	if (sqlite3_exec(db, "PRAGMA query_only=1", NULL, NULL, NULL) != SQLITE_OK) {
		error = sql_error(err, db, "cannot set up query");
		sqlite3_close_v2(db);
		return error;
	}
	*out = db;
	return TH_OK;
}

/* A connection to the snapshot at `path` and, in *lock_fd, the descriptor that holds its shared
 * lock until conn_release. Returns TH_OK, TH_ENOTFOUND (no such file, or it was just taken over:
 * the caller makes it again) or TH_ESTORE. */
static int conn_acquire(sqlite3 **out, int *lock_fd, file_id *id, const char *path, th_error *err)
{
	struct stat st, now;
	sqlite3 *stale = NULL;
	pid_t me = getpid();
	size_t i;
	int fd, error;

	*out = NULL;
	*lock_fd = -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return th_error_set(err, errno == ENOENT ? TH_ENOTFOUND : TH_ESTORE,
		                    "cannot open snapshot '%s': %s", path, strerror(errno));
	while (flock(fd, LOCK_SH) < 0) {
		if (errno != EINTR) {
			error = th_error_set(err, TH_ESTORE, "cannot lock snapshot '%s': %s", path,
			                     strerror(errno));
			close(fd);
			return error;
		}
	}
	if (fstat(fd, &st) < 0 || stat(path, &now) < 0 || now.st_ino != st.st_ino ||
	    now.st_dev != st.st_dev) {
		close(fd);
		return th_error_set(err, TH_ENOTFOUND, "snapshot '%s' was replaced", path);
	}
	file_id_of(id, &st);
	pthread_mutex_lock(&pool_mu);
	for (i = 0; i < POOL_MAX; i++) {
		pooled *e = &pool[i];
		if (e->db == NULL || e->pid != me || strcmp(e->path, path) != 0)
			continue;
		if (file_id_equal(&e->id, id))
			*out = e->db;
		else
			stale = e->db;
		free(e->path);
		memset(e, 0, sizeof(*e));
		break;
	}
	pthread_mutex_unlock(&pool_mu);
	sqlite3_close_v2(stale);
	if (*out == NULL && (error = conn_open(out, fd, path, err)) < 0) {
		close(fd);
		return error;
	}
	*lock_fd = fd;
	return TH_OK;
}

/* Give the connection back and drop the lock: kept when `keep` and there is room (the least
 * recently used kept one is closed to make room), else closed. */
static void conn_release(sqlite3 *db, int lock_fd, const file_id *id, const char *path, int keep)
{
	sqlite3 *closing = db;
	pid_t me = getpid();
	char *copy = NULL;
	size_t i, slot = POOL_MAX;

	if (lock_fd >= 0)
		close(lock_fd);
	if (!keep || (copy = strdup(path)) == NULL) {
		sqlite3_close_v2(db);
		return;
	}
	pthread_mutex_lock(&pool_mu);
	for (i = 0; i < POOL_MAX; i++) {
		if (pool[i].db == NULL) {
			slot = i;
			break;
		}
		if (pool[i].pid == me &&
		    (slot == POOL_MAX || pool[i].last_use < pool[slot].last_use))
			slot = i;
	}
	if (slot < POOL_MAX) {
		pooled *e = &pool[slot];
		closing = e->db; /* NULL for a free slot */
		free(e->path);
		e->path = copy;
		e->db = db;
		e->id = *id;
		e->pid = me;
		e->last_use = ++pool_clock;
		copy = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	free(copy);
	sqlite3_close_v2(closing);
}

int th_snap_steal(int *lock_fd, const char *path, const char *to, th_error *err)
{
	struct stat st, now;
	int fd, e;

	*lock_fd = -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return th_error_set(err, TH_ENOTFOUND, "cannot open snapshot '%s': %s", path,
		                    strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return th_error_set(err, TH_EBUSY, "snapshot '%s' is being read", path);
	}
	if (fstat(fd, &st) < 0 || stat(path, &now) < 0 || now.st_ino != st.st_ino ||
	    now.st_dev != st.st_dev) {
		close(fd);
		return th_error_set(err, TH_ENOTFOUND, "snapshot '%s' was replaced", path);
	}
	if (rename(path, to) < 0) {
		e = errno;
		close(fd);
		return th_error_set(err, TH_ESTORE, "cannot rename '%s': %s", path, strerror(e));
	}
	*lock_fd = fd;
	return TH_OK;
}

int th_snap_query(int *truncated, const char *path, const char *sql, const th_sql_limits *lim,
                  const th_sql_sink *sink, th_error *err)
{
	static const th_sql_limits none = { 0, 0, 0 };
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	query_ctx q;
	heap_budget *hb = NULL;
	th_buf scratch = TH_BUF_INIT;
	file_id fid;
	int lock_fd = -1;
	th_cell *cells = NULL;
	size_t *offsets = NULL;
	uint64_t rows = 0;
	int rc, error = TH_OK, ncols;

	*truncated = 0;
	if (lim == NULL)
		lim = &none;
	memset(&q, 0, sizeof(q));
	first_word(q.word, sql);
	if (refuse_word(q.word) != NULL)
		return th_error_set(err, TH_EINVALID, "%s is not allowed: %s", q.word,
		                    refuse_word(q.word));
	if (sqlite3_initialize() != SQLITE_OK)
		return th_error_set(err, TH_ESTORE, "cannot initialise SQLite");
	if ((error = conn_acquire(&db, &lock_fd, &fid, path, err)) < 0)
		goto cleanup;
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH,
	              lim->heap_bytes == 0 || lim->heap_bytes / 2 > 1000000000
	                      ? 1000000000
	                      : (int)(lim->heap_bytes / 2));
	sqlite3_set_authorizer(db, authorize, &q);
	if (lim->time_ms > 0) {
		q.deadline_ms = now_ms() + lim->time_ms;
		sqlite3_progress_handler(db, 1000, on_progress, &q);
	}
	hb = heap_budget_acquire(lim->heap_bytes);
	heap_current = hb;

	rc = sqlite3_prepare_v3(db, sql, -1, 0, &st, &tail);
	if (rc != SQLITE_OK) {
		error = query_failed(db, rc, &q, hb, lim, err);
		goto cleanup;
	}
	if (st == NULL) {
		error = th_error_set(err, TH_EINVALID, "empty query");
		goto cleanup;
	}
	if (tail != NULL && has_more_statements(db, tail)) {
		error = th_error_set(err, TH_EINVALID, "only one statement per query is allowed");
		goto cleanup;
	}
	if (!sqlite3_stmt_readonly(st)) {
		error = th_error_set(err, TH_EINVALID, "%s is not allowed: queries are read-only",
		                     q.word[0] ? q.word : "this statement");
		goto cleanup;
	}
	ncols = sqlite3_column_count(st);
	cells = calloc((size_t)ncols + 1, sizeof(*cells));
	offsets = calloc((size_t)ncols + 1, sizeof(*offsets));
	if (cells == NULL || offsets == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			if (rows == 0 && (error = send_columns(st, 1, sink, err)) != 0)
				goto cleanup;
			if (lim->max_rows > 0 && rows == lim->max_rows) {
				*truncated = 1;
				break;
			}
			if ((error = send_row(st, cells, offsets, &scratch, sink, err)) != 0)
				goto cleanup;
			rows++;
		} else if (rc == SQLITE_DONE) {
			if (rows == 0 && (error = send_columns(st, 0, sink, err)) != 0)
				goto cleanup;
			break;
		} else if (q.timed_out && lim->max_rows > 0 && rows == lim->max_rows) {
			/* Looking for a row past the limit ran out of time: the result is cut
			 * either way. */
			*truncated = 1;
			break;
		} else {
			error = query_failed(db, rc, &q, hb, lim, err);
			goto cleanup;
		}
	}

cleanup:
	sqlite3_finalize(st);
	if (db != NULL) {
		sqlite3_set_authorizer(db, NULL, NULL);
		sqlite3_progress_handler(db, 0, NULL, NULL);
		/* A connection that ran out of time or memory, or failed below SQL, is not kept. */
		conn_release(db, lock_fd, &fid, path,
		             error != TH_ELIMIT && error != TH_ENOMEM && error != TH_ESTORE &&
		                     error != TH_ERROR);
	}
	heap_current = NULL;
	heap_budget_release(hb);
	free(cells);
	free(offsets);
	th_buf_dispose(&scratch);
	return error;
}
