/* test_api_restart.c: a server killed with SIGKILL in the middle of its work loses nothing.
 *
 * An import of a generated CSV (500,000 rows, ~45 MB) is polled until it is In Progress, then the
 * server is killed -9 with a second upload still Pending behind it. A new server on the same data
 * dir picks both up (their leases are void once their process is gone) and both end Completed with
 * a pull request and every row on their branches; nothing stays Pending or In Progress. An upload
 * cut off mid-body by a kill leaves no temp file behind after the restart. */
#include <dirent.h>

#include "../harness.h"
#include "server.h"

#define ROWS 500000

static t_server srv;
static char *dir, *alice;

#define PARAMS(table)                                                                              \
	"{\"tableName\":\"" table "\",\"fileName\":\"big.csv\",\"branchName\":\"main\","           \
	"\"fileType\":\"Csv\",\"importOp\":\"Create\",\"primaryKeys\":[\"id\"]}"

static const char *const workers[] = { "--workers", "1", NULL };

static int count_prefix(const char *sub, const char *prefix)
{
	char path[700];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

static t_resp poll_once(const char *op)
{
	return t_http(&srv, "-G " AUTH "--data-urlencode 'operationName=%s' '%s/alice/shop/upload'",
	              alice, op, srv.base);
}

/* Rows of table `table` at `ref`, counted from `tablehub export` (header excluded), or -1. */
static long export_rows(const char *ref, const char *table)
{
	char *out = NULL;
	long n = -1;

	if (t_sh(&out, "'%s' export --data '%s' alice/shop '%s' '%s' | wc -l", TH_BIN, dir, ref,
	         table) == 0)
		n = atol(out) - 1;
	free(out);
	return n;
}

static void test_kill_mid_import(void)
{
	char big[700], op1[256] = "", op2[256] = "", *branch;
	int seen_running = 0;
	t_resp r;

	snprintf(big, sizeof(big), "%s/big.csv", dir);
	CHECK(t_sh(NULL,
	           "awk 'BEGIN { print \"id,name,city,amount,flag,day,note\"; "
	           "for (i = 1; i <= %d; i++) printf \"%%d,name%%d,city%%d,%%d.%%02d,%%s,"
	           "2024-01-%%02d,note text number %%d lorem ipsum\\n\", (i * 7919) %% 1000003, i, "
	           "i %% 500, i %% 10000, i %% 100, (i %% 2 ? \"true\" : \"false\"), i %% 28 + 1, "
	           "i "
	           "}' > '%s'",
	           ROWS, big) == 0);

	r = t_upload(&srv, alice, "alice/shop", big, PARAMS("big"));
	CHECK(r.status == 200);
	snprintf(op1, sizeof(op1), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);
	/* A second import queues behind the first (one worker). */
	r = t_upload(&srv, alice, "alice/shop", big, PARAMS("big2"));
	CHECK(r.status == 200);
	snprintf(op2, sizeof(op2), "%s", nz(t_str(&r, "operation_name")));
	t_resp_free(&r);

	for (int i = 0; i < 3000 && !seen_running; i++) {
		r = poll_once(op1);
		if (strcmp(nz(t_str(&r, "job_status")), "In Progress") == 0) {
			seen_running = 1;
		} else if (strcmp(nz(t_str(&r, "job_status")), "Pending") != 0) {
			fprintf(stderr, "import ended before it could be killed: %s\n", r.body);
			t_resp_free(&r);
			break;
		}
		t_resp_free(&r);
		if (!seen_running)
			t_sleep_ms(5);
	}
	CHECK(seen_running);
	CHECK(t_server_stop(&srv, SIGKILL) == 128 + SIGKILL);

	/* Restart on the same data dir and port: both operations finish. */
	CHECK(t_server_start(&srv, dir, srv.port, workers) == 0);
	r = t_poll(&srv, alice, "alice/shop", op1, 240);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	CHECK(t_str(&r, "pull_id") != NULL);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "result"),
	                                               "rows_added")) == ROWS);
	branch = strdup(nz(cJSON_GetStringValue(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "result"), "branch"))));
	t_resp_free(&r);
	CHECK(export_rows(branch, "big") == ROWS);
	free(branch);

	r = t_poll(&srv, alice, "alice/shop", op2, 240);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	CHECK(t_str(&r, "pull_id") != NULL);
	t_resp_free(&r);

	/* Nothing is left Pending or Running. */
	r = t_http(&srv, AUTH "'%s/alice/shop/jobs'", alice, srv.base);
	CHECK(r.status == 200);
	CHECK(strstr(r.body, "\"status\":\"Running\"") == NULL);
	CHECK(strstr(r.body, "\"status\":\"Pending\"") == NULL);
	CHECK_CONTAINS(r.body, "\"status\":\"Succeeded\"");
	t_resp_free(&r);
	/* Both pull requests are open. */
	r = t_http(&srv, AUTH "'%s/alice/shop/pulls?filterByState=open'", alice, srv.base);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "pulls")) == 2);
	t_resp_free(&r);
}

static void test_kill_mid_upload(void)
{
	char big[700], cmd[2048];
	pid_t curl;

	/* A slow upload (1 MB/s) is cut off by SIGKILL of the server. */
	snprintf(big, sizeof(big), "%s/big.csv", dir);
	snprintf(cmd, sizeof(cmd),
	         "curl -s -o /dev/null --limit-rate 1M " AUTH
	         "--form-string 'params=%s' -F 'file=@%s' '%s/alice/shop/upload'",
	         alice, PARAMS("cut"), big, srv.base);
	if ((curl = fork()) == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && count_prefix("tmp", "upload-") < 1; i++)
		t_sleep_ms(50);
	t_sleep_ms(300);
	CHECK(count_prefix("tmp", "upload-") == 1);
	CHECK(t_server_stop(&srv, SIGKILL) == 128 + SIGKILL);
	waitpid(curl, NULL, 0);
	CHECK(count_prefix("tmp", "upload-") == 1); /* the dead server's leftover */
	CHECK(t_server_start(&srv, dir, srv.port, workers) == 0);
	CHECK(count_prefix("tmp", "upload-") == 0); /* swept at start */
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
}

int main(void)
{

	dir = t_mkdtemp();
	if ((alice = t_server_start_shop(&srv, dir, workers)) == NULL)
		return 1;
	RUN(test_kill_mid_import);
	RUN(test_kill_mid_upload);
	if (srv.pid > 0)
		t_server_stop(&srv, SIGKILL);
	free(alice);
	t_rmdir(dir);
	TH_TEST_END();
}
