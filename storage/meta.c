/* meta.c: the metadata store in DIR/meta.sqlite (see include/tablehub/meta.h): users, hashed
 * tokens, databases, the operations queue, pull requests, comments and reviews.
 *
 * Design: one SQLite connection per th_meta behind a pthread mutex. The work per call is a few
 * indexed statements (microseconds), so serializing a process's calls costs less than a pool's
 * bookkeeping and keeps SQLite's error message tied to the call that caused it. Between processes
 * SQLite's locks order the writes: single-statement writes take the write lock up front (so the
 * busy timeout applies), and multi-statement writes run in BEGIN IMMEDIATE transactions, never
 * upgrading a read transaction (which in WAL mode fails with SQLITE_BUSY without waiting).
 *
 * The queue: claiming is one UPDATE ... WHERE id = (SELECT the oldest runnable) RETURNING, atomic
 * in itself. A claim bumps `attempts`, which then serves as the fencing token: a worker whose lease
 * expired and was taken over cannot extend, complete or fail the operation any more.
 *
 * Tokens: only SHA-256(token) is stored, in hex; a lookup finds the row by the hash (an index) and
 * compares the stored hash with CRYPTO_memcmp.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "tablehub/text.h"
#include "tablehub/hash.h"
#include "tablehub/ids.h"
#include "tablehub/meta.h"

struct th_meta {
	sqlite3 *db;
	pthread_mutex_t mu;
};

#define BUSY_TIMEOUT_MS 10000
#define DEFAULT_PAGE 50
#define MAX_PAGE 1000

/* Schema migrations: entry i brings user_version from i to i+1. Append; never edit one. */
static const char *const migrations[] = {
	/* 1: the first schema */
	"CREATE TABLE users("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE tokens("
	"  id INTEGER PRIMARY KEY,"
	"  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
	"  hash TEXT NOT NULL UNIQUE," /* SHA-256 of the token, hex */
	"  created_at INTEGER NOT NULL,"
	"  last_used_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX tokens_user ON tokens(user);"
	"CREATE TABLE databases("
	"  id INTEGER PRIMARY KEY,"
	"  owner TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  description TEXT NOT NULL DEFAULT '',"
	"  visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),"
	"  created_at INTEGER NOT NULL,"
	"  UNIQUE (owner, name));"
	"CREATE TABLE operations("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  kind TEXT NOT NULL CHECK (kind IN ('import', 'merge')),"
	"  owner TEXT NOT NULL,"
	"  db TEXT NOT NULL,"
	"  creator TEXT NOT NULL,"
	"  state TEXT NOT NULL"
	"    CHECK (state IN ('Pending', 'In Progress', 'Completed', 'Failed')),"
	"  params TEXT NOT NULL DEFAULT '{}',"
	"  upload_sha256 TEXT NOT NULL DEFAULT '',"
	"  file_name TEXT NOT NULL DEFAULT '',"
	"  table_name TEXT NOT NULL DEFAULT '',"
	"  branch_name TEXT NOT NULL DEFAULT '',"
	"  bytes_total INTEGER NOT NULL DEFAULT 0,"
	"  bytes_read INTEGER NOT NULL DEFAULT 0,"
	"  rows_processed INTEGER NOT NULL DEFAULT 0,"
	"  result TEXT,"
	"  error_message TEXT,"
	"  error_line INTEGER NOT NULL DEFAULT 0,"
	"  error_column INTEGER NOT NULL DEFAULT 0,"
	"  lease_expires_at INTEGER NOT NULL DEFAULT 0,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  pull_id INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX operations_queue ON operations(state, lease_expires_at);"
	"CREATE INDEX operations_db ON operations(owner, db, created_at);"
	"CREATE INDEX operations_creator ON operations(creator, created_at);"
	"CREATE TABLE pulls("
	"  db_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,"
	"  pull_id INTEGER NOT NULL,"
	"  title TEXT NOT NULL DEFAULT '',"
	"  description TEXT NOT NULL DEFAULT '',"
	"  author TEXT NOT NULL,"
	"  from_branch TEXT NOT NULL,"
	"  to_branch TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('Open', 'Closed', 'Merged')),"
	"  merge_commit TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  PRIMARY KEY (db_id, pull_id));"
	"CREATE INDEX pulls_state ON pulls(db_id, state, pull_id);"
	"CREATE TABLE pull_comments("
	"  db_id INTEGER NOT NULL,"
	"  pull_id INTEGER NOT NULL,"
	"  id INTEGER NOT NULL,"
	"  author TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (db_id, pull_id, id),"
	"  FOREIGN KEY (db_id, pull_id) REFERENCES pulls(db_id, pull_id) ON DELETE CASCADE);"
	"CREATE TABLE pull_reviews("
	"  db_id INTEGER NOT NULL,"
	"  pull_id INTEGER NOT NULL,"
	"  id INTEGER NOT NULL,"
	"  author TEXT NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('Approved', 'Rejected', 'Reviewed')),"
	"  comment TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (db_id, pull_id, id),"
	"  FOREIGN KEY (db_id, pull_id) REFERENCES pulls(db_id, pull_id) ON DELETE CASCADE);",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* --- helpers --------------------------------------------------------------------------------- */

static int db_error(th_meta *m, th_error *err, const char *what)
{
	return th_error_set(err, TH_ESTORE, "meta.sqlite: %s: %s", what, sqlite3_errmsg(m->db));
}

static int prep(sqlite3_stmt **st, th_meta *m, const char *sql, th_error *err)
{
	if (sqlite3_prepare_v2(m->db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return db_error(m, err, "prepare");
	}
	return TH_OK;
}

static int exec(th_meta *m, const char *sql, th_error *err)
{
	char *msg = NULL;

	if (sqlite3_exec(m->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		th_error_set(err, TH_ESTORE, "meta.sqlite: %s", msg ? msg : sqlite3_errmsg(m->db));
		sqlite3_free(msg);
		return TH_ESTORE;
	}
	return TH_OK;
}

static void rollback(th_meta *m)
{
	if (!sqlite3_get_autocommit(m->db))
		sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

/* Step a statement that returns no row. */
static int step_done(th_meta *m, sqlite3_stmt *st, th_error *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE)
		return TH_OK;
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return th_error_set(err, TH_EEXISTS, "meta.sqlite: %s", sqlite3_errmsg(m->db));
	return db_error(m, err, "step");
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? (const char *)s : "";
}

static void col_copy(char *dst, size_t size, sqlite3_stmt *st, int i)
{
	snprintf(dst, size, "%s", col_text(st, i));
}

/* A heap copy of column i; NULL columns give NULL when `keep_null`, "" otherwise. */
static int col_dup(char **out, sqlite3_stmt *st, int i, int keep_null, th_error *err)
{
	if (keep_null && sqlite3_column_type(st, i) == SQLITE_NULL) {
		*out = NULL;
		return TH_OK;
	}
	if ((*out = strdup(col_text(st, i))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	return TH_OK;
}

static int name_ok(const char *s, const char *what, th_error *err)
{
	if (s == NULL || !th_name_valid(s))
		return th_error_set(err, TH_EINVALID,
		                    "invalid %s name '%s': use 1-64 letters, digits, '_' or '-'",
		                    what, s ? s : "");
	return TH_OK;
}

/* Grow a list's item array to hold one more item of `size` bytes. */
static int list_grow(void **items, size_t n, size_t *cap, size_t size, th_error *err)
{
	void *p;
	size_t ncap;

	if (n < *cap)
		return TH_OK;
	ncap = *cap ? *cap * 2 : 16;
	if ((p = realloc(*items, ncap * size)) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	*items = p;
	*cap = ncap;
	return TH_OK;
}

static int parse_page(int64_t *offset, const char *tok, th_error *err)
{
	int64_t v = 0;
	const char *p;

	*offset = 0;
	if (tok == NULL || tok[0] == '\0')
		return TH_OK;
	for (p = tok; *p; p++) {
		if (*p < '0' || *p > '9' || p - tok >= 15)
			return th_error_set(err, TH_EINVALID, "invalid page token");
		v = v * 10 + (*p - '0');
	}
	*offset = v;
	return TH_OK;
}

static size_t page_limit(size_t limit)
{
	if (limit == 0)
		return DEFAULT_PAGE;
	return limit > MAX_PAGE ? MAX_PAGE : limit;
}

static void set_next(char next_out[TH_PAGE_TOKEN_SIZE], int more, int64_t offset, size_t n)
{
	if (next_out == NULL)
		return;
	if (more)
		snprintf(next_out, TH_PAGE_TOKEN_SIZE, "%" PRId64, offset + (int64_t)n);
	else
		next_out[0] = '\0';
}

/* --- open, migrate, close -------------------------------------------------------------------- */

int th_meta_schema_version(void)
{
	return NMIGRATIONS;
}

static int user_version(int *out, th_meta *m, th_error *err)
{
	sqlite3_stmt *st;
	int error;

	if ((error = prep(&st, m, "PRAGMA user_version", err)) < 0)
		return error;
	if (sqlite3_step(st) != SQLITE_ROW)
		error = db_error(m, err, "read user_version");
	else
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return error;
}

static int migrate(th_meta *m, th_error *err)
{
	char sql[64];
	int v = 0, error;

	for (;;) {
		if ((error = user_version(&v, m, err)) < 0)
			return error;
		if (v > NMIGRATIONS)
			return th_error_set(err, TH_ESTORE,
			                    "meta.sqlite has schema version %d, newer than this "
			                    "tablehub knows (%d): upgrade tablehub",
			                    v, NMIGRATIONS);
		if (v == NMIGRATIONS)
			return TH_OK;
		/* Another process may migrate at the same time: re-read the version under the
		 * write lock and apply only what is still missing. */
		if ((error = exec(m, "BEGIN IMMEDIATE", err)) < 0)
			return error;
		if ((error = user_version(&v, m, err)) < 0)
			goto fail;
		if (v >= NMIGRATIONS) {
			if ((error = exec(m, "COMMIT", err)) < 0)
				goto fail;
			continue;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if ((error = exec(m, migrations[v], err)) < 0 || (error = exec(m, sql, err)) < 0 ||
		    (error = exec(m, "COMMIT", err)) < 0)
			goto fail;
	}
fail:
	rollback(m);
	return error;
}

int th_meta_open(th_meta **out, const char *data_dir, th_error *err)
{
	th_meta *m;
	char path[4096];
	int error;

	if ((size_t)snprintf(path, sizeof(path), "%s/meta.sqlite", data_dir) >= sizeof(path))
		return th_error_set(err, TH_EINVALID, "data dir path too long");
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	pthread_mutex_init(&m->mu, NULL);
	if (sqlite3_open_v2(path, &m->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		error = th_error_set(err, TH_ESTORE, "cannot open '%s': %s", path,
		                     m->db ? sqlite3_errmsg(m->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(m->db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(m->db, 1);
	if ((error = exec(m, "PRAGMA journal_mode = WAL", err)) < 0 ||
	    (error = exec(m, "PRAGMA foreign_keys = ON", err)) < 0 ||
	    (error = exec(m, "PRAGMA synchronous = FULL", err)) < 0 ||
	    (error = migrate(m, err)) < 0)
		goto fail;
	*out = m;
	return TH_OK;
fail:
	sqlite3_close(m->db);
	pthread_mutex_destroy(&m->mu);
	free(m);
	return error;
}

void th_meta_close(th_meta *m)
{
	if (m == NULL)
		return;
	sqlite3_close(m->db);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* --- users and tokens ------------------------------------------------------------------------ */

/* The stored form of a token: SHA-256 in hex. */
static void token_hash(char out[65], const char *token)
{
	th_sha256_hex(out, token, strlen(token));
}

/* Make a token, store its hash for `user`. Called with the mutex held. */
static int token_insert(char token_out[TH_TOKEN_SIZE], th_meta *m, const char *user, th_error *err)
{
	char token[TH_TOKEN_SIZE], hash[65];
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = th_token_new(token, err)) < 0)
		return error;
	token_hash(hash, token);
	if ((error = prep(&st, m, "INSERT INTO tokens(user, hash, created_at) VALUES (?1, ?2, ?3)",
	                  err)) < 0)
		return error;
	bind_str(st, 1, user);
	bind_str(st, 2, hash);
	sqlite3_bind_int64(st, 3, th_now_ms());
	if (sqlite3_step(st) != SQLITE_DONE)
		error = db_error(m, err, "insert token");
	sqlite3_finalize(st);
	if (error == TH_OK)
		memcpy(token_out, token, TH_TOKEN_SIZE);
	OPENSSL_cleanse(token, sizeof(token));
	return error;
}

int th_meta_user_create(char token_out[TH_TOKEN_SIZE], th_meta *m, const char *name, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	if ((error = name_ok(name, "user", err)) < 0)
		return error;
	pthread_mutex_lock(&m->mu);
	if ((error = exec(m, "BEGIN IMMEDIATE", err)) < 0)
		goto cleanup;
	if ((error = prep(&st, m, "INSERT INTO users(name, created_at) VALUES (?1, ?2)", err)) < 0)
		goto cleanup;
	bind_str(st, 1, name);
	sqlite3_bind_int64(st, 2, th_now_ms());
	rc = sqlite3_step(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		error = th_error_set(err, TH_EEXISTS, "user '%s' already exists", name);
		goto cleanup;
	} else if (rc != SQLITE_DONE) {
		error = db_error(m, err, "insert user");
		goto cleanup;
	}
	if ((error = token_insert(token_out, m, name, err)) < 0)
		goto cleanup;
	error = exec(m, "COMMIT", err);

cleanup:
	sqlite3_finalize(st);
	if (error < 0)
		rollback(m);
	pthread_mutex_unlock(&m->mu);
	return error;
}

int th_meta_user_get(th_user_info *out, th_meta *m, const char *name, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m, "SELECT name, created_at FROM users WHERE name = ?1", err)) < 0)
		goto cleanup;
	bind_str(st, 1, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		col_copy(out->name, sizeof(out->name), st, 0);
		out->created_at = sqlite3_column_int64(st, 1);
	} else if (rc == SQLITE_DONE) {
		error = th_error_set(err, TH_ENOTFOUND, "user '%s' not found", name ? name : "");
	} else {
		error = db_error(m, err, "read user");
	}
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

int th_meta_token_create(char token_out[TH_TOKEN_SIZE], th_meta *m, const char *user, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	pthread_mutex_lock(&m->mu);
	if ((error = exec(m, "BEGIN IMMEDIATE", err)) < 0)
		goto cleanup;
	if ((error = prep(&st, m, "SELECT 1 FROM users WHERE name = ?1", err)) < 0)
		goto cleanup;
	bind_str(st, 1, user);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		error = th_error_set(err, TH_ENOTFOUND, "user '%s' not found", user ? user : "");
		goto cleanup;
	} else if (rc != SQLITE_ROW) {
		error = db_error(m, err, "read user");
		goto cleanup;
	}
	if ((error = token_insert(token_out, m, user, err)) < 0)
		goto cleanup;
	error = exec(m, "COMMIT", err);
cleanup:
	sqlite3_finalize(st);
	if (error < 0)
		rollback(m);
	pthread_mutex_unlock(&m->mu);
	return error;
}

static int token_well_formed(const char *t)
{
	size_t i;

	if (t == NULL || strncmp(t, TH_TOKEN_PREFIX, 4) != 0 || strlen(t) != TH_TOKEN_SIZE - 1)
		return 0;
	for (i = 4; t[i]; i++)
		if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
			return 0;
	return 1;
}

int th_meta_token_lookup(char user_out[65], th_meta *m, const char *token, th_error *err)
{
	char hash[65];
	sqlite3_stmt *st = NULL;
	int64_t id = 0, last_used = 0, now;
	int rc, error = TH_OK;

	if (!token_well_formed(token))
		return th_error_set(err, TH_EAUTH, "invalid token");
	token_hash(hash, token);
	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m, "SELECT id, user, hash, last_used_at FROM tokens WHERE hash = ?1",
	                  err)) < 0)
		goto cleanup;
	bind_str(st, 1, hash);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 2) == 64 &&
	    CRYPTO_memcmp(sqlite3_column_text(st, 2), hash, 64) == 0) {
		id = sqlite3_column_int64(st, 0);
		col_copy(user_out, 65, st, 1);
		last_used = sqlite3_column_int64(st, 3);
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		error = th_error_set(err, TH_EAUTH, "invalid token");
		goto cleanup;
	} else {
		error = db_error(m, err, "read token");
		goto cleanup;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* Recording the last use is best effort (a busy database must not refuse a request) and
	 * at most once a minute, so authenticated reads do not each cost a write and an fsync. */
	now = th_now_ms();
	if (now - last_used >= 60000 &&
	    prep(&st, m, "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2", NULL) == TH_OK) {
		sqlite3_bind_int64(st, 1, now);
		sqlite3_bind_int64(st, 2, id);
		sqlite3_step(st);
	}
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

/* --- databases ------------------------------------------------------------------------------- */

void th_db_info_dispose(th_db_info *info)
{
	if (info == NULL)
		return;
	free(info->description);
	info->description = NULL;
}

void th_db_list_dispose(th_db_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		th_db_info_dispose(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

#define DB_COLS "id, owner, name, description, visibility, created_at"

static int read_db(th_db_info *out, sqlite3_stmt *st, th_error *err)
{
	th_db_info d;

	memset(&d, 0, sizeof(d));
	d.id = sqlite3_column_int64(st, 0);
	col_copy(d.owner, sizeof(d.owner), st, 1);
	col_copy(d.name, sizeof(d.name), st, 2);
	if (col_dup(&d.description, st, 3, 0, err) < 0)
		return TH_ENOMEM;
	d.is_private = strcmp(col_text(st, 4), "private") == 0;
	d.created_at = sqlite3_column_int64(st, 5);
	*out = d;
	return TH_OK;
}

int th_meta_db_create(th_meta *m, const char *owner, const char *name, const char *description,
                      int is_private, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	if ((error = name_ok(owner, "owner", err)) < 0 ||
	    (error = name_ok(name, "database", err)) < 0)
		return error;
	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m,
	                  "INSERT INTO databases(owner, name, description, visibility, created_at) "
	                  "VALUES (?1, ?2, ?3, ?4, ?5)",
	                  err)) < 0)
		goto cleanup;
	bind_str(st, 1, owner);
	bind_str(st, 2, name);
	bind_str(st, 3, description);
	bind_str(st, 4, is_private ? "private" : "public");
	sqlite3_bind_int64(st, 5, th_now_ms());
	rc = sqlite3_step(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		error = th_error_set(err, TH_EEXISTS, "database '%s/%s' already exists", owner,
		                     name);
	else if (rc != SQLITE_DONE)
		error = db_error(m, err, "insert database");
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

int th_meta_db_get(th_db_info *out, th_meta *m, const char *owner, const char *name, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m,
	                  "SELECT " DB_COLS " FROM databases WHERE owner = ?1 AND name = ?2",
	                  err)) < 0)
		goto cleanup;
	bind_str(st, 1, owner);
	bind_str(st, 2, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		error = read_db(out, st, err);
	else if (rc == SQLITE_DONE)
		error = th_error_set(err, TH_ENOTFOUND, "database '%s/%s' not found",
		                     owner ? owner : "", name ? name : "");
	else
		error = db_error(m, err, "read database");
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

int th_meta_db_list(th_db_list *out, th_meta *m, const char *owner, th_error *err)
{
	th_db_list l = { NULL, 0 };
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc, error;

	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m,
	                  "SELECT " DB_COLS " FROM databases WHERE ?1 IS NULL OR owner = ?1 "
	                  "ORDER BY owner, name",
	                  err)) < 0)
		goto cleanup;
	if (owner)
		bind_str(st, 1, owner);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((error = list_grow((void **)&l.items, l.n, &cap, sizeof(*l.items), err)) < 0 ||
		    (error = read_db(&l.items[l.n], st, err)) < 0)
			goto cleanup;
		l.n++;
	}
	if (rc != SQLITE_DONE)
		error = db_error(m, err, "list databases");
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	if (error < 0)
		th_db_list_dispose(&l);
	else
		*out = l;
	return error;
}

/* --- operations ------------------------------------------------------------------------------ */

static const char *const op_state_names[] = { "", "Pending", "In Progress", "Completed", "Failed" };

const char *th_op_state_name(th_op_state s)
{
	return (s >= TH_OPSTATE_PENDING && s <= TH_OPSTATE_FAILED) ? op_state_names[s] : "";
}

static th_op_state op_state_parse(const char *s)
{
	int i;

	for (i = TH_OPSTATE_PENDING; i <= TH_OPSTATE_FAILED; i++)
		if (strcmp(s, op_state_names[i]) == 0)
			return (th_op_state)i;
	return (th_op_state)0;
}

void th_op_info_dispose(th_op_info *op)
{
	if (op == NULL)
		return;
	free(op->params);
	free(op->file_name);
	free(op->table_name);
	free(op->branch_name);
	free(op->result);
	free(op->error_message);
	op->params = op->file_name = op->table_name = op->branch_name = NULL;
	op->result = op->error_message = NULL;
}

void th_op_list_dispose(th_op_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		th_op_info_dispose(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

#define OP_COLS                                                                                    \
	"id, kind, owner, db, creator, state, params, upload_sha256, file_name, table_name, "      \
	"branch_name, bytes_total, bytes_read, rows_processed, result, error_message, "            \
	"error_line, error_column, lease_expires_at, attempts, pull_id, created_at, updated_at"

static int read_op(th_op_info *out, sqlite3_stmt *st, th_error *err)
{
	th_op_info o;

	memset(&o, 0, sizeof(o));
	col_copy(o.id, sizeof(o.id), st, 0);
	col_copy(o.kind, sizeof(o.kind), st, 1);
	col_copy(o.owner, sizeof(o.owner), st, 2);
	col_copy(o.db, sizeof(o.db), st, 3);
	col_copy(o.creator, sizeof(o.creator), st, 4);
	o.state = op_state_parse(col_text(st, 5));
	col_copy(o.upload_sha256, sizeof(o.upload_sha256), st, 7);
	if (col_dup(&o.params, st, 6, 0, err) < 0 || col_dup(&o.file_name, st, 8, 0, err) < 0 ||
	    col_dup(&o.table_name, st, 9, 0, err) < 0 ||
	    col_dup(&o.branch_name, st, 10, 0, err) < 0 || col_dup(&o.result, st, 14, 1, err) < 0 ||
	    col_dup(&o.error_message, st, 15, 1, err) < 0) {
		th_op_info_dispose(&o);
		return TH_ENOMEM;
	}
	o.bytes_total = (uint64_t)sqlite3_column_int64(st, 11);
	o.bytes_read = (uint64_t)sqlite3_column_int64(st, 12);
	o.rows_processed = (uint64_t)sqlite3_column_int64(st, 13);
	o.error_line = (uint64_t)sqlite3_column_int64(st, 16);
	o.error_column = (uint32_t)sqlite3_column_int64(st, 17);
	o.lease_expires_at = sqlite3_column_int64(st, 18);
	o.attempts = sqlite3_column_int(st, 19);
	o.pull_id = sqlite3_column_int64(st, 20);
	o.created_at = sqlite3_column_int64(st, 21);
	o.updated_at = sqlite3_column_int64(st, 22);
	*out = o;
	return TH_OK;
}

int th_meta_op_create(char id_out[TH_UUID_SIZE], th_meta *m, const th_op_new *op, th_error *err)
{
	char id[TH_UUID_SIZE];
	sqlite3_stmt *st = NULL;
	int64_t now = th_now_ms();
	int error;

	if (op->kind == NULL || (strcmp(op->kind, "import") != 0 && strcmp(op->kind, "merge") != 0))
		return th_error_set(err, TH_EINVALID, "unknown operation kind '%s'",
		                    op->kind ? op->kind : "");
	if (op->owner == NULL || !op->owner[0] || op->db == NULL || !op->db[0] ||
	    op->creator == NULL || !op->creator[0])
		return th_error_set(err, TH_EINVALID,
		                    "an operation needs an owner, db and creator");
	if ((error = th_uuid4(id, err)) < 0)
		return error;
	pthread_mutex_lock(&m->mu);
	if ((error = prep(
	             &st, m,
	             "INSERT INTO operations(id, kind, owner, db, creator, state, params, "
	             "upload_sha256, file_name, table_name, branch_name, bytes_total, pull_id, "
	             "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'Pending', ?6, ?7, ?8, "
	             "?9, ?10, ?11, ?12, ?13, ?13)",
	             err)) < 0)
		goto cleanup;
	bind_str(st, 1, id);
	bind_str(st, 2, op->kind);
	bind_str(st, 3, op->owner);
	bind_str(st, 4, op->db);
	bind_str(st, 5, op->creator);
	bind_str(st, 6, op->params ? op->params : "{}");
	bind_str(st, 7, op->upload_sha256);
	bind_str(st, 8, op->file_name);
	bind_str(st, 9, op->table_name);
	bind_str(st, 10, op->branch_name);
	sqlite3_bind_int64(st, 11, (int64_t)op->bytes_total);
	sqlite3_bind_int64(st, 12, op->pull_id);
	sqlite3_bind_int64(st, 13, now);
	if ((error = step_done(m, st, err)) < 0)
		goto cleanup;
	memcpy(id_out, id, TH_UUID_SIZE);
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

int th_meta_op_get(th_op_info *out, th_meta *m, const char *id, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m, "SELECT " OP_COLS " FROM operations WHERE id = ?1", err)) < 0)
		goto cleanup;
	bind_str(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		error = read_op(out, st, err);
	else if (rc == SQLITE_DONE)
		error = th_error_set(err, TH_ENOTFOUND, "operation '%s' not found", id ? id : "");
	else
		error = db_error(m, err, "read operation");
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

/* List operations with `where` over ?1 ?2 (text, may be unbound), ?3 kind (NULL = any). */
static int op_list(th_op_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                   const char *where, const char *a, const char *b, const char *kind,
                   const char *page_token, size_t limit, th_error *err)
{
	th_op_list l = { NULL, 0 };
	sqlite3_stmt *st = NULL;
	char sql[1024];
	int64_t offset;
	size_t cap = 0, lim = page_limit(limit);
	int rc, more = 0, error;

	if ((error = parse_page(&offset, page_token, err)) < 0)
		return error;
	snprintf(sql, sizeof(sql),
	         "SELECT " OP_COLS " FROM operations WHERE %s AND (?3 IS NULL OR kind = ?3) "
	         "ORDER BY created_at DESC, rowid DESC LIMIT ?4 OFFSET ?5",
	         where);
	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m, sql, err)) < 0)
		goto cleanup;
	bind_str(st, 1, a);
	if (b)
		bind_str(st, 2, b);
	if (kind)
		bind_str(st, 3, kind);
	sqlite3_bind_int64(st, 4, (int64_t)lim + 1);
	sqlite3_bind_int64(st, 5, offset);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (l.n == lim) {
			more = 1;
			continue;
		}
		if ((error = list_grow((void **)&l.items, l.n, &cap, sizeof(*l.items), err)) < 0 ||
		    (error = read_op(&l.items[l.n], st, err)) < 0)
			goto cleanup;
		l.n++;
	}
	if (rc != SQLITE_DONE)
		error = db_error(m, err, "list operations");
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	if (error < 0) {
		th_op_list_dispose(&l);
		return error;
	}
	*out = l;
	set_next(next_out, more, offset, l.n);
	return TH_OK;
}

