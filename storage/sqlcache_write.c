/* sqlcache_write.c: writing a query snapshot (see include/tablehub/sqlcache.h).
 *
 * A snapshot is scratch data derived from git, rebuilt whenever it is lost, so it is written the
 * fastest way SQLite allows: no journal, no syncs, an exclusive lock, one transaction, one
 * prepared INSERT per table bound with typed values, SNAP_BATCH rows a statement when the caller
 * has them (th_snap_put_rows). Rows arrive in key order, so a WITHOUT ROWID
 * table only ever appends to its right-most leaf. Pages are 64 KiB: a snapshot is read through a
 * memory map, and a scan (a count(*) of a million rows) then touches 1,900 pages instead of
 * 15,000 at 8 KiB, 4 ms instead of 11 ms in a new connection. A snapshot being brought up to date
 * (th_snap_open on a copy of an older one) gets INSERT OR REPLACE and a DELETE prepared on first
 * use.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tablehub/buf.h"
#include "sqlcache_internal.h"

int th_sqlcache__error(th_error *err, sqlite3 *db, const char *what)
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

struct th_snap {
	sqlite3 *db;
};

struct th_snap_table {
	th_snap *snap;
	const th_schema *schema;
	char *name;
	sqlite3_stmt *ins;
	sqlite3_stmt *many; /* `batch` rows in one INSERT, prepared on first use; NULL: none */
	int batch;
	sqlite3_stmt *del; /* prepared on the first delete */
	int fresh;
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
		error = th_sqlcache__error(err, snap->db, "cannot commit snapshot");
	if (sqlite3_close(snap->db) != SQLITE_OK && error == TH_OK)
		error = th_sqlcache__error(err, snap->db, "cannot close snapshot");
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
		return th_sqlcache__error(err, snap->db, what);
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
	t->fresh = fresh;
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
		error = th_sqlcache__error(err, snap->db, "cannot prepare insert");
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

	/* Refused before anything is written, with the reason a caller can pass on. */
	if (s->ncols > (size_t)sqlite3_limit(snap->db, SQLITE_LIMIT_COLUMN, -1))
		return th_error_set(err, TH_ELIMIT,
		                    "table '%s' has %zu columns; SQLite allows at most %d", name,
		                    s->ncols, sqlite3_limit(snap->db, SQLITE_LIMIT_COLUMN, -1));
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
	if (sqlite3_exec(snap->db, sql.ptr, NULL, NULL, NULL) != SQLITE_OK) {
		/* SQLITE_ERROR: SQLite refuses this table's shape (two column names that differ
		 * only in case); anything else is the file's or the disk's failure. */
		error = (sqlite3_errcode(snap->db) & 0xff) == SQLITE_ERROR
		                ? th_error_set(err, TH_EINVALID, "cannot create table '%s': %s",
		                               name, sqlite3_errmsg(snap->db))
		                : th_sqlcache__error(err, snap->db, "cannot create table");
		goto cleanup;
	}
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
		return th_sqlcache__error(err, snap->db, "cannot read snapshot schema");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return th_error_set(err, TH_ENOTFOUND, "table '%s' not found in snapshot", name);
	if (rc != SQLITE_ROW)
		return th_sqlcache__error(err, snap->db, "cannot read snapshot schema");
	return table_new(out, snap, name, s, 0, err);
}

void th_snap_table_free(th_snap_table *t)
{
	if (t == NULL)
		return;
	sqlite3_finalize(t->ins);
	sqlite3_finalize(t->many);
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
	if (rc == SQLITE_TOOBIG)
		return th_error_set(err, TH_ELIMIT, "cannot %s a row of table '%s': %s", what,
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

/* Prepare the INSERT of SNAP_BATCH rows at once (fewer if the columns would pass SQLite's limit
 * of bound parameters; none for a single row's worth): one statement run per batch instead of one
 * per row saves most of SQLite's per-statement work. */
#define SNAP_BATCH 32

static int prepare_many(th_snap_table *t, th_error *err)
{
	const th_schema *s = t->schema;
	th_buf sql = TH_BUF_INIT;
	int limit = sqlite3_limit(t->snap->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1), error = TH_OK;
	size_t r, i, ncols = s->ncols ? s->ncols : 1;

	t->batch = (int)((size_t)limit / ncols < SNAP_BATCH ? (size_t)limit / ncols : SNAP_BATCH);
	if (t->batch < 2) {
		t->batch = 1;
		return TH_OK;
	}
	if ((error = th_buf_puts(
	             &sql, t->fresh || s->npk == 0 ? "INSERT INTO " : "INSERT OR REPLACE INTO ",
	             err)) < 0 ||
	    (error = put_ident(&sql, t->name, err)) < 0 ||
	    (error = th_buf_puts(&sql, " VALUES ", err)) < 0)
		goto cleanup;
	for (r = 0; r < (size_t)t->batch; r++) {
		if ((error = th_buf_puts(&sql, r ? ",(" : "(", err)) < 0)
			goto cleanup;
		for (i = 0; i < s->ncols; i++)
			if ((error = th_buf_printf(&sql, err, "%s?", i ? "," : "")) < 0)
				goto cleanup;
		if ((error = th_buf_putc(&sql, ')', err)) < 0)
			goto cleanup;
	}
	if (sqlite3_prepare_v3(t->snap->db, sql.ptr, -1, SQLITE_PREPARE_PERSISTENT, &t->many,
	                       NULL) != SQLITE_OK)
		error = th_sqlcache__error(err, t->snap->db, "cannot prepare insert");
cleanup:
	th_buf_dispose(&sql);
	return error;
}

int th_snap_put_rows(th_snap_table *t, const th_cell *const *rows, size_t n, th_error *err)
{
	const th_schema *s = t->schema;
	size_t r, i;
	int error = TH_OK;

	if (t->batch == 0 && s->ncols > 0 && (error = prepare_many(t, err)) < 0)
		return error;
	while (n >= (size_t)t->batch && t->many != NULL) {
		for (r = 0; r < (size_t)t->batch; r++)
			for (i = 0; i < s->ncols; i++)
				bind_cell(t->many, (int)(r * s->ncols + i) + 1, s->cols[i].type,
				          &rows[r][i]);
		error = step_reset(t, t->many, "insert", err);
		sqlite3_clear_bindings(t->many);
		if (error < 0)
			return error;
		rows += t->batch;
		n -= (size_t)t->batch;
	}
	for (r = 0; r < n && error == TH_OK; r++)
		error = th_snap_put(t, rows[r], 1, err);
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
		error = th_sqlcache__error(err, t->snap->db, "cannot prepare delete");
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
