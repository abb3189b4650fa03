/* pulls_api.h: what the files of the pull-request resource share (api/pulls*.c): the handlers,
 * which api_pulls_routes (pulls.c) lists, and the helpers every one of them uses to read the
 * :id of a route and its pull. Internal to api/.
 *
 *   pulls.c          the route table; list, get, create, update (close)
 *   pulls_notes.c    comments and reviews
 *   pulls_diff.c     the paged diff, shaped into JSON here from src's values; merge conflicts
 *   pulls_merge.c    the merge operation: start it, poll it
 *   pulls_rules.c    branch protection: review state, self-approval, who may merge
 *   pulls_reviewers.c  the reviewers requested on a pull
 */
#ifndef TABLEHUB_API_PULLS_API_H
#define TABLEHUB_API_PULLS_API_H

#include <stdint.h>

#include "api.h"
#include "tablehub/meta.h"
#include "tablehub/repo.h"

int api_pulls_list(th_req *req, th_error *err);
int api_pulls_get(th_req *req, th_error *err);
int api_pulls_create(th_req *req, th_error *err);
int api_pulls_update(th_req *req, th_error *err);
int api_pulls_comment(th_req *req, th_error *err);
int api_pulls_review(th_req *req, th_error *err);
int api_pulls_diff(th_req *req, th_error *err);
int api_pulls_conflicts(th_req *req, th_error *err);
int api_pulls_merge(th_req *req, th_error *err);
int api_pulls_merge_poll(th_req *req, th_error *err);
int api_pulls_reviewers_add(th_req *req, th_error *err);
int api_pulls_reviewers_remove(th_req *req, th_error *err);

/* The :id capture as a pull id (1-18 digits), echoed in errors as "pull_id". Returns TH_OK or
 * TH_ENOTFOUND ("pull request #x not found in 'owner/db'") when it cannot be one. */
int api_pull_id_arg(int64_t *out, th_req *req, th_error *err);

/* Read the pull of the request's :id into *p (the caller disposes it with th_pull_info_dispose,
 * also on failure) and its id into *id. Returns TH_OK, TH_ENOTFOUND (the message names the pull
 * and the database) or TH_ESTORE. */
int api_pull_load(th_pull_info *p, int64_t *id, th_req *req, th_error *err);

/* Add "pull_id": "<id>" (DoltHub's pull ids are strings) to body; NULL when out of memory. */
cJSON *api_pull_add_id(cJSON *body, int64_t id);

/* Reply 200 with `body` (taken, may be NULL); when `incomplete` (a member could not be added, or
 * body is NULL) free it instead and return TH_ENOMEM. Returns TH_OK or TH_ENOMEM. */
int api_pull_reply(th_req *req, cJSON *body, int incomplete, th_error *err);

/* Add "comments" and "reviews" arrays of pull `pull_id` to a pull's body (pulls_notes.c).
 * Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
int api_pulls_add_notes(cJSON *body, th_req *req, int64_t pull_id, th_error *err);

/* Add "requested_reviewers" [{username, review_status (latest, or null), requested_by}] of pull
 * `pull_id` to a pull's body (pulls_reviewers.c). Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
int api_pulls_add_reviewers(cJSON *body, th_req *req, int64_t pull_id, th_error *err);

/* Branch protection (pulls_rules.c). Add the pull's "review_status", "approvals",
 * "required_approvals", "protected", "merge_role", "mergeable" (under the rules) and, when not
 * mergeable, "merge_blocked_by" {rule, message} to body: TH_OK, TH_ENOMEM or TH_ESTORE. */
int api_pulls_add_review_state(cJSON *body, th_req *req, const th_pull_info *p, th_error *err);
/* The review_status p shows ("Approved", "Rejected", "Reviewed" or "": static) into *out.
 * Returns TH_OK or TH_ESTORE. */
int api_pulls_review_status(const char **out, th_req *req, const th_pull_info *p, th_error *err);
/* TH_OK, or TH_ECONFLICT (with "rule" echoed) when req->user may not approve p (their own pull
 * into a branch protected without allowSelfApproval). */
int api_pulls_check_approval(th_req *req, const th_pull_info *p, th_review_status st,
                             th_error *err);
/* Record the head of p's branch as the one review `review_id` saw (best effort). */
void api_pulls_record_head(th_req *req, const th_pull_info *p, int64_t review_id);
/* TH_OK, or TH_ECONFLICT (with "rule" echoed: mergeRole, requiredApprovals) when the rules of p's
 * target branch refuse req->user's merge now; TH_ESTORE. */
int api_pulls_check_merge(th_req *req, const th_pull_info *p, th_error *err);

/* Pull requests from a fork (forks.c). For POST pulls: the branch of this database the pull is
 * from, into branch (size bytes): `from` itself, or for a branch of a fork named by
 * fromBranchOwnerName/fromBranchRepoName the parent's "forks/<owner>/<from>", brought over now;
 * *fork gets the fork (id 0 for none). Opening a pull needs write here, or read here and write
 * on the fork. Returns TH_OK, TH_EINVALID (not a fork of this database), TH_EFORBIDDEN,
 * TH_ENOTFOUND (no such fork or branch) or TH_ESTORE. */
int api_pull_fork_source(th_fork_info *fork, char *branch, size_t size, th_req *req,
                         const char *from, th_error *err);
/* The fork pull p comes from into *out (id 0: none, or the fork is gone). TH_OK or TH_ESTORE. */
int api_pull_fork_of(th_fork_info *out, th_req *req, const th_pull_info *p, th_error *err);
/* Bring an open pull's fork branch over again (nothing for other pulls). TH_OK, TH_ESTORE. */
int api_pull_fork_sync(th_req *req, const th_pull_info *p, th_error *err);
/* Show a fork pull's source in body: from_branch_owner, _database, _name (the fork's), and
 * from_branch_in_parent. TH_OK, or TH_ENOMEM. Nothing for f->id 0. */
int api_pull_fork_fields(cJSON *body, const th_pull_info *p, const th_fork_info *f);

/* Add "conflicts", "conflicts_total" and "mergeable" for merging pull `p` now (pulls_diff.c).
 * Returns TH_OK, TH_ENOTFOUND (a branch is gone), TH_ENOMEM or TH_ESTORE. */
int api_pulls_add_conflicts(cJSON *body, th_repo *repo, const th_pull_info *p, th_error *err);

#endif
