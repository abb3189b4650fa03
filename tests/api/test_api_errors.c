/* test_api_errors.c: every class of bad request gets a truthful 4xx and a JSON error that names
 * the problem, from a real `tablehub serve` (upload cap 1 MB) driven with curl: unknown paths and
 * methods, missing and wrong tokens, other users' private databases (404, exactly as a missing
 * one), writes by people without the write role, and each way an upload can be wrong, including
 * files over the cap (413, nothing kept on disk). */
#include <dirent.h>

#include "../harness.h"
#include "server.h"

static t_server srv;
static char *dir, *alice, *bob, *csv;

#define GOOD_PARAMS                                                                                \
	"{\"tableName\":\"t\",\"fileName\":\"a.csv\",\"branchName\":\"main\",\"fileType\":"        \
	"\"Csv\","                                                                                 \
	"\"importOp\":\"Create\",\"primaryKeys\":[\"id\"]}"

/* Check r is an error with `status`, "status":"Error", `code` and a message containing `msg`. */
static void check_error(t_resp *r, int status, const char *code, const char *msg)
{
	CHECK(r->status == status);
	if (r->status != status)
		fprintf(stderr, "  want %d, got %d: %s\n", status, r->status, r->body);
	CHECK_STR(t_str(r, "status"), "Error");
	if (code)
		CHECK_STR(t_str(r, "code"), code);
	CHECK_CONTAINS(t_str(r, "message"), msg);
	t_resp_free(r);
}

