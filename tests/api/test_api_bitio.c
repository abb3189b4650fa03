/* test_api_bitio.c: bit.io's import routes and SQL over POST against a real server.
 *
 * bit.io's own examples run with only the host changed: the raw-body upload with curl (its
 * Content-Disposition names the file 'video-game-sales', quoted in single quotes, no extension),
 * the import from a URL with its Node example (node-fetch, here a shim over Node's own fetch, so
 * nothing is downloaded) against a loopback HTTP server the test starts, and SQL with curl and
 * "query_string". Then every refusal of the URL import: file:// and gopher:// (400), 127.0.0.1 and
 * a name resolving to loopback on a server without --allow-private-urls, a redirect to
 * 169.254.169.254 and one to file:// from the loopback server, a body over --max-url-mb and a
 * server trickling past --url-timeout: each a Failed operation with a clear message, and nothing
 * stored (no upload file, no temp file, no import branch).
 */
#include <dirent.h>
#include <poll.h>

#include "../harness.h"
#include "server.h"

static t_server srv, strict;
static char *dir, *dir2, *alice, *alice2;
static pid_t web_pid;
static char people_ref[64] = "main"; /* the branch of the people import */
static int web_port;

/* --- a loopback HTTP server with a few pages ------------------------------------------------- */

static void web_write(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void web_page(int fd, const char *path)
{
	static const char csv[] =
	        "Name,Platform,Sales\nWii Sports,Wii,82.74\nSuper Mario Bros.,NES,"
	        "40.24\nMario Kart Wii,Wii,35.82\n";
	char head[512];

	if (strcmp(path, "/video-game-sales.csv") == 0 || strcmp(path, "/data.csv") == 0) {
		snprintf(head, sizeof(head),
		         "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: %zu\r\n"
		         "Connection: close\r\n\r\n",
		         strlen(csv));
		web_write(fd, head, strlen(head));
		web_write(fd, csv, strlen(csv));
	} else if (strcmp(path, "/to-metadata") == 0 || strcmp(path, "/to-file") == 0) {
		snprintf(head, sizeof(head),
		         "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n"
		         "Connection: close\r\n\r\n",
		         path[4] == 'm' ? "http://169.254.169.254/latest/meta-data/"
		                        : "file:///etc/passwd");
		web_write(fd, head, strlen(head));
	} else if (strcmp(path, "/big.csv") == 0) {
		/* 2 MB without a Content-Length: the cap must hold while the body streams. */
		char rows[8192];
		size_t n = 0;
		web_write(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nid,v\n", 42);
		while (n < sizeof(rows) - 16)
			n += (size_t)snprintf(rows + n, sizeof(rows) - n, "1,abcdefgh\n");
		for (int i = 0; i < 256; i++)
			web_write(fd, rows, n);
	} else if (strcmp(path, "/trickle.csv") == 0) {
		web_write(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nid,v\n", 42);
		for (int i = 0; i < 40; i++) {
			t_sleep_ms(250);
			web_write(fd, "1", 1);
		}
	} else {
		web_write(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 45);
	}
}

/* Fork the web server; it forks again per connection and serves until killed. */
static void web_start(void)
{
	struct sockaddr_in sa;
	int lfd;

	web_port = t_free_port();
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)web_port);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	{
		int one = 1;
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0)
		abort();
	if ((web_pid = fork()) < 0)
		abort();
	if (web_pid > 0) {
		close(lfd);
		return;
	}
	setpgid(0, 0);
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (fork() == 0) {
			char req[4096], path[1024] = "/";
			size_t n = 0;
			close(lfd);
			while (n < sizeof(req) - 1) {
				ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
				if (r <= 0)
					break;
				n += (size_t)r;
				req[n] = '\0';
				if (strstr(req, "\r\n\r\n"))
					break;
			}
			req[n] = '\0';
			sscanf(req, "%*s %1023s", path);
			web_page(fd, path);
			shutdown(fd, SHUT_WR);
			close(fd);
			_exit(0);
		}
		close(fd);
	}
}

static void web_stop(void)
{
	if (web_pid > 0) {
		kill(-web_pid, SIGKILL);
		waitpid(web_pid, NULL, 0);
	}
}

/* --- helpers -----------------------------------------------------------------------------------
 */

