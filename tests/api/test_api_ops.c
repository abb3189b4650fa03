/* test_api_ops.c: stopping operations through a real `tablehub serve` with one worker:
 *   - a poll shows an operation's end as soon as it is stored, though it saw it running;
 *   - POST .../operations/{id}/cancel by the operation's creator or an admin of the database
 *     (403 for a writer who is neither, 401 signed out, 404 for an unknown id or another
 *     database's, 400 for a malformed one, 409 once it ended);
 *   - a Pending operation ends at once (200, Failed "cancelled by ..."); a running import is
 *     asked to stop (202) and ends Failed having committed nothing: no branch, no pull request;
 *   - the serve flags of the time caps: --max-op-seconds-import 1 fails a long import with
 *     "took longer than 1 s", leaving nothing behind; an unknown kind's flag is refused. */
#include "../harness.h"
#include "accounts.h"
#include "server.h"

static t_server srv;
static char *dir, *alice, *bob, *carol, *big;

#define PARAMS(table)                                                                              \
	"{\"tableName\":\"" table "\",\"importOp\":\"Create\",\"primaryKeys\":[\"id\"]}"

/* A CSV of n rows (id,name,score), keys scrambled. Returns its path (malloc'd). */
static char *write_big(long n)
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

/* Upload `file` as `token`; returns the operation's name (malloc'd) or NULL. */
static char *upload(const char *token, const char *db, const char *file, const char *params)
{
	t_resp r = t_upload(&srv, token, db, file, params);
	char *name = t_str(&r, "operation_name") ? strdup(t_str(&r, "operation_name")) : NULL;

	CHECK(r.status == 200 && name != NULL);
	t_resp_free(&r);
	return name;
}

/* The uuid at the end of an operation name. */
static const char *uuid_of(const char *name)
{
	const char *s = name ? strrchr(name, '/') : NULL;

	return s ? s + 1 : "";
}

static t_resp poll_once(const char *db, const char *name)
{
	return t_http(&srv, "-G " AUTH "--data-urlencode 'operationName=%s' '%s/%s/upload'", alice,
	              name, srv.base, db);
}

/* Wait until the poll shows `status`; returns 0, or -1 after 60 s. */
static int wait_status(const char *db, const char *name, const char *status)
{
	for (int i = 0; i < 1200; i++) {
		t_resp r = poll_once(db, name);
		int done = strcmp(nz(t_str(&r, "job_status")), status) == 0;
		t_resp_free(&r);
		if (done)
			return 0;
		t_sleep_ms(50);
	}
	fprintf(stderr, "%s never reached %s\n", name, status);
	return -1;
}

static t_resp cancel(const char *token, const char *db, const char *id)
{
	if (token == NULL)
		return t_http(&srv, "-X POST '%s/%s/operations/%s/cancel'", srv.base, db, id);
	return t_http(&srv, AUTH "-X POST '%s/%s/operations/%s/cancel'", token, srv.base, db, id);
}

/* Nothing an import left: only main on alice/shop, and no pull request. */
static void nothing_left(void)
{
	t_resp r = t_http(&srv, AUTH "'%s/alice/shop/branches'", alice, srv.base);
	const cJSON *b = cJSON_GetObjectItem(r.json, "branches");

	CHECK(r.status == 200 && cJSON_GetArraySize(b) == 1);
	CHECK(strstr(r.body, "import-") == NULL);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/alice/shop/pulls'", alice, srv.base);
	CHECK(r.status == 200);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "pulls")) == 0);
	t_resp_free(&r);
}

