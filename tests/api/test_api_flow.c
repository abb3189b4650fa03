/* test_api_flow.c: the whole upload flow against a real `tablehub serve`, driven with curl as a
 * DoltHub client would: users and tokens, databases, branches, an upload that ends Completed with
 * a pull request whose branch holds the table (checked with `tablehub export`), every importOp,
 * a bad CSV that fails with its line and column, the job and operation lists, the log. */
#include "../harness.h"
#include "server.h"

static t_server srv;
static char *dir, *alice, *bob;
static char base_branch[256]; /* the import branch of the first upload: holds table people */

static char *write_tmp(const char *name, const char *text)
{
	return t_write_in(dir, name, text);
}

/* `tablehub export` of table at ref (malloc'd CSV, or NULL when it fails). */
static char *export(const char *ref, const char *table)
{
	char *out = NULL;

	if (t_sh(&out, "'%s' export --data '%s' alice/shop '%s' '%s' 2>&1", TH_BIN, dir, ref,
	         table) != 0) {
		fprintf(stderr, "export failed: %s\n", out ? out : "");
		free(out);
		return NULL;
	}
	return out;
}

static void test_user_and_tokens(void)
{
	t_resp r;
	char *second = NULL;

	r = t_http(&srv, "'%s/user'", srv.base);
	CHECK(r.status == 401);
	CHECK_STR(t_str(&r, "status"), "Error");
	CHECK_CONTAINS(t_str(&r, "message"), "authentication required");
	t_resp_free(&r);

	r = t_http(&srv, AUTH "'%s/user'", alice, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "status"), "Success");
	CHECK_STR(t_str(&r, "username"), "alice");
	t_resp_free(&r);

	r = t_http(&srv, "-H 'Authorization: Bearer %s' '%s/user'", alice, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "username"), "alice");
	t_resp_free(&r);

	r = t_http(&srv, "-H 'authorization: %s' '%s/user'", bob, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "username"), "bob");
	t_resp_free(&r);

	/* token create prints another working token, alone on stdout. */
	CHECK(t_sh(&second, "'%s' token create --data '%s' alice 2>/dev/null", TH_BIN, dir) == 0);
	second[strcspn(second, "\n")] = '\0';
	CHECK(strncmp(second, "thp_", 4) == 0 && strcmp(second, alice) != 0);
	r = t_http(&srv, AUTH "'%s/user'", second, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "username"), "alice");
	t_resp_free(&r);
	free(second);

	/* user add of an existing user fails and prints no token. */
	CHECK(t_sh(&second, "'%s' user add --data '%s' alice 2>/dev/null", TH_BIN, dir) == 1);
	CHECK_STR(second, "");
	free(second);
}

static void test_databases_and_branches(void)
{
	t_resp r;
	const cJSON *b;

	r = t_http(&srv,
	           AUTH
	           "-H 'content-type: application/json' -d '{\"ownerName\":\"alice\","
	           "\"repoName\":\"shop\",\"description\":\"a shop\",\"visibility\":\"public\"}' "
	           "'%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "status"), "Success");
	CHECK_STR(t_str(&r, "repository_owner"), "alice");
	CHECK_STR(t_str(&r, "repository_name"), "shop");
	CHECK_STR(t_str(&r, "description"), "a shop");
	CHECK_STR(t_str(&r, "visibility"), "public");
	t_resp_free(&r);

	r = t_http(&srv, "'%s/alice/shop/branches'", srv.base); /* public: no token needed */
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "database_owner"), "alice");
	CHECK_STR(t_str(&r, "database_name"), "shop");
	b = cJSON_GetObjectItem(r.json, "branches");
	CHECK(cJSON_GetArraySize(b) == 1);
	CHECK_STR(
	        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(b, 0), "branch_name")),
	        "main");
	t_resp_free(&r);

	r = t_http(&srv,
	           AUTH "-d '{\"revisionType\":\"branch\",\"revisionName\":\"main\","
	                "\"newBranchName\":\"dev\"}' '%s/alice/shop/branches'",
	           alice, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "new_branch_name"), "dev");
	CHECK_STR(t_str(&r, "revision_type"), "branch");
	CHECK_STR(t_str(&r, "revision_name"), "main");
	t_resp_free(&r);

	r = t_http(&srv, AUTH "'%s/alice/shop/branches'", alice, srv.base);
	b = cJSON_GetObjectItem(r.json, "branches");
	CHECK(cJSON_GetArraySize(b) == 2);
	CHECK_CONTAINS(r.body, "\"branch_name\":\"dev\"");
	t_resp_free(&r);

	/* The same name again is a conflict. */
	r = t_http(&srv,
	           AUTH "-d '{\"revisionType\":\"branch\",\"revisionName\":\"main\","
	                "\"newBranchName\":\"dev\"}' '%s/alice/shop/branches'",
	           alice, srv.base);
	CHECK(r.status == 409);
	CHECK_CONTAINS(t_str(&r, "message"), "already exists");
	t_resp_free(&r);
}

