/* pulls.c: pull requests of a database, in DoltHub's v1alpha1 shapes where DoltHub has one. The
 * one route table of the resource is here; its handlers live in this file and its siblings (see
 * api/pulls_api.h):
 *
 *   GET   /api/v1alpha1/{owner}/{db}/pulls                    list (pageToken, filterByState,
 *                                                             filterByReviewStatus, query), and
 *                                                             the caller's viewer_role
 *   POST  /api/v1alpha1/{owner}/{db}/pulls                    create (title, description,
 *                                                             fromBranchName, toBranchName,
 *                                                             deleteBranchOnMerge)
 *   GET   /api/v1alpha1/{owner}/{db}/pulls/{id}               one pull request, its comments and
 *                                                             reviews, the caller's viewer_role
 *   PATCH /api/v1alpha1/{owner}/{db}/pulls/{id}               title, description, state "closed"
 *   POST  /api/v1alpha1/{owner}/{db}/pulls/{id}/comments      {"comment"}             (notes)
 *   POST  /api/v1alpha1/{owner}/{db}/pulls/{id}/reviews       {"reviewStatus", "comment"}
 *   GET   /api/v1alpha1/{owner}/{db}/pulls/{id}/diff          three-dot diff, paged    (diff)
 *                                                             (pageToken, pageSize),
 *                                                             ?type=added|modified|removed, ?table=
 *   GET   /api/v1alpha1/{owner}/{db}/pulls/{id}/conflicts     what a merge would conflict on
 *   POST  /api/v1alpha1/{owner}/{db}/pulls/{id}/merge         start the merge operation  (merge)
 *   GET   /api/v1alpha1/{owner}/{db}/pulls/{id}/merge?operationName=   poll it
 *   POST  /api/v1alpha1/{owner}/{db}/pulls/{id}/reviewers     {"reviewers": [...]} (reviewers)
 *   DELETE /api/v1alpha1/{owner}/{db}/pulls/{id}/reviewers/{user}
 *
 * Who may do what is in the flags of each route (api.h: R_READ, R_WRITE): anyone who can read
 * the database reads pulls, their diff and conflicts, and when signed in comments; the write role
 * opens pull requests, reviews and merges; the pull's author or the write role edits or closes
 * one (checked here). Handlers parse, call src/ (which returns values) and shape the JSON; they
 * never touch libgit2 or SQLite. Pull ids are strings in DoltHub's bodies ("pull_id": "1"); every
 * route reads :id through api_pull_id_arg (the router has already refused ids that are not digits).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pulls_api.h"
#include "tablehub/meta_access.h"
#include "tablehub/repo.h"

#define API "/api/v1alpha1"

const api_route api_pulls_routes[] = {
	{ "GET", API "/:owner/:db/pulls", api_pulls_list, R_READ },
	/* write here, or read here and write on the fork it comes from (forks.c) */
	{ "POST", API "/:owner/:db/pulls", api_pulls_create, R_READ | R_AUTH | R_JSON },
	{ "GET", API "/:owner/:db/pulls/:id", api_pulls_get, R_READ },
	{ "PATCH", API "/:owner/:db/pulls/:id", api_pulls_update, R_READ | R_AUTH | R_JSON },
	{ "POST", API "/:owner/:db/pulls/:id/comments", api_pulls_comment,
	  R_READ | R_AUTH | R_JSON },
	{ "POST", API "/:owner/:db/pulls/:id/reviews", api_pulls_review, R_WRITE | R_JSON },
	{ "GET", API "/:owner/:db/pulls/:id/diff", api_pulls_diff, R_READ },
	{ "GET", API "/:owner/:db/pulls/:id/conflicts", api_pulls_conflicts, R_READ },
	{ "POST", API "/:owner/:db/pulls/:id/merge", api_pulls_merge,
	  R_WRITE | R_ENQUEUE | R_FORM },
	{ "GET", API "/:owner/:db/pulls/:id/merge", api_pulls_merge_poll, R_READ },
	/* the write role or the pull's author (checked in pulls_reviewers.c) */
	{ "POST", API "/:owner/:db/pulls/:id/reviewers", api_pulls_reviewers_add,
	  R_READ | R_AUTH | R_JSON },
	{ "DELETE", API "/:owner/:db/pulls/:id/reviewers/:user", api_pulls_reviewers_remove,
	  R_READ | R_AUTH },
	{ NULL, NULL, NULL, 0 }
};

