/* review.h: what a pull request's reviews add up to under its target branch's protection
 * (src/review.c): the approvals that count, the review status the pull shows, whether it may be
 * merged, and by whom.
 *
 * The rules, per reviewer: only their latest verdict counts (Approved or Rejected; a "Reviewed"
 * comment changes no verdict), and only while they have the write role (the owner is admin). On a
 * protected branch the author's own approval counts only with allowSelfApproval, and with
 * dismissStaleApprovals an approval given at another head of the pull's branch than its head now
 * (a later push) does not count. A protected branch with requiredApprovals > 0 needs that many
 * counted approvals and no counted rejection; mergeRole says who may merge. An unprotected branch
 * needs no review, and anyone with write merges it.
 */
#ifndef TABLEHUB_REVIEW_H
#define TABLEHUB_REVIEW_H

#include <stdint.h>

#include "error.h"
#include "meta.h"
#include "meta_access.h"

typedef struct th_review_state {
	int is_protected;
	th_protection rules;       /* when is_protected */
	int approvals;             /* counted approvals */
	int rejections;            /* counted rejections ("changes requested") */
	char rejected_by[65];      /* the latest counted rejection's author, "" when none */
	const char *review_status; /* "Approved", "Rejected", "Reviewed" or "" (static) */
	int mergeable;             /* Open, and the approvals the rules need are there */
	char rule[32];             /* when not mergeable by a rule: "requiredApprovals"; else "" */
	char reason[256];          /* when not mergeable: why, for people */
} th_review_state;

/* Evaluate pull `p` of database db_id (owned by `owner`) whose from-branch is at commit `head`
 * (40 hex; "" or NULL when the branch is gone: every approval is then stale where that matters).
 * Returns TH_OK or TH_ESTORE. */
int th_review_evaluate(th_review_state *out, th_meta *m, int64_t db_id, const char *owner,
                       const th_pull_info *p, const char *head, th_error *err);

/* May someone with role `role` merge the pull `s` describes now? Returns TH_OK, or TH_ECONFLICT
 * with the rule that refuses in rule_out ("mergeRole", "requiredApprovals", or "" when the pull
 * is not Open) and the reason in err. */
int th_review_may_merge(char rule_out[32], const th_review_state *s, th_role role, th_error *err);

/* Whether `user`'s approval of a pull by `author` into a branch with these rules (NULL:
 * unprotected) is refused: TH_OK, or TH_ECONFLICT with rule "allowSelfApproval" in rule_out. */
int th_review_may_approve(char rule_out[32], const th_protection *rules, const char *user,
                          const char *author, th_error *err);

#endif
