/* review.c: reviews counted under branch protection (the rules are in review.h).
 *
 * Reviews are few (a handful a pull), so they are read whole, oldest first, and folded into one
 * verdict per reviewer; the reviewer's role is looked up once each, at evaluation time, so a
 * reviewer who lost the write role no longer counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablehub/review.h"

typedef struct verdict {
	const char *author; /* borrowed from the review list */
	th_review_status status;
	const char *head;
} verdict;

static int role_of(th_role *out, th_meta *m, int64_t db_id, const char *owner, const char *user,
                   th_error *err)
{
	if (strcmp(user, owner) == 0) {
		*out = TH_ROLE_ADMIN;
		return TH_OK;
	}
	return th_meta_collab_role(out, m, db_id, user, err);
}

int th_review_evaluate(th_review_state *out, th_meta *m, int64_t db_id, const char *owner,
                       const th_pull_info *p, const char *head, th_error *err)
{
	th_review_state s;
	th_review_list reviews = { NULL, 0 };
	verdict *v = NULL;
	size_t nv = 0, i, j;
	int error, any_review;

	memset(&s, 0, sizeof(s));
	error = th_meta_protection_get(&s.rules, m, db_id, p->to_branch, err);
	if (error == TH_OK)
		s.is_protected = 1;
	else if (error != TH_ENOTFOUND)
		return error;
	if ((error = th_meta_review_heads(&reviews, m, db_id, p->pull_id, err)) < 0)
		return error;
	any_review = reviews.n > 0;
	if (reviews.n > 0 && (v = calloc(reviews.n, sizeof(*v))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* The latest verdict of each reviewer. */
	for (i = 0; i < reviews.n; i++) {
		const th_review_info *r = &reviews.items[i];
		if (r->status != TH_REVIEW_APPROVED && r->status != TH_REVIEW_REJECTED)
			continue;
		for (j = 0; j < nv && strcmp(v[j].author, r->author) != 0; j++)
			;
		if (j == nv)
			nv++;
		v[j].author = r->author;
		v[j].status = r->status;
		v[j].head = r->head;
	}
	for (j = 0; j < nv; j++) {
		th_role role = TH_ROLE_NONE;
		int self = strcmp(v[j].author, p->author) == 0;
		if ((error = role_of(&role, m, db_id, owner, v[j].author, err)) < 0)
			goto cleanup;
		if (role < TH_ROLE_WRITE)
			continue;
		if (v[j].status == TH_REVIEW_REJECTED) {
			s.rejections++;
			snprintf(s.rejected_by, sizeof(s.rejected_by), "%s", v[j].author);
			continue;
		}
		if (s.is_protected && self && !s.rules.allow_self_approval)
			continue;
		if (s.is_protected && s.rules.dismiss_stale_approvals &&
		    (head == NULL || head[0] == '\0' || strcmp(v[j].head, head) != 0))
			continue;
		s.approvals++;
	}

	if (s.rejections > 0)
		s.review_status = "Rejected";
	else if (s.approvals > 0 &&
	         s.approvals >= (s.is_protected ? s.rules.required_approvals : 1))
		s.review_status = "Approved";
	else if (any_review)
		s.review_status = "Reviewed";
	else
		s.review_status = "";

	s.mergeable = p->state == TH_PULL_OPEN;
	if (!s.mergeable) {
		snprintf(s.reason, sizeof(s.reason), "pull request #%lld is %s, not Open",
		         (long long)p->pull_id, th_pull_state_name(p->state));
	} else if (s.is_protected && s.rules.required_approvals > 0 && s.rejections > 0) {
		s.mergeable = 0;
		snprintf(s.rule, sizeof(s.rule), "requiredApprovals");
		snprintf(s.reason, sizeof(s.reason),
		         "branch '%.100s' is protected: %.64s requested changes (a later approval "
		         "by "
		         "them lifts it)",
		         p->to_branch, s.rejected_by);
	} else if (s.is_protected && s.approvals < s.rules.required_approvals) {
		s.mergeable = 0;
		snprintf(s.rule, sizeof(s.rule), "requiredApprovals");
		snprintf(s.reason, sizeof(s.reason),
		         "branch '%.100s' is protected: it needs %d approving review%s from people "
		         "with the write role%s%s; it has %d",
		         p->to_branch, s.rules.required_approvals,
		         s.rules.required_approvals == 1 ? "" : "s",
		         s.rules.allow_self_approval ? "" : ", not the author's own",
		         s.rules.dismiss_stale_approvals ? ", given at the pull's latest commit"
		                                         : "",
		         s.approvals);
	}
	*out = s;
cleanup:
	free(v);
	th_review_list_dispose(&reviews);
	return error;
}

int th_review_may_merge(char rule_out[32], const th_review_state *s, th_role role, th_error *err)
{
	rule_out[0] = '\0';
	if (s->is_protected && role < s->rules.merge_role) {
		snprintf(rule_out, 32, "mergeRole");
		return th_error_set(err, TH_ECONFLICT,
		                    "branch '%.100s' is protected: only people with the %s role "
		                    "merge into it (mergeRole)",
		                    s->rules.branch, th_role_name(s->rules.merge_role));
	}
	if (!s->mergeable) {
		snprintf(rule_out, 32, "%s", s->rule);
		return th_error_set(err, TH_ECONFLICT, "%s%s", s->reason,
		                    s->rule[0] ? " (requiredApprovals)" : "");
	}
	return TH_OK;
}

int th_review_may_approve(char rule_out[32], const th_protection *rules, const char *user,
                          const char *author, th_error *err)
{
	rule_out[0] = '\0';
	if (rules == NULL || rules->allow_self_approval || strcmp(user, author) != 0)
		return TH_OK;
	snprintf(rule_out, 32, "allowSelfApproval");
	return th_error_set(err, TH_ECONFLICT,
	                    "branch '%.100s' is protected: the author of a pull request cannot "
	                    "approve it (allowSelfApproval)",
	                    rules->branch);
}