int th_meta_op_list_db(th_op_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                       const char *owner, const char *db, const char *kind, const char *page_token,
                       size_t limit, th_error *err)
{
	return op_list(out, next_out, m, "owner = ?1 AND db = ?2", owner, db ? db : "", kind,
	               page_token, limit, err);
}

int th_meta_op_list_creator(th_op_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                            const char *creator, const char *kind, const char *page_token,
                            size_t limit, th_error *err)
{
	return op_list(out, next_out, m, "creator = ?1 AND ?2 IS NULL", creator, NULL, kind,
	               page_token, limit, err);
}

int th_meta_op_claim(th_op_info *out, th_meta *m, int64_t lease_ms, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int64_t now = th_now_ms();
	th_op_info o;
	int rc, error, have = 0;

	pthread_mutex_lock(&m->mu);
	if ((error = prep(
	             &st, m,
	             "UPDATE operations SET state = 'In Progress', lease_expires_at = ?1 + ?2, "
	             "attempts = attempts + 1, updated_at = ?1 "
	             "WHERE id = (SELECT id FROM operations WHERE state = 'Pending' OR "
	             "(state = 'In Progress' AND lease_expires_at < ?1) "
	             "ORDER BY created_at, rowid LIMIT 1) RETURNING " OP_COLS,
	             err)) < 0)
		goto cleanup;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, lease_ms);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if ((error = read_op(&o, st, err)) < 0)
			goto cleanup;
		have = 1;
		rc = sqlite3_step(st);
	}
	/* The claim commits when the statement runs to its end. */
	if (rc != SQLITE_DONE)
		error = db_error(m, err, "claim operation");
	else if (!have)
		error = th_error_set(err, TH_ENOTFOUND, "no operation to run");
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	if (error == TH_OK)
		*out = o;
	else if (have)
		th_op_info_dispose(&o);
	return error;
}

