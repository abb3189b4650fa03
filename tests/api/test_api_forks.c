/* test_api_forks.c: forks over HTTP on a real `tablehub serve`. dave, who has no role on alice's
 * public database, forks it (the operation is done at once, the fork borrows the parent's objects
 * and copies none), imports into his fork, and proposes the change back with a pull request from
 * his fork's branch; he can neither review nor merge it; the parent's protection applies (one
 * approval, stale approvals dismissed when his branch moves on); alice approves and merges and
 * the rows land on her main. Also: fork lists and the network, a fork of a fork, forks of a
 * private database staying private, and what is refused (forking into someone else's account, a
 * database one cannot read, twice; a pull from a database that is no fork, or from a fork one
 * cannot write). */
#include <sys/stat.h>

#include "../harness.h"
#include "accounts.h"

static t_server srv;
static char *dir, *alice, *dave, *erin, *bob;
static int pull;

static int upload(const char *token, const char *db, const char *name, const char *csv,
                  const char *op)
{
	char params[400], opname[300] = "", *file = t_write_in(dir, name, csv);
	t_resp r;
	int id;

	snprintf(params, sizeof(params),
	         "{\"tableName\":\"animals\",\"fileName\":\"%s\",\"branchName\":\"main\","
	         "\"fileType\":\"Csv\",\"importOp\":\"%s\",\"primaryKeys\":[\"id\"]}",
	         name, op);
	r = t_upload(&srv, token, db, file, params);
	CHECK(r.status == 200);
	snprintf(opname, sizeof(opname), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, token, db, opname, 120);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	id = atoi(nz(t_str(&r, "pull_id")));
	t_resp_free(&r);
	free(file);
	return id;
}

/* Merge pull `id` of db as `token` with the JSON body `data` (NULL: none) and wait; returns the
 * final job_status (static). */
static const char *merge_with(const char *token, const char *db, int id, const char *data)
{
	static char st[32];
	char op[300];
	t_resp r = t_http(&srv, AUTH "-X POST %s%s%s '%s/%s/pulls/%d/merge'", token,
	                  data ? "-d '" : "", data ? data : "", data ? "'" : "", srv.base, db, id);

	st[0] = '\0';
	if (r.status != 200) {
		snprintf(st, sizeof(st), "HTTP %d", r.status);
		t_resp_free(&r);
		return st;
	}
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	for (time_t end = time(NULL) + 60; time(NULL) < end;) {
		r = t_http(&srv,
		           "-G " AUTH "--data-urlencode 'operationName=%s' '%s/%s/pulls/%d/merge'",
		           token, op, srv.base, db, id);
		snprintf(st, sizeof(st), "%s", nz(t_str(&r, "job_status")));
		t_resp_free(&r);
		if (strcmp(st, "Completed") == 0 || strcmp(st, "Failed") == 0)
			break;
		t_sleep_ms(100);
	}
	return st;
}

static const char *merge(const char *token, const char *db, int id)
{
	return merge_with(token, db, id, NULL);
}

static t_resp fork_db(const char *token, const char *parent_owner, const char *parent,
                      const char *owner)
{
	return t_http(&srv,
	              AUTH "-d '{\"parentOwnerName\":\"%s\",\"parentDatabaseName\":\"%s\","
	                   "\"ownerName\":\"%s\"}' '%s/fork'",
	              token, parent_owner, parent, owner, srv.base);
}

static char *names(const char *token, const char *db)
{
	t_resp r = t_http(&srv,
	                  AUTH "-G --data-urlencode 'q=SELECT name FROM animals ORDER BY id' "
	                       "'%s/%s/main'",
	                  token, srv.base, db);
	char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(r.json, "rows"));

	t_resp_free(&r);
	return s ? s : strdup("");
}

/* Bytes of the files under path (st_blocks: what the disk holds). */
static long long disk_bytes(const char *path)
{
	char *out = NULL;
	long long n = -1;

	if (t_sh(&out, "du -sk '%s' | cut -f1", path) == 0)
		n = atoll(out) * 1024;
	free(out);
	return n;
}

