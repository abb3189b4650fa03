/* test_api_query.c: SQL reads and CSV downloads against a real `tablehub serve`, as a DoltHub
 * client makes them: GET /api/v1alpha1/{owner}/{db}[/{ref}]?q= with DoltHub's fields, every kind
 * of ref (branch, tag, full and short commit id, a branch with a slash), RowLimit, each sandbox
 * refusal a 400 that changes no file, private databases hidden, one snapshot build for many
 * concurrent first queries, and GET /csv/{owner}/{db}/{ref}/{table}. DoltHub's body is also
 * checked byte for byte in-process (api_query_json, which the server and `tablehub query --json`
 * share), with the one status map of api/reply.c. */
#include "../harness.h"
#include "server.h"
#include "../../api/api.h"
#include "../../api/query_json.h"
#include "tablehub/repo.h"

static t_server srv;
static char *dir, *alice, *bob;
static char root[256]; /* http://127.0.0.1:PORT */

/* GET the SQL endpoint of `path` ("alice/shop/main") with q=sql, as curl --data-urlencode sends
 * it (spaces as %20). */
static t_resp sql_get(const char *token, const char *path, const char *sql)
{
	char *file = malloc(strlen(dir) + 16);
	t_resp r;

	sprintf(file, "%s/q.sql", dir);
	t_write_file(file, sql, strlen(sql));
	if (token)
		r = t_http(&srv, "-G " AUTH "--data-urlencode 'q@%s' '%s/%s'", token, file,
		           srv.base, path);
	else
		r = t_http(&srv, "-G --data-urlencode 'q@%s' '%s/%s'", file, srv.base, path);
	free(file);
	return r;
}

/* The rows of a response as "a|b\n" lines (NULL as \N), in the order of its schema. */
static char *rows_text(const t_resp *r)
{
	const cJSON *schema = cJSON_GetObjectItem(r->json, "schema"), *rows, *row, *col;
	size_t cap = 4096, n = 0;
	char *out = malloc(cap);

	out[0] = '\0';
	rows = cJSON_GetObjectItem(r->json, "rows");
	cJSON_ArrayForEach(row, rows)
	{
		int first = 1;
		cJSON_ArrayForEach(col, schema)
		{
			const char *name =
			        cJSON_GetStringValue(cJSON_GetObjectItem(col, "columnName"));
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, nz(name));
			const char *s = cJSON_IsString(v) ? v->valuestring : "\\N";
			if (n + strlen(s) + 4 > cap)
				out = realloc(out, cap = (cap + strlen(s)) * 2);
			n += (size_t)sprintf(out + n, "%s%s", first ? "" : "|", s);
			first = 0;
		}
		n += (size_t)sprintf(out + n, "\n");
	}
	return out;
}

#define CHECK_SQL(path, sql, expected)                                                             \
	do {                                                                                       \
		t_resp r_ = sql_get(NULL, (path), (sql));                                          \
		char *rows_ = rows_text(&r_);                                                      \
		if (r_.status != 200)                                                              \
			fprintf(stderr, "%s %s: %d %s\n", (path), (sql), r_.status, r_.body);      \
		CHECK(r_.status == 200);                                                           \
		CHECK_STR(rows_, (expected));                                                      \
		free(rows_);                                                                       \
		t_resp_free(&r_);                                                                  \
	} while (0)

static char *git(const char *args)
{
	char *out = NULL;

	if (t_sh(&out, "git -C '%s/repos/alice/shop.git' %s", dir, args) != 0) {
		free(out);
		return NULL;
	}
	out[strcspn(out, "\n")] = '\0';
	return out;
}

/* Files under repos/ and cache/ with their hashes (the things a query must never change). */
static char *files_state(void)
{
	char *out = NULL;

	t_sh(&out,
	     "cd '%s' && find repos cache -type f ! -name '*.building' -exec sha1sum {} + | sort",
	     dir);
	return out;
}

