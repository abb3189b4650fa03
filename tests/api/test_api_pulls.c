/* test_api_pulls.c: pull requests end to end against a real `tablehub serve`, driven with curl: an
 * upload opens a pull, its diff is paged and filtered, it is merged as an operation and polled;
 * two uploads touching different rows, or different cells of one row, both merge and main holds
 * both (checked with `tablehub export` and `tablehub diff`); the same cell changed twice is a
 * conflict listed by the preview and by the failed merge, and nothing changes; comments, reviews,
 * closing, who may do what, 409 for merging a merged or closed pull; and a private database hides
 * its pulls. */
#include "../harness.h"
#include "server.h"

static t_server srv;
static char *dir, *alice, *bob;

static char *write_tmp(const char *name, const char *text)
{
	return t_write_in(dir, name, text);
}

/* `tablehub export` of a table at main as CSV (malloc'd), or NULL. */
static char *export_main(const char *db, const char *table)
{
	char *out = NULL;

	if (t_sh(&out, "'%s' export --data '%s' %s main '%s' 2>&1", TH_BIN, dir, db, table) != 0) {
		fprintf(stderr, "export failed: %s\n", nz(out));
		free(out);
		return NULL;
	}
	return out;
}

/* Upload `csv` into table t of alice/shop on main with `op`; wait for the import; return the pull
 * id it opened (0 on failure). */
static int upload(const char *name, const char *csv, const char *op, const char *db)
{
	char params[512], opname[256];
	char *file = write_tmp(name, csv);
	t_resp r;
	int pull = 0;

	snprintf(params, sizeof(params),
	         "{\"tableName\":\"t\",\"fileName\":\"%s\",\"branchName\":\"main\","
	         "\"fileType\":\"Csv\",\"importOp\":\"%s\",\"primaryKeys\":[\"id\"]}",
	         name, op);
	r = t_upload(&srv, alice, db, file, params);
	CHECK(r.status == 200);
	snprintf(opname, sizeof(opname), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, db, opname, 120);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	if (t_str(&r, "pull_id"))
		pull = atoi(t_str(&r, "pull_id"));
	if (pull == 0)
		fprintf(stderr, "upload %s: %s\n", name, r.body);
	t_resp_free(&r);
	free(file);
	return pull;
}

/* POST merge of pull `id` of `db` and poll the operation to its end; returns the last poll. */
static t_resp merge(const char *db, int id)
{
	char opname[256];
	time_t end = time(NULL) + 60;
	t_resp r = t_http(&srv, AUTH "-X POST '%s/%s/pulls/%d/merge'", alice, srv.base, db, id);

	CHECK(r.status == 200);
	if (r.status != 200) {
		fprintf(stderr, "merge %d: %s\n", id, r.body);
		return r;
	}
	CHECK(atoi(nz(t_str(&r, "pull_id"))) == id);
	CHECK(strncmp(nz(t_str(&r, "operation_name")), "repositoryOwners/", 17) == 0);
	CHECK(strncmp(nz(t_str(&r, "user_operation_name")), "users/alice/userOperations/", 27) ==
	      0);
	snprintf(opname, sizeof(opname), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	for (;;) {
		const char *st;
		r = t_http(&srv,
		           "-G " AUTH "--data-urlencode 'operationName=%s' '%s/%s/pulls/%d/merge'",
		           alice, opname, srv.base, db, id);
		st = t_str(&r, "job_status");
		if (r.status != 200 || st == NULL || strcmp(st, "Completed") == 0 ||
		    strcmp(st, "Failed") == 0 || time(NULL) > end)
			return r;
		t_resp_free(&r);
		t_sleep_ms(20);
	}
}

static void check_pull_state(const char *db, int id, const char *state)
{
	t_resp r = t_http(&srv, AUTH "'%s/%s/pulls/%d'", alice, srv.base, db, id);

	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "state"), state);
	t_resp_free(&r);
}

static void test_setup(void)
{
	t_resp r;
	int pull;

	r = t_http(&srv,
	           AUTH
	           "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\",\"visibility\":\"public\"}' "
	           "'%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	pull = upload("base.csv", "id,name,score\n1,a,10\n2,b,20\n3,c,30\n4,d,40\n5,e,50\n",
	              "Create", "alice/shop");
	CHECK(pull == 1);
	r = merge("alice/shop", pull);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	CHECK(strlen(nz(t_str(&r, "merge_commit"))) == 40);
	t_resp_free(&r);
	check_pull_state("alice/shop", 1, "Merged");
}

