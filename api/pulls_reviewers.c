/* pulls_reviewers.c: the reviewers requested on a pull request (routes in pulls.c):
 *
 *   POST   /api/v1alpha1/{owner}/{db}/pulls/{id}/reviewers          {"reviewers": ["bob", ...]}
 *   DELETE /api/v1alpha1/{owner}/{db}/pulls/{id}/reviewers/{user}   withdraw one request
 *
 * and their list in a pull's own body (api_pulls_add_reviewers): "requested_reviewers", each
 * {"username", "review_status"} with the reviewer's latest review ("Approved", "Rejected",
 * "Reviewed") or null while they have given none.
 *
 * Who: the write role or the pull's author requests (the route needs read, the rest is checked
 * here, as for PATCH); they, or the reviewer themself, withdraw. Each reviewer must be a user
 * who can read the database and not the pull's author; the first name that is not is the
 * error (404 for no such user, 400 otherwise), and nothing is stored. Names already requested,
 * or given twice, are skipped. Both changes write an event.
 */
#include <stdio.h>
#include <string.h>

#include "pulls_api.h"
#include "tablehub/meta_access.h"
#include "tablehub/text.h"

static int may_change(th_req *req, const th_pull_info *p, const char *reviewer)
{
	return req->role >= TH_ROLE_WRITE || strcmp(req->user, p->author) == 0 ||
	       (reviewer != NULL && strcmp(req->user, reviewer) == 0);
}

/* Is `name` someone who may review pull p: an existing user with read here, not its author? */
static int reviewer_ok(th_req *req, const th_pull_info *p, const char *name, th_error *err)
{
	th_user_info u;
	th_role role = TH_ROLE_NONE;
	int error;

	if (!th_name_valid(name))
		return th_error_set(err, TH_EINVALID,
		                    "invalid reviewer '%.64s': use a user name of 1-64 letters, "
		                    "digits, '_' or '-'",
		                    name);
	error = th_meta_user_get(&u, req->srv->meta, name, err);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "reviewer '%s' is not a user", name);
	if (error < 0)
		return error;
	if (strcmp(name, p->author) == 0)
		return th_error_set(
		        err, TH_EINVALID,
		        "reviewer '%s' is the pull request's author, who cannot review it", name);
	if ((error = api_role_of(&role, req, name, req->db.id, req->db.owner, req->db.is_private,
	                         err)) < 0)
		return error;
	if (role < TH_ROLE_READ)
		return th_error_set(err, TH_EINVALID,
		                    "reviewer '%s' cannot read '%s/%s': give them a role first",
		                    name, req->db.owner, req->db.name);
	return TH_OK;
}

int api_pulls_add_reviewers(cJSON *body, th_req *req, int64_t pull_id, th_error *err)
{
	th_reviewer_list rl = { NULL, 0 };
	th_pull_note_list reviews = { NULL, 0 };
	cJSON *arr;
	int error;

	if ((error = th_meta_reviewer_list(&rl, req->srv->meta, req->db.id, pull_id, err)) < 0 ||
	    (error = th_meta_pull_review_list(&reviews, req->srv->meta, req->db.id, pull_id, err)) <
	            0)
		goto cleanup;
	if ((arr = cJSON_AddArrayToObject(body, "requested_reviewers")) == NULL)
		goto oom;
	for (size_t i = 0; i < rl.n; i++) {
		const char *state = NULL;
		cJSON *it = cJSON_CreateObject();
		for (size_t j = 0; j < reviews.n; j++) /* oldest first: the last one counts */
			if (strcmp(reviews.items[j].author, rl.items[i].user) == 0)
				state = th_review_status_name(reviews.items[j].status);
		if (it == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			goto oom;
		}
		if (!api_json_str(it, "username", rl.items[i].user) ||
		    !api_json_str(it, "review_status", state) ||
		    !api_json_str(it, "requested_by", rl.items[i].requested_by))
			goto oom;
	}
	goto cleanup;
oom:
	error = th_error_set(err, TH_ENOMEM, "out of memory");
cleanup:
	th_reviewer_list_dispose(&rl);
	th_pull_note_list_dispose(&reviews);
	return error;
}

