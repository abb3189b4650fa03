/* pulls_notes.c: the comments and reviews of a pull request (routes in pulls.c):
 *
 *   POST /api/v1alpha1/{owner}/{db}/pulls/{id}/comments   {"comment"}
 *   POST /api/v1alpha1/{owner}/{db}/pulls/{id}/reviews    {"reviewStatus" (or "review_status"):
 *                                                          Approved|Rejected|Reviewed, "comment"}
 *
 * and their lists in a pull's own body (api_pulls_add_notes). Both are rows of meta.sqlite beside
 * the pull; anyone signed in who reads the database comments, the write role reviews (the route
 * table's flags). A review records the head of the pull's branch it saw (stale approvals), and a
 * protected branch may refuse its author's own approval (pulls_rules.c).
 */
#include <stdio.h>
#include <string.h>

#include "pulls_api.h"
#include "tablehub/ids.h"

int api_pulls_comment(th_req *req, th_error *err)
{
	const char *comment = NULL;
	th_pull_info p;
	int64_t id, cid = 0;
	char cids[24];
	cJSON *body;
	int error, incomplete;

	if ((error = api_pull_load(&p, &id, req, err)) < 0 ||
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
	incomplete = body == NULL || !api_json_str(body, "repository_owner", req->db.owner) ||
	             !api_json_str(body, "repository_name", req->db.name) ||
	             !api_pull_add_id(body, id) || !api_json_str(body, "comment", comment) ||
	             !api_json_str(body, "comment_id", cids) ||
	             !api_json_str(body, "author", req->user);
	error = api_pull_reply(req, body, incomplete, err);
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
	int error, incomplete;

	if ((error = api_pull_load(&p, &id, req, err)) < 0 ||
	    (error = api_json_get_str(&status, req->json, "reviewStatus", 0, "", err)) < 0 ||
	    (status == NULL &&
	     (error = api_json_get_str(&status, req->json, "review_status", 0, "", err)) < 0) ||
	    (error = api_json_get_str(&comment, req->json, "comment", 0, "", err)) < 0)
		goto cleanup;
	if (status == NULL || (st = th_review_status_parse(status)) == 0) {
		error = th_error_set(
		        err, TH_EINVALID,
		        "'reviewStatus' must be Approved, Rejected or Reviewed%s%.64s%s",
		        status ? " (got '" : "", status ? status : "", status ? "')" : "");
		goto cleanup;
	}
	if ((error = api_pulls_check_approval(req, &p, st, err)) < 0 ||
	    (error = th_meta_pull_review_add(&rid, req->srv->meta, req->db.id, id, req->user, st,
	                                     comment, err)) < 0)
		goto cleanup;
	api_pulls_record_head(req, &p, rid);
	snprintf(rids, sizeof(rids), "%lld", (long long)rid);
	body = api_success();
	incomplete = body == NULL || !api_json_str(body, "repository_owner", req->db.owner) ||
	             !api_json_str(body, "repository_name", req->db.name) ||
	             !api_pull_add_id(body, id) || !api_json_str(body, "review_id", rids) ||
	             !api_json_str(body, "review_status", th_review_status_name(st)) ||
	             !api_json_str(body, "comment", comment ? comment : "") ||
	             !api_json_str(body, "author", req->user);
	error = api_pull_reply(req, body, incomplete, err);
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
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < comments.n + reviews.n; i++) {
		int review = i >= comments.n;
		cJSON *it = note_item(review ? &reviews.items[i - comments.n] : &comments.items[i],
		                      review);
		if (it == NULL || !cJSON_AddItemToArray(review ? ra : ca, it)) {
			cJSON_Delete(it);
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
cleanup:
	th_pull_note_list_dispose(&comments);
	th_pull_note_list_dispose(&reviews);
	return error;
}
