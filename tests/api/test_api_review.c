/* test_api_review.c: people reviewing each other's imports under a protected branch, over HTTP on a
 * real `tablehub serve`. alice owns a private database whose main needs one approval that is not
 * the author's own and is given at the pull's latest commit; bob (write) uploads into it, and his
 * pull cannot be merged, nor approved by himself; carol (read) comments but may neither review
 * nor merge; the pull tells each caller their role (viewer_role); alice approves and the pull
 * becomes mergeable; a push to bob's branch makes that approval stale; erin (write) requests
 * changes, which blocks until she approves; with mergeRole admin bob may not merge; alice merges,
 * the rows land on main, and the events record it all. Every refusal by a rule is a 409 that names
 * the rule. */
#include "../harness.h"
#include "accounts.h"

static t_server srv;
static char *dir, *alice, *bob, *carol, *erin;

#define DB "alice/farm"

/* Upload `csv` as `token` into DB's `branch` (Update of table animals), wait for the import;
 * returns the pull id it opened (0 on failure). */
static int upload(const char *token, const char *branch, const char *name, const char *csv,
                  const char *op)
{
	char params[400], opname[300] = "", *file = t_write_in(dir, name, csv);
	t_resp r;
	int pull = 0;

	snprintf(params, sizeof(params),
	         "{\"tableName\":\"animals\",\"fileName\":\"%s\",\"branchName\":\"%s\","
	         "\"fileType\":\"Csv\",\"importOp\":\"%s\",\"primaryKeys\":[\"id\"]}",
	         name, branch, op);
	r = t_upload(&srv, token, DB, file, params);
	CHECK(r.status == 200);
	snprintf(opname, sizeof(opname), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, token, DB, opname, 120);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	pull = atoi(nz(t_str(&r, "pull_id")));
	t_resp_free(&r);
	free(file);
	return pull;
}

/* POST merge as `token`; returns the response (with its operation_name on 200). */
static t_resp merge(const char *token, int pull)
{
	return t_http(&srv, AUTH "-X POST '%s/" DB "/pulls/%d/merge'", token, srv.base, pull);
}

/* Wait for merge operation `op` of `pull` to end; returns its job_status (static). */
static const char *merge_wait(int pull, const char *op)
{
	static char st[32];

	st[0] = '\0';
	for (time_t end = time(NULL) + 60; time(NULL) < end;) {
		t_resp r = t_http(&srv,
		                  "-G " AUTH "--data-urlencode 'operationName=%s' "
		                  "'%s/" DB "/pulls/%d/merge'",
		                  alice, op, srv.base, pull);
		snprintf(st, sizeof(st), "%s", nz(t_str(&r, "job_status")));
		t_resp_free(&r);
		if (strcmp(st, "Completed") == 0 || strcmp(st, "Failed") == 0)
			break;
		t_sleep_ms(100);
	}
	return st;
}

static t_resp review(const char *token, int pull, const char *status)
{
	return t_http(&srv,
	              AUTH "-d '{\"reviewStatus\":\"%s\",\"comment\":\"c\"}' '%s/" DB
	                   "/pulls/%d/reviews'",
	              token, status, srv.base, pull);
}

static t_resp get_pull(int pull)
{
	return t_http(&srv, AUTH "'%s/" DB "/pulls/%d'", carol, srv.base, pull);
}

/* A 409 naming `rule` with a message containing `msg`. */
static void check_rule(t_resp *r, const char *rule, const char *msg)
{
	CHECK(r->status == 409);
	if (r->status != 409)
		fprintf(stderr, "  got %d: %s\n", r->status, r->body);
	CHECK_STR(t_str(r, "code"), "ECONFLICT");
	CHECK_STR(t_str(r, "rule"), rule);
	CHECK_CONTAINS(t_str(r, "message"), msg);
	t_resp_free(r);
}

static void check_state(int pull, const char *review_status, int approvals, int mergeable,
                        const char *blocked_by)
{
	t_resp r = get_pull(pull);
	const cJSON *why = cJSON_GetObjectItem(r.json, "merge_blocked_by");

	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "review_status"), review_status);
	CHECK(t_num(&r, "approvals") == approvals);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "protected")));
	CHECK(cJSON_IsBool(cJSON_GetObjectItem(r.json, "mergeable")) &&
	      cJSON_IsTrue(cJSON_GetObjectItem(r.json, "mergeable")) == mergeable);
	if (blocked_by != NULL)
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(why, "rule")), blocked_by);
	else
		CHECK(why == NULL);
	if (r.status != 200 || (blocked_by == NULL) != (why == NULL))
		fprintf(stderr, "  pull %d: %s\n", pull, r.body);
	t_resp_free(&r);
}

