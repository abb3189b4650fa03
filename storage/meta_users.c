/* meta_users.c: users, their passwords, API tokens and sessions in the SQLite metadata backend
 * (tables users, tokens).
 *
 * Only SHA-256(token) is stored, in hex (the front ends, storage/meta.c and meta_access.c, hash);
 * a lookup finds the row by the hash (an index) and compares the stored hash with CRYPTO_memcmp.
 * Passwords are stored as the Argon2id strings the front end made ("" = no password: users made
 * by `tablehub user add`). A token row is never deleted by a revoke: revoked_at is set, so its id
 * stays taken and the audit trail can name it; only a user's old sessions are pruned. A user and
 * its first token are made in one transaction.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "meta_sql.h"

static const th_msql_stmt user_insert = { MS_USER_INSERT, "insert user",
	                                  "INSERT INTO users(name, created_at) VALUES (?1, ?2)",
	                                  NULL };
static const th_msql_stmt user_get = { MS_USER_GET, "read user",
	                               "SELECT name, created_at FROM users WHERE name = ?1", NULL };
static const th_msql_stmt user_exists = { MS_USER_EXISTS, "read user",
	                                  "SELECT 1 FROM users WHERE name = ?1", NULL };
static const th_msql_stmt token_insert = {
	MS_TOKEN_INSERT, "insert token",
	"INSERT INTO tokens(\"user\", hash, created_at) VALUES (?1, ?2, ?3)", NULL
};
static const th_msql_stmt token_touch = { MS_TOKEN_TOUCH, "record token use",
	                                  "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2",
	                                  NULL };

struct user_new {
	const char *name;
	const char *hash;
};

static int user_create_tx(th_msql *s, void *ctx, th_error *err)
{
	struct user_new *u = ctx;
	int error;

	error = th_msql__run_locked(s, &user_insert, NULL, NULL, err, "si", u->name, th_now_ms());
	if (error == TH_EEXISTS)
		return th_error_set(err, TH_EEXISTS, "user '%s' already exists", u->name);
	if (error < 0)
		return error;
	error = th_msql__run_locked(s, &token_insert, NULL, NULL, err, "ssi", u->name, u->hash,
	                            th_now_ms());
	return error < 0 ? error : TH_OK;
}

int th_msql__user_create(th_meta *m, const char *name, const char *token_hash, th_error *err)
{
	struct user_new u = { name, token_hash };

	return th_msql__tx((th_msql *)m, user_create_tx, &u, err);
}

static int read_user(void *ctx, const th_mrow *st, th_error *err)
{
	th_user_info *u = ctx;

	(void)err;
	th_msql__copy(u->name, sizeof(u->name), st, 0);
	u->created_at = th_msql__int(st, 1);
	return TH_OK;
}

int th_msql__user_get(th_user_info *out, th_meta *m, const char *name, th_error *err)
{
	th_user_info u;
	int n;

	if ((n = th_msql__run((th_msql *)m, &user_get, read_user, &u, err, "s", name)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "user '%s' not found", name);
	*out = u;
	return TH_OK;
}

static int token_create_tx(th_msql *s, void *ctx, th_error *err)
{
	struct user_new *u = ctx;
	int n;

	if ((n = th_msql__run_locked(s, &user_exists, NULL, NULL, err, "s", u->name)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "user '%s' not found", u->name);
	n = th_msql__run_locked(s, &token_insert, NULL, NULL, err, "ssi", u->name, u->hash,
	                        th_now_ms());
	return n < 0 ? n : TH_OK;
}

int th_msql__token_create(th_meta *m, const char *user, const char *token_hash, th_error *err)
{
	struct user_new u = { user, token_hash };

	return th_msql__tx((th_msql *)m, token_create_tx, &u, err);
}

int th_msql__user_exists_locked(th_msql *s, const char *name, th_error *err)
{
	int n = th_msql__run_locked(s, &user_exists, NULL, NULL, err, "s", name);

	return n < 0 ? n : n > 0;
}

/* --- accounts -------------------------------------------------------------------------------- */

