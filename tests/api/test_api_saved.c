/* test_api_saved.c: saved queries against a real `tablehub serve`: PUT stores a query as
 * queries/<name>.json by a commit on a branch (checked first: read-only, its placeholders exactly
 * its declared parameters), GET runs it with its parameters bound (JSON as the SQL endpoint, or
 * CSV), values that try to inject SQL stay values, the list and one definition, the query on its
 * branch only until a pull request merges it (and a conflict when both sides changed it), a
 * protected branch refused, DELETE, and who may do what. */
#include "../harness.h"
#include "server.h"
#include "tablehub/buf.h"

static t_server srv;
static char *dir, *alice, *bob;

#define Q "alice/db/queries"

static char *git(const char *args)
{
	char *out = NULL;

	if (t_sh(&out, "git -C '%s/repos/alice/db.git' %s 2>&1", dir, args) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* PUT `body` (JSON, no single quotes) as saved query `name`, as `token`. */
static t_resp put(const char *token, const char *name, const char *body)
{
	return t_http(&srv, AUTH "-X PUT -H 'content-type: application/json' -d '%s' '%s/" Q "/%s'",
	              token, body, srv.base, name);
}

/* GET saved query `name` with `args` (curl arguments: -d 'a=b' ...) as JSON; its rows as
 * "a|b\n" lines (NULL as \N), or "<status> <message>". */
static char *run(const char *name, const char *args)
{
	t_resp r = t_http(&srv, "-G %s '%s/" Q "/%s'", args, srv.base, name);
	const cJSON *row, *cell;
	th_buf b = TH_BUF_INIT;

	if (r.status != 200) {
		th_buf_printf(&b, NULL, "%d %s", r.status, nz(t_str(&r, "message")));
	} else {
		cJSON_ArrayForEach(row, cJSON_GetObjectItem(r.json, "rows"))
		{
			int first = 1;
			cJSON_ArrayForEach(cell, row)
			{
				th_buf_printf(&b, NULL, "%s%s", first ? "" : "|",
				              cJSON_IsString(cell) ? cell->valuestring : "\\N");
				first = 0;
			}
			th_buf_putc(&b, '\n', NULL);
		}
	}
	t_resp_free(&r);
	return b.ptr ? th_buf_detach(&b) : strdup("");
}

#define CHECK_RUN(name, args, expected)                                                            \
	do {                                                                                       \
		char *got_ = run((name), (args));                                                  \
		CHECK_STR(got_, (expected));                                                       \
		free(got_);                                                                        \
	} while (0)

static void test_put_and_run(void)
{
	char *out;
	t_resp r;

	r = put(alice, "count",
	        "{\"query\":\"SELECT count(*) AS n FROM orders WHERE qty >= :min\","
	        "\"description\":\"orders of at least min items\","
	        "\"params\":[{\"name\":\"min\",\"type\":\"integer\"}]}");
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "query_name"), "count");
	CHECK_STR(t_str(&r, "branch_name"), "main");
	out = git("rev-parse main");
	CHECK(out && strncmp(out, nz(t_str(&r, "commit_id")), 40) == 0);
	free(out);
	t_resp_free(&r);
	/* in the repository, beside the tables, by a commit of its own */
	out = git("show main:queries/count.json");
	CHECK_STR(out,
	          "{\n  \"name\": \"count\",\n  \"description\": \"orders of at least min items\","
	          "\n  \"query\": \"SELECT count(*) AS n FROM orders WHERE qty >= :min\",\n"
	          "  \"params\": [\n    {\"name\": \"min\", \"type\": \"integer\"}\n  ]\n}\n");
	free(out);
	out = git("log -1 --format=%s%n%an main");
	CHECK_STR(out, "Save query count\nalice\n");
	free(out);
	/* the same definition again: no new commit */
	r = put(alice, "count",
	        "{\"query\":\"SELECT count(*) AS n FROM orders WHERE qty >= :min\","
	        "\"description\":\"orders of at least min items\","
	        "\"params\":[{\"name\":\"min\",\"type\":\"integer\"}]}");
	CHECK(r.status == 200);
	t_resp_free(&r);
	out = git("rev-list --count main");
	CHECK_STR(out, "3\n");
	free(out);

	CHECK_RUN("count", "-d min=3", "2\n");
	CHECK_RUN("count", "-d min=0 -d ref=main", "4\n");
	CHECK_RUN("count", "",
	          "400 saved query 'count' needs parameter 'min' (integer): add ?min=... "
	          "to the URL");
	CHECK_RUN("count", "-d min=abc", "400 parameter 'min' must be an integer");
	CHECK_RUN("nope", "", "404 saved query 'nope' not found at 'main'");
	/* DoltHub's body, as the SQL endpoint answers */
	r = t_http(&srv, "-G -d min=3 '%s/" Q "/count'", srv.base);
	CHECK_STR(t_str(&r, "query_execution_status"), "Success");
	CHECK_STR(t_str(&r, "sql_query"), "SELECT count(*) AS n FROM orders WHERE qty >= :min");
	CHECK_CONTAINS(r.body, "\"schema\":[{\"columnName\":\"n\",\"columnType\":\"integer\"}]");
	t_resp_free(&r);
	/* CSV, by format=csv or by Accept */
	CHECK(t_sh(&out, "curl -s -G -d min=3 -d format=csv '%s/" Q "/count'", srv.base) == 0);
	CHECK_STR(out, "n\n2\n");
	free(out);
	CHECK(t_sh(&out, "curl -s -D - -G -d min=1 -H 'Accept: text/csv' '%s/" Q "/count'",
	           srv.base) == 0);
	CHECK_CONTAINS(out, "Content-Type: text/csv");
	CHECK_CONTAINS(out, "X-Query-Status: Success");
	CHECK_CONTAINS(out, "\r\n\r\nn\n4\n");
	free(out);
}

