/* pulls_review.c: the write side of pull requests and their review, in DoltHub's v1alpha1 shapes
 * where DoltHub has one:
 *
 *   POST  /api/v1alpha1/{owner}/{db}/pulls                    create (title, description,
 *                                                             fromBranchName, toBranchName)
 *   PATCH /api/v1alpha1/{owner}/{db}/pulls/{id}               title, description, state "closed"
 *   POST  /api/v1alpha1/{owner}/{db}/pulls/{id}/comments      {"comment"}
 *   POST  /api/v1alpha1/{owner}/{db}/pulls/{id}/reviews       {"reviewStatus", "comment"}
 *   GET   /api/v1alpha1/{owner}/{db}/pulls/{id}/diff          three-dot diff, paged (pageToken),
 *                                                             ?type=added|modified|removed, ?table=
 *   GET   /api/v1alpha1/{owner}/{db}/pulls/{id}/conflicts     what a merge would conflict on
 *   POST  /api/v1alpha1/{owner}/{db}/pulls/{id}/merge         start the merge operation (owner)
 *   GET   /api/v1alpha1/{owner}/{db}/pulls/{id}/merge?operationName=   poll it
 *
 * Anyone who can see the database reads pulls, their diff and conflicts; any signed-in user who
 * can see it opens pull requests, comments and reviews; the owner or the pull's author edits or
 * closes one; only the owner merges. The diff and the merge are computed in src/pulls.c, which
 * returns values; this file parses, checks and shapes them into JSON. A merge that failed on
 * conflicts stores them as its failed operation's result, and its poll lists them from there.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "tablehub/buf.h"
#include "tablehub/jobs.h"
#include "tablehub/meta.h"
#include "tablehub/pulls.h"
#include "tablehub/repo.h"

#define API "/api/v1alpha1"
#define DIFF_PAGE_MAX 1000

const api_route api_pulls_review_routes[] = {
	{ "POST", API "/:owner/:db/pulls", api_pulls_create, R_DB | R_AUTH | R_JSON },
	{ "PATCH", API "/:owner/:db/pulls/:id", api_pulls_update, R_DB | R_AUTH | R_JSON },
	{ "POST", API "/:owner/:db/pulls/:id/comments", api_pulls_comment, R_DB | R_AUTH | R_JSON },
	{ "POST", API "/:owner/:db/pulls/:id/reviews", api_pulls_review, R_DB | R_AUTH | R_JSON },
	{ "GET", API "/:owner/:db/pulls/:id/diff", api_pulls_diff, R_DB },
	{ "GET", API "/:owner/:db/pulls/:id/conflicts", api_pulls_conflicts, R_DB },
	{ "POST", API "/:owner/:db/pulls/:id/merge", api_pulls_merge, R_OWNER | R_ENQUEUE },
	{ "GET", API "/:owner/:db/pulls/:id/merge", api_pulls_merge_poll, R_DB },
	{ NULL, NULL, NULL, 0 }
};

static int oom(th_error *err)
{
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

/* The :id capture as a pull id (digits only), echoed in errors; 404 when it cannot be one. */
static int pull_id_arg(int64_t *out, th_req *req, th_error *err)
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

/* Read the pull of the request into *p (dispose with th_pull_info_dispose). */
static int load_pull(th_pull_info *p, int64_t *id, th_req *req, th_error *err)
{
	int error;

	memset(p, 0, sizeof(*p));
	if ((error = pull_id_arg(id, req, err)) < 0)
		return error;
	error = th_meta_pull_get(p, req->srv->meta, req->db.id, *id, err);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "pull request #%lld not found in '%s/%s'",
		                    (long long)*id, req->db.owner, req->db.name);
	return error;
}

static cJSON *add_pull_id(cJSON *body, int64_t id)
{
	char s[24];

	snprintf(s, sizeof(s), "%lld", (long long)id);
	return api_json_str(body, "pull_id", s);
}

/* A JSON string member, or NULL; anything else is 400. */
static int opt_str(const char **out, th_req *req, const char *key, th_error *err)
{
	return api_json_get_str(out, req->json, key, 0, "", err);
}

