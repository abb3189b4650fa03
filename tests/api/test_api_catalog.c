/* test_api_catalog.c: what the web pages browse, against a real `tablehub serve`:
 * GET /api/v1alpha1/databases (the caller's and public databases, never another user's private
 * one; filters by name, owner and visibility; pages), GET /{owner}/{db}/tables?ref= (tables with
 * row counts, columns, types and key at any ref) and GET /{owner}/{db}/commits?ref= (the log,
 * newest first, with the rows each commit changed; pages). */
#include "../harness.h"
#include "server.h"

static t_server srv;
static char *dir, *alice, *bob;

static void create_db(const char *token, const char *owner, const char *name, const char *vis)
{
	t_resp r = t_http(&srv,
	                  AUTH "-H 'content-type: application/json' -d '{\"ownerName\":\"%s\","
	                       "\"repoName\":\"%s\",\"description\":\"about %s\","
	                       "\"visibility\":\"%s\"}' '%s/database'",
	                  token, owner, name, name, vis, srv.base);
	if (r.status != 200)
		fprintf(stderr, "create %s/%s: %d %s\n", owner, name, r.status, r.body);
	t_resp_free(&r);
}

/* Upload `csv` into alice/shop's table orders with `op`, wait for it, merge its pull and wait. */
static int upload_and_merge(const char *csv, const char *op)
{
	char params[300], *file, *mop = NULL;
	const char *opname, *pull;
	t_resp r, p, m;
	int ok = 0;

	file = t_write_in(dir, "up.csv", csv);
	snprintf(params, sizeof(params),
	         "{\"tableName\":\"orders\",\"fileName\":\"up.csv\",\"branchName\":\"main\","
	         "\"fileType\":\"Csv\",\"importOp\":\"%s\",\"primaryKeys\":[\"id\"]}",
	         op);
	r = t_upload(&srv, alice, "alice/shop", file, params);
	opname = t_str(&r, "operation_name");
	p = t_poll(&srv, alice, "alice/shop", nz(opname), 20);
	pull = t_str(&p, "pull_id");
	if (pull != NULL) {
		m = t_http(&srv, AUTH "-X POST '%s/alice/shop/pulls/%s/merge'", alice, srv.base,
		           pull);
		mop = t_str(&m, "operation_name") ? strdup(t_str(&m, "operation_name")) : NULL;
		t_resp_free(&m);
		for (int i = 0; mop != NULL && i < 200; i++) {
			m = t_http(&srv,
			           "-G " AUTH "--data-urlencode 'operationName=%s' "
			           "'%s/alice/shop/pulls/%s/merge'",
			           alice, mop, srv.base, pull);
			ok = t_str(&m, "job_status") &&
			     strcmp(t_str(&m, "job_status"), "Completed") == 0;
			t_resp_free(&m);
			if (ok)
				break;
			t_sleep_ms(50);
		}
	}
	if (!ok)
		fprintf(stderr, "upload and merge failed: %s / %s\n", r.body, p.body);
	free(mop);
	free(file);
	t_resp_free(&r);
	t_resp_free(&p);
	return ok ? 0 : -1;
}

/* "owner/name" of each item of a databases list, joined by spaces. */
static char *names(const t_resp *r)
{
	static char out[1024];
	const cJSON *it;
	size_t n = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r->json, "databases"))
	{
		n += (size_t)snprintf(
		        out + n, sizeof(out) - n, "%s%s/%s", n ? " " : "",
		        nz(cJSON_GetStringValue(cJSON_GetObjectItem(it, "database_owner"))),
		        nz(cJSON_GetStringValue(cJSON_GetObjectItem(it, "database_name"))));
	}
	return out;
}

static void test_databases(void)
{
	t_resp r;

	r = t_http(&srv, "'%s/databases'", srv.base);
	CHECK(r.status == 200);
	CHECK_STR(names(&r), "alice/shop bob/bobsdb");
	CHECK_STR(t_str(&r, "next_page_token"), "");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/databases'", alice, srv.base);
	CHECK_STR(names(&r), "alice/shop alice/vault bob/bobsdb");
	{
		const cJSON *vault =
		        cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "databases"), 1);
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(vault, "visibility")),
		          "private");
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(vault, "description")),
		          "about vault");
		CHECK(cJSON_IsString(cJSON_GetObjectItem(vault, "created_at")));
	}
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/databases'", bob, srv.base);
	CHECK_STR(names(&r), "alice/shop bob/bobsdb");
	t_resp_free(&r);
	/* Filters: a case-insensitive part of owner/name, an owner, a visibility. */
	r = t_http(&srv, AUTH "'%s/databases?q=SHO'", alice, srv.base);
	CHECK_STR(names(&r), "alice/shop");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/databases?q=alice/'", alice, srv.base);
	CHECK_STR(names(&r), "alice/shop alice/vault");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/databases?q=vault'", bob, srv.base);
	CHECK_STR(names(&r), "");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/databases?owner=bob'", alice, srv.base);
	CHECK_STR(names(&r), "bob/bobsdb");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/databases?visibility=private'", alice, srv.base);
	CHECK_STR(names(&r), "alice/vault");
	t_resp_free(&r);
	/* Pages. */
	r = t_http(&srv, AUTH "'%s/databases?pageSize=2'", alice, srv.base);
	CHECK_STR(names(&r), "alice/shop alice/vault");
	CHECK_STR(t_str(&r, "next_page_token"), "2");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/databases?pageSize=2&pageToken=2'", alice, srv.base);
	CHECK_STR(names(&r), "bob/bobsdb");
	CHECK_STR(t_str(&r, "next_page_token"), "");
	t_resp_free(&r);
	/* Bad arguments. */
	r = t_http(&srv, "'%s/databases?visibility=secret'", srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'visibility' must be 'public' or 'private'");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/databases?pageSize=0'", srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'pageSize' must be 1 to 500");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/databases?pageToken=x'", srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "bad 'pageToken'");
	t_resp_free(&r);
}

