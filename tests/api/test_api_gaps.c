/* test_api_gaps.c: the smaller holes a hostile or unlucky client found, each refused or reported
 * truthfully by a real `tablehub serve`:
 *   - a NUL character in a name (the params' tableName, a JSON body, a CSV header) is refused,
 *     never cut short silently;
 *   - a name with invalid UTF-8 comes back in a reply that is still valid JSON;
 *   - no reply shows where the server keeps its data (a 1,000-byte branch name used to show it);
 *   - a stale lock file on a branch (minutes old) fails a merge at once with a message naming the
 *     lock file's ref and what to do (it used to retry 100 times and blame a moving branch);
 *   - a full disk is 507 with a message, checked before an upload is read (--min-free-mb) and
 *     found while it is written, by a multipart upload or a resumable one's PATCH (on a 3 MB
 *     tmpfs, when this test may mount one);
 *   - the file of an upload whose operation failed is removed, unless another operation that did
 *     not fail names the same bytes. */
#include <sys/stat.h>
#include <sys/time.h>

#include "../harness.h"
#include "server.h"

static t_server srv;
static char *dir, *alice;

#define PARAMS(table, op)                                                                          \
	"{\"tableName\":\"" table "\",\"importOp\":\"" op "\",\"primaryKeys\":[\"id\"]}"

/* Fail when a reply shows the server's data directory. */
static void no_server_path(const t_resp *r)
{
	CHECK(strstr(r->body, srv.dir) == NULL);
	CHECK(strstr(r->body, "/repos/") == NULL && strstr(r->body, "/tmp/") == NULL);
	if (strstr(r->body, srv.dir) != NULL)
		fprintf(stderr, "  the reply shows a server path: %s\n", r->body);
}

static char *file_in_dir(const char *name, const char *text, size_t len)
{
	char *path = malloc(strlen(dir) + strlen(name) + 2);

	sprintf(path, "%s/%s", dir, name);
	t_write_file(path, text, len);
	return path;
}

/* Upload `file` with params and wait for the operation; returns the final poll. */
static t_resp upload_and_wait(const char *file, const char *params)
{
	t_resp r = t_upload(&srv, alice, "alice/shop", file, params), p;
	char op[256];

	CHECK(r.status == 200);
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	p = t_poll(&srv, alice, "alice/shop", op, 60);
	return p;
}

/* Is the upload of the bytes of `file` stored (DIR/uploads/<its sha-256>)? */
static int stored(const char *file)
{
	char *sha = NULL, path[800];
	struct stat sb;
	int yes;

	if (t_sh(&sha, "sha256sum '%s' | cut -c1-64", file) != 0) {
		free(sha);
		return -1;
	}
	sha[strcspn(sha, "\n")] = '\0';
	snprintf(path, sizeof(path), "%s/uploads/%s", dir, sha);
	yes = stat(path, &sb) == 0;
	free(sha);
	return yes;
}

static void test_nul_in_names(void)
{
	char *csv = file_in_dir("nul-a.csv", "id,v\n1,x\n", 9);
	char *nulhead = file_in_dir("nul-h.csv", "id,a\0b\n1,x\n", 11);
	t_resp r;

	r = t_upload(&srv, alice, "alice/shop", csv, PARAMS("a\\u0000b", "Create"));
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "NUL character");
	t_resp_free(&r);
	/* "\\u0000" is a backslash and "u0000": no NUL, an ordinary bad name. */
	r = t_upload(&srv, alice, "alice/shop", csv, PARAMS("a\\\\u0000b", "Create"));
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'tableName' must be");
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"x\\u0000y\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "NUL character");
	t_resp_free(&r);
	r = upload_and_wait(nulhead, PARAMS("nulhead", "Create"));
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_CONTAINS(r.body, "line 1, column 2: the column name holds a NUL byte");
	t_resp_free(&r);
	free(csv);
	free(nulhead);
}

