/* test_api_authz.c: the authorization matrix. Every route of every route table (read from the
 * tables themselves, api_route_tables) is called on a real server by every kind of caller (the
 * owner; collaborators with the admin, write and read roles; another signed-in user; nobody;
 * the owner's read- and write-scope tokens; the owner's browser session with and without its CSRF
 * token), on a public and on a private database. Each answer must be the one the route's flags
 * state (api.h):
 *   - no read role on a private database: 404, exactly as for a database that does not exist;
 *   - signed out where signing in is needed: 401;
 *   - a session cookie on an unsafe method without the CSRF token, a scope or a role too low: 403;
 *   - otherwise the handler runs (whatever it answers, it is not 401, 403 or that 404).
 * Requests carry no body (handlers that run answer 400 for it) and name things that do not exist
 * where a handler would otherwise change something (pull 999, user "nobody"), so the matrix
 * changes nothing. No refusal may show the private database's description, tables or cells.
 */
#include "../harness.h"
#include "../../api/api.h"
#include "accounts.h"

static t_server srv;
static char *dir;

enum {
	P_OWNER,
	P_ADMIN,
	P_WRITE,
	P_READ,
	P_OTHER,
	P_ANON,
	P_TOKEN_READ,
	P_TOKEN_WRITE,
	P_COOKIE,
	P_COOKIE_NOCSRF,
	NPRINCIPALS
};

/* Each one's user name, for routes about the caller (R_SELF). */
static const char *const uname[NPRINCIPALS] = { "alice",  "adam",  "will",  "rita",  "oscar",
	                                        "nobody", "alice", "alice", "alice", "alice" };

static const char *const pname[NPRINCIPALS] = { "owner",
	                                        "admin",
	                                        "write",
	                                        "read",
	                                        "other user",
	                                        "anonymous",
	                                        "owner's read token",
	                                        "owner's write token",
	                                        "owner's session",
	                                        "owner's session without CSRF" };

typedef struct principal {
	char *token; /* NULL: no authorization header */
	t_session *sess;
	int csrf;
	int role_pub, role_priv; /* 0 none .. 3 admin */
	int scope;               /* 1 read .. 3 admin; 1 for nobody */
	int signed_in;
} principal;

static principal P[NPRINCIPALS];
static t_session owner_session;
static int checked, mismatches, refused[3]; /* 401, 403, 404 */

/* What the route table says `p` gets on a route with these flags: 0 (the handler runs), 401, 403
 * or 404. This is the policy of api.h, written out independently of auth.c. */
static int expected(unsigned flags, int has_db, int unsafe, const principal *p, int private_db)
{
	int need = (flags & R_ADMIN) ? 3 : (flags & R_WRITE) ? 2 : (flags & R_READ) ? 1 : 0;
	int authn = (flags & (R_AUTH | R_SELF)) || need >= 2;
	int role = private_db ? p->role_priv : p->role_pub;

	if (need == 0 && !authn)
		return 0;
	if (has_db && role == 0)
		return 404;
	if (!p->signed_in && authn)
		return 401;
	if (p->sess != NULL && unsafe && !p->csrf)
		return 403;
	if (p->signed_in && unsafe && p->scope < 2)
		return 403;
	if (has_db) {
		int eff = role < p->scope ? role : p->scope;
		if (eff < need)
			return p->signed_in ? 403 : 401;
		return 0;
	}
	if (need > 1 && p->scope < need)
		return 403;
	return 0;
}

/* The path of `pattern` with its captures filled: the database `db`, and names that exist for
 * safe methods (pull 1) but not for unsafe ones (pull 999), so nothing is changed. */
static void fill(char *out, size_t size, const char *pattern, const char *db, int unsafe,
                 const char *self)
{
	const char *p = pattern;
	size_t n = 0;

	out[0] = '\0';
	while (*p && n + 1 < size) {
		const char *seg = p, *end;
		if (*p == '/') {
			out[n++] = '/';
			p++;
			continue;
		}
		end = strchr(seg, '/');
		if (end == NULL)
			end = seg + strlen(seg);
		if (*seg == ':' || *seg == '*') {
			char name[32];
			const char *v = "x";
			snprintf(name, sizeof(name), "%.*s", (int)(end - seg - 1), seg + 1);
			if (strcmp(name, "owner") == 0)
				v = "alice";
			else if (strcmp(name, "db") == 0)
				v = db;
			else if (strcmp(name, "id") == 0)
				v = unsafe ? "999" : "1";
			else if (strcmp(name, "user") == 0)
				v = self;
			else if (strcmp(name, "branch") == 0 || strcmp(name, "ref") == 0)
				v = "main";
			else if (strcmp(name, "token_id") == 0)
				v = "999999";
			n += (size_t)snprintf(out + n, size - n, "%s", v);
		} else {
			n += (size_t)snprintf(out + n, size - n, "%.*s", (int)(end - seg), seg);
		}
		p = end;
	}
	if (n >= size)
		n = size - 1;
	out[n] = '\0';
}