/* Values are bound, never spliced: what would change the statement is only a value. */
static void test_injection(void)
{
	char *out;
	t_resp r;

	r = put(alice, "by_item",
	        "{\"query\":\"SELECT id, item FROM orders WHERE item = :item ORDER BY id\","
	        "\"params\":[\"item\"]}");
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK_RUN("by_item", "--data-urlencode item=apple", "1|apple\n");
	CHECK_RUN("by_item", "--data-urlencode \"item=x' OR '1'='1\"", "");
	CHECK_RUN("by_item", "--data-urlencode \"item=apple' --\"", "");
	CHECK_RUN("by_item", "--data-urlencode \"item=apple'; DROP TABLE orders; --\"", "");
	CHECK_RUN("by_item", "--data-urlencode 'item=:item'", "");
	CHECK_RUN("count", "--data-urlencode 'min=1 OR 1=1'",
	          "400 parameter 'min' must be an "
	          "integer");
	/* reals and booleans are bound as numbers */
	r = put(alice, "typed",
	        "{\"query\":\"SELECT :r * 2 AS d, :b AS b, typeof(:b) AS t\",\"params\":[{\"name\":"
	        "\"r\",\"type\":\"real\"},{\"name\":\"b\",\"type\":\"boolean\"}]}");
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK_RUN("typed", "-d r=1.25 -d b=TRUE", "2.5|1|integer\n");
	CHECK_RUN("typed", "-d r=1.25 -d b=yes", "400 parameter 'b' must be true or false");
	CHECK_RUN("typed", "-d r=x -d b=false", "400 parameter 'r' must be a number");
	r = t_http(&srv, AUTH "-X DELETE '%s/" Q "/typed'", alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	/* the table is still there, whole */
	CHECK_RUN("count", "-d min=0", "4\n");
	out = git("ls-tree --name-only main tables/");
	CHECK_STR(out, "tables/orders\n");
	free(out);
}

static void test_put_refused(void)
{
	static const struct {
		const char *name, *body;
		int status;
		const char *message;
	} cases[] = {
		{ "w", "{\"query\":\"DELETE FROM orders\"}", 400, "DELETE is not allowed" },
		{ "w", "{\"query\":\"SELECT 1; DELETE FROM orders\"}", 400,
		  "only one statement per query is allowed" },
		{ "w", "{\"query\":\"SELECT * FROM orders WHERE qty > :min\"}", 400,
		  "the query uses :min, which 'params' does not declare" },
		{ "w", "{\"query\":\"SELECT 1\",\"params\":[\"min\"]}", 400,
		  "parameter 'min' is declared but the query does not use :min" },
		{ "w", "{\"query\":\"SELECT * FROM orders WHERE qty > ?\"}", 400,
		  "parameters are named :name (found ?)" },
		{ "w", "{\"query\":\"SELECT * FROM orders WHERE qty > $x\",\"params\":[\"x\"]}",
		  400, "parameters are named :name (found $x)" },
		{ "w", "{\"query\":\"SELECT * FROM nope\"}", 400, "no such table: nope" },
		{ "w", "{\"query\":\"SELECT :ref\",\"params\":[\"ref\"]}", 400,
		  "not 'ref' or 'format'" },
		{ "w", "{\"query\":\"SELECT :a\",\"params\":[{\"name\":\"a\",\"type\":\"money\"}]}",
		  400, "the type of 'a' must be integer, real, boolean, date, datetime or text" },
		{ "w", "{\"query\":\"SELECT :a\",\"params\":[\"a\",\"a\"]}", 400,
		  "declared twice" },
		{ "w", "{\"description\":\"no query\"}", 400, "'query' must be the SQL statement" },
		{ "w", "[1]", 400, "must be a JSON object" },
		{ "w", "{\"query\":\"SELECT 1\",\"branchName\":\"nope\"}", 404,
		  "branch 'nope' not found" },
		{ "a.b", "{\"query\":\"SELECT 1\"}", 400, "" },
	};
	size_t i;
	char *before = git("rev-parse main"), *after;
	t_resp r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = put(alice, cases[i].name, cases[i].body);
		if (r.status != cases[i].status)
			fprintf(stderr, "case %zu: %d %s\n", i, r.status, r.body);
		CHECK(r.status == cases[i].status);
		CHECK_CONTAINS(t_str(&r, "message"), cases[i].message);
		t_resp_free(&r);
	}
	/* nobody signed in; someone without the write role */
	r = put("", "w", "{\"query\":\"SELECT 1\"}");
	CHECK(r.status == 401);
	t_resp_free(&r);
	r = put(bob, "w", "{\"query\":\"SELECT 1\"}");
	CHECK(r.status == 403);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/" Q "/count'", bob, srv.base);
	CHECK(r.status == 403);
	t_resp_free(&r);
	after = git("rev-parse main");
	CHECK_STR(after, before); /* nothing was committed */
	free(before);
	free(after);
}