/* The diff of a pull: summary, rows with before/after, filters, pages. */
static void test_diff(void)
{
	int pull = upload("d.csv", "id,name,score\n1,a,11\n2,b,20\n4,d,40\n5,E,55\n9,new,90\n",
	                  "Replace", "alice/shop");
	const cJSON *t, *rows, *row;
	char token[1024] = "";
	int pages = 0, listed = 0;
	t_resp r;

	CHECK(pull == 2);
	r = t_http(&srv, "'%s/alice/shop/pulls/%d/diff'", srv.base, pull); /* public: no token */
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "status"), "Success");
	CHECK_STR(t_str(&r, "pull_id"), "2");
	t = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "tables"), 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "table_name")), "t");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "diff_type")), "modified");
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "rows_added")) == 1);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "rows_modified")) == 2);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "rows_removed")) == 1);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "cells_modified")) == 3);
	rows = cJSON_GetObjectItem(r.json, "rows");
	CHECK(cJSON_GetArraySize(rows) == 4);
	row = cJSON_GetArrayItem(rows, 2); /* key 5: name and score changed */
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(row, "key")), "5");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(row, "diff_type")), "modified");
	CHECK_STR(cJSON_GetStringValue(
	                  cJSON_GetObjectItem(cJSON_GetObjectItem(row, "before"), "name")),
	          "e");
	CHECK_STR(cJSON_GetStringValue(
	                  cJSON_GetObjectItem(cJSON_GetObjectItem(row, "after"), "name")),
	          "E");
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(row, "changed_columns")) == 2);
	CHECK_STR(t_str(&r, "next_page_token"), "");
	t_resp_free(&r);

	r = t_http(&srv, "'%s/alice/shop/pulls/%d/diff?type=removed'", srv.base, pull);
	rows = cJSON_GetObjectItem(r.json, "rows");
	CHECK(cJSON_GetArraySize(rows) == 1);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "key")),
	          "3");
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "after")));
	t_resp_free(&r);

	r = t_http(&srv, "'%s/alice/shop/pulls/%d/diff?type=bogus'", srv.base, pull);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'type'");
	t_resp_free(&r);

	r = t_http(&srv, "'%s/alice/shop/pulls/%d/diff?table=other'", srv.base, pull);
	CHECK(r.status == 200);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "rows")) == 0);
	t_resp_free(&r);

	/* Pages of one row each list every row once. */
	for (;;) {
		r = t_http(&srv,
		           "-G --data-urlencode 'pageToken=%s' "
		           "'%s/alice/shop/pulls/%d/diff?pageSize=1'",
		           token, srv.base, pull);
		CHECK(r.status == 200);
		listed += cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "rows"));
		snprintf(token, sizeof(token), "%s", nz(t_str(&r, "next_page_token")));
		t_resp_free(&r);
		if (!*token || ++pages > 10)
			break;
	}
	CHECK(listed == 4);
	CHECK(pages == 3);

	r = t_http(&srv, "'%s/alice/shop/pulls/%d/diff?pageToken=xyz'", srv.base, pull);
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/pulls/99/diff'", srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);

	/* tablehub diff prints the same locally. */
	{
		char *out = NULL, *from = NULL;
		t_resp p = t_http(&srv, "'%s/alice/shop/pulls/%d'", srv.base, pull);
		from = strdup(nz(t_str(&p, "from_branch_name")));
		t_resp_free(&p);
		CHECK(t_sh(&out, "'%s' diff --data '%s' --merge-base alice/shop main '%s'", TH_BIN,
		           dir, from) == 0);
		CHECK_CONTAINS(out,
		               "diff t (modified)\n< [1,\"a\",10]\n> [1,\"a\",11]\n- "
		               "[3,\"c\",30]\n< [5,\"e\",50]\n> [5,\"E\",55]\n+ [9,\"new\",90]\n"
		               "t: 1 added, 2 modified, 1 removed, 3 cells modified\n");
		free(out);
		out = NULL;
		CHECK(t_sh(&out, "'%s' diff --data '%s' --stat alice/shop main '%s'", TH_BIN, dir,
		           from) == 0);
		CHECK_STR(out, "diff t (modified)\nt: 1 added, 2 modified, 1 removed, 3 cells "
		               "modified\n");
		free(out);
		out = NULL;
		CHECK(t_sh(&out, "'%s' diff --data '%s' alice/shop main nosuch 2>&1", TH_BIN,
		           dir) == 1);
		CHECK_CONTAINS(out, "revision 'nosuch' not found");
		free(out);
		out = NULL;
		CHECK(t_sh(&out, "'%s' diff --data '%s' alice/shop main 2>&1", TH_BIN, dir) == 2);
		CHECK_CONTAINS(out, "expected: diff");
		free(out);
		free(from);
	}
	/* Close it: it is not merged. */
	r = t_http(&srv, AUTH "-X PATCH -d '{\"state\":\"closed\"}' '%s/alice/shop/pulls/%d'",
	           alice, srv.base, pull);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "state"), "Closed");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X POST '%s/alice/shop/pulls/%d/merge'", alice, srv.base, pull);
	CHECK(r.status == 409);
	CHECK_CONTAINS(t_str(&r, "message"), "Closed");
	t_resp_free(&r);
}