/* Files in DIR/sub, not counting . and .. */
static int count_files(const char *sub)
{
	char path[700];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void create_db(const char *token, const char *name, const char *visibility)
{
	t_resp r = t_http(&srv,
	                  AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"%s\","
	                       "\"visibility\":\"%s\"}' '%s/database'",
	                  token, name, visibility, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
}

static void test_paths_and_methods(void)
{
	t_resp r;

	r = t_http(&srv, "'http://127.0.0.1:%d/api/v2/alice/shop'", srv.port);
	check_error(&r, 404, "ENOTFOUND", "no such endpoint: GET /api/v2/alice/shop");
	r = t_http(&srv, "'http://127.0.0.1:%d/nosuch'", srv.port); /* "/" is the web pages */
	check_error(&r, 404, "ENOTFOUND", "no such endpoint: GET /nosuch");
	r = t_http(&srv, "-X DELETE '%s/alice/shop/branches'", srv.base);
	check_error(&r, 405, "EMETHOD", "allowed: GET, POST");
	r = t_http(&srv, "-X PUT '%s/user'", srv.base);
	check_error(&r, 405, "EMETHOD", "not allowed");
	r = t_http(&srv, "'%s/alice/..%%2Fetc/branches'", srv.base);
	check_error(&r, 400, "EINVALID", "invalid database name");
	r = t_http(&srv, "'%s/alice/shop/pulls/abc'", srv.base);
	check_error(&r, 400, "EINVALID", "invalid pull id");
	/* one trailing slash is tolerated */
	r = t_http(&srv, "'%s/alice/shop/branches/'", srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
}

static void test_auth(void)
{
	t_resp r;

	r = t_http(&srv, "'%s/user'", srv.base);
	check_error(&r, 401, "EAUTH", "authentication required");
	r = t_http(&srv, "-H 'authorization: token thp_0000' '%s/user'", srv.base);
	check_error(&r, 401, "EAUTH", "invalid token");
	r = t_http(&srv, "-H 'authorization: token %s' '%s/user'",
	           "thp_0000000000000000000000000000000000000000000000000000000000000000",
	           srv.base);
	check_error(&r, 401, "EAUTH", "invalid token");
	/* a wrong token is refused even where no token is needed */
	r = t_http(&srv, "-H 'authorization: token nope' '%s/alice/shop/branches'", srv.base);
	check_error(&r, 401, "EAUTH", "invalid token");

	/* upload without a token, with a wrong one */
	r = t_http(&srv, "--form-string 'params=%s' -F 'file=@%s' '%s/alice/shop/upload'",
	           GOOD_PARAMS, csv, srv.base);
	check_error(&r, 401, "EAUTH", "authentication required");
	r = t_http(&srv,
	           "-H 'authorization: Bearer thp_bad' --form-string 'params=%s' -F 'file=@%s' "
	           "'%s/alice/shop/upload'",
	           GOOD_PARAMS, csv, srv.base);
	check_error(&r, 401, "EAUTH", "invalid token");

	/* Another user's private database answers exactly as a missing one. */
	{
		t_resp hidden = t_http(&srv, AUTH "'%s/alice/vault/branches'", bob, srv.base);
		t_resp missing = t_http(&srv, AUTH "'%s/alice/nosuch/branches'", bob, srv.base);
		CHECK(hidden.status == 404 && missing.status == 404);
		CHECK_CONTAINS(t_str(&hidden, "message"), "database 'alice/vault' not found");
		CHECK_CONTAINS(t_str(&missing, "message"), "database 'alice/nosuch' not found");
		t_resp_free(&hidden);
		t_resp_free(&missing);
	}
	r = t_http(&srv, "'%s/alice/vault/branches'", srv.base);
	check_error(&r, 404, "ENOTFOUND", "database 'alice/vault' not found");
	r = t_http(&srv, AUTH "'%s/alice/vault/pulls'", bob, srv.base);
	check_error(&r, 404, "ENOTFOUND", "not found");
	r = t_http(&srv, AUTH "'%s/alice/vault/jobs'", bob, srv.base);
	check_error(&r, 404, "ENOTFOUND", "not found");
	r = t_upload(&srv, bob, "alice/vault", csv, GOOD_PARAMS);
	check_error(&r, 404, "ENOTFOUND", "database 'alice/vault' not found");
	/* ...while its owner sees it. */
	r = t_http(&srv, AUTH "'%s/alice/vault/branches'", alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);

	/* Only the owner (or a collaborator with the write role) writes a public database. */
	r = t_upload(&srv, bob, "alice/shop", csv, GOOD_PARAMS);
	check_error(&r, 403, "EFORBIDDEN", "this needs the write role on 'alice/shop'");
	r = t_http(&srv,
	           AUTH "-d '{\"revisionType\":\"branch\",\"revisionName\":\"main\","
	                "\"newBranchName\":\"x\"}' '%s/alice/shop/branches'",
	           bob, srv.base);
	check_error(&r, 403, "EFORBIDDEN", "this needs the write role on 'alice/shop'");
	/* A user creates databases only under their own name. */
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"mine\"}' '%s/database'",
	           bob, srv.base);
	check_error(&r, 403, "EFORBIDDEN", "your own user name");
}

static void test_database_requests(void)
{
	t_resp r;

	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\"}' '%s/database'",
	           alice, srv.base);
	check_error(&r, 409, "EEXISTS", "already exists");
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"alice\"}' '%s/database'", alice, srv.base);
	check_error(&r, 400, "EINVALID", "'repoName' is required");
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"a.b\"}' '%s/database'",
	           alice, srv.base);
	check_error(&r, 400, "EINVALID", "'repoName' must be");
	r = t_http(&srv,
	           AUTH
	           "-d '{\"ownerName\":\"alice\",\"repoName\":\"ab\",\"visibility\":\"hidden\"}' "
	           "'%s/database'",
	           alice, srv.base);
	check_error(&r, 400, "EINVALID", "'visibility'");
	r = t_http(&srv, AUTH "-d 'not json' '%s/database'", alice, srv.base);
	check_error(&r, 400, "EINVALID", "JSON object");
	r = t_http(&srv, AUTH "-d '[1]' '%s/database'", alice, srv.base);
	check_error(&r, 400, "EINVALID", "JSON object");
	r = t_http(&srv,
	           AUTH "-d '{\"revisionType\":\"branch\",\"revisionName\":\"nosuch\","
	                "\"newBranchName\":\"x\"}' '%s/alice/shop/branches'",
	           alice, srv.base);
	check_error(&r, 404, "ENOTFOUND", "branch 'nosuch' not found");
	r = t_http(&srv,
	           AUTH "-d '{\"revisionType\":\"tag\",\"revisionName\":\"main\","
	                "\"newBranchName\":\"x\"}' '%s/alice/shop/branches'",
	           alice, srv.base);
	check_error(&r, 400, "EINVALID", "'revisionType'");
	r = t_http(&srv,
	           AUTH "-d '{\"revisionType\":\"branch\",\"revisionName\":\"main\","
	                "\"newBranchName\":\"a..b\"}' '%s/alice/shop/branches'",
	           alice, srv.base);
	check_error(&r, 400, "EINVALID", "'newBranchName'");
}

/* Upload with params `params` (file part csv) as alice; expect an error. */
static void bad_params(const char *params, int status, const char *msg)
{
	t_resp r = t_upload(&srv, alice, "alice/shop", csv, params);
	check_error(&r, status, NULL, msg);
}

