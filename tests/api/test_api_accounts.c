/* test_api_accounts.c: accounts, sessions and tokens over HTTP on a real `tablehub serve`:
 * registering (and what is refused), `serve --no-signup`, logging in with JSON and with a form, the
 * session cookie's attributes, CSRF tokens on unsafe calls made with the cookie, logging out,
 * login rate limits per user and per address (429 with Retry-After), API tokens created, listed
 * (never their secrets), scoped and revoked over the API and with `tablehub token`, a revoked or
 * expired token refused at its very next use (also when another process revoked it), the events
 * those changes left, and finally that no password or token used here reached the server's log.
 */
#include "../harness.h"
#include "accounts.h"

static t_server srv;
static char *dir, *alice;

/* curl's -D header dump of a login, from source address `src`. */
static char *login_headers(const char *src, const char *body, const char *ctype, const char *extra,
                           int *status)
{
	char hdr[600], *h;
	t_resp r;

	snprintf(hdr, sizeof(hdr), "%s/login-headers", dir);
	r = t_http(&srv,
	           "--interface %s -D '%s' -H 'Content-Type: %s' %s -d '%s' "
	           "'http://127.0.0.1:%d/login'",
	           src, hdr, ctype, extra, body, srv.port);
	*status = r.status;
	t_resp_free(&r);
	h = t_read_file(hdr, NULL);
	return h ? h : strdup("");
}

static void test_register(void)
{
	t_resp r;

	CHECK(t_register(&srv, "bob", "bob@example.org", "bobs password") == 200);
	r = t_http(&srv,
	           "-d '{\"username\":\"bob\",\"email\":\"b2@example.org\",\"password\":"
	           "\"another one\"}' '%s/users'",
	           srv.base);
	CHECK(r.status == 409);
	CHECK_STR(t_str(&r, "message"), "user 'bob' already exists");
	t_resp_free(&r);
	r = t_http(&srv,
	           "-d '{\"username\":\"bobby\",\"email\":\"BOB@example.org\",\"password\":"
	           "\"another one\"}' '%s/users'",
	           srv.base);
	CHECK(r.status == 409);
	CHECK_CONTAINS(t_str(&r, "message"), "is taken");
	t_resp_free(&r);
	r = t_http(&srv,
	           "-d '{\"username\":\"carol\",\"email\":\"carol@x.org\",\"password\":"
	           "\"short\"}' '%s/users'",
	           srv.base);
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "password too short: use at least 8 bytes");
	t_resp_free(&r);
	r = t_http(&srv,
	           "-d '{\"username\":\"carol\",\"email\":\"carol\",\"password\":"
	           "\"long enough\"}' '%s/users'",
	           srv.base);
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "invalid email address: want name@domain");
	t_resp_free(&r);
	r = t_http(&srv,
	           "-d '{\"username\":\"login\",\"email\":\"l@x.org\",\"password\":"
	           "\"long enough\"}' '%s/users'",
	           srv.base);
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "the user name 'login' is reserved");
	t_resp_free(&r);
	r = t_http(&srv,
	           "-d '{\"username\":\"a b\",\"email\":\"l@x.org\",\"password\":"
	           "\"long enough\"}' '%s/users'",
	           srv.base);
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = t_http(&srv, "-d '{\"username\":\"carol\"}' '%s/users'", srv.base);
	CHECK(r.status == 400);
	CHECK_STR(t_str(&r, "message"), "'email' is required");
	t_resp_free(&r);
	CHECK(t_register(&srv, "carol", "carol@example.org", "carols password") == 200);
}

static void test_no_signup(void)
{
	t_server other;
	char *d2 = t_mkdtemp();
	const char *extra[] = { "--no-signup", NULL };
	char *tok;
	t_resp r;

	if (t_server_start(&other, d2, 0, extra) < 0) {
		CHECK(0);
		t_rmdir(d2);
		return;
	}
	r = t_http(&other,
	           "-d '{\"username\":\"eve\",\"email\":\"eve@x.org\",\"password\":"
	           "\"eves password\"}' '%s/users'",
	           other.base);
	CHECK(r.status == 403);
	CHECK_STR(t_str(&r, "code"), "EFORBIDDEN");
	CHECK_CONTAINS(t_str(&r, "message"), "sign-up is switched off");
	t_resp_free(&r);
	/* `tablehub user add` keeps working. */
	tok = t_user(&other, "eve");
	CHECK(tok != NULL);
	r = t_http(&other, AUTH "'%s/user'", nz(tok), other.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "username"), "eve");
	t_resp_free(&r);
	free(tok);
	CHECK(t_secrets_check_log(&other) == 0);
	t_server_stop(&other, SIGTERM);
	t_rmdir(d2);
}

