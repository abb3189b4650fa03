/* pulls_merge.c: merging a pull request, as an operation (routes in pulls.c):
 *
 *   POST /api/v1alpha1/{owner}/{db}/pulls/{id}/merge                     start it (write role)
 *   GET  /api/v1alpha1/{owner}/{db}/pulls/{id}/merge?operationName=N     poll it
 *
 * The POST (no body, or {"deleteBranchOnMerge": bool}) checks the pull is Open and that the
 * target branch's protection lets the caller merge it now (409 naming the rule otherwise:
 * pulls_rules.c), queues a "merge" operation (src/merge_job.c runs it, and writes the
 * "pull.merge" event when the merge is done, with its commit) and answers its DoltHub names at
 * once. The poll
 * reads the operation back: job_status, the pull's state, and when done the merge commit and the
 * stored result; when it failed on conflicts, the conflicts the merge stored with the failed
 * operation (a merge failed before results were kept has them recomputed: nothing changed since).
 */
#include <string.h>

#include "pulls_api.h"
#include "tablehub/jobs.h"
#include "tablehub/log.h"
#include "tablehub/meta_access.h"
#include "tablehub/pulls.h"

/* The optional body of POST merge: {"deleteBranchOnMerge": bool} as DoltHub clients send it,
 * stored with the pull's options (the merge operation reads them when it completes). */
static int merge_options(th_req *req, const th_pull_info *p, th_error *err)
{
	th_pull_options o;
	cJSON *json, *flag;
	int error;

	if (req->body_len == 0)
		return TH_OK;
	json = cJSON_ParseWithLength(req->body, req->body_len);
	if (json == NULL || !cJSON_IsObject(json)) {
		cJSON_Delete(json);
		return th_error_set(err, TH_EINVALID,
		                    "request body must be empty or a JSON object "
		                    "{\"deleteBranchOnMerge\": true|false}");
	}
	req->json = json; /* deleted with the request */
	flag = cJSON_GetObjectItemCaseSensitive(json, "deleteBranchOnMerge");
	if (flag == NULL || cJSON_IsNull(flag))
		return TH_OK;
	if (!cJSON_IsBool(flag))
		return th_error_set(err, TH_EINVALID,
		                    "'deleteBranchOnMerge' must be true or false");
	if ((error = th_meta_pull_options_get(&o, req->srv->meta, req->db.id, p->pull_id, err)) < 0)
		return error;
	o.delete_branch_on_merge = cJSON_IsTrue(flag);
	return th_meta_pull_options_set(req->srv->meta, req->db.id, p->pull_id, &o, err);
}

int api_pulls_merge(th_req *req, th_error *err)
{
	th_pull_info p;
	int64_t id;
	char opid[TH_UUID_SIZE];
	const char *job, *userop;
	cJSON *body;
	int error, incomplete;

	if ((error = api_pull_load(&p, &id, req, err)) < 0)
		goto cleanup;
	if (p.state != TH_PULL_OPEN) {
		error = th_error_set(err, TH_ECONFLICT, "pull request #%lld is %s, not Open",
		                     (long long)id, th_pull_state_name(p.state));
		goto cleanup;
	}
	if ((error = api_pulls_check_merge(req, &p, err)) < 0 ||
	    (error = merge_options(req, &p, err)) < 0)
		goto cleanup;
	if ((error = th_pulls_enqueue_merge(opid, req->srv->meta, req->db.owner, req->db.name,
	                                    req->user, id, api_client_addr(req), err)) < 0)
		goto cleanup;
	th_jobs_wake(req->srv->jobs);
	job = api_op_job_name(&req->pool, req->db.owner, req->db.name, opid);
	userop = api_op_user_name(&req->pool, req->user, opid);
	body = api_success();
	incomplete = body == NULL || job == NULL || userop == NULL ||
	             !api_json_str(body, "database_owner", req->db.owner) ||
	             !api_json_str(body, "database_name", req->db.name) ||
	             !api_pull_add_id(body, id) || !api_json_str(body, "operation_name", job) ||
	             !api_json_str(body, "user_operation_name", userop);
	error = api_pull_reply(req, body, incomplete, err);
cleanup:
	th_pull_info_dispose(&p);
	return error;
}

