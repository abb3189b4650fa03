/* refs.c: the branches and tags people need while reviewing, and releases:
 *
 *   DELETE /api/v1alpha1/{owner}/{db}/branches/{branch}   delete a branch (write role); a
 *                                                         protected or the default branch is 409
 *   GET    /api/v1alpha1/{owner}/{db}/tags                DoltHub's tag list
 *   POST   /api/v1alpha1/{owner}/{db}/tags                {tagName, tagMessage, revisionType,
 *                                                         revisionName}: an annotated git tag
 *   GET    /api/v1alpha1/{owner}/{db}/releases            the releases, newest first
 *   POST   /api/v1alpha1/{owner}/{db}/releases            {tagName, title, notes}; with DoltHub's
 *                                                         tagMessage, revisionType, revisionName
 *                                                         the tag is made first when missing
 *
 * Tags are git objects of the repository (storage/repo_tags.c: `git tag -l` lists them) and so
 * refs wherever a ref is taken (th_repo_resolve: "v1" or "refs/tags/v1"); a release is a row of
 * the metadata store naming a tag. A branch deletion writes its event (with the head it had).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "tablehub/datadir.h"
#include "tablehub/meta.h"
#include "tablehub/meta_access.h"
#include "tablehub/repo.h"

#define API "/api/v1alpha1"
#define DEFAULT_BRANCH "main"

static int branch_delete(th_req *req, th_error *err);
static int tags_list(th_req *req, th_error *err);
static int tags_create(th_req *req, th_error *err);
static int releases_list(th_req *req, th_error *err);
static int releases_create(th_req *req, th_error *err);

const api_route api_refs_routes[] = {
	{ "DELETE", API "/:owner/:db/branches/*branch", branch_delete, R_WRITE },
	{ "GET", API "/:owner/:db/tags", tags_list, R_READ },
	{ "POST", API "/:owner/:db/tags", tags_create, R_WRITE | R_JSON },
	{ "GET", API "/:owner/:db/releases", releases_list, R_READ },
	{ "POST", API "/:owner/:db/releases", releases_create, R_WRITE | R_JSON },
	{ NULL, NULL, NULL, 0 }
};

static int oom(th_error *err)
{
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

static cJSON *add_time(cJSON *obj, const char *key, int64_t ms)
{
	char t[32];

	if (ms == 0)
		return cJSON_AddNullToObject(obj, key);
	th_time_fmt(t, ms);
	return cJSON_AddStringToObject(obj, key, t);
}

static cJSON *db_body(th_req *req)
{
	cJSON *body = api_success();

	if (body == NULL || !api_json_str(body, "database_owner", req->db.owner) ||
	    !api_json_str(body, "database_name", req->db.name)) {
		cJSON_Delete(body);
		return NULL;
	}
	return body;
}

/* --- branches -------------------------------------------------------------------------------- */