static void test_upload_to_completed(void)
{
	char *csv = write_tmp("people.csv", "id,name,age\n1,ann,31\n2,bob,42\n3,cy,27\n");
	char op[256], uop[256], pull[32] = "", *out;
	const cJSON *res, *jobs, *ops;
	t_resp r;

	/* params first, without a Content-Type (--form-string), then the file */
	r = t_upload(
	        &srv, alice, "alice/shop", csv,
	        "{\"tableName\":\"people\",\"fileName\":\"people.csv\",\"branchName\":\"main\","
	        "\"fileType\":\"Csv\",\"importOp\":\"Create\",\"primaryKeys\":[\"id\"]}");
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "status"), "Success");
	CHECK_STR(t_str(&r, "database_owner"), "alice");
	CHECK_STR(t_str(&r, "database_name"), "shop");
	CHECK_STR(t_str(&r, "branch_name"), "main");
	CHECK_STR(t_str(&r, "table_name"), "people");
	CHECK(strncmp(t_str(&r, "operation_name") ? t_str(&r, "operation_name") : "",
	              "repositoryOwners/alice/repositories/shop/jobs/", 46) == 0);
	CHECK(strncmp(t_str(&r, "user_operation_name") ? t_str(&r, "user_operation_name") : "",
	              "users/alice/userOperations/", 27) == 0);
	snprintf(op, sizeof(op), "%s",
	         t_str(&r, "operation_name") ? t_str(&r, "operation_name") : "");
	snprintf(uop, sizeof(uop), "%s",
	         t_str(&r, "user_operation_name") ? t_str(&r, "user_operation_name") : "");
	t_resp_free(&r);

	r = t_poll(&srv, alice, "alice/shop", op, 120);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	CHECK_STR(t_str(&r, "operation_name"), op);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "job_created")));
	CHECK_STR(t_str(&r, "database_owner"), "alice");
	CHECK_STR(t_str(&r, "database_name"), "shop");
	CHECK(t_str(&r, "pull_id") != NULL && atoi(t_str(&r, "pull_id")) >= 1);
	if (t_str(&r, "pull_id"))
		snprintf(pull, sizeof(pull), "%s", t_str(&r, "pull_id"));
	res = cJSON_GetObjectItem(r.json, "result");
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(res, "rows_added")) == 3);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(res, "rows_modified")) == 0);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(res, "rows_removed")) == 0);
	CHECK(strlen(nz(cJSON_GetStringValue(cJSON_GetObjectItem(res, "commit")))) == 40);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "progress"),
	                                               "bytes_total")) == 38);
	t_resp_free(&r);

	/* The pull request, by DoltHub's field names. */
	r = t_http(&srv, AUTH "'%s/alice/shop/pulls/%s'", alice, srv.base, pull);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "pull_id"), pull);
	CHECK_STR(t_str(&r, "title"), "Import people.csv into people");
	CHECK_STR(t_str(&r, "state"), "Open");
	CHECK_STR(t_str(&r, "author"), "alice");
	CHECK_STR(t_str(&r, "to_branch_name"), "main");
	CHECK_STR(t_str(&r, "to_branch_owner"), "alice");
	CHECK_STR(t_str(&r, "from_branch_database"), "shop");
	CHECK(strncmp(nz(t_str(&r, "from_branch_name")), "alice/import-", 13) == 0);
	CHECK(t_str(&r, "created_at") != NULL);
	snprintf(base_branch, sizeof(base_branch), "%s", nz(t_str(&r, "from_branch_name")));
	t_resp_free(&r);

	r = t_http(&srv, "'%s/alice/shop/pulls'", srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "pulls")) >= 1);
	CHECK_CONTAINS(r.body, "\"title\":\"Import people.csv into people\"");
	CHECK_CONTAINS(r.body, "\"creator\":\"alice\"");
	CHECK(cJSON_GetObjectItem(r.json, "next_page_token") != NULL);
	t_resp_free(&r);

	/* The import branch holds the table; main is untouched until the pull is merged. */
	out = export(base_branch, "people");
	CHECK_STR(out, "id,name,age\n1,ann,31\n2,bob,42\n3,cy,27\n");
	free(out);
	out = export("main", "people");
	CHECK(out == NULL);
	free(out);

	/* The poll also takes branch= and the user operation name. */
	r = t_http(&srv,
	           "-G " AUTH "--data-urlencode 'branch=main' --data-urlencode 'operationName=%s' "
	           "'%s/alice/shop/upload'",
	           alice, uop, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	CHECK_STR(t_str(&r, "pull_id"), pull);
	t_resp_free(&r);

	/* The operation lists. */
	r = t_http(&srv, AUTH "'%s/alice/shop/jobs'", alice, srv.base);
	CHECK(r.status == 200);
	jobs = cJSON_GetObjectItem(r.json, "jobs");
	CHECK(cJSON_GetArraySize(jobs) >= 1);
	{
		const cJSON *j = cJSON_GetArrayItem(jobs, cJSON_GetArraySize(jobs) - 1);
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "job_id")), op);
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "creator")), "alice");
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "job_type")), "Import");
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "status")), "Succeeded");
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "description")),
		          "Import people.csv into people");
		CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(j, "created_at")) != NULL);
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "error")), "");
	}
	CHECK(cJSON_GetObjectItem(r.json, "next_page_token") != NULL);
	t_resp_free(&r);

	r = t_http(&srv, AUTH "'%s/users/alice/operations'", alice, srv.base);
	CHECK(r.status == 200);
	ops = cJSON_GetObjectItem(r.json, "operations");
	CHECK(cJSON_GetArraySize(ops) >= 1);
	CHECK_CONTAINS(r.body, uop);
	CHECK_CONTAINS(r.body, "\"operation_status\":\"Success\"");
	CHECK_CONTAINS(r.body, "\"operation_type\":\"Import\"");
	t_resp_free(&r);

	r = t_http(&srv, AUTH "'%s/users/alice/operations'", bob, srv.base);
	CHECK(r.status == 403);
	CHECK_CONTAINS(t_str(&r, "message"), "only your own operations");
	t_resp_free(&r);
	free(csv);
}