static void test_cancel(void)
{
	char *small = t_write_in(dir, "small.csv", "id,name\n1,ann\n");
	char *a, *b, *c;
	t_resp r;

	/* a (alice's, big) runs on the one worker; b (bob's) waits behind it. */
	a = upload(alice, "alice/shop", big, PARAMS("scores"));
	CHECK(wait_status("alice/shop", a, "In Progress") == 0);
	b = upload(bob, "alice/shop", small, PARAMS("people"));
	r = poll_once("alice/shop", b);
	CHECK_STR(t_str(&r, "job_status"), "Pending");
	t_resp_free(&r);

	/* Who may not. */
	r = cancel(NULL, "alice/shop", uuid_of(b));
	CHECK(r.status == 401);
	t_resp_free(&r);
	r = cancel(carol, "alice/shop", uuid_of(b)); /* reads the public database, no more */
	CHECK(r.status == 403);
	t_resp_free(&r);
	r = cancel(bob, "alice/shop", uuid_of(a)); /* a writer, but neither creator nor admin */
	CHECK(r.status == 403);
	CHECK_STR(t_str(&r, "code"), "EFORBIDDEN");
	CHECK_CONTAINS(t_str(&r, "message"), "only the operation's creator (alice) or an admin");
	t_resp_free(&r);
	r = cancel(alice, "alice/shop", "x");
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = cancel(alice, "alice/shop", "7d8f0a3c-1b2e-4c5d-8e9f-0a1b2c3d4e5f");
	CHECK(r.status == 404);
	t_resp_free(&r);

	/* The admin cancels bob's Pending one: it ends at once. */
	r = cancel(alice, "alice/shop", uuid_of(b));
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "status"), "Success");
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_STR(t_str(&r, "operation_name"), b);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "cancel_requested")));
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", b, 5); /* (a poll's reply is cached 0.1 s) */
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_STR(t_str(&r, "message"), "cancelled by alice");
	t_resp_free(&r);

	/* The creator cancels the running one: asked to stop, it ends Failed, nothing made. */
	r = cancel(alice, "alice/shop", uuid_of(a));
	CHECK(r.status == 202);
	CHECK_STR(t_str(&r, "job_status"), "In Progress");
	CHECK_CONTAINS(t_str(&r, "message"), "cancel requested");
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", a, 60);
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_STR(t_str(&r, "message"), "cancelled by alice");
	CHECK(t_str(&r, "pull_id") == NULL);
	t_resp_free(&r);
	nothing_left();
	r = cancel(alice, "alice/shop", uuid_of(a)); /* it has ended */
	CHECK(r.status == 409);
	CHECK_CONTAINS(t_str(&r, "message"), "has already ended (Failed)");
	t_resp_free(&r);

	/* The creator, a writer, cancels their own. */
	a = (free(a), upload(alice, "alice/shop", big, PARAMS("scores")));
	CHECK(wait_status("alice/shop", a, "In Progress") == 0);
	c = upload(bob, "alice/shop", small, PARAMS("people"));
	r = cancel(bob, "alice/shop", uuid_of(c));
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", c, 5);
	CHECK_STR(t_str(&r, "message"), "cancelled by bob");
	t_resp_free(&r);
	r = cancel(alice, "alice/shop", uuid_of(a));
	CHECK(r.status == 202);
	t_resp_free(&r);
	r = t_poll(&srv, alice, "alice/shop", a, 60);
	CHECK_STR(t_str(&r, "message"), "cancelled by alice");
	t_resp_free(&r);
	nothing_left();

	/* The jobs list shows them failed, with the reason. */
	r = t_http(&srv, AUTH "'%s/alice/shop/jobs'", alice, srv.base);
	CHECK_CONTAINS(r.body, "\"error\":\"cancelled by bob\"");
	CHECK_CONTAINS(r.body, "\"error\":\"cancelled by alice\"");
	t_resp_free(&r);

	/* Another database's operation is not found through this one; an ended one is 409. */
	free(b);
	b = upload(alice, "alice/other", small, PARAMS("people"));
	r = t_poll(&srv, alice, "alice/other", b, 60);
	CHECK_STR(t_str(&r, "job_status"), "Completed");
	t_resp_free(&r);
	r = cancel(alice, "alice/shop", uuid_of(b));
	CHECK(r.status == 404);
	t_resp_free(&r);
	r = cancel(alice, "alice/other", uuid_of(b));
	CHECK(r.status == 409);
	CHECK_CONTAINS(t_str(&r, "message"), "(Completed)");
	t_resp_free(&r);
	free(a);
	free(b);
	free(c);
	free(small);
}

/* A poll that saw an operation running does not hide its end: the first poll after the worker
 * stored the outcome shows it (a running operation's reply is cached only until one ends). */
static void test_poll_fresh(void)
{
	char *a = upload(alice, "alice/shop", big, PARAMS("scores"));
	t_resp r;
	int ended = 0;

	CHECK(wait_status("alice/shop", a, "In Progress") == 0);
	r = cancel(alice, "alice/shop", uuid_of(a));
	CHECK(r.status == 202);
	t_resp_free(&r);
	/* Poll (which caches the running reply) until the jobs list, never cached, shows it ended;
	 * then the very next poll must show it too. */
	for (int i = 0; i < 1200 && !ended; i++) {
		r = poll_once("alice/shop", a);
		t_resp_free(&r);
		r = t_http(&srv, AUTH "'%s/alice/shop/jobs?state=failed'", alice, srv.base);
		ended = r.status == 200 && strstr(r.body, uuid_of(a)) != NULL;
		t_resp_free(&r);
	}
	CHECK(ended);
	r = poll_once("alice/shop", a);
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_STR(t_str(&r, "message"), "cancelled by alice");
	t_resp_free(&r);
	nothing_left();
	free(a);
}

/* The time cap, from serve's flags. */
static void test_time_cap(void)
{
	const char *caps[] = {
		"--workers", "1", "--max-upload-mb", "200", "--max-op-seconds-import", "1", NULL
	};
	char *out = NULL, *a;
	t_resp r;

	/* Flags it refuses. */
	CHECK(t_sh(&out, "'%s' serve --data '%s' --max-op-seconds-nosuch 5 2>&1", TH_BIN, dir) ==
	      2);
	CHECK_CONTAINS(out, "--max-op-seconds-nosuch: no such operation kind");
	free(out);
	CHECK(t_sh(&out, "'%s' serve --data '%s' --max-op-seconds -1 2>&1", TH_BIN, dir) == 2);
	CHECK_CONTAINS(out, "--max-op-seconds must be a number");
	free(out);

	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	if (t_server_start(&srv, dir, srv.port, caps) < 0) {
		CHECK(0);
		return;
	}
	a = upload(alice, "alice/shop", big, PARAMS("scores"));
	r = t_poll(&srv, alice, "alice/shop", a, 60);
	CHECK_STR(t_str(&r, "job_status"), "Failed");
	CHECK_STR(t_str(&r, "message"), "took longer than 1 s");
	t_resp_free(&r);
	nothing_left();
	free(a);
}

int main(void)
{
	const char *args[] = { "--workers", "1", "--max-upload-mb", "200", NULL };
	t_resp r;

	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, args) < 0)
		return 1;
	if ((alice = t_user_add(&srv, "alice")) == NULL ||
	    (bob = t_user_add(&srv, "bob")) == NULL ||
	    (carol = t_user_add(&srv, "carol")) == NULL) {
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"other\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	CHECK(t_set_role(&srv, alice, "alice/shop", "bob", "write") == 200);
	big = write_big(1500000); /* ~93 MB: seconds of import, even in a release build */
	RUN(test_cancel);
	RUN(test_poll_fresh);
	RUN(test_time_cap);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	free(bob);
	free(carol);
	free(big);
	t_rmdir(dir);
	TH_TEST_END();
}
