/* query_json.h: DoltHub's SQL-read body (api/query_json.c), shared by GET /api/v1alpha1/{owner}/
 * {db}[/{ref}] (api/query.c) and `tablehub query --json` (api/cli_query.c). Internal to api/. */
#ifndef TABLEHUB_API_QUERY_JSON_H
#define TABLEHUB_API_QUERY_JSON_H

#include "tablehub/buf.h"
#include "tablehub/error.h"
#include "tablehub/query.h"

/* The body in two pieces, sent one after the other: `head`, the fields whose values are known
 * only when the query has ended (query_execution_status, query_execution_message) and those
 * before them in DoltHub's order, up to sql_query; and `rest`, the schema and the rows, which the
 * query streams straight into it. On a failure `head` holds the whole Error body and `rest` is
 * empty. Both are the caller's (api_query_body_dispose). */
typedef struct api_query_body {
	th_buf head;
	th_buf rest;
} api_query_body;

/* Run `sql` (NULL or empty: list the tables, as DoltHub answers a request without `q`) at t->ref
 * with the limits of `o` and write DoltHub's body into *out (empty on entry):
 * query_execution_status (Success, RowLimit, Error), query_execution_message, repository_owner,
 * repository_name, commit_ref, sql_query, schema [{columnName, columnType}], rows [{column:
 * "value" or null}] (bytes that are not UTF-8 as U+FFFD). On a failure the Error body (which also
 * carries status "Error", message and code) is written instead and the failure's code returned,
 * with *err set: map it with api_status_for. *info (may be NULL) says what ran. When not even the
 * Error body fits in memory, out->head.ptr is NULL (and TH_ENOMEM or the failure returned). */
int api_query_json(api_query_body *out, th_query_info *info, const th_query_target *t,
                   const char *sql, const th_query_opts *o, th_error *err);
/* api_query_json with `binds` (may be NULL) bound to the statement's ":name" parameters (a saved
 * query's, api/saved.c). */
int api_query_json_bound(api_query_body *out, th_query_info *info, const th_query_target *t,
                         const char *sql, const th_sql_binds *binds, const th_query_opts *o,
                         th_error *err);

void api_query_body_dispose(api_query_body *b);

#endif