static void test_select_dolthub_shape(void)
{
	t_resp r;
	const cJSON *schema;

	r = sql_get(NULL, "alice/shop", "SELECT * FROM people ORDER BY id");
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "query_execution_status"), "Success");
	CHECK_STR(t_str(&r, "query_execution_message"), "");
	CHECK_STR(t_str(&r, "repository_owner"), "alice");
	CHECK_STR(t_str(&r, "repository_name"), "shop");
	CHECK_STR(t_str(&r, "commit_ref"), "main");
	CHECK_STR(t_str(&r, "sql_query"), "SELECT * FROM people ORDER BY id");
	schema = cJSON_GetObjectItem(r.json, "schema");
	CHECK(cJSON_GetArraySize(schema) == 6);
	CHECK_STR(cJSON_GetStringValue(
	                  cJSON_GetObjectItem(cJSON_GetArrayItem(schema, 0), "columnName")),
	          "id");
	CHECK_STR(cJSON_GetStringValue(
	                  cJSON_GetObjectItem(cJSON_GetArrayItem(schema, 3), "columnType")),
	          "date");
	{
		char *rows = rows_text(&r);
		CHECK_STR(rows, "1|Alice|34|2021-03-04|true|91.5\n2|Bob|\\N|2020-12-31|false|78\n"
		                "3|Carol, Jr.|29|2024-02-29|true|\\N\n4|Dan|41|\\N|false|88.25\n");
		free(rows);
	}
	/* Values are strings, NULL is null. */
	CHECK(cJSON_IsString(cJSON_GetObjectItem(
	        cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "rows"), 0), "id")));
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(
	        cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "rows"), 1), "age")));
	t_resp_free(&r);

	/* Without q: the tables. */
	r = t_http(&srv, "'%s/alice/shop/main'", srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "sql_query"), "SHOW TABLES");
	{
		char *rows = rows_text(&r);
		CHECK_STR(rows, "inventory\norders\npeople\n");
		free(rows);
	}
	t_resp_free(&r);

	/* A query string written by hand, spaces as '+' (as HTML forms and Python's urlencode). */
	r = t_http(&srv, "'%s/alice/shop/main?q=SELECT+count(*)+AS+n+FROM+orders'", srv.base);
	CHECK(r.status == 200);
	{
		char *rows = rows_text(&r);
		CHECK_STR(rows, "3\n");
		free(rows);
	}
	t_resp_free(&r);

	/* An SQL error: DoltHub's Error shape, HTTP 400. */
	r = sql_get(NULL, "alice/shop/main", "SELECT nope FROM people");
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "query_execution_status"), "Error");
	CHECK_STR(t_str(&r, "query_execution_message"), "query error: no such column: nope");
	CHECK_STR(t_str(&r, "status"), "Error");
	CHECK_STR(t_str(&r, "code"), "EINVALID");
	t_resp_free(&r);
}

/* DoltHub's body in-process, as the server and the CLI's --json build it: the head piece and the
 * rest, byte for byte, and the HTTP status of each failure from api_status_for. */
static char *json_of(const char *ref, const char *sql, const th_query_opts *o, int *code)
{
	th_query_target t = { dir, "alice", "shop", ref };
	api_query_body body = { TH_BUF_INIT, TH_BUF_INIT };
	th_error err = { 0 };
	char *s;

	*code = api_query_json(&body, NULL, &t, sql, o, &err);
	if (body.head.ptr == NULL)
		return strdup("(no body)");
	th_buf_put(&body.head, body.rest.ptr ? body.rest.ptr : "", body.rest.size, NULL);
	s = th_buf_detach(&body.head);
	api_query_body_dispose(&body);
	return s;
}