static const th_msql_stmt user_register = {
	MS_USER_REGISTER, "insert user",
	"INSERT INTO users(name, created_at, email, password_hash) VALUES (?1, ?2, ?3, ?4)", NULL
};
static const th_msql_stmt user_email_taken = { MS_USER_EMAIL_TAKEN, "read user",
	                                       "SELECT 1 FROM users WHERE lower(email) = lower(?1)",
	                                       NULL };
static const th_msql_stmt user_password_get = { MS_USER_PASSWORD_GET, "read password",
	                                        "SELECT password_hash FROM users WHERE name = ?1",
	                                        NULL };
static const th_msql_stmt user_password_set = {
	MS_USER_PASSWORD_SET, "set password", "UPDATE users SET password_hash = ?2 WHERE name = ?1",
	NULL
};

struct register_args {
	const char *name, *email, *hash;
	const th_event_new *ev;
};

static int register_tx(th_msql *s, void *ctx, th_error *err)
{
	struct register_args *a = ctx;
	int n;

	if ((n = th_msql__user_exists_locked(s, a->name, err)) < 0)
		return n;
	if (n > 0)
		return th_error_set(err, TH_EEXISTS, "user '%s' already exists", a->name);
	if ((n = th_msql__run_locked(s, &user_email_taken, NULL, NULL, err, "s", a->email)) < 0)
		return n;
	if (n > 0)
		return th_error_set(err, TH_EEXISTS, "email address '%s' is taken", a->email);
	if ((n = th_msql__run_locked(s, &user_register, NULL, NULL, err, "siss", a->name,
	                             th_now_ms(), a->email, a->hash)) < 0)
		return n;
	return th_msql__event_locked(s, a->ev, err);
}

int th_msql__user_register(th_meta *m, const char *name, const char *email,
                           const char *password_hash, const th_event_new *ev, th_error *err)
{
	struct register_args a = { name, email, password_hash, ev };

	return th_msql__tx((th_msql *)m, register_tx, &a, err);
}

static int read_password(void *ctx, const th_mrow *st, th_error *err)
{
	(void)err;
	th_msql__copy(ctx, TH_PASSWORD_HASH_SIZE, st, 0);
	return TH_OK;
}

int th_msql__user_password_get(char hash_out[TH_PASSWORD_HASH_SIZE], th_meta *m, const char *name,
                               th_error *err)
{
	char h[TH_PASSWORD_HASH_SIZE] = "";
	int n;

	n = th_msql__run((th_msql *)m, &user_password_get, read_password, h, err, "s", name);
	if (n < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "user '%s' not found", name);
	memcpy(hash_out, h, sizeof(h));
	return TH_OK;
}

int th_msql__user_password_set(th_meta *m, const char *name, const char *password_hash,
                               th_error *err)
{
	int n = th_msql__run((th_msql *)m, &user_password_set, NULL, NULL, err, "ss", name,
	                     password_hash);

	if (n < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "user '%s' not found", name);
	return TH_OK;
}

/* --- tokens and sessions --------------------------------------------------------------------- */

#define TOKEN_COLS "id, \"user\", name, scope, kind, created_at, expires_at, last_used_at"

static const th_msql_stmt token_issue = {
	MS_TOKEN_ISSUE, "insert token",
	"INSERT INTO tokens(\"user\", hash, created_at, name, scope, kind, expires_at) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
	NULL
};
static const th_msql_stmt token_auth = { MS_TOKEN_AUTH, "read token",
	                                 "SELECT " TOKEN_COLS
	                                 ", hash, revoked_at FROM tokens WHERE hash = ?1",
	                                 NULL };
