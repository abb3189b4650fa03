/* test_review.c: counting reviews under branch protection (src/review.c) on a real meta.sqlite:
 * the latest verdict per reviewer, "Reviewed" changing no verdict, reviewers without the write
 * role not counting (and no longer counting once they lose it), self-approval, stale approvals,
 * rejections, who may merge, and an unprotected branch. */
#include "harness.h"
#include "util.h"
#include "tablehub/meta.h"
#include "tablehub/meta_access.h"
#include "tablehub/review.h"

#define H1 "1111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222"

static th_meta *m;
static char *dir;
static int64_t db;
static th_pull_info pull;

static void add(const char *who, th_review_status st, const char *head)
{
	th_error err = { 0 };
	int64_t rid = 0;

	CHECK_OK(th_meta_pull_review_add(&rid, m, db, pull.pull_id, who, st, NULL, &err), &err);
	if (head != NULL)
		CHECK_OK(th_meta_review_set_head(m, db, pull.pull_id, rid, head, &err), &err);
}

static th_review_state eval(const char *head)
{
	th_review_state s;
	th_error err = { 0 };

	memset(&s, 0, sizeof(s));
	CHECK_OK(th_review_evaluate(&s, m, db, "alice", &pull, head, &err), &err);
	return s;
}

static void test_unprotected(void)
{
	th_review_state s = eval(H1);
	char rule[32];
	th_error err = { 0 };

	CHECK(!s.is_protected && s.mergeable && s.approvals == 0);
	CHECK_STR(s.review_status, "");
	CHECK_OK(th_review_may_merge(rule, &s, TH_ROLE_WRITE, &err), &err);
	/* Self-approval is no matter without protection; a reader's approval never counts. */
	add("bob", TH_REVIEW_APPROVED, H1);
	add("rita", TH_REVIEW_APPROVED, H1);
	s = eval(H1);
	CHECK(s.approvals == 1);
	CHECK_STR(s.review_status, "Approved");
	CHECK(th_review_may_approve(rule, NULL, "bob", "bob", &err) == TH_OK);
}

static void test_protected(void)
{
	th_protection p = { "main", 2, 0, 1, TH_ROLE_WRITE, "", 0 };
	th_error err = { 0 };
	th_review_state s;
	char rule[32];

	CHECK_OK(th_meta_protection_set(m, db, &p, "alice", NULL, &err), &err);
	CHECK(th_review_may_approve(rule, &p, "bob", "bob", &err) == TH_ECONFLICT);
	CHECK_STR(rule, "allowSelfApproval");
	/* bob's own approval (the author's) does not count; rita's never does. */
	s = eval(H1);
	CHECK(s.is_protected && s.approvals == 0 && !s.mergeable);
	CHECK_STR(s.rule, "requiredApprovals");
	CHECK_STR(s.review_status, "Reviewed");
	add("will", TH_REVIEW_APPROVED, H1);
	add("adam", TH_REVIEW_APPROVED, H1);
	s = eval(H1);
	CHECK(s.approvals == 2 && s.mergeable);
	CHECK_STR(s.review_status, "Approved");
	CHECK_OK(th_review_may_merge(rule, &s, TH_ROLE_WRITE, &err), &err);
	/* A later "Reviewed" keeps will's approval; a new head makes both stale. */
	add("will", TH_REVIEW_REVIEWED, H2);
	CHECK(eval(H1).approvals == 2);
	s = eval(H2);
	CHECK(s.approvals == 0 && !s.mergeable);
	CHECK(th_review_may_merge(rule, &s, TH_ROLE_ADMIN, &err) == TH_ECONFLICT);
	CHECK_STR(rule, "requiredApprovals");
	CHECK(eval(NULL).approvals == 0); /* the branch is gone: nothing is current */
	add("will", TH_REVIEW_APPROVED, H2);
	add("adam", TH_REVIEW_REJECTED, H2);
	s = eval(H2);
	CHECK(s.approvals == 1 && s.rejections == 1 && !s.mergeable);
	CHECK_STR(s.rejected_by, "adam");
	CHECK_STR(s.review_status, "Rejected");
	add("adam", TH_REVIEW_APPROVED, H2);
	s = eval(H2);
	CHECK(s.approvals == 2 && s.rejections == 0 && s.mergeable);
	/* A reviewer who loses the write role no longer counts. */
	CHECK_OK(th_meta_collab_set(NULL, m, db, "adam", TH_ROLE_READ, NULL, &err), &err);
	CHECK(eval(H2).approvals == 1);
	CHECK_OK(th_meta_collab_set(NULL, m, db, "adam", TH_ROLE_ADMIN, NULL, &err), &err);
	/* mergeRole admin: a writer is refused even when the approvals are there. */
	p.merge_role = TH_ROLE_ADMIN;
	CHECK_OK(th_meta_protection_set(m, db, &p, "alice", NULL, &err), &err);
	s = eval(H2);
	CHECK(s.mergeable);
	CHECK(th_review_may_merge(rule, &s, TH_ROLE_WRITE, &err) == TH_ECONFLICT);
	CHECK_STR(rule, "mergeRole");
	CHECK_OK(th_review_may_merge(rule, &s, TH_ROLE_ADMIN, &err), &err);
	/* With self-approval allowed, bob's counts too. */
	p.allow_self_approval = 1;
	p.required_approvals = 3;
	CHECK_OK(th_meta_protection_set(m, db, &p, "alice", NULL, &err), &err);
	add("bob", TH_REVIEW_APPROVED, H2);
	CHECK(eval(H2).approvals == 3);
	/* A closed pull is not mergeable, whatever its reviews. */
	pull.state = TH_PULL_CLOSED;
	s = eval(H2);
	CHECK(!s.mergeable);
	CHECK(th_review_may_merge(rule, &s, TH_ROLE_ADMIN, &err) == TH_ECONFLICT);
	CHECK_STR(rule, "");
	pull.state = TH_PULL_OPEN;
}

int main(void)
{
	char tok[TH_TOKEN_SIZE];
	th_error err = { 0 };
	th_db_info d;
	const char *users[] = { "alice", "bob", "will", "adam", "rita" };

	dir = t_mkdtemp();
	if (th_meta_open(&m, dir, &err) < 0)
		return 1;
	for (size_t i = 0; i < 5; i++)
		if (th_meta_user_create(tok, m, users[i], &err) < 0)
			return 1;
	if (th_meta_db_create(m, "alice", "farm", "", 0, &err) < 0 ||
	    th_meta_db_get(&d, m, "alice", "farm", &err) < 0)
		return 1;
	db = d.id;
	th_db_info_dispose(&d);
	if (th_meta_collab_set(NULL, m, db, "will", TH_ROLE_WRITE, NULL, &err) < 0 ||
	    th_meta_collab_set(NULL, m, db, "adam", TH_ROLE_ADMIN, NULL, &err) < 0 ||
	    th_meta_collab_set(NULL, m, db, "bob", TH_ROLE_WRITE, NULL, &err) < 0 ||
	    th_meta_collab_set(NULL, m, db, "rita", TH_ROLE_READ, NULL, &err) < 0 ||
	    th_meta_pull_create(&pull.pull_id, m, db, "t", NULL, "bob", "bob/x", "main", &err) < 0)
		return 1;
	pull.db_id = db;
	snprintf(pull.author, sizeof(pull.author), "bob");
	pull.from_branch = "bob/x";
	pull.to_branch = "main";
	pull.state = TH_PULL_OPEN;
	RUN(test_unprotected);
	RUN(test_protected);
	th_meta_close(m);
	t_rmdir(dir);
	TH_TEST_END();
}