/* Two uploads touching different rows, then different cells of one row: all merge. */
static void test_merge_rows_and_cells(void)
{
	int p1 = upload("r1.csv", "id,name\n2,B1\n", "Update", "alice/shop");
	int p2 = upload("r2.csv", "id,score\n4,444\n", "Update", "alice/shop");
	int p3 = upload("c1.csv", "id,name\n3,C-name\n", "Update", "alice/shop");
	int p4 = upload("c2.csv", "id,score\n3,333\n", "Update", "alice/shop");
	t_resp r;
	char *csv;

	r = merge("alice/shop", p1);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	t_resp_free(&r);
	r = merge("alice/shop", p2);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	t_resp_free(&r);
	r = merge("alice/shop", p3);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/pulls/%d/conflicts'", srv.base, p4);
	CHECK(r.status == 200);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "mergeable")));
	t_resp_free(&r);
	r = merge("alice/shop", p4);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	CHECK_STR(t_str(&r, "pull_state"), "Merged");
	t_resp_free(&r);
	csv = export_main("alice/shop", "t");
	CHECK_STR(csv, "id,name,score\n1,a,10\n2,B1,20\n3,C-name,333\n4,d,444\n5,e,50\n");
	free(csv);
	check_pull_state("alice/shop", p4, "Merged");

	/* The merged pull records its merge commit, a commit with two parents on main. */
	r = t_http(&srv, "'%s/alice/shop/pulls/%d'", srv.base, p4);
	CHECK(strlen(nz(t_str(&r, "merge_commit"))) == 40);
	{
		char *log = NULL;
		CHECK(t_sh(&log,
		           "git --git-dir='%s/repos/alice/shop.git' log -1 --format='%%P|%%s' "
		           "main",
		           dir) == 0);
		CHECK_CONTAINS(log, "|Merge pull request #");
		CHECK(strchr(nz(log), ' ') != NULL && strchr(nz(log), ' ') < strchr(nz(log), '|'));
		free(log);
	}
	t_resp_free(&r);

	/* Merging it again is a conflict with its state. */
	r = t_http(&srv, AUTH "-X POST '%s/alice/shop/pulls/%d/merge'", alice, srv.base, p4);
	CHECK(r.status == 409);
	CHECK_CONTAINS(t_str(&r, "message"), "Merged");
	t_resp_free(&r);
}

/* The same cell changed on both sides: conflict previewed and reported; nothing changes. */
static void test_conflict(void)
{
	int p1 = upload("x1.csv", "id,name\n1,first\n", "Update", "alice/shop");
	int p2 = upload("x2.csv", "id,name\n1,second\n", "Update", "alice/shop");
	const cJSON *c;
	char *before, *after, opname[256];
	t_resp r;

	r = merge("alice/shop", p1);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	t_resp_free(&r);
	before = export_main("alice/shop", "t");

	r = t_http(&srv, "'%s/alice/shop/pulls/%d/conflicts'", srv.base, p2);
	CHECK(r.status == 200);
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "mergeable")));
	CHECK(t_num(&r, "conflicts_total") == 1);
	t_resp_free(&r);

	r = merge("alice/shop", p2);
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_CONTAINS(t_str(&r, "message"), "merge conflict");
	CHECK_STR(t_str(&r, "pull_state"), "Open");
	c = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "conflicts"), 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "table")), "t");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "key")), "1");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "column")), "name");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "base")), "a");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "ours")), "first");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "theirs")), "second");
	snprintf(opname, sizeof(opname), "%s",
	         t_str(&r, "operation_name") ? t_str(&r, "operation_name") : "");
	t_resp_free(&r);
	check_pull_state("alice/shop", p2, "Open");
	after = export_main("alice/shop", "t");
	CHECK_STR(after, before);
	CHECK_CONTAINS(after, "1,first,10\n");

	/* The conflicts were stored with the failed operation: still listed after the pull closed.
	 */
	r = t_http(&srv, AUTH "-X PATCH -d '{\"state\":\"closed\"}' '%s/alice/shop/pulls/%d'",
	           alice, srv.base, p2);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-G --data-urlencode 'operationName=%s' '%s/alice/shop/pulls/%d/merge'",
	           alice, opname, srv.base, p2);
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK(t_num(&r, "conflicts_total") == 1);
	c = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "conflicts"), 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "theirs")), "second");
	t_resp_free(&r);
	free(before);
	free(after);
}

