/* query.c: GET /api/v1alpha1/{owner}/{db}[/{ref}]?q=SQL, DoltHub's SQL read, and the routes of
 * this file and csv_export.c.
 *
 * The handler only picks the request apart and replies: src/ runs the query and returns values
 * (th_query_run), query_json.c shapes them into DoltHub's body (shared with the CLI's --json), and
 * the status comes from the one map of reply.c (200 for Success and RowLimit, 400 for SQL errors,
 * sandbox refusals and limits, 404 for an unknown ref). The body's two pieces go to MHD without a
 * copy (api_reply_json_bufs).
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

int api_query_read(th_req *req, th_error *err)
{
	th_query_target t;
	th_query_opts o;
	th_query_info info;
	th_error qerr = { 0 };
	api_query_body body = { TH_BUF_INIT, TH_BUF_INIT };
	unsigned status;
	int error;

	t.datadir = req->srv->cfg.data_dir;
	t.owner = req->db.owner;
	t.db = req->db.name;
	t.ref = api_query_ref(req);
	th_query_opts_init(&o);
	if ((error = take_timeout(&o, api_arg(req, "timeout_ms"), err)) < 0)
		return error;
	api_echo(req, "repository_owner", t.owner);
	api_echo(req, "repository_name", t.db);
	error = api_query_json(&body, &info, &t, api_arg(req, "q"), &o, &qerr);
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
