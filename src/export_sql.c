/* export_sql.c: the SQL exporter (see include/tablehub/export.h): a script that sqlite3 loads
 * into a new database as the table it came from.
 *
 *   BEGIN TRANSACTION;
 *   CREATE TABLE "t" ("id" INTEGER NOT NULL, "name" TEXT, ..., PRIMARY KEY ("id"));
 *   INSERT INTO "t" VALUES
 *   (1,'a'),
 *   (2,'b');
 *   COMMIT;
 *
 * Columns are declared with the types the query snapshots use (storage/sqlcache_write.c: INTEGER,
 * REAL, BOOLEAN, DATE, DATETIME, TEXT), primary-key columns NOT NULL, so the loaded table answers
 * a query as tablehub's own snapshot does. Cells: integers and reals bare (they are stored as
 * JSON numbers, which are SQL numeric literals too), booleans TRUE/FALSE (1 and 0 in SQLite, as
 * in the snapshots), NULL as NULL, everything else a quoted string with '' for a quote. Rows go
 * out in INSERTs of ROWS_PER_INSERT rows (one statement per row would parse ~5x slower to load)
 * inside one transaction. Identifiers are double-quoted with "" for a quote.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/export.h"

#define ROWS_PER_INSERT 500

enum { CELL_STRING, CELL_NUMBER, CELL_BOOLEAN };

typedef struct sql_state {
	char *name; /* NULL: "data" */
	size_t npk;
	size_t *pk;
	size_t n;
	unsigned char *kind; /* CELL_* per column */
	th_buf insert;       /* INSERT INTO "t" VALUES\n */
	uint64_t in_batch;   /* rows in the INSERT being written */
} sql_state;

static int put_ident(th_buf *out, const char *name, th_error *err)
{
	const char *p;
	int error;

	if ((error = th_buf_putc(out, '"', err)) < 0)
		return error;
	for (p = name; *p; p++)
		if ((error = th_buf_putc(out, *p, err)) < 0 ||
		    (*p == '"' && (error = th_buf_putc(out, '"', err)) < 0))
			return error;
	return th_buf_putc(out, '"', err);
}

static int put_string(th_buf *out, const char *s, size_t len, th_error *err)
{
	size_t i = 0;
	int error;

	if ((error = th_buf_putc(out, '\'', err)) < 0)
		return error;
	while (i < len) {
		const char *q = memchr(s + i, '\'', len - i);
		size_t n = q ? (size_t)(q - (s + i)) + 1 : len - i;
		if ((error = th_buf_put(out, s + i, n, err)) < 0 ||
		    (q && (error = th_buf_putc(out, '\'', err)) < 0))
			return error;
		i += n;
	}
	return th_buf_putc(out, '\'', err);
}

/* A SQL numeric literal as th_type_classify stores them: -?digits[.digits][e[+-]digits]. */
static int sql_number(const char *s, size_t len)
{
	size_t i = 0, digits = 0;

	if (i < len && s[i] == '-')
		i++;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (digits == 0)
		return 0;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t d;
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	return i == len;
}

static const char *decl_type(const char *t)
{
	static const char *const types[][2] = {
		{ "integer", "INTEGER" }, { "real", "REAL" },         { "boolean", "BOOLEAN" },
		{ "date", "DATE" },       { "datetime", "DATETIME" }, { "blob", "BLOB" },
	};
	size_t i;

	for (i = 0; t != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(t, types[i][0]) == 0)
			return types[i][1];
	return "TEXT";
}

static int sql_table(void *state, const char *name, size_t npk, const size_t *pk, th_error *err)
{
	sql_state *st = state;

	if ((st->name = strdup(name)) == NULL ||
	    (npk > 0 && (st->pk = malloc(npk * sizeof(*pk))) == NULL))
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if (npk > 0)
		memcpy(st->pk, pk, npk * sizeof(*pk));
	st->npk = npk;
	return TH_OK;
}