static int pull1;
static char branch1[200];
static char *frank; /* a user with no role on DB */

/* The requested reviewers of `pull` as "name:status,..." (status "-" before their first review),
 * into a static buffer. */
static const char *reviewers_of(int pull)
{
	static char out[300];
	t_resp r = get_pull(pull);
	const cJSON *it;
	size_t n = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r.json, "requested_reviewers"))
	{
		const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(it, "review_status"));
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s:%s", n ? "," : "",
		                      nz(cJSON_GetStringValue(cJSON_GetObjectItem(it, "username"))),
		                      st ? st : "-");
	}
	t_resp_free(&r);
	return out;
}

static t_resp request_reviewers(const char *token, int pull, const char *list)
{
	return t_http(&srv, AUTH "-d '{\"reviewers\":%s}' '%s/" DB "/pulls/%d/reviewers'", token,
	              list, srv.base, pull);
}

/* The ids of the pulls GET pulls?<args> lists, as "3,1", into a static buffer ("!<status>" on
 * failure). */
static const char *list_pulls(const char *args)
{
	static char out[200];
	t_resp r = t_http(&srv, AUTH "'%s/" DB "/pulls?%s'", carol, srv.base, args);
	const cJSON *it;
	size_t n = 0;

	out[0] = '\0';
	if (r.status != 200)
		snprintf(out, sizeof(out), "!%d", r.status);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r.json, "pulls")) n +=
	        (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", n ? "," : "",
	                         nz(cJSON_GetStringValue(cJSON_GetObjectItem(it, "pull_id"))));
	t_resp_free(&r);
	return out;
}

static void test_setup(void)
{
	t_resp r = t_http(&srv,
	                  AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"farm\",\"visibility\":"
	                       "\"private\"}' '%s/database'",
	                  alice, srv.base);
	int first;

	CHECK(r.status == 200);
	t_resp_free(&r);
	/* alice's first import, merged before main is protected (no review needed then). */
	first = upload(alice, "main", "a.csv", "id,name,legs\n1,hen,2\n2,cow,4\n", "Create");
	CHECK(first > 0);
	r = merge(alice, first);
	CHECK(r.status == 200);
	CHECK_STR(merge_wait(first, nz(t_str(&r, "operation_name"))), "Completed");
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-X PUT -d '{\"requiredApprovals\":1,\"allowSelfApproval\":false,"
	                "\"dismissStaleApprovals\":true,\"mergeRole\":\"write\"}' "
	                "'%s/" DB "/branches/main/protection'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK(t_set_role(&srv, alice, DB, "bob", "write") == 200);
	CHECK(t_set_role(&srv, alice, DB, "carol", "read") == 200);
	CHECK(t_set_role(&srv, alice, DB, "erin", "write") == 200);
}

static void test_bob_uploads_and_cannot_merge_alone(void)
{
	t_resp r;

	pull1 = upload(bob, "main", "b.csv", "id,name,legs\n3,duck,2\n", "Update");
	CHECK(pull1 > 1);
	r = get_pull(pull1);
	CHECK_STR(t_str(&r, "author"), "bob");
	snprintf(branch1, sizeof(branch1), "%s", nz(t_str(&r, "from_branch_name")));
	t_resp_free(&r);
	check_state(pull1, "", 0, 0, "requiredApprovals");

	r = merge(bob, pull1);
	check_rule(&r, "requiredApprovals", "needs 1 approving review");
	/* bob cannot approve his own. */
	r = review(bob, pull1, "Approved");
	check_rule(&r, "allowSelfApproval", "the author of a pull request cannot approve it");
	check_state(pull1, "", 0, 0, "requiredApprovals");
	/* A comment-only review by bob is fine, and changes nothing. */
	r = review(bob, pull1, "Reviewed");
	CHECK(r.status == 200);
	t_resp_free(&r);
	check_state(pull1, "Reviewed", 0, 0, "requiredApprovals");
}

