/* meta_migrate.c: a single-server metadata store, DIR/meta.sqlite, moved into an empty PostgreSQL
 * store (include/tablehub/meta_migrate.h).
 *
 * DESIGN
 * - Both schemas first: meta.sqlite is opened once through the SQLite backend (its migrations run)
 *   and the PostgreSQL store through its own (its migrations run), so both are at this build's
 *   version; then the copy reads meta.sqlite read-only, in one read transaction, and writes
 *   PostgreSQL on a connection of its own, in one transaction: a failure anywhere leaves the
 *   target as empty as it was.
 * - The tables are PostgreSQL's (its catalog), in an order that respects their references, and
 *   the columns of each are the PostgreSQL table's that meta.sqlite has (SQLite's implicit rowid
 *   included: the tables SQLite orders by rowid carry it as a column in PostgreSQL). Every value
 *   is moved as text through COPY, which PostgreSQL parses into the column's type; SQL NULL stays
 *   NULL. A table meta.sqlite has and PostgreSQL lacks stops the move: its rows would be lost.
 * - Empty target: a row in any table but settings (the store's node id, made by the migrations)
 *   refuses the move before anything is written. settings is replaced by meta.sqlite's, so the
 *   operations' lease owners keep naming the store's own id.
 * - Ids: the serial columns' sequences are set past the largest id copied, so the next user
 *   token, database or event gets a new id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "meta_backend.h"
#include "meta_pg.h"
#include "tablehub/buf.h"
#include "tablehub/datadir.h"
#include "tablehub/meta.h"
#include "tablehub/meta_migrate.h"

/* The order of the copy: referenced tables before those that refer to them. A table not listed
 * (a later migration's) goes last. */
static const char *const order[] = {
	"settings",        "users",
	"tokens",          "databases",
	"collaborators",   "branch_protection",
	"operations",      "operation_cancels",
	"pulls",           "pull_counters",
	"pull_comments",   "pull_reviews",
	"events",          "files",
	"file_operations", "tus_uploads",
	"releases",        NULL,
};

#define MAXTABLES 64
#define MAXCOLS 64

struct tables {
	char name[MAXTABLES][64];
	int n;
};

void th_meta_moved_list_dispose(th_meta_moved_list *l)
{
	if (l == NULL)
		return;
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static int rank(const char *table)
{
	int i;

	for (i = 0; order[i] != NULL; i++)
		if (strcmp(order[i], table) == 0)
			return i;
	return i;
}

static int by_rank(const void *a, const void *b)
{
	int x = rank(a), y = rank(b);

	return x != y ? (x < y ? -1 : 1) : strcmp(a, b);
}

static int pg_fail(PGconn *c, PGresult *res, const char *what, th_error *err)
{
	int error = th_mpg__error(c, res, what, err);

	PQclear(res);
	return error;
}

/* Run a statement without rows on c. */
static int pg_exec(PGconn *c, const char *sql, const char *what, th_error *err)
{
	PGresult *res = PQexec(c, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pg_fail(c, res, what, err);
	PQclear(res);
	return TH_OK;
}

/* The names of query `sql`'s first column (one text parameter, may be NULL) into t. */
static int pg_names(struct tables *t, PGconn *c, const char *sql, const char *param,
                    const char *what, th_error *err)
{
	const char *params[1] = { param };
	PGresult *res = PQexecParams(c, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
	int i;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return pg_fail(c, res, what, err);
	if (PQntuples(res) > MAXTABLES) {
		PQclear(res);
		return th_error_set(err, TH_ESTORE, "too many tables or columns");
	}
	for (i = t->n = 0; i < PQntuples(res); i++)
		snprintf(t->name[t->n++], sizeof(t->name[0]), "%s", PQgetvalue(res, i, 0));
	PQclear(res);
	return TH_OK;
}

/* The names of SQLite statement `sql`'s column `col` (text parameter `param`, may be NULL). */
static int sq_names(struct tables *t, sqlite3 *db, const char *sql, int col, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	t->n = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return th_error_set(err, TH_ESTORE, "meta.sqlite: %s", sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && t->n < MAXTABLES)
		snprintf(t->name[t->n++], sizeof(t->name[0]), "%s",
		         (const char *)sqlite3_column_text(st, col));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return th_error_set(err, TH_ESTORE, "meta.sqlite: %s", sqlite3_errmsg(db));
	return TH_OK;
}

static int has(const struct tables *t, const char *name)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->name[i], name) == 0)
			return 1;
	return 0;
}

/* Append `s` to b as a COPY text field: backslash, tab, newline and carriage return escaped. */
static int put_field(th_buf *b, const char *s, th_error *err)
{
	int error = TH_OK;

	for (; *s && error == TH_OK; s++) {
		if (*s == '\\')
			error = th_buf_puts(b, "\\\\", err);
		else if (*s == '\t')
			error = th_buf_puts(b, "\\t", err);
		else if (*s == '\n')
			error = th_buf_puts(b, "\\n", err);
		else if (*s == '\r')
			error = th_buf_puts(b, "\\r", err);
		else
			error = th_buf_putc(b, *s, err);
	}
	return error;
}