/* --- create, update ----------------------------------------------------------------------------
 */

/* fromBranchOwnerName/fromBranchRepoName etc. must name this database when given. */
static int same_db(th_req *req, const char *owner_key, const char *repo_key, th_error *err)
{
	const char *o = NULL, *r = NULL;
	int error;

	if ((error = opt_str(&o, req, owner_key, err)) < 0 ||
	    (error = opt_str(&r, req, repo_key, err)) < 0)
		return error;
	if ((o && *o && strcmp(o, req->db.owner) != 0) || (r && *r && strcmp(r, req->db.name) != 0))
		return th_error_set(err, TH_EINVALID,
		                    "pull requests between databases are not supported: '%s' and "
		                    "'%s' must be '%s' and '%s'",
		                    owner_key, repo_key, req->db.owner, req->db.name);
	return TH_OK;
}

int api_pulls_create(th_req *req, th_error *err)
{
	const char *title = NULL, *desc = NULL, *from = NULL, *to = NULL;
	th_repo *repo = NULL;
	th_oid head;
	int64_t id = 0;
	cJSON *body = NULL;
	int created = 0, error;

	if ((error = opt_str(&title, req, "title", err)) < 0 ||
	    (error = opt_str(&desc, req, "description", err)) < 0 ||
	    (error = api_json_get_str(&from, req->json, "fromBranchName", 1, "", err)) < 0 ||
	    (error = opt_str(&to, req, "toBranchName", err)) < 0 ||
	    (error = same_db(req, "fromBranchOwnerName", "fromBranchRepoName", err)) < 0 ||
	    (error = same_db(req, "toBranchOwnerName", "toBranchRepoName", err)) < 0)
		return error;
	if (to == NULL || *to == '\0')
		to = "main";
	if (strcmp(from, to) == 0)
		return th_error_set(err, TH_EINVALID,
		                    "'fromBranchName' and 'toBranchName' are both '%.200s'", from);
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
	if (!created) {
		error = th_error_set(
		        err, TH_EEXISTS,
		        "pull request #%lld from '%.200s' into '%.200s' is already open",
		        (long long)id, from, to);
		goto cleanup;
	}
	body = api_success();
	if (body == NULL || !api_json_str(body, "title", title ? title : "") ||
	    !api_json_str(body, "description", desc ? desc : "") ||
	    !api_json_str(body, "from_owner_name", req->db.owner) ||
	    !api_json_str(body, "from_repository_name", req->db.name) ||
	    !api_json_str(body, "from_branch_name", from) ||
	    !api_json_str(body, "to_owner_name", req->db.owner) ||
	    !api_json_str(body, "to_repository_name", req->db.name) ||
	    !api_json_str(body, "to_branch_name", to) || !add_pull_id(body, id) ||
	    !api_json_str(body, "state", th_pull_state_name(TH_PULL_OPEN)) ||
	    !api_json_str(body, "author", req->user)) {
		cJSON_Delete(body);
		error = oom(err);
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
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
	int error;

	if ((error = load_pull(&p, &id, req, err)) < 0)
		goto cleanup;
	if ((error = opt_str(&title, req, "title", err)) < 0 ||
	    (error = opt_str(&desc, req, "description", err)) < 0 ||
	    (error = opt_str(&state, req, "state", err)) < 0)
		goto cleanup;
	if (strcmp(req->user, req->db.owner) != 0 && strcmp(req->user, p.author) != 0) {
		error = api_reply_error(req, MHD_HTTP_FORBIDDEN, "EFORBIDDEN",
		                        "only the database owner or the pull request's author can "
		                        "change it");
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
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) || !add_pull_id(body, id) ||
	    !api_json_str(body, "title", p.title) ||
	    !api_json_str(body, "description", p.description) ||
	    !api_json_str(body, "state", th_pull_state_name(p.state))) {
		cJSON_Delete(body);
		error = oom(err);
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
cleanup:
	th_pull_info_dispose(&p);
	return error;
}

/* --- comments and reviews ------------------------------------------------------------------- */

int api_pulls_comment(th_req *req, th_error *err)
{
	const char *comment = NULL;
	th_pull_info p;
	int64_t id, cid = 0;
	char cids[24];
	cJSON *body;
	int error;

	if ((error = load_pull(&p, &id, req, err)) < 0 ||
	    (error = api_json_get_str(&comment, req->json, "comment", 1, "", err)) < 0)
		goto cleanup;
	if (*comment == '\0') {
		error = th_error_set(err, TH_EINVALID, "'comment' is empty");
		goto cleanup;
	}
	if ((error = th_meta_pull_comment_add(&cid, req->srv->meta, req->db.id, id, req->user,
	                                      comment, err)) < 0)
		goto cleanup;
	snprintf(cids, sizeof(cids), "%lld", (long long)cid);
	body = api_success();
	if (body == NULL || !api_json_str(body, "repository_owner", req->db.owner) ||
	    !api_json_str(body, "repository_name", req->db.name) || !add_pull_id(body, id) ||
	    !api_json_str(body, "comment", comment) || !api_json_str(body, "comment_id", cids) ||
	    !api_json_str(body, "author", req->user)) {
		cJSON_Delete(body);
		error = oom(err);
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
cleanup:
	th_pull_info_dispose(&p);
	return error;
}

int api_pulls_review(th_req *req, th_error *err)
{
	const char *status = NULL, *comment = NULL;
	th_review_status st;
	th_pull_info p;
	int64_t id, rid = 0;
	char rids[24];
	cJSON *body;
	int error;

	if ((error = load_pull(&p, &id, req, err)) < 0 ||
	    (error = opt_str(&status, req, "reviewStatus", err)) < 0 ||
	    (status == NULL && (error = opt_str(&status, req, "review_status", err)) < 0) ||
	    (error = opt_str(&comment, req, "comment", err)) < 0)
		goto cleanup;
	if (status == NULL || (st = th_review_status_parse(status)) == 0) {
		error = th_error_set(
		        err, TH_EINVALID,
		        "'reviewStatus' must be Approved, Rejected or Reviewed%s%.64s%s",
		        status ? " (got '" : "", status ? status : "", status ? "')" : "");
		goto cleanup;
	}
	if ((error = th_meta_pull_review_add(&rid, req->srv->meta, req->db.id, id, req->user, st,
	                                     comment, err)) < 0)
		goto cleanup;
	snprintf(rids, sizeof(rids), "%lld", (long long)rid);
	body = api_success();
	if (body == NULL || !api_json_str(body, "repository_owner", req->db.owner) ||
	    !api_json_str(body, "repository_name", req->db.name) || !add_pull_id(body, id) ||
	    !api_json_str(body, "review_id", rids) ||
	    !api_json_str(body, "review_status", th_review_status_name(st)) ||
	    !api_json_str(body, "comment", comment ? comment : "") ||
	    !api_json_str(body, "author", req->user)) {
		cJSON_Delete(body);
		error = oom(err);
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
cleanup:
	th_pull_info_dispose(&p);
	return error;
}

static cJSON *note_item(const th_pull_note *n, int review)
{
	cJSON *it = cJSON_CreateObject();
	char id[24], created[32];

	snprintf(id, sizeof(id), "%lld", (long long)n->id);
	th_time_fmt(created, n->created_at);
	if (it == NULL || !api_json_str(it, review ? "review_id" : "comment_id", id) ||
	    !api_json_str(it, "author", n->author) || !api_json_str(it, "comment", n->body) ||
	    (review && !api_json_str(it, "review_status", th_review_status_name(n->status))) ||
	    !api_json_str(it, "created_at", created)) {
		cJSON_Delete(it);
		return NULL;
	}
	return it;
}

int api_pulls_add_notes(cJSON *body, th_req *req, int64_t pull_id, th_error *err)
{
	th_pull_note_list comments = { NULL, 0 }, reviews = { NULL, 0 };
	cJSON *ca, *ra;
	size_t i;
	int error;

	if ((error = th_meta_pull_comment_list(&comments, req->srv->meta, req->db.id, pull_id,
	                                       err)) < 0 ||
	    (error = th_meta_pull_review_list(&reviews, req->srv->meta, req->db.id, pull_id, err)) <
	            0)
		goto cleanup;
	if ((ca = cJSON_AddArrayToObject(body, "comments")) == NULL ||
	    (ra = cJSON_AddArrayToObject(body, "reviews")) == NULL) {
		error = oom(err);
		goto cleanup;
	}
	for (i = 0; i < comments.n + reviews.n; i++) {
		int review = i >= comments.n;
		cJSON *it = note_item(review ? &reviews.items[i - comments.n] : &comments.items[i],
		                      review);
		if (it == NULL || !cJSON_AddItemToArray(review ? ra : ca, it)) {
			cJSON_Delete(it);
			error = oom(err);
			goto cleanup;
		}
	}
cleanup:
	th_pull_note_list_dispose(&comments);
	th_pull_note_list_dispose(&reviews);
	return error;
}

/* --- diff and conflicts ---------------------------------------------------------------------- */

typedef struct diff_json {
	cJSON *tables, *rows; /* borrowed from the body */
} diff_json;

/* Add an array `key` of the names of the columns i of `s` (none when s is NULL) for which
 * pick(s, i, other) holds. Returns the array, or NULL when out of memory. */
static cJSON *add_names(cJSON *obj, const char *key, const th_schema *s, const th_schema *other,
                        int (*pick)(const th_schema *s, size_t i, const th_schema *other))
{
	cJSON *arr = cJSON_AddArrayToObject(obj, key);
	size_t i;

	for (i = 0; arr && s && i < s->ncols; i++) {
		cJSON *name;
		if (!pick(s, i, other))
			continue;
		if ((name = cJSON_CreateString(s->cols[i].name)) == NULL ||
		    !cJSON_AddItemToArray(arr, name)) {
			cJSON_Delete(name);
			return NULL;
		}
	}
	return arr;
}

/* Column i of s is not in `other` (added or dropped, by name). */
static int not_in(const th_schema *s, size_t i, const th_schema *other)
{
	return other == NULL || th_schema_find(other, s->cols[i].name) < 0;
}

/* The key columns of s, in key order, or null when there is no schema (the table was added or
 * dropped). */
static int add_key_names(cJSON *obj, const char *key, const th_schema *s)
{
	cJSON *arr;
	size_t i;

	if (s == NULL)
		return cJSON_AddNullToObject(obj, key) != NULL;
	if ((arr = cJSON_AddArrayToObject(obj, key)) == NULL)
		return 0;
	for (i = 0; i < s->npk; i++) {
		cJSON *name = cJSON_CreateString(s->cols[s->pk[i]].name);
		if (name == NULL || !cJSON_AddItemToArray(arr, name)) {
			cJSON_Delete(name);
			return 0;
		}
	}
	return 1;
}

/* [{"column_name", "from_type", "to_type"}] for the columns of both schemas whose type changed. */
static int add_retyped(cJSON *obj, const th_schema *f, const th_schema *t)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, "columns_retyped");
	size_t i;

	for (i = 0; arr && f && t && i < t->ncols; i++) {
		int j = th_schema_find(f, t->cols[i].name);
		cJSON *it;

		if (j < 0 || f->cols[j].type == t->cols[i].type)
			continue;
		if ((it = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			return 0;
		}
		if (!api_json_str(it, "column_name", t->cols[i].name) ||
		    !api_json_str(it, "from_type", th_type_name(f->cols[j].type)) ||
		    !api_json_str(it, "to_type", th_type_name(t->cols[i].type)))
			return 0;
	}
	return arr != NULL;
}

static int json_table_end(void *payload, const th_table_diff *t, th_error *err)
{
	diff_json *j = payload;
	const th_schema *added = t->change == TH_TABLE_MODIFIED ? t->to_schema : NULL;
	const th_schema *dropped = t->change == TH_TABLE_MODIFIED ? t->from_schema : NULL;
	cJSON *it = cJSON_CreateObject();

	if (it == NULL || !cJSON_AddItemToArray(j->tables, it)) {
		cJSON_Delete(it);
		return oom(err);
	}
	if (!api_json_str(it, "table_name", t->name) ||
	    !api_json_str(it, "diff_type", th_table_change_name(t->change)) ||
	    !cJSON_AddBoolToObject(it, "schema_change", t->schema_changed) ||
	    !cJSON_AddBoolToObject(it, "key_changed", t->key_changed) ||
	    !add_names(it, "columns_added", added, t->from_schema, not_in) ||
	    !add_names(it, "columns_dropped", dropped, t->to_schema, not_in) ||
	    !add_retyped(it, t->from_schema, t->to_schema) ||
	    !add_key_names(it, "from_primary_key", t->from_schema) ||
	    !add_key_names(it, "to_primary_key", t->to_schema) ||
	    !cJSON_AddNumberToObject(it, "rows_added", (double)t->rows_added) ||
	    !cJSON_AddNumberToObject(it, "rows_modified", (double)t->rows_modified) ||
	    !cJSON_AddNumberToObject(it, "rows_removed", (double)t->rows_removed) ||
	    !cJSON_AddNumberToObject(it, "cells_modified", (double)t->cells_modified))
		return oom(err);
	return 0;
}

/* {column: text | null} of a row's cells, or null when the row is absent on that side. */
static int add_cells(cJSON *obj, const char *key, const th_schema *s, const th_cells *c)
{
	cJSON *cells;
	size_t i;

	if (c == NULL)
		return cJSON_AddNullToObject(obj, key) != NULL;
	if ((cells = cJSON_AddObjectToObject(obj, key)) == NULL)
		return 0;
	for (i = 0; i < s->ncols; i++)
		if (!api_json_str(cells, s->cols[i].name, c->c[i].is_null ? NULL : c->c[i].s))
			return 0;
	return 1;
}

/* The columns a modified row changed: those of the new schema, then the dropped ones. */
static int add_changed(cJSON *obj, const th_table_diff *t, const th_diff_row *r)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, "changed_columns");
	size_t i, n = t->to_schema->ncols + t->from_schema->ncols;

	for (i = 0; arr && i < n; i++) {
		int to = i < t->to_schema->ncols;
		size_t c = to ? i : i - t->to_schema->ncols;
		const th_schema *s = to ? t->to_schema : t->from_schema;
		cJSON *name;

		if (!(to ? r->changed[c] : r->dropped[c]))
			continue;
		if ((name = cJSON_CreateString(s->cols[c].name)) == NULL ||
		    !cJSON_AddItemToArray(arr, name)) {
			cJSON_Delete(name);
			return 0;
		}
	}
	return arr != NULL;
}