static int has_capture(const char *pattern, const char *name)
{
	const char *p = strstr(pattern, name);

	return p != NULL && (p[strlen(name)] == '/' || p[strlen(name)] == '\0');
}

/* One request of `p`; returns the response. */
static t_resp call(const principal *p, const char *method, const char *path)
{
	char cred[900] = "";
	const char *m = strcmp(method, "HEAD") == 0 ? "-I" : "-X";
	const char *mv = strcmp(method, "HEAD") == 0 ? "" : method;

	if (p->token != NULL)
		snprintf(cred, sizeof(cred), "-H 'authorization: token %s'", p->token);
	else if (p->sess != NULL)
		snprintf(cred, sizeof(cred), SESSION, SESSION_ARGS(p->sess, p->csrf));
	return t_http(&srv, "%s %s %s 'http://127.0.0.1:%d%s'", cred, m, mv, srv.port, path);
}

static void check_one(const api_route *r, int pi, const char *db, int private_db)
{
	char path[512];
	int unsafe = strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0;
	int has_db = has_capture(r->pattern, ":db");
	int want = expected(r->flags, has_db, unsafe, &P[pi], private_db);
	principal p = P[pi];
	t_session fresh;
	t_resp resp;
	int ok;

	/* Routes about the caller (R_SELF) are called with the caller's own name; others with a
	 * user that does not exist. */
	fill(path, sizeof(path), r->pattern, db, unsafe,
	     (r->flags & R_SELF) ? uname[pi] : "nobody");
	/* Logging out ends the session the other rows use: it gets a session of its own. */
	if (strcmp(r->pattern, "/logout") == 0 && p.sess != NULL && want == 0) {
		if (t_login(&fresh, &srv, "alice", "alices password") != 200)
			CHECK(0);
		p.sess = &fresh;
	}
	resp = call(&p, r->method, path);
	checked++;
	if (want == 0) {
		ok = resp.status != 401 && resp.status != 403 &&
		     !(resp.status == 404 && t_str(&resp, "message") != NULL &&
		       strncmp(t_str(&resp, "message"), "database '", 10) == 0);
	} else {
		/* A reply to HEAD has no body to name its code: its status says it all. */
		int body = strcmp(r->method, "HEAD") != 0;
		refused[want == 401 ? 0 : want == 403 ? 1 : 2]++;
		ok = resp.status == want;
		if (ok && body && want == 404)
			ok = t_str(&resp, "message") != NULL &&
			     strcmp(t_str(&resp, "message"), "database 'alice/priv' not found") ==
			             0 &&
			     strcmp(nz(t_str(&resp, "code")), "ENOTFOUND") == 0;
		if (ok && body && want == 401)
			ok = strcmp(nz(t_str(&resp, "code")), "EAUTH") == 0;
		if (ok && body && want == 403)
			ok = strcmp(nz(t_str(&resp, "code")), "EFORBIDDEN") == 0;
		/* A refusal shows nothing of what it protects. */
		if (strstr(resp.body, "topsecret") != NULL ||
		    strstr(resp.body, "hidden_tbl") != NULL)
			ok = 0;
	}
	if (!ok) {
		mismatches++;
		fprintf(stderr, "%s %s as %s on %s: want %s%d, got %d %s\n", r->method, r->pattern,
		        pname[pi], db, want ? "" : "a handler's answer, not ", want ? want : 401,
		        resp.status, resp.body);
	}
	t_resp_free(&resp);
}