/* --- what every pull route uses ------------------------------------------------------------- */

int api_pull_id_arg(int64_t *out, th_req *req, th_error *err)
{
	const char *s = api_cap(req, "id");
	size_t i;

	api_echo(req, "pull_id", s);
	for (i = 0; s && s[i]; i++)
		if (!isdigit((unsigned char)s[i]))
			break;
	if (s == NULL || i == 0 || s[i] != '\0' || i > 18 || (*out = strtoll(s, NULL, 10)) <= 0)
		return th_error_set(err, TH_ENOTFOUND, "pull request #%.32s not found in '%s/%s'",
		                    s ? s : "", req->db.owner, req->db.name);
	return TH_OK;
}

int api_pull_load(th_pull_info *p, int64_t *id, th_req *req, th_error *err)
{
	int error;

	memset(p, 0, sizeof(*p));
	if ((error = api_pull_id_arg(id, req, err)) < 0)
		return error;
	error = th_meta_pull_get(p, req->srv->meta, req->db.id, *id, err);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "pull request #%lld not found in '%s/%s'",
		                    (long long)*id, req->db.owner, req->db.name);
	if (error < 0)
		return error;
	/* An open pull from a fork first brings the fork's branch over again (forks.c). */
	return api_pull_fork_sync(req, p, err);
}

cJSON *api_pull_add_id(cJSON *body, int64_t id)
{
	char s[24];

	snprintf(s, sizeof(s), "%lld", (long long)id);
	return api_json_str(body, "pull_id", s);
}

int api_pull_reply(th_req *req, cJSON *body, int incomplete, th_error *err)
{
	if (incomplete) {
		cJSON_Delete(body);
		body = NULL; /* api_reply_json: out of memory */
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}

/* --- list, get -------------------------------------------------------------------------------- */

/* One pull of a list: DoltHub's pulls[] item. Returns 0 when out of memory. */
static int list_item(cJSON *arr, const th_pull_info *p)
{
	cJSON *it = cJSON_CreateObject();
	char id[24], created[32];

	snprintf(id, sizeof(id), "%lld", (long long)p->pull_id);
	th_time_fmt(created, p->created_at);
	if (it == NULL || !cJSON_AddItemToArray(arr, it)) {
		cJSON_Delete(it);
		return 0;
	}
	return api_json_str(it, "pull_id", id) && api_json_str(it, "title", p->title) &&
	       api_json_str(it, "description", p->description) &&
	       api_json_str(it, "state", th_pull_state_name(p->state)) &&
	       api_json_str(it, "created_at", created) && api_json_str(it, "creator", p->author);
}

/* filterByReviewStatus: DoltHub's values. AssignedReviewer selects pulls with a requested
 * reviewer (in the store); the others the pulls whose review_status, as their own body shows it
 * under the branch's rules, is that value (evaluated here, pull by pull). */
static const char *const review_filters[] = { "Approved", "Rejected", "Reviewed",
	                                      "AssignedReviewer" };
#define REVIEW_FILTER_ASSIGNED 3
#define LIST_PAGE 50
#define LIST_SCAN_PAGES 20 /* store pages one request reads looking for matches */

static int review_filter_parse(int *out, const char *s, th_error *err)
{
	*out = -1;
	if (s == NULL || *s == '\0')
		return TH_OK;
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, review_filters[i]) == 0) {
			*out = i;
			return TH_OK;
		}
	return th_error_set(err, TH_EINVALID,
	                    "'filterByReviewStatus' must be Approved, Rejected, Reviewed or "
	                    "AssignedReviewer (got '%.64s')",
	                    s);
}

/* Fill arr with the pulls f selects from page token `tok`, at most LIST_PAGE, whose review
 * status is review_filters[rf] (rf < 0 or ASSIGNED: every one the store returns); next gets the
 * next page's token. A review filter reads store pages until the page is full, the pulls end or
 * LIST_SCAN_PAGES were read: a page may then hold fewer pulls and still have a next one. */
