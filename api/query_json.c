/* query_json.c: DoltHub's SQL-read body for a query's result (see query_json.h).
 *
 * DESIGN
 * - One write of each row. src/ streams the result as columns and cells (th_query_run); the sink
 *   here writes each row's JSON object straight into the body's second piece, once. The fields
 *   DoltHub puts first (query_execution_status, and the RowLimit message) are known only after
 *   the last row, so they go into a small first piece written at the end; the reply hands both
 *   pieces to MHD as they are (api_reply_json_bufs), and the CLI writes one after the other.
 * - Speed. Column names are escaped once, into a key table, not once a row. The JSON is written
 *   by hand rather than built as a cJSON tree: a 1,000-row result would otherwise be a tree of
 *   thousands of nodes, printed and then copied.
 * - Never broken JSON. Cells and names that are not UTF-8 (a BLOB cast to TEXT) get U+FFFD for
 *   each bad byte, so a client's parser always succeeds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/text.h"
#include "query_json.h"

/* A JSON string of s[0..len), with bytes that are not UTF-8 replaced by U+FFFD. */
static int put_json_str(th_buf *b, const char *s, size_t len, th_error *err)
{
	th_buf clean = TH_BUF_INIT;
	size_t bad, i = 0;
	int error;

	if (th_utf8_valid(s, len, &bad))
		return th_buf_put_json_string(b, s, len, err);
	while (i < len) {
		if ((error = th_buf_put(&clean, s + i, bad, err)) < 0 ||
		    (error = th_buf_puts(&clean, "\xef\xbf\xbd", err)) < 0)
			goto cleanup;
		i += bad + 1;
		if (i >= len || th_utf8_valid(s + i, len - i, &bad)) {
			if (i < len && (error = th_buf_put(&clean, s + i, len - i, err)) < 0)
				goto cleanup;
			break;
		}
	}
	error = th_buf_put_json_string(b, clean.ptr ? clean.ptr : "", clean.size, err);
cleanup:
	th_buf_dispose(&clean);
	return error;
}

static int put_json_cstr(th_buf *b, const char *s, th_error *err)
{
	return put_json_str(b, s ? s : "", s ? strlen(s) : 0, err);
}

/* --- the sink: schema and rows into the second piece ------------------------------------------ */

typedef struct json_sink {
	th_buf *out; /* the body's `rest` */
	th_buf keys; /* each column name as a JSON string followed by ':' and a NUL */
	size_t *key_at;
	size_t ncols;
	uint64_t nrows;
	int begun; /* ,"schema":[...],"rows":[ is written */
} json_sink;

