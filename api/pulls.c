/* pulls.c: pull requests of a database, in DoltHub's v1alpha1 shapes.
 *
 *   GET /api/v1alpha1/{owner}/{db}/pulls          list (pageToken, filterByState)
 *   GET /api/v1alpha1/{owner}/{db}/pulls/{id}     one pull request
 *
 * The routes of this resource live here, in api_pulls_routes, beside their handlers: add a line
 * for each new endpoint (create, close, comments, reviews, merge, diff); the dispatcher searches
 * every table and picks the most specific pattern, so order does not matter. Pull ids are strings
 * in DoltHub's bodies ("pull_id": "1").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "tablehub/meta.h"

#define API "/api/v1alpha1"

const api_route api_pulls_routes[] = {
	{ "GET", API "/:owner/:db/pulls", api_pulls_list, R_DB },
	{ "GET", API "/:owner/:db/pulls/:id", api_pulls_get, R_DB },
	{ NULL, NULL, NULL, 0 },
};

int api_pulls_list(th_req *req, th_error *err)
{
	const char *filter = api_arg(req, "filterByState");
	th_pull_state state = 0;
	th_pull_list l = { NULL, 0 };
	char next[TH_PAGE_TOKEN_SIZE] = "";
	cJSON *body = NULL, *arr;
	int error;

	if (filter != NULL && filter[0] != '\0' && (state = th_pull_state_parse(filter)) == 0)
		return th_error_set(err, TH_EINVALID,
		                    "'filterByState' must be Open, Closed or Merged (got '%.64s')",
		                    filter);
	error = th_meta_pull_list(&l, next, req->srv->meta, req->db.id, state,
	                          api_arg(req, "pageToken"), 0, err);
	if (error == TH_EINVALID)
		return th_error_set(err, TH_EINVALID, "bad 'pageToken'");
	if (error < 0)
		return error;
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    (arr = cJSON_AddArrayToObject(body, "pulls")) == NULL)
		goto oom;
	for (size_t i = 0; i < l.n; i++) {
		const th_pull_info *p = &l.items[i];
		cJSON *it = cJSON_CreateObject();
		char id[24], created[32];
		snprintf(id, sizeof(id), "%lld", (long long)p->pull_id);
		th_time_fmt(created, p->created_at);
		if (it == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			goto oom;
		}
		if (!api_json_str(it, "pull_id", id) || !api_json_str(it, "title", p->title) ||
		    !api_json_str(it, "description", p->description) ||
		    !api_json_str(it, "state", th_pull_state_name(p->state)) ||
		    !api_json_str(it, "created_at", created) ||
		    !api_json_str(it, "creator", p->author))
			goto oom;
	}
	if (!api_json_str(body, "next_page_token", next))
		goto oom;
	th_pull_list_dispose(&l);
	return api_reply_json(req, MHD_HTTP_OK, body, err);
oom:
	th_pull_list_dispose(&l);
	cJSON_Delete(body);
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

int api_pulls_get(th_req *req, th_error *err)
{
	const char *ids = api_cap(req, "id");
	int64_t id = strtoll(ids, NULL, 10);
	th_pull_info p;
	char created[32], updated[32];
	cJSON *body;
	int error;

	api_echo(req, "pull_id", ids);
	memset(&p, 0, sizeof(p));
	error = th_meta_pull_get(&p, req->srv->meta, req->db.id, id, err);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "pull request #%s not found in '%s/%s'", ids,
		                    req->db.owner, req->db.name);
	if (error < 0)
		return error;
	th_time_fmt(created, p.created_at);
	th_time_fmt(updated, p.updated_at);
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    !api_json_str(body, "pull_id", ids) || !api_json_str(body, "title", p.title) ||
	    !api_json_str(body, "description", p.description) ||
	    !api_json_str(body, "state", th_pull_state_name(p.state)) ||
	    !api_json_str(body, "from_branch_owner", req->db.owner) ||
	    !api_json_str(body, "from_branch_database", req->db.name) ||
	    !api_json_str(body, "from_branch_name", p.from_branch) ||
	    !api_json_str(body, "to_branch_owner", req->db.owner) ||
	    !api_json_str(body, "to_branch_database", req->db.name) ||
	    !api_json_str(body, "to_branch_name", p.to_branch) ||
	    /* the names of DoltHub's 2026 pages */
	    !api_json_str(body, "from_branch", p.from_branch) ||
	    !api_json_str(body, "to_branch", p.to_branch) ||
	    !api_json_str(body, "created_at", created) ||
	    !api_json_str(body, "updated_at", updated) || !api_json_str(body, "author", p.author) ||
	    (p.merge_commit[0] && !api_json_str(body, "merge_commit", p.merge_commit))) {
		cJSON_Delete(body);
		th_pull_info_dispose(&p);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	th_pull_info_dispose(&p);
	if ((error = api_pulls_add_notes(body, req, id, err)) < 0) { /* comments, reviews */
		cJSON_Delete(body);
		return error;
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}