static int count_files(const char *d, const char *sub, const char *prefix)
{
	char path[700];
	DIR *dd;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", d, sub);
	if ((dd = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(dd)) != NULL)
		if (e->d_name[0] != '.' && strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(dd);
	return n;
}

/* Poll an operation of DB on server s until it ends. */
static t_resp wait_op(const t_server *s, const char *token, const char *db, const char *op)
{
	return t_poll(s, token, db, op, 60);
}

/* POST an import-url body to server s for alice/shop; the operation's final poll, or the 4xx. */
static t_resp import_url(const t_server *s, const char *token, const char *url)
{
	t_resp r = t_http(s,
	                  "-H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d "
	                  "'{\"url\":\"%s\",\"tableName\":\"fetched\",\"importOp\":\"Create\"}' "
	                  "'%s/alice/shop/import-url'",
	                  token, url, s->base);
	char op[300];

	if (r.status != 200)
		return r;
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	return wait_op(s, token, "alice/shop", op);
}

/* --- the tests ---------------------------------------------------------------------------------
 */

static void test_raw_upload_bitio_example(void)
{
	char *csv = t_write_in(dir, "video-game-sales.csv",
	                       "Name,Platform,Year,Sales\nWii Sports,Wii,2006,82.74\n"
	                       "Super Mario Bros.,NES,1985,40.24\n");
	char *out = NULL, op[300] = "";
	t_resp r;
	int rc;

	/* bit.io's curl example, only the host changed (import.bit.io -> this server's /import). */
	rc = t_sh(&out,
	          "cd '%s' && curl -s -i -X POST \\\n"
	          "--header 'Authorization: Bearer %s' \\\n"
	          "--header \"Content-Disposition: attachment;filename='video-game-sales'\" \\\n"
	          "--data-binary @\"video-game-sales.csv\" "
	          "http://127.0.0.1:%d/import/alice/shop/video_game_sales_csv/",
	          dir, alice, srv.port);
	CHECK(rc == 0);
	CHECK_CONTAINS(out, "HTTP/1.1 200");
	if (out && strstr(out, "\"operation_name\":\"")) {
		const char *p = strstr(out, "\"operation_name\":\"") + 18;
		snprintf(op, sizeof(op), "%.*s", (int)strcspn(p, "\""), p);
	}
	free(out);
	r = wait_op(&srv, alice, "alice/shop", op);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	CHECK_STR(t_str(&r, "table_name"), "video_game_sales_csv");
	CHECK(t_str(&r, "pull_id") != NULL);
	t_resp_free(&r);
	r = t_http(&srv,
	           "-G -H 'Authorization: Bearer %s' --data-urlencode 'q=SELECT Name, Year FROM "
	           "video_game_sales_csv ORDER BY Year' '%s/alice/shop/alice/import-%.8s'",
	           alice, srv.base, strrchr(op, '/') ? strrchr(op, '/') + 1 : "x");
	CHECK(r.status == 200);
	CHECK_CONTAINS(r.body, "{\"Name\":\"Super Mario Bros.\",\"Year\":\"1985\"}");
	t_resp_free(&r);
	free(csv);
}

static void test_raw_upload_params(void)
{
	char *tsv = t_write_in(dir, "people.tsv", "id\tname\n1\tann\n2\tbob\n");
	char op[300];
	t_resp r;

	/* The query names op, key and branch; the file's extension its type. */
	r = t_http(&srv,
	           "-H 'Authorization: Bearer %s' -H 'Content-Disposition: attachment; "
	           "filename=\"dir/people.tsv\"' --data-binary @'%s' "
	           "'http://127.0.0.1:%d/import/alice/shop/people?op=create&key=id&branch=main'",
	           alice, tsv, srv.port);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "table_name"), "people");
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = wait_op(&srv, alice, "alice/shop", op);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	snprintf(people_ref, sizeof(people_ref), "alice/import-%.8s",
	         strrchr(op, '/') ? strrchr(op, '/') + 1 : "x");
	t_resp_free(&r);
	r = t_http(&srv, "-G -H 'Authorization: Bearer %s' '%s/alice/shop/jobs'", alice, srv.base);
	CHECK_CONTAINS(r.body, "Import people.tsv into people");
	t_resp_free(&r);

	/* Refusals before the body is read: a bad table name, a bad op, no token, no database. */
	r = t_http(&srv,
	           "-H 'Authorization: Bearer %s' --data-binary @'%s' "
	           "'http://127.0.0.1:%d/import/alice/shop/bad.name'",
	           alice, tsv, srv.port);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'tableName' must be 1-64 of [A-Za-z0-9_-]");
	t_resp_free(&r);
	r = t_http(&srv,
	           "-H 'Authorization: Bearer %s' --data-binary @'%s' "
	           "'http://127.0.0.1:%d/import/alice/shop/t?importOp=Merge'",
	           alice, tsv, srv.port);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'importOp' must be Create, Overwrite");
	t_resp_free(&r);
	r = t_http(&srv, "--data-binary @'%s' 'http://127.0.0.1:%d/import/alice/shop/t'", tsv,
	           srv.port);
	CHECK(r.status == 401);
	t_resp_free(&r);
	r = t_http(&srv,
	           "-H 'Authorization: Bearer %s' --data-binary @'%s' "
	           "'http://127.0.0.1:%d/import/alice/nope/t'",
	           alice, tsv, srv.port);
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = t_http(&srv,
	           "-H 'Authorization: Bearer %s' -X POST "
	           "'http://127.0.0.1:%d/import/alice/shop/t'",
	           alice, srv.port);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "the request body (the file) is empty");
	t_resp_free(&r);
	free(tsv);
}

