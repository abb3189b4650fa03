/* accounts.c: accounts, browser sessions and API tokens.
 *
 *   POST   /api/v1alpha1/users                {username, email, password}: register (off with
 *                                             `serve --no-signup`; `tablehub user add` works on)
 *   POST   /login                             {username, password} as JSON or a form: a session
 *                                             cookie and the CSRF token its unsafe calls send
 *   POST   /logout                            end the session of the cookie
 *   GET    /api/v1alpha1/user/tokens          the caller's API tokens, never their secrets
 *   POST   /api/v1alpha1/user/tokens          {name, scope, expiresInDays}: the secret, once
 *   DELETE /api/v1alpha1/user/tokens/{id}     revoke
 *
 * Sessions: the cookie th_session holds a session secret ("ths_" + 64 hex digits), kept in the
 * store only as its SHA-256, like an API token, and valid for SESSION_DAYS. It is HttpOnly (no
 * script reads it) and SameSite=Strict (no other site's page sends it), and Secure when the
 * server is told it sits behind https (`serve --cookie-secure`, or a proxy's
 * X-Forwarded-Proto: https); on plain http, as on a loopback address, a Secure cookie would never
 * come back, so it is off there. Unsafe calls made with the cookie also need the session's CSRF
 * token (auth.c); calls with an API token in the authorization header need none.
 *
 * Logins are limited per address (every attempt) and per user name (every failure), answered 429
 * with Retry-After (limit.h); a password is verified with Argon2id outside any lock. Passwords
 * and secrets are never logged, echoed or kept: request bodies that held one are wiped once read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "limit.h"
#include "tablehub/meta.h"
#include "tablehub/meta_access.h"
#include "tablehub/password.h"
#include "tablehub/text.h"

#define API "/api/v1alpha1"
#define SESSION_DAYS 7
#define DAY_MS ((int64_t)86400000)
#define MAX_TOKEN_DAYS 3650

static int register_user(th_req *req, th_error *err);
static int login(th_req *req, th_error *err);
static int logout(th_req *req, th_error *err);
static int tokens_list(th_req *req, th_error *err);
static int tokens_create(th_req *req, th_error *err);
static int tokens_revoke(th_req *req, th_error *err);

const api_route api_accounts_routes[] = {
	{ "POST", API "/users", register_user, R_JSON },
	{ "POST", "/login", login, R_FORM },
	{ "POST", "/logout", logout, R_AUTH },
	{ "GET", API "/user/tokens", tokens_list, R_ADMIN },
	{ "POST", API "/user/tokens", tokens_create, R_ADMIN | R_JSON },
	{ "DELETE", API "/user/tokens/:token_id", tokens_revoke, R_ADMIN },
	{ NULL, NULL, NULL, 0 }
};

/* Names that are path words of the API or the pages: an account of that name would have its
 * databases' URLs taken by them. */
static const char *const reserved[] = { "api",          "csv",    "database", "databases",
	                                "fork",         "login",  "logout",   "operations",
	                                "repositories", "signin", "user",     "users",
	                                "web",          NULL };