static void test_dolthub_json(void)
{
	static const char *const select_body =
	        "{\"query_execution_status\":\"Success\",\"query_execution_message\":\"\","
	        "\"repository_owner\":\"alice\",\"repository_name\":\"shop\","
	        "\"commit_ref\":\"main\",\"sql_query\":\"SELECT id, name, age FROM people "
	        "WHERE id IN (2, 3) ORDER BY id\",\"schema\":[{\"columnName\":\"id\","
	        "\"columnType\":\"integer\"},{\"columnName\":\"name\",\"columnType\":\"text\"},"
	        "{\"columnName\":\"age\",\"columnType\":\"integer\"}],\"rows\":[{\"id\":\"2\","
	        "\"name\":\"Bob\",\"age\":null},{\"id\":\"3\",\"name\":\"Carol, Jr.\","
	        "\"age\":\"29\"}]}";
	th_query_opts o;
	t_resp r;
	char *j;
	int code;

	j = json_of("main", "SELECT id, name, age FROM people WHERE id IN (2, 3) ORDER BY id", NULL,
	            &code);
	CHECK(code == 0);
	CHECK_STR(j, select_body);
	free(j);
	/* The same bytes over HTTP. */
	r = sql_get(NULL, "alice/shop/main",
	            "SELECT id, name, age FROM people WHERE id IN (2, 3) ORDER BY id");
	CHECK(r.status == 200);
	CHECK_STR(r.body, select_body);
	t_resp_free(&r);
	/* Without a query: the tables. */
	j = json_of("main", NULL, NULL, &code);
	CHECK(code == 0);
	CHECK_CONTAINS(j,
	               "\"sql_query\":\"SHOW TABLES\",\"schema\":[{\"columnName\":"
	               "\"Tables_in_shop\",\"columnType\":\"text\"}],\"rows\":[{\"Tables_in_shop\":"
	               "\"inventory\"},{\"Tables_in_shop\":\"orders\"},{\"Tables_in_shop\":"
	               "\"people\"}]}");
	free(j);
	th_query_opts_init(&o);
	o.max_rows = 1;
	j = json_of("main", "SELECT id FROM people", &o, &code);
	CHECK(code == 0);
	CHECK_CONTAINS(j, "{\"query_execution_status\":\"RowLimit\",\"query_execution_message\":"
	                  "\"the result was cut at 1 rows (the row limit)\"");
	CHECK_CONTAINS(j, "\"rows\":[{\"id\":\"1\"}]}");
	free(j);
	/* A result with no rows still has its schema. */
	j = json_of("main", "SELECT id FROM people WHERE id > 99", NULL, &code);
	CHECK(code == 0);
	CHECK_CONTAINS(j, "\"schema\":[{\"columnName\":\"id\",\"columnType\":\"integer\"}],"
	                  "\"rows\":[]}");
	free(j);
	j = json_of("main", "SELEC 1", NULL, &code);
	CHECK(code == TH_EINVALID && api_status_for(code) == 400);
	CHECK_STR(j, "{\"query_execution_status\":\"Error\",\"query_execution_message\":"
	             "\"query error: near \\\"SELEC\\\": syntax error\",\"repository_owner\":"
	             "\"alice\",\"repository_name\":\"shop\",\"commit_ref\":\"main\","
	             "\"sql_query\":\"SELEC 1\",\"status\":\"Error\",\"message\":\"query error: "
	             "near \\\"SELEC\\\": syntax error\",\"code\":\"EINVALID\"}");
	free(j);
	j = json_of("nope", "SELECT 1", NULL, &code);
	CHECK(code == TH_ENOTFOUND && api_status_for(code) == 404);
	CHECK_CONTAINS(j, "\"code\":\"ENOTFOUND\"");
	free(j);
	/* Bytes that are not UTF-8 cannot break the JSON. */
	j = json_of("main", "SELECT CAST(x'41ff42' AS TEXT) AS t, x'00ff' AS b", NULL, &code);
	CHECK(code == 0);
	CHECK_CONTAINS(j, "\"rows\":[{\"t\":\"A\xef\xbf\xbd"
	                  "B\",\"b\":\"00ff\"}]");
	free(j);
	/* One status map for every handler, the query's included: a conflict is 409, not 500. */
	CHECK(api_status_for(TH_EEXISTS) == 409);
	CHECK(api_status_for(TH_ECONFLICT) == 409);
	CHECK(api_status_for(TH_ELIMIT) == 400);
	CHECK(api_status_for(TH_EBUSY) == 503);
	CHECK(api_status_for(TH_ESTORE) == 500);
}

/* A large result leaves the server in two pieces without a copy: it must arrive whole. */
static void test_large_body(void)
{
	t_resp r = sql_get(NULL, "alice/shop/main",
	                   "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
	                   "WHERE x < 1000) SELECT x, printf('%.*c', 2000, 'a') AS pad FROM n");
	const cJSON *rows = cJSON_GetObjectItem(r.json, "rows");

	CHECK(r.status == 200);
	CHECK(cJSON_GetArraySize(rows) == 1000);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 999), "x")),
	          "1000");
	CHECK(strlen(nz(cJSON_GetStringValue(
	              cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 999), "pad")))) == 2000);
	t_resp_free(&r);
}