static void test_requested_reviewers(void)
{
	char want[64];
	t_resp r;

	/* bob, the author, asks alice and erin (named twice: once counts). */
	r = request_reviewers(bob, pull1, "[\"alice\",\"erin\",\"erin\"]");
	CHECK(r.status == 200);
	CHECK(t_num(&r, "added") == 2);
	t_resp_free(&r);
	CHECK_STR(reviewers_of(pull1), "alice:-,erin:-");
	/* Again: nothing new, nothing changes. */
	r = request_reviewers(bob, pull1, "[\"erin\"]");
	CHECK(r.status == 200);
	CHECK(t_num(&r, "added") == 0);
	t_resp_free(&r);
	/* Refused, naming the reviewer, and nothing of the request is stored. */
	r = request_reviewers(bob, pull1, "[\"carol\",\"zed\"]");
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "reviewer"), "zed");
	CHECK_CONTAINS(t_str(&r, "message"), "'zed' is not a user");
	t_resp_free(&r);
	r = request_reviewers(bob, pull1, "[\"carol\",\"frank\"]");
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "reviewer 'frank' cannot read 'alice/farm'");
	t_resp_free(&r);
	r = request_reviewers(bob, pull1, "[\"bob\"]");
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'bob' is the pull request's author");
	t_resp_free(&r);
	r = request_reviewers(bob, pull1, "\"alice\"");
	CHECK(r.status == 400);
	t_resp_free(&r);
	CHECK_STR(reviewers_of(pull1), "alice:-,erin:-");
	/* carol reads but neither wrote the pull nor has the write role. */
	r = request_reviewers(carol, pull1, "[\"erin\"]");
	CHECK(r.status == 403);
	t_resp_free(&r);
	/* Withdrawn by the author, once; carol may not. Then asked again. */
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/pulls/%d/reviewers/erin'", carol, srv.base,
	           pull1);
	CHECK(r.status == 403);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/pulls/%d/reviewers/erin'", bob, srv.base,
	           pull1);
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK_STR(reviewers_of(pull1), "alice:-");
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/pulls/%d/reviewers/erin'", bob, srv.base,
	           pull1);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = request_reviewers(alice, pull1, "[\"erin\"]");
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK_STR(reviewers_of(pull1), "alice:-,erin:-");
	/* The requests are in the trail. */
	r = t_http(&srv, AUTH "'%s/" DB "/events?pageSize=100'", alice, srv.base);
	snprintf(want, sizeof(want), "\"action\":\"pull.reviewers.add\",\"target\":\"%d\"", pull1);
	CHECK_CONTAINS(r.body, want);
	CHECK_CONTAINS(r.body, "\"action\":\"pull.reviewers.remove\"");
	t_resp_free(&r);
	/* bob's comment-only review makes it Reviewed; AssignedReviewer finds it. */
	snprintf(want, sizeof(want), "%d", pull1);
	CHECK_STR(list_pulls("filterByReviewStatus=Reviewed"), want);
	CHECK_STR(list_pulls("filterByReviewStatus=AssignedReviewer"), want);
	CHECK_STR(list_pulls("filterByReviewStatus=Approved"), "");
}

static void test_carol_reads_comments_only(void)
{
	t_resp r = t_http(&srv,
	                  AUTH "-d '{\"comment\":\"duck has 2 legs, right\"}' '%s/" DB
	                       "/pulls/%d/comments'",
	                  carol, srv.base, pull1);

	CHECK(r.status == 200);
	t_resp_free(&r);
	r = review(carol, pull1, "Approved");
	CHECK(r.status == 403);
	CHECK_STR(t_str(&r, "message"), "this needs the write role on 'alice/farm'");
	t_resp_free(&r);
	r = merge(carol, pull1);
	CHECK(r.status == 403);
	t_resp_free(&r);
	/* Nobody else even sees the database. */
	r = t_http(&srv, "'%s/" DB "/pulls/%d'", srv.base, pull1);
	CHECK(r.status == 404);
	t_resp_free(&r);
}

/* A pull, the pulls and the tables tell each caller their own role there, capped by their token's
 * scope: what a page needs to offer only what the server allows. */
static void test_viewer_role(void)
{
	const char *who[] = { alice, bob, carol };
	const char *want[] = { "admin", "write", "read" };
	char *ro = t_token_create(&srv, bob, "bob read", "read");
	t_resp r;

	for (int i = 0; i < 3; i++) {
		r = t_http(&srv, AUTH "'%s/" DB "/pulls/%d'", who[i], srv.base, pull1);
		CHECK(r.status == 200);
		CHECK_STR(t_str(&r, "viewer_role"), want[i]);
		t_resp_free(&r);
		r = t_http(&srv, AUTH "'%s/" DB "/tables'", who[i], srv.base);
		CHECK(r.status == 200);
		CHECK_STR(t_str(&r, "viewer_role"), want[i]);
		t_resp_free(&r);
		r = t_http(&srv, AUTH "'%s/" DB "/pulls'", who[i], srv.base);
		CHECK(r.status == 200);
		CHECK_STR(t_str(&r, "viewer_role"), want[i]);
		t_resp_free(&r);
	}
	CHECK(ro != NULL);
	r = t_http(&srv, AUTH "'%s/" DB "/pulls/%d'", ro ? ro : "", srv.base, pull1);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "viewer_role"), "read");
	t_resp_free(&r);
	free(ro);
}

