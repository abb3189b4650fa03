/* accounts.h: helpers for the API tests of accounts, roles and reviews (test_api_accounts,
 * test_api_authz, test_api_teams): register and sign in over HTTP, keep a session's cookie jar and
 * CSRF token, give roles, and remember every password and token a test used so that
 * t_secrets_check_log can assert that none of them ever reached the server's log. */
#ifndef TABLEHUB_TEST_API_ACCOUNTS_H
#define TABLEHUB_TEST_API_ACCOUNTS_H

#include "server.h"

#define T_MAX_SECRETS 256

static char *t_secrets[T_MAX_SECRETS];
static int t_nsecrets;

/* Remember `s` (copied) as a secret that must never appear in a log. */
static inline void t_secret(const char *s)
{
	if (s != NULL && *s != '\0' && t_nsecrets < T_MAX_SECRETS)
		t_secrets[t_nsecrets++] = strdup(s);
}

/* Check that DIR/serve.log holds none of the remembered secrets, nor the hashes of the stored
 * passwords' typical fragments; returns the number found (and prints which). */
static inline int t_secrets_check_log(const t_server *s)
{
	char path[600], *log;
	int found = 0;

	snprintf(path, sizeof(path), "%s/serve.log", s->dir);
	log = t_read_file(path, NULL);
	if (log == NULL)
		return -1;
	for (int i = 0; i < t_nsecrets; i++) {
		if (strstr(log, t_secrets[i]) != NULL) {
			fprintf(stderr, "secret #%d found in the server log\n", i);
			found++;
		}
	}
	/* No token or session secret of any user, whatever the test remembered. */
	if (strstr(log, "thp_") != NULL || strstr(log, "ths_") != NULL ||
	    strstr(log, "$argon2id$") != NULL) {
		fprintf(stderr, "a token, session or password hash is in the server log\n");
		found++;
	}
	free(log);
	return found;
}

static inline void t_secrets_free(void)
{
	for (int i = 0; i < t_nsecrets; i++)
		free(t_secrets[i]);
	t_nsecrets = 0;
}

/* A browser session: its cookie jar (a file in the server's dir) and its CSRF token. */
typedef struct t_session {
	char jar[600];
	char csrf[65];
	char user[65];
} t_session;

/* POST /api/v1alpha1/users; returns the status. The password is remembered as a secret. */
static inline int t_register(const t_server *s, const char *user, const char *email,
                             const char *password)
{
	t_resp r;
	int st;

	t_secret(password);
	r = t_http(s, "-d '{\"username\":\"%s\",\"email\":\"%s\",\"password\":\"%s\"}' '%s/users'",
	           user, email, password, s->base);
	st = r.status;
	t_resp_free(&r);
	return st;
}

/* POST /login as JSON from 127.0.0.1; fills *sess and returns the status. */
static inline int t_login(t_session *sess, const t_server *s, const char *user,
                          const char *password)
{
	t_resp r;
	int st;

	memset(sess, 0, sizeof(*sess));
	snprintf(sess->jar, sizeof(sess->jar), "%s/jar-%s-%d", s->dir, user, t_nsecrets);
	snprintf(sess->user, sizeof(sess->user), "%s", user);
	t_secret(password);
	r = t_http(s,
	           "-c '%s' -d '{\"username\":\"%s\",\"password\":\"%s\"}' "
	           "'http://127.0.0.1:%d/login'",
	           sess->jar, user, password, s->port);
	st = r.status;
	if (st == 200 && t_str(&r, "csrf_token") != NULL)
		snprintf(sess->csrf, sizeof(sess->csrf), "%s", t_str(&r, "csrf_token"));
	t_resp_free(&r);
	/* The jar holds the session secret: remember it too. */
	{
		char *jar = t_read_file(sess->jar, NULL), *p = jar ? strstr(jar, "ths_") : NULL;
		if (p != NULL) {
			p[strcspn(p, "\r\n\t ")] = '\0';
			t_secret(p);
		}
		free(jar);
	}
	return st;
}

/* Curl arguments that send the session's cookie, and its CSRF token when with_csrf. */
#define SESSION "-b '%s' %s%s%s "
#define SESSION_ARGS(sess, with_csrf)                                                              \
	(sess)->jar, (with_csrf) ? "-H 'X-CSRF-Token: " : "", (with_csrf) ? (sess)->csrf : "",     \
	        (with_csrf) ? "'" : ""

/* Create an API token over HTTP with the owner's `token`; returns it (malloc'd) or NULL. */
static inline char *t_token_create(const t_server *s, const char *token, const char *name,
                                   const char *scope)
{
	t_resp r = t_http(s, AUTH "-d '{\"name\":\"%s\",\"scope\":\"%s\"}' '%s/user/tokens'", token,
	                  name, scope, s->base);
	char *t = r.status == 200 && t_str(&r, "token") ? strdup(t_str(&r, "token")) : NULL;

	t_resp_free(&r);
	t_secret(t);
	return t;
}

/* Give `user` `role` on OWNER/DB with the owner's token; returns the status. */
static inline int t_set_role(const t_server *s, const char *owner_token, const char *db,
                             const char *user, const char *role)
{
	t_resp r = t_http(s, AUTH "-X PUT -d '{\"role\":\"%s\"}' '%s/%s/collaborators/%s'",
	                  owner_token, role, s->base, db, user);
	int st = r.status;

	t_resp_free(&r);
	return st;
}

/* `tablehub user add` remembering the token as a secret. */
static inline char *t_user(const t_server *s, const char *name)
{
	char *t = t_user_add(s, name);

	t_secret(t);
	return t;
}

#endif
