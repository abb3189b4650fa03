/* sqlcache_query.c: th_snap_query, one read-only statement against a snapshot, in a sandbox
 * (see include/tablehub/sqlcache.h).
 *
 * The statement runs on a kept connection (sqlcache_conn.c) inside fences: its first word
 * (INSERT, VACUUM, ATTACH... are refused by name, with a message that names them), an authorizer
 * that allows reads only, sqlite3_stmt_readonly (which also catches VACUUM, a statement the
 * authorizer never sees), SQLITE_LIMIT_ATTACHED 0, PRAGMA query_only, and limits on time (a
 * progress handler), rows and heap (a budget of the wrapped allocator, sqlcache_heap.c).
 *
 * Results stream: each row goes to the sink as cells pointing into SQLite's own column memory
 * (blobs as hex in one scratch buffer), valid until the next step, so nothing is copied here; the
 * sink writes them where they are going. Reals are the exception: SQLite's text of a double has
 * 15 digits and a ".0", so they are printed here as the shortest text that reads back the same.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tablehub/buf.h"
#include "tablehub/repo.h"
#include "tablehub/value.h"
#include "sqlcache_internal.h"

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
		if (type == SQLITE_FLOAT) {
			/* The shortest text of the double, not SQLite's 15 digits and ".0" (so a
			 * query prints a real as the table's CSV does); into scratch, as blobs are.
			 */
			char text[TH_REAL_TEXT_MAX];
			cells[i].len = th_real_format(text, sqlite3_column_double(st, i));
			offsets[i] = scratch->size;
			if ((error = th_buf_put(scratch, text, cells[i].len + 1, err)) < 0)
				return error;
			continue;
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
	for (i = 0; i < n; i++) /* the cells left without text are in scratch */
		if (!cells[i].is_null && cells[i].s == NULL)
			cells[i].s = scratch->ptr + offsets[i];
	return sink->row ? sink->row(sink->payload, cells, (size_t)n, err) : TH_OK;
}

