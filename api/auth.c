/* auth.c: who is calling, and whether they may do what the route does.
 *
 * Who: the authorization header carries an API token in one of the forms DoltHub's clients send:
 * "token T" (DoltHub's documented form), a bare "T" (its older examples) or "Bearer T" (its v2
 * API), or as Sqlify's clients send it: HTTP basic auth with the token as the user name and an
 * empty password (`curl -u "$T:"`), or an X-Api-Key header alone. The same token gives the same
 * user and scope in every form. Without one, a browser's session cookie (th_session, set by
 * POST /login) is taken. Either
 * goes to the meta store, which keeps only hashes, compares them in constant time and refuses a
 * revoked or expired one at once: nothing here caches a credential, keeps it or logs it.
 *
 * What: api_authorize checks the route's flags (R_READ, R_WRITE, R_ADMIN, R_AUTH; see api.h) in
 * this order, so that a private database never shows more than a missing one would:
 *   1. the database of :owner/:db, and the caller's role there (owner admin, collaborator role,
 *      read on a public database); no role at all is a 404 exactly as for a missing database;
 *   2. a signed-out caller where a signed-in one is needed: 401;
 *   3. a session cookie on an unsafe method without the session's CSRF token: 403;
 *   4. a credential whose scope is below the route's need, or below write on an unsafe method:
 *      403;
 *   5. a role below the route's need, or (R_SELF) another user's name in the path: 403.
 * The role that passed (capped by the scope) is left in req->role for handlers that decide more
 * (a pull's author may close it; a protected branch may want admin to merge).
 *
 * CSRF: the token is SHA-256 of a fixed label and the session secret. Only someone who holds the
 * cookie can compute it, and the cookie is HttpOnly and SameSite=Strict; API tokens in a header
 * need none, since a browser never sends them by itself.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "tablehub/hash.h"
#include "tablehub/meta.h"
#include "tablehub/password.h"

#define SESSION_COOKIE "th_session"
#define CSRF_LABEL "tablehub csrf v1\n"

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

const char *api_token_from_header(const char *value, size_t *len)
{
	const char *p = value, *end;

	if (value == NULL)
		return NULL;
	while (is_space(*p))
		p++;
	if (strncasecmp(p, "token", 5) == 0 && is_space(p[5]))
		p += 5;
	else if (strncasecmp(p, "bearer", 6) == 0 && is_space(p[6]))
		p += 6;
	while (is_space(*p))
		p++;
	end = p + strlen(p);
	while (end > p && is_space(end[-1]))
		end--;
	if (end == p)
		return NULL;
	/* A token is one word: "token a b" is not a token. */
	for (const char *q = p; q < end; q++)
		if (is_space(*q))
			return NULL;
	*len = (size_t)(end - p);
	return p;
}

int api_token_from_basic(char *out, size_t size, const char *value)
{
	unsigned char raw[256];
	const char *p = value, *end;
	unsigned char *colon;
	long n;

	while (is_space(*p))
		p++;
	if (strncasecmp(p, "basic", 5) != 0 || !is_space(p[5]))
		return 0;
	p += 5;
	while (is_space(*p))
		p++;
	end = p + strlen(p);
	while (end > p && is_space(end[-1]))
		end--;
	n = api_base64_decode(raw, sizeof(raw) - 1, p, (size_t)(end - p));
	/* "T:" exactly: a user name, the colon, no password (and no NUL inside). */
	if (n < 2 || (colon = memchr(raw, ':', (size_t)n)) == NULL || colon != raw + n - 1 ||
	    memchr(raw, '\0', (size_t)n) != NULL || (size_t)(n - 1) >= size) {
		th_secure_zero(raw, sizeof(raw));
		return -1;
	}
	memcpy(out, raw, (size_t)(n - 1));
	out[n - 1] = '\0';
	th_secure_zero(raw, sizeof(raw));
	return 1;
}

/* The value of cookie `name` in a Cookie header ("a=1; th_session=ths_..."), copied into out
 * (size bytes); 0 when absent or too long. */
static int cookie_value(char *out, size_t size, const char *header, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = header;

	while (p != NULL && *p) {
		const char *end;
		size_t vlen;
		while (*p == ' ' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			vlen = (size_t)(end - p) - nlen - 1;
			while (vlen > 0 && is_space(p[nlen + 1 + vlen - 1]))
				vlen--;
			if (vlen == 0 || vlen >= size)
				return 0;
			memcpy(out, p + nlen + 1, vlen);
			out[vlen] = '\0';
			return 1;
		}
		p = end;
	}
	return 0;
}

int api_has_credential(const th_req *req)
{
	const char *c = api_header(req, MHD_HTTP_HEADER_COOKIE);

	return api_header(req, MHD_HTTP_HEADER_AUTHORIZATION) != NULL ||
	       api_header(req, "X-Api-Key") != NULL ||
	       (c != NULL && strstr(c, SESSION_COOKIE "=") != NULL);
}