/* Give `user` `role` on alice/shop. */
static void set_role(const char *user, const char *role)
{
	t_resp r =
	        t_http(&srv, AUTH "-X PUT -d '{\"role\":\"%s\"}' '%s/alice/shop/collaborators/%s'",
	               alice, role, srv.base, user);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "role"), role);
	t_resp_free(&r);
}

/* Creating pulls, comments and reviews, and who may do what. */
static void test_review_and_permissions(void)
{
	const cJSON *a;
	t_resp r;
	int id;

	r = t_http(&srv,
	           AUTH "-d '{\"revisionType\":\"branch\",\"revisionName\":\"main\","
	                "\"newBranchName\":\"feature\"}' '%s/alice/shop/branches'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	/* Opening a pull request needs the write role: bob has none until alice gives it. */
	r = t_http(&srv,
	           AUTH "-d '{\"title\":\"Feature\",\"description\":\"d\",\"fromBranchName\":"
	                "\"feature\",\"toBranchName\":\"main\"}' '%s/alice/shop/pulls'",
	           bob, srv.base);
	CHECK(r.status == 403);
	CHECK_CONTAINS(t_str(&r, "message"), "this needs the write role on 'alice/shop'");
	t_resp_free(&r);
	set_role("bob", "write");
	r = t_http(&srv,
	           AUTH "-d '{\"title\":\"Feature\",\"description\":\"d\",\"fromBranchName\":"
	                "\"feature\",\"toBranchName\":\"main\"}' '%s/alice/shop/pulls'",
	           bob, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "title"), "Feature");
	CHECK_STR(t_str(&r, "from_branch_name"), "feature");
	CHECK_STR(t_str(&r, "to_branch_name"), "main");
	id = atoi(nz(t_str(&r, "pull_id")));
	CHECK(id > 0);
	t_resp_free(&r);
	/* The same pair again while open, a missing branch, no branch. */
	r = t_http(&srv, AUTH "-d '{\"fromBranchName\":\"feature\"}' '%s/alice/shop/pulls'", bob,
	           srv.base);
	CHECK(r.status == 409);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"fromBranchName\":\"nope\"}' '%s/alice/shop/pulls'", bob,
	           srv.base);
	CHECK(r.status == 404);
	CHECK_CONTAINS(t_str(&r, "message"), "branch 'nope' not found");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"title\":\"x\"}' '%s/alice/shop/pulls'", bob, srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "fromBranchName");
	t_resp_free(&r);
	r = t_http(&srv, "-d '{\"fromBranchName\":\"feature\"}' '%s/alice/shop/pulls'", srv.base);
	CHECK(r.status == 401);
	t_resp_free(&r);

	/* Readers signed in comment, writers review; both show on the pull. */
	r = t_http(&srv, AUTH "-d '{\"comment\":\"looks good\"}' '%s/alice/shop/pulls/%d/comments'",
	           bob, srv.base, id);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "comment"), "looks good");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"comment\":\"\"}' '%s/alice/shop/pulls/%d/comments'", bob,
	           srv.base, id);
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"reviewStatus\":\"Approved\",\"comment\":\"ship it\"}' "
	                "'%s/alice/shop/pulls/%d/reviews'",
	           alice, srv.base, id);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "review_status"), "Approved");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"reviewStatus\":\"Meh\"}' '%s/alice/shop/pulls/%d/reviews'",
	           bob, srv.base, id);
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"reviewStatus\":\"rejected\"}' '%s/alice/shop/pulls/%d/reviews'",
	           bob, srv.base, id);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/pulls/%d'", srv.base, id);
	CHECK(r.status == 200);
	a = cJSON_GetObjectItem(r.json, "comments");
	CHECK(cJSON_GetArraySize(a) == 1);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "comment")),
	          "looks good");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "author")),
	          "bob");
	a = cJSON_GetObjectItem(r.json, "reviews");
	CHECK(cJSON_GetArraySize(a) == 2);
	CHECK_STR(cJSON_GetStringValue(
	                  cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "review_status")),
	          "Approved");
	CHECK_STR(cJSON_GetStringValue(
	                  cJSON_GetObjectItem(cJSON_GetArrayItem(a, 1), "review_status")),
	          "Rejected");
	t_resp_free(&r);

	/* Merging needs the write role: bob, made a reader, may not; as the author he may still
	 * retitle his pull. */
	set_role("bob", "read");
	r = t_http(&srv, AUTH "-X POST '%s/alice/shop/pulls/%d/merge'", bob, srv.base, id);
	CHECK(r.status == 403);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X PATCH -d '{\"title\":\"Feature 2\"}' '%s/alice/shop/pulls/%d'",
	           bob, srv.base, id);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "title"), "Feature 2");
	CHECK_STR(t_str(&r, "state"), "Open");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X PATCH -d '{\"state\":\"open\"}' '%s/alice/shop/pulls/%d'", bob,
	           srv.base, id);
	CHECK(r.status == 400);
	t_resp_free(&r);

	/* The list filters by state. */
	r = t_http(&srv, "'%s/alice/shop/pulls?filterByState=Open'", srv.base);
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "\"title\":\"Feature 2\"");
	t_resp_free(&r);
}

