/* test_api_smuggle.c: request framing a proxy and this server could read differently is refused
 * (RFC 9112 §6.3), so no bytes after a request's head ever run as another request. Each case goes
 * over a raw socket to a real `tablehub serve` with a second, "smuggled" request behind it, and
 * checks that exactly one reply came (a 400 with a JSON error), that it closes the connection, and
 * that the smuggled request was never answered. Also: a URL with an encoded NUL is refused, not
 * cut short, and ordinary keep-alive still works. */
#include "../harness.h"
#include "server.h"
#include "raw.h"

static t_server srv;
static char *dir, *alice;

#define SMUGGLED "GET /api/v1alpha1/user HTTP/1.1\r\nHost: x\r\n\r\n"

/* Send req (a head and whatever follows it) and expect one 400 JSON error whose message holds
 * `msg`, the connection closed after it, and nothing else. */
static void refused(const char *req, const char *msg)
{
	char out[8192];
	int closed = 0;
	long n = t_raw_exchange(srv.port, req, strlen(req), out, sizeof(out), 3000, &closed);
	cJSON *body;

	CHECK(n > 0);
	if (n <= 0)
		return;
	CHECK(t_raw_status(out) == 400);
	CHECK(t_raw_status_lines(out) == 1);
	CHECK(closed);
	CHECK_CONTAINS(out, "Connection: close");
	CHECK(strstr(out, "401") == NULL); /* the smuggled GET /user would answer 401 */
	body = cJSON_Parse(t_raw_body(out));
	CHECK(body != NULL);
	{
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "message");
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(body, "code");
		CHECK(cJSON_IsString(c) && strcmp(c->valuestring, "EINVALID") == 0);
		CHECK_CONTAINS(cJSON_IsString(m) ? m->valuestring : NULL, msg);
	}
	if (t_raw_status(out) != 400 || t_raw_status_lines(out) != 1 || !closed)
		fprintf(stderr, "  got: %s\n", out);
	cJSON_Delete(body);
}

static void test_two_lengths(void)
{
	/* Different lengths: today the first wins and the rest of the body is a second request. */
	refused("GET /api/v1alpha1/alice/shop/branches HTTP/1.1\r\nHost: x\r\n"
	        "Content-Length: 0\r\nContent-Length: 44\r\n\r\n" SMUGGLED,
	        "more than one Content-Length header");
	/* Equal lengths are refused as well: one is all a client needs. */
	refused("POST /api/v1alpha1/database HTTP/1.1\r\nHost: x\r\n"
	        "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" SMUGGLED,
	        "more than one Content-Length header");
}

static void test_chunked_with_length(void)
{
	refused("POST /api/v1alpha1/database HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
	        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
	        "both Transfer-Encoding and Content-Length");
	refused("POST /api/v1alpha1/database HTTP/1.1\r\nHost: x\r\n"
	        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" SMUGGLED,
	        "both Transfer-Encoding and Content-Length");
	refused("POST /api/v1alpha1/database HTTP/1.1\r\nHost: x\r\n"
	        "Transfer-Encoding: chunked\r\nTransfer-Encoding: "
	        "chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
	        "more than one Transfer-Encoding header");
	refused("POST /api/v1alpha1/database HTTP/1.1\r\nHost: x\r\n"
	        "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
	        "Transfer-Encoding 'gzip, chunked' is not supported");
}

/* A malformed length never reaches the server's code: libmicrohttpd answers it (400, its own
 * HTML page, see the README) and closes the connection. Nothing behind it runs. */
static void test_bad_length(void)
{
	static const char *const lengths[] = { "-5", "5x", "", "+5", "99999999999999999999999" };

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		char req[512], out[8192];
		int closed = 0;
		long n;
		snprintf(req, sizeof(req),
		         "GET /api/v1alpha1/alice/shop/branches HTTP/1.1\r\nHost: x\r\n"
		         "Content-Length: %s\r\n\r\n" SMUGGLED,
		         lengths[i]);
		n = t_raw_exchange(srv.port, req, strlen(req), out, sizeof(out), 3000, &closed);
		CHECK(n > 0);
		CHECK(t_raw_status(out) == 400 || t_raw_status(out) == 413);
		CHECK(closed);
		CHECK(strstr(out, "401") == NULL && strstr(out, "\"branches\"") == NULL);
	}
}

static void test_nul_in_url(void)
{
	t_resp r = t_http(&srv, "'%s/alice/shop%%00/branches'", srv.base);

	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "code"), "EINVALID");
	CHECK_CONTAINS(t_str(&r, "message"), "encoded NUL byte");
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/shop/main?q=SELECT%%201%%00'", srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "encoded NUL byte");
	t_resp_free(&r);
	/* The mark does not stick to the connection: the next request is fine. */
	r = t_http(&srv,
	           "'%s/alice/shop/branches' '%s/alice/shop%%00/branches' '%s/alice/shop/branches'",
	           srv.base, srv.base, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
}

/* Two well-formed requests on one connection are both answered, and it stays open. */
static void test_keep_alive(void)
{
	static const char two[] =
	        "GET /api/v1alpha1/alice/shop/branches HTTP/1.1\r\nHost: x\r\n\r\n"
	        "GET /api/v1alpha1/alice/shop/branches HTTP/1.1\r\nHost: x\r\n"
	        "Content-Length: 0\r\n\r\n";
	char out[8192];
	int closed = 0;
	long n = t_raw_exchange(srv.port, two, sizeof(two) - 1, out, sizeof(out), 1000, &closed);

	CHECK(n > 0);
	CHECK(t_raw_status(out) == 200);
	CHECK(t_raw_status_lines(out) == 2);
	CHECK(!closed);
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
	RUN(test_two_lengths);
	RUN(test_chunked_with_length);
	RUN(test_bad_length);
	RUN(test_nul_in_url);
	RUN(test_keep_alive);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	t_rmdir(dir);
	TH_TEST_END();
}