void api_csrf_of(char out[65], const char *secret)
{
	char buf[sizeof(CSRF_LABEL) + TH_TOKEN_SIZE];
	size_t n = sizeof(CSRF_LABEL) - 1, len = strlen(secret);

	memcpy(buf, CSRF_LABEL, n);
	memcpy(buf + n, secret, len);
	th_sha256_hex(out, buf, n + len);
	th_secure_zero(buf, sizeof(buf));
}

/* Take the session of the cookie, if it is live. A stale cookie is no error: the browser keeps
 * sending it after the session ended, and the caller is simply signed out. */
static int auth_cookie(th_req *req, th_error *err)
{
	const char *header = api_header(req, MHD_HTTP_HEADER_COOKIE);
	char secret[TH_TOKEN_SIZE];
	th_token_info t;
	th_error e = { 0 };
	int error;

	if (header == NULL || !cookie_value(secret, sizeof(secret), header, SESSION_COOKIE))
		return TH_OK;
	error = th_meta_token_auth(&t, req->srv->meta, secret, TH_TOKEN_SESSION, &e);
	if (error == TH_OK) {
		memcpy(req->user, t.user, sizeof(t.user));
		req->scope = t.scope;
		req->token_id = t.token_id;
		req->by_cookie = 1;
		api_csrf_of(req->csrf, secret);
		th_sha256_hex(req->token_key, secret, strlen(secret));
	} else if (error != TH_EAUTH) {
		*err = e;
	}
	th_secure_zero(secret, sizeof(secret));
	return error == TH_EAUTH ? TH_OK : error;
}

int api_auth(th_req *req, th_error *err)
{
	const char *value = api_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *tok;
	char token[256];
	th_token_info t;
	size_t len = 0;
	int error, basic = 0;

	req->user[0] = req->token_key[0] = req->csrf[0] = '\0';
	req->scope = TH_ROLE_READ; /* anonymous callers read what is public */
	req->by_cookie = 0;
	req->token_id = 0;
	if (value == NULL && (value = api_header(req, "X-Api-Key")) == NULL)
		return auth_cookie(req, err);
	if ((basic = api_token_from_basic(token, sizeof(token), value)) < 0)
		return th_error_set(err, TH_EAUTH,
		                    "invalid basic authorization: send the token as the user name "
		                    "and an empty password");
	if (basic) {
		len = strlen(token);
	} else {
		if ((tok = api_token_from_header(value, &len)) == NULL || len >= sizeof(token))
			return th_error_set(err, TH_EAUTH, "invalid authorization header");
		memcpy(token, tok, len);
		token[len] = '\0';
	}
	/* Every request reads the store: a revoked or expired token fails at once, even when it
	 * was revoked by another process (`tablehub token revoke`). */
	if ((error = th_meta_token_auth(&t, req->srv->meta, token, TH_TOKEN_API, err)) == TH_OK) {
		memcpy(req->user, t.user, sizeof(t.user));
		req->scope = t.scope;
		req->token_id = t.token_id;
		th_sha256_hex(req->token_key, token, len); /* the rate limit's key (admit.c) */
	}
	th_secure_zero(token, sizeof(token));
	return error;
}

const char *api_client_addr(const th_req *req)
{
	return req->cn != NULL ? api_conn_addr(req->cn) : "";
}

th_event_new api_event(const th_req *req, const char *action, const char *target,
                       const char *detail)
{
	th_event_new ev = { req->db.id, req->user, action, target, detail, api_client_addr(req) };

	return ev;
}

int api_role_of(th_role *out, th_req *req, const char *user, int64_t db_id, const char *owner,
                int is_private, th_error *err)
{
	th_role r = TH_ROLE_NONE;
	int error;

	if (user[0] != '\0' && strcmp(user, owner) == 0) {
		*out = TH_ROLE_ADMIN;
		return TH_OK;
	}
	if ((error = th_meta_collab_role(&r, req->srv->meta, db_id, user, err)) < 0)
		return error;
	if (!is_private && r < TH_ROLE_READ)
		r = TH_ROLE_READ;
	*out = r;
	return TH_OK;
}