/* Upload `text` as an import of `op` into people on base_branch; wait for it; return the final
 * poll (job_status Completed or Failed). */
static t_resp import_op(const char *name, const char *text, const char *op, const char *extra)
{
	char *file = write_tmp(name, text), params[1024], opname[256];
	t_resp r;

	snprintf(params, sizeof(params),
	         "{\"tableName\":\"people\",\"fileName\":\"%s\",\"branchName\":\"%s\","
	         "\"fileType\":\"Csv\",\"importOp\":\"%s\"%s}",
	         name, base_branch, op, extra);
	r = t_upload(&srv, alice, "alice/shop", file, params);
	free(file);
	if (r.status != 200) {
		fprintf(stderr, "upload %s: %d %s\n", name, r.status, r.body);
		return r;
	}
	snprintf(opname, sizeof(opname), "%s", t_str(&r, "operation_name"));
	t_resp_free(&r);
	return t_poll(&srv, alice, "alice/shop", opname, 120);
}

/* The branch an import made (from its pull request). */
static char *import_branch(const t_resp *poll)
{
	const cJSON *res = cJSON_GetObjectItem(poll->json, "result");
	const char *b = cJSON_GetStringValue(cJSON_GetObjectItem(res, "branch"));
	return strdup(b ? b : "");
}