static const th_msql_stmt token_list = {
	MS_TOKEN_LIST, "list tokens",
	"SELECT " TOKEN_COLS " FROM tokens WHERE \"user\" = ?1 AND kind = 'api' AND revoked_at = 0 "
	"ORDER BY id",
	NULL
};
static const th_msql_stmt token_revoke = {
	MS_TOKEN_REVOKE, "revoke token",
	"UPDATE tokens SET revoked_at = ?3 WHERE id = ?2 AND \"user\" = ?1 AND revoked_at = 0", NULL
};
static const th_msql_stmt token_revoke_hash = {
	MS_TOKEN_REVOKE_HASH, "revoke token",
	"UPDATE tokens SET revoked_at = ?2 WHERE hash = ?1 AND revoked_at = 0", NULL
};
/* Sessions that ended more than a day ago: nobody lists them, and a revoked one's hash cannot
 * come back (its secret was random). */
static const th_msql_stmt session_prune = {
	MS_SESSION_PRUNE, "prune sessions",
	"DELETE FROM tokens WHERE \"user\" = ?1 AND kind = 'session' AND ((revoked_at <> 0 AND "
	"revoked_at < ?2) OR (expires_at <> 0 AND expires_at < ?2))",
	NULL
};

static const char *kind_name(th_token_kind k)
{
	return k == TH_TOKEN_SESSION ? "session" : "api";
}

static int read_token_info(void *item, const th_mrow *st, th_error *err)
{
	th_token_info *t = item;
	th_role scope = TH_ROLE_NONE;

	memset(t, 0, sizeof(*t));
	t->token_id = th_msql__int(st, 0);
	th_msql__copy(t->user, sizeof(t->user), st, 1);
	th_msql__copy(t->name, sizeof(t->name), st, 2);
	/* The column's CHECK allows only the three names. */
	if (th_role_parse(&scope, th_msql__text(st, 3), "scope", err) < 0)
		return TH_ESTORE;
	t->scope = scope;
	t->kind = strcmp(th_msql__text(st, 4), "session") == 0 ? TH_TOKEN_SESSION : TH_TOKEN_API;
	t->created_at = th_msql__int(st, 5);
	t->expires_at = th_msql__int(st, 6);
	t->last_used_at = th_msql__int(st, 7);
	return TH_OK;
}

static void dispose_token(void *item)
{
	(void)item;
}

/* The first column of a row as an int64 (ctx). */
static int read_id(void *ctx, const th_mrow *st, th_error *err)
{
	(void)err;
	*(int64_t *)ctx = th_msql__int(st, 0);
	return TH_OK;
}

struct token_args {
	th_token_info *out;
	const th_token_spec *t;
	const char *hash;
	const th_event_new *ev;
};

static int token_insert_tx(th_msql *s, void *ctx, th_error *err)
{
	struct token_args *a = ctx;
	const th_token_spec *t = a->t;
	th_event_new ev;
	char id[24];
	int64_t now = th_now_ms();
	int n;

	if ((n = th_msql__user_exists_locked(s, t->user, err)) < 0)
		return n;
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "user '%s' not found", t->user);
	if (t->kind == TH_TOKEN_SESSION &&
	    (n = th_msql__run_locked(s, &session_prune, NULL, NULL, err, "si", t->user,
	                             now - 86400000)) < 0)
		return n;
	memset(a->out, 0, sizeof(*a->out));
	if ((n = th_msql__run_locked(s, &token_issue, read_id, &a->out->token_id, err, "ssisssi",
	                             t->user, a->hash, now, t->name, th_role_name(t->scope),
	                             kind_name(t->kind), t->expires_at)) < 0)
		return n;
	snprintf(a->out->user, sizeof(a->out->user), "%s", t->user);
	snprintf(a->out->name, sizeof(a->out->name), "%s", t->name ? t->name : "");
	a->out->scope = t->scope;
	a->out->kind = t->kind;
	a->out->created_at = now;
	a->out->expires_at = t->expires_at;
	if (a->ev == NULL)
		return TH_OK;
	ev = *a->ev;
	if (ev.target == NULL) {
		snprintf(id, sizeof(id), "%lld", (long long)a->out->token_id);
		ev.target = id;
	}
	return th_msql__event_locked(s, &ev, err);
}

