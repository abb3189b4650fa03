/* test_api_unit.c: the pieces of api/ that need no server: the streaming multipart parser (fed in
 * every possible split of a body), Content-Type boundaries, authorization header forms, route
 * matching (404, 405, captures, most specific pattern), listen addresses and the request pool. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../../api/api.h"
#include "../../api/pulls_api.h"

/* --- multipart --------------------------------------------------------------------------------*/

typedef struct collected {
	int nparts;
	char names[4][32];
	char filenames[4][32];
	char ctypes[4][64];
	char data[4][256];
	size_t lens[4];
	int ended[4];
} collected;

static int c_begin(void *p, const char *name, const char *filename, const char *ctype,
                   th_error *err)
{
	collected *c = p;

	(void)err;
	if (c->nparts >= 4)
		return th_error_set(err, TH_EINVALID, "too many parts");
	snprintf(c->names[c->nparts], 32, "%s", name);
	snprintf(c->filenames[c->nparts], 32, "%s", filename ? filename : "(none)");
	snprintf(c->ctypes[c->nparts], 64, "%s", ctype ? ctype : "(none)");
	c->nparts++;
	return TH_OK;
}

static int c_data(void *p, const char *data, size_t len, th_error *err)
{
	collected *c = p;
	int i = c->nparts - 1;

	if (c->lens[i] + len >= sizeof(c->data[i]))
		return th_error_set(err, TH_ETOOBIG, "part too big");
	memcpy(c->data[i] + c->lens[i], data, len);
	c->lens[i] += len;
	return TH_OK;
}

static int c_end(void *p, th_error *err)
{
	collected *c = p;

	(void)err;
	c->ended[c->nparts - 1] = 1;
	return TH_OK;
}

static const api_mp_callbacks cbs = { c_begin, c_data, c_end };

/* Parse `body` fed in pieces of `step` bytes. Returns the parse result; *c gets the parts. */
static int parse_in_steps(collected *c, const char *boundary, const char *body, size_t len,
                          size_t step, th_error *err)
{
	api_pool pool = { 0 };
	api_mp *mp = NULL;
	int error;

	memset(c, 0, sizeof(*c));
	if ((error = api_mp_new(&mp, &pool, boundary, &cbs, c, err)) < 0)
		goto done;
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		if ((error = api_mp_feed(mp, body + i, n, err)) < 0)
			goto done;
	}
	error = api_mp_finish(mp, err);
done:
	api_pool_release(&pool);
	return error;
}

/* A file whose bytes look like the delimiter without being it: CRs, "\r\n--", "\r\n--XyZ". */
static const char tricky_file[] = "id,name\r\n1,a\r\n--\r\n\r\n-\r\r\n--XyZ\r\n--Xy\r\n--XyZz\r";

static void test_multipart_any_split(void)
{
	char body[1024];
	int n = snprintf(body, sizeof(body),
	                 "preamble to ignore\r\n"
	                 "--XyZZ\r\n"
	                 "Content-Disposition: form-data; name=\"params\"\r\n"
	                 "\r\n"
	                 "{\"tableName\":\"t\"}\r\n"
	                 "--XyZZ\r\n"
	                 "Content-Disposition: form-data; name=\"file\"; filename=\"a b.csv\"\r\n"
	                 "Content-Type: text/csv\r\n"
	                 "\r\n"
	                 "%s\r\n"
	                 "--XyZZ--\r\n"
	                 "epilogue",
	                 tricky_file);
	collected c;
	th_error err = { 0 };

	for (size_t step = 1; step <= (size_t)n; step++) {
		int error = parse_in_steps(&c, "XyZZ", body, (size_t)n, step, &err);
		CHECK(error == TH_OK);
		if (error != TH_OK) {
			fprintf(stderr, "step %zu: %s\n", step, err.msg);
			return;
		}
		CHECK(c.nparts == 2);
		CHECK_STR(c.names[0], "params");
		CHECK_STR(c.ctypes[0], "(none)");
		CHECK_STR(c.filenames[0], "(none)");
		CHECK(c.lens[0] == strlen("{\"tableName\":\"t\"}") &&
		      memcmp(c.data[0], "{\"tableName\":\"t\"}", c.lens[0]) == 0);
		CHECK_STR(c.names[1], "file");
		CHECK_STR(c.filenames[1], "a b.csv");
		CHECK_STR(c.ctypes[1], "text/csv");
		CHECK(c.lens[1] == strlen(tricky_file) &&
		      memcmp(c.data[1], tricky_file, c.lens[1]) == 0);
		CHECK(c.ended[0] && c.ended[1]);
		if (th_t_failed_checks) {
			fprintf(stderr, "failed at step %zu\n", step);
			return;
		}
	}
}

