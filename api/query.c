/* query.c: GET /api/v1alpha1/{owner}/{db}[/{ref}]?q=SQL, DoltHub's SQL read, and the routes of
 * this file, csv_export.c and saved.c (saved queries).
 *
 * The handler only picks the request apart and replies: src/ runs the query and returns values
 * (th_query_run), query_json.c shapes them into DoltHub's body (shared with the CLI's --json), and
 * the status comes from the one map of reply.c (200 for Success and RowLimit, 400 for SQL errors,
 * sandbox refusals and limits, 404 for an unknown ref). The body's two pieces go to MHD without a
 * copy (api_reply_json_bufs). A query runs in the query pool (qpool.c), never on an HTTP thread:
 * it may take its whole time limit, and the first query at a commit builds its snapshot; the
 * caller may be answered 429 or 503 with Retry-After instead when too many queries are waiting.
 *
 * Refs may hold slashes (import branches are "<user>/import-<id>"). MHD decodes %2F in the path
 * before routing, so such a ref arrives as two or three segments: the routes capture up to three
 * and join them. Literal routes (/upload, /branches, /pulls, /jobs) are more specific than these
 * and always win.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "tablehub/log.h"
#include "tablehub/query.h"
#include "query_json.h"

#define API "/api/v1alpha1"

const api_route api_query_routes[] = {
	{ "GET", API "/:owner/:db", api_query_read, R_READ },
	{ "GET", API "/:owner/:db/:ref", api_query_read, R_READ },
	{ "GET", API "/:owner/:db/:ref/:ref2", api_query_read, R_READ },
	{ "GET", API "/:owner/:db/:ref/:ref2/:ref3", api_query_read, R_READ },
	{ "GET", "/csv/:owner/:db/:ref", api_csv_zip, R_READ },
	{ "GET", API "/:owner/:db/queries", api_saved_list, R_READ },
	{ "GET", API "/:owner/:db/queries/:name", api_saved_run, R_READ },
	{ "GET", API "/:owner/:db/queries/:name/definition", api_saved_get, R_READ },
	{ "PUT", API "/:owner/:db/queries/:name", api_saved_put, R_WRITE | R_JSON },
	{ "DELETE", API "/:owner/:db/queries/:name", api_saved_delete, R_WRITE },
	{ "GET", "/csv/:owner/:db/:ref/:table", api_csv_export, R_READ },
	{ "GET", "/csv/:owner/:db/:ref/:ref2/:table", api_csv_export, R_READ },
	{ "GET", "/csv/:owner/:db/:ref/:ref2/:ref3/:table", api_csv_export, R_READ },
	{ NULL, NULL, NULL, 0 }
};

const char *api_query_ref(th_req *req)
{
	const char *a = api_cap(req, "ref"), *b = api_cap(req, "ref2"), *c = api_cap(req, "ref3");

	if (a == NULL || b == NULL)
		return a;
	if (c == NULL)
		return api_pool_printf(&req->pool, "%s/%s", a, b);
	return api_pool_printf(&req->pool, "%s/%s/%s", a, b, c);
}

/* `timeout_ms` (as DoltHub's v2 API has it) may only lower the server's limit. */
static int take_timeout(th_query_opts *o, const char *arg, th_error *err)
{
	char *end;
	unsigned long long v;

	if (arg == NULL)
		return TH_OK;
	v = strtoull(arg, &end, 10);
	if (end == arg || *end != '\0' || v == 0)
		return th_error_set(err, TH_EINVALID, "timeout_ms must be a positive number");
	if (o->time_ms == 0 || v < o->time_ms)
		o->time_ms = (uint32_t)v;
	return TH_OK;
}

/* One SQL read, parked in the query pool: everything the worker needs, from the request's pool
 * (the strings are MHD's or the pool's, alive as long as the request). */
typedef struct query_job {
	th_query_target t;
	th_query_opts o;
	const char *sql; /* NULL or "": list the tables */
} query_job;

/* Run the query and make the reply: on a query worker (qpool.c), or on the HTTP thread for the
 * table list, which reads one tree and builds no snapshot. */
static int run_query(th_req *req, void *arg, th_error *err)
{
	query_job *j = arg;
	th_query_info info;
	th_error qerr = { 0 };
	api_query_body body = { TH_BUF_INIT, TH_BUF_INIT };
	unsigned status;
	int error;

	error = api_query_json(&body, &info, &j->t, j->sql, &j->o, &qerr);
	if (body.head.ptr == NULL) { /* not even the error fitted in memory */
		api_query_body_dispose(&body);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	status = error == TH_OK ? MHD_HTTP_OK : api_status_for(error);
	if (status >= 500)
		TH_LOG(TH_LOG_ERROR, "req=%llu query failed: %s (%s)", (unsigned long long)req->id,
		       qerr.msg, th_code_name(error));
	return api_reply_json_bufs(req, status, &body.head, &body.rest, err);
}

int api_query_read(th_req *req, th_error *err)
{
	query_job *j = api_pool_alloc(&req->pool, sizeof(*j));
	int error;

	if (j == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	j->t.datadir = req->srv->cfg.data_dir;
	j->t.owner = req->db.owner;
	j->t.db = req->db.name;
	j->t.ref = api_query_ref(req);
	j->sql = api_arg(req, "q");
	if (req->json != NULL && (error = api_query_body_sql(&j->sql, req, err)) < 0)
		return error; /* SQL over POST (bitio.c) */
	th_query_opts_init(&j->o);
	if ((error = take_timeout(&j->o, api_arg(req, "timeout_ms"), err)) < 0)
		return error;
	api_echo(req, "repository_owner", j->t.owner);
	api_echo(req, "repository_name", j->t.db);
	if (j->sql == NULL || j->sql[0] == '\0')
		return run_query(req, j, err);
	return api_qpool_submit(req, run_query, j, j->o.time_ms, err);
}
