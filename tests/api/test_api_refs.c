/* test_api_refs.c: the branches and tags people need while reviewing, over HTTP on a real
 * `tablehub serve`: a branch deleted by a writer (its event in the trail), refused for the
 * default branch and a protected one (409 saying why) and for a reader (403); annotated tags made
 * at a branch or a commit, listed with DoltHub's fields and by `git tag -l`, refused when they
 * exist or name nothing; a tag as the ref of a SQL read, of the CSV export and of a new branch;
 * releases that name a tag (or make it from DoltHub's revision fields), listed newest first. */
#include "../harness.h"
#include "accounts.h"

static t_server srv;
static char *dir, *alice, *bob, *carol;
static char root[128];

#define DB "alice/shop"

/* Upload `csv` as alice into DB's main (table animals); returns when the import completed. */
static void upload(const char *name, const char *csv, const char *op)
{
	char params[400], opname[300] = "", *file = t_write_in(dir, name, csv);
	t_resp r;

	snprintf(params, sizeof(params),
	         "{\"tableName\":\"animals\",\"fileName\":\"%s\",\"branchName\":\"main\","
	         "\"fileType\":\"Csv\",\"importOp\":\"%s\",\"primaryKeys\":[\"id\"]}",
	         name, op);
	r = t_upload(&srv, alice, DB, file, params);
	CHECK(r.status == 200);
	snprintf(opname, sizeof(opname), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, DB, opname, 120);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	t_resp_free(&r);
	free(file);
}

/* Merge the pull the last upload opened into main, so that main has the rows. */
static void merge_all(void)
{
	t_resp r = t_http(&srv, AUTH "'%s/" DB "/pulls?filterByState=Open'", alice, srv.base);
	const cJSON *pulls = cJSON_GetObjectItem(r.json, "pulls"), *p;

	cJSON_ArrayForEach(p, pulls)
	{
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(p, "pull_id"));
		char op[300];
		t_resp m = t_http(&srv, AUTH "-X POST '%s/" DB "/pulls/%s/merge'", alice, srv.base,
		                  id);
		CHECK(m.status == 200);
		snprintf(op, sizeof(op), "%s", nz(t_str(&m, "operation_name")));
		t_resp_free(&m);
		for (time_t end = time(NULL) + 60; time(NULL) < end; t_sleep_ms(50)) {
			m = t_http(&srv,
			           "-G " AUTH "--data-urlencode 'operationName=%s' "
			           "'%s/" DB "/pulls/%s/merge'",
			           alice, op, srv.base, id);
			int done = strcmp(nz(t_str(&m, "job_status")), "Completed") == 0;
			t_resp_free(&m);
			if (done)
				break;
		}
	}
	t_resp_free(&r);
}

static int new_branch(const char *token, const char *type, const char *from, const char *name)
{
	t_resp r = t_http(&srv,
	                  AUTH "-d '{\"revisionType\":\"%s\",\"revisionName\":\"%s\","
	                       "\"newBranchName\":\"%s\"}' '%s/" DB "/branches'",
	                  token, type, from, name, srv.base);
	int st = r.status;

	t_resp_free(&r);
	return st;
}

static int has_branch(const char *name)
{
	t_resp r = t_http(&srv, AUTH "'%s/" DB "/branches'", alice, srv.base);
	const cJSON *b;
	int found = 0;

	cJSON_ArrayForEach(b, cJSON_GetObjectItem(r.json, "branches"))
	{
		if (strcmp(nz(cJSON_GetStringValue(cJSON_GetObjectItem(b, "branch_name"))), name) ==
		    0)
			found = 1;
	}
	t_resp_free(&r);
	return found;
}