static void test_ref_kinds(void)
{
	const char *sql = "SELECT group_concat(name, ',') FROM people";
	char *full, path[256];
	t_resp r;

	CHECK(t_sh(NULL, "git -C '%s/repos/alice/shop.git' tag v1 main", dir) == 0);
	CHECK(t_sh(NULL, "git -C '%s/repos/alice/shop.git' branch alice/feature main", dir) == 0);
	full = git("rev-parse main");
	CHECK(full != NULL && strlen(full) == 40);
	CHECK_SQL("alice/shop/main", sql, "Alice,Bob,Carol, Jr.,Dan\n");
	CHECK_SQL("alice/shop/v1", sql, "Alice,Bob,Carol, Jr.,Dan\n");
	snprintf(path, sizeof(path), "alice/shop/%s", nz(full));
	CHECK_SQL(path, sql, "Alice,Bob,Carol, Jr.,Dan\n");
	snprintf(path, sizeof(path), "alice/shop/%.7s", nz(full));
	CHECK_SQL(path, sql, "Alice,Bob,Carol, Jr.,Dan\n");
	/* A branch with a slash, escaped or not. */
	CHECK_SQL("alice/shop/alice%2Ffeature", sql, "Alice,Bob,Carol, Jr.,Dan\n");
	CHECK_SQL("alice/shop/alice/feature", sql, "Alice,Bob,Carol, Jr.,Dan\n");
	r = sql_get(NULL, "alice/shop/alice/feature", "SELECT 1");
	CHECK_STR(t_str(&r, "commit_ref"), "alice/feature");
	t_resp_free(&r);

	r = sql_get(NULL, "alice/shop/nope", sql);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "query_execution_status"), "Error");
	CHECK_STR(t_str(&r, "query_execution_message"),
	          "ref 'nope' not found in database 'alice/shop'");
	t_resp_free(&r);
	r = sql_get(NULL, "alice/shop/main~9", sql);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = sql_get(NULL, "alice/shop/main@%7B0%7D", sql);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "query_execution_message"), "bad ref 'main@{0}'");
	t_resp_free(&r);
	r = sql_get(NULL, "alice/nothere/main", sql);
	CHECK(r.status == 404);
	t_resp_free(&r);
	/* Literal routes are not taken for refs. */
	r = t_http(&srv, "'%s/alice/shop/branches'", srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_GetObjectItem(r.json, "branches") != NULL);
	t_resp_free(&r);
	free(full);
}

static void test_row_limit(void)
{
	t_resp r;

	r = sql_get(
	        NULL, "alice/shop/main",
	        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1500) "
	        "SELECT x FROM n");
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "query_execution_status"), "RowLimit");
	CHECK_CONTAINS(t_str(&r, "query_execution_message"), "1000 rows");
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "rows")) == 1000);
	t_resp_free(&r);
	r = sql_get(
	        NULL, "alice/shop/main",
	        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000) "
	        "SELECT x FROM n");
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "query_execution_status"), "Success");
	t_resp_free(&r);
}

/* Expect a 400 Error whose message contains `msg`, with no file changed. */
static void refused(const char *path, const char *sql, const char *msg)
{
	char *before = files_state(), *after;
	t_resp r = sql_get(NULL, path, sql);

	if (r.status != 400)
		fprintf(stderr, "%s: %d %s\n", sql, r.status, r.body);
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "query_execution_status"), "Error");
	CHECK_CONTAINS(t_str(&r, "query_execution_message"), msg);
	t_resp_free(&r);
	after = files_state();
	CHECK_STR(after, before);
	free(before);
	free(after);
}