static void test_invalid_utf8_echo(void)
{
	char *csv = file_in_dir("u8.csv", "id,v\n1,x\n", 9);
	static const char text[] = "{\"tableName\":\"a\xff\xfe"
	                           "b\",\"importOp\":\"Create\"}";
	char *params = file_in_dir("u8.json", text, sizeof(text) - 1);
	t_resp r = t_http(&srv, AUTH "-F 'params=<%s' -F 'file=@%s' '%s/alice/shop/upload'", alice,
	                  params, csv, srv.base);

	CHECK(r.status == 400);
	CHECK(r.json != NULL); /* the whole body is valid JSON */
	CHECK_CONTAINS(t_str(&r, "message"), "(got 'a\xef\xbf\xbd\xef\xbf\xbd"
	                                     "b')");
	CHECK_STR(t_str(&r, "table_name"), "a\xef\xbf\xbd\xef\xbf\xbd"
	                                   "b");
	t_resp_free(&r);
	free(csv);
	free(params);
}

static void test_long_branch_name(void)
{
	char name[1001], params[1200];
	char *csv = file_in_dir("lb.csv", "id,v\n1,x\n", 9);
	t_resp r;

	memset(name, 'b', 1000);
	name[1000] = '\0';
	snprintf(params, sizeof(params),
	         "{\"tableName\":\"t\",\"branchName\":\"%s\",\"importOp\":\"Create\"}", name);
	r = t_upload(&srv, alice, "alice/shop", csv, params);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'branchName' is not a valid branch name");
	CHECK_CONTAINS(t_str(&r, "message"), "at most 200 bytes");
	no_server_path(&r);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"revisionType\":\"branch\",\"revisionName\":\"main\","
	                "\"newBranchName\":\"%s\"}' '%s/alice/shop/branches'",
	           alice, name, srv.base);
	CHECK(r.status == 400);
	no_server_path(&r);
	t_resp_free(&r);
	free(csv);
}

static void test_stale_branch_lock(void)
{
	char *csv = file_in_dir("lock.csv", "id,v\n1,x\n", 9), lock[700], op[256], pull[32];
	t_resp r = upload_and_wait(csv, PARAMS("locked", "Create"));
	time_t t0;

	CHECK_STR(t_str(&r, "job_status"), "Completed");
	snprintf(pull, sizeof(pull), "%s", nz(t_str(&r, "pull_id")));
	snprintf(lock, sizeof(lock), "%s/repos/alice/shop.git/refs/heads/main.lock", dir);
	t_write_file(lock, "", 0);
	{
		/* Two minutes old: left by a crash, not a writer at work. */
		struct timeval old[2] = { { time(NULL) - 120, 0 }, { time(NULL) - 120, 0 } };
		CHECK(utimes(lock, old) == 0);
	}
	t0 = time(NULL);
	{
		t_resp m = t_http(&srv, AUTH "-X POST '%s/alice/shop/pulls/%s/merge'", alice,
		                  srv.base, pull);
		CHECK(m.status == 200);
		snprintf(op, sizeof(op), "%s", nz(t_str(&m, "operation_name")));
		t_resp_free(&m);
	}
	t_resp_free(&r);
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < 100; i++) {
		const char *st;
		t_resp_free(&r);
		r = t_http(&srv,
		           AUTH
		           "-G --data-urlencode 'operationName=%s' '%s/alice/shop/pulls/%s/merge'",
		           alice, op, srv.base, pull);
		st = t_str(&r, "job_status");
		if (st != NULL && (strcmp(st, "Failed") == 0 || strcmp(st, "Completed") == 0))
			break;
		t_sleep_ms(100);
	}
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_CONTAINS(r.body, "branch 'main' is locked");
	CHECK_CONTAINS(r.body, "'refs/heads/main.lock' of ref refs/heads/main, 12");
	CHECK_CONTAINS(r.body, "remove that file and try again");
	CHECK(strstr(r.body, "kept moving") == NULL);
	CHECK(time(NULL) - t0 < 10); /* at once, not after 100 attempts */
	no_server_path(&r);
	t_resp_free(&r);
	unlink(lock);
	free(csv);
}

