/* test_api_keyforms.c: the token in Sqlify's forms beside DoltHub's: an X-Api-Key header, and
 * HTTP basic auth with the token as the user name and an empty password (`curl -u "$T:"`). Each
 * gives the same user and scope as `authorization: token T`: a read token reads and cannot
 * write, a revoked or unknown one is 401, basic auth with a password or malformed is 401. The
 * parsers (base64, basic credentials) are checked in-process too. */
#include "../harness.h"
#include "server.h"
#include "../../api/api.h"

static t_server srv;
static char *dir, *alice, *reader;

static void test_parsers(void)
{
	unsigned char out[64];
	char tok[64];

	CHECK(api_base64_decode(out, sizeof(out), "aGVsbG8=", 8) == 5 &&
	      memcmp(out, "hello", 5) == 0);
	CHECK(api_base64_decode(out, sizeof(out), "aGVsbG8", 7) == 5);
	CHECK(api_base64_decode(out, sizeof(out), "", 0) == 0);
	CHECK(api_base64_decode(out, sizeof(out), "aGVs bG8=", 9) == -1);
	CHECK(api_base64_decode(out, sizeof(out), "QR==", 4) == -1); /* stray bits */
	CHECK(api_base64_decode(out, sizeof(out), "Q", 1) == -1);
	CHECK(api_base64_decode(out, 2, "aGVsbG8=", 8) == -1); /* does not fit */
	/* "tok:" */
	CHECK(api_token_from_basic(tok, sizeof(tok), "Basic dG9rOg==") == 1);
	CHECK_STR(tok, "tok");
	CHECK(api_token_from_basic(tok, sizeof(tok), "  basic   dG9rOg==  ") == 1);
	CHECK(api_token_from_basic(tok, sizeof(tok), "token abc") == 0);
	CHECK(api_token_from_basic(tok, sizeof(tok), "Basic dG9rOnB3") == -1); /* tok:pw */
	CHECK(api_token_from_basic(tok, sizeof(tok), "Basic dG9r") == -1);     /* no colon */
	CHECK(api_token_from_basic(tok, sizeof(tok), "Basic Og==") == -1);     /* ":" alone */
	CHECK(api_token_from_basic(tok, sizeof(tok), "Basic !!!") == -1);
}

/* GET /user with the curl arguments `how` with "@" replaced by the token; returns the status,
 * the user and scope in *user and *scope (malloc'd, or NULL). */
static int whoami(const char *how, const char *token, char **user, char **scope)
{
	char args[512];
	const char *at = strchr(how, '@');
	t_resp r;
	int status;

	snprintf(args, sizeof(args), "%.*s%s%s", (int)(at - how), how, token, at + 1);
	r = t_http(&srv, "%s '%s/user'", args, srv.base);
	status = r.status;
	if (user)
		*user = t_str(&r, "username") ? strdup(t_str(&r, "username")) : NULL;
	if (scope)
		*scope = t_str(&r, "scope") ? strdup(t_str(&r, "scope")) : NULL;
	t_resp_free(&r);
	return status;
}

static void test_same_user_and_scope(void)
{
	static const char *const forms[] = { "-H 'authorization: token @'",
		                             "-H 'authorization: Bearer @'", "-H 'X-Api-Key: @'",
		                             "-u '@:'" };
	char *user, *scope;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		CHECK(whoami(forms[i], alice, &user, &scope) == 200);
		CHECK_STR(user, "alice");
		CHECK_STR(scope, "admin");
		free(user);
		free(scope);
		CHECK(whoami(forms[i], reader, &user, &scope) == 200);
		CHECK_STR(scope, "read");
		free(user);
		free(scope);
	}
}

static void test_refused(void)
{
	t_resp r;

	CHECK(whoami("-H 'X-Api-Key: @'", "thp_notatoken", NULL, NULL) == 401);
	CHECK(whoami("-u '@:'", "thp_notatoken", NULL, NULL) == 401);
	CHECK(whoami("-u '@:secret'", alice, NULL, NULL) == 401); /* a password: not our form */
	CHECK(whoami("-H 'authorization: Basic @'", "!!!", NULL, NULL) == 401);
	r = t_http(&srv, "-u 'x:y' '%s/user'", srv.base);
	CHECK(r.status == 401);
	CHECK_STR(t_str(&r, "message"), "invalid basic authorization: send the token as the user "
	                                "name and an empty password");
	t_resp_free(&r);
	/* No credential at all: still 401 where one is needed. */
	CHECK(whoami("@", "", NULL, NULL) == 401);
}

/* The scope holds in every form: basic and X-Api-Key write with a write token, and a read token
 * cannot. */
static void test_writes(void)
{
	t_resp r;

	r = t_http(&srv,
	           "-u '%s:' -H 'content-type: application/json' -d '{\"ownerName\":\"alice\","
	           "\"repoName\":\"viabasic\",\"visibility\":\"private\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv,
	           "-H 'X-Api-Key: %s' -H 'content-type: application/json' -d "
	           "'{\"ownerName\":\"alice\",\"repoName\":\"viakey\"}' '%s/database'",
	           alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv,
	           "-H 'X-Api-Key: %s' -H 'content-type: application/json' -d "
	           "'{\"ownerName\":\"alice\",\"repoName\":\"nope\"}' '%s/database'",
	           reader, srv.base);
	CHECK(r.status == 403);
	t_resp_free(&r);
	/* The private database is visible through either form, and hidden without a token. */
	r = t_http(&srv, "-H 'X-Api-Key: %s' '%s/alice/viabasic/branches'", alice, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, "-u '%s:' '%s/alice/viabasic/branches'", reader, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv, "'%s/alice/viabasic/branches'", srv.base);
	CHECK(r.status == 404);
	t_resp_free(&r);
}

int main(void)
{
	RUN(test_parsers);
	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, NULL) < 0)
		return 1;
	alice = t_user_add(&srv, "alice");
	if (alice == NULL || t_sh(&reader,
	                          "'%s' token create --data '%s' --scope read alice "
	                          "2>/dev/null",
	                          TH_BIN, dir) != 0) {
		fprintf(stderr, "users and tokens could not be made\n");
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	reader[strcspn(reader, "\n")] = '\0';
	RUN(test_same_user_and_scope);
	RUN(test_refused);
	RUN(test_writes);
	CHECK(t_server_stop(&srv, SIGTERM) == 0);
	free(alice);
	free(reader);
	t_rmdir(dir);
	TH_TEST_END();
}
