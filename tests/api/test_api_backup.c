/* test_api_backup.c: `tablehub backup` taken while a real `tablehub serve` imports a large file and
 * merges a pull request (and repacks after every write: --repack-loose-objects 1), then `tablehub
 * restore` into a new data directory served by a second server. The restored repositories pass
 * `git fsck --strict`; the operations the backup caught unfinished run again on the second server
 * and end as they did on the first; then every table of every branch (as CSV) and every pull
 * request of both servers are the same. Restore refuses a directory that is not empty and a
 * directory that is not a backup; backup refuses an existing destination. */
#include "../harness.h"
#include "../dump.h"
#include "server.h"

static t_server s1, s2;
static const char *one_worker[] = { "--workers", "1", NULL };
static char *dir1, *dir2, *out, *alice;

#define PARAMS(table)                                                                              \
	"{\"tableName\":\"" table "\",\"importOp\":\"Create\",\"primaryKeys\":[\"id\"]}"

static char *write_big(const char *dir, long n)
{
	char *path = malloc(strlen(dir) + 16);
	FILE *f;

	sprintf(path, "%s/big.csv", dir);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fprintf(f, "id,name,score\n");
	for (long i = 0; i < n; i++) {
		long k = (i * 7919) % n;
		fprintf(f, "%ld,name %ld with some text to make the row longer,%ld.%02ld\n", k, k,
		        k % 1000, k % 100);
	}
	if (fclose(f) != 0)
		abort();
	return path;
}

static char *upload(t_server *s, const char *file, const char *params)
{
	t_resp r = t_upload(s, alice, "alice/shop", file, params);
	char *name = t_str(&r, "operation_name") ? strdup(t_str(&r, "operation_name")) : NULL;

	CHECK(r.status == 200 && name != NULL);
	t_resp_free(&r);
	return name;
}

/* The poll of an upload (kind "upload") or a merge of pull `pull` on server s. */
static t_resp poll_once(t_server *s, const char *name, int pull)
{
	if (pull == 0)
		return t_http(
		        s, "-G " AUTH "--data-urlencode 'operationName=%s' '%s/alice/shop/upload'",
		        alice, name, s->base);
	return t_http(
	        s, "-G " AUTH "--data-urlencode 'operationName=%s' '%s/alice/shop/pulls/%d/merge'",
	        alice, name, s->base, pull);
}

/* Wait for the operation to end; returns its job_status (static). */
static const char *wait_end(t_server *s, const char *name, int pull)
{
	static char st[32];

	for (int i = 0; i < 1200; i++) {
		t_resp r = poll_once(s, name, pull);
		snprintf(st, sizeof(st), "%s", nz(t_str(&r, "job_status")));
		if (strcmp(st, "In Progress") != 0 && strcmp(st, "Pending") != 0) {
			if (strcmp(st, "Completed") != 0)
				fprintf(stderr, "%s ended %s: %s\n", name, st, r.body);
			t_resp_free(&r);
			return st;
		}
		t_resp_free(&r);
		t_sleep_ms(50);
	}
	return "timeout";
}

static int running(t_server *s, const char *name, int pull)
{
	t_resp r = poll_once(s, name, pull);
	const char *st = nz(t_str(&r, "job_status"));
	int yes = strcmp(st, "Pending") == 0 || strcmp(st, "In Progress") == 0;

	t_resp_free(&r);
	return yes;
}

static char *merge(t_server *s, int pull)
{
	t_resp r = t_http(s, AUTH "-X POST '%s/alice/shop/pulls/%d/merge'", alice, s->base, pull);
	char *name = t_str(&r, "operation_name") ? strdup(t_str(&r, "operation_name")) : NULL;

	CHECK(r.status == 200 && name != NULL);
	t_resp_free(&r);
	return name;
}

/* The pull requests of alice/shop as text, without the times a retried operation changes. */
static char *pulls(t_server *s)
{
	t_resp r = t_http(s, AUTH "'%s/alice/shop/pulls'", alice, s->base);
	cJSON *it;
	char *text;

	CHECK(r.status == 200);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r.json, "pulls"))
	{
		cJSON_DeleteItemFromObject(it, "created_at");
	}
	text = cJSON_PrintUnformatted(cJSON_GetObjectItem(r.json, "pulls"));
	t_resp_free(&r);
	return text;
}