int th_meta_op_requeue_running(int *n_out, th_meta *m, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int error;

	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m,
	                  "UPDATE operations SET lease_expires_at = 0 WHERE state = 'In Progress'",
	                  err)) < 0)
		goto cleanup;
	if ((error = step_done(m, st, err)) < 0)
		goto cleanup;
	if (n_out)
		*n_out = sqlite3_changes(m->db);
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

/* After a fenced UPDATE changed nothing: say why. Called with the mutex held. */
static int fence_error(th_meta *m, const char *id, int attempt, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	if ((error = prep(&st, m, "SELECT state, attempts FROM operations WHERE id = ?1", err)) < 0)
		return error;
	bind_str(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		error = th_error_set(err, TH_ECONFLICT,
		                     "operation '%s' is no longer held by attempt %d (state %s, "
		                     "attempt %d)",
		                     id, attempt, col_text(st, 0), sqlite3_column_int(st, 1));
	else if (rc == SQLITE_DONE)
		error = th_error_set(err, TH_ENOTFOUND, "operation '%s' not found", id);
	else
		error = db_error(m, err, "read operation");
	sqlite3_finalize(st);
	return error;
}

/* Run a fenced update: `set` is the SET clause over ?3.. (binder fills them); ?1 id, ?2 attempt. */
struct fence_args {
	int64_t i[4];
	const char *s;  /* bound after the integers */
	const char *s2; /* bound after s */
};

static int fenced_update(th_meta *m, const char *id, int attempt, const char *set,
                         const struct fence_args *a, int nint, th_error *err)
{
	sqlite3_stmt *st = NULL;
	char sql[512];
	int i, error;

	snprintf(sql, sizeof(sql), "UPDATE operations SET %s WHERE id = ?1 AND %s", set,
	         attempt > 0 ? "state = 'In Progress' AND attempts = ?2"
	                     : "state IN ('Pending', 'In Progress') AND ?2 = 0");
	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m, sql, err)) < 0)
		goto cleanup;
	bind_str(st, 1, id);
	sqlite3_bind_int(st, 2, attempt);
	for (i = 0; i < nint; i++)
		sqlite3_bind_int64(st, 3 + i, a->i[i]);
	if (a->s)
		bind_str(st, 3 + nint, a->s);
	if (a->s2)
		bind_str(st, 4 + nint, a->s2);
	if ((error = step_done(m, st, err)) < 0)
		goto cleanup;
	if (sqlite3_changes(m->db) == 0)
		error = fence_error(m, id ? id : "", attempt, err);
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