static int list_fill(cJSON *arr, char next[TH_PAGE_TOKEN_SIZE], th_req *req,
                     const th_pull_filter *f, int rf, const char *tok, th_error *err)
{
	char at[TH_PAGE_TOKEN_SIZE];
	size_t room = LIST_PAGE;
	int error = TH_OK;

	snprintf(at, sizeof(at), "%s", tok ? tok : "");
	next[0] = '\0';
	for (int page = 0; page < LIST_SCAN_PAGES && room > 0; page++) {
		th_pull_list l = { NULL, 0 };
		if ((error = th_meta_pull_search(&l, next, req->srv->meta, req->db.id, f, at, room,
		                                 err)) < 0)
			return error;
		for (size_t i = 0; i < l.n && error == TH_OK; i++) {
			const char *status = NULL;
			if (rf >= 0 && rf != REVIEW_FILTER_ASSIGNED &&
			    (error = api_pulls_review_status(&status, req, &l.items[i], err)) < 0)
				break;
			if (status != NULL && strcmp(status, review_filters[rf]) != 0)
				continue;
			if (!list_item(arr, &l.items[i]))
				error = th_error_set(err, TH_ENOMEM, "out of memory");
			room--;
		}
		th_pull_list_dispose(&l);
		if (error < 0 || next[0] == '\0' || rf < 0 || rf == REVIEW_FILTER_ASSIGNED)
			break;
		memcpy(at, next, sizeof(at));
	}
	return error;
}

int api_pulls_list(th_req *req, th_error *err)
{
	const char *filter = api_arg(req, "filterByState");
	th_pull_filter f;
	char next[TH_PAGE_TOKEN_SIZE] = "";
	cJSON *body = NULL, *arr;
	int rf, error;

	memset(&f, 0, sizeof(f));
	if (filter != NULL && filter[0] != '\0' && (f.state = th_pull_state_parse(filter)) == 0)
		return th_error_set(err, TH_EINVALID,
		                    "'filterByState' must be Open, Closed or Merged (got '%.64s')",
		                    filter);
	if ((error = review_filter_parse(&rf, api_arg(req, "filterByReviewStatus"), err)) < 0)
		return error;
	f.query = api_arg(req, "query");
	if (f.query != NULL && strlen(f.query) > 200)
		return th_error_set(err, TH_EINVALID, "'query' is over 200 bytes");
	f.assigned = rf == REVIEW_FILTER_ASSIGNED;
	f.reviewed = rf >= 0 && rf != REVIEW_FILTER_ASSIGNED; /* every status here needs one */
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) ||
	    (arr = cJSON_AddArrayToObject(body, "pulls")) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto fail;
	}
	error = list_fill(arr, next, req, &f, rf, api_arg(req, "pageToken"), err);
	if (error == TH_EINVALID)
		error = th_error_set(err, TH_EINVALID, "bad 'pageToken'");
	if (error < 0)
		goto fail;
	if (!api_json_str(body, "next_page_token", next) ||
	    !api_json_str(body, "viewer_role", th_role_name(req->role))) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto fail;
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
fail:
	cJSON_Delete(body);
	return error;
}

int api_pulls_get(th_req *req, th_error *err)
{
	th_pull_info p;
	th_fork_info fork;
	th_pull_options opts;
	int64_t id;
	char created[32], updated[32];
	cJSON *body = NULL;
	int error;

	if ((error = api_pull_load(&p, &id, req, err)) < 0)
		goto cleanup;
	th_time_fmt(created, p.created_at);
	th_time_fmt(updated, p.updated_at);
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) || !api_pull_add_id(body, id) ||
	    !api_json_str(body, "title", p.title) ||
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
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = th_meta_pull_options_get(&opts, req->srv->meta, req->db.id, id, err)) < 0)
		goto cleanup;
	/* The caller's own role here (capped by their token's scope), so a page offers only what
	 * the server would allow them. */
	if (!api_json_str(body, "viewer_role", th_role_name(req->role)) ||
	    !cJSON_AddBoolToObject(body, "delete_branch_on_merge", opts.delete_branch_on_merge) ||
	    (opts.delete_branch_on_merge && p.state == TH_PULL_MERGED &&
	     !cJSON_AddBoolToObject(body, "branch_deleted", opts.branch_deleted))) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = api_pulls_add_notes(body, req, id, err)) < 0 || /* comments, reviews */
	    (error = api_pulls_add_reviewers(body, req, id, err)) < 0 ||
	    (error = api_pulls_add_review_state(body, req, &p, err)) < 0 ||
	    (error = api_pull_fork_of(&fork, req, &p, err)) < 0)
		goto cleanup;
	if (api_pull_fork_fields(body, &p, &fork) < 0) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