static void test_login_and_cookie(void)
{
	t_session s;
	char *h;
	int st;
	t_resp r;

	/* JSON: the cookie is HttpOnly and SameSite=Strict, not Secure on plain http. */
	h = login_headers("127.0.0.1", "{\"username\":\"bob\",\"password\":\"bobs password\"}",
	                  "application/json", "", &st);
	CHECK(st == 200);
	CHECK_CONTAINS(h, "Set-Cookie: th_session=ths_");
	CHECK_CONTAINS(h, "; Path=/; Max-Age=604800; HttpOnly; SameSite=Strict\r\n");
	CHECK(strstr(h, "Secure") == NULL);
	CHECK_CONTAINS(h, "Cache-Control: no-store");
	free(h);
	/* A form works too, and behind an https proxy the cookie is Secure. */
	h = login_headers("127.0.0.1", "username=bob&password=bobs+password",
	                  "application/x-www-form-urlencoded", "-H 'X-Forwarded-Proto: https'",
	                  &st);
	CHECK(st == 200);
	CHECK_CONTAINS(h, "HttpOnly; SameSite=Strict; Secure\r\n");
	free(h);
	/* A login posted from another site's page is refused. */
	h = login_headers("127.0.0.1", "username=bob&password=bobs+password",
	                  "application/x-www-form-urlencoded", "-H 'Origin: http://evil.example'",
	                  &st);
	CHECK(st == 403);
	CHECK(strstr(h, "Set-Cookie") == NULL);
	free(h);

	CHECK(t_login(&s, &srv, "bob", "bobs password") == 200);
	CHECK(strlen(s.csrf) == 64);
	r = t_http(&srv, SESSION "'%s/user'", SESSION_ARGS(&s, 0), srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "username"), "bob");
	CHECK_STR(t_str(&r, "csrf_token"), s.csrf);
	t_resp_free(&r);
	/* Unsafe calls with the cookie need the CSRF token; a wrong one is refused too. */
	r = t_http(&srv, SESSION "-d '{\"name\":\"x\",\"scope\":\"read\"}' '%s/user/tokens'",
	           SESSION_ARGS(&s, 0), srv.base);
	CHECK(r.status == 403);
	CHECK_CONTAINS(t_str(&r, "message"), "CSRF");
	t_resp_free(&r);
	r = t_http(&srv,
	           "-b '%s' -H 'X-CSRF-Token: %064d' -d '{\"name\":\"x\",\"scope\":\"read\"}' "
	           "'%s/user/tokens'",
	           s.jar, 0, srv.base);
	CHECK(r.status == 403);
	t_resp_free(&r);
	r = t_http(&srv,
	           SESSION "-d '{\"name\":\"from the browser\",\"scope\":\"read\"}' "
	                   "'%s/user/tokens'",
	           SESSION_ARGS(&s, 1), srv.base);
	CHECK(r.status == 200);
	t_secret(t_str(&r, "token"));
	t_resp_free(&r);
	/* Logout ends the session: the same cookie is then nobody. */
	r = t_http(&srv, SESSION "-X POST 'http://127.0.0.1:%d/logout'", SESSION_ARGS(&s, 0),
	           srv.port);
	CHECK(r.status == 403); /* without the CSRF token */
	t_resp_free(&r);
	r = t_http(&srv, SESSION "-X POST 'http://127.0.0.1:%d/logout'", SESSION_ARGS(&s, 1),
	           srv.port);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, SESSION "'%s/user'", SESSION_ARGS(&s, 0), srv.base);
	CHECK(r.status == 401);
	t_resp_free(&r);
	/* Logout is for sessions; tokens are revoked by id. */
	r = t_http(&srv, AUTH "-X POST 'http://127.0.0.1:%d/logout'", alice, srv.port);
	CHECK(r.status == 400);
	t_resp_free(&r);
}