static void test_setup(void)
{
	t_resp r = t_http(&srv,
	                  AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\","
	                       "\"visibility\":\"public\"}' '%s/database'",
	                  alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	upload("a.csv", "id,name,legs\n1,hen,2\n2,cow,4\n", "Create");
	merge_all();
	CHECK(t_set_role(&srv, alice, DB, "bob", "write") == 200);
	CHECK(t_set_role(&srv, alice, DB, "carol", "read") == 200);
}

static void test_branch_delete(void)
{
	t_resp r;
	const cJSON *ev;
	int found = 0;

	CHECK(new_branch(bob, "branch", "main", "scratch") == 200);
	CHECK(new_branch(bob, "branch", "main", "keep") == 200);
	/* A reader may not; nobody deletes the default branch or a protected one. */
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/branches/scratch'", carol, srv.base);
	CHECK(r.status == 403);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/branches/main'", alice, srv.base);
	CHECK(r.status == 409);
	CHECK_STR(t_str(&r, "message"),
	          "branch 'main' is the database's default branch: it cannot be deleted");
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-X PUT -d '{\"requiredApprovals\":1}' '%s/" DB
	                "/branches/keep/protection'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/branches/keep'", alice, srv.base);
	CHECK(r.status == 409);
	CHECK_CONTAINS(t_str(&r, "message"), "branch 'keep' is protected");
	t_resp_free(&r);
	CHECK(has_branch("keep"));
	/* A writer deletes an unprotected branch: gone, and recorded. */
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/branches/scratch'", bob, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "branch_name"), "scratch");
	CHECK(strlen(nz(t_str(&r, "head"))) == 40);
	t_resp_free(&r);
	CHECK(!has_branch("scratch"));
	CHECK(has_branch("main"));
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/branches/scratch'", bob, srv.base);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "branch 'scratch' not found in 'alice/shop'");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/" DB "/events'", alice, srv.base);
	CHECK(r.status == 200);
	cJSON_ArrayForEach(ev, cJSON_GetObjectItem(r.json, "events"))
	{
		const char *action = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "action"));
		if (action != NULL && strcmp(action, "branch.delete") == 0) {
			CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "actor")), "bob");
			CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "target")),
			          "scratch");
			found++;
		}
	}
	CHECK(found == 1);
	t_resp_free(&r);
}

/* Branch names with '/' in them (as every import's "alice/import-1a2b3c4d") are one name in the
 * routes that take a branch, written plainly or with the slash encoded. */
static void test_branch_slash(void)
{
	t_resp r;

	CHECK(new_branch(bob, "branch", "main", "bob/fix-1") == 200);
	CHECK(new_branch(bob, "branch", "main", "team/a/b") == 200);
	CHECK(has_branch("bob/fix-1") && has_branch("team/a/b"));
	r = t_http(&srv,
	           AUTH "-X PUT -d '{\"requiredApprovals\":2}' '%s/" DB
	                "/branches/team/a/b/protection'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/" DB "/branches/team%%2Fa%%2Fb/protection'", carol, srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r.json, "requiredApprovals")) == 2);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/branches/team/a/b'", alice, srv.base);
	CHECK(r.status == 409);
	CHECK_CONTAINS(t_str(&r, "message"), "branch 'team/a/b' is protected");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/branches/team/a/b/protection'", alice,
	           srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/branches/team/a/b'", bob, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "branch_name"), "team/a/b");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/branches/bob%%2Ffix-1'", bob, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "branch_name"), "bob/fix-1");
	t_resp_free(&r);
	CHECK(!has_branch("bob/fix-1") && !has_branch("team/a/b") && has_branch("main"));
	r = t_http(&srv, AUTH "-X DELETE '%s/" DB "/branches/bob/fix-1'", bob, srv.base);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "branch 'bob/fix-1' not found in 'alice/shop'");
	t_resp_free(&r);
}

