/* branches.c: GET and POST /api/v1alpha1/{owner}/{db}/branches, DoltHub's branch list and create.
 *
 * Branches are the git branches of the database's repository. A new branch is created by
 * compare-and-swap with "must not exist yet", so two creates of one name cannot both succeed.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "tablehub/buf.h"
#include "tablehub/datadir.h"
#include "tablehub/repo.h"

int api_repo_open(th_repo **out, th_req *req, th_error *err)
{
	return th_datadir_repo_open(out, req->srv->cfg.data_dir, req->db.owner, req->db.name, 0,
	                            err);
}

int api_branches_list(th_req *req, th_error *err)
{
	th_repo *repo = NULL;
	char **names = NULL;
	cJSON *body = NULL, *arr;
	int error;

	if ((error = api_repo_open(&repo, req, err)) < 0 ||
	    (error = th_repo_branch_list(&names, repo, err)) < 0)
		goto cleanup;
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    (arr = cJSON_AddArrayToObject(body, "branches")) == NULL)
		goto oom;
	for (size_t i = 0; names[i] != NULL; i++) {
		cJSON *b = cJSON_CreateObject();
		if (b == NULL || !cJSON_AddItemToArray(arr, b) ||
		    !api_json_str(b, "branch_name", names[i])) {
			cJSON_Delete(b);
			goto oom;
		}
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
	goto cleanup;
oom:
	error = th_error_set(err, TH_ENOMEM, "out of memory");
cleanup:
	cJSON_Delete(body);
	th_strv_free(names);
	th_repo_free(repo);
	return error;
}

int api_branches_create(th_req *req, th_error *err)
{
	const char *type, *rev, *name;
	th_repo *repo = NULL;
	th_oid target;
	char logmsg[300];
	cJSON *body;
	int error;

	if ((error = api_json_get_str(&type, req->json, "revisionType", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&rev, req->json, "revisionName", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&name, req->json, "newBranchName", 1, "", err)) < 0)
		return error;
	if (strcasecmp(type, "branch") != 0 && strcasecmp(type, "ref") != 0 &&
	    strcasecmp(type, "commit") != 0)
		return th_error_set(
		        err, TH_EINVALID,
		        "'revisionType' must be 'branch', 'ref' or 'commit' (got '%.64s')", type);
	if (!th_repo_branch_name_valid(name))
		return th_error_set(err, TH_EINVALID,
		                    "'newBranchName' is not a valid branch name: '%.200s'", name);
	if ((error = api_repo_open(&repo, req, err)) < 0)
		goto cleanup;
	if (strcasecmp(type, "branch") == 0)
		error = th_repo_branch_get(&target, repo, rev, err);
	else
		error = th_repo_resolve(&target, repo, rev, err);
	if (error == TH_ENOTFOUND || error == TH_EINVALID) {
		error = th_error_set(err, TH_ENOTFOUND, "%s '%.200s' not found in '%s/%s'",
		                     strcasecmp(type, "branch") == 0 ? "branch" : "revision", rev,
		                     req->db.owner, req->db.name);
		goto cleanup;
	}
	if (error < 0)
		goto cleanup;
	snprintf(logmsg, sizeof(logmsg), "branch: Created from %.200s", rev);
	error = th_repo_branch_cas(repo, name, &target, NULL, logmsg, err);
	if (error == TH_ECONFLICT)
		error = th_error_set(err, TH_EEXISTS, "branch '%.200s' already exists", name);
	if (error < 0)
		goto cleanup;
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    !api_json_str(body, "new_branch_name", name) ||
	    !api_json_str(body, "revision_type", type) ||
	    !api_json_str(body, "revision_name", rev)) {
		cJSON_Delete(body);
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);

cleanup:
	th_repo_free(repo);
	return error;
}