static void test_fork(void)
{
	t_resp r;
	char path[700], op[200];
	struct timespec a, b;
	long long bytes;
	double ms;

	r = t_http(&srv,
	           AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"zoo\",\"visibility\":"
	                "\"public\",\"description\":\"animals\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK(upload(alice, "alice/zoo", "a.csv", "id,name\n1,hen\n2,cow\n", "Create") > 0);
	CHECK_STR(merge(alice, "alice/zoo", 1), "Completed");
	r = t_http(&srv,
	           AUTH "-X PUT -d '{\"requiredApprovals\":1}' "
	                "'%s/alice/zoo/branches/main/protection'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);

	clock_gettime(CLOCK_MONOTONIC, &a);
	r = fork_db(dave, "alice", "zoo", "dave");
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "parent_owner"), "alice");
	CHECK_STR(t_str(&r, "parent_database"), "zoo");
	CHECK_STR(t_str(&r, "forked_owner"), "dave");
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	CHECK(strncmp(op, "operations/", 11) == 0);
	t_resp_free(&r);
	/* The fork holds no object of its own: it borrows the parent's. */
	snprintf(path, sizeof(path), "%s/repos/dave/zoo.git", dir);
	bytes = disk_bytes(path);
	printf("fork of a small database: %.1f ms over HTTP, %lld bytes on disk\n", ms, bytes);
	CHECK(bytes > 0 && bytes < 200 * 1024);
	CHECK(t_sh(NULL, "test -z \"$(find '%s/objects' -type f ! -path '*/info/*')\"", path) == 0);
	CHECK(t_sh(NULL, "git --git-dir='%s' fsck --no-progress 2>&1 | grep -q .", path) == 1);

	r = t_http(&srv, AUTH "-G --data-urlencode 'operationName=%s' '%s/fork'", dave, op,
	           srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "done")));
	CHECK_STR(t_str(&r, "database_owner"), "dave");
	CHECK_STR(t_str(&r, "database_name"), "zoo");
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "'%s/fork?operationName=operations/00000000-0000-4000-8000-000000000000'",
	           dave, srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
	/* The fork has the parent's data and branches. */
	{
		char *n = names(dave, "dave/zoo");
		CHECK_STR(n, "[{\"name\":\"hen\"},{\"name\":\"cow\"}]");
		free(n);
	}

	/* Refused: twice, into another's account, what one cannot see. */
	r = fork_db(dave, "alice", "zoo", "dave");
	CHECK(r.status == 409);
	CHECK_STR(t_str(&r, "message"), "database 'dave/zoo' already exists");
	t_resp_free(&r);
	r = fork_db(dave, "alice", "zoo", "bob");
	CHECK(r.status == 403);
	t_resp_free(&r);
	r = fork_db(dave, "alice", "nope", "dave");
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = fork_db("thp_0000", "alice", "zoo", "dave"); /* not a token */
	CHECK(r.status == 401);
	t_resp_free(&r);
}

static void test_fork_lists(void)
{
	t_resp r;
	const cJSON *forks;

	/* erin forks dave's fork: a network of three, rooted at alice/zoo. */
	r = fork_db(erin, "dave", "zoo", "erin");
	CHECK(r.status == 200);
	t_resp_free(&r);
	{
		char *n = names(erin, "erin/zoo");
		CHECK_STR(n,
		          "[{\"name\":\"hen\"},{\"name\":\"cow\"}]"); /* through two alternates */
		free(n);
	}
	r = t_http(&srv, "'%s/alice/zoo/forks'", srv.base);
	CHECK(r.status == 200);
	forks = cJSON_GetObjectItem(r.json, "forks");
	CHECK(cJSON_GetArraySize(forks) == 1);
	CHECK_STR(cJSON_GetStringValue(
	                  cJSON_GetObjectItem(cJSON_GetArrayItem(forks, 0), "database_owner")),
	          "dave");
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(r.json, "parent_owner")));
	CHECK_STR(t_str(&r, "network_root_owner"), "alice");
	CHECK(t_num(&r, "fork_network_count") == 3);
	t_resp_free(&r);
	r = t_http(&srv, "'%s/erin/zoo/forks'", srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "parent_owner"), "dave");
	CHECK_STR(t_str(&r, "parent_database_name"), "zoo");
	CHECK_STR(t_str(&r, "network_root_owner"), "alice");
	CHECK_STR(t_str(&r, "network_root_database_name"), "zoo");
	t_resp_free(&r);
}

static void test_private_forks(void)
{
	t_resp r = t_http(&srv,
	                  AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"vault\","
	                       "\"visibility\":\"private\"}' '%s/database'",
	                  alice, srv.base);

	CHECK(r.status == 200);
	t_resp_free(&r);
	r = fork_db(dave, "alice", "vault", "dave");
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "database 'alice/vault' not found");
	t_resp_free(&r);
	CHECK(t_set_role(&srv, alice, "alice/vault", "dave", "read") == 200);
	r = fork_db(dave, "alice", "vault", "dave");
	CHECK(r.status == 200);
	t_resp_free(&r);
	/* dave's fork of a private database is private: bob sees neither. */
	r = t_http(&srv, AUTH "'%s/dave/vault/branches'", bob, srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/vault/forks'", alice, srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "forks")) == 0); /* not alice's */
	CHECK(t_num(&r, "fork_network_count") == 1);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/vault/forks'", dave, srv.base);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "forks")) == 1);
	t_resp_free(&r);
}

