/* pulls_rules.c: branch protection applied to pull requests (the rules are in review.h, counted
 * by src/review.c): the review state a pull shows, the head of its branch each review saw, the
 * self-approval a protected branch refuses, and the merge it refuses, answered 409 with the rule
 * that refused it in "rule".
 */
#include <stdio.h>
#include <string.h>

#include "pulls_api.h"
#include "tablehub/log.h"
#include "tablehub/review.h"

/* The commit the pull's from-branch points at now, "" when the branch is gone. */
static int pull_head(char out[41], th_req *req, const th_pull_info *p, th_error *err)
{
	th_repo *repo = NULL;
	th_oid oid;
	int error;

	out[0] = '\0';
	if ((error = api_repo_open(&repo, req, err)) < 0)
		return error;
	error = th_repo_branch_get(&oid, repo, p->from_branch, err);
	if (error == TH_OK)
		th_oid_fmt(out, &oid);
	else if (error == TH_ENOTFOUND)
		error = TH_OK;
	th_repo_free(repo);
	return error;
}

static int evaluate(th_review_state *s, th_req *req, const th_pull_info *p, th_error *err)
{
	char head[41];
	int error;

	if ((error = pull_head(head, req, p, err)) < 0)
		return error;
	return th_review_evaluate(s, req->srv->meta, req->db.id, req->db.owner, p, head, err);
}

int api_pulls_review_status(const char **out, th_req *req, const th_pull_info *p, th_error *err)
{
	th_review_state s;
	int error;

	if ((error = evaluate(&s, req, p, err)) < 0)
		return error;
	*out = s.review_status;
	return TH_OK;
}

int api_pulls_add_review_state(cJSON *body, th_req *req, const th_pull_info *p, th_error *err)
{
	th_review_state s;
	cJSON *why;
	int error;

	if ((error = evaluate(&s, req, p, err)) < 0)
		return error;
	if (!api_json_str(body, "review_status", s.review_status) ||
	    !cJSON_AddNumberToObject(body, "approvals", s.approvals) ||
	    !cJSON_AddNumberToObject(body, "required_approvals",
	                             s.is_protected ? s.rules.required_approvals : 0) ||
	    !cJSON_AddBoolToObject(body, "protected", s.is_protected) ||
	    !api_json_str(body, "merge_role",
	                  th_role_name(s.is_protected ? s.rules.merge_role : TH_ROLE_WRITE)) ||
	    !cJSON_AddBoolToObject(body, "mergeable", s.mergeable))
		return th_error_set(err, TH_ENOMEM, "out of memory");
	if (s.mergeable)
		return TH_OK;
	if ((why = cJSON_AddObjectToObject(body, "merge_blocked_by")) == NULL ||
	    !api_json_str(why, "rule", s.rule[0] ? s.rule : NULL) ||
	    !api_json_str(why, "message", s.reason))
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return TH_OK;
}

int api_pulls_check_approval(th_req *req, const th_pull_info *p, th_review_status st, th_error *err)
{
	th_protection rules;
	char rule[32];
	int error;

	if (st != TH_REVIEW_APPROVED || strcmp(req->user, p->author) != 0)
		return TH_OK;
	error = th_meta_protection_get(&rules, req->srv->meta, req->db.id, p->to_branch, err);
	if (error == TH_ENOTFOUND)
		return TH_OK;
	if (error < 0)
		return error;
	if ((error = th_review_may_approve(rule, &rules, req->user, p->author, err)) < 0)
		api_echo(req, "rule", rule);
	return error;
}

void api_pulls_record_head(th_req *req, const th_pull_info *p, int64_t review_id)
{
	char head[41];
	th_error err = { 0 };

	/* Without it the review counts as stale where that matters: worth a line, not a failure of
	 * a review that is already stored. */
	if (pull_head(head, req, p, &err) < 0 ||
	    (head[0] && th_meta_review_set_head(req->srv->meta, req->db.id, p->pull_id, review_id,
	                                        head, &err) < 0))
		TH_LOG(TH_LOG_WARN, "req=%llu review %lld: head not recorded: %s",
		       (unsigned long long)req->id, (long long)review_id, err.msg);
}

int api_pulls_check_merge(th_req *req, const th_pull_info *p, th_error *err)
{
	th_review_state s;
	char rule[32];
	int error;

	if ((error = evaluate(&s, req, p, err)) < 0)
		return error;
	if ((error = th_review_may_merge(rule, &s, req->role, err)) < 0 && rule[0])
		api_echo(req, "rule", rule);
	return error;
}