static void test_tags(void)
{
	char *out = NULL, first[41] = "";
	const cJSON *tags, *t;
	t_resp r;

	r = t_http(&srv,
	           AUTH "-d '{\"tagName\":\"v1\",\"tagMessage\":\"first animals\","
	                "\"revisionType\":\"branch\",\"revisionName\":\"main\"}' '%s/" DB "/tags'",
	           bob, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "database_owner"), "alice");
	CHECK_STR(t_str(&r, "tag_name"), "v1");
	CHECK_STR(t_str(&r, "tag_description"), "first animals");
	CHECK_STR(t_str(&r, "revision_type"), "branch");
	CHECK_STR(t_str(&r, "revision_name"), "main");
	CHECK_STR(t_str(&r, "tagger"), "bob");
	CHECK(t_str(&r, "tagged_at") != NULL);
	snprintf(first, sizeof(first), "%s", nz(t_str(&r, "commit_id")));
	CHECK(strlen(first) == 40);
	t_resp_free(&r);
	/* Refused: an existing name, a missing revision, a bad name, a reader, a bad type. */
	r = t_http(&srv,
	           AUTH "-d '{\"tagName\":\"v1\",\"revisionType\":\"branch\","
	                "\"revisionName\":\"main\"}' '%s/" DB "/tags'",
	           bob, srv.base);
	CHECK(r.status == 409);
	CHECK_STR(t_str(&r, "message"), "tag 'v1' already exists");
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"tagName\":\"v0\",\"revisionType\":\"branch\","
	                "\"revisionName\":\"nope\"}' '%s/" DB "/tags'",
	           bob, srv.base);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "branch 'nope' not found in 'alice/shop'");
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"tagName\":\"a..b\",\"revisionType\":\"branch\","
	                "\"revisionName\":\"main\"}' '%s/" DB "/tags'",
	           bob, srv.base);
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "'tagName' is not a valid tag name: 'a..b'");
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"tagName\":\"v9\",\"revisionType\":\"tree\","
	                "\"revisionName\":\"main\"}' '%s/" DB "/tags'",
	           bob, srv.base);
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"tagName\":\"v9\",\"revisionType\":\"branch\","
	                "\"revisionName\":\"main\"}' '%s/" DB "/tags'",
	           carol, srv.base);
	CHECK(r.status == 403);
	t_resp_free(&r);

	/* main moves on; v1 stays where it was. A tag of a commit id. */
	upload("b.csv", "id,name,legs\n3,duck,2\n", "Update");
	merge_all();
	r = t_http(&srv,
	           AUTH "-d '{\"tagName\":\"old\",\"revisionType\":\"commit\","
	                "\"revisionName\":\"%s\"}' '%s/" DB "/tags'",
	           alice, first, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "commit_id"), first);
	CHECK_STR(t_str(&r, "tag_description"), "");
	t_resp_free(&r);

	/* DoltHub's list, and git's own. */
	r = t_http(&srv, "'%s/" DB "/tags'", srv.base);
	CHECK(r.status == 200);
	tags = cJSON_GetObjectItem(r.json, "tags");
	CHECK(cJSON_GetArraySize(tags) == 2);
	t = cJSON_GetArrayItem(tags, 1);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "tag_name")), "v1");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "tag_description")), "first animals");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "commit_id")), first);
	CHECK(cJSON_GetObjectItem(t, "tagged_at") != NULL);
	t_resp_free(&r);
	CHECK(t_sh(&out, "git -C '%s/repos/alice/shop.git' tag -l -n1 | tr -s ' '", dir) == 0);
	CHECK_STR(out, "old \nv1 first animals\n");
	free(out);
	out = NULL;
	CHECK(t_sh(&out, "git -C '%s/repos/alice/shop.git' cat-file -t v1", dir) == 0);
	CHECK_STR(out, "tag\n");
	free(out);

	/* A tag is a ref: SQL at it, by name and in full, the CSV export, a branch from it. */
	r = t_http(&srv, "'%s/" DB "/v1?q=SELECT+count(*)+AS+n+FROM+animals'", srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "commit_ref"), "v1");
	CHECK_CONTAINS(r.body, "\"n\":\"2\"");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/" DB "/refs/tags/v1?q=SELECT+count(*)+AS+n+FROM+animals'", srv.base);
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "\"n\":\"2\"");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/" DB "/main?q=SELECT+count(*)+AS+n+FROM+animals'", srv.base);
	CHECK_CONTAINS(r.body, "\"n\":\"3\"");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/csv/" DB "/v1/animals'", root);
	CHECK(r.status == 200);
	CHECK_STR(r.body, "id,name,legs\n1,hen,2\n2,cow,4\n");
	t_resp_free(&r);
	CHECK(new_branch(bob, "ref", "v1", "from-v1") == 200);
	r = t_http(&srv, "'%s/" DB "/from-v1?q=SELECT+count(*)+AS+n+FROM+animals'", srv.base);
	CHECK_CONTAINS(r.body, "\"n\":\"2\"");
	t_resp_free(&r);
}

