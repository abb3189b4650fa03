/* test_api_sqlwrite.c: SQL writes against a real `tablehub serve`, as a DoltHub client makes them:
 * POST /api/v1alpha1/{owner}/{db}/write/{from}/{to}?q= (or a JSON body {"query": ...}) and the
 * poll GET .../write?operationName= with DoltHub's fields; the branch made from `from`; a failing
 * statement that commits nothing and says where; an empty query that merges; writes refused to
 * whoever may not change the database; and Sql uploads, through a pull request, queryable after
 * the merge. */
#include "../harness.h"
#include "server.h"

static t_server srv;
static char *dir, *alice, *bob;

/* POST the write endpoint of `path` ("alice/shop/write/main/main") with q=sql. */
static t_resp write_q(const char *token, const char *path, const char *sql)
{
	char *file = malloc(strlen(dir) + 16);
	t_resp r;

	sprintf(file, "%s/q.sql", dir);
	t_write_file(file, sql, strlen(sql));
	if (token)
		r = t_http(&srv, "-X POST -G " AUTH "--data-urlencode 'q@%s' '%s/%s'", token, file,
		           srv.base, path);
	else
		r = t_http(&srv, "-X POST -G --data-urlencode 'q@%s' '%s/%s'", file, srv.base,
		           path);
	free(file);
	return r;
}

/* Poll write operation `op` of alice/shop until it is done (or 60 s pass). */
static t_resp poll_write(const char *op)
{
	time_t end = time(NULL) + 60;
	t_resp r;

	for (;;) {
		r = t_http(&srv,
		           "-G " AUTH "--data-urlencode 'operationName=%s' '%s/alice/shop/write'",
		           alice, op, srv.base);
		if (r.status != 200 || cJSON_IsTrue(cJSON_GetObjectItem(r.json, "done")) ||
		    time(NULL) > end)
			return r;
		t_resp_free(&r);
		t_sleep_ms(20);
	}
}

/* POST `sql` to alice/shop's write/from/to and wait: the poll's response. */
static t_resp write_and_wait(const char *from, const char *to, const char *sql)
{
	char path[256], op[128];
	t_resp r;

	snprintf(path, sizeof(path), "alice/shop/write/%s/%s", from, to);
	r = write_q(alice, path, sql);
	CHECK(r.status == 200);
	if (r.status != 200)
		fprintf(stderr, "write: %s\n", r.body);
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	return poll_write(op);
}

static const cJSON *details(const t_resp *r)
{
	return cJSON_GetObjectItem(r->json, "res_details");
}

static const char *dstr(const t_resp *r, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItem(details(r), key));
}