static void test_upload_requests(void)
{
	t_resp r;

	/* no file part, no params part */
	r = t_http(&srv, AUTH "--form-string 'params=%s' '%s/alice/shop/upload'", alice,
	           GOOD_PARAMS, srv.base);
	check_error(&r, 400, "EINVALID", "no 'file' part");
	r = t_http(&srv, AUTH "-F 'file=@%s' '%s/alice/shop/upload'", alice, csv, srv.base);
	check_error(&r, 400, "EINVALID", "no 'params' part");
	/* not multipart at all */
	r = t_http(&srv,
	           AUTH "-H 'content-type: text/csv' --data-binary @%s '%s/alice/shop/upload'",
	           alice, csv, srv.base);
	check_error(&r, 415, "EUNSUPPORTED", "multipart/form-data");
	/* params that are wrong, each naming the key */
	bad_params("{\"tableName\": ", 400, "params is not valid JSON");
	bad_params("[\"t\"]", 400, "params must be a JSON object");
	bad_params("{\"tableName\":\"t\",\"fileType\":\"Csv\",\"importOp\":\"Merge\"}", 400,
	           "'importOp' must be Create, Overwrite, Update, Replace or Append (got 'Merge')");
	bad_params("{\"tableName\":\"t\",\"fileType\":\"Csv\"}", 400, "'importOp' is required");
	bad_params("{\"fileType\":\"Csv\",\"importOp\":\"Create\"}", 400,
	           "'tableName' is required");
	bad_params("{\"tableName\":\"a b\",\"importOp\":\"Create\"}", 400, "'tableName' must be");
	bad_params("{\"tableName\":\"t\",\"fileType\":\"Parquet\",\"importOp\":\"Create\"}", 400,
	           "'fileType' must be Csv, Psv, Tsv, Json, Xlsx or Sql (got 'Parquet')");
	bad_params("{\"tableName\":\"t\",\"importOp\":\"Create\",\"primaryKeys\":\"id\"}", 400,
	           "'primaryKeys' must be an array");
	bad_params("{\"tableName\":\"t\",\"importOp\":\"Create\",\"primaryKeys\":[1]}", 400,
	           "'primaryKeys' must be an array");
	bad_params("{\"tableName\":5,\"importOp\":\"Create\"}", 400,
	           "'tableName' must be a string");
	bad_params("{\"tableName\":\"t\",\"importOp\":\"Create\",\"branchName\":\"nosuch\"}", 400,
	           "'branchName': no branch 'nosuch'");
	/* errors echo DoltHub's identifiers */
	r = t_upload(&srv, alice, "alice/shop", csv,
	             "{\"tableName\":\"t\",\"importOp\":\"Create\",\"branchName\":\"nosuch\"}");
	CHECK_STR(t_str(&r, "database_owner"), "alice");
	CHECK_STR(t_str(&r, "database_name"), "shop");
	CHECK_STR(t_str(&r, "table_name"), "t");
	CHECK_STR(t_str(&r, "branch_name"), "nosuch");
	t_resp_free(&r);
	/* an unknown database */
	r = t_upload(&srv, alice, "alice/nosuch", csv, GOOD_PARAMS);
	check_error(&r, 404, "ENOTFOUND", "database 'alice/nosuch' not found");
	/* an empty file */
	{
		char path[700];
		snprintf(path, sizeof(path), "%s/empty.csv", dir);
		t_write_file(path, "", 0);
		r = t_upload(&srv, alice, "alice/shop", path, GOOD_PARAMS);
		check_error(&r, 400, "EINVALID", "'file' part is empty");
	}
	/* a multipart body that never closes */
	{
		static const char body[] = "--XX\r\nContent-Disposition: form-data; "
		                           "name=\"params\"\r\n\r\n{}";
		char path[700];
		snprintf(path, sizeof(path), "%s/unclosed.txt", dir);
		t_write_file(path, body, sizeof(body) - 1);
		r = t_http(&srv,
		           AUTH "-H 'content-type: multipart/form-data; boundary=XX' --data-binary "
		                "@%s '%s/alice/shop/upload'",
		           alice, path, srv.base);
		check_error(&r, 400, "EINVALID",
		            "multipart body ended before its closing boundary");
	}
	r = t_http(&srv,
	           AUTH "-H 'content-type: multipart/form-data' -d 'x' '%s/alice/shop/upload'",
	           alice, srv.base);
	check_error(&r, 400, "EINVALID", "boundary");

	/* Nothing of the refused uploads was kept. */
	CHECK(count_files("uploads") == 0);
	CHECK(count_files("tmp") == 0);
}