static t_resp pull_from_fork(const char *token, const char *fork_owner, const char *fork_db_name)
{
	return t_http(&srv,
	              AUTH "-d '{\"title\":\"More animals\",\"fromBranchOwnerName\":\"%s\","
	                   "\"fromBranchRepoName\":\"%s\",\"fromBranchName\":\"main\","
	                   "\"toBranchName\":\"main\"}' '%s/alice/zoo/pulls'",
	              token, fork_owner, fork_db_name, srv.base);
}

static void test_pull_from_fork(void)
{
	t_resp r;
	int p;

	/* dave imports into his fork and merges it there (his database, unprotected). */
	p = upload(dave, "dave/zoo", "d.csv", "id,name\n3,duck\n", "Update");
	CHECK(p > 0);
	CHECK_STR(merge(dave, "dave/zoo", p), "Completed");

	r = pull_from_fork(dave, "dave", "zoo");
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "from_owner_name"), "dave");
	CHECK_STR(t_str(&r, "from_repository_name"), "zoo");
	CHECK_STR(t_str(&r, "from_branch_name"), "main");
	CHECK_STR(t_str(&r, "to_owner_name"), "alice");
	pull = atoi(nz(t_str(&r, "pull_id")));
	t_resp_free(&r);
	CHECK(pull > 1);
	r = pull_from_fork(dave, "dave", "zoo");
	CHECK(r.status == 409); /* already open */
	t_resp_free(&r);

	r = t_http(&srv, "'%s/alice/zoo/pulls/%d'", srv.base, pull);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "author"), "dave");
	CHECK_STR(t_str(&r, "from_branch_owner"), "dave");
	CHECK_STR(t_str(&r, "from_branch_database"), "zoo");
	CHECK_STR(t_str(&r, "from_branch_name"), "main");
	CHECK_STR(t_str(&r, "from_branch_in_parent"), "forks/dave/main");
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "mergeable")));
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/zoo/pulls/%d/diff'", srv.base, pull);
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "duck");
	t_resp_free(&r);

	/* dave has no role on alice/zoo: he may propose, not review or merge. */
	r = t_http(&srv,
	           AUTH "-d '{\"reviewStatus\":\"Approved\"}' '%s/alice/zoo/pulls/%d/reviews'",
	           dave, srv.base, pull);
	CHECK(r.status == 403);
	t_resp_free(&r);
	CHECK_STR(merge(dave, "alice/zoo", pull), "HTTP 403");
	/* Not from a database that is no fork of it, nor from a fork one may not write. */
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"bob\",\"repoName\":\"zoo\"}' '%s/database'",
	           bob, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = pull_from_fork(bob, "bob", "zoo");
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "'bob/zoo' is not a fork of 'alice/zoo'");
	t_resp_free(&r);
	r = pull_from_fork(bob, "dave", "zoo");
	CHECK(r.status == 403);
	CHECK_STR(t_str(&r, "message"),
	          "a pull request from 'dave/zoo' needs the write role there");
	t_resp_free(&r);

	/* dave, the author, may ask alice (who reads her own database, of course) for a review,
	 * though he has no role here; bob, who is neither, may not. */
	r = t_http(&srv, AUTH "-d '{\"reviewers\":[\"alice\"]}' '%s/alice/zoo/pulls/%d/reviewers'",
	           dave, srv.base, pull);
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "\"username\":\"alice\",\"review_status\":null");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"reviewers\":[\"erin\"]}' '%s/alice/zoo/pulls/%d/reviewers'",
	           bob, srv.base, pull);
	CHECK(r.status == 403);
	t_resp_free(&r);

	/* alice approves; then dave's fork moves on, and her approval is stale. */
	r = t_http(&srv,
	           AUTH "-d '{\"reviewStatus\":\"Approved\"}' '%s/alice/zoo/pulls/%d/reviews'",
	           alice, srv.base, pull);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/zoo/pulls/%d'", srv.base, pull);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "mergeable")));
	t_resp_free(&r);
	p = upload(dave, "dave/zoo", "e.csv", "id,name\n4,goat\n", "Update");
	CHECK_STR(merge(dave, "dave/zoo", p), "Completed");
	r = t_http(&srv, "'%s/alice/zoo/pulls/%d'", srv.base, pull);
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "mergeable")));
	CHECK_STR(t_str(&r, "review_status"), "Reviewed");
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"reviewStatus\":\"Approved\"}' '%s/alice/zoo/pulls/%d/reviews'",
	           alice, srv.base, pull);
	CHECK(r.status == 200);
	t_resp_free(&r);

	/* alice merges, asking for the source branch to go: it is dave's (his fork's main), so it
	 * stays, and the pull says so. Her review request is answered. */
	r = t_http(&srv, "'%s/alice/zoo/pulls/%d'", srv.base, pull);
	CHECK_CONTAINS(r.body, "\"username\":\"alice\",\"review_status\":\"Approved\"");
	t_resp_free(&r);
	CHECK_STR(merge_with(alice, "alice/zoo", pull, "{\"deleteBranchOnMerge\":true}"),
	          "Completed");
	r = t_http(&srv, "'%s/alice/zoo/pulls/%d'", srv.base, pull);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "delete_branch_on_merge")));
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "branch_deleted")));
	t_resp_free(&r);
	CHECK(t_sh(NULL,
	           "git --git-dir='%s/repos/dave/zoo.git' rev-parse -q --verify refs/heads/main",
	           dir) == 0);
	{
		char *n = names(alice, "alice/zoo");
		CHECK_STR(n, "[{\"name\":\"hen\"},{\"name\":\"cow\"},{\"name\":\"duck\"},"
		             "{\"name\":\"goat\"}]");
		free(n);
	}
	r = t_http(&srv, "'%s/alice/zoo/pulls/%d'", srv.base, pull);
	CHECK_STR(t_str(&r, "state"), "Merged");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/zoo/events?pageSize=100'", alice, srv.base);
	CHECK_CONTAINS(r.body, "\"action\":\"fork.create\",\"target\":\"dave/zoo\"");
	t_resp_free(&r);
	/* The parent stays a whole git repository. */
	CHECK(t_sh(NULL,
	           "git --git-dir='%s/repos/alice/zoo.git' fsck --no-progress 2>&1 | grep -q .",
	           dir) == 1);
}