/* The merge poll takes an operation name as the upload poll does (one parser): the job name, the
 * user's operation name or the bare uuid; a job name of another database is 404, anything else
 * 400 saying what is wanted. */
static void test_merge_poll_names(void)
{
	int pull = upload("names.csv", "id,name\n1,named\n", "Update", "alice/shop");
	char job[256], userop[256], bare[64], other[300];
	t_resp r =
	        t_http(&srv, AUTH "-X POST '%s/alice/shop/pulls/%d/merge'", alice, srv.base, pull);
	const char *const *name;

	CHECK(r.status == 200);
	snprintf(job, sizeof(job), "%s", nz(t_str(&r, "operation_name")));
	snprintf(userop, sizeof(userop), "%s", nz(t_str(&r, "user_operation_name")));
	t_resp_free(&r);
	CHECK(strncmp(job, "repositoryOwners/alice/repositories/shop/jobs/", 46) == 0);
	snprintf(bare, sizeof(bare), "%.40s", job + 46);
	CHECK(strlen(bare) == 36);
	CHECK_STR(userop + strlen("users/alice/userOperations/"), bare);
	snprintf(other, sizeof(other), "repositoryOwners/bob/repositories/shop/jobs/%s", bare);
	for (name = (const char *const[]){ job, userop, bare, NULL }; *name; name++) {
		r = t_http(&srv,
		           "-G " AUTH "--data-urlencode 'operationName=%s' "
		           "'%s/alice/shop/pulls/%d/merge'",
		           alice, *name, srv.base, pull);
		CHECK(r.status == 200);
		CHECK_STR(t_str(&r, "operation_name"), *name);
		CHECK(t_str(&r, "job_status") != NULL);
		t_resp_free(&r);
	}
	r = t_http(&srv,
	           "-G " AUTH "--data-urlencode 'operationName=%s' '%s/alice/shop/pulls/%d/merge'",
	           alice, other, srv.base, pull);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/pulls/%d/merge?operationName=foo/bar'", alice,
	           srv.base, pull);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"),
	               "'operationName' is not an operation name: 'foo/bar' (want "
	               "repositoryOwners/alice/repositories/shop/jobs/<id>)");
	t_resp_free(&r);
	/* Let the merge end before the next test. */
	for (time_t end = time(NULL) + 60;;) {
		const char *st;
		r = t_http(&srv,
		           "-G " AUTH "--data-urlencode 'operationName=%s' "
		           "'%s/alice/shop/pulls/%d/merge'",
		           alice, job, srv.base, pull);
		st = nz(t_str(&r, "job_status"));
		if (strcmp(st, "Completed") == 0 || strcmp(st, "Failed") == 0 || time(NULL) > end) {
			CHECK_STR(st, "Completed");
			t_resp_free(&r);
			break;
		}
		t_resp_free(&r);
		t_sleep_ms(20);
	}
}

/* Upload `csv` into `table` of `db` on `branch` with `op` and primary keys `pk_json` (a JSON
 * array); wait for the import and merge its pull into `branch`. */
