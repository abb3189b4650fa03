/* test_api_files.c: uploaded files as resources against a real `tablehub serve`: every upload is
 * listed (name, size, sha256, type, uploader, the operations that read it, the disk used), an
 * upload may name `fileId` instead of sending the file again, the bytes download whole or by
 * Range, DELETE is for admins and removes the bytes when nothing else names them, and
 * `--keep-uploads` removes files unused that long. Also runs: the jobs and operations lists
 * filtered by state and kind, paged, each operation with the file it read. */
#include "../harness.h"
#include "server.h"
#include "tablehub/hash.h"

static t_server srv;
static char *dir, *alice, *bob;

static const char csv[] = "id,name\n1,apple\n2,pear\n3,plum\n";

/* Upload `params` (with the file when `with_file`) as alice; waits for the operation. */
static t_resp upload(const char *params, int with_file, char **op_out)
{
	char *path = t_write_in(dir, "fruit.csv", csv);
	t_resp r;

	if (with_file)
		r = t_upload(&srv, alice, "alice/shop", path, params);
	else
		r = t_http(&srv, AUTH "--form-string 'params=%s' '%s/alice/shop/upload'", alice,
		           params, srv.base);
	free(path);
	if (op_out)
		*op_out = t_str(&r, "operation_name") ? strdup(t_str(&r, "operation_name")) : NULL;
	return r;
}

static const char *file_id_of(const t_resp *r)
{
	return t_str(r, "file_id");
}

static void test_listed_and_reused(void)
{
	char *op1 = NULL, *op2 = NULL, *id = NULL, sha[65];
	t_resp r, p;
	const cJSON *files, *f, *ops;

	th_sha256_hex(sha, csv, strlen(csv));
	r = upload("{\"tableName\":\"fruit\",\"importOp\":\"Create\",\"primaryKeys\":[\"id\"]}", 1,
	           &op1);
	CHECK(r.status == 200 && op1 != NULL && file_id_of(&r) != NULL);
	id = strdup(nz(file_id_of(&r)));
	t_resp_free(&r);
	p = t_poll(&srv, alice, "alice/shop", nz(op1), 30);
	CHECK_STR(t_str(&p, "job_status"), "Completed");
	t_resp_free(&p);
	/* The same file into another table, by its id. */
	r = upload("{\"tableName\":\"fruit2\",\"importOp\":\"Create\",\"fileId\":\"", 0, NULL);
	t_resp_free(&r); /* malformed JSON: 400 */
	{
		char params[256];
		snprintf(params, sizeof(params),
		         "{\"tableName\":\"fruit2\",\"importOp\":\"Create\",\"fileId\":\"%s\"}",
		         id);
		r = upload(params, 0, &op2);
	}
	CHECK(r.status == 200);
	CHECK_STR(file_id_of(&r), id);
	t_resp_free(&r);
	p = t_poll(&srv, alice, "alice/shop", nz(op2), 30);
	CHECK_STR(t_str(&p, "job_status"), "Completed");
	CHECK(cJSON_GetNumberValue(
	              cJSON_GetObjectItem(cJSON_GetObjectItem(p.json, "result"), "rows")) == 3);
	t_resp_free(&p);
	/* Listed once, with both operations, its name, size, sha256, type and uploader. */
	r = t_http(&srv, AUTH "'%s/alice/shop/files'", alice, srv.base);
	CHECK(r.status == 200);
	files = cJSON_GetObjectItem(r.json, "files");
	CHECK(cJSON_GetArraySize(files) == 1);
	f = cJSON_GetArrayItem(files, 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(f, "file_id")), id);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(f, "name")), "fruit.csv");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(f, "sha256")), sha);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(f, "type")), "Csv");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(f, "uploader")), "alice");
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(f, "size")) == (double)strlen(csv));
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(f, "in_use")));
	ops = cJSON_GetObjectItem(f, "operations");
	CHECK(cJSON_GetArraySize(ops) == 2);
	CHECK_STR(cJSON_GetStringValue(
	                  cJSON_GetObjectItem(cJSON_GetArrayItem(ops, 1), "operation_name")),
	          nz(op2));
	CHECK(t_num(&r, "disk_bytes") == (double)strlen(csv) && t_num(&r, "disk_files") == 1);
	t_resp_free(&r);
	/* The refusals: both a file and a fileId, an unknown one, a malformed one. */
	{
		char params[256];
		snprintf(params, sizeof(params),
		         "{\"tableName\":\"x\",\"importOp\":\"Create\",\"fileId\":\"%s\"}", id);
		r = upload(params, 1, NULL);
		CHECK(r.status == 400);
		CHECK_CONTAINS(t_str(&r, "message"), "not both");
		t_resp_free(&r);
	}
	r = upload("{\"tableName\":\"x\",\"importOp\":\"Create\",\"fileId\":"
	           "\"00000000-0000-4000-8000-000000000000\"}",
	           0, NULL);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = upload("{\"tableName\":\"x\",\"importOp\":\"Create\",\"fileId\":\"../x\"}", 0, NULL);
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = upload("{\"tableName\":\"x\",\"importOp\":\"Create\"}", 0, NULL);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "fileId");
	t_resp_free(&r);
	free(op1);
	free(op2);
	free(id);
}