static double dnum(const t_resp *r, const char *key)
{
	const cJSON *it = cJSON_GetObjectItem(details(r), key);
	return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

static int is_commit_id(const char *s)
{
	return s != NULL && strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

/* `git rev-parse` of a ref of alice/shop, or "" (malloc'd). */
static char *head(const char *ref)
{
	char *out = NULL;

	t_sh(&out, "git -C '%s/repos/alice/shop.git' rev-parse --verify -q '%s'", dir, ref);
	out[strcspn(out, "\n")] = '\0';
	return out;
}

/* The result of `sql` at `ref` as CSV (`tablehub query`, which needs no lock beside a server). */
static char *rows(const char *ref, const char *sql)
{
	char *out = NULL;

	t_sh(&out, "'%s' query --data '%s' --csv alice/shop '%s' \"%s\" 2>&1", TH_BIN, dir, ref,
	     sql);
	return out;
}

/* --- the tests ------------------------------------------------------------------------------ */

/* The POST answers DoltHub's fields; the poll gives done, the commits and the rows per table. */
static void test_write_and_poll(void)
{
	char *before = head("main"), *after, op[128], *out;
	t_resp r = write_q(alice, "alice/shop/write/main/main",
	                   "CREATE TABLE fruit (id INTEGER PRIMARY KEY, name TEXT, price REAL);\n"
	                   "INSERT INTO fruit VALUES (1, 'apple', 0.5), (2, 'pear', 0.75);");
	const cJSON *tables, *t;

	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "query_execution_status"), "Success");
	CHECK_STR(t_str(&r, "query_execution_message"),
	          "Operation created. Poll the operation endpoint to see the execution status of "
	          "this query.");
	CHECK_STR(t_str(&r, "repository_owner"), "alice");
	CHECK_STR(t_str(&r, "repository_name"), "shop");
	CHECK_STR(t_str(&r, "from_branch_name"), "main");
	CHECK_STR(t_str(&r, "to_branch_name"), "main");
	CHECK_CONTAINS(t_str(&r, "query"), "CREATE TABLE fruit");
	CHECK(strncmp(nz(t_str(&r, "operation_name")), "operations/", 11) == 0 &&
	      strlen(nz(t_str(&r, "operation_name"))) == 11 + 36);
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);

	r = poll_write(op);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "_id"), op);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "done")));
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	CHECK_STR(dstr(&r, "query_execution_status"), "Success");
	CHECK_STR(dstr(&r, "query_execution_message"), "Query OK, 2 rows affected.");
	CHECK_STR(dstr(&r, "owner_name"), "alice");
	CHECK_STR(dstr(&r, "repository_name"), "shop");
	after = head("main");
	CHECK_STR(dstr(&r, "from_commit_id"), before);
	CHECK_STR(dstr(&r, "to_commit_id"), after);
	CHECK(is_commit_id(dstr(&r, "to_commit_id")) && strcmp(before, after) != 0);
	CHECK(dnum(&r, "rows_added") == 2 && dnum(&r, "rows_modified") == 0 &&
	      dnum(&r, "rows_removed") == 0);
	tables = cJSON_GetObjectItem(details(&r), "tables");
	CHECK(cJSON_GetArraySize(tables) == 1);
	t = cJSON_GetArrayItem(tables, 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "table_name")), "fruit");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "diff_type")), "added");
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "rows_added")) == 2);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "rows_modified")) == 0);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "rows_removed")) == 0);
	t_resp_free(&r);
	out = rows("main", "SELECT * FROM fruit ORDER BY id");
	CHECK_STR(out, "id,name,price\n1,apple,0.5\n2,pear,0.75\n");
	free(out);
	free(before);
	free(after);
}

/* A JSON body; the to-branch made from the from-branch; main untouched. */
static void test_body_and_new_branch(void)
{
	char *main_before = head("main"), *main_after, *feature, *out;
	char op[128];
	t_resp r = t_http(&srv,
	                  AUTH "-H 'content-type: application/json' -d '{\"query\": \"UPDATE fruit "
	                       "SET price = 0.6 WHERE id = 1; DELETE FROM fruit WHERE id = 2\"}' "
	                       "'%s/alice/shop/write/main/feature'",
	                  alice, srv.base);

	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "to_branch_name"), "feature");
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = poll_write(op);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	CHECK_STR(dstr(&r, "from_commit_id"), main_before);
	feature = head("feature");
	CHECK_STR(dstr(&r, "to_commit_id"), feature);
	CHECK(dnum(&r, "rows_modified") == 1 && dnum(&r, "rows_removed") == 1);
	t_resp_free(&r);
	main_after = head("main");
	CHECK_STR(main_after, main_before);
	out = rows("feature", "SELECT * FROM fruit ORDER BY id");
	CHECK_STR(out, "id,name,price\n1,apple,0.6\n");
	free(out);
	free(main_before);
	free(main_after);
	free(feature);
}

/* A failing statement: Failed with the message and its place; nothing committed, no branch. */
static void test_failure(void)
{
	char *before = head("main"), *after, *nobranch;
	t_resp r = write_and_wait("main", "main",
	                          "INSERT INTO fruit VALUES (3, 'fig', 1.0);\n"
	                          "UPDATE fruit SET nosuch = 1;");

	CHECK(r.status == 200);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "done")));
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_STR(dstr(&r, "query_execution_status"), "Error");
	CHECK_STR(dstr(&r, "query_execution_message"),
	          "statement 2 (line 2, column 1): no such column: nosuch");
	CHECK(dnum(&r, "line") == 2 && dnum(&r, "column") == 1);
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(details(&r), "to_commit_id")));
	t_resp_free(&r);
	after = head("main");
	CHECK_STR(after, before);
	free(after);
	after = rows("main", "SELECT count(*) FROM fruit WHERE id = 3");
	CHECK_STR(after, "count(*)\n0\n");
	free(after);

	r = write_and_wait("main", "nobranch", "UPDATE fruit SET name = 1/0 +");
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_CONTAINS(dstr(&r, "query_execution_message"), "incomplete input");
	t_resp_free(&r);
	nobranch = head("nobranch");
	CHECK_STR(nobranch, "");
	free(nobranch);
	free(before);
}

