/* meta_users.c: users and API tokens in the SQLite metadata backend (tables users, tokens).
 *
 * Only SHA-256(token) is stored, in hex (the front end, storage/meta.c, hashes); a lookup finds the
 * row by the hash (an index) and compares the stored hash with CRYPTO_memcmp. A user and its first
 * token are made in one transaction.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "meta_sqlite.h"

static const th_msql_stmt user_insert = { MS_USER_INSERT, "insert user",
	                                  "INSERT INTO users(name, created_at) VALUES (?1, ?2)" };
static const th_msql_stmt user_get = { MS_USER_GET, "read user",
	                               "SELECT name, created_at FROM users WHERE name = ?1" };
static const th_msql_stmt user_exists = { MS_USER_EXISTS, "read user",
	                                  "SELECT 1 FROM users WHERE name = ?1" };
static const th_msql_stmt token_insert = {
	MS_TOKEN_INSERT, "insert token",
	"INSERT INTO tokens(user, hash, created_at) VALUES (?1, ?2, ?3)"
};
static const th_msql_stmt token_get = {
	MS_TOKEN_GET, "read token",
	"SELECT id, user, hash, last_used_at FROM tokens WHERE hash = ?1"
};
static const th_msql_stmt token_touch = { MS_TOKEN_TOUCH, "record token use",
	                                  "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2" };

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

static int read_user(void *ctx, sqlite3_stmt *st, th_error *err)
{
	th_user_info *u = ctx;

	(void)err;
	th_msql__copy(u->name, sizeof(u->name), st, 0);
	u->created_at = sqlite3_column_int64(st, 1);
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

struct token_row {
	const char *hash;
	char user[65];
	int64_t id, last_used;
	int match;
};

static int read_token(void *ctx, sqlite3_stmt *st, th_error *err)
{
	struct token_row *t = ctx;

	(void)err;
	if (sqlite3_column_bytes(st, 2) == 64 &&
	    CRYPTO_memcmp(sqlite3_column_text(st, 2), t->hash, 64) == 0) {
		t->id = sqlite3_column_int64(st, 0);
		th_msql__copy(t->user, sizeof(t->user), st, 1);
		t->last_used = sqlite3_column_int64(st, 3);
		t->match = 1;
	}
	return TH_OK;
}

int th_msql__token_lookup(char user_out[65], th_meta *m, const char *token_hash, th_error *err)
{
	th_msql *s = (th_msql *)m;
	struct token_row t;
	int64_t now;
	int error;

	memset(&t, 0, sizeof(t));
	t.hash = token_hash;
	if ((error = th_msql__run(s, &token_get, read_token, &t, err, "s", token_hash)) < 0)
		return error;
	if (!t.match)
		return th_error_set(err, TH_EAUTH, "invalid token");
	/* Recording the last use is best effort (a busy database must not refuse a request) and
	 * at most once a minute, so authenticated reads do not each cost a write and an fsync. */
	now = th_now_ms();
	if (now - t.last_used >= 60000)
		th_msql__run(s, &token_touch, NULL, NULL, NULL, "ii", now, t.id);
	memcpy(user_out, t.user, sizeof(t.user));
	return TH_OK;
}