static int json_row(void *payload, const th_table_diff *t, const th_diff_row *r, th_error *err)
{
	diff_json *j = payload;
	int keyless = t->to_schema ? t->to_schema->npk == 0 : t->from_schema->npk == 0;
	cJSON *it = cJSON_CreateObject();

	if (it == NULL || !cJSON_AddItemToArray(j->rows, it)) {
		cJSON_Delete(it);
		return oom(err);
	}
	if (!api_json_str(it, "table_name", t->name) ||
	    !api_json_str(it, "diff_type", th_change_kind_name(r->kind)) ||
	    !api_json_str(it, "key", r->key) ||
	    (keyless && !cJSON_AddNumberToObject(it, "count", (double)r->count)) ||
	    !add_cells(it, "before", t->from_schema, r->before) ||
	    !add_cells(it, "after", t->to_schema, r->after) ||
	    (r->kind == TH_CHANGE_MODIFIED && !add_changed(it, t, r)))
		return oom(err);
	return 0;
}

/* ?type=added,modified (any of added|modified|removed) into a kinds mask. */
static int parse_kinds(unsigned *out, const char *s, th_error *err)
{
	char buf[64];
	char *tok, *save = NULL;

	*out = 0;
	if (s == NULL || *s == '\0')
		return TH_OK;
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		th_change_kind k;
		char *p;
		for (p = tok; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if ((k = th_change_kind_parse(tok)) == 0)
			return th_error_set(
			        err, TH_EINVALID,
			        "'type' must be added, modified or removed (got '%.64s')", s);
		*out |= 1u << k;
	}
	return TH_OK;
}