static void test_failed_upload_removed(void)
{
	char *good = file_in_dir("good.csv", "id,v\n7,shared\n", 14);
	char *bad = file_in_dir("bad.csv", "id,v\n1,x\n1,y\n", 13);
	int gone = 0;
	t_resp r;

	/* The same bytes twice: once completed, once failed (no such table to update). The file
	 * stays. */
	r = upload_and_wait(good, PARAMS("shared", "Create"));
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	t_resp_free(&r);
	r = upload_and_wait(good, PARAMS("nosuch", "Update"));
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	t_resp_free(&r);
	/* Bytes only a failed import names: removed within a few seconds. */
	r = upload_and_wait(bad, PARAMS("dup", "Create"));
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	t_resp_free(&r);
	for (int i = 0; i < 100 && !(gone = stored(bad) == 0); i++)
		t_sleep_ms(100);
	CHECK(gone);
	t_sleep_ms(3500); /* another sweep: the shared file is still kept */
	CHECK(stored(good) == 1);
	free(good);
	free(bad);
}

/* --min-free-mb past what the disk has: every upload is refused before its body is read. */
static void test_min_free_space(void)
{
	static const char *const flags[] = { "--min-free-mb", "100000000", NULL };
	char *d2 = t_mkdtemp(), *tok, *csv = file_in_dir("mf.csv", "id,v\n1,x\n", 9);
	t_server s2;
	t_resp r;

	if (t_server_start(&s2, d2, 0, flags) < 0) {
		CHECK(0);
		return;
	}
	tok = t_user_add(&s2, "alice");
	r = t_http(&s2, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\"}' '%s/database'",
	           tok, s2.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_upload(&s2, tok, "alice/shop", csv, PARAMS("t", "Create"));
	CHECK(r.status == 507);
	CHECK_STR(t_str(&r, "code"), "ENOSPC");
	CHECK_CONTAINS(t_str(&r, "message"), "not enough disk space for this upload");
	CHECK_CONTAINS(t_str(&r, "message"), "keeps 100000000 MB free");
	t_resp_free(&r);
	CHECK(t_server_stop(&s2, SIGTERM) == 0);
	free(tok);
	free(csv);
	t_rmdir(d2);
}

/* A resumable upload of `file` whose bytes fill the disk of the server `view` (on its 3 MB
 * tmpfs): the PATCH is a 507 naming the part file by its place, the bytes are dropped (the
 * offset stays 0), and the disk has room again. */
static void disk_full_tus(const t_server *view, const char *tok, const char *file)
{
	char hdrs[700], url[300], *h, *loc;
	struct stat st;
	t_resp r;

	CHECK(stat(file, &st) == 0 && st.st_size > 3 * 1048576);
	snprintf(hdrs, sizeof(hdrs), "%s/tus-headers", view->dir);
	/* tableName t, importOp Create, primaryKeys id */
	r = t_http(view,
	           AUTH "-D '%s' -X POST -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: %lld' "
	                "-H 'Upload-Metadata: tableName dA==,importOp Q3JlYXRl,primaryKeys aWQ=' "
	                "'%s/alice/shop/uploads/tus'",
	           tok, hdrs, (long long)st.st_size, view->base);
	CHECK(r.status == 201);
	t_resp_free(&r);
	h = t_read_file(hdrs, NULL);
	loc = h ? strstr(h, "Location: ") : NULL;
	CHECK(loc != NULL);
	if (loc == NULL) {
		free(h);
		return;
	}
	loc += strlen("Location: ");
	loc[strcspn(loc, "\r\n")] = '\0';
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", view->port, loc);
	free(h);
	r = t_http(view,
	           AUTH
	           "-X PATCH -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' "
	           "-H 'Content-Type: application/offset+octet-stream' --data-binary @'%s' '%s'",
	           tok, file, url);
	CHECK(r.status == 507);
	CHECK_STR(t_str(&r, "code"), "ENOSPC");
	CHECK_CONTAINS(t_str(&r, "message"), "the disk is full: cannot write 'tus/");
	CHECK(strstr(r.body, view->dir) == NULL);
	t_resp_free(&r);
	r = t_http(view, AUTH "-I -H 'Tus-Resumable: 1.0.0' '%s'", tok, url);
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "Upload-Offset: 0\r\n");
	t_resp_free(&r);
	/* The part file was cut back: there is room for a database again. */
	r = t_http(view, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"after\"}' '%s/database'",
	           tok, view->base);
	CHECK(r.status == 200);
	t_resp_free(&r);
}

