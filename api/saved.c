/* saved.c: saved queries as endpoints (the queries themselves: include/tablehub/saved.h).
 *
 *   PUT    /api/v1alpha1/{owner}/{db}/queries/{name}   {"query", "description", "params",
 *          "branchName" (default main), "commitMessage"}: check the query at the branch and commit
 *          it there as queries/{name}.json (write role; a protected branch takes its changes by
 *          pull request only, so it is refused)
 *   DELETE /api/v1alpha1/{owner}/{db}/queries/{name}?branchName=   remove it by a commit
 *   GET    /api/v1alpha1/{owner}/{db}/queries?ref=                  the definitions at a ref
 *   GET    /api/v1alpha1/{owner}/{db}/queries/{name}/definition?ref=   one definition
 *   GET    /api/v1alpha1/{owner}/{db}/queries/{name}?ref=&{param}=value...   run it: DoltHub's
 *          SQL-read body as the SQL endpoint answers, or CSV with Accept: text/csv or format=csv
 *
 * Running: the definition is read at the ref and each declared parameter's value taken from the
 * query string (all of them are required) on the HTTP thread; the statement then runs in the
 * query pool (qpool.c) with the values bound to its ":name" placeholders (th_query_run_bound),
 * never spliced into its text. Saving checks the statement against the branch's tables, which
 * may build a snapshot, so it runs in the pool too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "query_json.h"
#include "tablehub/datadir.h"
#include "tablehub/export.h"
#include "tablehub/meta_access.h"
#include "tablehub/saved.h"

/* A branch that takes its changes by pull request only refuses a direct commit. */
static int check_unprotected(th_req *req, const char *branch, th_error *err)
{
	th_protection rules;
	int error = th_meta_protection_get(&rules, req->srv->meta, req->db.id, branch, err);

	if (error == TH_ENOTFOUND) {
		th_error_clear(err);
		return TH_OK;
	}
	if (error < 0)
		return error;
	return th_error_set(err, TH_ECONFLICT,
	                    "branch '%s' is protected: save the query on another branch and merge "
	                    "it by pull request",
	                    branch);
}

static void target_of(th_query_target *t, th_req *req, const char *ref)
{
	t->datadir = req->srv->cfg.data_dir;
	t->owner = req->db.owner;
	t->db = req->db.name;
	t->ref = ref;
}