int th_msql__token_insert(th_token_info *out, th_meta *m, const th_token_spec *t, const char *hash,
                          const th_event_new *ev, th_error *err)
{
	th_token_info info;
	struct token_args a = { &info, t, hash, ev };
	int error;

	if ((error = th_msql__tx((th_msql *)m, token_insert_tx, &a, err)) < 0)
		return error;
	*out = info;
	return TH_OK;
}

struct auth_row {
	const char *hash;
	th_token_info info;
	int64_t revoked_at;
	int match;
};

static int read_auth(void *ctx, const th_mrow *st, th_error *err)
{
	struct auth_row *r = ctx;
	int error;

	if (th_msql__len(st, 8) != 64 || CRYPTO_memcmp(th_msql__text(st, 8), r->hash, 64) != 0)
		return TH_OK;
	if ((error = read_token_info(&r->info, st, err)) < 0)
		return error;
	r->revoked_at = th_msql__int(st, 9);
	r->match = 1;
	return TH_OK;
}

int th_msql__token_auth(th_token_info *out, th_meta *m, const char *hash, int64_t now,
                        th_error *err)
{
	th_msql *s = (th_msql *)m;
	struct auth_row r;
	int error;

	memset(&r, 0, sizeof(r));
	r.hash = hash;
	if ((error = th_msql__run(s, &token_auth, read_auth, &r, err, "s", hash)) < 0)
		return error;
	/* One message for every refusal: a client learns nothing about which tokens exist. */
	if (!r.match || r.revoked_at != 0 || (r.info.expires_at != 0 && r.info.expires_at <= now))
		return th_error_set(err, TH_EAUTH, "invalid token");
	/* Recording the last use is best effort (a busy database must not refuse a request) and
	 * at most once a minute, so authenticated reads do not each cost a write and an fsync. */
	if (now - r.info.last_used_at >= 60000) {
		th_msql__run(s, &token_touch, NULL, NULL, NULL, "ii", now, r.info.token_id);
		r.info.last_used_at = now;
	}
	*out = r.info;
	return TH_OK;
}

int th_msql__token_list(th_token_list *out, th_meta *m, const char *user, th_error *err)
{
	void *items = NULL;
	size_t n = 0;
	int error;

	if ((error = th_msql__list(&items, &n, NULL, (th_msql *)m, &token_list,
	                           sizeof(th_token_info), 0, read_token_info, dispose_token, err,
	                           "s", user)) < 0)
		return error;
	out->items = items;
	out->n = n;
	return TH_OK;
}

struct revoke_args {
	const char *user, *hash;
	int64_t token_id;
	const th_event_new *ev;
};

static int revoke_tx(th_msql *s, void *ctx, th_error *err)
{
	struct revoke_args *a = ctx;
	int n;

	if (a->hash != NULL)
		n = th_msql__run_locked(s, &token_revoke_hash, NULL, NULL, err, "si", a->hash,
		                        th_now_ms());
	else
		n = th_msql__run_locked(s, &token_revoke, NULL, NULL, err, "sii", a->user,
		                        a->token_id, th_now_ms());
	if (n < 0)
		return n;
	if (n == 0 && a->hash != NULL)
		return th_error_set(err, TH_EAUTH, "invalid token");
	if (n == 0)
		return th_error_set(err, TH_ENOTFOUND, "token %lld not found",
		                    (long long)a->token_id);
	return th_msql__event_locked(s, a->ev, err);
}

int th_msql__token_revoke(th_meta *m, const char *user, int64_t token_id, const th_event_new *ev,
                          th_error *err)
{
	struct revoke_args a = { user, NULL, token_id, ev };

	return th_msql__tx((th_msql *)m, revoke_tx, &a, err);
}

int th_msql__token_revoke_hash(th_meta *m, const char *hash, const th_event_new *ev, th_error *err)
{
	struct revoke_args a = { NULL, hash, 0, ev };

	return th_msql__tx((th_msql *)m, revoke_tx, &a, err);
}