/* Copy table `t` (its PostgreSQL columns `cols` that meta.sqlite has) and count its rows. */
static int copy_table(int64_t *rows_out, PGconn *c, sqlite3 *db, const char *t,
                      const struct tables *cols, th_error *err)
{
	th_buf sel = TH_BUF_INIT, copy = TH_BUF_INIT, line = TH_BUF_INIT;
	sqlite3_stmt *st = NULL;
	PGresult *res;
	char *id;
	int64_t rows = 0;
	int i, rc, error;

	/* Identifiers come from the catalogs; quoted on both sides all the same. */
	if ((error = th_buf_puts(&sel, "SELECT ", err)) < 0 ||
	    (error = th_buf_printf(&copy, err, "COPY \"%s\" (", t)) < 0)
		goto done;
	for (i = 0; i < cols->n; i++) {
		if ((error = th_buf_printf(&sel, err, "%s\"%s\"", i ? ", " : "", cols->name[i])) <
		            0 ||
		    (error = th_buf_printf(&copy, err, "%s\"%s\"", i ? ", " : "", cols->name[i])) <
		            0)
			goto done;
	}
	if ((error = th_buf_printf(&sel, err, " FROM \"%s\"", t)) < 0 ||
	    (error = th_buf_puts(&copy, ") FROM STDIN", err)) < 0)
		goto done;
	if (sqlite3_prepare_v2(db, sel.ptr, -1, &st, NULL) != SQLITE_OK) {
		error = th_error_set(err, TH_ESTORE, "meta.sqlite: read %s: %s", t,
		                     sqlite3_errmsg(db));
		goto done;
	}
	res = PQexec(c, copy.ptr);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		error = pg_fail(c, res, "copy a table", err);
		goto done;
	}
	PQclear(res);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (i = 0; i < cols->n && error == TH_OK; i++) {
			if (i > 0)
				error = th_buf_putc(&line, '\t', err);
			if (error == TH_OK && sqlite3_column_type(st, i) == SQLITE_NULL)
				error = th_buf_puts(&line, "\\N", err);
			else if (error == TH_OK)
				error = put_field(&line, (const char *)sqlite3_column_text(st, i),
				                  err);
		}
		if (error == TH_OK)
			error = th_buf_putc(&line, '\n', err);
		if (error < 0)
			break;
		rows++;
		if (line.size >= 65536) {
			if (PQputCopyData(c, line.ptr, (int)line.size) != 1) {
				error = th_mpg__error(c, NULL, "copy a table", err);
				break;
			}
			th_buf_clear(&line);
		}
	}
	if (error == TH_OK && rc != SQLITE_DONE)
		error = th_error_set(err, TH_ESTORE, "meta.sqlite: read %s: %s", t,
		                     sqlite3_errmsg(db));
	if (error == TH_OK && line.size > 0 && PQputCopyData(c, line.ptr, (int)line.size) != 1)
		error = th_mpg__error(c, NULL, "copy a table", err);
	if (PQputCopyEnd(c, error == TH_OK ? NULL : "stopped") != 1 && error == TH_OK)
		error = th_mpg__error(c, NULL, "copy a table", err);
	while ((res = PQgetResult(c)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && error == TH_OK) {
			char what[96];
			snprintf(what, sizeof(what), "copy table %s", t);
			error = th_mpg__error(c, res, what, err);
		}
		PQclear(res);
	}
	/* Serial columns: their sequences go past the ids copied. */
	for (i = 0; i < cols->n && error == TH_OK; i++) {
		const char *params[2] = { t, cols->name[i] };
		res = PQexecParams(c, "SELECT pg_get_serial_sequence(quote_ident($1), $2)", 2, NULL,
		                   params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			error = pg_fail(c, res, "read a sequence", err);
			break;
		}
		if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
			PQclear(res);
			continue;
		}
		th_buf_clear(&sel);
		id = PQescapeLiteral(c, PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)));
		PQclear(res);
		if (id == NULL) {
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			break;
		}
		error = th_buf_printf(&sel, err,
		                      "SELECT setval(%s, (SELECT coalesce(max(\"%s\"), 0) + 1 FROM "
		                      "\"%s\"), false)",
		                      id, cols->name[i], t);
		PQfreemem(id);
		if (error == TH_OK) {
			res = PQexec(c, sel.ptr);
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
				error = pg_fail(c, res, "move a sequence", err);
			else
				PQclear(res);
		}
	}
	if (error == TH_OK)
		*rows_out = rows;
done:
	sqlite3_finalize(st);
	th_buf_dispose(&sel);
	th_buf_dispose(&copy);
	th_buf_dispose(&line);
	return error;
}

