/* test_api_qpool.c: SQL reads run in the query pool, off the HTTP threads, on a real `tablehub
 * serve` with two HTTP threads, two query workers, a cap of two queries per caller and a queue of
 * two. Slow recursive queries (each cut by its 2 s time limit) fill the pool; meanwhile other
 * routes answer at once; a caller over its cap gets 429 and a query beyond the full queue 503,
 * both at once and with Retry-After; the slow ones end with the time-limit error, the queued ones
 * with their whole budget counted from their start; the pool is usable again afterwards; and a
 * server stopped with queries running and waiting answers every one and exits cleanly. */
#include "../harness.h"
#include "server.h"
#include "raw.h"

static t_server srv;
static char *dir, *alice, *bob;

#define SLOW_SQL                                                                                   \
	"WITH%20RECURSIVE%20c(x)%20AS%20(SELECT%201%20UNION%20ALL%20SELECT%20x%2B1%20FROM%20c)"    \
	"%20SELECT%20count(*)%20FROM%20c"
#define BUDGET_MS 2000
#define FAST_MS 500 /* what "at once" means here, with sanitizers on a shared machine */

/* Open a connection and send a slow query on alice/shop (token NULL: anonymous). Returns the
 * socket; the reply comes when the server is done with it (and it then closes). */
static int send_slow(const char *token)
{
	char req[1024], auth[200] = "";
	int fd = t_raw_connect(srv.port, NULL);

	if (token != NULL)
		snprintf(auth, sizeof(auth), "authorization: token %s\r\n", token);
	snprintf(req, sizeof(req),
	         "GET /api/v1alpha1/alice/shop/main?q=%s&timeout_ms=%d HTTP/1.1\r\n"
	         "Host: x\r\n%sConnection: close\r\n\r\n",
	         SLOW_SQL, BUDGET_MS, auth);
	if (fd >= 0)
		(void)t_raw_send(fd, req, strlen(req));
	return fd;
}

/* The index of the first of fds[0..n) with something to read, or -1 after timeout_ms. */
static int first_ready(const int *fds, int n, int timeout_ms)
{
	struct pollfd p[8];

	for (int i = 0; i < n; i++) {
		p[i].fd = fds[i];
		p[i].events = POLLIN;
		p[i].revents = 0;
	}
	if (poll(p, (nfds_t)n, timeout_ms) <= 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (p[i].revents != 0)
			return i;
	return -1;
}

/* Read the whole reply of fd (the server closes after it) and close fd. */
static void read_reply(int fd, char *out, size_t cap, int timeout_ms)
{
	int closed;

	t_raw_read(fd, out, cap, timeout_ms, &closed);
	close(fd);
}

/* The reply's JSON member `key` as a string into out ("" if none). */
static void json_member(const char *reply, const char *key, char *out, size_t cap)
{
	cJSON *body = cJSON_Parse(t_raw_body(reply));
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, key);

	snprintf(out, cap, "%s", cJSON_IsString(m) ? m->valuestring : "");
	cJSON_Delete(body);
}

/* A refusal: `status`, `code`, a message with `msg`, and Retry-After of 1..60 s. */
static void check_refusal(const char *reply, int status, const char *code, const char *msg)
{
	char c[64], m[512];
	const char *ra = strstr(reply, "Retry-After: ");

	json_member(reply, "code", c, sizeof(c));
	json_member(reply, "message", m, sizeof(m));
	if (t_raw_status(reply) != status)
		fprintf(stderr, "expected %d, got: %s\n", status, reply);
	CHECK(t_raw_status(reply) == status);
	CHECK_STR(c, code);
	CHECK_CONTAINS(m, msg);
	CHECK(ra != NULL && atoi(ra + 13) >= 1 && atoi(ra + 13) <= 60);
}