static void test_list_and_definition(void)
{
	const cJSON *qs, *q;
	t_resp r;

	r = t_http(&srv, "'%s/" Q "'", srv.base);
	CHECK(r.status == 200);
	qs = cJSON_GetObjectItem(r.json, "queries");
	CHECK(cJSON_GetArraySize(qs) == 2);
	q = cJSON_GetArrayItem(qs, 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(q, "name")), "by_item");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(
	                  cJSON_GetArrayItem(cJSON_GetObjectItem(q, "params"), 0), "type")),
	          "text");
	q = cJSON_GetArrayItem(qs, 1);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(q, "name")), "count");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/" Q "/count/definition'", srv.base);
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "\"query\":{\"name\":\"count\",\"description\":\"orders of at least "
	                       "min items\",\"query\":\"SELECT count(*) AS n FROM orders WHERE qty "
	                       ">= :min\",\"params\":[{\"name\":\"min\",\"type\":\"integer\"}]}");
	t_resp_free(&r);
}

/* Merge pull `id` and wait: the operation's final state. */
static char *merge(int id)
{
	char op[300];
	time_t end = time(NULL) + 60;
	t_resp r = t_http(&srv, AUTH "-X POST '%s/alice/db/pulls/%d/merge'", alice, srv.base, id);
	char *state;

	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	for (;;) {
		r = t_http(&srv,
		           "-G " AUTH "--data-urlencode 'operationName=%s' "
		           "'%s/alice/db/pulls/%d/merge'",
		           alice, op, srv.base, id);
		state = strdup(nz(t_str(&r, "job_status")));
		if (strcmp(state, "Completed") == 0 || strcmp(state, "Failed") == 0 ||
		    time(NULL) > end) {
			t_resp_free(&r);
			return state;
		}
		free(state);
		t_resp_free(&r);
		t_sleep_ms(100);
	}
}

static int open_pull(const char *from)
{
	t_resp r = t_http(&srv,
	                  AUTH "-d '{\"title\":\"queries\",\"fromBranchName\":\"%s\","
	                       "\"toBranchName\":\"main\"}' '%s/alice/db/pulls'",
	                  alice, from, srv.base);
	int id = atoi(nz(t_str(&r, "pull_id")));

	CHECK(r.status == 200);
	t_resp_free(&r);
	return id;
}

static void branch(const char *name)
{
	t_resp r = t_http(&srv,
	                  AUTH "-d '{\"revisionType\":\"branch\",\"revisionName\":\"main\","
	                       "\"newBranchName\":\"%s\"}' '%s/alice/db/branches'",
	                  alice, name, srv.base);

	CHECK(r.status == 200);
	t_resp_free(&r);
}