static void test_sandbox(void)
{
	char sql[2048], *snap, *other;
	t_resp r;

	/* bob's database has a snapshot: its file is what an ATTACH would read. */
	r = sql_get(bob, "bob/secret/main", "SELECT 1");
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK(t_sh(&other, "ls %s/cache/bob/secret/*.sqlite", dir) == 0);
	other[strcspn(other, "\n")] = '\0';
	CHECK_SQL("alice/shop/main", "SELECT 1", "1\n");
	CHECK(t_sh(&snap, "ls %s/cache/alice/shop/*.sqlite | head -1", dir) == 0);

	snprintf(sql, sizeof(sql), "ATTACH DATABASE '%s' AS other", other);
	refused("alice/shop/main", sql, "ATTACH is not allowed");
	snprintf(sql, sizeof(sql), "SELECT 1; ATTACH '%s' AS other", other);
	refused("alice/shop/main", sql, "only one statement");
	snprintf(sql, sizeof(sql), "VACUUM INTO '%s/stolen.sqlite'", dir);
	refused("alice/shop/main", sql, "VACUUM is not allowed");
	snprintf(sql, sizeof(sql), "%s/stolen.sqlite", dir);
	CHECK(access(sql, F_OK) != 0);
	refused("alice/shop/main", "PRAGMA writable_schema = ON",
	        "PRAGMA writable_schema is not allowed");
	refused("alice/shop/main", "SELECT load_extension('x')", "load_extension() is not allowed");
	refused("alice/shop/main", "CREATE TEMP TABLE t AS SELECT * FROM people",
	        "CREATE is not allowed");
	refused("alice/shop/main?timeout_ms=300",
	        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
	        "SELECT count(*) FROM c",
	        "query exceeded the time limit of 300 ms");
	refused("alice/shop/main?timeout_ms=300",
	        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000) "
	        "SELECT count(*) FROM n a, n b",
	        "query exceeded the time limit of 300 ms");
	/* timeout_ms only lowers the limit. */
	r = sql_get(NULL, "alice/shop/main?timeout_ms=abc", "SELECT 1");
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "timeout_ms");
	t_resp_free(&r);
	/* The snapshot still answers. */
	CHECK_SQL("alice/shop/main", "SELECT count(*) FROM people", "4\n");
	free(snap);
	free(other);
}

static void test_private_hidden(void)
{
	t_resp r;

	r = sql_get(bob, "bob/secret", "SELECT 42 AS answer");
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = sql_get(NULL, "bob/secret", "SELECT 42 AS answer");
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "database 'bob/secret' not found");
	t_resp_free(&r);
	r = sql_get(alice, "bob/secret/main", "SELECT 42 AS answer");
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv, "'%s/csv/bob/secret/main/x'", root);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "database 'bob/secret' not found");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/csv/bob/secret/main/x'", bob, root);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "table 'x' not found at 'main'");
	t_resp_free(&r);
}

static void test_csv_download(void)
{
	char *out = NULL, *headers = NULL;
	t_resp r;

	CHECK(t_sh(&out, "curl -s -S -D '%s/h.txt' '%s/csv/alice/shop/main/orders'", dir, root) ==
	      0);
	CHECK_STR(out, "order,customer,total\n1001,Smith | Sons,12.50\n1002,O'Brien,\n"
	               "1003,\"multi\nline\",3\n");
	free(out);
	CHECK(t_sh(&headers, "cat '%s/h.txt'", dir) == 0);
	CHECK_CONTAINS(headers, "200 OK");
	CHECK_CONTAINS(headers, "text/csv");
	free(headers);
	/* The same bytes as `tablehub export`, at a tag too. */
	CHECK(t_sh(&out,
	           "curl -s '%s/csv/alice/shop/v1/inventory' > '%s/a.csv' && '%s' export --data "
	           "'%s' "
	           "alice/shop v1 inventory > '%s/b.csv' && cmp '%s/a.csv' '%s/b.csv' && echo same",
	           root, dir, TH_BIN, dir, dir, dir, dir) == 0);
	CHECK_STR(out, "same\n");
	free(out);
	r = t_http(&srv, "'%s/csv/alice/shop/main/nope'", root);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "table 'nope' not found at 'main'");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/csv/alice/shop/nope/people'", root);
	CHECK(r.status == 404);
	t_resp_free(&r);
	CHECK(t_sh(&out, "curl -s '%s/csv/alice/shop/alice/feature/people' | head -2", root) == 0);
	CHECK_STR(out, "id,name,age,joined,active,score\n1,Alice,34,2021-03-04,true,91.5\n");
	free(out);
}