/* A real full disk: the server runs in its own mount namespace with its data on a 3 MB tmpfs.
 * Needs the right to mount (root in a container is enough); skipped otherwise. */
static void test_disk_full(void)
{
	char *d3 = t_mkdtemp(), *big, *tok = NULL, tokfile[700], data[700], log[700], base[128];
	int port = t_free_port(), up = 0;
	pid_t pid;
	t_resp r;
	t_server view;

	if (t_sh(NULL, "unshare -m true 2>/dev/null") != 0) {
		printf("test_disk_full: skipped (cannot make a mount namespace here)\n");
		t_rmdir(d3);
		return;
	}
	snprintf(data, sizeof(data), "%s/small/d", d3);
	snprintf(tokfile, sizeof(tokfile), "%s/token", d3);
	snprintf(log, sizeof(log), "%s/serve.log", d3);
	if ((pid = fork()) == 0) {
		char cmd[8192];
		snprintf(cmd, sizeof(cmd),
		         "mkdir -p '%s/small' && mount -t tmpfs -o size=3m tmpfs '%s/small' && "
		         "'%s' user add --data '%s' alice > '%s' 2>/dev/null && exec '%s' serve "
		         "--data '%s' --listen 127.0.0.1:%d --min-free-mb 0 2>'%s'",
		         d3, d3, TH_BIN, data, tokfile, TH_BIN, data, port, log);
		execl("/usr/bin/unshare", "unshare", "-m", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !(up = t_can_connect(port)); i++)
		t_sleep_ms(50);
	CHECK(up);
	memset(&view, 0, sizeof(view));
	snprintf(view.dir, sizeof(view.dir), "%s", d3);
	view.port = port;
	snprintf(base, sizeof(base), "http://127.0.0.1:%d/api/v1alpha1", port);
	snprintf(view.base, sizeof(view.base), "%s", base);
	if (up && (tok = t_read_file(tokfile, NULL)) != NULL) {
		tok[strcspn(tok, "\n")] = '\0';
		r = t_http(&view,
		           AUTH
		           "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\"}' '%s/database'",
		           tok, view.base);
		CHECK(r.status == 200);
		t_resp_free(&r);
		big = malloc(strlen(d3) + 16);
		sprintf(big, "%s/big.csv", d3);
		CHECK(t_sh(NULL, "(echo id,v; seq 1 400000 | sed 's/$/,xx/') > '%s'", big) == 0);
		r = t_upload(&view, tok, "alice/shop", big, PARAMS("t", "Create"));
		CHECK(r.status == 507);
		CHECK_STR(t_str(&r, "code"), "ENOSPC");
		CHECK_CONTAINS(t_str(&r, "message"), "the disk is full");
		CHECK(strstr(r.body, d3) == NULL);
		t_resp_free(&r);
		/* The refused upload's temp file is gone: the disk has room again. */
		r = t_http(&view,
		           AUTH
		           "-d '{\"ownerName\":\"alice\",\"repoName\":\"more\"}' '%s/database'",
		           tok, view.base);
		CHECK(r.status == 200);
		t_resp_free(&r);
		disk_full_tus(&view, tok, big);
		free(big);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	free(tok);
	t_rmdir(d3);
}

int main(void)
{
	t_resp r;

	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, NULL) < 0)
		return 1;
	if ((alice = t_user_add(&srv, "alice")) == NULL) {
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	RUN(test_nul_in_names);
	RUN(test_invalid_utf8_echo);
	RUN(test_long_branch_name);
	RUN(test_stale_branch_lock);
	RUN(test_failed_upload_removed);
	RUN(test_min_free_space);
	RUN(test_disk_full);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	t_rmdir(dir);
	TH_TEST_END();
}
