/* sqlwrite.c: DoltHub's SQL write and its poll, and the routes of this file.
 *
 *   POST /api/v1alpha1/{owner}/{db}/write/{from}/{to}?q=SQL   (or a JSON body {"query": SQL})
 *   GET  /api/v1alpha1/{owner}/{db}/write?operationName=operations/<id>
 *
 * The POST checks the request and queues an operation of kind "sqlwrite" (src/sqlwrite_job.c):
 * the statements run on branch `to` (made from `from` when missing) and are committed there; an
 * empty query merges `from` into `to`. It answers at once with DoltHub's fields, the operation's
 * name among them. The poll answers DoltHub's `_id`, `done` and `res_details` (its
 * query_execution_status, query_execution_message, owner_name, repository_name, from_commit_id,
 * to_commit_id), with tablehub's additions: the operation's job_status, and in res_details the
 * rows added, modified and removed, in total and per table, and for a failure the statement's
 * line and column. Writing needs the write role on the database, and is refused on a protected
 * branch (those change through reviewed pull requests); polling needs the read role.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "tablehub/jobs.h"
#include "tablehub/meta_access.h"
#include "tablehub/repo.h"
#include "tablehub/sqlwrite.h"

#define API "/api/v1alpha1"

const api_route api_sqlwrite_routes[] = { { "POST", API "/:owner/:db/write/:from/:to",
	                                    api_sqlwrite_create, R_WRITE | R_FORM | R_ENQUEUE },
	                                  { "GET", API "/:owner/:db/write", api_sqlwrite_poll,
	                                    R_READ },
	                                  { NULL, NULL, NULL, 0 } };

static int oom(cJSON *body, th_error *err)
{
	cJSON_Delete(body);
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

int api_sqlwrite_create(th_req *req, th_error *err)
{
	const char *from = api_cap(req, "from"), *to = api_cap(req, "to");
	const char *query = api_arg(req, "q"), *body_query = NULL;
	th_repo *repo = NULL;
	th_protection prot;
	char id[TH_UUID_SIZE];
	th_oid head;
	cJSON *body;
	int error;

	api_echo(req, "from_branch_name", from);
	api_echo(req, "to_branch_name", to);
	/* The body is optional: q= carries short queries, a JSON object {"query": ...} long ones.
	 */
	if (req->body_len > 0) {
		req->json = cJSON_ParseWithLength(req->body, req->body_len);
		if (req->json == NULL || !cJSON_IsObject(req->json))
			return th_error_set(err, TH_EINVALID,
			                    "request body must be a JSON object {\"query\": ...}");
		if ((error = api_json_get_str(&body_query, req->json, "query", 0, "", err)) < 0)
			return error;
	}
	if (body_query != NULL)
		query = body_query;
	if (query == NULL)
		query = "";
	if (!th_repo_branch_name_valid(from) || !th_repo_branch_name_valid(to))
		return th_error_set(err, TH_EINVALID, "'%.200s' is not a valid branch name",
		                    th_repo_branch_name_valid(from) ? to : from);
	/* A protected branch changes through reviewed pull requests only: a write, or a merge by
	 * an empty query, goes to another branch. */
	error = th_meta_protection_get(&prot, req->srv->meta, req->db.id, to, err);
	if (error == TH_OK)
		return th_error_set(
		        err, TH_EFORBIDDEN,
		        "branch '%.200s' is protected: write to another branch and open a "
		        "pull request",
		        to);
	if (error != TH_ENOTFOUND)
		return error;
	th_error_clear(err);
	if ((error = api_repo_open(&repo, req, err)) < 0)
		return error;
	error = th_repo_branch_get(&head, repo, from, err);
	th_repo_free(repo);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "branch '%.200s' not found in '%s/%s'", from,
		                    req->db.owner, req->db.name);
	if (error < 0)
		return error;
	if ((error = th_sqlwrite_enqueue(id, req->srv->meta, req->db.owner, req->db.name, req->user,
	                                 from, to, query, err)) < 0)
		return error;
	th_jobs_wake(req->srv->jobs);

	body = api_success();
	if (body == NULL || !api_json_str(body, "query_execution_status", "Success") ||
	    !api_json_str(body, "query_execution_message",
	                  "Operation created. Poll the operation endpoint to see the execution "
	                  "status of this query.") ||
	    !api_json_str(body, "repository_owner", req->db.owner) ||
	    !api_json_str(body, "repository_name", req->db.name) ||
	    !api_json_str(body, "from_branch_name", from) ||
	    !api_json_str(body, "to_branch_name", to) || !api_json_str(body, "query", query) ||
	    !api_json_str(body, "operation_name", api_pool_printf(&req->pool, "operations/%s", id)))
		return oom(body, err);
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

