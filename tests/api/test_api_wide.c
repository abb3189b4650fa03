/* test_api_wide.c: tables and SQLite's column limit, on a real `tablehub serve`. An upload of a
 * table with 2,001 columns fails at once with a message that names the limit, and one of 2,000
 * columns imports and can be queried; a table of 2,001 columns already in a repository (made
 * straight through the library, as the import now refuses it) is left out of its commit's query
 * snapshot: every other table answers as usual, and a query naming it gets a 400 that names it
 * and says why. */
#include "../harness.h"
#include "server.h"
#include "tablehub/repo.h"
#include "tablehub/table.h"

static t_server srv;
static char *dir, *alice, *bob;

/* A CSV of `ncols` columns c1..cN and 3 rows, into DIR/name; returns the path (malloc'd). */
static char *wide_csv(const char *name, size_t ncols)
{
	th_buf b = TH_BUF_INIT;
	char *path;
	size_t i, row;

	for (i = 0; i < ncols; i++)
		th_buf_printf(&b, NULL, "%sc%zu", i ? "," : "", i + 1);
	th_buf_putc(&b, '\n', NULL);
	for (row = 1; row <= 3; row++) {
		for (i = 0; i < ncols; i++)
			th_buf_printf(&b, NULL, "%s%zu", i ? "," : "", i == 0 ? row : i % 7);
		th_buf_putc(&b, '\n', NULL);
	}
	path = t_write_in(dir, name, b.ptr);
	th_buf_dispose(&b);
	return path;
}

/* Upload `ncols` columns as table `table` and poll the import to its end. */
static t_resp upload_wide(const char *table, size_t ncols)
{
	char file[64], params[512], op[256];
	char *path;
	t_resp r;

	snprintf(file, sizeof(file), "%s.csv", table);
	path = wide_csv(file, ncols);
	snprintf(params, sizeof(params),
	         "{\"tableName\":\"%s\",\"fileName\":\"%s\",\"branchName\":\"main\","
	         "\"fileType\":\"Csv\",\"importOp\":\"Create\",\"primaryKeys\":[\"c1\"]}",
	         table, file);
	r = t_upload(&srv, alice, "alice/shop", path, params);
	free(path);
	if (r.status != 200) {
		fprintf(stderr, "upload: %d %s\n", r.status, r.body);
		return r;
	}
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	return t_poll(&srv, alice, "alice/shop", op, 120);
}

/* GET q=sql at alice/shop/ref. */
static t_resp sql_at(const char *ref, const char *sql)
{
	return t_http(&srv, "-G --data-urlencode 'q=%s' '%s/alice/shop/%s'", sql, srv.base, ref);
}

static void test_import_refuses_too_many_columns(void)
{
	t_resp r = upload_wide("toowide", TH_SCHEMA_MAX_COLUMNS + 1);

	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_STR(t_str(&r, "message"), "line 1: the header has 2001 columns; a table may have at "
	                                "most 2000 (SQLite's limit on the columns of a table)");
	CHECK(t_str(&r, "pull_id") == NULL);
	t_resp_free(&r);
}

static void test_import_at_the_limit(void)
{
	t_resp r = upload_wide("w2000", TH_SCHEMA_MAX_COLUMNS);
	const cJSON *res, *schema;
	char branch[256];

	CHECK_STR(t_str(&r, "job_status"), "Completed");
	res = cJSON_GetObjectItem(r.json, "result");
	snprintf(branch, sizeof(branch), "%s",
	         nz(cJSON_GetStringValue(cJSON_GetObjectItem(res, "branch"))));
	t_resp_free(&r);
	CHECK(branch[0] != '\0');
	r = sql_at(branch, "SELECT * FROM w2000 ORDER BY c1");
	CHECK(r.status == 200);
	schema = cJSON_GetObjectItem(r.json, "schema");
	CHECK(cJSON_GetArraySize(schema) == TH_SCHEMA_MAX_COLUMNS);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "rows")) == 3);
	CHECK_CONTAINS(r.body, "\"c2000\":\"4\"}");
	t_resp_free(&r);
}