int api_pulls_merge_poll(th_req *req, th_error *err)
{
	const char *name = api_arg(req, "operationName");
	th_pull_info p;
	th_op_info op;
	th_repo *repo = NULL;
	int64_t id;
	char opid[TH_UUID_SIZE];
	cJSON *body = NULL;
	int error;

	memset(&op, 0, sizeof(op));
	if ((error = api_pull_load(&p, &id, req, err)) < 0)
		goto cleanup;
	if (name == NULL || *name == '\0') {
		error = th_error_set(err, TH_EINVALID,
		                     "query parameter 'operationName' is required");
		goto cleanup;
	}
	api_echo(req, "operation_name", name);
	if ((error = api_op_name_parse(opid, req, name, err)) < 0)
		goto cleanup;
	error = th_meta_op_get(&op, req->srv->meta, opid, err);
	if (error == TH_OK &&
	    (strcmp(op.kind, "merge") != 0 || op.pull_id != id ||
	     strcmp(op.owner, req->db.owner) != 0 || strcmp(op.db, req->db.name) != 0))
		error = TH_ENOTFOUND;
	if (error == TH_ENOTFOUND) {
		error = th_error_set(err, TH_ENOTFOUND,
		                     "merge operation '%.200s' not found for pull request #%lld",
		                     name, (long long)id);
		goto cleanup;
	}
	if (error < 0)
		goto cleanup;
	body = api_success();
	if (body == NULL || !api_json_str(body, "operation_name", name) ||
	    !cJSON_AddTrueToObject(body, "job_created") ||
	    !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) || !api_pull_add_id(body, id) ||
	    !api_json_str(body, "job_status", th_op_state_name(op.state)) ||
	    !api_json_str(body, "pull_state", th_pull_state_name(p.state)))
		goto nomem;
	if (op.state == TH_OPSTATE_COMPLETED) {
		cJSON *res = op.result ? cJSON_Parse(op.result) : NULL;
		cJSON *commit = cJSON_GetObjectItem(res, "commit");
		if (cJSON_IsString(commit) &&
		    !api_json_str(body, "merge_commit", commit->valuestring)) {
			cJSON_Delete(res);
			goto nomem;
		}
		if (res && !cJSON_AddItemToObject(body, "result", res)) {
			cJSON_Delete(res);
			goto nomem;
		}
	}
	if (op.state == TH_OPSTATE_FAILED) {
		const char *msg = op.error_message ? op.error_message : "merge failed";
		if (!api_json_str(body, "message", msg))
			goto nomem;
		/* The conflicts the merge stopped on, as the job stored them. */
		if (op.result != NULL) {
			cJSON *res = cJSON_Parse(op.result);
			cJSON *list = cJSON_DetachItemFromObject(res, "conflicts");
			cJSON *total = cJSON_DetachItemFromObject(res, "conflicts_total");
			cJSON_Delete(res);
			if (list && !cJSON_AddItemToObject(body, "conflicts", list))
				cJSON_Delete(list);
			if (total && !cJSON_AddItemToObject(body, "conflicts_total", total))
				cJSON_Delete(total);
		} else if (strncmp(msg, "merge conflict", 14) == 0 && p.state == TH_PULL_OPEN) {
			/* Stored before failed jobs kept a result: recompute (nothing changed). */
			if ((error = api_repo_open(&repo, req, err)) < 0 ||
			    (error = api_pulls_add_conflicts(body, repo, &p, err)) < 0)
				goto cleanup;
		}
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
	goto cleanup;
nomem:
	error = th_error_set(err, TH_ENOMEM, "out of memory");
cleanup:
	cJSON_Delete(body);
	th_repo_free(repo);
	th_op_info_dispose(&op);
	th_pull_info_dispose(&p);
	return error;
}