int api_pulls_diff(th_req *req, th_error *err)
{
	const char *size = api_arg(req, "pageSize");
	th_pull_diff_opts o;
	th_diff_visitor v;
	diff_json j;
	th_pull_info p;
	th_repo *repo = NULL;
	th_buf next = TH_BUF_INIT;
	th_oid base, head;
	int64_t id;
	cJSON *body = NULL;
	char hb[41] = "", hh[41] = "";
	int error;

	memset(&o, 0, sizeof(o));
	if ((error = load_pull(&p, &id, req, err)) < 0 ||
	    (error = parse_kinds(&o.kinds, api_arg(req, "type"), err)) < 0)
		goto cleanup;
	o.table = api_arg(req, "table");
	if (o.table && *o.table == '\0')
		o.table = NULL;
	o.page_token = api_arg(req, "pageToken");
	if (size && *size) {
		long n = strtol(size, NULL, 10);
		if (n < 1 || n > DIFF_PAGE_MAX) {
			error = th_error_set(err, TH_EINVALID, "'pageSize' must be 1 to %d",
			                     DIFF_PAGE_MAX);
			goto cleanup;
		}
		o.page_size = (size_t)n;
	}
	if ((error = api_repo_open(&repo, req, err)) < 0 ||
	    (error = th_pull_diff_range(&base, &head, repo, &p, err)) < 0)
		goto cleanup;
	if (!th_oid_is_zero(&base))
		th_oid_fmt(hb, &base);
	if (!th_oid_is_zero(&head))
		th_oid_fmt(hh, &head);
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) || !add_pull_id(body, id) ||
	    !api_json_str(body, "merge_base", hb) || !api_json_str(body, "from_commit_id", hb) ||
	    !api_json_str(body, "to_commit_id", hh) ||
	    (j.tables = cJSON_AddArrayToObject(body, "tables")) == NULL ||
	    (j.rows = cJSON_AddArrayToObject(body, "rows")) == NULL) {
		error = oom(err);
		goto cleanup;
	}
	memset(&v, 0, sizeof(v));
	v.row = json_row;
	v.table_end = json_table_end;
	v.payload = &j;
	if ((error = th_pull_diff_page(&next, repo, &base, &head, &o, &v, err)) < 0)
		goto cleanup;
	if (!api_json_str(body, "next_page_token", next.ptr ? next.ptr : "")) {
		error = oom(err);
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
cleanup:
	cJSON_Delete(body);
	th_buf_dispose(&next);
	th_repo_free(repo);
	th_pull_info_dispose(&p);
	return error;
}