/* The uuid of "operations/<uuid>" (or of a bare uuid) into id. */
static int op_id(char id[TH_UUID_SIZE], const char *name, th_error *err)
{
	const char *p = strncmp(name, "operations/", 11) == 0 ? name + 11 : name;
	size_t i;

	for (i = 0; i < 36; i++) {
		char c = p[i];
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? c != '-'
		         : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		             (c >= 'A' && c <= 'F')))
			break;
	}
	if (i != 36 || p[36] != '\0')
		return th_error_set(
		        err, TH_EINVALID,
		        "'operationName' is not a write operation's name: '%.200s' (want "
		        "operations/<id>)",
		        name);
	memcpy(id, p, TH_UUID_SIZE);
	return TH_OK;
}

/* res_details of a finished write: DoltHub's fields from the stored result, and ours. */
static int add_details(cJSON *body, const th_req *req, const th_op_info *op)
{
	cJSON *d = cJSON_AddObjectToObject(body, "res_details");
	cJSON *res = op->result ? cJSON_Parse(op->result) : NULL, *it;
	const char *from = NULL, *to = NULL;
	char msg[128];
	int ok;

	if (d == NULL)
		goto fail;
	if (op->state == TH_OPSTATE_COMPLETED && cJSON_IsObject(res)) {
		double affected = cJSON_GetNumberValue(cJSON_GetObjectItem(res, "rows_affected"));
		if (cJSON_IsTrue(cJSON_GetObjectItem(res, "merge")))
			snprintf(msg, sizeof(msg), "Merge OK");
		else
			snprintf(msg, sizeof(msg), "Query OK, %.0f row%s affected.",
			         affected == affected ? affected : 0, affected == 1 ? "" : "s");
		from = cJSON_GetStringValue(cJSON_GetObjectItem(res, "from_commit_id"));
		to = cJSON_GetStringValue(cJSON_GetObjectItem(res, "to_commit_id"));
		ok = api_json_str(d, "query_execution_status", "Success") &&
		     api_json_str(d, "query_execution_message", msg);
	} else {
		ok = api_json_str(d, "query_execution_status", "Error") &&
		     api_json_str(d, "query_execution_message",
		                  op->error_message ? op->error_message : "failed") &&
		     (op->error_line == 0 ||
		      (cJSON_AddNumberToObject(d, "line", (double)op->error_line) &&
		       cJSON_AddNumberToObject(d, "column", (double)op->error_column)));
	}
	if (!ok || !api_json_str(d, "owner_name", req->db.owner) ||
	    !api_json_str(d, "repository_name", req->db.name) ||
	    !api_json_str(d, "from_commit_id", from) || !api_json_str(d, "to_commit_id", to))
		goto fail;
	if (op->state == TH_OPSTATE_COMPLETED && cJSON_IsObject(res)) {
		static const char *const keep[] = { "from_branch", "to_branch",     "merge",
			                            "committed",   "statements",    "rows_affected",
			                            "rows_added",  "rows_modified", "rows_removed",
			                            "tables" };
		size_t i;
		for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
			if ((it = cJSON_DetachItemFromObject(res, keep[i])) != NULL &&
			    !cJSON_AddItemToObject(d, keep[i], it)) {
				cJSON_Delete(it);
				goto fail;
			}
		}
	}
	cJSON_Delete(res);
	return 0;
fail:
	cJSON_Delete(res);
	return -1;
}

int api_sqlwrite_poll(th_req *req, th_error *err)
{
	const char *name = api_arg(req, "operationName");
	char id[TH_UUID_SIZE];
	th_op_info op;
	cJSON *body = NULL;
	int error, done;

	if (name == NULL || name[0] == '\0')
		return th_error_set(err, TH_EINVALID,
		                    "query parameter 'operationName' is required");
	api_echo(req, "operation_name", name);
	if ((error = op_id(id, name, err)) < 0)
		return error;
	memset(&op, 0, sizeof(op));
	error = th_meta_op_get(&op, req->srv->meta, id, err);
	if (error == TH_OK &&
	    (strcmp(op.kind, "sqlwrite") != 0 || strcmp(op.owner, req->db.owner) != 0 ||
	     strcmp(op.db, req->db.name) != 0))
		error = TH_ENOTFOUND;
	if (error == TH_ENOTFOUND) {
		th_op_info_dispose(&op);
		return th_error_set(err, TH_ENOTFOUND,
		                    "write operation '%.200s' not found in '%s/%s'", name,
		                    req->db.owner, req->db.name);
	}
	if (error < 0)
		return error;
	done = op.state == TH_OPSTATE_COMPLETED || op.state == TH_OPSTATE_FAILED;
	body = api_success();
	if (body == NULL ||
	    !api_json_str(body, "_id", api_pool_printf(&req->pool, "operations/%s", op.id)) ||
	    !cJSON_AddBoolToObject(body, "done", done) ||
	    !api_json_str(body, "operation_name",
	                  api_pool_printf(&req->pool, "operations/%s", op.id)) ||
	    !api_json_str(body, "job_status", th_op_state_name(op.state)) ||
	    (done && add_details(body, req, &op) < 0)) {
		th_op_info_dispose(&op);
		return oom(body, err);
	}
	th_op_info_dispose(&op);
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}