static void test_tables(void)
{
	const cJSON *t, *cols, *pk;
	t_resp r;

	r = t_http(&srv, "'%s/alice/shop/tables?ref=main'", srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "ref"), "main");
	CHECK(t_str(&r, "commit_id") != NULL && strlen(t_str(&r, "commit_id")) == 40);
	t = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "tables"), 0);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "tables")) == 1);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "table_name")), "orders");
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "row_count")) == 4);
	pk = cJSON_GetObjectItem(t, "primary_key");
	CHECK(cJSON_GetArraySize(pk) == 1);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(pk, 0)), "id");
	cols = cJSON_GetObjectItem(t, "columns");
	CHECK(cJSON_GetArraySize(cols) == 3);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cols, 1), "name")),
	          "item");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cols, 1), "type")),
	          "text");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cols, 2), "type")),
	          "integer");
	t_resp_free(&r);
	/* Without ?ref: main. At an older commit (main~1: the first merge, before the update): 3
	 * rows. */
	r = t_http(&srv, "'%s/alice/shop/tables'", srv.base);
	CHECK_STR(t_str(&r, "ref"), "main");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/tables?ref=main~1'", srv.base);
	t = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "tables"), 0);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "row_count")) == 3);
	t_resp_free(&r);
	/* The initial commit has no tables. */
	r = t_http(&srv, "'%s/alice/vault/tables'", srv.base);
	CHECK(r.status == 404); /* private: hidden from the anonymous */
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/vault/tables'", alice, srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "tables")) == 0);
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/tables?ref=nosuch'", srv.base);
	CHECK(r.status == 404);
	CHECK_CONTAINS(t_str(&r, "message"), "ref 'nosuch' not found in 'alice/shop'");
	t_resp_free(&r);
}

/* "message|added|modified|removed" of commit i of a log. */
static void commit_line(char *out, size_t size, const t_resp *r, int i)
{
	const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(r->json, "commits"), i);
	const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(c, "message"));

	snprintf(out, size, "%.*s|%g|%g|%g", msg ? (int)strcspn(msg, "\n") : 0, nz(msg),
	         cJSON_GetNumberValue(cJSON_GetObjectItem(c, "rows_added")),
	         cJSON_GetNumberValue(cJSON_GetObjectItem(c, "rows_modified")),
	         cJSON_GetNumberValue(cJSON_GetObjectItem(c, "rows_removed")));
}

static void test_commits(void)
{
	char line[300];
	const cJSON *c;
	t_resp r;

	r = t_http(&srv, "'%s/alice/shop/commits?ref=main'", srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "commits")) == 5);
	commit_line(line, sizeof(line), &r, 0);
	CHECK_CONTAINS(line, "Merge pull request #2");
	CHECK_CONTAINS(line, "|1|1|0");
	commit_line(line, sizeof(line), &r, 1);
	CHECK_STR(line, "Import up.csv into orders (Update)|1|1|0");
	commit_line(line, sizeof(line), &r, 2);
	CHECK_CONTAINS(line, "Merge pull request #1");
	CHECK_CONTAINS(line, "|3|0|0");
	commit_line(line, sizeof(line), &r, 3);
	CHECK_STR(line, "Import up.csv into orders (Create)|3|0|0");
	commit_line(line, sizeof(line), &r, 4);
	CHECK_STR(line, "Initial commit|0|0|0");
	c = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "commits"), 0);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(c, "parents")) == 2);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "author")), "alice");
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(c, "tables_changed")) == 1);
	CHECK(strlen(nz(cJSON_GetStringValue(cJSON_GetObjectItem(c, "committed_at")))) == 24);
	CHECK_STR(t_str(&r, "next_page_token"), "");
	t_resp_free(&r);
	/* Pages of two. */
	r = t_http(&srv, "'%s/alice/shop/commits?pageSize=2'", srv.base);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "commits")) == 2);
	CHECK_STR(t_str(&r, "next_page_token"), "2");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/commits?pageSize=2&pageToken=4'", srv.base);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "commits")) == 1);
	commit_line(line, sizeof(line), &r, 0);
	CHECK_STR(line, "Initial commit|0|0|0");
	CHECK_STR(t_str(&r, "next_page_token"), "");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/commits?pageSize=101'", srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'pageSize' must be 1 to 100");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/commits?ref=nosuch'", srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/vault/commits'", bob, srv.base);
	CHECK(r.status == 404);
	CHECK_CONTAINS(t_str(&r, "message"), "database 'alice/vault' not found");
	t_resp_free(&r);
}

int main(void)
{
	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, NULL) < 0 || t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;
	create_db(alice, "alice", "shop", "public");
	create_db(alice, "alice", "vault", "private");
	create_db(bob, "bob", "bobsdb", "public");
	if (upload_and_merge("id,item,qty\n1,apple,3\n2,pear,5\n3,fig,1\n", "Create") < 0 ||
	    upload_and_merge("id,item,qty\n1,apple,4\n4,kiwi,2\n", "Update") < 0)
		return 1;
	RUN(test_databases);
	RUN(test_tables);
	RUN(test_commits);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	free(bob);
	t_rmdir(dir);
	TH_TEST_END();
}