/* Add "conflicts" and "conflicts_total" for merging the pull now. */
static int add_conflicts(cJSON *body, th_repo *repo, const th_pull_info *p, th_error *err)
{
	th_conflicts c = TH_CONFLICTS_INIT;
	th_buf json = TH_BUF_INIT;
	cJSON *arr;
	int error;

	if ((error = th_pull_conflicts(&c, repo, p->from_branch, p->to_branch, err)) < 0 ||
	    (error = th_conflicts_to_json(&json, &c, err)) < 0)
		goto cleanup;
	if ((arr = cJSON_ParseWithLength(json.ptr, json.size)) == NULL) {
		error = oom(err);
		goto cleanup;
	}
	if (!cJSON_AddItemToObject(body, "conflicts", arr)) {
		cJSON_Delete(arr);
		error = oom(err);
		goto cleanup;
	}
	if (!cJSON_AddNumberToObject(body, "conflicts_total", (double)c.total) ||
	    !cJSON_AddBoolToObject(body, "mergeable", c.total == 0))
		error = oom(err);
cleanup:
	th_buf_dispose(&json);
	th_conflicts_dispose(&c);
	return error;
}

int api_pulls_conflicts(th_req *req, th_error *err)
{
	th_pull_info p;
	th_repo *repo = NULL;
	int64_t id;
	cJSON *body = NULL;
	int error;

	if ((error = load_pull(&p, &id, req, err)) < 0 ||
	    (error = api_repo_open(&repo, req, err)) < 0)
		goto cleanup;
	body = api_success();
	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) || !add_pull_id(body, id) ||
	    !api_json_str(body, "state", th_pull_state_name(p.state))) {
		error = oom(err);
		goto cleanup;
	}
	if ((error = add_conflicts(body, repo, &p, err)) < 0)
		goto cleanup;
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
cleanup:
	cJSON_Delete(body);
	th_repo_free(repo);
	th_pull_info_dispose(&p);
	return error;
}