static void test_login_limits(void)
{
	int st, i;
	char *h;

	/* A wrong password and an unknown user get the same answer. */
	h = login_headers("127.0.0.2", "{\"username\":\"bob\",\"password\":\"wrong password\"}",
	                  "application/json", "", &st);
	CHECK(st == 401);
	free(h);
	/* 10 failures per user name, then 429 with Retry-After, whatever the address. */
	for (i = 0; i < 9; i++) {
		h = login_headers(i % 2 ? "127.0.0.3" : "127.0.0.4",
		                  "{\"username\":\"carol\",\"password\":\"wrong password\"}",
		                  "application/json", "", &st);
		CHECK(st == 401);
		free(h);
	}
	h = login_headers("127.0.0.2", "{\"username\":\"carol\",\"password\":\"wrong password\"}",
	                  "application/json", "", &st);
	CHECK(st == 401);
	free(h);
	h = login_headers("127.0.0.5", "{\"username\":\"carol\",\"password\":\"carols password\"}",
	                  "application/json", "", &st);
	CHECK(st == 429);
	CHECK_CONTAINS(h, "Retry-After: ");
	CHECK(strstr(h, "Retry-After: ") == NULL || atoi(strstr(h, "Retry-After: ") + 13) >= 1);
	free(h);
	/* Other users are not held up. */
	h = login_headers("127.0.0.5", "{\"username\":\"bob\",\"password\":\"bobs password\"}",
	                  "application/json", "", &st);
	CHECK(st == 200);
	free(h);
	/* 20 attempts per address (at names each tried once), then 429, one more coming back every
	 * 3 s: the first 429 comes after at least 20 and at most 20 + elapsed/3 + 1 answers,
	 * however slow a loaded machine makes each attempt. */
	{
		time_t start = time(NULL);
		int first_429 = -1;
		for (i = 0; i < 60 && first_429 < 0; i++) {
			char body[100];
			snprintf(body, sizeof(body),
			         "{\"username\":\"nobody%d\",\"password\":\"guess\"}", i);
			h = login_headers("127.0.0.6", body, "application/json", "", &st);
			if (st == 429) {
				first_429 = i;
				CHECK_CONTAINS(h, "Retry-After: ");
			} else {
				CHECK(st == 401);
			}
			free(h);
		}
		CHECK(first_429 >= 20);
		CHECK(first_429 <= 20 + (int)(time(NULL) - start) / 3 + 1);
	}
	printf("logins from one address: 20 at once, then one every %d s\n", 3);
}

static void test_tokens(void)
{
	char *ro, *rw, *out = NULL, id[32] = "";
	t_resp r;
	const cJSON *list;

	ro = t_token_create(&srv, alice, "ci read", "read");
	rw = t_token_create(&srv, alice, "ci write", "write");
	CHECK(ro != NULL && rw != NULL);
	/* A read token reads, and nothing more. */
	r = t_http(&srv, AUTH "'%s/user'", nz(ro), srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "scope"), "read");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"ro\"}' '%s/database'",
	           nz(ro), srv.base);
	CHECK(r.status == 403);
	CHECK_STR(t_str(&r, "message"), "this token's scope is 'read': it can only read");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"rw\"}' '%s/database'",
	           nz(rw), srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	/* Only an admin-scope credential manages tokens. */
	r = t_http(&srv, AUTH "'%s/user/tokens'", nz(rw), srv.base);
	CHECK(r.status == 403);
	CHECK_STR(t_str(&r, "message"), "this token's scope is 'write': this needs 'admin'");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-d '{\"name\":\"x\",\"scope\":\"owner\"}' '%s/user/tokens'", alice,
	           srv.base);
	CHECK(r.status == 400);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"name\":\"x\",\"scope\":\"read\",\"expiresInDays\":0}' "
	                "'%s/user/tokens'",
	           alice, srv.base);
	CHECK(r.status == 400);
	CHECK_CONTAINS(t_str(&r, "message"), "expiresInDays");
	t_resp_free(&r);

	/* The list shows names, scopes and times, never a secret. */
	r = t_http(&srv, AUTH "'%s/user/tokens'", alice, srv.base);
	CHECK(r.status == 200);
	list = cJSON_GetObjectItem(r.json, "tokens");
	CHECK(cJSON_GetArraySize(list) == 3);
	CHECK(strstr(r.body, "thp_") == NULL);
	for (int i = 0; i < cJSON_GetArraySize(list); i++) {
		const cJSON *t = cJSON_GetArrayItem(list, i);
		if (strcmp(nz(cJSON_GetStringValue(cJSON_GetObjectItem(t, "name"))), "ci read") ==
		    0) {
			snprintf(id, sizeof(id), "%s",
			         nz(cJSON_GetStringValue(cJSON_GetObjectItem(t, "token_id"))));
			CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "scope")), "read");
			CHECK(cJSON_IsString(cJSON_GetObjectItem(t, "last_used_at")));
			CHECK(cJSON_IsNull(cJSON_GetObjectItem(t, "expires_at")));
		}
	}
	t_resp_free(&r);

	/* Revoked: refused at the very next request. */
	r = t_http(&srv, AUTH "-X DELETE '%s/user/tokens/%s'", alice, srv.base, id);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, AUTH "'%s/user'", nz(ro), srv.base);
	CHECK(r.status == 401);
	CHECK_STR(t_str(&r, "message"), "invalid token");
	t_resp_free(&r);
	r = t_http(&srv, AUTH "-X DELETE '%s/user/tokens/%s'", alice, srv.base, id);
	CHECK(r.status == 404);
	t_resp_free(&r);
	/* Nobody revokes another's token. */
	r = t_http(&srv, AUTH "-X DELETE '%s/user/tokens/1'", nz(rw), srv.base);
	CHECK(r.status == 403);
	t_resp_free(&r);

	/* Expired: refused at once (the store's clock moved past it). */
	CHECK(t_sh(NULL,
	           "sqlite3 '%s/meta.sqlite' \"UPDATE tokens SET expires_at = 1 WHERE name = "
	           "'ci write'\"",
	           dir) == 0);
	r = t_http(&srv, AUTH "'%s/user'", nz(rw), srv.base);
	CHECK(r.status == 401);
	t_resp_free(&r);

	/* The command line: create with a scope and an expiry, list, revoke beside the server. */
	CHECK(t_sh(&out,
	           "'%s' token create --data '%s' --name laptop --scope write "
	           "--expires-in-days 30 alice 2>/dev/null",
	           TH_BIN, dir) == 0);
	out[strcspn(out, "\n")] = '\0';
	t_secret(out);
	r = t_http(&srv, AUTH "'%s/user'", out, srv.base);
	CHECK(r.status == 200);
	CHECK_STR(t_str(&r, "scope"), "write");
	t_resp_free(&r);
	free(out);
	CHECK(t_sh(&out, "'%s' token list --data '%s' alice", TH_BIN, dir) == 0);
	CHECK_CONTAINS(out, "laptop");
	CHECK_CONTAINS(out, "write");
	CHECK(strstr(out, "thp_") == NULL);
	{
		/* The id of "laptop": the first field of its line. */
		char *line = strstr(out, "laptop");
		while (line > out && line[-1] != '\n')
			line--;
		snprintf(id, sizeof(id), "%.*s", (int)strcspn(line, " "), line);
	}
	free(out);
	CHECK(t_sh(NULL, "'%s' token revoke --data '%s' alice %s 2>/dev/null", TH_BIN, dir, id) ==
	      0);
	CHECK(t_sh(NULL, "'%s' token revoke --data '%s' alice %s 2>/dev/null", TH_BIN, dir, id) ==
	      1);
	CHECK(t_sh(NULL, "'%s' token list --data '%s' alice | grep -c laptop", TH_BIN, dir) == 1);
	CHECK(t_sh(NULL, "'%s' token create --data '%s' --scope owner alice 2>/dev/null", TH_BIN,
	           dir) == 2);
	/* The plain form keeps working: a token with every right. */
	CHECK(t_sh(&out, "'%s' token create --data '%s' alice 2>/dev/null", TH_BIN, dir) == 0);
	out[strcspn(out, "\n")] = '\0';
	t_secret(out);
	r = t_http(&srv, AUTH "'%s/user'", out, srv.base);
	CHECK_STR(t_str(&r, "scope"), "admin");
	t_resp_free(&r);
	free(out);
	free(ro);
	free(rw);
}