/* bit.io's Node example for an import from a URL, only the host changed. */
static void test_url_import_bitio_node_example(void)
{
	char js[4096], *path, *out = NULL;
	int rc;

	if (t_sh(NULL, "command -v node >/dev/null") != 0) {
		fprintf(stderr, "skipped: no node\n");
		return;
	}
	/* node-fetch, as the example requires it: Node's own fetch under that name. */
	CHECK(t_sh(NULL, "mkdir -p '%s/node/node_modules/node-fetch'", dir) == 0);
	free(t_write_in(dir, "node/node_modules/node-fetch/index.js",
	                "module.exports = (...args) => fetch(...args);\n"));
	snprintf(js, sizeof(js),
	         "// Upload data to a bit.io repo using Node\n"
	         "const fetch = require('node-fetch');\n"
	         "const source_url = 'http://127.0.0.1:%d/video-game-sales.csv'\n"
	         "const url = 'http://127.0.0.1:%d/api/v1beta/import/url/';\n"
	         "const options = {\n"
	         "  method: 'POST',\n"
	         "  headers: {\n"
	         "    Accept: 'application/json',\n"
	         "    'Content-Type': 'application/json',\n"
	         "    Authorization: 'Bearer %s'\n"
	         "  },\n"
	         "  body: JSON.stringify({\n"
	         "    create_table_if_not_exists: true,\n"
	         "    url: source_url,\n"
	         "    table_name: 'video_game_sales_url',\n"
	         "    repo_name: 'shop'})\n"
	         "};\n"
	         "\n"
	         "fetch(url, options)\n"
	         "  .then(res => res.json())\n"
	         "  .then(json => console.log(JSON.stringify(json)))\n"
	         "  .catch(err => console.error('error:' + err));\n",
	         web_port, srv.port, alice);
	path = t_write_in(dir, "node/upload_data.js", js);
	rc = t_sh(&out, "cd '%s/node' && node upload_data.js", dir);
	CHECK(rc == 0);
	CHECK_CONTAINS(out, "\"status\":\"Success\"");
	CHECK_CONTAINS(out, "\"table_name\":\"video_game_sales_url\"");
	if (out && strstr(out, "\"operation_name\":\"")) {
		const char *p = strstr(out, "\"operation_name\":\"") + 18;
		char op[300];
		t_resp r;
		snprintf(op, sizeof(op), "%.*s", (int)strcspn(p, "\""), p);
		r = wait_op(&srv, alice, "alice/shop", op);
		CHECK_STR(t_str(&r, "job_status"), "Completed");
		CHECK_CONTAINS(r.body, "\"rows_added\":3");
		t_resp_free(&r);
	}
	free(out);
	free(path);
}