int th_meta_op_extend(th_meta *m, const char *id, int attempt, int64_t lease_ms, th_error *err)
{
	int64_t now = th_now_ms();
	struct fence_args a = { { now + lease_ms, now, 0, 0 }, NULL, NULL };

	return fenced_update(m, id, attempt, "lease_expires_at = ?3, updated_at = ?4", &a, 2, err);
}

int th_meta_op_progress(th_meta *m, const char *id, int attempt, uint64_t bytes_read, uint64_t rows,
                        int64_t lease_ms, th_error *err)
{
	int64_t now = th_now_ms();
	struct fence_args a = { { (int64_t)bytes_read, (int64_t)rows, now, now + lease_ms },
		                NULL,
		                NULL };

	return fenced_update(m, id, attempt,
	                     lease_ms > 0
	                             ? "bytes_read = ?3, rows_processed = ?4, updated_at = ?5, "
	                               "lease_expires_at = ?6"
	                             : "bytes_read = ?3, rows_processed = ?4, updated_at = ?5, "
	                               "lease_expires_at = lease_expires_at + 0 * ?6",
	                     &a, 4, err);
}

int th_meta_op_complete(th_meta *m, const char *id, int attempt, const char *result_json,
                        int64_t pull_id, th_error *err)
{
	struct fence_args a = { { th_now_ms(), pull_id, 0, 0 },
		                result_json ? result_json : "{}",
		                NULL };

	return fenced_update(m, id, attempt,
	                     "state = 'Completed', updated_at = ?3, lease_expires_at = 0, "
	                     "pull_id = CASE WHEN ?4 > 0 THEN ?4 ELSE pull_id END, result = ?5",
	                     &a, 2, err);
}