/* Give `user` `role` on alice/shop. */
static void set_role(const char *user, const char *role)
{
	t_resp r = t_http(&srv,
	                  AUTH "-X PUT -H 'content-type: application/json' -d '{\"role\":\"%s\"}' "
	                       "'%s/alice/shop/collaborators/%s'",
	                  alice, role, srv.base, user);

	CHECK(r.status == 200);
	if (r.status != 200)
		fprintf(stderr, "set role: %s\n", r.body);
	t_resp_free(&r);
}

/* Writing needs the write role, and not on a protected branch; polling, the read role. Bad input
 * is a 4xx. */
static void test_refused(void)
{
	char *before = head("main"), *after;
	t_resp r;

	/* bob reads the public database but has no write role; then only read; then write. */
	r = write_q(bob, "alice/shop/write/main/main", "DELETE FROM fruit");
	CHECK(r.status == 403);
	CHECK_CONTAINS(t_str(&r, "message"), "this needs the write role on 'alice/shop'");
	t_resp_free(&r);
	set_role("bob", "read");
	r = write_q(bob, "alice/shop/write/main/bobs", "DELETE FROM fruit");
	CHECK(r.status == 403);
	t_resp_free(&r);
	set_role("bob", "write");
	r = write_q(bob, "alice/shop/write/main/bobs", "SELECT 1");
	CHECK(r.status == 200);
	t_resp_free(&r);
	/* A protected branch changes through pull requests only, whoever writes. */
	r = t_http(&srv,
	           AUTH "-X PUT -H 'content-type: application/json' -d "
	                "'{\"requiredApprovals\":1}' '%s/alice/shop/branches/guarded/protection'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = write_q(alice, "alice/shop/write/main/guarded", "DELETE FROM fruit");
	CHECK(r.status == 403);
	CHECK_CONTAINS(t_str(&r, "message"), "branch 'guarded' is protected");
	t_resp_free(&r);
	r = write_q(alice, "alice/shop/write/main/guarded", "");
	CHECK(r.status == 403);
	t_resp_free(&r);
	r = write_q(NULL, "alice/shop/write/main/main", "DELETE FROM fruit");
	CHECK(r.status == 401);
	t_resp_free(&r);
	r = write_q(alice, "bob/secret/write/main/main", "DELETE FROM t");
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = write_q(alice, "alice/shop/write/nosuch/main", "DELETE FROM fruit");
	CHECK(r.status == 404);
	CHECK_CONTAINS(t_str(&r, "message"), "branch 'nosuch' not found");
	t_resp_free(&r);
	r = write_q(alice, "alice/shop/write/main/a..b", "DELETE FROM fruit");
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "not a valid branch name");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d 'not json' '%s/alice/shop/write/main/main'", alice, srv.base);
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"query\": 5}' '%s/alice/shop/write/main/main'", alice,
	           srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'query' must be a string");
	t_resp_free(&r);
	after = head("main");
	CHECK_STR(after, before);
	free(after);
	free(before);

	/* The poll. */
	r = t_http(&srv, "-G " AUTH "'%s/alice/shop/write'", alice, srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'operationName' is required");
	t_resp_free(&r);
	r = t_http(&srv,
	           "-G " AUTH "--data-urlencode 'operationName=operations/x' '%s/alice/shop/write'",
	           alice, srv.base);
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = t_http(&srv,
	           "-G " AUTH "--data-urlencode "
	           "'operationName=operations/00000000-0000-4000-8000-000000000000' "
	           "'%s/alice/shop/write'",
	           alice, srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
}

/* An empty query merges from into to, as DoltHub documents. */
static void test_merge(void)
{
	char *feature, *main_after, *out;
	t_resp r = write_and_wait("main", "side", "INSERT INTO fruit VALUES (7, 'kiwi', 2)");

	CHECK_STR(t_str(&r, "job_status"), "Completed");
	t_resp_free(&r);
	r = write_and_wait("main", "main", "INSERT INTO fruit VALUES (8, 'lime', 3)");
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	t_resp_free(&r);
	r = write_and_wait("side", "main", "");
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(details(&r), "merge")));
	CHECK(dnum(&r, "rows_added") == 1);
	main_after = head("main");
	CHECK_STR(dstr(&r, "to_commit_id"), main_after);
	t_resp_free(&r);
	feature = head("main^2"); /* a merge commit: main's head, then side's */
	out = head("side");
	CHECK_STR(feature, out);
	free(out);
	out = rows("main", "SELECT id, name FROM fruit WHERE id >= 7 ORDER BY id");
	CHECK_STR(out, "id,name\n7,kiwi\n8,lime\n");
	free(out);
	free(feature);
	free(main_after);
}