static int json_columns(void *payload, size_t n, const char *const *names, const char *const *types,
                        th_error *err)
{
	json_sink *j = payload;
	th_buf *out = j->out;
	size_t i;
	int error;

	if ((j->key_at = calloc(n + 1, sizeof(*j->key_at))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	j->ncols = n;
	if ((error = th_buf_puts(out, ",\"schema\":[", err)) < 0)
		return error;
	for (i = 0; i < n; i++) {
		j->key_at[i] = j->keys.size;
		if ((i && (error = th_buf_putc(out, ',', err)) < 0) ||
		    (error = th_buf_puts(out, "{\"columnName\":", err)) < 0 ||
		    (error = put_json_cstr(out, names[i], err)) < 0 ||
		    (error = th_buf_puts(out, ",\"columnType\":", err)) < 0 ||
		    (error = put_json_cstr(out, types[i], err)) < 0 ||
		    (error = th_buf_putc(out, '}', err)) < 0 ||
		    (error = put_json_cstr(&j->keys, names[i], err)) < 0 ||
		    (error = th_buf_putc(&j->keys, ':', err)) < 0 ||
		    (error = th_buf_putc(&j->keys, '\0', err)) < 0)
			return error;
	}
	j->begun = 1;
	return th_buf_puts(out, "],\"rows\":[", err);
}

static int json_row(void *payload, const th_cell *cells, size_t n, th_error *err)
{
	json_sink *j = payload;
	th_buf *out = j->out;
	size_t i;
	int error;

	if ((j->nrows && (error = th_buf_putc(out, ',', err)) < 0) ||
	    (error = th_buf_putc(out, '{', err)) < 0)
		return error;
	for (i = 0; i < n && i < j->ncols; i++) {
		if ((i && (error = th_buf_putc(out, ',', err)) < 0) ||
		    (error = th_buf_puts(out, j->keys.ptr + j->key_at[i], err)) < 0)
			return error;
		if (cells[i].is_null)
			error = th_buf_puts(out, "null", err);
		else
			error = put_json_str(out, cells[i].s, cells[i].len, err);
		if (error < 0)
			return error;
	}
	j->nrows++;
	return th_buf_putc(out, '}', err);
}

/* --- the first piece -------------------------------------------------------------------------- */

static int json_head(th_buf *out, const char *status, const char *message, const th_query_target *t,
                     const char *sql, th_error *err)
{
	int error;

	if ((error = th_buf_puts(out, "{\"query_execution_status\":", err)) < 0 ||
	    (error = put_json_cstr(out, status, err)) < 0 ||
	    (error = th_buf_puts(out, ",\"query_execution_message\":", err)) < 0 ||
	    (error = put_json_cstr(out, message, err)) < 0 ||
	    (error = th_buf_puts(out, ",\"repository_owner\":", err)) < 0 ||
	    (error = put_json_cstr(out, t->owner, err)) < 0 ||
	    (error = th_buf_puts(out, ",\"repository_name\":", err)) < 0 ||
	    (error = put_json_cstr(out, t->db, err)) < 0 ||
	    (error = th_buf_puts(out, ",\"commit_ref\":", err)) < 0 ||
	    (error = put_json_cstr(out, th_query_ref(t), err)) < 0 ||
	    (error = th_buf_puts(out, ",\"sql_query\":", err)) < 0)
		return error;
	return put_json_cstr(out, sql, err);
}

static int json_error(th_buf *out, const th_query_target *t, const char *sql, int code,
                      const char *msg)
{
	int error;

	if ((error = json_head(out, "Error", msg, t, sql, NULL)) < 0 ||
	    (error = th_buf_puts(out, ",\"status\":\"Error\",\"message\":", NULL)) < 0 ||
	    (error = put_json_cstr(out, msg, NULL)) < 0 ||
	    (error = th_buf_printf(out, NULL, ",\"code\":\"%s\"}", th_code_name(code))) < 0)
		return error;
	return TH_OK;
}

int api_query_json(api_query_body *out, th_query_info *info, const th_query_target *t,
                   const char *sql, const th_query_opts *o, th_error *err)
{
	return api_query_json_bound(out, info, t, sql, NULL, o, err);
}

int api_query_json_bound(api_query_body *out, th_query_info *info, const th_query_target *t,
                         const char *sql, const th_sql_binds *binds, const th_query_opts *o,
                         th_error *err)
{
	th_sql_sink sink;
	th_query_info local;
	json_sink j;
	th_error qerr;
	const char *status = "Success";
	char message[128] = "";
	int error, listing = sql == NULL || sql[0] == '\0';
	const char *shown = listing ? "SHOW TABLES" : sql;

	if (info == NULL)
		info = &local;
	memset(&j, 0, sizeof(j));
	memset(&qerr, 0, sizeof(qerr));
	j.out = &out->rest;
	sink.columns = json_columns;
	sink.row = json_row;
	sink.payload = &j;
	if (listing)
		error = th_query_tables(info, t, &sink, &qerr);
	else
		error = th_query_run_bound(info, t, sql, binds, o, &sink, &qerr);
	if (error == TH_OK) {
		if (info->truncated) {
			status = "RowLimit";
			snprintf(message, sizeof(message),
			         "the result was cut at %llu rows (the row limit)",
			         (unsigned long long)j.nrows);
		}
		if ((!j.begun && (error = json_columns(&j, 0, NULL, NULL, &qerr)) < 0) ||
		    (error = th_buf_puts(&out->rest, "]}", &qerr)) < 0 ||
		    (error = json_head(&out->head, status, message, t, shown, &qerr)) < 0)
			th_buf_clear(&out->head);
	}
	if (error != TH_OK) {
		if (err != NULL)
			*err = qerr;
		th_buf_clear(&out->rest);
		th_buf_clear(&out->head);
		if (json_error(&out->head, t, shown, error, qerr.msg) < 0)
			th_buf_dispose(&out->head);
	}
	th_buf_dispose(&j.keys);
	free(j.key_at);
	return error;
}

void api_query_body_dispose(api_query_body *b)
{
	th_buf_dispose(&b->head);
	th_buf_dispose(&b->rest);
}