static void test_alice_approves_then_a_push_makes_it_stale(void)
{
	t_resp r = review(alice, pull1, "Approved");
	int pull2;

	CHECK(r.status == 200);
	t_resp_free(&r);
	check_state(pull1, "Approved", 1, 1, NULL);
	/* bob adds a commit to his branch: an import into it, merged there (unprotected). */
	pull2 = upload(bob, branch1, "c.csv", "id,name,legs\n4,goat,4\n", "Update");
	CHECK(pull2 > pull1);
	r = merge(bob, pull2);
	CHECK(r.status == 200);
	CHECK_STR(merge_wait(pull2, nz(t_str(&r, "operation_name"))), "Completed");
	t_resp_free(&r);
	/* alice's approval saw the old head: it no longer counts. */
	check_state(pull1, "Reviewed", 0, 0, "requiredApprovals");
	r = merge(alice, pull1);
	check_rule(&r, "requiredApprovals", "given at the pull's latest commit");
	r = review(alice, pull1, "Approved");
	CHECK(r.status == 200);
	t_resp_free(&r);
	check_state(pull1, "Approved", 1, 1, NULL);
}

static void test_changes_requested_block(void)
{
	t_resp r = review(erin, pull1, "Rejected");

	CHECK(r.status == 200);
	t_resp_free(&r);
	check_state(pull1, "Rejected", 1, 0, "requiredApprovals");
	r = merge(alice, pull1);
	check_rule(&r, "requiredApprovals", "erin requested changes");
	/* Her latest review is the one that counts. */
	r = review(erin, pull1, "Approved");
	CHECK(r.status == 200);
	t_resp_free(&r);
	check_state(pull1, "Approved", 2, 1, NULL);
	/* Each requested reviewer's latest review. */
	CHECK_STR(reviewers_of(pull1), "alice:Approved,erin:Approved");
}

/* The list filters: the review status the pulls show, requested reviewers, text in the title or
 * author, with the state filter and paging. Pulls now: 1 (alice's, merged), pull1 (bob's,
 * approved), pull1 + 1 (bob's, merged into pull1's branch). */
static void test_list_filters(void)
{
	char p1[16], p2[32], both[40];

	snprintf(p1, sizeof(p1), "%d", pull1);
	snprintf(p2, sizeof(p2), "%d,%d", pull1 + 1, pull1);
	snprintf(both, sizeof(both), "%d,1", pull1 + 1);
	CHECK_STR(list_pulls("filterByReviewStatus=Approved"), p1);
	CHECK_STR(list_pulls("filterByReviewStatus=approved&filterByState=Open"), p1);
	CHECK_STR(list_pulls("filterByReviewStatus=Approved&filterByState=Merged"), "");
	CHECK_STR(list_pulls("filterByReviewStatus=Rejected"), "");
	CHECK_STR(list_pulls("filterByReviewStatus=Reviewed"), "");
	CHECK_STR(list_pulls("filterByReviewStatus=AssignedReviewer"), p1);
	CHECK_STR(list_pulls("query=B.CSV"), p1);
	snprintf(p1, sizeof(p1), "%d", pull1 + 1);
	CHECK_STR(list_pulls("query=import%20c.csv"), p1);
	snprintf(p1, sizeof(p1), "%d", pull1);
	CHECK_STR(list_pulls("query=BOB"), p2);
	CHECK_STR(list_pulls("query=nothing"), "");
	CHECK_STR(list_pulls("query=Import&filterByState=Merged"), both);
	CHECK_STR(list_pulls("query=a.csv&filterByReviewStatus=Approved"), "");
	CHECK_STR(list_pulls("filterByReviewStatus=maybe"), "!400");
	{
		t_resp r = t_http(&srv, AUTH "'%s/" DB "/pulls?filterByReviewStatus=maybe'", carol,
		                  srv.base);
		CHECK_CONTAINS(t_str(&r, "message"),
		               "'filterByReviewStatus' must be Approved, Rejected, Reviewed or "
		               "AssignedReviewer");
		t_resp_free(&r);
	}
}