/* The answer of both routes: the pull's reviewers now. */
static int reply(th_req *req, int64_t id, int added, th_error *err)
{
	cJSON *body = api_success();
	int error;

	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) || !api_pull_add_id(body, id) ||
	    (added >= 0 && !cJSON_AddNumberToObject(body, "added", added))) {
		cJSON_Delete(body);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	if ((error = api_pulls_add_reviewers(body, req, id, err)) < 0) {
		cJSON_Delete(body);
		return error;
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

static int forbidden(th_req *req)
{
	return api_reply_error(req, MHD_HTTP_FORBIDDEN, "EFORBIDDEN",
	                       "only the pull request's author or someone with the write role "
	                       "changes its reviewers");
}

int api_pulls_reviewers_add(th_req *req, th_error *err)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(req->json, "reviewers"), *it;
	const char *names[TH_REVIEWERS_MAX];
	char target[24], *detail = NULL;
	th_pull_info p;
	th_event_new ev;
	size_t n = 0;
	int64_t id;
	int added = 0, error;

	if ((error = api_pull_load(&p, &id, req, err)) < 0)
		goto cleanup;
	if (!may_change(req, &p, NULL)) {
		error = forbidden(req);
		goto cleanup;
	}
	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0 ||
	    cJSON_GetArraySize(list) > TH_REVIEWERS_MAX) {
		error = th_error_set(err, TH_EINVALID,
		                     "'reviewers' must be an array of 1 to %d user names",
		                     TH_REVIEWERS_MAX);
		goto cleanup;
	}
	cJSON_ArrayForEach(it, list)
	{
		if (!cJSON_IsString(it)) {
			error = th_error_set(err, TH_EINVALID,
			                     "'reviewers' must hold user names (strings)");
			goto cleanup;
		}
		if ((error = reviewer_ok(req, &p, it->valuestring, err)) < 0) {
			api_echo(req, "reviewer", it->valuestring);
			goto cleanup;
		}
		names[n++] = it->valuestring;
	}
	snprintf(target, sizeof(target), "%lld", (long long)id);
	{
		cJSON *d = cJSON_CreateObject();
		if (d != NULL && cJSON_AddItemReferenceToObject(d, "reviewers", (cJSON *)list))
			detail = cJSON_PrintUnformatted(d);
		cJSON_Delete(d);
	}
	if (detail == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	ev = api_event(req, "pull.reviewers.add", target, detail);
	if ((error = th_meta_reviewer_add(&added, req->srv->meta, req->db.id, id, names, n,
	                                  req->user, &ev, err)) < 0)
		goto cleanup;
	error = reply(req, id, added, err);
cleanup:
	cJSON_free(detail);
	th_pull_info_dispose(&p);
	return error;
}

int api_pulls_reviewers_remove(th_req *req, th_error *err)
{
	const char *user = api_cap(req, "user");
	char target[24], detail[100];
	th_pull_info p;
	th_event_new ev;
	int64_t id;
	int error;

	if ((error = api_pull_load(&p, &id, req, err)) < 0)
		goto cleanup;
	if (!may_change(req, &p, user)) {
		error = forbidden(req);
		goto cleanup;
	}
	if (!th_name_valid(user)) {
		error = th_error_set(err, TH_ENOTFOUND,
		                     "'%.64s' is not a requested reviewer of pull request #%lld",
		                     user, (long long)id);
		goto cleanup;
	}
	snprintf(target, sizeof(target), "%lld", (long long)id);
	snprintf(detail, sizeof(detail), "{\"reviewer\":\"%s\"}", user); /* a valid name */
	ev = api_event(req, "pull.reviewers.remove", target, detail);
	if ((error = th_meta_reviewer_remove(req->srv->meta, req->db.id, id, user, &ev, err)) < 0)
		goto cleanup;
	error = reply(req, id, -1, err);
cleanup:
	th_pull_info_dispose(&p);
	return error;
}