cleanup:
	cJSON_Delete(body);
	th_pull_info_dispose(&p);
	return error;
}

/* --- create, update ------------------------------------------------------------------------ */

/* toBranchOwnerName/toBranchRepoName must name this database when given. */
static int same_db(th_req *req, const char *owner_key, const char *repo_key, th_error *err)
{
	const char *o = NULL, *r = NULL;
	int error;

	if ((error = api_json_get_str(&o, req->json, owner_key, 0, "", err)) < 0 ||
	    (error = api_json_get_str(&r, req->json, repo_key, 0, "", err)) < 0)
		return error;
	if ((o && *o && strcmp(o, req->db.owner) != 0) || (r && *r && strcmp(r, req->db.name) != 0))
		return th_error_set(err, TH_EINVALID,
		                    "a pull request goes into a branch of this database: '%s' and "
		                    "'%s' must be '%s' and '%s'",
		                    owner_key, repo_key, req->db.owner, req->db.name);
	return TH_OK;
}

int api_pulls_create(th_req *req, th_error *err)
{
	const char *title = NULL, *desc = NULL, *from = NULL, *to = NULL, *shown;
	const cJSON *dbm = cJSON_GetObjectItemCaseSensitive(req->json, "deleteBranchOnMerge");
	th_pull_options opts = { 0, 0 };
	char branch[TH_BRANCH_NAME_MAX + 1];
	th_fork_info fork;
	th_repo *repo = NULL;
	th_oid head;
	int64_t id = 0;
	cJSON *body = NULL;
	int created = 0, error, incomplete;

	if (dbm != NULL && !cJSON_IsNull(dbm) && !cJSON_IsBool(dbm))
		return th_error_set(err, TH_EINVALID,
		                    "'deleteBranchOnMerge' must be true or false");
	opts.delete_branch_on_merge = cJSON_IsTrue(dbm);
	if ((error = api_json_get_str(&title, req->json, "title", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&desc, req->json, "description", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&from, req->json, "fromBranchName", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&to, req->json, "toBranchName", 0, "", err)) < 0 ||
	    (error = same_db(req, "toBranchOwnerName", "toBranchRepoName", err)) < 0)
		return error;
	if (to == NULL || *to == '\0')
		to = "main";
	/* A branch of this database, or of a fork of it (brought over as forks/<owner>/...). */
	if ((error = api_pull_fork_source(&fork, branch, sizeof(branch), req, from, err)) < 0)
		return error;
	if (strcmp(branch, to) == 0)
		return th_error_set(err, TH_EINVALID,
		                    "'fromBranchName' and 'toBranchName' are both '%.200s'", from);
	shown = from;
	from = branch;
	if ((error = api_repo_open(&repo, req, err)) < 0)
		goto cleanup;
	if ((error = th_repo_branch_get(&head, repo, from, err)) == TH_OK)
		error = th_repo_branch_get(&head, repo, to, err);
	if (error == TH_ENOTFOUND || error == TH_EINVALID) {
		error = th_error_set(err, TH_ENOTFOUND, "branch '%.200s' not found in '%s/%s'",
		                     th_repo_branch_get(&head, repo, from, NULL) == TH_OK ? to
		                                                                          : from,
		                     req->db.owner, req->db.name);
		goto cleanup;
	}
	if (error < 0)
		goto cleanup;
	if ((error = th_meta_pull_find_or_create(&id, &created, req->srv->meta, req->db.id,
	                                         title ? title : "", desc ? desc : "", req->user,
	                                         from, to, err)) < 0)
		goto cleanup;
	if (created && fork.id != 0 &&
	    (error = th_meta_pull_set_source(req->srv->meta, req->db.id, id, fork.id, err)) < 0)
		goto cleanup;
	if (created && opts.delete_branch_on_merge &&
	    (error = th_meta_pull_options_set(req->srv->meta, req->db.id, id, &opts, err)) < 0)
		goto cleanup;
	if (!created) {
		error = th_error_set(
		        err, TH_EEXISTS,
		        "pull request #%lld from '%.200s' into '%.200s' is already open",
		        (long long)id, from, to);
		goto cleanup;
	}
	body = api_success();
	incomplete =
	        body == NULL || !api_json_str(body, "title", title ? title : "") ||
	        !api_json_str(body, "description", desc ? desc : "") ||
	        !api_json_str(body, "from_owner_name", fork.id ? fork.owner : req->db.owner) ||
	        !api_json_str(body, "from_repository_name", fork.id ? fork.name : req->db.name) ||
	        !api_json_str(body, "from_branch_name", shown) ||
	        !api_json_str(body, "to_owner_name", req->db.owner) ||
	        !api_json_str(body, "to_repository_name", req->db.name) ||
	        !api_json_str(body, "to_branch_name", to) || !api_pull_add_id(body, id) ||
	        !api_json_str(body, "state", th_pull_state_name(TH_PULL_OPEN)) ||
	        !api_json_str(body, "author", req->user) ||
	        !cJSON_AddBoolToObject(body, "delete_branch_on_merge", opts.delete_branch_on_merge);
	error = api_pull_reply(req, body, incomplete, err);
cleanup:
	th_repo_free(repo);
	return error;
}