/* Runs: the jobs of a database and a user's operations, filtered by state and kind, paged, each
 * with the file it read. */
static void test_runs(void)
{
	t_resp r;
	const cJSON *jobs, *f;
	char *id = NULL;

	r = t_http(&srv, AUTH "'%s/alice/shop/files'", alice, srv.base);
	id = strdup(nz(cJSON_GetStringValue(cJSON_GetObjectItem(
	        cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "files"), 0), "file_id"))));
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/jobs?state=completed&kind=import'", alice, srv.base);
	CHECK(r.status == 200);
	jobs = cJSON_GetObjectItem(r.json, "jobs");
	CHECK(cJSON_GetArraySize(jobs) == 2);
	f = cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 0), "file");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(f, "file_id")), id);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(f, "name")), "fruit.csv");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 1), "status")),
	          "Succeeded");
	t_resp_free(&r);
	/* The same through DoltHub's name of the kind, one a page. */
	r = t_http(&srv, AUTH "'%s/alice/shop/jobs?state=Completed&kind=Import&pageSize=1'", alice,
	           srv.base);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "jobs")) == 1);
	CHECK_STR(t_str(&r, "next_page_token"), "1");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/jobs?state=running'", alice, srv.base);
	CHECK(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "jobs")) == 0);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/jobs?kind=merge'", alice, srv.base);
	CHECK(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "jobs")) == 0);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/users/alice/operations?state=queued'", alice, srv.base);
	CHECK(r.status == 200 &&
	      cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "operations")) == 0);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/users/alice/operations?state=completed&pageSize=5'", alice,
	           srv.base);
	jobs = cJSON_GetObjectItem(r.json, "operations");
	CHECK(cJSON_GetArraySize(jobs) == 2);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(
	                  cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 1), "file"), "file_id")),
	          id);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/jobs?state=bogus'", alice, srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"),
	               "'state' must be queued, running, failed or completed");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/jobs?kind=bogus'", alice, srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'kind' must be one of import, merge");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/jobs?pageSize=0'", alice, srv.base);
	CHECK(r.status == 400);
	t_resp_free(&r);
	free(id);
}

static const char *first_file_id(t_resp *r)
{
	*r = t_http(&srv, AUTH "'%s/alice/shop/files'", alice, srv.base);
	return cJSON_GetStringValue(cJSON_GetObjectItem(
	        cJSON_GetArrayItem(cJSON_GetObjectItem(r->json, "files"), 0), "file_id"));
}

/* GET .../data with `range` ("" = none): status, body in *body, headers in *head. */
static int download(const char *id, const char *range, char **body, char **head)
{
	char *code = NULL;
	int status = -1;

	if (t_sh(&code,
	         "curl -s -S -w '%%{http_code}' -D '%s/h' -o '%s/b' -H 'authorization: token %s' "
	         "%s%s%s '%s/alice/shop/files/%s/data'",
	         dir, dir, alice, range[0] ? "-H 'Range: " : "", range, range[0] ? "'" : "",
	         srv.base, id) == 0)
		status = atoi(code);
	free(code);
	{
		char p[600];
		snprintf(p, sizeof(p), "%s/b", dir);
		*body = t_read_file(p, NULL);
		snprintf(p, sizeof(p), "%s/h", dir);
		*head = t_read_file(p, NULL);
	}
	return status;
}