static void test_import_ops(void)
{
	t_resp r;
	char *branch, *out;

	CHECK(base_branch[0] != '\0');
	/* Update: upsert over the columns in the file; other rows and columns kept. */
	r = import_op("update.csv", "id,age\n2,43\n4,50\n", "update", "");
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	branch = import_branch(&r);
	out = export(branch, "people");
	CHECK_STR(out, "id,name,age\n1,ann,31\n2,bob,43\n3,cy,27\n4,,50\n");
	free(out);
	free(branch);
	t_resp_free(&r);

	/* Replace: the rows become the file's rows. */
	r = import_op("replace.csv", "id,name,age\n7,gus,70\n", "Replace", "");
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	branch = import_branch(&r);
	out = export(branch, "people");
	CHECK_STR(out, "id,name,age\n7,gus,70\n");
	free(out);
	free(branch);
	t_resp_free(&r);

	/* Append: insert only. */
	r = import_op("append.csv", "id,name,age\n5,eve,22\n", "Append", "");
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	branch = import_branch(&r);
	out = export(branch, "people");
	CHECK_STR(out, "id,name,age\n1,ann,31\n2,bob,42\n3,cy,27\n5,eve,22\n");
	free(out);
	free(branch);
	t_resp_free(&r);

	/* Append of an existing key fails and names it. */
	r = import_op("append-dup.csv", "id,name,age\n1,zed,9\n", "Append", "");
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK(t_str(&r, "message") != NULL && strlen(t_str(&r, "message")) > 0);
	CHECK(t_str(&r, "pull_id") == NULL);
	t_resp_free(&r);

	/* Overwrite: drop and re-create with the new schema. */
	r = import_op("overwrite.csv", "sku,price\nA,1.5\nB,2\n", "Overwrite",
	              ",\"primaryKeys\":[\"sku\"]");
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	branch = import_branch(&r);
	out = export(branch, "people");
	CHECK_STR(out, "sku,price\nA,1.5\nB,2\n");
	free(out);
	free(branch);
	t_resp_free(&r);

	/* Create of an existing table fails. */
	r = import_op("create-again.csv", "id\n1\n", "Create", ",\"primaryKeys\":[\"id\"]");
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_CONTAINS(t_str(&r, "message"), "exists");
	t_resp_free(&r);
}