static void test_backup_while_busy(void)
{
	char *small = t_write_in(dir1, "people.csv", "id,name\n1,ann\n2,bob\n");
	char *items = t_write_in(dir1, "items.csv", "id,item\n1,pear\n2,apple\n");
	char *big = write_big(dir1, 400000), *a, *b, *c, *m, *cmd_out = NULL;
	char *p1, *p2, *d1, *d2, repo1[600], repo2[600];
	int overlapped;

	/* Before: pull 1 merged, pull 2 open. */
	a = upload(&s1, small, PARAMS("people"));
	CHECK_STR(wait_end(&s1, a, 0), "Completed");
	m = merge(&s1, 1);
	CHECK_STR(wait_end(&s1, m, 1), "Completed");
	free(m);
	b = upload(&s1, items, PARAMS("items"));
	CHECK_STR(wait_end(&s1, b, 0), "Completed");

	/* While a large import runs and the merge of pull 2 waits for it, the backup. */
	c = upload(&s1, big, PARAMS("scores"));
	m = merge(&s1, 2);
	CHECK(running(&s1, c, 0));
	CHECK(t_sh(&cmd_out, "'%s' backup --data '%s' '%s' 2>&1", TH_BIN, dir1, out) == 0);
	CHECK_CONTAINS(cmd_out, "1 database(s)");
	free(cmd_out);
	/* Whether they were still running when it ended depends on the machine's speed: said, not
	 * checked. They were when it began. */
	overlapped = running(&s1, c, 0) || running(&s1, m, 2);
	printf("backup ended while the import or merge ran: %s\n", overlapped ? "yes" : "no");
	CHECK_STR(wait_end(&s1, c, 0), "Completed");
	CHECK_STR(wait_end(&s1, m, 2), "Completed");

	/* Refusals. */
	CHECK(t_sh(&cmd_out, "'%s' backup --data '%s' '%s' 2>&1", TH_BIN, dir1, out) == 1);
	CHECK_CONTAINS(cmd_out, "exists");
	free(cmd_out);
	CHECK(t_sh(&cmd_out, "'%s' restore '%s' --data '%s/x' 2>&1", TH_BIN, dir1, dir2) == 1);
	CHECK_CONTAINS(cmd_out, "is not a tablehub backup");
	free(cmd_out);

	/* Restore, check the repository as git sees it, then serve it. */
	CHECK(t_sh(&cmd_out, "'%s' restore '%s' --data '%s' 2>&1", TH_BIN, out, dir2) == 0);
	free(cmd_out);
	snprintf(repo1, sizeof(repo1), "%s/repos/alice/shop.git", dir1);
	snprintf(repo2, sizeof(repo2), "%s/repos/alice/shop.git", dir2);
	CHECK(t_sh(&cmd_out, "git -C '%s' fsck --strict --no-dangling 2>&1", repo2) == 0);
	CHECK_STR(cmd_out, "");
	free(cmd_out);
	CHECK(t_sh(&cmd_out, "'%s' restore '%s' --data '%s' 2>&1", TH_BIN, out, dir2) == 1);
	CHECK_CONTAINS(cmd_out, "is not empty");
	free(cmd_out);
	/* One worker, as on the first server: the import and the merge run again in the order they
	 * were queued. (With two, the merge could take the writer lock before the import, which
	 * would then branch from the merged main: a different, also valid, end.) */
	if (t_server_start(&s2, dir2, 0, one_worker) < 0) {
		CHECK(0);
		goto cleanup;
	}
	/* What the backup caught unfinished runs again there, to the same end. */
	CHECK_STR(wait_end(&s2, c, 0), "Completed");
	CHECK_STR(wait_end(&s2, m, 2), "Completed");
	CHECK_STR(wait_end(&s2, a, 0), "Completed");

	p1 = pulls(&s1);
	p2 = pulls(&s2);
	CHECK(p1 && p2 && strcmp(p1, p2) == 0);
	CHECK_CONTAINS(p2, "\"pull_id\":\"3\"");
	if (p1 && p2 && strcmp(p1, p2) != 0)
		fprintf(stderr, "pulls differ:\n%s\n%s\n", p1, p2);
	free(p1);
	free(p2);
	d1 = t_dump_repo_ex(repo1, 1);
	d2 = t_dump_repo_ex(repo2, 1);
	CHECK(d1 && d2 && strcmp(d1, d2) == 0);
	CHECK(d2 && strstr(d2, "== scores\n") && strstr(d2, "== items\n"));
	CHECK(d2 && strlen(d2) > 400000 * 50); /* every row of the large table, on two branches */
	free(d1);
	free(d2);
cleanup:
	free(a);
	free(b);
	free(c);
	free(m);
	free(small);
	free(items);
	free(big);
}

int main(void)
{
	/* One worker: the large import runs before the merge queued after it, whichever thread
	 * would have taken the writer lock first. */
	const char *args[] = { "--workers", "1", "--repack-loose-objects", "1", NULL };
	th_error err;
	t_resp r;

	if (th_repo_global_init(&err) < 0)
		return 1;
	dir1 = t_mkdtemp();
	dir2 = t_mkdtemp();
	rmdir(dir2); /* restore makes it */
	out = malloc(strlen(dir1) + 16);
	sprintf(out, "%s.backup", dir1);
	if (t_server_start(&s1, dir1, 0, args) < 0)
		return 1;
	if ((alice = t_user_add(&s1, "alice")) == NULL) {
		t_server_stop(&s1, SIGKILL);
		return 1;
	}
	r = t_http(&s1, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\"}' '%s/database'",
	           alice, s1.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	RUN(test_backup_while_busy);
	CHECK(t_server_stop(&s1, SIGTERM) == 0);
	if (s2.pid > 0)
		CHECK(t_server_stop(&s2, SIGTERM) == 0);
	th_repo_global_shutdown();
	free(alice);
	t_sh(NULL, "rm -rf '%s'", out);
	free(out);
	t_rmdir(dir1);
	t_rmdir(dir2);
	TH_TEST_END();
}