static int reply_commit(th_req *req, const char *name, const char *branch, const th_oid *commit,
                        th_error *err)
{
	char hex[41];
	cJSON *body = api_success();

	th_oid_fmt(hex, commit);
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    !api_json_str(body, "query_name", name) || !api_json_str(body, "branch_name", branch) ||
	    !api_json_str(body, "commit_id", hex)) {
		cJSON_Delete(body);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

/* Commit q (or the removal of `name`) on `branch`. */
static int commit(th_req *req, const char *branch, const char *name, const th_saved_query *q,
                  const char *message, th_error *err)
{
	th_repo *repo = NULL;
	th_oid head;
	int error;

	if ((error = th_datadir_repo_open(&repo, req->srv->cfg.data_dir, req->db.owner,
	                                  req->db.name, 1, err)) < 0)
		return error;
	error = th_saved_commit(&head, repo, branch, name, q, req->user, message, err);
	th_repo_free(repo);
	return error < 0 ? error : reply_commit(req, name, branch, &head, err);
}

/* --- PUT and DELETE --------------------------------------------------------------------------- */

/* The job of a PUT, in the request's pool (the query's strings too: nothing to free). */
typedef struct put_job {
	th_saved_query q;
	const char *branch, *message;
} put_job;

static int run_put(th_req *req, void *arg, th_error *err)
{
	put_job *j = arg;
	th_query_target t;
	int error;

	target_of(&t, req, j->branch);
	if ((error = th_saved_check(&t, &j->q, err)) == TH_ENOTFOUND)
		error = th_error_set(err, TH_ENOTFOUND, "branch '%s' not found", j->branch);
	if (error == TH_OK)
		error = commit(req, j->branch, j->q.name, &j->q, j->message, err);
	return error;
}

int api_saved_put(th_req *req, th_error *err)
{
	put_job *j = api_pool_alloc(&req->pool, sizeof(*j));
	const char *name = api_cap(req, "name");
	th_saved_query q;
	int error;

	if (j == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	memset(j, 0, sizeof(*j));
	if ((error = api_json_get_str(&j->branch, req->json, "branchName", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&j->message, req->json, "commitMessage", 0, "", err)) < 0)
		return error;
	if (j->branch == NULL || j->branch[0] == '\0')
		j->branch = "main";
	if (!th_repo_branch_name_valid(j->branch))
		return th_error_set(err, TH_EINVALID, "'branchName' is not a valid branch name");
	if ((error = check_unprotected(req, j->branch, err)) < 0 ||
	    (error = th_saved_from_json(&q, name, req->body, req->body_len, err)) < 0)
		return error;
	j->q = q;
	j->q.sql = api_pool_strdup(&req->pool, q.sql);
	j->q.description = api_pool_strdup(&req->pool, q.description);
	th_saved_dispose(&q);
	if (j->q.sql == NULL || j->q.description == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return api_qpool_submit(req, run_put, j, TH_QUERY_TIME_MS, err);
}

int api_saved_delete(th_req *req, th_error *err)
{
	const char *name = api_cap(req, "name"), *branch = api_arg(req, "branchName");
	int error;

	if (branch == NULL || branch[0] == '\0')
		branch = "main";
	if (!th_saved_name_valid(name))
		return th_error_set(err, TH_EINVALID, "bad query name '%.64s'", name);
	if (!th_repo_branch_name_valid(branch))
		return th_error_set(err, TH_EINVALID, "'branchName' is not a valid branch name");
	if ((error = check_unprotected(req, branch, err)) < 0)
		return error;
	return commit(req, branch, name, NULL, api_arg(req, "commitMessage"), err);
}

/* --- definitions ------------------------------------------------------------------------------ */

static cJSON *definition(const th_saved_query *q)
{
	cJSON *o = cJSON_CreateObject(), *params;
	size_t i;

	if (o == NULL || !api_json_str(o, "name", q->name) ||
	    !api_json_str(o, "description", q->description) || !api_json_str(o, "query", q->sql) ||
	    (params = cJSON_AddArrayToObject(o, "params")) == NULL)
		goto oom;
	for (i = 0; i < q->nparams; i++) {
		cJSON *p = cJSON_CreateObject();
		if (p == NULL || !cJSON_AddItemToArray(params, p) ||
		    !api_json_str(p, "name", q->params[i].name) ||
		    !api_json_str(p, "type", th_type_name(q->params[i].type)))
			goto oom;
	}
	return o;
oom:
	cJSON_Delete(o);
	return NULL;
}

int api_saved_list(th_req *req, th_error *err)
{
	th_query_target t;
	th_saved_query *v = NULL;
	cJSON *body = NULL, *arr, *d;
	size_t n = 0, i;
	int error;

	target_of(&t, req, api_arg(req, "ref"));
	if ((error = th_saved_list(&v, &n, &t, err)) < 0)
		return error;
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    !api_json_str(body, "ref", th_query_ref(&t)) ||
	    (arr = cJSON_AddArrayToObject(body, "queries")) == NULL)
		goto oom;
	for (i = 0; i < n; i++)
		if ((d = definition(&v[i])) == NULL || !cJSON_AddItemToArray(arr, d)) {
			cJSON_Delete(d);
			goto oom;
		}
	th_saved_list_free(v, n);
	return api_reply_json(req, MHD_HTTP_OK, body, err);
oom:
	th_saved_list_free(v, n);
	cJSON_Delete(body);
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

int api_saved_get(th_req *req, th_error *err)
{
	th_query_target t;
	th_saved_query q;
	cJSON *body, *d;
	int error;

	target_of(&t, req, api_arg(req, "ref"));
	if ((error = th_saved_get(&q, &t, api_cap(req, "name"), err)) < 0)
		return error;
	d = definition(&q);
	body = api_success();
	th_saved_dispose(&q);
	if (d == NULL || body == NULL || !api_json_str(body, "ref", th_query_ref(&t)) ||
	    !cJSON_AddItemToObject(body, "query", d)) {
		cJSON_Delete(d);
		cJSON_Delete(body);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

/* --- running ---------------------------------------------------------------------------------- */

typedef struct run_job {
	th_query_target t;
	th_query_opts o;
	const char *sql;
	th_sql_binds binds;
	int csv;
} run_job;

/* The CSV of a result, built in memory (the row limit bounds it). */
typedef struct csv_sink {
	th_export *x;
	th_buf out;
} csv_sink;

static int csv_columns(void *p, size_t n, const char *const *names, const char *const *types,
                       th_error *err)
{
	csv_sink *c = p;

	return th_export_begin(c->x, &c->out, n, names, types, err);
}

static int csv_row(void *p, const th_cell *cells, size_t n, th_error *err)
{
	csv_sink *c = p;

	return th_export_row(c->x, &c->out, cells, n, err);
}

static int reply_csv(th_req *req, csv_sink *c, int truncated, th_error *err)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(c->out.size, c->out.ptr ? c->out.ptr : (char *)"",
	                                    MHD_RESPMEM_MUST_COPY);
	if (r == NULL ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, th_exporter_csv.media_type) !=
	            MHD_YES ||
	    MHD_add_response_header(r, "X-Query-Status", truncated ? "RowLimit" : "Success") !=
	            MHD_YES) {
		if (r != NULL)
			MHD_destroy_response(r);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	req->resp = r;
	req->status = MHD_HTTP_OK;
	req->resp_len = c->out.size;
	return TH_OK;
}

static int run_saved(th_req *req, void *arg, th_error *err)
{
	run_job *j = arg;
	th_query_info info;
	api_query_body body = { TH_BUF_INIT, TH_BUF_INIT };
	csv_sink c = { NULL, TH_BUF_INIT };
	th_sql_sink sink = { csv_columns, csv_row, &c };
	int error;

	if (!j->csv) {
		error = api_query_json_bound(&body, &info, &j->t, j->sql, &j->binds, &j->o, err);
		if (body.head.ptr == NULL) {
			api_query_body_dispose(&body);
			return th_error_set(err, TH_ENOMEM, "out of memory");
		}
		return api_reply_json_bufs(req,
		                           error == TH_OK ? MHD_HTTP_OK : api_status_for(error),
		                           &body.head, &body.rest, err);
	}
	if ((error = th_export_new(&c.x, &th_exporter_csv, err)) == TH_OK &&
	    (error = th_query_run_bound(&info, &j->t, j->sql, &j->binds, &j->o, &sink, err)) ==
	            TH_OK &&
	    (error = th_export_end(c.x, &c.out, err)) == TH_OK)
		error = reply_csv(req, &c, info.truncated, err);
	th_export_free(c.x);
	th_buf_dispose(&c.out);
	return error;
}

static int wants_csv(th_req *req, int *csv, th_error *err)
{
	const char *format = api_arg(req, "format"), *accept = api_header(req, "Accept");

	*csv = 0;
	if (format != NULL) {
		if (strcasecmp(format, "csv") != 0 && strcasecmp(format, "json") != 0)
			return th_error_set(err, TH_EINVALID, "format must be json or csv");
		*csv = strcasecmp(format, "csv") == 0;
	} else if (accept != NULL && strstr(accept, "text/csv") != NULL) {
		*csv = 1;
	}
	return TH_OK;
}

int api_saved_run(th_req *req, th_error *err)
{
	run_job *j = api_pool_alloc(&req->pool, sizeof(*j));
	const char **names, **values;
	int *types;
	th_saved_query q;
	size_t i;
	int error;

	if (j == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	memset(j, 0, sizeof(*j));
	if ((error = wants_csv(req, &j->csv, err)) < 0)
		return error;
	target_of(&j->t, req, api_arg(req, "ref"));
	if ((error = th_saved_get(&q, &j->t, api_cap(req, "name"), err)) < 0)
		return error;
	names = api_pool_alloc(&req->pool, (q.nparams + 1) * sizeof(*names));
	values = api_pool_alloc(&req->pool, (q.nparams + 1) * sizeof(*values));
	types = api_pool_alloc(&req->pool, (q.nparams + 1) * sizeof(*types));
	if (names == NULL || values == NULL || types == NULL ||
	    (j->sql = api_pool_strdup(&req->pool, q.sql)) == NULL) {
		th_saved_dispose(&q);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	for (i = 0; i < q.nparams; i++) {
		names[i] = api_pool_strdup(&req->pool, q.params[i].name);
		values[i] = api_arg(req, q.params[i].name);
		types[i] = (int)q.params[i].type;
		if (names[i] == NULL) {
			th_saved_dispose(&q);
			return th_error_set(err, TH_ENOMEM, "out of memory");
		}
		if (values[i] == NULL) {
			error = th_error_set(err, TH_EINVALID,
			                     "saved query '%s' needs parameter '%s' (%s): add "
			                     "?%s=... to the URL",
			                     q.name, q.params[i].name,
			                     th_type_name(q.params[i].type), q.params[i].name);
			th_saved_dispose(&q);
			return error;
		}
	}
	j->binds.n = q.nparams;
	j->binds.names = names;
	j->binds.values = values;
	j->binds.types = types;
	th_saved_dispose(&q);
	th_query_opts_init(&j->o);
	api_echo(req, "repository_owner", j->t.owner);
	api_echo(req, "repository_name", j->t.db);
	return api_qpool_submit(req, run_saved, j, j->o.time_ms, err);
}
