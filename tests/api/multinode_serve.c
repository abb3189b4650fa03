/* multinode_serve.c: the flags of `tablehub serve` for running beside other servers, on the
 * SQLite store (one server per data dir): --node-id names the server (in its log), --cache moves
 * the query snapshots out of the data dir and no reply shows the cache's path, bad values are
 * refused with a message, and the data dir's LOCK still keeps a second server out.
 */
#include <dirent.h>

#include "../harness.h"
#include "server.h"

static t_server srv;
static char *dir, *cache, *alice;

#define PARAMS                                                                                     \
	"{\"tableName\":\"t\",\"fileName\":\"t.csv\",\"branchName\":\"main\","                     \
	"\"fileType\":\"Csv\",\"importOp\":\"Create\",\"primaryKeys\":[\"id\"]}"

/* Files named *.sqlite under `root`/alice/shop, or -1 when the directory is missing. */
static int snapshots(const char *root)
{
	char path[1200];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/alice/shop", root);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		n += len > 7 && strcmp(e->d_name + len - 7, ".sqlite") == 0;
	}
	closedir(d);
	return n;
}

static void test_cache_dir(void)
{
	char *csv = t_write_in(dir, "t.csv", "id,name\n1,a\n2,b\n3,c\n"), datacache[700];
	char op[256], branch[256];
	t_resp r;

	r = t_upload(&srv, alice, "alice/shop", csv, PARAMS);
	CHECK(r.status == 200);
	snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", op, 30);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	snprintf(branch, sizeof(branch), "%s",
	         nz(cJSON_GetStringValue(
	                 cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "result"), "branch"))));
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/%s?q=SELECT+count(*)+AS+n+FROM+t'", alice, srv.base,
	           branch);
	if (r.status != 200)
		fprintf(stderr, "query: %d %s\n", r.status, r.body);
	CHECK(r.status == 200);
	CHECK(strstr(r.body, "\"n\":\"3\"") != NULL || strstr(r.body, "\"n\":3") != NULL);
	t_resp_free(&r);
	/* The snapshot is in --cache, none under the data dir's own cache. */
	snprintf(datacache, sizeof(datacache), "%s/cache", dir);
	CHECK(snapshots(cache) == 1);
	CHECK(snapshots(datacache) <= 0);
	/* A failing query's message names no path of the cache. */
	r = t_http(&srv, AUTH "'%s/alice/shop/%s?q=SELECT+*+FROM+nosuch'", alice, srv.base, branch);
	CHECK(r.status == 400);
	CHECK(strstr(r.body, cache) == NULL);
	t_resp_free(&r);
	free(csv);
}

static void test_node_id_logged(void)
{
	CHECK(t_sh(NULL, "grep -q 'node node-a7)' '%s/serve.log'", dir) == 0);
}

/* Bad values are refused before anything starts; a second server on the same data dir (SQLite)
 * is kept out by the LOCK. */
static void test_refusals(void)
{
	char *out = NULL;

	CHECK(t_sh(&out, "'%s' serve --data '%s' --node-id 'a/b' 2>&1; echo rc=$?", TH_BIN, dir) ==
	      0);
	CHECK_CONTAINS(out, "--node-id wants 1-64 of [A-Za-z0-9_-]");
	CHECK_CONTAINS(out, "rc=2");
	free(out);
	out = NULL;
	CHECK(t_sh(&out, "'%s' serve --data '%s' --cache 2>&1; echo rc=$?", TH_BIN, dir) == 0);
	CHECK_CONTAINS(out, "--cache needs a directory");
	CHECK_CONTAINS(out, "rc=2");
	free(out);
	out = NULL;
	CHECK(t_sh(&out, "'%s' serve --data '%s' --listen 127.0.0.1:%d 2>&1; echo rc=$?", TH_BIN,
	           dir, t_free_port()) == 0);
	CHECK_CONTAINS(out, "is in use by another tablehub process");
	CHECK_CONTAINS(out, "rc=1");
	free(out);
}

int main(void)
{
	const char *extra[] = { "--node-id", "node-a7", "--cache", NULL, NULL };

	dir = t_mkdtemp();
	cache = t_mkdtemp();
	extra[3] = cache;
	if ((alice = t_server_start_shop(&srv, dir, extra)) == NULL)
		return 1;
	RUN(test_cache_dir);
	RUN(test_node_id_logged);
	RUN(test_refusals);
	t_server_stop(&srv, SIGTERM);
	free(alice);
	t_rmdir(dir);
	t_rmdir(cache);
	TH_TEST_END();
}