static int sql_begin(void *state, th_buf *out, size_t n, const char *const *names,
                     const char *const *types, th_error *err)
{
	sql_state *st = state;
	const char *name = st->name ? st->name : "data";
	size_t i, k;
	int error;

	st->n = n;
	for (k = 0; k < st->npk; k++)
		if (st->pk[k] >= n)
			return th_error_set(err, TH_EINVALID, "primary key column %zu of %zu",
			                    st->pk[k], n);
	if ((st->kind = calloc(n + 1, 1)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if ((error = th_buf_puts(out, "BEGIN TRANSACTION;\nCREATE TABLE ", err)) < 0 ||
	    (error = put_ident(out, name, err)) < 0 || (error = th_buf_puts(out, " (", err)) < 0)
		return error;
	for (i = 0; i < n; i++) {
		const char *decl = decl_type(types[i]);
		int key = 0;
		for (k = 0; k < st->npk; k++)
			key |= st->pk[k] == i;
		st->kind[i] = strcmp(decl, "INTEGER") == 0 || strcmp(decl, "REAL") == 0
		                      ? CELL_NUMBER
		              : strcmp(decl, "BOOLEAN") == 0 ? CELL_BOOLEAN
		                                             : CELL_STRING;
		if ((i && (error = th_buf_puts(out, ", ", err)) < 0) ||
		    (error = put_ident(out, names[i], err)) < 0 ||
		    (error = th_buf_printf(out, err, " %s%s", decl, key ? " NOT NULL" : "")) < 0)
			return error;
	}
	if (st->npk > 0) {
		if ((error = th_buf_puts(out, ", PRIMARY KEY (", err)) < 0)
			return error;
		for (k = 0; k < st->npk; k++)
			if ((k && (error = th_buf_puts(out, ", ", err)) < 0) ||
			    (error = put_ident(out, names[st->pk[k]], err)) < 0)
				return error;
		if ((error = th_buf_putc(out, ')', err)) < 0)
			return error;
	}
	if ((error = th_buf_puts(out, ");\n", err)) < 0 ||
	    (error = th_buf_puts(&st->insert, "INSERT INTO ", err)) < 0 ||
	    (error = put_ident(&st->insert, name, err)) < 0 ||
	    (error = th_buf_puts(&st->insert, " VALUES\n", err)) < 0)
		return error;
	return TH_OK;
}

static int put_cell(th_buf *out, int kind, const th_cell *c, th_error *err)
{
	if (c->is_null)
		return th_buf_put(out, "NULL", 4, err);
	if (kind == CELL_NUMBER && sql_number(c->s, c->len))
		return th_buf_put(out, c->s, c->len, err);
	if (kind == CELL_BOOLEAN && c->len == 4 && memcmp(c->s, "true", 4) == 0)
		return th_buf_put(out, "TRUE", 4, err);
	if (kind == CELL_BOOLEAN && c->len == 5 && memcmp(c->s, "false", 5) == 0)
		return th_buf_put(out, "FALSE", 5, err);
	return put_string(out, c->s, c->len, err);
}

static int sql_row(void *state, th_buf *out, const th_cell *cells, size_t n, th_error *err)
{
	sql_state *st = state;
	size_t i;
	int error;

	if (n != st->n)
		return th_error_set(err, TH_EINVALID, "row of %zu cells for %zu columns", n, st->n);
	if (st->in_batch == ROWS_PER_INSERT) {
		if ((error = th_buf_puts(out, ";\n", err)) < 0)
			return error;
		st->in_batch = 0;
	}
	if (st->in_batch == 0 ? (error = th_buf_put(out, st->insert.ptr, st->insert.size, err)) < 0
	                      : (error = th_buf_puts(out, ",\n", err)) < 0)
		return error;
	if ((error = th_buf_putc(out, '(', err)) < 0)
		return error;
	for (i = 0; i < n; i++)
		if ((i && (error = th_buf_putc(out, ',', err)) < 0) ||
		    (error = put_cell(out, st->kind[i], &cells[i], err)) < 0)
			return error;
	if ((error = th_buf_putc(out, ')', err)) < 0)
		return error;
	st->in_batch++;
	return TH_OK;
}

static int sql_end(void *state, th_buf *out, th_error *err)
{
	sql_state *st = state;

	return th_buf_puts(out, st->in_batch ? ";\nCOMMIT;\n" : "COMMIT;\n", err);
}

static void sql_dispose(void *state)
{
	sql_state *st = state;

	free(st->name);
	free(st->pk);
	free(st->kind);
	th_buf_dispose(&st->insert);
}

const th_exporter th_exporter_sql = {
	.name = "sql",
	.media_type = "application/sql; charset=utf-8",
	.extension = "sql",
	.state_size = sizeof(sql_state),
	.begin = sql_begin,
	.row = sql_row,
	.end = sql_end,
	.dispose = sql_dispose,
	.table = sql_table,
};