int th_meta_op_fail(th_meta *m, const char *id, int attempt, const char *message, uint64_t line,
                    uint32_t column, th_error *err)
{
	return th_meta_op_fail_with(m, id, attempt, message, line, column, NULL, err);
}

int th_meta_op_fail_with(th_meta *m, const char *id, int attempt, const char *message,
                         uint64_t line, uint32_t column, const char *result_json, th_error *err)
{
	struct fence_args a = { { th_now_ms(), (int64_t)line, (int64_t)column, 0 },
		                message ? message : "failed",
		                result_json };

	return fenced_update(m, id, attempt,
	                     "state = 'Failed', updated_at = ?3, lease_expires_at = 0, "
	                     "error_line = ?4, error_column = ?5, error_message = ?6, result = ?7",
	                     &a, 3, err);
}

/* --- pull requests --------------------------------------------------------------------------- */

static const char *const pull_state_names[] = { "", "Open", "Closed", "Merged" };

const char *th_pull_state_name(th_pull_state s)
{
	return (s >= TH_PULL_OPEN && s <= TH_PULL_MERGED) ? pull_state_names[s] : "";
}

th_pull_state th_pull_state_parse(const char *s)
{
	int i;

	for (i = TH_PULL_OPEN; s && i <= TH_PULL_MERGED; i++)
		if (strcasecmp(s, pull_state_names[i]) == 0)
			return (th_pull_state)i;
	return (th_pull_state)0;
}