/* An upload makes a commit no snapshot has; eight clients ask for it at once. */
static void test_concurrent_first_queries(void)
{
	char *csv = malloc(strlen(dir) + 16), op[256] = "", commit[64] = "", *out = NULL;
	const cJSON *res;
	t_resp r;
	int i;

	sprintf(csv, "%s/more.csv", dir);
	t_write_file(csv, "id,name\n2,Robert\n9,Ida\n", 23);
	r = t_upload(&srv, alice, "alice/shop", csv,
	             "{\"tableName\":\"people\",\"fileName\":\"more.csv\",\"branchName\":\"main\","
	             "\"fileType\":\"Csv\",\"importOp\":\"Update\",\"primaryKeys\":[]}");
	CHECK(r.status == 200);
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", op, 120);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	res = cJSON_GetObjectItem(r.json, "result");
	snprintf(commit, sizeof(commit), "%s",
	         nz(cJSON_GetStringValue(cJSON_GetObjectItem(res, "commit"))));
	t_resp_free(&r);
	CHECK(strlen(commit) == 40);
	CHECK(t_sh(&out,
	           "for i in 1 2 3 4 5 6 7 8; do curl -s -G --data-urlencode "
	           "'q=SELECT name FROM people WHERE id IN (2, 9) ORDER BY id' "
	           "'%s/alice/shop/%s' -o \"%s/c$i.json\" & done; wait; grep -l "
	           "'\"rows\":\\[{\"name\":\"Robert\"},{\"name\":\"Ida\"}\\]' '%s'/c?.json | wc -l",
	           srv.base, commit, dir, dir) == 0);
	CHECK_STR(out, "8\n");
	free(out);
	/* One build: the server's log says so once. */
	{
		char *tables = NULL;
		i = t_sh(&tables, "git -C '%s/repos/alice/shop.git' rev-parse %s:tables", dir,
		         commit);
		CHECK(i == 0);
		if (tables)
			tables[strcspn(tables, "\n")] = '\0';
		CHECK(t_sh(&out, "grep -c 'snapshot built db=alice/shop tables=%s' '%s/serve.log'",
		           nz(tables), dir) == 0);
		CHECK_STR(out, "1\n");
		free(out);
		free(tables);
	}
	free(csv);
}

static int import_fixture(const char *table, const char *file, const char *args)
{
	return t_sh(NULL, "'%s' import --data '%s' alice/shop --table %s %s '%s/csv/%s' >/dev/null",
	            TH_BIN, dir, table, args, TH_FIXTURES, file);
}

int main(void)
{
	th_error err = { 0 };
	t_resp r;

	if (th_repo_global_init(&err) < 0) { /* for the in-process queries */
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}

	dir = t_mkdtemp();
	/* The data first (import takes the data dir's lock), then the server. */
	if (t_sh(NULL, "'%s' db create --data '%s' alice/shop >/dev/null", TH_BIN, dir) != 0 ||
	    import_fixture("people", "people.csv", "--pk id") != 0 ||
	    import_fixture("orders", "orders.psv", "--pk order --type psv") != 0 ||
	    import_fixture("inventory", "inventory.tsv", "--type tsv") != 0) {
		fprintf(stderr, "setting up the database failed\n");
		return 1;
	}
	if (t_server_start(&srv, dir, 0, NULL) < 0)
		return 1;
	snprintf(root, sizeof(root), "http://127.0.0.1:%d", srv.port);
	if (t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;
	r = t_http(&srv,
	           AUTH "-H 'content-type: application/json' -d '{\"ownerName\":\"bob\","
	                "\"repoName\":\"secret\",\"visibility\":\"private\"}' '%s/database'",
	           bob, srv.base);
	if (r.status != 200)
		fprintf(stderr, "create bob/secret: %d %s\n", r.status, r.body);
	t_resp_free(&r);

	RUN(test_select_dolthub_shape);
	RUN(test_dolthub_json);
	RUN(test_large_body);
	RUN(test_ref_kinds);
	RUN(test_row_limit);
	RUN(test_sandbox);
	RUN(test_private_hidden);
	RUN(test_csv_download);
	RUN(test_concurrent_first_queries);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	free(bob);
	t_rmdir(dir);
	th_repo_global_shutdown();
	TH_TEST_END();
}