static void test_file_first_params_typed(void)
{
	char *csv = write_tmp("t2.psv", "k|v\na|1\nb|2\n");
	char *params = write_tmp("params.json", "{\"tableName\":\"kv\",\"fileName\":\"t2.psv\","
	                                        "\"branchName\":\"dev\",\"fileType\":\"psv\","
	                                        "\"importOp\":\"create\",\"primaryKeys\":[\"k\"]}");
	char op[256], pull[32], *branch, *out;
	t_resp r;

	/* The file part first, then params with a Content-Type of its own. */
	r = t_http(&srv,
	           AUTH
	           "-F 'file=@%s' -F 'params=<%s;type=application/json' '%s/alice/shop/upload'",
	           alice, csv, params, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "branch_name"), "dev");
	CHECK_STR(t_str(&r, "table_name"), "kv");
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", op, 120);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	snprintf(pull, sizeof(pull), "%s", nz(t_str(&r, "pull_id")));
	branch = import_branch(&r);
	out = export(branch, "kv");
	CHECK_STR(out, "k,v\na,1\nb,2\n");
	free(out);
	t_resp_free(&r);

	r = t_http(&srv, AUTH "'%s/alice/shop/pulls/%s'", alice, srv.base, pull);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "to_branch_name"), "dev");
	CHECK_STR(t_str(&r, "from_branch_name"), branch);
	CHECK_STR(t_str(&r, "title"), "Import t2.psv into kv");
	t_resp_free(&r);
	free(branch);

	/* DoltHub's JS example labels the multipart body application/json: the body decides. */
	r = t_http(&srv,
	           AUTH "-H 'Content-Type: application/json' -F 'file=@%s' -F 'params=<%s' "
	                "'%s/alice/shop/upload'",
	           alice, csv, params, srv.base);
	CHECK(r.status == 200);
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", op, 120);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	branch = import_branch(&r);
	out = export(branch, "kv");
	CHECK_STR(out, "k,v\na,1\nb,2\n");
	free(out);
	free(branch);
	t_resp_free(&r);

	/* A browser's fetch() with that header sends no boundary at all: the body's first line
	 * gives it. */
	{
		static const char body[] =
		        "--b0undary\r\n"
		        "Content-Disposition: form-data; name=\"params\"\r\n\r\n"
		        "{\"tableName\":\"sniffed\",\"fileName\":\"s.csv\",\"branchName\":\"dev\","
		        "\"fileType\":\"Csv\",\"importOp\":\"Create\"}\r\n"
		        "--b0undary\r\n"
		        "Content-Disposition: form-data; name=\"file\"; filename=\"s.csv\"\r\n"
		        "Content-Type: text/csv\r\n\r\n"
		        "x,y\r\n1,2\r\n\r\n"
		        "--b0undary--\r\n";
		char *raw = write_tmp("raw-body", body);
		r = t_http(&srv,
		           AUTH "-H 'Content-Type: application/json' --data-binary @%s "
		                "'%s/alice/shop/upload'",
		           alice, raw, srv.base);
		free(raw);
	}
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "table_name"), "sniffed");
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", op, 120);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	branch = import_branch(&r);
	out = export(branch, "sniffed");
	CHECK_STR(out, "x,y\n1,2\n");
	free(out);
	free(branch);
	t_resp_free(&r);
	free(csv);
	free(params);
}

/* DoltHub's JSON form: {"rows":[{...}]}, the columns from the first row's keys. */
static void test_json_upload(void)
{
	char *file =
	        write_tmp("people.json", "{\"rows\":[{\"id\":2,\"name\":\"Bo\",\"tags\":[1,2]},"
	                                 "{\"id\":1,\"name\":\"Al\",\"tags\":null}]}");
	char op[256], *branch, *out;
	t_resp r;

	r = t_upload(&srv, alice, "alice/shop", file,
	             "{\"tableName\":\"jpeople\",\"fileName\":\"people.json\","
	             "\"branchName\":\"main\",\"fileType\":\"Json\",\"importOp\":\"Create\","
	             "\"primaryKeys\":[\"id\"]}");
	free(file);
	CHECK(r.status == 200);
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", op, 120);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	branch = import_branch(&r);
	out = export(branch, "jpeople");
	CHECK_STR(out, "id,name,tags\n1,Al,\n2,Bo,\"[1,2]\"\n");
	free(out);
	free(branch);
	t_resp_free(&r);
}

