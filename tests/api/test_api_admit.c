/* test_api_admit.c: admission control on a real `tablehub serve` with small limits (5 requests a
 * second per token and per address, so bursts of 50; 3 unfinished operations per user; one
 * worker). A token past its burst gets 429 with Retry-After while other tokens, and the same token
 * from another address, go on; anonymous requests and requests with a wrong token are held per
 * address (clients play different loopback addresses); a user with 3 operations waiting has the
 * fourth upload refused with 429 until they finish. */
#include "../harness.h"
#include "server.h"
#include "raw.h"

static t_server srv;
static char *dir, *alice, *bob;

/* One request from source address src; returns the status, the reply in out. */
static int one(const char *src, const char *req, char *out, size_t cap)
{
	int fd = t_raw_connect(srv.port, src), closed;

	out[0] = '\0';
	if (fd < 0)
		return -1;
	(void)t_raw_send(fd, req, strlen(req));
	t_raw_read(fd, out, cap, 3000, &closed);
	close(fd);
	return t_raw_status(out);
}

/* Send `req` n times from src; count the 429s (the first one's reply kept in first_429) and the
 * replies with status `ok`. */
static void burst(const char *src, const char *req, int n, int ok, int *n_ok, int *n_429,
                  char *first_429, size_t cap)
{
	char out[4096];

	*n_ok = *n_429 = 0;
	first_429[0] = '\0';
	for (int i = 0; i < n; i++) {
		int st = one(src, req, out, sizeof(out));
		if (st == 429 && (*n_429)++ == 0)
			snprintf(first_429, cap, "%s", out);
		*n_ok += st == ok;
	}
}

static void check_429(const char *reply, const char *msg)
{
	cJSON *body = cJSON_Parse(t_raw_body(reply));
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(body, "code");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "message");
	const char *ra = strstr(reply, "Retry-After: ");

	CHECK(t_raw_status(reply) == 429);
	CHECK(ra != NULL && atoi(ra + 13) >= 1);
	CHECK(cJSON_IsString(code) && strcmp(code->valuestring, "ETOOMANY") == 0);
	CHECK_CONTAINS(cJSON_IsString(m) ? m->valuestring : NULL, msg);
	cJSON_Delete(body);
}

static void test_rate_per_token(void)
{
	char req[512], first[4096], out[4096];
	int ok, limited;

	snprintf(req, sizeof(req),
	         "GET /api/v1alpha1/user HTTP/1.1\r\nHost: x\r\nauthorization: token %s\r\n"
	         "Connection: close\r\n\r\n",
	         alice);
	burst("127.0.0.1", req, 60, 200, &ok, &limited, first, sizeof(first));
	printf("alice's token: %d answered, %d refused\n", ok, limited);
	/* A burst of 50 (one used to create the database), refilled by 5 a second meanwhile. */
	CHECK(ok >= 45 && ok <= 56);
	CHECK(ok + limited == 60);
	check_429(first, "too many requests with this token: at most 5 a second");
	/* The same token from another address is the same budget... */
	CHECK(one("127.0.0.2", req, out, sizeof(out)) == 429);
	/* ...and another token has its own. */
	snprintf(req, sizeof(req),
	         "GET /api/v1alpha1/user HTTP/1.1\r\nHost: x\r\nauthorization: token %s\r\n"
	         "Connection: close\r\n\r\n",
	         bob);
	CHECK(one("127.0.0.1", req, out, sizeof(out)) == 200);
}