/* The copy itself, inside the two transactions. */
static int move(th_meta_moved_list *out, PGconn *c, sqlite3 *db, th_error *err)
{
	struct tables pg, sq, pgcols, sqcols, cols;
	char sql[200];
	int i, k, error;

	if ((error = pg_names(&pg, c,
	                      "SELECT table_name FROM information_schema.tables WHERE "
	                      "table_schema = current_schema() AND table_type = 'BASE TABLE' AND "
	                      "table_name <> 'th_schema_migrations'",
	                      NULL, "list the tables", err)) < 0 ||
	    (error = sq_names(&sq, db,
	                      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT "
	                      "LIKE 'sqlite_%'",
	                      0, err)) < 0)
		return error;
	for (i = 0; i < sq.n; i++)
		if (!has(&pg, sq.name[i]))
			return th_error_set(err, TH_ESTORE,
			                    "meta.sqlite has a table '%s' that the "
			                    "PostgreSQL store lacks: this tablehub cannot move it",
			                    sq.name[i]);
	qsort(pg.name, (size_t)pg.n, sizeof(pg.name[0]), by_rank);
	for (i = 0; i < pg.n; i++) {
		PGresult *res;
		if (strcmp(pg.name[i], "settings") == 0)
			continue;
		snprintf(sql, sizeof(sql), "SELECT EXISTS (SELECT 1 FROM \"%s\")", pg.name[i]);
		res = PQexec(c, sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			return pg_fail(c, res, "look into the target", err);
		k = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (k)
			return th_error_set(err, TH_EEXISTS,
			                    "the PostgreSQL store is not empty (table "
			                    "'%s' has rows): migrate into a new, empty database",
			                    pg.name[i]);
	}
	if ((error = pg_exec(c, "DELETE FROM settings", "clear the settings", err)) < 0)
		return error;
	if ((out->items = calloc((size_t)pg.n, sizeof(*out->items))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	out->n = 0;
	for (i = 0; i < pg.n; i++) {
		int64_t rows = 0;
		if (!has(&sq, pg.name[i]))
			continue;
		snprintf(sql, sizeof(sql), "SELECT name FROM pragma_table_info('%s')", pg.name[i]);
		if ((error = pg_names(
		             &pgcols, c,
		             "SELECT column_name FROM information_schema.columns WHERE "
		             "table_schema = current_schema() AND table_name = $1 ORDER BY "
		             "ordinal_position",
		             pg.name[i], "list a table's columns", err)) < 0 ||
		    (error = sq_names(&sqcols, db, sql, 0, err)) < 0)
			break;
		for (k = cols.n = 0; k < pgcols.n; k++)
			if (has(&sqcols, pgcols.name[k]) || strcmp(pgcols.name[k], "rowid") == 0)
				memcpy(cols.name[cols.n++], pgcols.name[k], sizeof(cols.name[0]));
		if ((error = copy_table(&rows, c, db, pg.name[i], &cols, err)) < 0)
			break;
		snprintf(out->items[out->n].table, sizeof(out->items[0].table), "%s", pg.name[i]);
		out->items[out->n++].rows = rows;
	}
	if (error < 0)
		th_meta_moved_list_dispose(out);
	return error;
}

int th_meta_migrate(th_meta_moved_list *out, const char *data_dir, const char *url, th_error *err)
{
	th_meta_options o = { NULL, "" };
	th_meta_moved_list l = { NULL, 0 };
	th_meta *sm = NULL, *pm = NULL;
	PGconn *c = NULL;
	sqlite3 *db = NULL;
	th_buf path = TH_BUF_INIT;
	struct stat sb;
	int lock = -1, error;

	if (url == NULL || !th_mpg__is_url(url))
		return th_error_set(err, TH_EINVALID, "the target must be a postgresql:// URL");
	if ((error = th_buf_printf(&path, err, "%s/meta.sqlite", data_dir)) < 0)
		return error;
	if (stat(path.ptr, &sb) != 0) {
		error = th_error_set(err, TH_ENOTFOUND, "no meta.sqlite in the data directory");
		goto done;
	}
	if ((error = th_datadir_lock(&lock, data_dir, err)) < 0 ||
	    (error = th_meta_open_with(&sm, data_dir, &o, err)) < 0)
		goto done;
	th_meta_close(sm);
	o.url = url;
	if ((error = th_meta_open_with(&pm, data_dir, &o, err)) < 0 ||
	    (error = th_mpg__connect(&c, (th_mpg *)pm, err)) < 0)
		goto done;
	if (sqlite3_open_v2(path.ptr, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		error = th_error_set(err, TH_ESTORE, "meta.sqlite: cannot read it: %s",
		                     db ? sqlite3_errmsg(db) : "out of memory");
		goto done;
	}
	/* SQLite's BEGIN is deferred: the first read takes the snapshot. */
	sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
	if ((error = pg_exec(c, "BEGIN ISOLATION LEVEL SERIALIZABLE", "begin", err)) < 0)
		goto done;
	if ((error = move(&l, c, db, err)) < 0) {
		PQclear(PQexec(c, "ROLLBACK"));
		goto done;
	}
	if ((error = pg_exec(c, "COMMIT", "commit the move", err)) < 0) {
		th_meta_moved_list_dispose(&l);
		goto done;
	}
	*out = l;
done:
	if (db != NULL)
		sqlite3_close(db);
	PQfinish(c);
	th_meta_close(pm);
	if (lock >= 0)
		th_datadir_unlock(lock);
	th_buf_dispose(&path);
	return error;
}