static void test_matrix(void)
{
	int nroutes = 0;

	for (size_t t = 0; api_route_tables[t] != NULL; t++) {
		for (const api_route *r = api_route_tables[t]; r->method != NULL; r++) {
			int has_db = has_capture(r->pattern, ":db");
			nroutes++;
			for (int pi = 0; pi < NPRINCIPALS; pi++) {
				check_one(r, pi, "pub", 0);
				if (has_db)
					check_one(r, pi, "priv", 1);
			}
		}
	}
	printf("authorization matrix: %d routes, %d requests (%d refused 401, %d 403, %d 404), %d "
	       "not as the route table says\n",
	       nroutes, checked, refused[0], refused[1], refused[2], mismatches);
	CHECK(nroutes > 40);
	CHECK(refused[0] > 15 && refused[1] > 50 && refused[2] > 50);
	CHECK(mismatches == 0);
}

/* Routes about a user (R_SELF) refuse everyone else's name. */
static void test_self_routes(void)
{
	t_resp r = call(&P[P_WRITE], "GET", "/api/v1alpha1/users/alice/operations");

	CHECK(r.status == 403);
	CHECK_STR(t_str(&r, "code"), "EFORBIDDEN");
	t_resp_free(&r);
	r = call(&P[P_OWNER], "GET", "/api/v1alpha1/users/alice/operations");
	CHECK(r.status == 200);
	t_resp_free(&r);
}

/* What lists show: private databases only to those who may read them. */
static void test_lists_hide_private(void)
{
	t_resp r;

	for (int pi = 0; pi < NPRINCIPALS; pi++) {
		r = call(&P[pi], "GET", "/api/v1alpha1/databases");
		CHECK(r.status == 200);
		if (P[pi].role_priv > 0)
			CHECK_CONTAINS(r.body, "\"database_name\":\"priv\"");
		else
			CHECK(strstr(r.body, "priv") == NULL &&
			      strstr(r.body, "topsecret") == NULL);
		t_resp_free(&r);
	}
	/* The real upload on the private database is as hidden as its name. */
	r = call(&P[P_OTHER], "GET", "/api/v1alpha1/alice/priv/pulls/1");
	CHECK(r.status == 404);
	CHECK(strstr(r.body, "hidden_tbl") == NULL);
	t_resp_free(&r);
	r = call(&P[P_READ], "GET", "/api/v1alpha1/alice/priv/pulls/1");
	CHECK(r.status == 200);
	t_resp_free(&r);
}

/* The routes of requested reviewers state read and a signed-in caller (the matrix above calls
 * them as every principal); the handler then wants the write role or the pull's author, and
 * refuses a read collaborator on a pull they did not open, on either database. */
static void test_reviewer_routes(void)
{
	int found = 0;

	for (size_t t = 0; api_route_tables[t] != NULL; t++)
		for (const api_route *r = api_route_tables[t]; r->method != NULL; r++)
			if (strstr(r->pattern, "/pulls/:id/reviewers") != NULL) {
				found++;
				CHECK((r->flags & (R_READ | R_AUTH)) == (R_READ | R_AUTH));
				CHECK((r->flags & (R_WRITE | R_ADMIN)) == 0);
			}
	CHECK(found == 2);
	for (int priv = 0; priv < 2; priv++) {
		const char *db = priv ? "priv" : "pub";
		t_resp r = t_http(&srv,
		                  AUTH
		                  "-d '{\"reviewers\":[\"adam\"]}' '%s/alice/%s/pulls/1/reviewers'",
		                  P[P_READ].token, srv.base, db);
		CHECK(r.status == 403);
		CHECK_STR(t_str(&r, "code"), "EFORBIDDEN");
		t_resp_free(&r);
		r = t_http(&srv, AUTH "-X DELETE '%s/alice/%s/pulls/1/reviewers/adam'",
		           P[P_READ].token, srv.base, db);
		CHECK(r.status == 403);
		t_resp_free(&r);
		/* The other user sees the public pull but is no collaborator of it. */
		r = t_http(&srv,
		           AUTH "-d '{\"reviewers\":[\"adam\"]}' '%s/alice/%s/pulls/1/reviewers'",
		           P[P_OTHER].token, srv.base, db);
		CHECK(r.status == (priv ? 404 : 403));
		t_resp_free(&r);
	}
}

static char *user_with_role(const char *name, const char *role)
{
	char *tok = t_user(&srv, name);

	if (tok != NULL && role != NULL) {
		CHECK(t_set_role(&srv, P[P_OWNER].token, "alice/pub", name, role) == 200);
		CHECK(t_set_role(&srv, P[P_OWNER].token, "alice/priv", name, role) == 200);
	}
	return tok;
}