static void test_token_events(void)
{
	/* Token changes are in the trail, with who and from where, and no secret. */
	char *out = NULL;

	CHECK(t_sh(&out,
	           "sqlite3 '%s/meta.sqlite' \"SELECT action || ' ' || actor || ' ' || address "
	           "FROM events WHERE db_id = 0 ORDER BY id\"",
	           dir) == 0);
	CHECK_CONTAINS(out, "user.register bob 127.0.0.1");
	CHECK_CONTAINS(out, "session.login bob 127.0.0.1");
	CHECK_CONTAINS(out, "session.logout bob 127.0.0.1");
	CHECK_CONTAINS(out, "token.create alice 127.0.0.1");
	CHECK_CONTAINS(out, "token.revoke alice 127.0.0.1");
	CHECK_CONTAINS(out, "token.revoke alice \n"); /* from the command line */
	CHECK(strstr(out, "thp_") == NULL);
	free(out);
}

/* Every password and token used above, and any token at all, is absent from the log. */
static void test_log_has_no_secrets(void)
{
	CHECK(t_nsecrets > 10);
	CHECK(t_secrets_check_log(&srv) == 0);
}

int main(void)
{
	const char *extra[] = { "--rate-per-address", "0", "--rate-per-token", "0", NULL };

	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, extra) < 0)
		return 1;
	alice = t_user(&srv, "alice");
	if (alice == NULL) {
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	RUN(test_register);
	RUN(test_no_signup);
	RUN(test_login_and_cookie);
	RUN(test_login_limits);
	RUN(test_tokens);
	RUN(test_token_events);
	RUN(test_log_has_no_secrets);
	t_server_stop(&srv, SIGTERM);
	t_secrets_free();
	free(alice);
	t_rmdir(dir);
	TH_TEST_END();
}