/* A pull from a fork's branch, merged with deleteBranchOnMerge by someone with the write role on
 * the fork: the branch goes from the fork, which records it. */
static void test_fork_branch_deleted_on_merge(void)
{
	char branch[200], want[300];
	t_resp r;
	int p, id;

	CHECK(t_set_role(&srv, dave, "dave/zoo", "alice", "write") == 200);
	/* dave's import branch in his fork, proposed to alice directly (his own pull of it into
	 * his main closed). */
	p = upload(dave, "dave/zoo", "f.csv", "id,name\n5,pig\n", "Update");
	CHECK(p > 0);
	r = t_http(&srv, AUTH "'%s/dave/zoo/pulls/%d'", dave, srv.base, p);
	snprintf(branch, sizeof(branch), "%s", nz(t_str(&r, "from_branch_name")));
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X PATCH -d '{\"state\":\"closed\"}' '%s/dave/zoo/pulls/%d'", dave,
	           srv.base, p);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"title\":\"A pig\",\"fromBranchOwnerName\":\"dave\","
	                "\"fromBranchRepoName\":\"zoo\",\"fromBranchName\":\"%s\","
	                "\"deleteBranchOnMerge\":true}' '%s/alice/zoo/pulls'",
	           dave, branch, srv.base);
	CHECK(r.status == 200);
	id = atoi(nz(t_str(&r, "pull_id")));
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"reviewStatus\":\"Approved\"}' '%s/alice/zoo/pulls/%d/reviews'",
	           alice, srv.base, id);
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK(t_sh(NULL,
	           "git --git-dir='%s/repos/dave/zoo.git' rev-parse -q --verify 'refs/heads/%s'",
	           dir, branch) == 0);
	CHECK_STR(merge(alice, "alice/zoo", id), "Completed");
	r = t_http(&srv, "'%s/alice/zoo/pulls/%d'", srv.base, id);
	CHECK_STR(t_str(&r, "state"), "Merged");
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "branch_deleted")));
	t_resp_free(&r);
	CHECK(t_sh(NULL,
	           "git --git-dir='%s/repos/dave/zoo.git' rev-parse -q --verify 'refs/heads/%s'",
	           dir, branch) != 0);
	r = t_http(&srv, AUTH "'%s/dave/zoo/events?pageSize=100'", dave, srv.base);
	snprintf(want, sizeof(want),
	         "\"actor\":\"alice\",\"action\":\"branch.delete\",\"target\":\"%s\"", branch);
	CHECK_CONTAINS(r.body, want);
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
	dave = t_user(&srv, "dave");
	erin = t_user(&srv, "erin");
	bob = t_user(&srv, "bob");
	if (!alice || !dave || !erin || !bob) {
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	RUN(test_fork);
	RUN(test_fork_lists);
	RUN(test_private_forks);
	RUN(test_pull_from_fork);
	RUN(test_fork_branch_deleted_on_merge);
	RUN(test_no_secret_in_log);
	t_server_stop(&srv, SIGTERM);
	t_secrets_free();
	free(alice);
	free(dave);
	free(erin);
	free(bob);
	t_rmdir(dir);
	TH_TEST_END();
}