static int setup(void)
{
	char *csv;
	t_resp r;
	static const char params[] = "{\"tableName\":\"hidden_tbl\",\"fileName\":\"a.csv\","
	                             "\"branchName\":\"main\",\"fileType\":\"Csv\","
	                             "\"importOp\":\"Create\",\"primaryKeys\":[\"id\"]}";

	P[P_OWNER].token = t_user(&srv, "alice");
	if (P[P_OWNER].token == NULL)
		return -1;
	r = t_http(&srv,
	           AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"pub\",\"visibility\":"
	                "\"public\",\"description\":\"open\"}' '%s/database'",
	           P[P_OWNER].token, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	r = t_http(&srv,
	           AUTH "-d '{\"ownerName\":\"alice\",\"repoName\":\"priv\",\"visibility\":"
	                "\"private\",\"description\":\"topsecret plans\"}' '%s/database'",
	           P[P_OWNER].token, srv.base);
	CHECK(r.status == 200);
	t_resp_free(&r);
	/* An import in each, so pull 1 exists and the private one holds cells to protect. */
	csv = t_write_in(dir, "rows.csv", "id,secret\n1,topsecret-cell\n");
	for (int i = 0; i < 2; i++) {
		const char *db = i ? "alice/priv" : "alice/pub";
		char op[300] = "";
		r = t_upload(&srv, P[P_OWNER].token, db, csv, params);
		CHECK(r.status == 200);
		snprintf(op, sizeof(op), "%s", nz(t_str(&r, "operation_name")));
		t_resp_free(&r);
		r = t_poll(&srv, P[P_OWNER].token, db, op, 60);
		CHECK_STR(t_str(&r, "job_status"), "Completed");
		t_resp_free(&r);
	}
	free(csv);

	P[P_ADMIN].token = user_with_role("adam", "admin");
	P[P_WRITE].token = user_with_role("will", "write");
	P[P_READ].token = user_with_role("rita", "read");
	P[P_OTHER].token = user_with_role("oscar", NULL);
	P[P_TOKEN_READ].token = t_token_create(&srv, P[P_OWNER].token, "matrix read", "read");
	P[P_TOKEN_WRITE].token = t_token_create(&srv, P[P_OWNER].token, "matrix write", "write");
	/* alice came from `user add`: give her a password to sign in with. */
	t_secret("alices password");
	CHECK(t_sh(NULL, "printf 'alices password' | '%s' user passwd --data '%s' alice", TH_BIN,
	           dir) == 0);
	CHECK(t_login(&owner_session, &srv, "alice", "alices password") == 200);
	P[P_COOKIE].sess = P[P_COOKIE_NOCSRF].sess = &owner_session;
	P[P_COOKIE].csrf = 1;

	{
		static const int rp[NPRINCIPALS] = { 3, 3, 2, 1, 1, 1, 3, 3, 3, 3 };
		static const int rv[NPRINCIPALS] = { 3, 3, 2, 1, 0, 0, 3, 3, 3, 3 };
		static const int sc[NPRINCIPALS] = { 3, 3, 3, 3, 3, 1, 1, 2, 3, 3 };
		for (int i = 0; i < NPRINCIPALS; i++) {
			P[i].role_pub = rp[i];
			P[i].role_priv = rv[i];
			P[i].scope = sc[i];
			P[i].signed_in = i != P_ANON;
			if (i != P_ANON && i < P_COOKIE && P[i].token == NULL)
				return -1;
		}
	}
	return 0;
}

static void test_no_secret_in_log(void)
{
	CHECK(t_secrets_check_log(&srv) == 0);
}

int main(void)
{
	const char *extra[] = { "--rate-per-address", "0", "--rate-per-token", "0", NULL };
	int rc;

	dir = t_mkdtemp();
	if (t_server_start(&srv, dir, 0, extra) < 0)
		return 1;
	if (setup() < 0) {
		fprintf(stderr, "set-up failed\n");
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	RUN(test_matrix);
	RUN(test_self_routes);
	RUN(test_lists_hide_private);
	RUN(test_reviewer_routes);
	RUN(test_no_secret_in_log);
	rc = t_server_stop(&srv, SIGTERM);
	CHECK(rc == 0);
	for (int i = 0; i < NPRINCIPALS; i++)
		free(P[i].token);
	t_secrets_free();
	t_rmdir(dir);
	TH_TEST_END();
}