static void test_download_and_delete(void)
{
	t_resp l, r;
	const char *id = first_file_id(&l);
	char *body, *head, path[600], sha[65];
	struct stat sb;

	CHECK(id != NULL);
	CHECK(download(id, "", &body, &head) == 200);
	CHECK_STR(body, csv);
	CHECK_CONTAINS(head, "filename=\"fruit.csv\"");
	CHECK_CONTAINS(head, "Accept-Ranges: bytes");
	free(body);
	free(head);
	CHECK(download(id, "bytes=3-6", &body, &head) == 206);
	CHECK_STR(body, "name");
	CHECK_CONTAINS(head, "Content-Range: bytes 3-6/30");
	free(body);
	free(head);
	CHECK(download(id, "bytes=-5", &body, &head) == 206);
	CHECK_STR(body, "plum\n");
	free(body);
	free(head);
	CHECK(download(id, "bytes=1000-", &body, &head) == 416);
	CHECK_CONTAINS(head, "Content-Range: bytes */30");
	free(body);
	free(head);
	/* Deleting is for admins: bob may write, not administer. */
	r = t_http(&srv, "-X DELETE " AUTH "'%s/alice/shop/files/%s'", bob, srv.base, id);
	CHECK(r.status == 403);
	t_resp_free(&r);
	th_sha256_hex(sha, csv, strlen(csv));
	snprintf(path, sizeof(path), "%s/uploads/%s", dir, sha);
	CHECK(stat(path, &sb) == 0);
	r = t_http(&srv, "-X DELETE " AUTH "'%s/alice/shop/files/%s'", alice, srv.base, id);
	CHECK(r.status == 200);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "bytes_removed")));
	t_resp_free(&r);
	CHECK(stat(path, &sb) != 0);
	r = t_http(&srv, AUTH "'%s/alice/shop/files/%s'", alice, srv.base, id);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/files/not-a-uuid'", alice, srv.base);
	CHECK(r.status == 400);
	t_resp_free(&r);
	t_resp_free(&l);
}

/* A file whose only import failed goes with its bytes within seconds (upload.c's clean-up). */
static void test_failed_dropped(void)
{
	char *path = t_write_in(dir, "dup.csv", "id,v\n1,x\n1,y\n"), *op = NULL;
	t_resp r, p;
	int gone = 0;

	r = t_upload(&srv, alice, "alice/shop", path,
	             "{\"tableName\":\"dup\",\"importOp\":\"Create\",\"primaryKeys\":[\"id\"]}");
	CHECK(r.status == 200 && t_str(&r, "file_id") != NULL);
	op = strdup(nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	p = t_poll(&srv, alice, "alice/shop", op, 30);
	CHECK_STR(t_str(&p, "job_status"), "Failed");
	t_resp_free(&p);
	for (int i = 0; i < 100 && !gone; i++) {
		r = t_http(&srv, AUTH "'%s/alice/shop/files'", alice, srv.base);
		gone = strstr(r.body, "dup.csv") == NULL;
		t_resp_free(&r);
		if (!gone)
			t_sleep_ms(100);
	}
	CHECK(gone);
	free(path);
	free(op);
}

/* --keep-uploads 2s: a file unused for 2 s is removed with its bytes, and the log says so. */
static void test_retention(void)
{
	const char *extra[] = { "--keep-uploads", "2s", NULL };
	char *op = NULL, *log = NULL, path[600], logpath[600], sha[65];
	struct stat sb;
	t_resp r, p;
	int gone = 0;

	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	CHECK(t_server_start(&srv, dir, srv.port, extra) == 0);
	r = upload("{\"tableName\":\"kept\",\"importOp\":\"Create\"}", 1, &op);
	CHECK(r.status == 200);
	t_resp_free(&r);
	p = t_poll(&srv, alice, "alice/shop", nz(op), 30);
	CHECK_STR(t_str(&p, "job_status"), "Completed");
	t_resp_free(&p);
	th_sha256_hex(sha, csv, strlen(csv));
	snprintf(path, sizeof(path), "%s/uploads/%s", dir, sha);
	CHECK(stat(path, &sb) == 0);
	snprintf(logpath, sizeof(logpath), "%s/serve.log", dir);
	/* The sweep removes the record, then the bytes, then logs: wait for all three. */
	for (int i = 0; i < 100 && !gone; i++) {
		t_sleep_ms(100);
		r = t_http(&srv, AUTH "'%s/alice/shop/files'", alice, srv.base);
		free(log);
		log = t_read_file(logpath, NULL);
		gone = cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "files")) == 0 &&
		       stat(path, &sb) != 0 && log != NULL &&
		       strstr(log, "file retention: removed 1 file record(s)") != NULL;
		t_resp_free(&r);
	}
	CHECK(gone);
	CHECK(stat(path, &sb) != 0);
	CHECK_CONTAINS(log, "file retention: removed 1 file record(s)");
	free(log);
	free(op);
}

int main(void)
{
	t_resp r;

	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, NULL) < 0 || t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;
	r = t_http(&srv,
	           AUTH "-H 'content-type: application/json' -d '{\"ownerName\":\"alice\","
	                "\"repoName\":\"shop\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-X PUT -H 'content-type: application/json' -d '{\"role\":\"write\"}' "
	                "'%s/alice/shop/collaborators/bob'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	RUN(test_listed_and_reused);
	RUN(test_runs);
	RUN(test_download_and_delete);
	RUN(test_failed_dropped);
	RUN(test_retention);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	free(bob);
	t_rmdir(dir);
	TH_TEST_END();
}