static void test_merge_role(void)
{
	t_resp r = t_http(&srv,
	                  AUTH "-X PUT -d '{\"requiredApprovals\":1,\"mergeRole\":\"admin\"}' "
	                       "'%s/" DB "/branches/main/protection'",
	                  alice, srv.base);

	CHECK(r.status == 200);
	t_resp_free(&r);
	r = merge(bob, pull1);
	check_rule(&r, "mergeRole", "only people with the admin role merge into it");
	r = get_pull(pull1);
	CHECK_STR(t_str(&r, "merge_role"), "admin");
	t_resp_free(&r);
}

/* Is refs/heads/<branch> in DB's git repository? */
static int git_has_branch(const char *branch)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd),
	         "git --git-dir='%s/repos/alice/farm.git' rev-parse -q --verify "
	         "'refs/heads/%s' >/dev/null 2>&1",
	         dir, branch);
	return system(cmd) == 0;
}

static int api_has_branch(const char *branch)
{
	t_resp r = t_http(&srv, AUTH "'%s/" DB "/branches'", carol, srv.base);
	const cJSON *it;
	int found = 0;

	CHECK(r.status == 200);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r.json, "branches")) found |=
	        strcmp(nz(cJSON_GetStringValue(cJSON_GetObjectItem(it, "branch_name"))), branch) ==
	        0;
	t_resp_free(&r);
	return found;
}

/* alice merges with deleteBranchOnMerge (as DoltHub clients send it with the merge): once the
 * merge is done, bob's branch is gone, in the API and in git, and the pull says so. */
static void test_alice_merges(void)
{
	t_resp r;
	char *rows = NULL, want[300];

	CHECK(git_has_branch(branch1) && api_has_branch(branch1));
	r = t_http(&srv,
	           AUTH "-X POST -d '{\"deleteBranchOnMerge\":\"yes\"}' '%s/" DB "/pulls/%d/merge'",
	           alice, srv.base, pull1);
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-X POST -d '{\"deleteBranchOnMerge\":true}' '%s/" DB "/pulls/%d/merge'",
	           alice, srv.base, pull1);
	CHECK(r.status == 200);
	CHECK_STR(merge_wait(pull1, nz(t_str(&r, "operation_name"))), "Completed");
	t_resp_free(&r);
	r = get_pull(pull1);
	CHECK_STR(t_str(&r, "state"), "Merged");
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "mergeable")));
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "delete_branch_on_merge")));
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "branch_deleted")));
	/* The merge event carries the merge commit: it was written when the merge was done. */
	snprintf(want, sizeof(want), "\"commit\":\"%s\"", nz(t_str(&r, "merge_commit")));
	t_resp_free(&r);
	CHECK(!git_has_branch(branch1));
	CHECK(!api_has_branch(branch1));
	r = t_http(&srv, AUTH "'%s/" DB "/events?pageSize=100'", alice, srv.base);
	CHECK_CONTAINS(r.body, want);
	snprintf(want, sizeof(want), "\"action\":\"branch.delete\",\"target\":\"%s\"", branch1);
	CHECK_CONTAINS(r.body, want);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-G --data-urlencode 'q=SELECT name FROM animals ORDER BY id' '%s/" DB
	                "/main'",
	           carol, srv.base);
	CHECK(r.status == 200);
	rows = cJSON_PrintUnformatted(cJSON_GetObjectItem(r.json, "rows"));
	CHECK_STR(rows, "[{\"name\":\"hen\"},{\"name\":\"cow\"},{\"name\":\"duck\"},"
	                "{\"name\":\"goat\"}]");
	free(rows);
	t_resp_free(&r);
	/* A merged pull merges no more. */
	r = merge(alice, pull1);
	CHECK(r.status == 409);
	t_resp_free(&r);
}

/* Two pulls change the same cell: the second merge fails on the conflict, and the trail records
 * no merge of it; a pull opened with deleteBranchOnMerge shows it. */