static void test_releases(void)
{
	const cJSON *rel, *it;
	t_resp r;

	r = t_http(&srv,
	           AUTH "-d '{\"tagName\":\"v1\",\"title\":\"First\",\"notes\":\"hens and cows\"}' "
	                "'%s/" DB "/releases'",
	           bob, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "tag_name"), "v1");
	CHECK_STR(t_str(&r, "tag_description"), "first animals");
	CHECK_STR(t_str(&r, "title"), "First");
	CHECK_STR(t_str(&r, "author"), "bob");
	t_resp_free(&r);
	/* One per tag; a missing tag without a revision; a reader. */
	r = t_http(&srv, AUTH "-d '{\"tagName\":\"v1\",\"title\":\"Again\"}' '%s/" DB "/releases'",
	           bob, srv.base);
	CHECK(r.status == 409);
	CHECK_STR(t_str(&r, "message"), "tag 'v1' already has a release");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"tagName\":\"v7\"}' '%s/" DB "/releases'", bob, srv.base);
	CHECK(r.status == 404);
	CHECK_CONTAINS(t_str(&r, "message"), "tag 'v7' not found in 'alice/shop'");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"tagName\":\"v1\"}' '%s/" DB "/releases'", carol, srv.base);
	CHECK(r.status == 403);
	t_resp_free(&r);
	/* DoltHub's fields make the tag. */
	r = t_http(&srv,
	           AUTH "-d '{\"tagName\":\"v2\",\"tagMessage\":\"with ducks\","
	                "\"revisionType\":\"branch\",\"revisionName\":\"main\","
	                "\"title\":\"Second\"}' '%s/" DB "/releases'",
	           alice, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "tag_description"), "with ducks");
	CHECK_STR(t_str(&r, "revision_name"), "main");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/" DB "/releases'", srv.base);
	CHECK(r.status == 200);
	rel = cJSON_GetObjectItem(r.json, "releases");
	CHECK(cJSON_GetArraySize(rel) == 2);
	it = cJSON_GetArrayItem(rel, 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(it, "tag_name")), "v2");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(it, "title")), "Second");
	it = cJSON_GetArrayItem(rel, 1);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(it, "tag_name")), "v1");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(it, "notes")), "hens and cows");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(it, "tag_description")),
	          "first animals");
	CHECK(cJSON_GetObjectItem(it, "tagged_at") != NULL);
	t_resp_free(&r);
	r = t_http(&srv, "'%s/" DB "/tags'", srv.base);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "tags")) == 3);
	t_resp_free(&r);
}

int main(void)
{
	const char *extra[] = { "--rate-per-address", "0", "--rate-per-token", "0", NULL };

	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, extra) < 0)
		return 1;
	snprintf(root, sizeof(root), "%.*s", (int)(strlen(srv.base) - strlen("/api/v1alpha1")),
	         srv.base);
	alice = t_user(&srv, "alice");
	bob = t_user(&srv, "bob");
	carol = t_user(&srv, "carol");
	if (alice == NULL || bob == NULL || carol == NULL) {
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	RUN(test_setup);
	RUN(test_branch_delete);
	RUN(test_branch_slash);
	RUN(test_tags);
	RUN(test_releases);
	t_server_stop(&srv, SIGTERM);
	t_secrets_free();
	free(alice);
	free(bob);
	free(carol);
	t_rmdir(dir);
	TH_TEST_END();
}
