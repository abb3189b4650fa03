/* cli_remote_query.c: `tablehub query --remote OWNER/DB REF SQL [--csv | --json]
 * [--timeout-ms N]`, read-only SQL run by a server.
 *
 * The statement goes as GET .../OWNER/DB/REF?q=SQL, or, when it is long, as POST of
 * {"query": SQL} to the same path (a URL has practical length limits; the server answers both
 * alike). The answer is DoltHub's body: "schema" [{columnName, columnType}] and "rows"
 * [{column: text | null}]. Its columns and cells are handed to the very printers the local `query`
 * uses (cli_result: a boxed table, or CSV), so both print the same; --json prints the body as is.
 * A cut result (RowLimit) is said on stderr, as locally.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_remote.h"

#define GET_MAX_SQL 1500 /* longer statements are POSTed */

/* Hand the body's schema and rows to sink. */
static int feed(const th_sql_sink *sink, const cJSON *body, th_error *err)
{
	const cJSON *schema = cJSON_GetObjectItemCaseSensitive(body, "schema"), *c, *row;
	size_t n = (size_t)cJSON_GetArraySize(schema), i = 0;
	const char **names = calloc(n + 1, sizeof(*names)), **types = calloc(n + 1, sizeof(*types));
	th_cell *cells = calloc(n + 1, sizeof(*cells));
	int error;

	if (names == NULL || types == NULL || cells == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	cJSON_ArrayForEach(c, schema)
	{
		names[i] = cli_json_str(c, "columnName");
		types[i++] = cli_json_str(c, "columnType");
	}
	if ((error = sink->columns(sink->payload, n, names, types, err)) < 0)
		goto cleanup;
	/* Cells by position: a result may name two columns alike ("SELECT a, a"). */
	cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(body, "rows"))
	{
		const cJSON *v = row->child;
		for (i = 0; i < n; i++) {
			cells[i].is_null = v == NULL || !cJSON_IsString(v);
			cells[i].s = cells[i].is_null ? NULL : v->valuestring;
			cells[i].len = cells[i].is_null ? 0 : strlen(v->valuestring);
			if (v != NULL)
				v = v->next;
		}
		if ((error = sink->row(sink->payload, cells, n, err)) < 0)
			goto cleanup;
	}
cleanup:
	free(names);
	free(types);
	free(cells);
	return error;
}

int cli_remote_query(int argc, char **argv)
{
	cli_remote r;
	cli_reply reply = CLI_REPLY_INIT;
	th_buf path = TH_BUF_INIT, body = TH_BUF_INIT;
	th_error err = { 0 };
	th_sql_sink sink;
	cli_result *res = NULL;
	int missing = 0, csv, rc, error;
	const char *timeout;

	if ((rc = cli_remote_open(&r, "query", &argc, argv)) != 0)
		goto done;
	timeout = cli_take_opt(&argc, argv, "--timeout-ms", &missing);
	csv = cli_take_flag(&argc, argv, "--csv");
	if (missing || cli_reject_unknown(argc, argv) != 0 || argc != 4 || (csv && r.json)) {
		rc = cli_remote_usage(&r,
		                      "expected: query --remote OWNER/DB REF SQL [--csv | --json] "
		                      "[--timeout-ms N]");
		goto done;
	}
	rc = 1;
	if (cli_remote_db_path(&path, argv[1], &err) < 0 || th_buf_putc(&path, '/', &err) < 0 ||
	    cli_http_escape(&path, argv[2], &err) < 0 ||
	    (timeout && (th_buf_puts(&path, "?timeout_ms=", &err) < 0 ||
	                 cli_http_escape(&path, timeout, &err) < 0)))
		goto fail;
	if (strlen(argv[3]) <= GET_MAX_SQL) {
		if (th_buf_puts(&path, timeout ? "&q=" : "?q=", &err) < 0 ||
		    cli_http_escape(&path, argv[3], &err) < 0)
			goto fail;
		error = cli_http_call(&reply, r.http, "GET", path.ptr, NULL, &err);
	} else {
		if (th_buf_puts(&body, "{\"query\":", &err) < 0 ||
		    th_buf_put_json_cstr(&body, argv[3], &err) < 0 ||
		    th_buf_putc(&body, '}', &err) < 0)
			goto fail;
		error = cli_http_call(&reply, r.http, "POST", path.ptr, body.ptr, &err);
	}
	if (r.json && reply.json != NULL) { /* the body, as the local --json prints it */
		cli_remote_print_json(&reply);
		if (error < 0)
			cli_remote_fail(&r, &err);
		rc = error < 0 ? 1 : 0;
		goto done;
	}
	if (error < 0)
		goto fail;
	if (cli_result_new(&res, &sink, csv, &err) < 0 || feed(&sink, reply.json, &err) < 0 ||
	    cli_result_finish(res, &err) < 0)
		goto fail;
	if (strcmp(cli_json_str(reply.json, "query_execution_status"), "RowLimit") == 0) {
		fflush(stdout);
		fprintf(stderr, "tablehub query: %s\n",
		        cli_json_str(reply.json, "query_execution_message"));
	}
	if (fflush(stdout) != 0) {
		th_error_set(&err, TH_ESTORE, "cannot write the output");
		goto fail;
	}
	rc = 0;
	goto done;
fail:
	cli_result_free(res);
	res = NULL;
	fflush(stdout);
	rc = cli_remote_fail(&r, &err);
done:
	cli_result_free(res);
	th_buf_dispose(&path);
	th_buf_dispose(&body);
	cli_reply_dispose(&reply);
	cli_remote_close(&r);
	return rc;
}