static void upload_merged(const char *db, const char *table, const char *branch, const char *csv,
                          const char *op, const char *pk_json)
{
	char params[512], opname[256];
	char *file = write_tmp("shape.csv", csv);
	t_resp r;
	int pull = 0;

	snprintf(params, sizeof(params),
	         "{\"tableName\":\"%s\",\"fileName\":\"shape.csv\",\"branchName\":\"%s\","
	         "\"fileType\":\"Csv\",\"importOp\":\"%s\",\"primaryKeys\":%s}",
	         table, branch, op, pk_json);
	r = t_upload(&srv, alice, db, file, params);
	CHECK(r.status == 200);
	snprintf(opname, sizeof(opname), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, db, opname, 120);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	pull = atoi(nz(t_str(&r, "pull_id")));
	t_resp_free(&r);
	free(file);
	r = merge(db, pull);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	t_resp_free(&r);
}

/* Check `body` against `want`, in which @BASE@ and @HEAD@ stand for the diff's merge base and
 * head commit ids (read from the body itself, and checked to be commit ids). */
static void check_diff_body(const t_resp *r, const char *want)
{
	const char *base = nz(t_str(r, "merge_base")), *head = nz(t_str(r, "to_commit_id"));
	char expect[16384], *o = expect;
	const char *p;

	CHECK(strlen(base) == 40 && strlen(head) == 40);
	CHECK_STR(nz(t_str(r, "from_commit_id")), base);
	for (p = want; *p && o < expect + sizeof(expect) - 41;) {
		if (strncmp(p, "@BASE@", 6) == 0 || strncmp(p, "@HEAD@", 6) == 0) {
			o += snprintf(o, 41, "%s", p[1] == 'B' ? base : head);
			p += 6;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	CHECK_STR(r->body, expect);
}

/* The diff body, byte for byte: tables added and modified, columns added, dropped and retyped, a
 * changed key (rows listed removed, then added), a keyless table (counts), NULLs, the type filter
 * and a page token. */
static void test_diff_bytes(void)
{
	t_resp r;
	int id;

	r = t_http(&srv,
	           AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shapes\",\"visibility\":"
	                "\"public\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	upload_merged("alice/shapes", "t", "main", "id,name,score\n1,a,10\n2,b,20\n3,c,\n",
	              "Create", "[\"id\"]");
	upload_merged("alice/shapes", "k", "main", "a,b\nx,1\ny,2\n", "Create", "[]");
	upload_merged("alice/shapes", "u", "main", "id,code,v\n1,A,10\n2,B,20\n", "Create",
	              "[\"id\"]");
	r = t_http(&srv,
	           AUTH "-d '{\"revisionType\":\"branch\",\"revisionName\":\"main\","
	                "\"newBranchName\":\"dev\"}' '%s/alice/shapes/branches'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	upload_merged("alice/shapes", "t", "dev", "id,score,extra\n1,1.5,x\n2,20,\n4,,\"q\"\"\"\n",
	              "Overwrite", "[\"id\"]");
	upload_merged("alice/shapes", "k", "dev", "a,b\nx,1\nx,1\nx,1\nz,3\n", "Replace", "[]");
	upload_merged("alice/shapes", "u", "dev", "id,code,v\n1,A,10\n2,B,21\n", "Overwrite",
	              "[\"code\"]");
	upload_merged("alice/shapes", "n", "dev", "id\n1\n", "Create", "[\"id\"]");
	r = t_http(&srv,
	           AUTH "-d '{\"title\":\"shapes\",\"fromBranchName\":\"dev\"}' "
	                "'%s/alice/shapes/pulls'",
	           alice, srv.base);
	CHECK(r.status == 200);
	id = atoi(nz(t_str(&r, "pull_id")));
	t_resp_free(&r);

	r = t_http(&srv, "'%s/alice/shapes/pulls/%d/diff'", srv.base, id);
	CHECK(r.status == 200);
	check_diff_body(
	        &r,
	        "{\"status\":\"Success\",\"database_owner\":\"alice\",\"database_name\":\"shapes\","
	        "\"pull_id\":\"8\",\"merge_base\":\"@BASE@\",\"from_commit_id\":\"@BASE@\","
	        "\"to_commit_id\":\"@HEAD@\",\"tables\":["
	        "{\"table_name\":\"k\",\"diff_type\":\"modified\",\"schema_change\":false,"
	        "\"key_changed\":false,\"columns_added\":[],\"columns_dropped\":[],"
	        "\"columns_retyped\":[],\"from_primary_key\":[],\"to_primary_key\":[],"
	        "\"rows_added\":3,\"rows_modified\":0,\"rows_removed\":1,\"cells_modified\":0},"
	        "{\"table_name\":\"n\",\"diff_type\":\"added\",\"schema_change\":false,"
	        "\"key_changed\":false,\"columns_added\":[],\"columns_dropped\":[],"
	        "\"columns_retyped\":[],\"from_primary_key\":null,\"to_primary_key\":[\"id\"],"
	        "\"rows_added\":1,\"rows_modified\":0,\"rows_removed\":0,\"cells_modified\":0},"
	        "{\"table_name\":\"t\",\"diff_type\":\"modified\",\"schema_change\":true,"
	        "\"key_changed\":false,\"columns_added\":[\"extra\"],"
	        "\"columns_dropped\":[\"name\"],\"columns_retyped\":[{\"column_name\":\"score\","
	        "\"from_type\":\"integer\","
	        "\"to_type\":\"real\"}],\"from_primary_key\":[\"id\"],\"to_primary_key\":[\"id\"],"
	        "\"rows_added\":1,\"rows_modified\":2,\"rows_removed\":1,\"cells_modified\":4},"
	        "{\"table_name\":\"u\",\"diff_type\":\"modified\",\"schema_change\":true,"
	        "\"key_changed\":true,\"columns_added\":[],\"columns_dropped\":[],"
	        "\"columns_retyped\":[],\"from_primary_key\":[\"id\"],"
	        "\"to_primary_key\":[\"code\"],\"rows_added\":2,\"rows_modified\":0,"
	        "\"rows_removed\":2,\"cells_modified\":0}],"
	        "\"rows\":["
	        "{\"table_name\":\"k\",\"diff_type\":\"added\",\"key\":\"('x', 1)\",\"count\":2,"
	        "\"before\":null,\"after\":{\"a\":\"x\",\"b\":\"1\"}},"
	        "{\"table_name\":\"k\",\"diff_type\":\"removed\",\"key\":\"('y', 2)\",\"count\":1,"
	        "\"before\":{\"a\":\"y\",\"b\":\"2\"},\"after\":null},"
	        "{\"table_name\":\"k\",\"diff_type\":\"added\",\"key\":\"('z', 3)\",\"count\":1,"
	        "\"before\":null,\"after\":{\"a\":\"z\",\"b\":\"3\"}},"
	        "{\"table_name\":\"n\",\"diff_type\":\"added\",\"key\":\"1\",\"before\":null,"
	        "\"after\":{\"id\":\"1\"}},"
	        "{\"table_name\":\"t\",\"diff_type\":\"modified\",\"key\":\"1\","
	        "\"before\":{\"id\":\"1\",\"name\":\"a\",\"score\":\"10\"},"
	        "\"after\":{\"id\":\"1\",\"score\":\"1.5\",\"extra\":\"x\"},"
	        "\"changed_columns\":[\"score\",\"extra\",\"name\"]},"
	        "{\"table_name\":\"t\",\"diff_type\":\"modified\",\"key\":\"2\","
	        "\"before\":{\"id\":\"2\",\"name\":\"b\",\"score\":\"20\"},"
	        "\"after\":{\"id\":\"2\",\"score\":\"20\",\"extra\":null},"
	        "\"changed_columns\":[\"name\"]},"
	        "{\"table_name\":\"t\",\"diff_type\":\"removed\",\"key\":\"3\","
	        "\"before\":{\"id\":\"3\",\"name\":\"c\",\"score\":null},\"after\":null},"
	        "{\"table_name\":\"t\",\"diff_type\":\"added\",\"key\":\"4\",\"before\":null,"
	        "\"after\":{\"id\":\"4\",\"score\":null,\"extra\":\"q\\\"\"}},"
	        "{\"table_name\":\"u\",\"diff_type\":\"removed\",\"key\":\"1\","
	        "\"before\":{\"id\":\"1\",\"code\":\"A\",\"v\":\"10\"},\"after\":null},"
	        "{\"table_name\":\"u\",\"diff_type\":\"removed\",\"key\":\"2\","
	        "\"before\":{\"id\":\"2\",\"code\":\"B\",\"v\":\"20\"},\"after\":null},"
	        "{\"table_name\":\"u\",\"diff_type\":\"added\",\"key\":\"'A'\",\"before\":null,"
	        "\"after\":{\"id\":\"1\",\"code\":\"A\",\"v\":\"10\"}},"
	        "{\"table_name\":\"u\",\"diff_type\":\"added\",\"key\":\"'B'\",\"before\":null,"
	        "\"after\":{\"id\":\"2\",\"code\":\"B\",\"v\":\"21\"}}],"
	        "\"next_page_token\":\"\"}");
	t_resp_free(&r);

	/* Modified and removed rows, three a page: the token names the last row listed. */
	r = t_http(&srv, "'%s/alice/shapes/pulls/%d/diff?type=modified,removed&pageSize=3'",
	           srv.base, id);
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body,
	               "\"rows\":[{\"table_name\":\"k\",\"diff_type\":\"removed\",\"key\":\"('y', "
	               "2)\",\"count\":1,\"before\":{\"a\":\"y\",\"b\":\"2\"},\"after\":null},"
	               "{\"table_name\":\"t\",\"diff_type\":\"modified\",\"key\":\"1\",");
	CHECK_CONTAINS(r.body, "\"changed_columns\":[\"name\"]}],"
	                       "\"next_page_token\":\"740000028000000000000002\"}");
	t_resp_free(&r);
	r = t_http(&srv,
	           "'%s/alice/shapes/pulls/%d/diff?type=modified,removed&pageSize=3&pageToken="
	           "740000028000000000000002'",
	           srv.base, id);
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body,
	               "\"rows\":[{\"table_name\":\"t\",\"diff_type\":\"removed\",\"key\":\"3\","
	               "\"before\":{\"id\":\"3\",\"name\":\"c\",\"score\":null},\"after\":null},"
	               "{\"table_name\":\"u\",\"diff_type\":\"removed\",\"key\":\"1\",");
	CHECK_CONTAINS(r.body, "\"v\":\"20\"},\"after\":null}],\"next_page_token\":\"\"}");
	t_resp_free(&r);
	/* One table only; a table not in the diff lists nothing. */
	r = t_http(&srv, "'%s/alice/shapes/pulls/%d/diff?table=n'", srv.base, id);
	check_diff_body(
	        &r,
	        "{\"status\":\"Success\",\"database_owner\":\"alice\",\"database_name\":\"shapes\","
	        "\"pull_id\":\"8\",\"merge_base\":\"@BASE@\",\"from_commit_id\":\"@BASE@\","
	        "\"to_commit_id\":\"@HEAD@\",\"tables\":["
	        "{\"table_name\":\"n\",\"diff_type\":\"added\",\"schema_change\":false,"
	        "\"key_changed\":false,\"columns_added\":[],\"columns_dropped\":[],"
	        "\"columns_retyped\":[],\"from_primary_key\":null,\"to_primary_key\":[\"id\"],"
	        "\"rows_added\":1,\"rows_modified\":0,\"rows_removed\":0,\"cells_modified\":0}],"
	        "\"rows\":[{\"table_name\":\"n\",\"diff_type\":\"added\",\"key\":\"1\","
	        "\"before\":null,\"after\":{\"id\":\"1\"}}],\"next_page_token\":\"\"}");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shapes/pulls/%d/diff?table=nosuch'", srv.base, id);
	check_diff_body(
	        &r,
	        "{\"status\":\"Success\",\"database_owner\":\"alice\",\"database_name\":\"shapes\","
	        "\"pull_id\":\"8\",\"merge_base\":\"@BASE@\",\"from_commit_id\":\"@BASE@\","
	        "\"to_commit_id\":\"@HEAD@\",\"tables\":[],\"rows\":[],\"next_page_token\":\"\"}");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shapes/pulls/%d/diff?pageToken=740002'", srv.base, id);
	CHECK(r.status == 400);
	CHECK_STR(r.body, "{\"status\":\"Error\",\"message\":\"invalid pageToken\","
	                  "\"code\":\"EINVALID\",\"database_owner\":\"alice\","
	                  "\"database_name\":\"shapes\",\"pull_id\":\"8\"}");
	t_resp_free(&r);
}

/* A private database's pulls are invisible to others. */
static void test_private(void)
{
	t_resp r;
	int pull;

	r = t_http(&srv,
	           AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"secret\",\"visibility\":"
	                "\"private\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	pull = upload("s.csv", "id,name\n1,x\n", "Create", "alice/secret");
	CHECK(pull == 1);
	r = t_http(&srv, AUTH "'%s/alice/secret/pulls/1/diff'", bob, srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X POST '%s/alice/secret/pulls/1/merge'", bob, srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"comment\":\"hi\"}' '%s/alice/secret/pulls/1/comments'", bob,
	           srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/secret/pulls/1/diff'", alice, srv.base);
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "\"diff_type\":\"added\"");
	t_resp_free(&r);
}

int main(void)
{
	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, NULL) < 0)
		return 1;
	if (t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;
	RUN(test_setup);
	RUN(test_diff);
	RUN(test_diff_bytes);
	RUN(test_merge_rows_and_cells);
	RUN(test_conflict);
	RUN(test_review_and_permissions);
	RUN(test_merge_poll_names);
	RUN(test_private);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	free(bob);
	t_rmdir(dir);
	TH_TEST_END();
}