/* --- merge ----------------------------------------------------------------------------------- */

int api_pulls_merge(th_req *req, th_error *err)
{
	th_pull_info p;
	int64_t id;
	char opid[TH_UUID_SIZE];
	const char *job, *userop;
	cJSON *body;
	int error;

	if ((error = load_pull(&p, &id, req, err)) < 0)
		goto cleanup;
	if (p.state != TH_PULL_OPEN) {
		error = th_error_set(err, TH_ECONFLICT, "pull request #%lld is %s, not Open",
		                     (long long)id, th_pull_state_name(p.state));
		goto cleanup;
	}
	if ((error = th_pulls_enqueue_merge(opid, req->srv->meta, req->db.owner, req->db.name,
	                                    req->user, id, err)) < 0)
		goto cleanup;
	th_jobs_wake(req->srv->jobs);
	job = api_pool_printf(&req->pool, "repositoryOwners/%s/repositories/%s/jobs/%s",
	                      req->db.owner, req->db.name, opid);
	userop = api_pool_printf(&req->pool, "users/%s/userOperations/%s", req->user, opid);
	body = api_success();
	if (body == NULL || job == NULL || userop == NULL ||
	    !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name) || !add_pull_id(body, id) ||
	    !api_json_str(body, "operation_name", job) ||
	    !api_json_str(body, "user_operation_name", userop)) {
		cJSON_Delete(body);
		error = oom(err);
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
cleanup:
	th_pull_info_dispose(&p);
	return error;
}