static void test_failed_merge_records_nothing(void)
{
	int a = upload(bob, "main", "x.csv", "id,name,legs\n1,hen,3\n", "Update");
	int b = upload(bob, "main", "y.csv", "id,name,legs\n1,hen,5\n", "Update");
	char want[64], from[200];
	t_resp r;

	CHECK(a > 0 && b > a);
	r = review(alice, a, "Approved");
	t_resp_free(&r);
	r = review(alice, b, "Approved");
	t_resp_free(&r);
	r = merge(alice, a);
	CHECK(r.status == 200);
	CHECK_STR(merge_wait(a, nz(t_str(&r, "operation_name"))), "Completed");
	t_resp_free(&r);
	r = get_pull(b);
	snprintf(from, sizeof(from), "%s", nz(t_str(&r, "from_branch_name")));
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "delete_branch_on_merge")));
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-X POST -d '{\"deleteBranchOnMerge\":true}' '%s/" DB "/pulls/%d/merge'",
	           alice, srv.base, b);
	CHECK(r.status == 200);
	CHECK_STR(merge_wait(b, nz(t_str(&r, "operation_name"))), "Failed");
	t_resp_free(&r);
	r = get_pull(b);
	CHECK_STR(t_str(&r, "state"), "Open");
	CHECK(cJSON_GetObjectItem(r.json, "branch_deleted") == NULL);
	t_resp_free(&r);
	CHECK(git_has_branch(from)); /* a failed merge deletes nothing */
	r = t_http(&srv, AUTH "'%s/" DB "/events?pageSize=100'", alice, srv.base);
	snprintf(want, sizeof(want), "\"action\":\"pull.merge\",\"target\":\"%d\"", a);
	CHECK_CONTAINS(r.body, want);
	snprintf(want, sizeof(want), "\"action\":\"pull.merge\",\"target\":\"%d\"", b);
	CHECK(strstr(r.body, want) == NULL);
	t_resp_free(&r);
	/* Opened with deleteBranchOnMerge, a pull says so. */
	r = t_http(&srv,
	           AUTH "-d '{\"title\":\"again\",\"fromBranchName\":\"%s\",\"toBranchName\":"
	                "\"main\",\"deleteBranchOnMerge\":true}' '%s/" DB "/pulls'",
	           alice, from, srv.base);
	CHECK(r.status == 409); /* b is open from it already */
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X PATCH -d '{\"state\":\"closed\"}' '%s/" DB "/pulls/%d'", alice,
	           srv.base, b);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"title\":\"again\",\"fromBranchName\":\"%s\",\"toBranchName\":"
	                "\"main\",\"deleteBranchOnMerge\":true}' '%s/" DB "/pulls'",
	           alice, from, srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "delete_branch_on_merge")));
	snprintf(want, sizeof(want), "%s", nz(t_str(&r, "pull_id")));
	t_resp_free(&r);
	r = get_pull(atoi(want));
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "delete_branch_on_merge")));
	t_resp_free(&r);
}

static void test_events(void)
{
	t_resp r = t_http(&srv, AUTH "'%s/" DB "/events?pageSize=100'", alice, srv.base);
	char want[64];

	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "\"action\":\"protection.set\"");
	CHECK_CONTAINS(r.body, "\"action\":\"collaborator.set\",\"target\":\"erin\"");
	snprintf(want, sizeof(want),
	         "\"actor\":\"alice\",\"action\":\"pull.merge\",\"target\":\"%d\"", pull1);
	CHECK_CONTAINS(r.body, want);
	CHECK_CONTAINS(r.body, "\"to_branch\":\"main\"");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/" DB "/events'", bob, srv.base);
	CHECK(r.status == 403);
	t_resp_free(&r);
}

static void test_no_secret_in_log(void)
{
	CHECK(t_secrets_check_log(&srv) == 0);
}

int main(void)
{
	const char *extra[] = { "--rate-per-address", "0", "--rate-per-token", "0", NULL };

	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, extra) < 0)
		return 1;
	alice = t_user(&srv, "alice");
	bob = t_user(&srv, "bob");
	carol = t_user(&srv, "carol");
	erin = t_user(&srv, "erin");
	frank = t_user(&srv, "frank");
	if (!alice || !bob || !carol || !erin || !frank) {
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	RUN(test_setup);
	RUN(test_bob_uploads_and_cannot_merge_alone);
	RUN(test_requested_reviewers);
	RUN(test_carol_reads_comments_only);
	RUN(test_viewer_role);
	RUN(test_alice_approves_then_a_push_makes_it_stale);
	RUN(test_changes_requested_block);
	RUN(test_list_filters);
	RUN(test_merge_role);
	RUN(test_alice_merges);
	RUN(test_failed_merge_records_nothing);
	RUN(test_events);
	RUN(test_no_secret_in_log);
	t_server_stop(&srv, SIGTERM);
	t_secrets_free();
	free(alice);
	free(bob);
	free(carol);
	free(erin);
	free(frank);
	t_rmdir(dir);
	TH_TEST_END();
}