static const char *const review_names[] = { "", "Approved", "Rejected", "Reviewed" };

const char *th_review_status_name(th_review_status s)
{
	return (s >= TH_REVIEW_APPROVED && s <= TH_REVIEW_REVIEWED) ? review_names[s] : "";
}

th_review_status th_review_status_parse(const char *s)
{
	int i;

	for (i = TH_REVIEW_APPROVED; s && i <= TH_REVIEW_REVIEWED; i++)
		if (strcasecmp(s, review_names[i]) == 0)
			return (th_review_status)i;
	return (th_review_status)0;
}

void th_pull_info_dispose(th_pull_info *p)
{
	if (p == NULL)
		return;
	free(p->title);
	free(p->description);
	free(p->from_branch);
	free(p->to_branch);
	p->title = p->description = p->from_branch = p->to_branch = NULL;
}

void th_pull_list_dispose(th_pull_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		th_pull_info_dispose(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

void th_pull_note_list_dispose(th_pull_note_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->items[i].body);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

#define PULL_COLS                                                                                  \
	"db_id, pull_id, title, description, author, from_branch, to_branch, state, "              \
	"merge_commit, created_at, updated_at"

static int read_pull(th_pull_info *out, sqlite3_stmt *st, th_error *err)
{
	th_pull_info p;

	memset(&p, 0, sizeof(p));
	p.db_id = sqlite3_column_int64(st, 0);
	p.pull_id = sqlite3_column_int64(st, 1);
	col_copy(p.author, sizeof(p.author), st, 4);
	p.state = th_pull_state_parse(col_text(st, 7));
	col_copy(p.merge_commit, sizeof(p.merge_commit), st, 8);
	p.created_at = sqlite3_column_int64(st, 9);
	p.updated_at = sqlite3_column_int64(st, 10);
	if (col_dup(&p.title, st, 2, 0, err) < 0 || col_dup(&p.description, st, 3, 0, err) < 0 ||
	    col_dup(&p.from_branch, st, 5, 0, err) < 0 ||
	    col_dup(&p.to_branch, st, 6, 0, err) < 0) {
		th_pull_info_dispose(&p);
		return TH_ENOMEM;
	}
	*out = p;
	return TH_OK;
}

/* Does the row selected by `sql` (?1, ?2 int64) exist? TH_OK, TH_ENOTFOUND (with `what`) or
 * TH_ESTORE. Called with the mutex held. */
static int row_exists(th_meta *m, const char *sql, int64_t a, int64_t b, const char *what,
                      th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	if ((error = prep(&st, m, sql, err)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		error = th_error_set(err, TH_ENOTFOUND, "%s", what);
	else if (rc != SQLITE_ROW)
		error = db_error(m, err, "read");
	sqlite3_finalize(st);
	return error;
}

/* The next id of `sql` (SELECT COALESCE(MAX(..), 0) + 1 ... ?1 ?2). Called with the mutex held. */
static int next_id(int64_t *out, th_meta *m, const char *sql, int64_t a, int64_t b, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = prep(&st, m, sql, err)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		error = db_error(m, err, "next id");
	sqlite3_finalize(st);
	return error;
}

int th_meta_pull_create(int64_t *pull_id_out, th_meta *m, int64_t db_id, const char *title,
                        const char *description, const char *author, const char *from_branch,
                        const char *to_branch, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0, now = th_now_ms();
	int error;

	if (author == NULL || !author[0] || from_branch == NULL || !from_branch[0] ||
	    to_branch == NULL || !to_branch[0])
		return th_error_set(
		        err, TH_EINVALID,
		        "a pull request needs an author, a from branch and a to branch");
	pthread_mutex_lock(&m->mu);
	if ((error = exec(m, "BEGIN IMMEDIATE", err)) < 0)
		goto cleanup;
	if ((error = row_exists(m, "SELECT 1 FROM databases WHERE id = ?1 AND ?2 = 0", db_id, 0,
	                        "database not found", err)) < 0 ||
	    (error = next_id(&id, m,
	                     "SELECT COALESCE(MAX(pull_id), 0) + 1 FROM pulls WHERE db_id = ?1 "
	                     "AND ?2 = 0",
	                     db_id, 0, err)) < 0)
		goto cleanup;
	if ((error = prep(&st, m,
	                  "INSERT INTO pulls(db_id, pull_id, title, description, author, "
	                  "from_branch, to_branch, state, created_at, updated_at) VALUES (?1, ?2, "
	                  "?3, ?4, ?5, ?6, ?7, 'Open', ?8, ?8)",
	                  err)) < 0)
		goto cleanup;
	sqlite3_bind_int64(st, 1, db_id);
	sqlite3_bind_int64(st, 2, id);
	bind_str(st, 3, title);
	bind_str(st, 4, description);
	bind_str(st, 5, author);
	bind_str(st, 6, from_branch);
	bind_str(st, 7, to_branch);
	sqlite3_bind_int64(st, 8, now);
	if ((error = step_done(m, st, err)) < 0 || (error = exec(m, "COMMIT", err)) < 0)
		goto cleanup;
	*pull_id_out = id;
cleanup:
	sqlite3_finalize(st);
	if (error < 0)
		rollback(m);
	pthread_mutex_unlock(&m->mu);
	return error;
}

int th_meta_pull_get(th_pull_info *out, th_meta *m, int64_t db_id, int64_t pull_id, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m,
	                  "SELECT " PULL_COLS " FROM pulls WHERE db_id = ?1 AND pull_id = ?2",
	                  err)) < 0)
		goto cleanup;
	sqlite3_bind_int64(st, 1, db_id);
	sqlite3_bind_int64(st, 2, pull_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		error = read_pull(out, st, err);
	else if (rc == SQLITE_DONE)
		error = th_error_set(err, TH_ENOTFOUND, "pull request #%" PRId64 " not found",
		                     pull_id);
	else
		error = db_error(m, err, "read pull request");
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

int th_meta_pull_find_open(int64_t *pull_id_out, th_meta *m, int64_t db_id, const char *from_branch,
                           const char *to_branch, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m,
	                  "SELECT pull_id FROM pulls WHERE db_id = ?1 AND state = 'Open' AND "
	                  "from_branch = ?2 AND to_branch = ?3 ORDER BY pull_id DESC LIMIT 1",
	                  err)) < 0)
		goto cleanup;
	sqlite3_bind_int64(st, 1, db_id);
	bind_str(st, 2, from_branch);
	bind_str(st, 3, to_branch);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*pull_id_out = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		error = th_error_set(err, TH_ENOTFOUND, "no open pull request from '%s' into '%s'",
		                     from_branch ? from_branch : "", to_branch ? to_branch : "");
	else
		error = db_error(m, err, "find pull request");
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

int th_meta_pull_list(th_pull_list *out, char next_out[TH_PAGE_TOKEN_SIZE], th_meta *m,
                      int64_t db_id, th_pull_state state, const char *page_token, size_t limit,
                      th_error *err)
{
	th_pull_list l = { NULL, 0 };
	sqlite3_stmt *st = NULL;
	int64_t offset;
	size_t cap = 0, lim = page_limit(limit);
	int rc, more = 0, error;

	if ((error = parse_page(&offset, page_token, err)) < 0)
		return error;
	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m,
	                  "SELECT " PULL_COLS " FROM pulls WHERE db_id = ?1 AND (?2 IS NULL OR "
	                  "state = ?2) ORDER BY pull_id DESC LIMIT ?3 OFFSET ?4",
	                  err)) < 0)
		goto cleanup;
	sqlite3_bind_int64(st, 1, db_id);
	if (state)
		bind_str(st, 2, th_pull_state_name(state));
	sqlite3_bind_int64(st, 3, (int64_t)lim + 1);
	sqlite3_bind_int64(st, 4, offset);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (l.n == lim) {
			more = 1;
			continue;
		}
		if ((error = list_grow((void **)&l.items, l.n, &cap, sizeof(*l.items), err)) < 0 ||
		    (error = read_pull(&l.items[l.n], st, err)) < 0)
			goto cleanup;
		l.n++;
	}
	if (rc != SQLITE_DONE)
		error = db_error(m, err, "list pull requests");
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	if (error < 0) {
		th_pull_list_dispose(&l);
		return error;
	}
	*out = l;
	set_next(next_out, more, offset, l.n);
	return TH_OK;
}