/* A slow query's end: 400 ELIMIT, the time limit named. */
static void check_time_limit(const char *reply)
{
	char c[64], m[512];

	json_member(reply, "code", c, sizeof(c));
	json_member(reply, "message", m, sizeof(m));
	if (t_raw_status(reply) != 400)
		fprintf(stderr, "expected the time limit, got: %s\n", reply);
	CHECK(t_raw_status(reply) == 400);
	CHECK_STR(c, "ELIMIT");
	CHECK_CONTAINS(m, "query exceeded the time limit of 2 s");
}

/* One request of another route on a new connection; returns its time in ms (status in *status).*/
static double timed_get(const char *path, const char *token, int *status)
{
	char req[1024], auth[200] = "", out[16384];
	int closed;
	int64_t t0 = t_mono_us();

	if (token != NULL)
		snprintf(auth, sizeof(auth), "authorization: token %s\r\n", token);
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n",
	         path, auth);
	if (t_raw_exchange(srv.port, req, strlen(req), out, sizeof(out), 5000, &closed) <= 0)
		*status = -1;
	else
		*status = t_raw_status(out);
	return (double)(t_mono_us() - t0) / 1000.0;
}

/* Other routes while the pool is full: each answers 200 within FAST_MS. Runs ~ms long. */
static void polls_stay_fast(int ms)
{
	static const char *const paths[] = { "/api/v1alpha1/alice/shop/branches",
		                             "/api/v1alpha1/user", "/api/v1alpha1/alice/shop/pulls",
		                             "/api/v1alpha1/alice/shop/main" };
	int64_t end = t_mono_us() + (int64_t)ms * 1000;
	double worst = 0;
	int n = 0, slow = 0, bad = 0;

	while (t_mono_us() < end) {
		int status;
		double t = timed_get(paths[n % 4], n % 4 == 1 ? bob : NULL, &status);
		if (t > worst)
			worst = t;
		slow += t >= FAST_MS;
		if (status != 200) {
			fprintf(stderr, "%s: %d\n", paths[n % 4], status);
			bad++;
		}
		n++;
		t_sleep_ms(50);
	}
	printf("%d requests of other routes beside the slow queries: slowest %.1f ms\n", n, worst);
	CHECK(n >= 10);
	CHECK(slow == 0);
	CHECK(bad == 0);
}

static void test_slow_queries_beside_polls(void)
{
	int anon[3], al[3], bo, i, k;
	int64_t t0 = t_mono_us(), t_al;
	char out[16384];
	double ms;

	/* Two anonymous queries take both workers; a third anonymous one is over the cap shared
	 * by every anonymous caller: 429 at once. */
	for (i = 0; i < 3; i++)
		anon[i] = send_slow(NULL);
	CHECK(anon[0] >= 0 && anon[1] >= 0 && anon[2] >= 0);
	k = first_ready(anon, 3, 5000);
	ms = (double)(t_mono_us() - t0) / 1000.0;
	CHECK(k >= 0);
	if (k < 0)
		return;
	read_reply(anon[k], out, sizeof(out), 2000);
	printf("anonymous query over the cap answered in %.1f ms\n", ms);
	CHECK(ms < FAST_MS);
	check_refusal(out, 429, "ETOOMANY", "without a token are running or waiting (at most 2");
	anon[k] = anon[2];

	/* alice's two wait in the queue (both workers are busy); her third is over her cap. */
	t_al = t_mono_us();
	for (i = 0; i < 3; i++)
		al[i] = send_slow(alice);
	k = first_ready(al, 3, 5000);
	ms = (double)(t_mono_us() - t_al) / 1000.0;
	CHECK(k >= 0);
	if (k < 0)
		return;
	read_reply(al[k], out, sizeof(out), 2000);
	CHECK(ms < FAST_MS);
	check_refusal(out, 429, "ETOOMANY", "too many of your SQL queries are running or waiting");
	al[k] = al[2];

	/* Two running and two waiting fill the pool: bob, under his own cap, gets 503. */
	t0 = t_mono_us();
	bo = send_slow(bob);
	CHECK(first_ready(&bo, 1, 5000) == 0);
	ms = (double)(t_mono_us() - t0) / 1000.0;
	read_reply(bo, out, sizeof(out), 2000);
	CHECK(ms < FAST_MS);
	check_refusal(out, 503, "EBUSY", "the server is busy with other SQL queries");

	polls_stay_fast(1500);

	/* The running ones end at their limit, the queued ones a full budget after they start. */
	for (i = 0; i < 2; i++) {
		read_reply(anon[i], out, sizeof(out), 20000);
		check_time_limit(out);
	}
	for (i = 0; i < 2; i++) {
		read_reply(al[i], out, sizeof(out), 20000);
		check_time_limit(out);
	}
	ms = (double)(t_mono_us() - t_al) / 1000.0;
	printf("queued queries ended %.1f ms after they were sent\n", ms);
	CHECK(ms >= 2 * BUDGET_MS - 300);

	/* Every slot is free again. */
	{
		t_resp r = t_http(&srv,
		                  "-G --data-urlencode 'q=SELECT count(*) AS n FROM people' "
		                  "'%s/alice/shop/main'",
		                  srv.base);
		CHECK(r.status == 200);
		CHECK_CONTAINS(r.body, "\"rows\":[{\"n\":\"");
		t_resp_free(&r);
	}
}