static void test_url_import(void)
{
	char url[200];
	t_resp r;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/data.csv", web_port);
	r = t_http(&srv,
	           "-H 'Authorization: Bearer %s' -d '{\"url\":\"%s\",\"tableName\":\"sales\","
	           "\"importOp\":\"Create\",\"primaryKeys\":[\"Name\"]}' "
	           "'%s/alice/shop/import-url'",
	           alice, url, srv.base);
	CHECK(r.status == 200);
	{
		char op[300];
		snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
		t_resp_free(&r);
		r = wait_op(&srv, alice, "alice/shop", op);
	}
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	CHECK_CONTAINS(r.body, "\"rows_added\":3");
	t_resp_free(&r);

	/* Bad requests: no url, another user's database. */
	r = t_http(&srv,
	           "-H 'Authorization: Bearer %s' -d '{\"tableName\":\"x\"}' "
	           "'%s/alice/shop/import-url'",
	           alice, srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "'url' is required");
	t_resp_free(&r);
	r = t_http(&srv,
	           "-d '{\"url\":\"%s\",\"tableName\":\"x\",\"importOp\":\"Create\"}' "
	           "'%s/alice/shop/import-url'",
	           url, srv.base);
	CHECK(r.status == 401);
	t_resp_free(&r);
}

/* A refused URL: Failed (or 4xx) with `want` in its message, and nothing stored. */
static void refused(const t_server *s, const char *token, const char *d, const char *url,
                    int want_status, const char *want)
{
	int uploads = count_files(d, "uploads", ""), branches;
	char *out = NULL;
	t_resp r = import_url(s, token, url);

	t_sh(&out, "git -C '%s/repos/alice/shop.git' branch --list 'alice/import-*' | wc -l", d);
	branches = out ? atoi(out) : -1;
	free(out);
	CHECK(r.status == want_status);
	if (want_status == 200)
		CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_CONTAINS(t_str(&r, "message"), want);
	if (r.status != want_status || !strstr(nz(t_str(&r, "message")), want))
		fprintf(stderr, "  for %s: %d %s\n", url, r.status, r.body);
	t_resp_free(&r);
	CHECK(count_files(d, "uploads", "") == uploads);
	CHECK(count_files(d, "tmp", "upload-") == 0);
	out = NULL;
	t_sh(&out, "git -C '%s/repos/alice/shop.git' branch --list 'alice/import-*' | wc -l", d);
	CHECK(out && atoi(out) == branches);
	free(out);
}