/* Resolve :owner/:db into req->db (cached for a few seconds: visibility does not change). */
static int resolve_db(th_req *req, th_error *err)
{
	const char *owner = api_cap(req, "owner"), *name = api_cap(req, "db");
	char key[140];
	th_db_info d = { 0 };
	int error;

	api_echo(req, "database_owner", owner);
	api_echo(req, "database_name", name);
	snprintf(key, sizeof(key), "%s/%s", owner, name);
	if (api_cache_get(req->srv->dbs, key, &req->db, sizeof(req->db)))
		return TH_OK;
	if ((error = th_meta_db_get(&d, req->srv->meta, owner, name, err)) < 0)
		return error;
	req->db.id = d.id;
	snprintf(req->db.owner, sizeof(req->db.owner), "%s", d.owner);
	snprintf(req->db.name, sizeof(req->db.name), "%s", d.name);
	req->db.is_private = d.is_private;
	th_db_info_dispose(&d);
	api_cache_put(req->srv->dbs, key, &req->db, sizeof(req->db), 0);
	return TH_OK;
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

static int is_safe_method(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0;
}

/* 403 for a credential whose scope is below `need`. */
static int scope_too_low(th_error *err, th_role scope, th_role need)
{
	return th_error_set(err, TH_EFORBIDDEN, "this token's scope is '%s': this needs '%s'",
	                    th_role_name(scope), th_role_name(need));
}

int api_authorize(th_req *req, th_error *err)
{
	unsigned flags = req->route->flags;
	th_role need = (flags & R_ADMIN)   ? TH_ROLE_ADMIN
	               : (flags & R_WRITE) ? TH_ROLE_WRITE
	               : (flags & R_READ)  ? TH_ROLE_READ
	                                   : TH_ROLE_NONE;
	int has_db = api_cap(req, "db") != NULL && api_cap(req, "owner") != NULL;
	int signed_in = req->user[0] != '\0';
	int unsafe = !is_safe_method(req->method);
	th_role role = TH_ROLE_NONE;
	int error;

	req->role = TH_ROLE_NONE;
	/* A route open to everyone asks nothing of a credential (a login form posted by a browser
	 * that still holds a cookie needs no CSRF token). */
	if (flags & R_SELF)
		flags |= R_AUTH;
	if (need == TH_ROLE_NONE && !(flags & R_AUTH))
		return TH_OK;
	if (has_db && need > TH_ROLE_NONE) {
		error = resolve_db(req, err);
		if (error == TH_OK)
			error = api_role_of(&role, req, req->user, req->db.id, req->db.owner,
			                    req->db.is_private, err);
		if (error == TH_ENOTFOUND || (error == TH_OK && role == TH_ROLE_NONE)) {
			/* Private databases of others answer exactly as missing ones. */
			const char *owner = api_cap(req, "owner"), *name = api_cap(req, "db");
			memset(&req->db, 0, sizeof(req->db));
			return th_error_set(err, TH_ENOTFOUND, "database '%s/%s' not found", owner,
			                    name);
		}
		if (error < 0)
			return error;
	}
	if (!signed_in && ((flags & R_AUTH) || need >= TH_ROLE_WRITE))
		return th_error_set(err, TH_EAUTH,
		                    "authentication required: send the header "
		                    "'authorization: token <your token>' or sign in");
	if (req->by_cookie && unsafe) {
		const char *sent = api_header(req, "X-CSRF-Token");
		if (sent == NULL || strlen(sent) != 64 || !th_ct_equal(sent, req->csrf, 64))
			return th_error_set(
			        err, TH_EFORBIDDEN,
			        "missing or wrong CSRF token: send the X-CSRF-Token header "
			        "that POST /login returned");
	}
	if (signed_in && unsafe && req->scope < TH_ROLE_WRITE)
		return th_error_set(err, TH_EFORBIDDEN,
		                    "this token's scope is 'read': it can only "
		                    "read");
	if (has_db && need > TH_ROLE_NONE) {
		th_role eff = role < req->scope ? role : req->scope;
		req->role = eff;
		if (eff >= need)
			return TH_OK;
		if (role >= need)
			return scope_too_low(err, req->scope, need);
		if (!signed_in)
			return th_error_set(err, TH_EAUTH,
			                    "authentication required: send the header "
			                    "'authorization: token <your token>' or "
			                    "sign in");
		return th_error_set(err, TH_EFORBIDDEN, "this needs the %s role on '%s/%s'",
		                    th_role_name(need), req->db.owner, req->db.name);
	}
	if (need > TH_ROLE_READ && req->scope < need)
		return scope_too_low(err, req->scope, need);
	if ((flags & R_SELF) && strcmp(nz(api_cap(req, "user")), req->user) != 0)
		return th_error_set(err, TH_EFORBIDDEN,
		                    "you can list only your own operations (users/%s)", req->user);
	return TH_OK;
}

/* GET /api/v1alpha1/user: who the credential belongs to (DoltHub's fields; tablehub keeps no
 * profile, so those are empty), its scope, and for a session the CSRF token its pages send. */
int api_user_get(th_req *req, th_error *err)
{
	cJSON *body = api_success();

	if (body == NULL || !api_json_str(body, "username", req->user) ||
	    !api_json_str(body, "display_name", req->user) || !api_json_str(body, "bio", "") ||
	    !api_json_str(body, "location", "") || !api_json_str(body, "url", "") ||
	    !api_json_str(body, "profile_picture_url", "") ||
	    !cJSON_AddArrayToObject(body, "email_addresses") ||
	    !api_json_str(body, "scope", th_role_name(req->scope)) ||
	    (req->by_cookie && !api_json_str(body, "csrf_token", req->csrf))) {
		cJSON_Delete(body);
		return th_error_set(err, TH_ENOMEM, "out of memory");
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}