int th_meta_pull_update(th_meta *m, int64_t db_id, int64_t pull_id, const char *title,
                        const char *description, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int error;

	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m,
	                  "UPDATE pulls SET title = COALESCE(?3, title), description = "
	                  "COALESCE(?4, description), updated_at = ?5 WHERE db_id = ?1 AND "
	                  "pull_id = ?2",
	                  err)) < 0)
		goto cleanup;
	sqlite3_bind_int64(st, 1, db_id);
	sqlite3_bind_int64(st, 2, pull_id);
	if (title)
		bind_str(st, 3, title);
	if (description)
		bind_str(st, 4, description);
	sqlite3_bind_int64(st, 5, th_now_ms());
	if ((error = step_done(m, st, err)) < 0)
		goto cleanup;
	if (sqlite3_changes(m->db) == 0)
		error = th_error_set(err, TH_ENOTFOUND, "pull request #%" PRId64 " not found",
		                     pull_id);
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

int th_meta_pull_set_state(th_meta *m, int64_t db_id, int64_t pull_id, th_pull_state state,
                           const char *merge_commit, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	if (state < TH_PULL_OPEN || state > TH_PULL_MERGED)
		return th_error_set(err, TH_EINVALID, "invalid pull request state");
	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m,
	                  "UPDATE pulls SET state = ?3, merge_commit = ?4, updated_at = ?5 WHERE "
	                  "db_id = ?1 AND pull_id = ?2 AND state = 'Open'",
	                  err)) < 0)
		goto cleanup;
	sqlite3_bind_int64(st, 1, db_id);
	sqlite3_bind_int64(st, 2, pull_id);
	bind_str(st, 3, th_pull_state_name(state));
	bind_str(st, 4, state == TH_PULL_MERGED && merge_commit ? merge_commit : "");
	sqlite3_bind_int64(st, 5, th_now_ms());
	if ((error = step_done(m, st, err)) < 0 || sqlite3_changes(m->db) > 0)
		goto cleanup;
	sqlite3_finalize(st);
	if ((error = prep(&st, m, "SELECT state FROM pulls WHERE db_id = ?1 AND pull_id = ?2",
	                  err)) < 0)
		goto cleanup;
	sqlite3_bind_int64(st, 1, db_id);
	sqlite3_bind_int64(st, 2, pull_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		char cur[16];
		size_t i;
		col_copy(cur, sizeof(cur), st, 0);
		for (i = 0; cur[i]; i++)
			cur[i] = (char)(cur[i] >= 'A' && cur[i] <= 'Z' ? cur[i] + 32 : cur[i]);
		error = th_error_set(err, TH_ECONFLICT, "pull request #%" PRId64 " is already %s",
		                     pull_id, cur);
	} else if (rc == SQLITE_DONE) {
		error = th_error_set(err, TH_ENOTFOUND, "pull request #%" PRId64 " not found",
		                     pull_id);
	} else {
		error = db_error(m, err, "read pull request");
	}
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	return error;
}