static void test_url_refusals(void)
{
	char url[200];

	/* Schemes: refused at once. */
	refused(&srv, alice, dir, "file:///etc/passwd", 400,
	        "'url' must be an http:// or https:// URL (got 'file:///etc/passwd')");
	refused(&srv, alice, dir, "gopher://127.0.0.1:70/", 400,
	        "'url' must be an http:// or https:// URL");
	refused(&srv, alice, dir, "http://user:pw@127.0.0.1/x.csv", 400,
	        "may not hold a user name or password");
	/* From the loopback server (allowed here): redirects to metadata and to file:. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/to-metadata", web_port);
	refused(&srv, alice, dir, url, 200,
	        "refused to connect to 169.254.169.254 (a cloud metadata address)");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/to-file", web_port);
	refused(&srv, alice, dir, url, 200, "redirected to a URL that is not http or https");
	/* Over the size cap (--max-url-mb 1), and past the time cap (--url-timeout 2). */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big.csv", web_port);
	refused(&srv, alice, dir, url, 200, "is larger than the 1 MB limit of URL imports");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/trickle.csv", web_port);
	refused(&srv, alice, dir, url, 200, "took longer than the 2 s limit of URL imports");
	/* A server without --allow-private-urls: loopback by address and by name. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/data.csv", web_port);
	refused(&strict, alice2, dir2, url, 200,
	        "refused to connect to 127.0.0.1 (a loopback address) for 127.0.0.1:");
	snprintf(url, sizeof(url), "http://localhost:%d/data.csv", web_port);
	refused(&strict, alice2, dir2, url, 200, "(a loopback address) for localhost:");
	snprintf(url, sizeof(url), "http://10.1.2.3:%d/data.csv", web_port);
	refused(&strict, alice2, dir2, url, 200,
	        "refused to connect to 10.1.2.3 (a private address)");
}

static void test_sql_post(void)
{
	char *out = NULL;
	t_resp get, post;
	int rc;

	/* bit.io's curl, only the host (and the database's path) changed. */
	rc = t_sh(&out,
	          "curl -s --request POST \\\n"
	          "     --url http://127.0.0.1:%d/api/v1alpha1/alice/shop/%s \\\n"
	          "     --header \"Authorization: Bearer %s\" \\\n"
	          "     --header \"Accept: application/json\" \\\n"
	          "     --header \"Content-Type: application/json\" \\\n"
	          "     --data '\n"
	          "{\n"
	          "     \"query_string\": \"SELECT count(*) AS n FROM \\\"people\\\";\"\n"
	          "}\n"
	          "'",
	          srv.port, people_ref, alice);
	CHECK(rc == 0);
	CHECK_CONTAINS(out, "\"query_execution_status\":\"Success\"");
	free(out);

	/* Answered exactly as the GET. */
	get = t_http(&srv,
	             "-G --data-urlencode 'q=SELECT * FROM people ORDER BY id' "
	             "'%s/alice/shop/%s'",
	             srv.base, people_ref);
	post = t_http(&srv,
	              "-d '{\"query\":\"SELECT * FROM people ORDER BY id\"}' "
	              "'%s/alice/shop/%s'",
	              srv.base, people_ref);
	CHECK(get.status == 200 && post.status == 200);
	CHECK_STR(post.body, get.body);
	t_resp_free(&get);
	t_resp_free(&post);
	post = t_http(&srv,
	              "-d '{\"query_string\":\"SELECT count(*) AS n FROM people\"}' "
	              "'%s/alice/shop/%s'",
	              srv.base, people_ref);
	CHECK(post.status == 200);
	CHECK_CONTAINS(post.body, "\"rows\":[{\"n\":\"2\"}]");
	t_resp_free(&post);
	/* Without a ref: the default branch, where the table is not yet. */
	post = t_http(&srv,
	              "-d '{\"query_string\":\"SELECT count(*) AS n FROM people\"}' "
	              "'%s/alice/shop'",
	              srv.base);
	CHECK(post.status == 400);
	CHECK_CONTAINS(post.body, "no such table: people");
	CHECK_CONTAINS(post.body, "\"commit_ref\":\"main\"");
	t_resp_free(&post);
	/* Errors as the GET's: bad SQL 400, no statement 400, another ref 404. */
	post = t_http(&srv, "-d '{\"query\":\"SELECT nope FROM people\"}' '%s/alice/shop/%s'",
	              srv.base, people_ref);
	CHECK(post.status == 400);
	CHECK_CONTAINS(post.body, "no such column: nope");
	t_resp_free(&post);
	post = t_http(&srv, "-d '{\"sql\":\"SELECT 1\"}' '%s/alice/shop/%s'", srv.base, people_ref);
	CHECK(post.status == 400);
	CHECK_CONTAINS(t_str(&post, "message"), "{\"query_string\": \"SELECT ...\"}");
	t_resp_free(&post);
	post = t_http(&srv, "-d '{\"query\":\"SELECT 1\"}' '%s/alice/shop/nobranch'", srv.base);
	CHECK(post.status == 404);
	t_resp_free(&post);
}

int main(void)
{
	const char *const flags[] = {
		"--allow-private-urls", "--max-url-mb", "1", "--url-timeout", "2", NULL
	};
	t_resp r;

	signal(SIGPIPE, SIG_IGN);
	dir = t_mkdtemp();
	dir2 = t_mkdtemp();
	web_start();
	if (t_server_start(&srv, dir, 0, flags) < 0 || t_server_start(&strict, dir2, 0, NULL) < 0)
		return 1;
	alice = t_user_add(&srv, "alice");
	alice2 = t_user_add(&strict, "alice");
	if (alice == NULL || alice2 == NULL)
		return 1;
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&strict,
	           AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\"}' '%s/database'",
	           alice2, strict.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	RUN(test_raw_upload_bitio_example);
	RUN(test_raw_upload_params);
	RUN(test_url_import_bitio_node_example);
	RUN(test_url_import);
	RUN(test_url_refusals);
	RUN(test_sql_post);
	t_server_stop(&srv, SIGTERM);
	t_server_stop(&strict, SIGTERM);
	web_stop();
	free(alice);
	free(alice2);
	t_rmdir(dir);
	t_rmdir(dir2);
	TH_TEST_END();
}