static void test_rate_per_address(void)
{
	static const char anon[] = "GET /api/v1alpha1/alice/shop/branches HTTP/1.1\r\nHost: x\r\n"
	                           "Connection: close\r\n\r\n";
	static const char wrong[] = "GET /api/v1alpha1/alice/shop/branches HTTP/1.1\r\nHost: x\r\n"
	                            "authorization: token thp_wrong\r\nConnection: close\r\n\r\n";
	char first[4096], out[4096], req[512];
	int ok, limited;

	burst("127.0.0.3", anon, 60, 200, &ok, &limited, first, sizeof(first));
	printf("anonymous from 127.0.0.3: %d answered, %d refused\n", ok, limited);
	CHECK(ok >= 45 && ok <= 56 && ok + limited == 60);
	check_429(first, "too many requests from this address");
	/* Another address is not held back. */
	CHECK(one("127.0.0.4", anon, out, sizeof(out)) == 200);
	/* A valid token from the held address is charged to the token, not the address. */
	snprintf(req, sizeof(req),
	         "GET /api/v1alpha1/alice/shop/branches HTTP/1.1\r\nHost: x\r\n"
	         "authorization: token %s\r\nConnection: close\r\n\r\n",
	         bob);
	CHECK(one("127.0.0.3", req, out, sizeof(out)) == 200);
	/* Guessing tokens costs the address. */
	burst("127.0.0.5", wrong, 60, 401, &ok, &limited, first, sizeof(first));
	printf("wrong tokens from 127.0.0.5: %d answered 401, %d refused\n", ok, limited);
	CHECK(ok >= 45 && ok <= 56 && ok + limited == 60);
	check_429(first, "too many requests from this address");
}

static t_resp upload_as_bob(const char *file, const char *table)
{
	char params[256];

	snprintf(params, sizeof(params),
	         "{\"tableName\":\"%s\",\"fileType\":\"Csv\",\"importOp\":\"Create\","
	         "\"primaryKeys\":[\"id\"]}",
	         table);
	return t_upload(&srv, bob, "bob/shop", file, params);
}

static void test_pending_cap(void)
{
	char big[600], small[600];
	const char *ops[3] = { NULL, NULL, NULL };
	t_resp r[3], refused;
	int done = 0;

	snprintf(big, sizeof(big), "%s/big.csv", dir);
	snprintf(small, sizeof(small), "%s/small.csv", dir);
	CHECK(t_sh(NULL, "(echo id,v; seq 1 200000 | sed 's/$/,some text/') > '%s'", big) == 0);
	t_write_file(small, "id,v\n1,x\n", 9);
	/* One worker: the big import runs while the two small ones wait. */
	r[0] = upload_as_bob(big, "t0");
	r[1] = upload_as_bob(small, "t1");
	r[2] = upload_as_bob(small, "t2");
	for (int i = 0; i < 3; i++) {
		CHECK(r[i].status == 200);
		ops[i] = t_str(&r[i], "operation_name");
	}
	refused = upload_as_bob(small, "t3");
	CHECK(refused.status == 429);
	CHECK_STR(t_str(&refused, "code"), "ETOOMANY");
	CHECK_CONTAINS(t_str(&refused, "message"),
	               "3 of your operations are still waiting or running (at most 3)");
	t_resp_free(&refused);
	/* Once they are done, bob may queue again. Polled slowly: bob's rate is 5 a second. */
	for (int waited = 0; waited < 600 && done < 3; waited++) {
		done = 0;
		for (int i = 0; i < 3; i++) {
			t_resp p;
			const char *st;
			if (ops[i] == NULL)
				continue;
			p = t_http(&srv,
			           AUTH
			           "-G --data-urlencode 'operationName=%s' '%s/bob/shop/upload'",
			           bob, ops[i], srv.base);
			st = t_str(&p, "job_status");
			done += st != NULL &&
			        (strcmp(st, "Completed") == 0 || strcmp(st, "Failed") == 0);
			t_resp_free(&p);
		}
		t_sleep_ms(1000);
	}
	CHECK(done == 3);
	refused = upload_as_bob(small, "t3");
	CHECK(refused.status == 200);
	t_resp_free(&refused);
	for (int i = 0; i < 3; i++)
		t_resp_free(&r[i]);
}

int main(void)
{
	static const char *const flags[] = { "--rate-per-token",
		                             "5",
		                             "--rate-per-address",
		                             "5",
		                             "--max-pending-ops",
		                             "3",
		                             "--workers",
		                             "1",
		                             NULL };
	t_resp r;

	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, flags) < 0)
		return 1;
	if (t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"shop\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"bob\",\"repoName\":\"shop\"}' '%s/database'",
	           bob, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	RUN(test_rate_per_token);
	RUN(test_rate_per_address);
	RUN(test_pending_cap);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	free(bob);
	t_rmdir(dir);
	TH_TEST_END();
}