static void test_over_the_cap(void)
{
	char big[700], edge[700];
	t_resp r;

	/* 3 MB against a 1 MB cap: refused from the Content-Length, before the body is read. */
	snprintf(big, sizeof(big), "%s/big.csv", dir);
	CHECK(t_sh(NULL, "(echo id,v; seq 1 400000 | sed 's/$/,xx/') > '%s'", big) == 0);
	r = t_upload(&srv, alice, "alice/shop", big, GOOD_PARAMS);
	check_error(&r, 413, "ETOOBIG", "larger than the 1 MB upload limit");
	/* The same streamed without a length (chunked): refused as soon as the cap is passed. */
	r = t_http(&srv,
	           AUTH "-H 'Transfer-Encoding: chunked' --form-string 'params=%s' -F 'file=@%s' "
	                "'%s/alice/shop/upload'",
	           alice, GOOD_PARAMS, big, srv.base);
	check_error(&r, 413, "ETOOBIG", "larger than the 1 MB upload limit");
	/* Just over the cap, within the framing allowance: the stream itself is cut. */
	snprintf(edge, sizeof(edge), "%s/edge.csv", dir);
	CHECK(t_sh(NULL, "head -c 1049000 '%s' > '%s'", big, edge) == 0);
	r = t_upload(&srv, alice, "alice/shop", edge, GOOD_PARAMS);
	check_error(&r, 413, "ETOOBIG", "larger than the 1 MB upload limit");
	/* a params part over 64 KiB */
	{
		char params[700];
		snprintf(params, sizeof(params), "%s/params.json", dir);
		CHECK(t_sh(NULL,
		           "(printf '{\"tableName\":\"t\",\"x\":\"'; head -c 70000 /dev/zero | "
		           "tr '\\\\0' a; printf '\"}') > '%s'",
		           params) == 0);
		r = t_http(&srv, AUTH "-F 'params=<%s' -F 'file=@%s' '%s/alice/shop/upload'", alice,
		           params, csv, srv.base);
		check_error(&r, 413, "ETOOBIG", "'params' part is over 65536 bytes");
	}
	CHECK(count_files("uploads") == 0);
	CHECK(count_files("tmp") == 0);
	/* The server is still fine. */
	r = t_upload(&srv, alice, "alice/shop", csv, GOOD_PARAMS);
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK(count_files("uploads") == 1);
}

static void test_poll_requests(void)
{
	t_resp r;

	r = t_http(&srv, AUTH "'%s/alice/shop/upload'", alice, srv.base);
	check_error(&r, 400, "EINVALID", "'operationName' is required");
	r = t_http(&srv, AUTH "'%s/alice/shop/upload?operationName=garbage'", alice, srv.base);
	check_error(&r, 400, "EINVALID", "not an operation name");
	r = t_http(&srv,
	           AUTH
	           "'%s/alice/shop/upload?branchName=main&operationName=repositoryOwners/alice/"
	           "repositories/shop/jobs/00000000-0000-4000-8000-000000000000'",
	           alice, srv.base);
	check_error(&r, 404, "ENOTFOUND", "not found");
	r = t_http(&srv,
	           AUTH "'%s/alice/shop/upload?operationName=repositoryOwners/bob/repositories/x/"
	                "jobs/00000000-0000-4000-8000-000000000000'",
	           alice, srv.base);
	CHECK(r.status == 404);
	CHECK_STR(t_str(&r, "operation_name"),
	          "repositoryOwners/bob/repositories/x/jobs/00000000-0000-4000-8000-000000000000");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/pulls/999'", alice, srv.base);
	check_error(&r, 404, "ENOTFOUND", "pull request #999 not found");
	r = t_http(&srv, AUTH "'%s/alice/shop/pulls?filterByState=Weird'", alice, srv.base);
	check_error(&r, 400, "EINVALID", "'filterByState'");
	r = t_http(&srv, AUTH "'%s/alice/shop/jobs?pageToken=zz'", alice, srv.base);
	check_error(&r, 400, "EINVALID", "pageToken");
	r = t_http(&srv, AUTH "'%s/users/alice/operations?operationType=Bogus'", alice, srv.base);
	check_error(&r, 400, "EINVALID", "'operationType'");
	(void)nz;
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
	static const char *const cap[] = { "--max-upload-mb", "1", NULL };
	char path[600];

	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, cap) < 0)
		return 1;
	if (t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/a.csv", dir);
	t_write_file(path, "id,v\n1,x\n", 9);
	csv = strdup(path);
	create_db(alice, "shop", "public");
	create_db(alice, "vault", "private");
	RUN(test_paths_and_methods);
	RUN(test_auth);
	RUN(test_database_requests);
	RUN(test_upload_requests);
	RUN(test_over_the_cap);
	RUN(test_poll_requests);
	RUN(test_clean_shutdown);
	free(alice);
	free(bob);
	free(csv);
	t_rmdir(dir);
	TH_TEST_END();
}