/* A query on a branch is there only; a pull request brings it to main, and both sides changing
 * one query differently is a conflict. */
static void test_branches_and_merge(void)
{
	char *state, *out;
	t_resp r;

	branch("feature");
	branch("other");
	r = t_http(&srv,
	           AUTH "-X PUT -d '{\"query\":\"SELECT max(qty) AS m FROM orders\","
	                "\"branchName\":\"feature\"}' '%s/" Q "/top'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK_RUN("top", "-d ref=feature", "9\n");
	CHECK_RUN("top", "", "404 saved query 'top' not found at 'main'");
	/* meanwhile main moves: a table changes and count changes */
	r = put(alice, "count",
	        "{\"query\":\"SELECT count(*) AS n FROM orders WHERE qty > :min\","
	        "\"params\":[{\"name\":\"min\",\"type\":\"integer\"}]}");
	CHECK(r.status == 200);
	t_resp_free(&r);
	state = merge(open_pull("feature"));
	CHECK_STR(state, "Completed");
	free(state);
	CHECK_RUN("top", "", "9\n");
	CHECK_RUN("count", "-d min=3", "1\n"); /* main's change kept */
	out = git("ls-tree --name-only main queries/");
	CHECK_STR(out, "queries/by_item.json\nqueries/count.json\nqueries/top.json\n");
	free(out);

	/* other changes count too, differently: the merge fails and names the query */
	r = t_http(&srv,
	           AUTH "-X PUT -d '{\"query\":\"SELECT count(*) AS n FROM orders WHERE qty "
	                "< :min\",\"params\":[{\"name\":\"min\",\"type\":\"integer\"}],"
	                "\"branchName\":\"other\"}' '%s/" Q "/count'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	{
		int id = open_pull("other");
		state = merge(id);
		CHECK_STR(state, "Failed");
		free(state);
		r = t_http(&srv, "'%s/alice/db/pulls/%d/conflicts'", srv.base, id);
		CHECK_CONTAINS(r.body, "queries/count");
		CHECK_CONTAINS(r.body, "the saved query was changed differently on both sides");
		t_resp_free(&r);
	}
	CHECK_RUN("count", "-d min=3", "1\n"); /* main unchanged */
}

static void test_protected_and_delete(void)
{
	char *out;
	t_resp r;

	r = t_http(&srv, AUTH "-X DELETE '%s/" Q "/by_item'", alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK_RUN("by_item", "-d item=apple", "404 saved query 'by_item' not found at 'main'");
	out = git("log -1 --format=%s main");
	CHECK_STR(out, "Remove query by_item\n");
	free(out);
	r = t_http(&srv, AUTH "-X DELETE '%s/" Q "/by_item'", alice, srv.base);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "message"), "saved query 'by_item' not found on branch 'main'");
	t_resp_free(&r);

	r = t_http(&srv,
	           AUTH "-X PUT -d '{\"requiredApprovals\":1,\"mergeRole\":\"write\"}' "
	                "'%s/alice/db/branches/main/protection'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = put(alice, "x", "{\"query\":\"SELECT 1\"}");
	CHECK(r.status == 409);
	CHECK_STR(t_str(&r, "message"), "branch 'main' is protected: save the query on another "
	                                "branch and merge it by pull request");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/" Q "/count'", alice, srv.base);
	CHECK(r.status == 409);
	t_resp_free(&r);
}

int main(void)
{
	static const char csv[] = "id,item,qty\n1,apple,3\n2,pear,9\n3,plum,1\n4,fig,2\n";
	char path[4200];

	dir = t_mkdtemp();
	snprintf(path, sizeof(path), "%s/orders.csv", dir);
	t_write_file(path, csv, strlen(csv));
	if (t_sh(NULL, "'%s' db create --data '%s' alice/db >/dev/null", TH_BIN, dir) != 0 ||
	    t_sh(NULL, "'%s' import --data '%s' alice/db --table orders --pk id '%s' >/dev/null",
	         TH_BIN, dir, path) != 0) {
		fprintf(stderr, "setting up the database failed\n");
		return 1;
	}
	if (t_server_start(&srv, dir, 0, NULL) < 0)
		return 1;
	if (t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;

	RUN(test_put_and_run);
	RUN(test_injection);
	RUN(test_put_refused);
	RUN(test_list_and_definition);
	RUN(test_branches_and_merge);
	RUN(test_protected_and_delete);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	free(bob);
	t_rmdir(dir);
	TH_TEST_END();
}