/* fileType Sql: a dump runs onto the import branch, a pull request opens, and after the merge
 * its rows are queryable. */
static void test_sql_upload(void)
{
	char *file = t_write_in(dir, "dump.sql",
	                        "-- dump\nCREATE TABLE city (id INTEGER PRIMARY KEY, name TEXT);\n"
	                        "INSERT INTO city VALUES (1, 'Oslo'), (2, 'Lima');\n"
	                        "INSERT INTO city VALUES (3, 'Pune');\n");
	char opname[256], pull[24];
	time_t end = time(NULL) + 60;
	t_resp r = t_upload(
	        &srv, alice, "alice/shop", file,
	        "{\"fileName\":\"dump.sql\",\"branchName\":\"main\",\"fileType\":\"Sql\"}");
	char *out;

	CHECK(r.status == 200);
	if (r.status != 200)
		fprintf(stderr, "upload: %s\n", r.body);
	snprintf(opname, sizeof(opname), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", opname, 60);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	snprintf(pull, sizeof(pull), "%s", nz(t_str(&r, "pull_id")));
	CHECK(atoi(pull) > 0);
	t_resp_free(&r);
	out = rows("main", "SELECT count(*) FROM sqlite_schema WHERE name = 'city'");
	CHECK_STR(out, "count(*)\n0\n"); /* not before the merge */
	free(out);

	r = t_http(&srv, AUTH "-X POST '%s/alice/shop/pulls/%s/merge'", alice, srv.base, pull);
	CHECK(r.status == 200);
	snprintf(opname, sizeof(opname), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	for (;;) {
		const char *st;
		r = t_http(&srv,
		           "-G " AUTH "--data-urlencode 'operationName=%s' "
		           "'%s/alice/shop/pulls/%s/merge'",
		           alice, opname, srv.base, pull);
		st = nz(t_str(&r, "job_status"));
		if (strcmp(st, "Completed") == 0 || strcmp(st, "Failed") == 0 || time(NULL) > end)
			break;
		t_resp_free(&r);
		t_sleep_ms(20);
	}
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	t_resp_free(&r);
	out = rows("main", "SELECT * FROM city ORDER BY id");
	CHECK_STR(out, "id,name\n1,Oslo\n2,Lima\n3,Pune\n");
	free(out);

	/* A bad statement in the file fails the upload with its line. */
	free(file);
	file = t_write_in(dir, "bad.sql",
	                  "INSERT INTO city VALUES (4, 'Rome');\n\nINSERT INTO x;\n");
	r = t_upload(&srv, alice, "alice/shop", file,
	             "{\"fileName\":\"bad.sql\",\"branchName\":\"main\",\"fileType\":\"Sql\"}");
	snprintf(opname, sizeof(opname), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", opname, 60);
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_CONTAINS(t_str(&r, "message"), "statement 2 (line 3, column");
	CHECK(t_num(&r, "line") == 3);
	t_resp_free(&r);
	free(file);
}

int main(void)
{
	t_resp r;

	dir = t_mkdtemp();
	if (t_sh(NULL, "'%s' db create --data '%s' alice/shop >/dev/null", TH_BIN, dir) != 0) {
		fprintf(stderr, "setting up the database failed\n");
		return 1;
	}
	if (t_server_start(&srv, dir, 0, NULL) < 0)
		return 1;
	if (t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;
	r = t_http(&srv,
	           AUTH "-H 'content-type: application/json' -d '{\"ownerName\":\"bob\","
	                "\"repoName\":\"secret\",\"visibility\":\"private\"}' '%s/database'",
	           bob, srv.base);
	if (r.status != 200)
		fprintf(stderr, "create bob/secret: %d %s\n", r.status, r.body);
	t_resp_free(&r);

	RUN(test_write_and_poll);
	RUN(test_body_and_new_branch);
	RUN(test_failure);
	RUN(test_refused);
	RUN(test_merge);
	RUN(test_sql_upload);

	t_server_stop(&srv, SIGTERM);
	free(alice);
	free(bob);
	t_rmdir(dir);
	TH_TEST_END();
}