/* A query that finishes in time answers as before, through the pool. */
static void test_fast_query(void)
{
	t_resp r = t_http(&srv,
	                  "-G " AUTH "--data-urlencode 'q=SELECT name FROM people WHERE id = 1' "
	                  "'%s/alice/shop/main'",
	                  alice, srv.base);

	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "query_execution_status"), "Success");
	CHECK_CONTAINS(r.body, "\"rows\":[{\"name\":\"Alice\"}]");
	t_resp_free(&r);
}

/* SIGTERM with two queries running and two waiting: the running ones end at their limit, the
 * waiting ones are answered 503, and the server exits 0 (MHD is never stopped with a connection
 * suspended). */
static void test_shutdown_with_parked_queries(void)
{
	int fds[4], i, n503 = 0, nlimit = 0;
	char out[16384];

	for (i = 0; i < 4; i++) {
		fds[i] = send_slow(i < 2 ? NULL : alice);
		t_sleep_ms(100);
	}
	t_sleep_ms(300);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	for (i = 0; i < 4; i++) {
		read_reply(fds[i], out, sizeof(out), 5000);
		if (t_raw_status(out) == 503 && strstr(out, "shutting down") != NULL)
			n503++;
		else if (t_raw_status(out) == 400 && strstr(out, "time limit") != NULL)
			nlimit++;
		else
			fprintf(stderr, "unexpected reply at shutdown: %s\n", out);
	}
	CHECK(nlimit == 2);
	CHECK(n503 == 2);
}

int main(void)
{
	static const char *const flags[] = { "--threads",
		                             "2",
		                             "--query-workers",
		                             "2",
		                             "--query-per-user",
		                             "2",
		                             "--query-queue",
		                             "2",
		                             "--rate-per-address",
		                             "0",
		                             "--rate-per-token",
		                             "0",
		                             NULL };

	dir = t_mkdtemp();
	if (t_sh(NULL, "'%s' db create --data '%s' alice/shop >/dev/null", TH_BIN, dir) != 0 ||
	    t_sh(NULL,
	         "'%s' import --data '%s' alice/shop --table people --pk id '%s/csv/%s' "
	         ">/dev/null",
	         TH_BIN, dir, TH_FIXTURES, "people.csv") != 0) {
		fprintf(stderr, "setting up the database failed\n");
		return 1;
	}
	if (t_server_start(&srv, dir, 0, flags) < 0)
		return 1;
	if (t_add_alice_and_bob(&srv, &alice, &bob) < 0)
		return 1;
	RUN(test_fast_query);
	RUN(test_slow_queries_beside_polls);
	RUN(test_shutdown_with_parked_queries);
	if (srv.pid > 0)
		t_server_stop(&srv, SIGKILL);
	free(alice);
	free(bob);
	t_rmdir(dir);
	TH_TEST_END();
}