/* The uuid of an operation name: the job name of this database, a user operation name, or the
 * bare uuid. */
static int op_id_from_name(char id[TH_UUID_SIZE], const th_req *req, const char *name,
                           th_error *err)
{
	char prefix[200];
	const char *p = name;
	size_t n, i;

	n = (size_t)snprintf(prefix, sizeof(prefix), "repositoryOwners/%s/repositories/%s/jobs/",
	                     req->db.owner, req->db.name);
	if (strncmp(p, prefix, n) == 0)
		p += n;
	else if (strncmp(p, "users/", 6) == 0 && strstr(p, "/userOperations/") != NULL)
		p = strstr(p, "/userOperations/") + 16;
	else if (strchr(p, '/') != NULL)
		return th_error_set(err, TH_ENOTFOUND, "operation '%.200s' not found in '%s/%s'",
		                    name, req->db.owner, req->db.name);
	for (i = 0; i < 36; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? p[i] != '-' : !isxdigit((unsigned char)p[i]))
			break;
	}
	if (i != 36 || p[36] != '\0')
		return th_error_set(err, TH_EINVALID,
		                    "'operationName' is not an operation name: '%.200s'", name);
	memcpy(id, p, TH_UUID_SIZE);
	return TH_OK;
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
	if ((error = load_pull(&p, &id, req, err)) < 0)
		goto cleanup;
	if (name == NULL || *name == '\0') {
		error = th_error_set(err, TH_EINVALID,
		                     "query parameter 'operationName' is required");
		goto cleanup;
	}
	api_echo(req, "operation_name", name);
	if ((error = op_id_from_name(opid, req, name, err)) < 0)
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
	    !api_json_str(body, "database_name", req->db.name) || !add_pull_id(body, id) ||
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
			    (error = add_conflicts(body, repo, &p, err)) < 0)
				goto cleanup;
		}
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
	goto cleanup;
nomem:
	error = oom(err);
cleanup:
	cJSON_Delete(body);
	th_repo_free(repo);
	th_op_info_dispose(&op);
	th_pull_info_dispose(&p);
	return error;
}