/* Add a comment (status 0) or a review to a pull. */
static int note_add(int64_t *id_out, th_meta *m, int64_t db_id, int64_t pull_id, const char *author,
                    th_review_status status, const char *body, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0;
	char what[64];
	int error;

	if (author == NULL || !author[0])
		return th_error_set(err, TH_EINVALID, "no author");
	if (status == 0 && (body == NULL || !body[0]))
		return th_error_set(err, TH_EINVALID, "the comment is empty");
	if (status != 0 && (status < TH_REVIEW_APPROVED || status > TH_REVIEW_REVIEWED))
		return th_error_set(err, TH_EINVALID, "invalid review status");
	snprintf(what, sizeof(what), "pull request #%" PRId64 " not found", pull_id);
	pthread_mutex_lock(&m->mu);
	if ((error = exec(m, "BEGIN IMMEDIATE", err)) < 0)
		goto cleanup;
	if ((error = row_exists(m, "SELECT 1 FROM pulls WHERE db_id = ?1 AND pull_id = ?2", db_id,
	                        pull_id, what, err)) < 0 ||
	    (error = next_id(&id, m,
	                     status ? "SELECT COALESCE(MAX(id), 0) + 1 FROM pull_reviews WHERE "
	                              "db_id = ?1 AND pull_id = ?2"
	                            : "SELECT COALESCE(MAX(id), 0) + 1 FROM pull_comments WHERE "
	                              "db_id = ?1 AND pull_id = ?2",
	                     db_id, pull_id, err)) < 0)
		goto cleanup;
	if ((error = prep(&st, m,
	                  status ? "INSERT INTO pull_reviews(db_id, pull_id, id, author, comment, "
	                           "created_at, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	                         : "INSERT INTO pull_comments(db_id, pull_id, id, author, body, "
	                           "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	                  err)) < 0)
		goto cleanup;
	sqlite3_bind_int64(st, 1, db_id);
	sqlite3_bind_int64(st, 2, pull_id);
	sqlite3_bind_int64(st, 3, id);
	bind_str(st, 4, author);
	bind_str(st, 5, body);
	sqlite3_bind_int64(st, 6, th_now_ms());
	if (status)
		bind_str(st, 7, th_review_status_name(status));
	if ((error = step_done(m, st, err)) < 0 || (error = exec(m, "COMMIT", err)) < 0)
		goto cleanup;
	if (id_out)
		*id_out = id;
cleanup:
	sqlite3_finalize(st);
	if (error < 0)
		rollback(m);
	pthread_mutex_unlock(&m->mu);
	return error;
}

static int note_list(th_pull_note_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                     int reviews, th_error *err)
{
	th_pull_note_list l = { NULL, 0 };
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc, error;

	pthread_mutex_lock(&m->mu);
	if ((error = prep(&st, m,
	                  reviews ? "SELECT id, author, comment, created_at, status FROM "
	                            "pull_reviews WHERE db_id = ?1 AND pull_id = ?2 ORDER BY id"
	                          : "SELECT id, author, body, created_at FROM pull_comments WHERE "
	                            "db_id = ?1 AND pull_id = ?2 ORDER BY id",
	                  err)) < 0)
		goto cleanup;
	sqlite3_bind_int64(st, 1, db_id);
	sqlite3_bind_int64(st, 2, pull_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		th_pull_note *n;
		if ((error = list_grow((void **)&l.items, l.n, &cap, sizeof(*l.items), err)) < 0)
			goto cleanup;
		n = &l.items[l.n];
		memset(n, 0, sizeof(*n));
		n->id = sqlite3_column_int64(st, 0);
		col_copy(n->author, sizeof(n->author), st, 1);
		n->created_at = sqlite3_column_int64(st, 3);
		if (reviews)
			n->status = th_review_status_parse(col_text(st, 4));
		if ((error = col_dup(&n->body, st, 2, 0, err)) < 0)
			goto cleanup;
		l.n++;
	}
	if (rc != SQLITE_DONE)
		error = db_error(m, err, "list notes");
cleanup:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->mu);
	if (error < 0)
		th_pull_note_list_dispose(&l);
	else
		*out = l;
	return error;
}

int th_meta_pull_comment_add(int64_t *id_out, th_meta *m, int64_t db_id, int64_t pull_id,
                             const char *author, const char *body, th_error *err)
{
	return note_add(id_out, m, db_id, pull_id, author, (th_review_status)0, body, err);
}

int th_meta_pull_comment_list(th_pull_note_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                              th_error *err)
{
	return note_list(out, m, db_id, pull_id, 0, err);
}

int th_meta_pull_review_add(int64_t *id_out, th_meta *m, int64_t db_id, int64_t pull_id,
                            const char *author, th_review_status status, const char *comment,
                            th_error *err)
{
	if (status == 0)
		return th_error_set(err, TH_EINVALID, "invalid review status");
	return note_add(id_out, m, db_id, pull_id, author, status, comment, err);
}

int th_meta_pull_review_list(th_pull_note_list *out, th_meta *m, int64_t db_id, int64_t pull_id,
                             th_error *err)
{
	return note_list(out, m, db_id, pull_id, 1, err);
}