static int branch_delete(th_req *req, th_error *err)
{
	const char *branch = api_cap(req, "branch");
	th_repo *repo = NULL;
	th_protection p;
	th_oid head;
	th_event_new ev;
	char hex[41], detail[80];
	cJSON *body = NULL;
	int error;

	if (strcmp(branch, DEFAULT_BRANCH) == 0)
		return th_error_set(err, TH_ECONFLICT,
		                    "branch '%s' is the database's default branch: it cannot be "
		                    "deleted",
		                    branch);
	error = th_meta_protection_get(&p, req->srv->meta, req->db.id, branch, err);
	if (error == TH_OK)
		return th_error_set(err, TH_ECONFLICT,
		                    "branch '%.200s' is protected: lift its protection (DELETE "
		                    ".../branches/%.200s/protection) before deleting it",
		                    branch, branch);
	if (error != TH_ENOTFOUND)
		return error;
	if ((error = api_repo_open(&repo, req, err)) < 0)
		goto cleanup;
	if ((error = th_repo_branch_get(&head, repo, branch, err)) < 0 ||
	    (error = th_repo_branch_delete(repo, branch, err)) < 0) {
		if (error == TH_ENOTFOUND)
			error = th_error_set(err, TH_ENOTFOUND,
			                     "branch '%.200s' not found in '%s/%s'", branch,
			                     req->db.owner, req->db.name);
		goto cleanup;
	}
	th_oid_fmt(hex, &head);
	snprintf(detail, sizeof(detail), "{\"head\":\"%s\"}", hex);
	ev = api_event(req, "branch.delete", branch, detail);
	if ((error = th_meta_event_add(req->srv->meta, &ev, err)) < 0)
		goto cleanup;
	if ((body = db_body(req)) == NULL || !api_json_str(body, "branch_name", branch) ||
	    !api_json_str(body, "head", hex)) {
		error = oom(err);
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;

cleanup:
	cJSON_Delete(body);
	th_repo_free(repo);
	return error;
}

/* --- tags ------------------------------------------------------------------------------------ */

/* The commit a DoltHub revision {revisionType, revisionName} names into *out. */
static int resolve_revision(th_oid *out, th_repo *repo, th_req *req, const char *type,
                            const char *rev, th_error *err)
{
	int error;

	if (strcasecmp(type, "branch") != 0 && strcasecmp(type, "ref") != 0 &&
	    strcasecmp(type, "commit") != 0)
		return th_error_set(
		        err, TH_EINVALID,
		        "'revisionType' must be 'branch', 'ref' or 'commit' (got '%.64s')", type);
	if (strcasecmp(type, "branch") == 0)
		error = th_repo_branch_get(out, repo, rev, err);
	else
		error = th_repo_resolve(out, repo, rev, err);
	if (error == TH_ENOTFOUND || error == TH_EINVALID)
		return th_error_set(err, TH_ENOTFOUND, "%s '%.200s' not found in '%s/%s'",
		                    strcasecmp(type, "branch") == 0 ? "branch" : "revision", rev,
		                    req->db.owner, req->db.name);
	return error;
}

/* Make annotated tag `name` at the revision, tagged by the caller. */
static int make_tag(th_repo *repo, th_req *req, const char *name, const char *message,
                    const char *type, const char *rev, th_error *err)
{
	char email[128];
	th_oid target;
	int error;

	if (!th_repo_branch_name_valid(name))
		return th_error_set(err, TH_EINVALID, "'tagName' is not a valid tag name: '%.200s'",
		                    name);
	if ((error = resolve_revision(&target, repo, req, type, rev, err)) < 0)
		return error;
	snprintf(email, sizeof(email), "%s@tablehub.local", req->user);
	return th_repo_tag_create(repo, name, &target, req->user, email, message, err);
}

/* The tag `name` of the repository into *out (found) or TH_ENOTFOUND. */
static int find_tag(th_tag_info *out, const th_tag_list *tags, const char *name)
{
	for (size_t i = 0; i < tags->n; i++) {
		if (strcmp(tags->items[i].name, name) == 0) {
			*out = tags->items[i];
			return TH_OK;
		}
	}
	return TH_ENOTFOUND;
}

/* The tag's fields into obj (DoltHub's tag_name, tag_description, tagged_at, and ours). */
static int tag_fields(cJSON *obj, const th_tag_info *t)
{
	char hex[41];

	th_oid_fmt(hex, &t->commit);
	return api_json_str(obj, "tag_name", t->name) &&
	       api_json_str(obj, "tag_description", t->message) &&
	       add_time(obj, "tagged_at", t->tagged_at) && api_json_str(obj, "tagger", t->tagger) &&
	       api_json_str(obj, "commit_id", hex);
}

static cJSON *tag_item(const th_tag_info *t)
{
	cJSON *it = cJSON_CreateObject();

	if (it == NULL || !tag_fields(it, t)) {
		cJSON_Delete(it);
		return NULL;
	}
	return it;
}

static int tags_list(th_req *req, th_error *err)
{
	th_repo *repo = NULL;
	th_tag_list tags = { NULL, 0 };
	cJSON *body = NULL, *arr;
	int error;

	if ((error = api_repo_open(&repo, req, err)) < 0 ||
	    (error = th_repo_tag_list(&tags, repo, err)) < 0)
		goto cleanup;
	if ((body = db_body(req)) == NULL || (arr = cJSON_AddArrayToObject(body, "tags")) == NULL)
		goto fail_oom;
	for (size_t i = 0; i < tags.n; i++) {
		cJSON *it = tag_item(&tags.items[i]);
		if (it == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			goto fail_oom;
		}
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
	goto cleanup;
fail_oom:
	error = oom(err);
cleanup:
	cJSON_Delete(body);
	th_tag_list_dispose(&tags);
	th_repo_free(repo);
	return error;
}

static int tags_create(th_req *req, th_error *err)
{
	const char *name, *msg, *type, *rev;
	th_repo *repo = NULL;
	th_tag_list tags = { NULL, 0 };
	th_tag_info t;
	cJSON *body = NULL;
	int error;

	if ((error = api_json_get_str(&name, req->json, "tagName", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&msg, req->json, "tagMessage", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&type, req->json, "revisionType", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&rev, req->json, "revisionName", 1, "", err)) < 0)
		return error;
	msg = msg ? msg : "";
	if ((error = api_repo_open(&repo, req, err)) < 0 ||
	    (error = make_tag(repo, req, name, msg, type, rev, err)) < 0 ||
	    (error = th_repo_tag_list(&tags, repo, err)) < 0)
		goto cleanup;
	if (find_tag(&t, &tags, name) < 0) {
		error = th_error_set(err, TH_ESTORE, "tag '%.200s' vanished once written", name);
		goto cleanup;
	}
	if ((body = db_body(req)) == NULL || !tag_fields(body, &t) ||
	    !api_json_str(body, "revision_type", type) ||
	    !api_json_str(body, "revision_name", rev)) {
		error = oom(err);
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;

cleanup:
	cJSON_Delete(body);
	th_tag_list_dispose(&tags);
	th_repo_free(repo);
	return error;
}

/* --- releases -------------------------------------------------------------------------------- */

static int releases_list(th_req *req, th_error *err)
{
	th_release_list l = { NULL, 0 };
	th_tag_list tags = { NULL, 0 };
	th_repo *repo = NULL;
	cJSON *body = NULL, *arr;
	int error;

	if ((error = th_meta_release_list(&l, req->srv->meta, req->db.id, err)) < 0 ||
	    (error = api_repo_open(&repo, req, err)) < 0 ||
	    (error = th_repo_tag_list(&tags, repo, err)) < 0)
		goto cleanup;
	if ((body = db_body(req)) == NULL ||
	    (arr = cJSON_AddArrayToObject(body, "releases")) == NULL)
		goto fail_oom;
	for (size_t i = 0; i < l.n; i++) {
		const th_release_info *r = &l.items[i];
		th_tag_info t;
		cJSON *it;
		/* A release whose tag was removed with git shows no tag fields but stays. */
		if (find_tag(&t, &tags, r->tag_name) == TH_OK)
			it = tag_item(&t);
		else if ((it = cJSON_CreateObject()) != NULL &&
		         !api_json_str(it, "tag_name", r->tag_name)) {
			cJSON_Delete(it);
			it = NULL;
		}
		if (it == NULL || !cJSON_AddItemToArray(arr, it))
			goto fail_item;
		if (!api_json_str(it, "title", r->title) || !api_json_str(it, "notes", r->notes) ||
		    !api_json_str(it, "author", r->author) ||
		    !add_time(it, "created_at", r->created_at))
			goto fail_oom;
		continue;
	fail_item:
		cJSON_Delete(it);
		goto fail_oom;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
	goto cleanup;
fail_oom:
	error = oom(err);
cleanup:
	cJSON_Delete(body);
	th_tag_list_dispose(&tags);
	th_release_list_dispose(&l);
	th_repo_free(repo);
	return error;
}

static int releases_create(th_req *req, th_error *err)
{
	const char *name, *title, *notes, *msg, *type, *rev;
	th_repo *repo = NULL;
	th_tag_list tags = { NULL, 0 };
	th_tag_info t;
	th_release_new r;
	th_event_new ev;
	char hex[41];
	cJSON *body = NULL;
	int error;

	if ((error = api_json_get_str(&name, req->json, "tagName", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&title, req->json, "title", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&notes, req->json, "notes", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&msg, req->json, "tagMessage", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&type, req->json, "revisionType", 0, "", err)) < 0 ||
	    (error = api_json_get_str(&rev, req->json, "revisionName", 0, "", err)) < 0)
		return error;
	title = title ? title : "";
	notes = notes ? notes : "";
	msg = msg ? msg : "";
	type = type ? type : "";
	rev = rev ? rev : "";
	if ((error = api_repo_open(&repo, req, err)) < 0 ||
	    (error = th_repo_tag_list(&tags, repo, err)) < 0)
		goto cleanup;
	if (find_tag(&t, &tags, name) < 0) {
		/* DoltHub's release names the revision it tags: make the tag. */
		if (rev[0] == '\0') {
			error = th_error_set(
			        err, TH_ENOTFOUND,
			        "tag '%.200s' not found in '%s/%s' (name a revision in "
			        "'revisionType' and 'revisionName' to make it)",
			        name, req->db.owner, req->db.name);
			goto cleanup;
		}
		th_tag_list_dispose(&tags);
		if ((error = make_tag(repo, req, name, msg, type[0] ? type : "ref", rev, err)) <
		            0 ||
		    (error = th_repo_tag_list(&tags, repo, err)) < 0)
			goto cleanup;
		if (find_tag(&t, &tags, name) < 0) {
			error = th_error_set(err, TH_ESTORE, "tag '%.200s' vanished once written",
			                     name);
			goto cleanup;
		}
	}
	r.tag_name = name;
	r.title = title;
	r.notes = notes;
	r.author = req->user;
	ev = api_event(req, "release.create", name, NULL);
	if ((error = th_meta_release_create(req->srv->meta, req->db.id, &r, &ev, err)) < 0)
		goto cleanup;
	th_oid_fmt(hex, &t.commit);
	if ((body = db_body(req)) == NULL || !api_json_str(body, "tag_name", name) ||
	    !api_json_str(body, "tag_description", t.message) ||
	    !api_json_str(body, "revision_type", type[0] ? type : "ref") ||
	    !api_json_str(body, "revision_name", rev[0] ? rev : name) ||
	    !api_json_str(body, "commit_id", hex) || !api_json_str(body, "title", title) ||
	    !api_json_str(body, "notes", notes) || !api_json_str(body, "author", req->user)) {
		error = oom(err);
		goto cleanup;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;

cleanup:
	cJSON_Delete(body);
	th_tag_list_dispose(&tags);
	th_repo_free(repo);
	return error;
}