int api_pulls_update(th_req *req, th_error *err)
{
	const char *title = NULL, *desc = NULL, *state = NULL;
	th_pull_info p;
	int64_t id;
	cJSON *body;
	int error, incomplete;

	if ((error = api_pull_load(&p, &id, req, err)) < 0)
		goto cleanup;
	if ((error = api_json_get_str(&title, req->json, "title", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&desc, req->json, "description", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&state, req->json, "state", 0, "", err)) < 0)
		goto cleanup;
	if (req->role < TH_ROLE_WRITE && strcmp(req->user, p.author) != 0) {
		error = api_reply_error(req, MHD_HTTP_FORBIDDEN, "EFORBIDDEN",
		                        "only the pull request's author or someone with the write "
		                        "role can change it");
		goto cleanup;
	}
	if (state && strcasecmp(state, "closed") != 0) {
		error = th_error_set(err, TH_EINVALID, "'state' can only be 'closed' (got '%.64s')",
		                     state);
		goto cleanup;
	}
	if (title == NULL && desc == NULL && state == NULL) {
		error = th_error_set(err, TH_EINVALID,
		                     "nothing to change: give 'title', 'description' or 'state'");
		goto cleanup;
	}
	if (state) {
		error = th_meta_pull_set_state(req->srv->meta, req->db.id, id, TH_PULL_CLOSED, NULL,
		                               err);
		if (error == TH_ECONFLICT)
			error = th_error_set(err, TH_ECONFLICT, "pull request #%lld is %s",
			                     (long long)id, th_pull_state_name(p.state));
		if (error < 0)
			goto cleanup;
	}
	if ((title || desc) &&
	    (error = th_meta_pull_update(req->srv->meta, req->db.id, id, title, desc, err)) < 0)
		goto cleanup;
	th_pull_info_dispose(&p);
	if ((error = th_meta_pull_get(&p, req->srv->meta, req->db.id, id, err)) < 0)
		goto cleanup;
	body = api_success();
	incomplete = body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	             !api_json_str(body, "database_name", req->db.name) ||
	             !api_pull_add_id(body, id) || !api_json_str(body, "title", p.title) ||
	             !api_json_str(body, "description", p.description) ||
	             !api_json_str(body, "state", th_pull_state_name(p.state));
	error = api_pull_reply(req, body, incomplete, err);
cleanup:
	th_pull_info_dispose(&p);
	return error;
}