static int oom(th_error *err)
{
	return th_error_set(err, TH_ENOMEM, "out of memory");
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reply 429 with Retry-After. */
static int too_many(th_req *req, unsigned wait_s, const char *what)
{
	char msg[160], after[16];

	snprintf(msg, sizeof(msg), "too many %s: retry in %u s", what, wait_s);
	snprintf(after, sizeof(after), "%u", wait_s);
	(void)api_reply_error(req, MHD_HTTP_TOO_MANY_REQUESTS, "ETOOMANY", msg);
	if (req->resp != NULL)
		MHD_add_response_header(req->resp, MHD_HTTP_HEADER_RETRY_AFTER, after);
	return TH_OK;
}

/* Wipe the request's body and the password in its parsed JSON. */
static void wipe_body(th_req *req)
{
	cJSON *pw = cJSON_GetObjectItemCaseSensitive(req->json, "password");

	if (cJSON_IsString(pw) && pw->valuestring != NULL)
		th_secure_zero(pw->valuestring, strlen(pw->valuestring));
	if (req->body != NULL)
		th_secure_zero(req->body, req->body_len);
}

static cJSON *add_time(cJSON *obj, const char *key, int64_t ms)
{
	char t[32];

	if (ms == 0)
		return cJSON_AddNullToObject(obj, key);
	th_time_fmt(t, ms);
	return cJSON_AddStringToObject(obj, key, t);
}

/* --- register -------------------------------------------------------------------------------- */

static int register_user(th_req *req, th_error *err)
{
	const char *name, *email, *password;
	char addr_key[80];
	unsigned wait_s;
	th_event_new ev;
	cJSON *body;
	int error;

	if (req->srv->cfg.no_signup) {
		error = th_error_set(err, TH_EFORBIDDEN,
		                     "sign-up is switched off on this server: an administrator "
		                     "adds accounts with 'tablehub user add'");
		goto done;
	}
	if ((error = api_json_get_str(&name, req->json, "username", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&email, req->json, "email", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&password, req->json, "password", 1, "", err)) < 0)
		goto done;
	api_echo(req, "username", name);
	for (int i = 0; reserved[i] != NULL; i++) {
		if (strcasecmp(name, reserved[i]) == 0) {
			error = th_error_set(err, TH_EINVALID, "the user name '%s' is reserved",
			                     name);
			goto done;
		}
	}
	/* A registration costs a password hash: it shares the address's login budget. */
	snprintf(addr_key, sizeof(addr_key), "a:%s", api_client_addr(req));
	if ((wait_s = api_limiter_check(req->srv->login_addr, addr_key, mono_ms(), 1)) > 0) {
		error = too_many(req, wait_s, "sign-ups and logins from this address");
		goto done;
	}
	ev = api_event(req, "user.register", name, NULL);
	ev.actor = name;
	if ((error = th_meta_user_register(req->srv->meta, name, email, password, strlen(password),
	                                   &ev, err)) < 0)
		goto done;
	if ((body = api_success()) == NULL || !api_json_str(body, "username", name) ||
	    !api_json_str(body, "email", email)) {
		cJSON_Delete(body);
		error = oom(err);
		goto done;
	}
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
done:
	wipe_body(req);
	return error;
}

/* --- login, logout --------------------------------------------------------------------------- */

/* Decode application/x-www-form-urlencoded `s` in place ('+' is a space, %XX a byte). Returns 0,
 * or -1 for a bad escape. */
static int form_decode(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (*s == '+') {
			*w++ = ' ';
		} else if (*s == '%') {
			int hi = th_hexval(s[1]), lo = hi < 0 ? -1 : th_hexval(s[2]);
			if (lo < 0)
				return -1;
			*w++ = (char)(hi * 16 + lo);
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return 0;
}

/* The username and password of a login body, JSON or a form, as pool strings. */
static int login_fields(const char **user, const char **pass, size_t *pass_len, th_req *req,
                        th_error *err)
{
	size_t lead;

	*user = *pass = NULL;
	if (req->body == NULL || req->body_len == 0)
		return th_error_set(err, TH_EINVALID,
		                    "send {\"username\", \"password\"} as JSON or a form");
	/* The body tells which it is (curl -d sends JSON labelled as a form): JSON is an object. */
	lead = strspn(req->body, " \t\r\n");
	if (req->body[lead] != '{') {
		char *copy = api_pool_strndup(&req->pool, req->body, req->body_len), *save = NULL;
		if (copy == NULL)
			return oom(err);
		for (char *kv = strtok_r(copy, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(kv, '=');
			if (eq == NULL)
				continue;
			*eq = '\0';
			if (form_decode(kv) < 0 || form_decode(eq + 1) < 0)
				return th_error_set(err, TH_EINVALID, "malformed form body");
			if (strcmp(kv, "username") == 0)
				*user = eq + 1;
			else if (strcmp(kv, "password") == 0)
				*pass = eq + 1;
		}
		/* The copy is wiped by the caller through *pass; the rest holds no secret. */
		if (*user == NULL || *pass == NULL)
			return th_error_set(err, TH_EINVALID,
			                    "the form needs 'username' and 'password'");
		*pass_len = strlen(*pass);
		return TH_OK;
	}
	req->json = cJSON_ParseWithLength(req->body, req->body_len);
	if (!cJSON_IsObject(req->json))
		return th_error_set(err, TH_EINVALID,
		                    "send {\"username\", \"password\"} as JSON or a form");
	if (api_json_get_str(user, req->json, "username", 1, "", err) < 0 ||
	    api_json_get_str(pass, req->json, "password", 1, "", err) < 0)
		return TH_EINVALID;
	*pass_len = strlen(*pass);
	return TH_OK;
}

/* A login form posted from another site's page would sign the browser in as the attacker (login
 * CSRF): when the browser says where the request comes from, it must be this server. */
static int same_origin(th_req *req)
{
	const char *origin = api_header(req, "Origin"), *host = api_header(req, "Host");

	if (origin == NULL)
		return 1;
	if (strncmp(origin, "http://", 7) == 0)
		origin += 7;
	else if (strncmp(origin, "https://", 8) == 0)
		origin += 8;
	else
		return 0;
	return host != NULL && strcasecmp(origin, host) == 0;
}

static int secure_cookies(th_req *req)
{
	const char *proto = api_header(req, "X-Forwarded-Proto");

	return req->srv->cfg.cookie_secure || (proto != NULL && strcasecmp(proto, "https") == 0);
}

static int login(th_req *req, th_error *err)
{
	const char *user = NULL, *pass = NULL;
	char addr_key[80], user_key[80], secret[TH_TOKEN_SIZE], csrf[65], cookie[200];
	th_token_spec spec = { NULL, "session", TH_ROLE_ADMIN, TH_TOKEN_SESSION, 0 };
	th_token_info info;
	th_event_new ev;
	size_t pass_len = 0;
	unsigned wait_s;
	cJSON *body;
	int error;

	if (!same_origin(req)) {
		error = th_error_set(err, TH_EFORBIDDEN,
		                     "a login from another site's page is "
		                     "refused");
		goto done;
	}
	if ((error = login_fields(&user, &pass, &pass_len, req, err)) < 0)
		goto done;
	snprintf(addr_key, sizeof(addr_key), "a:%s", api_client_addr(req));
	snprintf(user_key, sizeof(user_key), "u:%.64s", user);
	if ((wait_s = api_limiter_check(req->srv->login_addr, addr_key, mono_ms(), 1)) > 0) {
		error = too_many(req, wait_s, "logins from this address");
		goto done;
	}
	if ((wait_s = api_limiter_check(req->srv->login_user, user_key, mono_ms(), 0)) > 0) {
		error = too_many(req, wait_s, "failed logins for this user");
		goto done;
	}
	error = th_meta_user_check_password(req->srv->meta, user, pass, pass_len, err);
	th_secure_zero((char *)(uintptr_t)pass, pass_len);
	if (error == TH_EAUTH) {
		api_limiter_charge(req->srv->login_user, user_key, mono_ms());
		goto done;
	}
	if (error < 0)
		goto done;
	api_limiter_forget(req->srv->login_user, user_key);
	spec.user = user;
	spec.expires_at = th_now_ms() + SESSION_DAYS * DAY_MS;
	ev = api_event(req, "session.login", user, NULL);
	ev.actor = user;
	if ((error = th_meta_token_issue(secret, &info, req->srv->meta, &spec, &ev, err)) < 0)
		goto done;
	api_csrf_of(csrf, secret);
	snprintf(cookie, sizeof(cookie),
	         "th_session=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s", secret,
	         SESSION_DAYS * 86400, secure_cookies(req) ? "; Secure" : "");
	th_secure_zero(secret, sizeof(secret));
	if ((body = api_success()) == NULL || !api_json_str(body, "username", user) ||
	    !api_json_str(body, "csrf_token", csrf) ||
	    !add_time(body, "expires_at", info.expires_at)) {
		cJSON_Delete(body);
		error = oom(err);
	} else if ((error = api_reply_json(req, MHD_HTTP_OK, body, err)) == TH_OK) {
		MHD_add_response_header(req->resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
		MHD_add_response_header(req->resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	}
	th_secure_zero(cookie, sizeof(cookie));
done:
	wipe_body(req);
	return error;
}

static int logout(th_req *req, th_error *err)
{
	th_event_new ev = api_event(req, "session.logout", req->user, NULL);
	char cookie[160];
	int error;

	if (!req->by_cookie)
		return th_error_set(
		        err, TH_EINVALID,
		        "POST /logout ends the session of a browser's cookie; revoke an "
		        "API token with DELETE /api/v1alpha1/user/tokens/{token_id}");
	if ((error = th_meta_token_revoke(req->srv->meta, req->user, req->token_id, &ev, err)) < 0)
		return error;
	snprintf(cookie, sizeof(cookie),
	         "th_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
	         secure_cookies(req) ? "; Secure" : "");
	if ((error = api_reply_json(req, MHD_HTTP_OK, api_success(), err)) == TH_OK)
		MHD_add_response_header(req->resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	return error;
}

/* --- tokens ---------------------------------------------------------------------------------- */

/* Add what a token's list entry shows (never its secret or hash) to `it`; 0 when out of memory. */
static int token_fields(cJSON *it, const th_token_info *t)
{
	char id[24];

	snprintf(id, sizeof(id), "%lld", (long long)t->token_id);
	return it != NULL && api_json_str(it, "token_id", id) &&
	       api_json_str(it, "name", t->name) &&
	       api_json_str(it, "scope", th_role_name(t->scope)) &&
	       add_time(it, "created_at", t->created_at) &&
	       add_time(it, "last_used_at", t->last_used_at) &&
	       add_time(it, "expires_at", t->expires_at) &&
	       cJSON_AddBoolToObject(it, "expired",
	                             t->expires_at != 0 && t->expires_at <= th_now_ms());
}

static int tokens_list(th_req *req, th_error *err)
{
	th_token_list l = { NULL, 0 };
	cJSON *body = NULL, *arr;
	int error;

	if ((error = th_meta_token_list(&l, req->srv->meta, req->user, err)) < 0)
		return error;
	if ((body = api_success()) == NULL || !api_json_str(body, "username", req->user) ||
	    (arr = cJSON_AddArrayToObject(body, "tokens")) == NULL)
		goto nomem;
	for (size_t i = 0; i < l.n; i++) {
		cJSON *it = cJSON_CreateObject();
		if (it == NULL || !cJSON_AddItemToArray(arr, it)) {
			cJSON_Delete(it);
			goto nomem;
		}
		if (!token_fields(it, &l.items[i]))
			goto nomem;
	}
	th_token_list_dispose(&l);
	return api_reply_json(req, MHD_HTTP_OK, body, err);
nomem:
	cJSON_Delete(body);
	th_token_list_dispose(&l);
	return oom(err);
}

static int tokens_create(th_req *req, th_error *err)
{
	const cJSON *days = cJSON_GetObjectItemCaseSensitive(req->json, "expiresInDays");
	th_token_spec spec = { req->user, NULL, TH_ROLE_NONE, TH_TOKEN_API, 0 };
	const char *name, *scope;
	char secret[TH_TOKEN_SIZE];
	th_token_info info;
	th_event_new ev;
	cJSON *body = NULL, *detail = NULL;
	char *detail_text = NULL;
	int error;

	if ((error = api_json_get_str(&name, req->json, "name", 1, "", err)) < 0 ||
	    (error = api_json_get_str(&scope, req->json, "scope", 1, "", err)) < 0 ||
	    (error = th_role_parse(&spec.scope, scope, "scope", err)) < 0)
		return error;
	if (name[0] == '\0')
		return th_error_set(err, TH_EINVALID, "'name' must not be empty");
	spec.name = name;
	if (days != NULL && !cJSON_IsNull(days)) {
		if (!cJSON_IsNumber(days) || days->valuedouble != (double)(int)days->valuedouble ||
		    days->valueint < 1 || days->valueint > MAX_TOKEN_DAYS)
			return th_error_set(
			        err, TH_EINVALID,
			        "'expiresInDays' must be a whole number from 1 to %d, or "
			        "null for a token that does not expire",
			        MAX_TOKEN_DAYS);
		spec.expires_at = th_now_ms() + (int64_t)days->valueint * DAY_MS;
	}
	if ((detail = cJSON_CreateObject()) == NULL || !api_json_str(detail, "name", name) ||
	    !api_json_str(detail, "scope", th_role_name(spec.scope)) ||
	    (detail_text = cJSON_PrintUnformatted(detail)) == NULL) {
		error = oom(err);
		goto cleanup;
	}
	ev = api_event(req, "token.create", NULL, detail_text);
	ev.db_id = 0;
	if ((error = th_meta_token_issue(secret, &info, req->srv->meta, &spec, &ev, err)) < 0)
		goto cleanup;
	/* The token's fields and its secret, shown this once. */
	if ((body = api_success()) == NULL || !token_fields(body, &info) ||
	    !api_json_str(body, "token", secret)) {
		th_secure_zero(secret, sizeof(secret));
		error = oom(err);
		goto cleanup;
	}
	th_secure_zero(secret, sizeof(secret));
	error = api_reply_json(req, MHD_HTTP_OK, body, err);
	body = NULL;
	if (req->resp != NULL)
		MHD_add_response_header(req->resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
cleanup:
	cJSON_Delete(body);
	cJSON_Delete(detail);
	cJSON_free(detail_text);
	return error;
}

static int tokens_revoke(th_req *req, th_error *err)
{
	const char *id = api_cap(req, "token_id");
	th_event_new ev = api_event(req, "token.revoke", id, NULL);
	cJSON *body;
	int error;

	ev.db_id = 0;
	api_echo(req, "token_id", id);
	error = th_meta_token_revoke(req->srv->meta, req->user, strtoll(id, NULL, 10), &ev, err);
	if (error == TH_ENOTFOUND)
		return th_error_set(err, TH_ENOTFOUND, "you have no token %s", id);
	if (error < 0)
		return error;
	if ((body = api_success()) == NULL || !api_json_str(body, "token_id", id)) {
		cJSON_Delete(body);
		return oom(err);
	}
	return api_reply_json(req, MHD_HTTP_OK, body, err);
}