static int query_failed(sqlite3 *db, int rc, const query_ctx *q, const th_sqlcache_budget *hb,
                        const th_sql_limits *lim, th_error *err)
{
	if (q->timed_out) {
		if (lim->time_ms % 1000 == 0)
			return th_error_set(err, TH_ELIMIT, "query exceeded the time limit of %u s",
			                    lim->time_ms / 1000);
		return th_error_set(err, TH_ELIMIT, "query exceeded the time limit of %u ms",
		                    lim->time_ms);
	}
	if (th_sqlcache__budget_exceeded(hb))
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

/* The value of a parameter as its type has it; TH_EINVALID with a message naming it if the text
 * is not of that type. */
static int bind_one(sqlite3_stmt *st, int idx, const char *name, const char *v, int type,
                    th_error *err)
{
	char *end;

	if (v == NULL)
		return sqlite3_bind_null(st, idx) == SQLITE_OK
		               ? TH_OK
		               : th_error_set(err, TH_ENOMEM, "out of memory");
	if (type == TH_TYPE_INTEGER) {
		long long i;
		errno = 0;
		i = strtoll(v, &end, 10);
		if (end == v || *end != '\0' || errno == ERANGE)
			return th_error_set(err, TH_EINVALID, "parameter '%s' must be an integer",
			                    name);
		return sqlite3_bind_int64(st, idx, i) == SQLITE_OK
		               ? TH_OK
		               : th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if (type == TH_TYPE_REAL) {
		double d = strtod(v, &end);
		if (end == v || *end != '\0' || !isfinite(d))
			return th_error_set(err, TH_EINVALID, "parameter '%s' must be a number",
			                    name);
		return sqlite3_bind_double(st, idx, d) == SQLITE_OK
		               ? TH_OK
		               : th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if (type == TH_TYPE_BOOLEAN) {
		if (strcasecmp(v, "true") != 0 && strcasecmp(v, "false") != 0)
			return th_error_set(err, TH_EINVALID,
			                    "parameter '%s' must be true or false", name);
		return sqlite3_bind_int(st, idx, strcasecmp(v, "true") == 0) == SQLITE_OK
		               ? TH_OK
		               : th_error_set(err, TH_ENOMEM, "out of memory");
	}
	return sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT) == SQLITE_OK
	               ? TH_OK
	               : th_error_set(err, TH_ENOMEM, "out of memory");
}

/* Bind `binds` to the statement's parameters, or (names != NULL) list them instead. Only
 * ":name" parameters are allowed. */
static int bind_all(sqlite3_stmt *st, const th_sql_binds *binds, char ***names, th_error *err)
{
	int i, n = sqlite3_bind_parameter_count(st), error;
	size_t k, used = 0;

	if (names != NULL && (*names = calloc((size_t)n + 1, sizeof(**names))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	for (i = 1; i <= n; i++) {
		const char *p = sqlite3_bind_parameter_name(st, i);
		if (p == NULL || p[0] != ':' || p[1] == '\0')
			return th_error_set(err, TH_EINVALID,
			                    "parameters are named :name (found %s)", p ? p : "?");
		if (names != NULL) {
			if (((*names)[used++] = strdup(p + 1)) == NULL)
				return th_error_set(err, TH_ENOMEM, "out of memory");
			continue;
		}
		for (k = 0; binds != NULL && k < binds->n; k++)
			if (strcmp(binds->names[k], p + 1) == 0)
				break;
		if (binds == NULL || k == binds->n)
			return th_error_set(err, TH_EINVALID, "parameter '%s' has no value", p + 1);
		if ((error = bind_one(st, i, p + 1, binds->values[k],
		                      binds->types ? binds->types[k] : TH_TYPE_TEXT, err)) < 0)
			return error;
	}
	return TH_OK;
}

static int run(uint64_t *rows_out, int *truncated, const char *path, const char *sql,
               const th_sql_binds *binds, char ***names, const th_sql_limits *lim,
               const th_sql_sink *sink, th_error *err);

int th_snap_query(uint64_t *rows_out, int *truncated, const char *path, const char *sql,
                  const th_sql_limits *lim, const th_sql_sink *sink, th_error *err)
{
	return run(rows_out, truncated, path, sql, NULL, NULL, lim, sink, err);
}

int th_snap_query_bound(uint64_t *rows_out, int *truncated, const char *path, const char *sql,
                        const th_sql_binds *binds, const th_sql_limits *lim,
                        const th_sql_sink *sink, th_error *err)
{
	return run(rows_out, truncated, path, sql, binds, NULL, lim, sink, err);
}

int th_snap_params(char ***names, const char *path, const char *sql, th_error *err)
{
	static const th_sql_sink none = { NULL, NULL, NULL };
	uint64_t rows;
	int truncated, error;

	*names = NULL;
	if ((error = run(&rows, &truncated, path, sql, NULL, names, NULL, &none, err)) < 0) {
		th_strv_free(*names);
		*names = NULL;
	}
	return error;
}

static int run(uint64_t *rows_out, int *truncated, const char *path, const char *sql,
               const th_sql_binds *binds, char ***names, const th_sql_limits *lim,
               const th_sql_sink *sink, th_error *err)
{
	static const th_sql_limits none = { 0, 0, 0 };
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	query_ctx q;
	th_sqlcache_budget *hb = NULL;
	th_buf scratch = TH_BUF_INIT;
	th_sqlcache_file_id fid;
	int lock_fd = -1;
	th_cell *cells = NULL;
	size_t *offsets = NULL;
	uint64_t rows = 0;
	int rc, error = TH_OK, ncols;

	*rows_out = 0;
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
	if ((error = th_sqlcache__conn_acquire(&db, &lock_fd, &fid, path, err)) < 0)
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
	hb = th_sqlcache__budget_acquire(lim->heap_bytes);
	th_sqlcache__budget_enter(hb);

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
	/* Parameters are bound, never spliced; a statement without any needs no values. */
	if ((sqlite3_bind_parameter_count(st) > 0 || names != NULL) &&
	    ((error = bind_all(st, binds, names, err)) < 0 || names != NULL))
		goto cleanup;
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
		th_sqlcache__conn_release(db, lock_fd, &fid, path,
		                          error != TH_ELIMIT && error != TH_ENOMEM &&
		                                  error != TH_ESTORE && error != TH_ERROR);
	}
	th_sqlcache__budget_enter(NULL);
	th_sqlcache__budget_release(hb);
	free(cells);
	free(offsets);
	th_buf_dispose(&scratch);
	*rows_out = rows;
	return error;
}