static void test_bad_csv_fails_with_place(void)
{
	t_resp r;
	char *jobs;

	/* Line 3, column 2 holds invalid UTF-8; a new table, so nothing else can fail first. */
	{
		char *file = write_tmp("bad.csv", "id,name\n1,ann\n2,\xff\xfe\n");
		char opname[256];
		r = t_upload(
		        &srv, alice, "alice/shop", file,
		        "{\"tableName\":\"badtable\",\"fileName\":\"bad.csv\","
		        "\"branchName\":\"main\",\"fileType\":\"Csv\",\"importOp\":\"Create\"}");
		free(file);
		CHECK(r.status == 200);
		snprintf(opname, sizeof(opname), "%s", nz(t_str(&r, "operation_name")));
		t_resp_free(&r);
		r = t_poll(&srv, alice, "alice/shop", opname, 120);
	}
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK(t_str(&r, "message") != NULL);
	CHECK(t_num(&r, "line") == 3);
	CHECK(t_num(&r, "column") == 2);
	CHECK(t_str(&r, "pull_id") == NULL);
	t_resp_free(&r);

	r = t_http(&srv, AUTH "'%s/alice/shop/jobs'", alice, srv.base);
	jobs = r.body;
	CHECK_CONTAINS(jobs, "\"status\":\"Failed\"");
	t_resp_free(&r);

	/* Several bad rows: the poll lists every one (line, column, value, reason). */
	{
		char *file = write_tmp("bad2.csv", "id,name\n1,ann\n2\n,bob\n4,dan\n");
		char opname[256];
		const cJSON *res, *rows, *first;
		r = t_upload(&srv, alice, "alice/shop", file,
		             "{\"tableName\":\"bad2\",\"fileName\":\"bad2.csv\","
		             "\"branchName\":\"main\",\"fileType\":\"Csv\",\"importOp\":\"Create\","
		             "\"primaryKeys\":[\"id\"]}");
		free(file);
		snprintf(opname, sizeof(opname), "%s", nz(t_str(&r, "operation_name")));
		t_resp_free(&r);
		r = t_poll(&srv, alice, "alice/shop", opname, 120);
		CHECK_STR(t_str(&r, "job_status"), "Failed");
		CHECK_STR(t_str(&r, "message"),
		          "line 3: expected 2 fields as in the header, found 1 "
		          "(and 1 more rows rejected)");
		res = cJSON_GetObjectItemCaseSensitive(r.json, "result");
		rows = cJSON_GetObjectItemCaseSensitive(res, "rejected_rows");
		CHECK(cJSON_GetArraySize(rows) == 2);
		CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(res, "rejected_total")) == 2);
		first = cJSON_GetArrayItem(rows, 1);
		CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "line")) == 4);
		CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "column")) == 1);
		CHECK(cJSON_IsNull(cJSON_GetObjectItem(first, "value")));
		CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(first, "reason")),
		               "primary key value is NULL");
		t_resp_free(&r);
	}
}

static void test_log(void)
{
	char path[700], *log;

	snprintf(path, sizeof(path), "%s/serve.log", dir);
	log = t_read_file(path, NULL);
	CHECK(log != NULL);
	CHECK_CONTAINS(log, "POST /api/v1alpha1/alice/shop/upload 200");
	CHECK_CONTAINS(log, "GET /api/v1alpha1/user 401");
	/* never a token */
	CHECK(log == NULL || strstr(log, alice + 4) == NULL);
	CHECK(log == NULL || strstr(log, bob + 4) == NULL);
	free(log);
}

/* SIGTERM stops the server cleanly (exit 0; under ASan, also no leaks). */
static void test_clean_shutdown(void)
{
	int st = t_server_stop(&srv, SIGTERM);

	CHECK(st == 0);
	if (st != 0)
		t_sh(NULL, "tail -50 '%s/serve.log' >&2", dir);
}

int main(void)
{
	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, NULL) < 0)
		return 1;
	if (t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;
	RUN(test_user_and_tokens);
	RUN(test_databases_and_branches);
	RUN(test_upload_to_completed);
	RUN(test_import_ops);
	RUN(test_file_first_params_typed);
	RUN(test_json_upload);
	RUN(test_bad_csv_fails_with_place);
	RUN(test_clean_shutdown);
	RUN(test_log);
	free(alice);
	free(bob);
	t_rmdir(dir);
	TH_TEST_END();
}