static void test_multipart_no_preamble_empty_part(void)
{
	const char *body = "--b\r\n"
	                   "content-disposition: form-data; name=file; filename=x.csv\r\n"
	                   "\r\n"
	                   "\r\n"
	                   "--b\r\n"
	                   "Content-Disposition: form-data; name=\"params\"\r\n"
	                   "Content-Type: application/json\r\n"
	                   "\r\n"
	                   "{}\r\n"
	                   "--b--";
	collected c;
	th_error err = { 0 };

	CHECK_OK(parse_in_steps(&c, "b", body, strlen(body), 7, &err), &err);
	CHECK(c.nparts == 2);
	CHECK_STR(c.names[0], "file");
	CHECK_STR(c.filenames[0], "x.csv");
	CHECK(c.lens[0] == 0);
	CHECK_STR(c.ctypes[1], "application/json");
	CHECK(c.lens[1] == 2);
}

static void test_multipart_errors(void)
{
	collected c;
	th_error err = { 0 };
	const char *truncated = "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc";
	const char *noname = "--b\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--b--";
	const char *garbage = "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--bX";
	char big[10000];

	CHECK(parse_in_steps(&c, "b", truncated, strlen(truncated), 5, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "closing boundary");
	CHECK(parse_in_steps(&c, "b", "no parts here", 13, 5, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "no part");
	CHECK(parse_in_steps(&c, "b", noname, strlen(noname), 64, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "name");
	/* "--bX" inside a part is data, so the body just never closes. */
	CHECK(parse_in_steps(&c, "b", garbage, strlen(garbage), 64, &err) == TH_EINVALID);
	memset(big, 'h', sizeof(big));
	memcpy(big, "--b\r\nX: ", 8);
	CHECK(parse_in_steps(&c, "b", big, sizeof(big), 512, &err) == TH_EINVALID);
	CHECK_CONTAINS(err.msg, "headers over");
}

static void test_boundary_header(void)
{
	char b[71];
	int mp;
	th_error err = { 0 };

	CHECK_OK(api_mp_boundary(b, &mp, "multipart/form-data; boundary=----abc123", &err), &err);
	CHECK_STR(b, "----abc123");
	CHECK_OK(api_mp_boundary(b, &mp, "Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b\"",
	                         &err),
	         &err);
	CHECK_STR(b, "a b");
	CHECK(api_mp_boundary(b, &mp, "application/json", &err) == TH_EINVALID && mp == 0);
	CHECK_CONTAINS(err.msg, "multipart/form-data");
	CHECK(api_mp_boundary(b, &mp, NULL, &err) == TH_EINVALID && mp == 0);
	CHECK(api_mp_boundary(b, &mp, "multipart/form-data", &err) == TH_EINVALID && mp == 1);
	CHECK_CONTAINS(err.msg, "boundary");
	CHECK(api_mp_boundary(b, &mp, "text/csv; charset=utf-8", &err) == TH_EINVALID && mp == 0);
	/* a boundary makes any type multipart (a client that overrode the Content-Type) */
	CHECK_OK(api_mp_boundary(b, &mp, "application/json; boundary=---x1", &err), &err);
	CHECK_STR(b, "---x1");
}

/* --- authorization header -------------------------------------------------------------------- */

static void check_token(const char *header, const char *want)
{
	size_t len = 0;
	const char *t = api_token_from_header(header, &len);
	char got[128] = "(null)";

	if (t != NULL)
		snprintf(got, sizeof(got), "%.*s", (int)len, t);
	CHECK_STR(got, want);
}

static void test_token_forms(void)
{
	check_token("token thp_abc", "thp_abc");
	check_token("Token thp_abc", "thp_abc");
	check_token("Bearer thp_abc", "thp_abc");
	check_token("bearer\tthp_abc  ", "thp_abc");
	check_token("thp_abc", "thp_abc");
	check_token("  thp_abc ", "thp_abc");
	check_token("", "(null)");
	check_token("token ", "(null)");
	check_token("token a b", "(null)");
}

/* --- routes ---------------------------------------------------------------------------------- */

static void test_routes(void)
{
	th_req req;
	const char *allow = NULL;

	memset(&req, 0, sizeof(req));
	CHECK(api_route_match(&req, "GET", "/api/v1alpha1/alice/shop/upload", &allow) == TH_OK);
	CHECK(req.route && req.route->fn == api_upload_poll);
	CHECK_STR(api_cap(&req, "owner"), "alice");
	CHECK_STR(api_cap(&req, "db"), "shop");
	CHECK(api_cap(&req, "id") == NULL);

	CHECK(api_route_match(&req, "POST", "/api/v1alpha1/alice/shop/upload", &allow) == TH_OK);
	CHECK(req.route->fn == api_upload_create);
	CHECK(req.route->flags & R_STREAM);

	CHECK(api_route_match(&req, "GET", "/api/v1alpha1/alice/shop/pulls/12", &allow) == TH_OK);
	CHECK(req.route->fn == api_pulls_get);
	CHECK_STR(api_cap(&req, "id"), "12");

	/* A literal segment beats a capture: users/:user/operations, not :owner/:db/... */
	CHECK(api_route_match(&req, "GET", "/api/v1alpha1/users/bob/operations", &allow) == TH_OK);
	CHECK(req.route->fn == api_user_operations);
	CHECK_STR(api_cap(&req, "user"), "bob");

	CHECK(api_route_match(&req, "DELETE", "/api/v1alpha1/alice/shop/branches", &allow) ==
	      TH_EINVALID);
	CHECK_STR(allow, "GET, POST");
	CHECK(api_route_match(&req, "GET", "/api/v2/alice/shop/nothing", &allow) == TH_ENOTFOUND);
	CHECK(api_route_match(&req, "GET", "/api/v1alpha1", &allow) == TH_ENOTFOUND);
	/* "/" is the web pages' shell (web.c); other unknown paths are still not found. */
	CHECK(api_route_match(&req, "GET", "/nosuch", &allow) == TH_ENOTFOUND);
	CHECK(api_route_match(&req, "GET", "/", &allow) == TH_OK);
	CHECK(api_route_match(&req, "GET", "/api/v1alpha1/user", &allow) == TH_OK);
	CHECK(req.route->fn == api_user_get);
	api_pool_release(&req.pool);
}

static void test_listen(void)
{
	uint32_t a;
	uint16_t p;
	th_error err = { 0 };

	CHECK_OK(api_parse_listen(&a, &p, "127.0.0.1:8080", &err), &err);
	CHECK(p == 8080 && a == htonl(0x7f000001));
	CHECK_OK(api_parse_listen(&a, &p, "localhost:0", &err), &err);
	CHECK(p == 0);
	CHECK(api_parse_listen(&a, &p, "127.0.0.1", &err) == TH_EINVALID);
	CHECK(api_parse_listen(&a, &p, "127.0.0.1:99999", &err) == TH_EINVALID);
	CHECK(api_parse_listen(&a, &p, "example.com:80", &err) == TH_EINVALID);
}

static void test_pool(void)
{
	api_pool pool = { 0 };
	char *a = api_pool_alloc(&pool, 10), *b = api_pool_alloc(&pool, 100000);
	char *s = api_pool_printf(&pool, "%s/%d", "x", 42);

	CHECK(a != NULL && b != NULL && ((uintptr_t)a & 15) == 0 && ((uintptr_t)b & 15) == 0);
	CHECK(a[9] == 0 && b[99999] == 0);
	memset(b, 1, 100000);
	CHECK_STR(s, "x/42");
	CHECK_STR(api_pool_strndup(&pool, "hello", 4), "hell");
	api_pool_release(&pool);
	CHECK(pool.head == NULL);
}

static void test_status_map(void)
{
	CHECK(api_status_for(TH_ENOTFOUND) == 404);
	CHECK(api_status_for(TH_EEXISTS) == 409);
	CHECK(api_status_for(TH_ECONFLICT) == 409);
	CHECK(api_status_for(TH_EINVALID) == 400);
	CHECK(api_status_for(TH_ETOOBIG) == 413);
	CHECK(api_status_for(TH_EAUTH) == 401);
	CHECK(api_status_for(TH_EBUSY) == 503);
	CHECK(api_status_for(TH_ESTORE) == 500);
}

int main(void)
{
	RUN(test_multipart_any_split);
	RUN(test_multipart_no_preamble_empty_part);
	RUN(test_multipart_errors);
	RUN(test_boundary_header);
	RUN(test_token_forms);
	RUN(test_routes);
	RUN(test_listen);
	RUN(test_pool);
	RUN(test_status_map);
	TH_TEST_END();
}