static void test_left_out_table(void)
{
	t_resp r = sql_at("main", "SELECT name FROM people WHERE id = 1");

	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "\"rows\":[{\"name\":\"Alice\"}]");
	t_resp_free(&r);
	r = sql_at("main", "SELECT * FROM wide");
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "code"), "ELIMIT");
	CHECK_STR(t_str(&r, "message"), "table 'wide' cannot be queried at 'main': it has 2001 "
	                                "columns, more than the 2000 a table may have for SQL; the "
	                                "other tables can be");
	t_resp_free(&r);
	r = sql_at("main", "SELECT count(*) AS n FROM people");
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "\"rows\":[{\"n\":\"");
	t_resp_free(&r);
}

/* Commit an empty table `name` of `ncols` text columns on alice/shop's main through the library
 * (no server running: it holds the data dir). Returns 0 or -1. */
static int commit_wide_table(const char *name, size_t ncols)
{
	char repo_path[4200];
	th_schema s = TH_SCHEMA_INIT;
	th_commit_info ci;
	th_oid head, root, commit, no_rows;
	th_error err = { 0 };
	th_repo *repo = NULL;
	int error;

	memset(&ci, 0, sizeof(ci));
	memset(&no_rows, 0, sizeof(no_rows));
	if ((s.cols = calloc(ncols, sizeof(*s.cols))) == NULL)
		abort();
	for (size_t i = 0; i < ncols; i++) {
		char col[32];
		snprintf(col, sizeof(col), "c%zu", i + 1);
		s.cols[i].name = strdup(col);
		s.cols[i].type = TH_TYPE_TEXT;
		s.cols[i].nullable = 1;
		s.ncols++;
	}
	snprintf(repo_path, sizeof(repo_path), "%s/repos/alice/shop.git", dir);
	if ((error = th_repo_open(&repo, repo_path, 1, &err)) == 0 &&
	    (error = th_repo_branch_get(&head, repo, "main", &err)) == 0 &&
	    (error = th_repo_commit_read(&ci, repo, &head, &err)) == 0 &&
	    (error = th_table_store(&root, repo, &ci.tree, name, &s, &no_rows, 0, &err)) == 0 &&
	    (error = th_repo_commit_write(&commit, repo, &root, &head, 1, "test",
	                                  "test@example.com", "a table too wide for SQL", &err)) ==
	            0)
		error = th_repo_branch_cas(repo, "main", &commit, &head, "test", &err);
	if (error != 0)
		fprintf(stderr, "committing the wide table failed: %s\n", err.msg);
	th_commit_info_dispose(&ci);
	th_schema_dispose(&s);
	th_repo_free(repo);
	return error == 0 ? 0 : -1;
}

int main(void)
{
	th_error err = { 0 };

	if (th_repo_global_init(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	dir = t_mkdtemp();
	if (t_sh(NULL, "'%s' db create --data '%s' alice/shop >/dev/null", TH_BIN, dir) != 0 ||
	    t_sh(NULL,
	         "'%s' import --data '%s' alice/shop --table people --pk id '%s/csv/people.csv' "
	         ">/dev/null",
	         TH_BIN, dir, TH_FIXTURES) != 0 ||
	    commit_wide_table("wide", TH_SCHEMA_MAX_COLUMNS + 1) < 0) {
		fprintf(stderr, "setting up the database failed\n");
		return 1;
	}
	if (t_server_start(&srv, dir, 0, NULL) < 0)
		return 1;
	if (t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;
	RUN(test_left_out_table);
	RUN(test_import_refuses_too_many_columns);
	RUN(test_import_at_the_limit);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	free(bob);
	t_rmdir(dir);
	th_repo_global_shutdown();
	TH_TEST_END();
}
